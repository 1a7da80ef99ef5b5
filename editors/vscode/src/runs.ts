//! The runs the status bar shows: fed with the server's `$/progress` values (through the language
//! client's `handleWorkDoneProgress` middleware) and with the `{ runId, token }` answers of the
//! commands that start a run; says which run is active and how to describe it.
//!
//! No `vscode` import: the unit tests drive it under Node.

/** The `value` of a `$/progress` notification for work-done progress. */
export interface ProgressValue {
  kind: 'begin' | 'report' | 'end';
  title?: string;
  message?: string;
  percentage?: number;
  cancellable?: boolean;
}

/** What the status bar knows about one run. */
export interface RunStatus {
  runId: string;
  token: string | number;
  /** The goal, from the progress title ("Conductor run <id>: <goal>"), when it has one. */
  goal?: string;
  /** The latest progress message ("coding 2/3 · 4.1k tokens · $0.01"). */
  message?: string;
  percentage?: number;
  /** The message the run ended with, once it has ended. */
  ended?: string;
}

/** `Conductor run <id>` or `Conductor run <id>: <goal>`, the title the server gives a run. */
const RUN_TITLE = /^Conductor run (\S+?)(?::\s*(.*))?$/;

/** The run id and goal in a progress title, or `undefined` when it is not a run's. */
export function parseRunTitle(title: string | undefined): { runId: string; goal?: string } | undefined {
  const match = title === undefined ? null : RUN_TITLE.exec(title.trim());
  if (!match) {
    return undefined;
  }
  return { runId: match[1], goal: match[2] || undefined };
}

/** Tracks runs by progress token; the newest unfinished one is the active run. */
export class RunTracker {
  private readonly byToken = new Map<string, RunStatus>();
  /** Tokens in the order their runs began. */
  private readonly order: string[] = [];
  private readonly listeners: Array<() => void> = [];

  /** Calls `listener` after every change. */
  onDidChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) {
      listener();
    }
  }

  /** A command answered `{ runId, token }`: the run exists even before its first progress. */
  started(runId: string, token: string | number | null | undefined): void {
    if (token === null || token === undefined) {
      return;
    }
    const key = String(token);
    const known = this.byToken.get(key);
    if (known) {
      known.runId = runId;
    } else {
      this.byToken.set(key, { runId, token });
      this.order.push(key);
    }
    this.changed();
  }

  /**
   * One `$/progress` value for `token`. Returns whether it belonged to a run (progress of other
   * work, such as the workspace scan, is not tracked).
   */
  progress(token: string | number, value: ProgressValue): boolean {
    const key = String(token);
    let run = this.byToken.get(key);
    if (value.kind === 'begin') {
      const parsed = parseRunTitle(value.title);
      if (!parsed && !run) {
        return false;
      }
      if (!run) {
        run = { runId: parsed?.runId ?? '', token };
        this.byToken.set(key, run);
        this.order.push(key);
      }
      if (parsed) {
        run.runId = run.runId || parsed.runId;
        run.goal = parsed.goal;
      }
    }
    if (!run) {
      return false;
    }
    if (value.message !== undefined) {
      run.message = value.message;
    }
    if (value.percentage !== undefined) {
      run.percentage = value.percentage;
    }
    if (value.kind === 'end') {
      run.ended = value.message ?? 'done';
    }
    this.changed();
    return true;
  }

  /** The newest run that has not ended, if any. */
  active(): RunStatus | undefined {
    for (let i = this.order.length - 1; i >= 0; i--) {
      const run = this.byToken.get(this.order[i]);
      if (run && run.ended === undefined) {
        return run;
      }
    }
    return undefined;
  }

  /** How many runs have not ended. */
  activeCount(): number {
    return [...this.byToken.values()].filter((run) => run.ended === undefined).length;
  }

  /** The run started with `runId`, if the tracker has seen it. */
  find(runId: string): RunStatus | undefined {
    return [...this.byToken.values()].find((run) => run.runId === runId);
  }

  /** Forgets every run (the server stopped: its runs are gone with it). */
  clear(): void {
    this.byToken.clear();
    this.order.length = 0;
    this.changed();
  }
}

/** The status bar's text and tooltip for the tracker's state; `undefined` hides the item. */
export function statusText(tracker: RunTracker): { text: string; tooltip: string } | undefined {
  const run = tracker.active();
  if (!run) {
    return undefined;
  }
  const others = tracker.activeCount() - 1;
  const detail = run.message ?? 'starting';
  const text = `$(sync~spin) Conductor: ${detail}${others > 0 ? ` (+${others})` : ''}`;
  const lines = [
    `Conductor run ${run.runId}${run.goal ? `: ${run.goal}` : ''}`,
    detail,
    'Click to cancel this run.',
  ];
  return { text, tooltip: lines.join('\n') };
}
