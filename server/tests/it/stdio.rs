//! The real binary over real stdio: initialize → shutdown → exit, malformed input survived,
//! and the process gone promptly with the exit code LSP asks for.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn frame(message: &Value) -> Vec<u8> {
    let body = message.to_string();
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn responses(stdout: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(stdout);
    text.split("Content-Length: ")
        .filter_map(|part| part.split_once("\r\n\r\n"))
        .filter_map(|(len, rest)| {
            let len: usize = len.trim().parse().ok()?;
            serde_json::from_str(rest.get(..len)?).ok()
        })
        .collect()
}

/// Runs the binary with `args`, writes `input`, waits for it to exit on its own.
fn run(args: &[&str], input: &[u8], then_exit: Option<&[u8]>) -> (i32, Vec<Value>, Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .args(args)
        .env("CONDUCTOR_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn conductor");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write");
    stdin.flush().expect("flush");
    // Give the server time to answer before the last message, as a real client would.
    std::thread::sleep(Duration::from_millis(300));
    let sent_exit = Instant::now();
    if let Some(last) = then_exit {
        stdin.write_all(last).expect("write exit");
        stdin.flush().expect("flush");
    }
    // The client keeps stdin open after exit, as editors do: the server must leave anyway.
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit within 5 s of `exit`");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = sent_exit.elapsed();
    drop(stdin);
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("read");
    (status.code().unwrap_or(-1), responses(&out), elapsed)
}

fn initialize() -> Vec<u8> {
    frame(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"processId": null, "capabilities": {}, "rootUri": null}}))
}

#[test]
fn initialize_shutdown_exit_over_stdio() {
    let mut input = initialize();
    input.extend(frame(
        &json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    ));
    // Malformed traffic in the middle must not end the session.
    input.extend(b"Content-Length: 4\r\n\r\n{{{{");
    input.extend(b"junk\r\n");
    input.extend(frame(
        &json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}),
    ));
    let exit = frame(&json!({"jsonrpc": "2.0", "method": "exit"}));
    for args in [&["lsp"][..], &["--stdio"][..], &["lsp", "--stdio"][..]] {
        let (code, responses, elapsed) = run(args, &input, Some(&exit));
        assert_eq!(code, 0, "{args:?}: {responses:#?}");
        let init = responses
            .iter()
            .find(|r| r["id"] == 1)
            .expect("initialize answered");
        assert_eq!(init["result"]["serverInfo"]["name"], "conductor");
        assert!(
            responses.iter().any(|r| r["error"]["code"] == -32700),
            "{responses:#?}"
        );
        let shutdown = responses
            .iter()
            .find(|r| r["id"] == 2)
            .expect("shutdown answered");
        assert_eq!(shutdown["result"], Value::Null);
        assert!(elapsed < Duration::from_secs(1), "exit took {elapsed:?}");
    }
}

#[test]
fn exit_without_shutdown_exits_with_code_1() {
    let exit = frame(&json!({"jsonrpc": "2.0", "method": "exit"}));
    let (code, _, _) = run(&["lsp"], &initialize(), Some(&exit));
    assert_eq!(code, 1);
}

#[test]
fn help_and_version_work() {
    let out = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .arg("--version")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("lsp"));
    let out = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .arg("--no-such-flag")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_duplicated_key_and_a_client_that_does_not_wait_for_initialize_are_survived() {
    let mut input = frame(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"capabilities": {}}}));
    // Sent at once, without waiting for the answer, and with `id` twice: the framework used to
    // decode the raw bytes itself and end the process on the duplicate.
    let duplicated = br#"{"jsonrpc":"2.0","id":7,"id":8,"method":"shutdown"}"#;
    input.extend(format!("Content-Length: {}\r\n\r\n", duplicated.len()).into_bytes());
    input.extend(duplicated);
    input.extend(frame(
        &json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    ));
    input.extend(frame(
        &json!({"jsonrpc": "2.0", "id": 9, "method": "shutdown"}),
    ));
    let (code, responses, _) = run(
        &["lsp"],
        &input,
        Some(&frame(&json!({"jsonrpc": "2.0", "method": "exit"}))),
    );
    let by_id = |id: i64| responses.iter().find(|r| r["id"] == id).cloned();
    let initialize = by_id(1).expect("initialize answered");
    assert!(
        initialize["result"]["capabilities"].is_object(),
        "{initialize}"
    );
    // The message with `id` twice is refused (decoders disagree on which one wins), answered
    // with the id the decoder kept, and the session goes on to a real shutdown.
    let refused = by_id(8).expect("the duplicate is answered");
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`id` appears more than once")),
        "{refused}"
    );
    let shutdown = by_id(9).expect("shutdown answered");
    assert_eq!(shutdown["result"], Value::Null, "{shutdown}");
    assert_eq!(code, 0, "shutdown then exit: {responses:?}");
}
