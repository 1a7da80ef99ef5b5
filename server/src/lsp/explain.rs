//! "Explain trade-offs" in the editor: the command `conductor.explain {uri, range, question?}`
//! and its code action on any non-empty selection of a workspace file. Conversion only: the
//! explain run is `orchestrator::explain`'s.
//!
//! The command answers at once with `{runId, token}`; the run goes on in the background with
//! work-done progress (cancellable), and when it ends the user gets the document
//! (`window/showDocument`, or a message naming its path when the client cannot show
//! documents) and a message with the summary — or an error message saying what failed and
//! what to do. Then the client is asked to refresh its code lenses, since the run left a
//! decision anchored on the selection.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::Error;
use tower_lsp_server::ls_types::*;

use super::editor::LspEditor;
use super::runs::{argument, bad, failed, lines_of, workspace_file};
use super::session::Session;
use crate::journal::{CONDUCTOR_DIR, RunState};
use crate::orchestrator::RunEnv;
use crate::orchestrator::explain::{ExplainHandle, ExplainRequest};

/// `conductor.explain` `[{uri, range, question?}]`: a trade-off explanation of the selection.
pub const EXPLAIN: &str = "conductor.explain";
/// The kind of "Conductor: Explain trade-offs".
pub const EXPLAIN_KIND: &str = "refactor.conductor.explain";
/// The title of the code action.
pub const EXPLAIN_TITLE: &str = "Conductor: Explain trade-offs";

/// The commands of this module, by name, for the server's command table.
pub const COMMAND_NAMES: &[&str] = &[EXPLAIN];

const SHAPE: &str = "{uri, range, question?}";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExplainArgs {
    uri: Uri,
    range: Range,
    /// Also taken as `goal`: the Neovim plugin sends a command's text under that name
    /// (`:ConductorExplain why no retry?`).
    #[serde(alias = "goal")]
    question: Option<String>,
}

/// Whole lines `first..=last` (1-based) of `text`, or `None` past its end.
fn lines_slice(text: &ropey::Rope, (first, last): (usize, usize)) -> Option<ropey::RopeSlice<'_>> {
    let count = text.len_lines();
    if first == 0 || first > count {
        return None;
    }
    let last = last.min(count);
    Some(text.slice(text.line_to_char(first - 1)..text.line_to_char(last)))
}

/// Whether lines `first..=last` of `text` exist and hold something besides blanks. Stops at
/// the first such character and copies nothing: code actions are asked for at every cursor
/// move, on selections as large as the file.
fn has_code(text: &ropey::Rope, lines: (usize, usize)) -> Option<bool> {
    lines_slice(text, lines).map(|slice| slice.chars().any(|c| !c.is_whitespace()))
}

/// `conductor.explain`: checks the arguments (a workspace file, a non-empty selection with
/// something in it), starts the explain run and answers `{runId, token}`.
pub async fn execute(
    client: &Client,
    session: &Arc<Session>,
    arguments: Vec<Value>,
) -> Result<Value, Error> {
    let args: ExplainArgs = argument(EXPLAIN, SHAPE, arguments)?;
    if args.range.start == args.range.end {
        return Err(bad(format!(
            "{EXPLAIN}: the selection is empty; select the code to explain"
        )));
    }
    let file = workspace_file(session, EXPLAIN, &args.uri)?;
    if file.components().any(|c| c.as_os_str() == CONDUCTOR_DIR) {
        return Err(bad(format!(
            "{EXPLAIN}: {} is one of Conductor's own documents, not code to explain",
            file.display()
        )));
    }
    let lines = lines_of(&args.range);
    // The user's buffer when the file is open, else the disk: the same text the run reads.
    let text = match session.snapshot(args.uri.as_str()) {
        Some(snapshot) => snapshot.text,
        None => {
            let path = file.clone();
            let read = tokio::task::spawn_blocking(move || {
                crate::util::read_regular_text(&path, crate::util::MAX_READ_BYTES)
            })
            .await
            .map_err(|e| failed(format!("{EXPLAIN}: reading {}: {e}", file.display())))?;
            let text =
                read.map_err(|e| bad(format!("{EXPLAIN}: reading {}: {e}", file.display())))?;
            ropey::Rope::from_str(&text)
        }
    };
    match has_code(&text, lines) {
        None => {
            return Err(bad(format!(
                "{EXPLAIN}: lines {}-{} are past the end of {}",
                lines.0,
                lines.1,
                file.display()
            )));
        }
        Some(false) => {
            return Err(bad(format!(
                "{EXPLAIN}: the selected lines {}-{} are blank; select the code to explain",
                lines.0, lines.1
            )));
        }
        Some(true) => {}
    }
    let question = args
        .question
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty());
    let request = ExplainRequest {
        file,
        lines,
        question,
    };
    let (progress_lines, receiver) = mpsc::unbounded_channel();
    let editor = Arc::new(LspEditor::for_run(
        client.clone(),
        session.clone(),
        None,
        progress_lines,
    ));
    let env = RunEnv::for_app(&session.app, editor)
        .ok_or_else(|| failed(format!("{EXPLAIN} needs a workspace folder")))?;
    let handle = session
        .app
        .runs
        .start_explain(env, request)
        .map_err(|e| failed(e.to_string()))?;
    let token = session.progress.token("explain");
    let shown = session.client().work_done_progress;
    let id = handle.id.clone();
    tokio::spawn(follow(
        client.clone(),
        session.clone(),
        handle,
        receiver,
        token.clone(),
    ));
    Ok(json!({"runId": id, "token": shown.then_some(token)}))
}

/// Shows the run's progress until it ends, then its outcome: the document and the summary, or
/// what failed; then asks the client to refresh its code lenses.
async fn follow(
    client: Client,
    session: Arc<Session>,
    handle: ExplainHandle,
    lines: mpsc::UnboundedReceiver<String>,
    token: String,
) {
    let ExplainHandle {
        id,
        cancel,
        outcome,
    } = handle;
    let Some((outcome, progress)) = super::runs::follow_progress(
        &client,
        &session,
        &id,
        token,
        // The title editors follow runs by ("Conductor run <id>: <goal>"), so their run lists
        // and cancel commands see this one too.
        &format!("Conductor run {id}: explain trade-offs"),
        cancel,
        lines,
        outcome,
    )
    .await
    else {
        return;
    };
    progress.end(outcome.state.as_str()).await;
    if let (RunState::Done, Some(document)) = (outcome.state, &outcome.document) {
        let editor = LspEditor::new(client.clone(), session.clone());
        if !crate::editor::Editor::show(&editor, document).await {
            client
                .show_message(
                    MessageType::INFO,
                    format!(
                        "Conductor run {id}: the explanation is in {}",
                        document.display()
                    ),
                )
                .await;
        }
    }
    let (tone, text) = crate::orchestrator::editor_runs::explain_message(&outcome);
    client
        .show_message(super::convert::message_type(tone), text)
        .await;
    // The run refreshed the lenses over its decision through its port before it ended.
}

/// "Conductor: Explain trade-offs" on a non-empty selection (with something besides blanks in
/// it) of an open document inside the workspace, in any language; not on Conductor's own
/// documents.
pub fn code_actions(session: &Session, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let range = params.range;
    if range.start == range.end {
        return Vec::new();
    }
    let uri = &params.text_document.uri;
    let (Some(snapshot), Some(root)) = (session.snapshot(uri.as_str()), session.root()) else {
        return Vec::new();
    };
    let Some(path) = &snapshot.path else {
        return Vec::new();
    };
    let root = root.canonicalize().unwrap_or(root);
    let path = path.canonicalize().unwrap_or_else(|_| path.clone());
    let inside = path
        .strip_prefix(&root)
        .is_ok_and(|rel| !rel.components().any(|c| c.as_os_str() == CONDUCTOR_DIR));
    if !inside {
        return Vec::new();
    }
    if has_code(&snapshot.text, lines_of(&range)) != Some(true) {
        return Vec::new();
    }
    let command = Command {
        title: EXPLAIN_TITLE.into(),
        command: EXPLAIN.into(),
        arguments: Some(vec![json!({"uri": uri, "range": range})]),
    };
    vec![CodeActionOrCommand::CodeAction(CodeAction {
        title: EXPLAIN_TITLE.into(),
        kind: Some(CodeActionKind::new(EXPLAIN_KIND)),
        command: Some(command),
        ..CodeAction::default()
    })]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selected_lines_are_whole_lines_and_none_past_the_end() {
        let text = ropey::Rope::from_str("a\n  \nb\n");
        let lines = |a, b| lines_slice(&text, (a, b)).map(|s| s.to_string());
        assert_eq!(lines(1, 1).as_deref(), Some("a\n"));
        assert_eq!(lines(2, 9).as_deref(), Some("  \nb\n"));
        assert_eq!(lines(5, 6), None);
        assert_eq!(lines(0, 1), None);
        assert_eq!(has_code(&text, (1, 1)), Some(true));
        assert_eq!(has_code(&text, (2, 2)), Some(false));
        assert_eq!(has_code(&text, (2, 3)), Some(true));
        assert_eq!(has_code(&text, (4, 4)), Some(false), "the empty last line");
        assert_eq!(has_code(&text, (5, 5)), None);
    }
}
