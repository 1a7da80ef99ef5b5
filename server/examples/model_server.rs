//! The test kit's scripted model server as a program, for the editor end-to-end tests
//! (`tests/editors/`), which drive the real `conductor` binary from Neovim and Emacs and need a
//! model on loopback that plays known replies.
//!
//! `cargo run --example model_server -- SCRIPT.json` binds `127.0.0.1` on an ephemeral port,
//! prints the OpenAI-compatible base URL (`http://127.0.0.1:<port>/v1`) as its first line on
//! stdout, and serves until its standard input closes; then it prints how many requests each
//! agent made (`requests planner=1 coder=1`) on stderr and exits. The script is
//!
//! ```json
//! { "replies": [ { "agent": "planner", "text": "…", "latency_ms": 0, "event_delay_ms": 0 } ],
//!   "fallback": { "text": "…" } }
//! ```
//!
//! Replies play in order per agent (the `x-conductor-agent` header; `"*"` matches any), each
//! once; `fallback` answers when an agent's queue is empty (without one: HTTP 500).
//! `event_delay_ms` slows a streamed reply down, so that a test can cancel a run mid-way.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use conductor::testkit::{ModelServer, Reply};
use serde_json::Value;

/// One scripted reply, read from the script.
fn reply(entry: &Value, what: &str) -> anyhow::Result<Reply> {
    let text = entry
        .get("text")
        .and_then(Value::as_str)
        .with_context(|| format!("{what}: `text` (a string) is missing"))?;
    let millis = |key: &str| -> anyhow::Result<Duration> {
        match entry.get(key) {
            None => Ok(Duration::ZERO),
            Some(value) => value
                .as_u64()
                .map(Duration::from_millis)
                .with_context(|| format!("{what}: `{key}` must be a whole number of milliseconds")),
        }
    };
    Ok(Reply::text(text)
        .with_latency(millis("latency_ms")?)
        .with_event_delay(millis("event_delay_ms")?))
}

async fn serve(script: Value) -> anyhow::Result<()> {
    let server = ModelServer::start()
        .await
        .context("binding the model server on 127.0.0.1")?;
    let replies = match script.get("replies") {
        None => Vec::new(),
        Some(Value::Array(replies)) => replies.clone(),
        Some(_) => bail!("the script's `replies` must be a list"),
    };
    for (i, entry) in replies.iter().enumerate() {
        let what = format!("replies[{i}]");
        let agent = entry
            .get("agent")
            .and_then(Value::as_str)
            .with_context(|| format!("{what}: `agent` (a string) is missing"))?;
        server.push(agent, reply(entry, &what)?);
    }
    if let Some(fallback) = script.get("fallback") {
        server.set_fallback(reply(fallback, "fallback")?);
    }
    println!("{}", server.openai_base_url());

    // Serve until the test closes our standard input (or goes away, which closes it too).
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .context("waiting for standard input to close")?;

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for request in server.requests() {
        let agent = request.header("x-conductor-agent").unwrap_or("none");
        *counts.entry(agent.to_string()).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(a, n)| format!("{a}={n}")).collect();
    eprintln!("requests {}", counts.join(" "));
    Ok(())
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: model_server SCRIPT.json");
        return ExitCode::from(2);
    };
    let script = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the script {path}"))
        .and_then(|text| {
            serde_json::from_str::<Value>(&text)
                .with_context(|| format!("parsing the script {path}"))
        });
    let script = match script {
        Ok(script) => script,
        Err(err) => {
            eprintln!("model_server: {err:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("model_server: starting the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(script)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("model_server: {err:#}");
            ExitCode::from(1)
        }
    }
}
