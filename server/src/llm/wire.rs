//! The wire formats: the [`Provider`] trait and its two implementations, [`OpenAiCompatible`]
//! (chat completions) and [`Anthropic`] (Messages). A provider turns a request into a URL,
//! headers and a JSON body, and turns a reply (whole or streamed) back into text and usage;
//! transport, retries and budgets live in [`super::client`] and are shared.

use std::borrow::Cow;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::sse::SseEvent;
use super::{MessageRole, ProviderKind, Usage};

/// A request as it goes on the wire: already redacted, with the model and limits resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct WireRequest<'a> {
    /// The model name.
    pub model: &'a str,
    /// The system prompt.
    pub system: Option<&'a str>,
    /// The conversation.
    pub messages: &'a [(MessageRole, String)],
    /// Most tokens in the reply.
    pub max_tokens: u32,
    /// Sampling temperature.
    pub temperature: f32,
    /// Whether to stream.
    pub stream: bool,
    /// The body key of `max_tokens` (OpenAI-compatible only; Anthropic always uses `max_tokens`).
    pub max_tokens_key: &'a str,
}

/// What a reply carried besides its text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplyMeta {
    /// Usage, when the provider reported it.
    pub usage: Option<Usage>,
    /// The model that answered.
    pub model: Option<String>,
    /// Why it stopped.
    pub stop_reason: Option<String>,
}

/// One wire format.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Which format this is.
    fn kind(&self) -> ProviderKind;
    /// The chat endpoint for a base URL.
    fn chat_url(&self, base_url: &str) -> String;
    /// The model-listing endpoint for a base URL.
    fn models_url(&self, base_url: &str) -> String;
    /// Authentication and version headers. The key's header is marked sensitive so that no
    /// logger or debug print shows it.
    fn headers(&self, api_key: Option<&str>, version: &str) -> Result<HeaderMap, String>;
    /// The JSON body of a request.
    fn body(&self, request: &WireRequest<'_>) -> Value;
    /// Reads a non-streamed reply: its text and metadata, or what is wrong with it.
    fn parse_reply(&self, body: &Value) -> Result<(String, ReplyMeta), String>;
    /// A decoder for one streamed reply.
    fn stream_decoder(&self) -> Box<dyn StreamDecoder>;
}

/// Turns the events of one streamed reply into text deltas and metadata.
pub trait StreamDecoder: Send {
    /// Handles one event, appending any new text to `delta`. An error event from the provider or
    /// an event that is not the expected JSON is an error.
    fn event(&mut self, event: &SseEvent, delta: &mut String) -> Result<(), String>;
    /// Whether the provider said the reply is complete.
    fn is_complete(&self) -> bool;
    /// What the stream reported besides text.
    fn meta(&self) -> ReplyMeta;
}

fn sensitive(value: &str) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| "the API key contains characters not allowed in a header".to_string())?;
    value.set_sensitive(true);
    Ok(value)
}

fn error_message(value: &Value) -> Option<String> {
    let error = value.get("error")?;
    Some(match error {
        Value::String(s) => s.clone(),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| other.to_string()),
    })
}

/// Parses one event's data into its typed form. Typed parsing borrows the text instead of
/// building a JSON tree, which keeps a 2,000-event stream well under a millisecond or two.
fn parse_event<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, String> {
    serde_json::from_str(data).map_err(|err| {
        let what = if err.is_data() {
            "is not the expected JSON"
        } else {
            "is not JSON"
        };
        format!(
            "an event's data {what} ({err}): {:?}",
            super::body_head(data.as_bytes())
        )
    })
}

#[derive(Deserialize)]
struct OpenAiChunk<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<OpenAiChoice<'a>>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct OpenAiChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<OpenAiDelta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct OpenAiDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct AnthropicEvent<'a> {
    #[serde(default, rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    message: Option<AnthropicMessage>,
    #[serde(default, borrow)]
    delta: Option<AnthropicDelta<'a>>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize, Default)]
struct AnthropicMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct AnthropicDelta<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

/// OpenAI-compatible chat completions.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiCompatible;

impl Provider for OpenAiCompatible {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }

    fn chat_url(&self, base_url: &str) -> String {
        format!("{}/chat/completions", base_url.trim_end_matches('/'))
    }

    fn models_url(&self, base_url: &str) -> String {
        format!("{}/models", base_url.trim_end_matches('/'))
    }

    fn headers(&self, api_key: Option<&str>, _version: &str) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        if let Some(key) = api_key {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                sensitive(&format!("Bearer {key}"))?,
            );
        }
        Ok(headers)
    }

    fn body(&self, request: &WireRequest<'_>) -> Value {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = request.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        for (role, content) in request.messages {
            let role = match role {
                MessageRole::User => "user",
                MessageRole::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": content}));
        }
        let mut body = json!({
            "model": request.model,
            "messages": messages,
            "temperature": request.temperature,
            "stream": request.stream,
        });
        body[request.max_tokens_key] = json!(request.max_tokens);
        if request.stream {
            // Without this, OpenAI-compatible servers send no usage in a stream.
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    fn parse_reply(&self, body: &Value) -> Result<(String, ReplyMeta), String> {
        if let Some(message) = error_message(body) {
            return Err(format!("the provider reported an error: {message}"));
        }
        let choice = body
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or("no `choices[0]` in the reply")?;
        let text = match choice.pointer("/message/content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => return Err(format!("`message.content` is not a string: {other}")),
        };
        Ok((
            text,
            ReplyMeta {
                usage: openai_usage(body),
                model: body
                    .get("model")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                stop_reason: choice
                    .get("finish_reason")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
        ))
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(OpenAiStream::default())
    }
}

fn openai_usage(body: &Value) -> Option<Usage> {
    let usage = body.get("usage")?;
    Some(Usage {
        input_tokens: usage.get("prompt_tokens")?.as_u64()?,
        output_tokens: usage
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

#[derive(Debug, Default)]
struct OpenAiStream {
    meta: ReplyMeta,
    done: bool,
}

impl StreamDecoder for OpenAiStream {
    fn event(&mut self, event: &SseEvent, delta: &mut String) -> Result<(), String> {
        if event.data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: OpenAiChunk<'_> = parse_event(&event.data)?;
        if let Some(error) = chunk.error {
            return Err(format!(
                "the provider reported an error mid-stream: {}",
                error_message(&json!({ "error": error })).unwrap_or_default()
            ));
        }
        if let Some(usage) = chunk.usage {
            self.meta.usage = Some(Usage {
                input_tokens: usage.prompt_tokens,
                output_tokens: usage.completion_tokens,
            });
        }
        if self.meta.model.is_none() {
            self.meta.model = chunk.model.map(|m| m.into_owned());
        }
        for choice in chunk.choices.unwrap_or_default() {
            if let Some(text) = choice.delta.and_then(|d| d.content) {
                delta.push_str(&text);
            }
            if let Some(reason) = choice.finish_reason {
                self.meta.stop_reason = Some(reason.into_owned());
            }
        }
        Ok(())
    }

    fn is_complete(&self) -> bool {
        // Some servers close the stream after the finishing chunk without `[DONE]`.
        self.done || self.meta.stop_reason.is_some()
    }

    fn meta(&self) -> ReplyMeta {
        self.meta.clone()
    }
}

/// The Anthropic Messages API.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anthropic;

impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn chat_url(&self, base_url: &str) -> String {
        format!("{}/v1/messages", base_url.trim_end_matches('/'))
    }

    fn models_url(&self, base_url: &str) -> String {
        format!("{}/v1/models", base_url.trim_end_matches('/'))
    }

    fn headers(&self, api_key: Option<&str>, version: &str) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        if let Some(key) = api_key {
            headers.insert(HeaderName::from_static("x-api-key"), sensitive(key)?);
        }
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_str(version)
                .map_err(|_| format!("`anthropic_version` {version:?} is not a header value"))?,
        );
        Ok(headers)
    }

    fn body(&self, request: &WireRequest<'_>) -> Value {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|(role, content)| {
                let role = match role {
                    MessageRole::User => "user",
                    MessageRole::Assistant => "assistant",
                };
                json!({"role": role, "content": content})
            })
            .collect();
        let mut body = json!({
            "model": request.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "messages": messages,
            "stream": request.stream,
        });
        if let Some(system) = request.system {
            body["system"] = json!(system);
        }
        body
    }

    fn parse_reply(&self, body: &Value) -> Result<(String, ReplyMeta), String> {
        if let Some(message) = error_message(body) {
            return Err(format!("the provider reported an error: {message}"));
        }
        let content = body
            .get("content")
            .and_then(Value::as_array)
            .ok_or("no `content` array in the reply")?;
        let mut text = String::new();
        for block in content {
            if block.get("type").and_then(Value::as_str) == Some("text") {
                text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""));
            }
        }
        let usage = body.get("usage").and_then(|u| {
            Some(Usage {
                input_tokens: u.get("input_tokens")?.as_u64()?,
                output_tokens: u.get("output_tokens")?.as_u64()?,
            })
        });
        Ok((
            text,
            ReplyMeta {
                usage,
                model: body
                    .get("model")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                stop_reason: body
                    .get("stop_reason")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
        ))
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(AnthropicStream::default())
    }
}

#[derive(Debug, Default)]
struct AnthropicStream {
    meta: ReplyMeta,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    done: bool,
}

impl StreamDecoder for AnthropicStream {
    fn event(&mut self, event: &SseEvent, delta: &mut String) -> Result<(), String> {
        let value: AnthropicEvent<'_> = parse_event(&event.data)?;
        let kind = event
            .event
            .as_deref()
            .or(value.kind.as_deref())
            .unwrap_or("");
        match kind {
            "message_start" => {
                let message = value.message.unwrap_or_default();
                self.meta.model = message.model;
                if let Some(usage) = message.usage {
                    self.input_tokens = usage.input_tokens;
                    self.output_tokens = usage.output_tokens;
                }
            }
            "content_block_delta" => {
                if let Some(text) = value.delta.and_then(|d| d.text) {
                    delta.push_str(&text);
                }
            }
            "message_delta" => {
                if let Some(reason) = value.delta.and_then(|d| d.stop_reason) {
                    self.meta.stop_reason = Some(reason.into_owned());
                }
                if let Some(usage) = value.usage {
                    if usage.output_tokens.is_some() {
                        self.output_tokens = usage.output_tokens;
                    }
                    if usage.input_tokens.is_some() {
                        self.input_tokens = usage.input_tokens;
                    }
                }
            }
            "message_stop" => self.done = true,
            "error" => {
                return Err(format!(
                    "the provider reported an error mid-stream: {}",
                    value
                        .error
                        .map(|e| error_message(&json!({ "error": e })).unwrap_or_default())
                        .unwrap_or_else(|| "no details".to_string())
                ));
            }
            // `ping`, `content_block_start`, `content_block_stop` and event types added later.
            _ => {}
        }
        Ok(())
    }

    fn is_complete(&self) -> bool {
        self.done
    }

    fn meta(&self) -> ReplyMeta {
        let mut meta = self.meta.clone();
        if let Some(input_tokens) = self.input_tokens {
            meta.usage = Some(Usage {
                input_tokens,
                output_tokens: self.output_tokens.unwrap_or(0),
            });
        }
        meta
    }
}

/// The provider for a kind.
pub fn provider_for(kind: ProviderKind) -> Box<dyn Provider> {
    match kind {
        ProviderKind::Openai => Box::new(OpenAiCompatible),
        ProviderKind::Anthropic => Box::new(Anthropic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stream: bool) -> (Vec<(MessageRole, String)>, bool) {
        (vec![(MessageRole::User, "hi".to_string())], stream)
    }

    #[test]
    fn openai_body_puts_the_system_prompt_first_and_asks_for_stream_usage() {
        let (messages, stream) = request(true);
        let body = OpenAiCompatible.body(&WireRequest {
            model: "m",
            system: Some("sys"),
            messages: &messages,
            max_tokens: 5,
            temperature: 0.0,
            stream,
            max_tokens_key: "max_tokens",
        });
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["content"], "hi");
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["max_tokens"], 5);
    }

    #[test]
    fn anthropic_body_has_a_top_level_system_prompt() {
        let (messages, stream) = request(false);
        let body = Anthropic.body(&WireRequest {
            model: "m",
            system: Some("sys"),
            messages: &messages,
            max_tokens: 5,
            temperature: 0.0,
            stream,
            max_tokens_key: "max_tokens",
        });
        assert_eq!(body["system"], "sys");
        assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn the_key_header_is_sensitive_and_hidden_from_debug_output() {
        let headers = OpenAiCompatible
            .headers(Some("sk-secret-value"), "")
            .expect("valid key");
        let auth = &headers[reqwest::header::AUTHORIZATION];
        assert!(auth.is_sensitive());
        assert!(!format!("{headers:?}").contains("sk-secret-value"));
        let headers = Anthropic
            .headers(Some("k-123"), "2023-06-01")
            .expect("valid");
        assert!(headers["x-api-key"].is_sensitive());
    }

    #[test]
    fn anthropic_stream_usage_combines_start_and_delta() {
        let mut decoder = Anthropic.stream_decoder();
        let mut text = String::new();
        for (event, data) in [
            (
                "message_start",
                r#"{"type":"message_start","message":{"model":"c","usage":{"input_tokens":7,"output_tokens":1}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ] {
            decoder
                .event(
                    &SseEvent {
                        event: Some(event.into()),
                        data: data.into(),
                    },
                    &mut text,
                )
                .expect("valid event");
        }
        assert_eq!(text, "Hello");
        assert!(decoder.is_complete());
        assert_eq!(
            decoder.meta().usage,
            Some(Usage {
                input_tokens: 7,
                output_tokens: 2
            })
        );
    }
}
