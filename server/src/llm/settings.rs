//! The `[model]` configuration table: a default provider, per-agent overrides and the run budget,
//! and its resolution into one [`ProviderSettings`] per agent.

use serde::Deserialize;

use super::AgentRole;

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// `POST {base_url}/chat/completions`: OpenAI, Ollama, llama.cpp's server, vLLM, LM Studio,
    /// OpenRouter and most gateways.
    #[default]
    Openai,
    /// `POST {base_url}/v1/messages`: the Anthropic Messages API.
    Anthropic,
}

impl ProviderKind {
    /// The name used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }
}

/// When secrets are redacted from outgoing prompts.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum RedactPolicy {
    /// For every provider whose host is not loopback.
    #[default]
    Auto,
    /// Always, loopback included.
    Always,
    /// Never (for a provider you trust with secrets).
    Never,
}

/// The base URL of Ollama's OpenAI-compatible endpoint on this machine: the default provider.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:11434/v1";
/// The default model (an Ollama tag).
pub const DEFAULT_MODEL: &str = "qwen2.5-coder:7b";

/// Declares the provider keys once. They become the fields of the `[model]` table
/// ([`ModelSettings`], with defaults), of an agent's override table ([`AgentOverride`], every key
/// optional) and of the resolved [`ProviderSettings`], so the three can never drift apart.
macro_rules! provider_keys {
    ($( $(#[doc = $doc:literal])* $field:ident: $ty:ty = $default:expr, )*) => {
        /// `[model]`: the default provider's keys, then `[model.budget]` and
        /// `[model.agents.<role>]`.
        #[derive(Debug, Clone, Deserialize, PartialEq)]
        #[serde(default)]
        pub struct ModelSettings {
            $( $(#[doc = $doc])* pub $field: $ty, )*
            /// Limits per run.
            pub budget: BudgetSettings,
            /// Per-agent overrides of any provider key above.
            pub agents: AgentOverrides,
        }

        impl Default for ModelSettings {
            fn default() -> Self {
                Self {
                    $( $field: $default, )*
                    budget: BudgetSettings::default(),
                    agents: AgentOverrides::default(),
                }
            }
        }

        /// Any provider key of `[model]`, for one agent. Unset keys fall back to `[model]`.
        #[derive(Debug, Clone, Default, Deserialize, PartialEq)]
        #[serde(default)]
        pub struct AgentOverride {
            $( $(#[doc = $doc])* pub $field: Option<$ty>, )*
        }

        /// One agent's provider, fully resolved.
        #[derive(Debug, Clone, PartialEq)]
        pub struct ProviderSettings {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl ModelSettings {
            /// `[model]` with one agent's override table laid over it, key by key.
            fn layered(&self, agent: &AgentOverride) -> ProviderSettings {
                ProviderSettings {
                    $( $field: agent.$field.clone().unwrap_or_else(|| self.$field.clone()), )*
                }
            }
        }
    };
}

provider_keys! {
    /// Wire format: `openai` (any OpenAI-compatible server) or `anthropic`.
    kind: ProviderKind = ProviderKind::Openai,
    /// The endpoint, without the `/chat/completions` or `/v1/messages` suffix.
    base_url: String = DEFAULT_BASE_URL.into(),
    /// The model name the provider knows.
    model: String = DEFAULT_MODEL.into(),
    /// The name of the environment variable that holds the API key (never the key itself); an
    /// empty name in an agent's table means "no key".
    api_key_env: Option<String> = None,
    /// Sampling temperature.
    temperature: f32 = 0.2,
    /// Most tokens a reply may have.
    max_tokens: u32 = 4096,
    /// Time to establish a connection, in milliseconds.
    connect_timeout_ms: u64 = 5_000,
    /// Time until the response headers arrive, and the longest silence mid-stream, in ms.
    first_byte_timeout_ms: u64 = 120_000,
    /// Time for the whole request, reply included, in milliseconds.
    request_timeout_ms: u64 = 600_000,
    /// US dollars per million input tokens, for cost accounting.
    input_cost_per_mtok: f64 = 0.0,
    /// US dollars per million output tokens.
    output_cost_per_mtok: f64 = 0.0,
    /// Most requests in flight to this provider at once.
    max_concurrency: u32 = 4,
    /// Most attempts per request (the first included).
    max_attempts: u32 = 4,
    /// First retry delay in milliseconds; doubles per attempt, with jitter.
    retry_base_delay_ms: u64 = 500,
    /// Longest wait between attempts, `Retry-After` included, in milliseconds.
    retry_max_delay_ms: u64 = 30_000,
    /// Whether replies are streamed.
    stream: bool = true,
    /// When outgoing prompts are redacted.
    redact: RedactPolicy = RedactPolicy::Auto,
    /// `anthropic-version` header for the Anthropic kind.
    anthropic_version: String = "2023-06-01".into(),
    /// The body key that carries `max_tokens` for the OpenAI kind: `max_tokens` (understood by
    /// every compatible server) or `max_completion_tokens` (required by OpenAI's reasoning models).
    max_tokens_key: MaxTokensKey = MaxTokensKey::MaxTokens,
}

impl ModelSettings {
    /// Whether these settings name a model rather than being the built-in defaults: runs that
    /// need a model ask this before starting, and say which keys to set when it is false.
    pub fn is_configured(&self) -> bool {
        *self != Self::default()
    }
}

/// `[model.budget]`: limits per run. Both fail closed: a request that would pass a limit is
/// not sent and the run stops.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct BudgetSettings {
    /// Most tokens (input plus output, every agent) per run.
    pub max_tokens: u64,
    /// Most US dollars per run.
    pub max_cost_usd: f64,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            max_tokens: 500_000,
            max_cost_usd: 2.0,
        }
    }
}

/// `[model.agents]`: one optional override table per agent.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct AgentOverrides {
    /// `[model.agents.planner]`.
    pub planner: AgentOverride,
    /// `[model.agents.coder]`.
    pub coder: AgentOverride,
    /// `[model.agents.security]`.
    pub security: AgentOverride,
    /// `[model.agents.tester]`.
    pub tester: AgentOverride,
    /// `[model.agents.explainer]`.
    pub explainer: AgentOverride,
}

impl AgentOverrides {
    /// The override table of a role.
    pub fn get(&self, role: AgentRole) -> &AgentOverride {
        match role {
            AgentRole::Planner => &self.planner,
            AgentRole::Coder => &self.coder,
            AgentRole::Security => &self.security,
            AgentRole::Tester => &self.tester,
            AgentRole::Explainer => &self.explainer,
        }
    }
}

/// The body key for the reply's token limit in OpenAI-compatible requests.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensKey {
    /// `max_tokens`.
    #[default]
    MaxTokens,
    /// `max_completion_tokens`.
    MaxCompletionTokens,
}

impl MaxTokensKey {
    /// The key as it appears in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            MaxTokensKey::MaxTokens => "max_tokens",
            MaxTokensKey::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

impl ModelSettings {
    /// The provider an agent uses: `[model]` with `[model.agents.<role>]` laid over it.
    pub fn for_agent(&self, role: AgentRole) -> ProviderSettings {
        let mut settings = self.layered(self.agents.get(role));
        // An empty variable name (set in an agent's table to drop the default key) means no key.
        settings.api_key_env = settings.api_key_env.filter(|name| !name.trim().is_empty());
        settings
    }
}

impl ProviderSettings {
    /// The settings of the default provider with a kind, base URL and model; everything else
    /// from the defaults. Handy for tests and tools.
    pub fn new(kind: ProviderKind, base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let mut settings = ModelSettings::default().for_agent(AgentRole::Planner);
        settings.kind = kind;
        settings.base_url = base_url.into();
        settings.model = model.into();
        settings
    }

    /// A name for messages: the kind, host and model, e.g. `openai 127.0.0.1:11434 (llama3)`.
    pub fn display_name(&self) -> String {
        format!(
            "{} {} ({})",
            self.kind.as_str(),
            self.host_port(),
            self.model
        )
    }

    /// The `host:port` of the base URL (or the URL itself when it cannot be parsed).
    pub fn host_port(&self) -> String {
        match reqwest::Url::parse(&self.base_url) {
            Ok(url) => match (url.host_str(), url.port_or_known_default()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_string(),
                _ => self.base_url.clone(),
            },
            Err(_) => self.base_url.clone(),
        }
    }

    /// Whether the base URL points at this machine (`127.0.0.0/8`, `::1` or `localhost`).
    pub fn is_loopback(&self) -> bool {
        let Ok(url) = reqwest::Url::parse(&self.base_url) else {
            return false;
        };
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether prompts to this provider are redacted.
    pub fn redacts(&self) -> bool {
        match self.redact {
            RedactPolicy::Always => true,
            RedactPolicy::Never => false,
            RedactPolicy::Auto => !self.is_loopback(),
        }
    }

    /// The cost in US dollars of a number of tokens.
    pub fn cost_usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_cost_per_mtok
            + output_tokens as f64 * self.output_cost_per_mtok)
            / 1_000_000.0
    }

    /// The settings that decide which HTTP client and concurrency limit a provider gets: agents
    /// whose providers agree on these share both.
    pub fn endpoint_key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.kind.as_str(),
            self.base_url.trim_end_matches('/'),
            self.api_key_env.as_deref().unwrap_or(""),
            self.max_concurrency,
            self.connect_timeout_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_nothing_configured_every_agent_uses_ollama_on_loopback() {
        let settings = ModelSettings::default();
        for role in AgentRole::ALL {
            let p = settings.for_agent(role);
            assert_eq!(p.kind, ProviderKind::Openai);
            assert_eq!(p.base_url, "http://127.0.0.1:11434/v1");
            assert!(p.is_loopback());
            assert!(!p.redacts(), "loopback is not redacted by default");
        }
    }

    #[test]
    fn an_agent_override_replaces_only_the_keys_it_sets() {
        let mut settings = ModelSettings {
            api_key_env: Some("OPENAI_API_KEY".into()),
            ..ModelSettings::default()
        };
        settings.agents.coder.model = Some("big".into());
        settings.agents.coder.base_url = Some("https://api.example.test/v1".into());
        let coder = settings.for_agent(AgentRole::Coder);
        assert_eq!(coder.model, "big");
        assert_eq!(coder.api_key_env.as_deref(), Some("OPENAI_API_KEY"));
        assert!(coder.redacts(), "a remote host is redacted");
        assert_eq!(settings.for_agent(AgentRole::Planner).model, DEFAULT_MODEL);
    }

    #[test]
    fn model_tables_load_from_conductor_toml_and_bad_keys_are_reported() {
        let toml = r#"
            [model]
            kind = "anthropic"
            base_url = "https://models.example.test"
            model = "big"
            api_key_env = "ANTHROPIC_API_KEY"
            input_cost_per_mtok = 3.0

            [model.budget]
            max_cost_usd = 0.5

            [model.agents.explainer]
            kind = "openai"
            base_url = "http://127.0.0.1:8080/v1"
            model = "small"
            api_key_env = ""

            [model.agents.reviewer]
            model = "x"
        "#;
        let value: toml::Value = toml::from_str(toml).expect("valid TOML");
        let mut sources = crate::config::ConfigSources::default();
        sources.push("conductor.toml", serde_json::to_value(value).expect("json"));
        let (config, problems) = sources.resolve();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["model.agents.reviewer"], "{problems:?}");
        let coder = config.model.for_agent(AgentRole::Coder);
        assert_eq!(coder.kind, ProviderKind::Anthropic);
        assert_eq!(coder.api_key_env.as_deref(), Some("ANTHROPIC_API_KEY"));
        assert!(coder.redacts());
        let explainer = config.model.for_agent(AgentRole::Explainer);
        assert_eq!(explainer.model, "small");
        assert_eq!(explainer.api_key_env, None, "an empty name means no key");
        assert!(!explainer.redacts());
        assert_eq!(config.model.budget.max_cost_usd, 0.5);
        assert_eq!(config.model.budget.max_tokens, 500_000);
    }

    #[test]
    fn cost_is_priced_per_million_tokens() {
        let mut p = ProviderSettings::new(ProviderKind::Anthropic, "http://127.0.0.1:1", "m");
        p.input_cost_per_mtok = 3.0;
        p.output_cost_per_mtok = 15.0;
        let cost = p.cost_usd(1_000_000, 100_000);
        assert!((cost - 4.5).abs() < 1e-9, "{cost}");
    }
}
