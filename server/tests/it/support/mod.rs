//! The end-to-end harness: the real server, in process, over a duplex pipe with framed
//! JSON-RPC, exactly as an editor would drive it. Server-to-client requests are answered the way
//! a capable client would and recorded for assertions; notifications are recorded and can be
//! waited for.

// Helpers are shared by every area's tests; not every area uses every helper.
#![allow(dead_code, unused_imports)]

pub mod child;
pub mod fixture;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conductor::lsp::SessionEnd;
use conductor::lsp::transport::{FrameReader, write_frame};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

pub use fixture::{Fixture, FixtureFile};

/// How long a test waits for something the server should do promptly.
pub const WAIT: Duration = Duration::from_secs(10);

/// Options for starting a server.
#[derive(Debug, Clone)]
pub struct Options {
    /// The position encodings the client offers (`None`: the field is absent).
    pub encodings: Option<Vec<&'static str>>,
    /// `initializationOptions`.
    pub init_options: Option<Value>,
    /// What the client answers for `workspace/configuration` (section `conductor`).
    pub settings: Value,
    /// Whether the client advertises `workspace/configuration`.
    pub pull_configuration: bool,
    /// The workspace fixture written to a temporary root.
    pub fixture: &'static str,
    /// Whether the client advertises `window.workDoneProgress`.
    pub work_done_progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            encodings: Some(vec!["utf-16"]),
            init_options: None,
            settings: Value::Null,
            pull_configuration: true,
            fixture: "",
            work_done_progress: true,
        }
    }
}

/// How the client treats the server's work-done progress, for cancellation tests. The reader
/// acts on these as messages arrive, so the test body never races the server.
#[derive(Default)]
struct ProgressControl {
    /// Cancel (`window/workDoneProgress/cancel`) a progress whose token starts with the first
    /// string as soon as a notification of the second kind (`begin`, `report`) arrives for it.
    cancel_on: Option<(String, String)>,
    /// Hold the answer to `window/workDoneProgress/create` for tokens starting with this.
    hold_create: Option<String>,
    /// Answers held back, sent by `release_progress_create`.
    held: Vec<Value>,
}

#[derive(Default)]
struct Inbox {
    pending: HashMap<i64, oneshot::Sender<Value>>,
    notifications: Vec<Value>,
    server_requests: Vec<Value>,
}

/// A running server and the client side of its pipe.
pub struct TestServer {
    writer: Arc<tokio::sync::Mutex<WriteHalf<DuplexStream>>>,
    inbox: Arc<Mutex<Inbox>>,
    changed: Arc<Notify>,
    next_id: Mutex<i64>,
    settings: Arc<Mutex<Value>>,
    server: Option<JoinHandle<SessionEnd>>,
    reader: Option<JoinHandle<()>>,
    versions: Mutex<HashMap<String, i32>>,
    progress: Arc<Mutex<ProgressControl>>,
    answers: tokio::sync::mpsc::UnboundedSender<Value>,
    /// The negotiated encoding, from the `initialize` result.
    pub encoding: String,
    /// The `initialize` result.
    pub capabilities: Value,
    /// The parsed fixture.
    pub fixture: Fixture,
    /// The workspace root (a temporary directory, removed on drop).
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

fn answer(request: &Value, settings: &Value) -> Value {
    let id = request["id"].clone();
    let result = match request["method"].as_str().unwrap_or("") {
        "workspace/configuration" => {
            let items = request["params"]["items"].as_array().map_or(0, Vec::len);
            Value::Array(vec![settings.clone(); items])
        }
        "workspace/applyEdit" => json!({"applied": true}),
        "window/showDocument" => json!({"success": true}),
        "window/workDoneProgress/create"
        | "client/registerCapability"
        | "client/unregisterCapability"
        | "window/showMessageRequest" => Value::Null,
        other => {
            return json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": format!("test client has no {other}")}});
        }
    };
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

impl TestServer {
    /// Starts a server on a temporary workspace holding `options.fixture`, and initializes it.
    pub async fn start(options: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let fixture = Fixture::parse(options.fixture);
        for file in &fixture.files {
            let path = root.join(&file.path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, &file.text).expect("write fixture");
        }

        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let (server_read, server_write) = tokio::io::split(server_io);
        let server = tokio::spawn(conductor::lsp::serve(server_read, server_write));
        let (client_read, client_write) = tokio::io::split(client_io);

        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let changed = Arc::new(Notify::new());
        let settings = Arc::new(Mutex::new(options.settings.clone()));
        let (answers_tx, mut answers_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let progress = Arc::new(Mutex::new(ProgressControl::default()));
        let reader = {
            let inbox = inbox.clone();
            let changed = changed.clone();
            let settings = settings.clone();
            let progress = progress.clone();
            let answers_tx = answers_tx.clone();
            tokio::spawn(async move {
                let mut frames = FrameReader::new(tokio::io::BufReader::new(client_read));
                while let Ok(Some(frame)) = frames.next().await {
                    let body = frame.expect("the server writes well-formed frames");
                    let message: Value = serde_json::from_slice(&body).expect("server JSON");
                    let mut inbox = inbox.lock().expect("inbox");
                    if message.get("method").is_some() && message.get("id").is_some() {
                        let settings = settings.lock().expect("settings").clone();
                        let answer = answer(&message, &settings);
                        let mut progress = progress.lock().expect("progress control");
                        let token = message["params"]["token"].as_str().unwrap_or("");
                        if message["method"] == "window/workDoneProgress/create"
                            && progress
                                .hold_create
                                .as_deref()
                                .is_some_and(|prefix| token.starts_with(prefix))
                        {
                            progress.held.push(answer);
                        } else {
                            let _ = answers_tx.send(answer);
                        }
                        inbox.server_requests.push(message);
                    } else if message.get("method").is_some() {
                        let token = message["params"]["token"].as_str().unwrap_or("");
                        let kind = &message["params"]["value"]["kind"];
                        let cancel = message["method"] == "$/progress"
                            && progress
                                .lock()
                                .expect("progress control")
                                .cancel_on
                                .as_ref()
                                .is_some_and(|(prefix, on)| {
                                    token.starts_with(prefix.as_str()) && kind == on.as_str()
                                });
                        if cancel {
                            let _ = answers_tx.send(json!({"jsonrpc": "2.0",
                                "method": "window/workDoneProgress/cancel",
                                "params": {"token": token}}));
                        }
                        inbox.notifications.push(message);
                    } else if let Some(id) = message["id"].as_i64() {
                        if let Some(tx) = inbox.pending.remove(&id) {
                            let _ = tx.send(message);
                        }
                    } else {
                        inbox.notifications.push(message);
                    }
                    drop(inbox);
                    changed.notify_waiters();
                }
            })
        };

        let mut server = TestServer {
            writer: Arc::new(tokio::sync::Mutex::new(client_write)),
            inbox,
            changed,
            next_id: Mutex::new(0),
            settings,
            server: Some(server),
            reader: Some(reader),
            versions: Mutex::new(HashMap::new()),
            progress,
            answers: answers_tx.clone(),
            encoding: String::new(),
            capabilities: Value::Null,
            fixture,
            root: root.clone(),
            _dir: dir,
        };
        // Answers to server requests are written by a task of their own, so the reader never
        // waits on the writer.
        {
            let writer = server.writer.clone();
            tokio::spawn(async move {
                while let Some(answer) = answers_rx.recv().await {
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

        let mut general = json!({});
        if let Some(encodings) = &options.encodings {
            general["positionEncodings"] = json!(encodings);
        }
        let root_uri = file_uri(&root);
        let mut params = json!({
            "processId": null,
            "clientInfo": {"name": "conductor-test-harness"},
            "rootUri": root_uri,
            "workspaceFolders": [{"uri": root_uri, "name": "fixture"}],
            "capabilities": {
                "general": general,
                "workspace": {
                    "configuration": options.pull_configuration,
                    "didChangeConfiguration": {"dynamicRegistration": true},
                    "applyEdit": true,
                    "workspaceEdit": {"documentChanges": true, "changeAnnotationSupport": {"groupsOnLabel": true}},
                    "didChangeWatchedFiles": {"dynamicRegistration": true}
                },
                "window": {"workDoneProgress": options.work_done_progress, "showDocument": {"support": true}},
                "textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]}}
            }
        });
        if let Some(init) = options.init_options {
            params["initializationOptions"] = init;
        }
        let result = server
            .request("initialize", params)
            .await
            .expect("initialize succeeds");
        server.encoding = result["capabilities"]["positionEncoding"]
            .as_str()
            .unwrap_or("utf-16")
            .to_string();
        server.capabilities = result;
        server.notify("initialized", json!({})).await;
        server
    }

    /// Sends raw bytes, for malformed-input tests.
    pub async fn send_raw(&self, bytes: &[u8]) {
        let mut writer = self.writer.lock().await;
        writer.write_all(bytes).await.expect("write raw");
        writer.flush().await.expect("flush");
    }

    async fn send(&self, message: &Value) {
        let mut writer = self.writer.lock().await;
        write_frame(&mut *writer, message.to_string().as_bytes())
            .await
            .expect("write frame");
    }

    /// Sends a request and waits for its response: `Ok(result)` or `Err(error object)`.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, Value> {
        let id = {
            let mut next = self.next_id.lock().expect("ids");
            *next += 1;
            *next
        };
        let (tx, rx) = oneshot::channel();
        self.inbox.lock().expect("inbox").pending.insert(id, tx);
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let response = tokio::time::timeout(WAIT, rx)
            .await
            .unwrap_or_else(|_| panic!("no response to {method} within {WAIT:?}"))
            .expect("response channel");
        match response.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(response["result"].clone()),
        }
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// From now on, cancels every work-done progress whose token starts with `prefix` as soon
    /// as a `$/progress` of `kind` (`begin`, `report`) arrives for it: the reader sends
    /// `window/workDoneProgress/cancel` at once, before the test body sees the notification.
    pub fn cancel_progress_on(&self, prefix: &str, kind: &str) {
        self.progress.lock().expect("progress control").cancel_on =
            Some((prefix.into(), kind.into()));
    }

    /// From now on, holds back the answer to `window/workDoneProgress/create` for tokens
    /// starting with `prefix`, so the server's work waits at that point.
    pub fn hold_progress_create(&self, prefix: &str) {
        self.progress.lock().expect("progress control").hold_create = Some(prefix.into());
    }

    /// Sends the held answers to `window/workDoneProgress/create` and stops holding.
    pub fn release_progress_create(&self) {
        let mut progress = self.progress.lock().expect("progress control");
        progress.hold_create = None;
        for answer in progress.held.drain(..) {
            let _ = self.answers.send(answer);
        }
    }

    /// Changes what the client answers for `workspace/configuration`.
    pub fn set_settings(&self, settings: Value) {
        *self.settings.lock().expect("settings") = settings;
    }

    /// The URI of a workspace path.
    pub fn uri(&self, path: &str) -> String {
        file_uri(&self.root.join(path.trim_start_matches('/')))
    }

    /// Opens a fixture file with its fixture text; returns its URI.
    pub async fn open(&self, path: &str) -> String {
        let text = self.fixture.file_at(path).text.clone();
        self.open_text(path, &text).await
    }

    /// Opens a workspace path with the given text; returns its URI.
    pub async fn open_text(&self, path: &str, text: &str) -> String {
        let uri = self.uri(path);
        self.versions
            .lock()
            .expect("versions")
            .insert(uri.clone(), 1);
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}),
        )
        .await;
        uri
    }

    /// Sends one `didChange` with the given content changes; returns the new version.
    pub async fn change(&self, uri: &str, changes: Vec<Value>) -> i32 {
        let version = {
            let mut versions = self.versions.lock().expect("versions");
            let v = versions.entry(uri.to_string()).or_insert(0);
            *v += 1;
            *v
        };
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
        )
        .await;
        version
    }

    /// Closes a document.
    pub async fn close(&self, uri: &str) {
        self.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri}}),
        )
        .await;
    }

    /// The server's view of a document (`conductor/debugDocument`).
    pub async fn debug_document(&self, uri: &str) -> Result<Value, Value> {
        self.request(
            "conductor/debugDocument",
            json!({"textDocument": {"uri": uri}}),
        )
        .await
    }

    /// Hover at a byte offset of a document whose text is `text`.
    pub async fn hover(&self, uri: &str, text: &str, byte: usize) -> Result<Value, Value> {
        let position = lsp_position(text, byte, &self.encoding);
        self.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": position}),
        )
        .await
    }

    /// Every notification received so far with this method.
    pub fn notifications(&self, method: &str) -> Vec<Value> {
        let inbox = self.inbox.lock().expect("inbox");
        inbox
            .notifications
            .iter()
            .filter(|n| n["method"] == method)
            .cloned()
            .collect()
    }

    /// Every server-to-client request received so far with this method.
    pub fn server_requests(&self, method: &str) -> Vec<Value> {
        let inbox = self.inbox.lock().expect("inbox");
        inbox
            .server_requests
            .iter()
            .filter(|n| n["method"] == method)
            .cloned()
            .collect()
    }

    /// Waits until a notification with `method` satisfies `accept`; returns the latest such.
    pub async fn wait_notification(&self, method: &str, accept: impl Fn(&Value) -> bool) -> Value {
        self.wait_matching(method, 0, true, accept).await
    }

    /// Like `wait_notification`, but only among the notifications with `method` after the
    /// first `seen` (take `seen` as `notifications(method).len()` before acting); returns the
    /// first such.
    pub async fn wait_notification_after(
        &self,
        method: &str,
        seen: usize,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_matching(method, seen, false, accept).await
    }

    async fn wait_matching(
        &self,
        method: &str,
        seen: usize,
        latest: bool,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            let mut candidates: Vec<Value> =
                self.notifications(method).into_iter().skip(seen).collect();
            if latest {
                candidates.reverse();
            }
            if let Some(found) = candidates.into_iter().find(|n| accept(n)) {
                return found;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "no {method} notification after the first {seen} matched within {WAIT:?}; \
                     got {:#?}",
                    self.notifications(method)
                );
            }
        }
    }

    /// Waits for diagnostics for `uri` that satisfy `accept`; returns the diagnostics array.
    pub async fn wait_diagnostics(
        &self,
        uri: &str,
        accept: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let found = self
            .wait_notification("textDocument/publishDiagnostics", |n| {
                n["params"]["uri"] == uri
                    && n["params"]["diagnostics"]
                        .as_array()
                        .is_some_and(|d| accept(d))
            })
            .await;
        found["params"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Sends `shutdown` then `exit`, and returns how the session ended.
    pub async fn shutdown(mut self) -> SessionEnd {
        self.request("shutdown", Value::Null)
            .await
            .expect("shutdown succeeds");
        self.notify("exit", Value::Null).await;
        self.finish().await
    }

    /// Waits for the server task to end after the client sent `exit` or closed its side.
    pub async fn finish(&mut self) -> SessionEnd {
        let server = self.server.take().expect("server task");
        let end = tokio::time::timeout(WAIT, server)
            .await
            .expect("the server ends promptly")
            .expect("the server task does not panic");
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        end
    }
}

/// The `file:` URI of a path, as the server will print it.
pub fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The LSP position of a byte offset in `text`, computed independently of the server's code
/// (a straightforward scan), in the named encoding.
pub fn lsp_position(text: &str, byte: usize, encoding: &str) -> Value {
    let mut line = 0u32;
    let mut line_start = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0usize;
    while i < byte {
        match bytes[i] {
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            b'\r' if bytes.get(i + 1) != Some(&b'\n') => {
                line += 1;
                line_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let prefix = &text[line_start..byte];
    let character = match encoding {
        "utf-8" => prefix.len(),
        "utf-32" => prefix.chars().count(),
        _ => prefix.encode_utf16().count(),
    };
    json!({"line": line, "character": character})
}
