//! The language server's state: the application state (`App`, which knows no LSP) plus what
//! only a language server has — the negotiated encoding, what the client supports, and the
//! registry of work-done progress.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::progress::ProgressRegistry;
use crate::app::App;
use crate::config::{Config, ConfigSources};
use crate::context::live::IndexEvent;
use crate::document::{Documents, PositionEncoding, Snapshot};
use crate::util::lock;

/// What the client said it supports, as far as the server cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFacts {
    /// The client answers `workspace/configuration`.
    pub configuration: bool,
    /// The client accepts dynamic registration of `workspace/didChangeConfiguration`.
    pub dynamic_configuration: bool,
    /// The client shows `$/progress` for server-created tokens.
    pub work_done_progress: bool,
    /// The client supports `window/showDocument`.
    pub show_document: bool,
    /// The client supports `workspace/applyEdit`.
    pub apply_edit: bool,
    /// The client takes `documentChanges` (versioned edits) in a `WorkspaceEdit`.
    pub document_changes: bool,
    /// The resource operations (`create`, `rename`, `delete`) a `WorkspaceEdit` may hold.
    pub resource_operations: Vec<String>,
    /// How the client fails a workspace edit it cannot apply whole (`abort`, `transactional`,
    /// `textOnlyTransactional`, `undo`), when it says.
    pub failure_handling: Option<String>,
    /// The client supports change annotations in workspace edits.
    pub change_annotations: bool,
    /// The client groups annotated edits by their label in its preview.
    pub annotation_groups_on_label: bool,
    /// The client asks for `textDocument/codeLens`.
    pub code_lens: bool,
    /// The client accepts `workspace/codeLens/refresh`.
    pub code_lens_refresh: bool,
    /// The client shows action items in `window/showMessageRequest`.
    pub message_action_items: bool,
    /// The client supports `workspace/didChangeWatchedFiles` dynamic registration.
    pub dynamic_watched_files: bool,
}

impl ClientFacts {
    /// Whether a workspace edit may create files.
    pub fn can_create_files(&self) -> bool {
        self.document_changes && self.resource_operations.iter().any(|op| op == "create")
    }
}

/// State shared by the transport hook and every handler.
#[derive(Debug)]
pub struct Session {
    /// Documents, root, configuration, index, models.
    pub app: Arc<App>,
    encoding: Mutex<PositionEncoding>,
    /// Whether an `initialize` has been seen (only the first one negotiates).
    initialized: std::sync::atomic::AtomicBool,
    client: Mutex<ClientFacts>,
    /// What the index thread reported, until `lsp::context` takes it to show progress.
    index_events: Mutex<Option<mpsc::UnboundedReceiver<IndexEvent>>>,
    /// Work-done progress in flight, by token, and how to cancel each.
    pub progress: ProgressRegistry,
}

impl Session {
    /// A new session (this starts the index thread).
    pub fn new() -> std::io::Result<Session> {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = App::new(move |event| {
            let _ = tx.send(event);
        })?;
        Ok(Session {
            app: Arc::new(app),
            encoding: Mutex::default(),
            initialized: std::sync::atomic::AtomicBool::new(false),
            client: Mutex::default(),
            index_events: Mutex::new(Some(rx)),
            progress: ProgressRegistry::default(),
        })
    }

    /// Runs `f` with the documents locked. `f` is synchronous, so the lock cannot outlive it.
    pub fn with_documents<T>(&self, f: impl FnOnce(&mut Documents) -> T) -> T {
        self.app.with_documents(f)
    }

    /// A snapshot of one document.
    pub fn snapshot(&self, uri: &str) -> Option<Snapshot> {
        self.app.snapshot(uri)
    }

    /// The negotiated position encoding.
    pub fn encoding(&self) -> PositionEncoding {
        *lock(&self.encoding)
    }

    /// Whether this is the session's first `initialize` (it is marked as seen).
    pub fn first_initialize(&self) -> bool {
        !self
            .initialized
            .swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    /// Sets the negotiated position encoding (at `initialize`).
    pub fn set_encoding(&self, encoding: PositionEncoding) {
        *lock(&self.encoding) = encoding;
    }

    /// The workspace root, when the client named one.
    pub fn root(&self) -> Option<std::path::PathBuf> {
        self.app.root()
    }

    /// What the client supports.
    pub fn client(&self) -> ClientFacts {
        lock(&self.client).clone()
    }

    /// Begins a work-done progress shown if the client supports it (the one place that
    /// decides), cancellable from the editor when `cancel` is given.
    pub(super) async fn begin_progress(
        &self,
        client: &tower_lsp_server::Client,
        token: String,
        title: &str,
        message: Option<String>,
        cancel: Option<super::progress::Canceller>,
    ) -> super::progress::Progress {
        let shown = self.client().work_done_progress;
        self.progress
            .begin(client, shown, token, title, message, cancel)
            .await
    }

    /// Records what the client supports.
    pub fn set_client(&self, facts: ClientFacts) {
        *lock(&self.client) = facts;
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.app.config()
    }

    /// Replaces (or adds) one configuration source, re-resolves, and returns the problems found.
    pub fn update_config(
        &self,
        update: impl FnOnce(&mut ConfigSources),
    ) -> Vec<crate::config::ConfigProblem> {
        self.app.update_config(update)
    }

    /// The index thread's reports; `None` once taken.
    pub fn take_index_events(&self) -> Option<mpsc::UnboundedReceiver<IndexEvent>> {
        lock(&self.index_events).take()
    }
}
