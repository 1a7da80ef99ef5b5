//! The review stage of a run: the static security scan of every changed file before and after
//! the change: a finding is new when the change introduced it
//! (one that merely moved with its text is not), fixed when the change removed it. With a
//! model configured, the security agent ([`crate::agents::reviewer`]) adds the findings it
//! can defend through an independent refutation check; it never drops a static finding.

use std::collections::HashMap;

use super::{ChangedFile, FindingStatus, ReviewFinding};
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
