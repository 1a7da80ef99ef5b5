//! The review stage of a run: the static security scan of every changed file before and after
//! the change: a finding is new when the change introduced it
//! (one that merely moved with its text is not), fixed when the change removed it. With a
//! model configured, the security agent ([`crate::agents::reviewer`]) adds the findings it
//! can defend through an independent refutation check; it never drops a static finding.

use std::collections::HashMap;

use super::{ChangedFile, FindingStatus, FindingVerdict, ModelReviewOutcome, ReviewFinding};
use crate::agents::reviewer::{self, ReviewInput, ReviewedFile};
use crate::llm::protocol::{AskError, ModelFinding, ModelSeverity, StaticVerdictKind};
use crate::llm::{ChatResponse, LlmError, ModelClient, Run};
use crate::security::Severity;
use crate::security::{Finding, SecuritySettings, report::line_col, scan};
use crate::syntax::Language;

/// `[review]`: how the model review's findings are kept.
#[derive(Debug, Clone, serde::Deserialize, PartialEq)]
#[serde(default)]
pub struct ReviewSettings {
    /// A model finding is kept only when its refutation check leaves it a confidence above
    /// this (0.0 to 1.0).
    pub min_confidence: f64,
    /// Whether the model review runs when a model is configured.
    pub model: bool,
    /// The most model findings checked per review (each costs a refutation request); the
    /// rest, the least severe, are dropped and counted.
    pub max_model_findings: usize,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        Self {
            min_confidence: 0.8,
            model: true,
            max_model_findings: 8,
        }
    }
}

/// The identity of a finding that survives its text moving: the rule and the flagged code with
/// whitespace collapsed.
fn fingerprint(finding: &Finding, text: &str) -> (String, String) {
    let code = text.get(finding.range.clone()).unwrap_or_default();
    (
        finding.rule_id.to_string(),
        code.split_whitespace().collect::<Vec<_>>().join(" "),
    )
}

fn findings_of(path: &str, text: &str, settings: &SecuritySettings) -> Vec<Finding> {
    let Some(language) = Language::for_path(std::path::Path::new(path)) else {
        return Vec::new();
    };
    let Some(tree) = language.parse(text) else {
        return Vec::new();
    };
    scan(language, text, &tree, settings)
}

fn record(path: &str, text: &str, f: &Finding, status: FindingStatus) -> ReviewFinding {
    ReviewFinding {
        file: path.to_string(),
        line: line_col(text, f.range.start).0,
        rule_id: f.rule_id.to_string(),
        severity: f.severity,
        message: f.message.clone(),
        status,
        source: "static".into(),
        detail: Some(crate::security::report::hover_markdown(f, text)),
        verdict: None,
    }
}

/// Re-scans each changed file and compares with its text before the change. With
/// `with_remaining`, the findings the change left in place are reported too (a fix run's
/// "not fixed").
pub fn static_review(
    files: &[ChangedFile],
    settings: &SecuritySettings,
    with_remaining: bool,
) -> Vec<ReviewFinding> {
    let mut out = Vec::new();
    for file in files {
        let before_text = file.before.as_deref().unwrap_or("");
        // The two scans are independent: one on another thread halves the stage's latency.
        let (before, after) = std::thread::scope(|scope| {
            let before = scope.spawn(|| findings_of(&file.path, before_text, settings));
            let after = findings_of(&file.path, &file.after, settings);
            (before.join().unwrap_or_default(), after)
        });
        let mut unmatched: HashMap<(String, String), Vec<&Finding>> = HashMap::new();
        for f in &before {
            unmatched
                .entry(fingerprint(f, before_text))
                .or_default()
                .push(f);
        }
        for f in &after {
            let key = fingerprint(f, &file.after);
            match unmatched.get_mut(&key).and_then(Vec::pop) {
                Some(_) if with_remaining => {
                    out.push(record(&file.path, &file.after, f, FindingStatus::Remaining))
                }
                Some(_) => {}
                None => out.push(record(&file.path, &file.after, f, FindingStatus::New)),
            }
        }
        let mut fixed: Vec<&Finding> = unmatched.into_values().flatten().collect();
        fixed.sort_by_key(|f| f.range.start);
        out.extend(
            fixed
                .into_iter()
                .map(|f| record(&file.path, before_text, f, FindingStatus::Fixed)),
        );
    }
    out
}

/// The journal event of a review finding; a static finding's model verdict is in its message
/// ("…; model verdict: the model agrees (confidence 0.90): …").
pub fn finding_event(f: &ReviewFinding) -> crate::journal::Event {
    let message = match (&f.verdict, f.source.as_str()) {
        (Some(v), "static") => format!("{}; model verdict: {}", f.message, v.describe()),
        _ => f.message.clone(),
    };
    crate::journal::Event::Finding {
        file: f.file.clone(),
        line: f.line,
        rule_id: f.rule_id.clone(),
        severity: f.severity.as_str().into(),
        message,
        status: serde_json::to_value(f.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    }
}

/// The model review of a change, as data: the kept findings, what became of the review, and
/// every model response and failed request (for the journal and usage).
#[derive(Debug, Clone)]
pub struct ModelReviewRun {
    /// The findings that survived their refutation check.
    pub kept: Vec<ReviewFinding>,
    /// `done`, `skipped` or `off`, with what happened.
    pub outcome: ModelReviewOutcome,
    /// Findings the model proposed (after dropping those that point nowhere or repeat a static
    /// finding).
    pub proposed: usize,
    /// Every response, in order.
    pub responses: Vec<ChatResponse>,
    /// Every request that failed, with why.
    pub failures: Vec<String>,
    /// The run was cancelled meanwhile.
    pub cancelled: bool,
    /// The model's verdicts on static findings, by the finding's `(file, line, rule)`.
    pub static_verdicts: Vec<((String, usize, String), FindingVerdict)>,
}

impl ModelReviewRun {
    /// Adds the model's verdicts to the static findings they are about. A verdict never removes
    /// a finding, whatever it says: a static finding is the analyser's, and a model that
    /// calls it a false positive is shown beside it for the user to judge.
    pub fn annotate(&self, findings: &mut [ReviewFinding]) {
        for ((file, line, rule), verdict) in &self.static_verdicts {
            if let Some(f) = findings.iter_mut().find(|f| {
                f.source == "static"
                    && f.verdict.is_none()
                    && &f.file == file
                    && f.line == *line
                    && &f.rule_id == rule
            }) {
                f.verdict = Some(verdict.clone());
            }
        }
    }
}

impl ModelReviewRun {
    fn off(message: &str) -> Self {
        Self {
            kept: Vec::new(),
            outcome: ModelReviewOutcome {
                status: "off".into(),
                message: message.into(),
            },
            proposed: 0,
            responses: Vec::new(),
            failures: Vec::new(),
            cancelled: false,
            static_verdicts: Vec::new(),
        }
    }
}

/// How one security-agent request went: its value, or why the review goes on without it.
fn settle<T>(
    answer: Result<crate::agents::Answer<T>, AskError>,
    out: &mut ModelReviewRun,
) -> Result<T, String> {
    match answer {
        Ok(answer) => {
            out.responses.extend(answer.responses);
            Ok(answer.value)
        }
        Err(AskError::Invalid {
            error, responses, ..
        }) => {
            out.responses.extend(responses);
            let why = format!(
                "its reply did not follow the protocol, even after a corrective retry: {error}"
            );
            out.failures.push(why.clone());
            Err(why)
        }
        Err(AskError::Model(err)) => {
            if matches!(err, LlmError::Cancelled) {
                out.cancelled = true;
            }
            let why = format!("the security model failed: {err}");
            out.failures.push(why.clone());
            Err(why)
        }
    }
}

/// The model review (`agents::reviewer`) of `files`, given the static findings: each finding
/// the model proposes is checked by an independent refutation request, and only those it
/// confirms above `settings.min_confidence` are kept. `client: None` (no model) or
/// `settings.model = false` is `off`; a failing review request is `skipped` and the static
/// review stands. Static findings are never changed here.
pub async fn model_review(
    client: Option<&ModelClient>,
    run: &Run,
    goal: &str,
    files: &[ChangedFile],
    static_findings: &[ReviewFinding],
    settings: &ReviewSettings,
) -> ModelReviewRun {
    let Some(client) = client else {
        return ModelReviewRun::off("no model is configured: the static review only");
    };
    if !settings.model {
        return ModelReviewRun::off("`[review] model = false`: the static review only");
    }
    let mut out = ModelReviewRun::off("");
    if files.is_empty() {
        out.outcome.message = "no change to review".into();
        return out;
    }
    // The static findings the model is shown, in the order it numbers them.
    let listed: Vec<&ReviewFinding> = static_findings
        .iter()
        .filter(|f| f.status != FindingStatus::Fixed)
        .collect();
    let input = ReviewInput {
        goal: goal.to_string(),
        files: files
            .iter()
            .map(|f| ReviewedFile {
                path: f.path.clone(),
                diff: f.diff(),
                after: f.after.clone(),
            })
            .collect(),
        static_findings: listed
            .iter()
            .map(|f| {
                format!(
                    "{}:{} {} {}: {}",
                    f.file,
                    f.line,
                    f.severity.as_str(),
                    f.rule_id,
                    f.message
                )
            })
            .collect(),
    };
    let answer = reviewer::review(client, run, &input).await;
    let report = match settle(answer, &mut out) {
        Ok(report) => report,
        Err(why) => {
            out.outcome = ModelReviewOutcome {
                status: "skipped".into(),
                message: format!("the model review was skipped ({why}); the static review stands"),
            };
            return out;
        }
    };
    // A verdict must name a finding that was listed; one number judged twice keeps the first.
    for v in &report.static_verdicts {
        let Some(f) = v.finding.checked_sub(1).and_then(|i| listed.get(i)) else {
            continue;
        };
        let key = (f.file.clone(), f.line, f.rule_id.clone());
        if out.static_verdicts.iter().any(|(k, _)| *k == key) {
            continue;
        }
        out.static_verdicts.push((
            key,
            FindingVerdict {
                verdict: match v.verdict {
                    StaticVerdictKind::Agree => "agree".into(),
                    StaticVerdictKind::FalsePositive => "likely_false_positive".into(),
                },
                confidence: v.confidence,
                reason: v.reason.clone(),
            },
        ));
    }
    // A finding must point at a line of a changed file; a repeat of a static finding adds
    // nothing.
    let mut proposed: Vec<ModelFinding> = report
        .findings
        .into_iter()
        .filter(|m| {
            files
                .iter()
                .any(|f| f.path == m.file && (m.line as usize) <= f.after.lines().count().max(1))
        })
        .filter(|m| {
            !static_findings
                .iter()
                .any(|s| s.file == m.file && s.line == m.line as usize)
        })
        .collect();
    out.proposed = proposed.len();
    proposed.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let unchecked = proposed.len().saturating_sub(settings.max_model_findings);
    proposed.truncate(settings.max_model_findings);
    let (mut refuted, mut failed_checks) = (0, 0);
    for finding in proposed {
        if run.cancel.is_cancelled() {
            out.cancelled = true;
            break;
        }
        let answer = reviewer::refute(client, run, &input, &finding).await;
        let verdict = match settle(answer, &mut out) {
            Ok(verdict) => verdict,
            Err(_) => {
                failed_checks += 1;
                continue;
            }
        };
        if !reviewer::survives(&finding, &verdict, settings.min_confidence) {
            refuted += 1;
            continue;
        }
        out.kept.push(ReviewFinding {
            file: finding.file.clone(),
            line: finding.line as usize,
            rule_id: format!("model/{}", finding.cwe),
            severity: match finding.severity {
                ModelSeverity::Low => Severity::Low,
                ModelSeverity::Medium => Severity::Medium,
                ModelSeverity::High => Severity::High,
                ModelSeverity::Critical => Severity::Critical,
            },
            message: format!(
                "{}: {} (the refutation check confirmed it: {})",
                finding.title.trim(),
                finding.explanation.trim(),
                verdict.reason.trim()
            ),
            status: FindingStatus::New,
            source: "model".into(),
            detail: Some(format!(
                "**{}** `{}` (model review)\n\n{}",
                finding.title.trim(),
                finding.cwe,
                finding.explanation.trim()
            )),
            verdict: Some(FindingVerdict {
                verdict: "confirmed".into(),
                confidence: verdict.confidence,
                reason: verdict.reason.clone(),
            }),
        });
    }
    let mut message = format!(
        "the model proposed {} finding(s): {} kept after the refutation check (confidence above {}), {refuted} refuted or not confident enough",
        out.proposed,
        out.kept.len(),
        settings.min_confidence
    );
    if unchecked > 0 {
        message.push_str(&format!(
            ", {unchecked} of the least severe not checked (`[review] max_model_findings` = {}) and dropped",
            settings.max_model_findings
        ));
    }
    if failed_checks > 0 {
        message.push_str(&format!(
            ", {failed_checks} dropped because their check failed"
        ));
    }
    if !out.static_verdicts.is_empty() {
        let doubted = out
            .static_verdicts
            .iter()
            .filter(|(_, v)| v.verdict == "likely_false_positive")
            .count();
        message.push_str(&format!(
            "; it judged {} static finding(s), {doubted} as likely false positive(s) (kept, with the verdict beside them)",
            out.static_verdicts.len()
        ));
    }
    out.outcome = ModelReviewOutcome {
        status: "done".into(),
        message,
    };
    out
}

/// What `conductor review` (and, later, the editor's "Security review") reviews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewTarget {
    /// Existing code: these files or folders (the workspace root when empty), every finding new.
    Paths(Vec<std::path::PathBuf>),
    /// A git diff: the working tree against this revision (a branch before merge, `HEAD~3`).
    Diff(String),
}

/// A review on its own, outside a run.
#[derive(Debug, Clone)]
pub struct StandaloneReview {
    /// The files reviewed, as changes (`before: None` for existing code).
    pub files: Vec<ChangedFile>,
    /// Static findings, then the model's.
    pub findings: Vec<ReviewFinding>,
    /// What became of the model review.
    pub model_review: ModelReviewOutcome,
    /// The model review's responses (for the journal and its usage).
    pub responses: Vec<ChatResponse>,
    /// Its requests that failed, with why.
    pub failures: Vec<String>,
    /// Findings the model proposed before their refutation checks.
    pub proposed: usize,
}

/// The files a target covers, as changes: existing code is a change from nothing; a diff is the
/// working tree's text against the revision's (`git show REV:path`). Files that are not UTF-8
/// text, or are gone from the working tree, are left out.
pub fn changes_for(
    root: &std::path::Path,
    target: &ReviewTarget,
    settings: &SecuritySettings,
) -> anyhow::Result<Vec<ChangedFile>> {
    use anyhow::Context;
    let change = |rel: String, before: Option<String>, after: String| ChangedFile {
        real: root.join(&rel),
        path: rel,
        before,
        after,
        base: crate::editor::Base::Missing,
        applied: None,
    };
    match target {
        ReviewTarget::Paths(paths) => {
            let paths = if paths.is_empty() {
                vec![root.to_path_buf()]
            } else {
                paths.clone()
            };
            let report = crate::security::scan_paths_in(root, &paths, settings)?;
            Ok(report
                .files
                .into_iter()
                .map(|f| {
                    let real = f.path.canonicalize().unwrap_or_else(|_| root.join(&f.path));
                    change(super::relative(root, &real), None, f.text)
                })
                .collect())
        }
        ReviewTarget::Diff(rev) => {
            if rev.starts_with('-') {
                anyhow::bail!("--diff {rev}: a revision cannot start with `-`");
            }
            let git = |args: &[&str]| {
                std::process::Command::new("git")
                    .arg("-C")
                    .arg(root)
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .with_context(|| format!("running git {}", args.join(" ")))
            };
            let listed = git(&["diff", "--name-only", "-z", "--diff-filter=AMR", rev, "--"])?;
            if !listed.status.success() {
                anyhow::bail!(
                    "git diff {rev} failed: {}",
                    String::from_utf8_lossy(&listed.stderr).trim()
                );
            }
            let mut out = Vec::new();
            for rel in listed.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
                let Ok(rel) = std::str::from_utf8(rel) else {
                    continue;
                };
                let Ok(after) =
                    crate::util::read_regular_text(&root.join(rel), crate::util::MAX_READ_BYTES)
                else {
                    continue;
                };
                let shown = git(&["show", &format!("{rev}:{rel}")])?;
                let before = shown
                    .status
                    .success()
                    .then(|| String::from_utf8(shown.stdout).ok())
                    .flatten();
                out.push(change(rel.to_string(), before, after));
            }
            Ok(out)
        }
    }
}

/// Reviews `files` outside a run: the static review (every finding the change introduced, or
/// every finding of existing code), then the model review when `client` is given. The plain
/// function behind `conductor review`, for the editor to call as well.
pub async fn review_files(
    files: Vec<ChangedFile>,
    goal: &str,
    security: &SecuritySettings,
    review: &ReviewSettings,
    client: Option<&ModelClient>,
    run: &Run,
) -> StandaloneReview {
    let scan_files = files.clone();
    let scan_settings = security.clone();
    let mut findings = super::heavy(move || static_review(&scan_files, &scan_settings, false))
        .await
        .unwrap_or_default();
    let model = model_review(client, run, goal, &files, &findings, review).await;
    model.annotate(&mut findings);
    findings.extend(model.kept);
    StandaloneReview {
        files,
        findings,
        model_review: model.outcome,
        responses: model.responses,
        failures: model.failures,
        proposed: model.proposed,
    }
}

/// A review on its own (`conductor.review` in the editor, `conductor review` on the command
/// line), as its journal records it.
pub struct ReviewRecord<'a> {
    /// The review's id (its journal is `.conductor/runs/<id>.jsonl`).
    pub id: &'a str,
    /// What was reviewed, in words ("a security review of the existing code of src/lib.rs").
    pub goal: &'a str,
    /// The file and lines, when the review was of a selection (`src/lib.rs:3-7`).
    pub selection: Option<String>,
    /// SHA-256 of the resolved configuration.
    pub config_digest: String,
    /// The findings, static (with the model's verdicts) then the model's.
    pub findings: &'a [ReviewFinding],
    /// What became of the model review.
    pub model_review: &'a ModelReviewOutcome,
    /// Findings the model proposed before their refutation checks.
    pub proposed: usize,
    /// Every model response (tokens, cost), in order.
    pub responses: &'a [ChatResponse],
    /// Every model request that failed, with why.
    pub failures: &'a [String],
    /// The security agent's client, when there was a model.
    pub client: Option<&'a ModelClient>,
    /// What the review cost in all.
    pub usage: crate::journal::UsageTotals,
    /// The summary the user was shown.
    pub message: &'a str,
    /// The review was cancelled (nothing was published).
    pub cancelled: bool,
}

/// Journals a review on its own as a run of kind `review` (`.conductor/runs/<id>.jsonl`), so
/// `conductor runs` lists it with its model usage and `conductor explain --run` shows its
/// findings: the start, each model request, each finding (a static one with the model's
/// verdict), the model review's outcome and the end. Returns the journal's path.
pub fn journal_review(
    root: &std::path::Path,
    record: &ReviewRecord<'_>,
) -> std::io::Result<std::path::PathBuf> {
    use crate::journal::{Event, Journal, RunState};
    let journal = Journal::create(root, record.id)?;
    journal.record(Event::RunStarted {
        run_id: record.id.to_string(),
        kind: "review".into(),
        goal: record.goal.to_string(),
        selection: record.selection.clone(),
        config_digest: record.config_digest.clone(),
        workspace: root.display().to_string(),
    });
    journal.record(Event::Stage {
        state: RunState::Reviewing,
        message: "reviewing".into(),
    });
    if let Some(client) = record.client {
        let agent = crate::llm::AgentRole::Security;
        for r in record.responses {
            journal.record(super::response_event(agent, client, None, r));
        }
        for why in record.failures {
            journal.record(super::failed_request_event(agent, client, 0, why));
        }
    }
    for f in record.findings {
        journal.record(finding_event(f));
    }
    if record.model_review.status != "off" {
        journal.record(Event::ModelReview {
            round: 0,
            status: record.model_review.status.clone(),
            proposed: record.proposed,
            kept: record
                .findings
                .iter()
                .filter(|f| f.source == "model")
                .count(),
            message: record.model_review.message.clone(),
        });
    }
    journal.record(Event::Outcome {
        state: if record.cancelled {
            RunState::Cancelled
        } else {
            RunState::Done
        },
        message: record.message.to_string(),
        // A review changes nothing.
        files: Vec::new(),
        usage: record.usage,
    });
    Ok(journal.path().to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::Base;

    fn change(before: &str, after: &str) -> ChangedFile {
        ChangedFile {
            path: "src/a.rs".into(),
            real: "/w/src/a.rs".into(),
            before: Some(before.into()),
            after: after.into(),
            base: Base::Missing,
            applied: None,
        }
    }

    #[test]
    fn a_verdict_annotates_its_static_finding_and_never_drops_one() {
        let weak = "fn h(p: &str) -> String { format!(\"{:x}\", md5::compute(p)) }\n";
        let mut found = static_review(&[change("", weak)], &SecuritySettings::default(), false);
        assert_eq!(found.len(), 1, "{found:?}");
        let key = (
            found[0].file.clone(),
            found[0].line,
            found[0].rule_id.clone(),
        );
        let mut run = ModelReviewRun::off("");
        run.static_verdicts.push((
            key,
            FindingVerdict {
                verdict: "likely_false_positive".into(),
                confidence: 0.95,
                reason: "not a password".into(),
            },
        ));
        // A verdict about a finding that is not there changes nothing.
        run.static_verdicts.push((
            ("src/other.rs".into(), 1, "x".into()),
            FindingVerdict {
                verdict: "agree".into(),
                confidence: 1.0,
                reason: String::new(),
            },
        ));
        run.annotate(&mut found);
        assert_eq!(found.len(), 1, "kept, however sure the model is");
        let verdict = found[0].verdict.as_ref().expect("annotated");
        assert_eq!(verdict.verdict, "likely_false_positive");
        assert!(
            found[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains(&found[0].message)),
            "the static finding carries its rule's explanation: {:?}",
            found[0].detail
        );
        let crate::journal::Event::Finding { message, .. } = finding_event(&found[0]) else {
            panic!("a finding event");
        };
        assert!(
            message.contains("model verdict: the model thinks it is likely a false positive (confidence 0.95): not a password"),
            "{message}"
        );
    }

    #[test]
    fn a_moved_finding_is_not_new_an_added_one_is_and_a_removed_one_is_fixed() {
        let weak = "fn h(p: &str) -> String { format!(\"{:x}\", md5::compute(p)) }\n";
        let settings = SecuritySettings::default();
        // The same code moved down by a new function: nothing new.
        let moved = change(weak, &format!("fn other() {{}}\n\n{weak}"));
        let found = static_review(&[moved], &settings, false);
        assert!(found.is_empty(), "{found:?}");
        // Added: new, on its line in the new text.
        let added = change("fn other() {}\n", &format!("fn other() {{}}\n{weak}"));
        let found = static_review(&[added], &settings, false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].status, found[0].line), (FindingStatus::New, 2));
        // Removed: fixed, on its line in the old text.
        let removed = change(weak, "fn h(p: &str) -> String { p.to_string() }\n");
        let found = static_review(&[removed], &settings, true);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].status, FindingStatus::Fixed);
    }
}
