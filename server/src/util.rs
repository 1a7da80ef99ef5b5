//! Small helpers every module shares.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking over a poisoned one. A panic in a handler is caught and answered; the
/// state such a lock guards is kept consistent by single-call mutations, so it is still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads a file from disk only if it is a regular file of at most `max_bytes`, and never reads
/// more than that: a FIFO named `*.rs` would block the reader until a writer closed it, and
/// `/dev/zero` would be read until memory ran out. The kind and the size are checked before
/// the file is opened, checked again on the opened handle (the path may have been swapped in
/// between), and the read itself is bounded. Errors name the path and what was wrong.
pub fn read_regular_file(path: &std::path::Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read as _};
    let check = |metadata: &std::fs::Metadata| {
        if !metadata.is_file() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{}: not a regular file", path.display()),
            ));
        }
        if metadata.len() > max_bytes {
            return Err(Error::new(
                ErrorKind::InvalidData,
                format!(
                    "{}: {} bytes, above the {max_bytes}-byte limit",
                    path.display(),
                    metadata.len()
                ),
            ));
        }
        Ok(())
    };
    check(&std::fs::metadata(path)?)?;
    let file = std::fs::File::open(path)?;
    check(&file.metadata()?)?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!(
                "{}: grew past the {max_bytes}-byte limit while it was read",
                path.display()
            ),
        ));
    }
    Ok(bytes)
}

/// [`read_regular_file`] as UTF-8 text.
pub fn read_regular_text(path: &std::path::Path, max_bytes: u64) -> std::io::Result<String> {
    let bytes = read_regular_file(path, max_bytes)?;
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: not valid UTF-8", path.display()),
        )
    })
}

/// The size limit for files read whole outside the scan and the index (configuration, edit
/// targets, context seeds): far above any source file, far below a runaway read.
pub const MAX_READ_BYTES: u64 = 64 * 1024 * 1024;

/// Hands the memory the allocator keeps after a document closed back to the system, on a
/// thread of its own (it can take milliseconds on a large heap). A syntax tree and a scan are
/// many small allocations: freed, glibc keeps them in its heaps, so without this a closed
/// 2 MB one-line document left 430 MB resident. Elsewhere this does nothing.
pub fn release_freed_memory() {
    let _ = std::thread::Builder::new()
        .name("conductor-trim".into())
        .spawn(trim_heap);
}

/// How long the session must have been without heavy work before [`release_freed_memory_soon`]
/// trims the heap.
const TRIM_AFTER_QUIET: std::time::Duration = std::time::Duration::from_secs(2);

/// Hands freed memory back to the system once heavy work (a scan, an index build, a bundle)
/// has been quiet for [`TRIM_AFTER_QUIET`]: each call pushes the trim back, so a burst of
/// keystrokes costs one trim after it, off the session's threads. Opening a 10,000-line file
/// left about 10 MB of freed parse and scan memory resident until the next close.
pub fn release_freed_memory_soon() {
    type Deadline = std::sync::Arc<(Mutex<Option<std::time::Instant>>, std::sync::Condvar)>;
    static DEADLINE: std::sync::OnceLock<Option<Deadline>> = std::sync::OnceLock::new();
    let shared = DEADLINE.get_or_init(|| {
        let shared = std::sync::Arc::new((Mutex::new(None), std::sync::Condvar::new()));
        let waiter = shared.clone();
        std::thread::Builder::new()
            .name("conductor-trim".into())
            .spawn(move || {
                let (deadline, wake) = &*waiter;
                let mut next = lock(deadline);
                loop {
                    match *next {
                        None => next = wake.wait(next).unwrap_or_else(PoisonError::into_inner),
                        Some(at) => {
                            let now = std::time::Instant::now();
                            if at > now {
                                next = wake
                                    .wait_timeout(next, at - now)
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .0;
                            } else {
                                *next = None;
                                drop(next);
                                trim_heap();
                                next = lock(deadline);
                            }
                        }
                    }
                }
            })
            .ok()
            .map(|_| shared)
    });
    if let Some(shared) = shared {
        let (deadline, wake) = &**shared;
        *lock(deadline) = Some(std::time::Instant::now() + TRIM_AFTER_QUIET);
        wake.notify_one();
    }
}

/// glibc's `malloc_trim(0)` on the calling thread (elsewhere nothing).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: `malloc_trim` takes no pointers and may be called from any thread at any
        // time; it only returns free pages of glibc's heaps to the kernel.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Runs `work` on a thread of the background pool: blocking work that no keystroke waits for
/// (bundle builds, scans, test runs, journal reads), kept apart from tokio's blocking pool,
/// which also reads the session's stdin. The pool's threads are made once per process and
/// reused, and the handle can be awaited from any runtime. When the work ends, freed memory is
/// handed back once the session is quiet ([`release_freed_memory_soon`]). If the pool cannot
/// start, tokio's own blocking pool runs the work.
///
/// The pool's threads run at normal priority. Running them at `nice` +10 was measured
/// (docs/performance.md): it did not shorten the keystroke's tail under EEVDF, and it made runs
/// and scans ten times slower while the user's own build ran.
pub fn background<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    static POOL: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("conductor-background")
            .build()
            .map_err(|err| tracing::warn!("the background pool did not start: {err}"))
            .ok()
    });
    // What the work freed is handed back to the system once the session is quiet.
    let work = move || {
        let out = work();
        release_freed_memory_soon();
        out
    };
    match pool {
        Some(runtime) => runtime.spawn_blocking(work),
        None => tokio::task::spawn_blocking(work),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn background_work_runs_on_the_pool_and_answers_across_runtimes() {
        let name = background(|| std::thread::current().name().map(str::to_owned))
            .await
            .expect("background work ran");
        assert_eq!(name.as_deref(), Some("conductor-background"));
    }

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("pipe.rs");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        // A FIFO with no writer: opening it for reading would block for ever.
        let started = std::time::Instant::now();
        let err = read_regular_file(&fifo, 1024).expect_err("a FIFO is refused");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let err = read_regular_file(std::path::Path::new("/dev/zero"), 1024)
            .expect_err("a device is refused");
        assert!(err.to_string().contains("/dev/zero"), "{err}");
        let file = dir.path().join("a.rs");
        std::fs::write(&file, "fn a() {}").expect("write");
        assert_eq!(read_regular_text(&file, 9).expect("read"), "fn a() {}");
        let err = read_regular_file(&file, 8).expect_err("too large");
        assert!(err.to_string().contains("above the 8-byte limit"), "{err}");
    }
}

/// The `file://` URL of an absolute path, for links in markdown (bytes other than unreserved
/// characters and `/` percent-encoded).
pub fn file_url(path: &std::path::Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
