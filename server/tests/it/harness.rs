//! Tests of the test client itself. Every end-to-end test trusts it to behave like an editor:
//! a client that applied an edit wrongly, or answered `applied: true` to a stale one, would make
//! those tests pass against behaviour no real editor has. So its edit logic (`support::editor`)
//! and its script (`support::ScriptedClient`) are checked here directly, with expected texts
//! and positions worked out by hand.

use serde_json::{Value, json};

use crate::support::editor::{ChangeStyle, Editor, apply_simultaneous, offset, position};
use crate::support::{Behaviour, EditOutcome, MessageChoice, REQUEST_FAILED, ScriptedClient};

fn range(l1: u32, c1: u32, l2: u32, c2: u32) -> Value {
    json!({"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}})
}

fn edit(range: Value, text: &str) -> Value {
    json!({"range": range, "newText": text})
}

fn text_document_edit(uri: &str, version: Option<i32>, edits: Vec<Value>) -> Value {
    json!({"textDocument": {"uri": uri, "version": version}, "edits": edits})
}

fn apply_edit_request(id: i64, edit: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "workspace/applyEdit",
        "params": {"label": "test", "edit": edit}})
}

/// A workspace folder on disk and its `file:` URIs.
struct Disk {
    dir: tempfile::TempDir,
}

impl Disk {
    fn new() -> Disk {
        Disk {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn uri(&self, name: &str) -> String {
        crate::support::file_uri(&self.dir.path().join(name))
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

#[test]
fn a_stale_version_refuses_the_whole_edit_and_changes_nothing() {
    let disk = Disk::new();
    let (a, b, c) = (disk.uri("a.rs"), disk.uri("b.rs"), disk.uri("new.rs"));
    std::fs::write(disk.path("closed.rs"), "fn closed() {}\n").expect("write");
    let mut editor = Editor::new("utf-16");
    editor.open(&a, "fn a() {}\n");
    editor.open(&b, "fn b() {}\n");
    // The user typed in b: it is at version 2 now.
    editor
        .type_changes(&b, &[json!({"range": range(0, 3, 0, 4), "text": "bb"})])
        .expect("b is open");
    let stale = json!({"documentChanges": [
        {"kind": "create", "uri": c},
        text_document_edit(&a, Some(1), vec![edit(range(0, 3, 0, 4), "x")]),
        text_document_edit(&disk.uri("closed.rs"), None, vec![edit(range(0, 0, 0, 0), "// ")]),
        text_document_edit(&b, Some(1), vec![edit(range(0, 3, 0, 5), "y")]),
    ]});
    let reason = editor
        .apply_workspace_edit(&stale)
        .expect_err("b's version is stale");
    assert!(
        reason.contains("version 1") && reason.contains("version 2"),
        "{reason}"
    );
    // Nothing of it applied: not a's edit (which was current), not the file on disk, not the
    // creation, and no version moved.
    let doc_a = editor.document(&a).expect("a");
    assert_eq!((doc_a.text.as_str(), doc_a.version), ("fn a() {}\n", 1));
    let doc_b = editor.document(&b).expect("b");
    assert_eq!((doc_b.text.as_str(), doc_b.version), ("fn bb() {}\n", 2));
    assert_eq!(
        std::fs::read_to_string(disk.path("closed.rs")).expect("read"),
        "fn closed() {}\n"
    );
    assert!(!disk.path("new.rs").exists());
    assert!(editor.document(&c).is_none());

    // A version for a document the client does not have open is stale too.
    let unopened = json!({"documentChanges": [
        text_document_edit(&disk.uri("closed.rs"), Some(3), vec![edit(range(0, 0, 0, 0), "x")]),
    ]});
    let reason = editor
        .apply_workspace_edit(&unopened)
        .expect_err("not open");
    assert!(reason.contains("not open"), "{reason}");

    // With the current version, the same edit applies everywhere at once.
    let current = json!({"documentChanges": [
        {"kind": "create", "uri": c},
        text_document_edit(&c, None, vec![edit(range(0, 0, 0, 0), "fn new() {}\n")]),
        text_document_edit(&a, Some(1), vec![edit(range(0, 3, 0, 4), "x")]),
        text_document_edit(&disk.uri("closed.rs"), None, vec![edit(range(0, 0, 0, 0), "// ")]),
        text_document_edit(&b, Some(2), vec![edit(range(0, 3, 0, 5), "y")]),
    ]});
    let applied = editor.apply_workspace_edit(&current).expect("applies");
    assert_eq!(editor.document(&a).expect("a").text, "fn x() {}\n");
    assert_eq!(editor.document(&b).expect("b").text, "fn y() {}\n");
    assert_eq!(
        std::fs::read_to_string(disk.path("closed.rs")).expect("read"),
        "// fn closed() {}\n"
    );
    // The created file is on disk, empty, and open as a dirty buffer holding its text.
    assert_eq!(
        std::fs::read_to_string(disk.path("new.rs")).expect("read"),
        ""
    );
    let created = editor.document(&c).expect("created and open");
    assert_eq!(
        (created.text.as_str(), created.version, created.dirty),
        ("fn new() {}\n", 2, true)
    );
    // didOpen of the new file first, then one didChange per changed open document.
    let methods: Vec<(&str, &str)> = applied
        .notifications
        .iter()
        .map(|n| {
            (
                n.method,
                n.params["textDocument"]["uri"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(methods[0], ("textDocument/didOpen", c.as_str()));
    assert_eq!(applied.notifications.len(), 4, "{methods:?}");
    let mut changed = applied.changed.clone();
    changed.sort();
    let mut expected = vec![(a.clone(), 2), (b.clone(), 3), (c.clone(), 2)];
    expected.sort();
    assert_eq!(changed, expected);
}

#[test]
fn positions_are_read_in_the_negotiated_encoding() {
    // `😀` is 4 bytes, 2 UTF-16 units and 1 code point; `中` and `文` are 3 bytes, 1 unit, 1 point.
    let text = "let s = \"😀中文\";\n";
    // Replace `中` in each encoding: its start column is 9 + the width of 😀 in that encoding.
    for (encoding, start, end) in [("utf-8", 13, 16), ("utf-16", 11, 12), ("utf-32", 10, 11)] {
        let (out, changes) =
            apply_simultaneous(text, &[edit(range(0, start, 0, end), "字")], encoding)
                .expect("applies");
        assert_eq!(out, "let s = \"😀字文\";\n", "{encoding}");
        assert_eq!(changes[0]["range"], range(0, start, 0, end), "{encoding}");
    }
    // A UTF-16 position inside the surrogate pair of 😀 (column 10) is moved to its start, as
    // VS Code does; past the end of a line is the line's end (before the CRLF); past the last
    // line is the end of the text.
    let crlf = "a😀b\r\nx\r\n";
    assert_eq!(
        offset(crlf, &json!({"line": 0, "character": 2}), "utf-16"),
        1
    );
    assert_eq!(
        offset(crlf, &json!({"line": 0, "character": 3}), "utf-16"),
        5
    );
    assert_eq!(
        offset(crlf, &json!({"line": 0, "character": 99}), "utf-16"),
        6
    );
    assert_eq!(
        offset(crlf, &json!({"line": 1, "character": 1}), "utf-16"),
        9
    );
    assert_eq!(
        offset(crlf, &json!({"line": 7, "character": 0}), "utf-16"),
        crlf.len()
    );
    // A lone `\r` ends a line too, as LSP says.
    assert_eq!(
        offset("a\rb", &json!({"line": 1, "character": 0}), "utf-8"),
        2
    );
    // And back: the position of the byte after 😀 in each encoding.
    assert_eq!(
        position(crlf, 5, "utf-8"),
        json!({"line": 0, "character": 5})
    );
    assert_eq!(
        position(crlf, 5, "utf-16"),
        json!({"line": 0, "character": 3})
    );
    assert_eq!(
        position(crlf, 5, "utf-32"),
        json!({"line": 0, "character": 2})
    );
    assert_eq!(
        position(crlf, 9, "utf-16"),
        json!({"line": 1, "character": 1})
    );

    // Through a whole edit with CJK on a second line, in UTF-16: the client's copy changes.
    let mut editor = Editor::new("utf-16");
    editor.open("file:///w/cjk.rs", "// 😀\nlet 名前 = 1;\n");
    editor
        .apply_workspace_edit(&json!({"changes": {"file:///w/cjk.rs": [
            edit(range(1, 4, 1, 6), "name"),
            edit(range(0, 3, 0, 5), "ok"),
        ]}}))
        .expect("applies");
    assert_eq!(
        editor.document("file:///w/cjk.rs").expect("open").text,
        "// ok\nlet name = 1;\n"
    );
}

#[test]
fn edits_of_one_document_apply_as_if_simultaneous() {
    let text = "abc def ghi";
    // Out of order, all against the original text; two inserts at one point keep their order.
    let edits = [
        edit(range(0, 8, 0, 11), "G"),
        edit(range(0, 0, 0, 3), "AAAAA"),
        edit(range(0, 4, 0, 4), "X"),
        edit(range(0, 4, 0, 4), "Y"),
    ];
    let (out, changes) = apply_simultaneous(text, &edits, "utf-16").expect("applies");
    assert_eq!(out, "AAAAA XYdef G");
    // The incremental changes, applied one after the other as `didChange` does, give the same
    // text: each is in the coordinates of the text before it (last edit first).
    let mut editor = Editor::new("utf-16");
    editor.open("file:///w/a.rs", text);
    editor
        .type_changes("file:///w/a.rs", &changes)
        .expect("open");
    assert_eq!(editor.document("file:///w/a.rs").expect("open").text, out);
    assert_eq!(
        changes,
        vec![
            json!({"range": range(0, 8, 0, 11), "text": "G"}),
            json!({"range": range(0, 4, 0, 4), "text": "Y"}),
            json!({"range": range(0, 4, 0, 4), "text": "X"}),
            json!({"range": range(0, 0, 0, 3), "text": "AAAAA"}),
        ]
    );
    // An insert at the point where a replacement starts is not an overlap.
    let (out, _) = apply_simultaneous(
        text,
        &[edit(range(0, 4, 0, 7), "D"), edit(range(0, 4, 0, 4), ">")],
        "utf-16",
    )
    .expect("applies");
    assert_eq!(out, "abc >D ghi");
    // Overlapping ranges are refused, and the document keeps its text.
    let overlapping = json!({"changes": {"file:///w/a.rs": [
        edit(range(0, 0, 0, 5), "x"),
        edit(range(0, 3, 0, 7), "y"),
    ]}});
    let reason = editor
        .apply_workspace_edit(&overlapping)
        .expect_err("overlap");
    assert!(reason.contains("overlap"), "{reason}");
    let doc = editor.document("file:///w/a.rs").expect("open");
    assert_eq!((doc.text.as_str(), doc.version), ("AAAAA XYdef G", 2));
}

#[test]
fn full_text_style_sends_the_whole_document() {
    let mut editor = Editor::new("utf-8");
    editor.style = ChangeStyle::Full;
    editor.open("file:///w/a.rs", "fn a() {}\n");
    let applied = editor
        .apply_workspace_edit(&json!({"documentChanges": [
            text_document_edit("file:///w/a.rs", Some(1), vec![edit(range(0, 3, 0, 4), "b")]),
        ]}))
        .expect("applies");
    assert_eq!(
        applied.notifications[0].params,
        json!({"textDocument": {"uri": "file:///w/a.rs", "version": 2},
            "contentChanges": [{"text": "fn b() {}\n"}]})
    );
}

#[test]
fn an_applied_edit_sends_did_change_before_its_answer_and_is_recorded() {
    let mut client = ScriptedClient::new(Editor::new("utf-16"));
    client.editor.open("file:///w/a.rs", "fn a() {}\n");
    let request = apply_edit_request(
        7,
        json!({
            "documentChanges": [{
                "textDocument": {"uri": "file:///w/a.rs", "version": 1},
                "edits": [{"range": range(0, 3, 0, 4), "newText": "b", "annotationId": "fix"}],
            }],
            "changeAnnotations": {"fix": {"label": "Fix", "needsConfirmation": true}},
        }),
    );
    let sent = client.respond(&request, &Value::Null);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[0]["method"], "textDocument/didChange");
    assert_eq!(sent[0]["params"]["textDocument"]["version"], 2);
    assert_eq!(
        sent[1],
        json!({"jsonrpc": "2.0", "id": 7, "result": {"applied": true}})
    );
    let received = &client.received_edits()[0];
    assert!(received.needs_confirmation());
    assert_eq!(received.annotations()["fix"]["label"], "Fix");
    assert_eq!(
        received.outcome,
        EditOutcome::Applied(vec![("file:///w/a.rs".into(), 2)])
    );
}

#[test]
fn scripted_refusal_hold_edit_meanwhile_and_never() {
    let uri = "file:///w/a.rs";
    let versioned = |id| {
        apply_edit_request(
            id,
            json!({"documentChanges": [text_document_edit(uri, Some(1),
                vec![edit(range(0, 3, 0, 4), "b")])]}),
        )
    };
    // Refuse: `applied: false` with the reason, nothing sent before it, nothing applied.
    let mut client = ScriptedClient::new(Editor::new("utf-16"));
    client.editor.open(uri, "fn a() {}\n");
    client.script(
        "workspace/applyEdit",
        Behaviour::Refuse("the user said no".into()),
    );
    let sent = client.respond(&versioned(1), &Value::Null);
    assert_eq!(
        sent,
        vec![json!({"jsonrpc": "2.0", "id": 1,
            "result": {"applied": false, "failureReason": "the user said no"}})]
    );
    assert_eq!(
        client.editor.document(uri).expect("open").text,
        "fn a() {}\n"
    );
    // Refusing another method is a JSON-RPC error.
    client.script("window/showDocument", Behaviour::Refuse("no viewer".into()));
    let show = json!({"jsonrpc": "2.0", "id": 2, "method": "window/showDocument",
        "params": {"uri": "file:///w/x.md"}});
    let sent = client.respond(&show, &Value::Null);
    assert_eq!(sent[0]["error"]["code"], REQUEST_FAILED);
    assert_eq!(sent[0]["error"]["message"], "no viewer");

    // Hold: nothing until release; released after the user typed, the edit is stale.
    let mut client = ScriptedClient::new(Editor::new("utf-16"));
    client.editor.open(uri, "fn a() {}\n");
    client.script("workspace/applyEdit", Behaviour::Hold);
    assert!(client.respond(&versioned(3), &Value::Null).is_empty());
    assert_eq!(client.held("workspace/applyEdit"), 1);
    assert_eq!(client.received_edits()[0].outcome, EditOutcome::Held);
    client
        .editor
        .type_changes(uri, &[json!({"range": range(0, 0, 0, 0), "text": "pub "})]);
    let sent = client.release("workspace/applyEdit", &Behaviour::Answer, &Value::Null);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["id"], 3);
    assert_eq!(sent[0]["result"]["applied"], false);
    assert!(
        sent[0]["result"]["failureReason"]
            .as_str()
            .is_some_and(|r| r.contains("version")),
        "{sent:#?}"
    );
    assert_eq!(client.held("workspace/applyEdit"), 0);
    assert!(matches!(
        client.received_edits()[0].outcome,
        EditOutcome::Refused(_)
    ));

    // EditMeanwhile: the user's didChange (at the edit's start) goes first, then the answer:
    // a versioned edit is now stale and refused; an unversioned one applies on the new text.
    let mut client = ScriptedClient::new(Editor::new("utf-16"));
    client.editor.open(uri, "fn a() {}\n");
    client.script(
        "workspace/applyEdit",
        Behaviour::EditMeanwhile("/*me*/".into()),
    );
    let sent = client.respond(&versioned(4), &Value::Null);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(
        sent[0]["params"],
        json!({"textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": range(0, 3, 0, 3), "text": "/*me*/"}]})
    );
    assert_eq!(sent[1]["result"]["applied"], false);
    assert_eq!(
        client.editor.document(uri).expect("open").text,
        "fn /*me*/a() {}\n"
    );
    let unversioned = apply_edit_request(
        5,
        json!({"changes": {uri: [edit(range(0, 9, 0, 10), "b")]}}),
    );
    let sent = client.respond(&unversioned, &Value::Null);
    assert_eq!(sent.len(), 3, "{sent:#?}");
    assert_eq!(sent[2]["result"]["applied"], true, "{sent:#?}");
    // The user typed at column 9 first, so the unversioned edit replaced the `/` they typed
    // instead of the `a` it meant: the wrong apply that versioned edits exist to prevent.
    assert_eq!(
        client.editor.document(uri).expect("open").text,
        "fn /*me*/b*me*/a() {}\n"
    );

    // Never: recorded, not answered.
    let mut client = ScriptedClient::new(Editor::new("utf-16"));
    client.script("client/registerCapability", Behaviour::Never);
    let register = json!({"jsonrpc": "2.0", "id": 6, "method": "client/registerCapability",
        "params": {"registrations": []}});
    assert!(client.respond(&register, &Value::Null).is_empty());
}

#[test]
fn the_user_picks_a_message_action_as_scripted() {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "window/showMessageRequest",
        "params": {"type": 3, "message": "Apply?", "actions": [{"title": "Yes"}, {"title": "No"}]}});
    let mut client = ScriptedClient::new(Editor::new("utf-16"));
    assert_eq!(
        client.respond(&request, &Value::Null)[0]["result"],
        Value::Null
    );
    client.answer_messages_with(MessageChoice::First);
    assert_eq!(
        client.respond(&request, &Value::Null)[0]["result"],
        json!({"title": "Yes"})
    );
    client.answer_messages_with(MessageChoice::Titled("No".into()));
    assert_eq!(
        client.respond(&request, &Value::Null)[0]["result"],
        json!({"title": "No"})
    );
    client.answer_messages_with(MessageChoice::Titled("Maybe".into()));
    assert_eq!(
        client.respond(&request, &Value::Null)[0]["result"],
        Value::Null
    );
}

#[tokio::test]
async fn a_scripted_refusal_reaches_the_server_over_the_wire() {
    // The script is applied by the reader to real server requests: a client that refuses
    // `window/showDocument` gets the bundle's path in a message instead.
    let server = crate::support::TestServer::start(crate::support::Options {
        fixture: "//- /src/lib.rs\npub fn one() -> u32 {\n    1\n}\n",
        behaviours: vec![(
            "window/showDocument",
            Behaviour::Refuse("no viewer here".into()),
        )],
        ..crate::support::Options::default()
    })
    .await;
    server
        .wait_notification("$/progress", |n| n["params"]["value"]["kind"] == "end")
        .await;
    let result = server
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.showContext", "arguments": [{
                "uri": server.uri("src/lib.rs"), "range": range(1, 4, 1, 4)}]}),
        )
        .await
        .expect("the command succeeds");
    let path = result["path"].as_str().expect("a path").to_string();
    assert_eq!(server.server_requests("window/showDocument").len(), 1);
    server
        .wait_notification("window/showMessage", |m| {
            m["params"]["message"]
                .as_str()
                .is_some_and(|t| t.contains(&path))
        })
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_clients_copy_follows_its_own_typing_as_the_server_does() {
    for encoding in ["utf-8", "utf-16", "utf-32"] {
        let server = crate::support::TestServer::start(crate::support::Options {
            encodings: Some(vec![encoding]),
            ..crate::support::Options::default()
        })
        .await;
        let text = "fn a() { \"😀中\" }\r\nfn b() {}\n";
        let uri = server.open_text("src/lib.rs", text).await;
        // Replace `中` (after 😀) and append past the end of the last line (clamped).
        let cjk = crate::support::lsp_position(text, 14, encoding);
        let cjk_end = crate::support::lsp_position(text, 17, encoding);
        server
            .change(
                &uri,
                vec![
                    json!({"range": {"start": cjk, "end": cjk_end}, "text": "文字"}),
                    json!({"range": range(2, 40, 2, 40), "text": "// end"}),
                ],
            )
            .await;
        let doc = server.debug_document(&uri).await.expect("open");
        let client = server.document(&uri).expect("open in the client");
        assert_eq!(
            client.text, "fn a() { \"😀文字\" }\r\nfn b() {}\n// end",
            "{encoding}"
        );
        assert_eq!(doc["text"], client.text.as_str(), "{encoding}");
        assert_eq!(doc["version"], client.version, "{encoding}");
        server.shutdown().await;
    }
}
