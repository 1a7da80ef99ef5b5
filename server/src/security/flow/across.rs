//! Crate-wide summaries: what the functions of one file give the data flow of the crate's other
//! files, in plain data that outlives the file's syntax tree ([`CrateSummaries`]).
//!
//! Built in three steps by [`crate::security::walk`] for every crate a scan covers:
//! 1. [`could_hold_source`], from each file's text alone (no parse); a crate none of whose
//!    files could hold a source stops here. Otherwise [`TextFacts`] for each of its files: the
//!    functions it defines and the names it calls.
//! 2. [`plan`]: only names defined exactly once in the crate link files (an ambiguous name links
//!    nothing, as in the same-file analysis), and only calls made from files that could hold a
//!    source (or to functions of such files) matter. Each file gets the names it must summarise
//!    and the calls it must follow; most get nothing and are never parsed for it.
//! 3. [`summarise_file`], per file that has work: the summary of each wanted function (a
//!    source it returns whatever its arguments; which parameters pass through to its value) and
//!    the taint of each argument it passes to a function of another file, found by the same
//!    walk as same-file callers ([`super::callers`]), the call site named in the description.
//!
//! The scan of a file then reads the others' summaries through a [`CrateView`]: a call that
//! does not resolve in its own file resolves here, and a function's parameters take the taint
//! other files pass it. One hop across files in each direction (a summary never consults
//! another file's summary), so the result is bounded, needs no fixed point, and cannot recurse.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher as _};
use std::sync::Arc;

use tree_sitter::Node;

use super::helpers::{Helpers, LazyFunctions, LocalFn, MAX_HELPER_LEVELS, called_names};
use super::sources::mentions_source;
use super::syntax::last_segment;
use super::{SinkRequest, Taint};
use crate::security::ancestry::{Ancestry, top_level};
use crate::security::engine::{Lines, node_text};
use crate::security::rules::TaintSpec;

/// Taint that crossed a file boundary: what it is, in words that name where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CrossTaint {
    /// The source and the path it took, with file and line (`request data `q` (src/api.rs:4),
    /// passed to `find` at src/api.rs:7`).
    pub what: String,
    pub numeric: bool,
    pub canonical: bool,
    /// From the local user (environment, command line, stdin).
    pub local: bool,
}

impl CrossTaint {
    fn of(t: &Taint, what: String) -> Self {
        CrossTaint {
            what,
            numeric: t.numeric,
            canonical: t.canonical,
            local: t.local,
        }
    }

    /// The taint in this file, as a source at `range`.
    pub(super) fn at(&self, range: std::ops::Range<usize>) -> Taint {
        let mut t = Taint::source(range, self.what.clone());
        t.numeric = self.numeric;
        t.canonical = self.canonical;
        t.local = self.local;
        t
    }
}

/// How a call names its callee; a summary applies only to a function the call could mean.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Callee {
    /// `helper(x)`, `crate::helper(x)`: a free function.
    Plain,
    /// `module::helper(x)`: a free function of that module (inline `mod` or file).
    Module(String),
    /// `Type::helper(x)` or `Self::helper(x)`: a function of that type's `impl`.
    Type(String),
    /// `self.helper(x)`: a method of the enclosing `impl`'s type, the receiver the first input.
    SelfMethod(String),
}

impl Callee {
    /// How the call `function` (a call expression's `function` field) names its callee, and
    /// the callee's name.
    pub(super) fn of<'a, 't>(
        function: Node<'t>,
        text: &'a str,
        ancestry: &Ancestry<'_, 't>,
    ) -> Option<(&'a str, Callee)> {
        match function.kind() {
            "identifier" => Some((node_text(function, text), Callee::Plain)),
            "generic_function" => {
                Callee::of(function.child_by_field_name("function")?, text, ancestry)
            }
            "field_expression" => {
                let receiver = function.child_by_field_name("value")?;
                if receiver.kind() != "self" {
                    return None;
                }
                let owner = super::helpers::enclosing_impl_type(function, text, ancestry)?;
                let name = node_text(function.child_by_field_name("field")?, text);
                Some((name, Callee::SelfMethod(owner)))
            }
            "scoped_identifier" => {
                let name = node_text(function.child_by_field_name("name")?, text);
                let head = function
                    .child_by_field_name("path")
                    .map_or("", |p| last_segment(node_text(p, text)));
                let callee = if head == "Self" {
                    Callee::Type(super::helpers::enclosing_impl_type(
                        function, text, ancestry,
                    )?)
                } else if head.starts_with(|c: char| c.is_ascii_uppercase()) {
                    Callee::Type(head.to_string())
                } else if matches!(head, "crate" | "self" | "super" | "") {
                    Callee::Plain
                } else {
                    Callee::Module(head.to_string())
                };
                Some((name, callee))
            }
            _ => None,
        }
    }

    /// Whether a function of `owner`'s `impl` (or free), in `modules`, could be what this
    /// call means.
    fn admits(&self, owner: Option<&str>, takes_self: bool, modules: &[&str]) -> bool {
        match self {
            Callee::Plain => owner.is_none(),
            Callee::Module(m) => owner.is_none() && modules.contains(&m.as_str()),
            Callee::Type(t) => owner == Some(t.as_str()),
            Callee::SelfMethod(t) => takes_self && owner == Some(t.as_str()),
        }
    }
}

/// A call to another file's function: the call, the callee's name, how the call names it, and
/// its inputs in parameter order.
type CrossSite<'t> = (Node<'t>, String, Callee, Vec<Node<'t>>);

/// What a function of another file gives back to its callers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Exported {
    owner: Option<String>,
    /// The inline `mod` it is in and the file's own module name.
    modules: Vec<String>,
    takes_self: bool,
    /// Where it is defined (`src/db.rs:12`).
    pub location: String,
    /// A source it returns whatever its arguments.
    pub source: Option<CrossTaint>,
    /// Per parameter (`self` first): whether its taint reaches the value, and as a number or
    /// a canonical path.
    pub params: Vec<Option<(bool, bool)>>,
}

/// Taint that a call in one file passes to a function of another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Passed {
    callee: Callee,
    param: usize,
    taint: CrossTaint,
}

/// What one file contributes to its crate's summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct FileSummaries {
    exported: Vec<(String, Exported)>,
    passed: Vec<(String, Passed)>,
}

/// The summaries of every file of a crate that has some (see the module docs), by file.
#[derive(Debug, Default)]
pub struct CrateSummaries {
    exported: HashMap<String, Vec<(usize, Exported)>>,
    passed: HashMap<String, Vec<(usize, Passed)>>,
    /// The file module name of each file (`db` for `src/db.rs` and `src/db/mod.rs`).
    modules: Vec<Option<String>>,
    /// What each file was asked to compute, how descriptions name it, and what it gave: kept
    /// so that an edited file's part can be computed again on its own ([`CrateView::refreshed`]).
    plan: CratePlan,
    parts: Vec<FileSummaries>,
    digest: u64,
}

/// Per file of a crate: its work ([`plan`]) and the label descriptions name it by; and whether
/// local sources count.
#[derive(Debug, Clone, Default)]
pub(crate) struct CratePlan {
    pub tasks: Vec<FileTask>,
    pub labels: Vec<String>,
    pub local: bool,
}

impl CrateSummaries {
    /// Puts together the files' summaries; `modules[i]` is file `i`'s module name, `plan` the
    /// work each file did.
    pub(crate) fn new(
        files: Vec<FileSummaries>,
        modules: Vec<Option<String>>,
        plan: CratePlan,
    ) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut out = CrateSummaries {
            modules,
            plan,
            parts: files.clone(),
            ..CrateSummaries::default()
        };
        for (file, summaries) in files.into_iter().enumerate() {
            summaries.hash(&mut hasher);
            for (name, e) in summaries.exported {
                out.exported.entry(name).or_default().push((file, e));
            }
            for (name, p) in summaries.passed {
                out.passed.entry(name).or_default().push((file, p));
            }
        }
        out.modules.hash(&mut hasher);
        out.digest = hasher.finish();
        out
    }

    /// Whether no file passes or returns anything across files.
    pub fn is_empty(&self) -> bool {
        self.exported.is_empty() && self.passed.is_empty()
    }
}

/// A crate's summaries as seen from one of its files (whose own summaries are left out: its
/// scan follows its own functions itself).
#[derive(Debug, Clone)]
pub struct CrateView {
    summaries: Arc<CrateSummaries>,
    file: usize,
}

impl CrateView {
    /// The view of file `file` (its index in the list the summaries were built from).
    pub fn new(summaries: Arc<CrateSummaries>, file: usize) -> Self {
        CrateView { summaries, file }
    }

    /// The view of the same file over `summaries` (the crate's summaries after one file was
    /// edited, see [`CrateView::refreshed`]).
    pub fn over(&self, summaries: &CrateView) -> CrateView {
        CrateView {
            summaries: summaries.summaries.clone(),
            file: self.file,
        }
    }

    /// Whether both views look at the same summaries (of the same crate, at the same time).
    pub fn same_summaries(&self, other: &CrateView) -> bool {
        Arc::ptr_eq(&self.summaries, &other.summaries)
    }

    /// This file's part of the crate's summaries computed again from `text` and its `tree` (an
    /// open document's text, edited since the summaries were built), with the work the file was
    /// given: its exported functions and its calls into other files, nothing else. Returns the
    /// view over the crate's summaries with that part replaced, or `None` when the part is
    /// unchanged (or the file has no work), so that the other files' scans are redone only when
    /// what they could see changed.
    pub fn refreshed(&self, text: &str, tree: &tree_sitter::Tree) -> Option<CrateView> {
        let s = &self.summaries;
        let plan = &s.plan;
        let task = plan.tasks.get(self.file).filter(|t| !t.is_empty())?;
        let label = plan.labels.get(self.file)?;
        let part = summarise_file(text, tree, label, task, plan.local);
        if s.parts.get(self.file) == Some(&part) {
            return None;
        }
        let mut parts = s.parts.clone();
        *parts.get_mut(self.file)? = part;
        let summaries = CrateSummaries::new(parts, s.modules.clone(), plan.clone());
        Some(CrateView {
            summaries: Arc::new(summaries),
            file: self.file,
        })
    }

    /// Changes whenever anything the view could give a scan changes.
    pub fn digest(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.summaries.digest.hash(&mut h);
        self.file.hash(&mut h);
        h.finish()
    }

    /// The function of another file that a call to `name` named as `callee` means: only when
    /// exactly one function of the crate has that name (see [`plan`]).
    pub(super) fn exported(&self, name: &str, callee: &Callee) -> Option<&Exported> {
        let found = self.summaries.exported.get(name)?;
        let [(file, e)] = found.as_slice() else {
            return None;
        };
        let modules: Vec<&str> = e.modules.iter().map(String::as_str).collect();
        (*file != self.file && callee.admits(e.owner.as_deref(), e.takes_self, &modules))
            .then_some(e)
    }

    /// Whether some function of another file named in `names` returns a source.
    pub(super) fn returns_source<'n>(&self, mut names: impl Iterator<Item = &'n str>) -> bool {
        names.any(|n| {
            self.summaries
                .exported
                .get(n)
                .is_some_and(|v| v.iter().any(|(f, e)| *f != self.file && e.source.is_some()))
        })
    }

    /// Per parameter of `func` (a function of this view's file, `self` first), the taint that
    /// other files' calls pass it.
    pub(super) fn passed_to(&self, name: &str, func: &LocalFn<'_>) -> Vec<Option<CrossTaint>> {
        let Some(found) = self.summaries.passed.get(name) else {
            return Vec::new();
        };
        let file_module = self.summaries.modules.get(self.file).cloned().flatten();
        let modules: Vec<&str> = func
            .module
            .as_deref()
            .into_iter()
            .chain(file_module.as_deref())
            .collect();
        let mut out: Vec<Option<CrossTaint>> = Vec::new();
        for (file, p) in found {
            if *file == self.file
                || !p
                    .callee
                    .admits(func.owner.as_deref(), func.takes_self, &modules)
            {
                continue;
            }
            if out.len() <= p.param {
                out.resize(p.param + 1, None);
            }
            // The first call seen (in file order) describes the parameter's taint.
            if out[p.param].is_none() {
                out[p.param] = Some(p.taint.clone());
            }
        }
        out
    }
}

/// What a file's text alone says about its part in crate-wide data flow.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextFacts {
    defined: BTreeSet<String>,
    called: BTreeSet<String>,
    /// It could hold a source ([`could_hold_source`]).
    origin: bool,
}

/// Reads [`TextFacts`] off `text` without parsing it; `origin` is [`could_hold_source`] of it
/// (computed once, by the caller, for every file of the crate).
pub(crate) fn text_facts(text: &str, origin: bool) -> TextFacts {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)").expect("valid regex")
    });
    let defined = re
        .captures_iter(text)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
        .collect();
    let called = called_names(text).into_iter().map(str::to_string).collect();
    TextFacts {
        defined,
        called,
        origin,
    }
}

/// Whether anything in `text` could be a source of the data flow, from the text alone: a
/// superset of what [`mentions_source`] and the parameter rules of `Flow::parameters` accept
/// (an extractor type taken by value, a free `async fn` taking request-shaped data, a handler
/// attribute, a network stream parameter). Most files of most crates hold none, and a crate
/// none of whose files could hold one needs no summaries at all: nothing tainted can cross
/// its files.
pub(crate) fn could_hold_source(text: &str, local: bool) -> bool {
    use std::sync::OnceLock;
    static EXTRACTOR: OnceLock<regex::Regex> = OnceLock::new();
    static ATTRIBUTE: OnceLock<regex::Regex> = OnceLock::new();
    static ASYNC_FN: OnceLock<regex::Regex> = OnceLock::new();
    static REQUEST: OnceLock<regex::Regex> = OnceLock::new();
    static SELF_FIRST: OnceLock<regex::Regex> = OnceLock::new();
    // A type annotation (a `:` that is not half of `::`) whose type, taken by value, ends in
    // an extractor's name.
    let type_ending_in = |names: &str| {
        regex::Regex::new(&format!(
            r"(?:^|[^:]):\s*(?:[A-Za-z_][A-Za-z0-9_]*\s*::\s*)*(?:{names})(?-u:\b)"
        ))
        .expect("valid regex")
    };
    if mentions_source(text, local)
        || ["UnixStream", "TlsStream", "SslStream"]
            .iter()
            .any(|t| text.contains(t))
    {
        return true;
    }
    let extractor = EXTRACTOR.get_or_init(|| type_ending_in(&super::sources::EXTRACTORS.join("|")));
    // `std::path::Path` is never an extractor (and never taken by value).
    if extractor
        .find_iter(text)
        .any(|m| !m.as_str().ends_with("path::Path"))
    {
        return true;
    }
    let attribute = ATTRIBUTE.get_or_init(|| {
        regex::Regex::new(
            r"#\[\s*(?:[A-Za-z_][A-Za-z0-9_]*\s*::\s*)*(?:get|post|put|delete|patch|head|route|options|handler|debug_handler)\s*[(\]]",
        )
        .expect("valid regex")
    });
    if attribute.is_match(text) {
        return true;
    }
    // A file that imports a web framework holds (or, in the editor, is about to hold) its
    // handlers: it counts before the first extractor parameter is written, so that the crate
    // is planned and an edit that adds one follows calls into the other files.
    static FRAMEWORK: OnceLock<regex::Regex> = OnceLock::new();
    let framework = FRAMEWORK.get_or_init(|| {
        regex::Regex::new(
            r"(?-u:\b)(?:use|extern\s+crate)\s+(?:::)?(?:axum|axum_extra|actix_web|rocket|warp|poem|salvo|tide|ntex|tower_cookies)(?-u:\b)",
        )
        .expect("valid regex")
    });
    if framework.is_match(text) {
        return true;
    }
    if !text.contains("async") {
        return false;
    }
    // A free `async fn` (no `self`) with a parameter of a request-shaped type by value.
    let async_fn = ASYNC_FN.get_or_init(|| {
        regex::Regex::new(r"(?-u:\b)async(?-u:\b)[^;{}()]*(?-u:\b)fn\s+[A-Za-z_][A-Za-z0-9_]*")
            .expect("valid regex")
    });
    let request = REQUEST
        .get_or_init(|| type_ending_in(super::sources::GENERIC_REQUEST_TYPES.join("|").as_str()));
    let self_first = SELF_FIRST.get_or_init(|| {
        regex::Regex::new(r"^\s*(?:&\s*(?:'[A-Za-z_][A-Za-z0-9_]*\s*)?)?(?:mut\s+)?self(?-u:\b)")
            .expect("valid regex")
    });
    async_fn.find_iter(text).any(|m| {
        parameter_list(&text[m.end()..])
            .is_some_and(|params| !self_first.is_match(params) && request.is_match(params))
    })
}

/// The text inside the parameter list that starts `rest` (the text after a function's name):
/// generic parameters skipped, parentheses balanced. `None` when it does not look like one.
fn parameter_list(rest: &str) -> Option<&str> {
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    if bytes.get(i) == Some(&b'<') {
        let mut depth = 0usize;
        while i < bytes.len() {
            match bytes[i] {
                b'<' => depth += 1,
                // `->` inside a bound (`F: Fn() -> T`) closes nothing.
                b'>' if i == 0 || bytes[i - 1] != b'-' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                b'{' | b';' => return None,
                _ => {}
            }
            i += 1;
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
    }
    if bytes.get(i) != Some(&b'(') {
        return None;
    }
    let start = i + 1;
    let mut depth = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return rest.get(start..i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    // Unbalanced (the file ends): all of it counts.
    rest.get(start..)
}

/// What one file must compute for its crate: summaries of these functions, and the taint of
/// the arguments of its calls to these names (defined in other files).
#[derive(Debug, Clone, Default)]
pub(crate) struct FileTask {
    pub exports: HashSet<String>,
    pub calls: HashSet<String>,
}

impl FileTask {
    /// Whether the file has nothing to compute.
    pub(crate) fn is_empty(&self) -> bool {
        self.exports.is_empty() && self.calls.is_empty()
    }
}

/// Decides each file's [`FileTask`] from the crate's [`TextFacts`] (one per file, in order).
///
/// A call from a file that could hold a source may pass taint: its file follows it (`calls`)
/// and the callee's file summarises the callee (`exports`). A call from any other file can
/// only take a source that the callee returns, so the callee is summarised only when its own
/// file could hold a source. Everything else is left alone.
pub(crate) fn plan(facts: &[TextFacts]) -> Vec<FileTask> {
    let mut tasks: Vec<FileTask> = vec![FileTask::default(); facts.len()];
    if !facts.iter().any(|f| f.origin) {
        return tasks;
    }
    let mut definitions: HashMap<&str, (usize, usize)> = HashMap::new();
    for (file, f) in facts.iter().enumerate() {
        for name in &f.defined {
            let entry = definitions.entry(name.as_str()).or_insert((0, file));
            entry.0 += 1;
        }
    }
    for (file, f) in facts.iter().enumerate() {
        for name in &f.called {
            if f.defined.contains(name) {
                continue;
            }
            let Some(&(1, home)) = definitions.get(name.as_str()) else {
                continue;
            };
            if f.origin {
                tasks[file].calls.insert(name.clone());
                tasks[home].exports.insert(name.clone());
            } else if facts[home].origin {
                tasks[home].exports.insert(name.clone());
            }
        }
    }
    tasks
}

/// The module name a file's path gives its items: the file stem, or the folder's name for
/// `mod.rs`; none for a crate root (`lib.rs`, `main.rs`).
pub(crate) fn file_module(path: &std::path::Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    match stem {
        "lib" | "main" => None,
        "mod" => Some(path.parent()?.file_name()?.to_str()?.to_string()),
        _ => Some(stem.to_string()),
    }
}

/// Computes `task` for one parsed file; `label` names the file in descriptions.
pub(crate) fn summarise_file(
    text: &str,
    tree: &tree_sitter::Tree,
    label: &str,
    task: &FileTask,
    local: bool,
) -> FileSummaries {
    let lazy = LazyFunctions::new();
    let top = top_level(tree);
    let ancestry = Ancestry::new(tree.root_node(), &top);
    let helpers = Helpers::new(text, ancestry, &lazy);
    let lines = Lines::new(text);
    let at = |byte: usize| format!("{label}:{}", lines.line_of(byte) + 1);
    let mut out = FileSummaries::default();
    let mut exports: Vec<&String> = task.exports.iter().collect();
    exports.sort();
    for name in exports {
        let [func] = helpers.functions_named(name) else {
            continue;
        };
        let Some(summary) = helpers.summary(func, MAX_HELPER_LEVELS) else {
            continue;
        };
        let location = at(func.node.start_byte());
        let source = summary.source.as_ref().map(|t| {
            let (range, what) = t.steps.first().cloned().unwrap_or((0..0, String::new()));
            CrossTaint::of(t, format!("{what} ({}) in `{name}`", at(range.start)))
        });
        if source.is_none() && summary.params.iter().all(Option::is_none) {
            continue;
        }
        out.exported.push((
            name.clone(),
            Exported {
                owner: func.owner.clone(),
                modules: func.module.iter().cloned().collect(),
                takes_self: func.takes_self,
                location,
                source,
                params: summary
                    .params
                    .iter()
                    .map(|p| p.map(|p| (p.numeric, p.canonical)))
                    .collect(),
            },
        ));
    }
    // Calls to the other files' functions, grouped by the function they are in.
    let wanted = |name: &str| task.calls.contains(name);
    let offsets = super::callers::call_index(text, wanted);
    let mut names: Vec<&&str> = offsets.keys().collect();
    names.sort();
    let mut by_caller: Vec<(Node<'_>, Vec<CrossSite<'_>>)> = Vec::new();
    for name in names {
        for &start in offsets[*name].iter().take(super::callers::MAX_CALL_SITES) {
            let Some((call, function, inputs)) = helpers.call_inputs(start, name.len()) else {
                continue;
            };
            // A call that means a function of this file is the same-file analysis's business.
            if helpers.resolve(function).is_some() {
                continue;
            }
            let Some((_, callee)) = Callee::of(function, text, &ancestry) else {
                continue;
            };
            let Some(caller) = ancestry.enclosing_function(call) else {
                continue;
            };
            let site = (call, name.to_string(), callee, inputs);
            match by_caller.iter_mut().find(|(c, _)| c.id() == caller.id()) {
                Some((_, sites)) => sites.push(site),
                None => by_caller.push((caller, vec![site])),
            }
        }
    }
    for (caller, sites) in by_caller {
        let mut requests: Vec<SinkRequest<'_>> = Vec::new();
        let mut slots: Vec<(usize, usize)> = Vec::new();
        for (site, (_, _, _, inputs)) in sites.iter().enumerate() {
            for (param, input) in inputs.iter().enumerate() {
                slots.push((site, param));
                requests.push(SinkRequest {
                    node: *input,
                    spec: TaintSpec {
                        text: true,
                        numbers: true,
                        formatted: false,
                    },
                    local_sources: local,
                });
            }
        }
        let results = helpers.walk_caller(caller, &requests, local, MAX_HELPER_LEVELS);
        for ((site, param), taint) in slots.into_iter().zip(results) {
            let Some(t) = taint.filter(|t| !t.formatted && t.param.is_none()) else {
                continue;
            };
            if t.local && !local {
                continue;
            }
            let (call, name, callee, _) = &sites[site];
            let (range, what) = t.steps.first().cloned().unwrap_or((0..0, String::new()));
            let what = format!(
                "{what} ({}), passed to `{name}` at {}",
                at(range.start),
                at(call.start_byte())
            );
            out.passed.push((
                name.clone(),
                Passed {
                    callee: callee.clone(),
                    param,
                    taint: CrossTaint::of(&t, what),
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn could_hold_source_accepts_every_kind_of_source_the_flow_knows() {
        let sources = [
            "async fn h(Query(q): Query<Params>) {}",
            "async fn h(axum::extract::Json(b): axum::extract::Json<B>) {}",
            "fn serve(stream: UnixStream) {}",
            "fn serve(s: std::net::TcpStream) {}",
            "#[get(\"/\")]\nfn index(name: &str) {}",
            "#[actix_web::post(\"/u\")]\nasync fn upload(name: web::Path<String>) {}",
            "pub async fn upload<B: AsRef<[u8]>>(body: Bytes) {}",
            "pub(crate) async fn echo(req: hyper::Request<Body>) {}",
            "fn f() { let r = reqwest::get(url); }",
            "use axum::extract::Query;\nasync fn later() {}",
        ];
        for text in sources {
            assert!(could_hold_source(text, false), "{text}");
        }
        // Local sources count only when asked for.
        let local = "fn f() { let v = std::env::var(\"X\"); }";
        assert!(!could_hold_source(local, false));
        assert!(could_hold_source(local, true));
    }

    #[test]
    fn could_hold_source_rejects_look_alikes() {
        let plain = [
            "fn open(p: &std::path::Path) {}",
            "fn open(p: &Path, q: PathBuf) -> std::path::PathBuf { todo() }",
            "fn f(p: std::path::Path) {}",
            "impl S { async fn send(&self, body: Body) {} }",
            "struct S { name: String }\nasync fn run(n: u32) -> String { String::new() }",
            "fn g() -> Json { Json::default() } // Query, Form",
            "use std::path::{Path, PathBuf};\nuse serde_json::Value;",
        ];
        for text in plain {
            assert!(!could_hold_source(text, true), "{text}");
        }
    }

    fn facts(text: &str) -> TextFacts {
        text_facts(text, could_hold_source(text, false))
    }

    #[test]
    fn a_crate_without_a_source_plans_no_work() {
        let files = [
            facts("fn a(x: &str) { b(x); }"),
            facts("pub fn b(x: &str) { run(x); }"),
        ];
        assert!(plan(&files).iter().all(FileTask::is_empty));
    }

    #[test]
    fn only_calls_that_can_carry_taint_are_planned() {
        let files = [
            // Could hold a source: its calls are followed and their callees summarised.
            facts("async fn h(Query(q): Query<P>) { store(&q); }"),
            // Holds none: its call to `store` is not followed, but `peer` (whose file reads
            // a socket) is summarised, since it may return a source to it.
            facts("fn tidy() { store(\"x\"); let n = peer(); }"),
            facts(
                "pub fn store(x: &str) {}\npub fn peer() -> String { read(TcpStream::connect(A)) }",
            ),
        ];
        let tasks = plan(&files);
        let sorted = |set: &HashSet<String>| {
            let mut v: Vec<String> = set.iter().cloned().collect();
            v.sort();
            v
        };
        assert_eq!(sorted(&tasks[0].calls), ["store"]);
        assert!(tasks[0].exports.is_empty());
        assert!(tasks[1].is_empty());
        assert_eq!(sorted(&tasks[2].exports), ["peer", "store"]);
        assert!(tasks[2].calls.is_empty());
    }
}
