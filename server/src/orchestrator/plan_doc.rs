//! The editable plan document, `.conductor/runs/<id>/plan.md`: [`render`] writes a run's plan
//! as a Markdown checklist a person edits, [`parse`] reads it back (every error names its
//! 1-based line), [`apply`] turns it into the plan a new run follows plus the human's changes in
//! words for the journal, and [`load_for_run`] puts the three together for the editor's
//! "Run this plan" and `conductor run --from-plan`.
//!
//! The format, one step per list item:
//!
//! ```text
//! # Plan for run 20261201-153000-00ab12
//!
//! **Goal:** make the answer 42
//!
//! _Edit, then run: untick a step (`- [ ]`) to skip it, …_
//!
//! Change the constant the function returns.
//!
//! ## Steps
//!
//! - [x] **s1** (coder) Return 42 — targets: src/lib.rs
//! - [x] **s2** (coder) Document it — targets: src/lib.rs — after: s1
//!
//! ## Risks
//!
//! - callers that expect 41
//!
//! ## Trade-offs
//!
//! - none worth noting
//! ```
//!
//! It is built to survive an editor's reflowing: a step may be wrapped onto following lines
//! (indented or not) until a blank line or the next list item, and runs of whitespace count as
//! one space. Fields are found from the right (` — after: `, then ` — targets: `; `--` works
//! as well as `—`), so a title may hold any other text.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::journal::{self, Event};
use crate::llm::protocol::{Plan, PlanStep, StepAgent};

use super::{RunKind, RunRequest, Selection};

/// The first line's prefix; the run id follows it.
const HEADER: &str = "# Plan for run ";
/// The goal line's prefix.
const GOAL: &str = "**Goal:**";
/// The largest plan document read (a plan of thousands of steps is far smaller).
const MAX_DOC_BYTES: u64 = 1024 * 1024;

/// A plan document as the person left it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanDoc {
    /// The run whose plan this is (from the header).
    pub run_id: String,
    /// The goal, as the document states it.
    pub goal: String,
    /// The plan's summary: the paragraph between the goal and the steps.
    pub summary: String,
    /// The steps, in document order.
    pub steps: Vec<DocStep>,
    /// The "Risks" items.
    pub risks: Vec<String>,
    /// The "Trade-offs" items.
    pub tradeoffs: Vec<String>,
    /// The line of the `## Steps` heading.
    pub steps_line: usize,
}

/// One step line of a plan document.
#[derive(Debug, Clone, PartialEq)]
pub struct DocStep {
    /// Its 1-based line (the first, when an editor wrapped it).
    pub line: usize,
    /// `[x]`: run it; `[ ]`: skip it.
    pub checked: bool,
    /// The step's id.
    pub id: String,
    /// Who does it.
    pub agent: StepAgent,
    /// What it does.
    pub title: String,
    /// The files (or items) it touches.
    pub targets: Vec<String>,
    /// The ids of the steps that must be done first.
    pub after: Vec<String>,
}

/// What is wrong with a plan document, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct PlanDocError {
    /// 1-based.
    pub line: usize,
    /// What is wrong and how to put it right.
    pub message: String,
}

fn fail<T>(line: usize, message: impl Into<String>) -> Result<T, PlanDocError> {
    Err(PlanDocError {
        line,
        message: message.into(),
    })
}

fn agent_name(agent: StepAgent) -> &'static str {
    match agent {
        StepAgent::Coder => "coder",
        StepAgent::Tester => "tester",
        StepAgent::Security => "security",
    }
}

fn agent_of(name: &str) -> Option<StepAgent> {
    match name.trim().to_ascii_lowercase().as_str() {
        "coder" => Some(StepAgent::Coder),
        "tester" => Some(StepAgent::Tester),
        "security" => Some(StepAgent::Security),
        _ => None,
    }
}

/// `text` with every run of whitespace (newlines included) as one space, trimmed: the form a
/// text has after any editor reflowed it, so it is what two texts are compared by.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The steps of `plan` in the order a run does them: dependencies first, otherwise the plan's
/// own order. Steps in a cycle (which `parse_plan` refuses) come last, in the plan's order.
pub fn run_order(plan: &Plan) -> Vec<&PlanStep> {
    let ids: HashSet<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    let mut done: HashSet<&str> = HashSet::new();
    let mut order: Vec<&PlanStep> = Vec::new();
    loop {
        let before = order.len();
        for step in &plan.steps {
            let ready = step
                .depends_on
                .iter()
                .all(|d| done.contains(d.as_str()) || !ids.contains(d.as_str()));
            if !done.contains(step.id.as_str()) && ready {
                done.insert(step.id.as_str());
                order.push(step);
            }
        }
        if order.len() == before {
            break;
        }
    }
    for step in &plan.steps {
        if !done.contains(step.id.as_str()) {
            done.insert(step.id.as_str());
            order.push(step);
        }
    }
    order
}

/// The plan of run `run_id` as the document a person edits. Steps are listed in the order the
/// run would do them, so that the document's order is always a valid one to start from.
pub fn render(run_id: &str, goal: &str, plan: &Plan) -> String {
    let mut out = format!("{HEADER}{run_id}\n\n{GOAL} {}\n\n", flat(goal));
    out.push_str(
        "_Edit, then run: untick a step (`- [ ]`) to skip it, reword a title, edit targets, move lines to reorder (a step stays below the steps it comes after). Run it with \"Run this plan\" above, or `conductor run --from-plan ",
    );
    out.push_str(run_id);
    out.push_str("`._\n\n");
    let summary = flat(&plan.summary);
    if !summary.is_empty() {
        out.push_str(&summary);
        out.push_str("\n\n");
    }
    out.push_str("## Steps\n\n");
    for step in run_order(plan) {
        out.push_str(&format!(
            "- [x] **{}** ({}) {}",
            step.id.trim(),
            agent_name(step.agent),
            flat(&step.title)
        ));
        if !step.targets.is_empty() {
            let targets: Vec<String> = step.targets.iter().map(|t| flat(t)).collect();
            out.push_str(&format!(" — targets: {}", targets.join(", ")));
        }
        if !step.depends_on.is_empty() {
            out.push_str(&format!(" — after: {}", step.depends_on.join(", ")));
        }
        out.push('\n');
    }
    for (title, items) in [("Risks", &plan.risks), ("Trade-offs", &plan.tradeoffs)] {
        if !items.is_empty() {
            out.push_str(&format!("\n## {title}\n\n"));
            for item in items {
                out.push_str(&format!("- {}\n", flat(item)));
            }
        }
    }
    out
}

/// Which part of the document a line is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Preamble,
    Steps,
    Risks,
    Tradeoffs,
}

/// A list item's text: the line without its `-`, `*` or `+` marker, or `None` for another line.
fn bullet(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let rest = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .or_else(|| t.strip_prefix("+ "))?;
    Some(rest)
}

/// An HTML comment on one line (`<!-- … -->`), which Markdown does not show.
fn comment(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("<!--") && t.ends_with("-->")
}

/// The fields of a step's text after its agent: where its title ends, and each
/// ` — targets: …` / ` — after: …` field (`--` works as well as `—`) as (name, value), in any
/// order. Only a dash followed by a field name starts a field, so a title may hold dashes.
fn fields(text: &str) -> (&str, Vec<(&'static str, &str)>) {
    let mut cuts: Vec<(usize, usize, &'static str)> = Vec::new();
    for (i, _) in text.char_indices() {
        for dash in [" — ", " -- "] {
            if !text[i..].starts_with(dash) {
                continue;
            }
            let rest = &text[i + dash.len()..];
            for name in ["targets", "after"] {
                let label = rest.get(..name.len() + 1);
                if label.is_some_and(|l| l.eq_ignore_ascii_case(&format!("{name}:"))) {
                    cuts.push((i, i + dash.len() + name.len() + 1, name));
                }
            }
        }
    }
    let title = cuts.first().map_or(text, |c| &text[..c.0]);
    let values = cuts
        .iter()
        .enumerate()
        .map(|(k, &(_, from, name))| {
            let to = cuts.get(k + 1).map_or(text.len(), |next| next.0);
            (name, text[from..to].trim())
        })
        .collect();
    (title, values)
}

/// A comma-separated list, each item trimmed (backticks too), empties dropped.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().trim_matches('`').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// One step item (its lines joined), starting on `line`.
fn parse_step(line: usize, item: &str) -> Result<DocStep, PlanDocError> {
    let item = flat(item);
    let (checked, rest) = if let Some(rest) = item.strip_prefix("[ ]") {
        (false, rest)
    } else if let Some(rest) = item
        .strip_prefix("[x]")
        .or_else(|| item.strip_prefix("[X]"))
    {
        (true, rest)
    } else {
        return fail(
            line,
            "a step starts with a checkbox: `- [x]` to run it or `- [ ]` to skip it",
        );
    };
    let rest = rest.trim_start();
    let Some((id, rest)) = rest
        .strip_prefix("**")
        .and_then(|r| r.split_once("**"))
        .map(|(id, rest)| (id.trim(), rest.trim_start()))
        .filter(|(id, _)| !id.is_empty())
    else {
        return fail(
            line,
            "a step needs an id like **s2** after its checkbox (the id the plan gave it)",
        );
    };
    let Some((agent, rest)) = rest
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .and_then(|(a, rest)| agent_of(a).map(|a| (a, rest)))
    else {
        return fail(
            line,
            format!(
                "step {id} needs its agent in parentheses after the id: (coder), (tester) or (security)"
            ),
        );
    };
    let (title, values) = fields(rest);
    let mut after = None;
    let mut targets = None;
    for (name, value) in values {
        let slot = if name == "after" {
            &mut after
        } else {
            &mut targets
        };
        if slot.is_some() {
            return fail(
                line,
                format!("step {id} has two `{name}:` fields; join them into one"),
            );
        }
        *slot = Some(list(value));
    }
    let (after, targets) = (after.unwrap_or_default(), targets.unwrap_or_default());
    let title = title.trim().to_string();
    if title.is_empty() {
        return fail(
            line,
            format!(
                "step {id} has no title: say what the step does after ({})",
                agent_name(agent)
            ),
        );
    }
    Ok(DocStep {
        line,
        checked,
        id: id.to_string(),
        agent,
        title,
        targets,
        after,
    })
}

/// Reads a plan document. Accepted: unticked steps, reworded titles, edited targets and
/// `after` lists, reordered lines, wrapped lines. Refused, naming the line: a missing header or
/// goal, a step line that is not one, a duplicate id, an `after` naming no step of the document,
/// a step above a step it comes after, a ticked step after an unticked one, nothing ticked.
pub fn parse(text: &str) -> Result<PlanDoc, PlanDocError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut first = None;
    for (i, line) in lines.iter().enumerate() {
        if !line.trim().is_empty() && !comment(line) {
            first = Some(i);
            break;
        }
    }
    let Some(first) = first else {
        return fail(
            1,
            "the plan document is empty; it starts with `# Plan for run <id>`",
        );
    };
    let Some(run_id) = lines[first]
        .trim()
        .strip_prefix(HEADER)
        .map(str::trim)
        .filter(|id| !id.is_empty())
    else {
        return fail(
            first + 1,
            "the plan document must start with its header, `# Plan for run <id>`, which names the run",
        );
    };
    let mut preamble: Vec<(usize, String)> = Vec::new();
    let mut section = Section::Preamble;
    let mut steps_line = None;
    // Items as (first line, joined text), per section; an item ends at a blank line or the
    // next item.
    let mut step_items: Vec<(usize, String)> = Vec::new();
    let mut risks: Vec<String> = Vec::new();
    let mut tradeoffs: Vec<String> = Vec::new();
    let mut open_item = false;
    for (i, raw) in lines.iter().enumerate().skip(first + 1) {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            open_item = false;
            continue;
        }
        if comment(line) {
            continue;
        }
        if let Some(heading) = line.strip_prefix("## ") {
            open_item = false;
            section = match heading.trim().to_ascii_lowercase().as_str() {
                "steps" => {
                    if steps_line.is_some() {
                        return fail(n, "a second `## Steps` section: a plan has one");
                    }
                    steps_line = Some(n);
                    Section::Steps
                }
                "risks" => Section::Risks,
                "trade-offs" | "tradeoffs" => Section::Tradeoffs,
                _ => {
                    return fail(
                        n,
                        format!(
                            "unknown section `## {}`: a plan has `## Steps`, `## Risks` and `## Trade-offs`",
                            heading.trim()
                        ),
                    );
                }
            };
            continue;
        }
        if line.starts_with('#') {
            return fail(
                n,
                "a heading other than the header and the `## ` sections: remove it",
            );
        }
        match section {
            // Paragraphs, joined: an editor may have wrapped the goal or the help note.
            Section::Preamble => match preamble.last_mut() {
                Some((_, text)) if open_item => {
                    text.push(' ');
                    text.push_str(line);
                }
                _ => {
                    preamble.push((n, line.to_string()));
                    open_item = true;
                }
            },
            Section::Steps => match bullet(raw) {
                Some(item) => {
                    step_items.push((n, item.to_string()));
                    open_item = true;
                }
                None if open_item => {
                    if let Some((_, text)) = step_items.last_mut() {
                        text.push(' ');
                        text.push_str(line);
                    }
                }
                None => {
                    return fail(
                        n,
                        "not a step: under `## Steps` each step is a list item, `- [x] **id** (agent) title`",
                    );
                }
            },
            Section::Risks | Section::Tradeoffs => {
                let items = if section == Section::Risks {
                    &mut risks
                } else {
                    &mut tradeoffs
                };
                match bullet(raw) {
                    Some(item) => {
                        items.push(flat(item));
                        open_item = true;
                    }
                    None => match items.last_mut() {
                        Some(last) if open_item => {
                            last.push(' ');
                            last.push_str(line);
                        }
                        _ => {
                            items.push(flat(line));
                            open_item = true;
                        }
                    },
                }
            }
        }
    }
    let end = lines.len().max(1);
    let Some(steps_line) = steps_line else {
        return fail(
            end,
            "the plan document has no `## Steps` section (a heading `## Steps`, then one `- [x]` line per step)",
        );
    };
    let mut goal: Option<String> = None;
    let mut summary: Vec<&str> = Vec::new();
    for (n, text) in &preamble {
        if let Some(g) = text.strip_prefix(GOAL) {
            if goal.is_some() {
                return fail(*n, "a second `**Goal:**` line: a plan has one goal");
            }
            let g = flat(g);
            if g.is_empty() {
                return fail(*n, "the goal is empty: say what the run should do");
            }
            goal = Some(g);
        } else if text.len() > 1 && text.starts_with('_') && text.ends_with('_') {
            // The how-to-edit note.
        } else {
            summary.push(text);
        }
    }
    let Some(goal) = goal else {
        return fail(
            steps_line,
            "the header needs a `**Goal:** …` line before `## Steps`",
        );
    };
    let steps = step_items
        .iter()
        .map(|(n, item)| parse_step(*n, item))
        .collect::<Result<Vec<_>, _>>()?;
    let doc = PlanDoc {
        run_id: run_id.to_string(),
        goal,
        summary: flat(&summary.join(" ")),
        steps,
        risks,
        tradeoffs,
        steps_line,
    };
    validate(&doc)?;
    Ok(doc)
}

/// The rules between steps: unique ids, `after` names earlier steps of the document that are
/// ticked too (when the step is), and at least one step ticked.
fn validate(doc: &PlanDoc) -> Result<(), PlanDocError> {
    let mut at: HashMap<&str, &DocStep> = HashMap::new();
    for step in &doc.steps {
        if let Some(earlier) = at.get(step.id.as_str()) {
            return fail(
                step.line,
                format!(
                    "step id {} is used twice (first on line {}); each step keeps its own id",
                    step.id, earlier.line
                ),
            );
        }
        at.insert(step.id.as_str(), step);
    }
    for step in &doc.steps {
        for dep in &step.after {
            let Some(other) = at.get(dep.as_str()) else {
                return fail(
                    step.line,
                    format!(
                        "step {} comes after {dep}, which is not a step of this plan",
                        step.id
                    ),
                );
            };
            if other.id == step.id {
                return fail(
                    step.line,
                    format!("step {} cannot come after itself", step.id),
                );
            }
            if !step.checked {
                continue;
            }
            if !other.checked {
                return fail(
                    step.line,
                    format!(
                        "step {} is ticked but comes after {dep}, which is unticked on line {}: tick {dep}, or remove it from {}'s `after:`",
                        step.id, other.line, step.id
                    ),
                );
            }
            if other.line > step.line {
                return fail(
                    step.line,
                    format!(
                        "step {} comes after {dep}, but {dep} is below it (line {}); the run follows the document's order: move {} below {dep}, or remove {dep} from its `after:`",
                        step.id, other.line, step.id
                    ),
                );
            }
        }
    }
    if !doc.steps.iter().any(|s| s.checked) {
        return fail(
            doc.steps_line,
            "no step is ticked: tick at least one step (`- [x]`) to run the plan",
        );
    }
    Ok(())
}

/// Why `target` may not be a step's target: it must be a path inside the workspace.
fn outside_workspace(target: &str) -> bool {
    let t = target.trim();
    t.starts_with('/')
        || t.starts_with('\\')
        || t.starts_with('~')
        || (t.chars().nth(1) == Some(':')
            && t.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        || t.split(['/', '\\']).any(|part| part == "..")
}

fn quoted_list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}

/// The plan a run follows from `doc`, and the human's changes to `original` in words: the
/// ticked steps in the document's order with their titles, agents, targets and `after` lists
/// as the person left them. A step the document names that `original` does not have, and a
/// target outside the workspace (absolute, or with `..`), are refused naming the line.
pub fn apply(original: &Plan, doc: &PlanDoc) -> Result<(Plan, Vec<String>), PlanDocError> {
    validate(doc)?;
    let by_id: HashMap<&str, &PlanStep> =
        original.steps.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut changes = Vec::new();
    if flat(&doc.summary) != flat(&original.summary) && !doc.summary.is_empty() {
        changes.push(format!(
            "summary reworded: '{}' → '{}'",
            flat(&original.summary),
            doc.summary
        ));
    }
    let mut steps = Vec::new();
    for d in &doc.steps {
        let Some(o) = by_id.get(d.id.as_str()) else {
            return fail(
                d.line,
                format!(
                    "step {} is not in run {}'s plan: a plan document can skip, reword, retarget and reorder the plan's steps, not add new ones (start a new run for more work)",
                    d.id, doc.run_id
                ),
            );
        };
        if let Some(t) = d.targets.iter().find(|t| outside_workspace(t)) {
            return fail(
                d.line,
                format!(
                    "step {}: target `{t}` is outside the workspace; targets are paths relative to the workspace root, without `..`",
                    d.id
                ),
            );
        }
        if !d.checked {
            changes.push(format!("step {} skipped", d.id));
            continue;
        }
        let title = if flat(&o.title) == d.title {
            o.title.clone()
        } else {
            changes.push(format!(
                "step {} reworded: '{}' → '{}'",
                d.id,
                flat(&o.title),
                d.title
            ));
            d.title.clone()
        };
        if o.agent != d.agent {
            changes.push(format!(
                "step {} agent: {} → {}",
                d.id,
                agent_name(o.agent),
                agent_name(d.agent)
            ));
        }
        let was: Vec<String> = o.targets.iter().map(|t| flat(t)).collect();
        let targets = if was == d.targets {
            o.targets.clone()
        } else {
            changes.push(format!(
                "step {} targets: {} → {}",
                d.id,
                quoted_list(&was),
                quoted_list(&d.targets)
            ));
            d.targets.clone()
        };
        if o.depends_on != d.after {
            changes.push(format!(
                "step {} after: {} → {}",
                d.id,
                quoted_list(&o.depends_on),
                quoted_list(&d.after)
            ));
        }
        steps.push(PlanStep {
            id: o.id.clone(),
            title,
            agent: d.agent,
            targets,
            depends_on: d.after.clone(),
        });
    }
    let in_doc: HashSet<&str> = doc.steps.iter().map(|s| s.id.as_str()).collect();
    for o in &original.steps {
        if !in_doc.contains(o.id.as_str()) {
            changes.push(format!("step {} skipped (its line was removed)", o.id));
        }
    }
    let kept: HashSet<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    let was_order: Vec<&str> = run_order(original)
        .into_iter()
        .map(|s| s.id.as_str())
        .filter(|id| kept.contains(id))
        .collect();
    let now_order: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    if was_order != now_order {
        changes.push(format!(
            "steps reordered: {} (order now: {})",
            moves(&was_order, &now_order).join("; "),
            now_order.join(", ")
        ));
    }
    for (items, name, was) in [
        (&doc.risks, "risks", &original.risks),
        (&doc.tradeoffs, "trade-offs", &original.tradeoffs),
    ] {
        let was: Vec<String> = was.iter().map(|t| flat(t)).collect();
        if *items != was {
            changes.push(format!("{name} edited"));
        }
    }
    let keep_if_same = |doc: &Vec<String>, original: &Vec<String>| {
        if original.iter().map(|t| flat(t)).collect::<Vec<_>>() == *doc {
            original.clone()
        } else {
            doc.clone()
        }
    };
    let plan = Plan {
        summary: if changes.iter().any(|c| c.starts_with("summary reworded")) {
            doc.summary.clone()
        } else {
            original.summary.clone()
        },
        steps,
        risks: keep_if_same(&doc.risks, &original.risks),
        tradeoffs: keep_if_same(&doc.tradeoffs, &original.tradeoffs),
    };
    Ok((plan, changes))
}

/// The steps that moved between two orders of the same ids, each as "s3 before s1, s2" (moved
/// up past those) or "s1 after s2" (moved down): the steps outside a longest run that kept its
/// order, so a single swap reads as one move, not as every pair it inverted.
fn moves(was: &[&str], now: &[&str]) -> Vec<String> {
    let pos: HashMap<&str, usize> = was.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let ranks: Vec<usize> = now.iter().map(|id| pos[id]).collect();
    // Longest increasing subsequence, quadratic: plans have tens of steps.
    let n = ranks.len();
    let mut len = vec![1usize; n];
    let mut prev = vec![usize::MAX; n];
    for i in 0..n {
        for j in 0..i {
            if ranks[j] < ranks[i] && len[j] + 1 > len[i] {
                len[i] = len[j] + 1;
                prev[i] = j;
            }
        }
    }
    let mut stayed = HashSet::new();
    let mut at = (0..n).max_by_key(|&i| (len[i], i));
    while let Some(i) = at {
        stayed.insert(i);
        at = (prev[i] != usize::MAX).then_some(prev[i]);
    }
    let mut out = Vec::new();
    for i in (0..n).filter(|i| !stayed.contains(i)) {
        let passed_up: Vec<&str> = (i + 1..n)
            .filter(|&j| ranks[j] < ranks[i])
            .map(|j| now[j])
            .collect();
        let passed_down: Vec<&str> = (0..i)
            .filter(|&j| ranks[j] > ranks[i])
            .map(|j| now[j])
            .collect();
        if !passed_up.is_empty() {
            out.push(format!("{} before {}", now[i], passed_up.join(", ")));
        } else if !passed_down.is_empty() {
            out.push(format!("{} after {}", now[i], passed_down.join(", ")));
        }
    }
    out
}

/// A run whose plan document is being followed, as its journal tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginalRun {
    /// Its id.
    pub run_id: String,
    /// Its goal.
    pub goal: String,
    /// Where it was started (absolute file, lines), if anywhere.
    pub selection: Option<Selection>,
    /// The plan it journalled (the last one, for a run that itself followed an edited plan).
    pub plan: Plan,
    /// `.conductor/runs/<id>/plan.md`.
    pub plan_file: PathBuf,
}

/// An edited plan for a new run to follow: the plan, the run it came from, and the human's
/// changes in words (journalled as `plan_edited`).
#[derive(Debug, Clone, PartialEq)]
pub struct FollowPlan {
    /// The plan as the person left it: the ticked steps, in the document's order.
    pub plan: Plan,
    /// The run whose plan document it is.
    pub from_run: String,
    /// The human's changes, in words.
    pub changes: Vec<String>,
    /// The original steps the new run will not do (unticked, or their line removed).
    pub skipped: Vec<String>,
}

/// Whether `id` can be a run id: the journal names files after it, so nothing that could leave
/// `.conductor/runs/` (no separators, no `..`).
fn plausible_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Reads run `run_id`'s journal under `root`: its goal, selection and plan.
pub fn original_run(root: &Path, run_id: &str) -> Result<OriginalRun, String> {
    if !plausible_run_id(run_id) {
        return Err(format!(
            "`{run_id}` is not a run id (ids look like 20261201-153000-00ab12; `conductor runs` lists them)"
        ));
    }
    let dir = journal::runs_dir(root);
    let path = dir.join(format!("{run_id}.jsonl"));
    let read = match journal::read(&path) {
        Ok(read) => read,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "no run {run_id} under {} (`conductor runs` lists the runs)",
                dir.display()
            ));
        }
        Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
    };
    let mut started = None;
    let mut plan = None;
    for record in read.records {
        match record.event {
            Event::RunStarted {
                kind,
                goal,
                selection,
                ..
            } => started = Some((kind, goal, selection)),
            Event::Plan { plan: p, .. } => plan = Some(p),
            _ => {}
        }
    }
    let Some((kind, goal, selection)) = started else {
        return Err(format!(
            "{}: no run_started event; not a run journal",
            path.display()
        ));
    };
    if kind == RunKind::Fix.as_str() {
        return Err(format!(
            "run {run_id} is a fix run: its plan follows the security findings, so it is not run from its plan document; run `conductor fix` again instead"
        ));
    }
    let Some(plan) = plan else {
        return Err(format!(
            "run {run_id} has no plan in its journal (it ended before planning); start a new run"
        ));
    };
    Ok(OriginalRun {
        run_id: run_id.to_string(),
        goal,
        selection: selection.map(|s| selection_of(root, &s)),
        plan,
        plan_file: dir.join(run_id).join("plan.md"),
    })
}

/// A journalled selection (`file` or `file:A-B`, relative) as an absolute one.
fn selection_of(root: &Path, journalled: &str) -> Selection {
    let lines = journalled.rsplit_once(':').and_then(|(file, range)| {
        let (a, b) = range.split_once('-')?;
        Some((file, (a.parse().ok()?, b.parse().ok()?)))
    });
    match lines {
        Some((file, lines)) => Selection {
            file: root.join(file),
            lines: Some(lines),
        },
        None => Selection {
            file: root.join(journalled),
            lines: None,
        },
    }
}

impl OriginalRun {
    /// The plan to follow from a plan document's `text` (the file, or the editor's unsaved
    /// buffer): parsed, checked against this run (its id, its steps), applied.
    pub fn follow(&self, text: &str) -> Result<(PlanDoc, FollowPlan), PlanDocError> {
        let doc = parse(text)?;
        if doc.run_id != self.run_id {
            return fail(
                1,
                format!(
                    "this plan document is for run {}, not run {}",
                    doc.run_id, self.run_id
                ),
            );
        }
        let (plan, mut changes) = apply(&self.plan, &doc)?;
        if flat(&self.goal) != doc.goal {
            changes.insert(
                0,
                format!("goal reworded: '{}' → '{}'", flat(&self.goal), doc.goal),
            );
        }
        let kept: HashSet<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
        let skipped = self
            .plan
            .steps
            .iter()
            .filter(|s| !kept.contains(s.id.as_str()))
            .map(|s| s.id.clone())
            .collect();
        let follow = FollowPlan {
            plan,
            from_run: self.run_id.clone(),
            changes,
            skipped,
        };
        Ok((doc, follow))
    }

    /// The request of a run that follows `follow`: a goal run with the document's goal, on the
    /// original run's selection.
    pub fn request(&self, doc: &PlanDoc, follow: FollowPlan, apply: bool) -> RunRequest {
        RunRequest {
            kind: RunKind::Goal,
            goal: doc.goal.clone(),
            selection: self.selection.clone(),
            paths: Vec::new(),
            plan_only: false,
            no_plan: false,
            apply,
            remove_line: None,
            apply_failing_tests: false,
            follow: Some(follow),
        }
    }
}

/// Everything a new run needs to follow run `run_id`'s plan document as saved under `root`:
/// the original run, the document, and the plan to follow. Errors say what failed; one in the
/// document names the file and the line ("…/plan.md: line 9: a step needs an id like **s2** …").
pub fn load_for_run(
    root: &Path,
    run_id: &str,
) -> Result<(OriginalRun, PlanDoc, FollowPlan), String> {
    let original = original_run(root, run_id)?;
    let bytes = match crate::util::read_regular_file(&original.plan_file, MAX_DOC_BYTES) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "run {run_id} has no plan document ({} is missing)",
                original.plan_file.display()
            ));
        }
        Err(err) => {
            return Err(format!(
                "cannot read {}: {err}",
                original.plan_file.display()
            ));
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(format!(
            "{} is not UTF-8 text",
            original.plan_file.display()
        ));
    };
    let (doc, follow) = original
        .follow(&text)
        .map_err(|err| format!("{}: {err}", original.plan_file.display()))?;
    Ok((original, doc, follow))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, title: &str, targets: &[&str], after: &[&str]) -> PlanStep {
        PlanStep {
            id: id.into(),
            title: title.into(),
            agent: StepAgent::Coder,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            depends_on: after.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn plan() -> Plan {
        Plan {
            summary: "Make the answer right and say why.".into(),
            steps: vec![
                step("s1", "Return 42", &["src/lib.rs"], &[]),
                step("s2", "Document it", &["src/lib.rs", "README.md"], &["s1"]),
                step("s3", "Add a test", &["tests/answer.rs"], &[]),
            ],
            risks: vec!["callers that expect 41".into()],
            tradeoffs: vec!["a literal, not a named constant".into()],
        }
    }

    fn doc_text() -> String {
        render("r1", "make the answer 42", &plan())
    }

    /// `text` with line `n` (1-based) replaced.
    fn replace_line(text: &str, n: usize, with: &str) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[n - 1] = with.to_string();
        lines.join("\n") + "\n"
    }

    /// The 1-based line of the first line containing `needle`.
    fn line_of(text: &str, needle: &str) -> usize {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle:?} not in {text}"))
    }

    fn err(text: &str) -> PlanDocError {
        match parse(text) {
            Ok(doc) => panic!("accepted: {doc:?}\n{text}"),
            Err(err) => err,
        }
    }

    #[test]
    fn render_parse_apply_is_the_identity() {
        let text = doc_text();
        assert!(text.starts_with("# Plan for run r1\n"), "{text}");
        assert!(
            text.contains(
                "- [x] **s2** (coder) Document it — targets: src/lib.rs, README.md — after: s1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("## Risks\n\n- callers that expect 41\n"),
            "{text}"
        );
        assert!(text.contains("_Edit, then run: untick a step"), "{text}");
        assert!(text.contains("conductor run --from-plan r1"), "{text}");
        let doc = parse(&text).expect("parses");
        assert_eq!(doc.run_id, "r1");
        assert_eq!(doc.goal, "make the answer 42");
        assert_eq!(doc.steps.len(), 3);
        assert!(doc.steps.iter().all(|s| s.checked));
        let (followed, changes) = apply(&plan(), &doc).expect("applies");
        assert_eq!(followed, plan());
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn a_plan_out_of_dependency_order_renders_in_run_order_and_round_trips_without_changes() {
        let mut p = plan();
        p.steps.swap(0, 1); // s2 (after s1) listed first by the model
        let text = render("r1", "g", &p);
        assert!(
            line_of(&text, "**s1**") < line_of(&text, "**s2**"),
            "{text}"
        );
        let (followed, changes) = apply(&p, &parse(&text).expect("parses")).expect("applies");
        assert!(changes.is_empty(), "{changes:?}");
        // The order the run does them in: s3 is ready before s2, which waits for s1.
        let ids: Vec<&str> = followed.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["s1", "s3", "s2"]);
    }

    #[test]
    fn unticked_reworded_retargeted_and_reordered_steps_are_followed_and_described() {
        let text = doc_text();
        let s1 = line_of(&text, "**s1**");
        let s2 = line_of(&text, "**s2**");
        let s3 = line_of(&text, "**s3**");
        let text = replace_line(
            &text,
            s1,
            "- [x] **s3** (coder) Add a regression test — targets: tests/answer.rs, tests/more.rs",
        );
        let text = replace_line(
            &text,
            s2,
            "- [x] **s1** (coder) Return 42 — targets: src/lib.rs",
        );
        let text = replace_line(
            &text,
            s3,
            "- [ ] **s2** (coder) Document it — targets: src/lib.rs — after: s1",
        );
        let doc = parse(&text).expect("parses");
        let (followed, changes) = apply(&plan(), &doc).expect("applies");
        let ids: Vec<&str> = followed.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["s3", "s1"]);
        assert_eq!(followed.steps[0].title, "Add a regression test");
        assert_eq!(
            followed.steps[0].targets,
            ["tests/answer.rs", "tests/more.rs"]
        );
        assert_eq!(
            changes,
            [
                "step s3 reworded: 'Add a test' → 'Add a regression test'",
                "step s3 targets: tests/answer.rs → tests/answer.rs, tests/more.rs",
                "step s2 skipped",
                "steps reordered: s3 before s1 (order now: s3, s1)",
            ]
        );
    }

    #[test]
    fn a_step_wrapped_by_an_editor_reads_as_one_step() {
        // The goal and the help note wrapped too.
        let text = doc_text()
            .replace("**Goal:** make the answer", "**Goal:** make the\nanswer")
            .replace("move lines to reorder", "move lines\n  to reorder");
        let doc = parse(&text).expect("parses");
        assert_eq!(doc.goal, "make the answer 42");
        assert_eq!(doc.summary, flat(&plan().summary));
        let text = text.replace(
            "- [x] **s2** (coder) Document it — targets: src/lib.rs, README.md — after: s1",
            "- [x] **s2** (coder) Document\n  it — targets: src/lib.rs,\nREADME.md —\n  after: s1",
        );
        let doc = parse(&text).expect("parses");
        let (followed, changes) = apply(&plan(), &doc).expect("applies");
        assert_eq!(followed, plan());
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn a_removed_line_skips_its_step_and_risks_edits_are_kept() {
        let text = doc_text();
        let s3 = line_of(&text, "**s3**");
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(s3 - 1);
        let text = lines
            .join("\n")
            .replace("callers that expect 41", "callers in other crates");
        let (followed, changes) = apply(&plan(), &parse(&text).expect("parses")).expect("applies");
        assert_eq!(followed.steps.len(), 2);
        assert_eq!(followed.risks, ["callers in other crates"]);
        assert_eq!(
            changes,
            ["step s3 skipped (its line was removed)", "risks edited"]
        );
    }

    #[test]
    fn a_missing_header_is_an_error_on_the_first_line() {
        let text = doc_text().replacen("# Plan for run r1", "# My plan", 1);
        let e = err(&text);
        assert_eq!(e.line, 1);
        assert!(e.message.contains("# Plan for run <id>"), "{e}");
        let e = err(&format!(
            "\n\n{}",
            doc_text().replacen("# Plan for run r1\n\n", "", 1)
        ));
        assert_eq!(e.line, 3, "{e}");
        let text = doc_text();
        let goal = line_of(&text, "**Goal:**");
        let e = err(&replace_line(&text, goal, "Goal: none"));
        assert_eq!(e.line, line_of(&text, "## Steps"), "{e}");
        assert!(e.message.contains("**Goal:**"), "{e}");
        let e = err(&text.replace("## Steps", "## Stuff"));
        assert_eq!(e.line, line_of(&text, "## Steps"), "{e}");
        assert!(e.message.contains("unknown section"), "{e}");
    }

    #[test]
    fn a_step_without_an_id_checkbox_or_agent_is_an_error_naming_its_line() {
        let text = doc_text();
        let s2 = line_of(&text, "**s2**");
        for (line, says) in [
            (
                "- [x] s2 (coder) Document it",
                "a step needs an id like **s2**",
            ),
            ("- **s2** (coder) Document it", "checkbox"),
            ("- [x] **s2** Document it", "agent in parentheses"),
            (
                "- [x] **s2** (reviewer) Document it",
                "agent in parentheses",
            ),
            ("- [x] **s2** (coder)  — targets: a.rs", "has no title"),
            ("Document it", "not a step"),
        ] {
            let broken = replace_line(&text, s2, line);
            // A line after a blank one, not a wrapped step.
            let broken = if line == "Document it" {
                broken.replace("\nDocument it", "\n\nDocument it")
            } else {
                broken
            };
            let e = err(&broken);
            let expected = if line == "Document it" { s2 + 1 } else { s2 };
            assert_eq!(e.line, expected, "{line}: {e}");
            assert!(e.message.contains(says), "{line}: {e}");
            assert!(
                e.to_string().starts_with(&format!("line {expected}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn duplicate_ids_and_unknown_or_misplaced_dependencies_are_errors_naming_the_line() {
        let text = doc_text();
        let (s1, s2, s3) = (
            line_of(&text, "**s1**"),
            line_of(&text, "**s2**"),
            line_of(&text, "**s3**"),
        );
        let e = err(&replace_line(&text, s3, "- [x] **s1** (coder) Again"));
        assert_eq!(e.line, s3);
        assert!(e.message.contains("s1 is used twice (first on line"), "{e}");

        let e = err(&replace_line(
            &text,
            s3,
            "- [x] **s3** (coder) Add a test — after: s9",
        ));
        assert_eq!(e.line, s3);
        assert!(e.message.contains("s9, which is not a step"), "{e}");

        let e = err(&replace_line(
            &text,
            s3,
            "- [x] **s3** (coder) Add a test — after: s3",
        ));
        assert!(e.message.contains("after itself"), "{e}");

        // s2 moved above s1, which it comes after.
        let mut lines: Vec<&str> = text.lines().collect();
        lines.swap(s1 - 1, s2 - 1);
        let swapped = lines.join("\n");
        let e = err(&swapped);
        assert_eq!(e.line, s1, "{e}");
        assert!(e.message.contains("s1 is below it"), "{e}");
    }

    #[test]
    fn a_ticked_step_after_an_unticked_one_names_both() {
        let text = doc_text();
        let s1 = line_of(&text, "**s1**");
        let s2 = line_of(&text, "**s2**");
        let e = err(&text.replace("- [x] **s1**", "- [ ] **s1**"));
        assert_eq!(e.line, s2);
        assert!(
            e.message.contains("step s2 is ticked")
                && e.message
                    .contains(&format!("s1, which is unticked on line {s1}")),
            "{e}"
        );
        // Unticking both is fine: s3 remains.
        let both = text
            .replace("- [x] **s1**", "- [ ] **s1**")
            .replace("- [x] **s2**", "- [ ] **s2**");
        assert!(parse(&both).is_ok());
    }

    #[test]
    fn nothing_ticked_is_an_error_on_the_steps_heading() {
        let text = doc_text().replace("- [x]", "- [ ]");
        let e = err(&text);
        assert_eq!(e.line, line_of(&text, "## Steps"));
        assert!(e.message.contains("no step is ticked"), "{e}");
        let e = err(&doc_text().replace("## Steps", "Steps"));
        assert!(e.message.contains("no `## Steps` section"), "{e}");
    }

    #[test]
    fn a_new_step_or_a_target_outside_the_workspace_is_refused_by_apply_naming_the_line() {
        let text = doc_text();
        let s3 = line_of(&text, "**s3**");
        for (target, allowed) in [
            ("../elsewhere/x.rs", false),
            ("/etc/passwd", false),
            ("src/../../x.rs", false),
            ("C:\\x.rs", false),
            ("~/x.rs", false),
            ("src/lib.rs::answer", true),
            ("tests/a.rs:10-20", true),
        ] {
            let edited = replace_line(
                &text,
                s3,
                &format!("- [x] **s3** (coder) Add a test — targets: {target}"),
            );
            let result = apply(&plan(), &parse(&edited).expect("parses"));
            match (result, allowed) {
                (Ok(_), true) => {}
                (Err(e), false) => {
                    assert_eq!(e.line, s3, "{target}: {e}");
                    assert!(e.message.contains("outside the workspace"), "{target}: {e}");
                }
                (other, _) => panic!("{target}: {other:?}"),
            }
        }
        let s3_line = text.lines().nth(s3 - 1).unwrap_or_default().to_string();
        let added = text.replacen(
            &s3_line,
            &format!("{s3_line}\n- [x] **s4** (coder) Something new"),
            1,
        );
        let doc = parse(&added).expect("parses");
        let e = apply(&plan(), &doc).expect_err("a new step is refused");
        assert_eq!(e.line, line_of(&added, "**s4**"));
        assert!(e.message.contains("not in run r1's plan"), "{e}");
    }

    #[test]
    fn moves_describe_a_swap_as_one_move() {
        assert_eq!(
            moves(&["s1", "s2", "s3"], &["s3", "s1", "s2"]),
            ["s3 before s1, s2"]
        );
        assert_eq!(
            moves(&["s1", "s2", "s3"], &["s2", "s3", "s1"]),
            ["s1 after s2, s3"]
        );
        assert_eq!(moves(&["s1", "s2"], &["s2", "s1"]).len(), 1);
        assert!(moves(&["a", "b"], &["a", "b"]).is_empty());
    }

    #[test]
    fn the_run_id_is_checked_before_any_path_is_built() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in ["../x", "a/b", "", "..", "r1.jsonl"] {
            let e = original_run(dir.path(), bad).expect_err("refused");
            assert!(e.contains("is not a run id"), "{bad}: {e}");
        }
        let e = original_run(dir.path(), "20261201-153000-00ab12").expect_err("no such run");
        assert!(e.contains("no run 20261201-153000-00ab12"), "{e}");
    }

    #[test]
    fn journalled_selections_read_back() {
        let root = Path::new("/w");
        assert_eq!(
            selection_of(root, "src/lib.rs:3-9"),
            Selection {
                file: "/w/src/lib.rs".into(),
                lines: Some((3, 9))
            }
        );
        assert_eq!(selection_of(root, "src/lib.rs").lines, None);
    }
}
