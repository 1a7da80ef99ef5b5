//! Client overhead per model request: the client's components timed one by one (redacting a
//! ~6,000-token prompt, building the request, parsing a ~2,000-token streamed reply), whose sum
//! is not `ModelClient`'s own path; then whole requests through `ModelClient` against the
//! loopback test server, which include the server's work. Also the time from cancelling a run
//! to the stream call returning. Every decoded reply is checked to equal the reply sent.
//!
//! Run with `cargo bench --bench llm_client`; prints median and p95 of each measurement.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conductor::llm::budget::BudgetLimits;
use conductor::llm::sse::SseParser;
use conductor::llm::wire::{WireRequest, provider_for};
use conductor::llm::{
    AgentRole, ChatRequest, MessageRole, ModelClient, ProviderKind, ProviderSettings, RedactPolicy,
    Redactor, Run,
};
use conductor::testkit::{Format, ModelServer, Reply, stream_events};

const ITERATIONS: usize = 200;

/// About 6,000 tokens (24 KB) of Rust with a few secrets in it, as a context bundle would be.
fn prompt() -> String {
    let unit = r#"/// Connects to the orders database and retries on transient failures.
pub async fn connect(config: &Config) -> anyhow::Result<Pool> {
    let url = format!("postgres://{}:{}@{}/orders", config.user, config.password, config.host);
    let id = Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8")?;
    for attempt in 0..config.max_attempts {
        match Pool::connect(&url).await {
            Ok(pool) => return Ok(pool),
            Err(err) if attempt + 1 < config.max_attempts => tracing::warn!(%err, attempt, "retrying"),
            Err(err) => return Err(err).context("connecting to the orders database"),
        }
    }
    unreachable!()
}
"#;
    let mut text = String::with_capacity(25_000);
    let mut i = 0;
    while text.len() < 24_000 {
        text.push_str(unit);
        if i % 8 == 0 {
            text.push_str(&format!(
                "const AWS_KEY: &str = \"AKIAZ3MSJV7QXW2PL{i:03}\";\nlet db_password = \"hX9#kL2$mQ7!vR{i:03}\";\n"
            ));
        }
        i += 1;
    }
    text
}

/// About 2,000 tokens of reply, streamed one token (four characters) per event.
fn reply_text() -> String {
    "fn a() { call(); } // ok ".repeat(320)
}

fn stats(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p95 = samples[(samples.len() * 95 / 100).min(samples.len() - 1)];
    println!(
        "{name:<46} median {:>9.3} ms   p95 {:>9.3} ms   (n = {})",
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        samples.len()
    );
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            std::process::exit(2);
        }
    };
    runtime.block_on(bench());
}

async fn bench() {
    let prompt = prompt();
    let reply = reply_text();
    println!(
        "prompt: {} bytes (~{} tokens); reply: {} bytes (~{} tokens) in {} events",
        prompt.len(),
        conductor::llm::estimate_tokens(&prompt),
        reply.len(),
        conductor::llm::estimate_tokens(&reply),
        reply.len().div_ceil(4)
    );

    // Client-side work alone, without the network or the server.
    let mut redact = Vec::with_capacity(ITERATIONS);
    let mut build = Vec::with_capacity(ITERATIONS);
    let mut parse = Vec::with_capacity(ITERATIONS);
    let mut total = Vec::with_capacity(ITERATIONS);
    let wire_bytes: Vec<u8> = stream_events(Format::OpenAi, "m", &reply, 4, None)
        .concat()
        .into_bytes();
    for _ in 0..ITERATIONS {
        let t0 = Instant::now();
        let redactor = Redactor::new();
        let redacted = redactor.redact(&prompt);
        let t1 = Instant::now();
        let messages = vec![(MessageRole::User, redacted.text)];
        let body = provider_for(ProviderKind::Openai).body(&WireRequest {
            model: "m",
            system: Some("You are the coder."),
            messages: &messages,
            max_tokens: 4096,
            temperature: 0.2,
            stream: true,
            max_tokens_key: "max_tokens",
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        black_box(&bytes);
        let t2 = Instant::now();
        let mut parser = SseParser::new();
        let mut decoder = provider_for(ProviderKind::Openai).stream_decoder();
        let mut text = String::new();
        let mut delta = String::new();
        let mut decode_error = None;
        let mut framing_error = None;
        // TCP delivers the stream in segments of about 1.4 KB.
        for segment in wire_bytes.chunks(1400) {
            let pushed = parser.push(segment, &mut |event| {
                if let Err(err) = decoder.event(&event, &mut delta) {
                    decode_error.get_or_insert(err);
                }
                text.push_str(&delta);
                delta.clear();
                Ok(())
            });
            if let Err(err) = pushed {
                framing_error.get_or_insert(err);
            }
        }
        black_box(&text);
        let t3 = Instant::now();
        // A parser or decoder that failed would make this row look faster, not slower: the
        // figure only counts when the stream decoded to exactly the reply.
        if let Some(err) = framing_error {
            panic!("the SSE framing of the benchmark stream failed: {err}");
        }
        if let Some(err) = decode_error {
            panic!("decoding an event of the benchmark stream failed: {err}");
        }
        assert_eq!(text, reply, "the decoded stream is the reply");
        redact.push(t1 - t0);
        build.push(t2 - t1);
        parse.push(t3 - t2);
        total.push(t3 - t0);
    }
    stats("redact the ~6,000-token prompt", redact);
    stats("build and encode the request body", build);
    stats("parse the ~2,000-token SSE stream", parse);
    stats("sum of the client's components (the three)", total);

    // The whole request over loopback: client, kernel and test server together.
    let server = match ModelServer::start().await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("cannot start the test server: {err}");
            std::process::exit(2);
        }
    };
    server.set_fallback(Reply::text(reply.clone()).with_chunk_chars(4));
    let mut settings = ProviderSettings::new(ProviderKind::Openai, server.openai_base_url(), "m");
    settings.redact = RedactPolicy::Always;
    let client = match ModelClient::with_api_key(settings, None) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("cannot build the client: {err}");
            std::process::exit(2);
        }
    };
    let limits = BudgetLimits {
        max_tokens: u64::MAX,
        max_cost_usd: f64::MAX,
    };
    let request = ChatRequest::new(AgentRole::Coder, Some("You are the coder.".into()), &prompt);
    let mut end_to_end = Vec::with_capacity(ITERATIONS);
    for i in 0..ITERATIONS + 10 {
        let run = Run::new(format!("bench-{i}"), limits);
        let started = Instant::now();
        let result = client
            .stream(&run, &request, &mut |d| {
                black_box(d);
            })
            .await;
        match result {
            Ok(r) => assert_eq!(r.text, reply, "request {i} returned the whole reply"),
            Err(err) => panic!("request {i} over loopback failed: {err}"),
        }
        // The first requests warm up the connection path and allocator.
        if i >= 10 {
            end_to_end.push(started.elapsed());
        }
    }
    stats("whole request over loopback (incl. server)", end_to_end);

    // Cancellation: another task cancels while the stream waits for its next event.
    server.set_fallback(
        Reply::text(reply.clone())
            .with_chunk_chars(4)
            .with_event_delay(Duration::from_millis(10)),
    );
    let mut cancel = Vec::with_capacity(50);
    for i in 0..50 {
        let run = Run::new(format!("cancel-{i}"), limits);
        let deltas = Arc::new(AtomicUsize::new(0));
        let (token, seen) = (run.cancel.clone(), deltas.clone());
        let canceller = tokio::spawn(async move {
            while seen.load(Ordering::SeqCst) < 5 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(Duration::from_millis(5 + (i % 7) as u64)).await;
            let at = Instant::now();
            token.cancel();
            at
        });
        let counter = deltas.clone();
        let _ = client
            .stream(&run, &request, &mut |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .await;
        let stopped = Instant::now();
        if let Ok(at) = canceller.await {
            cancel.push(stopped.saturating_duration_since(at));
        }
    }
    stats("cancel to return, mid-stream", cancel);
}
