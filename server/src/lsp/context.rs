//! The context engine in the editor: the live index fed from the editor's state (open
//! documents, watched-file events, settings), indexing progress, the `conductor.showContext`
//! command and the "Conductor: Show context" code action.
//!
//! Every handler here only sends a message to the index thread (`context::live`) and returns:
//! nothing parses or indexes on the session's tasks. Open documents win over the disk: their
//! text (and their tree) is what the index holds, and file-watcher events for them are ignored
//! until they close.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::*;

use super::convert;
use super::progress::Progress;
use super::requests;
use super::session::Session;
use crate::context::BundleRequest;
use crate::context::live::IndexEvent;

/// The command that writes the context bundle of a selection under `.conductor/` and opens it.
pub const SHOW_CONTEXT: &str = "conductor.showContext";
/// The code action kind of "Conductor: Show context".
pub const SHOW_CONTEXT_KIND: &str = "conductor.showContext";
/// The title of the code action.
pub const SHOW_CONTEXT_TITLE: &str = "Conductor: Show context";
const WATCHERS_ID: &str = "conductor-context-watched-files";

/// Starts indexing the workspace, shows the index thread's builds as `$/progress` (one token
/// per build), and registers file watching. Called once, after `initialized`; waits on no
/// client answer before the build starts.
pub async fn start(client: Client, session: Arc<Session>) {
    if let Some(events) = session.take_index_events() {
        tokio::spawn(report_builds(client.clone(), session.clone(), events));
    }
    match session.root() {
        Some(root) => {
            session
                .app
                .index
                .rebuild(root, session.config().context.clone());
        }
        None => tracing::info!("no workspace folder: the context index is not built"),
    }
    if session.client().dynamic_watched_files {
        let watchers = ["**/*.rs", "**/Cargo.toml", "**/conductor.toml"]
            .iter()
            .map(|glob| FileSystemWatcher {
                glob_pattern: GlobPattern::String(glob.to_string()),
                kind: None,
            })
            .collect();
        let options = DidChangeWatchedFilesRegistrationOptions { watchers };
        let registration = Registration {
            id: WATCHERS_ID.into(),
            method: "workspace/didChangeWatchedFiles".into(),
            register_options: serde_json::to_value(options).ok(),
        };
        requests::register(&client, registration).await;
    }
}

/// Turns the index thread's reports into `$/progress`, a token per build.
async fn report_builds(
    client: Client,
    session: Arc<Session>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<IndexEvent>,
) {
    let mut current: Option<(u64, Progress, u32)> = None;
    while let Some(event) = events.recv().await {
        match event {
            IndexEvent::Started { generation } => {
                let root = session.root().map(|r| r.display().to_string());
                let progress = session
                    .begin_progress(
                        &client,
                        session.progress.token("indexing"),
                        "Conductor: indexing",
                        root,
                        None,
                    )
                    .await;
                if let Some((_, old, _)) = current.replace((generation, progress, 0)) {
                    old.end("replaced by a newer build").await;
                }
            }
            IndexEvent::Progress {
                generation,
                done,
                total,
            } => {
                if let Some((g, progress, reported)) = current.as_mut()
                    && *g == generation
                {
                    let percentage = (100 * done / total.max(1)) as u32;
                    if percentage > *reported || done == total {
                        *reported = percentage;
                        progress
                            .report(format!("{done}/{total} files"), Some(percentage))
                            .await;
                    }
                }
            }
            IndexEvent::Finished {
                generation,
                outcome,
            } => {
                let message = match outcome {
                    Ok(summary) => {
                        tracing::info!("context: {summary}");
                        if let Some(index) = session.app.index.snapshot() {
                            for note in index.notes().0 {
                                tracing::info!("context index: {note}");
                            }
                        }
                        summary
                    }
                    Err(err) => {
                        client
                            .show_message(
                                MessageType::WARNING,
                                format!("Conductor could not index the workspace: {err}"),
                            )
                            .await;
                        format!("indexing failed: {err}")
                    }
                };
                if let Some((g, progress, _)) = current.take() {
                    if g == generation {
                        progress.end(message).await;
                    } else {
                        current = Some((g, progress, 0));
                    }
                }
            }
            IndexEvent::Superseded { generation } => {
                tracing::info!("context: build {generation} superseded by a newer one");
                if let Some((g, progress, _)) = current.take() {
                    if g == generation {
                        progress.end("superseded by a newer build").await;
                    } else {
                        current = Some((g, progress, 0));
                    }
                }
            }
        }
    }
}

/// New `[context]` settings: a rebuild when what is indexed changed, in place otherwise.
pub fn settings_changed(session: &Session) {
    if let Some(root) = session.root()
        && let Some(generation) = session
            .app
            .index
            .settings_changed(root, session.config().context.clone())
    {
        tracing::info!("context settings changed: re-indexing (build {generation})");
    }
}

/// The open document `uri` changed (didOpen, didChange, didSave): O(1), the index thread does
/// the work.
pub fn document_changed(session: &Session, uri: &str) {
    if let Some(snapshot) = session.snapshot(uri) {
        session.app.index.document_changed(snapshot);
    }
}

/// A document closed: what is on disk is the truth again.
pub fn document_closed(session: &Session, uri: &Uri) {
    if let Some(path) = convert::uri_to_path(uri) {
        session.app.index.document_closed(path);
    }
}

/// Files changed on disk (another tool, a `git checkout`, a save from elsewhere).
pub fn watched_files_changed(session: &Session, changes: &[FileEvent]) {
    let changes: Vec<(std::path::PathBuf, bool)> = changes
        .iter()
        .filter_map(|event| {
            let path = convert::uri_to_path(&event.uri)?;
            Some((path, event.typ == FileChangeType::DELETED))
        })
        .collect();
    session.app.index.files_changed(changes);
}

/// "Conductor: Show context" for a range of a Rust document.
pub fn code_actions(session: &Session, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let is_rust = session
        .snapshot(uri.as_str())
        .is_some_and(|s| s.language.is_some_and(|l| l.name == "rust"));
    if !is_rust {
        return Vec::new();
    }
    let kind = CodeActionKind::new(SHOW_CONTEXT_KIND);
    if let Some(only) = &params.context.only
        && !only.iter().any(|k| kind.as_str().starts_with(k.as_str()))
    {
        return Vec::new();
    }
    let command = Command {
        title: SHOW_CONTEXT_TITLE.into(),
        command: SHOW_CONTEXT.into(),
        arguments: Some(vec![json!({"uri": uri, "range": params.range})]),
    };
    vec![CodeActionOrCommand::CodeAction(CodeAction {
        title: SHOW_CONTEXT_TITLE.into(),
        kind: Some(kind),
        command: Some(command),
        ..CodeAction::default()
    })]
}

/// The argument of `conductor.showContext`.
#[derive(Debug, Deserialize)]
struct ShowContextArgs {
    uri: Uri,
    range: Option<Range>,
    goal: Option<String>,
    budget: Option<usize>,
}

/// Why `conductor.showContext` gave no bundle: the caller's mistake, or a failure on the way
/// (a file that cannot be read, an index not built yet), each with a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The arguments were wrong.
    BadArguments(String),
    /// Something failed while building or writing the bundle.
    Failed(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Failed(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Failure::Failed(message.into())
    }
}

/// `conductor.showContext`: builds the bundle, writes it as markdown under
/// `.conductor/context/` and asks the client to show it (in the background). Returns `{path,
/// items, totalTokens, budget}`.
pub async fn show_context(
    client: &Client,
    session: Arc<Session>,
    arguments: Vec<Value>,
) -> Result<Value, Failure> {
    let args: ShowContextArgs = arguments
        .into_iter()
        .next()
        .ok_or_else(|| format!("{SHOW_CONTEXT} needs an argument {{uri, range?, goal?}}"))
        .and_then(|v| {
            serde_json::from_value(v).map_err(|e| format!("{SHOW_CONTEXT}: bad argument: {e}"))
        })
        .map_err(Failure::BadArguments)?;
    let path = convert::uri_to_path(&args.uri)
        .ok_or_else(|| Failure::BadArguments(format!("{} is not a file", args.uri.as_str())))?;
    let root = session
        .root()
        .ok_or("Conductor has no workspace folder, so it has no index to draw context from")?;
    // The live text when the document is open, the disk otherwise.
    let (text, range, snapshot) = match session.snapshot(args.uri.as_str()) {
        Some(snapshot) => {
            let encoding = session.encoding();
            let range = args
                .range
                .map_or(0..0, |r| convert::byte_range(&snapshot, r, encoding));
            (snapshot.to_text(), range, Some(snapshot))
        }
        None => {
            let text = crate::util::read_regular_text(&path, crate::util::MAX_READ_BYTES)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let rope = ropey::Rope::from_str(&text);
            let encoding = session.encoding();
            let range = args.range.map_or(0..0, |r| {
                let a = crate::document::position::offset_of(
                    &rope,
                    convert::from_position(r.start),
                    encoding,
                );
                let b = crate::document::position::offset_of(
                    &rope,
                    convert::from_position(r.end),
                    encoding,
                );
                a.min(b)..a.max(b)
            });
            (text, range, None)
        }
    };
    let request = BundleRequest {
        file: path.clone(),
        text: Some(text),
        tree: None,
        range,
        goal: args.goal,
        budget: args.budget,
    };
    let app = session.app.clone();
    let shown = crate::util::background(move || {
        crate::context::show::write_bundle(&app, &root, request, snapshot)
    })
    .await
    .map_err(|e| format!("building the context failed: {e}"))??;
    let out = shown.path.clone();
    // The command answers now; showing the document waits on the client, so it happens in the
    // background.
    let editor = super::editor::LspEditor::new(client.clone(), session.clone());
    let message_client = client.clone();
    let written = out.display().to_string();
    let shown_path = out.clone();
    tokio::spawn(async move {
        let shown = crate::editor::Editor::show(&editor, &shown_path).await;
        if !shown {
            message_client
                .show_message(
                    MessageType::INFO,
                    format!("Conductor: context written to {written}"),
                )
                .await;
        }
    });
    Ok(json!({
        "path": out.display().to_string(),
        "items": shown.items,
        "totalTokens": shown.total_tokens,
        "budget": shown.budget,
    }))
}
