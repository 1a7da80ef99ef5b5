//! One run from start to outcome: the state machine, its bounds and its journal.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::overlay::Overlay;
use super::present;
use super::review::static_review;
use super::{
    BlockRecord, ChangedFile, DecisionRecord, FindingStatus, Membership, ModelReviewOutcome,
    Present, ReviewFinding, RunEnv, RunKind, RunOutcome, RunRequest, SkippedStep, TestOutcome, fix,
    relative,
};
use crate::agents::coder::{self, CoderInput, TargetFile};
use crate::agents::planner::{self, PlannerInput};
use crate::context::{BundleRequest, ContextBundle, build_bundle};
use crate::editor::{Applied, ChangeSet};
use crate::edits::{BlockStatus, Workspace, plan_blocks};
use crate::journal::{Event, Journal, RunState, UsageTotals};
use crate::llm::protocol::{AskError, Plan, PlanStep, StepAgent};
use crate::llm::{AgentRole, ChatResponse, LlmError, ModelClient, Run};
use crate::security::Severity;
use crate::tester;

/// Why the run stopped early.
const STOP_NONE: u8 = 0;
const STOP_USER: u8 = 1;
const STOP_WALL_CLOCK: u8 = 2;

/// How a run ends before presenting.
enum Halt {
    Failed(String),
    Cancelled(String),
}

struct Ctx {
    id: String,
    env: RunEnv,
    request: RunRequest,
    journal: Arc<Journal>,
    cancel: CancellationToken,
    stop: Arc<AtomicU8>,
    member: Membership,
    started: Instant,
    workspace: Option<Workspace>,
    overlay: Overlay,
    /// The model layer's view of the run: budget, redaction table, the same cancellation.
    model_run: Run,
    plan: Option<Plan>,
    plan_source: Option<String>,
    plan_file: Option<PathBuf>,
    blocks: Vec<BlockRecord>,
    decisions: Vec<DecisionRecord>,
    findings: Vec<ReviewFinding>,
    model_review: ModelReviewOutcome,
    skipped: Vec<SkippedStep>,
    tests: TestOutcome,
    files: Vec<ChangedFile>,
    /// Hunks the presenting stage left out because the user typed over their lines.
    refused_hunks: Vec<String>,
    /// Coder attempts so far, across steps and rounds (numbers the journal's attempts).
    attempts: HashMap<String, u32>,
    /// A fix run's scanned texts, by file.
    scanned: HashMap<PathBuf, String>,
    /// The last context bundle, with the hash of the text it was built from.
    bundle: Option<(String, Arc<ContextBundle>)>,
}

/// Runs one run to its outcome. Never panics on model, file or editor input; every ending is
/// journalled.
pub(super) async fn run(
    id: String,
    env: RunEnv,
    request: RunRequest,
    journal: Arc<Journal>,
    cancel: CancellationToken,
    member: Membership,
) -> RunOutcome {
    let stop = Arc::new(AtomicU8::new(STOP_NONE));
    let limit = Duration::from_secs(env.config.run.wall_clock_secs.max(1));
    let timer = {
        let (cancel, stop) = (cancel.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(limit) => {
                    let _ = stop.compare_exchange(STOP_NONE, STOP_WALL_CLOCK, Ordering::SeqCst, Ordering::SeqCst);
                    cancel.cancel();
                }
                _ = cancel.cancelled() => {
                    let _ = stop.compare_exchange(STOP_NONE, STOP_USER, Ordering::SeqCst, Ordering::SeqCst);
                }
            }
        })
    };
    let model_run = match &env.models {
        Some(models) => {
            let mut run = models.new_run(id.clone());
            run.cancel = cancel.clone();
            run
        }
        None => {
            let mut run = Run::new(
                id.clone(),
                crate::llm::BudgetLimits::from(&env.config.model.budget),
            );
            run.cancel = cancel.clone();
            run
        }
    };
    let overlay = Overlay::new(&env.root, env.open.clone(), env.config.run.max_file_bytes);
    let workspace = Workspace::new(&env.root).ok();
    let mut ctx = Ctx {
        id,
        env,
        request,
        journal,
        cancel,
        stop,
        member,
        started: Instant::now(),
        workspace,
        overlay,
        model_run,
        plan: None,
        plan_source: None,
        plan_file: None,
        blocks: Vec::new(),
        decisions: Vec::new(),
        findings: Vec::new(),
        model_review: ModelReviewOutcome {
            status: "not run".into(),
            message: "the run ended before the review stage".into(),
        },
        skipped: Vec::new(),
        tests: TestOutcome {
            status: "not run".into(),
            message: "the run ended before the test stage".into(),
            report: None,
        },
        files: Vec::new(),
        refused_hunks: Vec::new(),
        attempts: HashMap::new(),
        scanned: HashMap::new(),
        bundle: None,
    };
    let result = ctx.drive().await;
    timer.abort();
    let editor = ctx.env.editor.clone();
    let outcome = ctx.finish(result);
    // High findings the improve rounds left in the change stay visible on its lines, and the
    // lenses over what it changed are refreshed, before anyone is told the run ended.
    let left = super::existing::left_behind(&outcome.files, &outcome.findings);
    editor.publish_findings(&outcome.run_id, &left);
    editor.decisions_changed(&outcome.run_id).await;
    outcome
}

impl Ctx {
    fn stage(&self, state: RunState, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(run = %self.id, %state, "{message}");
        self.member.set_state(state);
        let usage = self.usage();
        let tokens = usage.prompt_tokens + usage.completion_tokens;
        let shown = if tokens == 0 {
            message.clone()
        } else {
            format!(
                "{message} · {} tokens · ${:.2}",
                short_count(tokens),
                usage.cost_usd
            )
        };
        self.env.editor.progress(state.as_str(), &shown, None);
        self.journal.record(Event::Stage { state, message });
    }

    fn halt_for_stop(&self) -> Halt {
        match self.stop.load(Ordering::SeqCst) {
            STOP_WALL_CLOCK => Halt::Failed(format!(
                "the run reached its wall-clock limit of {} s and was stopped; nothing was applied. Raise `run.wall_clock_secs`, or split the goal into smaller runs",
                self.env.config.run.wall_clock_secs
            )),
            _ => Halt::Cancelled("the run was cancelled; nothing was applied".into()),
        }
    }

    /// Stops here if the run was cancelled or ran out of time.
    fn check(&self) -> Result<(), Halt> {
        if self.cancel.is_cancelled() {
            return Err(self.halt_for_stop());
        }
        Ok(())
    }

    async fn drive(&mut self) -> Result<String, Halt> {
        let selection = self.request.selection.as_ref().map(|s| {
            let file = relative(&self.env.root, &s.file);
            match s.lines {
                Some((a, b)) => format!("{file}:{a}-{b}"),
                None => file,
            }
        });
        self.journal.record(Event::RunStarted {
            run_id: self.id.clone(),
            kind: self.request.kind.as_str().into(),
            goal: self.request.goal.clone(),
            selection: selection.clone(),
            config_digest: crate::editor::text_hash(format!("{:?}", self.env.config).as_bytes()),
            workspace: self.env.root.display().to_string(),
        });
        if self.workspace.is_none() {
            return Err(Halt::Failed(format!(
                "the workspace root {} cannot be resolved",
                self.env.root.display()
            )));
        }
        self.stage(RunState::Planning, "planning");
        let fix_targets = match self.request.kind {
            RunKind::Fix => Some(self.plan_fix().await?),
            RunKind::Goal => {
                self.plan_goal(selection).await?;
                None
            }
        };
        if let Some(plan) = &self.plan {
            self.plan_file = self
                .journal
                .write_plan(&super::plan_doc::render(&self.id, &self.request.goal, plan))
                .ok();
        }
        if self.request.plan_only {
            return Ok("plan only: nothing was coded".into());
        }
        self.check()?;
        self.stage(RunState::Coding, "coding");
        match fix_targets {
            Some(targets) => self.code_fixes(targets).await?,
            None => self.code_plan().await?,
        }
        self.remove_goal_line();
        self.files = self.overlay.changes();
        self.review_test_improve().await?;
        self.check()?;
        self.stage(RunState::Presenting, "presenting the change");
        if self.files.is_empty() {
            return Ok(match self.request.kind {
                RunKind::Fix if self.plan.as_ref().is_some_and(|p| p.steps.is_empty()) => {
                    "no security findings to fix".into()
                }
                RunKind::Fix if !self.skipped.is_empty() => format!(
                    "no change: none of the {} finding(s) has a mechanical fix, and they need a model",
                    self.skipped.len()
                ),
                _ => "no change: nothing the run proposed changes a file".into(),
            });
        }
        let introduced_high = self
            .findings
            .iter()
            .filter(|f| f.status == FindingStatus::New && f.severity >= Severity::High)
            .count();
        if self.request.apply && introduced_high > 0 {
            // The change is shown, not written: a change that makes the code less safe needs a
            // person's decision, not a flag given before the run.
            return Ok(format!(
                "{} file(s) changed, not applied: the change introduces {introduced_high} high or critical finding(s) the coder could not remove; review them, then apply the diff yourself or change the goal",
                self.files.len()
            ));
        }
        if self.request.apply && !self.request.apply_failing_tests && self.tests.change_fails() {
            // Like a new high finding: a change that breaks the tests is shown, not written,
            // unless the developer said before the run that they want it anyway. The editor
            // never says so: there the change stays in the run's journal for review.
            return Ok(format!(
                "{} file(s) changed, not applied: {}; review it (`conductor explain --run {}`) and apply it yourself, or run again from the command line with `--apply --apply-failing-tests` to write it anyway",
                self.files.len(),
                self.tests.why_failing(),
                self.id
            ));
        }
        let mut presented = String::new();
        if self.request.apply {
            match self.env.config.run.present {
                Present::Apply => self.apply().await?,
                Present::Preview => presented = self.preview().await?,
            }
        }
        let fixed = self
            .findings
            .iter()
            .filter(|f| f.status == FindingStatus::Fixed)
            .count();
        Ok(format!(
            "{} file(s) changed{}{}",
            self.files.len(),
            if fixed > 0 {
                format!(", {fixed} finding(s) fixed")
            } else {
                String::new()
            },
            if !self.request.apply {
                String::new()
            } else if presented.is_empty() {
                applied_summary(&self.files, &self.refused_hunks)
            } else {
                presented
            }
        ))
    }

    /// Review, test and improve: the change is reviewed and tested; new high or critical
    /// findings and the tests it broke go back to the coder (its blocks apply on top of the
    /// change as it stands) for at most `run.improve_rounds` rounds; the same findings and
    /// failures twice end the loop (stuck). Every round is journalled and reported as progress.
    async fn review_test_improve(&mut self) -> Result<(), Halt> {
        let mut previous: Option<Vec<String>> = None;
        let mut round: u32 = 0;
        let max_rounds = self.env.config.run.improve_rounds;
        loop {
            self.check()?;
            self.review_round(round).await?;
            self.check()?;
            self.test_round(round).await?;
            self.check()?;
            let high: Vec<ReviewFinding> = self
                .findings
                .iter()
                .filter(|f| f.status == FindingStatus::New && f.severity >= Severity::High)
                .cloned()
                .collect();
            let report = self.tests.report.clone();
            let test_feedback = match &report {
                Some(r) if self.tests.change_fails() => r.feedback(),
                _ => Vec::new(),
            };
            if (high.is_empty() && test_feedback.is_empty()) || self.env.models.is_none() {
                break;
            }
            let mut key: Vec<String> = high
                .iter()
                .map(|f| format!("{} {}", f.rule_id, f.file))
                .collect();
            if let Some(r) = &report
                && !test_feedback.is_empty()
            {
                key.extend(r.failure_key());
            }
            if round >= max_rounds {
                break;
            }
            if previous.as_ref() == Some(&key) {
                self.journal.record(Event::Feedback {
                    round,
                    summary: "the same findings came back after an improve round (stuck: the same review findings and test failures as the round before); the loop stops here".into(),
                });
                break;
            }
            previous = Some(key);
            round += 1;
            let failing = report.as_ref().map_or(0, |r| r.failed.len());
            let mut why = Vec::new();
            if failing > 0 {
                why.push(format!("{failing} test(s) failing"));
            } else if !test_feedback.is_empty() {
                why.push(match &report {
                    Some(r) if r.build_failed => "the change does not compile".to_string(),
                    Some(r) if !r.weakened.is_empty() => "the change weakens the tests".into(),
                    _ => "the test command fails".into(),
                });
            }
            if !high.is_empty() {
                why.push(format!("{} new high finding(s)", high.len()));
            }
            self.stage(
                RunState::Improving,
                format!("improving {round}/{max_rounds}: {}", why.join(", ")),
            );
            let mut feedback: Vec<String> = high
                .iter()
                .map(|f| {
                    format!(
                        "The review found a new {} problem your change introduced: {}:{}: {} ({})",
                        f.severity.as_str(),
                        f.file,
                        f.line,
                        f.message,
                        f.rule_id
                    )
                })
                .collect();
            feedback.extend(test_feedback);
            let mut files: Vec<String> = high.iter().map(|f| f.file.clone()).collect();
            if let Some(r) = &report {
                files.extend(
                    r.failed
                        .iter()
                        .filter_map(|f| f.location.as_ref().map(|l| l.file.clone())),
                );
            }
            // Failures the output does not place in a file are the change's files' to fix.
            files.extend(self.files.iter().map(|f| f.path.clone()));
            let mut seen = HashSet::new();
            files.retain(|f| seen.insert(f.clone()));
            self.journal.record(Event::Feedback {
                round,
                summary: feedback.join("\n"),
            });
            let step = PlanStep {
                id: format!("improve-{round}"),
                title: "Make the change pass review and the tests: remove the security problems the review found and fix what makes the tests fail, keeping the change's purpose and the existing tests".into(),
                agent: StepAgent::Coder,
                targets: files,
                depends_on: Vec::new(),
            };
            self.code_step(&step, &self.request.goal.clone(), feedback)
                .await?;
            self.files = self.overlay.changes();
        }
        self.journal.record(Event::Tests {
            status: self.tests.status.clone(),
            message: self.tests.message.clone(),
        });
        Ok(())
    }

    /// The review stage of one round: the static review of the change as it stands, then the
    /// model review.
    async fn review_round(&mut self, round: u32) -> Result<(), Halt> {
        self.stage(
            RunState::Reviewing,
            format!("reviewing {} changed file(s)", self.files.len()),
        );
        let (files, settings) = (self.files.clone(), self.env.config.security.clone());
        let with_remaining = self.request.kind == RunKind::Fix;
        self.findings = super::heavy(move || static_review(&files, &settings, with_remaining))
            .await
            .map_err(|e| Halt::Failed(format!("the review stopped unexpectedly: {e}")))?;
        // The static findings are journalled by the model review, with its verdicts on them.
        self.model_review(round).await
    }

    /// The model review of one round ([`super::review::model_review`]): its responses, failed
    /// requests and kept findings are journalled, and the kept findings join the static ones.
    async fn model_review(&mut self, round: u32) -> Result<(), Halt> {
        let client = self
            .env
            .models
            .as_ref()
            .map(|m| m.for_agent(AgentRole::Security).clone());
        let asked = Instant::now();
        let result = super::review::model_review(
            client.as_ref(),
            &self.model_run,
            &self.request.goal,
            &self.files,
            &self.findings,
            &self.env.config.review,
        )
        .await;
        if let Some(client) = &client {
            for r in &result.responses {
                self.journal_response(AgentRole::Security, client, None, r);
            }
            for why in &result.failures {
                self.journal.record(super::failed_request_event(
                    AgentRole::Security,
                    client,
                    asked.elapsed().as_millis() as u64,
                    why,
                ));
            }
        }
        result.annotate(&mut self.findings);
        for f in &self.findings {
            self.journal_finding(f);
        }
        if result.cancelled {
            return Err(self.halt_for_stop());
        }
        for f in &result.kept {
            self.journal_finding(f);
        }
        if result.outcome.status != "off" {
            self.journal.record(Event::ModelReview {
                round,
                status: result.outcome.status.clone(),
                proposed: result.proposed,
                kept: result.kept.len(),
                message: result.outcome.message.clone(),
            });
        }
        self.findings.extend(result.kept);
        self.model_review = result.outcome;
        Ok(())
    }

    fn journal_finding(&self, f: &ReviewFinding) {
        self.journal.record(super::review::finding_event(f));
    }

    /// The test stage of one round: the tester runs the configured command on the change as it
    /// stands, in a sandboxed scratch copy, on the blocking pool; cancelling the run kills the
    /// command's process group.
    async fn test_round(&mut self, round: u32) -> Result<(), Halt> {
        if self.files.is_empty() {
            self.stage(RunState::Testing, "testing: no change to test");
            self.tests = TestOutcome {
                status: "skipped".into(),
                message: "no change to test".into(),
                report: None,
            };
            return Ok(());
        }
        self.stage(
            RunState::Testing,
            format!("testing {} changed file(s)", self.files.len()),
        );
        let changes: Vec<tester::Change> = self
            .files
            .iter()
            .map(|f| tester::Change {
                path: f.path.clone(),
                before: f.before.clone(),
                after: f.after.clone(),
            })
            .collect();
        let root = self.env.root.clone();
        let settings = self.env.config.tester.clone();
        let secret_env: Vec<String> = crate::llm::AgentRole::ALL
            .iter()
            .filter_map(|role| self.env.config.model.for_agent(*role).api_key_env)
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (cancel, stop) = (self.cancel.clone(), stop.clone());
            tokio::spawn(async move {
                cancel.cancelled().await;
                stop.store(true, Ordering::SeqCst);
            })
        };
        let flag = stop.clone();
        let report = crate::util::background(move || {
            tester::run(
                &tester::TestRequest {
                    root: &root,
                    settings: &settings,
                    secret_env: &secret_env,
                    cancel: &flag,
                },
                &changes,
            )
        })
        .await;
        watcher.abort();
        let report =
            report.map_err(|e| Halt::Failed(format!("the tester stopped unexpectedly: {e}")))?;
        self.check()?;
        self.journal.record(Event::TestRun {
            round,
            status: report.status.as_str().into(),
            command: report.command.clone(),
            sandbox: report.sandbox.clone(),
            passed: report.passed.len(),
            failed: report.failed.iter().map(|f| f.name.clone()).collect(),
            failed_before: report.failed_before.clone(),
            flaky: report.flaky.clone(),
            weakened: report.weakened.clone(),
            dropped_lines: report.dropped_lines.len(),
            elapsed_ms: report.elapsed_ms,
        });
        self.env.editor.progress(
            RunState::Testing.as_str(),
            &format!("run {}: testing: {}", self.id, report.message),
            None,
        );
        self.tests = TestOutcome::from(report);
        Ok(())
    }

    /// A fix run's plan: one step per finding of the paths.
    async fn plan_fix(&mut self) -> Result<Vec<fix::FixTarget>, Halt> {
        let root = self.env.root.clone();
        let paths = if self.request.paths.is_empty() {
            vec![root.clone()]
        } else {
            self.request.paths.clone()
        };
        let settings = self.env.config.security.clone();
        let scan_root = root.clone();
        let report =
            super::heavy(move || crate::security::scan_paths_in(&scan_root, &paths, &settings))
                .await
                .map_err(|e| Halt::Failed(format!("the scan stopped unexpectedly: {e}")))?
                .map_err(|e| Halt::Failed(format!("cannot scan: {e:#}")))?;
        let (plan, targets) = fix::plan(&report, &root);
        self.journal.record(Event::Plan {
            source: "findings".into(),
            plan: plan.clone(),
        });
        self.plan = Some(plan);
        self.plan_source = Some("findings".into());
        // The scanned texts, to know whether a file changed before its fixes apply.
        let texts: HashMap<PathBuf, String> = report
            .files
            .into_iter()
            .filter(|f| !f.findings.is_empty())
            .map(|f| {
                let real = f.path.canonicalize().unwrap_or_else(|_| root.join(&f.path));
                (real, f.text)
            })
            .collect();
        self.scanned = texts;
        Ok(targets)
    }

    async fn plan_goal(&mut self, selection: Option<String>) -> Result<(), Halt> {
        if let Some(follow) = self.request.follow.clone() {
            // The developer's edited plan replaces the planner: what they changed is journalled
            // first, so the journal says why this run's plan differs from the one it came from.
            self.journal.record(Event::PlanEdited {
                from_run: follow.from_run.clone(),
                changes: follow.changes.clone(),
            });
            for step in &follow.skipped {
                let reason = format!("unticked in the plan document of run {}", follow.from_run);
                self.journal.record(Event::StepSkipped {
                    step: step.clone(),
                    reason: reason.clone(),
                });
                self.skipped.push(SkippedStep {
                    step: step.clone(),
                    reason,
                });
            }
            self.journal.record(Event::Plan {
                source: "edited".into(),
                plan: follow.plan.clone(),
            });
            self.plan = Some(follow.plan);
            self.plan_source = Some("edited".into());
            return Ok(());
        }
        if self.request.no_plan {
            let targets = self
                .request
                .selection
                .as_ref()
                .map(|s| vec![relative(&self.env.root, &s.file)])
                .unwrap_or_default();
            let plan = Plan {
                summary: self.request.goal.clone(),
                steps: vec![PlanStep {
                    id: "s1".into(),
                    title: self.request.goal.clone(),
                    agent: StepAgent::Coder,
                    targets,
                    depends_on: Vec::new(),
                }],
                risks: Vec::new(),
                tradeoffs: Vec::new(),
            };
            self.journal.record(Event::Plan {
                source: "single step".into(),
                plan: plan.clone(),
            });
            self.plan = Some(plan);
            self.plan_source = Some("single step".into());
            return Ok(());
        }
        let client = self.client(AgentRole::Planner)?;
        let context = self.context(None).await;
        let files = self
            .env
            .index
            .as_ref()
            .map(|index| {
                let mut files: Vec<String> = index
                    .files()
                    .map(|(_, f)| relative(std::path::Path::new(""), &f.path))
                    .collect();
                files.sort();
                files.truncate(self.env.config.run.max_plan_files);
                files
            })
            .unwrap_or_default();
        let input = PlannerInput {
            goal: self.request.goal.clone(),
            selection,
            context,
            files,
        };
        let asked = Instant::now();
        let answer = planner::plan(&client, &self.model_run, &input).await;
        let plan = self.answered(&client, None, asked, answer)?;
        self.journal.record(Event::Plan {
            source: "model".into(),
            plan: plan.clone(),
        });
        self.plan = Some(plan);
        self.plan_source = Some("model".into());
        Ok(())
    }

    fn client(&self, role: AgentRole) -> Result<ModelClient, Halt> {
        match &self.env.models {
            Some(models) => Ok(models.for_agent(role).clone()),
            None => Err(Halt::Failed(format!(
                "no model is configured for the {role} agent: set `[model] base_url` and `model` in conductor.toml (see docs/providers.md), then check it with `conductor doctor`"
            ))),
        }
    }

    /// Journals one model response of `agent` (metadata only: model, latency, tokens, cost).
    fn journal_response(
        &self,
        agent: AgentRole,
        client: &ModelClient,
        step: Option<&str>,
        r: &ChatResponse,
    ) {
        self.journal
            .record(super::response_event(agent, client, step, r));
    }

    /// Journals an agent's responses (or its failure) and turns a failure into the run's end.
    fn answered<T>(
        &self,
        client: &ModelClient,
        step: Option<&str>,
        asked: Instant,
        answer: Result<crate::agents::Answer<T>, AskError>,
    ) -> Result<T, Halt> {
        let journal_responses = |responses: &[ChatResponse], agent: AgentRole| {
            for r in responses {
                self.journal_response(agent, client, step, r);
            }
        };
        match answer {
            Ok(answer) => {
                let agent = match step {
                    None => AgentRole::Planner,
                    Some(_) => AgentRole::Coder,
                };
                journal_responses(&answer.responses, agent);
                Ok(answer.value)
            }
            Err(AskError::Invalid {
                agent,
                error,
                responses,
            }) => {
                journal_responses(&responses, agent);
                Err(Halt::Failed(format!(
                    "the {agent} model's reply did not follow the protocol, even after a corrective retry ({error}); nothing was applied. A stronger model for this agent (`[model.agents.{agent}]`) usually helps"
                )))
            }
            Err(AskError::Model(err)) => {
                let agent = match step {
                    None => AgentRole::Planner,
                    Some(_) => AgentRole::Coder,
                };
                self.journal.record(Event::ModelRequest {
                    agent: agent.as_str().into(),
                    provider: client.name().into(),
                    model: client.settings().model.clone(),
                    step: step.map(str::to_string),
                    latency_ms: asked.elapsed().as_millis() as u64,
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    cost_usd: 0.0,
                    redacted: 0,
                    attempts: 0,
                    outcome: err.to_string(),
                });
                Err(match err {
                    LlmError::Cancelled => self.halt_for_stop(),
                    LlmError::Budget(exceeded) => Halt::Failed(format!(
                        "the run's budget would be exceeded: {exceeded}; nothing was applied"
                    )),
                    other => Halt::Failed(format!(
                        "the {agent} model failed: {other}; nothing was applied. `conductor doctor` checks the provider"
                    )),
                })
            }
        }
    }

    /// The context bundle of the run's selection, rendered as a prompt and journalled; built on
    /// the blocking pool, and built again only when the selection's file changed in the copy.
    async fn context(&mut self, step: Option<&str>) -> String {
        let (Some(index), Some(selection)) =
            (self.env.index.clone(), self.request.selection.clone())
        else {
            return String::new();
        };
        let Some(text) = self.overlay.text(&selection.file).ok().flatten() else {
            return String::new();
        };
        let key = crate::editor::text_hash(text.as_bytes());
        let bundle = match &self.bundle {
            Some((k, bundle)) if *k == key => Some(bundle.clone()),
            _ => {
                let range = match selection.lines {
                    Some((a, b)) => line_start(&text, a)..line_start(&text, b + 1),
                    None => 0..0,
                };
                let request = BundleRequest {
                    file: selection.file.clone(),
                    text: Some(text),
                    tree: None,
                    range,
                    goal: Some(self.request.goal.clone()),
                    budget: None,
                };
                match super::heavy(move || build_bundle(&index, &request)).await {
                    Ok(Ok(bundle)) => {
                        let bundle = Arc::new(bundle);
                        self.bundle = Some((key, bundle.clone()));
                        Some(bundle)
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(run = %self.id, "no context bundle: {err:#}");
                        None
                    }
                    Err(err) => {
                        tracing::warn!(run = %self.id, "the context bundle build stopped: {err}");
                        None
                    }
                }
            }
        };
        let Some(bundle) = bundle else {
            return String::new();
        };
        self.journal.record(super::context_event(step, &bundle));
        bundle.to_prompt()
    }

    /// The plan's coder steps in dependency order; tester and security steps are done by the
    /// test and review stages.
    async fn code_plan(&mut self) -> Result<(), Halt> {
        let Some(plan) = self.plan.clone() else {
            return Ok(());
        };
        let mut done: HashSet<String> = HashSet::new();
        let mut order: Vec<PlanStep> = Vec::new();
        // `parse_plan` rejected cycles and unknown ids, so this always finishes; the bound is
        // for a plan that reached here some other way.
        for _ in 0..=plan.steps.len() {
            for step in &plan.steps {
                if !done.contains(&step.id) && step.depends_on.iter().all(|d| done.contains(d)) {
                    done.insert(step.id.clone());
                    order.push(step.clone());
                }
            }
        }
        if order.len() != plan.steps.len() {
            return Err(Halt::Failed(
                "the plan's steps depend on each other in a cycle; nothing was applied".into(),
            ));
        }
        let coder_steps = order.iter().filter(|s| s.agent == StepAgent::Coder).count();
        let mut coded = 0;
        for step in order {
            self.check()?;
            match step.agent {
                StepAgent::Coder => {
                    coded += 1;
                    self.stage(
                        RunState::Coding,
                        format!("coding {coded}/{coder_steps}: {} ({})", step.title, step.id),
                    );
                    self.code_step(&step, &self.request.goal.clone(), Vec::new())
                        .await?
                }
                StepAgent::Tester | StepAgent::Security => {
                    let stage = if step.agent == StepAgent::Tester {
                        "test"
                    } else {
                        "review"
                    };
                    self.journal.record(Event::StepSkipped {
                        step: step.id.clone(),
                        reason: format!("done by the run's {stage} stage"),
                    });
                }
            }
        }
        Ok(())
    }

    /// A fix run's coding: mechanical fixes per file, then the coder (or "needs a model").
    async fn code_fixes(&mut self, targets: Vec<fix::FixTarget>) -> Result<(), Halt> {
        let mut by_file: Vec<(PathBuf, Vec<fix::FixTarget>)> = Vec::new();
        for t in targets {
            match by_file.iter_mut().find(|(p, _)| *p == t.real) {
                Some((_, list)) => list.push(t),
                None => by_file.push((t.real.clone(), vec![t])),
            }
        }
        let mut needs_coder = Vec::new();
        for (real, targets) in by_file {
            self.check()?;
            let scanned = self.scanned.get(&real).cloned().unwrap_or_default();
            self.member
                .claim_file(&real)
                .map_err(|why| Halt::Failed(format!("{why}; nothing was applied")))?;
            let applied =
                fix::apply_mechanical(&self.overlay, &scanned, targets, &self.env.config.security);
            for b in &applied.blocks {
                self.journal_block(b, None);
            }
            for d in &applied.decisions {
                self.journal_decision(d);
            }
            self.blocks.extend(applied.blocks);
            self.decisions.extend(applied.decisions);
            needs_coder.extend(applied.needs_coder);
        }
        for target in needs_coder {
            self.check()?;
            if self.env.models.is_none() {
                let reason = format!(
                    "needs a model: {} has no mechanical fix. Configure a model (`[model] base_url` and `model` in conductor.toml, see docs/providers.md; `conductor doctor` checks it) and run `conductor fix` again",
                    target.finding.rule_id
                );
                self.journal.record(Event::StepSkipped {
                    step: target.step.id.clone(),
                    reason: reason.clone(),
                });
                self.skipped.push(SkippedStep {
                    step: target.step.id.clone(),
                    reason,
                });
                continue;
            }
            self.stage(
                RunState::Coding,
                format!("step {}: {}", target.step.id, target.step.title),
            );
            let goal = target.goal();
            self.code_step(&target.step, &goal, Vec::new()).await?;
        }
        Ok(())
    }

    /// Removes the `// conductor: <goal>` line the goal came from, when the run changed
    /// something and the coder left the line in: the goal is done, the comment has served.
    fn remove_goal_line(&mut self) {
        let (Some(line), Some(selection)) = (&self.request.remove_line, &self.request.selection)
        else {
            return;
        };
        if self.overlay.changes().is_empty() {
            return;
        }
        let Ok(Some(text)) = self.overlay.text(&selection.file) else {
            return;
        };
        let wanted = line.trim();
        let mut at = 0;
        let mut found = None;
        for (n, l) in text.split_inclusive('\n').enumerate() {
            if l.trim() == wanted {
                found = Some((n + 1, at..at + l.len()));
                break;
            }
            at += l.len();
        }
        let Some((number, range)) = found else {
            return;
        };
        let mut after = text.clone();
        after.replace_range(range, "");
        self.overlay.set(&selection.file, after);
        let file = relative(&self.env.root, &selection.file);
        let record = BlockRecord {
            step: "goal-comment".into(),
            attempt: 1,
            index: 1,
            file: file.clone(),
            status: "applied".into(),
            lines: Some([number, number]),
            reason: None,
        };
        self.journal_block(&record, None);
        self.blocks.push(record);
        let decision = DecisionRecord {
            step: "goal-comment".into(),
            block: 1,
            file,
            agent: "conductor".into(),
            model: "goal comment".into(),
            summary: "Remove the goal comment the run was started from".into(),
            rationale: format!(
                "The run implemented `{wanted}`; the comment has served its purpose."
            ),
            alternatives: Vec::new(),
            tradeoffs: Vec::new(),
        };
        self.journal_decision(&decision);
        self.decisions.push(decision);
    }

    fn next_attempt(&mut self, step: &str) -> u32 {
        let n = self.attempts.entry(step.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    /// The files a step may change: its targets that name a workspace path (`src/a.rs`,
    /// `src/a.rs:10-20`, `src/a.rs::item`), else the selection's file.
    fn step_files(&self, step: &PlanStep) -> Vec<(String, PathBuf)> {
        let Some(workspace) = &self.workspace else {
            return Vec::new();
        };
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for target in &step.targets {
            let path = target.split("::").next().unwrap_or(target);
            let path = path
                .rsplit_once(':')
                .filter(|(_, tail)| tail.chars().all(|c| c.is_ascii_digit() || c == '-'))
                .map_or(path, |(head, _)| head)
                .trim();
            let looks_like_path = path.contains('/') || path.contains('.');
            if !looks_like_path {
                continue;
            }
            if let Ok(confined) = workspace.confine(path)
                && !files.iter().any(|(_, real)| *real == confined.real)
            {
                files.push((confined.relative, confined.real));
            }
        }
        if files.is_empty()
            && let Some(selection) = &self.request.selection
        {
            files.push((
                relative(&self.env.root, &selection.file),
                selection.file.clone(),
            ));
        }
        files
    }

    /// One coder step: ask, apply to the copy, and on refusals ask once more with the reasons.
    async fn code_step(
        &mut self,
        step: &PlanStep,
        goal: &str,
        mut feedback: Vec<String>,
    ) -> Result<(), Halt> {
        let client = self.client(AgentRole::Coder)?;
        let Some(workspace) = self.workspace.clone() else {
            return Err(Halt::Failed("the workspace root cannot be resolved".into()));
        };
        let plan_summary = self
            .plan
            .as_ref()
            .map(|p| p.summary.clone())
            .unwrap_or_default();
        let context = self.context(Some(&step.id)).await;
        for retry in 0..2 {
            self.check()?;
            let files = self
                .step_files(step)
                .into_iter()
                .map(|(path, real)| match self.overlay.text(&real) {
                    Ok(text) => Ok(TargetFile { path, text }),
                    Err(err) => Err(Halt::Failed(format!(
                        "step {}: {path} cannot be shown to the coder: {err}; nothing was applied",
                        step.id
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let input = CoderInput {
                goal: goal.to_string(),
                plan_summary: plan_summary.clone(),
                step: step.clone(),
                files,
                context: context.clone(),
                feedback: feedback.clone(),
            };
            let attempt = self.next_attempt(&step.id);
            let asked = Instant::now();
            let answer = coder::code(&client, &self.model_run, &input).await;
            let reply = self.answered(&client, Some(&step.id), asked, answer)?;
            self.check()?;
            let planned = plan_blocks(
                &workspace,
                &reply.edits,
                &self.overlay,
                &self.model_run.redactor,
            );
            let mut refused = Vec::new();
            let mut applied = Vec::new();
            for outcome in &planned.blocks {
                let record = BlockRecord {
                    step: step.id.clone(),
                    attempt,
                    index: outcome.index,
                    file: outcome.file.clone(),
                    status: match outcome.status {
                        BlockStatus::Applied { .. } => "applied",
                        BlockStatus::Noop => "noop",
                        BlockStatus::Refused(_) => "refused",
                    }
                    .into(),
                    lines: match &outcome.status {
                        BlockStatus::Applied { after, .. } => Some([after.first, after.last]),
                        _ => None,
                    },
                    reason: match &outcome.status {
                        BlockStatus::Refused(_) => outcome.reason(),
                        _ => None,
                    },
                };
                self.journal_block(&record, outcome.base_hash.clone());
                match &outcome.status {
                    BlockStatus::Refused(_) => refused.push(format!(
                        "block {} ({}) was not applied: {}",
                        outcome.index,
                        outcome.file,
                        outcome.reason().unwrap_or_default()
                    )),
                    BlockStatus::Applied { .. } => {
                        applied.push(format!("block {} ({})", outcome.index, outcome.file))
                    }
                    BlockStatus::Noop => {}
                }
                if matches!(outcome.status, BlockStatus::Applied { .. })
                    && let Some(d) = reply.decisions.iter().find(|d| d.block == outcome.index)
                {
                    let decision = DecisionRecord {
                        step: step.id.clone(),
                        block: outcome.index,
                        file: outcome.file.clone(),
                        agent: "coder".into(),
                        model: client.settings().model.clone(),
                        summary: d.summary.clone(),
                        rationale: d.rationale.clone(),
                        alternatives: d.alternatives.clone(),
                        tradeoffs: d.tradeoffs.clone(),
                    };
                    self.journal_decision(&decision);
                    self.decisions.push(decision);
                }
                self.blocks.push(record);
            }
            // Applied blocks stay in the copy; the retry quotes the files as they are now.
            for file in &planned.files {
                self.member.claim_file(&file.path.real).map_err(|why| {
                    Halt::Failed(format!("step {}: {why}; nothing was applied", step.id))
                })?;
                self.overlay.set(&file.path.real, file.after.clone());
            }
            if refused.is_empty() {
                return Ok(());
            }
            if retry == 1 {
                return Err(Halt::Failed(format!(
                    "step {}: {} edit block(s) could not be applied, even after a retry: {}; nothing was applied",
                    step.id,
                    refused.len(),
                    refused.join("; ")
                )));
            }
            feedback.extend(refused);
            if !applied.is_empty() {
                feedback.push(format!(
                    "These blocks did apply and are now part of the files shown: {}",
                    applied.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn journal_block(&self, b: &BlockRecord, base_hash: Option<String>) {
        let base_hash = base_hash.or_else(|| {
            self.workspace
                .as_ref()
                .and_then(|w| w.confine(&b.file).ok())
                .and_then(|c| match self.overlay.base(&c.real) {
                    Some(crate::editor::Base::Disk { hash }) => Some(hash),
                    _ => None,
                })
        });
        self.journal.record(Event::EditBlock {
            step: b.step.clone(),
            attempt: b.attempt,
            index: b.index,
            file: b.file.clone(),
            base_hash,
            status: b.status.clone(),
            lines: b.lines,
            reason: b.reason.clone(),
        });
    }

    fn journal_decision(&self, d: &DecisionRecord) {
        self.journal.record(Event::Decision {
            step: d.step.clone(),
            block: d.block,
            file: d.file.clone(),
            agent: d.agent.clone(),
            model: d.model.clone(),
            summary: d.summary.clone(),
            rationale: d.rationale.clone(),
            alternatives: d.alternatives.clone(),
            tradeoffs: d.tradeoffs.clone(),
        });
    }

    /// Hands the change to the editor port as one change set, re-anchored on what the user has
    /// now (see [`present`]): a file whose text changed on disk, or that was deleted, is left out
    /// and reported; a hunk the user typed over is left out and reported; the rest goes to the
    /// editor with one note per hunk (its decision, the review's verdict, the tests).
    async fn apply(&mut self) -> Result<(), Halt> {
        self.check()?;
        let explain = present::Explain {
            run_id: &self.id,
            goal: &self.request.goal,
            blocks: &self.blocks,
            decisions: &self.decisions,
            findings: &self.findings,
            tests: &self.tests,
        };
        let mut notes = Vec::new();
        let mut sent: Vec<usize> = Vec::new();
        let mut changes = Vec::new();
        let mut results: Vec<(usize, Result<(), String>)> = Vec::new();
        let mut refused_hunks = Vec::new();
        // Per file sent: the text its edits apply to and the decision behind each edit.
        let mut placing = Vec::new();
        for (i, file) in self.files.iter().enumerate() {
            let current = self.env.editor.current(&file.real);
            let anchored = present::anchor(file, current, &explain, &mut notes);
            for r in &anchored.refused {
                refused_hunks.push(format!(
                    "{}:{}-{}: {}",
                    file.path, r.lines.0, r.lines.1, r.reason
                ));
            }
            match anchored.change {
                Ok(change) => {
                    sent.push(i);
                    placing.push((anchored.text, anchored.decisions));
                    changes.push(change);
                }
                Err(why) => results.push((i, Err(why))),
            }
        }
        for refusal in &refused_hunks {
            self.journal.record(Event::HunkRefused {
                reason: refusal.clone(),
            });
        }
        self.refused_hunks = refused_hunks;
        if !changes.is_empty() {
            let change = ChangeSet {
                label: format!("Conductor run {}: {}", self.id, self.request.goal.trim()),
                description: self
                    .plan
                    .as_ref()
                    .map(|p| p.summary.clone())
                    .unwrap_or_default(),
                needs_confirmation: self.env.config.run.confirm,
                notes,
                files: changes,
            };
            let result = match self.env.editor.apply(&change, &self.cancel).await {
                Applied::Applied => Ok(()),
                Applied::Refused(why) => Err(why),
                Applied::Cancelled => return Err(self.halt_while_editor_holds(&sent)),
            };
            if result.is_ok() {
                self.journal_anchors(&sent, &change, &placing);
            }
            results.extend(sent.iter().map(|&i| (i, result.clone())));
        }
        results.sort_by_key(|(i, _)| *i);
        for (i, result) in results {
            self.journal.record(Event::Applied {
                file: self.files[i].path.clone(),
                result: match &result {
                    Ok(()) => "applied".into(),
                    Err(why) => why.clone(),
                },
            });
            self.files[i].applied = Some(result);
        }
        Ok(())
    }

    /// Journals where each applied hunk now lies, with its decision and the text it replaced:
    /// the anchors that hovers, lenses, revert and `conductor explain` read.
    fn journal_anchors(
        &self,
        sent: &[usize],
        change: &ChangeSet,
        placing: &[(String, Vec<present::HunkDecision>)],
    ) {
        let mut hunk = 0;
        for ((&i, file), (text, decisions)) in sent.iter().zip(&change.files).zip(placing) {
            let Some((after, placed)) = present::place(text, &file.edits) else {
                tracing::warn!(run = %self.id, file = %self.files[i].path, "the applied edits do not place on their text; no anchors for this file");
                continue;
            };
            let file_hash = crate::editor::text_hash(after.as_bytes());
            for (p, (decision, summary)) in placed.into_iter().zip(decisions) {
                hunk += 1;
                self.journal.record(Event::Anchored {
                    hunk,
                    file: self.files[i].path.clone(),
                    lines: p.lines,
                    hash: crate::editor::text_hash(p.written.as_bytes()),
                    written: p.written,
                    original: p.original,
                    file_hash: file_hash.clone(),
                    context_before: p.before,
                    context_after: p.after,
                    step: decision.as_ref().map(|(step, _)| step.clone()),
                    block: decision.as_ref().map(|(_, block)| *block),
                    summary: summary.clone(),
                });
            }
        }
    }

    /// `run.present = "preview"`: the change as a unified diff beside the journal, shown in the
    /// editor; nothing is edited.
    async fn preview(&mut self) -> Result<String, Halt> {
        let diff: String = self.files.iter().map(ChangedFile::diff).collect();
        let path = self
            .journal
            .write_beside("change.diff", &diff)
            .map_err(|e| Halt::Failed(format!("cannot write the change's diff: {e}")))?;
        let shown = self.env.editor.show(&path).await;
        Ok(format!(
            "; preview only (`run.present = \"preview\"`): the diff is in {}{}",
            path.display(),
            if shown { " (opened)" } else { "" }
        ))
    }

    /// The end of a run stopped while the editor held its change (a preview the user had not
    /// answered). The change is one edit the editor applies whole or not at all, and the
    /// editor may still apply it if the user accepts it there; the message names the files so
    /// the user can check, rather than claiming that nothing was applied.
    fn halt_while_editor_holds(&self, handed: &[usize]) -> Halt {
        let names = handed
            .iter()
            .map(|&i| self.files[i].path.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let why = match self.stop.load(Ordering::SeqCst) {
            STOP_WALL_CLOCK => format!(
                "the run reached its wall-clock limit of {} s",
                self.env.config.run.wall_clock_secs
            ),
            _ => "the run was cancelled".to_string(),
        };
        let message = format!(
            "{why} while the editor held its change to {names}, unanswered; if you accept it there it still applies, whole. Check those files (the journal lists the change)"
        );
        for &i in handed {
            self.journal.record(Event::Applied {
                file: self.files[i].path.clone(),
                result: "unknown: the run stopped while the editor held the change".into(),
            });
        }
        match self.stop.load(Ordering::SeqCst) {
            STOP_WALL_CLOCK => Halt::Failed(message),
            _ => Halt::Cancelled(message),
        }
    }

    fn usage(&self) -> UsageTotals {
        let total = self.model_run.budget.total();
        UsageTotals {
            prompt_tokens: total.input_tokens,
            completion_tokens: total.output_tokens,
            cost_usd: total.cost_usd,
        }
    }

    fn finish(mut self, result: Result<String, Halt>) -> RunOutcome {
        let (state, message) = match result {
            Ok(message) => (RunState::Done, message),
            Err(Halt::Failed(message)) => (RunState::Failed, message),
            Err(Halt::Cancelled(message)) => (RunState::Cancelled, message),
        };
        if state != RunState::Done {
            // Nothing of a failed or cancelled run is presented (a change the editor still
            // holds is named in the message).
            self.files.retain(|f| matches!(f.applied, Some(Ok(()))));
        }
        let usage = self.usage();
        self.stage(state, message.clone());
        self.journal.record(Event::Outcome {
            state,
            message: message.clone(),
            files: self.files.iter().map(|f| f.path.clone()).collect(),
            usage,
        });
        tracing::info!(run = %self.id, %state, elapsed_ms = self.started.elapsed().as_millis() as u64, "run ended");
        RunOutcome {
            run_id: self.id,
            state,
            message,
            plan: self.plan,
            plan_source: self.plan_source,
            plan_file: self.plan_file,
            files: self.files,
            refused_hunks: self.refused_hunks,
            blocks: self.blocks,
            decisions: self.decisions,
            findings: self.findings,
            model_review: self.model_review,
            skipped: self.skipped,
            tests: self.tests,
            usage,
            journal: self.journal.path().to_path_buf(),
        }
    }
}

/// How the presenting stage's writes went, for the run's message: ", applied" when every file
/// was written, else which files were not and what to do, so that a refused file is never
/// reported as applied.
fn applied_summary(files: &[ChangedFile], refused_hunks: &[String]) -> String {
    let hunks = if refused_hunks.is_empty() {
        String::new()
    } else {
        format!(
            "; {} hunk(s) not applied because you changed their lines while the run worked: {}",
            refused_hunks.len(),
            refused_hunks.join("; ")
        )
    };
    let refused: Vec<String> = files
        .iter()
        .filter_map(|f| match &f.applied {
            Some(Err(why)) => Some(format!("{} ({why})", f.path)),
            _ => None,
        })
        .collect();
    if refused.is_empty() {
        return format!(", applied{hunks}");
    }
    format!(
        "; {} of {} file(s) applied; not applied: {}{hunks}. Run again to compute the change against the files as they are now",
        files.len() - refused.len(),
        files.len(),
        refused.join("; ")
    )
}

/// A token count for a progress line: `950`, `4.1k`, `1.2M`.
fn short_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// The byte offset where 1-based `line` starts (the end of the text past the last line).
fn line_start(text: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    text.match_indices('\n')
        .nth(line - 2)
        .map_or(text.len(), |(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_start_where_the_text_says_and_past_the_end_at_its_end() {
        assert_eq!(line_start("a\nb\nc\n", 2), 2);
        assert_eq!(line_start("a\nb\nc\n", 9), 6);
    }
}
