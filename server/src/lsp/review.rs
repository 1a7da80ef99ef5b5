//! The review and the tests in the editor: `conductor.review` and its code action "Conductor:
//! Security review" (the review stage alone on existing code — the security rules, then the
//! model review with its refutation check when a model is configured), `conductor.runTests`
//! (the tests that exercise the selected function, in the tester's sandboxed scratch copy),
//! and a finished run's remaining high findings. All three end as diagnostics pinned beside
//! the live scan's (`lsp::security`'s [`Pinned`]), tagged with `data.origin` and a message
//! prefix so that a user tells them apart, plus a summary message.
//!
//! Conversion only: the review is `orchestrator::review`'s, the tests `tester`'s. Both
//! commands validate their arguments at once, answer `{token}` (the work-done progress they
//! report under, cancellable) and do the work in the background.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::Error;
use tower_lsp_server::ls_types::*;

use super::convert;
use super::runs::{argument, bad, failed, lines_of, workspace_file};
use super::security::{LiveSecurity, Origin, Pinned};
use super::session::Session;
use crate::document::PositionEncoding;
use crate::document::position::position_of;
use crate::orchestrator::review::{model_review, static_review};
use crate::orchestrator::{ChangedFile, FindingStatus, ReviewFinding, RunOutcome};
use crate::security::Severity;
use crate::syntax::Language;

/// `conductor.review` `[{uri, range?}]`: a security review of the selection (or the file).
pub const REVIEW: &str = "conductor.review";
/// `conductor.runTests` `[{uri, range}]`: the tests of the function at the selection.
pub const RUN_TESTS: &str = "conductor.runTests";
/// The kind of "Conductor: Security review". A `source` action, not a `refactor` one: it
/// changes no code, it covers the whole file when nothing is selected, and clients keep
/// `source.*` out of their edit-on-save and refactoring menus (VS Code lists it under "Source
/// Action…"; clients that ask for no kind in particular, like Neovim's, list it with the rest).
pub const REVIEW_KIND: &str = "source.conductor.review";
/// The code of a failing test's diagnostic.
pub const TEST_FAILED_CODE: &str = "conductor/test-failed";

/// The commands of this module, for the server's command table.
pub const COMMAND_NAMES: &[&str] = &[REVIEW, RUN_TESTS];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetArgs {
    uri: Uri,
    range: Option<Range>,
}

/// Runs command `name` (one of [`COMMAND_NAMES`]).
pub async fn execute(
    client: &Client,
    session: &Arc<Session>,
    security: &Arc<LiveSecurity>,
    name: &str,
    arguments: Vec<Value>,
) -> Result<Value, Error> {
    let shape = if name == RUN_TESTS {
        "{uri, range}"
    } else {
        "{uri, range?}"
    };
    let args: TargetArgs = argument(name, shape, arguments)?;
    if name == RUN_TESTS && args.range.is_none() {
        return Err(bad(format!(
            "{name} needs a range: the selection or cursor in the function whose tests to run"
        )));
    }
    let file = workspace_file(session, name, &args.uri)?;
    // An empty range is a cursor (VS Code's palette sends the selection as it is): a review of
    // the whole file, the tests of the function under the cursor.
    let range = args.range.filter(|r| name == RUN_TESTS || r.start != r.end);
    let target = Target::read(session, &args.uri, file, range.as_ref().map(lines_of))
        .map_err(|e| bad(format!("{name}: {e}")))?;
    match name {
        REVIEW => Ok(start_review(client, session, security, target)),
        RUN_TESTS => start_tests(client, session, security, target),
        other => Err(bad(format!("unknown command `{other}`"))),
    }
}

/// What a command works on: one file's text as the user has it now.
struct Target {
    /// The URI the client knows the file by.
    uri: Uri,
    /// Canonical path.
    file: PathBuf,
    /// Relative to the root, `/`-separated.
    rel: String,
    root: PathBuf,
    text: String,
    /// The open document's revision the text is from (`None`: read from disk).
    revision: Option<u64>,
    /// 1-based inclusive lines of the selection.
    lines: Option<(usize, usize)>,
}

impl Target {
    fn read(
        session: &Session,
        uri: &Uri,
        file: PathBuf,
        lines: Option<(usize, usize)>,
    ) -> Result<Target, String> {
        let root = session
            .root()
            .ok_or("no workspace folder")?
            .canonicalize()
            .map_err(|e| format!("the workspace folder: {e}"))?;
        let rel = crate::orchestrator::relative(&root, &file);
        let (text, revision) = match session.snapshot(uri.as_str()) {
            Some(snapshot) => (snapshot.text.to_string(), Some(snapshot.revision)),
            None => (
                crate::util::read_regular_text(&file, crate::util::MAX_READ_BYTES)
                    .map_err(|e| format!("reading {}: {e}", file.display()))?,
                None,
            ),
        };
        Ok(Target {
            uri: uri.clone(),
            file,
            rel,
            root,
            text,
            revision,
            lines,
        })
    }

    /// The lines, as the user reads them in messages.
    fn describe(&self) -> String {
        match self.lines {
            Some((a, b)) if a == b => format!("{} (line {a})", self.rel),
            Some((a, b)) => format!("{} (lines {a}-{b})", self.rel),
            None => self.rel.clone(),
        }
    }

    fn covers(&self, line: usize) -> bool {
        self.lines.is_none_or(|(a, b)| a <= line && line <= b)
    }
}

/// The range of 0-based `line` of `rope` without its indentation and line end, in `encoding`.
fn line_range(rope: &ropey::Rope, line: usize, encoding: PositionEncoding) -> Range {
    let line = line.min(rope.len_lines().saturating_sub(1));
    let start = rope.line_to_byte(line);
    let text = rope.line(line).to_string();
    let indent = text.len() - text.trim_start().len();
    let end = start + text.trim_end().len().max(indent);
    Range::new(
        convert::to_position(position_of(rope, start + indent, encoding)),
        convert::to_position(position_of(rope, end, encoding)),
    )
}

/// The pinned diagnostic of a review finding on its line of `rope` (the text it was found in);
/// `run` names the run whose review it comes from.
fn review_pin(
    finding: &ReviewFinding,
    rope: &ropey::Rope,
    encoding: PositionEncoding,
    run: Option<&str>,
) -> Pinned {
    let line = finding.line.saturating_sub(1);
    let prefix = match run {
        Some(id) => format!("Review (run {id})"),
        None => "Review".to_string(),
    };
    let mut data = json!({"origin": Origin::Review.as_str(), "source": finding.source});
    if let Some(id) = run {
        data["runId"] = json!(id);
    }
    Pinned {
        origin: Origin::Review,
        line_text: rope_line(rope, line),
        diagnostic: Diagnostic {
            range: line_range(rope, line, encoding),
            severity: Some(super::security::severity(finding.severity)),
            code: Some(NumberOrString::String(finding.rule_id.clone())),
            source: Some("conductor".into()),
            message: format!("{prefix}: {} ({})", finding.message, finding.source),
            data: Some(data),
            ..Diagnostic::default()
        },
    }
}

fn rope_line(rope: &ropey::Rope, line: usize) -> String {
    if line < rope.len_lines() {
        rope.line(line).to_string().trim().to_string()
    } else {
        String::new()
    }
}

/// The URI diagnostics for `path` go to: the open document's, as the client named it, else
/// the file's own.
fn uri_for(session: &Session, path: &Path) -> Option<Uri> {
    let open = session.app.snapshots().into_iter().find(|s| {
        s.path
            .as_ref()
            .is_some_and(|p| p == path || p.canonicalize().ok().as_deref() == Some(path))
    });
    match open {
        Some(snapshot) => snapshot.uri.parse().ok(),
        None => convert::path_to_uri(path),
    }
}

/// Begins a cancellable progress; returns it and the flag its cancel sets.
async fn begin(
    client: &Client,
    session: &Session,
    token: String,
    title: &str,
    on_cancel: impl Fn() + Send + Sync + 'static,
) -> super::progress::Progress {
    session
        .progress
        .begin(
            client,
            session.client().work_done_progress,
            token,
            title,
            Some("starting".into()),
            Some(Arc::new(on_cancel)),
        )
        .await
}

/// "1 finding", "2 findings".
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn start_review(
    client: &Client,
    session: &Arc<Session>,
    security: &Arc<LiveSecurity>,
    target: Target,
) -> Value {
    let token = session.progress.token("review");
    let shown = session.client().work_done_progress.then(|| token.clone());
    tokio::spawn(review(
        client.clone(),
        session.clone(),
        security.clone(),
        target,
        token,
    ));
    json!({"token": shown})
}

/// The review of `target`, published as pinned diagnostics and a summary message.
async fn review(
    client: Client,
    session: Arc<Session>,
    security: Arc<LiveSecurity>,
    target: Target,
    token: String,
) {
    let config = session.config();
    let id = format!("review-{}", crate::journal::new_run_id());
    let limits = crate::llm::BudgetLimits::from(&config.model.budget);
    // The model review's client: only when a model is configured and `[review] model` is on;
    // a model that cannot be set up is a skipped model review, not a failed review.
    let mut model_problem = None;
    let models = if config.model.is_configured() && config.review.model {
        session
            .app
            .models()
            .map_err(|e| model_problem = Some(e.to_string()))
            .ok()
    } else {
        None
    };
    let run = match &models {
        Some(models) => models.new_run(id),
        None => crate::llm::Run::new(id, limits),
    };
    let cancel = run.cancel.clone();
    let progress = begin(
        &client,
        &session,
        token,
        &format!("Conductor: security review of {}", target.rel),
        move || cancel.cancel(),
    )
    .await;
    progress.report("static review", Some(10)).await;
    let changed = ChangedFile {
        path: target.rel.clone(),
        real: target.file.clone(),
        before: None,
        after: target.text.clone(),
        base: crate::editor::Base::Missing,
        applied: None,
    };
    let files = vec![changed];
    let scanned = files.clone();
    let settings = config.security.clone();
    let mut findings =
        crate::orchestrator::heavy(move || static_review(&scanned, &settings, false))
            .await
            .unwrap_or_default();
    findings.retain(|f| f.status == FindingStatus::New && target.covers(f.line));
    let goal = match target.lines {
        Some((a, b)) => format!(
            "a security review of the existing code at lines {a}-{b} of {}",
            target.rel
        ),
        None => format!("a security review of the existing code of {}", target.rel),
    };
    if models.is_some() {
        progress.report("model review", Some(40)).await;
    }
    let client_for = models
        .as_ref()
        .map(|m| m.for_agent(crate::llm::AgentRole::Security));
    let model = model_review(client_for, &run, &goal, &files, &findings, &config.review).await;
    // A skipped review's message already says "the model review was skipped (why)".
    let model_outcome = match (model_problem, model.outcome.status.as_str()) {
        (Some(problem), _) => {
            format!("the model review was skipped (the model cannot be used: {problem})")
        }
        (None, "done") => format!("model review: {}", model.outcome.message),
        (None, _) => model.outcome.message.clone(),
    };
    let kept_model = model.kept.len();
    findings.extend(model.kept.into_iter().filter(|f| target.covers(f.line)));
    if run.cancel.is_cancelled() {
        progress.end("cancelled").await;
        client
            .show_message(
                MessageType::INFO,
                format!(
                    "Conductor: the security review of {} was cancelled; nothing was published",
                    target.describe()
                ),
            )
            .await;
        return;
    }
    let rope = ropey::Rope::from_str(&target.text);
    let encoding = session.encoding();
    let pins: Vec<Pinned> = findings
        .iter()
        .map(|f| review_pin(f, &rope, encoding, None))
        .collect();
    // The user may have typed while the review ran: then the pins move to what they have now.
    let now = session
        .snapshot(target.uri.as_str())
        .filter(|s| Some(s.revision) != target.revision)
        .map(|s| s.text.clone());
    let covered = target
        .lines
        .map(|(a, b)| (a.saturating_sub(1) as u32, b.saturating_sub(1) as u32));
    security.pin(
        &target.uri,
        Origin::Review,
        pins,
        &|p: &Pinned| {
            covered.is_none_or(|(a, b)| {
                let line = p.diagnostic.range.start.line;
                a <= line && line <= b
            })
        },
        now.as_ref(),
    );
    let high = findings
        .iter()
        .filter(|f| f.severity >= Severity::High)
        .count();
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
    let summary = format!(
        "Conductor security review of {}: {found} ({} from the model); {model_outcome}",
        target.describe(),
        kept_model
    );
    progress.end(plural(findings.len(), "finding")).await;
    let kind = if high > 0 {
        MessageType::WARNING
    } else {
        MessageType::INFO
    };
    client.show_message(kind, summary).await;
}

/// The tests `conductor.runTests` runs for the function around `line` (0-based) of `target`:
/// a test function itself when the selection is in one; else, from the context index, the
/// test functions anywhere in the workspace that call the function (by name: the index has
/// no types, so a same-named function's tests come along); else every test of the function's
/// file (its test module). Returns the function's name and `(test name, file)` pairs.
fn tests_for(
    session: &Session,
    target: &Target,
    line: u32,
) -> Result<(String, Vec<(String, String)>), String> {
    let path = Path::new(&target.rel);
    let language = Language::for_path(path)
        .filter(|l| l.name == "rust")
        .ok_or_else(|| format!("{} is not a Rust file", target.rel))?;
    let tree = language
        .parse(&target.text)
        .ok_or_else(|| format!("{} could not be parsed", target.rel))?;
    let tags = crate::context::tags::extract(&target.text, &tree)
        .map_err(|e| format!("{}: {e}", target.rel))?;
    let function = tags
        .enclosing(line, true)
        .ok_or_else(|| {
            format!(
                "no function encloses line {} of {}; select a function or a test",
                line + 1,
                target.rel
            )
        })?
        .clone();
    if function.is_test {
        return Ok((
            function.name.clone(),
            vec![(function.name, target.rel.clone())],
        ));
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
    // This file as the user has it, then every other file the index knows refers to the name.
    callers(&tags, &target.rel);
    if let Some(index) = session.app.index.snapshot() {
        for &id in index.files_referencing(&function.name) {
            let Some(file) = index.file(id) else {
                continue;
            };
            let rel = file.path.to_string_lossy().replace('\\', "/");
            if rel != target.rel {
                callers(&file.tags, &rel);
            }
        }
    }
    if found.is_empty() {
        found = tags
            .definitions
            .iter()
            .filter(|d| d.is_test)
            .map(|d| (d.name.clone(), target.rel.clone()))
            .collect();
    }
    Ok((function.name, found))
}

fn start_tests(
    client: &Client,
    session: &Arc<Session>,
    security: &Arc<LiveSecurity>,
    target: Target,
) -> Result<Value, Error> {
    let line = target.lines.map_or(0, |(a, _)| a.saturating_sub(1)) as u32;
    let (function, tests) =
        tests_for(session, &target, line).map_err(|e| bad(format!("{RUN_TESTS}: {e}")))?;
    if tests.is_empty() {
        return Err(failed(format!(
            "{RUN_TESTS}: no test calls `{function}` and {} has no tests; write some first (\"Conductor: Write tests for this\")",
            target.rel
        )));
    }
    // A tester that cannot run is said at once, naming the setting (a sandbox that is required
    // but missing is found by the tester itself, and said when it ends).
    let config = session.config();
    let settings = &config.tester;
    let unusable = if !settings.enabled {
        Some("the tester is off (`[tester] enabled = false`)".to_string())
    } else {
        let owners: Vec<crate::tester::Change> = tests
            .iter()
            .map(|(_, rel)| crate::tester::Change {
                path: rel.clone(),
                before: None,
                after: String::new(),
            })
            .collect();
        crate::tester::command_for(&target.root, settings, &owners).err()
    };
    if let Some(why) = unusable {
        let text = format!("Conductor: the tests of `{function}` were not run: {why}");
        let client = client.clone();
        let shown = text.clone();
        tokio::spawn(async move { client.show_message(MessageType::WARNING, shown).await });
        return Err(failed(text));
    }
    let token = session.progress.token("runTests");
    let shown = session.client().work_done_progress.then(|| token.clone());
    let names: Vec<String> = tests.iter().map(|(n, _)| n.clone()).collect();
    tokio::spawn(run_tests(
        client.clone(),
        session.clone(),
        security.clone(),
        target,
        function,
        tests,
        token,
    ));
    Ok(json!({"token": shown, "tests": names}))
}

/// Runs `tests` with the configured tester and publishes their failures at the failing
/// assertions, replacing the last test run's.
async fn run_tests(
    client: Client,
    session: Arc<Session>,
    security: Arc<LiveSecurity>,
    target: Target,
    function: String,
    tests: Vec<(String, String)>,
    token: String,
) {
    let config = session.config();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let progress = begin(
        &client,
        &session,
        token,
        &format!("Conductor: tests of `{function}`"),
        move || flag.store(true, Ordering::SeqCst),
    )
    .await;
    progress
        .report(
            format!("running {} in a scratch copy", plural(tests.len(), "test")),
            None,
        )
        .await;
    let names: Vec<String> = tests.iter().map(|(n, _)| n.clone()).collect();
    let mut owners: Vec<String> = tests.iter().map(|(_, f)| f.clone()).collect();
    owners.sort();
    owners.dedup();
    let settings = config.tester.clone();
    let secret_env: Vec<String> = crate::llm::AgentRole::ALL
        .iter()
        .filter_map(|role| config.model.for_agent(*role).api_key_env)
        .collect();
    let root = target.root.clone();
    let flag = stop.clone();
    let report = crate::util::background(move || {
        crate::tester::run_selected(
            &crate::tester::TestRequest {
                root: &root,
                settings: &settings,
                secret_env: &secret_env,
                cancel: &flag,
            },
            &owners,
            &names,
        )
    })
    .await;
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            tracing::error!("the tester stopped unexpectedly: {err}");
            progress.end("stopped unexpectedly").await;
            client
                .show_message(
                    MessageType::ERROR,
                    format!("Conductor: the tests of `{function}` stopped unexpectedly; see Conductor's log"),
                )
                .await;
            return;
        }
    };
    use crate::tester::TestStatus;
    if matches!(report.status, TestStatus::Skipped | TestStatus::Error) {
        progress.end("not run").await;
        client
            .show_message(
                MessageType::WARNING,
                format!(
                    "Conductor: the tests of `{function}` were not run: {}",
                    report.message
                ),
            )
            .await;
        return;
    }
    // Each failure at its assertion (where it panicked), else at its test function.
    let encoding = session.encoding();
    let mut by_file: Vec<(PathBuf, Vec<Pinned>)> = Vec::new();
    for failure in &report.failed {
        let short = failure.name.rsplit("::").next().unwrap_or(&failure.name);
        let (rel, line) = match &failure.location {
            Some(at) => (at.file.clone(), at.line.saturating_sub(1)),
            None => match tests.iter().find(|(n, _)| n == short) {
                Some((_, rel)) => (rel.clone(), test_line(&target, rel, short)),
                None => continue,
            },
        };
        let path = target.root.join(&rel);
        let text = text_of(&session, &path).unwrap_or_default();
        let rope = ropey::Rope::from_str(&text);
        let message = failure
            .message
            .lines()
            .take(12)
            .collect::<Vec<_>>()
            .join("\n");
        let pin = Pinned {
            origin: Origin::Tests,
            line_text: rope_line(&rope, line),
            diagnostic: Diagnostic {
                range: line_range(&rope, line, encoding),
                severity: Some(DiagnosticSeverity::ERROR),
                code: Some(NumberOrString::String(TEST_FAILED_CODE.into())),
                source: Some("conductor".into()),
                message: format!("Test `{}` failed: {message}", failure.name),
                data: Some(json!({"origin": Origin::Tests.as_str(), "test": failure.name})),
                ..Diagnostic::default()
            },
        };
        match by_file.iter_mut().find(|(p, _)| *p == path) {
            Some((_, pins)) => pins.push(pin),
            None => by_file.push((path, vec![pin])),
        }
    }
    let published: Vec<(Uri, Vec<Pinned>)> = by_file
        .into_iter()
        .filter_map(|(path, pins)| Some((uri_for(&session, &path)?, pins)))
        .collect();
    let keep: Vec<Uri> = published.iter().map(|(u, _)| u.clone()).collect();
    security.unpin_all(Origin::Tests, &keep);
    for (uri, pins) in published {
        security.pin(&uri, Origin::Tests, pins, &|_| true, None);
    }
    let passed = report.passed.len();
    let failed_count = report.failed.len();
    progress
        .end(format!("{passed} passed, {failed_count} failed"))
        .await;
    let kind = if report.status == TestStatus::Passed {
        MessageType::INFO
    } else {
        MessageType::WARNING
    };
    let failing: Vec<&str> = report.failed.iter().map(|f| f.name.as_str()).collect();
    let mut summary = format!("Conductor tests of `{function}`: {}", report.message);
    if !failing.is_empty() {
        summary.push_str(&format!(" — failing: {}", failing.join(", ")));
    }
    client.show_message(kind, summary).await;
}

/// The text of `path` as the user has it: the open buffer, else the disk.
fn text_of(session: &Session, path: &Path) -> Option<String> {
    let uri = uri_for(session, path)?;
    match session.snapshot(uri.as_str()) {
        Some(snapshot) => Some(snapshot.text.to_string()),
        None => crate::util::read_regular_text(path, crate::util::MAX_READ_BYTES).ok(),
    }
}

/// The 0-based line of test function `name` in `rel` (0 when it cannot be found).
fn test_line(target: &Target, rel: &str, name: &str) -> usize {
    let text = if rel == target.rel {
        target.text.clone()
    } else {
        crate::util::read_regular_text(&target.root.join(rel), crate::util::MAX_READ_BYTES)
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

/// After a run: the high and critical findings its change introduced and its improve rounds
/// did not remove, as review diagnostics naming the run. On a change the editor applied they
/// sit on their own lines. A change that keeps such a finding is held back, not applied
/// (`orchestrator::drive`), so its lines are not in the user's text: each finding then sits on
/// the line of the user's text where its hunk would go, and says so. A new file that was not
/// created has no text to pin on; the run's message still counts its findings.
pub fn publish_run_findings(session: &Session, security: &LiveSecurity, outcome: &RunOutcome) {
    let encoding = session.encoding();
    let id = outcome.run_id.as_str();
    for file in &outcome.files {
        let remaining: Vec<&ReviewFinding> = outcome
            .findings
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
        let Some(uri) = uri_for(session, &file.real) else {
            continue;
        };
        let applied = matches!(file.applied, Some(Ok(())));
        let (pins, now): (Vec<Pinned>, _) = if applied {
            let rope = ropey::Rope::from_str(&file.after);
            let pins = remaining
                .iter()
                .map(|f| review_pin(f, &rope, encoding, Some(id)))
                .collect();
            // The buffer catches up with the applied edit on its own `didChange`.
            (pins, None)
        } else {
            let Some(before) = file.before.as_deref() else {
                continue;
            };
            let rope = ropey::Rope::from_str(before);
            let hunks = crate::edits::diff::line_hunks(before, &file.after);
            let last = rope.len_lines().saturating_sub(1);
            let pins = remaining
                .iter()
                .map(|f| {
                    let at = before_line(&hunks, f.line.saturating_sub(1)).min(last);
                    let held = ReviewFinding {
                        line: at + 1,
                        message: format!(
                            "the proposed change (not applied) brings this in at its line {}: {}",
                            f.line, f.message
                        ),
                        ..(*f).clone()
                    };
                    review_pin(&held, &rope, encoding, Some(id))
                })
                .collect();
            // The user may have typed since the run read the file.
            let now = session.snapshot(uri.as_str()).map(|s| s.text.clone());
            (pins, now)
        };
        // The run's pins join the file's others; older pins on the same lines are replaced.
        let lines: Vec<u32> = pins.iter().map(|p| p.diagnostic.range.start.line).collect();
        security.pin(
            &uri,
            Origin::Review,
            pins,
            &|p: &Pinned| lines.contains(&p.diagnostic.range.start.line),
            now.as_ref(),
        );
    }
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

/// "Conductor: Security review" on the selection, or on the whole file without one, in a
/// document of a language the security rules know.
pub fn code_actions(session: &Session, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let Some(snapshot) = session.snapshot(uri.as_str()) else {
        return Vec::new();
    };
    let (Some(root), Some(path)) = (session.root(), snapshot.path.as_ref()) else {
        return Vec::new();
    };
    let root = root.canonicalize().unwrap_or(root);
    let path = path.canonicalize().unwrap_or_else(|_| path.clone());
    if snapshot.language.is_none()
        || !path.starts_with(&root)
        || path.components().any(|c| c.as_os_str() == ".conductor")
    {
        return Vec::new();
    }
    let range = params.range;
    let selected = range.start != range.end;
    let title = if selected {
        "Conductor: Security review of the selection"
    } else {
        "Conductor: Security review"
    };
    let arguments = if selected {
        json!({"uri": uri, "range": range})
    } else {
        json!({"uri": uri})
    };
    vec![CodeActionOrCommand::CodeAction(CodeAction {
        title: title.into(),
        kind: Some(CodeActionKind::new(REVIEW_KIND)),
        command: Some(Command {
            title: title.into(),
            command: REVIEW.into(),
            arguments: Some(vec![arguments]),
        }),
        ..CodeAction::default()
    })]
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
    fn a_review_pin_is_on_its_line_without_indentation_and_says_where_it_came_from() {
        let rope = ropey::Rope::from_str("fn a() {\n    let x = run(y);\n}\n");
        let finding = ReviewFinding {
            file: "src/a.rs".into(),
            line: 2,
            rule_id: "rust/command-injection".into(),
            severity: Severity::High,
            message: "a shell runs user input".into(),
            status: FindingStatus::New,
            source: "static".into(),
        };
        let pin = review_pin(&finding, &rope, PositionEncoding::Utf16, Some("r1"));
        assert_eq!(pin.line_text, "let x = run(y);");
        let range = pin.diagnostic.range;
        assert_eq!((range.start.line, range.start.character), (1, 4));
        assert_eq!((range.end.line, range.end.character), (1, 19));
        assert!(pin.diagnostic.message.starts_with("Review (run r1): "));
        let data = pin.diagnostic.data.expect("data");
        assert_eq!(data["origin"], "review");
        assert_eq!(data["runId"], "r1");
        assert_eq!(pin.diagnostic.severity, Some(DiagnosticSeverity::ERROR));
    }
}
