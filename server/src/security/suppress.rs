//! Suppression comments (`// conductor: allow(rule-id) reason`): finding them, dropping the
//! findings they cover, and reporting the ones that give no reason.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;

use super::engine::Lines;
use super::rules::rule;
use super::{Finding, Fix, SUPPRESSION_WITHOUT_REASON, SecuritySettings};

struct Suppression {
    line: usize,
    ids: Vec<String>,
    has_reason: bool,
    range: Range<usize>,
}

fn suppression_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"//+\s*conductor:\s*allow\(([^)\n]*)\)([^\n]*)").expect("valid regex")
    })
}

fn suppressions(text: &str, lines: &Lines) -> Vec<Suppression> {
    if !text.contains("conductor:") {
        return Vec::new();
    }
    suppression_re()
        .captures_iter(text)
        .filter_map(|c| {
            let whole = c.get(0)?;
            let ids = c
                .get(1)?
                .as_str()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let reason = c.get(2).map_or("", |m| m.as_str()).trim();
            Some(Suppression {
                line: lines.line_of(whole.start()),
                ids,
                has_reason: !reason.is_empty() && reason != "<reason>",
                range: whole.range(),
            })
        })
        .collect()
}

/// Drops the findings that a suppression comment inside `range` covers (a comment on the
/// finding's line or the line above naming its rule), and reports each of those comments that
/// gives no reason.
pub(super) fn apply(
    findings: &mut Vec<Finding>,
    text: &str,
    range: &Range<usize>,
    settings: &SecuritySettings,
) {
    let sups = if text[range.clone()].contains("conductor:") {
        let lines = Lines::new(text);
        let mut sups = suppressions(text, &lines);
        sups.retain(|s| range.start <= s.range.start && s.range.end <= range.end);
        Some((lines, sups))
    } else {
        None
    };
    if let Some((lines, sups)) = sups {
        findings.retain(|f| {
            let line = lines.line_of(f.range.start);
            !sups.iter().any(|s| {
                (s.line == line || s.line + 1 == line) && s.ids.iter().any(|id| id == f.rule_id)
            })
        });
        if let Some(meta) = rule(SUPPRESSION_WITHOUT_REASON).filter(|r| settings.reports(r)) {
            for s in sups.iter().filter(|s| !s.has_reason) {
                findings.push(Finding {
                    rule_id: &meta.id,
                    title: &meta.title,
                    cwe: meta.cwe.clone(),
                    severity: meta.severity,
                    category: meta.category,
                    message: meta.message.clone(),
                    range: s.range.clone(),
                    related: Vec::new(),
                    fixes: vec![Fix {
                        title: "Add a reason to the suppression".into(),
                        edits: vec![(s.range.end..s.range.end, " <reason>".into())],
                    }],
                    incomplete: None,
                });
            }
        }
    }
}
