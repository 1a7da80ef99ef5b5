//! The end-to-end harness: the real server, in process, over a duplex pipe with framed
//! JSON-RPC, and a client that behaves like an editor. The client keeps its own copies of the
//! documents it opened and applies `workspace/applyEdit` to them the way VS Code does (see
//! `editor`), sending `didChange` before it answers. Each server-to-client request is answered,
//! refused, held, answered after a user edit, or never answered, as the test scripts it; every
//! request, notification and edit is recorded for assertions, and notifications can be waited
//! for. Responses the server sends to no request of ours (id `null`, for malformed input) are
//! kept apart from notifications.

// Helpers are shared by every area's tests; not every area uses every helper.
#![allow(dead_code, unused_imports)]

pub mod child;
pub mod editor;
pub mod fixture;
pub mod replies;
pub mod rng;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conductor::lsp::SessionEnd;
use conductor::lsp::transport::{FrameReader, write_frame};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

pub use editor::{Applied, ChangeStyle, Editor, EditorDocument};
pub use fixture::{Fixture, FixtureFile};

/// How long a test waits for something the server should do promptly.
pub const WAIT: Duration = Duration::from_secs(10);

/// LSP's `RequestFailed`, the code of a refusal the test scripts for a request other than
/// `workspace/applyEdit` (which refuses with `applied: false` instead).
pub const REQUEST_FAILED: i64 = -32803;

/// What the client does with one server-to-client request method.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Answer at once, the way a capable client does (applyEdit: apply it).
    #[default]
    Answer,
    /// Refuse with this reason: `{"applied": false, "failureReason": …}` for
    /// `workspace/applyEdit`, a `RequestFailed` error for anything else.
    Refuse(String),
    /// Keep the request unanswered until the test calls `release`: a user looking at a preview.
    /// The request is handled at release time, against the documents as they are then.
    Hold,
    /// For `workspace/applyEdit`: before handling the edit, the user types this text at the
    /// start of the edit's first range (a `didChange` with the next version), then the edit is
    /// handled as `Answer` would. Other methods are answered at once.
    EditMeanwhile(String),
    /// Record the request and never answer it.
    Never,
}

/// Which action item the user picks in a `window/showMessageRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MessageChoice {
    /// None: the message is dismissed (the answer is `null`).
    #[default]
    Dismiss,
    /// The first action offered.
    First,
    /// The action with this title (`null` when none has it).
    Titled(String),
}

/// What became of one `workspace/applyEdit` the client received.
#[derive(Debug, Clone, PartialEq)]
pub enum EditOutcome {
    /// Applied; these open documents changed, now at these versions.
    Applied(Vec<(String, i32)>),
    /// Refused with this `failureReason` (a stale version, an overlap, or the script).
    Refused(String),
    /// Held by the script, not answered yet.
    Held,
    /// Never to be answered.
    Unanswered,
}

/// One `workspace/applyEdit` as the client received it, and what it did with it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEdit {
    /// The request's id.
    pub id: Value,
    /// The request's params (`label`, `edit`).
    pub params: Value,
    /// What the client did.
    pub outcome: EditOutcome,
}

impl ReceivedEdit {
    /// The `WorkspaceEdit`.
    pub fn edit(&self) -> &Value {
        &self.params["edit"]
    }

    /// The edit's `changeAnnotations` (`null` when absent).
    pub fn annotations(&self) -> &Value {
        &self.params["edit"]["changeAnnotations"]
    }

    /// Whether an editor would ask the user before applying: some annotation that an edit
    /// refers to has `needsConfirmation: true`.
    pub fn needs_confirmation(&self) -> bool {
        let annotations = self.annotations();
        let mut ids: Vec<&str> = Vec::new();
        for change in self.edit()["documentChanges"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(id) = change["annotationId"].as_str() {
                ids.push(id);
            }
            for edit in change["edits"].as_array().into_iter().flatten() {
                if let Some(id) = edit["annotationId"].as_str() {
                    ids.push(id);
                }
            }
        }
        ids.iter()
            .any(|id| annotations[*id]["needsConfirmation"] == true)
    }
}

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
    /// What the client does per server-to-client method; unlisted methods are answered.
    pub behaviours: Vec<(&'static str, Behaviour)>,
    /// The user's pick in `window/showMessageRequest`.
    pub message_choice: MessageChoice,
    /// How the client sends content changes (its own and those of applied edits).
    pub change_style: ChangeStyle,
    /// Whether the client advertises `workspaceEdit.documentChanges` (versioned edits); without
    /// it the server must send plain `changes`.
    pub document_changes: bool,
    /// Whether the client advertises `workspace.applyEdit` at all.
    pub apply_edit: bool,
    /// An existing root to serve (a restart on the same workspace) instead of a new one from
    /// the fixture; the caller keeps it alive.
    pub root: Option<PathBuf>,
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
            behaviours: Vec::new(),
            message_choice: MessageChoice::Dismiss,
            change_style: ChangeStyle::Incremental,
            document_changes: true,
            apply_edit: true,
            root: None,
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
    /// Responses that answer no request of ours: id `null` (malformed input) or an unknown id.
    stray_responses: Vec<Value>,
}

/// What goes down the pipe to the server. Everything the client sends, from the test body and
/// from the reader alike, goes through one queue, so the order on the wire is the order in
/// which it was decided (a `didChange` queued while the documents are locked keeps its place
/// relative to the versions the lock handed out).
enum Wire {
    Message(Value),
    Raw(Vec<u8>),
}

/// The editor side of the client: its documents and its script. The reader hands it each
/// server request and sends what it returns, in order; `tests/it/harness.rs` drives it directly.
#[derive(Debug, Clone, Default)]
pub struct ScriptedClient {
    /// The client's documents.
    pub editor: Editor,
    behaviours: HashMap<String, Behaviour>,
    message_choice: MessageChoice,
    /// Requests held by `Behaviour::Hold`, in arrival order.
    held: Vec<Value>,
    edits: Vec<ReceivedEdit>,
    /// Versions of documents the client never opened (tests of stray `didChange`s).
    stray_versions: HashMap<String, i32>,
}

impl ScriptedClient {
    /// A client with these documents and no script: every request is answered.
    pub fn new(editor: Editor) -> ScriptedClient {
        ScriptedClient {
            editor,
            ..ScriptedClient::default()
        }
    }

    /// From now on, treats requests with `method` as `behaviour` says.
    pub fn script(&mut self, method: &str, behaviour: Behaviour) {
        self.behaviours.insert(method.to_string(), behaviour);
    }

    /// From now on, the user picks `choice` in `window/showMessageRequest`.
    pub fn answer_messages_with(&mut self, choice: MessageChoice) {
        self.message_choice = choice;
    }

    /// Every `workspace/applyEdit` received so far, with what the client did with it.
    pub fn received_edits(&self) -> &[ReceivedEdit] {
        &self.edits
    }

    /// How many requests with `method` are held and not yet released.
    pub fn held(&self, method: &str) -> usize {
        self.held.iter().filter(|r| r["method"] == method).count()
    }

    /// Handles one server request as scripted; returns the messages to send, in order (the
    /// notifications an applied edit causes come before its answer). `settings` is the
    /// `workspace/configuration` answer.
    pub fn respond(&mut self, request: &Value, settings: &Value) -> Vec<Value> {
        let method = request["method"].as_str().unwrap_or("");
        let behaviour = self.behaviours.get(method).cloned().unwrap_or_default();
        let mut out = Vec::new();
        self.handle(request, behaviour, settings, &mut out);
        out
    }

    /// Handles the held requests with `method` now, as `behaviour` says (`Answer`: the user
    /// accepts the preview; `Refuse`: the user rejects it), against the documents as they are
    /// now. Returns the messages to send, in order.
    pub fn release(&mut self, method: &str, behaviour: &Behaviour, settings: &Value) -> Vec<Value> {
        let (now, still): (Vec<Value>, Vec<Value>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|r| r["method"] == method);
        self.held = still;
        let mut out = Vec::new();
        for request in &now {
            self.handle(request, behaviour.clone(), settings, &mut out);
        }
        out
    }

    fn handle(
        &mut self,
        request: &Value,
        behaviour: Behaviour,
        settings: &Value,
        out: &mut Vec<Value>,
    ) {
        let method = request["method"].as_str().unwrap_or("");
        let is_edit = method == "workspace/applyEdit";
        match behaviour {
            Behaviour::Never => {
                if is_edit {
                    self.record_edit(request, EditOutcome::Unanswered);
                }
            }
            Behaviour::Hold => {
                if is_edit {
                    self.record_edit(request, EditOutcome::Held);
                }
                self.held.push(request.clone());
            }
            Behaviour::Refuse(reason) => {
                let id = request["id"].clone();
                out.push(if is_edit {
                    self.record_edit(request, EditOutcome::Refused(reason.clone()));
                    json!({"jsonrpc": "2.0", "id": id,
                        "result": {"applied": false, "failureReason": reason}})
                } else {
                    json!({"jsonrpc": "2.0", "id": id,
                        "error": {"code": REQUEST_FAILED, "message": reason}})
                });
            }
            Behaviour::EditMeanwhile(typed) if is_edit => {
                if let Some((uri, start)) = first_edit_start(&request["params"]["edit"]) {
                    let change = json!({"range": {"start": start, "end": start}, "text": typed});
                    if let Some(version) = self
                        .editor
                        .type_changes(&uri, std::slice::from_ref(&change))
                    {
                        out.push(did_change(&uri, version, vec![change]));
                    }
                }
                self.handle(request, Behaviour::Answer, settings, out);
            }
            Behaviour::Answer | Behaviour::EditMeanwhile(_) => {
                if is_edit {
                    self.apply_edit(request, out);
                } else {
                    out.push(answer(request, settings, &self.message_choice));
                }
            }
        }
    }

    /// Applies a `workspace/applyEdit`: its `didOpen`/`didChange` notifications, then its answer.
    fn apply_edit(&mut self, request: &Value, out: &mut Vec<Value>) {
        let (result, outcome) = match self.editor.apply_workspace_edit(&request["params"]["edit"]) {
            Ok(applied) => {
                out.extend(applied.notifications.into_iter().map(
                    |note| json!({"jsonrpc": "2.0", "method": note.method, "params": note.params}),
                ));
                (
                    json!({"applied": true}),
                    EditOutcome::Applied(applied.changed),
                )
            }
            Err(reason) => (
                json!({"applied": false, "failureReason": reason}),
                EditOutcome::Refused(reason),
            ),
        };
        self.record_edit(request, outcome);
        out.push(json!({"jsonrpc": "2.0", "id": request["id"], "result": result}));
    }

    /// Records an edit, or updates the record of one held earlier (same id).
    fn record_edit(&mut self, request: &Value, outcome: EditOutcome) {
        match self.edits.iter_mut().find(|e| e.id == request["id"]) {
            Some(known) => known.outcome = outcome,
            None => self.edits.push(ReceivedEdit {
                id: request["id"].clone(),
                params: request["params"].clone(),
                outcome,
            }),
        }
    }
}

/// The document and start position of a `WorkspaceEdit`'s first text edit.
fn first_edit_start(edit: &Value) -> Option<(String, Value)> {
    if let Some(changes) = edit["documentChanges"].as_array() {
        return changes.iter().find_map(|change| {
            let uri = change["textDocument"]["uri"].as_str()?;
            let start = change["edits"].get(0)?["range"]["start"].clone();
            Some((uri.to_string(), start))
        });
    }
    let (uri, edits) = edit["changes"].as_object()?.iter().next()?;
    Some((uri.clone(), edits.get(0)?["range"]["start"].clone()))
}

fn did_change(uri: &str, version: i32, changes: Vec<Value>) -> Value {
    json!({"jsonrpc": "2.0", "method": "textDocument/didChange",
        "params": {"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}})
}

/// A running server and the client side of its pipe.
pub struct TestServer {
    outgoing: mpsc::UnboundedSender<Wire>,
    inbox: Arc<Mutex<Inbox>>,
    changed: Arc<Notify>,
    next_id: Mutex<i64>,
    settings: Arc<Mutex<Value>>,
    server: Option<JoinHandle<SessionEnd>>,
    reader: Option<JoinHandle<()>>,
    client: Arc<Mutex<ScriptedClient>>,
    progress: Arc<Mutex<ProgressControl>>,
    /// The negotiated encoding, from the `initialize` result.
    pub encoding: String,
    /// The `initialize` result.
    pub capabilities: Value,
    /// The parsed fixture.
    pub fixture: Fixture,
    /// The workspace root (a temporary directory, removed on drop).
    pub root: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// The default answer of a capable client to a request other than `workspace/applyEdit`.
fn answer(request: &Value, settings: &Value, choice: &MessageChoice) -> Value {
    let id = request["id"].clone();
    let result = match request["method"].as_str().unwrap_or("") {
        "workspace/configuration" => {
            let items = request["params"]["items"].as_array().map_or(0, Vec::len);
            Value::Array(vec![settings.clone(); items])
        }
        "window/showDocument" => json!({"success": true}),
        "window/showMessageRequest" => {
            let actions = request["params"]["actions"].as_array();
            let picked = match choice {
                MessageChoice::Dismiss => None,
                MessageChoice::First => actions.and_then(|a| a.first()),
                MessageChoice::Titled(title) => {
                    actions.and_then(|a| a.iter().find(|action| action["title"] == title.as_str()))
                }
            };
            picked.cloned().unwrap_or(Value::Null)
        }
        "window/workDoneProgress/create"
        | "workspace/codeLens/refresh"
        | "client/registerCapability"
        | "client/unregisterCapability" => Value::Null,
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
        let (dir, root) = match &options.root {
            Some(root) => (None, root.clone()),
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let root = dir.path().canonicalize().expect("canonical temp dir");
                (Some(dir), root)
            }
        };
        let fixture = Fixture::parse(options.fixture);
        for file in fixture.files.iter().filter(|_| options.root.is_none()) {
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
        let (outgoing, mut outgoing_rx) = mpsc::unbounded_channel::<Wire>();
        let progress = Arc::new(Mutex::new(ProgressControl::default()));
        let mut editor = Editor::new("utf-16");
        editor.style = options.change_style;
        let mut scripted = ScriptedClient::new(editor);
        for (method, behaviour) in &options.behaviours {
            scripted.script(method, behaviour.clone());
        }
        scripted.answer_messages_with(options.message_choice.clone());
        let client = Arc::new(Mutex::new(scripted));
        let reader = {
            let inbox = inbox.clone();
            let changed = changed.clone();
            let settings = settings.clone();
            let progress = progress.clone();
            let client = client.clone();
            let out = outgoing.clone();
            tokio::spawn(async move {
                let mut frames = FrameReader::new(tokio::io::BufReader::new(client_read));
                while let Ok(Some(frame)) = frames.next().await {
                    let body = frame.expect("the server writes well-formed frames");
                    let message: Value = serde_json::from_slice(&body).expect("server JSON");
                    let mut inbox = inbox.lock().expect("inbox");
                    if message.get("method").is_some() && message.get("id").is_some() {
                        let settings = settings.lock().expect("settings").clone();
                        let mut progress = progress.lock().expect("progress control");
                        let token = message["params"]["token"].as_str().unwrap_or("");
                        if message["method"] == "window/workDoneProgress/create"
                            && progress
                                .hold_create
                                .as_deref()
                                .is_some_and(|prefix| token.starts_with(prefix))
                        {
                            let choice = client.lock().expect("client").message_choice.clone();
                            progress.held.push(answer(&message, &settings, &choice));
                        } else {
                            // Sent while the client is locked, like the test body's own `didChange`s.
                            let mut client = client.lock().expect("client");
                            for reply in client.respond(&message, &settings) {
                                let _ = out.send(Wire::Message(reply));
                            }
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
                            let _ = out.send(Wire::Message(json!({"jsonrpc": "2.0",
                                "method": "window/workDoneProgress/cancel",
                                "params": {"token": token}})));
                        }
                        inbox.notifications.push(message);
                    } else {
                        let waiting = message["id"]
                            .as_i64()
                            .and_then(|id| inbox.pending.remove(&id));
                        match waiting {
                            Some(tx) => {
                                let _ = tx.send(message);
                            }
                            None => inbox.stray_responses.push(message),
                        }
                    }
                    drop(inbox);
                    changed.notify_waiters();
                }
            })
        };
        // One task writes everything the client sends, so the reader never waits on the writer
        // and the wire order is the queue order.
        tokio::spawn(async move {
            let mut writer = client_write;
            while let Some(wire) = outgoing_rx.recv().await {
                let written = match wire {
                    Wire::Message(message) => {
                        write_frame(&mut writer, message.to_string().as_bytes()).await
                    }
                    Wire::Raw(bytes) => match writer.write_all(&bytes).await {
                        Ok(()) => writer.flush().await,
                        Err(err) => Err(err),
                    },
                };
                if written.is_err() {
                    break;
                }
            }
        });

        let mut server = TestServer {
            outgoing,
            inbox,
            changed,
            next_id: Mutex::new(0),
            settings,
            server: Some(server),
            reader: Some(reader),
            client,
            progress,
            encoding: String::new(),
            capabilities: Value::Null,
            fixture,
            root: root.clone(),
            _dir: dir,
        };

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
                    "applyEdit": options.apply_edit,
                    // What `editor::Editor` implements: versioned edits, `create` only, and a
                    // whole edit applied or none of it.
                    "workspaceEdit": {
                        "documentChanges": options.document_changes,
                        "resourceOperations": ["create"],
                        "failureHandling": "transactional",
                        "changeAnnotationSupport": {"groupsOnLabel": true}
                    },
                    "didChangeWatchedFiles": {"dynamicRegistration": true},
                    "codeLens": {"refreshSupport": true}
                },
                "window": {
                    "workDoneProgress": options.work_done_progress,
                    "showDocument": {"support": true},
                    "showMessage": {"messageActionItem": {"additionalPropertiesSupport": false}}
                },
                "textDocument": {
                    "hover": {"contentFormat": ["markdown", "plaintext"]},
                    "codeLens": {}
                }
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
        server.client.lock().expect("client").editor.encoding = server.encoding.clone();
        server.capabilities = result;
        server.notify("initialized", json!({})).await;
        server
    }

    /// Sends raw bytes, for malformed-input tests.
    pub async fn send_raw(&self, bytes: &[u8]) {
        let _ = self.outgoing.send(Wire::Raw(bytes.to_vec()));
    }

    async fn send(&self, message: &Value) {
        // The server may have ended (a test of `exit`); what it no longer reads is lost, as
        // with a real pipe.
        let _ = self.outgoing.send(Wire::Message(message.clone()));
    }

    /// Sends a request and waits for its response: `Ok(result)` or `Err(error object)`.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, Value> {
        self.request_within(method, params, WAIT)
            .await
            .unwrap_or_else(|| panic!("no response to {method} within {WAIT:?}"))
    }

    /// Sends a request and waits at most `limit` for its response; `None` if none came.
    pub async fn request_within(
        &self,
        method: &str,
        params: Value,
        limit: Duration,
    ) -> Option<Result<Value, Value>> {
        let id = {
            let mut next = self.next_id.lock().expect("ids");
            *next += 1;
            *next
        };
        let (tx, rx) = oneshot::channel();
        self.inbox.lock().expect("inbox").pending.insert(id, tx);
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let response = match tokio::time::timeout(limit, rx).await {
            Ok(response) => response.expect("response channel"),
            Err(_) => {
                self.inbox.lock().expect("inbox").pending.remove(&id);
                return None;
            }
        };
        Some(match response.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(response["result"].clone()),
        })
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
            let _ = self.outgoing.send(Wire::Message(answer));
        }
    }

    /// From now on, treats server requests with `method` as `behaviour` says.
    pub fn script(&self, method: &str, behaviour: Behaviour) {
        self.client
            .lock()
            .expect("client")
            .script(method, behaviour);
    }

    /// From now on, the user picks `choice` in `window/showMessageRequest`.
    pub fn answer_messages_with(&self, choice: MessageChoice) {
        self.client
            .lock()
            .expect("client")
            .answer_messages_with(choice);
    }

    /// How many requests with `method` are held (`Behaviour::Hold`) and not yet released.
    pub fn held(&self, method: &str) -> usize {
        self.client.lock().expect("client").held(method)
    }

    /// Handles the held requests with `method` now, as `behaviour` says (`Answer`: the user
    /// accepts the preview; `Refuse`: the user rejects it), against the documents as they are
    /// now. Returns how many were released.
    pub fn release(&self, method: &str, behaviour: Behaviour) -> usize {
        let settings = self.settings.lock().expect("settings").clone();
        let mut client = self.client.lock().expect("client");
        let before = client.held(method);
        // Sent while the client is locked, so no `didChange` of the test body overtakes them.
        for message in client.release(method, &behaviour, &settings) {
            let _ = self.outgoing.send(Wire::Message(message));
        }
        before
    }

    /// Every `workspace/applyEdit` received so far, with what the client did with it.
    pub fn received_edits(&self) -> Vec<ReceivedEdit> {
        self.client
            .lock()
            .expect("client")
            .received_edits()
            .to_vec()
    }

    /// The client's copy of an open document.
    pub fn document(&self, uri: &str) -> Option<EditorDocument> {
        self.client
            .lock()
            .expect("client")
            .editor
            .document(uri)
            .cloned()
    }

    /// The client's copy of an open document's text; panics when it is not open.
    pub fn text(&self, uri: &str) -> String {
        self.document(uri)
            .unwrap_or_else(|| panic!("{uri} is not open in the test client"))
            .text
    }

    /// Executes a code action the way an editor does: its `edit` is applied locally (the
    /// editor's own workspace-edit logic, then `didChange`s), then its `command`, if any, is
    /// sent as `workspace/executeCommand`. Returns what the edit changed, or why the editor
    /// refused it.
    pub async fn execute_code_action(&self, action: &Value) -> Result<Applied, String> {
        let applied = match action.get("edit").filter(|e| !e.is_null()) {
            Some(edit) => {
                let mut client = self.client.lock().expect("client");
                let applied = client.editor.apply_workspace_edit(edit)?;
                for note in &applied.notifications {
                    let _ = self.outgoing.send(Wire::Message(
                        json!({"jsonrpc": "2.0", "method": note.method, "params": note.params}),
                    ));
                }
                applied
            }
            None => Applied::default(),
        };
        if let Some(command) = action.get("command").filter(|c| !c.is_null()) {
            self.request(
                "workspace/executeCommand",
                json!({"command": command["command"], "arguments": command["arguments"]}),
            )
            .await
            .map_err(|e| format!("the code action's command failed: {e}"))?;
        }
        Ok(applied)
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
        let mut client = self.client.lock().expect("client");
        client.editor.open(&uri, text);
        client.stray_versions.remove(&uri);
        let _ = self.outgoing.send(Wire::Message(json!({"jsonrpc": "2.0",
            "method": "textDocument/didOpen",
            "params": {"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}})));
        uri
    }

    /// Sends one `didChange` with the given content changes (the user typing), applying them to
    /// the client's copy too; returns the new version.
    pub async fn change(&self, uri: &str, changes: Vec<Value>) -> i32 {
        let mut client = self.client.lock().expect("client");
        let version = match client.editor.type_changes(uri, &changes) {
            Some(version) => version,
            None => {
                let v = client.stray_versions.entry(uri.to_string()).or_insert(0);
                *v += 1;
                *v
            }
        };
        let _ = self
            .outgoing
            .send(Wire::Message(did_change(uri, version, changes)));
        version
    }

    /// Closes a document.
    pub async fn close(&self, uri: &str) {
        let mut client = self.client.lock().expect("client");
        client.editor.close(uri);
        let _ = self.outgoing.send(Wire::Message(json!({"jsonrpc": "2.0",
            "method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})));
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

    /// Every response received so far that answers no request of ours (id `null` for input
    /// the server could not attribute to a request, or an id we never used), in order.
    pub fn stray_responses(&self) -> Vec<Value> {
        self.inbox.lock().expect("inbox").stray_responses.clone()
    }

    /// Waits until at least `count` stray responses have arrived; returns all of them.
    pub async fn wait_stray_responses(&self, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            let got = self.stray_responses();
            if got.len() >= count {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {count} responses to no request within {WAIT:?}; got {got:#?}");
            }
        }
    }

    /// Waits until a server-to-client request with `method` has arrived; returns the first.
    pub async fn wait_server_request(&self, method: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            if let Some(first) = self.server_requests(method).into_iter().next() {
                return first;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no {method} request from the server within {WAIT:?}");
            }
        }
    }

    /// Waits until a notification with `method` satisfies `accept`; returns the latest such.
    pub async fn wait_notification(&self, method: &str, accept: impl Fn(&Value) -> bool) -> Value {
        self.wait_matching(method, 0, true, WAIT, accept).await
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
        self.wait_matching(method, seen, false, WAIT, accept).await
    }

    async fn wait_matching(
        &self,
        method: &str,
        seen: usize,
        latest: bool,
        limit: Duration,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
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
        self.wait_diagnostics_within(uri, WAIT, accept).await
    }

    /// [`wait_diagnostics`](Self::wait_diagnostics) with a limit of its own, for work that is
    /// slow in a debug build on a loaded machine.
    pub async fn wait_diagnostics_within(
        &self,
        uri: &str,
        limit: Duration,
        accept: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let found = self
            .wait_matching("textDocument/publishDiagnostics", 0, true, limit, |n| {
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

/// Writes the journal (and the folder) of a `fix` run that ended `days_ago` days ago under
/// `root`'s runs folder, for the tests of `[journal]` retention; returns its run id.
pub fn old_run(root: &std::path::Path, days_ago: u64) -> String {
    use conductor::journal::{self, Event, Record, RunState, UsageTotals};
    let id = "20260515-080000-000001".to_string();
    let runs = journal::runs_dir(root);
    std::fs::create_dir_all(runs.join(&id)).expect("the old run's folder");
    std::fs::write(runs.join(&id).join("plan.md"), "# old").expect("the old plan");
    let at_ms = journal::now_ms() - days_ago * 86_400_000;
    let events = [
        Event::RunStarted {
            run_id: id.clone(),
            kind: "fix".into(),
            goal: "an old fix".into(),
            selection: None,
            config_digest: "d".into(),
            workspace: root.display().to_string(),
        },
        Event::Outcome {
            state: RunState::Done,
            message: String::new(),
            files: vec![],
            usage: UsageTotals::default(),
        },
    ];
    let mut lines = String::new();
    for (seq, event) in events.into_iter().enumerate() {
        let record = Record {
            seq: seq as u64,
            at_ms,
            event,
        };
        lines.push_str(&serde_json::to_string(&record).expect("json"));
        lines.push('\n');
    }
    std::fs::write(runs.join(format!("{id}.jsonl")), lines).expect("the old journal");
    id
}

/// Whether the run `id` is gone from `root`'s runs folder, journal and folder both.
pub fn run_removed(root: &std::path::Path, id: &str) -> bool {
    let runs = conductor::journal::runs_dir(root);
    !runs.join(id).exists() && !runs.join(format!("{id}.jsonl")).exists()
}
