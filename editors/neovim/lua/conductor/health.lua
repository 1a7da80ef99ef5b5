--- `:checkhealth conductor`: whether Neovim, the `conductor` binary and the running servers are
--- in a state the plugin can work with, each problem with what to do about it.

local M = {}

-- The health API moved: `vim.health.start` from 0.10, `vim.health.report_start` in 0.8–0.9,
-- `require('health').report_start` in 0.7.
local function reporter()
  local h = vim.health
  if h and h.start then
    return { start = h.start, ok = h.ok, warn = h.warn, error = h.error, info = h.info }
  end
  h = h or require('health')
  return {
    start = h.report_start,
    ok = h.report_ok,
    warn = h.report_warn,
    error = h.report_error,
    info = h.report_info,
  }
end

--- Runs `command` in `cwd` for at most `timeout_ms`; returns its output lines and exit code
--- (nil when it timed out). `jobstart` rather than `vim.system`, which 0.7–0.9 lack.
local function run(command, cwd, timeout_ms)
  local lines = {}
  local collect = function(_, data)
    for _, line in ipairs(data or {}) do
      if line ~= '' then
        table.insert(lines, line)
      end
    end
  end
  local code = nil
  local job = vim.fn.jobstart(command, {
    cwd = cwd,
    stdout_buffered = true,
    stderr_buffered = true,
    on_stdout = collect,
    on_stderr = collect,
    on_exit = function(_, status)
      code = status
    end,
  })
  if job <= 0 then
    return { 'could not start ' .. table.concat(command, ' ') }, -1
  end
  if vim.fn.jobwait({ job }, timeout_ms)[1] == -1 then
    vim.fn.jobstop(job)
    return lines, nil
  end
  vim.wait(1000, function()
    return code ~= nil
  end, 10)
  return lines, code
end

--- The model providers, as `conductor doctor` sees them from the workspace root (or the
--- current directory): each line of its report, its problems as warnings.
function M.check_providers(report, binary)
  report.start('conductor: model providers (`conductor doctor`)')
  local conductor = require('conductor')
  local client = conductor.clients()[1]
  local root = client and client.config.root_dir or vim.fn.getcwd()
  -- The doctor waits up to 15 s for an endpoint; give it a little more.
  local lines, code = run({ binary, 'doctor' }, root, 20000)
  for _, line in ipairs(lines) do
    local problem = line:match('^%s*problem:%s*(.*)$')
    if problem then
      report.warn(problem)
    else
      report.info(line)
    end
  end
  if code == nil then
    report.warn('`conductor doctor` did not finish within 20 s (a provider that never answers?)')
  elseif code == 0 then
    report.ok('every agent has a working provider')
  else
    report.warn(
      'some agents have no working provider: runs that need a model will fail; the security scan, hovers and quick fixes still work',
      { 'Configure `[model]` in conductor.toml or `settings.model` in setup(); see docs/providers.md' }
    )
  end
end

function M.check()
  local report = reporter()
  local conductor = require('conductor')
  local config = conductor.config()

  report.start('conductor: editor')
  if vim.fn.has('nvim-0.7') == 1 then
    local v = vim.version()
    report.ok(string.format('Neovim %d.%d.%d', v.major, v.minor, v.patch))
  else
    report.error('Neovim 0.7 or newer is needed')
  end

  report.start('conductor: server binary')
  local binary = config.cmd[1]
  if vim.fn.executable(binary) ~= 1 then
    report.error(
      string.format('`%s` is not executable', binary),
      { 'Install it: `cargo install --path server` in the Conductor repository', 'Or pass `cmd = { "/path/to/conductor", "lsp" }` to setup()' }
    )
  else
    local version = vim.fn.system({ binary, '--version' })
    if vim.v.shell_error == 0 then
      report.ok(string.format('%s: %s', vim.fn.exepath(binary), vim.trim(version)))
    else
      report.error(string.format('`%s --version` failed: %s', binary, vim.trim(version)))
    end
    M.check_providers(report, binary)
  end

  report.start('conductor: running servers')
  local clients = conductor.clients()
  if #clients == 0 then
    report.info('none; one starts when a buffer of ' .. table.concat(config.filetypes, ', ') .. ' opens')
  end
  for _, client in ipairs(clients) do
    local caps = client.server_capabilities or {}
    local buffers = client.attached_buffers and vim.tbl_count(client.attached_buffers) or 0
    report.ok(
      string.format(
        'client %d: root %s, position encoding %s, %d buffer(s)',
        client.id,
        tostring(client.config.root_dir),
        tostring(client.offset_encoding),
        buffers
      )
    )
    if caps.positionEncoding and caps.positionEncoding ~= client.offset_encoding then
      report.error(
        string.format(
          'the server counts positions in %s but Neovim sends %s: edits will land in the wrong place',
          caps.positionEncoding,
          tostring(client.offset_encoding)
        ),
        { 'Let the plugin set `capabilities.general.positionEncodings`, or set it to what the client uses' }
      )
    end
    local info = client.server_info or (client.initialize_result and client.initialize_result.serverInfo)
    if info and info.name then
      report.info(string.format('server %s %s', info.name, info.version or ''))
    end
    local commands = (caps.executeCommandProvider or {}).commands or {}
    report.info('server commands: ' .. (#commands > 0 and table.concat(commands, ', ') or 'none yet'))
    local missing = {}
    for name, command in pairs(conductor.commands) do
      if not vim.tbl_contains(commands, command) then
        table.insert(missing, ':' .. name)
      end
    end
    table.sort(missing)
    if #missing > 0 then
      report.info('not offered by this server (they say so when run): ' .. table.concat(missing, ', '))
    end
    local run = conductor.active_run()
    if run then
      report.info(string.format('active run %s: %s', tostring(run.run_id), run.message or 'starting'))
    end
  end
end

return M
