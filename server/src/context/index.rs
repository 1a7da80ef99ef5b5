//! The workspace index: every Rust file's definitions and references, the crates they belong
//! to, and the file reference graph that ranks them.
//!
//! Building walks the files the [`Filter`] admits (`.gitignore`/`.ignore`, built-in folders,
//! `context.exclude`), skips secret-looking, oversized and unreadable files with a note, and
//! parses on every core. Each worker holds one syntax tree at a time and keeps only the extracted
//! tags and the text, so memory is bounded by the workspace's text plus its tags. Afterwards the
//! index is kept current one file at a time, from the editor's live text or from disk, and every
//! update asks the same [`Filter`], so a file the cold build leaves out never enters later.
//!
//! Files are held behind `Arc`s, so cloning an index (a snapshot for a bundle build while the
//! live index takes updates) copies pointers and the name maps, never texts or tags.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash as _, Hasher as _};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context as _, bail};

use super::ContextSettings;
use super::manifest::{
    CrateFacts, WorkspaceTable, parse_manifest, workspace_edition, workspace_table,
};
use super::rank::FileGraph;
use super::secrets::SecretFiles;
use super::tags::{self, Definition, FileTags, RefKind};
use crate::syntax::Language;
use crate::workspace::{self, Filter};

/// A file's number in the index; stable while the file stays indexed. The number of a removed
/// file is given to the next new one, so the slots do not grow with churn.
pub type FileId = u32;

/// Notes kept about skipped files; beyond this many only the count grows.
const MAX_NOTES: usize = 200;

/// One indexed file.
#[derive(Debug)]
pub struct IndexedFile {
    /// The path relative to the workspace root.
    pub path: PathBuf,
    /// The text the tags were read from.
    pub text: Arc<str>,
    /// A hash of the text, to skip re-indexing unchanged content.
    pub hash: u64,
    /// Definitions and references.
    pub tags: FileTags,
    /// The distinct names this file references, with their most specific use.
    distinct_refs: Vec<(Box<str>, RefKind)>,
}

/// A definition somewhere in the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DefinitionId {
    /// The file.
    pub file: FileId,
    /// Its position in that file's `tags.definitions`.
    pub index: u32,
}

/// The index of one workspace.
pub struct WorkspaceIndex {
    root: PathBuf,
    settings: ContextSettings,
    secrets: SecretFiles,
    filter: Arc<Filter>,
    files: Vec<Option<Arc<IndexedFile>>>,
    /// Slots of removed files, reused before `files` grows.
    free: Vec<FileId>,
    ids: HashMap<PathBuf, FileId>,
    definitions: HashMap<Box<str>, Vec<DefinitionId>>,
    referencing_files: HashMap<Box<str>, Vec<FileId>>,
    crates: Vec<CrateFacts>,
    /// The crate graph over `crates`, same order.
    crate_graph: CrateGraph,
    /// The `Cargo.toml` texts the crates were read from, virtual manifests included, so that
    /// one changed manifest is re-read with the others as they were indexed.
    manifests: Arc<Vec<(PathBuf, String)>>,
    notes: Vec<String>,
    skipped: usize,
    graph: Mutex<Option<Arc<FileGraph>>>,
}

/// Where a name a crate's code starts a path with leads (`axum::…`, `tui::…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrateTarget {
    /// A crate of this index, by its position in [`WorkspaceIndex::crates`].
    Local(usize),
    /// A crate outside the index: a registry or git dependency, or the standard library.
    External {
        /// The package (`helix-tui` for `tui = { package = "helix-tui" }`; `std` for the
        /// standard library's crates).
        package: String,
    },
}

/// Which Cargo workspace owns each crate, and which crates each crate can reach through its
/// dependencies (transitively; its own dev-dependencies included, theirs not).
#[derive(Clone, Debug, Default)]
struct CrateGraph {
    /// The owning Cargo workspace's folder, per crate.
    workspace: Vec<PathBuf>,
    /// Per crate, its dependencies by the name code writes.
    targets: Vec<HashMap<String, CrateTarget>>,
    /// Per crate, the crates it reaches (itself included), sorted.
    reach: Vec<Vec<usize>>,
}

impl CrateGraph {
    fn build(crates: &[CrateFacts], tables: &[WorkspaceTable]) -> CrateGraph {
        let by_dir: HashMap<&Path, usize> = crates
            .iter()
            .enumerate()
            .map(|(i, c)| (c.dir.as_path(), i))
            .collect();
        let workspace: Vec<PathBuf> = crates
            .iter()
            .map(|c| {
                // The nearest workspace above; the one rule decides whether it holds the package.
                let nearest = tables
                    .iter()
                    .filter(|t| c.dir.starts_with(&t.dir) && c.dir != t.dir)
                    .max_by_key(|t| t.dir.components().count());
                crate::workspace::cargo::owner(
                    crate::workspace::cargo::Membership {
                        dir: &c.dir,
                        own_workspace: c.own_workspace,
                        workspace_path: c.workspace_path.as_deref(),
                    },
                    nearest,
                )
            })
            .collect();
        let mut targets = Vec::with_capacity(crates.len());
        let mut edges: Vec<Vec<(usize, bool)>> = Vec::with_capacity(crates.len());
        for (i, c) in crates.iter().enumerate() {
            let table = tables.iter().find(|t| t.dir == workspace[i]);
            let mut names = HashMap::new();
            let mut out = Vec::new();
            for dep in &c.links {
                let (package, path) = match (&dep.path, dep.inherited, table) {
                    (Some(path), _, _) => (dep.package.clone(), Some(path.clone())),
                    (None, true, Some(table)) => match table.dependencies.get(&dep.package) {
                        Some((package, path)) => (package.clone(), path.clone()),
                        None => (dep.package.clone(), None),
                    },
                    _ => (dep.package.clone(), None),
                };
                let target = match path.as_deref().and_then(|p| by_dir.get(p)) {
                    Some(&j) => {
                        out.push((j, dep.dev));
                        CrateTarget::Local(j)
                    }
                    None => CrateTarget::External { package },
                };
                names.insert(dep.name.clone(), target);
            }
            targets.push(names);
            edges.push(out);
        }
        let reach = (0..crates.len())
            .map(|start| {
                let mut seen = vec![false; crates.len()];
                seen[start] = true;
                let mut stack: Vec<usize> = edges[start].iter().map(|(j, _)| *j).collect();
                while let Some(j) = stack.pop() {
                    if std::mem::replace(&mut seen[j], true) {
                        continue;
                    }
                    // A dependency's own dev-dependencies are not built for its dependents.
                    stack.extend(edges[j].iter().filter(|(_, dev)| !dev).map(|(k, _)| *k));
                }
                seen.iter()
                    .enumerate()
                    .filter_map(|(j, s)| s.then_some(j))
                    .collect()
            })
            .collect();
        CrateGraph {
            workspace,
            targets,
            reach,
        }
    }
}

impl Clone for WorkspaceIndex {
    fn clone(&self) -> Self {
        let graph = self
            .graph
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        WorkspaceIndex {
            root: self.root.clone(),
            settings: self.settings.clone(),
            secrets: self.secrets.clone(),
            filter: self.filter.clone(),
            files: self.files.clone(),
            free: self.free.clone(),
            ids: self.ids.clone(),
            definitions: self.definitions.clone(),
            referencing_files: self.referencing_files.clone(),
            crates: self.crates.clone(),
            crate_graph: self.crate_graph.clone(),
            manifests: self.manifests.clone(),
            notes: self.notes.clone(),
            skipped: self.skipped,
            graph: Mutex::new(graph),
        }
    }
}

impl std::fmt::Debug for WorkspaceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceIndex")
            .field("root", &self.root)
            .field("files", &self.ids.len())
            .field("crates", &self.crates.len())
            .finish()
    }
}

/// Where a file's text comes from while building.
enum Source {
    Disk(PathBuf),
    Memory(String),
}

/// One file's change on disk, read and parsed but not yet in the index
/// ([`WorkspaceIndex::prepare_disk_changes`]).
pub enum DiskChange {
    /// Gone, deleted, or no longer admitted by the workspace filter: forget it.
    Remove(PathBuf),
    /// A manifest: the crate facts are read again from it.
    Manifest(PathBuf, String),
    /// Nothing to do: the same text is indexed, or the file is not one the index holds.
    Unchanged,
    /// Parsed and tagged, ready to replace what the index holds for its path.
    Indexed(IndexedFile),
    /// Not indexed, with the note that says why (too large, not UTF-8, the parser gave up).
    Skipped(PathBuf, String),
    /// Could not be read.
    Failed(anyhow::Error),
}

impl WorkspaceIndex {
    /// Indexes the workspace at `root`: the Cargo workspace it holds, or just the folder when it
    /// has no `Cargo.toml` (noted). Files are skipped with a note, never with an error; only a
    /// root that is not a readable folder or bad settings fail.
    pub fn build(root: &Path, settings: &ContextSettings) -> anyhow::Result<WorkspaceIndex> {
        Self::build_with_progress(root, settings, &|_, _| {})
    }

    /// Like [`build`](Self::build), calling `progress(files parsed, files to parse)` from the
    /// parsing threads every few dozen files and once at the end.
    pub fn build_with_progress(
        root: &Path,
        settings: &ContextSettings,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> anyhow::Result<WorkspaceIndex> {
        let root = root
            .canonicalize()
            .with_context(|| format!("opening the workspace folder {}", root.display()))?;
        if !root.is_dir() {
            bail!("the workspace root {} is not a folder", root.display());
        }
        let filter = Filter::new(&root, &settings.exclude, "context.exclude")?;
        let mut index = WorkspaceIndex::empty(root.clone(), settings, filter)?;
        let mut sources = Vec::new();
        let mut manifests = Vec::new();
        let walk = index.filter.walk(&root);
        for (path, err) in walk.errors {
            // Unreadable folders and entries that vanished mid-walk.
            index.note(format!("{}: skipped while walking: {err}", path.display()));
        }
        for path in &walk.files {
            let Ok(rel) = path.strip_prefix(&root) else {
                continue;
            };
            if rel.file_name().is_some_and(|n| n == "Cargo.toml") {
                match crate::util::read_regular_text(path, crate::util::MAX_READ_BYTES) {
                    Ok(text) => manifests.push((rel.to_path_buf(), text)),
                    Err(err) => index.note(format!("{}: cannot read: {err}", rel.display())),
                }
                continue;
            }
            if Language::for_path(path).is_none() {
                continue;
            }
            if index.secrets.is_secret(rel) {
                index.note(format!(
                    "{}: looks like a secret; not indexed",
                    rel.display()
                ));
                continue;
            }
            sources.push((rel.to_path_buf(), Source::Disk(path.clone())));
        }
        if manifests.is_empty() {
            index.note(format!(
                "no Cargo.toml under {}: indexing the folder without crate facts",
                root.display()
            ));
        }
        index.set_manifests(&manifests);
        index.add_sources(sources, progress);
        Ok(index)
    }

    /// Indexes files given as text (paths relative to `root`), such as the blobs of a git
    /// commit; `manifests` are the `Cargo.toml` files among them. Nothing is read from disk.
    pub fn from_texts(
        root: &Path,
        settings: &ContextSettings,
        files: Vec<(PathBuf, String)>,
        manifests: &[(PathBuf, String)],
    ) -> anyhow::Result<WorkspaceIndex> {
        let filter = Filter::detached(root, &settings.exclude, "context.exclude")?;
        let mut index = WorkspaceIndex::empty(root.to_path_buf(), settings, filter)?;
        index.set_manifests(manifests);
        let sources = files
            .into_iter()
            .filter(|(rel, _)| {
                Language::for_path(rel).is_some()
                    && !index.secrets.is_secret(rel)
                    && index.filter.admits(rel)
            })
            .map(|(rel, text)| (rel, Source::Memory(text)))
            .collect();
        index.add_sources(sources, &|_, _| {});
        Ok(index)
    }

    fn empty(
        root: PathBuf,
        settings: &ContextSettings,
        filter: Filter,
    ) -> anyhow::Result<WorkspaceIndex> {
        Ok(WorkspaceIndex {
            root,
            settings: settings.clone(),
            secrets: SecretFiles::new(&settings.secret_files)?,
            filter: Arc::new(filter),
            files: Vec::new(),
            free: Vec::new(),
            ids: HashMap::new(),
            definitions: HashMap::new(),
            referencing_files: HashMap::new(),
            crates: Vec::new(),
            crate_graph: CrateGraph::default(),
            manifests: Arc::default(),
            notes: Vec::new(),
            skipped: 0,
            graph: Mutex::new(None),
        })
    }

    fn note(&mut self, note: String) {
        self.skipped += 1;
        if self.notes.len() < MAX_NOTES {
            tracing::debug!("context index: {note}");
            self.notes.push(note);
        }
    }

    fn set_manifests(&mut self, manifests: &[(PathBuf, String)]) {
        let ws_edition = manifests
            .iter()
            .filter(|(rel, _)| rel.parent().is_none_or(|p| p.as_os_str().is_empty()))
            .find_map(|(_, text)| workspace_edition(text));
        let mut crates = Vec::new();
        let mut tables = Vec::new();
        for (rel, text) in manifests {
            let dir = rel.parent().unwrap_or(Path::new("")).to_path_buf();
            tables.extend(workspace_table(&dir, text));
            match parse_manifest(&dir, text, ws_edition.as_deref()) {
                Ok(Some(facts)) => crates.push(facts),
                Ok(None) => {}
                Err(err) => self.note(format!("{}: not valid TOML: {err}", rel.display())),
            }
        }
        // Deepest folders first, so the first prefix match is the owning crate.
        crates.sort_by_key(|c| std::cmp::Reverse(c.dir.components().count()));
        self.crate_graph = CrateGraph::build(&crates, &tables);
        self.crates = crates;
        self.manifests = Arc::new(manifests.to_vec());
    }

    /// Parses `sources` on the configured number of threads and adds them.
    fn add_sources(
        &mut self,
        sources: Vec<(PathBuf, Source)>,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) {
        let Some(rust) = Language::by_name("rust") else {
            self.note("the rust language is not registered; nothing indexed".into());
            return;
        };
        let max_bytes = self.settings.max_file_bytes;
        let results: Mutex<Vec<Result<IndexedFile, String>>> =
            Mutex::new(Vec::with_capacity(sources.len()));
        workspace::par_map(
            &sources,
            workspace::workers(self.settings.threads),
            &|| false,
            || rust.parser(),
            |parser, (rel, source)| load_and_index(rel, source, max_bytes, parser),
            |i, result| {
                results
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(result);
                if (i + 1) % 50 == 0 {
                    progress(i + 1, sources.len());
                }
            },
        );
        progress(sources.len(), sources.len());
        let mut results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
        // Deterministic file ids whatever the thread interleaving.
        results.sort_by(|a, b| match (a, b) {
            (Ok(a), Ok(b)) => a.path.cmp(&b.path),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            (Err(a), Err(b)) => a.cmp(b),
        });
        for result in results {
            match result {
                Ok(file) => self.insert(file),
                Err(note) => self.note(note),
            }
        }
    }

    fn insert(&mut self, file: IndexedFile) {
        // An edit inside a body rarely changes what a file defines or references; then the
        // file graph is still right and is kept, so the next bundle need not rebuild it.
        let mut keep_graph = None;
        if let Some(&id) = self.ids.get(&file.path) {
            if let Some(old) = self.file(id)
                && same_names(old, &file)
            {
                keep_graph = self
                    .graph
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
            }
            self.unlink(id);
        }
        let id = match self.ids.get(&file.path) {
            Some(&id) => id,
            None => {
                let id = match self.free.pop() {
                    Some(id) => id,
                    None => {
                        self.files.push(None);
                        (self.files.len() - 1) as FileId
                    }
                };
                self.ids.insert(file.path.clone(), id);
                id
            }
        };
        for (i, def) in file.tags.definitions.iter().enumerate() {
            self.definitions
                .entry(def.name.as_str().into())
                .or_default()
                .push(DefinitionId {
                    file: id,
                    index: i as u32,
                });
        }
        for (name, _) in &file.distinct_refs {
            self.referencing_files
                .entry(name.clone())
                .or_default()
                .push(id);
        }
        self.files[id as usize] = Some(Arc::new(file));
        *self.graph.get_mut().unwrap_or_else(PoisonError::into_inner) = keep_graph;
    }

    /// Removes a file's definitions and references from the name maps, keeping its id.
    fn unlink(&mut self, id: FileId) {
        let Some(file) = self.files.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        for def in &file.tags.definitions {
            if let Some(list) = self.definitions.get_mut(def.name.as_str()) {
                list.retain(|d| d.file != id);
                if list.is_empty() {
                    self.definitions.remove(def.name.as_str());
                }
            }
        }
        for (name, _) in &file.distinct_refs {
            if let Some(list) = self.referencing_files.get_mut(name) {
                list.retain(|f| *f != id);
                if list.is_empty() {
                    self.referencing_files.remove(name);
                }
            }
        }
        self.invalidate_graph();
    }

    /// [`unlink`](Self::unlink) for many files at once: each affected name's list is filtered
    /// once. Their ids stay theirs.
    fn unlink_many(&mut self, ids: &HashSet<FileId>) {
        if ids.len() < 2 {
            if let Some(&id) = ids.iter().next() {
                self.unlink(id);
            }
            return;
        }
        let files: Vec<Arc<IndexedFile>> = ids
            .iter()
            .filter_map(|&id| self.files.get_mut(id as usize).and_then(Option::take))
            .collect();
        let defined: HashSet<&str> = files
            .iter()
            .flat_map(|f| f.tags.definitions.iter().map(|d| d.name.as_str()))
            .collect();
        for name in defined {
            if let Some(list) = self.definitions.get_mut(name) {
                list.retain(|d| !ids.contains(&d.file));
                if list.is_empty() {
                    self.definitions.remove(name);
                }
            }
        }
        let referenced: HashSet<&str> = files
            .iter()
            .flat_map(|f| f.distinct_refs.iter().map(|(name, _)| &**name))
            .collect();
        for name in referenced {
            if let Some(list) = self.referencing_files.get_mut(name) {
                list.retain(|f| !ids.contains(f));
                if list.is_empty() {
                    self.referencing_files.remove(name);
                }
            }
        }
        self.invalidate_graph();
    }

    fn invalidate_graph(&mut self) {
        *self.graph.get_mut().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Re-indexes one file from `text` (the editor's live state or what is on disk). Paths may be
    /// absolute or relative to the root. Files that are not Rust, look like secrets or are not
    /// admitted by the workspace filter (ignored, excluded, under `target/`, …) are ignored; an
    /// admitted `Cargo.toml` refreshes the crate facts.
    pub fn update_file(&mut self, path: &Path, text: &str) -> anyhow::Result<()> {
        self.update_file_parsed(path, text, None)
    }

    /// Like [`update_file`](Self::update_file), reusing a syntax tree of exactly `text` when
    /// the caller has one (the editor's documents are parsed incrementally), which saves the
    /// parse — most of the cost.
    pub fn update_file_parsed(
        &mut self,
        path: &Path,
        text: &str,
        tree: Option<&tree_sitter::Tree>,
    ) -> anyhow::Result<()> {
        let rel = self.relative(path)?;
        if !self.filter.admits(&rel) {
            // Only reachable when an ignore file changed since the file was indexed.
            return self.remove_file(&rel);
        }
        if rel.file_name().is_some_and(|n| n == "Cargo.toml") {
            // The other manifests as indexed (a virtual workspace manifest too, which is no
            // crate but says which workspace owns which package).
            let mut manifests: Vec<(PathBuf, String)> = self
                .manifests
                .iter()
                .filter(|(path, _)| *path != rel)
                .cloned()
                .collect();
            manifests.push((rel, text.to_string()));
            self.set_manifests(&manifests);
            return Ok(());
        }
        if Language::for_path(&rel).is_none() || self.secrets.is_secret(&rel) {
            return Ok(());
        }
        if self.holds_text(&rel, content_hash(text)) {
            return Ok(());
        }
        let result = match tree {
            Some(tree) if (text.len() as u64) <= self.settings.max_file_bytes => {
                index_parsed(&rel, text, tree)
            }
            _ => {
                let Some(rust) = Language::by_name("rust") else {
                    bail!("the rust language is not registered");
                };
                load_and_index(
                    &rel,
                    &Source::Memory(text.to_string()),
                    self.settings.max_file_bytes,
                    &mut rust.parser(),
                )
            }
        };
        match result {
            Ok(file) => self.insert(file),
            Err(note) => {
                self.remove_file(&rel)?;
                self.note(note);
            }
        }
        Ok(())
    }

    /// Re-reads one file from disk; a file that no longer exists is removed. A file the
    /// workspace filter does not admit is not read.
    pub fn update_file_from_disk(&mut self, path: &Path) -> anyhow::Result<()> {
        let Some(rust) = Language::by_name("rust") else {
            bail!("the rust language is not registered");
        };
        let change = self.prepare_disk_change(path, false, &mut rust.parser());
        self.install_disk_change(change)
    }

    /// Reads and parses what changed on disk (`(path, deleted)`), on the configured number of
    /// threads, without changing the index: everything slow about a re-index (reading,
    /// parsing, tagging) happens here, on a shared reference, so readers keep the index while
    /// it runs. [`install_disk_changes`](Self::install_disk_changes) then applies the result,
    /// which takes microseconds per file. Valid only as long as nothing else changes the index
    /// between the two calls (the index thread is its only writer).
    pub fn prepare_disk_changes(&self, changes: &[(PathBuf, bool)]) -> Vec<DiskChange> {
        let Some(rust) = Language::by_name("rust") else {
            return vec![DiskChange::Failed(anyhow::anyhow!(
                "the rust language is not registered"
            ))];
        };
        let prepared: Mutex<Vec<(usize, DiskChange)>> =
            Mutex::new(Vec::with_capacity(changes.len()));
        workspace::par_map(
            changes,
            workspace::workers(self.settings.threads),
            &|| false,
            || rust.parser(),
            |parser, (path, deleted)| self.prepare_disk_change(path, *deleted, parser),
            |i, change| {
                prepared
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((i, change));
            },
        );
        let mut prepared = prepared
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        // Installed in the order the changes came, whatever the threads' interleaving, so
        // file ids stay deterministic and a later event for the same path wins.
        prepared.sort_by_key(|(i, _)| *i);
        prepared.into_iter().map(|(_, change)| change).collect()
    }

    /// Applies what [`prepare_disk_changes`](Self::prepare_disk_changes) prepared; failures
    /// are logged, one per file, and do not stop the others. The files replaced or removed are
    /// taken out of the name maps together, one pass per name, so a checkout of `n` files
    /// costs `O(n)` list work rather than `O(n²)` (each common name — `new`, `String` — has a
    /// list as long as the workspace).
    pub fn install_disk_changes(&mut self, prepared: impl IntoIterator<Item = DiskChange>) {
        let prepared: Vec<DiskChange> = prepared.into_iter().collect();
        // The file graph survives only edits that keep every file's names as they were.
        let mut keep_graph = true;
        let mut replaced: HashSet<FileId> = HashSet::new();
        for change in &prepared {
            let (rel, same_names) = match change {
                DiskChange::Indexed(file) => {
                    let same = self
                        .ids
                        .get(&file.path)
                        .and_then(|&id| self.file(id))
                        .is_some_and(|old| same_names(old, file));
                    (&file.path, same)
                }
                DiskChange::Remove(rel) | DiskChange::Skipped(rel, _) => (rel, false),
                DiskChange::Manifest(..) | DiskChange::Failed(_) => {
                    keep_graph = false;
                    continue;
                }
                DiskChange::Unchanged => continue,
            };
            keep_graph &= same_names;
            if let Some(&id) = self.ids.get(rel) {
                replaced.insert(id);
            }
        }
        let graph = keep_graph
            .then(|| {
                self.graph
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .flatten();
        self.unlink_many(&replaced);
        for change in prepared {
            if let Err(err) = self.install_disk_change(change) {
                tracing::debug!("context index: {err:#}");
            }
        }
        if graph.is_some() {
            *self.graph.get_mut().unwrap_or_else(PoisonError::into_inner) = graph;
        }
    }

    /// The slow half of re-reading one file: read, check, parse and tag; nothing is changed.
    fn prepare_disk_change(
        &self,
        path: &Path,
        deleted: bool,
        parser: &mut tree_sitter::Parser,
    ) -> DiskChange {
        let rel = match self.relative(path) {
            Ok(rel) => rel,
            Err(err) => return DiskChange::Failed(err),
        };
        if deleted || !self.filter.admits(&rel) {
            return DiskChange::Remove(rel);
        }
        let manifest = rel.file_name().is_some_and(|n| n == "Cargo.toml");
        if !manifest && (Language::for_path(&rel).is_none() || self.secrets.is_secret(&rel)) {
            return DiskChange::Unchanged;
        }
        let text = match crate::util::read_regular_file(
            &self.root.join(&rel),
            crate::util::MAX_READ_BYTES,
        ) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    let note = format!("{}: not UTF-8; not indexed", rel.display());
                    return DiskChange::Skipped(rel, note);
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return DiskChange::Remove(rel);
            }
            Err(err) => {
                return DiskChange::Failed(
                    anyhow::Error::new(err).context(format!("reading {}", rel.display())),
                );
            }
        };
        if manifest {
            return DiskChange::Manifest(rel, text);
        }
        if self.holds_text(&rel, content_hash(&text)) {
            return DiskChange::Unchanged;
        }
        match load_and_index(
            &rel,
            &Source::Memory(text),
            self.settings.max_file_bytes,
            parser,
        ) {
            Ok(file) => DiskChange::Indexed(file),
            Err(note) => DiskChange::Skipped(rel, note),
        }
    }

    /// The fast half: applies one prepared change.
    fn install_disk_change(&mut self, change: DiskChange) -> anyhow::Result<()> {
        match change {
            DiskChange::Remove(rel) => self.remove_file(&rel),
            DiskChange::Manifest(rel, text) => self.update_file(&rel, &text),
            DiskChange::Unchanged => Ok(()),
            DiskChange::Indexed(file) => {
                self.insert(file);
                Ok(())
            }
            DiskChange::Skipped(rel, note) => {
                self.remove_file(&rel)?;
                self.note(note);
                Ok(())
            }
            DiskChange::Failed(err) => Err(err),
        }
    }

    /// Whether `rel` is indexed with text of this hash already.
    fn holds_text(&self, rel: &Path, hash: u64) -> bool {
        self.ids.get(rel).is_some_and(|&id| {
            self.files[id as usize]
                .as_ref()
                .is_some_and(|f| f.hash == hash)
        })
    }

    /// Forgets one file.
    pub fn remove_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let rel = self.relative(path)?;
        if self.manifests.iter().any(|(p, _)| *p == rel) {
            let rest: Vec<(PathBuf, String)> = self
                .manifests
                .iter()
                .filter(|(p, _)| *p != rel)
                .cloned()
                .collect();
            self.set_manifests(&rest);
        }
        if let Some(id) = self.ids.remove(&rel) {
            self.unlink(id);
            self.free.push(id);
        }
        Ok(())
    }

    /// `path` relative to the root; an error names a path outside the workspace.
    pub fn relative(&self, path: &Path) -> anyhow::Result<PathBuf> {
        let rel = if path.is_absolute() {
            match path.strip_prefix(&self.root) {
                Ok(rel) => rel.to_path_buf(),
                // The caller may hold a non-canonical spelling (a symlinked home, `..`).
                Err(_) => match path.canonicalize() {
                    Ok(canonical) => canonical
                        .strip_prefix(&self.root)
                        .map(Path::to_path_buf)
                        .map_err(|_| outside(path, &self.root))?,
                    Err(_) => return Err(outside(path, &self.root)),
                },
            }
        } else {
            path.to_path_buf()
        };
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(outside(path, &self.root));
        }
        Ok(rel)
    }

    /// The workspace root (canonical for indexes built from disk).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Replaces the settings that only queries read (budget, tokenizer, body and caller limits);
    /// settings that decide what is indexed need a rebuild instead.
    pub fn set_query_settings(&mut self, settings: &crate::context::ContextSettings) {
        self.settings = settings.clone();
    }

    /// The settings the index was built with.
    pub fn settings(&self) -> &ContextSettings {
        &self.settings
    }

    /// Which files belong to the workspace for the index (`.gitignore`, built-in folders,
    /// `context.exclude`).
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The secret-file patterns in force.
    pub fn secrets(&self) -> &SecretFiles {
        &self.secrets
    }

    /// How many files are indexed.
    pub fn file_count(&self) -> usize {
        self.ids.len()
    }

    /// Total lines across indexed files.
    pub fn line_count(&self) -> usize {
        self.files().map(|(_, f)| f.text.lines().count()).sum()
    }

    /// Notes about files that were skipped (oversized, unreadable, secret, …), at most 200, and
    /// how many there were in all.
    pub fn notes(&self) -> (&[String], usize) {
        (&self.notes, self.skipped)
    }

    /// The crates found, deepest folder first.
    pub fn crates(&self) -> &[CrateFacts] {
        &self.crates
    }

    /// The crate a file (relative path) belongs to.
    pub fn crate_for(&self, rel: &Path) -> Option<&CrateFacts> {
        self.crates.iter().find(|c| rel.starts_with(&c.dir))
    }

    /// The position in [`crates`](Self::crates) of the crate a file belongs to.
    pub fn crate_index(&self, rel: &Path) -> Option<usize> {
        self.crates.iter().position(|c| rel.starts_with(&c.dir))
    }

    /// The folder of the Cargo workspace that owns a crate (see
    /// [`owner`](crate::workspace::cargo::owner) for the rule).
    pub fn workspace_of(&self, krate: usize) -> Option<&Path> {
        self.crate_graph.workspace.get(krate).map(PathBuf::as_path)
    }

    /// Where the name `name` at the start of a path leads in the code of crate `krate`: one of
    /// its dependencies (by the name code writes, so `tui` for a renamed `helix-tui`), its own
    /// library by its library name, or the standard library's crates. `None` for any other name
    /// (a module of the crate, or something we cannot tell).
    pub fn crate_named(&self, krate: Option<usize>, name: &str) -> Option<CrateTarget> {
        if matches!(name, "std" | "core" | "alloc" | "proc_macro" | "test") {
            return Some(CrateTarget::External {
                package: "std".into(),
            });
        }
        let krate = krate?;
        if let Some(target) = self
            .crate_graph
            .targets
            .get(krate)
            .and_then(|t| t.get(name))
        {
            return Some(target.clone());
        }
        (self.crates.get(krate)?.lib_name == name).then_some(CrateTarget::Local(krate))
    }

    /// Whether code in crate `from` can use items of the file `rel`: the file belongs to `from`
    /// or to a crate `from` depends on, directly or not. Without crate facts for `from` (a
    /// folder without `Cargo.toml`, a file outside every crate) nothing is known and every
    /// file is taken as reachable.
    pub fn reaches_file(&self, from: Option<usize>, rel: &Path) -> bool {
        let Some(from) = from else { return true };
        match self.crate_index(rel) {
            Some(to) => self.reaches(from, to),
            None => false,
        }
    }

    /// Whether crate `from` can reach crate `to` through its dependencies (or is it).
    pub fn reaches(&self, from: usize, to: usize) -> bool {
        self.crate_graph
            .reach
            .get(from)
            .is_some_and(|r| r.binary_search(&to).is_ok())
    }

    /// The id of a file (relative path), if indexed.
    pub fn file_id(&self, rel: &Path) -> Option<FileId> {
        self.ids.get(rel).copied()
    }

    /// An indexed file by id.
    pub fn file(&self, id: FileId) -> Option<&IndexedFile> {
        self.files.get(id as usize).and_then(Option::as_deref)
    }

    /// Every indexed file.
    pub fn files(&self) -> impl Iterator<Item = (FileId, &IndexedFile)> {
        self.files
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_deref().map(|f| (i as FileId, f)))
    }

    /// The definitions of `name` across the workspace.
    pub fn definitions_of(&self, name: &str) -> &[DefinitionId] {
        self.definitions.get(name).map_or(&[], Vec::as_slice)
    }

    /// A definition by id.
    pub fn definition(&self, id: DefinitionId) -> Option<&Definition> {
        self.file(id.file)?.tags.definitions.get(id.index as usize)
    }

    /// Whether `name` is defined anywhere.
    pub fn is_defined(&self, name: &str) -> bool {
        self.definitions.contains_key(name)
    }

    /// The files that reference `name`.
    pub fn files_referencing(&self, name: &str) -> &[FileId] {
        self.referencing_files.get(name).map_or(&[], Vec::as_slice)
    }

    /// The file reference graph, built on first use after a change and shared until the next.
    pub fn graph(&self) -> Arc<FileGraph> {
        let mut slot = self.graph.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(graph) = slot.as_ref() {
            return graph.clone();
        }
        let graph = Arc::new(FileGraph::build(self));
        *slot = Some(graph.clone());
        graph
    }

    /// The distinct names a file references, with how they are used.
    pub fn distinct_references(&self, id: FileId) -> &[(Box<str>, RefKind)] {
        self.file(id).map_or(&[], |f| f.distinct_refs.as_slice())
    }
}

/// Names in the standard prelude (and its macros): without an import or a definition in the
/// file, these are the standard library's.
const PRELUDE: &[&str] = &[
    "Option",
    "Some",
    "None",
    "Result",
    "Ok",
    "Err",
    "Vec",
    "String",
    "Box",
    "ToString",
    "ToOwned",
    "Default",
    "Clone",
    "Copy",
    "Send",
    "Sync",
    "Sized",
    "Unpin",
    "Drop",
    "Fn",
    "FnMut",
    "FnOnce",
    "From",
    "Into",
    "TryFrom",
    "TryInto",
    "AsRef",
    "AsMut",
    "Iterator",
    "IntoIterator",
    "Extend",
    "DoubleEndedIterator",
    "ExactSizeIterator",
    "PartialEq",
    "Eq",
    "PartialOrd",
    "Ord",
    "FromIterator",
    "drop",
    "println",
    "print",
    "eprintln",
    "eprint",
    "format",
    "write",
    "writeln",
    "vec",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "unreachable",
    "unimplemented",
    "todo",
    "matches",
    "concat",
    "stringify",
    "include_str",
    "include_bytes",
    "env",
    "option_env",
    "cfg",
    "line",
    "file",
    "column",
    "module_path",
    "format_args",
    "dbg",
    "thread_local",
];

/// Whether `name` is one of the standard prelude's names or macros (`Option`, `Ok`, `vec`):
/// without an import or a definition in the file, code means the standard library's.
pub fn is_prelude_name(name: &str) -> bool {
    PRELUDE.contains(&name)
}

fn outside(path: &Path, root: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is outside the workspace {}",
        path.display(),
        root.display()
    )
}

fn content_hash(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Whether `new` defines and references the same names as `old`, in the same order: then the
/// file graph built with `old` still holds.
fn same_names(old: &IndexedFile, new: &IndexedFile) -> bool {
    old.distinct_refs == new.distinct_refs
        && old.tags.definitions.len() == new.tags.definitions.len()
        && old
            .tags
            .definitions
            .iter()
            .zip(&new.tags.definitions)
            .all(|(a, b)| a.name == b.name)
}

/// Reads (if on disk), parses and tags one file. An `Err` is a note saying why it was skipped.
fn load_and_index(
    rel: &Path,
    source: &Source,
    max_bytes: u64,
    parser: &mut tree_sitter::Parser,
) -> Result<IndexedFile, String> {
    let owned;
    let text: &str = match source {
        Source::Memory(text) => text,
        Source::Disk(path) => {
            let size = std::fs::metadata(path)
                .map_err(|e| format!("{}: cannot read: {e}", rel.display()))?
                .len();
            if size > max_bytes {
                return Err(too_big(rel, size, max_bytes));
            }
            let bytes = crate::util::read_regular_file(path, max_bytes)
                .map_err(|e| format!("{}: cannot read: {e}", rel.display()))?;
            owned = String::from_utf8(bytes)
                .map_err(|_| format!("{}: not UTF-8; not indexed", rel.display()))?;
            &owned
        }
    };
    if text.len() as u64 > max_bytes {
        return Err(too_big(rel, text.len() as u64, max_bytes));
    }
    let tree = parser
        .parse(text, None)
        .ok_or_else(|| format!("{}: the parser gave up", rel.display()))?;
    index_parsed(rel, text, &tree)
}

fn index_parsed(rel: &Path, text: &str, tree: &tree_sitter::Tree) -> Result<IndexedFile, String> {
    let tags = tags::extract(text, tree).map_err(|e| format!("{}: {e:#}", rel.display()))?;
    let mut seen: BTreeMap<&str, RefKind> = BTreeMap::new();
    for r in &tags.references {
        seen.entry(r.name.as_str()).or_insert(r.kind);
    }
    let distinct_refs = seen.into_iter().map(|(n, k)| (n.into(), k)).collect();
    Ok(IndexedFile {
        path: rel.to_path_buf(),
        text: text.into(),
        hash: content_hash(text),
        tags,
        distinct_refs,
    })
}

fn too_big(rel: &Path, size: u64, max: u64) -> String {
    format!(
        "{}: {size} bytes, above context.max_file_bytes ({max}); skipped as likely generated",
        rel.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch folder under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("conductor-index-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Scratch(dir)
        }

        fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            std::fs::write(path, contents).expect("write");
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn building_skips_ignored_excluded_secret_huge_and_broken_files_with_notes() {
        let ws = Scratch::new("skips");
        ws.write(
            "Cargo.toml",
            "[workspace]\nmembers = [\"app\"]\n[workspace.package]\nedition = \"2024\"\n",
        );
        ws.write(
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nedition.workspace = true\n",
        );
        ws.write("app/src/main.rs", "fn main() { helper(); }\n");
        ws.write("app/src/helper.rs", "pub fn helper() {}\n");
        ws.write(".gitignore", "ignored/\n");
        ws.write("ignored/skip.rs", "pub fn ignored_fn() {}\n");
        ws.write(
            "gen/big.rs",
            format!("pub fn big() {{}}\n{}", "// filler\n".repeat(200)),
        );
        ws.write("vendor/lib.rs", "pub fn vendored() {}\n");
        ws.write("app/src/credentials.rs", "pub const TOKEN: &str = \"x\";\n");
        ws.write("app/src/latin1.rs", b"pub fn caf\xe9() {}\n");
        ws.write("target/debug/build.rs", "pub fn built() {}\n");
        // A link (here a loop back to the root) is not followed: nothing is indexed twice.
        #[cfg(unix)]
        std::os::unix::fs::symlink(&ws.0, ws.0.join("app/src/loop")).expect("symlink");
        let settings = ContextSettings {
            exclude: vec!["vendor/**".into()],
            max_file_bytes: 1000,
            ..ContextSettings::default()
        };
        let index = WorkspaceIndex::build(&ws.0, &settings).expect("index");
        let mut files: Vec<String> = index
            .files()
            .map(|(_, f)| f.path.display().to_string())
            .collect();
        files.sort();
        assert_eq!(files, ["app/src/helper.rs", "app/src/main.rs"]);
        let (notes, count) = index.notes();
        let joined = notes.join("\n");
        assert!(
            joined.contains("gen/big.rs") && joined.contains("max_file_bytes"),
            "{joined}"
        );
        assert!(
            joined.contains("credentials.rs: looks like a secret"),
            "{joined}"
        );
        assert!(joined.contains("latin1.rs: not UTF-8"), "{joined}");
        assert_eq!(count, notes.len());
        let facts = index
            .crate_for(Path::new("app/src/main.rs"))
            .expect("crate");
        assert_eq!(
            (facts.name.as_str(), facts.edition.as_str()),
            ("app", "2024")
        );
        // The graph links main.rs to helper.rs, which defines what it calls.
        let main = index.file_id(Path::new("app/src/main.rs")).expect("main");
        let helper = index
            .file_id(Path::new("app/src/helper.rs"))
            .expect("helper");
        assert_eq!(
            index
                .graph()
                .links(main)
                .iter()
                .map(|l| l.0)
                .collect::<Vec<_>>(),
            [helper]
        );
    }

    #[test]
    fn a_folder_without_cargo_toml_is_indexed_with_a_note_and_disk_changes_are_followed() {
        let ws = Scratch::new("plain");
        ws.write("a.rs", "pub fn alpha() {}\n");
        let mut index = WorkspaceIndex::build(&ws.0, &ContextSettings::default()).expect("index");
        assert!(
            index.notes().0[0].contains("no Cargo.toml"),
            "{:?}",
            index.notes()
        );
        assert_eq!(index.definitions_of("alpha").len(), 1);
        ws.write("a.rs", "pub fn beta() {}\n");
        index
            .update_file_from_disk(&ws.0.join("a.rs"))
            .expect("update");
        assert!(index.definitions_of("alpha").is_empty());
        assert_eq!(index.definitions_of("beta").len(), 1);
        std::fs::remove_file(ws.0.join("a.rs")).expect("rm");
        index
            .update_file_from_disk(Path::new("a.rs"))
            .expect("deleted file");
        assert_eq!(index.file_count(), 0);
        let err = index
            .update_file(Path::new("/somewhere/else.rs"), "fn x() {}")
            .expect_err("outside");
        assert!(err.to_string().contains("outside the workspace"), "{err}");
        assert!(index.update_file(Path::new("../escape.rs"), "").is_err());
    }

    #[test]
    fn updates_admit_only_what_the_cold_build_admits() {
        let ws = Scratch::new("updates");
        ws.write(
            "Cargo.toml",
            "[package]\nname = \"app\"\nedition = \"2021\"\n",
        );
        ws.write("src/lib.rs", "pub fn kept() {}\n");
        ws.write(".gitignore", "ignored/\n");
        let settings = ContextSettings {
            exclude: vec!["vendor/".into()],
            ..ContextSettings::default()
        };
        let mut index = WorkspaceIndex::build(&ws.0, &settings).expect("index");
        assert_eq!(index.file_count(), 1);
        // A build script's output, a file in an ignored folder and one in an excluded folder
        // appear on disk (watcher events) or are opened (live text): none enters the index.
        for (rel, name) in [
            ("target/debug/build/x/out/gen.rs", "generated_helper"),
            ("ignored/skip.rs", "ignored_fn"),
            ("vendor/v.rs", "vendored"),
            ("node_modules/m/x.rs", "from_node_modules"),
            (".conductor/scratch/s.rs", "from_scratch_copy"),
        ] {
            ws.write(rel, format!("pub fn {name}() {{}}\n"));
            index
                .update_file_from_disk(&ws.0.join(rel))
                .expect("disk update");
            index
                .update_file(Path::new(rel), &format!("pub fn {name}() {{}}\n"))
                .expect("live update");
            assert!(!index.is_defined(name), "{rel} entered the index");
        }
        assert_eq!(index.file_count(), 1);
        // A manifest in an ignored place does not become crate facts.
        ws.write(
            "target/package/other-0.1.0/Cargo.toml",
            "[package]\nname = \"other\"\n",
        );
        index
            .update_file_from_disk(&ws.0.join("target/package/other-0.1.0/Cargo.toml"))
            .expect("manifest update");
        let crates: Vec<&str> = index.crates().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(crates, ["app"]);
        // An admitted new file still enters.
        ws.write("src/new.rs", "pub fn fresh() {}\n");
        index
            .update_file_from_disk(&ws.0.join("src/new.rs"))
            .expect("update");
        assert!(index.is_defined("fresh"));
    }

    #[test]
    fn context_and_security_exclude_the_same_files_for_the_same_patterns() {
        let ws = Scratch::new("same-excludes");
        for rel in [
            "src/lib.rs",
            "vendor/v.rs",
            "third_party/deep/t.rs",
            "src/generated/g.rs",
            "gen/keep.rs",
            "gen/drop.rs",
            "docs/old.rs",
        ] {
            ws.write(rel, "pub fn f() {}\n");
        }
        let patterns: Vec<String> = [
            "vendor/",
            "third_party",
            "**/generated/**",
            "gen/*",
            "!gen/keep.rs",
            "/docs/",
        ]
        .map(String::from)
        .to_vec();
        let context = ContextSettings {
            exclude: patterns.clone(),
            ..ContextSettings::default()
        };
        let index = WorkspaceIndex::build(&ws.0, &context).expect("index");
        let mut indexed: Vec<String> = index
            .files()
            .map(|(_, f)| f.path.display().to_string())
            .collect();
        indexed.sort();
        let security = crate::security::SecuritySettings {
            exclude: patterns,
            ..crate::security::SecuritySettings::default()
        };
        let (scanned, _) =
            crate::security::walk::source_files(std::slice::from_ref(&ws.0), &security)
                .expect("walk");
        let scanned: Vec<String> = scanned
            .iter()
            .map(|p| p.strip_prefix(&ws.0).expect("under").display().to_string())
            .collect();
        assert_eq!(indexed, ["gen/keep.rs", "src/lib.rs"]);
        assert_eq!(scanned, indexed);
    }

    #[test]
    fn a_clone_is_independent_and_shares_the_texts() {
        let files = vec![
            (PathBuf::from("a.rs"), "pub fn alpha() {}\n".to_string()),
            (PathBuf::from("b.rs"), "fn b() { alpha(); }\n".to_string()),
        ];
        let mut live =
            WorkspaceIndex::from_texts(Path::new("/ws"), &ContextSettings::default(), files, &[])
                .expect("index");
        let graph = live.graph();
        let snapshot = live.clone();
        let a = live.file_id(Path::new("a.rs")).expect("a");
        // The clone points at the same file, not a copy of it, and at the same graph.
        assert!(std::ptr::eq(
            live.file(a).expect("a"),
            snapshot.file(a).expect("a")
        ));
        assert!(Arc::ptr_eq(&graph, &snapshot.graph()));
        live.update_file(Path::new("a.rs"), "pub fn beta() {}\n")
            .expect("update");
        live.remove_file(Path::new("b.rs")).expect("remove");
        assert!(live.is_defined("beta") && !live.is_defined("alpha"));
        assert_eq!(live.file_count(), 1);
        assert!(snapshot.is_defined("alpha") && !snapshot.is_defined("beta"));
        assert_eq!(snapshot.file_count(), 2);
        assert_eq!(
            snapshot
                .graph()
                .links(snapshot.file_id(Path::new("b.rs")).expect("b"))
                .iter()
                .map(|l| l.0)
                .collect::<Vec<_>>(),
            [a]
        );
    }

    #[test]
    fn file_ids_stay_stable_and_freed_ids_are_reused() {
        let mut index = WorkspaceIndex::from_texts(
            Path::new("/ws"),
            &ContextSettings::default(),
            Vec::new(),
            &[],
        )
        .expect("index");
        for round in 0..20 {
            index
                .update_file(Path::new("stable.rs"), &format!("pub fn s{round}() {{}}\n"))
                .expect("stable");
            index
                .update_file(Path::new(&format!("churn{round}.rs")), "pub fn c() {}\n")
                .expect("churn");
            index
                .remove_file(Path::new(&format!("churn{round}.rs")))
                .expect("remove");
        }
        assert_eq!(index.file_id(Path::new("stable.rs")), Some(0));
        assert_eq!(index.files.len(), 2, "slots grew with churn");
        index
            .update_file(Path::new("late.rs"), "pub fn late() {}\n")
            .expect("late");
        assert_eq!(index.file_id(Path::new("late.rs")), Some(1));
        assert_eq!(index.files.len(), 2);
    }

    #[test]
    fn a_missing_root_is_a_clear_error() {
        let err = WorkspaceIndex::build(Path::new("/no/such/folder"), &ContextSettings::default())
            .expect_err("missing");
        assert!(format!("{err:#}").contains("/no/such/folder"), "{err:#}");
    }
}
