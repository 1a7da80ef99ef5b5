//! Decisions for people: the hover's markdown, a file's code lenses, and the text and JSON of
//! `conductor explain FILE:LINE`. Plain strings and JSON values; `lsp/decisions.rs` wraps them
//! in protocol types.

use std::ops::Range;
use std::path::Path;

use serde_json::{Value, json};

use super::{Decision, Index, RunFacts, locate};
use crate::journal::utc_minute;

/// A decision found in a text: where, and whether the user has edited inside it since.
#[derive(Debug, Clone)]
pub struct Located<'a> {
    /// The decision.
    pub decision: &'a Decision,
    /// The bytes it covers in the text.
    pub range: Range<usize>,
    /// The 1-based line it starts on.
    pub line: usize,
    /// Whether text inside it changed since the run (or since its revert).
    pub touched: bool,
}

/// `4.1k tokens · $0.012`.
fn usage(run: &RunFacts) -> String {
    let tokens = run.usage.prompt_tokens + run.usage.completion_tokens;
    let tokens = if tokens >= 1000 {
        format!("{:.1}k", tokens as f64 / 1000.0)
    } else {
        tokens.to_string()
    };
    format!("{tokens} tokens · ${:.3}", run.usage.cost_usd)
}

/// `unreviewed`, `reviewed 2026-12-01 18:03 UTC`; with `edited since the run` and `reverted`.
fn state(d: &Decision, touched: bool) -> String {
    let mut parts = vec![match d.reviewed_ms {
        Some(ms) => format!("reviewed {}", utc_minute(ms)),
        None => "unreviewed".to_string(),
    }];
    if d.reverted {
        parts.push("reverted".into());
    }
    if touched {
        parts.push("edited since the run".into());
    }
    parts.join(" · ")
}

/// The run's review state: `unreviewed`, `reviewed 1/3`, `reviewed`.
pub fn run_review_state(index: &Index, run: &str) -> String {
    let all = index.of_run(run);
    let done = all.iter().filter(|d| d.reviewed_ms.is_some()).count();
    match (done, all.len()) {
        (0, _) => "unreviewed".into(),
        (d, n) if d == n => "reviewed".into(),
        (d, n) => format!("reviewed {d}/{n}"),
    }
}

/// The new findings of `run` on `d`'s lines as they were after the run.
fn findings_on<'a>(run: &'a RunFacts, d: &Decision) -> Vec<&'a super::FindingFacts> {
    let last = d.lines[1].max(d.lines[0]);
    run.findings
        .iter()
        .filter(|f| f.file == d.file && d.lines[0] <= f.line && f.line <= last)
        .collect()
}

fn bullets(out: &mut String, title: &str, items: &[String]) {
    let items: Vec<&String> = items.iter().filter(|i| !i.trim().is_empty()).collect();
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("**{title}**\n"));
    for item in items {
        out.push_str(&format!("- {}\n", item.trim()));
    }
    out.push('\n');
}

/// The hover of one decision: what was decided and why, the alternatives, the trade-offs and
/// risks, the review and the tests, tokens and cost, the run and its review state.
pub fn hover(index: &Index, at: &Located<'_>) -> String {
    let d = at.decision;
    let Some(run) = index.run(&d.run) else {
        return String::new();
    };
    let mut out = String::new();
    if let Some((summary, document)) = &run.explanation {
        out.push_str(&format!(
            "**Conductor explanation** · run `{}`\n\n{}\n\nThe whole explanation: [{document}]({})\n",
            run.id,
            summary.trim(),
            file_link(index.root(), document)
        ));
        return out;
    }
    let of_run = index.of_run(&d.run);
    let who = if d.agent.is_empty() {
        String::new()
    } else {
        format!(" — *{} · {}*", d.agent, d.model)
    };
    out.push_str(&format!(
        "**Conductor run `{}`** · decision {} of {}{who}\n\n",
        run.id,
        d.hunk,
        of_run.len()
    ));
    out.push_str(&format!("**Decided:** {}\n\n", d.summary.trim()));
    if !d.rationale.trim().is_empty() {
        out.push_str(&format!("**Why:** {}\n\n", d.rationale.trim()));
    }
    bullets(&mut out, "Alternatives considered", &d.alternatives);
    let mut traded = d.tradeoffs.clone();
    traded.extend(run.risks.iter().map(|r| format!("Risk (plan): {r}")));
    bullets(&mut out, "Trade-offs and risks", &traded);
    let findings = findings_on(run, d);
    if findings.is_empty() {
        out.push_str("**Review:** no new findings on these lines");
    } else {
        out.push_str("**Review:**");
        for f in &findings {
            out.push_str(&format!(
                "\n- {} `{}` at line {}: {}",
                f.severity, f.rule_id, f.line, f.message
            ));
        }
    }
    if !run.model_review.is_empty() {
        out.push_str(&format!(" (model review: {})", run.model_review));
    }
    out.push_str("\n\n");
    out.push_str(&format!("**Tests:** {}", tests_line(run)));
    out.push_str("\n\n");
    out.push_str(&format!(
        "**Run:** {} · goal: {} · {} · [journal]({})\n\n",
        usage(run),
        run.goal.trim(),
        run.state,
        crate::util::file_url(&run.journal)
    ));
    out.push_str(&format!("**State:** {}", state(d, at.touched)));
    out
}

/// `passed 14/14 in bubblewrap`, `failed: a, b (12/14)`, `skipped: why`.
fn tests_line(run: &RunFacts) -> String {
    let t = &run.tests;
    let mut line = match t.status.as_str() {
        "passed" => format!("passed, {}", t.short()),
        "failed" => format!("failed: {} ({})", t.failed.join(", "), t.short()),
        "" => "not run".to_string(),
        other => format!("{other}{}", sep(&t.message)),
    };
    if !t.failed_before.is_empty() {
        line.push_str(&format!(
            "; failing before the change too: {}",
            t.failed_before.join(", ")
        ));
    }
    if !t.flaky.is_empty() {
        line.push_str(&format!("; flaky: {}", t.flaky.join(", ")));
    }
    if !t.sandbox.is_empty() && t.status != "skipped" {
        line.push_str(&format!(" (sandbox: {})", t.sandbox));
    }
    line
}

fn sep(message: &str) -> String {
    if message.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", message.trim())
    }
}

fn file_link(root: &Path, relative: &str) -> String {
    crate::util::file_url(&root.join(relative))
}

/// One code lens: a line (0-based), its title, and the command it runs with its argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Lens {
    /// 0-based line.
    pub line: usize,
    /// What it shows.
    pub title: String,
    /// The command.
    pub command: String,
    /// Its one argument.
    pub argument: Value,
}

/// The code lenses of a file's located decisions: per run, at its first decision in the file,
/// its summary (decisions, tests, findings, review state) with the plan and the journal; per
/// decision, its summary, mark reviewed and revert.
pub fn lenses(index: &Index, located: &[Located<'_>]) -> Vec<Lens> {
    let mut out = Vec::new();
    let mut runs_seen: Vec<&str> = Vec::new();
    let mut sorted: Vec<&Located<'_>> = located.iter().collect();
    sorted.sort_by_key(|l| (l.line, l.decision.hunk));
    for at in sorted {
        let d = at.decision;
        let Some(run) = index.run(&d.run) else {
            continue;
        };
        let line = at.line.saturating_sub(1);
        let lens = |title: String, command: &str, argument: Value| Lens {
            line,
            title,
            command: command.to_string(),
            argument,
        };
        if let Some((summary, _)) = &run.explanation {
            out.push(lens(
                format!("Conductor explanation: {}", summary.trim()),
                "conductor.showRun",
                json!({"runId": run.id, "show": "explanation"}),
            ));
            continue;
        }
        let all = index.of_run(&d.run);
        if !runs_seen.contains(&d.run.as_str()) {
            runs_seen.push(&d.run);
            out.push(lens(
                format!(
                    "Conductor run {} · {} decision{} · {} · {} finding{} · {}",
                    run.id,
                    all.len(),
                    if all.len() == 1 { "" } else { "s" },
                    run.tests.short(),
                    run.findings.len(),
                    if run.findings.len() == 1 { "" } else { "s" },
                    run_review_state(index, &run.id)
                ),
                "conductor.showRun",
                json!({"runId": run.id}),
            ));
            if run.plan_file.is_some() {
                out.push(lens(
                    "Plan".into(),
                    "conductor.showRun",
                    json!({"runId": run.id, "show": "plan"}),
                ));
            }
            out.push(lens(
                "Journal".into(),
                "conductor.showRun",
                json!({"runId": run.id, "show": "journal"}),
            ));
            if all.len() > 1 {
                let reapply = all.iter().all(|d| d.reverted);
                out.push(lens(
                    if reapply {
                        "↷ Re-apply run".into()
                    } else {
                        "↶ Revert run".into()
                    },
                    "conductor.revert",
                    json!({"runId": run.id, "reapply": reapply}),
                ));
            }
        }
        if all.len() > 1 {
            out.push(lens(
                format!(
                    "decision {}/{}: {} · {}",
                    d.hunk,
                    all.len(),
                    d.summary.trim(),
                    state(d, at.touched)
                ),
                "conductor.showRun",
                json!({"runId": run.id, "hunk": d.hunk}),
            ));
        }
        out.push(lens(
            if d.reviewed_ms.is_some() {
                "✓ Reviewed (undo)".into()
            } else {
                "Mark reviewed".into()
            },
            "conductor.markReviewed",
            json!({"runId": run.id, "hunk": d.hunk, "reviewed": d.reviewed_ms.is_none()}),
        ));
        out.push(lens(
            if d.reverted {
                "↷ Re-apply".into()
            } else {
                "↶ Revert".into()
            },
            "conductor.revert",
            json!({"runId": run.id, "hunk": d.hunk, "reapply": d.reverted}),
        ));
    }
    out
}

/// The decisions of the file at relative path `file` located in `text` (as on disk, with no
/// marks: `touched` is never set).
pub fn locate_all<'a>(index: &'a Index, file: &str, text: &str) -> Vec<Located<'a>> {
    let hash = crate::editor::text_hash(text.as_bytes());
    index
        .in_file(file)
        .into_iter()
        .filter_map(|d| {
            let range = locate(d, text, &hash)?;
            Some(Located {
                line: super::locate::line_of(text, range.start),
                range,
                decision: d,
                touched: false,
            })
        })
        .collect()
}

/// Whether `at` covers 1-based `line` (a place covers the line it sits before).
pub fn covers(text: &str, at: &Located<'_>, line: usize) -> bool {
    let last = if at.range.is_empty() {
        at.line
    } else {
        super::locate::line_of(text, at.range.end.saturating_sub(1).max(at.range.start))
    };
    at.line <= line && line <= last
}

/// The JSON of one located decision, for `conductor explain --format json`.
pub fn to_json(index: &Index, text: &str, at: &Located<'_>) -> Value {
    let d = at.decision;
    let run = index.run(&d.run);
    let last = if at.range.is_empty() {
        at.line.saturating_sub(1)
    } else {
        super::locate::line_of(text, at.range.end.saturating_sub(1).max(at.range.start))
    };
    json!({
        "id": d.id(),
        "run": d.run,
        "hunk": d.hunk,
        "file": d.file,
        "lines": [at.line, last],
        "summary": d.summary,
        "agent": d.agent,
        "model": d.model,
        "rationale": d.rationale,
        "alternatives": d.alternatives,
        "tradeoffs": d.tradeoffs,
        "reviewed_ms": d.reviewed_ms,
        "reverted": d.reverted,
        "goal": run.map(|r| r.goal.clone()),
        "risks": run.map(|r| r.risks.clone()),
        "tests": run.map(|r| serde_json::to_value(&r.tests).unwrap_or(Value::Null)),
        "findings": run.map(|r| findings_on(r, d).into_iter().cloned().collect::<Vec<_>>()),
        "usage": run.map(|r| serde_json::to_value(r.usage).unwrap_or(Value::Null)),
        "journal": run.map(|r| r.journal.display().to_string()),
        "explanation": run.and_then(|r| r.explanation.clone()),
    })
}

/// Markdown to plain text for a terminal: emphasis (`**bold**`, `*italic*`), code-span and
/// link syntax dropped. Inside a code span nothing but the backticks is touched, so `*ptr`
/// keeps its star.
pub fn plain(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    for (i, line) in markdown.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for (j, part) in line.split('`').enumerate() {
            if j % 2 == 1 {
                out.push_str(part);
            } else {
                out.push_str(&without_emphasis(part));
            }
        }
    }
    // `[name](url)` → `name (url)`.
    while let Some(open) = out.find('[') {
        let Some(mid) = out[open..].find("](").map(|m| open + m) else {
            break;
        };
        let Some(close) = out[mid..].find(')').map(|c| mid + c) else {
            break;
        };
        let name = out[open + 1..mid].to_string();
        let url = out[mid + 2..close].to_string();
        out.replace_range(open..=close, &format!("{name} ({url})"));
    }
    out
}

/// `text` without its emphasis stars: `**` anywhere, and a single `*` that opens (followed by
/// a non-space) and has a closing one (after a non-space) later in the text. A lone `*`, as in
/// `2 * 3`, stays.
fn without_emphasis(text: &str) -> String {
    let chars: Vec<char> = text.replace("**", "").chars().collect();
    let mut drop = vec![false; chars.len()];
    let mut i = 0;
    while i < chars.len() {
        let opens = chars[i] == '*' && chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
        let close = opens
            .then(|| {
                (i + 2..chars.len()).find(|&k| chars[k] == '*' && !chars[k - 1].is_whitespace())
            })
            .flatten();
        match close {
            Some(k) => {
                drop[i] = true;
                drop[k] = true;
                i = k + 1;
            }
            None => i += 1,
        }
    }
    chars
        .iter()
        .zip(drop)
        .filter(|(_, dropped)| !dropped)
        .map(|(c, _)| c)
        .collect()
}

/// `conductor explain FILE:LINE`: the decisions covering 1-based `line` of `file` (a path
/// relative to `root` or absolute), as `text`, `markdown` or `json`. Errors name what failed.
pub fn explain_line(root: &Path, file: &Path, line: usize, format: &str) -> Result<String, String> {
    let absolute = if file.is_absolute() {
        file.to_path_buf()
    } else {
        root.join(file)
    };
    let relative = crate::orchestrator::relative(root, &absolute);
    let text = crate::util::read_regular_text(&absolute, crate::util::MAX_READ_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", absolute.display()))?;
    let mut index = Index::new(root);
    index.refresh();
    let located: Vec<Located<'_>> = locate_all(&index, &relative, &text)
        .into_iter()
        .filter(|at| covers(&text, at, line))
        .collect();
    match format {
        "json" => Ok(serde_json::to_string_pretty(
            &located
                .iter()
                .map(|at| to_json(&index, &text, at))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_else(|_| "[]".into())),
        "markdown" | "text" => {
            if located.is_empty() {
                return Ok(format!(
                    "No run's decision covers {relative}:{line} (of {} decision(s) journalled in this file).",
                    index.in_file(&relative).len()
                ));
            }
            let parts: Vec<String> = located.iter().map(|at| hover(&index, at)).collect();
            let joined = parts.join("\n\n---\n\n");
            Ok(if format == "text" {
                plain(&joined)
            } else {
                joined
            })
        }
        other => Err(format!(
            "unknown format `{other}`: use text, markdown or json"
        )),
    }
}
