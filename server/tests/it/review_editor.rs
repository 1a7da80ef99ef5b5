//! The review and the tests in the editor (issue 13), end to end through the in-process server
//! and the loopback model server: "Conductor: Security review" and `conductor.review` publish
//! review diagnostics beside the live scan's, a failing review model leaves the static review
//! standing, a run's remaining high finding stays on its changed line until the line is
//! edited, and `conductor.runTests` runs the selected function's tests with a real
//! `cargo test` in the tester's scratch copy and publishes the failure at its assertion.

use std::time::Duration;

use conductor::testkit::{Fault, ModelServer, Reply};
use serde_json::{Value, json};

use super::support::replies::{block, decisions};
use super::support::{Options, TestServer, WAIT};

/// A handler that runs a query parameter through a shell (line 3, 0-based 2) and a harmless
/// function.
const INJECTION: &str = "use axum::extract::Query;\n\npub async fn diagnostics(Query(check): Query<String>) -> String {\n    let script = format!(\"/opt/bin/{check} --quiet\");\n    let out = std::process::Command::new(\"sh\").arg(\"-c\").arg(&script).output();\n    format!(\"{out:?}\")\n}\n\npub fn answer() -> u32 {\n    41\n}\n";

const FIXTURE: &str = r#"
//- /Cargo.toml
[package]
name = "demo"
version = "0.1.0"
edition = "2021"
//- /src/lib.rs
pub fn answer() -> u32 {
    41
}
"#;

fn settings(model: &ModelServer, review_model: bool) -> Value {
    json!({
        "tester": {"enabled": false},
        "review": {"model": review_model},
        "model": {
            "base_url": model.openai_base_url(),
            "model": "test-model",
            "max_attempts": 1,
            "retry_base_delay_ms": 5,
            "retry_max_delay_ms": 20,
        }
    })
}

async fn start(fixture: &'static str, settings: Value) -> TestServer {
    let server = TestServer::start(Options {
        fixture,
        settings,
        ..Options::default()
    })
    .await;
    // The configuration is pulled before indexing starts: once indexing ends, it is in place.
    server
        .wait_notification("$/progress", |n| n["params"]["value"]["kind"] == "end")
        .await;
    server
}

async fn command(server: &TestServer, name: &str, argument: Value) -> Result<Value, Value> {
    server
        .request(
            "workspace/executeCommand",
            json!({"command": name, "arguments": [argument]}),
        )
        .await
}

/// The first `window/showMessage` whose text starts with `prefix`.
async fn message(server: &TestServer, prefix: &str, limit: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let found = server
            .notifications("window/showMessage")
            .into_iter()
            .find(|n| {
                n["params"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(prefix))
            });
        if let Some(found) = found {
            return found["params"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message starting {prefix:?}: {:#?}",
            server.notifications("window/showMessage")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The first diagnostics of `uri` published after the first `seen` publications that
/// satisfy `accept`.
async fn diagnostics_after(
    server: &TestServer,
    uri: &str,
    seen: usize,
    accept: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let found = server
        .wait_notification_after("textDocument/publishDiagnostics", seen, |n| {
            n["params"]["uri"] == uri
                && n["params"]["diagnostics"]
                    .as_array()
                    .is_some_and(|d| accept(d))
        })
        .await;
    found["params"]["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn origin(d: &Value) -> &str {
    d["data"]["origin"].as_str().unwrap_or("")
}

fn live(diagnostics: &[Value], code: &str) -> bool {
    diagnostics
        .iter()
        .any(|d| d["code"] == code && d["data"].is_null())
}

fn security(findings: &str) -> Reply {
    Reply::text(format!("```json\n{{\"findings\": [{findings}]}}\n```\n"))
}

fn verdict(kind: &str, confidence: f64) -> Reply {
    Reply::text(format!(
        "```json\n{{\"verdict\": \"{kind}\", \"confidence\": {confidence}, \"reason\": \"checked the lines shown\"}}\n```\n"
    ))
}

#[tokio::test]
async fn the_security_review_action_is_offered_as_a_source_action_on_a_selection_or_a_file() {
    let model = ModelServer::start().await.expect("model server");
    let server = start(FIXTURE, settings(&model, false)).await;
    let uri = server.open("src/lib.rs").await;
    let ask = |range: Value, only: Option<Value>| {
        let mut context = json!({"diagnostics": []});
        if let Some(only) = only {
            context["only"] = only;
        }
        json!({"textDocument": {"uri": uri}, "range": range, "context": context})
    };
    let selection =
        json!({"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 1}});
    let cursor = json!({"start": {"line": 1, "character": 2}, "end": {"line": 1, "character": 2}});
    let actions = server
        .request("textDocument/codeAction", ask(selection.clone(), None))
        .await
        .expect("code actions");
    let review = actions
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["command"]["command"] == "conductor.review")
        })
        .cloned()
        .unwrap_or_else(|| panic!("a security review is offered: {actions}"));
    assert_eq!(review["kind"], "source.conductor.review");
    assert_eq!(
        review["title"],
        "Conductor: Security review of the selection"
    );
    assert_eq!(review["command"]["arguments"][0]["range"], selection);
    // At a cursor it reviews the whole file: no range.
    let actions = server
        .request("textDocument/codeAction", ask(cursor.clone(), None))
        .await
        .expect("code actions");
    let whole = actions
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["title"] == "Conductor: Security review")
        })
        .cloned()
        .unwrap_or_else(|| panic!("{actions}"));
    assert!(
        whole["command"]["arguments"][0].get("range").is_none(),
        "{whole}"
    );
    // A client asking for source actions gets it; one asking for quick fixes does not.
    let source = server
        .request(
            "textDocument/codeAction",
            ask(cursor.clone(), Some(json!(["source"]))),
        )
        .await
        .expect("code actions");
    assert!(source.to_string().contains("conductor.review"), "{source}");
    let quick = server
        .request(
            "textDocument/codeAction",
            ask(cursor.clone(), Some(json!(["quickfix"]))),
        )
        .await
        .expect("code actions");
    assert!(!quick.to_string().contains("conductor.review"), "{quick}");
    // The palette sends the cursor as an empty range: that too reviews the whole file.
    command(
        &server,
        "conductor.review",
        json!({"uri": uri, "range": cursor}),
    )
    .await
    .expect("the review starts");
    let summary = message(&server, "Conductor security review of src/lib.rs", WAIT).await;
    let text = summary["message"].as_str().unwrap_or("");
    assert!(
        text.starts_with("Conductor security review of src/lib.rs: no findings"),
        "{text}"
    );
    let kinds = &server.capabilities["capabilities"]["codeActionProvider"]["codeActionKinds"];
    assert!(
        kinds
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "source.conductor.review")),
        "{kinds}"
    );
}

#[tokio::test]
async fn a_review_of_a_command_injection_publishes_a_tagged_diagnostic_beside_the_live_scan() {
    let model = ModelServer::start().await.expect("model server");
    // The model adds two findings: one its check confirms above `review.min_confidence`, one
    // it confirms only at 0.5, which is dropped.
    model.push(
        "security",
        security(
            "{\"file\": \"src/lib.rs\", \"line\": 10, \"cwe\": \"CWE-20\", \"severity\": \"medium\", \"title\": \"magic number\", \"explanation\": \"an unexplained constant\", \"confidence\": 0.9}, \
             {\"file\": \"src/lib.rs\", \"line\": 6, \"cwe\": \"CWE-209\", \"severity\": \"low\", \"title\": \"output leaked\", \"explanation\": \"debug output returned\", \"confidence\": 0.9}",
        ),
    );
    model.push("security", verdict("confirmed", 0.95));
    model.push("security", verdict("confirmed", 0.5));
    let server = start(FIXTURE, settings(&model, true)).await;
    let uri = server.open_text("src/lib.rs", INJECTION).await;
    let scanned = server
        .wait_diagnostics(&uri, |d| live(d, "rust/command-injection"))
        .await;
    let live_line = scanned
        .iter()
        .find(|d| d["code"] == "rust/command-injection")
        .map(|d| d["range"]["start"]["line"].clone())
        .expect("a live finding");
    let started = command(&server, "conductor.review", json!({"uri": uri}))
        .await
        .expect("the review starts");
    let token = started["token"]
        .as_str()
        .expect("a progress token")
        .to_string();
    let summary = message(&server, "Conductor security review of src/lib.rs", WAIT).await;
    let text = summary["message"].as_str().unwrap_or("");
    assert_eq!(summary["type"], 2, "a high finding warns: {text}");
    assert!(text.contains("rust/command-injection"), "{text}");
    assert!(text.contains("1 kept after the refutation check"), "{text}");
    let published = server
        .wait_diagnostics(&uri, |d| d.iter().any(|d| origin(d) == "review"))
        .await;
    let review: Vec<&Value> = published.iter().filter(|d| origin(d) == "review").collect();
    let injection = review
        .iter()
        .find(|d| d["code"] == "rust/command-injection")
        .unwrap_or_else(|| panic!("{published:#?}"));
    // Line 5 (0-based 4): `Command::new("sh")…arg(&script)`, where the live scan has it too.
    assert_eq!(injection["range"]["start"]["line"], 4, "{injection}");
    assert_eq!(injection["range"]["start"]["line"], live_line);
    assert_eq!(injection["source"], "conductor");
    assert_eq!(injection["data"]["source"], "static");
    assert!(
        injection["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Review: "),
        "{injection}"
    );
    // The model's confirmed finding is there; the one confirmed at 0.5 is not.
    let model_found: Vec<&&Value> = review
        .iter()
        .filter(|d| d["data"]["source"] == "model")
        .collect();
    assert_eq!(model_found.len(), 1, "{review:#?}");
    assert_eq!(model_found[0]["code"], "model/CWE-20");
    assert_eq!(model_found[0]["range"]["start"]["line"], 9);
    // The live scan's diagnostics are still in the same publication.
    assert!(live(&published, "rust/command-injection"), "{published:#?}");
    let ended = server
        .notifications("$/progress")
        .into_iter()
        .any(|n| n["params"]["token"] == token.as_str() && n["params"]["value"]["kind"] == "end");
    assert!(ended, "the review's progress ends");

    // Editing the flagged line clears its review diagnostic; the others stay with their lines
    // even though a line was inserted above them.
    server
        .change(
            &uri,
            vec![json!({"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "// a comment\n"})],
        )
        .await;
    let moved = server
        .wait_diagnostics(&uri, |d| {
            d.iter()
                .any(|d| origin(d) == "review" && d["range"]["start"]["line"] == 10)
        })
        .await;
    assert!(
        moved.iter().any(|d| origin(d) == "review"
            && d["code"] == "rust/command-injection"
            && d["range"]["start"]["line"] == 5),
        "{moved:#?}"
    );
    let seen = server
        .notifications("textDocument/publishDiagnostics")
        .len();
    server
        .change(
            &uri,
            vec![json!({"range": {"start": {"line": 5, "character": 4}, "end": {"line": 5, "character": 13}}, "text": "let output"})],
        )
        .await;
    let edited = diagnostics_after(&server, &uri, seen, |d| {
        !d.iter()
            .any(|d| origin(d) == "review" && d["code"] == "rust/command-injection")
    })
    .await;
    assert!(
        edited.iter().any(|d| d["code"] == "model/CWE-20"),
        "the untouched line keeps its review diagnostic: {edited:#?}"
    );
}

#[tokio::test]
async fn a_failing_review_model_leaves_the_static_findings_and_says_it_was_skipped() {
    let model = ModelServer::start().await.expect("model server");
    for _ in 0..3 {
        model.push("security", Reply::fault(Fault::status(500)));
    }
    let server = start(FIXTURE, settings(&model, true)).await;
    let uri = server.open_text("src/lib.rs", INJECTION).await;
    // A selection: only its lines are reviewed.
    command(
        &server,
        "conductor.review",
        json!({"uri": uri, "range": {"start": {"line": 2, "character": 0}, "end": {"line": 7, "character": 0}}}),
    )
    .await
    .expect("the review starts");
    let summary = message(
        &server,
        "Conductor security review of src/lib.rs (lines 3-7)",
        WAIT,
    )
    .await;
    let text = summary["message"].as_str().unwrap_or("");
    assert!(text.contains("the model review was skipped"), "{text}");
    assert!(text.contains("the static review stands"), "{text}");
    assert!(text.contains("rust/command-injection"), "{text}");
    let published = server
        .wait_diagnostics(&uri, |d| d.iter().any(|d| origin(d) == "review"))
        .await;
    assert!(
        published
            .iter()
            .any(|d| origin(d) == "review" && d["code"] == "rust/command-injection"),
        "{published:#?}"
    );
    assert!(!model.requests().is_empty(), "the model was asked");
}

#[tokio::test]
async fn a_run_whose_change_keeps_a_high_finding_leaves_a_review_diagnostic_on_the_changed_line() {
    let model = ModelServer::start().await.expect("model server");
    let injecting = |extra: &str| {
        Reply::text(format!(
            "{}\n{}",
            block(
                "src/lib.rs",
                "pub fn answer() -> u32 {\n",
                &format!(
                    "pub async fn run(Query(check): Query<String>) -> String {{\n    let script = format!(\"/opt/bin/{{check}} --quiet{extra}\");\n    let out = std::process::Command::new(\"sh\").arg(\"-c\").arg(&script).output();\n    format!(\"{{out:?}}\")\n}}\n\npub fn answer() -> u32 {{\n"
                ),
            ),
            decisions(&[1])
        ))
    };
    model.push("coder", injecting(""));
    // The improve round changes something else and leaves the injection.
    model.push(
        "coder",
        Reply::text(format!(
            "{}\n{}",
            block("src/lib.rs", "    41\n", "    42\n"),
            decisions(&[1])
        )),
    );
    let server = start(FIXTURE, settings(&model, false)).await;
    let uri = server.open("src/lib.rs").await;
    let started = command(
        &server,
        "conductor.writeTests",
        json!({"uri": uri, "goal": "add a runner"}),
    )
    .await
    .expect("the run starts");
    let id = started["runId"].as_str().expect("a run id").to_string();
    let ended = message(&server, &format!("Conductor run {id}"), WAIT).await;
    // A change that keeps a high finding is held back, not applied.
    assert!(
        ended["message"]
            .as_str()
            .unwrap_or("")
            .contains("not applied"),
        "{ended}"
    );
    assert!(!server.text(&uri).contains("Command::new(\"sh\")"));
    let published = server
        .wait_diagnostics(&uri, |d| d.iter().any(|d| origin(d) == "review"))
        .await;
    let pinned = published
        .iter()
        .find(|d| origin(d) == "review")
        .expect("a review diagnostic");
    assert_eq!(pinned["code"], "rust/command-injection");
    assert_eq!(pinned["data"]["runId"], id.as_str());
    assert_eq!(pinned["severity"], 1, "an error: {pinned}");
    // The shell line is line 3 of the change, which would go in above `pub fn answer` (line 0).
    assert_eq!(pinned["range"]["start"]["line"], 0, "{pinned}");
    let words = pinned["message"].as_str().unwrap_or("");
    assert!(
        words.starts_with(&format!("Review (run {id}): ")),
        "{words}"
    );
    assert!(
        words.contains("the proposed change (not applied) brings this in at its line 3"),
        "{words}"
    );
    // Editing that line clears it.
    let seen = server
        .notifications("textDocument/publishDiagnostics")
        .len();
    server
        .change(
            &uri,
            vec![json!({"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "pub "})],
        )
        .await;
    let after = diagnostics_after(&server, &uri, seen, |_| true).await;
    assert!(!after.iter().any(|d| origin(d) == "review"), "{after:#?}");
}

#[tokio::test]
async fn bad_arguments_are_invalid_params_and_a_missing_tester_names_its_setting() {
    let model = ModelServer::start().await.expect("model server");
    let server = start(FIXTURE, settings(&model, false)).await;
    let uri = server.uri("src/lib.rs");
    let outside = tempfile::NamedTempFile::new().expect("temp file");
    let outside_uri = super::support::file_uri(outside.path());
    let line =
        |n: u32| json!({"start": {"line": n, "character": 0}, "end": {"line": n, "character": 0}});
    let cases = [
        ("conductor.review", json!("not an object"), "bad argument"),
        ("conductor.review", json!({"range": line(0)}), "uri"),
        (
            "conductor.review",
            json!({"uri": outside_uri}),
            "outside the workspace",
        ),
        (
            "conductor.review",
            json!({"uri": uri, "range": 3}),
            "bad argument",
        ),
        (
            "conductor.runTests",
            json!({"uri": server.uri("src/missing.rs"), "range": line(0)}),
            "reading",
        ),
        ("conductor.runTests", json!({"uri": uri}), "needs a range"),
        (
            "conductor.runTests",
            json!({"uri": uri, "range": line(40)}),
            "no function encloses",
        ),
    ];
    for (name, argument, words) in cases {
        let err = command(&server, name, argument.clone())
            .await
            .expect_err("refused");
        assert_eq!(err["code"], -32602, "{name} {argument}: {err}");
        let text = err["message"].as_str().unwrap_or("");
        assert!(text.contains(words), "{name} {argument}: {text}");
    }
    let none = server
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.review"}),
        )
        .await
        .expect_err("no argument");
    assert_eq!(none["code"], -32602, "{none}");
    // A function without tests is said so; with the tester off, the tests are not run and
    // the message names the setting.
    let untested = command(
        &server,
        "conductor.runTests",
        json!({"uri": uri, "range": line(1)}),
    )
    .await
    .expect_err("no tests");
    assert!(
        untested["message"]
            .as_str()
            .unwrap_or("")
            .contains("no test calls `answer`"),
        "{untested}"
    );
    let tested = server
        .open_text(
            "src/lib.rs",
            "pub fn answer() -> u32 {\n    41\n}\n\n#[test]\nfn it_answers() {\n    assert_eq!(answer(), 41);\n}\n",
        )
        .await;
    let off = command(
        &server,
        "conductor.runTests",
        json!({"uri": tested, "range": line(1)}),
    )
    .await
    .expect_err("the tester is off");
    assert!(
        off["message"]
            .as_str()
            .unwrap_or("")
            .contains("[tester] enabled"),
        "{off}"
    );
    let said = message(
        &server,
        "Conductor: the tests of `answer` were not run",
        WAIT,
    )
    .await;
    assert_eq!(said["type"], 2, "{said}");
}

const TESTED: &str = r#"
//- /Cargo.toml
[package]
name = "tested"
version = "0.1.0"
edition = "2021"

[dependencies]
//- /src/lib.rs
pub fn add(a: u32, b: u32) -> u32 {
    a + b + u32::from(a == 2)
}

pub fn unrelated() -> u32 {
    7
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_small_numbers() {
        assert_eq!(add(1, 1), 2);
    }

    #[test]
    fn adds_two() {
        let sum = add(2, 2);
        assert_eq!(sum, 4, "two and two");
    }

    #[test]
    fn unrelated_is_seven() {
        assert_eq!(unrelated(), 7);
    }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_tests_on_a_function_publishes_its_failing_test_at_the_assertion() {
    // One cold build of a dependency-free crate, in the tester's scratch copy.
    let server = start(
        TESTED,
        json!({"tester": {"enabled": true, "timeout_secs": 300}, "review": {"model": false}}),
    )
    .await;
    let uri = server.open("src/lib.rs").await;
    let started = command(
        &server,
        "conductor.runTests",
        json!({"uri": uri, "range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 4}}}),
    )
    .await
    .expect("the tests start");
    // The tests that call `add`, not the unrelated one.
    assert_eq!(started["tests"], json!(["adds_small_numbers", "adds_two"]));
    let summary = message(
        &server,
        "Conductor tests of `add`",
        Duration::from_secs(300),
    )
    .await;
    let text = summary["message"].as_str().unwrap_or("");
    assert!(text.contains("1 passed, 1 failed"), "{text}");
    assert!(text.contains("tests::adds_two"), "{text}");
    let published = server
        .wait_diagnostics(&uri, |d| d.iter().any(|d| origin(d) == "tests"))
        .await;
    let failure = published
        .iter()
        .find(|d| origin(d) == "tests")
        .expect("a test diagnostic");
    // `assert_eq!(sum, 4, …)`: line 21 of the file (0-based 20).
    assert_eq!(failure["range"]["start"]["line"], 20, "{failure}");
    assert_eq!(failure["code"], "conductor/test-failed");
    assert_eq!(failure["data"]["test"], "tests::adds_two");
    let words = failure["message"].as_str().unwrap_or("");
    assert!(
        words.starts_with("Test `tests::adds_two` failed"),
        "{words}"
    );
    assert!(words.contains("two and two"), "{words}");
    // The user's tree was not built in: the tester worked in its scratch copy.
    assert!(!server.root.join("target").exists());
    // Its hover: the test, the failure message, how to run it again; and the fix action.
    let text = server.text(&uri);
    let at = line_start(&text, 20) + 8;
    let hover = hover_text(&server, &uri, &text, at).await;
    assert!(
        hover.contains("**Test failed** `tests::adds_two`"),
        "{hover}"
    );
    assert!(hover.contains("two and two"), "{hover}");
    assert!(hover.contains("-- tests::adds_two --exact"), "{hover}");
    let fix = fix_action_at(&server, &uri, 20).await;
    assert_eq!(
        fix["diagnostics"][0]["code"], "conductor/test-failed",
        "{fix}"
    );
}

/// The byte offset where 0-based `line` of `text` starts.
fn line_start(text: &str, line: usize) -> usize {
    text.split_inclusive('\n').take(line).map(str::len).sum()
}

/// The hover's Markdown at byte `at` (empty when there is none).
async fn hover_text(server: &TestServer, uri: &str, text: &str, at: usize) -> String {
    let hover = server.hover(uri, text, at).await.expect("hover answers");
    hover["contents"]["value"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The "Conductor: Fix with agents" action offered on 0-based `line` of `uri`.
async fn fix_action_at(server: &TestServer, uri: &str, line: u32) -> Value {
    let actions = server
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": uri},
                "range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}},
                "context": {"diagnostics": [], "only": ["quickfix"]},
            }),
        )
        .await
        .expect("code actions answer");
    actions
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| {
            a["title"] == "Conductor: Fix with agents"
                && a["diagnostics"][0]["data"]["origin"].as_str().is_some()
        })
        .cloned()
        .unwrap_or_else(|| panic!("no fix action on line {line}: {actions:#}"))
}

#[tokio::test]
async fn a_review_diagnostic_explains_itself_on_hover_offers_a_fix_and_the_review_is_journalled() {
    let model = ModelServer::start().await.expect("model server");
    // No finding of its own; a verdict on the one static finding it is shown.
    model.push(
        "security",
        Reply::text(
            "```json\n{\"findings\": [], \"static_verdicts\": [{\"finding\": 1, \"verdict\": \"false_positive\", \"confidence\": 0.6, \"reason\": \"check is validated upstream\"}]}\n```\n",
        )
        .with_usage(120, 30),
    );
    let server = start(FIXTURE, settings(&model, true)).await;
    // A run that ended 200 days ago: the review, journalled like a run, applies retention.
    let old = super::support::old_run(&server.root, 200);
    let uri = server.open_text("src/lib.rs", INJECTION).await;
    command(&server, "conductor.review", json!({"uri": uri}))
        .await
        .expect("the review starts");
    let summary = message(&server, "Conductor security review of src/lib.rs", WAIT).await;
    let text = summary["message"].as_str().unwrap_or("");
    assert!(text.contains("likely false positive"), "{text}");
    assert!(text.contains("journalled as review-"), "{text}");
    assert!(
        super::support::run_removed(&server.root, &old),
        "retention ran before the summary"
    );
    let published = server
        .wait_diagnostics(&uri, |d| d.iter().any(|d| origin(d) == "review"))
        .await;
    let injection = published
        .iter()
        .find(|d| origin(d) == "review" && d["code"] == "rust/command-injection")
        .unwrap_or_else(|| panic!("the static finding stays: {published:#?}"));
    assert_eq!(injection["data"]["verdict"], "likely_false_positive");
    let id = injection["data"]["runId"]
        .as_str()
        .expect("a run id")
        .to_string();
    // The hover: the rule's explanation and data flow, the verdict, the review's id.
    let line = injection["range"]["start"]["line"].as_u64().unwrap_or(0) as usize;
    let at = line_start(INJECTION, line) + 8;
    let hover = hover_text(&server, &uri, INJECTION, at).await;
    for part in [
        "**Conductor review** · ",
        "from the static review",
        "Data flow:",
        "likely a false positive (confidence 0.60): check is validated upstream",
        id.as_str(),
    ] {
        assert!(hover.contains(part), "{part:?} in {hover}");
    }
    // "Fix with agents" is offered on it, with the diagnostic.
    let fix = fix_action_at(&server, &uri, line as u32).await;
    assert_eq!(fix["kind"], "quickfix.conductor", "{fix}");
    assert_eq!(fix["command"]["command"], "conductor.fix", "{fix}");
    assert_eq!(fix["diagnostics"][0]["code"], "rust/command-injection");
    // Journalled as a run of kind `review`, with its model usage and its findings.
    let (runs, _) = conductor::journal::list(&server.root).expect("the runs list");
    let run = runs
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{id} in {runs:#?}"));
    assert_eq!(run.kind, "review");
    assert_eq!(run.state.as_str(), "done");
    assert_eq!(
        (run.usage.prompt_tokens, run.usage.completion_tokens),
        (120, 30)
    );
    let read = conductor::journal::read(&run.journal).expect("the journal reads");
    let finding = read.records.iter().find_map(|r| match &r.event {
        conductor::journal::Event::Finding {
            rule_id, message, ..
        } if rule_id == "rust/command-injection" => Some(message.clone()),
        _ => None,
    });
    assert!(
        finding.is_some_and(
            |m| m.contains("model verdict: the model thinks it is likely a false positive")
        ),
        "{:#?}",
        read.records
    );
}
