//! Runs the combined rule query over a tree and turns its matches into findings: the anchor
//! gate that skips code no rule can match, the re-parse of macro arguments, the rules' own
//! predicates ([`predicates`]), data-flow sinks handed to [`super::flow`], suppression comments
//! ([`super::suppress`]) and fixes ([`super::fixes`]). Also the small syntax helpers the data
//! flow shares.

mod predicates;

use std::collections::HashSet;
use std::ops::Range;

use tree_sitter::{Node, QueryCursor, StreamingIterator as _, Tree};

use super::cut::{self, ANALYSIS_INCOMPLETE, Cut, Cuts};
use super::fixes::{build_fix, suppression_fix};
use super::flow::{self, SinkRequest};
use super::rules::{Rule, compiled, rules};
use super::{Category, Finding, Fix, Related, SecuritySettings, Severity, suppress};
use crate::syntax::Language;
#[cfg(test)]
pub(super) use predicates::KNOWN_PREDICATES;
use predicates::predicate_holds;

/// Byte offsets where lines start.
pub(super) struct Lines(Vec<usize>);

impl Lines {
    pub(super) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines(starts)
    }

    /// The byte where 0-based `line` starts.
    pub(super) fn start(&self, line: usize) -> usize {
        self.0.get(line).copied().unwrap_or(0)
    }

    /// The 0-based line of a byte offset.
    pub(super) fn line_of(&self, byte: usize) -> usize {
        self.0.partition_point(|&s| s <= byte).saturating_sub(1)
    }
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
    krate: Option<&flow::CrateView>,
) -> Vec<Finding> {
    let functions = flow::LazyFunctions::with_crate(krate.cloned());
    let top = top_level(tree);
    scan_in(
        language,
        text,
        tree,
        settings,
        &top,
        0..text.len(),
        &functions,
    )
    .0
}

/// The top-level nodes of `tree`, in order: walked once per scan and handed to every
/// [`scan_in`] call, since walking the root's children again for each item made the live
/// scan of a file of many small items quadratic.
pub(crate) fn top_level(tree: &Tree) -> Vec<Node<'_>> {
    let root = tree.root_node();
    let mut c = root.walk();
    root.children(&mut c).collect()
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
/// [`item_groups`]). `top` holds the tree's top-level nodes ([`top_level`]), or any run of
/// them that covers `range`. Findings are in file offsets. Also returns the names of the
/// file's functions the data flow looked up to follow helper calls (`flow::Analysis`).
/// `functions` is the file's function index, built on first use and shared between calls on
/// the same tree.
pub(crate) fn scan_in<'t>(
    language: &'static Language,
    text: &str,
    tree: &'t Tree,
    settings: &SecuritySettings,
    top: &[Node<'t>],
    range: Range<usize>,
    functions: &flow::LazyFunctions<'t>,
) -> (Vec<Finding>, Vec<String>) {
    let Some(compiled) = compiled(language) else {
        return (Vec::new(), Vec::new());
    };
    let all_rules = rules();
    // The nodes overlapping `range`, found by binary search rather than a walk of them all.
    let first = top.partition_point(|n| n.end_byte() <= range.start);
    let items: Vec<Node<'t>> = top[first..]
        .iter()
        .take_while(|n| n.start_byte() < range.end)
        .filter(|n| n.start_byte() < range.end && n.end_byte() > range.start)
        .copied()
        .collect();
    // Every bound that stops the analysis early records the item it stopped in, so that the
    // item's findings (or a note of its own) can say so.
    let recording = cut::Recording::begin(items.iter().map(|n| n.byte_range()).collect());
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
            if cursor.did_exceed_match_limit() {
                cut::record(node.start_byte(), Cut::MatchBudget);
            }
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
        if cursor.did_exceed_match_limit() {
            cut::record(range.start, Cut::MatchBudget);
        }
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

    let cuts = recording.finish();
    suppress::apply(&mut findings, text, &range, settings);
    findings.retain(|f| range.start <= f.range.start && f.range.start <= range.end);
    let sink_starts: Vec<usize> = sinks.iter().map(|(_, s)| s.node.start_byte()).collect();
    mark_incomplete(&mut findings, &cuts, &sink_starts, text);
    findings.sort_by(|a, b| {
        (a.range.start, a.range.end, a.rule_id).cmp(&(b.range.start, b.range.end, b.rule_id))
    });
    (findings, helper_names)
}

/// Says on each finding whose top-level item a bound cut short that it was, and adds one
/// [`ANALYSIS_INCOMPLETE`] note for each such item without a finding. A cut in a helper
/// function outside the scanned items counts against every item that had a sink to check.
fn mark_incomplete(findings: &mut Vec<Finding>, cuts: &Cuts, sink_starts: &[usize], text: &str) {
    let item_cut = |i: usize| {
        let (range, own) = &cuts.items[i];
        own.or_else(|| {
            cuts.elsewhere
                .filter(|_| sink_starts.iter().any(|s| range.contains(s)))
        })
    };
    let cut_items: Vec<(Range<usize>, Cut)> = (0..cuts.items.len())
        .filter_map(|i| item_cut(i).map(|c| (cuts.items[i].0.clone(), c)))
        .collect();
    if cut_items.is_empty() {
        return;
    }
    let mut with_finding = vec![false; cut_items.len()];
    for f in findings.iter_mut() {
        let at = cut_items.partition_point(|(r, _)| r.end <= f.range.start);
        if let Some((r, c)) = cut_items.get(at)
            && r.start <= f.range.start
        {
            f.incomplete = Some(c.describe().to_string());
            with_finding[at] = true;
        }
    }
    for ((range, c), found) in cut_items.iter().zip(with_finding) {
        if found {
            continue;
        }
        // The note sits on the item's first line, not over the whole (deep) item.
        let head_end = text
            .get(range.clone())
            .and_then(|t| t.find('\n'))
            .map_or(range.end, |n| range.start + n);
        findings.push(Finding {
            rule_id: ANALYSIS_INCOMPLETE,
            title: "Security analysis incomplete",
            cwe: Vec::new(),
            severity: Severity::Info,
            category: Category::Security,
            message: format!(
                "Conductor's security analysis of this item is incomplete: {}",
                c.describe()
            ),
            range: range.start..head_end,
            related: Vec::new(),
            fixes: Vec::new(),
            incomplete: Some(c.describe().to_string()),
        });
    }
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
        .filter_map(|t| build_fix(t, &hit.captures, text))
        .collect();
    fixes.push(suppression_fix(&rule.id, range.start, text));
    Finding {
        rule_id: &rule.id,
        title: &rule.title,
        cwe: rule.cwe.clone(),
        severity: rule.severity,
        category: rule.category,
        message,
        range,
        related,
        fixes,
        incomplete: None,
    }
}

/// Whether `node` sits in a `#[test]` function or a `#[cfg(test)]` module.
fn in_test_code(node: Node<'_>, text: &str) -> bool {
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

/// Tree-sitter related info kept here so that `flow` can share it.
pub(crate) fn node_text<'a>(node: Node<'_>, text: &'a str) -> &'a str {
    text.get(node.byte_range()).unwrap_or("")
}

/// The top-level items of a file, each with the attributes and comments directly above it:
/// the unit a re-scan reuses or redoes. Together they cover every top-level node.
pub(crate) fn item_groups(tree: &Tree, top: &[Node<'_>]) -> Vec<Range<usize>> {
    let root = tree.root_node();
    let mut groups = Vec::new();
    let mut start: Option<usize> = None;
    for &child in top {
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
