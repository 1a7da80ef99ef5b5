--- Conductor for Neovim: starts the `conductor lsp` language server for Rust buffers through
--- Neovim's built-in LSP client and exposes the server's `conductor.*` commands as user commands.
---
--- Works on Neovim 0.7.2 (Debian 12's package) and newer: where the built-in client lacks
--- something Conductor relies on (position encoding negotiation, `workspace/configuration`,
--- `window/showDocument` on 0.7), this module fills the gap instead of requiring a newer editor.

local M = {}

-- `vim.uv` from 0.10, `vim.loop` before.
local uv = vim.uv or vim.loop

--- The name the client is registered under; `:LspInfo` and `vim.lsp.get_clients` show it.
M.name = 'conductor'

--- User command name → server command (`workspace/executeCommand`). The server advertises the
--- ones it implements in `executeCommandProvider.commands`; the others answer with a clear
--- message instead of a protocol error.
M.commands = {
  ConductorOrchestrate = 'conductor.orchestrate',
  ConductorPlan = 'conductor.plan',
  ConductorWriteTests = 'conductor.writeTests',
  ConductorReview = 'conductor.review',
  ConductorExplain = 'conductor.explain',
  ConductorShowContext = 'conductor.showContext',
  ConductorScanWorkspace = 'conductor.scanWorkspace',
  ConductorCancel = 'conductor.cancel',
}

local defaults = {
  -- The server command; `conductor` must be on PATH unless a full path is given.
  cmd = { 'conductor', 'lsp' },
  filetypes = { 'rust' },
  -- The workspace root is the outermost Cargo workspace above the file, else the nearest
  -- directory holding one of these markers, else the file's own directory.
  root_markers = { 'Cargo.toml', 'conductor.toml', '.git' },
  -- The `conductor` settings section (snake_case keys, as in conductor.toml), for example
  -- `{ log = { level = 'debug' } }`. Served to `workspace/configuration`.
  settings = {},
  -- `initializationOptions`; defaults to `settings` so that the first configuration the server
  -- sees already includes them.
  init_options = nil,
  -- Extra client capabilities merged over Neovim's own.
  capabilities = nil,
  on_attach = nil,
  -- Start the server automatically when a matching buffer opens.
  autostart = true,
  -- Milliseconds Neovim gathers edits before sending them as one didChange.
  debounce_text_changes = 50,
}

local config = vim.deepcopy(defaults)
local augroup = nil

local has = function(feature)
  return vim.fn.has(feature) == 1
end

local function notify(msg, level)
  vim.notify('conductor: ' .. msg, level or vim.log.levels.INFO)
end

--- Calls a method on a client object: `client:method(...)` on 0.11+, where the dot form is
--- deprecated, and `client.method(...)` before, where the functions are closures.
local function call(client, method, ...)
  if has('nvim-0.11') then
    return client[method](client, ...)
  end
  return client[method](...)
end

--- The running (not stopped or stopping) Conductor clients.
local function all_clients()
  local candidates
  if vim.lsp.get_clients then
    candidates = vim.lsp.get_clients({ name = M.name })
  else
    candidates = vim.lsp.get_active_clients()
  end
  local found = {}
  for _, client in pairs(candidates) do
    if client.name == M.name and not call(client, 'is_stopped') then
      table.insert(found, client)
    end
  end
  return found
end

--- The running Conductor clients, optionally only those attached to `bufnr`.
function M.clients(bufnr)
  local found = {}
  for _, client in ipairs(all_clients()) do
    local attached = bufnr == nil
      or (client.attached_buffers and client.attached_buffers[bufnr])
      or vim.lsp.buf_is_attached(bufnr, client.id)
    if attached then
      table.insert(found, client)
    end
  end
  return found
end

local function is_dir(path)
  local stat = uv.fs_stat(path)
  return stat ~= nil and stat.type == 'directory'
end

local function exists(path)
  return uv.fs_stat(path) ~= nil
end

local function parent(dir)
  local up = vim.fn.fnamemodify(dir, ':h')
  if up == dir then
    return nil
  end
  return up
end

local function declares_cargo_workspace(manifest)
  local file = io.open(manifest, 'r')
  if not file then
    return false
  end
  local text = file:read('*a') or ''
  file:close()
  return text:find('^%s*%[workspace%]') ~= nil or text:find('\n%s*%[workspace%]') ~= nil
end

--- The workspace root for a file path: the outermost directory whose Cargo.toml declares
--- `[workspace]`, else the nearest directory with a root marker, else the file's directory.
function M.find_root(path, markers)
  markers = markers or config.root_markers
  local start = is_dir(path) and path or vim.fn.fnamemodify(path, ':h')
  local nearest, cargo_workspace = nil, nil
  local dir = start
  while dir do
    if nearest == nil then
      for _, marker in ipairs(markers) do
        if exists(dir .. '/' .. marker) then
          nearest = dir
          break
        end
      end
    end
    local manifest = dir .. '/Cargo.toml'
    if exists(manifest) and declares_cargo_workspace(manifest) then
      cargo_workspace = dir
    end
    dir = parent(dir)
  end
  return cargo_workspace or nearest or start
end

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  -- Neovim 0.7 and 0.8 neither offer position encodings nor read the server's choice: offer
  -- UTF-8 (cheapest for the server) and UTF-16, and adopt the answer in `on_init`.
  local negotiates = caps.general ~= nil and caps.general.positionEncodings ~= nil
  if not negotiates then
    caps.general = caps.general or {}
    caps.general.positionEncodings = { 'utf-8', 'utf-16' }
  end
  -- 0.7 answers `workspace/configuration` but does not say so.
  caps.workspace = caps.workspace or {}
  caps.workspace.configuration = true
  if not has('nvim-0.8') then
    caps.window = caps.window or {}
    caps.window.showDocument = { support = true }
  end
  if config.capabilities then
    caps = vim.tbl_deep_extend('force', caps, config.capabilities)
    -- tbl_deep_extend merges lists index by index; a list of encodings must replace ours.
    local offered = config.capabilities.general and config.capabilities.general.positionEncodings
    if offered then
      caps.general.positionEncodings = offered
    end
  end
  return caps, negotiates
end

--- `window/showDocument` for Neovim 0.7, which has no handler of its own: Conductor opens
--- plans, explanations and context bundles this way.
local function show_document(_, params, _)
  local fname = vim.uri_to_fname(params.uri)
  if params.external then
    return { success = false }
  end
  vim.schedule(function()
    vim.cmd('edit ' .. vim.fn.fnameescape(fname))
    if params.selection and params.selection.start then
      local pos = params.selection.start
      pcall(vim.api.nvim_win_set_cursor, 0, { pos.line + 1, 0 })
    end
  end)
  return { success = true }
end

--- A settings table as JSON wants it: Neovim encodes an empty Lua table as `[]`, which the
--- server rightly refuses as a settings table, so an empty one becomes `{}`.
local function as_object(settings)
  if settings == nil or (type(settings) == 'table' and next(settings) == nil) then
    return vim.empty_dict()
  end
  return settings
end

local function client_config(root)
  local caps, negotiates = capabilities()
  local handlers = {}
  if not has('nvim-0.8') then
    handlers['window/showDocument'] = show_document
  end
  return {
    name = M.name,
    cmd = config.cmd,
    root_dir = root,
    workspace_folders = {
      { uri = vim.uri_from_fname(root), name = vim.fn.fnamemodify(root, ':t') },
    },
    capabilities = caps,
    handlers = handlers,
    settings = { conductor = as_object(config.settings) },
    init_options = as_object(config.init_options or config.settings),
    flags = { debounce_text_changes = config.debounce_text_changes },
    on_init = function(client, result)
      local encoding = result and result.capabilities and result.capabilities.positionEncoding
      if not negotiates and encoding then
        client.offset_encoding = encoding
      end
    end,
    on_attach = config.on_attach,
  }
end

--- Starts (or reuses) the client for `bufnr`'s workspace and attaches the buffer. Returns the
--- client id, or nil when the buffer has no file or the server could not be started.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local path = vim.api.nvim_buf_get_name(bufnr)
  if path == '' or vim.bo[bufnr].buftype ~= '' then
    return nil
  end
  local root = M.find_root(vim.fn.fnamemodify(path, ':p'))
  if vim.fn.executable(config.cmd[1]) ~= 1 then
    notify(
      string.format('`%s` is not executable; install Conductor or set `cmd` in setup()', config.cmd[1]),
      vim.log.levels.ERROR
    )
    return nil
  end
  if vim.lsp.start then
    -- 0.8+: reuses a running client with the same name and root.
    return vim.lsp.start(client_config(root), { bufnr = bufnr })
  end
  for _, client in ipairs(all_clients()) do
    if client.config.root_dir == root and not call(client, 'is_stopped') then
      vim.lsp.buf_attach_client(bufnr, client.id)
      return client.id
    end
  end
  local id = vim.lsp.start_client(client_config(root))
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

--- The options in effect (after `setup()`), read by `:checkhealth conductor`.
function M.config()
  return config
end

--- Stops every Conductor client (what `:ConductorStop` runs).
function M.stop()
  for _, client in ipairs(all_clients()) do
    call(client, 'stop')
  end
end

--- Replaces the `conductor` settings section and tells the running servers
--- (`workspace/didChangeConfiguration`); they re-read it through `workspace/configuration`.
function M.set_settings(settings)
  config.settings = as_object(settings)
  for _, client in ipairs(all_clients()) do
    -- 0.11+ answers `workspace/configuration` from `client.settings`, earlier versions from
    -- `client.config.settings`.
    client.config.settings = { conductor = config.settings }
    if client.settings ~= nil then
      client.settings = client.config.settings
    end
    call(client, 'notify', 'workspace/didChangeConfiguration', { settings = client.config.settings })
  end
end

local function supports_command(client, command)
  local provider = client.server_capabilities and client.server_capabilities.executeCommandProvider
  return provider ~= nil and vim.tbl_contains(provider.commands or {}, command)
end

--- The argument every Conductor command receives: `{ uri, range, goal? }` — the document, the
--- selected lines (from the start of the first line to the start of the line after the last,
--- which needs no position encoding), and an optional goal typed after the command.
local function command_arguments(bufnr, line1, line2, goal)
  local argument = {
    uri = vim.uri_from_bufnr(bufnr),
    range = {
      start = { line = line1 - 1, character = 0 },
      ['end'] = { line = line2, character = 0 },
    },
  }
  if goal ~= nil and goal ~= '' then
    argument.goal = goal
  end
  return { argument }
end

--- The outcome of the last command run through `execute`: `{ command, err, result }`. Each
--- answer also fires `User ConductorCommandDone`, for statuslines and scripts.
M.last_result = nil

--- Runs a server command for `bufnr` (0: current). `arguments` defaults to the document and
--- the current line. `on_result(err, result)` is optional; without it errors are shown.
function M.execute(command, arguments, bufnr, on_result)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = M.clients(bufnr)[1] or all_clients()[1]
  if not client then
    notify('no Conductor server is running for this buffer', vim.log.levels.WARN)
    return false
  end
  if not supports_command(client, command) then
    notify(string.format('this server does not implement `%s`', command), vim.log.levels.WARN)
    return false
  end
  if arguments == nil then
    local line = vim.api.nvim_win_get_cursor(0)[1]
    arguments = command_arguments(bufnr, line, line, nil)
  end
  call(client, 'request', 'workspace/executeCommand', { command = command, arguments = arguments }, function(err, result)
    M.last_result = { command = command, err = err, result = result }
    if on_result then
      on_result(err, result)
    elseif err then
      notify(string.format('%s failed: %s', command, err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif type(result) == 'table' and (result.run_id or result.runId) then
      notify(string.format('%s started run %s', command, result.run_id or result.runId))
    end
    vim.cmd('doautocmd <nomodeline> User ConductorCommandDone')
  end, bufnr)
  return true
end

local function define_commands()
  for name, command in pairs(M.commands) do
    vim.api.nvim_create_user_command(name, function(args)
      local bufnr = vim.api.nvim_get_current_buf()
      local arguments = command_arguments(bufnr, args.line1, args.line2, args.args)
      M.execute(command, arguments, bufnr)
    end, { nargs = '*', range = true, desc = 'Conductor: ' .. command })
  end
  vim.api.nvim_create_user_command('ConductorStop', function()
    M.stop()
  end, { desc = 'Conductor: stop the language server' })
  vim.api.nvim_create_user_command('ConductorStart', function()
    M.attach(0)
  end, { desc = 'Conductor: start the language server for this buffer' })
end

--- Configures the plugin. Every option is optional; see `defaults` above.
function M.setup(opts)
  config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  -- Lists replace rather than merge.
  if opts and opts.cmd then
    config.cmd = opts.cmd
  end
  if opts and opts.filetypes then
    config.filetypes = opts.filetypes
  end
  if opts and opts.root_markers then
    config.root_markers = opts.root_markers
  end
  define_commands()
  augroup = vim.api.nvim_create_augroup('conductor', { clear = true })
  if config.autostart then
    vim.api.nvim_create_autocmd('FileType', {
      group = augroup,
      pattern = config.filetypes,
      callback = function(args)
        M.attach(args.buf)
      end,
      desc = 'Conductor: start the language server',
    })
  end
end

return M
