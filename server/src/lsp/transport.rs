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

use serde_json::{Value, json};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};
use tokio::sync::mpsc;

/// The longest header line accepted; longer lines are junk.
const MAX_HEADER_LINE: usize = 8 * 1024;
/// The largest body accepted. Larger frames are read and discarded, and answered with an error.
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
                length = Some(len);
            } else if !is_header(&line) {
                return Ok(Some(Err(FrameError::BadHeader(format!(
                    "`{}` is not a header",
                    String::from_utf8_lossy(&line)
                )))));
            }
        }
        let len = match length {
            Some(Ok(len)) => len,
            Some(Err(why)) => return Ok(Some(Err(FrameError::BadHeader(why)))),
            None => return Ok(Some(Err(FrameError::BadHeader("no Content-Length".into())))),
        };
        read_body(&mut self.inner, len).await
    }
}

async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
) -> io::Result<Option<Result<Vec<u8>, FrameError>>> {
    if len > MAX_BODY {
        let discarded =
            tokio::io::copy(&mut reader.take(len as u64), &mut tokio::io::sink()).await?;
        if (discarded as usize) < len {
            return Ok(None);
        }
        return Ok(Some(Err(FrameError::TooLarge(len))));
    }
    let mut body = vec![0u8; len];
    match reader.read_exact(&mut body).await {
        Ok(_) => Ok(Some(Ok(body))),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(err) => Err(err),
    }
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

/// JSON-RPC's `Parse error`.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC's `Invalid Request`.
pub const INVALID_REQUEST: i64 = -32600;

/// Checks that a frame body is a JSON-RPC message the framework can decode. On failure, returns
/// the error response to send instead.
pub fn validate(body: &[u8]) -> Result<Value, Value> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(err) => {
            return Err(error_response(
                Value::Null,
                PARSE_ERROR,
                &format!("the message is not valid JSON: {err}"),
            ));
        }
    };
    let Value::Object(map) = &value else {
        return Err(error_response(
            Value::Null,
            INVALID_REQUEST,
            "a message must be a JSON object (batches are not part of LSP)",
        ));
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
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(error_response(
            id,
            INVALID_REQUEST,
            "`jsonrpc` must be \"2.0\"",
        ));
    }
    let decodes = if map.contains_key("method") {
        matches!(map.get("method"), Some(Value::String(_)))
            && serde_json::from_value::<tower_lsp_server::jsonrpc::Request>(value.clone()).is_ok()
    } else if map.contains_key("result") || map.contains_key("error") {
        serde_json::from_value::<tower_lsp_server::jsonrpc::Response>(value.clone()).is_ok()
    } else {
        false
    };
    if !decodes {
        return Err(error_response(
            id,
            INVALID_REQUEST,
            "not a JSON-RPC request, notification or response",
        ));
    }
    Ok(value)
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

/// Runs a tower-lsp-server service behind the resilient framing layer.
///
/// `hook` sees every valid incoming message, in arrival order, before the framework does; it
/// must not block. Returns when the client sends `exit` or closes the input.
pub async fn serve<I, O, S, H>(
    input: I,
    output: O,
    service: S,
    socket: tower_lsp_server::ClientSocket,
    mut hook: H,
) -> SessionEnd
where
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
    S: tower::Service<
            tower_lsp_server::jsonrpc::Request,
            Response = Option<tower_lsp_server::jsonrpc::Response>,
        > + Send
        + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send,
    H: FnMut(&Value),
{
    let (mut to_server, server_in) = tokio::io::duplex(1 << 16);
    let (server_out, from_server) = tokio::io::duplex(1 << 16);
    let (errors_tx, mut errors_rx) = mpsc::unbounded_channel::<Value>();
    let framework = tower_lsp_server::Server::new(server_in, server_out, socket)
        .concurrency_level(16)
        .serve(service);

    let reader = async move {
        let mut end = SessionEnd::default();
        let mut frames = FrameReader::new(tokio::io::BufReader::new(input));
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
                    let _ =
                        errors_tx.send(error_response(Value::Null, PARSE_ERROR, &err.to_string()));
                    continue;
                }
            };
            let message = match validate(&body) {
                Ok(message) => message,
                Err(response) => {
                    tracing::warn!(
                        "rejected a message from the client: {}",
                        response["error"]["message"].as_str().unwrap_or("invalid")
                    );
                    let _ = errors_tx.send(response);
                    continue;
                }
            };
            let method = message.get("method").and_then(Value::as_str).unwrap_or("");
            let is_exit = method == "exit";
            end.shutdown_requested |= method == "shutdown";
            hook(&message);
            if write_frame(&mut to_server, &body).await.is_err() {
                break;
            }
            if is_exit {
                end.exited = true;
                break;
            }
        }
        // Closing the framework's input ends its session once in-flight work is answered.
        drop(to_server);
        drop(errors_tx);
        end
    };

    let writer = async move {
        let mut output = output;
        let mut frames = FrameReader::new(tokio::io::BufReader::new(from_server));
        let mut errors_open = true;
        loop {
            tokio::select! {
                frame = frames.next() => match frame {
                    Ok(Some(Ok(body))) => {
                        if write_frame(&mut output, &body).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(Err(err))) => tracing::error!("the framework wrote a bad frame: {err}"),
                    Ok(None) | Err(_) => break,
                },
                error = errors_rx.recv(), if errors_open => match error {
                    Some(response) => {
                        if write_frame(&mut output, response.to_string().as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    None => errors_open = false,
                },
            }
        }
        while let Ok(response) = errors_rx.try_recv() {
            let _ = write_frame(&mut output, response.to_string().as_bytes()).await;
        }
        let _ = output.flush().await;
    };

    let ((), end, ()) = tokio::join!(framework, reader, writer);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(validate(br#"{"jsonrpc":"2.0","id":1,"result":null}"#).is_ok());
        assert!(validate(br#"{"jsonrpc":"2.0","method":"initialized"}"#).is_ok());
    }
}
