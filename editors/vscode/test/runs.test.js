//! Unit tests of the status bar's run tracking (`runs.ts`): progress of a run is followed from
//! begin to end, other progress is ignored, the newest unfinished run is the active one.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const out = process.env.CONDUCTOR_VSCODE_OUT;
const { RunTracker, parseRunTitle, statusText } = require(path.join(out, 'runs.js'));

test('a run title gives the run id and the goal', () => {
  assert.deepEqual(parseRunTitle('Conductor run 20261201-153345-a1b2c3: add retry with backoff'), {
    runId: '20261201-153345-a1b2c3',
    goal: 'add retry with backoff',
  });
  assert.deepEqual(parseRunTitle('Conductor run 7'), { runId: '7', goal: undefined });
  assert.equal(parseRunTitle('Scanning the workspace'), undefined);
  assert.equal(parseRunTitle(undefined), undefined);
});

test('the status bar follows a run from begin to end, with stage, tokens and cost', () => {
  const runs = new RunTracker();
  let changes = 0;
  runs.onDidChange(() => changes++);
  runs.started('r1', 'tok-1');
  assert.equal(statusText(runs).text, '$(sync~spin) Conductor: starting');
  assert.equal(runs.progress('tok-1', { kind: 'begin', title: 'Conductor run r1: add retry', message: 'planning' }), true);
  runs.progress('tok-1', { kind: 'report', message: 'coding 2/3 · 4.1k tokens · $0.01', percentage: 40 });
  const status = statusText(runs);
  assert.equal(status.text, '$(sync~spin) Conductor: coding 2/3 · 4.1k tokens · $0.01');
  assert.match(status.tooltip, /Conductor run r1: add retry/);
  assert.match(status.tooltip, /Click to cancel/);
  runs.progress('tok-1', { kind: 'end', message: 'applied 2 edits' });
  assert.equal(statusText(runs), undefined, 'an ended run leaves the status bar');
  assert.equal(runs.find('r1').ended, 'applied 2 edits');
  assert.equal(changes, 4);
});

test('progress that is not a run is not tracked', () => {
  const runs = new RunTracker();
  assert.equal(runs.progress(5, { kind: 'begin', title: 'Scanning the workspace' }), false);
  assert.equal(runs.progress(5, { kind: 'report', message: '3/10 files' }), false);
  assert.equal(runs.active(), undefined);
});

test('a run seen only through its progress (started by a code action) is tracked too', () => {
  const runs = new RunTracker();
  runs.progress(9, { kind: 'begin', title: 'Conductor run r9: fix the finding' });
  assert.equal(runs.active().runId, 'r9');
  assert.equal(runs.active().token, 9);
  // The command's answer arriving later names the same run.
  runs.started('r9', 9);
  assert.equal(runs.activeCount(), 1);
});

test('the newest unfinished run is the active one, with a count of the others', () => {
  const runs = new RunTracker();
  runs.started('a', 'ta');
  runs.started('b', 'tb');
  assert.equal(runs.active().runId, 'b');
  assert.match(statusText(runs).text, /\(\+1\)$/);
  runs.progress('tb', { kind: 'end' });
  assert.equal(runs.active().runId, 'a');
  assert.doesNotMatch(statusText(runs).text, /\(\+/);
  runs.clear();
  assert.equal(runs.active(), undefined);
});

test('a command answer without a token (a client without progress) starts nothing to show', () => {
  const runs = new RunTracker();
  runs.started('r', null);
  assert.equal(runs.active(), undefined);
});
