//! Decisions: every hunk a run applied, anchored where its text is, with why it was written.
//!
//! Plain data, no LSP. The [`Index`] reads the run journals under `.conductor/runs/` once and
//! then only the journals that changed (a new run, a review mark, a revert), so a hover or a
//! code lens never rescans the journal. A decision is one `Anchored` event joined with the
//! `Decision` behind it (by step, block and file), the run's review findings on its lines, its
//! tests and usage, and the latest review mark and revert of it. Where its text is now is
//! decided by [`locate`]: in an open document by the document's marks (which follow every
//! edit, see `document::marks`), in a file on disk by the recorded text's hash.

pub mod actions;
pub mod live;
pub mod locate;
pub mod render;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::journal::{self, Event, RunState, UsageTotals};

pub use locate::locate;
pub use render::explain_line;

/// `[decisions]`: what the editor shows of runs' decisions.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct DecisionSettings {
    /// Hovers on code a run wrote show its decision.
    pub hover: bool,
    /// Code lenses over the regions runs changed (review state, mark reviewed, revert).
    pub lenses: bool,
}

impl Default for DecisionSettings {
    fn default() -> Self {
        Self {
            hover: true,
            lenses: true,
        }
    }
}

/// A run's tests, as its last test run left them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TestFacts {
    /// `passed`, `failed`, `failed_before`, `skipped`, `error`.
    pub status: String,
    /// Tests that passed.
    pub passed: usize,
    /// Tests the change broke.
    pub failed: Vec<String>,
    /// Tests that failed before the change too.
    pub failed_before: Vec<String>,
    /// Flaky tests.
    pub flaky: Vec<String>,
    /// The sandbox the tests ran in.
    pub sandbox: String,
    /// Why the tests did not run, or what happened, when there was no test run.
    pub message: String,
}

impl TestFacts {
    /// `tests 14/14`, `tests 12/14`, `tests skipped`.
    pub fn short(&self) -> String {
        match self.status.as_str() {
            "passed" | "failed" | "failed_before" => {
                let total = self.passed + self.failed.len() + self.failed_before.len();
                format!("tests {}/{}", self.passed, total)
            }
            "" => "tests not run".to_string(),
            other => format!("tests {other}"),
        }
    }
}

/// A new finding of a run's (last) review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingFacts {
    /// Relative path.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The rule, or `model`.
    pub rule_id: String,
    /// Its severity.
    pub severity: String,
    /// What is wrong.
    pub message: String,
}

/// What a run contributes to each of its decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunFacts {
    /// Its id.
    pub id: String,
    /// `goal`, `fix` or `explain`.
    pub kind: String,
    /// The goal.
    pub goal: String,
    /// Its last known state.
    pub state: RunState,
    /// Start, milliseconds since the epoch.
    pub started_ms: u64,
    /// Its journal.
    pub journal: PathBuf,
    /// Its plan document, when it has one.
    pub plan_file: Option<PathBuf>,
    /// The plan's summary and risks.
    pub plan_summary: String,
    /// What the plan said could go wrong.
    pub risks: Vec<String>,
    /// Tokens and cost of the whole run.
    pub usage: UsageTotals,
    /// Its tests.
    pub tests: TestFacts,
    /// The new findings of its last review round.
    pub findings: Vec<FindingFacts>,
    /// The model review's verdict, in words (`done: 2 proposed, 0 kept`, or why skipped).
    pub model_review: String,
    /// For an explanation: its summary and document (relative to the root).
    pub explanation: Option<(String, String)>,
    /// Lines of the journal that could not be read.
    pub warnings: Vec<String>,
}

/// One anchored decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The key marks and requests know it by (stable for the life of the index).
    pub key: u64,
    /// Its run.
    pub run: String,
    /// Its hunk in the run, from 1.
    pub hunk: usize,
    /// Relative path.
    pub file: String,
    /// 1-based inclusive lines right after the run applied it.
    pub lines: [usize; 2],
    /// SHA-256 of the text it wrote.
    pub hash: String,
    /// The text it wrote.
    pub written: String,
    /// The text it replaced.
    pub original: String,
    /// SHA-256 of the file right after the run.
    pub file_hash: String,
    /// Up to three lines before it, right after the run.
    pub context_before: String,
    /// Up to three lines after it.
    pub context_after: String,
    /// One line for lenses.
    pub summary: String,
    /// The agent, when a decision record covers it.
    pub agent: String,
    /// Its model (or rule).
    pub model: String,
    /// Why this way.
    pub rationale: String,
    /// What else was considered.
    pub alternatives: Vec<String>,
    /// What was traded for what.
    pub tradeoffs: Vec<String>,
    /// When it was marked reviewed (milliseconds since the epoch), if it is.
    pub reviewed_ms: Option<u64>,
    /// Whether its latest revert stands (the text it replaced is back).
    pub reverted: bool,
}

impl Decision {
    /// `<run>#<hunk>`.
    pub fn id(&self) -> String {
        format!("{}#{}", self.run, self.hunk)
    }

    /// The text that should be where it is: what it wrote, or, reverted, what it replaced.
    pub fn expected(&self) -> &str {
        if self.reverted {
            &self.original
        } else {
            &self.written
        }
    }
}

/// What a journal file looked like when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// Every decision of every run of one workspace.
#[derive(Debug)]
pub struct Index {
    root: PathBuf,
    runs: HashMap<String, RunFacts>,
    decisions: HashMap<u64, Decision>,
    by_file: HashMap<String, Vec<u64>>,
    by_run: HashMap<String, Vec<u64>>,
    /// The key of each (run, hunk), kept across reloads so marks stay valid.
    keys: HashMap<(String, usize), u64>,
    /// The journals read, with what they looked like and their run.
    journals: HashMap<PathBuf, (Stamp, Option<String>)>,
    dir: Option<Stamp>,
    next_key: u64,
}

impl Index {
    /// An empty index of the workspace at `root`; [`Index::refresh`] reads the journals.
    pub fn new(root: &Path) -> Index {
        Index {
            root: root.to_path_buf(),
            runs: HashMap::new(),
            decisions: HashMap::new(),
            by_file: HashMap::new(),
            by_run: HashMap::new(),
            keys: HashMap::new(),
            journals: HashMap::new(),
            dir: None,
            next_key: 1,
        }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads what changed in the journals folder since the last call: new and removed
    /// journals when the folder changed, and the journals of runs that have not ended (they
    /// are still being written). Cheap when nothing changed: one `stat` per unfinished run.
    pub fn refresh(&mut self) {
        let dir = journal::runs_dir(&self.root);
        let now = stamp(&dir);
        if now != self.dir || now.is_none() {
            self.dir = now;
            self.rescan(&dir);
        }
        let open: Vec<PathBuf> = self
            .journals
            .iter()
            .filter(|(_, (_, run))| {
                run.as_ref()
                    .and_then(|id| self.runs.get(id))
                    .is_none_or(|r| !r.state.is_terminal())
            })
            .map(|(path, _)| path.clone())
            .collect();
        for path in open {
            self.load_if_changed(&path);
        }
    }

    /// Reads the journal of run `id` again (after this process appended to it).
    pub fn reload_run(&mut self, id: &str) {
        let path = journal::runs_dir(&self.root).join(format!("{id}.jsonl"));
        self.load(&path);
    }

    fn rescan(&mut self, dir: &Path) {
        let mut seen = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) == Some("jsonl") {
                    seen.push(path);
                }
            }
        }
        let gone: Vec<PathBuf> = self
            .journals
            .keys()
            .filter(|p| !seen.contains(p))
            .cloned()
            .collect();
        for path in gone {
            if let Some((_, Some(run))) = self.journals.remove(&path) {
                self.forget_run(&run);
            }
        }
        for path in seen {
            self.load_if_changed(&path);
        }
    }

    fn load_if_changed(&mut self, path: &Path) {
        let now = stamp(path);
        if now.is_some() && self.journals.get(path).map(|(s, _)| Some(*s)) == Some(now) {
            return;
        }
        self.load(path);
    }

    fn load(&mut self, path: &Path) {
        let Some(now) = stamp(path) else {
            if let Some((_, Some(run))) = self.journals.remove(path) {
                self.forget_run(&run);
            }
            return;
        };
        let read = match journal::read(path) {
            Ok(read) => read,
            Err(err) => {
                tracing::warn!(journal = %path.display(), "cannot read a run journal: {err}");
                return;
            }
        };
        let Some((facts, decisions)) = facts_of(path, &read) else {
            self.journals.insert(path.to_path_buf(), (now, None));
            return;
        };
        self.forget_run(&facts.id);
        let run = facts.id.clone();
        self.journals
            .insert(path.to_path_buf(), (now, Some(run.clone())));
        let mut keys = Vec::new();
        for mut d in decisions {
            let key = *self.keys.entry((run.clone(), d.hunk)).or_insert_with(|| {
                let key = self.next_key;
                self.next_key += 1;
                key
            });
            d.key = key;
            self.by_file.entry(d.file.clone()).or_default().push(key);
            keys.push(key);
            self.decisions.insert(key, d);
        }
        self.by_run.insert(run.clone(), keys);
        self.runs.insert(run, facts);
    }

    fn forget_run(&mut self, run: &str) {
        self.runs.remove(run);
        for key in self.by_run.remove(run).unwrap_or_default() {
            if let Some(d) = self.decisions.remove(&key)
                && let Some(list) = self.by_file.get_mut(&d.file)
            {
                list.retain(|k| *k != key);
                if list.is_empty() {
                    self.by_file.remove(&d.file);
                }
            }
        }
    }

    /// The run `id`.
    pub fn run(&self, id: &str) -> Option<&RunFacts> {
        self.runs.get(id)
    }

    /// Every run, in no order.
    pub fn runs(&self) -> impl Iterator<Item = &RunFacts> {
        self.runs.values()
    }

    /// The decision `key`.
    pub fn get(&self, key: u64) -> Option<&Decision> {
        self.decisions.get(&key)
    }

    /// The decisions in the file at relative path `file`, oldest run first.
    pub fn in_file(&self, file: &str) -> Vec<&Decision> {
        let mut out: Vec<&Decision> = self
            .by_file
            .get(file)
            .into_iter()
            .flatten()
            .filter_map(|k| self.decisions.get(k))
            .collect();
        out.sort_by(|a, b| (&a.run, a.hunk).cmp(&(&b.run, b.hunk)));
        out
    }

    /// The decisions of run `id`, in hunk order.
    pub fn of_run(&self, id: &str) -> Vec<&Decision> {
        let mut out: Vec<&Decision> = self
            .by_run
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|k| self.decisions.get(k))
            .collect();
        out.sort_by_key(|d| d.hunk);
        out
    }

    /// The decision `<run>#<hunk>`.
    pub fn find(&self, run: &str, hunk: usize) -> Option<&Decision> {
        self.keys
            .get(&(run.to_string(), hunk))
            .and_then(|k| self.decisions.get(k))
    }

    /// How many decisions the index holds.
    pub fn len(&self) -> usize {
        self.decisions.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }
}

/// A run's facts and its decisions (keys not yet given), from its journal; `None` for a file
/// without a `run_started` event.
fn facts_of(path: &Path, read: &journal::Read) -> Option<(RunFacts, Vec<Decision>)> {
    let mut facts: Option<RunFacts> = None;
    let mut records = Vec::new();
    let mut anchors: Vec<Decision> = Vec::new();
    let mut requests = UsageTotals::default();
    for record in &read.records {
        let event = &record.event;
        if let Event::RunStarted {
            run_id, kind, goal, ..
        } = event
        {
            let plan = path.with_extension("").join("plan.md");
            facts = Some(RunFacts {
                id: run_id.clone(),
                kind: kind.clone(),
                goal: goal.clone(),
                state: RunState::Planning,
                started_ms: record.at_ms,
                journal: path.to_path_buf(),
                plan_file: plan.is_file().then_some(plan),
                plan_summary: String::new(),
                risks: Vec::new(),
                usage: UsageTotals::default(),
                tests: TestFacts::default(),
                findings: Vec::new(),
                model_review: String::new(),
                explanation: None,
                warnings: read.warnings.clone(),
            });
            continue;
        }
        let Some(f) = facts.as_mut() else { continue };
        match event {
            Event::Stage { state, .. } => {
                f.state = *state;
                if *state == RunState::Reviewing {
                    // A new review round: its findings replace the last round's.
                    f.findings.clear();
                }
            }
            Event::Plan { plan, .. } => {
                f.plan_summary = plan.summary.clone();
                f.risks = plan.risks.clone();
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
            Event::Finding {
                file,
                line,
                rule_id,
                severity,
                message,
                status,
            } if status == "new" => f.findings.push(FindingFacts {
                file: file.clone(),
                line: *line,
                rule_id: rule_id.clone(),
                severity: severity.clone(),
                message: message.clone(),
            }),
            Event::TestRun {
                status,
                passed,
                failed,
                failed_before,
                flaky,
                sandbox,
                ..
            } => {
                f.tests = TestFacts {
                    status: status.clone(),
                    passed: *passed,
                    failed: failed.clone(),
                    failed_before: failed_before.clone(),
                    flaky: flaky.clone(),
                    sandbox: sandbox.clone(),
                    message: String::new(),
                }
            }
            Event::Tests { status, message } => {
                if f.tests.status.is_empty() || status == "skipped" {
                    f.tests.status = status.clone();
                }
                f.tests.message = message.clone();
            }
            Event::ModelReview {
                status,
                proposed,
                kept,
                message,
                ..
            } => {
                f.model_review = if status == "done" {
                    format!("{proposed} proposed, {kept} kept after the refutation check")
                } else {
                    format!("skipped: {message}")
                };
            }
            Event::Explanation {
                summary, document, ..
            } => f.explanation = Some((summary.clone(), document.clone())),
            Event::Outcome { state, usage, .. } => {
                f.state = *state;
                f.usage = *usage;
            }
            Event::Anchored {
                hunk,
                file,
                lines,
                hash,
                written,
                original,
                file_hash,
                context_before,
                context_after,
                step,
                block,
                summary,
            } => {
                anchors.push(Decision {
                    key: 0,
                    run: f.id.clone(),
                    hunk: *hunk,
                    file: file.clone(),
                    lines: *lines,
                    hash: hash.clone(),
                    written: written.clone(),
                    original: original.clone(),
                    file_hash: file_hash.clone(),
                    context_before: context_before.clone(),
                    context_after: context_after.clone(),
                    summary: summary.clone(),
                    agent: String::new(),
                    model: String::new(),
                    rationale: String::new(),
                    alternatives: Vec::new(),
                    tradeoffs: Vec::new(),
                    reviewed_ms: None,
                    reverted: false,
                });
                // The block it came from, to join with its decision below.
                records.push((step.clone(), *block));
            }
            Event::Reviewed {
                hunks, reviewed, ..
            } => {
                for d in anchors.iter_mut().filter(|d| hunks.contains(&d.hunk)) {
                    d.reviewed_ms = reviewed.then_some(record.at_ms);
                }
            }
            Event::Reverted {
                hunks,
                action,
                result,
            } if result == "applied" => {
                for d in anchors.iter_mut().filter(|d| hunks.contains(&d.hunk)) {
                    d.reverted = action == "revert";
                }
            }
            _ => {}
        }
    }
    let mut facts = facts?;
    if !facts.state.is_terminal() {
        facts.usage = requests;
    }
    // Join each anchor with the decision record of its block.
    for (d, (step, block)) in anchors.iter_mut().zip(&records) {
        let (Some(step), Some(block)) = (step, block) else {
            continue;
        };
        let found = read.records.iter().rev().find_map(|r| match &r.event {
            Event::Decision {
                step: s,
                block: b,
                file,
                agent,
                model,
                rationale,
                alternatives,
                tradeoffs,
                ..
            } if s == step && b == block && *file == d.file => {
                Some((agent, model, rationale, alternatives, tradeoffs))
            }
            _ => None,
        });
        if let Some((agent, model, rationale, alternatives, tradeoffs)) = found {
            d.agent = agent.clone();
            d.model = model.clone();
            d.rationale = rationale.clone();
            d.alternatives = alternatives.clone();
            d.tradeoffs = tradeoffs.clone();
        }
    }
    Some((facts, anchors))
}

#[cfg(test)]
mod tests;
