--- hotline.log: The app's output (hotline/output) kept per client, shown in a buffer that follows new lines

local config = require("hotline.config")

local M = {}

---@class hotline.Log
---@field lines string[]
---@field bufnr? integer
---@field name string
---@field pending string[]
---@field flush_scheduled boolean

---@type table<integer, hotline.Log>
M.by_client = {}

---@type table<string, integer>
local buf_by_name = {}

---@param client_id integer
---@return hotline.Log
local function get(client_id)
  local log = M.by_client[client_id]
  if not log then
    local client = vim.lsp.get_client_by_id(client_id)
    local root = client and client.config.root_dir or tostring(client_id)
    log = { lines = {}, name = "hotline://log/" .. root, pending = {}, flush_scheduled = false }
    M.by_client[client_id] = log
  end
  return log
end

---@param log hotline.Log
local function buf_valid(log)
  return log.bufnr ~= nil and vim.api.nvim_buf_is_valid(log.bufnr) and vim.api.nvim_buf_is_loaded(log.bufnr)
end

---@param log hotline.Log
local function flush(log)
  log.flush_scheduled = false
  local new = log.pending
  log.pending = {}
  if #new == 0 or not buf_valid(log) then
    return
  end
  local buf = log.bufnr --[[@as integer]]
  -- Windows whose cursor is on the last line keep following; others stay where the user put them.
  local follow = {}
  local last_before = vim.api.nvim_buf_line_count(buf)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    if vim.api.nvim_win_get_cursor(win)[1] >= last_before then
      follow[#follow + 1] = win
    end
  end
  vim.bo[buf].modifiable = true
  local empty = last_before == 1 and vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] == ""
  vim.api.nvim_buf_set_lines(buf, empty and 0 or -1, -1, false, new)
  local excess = vim.api.nvim_buf_line_count(buf) - config.options.log.max_lines
  if excess > 0 then
    vim.api.nvim_buf_set_lines(buf, 0, excess, false, {})
  end
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  local last = vim.api.nvim_buf_line_count(buf)
  for _, win in ipairs(follow) do
    vim.api.nvim_win_set_cursor(win, { last, 0 })
  end
end

--- Appends lines to a client's log (and to its buffer, when open).
---@param client_id integer
---@param lines string[]
function M.append(client_id, lines)
  local log = get(client_id)
  local max = config.options.log.max_lines
  for _, line in ipairs(lines) do
    -- A line may hold embedded newlines; a buffer line cannot.
    for _, part in ipairs(vim.split(line, "\n", { plain = true })) do
      log.lines[#log.lines + 1] = part
      log.pending[#log.pending + 1] = part
    end
  end
  if #log.lines > max * 1.25 then
    log.lines = vim.list_slice(log.lines, #log.lines - max + 1)
  end
  if buf_valid(log) and not log.flush_scheduled then
    log.flush_scheduled = true
    vim.schedule(function()
      flush(log)
    end)
  elseif not buf_valid(log) then
    log.pending = {}
  end
end

--- Handles a hotline/output notification ({stream, line}).
---@param client_id integer
---@param params {stream: string, line: string}
function M.on_output(client_id, params)
  local line = params.line
  if type(line) ~= "string" then
    return
  end
  M.append(client_id, { line })
end

--- Lines kept for a client.
---@param client_id integer
---@return string[]
function M.lines(client_id)
  local log = M.by_client[client_id]
  return log and log.lines or {}
end

--- The log buffer of a client (created and filled on first use).
---@param client_id integer
---@return integer bufnr
function M.buffer(client_id)
  local log = get(client_id)
  if buf_valid(log) then
    return log.bufnr --[[@as integer]]
  end
  -- A client restarted for the same root reuses the buffer.
  local buf = buf_by_name[log.name]
  if not (buf and vim.api.nvim_buf_is_valid(buf)) then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, log.name)
    buf_by_name[log.name] = buf
  end
  vim.fn.bufload(buf)
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].swapfile = false
  vim.bo[buf].filetype = "hotlinelog"
  vim.bo[buf].modifiable = true
  local start = math.max(1, #log.lines - config.options.log.max_lines + 1)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.list_slice(log.lines, start))
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  log.bufnr = buf
  log.pending = {}
  return buf
end

--- Opens (or focuses) the log window of a client, with the cursor on the last line so it follows new output.
---@param client_id integer
---@return integer bufnr
function M.open(client_id)
  local buf = M.buffer(client_id)
  local win = vim.fn.win_findbuf(buf)[1]
  if win then
    vim.api.nvim_set_current_win(win)
  else
    vim.cmd(config.options.log.split)
    vim.api.nvim_win_set_buf(0, buf)
    win = vim.api.nvim_get_current_win()
    vim.wo[win].number = false
    vim.wo[win].relativenumber = false
    vim.wo[win].wrap = false
  end
  vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(buf), 0 })
  return buf
end

--- Empties a client's log and its buffer.
---@param client_id integer
function M.clear(client_id)
  local log = get(client_id)
  log.lines, log.pending = {}, {}
  if buf_valid(log) then
    vim.bo[log.bufnr].modifiable = true
    vim.api.nvim_buf_set_lines(log.bufnr, 0, -1, false, {})
    vim.bo[log.bufnr].modifiable = false
  end
end

---@param client_id integer
function M.forget(client_id)
  M.by_client[client_id] = nil
end

return M
