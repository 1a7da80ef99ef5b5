--- End-to-end check of the real `conductor` binary under Neovim's built-in LSP client, through
--- the plugin in `editors/neovim`. Run by `tests/editors/run-neovim.sh`, one scenario per Neovim
--- process:
---
---   CONDUCTOR_E2E_SCENARIO  `utf8`: the plugin's defaults (UTF-8 offered, negotiated);
---                           `utf16`: a client that offers only UTF-16 (`conductor --stdio`);
---                           `noencoding`: one that offers none (`conductor lsp --stdio`);
---                           `crlf`: a buffer with DOS line endings;
---                           `native`: no plugin, the README's `vim.lsp.config` snippet (0.11+);
---                           `enable`: `vim.lsp.enable('conductor')` with `lsp/conductor.lua` (0.11+);
---                           `security`: a file with a known finding: its diagnostic (code,
---                           message, CWE link), its hover, its quick fix and Fix with agents;
---                           `run`: `:ConductorGoal` against the scripted model server: the
---                           applied edit and the decision hover;
---                           `cancel`: a run cancelled mid-way changes nothing;
---                           `orphan`: start the server, write its pid, then wait to be killed;
---                           `orphan-pending`: the same while the server awaits an answer to
---                           its `workspace/configuration` request.
---   CONDUCTOR_E2E_BIN       the conductor binary
---   CONDUCTOR_E2E_WORKSPACE a scratch copy of the workspace to open
---   CONDUCTOR_E2E_FILE      the Rust file (inside the workspace) to edit
---   CONDUCTOR_E2E_RESULTS   file to append `ok <name>` / `not ok <name>: <why>` lines to
---   CONDUCTOR_E2E_PIDFILE   file to write the server's pid to, for the checks after Neovim exits
---   CONDUCTOR_E2E_MODEL_URL the scripted model server's base URL (`run` and `cancel` only)
---
--- Every wait is bounded; a failed check is recorded and the scenario goes on where it can.

local env = function(name)
  local value = os.getenv(name)
  if value == nil or value == '' then
    io.stderr:write('e2e.lua: ' .. name .. ' is not set\n')
    vim.cmd('cquit 2')
  end
  return value
end

local scenario = env('CONDUCTOR_E2E_SCENARIO')
local bin = env('CONDUCTOR_E2E_BIN')
local workspace = env('CONDUCTOR_E2E_WORKSPACE')
local file = env('CONDUCTOR_E2E_FILE')
local results_path = env('CONDUCTOR_E2E_RESULTS')
local pidfile = env('CONDUCTOR_E2E_PIDFILE')
-- Scratch files go beside the file under test, so they share its crate and its server.
local file_dir = vim.fn.fnamemodify(file, ':h')

local TIMEOUT_MS = 20000
local failures = 0

local function record(line)
  local out = io.open(results_path, 'a')
  if out then
    out:write(line, '\n')
    out:close()
  end
  io.stderr:write('[' .. scenario .. '] ' .. line .. '\n')
end

--- Runs one named check; a Lua error inside it (from `expect` or anything else) fails it.
local function check(name, fn)
  local ok, err = pcall(fn)
  if ok then
    record('ok ' .. scenario .. ': ' .. name)
  else
    failures = failures + 1
    record('not ok ' .. scenario .. ': ' .. name .. ': ' .. tostring(err):gsub('\n', ' | '))
  end
  return ok
end

--- Records a check that does not apply to this server yet (a capability it does not announce).
local function skip(name, why)
  record('skip ' .. scenario .. ': ' .. name .. ': ' .. why)
end

local function expect(condition, message, ...)
  if not condition then
    error(string.format(message, ...), 2)
  end
end

local function finish()
  -- `qa!` runs VimLeavePre, where Neovim shuts its clients down; the shell script then checks
  -- that the server process is gone.
  if failures > 0 then
    vim.cmd('cquit 1')
  else
    vim.cmd('qa!')
  end
end

local has = function(feature)
  return vim.fn.has(feature) == 1
end

local function call(client, method, ...)
  if has('nvim-0.11') then
    return client[method](client, ...)
  end
  return client[method](...)
end

--- A synchronous request with its own timeout, returning (result, error).
local function request(client, method, params, bufnr)
  local done, result, failure = false, nil, nil
  call(client, 'request', method, params, function(err, res)
    done, result, failure = true, res, err
  end, bufnr)
  if not vim.wait(TIMEOUT_MS, function()
    return done
  end, 10) then
    error(method .. ' got no answer within ' .. TIMEOUT_MS .. ' ms', 2)
  end
  return result, failure
end

local function buffer_text(bufnr)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, true)
  local eol = vim.bo[bufnr].fileformat == 'dos' and '\r\n' or '\n'
  local text = table.concat(lines, eol)
  -- What Neovim itself sends as the full text: the final line ending only when 'eol' is set.
  if vim.bo[bufnr].eol then
    text = text .. eol
  end
  return text
end

--- The first difference between two strings, for a readable failure.
local function first_difference(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    if a:byte(i) ~= b:byte(i) then
      return string.format(
        'first difference at byte %d: server %q, editor %q',
        i - 1,
        a:sub(math.max(1, i - 20), i + 20),
        b:sub(math.max(1, i - 20), i + 20)
      )
    end
  end
  return string.format('lengths differ: server %d bytes, editor %d bytes', #a, #b)
end

--- Compares the server's text with the buffer's. `final_newline_may_differ` is for edits where
--- Neovim's own incremental sync assumes every line ends with a newline: at the end of a file
--- without one, and (0.7) when every line is deleted. There Neovim sends a change whose result
--- differs from its buffer by the final newline; the server applies what it was sent.
local function expect_in_sync(client, bufnr, what, final_newline_may_differ)
  local result, err = request(client, 'conductor/debugDocument', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
  }, bufnr)
  expect(err == nil, '%s: debugDocument failed: %s', what, vim.inspect(err))
  expect(type(result) == 'table', '%s: debugDocument returned %s', what, vim.inspect(result))
  local editor = buffer_text(bufnr)
  if final_newline_may_differ and result.text ~= editor then
    local eol = vim.bo[bufnr].fileformat == 'dos' and '\r\n' or '\n'
    if result.text == editor .. eol or result.text .. eol == editor then
      return result
    end
  end
  expect(result.text == editor, '%s: the server text differs from the buffer; %s', what, first_difference(result.text or '', editor))
  local versions = vim.lsp.util.buf_versions
  local version = versions and versions[bufnr]
  if version ~= nil then
    expect(result.version == version, '%s: server has version %s, editor sent %s', what, tostring(result.version), tostring(version))
  end
  return result
end

--- Pumps the event loop so that Neovim's change tracking has seen every edit; the request that
--- follows flushes pending changes first.
local function settle()
  vim.wait(20, function()
    return false
  end)
end

-- Deterministic pseudo-random numbers (Lua 5.1's math.random differs between builds).
local seed = 20261124
local function random(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n + 1
end

local pieces = { 'a', 'é', '中', '😀', ' ', 'fn x() {}', '\n', 'ß', '𝄞', '\t', 'naïve', '\n\n' }

--- Inserts or deletes text at a random character position, never splitting a character.
local function random_edit(bufnr)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, true)
  local row = random(#lines) - 1
  local line = lines[row + 1]
  local chars = vim.fn.strchars(line)
  local col_char = random(chars + 1) - 1
  local col = vim.str_byteindex(line, col_char)
  if random(3) == 1 and (chars > 0 or #lines > 1) then
    -- Delete up to 3 characters, possibly across the end of the line.
    local end_row, end_col = row, col
    local count = random(3)
    local rest = chars - col_char
    if count <= rest then
      end_col = vim.str_byteindex(line, col_char + count)
    elseif row + 1 < #lines then
      end_row, end_col = row + 1, 0
    else
      end_col = #line
    end
    vim.api.nvim_buf_set_text(bufnr, row, col, end_row, end_col, { '' })
  else
    local piece = pieces[random(#pieces)]
    vim.api.nvim_buf_set_text(bufnr, row, col, row, col, vim.split(piece, '\n', { plain = true }))
  end
end

-- Neovim in this test: no user config, no swap files, the plugin from the repository.
vim.o.swapfile = false
vim.o.hidden = true
vim.cmd('filetype on')

local conductor = require('conductor')

-- Headless Neovim cannot answer a prompt (`inputlist` would wait for ever): `vim.ui.select`
-- and `vim.ui.input` answer at once, the way a user would, and remember what was asked.
-- `ui.input_answer` is what the next input prompt gets (nil: the user cancels).
local ui = { selects = {}, inputs = {}, input_answer = nil }
vim.ui.select = function(items, opts, on_choice)
  table.insert(ui.selects, { prompt = opts and opts.prompt, count = #items })
  on_choice(nil, nil)
end
vim.ui.input = function(opts, on_confirm)
  table.insert(ui.inputs, { prompt = opts and opts.prompt, default = opts and opts.default })
  local answer = ui.input_answer
  ui.input_answer = nil
  on_confirm(answer)
end

local seen = { configuration = 0, messages = {}, progress = 0 }
local function wrap_handler(method, fn)
  local original = vim.lsp.handlers[method]
  vim.lsp.handlers[method] = function(err, result, ctx, cfg)
    fn(result)
    if original then
      return original(err, result, ctx, cfg)
    end
  end
end
wrap_handler('workspace/configuration', function()
  seen.configuration = seen.configuration + 1
end)
wrap_handler('window/showMessage', function(result)
  table.insert(seen.messages, result and result.message or '')
end)
wrap_handler('$/progress', function()
  seen.progress = seen.progress + 1
end)
seen.edits = 0
wrap_handler('workspace/applyEdit', function()
  seen.edits = seen.edits + 1
end)

require('vim.lsp.log').set_level(os.getenv('CONDUCTOR_E2E_LSP_LOG') or 'warn')

local opts = {
  cmd = { bin, 'lsp' },
  settings = { log = { level = 'info' } },
  debounce_text_changes = 0,
}
if scenario == 'noencoding' then
  -- The plugin's default: no settings at all.
  opts.settings = nil
end
if scenario == 'run' or scenario == 'cancel' or scenario == 'security' then
  -- Every agent talks to the scripted model server on loopback, with one attempt per request
  -- so that a script mistake fails at once rather than after retries.
  opts.settings.model = {
    base_url = os.getenv('CONDUCTOR_E2E_MODEL_URL'),
    model = 'test-model',
    max_attempts = 1,
  }
  -- These scenarios are about the editor's side of a run; the tester (a cargo build of the
  -- fixture) and the model review have their own end-to-end tests in the server's suite.
  opts.settings.tester = { enabled = false }
  opts.settings.review = { model = false }
end
if scenario == 'utf16' then
  -- A client that offers only UTF-16, started the short way.
  opts.capabilities = { general = { positionEncodings = { 'utf-16' } } }
  opts.cmd = { bin, '--stdio' }
elseif scenario == 'noencoding' then
  -- Like VS Code: no encodings offered (sent as null here), started as `conductor lsp --stdio`,
  -- which is the command line vscode-languageclient builds.
  opts.capabilities = { general = { positionEncodings = vim.NIL } }
  opts.cmd = { bin, 'lsp', '--stdio' }
end
if scenario == 'native' then
  -- The plugin-free set-up that editors/README.md and editors/neovim/README.md give for
  -- Neovim 0.11+, as written there but for the binary's path.
  if not vim.lsp.config then
    skip("the README's vim.lsp.config snippet", 'this Neovim has no vim.lsp.config (0.11+)')
    finish()
    return
  end
  vim.lsp.config('conductor', {
    cmd = { bin, 'lsp' },
    filetypes = { 'rust' },
    root_markers = { 'Cargo.toml', '.git' },
    settings = { conductor = { log = { level = 'info' } } },
  })
  vim.lsp.enable('conductor')
elseif scenario == 'enable' then
  -- editors/neovim/lsp/conductor.lua, as a user of Neovim 0.11+ would enable it: only the
  -- binary's path is configured here.
  if not vim.lsp.enable then
    skip("vim.lsp.enable('conductor') with lsp/conductor.lua", 'this Neovim has no vim.lsp.enable (0.11+)')
    finish()
    return
  end
  vim.lsp.config('conductor', { cmd = { bin, 'lsp' } })
  vim.lsp.enable('conductor')
else
  conductor.setup(opts)
end

local function wait_for_client(bufnr)
  local client
  local ok = vim.wait(TIMEOUT_MS, function()
    client = conductor.clients(bufnr)[1]
    return client ~= nil and (client.initialized == true or client.server_capabilities ~= nil)
  end, 20)
  expect(ok, 'no initialized Conductor client attached to the buffer within %d ms', TIMEOUT_MS)
  return client
end

local function process_alive(pid)
  local ok = (vim.uv or vim.loop).kill(pid, 0)
  return ok == 0 or ok == true
end

--- Server pid by client id. Neovim 0.7–0.9 expose it as `client.rpc.pid`; later versions do
--- not, so it is found among Neovim's child processes by the binary's name.
local server_pids = {}
local function server_pid(client)
  if server_pids[client.id] then
    return server_pids[client.id]
  end
  local pid = client.rpc and client.rpc.pid
  if pid == nil then
    local taken = {}
    for _, known in pairs(server_pids) do
      taken[known] = true
    end
    local name = vim.fn.fnamemodify(bin, ':t'):sub(1, 15)
    for _, child in ipairs(vim.api.nvim_get_proc_children(vim.fn.getpid())) do
      local proc = vim.api.nvim_get_proc(child)
      if proc and proc.name == name and not taken[child] and process_alive(child) then
        pid = child
      end
    end
  end
  expect(pid ~= nil, 'cannot find the server process of client %d', client.id)
  server_pids[client.id] = pid
  return pid
end

local function write_pid(client)
  local pid = server_pid(client)
  local out = assert(io.open(pidfile, 'a'))
  out:write(tostring(pid), '\n')
  out:close()
  return pid
end

if scenario == 'orphan-pending' then
  -- Never answer the server's first `workspace/configuration`: record the server's pid, then
  -- block inside the handler until the shell script kills this Neovim with SIGKILL. The server
  -- then has a request of its own outstanding when its input closes.
  vim.lsp.handlers['workspace/configuration'] = function(_, _, ctx)
    write_pid(vim.lsp.get_client_by_id(ctx.client_id))
    vim.wait(60000, function()
      return false
    end, 100)
    return vim.NIL
  end
end

vim.cmd('edit ' .. vim.fn.fnameescape(file))
local bufnr = vim.api.nvim_get_current_buf()
local client

local started = check('the server starts and initializes for a Rust buffer', function()
  expect(vim.bo[bufnr].filetype == 'rust', 'filetype is %q, not rust', vim.bo[bufnr].filetype)
  client = wait_for_client(bufnr)
  -- The workspace copy itself, or (for an examples/ folder holding several crates) the crate
  -- inside it that holds the file.
  local root = client.config.root_dir
  local inside = root == workspace
    or (root ~= nil and root:sub(1, #workspace + 1) == workspace .. '/' and vim.fn.filereadable(root .. '/Cargo.toml') == 1)
  expect(inside, 'root is %s, expected %s or a crate inside it', tostring(root), workspace)
  expect(file:sub(1, #root + 1) == root .. '/', 'root %s does not contain %s', root, file)
  write_pid(client)
end)
if not started then
  finish()
  return
end

if scenario == 'orphan' or scenario == 'orphan-pending' then
  -- The shell script kills this Neovim with SIGKILL; the server must notice its input closing.
  vim.wait(60000, function()
    return false
  end, 100)
  finish()
  return
end

check('negotiated capabilities', function()
  local caps = client.server_capabilities
  local expected = (scenario == 'utf16' or scenario == 'noencoding') and 'utf-16' or 'utf-8'
  expect(caps.positionEncoding == expected, 'positionEncoding is %s, expected %s', tostring(caps.positionEncoding), expected)
  expect(client.offset_encoding == expected, 'the client encodes positions as %s, expected %s', tostring(client.offset_encoding), expected)
  local sync = caps.textDocumentSync
  local change = type(sync) == 'table' and sync.change or sync
  expect(change == 2, 'textDocumentSync.change is %s, expected 2 (incremental)', tostring(change))
  expect(type(sync) ~= 'table' or sync.openClose == true, 'openClose is not true')
  local provider = caps.executeCommandProvider
  if provider ~= nil then
    for _, command in ipairs(provider.commands or {}) do
      expect(command:match('^conductor%.') ~= nil, 'command %q is not namespaced conductor.', command)
    end
  end
end)

check('the server sees the opened text', function()
  expect_in_sync(client, bufnr, 'after didOpen')
end)

check('the syntax tree is reported for the document', function()
  local result = request(client, 'conductor/debugDocument', { textDocument = { uri = vim.uri_from_bufnr(bufnr) } }, bufnr)
  expect(type(result.tree) == 'string' and result.tree:find('source_file') ~= nil, 'tree is %s', vim.inspect(result.tree))
end)

if scenario == 'enable' then
  check('lsp/conductor.lua defines the user commands once a buffer attaches', function()
    expect(vim.fn.exists(':ConductorGoal') == 2, ':ConductorGoal is not defined')
    expect(vim.fn.exists(':ConductorCancel') == 2, ':ConductorCancel is not defined')
  end)
end

-- The plugin-free scenarios have no plugin options for the health check to report on.
if scenario ~= 'native' and scenario ~= 'enable' then
  check(':checkhealth conductor reports the binary and the running server without errors', function()
    vim.cmd('silent checkhealth conductor')
    local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
    vim.cmd('silent tabclose')
    vim.cmd('buffer ' .. bufnr)
    expect(report:find('ERROR', 1, true) == nil, 'the report has an error:\n%s', report)
    expect(report:find(bin, 1, true) ~= nil, 'the report does not name the binary:\n%s', report)
    local encoding = client.offset_encoding
    expect(report:find('position encoding ' .. encoding, 1, true) ~= nil, 'the report does not show the running client:\n%s', report)
    expect(report:find('conductor doctor', 1, true) ~= nil and report:find('provider', 1, true) ~= nil,
      'the report has no provider status from conductor doctor:\n%s', report)
  end)
end

if scenario == 'security' then
  local finding
  local original = buffer_text(bufnr)
  local function lsp_code(d)
    return d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
  end
  check('the finding is a diagnostic with its rule id, message and CWE link', function()
    expect(vim.wait(TIMEOUT_MS, function()
      for _, d in ipairs(vim.diagnostic.get(bufnr)) do
        if d.source == 'conductor' and lsp_code(d) == 'rust/tls-verification-disabled' then
          finding = d
          return true
        end
      end
      return false
    end, 50), 'no rust/tls-verification-disabled diagnostic within %d ms; got %s', TIMEOUT_MS, vim.inspect(vim.diagnostic.get(bufnr)))
    expect(finding.lnum == 4, 'the finding is on line %d, expected 4 (0-based)', finding.lnum)
    expect(finding.message:find('certificate', 1, true) ~= nil, 'message: %s', finding.message)
    local description = finding.user_data and finding.user_data.lsp and finding.user_data.lsp.codeDescription
    local href = type(description) == 'table' and description.href or ''
    expect(href:find('cwe.mitre.org/data/definitions/295', 1, true) ~= nil, 'codeDescription is %s', vim.inspect(description))
  end)
  if finding then
    -- The file is ASCII, so byte columns are also UTF-8 and UTF-16 positions.
    local range = {
      start = { line = finding.lnum, character = finding.col },
      ['end'] = { line = finding.end_lnum or finding.lnum, character = finding.end_col or finding.col },
    }
    check('hovering the finding explains it, with its CWE', function()
      local hover = request(client, 'textDocument/hover', {
        textDocument = { uri = vim.uri_from_bufnr(bufnr) },
        position = { line = finding.lnum, character = finding.col + 2 },
      }, bufnr)
      expect(type(hover) == 'table', 'no hover: %s', vim.inspect(hover))
      local contents = hover.contents
      local text = type(contents) == 'string' and contents or (contents.value or vim.inspect(contents))
      expect(text:find('CWE-295', 1, true) ~= nil, 'the hover names no CWE-295: %s', text)
      expect(text:find('verification', 1, true) ~= nil, 'the hover does not explain the finding: %s', text)
    end)
    check('its quick fix applies to the buffer and the finding goes away', function()
      local diagnostic = {
        range = range,
        severity = finding.severity,
        code = lsp_code(finding),
        source = 'conductor',
        message = finding.message,
      }
      local actions = request(client, 'textDocument/codeAction', {
        textDocument = { uri = vim.uri_from_bufnr(bufnr) },
        range = range,
        context = { diagnostics = { diagnostic }, only = { 'quickfix' } },
      }, bufnr)
      local chosen
      for _, action in ipairs(actions or {}) do
        if action.title == 'Remove the call that disables verification' then
          chosen = action
        end
      end
      expect(chosen ~= nil, 'no "Remove the call" quick fix among %s', vim.inspect(actions))
      if chosen.edit == nil and chosen.data ~= nil then
        chosen = request(client, 'codeAction/resolve', chosen, bufnr)
      end
      expect(type(chosen.edit) == 'table', 'the quick fix has no edit: %s', vim.inspect(chosen))
      vim.lsp.util.apply_workspace_edit(chosen.edit, client.offset_encoding)
      local text = buffer_text(bufnr)
      expect(text:find('danger_accept_invalid_certs', 1, true) == nil, 'the call is still there:\n%s', text)
      expect(text:find('reqwest::Client::builder()', 1, true) ~= nil and text:find('.build()', 1, true) ~= nil,
        'the builder chain was damaged:\n%s', text)
      settle()
      expect_in_sync(client, bufnr, 'after the quick fix')
      expect(vim.wait(TIMEOUT_MS, function()
        for _, d in ipairs(vim.diagnostic.get(bufnr)) do
          if lsp_code(d) == 'rust/tls-verification-disabled' then
            return false
          end
        end
        return true
      end, 50), 'the finding is still shown %d ms after the fix', TIMEOUT_MS)
    end)
    if conductor.announces('conductor.fix', bufnr) then
      check(':ConductorFix (Fix with agents) fixes the finding under the cursor', function()
        vim.api.nvim_buf_set_lines(bufnr, 0, -1, true, vim.split(vim.trim(original), '\n', { plain = true }))
        local again
        expect(vim.wait(TIMEOUT_MS, function()
          for _, d in ipairs(vim.diagnostic.get(bufnr)) do
            if lsp_code(d) == 'rust/tls-verification-disabled' then
              again = d
              return true
            end
          end
          return false
        end, 50), 'the restored finding was not reported again')
        vim.api.nvim_win_set_cursor(0, { again.lnum + 1, again.col + 2 })
        vim.cmd('ConductorFix')
        expect(vim.wait(60000, function()
          return buffer_text(bufnr):find('danger_accept_invalid_certs', 1, true) == nil
        end, 50), 'the fix was not applied within 60 s (last answer %s):\n%s',
          vim.inspect(conductor.last_result), buffer_text(bufnr))
        local outcome = conductor.last_result
        expect(outcome.command == 'conductor.fix' and outcome.err == nil, 'conductor.fix answered %s', vim.inspect(outcome))
        settle()
        expect_in_sync(client, bufnr, 'after Fix with agents')
      end)
    else
      skip(':ConductorFix (Fix with agents)', 'the server does not announce conductor.fix')
    end
  end
  finish()
  return
end

if scenario == 'run' or scenario == 'cancel' then
  if not conductor.announces('conductor.orchestrate', bufnr) then
    skip(':ConductorGoal runs against the model server', 'the server does not announce conductor.orchestrate')
    finish()
    return
  end
  local before = buffer_text(bufnr)
  local run_id = nil
  local function the_run()
    local outcome = conductor.last_result
    if run_id == nil and outcome and outcome.command == 'conductor.orchestrate' and type(outcome.result) == 'table' then
      run_id = outcome.result.runId
    end
    local id = run_id
    for _, run in pairs(conductor.runs) do
      if id and run.run_id == id then
        return run
      end
    end
    return nil
  end
  check(':ConductorGoal starts a run and reports its progress', function()
    vim.api.nvim_win_set_cursor(0, { 3, 0 })
    -- No goal typed: the plugin asks for one with vim.ui.input.
    ui.input_answer = 'return 42'
    vim.cmd('1,3ConductorGoal')
    expect(#ui.inputs == 1 and tostring(ui.inputs[1].prompt):find('goal', 1, true) ~= nil,
      ':ConductorGoal without a goal did not ask for one: %s', vim.inspect(ui.inputs))
    expect(vim.wait(TIMEOUT_MS, function()
      return conductor.last_result ~= nil and conductor.last_result.command == 'conductor.orchestrate'
    end, 20), 'conductor.orchestrate got no answer')
    local outcome = conductor.last_result
    expect(outcome.err == nil, 'conductor.orchestrate failed: %s', vim.inspect(outcome.err))
    expect(type(outcome.result.runId) == 'string', 'no runId in %s', vim.inspect(outcome.result))
    expect(vim.wait(TIMEOUT_MS, function()
      return the_run() ~= nil and the_run().message ~= nil
    end, 20), 'no progress of run %s within %d ms', outcome.result.runId, TIMEOUT_MS)
  end)
  if scenario == 'run' then
    check('the run ends and its edit is applied to the buffer', function()
      expect(vim.wait(60000, function()
        return the_run() ~= nil and the_run().ended ~= nil
      end, 50), 'the run did not end within 60 s; last progress: %s', vim.inspect(the_run()))
      expect(vim.wait(TIMEOUT_MS, function()
        return buffer_text(bufnr):find('    42', 1, true) ~= nil
      end, 20), 'the edit was not applied (run ended with %q):\n%s', tostring(the_run().ended), buffer_text(bufnr))
      local expected = before:gsub('    41', '    42', 1)
      expect(buffer_text(bufnr) == expected, 'the buffer is not the expected change:\n%s', buffer_text(bufnr))
      expect(seen.edits >= 1, 'no workspace/applyEdit was received')
      settle()
      expect_in_sync(client, bufnr, 'after the run')
    end)
    -- The changed line hovers the decision that wrote it (issue 14).
    local function changed_line_hover()
      local hover = request(client, 'textDocument/hover', {
        textDocument = { uri = vim.uri_from_bufnr(bufnr) },
        position = { line = 1, character = 5 },
      }, bufnr)
      local contents = type(hover) == 'table' and hover.contents or ''
      return type(contents) == 'string' and contents or (contents.value or vim.inspect(contents))
    end
    check('hovering the changed line shows the decision record', function()
      local text = ''
      -- The journal is read when the run is presented; give the server a moment.
      vim.wait(5000, function()
        text = changed_line_hover()
        return text ~= ''
      end, 200)
      expect(text ~= '', 'no hover on the line the run wrote')
      expect(text:find('the goal asks for 42', 1, true) ~= nil, 'the hover has no decision rationale: %s', text)
      expect(text:find('a named constant', 1, true) ~= nil, 'the hover has no alternatives: %s', text)
    end)
  else
    check(':ConductorCancel stops the run mid-way and nothing changes', function()
      local run = the_run()
      expect(run ~= nil and run.ended == nil, 'the run is not active: %s', vim.inspect(run))
      vim.cmd('ConductorCancel')
      expect(vim.wait(TIMEOUT_MS, function()
        return the_run().ended ~= nil
      end, 20), 'the run did not end within %d ms of :ConductorCancel', TIMEOUT_MS)
      -- Anything the run could still send would come now.
      vim.wait(1500, function()
        return false
      end, 50)
      expect(seen.edits == 0, '%d workspace/applyEdit received after the cancel', seen.edits)
      expect(buffer_text(bufnr) == before, 'the buffer changed:\n%s', buffer_text(bufnr))
      expect_in_sync(client, bufnr, 'after the cancel')
    end)
  end
  finish()
  return
end

check('the settings at start-up raise no configuration problem', function()
  expect(vim.wait(TIMEOUT_MS, function()
    return seen.configuration > 0
  end, 20), 'the server never pulled workspace/configuration')
  expect_in_sync(client, bufnr, 'after the configuration pull')
  for _, message in ipairs(seen.messages) do
    expect(not message:find('configuration problem', 1, true), 'the server reported: %s', message)
  end
end)

if scenario == 'crlf' then
  check('CRLF buffer: edits across lines keep the server in sync', function()
    expect(vim.bo[bufnr].fileformat == 'dos', 'fileformat is %s', vim.bo[bufnr].fileformat)
    vim.api.nvim_buf_set_text(bufnr, 0, 0, 0, 0, { 'é中😀 // a', 'b' })
    vim.api.nvim_buf_set_lines(bufnr, 2, 3, true, {})
    settle()
    expect_in_sync(client, bufnr, 'after CRLF edits')
    for _ = 1, 100 do
      random_edit(bufnr)
    end
    settle()
    expect_in_sync(client, bufnr, 'after 100 random CRLF edits')
  end)
  finish()
  return
end

check('non-ASCII insertions and deletions keep the server in sync', function()
  vim.api.nvim_buf_set_lines(bufnr, 0, 0, true, { '// é中😀 naïve', '' })
  settle()
  expect_in_sync(client, bufnr, 'after inserting a line')
  -- Insert after the emoji, in the middle of the line.
  local line = vim.api.nvim_buf_get_lines(bufnr, 0, 1, true)[1]
  local after_emoji = vim.str_byteindex(line, 6)
  vim.api.nvim_buf_set_text(bufnr, 0, after_emoji, 0, after_emoji, { '😀é' })
  settle()
  expect_in_sync(client, bufnr, 'after inserting after an emoji')
  -- Delete the CJK character and the emoji after it.
  line = vim.api.nvim_buf_get_lines(bufnr, 0, 1, true)[1]
  local from, to = vim.str_byteindex(line, 4), vim.str_byteindex(line, 6)
  vim.api.nvim_buf_set_text(bufnr, 0, from, 0, to, { '' })
  settle()
  expect_in_sync(client, bufnr, 'after deleting 中😀')
  -- Join two lines and split one.
  vim.api.nvim_buf_set_text(bufnr, 0, #vim.api.nvim_buf_get_lines(bufnr, 0, 1, true)[1], 1, 0, { '' })
  vim.api.nvim_buf_set_text(bufnr, 0, 3, 0, 3, { '', '𝄞' })
  settle()
  expect_in_sync(client, bufnr, 'after joining and splitting lines')
end)

check('Unicode line and paragraph separators are not line breaks', function()
  -- LSP ends lines only at \n, \r\n and \r; U+2028, U+2029 and U+0085 are ordinary
  -- characters to Neovim and must be to the server, or every later position is off by a line.
  vim.api.nvim_buf_set_lines(bufnr, 0, 0, true, { '// a\u{2028}b\u{2029}c\u{85}d' })
  settle()
  local line = vim.api.nvim_buf_get_lines(bufnr, 0, 1, true)[1]
  vim.api.nvim_buf_set_text(bufnr, 0, #line, 0, #line, { ' 😀' })
  vim.api.nvim_buf_set_text(bufnr, 1, 0, 1, 0, { 'é' })
  settle()
  expect_in_sync(client, bufnr, 'after editing around U+2028, U+2029 and U+0085')
  vim.api.nvim_buf_set_lines(bufnr, 0, 1, true, {})
  settle()
  expect_in_sync(client, bufnr, 'after deleting that line')
end)

check('200 random edits with emoji, CJK and line breaks keep the server in sync', function()
  for round = 1, 4 do
    for _ = 1, 50 do
      random_edit(bufnr)
    end
    settle()
    expect_in_sync(client, bufnr, 'after round ' .. round)
  end
end)

if scenario == 'native' or scenario == 'enable' then
  finish()
  return
end

check('edits typed in insert mode are synced', function()
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  vim.cmd('normal! Olet s = "é中😀";')
  vim.cmd('normal! 0dw')
  vim.cmd('normal! u')
  settle()
  expect_in_sync(client, bufnr, 'after normal-mode edits and undo')
end)

check('whole-buffer commands keep the server in sync', function()
  local path = file_dir .. '/e2e_whole.rs'
  local out = assert(io.open(path, 'wb'))
  out:write('fn one() {}\n// e é\nfn two() {} // 中\n')
  out:close()
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local whole = vim.api.nvim_get_current_buf()
  wait_for_client(whole)
  vim.cmd('silent %s/e/é/g')
  settle()
  expect_in_sync(client, whole, 'after :%s/e/é/g')
  vim.cmd('silent %delete _')
  settle()
  expect_in_sync(client, whole, 'after deleting every line', true)
  vim.api.nvim_buf_set_lines(whole, 0, -1, true, { '😀' })
  settle()
  expect_in_sync(client, whole, 'after replacing the buffer with one emoji', true)
  vim.cmd('silent edit!')
  settle()
  expect_in_sync(client, whole, 'after reloading the file with :edit!')
  vim.cmd('buffer ' .. bufnr)
end)

check('a file without a final newline stays in sync at its end', function()
  local path = file_dir .. '/e2e_noeol.rs'
  local out = assert(io.open(path, 'wb'))
  out:write('fn a() {}\nfn b() {} // 中')
  out:close()
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local noeol = vim.api.nvim_get_current_buf()
  wait_for_client(noeol)
  expect(vim.bo[noeol].eol == false, "'eol' is set for a file without a final newline")
  expect_in_sync(client, noeol, 'after opening')
  vim.api.nvim_buf_set_lines(noeol, 2, 2, true, { 'fn c() {} // 😀' })
  settle()
  expect_in_sync(client, noeol, 'after appending a line', true)
  local line = vim.api.nvim_buf_get_lines(noeol, 2, 3, true)[1]
  vim.api.nvim_buf_set_text(noeol, 2, #line, 2, #line, { 'é' })
  settle()
  expect_in_sync(client, noeol, 'after typing at the very end', true)
  vim.api.nvim_buf_set_lines(noeol, 1, 3, true, {})
  settle()
  expect_in_sync(client, noeol, 'after deleting the last two lines', true)
  vim.cmd('buffer ' .. bufnr)
end)

check('settings changes are pulled with workspace/configuration', function()
  local before = seen.configuration
  conductor.set_settings({ log = { level = 'debug' } })
  expect(vim.wait(TIMEOUT_MS, function()
    return seen.configuration > before
  end, 20), 'no workspace/configuration request followed didChangeConfiguration')
end)

check('a bad setting is reported by key and the server keeps running', function()
  local before = #seen.messages
  conductor.set_settings({ log = { level = 'loud' } })
  expect(vim.wait(TIMEOUT_MS, function()
    for i = before + 1, #seen.messages do
      if seen.messages[i]:find('log.level', 1, true) then
        return true
      end
    end
    return false
  end, 20), 'no window/showMessage naming `log.level`; messages: %s', vim.inspect(seen.messages))
  conductor.set_settings({ log = { level = 'info' } })
  expect_in_sync(client, bufnr, 'after a bad setting')
end)

check('unknown and malformed requests are answered with errors, not silence', function()
  local _, err = request(client, 'conductor/noSuchMethod', {}, bufnr)
  expect(err ~= nil, 'an unknown method got a result instead of an error')
  _, err = request(client, 'conductor/debugDocument', { textDocument = { uri = 'file:///not/open.rs' } }, bufnr)
  expect(err ~= nil, 'debugDocument on a document that is not open did not fail')
  expect_in_sync(client, bufnr, 'after error responses')
end)

local caps = client.server_capabilities or {}
local here = { textDocument = { uri = vim.uri_from_bufnr(bufnr) }, position = { line = 2, character = 4 } }

if caps.hoverProvider then
  check('hover is answered', function()
    local _, err = request(client, 'textDocument/hover', here, bufnr)
    expect(err == nil, 'hover failed: %s', vim.inspect(err))
  end)
else
  skip('hover is answered', 'the server announces no hoverProvider')
end

local advertised = (caps.executeCommandProvider or {}).commands or {}
if caps.codeActionProvider then
  check('code actions are answered and name only announced conductor.* commands', function()
    local params = {
      textDocument = here.textDocument,
      range = { start = { line = 0, character = 0 }, ['end'] = { line = 3, character = 0 } },
      context = { diagnostics = {} },
    }
    local actions, err = request(client, 'textDocument/codeAction', params, bufnr)
    expect(err == nil, 'codeAction failed: %s', vim.inspect(err))
    for _, action in ipairs(actions or {}) do
      local command = action.command
      local name = type(command) == 'table' and command.command or command
      if type(name) == 'string' then
        expect(vim.tbl_contains(advertised, name), 'action %q runs %s, which the server does not announce', tostring(action.title), name)
      end
    end
  end)
else
  skip('code actions are answered', 'the server announces no codeActionProvider')
end

if #advertised > 0 then
  check('every announced command runs from its user command with an argument the server accepts', function()
    local answered = 0
    vim.api.nvim_create_autocmd('User', {
      pattern = 'ConductorCommandDone',
      callback = function()
        answered = answered + 1
      end,
    })
    local ran = 0
    for user_command, command in pairs(conductor.commands) do
      -- Commands on a finding or a run need one; the run scenarios drive those.
      local kind = conductor.inputs[command]
      if vim.tbl_contains(advertised, command) and kind ~= 'diagnostic' and kind ~= 'run' then
        ran = ran + 1
        vim.cmd('buffer ' .. bufnr)
        vim.api.nvim_win_set_cursor(0, { 3, 0 })
        local before = answered
        vim.cmd('1,3' .. user_command .. ' add a doc comment')
        expect(vim.wait(TIMEOUT_MS, function()
          return answered > before
        end, 20), ':%s (%s) got no answer within %d ms', user_command, command, TIMEOUT_MS)
        local outcome = conductor.last_result
        expect(outcome.command == command, 'the last answer is for %s, not %s', tostring(outcome.command), command)
        local err = outcome.err
        -- An error a user can act on (no model configured, no run to cancel) is an answer;
        -- "no such command" or a refused argument means the client and server disagree.
        if err then
          expect(err.code ~= -32601, '%s is announced but the server says it does not exist', command)
          expect(
            not (err.code == -32602 and tostring(err.message):find('argument', 1, true)),
            '%s refused the argument the plugin sends: %s',
            command,
            tostring(err.message)
          )
        end
        if command == 'conductor.showContext' then
          expect(err == nil, 'showContext failed: %s', vim.inspect(err))
          local path = type(outcome.result) == 'table' and outcome.result.path
          expect(type(path) == 'string' and vim.fn.filereadable(path) == 1, 'showContext returned no readable path: %s', vim.inspect(outcome.result))
          -- Neovim opens it through window/showDocument (the plugin's handler on 0.7).
          expect(vim.wait(TIMEOUT_MS, function()
            return vim.fn.bufexists(path) == 1
          end, 20), 'the context bundle %s was not opened in the editor', path)
        end
      end
    end
    expect(ran > 0, 'none of the announced commands %s has a user command', vim.inspect(advertised))
    vim.cmd('buffer ' .. bufnr)
    expect_in_sync(client, bufnr, 'after running the commands')
  end)
else
  skip('every announced command runs from its user command', 'the server announces no executeCommandProvider')
end

check('a second buffer in the same workspace reuses the server', function()
  local other = file_dir .. '/e2e_other.rs'
  vim.cmd('edit ' .. vim.fn.fnameescape(other))
  local second = vim.api.nvim_get_current_buf()
  local attached = wait_for_client(second)
  expect(attached.id == client.id, 'a second client (%d) was started beside %d', attached.id, client.id)
  vim.api.nvim_buf_set_lines(second, 0, -1, true, { 'fn other() -> &\'static str { "中文" }' })
  settle()
  expect_in_sync(client, second, 'second buffer')
  vim.cmd('buffer ' .. bufnr)
end)

check(':ConductorStop stops the server process', function()
  local pid = server_pid(client)
  vim.cmd('ConductorStop')
  expect(vim.wait(TIMEOUT_MS, function()
    return call(client, 'is_stopped') and not process_alive(pid)
  end, 50), 'server pid %d still running %d ms after :ConductorStop', pid, TIMEOUT_MS)
end)

check(':ConductorStart starts it again and resyncs the buffer', function()
  vim.cmd('ConductorStart')
  local restarted = wait_for_client(bufnr)
  expect(restarted.id ~= client.id, 'the stopped client was reused')
  client = restarted
  write_pid(client)
  expect_in_sync(client, bufnr, 'after restart')
end)

finish()
