//! The security agent's model review of a proposed change: the unified diff, the code around
//! each changed line and the static findings become model findings (the `security` format of
//! `docs/model-protocol.md`); then each finding gets an independent refutation request — a
//! fresh conversation that sees the finding and the code, not the first reply — and only the
//! findings the refutation confirms with enough confidence are kept.
//!
//! The static findings are an input here, never an output: the model cannot drop them. This
//! module returns data and touches no file.

use serde::{Deserialize, Serialize};

use super::{Answer, DATA_RULE, data, numbered};
use crate::llm::protocol::{
    AskError, ModelFinding, ProtocolError, SECURITY_FORMAT, SecurityReport, ask_validated,
    parse_security,
};
use crate::llm::{AgentRole, ChatRequest, ModelClient, Run};

/// The refutation check's format, for its system prompt and the corrective retry.
pub const REFUTATION_FORMAT: &str = r#"One fenced ```json block:
{"verdict": "confirmed" | "refuted", "confidence": 0.0 to 1.0, "reason": "..."}"#;

/// A file of the change, as the reviewer is shown it.
#[derive(Debug, Clone)]
pub struct ReviewedFile {
    /// Relative to the workspace root.
    pub path: String,
    /// Its unified diff.
    pub diff: String,
    /// Its text after the change.
    pub after: String,
}

/// What the reviewer is given.
#[derive(Debug, Clone)]
pub struct ReviewInput {
    /// The run's goal.
    pub goal: String,
    /// The changed files.
    pub files: Vec<ReviewedFile>,
    /// The static review's findings, one line each (`file:line severity rule: message`).
    pub static_findings: Vec<String>,
}

/// The refutation check's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// `confirmed` or `refuted`.
    pub verdict: VerdictKind,
    /// 0.0 to 1.0: how sure the check is of its verdict.
    pub confidence: f64,
    /// Why.
    pub reason: String,
}

/// The two verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    /// The finding is real.
    Confirmed,
    /// The finding is a false positive.
    Refuted,
}

/// Lines of code shown around each changed line.
const AROUND: usize = 12;

/// The system prompt of the review request.
pub fn system_prompt() -> String {
    format!(
        "You are the security reviewer of Conductor. You review one proposed change (a unified diff) for vulnerabilities the change introduces: injection, path traversal, unsafe deserialisation, disabled certificate checks, secrets, unbounded resource use, memory-safety problems in unsafe code, and the like. \
Report only problems in the changed lines or caused by them, each with the file and the line in the changed text, a CWE, a severity and your confidence. A static analyser's findings are listed too, numbered: do not repeat them; add what it missed, and give your verdict on each one you can judge (`agree`, or `false_positive` when the code shown cannot have the problem). \
Report nothing you cannot point at; an empty list is a good answer for a safe change.\n\
{DATA_RULE}\n\
Reply with exactly this format:\n{SECURITY_FORMAT}"
    )
}

/// The system prompt of the refutation request.
pub fn refutation_system_prompt() -> String {
    format!(
        "You check one security finding about a proposed code change, as a sceptical second reviewer: try to refute it. \
It is refuted when the code shown does not have the problem (the input is not attacker-controlled, it is validated, the API is safe as used, the line does not do what the finding says). \
It is confirmed only when you can see how the problem happens in the code shown. Give your confidence in your verdict.\n\
{DATA_RULE}\n\
Reply with exactly this format:\n{REFUTATION_FORMAT}"
    )
}

/// The changed lines' neighbourhoods of `after`: the lines within [`AROUND`] of a line the
/// diff adds, numbered, with `…` between separate windows.
fn around_changes(file: &ReviewedFile) -> String {
    let mut changed: Vec<usize> = Vec::new();
    let mut new_line = 0usize;
    for line in file.diff.lines() {
        if let Some(rest) = line.strip_prefix("@@ ") {
            // `@@ -a,b +c,d @@`: the new side starts at line c.
            new_line = rest
                .split_whitespace()
                .find_map(|p| p.strip_prefix('+'))
                .and_then(|p| p.split(',').next())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(1);
            continue;
        }
        if line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        if line.starts_with('+') {
            changed.push(new_line);
            new_line += 1;
        } else if line.starts_with(' ') {
            new_line += 1;
        }
    }
    let lines: Vec<&str> = file.after.lines().collect();
    let mut keep = vec![false; lines.len()];
    for &c in &changed {
        let lo = c.saturating_sub(AROUND + 1);
        let hi = (c + AROUND).min(lines.len());
        for k in keep.iter_mut().take(hi).skip(lo) {
            *k = true;
        }
    }
    let numbered: Vec<String> = numbered(&file.after).lines().map(str::to_string).collect();
    let mut out = String::new();
    let mut gap = false;
    for (i, line) in numbered.iter().enumerate() {
        if keep.get(i).copied().unwrap_or(false) {
            if gap && !out.is_empty() {
                out.push_str("…\n");
            }
            gap = false;
            out.push_str(line);
            out.push('\n');
        } else {
            gap = true;
        }
    }
    out
}

/// The user turn of the review request.
pub fn user_prompt(input: &ReviewInput) -> String {
    let mut out = format!("Goal of the change: {}\n\n", input.goal.trim());
    for file in &input.files {
        out.push_str(&data(&format!("the diff of {}", file.path), &file.diff));
        out.push('\n');
        out.push_str(&data(
            &format!(
                "the code around the changed lines of {} after the change (line numbers in the margin)",
                file.path
            ),
            &around_changes(file),
        ));
        out.push('\n');
    }
    if input.static_findings.is_empty() {
        out.push_str("The static analyser found nothing new in the change.\n");
    } else {
        out.push_str(&data(
            "the static analyser's findings (already reported)",
            &input
                .static_findings
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{}. {f}", i + 1))
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    out
}

/// The user turn of a refutation request.
pub fn refutation_prompt(input: &ReviewInput, finding: &ModelFinding) -> String {
    let mut out = String::from("The finding to check:\n");
    out.push_str(&data(
        "the finding",
        &serde_json::to_string_pretty(finding).unwrap_or_default(),
    ));
    out.push('\n');
    if let Some(file) = input.files.iter().find(|f| f.path == finding.file) {
        out.push_str(&data(&format!("the diff of {}", file.path), &file.diff));
        out.push('\n');
        out.push_str(&data(
            &format!(
                "the code around the changed lines of {} (line numbers in the margin)",
                file.path
            ),
            &around_changes(file),
        ));
    }
    out
}

/// Parses and validates a refutation reply.
pub fn parse_verdict(reply: &str) -> Result<Verdict, ProtocolError> {
    let verdict: Verdict = crate::llm::protocol::parse_json_reply(reply)?;
    if !(0.0..=1.0).contains(&verdict.confidence) {
        return Err(ProtocolError(format!(
            "`confidence` is {}; it must be between 0.0 and 1.0",
            verdict.confidence
        )));
    }
    if verdict.reason.trim().is_empty() {
        return Err(ProtocolError("`reason` is empty".into()));
    }
    Ok(verdict)
}

/// Asks for the model review of a change.
pub async fn review(
    client: &ModelClient,
    run: &Run,
    input: &ReviewInput,
) -> Result<Answer<SecurityReport>, AskError> {
    let request = ChatRequest::new(
        AgentRole::Security,
        Some(system_prompt()),
        user_prompt(input),
    );
    let (value, responses) = ask_validated(
        client,
        run,
        request,
        parse_security,
        SECURITY_FORMAT,
        &mut |_| {},
    )
    .await?;
    Ok(Answer { value, responses })
}

/// Asks an independent check of one finding.
pub async fn refute(
    client: &ModelClient,
    run: &Run,
    input: &ReviewInput,
    finding: &ModelFinding,
) -> Result<Answer<Verdict>, AskError> {
    let request = ChatRequest::new(
        AgentRole::Security,
        Some(refutation_system_prompt()),
        refutation_prompt(input, finding),
    );
    let (value, responses) = ask_validated(
        client,
        run,
        request,
        parse_verdict,
        REFUTATION_FORMAT,
        &mut |_| {},
    )
    .await?;
    Ok(Answer { value, responses })
}

/// Whether a finding survives its check: confirmed, and both the finding's and the check's
/// confidence above `min_confidence`.
pub fn survives(finding: &ModelFinding, verdict: &Verdict, min_confidence: f64) -> bool {
    verdict.verdict == VerdictKind::Confirmed
        && verdict.confidence > min_confidence
        && finding.confidence > min_confidence
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::protocol::ModelSeverity;

    fn file() -> ReviewedFile {
        let before: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let after = before.replace("line 30\n", "let _ = Command::new(user).status();\n");
        ReviewedFile {
            path: "src/a.rs".into(),
            diff: crate::edits::diff::unified("src/a.rs", Some(&before), &after),
            after,
        }
    }

    #[test]
    fn the_reviewer_sees_the_diff_and_the_code_around_the_change_only() {
        let input = ReviewInput {
            goal: "run the tool".into(),
            files: vec![file()],
            static_findings: vec!["src/a.rs:30 critical rust/command-injection: …".into()],
        };
        let prompt = user_prompt(&input);
        assert!(prompt.contains("DATA — the diff of src/a.rs:"), "{prompt}");
        assert!(
            prompt.contains("1. src/a.rs:30 critical rust/command-injection"),
            "the static findings are numbered for their verdicts: {prompt}"
        );
        assert!(
            prompt.contains("30| let _ = Command::new(user).status();"),
            "{prompt}"
        );
        assert!(prompt.contains("18| line 18"), "{prompt}");
        assert!(
            !prompt.contains("| line 5\n"),
            "far lines are left out: {prompt}"
        );
        assert!(prompt.contains("rust/command-injection"));
    }

    #[test]
    fn verdicts_validate_and_only_confident_confirmations_survive() {
        let v = parse_verdict(
            "```json\n{\"verdict\": \"confirmed\", \"confidence\": 0.9, \"reason\": \"user input reaches the command\"}\n```",
        )
        .expect("valid");
        assert_eq!(v.verdict, VerdictKind::Confirmed);
        assert!(
            parse_verdict("{\"verdict\": \"maybe\", \"confidence\": 0.9, \"reason\": \"r\"}")
                .is_err()
        );
        assert!(
            parse_verdict("{\"verdict\": \"refuted\", \"confidence\": 1.5, \"reason\": \"r\"}")
                .is_err()
        );
        let finding = ModelFinding {
            file: "src/a.rs".into(),
            line: 30,
            cwe: "CWE-78".into(),
            severity: ModelSeverity::Critical,
            title: "t".into(),
            explanation: "e".into(),
            confidence: 0.95,
        };
        assert!(survives(&finding, &v, 0.8));
        let unsure = Verdict {
            confidence: 0.7,
            ..v.clone()
        };
        assert!(!survives(&finding, &unsure, 0.8));
        let refuted = Verdict {
            verdict: VerdictKind::Refuted,
            ..v
        };
        assert!(!survives(&finding, &refuted, 0.8));
    }
}
