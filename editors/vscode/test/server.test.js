//! Unit tests of finding the server binary and of the restart back-off (`server.ts`), on a
//! stand-in machine whose executables are a set of paths.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const out = process.env.CONDUCTOR_VSCODE_OUT;
const { findServer, Backoff } = require(path.join(out, 'server.js'));

function machine(executables, env = {}) {
  return { isExecutable: (file) => executables.includes(file), env, platform: 'linux' };
}

test('conductor.server.path wins, with ~ and workspace-relative paths resolved', () => {
  const m = machine(['/home/u/bin/conductor', '/ws/target/debug/conductor', '/usr/bin/conductor'], {
    HOME: '/home/u',
    PATH: '/usr/bin',
  });
  assert.deepEqual(findServer('~/bin/conductor', '/ws', m), {
    found: true,
    command: '/home/u/bin/conductor',
    source: 'setting',
  });
  assert.deepEqual(findServer('target/debug/conductor', '/ws', m), {
    found: true,
    command: '/ws/target/debug/conductor',
    source: 'setting',
  });
});

test('a configured path that is not executable is reported, not replaced by PATH', () => {
  const m = machine(['/usr/bin/conductor'], { PATH: '/usr/bin' });
  const lookup = findServer('/opt/nowhere/conductor', '/ws', m);
  assert.equal(lookup.found, false);
  assert.equal(lookup.source, 'setting');
  assert.match(lookup.message, /conductor\.server\.path is set to "\/opt\/nowhere\/conductor"/);
});

test('without the setting, the first conductor on PATH; without one, a message saying so', () => {
  const m = machine(['/b/conductor', '/c/conductor'], { PATH: '/a:/b:/c' });
  assert.deepEqual(findServer('  ', undefined, m), { found: true, command: '/b/conductor', source: 'path' });
  const none = findServer(undefined, undefined, machine([], { PATH: '/a:/b' }));
  assert.equal(none.found, false);
  assert.equal(none.source, 'path');
  assert.match(none.message, /no `conductor` binary was found on PATH/);
});

test('restarts wait 1, 2, 4, 8, 16 s, then give up; a healthy run resets the count', () => {
  const backoff = new Backoff(1000, 30000, 5, 180000);
  const delays = [1, 2, 3, 4, 5, 6].map(() => backoff.nextDelay(10));
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, undefined]);
  assert.equal(backoff.nextDelay(180000), 1000, 'a server that ran three minutes starts the count again');
  backoff.reset();
  assert.equal(backoff.nextDelay(0), 1000);
  const capped = new Backoff(1000, 3000, 10, 180000);
  assert.deepEqual([1, 2, 3, 4].map(() => capped.nextDelay(0)), [1000, 2000, 3000, 3000]);
});
