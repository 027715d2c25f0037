--- hotline.health: :checkhealth hotline

local M = {}

local health = vim.health

--- Runs a command; returns its first output line, or nil and the reason it failed.
---@param cmd string[]
---@return string? line, string? err
local function run(cmd)
  if vim.fn.executable(cmd[1]) ~= 1 then
    return nil, "not found in $PATH"
  end
  local ok, obj = pcall(function()
    return vim.system(cmd, { text = true }):wait(15000)
  end)
  if not ok then
    return nil, tostring(obj)
  end
  if obj.code ~= 0 then
    local out = vim.trim((obj.stderr ~= "" and obj.stderr or obj.stdout) or "")
    return nil, string.format("exit %s: %s", tostring(obj.code), out:match("^[^\n]*") or out)
  end
  local out = vim.trim(obj.stdout ~= "" and obj.stdout or (obj.stderr or ""))
  return out:match("^[^\n]*") or out, nil
end

---@param name string
---@param cmd string[]
---@param what string  what Hotline needs it for
---@param required boolean
local function tool(name, cmd, what, required)
  local line, err = run(cmd)
  if line then
    health.ok(string.format("%s: %s (%s) — %s", name, line, vim.fn.exepath(cmd[1]), what))
  elseif required then
    health.error(string.format("%s: missing or broken (%s) — %s", name, err, what))
  else
    health.info(string.format("%s: not available (%s) — %s", name, err, what))
  end
end

function M.check()
  local config = require("hotline.config")
  local opts = config.options

  health.start("Neovim")
  local v = vim.version()
  local version = string.format("%d.%d.%d", v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.10") == 1 then
    health.ok("Neovim " .. version .. (vim.fn.has("nvim-0.11") == 1 and " (vim.lsp.config/enable)" or " (vim.lsp.start)"))
  else
    health.error("Neovim " .. version .. ": Hotline needs 0.10 or newer")
  end
  if require("hotline").is_setup() then
    health.ok('require("hotline").setup() was called')
  else
    health.warn('require("hotline").setup() has not been called: the server will not start')
  end

  health.start("Python and the Hotline server")
  local py_line, py_err = run({ opts.python, "--version" })
  if py_line then
    health.ok(string.format("python: %s (%s) — runs the Hotline language server", py_line, vim.fn.exepath(opts.python)))
    local line, err = run({
      opts.python,
      "-c",
      "import importlib.metadata as m, os, sys, hotline, hotline.lsp.server; "
        .. "print('hotline', m.version('hotline-reload'), 'pygls', m.version('pygls'), '|', "
        .. "os.path.dirname(os.path.realpath(hotline.__file__)), '|', sys.executable)",
    })
    if line then
      local versions, package, executable = line:match("^(.-) | (.-) | (.*)$")
      health.ok("import hotline.lsp: " .. (versions or line))
      if package then
        health.info("python executable: " .. executable)
        health.info("hotline package: " .. package)
      end
    else
      health.error("python cannot import hotline.lsp (" .. (err or "?") .. ")", {
        "pip install -e /path/to/hotline (the repository), in the interpreter of the `python` option",
      })
    end
  else
    health.error(string.format("python %q: %s — runs the Hotline language server", opts.python, py_err), {
      'set require("hotline").setup({ python = "/path/to/python3" })',
    })
  end
  local cmd = config.server_cmd()
  if vim.fn.executable(cmd[1]) == 1 then
    health.ok("server command: " .. table.concat(cmd, " "))
  else
    health.error("server command: " .. table.concat(cmd, " ") .. " — " .. cmd[1] .. " is not executable")
  end

  health.start("Rust toolchain")
  tool("cargo", { "cargo", "--version" }, "builds the app (fat build) and drives the patch builds", true)
  tool("rustc", { "rustc", "--version" }, "recompiles changed code for each patch", true)
  tool("cc", { "cc", "--version" }, "linker driver of the app's build (cargo's default linker)", true)
  tool("ld", { "ld", "--version" }, "system linker that cc runs", true)
  tool("rust-analyzer", { "rust-analyzer", "--version" }, "optional: completion and diagnostics alongside Hotline", false)

  health.start("Clients")
  local clients = vim.lsp.get_clients({ name = "hotline" })
  if #clients == 0 then
    health.info("no Hotline client running (open a .rs file of a Cargo crate)")
  end
  local status = require("hotline.status")
  for _, client in ipairs(clients) do
    local text = status.format_full(status.get(client.id))
    health.info(string.format("client %d: %s — %s", client.id, client.config.root_dir or "?", text ~= "" and text or "no status yet"))
    local environment = require("hotline").server_environment[client.id]
    health.info(string.format("client %d runs: %s", client.id, environment or "(its start-up message has not arrived)"))
  end
end

return M
