//! `conductor scan`: the static security scan from the command line, for people and for CI.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};
use crate::config;
use crate::security::{Severity, report, scan_paths_in};
use crate::workspace;

/// Output formats of `conductor scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// `file:line:col: severity rule: message`, for people.
    Text,
    /// One JSON object with every finding, for scripts.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

/// A severity threshold on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Any finding, hints included.
    Info,
    /// Low and above.
    Low,
    /// Medium and above.
    Medium,
    /// High and above.
    High,
    /// Critical only.
    Critical,
    /// Never fail because of findings.
    Never,
}

/// Arguments of `conductor scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or folders to scan (folders are walked, honouring .gitignore); default: `.`.
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ScanFormat,
    /// Write the report to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Exit with 1 when a finding at or above this severity is reported.
    #[arg(long, value_enum, default_value = "low")]
    pub fail_on: FailOn,
    /// Match every rule everywhere, ignoring the rules' anchor words (slower; for rule
    /// authors checking that anchors lose no finding).
    #[arg(long)]
    pub exhaustive: bool,
    /// Report hygiene lints too (`lint`-category rules such as a missing `// SAFETY:`
    /// comment), which are left out by default; same as `[security] lints = true`.
    #[arg(long)]
    pub include_lints: bool,
}

/// Runs the scan and returns the exit code: 0 clean, 1 findings at or above `--fail-on`,
/// 2 for a usage or configuration error.
pub fn run(args: &ScanArgs) -> ExitCode {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    // The configuration is the scanned workspace's, not the current folder's: `conductor scan
    // other/ws` reads `other/ws/conductor.toml`.
    let root = scan_root(&paths[0]);
    let (config, problems) = config::load_workspace(&root);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("conductor scan: configuration error: {p}");
        }
        return ExitCode::from(EXIT_USAGE);
    }
    let mut settings = config.security;
    settings.exhaustive = args.exhaustive;
    settings.lints |= args.include_lints;
    let scanned = match scan_paths_in(&root, &paths, &settings) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("conductor scan: {err:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for note in &scanned.notes {
        eprintln!("conductor scan: {}: {}", note.path.display(), note.message);
    }
    let body = match args.format {
        ScanFormat::Text => report::to_text(&scanned),
        ScanFormat::Json => format!("{:#}\n", report::to_json(&scanned)),
        ScanFormat::Sarif => format!("{:#}\n", report::to_sarif(&scanned)),
    };
    let written = match &args.output {
        Some(path) => {
            std::fs::write(path, &body).map_err(|e| format!("writing {}: {e}", path.display()))
        }
        None => std::io::stdout()
            .lock()
            .write_all(body.as_bytes())
            .map_err(|e| format!("writing standard output: {e}")),
    };
    if let Err(err) = written {
        eprintln!("conductor scan: {err}");
        return ExitCode::from(EXIT_USAGE);
    }
    let threshold = match args.fail_on {
        FailOn::Info => Some(Severity::Info),
        FailOn::Low => Some(Severity::Low),
        FailOn::Medium => Some(Severity::Medium),
        FailOn::High => Some(Severity::High),
        FailOn::Critical => Some(Severity::Critical),
        FailOn::Never => None,
    };
    match threshold {
        Some(t) if report::has_findings_at(&scanned, t) => ExitCode::from(EXIT_FINDINGS),
        _ => ExitCode::from(EXIT_OK),
    }
}

/// The workspace a scan of `path` belongs to: the Cargo workspace (or `conductor.toml`, or git
/// repository) that holds it, else the folder itself (a file's folder).
pub(crate) fn scan_root(path: &Path) -> PathBuf {
    workspace::root_for(path).unwrap_or_else(|| {
        if path.is_dir() {
            path.to_path_buf()
        } else {
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        }
    })
}
