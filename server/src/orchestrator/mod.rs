//! Runs: a goal (or the workspace's security findings) taken through
//! Goal → Plan → Execute → Review → Test → Improve → Present as a background task with an id,
//! a state machine ([`RunState`]), hard bounds and a journal.
//!
//! Plain data in and out, no LSP: a run is given a [`RunEnv`] — the workspace root, the
//! configuration, the model clients (or none), snapshots of the open documents, a snapshot of
//! the index, and the [`Editor`] port it presents through — and returns a [`RunOutcome`].
//! It reads files through an in-memory copy of the workspace ([`overlay`]) and applies the
//! coder's blocks there, never to the user's files; only the presenting stage, and only when
//! asked, hands the change to the editor port, which refuses any file whose text changed since
//! the run read it.
//!
//! Bounds: at most `run.improve_rounds` improve rounds, the run's token and cost budget (the
//! model layer refuses a request that could exceed it), a wall-clock limit, and stuck detection
//! (the same failure twice ends the loop). Every stage transition is journalled and reported
//! as progress. Cancelling a run (or reaching its wall clock) stops its model requests at once
//! and applies nothing.

mod drive;
pub mod editor_runs;
pub mod existing;
pub mod explain;
pub mod fix;
pub mod overlay;
pub mod plan_doc;
pub mod present;
pub mod review;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::context::WorkspaceIndex;
use crate::editor::{Base, Editor};
use crate::journal::{RunState, UsageTotals};
use crate::llm::Models;
use crate::llm::protocol::Plan;
use crate::security::Severity;
use crate::util::lock;

/// `[run]`: the bounds of every run.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct RunSettings {
    /// How many times review findings (and, with a tester, test failures) go back to the coder.
    pub improve_rounds: u32,
    /// The most a run may take, in seconds, from start to presenting.
    pub wall_clock_secs: u64,
    /// The largest file a coder is shown whole, in bytes; a larger target is refused.
    pub max_file_bytes: u64,
    /// How many workspace files the planner is shown by name.
    pub max_plan_files: usize,
    /// Whether the editor asks the user to confirm each hunk of a run's change before it
    /// applies (LSP change annotations with `needsConfirmation`).
    pub confirm: bool,
    /// How a change reaches the editor: `apply` (a workspace edit the user previews hunk by
    /// hunk) or `preview` (the unified diff as a document; nothing is edited).
    pub present: Present,
}

/// `run.present`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Present {
    /// A workspace edit, hunk by hunk.
    #[default]
    Apply,
    /// `.conductor/runs/<id>/change.diff`, shown; nothing edited.
    Preview,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            improve_rounds: 2,
            wall_clock_secs: 600,
            max_file_bytes: 256 * 1024,
            max_plan_files: 300,
            confirm: true,
            present: Present::Apply,
        }
    }
}

/// What kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// A goal the developer stated: the planner plans, the coder codes.
    Goal,
    /// "Fix the security findings": one step per finding, mechanical fixes without a model.
    Fix,
}

impl RunKind {
    /// The name in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Goal => "goal",
            RunKind::Fix => "fix",
        }
    }
}

/// Where a run was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The file, absolute.
    pub file: PathBuf,
    /// 1-based inclusive lines; `None` for the whole file.
    pub lines: Option<(usize, usize)>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Goal or fix.
    pub kind: RunKind,
    /// The goal, in the developer's words (for a fix run, a description of it).
    pub goal: String,
    /// Where it was started, if anywhere.
    pub selection: Option<Selection>,
    /// For a fix run: the files or folders whose findings to fix (empty: the whole workspace).
    pub paths: Vec<PathBuf>,
    /// Stop after the plan.
    pub plan_only: bool,
    /// Skip the planner: the goal is one coder step on the selection's file.
    pub no_plan: bool,
    /// Hand the change to the editor port at the end (for the command line: write the files).
    pub apply: bool,
    /// A line of the selection's file the change removes once coded (the `// conductor: <goal>`
    /// comment the goal came from), matched by its exact text.
    pub remove_line: Option<String>,
    /// Follow a plan the developer edited (`plan_doc`) instead of asking the planner.
    pub follow: Option<plan_doc::FollowPlan>,
    /// Apply a change whose tests fail (or could not run to the end) all the same: without it,
    /// such a change is presented, not applied (`conductor run --apply-failing-tests`).
    pub apply_failing_tests: bool,
}

/// An open document, as the run sees it: a snapshot taken when the run started.
#[derive(Debug, Clone)]
pub struct OpenText {
    /// The buffer's text.
    pub text: String,
    /// Its identity for the editor (`Base::Open`).
    pub base: Base,
}

/// Everything a run reads, taken when it starts; nothing in it is locked while the run awaits.
#[derive(Clone)]
pub struct RunEnv {
    /// The workspace root (canonical).
    pub root: PathBuf,
    /// The configuration.
    pub config: Arc<Config>,
    /// The model clients, or `None` when no model is configured.
    pub models: Option<Arc<Models>>,
    /// Open documents by canonical path; files not here are read from disk.
    pub open: Arc<HashMap<PathBuf, OpenText>>,
    /// A snapshot of the workspace index, for context bundles; `None`: bundles are skipped.
    pub index: Option<Arc<WorkspaceIndex>>,
    /// Where the change is presented.
    pub editor: Arc<dyn Editor>,
}

impl RunEnv {
    /// What a run started now in `app`'s session reads: its root, configuration, model clients
    /// (when `[model]` names one), snapshots of the open documents (taken now; the run never
    /// sees a later keystroke, and the editor refuses its change over one) and the index's
    /// current snapshot. `None` when the session has no workspace root yet.
    pub fn for_app(app: &crate::app::App, editor: Arc<dyn Editor>) -> Option<RunEnv> {
        let root = app.root()?;
        let root = root.canonicalize().unwrap_or(root);
        let config = app.config();
        let models = if config.model.is_configured() {
            app.models().ok()
        } else {
            None
        };
        let open = app
            .snapshots()
            .into_iter()
            .filter_map(|snapshot| {
                let path = snapshot.path.clone()?;
                let path = path.canonicalize().unwrap_or(path);
                Some((
                    path,
                    OpenText {
                        text: snapshot.text.to_string(),
                        base: Base::Open {
                            uri: snapshot.uri.clone(),
                            version: snapshot.version,
                            revision: snapshot.revision,
                        },
                    },
                ))
            })
            .collect();
        Some(RunEnv {
            root,
            config,
            models,
            open: Arc::new(open),
            index: app.index.snapshot(),
            editor,
        })
    }
}

/// One block's outcome, as the run reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlockRecord {
    /// The plan step.
    pub step: String,
    /// The coder attempt (1, 2 after a retry, more in improve rounds).
    pub attempt: u32,
    /// The block's number in its reply (or the fix's number in the step), from 1.
    pub index: usize,
    /// The file, relative.
    pub file: String,
    /// `applied`, `noop` or `refused`.
    pub status: String,
    /// New lines `[first, last]` of an applied block.
    pub lines: Option<[usize; 2]>,
    /// Why a block was refused.
    pub reason: Option<String>,
}

/// Why one applied block was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DecisionRecord {
    /// The plan step.
    pub step: String,
    /// The block it explains.
    pub block: usize,
    /// The file.
    pub file: String,
    /// `coder`, or `rule` for a mechanical fix.
    pub agent: String,
    /// The model, or the rule.
    pub model: String,
    /// What the change does.
    pub summary: String,
    /// Why this way.
    pub rationale: String,
    /// What else was considered.
    pub alternatives: Vec<String>,
    /// What was traded for what.
    pub tradeoffs: Vec<String>,
}

/// A file of the proposed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// Relative to the root, `/`-separated.
    pub path: String,
    /// Absolute.
    pub real: PathBuf,
    /// What the run read (`None`: a new file).
    pub before: Option<String>,
    /// What the run proposes.
    pub after: String,
    /// The identity of `before`, checked by the editor before it applies anything.
    pub base: Base,
    /// What the editor did with it, when the run was asked to apply: `Ok` or why not.
    pub applied: Option<Result<(), String>>,
}

impl ChangedFile {
    /// A unified diff of the change.
    pub fn diff(&self) -> String {
        crate::edits::diff::unified(&self.path, self.before.as_deref(), &self.after)
    }
}

/// How a review finding relates to the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// The change introduced it.
    New,
    /// The change removed it.
    Fixed,
    /// A fix run's finding the change did not remove.
    Remaining,
}

/// The model's verdict on a review finding: on a static one, whether it agrees (the finding
/// stays either way); on a model one, what its refutation check concluded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FindingVerdict {
    /// `agree` or `likely_false_positive` (a static finding), `confirmed` (a model finding
    /// kept after its refutation check).
    pub verdict: String,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// Why, in the model's words.
    pub reason: String,
}

impl FindingVerdict {
    /// The verdict as a user reads it: "the model agrees (confidence 0.90): …".
    pub fn describe(&self) -> String {
        let what = match self.verdict.as_str() {
            "agree" => "the model agrees",
            "likely_false_positive" => "the model thinks it is likely a false positive",
            "confirmed" => "the refutation check confirmed it",
            other => other,
        };
        format!(
            "{what} (confidence {:.2}): {}",
            self.confidence,
            self.reason.trim()
        )
    }
}

/// A finding of the review stage.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReviewFinding {
    /// The file, relative.
    pub file: String,
    /// 1-based line (in the changed text; in the original for a fixed one).
    pub line: usize,
    /// The rule.
    pub rule_id: String,
    /// Its severity.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// New, fixed or remaining.
    pub status: FindingStatus,
    /// `static` (the security rules) or `model` (the model review, after its refutation check).
    pub source: String,
    /// The explanation in Markdown: for a static finding its rule's explanation and data-flow
    /// path (the live scan's hover text); for a model finding the model's explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The model's verdict, when the model review gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<FindingVerdict>,
}

/// What became of the model review.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelReviewOutcome {
    /// `done`, `skipped` (failed, or over budget: the static review stands alone) or `off`.
    pub status: String,
    /// What happened: findings proposed, kept, refuted; or why it was skipped.
    pub message: String,
}

/// The test stage's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestOutcome {
    /// `passed`, `failed` (the change broke tests or the build), `failed_before` (tests fail
    /// as they did before the change), `skipped`, `error` (the command could not run or
    /// finish) or `not run`.
    pub status: String,
    /// What happened.
    pub message: String,
    /// The tester's full report, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<crate::tester::TestReport>,
}

impl TestOutcome {
    /// Whether the change leaves tests failing that it broke (or a build it broke, or tests it
    /// weakened), or the tests could not be run to the end.
    pub fn change_fails(&self) -> bool {
        matches!(self.status.as_str(), "failed" | "error")
            || self.report.as_ref().is_some_and(|r| !r.weakened.is_empty())
    }

    /// Why [`TestOutcome::change_fails`], in words: "the tests fail with the change (…)", "the
    /// change weakens the tests (…)" or "its tests could not run to the end (…)".
    pub fn why_failing(&self) -> String {
        let message = self.message.trim_end_matches('.');
        match self.status.as_str() {
            "failed" => format!("the tests fail with the change ({message})"),
            "error" => format!("its tests could not run to the end ({message})"),
            _ => {
                let weakened = self
                    .report
                    .as_ref()
                    .map(|r| r.weakened.join("; "))
                    .unwrap_or_default();
                format!("the change weakens the tests ({weakened})")
            }
        }
    }
}

impl From<crate::tester::TestReport> for TestOutcome {
    fn from(report: crate::tester::TestReport) -> Self {
        Self {
            status: report.status.as_str().into(),
            message: report.message.clone(),
            report: Some(report),
        }
    }
}

/// A plan step the run did not do, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedStep {
    /// The step.
    pub step: String,
    /// Why, and what to do about it.
    pub reason: String,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run's id.
    pub run_id: String,
    /// `done`, `failed` or `cancelled`.
    pub state: RunState,
    /// What happened, for the user; for a failure, what to do.
    pub message: String,
    /// The plan, when there was one.
    pub plan: Option<Plan>,
    /// Where the plan came from: `model`, `findings`, `single step` or `edited`.
    pub plan_source: Option<String>,
    /// `.conductor/runs/<id>/plan.md`, when written.
    pub plan_file: Option<PathBuf>,
    /// The proposed change (empty for a plan-only run, a failure or a cancellation).
    pub files: Vec<ChangedFile>,
    /// Hunks not applied because the user changed their lines while the run worked
    /// (`file:first-last: why`).
    pub refused_hunks: Vec<String>,
    /// Every block's outcome.
    pub blocks: Vec<BlockRecord>,
    /// One per applied block.
    pub decisions: Vec<DecisionRecord>,
    /// The review's findings.
    pub findings: Vec<ReviewFinding>,
    /// The model review's part of the review.
    pub model_review: ModelReviewOutcome,
    /// Steps not done.
    pub skipped: Vec<SkippedStep>,
    /// The test stage.
    pub tests: TestOutcome,
    /// Tokens and cost.
    pub usage: UsageTotals,
    /// The journal.
    pub journal: PathBuf,
}

impl RunOutcome {
    /// Whether the change leaves a new finding of high or critical severity.
    pub fn has_unresolved_high(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.status != FindingStatus::Fixed && f.severity >= Severity::High)
    }
}

/// The runtime runs live on: two threads of their own (and their own blocking pool), never the
/// session's. A run's bookkeeping (prompts, replies, the edit applier, the journal) then never
/// sits in the queue of the thread that is about to apply the user's keystroke. Built on first
/// use, and never dropped (a runtime cannot be dropped from inside another).
fn runtime() -> &'static tokio::runtime::Handle {
    static RUNS: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    static FALLBACK: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    let built = RUNS.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .thread_name("conductor-runs")
            .enable_all()
            .build()
            .map_err(|err| {
                tracing::warn!("cannot start the runs' runtime ({err}); runs share the session's")
            })
            .ok()
    });
    match built {
        Some(runtime) => runtime.handle(),
        None => FALLBACK.get_or_init(tokio::runtime::Handle::current),
    }
}

/// One at a time, across every run of the process: the CPU-heavy work of runs (the review's
/// scans, context bundles, a fix run's scan). On a small machine twenty runs scanning at once
/// would take every core from the session thread and the user's keystrokes; queued here, runs
/// share one slot and the editor keeps the rest.
static HEAVY: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Runs `work` on the background pool (`util::background`) once [`HEAVY`] has a slot.
pub(crate) async fn heavy<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    // The semaphore is never closed, so acquiring fails only if it were; run anyway then.
    let _slot = HEAVY.acquire().await.ok();
    crate::util::background(work).await
}

/// The part of a file a run claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Claim {
    file: PathBuf,
    /// 1-based inclusive lines; `None`: the whole file.
    lines: Option<(usize, usize)>,
}

impl Claim {
    fn overlaps(&self, other: &Claim) -> bool {
        self.file == other.file
            && match (self.lines, other.lines) {
                (Some((a0, a1)), Some((b0, b1))) => a0 <= b1 && b0 <= a1,
                _ => true,
            }
    }
}

/// A run in flight, as the registry knows it.
#[derive(Debug, Clone)]
pub struct ActiveRun {
    /// Its id.
    pub id: String,
    /// Its goal.
    pub goal: String,
    /// Its stage.
    pub state: RunState,
    claims: Vec<Claim>,
    cancel: CancellationToken,
}

/// A started run: its id, a way to cancel it, and its outcome when it ends.
#[derive(Debug)]
pub struct RunHandle {
    /// The run's id.
    pub id: String,
    /// Cancelling it cancels the run.
    pub cancel: CancellationToken,
    /// The outcome.
    pub outcome: tokio::task::JoinHandle<RunOutcome>,
}

/// Why a run did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// Another run is changing the same lines.
    #[error(
        "run {other} is already working on {file}{lines}; wait for it or cancel it (`conductor.cancel`) first"
    )]
    Overlap {
        /// The run in the way.
        other: String,
        /// The file.
        file: String,
        /// The lines, as ` lines A-B`, or empty for the whole file.
        lines: String,
    },
    /// The journal could not be created.
    #[error("cannot create the run journal under {root}: {error}")]
    Journal {
        /// The workspace root.
        root: String,
        /// The error.
        error: String,
    },
}

/// The runs in flight, with the parts of files each has claimed. One per workspace session.
#[derive(Debug, Default)]
pub struct Orchestrator {
    active: Mutex<HashMap<String, ActiveRun>>,
}

impl Orchestrator {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts a run as a background task on the current Tokio runtime. A run whose selection
    /// (or, for a fix run, whose files) overlaps one in flight is refused, naming that run.
    pub fn start(
        self: &Arc<Self>,
        env: RunEnv,
        request: RunRequest,
    ) -> Result<RunHandle, StartError> {
        let claims = claims_of(&env.root, &request);
        let id = crate::journal::new_run_id();
        let cancel = CancellationToken::new();
        {
            let mut active = lock(&self.active);
            for run in active.values() {
                for mine in &claims {
                    if let Some(theirs) = run.claims.iter().find(|c| c.overlaps(mine)) {
                        let shown = theirs.lines.or(mine.lines);
                        return Err(StartError::Overlap {
                            other: run.id.clone(),
                            file: relative(&env.root, &mine.file),
                            lines: shown.map_or(String::new(), |(a, b)| format!(" lines {a}-{b}")),
                        });
                    }
                }
            }
            active.insert(
                id.clone(),
                ActiveRun {
                    id: id.clone(),
                    goal: request.goal.clone(),
                    state: RunState::Planning,
                    claims,
                    cancel: cancel.clone(),
                },
            );
        }
        let journal = match crate::journal::Journal::create(&env.root, &id) {
            Ok(journal) => Arc::new(journal),
            Err(err) => {
                lock(&self.active).remove(&id);
                return Err(StartError::Journal {
                    root: env.root.display().to_string(),
                    error: err.to_string(),
                });
            }
        };
        let member = Membership {
            registry: Arc::clone(self),
            id: id.clone(),
            root: env.root.clone(),
        };
        let token = cancel.clone();
        let outcome = runtime().spawn(async move {
            let run_id = member.id.clone();
            let registry = Arc::clone(&member.registry);
            let outcome = drive::run(run_id.clone(), env, request, journal, token, member).await;
            lock(&registry.active).remove(&run_id);
            outcome
        });
        Ok(RunHandle {
            id,
            cancel,
            outcome,
        })
    }

    /// Cancels a run in flight; returns whether there was one with that id.
    pub fn cancel(&self, id: &str) -> bool {
        match lock(&self.active).get(id) {
            Some(run) => {
                run.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// The runs in flight.
    pub fn active(&self) -> Vec<ActiveRun> {
        let mut runs: Vec<ActiveRun> = lock(&self.active).values().cloned().collect();
        runs.sort_by(|a, b| a.id.cmp(&b.id));
        runs
    }
}

/// A run's place in the registry: how it reports its stage and claims the files it writes.
pub(crate) struct Membership {
    registry: Arc<Orchestrator>,
    id: String,
    root: PathBuf,
}

impl Membership {
    /// Records the run's stage for [`Orchestrator::active`].
    pub(crate) fn set_state(&self, state: RunState) {
        if let Some(run) = lock(&self.registry.active).get_mut(&self.id) {
            run.state = state;
        }
    }

    /// Claims `file` (absolute) before the run's copy changes it: refused, naming the other
    /// run, when another run in flight claimed any of it. A file the run claimed at start (its
    /// selection) is its own already.
    pub(crate) fn claim_file(&self, file: &Path) -> Result<(), String> {
        let mut active = lock(&self.registry.active);
        let whole = Claim {
            file: file.to_path_buf(),
            lines: None,
        };
        if active
            .get(&self.id)
            .is_some_and(|me| me.claims.iter().any(|c| c.file == whole.file))
        {
            return Ok(());
        }
        if let Some(other) = active
            .values()
            .find(|r| r.id != self.id && r.claims.iter().any(|c| c.overlaps(&whole)))
        {
            return Err(format!(
                "{} is being changed by run {}; wait for it or cancel it, then run again",
                relative(&self.root, file),
                other.id
            ));
        }
        if let Some(me) = active.get_mut(&self.id) {
            me.claims.push(whole);
        }
        Ok(())
    }
}

/// The parts of files a run will change, as far as they are known when it starts.
fn claims_of(root: &Path, request: &RunRequest) -> Vec<Claim> {
    let canonical = |p: &Path| {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        };
        p.canonicalize().unwrap_or(p)
    };
    let mut claims = Vec::new();
    if let Some(selection) = &request.selection {
        claims.push(Claim {
            file: canonical(&selection.file),
            lines: selection.lines,
        });
    }
    if request.kind == RunKind::Fix {
        for path in &request.paths {
            let path = canonical(path);
            if path.is_file() {
                claims.push(Claim {
                    file: path,
                    lines: None,
                });
            }
        }
    }
    claims
}

/// The journal event of a context bundle an agent was given (its manifest, not its text).
pub(crate) fn context_event(
    step: Option<&str>,
    bundle: &crate::context::ContextBundle,
) -> crate::journal::Event {
    crate::journal::Event::Context {
        step: step.map(str::to_string),
        file: bundle.file.clone(),
        tokens: bundle.total_tokens,
        budget: bundle.budget,
        items: bundle
            .items
            .iter()
            .map(|i| crate::journal::ManifestItem {
                kind: serde_json::to_value(i.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                file: i.file.clone(),
                lines: [i.start_line, i.end_line],
                symbol: i.symbol.clone(),
                reason: i.reason.clone(),
                tokens: i.tokens,
            })
            .collect(),
    }
}

/// The journal event of one model response of `agent` (metadata only: model, latency,
/// tokens, cost).
pub(crate) fn response_event(
    agent: crate::llm::AgentRole,
    client: &crate::llm::ModelClient,
    step: Option<&str>,
    r: &crate::llm::ChatResponse,
) -> crate::journal::Event {
    crate::journal::Event::ModelRequest {
        agent: agent.as_str().into(),
        provider: client.name().into(),
        model: r.model.clone(),
        step: step.map(str::to_string),
        latency_ms: r.latency.as_millis() as u64,
        prompt_tokens: r.usage.input_tokens,
        completion_tokens: r.usage.output_tokens,
        cost_usd: client
            .settings()
            .cost_usd(r.usage.input_tokens, r.usage.output_tokens),
        redacted: r.redacted,
        attempts: r.attempts,
        outcome: "ok".into(),
    }
}

/// The journal event of a model request that failed (`why`), after `latency_ms`.
pub(crate) fn failed_request_event(
    agent: crate::llm::AgentRole,
    client: &crate::llm::ModelClient,
    latency_ms: u64,
    why: &str,
) -> crate::journal::Event {
    crate::journal::Event::ModelRequest {
        agent: agent.as_str().into(),
        provider: client.name().into(),
        model: client.settings().model.clone(),
        step: None,
        latency_ms,
        prompt_tokens: 0,
        completion_tokens: 0,
        cost_usd: 0.0,
        redacted: 0,
        attempts: 0,
        outcome: why.to_string(),
    }
}

/// `path` relative to `root` with `/` separators (the path itself when outside).
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_in_the_editor_reads_the_open_buffer_not_the_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("root");
        let file = root.join("lib.rs");
        std::fs::write(&file, "fn on_disk() {}\n").expect("write");
        let app = crate::app::App::new(|_| {}).expect("app");
        assert!(RunEnv::for_app(&app, Arc::new(crate::editor::FsEditor)).is_none());
        app.set_root(Some(root.clone()));
        let uri = format!("file://{}", file.display());
        app.with_documents(|d| d.open(&uri, Some(file.clone()), "rust", 3, "fn typed() {}\n"));
        let env = RunEnv::for_app(&app, Arc::new(crate::editor::FsEditor)).expect("env");
        assert!(env.models.is_none(), "no [model] configured");
        let open = env.open.get(&file).expect("the open document");
        assert_eq!(open.text, "fn typed() {}\n");
        assert!(
            matches!(open.base, Base::Open { version: 3, .. }),
            "{:?}",
            open.base
        );
        let overlay = overlay::Overlay::new(&env.root, env.open.clone(), 1 << 20);
        assert_eq!(
            overlay.text(&file).expect("read").as_deref(),
            Some("fn typed() {}\n")
        );
    }

    #[test]
    fn claims_overlap_on_the_same_file_and_intersecting_lines_only() {
        let a = Claim {
            file: "/w/a.rs".into(),
            lines: Some((10, 20)),
        };
        let b = Claim {
            file: "/w/a.rs".into(),
            lines: Some((20, 30)),
        };
        let c = Claim {
            file: "/w/a.rs".into(),
            lines: Some((21, 30)),
        };
        let whole = Claim {
            file: "/w/a.rs".into(),
            lines: None,
        };
        let other = Claim {
            file: "/w/b.rs".into(),
            lines: None,
        };
        assert!(a.overlaps(&b));
        assert!(!a.overlaps(&c));
        assert!(whole.overlaps(&c));
        assert!(!whole.overlaps(&other));
    }
}
