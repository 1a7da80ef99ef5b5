//! The workspace scan's engine, in plain data: the stop flag a scan checks before every file,
//! the scan of a file list on every core, and the [`DiskTracker`] that keeps closed files'
//! findings current with the disk after a workspace scan (a clock of disk changes, the queue of
//! changes not processed yet, and which files have findings published).
//!
//! Nothing here knows the protocol: `lsp::security` turns the [`FileReport`]s into diagnostics
//! and publishes them, asking the tracker, under its own lock, whether a result may still be
//! published.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use super::SecuritySettings;
use super::walk::{self, FileReport};

/// Why a workspace scan stopped before its last file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The client cancelled its progress.
    Cancelled,
    /// A new scan replaced it.
    Superseded,
}

/// Set once, by the first reason to stop; read before every file.
#[derive(Debug, Default)]
pub struct StopFlag(AtomicU8);

impl StopFlag {
    /// Stops the scan for `why`, unless it was stopped already (the first reason is kept).
    pub fn stop(&self, why: Stop) {
        let value = match why {
            Stop::Cancelled => 1,
            Stop::Superseded => 2,
        };
        let _ = self
            .0
            .compare_exchange(0, value, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Why the scan was stopped, if it was.
    pub fn stopped(&self) -> Option<Stop> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(Stop::Cancelled),
            2 => Some(Stop::Superseded),
            _ => None,
        }
    }
}

/// What happened to a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskChange {
    /// Created or changed.
    Written,
    /// Deleted.
    Deleted,
}

/// A queued disk change: the file, its count on the disk-change clock, and what happened.
pub type QueuedChange = (PathBuf, u64, DiskChange);

/// Closed files' findings, kept current with the disk once a workspace scan asked for them.
///
/// A clock counts disk changes; a result read for a file as of some count is published only if
/// the file has not changed since (the refresh of that later change publishes instead). Changes
/// wait in a queue, one entry per file (the latest change wins), and one refresher at a time
/// drains it, so results for the same file are published in the order of its changes.
#[derive(Debug, Default)]
pub struct DiskTracker {
    /// Set when the first workspace scan starts; before that, closed files get no diagnostics.
    active: bool,
    /// Closed files whose findings were published from their disk text.
    published: HashSet<PathBuf>,
    /// Counts disk changes; `changed_at` holds each path's count at its latest change.
    clock: u64,
    changed_at: HashMap<PathBuf, u64>,
    /// Changes not processed yet, with their count (the order they are processed in).
    pending: HashMap<PathBuf, (u64, DiskChange)>,
    /// Whether a refresher is processing `pending`.
    refreshing: bool,
}

impl DiskTracker {
    /// From now on closed files get findings from their disk text, and disk changes are queued
    /// (called when a workspace scan starts).
    pub fn activate(&mut self) {
        self.active = true;
    }

    /// The current count of the disk-change clock: results read after this point for a file
    /// that changes later are superseded by the refresh that change triggers.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Queues disk changes, each with the next count of the clock. Nothing is queued before the
    /// first workspace scan. Returns whether the caller must start a refresher (none is running).
    pub fn queue(&mut self, changes: Vec<(PathBuf, DiskChange)>) -> bool {
        if !self.active || changes.is_empty() {
            return false;
        }
        for (path, change) in changes {
            self.clock += 1;
            self.changed_at.insert(path.clone(), self.clock);
            self.pending.insert(path, (self.clock, change));
        }
        !std::mem::replace(&mut self.refreshing, true)
    }

    /// The refresher's next batch: every queued change, in the order of the clock. `None` when
    /// the queue is empty, and the refresher is then done (the next [`queue`](Self::queue)
    /// starts a new one).
    pub fn next_batch(&mut self) -> Option<Vec<QueuedChange>> {
        if self.pending.is_empty() {
            self.refreshing = false;
            return None;
        }
        let mut batch: Vec<QueuedChange> = self
            .pending
            .drain()
            .map(|(path, (clock, change))| (path, clock, change))
            .collect();
        batch.sort_by_key(|(_, clock, _)| *clock);
        Some(batch)
    }

    /// The refresher ended without draining the queue (it panicked): the next change starts a
    /// new one instead of waiting for ever.
    pub fn refresher_ended(&mut self) {
        self.refreshing = false;
    }

    /// Whether a result for `path` read as of `clock` may be published: not when the file
    /// changed on disk after it.
    pub fn may_publish(&self, path: &Path, clock: u64) -> bool {
        self.changed_at.get(path).is_none_or(|at| *at <= clock)
    }

    /// Records that findings were published for `path` from its disk text.
    pub fn mark_published(&mut self, path: &Path) {
        self.published.insert(path.to_path_buf());
    }

    /// Records that `path` has no findings from disk any more; returns whether some were
    /// published (and so must be cleared).
    pub fn mark_cleared(&mut self, path: &Path) -> bool {
        self.published.remove(path)
    }
}

/// Re-reads the files of a batch of disk changes: a written file that the workspace scan would
/// scan (a source file, not ignored, not excluded) gets its new report; anything else gets
/// `None`, which clears what was published for it.
pub fn rescan_from_disk(
    root: Option<&Path>,
    batch: Vec<QueuedChange>,
    settings: &SecuritySettings,
) -> Vec<(PathBuf, u64, Option<FileReport>)> {
    // The workspace filter is the one definition of "a file the workspace scan covers"
    // (`.gitignore`, `.ignore`, built-in folders, `security.exclude`); each changed file is
    // checked against it on its own, without walking the workspace.
    let filter = match root {
        Some(root) => match walk::filter(root, settings) {
            Ok(filter) => Some(filter),
            Err(err) => {
                tracing::warn!("refreshing changed files: {err:#}");
                None
            }
        },
        None => None,
    };
    let covered = |path: &Path| filter.as_ref().is_some_and(|f| walk::covers(f, path));
    batch
        .into_iter()
        .map(|(path, clock, change)| {
            let report = (change == DiskChange::Written && covered(&path))
                .then(|| walk::scan_file(&path, settings))
                .and_then(|result| {
                    result
                        .map_err(|note| tracing::debug!("{}: {note}", path.display()))
                        .ok()
                });
            (path, clock, report)
        })
        .collect()
}

/// Scans `files` on `workers` threads, checking `stop` before every file, and hands each
/// result to `on_file` as soon as it is ready. `prepared` holds the files read and their
/// crates' summaries ([`walk::Prepared::new`] of the same `files`), so a file follows calls
/// into its crate's other files and is parsed once. Returns how many files were scanned.
pub fn scan_files_until_stopped(
    files: &[PathBuf],
    settings: &SecuritySettings,
    prepared: &walk::Prepared,
    stop: &StopFlag,
    workers: usize,
    on_file: &(dyn Fn((PathBuf, Result<FileReport, String>)) + Sync),
) -> usize {
    let jobs: Vec<usize> = (0..files.len()).collect();
    crate::workspace::par_map(
        &jobs,
        workers,
        &|| stop.stopped().is_some(),
        || (),
        |_, &i| prepared.scan(i, &files[i], settings),
        |i, result| on_file((files[i].clone(), result)),
    )
}

/// What a workspace scan reports as it goes.
#[derive(Debug)]
pub enum ScanEvent {
    /// The files to scan are listed; `skipped` were left out by the walk (its notes are in
    /// the log).
    Listed {
        /// Files to scan.
        total: usize,
        /// Files the walk left out.
        skipped: usize,
    },
    /// The files could not be listed, and why: nothing is scanned.
    Unlisted(String),
    /// One file's result (`Err`: why it was not scanned).
    File(PathBuf, Result<FileReport, String>),
}

/// The workspace scan of `root` (`conductor.scanWorkspace`), blocking: lists its source
/// files, builds its crates' summaries (each file's view of them goes to `views` before the
/// first file is scanned, so live scans of open documents follow the same calls), and scans
/// every file on every core until `stop`, reporting each to `report` as soon as it is done.
pub fn scan_workspace(
    root: &Path,
    settings: &SecuritySettings,
    stop: &StopFlag,
    views: &dyn Fn(HashMap<PathBuf, super::CrateView>),
    report: &(dyn Fn(ScanEvent) + Sync),
) {
    let files = match walk::source_files(&[root.to_path_buf()], settings) {
        Ok((files, notes)) => {
            for note in &notes {
                tracing::info!("workspace scan: {}: {}", note.path.display(), note.message);
            }
            report(ScanEvent::Listed {
                total: files.len(),
                skipped: notes.len(),
            });
            files
        }
        Err(err) => {
            report(ScanEvent::Unlisted(format!("{err:#}")));
            return;
        }
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let prepared = walk::Prepared::new(&files, settings, workers);
    views(prepared.views(&files));
    scan_files_until_stopped(&files, settings, &prepared, stop, workers, &|(
        path,
        result,
    )| {
        report(ScanEvent::File(path, result))
    });
}

/// The line a workspace scan ends with: what it found in how many files, how many it
/// skipped, and, when it stopped early, why and how far it got.
pub fn scan_summary(
    findings: usize,
    total: usize,
    done: usize,
    skipped: usize,
    stopped: Option<Stop>,
) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let found = plural(findings, "finding");
    let files = plural(total, "file");
    let skipped = if skipped > 0 {
        format!(", {} skipped (see the log)", plural(skipped, "file"))
    } else {
        String::new()
    };
    match stopped {
        None => format!("{found} in {files}{skipped}"),
        Some(Stop::Cancelled) => format!("cancelled after {done} of {files} ({found} published)"),
        Some(Stop::Superseded) => {
            format!("cancelled by a new scan after {done} of {files} ({found} published)")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    const TLS: &str = "fn client() -> reqwest::Client {\n    reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap()\n}\n";

    fn workspace(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        (dir, root)
    }

    #[test]
    fn the_scan_stops_between_two_files() {
        let names: Vec<String> = (0..10).map(|i| format!("src/f{i}.rs")).collect();
        let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), TLS)).collect();
        let (_dir, root) = workspace(&files);
        let paths: Vec<PathBuf> = names.iter().map(|n| root.join(n)).collect();
        let settings = SecuritySettings::default();
        let prepare = || walk::Prepared::new(&paths, &settings, 2);

        // One worker, stopped by the third result: exactly three files are scanned.
        let stop = StopFlag::default();
        let seen = Mutex::new(Vec::new());
        let scanned =
            scan_files_until_stopped(&paths, &settings, &prepare(), &stop, 1, &|(
                path,
                result,
            )| {
                let mut seen = seen.lock().expect("seen");
                assert_eq!(result.expect("scanned").findings.len(), 1);
                seen.push(path);
                if seen.len() == 3 {
                    stop.stop(Stop::Cancelled);
                }
            });
        assert_eq!(scanned, 3);
        assert_eq!(seen.into_inner().expect("seen"), paths[..3].to_vec());
        assert_eq!(stop.stopped(), Some(Stop::Cancelled));

        // Stopped before it starts: nothing is read.
        let scanned = scan_files_until_stopped(&paths, &settings, &prepare(), &stop, 2, &|_| {
            panic!("no file is scanned after the stop")
        });
        assert_eq!(scanned, 0);

        // Not stopped: every file, on several workers.
        let count = AtomicUsize::new(0);
        let scanned = scan_files_until_stopped(
            &paths,
            &settings,
            &prepare(),
            &StopFlag::default(),
            2,
            &|_| {
                count.fetch_add(1, Ordering::SeqCst);
            },
        );
        assert_eq!((scanned, count.into_inner()), (10, 10));
    }

    #[test]
    fn the_first_reason_to_stop_is_kept() {
        let flag = StopFlag::default();
        assert_eq!(flag.stopped(), None);
        flag.stop(Stop::Superseded);
        flag.stop(Stop::Cancelled);
        assert_eq!(flag.stopped(), Some(Stop::Superseded));
    }

    #[test]
    fn disk_changes_are_rescanned_only_for_files_the_workspace_scan_covers() {
        let (_dir, root) = workspace(&[
            ("src/lib.rs", TLS),
            ("src/clean.rs", "pub fn ok() {}\n"),
            ("generated/x.rs", TLS),
            ("ignored/y.rs", TLS),
            (".gitignore", "ignored/\n"),
        ]);
        let settings = SecuritySettings {
            exclude: vec!["target/".into(), "generated/".into()],
            ..SecuritySettings::default()
        };
        let batch = vec![
            (root.join("src/lib.rs"), 1, DiskChange::Written),
            (root.join("src/clean.rs"), 2, DiskChange::Written),
            (root.join("generated/x.rs"), 3, DiskChange::Written),
            (root.join("ignored/y.rs"), 4, DiskChange::Written),
            (root.join("src/gone.rs"), 5, DiskChange::Written),
            (root.join("src/lib.rs"), 6, DiskChange::Deleted),
        ];
        let outcomes = rescan_from_disk(Some(&root), batch, &settings);
        let summary: Vec<(String, u64, Option<usize>)> = outcomes
            .iter()
            .map(|(path, clock, report)| {
                (
                    path.strip_prefix(&root)
                        .expect("under root")
                        .display()
                        .to_string(),
                    *clock,
                    report.as_ref().map(|r| r.findings.len()),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("src/lib.rs".into(), 1, Some(1)),
                ("src/clean.rs".into(), 2, Some(0)),
                ("generated/x.rs".into(), 3, None),
                ("ignored/y.rs".into(), 4, None),
                ("src/gone.rs".into(), 5, None),
                ("src/lib.rs".into(), 6, None),
            ]
        );
        // Without a workspace folder nothing is covered.
        let outcomes = rescan_from_disk(
            None,
            vec![(root.join("src/lib.rs"), 7, DiskChange::Written)],
            &settings,
        );
        assert!(outcomes[0].2.is_none());
    }

    #[test]
    fn disk_changes_queue_only_after_a_scan_and_start_one_refresher() {
        let a = PathBuf::from("/ws/a.rs");
        let b = PathBuf::from("/ws/b.rs");
        let mut disk = DiskTracker::default();
        // Before the first workspace scan nothing is queued, and nothing needs a refresher.
        assert!(!disk.queue(vec![(a.clone(), DiskChange::Written)]));
        assert_eq!((disk.clock(), disk.next_batch()), (0, None));

        disk.activate();
        assert!(!disk.queue(Vec::new()), "no change, no refresher");
        assert!(disk.queue(vec![(a.clone(), DiskChange::Written)]));
        // A refresher is running: more changes join its queue.
        assert!(!disk.queue(vec![
            (b.clone(), DiskChange::Written),
            (a.clone(), DiskChange::Deleted),
        ]));
        assert_eq!(disk.clock(), 3);
        // One entry per file, its latest change, in the order of the clock.
        assert_eq!(
            disk.next_batch(),
            Some(vec![
                (b.clone(), 2, DiskChange::Written),
                (a.clone(), 3, DiskChange::Deleted),
            ])
        );
        // The queue is drained: the refresher ends, and the next change starts a new one.
        assert_eq!(disk.next_batch(), None);
        assert!(disk.queue(vec![(b.clone(), DiskChange::Deleted)]));
        // A refresher that dies leaves the way open too.
        disk.refresher_ended();
        assert!(disk.queue(vec![(a.clone(), DiskChange::Written)]));
    }

    #[test]
    fn a_result_older_than_the_files_latest_change_is_not_published() {
        let a = PathBuf::from("/ws/a.rs");
        let b = PathBuf::from("/ws/b.rs");
        let mut disk = DiskTracker::default();
        disk.activate();
        let scanned_at = disk.clock();
        disk.queue(vec![(a.clone(), DiskChange::Written)]);
        assert!(
            !disk.may_publish(&a, scanned_at),
            "a changed after the scan read it"
        );
        assert!(
            disk.may_publish(&a, disk.clock()),
            "the refresh's own result"
        );
        assert!(disk.may_publish(&b, scanned_at), "b never changed");

        // Only a file with findings published needs clearing.
        assert!(!disk.mark_cleared(&a));
        disk.mark_published(&a);
        assert!(disk.mark_cleared(&a));
        assert!(!disk.mark_cleared(&a));
    }

    #[test]
    fn a_workspace_scan_lists_hands_over_the_views_then_reports_each_file() {
        let (_dir, root) = workspace(&[
            (
                "Cargo.toml",
                "[package]\nname = \"w\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            ("src/a.rs", TLS),
            ("src/b.rs", "pub fn ok() {}\n"),
        ]);
        let settings = SecuritySettings::default();
        let events = Mutex::new(Vec::new());
        let viewed = AtomicUsize::new(0);
        scan_workspace(
            &root,
            &settings,
            &StopFlag::default(),
            &|views| {
                assert!(
                    events.lock().expect("lock").len() == 1,
                    "the views come after the listing and before any file"
                );
                // Only crates whose files could hold a source are summarised: none here.
                assert!(views.is_empty(), "{:?}", views.keys().collect::<Vec<_>>());
                viewed.fetch_add(1, Ordering::SeqCst);
            },
            &|event| {
                let shown = match event {
                    ScanEvent::Listed { total, skipped } => format!("listed {total} {skipped}"),
                    ScanEvent::Unlisted(why) => format!("unlisted {why}"),
                    ScanEvent::File(path, Ok(report)) => format!(
                        "{} {}",
                        path.file_name().expect("name").to_string_lossy(),
                        report.findings.len()
                    ),
                    ScanEvent::File(path, Err(why)) => format!("{} {why}", path.display()),
                };
                events.lock().expect("lock").push(shown);
            },
        );
        let mut events = events.into_inner().expect("lock");
        assert_eq!(events.remove(0), "listed 2 0");
        events.sort();
        assert_eq!(events, ["a.rs 1", "b.rs 0"]);
        assert_eq!(viewed.load(Ordering::SeqCst), 1, "the views, once");
        assert_eq!(scan_summary(1, 2, 2, 0, None), "1 finding in 2 files");
        assert_eq!(
            scan_summary(0, 5, 2, 1, Some(Stop::Superseded)),
            "cancelled by a new scan after 2 of 5 files (0 findings published)"
        );
    }
}
