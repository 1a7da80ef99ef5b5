--- Conductor for Neovim 0.11+ without `setup()`: with this folder on 'runtimepath', enable the
--- server with `vim.lsp.enable('conductor')` and adjust it with `vim.lsp.config('conductor', {…})`.
---
--- The same root detection as the plugin (the outermost Cargo workspace above the file), the
--- plugin's `$/progress` tracking, and its user commands (`:ConductorGoal`, …) once a buffer
--- attaches. Neovim 0.11 negotiates the position encoding itself.

local conductor = require('conductor')

return {
  cmd = { 'conductor', 'lsp' },
  filetypes = { 'rust' },
  root_dir = function(bufnr, on_dir)
    local name = vim.api.nvim_buf_get_name(bufnr)
    if name ~= '' then
      on_dir(conductor.find_root(vim.fn.fnamemodify(name, ':p'), { 'Cargo.toml', 'conductor.toml', '.git' }))
    end
  end,
  -- The `conductor` section (snake_case keys, as in conductor.toml), for example
  -- `{ conductor = { log = { level = 'debug' } } }`; served to `workspace/configuration`.
  settings = { conductor = vim.empty_dict() },
  init_options = vim.empty_dict(),
  handlers = { ['$/progress'] = conductor.progress_handler },
  on_attach = function()
    conductor.define_commands()
  end,
}
