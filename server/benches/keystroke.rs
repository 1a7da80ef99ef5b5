//! The keystroke benchmark of issue 9: how long a keystroke takes on the protocol path, from
//! the client writing a one-character `didChange` to the answer of the `hover` it sends right
//! after (framing, validation, document sync, the next request answered), and the longest stall
//! of a trivial request, in four situations: idle, during a re-index of 1,500 files announced
//! by one `workspace/didChangeWatchedFiles`, during repeated "Show context" bundle builds, and
//! while runs proceed 20 at a time on 20 files of 1,000 lines against the loopback model server
//! (issue 12), which also measures the time from the coder's reply to the run's
//! `workspace/applyEdit`.
//!
//! It drives the real server in process over a duplex pipe, as the end-to-end tests do, but it
//! speaks only the public protocol (no `conductor/*` methods, no internal types), so that it
//! measures the same thing before and after the session core is rewritten. The server runs on a
//! runtime and thread of its own, built like `conductor lsp` builds it; the client runs on
//! another, so the client's work never shares the server's scheduler.
//!
//! Run: `CARGO_BUILD_JOBS=1 cargo bench --bench keystroke` (from the repository root or
//! `server/`). `CONDUCTOR_BENCH_KEYSTROKES=N` changes the keystrokes per scenario (default 500);
//! `CONDUCTOR_BENCH_SCENARIOS=idle,runs` runs only the named scenarios.

#[path = "support/workspace.rs"]
mod workspace;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conductor::lsp::transport::{FrameReader, write_frame};
use conductor::testkit::{ModelServer, Reply};
use serde_json::{Value, json};
use tokio::io::{DuplexStream, WriteHalf};
use tokio::sync::{Notify, mpsc, oneshot};

/// Keystrokes measured per scenario, unless `CONDUCTOR_BENCH_KEYSTROKES` says otherwise.
const KEYSTROKES: usize = 500;
/// The re-index scenario announces this many rewrites of the workspace, typing between them.
const REINDEX_ROUNDS: usize = 5;
/// The pause between two keystrokes: a fast typist.
const KEYSTROKE_GAP: Duration = Duration::from_millis(20);
/// The pause between two probe requests.
const PROBE_GAP: Duration = Duration::from_millis(5);
/// Keystrokes typed and thrown away before measuring (first-use costs).
const WARM_UP: usize = 20;
/// The longest the benchmark waits for one answer before it gives up on the run.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);
/// The longest one scenario may take.
const SCENARIO_LIMIT: Duration = Duration::from_secs(240);
/// The longest the initial indexing may take.
const INDEXING_LIMIT: Duration = Duration::from_secs(300);
/// The longest the benchmark waits for the server to go quiet between scenarios.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// The file typed into: one in the middle of the workspace.
const OPEN_FILE: usize = 777;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the client has seen from the server.
#[derive(Default)]
struct Inbox {
    pending: HashMap<i64, oneshot::Sender<Value>>,
    /// The title of each work-done progress that began, by token.
    progress_titles: HashMap<String, String>,
    /// The titles of the progresses that ended, in order.
    progress_ended: Vec<String>,
    /// The methods the server registered dynamically.
    registrations: Vec<String>,
    diagnostics: usize,
    malformed: usize,
    /// Every `workspace/applyEdit`, with the wall-clock time it arrived.
    apply_edits: Vec<(SystemTime, Value)>,
    /// Every `window/showMessage` text.
    messages: Vec<String>,
}

/// The editor's side of the pipe.
struct Client {
    /// What the client answers for the `conductor` section of `workspace/configuration`.
    settings: Arc<Mutex<Value>>,
    writer: Arc<tokio::sync::Mutex<WriteHalf<DuplexStream>>>,
    inbox: Arc<Mutex<Inbox>>,
    changed: Arc<Notify>,
    next_id: AtomicI64,
}

/// An answer with the time it took.
type Timed = Result<(Value, Duration), String>;

fn token_text(token: &Value) -> String {
    match token {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What a capable editor answers to a server-to-client request.
fn answer(request: &Value, settings: &Value) -> Value {
    let id = request["id"].clone();
    let result = match request["method"].as_str().unwrap_or("") {
        "workspace/configuration" => {
            let items = request["params"]["items"].as_array().map_or(0, Vec::len);
            Value::Array(vec![settings.clone(); items])
        }
        "window/showDocument" => json!({"success": true}),
        "workspace/applyEdit" => {
            json!({"applied": false, "failureReason": "the benchmark client applies no edits"})
        }
        "window/workDoneProgress/create"
        | "client/registerCapability"
        | "client/unregisterCapability"
        | "window/showMessageRequest" => Value::Null,
        other => {
            return json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": format!("the benchmark client has no {other}")}});
        }
    };
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

impl Client {
    /// Connects to the server's pipe: a reader task that routes answers and records
    /// notifications, and a task that writes the answers to the server's requests (so the reader
    /// never waits on the writer).
    fn connect(pipe: DuplexStream) -> Arc<Client> {
        let (read, write) = tokio::io::split(pipe);
        let client = Arc::new(Client {
            settings: Arc::new(Mutex::new(Value::Null)),
            writer: Arc::new(tokio::sync::Mutex::new(write)),
            inbox: Arc::new(Mutex::new(Inbox::default())),
            changed: Arc::new(Notify::new()),
            next_id: AtomicI64::new(0),
        });
        let (answers, mut to_answer) = mpsc::unbounded_channel::<Value>();
        {
            let writer = client.writer.clone();
            tokio::spawn(async move {
                while let Some(answer) = to_answer.recv().await {
                    let mut writer = writer.lock().await;
                    if write_frame(&mut *writer, answer.to_string().as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        let (inbox, changed) = (client.inbox.clone(), client.changed.clone());
        let settings = client.settings.clone();
        tokio::spawn(async move {
            let mut frames = FrameReader::new(tokio::io::BufReader::new(read));
            while let Ok(Some(frame)) = frames.next().await {
                let message = frame
                    .ok()
                    .and_then(|body| serde_json::from_slice::<Value>(&body).ok());
                let mut inbox = lock(&inbox);
                let Some(message) = message else {
                    inbox.malformed += 1;
                    continue;
                };
                match (message.get("method"), message.get("id")) {
                    (Some(method), Some(_)) => {
                        if method == "client/registerCapability"
                            && let Some(list) = message["params"]["registrations"].as_array()
                        {
                            for registration in list {
                                if let Some(m) = registration["method"].as_str() {
                                    inbox.registrations.push(m.to_string());
                                }
                            }
                        }
                        if method == "workspace/applyEdit" {
                            inbox
                                .apply_edits
                                .push((SystemTime::now(), message["params"].clone()));
                        }
                        let _ = answers.send(answer(&message, &lock(&settings)));
                    }
                    (Some(method), None) => {
                        if method == "$/progress" {
                            let token = token_text(&message["params"]["token"]);
                            let value = &message["params"]["value"];
                            match value["kind"].as_str() {
                                Some("begin") => {
                                    let title = value["title"].as_str().unwrap_or("").to_string();
                                    inbox.progress_titles.insert(token, title);
                                }
                                Some("end") => {
                                    let title = inbox
                                        .progress_titles
                                        .get(&token)
                                        .cloned()
                                        .unwrap_or_default();
                                    inbox.progress_ended.push(format!("{token} {title}"));
                                }
                                _ => {}
                            }
                        } else if method == "textDocument/publishDiagnostics" {
                            inbox.diagnostics += 1;
                        } else if method == "window/showMessage" {
                            let text = message["params"]["message"].as_str().unwrap_or("");
                            inbox.messages.push(text.to_string());
                        }
                    }
                    (None, Some(id)) => {
                        if let Some(tx) = id.as_i64().and_then(|id| inbox.pending.remove(&id)) {
                            let _ = tx.send(message);
                        }
                    }
                    (None, None) => inbox.malformed += 1,
                }
                drop(inbox);
                changed.notify_waiters();
            }
        });
        client
    }

    async fn write(&self, messages: &[Value]) -> Result<(), String> {
        let mut writer = self.writer.lock().await;
        for message in messages {
            write_frame(&mut *writer, message.to_string().as_bytes())
                .await
                .map_err(|e| format!("writing to the server: {e}"))?;
        }
        Ok(())
    }

    async fn notify(&self, method: &str, params: Value) -> Result<(), String> {
        self.write(&[json!({"jsonrpc": "2.0", "method": method, "params": params})])
            .await
    }

    /// Sends the notifications `before`, then the request, in one write; returns the request's
    /// result and the time from just before the first write to the answer.
    async fn call(&self, before: &[Value], method: &str, params: Value) -> Timed {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        let (tx, rx) = oneshot::channel();
        lock(&self.inbox).pending.insert(id, tx);
        let mut messages = before.to_vec();
        messages.push(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let started = Instant::now();
        self.write(&messages).await?;
        let response = match tokio::time::timeout(ANSWER_LIMIT, rx).await {
            Ok(Ok(response)) => response,
            Ok(Err(_)) => return Err(format!("{method}: the connection closed")),
            Err(_) => return Err(format!("{method}: no answer within {ANSWER_LIMIT:?}")),
        };
        let elapsed = started.elapsed();
        match response.get("error") {
            Some(error) => Err(format!("{method}: {error}")),
            None => Ok((response["result"].clone(), elapsed)),
        }
    }

    /// Waits until `done` holds for what the client has seen, at most `limit`.
    async fn wait_for(&self, limit: Duration, done: impl Fn(&Inbox) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if done(&lock(&self.inbox)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&lock(&self.inbox));
            }
        }
    }
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The process's CPU time so far (user + system, all threads), from `/proc/self/stat`, in
/// clock ticks of 10 ms (Linux's `USER_HZ` is 100).
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime) are the 12th and 13th after the name.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// Waits until the process (server and client) has been nearly idle, under 5% of one core,
/// for half a second, so that one scenario's background work does not spill into the next.
/// Returns how long that took, or `None` when it did not settle within `SETTLE_LIMIT`.
async fn settle() -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < SETTLE_LIMIT {
        let before = process_cpu_ticks()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = process_cpu_ticks()?;
        // 5% of 500 ms is 25 ms: two ticks at most.
        if after.saturating_sub(before) <= 2 {
            return Some(started.elapsed());
        }
    }
    None
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Latencies of one kind of request.
#[derive(Default, Clone)]
struct Samples(Vec<Duration>);

impl Samples {
    fn sorted(&self) -> Vec<Duration> {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted
    }
    fn p50(&self) -> Duration {
        percentile(&self.sorted(), 0.5)
    }
    fn p99(&self) -> Duration {
        percentile(&self.sorted(), 0.99)
    }
    fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
    fn over(&self, limit: Duration) -> usize {
        self.0.iter().filter(|d| **d > limit).count()
    }
}

/// The open document and where the benchmark types in it.
struct Typing {
    uri: String,
    /// Places (line, column) right after a local variable's name: typing there keeps the code
    /// well-formed, as typing inside a name does.
    places: Vec<(u32, u32)>,
    /// The selection "Show context" is asked for: the entry struct and its impl.
    selection: ((u32, u32), (u32, u32)),
    /// The struct alone, whose bundle must hold the parent file's struct.
    struct_selection: ((u32, u32), (u32, u32)),
    seed: u64,
    version: i32,
}

impl Typing {
    fn new(uri: String, text: &str) -> Result<Typing, String> {
        let mut places = Vec::new();
        let (mut struct_start, mut struct_end, mut impl_end) = (None, None, None);
        let mut in_entry_impl = false;
        for (n, line) in text.lines().enumerate() {
            let row = n as u32;
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("let ") {
                let rest = rest.strip_prefix("mut ").unwrap_or(rest);
                let name_len = rest
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                if name_len > 0 {
                    let column = line.len() - rest.len() + name_len;
                    places.push((row, column as u32));
                }
            }
            if line.starts_with("/// An entry of shard") {
                struct_start = Some(row);
            }
            if struct_start.is_some() && struct_end.is_none() && line == "}" {
                struct_end = Some(row + 1);
            }
            if line.starts_with("impl Entry") {
                in_entry_impl = true;
            } else if in_entry_impl && line == "}" {
                in_entry_impl = false;
                impl_end.get_or_insert(row + 1);
            }
        }
        let (Some(start), Some(end), Some(impl_end)) = (struct_start, struct_end, impl_end) else {
            return Err("the generated file has no entry struct and impl".into());
        };
        if places.is_empty() {
            return Err("the generated file has no `let` to type into".into());
        }
        Ok(Typing {
            uri,
            places,
            selection: ((start, 0), (impl_end, 0)),
            struct_selection: ((start, 0), (end, 0)),
            seed: 0x9e37_79b9_7f4a_7c15,
            version: 1,
        })
    }

    fn next_place(&mut self) -> (u32, u32) {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.places[(self.seed % self.places.len() as u64) as usize]
    }

    /// One keystroke: insert an `x` at a place, or delete the `x` typed before (so the document
    /// stays the same code), then hover there. Returns the time to the hover's answer.
    async fn keystroke(&mut self, client: &Client, place: (u32, u32), insert: bool) -> Timed {
        self.version += 1;
        let (line, column) = place;
        let (end, text) = if insert {
            (column, "x")
        } else {
            (column + 1, "")
        };
        let change = json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": self.uri, "version": self.version},
            "contentChanges": [{"range": {"start": {"line": line, "character": column},
                "end": {"line": line, "character": end}}, "text": text}]}});
        client
            .call(
                &[change],
                "textDocument/hover",
                json!({"textDocument": {"uri": self.uri},
                    "position": {"line": line, "character": column}}),
            )
            .await
    }

    /// Types `count` keystrokes, `KEYSTROKE_GAP` apart; records their times in `samples`.
    async fn type_keys(
        &mut self,
        client: &Client,
        count: usize,
        samples: &mut Samples,
        deadline: Instant,
    ) -> Result<(), String> {
        let mut place = self.next_place();
        for n in 0..count {
            if Instant::now() > deadline {
                return Err(format!("the scenario ran over {SCENARIO_LIMIT:?}"));
            }
            let insert = n % 2 == 0;
            if insert {
                place = self.next_place();
            }
            let (_, took) = self.keystroke(client, place, insert).await?;
            samples.0.push(took);
            tokio::time::sleep(KEYSTROKE_GAP).await;
        }
        // An odd count leaves an `x` behind: delete it.
        if count % 2 == 1 {
            self.keystroke(client, place, false).await?;
        }
        Ok(())
    }

    fn show_context_args(&self, selection: ((u32, u32), (u32, u32))) -> Value {
        let ((sl, sc), (el, ec)) = selection;
        json!({"command": "conductor.showContext", "arguments": [{"uri": self.uri,
            "range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}}]})
    }
}

/// A task that sends a trivial request (a hover on the file's first line) every `PROBE_GAP`
/// until `stop`, and records how long each took: the stalls a user would feel.
fn spawn_probe(
    client: Arc<Client>,
    uri: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<Samples, String>> {
    tokio::spawn(async move {
        let mut samples = Samples::default();
        let started = Instant::now();
        while !stop.load(Ordering::SeqCst) && started.elapsed() < SCENARIO_LIMIT {
            let (_, took) = client
                .call(
                    &[],
                    "textDocument/hover",
                    json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 4}}),
                )
                .await?;
            samples.0.push(took);
            tokio::time::sleep(PROBE_GAP).await;
        }
        Ok(samples)
    })
}

/// What the background of a scenario is.
enum Background {
    Idle,
    Reindex,
    Bundles,
    Runs,
}

struct Outcome {
    name: &'static str,
    keystrokes: Samples,
    probes: Samples,
    background: String,
}

struct Bench {
    client: Arc<Client>,
    model: Arc<ModelServer>,
    typing: Typing,
    root: PathBuf,
    keystrokes: usize,
}

impl Bench {
    async fn scenario(&mut self, background: Background) -> Result<Outcome, String> {
        let deadline = Instant::now() + SCENARIO_LIMIT;
        let stop = Arc::new(AtomicBool::new(false));
        let probe = spawn_probe(self.client.clone(), self.typing.uri.clone(), stop.clone());
        let mut keystrokes = Samples::default();
        let (name, background) = match background {
            Background::Idle => {
                self.typing
                    .type_keys(&self.client, self.keystrokes, &mut keystrokes, deadline)
                    .await?;
                ("idle", "none".to_string())
            }
            Background::Reindex => {
                let per_round = self.keystrokes.div_ceil(REINDEX_ROUNDS);
                let mut rewrites = Vec::new();
                // The first keystroke after each announcement: the one that meets the re-index.
                let mut first_keys = Vec::new();
                for round in 1..=REINDEX_ROUNDS as u32 {
                    let root = self.root.clone();
                    let started = Instant::now();
                    let bytes = tokio::task::spawn_blocking(move || {
                        workspace::rewrite(&root, round, Some(OPEN_FILE))
                    })
                    .await
                    .map_err(|e| format!("the rewriting task failed: {e}"))?
                    .map_err(|e| format!("rewriting the workspace: {e}"))?;
                    rewrites.push((started.elapsed(), bytes));
                    let changes: Vec<Value> = (0..workspace::FILES)
                        .map(|n| {
                            json!({"uri": file_uri(&self.root.join(workspace::relative_path(n))),
                                "type": 2})
                        })
                        .collect();
                    self.client
                        .notify(
                            "workspace/didChangeWatchedFiles",
                            json!({"changes": changes}),
                        )
                        .await?;
                    let first = keystrokes.0.len();
                    self.typing
                        .type_keys(&self.client, per_round, &mut keystrokes, deadline)
                        .await?;
                    if let Some(took) = keystrokes.0.get(first) {
                        first_keys.push(ms(*took));
                    }
                }
                let (took, bytes) = rewrites.last().copied().unwrap_or_default();
                (
                    "re-index of 1,500 files",
                    format!(
                        "{REINDEX_ROUNDS} rounds: {} files ({:.1} MB) rewritten on disk \
                         (last round took {}), then one didChangeWatchedFiles with {} events, \
                         then {per_round} keystrokes; the first keystroke of each round took {}",
                        workspace::FILES - 1,
                        bytes as f64 / 1e6,
                        ms(took),
                        workspace::FILES,
                        first_keys.join(", ")
                    ),
                )
            }
            Background::Bundles => {
                let builder = {
                    let (client, stop) = (self.client.clone(), stop.clone());
                    let args = self.typing.show_context_args(self.typing.selection);
                    tokio::spawn(async move {
                        let mut builds = Samples::default();
                        let mut items = 0u64;
                        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                            let (result, took) = client
                                .call(&[], "workspace/executeCommand", args.clone())
                                .await?;
                            items += result["items"].as_u64().unwrap_or(0);
                            builds.0.push(took);
                        }
                        Ok::<_, String>((builds, items))
                    })
                };
                let typed = self
                    .typing
                    .type_keys(&self.client, self.keystrokes, &mut keystrokes, deadline)
                    .await;
                stop.store(true, Ordering::SeqCst);
                let (builds, items) = builder
                    .await
                    .map_err(|e| format!("the bundle task failed: {e}"))??;
                typed?;
                let count = builds.0.len().max(1);
                (
                    "bundle builds (showContext)",
                    format!(
                        "{} conductor.showContext builds back to back, p50 {}, max {}, \
                         {:.0} items each on average",
                        builds.0.len(),
                        ms(builds.p50()),
                        ms(builds.max()),
                        items as f64 / count as f64
                    ),
                )
            }
            Background::Runs => {
                let driver = tokio::spawn(run_waves(
                    self.client.clone(),
                    self.model.clone(),
                    self.root.clone(),
                    stop.clone(),
                    deadline,
                ));
                let typed = self
                    .typing
                    .type_keys(&self.client, self.keystrokes, &mut keystrokes, deadline)
                    .await;
                stop.store(true, Ordering::SeqCst);
                let ids = driver
                    .await
                    .map_err(|e| format!("the run driver failed: {e}"))??;
                typed?;
                let (latencies, missing) = reply_to_apply_edit(&self.client, &self.root, &ids);
                // Then runs one at a time, typing stopped: a run's own latency, with no queue.
                let alone = run_alone(&self.client, &self.model, &self.root, SINGLE_RUNS).await?;
                let (alone, _) = reply_to_apply_edit(&self.client, &self.root, &alone);
                println!(
                    "one run at a time ({} runs, nothing else running): from the coder's reply to \
                     `workspace/applyEdit`: p50 {} ms, max {} ms",
                    alone.len(),
                    percentile_ms(&alone, 0.5),
                    alone.iter().max().copied().unwrap_or(0)
                );
                (
                    "20 runs in flight",
                    format!(
                        "{} runs in waves of {RUN_FILES} on {RUN_FILES} files of {RUN_FILE_LINES} \
                         lines (model replies after {} ms); from the coder's reply to \
                         `workspace/applyEdit`: p50 {} ms, p99 {} ms, max {} ms over {} runs{}",
                        ids.len(),
                        MODEL_LATENCY.as_millis(),
                        percentile_ms(&latencies, 0.5),
                        percentile_ms(&latencies, 0.99),
                        latencies.iter().max().copied().unwrap_or(0),
                        latencies.len(),
                        if missing > 0 {
                            format!(" ({missing} runs sent no edit)")
                        } else {
                            String::new()
                        }
                    ),
                )
            }
        };
        stop.store(true, Ordering::SeqCst);
        let probes = probe
            .await
            .map_err(|e| format!("the probe task failed: {e}"))??;
        Ok(Outcome {
            name,
            keystrokes,
            probes,
            background,
        })
    }

    /// Asks for the bundle of the open file's struct and checks that it holds its parent
    /// type's definition at `revision`: proof that the index holds what was written to disk.
    /// `None` when the answer names no bundle file to read (the command's result may change
    /// shape while the core is rewritten): the check is then skipped, and says so.
    async fn index_holds_revision(&self, revision: u32) -> Result<Option<bool>, String> {
        let args = self.typing.show_context_args(self.typing.struct_selection);
        let (result, _) = self
            .client
            .call(&[], "workspace/executeCommand", args)
            .await?;
        let Some(path) = result["path"].as_str() else {
            println!("note: showContext returned no `path` ({result}); the index check is skipped");
            return Ok(None);
        };
        let bundle =
            std::fs::read_to_string(path).map_err(|e| format!("reading the bundle {path}: {e}"))?;
        let marker = workspace::revision_marker(workspace::parent_file(OPEN_FILE), revision);
        Ok(Some(bundle.contains(&marker)))
    }
}

fn print_table(outcomes: &[Outcome]) {
    println!();
    println!(
        "| scenario | keystrokes | keystroke p50 | p99 | max | > 2 ms | > 20 ms | trivial requests | \
         their p50 | their max | longest stall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        let longest = o.keystrokes.max().max(o.probes.max());
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | **{}** |",
            o.name,
            o.keystrokes.0.len(),
            ms(o.keystrokes.p50()),
            ms(o.keystrokes.p99()),
            ms(o.keystrokes.max()),
            o.keystrokes.over(Duration::from_millis(2)),
            o.keystrokes.over(Duration::from_millis(20)),
            o.probes.0.len(),
            ms(o.probes.p50()),
            ms(o.probes.max()),
            ms(longest),
        );
    }
    println!();
    for o in outcomes {
        println!("background of \"{}\": {}", o.name, o.background);
    }
    let worst_p99 = outcomes
        .iter()
        .map(|o| o.keystrokes.p99())
        .max()
        .unwrap_or_default();
    let worst_stall = outcomes
        .iter()
        .map(|o| o.keystrokes.max().max(o.probes.max()))
        .max()
        .unwrap_or_default();
    println!(
        "targets: keystroke p99 <= 2 ms: {} (worst {}); no request stall > 20 ms: {} (longest {})",
        if worst_p99 <= Duration::from_millis(2) {
            "met"
        } else {
            "NOT met"
        },
        ms(worst_p99),
        if worst_stall <= Duration::from_millis(20) {
            "met"
        } else {
            "NOT met"
        },
        ms(worst_stall)
    );
}

/// Runs in flight at once in the runs scenario, one per file.
const RUN_FILES: usize = 20;
/// Lines of each file a run changes.
const RUN_FILE_LINES: usize = 1_000;
/// How long the loopback model takes to answer each request.
const MODEL_LATENCY: Duration = Duration::from_millis(50);

fn run_file(n: usize) -> String {
    format!("src/runs/f{n}.rs")
}

/// The runs' files: a small function each run changes, then filler to 1,000 lines, with names
/// unique to the file (so each run's model requests can be told apart).
fn write_run_files(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("src/runs"))?;
    for n in 0..RUN_FILES {
        let mut text = format!("pub fn unique_f{n}() -> u32 {{\n    0\n}}\n\n");
        let mut i = 0;
        while text.lines().count() + 4 <= RUN_FILE_LINES {
            text.push_str(&format!(
                "pub fn f{n}_item{i}(x: u64) -> u64 {{\n    x.wrapping_mul({i}) + {n}\n}}\n\n"
            ));
            i += 1;
        }
        std::fs::write(root.join(run_file(n)), text)?;
    }
    Ok(())
}

/// The loopback model server, on a runtime and thread of its own (so its work never shares the
/// client's scheduler).
fn start_model_server() -> Result<Arc<ModelServer>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("model-server".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = tx.send(Err(format!("the model server's runtime: {err}")));
                    return;
                }
            };
            runtime.block_on(async move {
                match ModelServer::start().await {
                    Ok(server) => {
                        let _ = tx.send(Ok(Arc::new(server)));
                        std::future::pending::<()>().await;
                    }
                    Err(err) => {
                        let _ = tx.send(Err(format!("the model server: {err}")));
                    }
                }
            });
        })
        .map_err(|e| format!("cannot start the model server's thread: {e}"))?;
    rx.recv()
        .map_err(|_| "the model server's thread ended".to_string())?
}

/// Queues the planner's and the coder's replies for a run on file `n`, matched by text only
/// that run's requests hold.
fn script_run(model: &ModelServer, n: usize) {
    let file = run_file(n);
    let plan = json!({
        "summary": "Make the function return 1.",
        "steps": [{"id": "s1", "title": "Return 1", "agent": "coder", "targets": [file], "depends_on": []}],
        "risks": [], "tradeoffs": [],
    });
    model.push_for(
        "planner",
        &format!("{file}:"),
        Reply::text(format!("```json\n{plan}\n```\n")).with_latency(MODEL_LATENCY),
    );
    let code = format!(
        "{file}\n<<<<<<< SEARCH\npub fn unique_f{n}() -> u32 {{\n    0\n}}\n=======\npub fn unique_f{n}() -> u32 {{\n    1\n}}\n>>>>>>> REPLACE\n```json\n{}\n```\n",
        json!({"decisions": [{"block": 1, "summary": "return 1", "rationale": "the goal", "alternatives": [], "tradeoffs": []}]})
    );
    model.push_for(
        "coder",
        &format!("unique_f{n}()"),
        Reply::text(code).with_latency(MODEL_LATENCY),
    );
}

/// Starts a run on file `n` (its replies scripted by [`script_run`]); returns its id.
async fn start_run(client: &Client, root: &Path, n: usize) -> Result<String, String> {
    let uri = file_uri(&root.join(run_file(n)));
    let (result, _) = client
        .call(
            &[],
            "workspace/executeCommand",
            json!({"command": "conductor.orchestrate", "arguments": [{
                "uri": uri,
                "range": {"start": {"line": 0, "character": 0}, "end": {"line": 3, "character": 0}},
                "goal": "make it return 1",
            }]}),
        )
        .await?;
    result["runId"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("conductor.orchestrate answered no run id: {result}"))
}

/// Starts runs in waves of [`RUN_FILES`], one per file, each wave once the last has ended,
/// until `stop`; returns the ids of the runs started.
async fn run_waves(
    client: Arc<Client>,
    model: Arc<ModelServer>,
    root: PathBuf,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let mut wave = Vec::new();
        for n in 0..RUN_FILES {
            script_run(&model, n);
            wave.push(start_run(&client, &root, n).await?);
        }
        let ended = client
            .wait_for(ANSWER_LIMIT, |inbox| {
                wave.iter().all(|id| {
                    let prefix = format!("Conductor run {id}");
                    inbox.messages.iter().any(|m| m.starts_with(&prefix))
                })
            })
            .await;
        if !ended {
            return Err(format!(
                "a wave of {RUN_FILES} runs did not end within {ANSWER_LIMIT:?}"
            ));
        }
        ids.extend(wave);
    }
    Ok(ids)
}

/// Runs measured one at a time after the waves.
const SINGLE_RUNS: usize = 10;

/// Starts `count` runs one after the other, each once the last has ended.
async fn run_alone(
    client: &Client,
    model: &ModelServer,
    root: &Path,
    count: usize,
) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let n = i % RUN_FILES;
        script_run(model, n);
        let id = start_run(client, root, n).await?;
        let prefix = format!("Conductor run {id}");
        if !client
            .wait_for(ANSWER_LIMIT, |inbox| {
                inbox.messages.iter().any(|m| m.starts_with(&prefix))
            })
            .await
        {
            return Err(format!("run {id} did not end within {ANSWER_LIMIT:?}"));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// For each run: milliseconds from its journal's record of the coder's reply to the arrival of
/// its `workspace/applyEdit` (wall clock, both on this machine); and how many runs sent none.
fn reply_to_apply_edit(client: &Client, root: &Path, ids: &[String]) -> (Vec<u64>, usize) {
    let edits = lock(&client.inbox).apply_edits.clone();
    let mut latencies = Vec::new();
    let mut missing = 0;
    for id in ids {
        let journal = root.join(".conductor/runs").join(format!("{id}.jsonl"));
        let replied = std::fs::read_to_string(&journal).ok().and_then(|text| {
            text.lines()
                .rev()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|e| e["event"] == "model_request" && e["agent"] == "coder")
                .find_map(|e| e["at_ms"].as_u64())
        });
        let label = format!("Conductor run {id}:");
        let arrived = edits
            .iter()
            .find(|(_, params)| {
                params["label"]
                    .as_str()
                    .is_some_and(|l| l.starts_with(&label))
            })
            .and_then(|(at, _)| at.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64);
        match (replied, arrived) {
            (Some(replied), Some(arrived)) => latencies.push(arrived.saturating_sub(replied)),
            _ => missing += 1,
        }
    }
    latencies.sort_unstable();
    (latencies, missing)
}

fn percentile_ms(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Starts the server on a thread of its own, on a runtime built as `conductor lsp` builds its
/// own, and returns the client's end of the pipe and a receiver told when the session ended.
fn start_server() -> Result<(DuplexStream, std::sync::mpsc::Receiver<String>), String> {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("conductor-server".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("conductor")
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = done_tx.send(format!("cannot start the server's runtime: {err}"));
                    return;
                }
            };
            let (read, write) = tokio::io::split(server_io);
            let end = runtime.block_on(conductor::lsp::serve(read, write));
            runtime.shutdown_timeout(Duration::from_millis(100));
            let _ = done_tx.send(format!("{end:?}"));
        })
        .map_err(|e| format!("cannot start the server thread: {e}"))?;
    Ok((client_io, done_rx))
}

async fn run(root: &Path, keystrokes: usize) -> Result<(), String> {
    let load_at_start = load_average();
    let started = Instant::now();
    let bytes = workspace::write(root, 0).map_err(|e| format!("writing the workspace: {e}"))?;
    println!(
        "workspace: {} files of Rust ({:.1} MB) plus lib.rs, in {}",
        workspace::FILES,
        bytes as f64 / 1e6,
        root.display()
    );

    write_run_files(root).map_err(|e| format!("writing the run files: {e}"))?;
    let model = start_model_server()?;

    let (pipe, session_ended) = start_server()?;
    let client = Client::connect(pipe);
    // The runs scenario measures the editor's path of a run; the tester (a cargo build per
    // run) and the model review have their own benchmark (`review_loop`).
    *lock(&client.settings) = json!({
        "model": {
            "base_url": model.openai_base_url(),
            "model": "bench-model",
            "max_attempts": 1,
        },
        "tester": {"enabled": false},
        "review": {"model": false},
    });
    let root_uri = file_uri(root);
    let (_, took) = client
        .call(
            &[],
            "initialize",
            json!({
                "processId": null,
                "clientInfo": {"name": "conductor-keystroke-bench"},
                "rootUri": root_uri,
                "workspaceFolders": [{"uri": root_uri, "name": "ledger"}],
                "capabilities": {
                    "general": {"positionEncodings": ["utf-8", "utf-16"]},
                    "workspace": {
                        "workspaceFolders": true,
                        "configuration": true,
                        "didChangeConfiguration": {"dynamicRegistration": true},
                        "applyEdit": true,
                        "workspaceEdit": {"documentChanges": true},
                        "didChangeWatchedFiles": {"dynamicRegistration": true}
                    },
                    "window": {"workDoneProgress": true, "showDocument": {"support": true}},
                    "textDocument": {
                        "synchronization": {"dynamicRegistration": false, "didSave": true},
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                        "publishDiagnostics": {"relatedInformation": true}
                    }
                }
            }),
        )
        .await?;
    println!("initialize answered in {}", ms(took));
    client.notify("initialized", json!({})).await?;

    let indexed = client
        .wait_for(INDEXING_LIMIT, |inbox| {
            inbox
                .progress_ended
                .iter()
                .any(|p| p.to_lowercase().contains("index"))
        })
        .await;
    if !indexed {
        return Err(format!(
            "the initial indexing did not end (no `$/progress` end of an indexing progress) \
             within {INDEXING_LIMIT:?}"
        ));
    }
    println!("initial indexing ended after {}", ms(started.elapsed()));
    let watching = client
        .wait_for(Duration::from_secs(10), |inbox| {
            inbox
                .registrations
                .iter()
                .any(|m| m == "workspace/didChangeWatchedFiles")
        })
        .await;
    if !watching {
        println!(
            "note: the server registered no workspace/didChangeWatchedFiles watcher within 10 s; \
             the events are sent anyway"
        );
    }

    let path = root.join(workspace::relative_path(OPEN_FILE));
    let text = workspace::file_text(OPEN_FILE, 0);
    let uri = file_uri(&path);
    client
        .notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}),
        )
        .await?;
    let typing = Typing::new(uri, &text)?;
    let mut bench = Bench {
        client: client.clone(),
        model,
        typing,
        root: root.to_path_buf(),
        keystrokes,
    };
    let mut throwaway = Samples::default();
    let far = Instant::now() + SCENARIO_LIMIT;
    bench
        .typing
        .type_keys(&client, WARM_UP, &mut throwaway, far)
        .await?;
    let before = bench.index_holds_revision(0).await?;

    let mut outcomes = Vec::new();
    // `CONDUCTOR_BENCH_SCENARIOS=idle,runs` runs only those (names: idle, reindex, bundles, runs).
    let wanted = std::env::var("CONDUCTOR_BENCH_SCENARIOS").ok();
    let backgrounds = [
        ("idle", Background::Idle),
        ("reindex", Background::Reindex),
        ("bundles", Background::Bundles),
        ("runs", Background::Runs),
    ]
    .into_iter()
    .filter(|(name, _)| {
        wanted
            .as_deref()
            .is_none_or(|w| w.split(',').any(|x| x.trim() == *name))
    })
    .map(|(_, b)| b);
    for background in backgrounds {
        match settle().await {
            Some(took) => println!("server quiet after {}", ms(took)),
            None => println!("note: the process did not go quiet within {SETTLE_LIMIT:?}"),
        }
        let outcome = bench.scenario(background).await?;
        println!(
            "{}: keystroke p50 {}, p99 {}, max {}; trivial request max {}",
            outcome.name,
            ms(outcome.keystrokes.p50()),
            ms(outcome.keystrokes.p99()),
            ms(outcome.keystrokes.max()),
            ms(outcome.probes.max())
        );
        if matches!(outcome.name, "re-index of 1,500 files") {
            // The re-index must really have happened for its row to mean anything.
            let _ = settle().await;
            let after = bench.index_holds_revision(REINDEX_ROUNDS as u32).await?;
            let word = |held: Option<bool>| match held {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "not checked",
            };
            println!(
                "index check: the parent struct's definition in a bundle was at revision 0 before \
                 ({}), at revision {REINDEX_ROUNDS} after ({})",
                word(before),
                word(after)
            );
            if before == Some(false) || after == Some(false) {
                return Err(
                    "the bundle does not show the rewritten definition: the re-index \
                            scenario did not measure a re-index"
                        .into(),
                );
            }
        }
        outcomes.push(outcome);
    }

    let (diagnostics, malformed) = {
        let inbox = lock(&client.inbox);
        (inbox.diagnostics, inbox.malformed)
    };
    print_table(&outcomes);
    let mut facts = String::new();
    let _ = write!(
        facts,
        "{diagnostics} publishDiagnostics received; {malformed} malformed messages; load average \
         {load_at_start} at start, {} at the end; {} in all",
        load_average(),
        ms(started.elapsed())
    );
    println!("{facts}");

    client.call(&[], "shutdown", Value::Null).await?;
    client.notify("exit", Value::Null).await?;
    match session_ended.recv_timeout(Duration::from_secs(10)) {
        Ok(end) => println!("session ended: {end}"),
        Err(_) => println!("note: the server did not end within 10 s of `exit`"),
    }
    if malformed > 0 {
        return Err(format!("the server wrote {malformed} malformed messages"));
    }
    Ok(())
}

fn main() {
    let keystrokes = std::env::var("CONDUCTOR_BENCH_KEYSTROKES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n >= 10)
        .unwrap_or(KEYSTROKES);
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => {
            eprintln!("cannot create a temporary workspace: {err}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the client's runtime: {err}");
            std::process::exit(2);
        }
    };
    let root = dir
        .path()
        .canonicalize()
        .unwrap_or_else(|_| dir.path().into());
    let result = runtime.block_on(run(&root, keystrokes));
    drop(runtime);
    drop(dir);
    if let Err(err) = result {
        eprintln!("keystroke benchmark failed: {err}");
        std::process::exit(1);
    }
}
