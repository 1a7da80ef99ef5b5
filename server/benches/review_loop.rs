//! Benchmark of the tester's two costs (issue 13): preparing the scratch copy of a 1,000-file
//! workspace (cold: an empty copy; warm: a copy that already holds it), and re-running the tests
//! after a one-line change in a leaf crate with a warm target cache, next to cargo's own
//! incremental build-and-test of the same change in a plain copy with its own warm target.
//!
//! To say where a difference comes from, it also prints the sandbox's own start-up (the same
//! wrapping around `true`) and the crates cargo compiled in the tester's last run (only the
//! changed leaf crate when the copy and the environment keep cargo's fingerprints).
//!
//! Run: `cargo bench --bench review_loop`

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use conductor::tester::sandbox::{self, Writable};
use conductor::tester::{self, Change, TestRequest, TesterSettings, scratch};

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// 1,000 files of about 2 KB in 10 folders.
fn big_workspace(root: &Path) {
    for i in 0..1000 {
        let body: String = (0..40)
            .map(|l| format!("pub fn item_{i}_{l}() -> usize {{ {l} + {i} }}\n"))
            .collect();
        write(&root.join(format!("crate{}/src/file{i}.rs", i % 10)), &body);
    }
}

/// A workspace of two crates: `core`, and `leaf` that depends on it, each with tests.
fn two_crates(root: &Path) {
    write(
        &root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"core\", \"leaf\"]\nresolver = \"2\"\n",
    );
    write(
        &root.join("core/Cargo.toml"),
        "[package]\nname = \"core_lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    let mut core = String::new();
    for i in 0..200 {
        core.push_str(&format!(
            "pub fn f{i}(x: u64) -> u64 {{ x.wrapping_mul({i}) ^ {i} }}\n"
        ));
    }
    core.push_str(
        "#[cfg(test)]\nmod tests {\n    #[test]\n    fn f1() { assert_eq!(super::f1(2), 3); }\n}\n",
    );
    write(&root.join("core/src/lib.rs"), &core);
    write(
        &root.join("leaf/Cargo.toml"),
        "[package]\nname = \"leaf\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ncore_lib = { path = \"../core\" }\n",
    );
    write(&root.join("leaf/src/lib.rs"), &leaf(0));
}

fn leaf(n: u64) -> String {
    format!(
        "pub fn value() -> u64 {{ core_lib::f1(2) + {n} }}\n\n#[cfg(test)]\nmod tests {{\n    #[test]\n    fn value_is_at_least_3() {{ assert!(super::value() >= 3); }}\n}}\n"
    )
}

fn cargo_test(dir: &Path, target: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new("cargo")
        .args(["test", "--no-fail-fast", "-p", "leaf", "-q"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_TERM_COLOR", "never")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo test in {}", dir.display());
    started.elapsed()
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("big");
    big_workspace(&root);
    let work = dir.path().join("copy");
    let started = Instant::now();
    let files = scratch::workspace_files(&root);
    let listed = started.elapsed();
    let cold = scratch::sync(&root, &files, &BTreeMap::new(), &work).expect("sync");
    let cold_time = started.elapsed();
    assert_eq!(cold.files, 1000);
    let started = Instant::now();
    let mut changes = BTreeMap::new();
    changes.insert(
        "crate3/src/file3.rs".to_string(),
        "pub fn changed() {}\n".to_string(),
    );
    let warm =
        scratch::sync(&root, &scratch::workspace_files(&root), &changes, &work).expect("sync");
    let warm_time = started.elapsed();
    println!(
        "scratch copy, 1,000 files (~2 KB each): cold {:.1} ms (listing {:.1} ms, {} written), warm with a one-file change {:.1} ms ({} written)",
        ms(cold_time),
        ms(listed),
        cold.written,
        ms(warm_time),
        warm.written
    );

    // The warm-cache rerun after a one-line change in the leaf crate.
    let ws = dir.path().join("ws");
    two_crates(&ws);
    let plain = dir.path().join("plain");
    two_crates(&plain);
    let plain_target = dir.path().join("plain-target");
    let settings = TesterSettings::default();
    let cancel = AtomicBool::new(false);
    let request = TestRequest {
        root: &ws,
        settings: &settings,
        secret_env: &[],
        cancel: &cancel,
    };
    let change = |n: u64| Change {
        path: "leaf/src/lib.rs".into(),
        before: Some(leaf(0)),
        after: leaf(n),
    };
    // Warm both caches: the tester's baseline and first change, cargo's first build.
    let first = tester::run(&request, &[change(1)]);
    assert_eq!(first.status, tester::TestStatus::Passed, "{first:?}");
    cargo_test(&plain, &plain_target);
    write(&plain.join("leaf/src/lib.rs"), &leaf(1));
    cargo_test(&plain, &plain_target);
    // Measured: three more one-line changes each, alternating, so that the machine's load
    // falls on both alike.
    let mut tester_times = Vec::new();
    let mut command_times = Vec::new();
    let mut cargo_times = Vec::new();
    let mut sandbox = String::new();
    let mut compiled = Vec::new();
    for n in 2..5 {
        let started = Instant::now();
        let report = tester::run(&request, &[change(n)]);
        tester_times.push(ms(started.elapsed()));
        assert_eq!(report.status, tester::TestStatus::Passed, "{report:?}");
        assert!(report.baseline_cached);
        command_times.push(report.elapsed_ms as f64);
        sandbox = report.sandbox;
        compiled = report
            .excerpt
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Compiling "))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect();
        write(&plain.join("leaf/src/lib.rs"), &leaf(n));
        cargo_times.push(ms(cargo_test(&plain, &plain_target)));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (tester_time, command_time, cargo_time) = (
        median(&mut tester_times.clone()),
        median(&mut command_times.clone()),
        median(&mut cargo_times.clone()),
    );
    println!(
        "warm rerun after a one-line change in the leaf crate (median of 3): tester {tester_time:.0} ms (sandbox {sandbox}, the command itself {command_time:.0} ms) vs cargo test -p leaf alone {cargo_time:.0} ms: overhead {:+.0} ms; samples tester {tester_times:.0?}, cargo {cargo_times:.0?}",
        tester_time - cargo_time
    );
    // The sandbox alone: the same wrapping, the same folders, around `true`.
    let isolation = sandbox::available();
    let writable = Writable {
        work: dir.path().join("sandbox-work"),
        target: dir.path().join("sandbox-target"),
        tmp: dir.path().join("sandbox-tmp"),
    };
    for d in [&writable.work, &writable.target, &writable.tmp] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let argv = sandbox::wrap(isolation, &writable, &["true".to_string()]);
    let path = vec![(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_default(),
    )];
    let mut startup: Vec<f64> = (0..5)
        .map(|_| {
            let run = sandbox::execute(
                &argv,
                &writable.work,
                &path,
                Duration::from_secs(30),
                1 << 16,
                &AtomicBool::new(false),
            );
            assert_eq!(run.exit_code, Some(0), "{run:?}");
            ms(run.elapsed)
        })
        .collect();
    println!(
        "sandbox start-up alone ({}, around `true`, median of 5): {:.0} ms; crates cargo compiled in the tester's last run: {compiled:?}",
        isolation.as_str(),
        median(&mut startup)
    );
}
