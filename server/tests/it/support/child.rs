//! Running one test alone in a fresh copy of this test binary, for tests that need process-wide
//! state the other tests must not share, such as a global `tracing` subscriber.
//!
//! Why a process and not `tracing::subscriber::set_default`: `tracing` caches each callsite's
//! interest process-wide, the first time the callsite is hit. While exactly one dispatcher is
//! registered (a test's scoped one, with no global subscriber), tracing-core 0.1 resolves a cold
//! callsite with the *calling thread's* default dispatcher. A test running in parallel on
//! another thread, with no subscriber, therefore caches `Interest::never` for a callsite the
//! capturing test needs, and the capturing test's subscriber never sees that event again (see
//! tokio-rs/tracing#2874 and #3611). A test asserting that something is *absent* from the log
//! would then pass without having seen the log at all. In a child process that runs a single
//! test under a global subscriber, every thread and every callsite answers to that subscriber.

use std::process::Command;

/// Set in the child to the full name of the test it runs.
const CHILD_ENV: &str = "CONDUCTOR_IT_CHILD_TEST";

/// Runs `body` in a child process that runs only the test `name` (its path in this binary, such
/// as `llm::some_test`), and fails unless that test ran and passed there. The calling test must
/// be `name` itself: in the child the same test reaches this call again and runs `body`.
pub fn run_alone(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).is_ok_and(|running| running == name) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    let output = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .expect("run the test binary for one test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{name}` failed in its own process ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    // A name that matches no test would make the child pass having run nothing.
    assert!(
        stdout.contains(&format!("test {name} ... ok")) && stdout.contains("1 passed;"),
        "`{name}` did not run in its own process:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}
