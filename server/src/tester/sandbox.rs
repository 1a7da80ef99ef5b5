//! The tester's sandbox and process control: which isolation is available (bubblewrap, else
//! unprivileged namespaces through `unshare`), the scrubbed environment, and running one
//! command with a wall-clock timeout that kills its whole process group and a cap on the
//! output it keeps.
//!
//! What the sandbox guarantees when it is on: no network (a new network namespace whose only
//! interface is its own loopback, so nothing outside — the host's loopback included — can be
//! reached); write access only to the scratch copy, the target cache and the run's temporary
//! folder (every other mount is read-only); no secret-looking variable in the environment.
//! What it does not: it does not hide files from reading (the test can read what the user
//! can), it does not limit CPU or memory, and with `unshare` a mount the kernel refuses to
//! remount read-only stays as it was.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How the command was isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// bubblewrap.
    Bubblewrap,
    /// `unshare` user, mount and network namespaces.
    Unshare,
    /// None.
    None,
}

impl Isolation {
    /// The name in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Bubblewrap => "bubblewrap",
            Isolation::Unshare => "unshare",
            Isolation::None => "none",
        }
    }
}

/// The folders a sandboxed command may write.
#[derive(Debug, Clone)]
pub struct Writable {
    /// The scratch copy (the working folder).
    pub work: PathBuf,
    /// The target cache.
    pub target: PathBuf,
    /// The run's temporary folder (`TMPDIR`).
    pub tmp: PathBuf,
}

/// Binds the writable folders over themselves, remounts every other mount read-only, brings
/// the namespace's own loopback up, then runs the command. The paths come as arguments, never
/// interpolated into the script.
const UNSHARE_SCRIPT: &str = r#"set -e
w1="$1"; w2="$2"; w3="$3"; shift 3
for d in "$w1" "$w2" "$w3"; do mount --bind "$d" "$d"; done
while read -r _ _ _ _ mp _; do
  mp=$(printf '%b' "$mp")
  case "$mp" in "$w1"|"$w2"|"$w3") continue;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || true
done < /proc/self/mountinfo
ip link set lo up 2>/dev/null || true
exec "$@""#;

/// The argv that runs `command` under `isolation`.
pub fn wrap(isolation: Isolation, writable: &Writable, command: &[String]) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    let mut argv: Vec<String> = Vec::new();
    match isolation {
        Isolation::Bubblewrap => {
            argv.extend(
                [
                    "bwrap",
                    "--ro-bind",
                    "/",
                    "/",
                    "--dev",
                    "/dev",
                    "--proc",
                    "/proc",
                ]
                .map(String::from),
            );
            for dir in [&writable.work, &writable.target, &writable.tmp] {
                argv.extend(["--bind".to_string(), path(dir), path(dir)]);
            }
            argv.extend(
                [
                    "--unshare-net",
                    "--unshare-ipc",
                    "--unshare-uts",
                    "--die-with-parent",
                ]
                .map(String::from),
            );
            argv.extend(["--chdir".to_string(), path(&writable.work), "--".into()]);
        }
        Isolation::Unshare => {
            argv.extend(
                [
                    "unshare",
                    "--user",
                    "--map-root-user",
                    "--net",
                    "--mount",
                    "--propagation",
                    "private",
                    "/bin/sh",
                    "-c",
                    UNSHARE_SCRIPT,
                    "conductor-sandbox",
                ]
                .map(String::from),
            );
            for dir in [&writable.work, &writable.target, &writable.tmp] {
                argv.push(path(dir));
            }
        }
        Isolation::None => {}
    }
    argv.extend(command.iter().cloned());
    argv
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join(program);
            candidate.is_file()
        })
    })
}

/// Whether `program` can be started: a path that names an executable file (relative ones from
/// `cwd`), or a name found on `path` (a `PATH` value). Checked before the sandbox, whose shell
/// would otherwise report a missing program as an ordinary failing exit code.
pub fn program_exists(program: &str, path: Option<&str>, cwd: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(&cwd.join(program));
    }
    path.is_some_and(|paths| std::env::split_paths(paths).any(|dir| executable(&dir.join(program))))
}

/// Whether `isolation` works on this machine: its program is on `PATH` and runs `true`.
pub fn probe(isolation: Isolation) -> bool {
    let program = match isolation {
        Isolation::Bubblewrap => "bwrap",
        Isolation::Unshare => "unshare",
        Isolation::None => return true,
    };
    if !on_path(program) {
        return false;
    }
    let Ok(dir) = tempfile_dir("probe") else {
        return false;
    };
    let writable = Writable {
        work: dir.clone(),
        target: dir.clone(),
        tmp: dir.clone(),
    };
    let argv = wrap(isolation, &writable, &["true".to_string()]);
    let works = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::fs::remove_dir_all(&dir);
    works
}

/// The best isolation this machine offers, probed once per process: bubblewrap when `bwrap` is
/// on `PATH` and works, else `unshare` when the kernel lets this user create the namespaces,
/// else none.
pub fn available() -> Isolation {
    static FOUND: OnceLock<Isolation> = OnceLock::new();
    *FOUND.get_or_init(|| {
        [Isolation::Bubblewrap, Isolation::Unshare]
            .into_iter()
            .find(|i| probe(*i))
            .unwrap_or(Isolation::None)
    })
}

/// A fresh folder of our own under the system's temporary folder.
pub fn tempfile_dir(label: &str) -> std::io::Result<PathBuf> {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "conductor-{label}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

/// Whether an environment variable's name or value looks like a credential: provider keys,
/// tokens, passwords, cloud credentials, or a value the redactor would take for a secret.
pub fn secret_looking(name: &str, value: &str, extra: &[String]) -> bool {
    let upper = name.to_ascii_uppercase();
    const WORDS: [&str; 13] = [
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "AUTHORIZATION",
        "COOKIE",
        "SESSION",
        "PRIVATE",
        "SIGNATURE",
        "DSN",
        "WEBHOOK",
    ];
    const PREFIXES: [&str; 9] = [
        "AWS_",
        "AZURE_",
        "GOOGLE_",
        "GCP_",
        "OPENAI",
        "ANTHROPIC",
        "GITHUB_",
        "GH_",
        "HF_",
    ];
    extra.iter().any(|e| e.eq_ignore_ascii_case(name))
        || WORDS.iter().any(|w| upper.contains(w))
        || PREFIXES.iter().any(|p| upper.starts_with(p))
        || crate::llm::redact::Redactor::new().redact(value).count > 0
}

/// The environment the command gets: this process's, less every secret-looking variable (and
/// the `extra` names, such as the configured `api_key_env`s), with `set` on top. Returns the
/// environment and the names removed.
pub fn scrubbed_env(
    extra: &[String],
    set: &[(String, String)],
) -> (Vec<(String, String)>, Vec<String>) {
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        if secret_looking(name, value, extra) {
            removed.push(name.to_string());
        } else if !set.iter().any(|(n, _)| n == name) {
            kept.push((name.to_string(), value.to_string()));
        }
    }
    kept.extend(set.iter().cloned());
    removed.sort();
    (kept, removed)
}

/// What one command did.
#[derive(Debug, Clone, Default)]
pub struct Executed {
    /// Its exit code; `None` when it was killed or could not start.
    pub exit_code: Option<i32>,
    /// It ran past the timeout and was killed.
    pub timed_out: bool,
    /// It was cancelled and killed.
    pub cancelled: bool,
    /// It wrote far more output than is kept and was killed.
    pub runaway: bool,
    /// It could not be started: why.
    pub spawn_error: Option<String>,
    /// Standard output, capped (head and tail kept).
    pub stdout: String,
    /// Standard error, capped.
    pub stderr: String,
    /// Bytes it wrote in all.
    pub output_bytes: u64,
    /// Output beyond the cap was dropped.
    pub truncated: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// Keeps the first and the last `cap / 2` bytes of a stream and counts the rest.
struct Capped {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    half: usize,
    total: u64,
}

impl Capped {
    fn new(cap: usize) -> Self {
        Self {
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            half: (cap / 2).max(1),
            total: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.half.saturating_sub(self.head.len());
        let take = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..take]);
        bytes = &bytes[take..];
        if bytes.len() >= self.half {
            self.tail.clear();
            bytes = &bytes[bytes.len() - self.half..];
        }
        self.tail.extend(bytes);
        while self.tail.len() > self.half {
            self.tail.pop_front();
        }
    }

    fn finish(self) -> (String, bool) {
        let kept = self.head.len() + self.tail.len();
        let truncated = self.total > kept as u64;
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if truncated {
            out.push_str(&format!(
                "\n[… {} bytes of output dropped …]\n",
                self.total - kept as u64
            ));
        }
        let tail: Vec<u8> = self.tail.into_iter().collect();
        out.push_str(&String::from_utf8_lossy(&tail));
        (out, truncated)
    }
}

/// Output past this many times the cap ends the command: it is only going to be dropped.
pub const RUNAWAY_FACTOR: u64 = 64;

/// Runs `argv` in `cwd` with exactly `env`, in a session (and process group) of its own, with
/// no standard input. After `timeout`, on `cancel`, or when it writes more than
/// [`RUNAWAY_FACTOR`] times `max_output` bytes, the whole group is killed.
pub fn execute(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    timeout: Duration,
    max_output: usize,
    cancel: &AtomicBool,
) -> Executed {
    let started = Instant::now();
    let Some((program, args)) = argv.split_first() else {
        return Executed {
            spawn_error: Some("the test command is empty".into()),
            ..Executed::default()
        };
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: `setsid` is async-signal-safe and touches no memory of this process; it makes the
    // child the leader of a new session and process group (so the timeout can kill the whole
    // group) without a controlling terminal (so a test cannot push input into ours).
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            return Executed {
                spawn_error: Some(format!("cannot start `{program}`: {err}")),
                elapsed: started.elapsed(),
                ..Executed::default()
            };
        }
    };
    let pid = child.id() as libc::pid_t;
    let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        let total = total.clone();
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut capped = Capped::new(max_output / 2);
            if let Some(mut stream) = stream {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    capped.push(&buf[..n]);
                    total.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            let _ = send.send(capped);
        });
        receive
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let runaway = (max_output as u64).saturating_mul(RUNAWAY_FACTOR).max(1);
    let mut result = Executed::default();
    let kill_group = || {
        // SAFETY: a plain syscall; a negative pid names the process group the child leads.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                result.exit_code = status.code();
                // Children that outlive the command (a daemon it started) go with it.
                kill_group();
                break;
            }
            Ok(None) => {}
            Err(_) => {
                kill_group();
                let _ = child.wait();
                break;
            }
        }
        let killed = if started.elapsed() >= timeout {
            result.timed_out = true;
            true
        } else if cancel.load(Ordering::SeqCst) {
            result.cancelled = true;
            true
        } else if total.load(Ordering::Relaxed) > runaway {
            result.runaway = true;
            true
        } else {
            false
        };
        if killed {
            kill_group();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // A process that left the group (its own `setsid`) may hold the pipes open: its output is
    // not waited for past a grace period.
    let grace = Duration::from_secs(2);
    let (stdout, t1) = out
        .recv_timeout(grace)
        .map(Capped::finish)
        .unwrap_or_default();
    let (stderr, t2) = err
        .recv_timeout(grace)
        .map(Capped::finish)
        .unwrap_or_default();
    result.stdout = stdout;
    result.stderr = stderr;
    result.truncated = t1 || t2;
    result.output_bytes = total.load(Ordering::Relaxed);
    result.elapsed = started.elapsed();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn a_hanging_command_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("late");
        let script = format!("(sleep 3; touch {}) & sleep 30", marker.display());
        let started = Instant::now();
        let run = execute(
            &sh(&script),
            dir.path(),
            &[("PATH".into(), std::env::var("PATH").unwrap_or_default())],
            Duration::from_millis(300),
            1024,
            &AtomicBool::new(false),
        );
        assert!(run.timed_out, "{run:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{run:?}");
        std::thread::sleep(Duration::from_millis(3500));
        assert!(!marker.exists(), "the background child outlived the kill");
    }

    #[test]
    fn output_is_capped_head_and_tail_and_a_runaway_stream_is_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = execute(
            &sh("echo first; yes conductor | head -c 100000000; echo; echo last"),
            dir.path(),
            &[("PATH".into(), std::env::var("PATH").unwrap_or_default())],
            Duration::from_secs(20),
            4096,
            &AtomicBool::new(false),
        );
        assert!(run.truncated);
        assert!(run.stdout.len() < 4096, "{}", run.stdout.len());
        assert!(run.stdout.starts_with("first\n"), "{}", &run.stdout[..20]);
        // 100 MB is far past 64 × 4 KiB: the command was stopped before writing it all.
        assert!(run.output_bytes < 100_000_000, "{}", run.output_bytes);
        assert_eq!((run.exit_code, run.runaway), (None, true));
        let small = execute(
            &sh("echo a; echo b >&2; exit 3"),
            dir.path(),
            &[("PATH".into(), std::env::var("PATH").unwrap_or_default())],
            Duration::from_secs(20),
            4096,
            &AtomicBool::new(false),
        );
        assert_eq!(
            (
                small.exit_code,
                small.stdout.as_str(),
                small.stderr.as_str()
            ),
            (Some(3), "a\n", "b\n")
        );
    }

    #[test]
    fn a_missing_program_is_reported_by_name() {
        let run = execute(
            &["conductor-no-such-program".to_string()],
            Path::new("/"),
            &[],
            Duration::from_secs(5),
            1024,
            &AtomicBool::new(false),
        );
        let why = run.spawn_error.expect("a spawn error");
        assert!(why.contains("conductor-no-such-program"), "{why}");
    }

    #[test]
    fn secret_looking_variables_are_scrubbed() {
        assert!(secret_looking("OPENAI_API_KEY", "x", &[]));
        assert!(secret_looking("MY_PROVIDER", "x", &["my_provider".into()]));
        assert!(secret_looking("GITHUB_TOKEN", "x", &[]));
        assert!(secret_looking(
            "DEPLOY",
            "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
            &[]
        ));
        assert!(!secret_looking("PATH", "/usr/bin:/bin", &[]));
        assert!(!secret_looking("HOME", "/root", &[]));
        assert!(program_exists("sh", Some("/usr/bin:/bin"), Path::new("/")));
        assert!(!program_exists(
            "conductor-none",
            Some("/usr/bin:/bin"),
            Path::new("/")
        ));
    }

    #[test]
    fn inside_each_working_sandbox_only_the_writable_folders_can_be_written() {
        let mut tried = 0;
        for isolation in [Isolation::Bubblewrap, Isolation::Unshare] {
            if !probe(isolation) {
                continue;
            }
            tried += 1;
            let outside = tempfile::tempdir().expect("tempdir");
            let work = tempfile::tempdir().expect("tempdir");
            let writable = Writable {
                work: work.path().to_path_buf(),
                target: work.path().to_path_buf(),
                tmp: work.path().to_path_buf(),
            };
            let script = format!(
                "touch {}/inside && ! touch {}/outside 2>/dev/null",
                work.path().display(),
                outside.path().display()
            );
            let argv = wrap(isolation, &writable, &sh(&script));
            let run = execute(
                &argv,
                work.path(),
                &[("PATH".into(), std::env::var("PATH").unwrap_or_default())],
                Duration::from_secs(20),
                4096,
                &AtomicBool::new(false),
            );
            assert_eq!(run.exit_code, Some(0), "{isolation:?}: {run:?}");
            assert!(work.path().join("inside").exists(), "{isolation:?}");
            assert!(!outside.path().join("outside").exists(), "{isolation:?}");
        }
        // This machine (and CI) has unprivileged namespaces at least.
        assert!(tried > 0, "no sandbox works here");
    }

    #[test]
    fn the_sandbox_argv_binds_only_the_writable_folders() {
        let writable = Writable {
            work: "/s/work".into(),
            target: "/w/.conductor/target".into(),
            tmp: "/s/tmp".into(),
        };
        let argv = wrap(Isolation::Bubblewrap, &writable, &["cargo".into()]);
        let binds: Vec<&str> = argv
            .windows(2)
            .filter(|w| w[0] == "--bind")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(binds, ["/s/work", "/w/.conductor/target", "/s/tmp"]);
        assert!(argv.contains(&"--unshare-net".to_string()));
        assert_eq!(argv.last().map(String::as_str), Some("cargo"));
        let argv = wrap(Isolation::Unshare, &writable, &["cargo".into()]);
        assert!(argv.contains(&"--net".to_string()) && argv.contains(&"--mount".to_string()));
        assert_eq!(
            wrap(Isolation::None, &writable, &["cargo".into()]),
            ["cargo"]
        );
    }
}
