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
    local commands = (caps.executeCommandProvider or {}).commands or {}
    report.info('server commands: ' .. (#commands > 0 and table.concat(commands, ', ') or 'none yet'))
  end
end

return M
