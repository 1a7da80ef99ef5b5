//! The server's shared state: open documents, the negotiated encoding, configuration and what
//! the client can do.
//!
//! Locks here are plain `std::sync::Mutex`es held only for short synchronous sections; the
//! type system enforces that none is held across an `.await` (a `MutexGuard` is not `Send`, and
//! every handler future must be).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::config::{Config, ConfigSources};
use crate::document::{Documents, PositionEncoding, Snapshot};

/// What the client said it supports, as far as the server cares.
#[derive(Debug, Clone, Default)]
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
    /// The client supports change annotations in workspace edits.
    pub change_annotations: bool,
    /// The client supports `workspace/didChangeWatchedFiles` dynamic registration.
    pub dynamic_watched_files: bool,
}

/// Configuration with the sources it was resolved from.
#[derive(Debug, Default)]
pub struct ConfigState {
    /// The sources, in override order.
    pub sources: ConfigSources,
    /// The resolved configuration.
    pub config: Config,
}

/// State shared by the transport hook and every handler.
#[derive(Debug, Default)]
pub struct Session {
    documents: Mutex<Documents>,
    encoding: Mutex<PositionEncoding>,
    root: Mutex<Option<PathBuf>>,
    client: Mutex<ClientFacts>,
    config: Mutex<ConfigState>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a handler is caught and answered; the state it guarded is still consistent
    // for our uses (every mutation is a single call), so a poisoned lock is taken over.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Session {
    /// Runs `f` with the documents locked. `f` is synchronous, so the lock cannot outlive it.
    pub fn with_documents<T>(&self, f: impl FnOnce(&mut Documents) -> T) -> T {
        f(&mut lock(&self.documents))
    }

    /// A snapshot of one document.
    pub fn snapshot(&self, uri: &str) -> Option<Snapshot> {
        lock(&self.documents).snapshot(uri)
    }

    /// The negotiated position encoding.
    pub fn encoding(&self) -> PositionEncoding {
        *lock(&self.encoding)
    }

    /// Sets the negotiated position encoding (at `initialize`).
    pub fn set_encoding(&self, encoding: PositionEncoding) {
        *lock(&self.encoding) = encoding;
    }

    /// The workspace root, when the client named one.
    pub fn root(&self) -> Option<PathBuf> {
        lock(&self.root).clone()
    }

    /// Sets the workspace root.
    pub fn set_root(&self, root: Option<PathBuf>) {
        *lock(&self.root) = root;
    }

    /// What the client supports.
    pub fn client(&self) -> ClientFacts {
        lock(&self.client).clone()
    }

    /// Records what the client supports.
    pub fn set_client(&self, facts: ClientFacts) {
        *lock(&self.client) = facts;
    }

    /// The current configuration.
    pub fn config(&self) -> Config {
        lock(&self.config).config.clone()
    }

    /// Replaces (or adds) one configuration source, re-resolves, and returns the problems found.
    pub fn update_config(
        &self,
        update: impl FnOnce(&mut ConfigSources),
    ) -> Vec<crate::config::ConfigProblem> {
        let mut state = lock(&self.config);
        update(&mut state.sources);
        let (config, problems) = state.sources.resolve();
        state.config = config;
        problems
    }
}
