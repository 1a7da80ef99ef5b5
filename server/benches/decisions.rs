//! Benchmark of decisions in the editor (issue 14): a workspace whose journal holds 1,000 runs,
//! 100 of whose decisions sit in one 10,000-line file. Measures the path `lsp/decisions.rs`
//! takes per request, without the JSON-RPC framing: the index refreshed (nothing changed, so
//! one `stat` of the runs folder plus one per unfinished run), the document's decisions placed
//! by their marks, and the hover's markdown (or the file's lenses) rendered; the anchor
//! adjustment of one keystroke with 500 marks in the file (alone, and with the rope edit of the
//! document it rides on); and the first read of the 1,000 journals. Prints the figures recorded
//! in docs/performance.md.
//!
//! Run: `cargo bench --bench decisions`

use std::time::{Duration, Instant};

use conductor::decisions::Index;
use conductor::decisions::render::{self, Located};
use conductor::document::position::LineCol;
use conductor::document::{Documents, Marks, PositionEncoding, TextChange};
use conductor::editor::text_hash;
use conductor::journal::{Event, Journal, RunState, UsageTotals};

const RUNS: usize = 1_000;
const IN_FILE: usize = 100;

/// A 10,000-line file of numbered functions, each a decision's text candidate.
fn file() -> (String, Vec<(usize, String)>) {
    let mut text = String::new();
    let mut items = Vec::new();
    let mut i = 0;
    while text.matches('\n').count() < 10_000 {
        let item = format!(
            "pub fn handler_{i}(input: &str) -> Result<u64, String> {{\n    let n = input.trim().parse::<u64>().map_err(|e| e.to_string())?;\n    Ok(n * {i})\n}}\n\n"
        );
        let line = text.matches('\n').count() + 1;
        items.push((line, item[..item.len() - 1].to_string()));
        text.push_str(&item);
        i += 1;
    }
    (text, items)
}

fn journal_run(root: &std::path::Path, n: usize, file: &str, anchor: Option<(usize, &str, &str)>) {
    let id = format!("20261201-{:06}-{n:06x}", n);
    let j = Journal::create(root, &id).expect("journal");
    j.record(Event::RunStarted {
        run_id: id.clone(),
        kind: "goal".into(),
        goal: format!("goal {n}"),
        selection: None,
        config_digest: "d".into(),
        workspace: root.display().to_string(),
    });
    j.record(Event::Decision {
        step: "s1".into(),
        block: 1,
        file: file.into(),
        agent: "coder".into(),
        model: "m".into(),
        summary: format!("decision of run {n}"),
        rationale: "because the benchmark says so".into(),
        alternatives: vec!["another way".into()],
        tradeoffs: vec!["speed for clarity".into()],
    });
    let (line, written, file_hash) = anchor.unwrap_or((1, "fn x() {}\n", "none"));
    j.record(Event::Anchored {
        hunk: 1,
        file: file.into(),
        lines: [line, line + written.matches('\n').count().saturating_sub(1)],
        hash: text_hash(written.as_bytes()),
        written: written.into(),
        original: String::new(),
        file_hash: file_hash.into(),
        context_before: String::new(),
        context_after: String::new(),
        step: Some("s1".into()),
        block: Some(1),
        summary: format!("decision of run {n}"),
    });
    j.record(Event::Outcome {
        state: RunState::Done,
        message: "done".into(),
        files: vec![file.into()],
        usage: UsageTotals {
            prompt_tokens: 1000,
            completion_tokens: 100,
            cost_usd: 0.01,
        },
    });
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, samples: &mut [Duration]) {
    let p50 = percentile(samples, 0.50);
    let p95 = percentile(samples, 0.95);
    let max = *samples.iter().max().expect("samples");
    println!(
        "{name}: p50 {:.3} ms · p95 {:.3} ms · max {:.3} ms ({} samples)",
        p50.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        samples.len()
    );
}

/// What the LSP layer does per request once the document's decisions are marked: a snapshot,
/// and each decision of the file placed by its mark.
fn place<'a>(
    index: &'a Index,
    docs: &Documents,
    uri: &str,
) -> (conductor::document::Snapshot, Vec<Located<'a>>) {
    let snapshot = docs.snapshot(uri).expect("snapshot");
    let placed: Vec<Located<'a>> = index
        .in_file("src/big.rs")
        .into_iter()
        .filter_map(|d| {
            let mark = snapshot.marks.get(d.key)?;
            Some(Located {
                decision: d,
                line: snapshot.text.byte_to_line(mark.start) + 1,
                range: mark.range(),
                touched: mark.touched,
            })
        })
        .collect();
    (snapshot, placed)
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("root");
    let (text, items) = file();
    let hash = text_hash(text.as_bytes());
    let step = items.len() / IN_FILE;
    for n in 0..RUNS {
        if n < IN_FILE {
            let (line, written) = &items[n * step];
            journal_run(&root, n, "src/big.rs", Some((*line, written, &hash)));
        } else {
            journal_run(&root, n, &format!("src/other_{}.rs", n % 97), None);
        }
    }

    // The first read of every journal (at start-up, off the handlers).
    let started = Instant::now();
    let mut index = Index::new(&root);
    index.refresh();
    let cold = started.elapsed();
    assert_eq!(index.len(), RUNS);
    println!(
        "first read of {RUNS} journals: {:.1} ms",
        cold.as_secs_f64() * 1e3
    );

    // The open document, its decisions marked (what the first request does once).
    let uri = "file:///bench/src/big.rs";
    let mut docs = Documents::default();
    docs.open(uri, None, "rust", 1, &text);
    let in_file = index.in_file("src/big.rs");
    assert_eq!(in_file.len(), IN_FILE);
    let marks: Vec<(u64, std::ops::Range<usize>)> = in_file
        .iter()
        .map(|d| {
            (
                d.key,
                conductor::decisions::locate(d, &text, &hash).expect("located"),
            )
        })
        .collect();
    let revision = docs.snapshot(uri).expect("open").revision;
    assert!(docs.set_marks(uri, revision, &marks, &[]));

    // Per request: refresh, snapshot, place by marks, find the decision under the cursor,
    // render.
    let mut hovers = Vec::new();
    for i in 0..2_000 {
        let started = Instant::now();
        index.refresh();
        let (snapshot, placed) = place(&index, &docs, uri);
        let target = items[(i % IN_FILE) * step].0 + 1;
        let shown: Vec<String> = placed
            .iter()
            .filter(|at| {
                let last = snapshot.text.byte_to_line(at.range.end - 1) + 1;
                at.line <= target && target <= last
            })
            .map(|at| render::hover(&index, at))
            .collect();
        hovers.push(started.elapsed());
        assert_eq!(shown.len(), 1, "one decision under the cursor");
    }
    report(
        &format!("hover on a decision ({RUNS} runs journalled)"),
        &mut hovers,
    );

    let mut lenses = Vec::new();
    for _ in 0..1_000 {
        let started = Instant::now();
        index.refresh();
        let (_, placed) = place(&index, &docs, uri);
        let shown = render::lenses(&index, &placed);
        lenses.push(started.elapsed());
        assert!(shown.len() >= IN_FILE);
    }
    report(
        &format!("code lenses of a file with {IN_FILE} decisions"),
        &mut lenses,
    );

    // One keystroke with 500 marks in the file: the marks alone, then the document's edit
    // with and without them.
    let mut many = Marks::default();
    let lines: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
    for k in 0..500u64 {
        let at = lines[(k as usize * 19) % lines.len()];
        many.set(k, at..at + 40);
    }
    let mut adjust = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = (seed % text.len() as u64) as usize;
        let started = Instant::now();
        many.edit(at..at, 1);
        adjust.push(started.elapsed());
    }
    report("anchor adjustment per keystroke, 500 marks", &mut adjust);

    let marks500: Vec<(u64, std::ops::Range<usize>)> = (0..500u64)
        .map(|k| {
            let at = lines[(k as usize * 19) % lines.len()];
            (1000 + k, at..at + 40)
        })
        .collect();
    for (label, with_marks) in [("without marks", false), ("with 500 marks", true)] {
        let mut docs = Documents::default();
        docs.open(uri, None, "rust", 1, &text);
        if with_marks {
            let revision = docs.snapshot(uri).expect("open").revision;
            assert!(docs.set_marks(uri, revision, &marks500, &[]));
        }
        let mut times = Vec::new();
        for v in 0..5_000 {
            let line = (v * 7 % 9_000) as u32;
            let change = TextChange {
                range: Some((LineCol::new(line, 0), LineCol::new(line, 0))),
                text: "x".into(),
            };
            let started = Instant::now();
            docs.change(uri, 2 + v, &[change], PositionEncoding::Utf16);
            times.push(started.elapsed());
        }
        report(&format!("didChange of one character, {label}"), &mut times);
    }
}
