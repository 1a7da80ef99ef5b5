//! Runs the combined rule query over a tree and turns its matches into findings: the anchor
//! gate that skips code no rule can match, the re-parse of macro arguments, the rules' own
//! predicates ([`predicates`]), data-flow sinks handed to [`super::flow`], suppression comments
//! ([`super::suppress`]) and fixes ([`super::fixes`]). Also the small syntax helpers the data
//! flow shares.

mod aliases;
mod predicates;

use std::collections::HashSet;
use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use tree_sitter::{Node, QueryCursor, StreamingIterator as _, Tree};

use super::ancestry::{Ancestry, top_level};
use super::cut::{self, ANALYSIS_INCOMPLETE, Cut, Cuts};
use super::fixes::{build_fix, node_line_start, suppression_fix};
use super::flow::{self, SinkRequest};
use super::rules::{Anchors, Compiled, Gate, Group, Rule, compiled, rules};
use super::{Category, Finding, Fix, Related, SecuritySettings, Severity, suppress};
use crate::syntax::Language;
use aliases::Aliases;
#[cfg(test)]
pub(super) use predicates::KNOWN_PREDICATES;
use predicates::{FileSearches, predicate_holds};

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
    // No anchor search made beforehand: the scan makes its own.
    scan_prescanned(language, text, tree, settings, None, krate)
}

/// Whether `text` could produce any finding at all: some reported rule finds all its anchor
/// groups somewhere in it, or it has a suppression comment (a reason-less one is itself a
/// finding). A workspace scan skips parsing the files where this is false ([`prescan`]).
#[cfg(test)]
pub(crate) fn worth_scanning(
    language: &'static Language,
    text: &str,
    settings: &SecuritySettings,
) -> bool {
    !matches!(prescan(language, text, settings), Prescan::Skip)
}

/// What the anchor search of a file's text, before it is parsed, decided.
pub(crate) enum Prescan {
    /// Nothing can match: the file need not be parsed.
    Skip,
    /// Worth scanning; with the anchor words found (none when the rules are not gated), which
    /// the scan reuses rather than searching the whole text a second time.
    Scan(Option<Anchors>),
}

/// [`worth_scanning`], keeping the anchor words found for [`scan_prescanned`].
pub(crate) fn prescan(
    language: &'static Language,
    text: &str,
    settings: &SecuritySettings,
) -> Prescan {
    let Some(compiled) = compiled(language) else {
        return Prescan::Skip;
    };
    match &compiled.gate {
        Some(gate) if !settings.exhaustive => {
            let all_rules = rules();
            let anchors = gate.find(text, 0..text.len());
            let worth = text.contains("conductor:")
                || gate.active(&anchors, 0..text.len(), |rule| {
                    settings.reports(&all_rules[rule])
                });
            if worth {
                Prescan::Scan(Some(anchors))
            } else {
                Prescan::Skip
            }
        }
        _ => Prescan::Scan(None),
    }
}

/// [`scan`] of a whole file whose text [`prescan`] searched already: the same findings, without
/// a second anchor search.
pub(crate) fn scan_prescanned(
    language: &'static Language,
    text: &str,
    tree: &Tree,
    settings: &SecuritySettings,
    anchors: Option<&Anchors>,
    krate: Option<&flow::CrateView>,
) -> Vec<Finding> {
    if !settings.enabled {
        return Vec::new();
    }
    let functions = flow::LazyFunctions::with_crate(krate.cloned());
    let top = top_level(tree);
    scan_with(
        language,
        text,
        tree,
        settings,
        &top,
        0..text.len(),
        &functions,
        anchors,
    )
    .0
}

/// Scans the top-level items of `tree` that lie in `range` (whole items; see
/// [`item_groups`]). `top` holds the tree's top-level nodes ([`top_level`]). Findings are in file offsets. Also returns the names of the
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
    scan_with(language, text, tree, settings, top, range, functions, None)
}

/// [`scan_in`], with the file's anchor words when they were found already (over the whole
/// text, by [`prescan`]).
#[allow(clippy::too_many_arguments)]
fn scan_with<'t>(
    language: &'static Language,
    text: &str,
    tree: &'t Tree,
    settings: &SecuritySettings,
    top: &[Node<'t>],
    range: Range<usize>,
    functions: &flow::LazyFunctions<'t>,
    known_anchors: Option<&Anchors>,
) -> (Vec<Finding>, Vec<String>) {
    let Some(compiled) = compiled(language) else {
        return (Vec::new(), Vec::new());
    };
    let all_rules = rules();
    // Every walk up from a hit (predicates, the data flow) starts from the top-level items.
    let ancestry = Ancestry::new(tree.root_node(), top);
    // The predicates' searches of the whole text, made once for this scan.
    let searches = FileSearches::default();
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
    let span =
        items.first().map_or(0, |n| n.start_byte())..items.last().map_or(0, |n| n.end_byte());
    // A `use … as …` alias counts as holding the anchor words of the path it renames.
    let aliases = Aliases::of(top, text);
    // Matches found over the whole text are a superset of those in `span`, and only the words
    // wholly inside a node count for it, so either search gives the same.
    let found;
    let renamed;
    let gated = match &compiled.gate {
        Some(gate) if !settings.exhaustive => {
            let anchors = match known_anchors {
                Some(known) => known,
                None => {
                    found = gate.find(text, span.clone());
                    &found
                }
            };
            let anchors = if aliases.is_empty() {
                anchors
            } else {
                match aliases.extra_anchors(gate, anchors, text, span) {
                    Some(extra) => {
                        renamed = extra;
                        &renamed
                    }
                    None => anchors,
                }
            };
            Some((gate, anchors))
        }
        _ => None,
    };
    let (items, heads) = match gated {
        Some((gate, anchors)) => split_active(items, |n| {
            gate.active(anchors, n.byte_range(), |rule| {
                settings.reports(&all_rules[rule])
            })
        }),
        _ => (items, Vec::new()),
    };
    let shape = Shape::of(&items, text, &aliases);
    // Query matching keeps one state per pattern per enclosing node, so on pathologically deep
    // trees (thousands of nested calls, generated code) the work grows with depth squared.
    // Such trees get a small state budget: some matches deep inside may be lost, but a
    // keystroke never stalls. Ordinary code is far below the threshold and loses nothing.
    let limit = if shape.deep { 64 } else { u32::MAX };
    let mut cursor = QueryCursor::new();
    cursor.set_match_limit(limit);
    cursor.set_byte_range(range.clone());
    let mut hits = Vec::new();
    match_nodes(
        &mut cursor,
        compiled,
        gated,
        (&items, &heads),
        text,
        (text, settings, &ancestry, &searches, &aliases),
        |node| node.start_byte(),
        &mut hits,
    );
    // Macro arguments are opaque token trees to the grammar, yet `format!("{:x}",
    // md5::compute(x))` is how most code calls things. Their text is re-parsed in place (same
    // byte offsets, everything else blanked) so the pattern rules see inside them too.
    let macro_tree = macro_arguments(language, text, &shape.macro_arguments);
    let mut macro_hits = Vec::new();
    if let Some(macro_tree) = &macro_tree {
        let macro_top = top_level(&macro_tree.tree);
        let macro_ancestry = Ancestry::new(macro_tree.root_node(), &macro_top);
        // Gated and split like the file's own items, by the anchor words of the synthetic text
        // itself (the arguments at their offsets, blanks between): matching the whole wrapper
        // with every pattern walked every argument, active or not.
        let macro_anchors;
        let macro_gate = match gated {
            Some((gate, _)) => {
                let whole = 0..macro_tree.text.len();
                let found = gate.find(&macro_tree.text, whole.clone());
                macro_anchors = aliases
                    .extra_anchors(gate, &found, &macro_tree.text, whole)
                    .unwrap_or(found);
                Some((gate, &macro_anchors))
            }
            None => None,
        };
        let (units, heads) = match macro_gate {
            Some((gate, anchors)) => split_active(vec![macro_tree.root_node()], |n| {
                gate.active(anchors, n.byte_range(), |rule| {
                    settings.reports(&all_rules[rule])
                })
            }),
            None => (vec![macro_tree.root_node()], Vec::new()),
        };
        match_nodes(
            &mut cursor,
            compiled,
            macro_gate,
            (&units, &heads),
            &macro_tree.text,
            (text, settings, &macro_ancestry, &searches, &aliases),
            |_| range.start,
            &mut macro_hits,
        );
        macro_hits.retain(|h| all_rules[h.rule].taint.is_none());
    }
    // Rules that skip test code ignore hits there; hits inside macro arguments come from the
    // re-parsed tree, so test code is judged on the real one.
    let counts = |rule: &Rule, finding: Node<'_>| {
        !rule.skip_tests
            || settings.include_tests
            || !in_test_code_at(top, finding.byte_range(), text)
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
        let analysis = flow::analyze(text, ancestry, &requests, functions);
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

/// What a match's predicates read besides its captures: the real file's text, the settings, the
/// matched tree's ancestry, the scan's whole-file searches and the file's `use … as …` renames.
type PredicateInputs<'a, 'b, 't> = (
    &'a str,
    &'a SecuritySettings,
    &'a Ancestry<'b, 't>,
    &'a FileSearches,
    &'a Aliases,
);

/// Matches `units` with every pattern and `heads` only with the patterns that start at them,
/// each with the groups one of whose rules' anchors it holds (with a single group, the split
/// into units already decided that). A match budget overrun is recorded at `cut_at(node)`.
#[allow(clippy::too_many_arguments)]
fn match_nodes<'t>(
    cursor: &mut QueryCursor,
    compiled: &'static Compiled,
    gated: Option<(&Gate, &Anchors)>,
    (units, heads): (&[Node<'t>], &[Node<'t>]),
    source: &str,
    (text, settings, ancestry, searches, aliases): PredicateInputs<'_, '_, 't>,
    cut_at: impl Fn(Node<'t>) -> usize,
    hits: &mut Vec<Hit<'t>>,
) {
    let all_rules = rules();
    let group_active = |group: &Group, node: Node<'_>| match gated {
        Some((gate, anchors)) if compiled.groups.len() > 1 => {
            gate.active(anchors, node.byte_range(), |rule| {
                group.rules.binary_search(&rule).is_ok() && settings.reports(&all_rules[rule])
            })
        }
        _ => true,
    };
    for (nodes, max_start_depth) in [(units, None), (heads, Some(0))] {
        cursor.set_max_start_depth(max_start_depth);
        for node in nodes {
            for group in &compiled.groups {
                if !group_active(group, *node) {
                    continue;
                }
                collect_hits(
                    cursor,
                    group,
                    *node,
                    source,
                    (text, settings, ancestry, searches, aliases),
                    hits,
                );
                if cursor.did_exceed_match_limit() {
                    cut::record(cut_at(*node), Cut::MatchBudget);
                }
            }
        }
    }
    cursor.set_max_start_depth(None);
}

/// Runs the combined query under `root` and keeps the matches whose own predicates hold.
/// `source` is the text the tree was parsed from; `text` is the real file (same offsets).
fn collect_hits<'t>(
    cursor: &mut QueryCursor,
    compiled: &'static Group,
    root: Node<'t>,
    source: &str,
    (text, settings, ancestry, searches, aliases): PredicateInputs<'_, '_, 't>,
    hits: &mut Vec<Hit<'t>>,
) {
    let all_rules = rules();
    let query = &compiled.query;
    let names = query.capture_names();
    // The text predicates (`#match?`, `#eq?`, `#any-of?`) see a renamed path where an alias
    // starts a captured node's text.
    let bytes = source.as_bytes();
    let node_text = |node: Node<'_>| {
        let own = bytes.get(node.byte_range()).unwrap_or_default();
        std::iter::once(aliases.text(own))
    };
    let mut matches = cursor.matches(query, root, node_text);
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
        let ok = query.general_predicates(m.pattern_index).iter().all(|p| {
            predicate_holds(
                &p.operator,
                &p.args,
                &captures,
                names,
                text,
                ancestry,
                searches,
            )
        });
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

/// The nodes of `items` (and, below those longer than [`SPLIT_BYTES`], of their children) that
/// `active` admits, split into units, matched by every pattern, and heads, the split nodes,
/// matched only by patterns that start at them. A macro call stays whole: its arguments are
/// re-parsed as one piece.
fn split_active<'t>(
    items: Vec<Node<'t>>,
    active: impl Fn(Node<'t>) -> bool,
) -> (Vec<Node<'t>>, Vec<Node<'t>>) {
    let mut units = Vec::new();
    let mut heads = Vec::new();
    let mut stack: Vec<Node<'t>> = items.into_iter().rev().collect();
    let mut children = Vec::new();
    while let Some(node) = stack.pop() {
        if !active(node) {
            continue;
        }
        if node.byte_range().len() > SPLIT_BYTES
            && node.child_count() > 0
            && node.kind() != "macro_invocation"
        {
            heads.push(node);
            let mut c = node.walk();
            children.clear();
            children.extend(node.children(&mut c));
            stack.extend(children.iter().rev().copied());
        } else {
            units.push(node);
        }
    }
    (units, heads)
}

/// Active nodes longer than this are split into their children (see `scan_in`). Small, so that
/// the query walks the statements that hold a rule's anchor words rather than whole functions
/// (on tokio, 4 KB cost 11.8 G instructions, 512 bytes 10.1 G, 128 bytes 9.6 G). Tiny in unit
/// tests, so that every rule example also exercises the splitting.
const SPLIT_BYTES: usize = if cfg!(test) { 48 } else { 128 };

/// Nesting depth above which a tree counts as pathological.
const DEEP_TREE: usize = 400;

/// What the scan needs to know about its units' syntax besides the rule matches: whether they
/// nest pathologically deep, and the argument lists of the macro calls that mention a word a
/// pattern rule looks for ([`MACRO_ANCHORS`]).
struct Shape {
    deep: bool,
    macro_arguments: Vec<Range<usize>>,
}

impl Shape {
    /// Neither question needs a walk of every node (a full walk of the active code cost a
    /// tenth as much as the rule query itself). Depth: a subtree of `n` nodes nests at most
    /// `n - 1` levels below its root, and tree-sitter stores each node's count, so only
    /// subtrees big enough to reach past the bound are entered. Macro calls: only subtrees
    /// that hold the start of a [`MACRO_ANCHORS`] word can hold an argument list that
    /// mentions one, so the others are skipped.
    fn of(nodes: &[Node<'_>], text: &str, aliases: &Aliases) -> Shape {
        let mut shape = Shape {
            deep: false,
            macro_arguments: Vec::new(),
        };
        for node in nodes {
            shape.deep = shape.deep || nests_deeper(*node, DEEP_TREE);
            let mut words = macro_anchor_words(text, node.byte_range());
            // An alias of a path that holds an anchor word (`use md5 as digest;`) counts as
            // one where it is used.
            if !aliases.is_empty() {
                words.extend(aliases.uses_where(text, node.byte_range(), |path| {
                    !macro_anchor_words(path, 0..path.len()).is_empty()
                }));
                words.sort_unstable_by_key(|w| (w.start, w.end));
            }
            if words.is_empty() {
                continue;
            }
            let before = shape.macro_arguments.len();
            collect_macro_arguments(*node, &words, &mut shape.macro_arguments);
            // Only the argument lists that hold a whole anchor word are worth a second parse
            // (it cost a quarter of a whole-corpus scan when every argument was re-parsed).
            let mut kept = before;
            for i in before..shape.macro_arguments.len() {
                if holds_word(&words, &shape.macro_arguments[i]) {
                    shape.macro_arguments.swap(kept, i);
                    kept += 1;
                }
            }
            shape.macro_arguments.truncate(kept);
        }
        shape
    }
}

/// Whether some node under `start` (not inside a macro call's arguments, which the grammar
/// leaves as token trees) is more than `limit` levels below it.
fn nests_deeper(start: Node<'_>, limit: usize) -> bool {
    // A node at `depth` with `n` nodes in its subtree has none deeper than `depth + n - 1`.
    let reaches = |node: Node<'_>, depth: usize| depth + node.descendant_count() > limit + 1;
    let mut stack = vec![(start, 0usize)];
    let mut cursor = start.walk();
    while let Some((node, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        if node.kind() == "macro_invocation" || !reaches(node, depth) {
            continue;
        }
        stack.extend(
            node.children(&mut cursor)
                .filter(|child| reaches(*child, depth + 1) || depth + 1 > limit)
                .map(|child| (child, depth + 1)),
        );
    }
    false
}

/// Where the [`MACRO_ANCHORS`] words occur in `text[range]`, as file offsets, by start.
fn macro_anchor_words(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    static WORDS: OnceLock<AhoCorasick> = OnceLock::new();
    let words = WORDS.get_or_init(|| AhoCorasick::new(MACRO_ANCHORS).expect("valid anchor words"));
    let Some(slice) = text.as_bytes().get(range.clone()) else {
        return Vec::new();
    };
    let mut found: Vec<Range<usize>> = words
        .find_overlapping_iter(slice)
        .map(|m| range.start + m.start()..range.start + m.end())
        .collect();
    // Overlapping matches come in order of their end.
    found.sort_unstable_by_key(|w| (w.start, w.end));
    found
}

/// Whether one of `words` (sorted by start) lies wholly inside `range`.
fn holds_word(words: &[Range<usize>], range: &Range<usize>) -> bool {
    let first = words.partition_point(|w| w.start < range.start);
    words[first..]
        .iter()
        .take_while(|w| w.start < range.end)
        .any(|w| w.end <= range.end)
}

/// The argument lists of the macro calls under `start`, in source order, skipping every
/// subtree that holds the start of none of `words` (sorted by start). The arguments of a
/// macro call are one token tree, so calls inside them are not looked for.
fn collect_macro_arguments(start: Node<'_>, words: &[Range<usize>], out: &mut Vec<Range<usize>>) {
    let holds_start = |node: Node<'_>| {
        let first = words.partition_point(|w| w.start < node.start_byte());
        words.get(first).is_some_and(|w| w.start < node.end_byte())
    };
    let mut stack = vec![start];
    let mut cursor = start.walk();
    let mut children = Vec::new();
    while let Some(node) = stack.pop() {
        if !holds_start(node) {
            continue;
        }
        if node.kind() == "macro_invocation" {
            if let Some(tt) = node
                .children(&mut cursor)
                .find(|n| n.kind() == "token_tree")
            {
                out.push(tt.byte_range());
            }
            continue;
        }
        children.clear();
        children.extend(node.children(&mut cursor));
        stack.extend(children.iter().rev().copied());
    }
}

fn macro_arguments(
    language: &'static Language,
    text: &str,
    ranges: &[Range<usize>],
) -> Option<MacroTree> {
    // `ranges` are the argument lists that mention something a pattern rule looks for
    // ([`Shape::of`]).
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
    for r in ranges {
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
    report_start(node).start_byte()..node.end_byte()
}

/// The node a finding's reported range starts at (see [`report_range`]).
fn report_start(node: Node<'_>) -> Node<'_> {
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
            return m;
        }
    }
    node
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
    let line = node_line_start(report_start(hit.finding), text);
    fixes.push(suppression_fix(&rule.id, line, text));
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

/// Whether the bytes `range` of the real tree sit in a `#[test]` function or a `#[cfg(test)]`
/// module; `top` holds the tree's top-level nodes ([`top_level`]). Found by descending from the
/// top-level node that holds the range, never by walking up: tree-sitter finds a node's parent
/// (and its previous sibling) by searching down from the root, through every top-level item
/// before it, so a walk up from each hit made the first scan of a file of many items (a
/// megabyte on one line: 13,000 functions) grow with the square of their number.
fn in_test_code_at(top: &[Node<'_>], range: Range<usize>, text: &str) -> bool {
    let contains = |n: Node<'_>| n.start_byte() <= range.start && range.end <= n.end_byte();
    let at = top.partition_point(|n| n.end_byte() < range.end);
    let Some(&item) = top.get(at).filter(|n| contains(**n)) else {
        return false;
    };
    // Whether a test attribute heads the run of attributes and comments just before a node.
    let mut marked = false;
    for prev in top[..at].iter().rev().filter(|n| n.is_named()) {
        match prev.kind() {
            "attribute_item" if is_test_attribute(*prev, text) => {
                marked = true;
                break;
            }
            "attribute_item" | "line_comment" | "block_comment" => {}
            _ => break,
        }
    }
    let mut node = item;
    loop {
        if marked && matches!(node.kind(), "function_item" | "mod_item") {
            return true;
        }
        marked = false;
        let mut next = None;
        let mut c = node.walk();
        for child in node.children(&mut c) {
            if contains(child) {
                next = Some(child);
                break;
            }
            if child.start_byte() > range.start {
                break;
            }
            if !child.is_named() {
                continue;
            }
            match child.kind() {
                "attribute_item" if is_test_attribute(child, text) => marked = true,
                "attribute_item" | "line_comment" | "block_comment" => {}
                _ => marked = false,
            }
        }
        match next {
            Some(child) => node = child,
            None => return false,
        }
    }
}

/// Whether an `attribute_item` marks test code: `#[test]`, `#[tokio::test]`, `#[cfg(test)]`.
fn is_test_attribute(attribute: Node<'_>, text: &str) -> bool {
    let attr = text.get(attribute.byte_range()).unwrap_or("");
    let compact: String = attr.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains("cfg(test)")
        || compact == "#[test]"
        || compact.ends_with("::test]")
        || compact.starts_with("#[test(")
}

/// Whether `node` sits in a `#[test]` function or a `#[cfg(test)]` module (walking up: for
/// a rule predicate on one node; a scan's hits use [`in_test_code_at`]).
fn in_test_code<'t>(node: Node<'t>, text: &str, ancestry: &Ancestry<'_, 't>) -> bool {
    std::iter::once(node)
        .chain(ancestry.ancestors(node))
        .filter(|n| matches!(n.kind(), "function_item" | "mod_item"))
        .any(|n| {
            let mut prev = ancestry.prev_named_sibling(n);
            while let Some(p) = prev {
                match p.kind() {
                    "attribute_item" if is_test_attribute(p, text) => return true,
                    "attribute_item" | "line_comment" | "block_comment" => {}
                    _ => break,
                }
                prev = ancestry.prev_named_sibling(p);
            }
            false
        })
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

/// Tree-sitter related info kept here so that `flow` can share it.
pub(crate) fn node_text<'a>(node: Node<'_>, text: &'a str) -> &'a str {
    text.get(node.byte_range()).unwrap_or("")
}

/// A digest of the file's `use … as …` renames (0 when it has none): what a cached item's
/// findings were found with besides its own text.
pub(crate) fn alias_digest(top: &[Node<'_>], text: &str) -> u64 {
    Aliases::of(top, text).digest()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rust() -> &'static Language {
        Language::by_name("rust").expect("rust registered")
    }

    /// The walk of every node that [`Shape::of`] replaced: the deepest node (not entering a
    /// macro call's arguments) and every macro call's argument list that mentions an anchor.
    fn full_walk(nodes: &[Node<'_>], text: &str) -> (usize, Vec<Range<usize>>) {
        let mut max_depth = 0;
        let mut arguments = Vec::new();
        for start in nodes {
            let mut stack = vec![(*start, 0usize)];
            while let Some((node, depth)) = stack.pop() {
                max_depth = max_depth.max(depth);
                if node.kind() == "macro_invocation" {
                    let mut c = node.walk();
                    if let Some(tt) = node.children(&mut c).find(|n| n.kind() == "token_tree") {
                        let t = &text[tt.byte_range()];
                        if MACRO_ANCHORS.iter().any(|a| t.contains(a)) {
                            arguments.push(tt.byte_range());
                        }
                    }
                    continue;
                }
                let mut c = node.walk();
                let children: Vec<Node<'_>> = node.children(&mut c).collect();
                stack.extend(children.into_iter().rev().map(|n| (n, depth + 1)));
            }
        }
        (max_depth, arguments)
    }

    #[test]
    fn the_shape_of_the_code_agrees_with_a_walk_of_every_node() {
        let mut texts: Vec<String> = rules()
            .iter()
            .flat_map(|r| r.examples.iter().map(|e| e.code.clone()))
            .collect();
        texts.push(
            "fn f(password: &str) { info!(\"{}\", password); log::warn!(\"{:?}\", md5::compute(x)); \
             let v = vec![format!(\"{token}\")]; println!(\"plain\"); }\n"
                .into(),
        );
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/src");
        for entry in std::fs::read_dir(&workspace).expect("examples/src") {
            texts.push(std::fs::read_to_string(entry.expect("entry").path()).expect("readable"));
        }
        let mut compared = 0;
        for text in &texts {
            let tree = rust().parse(text).expect("a tree");
            let top = top_level(&tree);
            let (max_depth, arguments) = full_walk(&top, text);
            let shape = Shape::of(&top, text, &Aliases::default());
            assert_eq!(shape.macro_arguments, arguments, "{text}");
            assert_eq!(shape.deep, max_depth > DEEP_TREE, "{text}");
            compared += arguments.len();
        }
        assert!(
            compared >= 19,
            "only {compared} macro argument lists compared"
        );
    }

    #[test]
    fn the_depth_check_finds_the_nesting_bound_exactly() {
        // `a(a(a(…)))`: each call adds two levels (call, arguments) under the function.
        for calls in [150, 199, 200, 201, 260] {
            let text = format!(
                "fn f() {{ {}1{} }}\n",
                "a(".repeat(calls),
                ")".repeat(calls)
            );
            let tree = rust().parse(&text).expect("a tree");
            let top = top_level(&tree);
            let (max_depth, _) = full_walk(&top, &text);
            for limit in [max_depth - 1, max_depth, max_depth + 1] {
                assert_eq!(
                    nests_deeper(top[0], limit),
                    max_depth > limit,
                    "{calls} calls, depth {max_depth}, limit {limit}"
                );
            }
        }
        // Arguments of a macro call do not count, however deep.
        let text = format!("fn f() {{ m!({}{}); }}\n", "(".repeat(500), ")".repeat(500));
        let tree = rust().parse(&text).expect("a tree");
        assert!(!nests_deeper(top_level(&tree)[0], 10));
    }

    #[test]
    fn macro_arguments_are_gated_and_lose_no_finding() {
        // Many macro calls without an anchor word around one whose argument holds a finding:
        // the re-parsed arguments are split and gated like the file's own items, so only the
        // active argument is matched, and the finding is the exhaustive scan's.
        let mut text = String::from("fn digest(x: &[u8]) -> String {\n");
        for i in 0..40 {
            text.push_str(&format!("    println!(\"{{}} {{}}\", {i}, x.len());\n"));
        }
        text.push_str("    format!(\"{:x}\", md5::compute(x))\n}\n");
        let tree = rust().parse(&text).expect("a tree");
        let gated = SecuritySettings::default();
        let exhaustive = SecuritySettings {
            exhaustive: true,
            ..SecuritySettings::default()
        };
        let keys = |settings: &SecuritySettings| -> Vec<(&'static str, Range<usize>)> {
            scan(rust(), &text, &tree, settings, None)
                .into_iter()
                .map(|f| (f.rule_id, f.range))
                .collect()
        };
        let found = keys(&gated);
        let at = text.find("md5::compute").expect("the call");
        assert!(
            found
                .iter()
                .any(|(id, r)| *id == "rust/weak-hash" && r.contains(&at)),
            "{found:?}"
        );
        assert_eq!(found, keys(&exhaustive));
    }

    #[test]
    fn costly_rules_are_matched_by_a_query_of_their_own() {
        let compiled = compiled(rust()).expect("rules compile");
        let all = rules();
        let id = |i: usize| all[i].id.as_str();
        let alone: Vec<&str> = compiled
            .groups
            .iter()
            .filter(|g| g.rules.len() == 1)
            .map(|g| id(g.rules[0]))
            .collect();
        assert!(alone.contains(&"rust/use-after-free"), "{alone:?}");
        assert!(compiled.groups[0].rules.len() > 20);
        // Every rule with patterns is in exactly one group.
        let mut seen: Vec<usize> = compiled
            .groups
            .iter()
            .flat_map(|g| g.rules.clone())
            .collect();
        let count = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), count);
        // Findings of the costly rule still come through the gated scan.
        let text = "fn once() -> u8 {\n    let layout = std::alloc::Layout::new::<u8>();\n    \
                    // SAFETY: an example.\n    unsafe {\n        let p = std::alloc::alloc(layout);\n        \
                    std::alloc::dealloc(p, layout);\n        *p\n    }\n}\n";
        let tree = rust().parse(text).expect("a tree");
        let settings = SecuritySettings::default();
        let found: Vec<&str> = scan(rust(), text, &tree, &settings, None)
            .iter()
            .map(|f| f.rule_id)
            .collect();
        assert!(found.contains(&"rust/use-after-free"), "{found:?}");
    }
}
