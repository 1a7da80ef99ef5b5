//! An incremental parser for server-sent events, fed the body's bytes as they arrive.
//!
//! It follows the event-stream format (fields `event`, `data`, `id`, `retry`; comments start
//! with `:`; a blank line ends an event; `\n`, `\r\n` and `\r` end lines) with one deliberate
//! strictness: a non-empty line without a colon is reported as an invalid frame, because from a
//! model provider it means a broken proxy or a truncated write, not a field to ignore.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// A frame that is not valid server-sent events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SSE frame: {reason}: {line:?}")]
pub struct SseError {
    /// What is wrong.
    pub reason: &'static str,
    /// The offending line (at most 200 bytes).
    pub line: String,
}

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// A `\r` ended the last chunk: a `\n` at the start of the next one belongs to it.
    pending_cr: bool,
}

/// Longest line accepted; a provider never sends one longer, a broken one might never stop.
const MAX_LINE: usize = 8 * 1024 * 1024;

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of the body, calling `on_event` for every event it completes.
    pub fn push(
        &mut self,
        mut chunk: &[u8],
        on_event: &mut dyn FnMut(SseEvent) -> Result<(), SseError>,
    ) -> Result<(), SseError> {
        if self.pending_cr {
            self.pending_cr = false;
            if chunk.first() == Some(&b'\n') {
                chunk = &chunk[1..];
            }
        }
        let mut start = 0;
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            if b == b'\n' || b == b'\r' {
                let line_end = i;
                if b == b'\r' {
                    if i + 1 < chunk.len() {
                        if chunk[i + 1] == b'\n' {
                            i += 1;
                        }
                    } else {
                        self.pending_cr = true;
                    }
                }
                if self.buffer.is_empty() {
                    self.line(&chunk[start..line_end], on_event)?;
                } else {
                    let mut line = std::mem::take(&mut self.buffer);
                    line.extend_from_slice(&chunk[start..line_end]);
                    self.line(&line, on_event)?;
                }
                start = i + 1;
            }
            i += 1;
        }
        self.buffer.extend_from_slice(&chunk[start..]);
        if self.buffer.len() > MAX_LINE {
            return Err(SseError {
                reason: "a line longer than 8 MiB",
                line: crate::llm::body_head(&self.buffer),
            });
        }
        Ok(())
    }

    /// Whether bytes of an unfinished line or event are waiting for more input.
    pub fn is_mid_event(&self) -> bool {
        !self.buffer.is_empty() || self.has_data || self.event.is_some()
    }

    fn line(
        &mut self,
        line: &[u8],
        on_event: &mut dyn FnMut(SseEvent) -> Result<(), SseError>,
    ) -> Result<(), SseError> {
        if line.is_empty() {
            if self.has_data {
                let event = SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                };
                self.has_data = false;
                return on_event(event);
            }
            self.event = None;
            return Ok(());
        }
        let text = std::str::from_utf8(line).map_err(|_| SseError {
            reason: "not UTF-8",
            line: crate::llm::body_head(line),
        })?;
        if text.starts_with(':') {
            return Ok(());
        }
        let Some((field, value)) = text.split_once(':') else {
            return Err(SseError {
                reason: "a line without a field name",
                line: crate::llm::body_head(line),
            });
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            // `id` and `retry` matter for browsers reconnecting, not for one model reply.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Result<Vec<SseEvent>, SseError> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for chunk in input.chunks(piece) {
            parser.push(chunk, &mut |e| {
                events.push(e);
                Ok(())
            })?;
        }
        Ok(events)
    }

    #[test]
    fn events_are_the_same_however_the_body_is_cut() {
        let body = b": keep-alive\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\ndata: [DONE]\r\r";
        let whole = parse_in_pieces(body, body.len()).expect("valid");
        assert_eq!(
            whole,
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "x\ny".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
        for piece in 1..body.len() {
            assert_eq!(
                parse_in_pieces(body, piece).expect("valid"),
                whole,
                "{piece}"
            );
        }
    }

    #[test]
    fn a_line_without_a_colon_is_an_invalid_frame() {
        let err = parse_in_pieces(b"data: {}\n\n<html>oops\n\n", 5).expect_err("invalid");
        assert!(err.to_string().contains("<html>oops"), "{err}");
    }

    #[test]
    fn an_unfinished_event_is_visible() {
        let mut parser = SseParser::new();
        parser
            .push(b"data: {\"par", &mut |_| Ok(()))
            .expect("valid");
        assert!(parser.is_mid_event());
    }
}
