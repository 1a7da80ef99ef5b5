//! The server's `conductor.*` commands as the extension knows them: what each is called in the
//! palette, what it needs from the editor when run from there, and the context key that enables
//! it only while the running server announces it.
//!
//! Pure data and functions, with no `vscode` import, so that the unit tests run under Node.
//! `server/tests/it/editors.rs` checks this table against `package.json` and the server.

/** What a command run from the palette (without the server's own arguments) needs. */
export type PaletteInput =
  /** `{ uri, range, goal }`: the selection and a goal typed in an input box. */
  | 'goal'
  /** `{ uri, range }`: the active document and its selection. */
  | 'selection'
  /** `{ uri, diagnostic }`: a Conductor diagnostic under the cursor. */
  | 'diagnostic'
  /** `{ runId }`: the active run, else one picked from `conductor.runs`. */
  | 'run'
  /** No argument. */
  | 'none';

/** One server command. */
export interface ServerCommand {
  /** The command id, as the server announces it in `executeCommandProvider.commands`. */
  id: string;
  /** The palette title (the category "Conductor" is added by VS Code). */
  title: string;
  /** What the palette supplies. */
  input: PaletteInput;
  /** Whether the editor's context menu offers it on a selection. */
  onSelection: boolean;
}

/**
 * Every server command the extension can drive. The server announces the ones it implements;
 * only those are enabled (see `contextKey`). Later server versions may announce more; the
 * drift test fails until they are listed here and in `package.json`.
 */
export const SERVER_COMMANDS: readonly ServerCommand[] = [
  { id: 'conductor.orchestrate', title: 'Implement goal…', input: 'goal', onSelection: true },
  { id: 'conductor.plan', title: 'Plan…', input: 'goal', onSelection: true },
  { id: 'conductor.writeTests', title: 'Write tests', input: 'selection', onSelection: true },
  { id: 'conductor.fix', title: 'Fix with agents', input: 'diagnostic', onSelection: false },
  { id: 'conductor.review', title: 'Security review', input: 'selection', onSelection: true },
  { id: 'conductor.explain', title: 'Explain trade-offs', input: 'selection', onSelection: true },
  { id: 'conductor.showContext', title: 'Show context', input: 'selection', onSelection: true },
  { id: 'conductor.scanWorkspace', title: 'Scan workspace', input: 'none', onSelection: false },
  { id: 'conductor.runTests', title: 'Run tests', input: 'selection', onSelection: false },
  { id: 'conductor.cancel', title: 'Cancel run', input: 'run', onSelection: false },
  { id: 'conductor.runs', title: 'Show runs', input: 'none', onSelection: false },
  { id: 'conductor.runPlan', title: 'Run a plan', input: 'run', onSelection: false },
  { id: 'conductor.markReviewed', title: 'Mark decision reviewed', input: 'selection', onSelection: false },
  { id: 'conductor.revert', title: 'Revert run', input: 'run', onSelection: false },
  { id: 'conductor.showRun', title: 'Show a run\'s story', input: 'run', onSelection: false },
];

/** Commands that belong to the extension itself, never sent to the server. */
export const CLIENT_COMMANDS: readonly string[] = [
  'conductor.restartServer',
  'conductor.showOutput',
];

/**
 * The context key that is true while the server announces `id`: `conductor.orchestrate` →
 * `conductor.announced.orchestrate`. `package.json` uses it in every `when` clause of a server
 * command, so an unannounced command is neither in the palette nor in a menu.
 */
export function contextKey(id: string): string {
  return `conductor.announced.${id.replace(/^conductor\./, '')}`;
}

/**
 * The value of every command's context key for a server that announces `announced` (an
 * empty list when no server runs). Commands the server announces but the extension does not
 * know are left out: the language client still registers them, they just have no palette entry.
 */
export function announcedContext(announced: readonly string[]): Map<string, boolean> {
  const keys = new Map<string, boolean>();
  for (const command of SERVER_COMMANDS) {
    keys.set(contextKey(command.id), announced.includes(command.id));
  }
  return keys;
}

/** The announced commands the extension has no entry for (reported once in the output). */
export function unknownCommands(announced: readonly string[]): string[] {
  return announced.filter(
    (id) => !SERVER_COMMANDS.some((c) => c.id === id) && !CLIENT_COMMANDS.includes(id),
  );
}

/** A button offered with a server message, and what it does. */
export interface MessageAction {
  title: string;
  /** `settings`: open the Settings editor on `target`; `file`: open the workspace file `target`. */
  kind: 'settings' | 'file';
  target: string;
}

/**
 * The buttons a server message (`window/showMessage`) gets: messages about a setting offer to
 * open it (a `conductor.toml` problem opens that file), messages about a run offer its journal
 * (`.conductor/runs/<id>.jsonl`). Plain messages get none.
 */
export function messageActions(message: string): MessageAction[] {
  const actions: MessageAction[] = [];
  const setting = /`?((?:conductor\.)?(?:model|run|context|security|log|tester|review|lenses)(?:\.[a-z_]+)+)`?/.exec(
    message,
  );
  if (/conductor\.toml/.test(message)) {
    actions.push({ title: 'Open conductor.toml', kind: 'file', target: 'conductor.toml' });
  }
  if (setting) {
    const key = setting[1].startsWith('conductor.') ? setting[1] : `conductor.${setting[1]}`;
    actions.push({ title: 'Open settings', kind: 'settings', target: key });
  } else if (/\b(provider|api key|api_key_env|model is not configured|configure a model)\b/i.test(message)) {
    actions.push({ title: 'Open settings', kind: 'settings', target: 'conductor.model' });
  }
  const journal = /\.conductor\/runs\/[A-Za-z0-9._-]+\.jsonl/.exec(message);
  const run = /\brun ([A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])\b/.exec(message);
  if (journal) {
    actions.push({ title: 'Open journal', kind: 'file', target: journal[0] });
  } else if (run && /\d/.test(run[1])) {
    actions.push({ title: 'Open journal', kind: 'file', target: `.conductor/runs/${run[1]}.jsonl` });
  }
  return actions;
}
