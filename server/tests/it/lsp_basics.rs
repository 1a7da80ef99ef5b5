//! The protocol basics: initialization, encodings, configuration, bad input, shutdown.

use serde_json::{Value, json};

use crate::support::{Options, TestServer};

#[tokio::test]
async fn utf8_is_chosen_when_offered_and_utf16_otherwise() {
    for (offered, expected) in [
        (Some(vec!["utf-16", "utf-8"]), "utf-8"),
        (Some(vec!["utf-32", "utf-16"]), "utf-16"),
        (Some(vec!["utf-32"]), "utf-32"),
        (None, "utf-16"),
    ] {
        let server = TestServer::start(Options {
            encodings: offered.clone(),
            ..Options::default()
        })
        .await;
        assert_eq!(server.encoding, expected, "offered {offered:?}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn capabilities_declare_incremental_sync() {
    let server = TestServer::start(Options::default()).await;
    let caps = &server.capabilities["capabilities"];
    assert_eq!(caps["textDocumentSync"]["change"], 2, "{caps:#}");
    assert_eq!(caps["textDocumentSync"]["openClose"], true);
    assert_eq!(server.capabilities["serverInfo"]["name"], "conductor");
    server.shutdown().await;
}

#[tokio::test]
async fn incremental_changes_with_astral_and_cjk_text_follow_the_client() {
    let server = TestServer::start(Options::default()).await;
    let uri = server
        .open_text("src/lib.rs", "fn a() { \"😀中\" }\r\n")
        .await;
    // In UTF-16, 😀 is two units (columns 10 and 11): replace 中 (column 12..13) with "文字".
    server
        .change(
            &uri,
            vec![json!({"range": {"start": {"line": 0, "character": 12}, "end": {"line": 0, "character": 13}}, "text": "文字"})],
        )
        .await;
    // Append on the line after the CRLF, far past the end of the line: clamped.
    server
        .change(
            &uri,
            vec![json!({"range": {"start": {"line": 1, "character": 40}, "end": {"line": 1, "character": 40}}, "text": "fn b() {}"})],
        )
        .await;
    let doc = server.debug_document(&uri).await.expect("open document");
    assert_eq!(doc["text"], "fn a() { \"😀文字\" }\r\nfn b() {}");
    assert_eq!(doc["version"], 3);
    let fresh = conductor::syntax::Language::by_name("rust")
        .and_then(|l| l.parse(doc["text"].as_str().expect("text")))
        .expect("parse");
    assert_eq!(doc["tree"], conductor::syntax::dump_tree(&fresh));
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_input_is_answered_and_the_server_keeps_serving() {
    let server = TestServer::start(Options::default()).await;
    server.send_raw(b"this is not a header\r\n").await;
    server.send_raw(b"Content-Length: 7\r\n\r\n{oops!}").await;
    server.send_raw(b"Content-Length: 3\r\n\r\n[1]").await;
    server.send_raw(b"Content-Length: nine\r\n\r\n").await;
    let wrong_version = br#"{"jsonrpc":"1.0","id":"bad-5","method":"conductor/x"}"#;
    server
        .send_raw(format!("Content-Length: {}\r\n\r\n", wrong_version.len()).as_bytes())
        .await;
    server.send_raw(wrong_version).await;
    // Each bad frame is answered, in order, with the id it could be attributed to (none but
    // the last): the junk when the next header shows where it ends, then a body that is not
    // JSON, a batch, a bad Content-Length, and a message that is not JSON-RPC 2.0.
    let answers = server.wait_stray_responses(5).await;
    let expected: [(Value, i64, &str); 5] = [
        (
            Value::Null,
            -32700,
            "skipped 22 bytes that were not a message header",
        ),
        (Value::Null, -32700, "the message is not valid JSON"),
        (Value::Null, -32600, "a message must be a JSON object"),
        (
            Value::Null,
            -32700,
            "bad message header: Content-Length `nine`",
        ),
        (json!("bad-5"), -32600, "`jsonrpc` must be \"2.0\""),
    ];
    assert_eq!(answers.len(), expected.len(), "{answers:#?}");
    for (answer, (id, code, message)) in answers.iter().zip(expected) {
        assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
        assert_eq!(answer["id"], id, "{answer}");
        assert!(answer.get("result").is_none(), "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message)),
            "expected `{message}…`: {answer}"
        );
    }
    let unknown = server
        .request("conductor/noSuchMethod", json!({}))
        .await
        .expect_err("unknown method");
    assert_eq!(unknown["code"], -32601);
    let invalid = server
        .request("textDocument/hover", json!({"textDocument": 5}))
        .await
        .expect_err("invalid params");
    assert!(
        invalid["code"] == -32602 || invalid["code"] == -32601,
        "{invalid}"
    );
    let never_opened = server
        .debug_document("file:///nowhere/never-opened.rs")
        .await
        .expect_err("not open");
    assert_eq!(never_opened["code"], -32602);
    assert!(
        never_opened["message"]
            .as_str()
            .unwrap_or("")
            .contains("not open")
    );
    // Changes to a document that was never opened are ignored without harm.
    server
        .change(
            "file:///nowhere/never-opened.rs",
            vec![json!({"text": "x"})],
        )
        .await;
    // And the server still works.
    let uri = server.open_text("a.rs", "fn main() {}").await;
    let doc = server
        .debug_document(&uri)
        .await
        .expect("works after bad input");
    assert_eq!(doc["text"], "fn main() {}");
    // Good input got no stray answers.
    assert_eq!(server.stray_responses().len(), 5);
    server.shutdown().await;
}

#[tokio::test]
async fn out_of_order_versions_still_apply_the_edits() {
    let server = TestServer::start(Options::default()).await;
    let uri = server.open_text("a.rs", "fn a() {}").await;
    server
        .notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": 0}, "contentChanges": [{"text": "fn b() {}"}]}),
        )
        .await;
    let doc = server.debug_document(&uri).await.expect("open");
    assert_eq!(doc["text"], "fn b() {}");
    assert_eq!(doc["version"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn configuration_problems_are_reported_by_key_and_defaults_kept() {
    let server = TestServer::start(Options {
        fixture: "//- /conductor.toml\n[log]\nlevel = \"debug\"\nverbosity = 3\n",
        init_options: Some(json!({"log": {"level": 7}})),
        settings: json!({"nonsense": true}),
        ..Options::default()
    })
    .await;
    let message = server
        .wait_notification("window/showMessage", |m| {
            m["params"]["message"]
                .as_str()
                .is_some_and(|t| t.contains("nonsense"))
        })
        .await;
    let text = message["params"]["message"].as_str().expect("text");
    assert!(
        text.contains("workspace/configuration: `nonsense`"),
        "{text}"
    );
    let all: Vec<String> = server
        .notifications("window/showMessage")
        .iter()
        .map(|m| m["params"]["message"].as_str().unwrap_or("").to_string())
        .collect();
    let joined = all.join("\n");
    assert!(
        joined.contains("conductor.toml: `log.verbosity`"),
        "{joined}"
    );
    assert!(
        joined.contains("initializationOptions: `log.level`"),
        "{joined}"
    );
    // The server pulled the section it owns.
    let pulls = server.server_requests("workspace/configuration");
    assert_eq!(pulls[0]["params"]["items"][0]["section"], "conductor");
    // A configuration change is pulled again and re-validated.
    server.set_settings(json!({"log": {"lvl": 1}}));
    server
        .notify(
            "workspace/didChangeConfiguration",
            json!({"settings": null}),
        )
        .await;
    server
        .wait_notification("window/showMessage", |m| {
            m["params"]["message"]
                .as_str()
                .is_some_and(|t| t.contains("`log.lvl`"))
        })
        .await;
    assert!(server.server_requests("workspace/configuration").len() >= 2);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_then_exit_ends_cleanly_and_exit_alone_does_not() {
    let server = TestServer::start(Options::default()).await;
    let end = server.shutdown().await;
    assert_eq!(end.exit_code(), 0);

    let mut server = TestServer::start(Options::default()).await;
    server.notify("exit", Value::Null).await;
    let end = server.finish().await;
    assert!(end.exited && !end.shutdown_requested);
    assert_eq!(end.exit_code(), 1);
}

#[tokio::test]
async fn requests_after_shutdown_are_refused() {
    let server = TestServer::start(Options::default()).await;
    server
        .request("shutdown", Value::Null)
        .await
        .expect("shutdown");
    let refused = server
        .debug_document("file:///x.rs")
        .await
        .expect_err("refused after shutdown");
    assert_eq!(refused["code"], -32600);
    server.notify("exit", Value::Null).await;
}
