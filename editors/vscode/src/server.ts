//! Finding the `conductor` binary (`conductor.server.path`, else `conductor` on `PATH`) and the
//! back-off between restarts after the server crashes.
//!
//! No `vscode` import: the unit tests drive it under Node with a stand-in file system.

import * as fs from 'fs';
import * as path from 'path';

/** Where the binary was found, or why it was not. */
export type ServerLookup =
  | { found: true; command: string; source: 'setting' | 'path' }
  | { found: false; message: string; source: 'setting' | 'path' };

/** What the lookup may ask of the machine; the real one reads the file system. */
export interface Machine {
  isExecutable(file: string): boolean;
  env: Record<string, string | undefined>;
  platform: string;
}

/** The machine this extension runs on. */
export const realMachine: Machine = {
  isExecutable(file: string): boolean {
    try {
      if (!fs.statSync(file).isFile()) {
        return false;
      }
      fs.accessSync(file, process.platform === 'win32' ? fs.constants.F_OK : fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  env: process.env,
  platform: process.platform,
};

/** The names `conductor` may have on `PATH`. */
function executableNames(machine: Machine): string[] {
  if (machine.platform !== 'win32') {
    return ['conductor'];
  }
  const extensions = (machine.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').filter((e) => e !== '');
  return ['conductor', ...extensions.map((e) => `conductor${e.toLowerCase()}`)];
}

/**
 * The server binary: `configured` (`conductor.server.path`; `~` is the home folder, a relative
 * path is relative to the first workspace folder), else `conductor` on `PATH`. Each failure
 * says what was looked for and where, so the message can tell the user what to fix.
 */
export function findServer(configured: string | undefined, folder: string | undefined, machine: Machine): ServerLookup {
  const setting = configured?.trim() ?? '';
  if (setting !== '') {
    const home = machine.env.HOME ?? machine.env.USERPROFILE;
    let expanded = home ? setting.replace(/^~(?=$|\/|\\)/, home) : setting;
    if (!path.isAbsolute(expanded) && folder) {
      expanded = path.join(folder, expanded);
    }
    if (machine.isExecutable(expanded)) {
      return { found: true, command: expanded, source: 'setting' };
    }
    return {
      found: false,
      source: 'setting',
      message: `conductor.server.path is set to "${setting}", but ${expanded} is not an executable file.`,
    };
  }
  const separator = machine.platform === 'win32' ? ';' : ':';
  const dirs = (machine.env.PATH ?? machine.env.Path ?? '').split(separator).filter((d) => d !== '');
  for (const dir of dirs) {
    for (const name of executableNames(machine)) {
      const candidate = path.join(dir, name);
      if (machine.isExecutable(candidate)) {
        return { found: true, command: candidate, source: 'path' };
      }
    }
  }
  return {
    found: false,
    source: 'path',
    message: 'no `conductor` binary was found on PATH, and conductor.server.path is not set.',
  };
}

/**
 * Restart delays after crashes: 1 s, 2 s, 4 s, … up to `maxDelayMs`; a server that ran for
 * `healthyMs` before crashing starts the sequence again. After `maxRestarts` crashes in a row
 * the extension stops retrying and asks the user.
 */
export class Backoff {
  private crashes = 0;

  constructor(
    private readonly baseDelayMs = 1000,
    private readonly maxDelayMs = 30000,
    private readonly maxRestarts = 5,
    private readonly healthyMs = 3 * 60 * 1000,
  ) {}

  /**
   * A crash after the server ran `uptimeMs`: the delay before the next start, or `undefined`
   * when the extension should give up.
   */
  nextDelay(uptimeMs: number): number | undefined {
    if (uptimeMs >= this.healthyMs) {
      this.crashes = 0;
    }
    this.crashes += 1;
    if (this.crashes > this.maxRestarts) {
      return undefined;
    }
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (this.crashes - 1));
  }

  /** The user restarted the server by hand: count from zero again. */
  reset(): void {
    this.crashes = 0;
  }
}
