//! The tester agent (deterministic, no model): runs the configured test command on a proposed
//! change in a sandboxed scratch copy of the workspace and reports what the change did to the
//! tests.
//!
//! **Invariants:** the command comes from configuration only (`[tester] command`, or the
//! default `cargo test` for the packages that own the changed files) — nothing a model wrote is
//! ever run; the user's tree is never written (the copy lives under the system's temporary
//! folder; only the target cache, `.conductor/target`, is shared with the user's tree, and it
//! is Conductor's own folder).
//!
//! The steps: copy ([`scratch`]); a baseline run on the unchanged workspace, cached by the
//! content hash of its tree, so a test that already failed is not blamed on the change; the
//! run with the change; one rerun of the tests that newly failed, to tell a flaky test from a
//! broken one; a check that the change did not delete or weaken tests; and the output, which
//! is untrusted, sanitised and filtered ([`libtest`]) before any of it is shown to the coder.

pub mod baseline;
pub mod libtest;
pub mod sandbox;
pub mod scratch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use libtest::{Location, TestFailure};
use sandbox::{Executed, Isolation, Writable};

/// `[tester] sandbox`: what to do when no sandbox is available.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Sandbox when possible; otherwise run unsandboxed and say so in the result.
    #[default]
    Auto,
    /// Refuse to run the tests without a sandbox.
    Required,
    /// Never sandbox.
    Off,
}

/// `[tester]`: how a run's change is tested.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct TesterSettings {
    /// Whether runs test their change at all.
    pub enabled: bool,
    /// The test command, as argv; empty: `cargo test --no-fail-fast -p <pkg>…` for the
    /// packages that own the changed files, when the workspace is a Cargo workspace.
    pub command: Vec<String>,
    /// The most one test command may take, in seconds; then its whole process group is killed.
    pub timeout_secs: u64,
    /// The most output kept per run, in bytes (head and tail).
    pub max_output_bytes: usize,
    /// `auto`, `required` or `off`.
    pub sandbox: SandboxMode,
}

impl Default for TesterSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            command: Vec::new(),
            timeout_secs: 600,
            max_output_bytes: 1024 * 1024,
            sandbox: SandboxMode::Auto,
        }
    }
}

/// A file of the change under test.
#[derive(Debug, Clone)]
pub struct Change {
    /// Relative to the root, `/`-separated.
    pub path: String,
    /// Its text before the change (`None`: a new file).
    pub before: Option<String>,
    /// Its text after.
    pub after: String,
}

/// The tester's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    /// The command passed with the change (tests that already failed before it may remain).
    Passed,
    /// The change broke tests or the build.
    Failed,
    /// Tests fail, but they failed the same way before the change.
    FailedBefore,
    /// Not run: disabled, nothing to run, or no sandbox where one is required.
    #[default]
    Skipped,
    /// The command could not run or did not finish (missing, timed out).
    Error,
}

impl TestStatus {
    /// The name in results.
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Passed => "passed",
            TestStatus::Failed => "failed",
            TestStatus::FailedBefore => "failed_before",
            TestStatus::Skipped => "skipped",
            TestStatus::Error => "error",
        }
    }
}

/// What the tester found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestReport {
    /// The verdict.
    pub status: TestStatus,
    /// One sentence for people.
    pub message: String,
    /// The command, as run (inside the sandbox).
    pub command: Vec<String>,
    /// `bubblewrap`, `unshare` or `none`.
    pub sandbox: String,
    /// The command's exit code.
    pub exit_code: Option<i32>,
    /// Tests that passed.
    pub passed: Vec<String>,
    /// Tests that fail with the change and passed (or did not exist) before it.
    pub failed: Vec<TestFailure>,
    /// Tests that failed before the change too.
    pub failed_before: Vec<String>,
    /// Tests that failed, then passed on one rerun.
    pub flaky: Vec<String>,
    /// Ignored tests.
    pub ignored: Vec<String>,
    /// The change does not compile (and the workspace did before it).
    pub build_failed: bool,
    /// Compile errors of the change (sanitised).
    pub compile_errors: Vec<String>,
    /// The workspace did not compile, or its tests failed to build, before the change.
    pub baseline_broken: bool,
    /// The baseline came from the cache.
    pub baseline_cached: bool,
    /// Tests the change deletes or weakens.
    pub weakened: Vec<String>,
    /// Lines of test output dropped from the coder's feedback because they address a model.
    pub dropped_lines: Vec<String>,
    /// Environment variables removed from the command's environment.
    pub scrubbed_env: Vec<String>,
    /// The end of the output (sanitised, filtered), for commands that are not libtest and for
    /// failures the parser could not place.
    pub excerpt: String,
    /// Wall time of the run with the change, in milliseconds.
    pub elapsed_ms: u64,
}

impl TestReport {
    fn skipped(message: impl Into<String>) -> Self {
        Self {
            status: TestStatus::Skipped,
            message: message.into(),
            ..Self::default()
        }
    }

    /// What goes back to the coder: the newly failing tests (name, location, message), the
    /// compile errors of the change, the tests it weakened — all sanitised and without the
    /// lines that address a model. Empty when there is nothing the coder should fix.
    pub fn feedback(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.build_failed {
            out.push(format!(
                "The change does not compile (`{}`):\n{}",
                self.command.join(" "),
                if self.compile_errors.is_empty() {
                    self.excerpt.clone()
                } else {
                    self.compile_errors.join("\n")
                }
            ));
        }
        for f in &self.failed {
            let at = f
                .location
                .as_ref()
                .map(|l| format!(" at {}:{}:{}", l.file, l.line, l.column))
                .unwrap_or_default();
            out.push(format!(
                "The test `{}` fails with your change{at}:\n{}",
                f.name, f.message
            ));
        }
        if self.status == TestStatus::Failed && self.failed.is_empty() && !self.build_failed {
            out.push(format!(
                "The test command `{}` fails with your change (exit code {}); the end of its output:\n{}",
                self.command.join(" "),
                self.exit_code.map_or("none".to_string(), |c| c.to_string()),
                self.excerpt
            ));
        }
        for w in &self.weakened {
            out.push(format!(
                "Your change weakens the tests: {w}. Keep the existing tests and assertions; fix the code instead"
            ));
        }
        out
    }

    /// A key for stuck detection: the same failures twice end the improve loop.
    pub fn failure_key(&self) -> Vec<String> {
        let mut key: Vec<String> = self.failed.iter().map(|f| f.name.clone()).collect();
        if self.build_failed {
            key.push(format!("build: {}", self.compile_errors.join("|")));
        }
        key.extend(self.weakened.iter().cloned());
        if key.is_empty() && self.status == TestStatus::Failed {
            key.push(format!("exit {:?}", self.exit_code));
        }
        key
    }
}

/// One run of the command, parsed.
#[derive(Debug, Clone, Default)]
struct Observed {
    executed: Executed,
    parsed: libtest::Parsed,
    dropped: Vec<String>,
    excerpt: String,
}

impl Observed {
    fn failing(&self) -> BTreeSet<String> {
        self.parsed.failed.iter().map(|f| f.name.clone()).collect()
    }

    /// The command failed without any failing test to show for it: the build broke (or the
    /// command is not libtest and failed).
    fn broken(&self) -> bool {
        self.executed.exit_code != Some(0) && self.parsed.failed.is_empty()
    }
}

/// One tester run at a time per workspace: the scratch copy and the target cache are shared.
static WORKSPACE_LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Counts `#[test]`-like attributes, assertion macros and `#[ignore]`s in Rust text.
fn test_weight(text: &str) -> (usize, usize, usize) {
    let mut tests = 0;
    let mut asserts = 0;
    let mut ignores = 0;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[test]") || (t.starts_with("#[") && t.contains("::test")) {
            tests += 1;
        }
        if t.starts_with("#[ignore") {
            ignores += 1;
        }
        asserts += ["assert!(", "assert_eq!(", "assert_ne!(", "assert_matches!("]
            .iter()
            .map(|m| t.matches(m).count())
            .sum::<usize>();
    }
    (tests, asserts, ignores)
}

/// The ways the change deletes or weakens tests, one sentence each.
pub fn weakened(changes: &[Change]) -> Vec<String> {
    let mut out = Vec::new();
    for c in changes {
        if !c.path.ends_with(".rs") {
            continue;
        }
        let (t0, a0, i0) = test_weight(c.before.as_deref().unwrap_or(""));
        let (t1, a1, i1) = test_weight(&c.after);
        if t1 < t0 {
            out.push(format!(
                "{} has {} test(s) fewer ({t0} before, {t1} after)",
                c.path,
                t0 - t1
            ));
        }
        if a1 < a0 {
            out.push(format!(
                "{} has {} assertion(s) fewer ({a0} before, {a1} after)",
                c.path,
                a0 - a1
            ));
        }
        if i1 > i0 {
            out.push(format!(
                "{} marks {} more test(s) #[ignore]",
                c.path,
                i1 - i0
            ));
        }
    }
    out
}

/// The packages (by name) that own `paths` in the Cargo workspace at `root`: for each file the
/// nearest `Cargo.toml` with a `[package]` above it.
pub fn owning_packages(root: &Path, paths: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for rel in paths {
        let mut dir = root.join(rel);
        while dir.pop() && dir.starts_with(root) {
            let Ok(text) = crate::util::read_regular_text(
                &dir.join("Cargo.toml"),
                crate::util::MAX_READ_BYTES,
            ) else {
                continue;
            };
            let name = toml::from_str::<toml::Value>(&text)
                .ok()
                .and_then(|v| v.get("package")?.get("name")?.as_str().map(str::to_string));
            if let Some(name) = name {
                if !names.contains(&name) {
                    names.push(name);
                }
                break;
            }
        }
    }
    names
}

/// The command to run, from configuration; `None` with the reason when there is none.
pub fn command_for(
    root: &Path,
    settings: &TesterSettings,
    changes: &[Change],
) -> Result<Vec<String>, String> {
    if !settings.command.is_empty() {
        return Ok(settings.command.clone());
    }
    if !root.join("Cargo.toml").is_file() {
        return Err(
            "no test command: set `[tester] command` in conductor.toml (the default, `cargo test`, needs a Cargo workspace)"
                .into(),
        );
    }
    let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    let mut command: Vec<String> = ["cargo", "test", "--no-fail-fast"]
        .map(String::from)
        .to_vec();
    let packages = owning_packages(root, &paths);
    if packages.is_empty() {
        command.push("--workspace".into());
    }
    for p in packages {
        command.extend(["-p".to_string(), p]);
    }
    Ok(command)
}

/// What a tester run needs besides the change.
pub struct TestRequest<'a> {
    /// The workspace root (canonical).
    pub root: &'a Path,
    /// `[tester]`.
    pub settings: &'a TesterSettings,
    /// Extra environment variable names to remove (the configured `api_key_env`s).
    pub secret_env: &'a [String],
    /// Set to stop at once; the command's process group is killed.
    pub cancel: &'a AtomicBool,
}

/// The scratch folder of a workspace: under the system's temporary folder, named by a hash of
/// the root, so that every run of one workspace builds in the same place (cargo's fingerprints
/// hold paths) and no two workspaces share one.
fn scratch_home(root: &Path) -> Result<PathBuf, String> {
    let uid = unsafe_uid();
    let base = std::env::temp_dir().join(format!("conductor-tester-{uid}"));
    std::fs::create_dir_all(&base).map_err(|e| format!("creating {}: {e}", base.display()))?;
    // Another user could have made the folder first, or made it a symlink: refuse it.
    let meta = std::fs::symlink_metadata(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if !meta.is_dir() || meta.uid() != uid {
            return Err(format!(
                "{} is not a folder of this user; remove it and run again",
                base.display()
            ));
        }
        let _ = std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700));
    }
    let key = crate::editor::text_hash(root.display().to_string().as_bytes());
    Ok(base.join(&key[..16.min(key.len())]))
}

fn unsafe_uid() -> u32 {
    // SAFETY: `getuid` cannot fail and has no side effects.
    unsafe { libc::getuid() }
}

/// What a tester run is for.
#[derive(Clone, Copy)]
enum Mode<'a> {
    /// A proposed change: a baseline on the unchanged tree, then the change, then one rerun.
    Change,
    /// The tree as it is, once, reporting only these tests (libtest names or their last
    /// segments): the editor's "run the tests of this function".
    Selected(&'a [String]),
}

/// Runs the tests of the workspace at `request.root` with `changes` applied, in a scratch copy.
/// Blocking: call it on a blocking thread.
pub fn run(request: &TestRequest<'_>, changes: &[Change]) -> TestReport {
    run_mode(request, changes, Mode::Change)
}

/// Runs `tests` (test function names, or libtest paths) of the workspace at `request.root` as
/// it is, once, in the same sandboxed scratch copy as [`run`], and reports every failure with
/// its panic location: no baseline, since nothing is being blamed on a change. `owners` are the
/// files the tests live in (workspace-relative): the default `cargo test` command is narrowed
/// to their packages and given the names as filters; a configured `[tester] command` runs as
/// configured, since its arguments are not ours to extend. Either way the report keeps only
/// the selected tests. Blocking.
pub fn run_selected(request: &TestRequest<'_>, owners: &[String], tests: &[String]) -> TestReport {
    let changes: Vec<Change> = owners
        .iter()
        .map(|path| Change {
            path: path.clone(),
            before: None,
            after: String::new(),
        })
        .collect();
    run_mode(request, &changes, Mode::Selected(tests))
}

fn run_mode(request: &TestRequest<'_>, changes: &[Change], mode: Mode<'_>) -> TestReport {
    let settings = request.settings;
    if !settings.enabled {
        return TestReport::skipped("the tester is off (`[tester] enabled = false`)");
    }
    let mut command = match command_for(request.root, settings, changes) {
        Ok(command) => command,
        Err(why) => return TestReport::skipped(why),
    };
    if let Mode::Selected(tests) = mode
        && settings.command.is_empty()
    {
        // libtest takes several filters, each a substring of a test's path.
        command.push("--".into());
        command.extend(tests.iter().cloned());
    }
    let isolation = match settings.sandbox {
        SandboxMode::Off => Isolation::None,
        _ => sandbox::available(),
    };
    if isolation == Isolation::None && settings.sandbox == SandboxMode::Required {
        return TestReport {
            command,
            sandbox: "none".into(),
            ..TestReport::skipped(
                "not run: `[tester] sandbox = \"required\"` and neither bubblewrap (`bwrap`, Debian package `bubblewrap`) nor unprivileged namespaces (`unshare`) work on this machine",
            )
        };
    }
    let home = match scratch_home(request.root) {
        Ok(home) => home,
        Err(why) => {
            return TestReport {
                status: TestStatus::Error,
                message: format!("cannot prepare the scratch copy: {why}"),
                command,
                ..TestReport::default()
            };
        }
    };
    let lock = {
        let mut locks = crate::util::lock(&WORKSPACE_LOCKS);
        locks.entry(home.clone()).or_default().clone()
    };
    let _guard = crate::util::lock(&lock);
    match run_locked(request, changes, command.clone(), isolation, &home, mode) {
        Ok(report) => report,
        Err(why) => TestReport {
            status: TestStatus::Error,
            message: why,
            command,
            sandbox: isolation.as_str().into(),
            ..TestReport::default()
        },
    }
}

fn run_locked(
    request: &TestRequest<'_>,
    changes: &[Change],
    command: Vec<String>,
    isolation: Isolation,
    home: &Path,
    mode: Mode<'_>,
) -> Result<TestReport, String> {
    let settings = request.settings;
    let writable = Writable {
        work: home.join("work"),
        target: request.root.join(".conductor").join("target"),
        tmp: home.join("tmp"),
    };
    for dir in [&writable.work, &writable.target, &writable.tmp] {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let mut set = vec![
        (
            "CARGO_TARGET_DIR".to_string(),
            writable.target.display().to_string(),
        ),
        ("TMPDIR".to_string(), writable.tmp.display().to_string()),
        ("CARGO_TERM_COLOR".to_string(), "never".to_string()),
        ("NO_COLOR".to_string(), "1".to_string()),
        ("RUST_BACKTRACE".to_string(), "0".to_string()),
    ];
    if isolation != Isolation::None {
        // No network inside: cargo must not try to reach a registry.
        set.push(("CARGO_NET_OFFLINE".to_string(), "true".to_string()));
    }
    let (env, scrubbed) = sandbox::scrubbed_env(request.secret_env, &set);
    let path_env = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    if let Some(program) = command.first()
        && !sandbox::program_exists(program, path_env, request.root)
    {
        return Ok(TestReport {
            status: TestStatus::Error,
            message: format!(
                "the test command could not start: cannot find `{program}` (on PATH, or as a path in the workspace); check `[tester] command`"
            ),
            command,
            sandbox: isolation.as_str().into(),
            scrubbed_env: scrubbed,
            ..TestReport::default()
        });
    }
    let files = scratch::workspace_files(request.root);
    let argv = sandbox::wrap(isolation, &writable, &command);
    let timeout = Duration::from_secs(settings.timeout_secs.max(1));
    let execute = |label: &str| -> Result<Observed, String> {
        if request.cancel.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(format!("cancelled before the {label} run"));
        }
        let executed = sandbox::execute(
            &argv,
            &writable.work,
            &env,
            timeout,
            settings.max_output_bytes,
            request.cancel,
        );
        let stdout = libtest::sanitize(&executed.stdout);
        let stderr = libtest::sanitize(&executed.stderr);
        let mut parsed = libtest::parse(&stdout, &stderr, &writable.work);
        let mut dropped = Vec::new();
        for f in &mut parsed.failed {
            let (kept, gone) = libtest::filter_for_model(&f.message);
            f.message = kept.trim_end().to_string();
            dropped.extend(gone);
        }
        for e in &mut parsed.compile_errors {
            let (kept, gone) = libtest::filter_for_model(e);
            *e = kept.trim_end().to_string();
            dropped.extend(gone);
        }
        let (excerpt, gone) =
            libtest::filter_for_model(&libtest::tail(&format!("{stdout}\n{stderr}"), 40));
        dropped.extend(gone);
        dropped.sort();
        dropped.dedup();
        Ok(Observed {
            executed,
            parsed,
            dropped,
            excerpt: libtest::bounded(excerpt.trim(), 4000),
        })
    };
    let no_change = BTreeMap::new();
    if let Mode::Selected(tests) = mode {
        scratch::sync(request.root, &files, &no_change, &writable.work)
            .map_err(|e| format!("cannot prepare the scratch copy: {e:#}"))?;
        let now = execute("tests")?;
        let mut report = selected_report(&now, tests, command, isolation, settings);
        report.scrubbed_env = scrubbed;
        return Ok(report);
    }
    let base_sync = scratch::sync(request.root, &files, &no_change, &writable.work)
        .map_err(|e| format!("cannot prepare the scratch copy: {e:#}"))?;
    let key = format!(
        "{}\n{}\n{:?}\n{}",
        request.root.display(),
        base_sync.base_hash,
        command,
        isolation.as_str()
    );
    // By `(workspace, tree hash, command, isolation)`, in memory and under `.conductor/`: one
    // baseline per workspace state, across sessions and command-line runs.
    let cached = baseline::load(request.root, &key);
    let baseline_cached = cached.is_some();
    let baseline = match cached {
        Some(b) => b,
        None => {
            let observed = execute("baseline")?;
            if let Some(why) = &observed.executed.spawn_error {
                return Ok(TestReport {
                    status: TestStatus::Error,
                    message: format!(
                        "the test command could not start: {why}; check `[tester] command`"
                    ),
                    command,
                    sandbox: isolation.as_str().into(),
                    scrubbed_env: scrubbed,
                    ..TestReport::default()
                });
            }
            if observed.executed.timed_out {
                return Ok(TestReport {
                    status: TestStatus::Error,
                    message: format!(
                        "the test command ran past `[tester] timeout_secs` ({} s) on the unchanged workspace and was killed",
                        settings.timeout_secs
                    ),
                    command,
                    sandbox: isolation.as_str().into(),
                    excerpt: observed.excerpt.clone(),
                    dropped_lines: observed.dropped.clone(),
                    scrubbed_env: scrubbed,
                    ..TestReport::default()
                });
            }
            if observed.executed.runaway {
                return Ok(TestReport {
                    status: TestStatus::Error,
                    message: runaway_message(settings),
                    command,
                    sandbox: isolation.as_str().into(),
                    excerpt: observed.excerpt.clone(),
                    scrubbed_env: scrubbed,
                    ..TestReport::default()
                });
            }
            let cancelled = observed.executed.cancelled;
            let observed = Arc::new(baseline::Baseline {
                failing: observed.failing(),
                broken: observed.broken(),
            });
            if !cancelled {
                baseline::store(request.root, &key, (*observed).clone());
            }
            observed
        }
    };
    let changed: BTreeMap<String, String> = changes
        .iter()
        .map(|c| (c.path.clone(), c.after.clone()))
        .collect();
    scratch::sync(request.root, &files, &changed, &writable.work)
        .map_err(|e| format!("cannot prepare the scratch copy: {e:#}"))?;
    let now = execute("change")?;
    let mut report = TestReport {
        command: command.clone(),
        sandbox: isolation.as_str().into(),
        exit_code: now.executed.exit_code,
        baseline_cached,
        scrubbed_env: scrubbed,
        excerpt: now.excerpt.clone(),
        elapsed_ms: now.executed.elapsed.as_millis() as u64,
        weakened: weakened(changes),
        baseline_broken: baseline.broken,
        ..TestReport::default()
    };
    report.dropped_lines = now.dropped.clone();
    report.ignored = now.parsed.ignored.iter().cloned().collect();
    report.passed = now.parsed.passed.iter().cloned().collect();
    if let Some(why) = &now.executed.spawn_error {
        report.status = TestStatus::Error;
        report.message =
            format!("the test command could not start: {why}; check `[tester] command`");
        return Ok(report);
    }
    if now.executed.cancelled {
        report.status = TestStatus::Error;
        report.message = "the tests were cancelled".into();
        return Ok(report);
    }
    if now.executed.timed_out {
        report.status = TestStatus::Error;
        report.message = format!(
            "the test command ran past `[tester] timeout_secs` ({} s) with the change and was killed (its whole process group)",
            settings.timeout_secs
        );
        return Ok(report);
    }
    if now.executed.runaway {
        report.status = TestStatus::Error;
        report.message = runaway_message(settings);
        return Ok(report);
    }
    let before = baseline.failing.clone();
    let mut new_failures: Vec<TestFailure> = now
        .parsed
        .failed
        .iter()
        .filter(|f| !before.contains(&f.name))
        .cloned()
        .collect();
    report.failed_before = now.failing().intersection(&before).cloned().collect();
    if !new_failures.is_empty() {
        // One rerun, never a loop: a test that passes now was flaky, not broken by the change.
        let again = execute("rerun")?;
        if !again.executed.timed_out && again.executed.spawn_error.is_none() {
            let still = again.failing();
            let (stay, flaky): (Vec<TestFailure>, Vec<TestFailure>) = new_failures
                .into_iter()
                .partition(|f| still.contains(&f.name) || !again.parsed.passed.contains(&f.name));
            new_failures = stay;
            report.flaky = flaky.into_iter().map(|f| f.name).collect();
            for name in &report.flaky {
                if !report.passed.contains(name) {
                    report.passed.push(name.clone());
                }
            }
        }
    }
    report.failed = new_failures;
    report.compile_errors = if now.broken() {
        now.parsed.compile_errors.clone()
    } else {
        Vec::new()
    };
    let names = |list: &[String]| {
        let mut shown: Vec<String> = list.iter().take(5).cloned().collect();
        if list.len() > 5 {
            shown.push(format!("and {} more", list.len() - 5));
        }
        shown.join(", ")
    };
    let failed_names: Vec<String> = report.failed.iter().map(|f| f.name.clone()).collect();
    let mut message = if now.broken() && baseline.broken {
        report.status = TestStatus::FailedBefore;
        format!(
            "`{}` fails with the change, and it failed the same way before it (the workspace does not build or its tests do not run even without the change): the change is not to blame, but it is untested",
            command.join(" ")
        )
    } else if now.broken() {
        report.status = TestStatus::Failed;
        if now.parsed.compile_errors.is_empty() {
            format!(
                "`{}` fails with the change (exit code {}) and passed before it",
                command.join(" "),
                now.executed
                    .exit_code
                    .map_or("none".into(), |c| c.to_string())
            )
        } else {
            report.build_failed = true;
            format!(
                "the change does not compile ({} error(s)); the workspace did before it",
                now.parsed.compile_errors.len()
            )
        }
    } else if !report.failed.is_empty() {
        report.status = TestStatus::Failed;
        format!(
            "{} test(s) fail with the change: {}; {} passed",
            report.failed.len(),
            names(&failed_names),
            report.passed.len()
        )
    } else if !report.failed_before.is_empty() {
        report.status = TestStatus::FailedBefore;
        format!(
            "{} passed; {} test(s) fail that already failed before the change: {}",
            report.passed.len(),
            report.failed_before.len(),
            names(&report.failed_before)
        )
    } else {
        report.status = TestStatus::Passed;
        if now.parsed.libtest {
            format!("{} passed, 0 failed", report.passed.len())
        } else {
            format!("`{}` passed (exit code 0)", command.join(" "))
        }
    };
    if !report.flaky.is_empty() {
        message.push_str(&format!(
            "; flaky (failed, then passed on a rerun): {}",
            names(&report.flaky)
        ));
    }
    if !report.weakened.is_empty() {
        message.push_str(&format!(
            "; the change weakens the tests: {}",
            report.weakened.join("; ")
        ));
    }
    if isolation == Isolation::None {
        message.push_str(if request.settings.sandbox == SandboxMode::Off {
            "; not sandboxed (`[tester] sandbox = \"off\"`)"
        } else {
            "; not sandboxed: neither bubblewrap nor unprivileged namespaces are available here, so the tests ran with network access and the user's write permissions (in the scratch copy)"
        });
    }
    if !report.dropped_lines.is_empty() {
        message.push_str(&format!(
            "; {} line(s) of test output addressed the model and were not passed on",
            report.dropped_lines.len()
        ));
    }
    report.message = message;
    Ok(report)
}

/// Whether libtest's `name` is one of `selected` (a full path, or its last segments).
fn is_selected(name: &str, selected: &[String]) -> bool {
    selected
        .iter()
        .any(|s| name == s || name.ends_with(&format!("::{s}")))
}

/// The report of a [`run_selected`] run: the selected tests' results, every failure with its
/// location (nothing is compared with a baseline).
fn selected_report(
    now: &Observed,
    tests: &[String],
    command: Vec<String>,
    isolation: Isolation,
    settings: &TesterSettings,
) -> TestReport {
    let mut report = TestReport {
        command: command.clone(),
        sandbox: isolation.as_str().into(),
        exit_code: now.executed.exit_code,
        excerpt: now.excerpt.clone(),
        elapsed_ms: now.executed.elapsed.as_millis() as u64,
        dropped_lines: now.dropped.clone(),
        ..TestReport::default()
    };
    let keep = |name: &String| is_selected(name, tests);
    report.passed = now
        .parsed
        .passed
        .iter()
        .filter(|n| keep(n))
        .cloned()
        .collect();
    report.ignored = now
        .parsed
        .ignored
        .iter()
        .filter(|n| keep(n))
        .cloned()
        .collect();
    report.failed = now
        .parsed
        .failed
        .iter()
        .filter(|f| keep(&f.name))
        .cloned()
        .collect();
    let executed = &now.executed;
    let mut message = if let Some(why) = &executed.spawn_error {
        report.status = TestStatus::Error;
        format!("the test command could not start: {why}; check `[tester] command`")
    } else if executed.cancelled {
        report.status = TestStatus::Error;
        "the tests were cancelled".into()
    } else if executed.timed_out {
        report.status = TestStatus::Error;
        format!(
            "the test command ran past `[tester] timeout_secs` ({} s) and was killed (its whole process group)",
            settings.timeout_secs
        )
    } else if executed.runaway {
        report.status = TestStatus::Error;
        runaway_message(settings)
    } else if now.broken() {
        report.status = TestStatus::Failed;
        report.build_failed = !now.parsed.compile_errors.is_empty();
        report.compile_errors = now.parsed.compile_errors.clone();
        if report.build_failed {
            format!(
                "the workspace does not compile ({} error(s)), so no test ran",
                report.compile_errors.len()
            )
        } else {
            format!(
                "`{}` failed (exit code {})",
                command.join(" "),
                executed.exit_code.map_or("none".into(), |c| c.to_string())
            )
        }
    } else if now.parsed.libtest && report.passed.is_empty() && report.failed.is_empty() {
        report.status = TestStatus::Skipped;
        format!(
            "none of the selected tests ran ({}): check their names, or `[tester] command` if it is set",
            tests.join(", ")
        )
    } else if !now.parsed.libtest {
        report.status = if executed.exit_code == Some(0) {
            TestStatus::Passed
        } else {
            TestStatus::Failed
        };
        format!(
            "`{}` exited with {} (not libtest output, so no test results)",
            command.join(" "),
            executed
                .exit_code
                .map_or("no code".into(), |c| format!("code {c}"))
        )
    } else {
        report.status = if report.failed.is_empty() {
            TestStatus::Passed
        } else {
            TestStatus::Failed
        };
        format!(
            "{} passed, {} failed",
            report.passed.len(),
            report.failed.len()
        )
    };
    if !report.ignored.is_empty() {
        message.push_str(&format!(", {} ignored", report.ignored.len()));
    }
    if isolation == Isolation::None {
        message.push_str(if settings.sandbox == SandboxMode::Off {
            "; not sandboxed (`[tester] sandbox = \"off\"`)"
        } else {
            "; not sandboxed: neither bubblewrap nor unprivileged namespaces are available here"
        });
    }
    report.message = message;
    report
}

fn runaway_message(settings: &TesterSettings) -> String {
    format!(
        "the test command wrote more than {} bytes of output and was killed (its whole process group); only the first and last {} bytes are kept. Make the tests quieter or raise `[tester] max_output_bytes`",
        (settings.max_output_bytes as u64).saturating_mul(sandbox::RUNAWAY_FACTOR),
        settings.max_output_bytes / 2
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selected_test_is_matched_by_its_path_or_its_last_segments() {
        let selected = vec!["adds_two".to_string(), "net::tests::dials".to_string()];
        assert!(is_selected("tests::adds_two", &selected));
        assert!(is_selected("adds_two", &selected));
        assert!(is_selected("crate::net::tests::dials", &selected));
        assert!(!is_selected("tests::adds_two_more", &selected));
        assert!(!is_selected("tests::not_adds_two", &selected));
        assert!(!is_selected("other::dials", &selected));
    }

    #[test]
    fn deleting_tests_or_asserts_or_ignoring_tests_is_reported() {
        let before = "#[test]\nfn a() { assert_eq!(1, 1); }\n#[test]\nfn b() { assert!(true); }\n";
        let fewer = Change {
            path: "src/lib.rs".into(),
            before: Some(before.into()),
            after: "#[test]\nfn a() { assert_eq!(1, 1); }\n".into(),
        };
        let found = weakened(&[fewer]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("1 test(s) fewer"), "{found:?}");
        let ignored = Change {
            path: "src/lib.rs".into(),
            before: Some(before.into()),
            after: before.replace("#[test]\nfn b", "#[test]\n#[ignore]\nfn b"),
        };
        assert!(weakened(&[ignored])[0].contains("#[ignore]"));
        let added = Change {
            path: "src/lib.rs".into(),
            before: Some(before.into()),
            after: format!("{before}#[tokio::test]\nasync fn c() {{ assert!(true); }}\n"),
        };
        assert!(weakened(&[added]).is_empty());
    }

    #[test]
    fn the_default_command_tests_the_packages_that_own_the_changed_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("crates/leaf/src")).expect("mkdir");
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/leaf\"]\n",
        )
        .expect("write");
        std::fs::write(
            root.join("crates/leaf/Cargo.toml"),
            "[package]\nname = \"leaf\"\nversion = \"0.1.0\"\n",
        )
        .expect("write");
        let change = |path: &str| Change {
            path: path.into(),
            before: None,
            after: String::new(),
        };
        let settings = TesterSettings::default();
        assert_eq!(
            command_for(root, &settings, &[change("crates/leaf/src/lib.rs")]).expect("command"),
            ["cargo", "test", "--no-fail-fast", "-p", "leaf"]
        );
        assert_eq!(
            command_for(root, &settings, &[change("README.md")]).expect("command"),
            ["cargo", "test", "--no-fail-fast", "--workspace"]
        );
        let configured = TesterSettings {
            command: vec!["make".into(), "check".into()],
            ..TesterSettings::default()
        };
        assert_eq!(
            command_for(root, &configured, &[]).expect("command"),
            ["make", "check"]
        );
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let why = command_for(elsewhere.path(), &settings, &[]).expect_err("no command");
        assert!(why.contains("[tester] command"), "{why}");
    }
}
