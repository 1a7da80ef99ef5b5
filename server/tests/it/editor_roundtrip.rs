//! Edits the server hands to the editor, applied by the editor-like test client exactly as an
//! editor applies them (its own copy of the document, then `didChange` with the next version),
//! and checked against the server's own view of the document afterwards.

use serde_json::json;

use crate::support::{Options, TestServer};

/// A TLS client that disables certificate checks, with non-ASCII text before and after the
/// finding on its line and above it, so that a position conversion error in the server's edit or
/// in the client's application shows as a text mismatch.
const TLS: &str = "// Prüfung der Zertifikate: 証明書 😀\nfn client() -> reqwest::Client {\n    /* 証明書 😀 */ let c = reqwest::Client::builder().danger_accept_invalid_certs(true); /* ✓ */\n    c.build().unwrap()\n}\n";

async fn quick_fix_round_trip(encoding: &'static str) {
    let (server, uri, fix) = quick_fix(Options {
        encodings: Some(vec![encoding]),
        ..Options::default()
    })
    .await;
    assert_eq!(server.encoding, encoding);
    assert!(fix["edit"].is_object(), "the fix carries its edit: {fix:#}");

    // The user picks the fix: the editor applies its WorkspaceEdit locally (checking the
    // version it names) and tells the server with a didChange.
    let applied = server
        .execute_code_action(&fix)
        .await
        .unwrap_or_else(|reason| panic!("the editor refused the fix: {reason}"));
    assert_eq!(applied.changed, vec![(uri.clone(), 2)]);
    let client = server.document(&uri).expect("still open");
    assert_eq!(
        client.text,
        "// Prüfung der Zertifikate: 証明書 😀\nfn client() -> reqwest::Client {\n    /* 証明書 😀 */ let c = reqwest::Client::builder(); /* ✓ */\n    c.build().unwrap()\n}\n"
    );

    // The server's text is the client's, at the client's version, and it parses as the same
    // tree a fresh parse of that text gives.
    let doc = server
        .debug_document(&uri)
        .await
        .expect("open on the server");
    assert_eq!(doc["text"], client.text.as_str());
    assert_eq!(doc["version"], client.version);
    let fresh = conductor::syntax::Language::by_name("rust")
        .and_then(|l| l.parse(&client.text))
        .expect("parse");
    assert_eq!(doc["tree"], conductor::syntax::dump_tree(&fresh));

    // The re-scan of that version finds nothing.
    let after = server
        .wait_notification("textDocument/publishDiagnostics", |n| {
            n["params"]["uri"] == uri.as_str() && n["params"]["version"] == client.version
        })
        .await;
    assert_eq!(after["params"]["diagnostics"], json!([]), "{after:#}");

    // The same fix, offered for version 1, is now stale: the editor refuses it and the
    // document stays as it is.
    let reason = server
        .execute_code_action(&fix)
        .await
        .expect_err("a fix for version 1 of a document at version 2");
    assert!(reason.contains("version"), "{reason}");
    assert_eq!(server.text(&uri), client.text);
    server.shutdown().await;
}

#[tokio::test]
async fn the_security_quick_fix_applied_by_the_editor_matches_the_server_in_utf16() {
    quick_fix_round_trip("utf-16").await;
}

#[tokio::test]
async fn the_security_quick_fix_applied_by_the_editor_matches_the_server_in_utf8() {
    quick_fix_round_trip("utf-8").await;
}

#[tokio::test]
async fn the_security_quick_fix_applied_by_the_editor_matches_the_server_in_utf32() {
    quick_fix_round_trip("utf-32").await;
}

/// A server started with `options` (and a short debounce), the TLS file open, and the quick
/// fix offered for its one finding (asked for with `only: ["quickfix"]`).
async fn quick_fix(options: Options) -> (TestServer, String, serde_json::Value) {
    let server = TestServer::start(Options {
        settings: json!({"security": {"debounce_ms": 20}}),
        ..options
    })
    .await;
    let uri = server.open_text("src/lib.rs", TLS).await;
    let diagnostics = server.wait_diagnostics(&uri, |d| !d.is_empty()).await;
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    assert_eq!(diagnostics[0]["code"], "rust/tls-verification-disabled");
    let actions = server
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": diagnostics[0]["range"],
                "context": {"diagnostics": diagnostics, "only": ["quickfix"]}}),
        )
        .await
        .expect("code actions");
    let fix = actions
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["title"] == "Remove the call that disables verification")
        })
        .cloned()
        .unwrap_or_else(|| panic!("no quick fix among {actions:#}"));
    (server, uri, fix)
}

/// The quick fix for a client that does (or does not) take versioned edits.
async fn quick_fix_for(document_changes: bool) -> (TestServer, String, serde_json::Value) {
    quick_fix(Options {
        document_changes,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn a_client_without_document_changes_gets_plain_changes_and_they_apply() {
    let (server, uri, fix) = quick_fix_for(false).await;
    assert!(
        fix["edit"]["documentChanges"].is_null(),
        "versioned edits sent to a client that did not ask for them: {fix:#}"
    );
    assert!(fix["edit"]["changes"][&uri].is_array(), "{fix:#}");
    server
        .execute_code_action(&fix)
        .await
        .unwrap_or_else(|reason| panic!("the editor refused the fix: {reason}"));
    let doc = server.debug_document(&uri).await.expect("debug document");
    assert_eq!(doc["text"], server.document(&uri).expect("open").text);
    assert!(
        !doc["text"]
            .as_str()
            .unwrap_or_default()
            .contains("danger_accept_invalid_certs")
    );
    server.shutdown().await;

    // A client that takes them gets a versioned edit.
    let (server, _, fix) = quick_fix_for(true).await;
    assert_eq!(
        fix["edit"]["documentChanges"][0]["textDocument"]["version"],
        1
    );
    assert!(fix["edit"]["changes"].is_null(), "{fix:#}");
    server.shutdown().await;
}

#[tokio::test]
async fn code_actions_of_every_provider_respect_the_only_filter() {
    let (server, uri, _) = quick_fix_for(true).await;
    let titles = |actions: serde_json::Value| -> Vec<String> {
        actions
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a["title"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let range = json!({"start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 200}});
    let ask = |only: serde_json::Value| {
        server.request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": range,
                "context": {"diagnostics": [], "only": only}}),
        )
    };
    let quick = titles(ask(json!(["quickfix"])).await.expect("answer"));
    assert!(
        quick.iter().any(|t| t.starts_with("Remove the call")),
        "{quick:?}"
    );
    assert!(
        !quick.iter().any(|t| t == "Conductor: Show context"),
        "{quick:?}"
    );
    // Security's quick fixes used to ignore `only`.
    let other = titles(ask(json!(["conductor.showContext"])).await.expect("answer"));
    assert_eq!(other, vec!["Conductor: Show context".to_string()]);
    server.shutdown().await;
}
