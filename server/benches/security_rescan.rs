//! Keystroke re-scan benchmark: a 10,000-line Rust file is edited one character at a time; each
//! keystroke re-parses incrementally and re-scans with the per-document [`ScanCache`], as live
//! diagnostics do (only the changed item is scanned again). Also prints a full scan for
//! reference. Prints the median and 95th percentile. Run with
//! `cargo bench --bench security_rescan`. With `CONDUCTOR_BENCH_KEYS_ONLY=1` only the
//! keystrokes run, and `CONDUCTOR_BENCH_ROUNDS=N` types the text N times instead of 4 (for
//! an instruction count of the keystroke path under callgrind: the difference between two
//! round counts is the keystrokes' alone).

use std::time::{Duration, Instant};

use conductor::security::{ScanCache, SecuritySettings, scan};
use conductor::syntax::Language;
use tree_sitter::{InputEdit, Point};

/// One module's worth of realistic code: handlers, SQL, crypto, unsafe, helpers.
const BLOCK: &str = r#"
/// Looks a product up by name.
pub async fn product_NN(State(pool): State<PgPool>, Query(q): Query<Search>) -> String {
    let limit = q.limit.unwrap_or(20).min(100) as i64;
    let rows = sqlx::query("SELECT id, name FROM products WHERE name ILIKE $1 LIMIT $2")
        .bind(format!("%{}%", q.name))
        .bind(limit)
        .fetch_all(&pool)
        .await;
    match rows {
        Ok(rows) => format!("{} products", rows.len()),
        Err(err) => {
            tracing::warn!("query failed: {err:?}");
            String::from("error")
        }
    }
}

pub struct RecordsNN {
    data: Vec<u8>,
    width: usize,
}

impl RecordsNN {
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let start = index.checked_mul(self.width)?;
        let end = start.checked_add(self.width)?;
        if end > self.data.len() {
            return None;
        }
        // SAFETY: start..end was checked against the buffer's length above.
        Some(unsafe { self.data.get_unchecked(start..end) })
    }

    pub fn checksum(&self) -> u64 {
        let mut sum = 0u64;
        for (i, b) in self.data.iter().enumerate() {
            sum = sum.wrapping_mul(31).wrapping_add(*b as u64 + i as u64);
        }
        sum
    }
}

fn helper_NN(values: &[i64]) -> i64 {
    values.iter().copied().filter(|v| *v > 0).sum()
}
"#;

fn main() {
    let language = Language::by_name("rust").expect("rust registered");
    let mut text = String::new();
    let mut n = 0;
    while text.lines().count() < 10_000 {
        text.push_str(&BLOCK.replace("NN", &n.to_string()));
        n += 1;
    }
    let lines = text.lines().count();
    let settings = SecuritySettings::default();
    let mut parser = language.parser();
    let mut tree = parser.parse(&text, None).expect("a tree");

    let keys_only = std::env::var_os("CONDUCTOR_BENCH_KEYS_ONLY").is_some();
    // A full scan, for reference.
    let mut full = Vec::new();
    for _ in 0..if keys_only { 0 } else { 20 } {
        let start = Instant::now();
        let findings = scan(language, &text, &tree, &settings);
        full.push(start.elapsed());
        std::hint::black_box(findings);
    }

    // Keystrokes: type a comment character by character into a function in the middle.
    let anchor = text
        .find(&format!("fn helper_{}", n / 2))
        .expect("a middle function");
    let mut at = text[anchor..].find('{').expect("a body") + anchor + 1;
    let typed = " let total = values.len() as i64 + helper_0(values); ";
    let mut cache = ScanCache::default();
    let warm = cache.scan(language, &text, &tree, &settings);
    std::hint::black_box(warm);
    let mut per_key = Vec::new();
    let mut per_parse = Vec::new();
    let mut per_scan = Vec::new();
    let rounds: usize = std::env::var("CONDUCTOR_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4);
    for _round in 0..rounds {
        for ch in typed.chars() {
            let start = Instant::now();
            let point = point_of(&text, at);
            text.insert(at, ch);
            let edit = InputEdit {
                start_byte: at,
                old_end_byte: at,
                new_end_byte: at + ch.len_utf8(),
                start_position: point,
                old_end_position: point,
                new_end_position: Point {
                    row: point.row,
                    column: point.column + ch.len_utf8(),
                },
            };
            tree.edit(&edit);
            tree = parser.parse(&text, Some(&tree)).expect("a tree");
            let parsed = Instant::now();
            let findings = cache.scan(language, &text, &tree, &settings);
            let done = Instant::now();
            per_key.push(done - start);
            per_parse.push(parsed - start);
            per_scan.push(done - parsed);
            std::hint::black_box(findings);
            at += ch.len_utf8();
        }
    }
    println!(
        "security re-scan benchmark: {lines} lines, {} bytes",
        text.len()
    );
    if !keys_only {
        report("full scan", &mut full);
    }
    report("keystroke (incremental parse + cached scan)", &mut per_key);
    report("  of which the edit and incremental parse", &mut per_parse);
    report("  of which the cached scan", &mut per_scan);
    if !keys_only {
        long_line(language, &settings);
    }
}

/// One line of 1,800 small functions (the hostile-input case of `tests/it/hostile.rs`): the
/// live scan's first pass over it (an empty [`ScanCache`]) against a plain scan. The live scan
/// once walked every top-level item once per item, so this grew with the square of the items.
fn long_line(language: &'static Language, settings: &SecuritySettings) {
    let text: String = (0..1_800)
        .map(|i| format!("fn f{i}(y: String){{let q=format!(\"SELECT * FROM t WHERE x={{}}\",y);db.execute(&q);}}"))
        .collect();
    let mut parser = language.parser();
    let tree = parser.parse(&text, None).expect("a tree");
    let mut plain = Vec::new();
    let mut live = Vec::new();
    let mut counts = (0, 0);
    for _ in 0..3 {
        let start = Instant::now();
        counts.0 = scan(language, &text, &tree, settings).len();
        plain.push(start.elapsed());
        let start = Instant::now();
        counts.1 = ScanCache::default()
            .scan(language, &text, &tree, settings)
            .len();
        live.push(start.elapsed());
    }
    assert_eq!(
        counts.0, counts.1,
        "the live scan finds what the plain scan finds"
    );
    println!(
        "one line of 1,800 functions, {} bytes, {} findings",
        text.len(),
        counts.0
    );
    report("long line: plain scan", &mut plain);
    report("long line: live scan, empty cache", &mut live);
}

fn point_of(text: &str, byte: usize) -> Point {
    let before = &text[..byte];
    let row = before.matches('\n').count();
    let column = byte - before.rfind('\n').map_or(0, |i| i + 1);
    Point { row, column }
}

fn report(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p95 = samples[(samples.len() * 95 / 100).min(samples.len() - 1)];
    println!(
        "{name}: median {:.2} ms, p95 {:.2} ms ({} samples)",
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        samples.len()
    );
}
