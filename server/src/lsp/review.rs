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

/// Where a review diagnostic comes from; each is journalled under its id.
#[derive(Debug, Clone, Copy)]
enum Reviewed<'a> {
    /// `conductor.review`, on its own.
    Alone(&'a str),
    /// A run's review stage.
    Run(&'a str),
}

impl Reviewed<'_> {
    fn id(&self) -> &str {
        match self {
            Reviewed::Alone(id) | Reviewed::Run(id) => id,
        }
    }
}

/// `text` in a Markdown code fence longer than any run of backticks in it: test output and
/// model text are untrusted, and must not close the fence and format the rest of the hover.
fn fenced(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{}\n{fence}", text.trim_end())
}

/// The hover of a review finding: what it is in full (the rule's explanation and data-flow
/// path, or the model's explanation), the model's verdict, where it comes from and what to do.
fn review_hover(finding: &ReviewFinding, from: Reviewed<'_>) -> String {
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
    out.push_str("\n\nTo fix it: the code action **Conductor: Fix with agents**.");
    out
}

/// The pinned diagnostic of a review finding on its line of `rope` (the text it was found in);
/// `from` names the review or the run it comes from.
fn review_pin(
    finding: &ReviewFinding,
    rope: &ropey::Rope,
    encoding: PositionEncoding,
    from: Reviewed<'_>,
) -> Pinned {
    let line = finding.line.saturating_sub(1);
    let prefix = match from {
        Reviewed::Run(id) => format!("Review (run {id})"),
        Reviewed::Alone(_) => "Review".to_string(),
    };
    let mut data =
        json!({"origin": Origin::Review.as_str(), "source": finding.source, "runId": from.id()});
    if let Some(verdict) = &finding.verdict {
        data["verdict"] = json!(verdict.verdict);
        data["confidence"] = json!(verdict.confidence);
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
        hover: review_hover(finding, from),
    }
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

/// The hover of a failing test: its name, the failure message, how to rerun it.
fn test_hover(name: &str, message: &str, command: &[String]) -> String {
    format!(
        "**Test failed** `{name}`\n\n{}\n\n{}\n\nTo fix it: the code action **Conductor: Fix with agents**.",
        fenced(message),
        rerun_hint(command, name)
    )
}

/// The hover of the review and test diagnostics under `position`, if any.
pub fn hover(security: &LiveSecurity, uri: &str, position: Position) -> Option<String> {
    let uri: Uri = uri.parse().ok()?;
    let hits: Vec<String> = security
        .pinned(&uri)
        .into_iter()
        .filter(|p| covers(p.diagnostic.range, position))
        .map(|p| p.hover)
        .filter(|h| !h.is_empty())
        .collect();
    (!hits.is_empty()).then(|| hits.join("\n\n---\n\n"))
}

/// Whether `position` is on `range`'s lines (a pinned range spans its line's text; a hover at
/// the indentation or past the end of the line is still about it).
fn covers(range: Range, position: Position) -> bool {
    range.start.line <= position.line && position.line <= range.end.line
}

/// "Conductor: Fix with agents" on the review and test diagnostics that `range` touches, as
/// on the live scan's security diagnostics.
pub fn fix_actions(security: &LiveSecurity, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let range = params.range;
    security
        .pinned(uri)
        .iter()
        .filter(|p| {
            p.diagnostic.range.start.line <= range.end.line
                && range.start.line <= p.diagnostic.range.end.line
        })
        .map(|p| super::runs::fix_action(uri, &p.diagnostic))
        .collect()
}

/// The goal of "Fix with agents" on a review or test diagnostic: the finding or failure in
/// full (its hover) when it is still pinned on `uri`, else what the diagnostic says. `None`
/// for a diagnostic that is neither (the live scan's).
pub fn fix_goal(security: &LiveSecurity, uri: &Uri, diagnostic: &Diagnostic) -> Option<String> {
    let origin = diagnostic.data.as_ref()?.get("origin")?.as_str()?;
    if origin != Origin::Review.as_str() && origin != Origin::Tests.as_str() {
        return None;
    }
    let line = diagnostic.range.start.line + 1;
    let pinned = security.pinned(uri).into_iter().find(|p| {
        p.diagnostic.range.start.line == diagnostic.range.start.line
            && p.diagnostic.code == diagnostic.code
    });
    let detail = pinned.map_or_else(|| diagnostic.message.clone(), |p| p.hover);
    // The hover's last paragraph says to use this very action: not part of the goal.
    let detail = detail
        .trim_end()
        .trim_end_matches("To fix it: the code action **Conductor: Fix with agents**.")
        .trim_end()
        .to_string();
    Some(if origin == Origin::Tests.as_str() {
        let test = diagnostic
            .data
            .as_ref()
            .and_then(|d| d.get("test"))
            .and_then(Value::as_str)
            .unwrap_or("the test");
        format!(
            "The test `{test}` fails at line {line} of this file. Fix the code it tests so that it passes; do not delete, ignore or weaken the test unless the test itself is wrong, and say so if it is.\n\nThe failure:\n{detail}"
        )
    } else {
        let code = match &diagnostic.code {
            Some(NumberOrString::String(code)) => code.clone(),
            Some(NumberOrString::Number(n)) => n.to_string(),
            None => String::new(),
        };
        format!(
            "Fix the security finding {code} at line {line} of this file, keeping the code's behaviour for legitimate input. Change only what the fix needs.\n\nThe finding, as the review found it:\n{detail}"
        )
    })
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
        Some(models) => models.new_run(id.clone()),
        None => crate::llm::Run::new(id.clone(), limits),
    };
    let cancel = run.cancel.clone();
    let progress = session
        .begin_progress(
            &client,
            token,
            &format!("Conductor: security review of {}", target.rel),
            Some("starting".into()),
            Some(Arc::new(move || cancel.cancel())),
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
    model.annotate(&mut findings);
    findings.extend(model.kept.iter().filter(|f| target.covers(f.line)).cloned());
    // The review is journalled as a run of kind `review`, cancelled or not: its model requests
    // cost tokens either way.
    let journal = |message: &str, cancelled: bool| {
        let record = crate::orchestrator::review::ReviewRecord {
            id: &id,
            goal: &goal,
            selection: target.lines.map(|(a, b)| format!("{}:{a}-{b}", target.rel)),
            config_digest: crate::editor::text_hash(format!("{config:?}").as_bytes()),
            findings: &findings,
            model_review: &model.outcome,
            proposed: model.proposed,
            responses: &model.responses,
            failures: &model.failures,
            client: client_for,
            usage: usage_of(&run),
            message,
            cancelled,
        };
        match crate::orchestrator::review::journal_review(&target.root, &record) {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!("journalling the security review {id}: {err}");
                false
            }
        }
    };
    if run.cancel.is_cancelled() {
        journal(
            "the security review was cancelled; nothing was published",
            true,
        );
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
        .map(|f| review_pin(f, &rope, encoding, Reviewed::Alone(&id)))
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
    let doubted = findings
        .iter()
        .filter(|f| {
            f.verdict
                .as_ref()
                .is_some_and(|v| v.verdict == "likely_false_positive")
        })
        .count();
    let doubted = if doubted > 0 {
        format!(
            "; the model thinks {} likely false positive(s) (kept; hover for its reason)",
            if doubted == 1 {
                "1 finding is a".to_string()
            } else {
                format!("{doubted} findings are")
            }
        )
    } else {
        String::new()
    };
    let mut summary = format!(
        "Conductor security review of {}: {found} ({} from the model){doubted}; {model_outcome}",
        target.describe(),
        kept_model
    );
    if journal(&summary, false) {
        summary.push_str(&format!("; journalled as {id} (`conductor runs`)"));
        super::runs::enforce_retention(&session).await;
    }
    progress.end(plural(findings.len(), "finding")).await;
    let kind = if high > 0 {
        MessageType::WARNING
    } else {
        MessageType::INFO
    };
    client.show_message(kind, summary).await;
}

/// What a model run cost so far, for its journal.
fn usage_of(run: &crate::llm::Run) -> crate::journal::UsageTotals {
    let total = run.budget.total();
    crate::journal::UsageTotals {
        prompt_tokens: total.input_tokens,
        completion_tokens: total.output_tokens,
        cost_usd: total.cost_usd,
    }
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
    let progress = session
        .begin_progress(
            &client,
            token,
            &format!("Conductor: tests of `{function}`"),
            Some("starting".into()),
            Some(Arc::new(move || flag.store(true, Ordering::SeqCst))),
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
            hover: test_hover(&failure.name, &failure.message, &report.command),
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
                .map(|f| review_pin(f, &rope, encoding, Reviewed::Run(id)))
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
                    review_pin(&held, &rope, encoding, Reviewed::Run(id))
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
            detail: Some("**Command injection** `rust/command-injection`\n\nData flow:\n1. line 1:8: `y` comes from a request".into()),
            verdict: Some(crate::orchestrator::FindingVerdict {
                verdict: "likely_false_positive".into(),
                confidence: 0.7,
                reason: "y is a constant".into(),
            }),
        };
        let pin = review_pin(
            &finding,
            &rope,
            PositionEncoding::Utf16,
            Reviewed::Run("r1"),
        );
        assert_eq!(pin.line_text, "let x = run(y);");
        let range = pin.diagnostic.range;
        assert_eq!((range.start.line, range.start.character), (1, 4));
        assert_eq!((range.end.line, range.end.character), (1, 19));
        assert!(pin.diagnostic.message.starts_with("Review (run r1): "));
        let data = pin.diagnostic.data.expect("data");
        assert_eq!(data["origin"], "review");
        assert_eq!(data["runId"], "r1");
        assert_eq!(data["verdict"], "likely_false_positive");
        assert_eq!(pin.diagnostic.severity, Some(DiagnosticSeverity::ERROR));
        // The hover says it all: the explanation and its data flow, the verdict, the run.
        for part in [
            "a shell runs user input",
            "Data flow:\n1. line 1:8",
            "likely a false positive (confidence 0.70): y is a constant",
            "The finding stays either way",
            "run `r1`",
            "Conductor: Fix with agents",
        ] {
            assert!(pin.hover.contains(part), "{part:?} in {}", pin.hover);
        }
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
}
