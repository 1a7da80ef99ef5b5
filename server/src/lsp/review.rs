//! The review and the tests in the editor: `conductor.review` and its code action "Conductor:
//! Security review" (the review stage alone on existing code — the security rules, then the
//! model review with its refutation check when a model is configured), `conductor.runTests`
//! (the tests that exercise the selected function, in the tester's sandboxed scratch copy),
//! and a finished run's remaining high findings. All three end as diagnostics pinned beside
//! the live scan's (`lsp::security`'s [`Pinned`]), tagged with `data.origin` and a message
//! prefix so that a user tells them apart, plus a summary message.
//!
//! Conversion only: the review, the choice of tests, where each failure goes and what the user
//! is told are `orchestrator::existing`'s. Both commands validate their arguments at once,
//! answer `{token}` (the work-done progress they report under, cancellable) and do the work in
//! the background.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::Error;
use tower_lsp_server::ls_types::*;

use super::convert;
use super::editor::LspEditor;
use super::runs::{argument, bad, failed, lines_of, workspace_file};
use super::security::{LiveSecurity, Origin, Pinned};
use super::session::Session;
use crate::document::PositionEncoding;
use crate::document::position::position_of;
use crate::orchestrator::ReviewFinding;
use crate::orchestrator::existing::{
    self, CannotRun, ExistingCode, FixOf, ReviewDone, Reviewed, Started, TestsOf, plural,
};

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

/// What a command works on: one file's text as the user has it now, and where it came from.
struct Target {
    /// The URI the client knows the file by.
    uri: Uri,
    /// The open document's revision the text is from (`None`: read from disk).
    revision: Option<u64>,
    code: ExistingCode,
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
            revision,
            code: ExistingCode {
                root,
                rel,
                real: file,
                text,
                lines,
            },
        })
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
/// `from` names the review or the run it comes from.
fn review_pin(
    finding: &ReviewFinding,
    rope: &ropey::Rope,
    encoding: PositionEncoding,
    from: Reviewed<'_>,
) -> Pinned {
    let line = finding.line.saturating_sub(1);
    let prefix = from.prefix();
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
        hover: existing::review_hover(finding, from),
    }
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
    let code;
    let of = if origin == Origin::Tests.as_str() {
        FixOf::Test(
            diagnostic
                .data
                .as_ref()
                .and_then(|d| d.get("test"))
                .and_then(Value::as_str)
                .unwrap_or("the test"),
        )
    } else {
        code = match &diagnostic.code {
            Some(NumberOrString::String(code)) => code.clone(),
            Some(NumberOrString::Number(n)) => n.to_string(),
            None => String::new(),
        };
        FixOf::Finding(&code)
    };
    Some(existing::fix_goal(of, line, &detail))
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
    match session.app.snapshot_of_path(path) {
        Some(snapshot) => snapshot.uri.parse().ok(),
        None => convert::path_to_uri(path),
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
    let (lines, receiver) = mpsc::unbounded_channel();
    let editor = Arc::new(LspEditor::for_run(
        client.clone(),
        session.clone(),
        Some(security.clone()),
        lines,
    ));
    let started = existing::start_review(&session.app, target.code.clone(), editor);
    tokio::spawn(follow_review(
        client.clone(),
        session.clone(),
        security.clone(),
        target,
        started,
        receiver,
        token,
    ));
    json!({"token": shown})
}

/// Shows the review's progress until it ends, then publishes its findings as pinned
/// diagnostics (moved to the text the user has now, if they typed meanwhile) and its summary.
async fn follow_review(
    client: Client,
    session: Arc<Session>,
    security: Arc<LiveSecurity>,
    target: Target,
    started: Started<ReviewDone>,
    receiver: mpsc::UnboundedReceiver<String>,
    token: String,
) {
    let Started {
        id,
        cancel,
        outcome,
    } = started;
    let title = format!("Conductor: security review of {}", target.code.rel);
    let Some((done, progress)) = super::runs::follow_progress(
        &client, &session, &id, token, &title, cancel, receiver, outcome,
    )
    .await
    else {
        return;
    };
    if done.cancelled {
        progress.end("cancelled").await;
        client.show_message(MessageType::INFO, done.summary).await;
        return;
    }
    let rope = ropey::Rope::from_str(&target.code.text);
    let encoding = session.encoding();
    let pins: Vec<Pinned> = done
        .findings
        .iter()
        .map(|f| review_pin(f, &rope, encoding, Reviewed::Alone(&done.id)))
        .collect();
    // The user may have typed while the review ran: then the pins move to what they have now.
    let now = session
        .snapshot(target.uri.as_str())
        .filter(|s| Some(s.revision) != target.revision)
        .map(|s| s.text.clone());
    let covered = target
        .code
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
    if done.journalled {
        super::runs::enforce_retention(&session).await;
    }
    progress.end(plural(done.findings.len(), "finding")).await;
    let kind = if done.has_high() {
        MessageType::WARNING
    } else {
        MessageType::INFO
    };
    client.show_message(kind, done.summary).await;
}

fn start_tests(
    client: &Client,
    session: &Arc<Session>,
    security: &Arc<LiveSecurity>,
    target: Target,
) -> Result<Value, Error> {
    let line = target.code.lines.map_or(0, |(a, _)| a.saturating_sub(1)) as u32;
    let index = session.app.index.snapshot();
    let of = existing::tests_for(&target.code, line, index.as_deref())
        .map_err(|e| bad(format!("{RUN_TESTS}: {e}")))?;
    match existing::why_tests_cannot_run(&target.code, &of, &session.config()) {
        Ok(()) => {}
        Err(CannotRun::NoTests(why)) => return Err(failed(format!("{RUN_TESTS}: {why}"))),
        Err(CannotRun::Tester(why)) => {
            let text = format!(
                "Conductor: the tests of `{}` were not run: {why}",
                of.function
            );
            let client = client.clone();
            let shown = text.clone();
            tokio::spawn(async move { client.show_message(MessageType::WARNING, shown).await });
            return Err(failed(text));
        }
    }
    let token = session.progress.token("runTests");
    let shown = session.client().work_done_progress.then(|| token.clone());
    let names: Vec<String> = of.tests.iter().map(|(n, _)| n.clone()).collect();
    tokio::spawn(run_tests(
        client.clone(),
        session.clone(),
        security.clone(),
        target,
        of,
        token,
    ));
    Ok(json!({"token": shown, "tests": names}))
}

/// Runs the tests of `of` and publishes their failures where `orchestrator::existing` places
/// them, replacing the last test run's.
async fn run_tests(
    client: Client,
    session: Arc<Session>,
    security: Arc<LiveSecurity>,
    target: Target,
    of: TestsOf,
    token: String,
) {
    let config = session.config();
    let function = of.function.clone();
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
            format!(
                "running {} in a scratch copy",
                plural(of.tests.len(), "test")
            ),
            None,
        )
        .await;
    let report = match existing::run_tests(&config, &target.code.root, &of, stop).await {
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
    if !existing::tests_ran(&report) {
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
    let encoding = session.encoding();
    let mut by_file: Vec<(PathBuf, Vec<Pinned>)> = Vec::new();
    for place in existing::failure_places(&target.code, &of, &report) {
        let path = target.code.root.join(&place.rel);
        let text = text_of(&session, &path).unwrap_or_default();
        let rope = ropey::Rope::from_str(&text);
        let pin = Pinned {
            origin: Origin::Tests,
            line_text: rope_line(&rope, place.line),
            diagnostic: Diagnostic {
                range: line_range(&rope, place.line, encoding),
                severity: Some(DiagnosticSeverity::ERROR),
                code: Some(NumberOrString::String(TEST_FAILED_CODE.into())),
                source: Some("conductor".into()),
                message: place.message,
                data: Some(json!({"origin": Origin::Tests.as_str(), "test": place.name})),
                ..Diagnostic::default()
            },
            hover: place.hover,
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
    progress
        .end(format!(
            "{} passed, {} failed",
            report.passed.len(),
            report.failed.len()
        ))
        .await;
    let kind = if report.status == crate::tester::TestStatus::Passed {
        MessageType::INFO
    } else {
        MessageType::WARNING
    };
    client
        .show_message(kind, existing::tests_summary(&function, &report))
        .await;
}

/// The text of `path` as the user has it: the open buffer, else the disk.
fn text_of(session: &Session, path: &Path) -> Option<String> {
    let uri = uri_for(session, path)?;
    match session.snapshot(uri.as_str()) {
        Some(snapshot) => Some(snapshot.text.to_string()),
        None => crate::util::read_regular_text(path, crate::util::MAX_READ_BYTES).ok(),
    }
}

/// After run `id`: the high and critical findings it left behind (`existing::left_behind`), as
/// review diagnostics naming the run, on the lines of the text they are about.
pub fn publish_left_behind(
    session: &Session,
    security: &LiveSecurity,
    id: &str,
    left: &[existing::LeftBehind<'_>],
) {
    let encoding = session.encoding();
    for left in left {
        let Some(uri) = uri_for(session, &left.file.real) else {
            continue;
        };
        let rope = ropey::Rope::from_str(left.text);
        let pins: Vec<Pinned> = left
            .findings
            .iter()
            .map(|f| review_pin(f, &rope, encoding, Reviewed::Run(id)))
            .collect();
        // An applied edit: the buffer catches up on its own `didChange`. A held-back change's
        // findings are on the text the run read, and the user may have typed since.
        let now = if left.applied {
            None
        } else {
            session.snapshot(uri.as_str()).map(|s| s.text.clone())
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
    fn a_review_pin_is_on_its_line_without_indentation_and_says_where_it_came_from() {
        let rope = ropey::Rope::from_str("fn a() {\n    let x = run(y);\n}\n");
        let finding = ReviewFinding {
            file: "src/a.rs".into(),
            line: 2,
            rule_id: "rust/command-injection".into(),
            severity: crate::security::Severity::High,
            message: "a shell runs user input".into(),
            status: crate::orchestrator::FindingStatus::New,
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
}
