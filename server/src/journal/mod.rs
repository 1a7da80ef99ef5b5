//! The run journal: `.conductor/runs/<id>.jsonl`, one typed [`Event`] per line, appended and
//! written out at each event, so a crash mid-run leaves every earlier event readable.
//!
//! Plain data: the orchestrator records, `conductor runs` (and later hovers and `conductor
//! explain`) read. What is recorded is metadata: goals, plans, block outcomes with the hash of
//! the text they were based on, decisions, findings, usage. Never a prompt, never a key; a
//! model request is journalled as its agent, model, latency, usage and how many secrets were
//! redacted from it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::llm::protocol::Plan;
use crate::util::lock;

pub mod retention;
pub mod story;

/// The folder under the workspace root that holds Conductor's own files.
pub const CONDUCTOR_DIR: &str = ".conductor";

/// Where a run is. Terminal states are `done`, `failed` and `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// The planner (or the findings) is turning the goal into steps.
    Planning,
    /// The coder steps are running.
    Coding,
    /// The change is being reviewed.
    Reviewing,
    /// The change is being tested.
    Testing,
    /// Review or test failures went back to the coder.
    Improving,
    /// The change is being shown (or applied).
    Presenting,
    /// Finished with a change (or a plan) to present.
    Done,
    /// Ended without a change that can be presented.
    Failed,
    /// Cancelled by the user; nothing was applied.
    Cancelled,
}

impl RunState {
    /// The name used in the journal and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Planning => "planning",
            RunState::Coding => "coding",
            RunState::Reviewing => "reviewing",
            RunState::Testing => "testing",
            RunState::Improving => "improving",
            RunState::Presenting => "presenting",
            RunState::Done => "done",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Done | RunState::Failed | RunState::Cancelled
        )
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item of a context bundle, as the journal keeps it (its text is not kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// `selection`, `definition`, …
    pub kind: String,
    /// Relative path.
    pub file: String,
    /// Lines, 1-based, inclusive.
    pub lines: [u32; 2],
    /// The symbol, if any.
    pub symbol: Option<String>,
    /// Why it was included.
    pub reason: String,
    /// Its cost in tokens.
    pub tokens: usize,
}

/// Tokens and cost, totals of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// US dollars.
    pub cost_usd: f64,
}

/// What happens in a run, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// Its id.
        run_id: String,
        /// `goal` or `fix`.
        kind: String,
        /// What the developer asked for.
        goal: String,
        /// The file and lines the run was started on, if any (relative path, `A-B`).
        selection: Option<String>,
        /// SHA-256 of the resolved configuration, so two runs can be compared.
        config_digest: String,
        /// The workspace root.
        workspace: String,
    },
    /// The run moved to a new stage.
    Stage {
        /// The stage entered.
        state: RunState,
        /// What it is doing, for people.
        message: String,
    },
    /// The context an agent was given.
    Context {
        /// The step it was for (`None`: the planner's).
        step: Option<String>,
        /// The file the bundle is centred on.
        file: String,
        /// Tokens of the bundle.
        tokens: usize,
        /// The budget.
        budget: usize,
        /// Its items.
        items: Vec<ManifestItem>,
    },
    /// One model request (metadata only).
    ModelRequest {
        /// `planner`, `coder`, …
        agent: String,
        /// The provider's display name.
        provider: String,
        /// The model that answered (or was asked).
        model: String,
        /// The step it was for.
        step: Option<String>,
        /// Milliseconds, retries included.
        latency_ms: u64,
        /// Prompt tokens.
        prompt_tokens: u64,
        /// Completion tokens.
        completion_tokens: u64,
        /// US dollars.
        cost_usd: f64,
        /// Secrets replaced by placeholders in the prompt.
        redacted: usize,
        /// HTTP attempts.
        attempts: u32,
        /// `ok`, or the error.
        outcome: String,
    },
    /// The developer edited a run's plan document; this run follows it.
    PlanEdited {
        /// The run whose plan document was edited.
        from_run: String,
        /// The changes, in words ("step s2 skipped", "steps reordered: s3 before s1 …").
        changes: Vec<String>,
    },
    /// The plan.
    Plan {
        /// `model`, `findings`, `single step` or `edited`.
        source: String,
        /// The plan itself.
        plan: Plan,
    },
    /// One edit block's outcome.
    EditBlock {
        /// The step.
        step: String,
        /// The coder attempt within the step (1, then 2 for the retry; improve rounds count on).
        attempt: u32,
        /// The block's number in its reply, from 1.
        index: usize,
        /// The file.
        file: String,
        /// SHA-256 of the text the block was matched against (`None`: a new file).
        base_hash: Option<String>,
        /// `applied`, `noop` or `refused`.
        status: String,
        /// For an applied block, the new lines `[first, last]`.
        lines: Option<[usize; 2]>,
        /// For a refused block, why (the words the coder was given).
        reason: Option<String>,
    },
    /// Why one applied block was written.
    Decision {
        /// The step.
        step: String,
        /// The block, 1-based in its reply.
        block: usize,
        /// The file.
        file: String,
        /// The agent (`coder`, or `rule` for a mechanical fix).
        agent: String,
        /// The model, or the rule id.
        model: String,
        /// What the change does.
        summary: String,
        /// Why this way.
        rationale: String,
        /// What else was considered.
        alternatives: Vec<String>,
        /// What was traded for what.
        tradeoffs: Vec<String>,
    },
    /// A finding of the review.
    Finding {
        /// Relative path.
        file: String,
        /// 1-based line, in the changed text (in the original for a fixed one).
        line: usize,
        /// The rule (or `model` for a model finding).
        rule_id: String,
        /// Its severity.
        severity: String,
        /// What is wrong.
        message: String,
        /// `new` (the change introduced it), `fixed` (the change removed it) or `remaining`.
        status: String,
    },
    /// A step the run could not do, and why (e.g. a finding with no mechanical fix and no model).
    StepSkipped {
        /// The step.
        step: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Review or test failures sent back to the coder.
    Feedback {
        /// The improve round, from 1.
        round: u32,
        /// What the coder was told.
        summary: String,
    },
    /// One run of the tester (the first, and one per improve round).
    TestRun {
        /// The improve round it tested (0: the coder's first change).
        round: u32,
        /// `passed`, `failed`, `failed_before`, `skipped` or `error`.
        status: String,
        /// The command (from configuration).
        command: Vec<String>,
        /// `bubblewrap`, `unshare` or `none`.
        sandbox: String,
        /// How many tests passed.
        passed: usize,
        /// The tests the change broke.
        failed: Vec<String>,
        /// Tests that already failed before the change.
        failed_before: Vec<String>,
        /// Tests that failed, then passed on a rerun.
        flaky: Vec<String>,
        /// How the change weakens the tests.
        weakened: Vec<String>,
        /// Lines of output dropped because they addressed a model.
        dropped_lines: usize,
        /// Wall time in milliseconds.
        elapsed_ms: u64,
    },
    /// The model review: how many findings it proposed, kept after the refutation check, or
    /// why it was skipped.
    ModelReview {
        /// The improve round (0: the first change).
        round: u32,
        /// `done` or `skipped`.
        status: String,
        /// Findings the model proposed.
        proposed: usize,
        /// Findings that survived the refutation check above the threshold.
        kept: usize,
        /// Why it was skipped, or a summary.
        message: String,
    },
    /// The test stage.
    Tests {
        /// `skipped`, `passed` or `failed`.
        status: String,
        /// What happened, or why it did not run.
        message: String,
    },
    /// A hunk the presenting stage left out: the user changed its lines while the run worked.
    HunkRefused {
        /// `file:first-last: why`.
        reason: String,
    },
    /// A file of the change applied, or refused, by the editor.
    Applied {
        /// Relative path.
        file: String,
        /// `applied`, or why not.
        result: String,
    },
    /// A hunk of the change as the editor applied it: where its text is, what it replaced and
    /// the decision it carries. Hovers, code lenses, revert and `conductor explain` read these;
    /// one per hunk, recorded once the editor has applied the file.
    Anchored {
        /// The hunk's number in the run, from 1 (a decision's id is `<run id>#<hunk>`).
        hunk: usize,
        /// Relative path.
        file: String,
        /// 1-based inclusive lines the hunk's text occupies after the change; for a hunk that
        /// only removed lines, `[l, l - 1]`: the empty place before line `l`.
        lines: [usize; 2],
        /// SHA-256 of the hunk's text after the change (the anchor is re-found by it).
        hash: String,
        /// The text the hunk wrote (re-applied after a revert).
        written: String,
        /// The text it replaced (restored by a revert).
        original: String,
        /// SHA-256 of the whole file after the change: while the file still hashes the same,
        /// every anchor in it is exactly where the journal says.
        file_hash: String,
        /// Up to three lines before the hunk's text after the change, and after it: a text too
        /// plain to find alone (`}`) is found again between them.
        #[serde(default)]
        context_before: String,
        /// The lines after it.
        #[serde(default)]
        context_after: String,
        /// The plan step of the decision it carries, when a block wrote it.
        step: Option<String>,
        /// The block of that step.
        block: Option<usize>,
        /// One line for lenses: the decision's summary (or the run's goal).
        summary: String,
    },
    /// The developer marked decisions reviewed, or took the mark back.
    Reviewed {
        /// The hunks (see [`Event::Anchored`]).
        hunks: Vec<usize>,
        /// `true`: reviewed; `false`: the mark was taken back.
        reviewed: bool,
        /// Where it was done (`editor`, `cli`).
        by: String,
    },
    /// The developer reverted decisions (the text they replaced restored), or re-applied
    /// reverted ones.
    Reverted {
        /// The hunks.
        hunks: Vec<usize>,
        /// `revert` or `reapply`.
        action: String,
        /// `applied`, or why not.
        result: String,
    },
    /// An explanation of existing code (a run of kind `explain`): what it covers and where the
    /// document is.
    Explanation {
        /// Relative path of the explained file.
        file: String,
        /// 1-based inclusive lines explained.
        lines: [usize; 2],
        /// The explanation in a sentence.
        summary: String,
        /// The document, relative to the workspace root (`.conductor/explanations/<name>.md`).
        document: String,
    },
    /// The run ended.
    Outcome {
        /// `done`, `failed` or `cancelled`.
        state: RunState,
        /// The message for the user.
        message: String,
        /// The files the change touches.
        files: Vec<String>,
        /// Tokens and cost.
        usage: UsageTotals,
    },
}

/// One line of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Its position, from 0.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// An open journal, appended to by one run.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    seq: AtomicU64,
    failures: AtomicU64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The folder of the run journals under `root`.
pub fn runs_dir(root: &Path) -> PathBuf {
    root.join(CONDUCTOR_DIR).join("runs")
}

/// Creates `.conductor/` (with a `.gitignore` of its own, so journals are never committed by
/// accident) and `.conductor/runs/`.
fn ensure_dirs(root: &Path) -> io::Result<PathBuf> {
    let dir = root.join(CONDUCTOR_DIR);
    std::fs::create_dir_all(dir.join("runs"))?;
    let ignore = dir.join(".gitignore");
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&ignore)
    {
        Ok(mut file) => file.write_all(
            b"# Conductor's run journals and scratch files; not for version control.\n*\n",
        )?,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    Ok(dir.join("runs"))
}

impl Journal {
    /// Creates the journal of run `id` under `root`. Fails if it exists: run ids are unique.
    pub fn create(root: &Path, id: &str) -> io::Result<Journal> {
        let dir = ensure_dirs(root)?;
        let path = dir.join(format!("{id}.jsonl"));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
            seq: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// Opens the existing journal at `path` to append to it (a review mark or a revert after
    /// the run ended); numbering goes on after its last readable record.
    pub fn append_to(path: &Path) -> io::Result<Journal> {
        let next = read(path)?
            .records
            .iter()
            .map(|r| r.seq + 1)
            .max()
            .unwrap_or(0);
        let file = OpenOptions::new().append(true).open(path)?;
        // A line torn by a crash must not swallow the next event: start on a fresh line.
        let len = file.metadata()?.len();
        let journal = Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            seq: AtomicU64::new(next),
            failures: AtomicU64::new(0),
        };
        if len > 0 {
            let mut last = [0u8; 1];
            let mut reader = File::open(path)?;
            reader.seek(SeekFrom::Start(len - 1))?;
            reader.read_exact(&mut last)?;
            if last[0] != b'\n' {
                lock(&journal.file).write_all(b"\n")?;
            }
        }
        Ok(journal)
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` as one line, written out before this returns. A failed write is logged
    /// and counted (see [`Journal::failures`]); the run goes on, since losing the journal must
    /// not lose the user's change.
    pub fn record(&self, event: Event) {
        let record = Record {
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            at_ms: now_ms(),
            event,
        };
        let mut line = match serde_json::to_string(&record) {
            Ok(line) => line,
            Err(err) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(journal = %self.path.display(), "cannot serialise a journal event: {err}");
                return;
            }
        };
        line.push('\n');
        // One `write_all` of the whole line under the lock: lines never interleave, and the
        // file is unbuffered, so the line is with the OS when this returns.
        let mut file = lock(&self.file);
        if let Err(err) = file.write_all(line.as_bytes()) {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(journal = %self.path.display(), "cannot append to the run journal: {err}");
        }
    }

    /// How many events could not be written.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Writes the plan for people to read, beside the journal: `.conductor/runs/<id>/plan.md`.
    pub fn write_plan(&self, markdown: &str) -> io::Result<PathBuf> {
        self.write_beside("plan.md", markdown)
    }

    /// Writes `name` into the run's folder beside the journal (`.conductor/runs/<id>/<name>`):
    /// the plan, the change's diff.
    pub fn write_beside(&self, name: &str, markdown: &str) -> io::Result<PathBuf> {
        let dir = self.path.with_extension("");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(name);
        // A copy for people of what the journal records: a plain write, not the synced atomic
        // one that the user's files get (a sync costs tens of milliseconds on a busy disk, and
        // a torn plan.md loses nothing the journal does not have).
        std::fs::write(&path, markdown)?;
        Ok(path)
    }
}

/// A journal as read back: its records, and a warning per line that could not be read (a line
/// cut off by a crash mid-write, or one from a newer Conductor).
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// The records, in file order.
    pub records: Vec<Record>,
    /// One per skipped line, naming the line.
    pub warnings: Vec<String>,
}

/// Reads the journal at `path`.
pub fn read(path: &Path) -> io::Result<Read> {
    let bytes = crate::util::read_regular_file(path, MAX_JOURNAL_BYTES)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Read::default();
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(record) => out.records.push(record),
            Err(err) => {
                let what = if i == last && !text.ends_with('\n') {
                    "is cut off (the run probably ended mid-write); it is skipped"
                } else {
                    "cannot be read; it is skipped"
                };
                out.warnings.push(format!(
                    "{}:{}: the event {what} ({err})",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    Ok(out)
}

/// The largest journal read: far beyond any real run, small enough to never exhaust memory.
const MAX_JOURNAL_BYTES: u64 = 256 * 1024 * 1024;

/// One run, as `conductor runs` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Its id.
    pub id: String,
    /// Its last known state (a run that never recorded an outcome shows its last stage).
    pub state: RunState,
    /// `goal` or `fix`.
    pub kind: String,
    /// The goal.
    pub goal: String,
    /// When it started, milliseconds since the epoch.
    pub started_ms: u64,
    /// The files its change touches.
    pub files: Vec<String>,
    /// What it cost.
    pub usage: UsageTotals,
    /// Its journal.
    pub journal: PathBuf,
    /// Its decisions (anchored hunks; see [`story::ReviewState`]).
    pub decisions: usize,
    /// Those marked reviewed (the latest mark per hunk).
    pub reviewed: usize,
    /// Lines of its journal that could not be read.
    pub warnings: Vec<String>,
}

/// The summary of one journal's records.
pub fn summarize(path: &Path, read: &Read) -> Option<RunSummary> {
    let mut summary: Option<RunSummary> = None;
    let mut requests = UsageTotals::default();
    let mut files: Vec<String> = Vec::new();
    for record in &read.records {
        match &record.event {
            Event::RunStarted {
                run_id, kind, goal, ..
            } => {
                summary = Some(RunSummary {
                    id: run_id.clone(),
                    state: RunState::Planning,
                    kind: kind.clone(),
                    goal: goal.clone(),
                    started_ms: record.at_ms,
                    files: Vec::new(),
                    usage: UsageTotals::default(),
                    journal: path.to_path_buf(),
                    decisions: 0,
                    reviewed: 0,
                    warnings: read.warnings.clone(),
                })
            }
            Event::Stage { state, .. } => {
                if let Some(s) = summary.as_mut() {
                    s.state = *state;
                }
            }
            Event::ModelRequest {
                prompt_tokens,
                completion_tokens,
                cost_usd,
                ..
            } => {
                requests.prompt_tokens += prompt_tokens;
                requests.completion_tokens += completion_tokens;
                requests.cost_usd += cost_usd;
            }
            Event::EditBlock { file, status, .. }
                if status == "applied" && !files.contains(file) =>
            {
                files.push(file.clone());
            }
            Event::Outcome {
                state,
                files: changed,
                usage,
                ..
            } => {
                if let Some(s) = summary.as_mut() {
                    s.state = *state;
                    s.files = changed.clone();
                    s.usage = *usage;
                }
            }
            _ => {}
        }
    }
    let mut summary = summary?;
    let review = story::review_state(&read.records);
    summary.decisions = review.decisions;
    summary.reviewed = review.reviewed;
    if !summary.state.is_terminal() {
        // No outcome: the run is still going, or the process ended mid-run.
        summary.files = files;
        summary.usage = requests;
    }
    Some(summary)
}

/// Every run journalled under `root`, newest first, and a warning per journal that could not
/// be read at all.
pub fn list(root: &Path) -> io::Result<(Vec<RunSummary>, Vec<String>)> {
    let dir = runs_dir(root);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(err) => return Err(err),
    };
    let mut runs = Vec::new();
    let mut warnings = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        match read(&path) {
            Ok(journal) => match summarize(&path, &journal) {
                Some(summary) => runs.push(summary),
                None => warnings.push(format!(
                    "{}: no run_started event; not a run journal",
                    path.display()
                )),
            },
            Err(err) => warnings.push(format!("{}: {err}", path.display())),
        }
    }
    runs.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then(b.id.cmp(&a.id)));
    Ok((runs, warnings))
}

/// A new run id: the UTC start time (so ids sort by time) and a process-unique suffix.
pub fn new_run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let ms = now_ms();
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // The pid and a counter keep ids unique across processes and within one.
    let tag = (u64::from(std::process::id()) << 16 ^ (ms % 1000) << 8 ^ n) & 0xff_ffff;
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{tag:06x}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `2026-12-01 18:03 UTC` for a time in milliseconds since the epoch.
pub fn utc_minute(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(id: &str) -> Event {
        Event::RunStarted {
            run_id: id.into(),
            kind: "goal".into(),
            goal: "add retries".into(),
            selection: None,
            config_digest: "d".into(),
            workspace: "/w".into(),
        }
    }

    #[test]
    fn a_journal_reads_back_and_a_torn_last_line_is_skipped_with_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "r1").expect("create");
        journal.record(started("r1"));
        journal.record(Event::Stage {
            state: RunState::Coding,
            message: "step s1".into(),
        });
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".conductor/.gitignore"))
                .expect("gitignore")
                .lines()
                .last(),
            Some("*")
        );
        // A crash mid-write: half of a third line.
        let mut file = OpenOptions::new()
            .append(true)
            .open(journal.path())
            .expect("open");
        file.write_all(br#"{"seq":2,"at_ms":1,"event":"stage","sta"#)
            .expect("write");
        let read = read(journal.path()).expect("read");
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.records[1].seq, 1);
        assert_eq!(read.warnings.len(), 1);
        assert!(
            read.warnings[0].contains(":3: the event is cut off"),
            "{:?}",
            read.warnings
        );
        let summary = summarize(journal.path(), &read).expect("summary");
        assert_eq!(summary.state, RunState::Coding);
        assert_eq!(summary.goal, "add retries");
    }

    #[test]
    fn runs_are_listed_newest_first_with_their_outcome() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (id, state) in [("a", RunState::Done), ("b", RunState::Failed)] {
            let journal = Journal::create(dir.path(), id).expect("create");
            journal.record(started(id));
            journal.record(Event::Outcome {
                state,
                message: String::new(),
                files: vec!["src/lib.rs".into()],
                usage: UsageTotals {
                    prompt_tokens: 10,
                    completion_tokens: 5,
                    cost_usd: 0.25,
                },
            });
        }
        assert!(Journal::create(dir.path(), "a").is_err(), "ids are unique");
        let (runs, warnings) = list(dir.path()).expect("list");
        assert!(warnings.is_empty(), "{warnings:?}");
        let states: Vec<(&str, RunState)> = runs.iter().map(|r| (r.id.as_str(), r.state)).collect();
        assert_eq!(states.len(), 2);
        assert!(
            states.contains(&("a", RunState::Done)) && states.contains(&("b", RunState::Failed))
        );
        assert!(
            runs.iter()
                .all(|r| r.usage.cost_usd == 0.25 && r.files == ["src/lib.rs"])
        );
    }

    #[test]
    fn appending_to_an_ended_run_numbers_on_and_starts_after_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "r1").expect("create");
        journal.record(started("r1"));
        let path = journal.path().to_path_buf();
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(br#"{"seq":1,"at_ms":1,"event":"sta"#)
            .expect("write");
        let journal = Journal::append_to(&path).expect("append");
        journal.record(Event::Reviewed {
            hunks: vec![1],
            reviewed: true,
            by: "editor".into(),
        });
        let read = read(&path).expect("read");
        assert_eq!(read.records.len(), 2, "{:?}", read.warnings);
        assert_eq!(read.records[1].seq, 1);
        assert!(matches!(
            read.records[1].event,
            Event::Reviewed { reviewed: true, .. }
        ));
        assert_eq!(read.warnings.len(), 1, "the torn line alone is skipped");
    }

    #[test]
    fn run_ids_sort_by_time_and_do_not_repeat() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), "20261201-123456-abcdef".len(), "{a}");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(utc_minute(1_796_150_580_000), "2026-12-01 18:43 UTC");
    }
}
