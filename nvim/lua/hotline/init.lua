--- Hotline: save-to-patch hot reloading for Rust, in Neovim.
---
--- `require("hotline").setup(opts)` starts the Hotline language server for Rust buffers of a Cargo
--- workspace (next to rust-analyzer), one client per workspace root. See |hotline.txt|.

local config = require("hotline.config")
local status = require("hotline.status")
local log = require("hotline.log")

local M = {}

M.name = "hotline"

local did_setup = false
local augroup = vim.api.nvim_create_augroup("hotline", { clear = true })

--- Crate directory found for the first buffer of each workspace root (used for virtual workspaces).
---@type table<string, string>
local crate_for_root = {}

---@param path string
---@return string?
local function read(path)
  local f = io.open(path, "r")
  if not f then
    return nil
  end
  local text = f:read("*a")
  f:close()
  return text
end

--- Whether a Cargo.toml has a top-level [name] table.
---@param text string
---@param name string
---@return boolean
local function has_table(text, name)
  local pat = "%[" .. name .. "%]"
  return text:find("^%s*" .. pat) ~= nil or text:find("\n%s*" .. pat) ~= nil
end

--- The Cargo workspace of a path: the topmost ancestor Cargo.toml with a [workspace] table, else the
--- nearest Cargo.toml; and the nearest crate (directory of the nearest Cargo.toml with a [package]).
---@param path string  a file or directory
---@return string? root, string? crate
function M.find_workspace(path)
  if path == "" then
    return nil, nil
  end
  path = vim.fs.normalize(vim.fn.fnamemodify(path, ":p"))
  local dir = vim.fn.isdirectory(path) == 1 and path or vim.fs.dirname(path)
  local dirs = { dir }
  for parent in vim.fs.parents(dir) do
    dirs[#dirs + 1] = parent
  end
  local nearest, crate, root
  for _, d in ipairs(dirs) do
    local text = read(d .. "/Cargo.toml")
    if text then
      nearest = nearest or d
      if not crate and has_table(text, "package") then
        crate = d
      end
      if has_table(text, "workspace") then
        root = d
      end
    end
  end
  root = root or nearest
  if root then
    root = root:gsub("/$", "")
    if root == "" then
      root = "/"
    end
  end
  return root, crate
end

--- initializationOptions for a workspace root.
---@param root? string
---@return table
local function settings_for(root)
  local crate
  if root and not config.options.crate then
    local text = read(root .. "/Cargo.toml") or ""
    if not has_table(text, "package") then
      crate = crate_for_root[root]
    end
  end
  return config.settings(crate)
end

--- Per buffer: a codeLens request of ours is in flight ("active"), or one more was asked for
--- meanwhile ("again").
---@type table<integer, string>
local lens_requests = {}

--- Fetches and shows a buffer's lenses. vim.lsp.codelens.refresh drops a refresh asked for while
--- one is in flight, so a `· ran` receipt that came a few ms after `patched` was never shown;
--- here such a refresh runs once the one in flight has answered.
---@param client vim.lsp.Client
---@param bufnr integer
local function refresh_buffer(client, bufnr)
  if lens_requests[bufnr] then
    lens_requests[bufnr] = "again"
    return
  end
  lens_requests[bufnr] = "active"
  local params = { textDocument = vim.lsp.util.make_text_document_params(bufnr) }
  local sent = client:request("textDocument/codeLens", params, function(err, result, ctx)
    local again = lens_requests[bufnr] == "again"
    lens_requests[bufnr] = nil
    if vim.api.nvim_buf_is_loaded(bufnr) then
      vim.lsp.codelens.on_codelens(err, result, ctx)
      if again then
        refresh_buffer(client, bufnr)
      end
    end
  end, bufnr)
  if not sent then
    lens_requests[bufnr] = nil
  end
end

---@param client_id integer
local function refresh_lenses(client_id)
  if not config.options.codelens then
    return
  end
  local client = vim.lsp.get_client_by_id(client_id)
  if not client then
    return
  end
  for bufnr in pairs(client.attached_buffers or {}) do
    if vim.api.nvim_buf_is_loaded(bufnr) then
      refresh_buffer(client, bufnr)
    end
  end
end
M.refresh_lenses = refresh_lenses

local level = vim.log.levels

---@param msg string
---@param lvl? integer
local function notify(msg, lvl)
  if config.options.notify then
    vim.notify("Hotline: " .. msg, lvl or level.INFO, { title = "Hotline" })
  end
end

---@param client_id integer
---@param s hotline.Status
local function log_status(client_id, s)
  if not config.options.log.status_lines then
    return
  end
  local text
  if s.state == "building" then
    text = "building" .. (s.message and (" (" .. s.message .. ")") or "") .. "…"
  elseif s.state == "running" then
    text = "running" .. (s.pid and string.format(" (pid %d)", s.pid) or "")
  elseif s.state == "patched" then
    text = string.format("patched in %dms: %s", math.floor((s.ms or 0) + 0.5), table.concat(s.functions or {}, ", "))
  elseif s.state == "error" then
    text = "error: " .. (s.message or "")
  elseif s.state == "stopped" then
    text = "stopped" .. (s.message and (": " .. s.message) or "")
  end
  if text then
    log.append(client_id, { "[hotline] " .. text })
  end
end

--- Per client: the server's start-up line, which Python and which `hotline` package it runs
--- ("Hotline language server 0.1.0: Python 3.11.7 (/usr/bin/python3), hotline package …").
---@type table<integer, string>
M.server_environment = {}

--- Handlers for the server's custom notifications and for workspace/codeLens/refresh.
---@type table<string, lsp.Handler>
M.handlers = {
  ["window/logMessage"] = function(err, params, ctx)
    local message = params and params.message
    if type(message) == "string" and message:find("^Hotline") then
      if message:find("^Hotline language server ") then
        M.server_environment[ctx.client_id] = message
      end
      -- Hotline's own messages (the server's environment, a re-attached app, an earlier app
      -- stopped, debug info that failed) go to :HotlineLog too; all go to the LSP log.
      if config.options.log.status_lines and (params.type or 4) <= 3 then -- error, warning, info
        log.append(ctx.client_id, { "[hotline] " .. message })
      end
    end
    return vim.lsp.handlers["window/logMessage"](err, params, ctx)
  end,
  ["hotline/status"] = function(_, params, ctx)
    local prev = status.get(ctx.client_id)
    local s = status.update(ctx.client_id, params or {})
    log_status(ctx.client_id, s)
    -- Build and compile errors are shown as diagnostics; other errors (refused patches, a failed start) are not.
    local shown_as_diagnostics = s.message
      and (s.message:find("^compile error") or s.message:find("^the build failed"))
    if
      s.state == "error"
      and not shown_as_diagnostics
      and (not prev or prev.state ~= "error" or prev.message ~= s.message)
    then
      notify(s.message or "error", level.ERROR)
    elseif s.state == "stopped" and s.exitCode ~= nil and s.exitCode ~= 0 then
      notify("the app " .. (s.message or "stopped"), level.WARN)
    end
    if s.state ~= "building" and s.state ~= "patching" then
      refresh_lenses(ctx.client_id)
    end
    if config.options.on_status then
      pcall(config.options.on_status, s, ctx.client_id)
    end
    vim.api.nvim_exec_autocmds("User", {
      pattern = "HotlineStatus",
      modeline = false,
      data = { client_id = ctx.client_id, status = s },
    })
    vim.cmd("redrawstatus!")
  end,
  ["hotline/output"] = function(_, params, ctx)
    log.on_output(ctx.client_id, params or {})
  end,
  ["workspace/codeLens/refresh"] = function(_, _, ctx)
    refresh_lenses(ctx.client_id)
    return vim.NIL
  end,
}

--- The Hotline client of a buffer; else, the one client or the one that reported last.
---@param bufnr? integer
---@return vim.lsp.Client?
function M.get_client(bufnr)
  if type(bufnr) ~= "number" or bufnr == 0 or not vim.api.nvim_buf_is_valid(bufnr) then
    bufnr = vim.api.nvim_get_current_buf()
  end
  local clients = vim.lsp.get_clients({ name = M.name, bufnr = bufnr })
  if clients[1] then
    return clients[1]
  end
  clients = vim.lsp.get_clients({ name = M.name })
  if #clients == 1 then
    return clients[1]
  end
  -- A log or last-patch buffer: the client it belongs to.
  local owner = vim.b[bufnr].hotline_client_id
  if owner and vim.lsp.get_client_by_id(owner) then
    return vim.lsp.get_client_by_id(owner)
  end
  if status.last_client_id then
    return vim.lsp.get_client_by_id(status.last_client_id)
  end
  return nil
end

---@type table<string, integer>
local scratch = {}

--- Shows Markdown in a scratch buffer (reused per name) in a split.
---@param name string
---@param markdown string
---@param client_id? integer
---@return integer bufnr
function M.show_markdown(name, markdown, client_id)
  local buf = scratch[name]
  if not (buf and vim.api.nvim_buf_is_valid(buf)) then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
    scratch[name] = buf
  end
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].swapfile = false
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(markdown, "\n", { plain = true, trimempty = false }))
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  vim.bo[buf].filetype = "markdown"
  if client_id then
    vim.b[buf].hotline_client_id = client_id
  end
  local win = vim.fn.win_findbuf(buf)[1]
  if win then
    vim.api.nvim_set_current_win(win)
  else
    vim.cmd("botright split")
    vim.api.nvim_win_set_buf(0, buf)
  end
  return buf
end

--- Runs a server command (workspace/executeCommand) on a client.
---@param client vim.lsp.Client
---@param command string  hotline.run | hotline.stop | hotline.restart | hotline.rebuild | hotline.showLastPatch
---@param arguments? any[]
---@param on_result? fun(err: lsp.ResponseError?, result: any)
function M.execute(client, command, arguments, on_result)
  local params = { command = command, arguments = arguments }
  local request = vim.fn.has("nvim-0.11") == 1 and function(...)
    return client:request(...)
  end or client.request
  request("workspace/executeCommand", params, function(err, result)
    if err then
      notify(command .. " failed: " .. (err.message or vim.inspect(err)), level.ERROR)
    elseif type(result) == "table" and result.message and result.ok ~= false then
      vim.api.nvim_echo({ { "Hotline: " .. result.message } }, false, {})
    end
    if on_result then
      on_result(err, result)
    end
    refresh_lenses(client.id)
  end)
end

--- Client-side handlers of the commands in Hotline's code lenses, so that vim.lsp.codelens.run() shows the
--- last patch in a buffer and reports the result of run/restart.
---@type table<string, fun(command: lsp.Command, ctx: table)>
M.commands = {}
for _, name in ipairs({ "hotline.run", "hotline.stop", "hotline.restart", "hotline.rebuild" }) do
  M.commands[name] = function(command, ctx)
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    if client then
      M.execute(client, name, command.arguments)
    end
  end
end
M.commands["hotline.showLastPatch"] = function(command, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if client then
    M.show_last_patch(client, command.arguments)
  end
end

--- Shows the server's summary of the last patch (Markdown) in a scratch buffer.
---@param client vim.lsp.Client
---@param arguments? any[]
function M.show_last_patch(client, arguments)
  M.execute(client, "hotline.showLastPatch", arguments, function(err, result)
    if not err then
      local text = type(result) == "string" and result or vim.inspect(result)
      M.show_markdown("hotline://last-patch", text, client.id)
    end
  end)
end

---@param bufnr integer
---@return boolean
local function is_file_buffer(bufnr)
  return vim.bo[bufnr].buftype == "" and vim.api.nvim_buf_get_name(bufnr) ~= ""
end

--- The client configuration (vim.lsp.ClientConfig) Hotline starts; `root_dir` is a function on 0.11+.
---@return vim.lsp.ClientConfig
function M.lsp_config()
  return {
    name = M.name,
    cmd = config.server_cmd(),
    filetypes = config.options.filetypes,
    handlers = M.handlers,
    commands = M.commands,
    -- Neovim does not say it takes workspace/codeLens/refresh; this client does (M.handlers), and
    -- without it the server cannot show a receipt (`· ran`) that changes no status.
    capabilities = vim.tbl_deep_extend(
      "force",
      vim.lsp.protocol.make_client_capabilities(),
      { workspace = { codeLens = { refreshSupport = true } } }
    ),
    ---@param params lsp.InitializeParams
    ---@param cfg vim.lsp.ClientConfig
    before_init = function(params, cfg)
      params.initializationOptions = settings_for(cfg.root_dir)
    end,
    on_exit = function(_, _, client_id)
      vim.schedule(function()
        status.forget(client_id)
        M.server_environment[client_id] = nil
        vim.cmd("redrawstatus!")
      end)
    end,
  }
end

--- Starts (or reuses) the Hotline client of a buffer with vim.lsp.start (Neovim 0.10).
---@param bufnr integer
---@return integer? client_id
function M.start(bufnr)
  if not is_file_buffer(bufnr) then
    return nil
  end
  local root, crate = M.find_workspace(vim.api.nvim_buf_get_name(bufnr))
  if not root then
    return nil
  end
  if crate and not crate_for_root[root] then
    crate_for_root[root] = crate
  end
  local cfg = M.lsp_config()
  cfg.root_dir = root
  return vim.lsp.start(cfg, { bufnr = bufnr })
end

---@param bufnr integer
local function set_keymaps(bufnr)
  local keys = config.options.keymaps
  if type(keys) ~= "table" then
    return
  end
  local map = function(lhs, rhs, desc)
    if lhs then
      vim.keymap.set("n", lhs, rhs, { buffer = bufnr, desc = desc, silent = true })
    end
  end
  map(keys.run, "<Cmd>HotlineRun<CR>", "Hotline: run the app")
  map(keys.stop, "<Cmd>HotlineStop<CR>", "Hotline: stop the app")
  map(keys.restart, "<Cmd>HotlineRestart<CR>", "Hotline: full rebuild and restart")
  map(keys.rebuild, "<Cmd>HotlineRebuild<CR>", "Hotline: patch now")
  map(keys.last_patch, "<Cmd>HotlineLastPatch<CR>", "Hotline: show the last patch")
  map(keys.log, "<Cmd>HotlineLog<CR>", "Hotline: show the app's output")
  map(keys.codelens_run, vim.lsp.codelens.run, "Hotline: run the code lens on this line")
end

---@param client vim.lsp.Client
---@param bufnr integer
local function on_attach(client, bufnr)
  set_keymaps(bufnr)
  if config.options.codelens then
    vim.api.nvim_clear_autocmds({ group = augroup, buffer = bufnr })
    vim.api.nvim_create_autocmd({ "BufEnter", "InsertLeave", "BufWritePost" }, {
      group = augroup,
      buffer = bufnr,
      callback = function(ev)
        if vim.lsp.get_clients({ id = client.id, bufnr = ev.buf })[1] then
          refresh_buffer(client, ev.buf)
        end
      end,
    })
    refresh_buffer(client, bufnr)
  end
end

--- Sets Hotline up: registers the language server for Rust buffers of Cargo workspaces.
---@param opts? hotline.Config|table  see |hotline-config|
function M.setup(opts)
  config.setup(opts)
  require("hotline.commands").create()
  vim.api.nvim_clear_autocmds({ group = augroup })

  vim.api.nvim_create_autocmd("LspAttach", {
    group = augroup,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == M.name then
        on_attach(client, ev.buf)
      end
    end,
  })

  if M._use_enable() then
    local cfg = M.lsp_config()
    cfg.root_dir = function(bufnr, on_dir)
      if not is_file_buffer(bufnr) then
        return
      end
      local root, crate = M.find_workspace(vim.api.nvim_buf_get_name(bufnr))
      if root then
        if crate and not crate_for_root[root] then
          crate_for_root[root] = crate
        end
        on_dir(root)
      end
    end
    vim.lsp.config(M.name, cfg)
    vim.lsp.enable(M.name)
  else
    vim.api.nvim_create_autocmd("FileType", {
      group = augroup,
      pattern = config.options.filetypes,
      callback = function(ev)
        M.start(ev.buf)
      end,
    })
    -- Buffers already open when setup() runs.
    for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(config.options.filetypes, vim.bo[bufnr].filetype) then
        M.start(bufnr)
      end
    end
  end
  did_setup = true
end

--- Whether setup() registers the server with vim.lsp.config/enable (0.11+) rather than vim.lsp.start
--- from a FileType autocommand (0.10). Tests override it to run the 0.10 path on 0.11.
---@return boolean
function M._use_enable()
  return vim.fn.has("nvim-0.11") == 1
end

---@return boolean
function M.is_setup()
  return did_setup
end

--- Status text for a statusline: `⚡ patched 142ms`, `building…`, `running`, `error: …`; "" without a client.
---@param bufnr? integer  default: the current buffer
---@return string
function M.status(bufnr)
  local client = M.get_client(bufnr)
  if not client then
    return ""
  end
  return status.format(status.get(client.id))
end

--- The whole status text (:HotlineStatus): the message in full and the app's pid, e.g.
--- `Hotline error: patch refused (HL1002): …whole reason… (pid 4242)`; "" without a client.
---@param bufnr? integer  default: the current buffer
---@return string
function M.status_full(bufnr)
  local client = M.get_client(bufnr)
  if not client then
    return ""
  end
  return status.format_full(status.get(client.id))
end

--- The debug adapter of nvim-dap :HotlineAttach uses: the `dap_adapter` option, else the first
--- of gdb, codelldb, lldb, lldb-dap that nvim-dap has; nil without one.
---@param dap table  require("dap")
---@return string?
local function dap_adapter(dap)
  local adapters = type(dap.adapters) == "table" and dap.adapters or {}
  if config.options.dap_adapter then
    return adapters[config.options.dap_adapter] and config.options.dap_adapter or nil
  end
  for _, name in ipairs({ "gdb", "codelldb", "lldb", "lldb-dap" }) do
    if adapters[name] then
      return name
    end
  end
  return nil
end

--- The gdb command that attaches to a pid: the runtime stops the app's threads with a
--- real-time signal (usually SIG64) to write entry jumps, which gdb must pass on.
---@param pid integer
---@return string
function M.gdb_command(pid)
  return string.format("gdb -p %d -ex 'handle SIG64 nostop noprint pass'", pid)
end

--- :HotlineAttach: attaches nvim-dap to the app of the buffer's client (its pid from the
--- status), or, without nvim-dap or a gdb/codelldb/lldb adapter in it, shows the pid and
--- the gdb command.
---@param bufnr? integer
---@return {pid: integer, executable: string?, adapter: string?, command: string}?  nil when no app runs
function M.attach(bufnr)
  local client = M.get_client(bufnr)
  local s = client and status.get(client.id)
  local pid = s and s.pid
  if not pid then
    notify("the app is not running: start it with :HotlineRun first", level.WARN)
    return nil
  end
  local executable = (vim.uv or vim.loop).fs_readlink("/proc/" .. pid .. "/exe")
  local command = M.gdb_command(pid)
  local has_dap, dap = pcall(require, "dap")
  local adapter = has_dap and dap_adapter(dap) or nil
  if adapter then
    vim.api.nvim_echo({ { string.format("Hotline: attaching %s to the app (pid %d)", adapter, pid) } }, true, {})
    dap.run({
      type = adapter,
      request = "attach",
      name = string.format("Attach to the Hotline app (pid %d)", pid),
      pid = pid,
      program = executable,
      cwd = client.config.root_dir,
    })
  else
    local why = has_dap and "nvim-dap has no gdb, codelldb or lldb adapter"
      or "nvim-dap is not installed"
    vim.api.nvim_echo({
      { string.format("Hotline: the app runs as pid %d (%s)\n", pid, executable or "?") },
      { "Attach from a terminal: " .. command .. "\n" },
      { "(" .. why .. ": see :help hotline-debugging)" },
    }, true, {})
  end
  return { pid = pid, executable = executable, adapter = adapter, command = command }
end

--- The raw last hotline/status of the buffer's client (see |hotline.Status|).
---@param bufnr? integer
---@return hotline.Status?
function M.status_table(bufnr)
  local client = M.get_client(bufnr)
  return client and status.get(client.id) or nil
end

return M
