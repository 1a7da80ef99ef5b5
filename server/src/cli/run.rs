//! `conductor run` (a goal taken through plan, code, review and test without an editor),
//! `conductor fix` (a run whose goal is "fix the security findings"; mechanical fixes need no
//! model) and `conductor runs` (the journalled runs).
//!
//! Both runs print the plan, the unified diff, each block and decision, the review and test
//! outcomes, usage and cost, and where the journal is. They write files only with `--apply`,
//! through the file-system editor port, which refuses a file whose bytes changed since the run
//! read it. JSON (`--format json`): `{"run_id", "status", "message", "plan", "plan_source",
//! "edits": [{"file", "diff", "applied"}], "blocks", "decisions", "findings", "model_review":
//! {"status", "message"}, "skipped",
//! "tests", "usage": {"prompt_tokens", "completion_tokens", "cost_usd"}, "journal",
//! "plan_file"}`, and with `--from-plan`, `"from_plan": {"run_id", "changes"}`.
//!
//! `conductor run --from-plan RUN_ID` runs an earlier run's plan as its plan document now
//! says (see `orchestrator::plan_doc`); a broken document is refused, naming the line, before
//! any run starts.
//!
//! Exit codes: 0 done with no unresolved high finding and every requested write done; 1 a
//! failed or cancelled run, a change that leaves a high or critical finding, a change whose
//! tests fail (tests or a build it broke, tests it weakened, a test command that could not run
//! to the end; tests that failed before the change as well do not count), or a refused write; 2 a usage or configuration error (no model configured for `run`: which key to set).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};
use crate::config::{self, CONFIG_FILE, Config};
use crate::context::WorkspaceIndex;
use crate::editor::FsEditor;
use crate::journal::{self, RunState};
use crate::llm::Models;
use crate::orchestrator::{
    FindingStatus, Orchestrator, RunEnv, RunKind, RunOutcome, RunRequest, Selection, plan_doc,
};

/// Output formats of the run commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    /// For people.
    Text,
    /// For scripts.
    Json,
}

/// Arguments of `conductor run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to do, in words.
    #[arg(long, required_unless_present = "from_plan")]
    pub goal: Option<String>,
    /// Run the plan of an earlier run (`--plan-only`, or the editor's "Plan only") as its
    /// `.conductor/runs/<id>/plan.md` now says: ticked steps only, in the document's order.
    #[arg(
        long,
        value_name = "RUN_ID",
        conflicts_with_all = ["goal", "file", "lines", "plan_only", "no_plan"]
    )]
    pub from_plan: Option<String>,
    /// The file the goal is about.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The lines of `--file` (`A-B`, 1-based, inclusive).
    #[arg(long, requires = "file")]
    pub lines: Option<String>,
    /// Write the change (each file atomically, and only if it is unchanged since the run read it).
    #[arg(long)]
    pub apply: bool,
    /// With `--apply`: write the change even when its tests fail (or could not run to the end).
    #[arg(long, requires = "apply")]
    pub apply_failing_tests: bool,
    /// Stop after the plan.
    #[arg(long)]
    pub plan_only: bool,
    /// Skip the planner: one coder step on `--file`.
    #[arg(long)]
    pub no_plan: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: RunFormat,
    /// The workspace root (default: the one that holds `--file`, else the current folder's).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

/// Arguments of `conductor fix`.
#[derive(Debug, Args)]
pub struct FixArgs {
    /// Files or folders whose findings to fix; default: `.`.
    pub paths: Vec<PathBuf>,
    /// Write the change.
    #[arg(long)]
    pub apply: bool,
    /// With `--apply`: write the change even when its tests fail (or could not run to the end).
    #[arg(long, requires = "apply")]
    pub apply_failing_tests: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: RunFormat,
}

/// Arguments of `conductor runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: RunFormat,
    /// The workspace root (default: the current folder's).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

/// The workspace that holds `path` (as `conductor scan` finds it), canonical.
pub(super) fn root_of(path: &Path) -> PathBuf {
    let root = super::scan::scan_root(path);
    root.canonicalize().unwrap_or(root)
}

pub(super) fn load(root: &Path, command: &str) -> Result<Config, u8> {
    let (config, problems) = config::load_workspace(root);
    if problems.is_empty() {
        return Ok(config);
    }
    for p in &problems {
        eprintln!("conductor {command}: configuration error: {p}");
    }
    Err(EXIT_USAGE)
}

pub(super) fn runtime(command: &str) -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| {
            eprintln!("conductor {command}: cannot start the async runtime: {err}");
            EXIT_USAGE
        })
}

pub(super) fn models(config: &Config, command: &str) -> Result<Option<Arc<Models>>, u8> {
    if !config.model.is_configured() {
        return Ok(None);
    }
    crate::llm::client::install_crypto_provider();
    Models::from_settings(&config.model)
        .map(|m| Some(Arc::new(m)))
        .map_err(|err| {
            eprintln!("conductor {command}: the model settings cannot work: {err}");
            EXIT_USAGE
        })
}

/// Runs `conductor run`.
pub fn run(args: &RunArgs) -> ExitCode {
    ExitCode::from(run_goal(args))
}

fn run_goal(args: &RunArgs) -> u8 {
    if let Some(run_id) = &args.from_plan {
        return run_from_plan(args, run_id);
    }
    let root = match (&args.root, &args.file) {
        (Some(root), _) => root.canonicalize().unwrap_or_else(|_| root.clone()),
        (None, Some(file)) => root_of(file),
        (None, None) => root_of(Path::new(".")),
    };
    let selection = match &args.file {
        None => None,
        Some(file) => {
            let Ok(real) = file.canonicalize() else {
                eprintln!("conductor run: --file {}: no such file", file.display());
                return EXIT_USAGE;
            };
            if !real.starts_with(&root) {
                eprintln!(
                    "conductor run: --file {} is outside the workspace {}",
                    file.display(),
                    root.display()
                );
                return EXIT_USAGE;
            }
            let lines = match args.lines.as_deref().map(parse_lines).transpose() {
                Ok(lines) => lines,
                Err(err) => {
                    eprintln!("conductor run: --lines: {err}");
                    return EXIT_USAGE;
                }
            };
            Some(Selection { file: real, lines })
        }
    };
    let goal = args.goal.clone().unwrap_or_default();
    if goal.trim().is_empty() {
        eprintln!("conductor run: --goal is empty: say what the run should do");
        return EXIT_USAGE;
    }
    let request = RunRequest {
        kind: RunKind::Goal,
        goal,
        selection,
        paths: Vec::new(),
        plan_only: args.plan_only,
        no_plan: args.no_plan,
        apply: args.apply,
        follow: None,
        remove_line: None,
        apply_failing_tests: args.apply_failing_tests,
    };
    start_goal_run(args, root, request, None)
}

/// `conductor run --from-plan RUN_ID`: the edited plan document is read and checked before
/// anything starts, so a broken one (its error names the line) starts no run and writes no
/// journal.
fn run_from_plan(args: &RunArgs, run_id: &str) -> u8 {
    let root = match &args.root {
        Some(root) => root.canonicalize().unwrap_or_else(|_| root.clone()),
        None => root_of(Path::new(".")),
    };
    let (original, doc, follow) = match plan_doc::load_for_run(&root, run_id) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("conductor run --from-plan: {err}");
            return EXIT_USAGE;
        }
    };
    let changes = follow.changes.clone();
    let mut request = original.request(&doc, follow, args.apply);
    request.apply_failing_tests = args.apply_failing_tests;
    start_goal_run(args, root, request, Some((run_id, changes)))
}

/// Starts a goal run from the command line: configuration, model, index, then the run.
fn start_goal_run(
    args: &RunArgs,
    root: PathBuf,
    request: RunRequest,
    followed: Option<(&str, Vec<String>)>,
) -> u8 {
    let config = match load(&root, "run") {
        Ok(config) => config,
        Err(code) => return code,
    };
    let models = match models(&config, "run") {
        Ok(Some(models)) => models,
        Ok(None) => {
            eprintln!(
                "conductor run: no model is configured. Set `[model] base_url` and `model` in {} (for example base_url = \"http://127.0.0.1:11434/v1\", model = \"qwen2.5-coder:7b\" for a local Ollama; see docs/providers.md), then check it with `conductor doctor`. `conductor fix` works without a model.",
                root.join(CONFIG_FILE).display()
            );
            return EXIT_USAGE;
        }
        Err(code) => return code,
    };
    let runtime = match runtime("run") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let index = {
        let settings = config.context.clone();
        match WorkspaceIndex::build(&root, &settings) {
            Ok(index) => Some(Arc::new(index)),
            Err(err) => {
                eprintln!("conductor run: no context index (the run goes on without one): {err:#}");
                None
            }
        }
    };
    execute(
        &runtime,
        root,
        config,
        Some(models),
        index,
        request,
        Output {
            format: args.format,
            followed,
        },
    )
}

/// Runs `conductor fix`.
pub fn fix(args: &FixArgs) -> ExitCode {
    ExitCode::from(run_fix(args))
}

fn run_fix(args: &FixArgs) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    for p in &paths {
        if !p.exists() {
            eprintln!("conductor fix: {}: no such file or folder", p.display());
            return EXIT_USAGE;
        }
    }
    let root = root_of(&paths[0]);
    let config = match load(&root, "fix") {
        Ok(config) => config,
        Err(code) => return code,
    };
    let models = match models(&config, "fix") {
        Ok(models) => models,
        Err(code) => return code,
    };
    let runtime = match runtime("fix") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let request = RunRequest {
        kind: RunKind::Fix,
        goal: format!(
            "fix the security findings in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        selection: None,
        paths,
        plan_only: false,
        no_plan: false,
        apply: args.apply,
        remove_line: None,
        follow: None,
        apply_failing_tests: args.apply_failing_tests,
    };
    execute(
        &runtime,
        root,
        config,
        models,
        None,
        request,
        Output {
            format: args.format,
            followed: None,
        },
    )
}

/// How a run's outcome is printed: the format, and for a run that follows an edited plan, the
/// run it came from and the developer's changes.
struct Output<'a> {
    format: RunFormat,
    followed: Option<(&'a str, Vec<String>)>,
}

fn execute(
    runtime: &tokio::runtime::Runtime,
    root: PathBuf,
    config: Config,
    models: Option<Arc<Models>>,
    index: Option<Arc<WorkspaceIndex>>,
    request: RunRequest,
    output: Output<'_>,
) -> u8 {
    let Output { format, followed } = output;
    let command = match request.kind {
        RunKind::Goal => "run",
        RunKind::Fix => "fix",
    };
    let apply = request.apply;
    let retention = config.journal.clone();
    let journal_root = root.clone();
    let env = RunEnv {
        root,
        config: Arc::new(config),
        models,
        open: Arc::new(HashMap::new()),
        index,
        editor: Arc::new(FsEditor),
    };
    let outcome = runtime.block_on(async move {
        let orchestrator = Orchestrator::new();
        let handle = orchestrator.start(env, request)?;
        Ok::<_, crate::orchestrator::StartError>(handle.outcome.await)
    });
    let outcome = match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(join)) => {
            eprintln!("conductor {command}: the run stopped unexpectedly: {join}");
            return EXIT_FINDINGS;
        }
        Err(err) => {
            eprintln!("conductor {command}: {err}");
            return EXIT_USAGE;
        }
    };
    let body = match (format, followed) {
        (RunFormat::Text, None) => to_text(&outcome, apply),
        (RunFormat::Text, Some((from, changes))) => {
            let changes = if changes.is_empty() {
                "no changes".to_string()
            } else {
                changes.join("; ")
            };
            format!(
                "Following the plan of run {from}, as edited: {changes}\n{}",
                to_text(&outcome, apply)
            )
        }
        (RunFormat::Json, followed) => {
            let mut json = to_json(&outcome);
            if let (Some((from, changes)), Some(object)) = (followed, json.as_object_mut()) {
                object.insert(
                    "from_plan".into(),
                    json!({ "run_id": from, "changes": changes }),
                );
            }
            format!("{json:#}\n")
        }
    };
    print!("{body}");
    enforce_retention(&journal_root, &retention, command);
    exit_code(&outcome)
}

/// Applies `[journal]` retention and says on stderr what it removed (stdout may be JSON).
pub(super) fn enforce_retention(
    root: &Path,
    settings: &journal::retention::JournalSettings,
    command: &str,
) {
    match journal::retention::enforce(root, settings) {
        Ok(removed) => {
            if let Some(summary) = removed.summary() {
                eprintln!("conductor {command}: {summary}");
            }
            for w in &removed.warnings {
                eprintln!("conductor {command}: {w}");
            }
        }
        Err(err) => eprintln!(
            "conductor {command}: journal retention could not list {}: {err}",
            journal::runs_dir(root).display()
        ),
    }
}

/// The exit code of a finished run.
pub fn exit_code(outcome: &RunOutcome) -> u8 {
    let refused = outcome
        .files
        .iter()
        .any(|f| matches!(f.applied, Some(Err(_))));
    // A change that breaks the tests (or the build, or weakens the tests), or whose tests
    // could not run to the end, is not a success even when the run itself finished.
    if outcome.state != RunState::Done
        || outcome.has_unresolved_high()
        || refused
        || outcome.tests.change_fails()
    {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// `A-B` (or `A`) → 1-based inclusive lines.
fn parse_lines(spec: &str) -> Result<(usize, usize), String> {
    let (a, b) = spec.split_once('-').unwrap_or((spec, spec));
    let parse = |s: &str| {
        s.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("`{spec}` is not a line range such as 10-24"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if b < a {
        return Err(format!("`{spec}` ends before it starts"));
    }
    Ok((a, b))
}

/// The outcome for people.
pub fn to_text(outcome: &RunOutcome, apply: bool) -> String {
    let mut out = format!(
        "Run {}: {} — {}\n",
        outcome.run_id, outcome.state, outcome.message
    );
    if let Some(plan) = &outcome.plan {
        out.push_str(&format!(
            "\nPlan ({}): {}\n",
            outcome.plan_source.as_deref().unwrap_or("model"),
            plan.summary
        ));
        for step in &plan.steps {
            let after = if step.depends_on.is_empty() {
                String::new()
            } else {
                format!(" (after {})", step.depends_on.join(", "))
            };
            out.push_str(&format!("  {} {}{after}\n", step.id, step.title));
        }
        for risk in &plan.risks {
            out.push_str(&format!("  risk: {risk}\n"));
        }
        for t in &plan.tradeoffs {
            out.push_str(&format!("  trade-off: {t}\n"));
        }
    }
    if !outcome.files.is_empty() {
        out.push_str("\nChange:\n");
        for file in &outcome.files {
            out.push_str(&file.diff());
        }
    }
    if !outcome.blocks.is_empty() {
        out.push_str("\nBlocks:\n");
        for b in &outcome.blocks {
            let detail = match (&b.lines, &b.reason) {
                (Some([a, z]), _) => format!("lines {a}-{z}"),
                (_, Some(reason)) => reason.clone(),
                _ => String::new(),
            };
            out.push_str(&format!(
                "  {} #{} (attempt {}) {}: {} {detail}\n",
                b.step, b.index, b.attempt, b.file, b.status
            ));
        }
    }
    if !outcome.decisions.is_empty() {
        out.push_str("\nDecisions:\n");
        for d in &outcome.decisions {
            out.push_str(&format!(
                "  {} {} ({} {}): {}\n    why: {}\n",
                d.step, d.file, d.agent, d.model, d.summary, d.rationale
            ));
            if !d.alternatives.is_empty() {
                out.push_str(&format!(
                    "    alternatives: {}\n",
                    d.alternatives.join("; ")
                ));
            }
            if !d.tradeoffs.is_empty() {
                out.push_str(&format!("    trade-offs: {}\n", d.tradeoffs.join("; ")));
            }
        }
    }
    if !outcome.skipped.is_empty() {
        out.push_str("\nNot done:\n");
        for s in &outcome.skipped {
            out.push_str(&format!("  {}: {}\n", s.step, s.reason));
        }
    }
    if outcome.state == RunState::Done && !outcome.files.is_empty() || !outcome.findings.is_empty()
    {
        let count = |s: FindingStatus| outcome.findings.iter().filter(|f| f.status == s).count();
        out.push_str(&format!(
            "\nReview (static scan of the changed files): {} new, {} fixed, {} remaining\n",
            count(FindingStatus::New),
            count(FindingStatus::Fixed),
            count(FindingStatus::Remaining)
        ));
        for f in &outcome.findings {
            let status = match f.status {
                FindingStatus::New => "new",
                FindingStatus::Fixed => "fixed",
                FindingStatus::Remaining => "remaining",
            };
            out.push_str(&format!(
                "  {status:<9} {}:{} {} {}: {}\n",
                f.file,
                f.line,
                f.severity.as_str(),
                f.rule_id,
                f.message
            ));
        }
    }
    out.push_str(&format!(
        "Model review: {} — {}\n",
        outcome.model_review.status, outcome.model_review.message
    ));
    out.push_str(&format!(
        "\nTests: {} — {}\n",
        outcome.tests.status, outcome.tests.message
    ));
    if let Some(report) = &outcome.tests.report {
        if !report.command.is_empty() {
            out.push_str(&format!(
                "  command: {} (sandbox: {})\n",
                report.command.join(" "),
                report.sandbox
            ));
        }
        for f in &report.failed {
            let at = f
                .location
                .as_ref()
                .map(|l| format!(" at {}:{}:{}", l.file, l.line, l.column))
                .unwrap_or_default();
            out.push_str(&format!("  failed    {}{at}\n", f.name));
        }
        for name in &report.failed_before {
            out.push_str(&format!("  failed before the change too: {name}\n"));
        }
        for name in &report.flaky {
            out.push_str(&format!("  flaky     {name}\n"));
        }
        for w in &report.weakened {
            out.push_str(&format!("  weakened  {w}\n"));
        }
        for line in &report.dropped_lines {
            out.push_str(&format!("  dropped (addressed the model): {line}\n"));
        }
    }
    out.push_str(&format!(
        "Usage: {} prompt + {} completion tokens, ${:.4}\n",
        outcome.usage.prompt_tokens, outcome.usage.completion_tokens, outcome.usage.cost_usd
    ));
    out.push_str(&format!("Journal: {}\n", outcome.journal.display()));
    if let Some(plan) = &outcome.plan_file {
        out.push_str(&format!("Plan: {}\n", plan.display()));
    }
    if !outcome.files.is_empty() {
        if apply {
            for f in &outcome.files {
                match &f.applied {
                    Some(Ok(())) => out.push_str(&format!("Written: {}\n", f.path)),
                    Some(Err(why)) => out.push_str(&format!("Not written: {}: {why}\n", f.path)),
                    None => out.push_str(&format!("Not written: {}\n", f.path)),
                }
            }
        } else {
            out.push_str("Nothing was written: run again with --apply to write the change.\n");
        }
    }
    out
}

/// The outcome as JSON.
pub fn to_json(outcome: &RunOutcome) -> Value {
    json!({
        "run_id": outcome.run_id,
        "status": outcome.state.as_str(),
        "message": outcome.message,
        "plan": outcome.plan,
        "plan_source": outcome.plan_source,
        "edits": outcome.files.iter().map(|f| json!({
            "file": f.path,
            "diff": f.diff(),
            "applied": match &f.applied {
                None => Value::Null,
                Some(Ok(())) => json!(true),
                Some(Err(why)) => json!(why),
            },
        })).collect::<Vec<_>>(),
        "blocks": outcome.blocks,
        "decisions": outcome.decisions,
        "findings": outcome.findings,
        "model_review": outcome.model_review,
        "skipped": outcome.skipped,
        "tests": outcome.tests,
        "usage": outcome.usage,
        "journal": outcome.journal,
        "plan_file": outcome.plan_file,
    })
}

/// Runs `conductor runs`.
pub fn runs(args: &RunsArgs) -> ExitCode {
    let root = match &args.root {
        Some(root) => root.clone(),
        None => root_of(Path::new(".")),
    };
    // Retention before the listing, so the list shows what is kept. A configuration problem
    // does not stop the listing: it is reported and the defaults stand.
    let (config, problems) = config::load_workspace(&root);
    for p in &problems {
        eprintln!("conductor runs: configuration error: {p}");
    }
    enforce_retention(&root, &config.journal, "runs");
    let (runs, warnings) = match journal::list(&root) {
        Ok(found) => found,
        Err(err) => {
            eprintln!(
                "conductor runs: cannot read {}: {err}",
                journal::runs_dir(&root).display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for w in &warnings {
        eprintln!("conductor runs: {w}");
    }
    match args.format {
        RunFormat::Json => println!("{:#}", json!(runs)),
        RunFormat::Text => {
            if runs.is_empty() {
                println!(
                    "no runs journalled under {}",
                    journal::runs_dir(&root).display()
                );
            }
            for r in &runs {
                for w in &r.warnings {
                    eprintln!("conductor runs: {w}");
                }
                let review = if r.decisions == 0 {
                    "-".to_string()
                } else {
                    format!("reviewed {}/{}", r.reviewed, r.decisions)
                };
                println!(
                    "{}  {:<10} {:<4} ${:.4}  {:<14} {}{}",
                    r.id,
                    r.state.as_str(),
                    r.kind,
                    r.usage.cost_usd,
                    review,
                    r.goal,
                    if r.files.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", r.files.join(", "))
                    }
                );
            }
        }
    }
    ExitCode::from(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ranges_parse_and_bad_ones_say_why() {
        assert_eq!(parse_lines("10-24"), Ok((10, 24)));
        assert_eq!(parse_lines("7"), Ok((7, 7)));
        assert!(parse_lines("24-10").unwrap_err().contains("ends before"));
        assert!(parse_lines("0-3").is_err());
        assert!(parse_lines("a-b").is_err());
    }
}
