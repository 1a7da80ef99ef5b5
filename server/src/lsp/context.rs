//! The context engine in the editor: the workspace index kept current from the editor's live
//! state, indexing progress, the `conductor.showContext` command and the "Conductor: Show
//! context" code action.
//!
//! The index lives in [`ContextState`] behind a plain mutex, taken only in short synchronous
//! sections (an update is well under 5 ms, a bundle under 30 ms) and never across an `.await`.
//! Open documents win over the disk: their text (and their incrementally parsed tree) is what
//! the index holds, and file-watcher events for them are ignored until they close.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Deserialize;
use serde_json::{Value, json};
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::*;

use super::convert;
use super::session::Session;
use crate::context::{BundleRequest, WorkspaceIndex, build_bundle};

/// The command that writes the context bundle of a selection under `.conductor/` and opens it.
pub const SHOW_CONTEXT: &str = "conductor.showContext";
/// The code action kind of "Conductor: Show context".
pub const SHOW_CONTEXT_KIND: &str = "conductor.showContext";
/// The title of the code action.
pub const SHOW_CONTEXT_TITLE: &str = "Conductor: Show context";
const PROGRESS_TOKEN: &str = "conductor/indexing";
const WATCHERS_ID: &str = "conductor-context-watched-files";

/// The workspace index and what has been applied to it.
#[derive(Debug, Default)]
pub struct ContextState {
    index: Mutex<Option<WorkspaceIndex>>,
    /// The document version last applied per path, so that a late handler never overwrites a
    /// newer text with an older one.
    applied: Mutex<HashMap<PathBuf, i32>>,
    /// Whether file watching has been registered (once per session).
    watching: std::sync::atomic::AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ContextState {
    /// Runs `f` on the index, if it has been built.
    pub fn with_index<T>(&self, f: impl FnOnce(&mut WorkspaceIndex) -> T) -> Option<T> {
        lock(&self.index).as_mut().map(f)
    }
}

/// Builds the index in the background with `$/progress`, then brings in the open documents and
/// registers file watching. Called once, after `initialized`.
pub async fn start_indexing(client: Client, session: Arc<Session>) {
    let Some(root) = session.root() else {
        tracing::info!("no workspace folder: the context index is not built");
        return;
    };
    let settings = session.config().context;
    let facts = session.client();
    let progress = if facts.work_done_progress {
        let token = NumberOrString::String(PROGRESS_TOKEN.into());
        match client.create_work_done_progress(token.clone()).await {
            Ok(()) => Some(
                client
                    .progress(token, "Conductor: indexing")
                    .with_message(root.display().to_string())
                    .with_percentage(0)
                    .begin()
                    .await,
            ),
            Err(err) => {
                tracing::warn!("window/workDoneProgress/create failed: {err}");
                None
            }
        }
    } else {
        None
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
    let build_root = root.clone();
    let build = tokio::task::spawn_blocking(move || {
        WorkspaceIndex::build_with_progress(&build_root, &settings, &|done, total| {
            let _ = tx.send((done, total));
        })
    });
    if let Some(progress) = &progress {
        while let Some((done, total)) = rx.recv().await {
            let percentage = (100 * done / total.max(1)) as u32;
            progress
                .report_with_message(format!("{done}/{total} files"), percentage)
                .await;
        }
    }
    let outcome = match build.await {
        Ok(Ok(index)) => Ok(index),
        Ok(Err(err)) => Err(format!("{err:#}")),
        Err(err) => Err(format!("the indexing task failed: {err}")),
    };
    let message = match outcome {
        Ok(mut index) => {
            // Edits made while the disk was being read win over it.
            let mut applied = lock(&session.context.applied);
            for snapshot in session.with_documents(|docs| docs.snapshots()) {
                if let Some(path) = &snapshot.path {
                    let text = snapshot.to_text();
                    if index
                        .update_file_parsed(path, &text, snapshot.tree.as_ref())
                        .is_ok()
                    {
                        applied.insert(path.clone(), snapshot.version);
                    }
                }
            }
            drop(applied);
            let (notes, skipped) = index.notes();
            for note in notes {
                tracing::info!("context index: {note}");
            }
            let message = format!(
                "indexed {} files ({} lines){}",
                index.file_count(),
                index.line_count(),
                if skipped > 0 {
                    format!(", {skipped} skipped (see the log)")
                } else {
                    String::new()
                }
            );
            *lock(&session.context.index) = Some(index);
            message
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
    tracing::info!("context: {message}");
    if let Some(progress) = progress {
        progress.finish_with_message(message).await;
    }
    let first_registration = !session
        .context
        .watching
        .swap(true, std::sync::atomic::Ordering::SeqCst);
    if facts.dynamic_watched_files && first_registration {
        let watchers = ["**/*.rs", "**/Cargo.toml"]
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
        if let Err(err) = client.register_capability(vec![registration]).await {
            tracing::warn!("registering didChangeWatchedFiles failed: {err}");
        }
    }
}

/// Rebuilds the index when the `[context]` settings it was built with have changed.
pub fn settings_changed(client: &Client, session: &Arc<Session>) {
    let wanted = session.config().context;
    let stale = session
        .context
        .with_index(|index| *index.settings() != wanted)
        .unwrap_or(false);
    if stale {
        tracing::info!("context settings changed: re-indexing");
        lock(&session.context.applied).clear();
        tokio::spawn(start_indexing(client.clone(), session.clone()));
    }
}

/// Brings the index up to the open document `uri` (after didOpen, didChange, didSave).
pub fn document_changed(session: &Session, uri: &str) {
    let Some(snapshot) = session.snapshot(uri) else {
        return;
    };
    let Some(path) = snapshot.path.clone() else {
        return;
    };
    let mut applied = lock(&session.context.applied);
    if applied.get(&path).is_some_and(|v| *v >= snapshot.version) {
        return;
    }
    let text = snapshot.to_text();
    let result = session
        .context
        .with_index(|index| index.update_file_parsed(&path, &text, snapshot.tree.as_ref()));
    match result {
        Some(Ok(())) => {
            applied.insert(path, snapshot.version);
        }
        Some(Err(err)) => tracing::debug!("context index: {err:#}"),
        // Not built yet: the build brings open documents in when it finishes.
        None => {}
    }
}

/// A document closed: what is on disk is the truth again.
pub fn document_closed(session: &Session, uri: &Uri) {
    let Some(path) = convert::uri_to_path(uri) else {
        return;
    };
    lock(&session.context.applied).remove(&path);
    if let Some(Err(err)) = session
        .context
        .with_index(|index| index.update_file_from_disk(&path))
    {
        tracing::debug!("context index: {err:#}");
    }
}

/// Files changed on disk (another tool, a `git checkout`, a save from elsewhere).
pub fn watched_files_changed(session: &Session, params: DidChangeWatchedFilesParams) {
    for event in params.changes {
        let Some(path) = convert::uri_to_path(&event.uri) else {
            continue;
        };
        if event.typ != FileChangeType::DELETED && session.snapshot(event.uri.as_str()).is_some() {
            // Open in the editor: its live text is already in the index.
            continue;
        }
        let result = session.context.with_index(|index| {
            if event.typ == FileChangeType::DELETED {
                index.remove_file(&path)
            } else {
                index.update_file_from_disk(&path)
            }
        });
        if let Some(Err(err)) = result {
            tracing::debug!("context index: {err:#}");
        }
    }
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

/// `conductor.showContext`: builds the bundle, writes it as markdown under
/// `.conductor/context/` and asks the client to show it. Returns `{path, items, totalTokens,
/// budget}`; an `Err` is a message for the user.
pub async fn show_context(
    client: &Client,
    session: Arc<Session>,
    arguments: Vec<Value>,
) -> Result<Value, String> {
    let args: ShowContextArgs = arguments
        .into_iter()
        .next()
        .ok_or_else(|| format!("{SHOW_CONTEXT} needs an argument {{uri, range?, goal?}}"))
        .and_then(|v| {
            serde_json::from_value(v).map_err(|e| format!("{SHOW_CONTEXT}: bad argument: {e}"))
        })?;
    let path = convert::uri_to_path(&args.uri)
        .ok_or_else(|| format!("{} is not a file", args.uri.as_str()))?;
    let root = session
        .root()
        .ok_or("Conductor has no workspace folder, so it has no index to draw context from")?;
    // The live text when the document is open, the disk otherwise.
    let (text, range) = match session.snapshot(args.uri.as_str()) {
        Some(snapshot) => {
            let encoding = session.encoding();
            let range = args
                .range
                .map_or(0..0, |r| convert::byte_range(&snapshot, r, encoding));
            (snapshot.to_text(), range)
        }
        None => {
            let text = std::fs::read_to_string(&path)
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
            (text, range)
        }
    };
    let request = BundleRequest {
        file: path.clone(),
        text: Some(text),
        range,
        goal: args.goal,
        budget: args.budget,
    };
    let worker = session.clone();
    let bundle = tokio::task::spawn_blocking(move || {
        // Catch up on open documents whose handlers have not run yet.
        for snapshot in worker.with_documents(|docs| docs.snapshots()) {
            document_changed(&worker, &snapshot.uri);
        }
        worker
            .context
            .with_index(|index| build_bundle(index, &request).map_err(|e| format!("{e:#}")))
    })
    .await
    .map_err(|e| format!("building the context failed: {e}"))?
    .ok_or("the workspace is still being indexed; try again in a moment")??;

    let line = bundle.items.first().map_or(1, |i| i.start_line);
    let name = bundle
        .file
        .trim_start_matches('/')
        .replace(['/', '\\', ':'], "_");
    let out = root
        .join(".conductor")
        .join("context")
        .join(format!("{name}-L{line}.md"));
    write_document(&out, &bundle.to_markdown())?;
    let shown = match convert::path_to_uri(&out) {
        Some(uri) if session.client().show_document => client
            .show_document(ShowDocumentParams {
                uri,
                external: None,
                take_focus: Some(true),
                selection: None,
            })
            .await
            .unwrap_or(false),
        _ => false,
    };
    if !shown {
        client
            .show_message(
                MessageType::INFO,
                format!("Conductor: context written to {}", out.display()),
            )
            .await;
    }
    Ok(json!({
        "path": out.display().to_string(),
        "items": bundle.items.len(),
        "totalTokens": bundle.total_tokens,
        "budget": bundle.budget,
    }))
}

fn write_document(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
