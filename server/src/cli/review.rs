//! `conductor review [PATH… | --diff REF]`: the review stage on its own — on existing code
//! (every finding) or on a git diff against a revision (only what the diff introduced, and
//! what it fixed) — with the model review when a model is configured. Text, JSON or SARIF
//! (the scan's SARIF writer, with the model's findings added as results of their own rules).
//! Each review is journalled as a run of kind `review` (`conductor runs` lists it with its
//! model usage); the model's verdicts on static findings are shown beside them.
//!
//! Exit codes: 0 no new finding at or above `--fail-on`; 1 one or more; 2 a usage or
//! configuration error (a revision git does not know).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};
use crate::orchestrator::review::{
    ReviewRecord, ReviewTarget, StandaloneReview, changes_for, journal_review, review_files,
};
use crate::orchestrator::{FindingStatus, ReviewFinding};
use crate::security::{FileReport, ScanReport, Severity};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewFormat {
    /// For people.
    Text,
    /// `{"files", "findings", "model_review"}`.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

/// `conductor review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Files or folders to review as they are (default: the workspace).
    pub paths: Vec<PathBuf>,
    /// Review the working tree's changes against this git revision instead.
    #[arg(long, value_name = "REF", conflicts_with = "paths")]
    pub diff: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReviewFormat,
    /// Exit 1 when a new finding is at least this severe.
    #[arg(long, value_enum, default_value = "low")]
    pub fail_on: super::scan::FailOn,
    /// Skip the model review even when a model is configured.
    #[arg(long)]
    pub no_model: bool,
}

/// Runs `conductor review`.
pub fn run(args: &ReviewArgs) -> ExitCode {
    ExitCode::from(review(args))
}

fn review(args: &ReviewArgs) -> u8 {
    let start = args
        .paths
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    let root = super::run::root_of(&start);
    let mut config = match super::run::load(&root, "review") {
        Ok(config) => config,
        Err(code) => return code,
    };
    if args.no_model {
        config.review.model = false;
    }
    let target = match &args.diff {
        Some(rev) => ReviewTarget::Diff(rev.clone()),
        None => ReviewTarget::Paths(args.paths.clone()),
    };
    let files = match changes_for(&root, &target, &config.security) {
        Ok(files) => files,
        Err(err) => {
            eprintln!("conductor review: {err:#}");
            return EXIT_USAGE;
        }
    };
    let models = if config.review.model {
        match super::run::models(&config, "review") {
            Ok(models) => models,
            Err(code) => return code,
        }
    } else {
        None
    };
    let runtime = match super::run::runtime("review") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let goal = match &target {
        ReviewTarget::Diff(rev) => format!("the changes since {rev}"),
        ReviewTarget::Paths(_) => "the existing code".to_string(),
    };
    let id = format!("review-{}", crate::journal::new_run_id());
    let (result, journalled) = runtime.block_on(async {
        let run = match &models {
            Some(m) => m.new_run(id.clone()),
            None => crate::llm::Run::new(
                id.clone(),
                crate::llm::BudgetLimits::from(&config.model.budget),
            ),
        };
        let client = models
            .as_ref()
            .map(|m| m.for_agent(crate::llm::AgentRole::Security).clone());
        let result = review_files(
            files,
            &goal,
            &config.security,
            &config.review,
            client.as_ref(),
            &run,
        )
        .await;
        let total = run.budget.total();
        let message = format!(
            "{} finding(s) in {} file(s); model review: {} — {}",
            result.findings.len(),
            result.files.len(),
            result.model_review.status,
            result.model_review.message
        );
        let record = ReviewRecord {
            id: &id,
            goal: &format!("a security review of {goal}"),
            selection: None,
            config_digest: crate::editor::text_hash(format!("{config:?}").as_bytes()),
            findings: &result.findings,
            model_review: &result.model_review,
            proposed: result.proposed,
            responses: &result.responses,
            failures: &result.failures,
            client: client.as_ref(),
            usage: crate::journal::UsageTotals {
                prompt_tokens: total.input_tokens,
                completion_tokens: total.output_tokens,
                cost_usd: total.cost_usd,
            },
            message: &message,
            cancelled: false,
        };
        let journalled = journal_review(&root, &record)
            .inspect_err(|err| eprintln!("conductor review: journalling the review {id}: {err}"))
            .ok();
        (result, journalled)
    });
    let body = match args.format {
        ReviewFormat::Text => {
            let mut text = to_text(&result);
            if let Some(path) = &journalled {
                text.push_str(&format!("Journal: {} (`conductor runs`)\n", path.display()));
            }
            text
        }
        ReviewFormat::Json => {
            let mut value = to_json(&result);
            if journalled.is_some() {
                value["run_id"] = json!(id);
            }
            format!("{value:#}\n")
        }
        ReviewFormat::Sarif => format!("{:#}\n", to_sarif(&result, &config.security)),
    };
    print!("{body}");
    // A review is a run in the journal: it counts against `[journal]` like any other.
    if journalled.is_some() {
        super::run::enforce_retention(&root, &config.journal, "review");
    }
    use super::scan::FailOn;
    let threshold = match args.fail_on {
        FailOn::Info => Some(Severity::Info),
        FailOn::Low => Some(Severity::Low),
        FailOn::Medium => Some(Severity::Medium),
        FailOn::High => Some(Severity::High),
        FailOn::Critical => Some(Severity::Critical),
        FailOn::Never => None,
    };
    let failing = threshold.is_some_and(|t| {
        result
            .findings
            .iter()
            .any(|f| f.status == FindingStatus::New && f.severity >= t)
    });
    if failing { EXIT_FINDINGS } else { EXIT_OK }
}

fn status(f: &ReviewFinding) -> &'static str {
    match f.status {
        FindingStatus::New => "new",
        FindingStatus::Fixed => "fixed",
        FindingStatus::Remaining => "remaining",
    }
}

/// The review for people.
pub fn to_text(review: &StandaloneReview) -> String {
    let mut out = format!("Reviewed {} file(s)\n", review.files.len());
    for f in &review.findings {
        out.push_str(&format!(
            "  {:<5} {:<6} {}:{} {} {}: {}\n",
            status(f),
            f.source,
            f.file,
            f.line,
            f.severity.as_str(),
            f.rule_id,
            f.message
        ));
        if let (Some(verdict), "static") = (&f.verdict, f.source.as_str()) {
            out.push_str(&format!("        model verdict: {}\n", verdict.describe()));
        }
    }
    if review.findings.is_empty() {
        out.push_str("  no findings\n");
    }
    out.push_str(&format!(
        "Model review: {} — {}\n",
        review.model_review.status, review.model_review.message
    ));
    out
}

/// The review as JSON.
pub fn to_json(review: &StandaloneReview) -> Value {
    json!({
        "files": review.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
        "findings": review.findings,
        "model_review": review.model_review,
    })
}

/// The review as SARIF: the new static findings through the scan's writer, then one result
/// per model finding (rule `model/CWE-…`, located by its line).
pub fn to_sarif(review: &StandaloneReview, settings: &crate::security::SecuritySettings) -> Value {
    let mut report = ScanReport::default();
    for file in &review.files {
        let Some(language) = crate::syntax::Language::for_path(std::path::Path::new(&file.path))
        else {
            continue;
        };
        let Some(tree) = language.parse(&file.after) else {
            continue;
        };
        let wanted: Vec<(&str, usize)> = review
            .findings
            .iter()
            .filter(|f| {
                f.source == "static" && f.status == FindingStatus::New && f.file == file.path
            })
            .map(|f| (f.rule_id.as_str(), f.line))
            .collect();
        let findings: Vec<_> = crate::security::scan(language, &file.after, &tree, settings)
            .into_iter()
            .filter(|f| {
                let line = crate::security::report::line_col(&file.after, f.range.start).0;
                wanted.contains(&(f.rule_id, line))
            })
            .collect();
        report.files.push(FileReport {
            path: PathBuf::from(&file.path),
            text: file.after.clone(),
            findings,
        });
    }
    let mut sarif = crate::security::report::to_sarif(&report);
    let model: Vec<Value> = review
        .findings
        .iter()
        .filter(|f| f.source == "model")
        .map(|f| {
            json!({
                "ruleId": f.rule_id,
                "level": match f.severity {
                    Severity::Critical | Severity::High => "error",
                    Severity::Medium => "warning",
                    _ => "note",
                },
                "message": { "text": f.message },
                "locations": [{ "physicalLocation": {
                    "artifactLocation": { "uri": f.file },
                    "region": { "startLine": f.line },
                }}],
                "properties": { "source": "model review" },
            })
        })
        .collect();
    if let Some(results) = sarif
        .pointer_mut("/runs/0/results")
        .and_then(Value::as_array_mut)
    {
        results.extend(model);
    }
    sarif
}
