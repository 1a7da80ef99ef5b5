//! The live workspace index: one thread owns the [`WorkspaceIndex`] and keeps it current from
//! messages, and readers take an immutable snapshot of it.
//!
//! Nothing that maintains the index runs on the caller's thread. Handlers send a message (an
//! O(1) document snapshot, a list of changed paths, new settings) and return at once; the index
//! thread drains whatever has queued, keeps only the latest revision of each open document,
//! parses what needs parsing, and publishes the result. Readers call [`LiveIndex::snapshot`]
//! and build bundles from an `Arc<WorkspaceIndex>` on their own thread, so a bundle build never
//! delays an update and an update never waits for a reader: when a reader still holds the
//! previous snapshot, the update works on a copy (`Arc::make_mut`; the copy shares every file's
//! text and tags).
//!
//! Rebuilds are generations: a rebuild that a newer one supersedes before it finished is thrown
//! away, never installed, and the open documents the thread has seen are applied on top of
//! every build that is installed, so an edit made while the disk was being read is never lost.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::{ContextSettings, WorkspaceIndex};
use crate::document::Snapshot;

/// How many prepared disk changes are installed before readers get a look at the index again.
const DISK_CHUNK: usize = 256;

/// Keystrokes come in bursts: an open document's update waits until its document has been quiet
/// this long (or anything else arrives), so the index re-reads a file once per pause in typing
/// rather than once per character, and the typing itself keeps the cores.
const TYPING_PAUSE: std::time::Duration = std::time::Duration::from_millis(60);

/// What the index thread reports, for progress and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexEvent {
    /// A build of generation `generation` started.
    Started {
        /// The build's number; each rebuild gets a new one.
        generation: u64,
    },
    /// Files parsed so far by the build of `generation`.
    Progress {
        /// The build.
        generation: u64,
        /// Files parsed.
        done: usize,
        /// Files to parse.
        total: usize,
    },
    /// The build of `generation` ended: installed (`Ok` with a summary) or failed.
    Finished {
        /// The build.
        generation: u64,
        /// A summary ("indexed 12 files (3,400 lines)") or why it failed.
        outcome: Result<String, String>,
    },
    /// The build of `generation` was thrown away because a newer one was asked for.
    Superseded {
        /// The build.
        generation: u64,
    },
}

enum Message {
    Build {
        generation: u64,
        root: PathBuf,
        settings: ContextSettings,
    },
    Settings(ContextSettings),
    Open(Snapshot),
    Closed(PathBuf),
    Disk(Vec<(PathBuf, bool)>),
    /// Answered once every message sent before it has been applied.
    Flush(mpsc::Sender<()>),
}

#[derive(Default)]
struct Slot {
    index: Option<Arc<WorkspaceIndex>>,
    /// Set while the thread has the index out for an update; readers wait for it to come back.
    updating: bool,
}

#[derive(Default)]
struct Shared {
    slot: Mutex<Slot>,
    returned: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn take(&self) -> Option<Arc<WorkspaceIndex>> {
        let mut slot = lock(&self.slot);
        slot.updating = true;
        slot.index.take()
    }

    /// The index as it is, for the index thread itself (its only writer): no wait, and the
    /// index stays in reach of readers.
    fn current(&self) -> Option<Arc<WorkspaceIndex>> {
        lock(&self.slot).index.clone()
    }

    fn put(&self, index: Option<Arc<WorkspaceIndex>>) {
        let mut slot = lock(&self.slot);
        slot.index = index;
        slot.updating = false;
        drop(slot);
        self.returned.notify_all();
    }
}

/// A handle on the live index. Cheap to clone; every clone talks to the same thread.
#[derive(Clone)]
pub struct LiveIndex {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Message>,
    generation: Arc<Mutex<u64>>,
}

impl std::fmt::Debug for LiveIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveIndex").finish_non_exhaustive()
    }
}

impl LiveIndex {
    /// Starts the index thread. It holds no index until [`rebuild`](Self::rebuild) is called;
    /// `events` receives what it reports. The thread ends when every handle is dropped.
    pub fn start(
        events: impl Fn(IndexEvent) + Send + Sync + 'static,
    ) -> std::io::Result<LiveIndex> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let worker = Worker {
            shared: shared.clone(),
            events: Box::new(events),
            open: HashMap::new(),
            settings: None,
        };
        std::thread::Builder::new()
            .name("conductor-index".into())
            .spawn(move || worker.run(rx))?;
        Ok(LiveIndex {
            shared,
            tx,
            generation: Arc::default(),
        })
    }

    fn send(&self, message: Message) {
        if self.tx.send(message).is_err() {
            tracing::error!(
                "the index thread has stopped; the context index is no longer kept current"
            );
        }
    }

    /// (Re)builds the index of `root` with `settings` in the background. Returns the build's
    /// generation; a later call supersedes it.
    pub fn rebuild(&self, root: PathBuf, settings: ContextSettings) -> u64 {
        let mut generation = lock(&self.generation);
        *generation += 1;
        self.send(Message::Build {
            generation: *generation,
            root,
            settings,
        });
        *generation
    }

    /// New `[context]` settings: the index is rebuilt only when a setting it depends on changed
    /// (what is indexed); the others (budgets, tokenizer) take effect in place. Returns the new
    /// build's generation when a rebuild is needed. `root` is the workspace to rebuild.
    pub fn settings_changed(&self, root: PathBuf, settings: ContextSettings) -> Option<u64> {
        let built_with = self.snapshot().map(|index| index.settings().clone());
        match built_with {
            Some(old) if !affects_index(&old, &settings) => {
                if old != settings {
                    self.send(Message::Settings(settings));
                }
                None
            }
            Some(_) => Some(self.rebuild(root, settings)),
            // Not built (yet): the build in flight, if any, is superseded by one with these.
            None if *lock(&self.generation) > 0 => Some(self.rebuild(root, settings)),
            None => None,
        }
    }

    /// An open document changed (or opened): its text is what the index holds for its path.
    pub fn document_changed(&self, snapshot: Snapshot) {
        if snapshot.path.is_some() {
            self.send(Message::Open(snapshot));
        }
    }

    /// A document closed: the disk is the truth for its path again.
    pub fn document_closed(&self, path: PathBuf) {
        self.send(Message::Closed(path));
    }

    /// Files changed on disk (`true`: deleted). Paths of open documents are ignored until they
    /// close.
    pub fn files_changed(&self, changes: Vec<(PathBuf, bool)>) {
        if !changes.is_empty() {
            self.send(Message::Disk(changes));
        }
    }

    /// The index as it is now, if one has been built. Waits only while an update is being
    /// applied (milliseconds), never for a build.
    pub fn snapshot(&self) -> Option<Arc<WorkspaceIndex>> {
        let mut slot = lock(&self.shared.slot);
        while slot.updating {
            slot = self
                .shared
                .returned
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
        slot.index.clone()
    }

    /// Blocks until every message sent before this call has been applied (builds included).
    /// For tests and the command line; never call it on the session's thread.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Message::Flush(tx));
        let _ = rx.recv();
    }
}

/// Whether going from `old` to `new` changes what the index holds.
fn affects_index(old: &ContextSettings, new: &ContextSettings) -> bool {
    old.exclude != new.exclude
        || old.max_file_bytes != new.max_file_bytes
        || old.secret_files != new.secret_files
}

struct Worker {
    shared: Arc<Shared>,
    events: Box<dyn Fn(IndexEvent) + Send + Sync>,
    /// The latest snapshot of every open document the thread has been told of.
    open: HashMap<PathBuf, Snapshot>,
    /// Settings that arrived for queries (budget, tokenizer) since the last build.
    settings: Option<ContextSettings>,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<Message>) {
        let mut carried: Vec<Message> = Vec::new();
        loop {
            let mut batch = std::mem::take(&mut carried);
            if batch.is_empty() {
                match rx.recv() {
                    Ok(message) => batch.push(message),
                    Err(_) => return,
                }
            }
            batch.extend(rx.try_iter());
            // Only document updates so far: wait for a pause in typing before applying them.
            while batch.iter().all(|m| matches!(m, Message::Open(_))) {
                match rx.recv_timeout(TYPING_PAUSE) {
                    Ok(message) => {
                        batch.push(message);
                        batch.extend(rx.try_iter());
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
            carried = self.apply_batch(batch, &rx);
            // A build or a re-read of a file frees its parse trees: handed back once quiet.
            crate::util::release_freed_memory_soon();
        }
    }

    /// Applies one batch; returns messages that arrived during a build and still need applying.
    fn apply_batch(&mut self, batch: Vec<Message>, rx: &mpsc::Receiver<Message>) -> Vec<Message> {
        let mut build = None;
        let mut dirty: HashSet<PathBuf> = HashSet::new();
        let mut disk: Vec<(PathBuf, bool)> = Vec::new();
        let mut flushes = Vec::new();
        for message in batch {
            match message {
                Message::Build {
                    generation,
                    root,
                    settings,
                } => {
                    if let Some((old, _, _)) = build.replace((generation, root, settings)) {
                        (self.events)(IndexEvent::Superseded { generation: old });
                    }
                }
                Message::Settings(settings) => self.settings = Some(settings),
                Message::Open(snapshot) => {
                    let Some(path) = snapshot.path.clone() else {
                        continue;
                    };
                    let newer = self
                        .open
                        .get(&path)
                        .is_none_or(|seen| seen.revision < snapshot.revision);
                    if newer {
                        self.open.insert(path.clone(), snapshot);
                        dirty.insert(path);
                    }
                }
                Message::Closed(path) => {
                    self.open.remove(&path);
                    dirty.remove(&path);
                    disk.push((path, false));
                }
                Message::Disk(changes) => disk.extend(
                    changes
                        .into_iter()
                        .filter(|(path, _)| !self.open.contains_key(path)),
                ),
                Message::Flush(done) => flushes.push(done),
            }
        }
        let mut carried = Vec::new();
        if let Some((generation, root, settings)) = build {
            (self.events)(IndexEvent::Started { generation });
            let events = &self.events;
            let built = WorkspaceIndex::build_with_progress(&root, &settings, &|done, total| {
                events(IndexEvent::Progress {
                    generation,
                    done,
                    total,
                })
            });
            // A newer build asked for meanwhile makes this one stale: it is not installed.
            carried.extend(rx.try_iter());
            let superseded = carried.iter().any(|m| matches!(m, Message::Build { .. }));
            match built {
                Ok(_) if superseded => (self.events)(IndexEvent::Superseded { generation }),
                Ok(index) => {
                    self.shared.take();
                    self.settings = None;
                    let mut index = Arc::new(index);
                    // The build read the disk; open documents win over it.
                    for snapshot in self.open.values() {
                        update_open(Arc::make_mut(&mut index), snapshot);
                    }
                    let summary = summary(&index);
                    self.shared.put(Some(index));
                    dirty.clear();
                    disk.clear();
                    (self.events)(IndexEvent::Finished {
                        generation,
                        outcome: Ok(summary),
                    });
                }
                Err(err) => (self.events)(IndexEvent::Finished {
                    generation,
                    outcome: Err(format!("{err:#}")),
                }),
            }
        }
        if self.settings.is_some() || !dirty.is_empty() || !disk.is_empty() {
            self.update(dirty, disk);
        }
        // A flush waits for what was queued before it, including messages carried over.
        if carried.is_empty() {
            for done in flushes {
                let _ = done.send(());
            }
        } else {
            carried.extend(flushes.into_iter().map(Message::Flush));
        }
        carried
    }

    fn update(&mut self, dirty: HashSet<PathBuf>, disk: Vec<(PathBuf, bool)>) {
        // The slow half of a disk batch (a checkout: reading and parsing every changed file)
        // runs in parallel on the index as it is, which readers keep using meanwhile; only the
        // installation below takes the index out of their reach.
        let mut prepared = Vec::new();
        if !disk.is_empty() {
            let Some(current) = self.shared.current() else {
                // Not built yet: the build applies the open documents and reads the disk itself.
                return;
            };
            prepared = current.prepare_disk_changes(&disk);
            // Dropped before the index is taken, or `make_mut` below would copy it.
            drop(current);
        }
        let Some(mut index) = self.shared.take() else {
            self.shared.put(None);
            return;
        };
        {
            let index = Arc::make_mut(&mut index);
            if let Some(settings) = self.settings.take() {
                index.set_query_settings(&settings);
            }
            for path in &dirty {
                if let Some(snapshot) = self.open.get(path) {
                    update_open(index, snapshot);
                }
            }
        }
        // Large batches are installed in chunks, so readers are never kept waiting for more
        // than one chunk.
        let mut prepared = prepared.into_iter().peekable();
        let mut first = true;
        while prepared.peek().is_some() {
            if !first {
                self.shared.put(Some(index));
                let Some(next) = self.shared.take() else {
                    self.shared.put(None);
                    return;
                };
                index = next;
            }
            first = false;
            Arc::make_mut(&mut index).install_disk_changes(prepared.by_ref().take(DISK_CHUNK));
        }
        self.shared.put(Some(index));
    }
}

fn update_open(index: &mut WorkspaceIndex, snapshot: &Snapshot) {
    let Some(path) = &snapshot.path else {
        return;
    };
    let text = snapshot.to_text();
    let tree = snapshot.tree();
    if let Err(err) = index.update_file_parsed(path, &text, tree.as_ref()) {
        tracing::debug!("context index: {err:#}");
    }
}

fn summary(index: &WorkspaceIndex) -> String {
    let (_, skipped) = index.notes();
    format!(
        "indexed {} files ({} lines){}",
        index.file_count(),
        index.line_count(),
        if skipped > 0 {
            format!(", {skipped} skipped (see the log)")
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Documents;

    fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    fn defines(index: &WorkspaceIndex, name: &str) -> bool {
        index.is_defined(name)
    }

    fn recorder() -> (
        Arc<Mutex<Vec<IndexEvent>>>,
        impl Fn(IndexEvent) + Send + Sync + 'static,
    ) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        (events, move |e| lock(&sink).push(e))
    }

    /// What an index holds, in a form two indexes can be compared by: every file with its text
    /// hash and definitions, the crates, and every name's definitions and referencing files.
    fn contents(index: &WorkspaceIndex) -> Vec<String> {
        let mut out: Vec<String> = index
            .files()
            .map(|(_, f)| {
                let defs: Vec<&str> = f.tags.definitions.iter().map(|d| d.name.as_str()).collect();
                format!("{} {:x} {defs:?}", f.path.display(), f.hash)
            })
            .collect();
        for krate in index.crates() {
            out.push(format!("crate {krate:?}"));
        }
        let mut names: Vec<String> = index
            .files()
            .flat_map(|(_, f)| f.tags.definitions.iter().map(|d| d.name.to_string()))
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let mut places: Vec<String> = index
                .definitions_of(&name)
                .iter()
                .filter_map(|id| index.file(id.file))
                .map(|f| f.path.display().to_string())
                .collect();
            places.sort();
            let mut users: Vec<String> = index
                .files_referencing(&name)
                .iter()
                .filter_map(|id| index.file(*id))
                .map(|f| f.path.display().to_string())
                .collect();
            users.sort();
            out.push(format!("{name}: {places:?} used by {users:?}"));
        }
        out.sort();
        out
    }

    #[test]
    fn a_checkout_parsed_in_parallel_leaves_the_index_a_fresh_build_would_make() {
        // More files than one installation chunk, so the batch is installed in several.
        let mut files: Vec<(String, String)> = vec![(
            "Cargo.toml".into(),
            "[package]\nname = \"before\"\nversion = \"0.1.0\"\n".into(),
        )];
        for i in 0..600 {
            files.push((
                format!("src/m{i}.rs"),
                format!("pub fn old_{i}() {{ new_{}(); }}\n", (i + 1) % 600),
            ));
        }
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        let dir = workspace(&borrowed);
        let root = dir.path().canonicalize().expect("root");
        let live = LiveIndex::start(|_| {}).expect("thread");
        live.rebuild(root.clone(), ContextSettings::default());
        live.flush();
        let before = live.snapshot().expect("built");
        assert!(defines(&before, "old_599"));

        // The checkout: most files rewritten, some deleted, one left as it was, one no longer
        // UTF-8, one new, the manifest renamed; one path deleted and then made again.
        let mut events = Vec::new();
        for i in 0..600 {
            let path = root.join(format!("src/m{i}.rs"));
            match i % 10 {
                0 => {
                    std::fs::remove_file(&path).expect("rm");
                    events.push((path, true));
                }
                1 => events.push((path, false)),
                2 if i == 2 => {
                    std::fs::write(&path, b"pub fn \xff() {}\n").expect("write");
                    events.push((path, false));
                }
                _ => {
                    std::fs::write(&path, format!("pub fn new_{i}() {{ old_{i}(); }}\n"))
                        .expect("write");
                    events.push((path, false));
                }
            }
        }
        let again = root.join("src/m10.rs");
        std::fs::write(&again, "pub fn made_again() {}\n").expect("write");
        events.push((again, false));
        std::fs::write(root.join("src/added.rs"), "pub fn added() {}\n").expect("write");
        events.push((root.join("src/added.rs"), false));
        std::fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"after\"\nversion = \"0.1.0\"\n",
        )
        .expect("write");
        events.push((root.join("Cargo.toml"), false));
        live.files_changed(events);
        live.flush();
        let after = live.snapshot().expect("still built");

        let fresh = WorkspaceIndex::build(&root, &ContextSettings::default()).expect("build");
        assert_eq!(contents(&after), contents(&fresh));
        assert!(
            defines(&after, "new_3") && defines(&after, "made_again") && defines(&after, "added")
        );
        assert!(
            !defines(&after, "old_3") && !defines(&after, "old_20") && !defines(&after, "new_2")
        );
        assert!(
            after
                .crates()
                .iter()
                .any(|c| format!("{c:?}").contains("after"))
        );
        // The reader's snapshot from before the checkout is untouched.
        assert!(defines(&before, "old_3"));
        assert!(!defines(&before, "added"));
    }

    #[test]
    fn edits_made_before_and_during_a_build_win_over_the_disk() {
        let dir = workspace(&[("src/lib.rs", "pub fn on_disk() {}\n")]);
        let root = dir.path().canonicalize().expect("root");
        let path = root.join("src/lib.rs");
        let (events, sink) = recorder();
        let live = LiveIndex::start(sink).expect("thread");
        let mut docs = Documents::default();
        docs.open(
            "file:///lib.rs",
            Some(path.clone()),
            "rust",
            1,
            "pub fn typed_before() {}\n",
        );
        // Sent before any build exists: kept, and applied on top of the build.
        live.document_changed(docs.snapshot("file:///lib.rs").expect("open"));
        live.rebuild(root.clone(), ContextSettings::default());
        live.flush();
        let index = live.snapshot().expect("built");
        assert!(defines(&index, "typed_before"));
        assert!(!defines(&index, "on_disk"));
        // An older revision arriving late never overwrites a newer one.
        let old = docs.snapshot("file:///lib.rs").expect("open");
        docs.change(
            "file:///lib.rs",
            2,
            &[crate::document::TextChange {
                range: None,
                text: "pub fn typed_after() {}\n".into(),
            }],
            crate::document::PositionEncoding::Utf8,
        );
        live.document_changed(docs.snapshot("file:///lib.rs").expect("open"));
        live.document_changed(old);
        live.flush();
        let now = live.snapshot().expect("built");
        assert!(defines(&now, "typed_after"));
        assert!(!defines(&now, "typed_before"));
        // The reader's snapshot did not change under it.
        assert!(defines(&index, "typed_before"));
        // Closing makes the disk the truth again.
        live.document_closed(path);
        live.flush();
        assert!(defines(&live.snapshot().expect("built"), "on_disk"));
        let finished = lock(&events)
            .iter()
            .filter(|e| matches!(e, IndexEvent::Finished { outcome: Ok(_), .. }))
            .count();
        assert_eq!(finished, 1);
    }

    #[test]
    fn a_superseded_build_is_never_installed() {
        let dir = workspace(&[
            ("src/lib.rs", "pub fn kept() {}\n"),
            ("gen/x.rs", "pub fn generated() {}\n"),
        ]);
        let root = dir.path().canonicalize().expect("root");
        let (events, sink) = recorder();
        let live = LiveIndex::start(sink).expect("thread");
        let excluding = ContextSettings {
            exclude: vec!["gen/**".into()],
            ..ContextSettings::default()
        };
        // Two rebuilds queued back to back: only the last one's settings may ever be seen.
        live.rebuild(root.clone(), ContextSettings::default());
        live.rebuild(root.clone(), excluding.clone());
        live.flush();
        let index = live.snapshot().expect("built");
        assert_eq!(index.settings(), &excluding);
        assert!(!defines(&index, "generated"));
        let events = lock(&events).clone();
        assert!(
            events.contains(&IndexEvent::Superseded { generation: 1 }),
            "{events:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, IndexEvent::Finished { generation: 1, .. })),
            "{events:?}"
        );
    }

    #[test]
    fn settings_that_do_not_change_what_is_indexed_apply_without_a_rebuild() {
        let dir = workspace(&[("src/lib.rs", "pub fn a() {}\n")]);
        let root = dir.path().canonicalize().expect("root");
        let (events, sink) = recorder();
        let live = LiveIndex::start(sink).expect("thread");
        live.rebuild(root.clone(), ContextSettings::default());
        live.flush();
        let budget = ContextSettings {
            budget: 123,
            ..ContextSettings::default()
        };
        assert_eq!(live.settings_changed(root.clone(), budget), None);
        live.flush();
        assert_eq!(live.snapshot().expect("built").settings().budget, 123);
        let excluding = ContextSettings {
            exclude: vec!["src/**".into()],
            ..ContextSettings::default()
        };
        assert_eq!(live.settings_changed(root, excluding), Some(2));
        live.flush();
        assert!(!defines(&live.snapshot().expect("built"), "a"));
        let starts = lock(&events)
            .iter()
            .filter(|e| matches!(e, IndexEvent::Started { .. }))
            .count();
        assert_eq!(starts, 2);
    }

    #[test]
    fn disk_changes_of_open_documents_wait_until_they_close() {
        let dir = workspace(&[("src/lib.rs", "pub fn disk_one() {}\n")]);
        let root = dir.path().canonicalize().expect("root");
        let path = root.join("src/lib.rs");
        let live = LiveIndex::start(|_| {}).expect("thread");
        live.rebuild(root.clone(), ContextSettings::default());
        let mut docs = Documents::default();
        docs.open(
            "file:///lib.rs",
            Some(path.clone()),
            "rust",
            1,
            "pub fn buffer() {}\n",
        );
        live.document_changed(docs.snapshot("file:///lib.rs").expect("open"));
        std::fs::write(&path, "pub fn disk_two() {}\n").expect("write");
        std::fs::write(root.join("src/new.rs"), "pub fn brand_new() {}\n").expect("write");
        live.files_changed(vec![
            (path.clone(), false),
            (root.join("src/new.rs"), false),
        ]);
        live.flush();
        let index = live.snapshot().expect("built");
        assert!(defines(&index, "buffer"));
        assert!(!defines(&index, "disk_two"));
        assert!(defines(&index, "brand_new"));
        std::fs::remove_file(root.join("src/new.rs")).expect("rm");
        live.files_changed(vec![(root.join("src/new.rs"), true)]);
        live.flush();
        assert!(!defines(&live.snapshot().expect("built"), "brand_new"));
    }
}
