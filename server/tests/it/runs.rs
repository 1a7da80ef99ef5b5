//! Runs end to end, and every fault of issue 11 ("Bad input and faults"): the orchestrator
//! driven through real HTTP to the fault-injecting model server on loopback, each test checking
//! the run's final state, that its message says what to do, that its journal tells the whole
//! story (run_started … outcome), and that the files on disk are exactly as before unless the run
//! was asked to apply and succeeded. A few tests drive the real binary (`conductor fix`,
//! `conductor run`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conductor::config::Config;
use conductor::editor::{Applied, ChangeSet, Editor, EditorFuture, FsEditor};
use conductor::journal::{self, Event, RunState};
use conductor::llm::Models;
use conductor::orchestrator::{
    Orchestrator, RunEnv, RunKind, RunOutcome, RunRequest, Selection, StartError,
};
use conductor::testkit::{Fault, ModelServer, RecordedRequest, Reply};

use super::support::replies::{block, decisions, good_coder_reply, plan_reply};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// How long a test waits for something that should happen promptly.
const WAIT: Duration = Duration::from_secs(20);

/// The one file most runs change.
const LIB: &str = "pub fn answer() -> u32 {\n    41\n}\n";

/// A workspace in a temporary folder, with a test model server and a registry of runs.
struct Rig {
    server: ModelServer,
    _dir: tempfile::TempDir,
    root: PathBuf,
    orchestrator: Arc<Orchestrator>,
    config: Config,
}

impl Rig {
    async fn new() -> Self {
        let server = ModelServer::start().await.expect("test model server");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical root");
        std::fs::create_dir_all(root.join("src")).expect("src");
        std::fs::write(root.join("src/lib.rs"), LIB).expect("lib.rs");
        std::fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        )
        .expect("Cargo.toml");
        let mut config = Config::default();
        config.model.base_url = server.openai_base_url();
        config.model.model = "test-model".into();
        config.model.max_attempts = 3;
        config.model.retry_base_delay_ms = 5;
        config.model.retry_max_delay_ms = 50;
        config.model.first_byte_timeout_ms = 30_000;
        // These tests are about the run's stages and faults; the tester and the model review
        // have their own end-to-end tests (`review_loop.rs`), and here they would only add a
        // cargo build and a security request to every run.
        config.tester.enabled = false;
        config.review.model = false;
        Self {
            server,
            _dir: dir,
            root,
            orchestrator: Orchestrator::new(),
            config,
        }
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.root.join(rel), text).expect("write a workspace file");
    }

    fn env_with(&self, editor: Arc<dyn Editor>) -> RunEnv {
        let models =
            Models::with_env(&self.config.model, &|_| None).expect("models for the test server");
        RunEnv {
            root: self.root.clone(),
            config: Arc::new(self.config.clone()),
            models: Some(Arc::new(models)),
            open: Arc::default(),
            index: None,
            editor,
        }
    }

    fn env(&self) -> RunEnv {
        self.env_with(Arc::new(FsEditor))
    }

    /// A goal run on `src/lib.rs` (lines, if given), asked to apply.
    fn request(&self, lines: Option<(usize, usize)>) -> RunRequest {
        RunRequest {
            kind: RunKind::Goal,
            goal: "make the answer 42".into(),
            selection: Some(Selection {
                file: self.root.join("src/lib.rs"),
                lines,
            }),
            paths: Vec::new(),
            plan_only: false,
            no_plan: false,
            apply: true,
            remove_line: None,
            apply_failing_tests: false,
            follow: None,
        }
    }

    async fn run(&self, request: RunRequest) -> RunOutcome {
        self.run_in(self.env(), request).await
    }

    async fn run_in(&self, env: RunEnv, request: RunRequest) -> RunOutcome {
        let handle = self
            .orchestrator
            .start(env, request)
            .expect("the run starts");
        tokio::time::timeout(WAIT, handle.outcome)
            .await
            .expect("the run ends in time")
            .expect("the run's task does not panic")
    }

    /// Every file of the workspace but the journals, with its bytes.
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(&self.root, &self.root, &mut out);
        out
    }

    fn requests_of(&self, agent: &str) -> Vec<RecordedRequest> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.header("x-conductor-agent") == Some(agent))
            .collect()
    }

    /// Waits until the server has received `n` requests from `agent`.
    async fn wait_for(&self, agent: &str, n: usize) {
        let start = Instant::now();
        while self.requests_of(agent).len() < n {
            assert!(
                start.elapsed() < WAIT,
                "no {n} {agent} request(s) arrived: {:?}",
                self.server.requests()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let entries = std::fs::read_dir(dir).expect("read a workspace folder");
    for entry in entries {
        let path = entry.expect("a folder entry").path();
        if path.file_name().is_some_and(|n| n == ".conductor") {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .expect("inside the root")
                .to_path_buf();
            out.insert(rel, std::fs::read(&path).expect("read a workspace file"));
        }
    }
}

/// The journal's events, after checking that it reads cleanly and tells the run's story from
/// `run_started` to an `outcome` that matches the run's.
fn story(outcome: &RunOutcome) -> Vec<Event> {
    let read = journal::read(&outcome.journal).expect("the journal reads");
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    let events: Vec<Event> = read.records.into_iter().map(|r| r.event).collect();
    match events.first() {
        Some(Event::RunStarted { run_id, .. }) => assert_eq!(run_id, &outcome.run_id),
        other => panic!("the journal starts with {other:?}"),
    }
    match events.last() {
        Some(Event::Outcome { state, message, .. }) => {
            assert_eq!(*state, outcome.state);
            assert_eq!(message, &outcome.message);
        }
        other => panic!("the journal ends with {other:?}"),
    }
    events
}

/// The `event` names of a journal, in order.
fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            serde_json::to_value(e).expect("an event serialises")["event"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The model requests of a journal, as (agent, outcome).
fn model_requests(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ModelRequest { agent, outcome, .. } => Some((agent.clone(), outcome.clone())),
            _ => None,
        })
        .collect()
}

/// The text of every message of a recorded chat request, joined.
fn prompt_text(request: &RecordedRequest) -> String {
    request.json()["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| m["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Checks a run that ended early: its state, its message, nothing presented, nothing applied,
/// the workspace unchanged, and a journal that ends with that state and never applied a file.
fn assert_ended_clean(
    rig: &Rig,
    outcome: &RunOutcome,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    state: RunState,
    says: &[&str],
) -> Vec<Event> {
    assert_eq!(outcome.state, state, "{}", outcome.message);
    for words in says {
        assert!(
            outcome.message.contains(words),
            "the message should say {words:?}: {}",
            outcome.message
        );
    }
    assert!(outcome.files.is_empty(), "{:?}", outcome.files);
    assert_eq!(&rig.files(), before, "the workspace changed");
    let events = story(outcome);
    assert!(
        !kinds(&events).iter().any(|k| k == "applied"),
        "{:?}",
        kinds(&events)
    );
    events
}

#[tokio::test]
async fn the_happy_path_plans_codes_reviews_and_applies_with_decisions_and_headers() {
    let rig = Rig::new().await;
    rig.server
        .push("planner", plan_reply(&["src/lib.rs"]).with_usage(100, 20));
    rig.server
        .push("coder", good_coder_reply().with_usage(200, 30));
    let outcome = rig.run(rig.request(None)).await;
    assert_eq!(outcome.state, RunState::Done, "{}", outcome.message);
    assert!(outcome.message.contains("applied"), "{}", outcome.message);
    assert_eq!(
        std::fs::read_to_string(rig.root.join("src/lib.rs")).expect("lib.rs"),
        "pub fn answer() -> u32 {\n    42\n}\n"
    );
    assert_eq!(outcome.files.len(), 1);
    assert_eq!(outcome.files[0].applied, Some(Ok(())));
    assert_eq!(outcome.decisions.len(), 1);
    assert_eq!(outcome.usage.prompt_tokens, 300);
    assert_eq!(outcome.usage.completion_tokens, 50);

    let events = story(&outcome);
    let kinds = kinds(&events);
    let at = |k: &str| {
        kinds
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("no {k} in {kinds:?}"))
    };
    assert!(at("plan") < at("edit_block"));
    assert!(at("edit_block") < at("decision"));
    assert!(at("decision") < at("applied"));
    assert!(at("tests") < at("applied"));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Decision { summary, file, agent, .. }
            if summary == "block 1: return 42" && file == "src/lib.rs" && agent == "coder"
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::EditBlock { status, base_hash: Some(_), .. } if status == "applied"
    )));
    assert_eq!(
        model_requests(&events),
        [
            ("planner".to_string(), "ok".to_string()),
            ("coder".into(), "ok".into())
        ]
    );
    let stages: Vec<RunState> = events
        .iter()
        .filter_map(|e| match e {
            Event::Stage { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    for s in [
        RunState::Planning,
        RunState::Coding,
        RunState::Reviewing,
        RunState::Testing,
        RunState::Presenting,
        RunState::Done,
    ] {
        assert!(stages.contains(&s), "{s} missing from {stages:?}");
    }

    let requests = rig.server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let agents: Vec<Option<&str>> = requests
        .iter()
        .map(|r| r.header("x-conductor-agent"))
        .collect();
    assert_eq!(agents, [Some("planner"), Some("coder")]);
    for r in &requests {
        assert_eq!(r.header("x-conductor-run"), Some(outcome.run_id.as_str()));
    }
    // The coder was shown the file it changes, numbered, as data.
    assert!(prompt_text(&requests[1]).contains("2|     41"));
}

#[tokio::test]
async fn a_refused_block_goes_back_once_with_its_reason_and_the_retry_fixes_it() {
    let rig = Rig::new().await;
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    rig.server.push(
        "coder",
        Reply::text(format!(
            "{}\n{}",
            block("src/lib.rs", "    40\n", "    42\n"),
            decisions(&[1])
        )),
    );
    rig.server.push("coder", good_coder_reply());
    let outcome = rig.run(rig.request(None)).await;
    assert_eq!(outcome.state, RunState::Done, "{}", outcome.message);
    assert_eq!(
        std::fs::read_to_string(rig.root.join("src/lib.rs")).expect("lib.rs"),
        "pub fn answer() -> u32 {\n    42\n}\n"
    );
    let statuses: Vec<(u32, &str)> = outcome
        .blocks
        .iter()
        .map(|b| (b.attempt, b.status.as_str()))
        .collect();
    assert_eq!(statuses, [(1, "refused"), (2, "applied")]);
    let reason = outcome.blocks[0]
        .reason
        .clone()
        .expect("a refusal says why");
    let coder = rig.requests_of("coder");
    assert_eq!(coder.len(), 2);
    assert!(!prompt_text(&coder[0]).contains(&reason));
    assert!(
        prompt_text(&coder[1]).contains(&reason),
        "the retry's prompt should quote {reason:?}"
    );
    let events = story(&outcome);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::EditBlock { status, reason: Some(r), attempt: 1, .. } if status == "refused" && *r == reason
    )));
}

#[tokio::test]
async fn a_coder_reply_with_no_blocks_fails_after_one_corrective_retry() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    for _ in 0..2 {
        rig.server.push("coder", Reply::text(decisions(&[])));
    }
    let outcome = rig.run(rig.request(None)).await;
    let events = assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Failed,
        &[
            "coder",
            "did not follow the protocol",
            "no edit blocks",
            "nothing was applied",
            "[model.agents.coder]",
        ],
    );
    let coder = rig.requests_of("coder");
    assert_eq!(coder.len(), 2, "one corrective retry, no more");
    assert!(prompt_text(&coder[1]).contains("could not be used: no edit blocks found"));
    assert_eq!(
        model_requests(&events),
        [
            ("planner".to_string(), "ok".to_string()),
            ("coder".into(), "ok".into()),
            ("coder".into(), "ok".into())
        ]
    );
}

#[tokio::test]
async fn a_prose_only_coder_reply_fails_and_says_what_to_do() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    for _ in 0..2 {
        rig.server.push(
            "coder",
            Reply::text("You should change the 41 in answer() to 42; that is all."),
        );
    }
    let outcome = rig.run(rig.request(None)).await;
    assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Failed,
        &["no edit blocks", "stronger model"],
    );
    assert_eq!(rig.requests_of("coder").len(), 2);
    assert!(outcome.blocks.is_empty());
}

#[tokio::test]
async fn blocks_for_a_file_that_does_not_exist_are_refused_and_nothing_is_created() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    for _ in 0..2 {
        rig.server.push(
            "coder",
            Reply::text(format!(
                "{}\n{}",
                block("src/missing.rs", "fn gone() {}\n", "fn back() {}\n"),
                decisions(&[1])
            )),
        );
    }
    let outcome = rig.run(rig.request(None)).await;
    let events = assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Failed,
        &[
            "could not be applied, even after a retry",
            "src/missing.rs",
            "nothing was applied",
        ],
    );
    assert!(!rig.root.join("src/missing.rs").exists());
    let refused = events
        .iter()
        .filter(|e| matches!(e, Event::EditBlock { status, file, .. } if status == "refused" && file == "src/missing.rs"))
        .count();
    assert_eq!(refused, 2, "both attempts journalled as refused");
    // The retry told the coder why.
    let coder = rig.requests_of("coder");
    assert_eq!(coder.len(), 2);
    assert!(prompt_text(&coder[1]).contains("block 1 (src/missing.rs) was not applied"));
}

#[tokio::test]
async fn invalid_plan_json_gets_a_corrective_retry_then_fails() {
    let rig = Rig::new().await;
    let before = rig.files();
    for _ in 0..2 {
        rig.server.push(
            "planner",
            Reply::text("```json\n{\"summary\": \"half a plan\", \"steps\": [\n```\n"),
        );
    }
    let outcome = rig.run(rig.request(None)).await;
    let events = assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Failed,
        &[
            "planner",
            "did not follow the protocol",
            "[model.agents.planner]",
        ],
    );
    assert!(outcome.plan.is_none());
    let planner = rig.requests_of("planner");
    assert_eq!(planner.len(), 2);
    assert!(prompt_text(&planner[1]).contains("Your previous reply could not be used"));
    assert!(rig.requests_of("coder").is_empty(), "no plan, no coding");
    assert!(!kinds(&events).iter().any(|k| k == "plan"));
}

#[tokio::test]
async fn invalid_plan_json_that_the_retry_corrects_goes_on() {
    let rig = Rig::new().await;
    rig.server
        .push("planner", Reply::text("I think we should just edit it."));
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    rig.server.push("coder", good_coder_reply());
    let outcome = rig.run(rig.request(None)).await;
    assert_eq!(outcome.state, RunState::Done, "{}", outcome.message);
    assert_eq!(rig.requests_of("planner").len(), 2);
    let events = story(&outcome);
    assert_eq!(
        model_requests(&events)
            .iter()
            .filter(|(a, _)| a == "planner")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_reply_cut_off_mid_block_fails_without_a_partial_edit() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    // Two blocks, the second cut off in its REPLACE part: the first must not apply alone.
    let cut = format!(
        "{}\nsrc/lib.rs\n<<<<<<< SEARCH\npub fn answer() -> u32 {{\n=======\npub fn answ",
        block("src/lib.rs", "    41\n", "    42\n")
    );
    rig.server.push("coder", Reply::text(cut.clone()));
    rig.server.push("coder", Reply::text(cut));
    let outcome = rig.run(rig.request(None)).await;
    assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Failed,
        &["unterminated", "nothing was applied"],
    );
    assert!(outcome.blocks.is_empty(), "{:?}", outcome.blocks);
}

#[tokio::test]
async fn a_stream_cut_off_mid_block_fails_without_a_partial_edit() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    let full = format!(
        "{}\n{}",
        block("src/lib.rs", "    41\n", "    42\n"),
        decisions(&[1])
    );
    // The stream stops after a few events, inside the first block.
    for _ in 0..2 {
        rig.server.push(
            "coder",
            Reply::text(full.clone())
                .with_chunk_chars(8)
                .with_fault(Fault::TruncatedStream { after_events: 3 }),
        );
    }
    let outcome = rig.run(rig.request(None)).await;
    assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Failed,
        &[
            "the coder model failed",
            "cannot be read",
            "nothing was applied",
            "conductor doctor",
        ],
    );
    assert!(outcome.blocks.is_empty(), "{:?}", outcome.blocks);
    // The model layer does not retry a stream that broke after it began (its text was already
    // delivered), so the run ends after the one request.
    assert_eq!(rig.requests_of("coder").len(), 1);
}

#[tokio::test]
async fn a_decision_list_that_does_not_match_the_blocks_fails() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    for _ in 0..2 {
        rig.server.push(
            "coder",
            Reply::text(format!(
                "{}\n{}",
                block("src/lib.rs", "    41\n", "    42\n"),
                decisions(&[2])
            )),
        );
    }
    let outcome = rig.run(rig.request(None)).await;
    assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Failed,
        &["decision for block 2 does not match an edit block"],
    );
    let coder = rig.requests_of("coder");
    assert_eq!(coder.len(), 2);
    assert!(prompt_text(&coder[1]).contains("decision for block 2"));
}

#[tokio::test]
async fn a_plan_whose_steps_form_a_cycle_or_name_unknown_steps_fails() {
    for (steps, says) in [
        (
            serde_json::json!([
                {"id": "s1", "title": "a", "agent": "coder", "targets": ["src/lib.rs"], "depends_on": ["s2"]},
                {"id": "s2", "title": "b", "agent": "coder", "targets": ["src/lib.rs"], "depends_on": ["s1"]},
            ]),
            "form a cycle",
        ),
        (
            serde_json::json!([
                {"id": "s1", "title": "a", "agent": "coder", "targets": ["src/lib.rs"], "depends_on": ["s9"]},
            ]),
            "depends on \"s9\", which is not a step id",
        ),
    ] {
        let rig = Rig::new().await;
        let before = rig.files();
        let plan =
            serde_json::json!({"summary": "x", "steps": steps, "risks": [], "tradeoffs": []});
        for _ in 0..2 {
            rig.server
                .push("planner", Reply::text(format!("```json\n{plan}\n```\n")));
        }
        let outcome = rig.run(rig.request(None)).await;
        assert_ended_clean(
            &rig,
            &outcome,
            &before,
            RunState::Failed,
            &[says, "planner"],
        );
        assert_eq!(rig.requests_of("planner").len(), 2);
        assert!(rig.requests_of("coder").is_empty());
    }
}

#[tokio::test]
async fn a_provider_that_fails_mid_run_after_its_retries_ends_the_run() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    for _ in 0..3 {
        rig.server.push("coder", Reply::fault(Fault::status(500)));
    }
    let outcome = rig.run(rig.request(None)).await;
    let events = assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Failed,
        &["the coder model failed", "500", "conductor doctor"],
    );
    assert_eq!(
        rig.requests_of("coder").len(),
        3,
        "max_attempts = 3, then it stops"
    );
    let requests = model_requests(&events);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].0, "coder");
    assert!(requests[1].1.contains("500"), "{requests:?}");
}

#[tokio::test]
async fn a_budget_exhausted_mid_run_stops_before_the_next_request() {
    let mut rig = Rig::new().await;
    rig.config.model.max_tokens = 500;
    rig.config.model.budget.max_tokens = 6_000;
    let before = rig.files();
    // The planner's reply uses most of the budget; the coder's request cannot fit.
    rig.server.push(
        "planner",
        plan_reply(&["src/lib.rs"]).with_usage(5_500, 100),
    );
    rig.server.push("coder", good_coder_reply());
    let outcome = rig.run(rig.request(None)).await;
    let events = assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Failed,
        &["budget", "model.budget.max_tokens", "nothing was applied"],
    );
    assert!(
        rig.requests_of("coder").is_empty(),
        "the request was not sent"
    );
    assert_eq!(rig.server.queued("coder"), 1);
    assert_eq!(outcome.usage.prompt_tokens, 5_500);
    match events.last() {
        Some(Event::Outcome { usage, .. }) => assert_eq!(usage.prompt_tokens, 5_500),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_wall_clock_limit_stops_a_slow_run() {
    let mut rig = Rig::new().await;
    rig.config.run.wall_clock_secs = 1;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    rig.server.push(
        "coder",
        good_coder_reply().with_latency(Duration::from_secs(8)),
    );
    let started = Instant::now();
    let outcome = rig.run(rig.request(None)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped at the limit, not after the reply: {:?}",
        started.elapsed()
    );
    assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Failed,
        &["wall-clock limit of 1 s", "run.wall_clock_secs"],
    );
}

/// One finding a run left: its run, file, line, rule and message.
type LeftFinding = (String, String, usize, String, String);

/// Writes like the file-system editor, and records what a run publishes at its end.
#[derive(Default)]
struct Published {
    /// (run, file, line, rule, message) of each finding left behind.
    findings: std::sync::Mutex<Vec<LeftFinding>>,
    /// The runs whose decisions changed.
    decisions: std::sync::Mutex<Vec<String>>,
}

impl Editor for Published {
    fn apply<'a>(
        &'a self,
        change: &'a ChangeSet,
        cancel: &'a CancellationToken,
    ) -> EditorFuture<'a, Applied> {
        FsEditor.apply(change, cancel)
    }

    fn progress(&self, _stage: &str, _message: &str, _percentage: Option<u32>) {}

    fn show<'a>(&'a self, _path: &'a Path) -> EditorFuture<'a, bool> {
        Box::pin(async { false })
    }

    fn publish_findings(
        &self,
        run: &str,
        left: &[conductor::orchestrator::existing::LeftBehind<'_>],
    ) {
        let mut findings = self.findings.lock().expect("lock");
        for file in left {
            for f in &file.findings {
                findings.push((
                    run.to_string(),
                    file.file.path.clone(),
                    f.line,
                    f.rule_id.clone(),
                    f.message.clone(),
                ));
            }
        }
    }

    fn decisions_changed<'a>(&'a self, run: &'a str) -> EditorFuture<'a, ()> {
        self.decisions.lock().expect("lock").push(run.to_string());
        Box::pin(async {})
    }
}

/// Cancels a run through the registry when its stage is entered (it learns the run's id from
/// the progress message, `run <id>: …`), and otherwise writes like the file-system editor.
struct CancelAt {
    stage: &'static str,
    orchestrator: Arc<Orchestrator>,
    fired: AtomicBool,
}

impl Editor for CancelAt {
    fn apply<'a>(
        &'a self,
        change: &'a ChangeSet,
        cancel: &'a CancellationToken,
    ) -> EditorFuture<'a, Applied> {
        FsEditor.apply(change, cancel)
    }

    fn progress(&self, stage: &str, message: &str, _percentage: Option<u32>) {
        if stage != self.stage || self.fired.swap(true, Ordering::SeqCst) {
            return;
        }
        // One run at a time per rig: the one in flight is this one.
        let id = self
            .orchestrator
            .active()
            .first()
            .map(|r| r.id.clone())
            .unwrap_or_default();
        assert!(
            self.orchestrator.cancel(&id),
            "no run {id:?} in flight: {message}"
        );
    }

    fn show<'a>(&'a self, _path: &'a Path) -> EditorFuture<'a, bool> {
        Box::pin(async { false })
    }
}

#[tokio::test]
async fn a_cancel_in_each_stage_applies_nothing() {
    for stage in ["planning", "coding", "reviewing", "testing", "presenting"] {
        let rig = Rig::new().await;
        let before = rig.files();
        rig.server.push("planner", plan_reply(&["src/lib.rs"]));
        rig.server.push("coder", good_coder_reply());
        let editor = Arc::new(CancelAt {
            stage,
            orchestrator: Arc::clone(&rig.orchestrator),
            fired: AtomicBool::new(false),
        });
        let outcome = rig.run_in(rig.env_with(editor), rig.request(None)).await;
        let events = assert_ended_clean(
            &rig,
            &outcome,
            &before,
            RunState::Cancelled,
            &["cancelled", "nothing was applied"],
        );
        // The run stopped in the stage it was cancelled in: it entered no later stage.
        let order = ["planning", "coding", "reviewing", "testing", "presenting"];
        let at = order.iter().position(|s| *s == stage).unwrap_or(0);
        for later in &order[at + 1..] {
            assert!(
                !events
                    .iter()
                    .any(|e| matches!(e, Event::Stage { state, .. } if state.as_str() == *later)),
                "cancelled in {stage}, yet entered {later}: {:?}",
                kinds(&events)
            );
        }
        assert!(rig.orchestrator.active().is_empty());
    }
}

#[tokio::test]
async fn a_cancel_while_the_planner_reply_is_delayed_stops_at_once() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push(
        "planner",
        plan_reply(&["src/lib.rs"]).with_latency(Duration::from_secs(15)),
    );
    let handle = rig
        .orchestrator
        .start(rig.env(), rig.request(None))
        .expect("starts");
    rig.wait_for("planner", 1).await;
    let asked = Instant::now();
    handle.cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(5), handle.outcome)
        .await
        .expect("the cancel is prompt")
        .expect("no panic");
    assert!(asked.elapsed() < Duration::from_secs(5));
    let events = assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Cancelled,
        &["cancelled", "nothing was applied"],
    );
    assert!(outcome.plan.is_none());
    assert!(
        model_requests(&events)
            .iter()
            .any(|(a, o)| a == "planner" && o != "ok")
    );
}

#[tokio::test]
async fn a_cancel_while_the_coder_reply_is_delayed_applies_nothing() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    rig.server.push(
        "coder",
        good_coder_reply().with_latency(Duration::from_secs(15)),
    );
    let handle = rig
        .orchestrator
        .start(rig.env(), rig.request(None))
        .expect("starts");
    rig.wait_for("coder", 1).await;
    assert!(rig.orchestrator.cancel(&handle.id));
    let outcome = tokio::time::timeout(Duration::from_secs(5), handle.outcome)
        .await
        .expect("the cancel is prompt")
        .expect("no panic");
    assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Cancelled,
        &["cancelled", "nothing was applied"],
    );
    assert!(outcome.plan.is_some(), "the plan is kept for the record");
    assert!(outcome.decisions.is_empty());
}

#[tokio::test]
async fn a_file_changed_on_disk_while_coding_is_refused_and_the_others_apply() {
    let rig = Rig::new().await;
    rig.write("src/a.rs", "pub const A: u32 = 1;\n");
    rig.write("src/b.rs", "pub const B: u32 = 1;\n");
    rig.server
        .push("planner", plan_reply(&["src/a.rs", "src/b.rs"]));
    rig.server.push(
        "coder",
        Reply::text(format!(
            "{}\n{}\n{}",
            block(
                "src/a.rs",
                "pub const A: u32 = 1;\n",
                "pub const A: u32 = 2;\n"
            ),
            block(
                "src/b.rs",
                "pub const B: u32 = 1;\n",
                "pub const B: u32 = 2;\n"
            ),
            decisions(&[1, 2])
        ))
        .with_latency(Duration::from_millis(800)),
    );
    let handle = rig
        .orchestrator
        .start(rig.env(), rig.request(None))
        .expect("starts");
    rig.wait_for("coder", 1).await;
    // The developer edits a.rs while the coder is working on it.
    rig.write("src/a.rs", "pub const A: u32 = 7; // mine\n");
    let outcome = tokio::time::timeout(WAIT, handle.outcome)
        .await
        .expect("ends")
        .expect("no panic");
    assert_eq!(outcome.state, RunState::Done, "{}", outcome.message);
    assert_eq!(
        std::fs::read_to_string(rig.root.join("src/a.rs")).expect("a.rs"),
        "pub const A: u32 = 7; // mine\n",
        "the developer's edit is kept"
    );
    assert_eq!(
        std::fs::read_to_string(rig.root.join("src/b.rs")).expect("b.rs"),
        "pub const B: u32 = 2;\n"
    );
    let applied: BTreeMap<&str, &Option<Result<(), String>>> = outcome
        .files
        .iter()
        .map(|f| (f.path.as_str(), &f.applied))
        .collect();
    assert_eq!(applied["src/b.rs"], &Some(Ok(())));
    let why = match applied["src/a.rs"] {
        Some(Err(why)) => why.clone(),
        other => panic!("a.rs should be refused: {other:?}"),
    };
    assert!(why.contains("changed on disk"), "{why}");
    // The message says what was not applied and what to do.
    for words in ["src/a.rs", "not applied", "changed", "Run again"] {
        assert!(
            outcome.message.contains(words),
            "the message should say {words:?}: {}",
            outcome.message
        );
    }
    assert_eq!(conductor::cli::run::exit_code(&outcome), 1);
    let events = story(&outcome);
    let applied: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Applied { file, result } => Some((file.clone(), result.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert!(applied.contains(&("src/b.rs".into(), "applied".into())));
    assert!(
        applied
            .iter()
            .any(|(f, r)| f == "src/a.rs" && r.contains("changed on disk"))
    );
}

#[tokio::test]
async fn a_second_run_on_an_overlapping_range_is_refused_naming_the_first() {
    let rig = Rig::new().await;
    rig.write("src/other.rs", "pub fn other() {}\n");
    rig.server.push(
        "planner",
        plan_reply(&["src/lib.rs"]).with_latency(Duration::from_secs(15)),
    );
    let first = rig
        .orchestrator
        .start(rig.env(), rig.request(Some((1, 2))))
        .expect("the first run starts");
    rig.wait_for("planner", 1).await;

    let refused = rig
        .orchestrator
        .start(rig.env(), rig.request(Some((2, 3))))
        .expect_err("an overlapping run is refused");
    match &refused {
        StartError::Overlap { other, file, .. } => {
            assert_eq!(other, &first.id);
            assert_eq!(file, "src/lib.rs");
        }
        other => panic!("{other:?}"),
    }
    let shown = refused.to_string();
    assert!(shown.contains(&first.id), "{shown}");
    assert!(shown.contains("cancel"), "{shown}");

    // A run on another file proceeds meanwhile.
    rig.server.push("planner", plan_reply(&["src/other.rs"]));
    let mut other = rig.request(None);
    other.selection = Some(Selection {
        file: rig.root.join("src/other.rs"),
        lines: None,
    });
    other.plan_only = true;
    let other = rig.run(other).await;
    assert_eq!(other.state, RunState::Done, "{}", other.message);

    // Once the first run ends, its range is free again.
    first.cancel.cancel();
    let first = tokio::time::timeout(WAIT, first.outcome)
        .await
        .expect("ends")
        .expect("no panic");
    assert_eq!(first.state, RunState::Cancelled);
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    let mut again = rig.request(Some((2, 3)));
    again.plan_only = true;
    let again = rig.run(again).await;
    assert_eq!(again.state, RunState::Done, "{}", again.message);
    assert_eq!(
        std::fs::read_to_string(rig.root.join("src/lib.rs")).expect("lib.rs"),
        LIB
    );
}

// The real binary.

#[tokio::test]
async fn a_run_without_a_selection_is_refused_the_file_another_run_is_changing() {
    let rig = Rig::new().await;
    let before = rig.files();
    // The first run changes src/lib.rs in step s1, then waits on the model for step s2.
    let plan = serde_json::json!({
        "summary": "two steps on one file",
        "steps": [
            {"id": "s1", "title": "Return 42", "agent": "coder", "targets": ["src/lib.rs"], "depends_on": []},
            {"id": "s2", "title": "Document it", "agent": "coder", "targets": ["src/lib.rs"], "depends_on": ["s1"]}
        ],
        "risks": [], "tradeoffs": []
    });
    rig.server
        .push("planner", Reply::text(format!("```json\n{plan}\n```\n")));
    rig.server.push("coder", good_coder_reply());
    rig.server.push(
        "coder",
        good_coder_reply().with_latency(Duration::from_secs(15)),
    );
    let no_selection = || {
        let mut request = rig.request(None);
        request.selection = None;
        request
    };
    let first = rig
        .orchestrator
        .start(rig.env(), no_selection())
        .expect("the first run starts");
    rig.wait_for("coder", 2).await;

    // The second run has no selection, so it claims nothing at start; it is refused when its
    // change reaches the file the first run is changing.
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    rig.server.push("coder", good_coder_reply());
    let second = rig.run(no_selection()).await;
    assert_eq!(second.state, RunState::Failed, "{}", second.message);
    assert!(
        second.message.contains(&first.id) && second.message.contains("src/lib.rs"),
        "{}",
        second.message
    );
    assert!(second.files.is_empty());

    first.cancel.cancel();
    let first = tokio::time::timeout(WAIT, first.outcome)
        .await
        .expect("ends")
        .expect("no panic");
    assert_eq!(first.state, RunState::Cancelled);
    assert_eq!(&rig.files(), &before, "nothing written");
}

const VULNERABLE: &str = "pub fn client() -> reqwest::Client {\n    reqwest::Client::builder()\n        .danger_accept_invalid_certs(true)\n        .build()\n        .expect(\"client\")\n}\n";

/// A small crate with one finding that has a mechanical fix.
fn vulnerable_crate() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("src")).expect("src");
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"vulnerable\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .expect("Cargo.toml");
    std::fs::write(dir.path().join("src/lib.rs"), VULNERABLE).expect("lib.rs");
    dir
}

fn conductor(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_conductor"));
    command
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("CONDUCTOR_LOG");
    command
}

#[test]
fn conductor_fix_without_a_model_shows_the_mechanical_fix_and_writes_only_with_apply() {
    let dir = vulnerable_crate();
    let lib = dir.path().join("src/lib.rs");

    let shown = conductor(dir.path())
        .arg("fix")
        .arg(dir.path())
        .output()
        .expect("conductor fix runs");
    let stdout = String::from_utf8_lossy(&shown.stdout);
    let stderr = String::from_utf8_lossy(&shown.stderr);
    assert_eq!(shown.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("-        .danger_accept_invalid_certs(true)"),
        "{stdout}"
    );
    assert!(stdout.contains("1 finding(s) fixed"), "{stdout}");
    assert!(stdout.contains("Nothing was written"), "{stdout}");
    assert!(stdout.contains("Journal: "), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&lib).expect("lib.rs"),
        VULNERABLE,
        "nothing written without --apply"
    );

    let applied = conductor(dir.path())
        .arg("fix")
        .arg(dir.path())
        .arg("--apply")
        .output()
        .expect("conductor fix --apply runs");
    let stdout = String::from_utf8_lossy(&applied.stdout);
    assert_eq!(applied.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Written: src/lib.rs"), "{stdout}");
    let fixed = std::fs::read_to_string(&lib).expect("lib.rs");
    assert!(
        !fixed.contains("danger_accept_invalid_certs(true)"),
        "{fixed}"
    );
    assert!(fixed.starts_with("pub fn client() -> reqwest::Client {\n"));

    // Nothing left to fix: done, and the runs are listed.
    let again = conductor(dir.path())
        .arg("fix")
        .arg(dir.path())
        .output()
        .expect("conductor fix runs again");
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("no security findings to fix"), "{stdout}");
    let runs = conductor(dir.path())
        .args(["runs", "--format", "json"])
        .output()
        .expect("conductor runs");
    let listed: Value = serde_json::from_slice(&runs.stdout).expect("runs as JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
}

#[test]
fn conductor_run_without_a_model_exits_2_naming_the_keys_to_set() {
    let dir = vulnerable_crate();
    let out = conductor(dir.path())
        .args(["run", "--goal", "add a doc comment"])
        .output()
        .expect("conductor run runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for words in [
        "no model is configured",
        "`[model] base_url`",
        "`model`",
        "conductor.toml",
        "conductor doctor",
    ] {
        assert!(stderr.contains(words), "{words:?} missing from {stderr}");
    }
    assert!(
        !dir.path().join(".conductor").exists(),
        "no run was started, so no journal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductor_run_format_json_against_the_test_server_has_the_issue_keys() {
    let server = ModelServer::start().await.expect("test model server");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("src")).expect("src");
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .expect("Cargo.toml");
    std::fs::write(dir.path().join("src/lib.rs"), LIB).expect("lib.rs");
    std::fs::write(
        dir.path().join("conductor.toml"),
        format!(
            "[model]\nbase_url = \"{}\"\nmodel = \"test-model\"\nmax_attempts = 2\nretry_base_delay_ms = 5\n[tester]\nenabled = false\n[review]\nmodel = false\n",
            server.openai_base_url()
        ),
    )
    .expect("conductor.toml");
    server.push("planner", plan_reply(&["src/lib.rs"]).with_usage(120, 40));
    server.push("coder", good_coder_reply().with_usage(300, 60));
    let root = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        conductor(&root)
            .args([
                "run",
                "--goal",
                "make the answer 42",
                "--file",
                "src/lib.rs",
                "--format",
                "json",
            ])
            .output()
    })
    .await
    .expect("joined")
    .expect("conductor run runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    for key in [
        "run_id",
        "status",
        "plan",
        "edits",
        "blocks",
        "decisions",
        "findings",
        "tests",
        "usage",
        "journal",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json:#}");
    }
    assert_eq!(json["status"], "done");
    assert_eq!(json["plan"]["steps"][0]["id"], "s1");
    assert_eq!(json["edits"][0]["file"], "src/lib.rs");
    let diff = json["edits"][0]["diff"].as_str().expect("a diff");
    assert!(
        diff.contains("-    41\n") && diff.contains("+    42\n"),
        "{diff}"
    );
    assert_eq!(json["blocks"][0]["status"], "applied");
    assert_eq!(json["decisions"][0]["summary"], "block 1: return 42");
    assert_eq!(json["usage"]["prompt_tokens"], 420);
    assert_eq!(json["usage"]["completion_tokens"], 100);
    assert!(json["usage"]["cost_usd"].is_number());
    assert!(json["tests"]["status"].is_string());
    let journal = PathBuf::from(json["journal"].as_str().expect("a journal path"));
    let read = journal::read(&journal).expect("the journal reads");
    assert!(matches!(
        read.records.first().map(|r| &r.event),
        Some(Event::RunStarted { run_id, .. }) if json["run_id"] == run_id.as_str()
    ));
    assert!(matches!(
        read.records.last().map(|r| &r.event),
        Some(Event::Outcome {
            state: RunState::Done,
            ..
        })
    ));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("src/lib.rs")).expect("lib.rs"),
        LIB,
        "nothing written without --apply"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(
            r.header("x-conductor-run"),
            json["run_id"].as_str(),
            "{:?}",
            r.headers
        );
    }
}

/// A coder reply that does the goal and also turns TLS verification off (a new high finding).
fn insecure_coder_reply() -> Reply {
    Reply::text(format!(
        "{}\n{}",
        block(
            "src/lib.rs",
            "    41\n",
            "    let _client = reqwest::Client::builder().danger_accept_invalid_certs(true);\n    42\n"
        ),
        decisions(&[1])
    ))
}

#[tokio::test]
async fn a_new_high_finding_goes_back_to_the_coder_and_the_same_finding_twice_ends_the_loop() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    rig.server.push("coder", insecure_coder_reply());
    // The improve round changes something else and leaves the finding in place.
    rig.server.push(
        "coder",
        Reply::text(format!(
            "{}\n{}",
            block("src/lib.rs", "    42\n", "    43\n"),
            decisions(&[1])
        )),
    );
    let mut request = rig.request(None);
    request.apply = false;
    let editor = Arc::new(Published::default());
    let outcome = rig.run_in(rig.env_with(editor.clone()), request).await;
    assert_eq!(outcome.state, RunState::Done, "{}", outcome.message);
    assert!(outcome.has_unresolved_high(), "{:?}", outcome.findings);
    assert_eq!(conductor::cli::run::exit_code(&outcome), 1);
    // The run itself told its editor what it left: the finding, on the line of the user's text
    // where its hunk would go (the change was not applied), and that its decisions changed.
    let published = editor.findings.lock().expect("lock").clone();
    assert_eq!(published.len(), 1, "{published:?}");
    let (run, file, line, rule, message) = &published[0];
    assert_eq!(run, &outcome.run_id);
    assert_eq!(file, "src/lib.rs");
    assert_eq!(rule, "rust/tls-verification-disabled");
    assert!(
        message.starts_with("the proposed change (not applied) brings this in at its line"),
        "{message}"
    );
    let text = std::fs::read_to_string(rig.root.join("src/lib.rs")).expect("read");
    assert!(
        text.lines().nth(line - 1).is_some_and(|l| l.contains("41")),
        "line {line} is where the insecure line would go, in {text}"
    );
    assert_eq!(
        *editor.decisions.lock().expect("lock"),
        vec![outcome.run_id.clone()]
    );
    assert_eq!(&rig.files(), &before, "nothing written without apply");
    let coder = rig.requests_of("coder");
    assert_eq!(
        coder.len(),
        2,
        "one improve round, then the loop stops: the same finding came back"
    );
    assert!(
        prompt_text(&coder[1]).contains("rust/tls-verification-disabled"),
        "the improve round quotes the finding"
    );
    let events = story(&outcome);
    let feedback: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Feedback { summary, .. } => Some(summary.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(feedback.len(), 2, "{feedback:?}");
    assert!(
        feedback[1].contains("the same findings came back"),
        "{feedback:?}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Stage {
            state: RunState::Improving,
            ..
        }
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Finding { status, severity, .. } if status == "new" && severity == "high"
    )));
}

#[tokio::test]
async fn a_change_that_introduces_a_high_finding_is_shown_but_not_written_even_with_apply() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    rig.server.push("coder", insecure_coder_reply());
    // The improve round leaves the finding in place.
    rig.server.push(
        "coder",
        Reply::text(format!(
            "{}\n{}",
            block("src/lib.rs", "    42\n", "    43\n"),
            decisions(&[1])
        )),
    );
    let mut request = rig.request(None);
    request.apply = true;
    let outcome = rig.run(request).await;
    assert_eq!(outcome.state, RunState::Done, "{}", outcome.message);
    assert!(
        outcome.message.contains("not applied") && outcome.message.contains("high"),
        "{}",
        outcome.message
    );
    assert!(!outcome.files.is_empty(), "the change is still shown");
    assert!(outcome.files.iter().all(|f| f.applied.is_none()));
    assert_eq!(&rig.files(), &before, "nothing written");
    assert_eq!(conductor::cli::run::exit_code(&outcome), 1);
    assert!(
        !story(&outcome)
            .iter()
            .any(|e| matches!(e, Event::Applied { .. })),
        "no applied event"
    );
}

#[tokio::test]
async fn a_cancel_in_the_improving_stage_applies_nothing() {
    let rig = Rig::new().await;
    let before = rig.files();
    rig.server.push("planner", plan_reply(&["src/lib.rs"]));
    rig.server.push("coder", insecure_coder_reply());
    rig.server.push("coder", good_coder_reply());
    let editor = Arc::new(CancelAt {
        stage: "improving",
        orchestrator: Arc::clone(&rig.orchestrator),
        fired: AtomicBool::new(false),
    });
    let outcome = rig.run_in(rig.env_with(editor), rig.request(None)).await;
    let events = assert_ended_clean(
        &rig,
        &outcome,
        &before,
        RunState::Cancelled,
        &["cancelled", "nothing was applied"],
    );
    assert_eq!(rig.requests_of("coder").len(), 1, "no improve request sent");
    // The run tests before it improves; after the cancel in `improving` no stage but the end.
    let stages: Vec<RunState> = events
        .iter()
        .filter_map(|e| match e {
            Event::Stage { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    let improving = stages
        .iter()
        .position(|s| *s == RunState::Improving)
        .expect("an improving stage");
    assert_eq!(
        &stages[improving + 1..],
        [RunState::Cancelled],
        "{stages:?}"
    );
}

/// Holds the change like an editor showing a preview nobody answers, and cancels the run
/// (named in the change's label, `Conductor run <id>: …`) while it waits, as a user who cancels
/// with the preview still open. Writes nothing.
struct CancelWhileHeld {
    orchestrator: Arc<Orchestrator>,
    labels: std::sync::Mutex<Vec<String>>,
}

impl Editor for CancelWhileHeld {
    fn apply<'a>(
        &'a self,
        change: &'a ChangeSet,
        cancel: &'a CancellationToken,
    ) -> EditorFuture<'a, Applied> {
        Box::pin(async move {
            self.labels
                .lock()
                .expect("labels")
                .push(change.label.clone());
            let id = change
                .label
                .strip_prefix("Conductor run ")
                .and_then(|l| l.split_once(':'))
                .map(|(id, _)| id)
                .unwrap_or_default();
            assert!(
                self.orchestrator.cancel(id),
                "no run {id:?}: {}",
                change.label
            );
            cancel.cancelled().await;
            Applied::Cancelled
        })
    }

    fn progress(&self, _stage: &str, _message: &str, _percentage: Option<u32>) {}

    fn show<'a>(&'a self, _path: &'a Path) -> EditorFuture<'a, bool> {
        Box::pin(async { false })
    }
}

#[tokio::test]
async fn a_cancel_while_the_editor_holds_the_change_says_it_may_still_apply() {
    let rig = Rig::new().await;
    rig.write("src/a.rs", "pub const A: u32 = 1;\n");
    rig.write("src/b.rs", "pub const B: u32 = 1;\n");
    let before = rig.files();
    rig.server
        .push("planner", plan_reply(&["src/a.rs", "src/b.rs"]));
    rig.server.push(
        "coder",
        Reply::text(format!(
            "{}\n{}\n{}",
            block(
                "src/a.rs",
                "pub const A: u32 = 1;\n",
                "pub const A: u32 = 2;\n"
            ),
            block(
                "src/b.rs",
                "pub const B: u32 = 1;\n",
                "pub const B: u32 = 2;\n"
            ),
            decisions(&[1, 2])
        )),
    );
    let editor = Arc::new(CancelWhileHeld {
        orchestrator: Arc::clone(&rig.orchestrator),
        labels: Default::default(),
    });
    let outcome = rig
        .run_in(rig.env_with(editor.clone()), rig.request(None))
        .await;
    assert_eq!(outcome.state, RunState::Cancelled, "{}", outcome.message);
    // Both files went to the editor as one change set.
    assert_eq!(editor.labels.lock().expect("labels").len(), 1);
    assert_eq!(rig.files(), before, "the held change wrote nothing");
    // The message must not claim that nothing was applied: the editor may still apply it.
    assert!(
        !outcome.message.contains("nothing was applied"),
        "{}",
        outcome.message
    );
    for words in ["src/a.rs", "src/b.rs", "still applies"] {
        assert!(
            outcome.message.contains(words),
            "the message should say {words:?}: {}",
            outcome.message
        );
    }
    let events = story(&outcome);
    let unknown = events
        .iter()
        .filter(|e| matches!(e, Event::Applied { result, .. } if result.starts_with("unknown")))
        .count();
    assert_eq!(
        unknown, 2,
        "the journal says what became of each file is unknown"
    );
}
