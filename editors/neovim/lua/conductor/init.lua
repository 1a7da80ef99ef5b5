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

--- User command name → server command (`workspace/executeCommand`). The server announces the
--- ones it implements in `executeCommandProvider.commands`; the others answer with a message
--- saying that this server does not offer them, instead of a protocol error.
M.commands = {
  ConductorGoal = 'conductor.orchestrate',
  ConductorPlan = 'conductor.plan',
  ConductorTests = 'conductor.writeTests',
  ConductorFix = 'conductor.fix',
  ConductorReview = 'conductor.review',
  ConductorExplain = 'conductor.explain',
  ConductorContext = 'conductor.showContext',
  ConductorScan = 'conductor.scanWorkspace',
  ConductorRunTests = 'conductor.runTests',
  ConductorCancel = 'conductor.cancel',
  ConductorRuns = 'conductor.runs',
  ConductorRunPlan = 'conductor.runPlan',
  ConductorMarkReviewed = 'conductor.markReviewed',
  ConductorRevert = 'conductor.revert',
  ConductorShowRun = 'conductor.showRun',
}

--- What each server command needs from the editor: `goal` (the lines and a goal, asked with
--- `vim.ui.input` when none is typed), `selection` (the lines), `diagnostic` (the Conductor
--- finding under the cursor), `run` (a run id: typed, the active run, or picked from
--- `conductor.runs`) or `none`.
M.inputs = {
  ['conductor.orchestrate'] = 'goal',
  ['conductor.plan'] = 'goal',
  ['conductor.writeTests'] = 'selection',
  ['conductor.fix'] = 'diagnostic',
  ['conductor.review'] = 'selection',
  ['conductor.explain'] = 'selection',
  ['conductor.showContext'] = 'selection',
  ['conductor.scanWorkspace'] = 'none',
  ['conductor.runTests'] = 'selection',
  ['conductor.cancel'] = 'run',
  ['conductor.runs'] = 'none',
  ['conductor.runPlan'] = 'run',
  ['conductor.markReviewed'] = 'selection',
  ['conductor.revert'] = 'run',
  ['conductor.showRun'] = 'run',
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
  local handlers = { ['$/progress'] = M.progress_handler }
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

--- Whether a running Conductor server for `bufnr` (0: current) announces `command`.
function M.announces(command, bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = M.clients(bufnr)[1] or all_clients()[1]
  return client ~= nil and supports_command(client, command)
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

--- Runs are followed through their `$/progress` (title "Conductor run <id>: <goal>"):
--- progress token → `{ run_id, goal, message, ended, token, client_id }`.
M.runs = {}

local function run_by_id(run_id)
  for _, run in pairs(M.runs) do
    if run.run_id == run_id then
      return run
    end
  end
  return nil
end

--- The newest run that has not ended, or nil.
function M.active_run()
  local newest = nil
  for _, run in pairs(M.runs) do
    if not run.ended and (newest == nil or run.seq > newest.seq) then
      newest = run
    end
  end
  return newest
end

--- A statusline part for the active run ("coding 2/3 · 4.1k tokens · $0.01"), or ''.
function M.status()
  local run = M.active_run()
  if not run then
    return ''
  end
  return 'Conductor: ' .. (run.message or 'starting')
end

local run_seq = 0
local function track_run(token, fields, client_id)
  local key = tostring(token)
  local run = M.runs[key]
  if not run then
    run_seq = run_seq + 1
    run = { token = token, seq = run_seq, client_id = client_id }
    M.runs[key] = run
  end
  for k, v in pairs(fields) do
    run[k] = v
  end
  return run
end

local function fire(pattern)
  vim.cmd('doautocmd <nomodeline> User ' .. pattern)
end

--- The `$/progress` handler of Conductor's clients: Neovim's own (which feeds `LspProgress`,
--- `vim.lsp.status()` and, before 0.10, `vim.lsp.util.get_progress_messages()`), plus the run
--- tracking above and a message when a run ends, since Neovim before 0.10 shows no progress
--- unless a plugin does.
function M.progress_handler(err, result, ctx, handler_config)
  local default = vim.lsp.handlers['$/progress']
  local answer = nil
  if default and default ~= M.progress_handler then
    answer = default(err, result, ctx, handler_config)
  end
  local value = result and result.value
  if type(value) ~= 'table' then
    return answer
  end
  local token = result.token
  local known = M.runs[tostring(token)]
  if value.kind == 'begin' then
    local id, goal = tostring(value.title or ''):match('^Conductor run ([^%s:]+):?%s*(.*)$')
    if id then
      known = track_run(token, { run_id = (known and known.run_id) or id, goal = goal ~= '' and goal or nil }, ctx.client_id)
    end
  end
  if not known then
    return answer
  end
  if value.message then
    known.message = value.message
  end
  if value.kind == 'end' then
    known.ended = value.message or 'done'
    vim.schedule(function()
      notify(string.format('run %s: %s', known.run_id or '?', known.ended))
    end)
  end
  vim.schedule(function()
    fire('ConductorProgress')
  end)
  return answer
end

--- Runs a server command for `bufnr` (0: current). `arguments` defaults to the document and
--- the current line. `on_result(err, result)` is optional; without it errors are shown.
function M.execute(command, arguments, bufnr, on_result)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = M.clients(bufnr)[1] or all_clients()[1]
  if not client then
    notify('no Conductor server is running for this buffer; open a Rust file or run :ConductorStart', vim.log.levels.WARN)
    return false
  end
  if not supports_command(client, command) then
    notify(
      string.format(
        'the running server does not offer `%s` (it announces: %s); a newer Conductor may',
        command,
        table.concat(((client.server_capabilities or {}).executeCommandProvider or {}).commands or {}, ', ')
      ),
      vim.log.levels.WARN
    )
    return false
  end
  if arguments == nil then
    local line = vim.api.nvim_win_get_cursor(0)[1]
    arguments = command_arguments(bufnr, line, line, nil)
  end
  call(client, 'request', 'workspace/executeCommand', { command = command, arguments = arguments }, function(err, result)
    M.last_result = { command = command, err = err, result = result }
    local run_id = type(result) == 'table' and (result.runId or result.run_id) or nil
    if err == nil and type(run_id) == 'string' and result.token ~= nil and result.token ~= vim.NIL then
      track_run(result.token, { run_id = run_id }, client.id)
    end
    if on_result then
      on_result(err, result)
    elseif err then
      notify(string.format('%s failed: %s', command, err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif type(run_id) == 'string' then
      notify(string.format('%s started run %s', command, run_id))
    elseif command == 'conductor.cancel' and type(result) == 'table' and result.cancelled == false then
      notify('that run had already finished')
    end
    fire('ConductorCommandDone')
  end, bufnr)
  return true
end

--- A `// conductor: <goal>` comment on lines `line1`..`line2`, to offer as the goal.
local function goal_from_comment(bufnr, line1, line2)
  for _, text in ipairs(vim.api.nvim_buf_get_lines(bufnr, line1 - 1, line2, false)) do
    local goal = text:match('//%s*conductor:%s*(.-)%s*$')
    if goal and goal ~= '' then
      return goal
    end
  end
  return nil
end

--- An LSP position from a `vim.diagnostic` byte position, in the client's encoding.
local function lsp_position(bufnr, lnum, col, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, lnum, lnum + 1, false)[1] or ''
  col = math.min(col or 0, #line)
  if encoding == 'utf-8' then
    return { line = lnum, character = col }
  end
  local utf32, utf16 = vim.str_utfindex(line, col)
  return { line = lnum, character = encoding == 'utf-32' and utf32 or utf16 }
end

--- The LSP diagnostic behind a `vim.diagnostic` item: kept whole by Neovim 0.10+, rebuilt
--- from its parts (and the fields 0.7–0.9 keep in `user_data.lsp`) before.
local function lsp_diagnostic(bufnr, d, encoding)
  local kept = d.user_data and d.user_data.lsp or {}
  if kept.range and kept.message then
    return kept
  end
  return {
    range = {
      start = lsp_position(bufnr, d.lnum, d.col, encoding),
      ['end'] = lsp_position(bufnr, d.end_lnum or d.lnum, d.end_col or d.col, encoding),
    },
    severity = d.severity,
    code = kept.code or d.code,
    codeDescription = kept.codeDescription,
    source = d.source,
    message = d.message,
    relatedInformation = kept.relatedInformation,
    tags = kept.tags,
    data = kept.data,
  }
end

--- The Conductor findings on the cursor's line of `bufnr`, those under the cursor first.
function M.findings_at_cursor(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local under, beside = {}, {}
  for _, d in ipairs(vim.diagnostic.get(bufnr, { lnum = row })) do
    if d.source == 'conductor' then
      local starts = d.lnum < row or d.col <= col
      local ends = (d.end_lnum or d.lnum) > row or (d.end_col or d.col) >= col
      table.insert((starts and ends) and under or beside, d)
    end
  end
  vim.list_extend(under, beside)
  return under
end

--- Picks one of `items` with `vim.ui.select` (at once when there is one), then `on_choice`.
local function pick(items, prompt, format, on_choice)
  if #items == 1 then
    on_choice(items[1])
    return
  end
  vim.ui.select(items, { prompt = prompt, format_item = format }, function(item)
    if item then
      on_choice(item)
    end
  end)
end

local function format_run(run)
  local parts = { run.id, run.active and 'active' or run.state, run.goal }
  if type(run.tokens) == 'number' then
    table.insert(parts, run.tokens .. ' tokens')
  end
  if type(run.costUsd) == 'number' then
    table.insert(parts, string.format('$%.2f', run.costUsd))
  end
  return table.concat(vim.tbl_filter(function(p)
    return p ~= nil and p ~= vim.NIL and p ~= ''
  end, parts), ' · ')
end

--- Asks the server for its runs (`conductor.runs`) and lets the user pick one passing `keep`.
local function pick_run(bufnr, prompt, keep, on_choice)
  if not M.announces('conductor.runs', bufnr) then
    notify('no run id given, none is active, and this server cannot list its runs', vim.log.levels.WARN)
    return
  end
  M.execute('conductor.runs', {}, bufnr, function(err, result)
    if err then
      notify('conductor.runs failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    local runs = vim.tbl_filter(keep, type(result) == 'table' and result.runs or {})
    if #runs == 0 then
      notify('no run to choose from')
      return
    end
    pick(runs, prompt, format_run, on_choice)
  end)
end

--- Opens a run's journal: the path `conductor.runs` gives, else `.conductor/runs/<id>.jsonl`
--- under the workspace root.
local function open_journal(bufnr, run)
  local path = type(run.journal) == 'string' and run.journal ~= '' and run.journal or nil
  if not path then
    local client = M.clients(bufnr)[1] or all_clients()[1]
    local root = client and client.config.root_dir or vim.fn.getcwd()
    path = root .. '/.conductor/runs/' .. run.id .. '.jsonl'
  end
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
end

--- Runs the user command for `command` as typed: `args` is what `nvim_create_user_command`
--- passes (`args.args` the text after the command, `line1`/`line2` the range).
function M.run_user_command(command, args)
  local bufnr = vim.api.nvim_get_current_buf()
  local input = M.inputs[command] or 'selection'
  local text = vim.trim(args.args or '')
  if not M.announces(command, bufnr) then
    -- `execute` says why (no server, or a server without this command).
    return M.execute(command, nil, bufnr)
  end
  if input == 'none' then
    if command == 'conductor.runs' then
      return M.execute(command, {}, bufnr, function(err, result)
        if err then
          notify('conductor.runs failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
          return
        end
        local runs = type(result) == 'table' and result.runs or {}
        if #runs == 0 then
          notify('no runs yet in this workspace')
          return
        end
        vim.ui.select(runs, { prompt = 'Conductor runs (opens the journal)', format_item = format_run }, function(run)
          if run then
            open_journal(bufnr, run)
          end
        end)
      end)
    end
    return M.execute(command, {}, bufnr)
  end
  if input == 'goal' then
    local arguments = command_arguments(bufnr, args.line1, args.line2, text)
    if text ~= '' then
      return M.execute(command, arguments, bufnr)
    end
    vim.ui.input({ prompt = 'Conductor goal: ', default = goal_from_comment(bufnr, args.line1, args.line2) }, function(goal)
      if goal and vim.trim(goal) ~= '' then
        arguments[1].goal = vim.trim(goal)
        M.execute(command, arguments, bufnr)
      end
    end)
    return true
  end
  if input == 'diagnostic' then
    local client = M.clients(bufnr)[1]
    local findings = M.findings_at_cursor(bufnr)
    if #findings == 0 or not client then
      notify('put the cursor on a Conductor security finding first', vim.log.levels.WARN)
      return false
    end
    pick(findings, 'Which finding?', function(d)
      return string.format('%s: %s', tostring(d.code or ''), d.message)
    end, function(d)
      M.execute(command, { { uri = vim.uri_from_bufnr(bufnr), diagnostic = lsp_diagnostic(bufnr, d, client.offset_encoding) } }, bufnr)
    end)
    return true
  end
  if input == 'run' then
    if text ~= '' then
      return M.execute(command, { { runId = text } }, bufnr)
    end
    -- On a run's plan document (`.conductor/runs/<id>/plan.md`) that run is meant.
    local plan_of = vim.api.nvim_buf_get_name(bufnr):match('/%.conductor/runs/([^/]+)/plan%.md$')
    if command == 'conductor.runPlan' and plan_of then
      return M.execute(command, { { runId = plan_of } }, bufnr)
    end
    local active = M.active_run()
    if command == 'conductor.cancel' and active then
      return M.execute(command, { { runId = active.run_id } }, bufnr)
    end
    local keep = function(run)
      if command == 'conductor.cancel' then
        return run.active == true
      end
      return run.active ~= true
    end
    pick_run(bufnr, 'Which run?', keep, function(run)
      M.execute(command, { { runId = run.id } }, bufnr)
    end)
    return true
  end
  -- A review without a range is of the whole file (the server reviews only the lines of a
  -- range it is given, and the cursor's line alone is rarely what is meant).
  if command == 'conductor.review' and (args.range or 0) == 0 then
    return M.execute(command, { { uri = vim.uri_from_bufnr(bufnr) } }, bufnr)
  end
  return M.execute(command, command_arguments(bufnr, args.line1, args.line2, text), bufnr)
end

--- Cancels the active run (or `run_id`): with `conductor.cancel` when the server announces it,
--- else through the progress (`window/workDoneProgress/cancel`).
function M.cancel(run_id)
  local run = run_id and run_by_id(run_id) or M.active_run()
  if M.announces('conductor.cancel') then
    if run_id or run then
      return M.execute('conductor.cancel', { { runId = run_id or run.run_id } })
    end
    pick_run(0, 'Cancel which run?', function(r)
      return r.active == true
    end, function(r)
      M.execute('conductor.cancel', { { runId = r.id } })
    end)
    return true
  end
  if not run then
    notify('no run is active', vim.log.levels.WARN)
    return false
  end
  local client = vim.lsp.get_client_by_id(run.client_id or -1)
  if not client then
    notify('the server of that run is gone', vim.log.levels.WARN)
    return false
  end
  call(client, 'notify', 'window/workDoneProgress/cancel', { token = run.token })
  return true
end

--- Defines the user commands (again: redefining replaces them). Called by `setup()` and by
--- `lsp/conductor.lua` when a buffer attaches.
function M.define_commands()
  for name, command in pairs(M.commands) do
    local desc = 'Conductor: ' .. command
    if command == 'conductor.cancel' then
      vim.api.nvim_create_user_command(name, function(args)
        local text = vim.trim(args.args or '')
        M.cancel(text ~= '' and text or nil)
      end, { nargs = '?', desc = desc })
    else
      vim.api.nvim_create_user_command(name, function(args)
        M.run_user_command(command, args)
      end, { nargs = '*', range = true, desc = desc })
    end
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
  M.define_commands()
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
