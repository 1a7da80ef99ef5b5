//! Model providers end to end: both wire formats, streamed and not, every fault of the test
//! server, budgets, cancellation, redaction and `conductor doctor`, all over real HTTP on
//! loopback.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conductor::llm::budget::BudgetLimits;
use conductor::llm::{
    AgentRole, ChatRequest, LlmError, ModelClient, ModelSettings, Models, ProviderKind,
    ProviderSettings, RedactPolicy, Redactor, Run,
};
use conductor::testkit::{Fault, ModelServer, Reply};

const KEY: &str = "test-key-5f2c9a";

fn settings(server: &ModelServer, kind: ProviderKind) -> ProviderSettings {
    let base = match kind {
        ProviderKind::Openai => server.openai_base_url(),
        ProviderKind::Anthropic => server.anthropic_base_url(),
    };
    let mut s = ProviderSettings::new(kind, base, "test-model");
    s.api_key_env = Some("TEST_MODEL_KEY".into());
    s.retry_base_delay_ms = 5;
    s.retry_max_delay_ms = 2_000;
    s.max_attempts = 3;
    s.first_byte_timeout_ms = 5_000;
    s.request_timeout_ms = 20_000;
    s
}

fn client(s: ProviderSettings) -> ModelClient {
    ModelClient::with_api_key(s, Some(KEY.into())).expect("client")
}

fn run() -> Run {
    Run::new(
        "run-1",
        BudgetLimits {
            max_tokens: 1_000_000,
            max_cost_usd: 100.0,
        },
    )
}

fn request(agent: AgentRole) -> ChatRequest {
    ChatRequest::new(agent, Some("You are a test.".into()), "Say hello.")
}

async fn start() -> ModelServer {
    ModelServer::start().await.expect("test server")
}

#[tokio::test]
async fn openai_non_streamed_reply_carries_text_usage_and_headers() {
    let server = start().await;
    server.push("coder", Reply::text("hello there").with_usage(11, 3));
    let reply = client(settings(&server, ProviderKind::Openai))
        .complete(&run(), &request(AgentRole::Coder))
        .await
        .expect("reply");
    assert_eq!(reply.text, "hello there");
    assert_eq!(reply.usage.input_tokens, 11);
    assert_eq!(reply.usage.output_tokens, 3);
    assert!(reply.usage_reported);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("x-conductor-agent"), Some("coder"));
    assert_eq!(r.header("x-conductor-run"), Some("run-1"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = r.json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], false);
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["messages"][0]["role"], "system");
}

#[tokio::test]
async fn reasoning_models_get_max_completion_tokens() {
    let server = start().await;
    server.push("coder", Reply::text("ok"));
    let mut s = settings(&server, ProviderKind::Openai);
    s.max_tokens_key = conductor::llm::settings::MaxTokensKey::MaxCompletionTokens;
    client(s)
        .complete(&run(), &request(AgentRole::Coder))
        .await
        .expect("reply");
    let body = server.requests()[0].json();
    assert_eq!(body["max_completion_tokens"], 4096);
    assert!(body.get("max_tokens").is_none(), "{body}");
}

#[tokio::test]
async fn openai_stream_is_delivered_incrementally() {
    let server = start().await;
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(5);
    server.push(
        "planner",
        Reply::text(text.clone())
            .with_usage(40, 50)
            .with_chunk_chars(10),
    );
    let mut deltas = Vec::new();
    let reply = client(settings(&server, ProviderKind::Openai))
        .stream(&run(), &request(AgentRole::Planner), &mut |d| {
            deltas.push(d.to_string())
        })
        .await
        .expect("reply");
    assert_eq!(reply.text, text);
    assert_eq!(deltas.concat(), text);
    assert_eq!(deltas.len(), text.len().div_ceil(10), "one delta per event");
    assert_eq!(reply.usage.output_tokens, 50);
    assert_eq!(reply.stop_reason.as_deref(), Some("stop"));
    assert_eq!(
        server.requests()[0].json()["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn anthropic_non_streamed_reply_uses_its_own_headers_and_body() {
    let server = start().await;
    server.push("security", Reply::text("no findings").with_usage(20, 4));
    let reply = client(settings(&server, ProviderKind::Anthropic))
        .complete(&run(), &request(AgentRole::Security))
        .await
        .expect("reply");
    assert_eq!(reply.text, "no findings");
    assert_eq!(reply.usage.input_tokens, 20);
    assert_eq!(reply.stop_reason.as_deref(), Some("end_turn"));
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("x-conductor-agent"), Some("security"));
    assert_eq!(r.json()["system"], "You are a test.");
}

#[tokio::test]
async fn anthropic_stream_is_delivered_incrementally_with_usage() {
    let server = start().await;
    let text = "Ünïcödé and emoji 🎻 survive chunking. ".repeat(4);
    server.push(
        "explainer",
        Reply::text(text.clone())
            .with_usage(30, 25)
            .with_chunk_chars(7),
    );
    let mut deltas = 0;
    let reply = client(settings(&server, ProviderKind::Anthropic))
        .stream(&run(), &request(AgentRole::Explainer), &mut |_| deltas += 1)
        .await
        .expect("reply");
    assert_eq!(reply.text, text);
    assert!(deltas > 10, "{deltas}");
    assert_eq!(
        (reply.usage.input_tokens, reply.usage.output_tokens),
        (30, 25)
    );
}

#[tokio::test]
async fn a_reply_without_usage_is_estimated_and_charged() {
    let server = start().await;
    server.push("coder", Reply::text("x".repeat(400)).without_usage());
    let run = run();
    let reply = client(settings(&server, ProviderKind::Openai))
        .stream(&run, &request(AgentRole::Coder), &mut |_| {})
        .await
        .expect("reply");
    assert!(!reply.usage_reported);
    assert_eq!(reply.usage.output_tokens, 100);
    assert_eq!(
        run.budget.usage_by_agent()[&AgentRole::Coder].output_tokens,
        100
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured_then_succeeds() {
    let server = start().await;
    server.push("coder", Reply::fault(Fault::rate_limited("1")));
    server.push("coder", Reply::text("after the wait"));
    let started = Instant::now();
    let reply = client(settings(&server, ProviderKind::Openai))
        .complete(&run(), &request(AgentRole::Coder))
        .await
        .expect("reply after retry");
    let waited = started.elapsed();
    assert_eq!(reply.text, "after the wait");
    assert_eq!(reply.attempts, 2);
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn server_errors_500_503_529_and_friends_are_retried() {
    for status in [408, 409, 500, 502, 503, 504, 529] {
        for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
            let server = start().await;
            server.push("tester", Reply::fault(Fault::status(status)));
            server.push("tester", Reply::text("recovered"));
            let reply = client(settings(&server, kind))
                .complete(&run(), &request(AgentRole::Tester))
                .await
                .unwrap_or_else(|err| panic!("{status} {kind:?}: {err}"));
            assert_eq!(reply.text, "recovered");
            assert_eq!(reply.attempts, 2, "{status}");
        }
    }
}

#[tokio::test]
async fn retries_are_bounded_and_the_error_names_provider_status_and_body() {
    let server = start().await;
    server.set_fallback(Reply::fault(Fault::status(503)));
    let c = client(settings(&server, ProviderKind::Anthropic));
    let err = c
        .complete(&run(), &request(AgentRole::Coder))
        .await
        .expect_err("always 503");
    assert_eq!(server.requests().len(), 3, "max_attempts is 3");
    let LlmError::RetriesExhausted { attempts, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*attempts, 3);
    let message = err.to_string();
    assert!(message.contains(c.name()), "{message}");
    assert!(message.contains("HTTP 503"), "{message}");
    assert!(message.contains("Internal server error"), "{message}");
    assert!(!message.contains(KEY));
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    for status in [400, 401, 403, 404, 422] {
        let server = start().await;
        server.set_fallback(Reply::fault(Fault::status(status)));
        let err = client(settings(&server, ProviderKind::Openai))
            .complete(&run(), &request(AgentRole::Coder))
            .await
            .expect_err("error status");
        assert_eq!(err.status(), Some(status), "{err}");
        assert_eq!(server.requests().len(), 1, "{status} must not be retried");
    }
}

#[tokio::test]
async fn a_retry_after_longer_than_the_limit_fails_at_once() {
    let server = start().await;
    server.set_fallback(Reply::fault(Fault::rate_limited("120")));
    let started = Instant::now();
    let err = client(settings(&server, ProviderKind::Openai))
        .complete(&run(), &request(AgentRole::Coder))
        .await
        .expect_err("too long to wait");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.requests().len(), 1);
    assert_eq!(err.status(), Some(429));
    assert!(err.to_string().contains("asked to wait longer"), "{err}");
}

#[tokio::test]
async fn a_connection_reset_is_retried() {
    let server = start().await;
    server.push("coder", Reply::fault(Fault::Reset));
    server.push("coder", Reply::text("second time lucky"));
    let reply = client(settings(&server, ProviderKind::Openai))
        .stream(&run(), &request(AgentRole::Coder), &mut |_| {})
        .await
        .expect("reply after reset");
    assert_eq!(reply.text, "second time lucky");
    assert_eq!(reply.attempts, 2);
}

#[tokio::test]
async fn resets_on_every_attempt_end_in_a_connection_error() {
    let server = start().await;
    server.set_fallback(Reply::fault(Fault::Reset));
    let err = client(settings(&server, ProviderKind::Anthropic))
        .complete(&run(), &request(AgentRole::Coder))
        .await
        .expect_err("always reset");
    let LlmError::RetriesExhausted { last, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(**last, LlmError::Connect { .. }), "{last:?}");
    assert!(err.to_string().contains("cannot reach"), "{err}");
}

#[tokio::test]
async fn a_reset_mid_stream_is_a_clear_error_and_is_not_retried() {
    for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
        let server = start().await;
        server.push(
            "coder",
            Reply::text("some text that is cut off in the middle")
                .with_chunk_chars(4)
                .with_fault(Fault::ResetMidStream { after_events: 5 }),
        );
        let mut seen = String::new();
        let run = run();
        let err = client(settings(&server, kind))
            .stream(&run, &request(AgentRole::Coder), &mut |d| seen.push_str(d))
            .await
            .expect_err("reset mid-stream");
        assert!(!seen.is_empty(), "part of the reply arrived first");
        let message = err.to_string();
        assert!(message.contains("HTTP 200"), "{message}");
        assert!(
            message.contains("broke") || message.contains("ended"),
            "{message}"
        );
        assert_eq!(
            server.requests().len(),
            1,
            "a half-delivered reply is not retried"
        );
        assert!(
            run.budget.total().input_tokens > 0,
            "the tokens a broken stream used are charged"
        );
    }
}

#[tokio::test]
async fn a_truncated_stream_is_a_clear_error() {
    for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
        let server = start().await;
        server.push(
            "planner",
            Reply::text("a plan that never finishes")
                .with_fault(Fault::TruncatedStream { after_events: 2 }),
        );
        let c = client(settings(&server, kind));
        let err = c
            .stream(&run(), &request(AgentRole::Planner), &mut |_| {})
            .await
            .expect_err("truncated");
        let message = err.to_string();
        assert!(message.contains(c.name()), "{message}");
        assert!(message.contains("HTTP 200"), "{message}");
        assert!(
            message.contains("ended before the reply was complete"),
            "{message}"
        );
        assert!(message.contains("first bytes"), "{message}");
    }
}

#[tokio::test]
async fn an_invalid_sse_frame_is_a_clear_error() {
    for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
        let server = start().await;
        server.push(
            "coder",
            Reply::text("text").with_fault(Fault::InvalidSse { after_events: 1 }),
        );
        let err = client(settings(&server, kind))
            .stream(&run(), &request(AgentRole::Coder), &mut |_| {})
            .await
            .expect_err("invalid SSE");
        let message = err.to_string();
        assert!(message.contains("invalid SSE frame"), "{message}");
        assert!(
            message.contains("this line is not server-sent events"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn garbage_json_is_a_clear_error_streamed_or_not() {
    for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
        let server = start().await;
        server.push("coder", Reply::fault(Fault::GarbageJson));
        server.push("coder", Reply::fault(Fault::GarbageJson));
        let c = client(settings(&server, kind));
        let err = c
            .complete(&run(), &request(AgentRole::Coder))
            .await
            .expect_err("garbage body");
        let message = err.to_string();
        assert!(message.contains("not JSON"), "{message}");
        assert!(message.contains("<html>"), "first bytes shown: {message}");
        let err = c
            .stream(&run(), &request(AgentRole::Coder), &mut |_| {})
            .await
            .expect_err("garbage event");
        assert!(err.to_string().contains("not JSON"), "{err}");
        assert_eq!(server.requests().len(), 2, "garbage is not retried");
    }
}

#[tokio::test]
async fn latency_within_the_limits_is_waited_for() {
    let server = start().await;
    server.push(
        "coder",
        Reply::text("slow but fine").with_latency(Duration::from_millis(300)),
    );
    let started = Instant::now();
    let reply = client(settings(&server, ProviderKind::Openai))
        .complete(&run(), &request(AgentRole::Coder))
        .await
        .expect("reply");
    assert_eq!(reply.text, "slow but fine");
    assert!(started.elapsed() >= Duration::from_millis(290));
}

#[tokio::test]
async fn no_first_byte_within_the_limit_times_out_and_retries() {
    let server = start().await;
    server.push(
        "coder",
        Reply::text("too late").with_latency(Duration::from_secs(30)),
    );
    server.push("coder", Reply::text("on time"));
    let mut s = settings(&server, ProviderKind::Openai);
    s.first_byte_timeout_ms = 500;
    let reply = client(s.clone())
        .complete(&run(), &request(AgentRole::Coder))
        .await
        .expect("second attempt answers");
    assert_eq!(reply.text, "on time");
    assert_eq!(reply.attempts, 2);

    server.set_fallback(Reply::text("x").with_fault(Fault::Stall { after_events: 2 }));
    s.max_attempts = 1;
    let err = client(s)
        .stream(&run(), &request(AgentRole::Coder), &mut |_| {})
        .await
        .expect_err("stalled stream");
    assert!(
        err.to_string().contains("no next chunk within 500 ms"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_a_stream_promptly_and_returns_cancelled() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = start().await;
    server.push(
        "coder",
        Reply::text("token ".repeat(400))
            .with_chunk_chars(6)
            .with_event_delay(Duration::from_millis(50)),
    );
    let run = run();
    let c = client(settings(&server, ProviderKind::Openai));
    // Another task cancels while the client waits for the next event, as the editor's
    // "cancel" command does.
    let deltas = Arc::new(AtomicUsize::new(0));
    let cancelled: Arc<Mutex<Option<(Instant, usize)>>> = Arc::default();
    let canceller = {
        let (cancel, deltas, cancelled) = (run.cancel.clone(), deltas.clone(), cancelled.clone());
        tokio::spawn(async move {
            while deltas.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            *cancelled.lock().expect("stamp") =
                Some((Instant::now(), deltas.load(Ordering::SeqCst)));
            cancel.cancel();
        })
    };
    let counter = deltas.clone();
    let result = c
        .stream(&run, &request(AgentRole::Coder), &mut |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .await;
    let stopped = Instant::now();
    canceller.await.expect("canceller");
    assert!(matches!(result, Err(LlmError::Cancelled)), "{result:?}");
    let (at, delivered_then) = cancelled
        .lock()
        .expect("stamp")
        .expect("cancelled mid-stream");
    let latency = stopped - at;
    eprintln!("cancellation latency: {latency:?}");
    // The target is 100 ms (see benches/llm_client.rs for the figure); the bound here is
    // generous so that a busy shared machine cannot fail the test.
    assert!(latency < Duration::from_millis(1_000), "{latency:?}");
    assert!(
        deltas.load(Ordering::SeqCst) <= delivered_then + 1,
        "nothing more is delivered after the cancel"
    );
    assert_eq!(
        run.budget.total().requests,
        1,
        "the cancelled request is charged"
    );
}

#[tokio::test]
async fn cancellation_interrupts_a_retry_wait() {
    let server = start().await;
    // A ten-second wait that the cancel must cut short.
    server.set_fallback(Reply::fault(Fault::rate_limited("10")));
    let run = run();
    let cancel = run.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let mut s = settings(&server, ProviderKind::Openai);
    s.retry_max_delay_ms = 30_000;
    let err = client(s)
        .complete(&run, &request(AgentRole::Coder))
        .await
        .expect_err("cancelled");
    assert!(matches!(err, LlmError::Cancelled), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let err = client(settings(&server, ProviderKind::Openai))
        .complete(&run, &request(AgentRole::Coder))
        .await
        .expect_err("already cancelled");
    assert!(matches!(err, LlmError::Cancelled));
    // One request (or none, if the machine was slow enough that the cancel came first).
    assert!(
        server.requests().len() <= 1,
        "a cancelled run sends nothing more"
    );
}

/// Spawns `count` requests from `agent` at once.
fn burst(
    client: &ModelClient,
    run: &Run,
    agent: AgentRole,
    count: usize,
) -> Vec<tokio::task::JoinHandle<Result<conductor::llm::ChatResponse, LlmError>>> {
    (0..count)
        .map(|_| {
            let (c, run) = (client.clone(), run.clone());
            tokio::spawn(async move { c.complete(&run, &request(agent)).await })
        })
        .collect()
}

#[tokio::test]
async fn the_concurrency_limit_holds_per_provider() {
    // Every reply is held long enough that all the requests a limit admits are in the server at
    // once, even on a loaded machine: the peak is then exactly the limit, so a limit of 1 fails
    // as surely as no limit does.
    const HELD: Duration = Duration::from_millis(500);

    // One provider with a limit of 2: four requests in flight two at a time.
    let server = start().await;
    server.set_fallback(Reply::text("ok").with_latency(HELD));
    let mut s = settings(&server, ProviderKind::Openai);
    s.max_concurrency = 2;
    let c = client(s);
    let run = run();
    for task in burst(&c, &run, AgentRole::Tester, 4) {
        task.await.expect("task").expect("reply");
    }
    assert_eq!(server.max_in_flight(), 2, "one provider, a limit of 2");
    assert_eq!(server.requests().len(), 4);

    // Two providers (two endpoints of one server), each with a limit of 2: each has its own
    // limit, so four are in flight together. One limit shared across providers would give 2.
    let server = start().await;
    server.set_fallback(Reply::text("ok").with_latency(HELD));
    let mut settings = ModelSettings {
        base_url: server.openai_base_url(),
        max_concurrency: 2,
        ..ModelSettings::default()
    };
    settings.agents.coder.kind = Some(ProviderKind::Anthropic);
    settings.agents.coder.base_url = Some(server.anthropic_base_url());
    let models = Models::with_env(&settings, &|_| None).expect("models");
    let run = models.new_run("run-two-providers");
    let mut tasks = burst(
        models.for_agent(AgentRole::Planner),
        &run,
        AgentRole::Planner,
        4,
    );
    tasks.extend(burst(
        models.for_agent(AgentRole::Coder),
        &run,
        AgentRole::Coder,
        4,
    ));
    for task in tasks {
        task.await.expect("task").expect("reply");
    }
    assert_eq!(
        server.max_in_flight(),
        4,
        "two providers, a limit of 2 each"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 8);
    let to_anthropic = requests.iter().filter(|r| r.path == "/v1/messages").count();
    assert_eq!(
        to_anthropic, 4,
        "the coder's requests went to its own provider"
    );
}

#[tokio::test]
async fn a_request_over_the_token_budget_is_never_sent() {
    let server = start().await;
    server.set_fallback(Reply::text("ok").with_usage(100, 100));
    let mut s = settings(&server, ProviderKind::Openai);
    s.max_tokens = 500;
    let c = client(s);
    let run = Run::new(
        "run-b",
        BudgetLimits {
            // The first request reserves about 510 (its prompt and `max_tokens`) and uses 200;
            // the second's 510 on top of those 200 would pass 700.
            max_tokens: 700,
            max_cost_usd: 100.0,
        },
    );
    c.complete(&run, &request(AgentRole::Planner))
        .await
        .expect("first fits");
    let err = c
        .complete(&run, &request(AgentRole::Coder))
        .await
        .expect_err("second would pass the limit");
    let LlmError::Budget(exceeded) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(exceeded.limit, "tokens");
    assert!(err.to_string().contains("the run stops here"), "{err}");
    assert_eq!(server.requests().len(), 1, "fail closed: nothing sent");
    let usage = run.budget.usage_by_agent();
    assert_eq!(usage[&AgentRole::Planner].input_tokens, 100);
    assert!(!usage.contains_key(&AgentRole::Coder));
}

#[tokio::test]
async fn cost_is_accounted_per_agent_and_the_cost_budget_fails_closed() {
    let server = start().await;
    server.set_fallback(Reply::text("ok").with_usage(100_000, 10_000));
    let mut s = settings(&server, ProviderKind::Anthropic);
    s.input_cost_per_mtok = 3.0;
    s.output_cost_per_mtok = 15.0;
    // Each request reserves its worst case: 10k output tokens at $15/M = $0.15.
    s.max_tokens = 10_000;
    let c = client(s);
    let run = Run::new(
        "run-c",
        BudgetLimits {
            max_tokens: 10_000_000,
            max_cost_usd: 1.0,
        },
    );
    for agent in [AgentRole::Planner, AgentRole::Coder] {
        c.complete(&run, &request(agent)).await.expect("fits");
    }
    let by_agent = run.budget.usage_by_agent();
    // 100k input at $3/M + 10k output at $15/M = $0.45 per request.
    assert!((by_agent[&AgentRole::Planner].cost_usd - 0.45).abs() < 1e-9);
    assert!((run.budget.total().cost_usd - 0.90).abs() < 1e-9);
    // $0.90 spent + $0.15 worst case > $1.00.
    let err = c
        .complete(&run, &request(AgentRole::Security))
        .await
        .expect_err("over the cost limit");
    assert!(
        matches!(&err, LlmError::Budget(e) if e.limit == "cost"),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn secrets_are_redacted_on_the_wire_and_restored_from_the_reply() {
    let server = start().await;
    let secret = "AKIAZ3MSJV7QXW2PLR5T";
    server.push(
        "coder",
        Reply::text("src/a.rs\n<<<<<<< SEARCH\nlet k = \"<redacted:aws-key:1>\";\n=======\nlet k = std::env::var(\"KEY\")?; // was <redacted:aws-key:1>\n>>>>>>> REPLACE\n"),
    );
    let mut s = settings(&server, ProviderKind::Openai);
    s.redact = RedactPolicy::Always;
    let run = run();
    let mut req = request(AgentRole::Coder);
    req.messages[0].content = format!("let k = \"{secret}\";");
    let reply = client(s).complete(&run, &req).await.expect("reply");
    let sent = &server.requests()[0].body;
    assert!(
        !sent.contains(secret),
        "the secret left the machine: {sent}"
    );
    assert!(sent.contains("<redacted:aws-key:1>"));
    let restored = run.redactor.restore(&reply.text);
    assert!(
        restored.contains(&format!("let k = \"{secret}\";")),
        "{restored}"
    );
    assert!(!restored.contains("<redacted:"));
    assert_eq!(run.redactor.total(), 1);
    assert_eq!(
        reply.redacted, 1,
        "the count is reported for the run's progress"
    );
}

#[tokio::test]
async fn loopback_providers_are_not_redacted_by_default() {
    let server = start().await;
    server.push("coder", Reply::text("ok"));
    let secret = "AKIAZ3MSJV7QXW2PLR5T";
    let mut req = request(AgentRole::Coder);
    req.messages[0].content = secret.to_string();
    client(settings(&server, ProviderKind::Openai))
        .complete(&run(), &req)
        .await
        .expect("reply");
    assert!(server.requests()[0].body.contains(secret));
}

#[tokio::test]
async fn a_missing_key_variable_fails_with_its_name_and_sends_nothing() {
    let server = start().await;
    server.set_fallback(Reply::text("ok"));
    let c =
        ModelClient::with_api_key(settings(&server, ProviderKind::Openai), None).expect("client");
    let err = c
        .complete(&run(), &request(AgentRole::Coder))
        .await
        .expect_err("no key");
    assert!(
        err.to_string().contains("TEST_MODEL_KEY is not set"),
        "{err}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_key_echoed_in_an_error_body_never_reaches_the_message() {
    let server = start().await;
    server.set_fallback(Reply::fault(Fault::Status {
        status: 401,
        retry_after: None,
        body: Some(format!("{{\"error\": \"invalid key {KEY}\"}}")),
    }));
    let err = client(settings(&server, ProviderKind::Openai))
        .complete(&run(), &request(AgentRole::Coder))
        .await
        .expect_err("401");
    let message = err.to_string();
    assert!(!message.contains(KEY), "{message}");
    assert!(message.contains("<api-key>"), "{message}");
}

#[tokio::test]
async fn models_route_each_agent_to_its_provider_and_share_limits() {
    let server = start().await;
    server.set_fallback(Reply::text("ok"));
    let mut settings = ModelSettings {
        base_url: server.openai_base_url(),
        model: "local".into(),
        ..ModelSettings::default()
    };
    settings.agents.coder.kind = Some(ProviderKind::Anthropic);
    settings.agents.coder.base_url = Some(server.anthropic_base_url());
    settings.agents.coder.model = Some("remote".into());
    settings.agents.coder.api_key_env = Some(Some("CODER_KEY".into()));
    let models = Models::with_env(&settings, &|name| {
        (name == "CODER_KEY").then(|| "coder-key".to_string())
    })
    .expect("models");
    let run = models.new_run("run-m");
    for agent in [AgentRole::Planner, AgentRole::Coder] {
        models
            .for_agent(agent)
            .complete(&run, &request(agent))
            .await
            .expect("reply");
    }
    let requests = server.requests();
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].json()["model"], "local");
    assert_eq!(requests[1].path, "/v1/messages");
    assert_eq!(requests[1].header("x-api-key"), Some("coder-key"));
    assert_eq!(requests[1].json()["model"], "remote");
    assert_eq!(run.budget.usage_by_agent().len(), 2);
}

/// Real-looking secrets (none of them live) and the kind each must be redacted as.
fn secret_corpus() -> Vec<(&'static str, String, &'static str)> {
    // Pieces are joined at run time so that scanners of this repository do not flag the corpus.
    let j = |parts: &[&str]| parts.concat();
    vec![
        (
            "PEM private key",
            j(&[
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MvWJwPr7\nq4Tm1hS9PYmb0Xx7ZxkqvX3Q8vH0pQ==\n-----END RSA ",
                "PRIVATE KEY-----",
            ]),
            "private-key",
        ),
        (
            "OpenSSH private key",
            j(&[
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH ",
                "PRIVATE KEY-----",
            ]),
            "private-key",
        ),
        (
            "AWS access key id",
            j(&["AKIA", "Z3MSJV7QXW2PLR5T"]),
            "aws-key",
        ),
        (
            "AWS secret access key",
            j(&[
                "aws_secret_access_key = ",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKQ",
            ]),
            "aws-secret",
        ),
        (
            "GCP service account",
            j(&[
                r#"{"type": "service_account", "project_id": "demo", "private_key_id": "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END "#,
                r#"PRIVATE KEY-----\n", "client_email": "x@demo.iam.gserviceaccount.com"}"#,
            ]),
            "private-key",
        ),
        (
            "GitHub token",
            j(&["ghp_", "R8x2Lq9ZtV4mN7bK1cW3yP6sD0fH5jG2aE8u"]),
            "github-token",
        ),
        (
            "GitHub fine-grained token",
            j(&[
                "github_pat_",
                "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
            ]),
            "github-token",
        ),
        (
            "GitLab token",
            j(&["glpat-", "x9Yz8Wv7Ut6Sr5Qp4On3"]),
            "gitlab-token",
        ),
        (
            "Slack bot token",
            j(&["xoxb-", "2048731590-4096183750123-Qm8Rt2Wx9Zp4Lk7Vn3Bj5Hd"]),
            "slack-token",
        ),
        (
            "Stripe live key",
            j(&["sk_live_", "51H8xYzAbCdEfGhIjKlMnOpQr"]),
            "stripe-key",
        ),
        (
            "OpenAI project key",
            j(&["sk-proj-", "Vq3Lm8Zx2Rt7Wp4Ks9Dn6Fb1Hy5Jc0Ge3Ua8Io2"]),
            "openai-key",
        ),
        (
            "Anthropic key",
            j(&["sk-ant-", "api03-Xk7Pq2Lm9Zr4Wt8Vb3Nc6Hd1Fg5Js0Ka-Qe2Uy8AA"]),
            "anthropic-key",
        ),
        (
            "JWT",
            j(&[
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.",
                "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.",
                "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            ]),
            "jwt",
        ),
        (
            "connection string password",
            j(&["postgres://app:", "Tr0ub4dor-x9q@db.internal:5432/app"]),
            "password",
        ),
        (
            "password literal",
            j(&["let db_password = \"", "hX9#kL2$mQ7!vR4z\";"]),
            "secret",
        ),
        (
            "client secret in JSON",
            j(&["{\"client_secret\": \"", "GOCSPX-1a2B3c4D5e6F7g8H9i0J\"}"]),
            "secret",
        ),
        (
            "dotenv token",
            j(&["export API_TOKEN=", "Zq8vN3kLp2Rt7YwXa9"]),
            "secret",
        ),
        (
            "bearer header",
            j(&["Authorization: Bearer ", "Zx81kPq0Lm27Vb93Nc46Rt58"]),
            "bearer-token",
        ),
    ]
}

#[test]
fn every_secret_of_the_corpus_is_redacted_and_restored() {
    for (name, text, kind) in secret_corpus() {
        let redactor = Redactor::new();
        let redacted = redactor.redact(&text);
        assert!(redacted.count >= 1, "{name} was not redacted: {text}");
        assert!(
            redacted.text.contains(&format!("<redacted:{kind}:1>")),
            "{name}: expected a {kind} placeholder in {}",
            redacted.text
        );
        assert_eq!(redactor.restore(&redacted.text), text, "{name} restores");
        // The secret part is gone: no run of 12 secret characters survives.
        for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            if word.len() >= 16 && !["PRIVATE", "service_account"].contains(&word) {
                assert!(
                    !redacted.text.contains(word),
                    "{name}: {word:?} survived in {}",
                    redacted.text
                );
            }
        }
    }
}

#[test]
fn look_alikes_are_left_alone() {
    let look_alikes = [
        "let id = Uuid::parse_str(\"67e55044-10b1-426f-9247-bb680e5fe0c8\")?;",
        "request_id = \"550e8400-e29b-41d4-a716-446655440000\"",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "rev = \"a1b2c3d4e5f60718293a4b5c6d7e8f9012345678\"",
        "checksum = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"",
        "const FIXTURE: &str = \"SGVsbG8sIHdvcmxkISBUaGlzIGlzIHRlc3QgZGF0YS4gMTIzNDU2Nzg5MA==\";",
        "\"integrity\": \"sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUR8FD8ptOXjg2lPRA==\"",
        "let max_tokens = 4096; let token_count = tokens.len();",
        "let password = read_password()?;",
        "password: \"password\"",
        "api_key_env = \"OPENAI_API_KEY\"",
        "tokenizer = \"cl100k_base_encoding\"",
        "secret = \"${SECRET_FROM_ENV}\"",
        "let url = \"postgres://localhost:5432/app\";",
        "see https://user@example.test/path for the task-runner-configuration-file",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUY2xpZW50\n-----END CERTIFICATE-----",
        "let digest = \"sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945\";",
        "fn risk_assessment_document_number() {}",
    ];
    let redactor = Redactor::new();
    for text in look_alikes {
        let redacted = redactor.redact(text);
        assert_eq!(redacted.text, text, "a look-alike was redacted");
        assert_eq!(redacted.count, 0);
    }
}

#[tokio::test]
async fn doctor_reports_a_working_provider_and_exits_0() {
    let server = start().await;
    server.set_models(&["test-model", "other"]);
    let scratch = temp_dir("ok");
    let dir = scratch.path();
    std::fs::write(
        dir.join("conductor.toml"),
        format!(
            "[model]\nbase_url = \"{}\"\nmodel = \"test-model\"\n",
            server.openai_base_url()
        ),
    )
    .expect("write config");
    let (code, out) = doctor(dir, &|_| None).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("all 5 agents have a working provider"),
        "{out}"
    );
    assert!(out.contains("2 models listed"), "{out}");
    assert!(out.contains(" ms "), "timing shown: {out}");
    assert!(
        out.contains("budget per run: 500000 tokens, $2.00"),
        "{out}"
    );
}

#[tokio::test]
async fn doctor_names_a_missing_key_and_a_missing_model() {
    let server = start().await;
    server.set_models(&["llama3", "qwen2.5-coder:7b"]);
    let scratch = temp_dir("problems");
    let dir = scratch.path();
    std::fs::write(
        dir.join("conductor.toml"),
        format!(
            "[model]\nbase_url = \"{base}\"\nmodel = \"missing-model\"\n\n[model.agents.coder]\napi_key_env = \"DOCTOR_TEST_KEY\"\n",
            base = server.openai_base_url()
        ),
    )
    .expect("write config");
    let (code, out) = doctor(dir, &|_| None).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("DOCTOR_TEST_KEY is not set"), "{out}");
    assert!(
        out.contains("model `missing-model` not found; available: llama3, qwen2.5-coder:7b"),
        "{out}"
    );
    let (_, out) = doctor(dir, &|name| {
        (name == "DOCTOR_TEST_KEY").then(|| "value-never-printed".to_string())
    })
    .await;
    assert!(out.contains("DOCTOR_TEST_KEY is set"), "{out}");
    assert!(!out.contains("value-never-printed"), "{out}");
}

#[tokio::test]
async fn doctor_explains_a_server_that_is_not_running() {
    // Bind and drop a listener to find a port that nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let scratch = temp_dir("down");
    let dir = scratch.path();
    std::fs::write(
        dir.join("conductor.toml"),
        format!("[model]\nbase_url = \"http://127.0.0.1:{port}/v1\"\n"),
    )
    .expect("write config");
    let (code, out) = doctor(dir, &|_| None).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("nothing answers on 127.0.0.1:{port}")),
        "{out}"
    );
}

#[tokio::test]
async fn doctor_reports_a_rejected_key() {
    let server = start().await;
    server.require_key("right");
    server.set_models(&["claude-test"]);
    let scratch = temp_dir("badkey");
    let dir = scratch.path();
    std::fs::write(
        dir.join("conductor.toml"),
        format!(
            "[model]\nkind = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"claude-test\"\napi_key_env = \"K\"\n",
            server.anthropic_base_url()
        ),
    )
    .expect("write config");
    let (code, out) = doctor(dir, &|_| Some("wrong".into())).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the provider rejected the key in K (HTTP 401)"),
        "{out}"
    );
    assert_eq!(server.requests()[0].path, "/v1/models");
    let (code, out) = doctor(dir, &|_| Some("right".into())).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn doctor_reports_a_bad_configuration_key_as_a_usage_error() {
    let server = start().await;
    server.set_models(&["test-model"]);
    let scratch = temp_dir("badconfig");
    let dir = scratch.path();
    std::fs::write(
        dir.join("conductor.toml"),
        format!(
            "[model]\nbase_url = \"{}\"\nmodel = \"test-model\"\ncolour = \"blue\"\n",
            server.openai_base_url()
        ),
    )
    .expect("write config");
    let (code, out) = doctor(dir, &|_| None).await;
    assert!(out.contains("model.colour"), "{out}");
    assert_eq!(code, 2, "a configuration problem is a usage error: {out}");
}

async fn doctor(dir: &std::path::Path, env: &dyn Fn(&str) -> Option<String>) -> (u8, String) {
    let mut out = Vec::new();
    let code = conductor::cli::doctor::doctor(dir, env, &mut out).await;
    (code, String::from_utf8_lossy(&out).into_owned())
}

/// A scratch workspace, removed when the returned guard is dropped.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("conductor-doctor-{name}-"))
        .tempdir()
        .expect("temp dir")
}

/// Collects everything a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// In its own process: the subscriber must be the global one, seen by every thread and every
/// callsite, or the log can miss events and the absence of secrets proves nothing (see
/// `support::child`).
#[test]
fn trace_logs_never_show_keys_or_secrets() {
    crate::support::child::run_alone("llm::trace_logs_never_show_keys_or_secrets", || {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("the only subscriber in this process");
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(secrets_stay_out_of_the_trace_log(&captured));
    });
}

async fn secrets_stay_out_of_the_trace_log(captured: &Captured) {
    let server = start().await;
    let secret = "ghp_R8x2Lq9ZtV4mN7bK1cW3yP6sD0fH5jG2aE8u";
    server.push("coder", Reply::text(format!("use {secret} here")));
    let mut req = request(AgentRole::Coder);
    req.messages[0].content = format!("token = {secret}");
    // Loopback: the secret goes on the wire unredacted, but not into the log.
    let reply = client(settings(&server, ProviderKind::Openai))
        .stream(&run(), &req, &mut |_| {})
        .await
        .expect("reply");
    assert!(reply.text.contains(secret));
    assert!(server.requests()[0].body.contains(secret));

    let log = String::from_utf8_lossy(&captured.0.lock().expect("log buffer")).into_owned();
    assert!(
        log.contains("model request (redacted)"),
        "trace logging ran: {log}"
    );
    assert!(
        log.contains("model reply text (redacted)"),
        "trace logging ran: {log}"
    );
    assert!(log.contains("<redacted:github-token:1>"), "{log}");
    assert!(!log.contains(secret), "a secret reached the log: {log}");
    assert!(!log.contains(KEY), "the API key reached the log: {log}");
}

#[tokio::test]
async fn doctor_falls_back_to_a_one_token_request_when_models_are_not_listed() {
    let server = start().await;
    server.set_models(&["served-model"]);
    server.hide_model_list();
    server.set_fallback(Reply::text("OK"));
    let scratch = temp_dir("unlisted");
    let dir = scratch.path();
    let config = |model: &str| {
        format!(
            "[model]\nbase_url = \"{}\"\nmodel = \"{model}\"\n",
            server.openai_base_url()
        )
    };
    std::fs::write(dir.join("conductor.toml"), config("served-model")).expect("write config");
    let (code, out) = doctor(dir, &|_| None).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("answered a one-token request"), "{out}");
    let probe = server.requests().last().cloned().expect("a chat probe");
    assert_eq!(probe.json()["max_tokens"], 1);

    std::fs::write(dir.join("conductor.toml"), config("absent-model")).expect("write config");
    let (code, out) = doctor(dir, &|_| None).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("model `absent-model` not found"), "{out}");
}

#[test]
fn the_doctor_command_runs_from_the_workspace_and_sets_its_exit_code() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(start());
    server.set_models(&["test-model"]);
    let scratch = temp_dir("binary");
    let dir = scratch.path();
    std::fs::write(
        dir.join("conductor.toml"),
        format!(
            "[model]\nbase_url = \"{}\"\nmodel = \"test-model\"\n\n[model.agents.planner]\napi_key_env = \"CONDUCTOR_DOCTOR_TEST_UNSET_KEY\"\n",
            server.openai_base_url()
        ),
    )
    .expect("write config");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_conductor"))
        .arg("doctor")
        .current_dir(dir)
        .env_remove("CONDUCTOR_DOCTOR_TEST_UNSET_KEY")
        .output()
        .expect("run conductor doctor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("CONDUCTOR_DOCTOR_TEST_UNSET_KEY is not set"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 of 5 agents have no working provider"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_non_streamed_body_cut_short_is_a_clear_error() {
    for fault in [
        Fault::ResetMidStream { after_events: 0 },
        Fault::TruncatedStream { after_events: 0 },
    ] {
        let server = start().await;
        server.push(
            "coder",
            Reply::text("a long enough reply ".repeat(20)).with_fault(fault.clone()),
        );
        let err = client(settings(&server, ProviderKind::Openai))
            .complete(&run(), &request(AgentRole::Coder))
            .await
            .expect_err("cut short");
        let message = err.to_string();
        assert!(
            message.contains("the body broke after"),
            "{fault:?}: {message}"
        );
        assert!(message.contains("HTTP 200"), "{message}");
        assert!(
            message.contains("first bytes: \"{\\\"choices"),
            "first bytes shown: {message}"
        );
    }
}

#[tokio::test]
async fn an_invalid_reply_gets_one_corrective_retry_quoting_the_error() {
    use conductor::llm::protocol::{AskError, PLANNER_FORMAT, ask_validated, parse_plan};
    let server = start().await;
    let valid = "```json\n{\"summary\": \"s\", \"steps\": [{\"id\": \"a\", \"title\": \"t\", \"agent\": \"coder\", \"targets\": [], \"depends_on\": []}], \"risks\": [], \"tradeoffs\": []}\n```";
    server.push("planner", Reply::text("Here is my plan: do it."));
    server.push("planner", Reply::text(valid));
    let c = client(settings(&server, ProviderKind::Anthropic));
    let run = run();
    let req = ChatRequest::new(AgentRole::Planner, Some(PLANNER_FORMAT.into()), "goal");
    let (plan, responses) = ask_validated(
        &c,
        &run,
        req.clone(),
        parse_plan,
        PLANNER_FORMAT,
        &mut |_| {},
    )
    .await
    .expect("second reply validates");
    assert_eq!(plan.steps[0].id, "a");
    assert_eq!(responses.len(), 2);
    let retry = server.requests()[1].json();
    let messages = retry["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1]["role"], "assistant");
    let correction = messages[2]["content"].as_str().expect("text");
    assert!(
        correction.contains("no ```json block found"),
        "{correction}"
    );
    assert!(
        correction.contains("\"depends_on\""),
        "the format is quoted: {correction}"
    );

    server.push("planner", Reply::text("still prose"));
    server.push("planner", Reply::text("prose again"));
    let err = ask_validated(&c, &run, req, parse_plan, PLANNER_FORMAT, &mut |_| {})
        .await
        .expect_err("invalid twice");
    assert!(matches!(err, AskError::Invalid { .. }), "{err:?}");
    assert!(
        err.to_string().contains("even after a corrective retry"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 4, "exactly one corrective retry");
}

#[tokio::test]
async fn no_secret_of_the_corpus_leaves_the_machine_for_a_remote_provider() {
    let server = start().await;
    server.push("coder", Reply::text("ok"));
    let mut s = settings(&server, ProviderKind::Anthropic);
    // The test server is on loopback; `always` makes it be treated like a remote host.
    s.redact = RedactPolicy::Always;
    let corpus = secret_corpus();
    let prompt: String = corpus
        .iter()
        .map(|(_, text, _)| format!("{text}\n"))
        .collect();
    let mut req = request(AgentRole::Coder);
    req.system = Some(format!("context:\n{prompt}"));
    req.messages[0].content = prompt.clone();
    let run = run();
    let reply = client(s).complete(&run, &req).await.expect("reply");
    let sent = &server.requests()[0].body;
    for (name, text, _) in &corpus {
        for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            if word.len() >= 16 && !["PRIVATE", "service_account"].contains(&word) {
                assert!(!sent.contains(word), "{name}: {word:?} was sent");
            }
        }
    }
    // Each secret counted once per occurrence: the system prompt and the user turn.
    assert!(reply.redacted >= 2 * corpus.len(), "{}", reply.redacted);
    assert!(run.redactor.total() >= corpus.len());
}

#[tokio::test]
async fn agents_on_one_provider_share_its_concurrency_limit() {
    let server = start().await;
    server.set_fallback(Reply::text("ok").with_latency(Duration::from_millis(80)));
    let settings = ModelSettings {
        base_url: server.openai_base_url(),
        max_concurrency: 1,
        ..ModelSettings::default()
    };
    let models = Models::with_env(&settings, &|_| None).expect("models");
    let run = models.new_run("run-shared");
    let tasks: Vec<_> = AgentRole::ALL
        .into_iter()
        .map(|agent| {
            let (client, run) = (models.for_agent(agent).clone(), run.clone());
            tokio::spawn(async move { client.complete(&run, &request(agent)).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("reply");
    }
    assert_eq!(
        server.max_in_flight(),
        1,
        "five agents, one provider, one slot"
    );
    assert_eq!(run.budget.usage_by_agent().len(), 5);
}
