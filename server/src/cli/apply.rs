//! `conductor apply`: a coder reply's SEARCH/REPLACE blocks applied to the workspace on disk,
//! with a unified diff and each block's outcome; files are written only with `--apply`.
//!
//! JSON (`--format json`): `{"blocks": [{"index", "file", "status", "stage", "reason", "lines",
//! "candidates", "nearest"}], "files": [{"file", "diff"}]}`. `index` counts from 1; `status` is
//! `applied`, `refused` or `noop`; `stage` is `exact`, `indentation`, `whitespace` or `create`
//! (null unless applied); `lines` is `{"before": [first, last], "after": [first, last]}`, 1-based
//! and inclusive, `last = first - 1` for no lines (null unless applied); `candidates` are the
//! `[first, last]` ranges of an ambiguous match; `nearest` the `{"line", "text"}` of the closest
//! place to a SEARCH part that matched nothing.
//!
//! Exit codes: 0 every block applied (or was a no-op) and every write succeeded, 1 a block was
//! refused or a write failed, 2 a usage error or a reply that cannot be read or parsed.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};
use crate::edits::{BlockStatus, DiskText, EditPlan, Refusal, Workspace, plan_edits, write_files};
use crate::llm::redact::Redactor;

/// Output formats of `conductor apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyFormat {
    /// Unified diffs, then one line per block.
    Text,
    /// One JSON object: `{"blocks": [...], "files": [...]}`.
    Json,
}

/// Arguments of `conductor apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The reply to apply (a file, or `-` for standard input).
    pub reply: PathBuf,
    /// Write the changed files (without it, only show what would change).
    #[arg(long)]
    pub apply: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ApplyFormat,
    /// The workspace root that the reply's paths are relative to.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
}

/// Runs `conductor apply`.
pub fn run(args: &ApplyArgs) -> ExitCode {
    ExitCode::from(apply(args))
}

fn apply(args: &ApplyArgs) -> u8 {
    let reply = if args.reply.as_os_str() == "-" {
        let mut text = String::new();
        if let Err(err) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("conductor apply: reading the reply from standard input: {err}");
            return EXIT_USAGE;
        }
        text
    } else {
        match std::fs::read_to_string(&args.reply) {
            Ok(text) => text,
            Err(err) => {
                eprintln!(
                    "conductor apply: reading the reply {}: {err}",
                    args.reply.display()
                );
                return EXIT_USAGE;
            }
        }
    };
    let workspace = match Workspace::new(&args.root) {
        Ok(ws) => ws,
        Err(err) => {
            eprintln!(
                "conductor apply: the workspace root {}: {err}",
                args.root.display()
            );
            return EXIT_USAGE;
        }
    };
    // No run issued any placeholder here, so a reply that uses one is refused (its secret
    // cannot be put back).
    let plan = match plan_edits(&workspace, &reply, &DiskText, &Redactor::new()) {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("conductor apply: the reply cannot be used: {err}");
            return EXIT_USAGE;
        }
    };
    let mut write_failed = false;
    let mut written = Vec::new();
    if args.apply {
        for w in write_files(&workspace, &plan) {
            match w.result {
                Ok(()) => written.push(w.file),
                Err(err) => {
                    eprintln!("conductor apply: not written: {err}");
                    write_failed = true;
                }
            }
        }
    }
    let out = match args.format {
        ApplyFormat::Json => {
            let mut s = serde_json::to_string_pretty(&to_json(&plan)).unwrap_or_default();
            s.push('\n');
            s
        }
        ApplyFormat::Text => to_text(&plan, args.apply, &written),
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout.write_all(out.as_bytes()) {
        eprintln!("conductor apply: writing the report: {err}");
        return EXIT_USAGE;
    }
    if plan.all_applied() && !write_failed {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}

/// The JSON report of issue 10's shape.
pub fn to_json(plan: &EditPlan) -> Value {
    let blocks: Vec<Value> = plan
        .blocks
        .iter()
        .map(|b| {
            let (status, stage, lines) = match &b.status {
                BlockStatus::Applied {
                    stage,
                    before,
                    after,
                } => (
                    "applied",
                    json!(stage.name()),
                    json!({"before": before, "after": after}),
                ),
                BlockStatus::Noop => ("noop", Value::Null, Value::Null),
                BlockStatus::Refused(_) => ("refused", Value::Null, Value::Null),
            };
            let (candidates, nearest) = match &b.status {
                BlockStatus::Refused(Refusal::Ambiguous { candidates, .. }) => {
                    (json!(candidates), json!([]))
                }
                BlockStatus::Refused(Refusal::NotFound(Some(n))) => (
                    json!([]),
                    Value::Array(
                        n.lines
                            .iter()
                            .map(|(line, text)| json!({"line": line, "text": text}))
                            .collect(),
                    ),
                ),
                _ => (json!([]), json!([])),
            };
            json!({
                "index": b.index,
                "file": b.file,
                "status": status,
                "stage": stage,
                "reason": b.reason(),
                "lines": lines,
                "candidates": candidates,
                "nearest": nearest,
            })
        })
        .collect();
    let files: Vec<Value> = plan
        .files
        .iter()
        .map(|f| json!({"file": f.path.relative, "diff": f.diff()}))
        .collect();
    json!({"blocks": blocks, "files": files})
}

fn to_text(plan: &EditPlan, applied: bool, written: &[String]) -> String {
    let mut out = String::new();
    for f in &plan.files {
        out.push_str(&f.diff());
    }
    if !plan.files.is_empty() {
        out.push('\n');
    }
    let (mut ok, mut noop, mut refused) = (0, 0, 0);
    for b in &plan.blocks {
        match &b.status {
            BlockStatus::Applied {
                stage,
                before,
                after,
            } => {
                ok += 1;
                out.push_str(&format!(
                    "block {} {}: applied ({} match), lines {before} -> {after}\n",
                    b.index,
                    b.file,
                    stage.name()
                ));
            }
            BlockStatus::Noop => {
                noop += 1;
                out.push_str(&format!(
                    "block {} {}: no-op: {}\n",
                    b.index,
                    b.file,
                    b.reason().unwrap_or_default()
                ));
            }
            BlockStatus::Refused(refusal) => {
                refused += 1;
                out.push_str(&format!(
                    "block {} {}: refused: {}\n",
                    b.index,
                    b.file,
                    refusal.message(&b.file)
                ));
                if let Refusal::NotFound(Some(n)) = refusal {
                    for (line, text) in &n.lines {
                        out.push_str(&format!("    {line:>5} | {text}\n"));
                    }
                }
            }
        }
    }
    out.push_str(&format!("{ok} applied, {noop} no-op, {refused} refused; "));
    if applied {
        out.push_str(&format!("{} file(s) written\n", written.len()));
    } else if plan.files.is_empty() {
        out.push_str("nothing to write\n");
    } else {
        out.push_str(&format!(
            "{} file(s) would change (run with --apply to write them)\n",
            plan.files.len()
        ));
    }
    out
}
