-- Hotline: save-to-patch hot reloading for Rust. Defines the user commands; the language server starts after
-- require("hotline").setup(). See :help hotline.
if vim.g.loaded_hotline then
  return
end
vim.g.loaded_hotline = true

if vim.fn.has("nvim-0.10") == 0 then
  vim.api.nvim_err_writeln("hotline.nvim needs Neovim 0.10 or newer")
  return
end

require("hotline.commands").create()
