//! The transport every wire format shares: [`ModelClient`] sends one request with redaction,
//! a budget reservation, a per-provider concurrency limit, time limits, retries with backoff
//! and jitter (honouring `Retry-After`), streaming, and cancellation; [`Models`] holds one
//! client per agent and starts [`Run`]s.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::budget::{BudgetLimits, RunBudget};
use super::redact::Redactor;
use super::settings::{ModelSettings, ProviderSettings};
use super::sse::{SseError, SseParser};
use super::wire::{Provider, ReplyMeta, WireRequest, provider_for};
use super::{AgentRole, ChatRequest, ChatResponse, LlmError, MessageRole, Usage, body_head};

/// The header that names the agent.
pub const AGENT_HEADER: &str = "x-conductor-agent";
/// The header that names the run.
pub const RUN_HEADER: &str = "x-conductor-run";
/// Largest non-streamed reply read, so a broken server cannot exhaust memory.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// One run as the model layer sees it: its id, budget, redaction table and cancellation.
/// Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run id, sent as `x-conductor-run`.
    pub id: String,
    /// Tokens and cost, shared by the run's agents.
    pub budget: RunBudget,
    /// Placeholders for the secrets redacted in this run's prompts.
    pub redactor: Redactor,
    /// Cancelling it stops every request of the run.
    pub cancel: CancellationToken,
}

impl Run {
    /// A run with a fresh budget, redaction table and cancellation token.
    pub fn new(id: impl Into<String>, limits: BudgetLimits) -> Self {
        Self {
            id: id.into(),
            budget: RunBudget::new(limits),
            redactor: Redactor::new(),
            cancel: CancellationToken::new(),
        }
    }
}

/// Installs the TLS crypto provider once per process; reqwest is built without one.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means another part of the process installed one first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client for one provider, as one agent uses it.
#[derive(Debug, Clone)]
pub struct ModelClient {
    settings: ProviderSettings,
    provider: Arc<dyn Provider>,
    http: reqwest::Client,
    limiter: Arc<Semaphore>,
    api_key: Option<String>,
    name: String,
}

/// What one attempt got to before it ended.
#[derive(Default)]
struct Progress {
    /// Text delivered to the caller.
    text: String,
    /// Whether any of the reply reached the caller: after that, a retry would repeat it.
    delivered: bool,
}

impl ModelClient {
    /// A client for `settings`, reading the key from the environment variable it names. A key
    /// variable that is not set fails each request with a message naming it, not this call.
    pub fn new(settings: ProviderSettings) -> Result<Self, LlmError> {
        let key = settings
            .api_key_env
            .as_deref()
            .and_then(|name| std::env::var(name).ok());
        Self::with_api_key(settings, key)
    }

    /// A client with an explicit key (or none).
    pub fn with_api_key(
        settings: ProviderSettings,
        api_key: Option<String>,
    ) -> Result<Self, LlmError> {
        let http = build_http(&settings)?;
        let limiter = Arc::new(Semaphore::new(settings.max_concurrency.max(1) as usize));
        Ok(Self::assemble(settings, api_key, http, limiter))
    }

    fn assemble(
        settings: ProviderSettings,
        api_key: Option<String>,
        http: reqwest::Client,
        limiter: Arc<Semaphore>,
    ) -> Self {
        Self {
            name: settings.display_name(),
            provider: Arc::from(provider_for(settings.kind)),
            api_key: api_key.filter(|k| !k.trim().is_empty()),
            settings,
            http,
            limiter,
        }
    }

    /// The provider's settings.
    pub fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    /// The provider's display name, as errors show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a request, streamed or not as the provider's `stream` setting says; streamed text
    /// reaches `on_delta` as it arrives (a non-streamed reply reaches it once, whole).
    pub async fn chat(
        &self,
        run: &Run,
        request: &ChatRequest,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ChatResponse, LlmError> {
        self.execute(run, request, self.settings.stream, on_delta)
            .await
    }

    /// Sends a request without streaming.
    pub async fn complete(
        &self,
        run: &Run,
        request: &ChatRequest,
    ) -> Result<ChatResponse, LlmError> {
        self.execute(run, request, false, &mut |_| {}).await
    }

    /// Sends a request with streaming; text reaches `on_delta` as it arrives. On an error or a
    /// cancellation the caller must discard what it received: the returned error is the result.
    pub async fn stream(
        &self,
        run: &Run,
        request: &ChatRequest,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ChatResponse, LlmError> {
        self.execute(run, request, true, on_delta).await
    }

    fn key_problem(&self) -> Option<LlmError> {
        let name = self.settings.api_key_env.as_deref()?;
        if self.api_key.is_some() {
            return None;
        }
        Some(LlmError::Config {
            provider: self.name.clone(),
            message: format!(
                "{name} is not set: export it in the environment Conductor starts from (`api_key_env = \"{name}\"`)"
            ),
        })
    }

    fn headers(&self, run_id: &str, agent: AgentRole) -> Result<HeaderMap, LlmError> {
        let mut headers = self
            .provider
            .headers(self.api_key.as_deref(), &self.settings.anthropic_version)
            .map_err(|message| LlmError::Config {
                provider: self.name.clone(),
                message,
            })?;
        headers.insert(
            HeaderName::from_static(AGENT_HEADER),
            HeaderValue::from_static(agent.as_str()),
        );
        headers.insert(
            HeaderName::from_static(RUN_HEADER),
            HeaderValue::from_str(run_id).map_err(|_| LlmError::Config {
                provider: self.name.clone(),
                message: format!("the run id {run_id:?} is not a valid header value"),
            })?,
        );
        Ok(headers)
    }

    /// Removes the key from text that came from the server (an error body may echo it).
    fn scrub(&self, text: String) -> String {
        match &self.api_key {
            Some(key) if key.len() >= 4 && text.contains(key.as_str()) => {
                text.replace(key.as_str(), "<api-key>")
            }
            _ => text,
        }
    }

    async fn execute(
        &self,
        run: &Run,
        request: &ChatRequest,
        stream: bool,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ChatResponse, LlmError> {
        if run.cancel.is_cancelled() {
            return Err(LlmError::Cancelled);
        }
        if let Some(err) = self.key_problem() {
            return Err(err);
        }
        let agent = request.agent;

        // Redact before anything else sees the prompt, the trace log included.
        let redacts = self.settings.redacts();
        let mut redacted = 0usize;
        let mut redact = |text: &str| -> String {
            if redacts {
                let r = run.redactor.redact(text);
                redacted += r.count;
                r.text
            } else {
                text.to_string()
            }
        };
        let system = request.system.as_deref().map(&mut redact);
        let messages: Vec<(MessageRole, String)> = request
            .messages
            .iter()
            .map(|m| (m.role, redact(&m.content)))
            .collect();
        if redacted > 0 {
            tracing::info!(run = %run.id, %agent, redacted, "secrets redacted from the prompt");
        }

        let max_tokens = request.max_tokens.unwrap_or(self.settings.max_tokens);
        let input_estimate = system.as_deref().map_or(0, super::estimate_tokens)
            + messages
                .iter()
                .map(|(_, m)| super::estimate_tokens(m) + 4)
                .sum::<u64>();
        let reservation = run.budget.reserve(
            agent,
            input_estimate + u64::from(max_tokens),
            self.settings
                .cost_usd(input_estimate, u64::from(max_tokens)),
        )?;

        let wire = WireRequest {
            model: &self.settings.model,
            system: system.as_deref(),
            messages: &messages,
            max_tokens,
            temperature: request.temperature.unwrap_or(self.settings.temperature),
            stream,
            max_tokens_key: self.settings.max_tokens_key.as_str(),
        };
        let body =
            serde_json::to_vec(&self.provider.body(&wire)).map_err(|err| LlmError::Config {
                provider: self.name.clone(),
                message: format!("cannot encode the request: {err}"),
            })?;
        if tracing::enabled!(tracing::Level::TRACE) {
            let logged = for_log(redacts, &String::from_utf8_lossy(&body));
            tracing::trace!(run = %run.id, %agent, body = %logged, "model request (redacted)");
        }
        let headers = self.headers(&run.id, agent)?;
        let url = self.provider.chat_url(&self.settings.base_url);

        let _permit = tokio::select! {
            _ = run.cancel.cancelled() => return Err(LlmError::Cancelled),
            permit = self.limiter.acquire() => permit.map_err(|_| LlmError::Cancelled)?,
        };

        let started = Instant::now();
        let max_attempts = self.settings.max_attempts.max(1);
        let mut progress = Progress::default();
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let limit = Duration::from_millis(self.settings.request_timeout_ms);
            let result = tokio::select! {
                _ = run.cancel.cancelled() => Err(LlmError::Cancelled),
                r = tokio::time::timeout(limit, self.attempt(&url, &headers, &body, stream, on_delta, &mut progress)) => {
                    r.unwrap_or(Err(LlmError::Timeout {
                        provider: self.name.clone(),
                        what: "complete reply",
                        limit_ms: self.settings.request_timeout_ms,
                    }))
                }
            };
            match result {
                Ok(reply) => break Ok(reply),
                Err(err) if err.is_retryable() && !progress.delivered && attempt < max_attempts => {
                    let delay = self.retry_delay(attempt, &err);
                    let Some(delay) = delay else {
                        break Err(LlmError::RetryRefused {
                            limit_ms: self.settings.retry_max_delay_ms,
                            last: Box::new(err),
                        });
                    };
                    tracing::debug!(run = %run.id, %agent, attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying model request");
                    tokio::select! {
                        _ = run.cancel.cancelled() => break Err(LlmError::Cancelled),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(err) if attempt > 1 && err.is_retryable() => {
                    break Err(LlmError::RetriesExhausted {
                        attempts: attempt,
                        last: Box::new(err),
                    });
                }
                Err(err) => break Err(err),
            }
        };

        let elapsed_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok((text, meta)) => {
                let usage_reported = meta.usage.is_some();
                let usage = meta.usage.unwrap_or(Usage {
                    input_tokens: input_estimate,
                    output_tokens: super::estimate_tokens(&text),
                });
                let cost = self
                    .settings
                    .cost_usd(usage.input_tokens, usage.output_tokens);
                run.budget.settle(reservation, agent, usage, cost);
                tracing::debug!(run = %run.id, %agent, provider = %self.name, attempts = attempt, elapsed_ms, input_tokens = usage.input_tokens, output_tokens = usage.output_tokens, "model reply");
                if tracing::enabled!(tracing::Level::TRACE) {
                    let logged = for_log(false, &text);
                    tracing::trace!(run = %run.id, %agent, reply = %logged, "model reply text (redacted)");
                }
                Ok(ChatResponse {
                    text,
                    usage,
                    usage_reported,
                    model: meta.model.unwrap_or_else(|| self.settings.model.clone()),
                    stop_reason: meta.stop_reason,
                    attempts: attempt,
                    redacted,
                    latency: started.elapsed(),
                })
            }
            Err(err) => {
                if progress.delivered {
                    // The provider spent tokens on a reply that was cut off or cancelled; count
                    // what we saw so the budget errs on the safe side.
                    let usage = Usage {
                        input_tokens: input_estimate,
                        output_tokens: super::estimate_tokens(&progress.text),
                    };
                    let cost = self
                        .settings
                        .cost_usd(usage.input_tokens, usage.output_tokens);
                    run.budget.settle(reservation, agent, usage, cost);
                }
                tracing::debug!(run = %run.id, %agent, provider = %self.name, attempts = attempt, elapsed_ms, error = %err, "model request failed");
                Err(err)
            }
        }
    }

    /// The wait before the next attempt, or `None` when the provider asks for longer than
    /// `retry_max_delay_ms` (waiting would hold the run for nothing the user agreed to).
    fn retry_delay(&self, attempt: u32, err: &LlmError) -> Option<Duration> {
        let max = Duration::from_millis(self.settings.retry_max_delay_ms);
        if let LlmError::Status {
            retry_after: Some(after),
            ..
        } = err
        {
            return (*after <= max).then_some(*after);
        }
        let base = self.settings.retry_base_delay_ms.max(1);
        let exp = base.saturating_mul(1u64 << (attempt - 1).min(20));
        let ceiling = exp.min(self.settings.retry_max_delay_ms.max(1));
        // Equal jitter: half fixed, half random, so clients that failed together spread out.
        let half = ceiling / 2;
        let jitter = if half == 0 { 0 } else { random() % (half + 1) };
        Some(Duration::from_millis(ceiling - half + jitter))
    }

    fn connect_error(&self, url: &str, err: &reqwest::Error) -> LlmError {
        if err.is_timeout() {
            return LlmError::Timeout {
                provider: self.name.clone(),
                what: "connection",
                limit_ms: self.settings.connect_timeout_ms,
            };
        }
        LlmError::Connect {
            provider: self.name.clone(),
            url: url.to_string(),
            detail: self.scrub(error_chain(err)),
        }
    }

    async fn attempt(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
        stream: bool,
        on_delta: &mut (dyn FnMut(&str) + Send),
        progress: &mut Progress,
    ) -> Result<(String, ReplyMeta), LlmError> {
        let first_byte = Duration::from_millis(self.settings.first_byte_timeout_ms);
        let send = self
            .http
            .post(url)
            .headers(headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                reqwest::header::ACCEPT,
                if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .body(body.to_vec())
            .send();
        let mut response = match tokio::time::timeout(first_byte, send).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    provider: self.name.clone(),
                    what: "first byte",
                    limit_ms: self.settings.first_byte_timeout_ms,
                });
            }
            Ok(Err(err)) => return Err(self.connect_error(url, &err)),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = retry_after(response.headers());
            let bytes = self.read_body(&mut response, 4096, first_byte).await;
            return Err(LlmError::Status {
                provider: self.name.clone(),
                status,
                body_head: self.scrub(body_head(&bytes)),
                retry_after,
            });
        }
        if !stream {
            let (bytes, broken) = self
                .read_body_checked(&mut response, MAX_BODY, first_byte)
                .await;
            let protocol = |detail: String| LlmError::Protocol {
                provider: self.name.clone(),
                status,
                detail,
                body_head: self.scrub(body_head(&bytes)),
            };
            if let Some(broken) = broken {
                return Err(protocol(broken));
            }
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|err| protocol(format!("the body is not JSON ({err})")))?;
            let (text, meta) = self.provider.parse_reply(&value).map_err(protocol)?;
            progress.delivered = true;
            on_delta(&text);
            progress.text.push_str(&text);
            return Ok((text, meta));
        }

        let mut parser = SseParser::new();
        let mut decoder = self.provider.stream_decoder();
        let mut head: Vec<u8> = Vec::new();
        let mut delta = String::new();
        loop {
            let chunk = match tokio::time::timeout(first_byte, response.chunk()).await {
                Err(_) => {
                    return Err(LlmError::Timeout {
                        provider: self.name.clone(),
                        what: "next chunk",
                        limit_ms: self.settings.first_byte_timeout_ms,
                    });
                }
                Ok(Err(err)) => {
                    return Err(LlmError::Protocol {
                        provider: self.name.clone(),
                        status,
                        detail: format!(
                            "the stream broke after {} bytes of text: {}",
                            progress.text.len(),
                            self.scrub(error_chain(&err))
                        ),
                        body_head: self.scrub(body_head(&head)),
                    });
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            if head.len() < 200 {
                head.extend_from_slice(&chunk[..chunk.len().min(200 - head.len())]);
            }
            let mut decode_error: Option<String> = None;
            let parsed = parser.push(&chunk, &mut |event| {
                if let Err(err) = decoder.event(&event, &mut delta) {
                    decode_error = Some(err);
                    return Err(SseError {
                        reason: "rejected by the decoder",
                        line: String::new(),
                    });
                }
                if !delta.is_empty() {
                    progress.delivered = true;
                    on_delta(&delta);
                    progress.text.push_str(&delta);
                    delta.clear();
                }
                Ok(())
            });
            if let Err(err) = parsed {
                return Err(LlmError::Protocol {
                    provider: self.name.clone(),
                    status,
                    detail: decode_error.unwrap_or_else(|| err.to_string()),
                    body_head: self.scrub(body_head(&head)),
                });
            }
        }
        if !decoder.is_complete() {
            return Err(LlmError::Protocol {
                provider: self.name.clone(),
                status,
                detail: format!(
                    "the stream ended before the reply was complete (no final event) after {} bytes of text{}",
                    progress.text.len(),
                    if parser.is_mid_event() {
                        ", in the middle of an event"
                    } else {
                        ""
                    }
                ),
                body_head: self.scrub(body_head(&head)),
            });
        }
        Ok((std::mem::take(&mut progress.text), decoder.meta()))
    }

    /// Reads up to `limit` bytes of a body for an error message or a non-streamed reply; a
    /// body that breaks or stalls yields what arrived.
    async fn read_body(
        &self,
        response: &mut reqwest::Response,
        limit: usize,
        stall: Duration,
    ) -> Vec<u8> {
        self.read_body_checked(response, limit, stall).await.0
    }

    /// Like [`Self::read_body`], and says why the body ended early when it did.
    async fn read_body_checked(
        &self,
        response: &mut reqwest::Response,
        limit: usize,
        stall: Duration,
    ) -> (Vec<u8>, Option<String>) {
        let mut bytes = Vec::new();
        let mut broken = None;
        while bytes.len() < limit {
            match tokio::time::timeout(stall, response.chunk()).await {
                Ok(Ok(Some(chunk))) => bytes.extend_from_slice(&chunk),
                Ok(Ok(None)) => break,
                Ok(Err(err)) => {
                    broken = Some(format!(
                        "the body broke after {} bytes: {}",
                        bytes.len(),
                        self.scrub(error_chain(&err))
                    ));
                    break;
                }
                Err(_) => {
                    broken = Some(format!(
                        "the body stalled after {} bytes for {} ms",
                        bytes.len(),
                        stall.as_millis()
                    ));
                    break;
                }
            }
        }
        if bytes.len() > limit {
            bytes.truncate(limit);
            broken = Some(format!("the body is larger than {limit} bytes"));
        }
        (bytes, broken)
    }

    /// The model names the endpoint lists (`GET /models` or `/v1/models`).
    pub async fn list_models(&self) -> Result<Vec<String>, LlmError> {
        if let Some(err) = self.key_problem() {
            return Err(err);
        }
        let url = self.provider.models_url(&self.settings.base_url);
        let headers = self
            .provider
            .headers(self.api_key.as_deref(), &self.settings.anthropic_version)
            .map_err(|message| LlmError::Config {
                provider: self.name.clone(),
                message,
            })?;
        let first_byte = Duration::from_millis(self.settings.first_byte_timeout_ms);
        let mut response =
            match tokio::time::timeout(first_byte, self.http.get(&url).headers(headers).send())
                .await
            {
                Err(_) => {
                    return Err(LlmError::Timeout {
                        provider: self.name.clone(),
                        what: "first byte",
                        limit_ms: self.settings.first_byte_timeout_ms,
                    });
                }
                Ok(Err(err)) => return Err(self.connect_error(&url, &err)),
                Ok(Ok(r)) => r,
            };
        let status = response.status().as_u16();
        let bytes = self
            .read_body(&mut response, 4 * 1024 * 1024, first_byte)
            .await;
        if !(200..300).contains(&status) {
            return Err(LlmError::Status {
                provider: self.name.clone(),
                status,
                body_head: self.scrub(body_head(&bytes)),
                retry_after: None,
            });
        }
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|err| LlmError::Protocol {
                provider: self.name.clone(),
                status,
                detail: format!("the model list is not JSON ({err})"),
                body_head: self.scrub(body_head(&bytes)),
            })?;
        let names = value
            .get("data")
            .or_else(|| value.get("models"))
            .and_then(serde_json::Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|m| {
                        m.get("id")
                            .or_else(|| m.get("name"))
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(names)
    }
}

fn build_http(settings: &ProviderSettings) -> Result<reqwest::Client, LlmError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .user_agent(concat!("conductor/", env!("CARGO_PKG_VERSION")));
    if settings.is_loopback() {
        // A proxy from the environment must not capture requests meant for this machine.
        builder = builder.no_proxy();
    }
    builder.build().map_err(|err| LlmError::Config {
        provider: settings.display_name(),
        message: format!("cannot build the HTTP client: {}", error_chain(&err)),
    })
}

/// Text as the trace log may show it: always redacted, even for a provider that receives the
/// secrets (loopback, `redact = "never"`), because logs travel further than requests. A table
/// of its own keeps the run's table (and its counts) to what went on the wire.
fn for_log(already_redacted: bool, text: &str) -> String {
    if already_redacted {
        text.to_string()
    } else {
        Redactor::new().redact(text).text
    }
}

/// An error and its causes on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// The delay a response asks for: `retry-after-ms` (milliseconds, as OpenAI sends), else
/// `Retry-After` in seconds or as an HTTP date (a date in the past means now).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    let number = |value: &str| -> Option<f64> {
        let value = value.parse::<f64>().ok()?;
        (value.is_finite() && value >= 0.0).then_some(value)
    };
    if let Some(ms) = text("retry-after-ms").and_then(number) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Some(seconds) = number(value) {
        return Some(Duration::from_secs_f64(seconds));
    }
    let at = http_date(value)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the Unix epoch of an IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`), the
/// form HTTP requires senders to use.
fn http_date(value: &str) -> Option<u64> {
    let rest = value.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month: i64 = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':');
    let (h, m, s): (u64, u64, u64) = (
        clock.next()?.parse().ok()?,
        clock.next()?.parse().ok()?,
        clock.next()?.parse().ok()?,
    );
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), with years starting in March.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3_600 + m * 60 + s)
}

/// A random number for jitter; the standard library's randomly keyed hasher is enough.
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// The model clients of every agent, built from `[model]`.
#[derive(Debug, Clone)]
pub struct Models {
    /// One client per role, in the order of [`AgentRole::ALL`].
    clients: Vec<ModelClient>,
    limits: BudgetLimits,
}

impl Models {
    /// Clients for every agent, with keys from the process environment.
    pub fn from_settings(settings: &ModelSettings) -> Result<Self, LlmError> {
        Self::with_env(settings, &|name| std::env::var(name).ok())
    }

    /// Clients for every agent, with keys looked up by `env`. Agents whose providers share an
    /// endpoint share one HTTP connection pool and one concurrency limit.
    pub fn with_env(
        settings: &ModelSettings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, LlmError> {
        let mut shared: BTreeMap<String, (reqwest::Client, Arc<Semaphore>)> = BTreeMap::new();
        let mut clients = Vec::with_capacity(AgentRole::ALL.len());
        for role in AgentRole::ALL {
            let provider = settings.for_agent(role);
            let (http, limiter) = match shared.get(&provider.endpoint_key()) {
                Some(pair) => pair.clone(),
                None => {
                    let pair = (
                        build_http(&provider)?,
                        Arc::new(Semaphore::new(provider.max_concurrency.max(1) as usize)),
                    );
                    shared.insert(provider.endpoint_key(), pair.clone());
                    pair
                }
            };
            let key = provider.api_key_env.as_deref().and_then(env);
            clients.push(ModelClient::assemble(provider, key, http, limiter));
        }
        Ok(Self {
            clients,
            limits: BudgetLimits::from(&settings.budget),
        })
    }

    /// The client an agent uses.
    pub fn for_agent(&self, role: AgentRole) -> &ModelClient {
        // The constructor pushes one client per role in `AgentRole::ALL` order, which is the
        // declaration order, so the index is always in range.
        &self.clients[role as usize]
    }

    /// A new run with the configured budget.
    pub fn new_run(&self, id: impl Into<String>) -> Run {
        Run::new(id, self.limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ProviderKind;

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
        let mut past = HeaderMap::new();
        past.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
        assert_eq!(
            http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date("Sun, 29 Feb 2032 12:00:00 GMT"),
            Some(1_961_668_800)
        );
        assert_eq!(http_date("soon"), None);
    }

    #[test]
    fn a_client_for_an_https_endpoint_builds_with_the_ring_provider() {
        let settings =
            ProviderSettings::new(ProviderKind::Anthropic, "https://models.example.test", "m");
        let client = ModelClient::with_api_key(settings, Some("k".into())).expect("client");
        assert!(client.settings().redacts());
        assert!(
            client.name().contains("models.example.test:443"),
            "{}",
            client.name()
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let mut settings = ProviderSettings::new(ProviderKind::Openai, "http://127.0.0.1:9", "m");
        settings.retry_base_delay_ms = 100;
        settings.retry_max_delay_ms = 1_000;
        let client = ModelClient::with_api_key(settings, None).expect("client");
        let err = LlmError::Connect {
            provider: String::new(),
            url: String::new(),
            detail: String::new(),
        };
        for _ in 0..50 {
            let first = client.retry_delay(1, &err).expect("a delay");
            assert!(
                (50..=100).contains(&(first.as_millis() as u64)),
                "{first:?}"
            );
            let third = client.retry_delay(3, &err).expect("a delay");
            assert!(
                (200..=400).contains(&(third.as_millis() as u64)),
                "{third:?}"
            );
            let tenth = client.retry_delay(10, &err).expect("a delay");
            assert!(tenth <= Duration::from_millis(1_000));
        }
        let too_long = LlmError::Status {
            provider: String::new(),
            status: 429,
            body_head: String::new(),
            retry_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(client.retry_delay(1, &too_long), None);
    }
}
