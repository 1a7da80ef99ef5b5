//! The editable plan document (issue 12, item 3), end to end against the scripted model server
//! on loopback: a plan-only run writes `.conductor/runs/<id>/plan.md`; the developer unticks a
//! step, rewords one and moves one above another; a run that follows the document (through
//! `RunRequest::follow`, and through `conductor run --from-plan`) asks the coder for exactly
//! the ticked steps in the document's order, and its journal records the developer's changes;
//! a broken document is refused naming its line, and no run starts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use conductor::config::Config;
use conductor::editor::FsEditor;
use conductor::journal::{self, Event, RunState};
use conductor::llm::Models;
use conductor::orchestrator::{
    Orchestrator, RunEnv, RunKind, RunOutcome, RunRequest, Selection, plan_doc,
};
use conductor::testkit::{ModelServer, RecordedRequest, Reply};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
const LIB: &str = "pub fn answer() -> u32 {\n    41\n}\n";
const OTHER: &str = "pub fn other() -> u32 {\n    1\n}\n";

/// A workspace with `src/lib.rs` and `src/other.rs` in a temporary folder.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().canonicalize().expect("canonical root");
    std::fs::create_dir_all(root.join("src")).expect("src");
    std::fs::write(root.join("src/lib.rs"), LIB).expect("lib.rs");
    std::fs::write(root.join("src/other.rs"), OTHER).expect("other.rs");
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .expect("Cargo.toml");
    (dir, root)
}

/// The planner's reply: three coder steps, s2 after s1.
fn three_step_plan() -> Reply {
    let plan = serde_json::json!({
        "summary": "Change both constants and document the answer.",
        "steps": [
            {"id": "s1", "title": "Return 42", "agent": "coder", "targets": ["src/lib.rs"], "depends_on": []},
            {"id": "s2", "title": "Document the answer", "agent": "coder", "targets": ["src/lib.rs"], "depends_on": ["s1"]},
            {"id": "s3", "title": "Return 2 from other", "agent": "coder", "targets": ["src/other.rs"], "depends_on": []}
        ],
        "risks": ["callers that expect 41"],
        "tradeoffs": ["literals, not named constants"],
    });
    Reply::text(format!("The plan:\n```json\n{plan}\n```\n"))
}

/// A coder reply with one block on `path` and its decision.
fn coder_reply(path: &str, search: &str, replace: &str) -> Reply {
    let decisions = serde_json::json!({"decisions": [{
        "block": 1, "summary": format!("change {path}"), "rationale": "the step asks for it",
        "alternatives": [], "tradeoffs": [],
    }]});
    Reply::text(format!(
        "{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```json\n{decisions}\n```\n"
    ))
}

/// The plan document as the developer leaves it: s2 unticked, s3 reworded and moved above s1.
fn edit(plan_md: &str) -> String {
    let mut lines: Vec<String> = plan_md.lines().map(str::to_string).collect();
    let at = |id: &str| {
        lines
            .iter()
            .position(|l| l.contains(&format!("**{id}**")))
            .unwrap_or_else(|| panic!("no step {id} in {plan_md}"))
    };
    let (s1, s2, s3) = (at("s1"), at("s2"), at("s3"));
    assert!(s1 < s2 && s2 < s3, "rendered in plan order: {plan_md}");
    lines[s2] = lines[s2].replacen("- [x]", "- [ ]", 1);
    let moved = lines
        .remove(s3)
        .replace("Return 2 from other", "Make other return 2");
    lines.insert(s1, moved);
    lines.join("\n") + "\n"
}

/// The changes the journal must record for [`edit`].
const CHANGES: [&str; 3] = [
    "step s3 reworded: 'Return 2 from other' → 'Make other return 2'",
    "step s2 skipped",
    "steps reordered: s3 before s1 (order now: s3, s1)",
];

fn coder_requests(server: &ModelServer) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.header("x-conductor-agent") == Some("coder"))
        .collect()
}

fn planner_requests(server: &ModelServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.header("x-conductor-agent") == Some("planner"))
        .count()
}

/// The step each coder request was for, from its prompt ("Your step (s3): …").
fn steps_asked(server: &ModelServer) -> Vec<String> {
    coder_requests(server)
        .iter()
        .map(|r| {
            let prompt = r.json()["messages"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|m| m["content"].as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            prompt
                .lines()
                .find_map(|l| l.strip_prefix("Your step ("))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no step in the coder prompt: {prompt}"))
        })
        .collect()
}

fn events(journal_path: &Path) -> Vec<Event> {
    let read = journal::read(journal_path).expect("the journal reads");
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    read.records.into_iter().map(|r| r.event).collect()
}

fn journals(root: &Path) -> usize {
    std::fs::read_dir(journal::runs_dir(root))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
                .count()
        })
        .unwrap_or(0)
}

fn config_for(server: &ModelServer) -> Config {
    let mut config = Config::default();
    config.model.base_url = server.openai_base_url();
    config.model.model = "test-model".into();
    config.model.max_attempts = 2;
    config.model.retry_base_delay_ms = 5;
    config
}

async fn run(root: &Path, config: &Config, request: RunRequest) -> RunOutcome {
    let models = Models::with_env(&config.model, &|_| None).expect("models");
    let env = RunEnv {
        root: root.to_path_buf(),
        config: Arc::new(config.clone()),
        models: Some(Arc::new(models)),
        open: Arc::default(),
        index: None,
        editor: Arc::new(FsEditor),
    };
    let handle = Orchestrator::new()
        .start(env, request)
        .expect("the run starts");
    tokio::time::timeout(WAIT, handle.outcome)
        .await
        .expect("the run ends in time")
        .expect("the run's task does not panic")
}

#[tokio::test]
async fn an_edited_plan_runs_exactly_the_ticked_steps_in_the_documents_order() {
    let server = ModelServer::start().await.expect("test model server");
    let (_dir, root) = workspace();
    let config = config_for(&server);

    server.push("planner", three_step_plan());
    let planned = run(
        &root,
        &config,
        RunRequest {
            kind: RunKind::Goal,
            goal: "make the answers right".into(),
            selection: Some(Selection {
                file: root.join("src/lib.rs"),
                lines: Some((1, 3)),
            }),
            paths: Vec::new(),
            plan_only: true,
            no_plan: false,
            apply: true,
            follow: None,
            remove_line: None,
            apply_failing_tests: false,
        },
    )
    .await;
    assert_eq!(planned.state, RunState::Done, "{}", planned.message);
    let plan_file = planned
        .plan_file
        .clone()
        .expect("a plan-only run writes plan.md");
    assert_eq!(
        plan_file,
        journal::runs_dir(&root)
            .join(&planned.run_id)
            .join("plan.md")
    );
    let written = std::fs::read_to_string(&plan_file).expect("plan.md");
    assert!(
        written.starts_with(&format!("# Plan for run {}\n", planned.run_id)),
        "{written}"
    );
    assert!(coder_requests(&server).is_empty(), "plan only: no coder");

    std::fs::write(&plan_file, edit(&written)).expect("the developer saves plan.md");
    let (original, doc, follow) =
        plan_doc::load_for_run(&root, &planned.run_id).expect("the edited plan loads");
    assert_eq!(follow.changes, CHANGES);
    assert_eq!(follow.skipped, ["s2"]);
    assert_eq!(doc.goal, "make the answers right");

    server.push("coder", coder_reply("src/other.rs", "    1\n", "    2\n"));
    server.push("coder", coder_reply("src/lib.rs", "    41\n", "    42\n"));
    let followed = run(&root, &config, original.request(&doc, follow, true)).await;
    assert_eq!(followed.state, RunState::Done, "{}", followed.message);
    assert_eq!(
        planner_requests(&server),
        1,
        "the edited plan replaces the planner"
    );
    assert_eq!(
        steps_asked(&server),
        ["s3): Make other return 2", "s1): Return 42"],
        "one coder request per ticked step, in the document's order"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("src/other.rs")).expect("other.rs"),
        "pub fn other() -> u32 {\n    2\n}\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).expect("lib.rs"),
        "pub fn answer() -> u32 {\n    42\n}\n"
    );
    assert_eq!(followed.plan_source.as_deref(), Some("edited"));
    assert_eq!(followed.skipped.len(), 1);
    assert_eq!(followed.skipped[0].step, "s2");

    let story = events(&followed.journal);
    let edited = story.iter().position(|e| {
        matches!(e, Event::PlanEdited { from_run, changes }
            if *from_run == planned.run_id && changes == &CHANGES)
    });
    let plan = story
        .iter()
        .position(|e| matches!(e, Event::Plan { source, .. } if source == "edited"));
    assert!(
        matches!((edited, plan), (Some(a), Some(b)) if a < b),
        "plan_edited, then the edited plan: {story:?}"
    );
    assert!(story.iter().any(|e| matches!(e,
        Event::StepSkipped { step, reason } if step == "s2" && reason.contains("unticked"))));
    // The new run's own plan document is the plan it followed, ready to be edited again.
    let again = std::fs::read_to_string(followed.plan_file.expect("plan.md")).expect("read");
    let ids: Vec<String> = plan_doc::parse(&again)
        .expect("parses")
        .steps
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["s3", "s1"]);
}

#[tokio::test]
async fn a_broken_plan_document_names_its_line_and_starts_no_run() {
    let server = ModelServer::start().await.expect("test model server");
    let (_dir, root) = workspace();
    let config = config_for(&server);
    server.push("planner", three_step_plan());
    let request = RunRequest {
        kind: RunKind::Goal,
        goal: "make the answers right".into(),
        selection: None,
        paths: Vec::new(),
        plan_only: true,
        no_plan: false,
        apply: false,
        follow: None,
        remove_line: None,
        apply_failing_tests: false,
    };
    let planned = run(&root, &config, request).await;
    let plan_file = planned.plan_file.expect("plan.md");
    let text = std::fs::read_to_string(&plan_file).expect("plan.md");
    let s2 = text.lines().position(|l| l.contains("**s2**")).expect("s2") + 1;
    for (broken, says) in [
        (
            text.replace("**s2**", "s2"),
            format!("line {s2}: a step needs an id like **s2**"),
        ),
        (
            text.replace("- [x] **s1**", "- [ ] **s1**"),
            format!("line {s2}: step s2 is ticked but comes after s1, which is unticked"),
        ),
        (
            text.replace("targets: src/other.rs", "targets: ../outside.rs"),
            "outside the workspace".to_string(),
        ),
    ] {
        std::fs::write(&plan_file, &broken).expect("save");
        let err = plan_doc::load_for_run(&root, &planned.run_id).expect_err("refused");
        assert!(err.contains("plan.md: line "), "{err}");
        assert!(err.contains(&says), "{says:?} missing from {err}");
    }
    // Nothing ran: one journal (the plan-only run's), no coder request.
    assert_eq!(journals(&root), 1);
    assert!(coder_requests(&server).is_empty());
    let unknown = plan_doc::load_for_run(&root, "20261201-000000-000000").expect_err("no run");
    assert!(
        unknown.contains("no run 20261201-000000-000000"),
        "{unknown}"
    );
}

fn conductor(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_conductor"));
    command
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("CONDUCTOR_LOG");
    command
}

async fn conductor_output(root: &Path, args: &[&str]) -> std::process::Output {
    let (root, args): (PathBuf, Vec<String>) = (
        root.to_path_buf(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || conductor(&root).args(&args).output())
        .await
        .expect("joined")
        .expect("conductor runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductor_run_from_plan_follows_the_edited_document_and_refuses_a_broken_one() {
    let server = ModelServer::start().await.expect("test model server");
    let (_dir, root) = workspace();
    std::fs::write(
        root.join("conductor.toml"),
        format!(
            "[model]\nbase_url = \"{}\"\nmodel = \"test-model\"\nmax_attempts = 2\nretry_base_delay_ms = 5\n",
            server.openai_base_url()
        ),
    )
    .expect("conductor.toml");
    server.push("planner", three_step_plan());
    let out = conductor_output(
        &root,
        &[
            "run",
            "--goal",
            "make the answers right",
            "--file",
            "src/lib.rs",
            "--plan-only",
            "--format",
            "json",
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let planned: Value = serde_json::from_str(&stdout).expect("JSON");
    let run_id = planned["run_id"].as_str().expect("run id").to_string();
    let plan_file = PathBuf::from(planned["plan_file"].as_str().expect("plan_file"));
    let text = std::fs::read_to_string(&plan_file).expect("plan.md");

    // A broken document: exit 2, the line named, no run, no journal.
    let s1 = text.lines().position(|l| l.contains("**s1**")).expect("s1") + 1;
    std::fs::write(&plan_file, text.replace("(coder) Return 42", "Return 42")).expect("save");
    let out = conductor_output(&root, &["run", "--from-plan", &run_id]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("plan.md: line {s1}: step s1 needs its agent")),
        "{stderr}"
    );
    assert_eq!(journals(&root), 1, "no run started");

    // --from-plan with --goal is a usage error.
    let out = conductor_output(&root, &["run", "--from-plan", &run_id, "--goal", "x"]).await;
    assert_eq!(out.status.code(), Some(2));

    std::fs::write(&plan_file, edit(&text)).expect("save");
    server.push("coder", coder_reply("src/other.rs", "    1\n", "    2\n"));
    server.push("coder", coder_reply("src/lib.rs", "    41\n", "    42\n"));
    let out = conductor_output(
        &root,
        &["run", "--from-plan", &run_id, "--apply", "--format", "json"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["plan_source"], "edited");
    assert_eq!(json["from_plan"]["run_id"], run_id.as_str());
    assert_eq!(json["from_plan"]["changes"], serde_json::json!(CHANGES));
    assert_eq!(
        steps_asked(&server),
        ["s3): Make other return 2", "s1): Return 42"]
    );
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).expect("lib.rs"),
        "pub fn answer() -> u32 {\n    42\n}\n"
    );
    let journal_path = PathBuf::from(json["journal"].as_str().expect("journal"));
    assert!(events(&journal_path).iter().any(|e| matches!(e,
        Event::PlanEdited { from_run, changes } if *from_run == run_id && changes == &CHANGES)));
    // The followed run kept the original selection: its journal says so.
    assert!(events(&journal_path).iter().any(|e| matches!(e,
        Event::RunStarted { selection: Some(s), .. } if s == "src/lib.rs")));
}
