//! What a run started from the editor asks for, and what its user is told when it ends: the
//! goal of a `// conductor: <goal>` comment, of "write tests" and of a bounded goal; the
//! one-step requests; which document is a run's plan; the closing message of a run and of an
//! explain run. Plain data: `lsp/runs.rs` and `lsp/explain.rs` convert (a [`Tone`] is a
//! `MessageType`).

use std::path::{Path, PathBuf};

use super::explain::ExplainOutcome;
use super::{RunKind, RunOutcome, RunRequest, Selection};
use crate::context::WorkspaceIndex;
use crate::journal::RunState;

/// The longest goal a run takes from the editor, in characters (a pasted file is cut).
pub const MAX_GOAL_CHARS: usize = 8_000;

/// `goal`, cut at [`MAX_GOAL_CHARS`].
pub fn limit(goal: &str) -> String {
    goal.chars().take(MAX_GOAL_CHARS).collect()
}

/// The goal of a `// conductor: <goal>` comment line, if `line` is one.
pub fn goal_comment(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix("//")?;
    let rest = rest.trim_start_matches(['/', '!']).trim_start();
    let goal = rest.strip_prefix("conductor:")?.trim();
    (!goal.is_empty()).then_some(goal)
}

/// A planned run of `goal` on `lines` of `file` (1-based, inclusive); `plan_only` stops after
/// the plan; `remove_line` is the comment line the goal came from, removed once coded.
pub fn goal_run(
    goal: &str,
    file: PathBuf,
    lines: Option<(usize, usize)>,
    plan_only: bool,
    remove_line: Option<String>,
) -> RunRequest {
    RunRequest {
        kind: RunKind::Goal,
        goal: limit(goal),
        selection: Some(Selection { file, lines }),
        paths: Vec::new(),
        plan_only,
        no_plan: false,
        apply: true,
        remove_line,
        apply_failing_tests: false,
        follow: None,
    }
}

/// A run of one coder step on `lines` of `file`, with no planner ("write tests", "fix with
/// agents").
pub fn one_step(goal: &str, file: PathBuf, lines: Option<(usize, usize)>) -> RunRequest {
    RunRequest {
        no_plan: true,
        ..goal_run(goal, file, lines, false, None)
    }
}

/// The goal of "write tests" on `lines` of `file` (1-based): the enclosing function's name when
/// `index` knows it, else the lines, else the file's public functions.
pub fn tests_goal(
    root: Option<&Path>,
    index: Option<&WorkspaceIndex>,
    file: &Path,
    lines: Option<(usize, usize)>,
) -> String {
    let rel = root.map_or_else(|| file.display().to_string(), |r| super::relative(r, file));
    let name = lines.and_then(|(first, _)| {
        let index = index?;
        let id = index.file_id(Path::new(&rel))?;
        let tags = &index.file(id)?.tags;
        tags.enclosing(first.saturating_sub(1) as u32, true)
            .map(|d| d.name.clone())
    });
    match (name, lines) {
        (Some(name), _) => format!(
            "Write unit tests for `{name}` in {rel}: its normal cases, its edge cases and its errors, in the file's test module (create one if there is none). Do not change `{name}` itself."
        ),
        (None, Some((a, b))) => format!(
            "Write unit tests for the code at lines {a}-{b} of {rel}: its normal cases, its edge cases and its errors, in the file's test module (create one if there is none). Do not change the code under test."
        ),
        (None, None) => format!(
            "Write unit tests for {rel}: its public functions' normal cases, edge cases and errors, in the file's test module (create one if there is none). Do not change the code under test."
        ),
    }
}

/// The run whose plan document `path` is (`<root>/.conductor/runs/<id>/plan.md`).
pub fn plan_document_run(root: &Path, path: &Path) -> Option<String> {
    let runs = crate::journal::runs_dir(root);
    let rest = path.strip_prefix(&runs).ok()?;
    let mut parts = rest.components();
    let id = parts.next()?.as_os_str().to_str()?.to_string();
    (parts.next()?.as_os_str() == "plan.md" && parts.next().is_none()).then_some(id)
}

/// How a message is to be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// All went as asked.
    Info,
    /// It ended, but something needs the user's eye (a refused edit, a high finding left).
    Warning,
    /// It failed.
    Error,
}

/// What the user is told when a run ends.
pub fn run_message(outcome: &RunOutcome) -> (Tone, String) {
    let id = &outcome.run_id;
    match outcome.state {
        RunState::Failed => (
            Tone::Error,
            format!(
                "Conductor run {id} failed: {} (journal: {})",
                outcome.message,
                outcome.journal.display()
            ),
        ),
        RunState::Cancelled => (
            Tone::Info,
            format!("Conductor run {id}: {}", outcome.message),
        ),
        _ => {
            let refused = outcome
                .files
                .iter()
                .any(|f| matches!(f.applied, Some(Err(_))));
            let warn =
                refused || !outcome.refused_hunks.is_empty() || outcome.has_unresolved_high();
            (
                if warn { Tone::Warning } else { Tone::Info },
                format!("Conductor run {id}: {}", outcome.message),
            )
        }
    }
}

/// What the user is told when an explain run ends: its summary, or what failed.
pub fn explain_message(outcome: &ExplainOutcome) -> (Tone, String) {
    let id = &outcome.run_id;
    match outcome.state {
        RunState::Done => (
            Tone::Info,
            format!(
                "Conductor run {id}: {}",
                outcome.summary.as_deref().unwrap_or(&outcome.message)
            ),
        ),
        RunState::Cancelled => (
            Tone::Info,
            format!("Conductor run {id}: {}", outcome.message),
        ),
        _ => (
            Tone::Error,
            format!(
                "Conductor run {id} failed: {} (journal: {})",
                outcome.message,
                outcome.journal.display()
            ),
        ),
    }
}

/// One run of `conductor.runs` (its JSON is the command's answer, field by field).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    /// Its id.
    pub id: String,
    /// Its stage while in flight, else the state its journal ended in.
    pub state: &'static str,
    /// `goal`, `fix`, `review`, `explain` (absent for a run whose journal is not readable yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The goal.
    pub goal: String,
    /// The files its change touches.
    pub files: Vec<String>,
    /// Prompt and completion tokens.
    pub tokens: u64,
    /// What it cost.
    pub cost_usd: f64,
    /// When it started, milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// Whether it is in flight.
    pub active: bool,
    /// Its journal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
}

/// The runs of a workspace, newest first: each journalled run (`summaries`) with its stage
/// when it is in flight (`active`), then the runs in flight whose journal is not readable yet.
pub fn run_list(
    summaries: &[crate::journal::RunSummary],
    active: &[super::ActiveRun],
) -> Vec<Listed> {
    let mut out: Vec<Listed> = summaries
        .iter()
        .map(|s| {
            let live = active.iter().find(|a| a.id == s.id);
            Listed {
                id: s.id.clone(),
                state: live.map_or(s.state, |a| a.state).as_str(),
                kind: Some(s.kind.clone()),
                goal: s.goal.clone(),
                files: s.files.clone(),
                tokens: s.usage.prompt_tokens + s.usage.completion_tokens,
                cost_usd: s.usage.cost_usd,
                started_ms: Some(s.started_ms),
                active: live.is_some(),
                journal: Some(s.journal.display().to_string()),
            }
        })
        .collect();
    for run in active {
        if !summaries.iter().any(|s| s.id == run.id) {
            out.push(Listed {
                id: run.id.clone(),
                state: run.state.as_str(),
                kind: None,
                goal: run.goal.clone(),
                files: Vec::new(),
                tokens: 0,
                cost_usd: 0.0,
                started_ms: None,
                active: true,
                journal: None,
            });
        }
    }
    out.sort_by(|a, b| b.id.cmp(&a.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_comments_are_recognised_and_others_are_not() {
        assert_eq!(
            goal_comment("    // conductor: add retries"),
            Some("add retries")
        );
        assert_eq!(
            goal_comment("/// conductor: document it"),
            Some("document it")
        );
        assert_eq!(goal_comment("// conductor:"), None);
        assert_eq!(goal_comment("let x = 1; // conductor: no"), None);
        assert_eq!(goal_comment("// Conductor runs"), None);
    }

    #[test]
    fn only_a_runs_plan_document_is_one() {
        let root = Path::new("/w");
        assert_eq!(
            plan_document_run(root, Path::new("/w/.conductor/runs/20261201-1/plan.md")),
            Some("20261201-1".into())
        );
        assert_eq!(
            plan_document_run(root, Path::new("/w/.conductor/runs/x/other.md")),
            None
        );
        assert_eq!(plan_document_run(root, Path::new("/w/src/plan.md")), None);
        assert_eq!(
            plan_document_run(root, Path::new("/w/.conductor/runs/plan.md")),
            None
        );
    }

    #[test]
    fn a_goal_is_cut_at_its_limit_and_a_one_step_run_skips_the_planner() {
        let long = "é".repeat(MAX_GOAL_CHARS + 10);
        let request = one_step(&long, PathBuf::from("/w/src/a.rs"), Some((3, 4)));
        assert_eq!(request.goal.chars().count(), MAX_GOAL_CHARS);
        assert!(request.no_plan && request.apply && !request.plan_only);
        let planned = goal_run(
            "add retries",
            PathBuf::from("/w/src/a.rs"),
            None,
            true,
            None,
        );
        assert!(!planned.no_plan && planned.plan_only);
    }

    #[test]
    fn without_an_index_the_tests_goal_names_the_lines_or_the_file() {
        let root = Path::new("/w");
        let file = Path::new("/w/src/a.rs");
        let goal = tests_goal(Some(root), None, file, Some((3, 9)));
        assert!(
            goal.starts_with("Write unit tests for the code at lines 3-9 of src/a.rs"),
            "{goal}"
        );
        let goal = tests_goal(Some(root), None, file, None);
        assert!(goal.starts_with("Write unit tests for src/a.rs:"), "{goal}");
    }

    #[test]
    fn a_failure_is_an_error_naming_the_journal_and_success_shows_the_summary() {
        let outcome = |state, summary: Option<&str>| ExplainOutcome {
            run_id: "r1".into(),
            state,
            message: "the explainer model failed: 500".into(),
            summary: summary.map(str::to_string),
            document: None,
            usage: Default::default(),
            journal: "/w/.conductor/runs/r1.jsonl".into(),
        };
        let (tone, text) = explain_message(&outcome(RunState::Failed, None));
        assert_eq!(tone, Tone::Error);
        assert!(
            text.contains("failed: the explainer model failed: 500"),
            "{text}"
        );
        assert!(text.contains("r1.jsonl"), "{text}");
        let (tone, text) = explain_message(&outcome(RunState::Done, Some("Caches lookups.")));
        assert_eq!(tone, Tone::Info);
        assert_eq!(text, "Conductor run r1: Caches lookups.");
    }
}
