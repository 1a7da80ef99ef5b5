//! `conductor explain --run ID` and `conductor runs` on a workspace with journals, through the
//! real binary: a run's story as text, markdown and JSON (a torn last line skipped and named
//! at the end), review marks appended after the run in `conductor runs`, the exit code 2 and
//! the runs folder named for an unknown run, the FILE:LINE form answered from the decision anchors, and
//! `[journal] retention_days` enforced by `conductor runs`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use conductor::journal::{self, Event, Journal, RunState, UsageTotals};
use serde_json::Value;

const RUN: &str = "20261201-101500-00beef";

fn conductor(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conductor"))
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("CONDUCTOR_LOG")
        .args(args)
        .output()
        .expect("conductor runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn anchored(hunk: usize, block: usize, lines: [usize; 2]) -> Event {
    Event::Anchored {
        hunk,
        file: "src/lib.rs".into(),
        lines,
        hash: "h".into(),
        written: "    42\n".into(),
        original: "    41\n".into(),
        file_hash: "f".into(),
        context_before: "pub fn answer() -> u32 {\n".into(),
        context_after: "}\n".into(),
        step: Some("s1".into()),
        block: Some(block),
        summary: format!("block {block}"),
    }
}

/// A workspace with one finished run of two decisions, one of them marked reviewed after the
/// run, and a journal whose last line was cut off.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().canonicalize().expect("canonical root");
    std::fs::create_dir_all(root.join("src")).expect("src");
    std::fs::write(
        root.join("src/lib.rs"),
        "pub fn answer() -> u32 {\n    42\n}\n",
    )
    .expect("lib");
    let j = Journal::create(&root, RUN).expect("journal");
    j.record(Event::RunStarted {
        run_id: RUN.into(),
        kind: "goal".into(),
        goal: "make the answer 42".into(),
        selection: Some("src/lib.rs:1-3".into()),
        config_digest: "d".into(),
        workspace: root.display().to_string(),
    });
    for (block, summary) in [(1, "return 42"), (2, "document the answer")] {
        j.record(Event::Decision {
            step: "s1".into(),
            block,
            file: "src/lib.rs".into(),
            agent: "coder".into(),
            model: "test-model".into(),
            summary: summary.into(),
            rationale: format!("{summary}: the caller expects it"),
            alternatives: vec!["a constant".into()],
            tradeoffs: vec![],
        });
    }
    j.record(Event::TestRun {
        round: 0,
        status: "passed".into(),
        command: vec!["cargo".into(), "test".into()],
        sandbox: "none".into(),
        passed: 3,
        failed: vec![],
        failed_before: vec![],
        flaky: vec![],
        weakened: vec![],
        dropped_lines: 0,
        elapsed_ms: 1500,
    });
    j.record(anchored(1, 1, [2, 2]));
    j.record(anchored(2, 2, [1, 1]));
    j.record(Event::Outcome {
        state: RunState::Done,
        message: "the change is applied".into(),
        files: vec!["src/lib.rs".into()],
        usage: UsageTotals {
            prompt_tokens: 120,
            completion_tokens: 30,
            cost_usd: 0.002,
        },
    });
    let path = j.path().to_path_buf();
    drop(j);
    let j = Journal::append_to(&path).expect("append");
    j.record(Event::Reviewed {
        hunks: vec![1],
        reviewed: true,
        by: "editor".into(),
    });
    drop(j);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    file.write_all(br#"{"seq":99,"at_ms":1,"event":"revi"#)
        .expect("torn line");
    (dir, root)
}

#[test]
fn explain_run_prints_the_story_as_text_markdown_and_json() {
    let (_dir, root) = workspace();
    let root_arg = root.display().to_string();

    let out = conductor(&root, &["explain", "--run", RUN, "--root", &root_arg]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for part in [
        &format!("Run {RUN} (goal): done"),
        "Goal: make the answer 42",
        "Review: reviewed 1/2 decisions",
        "1. return 42 — step s1 block 1, src/lib.rs, by coder (test-model)",
        "why: return 42: the caller expects it",
        &format!("{RUN}#1 src/lib.rs:2: reviewed "),
        &format!("{RUN}#2 src/lib.rs:1: unreviewed"),
        "round 0: passed — 3 passed, 0 failed",
        "Usage: 120 prompt + 30 completion tokens, $0.0020",
    ] {
        assert!(stdout.contains(part), "{part:?} missing from:\n{stdout}");
    }
    let warnings = stdout
        .split("\nWarnings:\n")
        .nth(1)
        .expect("warnings at the end");
    assert!(warnings.contains("the event is cut off"), "{stdout}");
    assert!(stderr.contains("the event is cut off"), "{stderr}");

    let out = conductor(
        &root,
        &[
            "explain", "--run", RUN, "--format", "markdown", "--root", &root_arg,
        ],
    );
    let (markdown, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        markdown.starts_with(&format!("# Run {RUN}: make the answer 42")),
        "{markdown}"
    );
    assert!(
        markdown.contains("## Decisions (reviewed 1/2 decisions)"),
        "{markdown}"
    );
    assert!(
        markdown.contains("**Why:** return 42: the caller expects it"),
        "{markdown}"
    );

    // Run from inside the workspace, the root is found without --root.
    let out = conductor(&root, &["explain", "--run", RUN, "--format", "json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["run_id"], RUN);
    assert_eq!(json["ended"], true);
    assert_eq!(json["review_state"]["reviewed"], 1);
    assert_eq!(json["review_state"]["decisions"], 2);
    assert_eq!(json["decisions"][0]["hunks"][0]["reviewed"], true);
    assert_eq!(json["decisions"][1]["hunks"][0]["reviewed"], false);
    assert_eq!(json["tests"]["runs"][0]["passed"], 3);
    assert_eq!(json["warnings"].as_array().map(Vec::len), Some(1));
}

#[test]
fn explain_says_which_runs_folder_it_looked_in_and_exits_2() {
    let (_dir, root) = workspace();
    let out = conductor(&root, &["explain", "--run", "20990101-000000-000000"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let runs = journal::runs_dir(&root);
    assert!(
        stderr.contains("no run \"20990101-000000-000000\"")
            && stderr.contains(&runs.display().to_string()),
        "{stderr}"
    );
    // An id that would leave the runs folder is no run either.
    let out = conductor(&root, &["explain", "--run", "../../etc/passwd"]);
    assert_eq!(out.status.code(), Some(2));
    // Neither a target nor --run, or both: a usage error.
    assert_eq!(conductor(&root, &["explain"]).status.code(), Some(2));
    assert_eq!(
        conductor(&root, &["explain", "src/lib.rs:2", "--run", RUN])
            .status
            .code(),
        Some(2)
    );
    // FILE:LINE: the decisions whose text covers that line of the file as it is on disk.
    let out = conductor(&root, &["explain", "src/lib.rs:2", "--format", "json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let found: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let ids: Vec<&str> = found
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert!(ids.contains(&format!("{RUN}#1").as_str()), "{stdout}");
    let first = found
        .as_array()
        .and_then(|a| a.iter().find(|d| d["hunk"] == 1))
        .expect("hunk 1");
    assert!(first["reviewed_ms"].is_u64(), "marked reviewed: {first}");
    assert_eq!(first["lines"], serde_json::json!([2, 2]));
    let out = conductor(&root, &["explain", "src/lib.rs:1"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.starts_with("No run's decision covers src/lib.rs:1"),
        "{stdout}"
    );
    let out = conductor(&root, &["explain", "src/lib.rs:zero"]);
    assert!(text(&out).1.contains("1-based"), "{:?}", text(&out));
}

#[test]
fn runs_shows_the_review_state_and_enforces_retention() {
    let (_dir, root) = workspace();
    // An ended run from 200 days ago, with its folder: past the default 90 days.
    let old = super::support::old_run(&root, 200);
    let out = conductor(&root, &["runs"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("reviewed 1/2"), "{stdout}");
    assert!(!stdout.contains(&old), "the old run is gone: {stdout}");
    assert!(
        stderr.contains("journal retention removed 1 run(s)") && stderr.contains(&old),
        "{stderr}"
    );
    assert!(super::support::run_removed(&root, &old));

    let out = conductor(&root, &["runs", "--format", "json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listed[0]["id"], RUN);
    assert_eq!(listed[0]["decisions"], 2);
    assert_eq!(listed[0]["reviewed"], 1);

    // A bad `[journal]` value is named by key, and the listing goes on with the default.
    std::fs::write(
        root.join("conductor.toml"),
        "[journal]\nretention_days = \"soon\"\n",
    )
    .expect("config");
    let out = conductor(&root, &["runs"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("`journal.retention_days`"), "{stderr}");
    assert!(stdout.contains(RUN), "{stdout}");
}
