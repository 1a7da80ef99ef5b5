//! Runs in the editor: the commands and code actions that start, cancel and list runs, and
//! what the user sees of a run — its work-done progress (stage, step, tokens, cost;
//! cancellable), the change as one versioned, annotated workspace edit, and a message when it
//! ends. Conversion only: the run itself is `orchestrator`'s, reached through
//! [`RunEnv::for_app`] and the session's [`Orchestrator`](crate::orchestrator::Orchestrator).
//!
//! Every command answers at once with the run's id and progress token; the run goes on in the
//! background on snapshots, so typing never waits for it. The change is re-anchored on what
//! the user has when the run presents it (`orchestrator::present`), and sent with the version it
//! was anchored on, so the editor itself refuses it if the user typed since.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::{Error, ErrorCode};
use tower_lsp_server::ls_types::*;

use super::convert;
use super::editor::LspEditor;
use super::session::Session;
use crate::journal::RunState;
use crate::orchestrator::editor_runs;
use crate::orchestrator::{RunEnv, RunHandle, RunRequest};

/// `conductor.orchestrate` `[{uri, range?, goal}]`: plan, code, review, test and present.
pub const ORCHESTRATE: &str = "conductor.orchestrate";
/// `conductor.plan` `[{uri, range?, goal}]`: plan only; the plan opens as a document.
pub const PLAN: &str = "conductor.plan";
/// `conductor.writeTests` `[{uri, range?}]`: a run whose goal is tests for the selection.
pub const WRITE_TESTS: &str = "conductor.writeTests";
/// `conductor.fix` `[{uri, diagnostic}]`: a run whose goal is to fix one security finding.
pub const FIX: &str = "conductor.fix";
/// `conductor.runPlan` `[{runId}]`: a new run that follows run `runId`'s plan document as the
/// user left it (the open buffer, saved or not, else the file).
pub const RUN_PLAN: &str = "conductor.runPlan";
/// `conductor.cancel` `[{runId}]`.
pub const CANCEL: &str = "conductor.cancel";
/// `conductor.runs` `[]`: the runs, in flight and finished.
pub const RUNS: &str = "conductor.runs";

/// The kind of the code actions that start a run on a selection.
pub const RUN_KIND: &str = "refactor.conductor";
/// The kind of "Fix with agents" on a security diagnostic.
pub const FIX_KIND: &str = "quickfix.conductor";

/// A command's failure: the JSON-RPC error the client gets.
pub(super) fn bad(message: impl Into<String>) -> Error {
    Error::invalid_params(message.into())
}

pub(super) fn failed(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::ServerError(-32001),
        message: message.into().into(),
        data: None,
    }
}

/// The one argument object of a command, decoded.
pub(super) fn argument<T: serde::de::DeserializeOwned>(
    command: &str,
    shape: &str,
    arguments: Vec<Value>,
) -> Result<T, Error> {
    let value = arguments
        .into_iter()
        .next()
        .ok_or_else(|| bad(format!("{command} needs one argument {shape}")))?;
    serde_json::from_value(value)
        .map_err(|e| bad(format!("{command}: bad argument (expected {shape}): {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GoalArgs {
    uri: Uri,
    range: Option<Range>,
    goal: Option<String>,
    /// The `// conductor: <goal>` line the change removes (set by the code action).
    remove_line: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixArgs {
    uri: Uri,
    diagnostic: Diagnostic,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunIdArgs {
    run_id: String,
}

/// The file of `uri`, which must be inside the workspace root (canonical both).
pub(super) fn workspace_file(
    session: &Session,
    command: &str,
    uri: &Uri,
) -> Result<PathBuf, Error> {
    let root = session
        .root()
        .ok_or_else(|| failed(format!("{command} needs a workspace folder")))?;
    let root = root.canonicalize().unwrap_or(root);
    let path = convert::uri_to_path(uri)
        .ok_or_else(|| bad(format!("{command}: {} is not a file URI", uri.as_str())))?;
    // A file not created yet has no canonical form; its folder does.
    let canonical = path.canonicalize().ok().or_else(|| {
        let parent = path.parent()?.canonicalize().ok()?;
        Some(parent.join(path.file_name()?))
    });
    match canonical {
        Some(canonical) if canonical.starts_with(&root) => Ok(canonical),
        Some(_) => Err(bad(format!(
            "{command}: {} is outside the workspace {}; runs only change files inside it",
            path.display(),
            root.display()
        ))),
        None => Err(bad(format!("{command}: {} does not exist", path.display()))),
    }
}

/// 1-based inclusive lines of `range` (a selection ending at column 0 of a line does not
/// include that line).
pub(super) fn lines_of(range: &Range) -> (usize, usize) {
    let start = range.start.line as usize + 1;
    let mut end = range.end.line as usize + 1;
    if range.end.character == 0 && range.end.line > range.start.line {
        end -= 1;
    }
    (start.min(end), start.max(end))
}

/// The commands of this module, by name, for the server's command table.
pub const COMMAND_NAMES: &[&str] = &[ORCHESTRATE, PLAN, WRITE_TESTS, FIX, RUN_PLAN, CANCEL, RUNS];

/// Runs command `name` (one of [`COMMAND_NAMES`]).
pub async fn execute(
    client: &Client,
    session: &Arc<Session>,
    security: &Arc<super::security::LiveSecurity>,
    name: &str,
    arguments: Vec<Value>,
) -> Result<Value, Error> {
    match name {
        ORCHESTRATE | PLAN => {
            let args: GoalArgs = argument(name, "{uri, range?, goal}", arguments)?;
            let goal = args
                .goal
                .as_deref()
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .ok_or_else(|| bad(format!("{name}: the goal is empty; say what to do")))?;
            let file = workspace_file(session, name, &args.uri)?;
            let request = editor_runs::goal_run(
                goal,
                file,
                args.range.as_ref().map(lines_of),
                name == PLAN,
                args.remove_line,
            );
            start(client, session, security, request)
        }
        WRITE_TESTS => {
            let args: GoalArgs = argument(name, "{uri, range?}", arguments)?;
            let file = workspace_file(session, name, &args.uri)?;
            let lines = args.range.as_ref().map(lines_of);
            let goal = match args
                .goal
                .as_deref()
                .map(str::trim)
                .filter(|g| !g.is_empty())
            {
                Some(goal) => goal.to_string(),
                None => {
                    let root = session.root().map(|r| r.canonicalize().unwrap_or(r));
                    let index = session.app.index.snapshot();
                    editor_runs::tests_goal(root.as_deref(), index.as_deref(), &file, lines)
                }
            };
            start(
                client,
                session,
                security,
                editor_runs::one_step(&goal, file, lines),
            )
        }
        FIX => {
            let args: FixArgs = argument(name, "{uri, diagnostic}", arguments)?;
            let file = workspace_file(session, name, &args.uri)?;
            // A review or test diagnostic carries its own explanation; the live scan's comes
            // from the finding still published for the document.
            let goal = super::review::fix_goal(security, &args.uri, &args.diagnostic)
                .unwrap_or_else(|| security.fix_goal(session, &args.uri, &args.diagnostic));
            let lines = Some(lines_of(&args.diagnostic.range));
            start(
                client,
                session,
                security,
                editor_runs::one_step(&goal, file, lines),
            )
        }
        RUN_PLAN => {
            let args: RunIdArgs = argument(name, "{runId}", arguments)?;
            run_plan(client, session, security, &args.run_id).await
        }
        CANCEL => {
            let args: RunIdArgs = argument(name, "{runId}", arguments)?;
            if session.app.runs.cancel(&args.run_id) {
                Ok(json!({"cancelled": true}))
            } else {
                Err(bad(format!(
                    "{name}: no run {} is in flight (see `conductor.runs` for the runs and their states)",
                    args.run_id
                )))
            }
        }
        RUNS => runs(session).await,
        other => Err(bad(format!("unknown command `{other}`"))),
    }
}

/// `conductor.runPlan`: reads the plan document (the user's buffer when it is open), and starts
/// a run that follows it. A document the user broke is answered with the line and what is
/// wrong, as an error and as a message, and no run starts.
async fn run_plan(
    client: &Client,
    session: &Arc<Session>,
    security: &Arc<super::security::LiveSecurity>,
    run_id: &str,
) -> Result<Value, Error> {
    let root = session
        .root()
        .ok_or_else(|| failed(format!("{RUN_PLAN} needs a workspace folder")))?;
    let root = root.canonicalize().unwrap_or(root);
    let original = crate::orchestrator::plan_doc::original_run(&root, run_id)
        .map_err(|e| bad(format!("{RUN_PLAN}: {e}")))?;
    let text = match session.app.snapshot_of_path(&original.plan_file) {
        Some(snapshot) => snapshot.to_text(),
        None => crate::util::read_regular_text(&original.plan_file, crate::util::MAX_READ_BYTES)
            .map_err(|e| failed(format!("reading {}: {e}", original.plan_file.display())))?,
    };
    let (doc, follow) = match original.follow(&text) {
        Ok(followed) => followed,
        Err(err) => {
            let message = format!(
                "Conductor: the plan was not run: {}: {err}",
                original.plan_file.display()
            );
            client.show_message(MessageType::ERROR, &message).await;
            return Err(bad(message));
        }
    };
    start(
        client,
        session,
        security,
        original.request(&doc, follow, true),
    )
}

/// "Run this plan" at the top of a run's plan document.
pub fn code_lenses(session: &Session, uri: &Uri) -> Vec<CodeLens> {
    let (Some(root), Some(path)) = (session.root(), convert::uri_to_path(uri)) else {
        return Vec::new();
    };
    let root = root.canonicalize().unwrap_or(root);
    let path = path.canonicalize().unwrap_or(path);
    let Some(run_id) = editor_runs::plan_document_run(&root, &path) else {
        return Vec::new();
    };
    vec![CodeLens {
        range: Range::default(),
        command: Some(Command {
            title: "▶ Run this plan".into(),
            command: RUN_PLAN.into(),
            arguments: Some(vec![json!({"runId": run_id})]),
        }),
        data: None,
    }]
}

/// Starts `request` with a port of its own whose progress lines become the run's work-done
/// progress, and follows it in the background. Answers `{runId, token}` at once.
fn start(
    client: &Client,
    session: &Arc<Session>,
    security: &Arc<super::security::LiveSecurity>,
    request: RunRequest,
) -> Result<Value, Error> {
    let (lines, receiver) = mpsc::unbounded_channel();
    let editor = Arc::new(LspEditor::for_run(
        client.clone(),
        session.clone(),
        Some(security.clone()),
        lines,
    ));
    let env = RunEnv::for_app(&session.app, editor)
        .ok_or_else(|| failed("a run needs a workspace folder"))?;
    let plan_only = request.plan_only;
    let handle = session
        .app
        .runs
        .start(env, request)
        .map_err(|e| failed(e.to_string()))?;
    let token = session.progress.token("run");
    let shown = session.client().work_done_progress;
    let id = handle.id.clone();
    tokio::spawn(follow(
        client.clone(),
        session.clone(),
        handle,
        receiver,
        token.clone(),
        plan_only,
    ));
    Ok(json!({"runId": id, "token": shown.then_some(token)}))
}

/// Shows a run's progress until it ends, then its outcome: the plan document for a plan-only
/// run, and a message saying what happened and, for a failure, what to do.
async fn follow(
    client: Client,
    session: Arc<Session>,
    handle: RunHandle,
    lines: mpsc::UnboundedReceiver<String>,
    token: String,
    plan_only: bool,
) {
    let RunHandle {
        id,
        cancel,
        outcome,
    } = handle;
    let Some((outcome, progress)) = follow_progress(
        &client,
        &session,
        &id,
        token,
        &format!("Conductor run {id}"),
        cancel,
        lines,
        outcome,
    )
    .await
    else {
        return;
    };
    // The run itself published the findings it left and refreshed its lenses, through its
    // port, before it ended.
    progress.end(outcome.state.as_str()).await;
    enforce_retention(&session).await;
    if plan_only
        && outcome.state == RunState::Done
        && let Some(plan) = &outcome.plan_file
    {
        let editor = LspEditor::new(client.clone(), session.clone());
        if crate::editor::Editor::show(&editor, plan).await {
            client
                .show_message(
                    MessageType::INFO,
                    format!(
                        "Conductor run {id}: the plan is open. Untick, reword or reorder its steps, then use \"Run this plan\" at its top"
                    ),
                )
                .await;
            return;
        }
    }
    let (tone, text) = editor_runs::run_message(&outcome);
    client.show_message(convert::message_type(tone), text).await;
}

/// Shows a run's progress under `token` (titled `title`, cancellable from the editor) until
/// its task ends, its lines in order; returns the task's outcome and the progress to end, or
/// `None` when the task stopped unexpectedly (the progress is ended and the user told).
#[allow(clippy::too_many_arguments)]
pub(super) async fn follow_progress<T>(
    client: &Client,
    session: &Session,
    id: &str,
    token: String,
    title: &str,
    cancel: tokio_util::sync::CancellationToken,
    mut lines: mpsc::UnboundedReceiver<String>,
    mut outcome: tokio::task::JoinHandle<T>,
) -> Option<(T, super::progress::Progress)> {
    let progress = session
        .begin_progress(
            client,
            token,
            title,
            Some("starting".into()),
            Some(Arc::new(move || cancel.cancel())),
        )
        .await;
    let mut open = true;
    let ended = loop {
        tokio::select! {
            line = lines.recv(), if open => match line {
                Some(line) => progress.report(line, None).await,
                None => open = false,
            },
            ended = &mut outcome => break ended,
        }
    };
    // Lines sent just before the end, in order.
    while let Ok(line) = lines.try_recv() {
        progress.report(line, None).await;
    }
    match ended {
        Ok(outcome) => Some((outcome, progress)),
        Err(err) => {
            tracing::error!(run = %id, "the run's task stopped: {err}");
            progress.end("stopped unexpectedly").await;
            client
                .show_message(
                    MessageType::ERROR,
                    format!("Conductor run {id} stopped unexpectedly; see Conductor's log"),
                )
                .await;
            None
        }
    }
}

/// Applies journal retention (`[journal]`) after a run or a review was journalled, off the
/// async threads (it walks the runs folder); what it removed goes to the log.
pub(super) async fn enforce_retention(session: &Session) {
    let Some(root) = session.root() else {
        return;
    };
    let settings = session.config().journal.clone();
    let _ = crate::util::background(move || {
        match crate::journal::retention::enforce(&root, &settings) {
            Ok(removed) => {
                if let Some(summary) = removed.summary() {
                    tracing::info!("journal retention: {summary}");
                }
                for warning in removed.warnings {
                    tracing::warn!("journal retention: {warning}");
                }
            }
            Err(err) => tracing::warn!("journal retention failed: {err}"),
        }
    })
    .await;
}

/// `conductor.runs`: the runs of this workspace, newest first — the ones in flight with their
/// stage, and the finished ones from their journals.
async fn runs(session: &Arc<Session>) -> Result<Value, Error> {
    let root = session
        .root()
        .ok_or_else(|| failed("conductor.runs needs a workspace folder"))?;
    let active = session.app.runs.active();
    let listed = crate::util::background(move || crate::journal::list(&root))
        .await
        .map_err(|e| failed(format!("listing the runs failed: {e}")))?;
    let (summaries, warnings) = match listed {
        Ok(listed) => listed,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => (Vec::new(), Vec::new()),
        Err(err) => return Err(failed(format!("cannot read the run journals: {err}"))),
    };
    let out = editor_runs::run_list(&summaries, &active);
    Ok(json!({"runs": out, "warnings": warnings}))
}

/// The code actions that start a run on a selection of an open document: "Implement goal
/// from comment" and "Plan only" where the selected (or current) lines hold a
/// `// conductor: <goal>` comment, and "Write tests for this" in a Rust file.
pub fn code_actions(session: &Session, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let Some(snapshot) = session.snapshot(uri.as_str()) else {
        return Vec::new();
    };
    let Some(root) = session.root() else {
        return Vec::new();
    };
    let inside = snapshot.path.as_ref().is_some_and(|p| {
        let root = root.canonicalize().unwrap_or(root);
        p.canonicalize()
            .unwrap_or_else(|_| p.clone())
            .starts_with(root)
    });
    // Run artefacts (plans, explanations) are not code to run agents on.
    if !inside
        || snapshot
            .path
            .as_ref()
            .is_some_and(|p| p.components().any(|c| c.as_os_str() == ".conductor"))
    {
        return Vec::new();
    }
    let range = params.range;
    let lines = snapshot.text.len_lines();
    let (first, last) = (range.start.line as usize, range.end.line as usize);
    let mut actions = Vec::new();
    let comment = (first..=last.min(first + 200))
        .filter(|&n| n < lines)
        .find_map(|n| {
            let line = snapshot.text.line(n).to_string();
            editor_runs::goal_comment(&line).map(|goal| {
                (
                    goal.to_string(),
                    line.trim_end_matches(['\n', '\r']).to_string(),
                )
            })
        });
    let kind = CodeActionKind::new(RUN_KIND);
    let action = |title: &str, command: &str, arguments: Value| {
        CodeActionOrCommand::CodeAction(CodeAction {
            title: title.into(),
            kind: Some(kind.clone()),
            command: Some(Command {
                title: title.into(),
                command: command.into(),
                arguments: Some(vec![arguments]),
            }),
            ..CodeAction::default()
        })
    };
    if let Some((goal, line)) = comment {
        actions.push(action(
            "Conductor: Implement goal from comment",
            ORCHESTRATE,
            json!({"uri": uri, "range": range, "goal": goal, "removeLine": line}),
        ));
        actions.push(action(
            "Conductor: Plan only",
            PLAN,
            json!({"uri": uri, "range": range, "goal": goal}),
        ));
    }
    if snapshot.language.is_some_and(|l| l.name == "rust") {
        actions.push(action(
            "Conductor: Write tests for this",
            WRITE_TESTS,
            json!({"uri": uri, "range": range}),
        ));
    }
    actions
}

/// "Conductor: Fix with agents" for one security diagnostic.
pub fn fix_action(uri: &Uri, diagnostic: &Diagnostic) -> CodeActionOrCommand {
    let title = "Conductor: Fix with agents";
    CodeActionOrCommand::CodeAction(CodeAction {
        title: title.into(),
        kind: Some(CodeActionKind::new(FIX_KIND)),
        diagnostics: Some(vec![diagnostic.clone()]),
        command: Some(Command {
            title: title.into(),
            command: FIX.into(),
            arguments: Some(vec![json!({"uri": uri, "diagnostic": diagnostic})]),
        }),
        ..CodeAction::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_ending_at_column_zero_does_not_take_that_line() {
        let r = |a: u32, ac: u32, b: u32, bc: u32| {
            Range::new(Position::new(a, ac), Position::new(b, bc))
        };
        assert_eq!(lines_of(&r(2, 0, 5, 0)), (3, 5));
        assert_eq!(lines_of(&r(2, 4, 5, 1)), (3, 6));
        assert_eq!(lines_of(&r(2, 4, 2, 4)), (3, 3));
    }
}
