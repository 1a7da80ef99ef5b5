//! A resilient JSON-RPC framing layer in front of tower-lsp-server's transport.
//!
//! tower-lsp-server stops reading after the first message it cannot decode, which would end the
//! session on one bad byte from a client. So every message is framed and validated here first:
//! junk before a header is skipped, a frame with a bad header or a body that is not JSON is
//! answered with a JSON-RPC `Parse error` (id `null`), a JSON body that is not a JSON-RPC
//! message gets `Invalid Request`, and only well-formed messages reach the framework. The reader
//! also hands each message to a synchronous hook *before* forwarding it, which is how document
//! mutations are applied strictly in arrival order (see `lsp::sync`).
//!
//! Output from the framework and the error responses produced here go through one writer, a
//! whole frame at a time, so frames never interleave.

use std::io;

use futures::SinkExt as _;
use serde_json::{Map, Value, json};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};
use tokio::sync::mpsc;
use tower_lsp_server::jsonrpc::{Error as JsonRpcError, Id, Request, Response};

/// The longest header line accepted; longer lines are junk.
const MAX_HEADER_LINE: usize = 8 * 1024;
/// The largest body accepted. A larger `Content-Length` is refused as soon as the header is
/// read (its body is then skipped like any bytes that are not a header).
pub const MAX_BODY: usize = 256 * 1024 * 1024;

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Bytes that were not a header were skipped before the next header.
    Junk {
        /// How many bytes were skipped.
        skipped: usize,
    },
    /// The header block had no usable `Content-Length`.
    BadHeader(String),
    /// The body was larger than [`MAX_BODY`] and was discarded.
    TooLarge(usize),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Junk { skipped } => {
                write!(f, "skipped {skipped} bytes that were not a message header")
            }
            FrameError::BadHeader(why) => write!(f, "bad message header: {why}"),
            FrameError::TooLarge(n) => {
                write!(f, "message of {n} bytes exceeds the {MAX_BODY}-byte limit")
            }
        }
    }
}

/// Reads one header line (without its terminator), up to [`MAX_HEADER_LINE`] bytes. Returns
/// `None` at end of input. An over-long line is consumed and returned truncated.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> io::Result<Option<(Vec<u8>, usize)>> {
    let mut line = Vec::new();
    let mut consumed = 0usize;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if consumed == 0 {
                None
            } else {
                Some((line, consumed))
            });
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() < MAX_HEADER_LINE {
            let room = MAX_HEADER_LINE - line.len();
            line.extend_from_slice(&buf[..take.min(room)]);
        }
        reader.consume(take);
        consumed += take;
        if done {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            return Ok(Some((line, consumed)));
        }
    }
}

fn content_length(line: &[u8]) -> Option<Result<usize, String>> {
    let text = std::str::from_utf8(line).ok()?;
    let (name, value) = text.split_once(':')?;
    if !name.trim().eq_ignore_ascii_case("content-length") {
        return None;
    }
    Some(
        value
            .trim()
            .parse::<usize>()
            .map_err(|e| format!("Content-Length `{}`: {e}", value.trim())),
    )
}

fn is_header(line: &[u8]) -> bool {
    // `Name: value` with a token-ish name.
    match line.iter().position(|&b| b == b':') {
        Some(0) | None => false,
        Some(i) => line[..i]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-'),
    }
}

/// Reads frames from a byte stream, recovering from anything malformed.
pub struct FrameReader<R> {
    inner: R,
    /// A header line consumed while skipping junk, to be parsed as the start of the next frame.
    carried: Option<Vec<u8>>,
}

impl<R: AsyncBufRead + Unpin> FrameReader<R> {
    /// Wraps a buffered reader.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            carried: None,
        }
    }

    /// Reads the next frame's body. `Ok(None)` is the end of input. A `FrameError` is
    /// recoverable: the next call reads the next message.
    pub async fn next(&mut self) -> io::Result<Option<Result<Vec<u8>, FrameError>>> {
        let mut skipped = 0usize;
        let mut length: Option<Result<usize, String>> = None;
        let mut in_header = false;
        loop {
            let line = match self.carried.take() {
                Some(line) => line,
                None => match read_line(&mut self.inner).await? {
                    Some((line, consumed)) => {
                        if !in_header && !line.is_empty() && !is_header(&line) {
                            skipped += consumed;
                            continue;
                        }
                        line
                    }
                    None if skipped > 0 || in_header => {
                        return Ok(Some(Err(FrameError::Junk {
                            skipped: skipped.max(1),
                        })));
                    }
                    None => return Ok(None),
                },
            };
            if !in_header {
                if line.is_empty() {
                    // Blank lines between messages are tolerated.
                    continue;
                }
                if skipped > 0 {
                    // Report the junk first; this header line starts the next frame.
                    self.carried = Some(line);
                    return Ok(Some(Err(FrameError::Junk { skipped })));
                }
                in_header = true;
            } else if line.is_empty() {
                break;
            }
            if let Some(len) = content_length(&line) {
                // Two lengths leave no way to know where the body ends; guessing (the last one
                // used to win) can split a message in two. The frame is refused.
                if let (Some(Ok(first)), Ok(second)) = (&length, &len)
                    && first != second
                {
                    self.skip_rest_of_header().await?;
                    return Ok(Some(Err(FrameError::BadHeader(format!(
                        "two Content-Length headers disagree ({first} and {second})"
                    )))));
                }
                length = Some(len);
            } else if !is_header(&line) {
                return Ok(Some(Err(FrameError::BadHeader(format!(
                    "`{}` is not a header",
                    String::from_utf8_lossy(&line)
                )))));
            }
        }
        let len = match length {
            Some(Ok(len)) if len > MAX_BODY => return Ok(Some(Err(FrameError::TooLarge(len)))),
            Some(Ok(len)) => len,
            Some(Err(why)) => return Ok(Some(Err(FrameError::BadHeader(why)))),
            None => return Ok(Some(Err(FrameError::BadHeader("no Content-Length".into())))),
        };
        read_body(&mut self.inner, len).await
    }
}

impl<R: AsyncBufRead + Unpin> FrameReader<R> {
    /// Consumes header lines up to the blank line that ends the header block.
    async fn skip_rest_of_header(&mut self) -> io::Result<()> {
        while let Some((line, _)) = read_line(&mut self.inner).await? {
            if line.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
) -> io::Result<Option<Result<Vec<u8>, FrameError>>> {
    // The buffer grows as the bytes arrive: a header that announces 200 MB and sends nothing
    // must not cost 200 MB up front.
    let mut body = Vec::with_capacity(len.min(1024 * 1024));
    let read = reader.take(len as u64).read_to_end(&mut body).await?;
    if read < len {
        return Ok(None);
    }
    Ok(Some(Ok(body)))
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, body: &[u8]) -> io::Result<()> {
    let header = format!("Content-Length: {}\r\n\r\n", body.len());
    let mut frame = Vec::with_capacity(header.len() + body.len());
    frame.extend_from_slice(header.as_bytes());
    frame.extend_from_slice(body);
    writer.write_all(&frame).await?;
    writer.flush().await
}

/// A JSON-RPC error response.
pub fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The raw JSON text of a top-level member of an object (the last one, when the key repeats,
/// as the decoder keeps it), found without decoding: a number id like
/// `123456789012345678901234567890` is echoed exactly as sent, where decoding it would turn it
/// into a float. Keys written with escapes are not recognised.
pub fn raw_member<'b>(body: &'b [u8], key: &str) -> Option<&'b str> {
    members(body)
        .into_iter()
        .rev()
        .find(|(name, _)| *name == key.as_bytes())
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
}

/// The top-level members of a JSON object as (raw key, raw value), in order, found without
/// decoding; the scan stops at the first thing that is not a member.
fn members(body: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut at = skip_ws(body, 0);
    if body.get(at) != Some(&b'{') {
        return out;
    }
    at += 1;
    loop {
        at = skip_ws(body, at);
        if body.get(at) != Some(&b'"') {
            return out;
        }
        let Some(name_end) = skip_string(body, at) else {
            return out;
        };
        let name = &body[at + 1..name_end - 1];
        at = skip_ws(body, name_end);
        if body.get(at) != Some(&b':') {
            return out;
        }
        let start = skip_ws(body, at + 1);
        let Some(end) = skip_value(body, start) else {
            return out;
        };
        out.push((name, &body[start..end]));
        at = skip_ws(body, end);
        match body.get(at) {
            Some(b',') => at += 1,
            _ => return out,
        }
    }
}

/// The JSON-RPC members (`jsonrpc`, `id`, `method`, `params`, `result`, `error`) a message may
/// hold once only: decoders disagree on which copy wins, so a message with one twice is refused
/// rather than guessed at.
const PROTOCOL_KEYS: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];

/// A frame body decoded in one pass: a top-level object's members (the last copy of a repeated
/// key, as `serde_json` keeps it) with the first protocol member that appeared twice, or
/// anything else. Finding the repeat while decoding spares the reader a second walk over the
/// body, which for a `didOpen` of tens of megabytes was a byte-by-byte scan of the whole text
/// on the thread that reads every message.
enum Decoded {
    Object(Map<String, Value>, Option<&'static str>),
    Other,
}

impl<'de> serde::Deserialize<'de> for Decoded {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DecodedVisitor)
    }
}

struct DecodedVisitor;

impl<'de> serde::de::Visitor<'de> for DecodedVisitor {
    type Value = Decoded;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Decoded, A::Error> {
        let mut map = Map::new();
        let mut repeated = None;
        while let Some(key) = access.next_key::<String>()? {
            let value: Value = access.next_value()?;
            if repeated.is_none() && map.contains_key(&key) {
                repeated = PROTOCOL_KEYS.into_iter().find(|k| *k == key);
            }
            map.insert(key, value);
        }
        Ok(Decoded::Object(map, repeated))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Decoded, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Decoded::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Decoded, E> {
        Ok(Decoded::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Decoded, E> {
        Ok(Decoded::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Decoded, E> {
        Ok(Decoded::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Decoded, E> {
        Ok(Decoded::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Decoded, E> {
        Ok(Decoded::Other)
    }

    fn visit_unit<E>(self) -> Result<Decoded, E> {
        Ok(Decoded::Other)
    }
}

fn skip_ws(body: &[u8], mut at: usize) -> usize {
    while body.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// The end (exclusive) of the string that starts at `at`.
fn skip_string(body: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The end (exclusive) of the value that starts at `at`; nested values are skipped with a
/// counter, not a recursion.
fn skip_value(body: &[u8], at: usize) -> Option<usize> {
    match body.get(at)? {
        b'"' => skip_string(body, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while i < body.len() {
                match body[i] {
                    b'"' => {
                        i = skip_string(body, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let mut i = at;
            while i < body.len() && !matches!(body[i], b',' | b'}' | b']') {
                i += 1;
            }
            // Trailing whitespace is not part of the value.
            while i > at && body[i - 1].is_ascii_whitespace() {
                i -= 1;
            }
            Some(i)
        }
    }
}

/// The bytes of an error response to the message `body`, whose id is echoed exactly as the
/// client wrote it when it is a number (decoded ids lose digits past 64 bits).
pub fn error_frame(response: &Value, body: &[u8]) -> Vec<u8> {
    let raw = raw_member(body, "id").filter(|raw| {
        raw.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
            && !raw.is_empty()
    });
    match (raw, response.get("error")) {
        (Some(raw), Some(error)) if response["id"].is_number() => {
            format!(r#"{{"jsonrpc":"2.0","id":{raw},"error":{error}}}"#).into_bytes()
        }
        _ => response.to_string().into_bytes(),
    }
}

/// JSON-RPC's `Method not found`.
pub const METHOD_NOT_FOUND: i64 = -32601;

/// JSON-RPC's `Parse error`.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC's `Invalid Request`.
pub const INVALID_REQUEST: i64 = -32600;

/// A validated incoming message, decoded once from its bytes.
#[derive(Debug)]
pub enum Incoming {
    /// A request or notification from the client (the map holds `method`, maybe `id` and
    /// `params`). The hook may take `params` out of it.
    Call(Map<String, Value>),
    /// The client's answer to one of the server's requests.
    Answer(Response),
}

impl Incoming {
    /// The method of a call.
    pub fn method(&self) -> Option<&str> {
        match self {
            Incoming::Call(map) => map.get("method").and_then(Value::as_str),
            Incoming::Answer(_) => None,
        }
    }
}

fn id_of(value: &Value) -> Option<Id> {
    match value {
        Value::Number(n) => n.as_i64().map(Id::Number),
        Value::String(s) => Some(Id::String(s.clone())),
        Value::Null => Some(Id::Null),
        _ => None,
    }
}

/// Checks that a frame body is a JSON-RPC message and decodes it, once. On failure, returns the
/// error response to send instead.
pub fn validate(body: &[u8]) -> Result<Incoming, Value> {
    let (mut map, repeated) = match serde_json::from_slice::<Decoded>(body) {
        Ok(Decoded::Object(map, repeated)) => (map, repeated),
        Ok(Decoded::Other) => {
            return Err(error_response(
                Value::Null,
                INVALID_REQUEST,
                "a message must be a JSON object (batches are not part of LSP)",
            ));
        }
        Err(err) => {
            return Err(error_response(
                Value::Null,
                PARSE_ERROR,
                &format!("the message is not valid JSON: {err}"),
            ));
        }
    };
    let id = match map.get("id") {
        Some(id @ (Value::Number(_) | Value::String(_) | Value::Null)) => id.clone(),
        Some(_) => {
            return Err(error_response(
                Value::Null,
                INVALID_REQUEST,
                "`id` must be a number, a string or null",
            ));
        }
        None => Value::Null,
    };
    let invalid = |message: &str| Err(error_response(id.clone(), INVALID_REQUEST, message));
    if let Some(key) = repeated {
        return invalid(&format!(
            "`{key}` appears more than once in the message; send each member once"
        ));
    }
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("`jsonrpc` must be \"2.0\"");
    }
    if map.get("id").is_some_and(|v| id_of(v).is_none()) {
        return invalid("`id` must be an integer, a string or null");
    }
    if map.contains_key("method") {
        if !matches!(map.get("method"), Some(Value::String(_))) {
            return invalid("`method` must be a string");
        }
        if map
            .get("params")
            .is_some_and(|p| !matches!(p, Value::Object(_) | Value::Array(_) | Value::Null))
        {
            return invalid("`params` must be an object or an array");
        }
        return Ok(Incoming::Call(map));
    }
    let Some(answer_id) = map.get("id").and_then(id_of) else {
        return invalid("not a JSON-RPC request, notification or response");
    };
    let body = match (map.remove("result"), map.remove("error")) {
        (Some(result), None) => Ok(result),
        (None, Some(error)) => match serde_json::from_value::<JsonRpcError>(error) {
            Ok(error) => Err(error),
            Err(err) => return invalid(&format!("a response's `error` is malformed: {err}")),
        },
        _ => return invalid("a response has exactly one of `result` and `error`"),
    };
    Ok(Incoming::Answer(Response::from_parts(answer_id, body)))
}

/// Builds the framework's request from a validated call.
fn into_request(mut call: Map<String, Value>) -> Request {
    let method = match call.remove("method") {
        Some(Value::String(method)) => method,
        _ => String::new(),
    };
    let mut builder = Request::build(method);
    if let Some(id) = call.get("id").and_then(id_of) {
        builder = builder.id(id);
    }
    if let Some(params) = call.remove("params")
        && !params.is_null()
    {
        builder = builder.params(params);
    }
    builder.finish()
}

/// How a session ended, for the process exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionEnd {
    /// A `shutdown` request was received.
    pub shutdown_requested: bool,
    /// An `exit` notification was received (otherwise the input ended).
    pub exited: bool,
}

impl SessionEnd {
    /// The exit code LSP asks for: 0 after `shutdown` then `exit`, 1 otherwise.
    pub fn exit_code(self) -> u8 {
        u8::from(!(self.shutdown_requested && self.exited))
    }
}

/// How many client requests may be in flight at once; beyond this the dispatcher waits (the
/// reader, and so document sync, goes on).
const MAX_IN_FLIGHT: usize = 64;

/// Runs a tower-lsp-server service behind the resilient framing layer.
///
/// Three kinds of task share the work, so that nothing a handler does can delay the reading of
/// the editor's messages:
/// - the **reader** (this future) frames, validates and decodes each message once, calls `hook`
///   on it in arrival order (document sync), and hands it on; it never awaits a handler;
/// - the **dispatcher** feeds the service: requests each run on their own task, concurrently;
///   notifications run one after another, in arrival order (their handlers only schedule work);
/// - the **writer** writes every outgoing frame, whole.
///
/// `hook` must not block. Returns when the client sends `exit` or closes the input.
pub async fn serve<I, O, S, H>(
    input: I,
    output: O,
    service: S,
    socket: tower_lsp_server::ClientSocket,
    mut hook: H,
) -> SessionEnd
where
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request, Response = Option<Response>> + Send + 'static,
    S::Error: std::fmt::Display + Send,
    S::Future: Send + 'static,
    H: FnMut(&mut Map<String, Value>),
{
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(write_all(output, out_rx));
    let (server_requests, mut client_answers) = tower_lsp_server::Loopback::split(socket);
    let outgoing = tokio::spawn(forward_server_requests(server_requests, out_tx.clone()));
    let (calls_tx, calls_rx) = mpsc::unbounded_channel::<Request>();
    let dispatcher = tokio::spawn(dispatch(service, calls_rx, out_tx.clone()));

    let mut end = SessionEnd::default();
    let mut frames = FrameReader::new(tokio::io::BufReader::new(input));
    let send_json = |value: Value| {
        let _ = out_tx.send(value.to_string().into_bytes());
    };
    loop {
        let frame = match frames.next().await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(err) => {
                tracing::error!("reading from the client failed: {err}");
                break;
            }
        };
        let body = match frame {
            Ok(body) => body,
            Err(err) => {
                tracing::warn!("malformed input from the client: {err}");
                send_json(error_response(Value::Null, PARSE_ERROR, &err.to_string()));
                continue;
            }
        };
        let reject = |response: Value| {
            tracing::warn!(
                "rejected a message from the client: {}",
                response["error"]["message"].as_str().unwrap_or("invalid")
            );
            let _ = out_tx.send(error_frame(&response, &body));
        };
        let message = match validate(&body) {
            Ok(message) => message,
            Err(response) => {
                reject(response);
                continue;
            }
        };
        // Requests the framework would answer wrongly, or not at all, are answered here.
        if let Incoming::Call(call) = &message
            && let Some(id) = call.get("id")
        {
            let method = call.get("method").and_then(Value::as_str).unwrap_or("");
            if end.shutdown_requested {
                // LSP: every request after `shutdown` is an Invalid Request, known or not.
                reject(error_response(
                    id.clone(),
                    INVALID_REQUEST,
                    &format!("`{method}` arrived after `shutdown`; the server is shutting down"),
                ));
                continue;
            }
            if method.starts_with("$/") {
                // Only notifications whose method starts with `$/` may be ignored; a request
                // must be answered, and the server implements none.
                reject(error_response(
                    id.clone(),
                    METHOD_NOT_FOUND,
                    &format!("`{method}` is not a request this server implements"),
                ));
                continue;
            }
        }
        drop(body);
        match message {
            Incoming::Answer(answer) => {
                if client_answers.send(answer).await.is_err() {
                    tracing::debug!("an answer arrived after the session ended");
                }
            }
            Incoming::Call(mut call) => {
                let method = call.get("method").and_then(Value::as_str).unwrap_or("");
                let is_exit = method == "exit";
                end.shutdown_requested |= method == "shutdown";
                hook(&mut call);
                if calls_tx.send(into_request(call)).is_err() {
                    break;
                }
                if is_exit {
                    end.exited = true;
                    break;
                }
            }
        }
    }
    // Closing the dispatcher's input ends the session once in-flight work is answered; a
    // handler still waiting after a short grace period — for example on a server request the
    // departed client will never answer — must not keep the process alive.
    drop(calls_tx);
    drop(out_tx);
    let rest = async {
        let _ = dispatcher.await;
        outgoing.abort();
        let _ = writer.await;
    };
    if tokio::time::timeout(EXIT_GRACE, rest).await.is_err() {
        tracing::warn!(
            "work still in flight {} ms after the input ended; stopping anyway",
            EXIT_GRACE.as_millis()
        );
    }
    end
}

/// Feeds the service: requests concurrently, each on its own task; notifications in order.
async fn dispatch<S>(
    mut service: S,
    mut calls: mpsc::UnboundedReceiver<Request>,
    out: mpsc::UnboundedSender<Vec<u8>>,
) where
    S: tower::Service<Request, Response = Option<Response>> + Send + 'static,
    S::Error: std::fmt::Display + Send,
    S::Future: Send + 'static,
{
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let (notes_tx, mut notes_rx) = mpsc::unbounded_channel::<S::Future>();
    let notifications = tokio::spawn(async move {
        while let Some(future) = notes_rx.recv().await {
            let _ = future.await;
        }
    });
    let mut requests = tokio::task::JoinSet::new();
    while let Some(call) = calls.recv().await {
        if let Err(err) = std::future::poll_fn(|cx| service.poll_ready(cx)).await {
            tracing::debug!("the service stopped accepting messages: {err}");
            break;
        }
        if call.id().is_none() {
            let _ = notes_tx.send(service.call(call));
            continue;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        // `initialize` is answered before anything after it is dispatched: the framework moves
        // to "initialized" only while its handler runs, and a client that does not wait for the
        // answer must not have its next request refused as "not initialized".
        let initialize = call.method() == "initialize";
        let future = service.call(call);
        let out = out.clone();
        let answer = async move {
            let _permit = permit;
            match future.await {
                Ok(Some(response)) => match serde_json::to_vec(&response) {
                    Ok(bytes) => {
                        let _ = out.send(bytes);
                    }
                    Err(err) => tracing::error!("a response could not be serialized: {err}"),
                },
                Ok(None) => {}
                Err(err) => tracing::debug!("a request ended without an answer: {err}"),
            }
        };
        if initialize {
            answer.await;
        } else {
            requests.spawn(answer);
        }
        // Reap finished requests so the set does not grow for the whole session.
        while requests.try_join_next().is_some() {}
    }
    drop(notes_tx);
    let _ = notifications.await;
    while requests.join_next().await.is_some() {}
}

/// Writes the server's own requests and notifications to the client.
async fn forward_server_requests<R>(mut requests: R, out: mpsc::UnboundedSender<Vec<u8>>)
where
    R: futures::Stream<Item = Request> + Unpin,
{
    use futures::StreamExt as _;
    while let Some(request) = requests.next().await {
        match serde_json::to_vec(&request) {
            Ok(bytes) => {
                if out.send(bytes).is_err() {
                    break;
                }
            }
            Err(err) => tracing::error!("a server request could not be serialized: {err}"),
        }
    }
}

/// The one writer: every frame goes out whole, in the order it was queued.
async fn write_all<O: AsyncWrite + Unpin>(
    mut output: O,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(body) = frames.recv().await {
        if write_frame(&mut output, &body).await.is_err() {
            break;
        }
    }
    let _ = output.flush().await;
}

/// How long in-flight work may take to finish after the input ends.
pub const EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_protocol_member_is_refused_and_other_repeats_are_not_our_business() {
        for key in ["jsonrpc", "id", "method", "params"] {
            let body = match key {
                "jsonrpc" => r#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"m"}"#.to_string(),
                "id" => r#"{"jsonrpc":"2.0","id":7,"id":8,"method":"shutdown"}"#.to_string(),
                "method" => r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#.to_string(),
                _ => r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{},"params":[]}"#.to_string(),
            };
            let Err(answer) = validate(body.as_bytes()) else {
                panic!("{key}: a message with `{key}` twice was accepted");
            };
            assert_eq!(answer["error"]["code"], INVALID_REQUEST, "{key}: {answer}");
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("`{key}` appears more than once"))),
                "{key}: {answer}"
            );
        }
        // Found while decoding, so a repeat spelt with an escape is one too.
        let Err(answer) = validate(br#"{"jsonrpc":"2.0","id":1,"\u0069d":2,"method":"m"}"#) else {
            panic!("a message with `id` twice (once escaped) was accepted");
        };
        assert_eq!(answer["error"]["code"], INVALID_REQUEST, "{answer}");
        // Not an object: refused as before.
        for body in [&b"[1,2]"[..], b"7", b"\"x\"", b"null", b"true"] {
            let Err(answer) = validate(body) else {
                panic!("{body:?} was accepted");
            };
            assert_eq!(answer["error"]["code"], INVALID_REQUEST, "{answer}");
        }
        // A key repeated inside `params` is the handler's to judge, not the framing's.
        assert!(
            validate(br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1,"a":2}}"#).is_ok()
        );
    }

    async fn frames(input: &[u8]) -> Vec<Result<String, FrameError>> {
        let mut reader = FrameReader::new(input);
        let mut out = Vec::new();
        while let Some(frame) = reader.next().await.expect("in-memory read") {
            out.push(frame.map(|b| String::from_utf8_lossy(&b).into_owned()));
        }
        out
    }

    #[tokio::test]
    async fn reads_consecutive_frames_with_any_header_case() {
        let got =
            frames(b"Content-Length: 2\r\n\r\n{}content-length:4\r\nContent-Type: x\r\n\r\nnull")
                .await;
        assert_eq!(got, vec![Ok("{}".into()), Ok("null".into())]);
    }

    #[tokio::test]
    async fn skips_junk_then_recovers() {
        let got = frames(b"garbage here\r\nmore\nContent-Length: 2\r\n\r\n{}").await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            matches!(got[0], Err(FrameError::Junk { skipped: 19 })),
            "{got:?}"
        );
        assert_eq!(got[1], Ok("{}".into()));
    }

    #[tokio::test]
    async fn a_bad_content_length_is_reported_and_the_next_frame_still_read() {
        let got = frames(b"Content-Length: abc\r\n\r\nContent-Length: 2\r\n\r\n{}").await;
        assert!(matches!(got[0], Err(FrameError::BadHeader(_))), "{got:?}");
        assert_eq!(got.last(), Some(&Ok("{}".into())));
    }

    #[tokio::test]
    async fn a_truncated_body_is_the_end_of_input() {
        assert!(frames(b"Content-Length: 10\r\n\r\n{}").await.is_empty());
    }

    #[tokio::test]
    async fn conflicting_content_lengths_refuse_the_frame_and_the_next_one_is_read() {
        let got = frames(
            b"Content-Length: 2\r\nContent-Length: 4\r\n\r\n{}{}\r\nContent-Length: 2\r\n\r\n[]",
        )
        .await;
        assert!(
            matches!(&got[0], Err(FrameError::BadHeader(why)) if why.contains("disagree")),
            "{got:?}"
        );
        assert_eq!(got.last(), Some(&Ok("[]".into())), "{got:?}");
        // The same length twice is no conflict.
        let same = frames(b"Content-Length: 2\r\ncontent-length: 2\r\n\r\n{}").await;
        assert_eq!(same, vec![Ok("{}".into())]);
    }

    #[tokio::test]
    async fn a_content_length_beyond_the_limit_is_refused_without_reading_the_body() {
        // The client sends the header and then nothing: the refusal must not wait for the
        // announced gigabyte.
        let (mut client, server) = tokio::io::duplex(1024);
        client
            .write_all(format!("Content-Length: {}\r\n\r\n", MAX_BODY + 1).as_bytes())
            .await
            .expect("write");
        let mut reader = FrameReader::new(tokio::io::BufReader::new(server));
        let frame = tokio::time::timeout(std::time::Duration::from_secs(2), reader.next())
            .await
            .expect("refused at once")
            .expect("in-memory read");
        assert_eq!(frame, Some(Err(FrameError::TooLarge(MAX_BODY + 1))));
    }

    #[test]
    fn ids_are_echoed_exactly_as_sent() {
        let body = br#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"x"}"#;
        let response = validate(body).expect_err("not an LSP integer");
        let frame = String::from_utf8(error_frame(&response, body)).expect("utf-8");
        assert!(
            frame.contains(r#""id":123456789012345678901234567890,"#),
            "{frame}"
        );
        let parsed: Value = serde_json::from_str(&frame).expect("valid JSON");
        assert_eq!(parsed["error"]["code"], INVALID_REQUEST);
        assert_eq!(
            raw_member(
                br#" { "a" : {"id":1,"s":"}\""}, "id" : -7 , "b":[1]}"#,
                "id"
            ),
            Some("-7")
        );
        assert_eq!(raw_member(br#"{"id":"x"}"#, "id"), Some(r#""x""#));
        assert_eq!(raw_member(b"[1]", "id"), None);
        // String ids keep the ordinary encoding.
        let body = br#"{"jsonrpc":"1.0","id":"s","method":"x"}"#;
        let response = validate(body).expect_err("wrong version");
        assert_eq!(
            error_frame(&response, body),
            response.to_string().into_bytes()
        );
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(
            validate(b"{nope").unwrap_err()["error"]["code"],
            PARSE_ERROR
        );
        assert_eq!(
            validate(b"[1]").unwrap_err()["error"]["code"],
            INVALID_REQUEST
        );
        let no_version = validate(br#"{"id":3,"method":"x"}"#).unwrap_err();
        assert_eq!(no_version["id"], 3);
        assert_eq!(no_version["error"]["code"], INVALID_REQUEST);
        assert!(validate(br#"{"jsonrpc":"2.0","id":3}"#).is_err());
        assert!(validate(br#"{"jsonrpc":"2.0","method":7}"#).is_err());
        assert!(validate(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#).is_ok());
        assert!(validate(br#"{"jsonrpc":"2.0","id":1.5,"method":"initialize"}"#).is_err());
        assert!(validate(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":5}"#).is_err());
        assert!(
            validate(br#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#)
                .is_err()
        );
        assert!(validate(br#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#).is_err());
        assert!(validate(br#"{"jsonrpc":"2.0","id":1,"result":null}"#).is_ok());
        assert!(validate(br#"{"jsonrpc":"2.0","method":"initialized"}"#).is_ok());
    }
}
