//! Finding and scanning the files of a workspace: `.gitignore` and the configured excludes are
//! respected, oversized, binary and non-UTF-8 files are skipped with a note, and files are
//! scanned on every core.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use tree_sitter::Parser;

use super::engine::worth_scanning;
use super::{Finding, SecuritySettings, scan};
use crate::syntax::Language;

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

/// Lists the source files under `paths` (files are taken as given, folders are walked),
/// honouring `.gitignore`, `.ignore` and `settings.exclude`. Only files of a registered
/// language are returned.
pub fn source_files(
    paths: &[PathBuf],
    settings: &SecuritySettings,
) -> anyhow::Result<(Vec<PathBuf>, Vec<ScanNote>)> {
    let mut files = Vec::new();
    let mut notes = Vec::new();
    for root in paths {
        if root.is_file() {
            files.push(root.clone());
            continue;
        }
        if !root.exists() {
            notes.push(ScanNote {
                path: root.clone(),
                message: "does not exist".into(),
            });
            continue;
        }
        let mut overrides = OverrideBuilder::new(root);
        for glob in &settings.exclude {
            overrides
                .add(&format!("!{glob}"))
                .with_context(|| format!("security.exclude: invalid glob `{glob}`"))?;
        }
        let overrides = overrides
            .build()
            .context("security.exclude: building the exclude list")?;
        let walker = WalkBuilder::new(root)
            .overrides(overrides)
            .require_git(false)
            .build();
        for entry in walker {
            match entry {
                Ok(entry) => {
                    let path = entry.path();
                    if entry.file_type().is_some_and(|t| t.is_file())
                        && Language::for_path(path).is_some()
                    {
                        files.push(path.to_path_buf());
                    }
                }
                Err(err) => notes.push(ScanNote {
                    path: root.clone(),
                    message: format!("walking: {err}"),
                }),
            }
        }
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
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.contains(&0) {
        return Err("skipped: binary file".into());
    }
    let text = String::from_utf8(bytes).map_err(|_| "skipped: not valid UTF-8".to_string())?;
    // A file without any rule's anchor words cannot match: it is not even parsed.
    if !worth_scanning(language, &text, settings) {
        return Ok(FileReport {
            path: path.to_path_buf(),
            text,
            findings: Vec::new(),
        });
    }
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
    let findings = scan(language, &text, &tree, settings);
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
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<FileReport, String>)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    local.push((i, scan_file(path, settings)));
                }
                results
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(local);
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Walks `paths` and scans every source file on all available cores.
pub fn scan_paths(paths: &[PathBuf], settings: &SecuritySettings) -> anyhow::Result<ScanReport> {
    let started = Instant::now();
    let (files, mut notes) = source_files(paths, settings)?;
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
    Ok(report)
}
