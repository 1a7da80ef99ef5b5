//! Unit tests of what the extension sends the server as settings (`explicitSettings`), run with
//! Node's test runner against the compiled extension and the `vscode` stand-in.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const out = process.env.CONDUCTOR_VSCODE_OUT;
const { explicitSettings } = require(path.join(out, 'extension.js'));
const manifest = require('../package.json');
const declared = Object.keys(manifest.contributes.configuration.properties);

/** A `WorkspaceConfiguration.inspect` over a table of key → inspection. */
function inspector(table) {
  return {
    inspect(key) {
      const declaredDefault = manifest.contributes.configuration.properties[key]?.default;
      return { key, defaultValue: declaredDefault, ...(table[key] ?? {}) };
    },
  };
}

test('nothing set: nothing sent, so conductor.toml and the server defaults apply', () => {
  assert.deepEqual(explicitSettings(inspector({}), declared), {});
});

test('set values are sent nested, under their snake_case keys', () => {
  const settings = explicitSettings(
    inspector({
      'conductor.log.level': { globalValue: 'debug' },
      'conductor.model.base_url': { workspaceValue: 'http://127.0.0.1:8080/v1' },
      'conductor.model.budget.max_cost_usd': { globalValue: 0.5 },
      'conductor.model.agents': { globalValue: { coder: { model: 'big' } } },
    }),
    declared,
  );
  assert.deepEqual(settings, {
    log: { level: 'debug' },
    model: {
      base_url: 'http://127.0.0.1:8080/v1',
      budget: { max_cost_usd: 0.5 },
      agents: { coder: { model: 'big' } },
    },
  });
});

test('the most specific scope wins: folder over workspace over user', () => {
  const settings = explicitSettings(
    inspector({
      'conductor.log.level': { globalValue: 'warn', workspaceValue: 'info', workspaceFolderValue: 'trace' },
      'conductor.model.model': { globalValue: 'a', workspaceValue: 'b' },
    }),
    declared,
  );
  assert.equal(settings.log.level, 'trace');
  assert.equal(settings.model.model, 'b');
});

test('extension-only settings never reach the server', () => {
  const settings = explicitSettings(
    inspector({
      'conductor.server.path': { globalValue: '/opt/conductor' },
      'conductor.trace.server': { globalValue: 'verbose' },
      'conductor.log.file': { globalValue: '/tmp/conductor.log' },
    }),
    declared,
  );
  assert.deepEqual(settings, { log: { file: '/tmp/conductor.log' } });
});

test('a value explicitly set to null is sent, and wins over a broader scope', () => {
  const settings = explicitSettings(
    inspector({ 'conductor.log.file': { globalValue: '/tmp/a.log', workspaceValue: null } }),
    declared,
  );
  assert.deepEqual(settings, { log: { file: null } });
});
