//! Existing code on its own, outside a run: the security review of a file or a selection
//! (`conductor.review` in the editor), the tests that exercise a function
//! (`conductor.runTests`), where each failing test and each high finding a run left behind
//! belongs, and what the user is told about each (summaries, hovers, the goal of "Fix with
//! agents"). Plain data in and out: `lsp/review.rs` turns it into pinned diagnostics, hovers
//! and messages.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio_util::sync::CancellationToken;

use super::review::{ReviewRecord, journal_review, model_review, static_review};
use super::{ChangedFile, FindingStatus, ReviewFinding};
use crate::config::Config;
use crate::context::WorkspaceIndex;
use crate::editor::Editor;
use crate::security::Severity;
use crate::syntax::Language;
use crate::tester::{TestReport, TestStatus};

/// One file's text as the user has it now, and the lines a command is about.
#[derive(Debug, Clone)]
pub struct ExistingCode {
    /// The workspace root (canonical).
    pub root: PathBuf,
    /// The file, relative to the root, `/`-separated.
    pub rel: String,
    /// The file's canonical path.
    pub real: PathBuf,
    /// Its text (the open buffer's, else the disk's).
    pub text: String,
    /// 1-based inclusive lines of the selection; `None`: the whole file.
    pub lines: Option<(usize, usize)>,
}

impl ExistingCode {
    /// The lines, as the user reads them in messages.
    pub fn describe(&self) -> String {
        match self.lines {
            Some((a, b)) if a == b => format!("{} (line {a})", self.rel),
            Some((a, b)) => format!("{} (lines {a}-{b})", self.rel),
            None => self.rel.clone(),
        }
    }

    /// Whether 1-based `line` is in the selection (every line is, without one).
    pub fn covers(&self, line: usize) -> bool {
        self.lines.is_none_or(|(a, b)| a <= line && line <= b)
    }
}

/// Work started in the background: its id, how to cancel it, its end.
#[derive(Debug)]
pub struct Started<T> {
    /// The journal id (`review-…`) or a name for the log.
    pub id: String,
    /// Cancels the work (the editor's cancel button).
    pub cancel: CancellationToken,
    /// What it came to.
    pub outcome: tokio::task::JoinHandle<T>,
}

/// What a review of existing code came to.
#[derive(Debug, Clone)]
pub struct ReviewDone {
    /// Its id, as journalled.
    pub id: String,
    /// The findings on the reviewed lines: static (with the model's verdicts), then the model's.
    pub findings: Vec<ReviewFinding>,
    /// The user cancelled it: nothing is to be published.
    pub cancelled: bool,
    /// It was journalled (`.conductor/runs/<id>.jsonl`).
    pub journalled: bool,
    /// What the user is told, in one line.
    pub summary: String,
}

impl ReviewDone {
    /// Whether a high or critical finding is among the findings (the message is a warning).
    pub fn has_high(&self) -> bool {
        self.findings.iter().any(|f| f.severity >= Severity::High)
    }
}

/// Starts the security review of `code`: the security rules on its text, then, when a model
/// is configured and `[review] model` is on, the model review with its refutation check;
/// findings outside the selection are left out. Journalled as a run of kind `review`,
/// cancelled or not (its model requests cost tokens either way). Progress goes to `editor`.
pub fn start_review(
    app: &crate::app::App,
    code: ExistingCode,
    editor: Arc<dyn Editor>,
) -> Started<ReviewDone> {
    let config = app.config();
    let id = format!("review-{}", crate::journal::new_run_id());
    // A model that cannot be set up is a skipped model review, not a failed review.
    let models = if config.model.is_configured() && config.review.model {
        app.models().map(Some).map_err(|e| e.to_string())
    } else {
        Ok(None)
    };
    let run = match &models {
        Ok(Some(models)) => models.new_run(id.clone()),
        _ => crate::llm::Run::new(
            id.clone(),
            crate::llm::BudgetLimits::from(&config.model.budget),
        ),
    };
    let cancel = run.cancel.clone();
    let outcome = tokio::spawn(review(config, models, run, code, editor));
    Started {
        id,
        cancel,
        outcome,
    }
}

async fn review(
    config: Arc<Config>,
    models: Result<Option<Arc<crate::llm::Models>>, String>,
    run: crate::llm::Run,
    code: ExistingCode,
    editor: Arc<dyn Editor>,
) -> ReviewDone {
    let id = run.id.clone();
    editor.progress("review", "static review", Some(10));
    let files = vec![ChangedFile {
        path: code.rel.clone(),
        real: code.real.clone(),
        before: None,
        after: code.text.clone(),
        base: crate::editor::Base::Missing,
        applied: None,
    }];
    let scanned = files.clone();
    let settings = config.security.clone();
    let mut findings = super::heavy(move || static_review(&scanned, &settings, false))
        .await
        .unwrap_or_default();
    findings.retain(|f| f.status == FindingStatus::New && code.covers(f.line));
    let goal = match code.lines {
        Some((a, b)) => format!(
            "a security review of the existing code at lines {a}-{b} of {}",
            code.rel
        ),
        None => format!("a security review of the existing code of {}", code.rel),
    };
    let (models, model_problem) = match models {
        Ok(models) => (models, None),
        Err(problem) => (None, Some(problem)),
    };
    if models.is_some() {
        editor.progress("review", "model review", Some(40));
    }
    let client = models
        .as_ref()
        .map(|m| m.for_agent(crate::llm::AgentRole::Security));
    let model = model_review(client, &run, &goal, &files, &findings, &config.review).await;
    // A skipped review's message already says "the model review was skipped (why)".
    let model_outcome = match (model_problem, model.outcome.status.as_str()) {
        (Some(problem), _) => {
            format!("the model review was skipped (the model cannot be used: {problem})")
        }
        (None, "done") => format!("model review: {}", model.outcome.message),
        (None, _) => model.outcome.message.clone(),
    };
    let from_model = model.kept.len();
    model.annotate(&mut findings);
    findings.extend(model.kept.iter().filter(|f| code.covers(f.line)).cloned());
    let cancelled = run.cancel.is_cancelled();
    let summary = if cancelled {
        format!(
            "Conductor: the security review of {} was cancelled; nothing was published",
            code.describe()
        )
    } else {
        review_summary(&code, &findings, from_model, &model_outcome)
    };
    let total = run.budget.total();
    let record = ReviewRecord {
        id: &id,
        goal: &goal,
        selection: code.lines.map(|(a, b)| format!("{}:{a}-{b}", code.rel)),
        config_digest: crate::editor::text_hash(format!("{config:?}").as_bytes()),
        findings: &findings,
        model_review: &model.outcome,
        proposed: model.proposed,
        responses: &model.responses,
        failures: &model.failures,
        client,
        usage: crate::journal::UsageTotals {
            prompt_tokens: total.input_tokens,
            completion_tokens: total.output_tokens,
            cost_usd: total.cost_usd,
        },
        message: if cancelled {
            "the security review was cancelled; nothing was published"
        } else {
            &summary
        },
        cancelled,
    };
    let journalled = match journal_review(&code.root, &record) {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!("journalling the security review {id}: {err}");
            false
        }
    };
    let mut summary = summary;
    if journalled && !cancelled {
        summary.push_str(&format!("; journalled as {id} (`conductor runs`)"));
    }
    ReviewDone {
        id,
        findings,
        cancelled,
        journalled,
        summary,
    }
}

/// "Conductor security review of src/a.rs: 2 findings: line 3: … (high); …", with how many
/// came from the model, the model's doubts and what became of the model review.
fn review_summary(
    code: &ExistingCode,
    findings: &[ReviewFinding],
    from_model: usize,
    model_outcome: &str,
) -> String {
    let mut listed: Vec<String> = findings
        .iter()
        .take(5)
        .map(|f| format!("line {}: {} ({})", f.line, f.rule_id, f.severity.as_str()))
        .collect();
    if findings.len() > 5 {
        listed.push(format!("and {} more", findings.len() - 5));
    }
    let found = if findings.is_empty() {
        "no findings".to_string()
    } else {
        format!(
            "{}: {}",
            plural(findings.len(), "finding"),
            listed.join("; ")
        )
    };
    let doubted = findings
        .iter()
        .filter(|f| {
            f.verdict
                .as_ref()
                .is_some_and(|v| v.verdict == "likely_false_positive")
        })
        .count();
    let doubted = match doubted {
        0 => String::new(),
        1 => "; the model thinks 1 finding is a likely false positive(s) (kept; hover for its reason)"
            .to_string(),
        n => format!(
            "; the model thinks {n} findings are likely false positive(s) (kept; hover for its reason)"
        ),
    };
    format!(
        "Conductor security review of {}: {found} ({from_model} from the model){doubted}; {model_outcome}",
        code.describe(),
    )
}

/// "1 finding", "2 findings".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The tests of one function: its name and `(test name, file)` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestsOf {
    /// The function's name.
    pub function: String,
    /// Each test and the file (relative, `/`-separated) that holds it.
    pub tests: Vec<(String, String)>,
}

/// The tests to run for the function around 0-based `line` of `code`: the test function itself
/// when the line is in one; else the test functions that call the function — in this file as
/// the user has it, then in every other file `index` knows refers to the name (by name: the
/// index has no types, so a same-named function's tests come along); else every test of the
/// function's file (its test module).
pub fn tests_for(
    code: &ExistingCode,
    line: u32,
    index: Option<&WorkspaceIndex>,
) -> Result<TestsOf, String> {
    let path = Path::new(&code.rel);
    let language = Language::for_path(path)
        .filter(|l| l.name == "rust")
        .ok_or_else(|| format!("{} is not a Rust file", code.rel))?;
    let tree = language
        .parse(&code.text)
        .ok_or_else(|| format!("{} could not be parsed", code.rel))?;
    let tags = crate::context::tags::extract(&code.text, &tree)
        .map_err(|e| format!("{}: {e}", code.rel))?;
    let function = tags
        .enclosing(line, true)
        .ok_or_else(|| {
            format!(
                "no function encloses line {} of {}; select a function or a test",
                line + 1,
                code.rel
            )
        })?
        .clone();
    if function.is_test {
        return Ok(TestsOf {
            tests: vec![(function.name.clone(), code.rel.clone())],
            function: function.name,
        });
    }
    let mut found: Vec<(String, String)> = Vec::new();
    let mut callers = |tags: &crate::context::tags::FileTags, rel: &str| {
        for reference in tags.references.iter().filter(|r| r.name == function.name) {
            if let Some(test) = tags.enclosing(reference.line, true).filter(|d| d.is_test) {
                let pair = (test.name.clone(), rel.to_string());
                if !found.contains(&pair) {
                    found.push(pair);
                }
            }
        }
    };
    callers(&tags, &code.rel);
    if let Some(index) = index {
        for &id in index.files_referencing(&function.name) {
            let Some(file) = index.file(id) else {
                continue;
            };
            let rel = file.path.to_string_lossy().replace('\\', "/");
            if rel != code.rel {
                callers(&file.tags, &rel);
            }
        }
    }
    if found.is_empty() {
        found = tags
            .definitions
            .iter()
            .filter(|d| d.is_test)
            .map(|d| (d.name.clone(), code.rel.clone()))
            .collect();
    }
    Ok(TestsOf {
        function: function.name,
        tests: found,
    })
}

/// Why the tests of a function cannot be run at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CannotRun {
    /// No test calls it and its file has none (a bad request: write some first).
    NoTests(String),
    /// The tester is off, or has no command for their files (the user is told).
    Tester(String),
}

/// Why the tests of `of` cannot be run at all, in words the user can act on. A sandbox that
/// is required but missing is found by the tester itself, and said when it ends.
pub fn why_tests_cannot_run(
    code: &ExistingCode,
    of: &TestsOf,
    config: &Config,
) -> Result<(), CannotRun> {
    if of.tests.is_empty() {
        return Err(CannotRun::NoTests(format!(
            "no test calls `{}` and {} has no tests; write some first (\"Conductor: Write tests for this\")",
            of.function, code.rel
        )));
    }
    let settings = &config.tester;
    if !settings.enabled {
        return Err(CannotRun::Tester(
            "the tester is off (`[tester] enabled = false`)".to_string(),
        ));
    }
    let owners: Vec<crate::tester::Change> = of
        .tests
        .iter()
        .map(|(_, rel)| crate::tester::Change {
            path: rel.clone(),
            before: None,
            after: String::new(),
        })
        .collect();
    crate::tester::command_for(&code.root, settings, &owners)
        .map(|_| ())
        .map_err(CannotRun::Tester)
}

/// Runs the tests of `of` with the configured tester in its scratch copy, off the async
/// threads; `cancel` stops it. `Err`: the tester's task stopped unexpectedly.
pub async fn run_tests(
    config: &Config,
    root: &Path,
    of: &TestsOf,
    cancel: Arc<AtomicBool>,
) -> Result<TestReport, String> {
    let names: Vec<String> = of.tests.iter().map(|(n, _)| n.clone()).collect();
    let mut owners: Vec<String> = of.tests.iter().map(|(_, f)| f.clone()).collect();
    owners.sort();
    owners.dedup();
    let settings = config.tester.clone();
    let secret_env: Vec<String> = crate::llm::AgentRole::ALL
        .iter()
        .filter_map(|role| config.model.for_agent(*role).api_key_env)
        .collect();
    let root = root.to_path_buf();
    crate::util::background(move || {
        crate::tester::run_selected(
            &crate::tester::TestRequest {
                root: &root,
                settings: &settings,
                secret_env: &secret_env,
                cancel: &cancel,
            },
            &owners,
            &names,
        )
    })
    .await
    .map_err(|err| err.to_string())
}

/// Whether a report's tests ran at all (not skipped, no error before they could).
pub fn tests_ran(report: &TestReport) -> bool {
    !matches!(report.status, TestStatus::Skipped | TestStatus::Error)
}

/// Where a failing test is shown, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailurePlace {
    /// The file (relative to the root).
    pub rel: String,
    /// The 0-based line: where it panicked, else its test function's.
    pub line: usize,
    /// The test's name, as libtest names it.
    pub name: String,
    /// The diagnostic's message (the failure's first 12 lines).
    pub message: String,
    /// The hover: the whole failure, fenced, and how to rerun it.
    pub hover: String,
}

/// Each failure of `report` at its assertion (where it panicked), else at its test function;
/// a failure of a test that is not among `of`'s and has no location is left out.
pub fn failure_places(code: &ExistingCode, of: &TestsOf, report: &TestReport) -> Vec<FailurePlace> {
    let mut out = Vec::new();
    for failure in &report.failed {
        let short = failure.name.rsplit("::").next().unwrap_or(&failure.name);
        let (rel, line) = match &failure.location {
            Some(at) => (at.file.clone(), at.line.saturating_sub(1)),
            None => match of.tests.iter().find(|(n, _)| n == short) {
                Some((_, rel)) => (rel.clone(), test_line(code, rel, short)),
                None => continue,
            },
        };
        let message = failure
            .message
            .lines()
            .take(12)
            .collect::<Vec<_>>()
            .join("\n");
        out.push(FailurePlace {
            rel,
            line,
            name: failure.name.clone(),
            message: format!("Test `{}` failed: {message}", failure.name),
            hover: test_hover(&failure.name, &failure.message, &report.command),
        });
    }
    out
}

/// What the user is told when the tests of `function` ended.
pub fn tests_summary(function: &str, report: &TestReport) -> String {
    let failing: Vec<&str> = report.failed.iter().map(|f| f.name.as_str()).collect();
    let mut summary = format!("Conductor tests of `{function}`: {}", report.message);
    if !failing.is_empty() {
        summary.push_str(&format!(" — failing: {}", failing.join(", ")));
    }
    summary
}

/// The 0-based line of test function `name` in `rel` (0 when it cannot be found).
fn test_line(code: &ExistingCode, rel: &str, name: &str) -> usize {
    let text = if rel == code.rel {
        code.text.clone()
    } else {
        crate::util::read_regular_text(&code.root.join(rel), crate::util::MAX_READ_BYTES)
            .unwrap_or_default()
    };
    let Some(language) = Language::for_path(Path::new(rel)) else {
        return 0;
    };
    language
        .parse(&text)
        .and_then(|tree| crate::context::tags::extract(&text, &tree).ok())
        .and_then(|tags| {
            tags.definitions
                .iter()
                .find(|d| d.is_test && d.name == name)
                .map(|d| d.start_line as usize)
        })
        .unwrap_or(0)
}

/// The high and critical findings a run left in one file, on the text they are to be shown on.
#[derive(Debug, Clone)]
pub struct LeftBehind<'a> {
    /// The file as the run changed it.
    pub file: &'a ChangedFile,
    /// The editor applied the change: the findings sit on their own lines of the new text.
    /// Otherwise the change was held back and they sit on the old text, where their hunk
    /// would go, and say so.
    pub applied: bool,
    /// The text their lines are lines of.
    pub text: &'a str,
    /// The findings, with lines of `text`.
    pub findings: Vec<ReviewFinding>,
}

/// After a run: the high and critical findings its change (`files`) introduced and its improve
/// rounds did not remove (`findings`), per file. A change that keeps such a finding is held back, not applied
/// (`orchestrator::drive`), so its lines are not in the user's text: each finding is then
/// moved to the line of the text before the change where its hunk would go. A new file that
/// was not created has no text to show them on; the run's message still counts them.
pub fn left_behind<'a>(
    files: &'a [ChangedFile],
    findings: &[ReviewFinding],
) -> Vec<LeftBehind<'a>> {
    let mut out = Vec::new();
    for file in files {
        let remaining: Vec<&ReviewFinding> = findings
            .iter()
            .filter(|f| {
                f.file == file.path
                    && f.status == FindingStatus::New
                    && f.severity >= Severity::High
            })
            .collect();
        if remaining.is_empty() {
            continue;
        }
        if matches!(file.applied, Some(Ok(()))) {
            out.push(LeftBehind {
                file,
                applied: true,
                text: &file.after,
                findings: remaining.into_iter().cloned().collect(),
            });
            continue;
        }
        let Some(before) = file.before.as_deref() else {
            continue;
        };
        let hunks = crate::edits::diff::line_hunks(before, &file.after);
        let last = ropey::Rope::from_str(before).len_lines().saturating_sub(1);
        let findings = remaining
            .into_iter()
            .map(|f| ReviewFinding {
                line: before_line(&hunks, f.line.saturating_sub(1)).min(last) + 1,
                message: format!(
                    "the proposed change (not applied) brings this in at its line {}: {}",
                    f.line, f.message
                ),
                ..f.clone()
            })
            .collect();
        out.push(LeftBehind {
            file,
            applied: false,
            text: before,
            findings,
        });
    }
    out
}

/// The 0-based line of the text before a change that corresponds to `after_line` of the text
/// after it: where its hunk starts when the line is one the change wrote, else the same line
/// shifted by the hunks above it.
fn before_line(hunks: &[crate::edits::diff::LineHunk], after_line: usize) -> usize {
    let mut shift: i64 = 0;
    for hunk in hunks {
        if hunk.new.contains(&after_line) {
            return hunk.old.start;
        }
        if hunk.new.start > after_line {
            break;
        }
        shift += hunk.old.len() as i64 - hunk.new.len() as i64;
    }
    (after_line as i64 + shift).max(0) as usize
}

/// Where a review finding comes from; each is journalled under its id.
#[derive(Debug, Clone, Copy)]
pub enum Reviewed<'a> {
    /// `conductor.review`, on its own.
    Alone(&'a str),
    /// A run's review stage.
    Run(&'a str),
}

impl Reviewed<'_> {
    /// The review's or the run's id.
    pub fn id(&self) -> &str {
        match self {
            Reviewed::Alone(id) | Reviewed::Run(id) => id,
        }
    }

    /// The prefix of the finding's one-line message: "Review", "Review (run r1)".
    pub fn prefix(&self) -> String {
        match self {
            Reviewed::Run(id) => format!("Review (run {id})"),
            Reviewed::Alone(_) => "Review".to_string(),
        }
    }
}

/// The last paragraph of every review and test hover.
pub const FIX_HINT: &str = "To fix it: the code action **Conductor: Fix with agents**.";

/// `text` in a Markdown code fence longer than any run of backticks in it: test output and
/// model text are untrusted, and must not close the fence and format the rest of the hover.
fn fenced(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{}\n{fence}", text.trim_end())
}

/// The hover of a review finding (Markdown): what it is in full (the rule's explanation and
/// data-flow path, or the model's explanation), the model's verdict, where it comes from and
/// what to do.
pub fn review_hover(finding: &ReviewFinding, from: Reviewed<'_>) -> String {
    let reviewer = if finding.source == "model" {
        "the model review"
    } else {
        "the static review"
    };
    let mut out = format!(
        "**Conductor review** · {} · from {reviewer}\n\n",
        finding.severity.as_str()
    );
    match &finding.detail {
        Some(detail) if detail.contains(finding.message.as_str()) => out.push_str(detail),
        Some(detail) => out.push_str(&format!("{}\n\n{detail}", finding.message)),
        None => out.push_str(&finding.message),
    }
    match (&finding.verdict, finding.source.as_str()) {
        (Some(verdict), "static") => out.push_str(&format!(
            "\n\n**Model verdict:** {} The finding stays either way: the static rules decide what is reported, the model only comments.",
            verdict.describe()
        )),
        (Some(verdict), _) => out.push_str(&format!("\n\n**Refutation check:** {}", verdict.describe())),
        (None, "static") => out.push_str("\n\n**Model verdict:** none (no model review, or the model did not judge this finding)."),
        (None, _) => {}
    }
    let id = from.id();
    match from {
        Reviewed::Alone(_) => out.push_str(&format!(
            "\n\nFrom the security review `{id}` (journalled: `conductor runs` lists it)."
        )),
        Reviewed::Run(_) => out.push_str(&format!(
            "\n\nFrom the review stage of run `{id}` (`conductor explain --run {id}` tells its story)."
        )),
    }
    out.push_str("\n\n");
    out.push_str(FIX_HINT);
    out
}

/// How to run one failing test again: in the editor, and in a terminal (the tester's command,
/// narrowed to the test when it is `cargo test`).
fn rerun_hint(command: &[String], test: &str) -> String {
    let is_cargo_test = command.first().is_some_and(|c| c == "cargo")
        && command.get(1).is_some_and(|c| c == "test");
    let terminal = if is_cargo_test {
        format!("{} -- {test} --exact", command.join(" "))
    } else {
        command.join(" ")
    };
    format!(
        "To run it again: **Conductor: Run tests** on the function (in the sandboxed scratch copy), or in a terminal `{terminal}`."
    )
}

/// The hover of a failing test (Markdown): its name, the failure message, how to rerun it.
fn test_hover(name: &str, message: &str, command: &[String]) -> String {
    format!(
        "**Test failed** `{name}`\n\n{}\n\n{}\n\n{FIX_HINT}",
        fenced(message),
        rerun_hint(command, name)
    )
}

/// What "Fix with agents" on a review finding or a failing test asks for.
#[derive(Debug, Clone, Copy)]
pub enum FixOf<'a> {
    /// Test `test` fails.
    Test(&'a str),
    /// Finding `code` of a review.
    Finding(&'a str),
    /// Finding `code` of the live scan.
    Scanned(&'a str),
}

/// The goal of "Fix with agents" on a finding or failure at 1-based `line` of a file: `detail`
/// is the finding or failure in full (its hover, whose closing [`FIX_HINT`] is left out).
pub fn fix_goal(of: FixOf<'_>, line: u32, detail: &str) -> String {
    let detail = detail.trim_end().trim_end_matches(FIX_HINT).trim_end();
    match of {
        FixOf::Test(test) => format!(
            "The test `{test}` fails at line {line} of this file. Fix the code it tests so that it passes; do not delete, ignore or weaken the test unless the test itself is wrong, and say so if it is.\n\nThe failure:\n{detail}"
        ),
        FixOf::Finding(code) => format!(
            "Fix the security finding {code} at line {line} of this file, keeping the code's behaviour for legitimate input. Change only what the fix needs.\n\nThe finding, as the review found it:\n{detail}"
        ),
        FixOf::Scanned(code) => format!(
            "Fix the security finding {code} at line {line} of this file, keeping the code's behaviour for legitimate input. Change only what the fix needs.\n\nThe finding, its explanation and its data flow:\n{detail}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_a_held_back_change_maps_to_where_its_hunk_would_go() {
        let before = "a\nb\nc\nd\n";
        // Two lines inserted after `a`, `c` replaced by three lines.
        let after = "a\nx\ny\nb\nc1\nc2\nc3\nd\n";
        let hunks = crate::edits::diff::line_hunks(before, after);
        assert_eq!(before_line(&hunks, 0), 0, "an unchanged line above");
        assert_eq!(before_line(&hunks, 2), 1, "an inserted line: before `b`");
        assert_eq!(before_line(&hunks, 3), 1, "`b`, moved down by two");
        assert_eq!(before_line(&hunks, 5), 2, "a replaced line: at `c`");
        assert_eq!(before_line(&hunks, 7), 3, "`d`, moved down by four");
    }

    #[test]
    fn a_test_hover_fences_its_output_and_says_how_to_rerun_the_test() {
        let command: Vec<String> = ["cargo", "test", "--no-fail-fast", "-p", "demo"]
            .map(String::from)
            .to_vec();
        let hover = test_hover(
            "tests::adds_two",
            "assertion failed\n```\n# not a heading",
            &command,
        );
        assert!(
            hover.starts_with("**Test failed** `tests::adds_two`"),
            "{hover}"
        );
        assert!(
            hover.contains("````text\nassertion failed\n```\n# not a heading\n````"),
            "a fence longer than the output's own: {hover}"
        );
        assert!(
            hover.contains("`cargo test --no-fail-fast -p demo -- tests::adds_two --exact`"),
            "{hover}"
        );
        let custom = rerun_hint(&["make".to_string(), "check".to_string()], "t");
        assert!(custom.contains("`make check`"), "{custom}");
    }

    fn code(text: &str, lines: Option<(usize, usize)>) -> ExistingCode {
        ExistingCode {
            root: PathBuf::from("/nowhere"),
            rel: "src/lib.rs".into(),
            real: PathBuf::from("/nowhere/src/lib.rs"),
            text: text.into(),
            lines,
        }
    }

    const ADDER: &str = "pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n\npub fn other() -> u32 {\n    7\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn adds_two() {\n        assert_eq!(add(1, 1), 2);\n    }\n\n    #[test]\n    fn other_is_seven() {\n        assert_eq!(other(), 7);\n    }\n}\n";

    #[test]
    fn the_tests_of_a_function_are_the_tests_that_call_it_else_its_files() {
        let adder = code(ADDER, Some((2, 2)));
        let of = tests_for(&adder, 1, None).expect("tests");
        assert_eq!(of.function, "add");
        assert_eq!(
            of.tests,
            vec![("adds_two".to_string(), "src/lib.rs".to_string())],
            "only the test that calls `add`"
        );
        // A test itself is its own test.
        let of = tests_for(&adder, 14, None).expect("tests");
        assert_eq!((of.function.as_str(), of.tests.len()), ("adds_two", 1));
        // A function no test calls: every test of its file.
        let lonely = ADDER.replace("assert_eq!(other(), 7)", "assert!(true)");
        let of = tests_for(&code(&lonely, None), 5, None).expect("tests");
        assert_eq!((of.function.as_str(), of.tests.len()), ("other", 2));
        // Outside any function, and outside Rust, the user is told what to select.
        let err = tests_for(&adder, 7, None).expect_err("no function at a blank line");
        assert!(err.contains("no function encloses line 8"), "{err}");
        let mut python = code("def f():\n    pass\n", None);
        python.rel = "a.py".into();
        assert!(tests_for(&python, 0, None).is_err());
        // No tests at all: a bad request naming what to do.
        let none = TestsOf {
            function: "add".into(),
            tests: Vec::new(),
        };
        let why = why_tests_cannot_run(&adder, &none, &Config::default());
        assert!(
            matches!(&why, Err(CannotRun::NoTests(w)) if w.contains("Write tests for this")),
            "{why:?}"
        );
    }

    fn finding(line: usize, severity: Severity) -> ReviewFinding {
        ReviewFinding {
            file: "src/lib.rs".into(),
            line,
            rule_id: "rust/command-injection".into(),
            severity,
            message: "a shell runs user input".into(),
            status: FindingStatus::New,
            source: "static".into(),
            detail: None,
            verdict: None,
        }
    }

    #[test]
    fn a_held_back_changes_findings_move_to_the_old_text_and_say_so() {
        let before = "fn a() {}\nfn b() {}\n";
        let after = "fn a() {}\nfn run() { shell(input) }\nfn b() {}\n";
        let file = |applied| ChangedFile {
            path: "src/lib.rs".into(),
            real: "/w/src/lib.rs".into(),
            before: Some(before.into()),
            after: after.into(),
            base: crate::editor::Base::Missing,
            applied,
        };
        let findings = vec![finding(2, Severity::High), finding(3, Severity::Medium)];
        let applied = [file(Some(Ok(())))];
        let left = left_behind(&applied, &findings);
        assert_eq!(left.len(), 1);
        assert!(left[0].applied);
        assert_eq!(left[0].text, after);
        assert_eq!(left[0].findings.len(), 1, "only the high one");
        assert_eq!(left[0].findings[0].line, 2);
        let held = [file(None)];
        let left = left_behind(&held, &findings);
        assert!(!left[0].applied);
        assert_eq!(left[0].text, before);
        // The inserted line 2 would go in before `fn b` (line 2 of the old text).
        assert_eq!(left[0].findings[0].line, 2);
        assert!(
            left[0].findings[0]
                .message
                .starts_with("the proposed change (not applied) brings this in at its line 2: "),
            "{}",
            left[0].findings[0].message
        );
        // A new file that was never created has nothing to show them on.
        let mut new_file = [file(None)];
        new_file[0].before = None;
        assert!(left_behind(&new_file, &findings).is_empty());
    }
}
