//! The application state every front end shares, knowing nothing of LSP: the open documents,
//! the workspace root, the configuration (with its sources and change subscribers), the live
//! context index, the model clients, and the registry of runs in flight.
//!
//! `lsp::Session` is this plus the facts only a language server has (the negotiated encoding,
//! what the client supports, progress tokens); the orchestrator and the command line take an
//! `App` and never see the protocol.
//!
//! Locks here are plain `std::sync::Mutex`es held only for short synchronous sections; the
//! type system enforces that none is held across an `.await` (a `MutexGuard` is not `Send`, and
//! every handler future must be).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::config::{Config, ConfigProblem, ConfigSources};
use crate::context::live::{IndexEvent, LiveIndex};
use crate::document::{Documents, NoTree, Snapshot};
use crate::llm::{LlmError, ModelSettings, Models};
use crate::util::lock;

/// The shared state of one workspace session.
pub struct App {
    documents: Mutex<Documents>,
    root: Mutex<Option<PathBuf>>,
    sources: Mutex<ConfigSources>,
    config: watch::Sender<Arc<Config>>,
    /// The workspace index, kept current by its own thread.
    pub index: LiveIndex,
    models: Mutex<Option<(ModelSettings, Arc<Models>)>>,
    /// The runs in flight (see `orchestrator`).
    pub runs: Arc<crate::orchestrator::Orchestrator>,
    /// Runs' decisions: hovers, lenses, review marks, reverts (see `decisions::live`).
    pub decisions: crate::decisions::live::LiveDecisions,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("root", &*lock(&self.root))
            .finish_non_exhaustive()
    }
}

impl App {
    /// A new state with no workspace and default configuration; `index_events` receives what
    /// the index thread reports (progress, builds).
    pub fn new(index_events: impl Fn(IndexEvent) + Send + Sync + 'static) -> std::io::Result<App> {
        Ok(App {
            documents: Mutex::default(),
            root: Mutex::default(),
            sources: Mutex::default(),
            config: watch::Sender::new(Arc::new(Config::default())),
            index: LiveIndex::start(index_events)?,
            models: Mutex::default(),
            runs: crate::orchestrator::Orchestrator::new(),
            decisions: Default::default(),
        })
    }

    /// Runs `f` with the documents locked. `f` is synchronous, so the lock cannot outlive it.
    pub fn with_documents<T>(&self, f: impl FnOnce(&mut Documents) -> T) -> T {
        f(&mut lock(&self.documents))
    }

    /// A snapshot of one document.
    pub fn snapshot(&self, uri: &str) -> Option<Snapshot> {
        lock(&self.documents).snapshot(uri)
    }

    /// Snapshots of every open document.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        lock(&self.documents).snapshots()
    }

    /// A snapshot of the open document of file `path` (as given, or canonical), if it is open.
    pub fn snapshot_of_path(&self, path: &std::path::Path) -> Option<Snapshot> {
        self.snapshots().into_iter().find(|s| {
            s.path
                .as_ref()
                .is_some_and(|p| p == path || p.canonicalize().ok().as_deref() == Some(path))
        })
    }

    /// Hands a tree parsed off the session's thread back to its document (see
    /// [`Documents::store_tree`]).
    pub fn store_tree(&self, snapshot: &Snapshot, tree: &tree_sitter::Tree) {
        if snapshot.needs_parse() {
            lock(&self.documents).store_tree(&snapshot.uri, snapshot.revision, tree.clone());
        }
    }

    /// `snapshot`'s tree, or why there is none, parsed at most once per revision: when another
    /// task parsed the same revision meanwhile (a live scan, `debugDocument`) and handed its
    /// outcome back, that is taken instead of parsing again; an outcome of its own is handed
    /// back ([`Self::store_parse`]). Call it off the session's thread.
    pub fn parse(&self, snapshot: &Snapshot) -> Result<tree_sitter::Tree, NoTree> {
        if snapshot.needs_parse()
            && let Some(current) = self
                .snapshot(&snapshot.uri)
                .filter(|c| c.revision == snapshot.revision && !c.needs_parse())
        {
            return current.parse();
        }
        let parsed = snapshot.parse();
        self.store_parse(snapshot, &parsed);
        parsed
    }

    /// Hands the outcome of a parse off the session's thread back to its document: the tree
    /// ([`Documents::store_tree`]), or the refusal of a tree nested too deep
    /// ([`Documents::store_refusal`]), so the same revision is not parsed again.
    pub fn store_parse(&self, snapshot: &Snapshot, parsed: &Result<tree_sitter::Tree, NoTree>) {
        if !snapshot.needs_parse() {
            return;
        }
        match parsed {
            Ok(tree) => self.store_tree(snapshot, tree),
            Err(why @ NoTree::TooDeep) => {
                lock(&self.documents).store_refusal(&snapshot.uri, snapshot.revision, *why);
            }
            // The other reasons are known without parsing (language, size) or may not
            // repeat (a parser that gave up).
            Err(_) => {}
        }
    }

    /// The workspace root, when there is one.
    pub fn root(&self) -> Option<PathBuf> {
        lock(&self.root).clone()
    }

    /// Sets the workspace root.
    pub fn set_root(&self, root: Option<PathBuf>) {
        *lock(&self.root) = root;
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// A receiver that sees every new configuration (the current one first).
    pub fn subscribe_config(&self) -> watch::Receiver<Arc<Config>> {
        self.config.subscribe()
    }

    /// Replaces (or adds) configuration sources, re-resolves, tells the subscribers when the
    /// result changed, and returns the problems found.
    pub fn update_config(&self, update: impl FnOnce(&mut ConfigSources)) -> Vec<ConfigProblem> {
        let mut sources = lock(&self.sources);
        update(&mut sources);
        let (config, problems) = sources.resolve();
        // Under the sources' lock, so two updates publish in the order they resolved.
        self.config.send_if_modified(|current| {
            let changed = **current != config;
            if changed {
                *current = Arc::new(config);
            }
            changed
        });
        problems
    }

    /// The model clients for the current `[model]` settings, built on first use and again
    /// whenever those settings change; runs in flight keep the `Arc` they started with.
    pub fn models(&self) -> Result<Arc<Models>, LlmError> {
        let settings = self.config().model.clone();
        let mut models = lock(&self.models);
        if let Some((built_with, built)) = models.as_ref()
            && *built_with == settings
        {
            return Ok(built.clone());
        }
        let built = Arc::new(Models::from_settings(&settings)?);
        *models = Some((settings, built.clone()));
        Ok(built)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subscribers_see_a_change_once_and_not_an_unchanged_resolve() {
        let app = App::new(|_| {}).expect("app");
        let mut rx = app.subscribe_config();
        rx.borrow_and_update();
        app.update_config(|s| s.push("initializationOptions", json!({"log": {"level": "debug"}})));
        assert!(rx.has_changed().expect("open"));
        assert_eq!(
            rx.borrow_and_update().log.level,
            crate::config::LogLevel::Debug
        );
        // The same settings again (a client re-sending them) are not a change.
        app.update_config(|s| s.push("initializationOptions", json!({"log": {"level": "debug"}})));
        assert!(!rx.has_changed().expect("open"));
    }

    #[test]
    fn a_revision_parsed_by_one_task_is_not_parsed_again_by_another() {
        let app = App::new(|_| {}).expect("app");
        let uri = "file:///w/src/lib.rs";
        app.with_documents(|d| d.open(uri, None, "rust", 1, "fn a() { b(); }\n"));
        // Two tasks took snapshots of the same revision before either parsed it.
        let (scan, debug) = (
            app.snapshot(uri).expect("open"),
            app.snapshot(uri).expect("open"),
        );
        assert!(scan.needs_parse() && debug.needs_parse());
        let first = app.parse(&scan).expect("a tree");
        let second = app.parse(&debug).expect("a tree");
        // The same tree (the stored one), not a parse of its own. A node's id is its syntax
        // tree's memory, which copies of a tree share (the root's is each copy's own).
        let item = |t: &tree_sitter::Tree| t.root_node().child(0).expect("the function").id();
        assert_eq!(item(&first), item(&second));
        assert_ne!(
            item(&debug.parse().expect("a tree")),
            item(&first),
            "a parse of its own would give another tree"
        );
        // A refusal (a type nested too deep) is shared the same way.
        let deep = format!(
            "type T = {}u8{};\n",
            "Vec<".repeat(40_000),
            ">".repeat(40_000)
        );
        app.with_documents(|d| d.open(uri, None, "rust", 2, &deep));
        let (scan, debug) = (
            app.snapshot(uri).expect("open"),
            app.snapshot(uri).expect("open"),
        );
        assert!(matches!(app.parse(&scan), Err(NoTree::TooDeep)));
        assert!(
            !app.snapshot(uri).expect("open").needs_parse(),
            "refusal kept"
        );
        assert!(matches!(app.parse(&debug), Err(NoTree::TooDeep)));
    }

    #[test]
    fn model_clients_are_rebuilt_only_when_their_settings_change() {
        let app = App::new(|_| {}).expect("app");
        let first = app.models().expect("default models");
        assert!(Arc::ptr_eq(&first, &app.models().expect("models")));
        app.update_config(|s| s.push("initializationOptions", json!({"log": {"level": "warn"}})));
        assert!(Arc::ptr_eq(&first, &app.models().expect("models")));
        app.update_config(|s| {
            s.push(
                "initializationOptions",
                json!({"model": {"model": "another-model"}}),
            )
        });
        assert!(!Arc::ptr_eq(&first, &app.models().expect("models")));
    }
}
