//! The reply formats of `docs/model-protocol.md`: parsers for the planner's plan, the coder's
//! edit blocks and decisions, the security agent's findings and the explainer's trade-off
//! explanation.
//!
//! Parsing is tolerant (prose around the fenced blocks is ignored, a bare JSON reply is taken
//! when no fence is found) and validation is strict (every required key present and typed, ids
//! unique, dependencies known, one decision per edit block, confidences within 0..=1). A
//! [`ProtocolError`] is written to be quoted back to the model in the one corrective retry.

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A reply that does not follow the protocol, with a message for the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    /// The user turn of the corrective retry: what was wrong and what to send instead.
    pub fn corrective_prompt(&self, format_reminder: &str) -> String {
        format!(
            "Your previous reply could not be used: {}.\nReply again with the complete answer in exactly this format, and nothing that contradicts it:\n{format_reminder}",
            self.0
        )
    }
}

/// The planner's format, for system prompts and the corrective retry.
pub const PLANNER_FORMAT: &str = r#"One fenced ```json block:
{"summary": "...", "steps": [{"id": "s1", "title": "...", "agent": "coder" | "tester" | "security", "targets": ["path or item"], "depends_on": ["id of an earlier step"]}], "risks": ["..."], "tradeoffs": ["..."]}"#;

/// The coder's format, for system prompts and the corrective retry.
pub const CODER_FORMAT: &str = r#"One or more edit blocks, each being the file path (relative to the workspace root) alone on a line, then:
<<<<<<< SEARCH
exact existing lines (empty to create a new file)
=======
replacement lines
>>>>>>> REPLACE
then one fenced ```json block with one decision per edit block:
{"decisions": [{"block": 1, "summary": "...", "rationale": "...", "alternatives": ["..."], "tradeoffs": ["..."]}]}"#;

/// The security agent's format, for system prompts and the corrective retry.
pub const SECURITY_FORMAT: &str = r#"One fenced ```json block:
{"findings": [{"file": "relative/path.rs", "line": 1, "cwe": "CWE-89", "severity": "low" | "medium" | "high" | "critical", "title": "...", "explanation": "...", "confidence": 0.0 to 1.0}], "static_verdicts": [{"finding": 1, "verdict": "agree" | "false_positive", "confidence": 0.0 to 1.0, "reason": "..."}]}
`static_verdicts` is optional: one entry per numbered static finding you can judge."#;

/// The explainer's format, for its system prompt and the corrective retry.
pub const EXPLAINER_FORMAT: &str = r#"One fenced ```json block; every key is required and no string or list may be empty:
{"summary": "one sentence", "what_it_does": "...", "design_choices": [{"choice": "...", "why": "..."}], "alternatives": [{"alternative": "...", "cost": "performance" | "safety" | "security" | "readability" | "coupling" | "complexity" | "maintainability" | "testability" | "compatibility" | "memory" | "correctness", "detail": "..."}], "failure_modes": [{"where": "...", "how": "...", "monitor": "..."}], "risks": ["..."]}"#;

/// Why [`ask_validated`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AskError {
    /// The model call failed.
    #[error(transparent)]
    Model(#[from] super::LlmError),
    /// The reply did not validate, twice.
    #[error(
        "the {agent} model's reply did not follow the protocol, even after a corrective retry: {error}"
    )]
    Invalid {
        /// The agent.
        agent: super::AgentRole,
        /// The second validation error.
        error: ProtocolError,
        /// Both replies, for usage and the journal.
        responses: Vec<super::ChatResponse>,
    },
}

/// Sends `request` and parses the reply with `parse`; a reply that does not validate gets one
/// corrective retry (the model's reply, then a user turn quoting the error and `format`). Returns
/// the parsed reply and every response (for usage and the journal).
pub async fn ask_validated<T>(
    client: &super::ModelClient,
    run: &super::Run,
    mut request: super::ChatRequest,
    parse: impl Fn(&str) -> Result<T, ProtocolError>,
    format: &str,
    on_delta: &mut (dyn FnMut(&str) + Send),
) -> Result<(T, Vec<super::ChatResponse>), AskError> {
    let first = client.chat(run, &request, on_delta).await?;
    let error = match parse(&first.text) {
        Ok(parsed) => return Ok((parsed, vec![first])),
        Err(error) => error,
    };
    tracing::debug!(run = %run.id, agent = %request.agent, %error, "reply did not validate; one corrective retry");
    request
        .messages
        .push(super::Message::assistant(first.text.clone()));
    request
        .messages
        .push(super::Message::user(error.corrective_prompt(format)));
    let second = client.chat(run, &request, on_delta).await?;
    match parse(&second.text) {
        Ok(parsed) => Ok((parsed, vec![first, second])),
        Err(error) => Err(AskError::Invalid {
            agent: request.agent,
            error,
            responses: vec![first, second],
        }),
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, ProtocolError> {
    Err(ProtocolError(message.into()))
}

/// Which agent a plan step is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepAgent {
    /// Writes code.
    Coder,
    /// Writes or runs tests.
    Tester,
    /// Reviews.
    Security,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    /// Unique within the plan.
    pub id: String,
    /// What the step does.
    pub title: String,
    /// Who does it.
    pub agent: StepAgent,
    /// Files or items it touches.
    pub targets: Vec<String>,
    /// Ids of steps that must finish first.
    pub depends_on: Vec<String>,
}

/// The planner's reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The plan in a sentence or two.
    pub summary: String,
    /// The steps, in a valid order or not (dependencies decide).
    pub steps: Vec<PlanStep>,
    /// What could go wrong.
    pub risks: Vec<String>,
    /// What was traded for what.
    pub tradeoffs: Vec<String>,
}

/// One SEARCH/REPLACE block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditBlock {
    /// The file, relative to the workspace root.
    pub path: String,
    /// The lines to find, each ending in `\n`; empty to create a new file.
    pub search: String,
    /// The lines to put in their place, each ending in `\n`.
    pub replace: String,
}

/// Why one edit block was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The edit block it explains, 1-based.
    pub block: usize,
    /// What the change does.
    pub summary: String,
    /// Why this way.
    pub rationale: String,
    /// What else was considered.
    pub alternatives: Vec<String>,
    /// What was traded for what.
    pub tradeoffs: Vec<String>,
}

/// The coder's reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoderReply {
    /// The edit blocks, in order.
    pub edits: Vec<EditBlock>,
    /// One decision per block, in block order.
    pub decisions: Vec<Decision>,
}

/// A severity, as models report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelSeverity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// One finding of the security agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFinding {
    /// The file, relative to the workspace root.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// `CWE-<number>`.
    pub cwe: String,
    /// How bad.
    pub severity: ModelSeverity,
    /// One line.
    pub title: String,
    /// Why it is a problem and how to fix it.
    pub explanation: String,
    /// 0.0 to 1.0.
    pub confidence: f64,
}

/// The security agent's reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityReport {
    /// The findings; empty when the change is fine.
    pub findings: Vec<ModelFinding>,
    /// The model's verdicts on the static analyser's findings (optional: a reply without them
    /// is valid, and a static finding without a verdict stands as it is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_verdicts: Vec<StaticVerdict>,
}

/// The model's verdict on one static finding. It annotates the finding; it never drops it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticVerdict {
    /// The finding's number in the list the model was shown, from 1.
    pub finding: usize,
    /// Whether the model agrees with it.
    pub verdict: StaticVerdictKind,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// Why.
    pub reason: String,
}

/// The two verdicts on a static finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaticVerdictKind {
    /// The finding is real.
    Agree,
    /// The finding is likely a false positive.
    FalsePositive,
}

/// A design choice visible in explained code, and why it was (probably) made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesignChoice {
    /// What was chosen.
    pub choice: String,
    /// Why.
    pub why: String,
}

/// What an alternative to explained code would mainly cost or gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cost {
    /// Speed, latency, throughput.
    Performance,
    /// Memory safety, panics, undefined behaviour.
    Safety,
    /// Exposure to attackers.
    Security,
    /// How easily the code is read.
    Readability,
    /// How tightly it ties modules together.
    Coupling,
    /// How much there is to understand.
    Complexity,
    /// How easily it is changed later.
    Maintainability,
    /// How easily it is tested.
    Testability,
    /// API, platform or version compatibility.
    Compatibility,
    /// Memory use.
    Memory,
    /// Whether it computes the right thing.
    Correctness,
}

impl Cost {
    /// The name in the format and in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Cost::Performance => "performance",
            Cost::Safety => "safety",
            Cost::Security => "security",
            Cost::Readability => "readability",
            Cost::Coupling => "coupling",
            Cost::Complexity => "complexity",
            Cost::Maintainability => "maintainability",
            Cost::Testability => "testability",
            Cost::Compatibility => "compatibility",
            Cost::Memory => "memory",
            Cost::Correctness => "correctness",
        }
    }
}

/// An alternative to explained code and what it would cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alternative {
    /// The other way to write it.
    pub alternative: String,
    /// What it would mainly cost (or gain).
    pub cost: Cost,
    /// How.
    pub detail: String,
}

/// Where explained code can fail, how, and how to see it happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureMode {
    /// The place (a line, a call, an input).
    #[serde(rename = "where")]
    pub location: String,
    /// How it fails.
    pub how: String,
    /// How to monitor or detect it (a metric, a log line, a test, an alert).
    pub monitor: String,
}

/// The explainer's reply: a trade-off explanation of a selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The explanation in one sentence (the decision hover shows it).
    pub summary: String,
    /// What the code does.
    pub what_it_does: String,
    /// The design choices visible in it.
    pub design_choices: Vec<DesignChoice>,
    /// The alternatives and their costs.
    pub alternatives: Vec<Alternative>,
    /// Where it can fail and how to monitor it.
    pub failure_modes: Vec<FailureMode>,
    /// What could go wrong around it (changes, misuse, assumptions).
    pub risks: Vec<String>,
}

/// The longest explanation summary, in characters: one sentence for a hover.
pub const MAX_SUMMARY_CHARS: usize = 300;
/// The longest `what_it_does`, in characters.
pub const MAX_PROSE_CHARS: usize = 4_000;
/// The longest field of a list item, in characters.
pub const MAX_ITEM_CHARS: usize = 1_000;
/// The most items in one list of an explanation.
pub const MAX_ITEMS: usize = 12;

/// A fenced block: its info string and its body.
struct Fence<'a> {
    info: &'a str,
    body: String,
}

/// The fenced blocks of `lines` (an unterminated fence runs to the end).
fn fences<'a>(lines: &[&'a str]) -> Vec<Fence<'a>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let mut body = String::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                body.push_str(lines[i]);
                body.push('\n');
                i += 1;
            }
            out.push(Fence {
                info: info.trim(),
                body,
            });
        }
        i += 1;
    }
    out
}

/// The one JSON document of a reply: the one ```json fence, or else the one untagged fence, or
/// else the whole reply if it is a JSON object.
fn json_block(lines: &[&str]) -> Result<String, ProtocolError> {
    let all = fences(lines);
    let tagged: Vec<&Fence<'_>> = all
        .iter()
        .filter(|f| f.info.eq_ignore_ascii_case("json"))
        .collect();
    match tagged.len() {
        1 => return Ok(tagged[0].body.clone()),
        0 => {}
        n => return fail(format!("expected exactly one ```json block, found {n}")),
    }
    let untagged: Vec<&Fence<'_>> = all
        .iter()
        .filter(|f| f.info.is_empty() && f.body.trim_start().starts_with('{'))
        .collect();
    if untagged.len() == 1 {
        return Ok(untagged[0].body.clone());
    }
    let whole = lines.join("\n");
    if whole.trim_start().starts_with('{') {
        return Ok(whole);
    }
    fail("no ```json block found")
}

/// The one JSON block of a reply (the same tolerant rules as every format here), parsed into
/// `T` with errors that name the offending key: for agent formats defined outside this module.
pub fn parse_json_reply<T: DeserializeOwned>(reply: &str) -> Result<T, ProtocolError> {
    let lines: Vec<&str> = reply.lines().collect();
    from_json(&json_block(&lines)?)
}

fn from_json<T: DeserializeOwned>(json: &str) -> Result<T, ProtocolError> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path.is_empty() || path == "." {
            ProtocolError(format!("the JSON block is invalid: {inner}"))
        } else {
            ProtocolError(format!("in the JSON block, `{path}`: {inner}"))
        }
    })
}

fn non_empty(value: &str, what: &str) -> Result<(), ProtocolError> {
    if value.trim().is_empty() {
        return fail(format!("{what} is empty"));
    }
    Ok(())
}

/// Parses and validates a planner reply.
pub fn parse_plan(reply: &str) -> Result<Plan, ProtocolError> {
    let lines: Vec<&str> = reply.lines().collect();
    let plan: Plan = from_json(&json_block(&lines)?)?;
    non_empty(&plan.summary, "`summary`")?;
    if plan.steps.is_empty() {
        return fail("`steps` is empty: a plan needs at least one step");
    }
    let mut ids = HashSet::new();
    for (i, step) in plan.steps.iter().enumerate() {
        non_empty(&step.id, &format!("`steps[{i}].id`"))?;
        non_empty(&step.title, &format!("`steps[{i}].title`"))?;
        if !ids.insert(step.id.as_str()) {
            return fail(format!("step id {:?} is used twice", step.id));
        }
    }
    for step in &plan.steps {
        for dep in &step.depends_on {
            if !ids.contains(dep.as_str()) {
                return fail(format!(
                    "step {:?} depends on {dep:?}, which is not a step id",
                    step.id
                ));
            }
            if dep == &step.id {
                return fail(format!("step {:?} depends on itself", step.id));
            }
        }
    }
    // Kahn's algorithm: every step must become ready, or the dependencies form a cycle.
    let mut done: HashSet<&str> = HashSet::new();
    while done.len() < plan.steps.len() {
        let ready: Vec<&str> = plan
            .steps
            .iter()
            .filter(|s| !done.contains(s.id.as_str()))
            .filter(|s| s.depends_on.iter().all(|d| done.contains(d.as_str())))
            .map(|s| s.id.as_str())
            .collect();
        if ready.is_empty() {
            let stuck: Vec<&str> = plan
                .steps
                .iter()
                .map(|s| s.id.as_str())
                .filter(|id| !done.contains(id))
                .collect();
            return fail(format!("the dependencies of steps {stuck:?} form a cycle"));
        }
        done.extend(ready);
    }
    Ok(plan)
}

fn marker(line: &str, ch: char, word: &str) -> bool {
    let line = line.trim_end();
    let run = line.chars().take_while(|&c| c == ch).count();
    (5..=9).contains(&run) && line[run..].trim() == word
}

fn divider(line: &str) -> bool {
    let line = line.trim_end();
    let run = line.chars().take_while(|&c| c == '=').count();
    (5..=9).contains(&run) && run == line.len()
}

/// A fence line (` ``` `, ` ```rust `, `~~~`): three or more backticks or tildes, then an info string.
fn fence_open(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// A closing fence: only backticks or only tildes, three or more.
fn fence_close(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 3 && (t.chars().all(|c| c == '`') || t.chars().all(|c| c == '~'))
}

/// The path line before a SEARCH marker, looking no further back than `floor` (the end of the
/// previous block): skips an opening fence and blank lines, strips decoration that models add
/// (backticks, bold, a heading, a trailing colon, a `File:` label, a leading `./`).
fn path_before(lines: &[&str], search_line: usize, floor: usize) -> Option<(usize, String)> {
    let mut j = search_line;
    while j > floor {
        j -= 1;
        let t = lines[j].trim();
        if t.is_empty() || fence_open(t) {
            continue;
        }
        let t = t.trim_start_matches('#').trim();
        let t = t
            .strip_prefix("File:")
            .or_else(|| t.strip_prefix("file:"))
            .unwrap_or(t)
            .trim();
        let mut t = t
            .trim_matches(|c| c == '`' || c == '*')
            .trim_end_matches(':')
            .trim();
        while let Some(rest) = t.strip_prefix("./") {
            t = rest;
        }
        return (!t.is_empty()).then(|| (j, t.to_string()));
    }
    None
}

fn check_path(path: &str, block: usize) -> Result<(), ProtocolError> {
    let p = std::path::Path::new(path);
    if p.is_absolute() || path.starts_with('/') || path.starts_with('\\') {
        return fail(format!(
            "edit block {block}: the path {path:?} is absolute; give it relative to the workspace root"
        ));
    }
    if p.components().any(|c| c == std::path::Component::ParentDir) {
        return fail(format!(
            "edit block {block}: the path {path:?} leaves the workspace (`..`)"
        ));
    }
    Ok(())
}

/// The lines of a reply, with a `\r` before each `\n` dropped: a reply sent with CRLF line
/// endings reads like one sent with LF. (The applier matches line by line, so SEARCH text still
/// finds a CRLF file, and replacements take the file's own line endings.)
fn reply_lines(reply: &str) -> Vec<&str> {
    // Like `str::lines`: a final newline does not start one more, empty, line.
    let body = reply.strip_suffix('\n').unwrap_or(reply);
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// The edit blocks of a reply and the lines outside them (prose, and the decisions block).
///
/// Structural checks only: every SEARCH marker has a path line before it (a path is one word:
/// prose such as "Here is the change:" is not taken for one), a `=======` and a
/// `>>>>>>> REPLACE` after it, and a block is not empty. Errors name the block by its number.
/// Whether the path is inside the workspace, and whether SEARCH matches, is for the applier.
fn split_blocks<'a>(lines: &[&'a str]) -> Result<(Vec<EditBlock>, Vec<&'a str>), ProtocolError> {
    let mut edits = Vec::new();
    // Lines outside the edit blocks, with their indexes; the decisions block is among them.
    let mut outside: Vec<(usize, &str)> = Vec::new();
    let mut floor = 0;
    let mut i = 0;
    while i < lines.len() {
        if !marker(lines[i], '<', "SEARCH") {
            outside.push((i, lines[i]));
            i += 1;
            continue;
        }
        let n = edits.len() + 1;
        let Some((path_line, path)) = path_before(lines, i, floor) else {
            return fail(format!(
                "edit block {n} has no file path on the line before `<<<<<<< SEARCH`"
            ));
        };
        // Paths with spaces are rare in source trees, and prose before a block ("Here is the
        // change:") is common; refusing whitespace keeps prose from being taken for a path.
        if path.contains(char::is_whitespace) {
            return fail(format!(
                "edit block {n}: the line before `<<<<<<< SEARCH` must be the file path alone, found {path:?}"
            ));
        }
        // The path line, and a fence opened right before it, belong to the block.
        let first = if path_line > floor && fence_open(lines[path_line - 1]) {
            path_line - 1
        } else {
            path_line
        };
        outside.retain(|(index, _)| *index < first);
        let mut search = String::new();
        i += 1;
        while i < lines.len() && !divider(lines[i]) {
            if marker(lines[i], '>', "REPLACE") || marker(lines[i], '<', "SEARCH") {
                return fail(format!(
                    "edit block {n} ({path}): `=======` is missing between SEARCH and REPLACE"
                ));
            }
            search.push_str(lines[i]);
            search.push('\n');
            i += 1;
        }
        if i == lines.len() {
            return fail(format!(
                "edit block {n} ({path}) is unterminated: `=======` and `>>>>>>> REPLACE` are missing"
            ));
        }
        let mut replace = String::new();
        i += 1;
        while i < lines.len() && !marker(lines[i], '>', "REPLACE") {
            if marker(lines[i], '<', "SEARCH") || divider(lines[i]) {
                return fail(format!(
                    "edit block {n} ({path}): `>>>>>>> REPLACE` is missing"
                ));
            }
            replace.push_str(lines[i]);
            replace.push('\n');
            i += 1;
        }
        if i == lines.len() {
            return fail(format!(
                "edit block {n} ({path}) is unterminated: `>>>>>>> REPLACE` is missing"
            ));
        }
        i += 1;
        // A fence the model wrapped the block in closes right after it.
        if lines.get(i).is_some_and(|l| fence_close(l)) {
            i += 1;
        }
        floor = i;
        if search.is_empty() && replace.is_empty() {
            return fail(format!(
                "edit block {n} ({path}) is empty: both SEARCH and REPLACE have no lines"
            ));
        }
        edits.push(EditBlock {
            path,
            search,
            replace,
        });
    }
    if edits.is_empty() {
        return fail(
            "no edit blocks found (a file path line, then `<<<<<<< SEARCH`, the lines to find, `=======`, the new lines, `>>>>>>> REPLACE`)",
        );
    }
    Ok((edits, outside.into_iter().map(|(_, line)| line).collect()))
}

/// The edit blocks of a reply, without the decisions block: for `conductor apply`, where the
/// reply may have been pasted from a chat window. Paths are as written (decoration stripped);
/// confining them is the applier's job, so that one bad path refuses one block, not the reply.
pub fn parse_edit_blocks(reply: &str) -> Result<Vec<EditBlock>, ProtocolError> {
    split_blocks(&reply_lines(reply)).map(|(edits, _)| edits)
}

/// Parses and validates a coder reply: edit blocks, then one JSON block of decisions.
///
/// A block whose SEARCH and REPLACE are identical parses: the applier reports it as a no-op.
pub fn parse_coder(reply: &str) -> Result<CoderReply, ProtocolError> {
    let lines = reply_lines(reply);
    let (edits, outside) = split_blocks(&lines)?;
    for (i, edit) in edits.iter().enumerate() {
        check_path(&edit.path, i + 1)?;
    }
    #[derive(Deserialize)]
    struct Decisions {
        decisions: Vec<Decision>,
    }
    let decisions: Decisions = from_json(&json_block(&outside)?)?;
    let mut decisions = decisions.decisions;
    decisions.sort_by_key(|d| d.block);
    let mut seen = HashSet::new();
    for d in &decisions {
        if d.block == 0 || d.block > edits.len() {
            return fail(format!(
                "decision for block {} does not match an edit block (there are {}; blocks count from 1)",
                d.block,
                edits.len()
            ));
        }
        if !seen.insert(d.block) {
            return fail(format!("block {} has two decisions", d.block));
        }
        non_empty(&d.summary, &format!("the summary of block {}", d.block))?;
        non_empty(&d.rationale, &format!("the rationale of block {}", d.block))?;
    }
    if let Some(missing) = (1..=edits.len()).find(|b| !seen.contains(b)) {
        return fail(format!("edit block {missing} has no decision"));
    }
    Ok(CoderReply { edits, decisions })
}

/// Parses and validates a security reply.
pub fn parse_security(reply: &str) -> Result<SecurityReport, ProtocolError> {
    let lines: Vec<&str> = reply.lines().collect();
    let report: SecurityReport = from_json(&json_block(&lines)?)?;
    for (i, f) in report.findings.iter().enumerate() {
        non_empty(&f.file, &format!("`findings[{i}].file`"))?;
        non_empty(&f.title, &format!("`findings[{i}].title`"))?;
        non_empty(&f.explanation, &format!("`findings[{i}].explanation`"))?;
        if f.line == 0 {
            return fail(format!("`findings[{i}].line` is 0; lines count from 1"));
        }
        let digits = f.cwe.strip_prefix("CWE-").unwrap_or("");
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return fail(format!(
                "`findings[{i}].cwe` is {:?}; write it as `CWE-<number>`, e.g. `CWE-89`",
                f.cwe
            ));
        }
        if !(0.0..=1.0).contains(&f.confidence) {
            return fail(format!(
                "`findings[{i}].confidence` is {}; it must be between 0.0 and 1.0",
                f.confidence
            ));
        }
    }
    for (i, v) in report.static_verdicts.iter().enumerate() {
        if v.finding == 0 {
            return fail(format!(
                "`static_verdicts[{i}].finding` is 0; the static findings are numbered from 1"
            ));
        }
        if !(0.0..=1.0).contains(&v.confidence) {
            return fail(format!(
                "`static_verdicts[{i}].confidence` is {}; it must be between 0.0 and 1.0",
                v.confidence
            ));
        }
    }
    Ok(report)
}

/// `value` is not empty and at most `max` characters.
fn bounded(value: &str, what: &str, max: usize) -> Result<(), ProtocolError> {
    non_empty(value, what)?;
    let chars = value.chars().count();
    if chars > max {
        return fail(format!(
            "{what} is {chars} characters long; keep it to {max} at most"
        ));
    }
    Ok(())
}

/// `list` has between 1 and [`MAX_ITEMS`] items.
fn list_size<T>(list: &[T], what: &str) -> Result<(), ProtocolError> {
    if list.is_empty() {
        return fail(format!("{what} is empty: give at least one"));
    }
    if list.len() > MAX_ITEMS {
        return fail(format!(
            "{what} has {} items; give the {MAX_ITEMS} most important at most",
            list.len()
        ));
    }
    Ok(())
}

/// Parses and validates an explainer reply: every key present, no string or list empty, the
/// summary one sentence on one line, every field and list within its cap.
pub fn parse_explanation(reply: &str) -> Result<Explanation, ProtocolError> {
    let lines: Vec<&str> = reply.lines().collect();
    let e: Explanation = from_json(&json_block(&lines)?)?;
    bounded(&e.summary, "`summary`", MAX_SUMMARY_CHARS)?;
    if e.summary.trim().contains('\n') {
        return fail("`summary` spans several lines; make it one sentence");
    }
    bounded(&e.what_it_does, "`what_it_does`", MAX_PROSE_CHARS)?;
    list_size(&e.design_choices, "`design_choices`")?;
    for (i, d) in e.design_choices.iter().enumerate() {
        bounded(
            &d.choice,
            &format!("`design_choices[{i}].choice`"),
            MAX_ITEM_CHARS,
        )?;
        bounded(
            &d.why,
            &format!("`design_choices[{i}].why`"),
            MAX_ITEM_CHARS,
        )?;
    }
    list_size(&e.alternatives, "`alternatives`")?;
    for (i, a) in e.alternatives.iter().enumerate() {
        bounded(
            &a.alternative,
            &format!("`alternatives[{i}].alternative`"),
            MAX_ITEM_CHARS,
        )?;
        bounded(
            &a.detail,
            &format!("`alternatives[{i}].detail`"),
            MAX_ITEM_CHARS,
        )?;
    }
    list_size(&e.failure_modes, "`failure_modes`")?;
    for (i, f) in e.failure_modes.iter().enumerate() {
        bounded(
            &f.location,
            &format!("`failure_modes[{i}].where`"),
            MAX_ITEM_CHARS,
        )?;
        bounded(&f.how, &format!("`failure_modes[{i}].how`"), MAX_ITEM_CHARS)?;
        bounded(
            &f.monitor,
            &format!("`failure_modes[{i}].monitor`"),
            MAX_ITEM_CHARS,
        )?;
    }
    list_size(&e.risks, "`risks`")?;
    for (i, r) in e.risks.iter().enumerate() {
        bounded(r, &format!("`risks[{i}]`"), MAX_ITEM_CHARS)?;
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"Sure! Here is the plan.

```json
{"summary": "Add retry", "steps": [
  {"id": "s1", "title": "Write retry", "agent": "coder", "targets": ["src/net.rs"], "depends_on": []},
  {"id": "s2", "title": "Test it", "agent": "tester", "targets": [], "depends_on": ["s1"]}
], "risks": ["timeouts"], "tradeoffs": []}
```
Let me know."#;

    #[test]
    fn a_plan_with_prose_around_it_parses() {
        let plan = parse_plan(PLAN).expect("valid plan");
        assert_eq!(plan.steps.len(), 2);
        assert_eq!(plan.steps[1].agent, StepAgent::Tester);
    }

    #[test]
    fn plan_errors_name_the_problem() {
        let bad_agent = PLAN.replace("\"tester\"", "\"writer\"");
        let err = parse_plan(&bad_agent).expect_err("bad agent");
        assert!(err.0.contains("steps[1].agent"), "{err}");
        let unknown_dep = PLAN.replace("[\"s1\"]", "[\"s9\"]");
        assert!(parse_plan(&unknown_dep).expect_err("dep").0.contains("s9"));
        let cycle = PLAN.replace("\"depends_on\": []}", "\"depends_on\": [\"s2\"]}");
        assert!(parse_plan(&cycle).expect_err("cycle").0.contains("cycle"));
        let missing = PLAN.replace("\"risks\": [\"timeouts\"], ", "");
        assert!(
            parse_plan(&missing)
                .expect_err("missing")
                .0
                .contains("risks")
        );
        assert!(parse_plan("no json here").is_err());
    }

    const CODER: &str = "I'll change the function.\n\nsrc/lib.rs\n```rust\n<<<<<<< SEARCH\nfn a() {}\n=======\nfn a() { b() }\n>>>>>>> REPLACE\n```\n\n`src/new.rs`\n<<<<<<< SEARCH\n=======\npub fn b() {}\n>>>>>>> REPLACE\n\n```json\n{\"decisions\": [{\"block\": 2, \"summary\": \"new file\", \"rationale\": \"r\", \"alternatives\": [], \"tradeoffs\": []},\n {\"block\": 1, \"summary\": \"call b\", \"rationale\": \"r\", \"alternatives\": [\"inline\"], \"tradeoffs\": []}]}\n```\n";

    #[test]
    fn coder_blocks_and_decisions_parse() {
        let reply = parse_coder(CODER).expect("valid");
        assert_eq!(reply.edits.len(), 2);
        assert_eq!(reply.edits[0].path, "src/lib.rs");
        assert_eq!(reply.edits[0].search, "fn a() {}\n");
        assert_eq!(reply.edits[0].replace, "fn a() { b() }\n");
        assert_eq!(reply.edits[1].path, "src/new.rs");
        assert!(reply.edits[1].search.is_empty());
        assert_eq!(reply.decisions[0].block, 1);
    }

    #[test]
    fn coder_errors_name_the_block() {
        let missing_divider = CODER.replacen("=======\n", "", 1);
        assert!(
            parse_coder(&missing_divider)
                .expect_err("divider")
                .0
                .contains("block 1")
        );
        let no_decision = CODER.replace("{\"block\": 2, \"summary\": \"new file\", \"rationale\": \"r\", \"alternatives\": [], \"tradeoffs\": []},\n", "");
        let err = parse_coder(&no_decision).expect_err("decision");
        assert!(err.0.contains("block 2 has no decision"), "{err}");
        let escape = CODER.replace("src/new.rs", "../outside.rs");
        assert!(
            parse_coder(&escape)
                .expect_err("path")
                .0
                .contains("leaves the workspace")
        );
        let prose = CODER.replace("src/lib.rs\n```rust", "Here is the change.\n```rust");
        assert!(
            parse_coder(&prose)
                .expect_err("prose")
                .0
                .contains("file path alone")
        );
        let absolute = CODER.replace("src/new.rs", "/etc/passwd");
        assert!(
            parse_coder(&absolute)
                .expect_err("path")
                .0
                .contains("absolute")
        );
    }

    #[test]
    fn edit_blocks_tolerate_crlf_fences_and_decorated_paths() {
        let reply = "Here you go.\r\n\r\n`./src/a.rs`\r\n~~~rust\r\n<<<<<<< SEARCH\r\nfn a() {}\r\n=======\r\nfn a() { b() }\r\n>>>>>>> REPLACE\r\n~~~\r\n\r\n````\r\n./src/b.rs\r\n<<<<<<< SEARCH\r\nx\r\n=======\r\nx\r\n>>>>>>> REPLACE\r\n````\r\nDone.\r\n";
        let blocks = parse_edit_blocks(reply).expect("valid");
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].path, "src/a.rs");
        assert_eq!(blocks[0].search, "fn a() {}\n");
        assert_eq!(blocks[0].replace, "fn a() { b() }\n");
        assert_eq!(blocks[1].path, "src/b.rs");
        // Identical SEARCH and REPLACE parse: the applier reports them as a no-op.
        assert_eq!(blocks[1].search, blocks[1].replace);
    }

    #[test]
    fn edit_block_errors_name_the_block() {
        let one = "src/a.rs\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n";
        let no_path = format!("{one}<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n");
        let err = parse_edit_blocks(&no_path).expect_err("second has no path");
        assert!(err.0.contains("edit block 2 has no file path"), "{err}");
        let unterminated = format!("{one}src/b.rs\n<<<<<<< SEARCH\na\n=======\nb\n");
        let err = parse_edit_blocks(&unterminated).expect_err("unterminated");
        assert!(
            err.0.contains("edit block 2 (src/b.rs) is unterminated"),
            "{err}"
        );
        let no_divider = format!("{one}src/b.rs\n<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n");
        let err = parse_edit_blocks(&no_divider).expect_err("divider");
        assert!(
            err.0
                .contains("edit block 2 (src/b.rs): `=======` is missing"),
            "{err}"
        );
        // `..` and absolute paths parse here; the applier refuses them block by block.
        let outside = one.replace("src/a.rs", "../a.rs");
        assert_eq!(
            parse_edit_blocks(&outside).expect("parses")[0].path,
            "../a.rs"
        );
    }

    #[test]
    fn security_findings_are_checked() {
        let ok = "```json\n{\"findings\": [{\"file\": \"src/a.rs\", \"line\": 3, \"cwe\": \"CWE-78\", \"severity\": \"high\", \"title\": \"t\", \"explanation\": \"e\", \"confidence\": 0.9}]}\n```";
        assert_eq!(parse_security(ok).expect("valid").findings[0].line, 3);
        assert!(
            parse_security("```json\n{\"findings\": []}\n```")
                .expect("empty")
                .findings
                .is_empty()
        );
        let bad_cwe = ok.replace("CWE-78", "78");
        assert!(
            parse_security(&bad_cwe)
                .expect_err("cwe")
                .0
                .contains("CWE-<number>")
        );
        let bad_conf = ok.replace("0.9", "1.5");
        assert!(
            parse_security(&bad_conf)
                .expect_err("conf")
                .0
                .contains("between")
        );
        let bad_sev = ok.replace("high", "severe");
        assert!(
            parse_security(&bad_sev)
                .expect_err("sev")
                .0
                .contains("severity")
        );
    }

    #[test]
    fn verdicts_on_static_findings_are_optional_and_checked() {
        let with = |verdicts: &str| {
            format!("```json\n{{\"findings\": [], \"static_verdicts\": [{verdicts}]}}\n```")
        };
        let ok = with(
            "{\"finding\": 2, \"verdict\": \"false_positive\", \"confidence\": 0.7, \"reason\": \"constant\"}",
        );
        let report = parse_security(&ok).expect("valid");
        assert_eq!(report.static_verdicts.len(), 1);
        assert_eq!(report.static_verdicts[0].finding, 2);
        assert_eq!(
            report.static_verdicts[0].verdict,
            StaticVerdictKind::FalsePositive
        );
        let zero = ok.replace("\"finding\": 2", "\"finding\": 0");
        assert!(
            parse_security(&zero)
                .expect_err("0")
                .0
                .contains("numbered from 1")
        );
        let sure = ok.replace("0.7", "7");
        assert!(
            parse_security(&sure)
                .expect_err("confidence")
                .0
                .contains("static_verdicts[0].confidence")
        );
        let odd = ok.replace("false_positive", "maybe");
        assert!(parse_security(&odd).is_err(), "an unknown verdict");
    }

    #[test]
    fn the_corrective_prompt_quotes_the_error() {
        let err = parse_plan("nothing").expect_err("invalid");
        let prompt = err.corrective_prompt("```json {…} ```");
        assert!(prompt.contains("no ```json block found"), "{prompt}");
    }

    const EXPLANATION: &str = r#"Here is my analysis.

```json
{"summary": "Returns a fixed answer without any state.",
 "what_it_does": "`answer` returns the constant 41.",
 "design_choices": [{"choice": "a constant", "why": "no configuration is needed"}],
 "alternatives": [{"alternative": "read it from configuration", "cost": "coupling", "detail": "ties the function to the config module"}],
 "failure_modes": [{"where": "callers expecting 42", "how": "an off-by-one answer", "monitor": "a unit test asserting the value"}],
 "risks": ["the value is duplicated in tests"]}
```
"#;

    #[test]
    fn an_explanation_with_prose_around_it_parses() {
        let e = parse_explanation(EXPLANATION).expect("valid");
        assert_eq!(e.summary, "Returns a fixed answer without any state.");
        assert_eq!(e.alternatives[0].cost, Cost::Coupling);
        assert_eq!(e.failure_modes[0].location, "callers expecting 42");
        assert_eq!(e.risks.len(), 1);
    }

    #[test]
    fn an_explanation_with_a_missing_empty_or_oversized_field_is_refused() {
        let missing = EXPLANATION.replace(
            r#""risks": ["the value is duplicated in tests"]"#,
            r#""extra": 1"#,
        );
        let err = parse_explanation(&missing).expect_err("missing risks");
        assert!(err.0.contains("risks"), "{err}");
        let empty_list = EXPLANATION.replace(
            r#"[{"choice": "a constant", "why": "no configuration is needed"}]"#,
            "[]",
        );
        let err = parse_explanation(&empty_list).expect_err("empty list");
        assert!(err.0.contains("`design_choices` is empty"), "{err}");
        let blank = EXPLANATION.replace("the value is duplicated in tests", "  ");
        let err = parse_explanation(&blank).expect_err("blank risk");
        assert!(err.0.contains("`risks[0]` is empty"), "{err}");
        let blank_where = EXPLANATION.replace("callers expecting 42", "");
        let err = parse_explanation(&blank_where).expect_err("blank where");
        assert!(err.0.contains("`failure_modes[0].where` is empty"), "{err}");
        let long = EXPLANATION.replace(
            "Returns a fixed answer without any state.",
            &"word ".repeat(100),
        );
        let err = parse_explanation(&long).expect_err("long summary");
        assert!(err.0.contains("keep it to 300"), "{err}");
        let two_lines =
            EXPLANATION.replace("Returns a fixed answer without any state.", r"One.\nTwo.");
        let err = parse_explanation(&two_lines).expect_err("two lines");
        assert!(err.0.contains("one sentence"), "{err}");
        let many = format!("[{}]", vec![r#""r""#; MAX_ITEMS + 1].join(", "));
        let too_many = EXPLANATION.replace(r#"["the value is duplicated in tests"]"#, &many);
        let err = parse_explanation(&too_many).expect_err("too many");
        assert!(err.0.contains("has 13 items"), "{err}");
        let bad_cost = EXPLANATION.replace(r#""coupling""#, r#""vibes""#);
        let err = parse_explanation(&bad_cost).expect_err("bad cost");
        assert!(err.0.contains("alternatives[0].cost"), "{err}");
        assert!(parse_explanation("no json at all").is_err());
    }
}
