//! Property test: random incremental edits sent through the protocol, in every position
//! encoding, with CRLF, lone CR, emoji, CJK and combining characters, must leave the server's
//! text identical to an oracle string and its incrementally maintained syntax tree identical
//! to a fresh parse of that text. Set `CONDUCTOR_PROPTEST_SEED` to replay one seed.

use serde_json::json;

use crate::support::rng::Rng;
use crate::support::{Options, TestServer, lsp_position};

/// Edits per encoding; three encodings make the total over 10,000.
const EDITS_PER_SESSION: usize = 3_400;
/// How often the server's state is compared with the oracle.
const CHECK_EVERY: usize = 50;

const FRAGMENTS: &[&str] = &[
    "fn ",
    "f",
    "(",
    ")",
    "{",
    "}",
    ";",
    " ",
    "let x = ",
    "1",
    "\n",
    "\r\n",
    "\r",
    "😀",
    "中文",
    "e\u{301}",
    "\"",
    "// c\n",
    "impl A {",
    "struct S;",
    "'a",
    "::",
    "->",
    "#[test]",
    "\t",
    "é",
    "👩‍👩‍👧",
    "match x { _ => 1 }",
    "/*",
    "*/",
    "r#\"",
    "\"#",
];

/// Offsets where an edit may start or end: character boundaries, but never between the `\r`
/// and `\n` of a CRLF (LSP has no position there).
fn valid_offsets(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    text.char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .filter(|&i| !(i > 0 && bytes[i - 1] == b'\r' && bytes.get(i) == Some(&b'\n')))
        .collect()
}

fn random_text(rng: &mut Rng) -> String {
    let n = rng.below(4);
    (0..n)
        .map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())])
        .collect()
}

async fn run_session(encoding: &'static str, seed: u64) {
    let server = TestServer::start(Options {
        encodings: Some(vec![encoding]),
        ..Options::default()
    })
    .await;
    assert_eq!(server.encoding, encoding);
    let rust = conductor::syntax::Language::by_name("rust").expect("rust");
    let mut oracle = String::from("fn main() {\r\n    let s = \"😀 中文\";\n}\n");
    let uri = server.open_text("src/prop.rs", &oracle).await;
    let mut rng = Rng(seed);
    let mut sent = 0usize;
    while sent < EDITS_PER_SESSION {
        // One notification carries one to three changes, applied in order.
        let count = 1 + rng.below(3);
        let mut changes = Vec::with_capacity(count);
        for _ in 0..count {
            let offsets = valid_offsets(&oracle);
            let a = offsets[rng.below(offsets.len())];
            let span = if oracle.len() > 3_000 { 200 } else { 12 };
            let b_candidates: Vec<usize> = offsets
                .iter()
                .copied()
                .filter(|&o| o >= a && o <= a + span)
                .collect();
            let b = b_candidates[rng.below(b_candidates.len())];
            let insert = if oracle.len() > 3_000 {
                String::new()
            } else {
                random_text(&mut rng)
            };
            let start = lsp_position(&oracle, a, encoding);
            let end = lsp_position(&oracle, b, encoding);
            oracle.replace_range(a..b, &insert);
            changes.push(json!({"range": {"start": start, "end": end}, "text": insert}));
            sent += 1;
        }
        server.change(&uri, changes).await;
        if sent % CHECK_EVERY < count || sent >= EDITS_PER_SESSION {
            let doc = server.debug_document(&uri).await.expect("open");
            assert_eq!(
                doc["text"].as_str(),
                Some(oracle.as_str()),
                "text diverged after {sent} edits ({encoding}, seed {seed})"
            );
            // The test client keeps its own copy, as an editor does; later edits it applies
            // are only right if that copy is.
            assert_eq!(
                server.text(&uri),
                oracle,
                "the test client's copy diverged after {sent} edits ({encoding}, seed {seed})"
            );
            let fresh = rust.parse(&oracle).expect("parse");
            assert_eq!(
                doc["tree"].as_str(),
                Some(conductor::syntax::dump_tree(&fresh).as_str()),
                "incremental tree differs from a fresh parse after {sent} edits ({encoding}, seed {seed}); text: {oracle:?}"
            );
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_edits_in_every_encoding_match_the_oracle_and_a_fresh_parse() {
    let base: u64 = std::env::var("CONDUCTOR_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de_1234_5678);
    for (i, encoding) in ["utf-8", "utf-16", "utf-32"].into_iter().enumerate() {
        run_session(encoding, base.wrapping_add(i as u64 * 7919) | 1).await;
    }
}
