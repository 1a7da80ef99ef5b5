//! Benchmark of the context engine: cold index of a ~800-file / ~180k-line workspace, re-index
//! of one changed file, the index's memory, and bundle latency.
//!
//! The corpus is `CONDUCTOR_BENCH_CORPUS` if set; otherwise it is assembled once under
//! `target/context-bench-corpus/` by copying crate sources from Cargo's registry cache
//! (`$CARGO_HOME/registry/src/*/`): the `tokio*` crates first, then other crates in name order,
//! until it holds at least 800 `.rs` files and 180,000 lines, under a virtual workspace
//! `Cargo.toml`. Run with `cargo bench --bench context_index`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conductor::context::tokens::Tokenizer;
use conductor::context::{BundleRequest, ContextSettings, WorkspaceIndex, build_bundle};

/// Where bundles are asked for: a file and a byte offset in it.
type Targets = Vec<(PathBuf, usize)>;

const MIN_FILES: usize = 800;
const MIN_LINES: usize = 180_000;

fn main() -> anyhow::Result<()> {
    let corpus = match std::env::var_os("CONDUCTOR_BENCH_CORPUS") {
        Some(path) => PathBuf::from(path),
        None => assemble_corpus()?,
    };
    let settings = ContextSettings::default();
    let rss_before = rss_kib("VmRSS");

    // Cold index: the first build also warms the page cache; report every run.
    // The machine may be shared: the load average and the CPU time spent say how much the wall
    // times were stretched by other work.
    println!(
        "load average at start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let mut cold = Vec::new();
    let mut index = None;
    let cpu_before = cpu_seconds();
    for _ in 0..5 {
        drop(index.take());
        let start = Instant::now();
        let built = WorkspaceIndex::build(&corpus, &settings)?;
        cold.push(start.elapsed());
        index = Some(built);
    }
    let cold_cpu = (cpu_seconds() - cpu_before) / 5.0;
    let mut index = index.ok_or_else(|| anyhow::anyhow!("no index built"))?;
    let rss_after = rss_kib("VmRSS");
    println!(
        "corpus: {} ({} files, {} lines, {} skipped)",
        corpus.display(),
        index.file_count(),
        index.line_count(),
        index.notes().1
    );
    cold.sort();
    println!(
        "cold index ({} threads): min {:.0} ms, median {:.0} ms, max {:.0} ms",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        ms(cold[0]),
        ms(cold[cold.len() / 2]),
        ms(cold[cold.len() - 1])
    );
    println!(
        "cold index CPU time (all threads, mean of 5): {:.0} ms",
        cold_cpu * 1000.0
    );
    println!(
        "index memory: RSS {:.1} MiB after building (process RSS before: {:.1} MiB, delta {:.1} MiB)",
        rss_after as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0
    );

    // Re-index of one changed file (an edit inside a function body, 50 times): the largest file
    // under 40 KB and a file of median size, from text (parse + tags), and from text with the
    // tree the editor's document already holds (tags only; the LSP path).
    let mut by_size: Vec<(PathBuf, String)> = index
        .files()
        .filter(|(_, f)| f.text.len() < 40_000 && f.text.contains("fn "))
        .map(|(_, f)| (f.path.clone(), f.text.to_string()))
        .collect();
    by_size.sort_by_key(|(_, t)| t.len());
    let median = by_size[by_size.len() / 2].clone();
    let largest = by_size[by_size.len() - 1].clone();
    let rust = conductor::syntax::Language::by_name("rust")
        .ok_or_else(|| anyhow::anyhow!("rust not registered"))?;
    for (label, (path, text)) in [("median", &median), ("largest", &largest)] {
        let at = text.find("fn ").unwrap_or(0);
        let at = text[at..].find('{').map_or(at, |b| at + b + 1);
        for with_tree in [false, true] {
            let mut times = Vec::new();
            for i in 0..50 {
                let edited = format!("{}let _bench_{i} = {i};{}", &text[..at], &text[at..]);
                let tree = if with_tree { rust.parse(&edited) } else { None };
                let start = Instant::now();
                index.update_file_parsed(path, &edited, tree.as_ref())?;
                times.push(start.elapsed());
            }
            times.sort();
            println!(
                "re-index of the {label} file {} ({} bytes){}: p50 {:.2} ms, p95 {:.2} ms",
                path.display(),
                text.len(),
                if with_tree {
                    " given its syntax tree"
                } else {
                    ""
                },
                ms(times[times.len() / 2]),
                ms(times[times.len() * 95 / 100])
            );
        }
    }

    // Bundle latency for the cursor in 200 functions spread over the corpus, then for the
    // cursor in 200 other functions with the text and syntax tree an open editor document
    // holds (the LSP path: `conductor.showContext` hands over the document's tree).
    let (targets, editor_targets): (Targets, Targets) = {
        let mut all = Vec::new();
        for (_, file) in index.files() {
            for def in &file.tags.definitions {
                if def.kind.is_function() && def.end_line > def.start_line + 2 {
                    all.push((file.path.clone(), def.range.start + 3));
                }
            }
        }
        let step = (all.len() / 200).max(1);
        let editor = all
            .iter()
            .skip(step / 2)
            .step_by(step)
            .take(200)
            .cloned()
            .collect();
        (all.into_iter().step_by(step).take(200).collect(), editor)
    };
    println!(
        "load average before bundles: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let first = Instant::now();
    let warm = BundleRequest {
        file: targets[0].0.clone(),
        range: targets[0].1..targets[0].1,
        ..Default::default()
    };
    build_bundle(&index, &warm)?;
    println!(
        "first bundle (loads the BPE ranks, builds the file graph): {:.0} ms",
        ms(first.elapsed())
    );
    for editor in [false, true] {
        let mut latencies = Vec::new();
        // The CPU time this thread spent on each bundle, which other processes' load does not
        // stretch as it does the wall time (0 where the kernel does not report it).
        let mut cpu = Vec::new();
        let mut items = 0usize;
        let mut tokens = 0usize;
        for (file, offset) in if editor { &editor_targets } else { &targets } {
            let mut request = BundleRequest {
                file: file.clone(),
                range: *offset..*offset,
                ..Default::default()
            };
            if editor {
                let text = index
                    .file_id(file)
                    .and_then(|id| index.file(id))
                    .map(|f| f.text.to_string())
                    .unwrap_or_default();
                request.tree = rust.parse(&text);
                request.text = Some(text);
            }
            let cpu_start = thread_cpu_ns();
            let start = Instant::now();
            let bundle = build_bundle(&index, &request)?;
            latencies.push(start.elapsed());
            cpu.push(thread_cpu_ns().saturating_sub(cpu_start) as f64 / 1e6);
            items += bundle.items.len();
            tokens += bundle.total_tokens;
        }
        latencies.sort();
        cpu.sort_by(f64::total_cmp);
        println!(
            "bundle ({} selections{}, budget {}): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms; CPU time p50 {:.1} ms, p95 {:.1} ms, mean {:.1} ms; mean {:.1} items, {:.0} tokens",
            latencies.len(),
            if editor {
                ", given the editor's text and syntax tree"
            } else {
                ""
            },
            settings.budget,
            ms(latencies[latencies.len() / 2]),
            ms(latencies[latencies.len() * 95 / 100]),
            ms(latencies[latencies.len() - 1]),
            cpu[cpu.len() / 2],
            cpu[cpu.len() * 95 / 100],
            cpu.iter().sum::<f64>() / cpu.len() as f64,
            items as f64 / latencies.len() as f64,
            tokens as f64 / latencies.len() as f64
        );
    }
    // How far the bytes/4 estimate (for models without a bundled tokenizer) is from o200k.
    let (mut bpe, mut estimate) = (0usize, 0usize);
    for (_, file) in index.files() {
        bpe += Tokenizer::O200k.count(&file.text);
        estimate += Tokenizer::Estimate.count(&file.text);
    }
    println!(
        "tokens of the whole corpus: o200k {bpe}, bytes/4 estimate {estimate} ({:+.1}%)",
        100.0 * (estimate as f64 - bpe as f64) / bpe.max(1) as f64
    );
    println!(
        "peak RSS of the whole run (VmHWM): {:.1} MiB",
        rss_kib("VmHWM") as f64 / 1024.0
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The time the calling thread has spent on a CPU so far, in nanoseconds, from
/// `/proc/thread-self/schedstat` (0 where unavailable).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// User + system CPU time of this process so far, in seconds (0 where unavailable).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // Linux reports in clock ticks of 1/100 s on every common configuration.
    ticks / 100.0
}

/// A field of /proc/self/status in KiB (0 where unavailable).
fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn assemble_corpus() -> anyhow::Result<PathBuf> {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/context-bench-corpus");
    let done = target.join(".complete");
    if done.exists() {
        return Ok(target);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or_else(|| anyhow::anyhow!("neither CARGO_HOME nor HOME is set"))?;
    let mut crates: Vec<PathBuf> = Vec::new();
    let registry_src = cargo_home.join("registry/src");
    let registries = std::fs::read_dir(&registry_src).map_err(|e| {
        anyhow::anyhow!(
            "reading Cargo's registry cache at {}: {e}; build the workspace once (so Cargo \
             unpacks its dependencies there) or set CONDUCTOR_BENCH_CORPUS to a folder of Rust code",
            registry_src.display()
        )
    })?;
    for registry in registries {
        for krate in std::fs::read_dir(registry?.path())? {
            crates.push(krate?.path());
        }
    }
    crates.sort_by_key(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (!name.starts_with("tokio"), name)
    });
    let _ = std::fs::remove_dir_all(&target);
    std::fs::create_dir_all(&target)?;
    let (mut files, mut lines) = (0usize, 0usize);
    let mut members = Vec::new();
    for krate in crates {
        if files >= MIN_FILES && lines >= MIN_LINES {
            break;
        }
        let Some(name) = krate.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let (f, l) = copy_rust_sources(&krate, &target.join(&name))?;
        files += f;
        lines += l;
        members.push(format!("\"{name}\""));
    }
    std::fs::write(
        target.join("Cargo.toml"),
        format!("[workspace]\nmembers = [{}]\n", members.join(", ")),
    )?;
    std::fs::write(&done, "")?;
    println!(
        "assembled corpus: {files} files, {lines} lines in {}",
        target.display()
    );
    Ok(target)
}

/// Copies `Cargo.toml` and every `.rs` file of a crate; returns (files, lines) copied.
fn copy_rust_sources(from: &Path, to: &Path) -> anyhow::Result<(usize, usize)> {
    let (mut files, mut lines) = (0, 0);
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        if path.is_dir() {
            let (f, l) = copy_rust_sources(&path, &to.join(&name))?;
            files += f;
            lines += l;
        } else if path.extension().is_some_and(|e| e == "rs") || name == "Cargo.toml" {
            std::fs::create_dir_all(to)?;
            let text = std::fs::read(&path)?;
            if path.extension().is_some_and(|e| e == "rs") {
                files += 1;
                lines += text.iter().filter(|&&b| b == b'\n').count();
            }
            std::fs::write(to.join(&name), text)?;
        }
    }
    Ok((files, lines))
}
