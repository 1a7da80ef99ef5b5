//! Benchmark of a whole run with the loopback model server answering at once: plan, context
//! bundle, coder reply, edit application to the in-memory copy, static review of the changed
//! file before and after, journal — on a 1,000-line file. Then 20 runs at once on 20 files
//! (one workspace each, one provider with room for all of them), to show that none waits for
//! another. Conductor's own time is the run's wall time minus the time its model requests took
//! (from the reply latencies the journal records); both are printed.
//!
//! Run: `cargo bench --bench runs`

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conductor::config::Config;
use conductor::context::WorkspaceIndex;
use conductor::editor::FsEditor;
use conductor::journal::{self, Event, RunState};
use conductor::llm::{ModelSettings, Models, ProviderKind};
use conductor::orchestrator::{Orchestrator, RunEnv, RunKind, RunRequest, Selection};
use conductor::testkit::{ModelServer, Reply};

/// A Rust file of about `lines` lines with numbered, unique items.
fn rust_file(lines: usize) -> String {
    let mut out = String::from("//! Generated records for the benchmark.\n\nuse std::fmt;\n\n");
    let mut i = 0usize;
    while out.matches('\n').count() < lines {
        out.push_str(&format!(
            "/// Record {i}.\n#[derive(Debug, Clone)]\npub struct Record{i} {{\n    pub id: u64,\n    pub name: String,\n}}\n\nimpl Record{i} {{\n    pub fn new(id: u64, name: &str) -> Result<Self, String> {{\n        if name.is_empty() {{\n            return Err(format!(\"record {{id}} of kind {i} has an empty name\"));\n        }}\n        Ok(Self {{ id, name: name.to_string() }})\n    }}\n}}\n\nimpl fmt::Display for Record{i} {{\n    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n        write!(f, \"{{}}#{{}}\", self.name, self.id)\n    }}\n}}\n\n"
        ));
        i += 1;
    }
    out
}

const PLAN: &str = "```json\n{\"summary\": \"validate ids\", \"steps\": [{\"id\": \"s1\", \"title\": \"reject id 0 in Record7::new\", \"agent\": \"coder\", \"targets\": [\"src/lib.rs\"], \"depends_on\": []}], \"risks\": [\"callers passing 0\"], \"tradeoffs\": [\"an error instead of a panic\"]}\n```\n";

const CODE: &str = "src/lib.rs\n```rust\n<<<<<<< SEARCH\nimpl Record7 {\n    pub fn new(id: u64, name: &str) -> Result<Self, String> {\n        if name.is_empty() {\n=======\nimpl Record7 {\n    pub fn new(id: u64, name: &str) -> Result<Self, String> {\n        if id == 0 {\n            return Err(\"id 0 is reserved\".into());\n        }\n        if name.is_empty() {\n>>>>>>> REPLACE\n```\n```json\n{\"decisions\": [{\"block\": 1, \"summary\": \"reject id 0\", \"rationale\": \"0 is the sentinel\", \"alternatives\": [\"a NonZeroU64\"], \"tradeoffs\": [\"one more branch\"]}]}\n```\n";

struct Ws {
    _dir: tempfile::TempDir,
    root: PathBuf,
    index: Arc<WorkspaceIndex>,
}

fn workspace(config: &Config) -> Ws {
    let dir = tempfile::tempdir().expect("temporary workspace");
    let root = dir.path().canonicalize().expect("root");
    std::fs::create_dir_all(root.join("src")).expect("src");
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"bench\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .expect("manifest");
    std::fs::write(root.join("src/lib.rs"), rust_file(1_000)).expect("file");
    let index = Arc::new(WorkspaceIndex::build(&root, &config.context).expect("index"));
    Ws {
        _dir: dir,
        root,
        index,
    }
}

fn env(ws: &Ws, config: &Arc<Config>, models: &Arc<Models>) -> RunEnv {
    RunEnv {
        root: ws.root.clone(),
        config: config.clone(),
        models: Some(models.clone()),
        open: Arc::new(HashMap::new()),
        index: Some(ws.index.clone()),
        editor: Arc::new(FsEditor),
    }
}

fn request(root: &Path) -> RunRequest {
    RunRequest {
        kind: RunKind::Goal,
        goal: "reject id 0 in Record7::new".into(),
        selection: Some(Selection {
            file: root.join("src/lib.rs"),
            lines: Some((70, 80)),
        }),
        paths: Vec::new(),
        plan_only: false,
        no_plan: false,
        apply: false,
        remove_line: None,
        apply_failing_tests: false,
        follow: None,
    }
}

/// Milliseconds from each stage to the next, from the journal's timestamps.
fn stage_times(path: &Path, into: &mut HashMap<String, Vec<u64>>) {
    let read = journal::read(path).expect("journal");
    let stages: Vec<(String, u64)> = read
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Stage { state, .. } => Some((state.as_str().to_string(), r.at_ms)),
            _ => None,
        })
        .collect();
    let start = read.records.first().map_or(0, |r| r.at_ms);
    let mut previous = ("start".to_string(), start);
    for (state, at) in stages {
        into.entry(previous.0.clone())
            .or_default()
            .push(at - previous.1);
        previous = (state, at);
    }
}

/// The time a run's model requests took, from its journal.
fn model_time(path: &Path) -> Duration {
    let read = journal::read(path).expect("journal");
    let ms: u64 = read
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::ModelRequest { latency_ms, .. } => Some(*latency_ms),
            _ => None,
        })
        .sum();
    Duration::from_millis(ms)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = ModelServer::start().await.expect("model server");
        let mut model = ModelSettings {
            kind: ProviderKind::Openai,
            base_url: server.openai_base_url(),
            model: "bench-model".into(),
            max_concurrency: 64,
            stream: false,
            ..ModelSettings::default()
        };
        model.budget.max_tokens = 100_000_000;
        model.budget.max_cost_usd = 1_000.0;
        // This benchmark measures Conductor's own time around the model: the tester (a cargo
        // build) and the model review (more requests) have their own benchmark, `review_loop`.
        let mut config = Config {
            model: model.clone(),
            ..Config::default()
        };
        config.tester.enabled = false;
        config.review.model = false;
        let config = Arc::new(config);
        let models = Arc::new(Models::from_settings(&model).expect("models"));
        let orchestrator = Orchestrator::new();

        // One run at a time.
        let ws = workspace(&config);
        let mut wall = Vec::new();
        let mut own = Vec::new();
        let mut model_total = Vec::new();
        let mut stages: HashMap<String, Vec<u64>> = HashMap::new();
        for _ in 0..30 {
            server.push("planner", Reply::text(PLAN));
            server.push("coder", Reply::text(CODE));
            let started = Instant::now();
            let handle = orchestrator
                .start(env(&ws, &config, &models), request(&ws.root))
                .expect("start");
            let outcome = handle.outcome.await.expect("run");
            let elapsed = started.elapsed();
            assert_eq!(outcome.state, RunState::Done, "{}", outcome.message);
            assert_eq!(outcome.files.len(), 1, "the block applied");
            let in_model = model_time(&outcome.journal);
            stage_times(&outcome.journal, &mut stages);
            wall.push(elapsed);
            model_total.push(in_model);
            own.push(elapsed.saturating_sub(in_model));
        }
        println!("one run on a 1,000-line file (30 runs, loopback model answering at once):");
        println!(
            "  wall        median {:6.2} ms  p95 {:6.2} ms",
            ms(percentile(&mut wall, 0.5)),
            ms(percentile(&mut wall, 0.95))
        );
        println!(
            "  model calls median {:6.2} ms  p95 {:6.2} ms (2 requests, journal latencies, ms resolution)",
            ms(percentile(&mut model_total, 0.5)),
            ms(percentile(&mut model_total, 0.95))
        );
        println!(
            "  Conductor   median {:6.2} ms  p95 {:6.2} ms (wall minus model calls)",
            ms(percentile(&mut own, 0.5)),
            ms(percentile(&mut own, 0.95))
        );

        let mut names: Vec<&String> = stages.keys().collect();
        names.sort();
        let breakdown: Vec<String> = names
            .iter()
            .map(|n| {
                let v = &stages[*n];
                let mut sorted = v.clone();
                sorted.sort();
                format!("{n} {} ms", sorted[sorted.len() / 2])
            })
            .collect();
        println!("  median ms from each stage to the next (journal, ms resolution): {}", breakdown.join(", "));

        // Twenty runs at once, each on its own file.
        let spaces: Vec<Ws> = (0..20).map(|_| workspace(&config)).collect();
        for _ in 0..20 {
            server.push("planner", Reply::text(PLAN));
            server.push("coder", Reply::text(CODE));
        }
        let started = Instant::now();
        let handles: Vec<_> = spaces
            .iter()
            .map(|ws| {
                let start = Instant::now();
                let handle = orchestrator
                    .start(env(ws, &config, &models), request(&ws.root))
                    .expect("start");
                (start, handle)
            })
            .collect();
        let mut each = Vec::new();
        let mut done = 0;
        for (start, handle) in handles {
            let outcome = handle.outcome.await.expect("run");
            if outcome.state == RunState::Done && outcome.files.len() == 1 {
                done += 1;
            }
            each.push(start.elapsed());
        }
        let total = started.elapsed();
        println!("20 runs at once on 20 files (provider max_concurrency 64):");
        println!(
            "  {done}/20 done; all finished in {:.1} ms; per run median {:.1} ms, slowest {:.1} ms; most requests in flight at once at the server: {}",
            ms(total),
            ms(percentile(&mut each, 0.5)),
            ms(percentile(&mut each, 1.0)),
            server.max_in_flight()
        );
    });
}
