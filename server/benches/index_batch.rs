//! What a `git checkout` costs the index thread: the 1,500-file generated workspace
//! (`support/workspace.rs`) is indexed, rewritten on disk at a new revision, and the 1,500
//! changes are applied as the index thread applies a `workspace/didChangeWatchedFiles` batch:
//! read and parsed from the current index (`prepare_disk_changes`, on `context.threads`
//! threads), then installed (`install_disk_changes`). Each round is timed with one thread and
//! with every core, alternating, and the index is checked against the revision written.
//!
//! Run: `cargo bench --bench index_batch` (from `server/`); `CONDUCTOR_BENCH_ROUNDS=N` sets the
//! rounds (default 5).

#[path = "support/workspace.rs"]
mod workspace;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use conductor::context::{ContextSettings, WorkspaceIndex};

fn main() -> Result<(), String> {
    let rounds: u32 = std::env::var("CONDUCTOR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let root = dir
        .path()
        .canonicalize()
        .map_err(|e| format!("temp dir: {e}"))?;
    let bytes = workspace::write(&root, 0).map_err(|e| format!("writing the workspace: {e}"))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "workspace: {} files ({:.1} MB); {cores} cores; load average {}",
        workspace::FILES,
        bytes as f64 / 1e6,
        load()
    );
    let changes: Vec<(PathBuf, bool)> = (0..workspace::FILES)
        .map(|n| (root.join(workspace::relative_path(n)), false))
        .collect();
    let mut timings: Vec<(usize, Duration, Duration)> = Vec::new();
    let mut revision = 0;
    for round in 0..rounds * 2 {
        // One thread, then every core, alternating, so both see the same machine.
        let threads = if round % 2 == 0 { 1 } else { 0 };
        let settings = ContextSettings {
            threads,
            ..ContextSettings::default()
        };
        let mut index = WorkspaceIndex::build(&root, &settings).map_err(|e| format!("{e:#}"))?;
        revision += 1;
        workspace::rewrite(&root, revision, None).map_err(|e| format!("rewriting: {e}"))?;
        let started = Instant::now();
        let prepared = index.prepare_disk_changes(&changes);
        let parsed = started.elapsed();
        index.install_disk_changes(prepared);
        let installed = started.elapsed() - parsed;
        // The index really took the checkout.
        let marker = workspace::revision_marker(7, revision);
        let file = index
            .file_id(&workspace::relative_path(7))
            .and_then(|id| index.file(id))
            .ok_or("file 7 is not indexed")?;
        if !file.text.contains(&marker) {
            return Err(format!("the index missed revision {revision} of file 7"));
        }
        timings.push((threads, parsed, installed));
    }
    println!("| threads | rounds | read + parse, median | install, median | total, median |");
    println!("|---|---|---|---|---|");
    for (threads, label) in [(1, "1".to_string()), (0, format!("{cores} (all)"))] {
        let mut parse: Vec<Duration> = timings
            .iter()
            .filter(|t| t.0 == threads)
            .map(|t| t.1)
            .collect();
        let mut install: Vec<Duration> = timings
            .iter()
            .filter(|t| t.0 == threads)
            .map(|t| t.2)
            .collect();
        let mut total: Vec<Duration> = timings
            .iter()
            .filter(|t| t.0 == threads)
            .map(|t| t.1 + t.2)
            .collect();
        println!(
            "| {label} | {} | {} | {} | {} |",
            parse.len(),
            ms(median(&mut parse)),
            ms(median(&mut install)),
            ms(median(&mut total))
        );
    }
    println!("load average at the end: {}", load());
    Ok(())
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}
