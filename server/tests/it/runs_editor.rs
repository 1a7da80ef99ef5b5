//! Runs in the editor (issue 12), end to end: the real server in process, the harness client
//! that applies workspace edits the way VS Code does (versions checked, `didChange` sent back),
//! and the fault-injecting model server on loopback. Each test starts a run through a command
//! or a code action and checks what the user sees: progress, the edit (versioned, one
//! annotation per hunk), the buffer after it, the closing message and the journal.

use std::time::Duration;

use conductor::testkit::{ModelServer, Reply};
use serde_json::{Value, json};

use super::support::replies::{block, decisions, good_coder_reply, plan_reply};
use super::support::{Behaviour, EditOutcome, Options, TestServer, WAIT};

/// The file the runs change.
pub(super) const LIB: &str =
    "pub fn answer() -> u32 {\n    41\n}\n\npub fn other() -> u32 {\n    7\n}\n";

pub(super) const FIXTURE: &str = r#"
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

/// The `conductor` settings section pointing the agents at `model`. The tester and the model
/// review have their own end-to-end tests (`review_loop.rs`); these are about the editor.
pub(super) fn settings(model: &ModelServer) -> Value {
    json!({
        "tester": {"enabled": false},
        "review": {"model": false},
        "model": {
            "base_url": model.openai_base_url(),
            "model": "test-model",
            "max_attempts": 2,
            "retry_base_delay_ms": 5,
            "retry_max_delay_ms": 20,
        }
    })
}

/// A server on [`FIXTURE`] with its model at `model`, configured and indexed.
pub(super) async fn start(model: &ModelServer, tweak: impl FnOnce(&mut Options)) -> TestServer {
    let mut options = Options {
        fixture: FIXTURE,
        settings: settings(model),
        ..Options::default()
    };
    tweak(&mut options);
    let server = TestServer::start(options).await;
    // The configuration is pulled before indexing starts: once indexing ends, it is in place.
    server
        .wait_notification("$/progress", |n| n["params"]["value"]["kind"] == "end")
        .await;
    server
}

pub(super) fn range(a: u32, b: u32) -> Value {
    json!({"start": {"line": a, "character": 0}, "end": {"line": b, "character": 0}})
}

pub(super) async fn command(
    server: &TestServer,
    name: &str,
    argument: Value,
) -> Result<Value, Value> {
    server
        .request(
            "workspace/executeCommand",
            json!({"command": name, "arguments": [argument]}),
        )
        .await
}

/// Starts a run of `goal` on the whole of `uri`; returns its id.
pub(super) async fn orchestrate(server: &TestServer, uri: &str, goal: &str) -> String {
    let started = command(
        server,
        "conductor.orchestrate",
        json!({"uri": uri, "goal": goal}),
    )
    .await
    .expect("the run starts");
    started["runId"].as_str().expect("a run id").to_string()
}

/// The `window/showMessage` that ends run `id`.
pub(super) async fn ended(server: &TestServer, id: &str) -> Value {
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

/// The progress notifications of `token`, as (kind, message).
fn progress(server: &TestServer, token: &str) -> Vec<(String, String)> {
    server
        .notifications("$/progress")
        .into_iter()
        .filter(|n| n["params"]["token"] == token)
        .map(|n| {
            let value = &n["params"]["value"];
            (
                value["kind"].as_str().unwrap_or("").to_string(),
                value["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

pub(super) fn journal_events(server: &TestServer, id: &str) -> Vec<Value> {
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

pub(super) fn event_names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_goal_on_a_selection_gives_progress_an_annotated_versioned_edit_and_a_journal() {
    let model = ModelServer::start().await.expect("model server");
    model.push("planner", plan_reply(&["src/lib.rs"]));
    model.push("coder", good_coder_reply());
    let server = start(&model, |_| {}).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let started = command(
        &server,
        "conductor.orchestrate",
        json!({"uri": uri, "range": range(0, 3), "goal": "return 42"}),
    )
    .await
    .expect("the command answers");
    let id = started["runId"].as_str().expect("a run id").to_string();
    let token = started["token"]
        .as_str()
        .expect("a progress token")
        .to_string();
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 3, "an info message: {message}");
    assert!(
        message["message"]
            .as_str()
            .unwrap_or("")
            .contains("applied"),
        "{message}"
    );
    assert_eq!(
        server.text(&uri),
        LIB.replace("    41", "    42"),
        "the buffer holds the change"
    );

    let edits = server.received_edits();
    assert_eq!(edits.len(), 1, "one workspace/applyEdit");
    let edit = &edits[0];
    assert!(
        matches!(edit.outcome, EditOutcome::Applied(_)),
        "{:?}",
        edit.outcome
    );
    let change = &edit.edit()["documentChanges"][0];
    assert_eq!(change["textDocument"]["uri"], uri.as_str());
    assert_eq!(
        change["textDocument"]["version"], 1,
        "the version the run anchored on"
    );
    let hunk = &change["edits"][0];
    assert_eq!(hunk["newText"], "    42\n");
    assert_eq!(hunk["range"]["start"]["line"], 1);
    let note = hunk["annotationId"].as_str().expect("an annotated hunk");
    let annotation = &edit.annotations()[note];
    assert_eq!(annotation["label"], "block 1: return 42", "{annotation}");
    let description = annotation["description"].as_str().unwrap_or("");
    for words in ["the goal asks for 42", "Review:", "Tests:"] {
        assert!(description.contains(words), "{words:?} in {description}");
    }
    assert!(edit.needs_confirmation(), "run.confirm defaults to true");

    let shown = progress(&server, &token);
    assert_eq!(
        shown.first().map(|(k, _)| k.as_str()),
        Some("begin"),
        "{shown:?}"
    );
    assert_eq!(
        shown.last().map(|(k, _)| k.as_str()),
        Some("end"),
        "{shown:?}"
    );
    for stage in ["planning", "coding 1/1", "reviewing", "presenting"] {
        assert!(
            shown.iter().any(|(_, m)| m.starts_with(stage)),
            "no progress line for {stage}: {shown:?}"
        );
    }
    assert!(
        shown.iter().any(|(_, m)| m.contains("tokens · $")),
        "progress shows tokens and cost: {shown:?}"
    );
    let events = journal_events(&server, &id);
    let names = event_names(&events);
    for name in [
        "run_started",
        "plan",
        "edit_block",
        "decision",
        "applied",
        "outcome",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
}

#[tokio::test]
async fn typing_elsewhere_while_the_run_works_moves_its_hunks_and_keeps_the_typing() {
    let model = ModelServer::start().await.expect("model server");
    model.push("planner", plan_reply(&["src/lib.rs"]));
    model.push(
        "coder",
        good_coder_reply().with_latency(Duration::from_millis(800)),
    );
    let server = start(&model, |_| {}).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let started = command(
        &server,
        "conductor.orchestrate",
        json!({"uri": uri, "range": range(0, 3), "goal": "return 42"}),
    )
    .await
    .expect("started");
    let id = started["runId"].as_str().expect("id").to_string();
    // Two lines typed at the top of the file while the coder thinks.
    server
        .change(
            &uri,
            vec![json!({"range": range(0, 0), "text": "// mine\n// also mine\n"})],
        )
        .await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 3, "{message}");
    assert_eq!(
        server.text(&uri),
        format!("// mine\n// also mine\n{}", LIB.replace("    41", "    42"))
    );
    let edits = server.received_edits();
    let change = &edits[0].edit()["documentChanges"][0];
    assert_eq!(
        change["textDocument"]["version"], 2,
        "anchored on the typed version"
    );
    assert_eq!(
        change["edits"][0]["range"]["start"]["line"], 3,
        "moved down two lines"
    );
}

#[tokio::test]
async fn typing_inside_a_hunk_refuses_that_hunk_and_applies_the_other() {
    let model = ModelServer::start().await.expect("model server");
    model.push("planner", plan_reply(&["src/lib.rs"]));
    model.push(
        "coder",
        Reply::text(format!(
            "{}\n{}\n{}",
            block("src/lib.rs", "    41\n", "    42\n"),
            block("src/lib.rs", "    7\n", "    8\n"),
            decisions(&[1, 2])
        ))
        .with_latency(Duration::from_millis(800)),
    );
    let server = start(&model, |_| {}).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = orchestrate(&server, &uri, "return 42 and 8").await;
    // The user rewrites line 6 (`    7`), where the run's second hunk goes.
    server
        .change(
            &uri,
            vec![json!({"range": {"start": {"line": 5, "character": 4}, "end": {"line": 5, "character": 5}}, "text": "70"})],
        )
        .await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 2, "a warning: {message}");
    let text = message["message"].as_str().unwrap_or("");
    assert!(text.contains("not applied over your typing"), "{text}");
    assert_eq!(
        server.text(&uri),
        LIB.replace("    41", "    42").replace("    7", "    70"),
        "the first hunk applied; the user's typing stayed"
    );
    let names = event_names(&journal_events(&server, &id));
    assert!(names.iter().any(|n| n == "hunk_refused"), "{names:?}");
}

#[tokio::test]
async fn a_client_that_refuses_the_edit_is_told_why_and_the_journal_records_it() {
    let model = ModelServer::start().await.expect("model server");
    model.push("planner", plan_reply(&["src/lib.rs"]));
    model.push("coder", good_coder_reply());
    let server = start(&model, |o| {
        o.behaviours = vec![(
            "workspace/applyEdit",
            Behaviour::Refuse("the user rejected the change".into()),
        )];
    })
    .await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = orchestrate(&server, &uri, "return 42").await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 2, "{message}");
    assert!(
        message["message"]
            .as_str()
            .unwrap_or("")
            .contains("the user rejected the change"),
        "{message}"
    );
    assert_eq!(server.text(&uri), LIB);
    let applied: Vec<Value> = journal_events(&server, &id)
        .into_iter()
        .filter(|e| e["event"] == "applied")
        .collect();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["result"], "the user rejected the change");
}

#[tokio::test]
async fn a_document_closed_mid_run_is_edited_on_disk_only_when_the_disk_still_matches() {
    for unsaved in [false, true] {
        let model = ModelServer::start().await.expect("model server");
        model.push("planner", plan_reply(&["src/lib.rs"]));
        model.push(
            "coder",
            good_coder_reply().with_latency(Duration::from_millis(600)),
        );
        let server = start(&model, |_| {}).await;
        // With `unsaved`, the buffer differs from the disk; closing it discards that text.
        let buffer = if unsaved {
            LIB.replace("pub fn other", "pub fn renamed")
        } else {
            LIB.to_string()
        };
        let uri = server.open_text("src/lib.rs", &buffer).await;
        let id = orchestrate(&server, &uri, "return 42").await;
        server.close(&uri).await;
        let message = ended(&server, &id).await;
        let disk = std::fs::read_to_string(server.root.join("src/lib.rs")).expect("lib.rs");
        if unsaved {
            assert_eq!(message["type"], 2, "{message}");
            assert!(
                message["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("changed on disk"),
                "{message}"
            );
            assert_eq!(disk, LIB, "nothing written over a file that differs");
            assert!(server.received_edits().is_empty());
        } else {
            assert_eq!(message["type"], 3, "{message}");
            assert_eq!(disk, LIB.replace("    41", "    42"));
            let edits = server.received_edits();
            let change = &edits[0].edit()["documentChanges"][0];
            assert!(change["textDocument"]["version"].is_null(), "{change}");
        }
    }
}

#[tokio::test]
async fn a_file_deleted_mid_run_gets_no_edit_and_a_clear_message() {
    let model = ModelServer::start().await.expect("model server");
    model.push("planner", plan_reply(&["src/lib.rs"]));
    model.push(
        "coder",
        good_coder_reply().with_latency(Duration::from_millis(600)),
    );
    let server = start(&model, |_| {}).await;
    let uri = server.uri("src/lib.rs");
    let id = orchestrate(&server, &uri, "return 42").await;
    // Once the coder has been shown the file (its reply is 600 ms away), it goes.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !model
        .requests()
        .iter()
        .any(|r| r.header("x-conductor-agent") == Some("coder"))
    {
        assert!(tokio::time::Instant::now() < deadline, "no coder request");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::remove_file(server.root.join("src/lib.rs")).expect("delete");
    let message = ended(&server, &id).await;
    assert!(
        message["message"]
            .as_str()
            .unwrap_or("")
            .contains("no longer exists"),
        "{message}"
    );
    assert!(server.received_edits().is_empty());
    assert!(!server.root.join("src/lib.rs").exists(), "not recreated");
}

#[tokio::test]
async fn a_cancel_from_the_progress_ui_or_the_command_applies_nothing() {
    for by_command in [false, true] {
        let model = ModelServer::start().await.expect("model server");
        model.push("planner", plan_reply(&["src/lib.rs"]));
        model.push(
            "coder",
            good_coder_reply().with_latency(Duration::from_secs(30)),
        );
        let server = start(&model, |_| {}).await;
        if !by_command {
            server.cancel_progress_on("conductor/run", "report");
        }
        let uri = server.open_text("src/lib.rs", LIB).await;
        let id = orchestrate(&server, &uri, "return 42").await;
        if by_command {
            // Once the run is coding (the coder's reply is 30 s away).
            server
                .wait_notification("$/progress", |n| {
                    n["params"]["value"]["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("coding"))
                })
                .await;
            let answer = command(&server, "conductor.cancel", json!({"runId": id}))
                .await
                .expect("cancel answers");
            assert_eq!(answer["cancelled"], true);
        }
        let message = ended(&server, &id).await;
        assert!(
            message["message"]
                .as_str()
                .unwrap_or("")
                .contains("cancelled"),
            "{message}"
        );
        assert_eq!(server.text(&uri), LIB);
        assert!(server.received_edits().is_empty());
        let events = journal_events(&server, &id);
        assert_eq!(
            events.last().map(|e| e["state"].clone()),
            Some(json!("cancelled"))
        );
    }
}

#[tokio::test]
async fn malformed_arguments_and_unknown_runs_are_clear_errors() {
    let model = ModelServer::start().await.expect("model server");
    let server = start(&model, |_| {}).await;
    let uri = server.uri("src/lib.rs");
    let outside = tempfile::NamedTempFile::new().expect("temp file");
    let outside_uri = super::support::file_uri(outside.path());
    let cases = [
        (
            "conductor.orchestrate",
            json!({"uri": uri, "goal": 7}),
            "bad argument",
        ),
        (
            "conductor.orchestrate",
            json!({"uri": uri, "goal": "  "}),
            "goal is empty",
        ),
        (
            "conductor.orchestrate",
            json!("not an object"),
            "bad argument",
        ),
        (
            "conductor.orchestrate",
            json!({"uri": outside_uri, "goal": "x"}),
            "outside the workspace",
        ),
        ("conductor.fix", json!({"uri": uri}), "diagnostic"),
        (
            "conductor.cancel",
            json!({"runId": "no-such-run"}),
            "no run no-such-run",
        ),
        ("conductor.cancel", json!({}), "runId"),
    ];
    for (name, argument, words) in cases {
        let err = command(&server, name, argument.clone())
            .await
            .expect_err("refused");
        assert_eq!(err["code"], -32602, "{name} {argument}: {err}");
        let message = err["message"].as_str().unwrap_or("");
        assert!(message.contains(words), "{name} {argument}: {message}");
    }
    // No run started, so no journal and no edit.
    assert!(!server.root.join(".conductor/runs").exists() || journal_count(&server) == 0);
    assert!(server.received_edits().is_empty());
    // And the session goes on.
    let runs = command(&server, "conductor.runs", json!({}))
        .await
        .expect("runs");
    assert_eq!(runs["runs"], json!([]));
}

fn journal_count(server: &TestServer) -> usize {
    std::fs::read_dir(server.root.join(".conductor/runs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_second_run_on_an_overlapping_range_is_refused_naming_the_first() {
    let model = ModelServer::start().await.expect("model server");
    model.push(
        "planner",
        plan_reply(&["src/lib.rs"]).with_latency(Duration::from_secs(30)),
    );
    let server = start(&model, |_| {}).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let first = command(
        &server,
        "conductor.orchestrate",
        json!({"uri": uri, "range": range(0, 3), "goal": "return 42"}),
    )
    .await
    .expect("the first starts");
    let first_id = first["runId"].as_str().expect("id").to_string();
    let err = command(
        &server,
        "conductor.orchestrate",
        json!({"uri": uri, "range": range(1, 2), "goal": "return 43"}),
    )
    .await
    .expect_err("the second is refused");
    assert!(
        err["message"].as_str().unwrap_or("").contains(&first_id),
        "{err}"
    );
    let runs = command(&server, "conductor.runs", json!({}))
        .await
        .expect("runs");
    let listed = runs["runs"].as_array().expect("a list");
    assert_eq!(listed.len(), 1, "{runs}");
    assert_eq!(listed[0]["id"], first_id.as_str());
    assert_eq!(listed[0]["active"], true);
    assert_eq!(listed[0]["goal"], "return 42");
    command(&server, "conductor.cancel", json!({"runId": first_id}))
        .await
        .expect("cancelled");
    ended(&server, &first_id).await;
}

#[tokio::test]
async fn a_goal_comment_offers_a_run_that_implements_it_and_removes_the_comment() {
    let model = ModelServer::start().await.expect("model server");
    model.push("planner", plan_reply(&["src/lib.rs"]));
    model.push("coder", good_coder_reply());
    let server = start(&model, |_| {}).await;
    let text = format!("// conductor: return 42\n{LIB}");
    let uri = server.open_text("src/lib.rs", &text).await;
    let actions = server
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": range(0, 0),
                   "context": {"diagnostics": []}}),
        )
        .await
        .expect("code actions");
    let titles: Vec<&str> = actions
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["title"].as_str())
        .collect();
    for title in [
        "Conductor: Implement goal from comment",
        "Conductor: Plan only",
        "Conductor: Write tests for this",
    ] {
        assert!(titles.contains(&title), "{title} in {titles:?}");
    }
    let implement = actions
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["title"] == "Conductor: Implement goal from comment")
        })
        .cloned()
        .expect("the action");
    assert_eq!(implement["command"]["arguments"][0]["goal"], "return 42");
    server
        .execute_code_action(&implement)
        .await
        .expect("the action runs");
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.text(&uri) != LIB.replace("    41", "    42") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the change with the comment removed: {:?}",
            server.text(&uri)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Where there is no goal comment, only "Write tests" is offered.
    let actions = server
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": range(2, 2),
                   "context": {"diagnostics": [], "only": ["refactor"]}}),
        )
        .await
        .expect("code actions");
    let titles: Vec<&str> = actions
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["title"].as_str())
        .collect();
    assert_eq!(titles, ["Conductor: Write tests for this"]);
}

#[tokio::test]
async fn fix_with_agents_on_a_security_diagnostic_sends_the_finding_to_the_coder() {
    // The source is read inside a helper; the command runs in its caller.
    const VULNERABLE: &str = "fn peer_command() -> String {\n    use std::io::Read;\n    let mut stream = std::net::TcpStream::connect(\"127.0.0.1:7000\").unwrap();\n    let mut line = String::new();\n    stream.read_to_string(&mut line).ok();\n    line\n}\npub fn run() {\n    let cmd = peer_command();\n    let _ = std::process::Command::new(cmd).status();\n}\n";
    let model = ModelServer::start().await.expect("model server");
    model.push(
        "coder",
        Reply::text(format!(
            "{}\n{}",
            block(
                "src/lib.rs",
                "    let _ = std::process::Command::new(cmd).status();\n",
                "    let _ = std::process::Command::new(\"echo\").arg(cmd).status();\n"
            ),
            decisions(&[1])
        )),
    );
    let server = start(&model, |_| {}).await;
    let uri = server.open_text("src/lib.rs", VULNERABLE).await;
    let published = server.wait_diagnostics(&uri, |d| !d.is_empty()).await;
    let diagnostic = published[0].clone();
    let actions = server
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": diagnostic["range"],
                   "context": {"diagnostics": [diagnostic]}}),
        )
        .await
        .expect("code actions");
    let fix = actions
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["title"] == "Conductor: Fix with agents")
        })
        .cloned()
        .unwrap_or_else(|| panic!("Fix with agents offered: {actions}"));
    assert_eq!(fix["kind"], "quickfix.conductor");
    server.execute_code_action(&fix).await.expect("runs");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !server
        .text(&uri)
        .contains("Command::new(\"echo\").arg(cmd)")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            server.text(&uri)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The coder was told the finding and its rule; no planner was asked.
    let requests = model.requests();
    let agents: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.header("x-conductor-agent"))
        .collect();
    assert_eq!(agents, ["coder"], "one coder request, no planner");
    let code = diagnostic["code"].as_str().expect("a rule id");
    let prompt = requests[0].json().to_string();
    assert!(prompt.contains(code), "the rule {code} reached the coder");
    assert!(prompt.contains("Fix the security finding"), "{prompt}");
}

#[tokio::test]
async fn plan_only_opens_the_plan_and_a_missing_model_is_explained() {
    let model = ModelServer::start().await.expect("model server");
    model.push("planner", plan_reply(&["src/lib.rs"]));
    let server = start(&model, |_| {}).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let started = command(
        &server,
        "conductor.plan",
        json!({"uri": uri, "goal": "return 42"}),
    )
    .await
    .expect("started");
    let id = started["runId"].as_str().expect("id").to_string();
    let shown = server.wait_server_request("window/showDocument").await;
    let plan_uri = shown["params"]["uri"].as_str().expect("a uri");
    assert!(
        plan_uri.ends_with(&format!(".conductor/runs/{id}/plan.md")),
        "{plan_uri}"
    );
    ended(&server, &id).await;
    assert!(server.received_edits().is_empty(), "plan only: no edit");
    assert_eq!(server.text(&uri), LIB);

    // Without a model, a run fails at once and says what to set.
    let server = TestServer::start(Options {
        fixture: FIXTURE,
        ..Options::default()
    })
    .await;
    server
        .wait_notification("$/progress", |n| n["params"]["value"]["kind"] == "end")
        .await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = orchestrate(&server, &uri, "return 42").await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 1, "an error: {message}");
    let text = message["message"].as_str().unwrap_or("");
    assert!(text.contains("no model is configured"), "{text}");
    assert!(text.contains("base_url"), "{text}");
}

#[tokio::test]
async fn preview_writes_the_diff_and_edits_nothing() {
    let model = ModelServer::start().await.expect("model server");
    model.push("planner", plan_reply(&["src/lib.rs"]));
    model.push("coder", good_coder_reply());
    let server = start(&model, |o| {
        o.settings["run"] = json!({"present": "preview", "confirm": false});
    })
    .await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = orchestrate(&server, &uri, "return 42").await;
    let message = ended(&server, &id).await;
    assert!(
        message["message"]
            .as_str()
            .unwrap_or("")
            .contains("preview only"),
        "{message}"
    );
    let diff = std::fs::read_to_string(
        server
            .root
            .join(format!(".conductor/runs/{id}/change.diff")),
    )
    .expect("the diff");
    assert!(diff.contains("-    41\n+    42\n"), "{diff}");
    assert!(server.received_edits().is_empty());
    assert_eq!(server.text(&uri), LIB);
    let shown = server.wait_server_request("window/showDocument").await;
    assert!(
        shown["params"]["uri"]
            .as_str()
            .is_some_and(|u| u.ends_with("change.diff")),
        "{shown}"
    );
}

#[tokio::test]
async fn a_plan_edited_in_the_editor_runs_as_left_and_a_broken_one_names_its_line() {
    let model = ModelServer::start().await.expect("model server");
    let plan = json!({
        "summary": "Change both constants.",
        "steps": [
            {"id": "s1", "title": "Return 42", "agent": "coder", "targets": ["src/lib.rs"], "depends_on": []},
            {"id": "s2", "title": "Return 8 from other", "agent": "coder", "targets": ["src/lib.rs"], "depends_on": []}
        ],
        "risks": [], "tradeoffs": [],
    });
    model.push("planner", Reply::text(format!("```json\n{plan}\n```\n")));
    let server = start(&model, |_| {}).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let started = command(
        &server,
        "conductor.plan",
        json!({"uri": uri, "goal": "change both"}),
    )
    .await
    .expect("started");
    let id = started["runId"].as_str().expect("id").to_string();
    ended(&server, &id).await;
    let plan_path = format!(".conductor/runs/{id}/plan.md");
    let written = std::fs::read_to_string(server.root.join(&plan_path)).expect("plan.md");
    assert!(written.contains("**s2**"), "{written}");

    // The user opens it, unticks s2 and rewords s1, without saving.
    let edited = written
        .replace("- [x] **s2**", "- [ ] **s2**")
        .replace("Return 42", "Return forty-two");
    let plan_uri = server.open_text(&plan_path, &edited).await;
    let lenses = server
        .request(
            "textDocument/codeLens",
            json!({"textDocument": {"uri": plan_uri}}),
        )
        .await
        .expect("code lenses");
    let lens = &lenses[0];
    assert_eq!(lens["command"]["title"], "▶ Run this plan", "{lenses}");
    assert_eq!(lens["command"]["arguments"][0]["runId"], id.as_str());
    // Ordinary files get no lens.
    let none = server
        .request(
            "textDocument/codeLens",
            json!({"textDocument": {"uri": uri}}),
        )
        .await
        .expect("code lenses");
    assert!(none.is_null(), "{none}");

    model.push("coder", good_coder_reply());
    let followed = command(
        &server,
        lens["command"]["command"].as_str().expect("a command"),
        lens["command"]["arguments"][0].clone(),
    )
    .await
    .expect("the plan runs");
    let second = followed["runId"].as_str().expect("id").to_string();
    assert_ne!(second, id);
    let message = ended(&server, &second).await;
    assert_eq!(message["type"], 3, "{message}");
    assert_eq!(server.text(&uri), LIB.replace("    41", "    42"));
    // One coder request, for the reworded step; no planner request for the second run.
    let agents: Vec<String> = model
        .requests()
        .iter()
        .filter_map(|r| r.header("x-conductor-agent").map(str::to_string))
        .collect();
    assert_eq!(agents, ["planner", "coder"], "{agents:?}");
    assert!(model.requests()[1].body.contains("Return forty-two"));
    let events = journal_events(&server, &second);
    let edits = events
        .iter()
        .find(|e| e["event"] == "plan_edited")
        .expect("the human's changes are journalled");
    let changes = edits["changes"].to_string();
    assert!(changes.contains("s2"), "{changes}");
    assert!(changes.contains("forty-two"), "{changes}");

    // A broken document: an error naming the line, a message, and no run.
    let broken = edited.replace("**s1**", "s1");
    server
        .change(&plan_uri, vec![json!({"text": broken})])
        .await;
    let err = command(&server, "conductor.runPlan", json!({"runId": id}))
        .await
        .expect_err("refused");
    let text = err["message"].as_str().unwrap_or("");
    assert!(text.contains("line "), "{text}");
    server
        .wait_notification("window/showMessage", |n| {
            n["params"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("the plan was not run"))
        })
        .await;
    assert_eq!(
        model.requests().len(),
        2,
        "no model request for the broken plan"
    );
}

#[tokio::test]
async fn a_client_without_workspace_edits_or_versions_is_served_as_far_as_it_can_be() {
    // No `workspace/applyEdit`: the run ends with the change unapplied, and says why.
    let model = ModelServer::start().await.expect("model server");
    model.push("planner", plan_reply(&["src/lib.rs"]));
    model.push("coder", good_coder_reply());
    let server = start(&model, |o| o.apply_edit = false).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = orchestrate(&server, &uri, "return 42").await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 2, "{message}");
    assert!(
        message["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not accept workspace edits"),
        "{message}"
    );
    assert!(server.server_requests("workspace/applyEdit").is_empty());
    assert_eq!(server.text(&uri), LIB);

    // No `documentChanges`: plain `changes`, still only over the text the hunks were moved onto.
    let model = ModelServer::start().await.expect("model server");
    model.push("planner", plan_reply(&["src/lib.rs"]));
    model.push("coder", good_coder_reply());
    let server = start(&model, |o| o.document_changes = false).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = orchestrate(&server, &uri, "return 42").await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 3, "{message}");
    let edits = server.received_edits();
    assert!(edits[0].edit()["documentChanges"].is_null());
    assert!(edits[0].edit()["changes"][uri.as_str()].is_array());
    assert_eq!(server.text(&uri), LIB.replace("    41", "    42"));
}
