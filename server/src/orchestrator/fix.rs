//! The plan of a fix run — one step per security finding — and the mechanical fixes, which need
//! no model: a rule's own fix template, filled from the match (turn a flag to `true`, remove the
//! call that disables verification). A fix whose text is a placeholder for the developer to
//! fill (`// SAFETY: <why this is sound>`), or the suppression comment, is not a fix.

use std::path::{Path, PathBuf};

use super::overlay::Overlay;
use super::{BlockRecord, DecisionRecord, relative};
use crate::editor::{TextEdit, apply_edits};
use crate::llm::protocol::{Plan, PlanStep, StepAgent};
use crate::security::report::line_col;
use crate::security::{Finding, Fix, ScanReport, SecuritySettings, scan};
use crate::syntax::Language;

/// One finding to fix.
#[derive(Debug, Clone)]
pub struct FixTarget {
    /// The plan step for it.
    pub step: PlanStep,
    /// The file, absolute.
    pub real: PathBuf,
    /// The file, relative.
    pub file: String,
    /// The finding, as the scan reported it.
    pub finding: Finding,
    /// Its 1-based line.
    pub line: usize,
    /// The flagged code, whitespace collapsed: how the finding is found again in a newer text.
    pub code: String,
    /// The data flow, as `file:line: what` lines, for the coder.
    pub path: Vec<String>,
}

impl FixTarget {
    /// What the coder is asked to do for this finding.
    pub fn goal(&self) -> String {
        let mut goal = format!(
            "Fix the security finding {} ({}) at {}:{}: {}",
            self.finding.rule_id,
            self.finding.cwe.join(", "),
            self.file,
            self.line,
            self.finding.message
        );
        if !self.path.is_empty() {
            goal.push_str(&format!(" Data flow: {}.", self.path.join("; ")));
        }
        goal
    }
}

fn collapse(code: &str) -> String {
    code.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `text` holds a placeholder for the developer (`<reason>`, `<why this is sound>`).
fn has_placeholder(text: &str) -> bool {
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        if let Some(close) = after.find('>') {
            let inner = &after[..close];
            if !inner.is_empty()
                && inner.starts_with(|c: char| c.is_ascii_lowercase())
                && inner.chars().all(|c| c.is_ascii_lowercase() || c == ' ')
            {
                return true;
            }
        }
        rest = after;
    }
    false
}

/// The mechanical fix of a finding, if its rule has one.
pub fn mechanical(finding: &Finding) -> Option<&Fix> {
    finding.fixes.iter().find(|fix| {
        !fix.title.starts_with("Suppress ")
            && !fix.edits.is_empty()
            && fix.edits.iter().all(|(_, text)| !has_placeholder(text))
    })
}

/// The steps of a fix run, one per finding of `report`, and the plan they make.
pub fn plan(report: &ScanReport, root: &Path) -> (Plan, Vec<FixTarget>) {
    let mut targets = Vec::new();
    for file in &report.files {
        let real = file
            .path
            .canonicalize()
            .unwrap_or_else(|_| root.join(&file.path));
        let rel = relative(root, &real);
        for finding in &file.findings {
            let line = line_col(&file.text, finding.range.start).0;
            let id = format!("f{}", targets.len() + 1);
            let how = if mechanical(finding).is_some() {
                "mechanical fix"
            } else {
                "needs the coder"
            };
            let path = finding
                .related
                .iter()
                .map(|r| {
                    format!(
                        "{rel}:{}: {}",
                        line_col(&file.text, r.range.start).0,
                        r.message
                    )
                })
                .collect();
            targets.push(FixTarget {
                step: PlanStep {
                    id,
                    title: format!("Fix {} at {rel}:{line} ({how})", finding.rule_id),
                    agent: StepAgent::Coder,
                    targets: vec![rel.clone()],
                    depends_on: Vec::new(),
                },
                real: real.clone(),
                file: rel.clone(),
                code: collapse(file.text.get(finding.range.clone()).unwrap_or_default()),
                finding: finding.clone(),
                line,
                path,
            });
        }
    }
    let mechanical_count = targets
        .iter()
        .filter(|t| mechanical(&t.finding).is_some())
        .count();
    let plan = Plan {
        summary: format!(
            "Fix {} security finding{} in {} file{}: {} by a mechanical fix, {} by the coder",
            targets.len(),
            if targets.len() == 1 { "" } else { "s" },
            report.files.iter().filter(|f| !f.findings.is_empty()).count(),
            if report.files.iter().filter(|f| !f.findings.is_empty()).count() == 1 {
                ""
            } else {
                "s"
            },
            mechanical_count,
            targets.len() - mechanical_count
        ),
        steps: targets.iter().map(|t| t.step.clone()).collect(),
        risks: vec![
            "A mechanical fix changes only the flagged expression; code that relied on the insecure behaviour (a self-signed test server, a cookie read over plain HTTP) stops working and needs a deliberate change.".into(),
        ],
        tradeoffs: vec![
            "Each finding is fixed where it is reported, in the smallest change that removes it, rather than by restructuring the code around it.".into(),
        ],
    };
    (plan, targets)
}

/// What became of the mechanical fixes of one file.
#[derive(Debug, Default)]
pub struct Applied {
    /// One per target with a mechanical fix.
    pub blocks: Vec<BlockRecord>,
    /// One per applied fix.
    pub decisions: Vec<DecisionRecord>,
    /// The steps that still need the coder (no mechanical fix, or one that could not apply).
    pub needs_coder: Vec<FixTarget>,
}

/// Applies the mechanical fixes of `targets` (all in one file) to the overlay. The file is
/// re-scanned when its text is no longer the scanned one (an open buffer, an earlier step), and
/// each finding is found again by its rule and code, so an offset is never applied to a text
/// it was not computed for.
pub fn apply_mechanical(
    overlay: &Overlay,
    scanned: &str,
    targets: Vec<FixTarget>,
    settings: &SecuritySettings,
) -> Applied {
    let mut out = Applied::default();
    let Some(first) = targets.first() else {
        return out;
    };
    let real = first.real.clone();
    let refuse = |out: &mut Applied, target: FixTarget, reason: String| {
        out.blocks.push(BlockRecord {
            step: target.step.id.clone(),
            attempt: 1,
            index: 1,
            file: target.file.clone(),
            status: "refused".into(),
            lines: None,
            reason: Some(reason),
        });
        out.needs_coder.push(target);
    };
    let text = match overlay.text(&real) {
        Ok(Some(text)) => text,
        Ok(None) => {
            for t in targets {
                refuse(&mut out, t, "the file no longer exists".into());
            }
            return out;
        }
        Err(err) => {
            for t in targets {
                refuse(&mut out, t, format!("the file cannot be read: {err}"));
            }
            return out;
        }
    };
    let current: Vec<Finding> = if text == scanned {
        targets.iter().map(|t| t.finding.clone()).collect()
    } else {
        Language::for_path(&real)
            .and_then(|lang| {
                lang.parse(&text)
                    .map(|tree| scan(lang, &text, &tree, settings))
            })
            .unwrap_or_default()
    };
    let mut taken = vec![false; current.len()];
    let mut chosen: Vec<(FixTarget, Fix)> = Vec::new();
    for target in targets {
        if mechanical(&target.finding).is_none() {
            out.needs_coder.push(target);
            continue;
        }
        let found = current.iter().enumerate().find(|(i, f)| {
            !taken[*i]
                && f.rule_id == target.finding.rule_id
                && collapse(text.get(f.range.clone()).unwrap_or_default()) == target.code
        });
        match found.and_then(|(i, f)| mechanical(f).map(|fix| (i, fix.clone()))) {
            Some((i, fix)) => {
                taken[i] = true;
                chosen.push((target, fix));
            }
            None => refuse(
                &mut out,
                target,
                "the finding is no longer where the scan saw it (the file changed)".into(),
            ),
        }
    }
    // Non-overlapping fixes apply together; a fix that overlaps an earlier one goes to the
    // coder rather than being guessed.
    chosen.sort_by_key(|(_, fix)| fix.edits.iter().map(|(r, _)| r.start).min());
    let mut edits: Vec<TextEdit> = Vec::new();
    let mut kept: Vec<(FixTarget, Fix)> = Vec::new();
    for (target, fix) in chosen {
        let overlaps = fix.edits.iter().any(|(r, _)| {
            edits
                .iter()
                .any(|e| r.start < e.range.end && e.range.start < r.end)
        });
        if overlaps {
            refuse(
                &mut out,
                target,
                "its mechanical fix overlaps another finding's fix".into(),
            );
            continue;
        }
        edits.extend(fix.edits.iter().map(|(range, new_text)| TextEdit {
            range: range.clone(),
            new_text: new_text.clone(),
            note: None,
        }));
        kept.push((target, fix));
    }
    let Some(after) = apply_edits(&text, &edits) else {
        for (t, _) in kept {
            refuse(&mut out, t, "its fix falls outside the file's text".into());
        }
        return out;
    };
    for (target, fix) in kept {
        let (first_line, last_line) = new_lines(&after, &edits, &fix);
        out.blocks.push(BlockRecord {
            step: target.step.id.clone(),
            attempt: 1,
            index: 1,
            file: target.file.clone(),
            status: "applied".into(),
            lines: Some([first_line, last_line]),
            reason: None,
        });
        let mut alternatives: Vec<String> = target
            .finding
            .fixes
            .iter()
            .filter(|f| f.title != fix.title && !f.title.starts_with("Suppress "))
            .map(|f| f.title.clone())
            .collect();
        alternatives.push(
            "Leave the code and suppress the finding with a reason, if it is a false positive"
                .into(),
        );
        out.decisions.push(DecisionRecord {
            step: target.step.id.clone(),
            block: 1,
            file: target.file.clone(),
            agent: "rule".into(),
            model: target.finding.rule_id.to_string(),
            summary: fix.title.clone(),
            rationale: target.finding.message.clone(),
            alternatives,
            tradeoffs: vec![
                "The smallest change that removes the finding; behaviour that depended on the insecure setting changes with it.".into(),
            ],
        });
    }
    overlay.set(&real, after);
    out
}

/// The lines, in the new text, that one fix's edits produced.
fn new_lines(after: &str, all: &[TextEdit], fix: &Fix) -> (usize, usize) {
    let start = fix.edits.iter().map(|(r, _)| r.start).min().unwrap_or(0);
    // What the edits before this fix added or removed moves it.
    let delta: isize = all
        .iter()
        .filter(|e| e.range.end <= start && e.range.start < start)
        .map(|e| e.new_text.len() as isize - e.range.len() as isize)
        .sum();
    let new_start = (start as isize + delta).max(0) as usize;
    let own: usize = fix.edits.iter().map(|(_, t)| t.len()).sum();
    let new_end = (new_start + own.max(1) - 1).min(after.len());
    (line_col(after, new_start).0, line_col(after, new_end).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_suppressions_are_not_mechanical_fixes() {
        assert!(has_placeholder("// SAFETY: <why this is sound>"));
        assert!(has_placeholder("// conductor: allow(x) <reason>"));
        assert!(!has_placeholder("Vec<u8>"));
        assert!(!has_placeholder("Option<T>"));
        assert!(!has_placeholder("a < b && c > d"));
    }
}
