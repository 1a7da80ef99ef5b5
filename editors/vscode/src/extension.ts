//! The VS Code extension: starts `conductor lsp` through vscode-languageclient, enables the
//! `conductor.*` commands the server announces, fills in their arguments when they are run
//! from the palette or the context menu, shows the active run in the status bar, and restarts
//! the server with back-off when it crashes.
//!
//! Everything Conductor does happens in the server; this file only finds the binary, passes the
//! settings the user set under `conductor.` (never the extension-only `conductor.server.*` and
//! `conductor.trace.*`), and turns editor state into command arguments. The pure parts live in
//! `commands.ts`, `runs.ts` and `server.ts`, which the unit tests load under Node.

import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  MessageType,
  ServerOptions,
  ShowMessageNotification,
  State,
  TransportKind,
  WorkDoneProgressCancelNotification,
} from 'vscode-languageclient/node';

import {
  SERVER_COMMANDS,
  ServerCommand,
  announcedContext,
  messageActions,
  unknownCommands,
} from './commands';
import { RunTracker, statusText } from './runs';
import { Backoff, findServer, realMachine } from './server';

/** The configuration section the server reads. */
const SECTION = 'conductor';

/**
 * Settings under `conductor.` that only the extension reads (`server.path`, and `trace.server`
 * which vscode-languageclient reads for the client id `conductor`); never sent to the server.
 */
const CLIENT_ONLY_KEYS = ['server', 'trace'];

/** The extension's own command behind the status-bar item. */
const CANCEL_ACTIVE_RUN = 'conductor.cancelActiveRun';

/** A `// conductor: <goal>` comment, which also prefills the goal prompt. */
const GOAL_COMMENT = /\/\/\s*conductor:\s*(.+?)\s*$/;

let client: LanguageClient | undefined;
let output: vscode.OutputChannel | undefined;
let extensionUri: vscode.Uri | undefined;
let statusItem: vscode.StatusBarItem | undefined;
const runs = new RunTracker();
const backoff = new Backoff();
/** Set while the extension itself stops the client, so that the stop is not taken for a crash. */
let stopping = false;
let startedAt = 0;
let restartTimer: NodeJS.Timeout | undefined;
let announced: string[] = [];

/** The `conductor.*` setting keys the extension declares (from its package.json). */
let declaredKeys: string[] = [];

/** Sets `keyPath` (`['log', 'level']`) in the nested object `target` to `value`. */
function setPath(target: Record<string, unknown>, keyPath: string[], value: unknown): void {
  let node = target;
  for (const part of keyPath.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) {
      node[part] = {};
    }
    node = node[part] as Record<string, unknown>;
  }
  node[keyPath[keyPath.length - 1]] = value;
}

/** What `explicitSettings` reads from: VS Code's `WorkspaceConfiguration.inspect`. */
export interface SettingsInspector {
  inspect(key: string):
    | { globalValue?: unknown; workspaceValue?: unknown; workspaceFolderValue?: unknown }
    | undefined;
}

/**
 * The `conductor` section for the server, from the declared `keys` (`conductor.log.level`, …):
 * only values the user set (folder, workspace or user settings, the most specific winning),
 * nested (`{ log: { level } }`), without the extension-only keys. Defaults are left out on
 * purpose: VS Code reports a default for every declared key, and sending those would override
 * `conductor.toml`, which ranks below the editor's settings.
 */
export function explicitSettings(
  config: SettingsInspector,
  keys: readonly string[],
): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const key of keys) {
    const keyPath = key.split('.').slice(1);
    if (!key.startsWith(`${SECTION}.`) || keyPath.length === 0 || CLIENT_ONLY_KEYS.includes(keyPath[0])) {
      continue;
    }
    const inspected = config.inspect(key);
    // `null` is a value here (it clears a `conductor.toml` entry); only `undefined` is unset.
    const value = [
      inspected?.workspaceFolderValue,
      inspected?.workspaceValue,
      inspected?.globalValue,
    ].find((v) => v !== undefined);
    if (value !== undefined) {
      setPath(settings, keyPath, value);
    }
  }
  return settings;
}

/** The explicit `conductor` settings in effect for `scope` (a folder or file), or globally. */
function currentSettings(scope?: vscode.Uri): Record<string, unknown> {
  return explicitSettings(vscode.workspace.getConfiguration(undefined, scope), declaredKeys);
}

function log(line: string): void {
  output = output ?? vscode.window.createOutputChannel('Conductor');
  output.appendLine(line);
}

/** Sets every command's `conductor.announced.*` context key from the announced list. */
async function setAnnounced(commands: string[]): Promise<void> {
  announced = commands;
  for (const [key, value] of announcedContext(commands)) {
    await vscode.commands.executeCommand('setContext', key, value);
  }
  const unknown = unknownCommands(commands);
  if (unknown.length > 0) {
    log(`The server announces commands this extension has no palette entry for: ${unknown.join(', ')}`);
  }
}

function refreshStatus(): void {
  const status = statusText(runs);
  if (!statusItem) {
    return;
  }
  if (!status) {
    statusItem.hide();
    return;
  }
  statusItem.text = status.text;
  statusItem.tooltip = status.tooltip;
  statusItem.show();
}

/** Opens the install steps shipped with the extension (its README), offline. */
async function openInstallSteps(): Promise<void> {
  if (extensionUri) {
    await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.joinPath(extensionUri, 'README.md'));
  }
}

/** Runs a server message's button: opens a setting or a workspace file. */
async function runMessageAction(kind: 'settings' | 'file', target: string): Promise<void> {
  if (kind === 'settings') {
    await vscode.commands.executeCommand('workbench.action.openSettings', target);
    return;
  }
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  if (!folder) {
    void vscode.window.showWarningMessage(`Conductor: no workspace folder is open, so ${target} cannot be opened.`);
    return;
  }
  const uri = vscode.Uri.joinPath(folder, target);
  try {
    await vscode.window.showTextDocument(uri);
  } catch (err) {
    void vscode.window.showWarningMessage(`Conductor: cannot open ${uri.fsPath}: ${errorText(err)}`);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A server message, with the buttons that fix what it is about. */
function showServerMessage(type: MessageType, message: string): void {
  const actions = messageActions(message);
  const show =
    type === MessageType.Error
      ? vscode.window.showErrorMessage
      : type === MessageType.Warning
        ? vscode.window.showWarningMessage
        : vscode.window.showInformationMessage;
  void show(message, ...actions.map((a) => a.title)).then((choice) => {
    const action = actions.find((a) => a.title === choice);
    return action ? runMessageAction(action.kind, action.target) : undefined;
  });
}

function createClient(command: string): LanguageClient {
  // With TransportKind.stdio the client appends `--stdio`; the server accepts
  // `conductor lsp --stdio`.
  const serverOptions: ServerOptions = {
    run: { command, args: ['lsp'], transport: TransportKind.stdio },
    debug: {
      command,
      args: ['lsp'],
      transport: TransportKind.stdio,
      options: { env: { ...process.env, CONDUCTOR_LOG: 'debug' } },
    },
  };
  output = output ?? vscode.window.createOutputChannel('Conductor');
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file', language: 'rust' }],
    outputChannel: output,
    initializationOptions: currentSettings(),
    synchronize: { configurationSection: SECTION },
    errorHandler: {
      error: () => ({ action: ErrorAction.Continue }),
      // The client's own policy restarts at most four times in three minutes, at once; this one
      // waits longer after each crash and asks the user after five in a row.
      closed: () => {
        if (stopping) {
          return { action: CloseAction.DoNotRestart, handled: true };
        }
        scheduleRestart();
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
    middleware: {
      // vscode-languageclient registers a VS Code command for every id the server lists in
      // `executeCommandProvider.commands`. Invoked from a code action or a lens the command
      // carries the server's own arguments; invoked from the palette or a menu it carries none
      // (or VS Code's resource URI), so the document, the selection, a goal, a finding or a run
      // are supplied here.
      executeCommand: async (id, args, next) => {
        let callArgs = args;
        const fromEditor = args.length === 0 || args[0] instanceof vscode.Uri;
        if (fromEditor) {
          const argument = await paletteArgument(id);
          if (argument === null) {
            return undefined; // cancelled, or the user was told why it cannot run
          }
          callArgs = argument === undefined ? [] : [argument];
        }
        const result = await next(id, callArgs);
        await afterCommand(id, result, fromEditor);
        return result;
      },
      handleWorkDoneProgress: (token, params, next) => {
        runs.progress(token, params);
        next(token, params);
      },
      workspace: {
        // Pushed settings (`synchronize.configurationSection`) would carry the extension-only
        // keys too; send the server's part of the section instead. A notification without
        // sections (`settings: null`, for a dynamic registration) only asks the server to pull.
        didChangeConfiguration: async (sections, next) => {
          if (!client || sections === undefined || !sections.includes(SECTION)) {
            return next(sections);
          }
          await client.sendNotification(DidChangeConfigurationNotification.type, {
            settings: { [SECTION]: currentSettings() },
          });
        },
        // The server pulls the `conductor` section: answer with the explicit settings only.
        configuration: async (params, token, next) => {
          const values = await next(params, token);
          if (!Array.isArray(values)) {
            return values;
          }
          return values.map((value, i) => {
            const item = params.items[i];
            if (item?.section !== SECTION) {
              return value;
            }
            const scope = item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined;
            return currentSettings(scope);
          });
        },
      },
    },
  };
  return new LanguageClient('conductor', 'Conductor', serverOptions, clientOptions);
}

/** What a command answered, acted on: runs go to the status bar, `runs` to a list. */
async function afterCommand(id: string, result: unknown, fromEditor: boolean): Promise<void> {
  if (result === null || typeof result !== 'object') {
    return;
  }
  const answer = result as Record<string, unknown>;
  if (typeof answer.runId === 'string') {
    runs.started(answer.runId, answer.token as string | number | null | undefined);
    if (answer.token === null || answer.token === undefined) {
      void vscode.window.showInformationMessage(`Conductor: run ${answer.runId} started.`);
    }
  }
  if (id === 'conductor.cancel' && answer.cancelled === false) {
    void vscode.window.showInformationMessage('Conductor: that run had already finished.');
  }
  if (id === 'conductor.runs' && fromEditor) {
    const picked = await pickRun(answer, 'Runs of this workspace', () => true);
    const entry = (Array.isArray(answer.runs) ? (answer.runs as RunEntry[]) : []).find((r) => r?.id === picked);
    if (entry && typeof entry.journal === 'string' && entry.journal !== '') {
      await vscode.window.showTextDocument(vscode.Uri.file(entry.journal)).then(undefined, (err) =>
        vscode.window.showWarningMessage(`Conductor: cannot open ${entry.journal}: ${errorText(err)}`),
      );
    } else if (picked) {
      await runMessageAction('file', `.conductor/runs/${picked}.jsonl`);
    }
  }
}

/** One entry of `conductor.runs`. */
interface RunEntry {
  id: string;
  state?: string;
  goal?: string;
  files?: string[];
  tokens?: number;
  costUsd?: number;
  active?: boolean;
  /** The journal's path, when the server gives it. */
  journal?: string;
}

/** Asks the user to pick a run of a `conductor.runs` answer; the run id, or undefined. */
async function pickRun(
  answer: Record<string, unknown>,
  title: string,
  keep: (run: RunEntry) => boolean,
): Promise<string | undefined> {
  const list = Array.isArray(answer.runs) ? (answer.runs as RunEntry[]) : [];
  const candidates = list.filter((run) => run && typeof run.id === 'string' && keep(run));
  if (candidates.length === 0) {
    void vscode.window.showInformationMessage('Conductor: no run to choose from.');
    return undefined;
  }
  const items = candidates.map((run) => ({
    label: run.goal || run.id,
    description: [run.active ? 'active' : run.state, run.id].filter(Boolean).join(' · '),
    detail: [
      run.files && run.files.length > 0 ? run.files.join(', ') : undefined,
      typeof run.tokens === 'number' ? `${run.tokens} tokens` : undefined,
      typeof run.costUsd === 'number' ? `$${run.costUsd.toFixed(2)}` : undefined,
    ]
      .filter(Boolean)
      .join(' · '),
    id: run.id,
  }));
  const choice = await vscode.window.showQuickPick(items, { title: `Conductor: ${title}` });
  return choice?.id;
}

/** The server's `conductor.runs` answer, or undefined when it does not announce the command. */
async function listRuns(): Promise<Record<string, unknown> | undefined> {
  if (!client || !announced.includes('conductor.runs')) {
    return undefined;
  }
  const answer = await client.sendRequest(ExecuteCommandRequest.type, {
    command: 'conductor.runs',
    arguments: [],
  });
  return answer && typeof answer === 'object' ? (answer as Record<string, unknown>) : undefined;
}

/** The selected lines' `// conductor: <goal>` comment, if any, to prefill the goal prompt. */
function goalFromComment(editor: vscode.TextEditor): string | undefined {
  const { start, end } = editor.selection;
  for (let line = start.line; line <= end.line && line < editor.document.lineCount; line++) {
    const match = GOAL_COMMENT.exec(editor.document.lineAt(line).text);
    if (match) {
      return match[1];
    }
  }
  return undefined;
}

/**
 * The argument a command run from the palette or a menu sends; `null` when it should not run
 * (the user cancelled, or was told what is missing), `undefined` for no argument.
 */
async function paletteArgument(id: string): Promise<Record<string, unknown> | undefined | null> {
  const spec: ServerCommand | undefined = SERVER_COMMANDS.find((c) => c.id === id);
  if (!client || !spec || spec.input === 'none') {
    return undefined;
  }
  const converter = client.code2ProtocolConverter;
  if (spec.input === 'run') {
    return runArgument(spec);
  }
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    void vscode.window.showWarningMessage(`Conductor: ${spec.title} works on an open file; open one first.`);
    return null;
  }
  const uri = converter.asUri(editor.document.uri);
  if (spec.input === 'diagnostic') {
    const here = vscode.languages
      .getDiagnostics(editor.document.uri)
      .filter((d) => d.source === 'conductor' && d.range.contains(editor.selection.active));
    if (here.length === 0) {
      void vscode.window.showWarningMessage('Conductor: put the cursor on a Conductor security finding first.');
      return null;
    }
    let chosen = here[0];
    if (here.length > 1) {
      const items = here.map((d) => ({ label: d.message, description: String(d.code ?? ''), d }));
      const picked = await vscode.window.showQuickPick(items, { title: 'Conductor: which finding?' });
      if (!picked) {
        return null;
      }
      chosen = picked.d;
    }
    return { uri, diagnostic: converter.asDiagnostic(chosen) };
  }
  const argument: Record<string, unknown> = { uri, range: converter.asRange(editor.selection) };
  if (spec.input === 'goal') {
    const goal = await vscode.window.showInputBox({
      title: `Conductor: ${spec.title.replace(/…$/, '')}`,
      prompt: 'What should the change do?',
      placeHolder: 'add retry with backoff',
      value: goalFromComment(editor),
      ignoreFocusOut: true,
    });
    if (goal === undefined || goal.trim() === '') {
      return null;
    }
    argument.goal = goal.trim();
  }
  return argument;
}

/** `{ runId }` for a command on a run: the active one for Cancel, else one the user picks. */
async function runArgument(spec: ServerCommand): Promise<Record<string, unknown> | null> {
  const active = runs.active();
  if (spec.id === 'conductor.cancel' && active && active.runId !== '') {
    return { runId: active.runId };
  }
  // On a run's plan document (`.conductor/runs/<id>/plan.md`) that run is meant.
  const file = vscode.window.activeTextEditor?.document.uri.path ?? '';
  const planOf = /\/\.conductor\/runs\/([^/]+)\/plan\.md$/.exec(file);
  if (spec.id === 'conductor.runPlan' && planOf) {
    return { runId: planOf[1] };
  }
  const answer = await listRuns();
  if (!answer) {
    void vscode.window.showWarningMessage(`Conductor: ${spec.title} needs a run, and none is active.`);
    return null;
  }
  const keep =
    spec.id === 'conductor.cancel' ? (run: RunEntry) => run.active === true : (run: RunEntry) => run.active !== true;
  const runId = await pickRun(answer, spec.title, keep);
  return runId ? { runId } : null;
}

/** The status-bar click: cancels the active run, by command when announced, else by progress. */
async function cancelActiveRun(): Promise<void> {
  const active = runs.active();
  if (!active || !client) {
    return;
  }
  if (announced.includes('conductor.cancel') && active.runId !== '') {
    await vscode.commands.executeCommand('conductor.cancel', { runId: active.runId });
  } else {
    await client.sendNotification(WorkDoneProgressCancelNotification.type, { token: active.token });
  }
}

function scheduleRestart(): void {
  runs.clear();
  void setAnnounced([]);
  const delay = backoff.nextDelay(Date.now() - startedAt);
  if (delay === undefined) {
    void vscode.window
      .showErrorMessage('Conductor: the server crashed five times in a row; it is not restarted again.', 'Restart', 'Show output')
      .then((choice) => {
        if (choice === 'Restart') {
          backoff.reset();
          return start();
        }
        if (choice === 'Show output') {
          output?.show();
        }
        return undefined;
      });
    return;
  }
  log(`The Conductor server stopped unexpectedly; restarting in ${delay / 1000} s.`);
  restartTimer = setTimeout(() => {
    restartTimer = undefined;
    void start();
  }, delay);
}

async function stop(): Promise<void> {
  if (restartTimer) {
    clearTimeout(restartTimer);
    restartTimer = undefined;
  }
  const old = client;
  client = undefined;
  runs.clear();
  await setAnnounced([]);
  if (old && old.state !== State.Stopped) {
    stopping = true;
    try {
      await old.stop();
    } catch (err) {
      log(`Stopping the server: ${errorText(err)}`);
    } finally {
      stopping = false;
    }
  }
}

/** Finds the binary and starts a new client; says what is missing when there is no binary. */
async function start(): Promise<void> {
  await stop();
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const configured = vscode.workspace.getConfiguration(SECTION).get<string>('server.path');
  const lookup = findServer(configured, folder, realMachine);
  if (!lookup.found) {
    const buttons = lookup.source === 'setting' ? ['Open settings', 'Install steps'] : ['Install steps', 'Open settings'];
    const choice = await vscode.window.showErrorMessage(`Conductor: ${lookup.message}`, ...buttons);
    if (choice === 'Open settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'conductor.server.path');
    } else if (choice === 'Install steps') {
      await openInstallSteps();
    }
    return;
  }
  const next = createClient(lookup.command);
  client = next;
  startedAt = Date.now();
  try {
    await next.start();
  } catch (err) {
    void vscode.window.showErrorMessage(`Conductor: could not start \`${lookup.command} lsp\`: ${errorText(err)}.`, 'Show output').then(
      (choice) => (choice === 'Show output' ? output?.show() : undefined),
    );
    return;
  }
  // Replaces the client's own handler, which shows the text without buttons.
  next.onNotification(ShowMessageNotification.type, (params) => showServerMessage(params.type, params.message));
  const commands = next.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  await setAnnounced(commands);
  log(`Conductor server ${lookup.command} started; commands: ${commands.join(', ') || 'none'}`);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  extensionUri = context.extensionUri;
  const properties = context.extension.packageJSON?.contributes?.configuration?.properties ?? {};
  declaredKeys = Object.keys(properties).filter((key) => key.startsWith(`${SECTION}.`));
  statusItem = vscode.window.createStatusBarItem('conductor.run', vscode.StatusBarAlignment.Left, 10);
  statusItem.name = 'Conductor run';
  statusItem.command = CANCEL_ACTIVE_RUN;
  runs.onDidChange(refreshStatus);
  // The `conductor.*` server commands are registered by the language client from the server's
  // executeCommandProvider; these belong to the extension itself.
  context.subscriptions.push(
    statusItem,
    vscode.commands.registerCommand('conductor.restartServer', () => {
      backoff.reset();
      return start();
    }),
    vscode.commands.registerCommand('conductor.showOutput', () => output?.show()),
    vscode.commands.registerCommand(CANCEL_ACTIVE_RUN, cancelActiveRun),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(`${SECTION}.server`)) {
        void vscode.window
          .showInformationMessage('Conductor: restart the server to use the new binary?', 'Restart')
          .then((choice) => (choice === 'Restart' ? start() : undefined));
      }
    }),
  );
  // Every server command stays disabled until a server announces it.
  await setAnnounced([]);
  await start();
}

export async function deactivate(): Promise<void> {
  await stop();
}
