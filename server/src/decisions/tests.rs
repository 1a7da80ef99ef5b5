//! The decision index read back from journals, located in changed texts, and rendered.

use super::render::{self, Located};
use super::*;
use crate::editor::text_hash;
use crate::journal::{Journal, UsageTotals};
use crate::llm::protocol::Plan;

const WRITTEN: &str = "fn get(url: &str) -> String {\n    retry(3, || fetch(url))\n}\n";
const AFTER: &str =
    "fn a() {}\nfn get(url: &str) -> String {\n    retry(3, || fetch(url))\n}\nfn z() {}\n";

/// Journals one finished run that changed `src/lib.rs` from BEFORE to AFTER, with a decision.
fn journal_run(root: &Path, id: &str) -> PathBuf {
    let j = Journal::create(root, id).expect("journal");
    j.record(Event::RunStarted {
        run_id: id.into(),
        kind: "goal".into(),
        goal: "add retries".into(),
        selection: None,
        config_digest: "d".into(),
        workspace: root.display().to_string(),
    });
    j.record(Event::Plan {
        source: "model".into(),
        plan: Plan {
            summary: "retry the fetch".into(),
            steps: Vec::new(),
            risks: vec!["a retry storm on a dead server".into()],
            tradeoffs: Vec::new(),
        },
    });
    j.record(Event::Decision {
        step: "s1".into(),
        block: 1,
        file: "src/lib.rs".into(),
        agent: "coder".into(),
        model: "m-1".into(),
        summary: "retry the fetch three times".into(),
        rationale: "the server drops one request in fifty".into(),
        alternatives: vec!["a circuit breaker".into()],
        tradeoffs: vec!["latency on failure for resilience".into()],
    });
    j.record(Event::Stage {
        state: RunState::Reviewing,
        message: String::new(),
    });
    j.record(Event::Finding {
        file: "src/lib.rs".into(),
        line: 3,
        rule_id: "rust/ssrf".into(),
        severity: "high".into(),
        message: "a URL from input".into(),
        status: "new".into(),
    });
    j.record(Event::TestRun {
        round: 0,
        status: "passed".into(),
        command: vec!["cargo".into(), "test".into()],
        sandbox: "bubblewrap".into(),
        passed: 14,
        failed: Vec::new(),
        failed_before: Vec::new(),
        flaky: Vec::new(),
        weakened: Vec::new(),
        dropped_lines: 0,
        elapsed_ms: 900,
    });
    j.record(Event::Anchored {
        hunk: 1,
        file: "src/lib.rs".into(),
        lines: [2, 4],
        hash: text_hash(WRITTEN.as_bytes()),
        written: WRITTEN.into(),
        original: "fn get(url: &str) -> String {\n    fetch(url)\n}\n".into(),
        file_hash: text_hash(AFTER.as_bytes()),
        context_before: "fn a() {}\n".into(),
        context_after: "fn z() {}\n".into(),
        step: Some("s1".into()),
        block: Some(1),
        summary: "retry the fetch three times".into(),
    });
    j.record(Event::Outcome {
        state: RunState::Done,
        message: "done".into(),
        files: vec!["src/lib.rs".into()],
        usage: UsageTotals {
            prompt_tokens: 4000,
            completion_tokens: 100,
            cost_usd: 0.0125,
        },
    });
    j.path().to_path_buf()
}

fn located<'a>(index: &'a Index, text: &str) -> Vec<Located<'a>> {
    render::locate_all(index, "src/lib.rs", text)
}

#[test]
fn a_journalled_run_becomes_a_decision_with_its_why_review_tests_and_cost() {
    let dir = tempfile::tempdir().expect("tempdir");
    journal_run(dir.path(), "r1");
    let mut index = Index::new(dir.path());
    index.refresh();
    assert_eq!(index.len(), 1);
    let found = located(&index, AFTER);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line, 2);
    assert_eq!(&AFTER[found[0].range.clone()], WRITTEN);
    let hover = render::hover(&index, &found[0]);
    for needle in [
        "run `r1`",
        "decision 1 of 1",
        "coder · m-1",
        "retry the fetch three times",
        "one request in fifty",
        "a circuit breaker",
        "latency on failure",
        "Risk (plan): a retry storm",
        "high `rust/ssrf` at line 3",
        "passed, tests 14/14",
        "bubblewrap",
        "4.1k tokens · $0.013",
        "unreviewed",
    ] {
        assert!(hover.contains(needle), "{needle:?} missing from:\n{hover}");
    }
    let lenses = render::lenses(&index, &found);
    let titles: Vec<&str> = lenses.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(
        titles[0],
        "Conductor run r1 · 1 decision · tests 14/14 · 1 finding · unreviewed"
    );
    assert!(titles.contains(&"Mark reviewed") && titles.contains(&"↶ Revert"));
    assert!(lenses.iter().all(|l| l.line == 1));
}

#[test]
fn a_review_mark_appended_later_is_seen_after_a_reload_and_taken_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = journal_run(dir.path(), "r1");
    let mut index = Index::new(dir.path());
    index.refresh();
    let key = index.find("r1", 1).expect("decision").key;
    let j = Journal::append_to(&path).expect("append");
    j.record(Event::Reviewed {
        hunks: vec![1],
        reviewed: true,
        by: "editor".into(),
    });
    index.reload_run("r1");
    let d = index.find("r1", 1).expect("decision");
    assert!(d.reviewed_ms.is_some());
    assert_eq!(d.key, key, "keys survive a reload");
    assert_eq!(render::run_review_state(&index, "r1"), "reviewed");
    j.record(Event::Reviewed {
        hunks: vec![1],
        reviewed: false,
        by: "editor".into(),
    });
    index.reload_run("r1");
    assert_eq!(render::run_review_state(&index, "r1"), "unreviewed");
}

#[test]
fn a_decision_is_found_again_after_the_file_changed_around_it_and_lost_when_rewritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    journal_run(dir.path(), "r1");
    let mut index = Index::new(dir.path());
    index.refresh();
    // Lines added above: found by its text, nearest its old place.
    let moved = format!("// one\n// two\n{AFTER}");
    let found = located(&index, &moved);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line, 4);
    // Rewritten: gone.
    let rewritten = AFTER.replace("retry(3, ", "backoff(");
    assert!(located(&index, &rewritten).is_empty());
    // A text too plain to tell apart is found at its line, or between its recorded
    // neighbours, and nowhere else.
    let d = index.find("r1", 1).expect("d").clone();
    let plain = Decision {
        written: "}\n".into(),
        lines: [4, 4],
        context_before: "    finish_the_request();\n".into(),
        context_after: String::new(),
        ..d
    };
    assert_eq!(locate(&plain, "x\n}\n", "h"), None);
    assert_eq!(locate(&plain, "a\nb\nc\n}\n", "h"), Some(6..8));
    let moved = "}\nnew\nlines\nhere\n    finish_the_request();\n}\n";
    let at = moved.rfind('}').expect("brace");
    assert_eq!(locate(&plain, moved, "h"), Some(at..at + 2));
    // A place (a hunk that only removed lines) is found between its neighbours.
    let place = Decision {
        written: String::new(),
        lines: [2, 1],
        context_before: "fn keep_one() {}\n".into(),
        context_after: "fn keep_two() {}\n".into(),
        ..plain
    };
    let text = "// new\nfn keep_one() {}\nfn keep_two() {}\n";
    let at = text.find("fn keep_two").expect("two");
    assert_eq!(locate(&place, text, "h"), Some(at..at));
}

#[test]
fn torn_and_newer_lines_are_skipped_and_new_and_removed_runs_are_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = journal_run(dir.path(), "r1");
    // A line from a newer Conductor, then a torn one.
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str("{\"seq\":99,\"at_ms\":1,\"event\":\"from_the_future\",\"x\":1}\n{\"seq\":100,");
    std::fs::write(&path, text).expect("write");
    let mut index = Index::new(dir.path());
    index.refresh();
    let run = index.run("r1").expect("run");
    assert_eq!(run.warnings.len(), 2, "{:?}", run.warnings);
    assert_eq!(index.len(), 1);
    // A run journalled by another process appears; a deleted one goes.
    journal_run(dir.path(), "r2");
    index.refresh();
    assert_eq!(index.len(), 2);
    std::fs::remove_file(&path).expect("remove");
    index.refresh();
    assert!(index.run("r1").is_none());
    assert_eq!(index.len(), 1);
}

#[test]
fn explain_line_prints_the_decisions_covering_a_line_of_a_file_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    journal_run(dir.path(), "r1");
    std::fs::create_dir_all(dir.path().join("src")).expect("src");
    std::fs::write(dir.path().join("src/lib.rs"), format!("// moved\n{AFTER}")).expect("write");
    let text = render::explain_line(dir.path(), Path::new("src/lib.rs"), 4, "text").expect("ok");
    assert!(text.contains("retry the fetch three times"), "{text}");
    assert!(!text.contains("**"), "plain text: {text}");
    let none = render::explain_line(dir.path(), Path::new("src/lib.rs"), 1, "text").expect("ok");
    assert!(
        none.starts_with("No run's decision covers src/lib.rs:1"),
        "{none}"
    );
    let json = render::explain_line(dir.path(), Path::new("src/lib.rs"), 3, "json").expect("ok");
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value[0]["id"], "r1#1");
    assert_eq!(value[0]["lines"], serde_json::json!([3, 5]));
    assert!(render::explain_line(dir.path(), Path::new("src/lib.rs"), 3, "yaml").is_err());
}

#[test]
fn plain_text_drops_bold_italic_code_and_link_syntax_but_not_code_or_arithmetic() {
    let markdown = "**Why** it changed — *coder · gpt-test*\n`*ptr` stays, 2 * 3 stays, see [the run](runs/r1/story.md)";
    assert_eq!(
        render::plain(markdown),
        "Why it changed — coder · gpt-test\n*ptr stays, 2 * 3 stays, see the run (runs/r1/story.md)"
    );
}
