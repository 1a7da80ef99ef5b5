//! Server-to-client requests a client leaves unanswered: no start-up step and no handler may
//! wait on one (issue 9, item 3; review C3). A real client can be slow, buggy or busy showing a
//! preview; the server must keep serving all the same.
//!
//! These fail until the request policy of issue 9 lands: today `initialized` awaits
//! `client/registerCapability` before it pulls the configuration and starts indexing, indexing
//! awaits `window/workDoneProgress/create`, and `conductor.showContext` awaits
//! `window/showDocument` inside the command handler, none with a time limit.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Behaviour, Options, TestServer, WAIT};

const WORKSPACE: &str = r#"
//- /Cargo.toml
[package]
name = "shop"
edition = "2021"
//- /src/lib.rs
/// An amount of money in cents.
pub struct Price {
    pub cents: u64,
}

pub fn total(items: &[Price]) -> u64 {
    items.iter().map(|p| p.cents).sum()
}
"#;

/// How long "promptly" is for a command whose work takes milliseconds: long enough for a
/// loaded machine, far shorter than "never".
const PROMPTLY: Duration = Duration::from_secs(3);

async fn server_that_never_answers(method: &'static str) -> TestServer {
    TestServer::start(Options {
        fixture: WORKSPACE,
        behaviours: vec![(method, Behaviour::Never)],
        ..Options::default()
    })
    .await
}

fn show_context_params(server: &TestServer) -> Value {
    json!({"command": "conductor.showContext", "arguments": [{
        "uri": server.uri("src/lib.rs"),
        "range": {"start": {"line": 6, "character": 4}, "end": {"line": 6, "character": 4}},
    }]})
}

/// Asks for "Show context" until the index is there; panics if it is not within `WAIT`.
async fn show_context_once_indexed(server: &TestServer) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = Value::Null;
    while tokio::time::Instant::now() < deadline {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let answer = server
            .request_within(
                "workspace/executeCommand",
                show_context_params(server),
                left,
            )
            .await;
        match answer {
            Some(Ok(result)) => return result,
            Some(Err(error))
                if error["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("still being indexed")) =>
            {
                last = error;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some(Err(error)) => panic!("conductor.showContext failed: {error}"),
            None => break,
        }
    }
    panic!("the workspace was not indexed within {WAIT:?}; the last answer: {last}")
}

#[tokio::test]

async fn an_unanswered_register_capability_does_not_stop_configuration_or_indexing() {
    let server = server_that_never_answers("client/registerCapability").await;
    server
        .wait_server_request("client/registerCapability")
        .await;
    let result = show_context_once_indexed(&server).await;
    assert!(
        result["items"].as_u64().is_some_and(|n| n > 0),
        "{result:#}"
    );
    assert!(
        !server.server_requests("workspace/configuration").is_empty(),
        "the configuration was never pulled"
    );
    server.shutdown().await;
}

#[tokio::test]

async fn an_unanswered_show_document_does_not_hold_the_command() {
    let server = server_that_never_answers("window/showDocument").await;
    server
        .wait_notification("$/progress", |n| n["params"]["value"]["kind"] == "end")
        .await;
    let answer = server
        .request_within(
            "workspace/executeCommand",
            show_context_params(&server),
            PROMPTLY,
        )
        .await
        .unwrap_or_else(|| panic!("conductor.showContext did not answer within {PROMPTLY:?}"));
    let result = answer.expect("the command succeeds");
    let path = result["path"].as_str().expect("a path");
    assert!(std::path::Path::new(path).exists(), "{result:#}");
    // It did ask the client to show the bundle; the answer just never came.
    assert_eq!(server.server_requests("window/showDocument").len(), 1);
    server.shutdown().await;
}

#[tokio::test]

async fn an_unanswered_progress_create_does_not_stop_indexing() {
    let server = server_that_never_answers("window/workDoneProgress/create").await;
    server
        .wait_server_request("window/workDoneProgress/create")
        .await;
    let result = show_context_once_indexed(&server).await;
    assert!(
        result["items"].as_u64().is_some_and(|n| n > 0),
        "{result:#}"
    );
    server.shutdown().await;
}
