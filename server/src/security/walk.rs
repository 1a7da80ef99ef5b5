//! Finding and scanning the files of a workspace: which files belong is the workspace
//! [`Filter`]'s decision (`.gitignore`/`.ignore`, built-in folders, `security.exclude`);
//! oversized, binary and non-UTF-8 files are skipped with a note, and files are scanned on
//! every core.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tree_sitter::Parser;

use super::engine::{Prescan, prescan, scan_prescanned};
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

/// Reads and scans one file. `Err` carries the note that says why it was skipped.
pub fn scan_file(path: &Path, settings: &SecuritySettings) -> Result<FileReport, String> {
    let language = Language::for_path(path).ok_or("not a source file of a known language")?;
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
    let text = String::from_utf8(bytes).map_err(|_| "skipped: not valid UTF-8".to_string())?;
    // A file without any rule's anchor words cannot match: it is not even parsed.
    let anchors = match prescan(language, &text, settings) {
        Prescan::Scan(anchors) => anchors,
        Prescan::Skip => {
            return Ok(FileReport {
                path: path.to_path_buf(),
                text,
                findings: Vec::new(),
            });
        }
    };
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
            let tree = parser.parse(&text, None);
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
    let findings = scan_prescanned(language, &text, &tree, settings, anchors.as_ref());
    Ok(FileReport {
        path: path.to_path_buf(),
        text,
        findings,
    })
}

/// Scans `files` on all available cores; one result per file, in order (`Err` is the note
/// saying why a file was skipped).
pub fn scan_files(
    files: &[PathBuf],
    settings: &SecuritySettings,
) -> Vec<Result<FileReport, String>> {
    // Largest files first: taken in path order, a big file near the end could keep one core
    // busy while the other had nothing left to do. Sizes are read from the file system; a
    // file that cannot be read counts as empty (its scan reports why).
    let mut order: Vec<(u64, usize)> = files
        .iter()
        .enumerate()
        .map(|(i, path)| (std::fs::metadata(path).map_or(0, |m| m.len()), i))
        .collect();
    order.sort_by_key(|&(bytes, i)| (std::cmp::Reverse(bytes), i));
    let results = workspace::par_collect(&order, workspace::workers(0), |&(_, i)| {
        (i, scan_file(&files[i], settings))
    });
    let mut results: Vec<(usize, Result<FileReport, String>)> = results;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
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
