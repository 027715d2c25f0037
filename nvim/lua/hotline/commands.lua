--- hotline.commands: User commands :HotlineRun, :HotlineStop, :HotlineRestart, :HotlineRebuild, :HotlineLastPatch, :HotlineLog,
--- :HotlineStatus, :HotlineAttach

local M = {}

---@return vim.lsp.Client?
local function client_or_complain()
  local hotline = require("hotline")
  local client = hotline.get_client(0)
  if client then
    return client
  end
  local why = hotline.is_setup() and "no Hotline server for this buffer (open a .rs file of a Cargo crate)"
    or 'call require("hotline").setup() first'
  vim.notify("Hotline: " .. why, vim.log.levels.WARN, { title = "Hotline" })
  return nil
end

---@param command string
---@return fun()
local function server_command(command)
  return function()
    local client = client_or_complain()
    if client then
      require("hotline").execute(client, command)
    end
  end
end

--- Command name -> { implementation, description }.
---@type table<string, {[1]: fun(args: table), [2]: string, bang?: boolean}>
M.list = {
  HotlineRun = { server_command("hotline.run"), "Build and run the app under Hotline" },
  HotlineStop = { server_command("hotline.stop"), "Stop the app" },
  HotlineRestart = { server_command("hotline.restart"), "Full rebuild and restart of the app" },
  HotlineRebuild = { server_command("hotline.rebuild"), "Force a full rebuild from clean artifacts and relaunch the app" },
  HotlineLastPatch = {
    function()
      local client = client_or_complain()
      if client then
        require("hotline").show_last_patch(client)
      end
    end,
    "Show the summary of the last patch in a scratch buffer",
  },
  HotlineLog = {
    function(args)
      local client = client_or_complain()
      if not client then
        return
      end
      local log = require("hotline.log")
      if args.bang then
        log.clear(client.id)
      end
      local buf = log.open(client.id)
      vim.b[buf].hotline_client_id = client.id
    end,
    "Show the app's output in a buffer that follows new lines (! clears it first)",
    bang = true,
  },
  HotlineStatus = {
    function()
      local text = require("hotline").status_full(0)
      vim.api.nvim_echo({ { text ~= "" and text or "Hotline: no server for this buffer" } }, true, {})
    end,
    "Echo the whole status: the full message and the app's pid",
  },
  HotlineAttach = {
    function()
      if client_or_complain() then
        require("hotline").attach(0)
      end
    end,
    "Attach nvim-dap to the app (its pid), or show the pid and the gdb command",
  },
}

local created = false

--- Defines the user commands (idempotent).
function M.create()
  if created then
    return
  end
  created = true
  for name, spec in pairs(M.list) do
    vim.api.nvim_create_user_command(name, function(args)
      spec[1](args)
    end, { desc = spec[2], bang = spec.bang or false, nargs = 0 })
  end
end

return M
