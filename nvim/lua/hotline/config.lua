--- hotline.config: Hotline configuration

---@class hotline.KeymapsConfig
---@field run? string            Keys for :HotlineRun (buffer-local in Rust buffers with a Hotline client)
---@field stop? string           Keys for :HotlineStop
---@field restart? string        Keys for :HotlineRestart
---@field rebuild? string        Keys for :HotlineRebuild
---@field last_patch? string     Keys for :HotlineLastPatch
---@field log? string            Keys for :HotlineLog
---@field codelens_run? string   Keys for vim.lsp.codelens.run()

---@class hotline.LogConfig
---@field max_lines integer       Lines of app output kept per workspace (older lines are dropped)
---@field status_lines boolean    Also log Hotline state changes ("[hotline] patched in 142ms") between app lines
---@field split string            Command used to open the log window ("botright 12split", "vsplit", "tabnew", …)

---@class hotline.Config
---@field python string                   Python interpreter with the `hotline` package installed
---@field cmd? string[]                   Server command; nil means { python, "-m", "hotline.lsp" }
---@field filetypes string[]              Filetypes that start the server
---@field crate? string                   Crate to run (settings.crate), absolute or relative to the workspace root; nil: the workspace root, or for a virtual workspace the crate of the first buffer opened
---@field bin? string                     Binary target to run (settings.bin) when the crate has several
---@field app_args string[]               Arguments passed to the app (settings.appArgs)
---@field patch_on_save boolean           Patch the running app on each :write of a .rs file of the crate (settings.patchOnSave)
---@field env table<string,string>        Environment for cargo and the app (settings.env)
---@field features string[]               Cargo features of the app's builds (settings.features)
---@field profile? string                 Cargo profile of the app's builds; nil: dev (settings.profile)
---@field linker? string                  Linker of the full build: "lld", "mold", "bfd" or "gold"; nil: rustc's (settings.linker)
---@field allow_layout_changes string[]   Types whose layout may change in a patch (settings.allowLayoutChanges, rule HL1002)
---@field entry_jumps boolean             Redirect each patched function's old entry to its new code, so every caller runs it; false: only code reached through hotline::call switches (settings.entryJumps)
---@field rustc_warnings boolean         Also show rustc's warnings as diagnostics (settings.rustcWarnings); false: only what blocks a patch (rustc's errors and Hotline's rules), as rust-analyzer shows rustc's warnings already
---@field speculative_builds boolean     Compile unsaved buffers in the background while you pause, so a save of that text skips rustc (settings.speculativeBuilds)
---@field speculative_delay_ms? integer  How long a buffer must stay unchanged before that build starts (settings.speculativeDelayMs; nil: the last build's time, 100-300 ms)
---@field speculative_diagnostics boolean Publish the speculative builds' errors as you type (settings.speculativeDiagnostics); false: rust-analyzer shows errors as you type already
---@field dap_adapter? string             nvim-dap adapter :HotlineAttach uses; nil: the first of gdb, codelldb, lldb, lldb-dap that is configured
---@field codelens boolean                Show Hotline code lenses and refresh them after patches and on BufEnter/InsertLeave/BufWritePost
---@field notify boolean                  vim.notify() on errors, refused patches and app exits
---@field keymaps boolean|hotline.KeymapsConfig  Buffer-local keymaps: false (default) defines none, true the suggested ones (M.suggested_keymaps)
---@field log hotline.LogConfig
---@field on_status? fun(status: hotline.Status, client_id: integer)  Called on every hotline/status notification

local M = {}

--- vim.validate in the form of both 0.10 (table spec) and 0.11+.
local function validate(name, value, types, optional)
  vim.validate({ [name] = { value, types, optional } })
end

---@type hotline.Config
M.defaults = {
  python = "python3",
  cmd = nil,
  filetypes = { "rust" },
  crate = nil,
  bin = nil,
  app_args = {},
  patch_on_save = true,
  env = {},
  features = {},
  profile = nil,
  linker = nil,
  allow_layout_changes = {},
  entry_jumps = true,
  rustc_warnings = false,
  speculative_builds = true,
  speculative_delay_ms = nil,
  speculative_diagnostics = false,
  dap_adapter = nil,
  codelens = true,
  notify = true,
  keymaps = false,
  log = {
    max_lines = 10000,
    status_lines = true,
    split = "botright 12split",
  },
  on_status = nil,
}

--- Keymaps used when `keymaps = true`.
---@type hotline.KeymapsConfig
M.suggested_keymaps = {
  run = "<leader>hr",
  stop = "<leader>hs",
  restart = "<leader>hR",
  rebuild = "<leader>hb",
  last_patch = "<leader>hp",
  log = "<leader>hl",
  codelens_run = "<leader>hc",
}

---@type hotline.Config
M.options = vim.deepcopy(M.defaults)

---@param opts? table
---@return hotline.Config
function M.setup(opts)
  opts = opts or {}
  validate("opts", opts, "table")
  local merged = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  -- Lists are replaced, not merged.
  for _, key in ipairs({ "cmd", "filetypes", "app_args", "features", "allow_layout_changes" }) do
    if opts[key] ~= nil then
      merged[key] = opts[key]
    end
  end
  if merged.keymaps == true then
    merged.keymaps = vim.deepcopy(M.suggested_keymaps)
  end
  validate("python", merged.python, "string")
  validate("cmd", merged.cmd, "table", true)
  validate("filetypes", merged.filetypes, "table")
  validate("crate", merged.crate, "string", true)
  validate("bin", merged.bin, "string", true)
  validate("app_args", merged.app_args, "table")
  validate("patch_on_save", merged.patch_on_save, "boolean")
  validate("env", merged.env, "table")
  validate("features", merged.features, "table")
  validate("profile", merged.profile, "string", true)
  validate("linker", merged.linker, "string", true)
  validate("allow_layout_changes", merged.allow_layout_changes, "table")
  validate("entry_jumps", merged.entry_jumps, "boolean")
  validate("rustc_warnings", merged.rustc_warnings, "boolean")
  validate("speculative_builds", merged.speculative_builds, "boolean")
  validate("speculative_delay_ms", merged.speculative_delay_ms, "number", true)
  validate("speculative_diagnostics", merged.speculative_diagnostics, "boolean")
  validate("dap_adapter", merged.dap_adapter, "string", true)
  validate("on_status", merged.on_status, "function", true)
  M.options = merged
  return merged
end

--- The server command.
---@return string[]
function M.server_cmd()
  local o = M.options
  return o.cmd or { o.python, "-m", "hotline.lsp" }
end

--- initializationOptions for a workspace (schemas/settings.schema.json).
---@param crate? string  crate directory found for the buffer that started the client (used when `crate` is unset)
---@return table
function M.settings(crate)
  local o = M.options
  local s = {
    patchOnSave = o.patch_on_save,
    entryJumps = o.entry_jumps,
    rustcWarnings = o.rustc_warnings,
    speculativeBuilds = o.speculative_builds,
    speculativeDelayMs = o.speculative_delay_ms,
    speculativeDiagnostics = o.speculative_diagnostics,
  }
  local c = o.crate or crate
  if c then
    s.crate = c
  end
  if o.bin then
    s.bin = o.bin
  end
  if #o.app_args > 0 then
    s.appArgs = o.app_args
  end
  if next(o.env) ~= nil then
    s.env = o.env
  end
  if #o.features > 0 then
    s.features = o.features
  end
  if #o.allow_layout_changes > 0 then
    s.allowLayoutChanges = o.allow_layout_changes
  end
  s.profile = o.profile
  s.linker = o.linker
  return s
end

return M
