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
    let server = TestServer::start(Options {
        encodings: Some(vec![encoding]),
        settings: json!({"security": {"debounce_ms": 20}}),
        ..Options::default()
    })
    .await;
    assert_eq!(server.encoding, encoding);
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
