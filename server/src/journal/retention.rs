//! Journal retention: `[journal] retention_days` and `max_mb`, and [`enforce`], which deletes
//! the oldest ended runs' journals and folders (`.conductor/runs/<id>.jsonl` and
//! `.conductor/runs/<id>/`) past the age limit or until the runs folder fits the size limit.
//!
//! What it never does: delete a run that has not ended (no `outcome`) unless it is past the
//! age limit *and* its journal has not changed for a day (a run still going writes to it);
//! delete the newest run to make room (the run that just ended is what the user looks at);
//! follow a symbolic link (a linked `.conductor/` or runs folder is left alone, a linked run
//! folder loses only the link, and a link inside a run folder is removed, never its target);
//! touch anything in the runs folder that is not a run's journal or its folder.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{CONDUCTOR_DIR, runs_dir};

/// A day in milliseconds.
const DAY_MS: u64 = 86_400_000;

/// `[journal]`: how long run journals are kept.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct JournalSettings {
    /// Ended runs older than this many days are deleted (0: no age limit).
    pub retention_days: u64,
    /// The most `.conductor/runs/` may hold, in MiB; the oldest ended runs go first (0: no
    /// size limit).
    pub max_mb: u64,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            retention_days: 90,
            max_mb: 200,
        }
    }
}

/// What one enforcement removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Removed {
    /// The runs removed, oldest first.
    pub runs: Vec<RemovedRun>,
    /// Bytes freed.
    pub bytes: u64,
    /// What could not be removed, or was left alone, and why.
    pub warnings: Vec<String>,
}

/// One removed run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemovedRun {
    /// Its id.
    pub id: String,
    /// Why it was removed.
    pub reason: String,
    /// Its journal's and folder's bytes.
    pub bytes: u64,
}

impl Removed {
    /// One line for people, or `None` when nothing was removed.
    pub fn summary(&self) -> Option<String> {
        if self.runs.is_empty() {
            return None;
        }
        let ids: Vec<&str> = self.runs.iter().map(|r| r.id.as_str()).collect();
        Some(format!(
            "journal retention removed {} run(s), {:.1} MiB: {}",
            self.runs.len(),
            self.bytes as f64 / (1024.0 * 1024.0),
            ids.join(", ")
        ))
    }
}

/// A run found in the runs folder.
struct Run {
    id: String,
    journal: PathBuf,
    folder: PathBuf,
    /// When it started (its `run_started`; else the journal's modification time).
    started_ms: u64,
    /// When its journal last changed.
    modified_ms: u64,
    ended: bool,
    bytes: u64,
}

/// Applies `settings` to the runs of the workspace at `root` and returns what was removed.
/// An error is returned only when the runs folder cannot be listed; a run that cannot be
/// removed is a warning of the result.
pub fn enforce(root: &Path, settings: &JournalSettings) -> io::Result<Removed> {
    enforce_at(root, settings, SystemTime::now())
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn enforce_at(root: &Path, settings: &JournalSettings, now: SystemTime) -> io::Result<Removed> {
    let mut removed = Removed::default();
    if settings.retention_days == 0 && settings.max_mb == 0 {
        return Ok(removed);
    }
    let dir = runs_dir(root);
    for folder in [root.join(CONDUCTOR_DIR), dir.clone()] {
        match std::fs::symlink_metadata(&folder) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(removed),
            Err(err) => return Err(err),
            Ok(meta) if !meta.is_dir() => {
                removed.warnings.push(format!(
                    "{}: not a folder (a symbolic link, or a file); journal retention leaves it alone",
                    folder.display()
                ));
                return Ok(removed);
            }
            Ok(_) => {}
        }
    }
    let now_ms = millis(now);
    let mut runs: Vec<Run> = Vec::new();
    let mut total: u64 = 0;
    let mut journals: Vec<(String, PathBuf, std::fs::Metadata)> = Vec::new();
    let mut others: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let path = entry.path();
        // `symlink_metadata`, not `metadata`: a link is measured and judged as a link.
        // An entry removed meanwhile (another process's retention) is simply not there.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        match name.strip_suffix(".jsonl") {
            Some(id) if meta.is_file() && !id.is_empty() => {
                journals.push((id.to_string(), path, meta));
            }
            _ => others.push(path),
        }
    }
    for (id, journal, meta) in journals {
        let folder = dir.join(&id);
        others.retain(|p| p != &folder);
        let modified_ms = meta.modified().map_or(0, millis);
        let (started_ms, ended) = match scan(&journal) {
            Ok((started, ended)) => (started.unwrap_or(modified_ms), ended),
            // Unreadable: it cannot be shown to have ended, so only the age rule for
            // unfinished runs applies.
            Err(_) => (modified_ms, false),
        };
        let bytes = meta.len() + size_of(&folder);
        total += bytes;
        runs.push(Run {
            id,
            journal,
            folder,
            started_ms,
            modified_ms,
            ended,
            bytes,
        });
    }
    total += others.iter().map(|p| size_of(p)).sum::<u64>();
    runs.sort_by(|a, b| a.started_ms.cmp(&b.started_ms).then(a.id.cmp(&b.id)));

    let age_limit = settings.retention_days.saturating_mul(DAY_MS);
    let mut kept: Vec<Run> = Vec::new();
    for run in runs {
        let age = now_ms.saturating_sub(run.started_ms);
        let reason = if settings.retention_days == 0 || age <= age_limit {
            None
        } else if run.ended {
            Some(format!(
                "ended, older than {} day(s)",
                settings.retention_days
            ))
        } else if now_ms.saturating_sub(run.modified_ms) > DAY_MS {
            Some(format!(
                "never finished, older than {} day(s) and unchanged for a day",
                settings.retention_days
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => {
                if remove(&run, &mut removed) {
                    total = total.saturating_sub(run.bytes);
                    removed.bytes += run.bytes;
                    removed.runs.push(RemovedRun {
                        id: run.id,
                        reason,
                        bytes: run.bytes,
                    });
                }
            }
            None => kept.push(run),
        }
    }

    let max_bytes = settings.max_mb.saturating_mul(1024 * 1024);
    if settings.max_mb > 0 && total > max_bytes {
        // The newest run stays whatever its size: it is the one the user just ran.
        let newest = kept.len().saturating_sub(1);
        for run in kept.iter().take(newest) {
            if total <= max_bytes {
                break;
            }
            if !run.ended {
                continue;
            }
            if remove(run, &mut removed) {
                total = total.saturating_sub(run.bytes);
                removed.bytes += run.bytes;
                removed.runs.push(RemovedRun {
                    id: run.id.clone(),
                    reason: format!("the runs folder was over its {} MiB limit", settings.max_mb),
                    bytes: run.bytes,
                });
            }
        }
        if total > max_bytes {
            removed.warnings.push(format!(
                "{}: {:.1} MiB after retention, over the {} MiB limit (`journal.max_mb`): what is left is the newest run, runs that have not ended, and files that are not runs",
                dir.display(),
                total as f64 / (1024.0 * 1024.0),
                settings.max_mb
            ));
        }
    }
    Ok(removed)
}

/// What retention needs of a journal line: when, and which event.
#[derive(Deserialize)]
struct Mark {
    at_ms: u64,
    event: String,
}

/// When the journal at `path` started and whether it ended. Each line is read only for its
/// time and event name (the rest is skipped unparsed into values): every `conductor runs`
/// scans every journal, and thousands of runs must stay quick.
fn scan(path: &Path) -> io::Result<(Option<u64>, bool)> {
    let bytes = crate::util::read_regular_file(path, super::MAX_JOURNAL_BYTES)?;
    let mut started = None;
    let mut ended = false;
    for line in bytes.split(|b| *b == b'\n') {
        // A torn or unknown line is skipped, as the reader skips it.
        let Ok(mark) = serde_json::from_slice::<Mark>(line) else {
            continue;
        };
        match mark.event.as_str() {
            "run_started" if started.is_none() => started = Some(mark.at_ms),
            "outcome" => ended = true,
            _ => {}
        }
    }
    Ok((started, ended))
}

/// Removes a run's journal and its folder; says why not in a warning.
fn remove(run: &Run, removed: &mut Removed) -> bool {
    if let Err(err) = std::fs::remove_file(&run.journal) {
        removed.warnings.push(format!(
            "{}: cannot remove the journal: {err}",
            run.journal.display()
        ));
        return false;
    }
    let result = match std::fs::symlink_metadata(&run.folder) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
        // `remove_dir_all` removes links inside the folder without following them.
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&run.folder),
        // A link (or a file) named like the run: only the entry itself goes.
        Ok(_) => std::fs::remove_file(&run.folder),
    };
    if let Err(err) = result {
        removed.warnings.push(format!(
            "{}: the journal was removed but not the run's folder: {err}",
            run.folder.display()
        ));
    }
    true
}

/// The bytes under `path`, links counted as links and never followed; 0 for what does not
/// exist.
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| size_of(&e.path()))
        .sum()
}

/// How long ago `t` was, for tests that age a file.
#[cfg(test)]
fn ago(now: SystemTime, days: u64) -> SystemTime {
    now.checked_sub(std::time::Duration::from_millis(days * DAY_MS))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::journal::{Event, Record, RunState, UsageTotals};

    /// Writes the journal of run `id`, started `days` ago, ended or not, with `folder_bytes`
    /// in its folder; its modification time is `touched` days ago.
    fn run(root: &Path, id: &str, days: u64, ended: bool, folder_bytes: usize, touched: u64) {
        let now = SystemTime::now();
        let dir = runs_dir(root);
        std::fs::create_dir_all(&dir).expect("runs dir");
        let mut events = vec![Event::RunStarted {
            run_id: id.into(),
            kind: "goal".into(),
            goal: "g".into(),
            selection: None,
            config_digest: "d".into(),
            workspace: "/w".into(),
        }];
        if ended {
            events.push(Event::Outcome {
                state: RunState::Done,
                message: String::new(),
                files: Vec::new(),
                usage: UsageTotals::default(),
            });
        }
        let path = dir.join(format!("{id}.jsonl"));
        let mut file = std::fs::File::create(&path).expect("journal");
        for (seq, event) in events.into_iter().enumerate() {
            let record = Record {
                seq: seq as u64,
                at_ms: millis(ago(now, days)),
                event,
            };
            writeln!(file, "{}", serde_json::to_string(&record).expect("json")).expect("write");
        }
        file.set_modified(ago(now, touched)).expect("mtime");
        if folder_bytes > 0 {
            std::fs::create_dir_all(dir.join(id)).expect("folder");
            std::fs::write(dir.join(id).join("plan.md"), vec![b'x'; folder_bytes]).expect("plan");
        }
    }

    fn ids(removed: &Removed) -> Vec<&str> {
        removed.runs.iter().map(|r| r.id.as_str()).collect()
    }

    fn exists(root: &Path, id: &str) -> (bool, bool) {
        let dir = runs_dir(root);
        (
            dir.join(format!("{id}.jsonl")).exists(),
            dir.join(id).exists(),
        )
    }

    #[test]
    fn ended_runs_past_the_age_go_with_their_folders_and_unfinished_ones_only_when_idle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        run(root, "old-done", 100, true, 10, 100);
        run(root, "old-idle", 100, false, 10, 2);
        run(root, "old-busy", 100, false, 10, 0);
        run(root, "young-unended", 1, false, 0, 1);
        run(root, "young-done", 10, true, 10, 10);
        let removed = enforce(root, &JournalSettings::default()).expect("enforce");
        let mut got = ids(&removed);
        got.sort_unstable();
        assert_eq!(got, ["old-done", "old-idle"], "{removed:?}");
        assert_eq!(exists(root, "old-done"), (false, false));
        assert_eq!(exists(root, "old-idle"), (false, false));
        assert_eq!(
            exists(root, "old-busy"),
            (true, true),
            "still being written"
        );
        assert_eq!(exists(root, "young-done"), (true, true));
        assert!(removed.bytes > 20, "{removed:?}");
        assert!(removed.summary().expect("a summary").contains("2 run(s)"));
        // An age limit of 0 is none.
        run(root, "ancient", 5000, true, 0, 5000);
        let off = JournalSettings {
            retention_days: 0,
            max_mb: 0,
        };
        assert!(enforce(root, &off).expect("enforce").runs.is_empty());
    }

    #[test]
    fn over_the_size_limit_the_oldest_ended_runs_go_until_it_fits_but_never_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let mib = 1024 * 1024;
        run(root, "a", 5, true, mib, 5);
        run(root, "b", 4, false, mib, 0);
        run(root, "c", 3, true, mib, 3);
        run(root, "d", 2, true, mib, 2);
        // Room for the journals themselves: what is left after two removals fits.
        run(root, "e", 1, true, 3 * mib - 8192, 1);
        let settings = JournalSettings {
            retention_days: 90,
            max_mb: 5,
        };
        // 7 MiB in all: `a` then `c` go (the unfinished `b` is skipped), leaving 5.
        let removed = enforce(root, &settings).expect("enforce");
        assert_eq!(ids(&removed), ["a", "c"], "{removed:?}");
        assert!(removed.runs[0].reason.contains("5 MiB limit"));
        assert!(removed.warnings.is_empty(), "{:?}", removed.warnings);
        // A limit only the newest run passes: everything ended but it goes, and it stays.
        let tight = JournalSettings {
            retention_days: 90,
            max_mb: 1,
        };
        let removed = enforce(root, &tight).expect("enforce");
        assert_eq!(ids(&removed), ["d"]);
        assert_eq!(exists(root, "e"), (true, true));
        assert_eq!(exists(root, "b"), (true, true));
        assert!(
            removed.warnings[0].contains("journal.max_mb"),
            "{removed:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_never_followed_out_of_the_runs_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        let precious = outside.path().join("precious.txt");
        std::fs::write(&precious, "keep me").expect("write");
        let root = dir.path();
        // A run folder that is a link, and a link inside another run's folder.
        run(root, "linked", 100, true, 0, 100);
        std::os::unix::fs::symlink(outside.path(), runs_dir(root).join("linked")).expect("link");
        run(root, "inner", 100, true, 10, 100);
        std::os::unix::fs::symlink(outside.path(), runs_dir(root).join("inner/out")).expect("link");
        // A journal that is a link to a file outside.
        std::os::unix::fs::symlink(&precious, runs_dir(root).join("fake.jsonl")).expect("link");
        let removed = enforce(root, &JournalSettings::default()).expect("enforce");
        let mut got = ids(&removed);
        got.sort_unstable();
        assert_eq!(got, ["inner", "linked"]);
        assert_eq!(
            std::fs::read_to_string(&precious).expect("still there"),
            "keep me"
        );
        assert!(outside.path().exists());
        assert!(runs_dir(root).join("fake.jsonl").symlink_metadata().is_ok());

        // A runs folder that is itself a link is left alone.
        let other = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(other.path().join(CONDUCTOR_DIR)).expect("mkdir");
        run(outside.path(), "far", 100, true, 0, 100);
        std::os::unix::fs::symlink(
            runs_dir(outside.path()),
            other.path().join(CONDUCTOR_DIR).join("runs"),
        )
        .expect("link");
        let removed = enforce(other.path(), &JournalSettings::default()).expect("enforce");
        assert!(removed.runs.is_empty());
        assert!(
            removed.warnings[0].contains("leaves it alone"),
            "{removed:?}"
        );
        assert!(exists(outside.path(), "far").0);
    }

    #[test]
    fn no_runs_folder_removes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            enforce(dir.path(), &JournalSettings::default()).expect("enforce"),
            Removed::default()
        );
    }

    #[test]
    fn the_journal_table_is_configured_and_bad_values_are_named_by_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(crate::config::CONFIG_FILE),
            "[journal]\nretention_days = 7\nmax_mb = -1\n",
        )
        .expect("write");
        let (config, problems) = crate::config::load_workspace(dir.path());
        assert_eq!(config.journal.retention_days, 7);
        assert_eq!(config.journal.max_mb, 200, "the default stands");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "journal.max_mb");
        std::fs::write(
            dir.path().join(crate::config::CONFIG_FILE),
            "[journal]\nretention_days = \"long\"\nkeep = 1\n",
        )
        .expect("write");
        let (config, problems) = crate::config::load_workspace(dir.path());
        assert_eq!(config.journal, JournalSettings::default());
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"journal.retention_days"), "{problems:?}");
        assert!(keys.contains(&"journal.keep"), "{problems:?}");
    }
}
