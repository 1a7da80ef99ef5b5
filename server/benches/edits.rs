//! Benchmark of edit application: a 50-block reply planned against a 10,000-line file (parse,
//! confinement, base-text hash, staged matching of every block, the new text), and the cost of
//! matching one block against files of 1,000, 10,000 and 100,000 lines (an exact match at the
//! end, which scans the whole file to be sure there is no second one, and a SEARCH that matches
//! nothing, which runs every stage and the "did you mean" search). Prints the figures recorded
//! in docs/performance.md.
//!
//! Run: `cargo bench --bench edits`

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conductor::edits::{TextSource, Workspace, hash, matcher, plan_edits};
use conductor::llm::redact::Redactor;

/// A realistic Rust file of about `lines` lines, every item numbered so that lines are unique
/// where a real file's would be (names), and shared where a real file's are (braces, `Ok(())`).
fn rust_file(lines: usize) -> String {
    let mut out = String::from("//! Generated records for the benchmark.\n\nuse std::fmt;\n\n");
    let mut i = 0usize;
    while out.matches('\n').count() < lines {
        out.push_str(&format!(
            r#"/// Record {i}.
#[derive(Debug, Clone)]
pub struct Record{i} {{
    pub id: u64,
    pub name: String,
}}

impl Record{i} {{
    pub fn new(id: u64, name: &str) -> Result<Self, String> {{
        if name.is_empty() {{
            return Err(format!("record {{id}} of kind {i} has an empty name"));
        }}
        Ok(Self {{ id, name: name.to_string() }})
    }}
}}

impl fmt::Display for Record{i} {{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{
        write!(f, "{{}}#{{}}", self.name, self.id)?;
        Ok(())
    }}
}}

"#
        ));
        i += 1;
    }
    out
}

struct Memory(PathBuf, String);

impl TextSource for Memory {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok((path == self.0).then(|| self.1.as_bytes().to_vec()))
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(f());
        samples.push(start.elapsed());
    }
    median(samples)
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary workspace");
    let workspace = Workspace::new(dir.path()).expect("workspace root");
    let text = rust_file(10_000);
    let lines = text.matches('\n').count();
    let records = text.matches("pub struct Record").count();
    // 50 blocks spread over the file, each a 3-line SEARCH (one unique line with shared ones
    // around it) and a 4-line REPLACE; every fifth block is quoted without its indentation so
    // that the second stage runs too.
    let mut reply = String::new();
    for b in 0..50 {
        let k = b * records / 50;
        let (search, replace) = (
            format!(
                "        if name.is_empty() {{\n            return Err(format!(\"record {{id}} of kind {k} has an empty name\"));\n        }}\n"
            ),
            format!(
                "        if name.trim().is_empty() {{\n            // Blank names are as bad as empty ones.\n            return Err(format!(\"record {{id}} of kind {k} has a blank name\"));\n        }}\n"
            ),
        );
        let (search, replace) = if b % 5 == 4 {
            let dedent = |s: &str| {
                s.lines()
                    .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
                    .collect::<String>()
            };
            (dedent(&search), dedent(&replace))
        } else {
            (search, replace)
        };
        reply.push_str(&format!(
            "Block {b}.\n\nsrc/records.rs\n```rust\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n\n"
        ));
    }
    let source = Memory(workspace.root().join("src/records.rs"), text.clone());
    let redactor = Redactor::new();
    let check = plan_edits(&workspace, &reply, &source, &redactor).expect("the reply parses");
    assert!(
        check.all_applied(),
        "every block applies: {:?}",
        check.blocks.iter().find(|b| b.reason().is_some())
    );
    let plan = time(31, || plan_edits(&workspace, &reply, &source, &redactor));
    println!(
        "plan a 50-block reply on a {lines}-line file: {:.2} ms (median of 31; target <= 5 ms)",
        plan.as_secs_f64() * 1e3
    );
    let hashing = time(31, || hash(text.as_bytes()));
    println!(
        "  of which the base-text hash (SHA-256 of {} KiB): {:.2} ms",
        text.len() / 1024,
        hashing.as_secs_f64() * 1e3
    );

    println!("matching one block (median of 11 runs):");
    println!("  lines     exact match at the end      not found (all stages + nearest)");
    for size in [1_000, 10_000, 100_000] {
        let text = rust_file(size);
        let file: Vec<&str> = text.lines().collect();
        let last = text.matches("pub struct Record").count() - 1;
        let search = [
            "        if name.is_empty() {".to_string(),
            format!(
                "            return Err(format!(\"record {{id}} of kind {last} has an empty name\"));"
            ),
            "        }".to_string(),
        ];
        let search: Vec<&str> = search.iter().map(String::as_str).collect();
        let missing = [
            "        if name.len() > 64 {",
            "            return Err(\"too long\".into());",
            "        }",
        ];
        let replace = ["        // replaced"];
        assert!(matcher::find(&file, &search, &replace).is_ok());
        assert!(matcher::find(&file, &missing, &replace).is_err());
        let found = time(11, || matcher::find(&file, &search, &replace));
        let miss = time(11, || matcher::find(&file, &missing, &replace));
        println!(
            "  {:>7}   {:>8.3} ms ({:>5.1} ns/line)   {:>8.3} ms ({:>5.1} ns/line)",
            file.len(),
            found.as_secs_f64() * 1e3,
            found.as_nanos() as f64 / file.len() as f64,
            miss.as_secs_f64() * 1e3,
            miss.as_nanos() as f64 / file.len() as f64,
        );
    }
}
