//! Finding and scanning the files of a workspace: which files belong is the workspace
//! [`Filter`]'s decision (`.gitignore`/`.ignore`, built-in folders, `security.exclude`);
//! oversized, binary and non-UTF-8 files are skipped with a note, and files are scanned on
//! every core.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tree_sitter::Parser;

use std::sync::Arc;

use super::engine::worth_scanning;
use super::flow::{self, CrateSummaries, CrateView};
use super::{Finding, SecuritySettings, scan_in_crate};
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
    scan_text(path, text, settings, None)
}

/// Reads and scans one file of a crate with `view`, its crate's summaries ([`crate_views_of`]).
pub fn scan_file_in_crate(
    path: &Path,
    settings: &SecuritySettings,
    view: Option<CrateView>,
) -> Result<FileReport, String> {
    let text = read_source(path, settings)?;
    scan_text(path, text, settings, view)
}

/// Each file's view of its crate's summaries (see [`crate_summaries`]), for the files that have
/// one: what the editor keeps from a workspace scan so that live scans of open documents
/// follow calls into the crate's other files.
pub fn crate_views_of(
    files: &[PathBuf],
    settings: &SecuritySettings,
    workers: usize,
) -> std::collections::HashMap<PathBuf, CrateView> {
    let texts = workspace::par_collect(files, workers, |path| read_source(path, settings));
    crate_views(files, &texts, settings, workers)
        .into_iter()
        .zip(files)
        .filter_map(|(view, path)| Some((path.clone(), view?)))
        .collect()
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
fn parse(language: &'static Language, text: &str) -> Result<tree_sitter::Tree, String> {
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

/// Scans a file's text, with its crate's summaries when it has some.
fn scan_text(
    path: &Path,
    text: String,
    settings: &SecuritySettings,
    view: Option<CrateView>,
) -> Result<FileReport, String> {
    let language = Language::for_path(path).ok_or("not a source file of a known language")?;
    // A file without any rule's anchor words cannot match: it is not even parsed.
    if !worth_scanning(language, &text, settings) {
        return Ok(FileReport {
            path: path.to_path_buf(),
            text,
            findings: Vec::new(),
        });
    }
    let tree = parse(language, &text)?;
    let findings = scan_in_crate(language, &text, &tree, settings, view.as_ref());
    Ok(FileReport {
        path: path.to_path_buf(),
        text,
        findings,
    })
}

/// Scans `files` on all available cores; one result per file, in order (`Err` is the note
/// saying why a file was skipped). Files of one crate (the same nearest `Cargo.toml`, or no
/// `Cargo.toml` at all) see each other's functions through [`crate_summaries`].
pub fn scan_files(
    files: &[PathBuf],
    settings: &SecuritySettings,
) -> Vec<Result<FileReport, String>> {
    let workers = workspace::workers(0);
    let texts = workspace::par_collect(files, workers, |path| read_source(path, settings));
    let views = crate_views(files, &texts, settings, workers);
    let jobs: Vec<usize> = (0..files.len()).collect();
    let texts: Vec<std::sync::Mutex<Option<Result<String, String>>>> = texts
        .into_iter()
        .map(|t| std::sync::Mutex::new(Some(t)))
        .collect();
    workspace::par_collect(&jobs, workers, |&i| {
        let text = texts[i]
            .lock()
            .map_err(|_| "skipped: a scan thread panicked".to_string())?
            .take()
            .ok_or("skipped: scanned twice")??;
        scan_text(&files[i], text, settings, views[i].clone())
    })
}

/// The crate-wide summaries of `files`, each file's view of its crate's (see
/// [`crate_summaries`]); `None` for a file whose crate has nothing that crosses files.
fn crate_views(
    files: &[PathBuf],
    texts: &[Result<String, String>],
    settings: &SecuritySettings,
    workers: usize,
) -> Vec<Option<CrateView>> {
    let mut views: Vec<Option<CrateView>> = vec![None; files.len()];
    for group in crate_groups(files) {
        let members: Vec<(usize, &str)> = group
            .into_iter()
            .filter(|&i| flows_across(&files[i]))
            .filter_map(|i| texts[i].as_ref().ok().map(|t| (i, t.as_str())))
            .collect();
        if members.len() < 2 {
            continue;
        }
        let paths: Vec<&Path> = members.iter().map(|(i, _)| files[*i].as_path()).collect();
        let sources: Vec<&str> = members.iter().map(|(_, t)| *t).collect();
        let summaries = Arc::new(crate_summaries(&paths, &sources, settings, workers));
        if summaries.is_empty() {
            continue;
        }
        for (at, (i, _)) in members.iter().enumerate() {
            views[*i] = Some(CrateView::new(summaries.clone(), at));
        }
    }
    views
}

/// Whether data flow of `path`'s language follows calls across files (Rust only).
fn flows_across(path: &Path) -> bool {
    Language::for_path(path).is_some_and(|l| l.name == "rust")
}

/// Groups file indices by crate: the nearest folder above a file that holds a `Cargo.toml`
/// (files under none form one group of their own), in file order.
fn crate_groups(files: &[PathBuf]) -> Vec<Vec<usize>> {
    let mut roots: std::collections::HashMap<PathBuf, Option<PathBuf>> =
        std::collections::HashMap::new();
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
    let mut groups: Vec<(Option<PathBuf>, Vec<usize>)> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let root = file.parent().and_then(&mut root_of);
        match groups.iter_mut().find(|(r, _)| *r == root) {
            Some((_, members)) => members.push(i),
            None => groups.push((root, vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// The summaries of one crate's files (`paths[i]` holds `texts[i]`): which of their functions
/// return untrusted data or pass their parameters through, and what each file's calls pass to
/// the functions of the others. Only files that link to another file are parsed for it.
pub fn crate_summaries(
    paths: &[&Path],
    texts: &[&str],
    settings: &SecuritySettings,
    workers: usize,
) -> CrateSummaries {
    let local = settings.local_sources;
    let indices: Vec<usize> = (0..texts.len()).collect();
    let facts = workspace::par_collect(&indices, workers, |&i| flow::text_facts(texts[i], local));
    let tasks = flow::plan(&facts);
    let labels = labels(paths);
    let summaries = workspace::par_collect(&indices, workers, |&i| {
        let task = &tasks[i];
        let Some(language) = Language::for_path(paths[i]).filter(|_| !task.is_empty()) else {
            return flow::FileSummaries::default();
        };
        match parse(language, texts[i]) {
            Ok(tree) => flow::summarise_file(texts[i], &tree, &labels[i], task, local),
            Err(_) => flow::FileSummaries::default(),
        }
    });
    let modules = paths.iter().map(|p| flow::file_module(p)).collect();
    CrateSummaries::new(summaries, modules)
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
    let (files, notes) = source_files(paths, settings)?;
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
    let (files, notes) = source_files_in(root, paths, settings)?;
    Ok(scan_listed(files, notes, settings, started))
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
