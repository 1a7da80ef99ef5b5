//! Security rules as data: each rule is one `queries/<language>/security/<name>.scm` file whose
//! leading `;;` comment lines hold the rule's metadata in TOML (format in `docs/rules.md`).
//!
//! Rules are parsed once per process. All rules of a language are also compiled into one
//! combined query, so a scan walks the tree once instead of once per rule.

use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use tree_sitter::Query;

use super::{Category, Severity};
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
    /// A weakness (`security`, the default) or a hygiene `lint`.
    pub category: Category,
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
    /// Words that every match's top-level item contains: each inner list is a group, and an
    /// item must contain a word of every group (ASCII case-insensitive) for the rule's
    /// patterns to be worth running there. Empty: the rule runs everywhere.
    pub anchors: Vec<Vec<String>>,
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
    #[serde(default)]
    category: Category,
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
    #[serde(default)]
    anchors: Vec<Vec<String>>,
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
    if header
        .anchors
        .iter()
        .any(|group| group.is_empty() || group.iter().any(|w| w.trim().is_empty()))
    {
        bail!("anchors: every group needs at least one word, and words cannot be blank");
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
        category: header.category,
        precision: header.precision,
        message: header.message,
        explanation: header.explanation,
        references: header.references,
        skip_tests: header.skip_tests,
        taint: header.taint,
        fixes: header.fix,
        examples,
        anchors: header
            .anchors
            .into_iter()
            .map(|group| group.into_iter().map(|w| w.to_ascii_lowercase()).collect())
            .collect(),
        source,
    })
}

/// The rules of one language compiled into queries.
pub(crate) struct Compiled {
    /// The rules' patterns, combined: one query for most rules, and one of its own for each
    /// rule whose patterns are [`costly_to_match`]. Every rule that compiled is in one group.
    pub groups: Vec<Group>,
    /// Which top-level items are worth matching, from the rules' anchors; `None` when some
    /// rule with patterns has no anchors (then every item is).
    pub gate: Option<Gate>,
}

/// One combined query and the rules it holds.
pub(crate) struct Group {
    /// The combined query of the group's rules.
    pub query: Query,
    /// For each pattern of `query`, the index of its rule in [`rules`].
    pub pattern_rule: Vec<usize>,
    /// The rules (indexes in [`rules`]) with patterns in `query`, ascending.
    pub rules: Vec<usize>,
}

/// Whether a rule's query text holds a wildcard node with children, such as
/// `(block (_ (_ (call_expression …))))`. The query cursor keeps a state for every node such a
/// wildcard could match, beneath every node its pattern starts at, so in the combined query it
/// made every active item pay for it; in a query of its own it runs only where its rule's own
/// anchors are.
fn costly_to_match(source: &str) -> bool {
    source
        .lines()
        .filter(|line| !line.trim_start().starts_with(";;"))
        .any(|line| line.contains("(_ ("))
}

/// The anchor words of every rule of a language, found in one pass over a file's text.
pub(crate) struct Gate {
    /// Every distinct anchor word, lower-case, matched ASCII case-insensitively.
    words: AhoCorasick,
    /// For each word, the bits it sets: one bit per (rule, group).
    word_bits: Vec<Vec<usize>>,
    /// For each rule with patterns: its index in [`rules`] and the bits of its groups.
    rule_bits: Vec<(usize, Vec<usize>)>,
    /// Number of bits per item.
    bits: usize,
}

impl Gate {
    fn new(rules: &[Rule], with_patterns: &[usize]) -> anyhow::Result<Option<Gate>> {
        let mut words: Vec<String> = Vec::new();
        let mut word_bits: Vec<Vec<usize>> = Vec::new();
        let mut rule_bits = Vec::new();
        let mut bits = 0;
        for &index in with_patterns {
            let rule = &rules[index];
            if rule.anchors.is_empty() {
                return Ok(None);
            }
            let mut own = Vec::new();
            for group in &rule.anchors {
                for word in group {
                    let at = match words.iter().position(|w| w == word) {
                        Some(at) => at,
                        None => {
                            words.push(word.clone());
                            word_bits.push(Vec::new());
                            words.len() - 1
                        }
                    };
                    if !word_bits[at].contains(&bits) {
                        word_bits[at].push(bits);
                    }
                }
                own.push(bits);
                bits += 1;
            }
            rule_bits.push((index, own));
        }
        let words = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&words)
            .context("building the anchor matcher")?;
        Ok(Some(Gate {
            words,
            word_bits,
            rule_bits,
            bits,
        }))
    }

    /// Every anchor word in `text[span]`, for [`Gate::active`].
    pub(crate) fn find(&self, text: &str, span: Range<usize>) -> Anchors {
        let mut hits: Vec<(usize, usize, usize)> = self
            .words
            .find_overlapping_iter(&text.as_bytes()[span.clone()])
            .map(|m| {
                (
                    span.start + m.start(),
                    span.start + m.end(),
                    m.pattern().as_usize(),
                )
            })
            .collect();
        // Overlapping matches come in order of their end.
        hits.sort_unstable();
        Anchors { hits }
    }

    /// The anchor words in `text` (a short text such as a path), as indices for [`Anchors`].
    pub(crate) fn words_in(&self, text: &str) -> Vec<usize> {
        let mut words: Vec<usize> = self
            .words
            .find_overlapping_iter(text.as_bytes())
            .map(|m| m.pattern().as_usize())
            .collect();
        words.sort_unstable();
        words.dedup();
        words
    }

    /// Whether some rule that `wanted` finds a word of each of its anchor groups wholly
    /// inside `range`.
    pub(crate) fn active(
        &self,
        anchors: &Anchors,
        range: Range<usize>,
        wanted: impl Fn(usize) -> bool,
    ) -> bool {
        // Asked for every node the scan considers (and again per group): the mask lives on
        // the stack unless the rules have more anchor groups than it holds.
        let mut inline = [0u64; 4];
        let mut heap = Vec::new();
        let mask: &mut [u64] = if self.bits <= 64 * inline.len() {
            &mut inline
        } else {
            heap.resize(self.bits.div_ceil(64), 0u64);
            &mut heap
        };
        let first = anchors.hits.partition_point(|h| h.0 < range.start);
        for &(_, end, word) in anchors.hits[first..].iter().take_while(|h| h.0 < range.end) {
            if end <= range.end {
                for &bit in &self.word_bits[word] {
                    mask[bit / 64] |= 1 << (bit % 64);
                }
            }
        }
        self.rule_bits.iter().any(|(rule, own)| {
            wanted(*rule)
                && own
                    .iter()
                    .all(|&bit| mask[bit / 64] & (1 << (bit % 64)) != 0)
        })
    }
}

/// Where a file's anchor words are: (start, end, word), sorted.
pub(crate) struct Anchors {
    hits: Vec<(usize, usize, usize)>,
}

impl Anchors {
    /// These anchors and `extra` ones (start, end, word), sorted together.
    pub(crate) fn with(&self, extra: Vec<(usize, usize, usize)>) -> Anchors {
        let mut hits = self.hits.clone();
        hits.extend(extra);
        hits.sort_unstable();
        Anchors { hits }
    }
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
    let mut members: Vec<usize> = (0..rules.len())
        .filter(|&i| rules[i].language == language.name)
        .collect();
    let combine = |members: &[usize]| -> anyhow::Result<Group> {
        let mut combined = String::new();
        let mut starts = Vec::new();
        for &index in members {
            starts.push((combined.len(), index));
            combined.push_str(rules[index].source);
            combined.push('\n');
        }
        let query = compile_query(language, &combined)?;
        // A pattern belongs to the rule whose text it starts in.
        let pattern_rule: Vec<usize> = (0..query.pattern_count())
            .map(|p| {
                let at = query.start_byte_for_pattern(p);
                let slot = starts.partition_point(|(start, _)| *start <= at);
                starts[slot - 1].1
            })
            .collect();
        let mut with_patterns = pattern_rule.clone();
        with_patterns.sort_unstable();
        with_patterns.dedup();
        Ok(Group {
            query,
            pattern_rule,
            rules: with_patterns,
        })
    };
    // The costly rules each in a query of their own, the others together.
    let compile_groups = |members: &[usize]| -> anyhow::Result<Vec<Group>> {
        let (costly, cheap): (Vec<usize>, Vec<usize>) = members
            .iter()
            .partition(|&&index| costly_to_match(rules[index].source));
        std::iter::once(cheap)
            .chain(costly.into_iter().map(|index| vec![index]))
            .filter(|part| !part.is_empty())
            .map(|part| combine(&part))
            .collect()
    };
    let mut result = compile_groups(&members);
    if result.is_err() {
        // Each rule on its own, so that a broken rule is reported by name and left out
        // instead of taking every other rule down with it. Only done when the combined
        // queries fail: compiling is a noticeable part of a small scan.
        members.retain(|&index| {
            let rule = &rules[index];
            match compile_query(language, rule.source) {
                Ok(_) => true,
                Err(err) => {
                    let err = err.context(format!("queries/{}/{}", rule.language, rule.file));
                    tracing::error!("security rule skipped: {err:#}");
                    problems.push(format!("{err:#}"));
                    false
                }
            }
        });
        result = compile_groups(&members);
    }
    let groups = result.context("combining the security rules")?;
    let mut with_patterns: Vec<usize> = groups.iter().flat_map(|g| g.rules.clone()).collect();
    with_patterns.sort_unstable();
    Ok(Compiled {
        gate: Gate::new(rules, &with_patterns)?,
        groups,
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
