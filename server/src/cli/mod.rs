//! The command line: `conductor lsp` and, as capabilities land, the subcommands of DESIGN.md.
//!
//! Each subcommand lives in its own file here and returns its exit code: 0 success, 1 findings
//! at or above `--fail-on` or a failed run, 2 usage or configuration error.

pub mod doctor;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod apply;
pub mod context;
pub mod explain;
pub mod review;
pub mod run;
pub mod scan;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for findings at or above the threshold, or a failed run.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code for a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// Conductor orchestrates AI agents from your editor: it plans, writes, reviews and tests
/// changes, and shows every decision where the code lives.
#[derive(Debug, Parser)]
#[command(name = "conductor", version, about, long_about = None)]
pub struct Cli {
    /// Run the language server on stdio (what VS Code's client passes); same as `conductor lsp`.
    #[arg(long, global = false)]
    pub stdio: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the language server over stdio.
    Lsp {
        /// Accepted for clients that pass it; stdio is the only transport.
        #[arg(long)]
        stdio: bool,
    },
    /// Print the context bundle an agent would see for a position or selection.
    Context(context::ContextArgs),
    /// Measure Conductor's quality on a repository.
    Eval {
        /// What to evaluate.
        #[command(subcommand)]
        command: context::EvalCommand,
    },
    /// Scan files for security problems (text, JSON or SARIF).
    Scan(scan::ScanArgs),
    /// Check that every agent has a working model provider, and say how to fix what does not.
    Doctor,
    /// Apply a coder reply's SEARCH/REPLACE blocks to the workspace (shows the diff; writes with --apply).
    Apply(apply::ApplyArgs),
    /// Run a goal through plan, code, review and test (shows the change; writes with --apply).
    Run(run::RunArgs),
    /// Fix the security findings: mechanical fixes need no model (shows the change; writes with --apply).
    Fix(run::FixArgs),
    /// List the journalled runs of the workspace.
    Runs(run::RunsArgs),
    /// Review existing code, or a git diff against a revision, for security (text, JSON or SARIF).
    Review(review::ReviewArgs),
    /// Explain a run from its journal (`--run ID`: its whole story), or the decisions behind a line.
    Explain(explain::ExplainArgs),
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    // Every command but the server runs to its end: tree-sitter gets the allocator made for
    // that, before anything has parsed.
    if !matches!(cli.command, Some(Command::Lsp { .. }) | None) {
        crate::alloc::install_for_batch();
    }
    match cli.command {
        Some(Command::Lsp { .. }) => crate::lsp::run_stdio(),
        Some(Command::Context(args)) => context::run(args),
        Some(Command::Eval { command }) => context::run_eval(command),
        Some(Command::Scan(args)) => scan::run(&args),
        Some(Command::Doctor) => doctor::main(),
        Some(Command::Apply(args)) => apply::run(&args),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Fix(args)) => run::fix(&args),
        Some(Command::Runs(args)) => run::runs(&args),
        Some(Command::Review(args)) => review::run(&args),
        Some(Command::Explain(args)) => explain::run(&args),
        None if cli.stdio => crate::lsp::run_stdio(),
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            ExitCode::from(EXIT_USAGE)
        }
    }
}
