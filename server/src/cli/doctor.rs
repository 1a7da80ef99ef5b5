//! `conductor doctor`: checks that every agent has a working model provider and says how to fix
//! each problem it finds.
//!
//! For each distinct provider it reports the base URL, the model, whether the key variable is
//! set (never its value), whether the endpoint answers (`GET …/models`, or a one-token request
//! when listing is not supported) and how long that took.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::config::{self, CONFIG_FILE};
use crate::llm::{
    AgentRole, ChatRequest, LlmError, ModelClient, ProviderSettings, Run, budget::BudgetLimits,
};

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};

/// How long the doctor waits for an endpoint: long enough for a cold local server, short enough
/// that a black-holed address does not look like a hang.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `conductor doctor` in the current directory with the process environment.
pub fn main() -> ExitCode {
    let root = match std::env::current_dir() {
        Ok(dir) => dir,
        Err(err) => {
            eprintln!("conductor doctor: cannot read the current directory: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("conductor doctor: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut out = std::io::stdout().lock();
    let code = runtime.block_on(doctor(&root, &|name| std::env::var(name).ok(), &mut out));
    ExitCode::from(code)
}

/// What the doctor found about one provider.
struct Check {
    lines: Vec<String>,
    problems: Vec<String>,
}

/// Checks the configuration found at `root`, looking keys up with `env`, writing the report to
/// `out`; returns the exit code: 0 when every agent has a working provider, 1 when one does
/// not, 2 when the configuration itself has problems.
pub async fn doctor(root: &Path, env: &dyn Fn(&str) -> Option<String>, out: &mut dyn Write) -> u8 {
    let (config, problems) = config::load_workspace(root);
    let config_problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let file = root.join(CONFIG_FILE);
    let _ = writeln!(
        out,
        "conductor doctor: configuration from {}",
        if file.exists() {
            file.display().to_string()
        } else {
            format!("built-in defaults (no {CONFIG_FILE} in {})", root.display())
        }
    );
    for problem in &config_problems {
        let _ = writeln!(out, "  configuration problem: {problem}");
    }
    let _ = writeln!(
        out,
        "budget per run: {} tokens, ${:.2}",
        config.model.budget.max_tokens, config.model.budget.max_cost_usd
    );

    // Agents that share a provider are checked once.
    let mut groups: Vec<(ProviderSettings, Vec<AgentRole>)> = Vec::new();
    for role in AgentRole::ALL {
        let provider = config.model.for_agent(role);
        match groups.iter_mut().find(|(p, _)| same_provider(p, &provider)) {
            Some((_, roles)) => roles.push(role),
            None => groups.push((provider, vec![role])),
        }
    }

    let mut failing_agents = 0;
    for (provider, roles) in &groups {
        let roles_text: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let _ = writeln!(
            out,
            "\nprovider {} for {}",
            provider.kind.as_str(),
            roles_text.join(", ")
        );
        let check = check_provider(provider, env).await;
        for line in &check.lines {
            let _ = writeln!(out, "  {line}");
        }
        if check.problems.is_empty() {
            let _ = writeln!(out, "  ok");
        } else {
            failing_agents += roles.len();
            for problem in &check.problems {
                let _ = writeln!(out, "  problem: {problem}");
            }
        }
    }

    let _ = writeln!(out);
    if failing_agents == 0 {
        let _ = writeln!(
            out,
            "all {} agents have a working provider",
            AgentRole::ALL.len()
        );
    } else {
        let _ = writeln!(
            out,
            "{failing_agents} of {} agents have no working provider",
            AgentRole::ALL.len()
        );
    }
    if !config_problems.is_empty() {
        let _ = writeln!(
            out,
            "fix the configuration problems above (docs/configuration.md lists the keys)"
        );
        return EXIT_USAGE;
    }
    if failing_agents > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

fn same_provider(a: &ProviderSettings, b: &ProviderSettings) -> bool {
    a.kind == b.kind
        && a.base_url == b.base_url
        && a.model == b.model
        && a.api_key_env == b.api_key_env
}

fn is_ollama(provider: &ProviderSettings) -> bool {
    provider.is_loopback() && provider.host_port().ends_with(":11434")
}

async fn check_provider(
    provider: &ProviderSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Check {
    let mut check = Check {
        lines: vec![
            format!("base URL  {}", provider.base_url),
            format!("model     {}", provider.model),
        ],
        problems: Vec::new(),
    };
    let key = match provider.api_key_env.as_deref() {
        Some(name) => match env(name).filter(|v| !v.trim().is_empty()) {
            Some(value) => {
                check.lines.push(format!("key       {name} is set"));
                Some(value)
            }
            None => {
                check.lines.push(format!("key       {name} is not set"));
                check.problems.push(format!(
                    "{name} is not set: export {name}=<your key> in the environment that starts your editor or `conductor`"
                ));
                return check;
            }
        },
        None if provider.is_loopback() => {
            check
                .lines
                .push("key       none (not needed on loopback)".to_string());
            None
        }
        None => {
            check.lines.push(
                "key       none configured (`api_key_env`); a hosted provider usually needs one"
                    .to_string(),
            );
            None
        }
    };

    let mut probe = provider.clone();
    probe.first_byte_timeout_ms = PROBE_TIMEOUT.as_millis() as u64;
    probe.request_timeout_ms = PROBE_TIMEOUT.as_millis() as u64;
    probe.max_attempts = 1;
    let client = match ModelClient::with_api_key(probe, key) {
        Ok(client) => client,
        Err(err) => {
            check.problems.push(err.to_string());
            return check;
        }
    };

    let started = Instant::now();
    let listed = client.list_models().await;
    let ms = started.elapsed().as_millis();
    match listed {
        Ok(models) => {
            check.lines.push(format!(
                "endpoint  answered GET models in {ms} ms ({} models listed)",
                models.len()
            ));
            if !models.is_empty() && !models.iter().any(|m| m == &provider.model) {
                let mut fix = format!(
                    "model `{}` not found; available: {}",
                    provider.model,
                    models.join(", ")
                );
                if is_ollama(provider) {
                    fix.push_str(&format!(" (or pull it: `ollama pull {}`)", provider.model));
                }
                check.problems.push(fix);
            }
        }
        Err(err) if matches!(err.status(), Some(404 | 405)) => {
            // Some servers do not list models; a one-token request shows whether chat works.
            probe_chat(&client, provider, &mut check, "model listing not supported").await;
        }
        Err(err) if matches!(err.status(), Some(401 | 403)) => {
            // A server with both wire formats on one port may guard its (OpenAI) listing with
            // another scheme than the `x-api-key` its messages endpoint takes: only a refused
            // one-token request proves the key wrong.
            let why = format!(
                "the model listing refused the key with HTTP {}",
                err.status().unwrap_or(401)
            );
            probe_chat(&client, provider, &mut check, &why).await;
        }
        Err(err) => check.problems.push(explain(provider, &err)),
    }
    check
}

async fn probe_chat(
    client: &ModelClient,
    provider: &ProviderSettings,
    check: &mut Check,
    listing: &str,
) {
    let run = Run::new(
        "doctor",
        BudgetLimits {
            max_tokens: u64::MAX,
            max_cost_usd: f64::MAX,
        },
    );
    let mut request = ChatRequest::new(AgentRole::Planner, None, "Reply with OK.");
    request.max_tokens = Some(1);
    let started = Instant::now();
    match client.complete(&run, &request).await {
        Ok(_) => check.lines.push(format!(
            "endpoint  answered a one-token request in {} ms ({listing})",
            started.elapsed().as_millis()
        )),
        Err(err) => check.problems.push(explain(provider, &err)),
    }
}

/// A failure in words the user can act on.
fn explain(provider: &ProviderSettings, err: &LlmError) -> String {
    let host = provider.host_port();
    match err {
        LlmError::Connect { .. }
        | LlmError::Timeout {
            what: "connection", ..
        } => {
            if is_ollama(provider) {
                format!("Ollama is not running on {host}: start it with `ollama serve`")
            } else if provider.is_loopback() {
                format!(
                    "nothing answers on {host}: start your model server there (for example `llama-server -m model.gguf --port {}` or `vllm serve <model> --port {}`) or fix `model.base_url`",
                    port(&host),
                    port(&host)
                )
            } else {
                format!(
                    "cannot reach {host}: check `model.base_url`, your network and any proxy ({err})"
                )
            }
        }
        LlmError::Timeout { .. } => format!(
            "{host} accepted the connection but did not answer within {} s: the server may be overloaded or still loading the model",
            PROBE_TIMEOUT.as_secs()
        ),
        LlmError::Status {
            status: 401 | 403, ..
        } => match &provider.api_key_env {
            Some(name) => format!(
                "the provider rejected the key in {name} (HTTP {}): check that it is valid and meant for this provider",
                err.status().unwrap_or(401)
            ),
            None => format!(
                "the provider requires a key (HTTP {}): set `api_key_env` to the name of the variable that holds it",
                err.status().unwrap_or(401)
            ),
        },
        LlmError::Status {
            status: 404,
            body_head,
            ..
        } if body_head.to_ascii_lowercase().contains("model") => format!(
            "model `{}` not found at {host}: {body_head}",
            provider.model
        ),
        LlmError::Status { status: 404, .. } => format!(
            "{} has no such endpoint (HTTP 404): check `model.base_url` (OpenAI-compatible URLs usually end in `/v1`; Anthropic's do not)",
            provider.base_url
        ),
        other => other.to_string(),
    }
}

fn port(host_port: &str) -> &str {
    host_port.rsplit_once(':').map_or("8080", |(_, p)| p)
}
