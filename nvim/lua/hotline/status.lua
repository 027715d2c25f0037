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

--- A short text for a statusline: `⚡ patched 142ms`, `building…`, `running`, `error: …`.
--- An app the runtime was injected into (no safe points) says so: `running · injected`.
---@param s? hotline.Status
---@return string
function M.format(s)
  if not s then
    return ""
  end
  local state = s.state
  local mode = s.runtime == "injected" and " · injected" or ""
  if state == "patched" then
    return string.format("⚡ patched %dms", math.floor((s.ms or 0) + 0.5)) .. mode
  elseif state == "building" then
    return "building…"
  elseif state == "patching" then
    return "patching…"
  elseif state == "running" then
    return "running" .. mode
  elseif state == "error" then
    return "error: " .. (s.message or "unknown error")
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
