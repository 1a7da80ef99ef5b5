//! The VS Code extension: starts `conductor lsp` through vscode-languageclient and forwards the
//! `conductor.*` commands to the server's `workspace/executeCommand`.
//!
//! Everything Conductor does happens in the server; this file only finds the binary, passes the
//! settings the user set under `conductor.` (never the extension-only `conductor.server.*` and
//! `conductor.trace.*`), and gives palette commands the active document and selection.

import * as path from 'path';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from 'vscode-languageclient/node';

/** The configuration section the server reads. */
const SECTION = 'conductor';

/**
 * Settings under `conductor.` that only the extension reads (`server.path`, and `trace.server`
 * which vscode-languageclient reads for the client id `conductor`); never sent to the server.
 */
const CLIENT_ONLY_KEYS = ['server', 'trace'];

/** Commands that take a goal typed by the user. */
const GOAL_COMMANDS = new Set<string>(['conductor.orchestrate', 'conductor.plan']);

let client: LanguageClient | undefined;
let output: vscode.OutputChannel | undefined;

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

/** The server binary: `conductor.server.path`, else `conductor` on PATH. */
function serverCommand(): string {
  const configured = vscode.workspace.getConfiguration(SECTION).get<string>('server.path');
  if (configured && configured.trim() !== '') {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const expanded = configured.replace(/^~(?=$|\/|\\)/, process.env.HOME ?? '~');
    return path.isAbsolute(expanded) || !folder || !expanded.includes(path.sep)
      ? expanded
      : path.join(folder, expanded);
  }
  return 'conductor';
}

function createClient(): LanguageClient {
  const command = serverCommand();
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
    middleware: {
      // vscode-languageclient registers a VS Code command for every id the server lists in
      // `executeCommandProvider.commands`. Invoked from a code action the command carries the
      // server's own arguments; invoked from the palette it carries none, so the active
      // document, the selection and (for some commands) a goal are supplied here.
      executeCommand: async (command, args, next) => {
        if (args.length > 0) {
          return next(command, args);
        }
        const argument = await paletteArgument(command);
        if (argument === null) {
          return undefined; // the user cancelled the goal prompt
        }
        return next(command, argument ? [argument] : []);
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

/** The argument a palette command sends: the document, the selection and maybe a goal. */
interface CommandArgument {
  uri: string;
  range: {
    start: { line: number; character: number };
    end: { line: number; character: number };
  };
  goal?: string;
}

/** Builds the palette argument; `null` when the user cancelled, `undefined` with no editor. */
async function paletteArgument(command: string): Promise<CommandArgument | undefined | null> {
  const editor = vscode.window.activeTextEditor;
  if (!client || !editor) {
    return undefined;
  }
  const converter = client.code2ProtocolConverter;
  const argument: CommandArgument = {
    uri: converter.asUri(editor.document.uri),
    range: converter.asRange(editor.selection),
  };
  if (GOAL_COMMANDS.has(command)) {
    const goal = await vscode.window.showInputBox({
      title: 'Conductor',
      prompt: 'What should the change do?',
      placeHolder: 'add retry with backoff',
      ignoreFocusOut: true,
    });
    if (goal === undefined) {
      return null;
    }
    argument.goal = goal;
  }
  return argument;
}

async function restart(): Promise<void> {
  if (client) {
    await client.stop();
    client = undefined;
  }
  client = createClient();
  await client.start();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const properties = context.extension.packageJSON?.contributes?.configuration?.properties ?? {};
  declaredKeys = Object.keys(properties).filter((key) => key.startsWith(`${SECTION}.`));
  // The `conductor.*` server commands are registered by the language client from the server's
  // executeCommandProvider; these two belong to the extension itself.
  context.subscriptions.push(
    vscode.commands.registerCommand('conductor.restartServer', restart),
    vscode.commands.registerCommand('conductor.showOutput', () => output?.show()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(`${SECTION}.server`)) {
        void vscode.window
          .showInformationMessage('Conductor: restart the server to use the new binary?', 'Restart')
          .then((choice) => (choice === 'Restart' ? restart() : undefined));
      }
    }),
  );
  client = createClient();
  try {
    await client.start();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    void vscode.window.showErrorMessage(
      `Conductor: could not start \`${serverCommand()} lsp\`: ${message}. ` +
        'Install Conductor or set conductor.server.path.',
    );
  }
}

export async function deactivate(): Promise<void> {
  if (client) {
    await client.stop();
    client = undefined;
  }
}

