//! Conductor's own log: `tracing` to stderr (never stdout, which carries the protocol) and,
//! when configured, to a file. `CONDUCTOR_LOG` (a `tracing` filter such as `debug` or
//! `conductor=trace`) wins over the `log.level` setting. Message bodies are never logged above
//! `trace`, and secrets never: see `llm` for redaction.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::LogSettings;

/// The environment variable that sets the log filter.
pub const LOG_ENV: &str = "CONDUCTOR_LOG";

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();
static FILE: Mutex<Option<File>> = Mutex::new(None);

/// A writer that copies each log line to stderr and to the configured file.
struct Tee;

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        if let Some(file) = FILE.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            let _ = file.write_all(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    if FILTER.get().is_some() {
        return;
    }
    let filter = std::env::var(LOG_ENV)
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(|| Tee)
        .with_ansi(false)
        .with_target(true);
    if tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        let _ = FILTER.set(handle);
    }
}

/// Applies the `[log]` settings: the level (unless `CONDUCTOR_LOG` is set) and the log file.
/// Returns a message for the user when the file cannot be opened.
pub fn apply(settings: &LogSettings) -> Option<String> {
    if std::env::var_os(LOG_ENV).is_none()
        && let Some(handle) = FILTER.get()
    {
        let _ = handle.reload(EnvFilter::new(settings.level.as_str()));
    }
    let mut file = FILE.lock().unwrap_or_else(PoisonError::into_inner);
    match &settings.file {
        None => {
            *file = None;
            None
        }
        Some(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => {
                *file = Some(f);
                None
            }
            Err(err) => {
                *file = None;
                Some(format!(
                    "cannot open the log file `{path}` (log.file): {err}"
                ))
            }
        },
    }
}
