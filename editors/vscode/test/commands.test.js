//! Unit tests of the command table (`commands.ts`) against package.json: every server command is
//! contributed under the category "Conductor" and enabled only by its `conductor.announced.*`
//! context key; and of the buttons a server message gets.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const out = process.env.CONDUCTOR_VSCODE_OUT;
const { SERVER_COMMANDS, CLIENT_COMMANDS, contextKey, announcedContext, unknownCommands, messageActions } =
  require(path.join(out, 'commands.js'));
const manifest = require('../package.json');

test('every command of the table is contributed with its title under the category Conductor', () => {
  const contributed = new Map(manifest.contributes.commands.map((c) => [c.command, c]));
  for (const command of [...SERVER_COMMANDS.map((c) => c.id), ...CLIENT_COMMANDS]) {
    assert.ok(contributed.has(command), `${command} is not in contributes.commands`);
    assert.equal(contributed.get(command).category, 'Conductor', `${command} has another category`);
  }
  for (const command of SERVER_COMMANDS) {
    assert.equal(contributed.get(command.id).title, command.title, `${command.id}: titles differ`);
  }
  assert.equal(contributed.size, SERVER_COMMANDS.length + CLIENT_COMMANDS.length, 'package.json has extra commands');
});

test('every palette and context-menu entry of a server command requires its announced key', () => {
  const menus = manifest.contributes.menus;
  for (const command of SERVER_COMMANDS) {
    const palette = menus.commandPalette.filter((e) => e.command === command.id);
    assert.equal(palette.length, 1, `${command.id} has ${palette.length} palette entries`);
    assert.match(palette[0].when, new RegExp(`(^|&& )${contextKey(command.id).replace(/\./g, '\\.')}( &&|$)`));
    const context = menus['editor/context'].filter((e) => e.command === command.id);
    assert.equal(context.length, command.onSelection ? 1 : 0, `${command.id}: context-menu entries`);
    for (const entry of context) {
      assert.ok(entry.when.includes(contextKey(command.id)), `${command.id}: context menu not gated`);
      assert.ok(entry.when.includes('editorHasSelection'), `${command.id}: context menu without a selection`);
    }
  }
});

test('announced commands switch their keys on, the others off', () => {
  const keys = announcedContext(['conductor.scanWorkspace', 'conductor.orchestrate', 'conductor.somethingNew']);
  assert.equal(keys.get('conductor.announced.orchestrate'), true);
  assert.equal(keys.get('conductor.announced.scanWorkspace'), true);
  assert.equal(keys.get('conductor.announced.plan'), false);
  assert.equal(keys.size, SERVER_COMMANDS.length);
  assert.ok([...announcedContext([]).values()].every((v) => v === false), 'no server: all off');
  assert.deepEqual(unknownCommands(['conductor.somethingNew', 'conductor.plan']), ['conductor.somethingNew']);
});

test('a message about a setting offers to open it; one about a run offers its journal', () => {
  assert.deepEqual(messageActions('Conductor run 20261201-153345-a1b2c3 failed: the coder reply did not validate'), [
    { title: 'Open journal', kind: 'file', target: '.conductor/runs/20261201-153345-a1b2c3.jsonl' },
  ]);
  assert.deepEqual(messageActions('conductor.toml: `model.base_url`: expected a string'), [
    { title: 'Open conductor.toml', kind: 'file', target: 'conductor.toml' },
    { title: 'Open settings', kind: 'settings', target: 'conductor.model.base_url' },
  ]);
  assert.deepEqual(messageActions('no model is configured: set model.api_key_env'), [
    { title: 'Open settings', kind: 'settings', target: 'conductor.model.api_key_env' },
  ]);
  assert.deepEqual(
    messageActions('see .conductor/runs/20261201-000000-000001.jsonl').map((a) => a.target),
    ['.conductor/runs/20261201-000000-000001.jsonl'],
  );
  assert.deepEqual(messageActions('Workspace scan finished: 3 findings'), []);
});
