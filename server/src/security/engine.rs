//! Runs the combined rule query over a tree, checks the rules' own predicates, hands data-flow
//! sinks to [`super::flow`], applies suppression comments and builds fixes.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex::Regex;
use tree_sitter::{Node, QueryCursor, QueryPredicateArg, StreamingIterator as _, Tree};

use super::flow::{self, SinkRequest};
use super::rules::{Rule, compiled, rule, rules};
use super::{Finding, Fix, Related, SUPPRESSION_WITHOUT_REASON, SecuritySettings};
use crate::syntax::Language;

/// Names that say a value is a secret.
pub(crate) fn secret_name() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)(^|_|\b)(pass(word|wd|phrase)?|pwd|secret|api_?key|apikey|access_?key|private_?key|secret_?key|auth_?token|access_?token|refresh_?token|bearer|token|client_?secret|credentials?)($|_|\b)",
        )
        .expect("valid regex")
    })
}

/// Name parts that say a value is about a secret without being one (`PASSWORD_ENV`,
/// `token_url`, `password_len`).
fn secret_metadata_name() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)(_|^)(env|var|name|names|header|field|key_?id|id|url|uri|path|file|prefix|suffix|len|length|type|kind|label|hint|prompt|regex|pattern|re|policy|min|max|count|hash|hashed|digest|salt_?len|endpoint|expiry|expires|ttl|timeout|error|msg|message|placeholder|param|column|col|query)(_|$)",
        )
        .expect("valid regex")
    })
}

/// Whether `text` contains a word that every secret name ([`secret_name`]) contains: a cheap
/// test before walking a long macro call name by name.
fn mentions_secret_word(text: &str) -> bool {
    static WORDS: OnceLock<AhoCorasick> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build([
                    "pass",
                    "pwd",
                    "secret",
                    "key",
                    "token",
                    "bearer",
                    "credential",
                ])
                .expect("valid anchor words")
        })
        .is_match(text)
}

/// Whether an identifier names a secret value.
pub(crate) fn names_secret(name: &str) -> bool {
    secret_name().is_match(name) && !secret_metadata_name().is_match(name)
}

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

/// Byte offsets where lines start.
pub(crate) struct Lines(Vec<usize>);

impl Lines {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines(starts)
    }

    /// The byte where 0-based `line` starts.
    pub(crate) fn start(&self, line: usize) -> usize {
        self.0.get(line).copied().unwrap_or(0)
    }

    /// The 0-based line of a byte offset.
    pub(crate) fn line_of(&self, byte: usize) -> usize {
        self.0.partition_point(|&s| s <= byte).saturating_sub(1)
    }
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

/// A match that survived its predicates, reduced to what the rest of the scan needs.
struct Hit<'t> {
    rule: usize,
    finding: Node<'t>,
    captures: Vec<(&'static str, Node<'t>)>,
}

pub(crate) fn scan(
    language: &'static Language,
    text: &str,
    tree: &Tree,
    settings: &SecuritySettings,
) -> Vec<Finding> {
    let functions = flow::LazyFunctions::new();
    scan_in(language, text, tree, settings, 0..text.len(), &functions).0
}

/// Whether `text` could produce any finding at all: some reported rule finds all its anchor
/// groups somewhere in it, or it has a suppression comment (a reason-less one is itself a
/// finding). A workspace scan skips parsing the files where this is false.
pub(crate) fn worth_scanning(
    language: &'static Language,
    text: &str,
    settings: &SecuritySettings,
) -> bool {
    let Some(compiled) = compiled(language) else {
        return false;
    };
    match &compiled.gate {
        Some(gate) if !settings.exhaustive => {
            let all_rules = rules();
            text.contains("conductor:")
                || gate.active(&gate.find(text, 0..text.len()), 0..text.len(), |rule| {
                    settings.reports(&all_rules[rule])
                })
        }
        _ => true,
    }
}

/// Scans the top-level items of `tree` that lie in `range` (whole items; see
/// [`item_groups`]). Findings are in file offsets. Also returns the names of the file's
/// functions the data flow looked up to follow helper calls (`flow::Analysis`). `functions` is
/// the file's function index, built on first use and shared between calls on the same tree.
pub(crate) fn scan_in<'t>(
    language: &'static Language,
    text: &str,
    tree: &'t Tree,
    settings: &SecuritySettings,
    range: Range<usize>,
    functions: &flow::LazyFunctions<'t>,
) -> (Vec<Finding>, Vec<String>) {
    let Some(compiled) = compiled(language) else {
        return (Vec::new(), Vec::new());
    };
    let all_rules = rules();
    let root = tree.root_node();
    let mut c = root.walk();
    let items: Vec<Node<'_>> = root
        .children(&mut c)
        .filter(|n| n.start_byte() < range.end && n.end_byte() > range.start)
        .collect();
    // Only code that holds every anchor group of some reported rule can match anything; the
    // rest of the file is never walked by the query (see `Gate`). Big active nodes are split:
    // the node itself is matched only by patterns that start at it (`heads`), and each child
    // is judged on its own.
    let (items, heads) = match &compiled.gate {
        Some(gate) if !settings.exhaustive => {
            let span = items.first().map_or(0, |n| n.start_byte())
                ..items.last().map_or(0, |n| n.end_byte());
            let anchors = gate.find(text, span);
            let active = |n: Node<'_>| {
                gate.active(&anchors, n.byte_range(), |rule| {
                    settings.reports(&all_rules[rule])
                })
            };
            let mut units = Vec::new();
            let mut heads = Vec::new();
            let mut stack: Vec<Node<'_>> = items.into_iter().rev().collect();
            while let Some(node) = stack.pop() {
                if !active(node) {
                    continue;
                }
                // A macro call stays whole: its arguments are re-parsed as one piece below.
                if node.byte_range().len() > SPLIT_BYTES
                    && node.child_count() > 0
                    && node.kind() != "macro_invocation"
                {
                    heads.push(node);
                    let mut c = node.walk();
                    let children: Vec<Node<'_>> = node.children(&mut c).collect();
                    stack.extend(children.into_iter().rev());
                } else {
                    units.push(node);
                }
            }
            (units, heads)
        }
        _ => (items, Vec::new()),
    };
    let shape = Shape::of(&items);
    // Query matching keeps one state per pattern per enclosing node, so on pathologically deep
    // trees (thousands of nested calls, generated code) the work grows with depth squared.
    // Such trees get a small state budget: some matches deep inside may be lost, but a
    // keystroke never stalls. Ordinary code is far below the threshold and loses nothing.
    let limit = if shape.max_depth > DEEP_TREE {
        64
    } else {
        u32::MAX
    };
    let mut cursor = QueryCursor::new();
    cursor.set_match_limit(limit);
    cursor.set_byte_range(range.clone());
    let mut hits = Vec::new();
    // Units are matched by every pattern; heads only by patterns that start at the head.
    for (nodes, max_start_depth) in [(&items, None), (&heads, Some(0))] {
        cursor.set_max_start_depth(max_start_depth);
        for node in nodes {
            collect_hits(
                &mut cursor,
                compiled,
                *node,
                text,
                text,
                settings,
                &mut hits,
            );
        }
    }
    cursor.set_max_start_depth(None);
    // Macro arguments are opaque token trees to the grammar, yet `format!("{:x}",
    // md5::compute(x))` is how most code calls things. Their text is re-parsed in place (same
    // byte offsets, everything else blanked) so the pattern rules see inside them too.
    let macro_tree = macro_arguments(language, text, &shape.macro_arguments);
    let mut macro_hits = Vec::new();
    if let Some(macro_tree) = &macro_tree {
        collect_hits(
            &mut cursor,
            compiled,
            macro_tree.root_node(),
            &macro_tree.text,
            text,
            settings,
            &mut macro_hits,
        );
        macro_hits.retain(|h| all_rules[h.rule].taint.is_none());
    }
    // Rules that skip test code ignore hits there; hits inside macro arguments come from the
    // re-parsed tree, so test code is judged on the real one.
    let counts = |rule: &Rule, finding: Node<'_>| {
        !rule.skip_tests || settings.include_tests || {
            let real = tree
                .root_node()
                .descendant_for_byte_range(finding.start_byte(), finding.end_byte())
                .unwrap_or(finding);
            !in_test_code(real, text)
        }
    };
    let mut findings = Vec::new();
    let mut seen: HashSet<(usize, usize, usize)> = HashSet::new();
    let mut sinks: Vec<(usize, SinkRequest<'t>)> = Vec::new();
    for (i, hit) in hits.iter().enumerate() {
        let rule = &all_rules[hit.rule];
        if !counts(rule, hit.finding) {
            continue;
        }
        if let Some(spec) = &rule.taint {
            if let Some((_, sink)) = hit.captures.iter().find(|(n, _)| *n == "sink") {
                sinks.push((
                    i,
                    SinkRequest {
                        node: *sink,
                        spec: spec.clone(),
                        local_sources: settings.local_sources,
                    },
                ));
            }
            continue;
        }
        let range = hit.finding.byte_range();
        if seen.insert((hit.rule, range.start, range.end)) {
            findings.push(make_finding(rule, hit, text, Vec::new(), None));
        }
    }
    for hit in &macro_hits {
        let rule = &all_rules[hit.rule];
        let range = hit.finding.byte_range();
        if counts(rule, hit.finding) && seen.insert((hit.rule, range.start, range.end)) {
            findings.push(make_finding(rule, hit, text, Vec::new(), None));
        }
    }
    let mut helper_names = Vec::new();
    if !sinks.is_empty() {
        let requests: Vec<SinkRequest<'t>> = sinks.iter().map(|(_, s)| s.clone()).collect();
        let analysis = flow::analyze(text, &requests, functions);
        helper_names = analysis.helper_names;
        for ((hit_index, _), trace) in sinks.iter().zip(analysis.traces) {
            let Some(trace) = trace else { continue };
            let hit = &hits[*hit_index];
            let rule = &all_rules[hit.rule];
            let range = hit.finding.byte_range();
            if seen.insert((hit.rule, range.start, range.end)) {
                let extra = trace.summary.clone();
                findings.push(make_finding(rule, hit, text, trace.path, Some(extra)));
            }
        }
    }

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
                    message: meta.message.clone(),
                    range: s.range.clone(),
                    related: Vec::new(),
                    fixes: vec![Fix {
                        title: "Add a reason to the suppression".into(),
                        edits: vec![(s.range.end..s.range.end, " <reason>".into())],
                    }],
                });
            }
        }
    }
    findings.retain(|f| range.start <= f.range.start && f.range.start <= range.end);
    findings.sort_by(|a, b| {
        (a.range.start, a.range.end, a.rule_id).cmp(&(b.range.start, b.range.end, b.rule_id))
    });
    (findings, helper_names)
}

/// Runs the combined query under `root` and keeps the matches whose own predicates hold.
/// `source` is the text the tree was parsed from; `text` is the real file (same offsets).
fn collect_hits<'t>(
    cursor: &mut QueryCursor,
    compiled: &'static super::rules::Compiled,
    root: Node<'t>,
    source: &str,
    text: &str,
    settings: &SecuritySettings,
    hits: &mut Vec<Hit<'t>>,
) {
    let all_rules = rules();
    let query = &compiled.query;
    let names = query.capture_names();
    let mut matches = cursor.matches(query, root, source.as_bytes());
    while let Some(m) = matches.next() {
        let Some(&rule_index) = compiled.pattern_rule.get(m.pattern_index) else {
            continue;
        };
        if !settings.reports(&all_rules[rule_index]) {
            continue;
        }
        let captures: Vec<(&'static str, Node<'t>)> = m
            .captures()
            .iter()
            .map(|c| (names[c.index as usize], c.node))
            .collect();
        let ok = query
            .general_predicates(m.pattern_index)
            .iter()
            .all(|p| predicate_holds(&p.operator, &p.args, &captures, names, text));
        if !ok {
            continue;
        }
        let finding = captures
            .iter()
            .find(|(n, _)| *n == "finding")
            .or_else(|| captures.first())
            .map(|(_, node)| *node);
        let Some(finding) = finding else { continue };
        hits.push(Hit {
            rule: rule_index,
            finding,
            captures,
        });
    }
}

/// A tree parsed from the arguments of every macro call, at their original offsets.
struct MacroTree {
    text: String,
    tree: Tree,
}

impl MacroTree {
    fn root_node(&self) -> Node<'_> {
        self.tree.root_node()
    }
}

/// Words that pattern rules match on, as they appear in code; a macro argument without any of
/// them cannot hold a pattern-rule finding. A new pattern rule whose matches can sit inside
/// `format!`-like arguments adds its anchor here.
const MACRO_ANCHORS: &[&str] = &[
    "unsafe",
    "transmute",
    "forget",
    "uninit",
    "zeroed",
    "set_len",
    "from_raw_parts",
    "as_ptr",
    "as_mut_ptr",
    "md5",
    "Md5",
    "Md4",
    "Md2",
    "Sha1",
    "sha1",
    "SHA1",
    "Ripemd",
    "MessageDigest",
    "Cipher",
    "Des",
    "Rc4",
    "Rc2",
    "Blowfish",
    "Ecb",
    "ecb",
    "danger_accept",
    "SslVerifyMode",
    "verifier",
    "Cookie",
    "secure(",
    "http_only(",
    "http://",
    "fastrand",
    "Rng",
    "seed_from",
    "/tmp/",
    "temp_dir",
    "XML_PARSE",
    "allow_dtd",
    "entities",
    "from_slice",
    "from_secret",
    "password",
    "secret",
    "token",
    "key",
    "Key",
];

/// Active nodes longer than this are split into their children (see `scan_in`). Tiny in unit
/// tests, so that every rule example also exercises the splitting.
const SPLIT_BYTES: usize = if cfg!(test) { 48 } else { 4096 };

/// Nesting depth above which a tree counts as pathological.
const DEEP_TREE: usize = 400;

/// What one walk over the tree learns: its depth and the argument lists of macro calls.
struct Shape {
    max_depth: usize,
    macro_arguments: Vec<Range<usize>>,
}

impl Shape {
    fn of(nodes: &[Node<'_>]) -> Shape {
        let mut shape = Shape {
            max_depth: 0,
            macro_arguments: Vec::new(),
        };
        for node in nodes {
            shape.walk(*node);
        }
        shape
    }

    fn walk(&mut self, start: Node<'_>) {
        let shape = self;
        let mut cursor = start.walk();
        let mut depth = 0usize;
        loop {
            let node = cursor.node();
            shape.max_depth = shape.max_depth.max(depth);
            let mut descend = true;
            if node.kind() == "macro_invocation" {
                let mut c = node.walk();
                if let Some(tt) = node.children(&mut c).find(|n| n.kind() == "token_tree") {
                    shape.macro_arguments.push(tt.byte_range());
                }
                descend = false;
            }
            if descend && cursor.goto_first_child() {
                depth += 1;
                continue;
            }
            loop {
                if cursor.goto_next_sibling() {
                    break;
                }
                if depth == 0 || !cursor.goto_parent() {
                    return;
                }
                depth -= 1;
            }
        }
    }
}

fn macro_arguments(
    language: &'static Language,
    text: &str,
    ranges: &[Range<usize>],
) -> Option<MacroTree> {
    // Only arguments that mention something a pattern rule looks for are worth a second
    // parse (it cost a quarter of a whole-corpus scan when every argument was re-parsed).
    let ranges: Vec<Range<usize>> = ranges
        .iter()
        .filter(|r| {
            let t = &text[(*r).clone()];
            MACRO_ANCHORS.iter().any(|a| t.contains(a))
        })
        .cloned()
        .collect();
    let first = ranges.first()?;
    let prefix = b"fn f(){";
    if first.start < prefix.len() {
        return None;
    }
    let mut bytes = vec![b' '; text.len() + 1];
    bytes[..prefix.len()].copy_from_slice(prefix);
    // The parser reads only the wrapper, the arguments and their terminators; the blank
    // stretches in between are excluded, so the cost follows the arguments, not the file.
    let mut included = vec![tree_sitter::Range {
        start_byte: 0,
        end_byte: prefix.len(),
        start_point: tree_sitter::Point::new(0, 0),
        end_point: tree_sitter::Point::new(0, prefix.len()),
    }];
    let lines = Lines::new(text);
    let point = |byte: usize| {
        let line = lines.line_of(byte);
        tree_sitter::Point::new(line, byte - lines.start(line))
    };
    for r in &ranges {
        bytes[r.clone()].copy_from_slice(&text.as_bytes()[r.clone()]);
        let end = if r.end < text.len() {
            bytes[r.end] = b';';
            r.end + 1
        } else {
            r.end
        };
        if r.start < included.last().map_or(0, |l| l.end_byte) {
            continue;
        }
        included.push(tree_sitter::Range {
            start_byte: r.start,
            end_byte: end,
            start_point: point(r.start),
            end_point: point(end),
        });
    }
    bytes[text.len()] = b'}';
    included.push(tree_sitter::Range {
        start_byte: text.len(),
        end_byte: text.len() + 1,
        start_point: point(text.len()),
        end_point: point(text.len()),
    });
    // Token trees are whole tokens, so the copied ranges are valid UTF-8 between ASCII fill.
    let synthetic = String::from_utf8(bytes).ok()?;
    let mut parser = language.parser();
    parser.set_included_ranges(&included).ok()?;
    let tree = parser.parse(&synthetic, None)?;
    Some(MacroTree {
        text: synthetic,
        tree,
    })
}

/// The range a finding is reported on: a method call is reported from its method name, so a
/// long builder chain does not light up from its first line.
fn report_range(node: Node<'_>) -> Range<usize> {
    if node.kind() == "call_expression"
        && let Some(function) = node.child_by_field_name("function")
    {
        let method = match function.kind() {
            "field_expression" => function.child_by_field_name("field"),
            "generic_function" => function
                .child_by_field_name("function")
                .filter(|f| f.kind() == "field_expression")
                .and_then(|f| f.child_by_field_name("field")),
            _ => None,
        };
        if let Some(m) = method {
            return m.start_byte()..node.end_byte();
        }
    }
    node.byte_range()
}

fn make_finding(
    rule: &'static Rule,
    hit: &Hit<'_>,
    text: &str,
    related: Vec<Related>,
    flow_summary: Option<String>,
) -> Finding {
    let range = report_range(hit.finding);
    let mut message = rule.message.clone();
    if let Some(summary) = flow_summary {
        message.push_str(&format!(" ({summary})"));
    }
    let mut fixes: Vec<Fix> = rule
        .fixes
        .iter()
        .filter_map(|t| build_fix(t, hit, text))
        .collect();
    fixes.push(suppression_fix(&rule.id, range.start, text));
    Finding {
        rule_id: &rule.id,
        title: &rule.title,
        cwe: rule.cwe.clone(),
        severity: rule.severity,
        message,
        range,
        related,
        fixes,
    }
}

fn line_start(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1)
}

fn indentation(text: &str, start: usize) -> &str {
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c != ' ' && c != '\t')
        .unwrap_or(rest.len());
    &rest[..end]
}

fn suppression_fix(rule_id: &str, at: usize, text: &str) -> Fix {
    let start = line_start(text, at);
    let indent = indentation(text, start);
    Fix {
        title: format!("Suppress {rule_id} here (with a reason)"),
        edits: vec![(
            start..start,
            format!("{indent}// conductor: allow({rule_id}) <reason>\n"),
        )],
    }
}

fn build_fix(template: &super::FixTemplate, hit: &Hit<'_>, text: &str) -> Option<Fix> {
    let target = hit
        .captures
        .iter()
        .find(|(n, _)| *n == template.target)
        .map(|(_, node)| *node)?;
    if let Some(replace) = &template.replace {
        let mut out = String::new();
        let mut rest = replace.as_str();
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let close = after.find("}}")?;
            let name = &after[..close];
            let node = hit.captures.iter().find(|(n, _)| *n == name)?.1;
            out.push_str(text.get(node.byte_range())?);
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        return Some(Fix {
            title: template.title.clone(),
            edits: vec![(target.byte_range(), out)],
        });
    }
    if let Some(line) = &template.insert_line_before {
        let start = line_start(text, target.start_byte());
        let indent = indentation(text, start);
        return Some(Fix {
            title: template.title.clone(),
            edits: vec![(start..start, format!("{indent}{line}\n"))],
        });
    }
    None
}

/// Whether `node` sits in a `#[test]` function or a `#[cfg(test)]` module.
pub(crate) fn in_test_code(node: Node<'_>, text: &str) -> bool {
    let mut current = Some(node);
    while let Some(n) = current {
        if matches!(n.kind(), "function_item" | "mod_item") {
            let mut prev = n.prev_named_sibling();
            while let Some(p) = prev {
                match p.kind() {
                    "attribute_item" => {
                        let attr = text.get(p.byte_range()).unwrap_or("");
                        let compact: String = attr.chars().filter(|c| !c.is_whitespace()).collect();
                        if compact.contains("cfg(test)")
                            || compact == "#[test]"
                            || compact.ends_with("::test]")
                            || compact.starts_with("#[test(")
                        {
                            return true;
                        }
                    }
                    "line_comment" | "block_comment" => {}
                    _ => break,
                }
                prev = p.prev_named_sibling();
            }
        }
        current = n.parent();
    }
    false
}

fn capture_node<'t>(
    args: &[QueryPredicateArg],
    index: usize,
    captures: &[(&'static str, Node<'t>)],
    names: &[&'static str],
) -> Option<Node<'t>> {
    match args.get(index)? {
        QueryPredicateArg::Capture(c) => {
            let name = names.get(*c as usize)?;
            captures
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, node)| *node)
        }
        QueryPredicateArg::String(_) => None,
    }
}

fn string_arg(args: &[QueryPredicateArg], index: usize) -> Option<&str> {
    match args.get(index)? {
        QueryPredicateArg::String(s) => Some(s),
        QueryPredicateArg::Capture(_) => None,
    }
}

/// Evaluates the predicates tree-sitter leaves to us. An unknown predicate fails closed (the
/// match is dropped), and the tidy test makes sure no rule uses one.
fn predicate_holds(
    operator: &str,
    args: &[QueryPredicateArg],
    captures: &[(&'static str, Node<'_>)],
    names: &[&'static str],
    text: &str,
) -> bool {
    let node = capture_node(args, 0, captures, names);
    let node_text = |n: Node<'_>| text.get(n.byte_range()).unwrap_or("");
    match operator {
        "secret-name?" => node.is_some_and(|n| names_secret(node_text(n))),
        "secret-literal?" => node.is_some_and(|n| looks_like_secret_literal(n, text)),
        "no-safety-comment?" => node.is_some_and(|n| !has_safety_comment(n, text)),
        "chain-lacks-method?" => match (node, string_arg(args, 1)) {
            (Some(n), Some(method)) => chain_lacks_method(n, method, text),
            _ => false,
        },
        "local-binding?" => node.is_some_and(|n| is_local_binding(n, text, false)),
        "owned-local?" => node.is_some_and(|n| is_local_binding(n, text, true)),
        "uninit-vec?" => node.is_some_and(|n| is_uninit_vec(n, text)),
        "non-local-http?" => node.is_some_and(|n| is_non_local_http(node_text(n))),
        "formats-secret?" => {
            node.is_some_and(|n| mentions_secret_word(node_text(n)) && formats_secret(n, text))
        }
        "not-zeroable?" => node.is_some_and(|n| not_zeroable(node_text(n))),
        "outside-test?" => node.is_some_and(|n| !in_test_code(n, text)),
        "lock-guard?" => node.is_some_and(|n| is_lock_guard(n, text)),
        "uninit-of-initialised-type?" => node.is_some_and(|n| uninit_of_initialised_type(n, text)),
        _ => false,
    }
}

/// The predicates rules may use besides tree-sitter's own `#eq?`, `#match?` and `#any-of?`.
#[cfg(test)]
pub(crate) const KNOWN_PREDICATES: &[&str] = &[
    "secret-name?",
    "secret-literal?",
    "no-safety-comment?",
    "chain-lacks-method?",
    "local-binding?",
    "owned-local?",
    "uninit-vec?",
    "non-local-http?",
    "formats-secret?",
    "not-zeroable?",
    "outside-test?",
    "lock-guard?",
    "uninit-of-initialised-type?",
];

/// The content of a string literal node (without quotes and raw-string hashes).
pub(crate) fn literal_content<'a>(node: Node<'_>, text: &'a str) -> Option<&'a str> {
    let raw = text.get(node.byte_range())?;
    let raw = raw.strip_prefix('b').unwrap_or(raw);
    if let Some(r) = raw.strip_prefix('r') {
        let hashes = r.len() - r.trim_start_matches('#').len();
        let inner = &r[hashes..];
        return inner
            .strip_prefix('"')?
            .get(..inner.len().checked_sub(2 + hashes)?);
    }
    raw.strip_prefix('"')?.strip_suffix('"')
}

fn looks_like_secret_literal(node: Node<'_>, text: &str) -> bool {
    let Some(value) = literal_content(node, text) else {
        return false;
    };
    let trimmed = value.trim();
    if trimmed.chars().count() < 6 || trimmed.contains(char::is_whitespace) {
        return false;
    }
    // Names of environment variables or settings (`DATABASE_PASSWORD`), interpolation
    // templates and obvious placeholders are not secrets.
    let env_like = trimmed
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '.');
    let lowered = trimmed.to_ascii_lowercase();
    let placeholder = trimmed.contains('{')
        || trimmed.contains('<')
        || trimmed.contains('$')
        || trimmed.starts_with('/')
        || trimmed.contains("://")
        || lowered.contains("example")
        || lowered.contains("xxxx")
        || lowered.contains("your")
        || lowered.contains("redacted")
        || lowered.contains("dummy")
        || lowered.contains("placeholder")
        || lowered.starts_with("test")
        || lowered.starts_with("fake")
        || lowered.starts_with("mock")
        || trimmed.chars().all(|c| c == '*' || c == 'x' || c == '.');
    // A value that is itself just a field name ("password", "api-key", "x-auth-token").
    const NAME_WORDS: &[&str] = &[
        "x", "password", "passwd", "pwd", "secret", "api", "key", "apikey", "token", "access",
        "refresh", "auth", "client", "private", "bearer", "session", "id", "name", "user", "new",
        "old", "confirm", "current",
    ];
    let identifier_like = trimmed
        .to_ascii_lowercase()
        .split(['_', '-', '.'])
        .all(|w| NAME_WORDS.contains(&w));
    !(env_like || placeholder || identifier_like)
}

fn has_safety_comment(node: Node<'_>, text: &str) -> bool {
    let start = line_start(text, node.start_byte());
    // The same line, before or after the node (`// SAFETY:` at the end of a one-liner).
    let line_end = text[node.start_byte()..]
        .find('\n')
        .map_or(text.len(), |i| node.start_byte() + i);
    let has = |s: &str| s.to_ascii_uppercase().contains("SAFETY:");
    if has(&text[start..line_end]) {
        return true;
    }
    // The first line inside the block.
    let inner_end = text[line_end.min(text.len())..]
        .get(1..)
        .and_then(|rest| rest.find('\n').map(|i| line_end + 1 + i))
        .unwrap_or(text.len());
    if text.get(line_end..inner_end).is_some_and(|l| {
        l.trim_start()
            .to_ascii_uppercase()
            .starts_with("// SAFETY:")
    }) {
        return true;
    }
    // The comment lines (and attributes) directly above.
    let mut end = start;
    while end > 0 {
        let prev = line_start(text, end - 1);
        let line = text[prev..end].trim();
        if has(line) {
            return true;
        }
        let continues = line.starts_with("//")
            || line.starts_with("/*")
            || line.starts_with('*')
            || line.starts_with("#[")
            || line.ends_with("*/");
        // `let x =` on the line above the `unsafe {` that starts its value.
        let statement_head = line.ends_with('=') && end == start;
        if !(continues || statement_head) {
            return false;
        }
        end = prev;
    }
    false
}

fn chain_lacks_method(node: Node<'_>, method: &str, text: &str) -> bool {
    let mut top = node;
    while let Some(parent) = top.parent() {
        let is_receiver = parent.kind() == "field_expression"
            && parent.child_by_field_name("value").map(|v| v.id()) == Some(top.id());
        if is_receiver {
            if let Some(call) = parent.parent().filter(|c| c.kind() == "call_expression") {
                let name = parent
                    .child_by_field_name("field")
                    .and_then(|f| text.get(f.byte_range()))
                    .unwrap_or("");
                if name == method {
                    return false;
                }
                top = call;
                continue;
            }
            top = parent;
            continue;
        }
        break;
    }
    // A builder kept in a variable and completed later: look for the method on it nearby.
    if let Some(decl) = top.parent().filter(|p| p.kind() == "let_declaration")
        && let Some(block) = decl.parent()
        && let Some(pattern) = decl.child_by_field_name("pattern")
    {
        let var = text
            .get(pattern.byte_range())
            .unwrap_or("")
            .trim_start_matches("mut ")
            .trim();
        let scope = text.get(decl.end_byte()..block.end_byte()).unwrap_or("");
        let set = format!("set_{method}(");
        if scope.contains(&format!("{var}.{method}(")) || scope.contains(&format!("{var}.{set}")) {
            return false;
        }
    }
    true
}

pub(crate) fn enclosing_function(node: Node<'_>) -> Option<Node<'_>> {
    let mut current = node.parent();
    while let Some(n) = current {
        if n.kind() == "function_item" {
            return Some(n);
        }
        current = n.parent();
    }
    None
}

/// The text of `node` (a name) and the body of the function it stands in.
fn name_and_function_body<'t>(node: Node<'t>, text: &'t str) -> Option<(&'t str, Node<'t>)> {
    let name = text.get(node.byte_range())?;
    let body = enclosing_function(node)?.child_by_field_name("body")?;
    Some((name, body))
}

/// Whether `node` names a variable bound by `let` in its function; with `owned`, only when
/// the value is created there (a literal, `vec!`, a constructor), not borrowed from elsewhere.
fn is_local_binding(node: Node<'_>, text: &str, owned: bool) -> bool {
    let Some((name, body)) = name_and_function_body(node, text) else {
        return false;
    };
    let body_text = text.get(body.byte_range()).unwrap_or("");
    let Some(value) = let_value(body_text, name) else {
        return false;
    };
    if !owned {
        return true;
    }
    let value = value.trim_start();
    [
        "vec!",
        "Vec::",
        "String::",
        "format!",
        "[",
        "Box::new",
        "CString::new",
        "\"",
    ]
    .iter()
    .any(|p| value.starts_with(p))
        || value.starts_with(|c: char| c.is_ascii_digit())
        || [
            ".to_vec(",
            ".to_string(",
            ".to_owned(",
            ".into_bytes(",
            ".collect(",
        ]
        .iter()
        .any(|m| value.contains(m))
}

/// The text after `=` (up to the `;`) of the first `let [mut] name … = …;` in `body`.
fn let_value<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = body;
    while let Some(i) = rest.find("let ") {
        let after = &rest[i + 4..];
        let after_mut = after
            .trim_start()
            .strip_prefix("mut ")
            .unwrap_or(after.trim_start());
        let boundary_before =
            i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if boundary_before
            && let Some(tail) = after_mut.strip_prefix(name)
            && !tail.starts_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            let statement = &tail[..tail.find(';').unwrap_or(tail.len())];
            return Some(statement.split_once('=').map_or("", |(_, v)| v));
        }
        rest = after;
    }
    None
}

/// Whether a value is a lock, borrow or permit guard: such a call itself, or a variable bound
/// to one in the same function. Scope guards that run clean-up code on panic (and are
/// forgotten on purpose on the success path) are not.
fn is_lock_guard(node: Node<'_>, text: &str) -> bool {
    const ACQUIRE: &[&str] = &[
        ".lock(",
        ".try_lock(",
        ".write(",
        ".read(",
        ".try_write(",
        ".try_read(",
        ".borrow_mut(",
        ".borrow(",
        ".acquire(",
        ".try_acquire(",
        ".acquire_owned(",
        ".enter(",
        ".upgradable_read(",
    ];
    let value = text.get(node.byte_range()).unwrap_or("");
    if ACQUIRE.iter().any(|a| value.contains(a)) {
        return true;
    }
    if node.kind() != "identifier" {
        return false;
    }
    let Some(body) = enclosing_function(node).and_then(|f| f.child_by_field_name("body")) else {
        return false;
    };
    let before = text.get(body.start_byte()..node.start_byte()).unwrap_or("");
    let_value(before, value).is_some_and(|v| ACQUIRE.iter().any(|a| v.contains(a)))
}

/// Whether `MaybeUninit::uninit().assume_init()` at `node` visibly produces a type that needs
/// initialisation: the type is known (turbofish, `let` annotation, or the function's return
/// type for a tail expression) and is not itself made of `MaybeUninit`, which is the sound
/// "array of uninitialised slots" idiom. Unknown types are not reported.
fn uninit_of_initialised_type(node: Node<'_>, text: &str) -> bool {
    let own = text.get(node.byte_range()).unwrap_or("");
    if let Some(i) = own.find("::<") {
        return !own[i..].contains("MaybeUninit<") && !own[i + 3..].starts_with("MaybeUninit");
    }
    let mut current = node;
    while let Some(parent) = current.parent() {
        match parent.kind() {
            "unsafe_block" | "parenthesized_expression" | "expression_statement" => {
                current = parent
            }
            "block" => {
                let mut c = parent.walk();
                let last = parent
                    .named_children(&mut c)
                    .filter(|n| !matches!(n.kind(), "line_comment" | "block_comment"))
                    .last();
                if last.map(|l| l.id()) != Some(current.id()) {
                    return false;
                }
                current = parent;
            }
            "let_declaration" => {
                return parent.child_by_field_name("type").is_some_and(|t| {
                    !text
                        .get(t.byte_range())
                        .unwrap_or("")
                        .contains("MaybeUninit")
                });
            }
            "function_item" => {
                return parent.child_by_field_name("return_type").is_some_and(|t| {
                    !text
                        .get(t.byte_range())
                        .unwrap_or("")
                        .contains("MaybeUninit")
                });
            }
            _ => return false,
        }
    }
    false
}

fn is_uninit_vec(node: Node<'_>, text: &str) -> bool {
    let Some((name, body)) = name_and_function_body(node, text) else {
        return false;
    };
    let before = text.get(body.start_byte()..node.start_byte()).unwrap_or("");
    let created_with_capacity = let_value(before, name).is_some_and(|v| {
        let v = v.trim_start();
        v.starts_with("Vec::") && v.contains("with_capacity(")
    });
    if !created_with_capacity {
        return false;
    }
    // Any sign that the spare capacity is written before the length grows.
    let writers = [
        "as_mut_ptr",
        "spare_capacity_mut",
        "ptr::write",
        "copy_nonoverlapping",
        "copy_to",
        "copy_from",
        ".write(",
        "read_buf",
        "fill",
    ];
    !writers.iter().any(|w| before.contains(w))
}

fn is_non_local_http(literal: &str) -> bool {
    let value = literal.trim_matches(|c| c == '"' || c == 'r' || c == '#');
    let Some(rest) = value.strip_prefix("http://") else {
        return false;
    };
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    let host = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or("")
    };
    let local = host.is_empty()
        || host == "localhost"
        || host.ends_with(".localhost")
        || host.starts_with("127.")
        || host == "0.0.0.0"
        || host == "::1"
        || host.ends_with(".local")
        || host.ends_with(".internal")
        || host.ends_with(".test")
        || host == "example.com"
        || host.ends_with(".example.com")
        || host.ends_with(".example");
    !local && !host.contains('{')
}

/// Whether a formatting macro's token tree prints a secret-named value in clear text.
fn formats_secret(node: Node<'_>, text: &str) -> bool {
    let mut cursor = node.walk();
    let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
    for (i, child) in children.iter().enumerate() {
        match child.kind() {
            "identifier" | "field_identifier" => {
                let name = text.get(child.byte_range()).unwrap_or("");
                // A bare `token` is as often a lexer or event token as a credential.
                if !names_secret(name) || name.eq_ignore_ascii_case("token") {
                    continue;
                }
                // `password.len()`, `token.is_some()`: the value itself is not printed.
                let next_is_method = children.get(i + 1).is_some_and(|n| {
                    text.get(n.byte_range()) == Some(".")
                        && children.get(i + 2).is_some_and(|m| {
                            let method = text.get(m.byte_range()).unwrap_or("");
                            matches!(
                                method,
                                "len" | "is_empty" | "is_some" | "is_none" | "chars" | "count"
                            )
                        })
                });
                // `key = value` named arguments, and the left side of `a.password` when the
                // field is what matters.
                let next_is_assign = children
                    .get(i + 1)
                    .is_some_and(|n| text.get(n.byte_range()) == Some("="));
                if !next_is_method && !next_is_assign {
                    return true;
                }
            }
            "string_literal" => {
                let body = literal_content(*child, text).unwrap_or("");
                for piece in body.split('{').skip(1) {
                    let name = piece.split(['}', ':']).next().unwrap_or("").trim();
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                        && names_secret(name)
                        && !name.eq_ignore_ascii_case("token")
                    {
                        return true;
                    }
                }
            }
            "token_tree" if formats_secret(*child, text) => return true,
            _ => {}
        }
    }
    false
}

fn not_zeroable(ty: &str) -> bool {
    let ty = ty.trim();
    ty.starts_with('&')
        || ty.starts_with("fn(")
        || ty.starts_with("fn (")
        || [
            "Box<", "Vec<", "String", "NonNull", "Arc<", "Rc<", "NonZero", "bool", "char",
        ]
        .iter()
        .any(|p| ty.starts_with(p) || ty.contains(&format!("::{p}")))
}

/// Tree-sitter related info kept here so that `flow` can share it.
pub(crate) fn node_text<'a>(node: Node<'_>, text: &'a str) -> &'a str {
    text.get(node.byte_range()).unwrap_or("")
}

/// The top-level items of a file, each with the attributes and comments directly above it:
/// the unit a re-scan reuses or redoes. Together they cover every top-level node.
pub(crate) fn item_groups(tree: &Tree) -> Vec<Range<usize>> {
    let root = tree.root_node();
    let mut groups = Vec::new();
    let mut start: Option<usize> = None;
    let mut c = root.walk();
    for child in root.children(&mut c) {
        let begin = *start.get_or_insert(child.start_byte());
        if !matches!(
            child.kind(),
            "attribute_item" | "line_comment" | "block_comment"
        ) {
            groups.push(begin..child.end_byte());
            start = None;
        }
    }
    if let Some(begin) = start {
        groups.push(begin..root.end_byte());
    }
    groups
}
