--- hotline.status: The state of the app under Hotline, per language-server client

---@alias hotline.State "idle"|"building"|"running"|"patching"|"patched"|"error"|"stopped"

--- The last hotline/status notification of a client (schemas/lsp-status.schema.json).
---@class hotline.Status
---@field state hotline.State
---@field ms? number           Duration of the build or patch that just finished
---@field functions? string[]  Functions the last patch replaced (state "patched")
---@field message? string      Detail: the error, the refusal reason, the build kind
---@field exitCode? integer    Exit code of the app (state "stopped")
---@field runtime? "linked"|"injected"  While an app runs: it depends on the runtime crate
---                                      (hotline::call safe points, on_patch), or the runtime was preloaded
---@field pid? integer         While an app runs: its process id (:HotlineAttach)

local M = {}

---@type table<integer, hotline.Status>
M.by_client = {}

--- Client id of the Hotline client that sent the latest status.
---@type integer?
M.last_client_id = nil

local function nonnil(v)
  if v == vim.NIL then
    return nil
  end
  return v
end

--- Characters of a message (an error, a refusal) the statusline shows before "…".
M.SUMMARY_CHARS = 40

--- The first `max` characters of a text on one line, and "…" when there was more.
---@param text string
---@param max? integer  default M.SUMMARY_CHARS
---@return string
function M.summarize(text, max)
  max = max or M.SUMMARY_CHARS
  text = vim.trim((text:gsub("%s+", " ")))
  if vim.fn.strchars(text) <= max then
    return text
  end
  return vim.trim(vim.fn.strcharpart(text, 0, max)) .. "…"
end

--- The state in words; the message summarised unless `full`.
---@param s hotline.Status
---@param full boolean
---@return string
local function describe(s, full)
  local state = s.state
  local mode = s.runtime == "injected" and " · injected" or ""
  if state == "patched" then
    -- old code still running (HL1012), entry jumps pending or landed: said after the time
    local note = s.message and (" · " .. (full and s.message or M.summarize(s.message))) or ""
    return string.format("⚡ patched %dms", math.floor((s.ms or 0) + 0.5)) .. mode .. note
  elseif state == "building" then
    return "building…"
  elseif state == "patching" then
    return "patching…"
  elseif state == "running" then
    return "running" .. mode
  elseif state == "error" then
    local message = s.message or "unknown error"
    return "error: " .. (full and message or M.summarize(message))
  elseif state == "stopped" then
    if s.exitCode ~= nil then
      return string.format("stopped (exit %d)", s.exitCode)
    end
    return "stopped"
  elseif state == "idle" then
    return "idle"
  end
  return tostring(state)
end

--- A short text for a statusline, always naming Hotline: `Hotline ⚡ patched 142ms`,
--- `Hotline building…`, `Hotline running`, `Hotline error: <the first 40 characters>…`.
--- An app the runtime was injected into (no safe points) says so: `Hotline running · injected`.
---@param s? hotline.Status
---@return string
function M.format(s)
  if not s then
    return ""
  end
  return "Hotline " .. describe(s, false)
end

--- The whole status (:HotlineStatus): the message in full, the functions a patch replaced and
--- the app's pid, e.g. `Hotline ⚡ patched 142ms: app::tick (pid 4242)`.
---@param s? hotline.Status
---@return string
function M.format_full(s)
  if not s then
    return ""
  end
  local text = "Hotline " .. describe(s, true)
  if s.state == "patched" and s.functions and #s.functions > 0 then
    text = text .. ": " .. table.concat(s.functions, ", ")
  elseif s.message and s.state ~= "error" and s.state ~= "stopped" then
    text = text .. " (" .. s.message .. ")"
  elseif s.state == "stopped" and s.message and s.exitCode == nil and s.message ~= "stopped" then
    text = text .. ": " .. s.message
  end
  if s.pid then
    text = text .. string.format(" (pid %d)", s.pid)
  end
  return text
end

--- Records a hotline/status notification; returns the normalised status.
---@param client_id integer
---@param params table
---@return hotline.Status
function M.update(client_id, params)
  ---@type hotline.Status
  local s = {
    state = params.state,
    ms = nonnil(params.ms),
    functions = nonnil(params.functions),
    message = nonnil(params.message),
    exitCode = nonnil(params.exitCode),
    runtime = nonnil(params.runtime),
    pid = nonnil(params.pid),
  }
  M.by_client[client_id] = s
  M.last_client_id = client_id
  return s
end

---@param client_id integer
function M.forget(client_id)
  M.by_client[client_id] = nil
  if M.last_client_id == client_id then
    M.last_client_id = next(M.by_client)
  end
end

---@param client_id? integer
---@return hotline.Status?
function M.get(client_id)
  if client_id then
    return M.by_client[client_id]
  end
  return M.last_client_id and M.by_client[M.last_client_id] or nil
end

return M
