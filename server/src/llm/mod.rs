//! Model providers: the one path every agent takes to a model.
//!
//! A [`ModelClient`] speaks one wire format (OpenAI-compatible chat completions or Anthropic
//! Messages, see [`wire`]) to one endpoint, with retries, a per-provider concurrency limit,
//! cancellation, budgets ([`budget`]) and secret redaction ([`redact`]) on the way out.
//! [`Models`] builds the clients for the agents from [`ModelSettings`]; [`protocol`] validates
//! what the models answer.
//!
//! **Invariant:** no API key, authorization header or unredacted prompt is ever logged; bodies
//! appear only at trace level, after redaction.

pub mod budget;
pub mod client;
pub mod protocol;
pub mod redact;
pub mod settings;
pub mod sse;
pub mod wire;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use budget::{AgentUsage, BudgetExceeded, BudgetLimits, RunBudget};
pub use client::{ModelClient, Models, Run};
pub use redact::{Redaction, Redactor};
pub use settings::{MaxTokensKey, ModelSettings, ProviderKind, ProviderSettings, RedactPolicy};

/// The agents that talk to models. Each request names its agent in `x-conductor-agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentRole {
    /// Turns a goal into a plan.
    Planner,
    /// Writes edit blocks for one plan step.
    Coder,
    /// Reviews a proposed change.
    Security,
    /// Interprets test results.
    Tester,
    /// Explains trade-offs.
    Explainer,
}

impl AgentRole {
    /// Every role, in workflow order.
    pub const ALL: [AgentRole; 5] = [
        AgentRole::Planner,
        AgentRole::Coder,
        AgentRole::Security,
        AgentRole::Tester,
        AgentRole::Explainer,
    ];

    /// The role's name as it appears in headers and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRole::Planner => "planner",
            AgentRole::Coder => "coder",
            AgentRole::Security => "security",
            AgentRole::Tester => "tester",
            AgentRole::Explainer => "explainer",
        }
    }
}

impl fmt::Display for AgentRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who said a message in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    /// The caller (Conductor).
    User,
    /// The model, in an earlier turn (for the corrective retry).
    Assistant,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who said it.
    pub role: MessageRole,
    /// What was said.
    pub content: String,
}

impl Message {
    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: MessageRole::User,
            content: content.into(),
        }
    }

    /// An assistant turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: MessageRole::Assistant,
            content: content.into(),
        }
    }
}

/// What an agent asks a model. Model name, temperature and token limits come from the agent's
/// provider settings unless set here.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The agent asking; sent as `x-conductor-agent` and used for usage accounting.
    pub agent: AgentRole,
    /// The system prompt.
    pub system: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Overrides the provider's `max_tokens` for this request.
    pub max_tokens: Option<u32>,
    /// Overrides the provider's `temperature` for this request.
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// A request with one user message.
    pub fn new(agent: AgentRole, system: Option<String>, user: impl Into<String>) -> Self {
        Self {
            agent,
            system,
            messages: vec![Message::user(user)],
            max_tokens: None,
            temperature: None,
        }
    }
}

/// Tokens counted by the provider (or estimated when it reports none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// A model's complete answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The reply text, with redaction placeholders still in place (restore them with the run's
    /// [`Redactor`] where the text becomes code).
    pub text: String,
    /// Tokens used.
    pub usage: Usage,
    /// Whether `usage` came from the provider (false: estimated from the text).
    pub usage_reported: bool,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// Why the model stopped (`stop`, `end_turn`, `length`, `max_tokens`, …).
    pub stop_reason: Option<String>,
    /// How many HTTP attempts it took.
    pub attempts: u32,
    /// How many secrets were redacted from this request's prompt (for the run's progress).
    pub redacted: usize,
    /// From sending the request to the end of the reply, retries included.
    pub latency: std::time::Duration,
}

/// Why a model call failed. Messages name the provider and never contain a key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// The provider's settings cannot work (no key set, a bad URL, …).
    #[error("{provider}: {message}")]
    Config {
        /// The provider's display name.
        provider: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// No connection could be made or it broke before a reply arrived.
    #[error("{provider}: cannot reach {url}: {detail}")]
    Connect {
        /// The provider's display name.
        provider: String,
        /// The endpoint.
        url: String,
        /// The transport's explanation.
        detail: String,
    },
    /// The provider answered with an error status.
    #[error("{provider} answered HTTP {status}: {body_head}")]
    Status {
        /// The provider's display name.
        provider: String,
        /// The HTTP status.
        status: u16,
        /// The first bytes of the body.
        body_head: String,
        /// The delay the provider asked for, if any.
        retry_after: Option<std::time::Duration>,
    },
    /// The reply could not be read: not JSON, an invalid SSE frame, a truncated stream.
    #[error(
        "{provider} (HTTP {status}) sent a reply that cannot be read: {detail}; first bytes: {body_head:?}"
    )]
    Protocol {
        /// The provider's display name.
        provider: String,
        /// The HTTP status of the reply.
        status: u16,
        /// What was wrong.
        detail: String,
        /// The first bytes of the body (or of the offending frame).
        body_head: String,
    },
    /// A time limit passed.
    #[error("{provider}: no {what} within {limit_ms} ms")]
    Timeout {
        /// The provider's display name.
        provider: String,
        /// What did not arrive (`connection`, `first byte`, `complete reply`, `next chunk`).
        what: &'static str,
        /// The limit.
        limit_ms: u64,
    },
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The run's budget does not allow this request.
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
    /// The provider asked to wait longer than `retry_max_delay_ms` before retrying.
    #[error(
        "{last}; it asked to wait longer than `retry_max_delay_ms` ({limit_ms} ms) allows, so the request was not retried"
    )]
    RetryRefused {
        /// The configured limit.
        limit_ms: u64,
        /// The answer that asked for the wait.
        last: Box<LlmError>,
    },
    /// Every attempt failed; the last failure is kept.
    #[error("{last} (gave up after {attempts} attempts)")]
    RetriesExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        last: Box<LlmError>,
    },
}

impl LlmError {
    /// Whether another attempt could succeed: connection failures, time-outs before any output,
    /// and statuses 408, 409, 429, 500, 502, 503, 504 and 529.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Connect { .. } => true,
            LlmError::Timeout { what, .. } => *what != "complete reply",
            LlmError::Status { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }

    /// The HTTP status involved, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            LlmError::Status { status, .. } | LlmError::Protocol { status, .. } => Some(*status),
            LlmError::RetriesExhausted { last, .. } | LlmError::RetryRefused { last, .. } => {
                last.status()
            }
            _ => None,
        }
    }
}

/// Statuses worth another attempt.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// A rough token count (four bytes a token) for budgets and for replies whose provider reports no
/// usage. Over-estimating is the safe side for a budget that fails closed.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// The first bytes of a body for an error message: at most 200 bytes, cut at a character
/// boundary, with control characters made visible.
pub fn body_head(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let mut head: String = text
        .chars()
        .map(|c| if c.is_control() && c != '\n' { '·' } else { c })
        .collect();
    if bytes.len() > 200 {
        head.push('…');
    }
    head
}
