//! The static security agent: rules as tree-sitter queries plus intra-function data flow.
//!
//! Plain data in, plain data out: a syntax tree and its text go in, [`Finding`]s with byte
//! ranges come out. Rules live in `queries/<language>/security/*.scm` (format in
//! `docs/rules.md`); [`rules`] lists them and [`rule`] looks one up by id. [`walk`] finds the
//! files of a workspace, builds each crate's cross-file summaries ([`CrateSummaries`]) and scans
//! the files on every core; [`workspace`] is the editor's workspace
//! scan (stoppable) and keeps closed files' findings current with the disk; [`report`] writes
//! text, JSON and SARIF.

mod ancestry;
mod cut;
mod engine;
mod fixes;
mod flow;
pub mod live;
pub mod report;
mod rules;
mod suppress;
pub mod walk;
pub mod workspace;

#[cfg(test)]
mod tests;

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::syntax::Language;

pub use cut::ANALYSIS_INCOMPLETE;
pub use flow::{CrateSummaries, CrateView};
pub use rules::{Example, FixTemplate, Rule, TaintSpec, rule, rule_problems, rules};
pub use walk::{FileReport, ScanNote, ScanReport, scan_paths, scan_paths_in};

/// The id of the finding reported for a suppression comment that gives no reason.
pub const SUPPRESSION_WITHOUT_REASON: &str = "rust/suppression-without-reason";

/// How bad a finding is, from a hint to an emergency.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A hint: worth a look, rarely a vulnerability by itself.
    #[default]
    Info,
    /// A weakness with limited impact.
    Low,
    /// A weakness that is exploitable in some settings.
    Medium,
    /// A vulnerability that is exploitable in most settings.
    High,
    /// A vulnerability that gives an attacker control.
    Critical,
}

impl Severity {
    /// The lowercase name, as written in rules, settings and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a lowercase severity name.
    pub fn parse(name: &str) -> Option<Severity> {
        Some(match name.to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of problem a rule reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// A weakness an attacker could use.
    #[default]
    Security,
    /// Code hygiene (a missing `// SAFETY:` comment): shown live as a hint, left out of
    /// `conductor scan` and SARIF unless lints are asked for, since it is not a vulnerability.
    Lint,
}

impl Category {
    /// The lowercase name, as written in rules and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Security => "security",
            Category::Lint => "lint",
        }
    }
}

/// A place that explains a finding, such as where tainted data came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    /// Byte range in the scanned text.
    pub range: Range<usize>,
    /// What happens there.
    pub message: String,
}

/// A mechanical fix: edits to the scanned text that leave code that parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// What the fix does, as a code action title.
    pub title: String,
    /// Byte ranges in the scanned text and their replacements; ranges do not overlap.
    pub edits: Vec<(Range<usize>, String)>,
}

/// One problem found by a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's id, such as `rust/sql-injection`.
    pub rule_id: &'static str,
    /// The rule's title.
    pub title: &'static str,
    /// CWE ids, such as `CWE-89`.
    pub cwe: Vec<String>,
    /// The rule's severity.
    pub severity: Severity,
    /// The rule's category: a weakness or a hygiene lint.
    pub category: Category,
    /// What is wrong here, in words the developer can act on.
    pub message: String,
    /// Byte range of the offending code.
    pub range: Range<usize>,
    /// The data-flow path for data-flow findings, source first; empty otherwise.
    pub related: Vec<Related>,
    /// Mechanical fixes, best first; the last one is always the suppression comment.
    pub fixes: Vec<Fix>,
    /// Set when a bound (nesting depth, match budget) cut the analysis of this finding's
    /// top-level item short: what was left out. The finding stands, but others nearby may be
    /// missing. An item cut short with no finding gets one [`ANALYSIS_INCOMPLETE`] note.
    pub incomplete: Option<String>,
}

/// `[security]`: the static security scan. Documented in `docs/configuration.md`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct SecuritySettings {
    /// Run the scan at all (live diagnostics, workspace scan and `conductor scan`).
    pub enabled: bool,
    /// Milliseconds to wait after the last change before re-scanning an open document.
    pub debounce_ms: u64,
    /// Glob patterns (gitignore syntax) of paths never scanned, on top of `.gitignore`.
    pub exclude: Vec<String>,
    /// Files larger than this many bytes are skipped with a note.
    pub max_file_bytes: u64,
    /// Rule ids that never report.
    pub disabled_rules: Vec<String>,
    /// Findings below this severity are not reported.
    pub min_severity: Severity,
    /// Report findings inside `#[test]` functions and `#[cfg(test)]` modules for rules that
    /// skip test code by default (hard-coded secrets, cleartext URLs, …).
    pub include_tests: bool,
    /// Count environment variables, command-line arguments and stdin as untrusted sources
    /// (off by default: they come from the person running the program, so for most code a
    /// finding from them is not a vulnerability; turn it on for setuid tools and services
    /// configured by others).
    pub local_sources: bool,
    /// Report `lint`-category rules (hygiene such as a missing `// SAFETY:` comment) too.
    /// Live diagnostics always show them, as hints; `conductor scan` and SARIF leave them
    /// out unless this is set (or `--include-lints` is passed).
    pub lints: bool,
    /// Match every rule in every top-level item, ignoring the rules' anchors (slower; for
    /// checking that anchors lose nothing). Set by `conductor scan --exhaustive`, not by
    /// configuration.
    pub exhaustive: bool,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            debounce_ms: 150,
            exclude: vec!["target/".into()],
            max_file_bytes: 4 * 1024 * 1024,
            disabled_rules: Vec::new(),
            min_severity: Severity::Info,
            include_tests: false,
            local_sources: false,
            lints: false,
            exhaustive: false,
        }
    }
}

impl SecuritySettings {
    /// Whether findings of `rule` are reported under these settings.
    pub fn reports(&self, rule: &Rule) -> bool {
        self.enabled
            && (self.lints || rule.category != Category::Lint)
            && rule.severity >= self.min_severity
            && !self.disabled_rules.contains(&rule.id)
    }
}

/// Scans one parsed file with every rule of its language and returns the findings in text
/// order. Broken code is scanned too: the intact parts of the tree still match.
pub fn scan(
    language: &'static Language,
    text: &str,
    tree: &tree_sitter::Tree,
    settings: &SecuritySettings,
) -> Vec<Finding> {
    scan_in_crate(language, text, tree, settings, None)
}

/// Like [`scan`], for one file of a crate whose other files' functions `krate` summarises
/// (see [`walk::Prepared`]): data flow follows calls into them and takes the taint
/// they pass to this file's functions.
pub fn scan_in_crate(
    language: &'static Language,
    text: &str,
    tree: &tree_sitter::Tree,
    settings: &SecuritySettings,
    krate: Option<&CrateView>,
) -> Vec<Finding> {
    if !settings.enabled {
        return Vec::new();
    }
    engine::scan(language, text, tree, settings, krate)
}

/// The web page that describes a CWE id such as `CWE-89`.
pub fn cwe_url(cwe: &str) -> Option<String> {
    let number = cwe.strip_prefix("CWE-")?.trim_start_matches('0');
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "https://cwe.mitre.org/data/definitions/{number}.html"
    ))
}

/// Findings of a document's top-level items, kept between scans so that a keystroke re-scans
/// only the item it changed (live diagnostics keep one per open document).
///
/// An item is keyed by its exact text (with the attributes and comments above it). Every rule
/// stays inside one item, except the data flow through helper functions defined elsewhere in
/// the file: an item whose scan looked up helpers is reused only while the file's functions of
/// those names are unchanged (and, when its traces point into them, at the same distance); an
/// item whose functions took taint from their callers is scanned again when an item calling
/// one of them by name changes (and on any change, when its traces point into a caller).
#[derive(Debug, Default)]
pub struct ScanCache {
    items: std::collections::HashMap<u64, CachedItem>,
    /// The functions each item defines, by the item's key (its text): the helper digests are
    /// built from these, so a keystroke re-reads only the changed item's functions.
    defined: std::collections::HashMap<u64, flow::ItemFunctions>,
    /// The last scan's language, text and items with their keys: an item of this scan that
    /// lies before the first changed byte, or after the last, takes the key of the same text
    /// in the last scan instead of hashing it again.
    last: Option<LastScan>,
    settings: Option<SecuritySettings>,
    /// The digest of the crate view the cached items were scanned with.
    krate: Option<u64>,
    /// The digest of the file's `use … as …` renames the cached items were scanned with: an
    /// item's findings depend on them (`Legacy::new` is `des::Des::new` only after
    /// `use des::Des as Legacy;`), and they live in other items.
    aliases: u64,
}

/// What [`ScanCache`] keeps of its last scan to find the unchanged items' keys.
#[derive(Debug, Clone)]
struct LastScan {
    language: &'static str,
    text: String,
    /// Each item's range and key, in order.
    groups: Vec<(Range<usize>, u64)>,
}

#[derive(Debug, Clone)]
struct CachedItem {
    /// Findings relative to the item's start.
    findings: Vec<Finding>,
    helper_names: Vec<String>,
    /// The digest of those helpers when the item was scanned.
    helpers: u64,
    /// Functions whose parameters took taint from their callers while the item was scanned.
    callers: Vec<String>,
    /// The names the item's own text calls.
    calls: Vec<String>,
}

/// A digest of the file's functions named `names`; with `at`, also of their offsets from `at`.
fn helpers_digest(
    names: &[String],
    functions: &flow::FunctionDigests<'_>,
    at: Option<usize>,
) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for name in names {
        functions.digest(name, at).hash(&mut hasher);
    }
    hasher.finish()
}

impl ScanCache {
    /// The same findings as [`scan`], re-using those of unchanged items.
    pub fn scan(
        &mut self,
        language: &'static Language,
        text: &str,
        tree: &tree_sitter::Tree,
        settings: &SecuritySettings,
    ) -> Vec<Finding> {
        self.scan_in_crate(language, text, tree, settings, None)
    }

    /// The same findings as [`scan_in_crate`], re-using those of unchanged items. Every item
    /// is scanned again when the crate's summaries change (a cached item may have used them).
    pub fn scan_in_crate(
        &mut self,
        language: &'static Language,
        text: &str,
        tree: &tree_sitter::Tree,
        settings: &SecuritySettings,
        krate: Option<&CrateView>,
    ) -> Vec<Finding> {
        use std::hash::{Hash as _, Hasher as _};
        if !settings.enabled {
            return Vec::new();
        }
        let krate_digest = krate.map(CrateView::digest);
        if self.settings.as_ref() != Some(settings) || self.krate != krate_digest {
            self.items.clear();
            self.settings = Some(settings.clone());
            self.krate = krate_digest;
        }
        // One walk of the top-level nodes, shared by the grouping and every item's scan.
        let top = ancestry::top_level(tree);
        let aliases = engine::alias_digest(&top, text);
        if aliases != self.aliases {
            self.items.clear();
            self.aliases = aliases;
        }
        let last = self.last.take().filter(|l| l.language == language.name);
        let unchanged = last.as_ref().map(
            |LastScan {
                 text: old, groups, ..
             }| {
                let prefix = common_prefix(old.as_bytes(), text.as_bytes());
                let most = old.len().min(text.len()) - prefix;
                let suffix = common_suffix(old.as_bytes(), text.as_bytes(), most);
                (prefix, suffix, old.len(), groups)
            },
        );
        // The key of the last scan's item at `range` of its text, if there was one.
        let old_key = |range: Range<usize>| {
            let (_, _, _, groups) = unchanged?;
            let i = groups.partition_point(|(r, _)| r.start < range.start);
            groups.get(i).filter(|(r, _)| *r == range).map(|(_, k)| *k)
        };
        let groups: Vec<(Range<usize>, u64)> = engine::item_groups(tree, &top)
            .into_iter()
            .filter_map(|group| {
                let item_text = text.get(group.clone())?;
                let kept = unchanged.and_then(|(prefix, suffix, old_len, _)| {
                    if group.end <= prefix {
                        old_key(group.clone())
                    } else if group.start >= text.len() - suffix {
                        let at = group.start - (text.len() - suffix) + (old_len - suffix);
                        old_key(at..at + group.len())
                    } else {
                        None
                    }
                });
                let key = kept.unwrap_or_else(|| {
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    language.name.hash(&mut hasher);
                    item_text.hash(&mut hasher);
                    hasher.finish()
                });
                Some((group, key))
            })
            .collect();
        // The copy of the text reuses the last one's buffer.
        let mut copy = last.map(|l| l.text).unwrap_or_default();
        copy.clear();
        copy.push_str(text);
        self.last = Some(LastScan {
            language: language.name,
            text: copy,
            groups: groups.clone(),
        });
        // The functions each item defines: kept from the last scan for unchanged items.
        let mut previous = std::mem::take(&mut self.defined);
        let mut nodes = top.iter().peekable();
        // One buffer for every rebuilt item's top-level nodes: most items reuse their list and
        // need none.
        let mut members = Vec::new();
        for (group, key) in &groups {
            let rebuild = !self.defined.contains_key(key) && !previous.contains_key(key);
            members.clear();
            while let Some(node) = nodes.next_if(|n| n.start_byte() < group.end) {
                if rebuild && node.start_byte() >= group.start {
                    members.push(*node);
                }
            }
            if !self.defined.contains_key(key) {
                let list = previous
                    .remove(key)
                    .unwrap_or_else(|| flow::defined_functions(&members, text, group.start));
                self.defined.insert(*key, list);
            }
        }
        drop(previous);
        let defined = std::mem::take(&mut self.defined);
        let known: Vec<(usize, &flow::ItemFunctions)> = groups
            .iter()
            .map(|(group, key)| (group.start, &defined[key]))
            .collect();
        let functions = flow::FunctionDigests::new(known.clone());
        let index = flow::LazyFunctions::with_known(krate.cloned(), &top, known);
        // The names called by code that changed (new items and items that are gone): a cached
        // result that took taint from the callers of such a name is stale.
        let current: std::collections::HashSet<u64> = groups.iter().map(|(_, k)| *k).collect();
        let mut changed_calls: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut any_change = false;
        for (group, key) in &groups {
            if !self.items.contains_key(key) {
                any_change = true;
                changed_calls.extend(
                    flow::called_names(&text[group.clone()])
                        .into_iter()
                        .map(str::to_string),
                );
            }
        }
        for (key, item) in &self.items {
            if !current.contains(key) {
                any_change = true;
                changed_calls.extend(item.calls.iter().cloned());
            }
        }
        let mut next: std::collections::HashMap<u64, CachedItem> = std::collections::HashMap::new();
        let mut out = Vec::new();
        for (group, key) in groups {
            let outside = |item: &CachedItem| {
                item.findings.iter().any(|f| {
                    f.related
                        .iter()
                        .any(|r| r.range.end > group.len() || r.range.start > group.len())
                })
            };
            let digest = |item: &CachedItem| {
                if item.helper_names.is_empty() {
                    return 0;
                }
                helpers_digest(
                    &item.helper_names,
                    &functions,
                    outside(item).then_some(group.start),
                )
            };
            // Taint from callers: stale when a caller changed, or, for a trace that points
            // into another item, when anything moved.
            let callers_hold = |item: &CachedItem| {
                item.callers
                    .iter()
                    .all(|name| !changed_calls.contains(name))
                    && !(any_change && !item.callers.is_empty() && outside(item))
            };
            let reusable = self
                .items
                .remove(&key)
                .or_else(|| next.get(&key).cloned())
                .filter(|item| callers_hold(item) && digest(item) == item.helpers);
            let item = match reusable {
                Some(found) => found,
                None => {
                    let (findings, looked_up) = engine::scan_in(
                        language,
                        text,
                        tree,
                        settings,
                        &top,
                        group.clone(),
                        &index,
                    );
                    let (callers, helper_names): (Vec<String>, Vec<String>) = looked_up
                        .into_iter()
                        .partition(|n| n.starts_with(flow::CALLERS_PREFIX));
                    let mut item = CachedItem {
                        findings: findings
                            .into_iter()
                            .map(|f| shifted(f, 0, group.start))
                            .collect(),
                        helper_names,
                        helpers: 0,
                        callers: callers
                            .into_iter()
                            .map(|n| n[flow::CALLERS_PREFIX.len()..].to_string())
                            .collect(),
                        calls: flow::called_names(&text[group.clone()])
                            .into_iter()
                            .map(str::to_string)
                            .collect(),
                    };
                    item.helpers = digest(&item);
                    item
                }
            };
            out.extend(
                item.findings
                    .iter()
                    .cloned()
                    .map(|f| shifted(f, group.start, 0)),
            );
            next.insert(key, item);
        }
        self.items = next;
        drop((functions, index));
        self.defined = defined;
        out.sort_by(|a, b| {
            (a.range.start, a.range.end, a.rule_id).cmp(&(b.range.start, b.range.end, b.rule_id))
        });
        out
    }
}

/// How many bytes `a` and `b` start with in common.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    // Whole blocks first: a slice comparison is a `memcmp`.
    while i + 64 <= n && a[i..i + 64] == b[i..i + 64] {
        i += 64;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// How many bytes `a` and `b` end with in common, at most `most`.
fn common_suffix(a: &[u8], b: &[u8], most: usize) -> usize {
    let (la, lb) = (a.len(), b.len());
    let mut i = 0;
    while i + 64 <= most && a[la - i - 64..la - i] == b[lb - i - 64..lb - i] {
        i += 64;
    }
    while i < most && a[la - i - 1] == b[lb - i - 1] {
        i += 1;
    }
    i
}

/// Moves every offset of a finding by `+add - sub`. Offsets relative to an item wrap around
/// for related locations above the item (a helper defined earlier in the file); moving them
/// back restores the exact offset.
fn shifted(mut f: Finding, add: usize, sub: usize) -> Finding {
    let mv = |r: &mut std::ops::Range<usize>| {
        r.start = r.start.wrapping_add(add).wrapping_sub(sub);
        r.end = r.end.wrapping_add(add).wrapping_sub(sub);
    };
    mv(&mut f.range);
    for r in &mut f.related {
        mv(&mut r.range);
    }
    for fix in &mut f.fixes {
        for (r, _) in &mut fix.edits {
            mv(r);
        }
    }
    f
}
