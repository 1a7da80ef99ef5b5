//! A seeded fuzz of the session (issue 17): malformed frames, JSON-RPC shape errors, lifecycle
//! misuse, `didChange` edge cases checked against a model of the documented clamping, and
//! deep and huge documents (among them deep documents with findings, and deep documents an edit
//! makes shallow). After every case a probe must be answered correctly in time.
//!
//! CI runs a small number of cases; by hand, `CONDUCTOR_FUZZ_CASES=2000` (and optionally
//! `CONDUCTOR_FUZZ_SEED=n`) runs more, and the summary line gives the counts per kind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::rng::Rng;
use crate::support::{Options, TestServer};

/// How long a probe may take before the case counts as a hang.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// The model of the document: lines end at `\n`, `\r\n` or `\r`; columns count UTF-16 units;
/// a line past the end clamps to the end, a column past the line to the end of its content,
/// a column inside a surrogate pair to the start of the character.
fn model_offset(text: &str, line: u64, character: u64) -> usize {
    let bytes = text.as_bytes();
    let mut start = 0usize;
    for _ in 0..line {
        let mut i = start;
        loop {
            if i >= bytes.len() {
                return text.len();
            }
            match bytes[i] {
                b'\n' => {
                    start = i + 1;
                    break;
                }
                b'\r' => {
                    start = if bytes.get(i + 1) == Some(&b'\n') {
                        i + 2
                    } else {
                        i + 1
                    };
                    break;
                }
                _ => i += 1,
            }
        }
    }
    let mut units = 0u64;
    for (at, c) in text[start..].char_indices() {
        if c == '\n' || c == '\r' {
            return start + at;
        }
        let next = units + c.len_utf16() as u64;
        if next > character {
            return start + at;
        }
        units = next;
    }
    text.len()
}

/// What random text is made of: multi-byte characters and every kind of line ending.
const PIECES: &[&str] = &["a", "😀", "中", "\n", "\r\n", "\r", " ", "fn x() {}", "é"];

fn random_text(rng: &mut Rng, max_pieces: usize) -> String {
    (0..rng.below(max_pieces + 1))
        .map(|_| *rng.pick(PIECES))
        .collect()
}

fn nested(levels: usize) -> String {
    format!(
        "fn h(x: String) {{ let q = {}x{}; db.execute(&q); }}\n",
        "format!(\"{}\", ".repeat(levels),
        ")".repeat(levels)
    )
}

#[derive(Default)]
struct Tally {
    cases: BTreeMap<&'static str, usize>,
    wrong: Vec<String>,
    hangs: Vec<String>,
    slowest_probe: Duration,
}

async fn probe(server: &TestServer, uri: &str, model: &str, tally: &mut Tally, case: &str) {
    let started = Instant::now();
    match server
        .request_within(
            "conductor/debugDocument",
            json!({"textDocument": {"uri": uri}}),
            PROBE_LIMIT,
        )
        .await
    {
        None => tally.hangs.push(case.to_string()),
        Some(Ok(doc)) if doc["text"] == model => {}
        Some(other) => tally.wrong.push(format!(
            "{case}: the probe got {}",
            serde_json::to_string(&other)
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect::<String>()
        )),
    }
    tally.slowest_probe = tally.slowest_probe.max(started.elapsed());
}

/// Waits for the response to no request of ours whose id is `id`; checks its code.
async fn expect_stray(server: &TestServer, id: &str, code: i64, tally: &mut Tally, case: &str) {
    let deadline = Instant::now() + PROBE_LIMIT;
    loop {
        if let Some(found) = server.stray_responses().iter().find(|r| r["id"] == id) {
            if found["error"]["code"] != code {
                tally
                    .wrong
                    .push(format!("{case}: expected {code}, got {found}"));
            }
            return;
        }
        if Instant::now() > deadline {
            tally.hangs.push(format!("{case}: no answer"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn expect_error(
    server: &TestServer,
    method: &str,
    params: Value,
    code: i64,
    tally: &mut Tally,
    case: &str,
) {
    match server.request_within(method, params, PROBE_LIMIT).await {
        None => tally.hangs.push(case.to_string()),
        Some(Err(error)) if error["code"] == code => {}
        Some(other) => tally
            .wrong
            .push(format!("{case}: expected {code}, got {other:?}")),
    }
}

/// Runs `cases` cases from `seed`; returns the tally.
async fn run(seed: u64, cases: usize) -> Tally {
    let server = TestServer::start(Options::default()).await;
    let mut rng = Rng(seed.max(1));
    let mut tally = Tally::default();
    let uri = server.uri("src/model.rs");
    let mut model = String::from("fn main() {\n    let 😀 = \"中\";\r\n}\r");
    server
        .notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": model}}),
        )
        .await;
    let mut version = 1;
    for n in 0..cases {
        let kind = rng.below(6);
        let name: &'static str;
        let case = format!("case {n} (seed {seed})");
        match kind {
            0 => {
                name = "junk and broken frames";
                let junk: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
                let bytes = match rng.below(6) {
                    0 => junk,
                    1 => frame(&junk),
                    2 => format!("Content-Length: {}\r\n\r\n", 1u64 << 40).into_bytes(),
                    3 => b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}\r\n".to_vec(),
                    4 => b"Content-Length: -1\r\n\r\n".to_vec(),
                    _ => b"Content-Type: x\r\n\r\n".to_vec(),
                };
                server.send_raw(&bytes).await;
                // Junk is only recognised as such when the next header arrives.
                server.send_raw(b"\r\n").await;
            }
            1 => {
                name = "JSON-RPC shape errors";
                let id = format!("fuzz-{n}");
                let bodies = [
                    json!({"jsonrpc": "1.0", "id": id, "method": "x"}),
                    json!({"jsonrpc": "2.0", "id": id, "method": 7}),
                    json!({"jsonrpc": "2.0", "id": id, "method": "x", "params": "s"}),
                    json!({"jsonrpc": "2.0", "id": id}),
                    json!({"jsonrpc": "2.0", "id": id, "result": 1, "error": {"code": 1, "message": "m"}}),
                ];
                let body = rng.pick(&bodies).to_string();
                server.send_raw(&frame(body.as_bytes())).await;
                expect_stray(&server, &id, -32600, &mut tally, &case).await;
                let odd = [
                    r#"[1,2]"#.to_string(),
                    r#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#.to_string(),
                    r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"x"}"#.to_string(),
                    r#"{"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":5}}"#.to_string(),
                    "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":".repeat(200),
                ];
                server.send_raw(&frame(rng.pick(&odd).as_bytes())).await;
            }
            2 => {
                name = "lifecycle misuse";
                match rng.below(4) {
                    0 => {
                        let offered = rng
                            .pick(&[json!(["utf-8"]), json!(["utf-32"]), json!([])])
                            .clone();
                        expect_error(
                            &server,
                            "initialize",
                            json!({"capabilities": {"general": {"positionEncodings": offered}}}),
                            -32600,
                            &mut tally,
                            &case,
                        )
                        .await;
                    }
                    1 => {
                        expect_error(&server, "$/fuzz", json!({}), -32601, &mut tally, &case).await
                    }
                    2 => {
                        expect_error(
                            &server,
                            "fuzz/unknown",
                            json!([1, 2]),
                            -32601,
                            &mut tally,
                            &case,
                        )
                        .await
                    }
                    _ => {
                        server.notify("initialized", json!({})).await;
                        server
                            .notify("$/cancelRequest", json!({"id": 999_999}))
                            .await;
                    }
                }
            }
            3 | 4 => {
                name = "didChange against the model";
                version += 1;
                let mut changes = Vec::new();
                for _ in 0..=rng.below(3) {
                    let whole = rng.below(12) == 0;
                    let text = random_text(&mut rng, 6);
                    if whole {
                        model = text.clone();
                        changes.push(json!({"text": text}));
                        continue;
                    }
                    let lines = model.matches('\n').count() + 3;
                    let mut pos = || (rng.below(lines) as u64, rng.below(24) as u64);
                    let (a, b) = (pos(), pos());
                    let (oa, ob) = (
                        model_offset(&model, a.0, a.1),
                        model_offset(&model, b.0, b.1),
                    );
                    let (start, end) = (oa.min(ob), oa.max(ob));
                    model.replace_range(start..end, &text);
                    changes.push(json!({"range": {"start": {"line": a.0, "character": a.1},
                        "end": {"line": b.0, "character": b.1}}, "text": text}));
                }
                server
                    .notify(
                        "textDocument/didChange",
                        json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
                    )
                    .await;
            }
            _ => {
                let other = server.uri(&format!("src/hostile{n}.rs"));
                let kind = rng.below(5);
                name = match kind {
                    3 => "deep documents with findings (data flow cut short)",
                    4 => "deep documents made shallow by an edit",
                    _ => "deep and huge documents",
                };
                let text = match kind {
                    0 => nested(1_000 + rng.below(20_000)),
                    1 => "x".repeat(100_000 + rng.below(5_000_000)),
                    2 => format!(
                        "type T = {}u8{};",
                        "Vec<".repeat(50_000),
                        ">".repeat(50_000)
                    ),
                    // Deep enough to cut the data flow short, shallow enough to be parsed,
                    // with findings in the deep item and in a shallow one after it.
                    _ => format!(
                        "{}fn tls() {{ reqwest::Client::builder().danger_accept_invalid_certs(true); }}\n",
                        nested(250 + rng.below(1_500))
                    ),
                };
                server
                    .notify(
                        "textDocument/didOpen",
                        json!({"textDocument": {"uri": other, "languageId": "rust", "version": 1, "text": text}}),
                    )
                    .await;
                if kind == 4 {
                    // A document that goes deep, then shallow: once the text is shallow again
                    // it has a tree (a refusal cached for the deep text must not outlive it).
                    let _ = server
                        .request_within(
                            "conductor/debugDocument",
                            json!({"textDocument": {"uri": other}}),
                            PROBE_LIMIT,
                        )
                        .await;
                    server
                        .notify(
                            "textDocument/didChange",
                            json!({"textDocument": {"uri": other, "version": 2}, "contentChanges": [{"text": "fn shallow() {}\n"}]}),
                        )
                        .await;
                    match server
                        .request_within(
                            "conductor/debugDocument",
                            json!({"textDocument": {"uri": other}}),
                            PROBE_LIMIT,
                        )
                        .await
                    {
                        None => tally.hangs.push(format!("{case}: deep then shallow")),
                        Some(Ok(doc)) if doc["tree"].is_string() => {}
                        Some(other) => tally.wrong.push(format!(
                            "{case}: deep then shallow, the shallow text has no tree: {}",
                            serde_json::to_string(&other)
                                .unwrap_or_default()
                                .chars()
                                .take(300)
                                .collect::<String>()
                        )),
                    }
                }
                server
                    .notify(
                        "textDocument/didClose",
                        json!({"textDocument": {"uri": other}}),
                    )
                    .await;
            }
        }
        *tally.cases.entry(name).or_default() += 1;
        probe(&server, &uri, &model, &mut tally, &case).await;
        if tally.hangs.len() > 3 {
            break;
        }
    }
    let _ = server
        .request_within("shutdown", Value::Null, PROBE_LIMIT)
        .await;
    server.notify("exit", Value::Null).await;
    tally
}

#[test]
fn the_model_clamps_like_the_protocol_says() {
    let text = "ab\r\n😀c\rd";
    assert_eq!(model_offset(text, 0, 99), 2);
    assert_eq!(model_offset(text, 1, 1), 4, "inside the surrogate pair");
    assert_eq!(model_offset(text, 1, 2), 8);
    assert_eq!(model_offset(text, 2, 0), 10);
    assert_eq!(model_offset(text, 9, 0), text.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_fuzz_keeps_the_session_answering_correctly() {
    let cases: usize = std::env::var("CONDUCTOR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("CONDUCTOR_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(17);
    let started = Instant::now();
    let tally = run(seed, cases).await;
    eprintln!(
        "fuzz: seed {seed}, {} cases in {:.1?}: {:?}; wrong {}, hangs {}, slowest probe {:?}",
        tally.cases.values().sum::<usize>(),
        started.elapsed(),
        tally.cases,
        tally.wrong.len(),
        tally.hangs.len(),
        tally.slowest_probe
    );
    assert!(tally.hangs.is_empty(), "hangs: {:#?}", tally.hangs);
    assert!(tally.wrong.is_empty(), "wrong answers: {:#?}", tally.wrong);
}
