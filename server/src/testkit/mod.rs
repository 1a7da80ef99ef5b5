//! A fault-injecting model server on loopback, for tests and benchmarks.
//!
//! [`ModelServer`] listens on `127.0.0.1` (an ephemeral port) and speaks both wire formats,
//! streamed and not: OpenAI-compatible `POST …/chat/completions`, Anthropic `POST …/v1/messages`,
//! and `GET …/models` for both. It plays [`Reply`]s scripted per agent (chosen by the
//! `x-conductor-agent` header), records every request for assertions, and injects the faults of
//! [`Fault`]: latency, error statuses with `Retry-After`, connection resets, truncated streams,
//! invalid SSE and garbage JSON. It is a small HTTP/1.1 server written on tokio so that faults
//! can be placed byte by byte, which a full HTTP stack would not allow.
//!
//! **Invariant:** it binds loopback only; nothing in the tests reaches the network.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::llm::Usage;

/// A fault to inject instead of (or in the middle of) a normal reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status, an optional `Retry-After` value and a body (the provider's usual
    /// error JSON when `body` is `None`).
    Status {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` header, verbatim.
        retry_after: Option<String>,
        /// The body.
        body: Option<String>,
    },
    /// Reset the connection (TCP RST) after reading the request, before any reply.
    Reset,
    /// Send this many SSE events of a streamed reply, then reset the connection (non-streamed:
    /// half the body, then reset).
    ResetMidStream {
        /// Events sent first.
        after_events: usize,
    },
    /// Send this many SSE events, then end the body cleanly without the final event
    /// (non-streamed: half the body, then close before `content-length` is reached).
    TruncatedStream {
        /// Events sent first.
        after_events: usize,
    },
    /// Send this many SSE events, then a line that is not SSE.
    InvalidSse {
        /// Events sent first.
        after_events: usize,
    },
    /// Answer 200 with a body that is not JSON (streamed: an event whose data is not JSON).
    GarbageJson,
    /// Send this many SSE events (or, non-streamed, nothing), then go silent with the
    /// connection open until the client leaves or the server stops.
    Stall {
        /// Events sent first.
        after_events: usize,
    },
}

impl Fault {
    /// `429` with `Retry-After: <seconds>`.
    pub fn rate_limited(retry_after_seconds: &str) -> Self {
        Fault::Status {
            status: 429,
            retry_after: Some(retry_after_seconds.to_string()),
            body: None,
        }
    }

    /// An error status with the provider's usual body.
    pub fn status(status: u16) -> Self {
        Fault::Status {
            status,
            retry_after: None,
            body: None,
        }
    }
}

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The reply text.
    pub text: String,
    /// Usage to report; `None` reports none (the client must estimate).
    pub usage: Option<Usage>,
    /// Wait before the response head.
    pub latency: Duration,
    /// Wait between SSE events.
    pub event_delay: Duration,
    /// Characters of text per streamed delta.
    pub chunk_chars: usize,
    /// A fault instead of the normal reply.
    pub fault: Option<Fault>,
}

impl Reply {
    /// A normal reply with this text and usage counted from the request and the text.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            usage: Some(Usage::default()),
            latency: Duration::ZERO,
            event_delay: Duration::ZERO,
            chunk_chars: 16,
            fault: None,
        }
    }

    /// A fault.
    pub fn fault(fault: Fault) -> Self {
        Self {
            fault: Some(fault),
            ..Self::text("")
        }
    }

    /// Reports exactly this usage.
    pub fn with_usage(mut self, input_tokens: u64, output_tokens: u64) -> Self {
        self.usage = Some(Usage {
            input_tokens,
            output_tokens,
        });
        self
    }

    /// Reports no usage.
    pub fn without_usage(mut self) -> Self {
        self.usage = None;
        self
    }

    /// Waits this long before answering.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Waits this long between streamed events.
    pub fn with_event_delay(mut self, delay: Duration) -> Self {
        self.event_delay = delay;
        self
    }

    /// Streams this many characters per delta.
    pub fn with_chunk_chars(mut self, chars: usize) -> Self {
        self.chunk_chars = chars.max(1);
        self
    }

    /// Adds a fault to the reply (faults mid-stream send part of the text first).
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ….
    pub method: String,
    /// The path, query included.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    pub body: String,
}

impl RecordedRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Default)]
struct State {
    scripts: HashMap<String, VecDeque<Reply>>,
    /// Replies for the first request of an agent whose body holds a text, tried before
    /// `scripts`: concurrent runs each get the reply meant for them.
    matched: Vec<(String, String, Reply)>,
    fallback: Option<Reply>,
    requests: Vec<RecordedRequest>,
    models: Vec<String>,
    models_unlisted: bool,
    required_key: Option<String>,
    listing_wants_bearer: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The server. Stops when dropped.
#[derive(Debug)]
pub struct ModelServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

/// The agent name that matches any agent in [`ModelServer::push`].
pub const ANY_AGENT: &str = "*";

impl ModelServer {
    /// Starts a server on `127.0.0.1` with an ephemeral port. Must be called inside a tokio
    /// runtime; the server runs until dropped.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let shutdown = CancellationToken::new();
        let (task_shared, task_shutdown) = (Arc::clone(&shared), shutdown.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = task_shutdown.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (shared, shutdown) = (Arc::clone(&task_shared), task_shutdown.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = serve(stream, &shared) => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            shared,
            shutdown,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL for an OpenAI-compatible client: `http://127.0.0.1:<port>/v1`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The base URL for an Anthropic client: `http://127.0.0.1:<port>`.
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a reply for requests from `agent` (or [`ANY_AGENT`]); queued replies play in
    /// order, each once.
    pub fn push(&self, agent: &str, reply: Reply) {
        self.shared
            .lock()
            .scripts
            .entry(agent.to_string())
            .or_default()
            .push_back(reply);
    }

    /// Queues a reply for the first request from `agent` whose body contains `needle` (tried
    /// before the replies of [`ModelServer::push`]), so that runs in parallel each get theirs.
    pub fn push_for(&self, agent: &str, needle: &str, reply: Reply) {
        self.shared
            .lock()
            .matched
            .push((agent.to_string(), needle.to_string(), reply));
    }

    /// The reply played when no queued reply is left (without one: HTTP 500 naming the agent).
    pub fn set_fallback(&self, reply: Reply) {
        self.shared.lock().fallback = Some(reply);
    }

    /// The model names `GET …/models` lists. Once set, a chat request for another model gets
    /// 404 "model not found", as Ollama and hosted providers answer.
    pub fn set_models(&self, names: &[&str]) {
        self.shared.lock().models = names.iter().map(|n| n.to_string()).collect();
    }

    /// Answers `GET …/models` with 404, as servers that cannot list their models do. The
    /// models set with [`ModelServer::set_models`] still decide which chat requests find theirs.
    pub fn hide_model_list(&self) {
        self.shared.lock().models_unlisted = true;
    }

    /// Requires this key (as `Authorization: Bearer …` or `x-api-key`) on every request;
    /// others get 401, as a hosted provider answers a wrong key.
    pub fn require_key(&self, key: &str) {
        self.shared.lock().required_key = Some(key.to_string());
    }

    /// Answers `GET …/models` with 401 unless the key comes as `Authorization: Bearer …`, as a
    /// server that serves both wire formats on one port does when its listing is OpenAI's.
    pub fn listing_wants_bearer(&self) {
        self.shared.lock().listing_wants_bearer = true;
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The most requests that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Replies still queued for an agent.
    pub fn queued(&self, agent: &str) -> usize {
        self.shared
            .lock()
            .scripts
            .get(agent)
            .map_or(0, VecDeque::len)
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads one request; `None` when the client sent something that is not HTTP/1.1 we accept.
async fn read_request(stream: &mut TcpStream) -> Option<RecordedRequest> {
    let mut buf = Vec::with_capacity(8192);
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let path = request_line.next()?.to_string();
    let mut headers = BTreeMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 * 1024)];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(RecordedRequest {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A wire format the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI-compatible chat completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

async fn serve(mut stream: TcpStream, shared: &Shared) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let _in_flight = InFlight::enter(shared);
    let path = request.path.split('?').next().unwrap_or("").to_string();
    let agent = request
        .header("x-conductor-agent")
        .unwrap_or("")
        .to_string();
    let rejected = {
        let mut state = shared.lock();
        let presented = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| request.header("x-api-key"));
        let bearer = request
            .header("authorization")
            .is_some_and(|v| v.starts_with("Bearer "));
        let rejected = state
            .required_key
            .as_deref()
            .is_some_and(|key| presented != Some(key))
            || (state.listing_wants_bearer
                && request.method == "GET"
                && path.ends_with("/models")
                && !bearer);
        if rejected {
            state.requests.push(request.clone());
        }
        rejected
    };
    if rejected {
        let body = r#"{"error": {"message": "invalid api key", "type": "authentication_error"}}"#;
        let _ = write_simple(&mut stream, 401, "application/json", &[], body).await;
        return;
    }
    if request.method == "GET" && path.ends_with("/models") {
        let listing = {
            let mut state = shared.lock();
            state.requests.push(request.clone());
            let data: Vec<Value> = state
                .models
                .iter()
                .map(|id| json!({"id": id, "object": "model", "type": "model"}))
                .collect();
            (!state.models_unlisted).then(|| json!({"object": "list", "data": data}).to_string())
        };
        let _ = match listing {
            Some(body) => write_simple(&mut stream, 200, "application/json", &[], &body).await,
            None => write_simple(&mut stream, 404, "text/plain", &[], "404 page not found").await,
        };
        return;
    }
    let requested_model = request
        .json()
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string);
    let unknown_model = {
        let state = shared.lock();
        match &requested_model {
            Some(model) if !state.models.is_empty() && !state.models.contains(model) => {
                Some(model.clone())
            }
            _ => None,
        }
    };
    if let Some(model) = unknown_model {
        shared.lock().requests.push(request.clone());
        let body = json!({"error": {"message": format!("model '{model}' not found"), "type": "not_found_error"}}).to_string();
        let _ = write_simple(&mut stream, 404, "application/json", &[], &body).await;
        return;
    }
    let reply = next_reply(shared, &request, &agent);
    let format = if path.ends_with("/chat/completions") {
        Format::OpenAi
    } else if path.ends_with("/v1/messages") {
        Format::Anthropic
    } else {
        let _ = write_simple(&mut stream, 404, "text/plain", &[], "no such endpoint").await;
        return;
    };
    let Some(reply) = reply else {
        let body = format!("the test server has no scripted reply for agent {agent:?}");
        let _ = write_simple(&mut stream, 500, "text/plain", &[], &body).await;
        return;
    };
    tokio::time::sleep(reply.latency).await;
    let body = request.json();
    let streamed = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("test-model")
        .to_string();
    let usage = reply.usage.map(|u| {
        if u == Usage::default() {
            Usage {
                input_tokens: crate::llm::estimate_tokens(&request.body),
                output_tokens: crate::llm::estimate_tokens(&reply.text),
            }
        } else {
            u
        }
    });

    match &reply.fault {
        Some(Fault::Status {
            status,
            retry_after,
            body,
        }) => {
            let body = body.clone().unwrap_or_else(|| error_body(format, *status));
            let extra: Vec<(&str, &str)> = retry_after
                .as_deref()
                .map(|v| vec![("retry-after", v)])
                .unwrap_or_default();
            let _ = write_simple(&mut stream, *status, "application/json", &extra, &body).await;
            return;
        }
        Some(Fault::Reset) => {
            reset(stream);
            return;
        }
        Some(Fault::GarbageJson) if !streamed => {
            let _ = write_simple(
                &mut stream,
                200,
                "application/json",
                &[],
                "<html><body>502 Bad Gateway</body></html>{\"choi",
            )
            .await;
            return;
        }
        Some(Fault::Stall { .. }) if !streamed => {
            std::future::pending::<()>().await;
        }
        _ => {}
    }

    if !streamed {
        let body = whole_reply(format, &model, &reply.text, usage);
        match reply.fault {
            // Non-streamed, the stream faults cut the body short: a reset or a clean close
            // before `content-length` bytes arrived.
            Some(Fault::ResetMidStream { .. }) | Some(Fault::TruncatedStream { .. }) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let half = &body.as_bytes()[..body.len() / 2];
                if stream.write_all(head.as_bytes()).await.is_ok()
                    && stream.write_all(half).await.is_ok()
                    && stream.flush().await.is_ok()
                {
                    if matches!(reply.fault, Some(Fault::ResetMidStream { .. })) {
                        reset(stream);
                    } else {
                        let _ = stream.shutdown().await;
                    }
                }
            }
            _ => {
                let _ = write_simple(&mut stream, 200, "application/json", &[], &body).await;
            }
        }
        return;
    }

    let events = stream_events(format, &model, &reply.text, reply.chunk_chars, usage);
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let cut = match reply.fault {
        Some(Fault::ResetMidStream { after_events })
        | Some(Fault::TruncatedStream { after_events })
        | Some(Fault::InvalidSse { after_events })
        | Some(Fault::Stall { after_events }) => after_events.min(events.len()),
        Some(Fault::GarbageJson) => 1.min(events.len()),
        _ => events.len(),
    };
    for (i, event) in events.iter().take(cut).enumerate() {
        if i > 0 && !reply.event_delay.is_zero() {
            tokio::time::sleep(reply.event_delay).await;
        }
        if write_chunk(&mut stream, event.as_bytes()).await.is_err() {
            return;
        }
    }
    match reply.fault {
        Some(Fault::ResetMidStream { .. }) => {
            reset(stream);
            return;
        }
        Some(Fault::InvalidSse { .. }) => {
            let _ = write_chunk(&mut stream, b"this line is not server-sent events\n\n").await;
        }
        Some(Fault::GarbageJson) => {
            let _ = write_chunk(&mut stream, b"data: {\"choices\": [{\"delta\": {\"cont\n\n").await;
        }
        Some(Fault::Stall { .. }) => {
            std::future::pending::<()>().await;
        }
        _ => {}
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let _ = stream.shutdown().await;
}

fn next_reply(shared: &Shared, request: &RecordedRequest, agent: &str) -> Option<Reply> {
    let mut state = shared.lock();
    state.requests.push(request.clone());
    if let Some(at) = state
        .matched
        .iter()
        .position(|(a, needle, _)| a == agent && request.body.contains(needle.as_str()))
    {
        return Some(state.matched.remove(at).2);
    }
    let queued = state
        .scripts
        .get_mut(agent)
        .and_then(VecDeque::pop_front)
        .or_else(|| {
            state
                .scripts
                .get_mut(ANY_AGENT)
                .and_then(VecDeque::pop_front)
        });
    queued.or_else(|| state.fallback.clone())
}

/// Closes with a TCP reset rather than an orderly close, as a crashed proxy would.
fn reset(stream: TcpStream) {
    // A zero linger makes the close send RST at once; with a zero timeout it cannot block.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

async fn write_simple(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

async fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
    framed.extend_from_slice(data);
    framed.extend_from_slice(b"\r\n");
    stream.write_all(&framed).await?;
    stream.flush().await
}

fn error_body(format: Format, status: u16) -> String {
    let (kind, message) = match status {
        401 => ("authentication_error", "invalid x-api-key"),
        404 => ("not_found_error", "model not found"),
        429 => ("rate_limit_error", "Rate limit reached, retry later"),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    };
    match format {
        Format::OpenAi => json!({"error": {"message": message, "type": kind}}).to_string(),
        Format::Anthropic => {
            json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
        }
    }
}

fn whole_reply(format: Format, model: &str, text: &str, usage: Option<Usage>) -> String {
    match format {
        Format::OpenAi => {
            let mut body = json!({
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            });
            if let Some(u) = usage {
                body["usage"] = json!({"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total()});
            }
            body.to_string()
        }
        Format::Anthropic => {
            let mut body = json!({
                "id": "msg_test",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
            });
            if let Some(u) = usage {
                body["usage"] =
                    json!({"input_tokens": u.input_tokens, "output_tokens": u.output_tokens});
            }
            body.to_string()
        }
    }
}

/// Splits text into pieces of `chars` characters, never inside a character.
fn pieces(text: &str, chars: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (i, _) in text.char_indices() {
        if count == chars {
            out.push(&text[start..i]);
            start = i;
            count = 0;
        }
        count += 1;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The SSE events of a streamed reply, each a complete frame ending in a blank line.
pub fn stream_events(
    format: Format,
    model: &str,
    text: &str,
    chunk_chars: usize,
    usage: Option<Usage>,
) -> Vec<String> {
    let data = |v: Value| format!("data: {v}\n\n");
    let named = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
    let mut events = Vec::new();
    match format {
        Format::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            events.push(data(chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )));
            for piece in pieces(text, chunk_chars) {
                events.push(data(chunk(json!({"content": piece}), Value::Null)));
            }
            events.push(data(chunk(json!({}), json!("stop"))));
            if let Some(u) = usage {
                events.push(data(json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model, "choices": [],
                    "usage": {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total()}})));
            }
            events.push("data: [DONE]\n\n".to_string());
        }
        Format::Anthropic => {
            let input = usage.map_or(Value::Null, |u| json!(u.input_tokens));
            events.push(named(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_test", "type": "message", "role": "assistant", "model": model, "content": [],
                    "stop_reason": null, "usage": {"input_tokens": input, "output_tokens": 1}}}),
            ));
            events.push(named(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            events.push(named("ping", json!({"type": "ping"})));
            for piece in pieces(text, chunk_chars) {
                events.push(named(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                ));
            }
            events.push(named(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ));
            let output = usage.map_or(Value::Null, |u| json!(u.output_tokens));
            events.push(named(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": output}}),
            ));
            events.push(named("message_stop", json!({"type": "message_stop"})));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_never_split_a_character() {
        assert_eq!(pieces("héllo wörld", 3), vec!["hél", "lo ", "wör", "ld"]);
        assert!(pieces("", 4).is_empty());
    }
}
