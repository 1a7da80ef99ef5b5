//! Writers for scan results: text for people, JSON for scripts and SARIF 2.1.0 for code-scanning
//! dashboards. Lines and columns are 1-based; columns count Unicode code points.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use super::rules::{Rule, rule, rules};
use super::{ANALYSIS_INCOMPLETE, Category, Finding, ScanReport, Severity, cwe_url};

/// A 1-based line and column (in code points) of a byte offset.
pub fn line_col(text: &str, byte: usize) -> (usize, usize) {
    Lines::new(text).line_col(byte)
}

/// How many bytes apart [`Lines`] records a character count.
const CHAR_MARK_BYTES: usize = 4096;

/// A text's line starts and a character count every few kilobytes, so that many offsets of one
/// file are located in O(log n + 4 KB) each. Counting from the start of the file for every
/// finding made the reports quadratic: a 1 MB one-line file with thousands of findings spent a
/// third of its scan there.
pub struct Lines<'a> {
    text: &'a str,
    /// The byte where each line starts.
    starts: Vec<usize>,
    /// `(byte, characters before it)`, ascending, the first at 0.
    marks: Vec<(usize, usize)>,
}

impl<'a> Lines<'a> {
    /// Indexes `text` (one pass).
    pub fn new(text: &'a str) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let mut marks = vec![(0, 0)];
        let mut at = 0;
        let mut chars = 0;
        while at + CHAR_MARK_BYTES < text.len() {
            let next = floor_char_boundary(text, at + CHAR_MARK_BYTES);
            if next <= at {
                break;
            }
            chars += text[at..next].chars().count();
            marks.push((next, chars));
            at = next;
        }
        Lines {
            text,
            starts,
            marks,
        }
    }

    /// The characters before `byte` (a char boundary).
    fn chars_before(&self, byte: usize) -> usize {
        let slot = self.marks.partition_point(|(b, _)| *b <= byte) - 1;
        let (from, chars) = self.marks[slot];
        chars + self.text[from..byte].chars().count()
    }

    /// A 1-based line and column (in code points) of a byte offset.
    pub fn line_col(&self, byte: usize) -> (usize, usize) {
        let byte = floor_char_boundary(self.text, byte.min(self.text.len()));
        let line = self.starts.partition_point(|start| *start <= byte);
        let line_start = self.starts[line - 1];
        let column = self.chars_before(byte) - self.chars_before(line_start) + 1;
        (line, column)
    }

    /// Locates a byte range.
    pub fn locate(&self, range: &std::ops::Range<usize>) -> Located {
        Located {
            start: self.line_col(range.start),
            end: self.line_col(range.end),
        }
    }
}

/// The [`Lines`] of `file`, made once per file while a report's findings are walked (they
/// come file by file).
fn lines_of<'c, 'r>(
    cache: &'c mut Option<(&'r super::FileReport, Lines<'r>)>,
    file: &'r super::FileReport,
) -> &'c Lines<'r> {
    if !cache.as_ref().is_some_and(|(f, _)| std::ptr::eq(*f, file)) {
        *cache = Some((file, Lines::new(&file.text)));
    }
    &cache.as_ref().expect("just set").1
}

fn floor_char_boundary(text: &str, mut byte: usize) -> usize {
    while byte > 0 && !text.is_char_boundary(byte) {
        byte -= 1;
    }
    byte
}

/// A finding located in a file, in 1-based lines and columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Start line and column.
    pub start: (usize, usize),
    /// End line and column (exclusive column).
    pub end: (usize, usize),
}

/// Locates a byte range in `text`.
pub fn locate(text: &str, range: &std::ops::Range<usize>) -> Located {
    Lines::new(text).locate(range)
}

fn display_path(path: &Path) -> String {
    let shown = path.to_string_lossy().replace('\\', "/");
    match shown.strip_prefix("./") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => shown,
    }
}

/// Whether any finding is at or above `threshold`.
pub fn has_findings_at(report: &ScanReport, threshold: Severity) -> bool {
    report.findings().any(|(_, f)| f.severity >= threshold)
}

/// `file:line:col: severity rule: message`, one line per finding, then a summary line.
pub fn to_text(report: &ScanReport) -> String {
    let mut out = String::new();
    let mut cache = None;
    for (file, f) in report.findings() {
        let lines = lines_of(&mut cache, file);
        let (line, col) = lines.line_col(f.range.start);
        out.push_str(&format!(
            "{}:{line}:{col}: {} {}: {}\n",
            display_path(&file.path),
            f.severity,
            f.rule_id,
            f.message
        ));
        if let Some(why) = f
            .incomplete
            .as_ref()
            .filter(|_| f.rule_id != ANALYSIS_INCOMPLETE)
        {
            out.push_str(&format!("    note: analysis cut short here: {why}\n"));
        }
        for r in &f.related {
            let (rl, rc) = lines.line_col(r.range.start);
            out.push_str(&format!(
                "    {}:{rl}:{rc}: {}\n",
                display_path(&file.path),
                r.message
            ));
        }
    }
    let count = report.findings().count();
    out.push_str(&format!(
        "{count} finding{} in {} file{} scanned ({} ms)\n",
        if count == 1 { "" } else { "s" },
        report.files_scanned(),
        if report.files_scanned() == 1 { "" } else { "s" },
        report.duration.as_millis()
    ));
    out
}

/// The JSON report: `{"findings":[…],"files_scanned":N,"duration_ms":N}`.
pub fn to_json(report: &ScanReport) -> Value {
    let mut cache = None;
    let findings: Vec<Value> = report
        .findings()
        .map(|(file, f)| {
            let at = lines_of(&mut cache, file).locate(&f.range);
            json!({
                "rule_id": f.rule_id,
                "cwe": f.cwe,
                "severity": f.severity.as_str(),
                "category": f.category.as_str(),
                "file": display_path(&file.path),
                "line": at.start.0,
                "end_line": at.end.0,
                "column": at.start.1,
                "end_column": at.end.1,
                "message": f.message,
                "incomplete": f.incomplete,
            })
        })
        .collect();
    json!({
        "findings": findings,
        "files_scanned": report.files_scanned(),
        "duration_ms": u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
    })
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// The numeric score GitHub code scanning reads from `security-severity`.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

fn sarif_uri(path: &Path) -> String {
    let raw = display_path(path);
    let mut out = String::new();
    for b in raw.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    if path.is_absolute() {
        format!("file://{out}")
    } else {
        out.trim_start_matches("./").to_string()
    }
}

fn sarif_rule(rule: &Rule) -> Value {
    // Code scanning files `security`-tagged rules under security alerts; a hygiene lint is
    // maintainability, not a vulnerability.
    let mut tags = vec![match rule.category {
        Category::Security => "security".to_string(),
        Category::Lint => "maintainability".to_string(),
    }];
    for cwe in &rule.cwe {
        if let Some(n) = cwe.strip_prefix("CWE-") {
            tags.push(format!("external/cwe/cwe-{}", n.trim_start_matches('0')));
        }
    }
    let mut value = json!({
        "id": rule.id,
        "name": rule.id.trim_start_matches("rust/").replace('-', "_"),
        "shortDescription": { "text": rule.title },
        "fullDescription": { "text": rule.message },
        "help": { "text": rule.explanation, "markdown": rule.explanation },
        "defaultConfiguration": { "level": sarif_level(rule.severity) },
        "properties": {
            "tags": tags,
            "precision": if rule.precision == "medium" { "medium".to_string() } else { rule.precision.clone() },
            "problem.severity": sarif_level(rule.severity),
            "security-severity": security_severity(rule.severity),
        }
    });
    if let Some(url) = rule.cwe.first().and_then(|c| cwe_url(c)) {
        value["helpUri"] = json!(url);
    }
    value
}

fn physical(file_uri: &str, lines: &Lines, range: &std::ops::Range<usize>) -> Value {
    let at = lines.locate(range);
    json!({
        "artifactLocation": { "uri": file_uri },
        "region": {
            "startLine": at.start.0,
            "startColumn": at.start.1,
            "endLine": at.end.0,
            "endColumn": at.end.1,
        }
    })
}

/// The SARIF 2.1.0 log of a scan: every rule with its help text and CWE tags, every finding
/// with its location, and a code flow from the source for data-flow findings.
pub fn to_sarif(report: &ScanReport) -> Value {
    // Lint rules are listed only when the scan reported lints (`--include-lints`), so that a
    // security dashboard does not show hygiene rules it never receives results for.
    let with_lints = report.findings().any(|(_, f)| f.category == Category::Lint);
    let all: Vec<&Rule> = rules()
        .iter()
        .filter(|r| with_lints || r.category != Category::Lint)
        .collect();
    let index: HashMap<&str, usize> = all
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut cache = None;
    let results: Vec<Value> = report
        .findings()
        .map(|(file, f)| {
            let lines = lines_of(&mut cache, file);
            let uri = sarif_uri(&file.path);
            let message = match &f.incomplete {
                Some(why) if f.rule_id != ANALYSIS_INCOMPLETE => {
                    format!("{} (analysis cut short here: {why})", f.message)
                }
                _ => f.message.clone(),
            };
            let mut result = json!({
                "ruleId": f.rule_id,
                "level": sarif_level(f.severity),
                "message": { "text": message },
                "locations": [ { "physicalLocation": physical(&uri, lines, &f.range) } ],
            });
            if let Some(why) = &f.incomplete {
                result["properties"] = json!({ "analysisIncomplete": why });
            }
            if let Some(i) = index.get(f.rule_id) {
                result["ruleIndex"] = json!(i);
            }
            if !f.related.is_empty() {
                let related: Vec<Value> = f
                    .related
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        json!({
                            "id": i + 1,
                            "physicalLocation": physical(&uri, lines, &r.range),
                            "message": { "text": r.message },
                        })
                    })
                    .collect();
                let mut steps: Vec<Value> = f
                    .related
                    .iter()
                    .map(|r| {
                        json!({
                            "location": {
                                "physicalLocation": physical(&uri, lines, &r.range),
                                "message": { "text": r.message },
                            }
                        })
                    })
                    .collect();
                steps.push(json!({
                    "location": {
                        "physicalLocation": physical(&uri, lines, &f.range),
                        "message": { "text": format!("reaches the sink of {}", f.rule_id) },
                    }
                }));
                result["relatedLocations"] = json!(related);
                result["codeFlows"] = json!([{ "threadFlows": [ { "locations": steps } ] }]);
            }
            result
        })
        .collect();
    let notifications: Vec<Value> = report
        .notes
        .iter()
        .map(|n| {
            json!({
                "level": "note",
                "message": { "text": format!("{}: {}", display_path(&n.path), n.message) },
            })
        })
        .collect();
    json!({
        "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "conductor",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": all.iter().map(|r| sarif_rule(r)).collect::<Vec<_>>(),
                }
            },
            "columnKind": "unicodeCodePoints",
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }]
    })
}

/// The markdown shown on hover for a finding: the rule's explanation, its CWE links and the
/// data-flow path (as `line: message` entries computed from `text`).
pub fn hover_markdown(finding: &Finding, text: &str) -> String {
    let mut out = format!("**{}** `{}`\n\n", finding.title, finding.rule_id);
    out.push_str(&finding.message);
    out.push_str("\n\n");
    if let Some(why) = finding
        .incomplete
        .as_ref()
        .filter(|_| finding.rule_id != ANALYSIS_INCOMPLETE)
    {
        out.push_str(&format!("Analysis cut short here: {why}.\n\n"));
    }
    let cwes: Vec<String> = finding
        .cwe
        .iter()
        .map(|c| match cwe_url(c) {
            Some(url) => format!("[{c}]({url})"),
            None => c.clone(),
        })
        .collect();
    if !cwes.is_empty() {
        out.push_str(&format!(
            "Severity: {} · {}\n\n",
            finding.severity,
            cwes.join(", ")
        ));
    }
    if !finding.related.is_empty() {
        out.push_str("Data flow:\n");
        for (i, r) in finding.related.iter().enumerate() {
            let (line, col) = line_col(text, r.range.start);
            out.push_str(&format!("{}. line {line}:{col}: {}\n", i + 1, r.message));
        }
        out.push('\n');
    }
    if let Some(rule) = rule(finding.rule_id) {
        out.push_str(&rule.explanation);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_index_agrees_with_counting_from_the_start() {
        // Multi-byte characters across the 4 KB marks, long and short lines, offsets inside a
        // character and past the end.
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&"é€x".repeat(i % 40));
            if i % 7 != 0 {
                text.push('\n');
            }
        }
        text.push_str(&"日本".repeat(5_000));
        let naive = |byte: usize| {
            let mut byte = byte.min(text.len());
            while !text.is_char_boundary(byte) {
                byte -= 1;
            }
            let before = &text[..byte];
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            (line, before[start..].chars().count() + 1)
        };
        let lines = Lines::new(&text);
        for byte in (0..text.len() + 5).step_by(7) {
            assert_eq!(lines.line_col(byte), naive(byte), "byte {byte}");
        }
        assert_eq!(Lines::new("").line_col(3), (1, 1));
    }
}
