//! "Explain trade-offs" (issue 14), end to end: the real server in process, the harness client,
//! and the model server on loopback speaking the OpenAI wire format with scripted replies and
//! faults. Each test goes through the code action or `conductor.explain` and checks what the
//! user sees (the document, `window/showDocument`, the messages) and what the journal records.

use std::time::Duration;

use conductor::testkit::{Fault, ModelServer, Reply};
use serde_json::{Value, json};

use super::support::{Behaviour, Options, TestServer};

/// The file explained; the disk has `41`, the tests' buffers sometimes hold something else.
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

pub fn other() -> u32 {
    7
}
"#;

const LIB: &str = "pub fn answer() -> u32 {\n    41\n}\n\npub fn other() -> u32 {\n    7\n}\n";

/// A reply that follows the explainer's format.
const GOOD_REPLY: &str = r#"Here is the explanation.

```json
{"summary": "Returns a hard-coded answer with no state or configuration.",
 "what_it_does": "`answer` returns the constant 41 to every caller.",
 "design_choices": [{"choice": "A literal in the body", "why": "nothing else needs the value"}],
 "alternatives": [{"alternative": "A `const ANSWER: u32`", "cost": "readability", "detail": "names the value so tests can share it"}],
 "failure_modes": [{"where": "callers that expect 42", "how": "an off-by-one answer", "monitor": "a unit test that asserts the value"}],
 "risks": ["The value is repeated in the tests."]}
```
"#;

fn good_reply() -> Reply {
    Reply::text(GOOD_REPLY).with_usage(120, 80)
}

fn settings(model: &ModelServer) -> Value {
    json!({
        "tester": {"enabled": false},
        "review": {"model": false},
        "model": {
            "base_url": model.openai_base_url(),
            "model": "test-model",
            "max_attempts": 1,
            "retry_base_delay_ms": 5,
            "retry_max_delay_ms": 20,
        }
    })
}

async fn start(model: &ModelServer, tweak: impl FnOnce(&mut Options)) -> TestServer {
    let mut options = Options {
        fixture: FIXTURE,
        settings: settings(model),
        ..Options::default()
    };
    tweak(&mut options);
    let server = TestServer::start(options).await;
    server
        .wait_notification("$/progress", |n| n["params"]["value"]["kind"] == "end")
        .await;
    server
}

fn range(a: u32, ac: u32, b: u32, bc: u32) -> Value {
    json!({"start": {"line": a, "character": ac}, "end": {"line": b, "character": bc}})
}

async fn explain(server: &TestServer, argument: Value) -> Result<Value, Value> {
    server
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.explain", "arguments": [argument]}),
        )
        .await
}

/// Starts an explanation of lines 1-3 of `uri`; returns the run id.
async fn explain_answer(server: &TestServer, uri: &str, question: Option<&str>) -> String {
    let mut argument = json!({"uri": uri, "range": range(0, 0, 3, 0)});
    if let Some(q) = question {
        argument["question"] = json!(q);
    }
    let started = explain(server, argument)
        .await
        .expect("the command answers");
    started["runId"].as_str().expect("a run id").to_string()
}

/// The last `window/showMessage` about run `id`.
async fn ended(server: &TestServer, id: &str) -> Value {
    let prefix = format!("Conductor run {id}");
    server
        .wait_notification("window/showMessage", |n| {
            n["params"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&prefix))
        })
        .await["params"]
        .clone()
}

fn journal(server: &TestServer, id: &str) -> Vec<Value> {
    let path = server
        .root
        .join(".conductor/runs")
        .join(format!("{id}.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("journal {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a journal line"))
        .collect()
}

fn events<'a>(journal: &'a [Value], name: &str) -> Vec<&'a Value> {
    journal.iter().filter(|e| e["event"] == name).collect()
}

fn explanations(server: &TestServer) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(server.root.join(".conductor/explanations"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The user turns the model was sent, oldest first.
fn prompts(model: &ModelServer) -> Vec<String> {
    model
        .requests()
        .iter()
        .map(|r| {
            let body = r.json();
            body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["role"] == "user")
                .filter_map(|m| m["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

#[tokio::test]
async fn the_code_action_is_offered_on_a_selection_and_not_on_an_empty_or_blank_one() {
    let model = ModelServer::start().await.expect("model server");
    let server = start(&model, |_| {}).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let actions = |r: Value, only: Option<Value>| {
        let mut context = json!({"diagnostics": []});
        if let Some(only) = only {
            context["only"] = only;
        }
        server.request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": r, "context": context}),
        )
    };
    let explain_action = |answer: &Value| {
        answer
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["title"] == "Conductor: Explain trade-offs")
            .cloned()
    };
    let offered = actions(range(0, 4, 2, 1), None).await.expect("answered");
    let action = explain_action(&offered).expect("offered on a selection");
    assert_eq!(action["kind"], "refactor.conductor.explain");
    assert_eq!(action["command"]["command"], "conductor.explain");
    assert_eq!(action["command"]["arguments"][0]["uri"], uri.as_str());
    assert_eq!(
        action["command"]["arguments"][0]["range"],
        range(0, 4, 2, 1)
    );
    let refactor = actions(range(0, 4, 2, 1), Some(json!(["refactor"])))
        .await
        .expect("answered");
    assert!(explain_action(&refactor).is_some(), "a refactor kind");
    let quickfix = actions(range(0, 4, 2, 1), Some(json!(["quickfix"])))
        .await
        .expect("answered");
    assert!(explain_action(&quickfix).is_none(), "{quickfix}");
    let cursor = actions(range(1, 2, 1, 2), None).await.expect("answered");
    assert!(explain_action(&cursor).is_none(), "a cursor: {cursor}");
    // Line 4 (index 3) is blank.
    let blank = actions(range(3, 0, 3, 0), None).await.expect("answered");
    assert!(explain_action(&blank).is_none(), "{blank}");
    let blank_line = actions(range(3, 0, 4, 0), None).await.expect("answered");
    assert!(explain_action(&blank_line).is_none(), "{blank_line}");
    // Not on Conductor's own documents.
    let doc = server
        .open_text(
            ".conductor/explanations/lib-L1-r1.md",
            "# Trade-offs\n\nsome text\n",
        )
        .await;
    let on_doc = server
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": doc}, "range": range(0, 0, 2, 0), "context": {"diagnostics": []}}),
        )
        .await
        .expect("answered");
    assert!(explain_action(&on_doc).is_none(), "{on_doc}");
    assert!(model.requests().is_empty(), "offering asks no model");
}

#[tokio::test]
async fn an_explanation_is_written_shown_summarised_and_anchored_on_the_selection() {
    let model = ModelServer::start().await.expect("model server");
    model.push("explainer", good_reply());
    let server = start(&model, |_| {}).await;
    // The buffer, not the disk, is what the user has: the run explains it.
    let buffer = LIB.replace("    41", "    41 // typed, unsaved");
    let uri = server.open_text("src/lib.rs", &buffer).await;
    let started = explain(
        &server,
        json!({"uri": uri, "range": range(0, 0, 3, 0), "question": "why not a const?"}),
    )
    .await
    .expect("the command answers");
    let id = started["runId"].as_str().expect("a run id").to_string();
    let token = started["token"].as_str().expect("a progress token");
    assert!(token.starts_with("conductor/explain/"), "{token}");

    let shown = server.wait_server_request("window/showDocument").await;
    let shown_uri = shown["params"]["uri"].as_str().expect("a uri").to_string();
    let name = format!("lib-L1-{id}.md");
    assert!(
        shown_uri.ends_with(&format!(".conductor/explanations/{name}")),
        "{shown_uri}"
    );
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 3, "an info message: {message}");
    assert_eq!(
        message["message"],
        format!("Conductor run {id}: Returns a hard-coded answer with no state or configuration.")
    );

    let path = server.root.join(".conductor/explanations").join(&name);
    let document = std::fs::read_to_string(&path).expect("the document");
    for part in [
        "# Trade-offs of src/lib.rs lines 1-3\n",
        "- File: `src/lib.rs`, lines 1-3\n",
        &format!("- Run: `{id}`"),
        "- Model: test-model (",
        "- Date: 20",
        "- Question: why not a const?\n",
        "**Returns a hard-coded answer with no state or configuration.**",
        "## What it does\n\n`answer` returns the constant 41 to every caller.",
        "## Design choices\n\n- **A literal in the body** — nothing else needs the value\n",
        "## Alternatives and their costs\n\n- **A `const ANSWER: u32`** (cost: readability) — names the value so tests can share it\n",
        "## Where it can fail, and how to monitor it\n\n- **callers that expect 42**: an off-by-one answer\n  - Monitor: a unit test that asserts the value\n",
        "## Risks\n\n- The value is repeated in the tests.\n",
    ] {
        assert!(document.contains(part), "{part:?} in:\n{document}");
    }

    // The request: the explainer's header, the selection from the buffer, fenced as data.
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("x-conductor-agent"), Some("explainer"));
    assert_eq!(requests[0].header("x-conductor-run"), Some(id.as_str()));
    let prompt = &prompts(&model)[0];
    let fenced = prompt
        .find("DATA — the selection, src/lib.rs lines 1-3:")
        .expect("the selection is fenced");
    let typed = prompt
        .find("41 // typed, unsaved")
        .expect("the buffer's text");
    assert!(typed > fenced, "{prompt}");
    assert!(
        prompt.find("The developer also asks: why not a const?") < Some(fenced),
        "{prompt}"
    );

    let journal = journal(&server, &id);
    let started = events(&journal, "run_started");
    assert_eq!(started[0]["kind"], "explain");
    assert_eq!(started[0]["selection"], "src/lib.rs:1-3");
    assert_eq!(started[0]["goal"], "why not a const?");
    let request = events(&journal, "model_request");
    assert_eq!(request.len(), 1);
    assert_eq!(request[0]["agent"], "explainer");
    assert_eq!(request[0]["outcome"], "ok");
    assert_eq!(request[0]["prompt_tokens"], 120);
    assert!(
        !events(&journal, "context").is_empty(),
        "the bundle's manifest"
    );
    let explanation = events(&journal, "explanation");
    assert_eq!(explanation.len(), 1);
    assert_eq!(explanation[0]["file"], "src/lib.rs");
    assert_eq!(explanation[0]["lines"], json!([1, 3]));
    assert_eq!(
        explanation[0]["document"],
        format!(".conductor/explanations/{name}")
    );
    let anchored = events(&journal, "anchored");
    assert_eq!(anchored.len(), 1);
    let selection = "pub fn answer() -> u32 {\n    41 // typed, unsaved\n}\n";
    let a = anchored[0];
    assert_eq!(a["hunk"], 1);
    assert_eq!(a["file"], "src/lib.rs");
    assert_eq!(a["lines"], json!([1, 3]));
    assert_eq!(a["written"], selection);
    assert_eq!(a["original"], selection);
    assert_eq!(
        a["hash"],
        conductor::editor::text_hash(selection.as_bytes())
    );
    assert_eq!(
        a["file_hash"],
        conductor::editor::text_hash(buffer.as_bytes())
    );
    assert_eq!(a["step"], Value::Null);
    assert_eq!(
        a["summary"],
        "Returns a hard-coded answer with no state or configuration."
    );
    let outcome = journal.last().expect("events");
    assert_eq!(outcome["event"], "outcome");
    assert_eq!(outcome["state"], "done");
    assert_eq!(outcome["usage"]["prompt_tokens"], 120);

    // Progress began and ended under the token, and the lenses were asked to refresh.
    let progress: Vec<String> = server
        .notifications("$/progress")
        .into_iter()
        .filter(|n| n["params"]["token"] == token)
        .filter_map(|n| n["params"]["value"]["kind"].as_str().map(str::to_string))
        .collect();
    assert_eq!(progress.first().map(String::as_str), Some("begin"));
    let title = server
        .notifications("$/progress")
        .into_iter()
        .find(|n| n["params"]["token"] == token && n["params"]["value"]["kind"] == "begin")
        .map(|n| n["params"]["value"]["title"].clone());
    assert_eq!(
        title,
        Some(json!(format!("Conductor run {id}: explain trade-offs"))),
        "the title editors follow runs by"
    );
    assert_eq!(progress.last().map(String::as_str), Some("end"));
    server
        .wait_server_request("workspace/codeLens/refresh")
        .await;
    assert!(
        server.received_edits().is_empty(),
        "explaining edits nothing"
    );
    assert_eq!(server.text(&uri), buffer);

    // The selection is now a decision: its hover shows the summary and links the document,
    // and a lens opens it.
    let byte = buffer.find("41").expect("41");
    let hover = server.hover(&uri, &buffer, byte).await.expect("hover");
    let hover = hover["contents"]["value"].as_str().unwrap_or("");
    assert!(hover.contains("**Conductor explanation**"), "{hover}");
    assert!(
        hover.contains("Returns a hard-coded answer with no state or configuration."),
        "{hover}"
    );
    assert!(hover.contains(&name), "the document is linked: {hover}");
    let lenses = server
        .request(
            "textDocument/codeLens",
            json!({"textDocument": {"uri": uri}}),
        )
        .await
        .expect("lenses");
    let lens = lenses
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|l| l["command"]["command"] == "conductor.showRun")
        })
        .cloned()
        .expect("an explanation lens");
    assert_eq!(lens["range"]["start"]["line"], 0);
    assert_eq!(lens["command"]["arguments"][0]["show"], "explanation");
}

#[tokio::test]
async fn a_secret_in_the_selection_never_reaches_the_request_or_the_document() {
    let secret = "AKIAZ3MSJV7QXW2PLR5T";
    let model = ModelServer::start().await.expect("model server");
    // A model that quotes the placeholder it was shown back.
    model.push(
        "explainer",
        Reply::text(GOOD_REPLY.replace(
            "nothing else needs the value",
            "the key <redacted:aws-key:1> is inlined",
        )),
    );
    let server = start(&model, |o| {
        // Loopback is trusted by default; this run redacts as a remote provider would.
        o.settings["model"]["redact"] = json!("always");
    })
    .await;
    let text = format!("pub fn key() -> &'static str {{\n    \"{secret}\"\n}}\n");
    let uri = server.open_text("src/lib.rs", &text).await;
    let id = explain_answer(&server, &uri, None).await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 3, "{message}");
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        !requests[0].body.contains(secret),
        "the secret left the machine: {}",
        requests[0].body
    );
    assert!(requests[0].body.contains("<redacted:aws-key:1>"));
    let journal = journal(&server, &id);
    // The secret is in the selection and in its context: one placeholder, used in both.
    let redacted = events(&journal, "model_request")[0]["redacted"].as_u64();
    assert!(redacted.is_some_and(|n| n >= 1), "{redacted:?}");
    assert!(!requests[0].body.contains("<redacted:aws-key:2>"));
    let documents = explanations(&server);
    assert_eq!(documents.len(), 1);
    let document = std::fs::read_to_string(&documents[0]).expect("the document");
    assert!(!document.contains(secret), "{document}");
    assert!(document.contains("<redacted:aws-key:1>"), "{document}");
}

#[tokio::test]
async fn a_malformed_reply_gets_one_corrective_retry_then_the_good_one_is_used() {
    let model = ModelServer::start().await.expect("model server");
    model.push(
        "explainer",
        Reply::text("```json\n{\"summary\": \"x\", \"what_it_does\": \"y\"}\n```"),
    );
    model.push("explainer", good_reply());
    let server = start(&model, |_| {}).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    // As the Neovim plugin sends it: the command's text as `goal`.
    let started = explain(
        &server,
        json!({"uri": uri, "range": range(0, 0, 3, 0), "goal": "why 41?"}),
    )
    .await
    .expect("the command answers");
    let id = started["runId"].as_str().expect("a run id").to_string();
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 3, "{message}");
    let sent = prompts(&model);
    assert_eq!(sent.len(), 2, "one corrective retry");
    assert!(
        sent[1].contains("Your previous reply could not be used: the JSON block is invalid"),
        "{}",
        sent[1]
    );
    assert!(sent[1].contains("design_choices"), "{}", sent[1]);
    let journal = journal(&server, &id);
    assert_eq!(events(&journal, "model_request").len(), 2);
    assert_eq!(events(&journal, "explanation").len(), 1);
    assert_eq!(explanations(&server).len(), 1);
    assert_eq!(events(&journal, "run_started")[0]["goal"], "why 41?");
    assert!(sent[0].contains("The developer also asks: why 41?"));
}

#[tokio::test]
async fn a_model_that_keeps_failing_ends_with_an_error_no_document_and_a_failed_outcome() {
    // Twice malformed (the retry too), then a server that answers 500 (attempts: 1).
    let cases: [(Vec<Reply>, &str); 2] = [
        (
            vec![
                Reply::text("I think this code is fine."),
                Reply::text("```json\n{\"summary\": \"\"}\n```"),
            ],
            "did not follow the protocol, even after a corrective retry",
        ),
        (
            vec![Reply::fault(Fault::status(500))],
            "the explainer model failed",
        ),
    ];
    for (replies, words) in cases {
        let model = ModelServer::start().await.expect("model server");
        for reply in replies {
            model.push("explainer", reply);
        }
        let server = start(&model, |_| {}).await;
        let uri = server.open_text("src/lib.rs", LIB).await;
        let id = explain_answer(&server, &uri, None).await;
        let message = ended(&server, &id).await;
        assert_eq!(message["type"], 1, "an error: {message}");
        let text = message["message"].as_str().unwrap_or("");
        assert!(text.contains(words), "{words:?} in {text}");
        assert!(text.contains("no document was written"), "{text}");
        assert!(
            text.contains(&format!("{id}.jsonl")),
            "names the journal: {text}"
        );
        assert!(explanations(&server).is_empty(), "no document");
        assert!(
            server.server_requests("window/showDocument").is_empty(),
            "nothing shown"
        );
        let journal = journal(&server, &id);
        assert!(events(&journal, "explanation").is_empty());
        assert!(events(&journal, "anchored").is_empty());
        assert!(!events(&journal, "model_request").is_empty());
        let outcome = journal.last().expect("events");
        assert_eq!(outcome["event"], "outcome");
        assert_eq!(outcome["state"], "failed");
        // Without a question, the goal says what was explained.
        assert_eq!(
            events(&journal, "run_started")[0]["goal"],
            "explain the trade-offs of src/lib.rs:1-3"
        );
    }
}

#[tokio::test]
async fn bad_arguments_are_invalid_params_and_start_nothing() {
    let model = ModelServer::start().await.expect("model server");
    let server = start(&model, |_| {}).await;
    let uri = server.uri("src/lib.rs");
    let outside = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(outside.path(), "fn outside() {}\n").expect("write");
    let outside_uri = super::support::file_uri(outside.path());
    let cases = [
        (
            json!({"uri": uri, "range": range(1, 2, 1, 2)}),
            "selection is empty",
        ),
        (json!({"uri": uri, "range": range(3, 0, 4, 0)}), "are blank"),
        (
            json!({"uri": uri, "range": range(40, 0, 41, 0)}),
            "past the end",
        ),
        (json!({"uri": uri}), "bad argument"),
        (
            json!({"uri": uri, "range": range(0, 0, 2, 0), "question": 7}),
            "bad argument",
        ),
        (json!("not an object"), "bad argument"),
        (
            json!({"uri": outside_uri, "range": range(0, 0, 1, 0)}),
            "outside the workspace",
        ),
        (
            json!({"uri": server.uri("src/missing.rs"), "range": range(0, 0, 1, 0)}),
            "reading",
        ),
    ];
    for (argument, words) in cases {
        let err = explain(&server, argument.clone())
            .await
            .expect_err("refused");
        assert_eq!(err["code"], -32602, "{argument}: {err}");
        let message = err["message"].as_str().unwrap_or("");
        assert!(
            message.contains(words),
            "{words:?} for {argument}: {message}"
        );
    }
    let no_argument = server
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.explain", "arguments": []}),
        )
        .await
        .expect_err("refused");
    assert_eq!(no_argument["code"], -32602, "{no_argument}");
    assert!(!server.root.join(".conductor/runs").exists());
    assert!(model.requests().is_empty());
}

#[tokio::test]
async fn a_cancel_stops_the_request_and_writes_no_document() {
    for by_command in [true, false] {
        let model = ModelServer::start().await.expect("model server");
        model.push(
            "explainer",
            good_reply().with_latency(Duration::from_secs(30)),
        );
        let server = start(&model, |_| {}).await;
        if !by_command {
            server.cancel_progress_on("conductor/explain", "report");
        }
        let uri = server.open_text("src/lib.rs", LIB).await;
        let id = explain_answer(&server, &uri, None).await;
        if by_command {
            server
                .wait_notification("$/progress", |n| {
                    n["params"]["value"]["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("explaining"))
                })
                .await;
            let answer = server
                .request(
                    "workspace/executeCommand",
                    json!({"command": "conductor.cancel", "arguments": [{"runId": id}]}),
                )
                .await
                .expect("cancel answers");
            assert_eq!(answer["cancelled"], true);
        }
        let message = ended(&server, &id).await;
        let text = message["message"].as_str().unwrap_or("");
        assert!(text.contains("cancelled"), "{text}");
        assert!(text.contains("no document was written"), "{text}");
        assert!(explanations(&server).is_empty());
        let journal = journal(&server, &id);
        assert_eq!(
            journal.last().map(|e| e["state"].clone()),
            Some(json!("cancelled"))
        );
        assert!(events(&journal, "explanation").is_empty());
    }
}

#[tokio::test]
async fn the_run_wall_clock_and_budget_bound_an_explanation() {
    // A reply 30 s away, under a 1 s wall clock.
    let model = ModelServer::start().await.expect("model server");
    model.push(
        "explainer",
        good_reply().with_latency(Duration::from_secs(30)),
    );
    let server = start(&model, |o| {
        o.settings["run"] = json!({"wall_clock_secs": 1});
    })
    .await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = explain_answer(&server, &uri, None).await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 1, "an error: {message}");
    let text = message["message"].as_str().unwrap_or("");
    assert!(text.contains("wall-clock limit of 1 s"), "{text}");
    assert!(explanations(&server).is_empty());
    assert_eq!(
        journal(&server, &id).last().map(|e| e["state"].clone()),
        Some(json!("failed"))
    );

    // A token budget smaller than one request: nothing is sent.
    let model = ModelServer::start().await.expect("model server");
    model.push("explainer", good_reply());
    let server = start(&model, |o| {
        o.settings["model"]["budget"] = json!({"max_tokens": 10});
    })
    .await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = explain_answer(&server, &uri, None).await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 1, "an error: {message}");
    let text = message["message"].as_str().unwrap_or("");
    assert!(text.contains("budget would be exceeded"), "{text}");
    assert!(model.requests().is_empty(), "fail closed: nothing sent");
    assert!(explanations(&server).is_empty());
}

#[tokio::test]
async fn a_selection_larger_than_a_run_may_show_is_refused_before_any_request() {
    let model = ModelServer::start().await.expect("model server");
    model.push("explainer", good_reply());
    let server = start(&model, |o| {
        o.settings["run"] = json!({"max_file_bytes": 20});
    })
    .await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = explain_answer(&server, &uri, None).await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 1, "an error: {message}");
    let text = message["message"].as_str().unwrap_or("");
    assert!(text.contains("`run.max_file_bytes`"), "{text}");
    assert!(model.requests().is_empty());
    assert!(explanations(&server).is_empty());
}

#[tokio::test]
async fn a_client_that_cannot_show_the_document_is_told_its_path() {
    let model = ModelServer::start().await.expect("model server");
    model.push("explainer", good_reply());
    let server = start(&model, |o| {
        o.behaviours = vec![(
            "window/showDocument",
            Behaviour::Refuse("no document support".into()),
        )];
    })
    .await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = explain_answer(&server, &uri, None).await;
    let path = server
        .wait_notification("window/showMessage", |n| {
            n["params"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("the explanation is in"))
        })
        .await;
    let text = path["params"]["message"].as_str().unwrap_or("");
    assert!(
        text.ends_with(&format!(".conductor/explanations/lib-L1-{id}.md")),
        "{text}"
    );
    // The summary comes after the path (`ended` would take whichever is latest).
    let summary =
        format!("Conductor run {id}: Returns a hard-coded answer with no state or configuration.");
    server
        .wait_notification("window/showMessage", |n| {
            n["params"]["message"] == summary.as_str()
        })
        .await;
    assert_eq!(explanations(&server).len(), 1);
}
