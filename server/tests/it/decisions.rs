//! Decisions you can see (issue 14), end to end: a real run through the in-process server and
//! the loopback model server, then what a reviewer does with its change — hover the changed
//! lines, read the lenses, mark decisions reviewed, revert and re-apply — while typing moves the
//! anchors, and after a restart of the server on the same workspace.

use conductor::testkit::ModelServer;
use serde_json::{Value, json};

use super::runs_editor::{
    LIB, command, ended, event_names, journal_events, orchestrate, settings, start,
};
use super::support::replies::{good_coder_reply, plan_reply};
use super::support::{Options, TestServer};

/// The buffer after the run: `41` became `42` on line 2.
fn changed() -> String {
    LIB.replace("    41", "    42")
}

/// A server on the fixture that has run "return 42" on `src/lib.rs`, open; returns it, the
/// document's URI and the run id.
async fn after_a_run(
    model: &ModelServer,
    tweak: impl FnOnce(&mut Options),
) -> (TestServer, String, String) {
    model.push("planner", plan_reply(&["src/lib.rs"]));
    model.push("coder", good_coder_reply());
    let server = start(model, tweak).await;
    let uri = server.open_text("src/lib.rs", LIB).await;
    let id = orchestrate(&server, &uri, "return 42").await;
    let message = ended(&server, &id).await;
    assert_eq!(message["type"], 3, "{message}");
    assert_eq!(server.text(&uri), changed());
    (server, uri, id)
}

/// The hover's markdown at the first `needle` of the buffer (empty when there is none).
async fn hover_at(server: &TestServer, uri: &str, needle: &str) -> String {
    let text = server.text(uri);
    let byte = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in {text}"));
    let hover = server.hover(uri, &text, byte).await.expect("hover answers");
    hover["contents"]["value"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The code lenses of `uri`, as (line, title, command, argument).
async fn lenses(server: &TestServer, uri: &str) -> Vec<(u64, String, String, Value)> {
    let result = server
        .request(
            "textDocument/codeLens",
            json!({"textDocument": {"uri": uri}}),
        )
        .await
        .expect("codeLens answers");
    result
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|l| {
            (
                l["range"]["start"]["line"].as_u64().unwrap_or(u64::MAX),
                l["command"]["title"].as_str().unwrap_or("").to_string(),
                l["command"]["command"].as_str().unwrap_or("").to_string(),
                l["command"]["arguments"][0].clone(),
            )
        })
        .collect()
}

fn titles(lenses: &[(u64, String, String, Value)]) -> Vec<String> {
    lenses.iter().map(|(_, t, _, _)| t.clone()).collect()
}

#[tokio::test]
async fn after_a_run_the_changed_line_hovers_its_decision_and_lenses_offer_review_and_revert() {
    let model = ModelServer::start().await.expect("model server");
    let (server, uri, id) = after_a_run(&model, |_| {}).await;
    let hover = hover_at(&server, &uri, "42").await;
    for needle in [
        &format!("Conductor run `{id}`"),
        "decision 1 of 1",
        "block 1: return 42",
        "the goal asks for 42",
        "a named constant",
        "a literal is less self-explaining",
        "Risk (plan): callers that expect 41",
        "**Review:** no new findings on these lines",
        "**Tests:**",
        "tokens · $",
        "unreviewed",
    ] {
        assert!(hover.contains(needle), "{needle:?} missing from:\n{hover}");
    }
    // Lines the run did not write have no decision.
    assert_eq!(hover_at(&server, &uri, "7").await, "");
    let shown = lenses(&server, &uri).await;
    assert!(
        shown.iter().all(|(line, ..)| *line == 1),
        "the lenses sit on the changed line: {shown:?}"
    );
    let t = titles(&shown);
    assert!(
        t[0].starts_with(&format!("Conductor run {id} · 1 decision · "))
            && t[0].ends_with("· unreviewed"),
        "{t:?}"
    );
    for title in ["Plan", "Journal", "Mark reviewed", "↶ Revert"] {
        assert!(t.iter().any(|x| x == title), "{title} in {t:?}");
    }
    // The run's end asked the client to fetch lenses again.
    assert!(
        !server
            .server_requests("workspace/codeLens/refresh")
            .is_empty(),
        "a codeLens refresh after the run"
    );
}

#[tokio::test]
async fn anchors_follow_typing_and_a_rewritten_region_loses_its_decision() {
    let model = ModelServer::start().await.expect("model server");
    let (server, uri, id) = after_a_run(&model, |_| {}).await;
    // Resolve the anchor once (it becomes a mark of the document), then type above it.
    assert!(hover_at(&server, &uri, "42").await.contains("block 1"));
    server
        .change(
            &uri,
            vec![json!({"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "// a\n// b\n"})],
        )
        .await;
    assert!(hover_at(&server, &uri, "42").await.contains("block 1"));
    assert_eq!(
        lenses(&server, &uri).await[0].0,
        3,
        "the lens moved down two lines"
    );
    // Typing inside it: still its decision, now edited.
    let text = server.text(&uri);
    let line = text.lines().position(|l| l.contains("42")).expect("line") as u32;
    server
        .change(
            &uri,
            vec![json!({"range": {"start": {"line": line, "character": 6}, "end": {"line": line, "character": 6}}, "text": " + 0"})],
        )
        .await;
    let hover = hover_at(&server, &uri, "42 + 0").await;
    assert!(hover.contains("edited since the run"), "{hover}");
    // A revert of edited text is refused, and says why; the buffer is untouched.
    let before = server.text(&uri);
    let result = command(&server, "conductor.revert", json!({"runId": id}))
        .await
        .expect("answered");
    assert_eq!(result["result"], "refused", "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap_or("")
            .contains("you edited"),
        "{result}"
    );
    assert_eq!(server.text(&uri), before);
    // Rewriting the whole region drops it.
    server
        .change(
            &uri,
            vec![json!({"range": {"start": {"line": line, "character": 0}, "end": {"line": line + 1, "character": 0}}, "text": "    40 + 2\n"})],
        )
        .await;
    assert_eq!(hover_at(&server, &uri, "40 + 2").await, "");
    assert!(lenses(&server, &uri).await.is_empty());
}

#[tokio::test]
async fn mark_reviewed_is_journalled_shown_on_the_lens_and_can_be_taken_back() {
    let model = ModelServer::start().await.expect("model server");
    let (server, uri, id) = after_a_run(&model, |_| {}).await;
    let shown = lenses(&server, &uri).await;
    let (_, _, name, argument) = shown
        .iter()
        .find(|(_, t, ..)| t == "Mark reviewed")
        .expect("a mark-reviewed lens")
        .clone();
    let result = command(&server, &name, argument).await.expect("marked");
    assert_eq!(result["reviewed"], true, "{result}");
    assert_eq!(
        result["run"], "reviewed",
        "its only decision: the run is reviewed"
    );
    let events = journal_events(&server, &id);
    let mark = events
        .iter()
        .find(|e| e["event"] == "reviewed")
        .expect("a reviewed event");
    assert_eq!(mark["hunks"], json!([1]));
    assert!(mark["at_ms"].as_u64().unwrap_or(0) > 0, "with the time");
    let t = titles(&lenses(&server, &uri).await);
    assert!(t[0].ends_with("· reviewed"), "{t:?}");
    assert!(t.iter().any(|x| x == "✓ Reviewed (undo)"), "{t:?}");
    assert!(
        hover_at(&server, &uri, "42")
            .await
            .contains("**State:** reviewed 20")
    );
    let undo = command(
        &server,
        "conductor.markReviewed",
        json!({"runId": id, "hunk": 1, "reviewed": false}),
    )
    .await
    .expect("unmarked");
    assert_eq!(undo["run"], "unreviewed", "{undo}");
    assert!(titles(&lenses(&server, &uri).await)[0].ends_with("· unreviewed"));
    // From a palette: the decisions the selection touches.
    let line = |l: u32| json!({"line": l, "character": 0});
    let none = command(
        &server,
        "conductor.markReviewed",
        json!({"uri": uri, "range": {"start": line(4), "end": line(5)}}),
    )
    .await
    .expect_err("no decision there");
    assert!(
        none["message"]
            .as_str()
            .unwrap_or("")
            .contains("no run's decision covers lines 5-6"),
        "{none}"
    );
    let picked = command(
        &server,
        "conductor.markReviewed",
        json!({"uri": uri, "range": {"start": line(0), "end": line(1)}}),
    )
    .await
    .expect("marked by selection");
    assert_eq!(picked["runId"], id.as_str(), "{picked}");
    assert_eq!(picked["run"], "reviewed", "{picked}");
}

#[tokio::test]
async fn revert_restores_what_the_run_replaced_and_reapply_brings_it_back() {
    let model = ModelServer::start().await.expect("model server");
    let (server, uri, id) = after_a_run(&model, |_| {}).await;
    // Typing elsewhere does not stand in the way, and survives the revert.
    server
        .change(
            &uri,
            vec![json!({"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "// mine\n"})],
        )
        .await;
    let result = command(&server, "conductor.revert", json!({"runId": id, "hunk": 1}))
        .await
        .expect("reverted");
    assert_eq!(result["result"], "applied", "{result}");
    assert_eq!(server.text(&uri), format!("// mine\n{LIB}"));
    let edit = server.received_edits().last().cloned().expect("an edit");
    assert_eq!(
        edit.edit()["documentChanges"][0]["textDocument"]["version"],
        3,
        "a versioned edit, for the text the user has"
    );
    let hover = hover_at(&server, &uri, "41").await;
    assert!(hover.contains("reverted"), "{hover}");
    let t = titles(&lenses(&server, &uri).await);
    assert!(t.iter().any(|x| x == "↷ Re-apply"), "{t:?}");
    // Reverting again is refused: it is reverted.
    let again = command(&server, "conductor.revert", json!({"runId": id, "hunk": 1}))
        .await
        .expect("answered");
    assert_eq!(again["result"], "refused", "{again}");
    let back = command(
        &server,
        "conductor.revert",
        json!({"runId": id, "hunk": 1, "reapply": true}),
    )
    .await
    .expect("re-applied");
    assert_eq!(back["result"], "applied", "{back}");
    assert_eq!(server.text(&uri), format!("// mine\n{}", changed()));
    assert!(hover_at(&server, &uri, "42").await.contains("unreviewed"));
    let events = journal_events(&server, &id);
    let actions: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "reverted")
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["result"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert_eq!(actions[0], ("revert".into(), "applied".into()));
    assert!(actions[1].1.starts_with("refused"), "{actions:?}");
    assert_eq!(actions[2], ("reapply".into(), "applied".into()));
    assert!(event_names(&events).iter().any(|n| n == "anchored"));
}

#[tokio::test]
async fn anchors_survive_a_restart_and_a_closed_file_is_reverted_on_disk() {
    let model = ModelServer::start().await.expect("model server");
    let (first, uri, id) = after_a_run(&model, |_| {}).await;
    let root = first.root.clone();
    first.close(&uri).await;
    // While no server runs, the file is saved with lines added above the change.
    let path = root.join("src/lib.rs");
    std::fs::write(&path, format!("//! docs\n\n{}", changed())).expect("save");
    let second = TestServer::start(Options {
        root: Some(root.clone()),
        settings: settings(&model),
        ..Options::default()
    })
    .await;
    let saved = std::fs::read_to_string(&path).expect("read");
    let uri = second.open_text("src/lib.rs", &saved).await;
    let hover = hover_at(&second, &uri, "42").await;
    assert!(hover.contains(&format!("Conductor run `{id}`")), "{hover}");
    assert_eq!(lenses(&second, &uri).await[0].0, 3, "found two lines down");
    second.close(&uri).await;
    // Closed: the revert edits the file on disk, where the decision's text is.
    let result = command(&second, "conductor.revert", json!({"runId": id}))
        .await
        .expect("reverted");
    assert_eq!(result["result"], "applied", "{result}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        format!("//! docs\n\n{LIB}")
    );
    drop(first);
}

#[tokio::test]
async fn bad_arguments_are_invalid_params_and_settings_turn_hovers_and_lenses_off() {
    let model = ModelServer::start().await.expect("model server");
    let (server, uri, id) = after_a_run(&model, |_| {}).await;
    for (name, argument, words) in [
        (
            "conductor.revert",
            json!({"runId": "nope"}),
            "no run `nope`",
        ),
        (
            "conductor.markReviewed",
            json!({"runId": id, "hunk": 9}),
            "has no decision 9",
        ),
        ("conductor.markReviewed", json!({"hunk": 1}), "bad argument"),
        (
            "conductor.showRun",
            json!({"runId": id, "show": "movie"}),
            "unknown `show`",
        ),
    ] {
        let error = command(&server, name, argument).await.expect_err("refused");
        assert_eq!(error["code"], -32602, "{name}: {error}");
        assert!(
            error["message"].as_str().unwrap_or("").contains(words),
            "{name}: {error}"
        );
    }
    let shown = command(
        &server,
        "conductor.showRun",
        json!({"runId": id, "show": "journal"}),
    )
    .await
    .expect("shown");
    assert_eq!(shown["shown"], true, "{shown}");
    // The lens's own command: the run's story, written beside the journal and opened.
    let story = command(&server, "conductor.showRun", json!({"runId": id}))
        .await
        .expect("the story");
    let path = story["path"].as_str().expect("a path");
    assert!(path.ends_with(&format!("{id}/story.md")), "{story}");
    let text = std::fs::read_to_string(path).expect("story.md");
    assert!(text.contains("block 1: return 42"), "{text}");
    // A journal that came with the repository and names a file outside it: nothing is written.
    let outside = server.root.parent().expect("parent").join("outside.rs");
    std::fs::write(&outside, "    42\n").expect("outside");
    let evil = conductor::journal::Journal::create(&server.root, "evil").expect("journal");
    evil.record(conductor::journal::Event::RunStarted {
        run_id: "evil".into(),
        kind: "goal".into(),
        goal: "x".into(),
        selection: None,
        config_digest: String::new(),
        workspace: String::new(),
    });
    evil.record(conductor::journal::Event::Anchored {
        hunk: 1,
        file: "../outside.rs".into(),
        lines: [1, 1],
        hash: String::new(),
        written: "    42\n".into(),
        original: "    pwned()\n".into(),
        file_hash: String::new(),
        context_before: String::new(),
        context_after: String::new(),
        step: None,
        block: None,
        summary: "x".into(),
    });
    let refused = command(&server, "conductor.revert", json!({"runId": "evil"}))
        .await
        .expect("answered");
    assert_eq!(refused["result"], "refused", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or("")
            .contains("not a path inside the workspace"),
        "{refused}"
    );
    assert_eq!(std::fs::read_to_string(&outside).expect("read"), "    42\n");
    let _ = std::fs::remove_file(&outside);
    let mut off = settings(&model);
    off["decisions"] = json!({"hover": false, "lenses": false});
    server.set_settings(off.clone());
    server
        .notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {"conductor": off}}),
        )
        .await;
    let mut quiet = false;
    for _ in 0..50 {
        if hover_at(&server, &uri, "42").await.is_empty() && lenses(&server, &uri).await.is_empty()
        {
            quiet = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(quiet, "decisions.hover and decisions.lenses turn them off");
}
