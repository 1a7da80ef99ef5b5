//! Explain runs: a selection of existing code taken to the explainer agent and back as a
//! trade-off document (`.conductor/explanations/<name>.md`) and a decision anchored on the
//! selection, in a run of kind `explain` with its own journal.
//!
//! An explain run reads the open buffer's text when the file is open (the [`RunEnv`]'s
//! snapshots), the disk otherwise; it writes nothing but its document and its journal, so it
//! claims no lines and never stands in the way of a run that changes the same code. It is
//! bounded like every run — the run's wall clock and its token and cost budget apply, and
//! cancelling it stops its model request at once and writes no document. Secrets in the
//! selection are redacted by the model layer before the request leaves the machine, and the
//! document keeps the placeholders: an explanation never writes a secret back out.
//!
//! The journal of an explain run: `run_started` (kind `explain`), `stage`s (`planning` while the
//! selection and its context are read, `reviewing` while the explainer reads the code,
//! `presenting` while the document is written), `context` (the bundle's manifest), one
//! `model_request` per response, `explanation`, one `anchored` (hunk 1, the selection's text
//! as both `written` and `original`, so the decision hover shows the summary on it), the final
//! `stage` and the `outcome`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{ActiveRun, Membership, Orchestrator, RunEnv, StartError, relative, runtime};
use crate::agents::explainer::{self, ExplainerInput};
use crate::context::{BundleRequest, build_bundle};
use crate::editor::text_hash;
use crate::journal::{Event, Journal, RunState, UsageTotals};
use crate::llm::protocol::{AskError, Explanation};
use crate::llm::{AgentRole, ChatResponse, LlmError, ModelClient, Run};
use crate::util::lock;
use crate::workspace::artifacts::{self, ArtifactKind};

const STOP_NONE: u8 = 0;
const STOP_USER: u8 = 1;
const STOP_WALL_CLOCK: u8 = 2;

/// What to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainRequest {
    /// The file, absolute (canonical, inside the workspace root).
    pub file: PathBuf,
    /// 1-based inclusive lines of the selection.
    pub lines: (usize, usize),
    /// The developer's question, if any.
    pub question: Option<String>,
}

/// How an explain run ended.
#[derive(Debug, Clone)]
pub struct ExplainOutcome {
    /// The run's id.
    pub run_id: String,
    /// `done`, `failed` or `cancelled`.
    pub state: RunState,
    /// What happened, for the user; for a failure, what to do.
    pub message: String,
    /// The explanation's one-sentence summary, when there is one.
    pub summary: Option<String>,
    /// The document (absolute), when written.
    pub document: Option<PathBuf>,
    /// Tokens and cost.
    pub usage: UsageTotals,
    /// The journal.
    pub journal: PathBuf,
}

/// A started explain run: its id, a way to cancel it, and its outcome when it ends.
#[derive(Debug)]
pub struct ExplainHandle {
    /// The run's id.
    pub id: String,
    /// Cancelling it cancels the run.
    pub cancel: CancellationToken,
    /// The outcome.
    pub outcome: tokio::task::JoinHandle<ExplainOutcome>,
}

impl Orchestrator {
    /// Starts an explain run as a background task on the runs' runtime. It is listed among the
    /// runs in flight (and cancellable by id) but claims nothing: it changes no file.
    pub fn start_explain(
        self: &Arc<Self>,
        env: RunEnv,
        request: ExplainRequest,
    ) -> Result<ExplainHandle, StartError> {
        let id = crate::journal::new_run_id();
        let cancel = CancellationToken::new();
        lock(&self.active).insert(
            id.clone(),
            ActiveRun {
                id: id.clone(),
                goal: goal_of(&env.root, &request),
                state: RunState::Planning,
                claims: Vec::new(),
                cancel: cancel.clone(),
            },
        );
        let journal = match Journal::create(&env.root, &id) {
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
            let outcome = explain(
                run_id.clone(),
                env,
                request,
                journal,
                token,
                &move |state| member.set_state(state),
            )
            .await;
            lock(&registry.active).remove(&run_id);
            outcome
        });
        Ok(ExplainHandle {
            id,
            cancel,
            outcome,
        })
    }
}

/// The goal an explain run records: the developer's question, or what is explained.
fn goal_of(root: &Path, request: &ExplainRequest) -> String {
    let (a, b) = request.lines;
    match request
        .question
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
    {
        Some(question) => question
            .chars()
            .take(explainer::MAX_QUESTION_CHARS)
            .collect(),
        None => format!(
            "explain the trade-offs of {}:{a}-{b}",
            relative(root, &request.file)
        ),
    }
}

/// How the run ends early.
enum Halt {
    Failed(String),
    Cancelled(String),
}

struct Ctx<'a> {
    id: String,
    env: RunEnv,
    request: ExplainRequest,
    rel: String,
    journal: Arc<Journal>,
    cancel: CancellationToken,
    stop: Arc<AtomicU8>,
    model_run: Run,
    on_stage: &'a (dyn Fn(RunState) + Send + Sync),
    summary: Option<String>,
    document: Option<PathBuf>,
}

/// Runs one explain run to its outcome, journalled in `journal`; `on_stage` hears each stage.
/// Never panics on model or file input; every ending is journalled.
pub async fn explain(
    id: String,
    env: RunEnv,
    request: ExplainRequest,
    journal: Arc<Journal>,
    cancel: CancellationToken,
    on_stage: &(dyn Fn(RunState) + Send + Sync),
) -> ExplainOutcome {
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
    let mut model_run = match &env.models {
        Some(models) => models.new_run(id.clone()),
        None => Run::new(
            id.clone(),
            crate::llm::BudgetLimits::from(&env.config.model.budget),
        ),
    };
    model_run.cancel = cancel.clone();
    let rel = relative(&env.root, &request.file);
    let mut ctx = Ctx {
        id,
        env,
        request,
        rel,
        journal,
        cancel,
        stop,
        model_run,
        on_stage,
        summary: None,
        document: None,
    };
    let started = Instant::now();
    let result = ctx.drive().await;
    timer.abort();
    let editor = ctx.env.editor.clone();
    let outcome = ctx.finish(result);
    if outcome.state == RunState::Done {
        // The selection now has a decision to show: the editor reads the run's journal, marks
        // the selection in its open document and asks for lenses again.
        editor.decisions_changed(&outcome.run_id).await;
    }
    tracing::info!(run = %outcome.run_id, state = %outcome.state, elapsed_ms = started.elapsed().as_millis() as u64, "explain run ended");
    outcome
}

impl Ctx<'_> {
    fn stage(&self, state: RunState, message: impl Into<String>) {
        let message = message.into();
        (self.on_stage)(state);
        self.env.editor.progress(state.as_str(), &message, None);
        self.journal.record(Event::Stage { state, message });
    }

    fn halt_for_stop(&self) -> Halt {
        match self.stop.load(Ordering::SeqCst) {
            STOP_WALL_CLOCK => Halt::Failed(format!(
                "the explain run reached its wall-clock limit of {} s and was stopped; no document was written. Raise `run.wall_clock_secs`, or explain a smaller selection",
                self.env.config.run.wall_clock_secs
            )),
            _ => Halt::Cancelled("the explain run was cancelled; no document was written".into()),
        }
    }

    fn check(&self) -> Result<(), Halt> {
        if self.cancel.is_cancelled() {
            return Err(self.halt_for_stop());
        }
        Ok(())
    }

    fn usage(&self) -> UsageTotals {
        let total = self.model_run.budget.total();
        UsageTotals {
            prompt_tokens: total.input_tokens,
            completion_tokens: total.output_tokens,
            cost_usd: total.cost_usd,
        }
    }

    async fn drive(&mut self) -> Result<String, Halt> {
        let (first, last) = self.request.lines;
        self.journal.record(Event::RunStarted {
            run_id: self.id.clone(),
            kind: "explain".into(),
            goal: goal_of(&self.env.root, &self.request),
            selection: Some(format!("{}:{first}-{last}", self.rel)),
            config_digest: text_hash(format!("{:?}", self.env.config).as_bytes()),
            workspace: self.env.root.display().to_string(),
        });
        self.stage(
            RunState::Planning,
            format!("reading {}:{first}-{last} and its context", self.rel),
        );
        let text = self.text()?;
        let (range, lines) = selected(&text, self.request.lines).ok_or_else(|| {
            Halt::Failed(format!(
                "lines {first}-{last} are past the end of {} ({} lines); select the code to explain again",
                self.rel,
                line_count(&text)
            ))
        })?;
        let selection = text[range.clone()].to_string();
        if selection.trim().is_empty() {
            return Err(Halt::Failed(format!(
                "lines {}-{} of {} are blank; select the code to explain",
                lines.0, lines.1, self.rel
            )));
        }
        // A selection is shown whole or not at all, like a coder's file: the same bound.
        let most = self.env.config.run.max_file_bytes;
        if selection.len() as u64 > most {
            return Err(Halt::Failed(format!(
                "lines {}-{} of {} are {} bytes; the explainer is shown at most {most} (`run.max_file_bytes`): select less",
                lines.0,
                lines.1,
                self.rel,
                selection.len()
            )));
        }
        let client = self.client()?;
        let context = self.context(&text, range).await;
        self.check()?;
        self.stage(
            RunState::Reviewing,
            format!("explaining {}:{}-{}", self.rel, lines.0, lines.1),
        );
        let input = ExplainerInput {
            file: self.rel.clone(),
            lines,
            selection: selection.clone(),
            context,
            question: self.request.question.clone(),
        };
        let asked = Instant::now();
        let answer = explainer::explain(&client, &self.model_run, &input).await;
        let (explanation, model) = self.answered(&client, asked, answer)?;
        // A cancel that arrived with the reply still wins: nothing is written after it.
        self.check()?;
        self.stage(RunState::Presenting, "writing the explanation");
        let name = document_name(&self.request.file, lines.0, &self.id);
        let path = artifacts::artifact_path(&self.env.root, ArtifactKind::Explanation, &name);
        let markdown = document(&DocumentHeader {
            file: &self.rel,
            lines,
            run_id: &self.id,
            model: &model,
            provider: client.name(),
            question: self.request.question.as_deref(),
            explanation: &explanation,
        });
        artifacts::write_artifact(&path, &markdown)
            .map_err(|e| Halt::Failed(format!("the explanation could not be saved: {e:#}")))?;
        let document = relative(&self.env.root, &path);
        let summary = explanation.summary.trim().to_string();
        self.journal.record(Event::Explanation {
            file: self.rel.clone(),
            lines: [lines.0, lines.1],
            summary: summary.clone(),
            document: document.clone(),
        });
        let (context_before, context_after) =
            crate::decisions::locate::line_range(&text, [lines.0, lines.1])
                .map(|r| super::present::context_around(&text, r.start, r.end))
                .unwrap_or_default();
        self.journal.record(Event::Anchored {
            hunk: 1,
            file: self.rel.clone(),
            lines: [lines.0, lines.1],
            hash: text_hash(selection.as_bytes()),
            written: selection.clone(),
            original: selection,
            file_hash: text_hash(text.as_bytes()),
            context_before,
            context_after,
            step: None,
            block: None,
            summary: summary.clone(),
        });
        self.summary = Some(summary);
        self.document = Some(path);
        Ok(format!(
            "{}:{}-{} explained in {document}",
            self.rel, lines.0, lines.1
        ))
    }

    /// The file's text as the user has it: the open buffer's snapshot, else the disk.
    fn text(&self) -> Result<String, Halt> {
        if let Some(open) = self.env.open.get(&self.request.file) {
            return Ok(open.text.clone());
        }
        crate::util::read_regular_text(&self.request.file, self.env.config.run.max_file_bytes)
            .map_err(|e| Halt::Failed(format!("reading {}: {e}", self.rel)))
    }

    fn client(&self) -> Result<ModelClient, Halt> {
        match &self.env.models {
            Some(models) => Ok(models.for_agent(AgentRole::Explainer).clone()),
            None => Err(Halt::Failed(
                "no model is configured for the explainer agent: set `[model] base_url` and `model` in conductor.toml (see docs/providers.md), then check it with `conductor doctor`".into(),
            )),
        }
    }

    /// The context bundle of the selection, rendered as a prompt and its manifest journalled;
    /// empty (and the explainer shown the selection alone) when there is no index or no bundle.
    async fn context(&self, text: &str, range: std::ops::Range<usize>) -> String {
        let Some(index) = self.env.index.clone() else {
            return String::new();
        };
        let request = BundleRequest {
            file: self.request.file.clone(),
            text: Some(text.to_string()),
            tree: None,
            range,
            goal: self.request.question.clone(),
            budget: None,
        };
        let bundle = match super::heavy(move || build_bundle(&index, &request)).await {
            Ok(Ok(bundle)) => bundle,
            Ok(Err(err)) => {
                tracing::warn!(run = %self.id, "no context bundle: {err:#}");
                return String::new();
            }
            Err(err) => {
                tracing::warn!(run = %self.id, "the context bundle build stopped: {err}");
                return String::new();
            }
        };
        self.journal.record(super::context_event(None, &bundle));
        bundle.to_prompt()
    }

    /// Journals one model response (metadata only: model, latency, tokens, cost).
    fn journal_response(&self, client: &ModelClient, r: &ChatResponse) {
        self.journal
            .record(super::response_event(AgentRole::Explainer, client, None, r));
    }

    /// Journals the explainer's responses (or its failure); the explanation and the model that
    /// gave it, or the run's end.
    fn answered(
        &self,
        client: &ModelClient,
        asked: Instant,
        answer: Result<crate::agents::Answer<Explanation>, AskError>,
    ) -> Result<(Explanation, String), Halt> {
        match answer {
            Ok(answer) => {
                for r in &answer.responses {
                    self.journal_response(client, r);
                }
                let model = answer.responses.last().map_or_else(
                    || client.settings().model.clone(),
                    |r| {
                        if r.model.is_empty() {
                            client.settings().model.clone()
                        } else {
                            r.model.clone()
                        }
                    },
                );
                Ok((answer.value, model))
            }
            Err(AskError::Invalid {
                error, responses, ..
            }) => {
                for r in &responses {
                    self.journal_response(client, r);
                }
                Err(Halt::Failed(format!(
                    "the explainer model's reply did not follow the protocol, even after a corrective retry ({error}); no document was written. A stronger model for this agent (`[model.agents.explainer]`) usually helps"
                )))
            }
            Err(AskError::Model(err)) => {
                self.journal.record(Event::ModelRequest {
                    agent: AgentRole::Explainer.as_str().into(),
                    provider: client.name().into(),
                    model: client.settings().model.clone(),
                    step: None,
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
                        "the run's budget would be exceeded: {exceeded}; no document was written"
                    )),
                    other => Halt::Failed(format!(
                        "the explainer model failed: {other}; no document was written. `conductor doctor` checks the provider"
                    )),
                })
            }
        }
    }

    fn finish(self, result: Result<String, Halt>) -> ExplainOutcome {
        let (state, message) = match result {
            Ok(message) => (RunState::Done, message),
            Err(Halt::Failed(message)) => (RunState::Failed, message),
            Err(Halt::Cancelled(message)) => (RunState::Cancelled, message),
        };
        let usage = self.usage();
        self.stage(state, message.clone());
        self.journal.record(Event::Outcome {
            state,
            message: message.clone(),
            files: Vec::new(),
            usage,
        });
        let done = state == RunState::Done;
        ExplainOutcome {
            run_id: self.id,
            state,
            message,
            summary: self.summary.filter(|_| done),
            document: self.document.filter(|_| done),
            usage,
            journal: self.journal.path().to_path_buf(),
        }
    }
}

/// How many lines `text` has, as an editor counts them (a final line break does not start one
/// more).
fn line_count(text: &str) -> usize {
    let rope = ropey::Rope::from_str(text);
    let lines = rope.len_lines();
    if text.ends_with(['\n', '\r']) {
        lines - 1
    } else {
        lines
    }
}

/// The bytes of whole lines `first..=last` (1-based) of `text`, with their line breaks, and the
/// lines as clamped to the text; `None` when `first` is past the end. Lines end where LSP says
/// (`\n`, `\r\n`, `\r`), as the editor that sent them counts.
fn selected(
    text: &str,
    (first, last): (usize, usize),
) -> Option<(std::ops::Range<usize>, (usize, usize))> {
    let count = line_count(text);
    let first = first.max(1);
    if first > count {
        return None;
    }
    let last = last.clamp(first, count);
    let rope = ropey::Rope::from_str(text);
    let start = rope.line_to_byte(first - 1);
    let end = rope.line_to_byte(last);
    Some((start..end, (first, last)))
}

/// The document's file name: the file's stem, the selection's first line and the run id
/// (`client-L40-20261201-185530-00ab12.md`), so each explanation has its own document.
fn document_name(file: &Path, line: usize, run_id: &str) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "selection".into());
    format!("{stem}-L{line}-{run_id}.md")
}

/// What the document's header names.
struct DocumentHeader<'a> {
    file: &'a str,
    lines: (usize, usize),
    run_id: &'a str,
    model: &'a str,
    provider: &'a str,
    question: Option<&'a str>,
    explanation: &'a Explanation,
}

/// The run's start as `2026-12-01 18:55:30 UTC`, read from its id (`20261201-185530-…`, see
/// `journal::new_run_id`); `None` for an id of another shape.
fn started_at(run_id: &str) -> Option<String> {
    let mut parts = run_id.split('-');
    let (date, time) = (parts.next()?, parts.next()?);
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(date, 8) || !digits(time, 6) {
        return None;
    }
    Some(format!(
        "{}-{}-{} {}:{}:{} UTC",
        &date[..4],
        &date[4..6],
        &date[6..],
        &time[..2],
        &time[2..4],
        &time[4..]
    ))
}

/// The explanation document: a header naming the file, lines, run, model and date (and the
/// question, when there was one), then the explanation's sections.
fn document(h: &DocumentHeader<'_>) -> String {
    let (first, last) = h.lines;
    let mut out = format!(
        "# Trade-offs of {} lines {first}-{last}\n\n- File: `{}`, lines {first}-{last}\n- Run: `{}` (`conductor explain --run {}`)\n- Model: {} ({})\n",
        h.file, h.file, h.run_id, h.run_id, h.model, h.provider
    );
    if let Some(date) = started_at(h.run_id) {
        out.push_str(&format!("- Date: {date}\n"));
    }
    if let Some(question) = h.question.map(str::trim).filter(|q| !q.is_empty()) {
        let question: String = question
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(explainer::MAX_QUESTION_CHARS)
            .collect();
        out.push_str(&format!("- Question: {question}\n"));
    }
    out.push('\n');
    out.push_str(&explainer::sections(h.explanation));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_are_whole_lines_clamped_to_the_text() {
        let text = "a\nbb\r\nccc\rdddd";
        assert_eq!(line_count(text), 4);
        assert_eq!(selected(text, (2, 3)), Some((2..10, (2, 3))));
        assert_eq!(&text[2..10], "bb\r\nccc\r");
        assert_eq!(selected(text, (4, 9)), Some((10..14, (4, 4))));
        assert_eq!(selected(text, (5, 6)), None);
        assert_eq!(
            selected("a\n", (2, 2)),
            None,
            "no line after the last break"
        );
        assert_eq!(selected("a\n", (1, 1)), Some((0..2, (1, 1))));
    }

    #[test]
    fn the_document_is_named_by_stem_line_and_run_and_dated_by_the_run() {
        assert_eq!(
            document_name(
                Path::new("/w/src/http/client.rs"),
                40,
                "20261201-185530-00ab12"
            ),
            "client-L40-20261201-185530-00ab12.md"
        );
        assert_eq!(
            started_at("20261201-185530-00ab12").as_deref(),
            Some("2026-12-01 18:55:30 UTC")
        );
        assert_eq!(started_at("r1"), None);
    }
}
