//! Security rules as data: each rule is one `queries/<language>/security/<name>.scm` file whose
//! leading `;;` comment lines hold the rule's metadata in TOML (format in `docs/rules.md`).
//!
//! Rules are parsed once per process. All rules of a language are also compiled into one
//! combined query, so a scan walks the tree once instead of once per rule.

use std::sync::OnceLock;

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use tree_sitter::Query;

use super::Severity;
use crate::syntax::{Language, compile_query};

/// The folder, relative to `queries/<language>/`, that holds security rules.
pub const RULES_FOLDER: &str = "security/";

/// One security rule: a tree-sitter query plus what to say about its matches.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `rust/<name>`.
    pub id: String,
    /// The language the query is written for.
    pub language: &'static str,
    /// The query file, relative to `queries/<language>/`.
    pub file: &'static str,
    /// A short title.
    pub title: String,
    /// CWE ids, such as `CWE-89`.
    pub cwe: Vec<String>,
    /// How bad a finding is.
    pub severity: Severity,
    /// How often a finding is right: `high`, `medium` or `low`.
    pub precision: String,
    /// The diagnostic message.
    pub message: String,
    /// Markdown: why it is dangerous, how to fix it, the trade-offs of the fix.
    pub explanation: String,
    /// Links for further reading.
    pub references: Vec<String>,
    /// Whether matches inside test code are ignored (unless the settings include tests).
    pub skip_tests: bool,
    /// Present for data-flow rules: the query's `@sink` must carry untrusted data.
    pub taint: Option<TaintSpec>,
    /// Mechanical fixes.
    pub fixes: Vec<FixTemplate>,
    /// Vulnerable and safe snippets, checked by the test suite.
    pub examples: Vec<Example>,
    /// The whole query file.
    pub source: &'static str,
}

/// What counts as untrusted at a data-flow rule's sink.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TaintSpec {
    /// Untrusted text counts (injection sinks).
    pub text: bool,
    /// Untrusted numbers count, even after parsing (allocation sizes, lengths).
    pub numbers: bool,
    /// A string built with `format!`/`+` from non-constant parts whose text reads like SQL
    /// counts even without a known source (parameterised queries are always the fix).
    pub formatted: bool,
}

impl Default for TaintSpec {
    fn default() -> Self {
        Self {
            text: true,
            numbers: false,
            formatted: false,
        }
    }
}

/// A mechanical fix, expressed on the captures of the match.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FixTemplate {
    /// The code action title.
    pub title: String,
    /// The capture whose text is replaced or before whose line text is inserted.
    #[serde(default = "default_target")]
    pub target: String,
    /// Replacement text; `{{name}}` stands for the text of capture `name`.
    #[serde(default)]
    pub replace: Option<String>,
    /// A line inserted above the target's line, at its indentation.
    #[serde(default)]
    pub insert_line_before: Option<String>,
}

fn default_target() -> String {
    "finding".into()
}

/// A snippet that shows a rule at work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// True for a vulnerable snippet: it must produce this rule on the line(s) marked
    /// `// finding`; false for a safe one, which must produce nothing.
    pub vulnerable: bool,
    /// The Rust source.
    pub code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: String,
    title: String,
    cwe: Vec<String>,
    severity: Severity,
    precision: String,
    message: String,
    explanation: String,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    skip_tests: bool,
    #[serde(default)]
    taint: Option<TaintSpec>,
    #[serde(default)]
    fix: Vec<FixTemplate>,
    examples: HeaderExamples,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderExamples {
    vulnerable: Vec<String>,
    safe: Vec<String>,
}

/// Splits a rule file into its TOML header (the leading `;;` lines, prefix removed) and query.
fn split_header(source: &str) -> (String, &str) {
    let mut header = String::new();
    let mut rest = source;
    while !rest.is_empty() {
        let (line, after) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let Some(content) = line.strip_prefix(";;") else {
            break;
        };
        header.push_str(content.strip_prefix(' ').unwrap_or(content));
        header.push('\n');
        rest = after;
    }
    (header, rest)
}

/// Parses one rule file.
pub(crate) fn parse_rule(
    language: &'static str,
    file: &'static str,
    source: &'static str,
) -> anyhow::Result<Rule> {
    let (header, _) = split_header(source);
    let header: Header =
        toml::from_str(&header).map_err(|e| anyhow!("metadata header: {}", e.message()))?;
    if !header.id.starts_with(&format!("{language}/")) {
        bail!("rule id `{}` must start with `{language}/`", header.id);
    }
    if !["high", "medium", "low"].contains(&header.precision.as_str()) {
        bail!(
            "precision `{}` must be high, medium or low",
            header.precision
        );
    }
    let mut examples: Vec<Example> = header
        .examples
        .vulnerable
        .into_iter()
        .map(|code| Example {
            vulnerable: true,
            code,
        })
        .collect();
    examples.extend(header.examples.safe.into_iter().map(|code| Example {
        vulnerable: false,
        code,
    }));
    Ok(Rule {
        id: header.id,
        language,
        file,
        title: header.title,
        cwe: header.cwe,
        severity: header.severity,
        precision: header.precision,
        message: header.message,
        explanation: header.explanation,
        references: header.references,
        skip_tests: header.skip_tests,
        taint: header.taint,
        fixes: header.fix,
        examples,
        source,
    })
}

/// The rules of one language compiled into one query.
pub(crate) struct Compiled {
    /// The combined query of every rule that compiled.
    pub query: Query,
    /// For each pattern of `query`, the index of its rule in [`rules`].
    pub pattern_rule: Vec<usize>,
}

struct Registry {
    rules: Vec<Rule>,
    problems: Vec<String>,
    compiled: Vec<(&'static str, Option<Compiled>)>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut rules = Vec::new();
        let mut problems = Vec::new();
        for language in Language::all() {
            for (name, source) in language.query_sources() {
                if !name.starts_with(RULES_FOLDER) {
                    continue;
                }
                match parse_rule(language.name, name, source) {
                    Ok(rule) => rules.push(rule),
                    Err(err) => {
                        let err = err.context(format!("queries/{}/{name}", language.name));
                        tracing::error!("security rule skipped: {err:#}");
                        problems.push(format!("{err:#}"));
                    }
                }
            }
        }
        let mut compiled = Vec::new();
        for language in Language::all() {
            match compile_language(language, &rules, &mut problems) {
                Ok(c) => compiled.push((language.name, Some(c))),
                Err(err) => {
                    tracing::error!("security rules of {} skipped: {err:#}", language.name);
                    problems.push(format!("{err:#}"));
                    compiled.push((language.name, None));
                }
            }
        }
        Registry {
            rules,
            problems,
            compiled,
        }
    })
}

fn compile_language(
    language: &Language,
    rules: &[Rule],
    problems: &mut Vec<String>,
) -> anyhow::Result<Compiled> {
    let mut combined = String::new();
    let mut pattern_rule = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        if rule.language != language.name {
            continue;
        }
        // Each rule is compiled on its own first, so that a broken rule is reported by name
        // and left out instead of taking every other rule down with it.
        let single = match compile_query(language, rule.source) {
            Ok(q) => q,
            Err(err) => {
                let err = err.context(format!("queries/{}/{}", rule.language, rule.file));
                tracing::error!("security rule skipped: {err:#}");
                problems.push(format!("{err:#}"));
                continue;
            }
        };
        pattern_rule.extend(std::iter::repeat_n(index, single.pattern_count()));
        combined.push_str(rule.source);
        combined.push('\n');
    }
    let query = compile_query(language, &combined).context("combining the security rules")?;
    if query.pattern_count() != pattern_rule.len() {
        bail!("combined security query has an unexpected number of patterns");
    }
    Ok(Compiled {
        query,
        pattern_rule,
    })
}

/// Every security rule of every language, in file order.
pub fn rules() -> &'static [Rule] {
    &registry().rules
}

/// The rule with this id, such as `rust/sql-injection`.
pub fn rule(id: &str) -> Option<&'static Rule> {
    rules().iter().find(|r| r.id == id)
}

/// Rule files that could not be loaded, with the reason (empty when all is well).
pub fn rule_problems() -> &'static [String] {
    &registry().problems
}

/// The combined query of a language's rules.
pub(crate) fn compiled(language: &Language) -> Option<&'static Compiled> {
    registry()
        .compiled
        .iter()
        .find(|(name, _)| *name == language.name)
        .and_then(|(_, c)| c.as_ref())
}
