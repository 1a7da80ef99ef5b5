//! A run's story, read back from its journal: what was asked, planned, decided, reviewed,
//! tested and applied, what it cost, and how far a person has reviewed it — the data behind
//! `conductor explain --run ID`, and its text, markdown and JSON renderings.
//!
//! A decision is an anchored hunk ([`Event::Anchored`], id `<run id>#<hunk>`): the story groups
//! a run's hunks under the `Decision` event they carry, joined by (step, block, file). Review
//! marks and reverts are appended after the run ended; the latest one per hunk wins.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Event, ManifestItem, Read, Record, RunState, UsageTotals};
use crate::llm::protocol::Plan;

/// How many items of each context bundle the story lists (the rest are counted).
const TOP_ITEMS: usize = 5;

/// The name of the story document beside the journal: `.conductor/runs/<id>/story.md`.
pub const STORY_FILE: &str = "story.md";

/// A run's whole story.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Story {
    /// The run's id (from `run_started`, else the journal's file name).
    pub run_id: String,
    /// `goal`, `fix` or `explain`.
    pub kind: String,
    /// What the developer asked for.
    pub goal: String,
    /// The file and lines the run was started on.
    pub selection: Option<String>,
    /// The last known state.
    pub state: RunState,
    /// Whether the run recorded its outcome; a run that did not is still going, or its process
    /// ended mid-run.
    pub ended: bool,
    /// When it started, milliseconds since the epoch.
    pub started_ms: Option<u64>,
    /// When it ended.
    pub ended_ms: Option<u64>,
    /// From start to end (for an unfinished run: to its last event).
    pub duration_ms: Option<u64>,
    /// When its last event was written (a review mark or revert may come after the end).
    pub last_event_ms: Option<u64>,
    /// The journal it was read from.
    pub journal: PathBuf,
    /// The plan, and where it came from.
    pub plan: Option<PlanRecord>,
    /// The developer's edits to the plan this run followed.
    pub plan_edits: Vec<PlanEdit>,
    /// One per context bundle an agent was given.
    pub context: Vec<ContextSummary>,
    /// Every decision, in the order the run made them.
    pub decisions: Vec<StoryDecision>,
    /// Edit blocks that could not be applied.
    pub refused_blocks: Vec<RefusedBlock>,
    /// Steps the run did not do, and why.
    pub skipped_steps: Vec<SkippedStep>,
    /// What went back to the coder in each improve round.
    pub feedback: Vec<FeedbackRound>,
    /// The review of the change.
    pub review: ReviewSummary,
    /// The tests of the change.
    pub tests: TestsSummary,
    /// Tokens and cost.
    pub usage: UsageSummary,
    /// Each file of the change as the editor (or the command line) applied it, or not.
    pub applied: Vec<AppliedFile>,
    /// Hunks left out because the user changed their lines while the run worked.
    pub refused_hunks: Vec<String>,
    /// Explanations of existing code the run wrote.
    pub explanations: Vec<StoryExplanation>,
    /// The outcome's message for the user.
    pub outcome: Option<String>,
    /// The files the change touches.
    pub files: Vec<String>,
    /// How far a person has reviewed the run's decisions.
    pub review_state: ReviewState,
    /// One per journal line that could not be read (cut off, or from a newer Conductor).
    pub warnings: Vec<String>,
}

/// The plan as the run followed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanRecord {
    /// `model`, `findings`, `single step` or `edited`.
    pub source: String,
    /// The plan.
    pub plan: Plan,
}

/// The developer's edits to an earlier run's plan document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanEdit {
    /// The run whose plan was edited.
    pub from_run: String,
    /// The changes, in words.
    pub changes: Vec<String>,
}

/// One context bundle, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextSummary {
    /// The step it was for (`None`: the planner's).
    pub step: Option<String>,
    /// The file it is centred on.
    pub file: String,
    /// Its tokens.
    pub tokens: usize,
    /// Its budget.
    pub budget: usize,
    /// How many items it had.
    pub items: usize,
    /// How many of each kind.
    pub by_kind: BTreeMap<String, usize>,
    /// Its first items, in the bundle's (ranked) order.
    pub top: Vec<ManifestItem>,
}

/// One decision: why one block was written, and the hunks of the change that carry it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoryDecision {
    /// The plan step (`None`: a hunk no block explains).
    pub step: Option<String>,
    /// The block of that step, 1-based.
    pub block: Option<usize>,
    /// The file.
    pub file: String,
    /// `coder`, or `rule` for a mechanical fix (`None`: no decision was journalled).
    pub agent: Option<String>,
    /// The model, or the rule id.
    pub model: Option<String>,
    /// What the change does.
    pub summary: String,
    /// Why this way.
    pub rationale: Option<String>,
    /// What else was considered.
    pub alternatives: Vec<String>,
    /// What was traded for what.
    pub tradeoffs: Vec<String>,
    /// The hunks of the applied change that carry it (none: the change was not applied in an
    /// editor, or not at all).
    pub hunks: Vec<StoryHunk>,
    /// The final review's findings on its lines.
    pub findings: Vec<StoryFinding>,
}

/// One anchored hunk and what a person did with it since.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoryHunk {
    /// `<run id>#<hunk>`.
    pub id: String,
    /// The hunk's number in the run, from 1.
    pub hunk: usize,
    /// Relative path.
    pub file: String,
    /// 1-based inclusive lines after the change (`[l, l - 1]`: lines removed before `l`).
    pub lines: [usize; 2],
    /// The hunk's one-line summary.
    pub summary: String,
    /// Whether its latest review mark says reviewed.
    pub reviewed: bool,
    /// When the latest review mark was set (or taken back).
    pub reviewed_ms: Option<u64>,
    /// Where the latest mark was made (`editor`, `cli`).
    pub reviewed_by: Option<String>,
    /// Whether its latest applied revert or re-apply left it reverted.
    pub reverted: bool,
    /// The latest revert or re-apply attempted on it, applied or not.
    pub last_revert: Option<RevertMark>,
}

/// A revert or re-apply of a hunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevertMark {
    /// `revert` or `reapply`.
    pub action: String,
    /// `applied`, or why not.
    pub result: String,
    /// When.
    pub at_ms: u64,
}

/// A finding of the review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoryFinding {
    /// Relative path.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The rule (`model/CWE-…` for a model finding).
    pub rule_id: String,
    /// Its severity.
    pub severity: String,
    /// What is wrong.
    pub message: String,
    /// `new`, `fixed` or `remaining`.
    pub status: String,
}

/// An edit block that could not be applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefusedBlock {
    /// The step.
    pub step: String,
    /// The coder attempt.
    pub attempt: u32,
    /// The block's number in its reply.
    pub index: usize,
    /// The file.
    pub file: String,
    /// Why.
    pub reason: Option<String>,
}

/// A step the run did not do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedStep {
    /// The step.
    pub step: String,
    /// Why, and what to do.
    pub reason: String,
}

/// What one improve round sent back to the coder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackRound {
    /// The round, from 1.
    pub round: u32,
    /// What the coder was told.
    pub summary: String,
}

/// The final review of the change.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReviewSummary {
    /// Findings the change introduced.
    pub new: usize,
    /// Findings the change removed.
    pub fixed: usize,
    /// Findings the change left (a fix run).
    pub remaining: usize,
    /// The findings of the last review round.
    pub findings: Vec<StoryFinding>,
    /// The model review of each round.
    pub model: Vec<ModelReviewRound>,
}

/// One round of the model review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReviewRound {
    /// The improve round (0: the first change).
    pub round: u32,
    /// `done` or `skipped`.
    pub status: String,
    /// Findings the model proposed.
    pub proposed: usize,
    /// Findings kept after the refutation check.
    pub kept: usize,
    /// Why it was skipped, or a summary.
    pub message: String,
}

/// The tests of the change.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TestsSummary {
    /// The final test stage's status (`skipped`, `passed`, `failed`).
    pub status: Option<String>,
    /// What happened, or why it did not run.
    pub message: Option<String>,
    /// Every run of the tester.
    pub runs: Vec<TestRunSummary>,
}

/// One run of the tester.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestRunSummary {
    /// The improve round it tested.
    pub round: u32,
    /// `passed`, `failed`, `failed_before`, `skipped` or `error`.
    pub status: String,
    /// The command.
    pub command: Vec<String>,
    /// The sandbox.
    pub sandbox: String,
    /// Tests that passed.
    pub passed: usize,
    /// Tests the change broke.
    pub failed: Vec<String>,
    /// Tests that failed before the change too.
    pub failed_before: Vec<String>,
    /// Tests that failed, then passed on a rerun.
    pub flaky: Vec<String>,
    /// How the change weakens the tests.
    pub weakened: Vec<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Tokens and cost, in total and per agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageSummary {
    /// The run's totals (the outcome's; for an unfinished run, the sum of its requests).
    pub total: UsageTotals,
    /// How many model requests were made.
    pub requests: usize,
    /// Per agent, in the order they first asked.
    pub per_agent: Vec<AgentUsage>,
}

/// One agent's share of the usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentUsage {
    /// `planner`, `coder`, …
    pub agent: String,
    /// The models that answered it.
    pub models: Vec<String>,
    /// Its requests.
    pub requests: usize,
    /// Requests that did not end `ok`.
    pub failed: usize,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// US dollars.
    pub cost_usd: f64,
    /// Milliseconds waited on the model, retries included.
    pub latency_ms: u64,
}

/// A file of the change applied, or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedFile {
    /// Relative path.
    pub file: String,
    /// `applied`, or why not.
    pub result: String,
}

/// An explanation the run wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoryExplanation {
    /// The explained file.
    pub file: String,
    /// Its lines.
    pub lines: [usize; 2],
    /// The explanation in a sentence.
    pub summary: String,
    /// The document.
    pub document: String,
}

/// How far a person has reviewed a run: its decisions (anchored hunks) and how many carry a
/// "reviewed" mark. A run counts as reviewed when all its decisions are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReviewState {
    /// Its decisions.
    pub decisions: usize,
    /// Those marked reviewed.
    pub reviewed: usize,
    /// Whether every decision is reviewed (false for a run without decisions: there is
    /// nothing a person checked).
    pub complete: bool,
    /// When the latest mark was set or taken back.
    pub last_mark_ms: Option<u64>,
}

impl std::fmt::Display for ReviewState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.decisions == 0 {
            f.write_str("no decisions to review")
        } else {
            write!(
                f,
                "reviewed {}/{} decision{}",
                self.reviewed,
                self.decisions,
                if self.decisions == 1 { "" } else { "s" }
            )
        }
    }
}

/// The review marks and reverts of a run's hunks, the latest one per hunk winning.
struct Marks<'a> {
    /// The anchored hunks by number (the latest `anchored` event for a number wins).
    anchored: BTreeMap<usize, &'a Record>,
    /// Per hunk: reviewed or not, when, where.
    reviewed: HashMap<usize, (bool, u64, &'a str)>,
    /// Per hunk: the latest attempt, and whether the latest applied one left it reverted.
    reverted: HashMap<usize, (RevertMark, bool)>,
}

impl<'a> Marks<'a> {
    fn of(records: &'a [Record]) -> Marks<'a> {
        let mut marks = Marks {
            anchored: BTreeMap::new(),
            reviewed: HashMap::new(),
            reverted: HashMap::new(),
        };
        for record in records {
            match &record.event {
                Event::Anchored { hunk, .. } => {
                    marks.anchored.insert(*hunk, record);
                }
                Event::Reviewed {
                    hunks,
                    reviewed,
                    by,
                } => {
                    for hunk in hunks {
                        marks
                            .reviewed
                            .insert(*hunk, (*reviewed, record.at_ms, by.as_str()));
                    }
                }
                Event::Reverted {
                    hunks,
                    action,
                    result,
                } => {
                    for hunk in hunks {
                        let was = marks.reverted.get(hunk).is_some_and(|(_, r)| *r);
                        // A refused attempt changes nothing in the file: the hunk stays as the
                        // last applied action left it.
                        let now = if result == "applied" {
                            action == "revert"
                        } else {
                            was
                        };
                        let mark = RevertMark {
                            action: action.clone(),
                            result: result.clone(),
                            at_ms: record.at_ms,
                        };
                        marks.reverted.insert(*hunk, (mark, now));
                    }
                }
                _ => {}
            }
        }
        marks
    }

    fn state(&self) -> ReviewState {
        let decisions = self.anchored.len();
        let reviewed = self
            .anchored
            .keys()
            .filter(|h| self.reviewed.get(h).is_some_and(|(r, _, _)| *r))
            .count();
        ReviewState {
            decisions,
            reviewed,
            complete: decisions > 0 && reviewed == decisions,
            last_mark_ms: self
                .anchored
                .keys()
                .filter_map(|h| self.reviewed.get(h).map(|(_, at, _)| *at))
                .max(),
        }
    }
}

/// The review state of a run from its records (what `conductor runs` shows).
pub fn review_state(records: &[Record]) -> ReviewState {
    Marks::of(records).state()
}

/// The key a hunk and a decision are joined by.
type DecisionKey = (String, usize, String);

/// Builds the story of the journal at `journal` from what was read of it.
pub fn build(journal: &Path, read: &Read) -> Story {
    let stem = journal
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut story = Story {
        run_id: stem,
        kind: String::new(),
        goal: String::new(),
        selection: None,
        state: RunState::Planning,
        ended: false,
        started_ms: None,
        ended_ms: None,
        duration_ms: None,
        last_event_ms: read.records.iter().map(|r| r.at_ms).max(),
        journal: journal.to_path_buf(),
        plan: None,
        plan_edits: Vec::new(),
        context: Vec::new(),
        decisions: Vec::new(),
        refused_blocks: Vec::new(),
        skipped_steps: Vec::new(),
        feedback: Vec::new(),
        review: ReviewSummary::default(),
        tests: TestsSummary::default(),
        usage: UsageSummary::default(),
        applied: Vec::new(),
        refused_hunks: Vec::new(),
        explanations: Vec::new(),
        outcome: None,
        files: Vec::new(),
        review_state: ReviewState::default(),
        warnings: read.warnings.clone(),
    };
    let mut started = false;
    let mut requested = UsageTotals::default();
    let mut changed: Vec<String> = Vec::new();
    // Decisions by their join key, in the order they were first made; a retry's decision for
    // the same key replaces the earlier one.
    let mut decisions: Vec<StoryDecision> = Vec::new();
    let mut by_key: HashMap<DecisionKey, usize> = HashMap::new();
    // The lines an applied block wrote in the run's copy, for the findings of a decision the
    // editor never anchored.
    let mut block_lines: HashMap<DecisionKey, [usize; 2]> = HashMap::new();
    for record in &read.records {
        match &record.event {
            Event::RunStarted {
                run_id,
                kind,
                goal,
                selection,
                ..
            } => {
                started = true;
                story.run_id = run_id.clone();
                story.kind = kind.clone();
                story.goal = goal.clone();
                story.selection = selection.clone();
                story.started_ms = Some(record.at_ms);
            }
            Event::Stage { state, .. } => {
                if !story.ended {
                    story.state = *state;
                }
                if *state == RunState::Reviewing {
                    // Each review round re-reviews the whole change: the last one is the story.
                    story.review.findings.clear();
                }
            }
            Event::Context {
                step,
                file,
                tokens,
                budget,
                items,
            } => {
                let mut by_kind = BTreeMap::new();
                for item in items {
                    *by_kind.entry(item.kind.clone()).or_insert(0) += 1;
                }
                story.context.push(ContextSummary {
                    step: step.clone(),
                    file: file.clone(),
                    tokens: *tokens,
                    budget: *budget,
                    items: items.len(),
                    by_kind,
                    top: items.iter().take(TOP_ITEMS).cloned().collect(),
                });
            }
            Event::ModelRequest {
                agent,
                model,
                latency_ms,
                prompt_tokens,
                completion_tokens,
                cost_usd,
                outcome,
                ..
            } => {
                requested.prompt_tokens += prompt_tokens;
                requested.completion_tokens += completion_tokens;
                requested.cost_usd += cost_usd;
                story.usage.requests += 1;
                let at = match story.usage.per_agent.iter().position(|a| &a.agent == agent) {
                    Some(at) => at,
                    None => {
                        story.usage.per_agent.push(AgentUsage {
                            agent: agent.clone(),
                            ..AgentUsage::default()
                        });
                        story.usage.per_agent.len() - 1
                    }
                };
                let usage = &mut story.usage.per_agent[at];
                usage.requests += 1;
                usage.failed += usize::from(outcome != "ok");
                usage.prompt_tokens += prompt_tokens;
                usage.completion_tokens += completion_tokens;
                usage.cost_usd += cost_usd;
                usage.latency_ms += latency_ms;
                if !model.is_empty() && !usage.models.contains(model) {
                    usage.models.push(model.clone());
                }
            }
            Event::PlanEdited { from_run, changes } => story.plan_edits.push(PlanEdit {
                from_run: from_run.clone(),
                changes: changes.clone(),
            }),
            Event::Plan { source, plan } => {
                story.plan = Some(PlanRecord {
                    source: source.clone(),
                    plan: plan.clone(),
                })
            }
            Event::EditBlock {
                step,
                attempt,
                index,
                file,
                status,
                lines,
                reason,
                ..
            } => match status.as_str() {
                "applied" => {
                    if !changed.contains(file) {
                        changed.push(file.clone());
                    }
                    if let Some(lines) = lines {
                        block_lines.insert((step.clone(), *index, file.clone()), *lines);
                    }
                }
                "refused" => story.refused_blocks.push(RefusedBlock {
                    step: step.clone(),
                    attempt: *attempt,
                    index: *index,
                    file: file.clone(),
                    reason: reason.clone(),
                }),
                _ => {}
            },
            Event::Decision {
                step,
                block,
                file,
                agent,
                model,
                summary,
                rationale,
                alternatives,
                tradeoffs,
            } => {
                let decision = StoryDecision {
                    step: Some(step.clone()),
                    block: Some(*block),
                    file: file.clone(),
                    agent: Some(agent.clone()),
                    model: Some(model.clone()),
                    summary: summary.clone(),
                    rationale: Some(rationale.clone()),
                    alternatives: alternatives.clone(),
                    tradeoffs: tradeoffs.clone(),
                    hunks: Vec::new(),
                    findings: Vec::new(),
                };
                let key = (step.clone(), *block, file.clone());
                match by_key.get(&key) {
                    Some(&at) => decisions[at] = decision,
                    None => {
                        by_key.insert(key, decisions.len());
                        decisions.push(decision);
                    }
                }
            }
            Event::Finding {
                file,
                line,
                rule_id,
                severity,
                message,
                status,
            } => story.review.findings.push(StoryFinding {
                file: file.clone(),
                line: *line,
                rule_id: rule_id.clone(),
                severity: severity.clone(),
                message: message.clone(),
                status: status.clone(),
            }),
            Event::StepSkipped { step, reason } => story.skipped_steps.push(SkippedStep {
                step: step.clone(),
                reason: reason.clone(),
            }),
            Event::Feedback { round, summary } => story.feedback.push(FeedbackRound {
                round: *round,
                summary: summary.clone(),
            }),
            Event::TestRun {
                round,
                status,
                command,
                sandbox,
                passed,
                failed,
                failed_before,
                flaky,
                weakened,
                elapsed_ms,
                ..
            } => story.tests.runs.push(TestRunSummary {
                round: *round,
                status: status.clone(),
                command: command.clone(),
                sandbox: sandbox.clone(),
                passed: *passed,
                failed: failed.clone(),
                failed_before: failed_before.clone(),
                flaky: flaky.clone(),
                weakened: weakened.clone(),
                elapsed_ms: *elapsed_ms,
            }),
            Event::ModelReview {
                round,
                status,
                proposed,
                kept,
                message,
            } => story.review.model.push(ModelReviewRound {
                round: *round,
                status: status.clone(),
                proposed: *proposed,
                kept: *kept,
                message: message.clone(),
            }),
            Event::Tests { status, message } => {
                story.tests.status = Some(status.clone());
                story.tests.message = Some(message.clone());
            }
            Event::HunkRefused { reason } => story.refused_hunks.push(reason.clone()),
            Event::Applied { file, result } => {
                match story.applied.iter_mut().find(|a| &a.file == file) {
                    Some(applied) => applied.result = result.clone(),
                    None => story.applied.push(AppliedFile {
                        file: file.clone(),
                        result: result.clone(),
                    }),
                }
            }
            Event::Explanation {
                file,
                lines,
                summary,
                document,
            } => story.explanations.push(StoryExplanation {
                file: file.clone(),
                lines: *lines,
                summary: summary.clone(),
                document: document.clone(),
            }),
            Event::Outcome {
                state,
                message,
                files,
                usage,
            } => {
                story.ended = true;
                story.state = *state;
                story.ended_ms = Some(record.at_ms);
                story.outcome = Some(message.clone());
                story.files = files.clone();
                story.usage.total = *usage;
            }
            // Read below, once every mark is known.
            Event::Anchored { .. } | Event::Reviewed { .. } | Event::Reverted { .. } => {}
        }
    }
    if !started {
        story.warnings.insert(
            0,
            format!(
                "{}: no run_started event; the run's goal and start are unknown",
                journal.display()
            ),
        );
    }
    if !story.ended {
        story.files = changed;
        story.usage.total = requested;
    }
    story.duration_ms = match (story.started_ms, story.ended_ms.or(story.last_event_ms)) {
        (Some(start), Some(end)) => Some(end.saturating_sub(start)),
        _ => None,
    };
    for f in &story.review.findings {
        match f.status.as_str() {
            "new" => story.review.new += 1,
            "fixed" => story.review.fixed += 1,
            _ => story.review.remaining += 1,
        }
    }

    let marks = Marks::of(&read.records);
    story.review_state = marks.state();
    for record in marks.anchored.values() {
        let Event::Anchored {
            hunk,
            file,
            lines,
            step,
            block,
            summary,
            ..
        } = &record.event
        else {
            continue;
        };
        let (reviewed, reviewed_ms, reviewed_by) = match marks.reviewed.get(hunk) {
            Some((r, at, by)) => (*r, Some(*at), Some((*by).to_string())),
            None => (false, None, None),
        };
        let (last_revert, reverted) = match marks.reverted.get(hunk) {
            Some((mark, now)) => (Some(mark.clone()), *now),
            None => (None, false),
        };
        let anchored = StoryHunk {
            id: format!("{}#{hunk}", story.run_id),
            hunk: *hunk,
            file: file.clone(),
            lines: *lines,
            summary: summary.clone(),
            reviewed,
            reviewed_ms,
            reviewed_by,
            reverted,
            last_revert,
        };
        let joined = match (step, block) {
            (Some(step), Some(block)) => by_key.get(&(step.clone(), *block, file.clone())).copied(),
            _ => None,
        };
        match joined {
            Some(at) => decisions[at].hunks.push(anchored),
            None => decisions.push(StoryDecision {
                step: step.clone(),
                block: *block,
                file: file.clone(),
                agent: None,
                model: None,
                summary: summary.clone(),
                rationale: None,
                alternatives: Vec::new(),
                tradeoffs: Vec::new(),
                hunks: vec![anchored],
                findings: Vec::new(),
            }),
        }
    }
    for decision in &mut decisions {
        let mut spans: Vec<[usize; 2]> = decision.hunks.iter().map(|h| h.lines).collect();
        if spans.is_empty()
            && let (Some(step), Some(block)) = (&decision.step, decision.block)
            && let Some(lines) = block_lines.get(&(step.clone(), block, decision.file.clone()))
        {
            spans.push(*lines);
        }
        decision.findings = story
            .review
            .findings
            .iter()
            .filter(|f| {
                f.file == decision.file
                    && spans
                        .iter()
                        .any(|[a, b]| (*a..=(*b).max(*a)).contains(&f.line))
            })
            .cloned()
            .collect();
    }
    story.decisions = decisions;
    story
}

/// The journal of run `id` under `root`, or `None` when `id` cannot name one (a path
/// separator, a leading dot: an id never leaves the runs folder).
pub fn journal_path(root: &Path, id: &str) -> Option<PathBuf> {
    let valid = !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    valid.then(|| super::runs_dir(root).join(format!("{id}.jsonl")))
}

/// The story of run `id` under `root`; `Ok(None)` when there is no such run.
pub fn load(root: &Path, id: &str) -> io::Result<Option<Story>> {
    let Some(path) = journal_path(root, id) else {
        return Ok(None);
    };
    match std::fs::symlink_metadata(&path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
        Ok(_) => {}
    }
    let read = super::read(&path)?;
    Ok(Some(build(&path, &read)))
}

/// Writes the story as markdown beside its journal (`.conductor/runs/<id>/story.md`) and
/// returns the path. A run folder or story file that is a symbolic link is refused: the
/// story is written inside the runs folder or not at all.
pub fn write_markdown(story: &Story) -> io::Result<PathBuf> {
    let dir = story.journal.with_extension("");
    let path = dir.join(STORY_FILE);
    for p in [&dir, &path] {
        if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: a symbolic link; the story is not written through it",
                    p.display()
                ),
            ));
        }
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(&path, to_markdown(story))?;
    Ok(path)
}

/// `2026-12-01 18:52:07 UTC`.
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = super::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `850 ms`, `42.3 s`, `4 min 12 s`, `2 h 05 min`.
pub fn format_duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// Text from a journal on one line, with control characters (a terminal escape sequence a
/// model wrote, a newline) replaced by spaces, so it can neither drive the terminal nor break
/// the layout.
fn line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// [`line`], with what markdown or an HTML-rendering preview would interpret escaped.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in line(text).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `file:3-5`, `file:3`, or `file: before line 3` for a hunk that only removed lines.
fn span(file: &str, [a, b]: [usize; 2]) -> String {
    if b < a {
        format!("{file}: before line {a}")
    } else if a == b {
        format!("{file}:{a}")
    } else {
        format!("{file}:{a}-{b}")
    }
}

fn when(story: &Story) -> String {
    let start = story.started_ms.map_or("unknown".into(), format_time);
    let took = story.duration_ms.map(format_duration).unwrap_or_default();
    match (story.ended, story.ended_ms) {
        (true, Some(end)) => format!("started {start}, ended {} ({took})", format_time(end)),
        _ => format!(
            "started {start}; never finished (last event {}{})",
            story.last_event_ms.map_or("unknown".into(), format_time),
            if took.is_empty() {
                String::new()
            } else {
                format!(", {took} after the start")
            }
        ),
    }
}

fn hunk_state(h: &StoryHunk) -> String {
    let mut state = match (h.reviewed, h.reviewed_ms) {
        (true, Some(at)) => format!("reviewed {}", format_time(at)),
        (true, None) => "reviewed".into(),
        (false, Some(at)) => format!("unreviewed (mark taken back {})", format_time(at)),
        (false, None) => "unreviewed".into(),
    };
    if let Some(by) = h.reviewed_by.as_deref().filter(|_| h.reviewed) {
        let _ = write!(state, " in {}", line(by));
    }
    match &h.last_revert {
        Some(r) if r.result == "applied" => {
            let what = if h.reverted { "reverted" } else { "re-applied" };
            let _ = write!(state, "; {what} {}", format_time(r.at_ms));
        }
        Some(r) => {
            let _ = write!(
                state,
                "; {} refused {}: {}{}",
                line(&r.action),
                format_time(r.at_ms),
                line(&r.result),
                if h.reverted { " (still reverted)" } else { "" }
            );
        }
        None => {}
    }
    state
}

fn usage_line(u: &UsageTotals) -> String {
    format!(
        "{} prompt + {} completion tokens, ${:.4}",
        u.prompt_tokens, u.completion_tokens, u.cost_usd
    )
}

fn test_line(t: &TestRunSummary) -> String {
    let mut out = format!(
        "round {}: {} — {} passed, {} failed",
        t.round,
        line(&t.status),
        t.passed,
        t.failed.len()
    );
    for (what, names) in [
        ("failed", &t.failed),
        ("failed before the change", &t.failed_before),
        ("flaky", &t.flaky),
        ("weakened", &t.weakened),
    ] {
        if !names.is_empty() {
            let names: Vec<String> = names.iter().map(|n| line(n)).collect();
            let _ = write!(out, "; {what}: {}", names.join(", "));
        }
    }
    let _ = write!(
        out,
        " (sandbox {}, {}; `{}`)",
        line(&t.sandbox),
        format_duration(t.elapsed_ms),
        line(&t.command.join(" "))
    );
    out
}

fn finding_line(f: &StoryFinding) -> String {
    format!(
        "{}:{} {} [{}] {} ({})",
        line(&f.file),
        f.line,
        line(&f.severity),
        line(&f.rule_id),
        line(&f.message),
        line(&f.status)
    )
}

/// The story for a terminal.
pub fn to_text(story: &Story) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "Run {} ({}): {}",
        line(&story.run_id),
        line(&story.kind),
        if story.ended {
            story.state.as_str().to_string()
        } else {
            format!("{} — never finished", story.state)
        }
    );
    let _ = writeln!(w, "Goal: {}", line(&story.goal));
    if let Some(selection) = &story.selection {
        let _ = writeln!(w, "Selection: {}", line(selection));
    }
    let _ = writeln!(w, "When: {}", when(story));
    let _ = writeln!(w, "Review: {}", story.review_state);
    if let Some(message) = &story.outcome {
        let _ = writeln!(w, "Outcome: {}", line(message));
    }

    for edit in &story.plan_edits {
        let _ = writeln!(
            w,
            "\nFollows the plan of run {}, as the developer edited it:",
            line(&edit.from_run)
        );
        if edit.changes.is_empty() {
            let _ = writeln!(w, "  (no changes)");
        }
        for change in &edit.changes {
            let _ = writeln!(w, "  - {}", line(change));
        }
    }
    if let Some(PlanRecord { source, plan }) = &story.plan {
        let _ = writeln!(w, "\nPlan ({}): {}", line(source), line(&plan.summary));
        for step in &plan.steps {
            let agent = serde_json::to_value(step.agent)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                w,
                "  {}. [{agent}] {}{}",
                line(&step.id),
                line(&step.title),
                if step.targets.is_empty() {
                    String::new()
                } else {
                    format!(" → {}", line(&step.targets.join(", ")))
                }
            );
        }
        for risk in &plan.risks {
            let _ = writeln!(w, "  risk: {}", line(risk));
        }
        for tradeoff in &plan.tradeoffs {
            let _ = writeln!(w, "  trade-off: {}", line(tradeoff));
        }
    }
    if !story.context.is_empty() {
        let _ = writeln!(w, "\nContext:");
        for c in &story.context {
            let kinds: Vec<String> = c
                .by_kind
                .iter()
                .map(|(k, n)| format!("{n} {}", line(k)))
                .collect();
            let _ = writeln!(
                w,
                "  {} on {}: {}/{} tokens, {} item(s) ({})",
                c.step.as_deref().map_or("planner".into(), line),
                line(&c.file),
                c.tokens,
                c.budget,
                c.items,
                kinds.join(", ")
            );
            for item in &c.top {
                let _ = writeln!(
                    w,
                    "    {} {} — {} ({} tokens)",
                    line(&item.kind),
                    span(
                        &line(&item.file),
                        [item.lines[0] as usize, item.lines[1] as usize]
                    ),
                    line(&item.reason),
                    item.tokens
                );
            }
            if c.items > c.top.len() {
                let _ = writeln!(w, "    … and {} more", c.items - c.top.len());
            }
        }
    }
    let _ = writeln!(w, "\nDecisions ({}):", story.review_state);
    if story.decisions.is_empty() {
        let _ = writeln!(w, "  none");
    }
    for (i, d) in story.decisions.iter().enumerate() {
        let by = match (&d.agent, &d.model) {
            (Some(agent), Some(model)) => format!("{} ({})", line(agent), line(model)),
            _ => "no decision journalled".into(),
        };
        let at = match (&d.step, d.block) {
            (Some(step), Some(block)) => format!("step {} block {block}, ", line(step)),
            _ => String::new(),
        };
        let _ = writeln!(
            w,
            "  {}. {} — {at}{}, by {by}",
            i + 1,
            line(&d.summary),
            line(&d.file)
        );
        if let Some(why) = &d.rationale {
            let _ = writeln!(w, "     why: {}", line(why));
        }
        for alt in &d.alternatives {
            let _ = writeln!(w, "     alternative: {}", line(alt));
        }
        for t in &d.tradeoffs {
            let _ = writeln!(w, "     trade-off: {}", line(t));
        }
        if d.hunks.is_empty() {
            let _ = writeln!(
                w,
                "     not anchored (the change was not applied in an editor)"
            );
        }
        for h in &d.hunks {
            let _ = writeln!(
                w,
                "     {} {}: {}",
                line(&h.id),
                span(&line(&h.file), h.lines),
                hunk_state(h)
            );
        }
        for f in &d.findings {
            let _ = writeln!(w, "     finding: {}", finding_line(f));
        }
    }
    if !story.refused_blocks.is_empty() || !story.skipped_steps.is_empty() {
        let _ = writeln!(w, "\nNot done:");
        for b in &story.refused_blocks {
            let _ = writeln!(
                w,
                "  block {} of step {} (attempt {}) on {} refused: {}",
                b.index,
                line(&b.step),
                b.attempt,
                line(&b.file),
                b.reason
                    .as_deref()
                    .map_or("no reason recorded".into(), line)
            );
        }
        for s in &story.skipped_steps {
            let _ = writeln!(w, "  step {} skipped: {}", line(&s.step), line(&s.reason));
        }
    }
    if !story.feedback.is_empty() {
        let _ = writeln!(w, "\nImprove rounds:");
        for f in &story.feedback {
            let _ = writeln!(w, "  {}: {}", f.round, line(&f.summary));
        }
    }
    let r = &story.review;
    let _ = writeln!(
        w,
        "\nReview: {} new, {} fixed, {} remaining finding(s)",
        r.new, r.fixed, r.remaining
    );
    for f in &r.findings {
        let _ = writeln!(w, "  {}", finding_line(f));
    }
    for m in &r.model {
        let _ = writeln!(
            w,
            "  model review, round {}: {} — {} proposed, {} kept{}",
            m.round,
            line(&m.status),
            m.proposed,
            m.kept,
            if m.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", line(&m.message))
            }
        );
    }
    let _ = writeln!(
        w,
        "\nTests: {}{}",
        story.tests.status.as_deref().map_or("not run".into(), line),
        story
            .tests
            .message
            .as_deref()
            .map_or(String::new(), |m| format!(" — {}", line(m)))
    );
    for t in &story.tests.runs {
        let _ = writeln!(w, "  {}", test_line(t));
    }
    let _ = writeln!(
        w,
        "\nUsage: {} in {} request(s)",
        usage_line(&story.usage.total),
        story.usage.requests
    );
    for a in &story.usage.per_agent {
        let _ = writeln!(
            w,
            "  {} ({}): {} request(s){}, {} + {} tokens, ${:.4}, {} waiting",
            line(&a.agent),
            line(&a.models.join(", ")),
            a.requests,
            if a.failed > 0 {
                format!(" ({} failed)", a.failed)
            } else {
                String::new()
            },
            a.prompt_tokens,
            a.completion_tokens,
            a.cost_usd,
            format_duration(a.latency_ms)
        );
    }
    if !story.files.is_empty() || !story.applied.is_empty() || !story.refused_hunks.is_empty() {
        let _ = writeln!(w, "\nChange:");
        for file in &story.files {
            let result = story
                .applied
                .iter()
                .find(|a| &a.file == file)
                .map_or("not applied".into(), |a| line(&a.result));
            let _ = writeln!(w, "  {}: {result}", line(file));
        }
        for a in story
            .applied
            .iter()
            .filter(|a| !story.files.contains(&a.file))
        {
            let _ = writeln!(w, "  {}: {}", line(&a.file), line(&a.result));
        }
        for h in &story.refused_hunks {
            let _ = writeln!(w, "  hunk left out: {}", line(h));
        }
    }
    for e in &story.explanations {
        let _ = writeln!(
            w,
            "\nExplanation of {}: {} ({})",
            span(&line(&e.file), e.lines),
            line(&e.summary),
            line(&e.document)
        );
    }
    let _ = writeln!(w, "\nJournal: {}", story.journal.display());
    if !story.warnings.is_empty() {
        let _ = writeln!(w, "\nWarnings:");
        for warning in &story.warnings {
            let _ = writeln!(w, "  {}", line(warning));
        }
    }
    out
}

/// The story as a markdown document for a tech lead: what was asked and planned, every
/// decision with its reasons and review state, the review, the tests, the cost.
pub fn to_markdown(story: &Story) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Run {}: {}\n", md(&story.run_id), md(&story.goal));
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(w, "| Kind | {} |", md(&story.kind));
    let _ = writeln!(
        w,
        "| State | {}{} |",
        story.state,
        if story.ended { "" } else { " (never finished)" }
    );
    if let Some(selection) = &story.selection {
        let _ = writeln!(w, "| Selection | `{}` |", line(selection).replace('`', "'"));
    }
    let _ = writeln!(w, "| When | {} |", when(story));
    let _ = writeln!(w, "| Review | {} |", story.review_state);
    let _ = writeln!(
        w,
        "| Usage | {} in {} request(s) |",
        usage_line(&story.usage.total),
        story.usage.requests
    );
    if let Some(message) = &story.outcome {
        let _ = writeln!(w, "| Outcome | {} |", md(message));
    }
    if !story.ended {
        let _ = writeln!(
            w,
            "\n> This run never recorded an outcome: it is still going, or its process ended mid-run. What follows is what the journal holds so far."
        );
    }

    if !story.plan_edits.is_empty() || story.plan.is_some() {
        let _ = writeln!(w, "\n## Plan");
    }
    for edit in &story.plan_edits {
        let _ = writeln!(
            w,
            "\nThe developer edited the plan of run {} before this run followed it:\n",
            md(&edit.from_run)
        );
        if edit.changes.is_empty() {
            let _ = writeln!(w, "- no changes");
        }
        for change in &edit.changes {
            let _ = writeln!(w, "- {}", md(change));
        }
    }
    if let Some(PlanRecord { source, plan }) = &story.plan {
        let _ = writeln!(w, "\n{} *(source: {})*\n", md(&plan.summary), md(source));
        for step in &plan.steps {
            let agent = serde_json::to_value(step.agent)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                w,
                "1. **{}** ({agent}): {}{}",
                md(&step.id),
                md(&step.title),
                if step.targets.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", md(&step.targets.join(", ")))
                }
            );
        }
        if !plan.risks.is_empty() {
            let _ = writeln!(w, "\n**Risks**\n");
            for risk in &plan.risks {
                let _ = writeln!(w, "- {}", md(risk));
            }
        }
        if !plan.tradeoffs.is_empty() {
            let _ = writeln!(w, "\n**Trade-offs**\n");
            for t in &plan.tradeoffs {
                let _ = writeln!(w, "- {}", md(t));
            }
        }
    }
    if !story.context.is_empty() {
        let _ = writeln!(w, "\n## Context\n");
        let _ = writeln!(
            w,
            "| For | File | Tokens | Items | Top items |\n|---|---|---|---|---|"
        );
        for c in &story.context {
            let kinds: Vec<String> = c
                .by_kind
                .iter()
                .map(|(k, n)| format!("{n} {}", md(k)))
                .collect();
            let top: Vec<String> = c
                .top
                .iter()
                .map(|i| {
                    format!(
                        "{} {} ({})",
                        md(&i.kind),
                        md(&span(&i.file, [i.lines[0] as usize, i.lines[1] as usize])),
                        md(&i.reason)
                    )
                })
                .collect();
            let _ = writeln!(
                w,
                "| {} | {} | {}/{} | {} ({}) | {} |",
                c.step.as_deref().map_or("planner".into(), md),
                md(&c.file),
                c.tokens,
                c.budget,
                c.items,
                kinds.join(", "),
                top.join("; ")
            );
        }
    }
    let _ = writeln!(w, "\n## Decisions ({})", story.review_state);
    if story.decisions.is_empty() {
        let _ = writeln!(w, "\nNone.");
    }
    for (i, d) in story.decisions.iter().enumerate() {
        let _ = writeln!(w, "\n### {}. {}\n", i + 1, md(&d.summary));
        let by = match (&d.agent, &d.model) {
            (Some(agent), Some(model)) => format!("{} ({})", md(agent), md(model)),
            _ => "no decision journalled".into(),
        };
        let at = match (&d.step, d.block) {
            (Some(step), Some(block)) => format!("step {} block {block} · ", md(step)),
            _ => String::new(),
        };
        let _ = writeln!(w, "{at}{} · by {by}\n", md(&d.file));
        if let Some(why) = &d.rationale {
            let _ = writeln!(w, "**Why:** {}\n", md(why));
        }
        for (title, items) in [
            ("Alternatives considered", &d.alternatives),
            ("Trade-offs", &d.tradeoffs),
        ] {
            if !items.is_empty() {
                let _ = writeln!(w, "**{title}:**\n");
                for item in items {
                    let _ = writeln!(w, "- {}", md(item));
                }
                let _ = writeln!(w);
            }
        }
        if d.hunks.is_empty() {
            let _ = writeln!(
                w,
                "Not anchored: the change was not applied in an editor.\n"
            );
        } else {
            let _ = writeln!(w, "| Hunk | Where | State |\n|---|---|---|");
            for h in &d.hunks {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} |",
                    md(&h.id),
                    md(&span(&h.file, h.lines)),
                    md(&hunk_state(h))
                );
            }
            let _ = writeln!(w);
        }
        if !d.findings.is_empty() {
            let _ = writeln!(w, "**Review findings on these lines:**\n");
            for f in &d.findings {
                let _ = writeln!(w, "- {}", md(&finding_line(f)));
            }
        }
    }
    if !story.refused_blocks.is_empty() || !story.skipped_steps.is_empty() {
        let _ = writeln!(w, "\n## Not done\n");
        for b in &story.refused_blocks {
            let _ = writeln!(
                w,
                "- block {} of step {} (attempt {}) on {} refused: {}",
                b.index,
                md(&b.step),
                b.attempt,
                md(&b.file),
                b.reason.as_deref().map_or("no reason recorded".into(), md)
            );
        }
        for s in &story.skipped_steps {
            let _ = writeln!(w, "- step {} skipped: {}", md(&s.step), md(&s.reason));
        }
    }
    if !story.feedback.is_empty() {
        let _ = writeln!(w, "\n## Improve rounds\n");
        for f in &story.feedback {
            let _ = writeln!(w, "{}. {}", f.round, md(&f.summary));
        }
    }
    let r = &story.review;
    let _ = writeln!(
        w,
        "\n## Review\n\n{} new, {} fixed, {} remaining finding(s).\n",
        r.new, r.fixed, r.remaining
    );
    for f in &r.findings {
        let _ = writeln!(w, "- {}", md(&finding_line(f)));
    }
    for m in &r.model {
        let _ = writeln!(
            w,
            "- model review, round {}: {}, {} proposed, {} kept{}",
            m.round,
            md(&m.status),
            m.proposed,
            m.kept,
            if m.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", md(&m.message))
            }
        );
    }
    let _ = writeln!(
        w,
        "\n## Tests\n\n{}{}\n",
        story.tests.status.as_deref().map_or("Not run".into(), md),
        story
            .tests
            .message
            .as_deref()
            .map_or(String::new(), |m| format!(": {}", md(m)))
    );
    for t in &story.tests.runs {
        let _ = writeln!(w, "- {}", md(&test_line(t)));
    }
    if !story.usage.per_agent.is_empty() {
        let _ = writeln!(
            w,
            "\n## Usage\n\n| Agent | Models | Requests | Prompt | Completion | Cost | Waiting |\n|---|---|---|---|---|---|---|"
        );
        for a in &story.usage.per_agent {
            let _ = writeln!(
                w,
                "| {} | {} | {}{} | {} | {} | ${:.4} | {} |",
                md(&a.agent),
                md(&a.models.join(", ")),
                a.requests,
                if a.failed > 0 {
                    format!(" ({} failed)", a.failed)
                } else {
                    String::new()
                },
                a.prompt_tokens,
                a.completion_tokens,
                a.cost_usd,
                format_duration(a.latency_ms)
            );
        }
    }
    if !story.files.is_empty() || !story.applied.is_empty() || !story.refused_hunks.is_empty() {
        let _ = writeln!(w, "\n## Change\n");
        for file in &story.files {
            let result = story
                .applied
                .iter()
                .find(|a| &a.file == file)
                .map_or("not applied".into(), |a| md(&a.result));
            let _ = writeln!(w, "- {}: {result}", md(file));
        }
        for a in story
            .applied
            .iter()
            .filter(|a| !story.files.contains(&a.file))
        {
            let _ = writeln!(w, "- {}: {}", md(&a.file), md(&a.result));
        }
        for h in &story.refused_hunks {
            let _ = writeln!(w, "- hunk left out: {}", md(h));
        }
    }
    if !story.explanations.is_empty() {
        let _ = writeln!(w, "\n## Explanations\n");
        for e in &story.explanations {
            let _ = writeln!(
                w,
                "- {}: {} ({})",
                md(&span(&e.file, e.lines)),
                md(&e.summary),
                md(&e.document)
            );
        }
    }
    let _ = writeln!(
        w,
        "\n---\n\nJournal: {}",
        md(&story.journal.display().to_string())
    );
    if !story.warnings.is_empty() {
        let _ = writeln!(w, "\n**Warnings**\n");
        for warning in &story.warnings {
            let _ = writeln!(w, "- {}", md(warning));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::journal::{Journal, ManifestItem};
    use crate::llm::protocol::{PlanStep, StepAgent};

    fn started(id: &str) -> Event {
        Event::RunStarted {
            run_id: id.into(),
            kind: "goal".into(),
            goal: "add retries to fetch".into(),
            selection: Some("src/net.rs:10-20".into()),
            config_digest: "d".into(),
            workspace: "/w".into(),
        }
    }

    fn decision(step: &str, block: usize, summary: &str) -> Event {
        Event::Decision {
            step: step.into(),
            block,
            file: "src/net.rs".into(),
            agent: "coder".into(),
            model: "m1".into(),
            summary: summary.into(),
            rationale: format!("because {summary}"),
            alternatives: vec!["a loop without backoff".into()],
            tradeoffs: vec!["latency for reliability".into()],
        }
    }

    fn anchored(hunk: usize, step: Option<&str>, block: Option<usize>, lines: [usize; 2]) -> Event {
        Event::Anchored {
            hunk,
            file: "src/net.rs".into(),
            lines,
            hash: "h".into(),
            written: "new\n".into(),
            original: "old\n".into(),
            file_hash: "f".into(),
            context_before: String::new(),
            context_after: String::new(),
            step: step.map(str::to_string),
            block,
            summary: format!("hunk {hunk}"),
        }
    }

    /// A finished run with a plan, context, three decisions (one hunk no block explains),
    /// findings over two review rounds, tests and usage.
    fn finished_run(dir: &Path) -> Journal {
        let j = Journal::create(dir, "r1").expect("create");
        j.record(started("r1"));
        j.record(Event::PlanEdited {
            from_run: "r0".into(),
            changes: vec!["step s2 skipped".into()],
        });
        j.record(Event::Plan {
            source: "edited".into(),
            plan: Plan {
                summary: "retry with backoff".into(),
                steps: vec![PlanStep {
                    id: "s1".into(),
                    title: "wrap fetch".into(),
                    agent: StepAgent::Coder,
                    targets: vec!["src/net.rs".into()],
                    depends_on: vec![],
                }],
                risks: vec!["retries a non-idempotent call".into()],
                tradeoffs: vec!["slower failures".into()],
            },
        });
        j.record(Event::Context {
            step: Some("s1".into()),
            file: "src/net.rs".into(),
            tokens: 900,
            budget: 4000,
            items: (0..7)
                .map(|i| ManifestItem {
                    kind: if i == 0 { "selection" } else { "definition" }.into(),
                    file: "src/net.rs".into(),
                    lines: [i + 1, i + 2],
                    symbol: None,
                    reason: format!("reason {i}"),
                    tokens: 10,
                })
                .collect(),
        });
        j.record(Event::ModelRequest {
            agent: "coder".into(),
            provider: "p".into(),
            model: "m1".into(),
            step: Some("s1".into()),
            latency_ms: 1200,
            prompt_tokens: 100,
            completion_tokens: 50,
            cost_usd: 0.01,
            redacted: 0,
            attempts: 1,
            outcome: "ok".into(),
        });
        j.record(Event::EditBlock {
            step: "s1".into(),
            attempt: 1,
            index: 3,
            file: "src/net.rs".into(),
            base_hash: None,
            status: "refused".into(),
            lines: None,
            reason: Some("SEARCH matches twice".into()),
        });
        j.record(decision("s1", 1, "retry three times"));
        j.record(decision("s1", 2, "log each retry"));
        j.record(Event::Stage {
            state: RunState::Reviewing,
            message: String::new(),
        });
        j.record(Event::Finding {
            file: "src/net.rs".into(),
            line: 99,
            rule_id: "old".into(),
            severity: "high".into(),
            message: "gone after the improve round".into(),
            status: "new".into(),
        });
        j.record(Event::Stage {
            state: RunState::Reviewing,
            message: String::new(),
        });
        j.record(Event::Finding {
            file: "src/net.rs".into(),
            line: 12,
            rule_id: "rust/tls".into(),
            severity: "medium".into(),
            message: "certificate checks off".into(),
            status: "new".into(),
        });
        j.record(Event::TestRun {
            round: 0,
            status: "passed".into(),
            command: vec!["cargo".into(), "test".into()],
            sandbox: "bubblewrap".into(),
            passed: 14,
            failed: vec![],
            failed_before: vec!["slow_test".into()],
            flaky: vec![],
            weakened: vec![],
            dropped_lines: 0,
            elapsed_ms: 2500,
        });
        j.record(Event::Applied {
            file: "src/net.rs".into(),
            result: "applied".into(),
        });
        j.record(anchored(1, Some("s1"), Some(1), [10, 14]));
        j.record(anchored(2, Some("s1"), Some(2), [20, 21]));
        j.record(anchored(3, None, None, [30, 29]));
        j.record(Event::Outcome {
            state: RunState::Done,
            message: "3 hunks applied".into(),
            files: vec!["src/net.rs".into()],
            usage: UsageTotals {
                prompt_tokens: 100,
                completion_tokens: 50,
                cost_usd: 0.01,
            },
        });
        j
    }

    #[test]
    fn a_finished_run_tells_its_plan_decisions_review_tests_and_usage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = finished_run(dir.path());
        let story = build(j.path(), &crate::journal::read(j.path()).expect("read"));
        assert!(story.ended);
        assert_eq!(story.state, RunState::Done);
        assert_eq!(story.goal, "add retries to fetch");
        assert_eq!(
            story.plan.as_ref().map(|p| p.source.as_str()),
            Some("edited")
        );
        assert_eq!(story.plan_edits[0].changes, ["step s2 skipped"]);
        assert_eq!(story.context[0].items, 7);
        assert_eq!(story.context[0].top.len(), TOP_ITEMS);
        assert_eq!(story.context[0].by_kind.get("definition"), Some(&6));
        // Two journalled decisions and one hunk no block explains.
        assert_eq!(story.decisions.len(), 3);
        assert_eq!(story.decisions[0].hunks[0].id, "r1#1");
        assert_eq!(
            story.decisions[0].rationale.as_deref(),
            Some("because retry three times")
        );
        assert_eq!(story.decisions[2].agent, None);
        assert_eq!(story.decisions[2].summary, "hunk 3");
        // Only the last review round counts, and its finding lands on the decision whose lines
        // hold it.
        assert_eq!((story.review.new, story.review.findings.len()), (1, 1));
        assert_eq!(story.decisions[0].findings[0].rule_id, "rust/tls");
        assert!(story.decisions[1].findings.is_empty());
        assert_eq!(
            story.refused_blocks[0].reason.as_deref(),
            Some("SEARCH matches twice")
        );
        assert_eq!(story.tests.runs[0].failed_before, ["slow_test"]);
        assert_eq!(story.usage.per_agent[0].models, ["m1"]);
        assert_eq!(story.usage.total.prompt_tokens, 100);
        assert_eq!(
            story.review_state,
            ReviewState {
                decisions: 3,
                reviewed: 0,
                complete: false,
                last_mark_ms: None
            }
        );

        let text = to_text(&story);
        for part in [
            "Run r1 (goal): done",
            "Review: reviewed 0/3 decisions",
            "Follows the plan of run r0",
            "  - step s2 skipped",
            "Plan (edited): retry with backoff",
            "s1. [coder] wrap fetch → src/net.rs",
            "s1 on src/net.rs: 900/4000 tokens, 7 item(s) (6 definition, 1 selection)",
            "… and 2 more",
            "why: because retry three times",
            "r1#1 src/net.rs:10-14: unreviewed",
            "r1#3 src/net.rs: before line 30: unreviewed",
            "finding: src/net.rs:12 medium [rust/tls]",
            "block 3 of step s1 (attempt 1) on src/net.rs refused: SEARCH matches twice",
            "Review: 1 new, 0 fixed, 0 remaining",
            "round 0: passed — 14 passed, 0 failed; failed before the change: slow_test",
            "coder (m1): 1 request(s), 100 + 50 tokens, $0.0100",
            "src/net.rs: applied",
        ] {
            assert!(text.contains(part), "{part:?} missing from:\n{text}");
        }
        assert!(!text.contains("gone after the improve round"), "{text}");
        assert!(!text.contains("Warnings"), "{text}");

        let markdown = to_markdown(&story);
        for part in [
            "# Run r1: add retries to fetch",
            "## Decisions (reviewed 0/3 decisions)",
            "### 1. retry three times",
            "**Why:** because retry three times",
            "- a loop without backoff",
            "| r1\\#1 | src/net.rs:10-14 | unreviewed |",
            "## Tests",
        ] {
            assert!(
                markdown.contains(part),
                "{part:?} missing from:\n{markdown}"
            );
        }
        let json = serde_json::to_value(&story).expect("json");
        assert_eq!(json["review_state"]["decisions"], 3);
        assert_eq!(json["decisions"][1]["hunks"][0]["id"], "r1#2");
    }

    #[test]
    fn review_marks_and_reverts_appended_later_are_read_the_latest_per_hunk_winning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = finished_run(dir.path()).path().to_path_buf();
        let j = Journal::append_to(&path).expect("append");
        let mark = |hunks: Vec<usize>, reviewed: bool| Event::Reviewed {
            hunks,
            reviewed,
            by: "editor".into(),
        };
        j.record(mark(vec![1, 2, 3], true));
        j.record(mark(vec![3], false));
        j.record(Event::Reverted {
            hunks: vec![2],
            action: "revert".into(),
            result: "applied".into(),
        });
        j.record(Event::Reverted {
            hunks: vec![2],
            action: "reapply".into(),
            result: "the region changed since the revert".into(),
        });
        j.record(Event::Reverted {
            hunks: vec![1],
            action: "revert".into(),
            result: "applied".into(),
        });
        j.record(Event::Reverted {
            hunks: vec![1],
            action: "reapply".into(),
            result: "applied".into(),
        });
        let read = crate::journal::read(&path).expect("read");
        let story = build(&path, &read);
        let state = story.review_state;
        assert_eq!(
            (state.decisions, state.reviewed, state.complete),
            (3, 2, false)
        );
        assert_eq!(review_state(&read.records), state);
        let h1 = &story.decisions[0].hunks[0];
        let h2 = &story.decisions[1].hunks[0];
        let h3 = &story.decisions[2].hunks[0];
        assert!(h1.reviewed && !h1.reverted, "{h1:?}");
        assert_eq!(
            h1.last_revert.as_ref().map(|r| r.action.as_str()),
            Some("reapply")
        );
        assert!(
            h2.reverted,
            "a refused re-apply leaves the hunk reverted: {h2:?}"
        );
        assert!(!h3.reviewed && h3.reviewed_ms.is_some(), "{h3:?}");
        let text = to_text(&story);
        assert!(text.contains("Review: reviewed 2/3 decisions"), "{text}");
        assert!(text.contains("; re-applied "), "{text}");
        assert!(
            text.contains("reapply refused") && text.contains("(still reverted)"),
            "{text}"
        );
        assert!(text.contains("unreviewed (mark taken back"), "{text}");

        j.record(mark(vec![3], true));
        let state = review_state(&crate::journal::read(&path).expect("read").records);
        assert!(state.complete, "every decision reviewed: {state:?}");
    }

    #[test]
    fn an_unfinished_run_with_a_torn_line_and_an_unknown_event_is_told_as_far_as_it_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::create(dir.path(), "r2").expect("create");
        j.record(started("r2"));
        j.record(Event::Stage {
            state: RunState::Coding,
            message: "step s1".into(),
        });
        j.record(Event::ModelRequest {
            agent: "planner".into(),
            provider: "p".into(),
            model: "m2".into(),
            step: None,
            latency_ms: 10,
            prompt_tokens: 7,
            completion_tokens: 3,
            cost_usd: 0.5,
            redacted: 0,
            attempts: 1,
            outcome: "ok".into(),
        });
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(j.path())
            .expect("open");
        // An event a newer Conductor writes, then a line cut off by a crash.
        file.write_all(b"{\"seq\":3,\"at_ms\":5,\"event\":\"quantum_leap\",\"x\":1}\n")
            .expect("write");
        file.write_all(br#"{"seq":4,"at_ms":6,"event":"sta"#)
            .expect("write");
        let story = build(j.path(), &crate::journal::read(j.path()).expect("read"));
        assert!(!story.ended);
        assert_eq!(story.state, RunState::Coding);
        assert_eq!(story.usage.total.cost_usd, 0.5, "the requests' sum");
        assert_eq!(story.warnings.len(), 2, "{:?}", story.warnings);
        let text = to_text(&story);
        assert!(text.contains("coding — never finished"), "{text}");
        assert!(text.contains("never finished (last event"), "{text}");
        let warnings = text.split("\nWarnings:\n").nth(1).expect("warnings last");
        assert!(
            warnings.contains(":4: the event cannot be read"),
            "{warnings}"
        );
        assert!(warnings.contains(":5: the event is cut off"), "{warnings}");
        assert!(to_markdown(&story).contains("never recorded an outcome"));
    }

    #[test]
    fn model_text_cannot_drive_the_terminal_or_the_markdown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::create(dir.path(), "r3").expect("create");
        j.record(Event::RunStarted {
            run_id: "r3".into(),
            kind: "goal".into(),
            goal: "x\u{1b}[2J\ny <script>".into(),
            selection: None,
            config_digest: "d".into(),
            workspace: "/w".into(),
        });
        let story = build(j.path(), &crate::journal::read(j.path()).expect("read"));
        let text = to_text(&story);
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("Goal: x [2J y <script>"), "{text}");
        let markdown = to_markdown(&story);
        assert!(markdown.contains("y &lt;script&gt;"), "{markdown}");
        assert!(text.contains("Review: no decisions to review"), "{text}");
    }

    #[test]
    fn stories_load_by_id_only_inside_the_runs_folder_and_write_beside_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        finished_run(dir.path());
        assert!(load(dir.path(), "nope").expect("load").is_none());
        assert!(load(dir.path(), "../r1").expect("load").is_none());
        assert!(journal_path(dir.path(), ".hidden").is_none());
        let story = load(dir.path(), "r1").expect("load").expect("a story");
        let path = write_markdown(&story).expect("write");
        assert_eq!(path, dir.path().join(".conductor/runs/r1/story.md"));
        let written = std::fs::read_to_string(&path).expect("read");
        assert!(
            written.starts_with("# Run r1: add retries to fetch"),
            "{written}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_story_is_not_written_through_a_symlinked_run_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        finished_run(dir.path());
        std::os::unix::fs::symlink(outside.path(), dir.path().join(".conductor/runs/r1"))
            .expect("symlink");
        let story = load(dir.path(), "r1").expect("load").expect("a story");
        let err = write_markdown(&story).expect_err("refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!outside.path().join(STORY_FILE).exists());
    }

    #[test]
    fn times_and_durations_read_like_people_write_them() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_796_140_327_000), "2026-12-01 15:52:07 UTC");
        assert_eq!(format_duration(850), "850 ms");
        assert_eq!(format_duration(42_300), "42.3 s");
        assert_eq!(format_duration(252_000), "4 min 12 s");
        assert_eq!(format_duration(7_500_000), "2 h 05 min");
    }
}
