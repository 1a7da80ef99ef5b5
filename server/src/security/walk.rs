//! Finding and scanning the files of a workspace: which files belong is the workspace
//! [`Filter`]'s decision (`.gitignore`/`.ignore`, built-in folders, `security.exclude`);
//! oversized, binary and non-UTF-8 files are skipped with a note, and files are scanned on
//! every core.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tree_sitter::{Parser, Tree};

use super::engine::{Prescan, prescan, scan_prescanned};
use super::flow::{self, CrateSummaries, CrateView};
use super::{Finding, SecuritySettings};
use crate::syntax::Language;
use crate::workspace::{self, Filter};

/// The findings of one file, with its text so that callers can convert offsets to lines.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The path as found by the walk.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
    /// The findings, in text order.
    pub findings: Vec<Finding>,
}

/// A file that was not scanned, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanNote {
    /// The file or folder concerned.
    pub path: PathBuf,
    /// Why it was skipped.
    pub message: String,
}

/// The outcome of scanning paths.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Files that were scanned (with or without findings), in path order.
    pub files: Vec<FileReport>,
    /// Files that were skipped.
    pub notes: Vec<ScanNote>,
    /// Wall-clock time of the walk and the scan.
    pub duration: Duration,
}

impl ScanReport {
    /// How many files were scanned.
    pub fn files_scanned(&self) -> usize {
        self.files.len()
    }

    /// Every finding, with its file.
    pub fn findings(&self) -> impl Iterator<Item = (&FileReport, &Finding)> {
        self.files
            .iter()
            .flat_map(|f| f.findings.iter().map(move |x| (f, x)))
    }
}

/// The workspace filter of the security scan for the workspace at `root`: `.gitignore` and
/// `.ignore` files, the built-in folders and `security.exclude`, in gitignore syntax.
pub fn filter(root: &Path, settings: &SecuritySettings) -> anyhow::Result<Filter> {
    Filter::new(root, &settings.exclude, "security.exclude")
}

/// Whether a workspace scan with `filter` covers `path`: a source file of a registered
/// language that the filter admits. Decided without a walk and without reading the file, so a
/// disk-change event (even a deletion) is checked in microseconds.
pub fn covers(filter: &Filter, path: &Path) -> bool {
    Language::for_path(path).is_some() && filter.admits(path)
}

/// Lists the source files under `paths` (files are taken as given, folders are walked), each
/// folder as a workspace of its own. See [`source_files_in`].
pub fn source_files(
    paths: &[PathBuf],
    settings: &SecuritySettings,
) -> anyhow::Result<(Vec<PathBuf>, Vec<ScanNote>)> {
    list(None, paths, settings)
}

/// Lists the source files under `paths` of the workspace at `root`: files are taken as given,
/// folders under `root` are walked with the workspace's [`filter`] (so patterns are relative
/// to `root`, where `conductor.toml` is), folders elsewhere as workspaces of their own. Only
/// files of a registered language are returned, sorted.
pub fn source_files_in(
    root: &Path,
    paths: &[PathBuf],
    settings: &SecuritySettings,
) -> anyhow::Result<(Vec<PathBuf>, Vec<ScanNote>)> {
    list(Some(root), paths, settings)
}

fn list(
    root: Option<&Path>,
    paths: &[PathBuf],
    settings: &SecuritySettings,
) -> anyhow::Result<(Vec<PathBuf>, Vec<ScanNote>)> {
    let shared = root.map(|root| filter(root, settings)).transpose()?;
    let canonical_root = root.and_then(|root| root.canonicalize().ok());
    let mut files = Vec::new();
    let mut notes = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
            continue;
        }
        if !path.exists() {
            notes.push(ScanNote {
                path: path.clone(),
                message: "does not exist".into(),
            });
            continue;
        }
        let inside = canonical_root.as_ref().is_some_and(|root| {
            path.canonicalize()
                .is_ok_and(|canonical| canonical.starts_with(root))
        });
        let own;
        let filter = match &shared {
            Some(shared) if inside => shared,
            _ => {
                own = filter(path, settings)?;
                &own
            }
        };
        // Canonical, so that a relative spelling (`other/ws/src` from another folder) is
        // related to the root as the folder it names.
        let folder = path.canonicalize().unwrap_or_else(|_| path.clone());
        if !filter.admits_folder(&folder) {
            notes.push(ScanNote {
                path: path.clone(),
                message: "not part of the workspace (hidden, a built-in folder, ignored or \
                          excluded by security.exclude); not scanned"
                    .into(),
            });
            continue;
        }
        let walk = filter.walk(path);
        for (at, err) in walk.errors {
            notes.push(ScanNote {
                path: at,
                message: format!("walking: {err}"),
            });
        }
        files.extend(
            walk.files
                .into_iter()
                .filter(|f| Language::for_path(f).is_some()),
        );
    }
    files.sort();
    files.dedup();
    Ok((files, notes))
}

/// Reads and scans one file on its own (no other file's summaries). `Err` carries the note
/// that says why it was skipped.
pub fn scan_file(path: &Path, settings: &SecuritySettings) -> Result<FileReport, String> {
    let text = read_source(path, settings)?;
    scan_text(path, text, None, None, settings, None)
}

/// Reads a file for scanning. `Err` carries the note that says why it was skipped.
fn read_source(path: &Path, settings: &SecuritySettings) -> Result<String, String> {
    Language::for_path(path).ok_or("not a source file of a known language")?;
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if metadata.len() > settings.max_file_bytes {
        return Err(format!(
            "skipped: {} bytes is over security.max_file_bytes ({})",
            metadata.len(),
            settings.max_file_bytes
        ));
    }
    let bytes = crate::util::read_regular_file(path, settings.max_file_bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.contains(&0) {
        return Err("skipped: binary file".into());
    }
    String::from_utf8(bytes).map_err(|_| "skipped: not valid UTF-8".to_string())
}

/// Parses `text` with the thread's parser for `language`. `Err` is the note for a file the
/// parser gave up on or whose syntax nests too deep to walk.
fn parse(language: &'static Language, text: &str) -> Result<Tree, String> {
    // One parser per thread and language, reused from file to file.
    thread_local! {
        static PARSERS: RefCell<Vec<(&'static str, Parser)>> = const { RefCell::new(Vec::new()) };
    }
    let tree = PARSERS
        .with_borrow_mut(|parsers| {
            let at = match parsers.iter().position(|(name, _)| *name == language.name) {
                Some(at) => at,
                None => {
                    parsers.push((language.name, language.parser()));
                    parsers.len() - 1
                }
            };
            let parser = &mut parsers[at].1;
            let tree = parser.parse(text, None);
            if tree.is_none() {
                // A parse that gave up leaves state behind; the next file starts clean.
                parser.reset();
            }
            tree
        })
        .ok_or("skipped: the parser gave up on this file")?;
    if crate::syntax::depth_exceeds(&tree, crate::syntax::MAX_TREE_DEPTH) {
        return Err(format!(
            "skipped: its syntax nests deeper than {} levels",
            crate::syntax::MAX_TREE_DEPTH
        ));
    }
    Ok(tree)
}

/// Scans a file's text, with the tree the crate pass parsed when it kept one, the anchor search
/// the read pass made when it made one (so the text is searched once), and its crate's
/// summaries when it has some.
fn scan_text(
    path: &Path,
    text: String,
    tree: Option<Result<Tree, String>>,
    searched: Option<Prescan>,
    settings: &SecuritySettings,
    view: Option<CrateView>,
) -> Result<FileReport, String> {
    let language = Language::for_path(path).ok_or("not a source file of a known language")?;
    // A file without any rule's anchor words cannot match: it is not even parsed.
    let anchors = match searched.unwrap_or_else(|| prescan(language, &text, settings)) {
        Prescan::Scan(anchors) => anchors,
        Prescan::Skip => {
            return Ok(FileReport {
                path: path.to_path_buf(),
                text,
                findings: Vec::new(),
            });
        }
    };
    let tree = match tree {
        Some(tree) => tree?,
        None => parse(language, &text)?,
    };
    let findings = scan_prescanned(
        language,
        &text,
        &tree,
        settings,
        anchors.as_ref(),
        view.as_ref(),
    );
    Ok(FileReport {
        path: path.to_path_buf(),
        text,
        findings,
    })
}

/// Scans `files` on all available cores; one result per file, in order (`Err` is the note
/// saying why a file was skipped). Files of one crate (the same nearest `Cargo.toml`, or no
/// `Cargo.toml` at all) see each other's functions through their crate's summaries
/// ([`Prepared`]).
pub fn scan_files(
    files: &[PathBuf],
    settings: &SecuritySettings,
) -> Vec<Result<FileReport, String>> {
    let workers = workspace::workers(0);
    let prepared = Prepared::new(files, settings, workers);
    // Largest files first: taken in path order, a big file near the end could keep one core
    // busy while the other had nothing left to do.
    let mut jobs: Vec<(usize, usize)> = (0..files.len())
        .map(|i| (prepared.text_len(i), i))
        .collect();
    jobs.sort_by_key(|&(bytes, i)| (std::cmp::Reverse(bytes), i));
    let mut results: Vec<(usize, Result<FileReport, String>)> =
        workspace::par_collect(&jobs, workers, |&(_, i)| {
            (i, prepared.scan(i, &files[i], settings))
        });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Files read and their crates summarised, ready to scan: what the crate pass leaves the scan.
///
/// Built in one pass over every file on the scan's workers, then one over the files that have
/// summary work, whatever crate they belong to (no crate waits for another):
/// 1. each file is read once, with the checks the scan makes (size, binary, UTF-8), and, if it
///    is Rust in a crate of two files or more, tested for anything that could be a source
///    ([`flow::could_hold_source`]: a few substring and regex searches);
/// 2. only in crates with such a file are the names each file defines and calls read
///    ([`flow::text_facts`]), and each such crate's [`flow::plan`] says which files have work
///    (most have none; most crates are not even planned);
/// 3. only those are parsed and summarised, and the tree of one the scan will scan too is
///    kept for it, so that no file is parsed twice; summaries are memoised by the file's text
///    and work, so a workspace scan again re-parses only what changed.
pub struct Prepared {
    /// Per file: its text (or the note that says why it is skipped) and the tree the summary
    /// pass parsed, both taken by the scan.
    slots: Vec<Mutex<Slot>>,
    /// Per file: its view of its crate's summaries, when the crate has some.
    views: Vec<Option<CrateView>>,
}

#[derive(Default)]
struct Slot {
    text: Option<Result<String, String>>,
    tree: Option<Parsed>,
    /// The read pass's anchor search, reused by the scan.
    searched: Option<Prescan>,
}

/// A parse's outcome: the tree, or the note for a file the parser gave up on.
type Parsed = Result<Tree, String>;

/// What the read pass learns of one file.
struct ReadFile {
    text: Result<String, String>,
    /// The anchor search of its text ([`prescan`]); `None` for a file that was not read.
    searched: Option<Prescan>,
    /// For a Rust file in a crate of two files or more: whether it could hold a source
    /// ([`flow::could_hold_source`]).
    origin: Option<bool>,
}

impl ReadFile {
    /// Whether the scan will parse it: read, and holding some rule's anchor words.
    fn worth(&self) -> bool {
        matches!(self.searched, Some(Prescan::Scan(_)))
    }
}

impl Prepared {
    /// Reads `files` and builds their crates' summaries on `workers` threads.
    pub fn new(files: &[PathBuf], settings: &SecuritySettings, workers: usize) -> Self {
        let local = settings.local_sources;
        let groups: Vec<Vec<usize>> = crate_groups(files)
            .into_iter()
            .map(|g| g.into_iter().filter(|&i| flows_across(&files[i])).collect())
            .filter(|g: &Vec<usize>| g.len() >= 2)
            .collect();
        let mut in_crate = vec![false; files.len()];
        for &i in groups.iter().flatten() {
            in_crate[i] = true;
        }
        let jobs: Vec<usize> = (0..files.len()).collect();
        let read: Vec<ReadFile> = workspace::par_collect(&jobs, workers, |&i| {
            let text = read_source(&files[i], settings);
            let (searched, origin) = match (&text, Language::for_path(&files[i])) {
                (Ok(t), Some(language)) => (
                    Some(prescan(language, t, settings)),
                    in_crate[i].then(|| flow::could_hold_source(t, local)),
                ),
                _ => (None, None),
            };
            ReadFile {
                text,
                searched,
                origin,
            }
        });
        // Only a crate with a file that could hold a source can pass taint between its files;
        // only its files' names are read (most crates have none).
        let groups: Vec<Vec<usize>> = groups
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .filter(|&i| read[i].origin.is_some())
                    .collect()
            })
            .filter(|g: &Vec<usize>| {
                g.len() >= 2 && g.iter().any(|&i| read[i].origin == Some(true))
            })
            .collect();
        let named: Vec<usize> = groups.iter().flatten().copied().collect();
        let facts: Vec<flow::TextFacts> =
            workspace::par_collect(&named, workers, |&i| match &read[i].text {
                Ok(t) => flow::text_facts(t, read[i].origin == Some(true)),
                Err(_) => flow::TextFacts::default(),
            });
        let mut facts: HashMap<usize, flow::TextFacts> = named.into_iter().zip(facts).collect();

        // Each crate's plan: which of its files have work, and the label descriptions use.
        struct Work {
            file: usize,
            label: String,
            task: flow::FileTask,
        }
        let mut work: Vec<Work> = Vec::new();
        // Per crate: its members that were read, in order (their index is their place in the
        // crate's summaries).
        let mut crates: Vec<(Vec<usize>, flow::CratePlan)> = Vec::new();
        for members in groups {
            let facts: Vec<flow::TextFacts> = members
                .iter()
                .map(|i| facts.remove(i).unwrap_or_default())
                .collect();
            let tasks = flow::plan(&facts);
            if tasks.iter().all(flow::FileTask::is_empty) {
                continue;
            }
            let paths: Vec<&Path> = members.iter().map(|&i| files[i].as_path()).collect();
            let labels = labels(&paths);
            for ((&file, task), label) in members.iter().zip(&tasks).zip(&labels) {
                if !task.is_empty() {
                    work.push(Work {
                        file,
                        label: label.clone(),
                        task: task.clone(),
                    });
                }
            }
            let plan = flow::CratePlan {
                tasks,
                labels,
                local,
            };
            crates.push((members, plan));
        }

        // The summary pass, on the same workers, over every crate's files at once.
        let summaries: Vec<(usize, flow::FileSummaries, Option<Parsed>)> =
            workspace::par_collect(&work, workers, |w| {
                let (summaries, tree) = summarise(&files[w.file], &read[w.file], w, local);
                (w.file, summaries, tree.filter(|_| read[w.file].worth()))
            });
        let mut slots: Vec<Slot> = read
            .into_iter()
            .map(|r| Slot {
                text: Some(r.text),
                tree: None,
                searched: r.searched,
            })
            .collect();
        let mut by_file: HashMap<usize, flow::FileSummaries> = HashMap::new();
        for (file, summary, tree) in summaries {
            slots[file].tree = tree;
            by_file.insert(file, summary);
        }
        let mut views: Vec<Option<CrateView>> = vec![None; files.len()];
        for (members, plan) in crates {
            let modules = members
                .iter()
                .map(|&i| flow::file_module(&files[i]))
                .collect();
            let parts = members
                .iter()
                .map(|i| by_file.remove(i).unwrap_or_default())
                .collect();
            // A crate whose files have work gets views even when nothing crosses files yet:
            // the editor recomputes an edited file's part through its view.
            let summaries = Arc::new(CrateSummaries::new(parts, modules, plan));
            for (at, &i) in members.iter().enumerate() {
                views[i] = Some(CrateView::new(summaries.clone(), at));
            }
        }
        return Prepared {
            slots: slots.into_iter().map(Mutex::new).collect(),
            views,
        };

        /// One file's summaries, memoised; the tree when this call parsed one.
        fn summarise(
            path: &Path,
            read: &ReadFile,
            work: &Work,
            local: bool,
        ) -> (flow::FileSummaries, Option<Result<Tree, String>>) {
            let (Ok(text), Some(language)) = (&read.text, Language::for_path(path)) else {
                return (flow::FileSummaries::default(), None);
            };
            let key = memo_key(text, &work.label, &work.task, local);
            if let Some(known) = memo().get(key) {
                return (known, None);
            }
            let tree = parse(language, text);
            let summaries = match &tree {
                Ok(tree) => flow::summarise_file(text, tree, &work.label, &work.task, local),
                Err(_) => flow::FileSummaries::default(),
            };
            memo().put(key, summaries.clone());
            (summaries, Some(tree))
        }
    }

    /// Each file's view of its crate's summaries, for the files that have one: what the editor
    /// keeps from a workspace scan so that live scans of open documents follow calls into the
    /// crate's other files.
    pub fn views(&self, files: &[PathBuf]) -> HashMap<PathBuf, CrateView> {
        self.views
            .iter()
            .zip(files)
            .filter_map(|(view, path)| Some((path.clone(), view.clone()?)))
            .collect()
    }

    /// The length of file `i`'s text as read (0 when it was not read or is taken).
    fn text_len(&self, i: usize) -> usize {
        self.slots.get(i).map_or(0, |slot| {
            match &slot.lock().unwrap_or_else(PoisonError::into_inner).text {
                Some(Ok(text)) => text.len(),
                _ => 0,
            }
        })
    }

    /// Scans file `i` (`path`, as given to [`Prepared::new`]) with its crate's summaries,
    /// taking its text and kept tree. `Err` carries the note that says why it was skipped.
    pub fn scan(
        &self,
        i: usize,
        path: &Path,
        settings: &SecuritySettings,
    ) -> Result<FileReport, String> {
        let slot = self
            .slots
            .get(i)
            .ok_or("skipped: not in the prepared list")?;
        let (text, tree, searched) = {
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            (slot.text.take(), slot.tree.take(), slot.searched.take())
        };
        let text = text.ok_or("skipped: scanned twice")??;
        scan_text(path, text, tree, searched, settings, self.views[i].clone())
    }
}

/// A bounded memo of file summaries by [`memo_key`]: a workspace scan again (the editor runs
/// one per request, and after settings change) re-summarises only the files whose text or
/// work changed.
struct SummaryMemo(Mutex<HashMap<u64, flow::FileSummaries>>);

/// More entries than this and the memo starts again (a crude bound, but summaries of a large
/// workspace are a few megabytes at most).
const MEMO_ENTRIES: usize = 20_000;

impl SummaryMemo {
    fn get(&self, key: u64) -> Option<flow::FileSummaries> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned()
    }

    fn put(&self, key: u64, summaries: flow::FileSummaries) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MEMO_ENTRIES {
            map.clear();
        }
        map.insert(key, summaries);
    }
}

fn memo() -> &'static SummaryMemo {
    static MEMO: OnceLock<SummaryMemo> = OnceLock::new();
    MEMO.get_or_init(|| SummaryMemo(Mutex::new(HashMap::new())))
}

/// Everything a file's summaries depend on: its text, the label descriptions name it by, its
/// work and whether local sources count.
fn memo_key(text: &str, label: &str, task: &flow::FileTask, local: bool) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    label.hash(&mut h);
    local.hash(&mut h);
    let mut exports: Vec<&String> = task.exports.iter().collect();
    exports.sort();
    exports.hash(&mut h);
    let mut calls: Vec<&String> = task.calls.iter().collect();
    calls.sort();
    calls.hash(&mut h);
    h.finish()
}

/// Whether data flow of `path`'s language follows calls across files (Rust only).
fn flows_across(path: &Path) -> bool {
    Language::for_path(path).is_some_and(|l| l.name == "rust")
}

/// Groups file indices by crate: the nearest folder above a file that holds a `Cargo.toml`
/// (files under none form one group of their own), in file order.
fn crate_groups(files: &[PathBuf]) -> Vec<Vec<usize>> {
    let mut roots: HashMap<PathBuf, Option<PathBuf>> = HashMap::new();
    let mut root_of = |dir: &Path| -> Option<PathBuf> {
        let mut probed = Vec::new();
        let mut current = Some(dir);
        let mut found = None;
        while let Some(d) = current {
            if let Some(known) = roots.get(d) {
                found = known.clone();
                break;
            }
            probed.push(d.to_path_buf());
            if d.join("Cargo.toml").is_file() {
                found = Some(d.to_path_buf());
                break;
            }
            current = d.parent();
        }
        for d in probed {
            roots.insert(d, found.clone());
        }
        found
    };
    let mut index: HashMap<Option<PathBuf>, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let root = file.parent().and_then(&mut root_of);
        let at = *index.entry(root).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(i);
    }
    groups
}

/// How descriptions name the files: relative to the folder that holds them all.
fn labels(paths: &[&Path]) -> Vec<String> {
    let mut common = paths.first().and_then(|p| p.parent());
    while let Some(c) = common {
        if paths.iter().all(|p| p.starts_with(c)) {
            break;
        }
        common = c.parent();
    }
    paths
        .iter()
        .map(|p| {
            common
                .and_then(|c| p.strip_prefix(c).ok())
                .unwrap_or(p)
                .display()
                .to_string()
        })
        .collect()
}

/// Walks `paths` (each folder as a workspace of its own) and scans every source file on all
/// available cores.
pub fn scan_paths(paths: &[PathBuf], settings: &SecuritySettings) -> anyhow::Result<ScanReport> {
    let started = Instant::now();
    let (files, notes) = beside_rule_compilation(|| source_files(paths, settings))?;
    Ok(scan_listed(files, notes, settings, started))
}

/// Walks `paths` of the workspace at `root` (see [`source_files_in`]) and scans every source
/// file on all available cores.
pub fn scan_paths_in(
    root: &Path,
    paths: &[PathBuf],
    settings: &SecuritySettings,
) -> anyhow::Result<ScanReport> {
    let started = Instant::now();
    let (files, notes) = beside_rule_compilation(|| source_files_in(root, paths, settings))?;
    Ok(scan_listed(files, notes, settings, started))
}

/// Runs `walk` while another thread compiles the rules (once per process): the combined
/// query takes a few tenths of a second to compile, which the first file to be scanned would
/// otherwise wait for with every worker idle.
fn beside_rule_compilation<T: Send>(walk: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope.spawn(|| super::rules::rule_problems().len());
        walk()
    })
}

fn scan_listed(
    files: Vec<PathBuf>,
    mut notes: Vec<ScanNote>,
    settings: &SecuritySettings,
    started: Instant,
) -> ScanReport {
    let results = scan_files(&files, settings);
    let mut report = ScanReport::default();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(file) => report.files.push(file),
            Err(message) => notes.push(ScanNote {
                path: files[i].clone(),
                message,
            }),
        }
    }
    report.notes = notes;
    report.duration = started.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` under a temporary folder and scans it as `conductor scan` does.
    fn scan_tree(files: &[(&str, &str)]) -> (tempfile::TempDir, ScanReport) {
        let dir = tempfile::tempdir().expect("temp dir");
        for (rel, text) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        let report =
            scan_paths(&[dir.path().to_path_buf()], &SecuritySettings::default()).expect("scan");
        (dir, report)
    }

    /// `(file name, 1-based line, rule id, trace messages)` of every finding.
    fn found(report: &ScanReport) -> Vec<(String, usize, &'static str, Vec<String>)> {
        report
            .findings()
            .map(|(file, f)| {
                let name = file
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let line = file.text[..f.range.start].matches('\n').count() + 1;
                let trace = f.related.iter().map(|r| r.message.clone()).collect();
                (name, line, f.rule_id, trace)
            })
            .collect()
    }

    const HANDLERS: &str = "use axum::extract::Query;\n\
        async fn upload(Query(u): Query<Upload>) {\n\
        \x20   store::open_upload(&u.name);\n\
        }\n\
        async fn account(Query(u): Query<Upload>, conn: rusqlite::Connection) {\n\
        \x20   let sql = account_sql(&u.user);\n\
        \x20   let _ = conn.execute(&sql, []);\n\
        }\n\
        fn mirror() -> Vec<u8> {\n\
        \x20   std::fs::read(peer_name()).unwrap_or_default()\n\
        }\n\
        fn housekeeping(conn: &rusqlite::Connection) {\n\
        \x20   store::open_upload(\"motd.txt\");\n\
        \x20   let _ = conn.execute(&account_sql(\"system\"), []);\n\
        }\n";

    const STORE: &str = "pub fn open_upload(name: &str) -> std::io::Result<std::fs::File> {\n\
        \x20   std::fs::File::open(format!(\"/srv/uploads/{name}\"))\n\
        }\n\
        pub fn account_sql(user: &str) -> String {\n\
        \x20   format!(\"SELECT * FROM accounts WHERE owner = '{user}'\")\n\
        }\n\
        pub fn peer_name() -> String {\n\
        \x20   let mut s = std::net::TcpStream::connect(\"10.0.0.7:9000\").expect(\"peer\");\n\
        \x20   let mut name = String::new();\n\
        \x20   s.read_to_string(&mut name).ok();\n\
        \x20   name\n\
        }\n";

    #[test]
    fn taint_crosses_files_both_ways_with_the_call_site_in_the_trace() {
        let (_dir, report) = scan_tree(&[("src/api.rs", HANDLERS), ("src/store.rs", STORE)]);
        let found = found(&report);
        let lines: Vec<(&str, usize, &str)> = found
            .iter()
            .map(|(f, l, r, _)| (f.as_str(), *l, *r))
            .collect();
        assert_eq!(
            lines,
            [
                ("api.rs", 7, "rust/sql-injection"),
                ("api.rs", 10, "rust/path-traversal"),
                ("store.rs", 2, "rust/path-traversal"),
            ],
            "{found:#?}"
        );
        // The parameter's taint names the handler's source and the call in the other file.
        let (_, _, _, trace) = &found[2];
        assert!(
            trace.iter().any(
                |m| m.contains("api.rs:2") && m.contains("passed to `open_upload` at api.rs:3")
            ),
            "{trace:?}"
        );
        // The returned source names the function of the other file that reads it.
        let (_, _, _, trace) = &found[1];
        assert!(
            trace
                .iter()
                .any(|m| m.contains("returned by `peer_name` (store.rs:7)")),
            "{trace:?}"
        );
    }

    #[test]
    fn each_file_alone_or_in_separate_crates_finds_nothing_across_files() {
        // The same files in two crates: nothing links them.
        let (_dir, report) = scan_tree(&[
            ("a/Cargo.toml", "[package]\nname = \"a\"\n"),
            ("a/src/api.rs", HANDLERS),
            ("b/Cargo.toml", "[package]\nname = \"b\"\n"),
            ("b/src/store.rs", STORE),
        ]);
        assert_eq!(found(&report), [], "{:#?}", found(&report));
    }

    #[test]
    fn only_a_crate_with_a_file_that_could_hold_a_source_gets_summaries() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = [
            ("a/Cargo.toml", "[package]\nname = \"a\"\n"),
            (
                "a/src/lib.rs",
                "pub fn run(x: &str) { store::open_upload(x); }\n",
            ),
            (
                "a/src/store.rs",
                "pub fn open_upload(n: &str) { let _ = std::fs::File::open(n); }\n",
            ),
            ("b/Cargo.toml", "[package]\nname = \"b\"\n"),
            ("b/src/api.rs", HANDLERS),
            ("b/src/store.rs", STORE),
        ];
        let mut paths = Vec::new();
        for (rel, text) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, text).expect("write");
            if rel.ends_with(".rs") {
                paths.push(path);
            }
        }
        let prepared = Prepared::new(&paths, &SecuritySettings::default(), 1);
        let mut viewed: Vec<PathBuf> = prepared.views(&paths).into_keys().collect();
        viewed.sort();
        // Crate `a` has the same shape of cross-file call, but nothing in it could be a source.
        assert_eq!(viewed, [paths[2].clone(), paths[3].clone()]);
    }

    #[test]
    fn covers_agrees_with_the_walk_without_walking() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for rel in [
            "src/lib.rs",
            "src/notes.txt",
            "generated/x.rs",
            "ignored/y.rs",
            "target/debug/z.rs",
            ".gitignore",
        ] {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            let text = if rel == ".gitignore" {
                "ignored/\n"
            } else {
                ""
            };
            std::fs::write(path, text).expect("write");
        }
        let settings = SecuritySettings {
            exclude: vec!["generated/".into()],
            ..SecuritySettings::default()
        };
        let (listed, _) = source_files(&[root.to_path_buf()], &settings).expect("walk");
        assert_eq!(listed, [root.join("src/lib.rs")]);
        let filter = filter(root, &settings).expect("filter");
        for rel in [
            "src/lib.rs",
            "src/notes.txt",
            "generated/x.rs",
            "ignored/y.rs",
            "target/debug/z.rs",
        ] {
            let path = root.join(rel);
            assert_eq!(covers(&filter, &path), listed.contains(&path), "{rel}");
        }
        // A deleted file is judged by its path alone.
        assert!(covers(&filter, &root.join("src/deleted.rs")));
        assert!(!covers(&filter, &root.join("generated/deleted.rs")));
    }
}
