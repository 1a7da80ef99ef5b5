//! Intra-function data flow on the syntax tree: which values at a rule's sink carry untrusted
//! data, and the path they took from their source.
//!
//! The analysis walks one function in source order with an environment that maps variables
//! (and `a.b` field paths) to their taint. Sources are parameters of web handlers (extractors
//! of axum/actix-web/rocket and handler attributes), `env::var`, `env::args`, stdin and socket
//! reads. Taint propagates through `let`, reassignment, `+=`, `format!`-like macros, method
//! chains, references, struct literals and fields, `match`/`if let` bindings and closures fed
//! by a tainted receiver. Barriers: literals, numeric parsing (for text sinks), `min`/`clamp`
//! and bound checks (for numeric sinks), allow-list checks (`contains`, `matches!`, `==`
//! literal, `match` on literals, validator calls) that guard the sink or return early,
//! `canonicalize` followed by a `starts_with` check, and sanitiser calls (`escape`, `encode`…).
//! Branches are joined by union; loop bodies are walked twice so loop-carried taint is seen.
//!
//! Calls to functions defined in the same file are followed through summaries (`Helpers`):
//! the same walk over the helper's body, once with no parameter tainted (which sources reach
//! its `return`s and tail) and once per parameter marked with a synthetic taint (whether it
//! passes through, and with which barriers: numeric parsing, canonicalisation, checks that
//! return early). Calls resolve by name — `helper(x)`, `module::helper(x)`, `self.helper(x)`,
//! `Self::helper(x)`, `Type::helper(x)` — and only when exactly one function matches.
//! Summaries are computed lazily, when a sink's taint meets such a call, and memoised per
//! file; a cycle yields no taint and helpers of helpers are followed `MAX_HELPER_LEVELS`
//! deep. A function with no source of its own is walked only if it calls a helper that may
//! return one. The trace keeps the source inside the helper and adds "returned by `helper`".

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;

use tree_sitter::Node;

use super::Related;
use super::engine::{enclosing_function, literal_content, node_text};
use super::rules::TaintSpec;

/// Deeper syntax than this is not followed (it only occurs in generated or hostile input).
const MAX_DEPTH: usize = 200;
/// Recorded steps per path; later steps are dropped, the source is always kept.
const MAX_STEPS: usize = 8;

/// A sink to check: the expression that must not carry untrusted data.
#[derive(Clone)]
pub(crate) struct SinkRequest<'t> {
    pub node: Node<'t>,
    pub spec: TaintSpec,
    /// Whether environment variables, command-line arguments and stdin count as untrusted.
    pub local_sources: bool,
}

/// Why a sink is reported: the path from the source, and a one-line summary.
pub(crate) struct Trace {
    pub path: Vec<Related>,
    pub summary: String,
}

#[derive(Clone, Debug)]
struct Taint {
    steps: Vec<(Range<usize>, String)>,
    numeric: bool,
    canonical: bool,
    /// Not from a known source: a string built by formatting non-constant values.
    formatted: bool,
    /// From the local user (environment, command line, stdin) rather than the network.
    local: bool,
    /// The synthetic taint of a helper's parameter, while the helper's summary is computed.
    param: Option<usize>,
}

impl Taint {
    fn source(range: Range<usize>, what: String) -> Self {
        Taint {
            steps: vec![(range, what)],
            numeric: false,
            canonical: false,
            formatted: false,
            local: false,
            param: None,
        }
    }

    fn local_source(range: Range<usize>, what: String) -> Self {
        let mut t = Taint::source(range, what);
        t.local = true;
        t
    }

    fn step(mut self, range: Range<usize>, what: String) -> Self {
        if self.steps.len() < MAX_STEPS && self.steps.last().map(|s| &s.0) != Some(&range) {
            self.steps.push((range, what));
        }
        self
    }

    fn rank(&self) -> u8 {
        let kind = match (self.formatted, self.numeric) {
            (false, false) => 3,
            (false, true) => 2,
            (true, _) => 1,
        };
        kind * 2 + u8::from(!self.local)
    }

    fn accepted_by(&self, spec: &TaintSpec, local_sources: bool) -> bool {
        if self.local && !local_sources {
            return false;
        }
        if self.formatted {
            spec.formatted
        } else if self.numeric {
            spec.numbers
        } else {
            spec.text || spec.numbers
        }
    }
}

fn union(a: Option<Taint>, b: Option<Taint>) -> Option<Taint> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.rank() > a.rank() { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

type Env = HashMap<String, Taint>;

fn join(a: Env, b: Env) -> Env {
    let mut out = a;
    for (k, v) in b {
        let merged = union(out.remove(&k), Some(v));
        if let Some(m) = merged {
            out.insert(k, m);
        }
    }
    out
}

/// What [`analyze`] found: one trace per request, in order, and the names of the functions
/// it looked up in the file to follow helper calls (found or not). A cached result for the
/// scanned items stays valid only while the file's functions of those names are unchanged.
pub(crate) struct Analysis {
    pub traces: Vec<Option<Trace>>,
    pub helper_names: Vec<String>,
}

/// Checks every sink; the result has one entry per request, in order.
pub(crate) fn analyze<'t>(
    text: &str,
    requests: &[SinkRequest<'t>],
    functions: &LazyFunctions<'t>,
) -> Analysis {
    let mut out: Vec<Option<Trace>> = (0..requests.len()).map(|_| None).collect();
    let Some(first) = requests.first() else {
        return Analysis {
            traces: out,
            helper_names: Vec::new(),
        };
    };
    let helpers = Helpers::new(text, root_of(first.node), functions);
    let mut by_function: HashMap<usize, (Node<'t>, Vec<usize>)> = HashMap::new();
    for (i, r) in requests.iter().enumerate() {
        if let Some(func) = enclosing_function(r.node) {
            by_function
                .entry(func.id())
                .or_insert_with(|| (func, Vec::new()))
                .1
                .push(i);
        }
    }
    // Source order, so that memoised helper summaries (and so the results) never depend on
    // the order a hash map happens to yield.
    let mut functions: Vec<(Node<'t>, Vec<usize>)> = by_function.into_values().collect();
    functions.sort_by_key(|(f, _)| f.start_byte());
    for (func, indices) in functions {
        let mut flow = Flow::new(text, requests, &helpers, MAX_HELPER_LEVELS);
        for &i in &indices {
            flow.sinks.entry(requests[i].node.id()).or_default().push(i);
        }
        let mut env = flow.parameters(func);
        // Most functions hold a sink (a log macro, a `with_capacity`) but no source at all;
        // they need no walk. SQL sinks are the exception: formatted text counts there. A call
        // to a helper of this file that may return a source counts as a source.
        let local = indices.iter().any(|&i| requests[i].local_sources);
        let formatted = indices.iter().any(|&i| requests[i].spec.formatted);
        if env.is_empty()
            && !formatted
            && !mentions_source(node_text(func, text), local)
            && !helpers.calls_source_helper(func, local, MAX_HELPER_LEVELS)
        {
            continue;
        }
        flow.collect_int_names(func, 0);
        if let Some(body) = func.child_by_field_name("body") {
            flow.visit(body, &mut env, 0);
        }
        for (i, taint) in flow.results {
            let Some(taint) = taint else { continue };
            let spec = &requests[i].spec;
            if !taint.accepted_by(spec, requests[i].local_sources) {
                continue;
            }
            if taint.formatted
                && !taint
                    .steps
                    .first()
                    .and_then(|(r, _)| text.get(r.clone()))
                    .is_some_and(reads_like_sql)
            {
                continue;
            }
            out[i] = Some(trace_of(&taint, text));
        }
    }
    Analysis {
        traces: out,
        helper_names: helpers.looked_up.into_inner().into_iter().collect(),
    }
}

fn root_of(node: Node<'_>) -> Node<'_> {
    let mut root = node;
    while let Some(parent) = root.parent() {
        root = parent;
    }
    root
}

fn trace_of(taint: &Taint, text: &str) -> Trace {
    let path: Vec<Related> = taint
        .steps
        .iter()
        .map(|(range, what)| Related {
            range: range.clone(),
            message: what.clone(),
        })
        .collect();
    // No line number here: the related information locates the source, and a message that
    // does not mention positions stays valid when lines above it move.
    let _ = text;
    let summary = taint
        .steps
        .first()
        .map(|(_, what)| what.clone())
        .unwrap_or_default();
    Trace { path, summary }
}

struct Flow<'a, 'r, 't> {
    text: &'a str,
    sinks: HashMap<usize, Vec<usize>>,
    results: HashMap<usize, Option<Taint>>,
    /// Variables declared with an integer or boolean type: formatting them into text is safe.
    int_names: HashSet<String>,
    debug_barrier: bool,
    requests: &'r [SinkRequest<'t>],
    helpers: &'r Helpers<'a, 't>,
    /// How many more levels of helper calls may be followed from this walk.
    helper_levels: usize,
    /// While a helper's summary is computed: the taint of what its `return`s give back.
    returns: Option<Taint>,
    summarising: bool,
}

impl<'a, 'r, 't> Flow<'a, 'r, 't> {
    fn new(
        text: &'a str,
        requests: &'r [SinkRequest<'t>],
        helpers: &'r Helpers<'a, 't>,
        helper_levels: usize,
    ) -> Self {
        Flow {
            text,
            sinks: HashMap::new(),
            results: HashMap::new(),
            int_names: HashSet::new(),
            debug_barrier: false,
            requests,
            helpers,
            helper_levels,
            returns: None,
            summarising: false,
        }
    }
}

/// How many levels of helper calls are followed (a helper of a helper of a helper).
const MAX_HELPER_LEVELS: usize = 3;
/// Parameters past this many are not tracked through a helper.
const MAX_HELPER_PARAMS: usize = 16;

/// A function defined in the analysed file, as call sites resolve it.
pub(crate) struct LocalFn<'t> {
    node: Node<'t>,
    /// The type of the `impl` block it is defined in, or `None` for a free function.
    owner: Option<String>,
    /// The innermost `mod` it is defined in.
    module: Option<String>,
    takes_self: bool,
}

/// Every function a file defines, by name (see [`collect_functions`]). Built at most once per
/// scan and shared by the data flow and the scan cache's helper digests.
pub(crate) type FunctionIndex<'t> = HashMap<String, Vec<LocalFn<'t>>>;

/// A lazily built [`FunctionIndex`].
pub(crate) type LazyFunctions<'t> = OnceCell<FunctionIndex<'t>>;

fn function_index<'t>(root: Node<'t>, text: &str) -> FunctionIndex<'t> {
    let mut out = HashMap::new();
    collect_functions(root, text, None, None, &mut out, 0);
    out
}

/// What a helper's return value carries.
#[derive(Clone, Debug, Default)]
struct Summary {
    /// A source reached the return value whatever the arguments were.
    source: Option<Taint>,
    /// Per parameter (`self` first when the helper takes it): whether its taint reaches the
    /// return value, and with which barriers applied (`numeric`, `canonical`).
    params: Vec<Option<ParamFlow>>,
}

#[derive(Clone, Copy, Debug)]
struct ParamFlow {
    numeric: bool,
    canonical: bool,
}

/// The functions of one file and their summaries, computed only when a sink needs one:
/// summaries are memoised per function and per remaining depth, a call back into a summary
/// being computed yields no taint, and at most `MAX_HELPER_LEVELS` levels are followed.
pub(crate) struct Helpers<'a, 't> {
    text: &'a str,
    root: Node<'t>,
    functions: &'a LazyFunctions<'t>,
    summaries: RefCell<HashMap<(usize, usize), Option<Summary>>>,
    may_source: RefCell<HashMap<(usize, usize, bool), bool>>,
    in_progress: RefCell<HashSet<usize>>,
    looked_up: RefCell<BTreeSet<String>>,
}

impl<'a, 't> Helpers<'a, 't> {
    fn new(text: &'a str, root: Node<'t>, functions: &'a LazyFunctions<'t>) -> Self {
        Helpers {
            text,
            root,
            functions,
            summaries: RefCell::new(HashMap::new()),
            may_source: RefCell::new(HashMap::new()),
            in_progress: RefCell::new(HashSet::new()),
            looked_up: RefCell::new(BTreeSet::new()),
        }
    }

    fn functions(&self) -> &FunctionIndex<'t> {
        self.functions
            .get_or_init(|| function_index(self.root, self.text))
    }

    /// The file's functions named `name` (recording the look-up).
    fn named(&self, name: &str) -> &[LocalFn<'t>] {
        self.looked_up.borrow_mut().insert(name.to_string());
        self.functions().get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether `func` calls a function of this file that may return a source.
    fn calls_source_helper(&self, func: Node<'_>, local: bool, levels: usize) -> bool {
        if levels == 0 {
            return false;
        }
        let body = func.child_by_field_name("body").unwrap_or(func);
        called_names(node_text(body, self.text)).iter().any(|name| {
            self.named(name)
                .iter()
                .any(|f| self.may_return_source(f.node, local, levels))
        })
    }

    /// A cheap over-approximation: the helper's text mentions a source, or it calls one
    /// that does (within `levels`).
    fn may_return_source(&self, func: Node<'t>, local: bool, levels: usize) -> bool {
        let key = (func.id(), levels, local);
        if let Some(&known) = self.may_source.borrow().get(&key) {
            return known;
        }
        // Provisionally "no", so that recursion ends.
        self.may_source.borrow_mut().insert(key, false);
        let answer = mentions_source(node_text(func, self.text), local)
            || self.calls_source_helper(func, local, levels - 1);
        self.may_source.borrow_mut().insert(key, answer);
        answer
    }

    /// The function a call resolves to, and whether its receiver is the first argument
    /// (`self.helper(x)`). Ambiguous or unknown names resolve to nothing.
    fn resolve(&self, function: Node<'_>) -> Option<(&LocalFn<'t>, bool)> {
        fn unique<'f, 't>(candidates: Vec<&'f LocalFn<'t>>) -> Option<&'f LocalFn<'t>> {
            (candidates.len() == 1).then(|| candidates[0])
        }
        let text = self.text;
        match function.kind() {
            "identifier" => {
                let found = self.named(node_text(function, text));
                unique(found.iter().filter(|f| f.owner.is_none()).collect()).map(|f| (f, false))
            }
            "generic_function" => self.resolve(function.child_by_field_name("function")?),
            "field_expression" => {
                let receiver = function.child_by_field_name("value")?;
                if receiver.kind() != "self" {
                    return None;
                }
                let owner = enclosing_impl_type(function, text)?;
                let name = node_text(function.child_by_field_name("field")?, text);
                let found = self.named(name);
                unique(
                    found
                        .iter()
                        .filter(|f| f.takes_self && f.owner.as_deref() == Some(owner.as_str()))
                        .collect(),
                )
                .map(|f| (f, true))
            }
            "scoped_identifier" => {
                let name = node_text(function.child_by_field_name("name")?, text);
                let head = function
                    .child_by_field_name("path")
                    .map_or("", |p| last_segment(node_text(p, text)));
                let found = self.named(name);
                let candidates: Vec<&LocalFn<'t>> = if head == "Self" {
                    let owner = enclosing_impl_type(function, text)?;
                    found
                        .iter()
                        .filter(|f| f.owner.as_deref() == Some(owner.as_str()))
                        .collect()
                } else if head.starts_with(|c: char| c.is_ascii_uppercase()) {
                    found
                        .iter()
                        .filter(|f| f.owner.as_deref() == Some(head))
                        .collect()
                } else if matches!(head, "crate" | "self" | "super") {
                    found.iter().filter(|f| f.owner.is_none()).collect()
                } else {
                    found
                        .iter()
                        .filter(|f| f.owner.is_none() && f.module.as_deref() == Some(head))
                        .collect()
                };
                unique(candidates).map(|f| (f, false))
            }
            _ => None,
        }
    }

    /// The summary of `func` when `levels` more levels of helpers may be followed.
    fn summary(&self, func: &LocalFn<'t>, levels: usize) -> Option<Summary> {
        let id = func.node.id();
        let key = (id, levels);
        if let Some(known) = self.summaries.borrow().get(&key) {
            return known.clone();
        }
        if levels == 0 || !self.in_progress.borrow_mut().insert(id) {
            return None;
        }
        let summary = self.compute_summary(func, levels);
        self.in_progress.borrow_mut().remove(&id);
        self.summaries.borrow_mut().insert(key, summary.clone());
        summary
    }

    fn compute_summary(&self, func: &LocalFn<'t>, levels: usize) -> Option<Summary> {
        let node = func.node;
        let body = node.child_by_field_name("body")?;
        let returns = node
            .child_by_field_name("return_type")
            .map_or("", |t| node_text(t, self.text));
        let returned_type = last_segment(value_type(returns));
        // A truth value carries nothing a sink could misuse.
        if returns.is_empty() || returned_type == "bool" {
            return Some(Summary::default());
        }
        let numeric = is_int_type(returned_type);
        let finish = |t: Taint| {
            let mut t = t;
            t.numeric |= numeric;
            t
        };
        // What the helper returns whatever its arguments: sources it reads itself. Text that
        // is merely formatted inside the helper is not a source at its call sites.
        let source = if self.may_return_source(node, true, levels) {
            self.returned_taint(node, body, Env::new(), levels)
                .filter(|t| !t.formatted && t.param.is_none())
                .map(finish)
        } else {
            None
        };
        let mut params = Vec::new();
        if let Some(list) = node.child_by_field_name("parameters") {
            let mut cursor = list.walk();
            let declared: Vec<Node<'t>> = list
                .named_children(&mut cursor)
                .filter(|p| matches!(p.kind(), "parameter" | "self_parameter"))
                .take(MAX_HELPER_PARAMS)
                .collect();
            for (i, param) in declared.into_iter().enumerate() {
                let mut names = Vec::new();
                match param.kind() {
                    "self_parameter" => names.push(("self".to_string(), param)),
                    _ => {
                        if let Some(pattern) = param.child_by_field_name("pattern") {
                            bound_names(pattern, self.text, &mut names, 0);
                        }
                    }
                }
                let mut env = Env::new();
                for (name, at) in names {
                    let mut t = Taint::source(at.byte_range(), format!("parameter `{name}`"));
                    t.param = Some(i);
                    env.insert(name, t);
                }
                let flow = if env.is_empty() {
                    None
                } else {
                    self.returned_taint(node, body, env, levels)
                        .filter(|t| t.param == Some(i))
                        .map(|t| ParamFlow {
                            numeric: t.numeric || numeric,
                            canonical: t.canonical,
                        })
                };
                params.push(flow);
            }
        }
        Some(Summary { source, params })
    }

    /// Walks a helper's body under `env` and unions what its `return`s and tail give back.
    fn returned_taint(
        &self,
        func: Node<'t>,
        body: Node<'t>,
        mut env: Env,
        levels: usize,
    ) -> Option<Taint> {
        let mut flow = Flow::new(self.text, &[], self, levels - 1);
        flow.summarising = true;
        flow.collect_int_names(func, 0);
        flow.visit(body, &mut env, 0);
        let tail = tail_expression(body).and_then(|t| flow.taint_of(t, &env, 0));
        union(flow.returns.take(), tail)
    }
}

/// The expression whose value a block gives back, if any. A trailing `if`, `match` or block
/// parses as a statement; without its own `;` it is still the block's value.
fn tail_expression(block: Node<'_>) -> Option<Node<'_>> {
    let mut cursor = block.walk();
    let last = block
        .named_children(&mut cursor)
        .filter(|c| !matches!(c.kind(), "line_comment" | "block_comment"))
        .last()?;
    match last.kind() {
        "expression_statement" => {
            let inner = last.named_child(0)?;
            let has_semicolon = last
                .child(last.child_count().checked_sub(1)?)
                .is_some_and(|c| c.kind() == ";");
            (!has_semicolon).then_some(inner)
        }
        "let_declaration" | "empty_statement" => None,
        kind if kind.ends_with("_item") => None,
        _ => Some(last),
    }
}

/// The type a function's value is used as: `Result<T, E>`, `Option<T>` and `io::Result<T>`
/// give `T`.
fn value_type(ty: &str) -> &str {
    let ty = ty.trim();
    for wrapper in ["Result<", "Option<"] {
        if let Some(at) = ty.find(wrapper)
            && !ty[..at].contains('<')
        {
            let inner = &ty[at + wrapper.len()..];
            let end = inner.find([',', '>']).unwrap_or(inner.len());
            return inner[..end].trim();
        }
    }
    ty
}

/// Every function item in the file by name, with the `impl` type and `mod` it belongs to;
/// functions nested in other functions' bodies are not callable from elsewhere and are left out.
fn collect_functions<'t>(
    node: Node<'t>,
    text: &str,
    owner: Option<&str>,
    module: Option<&str>,
    out: &mut HashMap<String, Vec<LocalFn<'t>>>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        match child.kind() {
            "function_item" => {
                // One pass over the item's children instead of a field look-up each: this
                // runs over every function of the file on each keystroke that needs helpers.
                let mut name = None;
                let mut takes_self = false;
                let mut c = child.walk();
                if c.goto_first_child() {
                    loop {
                        match c.field_name() {
                            Some("name") => name = Some(c.node()),
                            Some("parameters") => {
                                // `self` can only be the first parameter.
                                let params = c.node();
                                let mut pc = params.walk();
                                takes_self = params
                                    .named_children(&mut pc)
                                    .find(|n| {
                                        !matches!(
                                            n.kind(),
                                            "line_comment" | "block_comment" | "attribute_item"
                                        )
                                    })
                                    .is_some_and(|n| n.kind() == "self_parameter");
                                break;
                            }
                            _ => {}
                        }
                        if !c.goto_next_sibling() {
                            break;
                        }
                    }
                }
                let Some(name) = name else {
                    continue;
                };
                out.entry(node_text(name, text).to_string())
                    .or_default()
                    .push(LocalFn {
                        node: child,
                        owner: owner.map(str::to_string),
                        module: module.map(str::to_string),
                        takes_self,
                    });
            }
            "impl_item" => {
                let ty = child
                    .child_by_field_name("type")
                    .map(|t| last_segment(node_text(t, text)));
                if let (Some(ty), Some(body)) = (ty, child.child_by_field_name("body")) {
                    collect_functions(body, text, Some(ty), module, out, depth + 1);
                }
            }
            "mod_item" => {
                let name = child
                    .child_by_field_name("name")
                    .map(|n| node_text(n, text));
                if let Some(body) = child.child_by_field_name("body") {
                    collect_functions(body, text, None, name, out, depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// The type of the `impl` block around `node`.
fn enclosing_impl_type(node: Node<'_>, text: &str) -> Option<String> {
    let mut current = node.parent();
    while let Some(n) = current {
        if n.kind() == "impl_item" {
            let ty = n.child_by_field_name("type")?;
            return Some(last_segment(node_text(ty, text)).to_string());
        }
        if matches!(n.kind(), "trait_item" | "mod_item") {
            return None;
        }
        current = n.parent();
    }
    None
}

/// The names a piece of code calls (`name(`, `x.name(`, `T::name(`, `name::<T>(`).
fn called_names(code: &str) -> BTreeSet<&str> {
    let bytes = code.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            let rest = &bytes[j..];
            if rest.starts_with(b"(") || rest.starts_with(b"::<") {
                out.insert(&code[start..i]);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The functions a file defines, for checking that a cached result which looked up helpers
/// by name still holds: a digest per name of everything a call resolved against them depends
/// on (their text, `impl` type and `mod`), hashed only for the names asked about.
pub(crate) struct FunctionDigests<'a, 't> {
    text: &'a str,
    root: Node<'t>,
    functions: &'a LazyFunctions<'t>,
    contents: HashMap<String, u64>,
}

impl<'a, 't> FunctionDigests<'a, 't> {
    pub(crate) fn new(
        tree: &'t tree_sitter::Tree,
        text: &'a str,
        functions: &'a LazyFunctions<'t>,
    ) -> Self {
        FunctionDigests {
            text,
            root: tree.root_node(),
            functions,
            contents: HashMap::new(),
        }
    }

    /// The digest of the functions named `name` (absent ones too); with `at`, also of their
    /// offsets from that byte, for results whose traces point into them.
    pub(crate) fn digest(&mut self, name: &str, at: Option<usize>) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        let text = self.text;
        let root = self.root;
        let fns = self
            .functions
            .get_or_init(|| function_index(root, text))
            .get(name)
            .map_or(&[][..], Vec::as_slice);
        let content = *self.contents.entry(name.to_string()).or_insert_with(|| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            name.hash(&mut h);
            for f in fns {
                node_text(f.node, text).hash(&mut h);
                f.owner.hash(&mut h);
                f.module.hash(&mut h);
            }
            h.finish()
        });
        let Some(at) = at else { return content };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        content.hash(&mut h);
        for f in fns {
            f.node.start_byte().wrapping_sub(at).hash(&mut h);
        }
        h.finish()
    }
}

/// Keeps the first step (the source) and room for the step at the call site and one more.
fn returned_by(mut t: Taint, call: Range<usize>, name: &str) -> Taint {
    if t.steps.len() > MAX_STEPS - 2 {
        let keep_tail = MAX_STEPS - 3;
        let tail = t.steps.split_off(t.steps.len() - keep_tail);
        t.steps.truncate(1);
        t.steps.extend(tail);
    }
    t.steps.push((call, format!("returned by `{name}`")));
    t
}

/// Types that only web frameworks' request extractors use.
const EXTRACTORS: &[&str] = &[
    "Query",
    "Json",
    "Form",
    "Path",
    "HttpRequest",
    "Multipart",
    "Payload",
    "RawQuery",
    "TypedHeader",
    "RawBody",
    "RawForm",
    "Cookies",
    "CookieJar",
];

/// Types that carry request data in handlers but are used everywhere else too (inside HTTP
/// libraries, for example); they count only in free `async fn`s, the shape of a handler.
const GENERIC_REQUEST_TYPES: &[&str] = &["Bytes", "Request", "HeaderMap", "Body", "String"];

const NON_REQUEST_TYPES: &[&str] = &[
    "State",
    "Data",
    "Extension",
    "Pool",
    "Db",
    "Connection",
    "Config",
    "Client",
    "Arc",
];

fn is_int_type(ty: &str) -> bool {
    matches!(
        ty.trim().trim_start_matches('&'),
        "i8" | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "isize"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "usize"
            | "f32"
            | "f64"
            | "bool"
            | "Uuid"
            | "uuid::Uuid"
    )
}

fn last_segment(path: &str) -> &str {
    let path = path.split('<').next().unwrap_or(path);
    path.rsplit("::").next().unwrap_or(path).trim()
}

fn is_constant_name(name: &str) -> bool {
    name.chars().any(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Identifiers a pattern binds (not the type names and constants in it).
fn bound_names<'t>(pattern: Node<'t>, text: &str, out: &mut Vec<(String, Node<'t>)>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match pattern.kind() {
        "identifier" | "shorthand_field_identifier" => {
            let name = node_text(pattern, text);
            let first_upper = name.chars().next().is_some_and(|c| c.is_uppercase());
            if !first_upper && name != "_" {
                out.push((name.to_string(), pattern));
            }
        }
        "scoped_identifier" | "field_identifier" | "type_identifier" | "generic_type" => {}
        _ => {
            let mut cursor = pattern.walk();
            for (i, child) in pattern.children(&mut cursor).enumerate() {
                let field = pattern.field_name_for_child(i as u32);
                if field == Some("type") {
                    continue;
                }
                if pattern.kind() == "field_pattern" && field == Some("name") {
                    if child.kind() == "shorthand_field_identifier" {
                        bound_names(child, text, out, depth + 1);
                    }
                    continue;
                }
                bound_names(child, text, out, depth + 1);
            }
        }
    }
}

/// The variable or field path an expression names, looking through references, derefs and
/// view conversions (`&x`, `*x`, `x.as_str()`, `x.trim()`).
fn path_key(node: Node<'_>, text: &str, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    match node.kind() {
        "identifier" | "self" => Some(node_text(node, text).to_string()),
        "field_expression" => {
            let base = path_key(node.child_by_field_name("value")?, text, depth + 1)?;
            let field = node_text(node.child_by_field_name("field")?, text);
            Some(format!("{base}.{field}"))
        }
        "reference_expression" | "parenthesized_expression" | "unary_expression" => {
            path_key(last_named_child(node)?, text, depth + 1)
        }
        "call_expression" => {
            let function = node.child_by_field_name("function")?;
            if function.kind() != "field_expression" {
                return None;
            }
            let method = node_text(function.child_by_field_name("field")?, text);
            if matches!(
                method,
                "as_str"
                    | "as_ref"
                    | "to_string"
                    | "trim"
                    | "as_path"
                    | "to_owned"
                    | "clone"
                    | "as_bytes"
                    | "to_lowercase"
                    | "to_ascii_lowercase"
                    | "borrow"
                    | "deref"
                    | "unwrap"
                    | "into_inner"
                    | "host_str"
                    | "host"
                    | "unwrap_or_default"
                    | "unwrap_or"
                    | "expect"
                    | "as_deref"
                    | "domain"
                    | "to_str"
                    | "as_os_str"
                    | "to_string_lossy"
                    | "authority"
            ) {
                path_key(function.child_by_field_name("value")?, text, depth + 1)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn diverges(block: Node<'_>, text: &str) -> bool {
    let mut last = None;
    let mut cursor = block.walk();
    for child in block.named_children(&mut cursor) {
        if !matches!(child.kind(), "line_comment" | "block_comment") {
            last = Some(child);
        }
    }
    let Some(mut last) = last else { return false };
    if last.kind() == "expression_statement"
        && let Some(inner) = last.named_child(0)
    {
        last = inner;
    }
    match last.kind() {
        "return_expression" | "break_expression" | "continue_expression" => true,
        "macro_invocation" => {
            let name = last
                .child_by_field_name("macro")
                .map_or("", |m| node_text(m, text));
            matches!(
                last_segment(name),
                "panic" | "unreachable" | "bail" | "todo" | "unimplemented"
            )
        }
        "block" => diverges(last, text),
        _ => false,
    }
}

/// How a check cleans a variable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    /// An allow-list or validation: clean for every sink.
    Allowed,
    /// A bound on a number.
    Bounded,
    /// A prefix check, which confines a path only once it is canonical.
    Prefix,
}

impl<'r, 't> Flow<'_, 'r, 't> {
    fn t(&self, node: Node<'_>) -> &str {
        node_text(node, self.text)
    }

    /// The taint of the function's parameters: request data when it is a web handler.
    fn parameters(&self, func: Node<'_>) -> Env {
        let mut env = Env::new();
        let name = func
            .child_by_field_name("name")
            .map_or("", |n| self.t(n))
            .to_string();
        let mut handler_attribute = false;
        let mut prev = func.prev_named_sibling();
        while let Some(p) = prev {
            match p.kind() {
                "attribute_item" => {
                    let attr = self.t(p);
                    let head = attr
                        .trim_start_matches("#[")
                        .split(['(', ']'])
                        .next()
                        .unwrap_or("");
                    if matches!(
                        last_segment(head),
                        "get"
                            | "post"
                            | "put"
                            | "delete"
                            | "patch"
                            | "head"
                            | "route"
                            | "options"
                            | "handler"
                            | "debug_handler"
                    ) {
                        handler_attribute = true;
                    }
                }
                "line_comment" | "block_comment" => {}
                _ => break,
            }
            prev = p.prev_named_sibling();
        }
        let Some(params) = func.child_by_field_name("parameters") else {
            return env;
        };
        let head = func.child_by_field_name("name").map_or("", |n| {
            self.text
                .get(func.start_byte()..n.start_byte())
                .unwrap_or("")
        });
        let handler_shaped = head.contains("async") && {
            let mut c = params.walk();
            !params
                .named_children(&mut c)
                .any(|p| p.kind() == "self_parameter")
        };
        let mut cursor = params.walk();
        for param in params.named_children(&mut cursor) {
            if param.kind() != "parameter" {
                continue;
            }
            let (Some(pattern), Some(ty)) = (
                param.child_by_field_name("pattern"),
                param.child_by_field_name("type"),
            ) else {
                continue;
            };
            let ty_text = self
                .t(ty)
                .trim_start_matches('&')
                .trim_start_matches("mut ");
            let outer = last_segment(ty_text);
            // Extractors are taken by value; `&Path` is `std::path::Path`, not axum's.
            let by_value = !self.t(ty).starts_with('&');
            let is_extractor = by_value
                && !ty_text.contains("path::Path")
                && (EXTRACTORS.contains(&outer)
                    || (handler_shaped && GENERIC_REQUEST_TYPES.contains(&outer)));
            // Whatever arrives on a network stream is untrusted, wherever the stream came from.
            if matches!(
                outer,
                "TcpStream" | "UdpSocket" | "UnixStream" | "TlsStream" | "SslStream"
            ) {
                let mut names = Vec::new();
                bound_names(pattern, self.text, &mut names, 0);
                for (var, node) in names {
                    let taint = Taint::source(node.byte_range(), format!("network stream `{var}`"));
                    env.insert(var, taint);
                }
                continue;
            }
            let is_plain_request_data = handler_attribute
                && !NON_REQUEST_TYPES.iter().any(|t| ty_text.contains(t))
                && !ty_text.starts_with("Option<&");
            if !(is_extractor || is_plain_request_data) {
                continue;
            }
            let mut names = Vec::new();
            bound_names(pattern, self.text, &mut names, 0);
            for (var, node) in names {
                let mut taint = Taint::source(
                    node.byte_range(),
                    format!("request data `{var}` of handler `{name}`"),
                );
                taint.numeric = is_int_type(ty_text);
                env.insert(var, taint);
            }
        }
        env
    }

    fn collect_int_names(&mut self, node: Node<'_>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        if matches!(node.kind(), "parameter" | "let_declaration")
            && let Some(ty) = node.child_by_field_name("type")
            && is_int_type(self.t(ty))
            && let Some(pattern) = node.child_by_field_name("pattern")
        {
            let mut names = Vec::new();
            bound_names(pattern, self.text, &mut names, 0);
            self.int_names.extend(names.into_iter().map(|(n, _)| n));
        }
        let mut cursor = node.walk();
        for child in node.named_children(&mut cursor) {
            self.collect_int_names(child, depth + 1);
        }
    }

    fn record_sink(&mut self, node: Node<'t>, env: &Env, depth: usize) {
        let Some(indices) = self.sinks.get(&node.id()).cloned() else {
            return;
        };
        for i in indices {
            self.debug_barrier = self
                .requests
                .get(i)
                .is_some_and(|r| r.spec.text && !r.spec.formatted && !r.spec.numbers)
                && is_log_sink(node, self.text);
            let taint = self.taint_of(node, env, depth);
            self.debug_barrier = false;
            let slot = self.results.entry(i).or_insert(None);
            // Loop bodies are walked twice; keep the most telling result.
            *slot = union(slot.take(), taint);
        }
    }

    fn bind(&self, pattern: Node<'_>, taint: Option<Taint>, env: &mut Env) {
        let mut names = Vec::new();
        bound_names(pattern, self.text, &mut names, 0);
        for (name, node) in names {
            env.retain(|k, _| k != &name && !k.starts_with(&format!("{name}.")));
            if let Some(t) = &taint {
                let t = t
                    .clone()
                    .step(node.byte_range(), format!("flows into `{name}`"));
                env.insert(name, t);
            }
        }
    }

    fn visit(&mut self, node: Node<'t>, env: &mut Env, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        self.record_sink(node, env, depth);
        match node.kind() {
            "function_item" | "impl_item" | "trait_item" | "mod_item" => {}
            "let_declaration" => {
                if let Some(value) = node.child_by_field_name("value") {
                    self.visit(value, env, depth + 1);
                    let taint = self.taint_of(value, env, depth + 1);
                    if let Some(pattern) = node.child_by_field_name("pattern") {
                        if value.kind() == "struct_expression" && pattern.kind() == "identifier" {
                            self.bind_struct(pattern, value, env, depth + 1);
                        } else {
                            self.bind(pattern, taint, env);
                        }
                    }
                }
                if let Some(alt) = node.child_by_field_name("alternative") {
                    let mut inner = env.clone();
                    self.visit(alt, &mut inner, depth + 1);
                }
            }
            "assignment_expression" | "compound_assignment_expr" => {
                let (Some(left), Some(right)) = (
                    node.child_by_field_name("left"),
                    node.child_by_field_name("right"),
                ) else {
                    return;
                };
                self.visit(right, env, depth + 1);
                let taint = self.taint_of(right, env, depth + 1);
                if let Some(key) = path_key(left, self.text, 0) {
                    let taint = if node.kind() == "compound_assignment_expr" {
                        union(env.get(&key).cloned(), taint)
                    } else {
                        taint
                    };
                    match taint {
                        Some(t) => {
                            let t = t.step(left.byte_range(), format!("assigned to `{key}`"));
                            env.insert(key, t);
                        }
                        None => {
                            env.retain(|k, _| k != &key && !k.starts_with(&format!("{key}.")));
                        }
                    }
                }
            }
            "if_expression" => self.visit_if(node, env, depth),
            "match_expression" => self.visit_match(node, env, depth),
            "for_expression" => {
                if let Some(value) = node.child_by_field_name("value") {
                    self.visit(value, env, depth + 1);
                    let taint = self.taint_of(value, env, depth + 1);
                    if let Some(body) = node.child_by_field_name("body") {
                        let mut inner = env.clone();
                        if let Some(pattern) = node.child_by_field_name("pattern") {
                            self.bind(pattern, taint, &mut inner);
                        }
                        self.visit(body, &mut inner, depth + 1);
                        self.visit(body, &mut inner, depth + 1);
                        *env = join(std::mem::take(env), inner);
                    }
                }
            }
            "while_expression" | "loop_expression" => {
                let mut inner = env.clone();
                if let Some(cond) = node.child_by_field_name("condition") {
                    self.visit_condition(cond, &mut inner, depth + 1);
                }
                if let Some(body) = node.child_by_field_name("body") {
                    self.visit(body, &mut inner, depth + 1);
                    self.visit(body, &mut inner, depth + 1);
                }
                *env = join(std::mem::take(env), inner);
            }
            "closure_expression" => {
                let mut inner = env.clone();
                if let Some(body) = node.child_by_field_name("body") {
                    self.visit(body, &mut inner, depth + 1);
                }
            }
            "call_expression" => self.visit_call(node, env, depth),
            "return_expression" => {
                self.visit_children(node, env, depth);
                if self.summarising
                    && returns_from_function(node)
                    && let Some(value) = node.named_child(0)
                {
                    let t = self.taint_of(value, env, depth + 1);
                    self.returns = union(self.returns.take(), t);
                }
            }
            "macro_invocation" => {
                self.visit_children(node, env, depth);
                let name = node.child_by_field_name("macro").map_or("", |m| self.t(m));
                if matches!(last_segment(name), "write" | "writeln")
                    && let Some(tt) = token_tree_of(node)
                {
                    let args = split_args(tt);
                    if let Some(dest) = args.first().and_then(|a| tokens_key(a, self.text))
                        && let Some(t) = self.format_taint(&args[1..], env, depth + 1, false)
                        && !t.formatted
                    {
                        let t = t.step(node.byte_range(), format!("written into `{dest}`"));
                        let merged = union(env.remove(&dest), Some(t));
                        if let Some(m) = merged {
                            env.insert(dest, m);
                        }
                    }
                }
            }
            _ => self.visit_children(node, env, depth),
        }
    }

    fn visit_children(&mut self, node: Node<'t>, env: &mut Env, depth: usize) {
        let mut cursor = node.walk();
        let children: Vec<Node<'t>> = node.named_children(&mut cursor).collect();
        for child in children {
            self.visit(child, env, depth + 1);
        }
    }

    fn bind_struct(&self, var: Node<'_>, value: Node<'_>, env: &mut Env, depth: usize) {
        let name = self.t(var).to_string();
        env.retain(|k, _| k != &name && !k.starts_with(&format!("{name}.")));
        let Some(body) = value.child_by_field_name("body") else {
            return;
        };
        let mut cursor = body.walk();
        for field in body.named_children(&mut cursor) {
            let (field_name, taint) = match field.kind() {
                "field_initializer" => (
                    field
                        .child_by_field_name("field")
                        .map_or("", |f| self.t(f))
                        .to_string(),
                    field
                        .child_by_field_name("value")
                        .and_then(|v| self.taint_of(v, env, depth + 1)),
                ),
                "shorthand_field_initializer" => {
                    let n = self.t(field).to_string();
                    let t = env.get(&n).cloned();
                    (n, t)
                }
                "base_field_initializer" => {
                    if let Some(t) = field
                        .named_child(0)
                        .and_then(|b| self.taint_of(b, env, depth + 1))
                    {
                        env.insert(name.clone(), t);
                    }
                    continue;
                }
                _ => continue,
            };
            if let Some(t) = taint {
                let key = format!("{name}.{field_name}");
                let t = t.step(field.byte_range(), format!("stored in `{key}`"));
                env.insert(key, t);
            }
        }
    }

    fn visit_condition(&mut self, cond: Node<'t>, env: &mut Env, depth: usize) {
        match cond.kind() {
            "let_condition" => {
                if let Some(value) = cond.child_by_field_name("value") {
                    self.visit(value, env, depth + 1);
                    let taint = self.taint_of(value, env, depth + 1);
                    if let Some(pattern) = cond.child_by_field_name("pattern") {
                        self.bind(pattern, taint, env);
                    }
                }
            }
            "let_chain" => {
                let mut cursor = cond.walk();
                let parts: Vec<Node<'t>> = cond.named_children(&mut cursor).collect();
                for part in parts {
                    self.visit_condition(part, env, depth + 1);
                }
            }
            _ => self.visit(cond, env, depth + 1),
        }
    }

    fn visit_if(&mut self, node: Node<'t>, env: &mut Env, depth: usize) {
        let Some(cond) = node.child_by_field_name("condition") else {
            return;
        };
        let mut then_env = env.clone();
        self.visit_condition(cond, &mut then_env, depth + 1);
        let mut else_env = env.clone();
        self.apply_checks(cond, true, &mut then_env);
        self.apply_checks(cond, false, &mut else_env);
        let consequence = node.child_by_field_name("consequence");
        if let Some(c) = consequence {
            self.visit(c, &mut then_env, depth + 1);
        }
        let alternative = node.child_by_field_name("alternative");
        if let Some(a) = alternative {
            self.visit(a, &mut else_env, depth + 1);
        }
        let then_diverges = consequence.is_some_and(|c| diverges(c, self.text));
        let else_diverges = alternative
            .and_then(|a| a.named_child(0))
            .is_some_and(|b| b.kind() == "block" && diverges(b, self.text));
        *env = match (then_diverges, else_diverges) {
            (true, false) => else_env,
            (false, true) => then_env,
            _ => join(then_env, else_env),
        };
    }

    fn visit_match(&mut self, node: Node<'t>, env: &mut Env, depth: usize) {
        let Some(value) = node.child_by_field_name("value") else {
            return;
        };
        self.visit(value, env, depth + 1);
        let scrutinee = self.taint_of(value, env, depth + 1);
        let scrutinee_key = path_key(value, self.text, 0);
        let Some(body) = node.child_by_field_name("body") else {
            return;
        };
        let mut joined: Option<Env> = None;
        let mut cursor = body.walk();
        let arms: Vec<Node<'t>> = body
            .named_children(&mut cursor)
            .filter(|a| a.kind() == "match_arm")
            .collect();
        for arm in arms {
            let mut arm_env = env.clone();
            if let Some(pattern) = arm.child_by_field_name("pattern") {
                if pattern_is_literal(pattern) {
                    if let Some(key) = &scrutinee_key {
                        arm_env.remove(key);
                    }
                } else {
                    self.bind(pattern, scrutinee.clone(), &mut arm_env);
                }
            }
            let value = arm.child_by_field_name("value");
            if let Some(v) = value {
                self.visit(v, &mut arm_env, depth + 1);
            }
            let arm_diverges = value.is_some_and(|v| {
                matches!(
                    v.kind(),
                    "return_expression" | "break_expression" | "continue_expression"
                ) || (v.kind() == "block" && diverges(v, self.text))
            });
            if !arm_diverges {
                joined = Some(match joined {
                    Some(j) => join(j, arm_env),
                    None => arm_env,
                });
            }
        }
        if let Some(j) = joined {
            *env = j;
        }
    }

    fn visit_call(&mut self, node: Node<'t>, env: &mut Env, depth: usize) {
        let Some(function) = node.child_by_field_name("function") else {
            return;
        };
        let arguments = node.child_by_field_name("arguments");
        self.visit(function, env, depth + 1);
        let method_node = match function.kind() {
            "field_expression" => Some(function),
            "generic_function" => function
                .child_by_field_name("function")
                .filter(|f| f.kind() == "field_expression"),
            _ => None,
        };
        let Some(method_node) = method_node else {
            if let Some(args) = arguments {
                self.visit(args, env, depth + 1);
            }
            return;
        };
        let method = method_node
            .child_by_field_name("field")
            .map_or("", |f| self.t(f))
            .to_string();
        let receiver = method_node.child_by_field_name("value");
        let receiver_taint = receiver.and_then(|r| self.taint_of(r, env, depth + 1));
        let Some(args) = arguments else { return };
        let mut cursor = args.walk();
        let arg_nodes: Vec<Node<'t>> = args.named_children(&mut cursor).collect();
        for arg in &arg_nodes {
            // Closures handed to a tainted receiver (`lines.for_each(|l| …)`) get its taint.
            if arg.kind() == "closure_expression" && receiver_taint.is_some() {
                let mut inner = env.clone();
                if let Some(params) = arg.child_by_field_name("parameters") {
                    let mut pc = params.walk();
                    let ps: Vec<Node<'t>> = params.named_children(&mut pc).collect();
                    for p in ps {
                        let pattern = p.child_by_field_name("pattern").unwrap_or(p);
                        self.bind(pattern, receiver_taint.clone(), &mut inner);
                    }
                }
                if let Some(body) = arg.child_by_field_name("body") {
                    self.visit(body, &mut inner, depth + 1);
                }
            } else {
                self.visit(*arg, env, depth + 1);
            }
        }
        // Reads from a tainted stream fill their buffer argument.
        if matches!(
            method.as_str(),
            "read_line"
                | "read_to_string"
                | "read_to_end"
                | "read"
                | "read_exact"
                | "recv"
                | "recv_from"
                | "peek"
        ) && let Some(t) = receiver_taint.clone()
            && let Some(buf) = arg_nodes.first()
            && let Some(key) = path_key(*buf, self.text, 0)
        {
            let t = t.step(buf.byte_range(), format!("read into `{key}`"));
            env.insert(key, t);
        }
        // Appending tainted data taints the receiver.
        if matches!(
            method.as_str(),
            "push_str"
                | "push"
                | "extend"
                | "extend_from_slice"
                | "insert"
                | "append"
                | "insert_str"
                | "write_str"
                | "write_all"
        ) && let Some(recv) = receiver
            && let Some(key) = path_key(recv, self.text, 0)
        {
            let mut taint = None;
            for arg in &arg_nodes {
                taint = union(taint, self.taint_of(*arg, env, depth + 1));
            }
            if let Some(t) = taint.filter(|t| !t.formatted) {
                let t = t.step(node.byte_range(), format!("appended to `{key}`"));
                let merged = union(env.remove(&key), Some(t));
                if let Some(m) = merged {
                    env.insert(key, m);
                }
            }
        }
    }

    /// The checks a condition performs when it evaluates to `when`.
    fn checks(&self, cond: Node<'_>, when: bool, out: &mut Vec<(String, Check)>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match cond.kind() {
            "parenthesized_expression" => {
                if let Some(inner) = cond.named_child(0) {
                    self.checks(inner, when, out, depth + 1);
                }
            }
            "unary_expression" if self.t(cond).starts_with('!') => {
                if let Some(inner) = cond.named_child(0) {
                    self.checks(inner, !when, out, depth + 1);
                }
            }
            "binary_expression" => {
                let (Some(left), Some(op), Some(right)) = (
                    cond.child_by_field_name("left"),
                    cond.child_by_field_name("operator"),
                    cond.child_by_field_name("right"),
                ) else {
                    return;
                };
                match (self.t(op), when) {
                    ("&&", true) | ("||", false) => {
                        self.checks(left, when, out, depth + 1);
                        self.checks(right, when, out, depth + 1);
                    }
                    ("==", true) | ("!=", false) => {
                        for (var, other) in [(left, right), (right, left)] {
                            if is_literal(other)
                                && let Some(key) = path_key(var, self.text, 0)
                            {
                                out.push((key, Check::Allowed));
                            }
                        }
                    }
                    (op @ ("<" | "<=" | ">" | ">="), when) => {
                        let less = matches!(op, "<" | "<=");
                        // `x < MAX` true, or `x > MAX` false, bounds x; mirrored on the right.
                        if less == when
                            && let Some(key) = path_key(left, self.text, 0)
                        {
                            out.push((key, Check::Bounded));
                        }
                        if less != when
                            && let Some(key) = path_key(right, self.text, 0)
                        {
                            out.push((key, Check::Bounded));
                        }
                    }
                    _ => {}
                }
            }
            "call_expression" if when => {
                let Some(function) = cond.child_by_field_name("function") else {
                    return;
                };
                let args: Vec<Node<'_>> = cond
                    .child_by_field_name("arguments")
                    .map(|a| {
                        let mut c = a.walk();
                        a.named_children(&mut c).collect()
                    })
                    .unwrap_or_default();
                if function.kind() == "field_expression" {
                    let method = function
                        .child_by_field_name("field")
                        .map_or("", |f| self.t(f));
                    let receiver = function.child_by_field_name("value");
                    match method {
                        "contains" | "contains_key" | "is_match" | "binary_search" => {
                            for a in &args {
                                if let Some(key) = path_key(*a, self.text, 0) {
                                    out.push((key, Check::Allowed));
                                }
                            }
                        }
                        "all" => {
                            // `name.chars().all(char::is_alphanumeric)`
                            if let Some(r) = receiver
                                && let Some(inner) = r
                                    .child_by_field_name("function")
                                    .and_then(|f| f.child_by_field_name("value"))
                                && let Some(key) = path_key(inner, self.text, 0)
                            {
                                out.push((key, Check::Allowed));
                            }
                        }
                        "starts_with" => {
                            if let Some(r) = receiver
                                && let Some(key) = path_key(r, self.text, 0)
                            {
                                out.push((key, Check::Prefix));
                            }
                        }
                        _ => {}
                    }
                } else {
                    let name = last_segment(self.t(function)).to_ascii_lowercase();
                    let validator = [
                        "valid",
                        "safe",
                        "allowed",
                        "sanitiz",
                        "permit",
                        "allowlist",
                        "whitelist",
                        "is_trusted",
                    ]
                    .iter()
                    .any(|v| name.contains(v));
                    if validator {
                        for a in &args {
                            if let Some(key) = path_key(*a, self.text, 0) {
                                out.push((key, Check::Allowed));
                            }
                        }
                    }
                }
            }
            "macro_invocation" if when => {
                let name = cond.child_by_field_name("macro").map_or("", |m| self.t(m));
                if last_segment(name) == "matches"
                    && let Some(tt) = token_tree_of(cond)
                    && let Some(first) = split_args(tt).first()
                    && let Some(key) = tokens_key(first, self.text)
                {
                    out.push((key, Check::Allowed));
                }
            }
            _ => {}
        }
    }

    fn apply_checks(&self, cond: Node<'_>, when: bool, env: &mut Env) {
        let mut checks = Vec::new();
        self.checks(cond, when, &mut checks, 0);
        for (key, check) in checks {
            let clean = |t: &Taint| match check {
                Check::Allowed => true,
                Check::Bounded => t.numeric,
                Check::Prefix => t.canonical,
            };
            env.retain(|k, t| !((k == &key || k.starts_with(&format!("{key}."))) && clean(t)));
        }
    }

    /// The taint an expression's value carries under `env`.
    fn taint_of(&self, node: Node<'_>, env: &Env, depth: usize) -> Option<Taint> {
        if depth > MAX_DEPTH {
            return None;
        }
        match node.kind() {
            "identifier" | "self" => {
                let name = self.t(node);
                let mut taint = env.get(name).cloned();
                let prefix = format!("{name}.");
                for (k, v) in env {
                    if k.starts_with(&prefix) {
                        taint = union(taint, Some(v.clone()));
                    }
                }
                taint
            }
            "field_expression" => {
                if let Some(key) = path_key(node, self.text, 0) {
                    let mut prefix = key.as_str();
                    loop {
                        if let Some(t) = env.get(prefix) {
                            return Some(t.clone());
                        }
                        match prefix.rfind('.') {
                            Some(i) => prefix = &prefix[..i],
                            None => break,
                        }
                    }
                    let inner = format!("{key}.");
                    return env
                        .iter()
                        .filter(|(k, _)| k.starts_with(&inner))
                        .map(|(_, v)| v.clone())
                        .next();
                }
                node.child_by_field_name("value")
                    .and_then(|v| self.taint_of(v, env, depth + 1))
            }
            "reference_expression"
            | "parenthesized_expression"
            | "unary_expression"
            | "try_expression"
            | "await_expression"
            | "index_expression" => node
                .named_child(if node.kind() == "reference_expression" {
                    node.named_child_count().saturating_sub(1) as u32
                } else {
                    0
                })
                .and_then(|c| self.taint_of(c, env, depth + 1)),
            "type_cast_expression" => node
                .child_by_field_name("value")
                .and_then(|v| self.taint_of(v, env, depth + 1))
                .map(|mut t| {
                    t.numeric = true;
                    t
                }),
            "binary_expression" => {
                let op = node
                    .child_by_field_name("operator")
                    .map_or("", |o| self.t(o));
                let left = node.child_by_field_name("left");
                let right = node.child_by_field_name("right");
                match op {
                    "+" | "-" | "*" | "/" | "%" | "<<" | "|" | "&" | "^" => {
                        let l = left.and_then(|l| self.taint_of(l, env, depth + 1));
                        let r = right.and_then(|r| self.taint_of(r, env, depth + 1));
                        let t = union(l, r);
                        if t.is_none() && op == "+" {
                            let has_text = [left, right]
                                .iter()
                                .flatten()
                                .any(|n| self.t(*n).contains('"'));
                            let dynamic = [left, right]
                                .iter()
                                .flatten()
                                .any(|n| self.is_dynamic_operand(*n));
                            if has_text && dynamic {
                                return Some(self.formatted_taint(node));
                            }
                        }
                        t
                    }
                    _ => None,
                }
            }
            "call_expression" => self.call_taint(node, env, depth),
            "macro_invocation" => {
                let name = node.child_by_field_name("macro").map_or("", |m| self.t(m));
                let tt = token_tree_of(node)?;
                let args = split_args(tt);
                match last_segment(name) {
                    "format" | "format_args" => {
                        self.format_taint(&args, env, depth + 1, self.debug_barrier)
                    }
                    "matches" | "cfg" | "env" | "include_str" | "include_bytes" | "line"
                    | "file" | "stringify" | "column" | "module_path" | "option_env" => None,
                    "concat" => None,
                    _ => {
                        let mut t = None;
                        for a in &args {
                            t = union(t, self.tokens_taint(a, env));
                        }
                        t
                    }
                }
            }
            "token_tree" => {
                let args = split_args(node);
                self.format_taint(&args, env, depth + 1, self.debug_barrier)
            }
            "struct_expression" | "tuple_expression" | "array_expression" => {
                let mut t = None;
                let mut cursor = node.walk();
                for child in node.named_children(&mut cursor) {
                    t = union(t, self.taint_of(child, env, depth + 1));
                }
                t
            }
            "field_initializer_list" => {
                let mut t = None;
                let mut cursor = node.walk();
                for child in node.named_children(&mut cursor) {
                    t = union(t, self.taint_of(child, env, depth + 1));
                }
                t
            }
            "field_initializer" => node
                .child_by_field_name("value")
                .and_then(|v| self.taint_of(v, env, depth + 1)),
            "shorthand_field_initializer" => env.get(self.t(node)).cloned(),
            // The block's value: its tail expression, also an `if`/`match` written without a
            // `;` (which the grammar wraps in an expression statement).
            "block" => tail_expression(node).and_then(|last| self.taint_of(last, env, depth + 1)),
            "if_expression" => {
                let c = node
                    .child_by_field_name("consequence")
                    .and_then(|c| self.taint_of(c, env, depth + 1));
                let a = node
                    .child_by_field_name("alternative")
                    .and_then(|a| a.named_child(0))
                    .and_then(|a| self.taint_of(a, env, depth + 1));
                union(c, a)
            }
            "match_expression" => {
                let scrutinee = node
                    .child_by_field_name("value")
                    .and_then(|v| self.taint_of(v, env, depth + 1));
                let body = node.child_by_field_name("body")?;
                let mut t = None;
                let mut cursor = body.walk();
                for arm in body.named_children(&mut cursor) {
                    let Some(value) = arm.child_by_field_name("value") else {
                        continue;
                    };
                    let mut arm_env;
                    let env_ref = if let (Some(s), Some(pattern)) =
                        (&scrutinee, arm.child_by_field_name("pattern"))
                        && !pattern_is_literal(pattern)
                    {
                        arm_env = env.clone();
                        self.bind(pattern, Some(s.clone()), &mut arm_env);
                        &arm_env
                    } else {
                        env
                    };
                    t = union(t, self.taint_of(value, env_ref, depth + 1));
                }
                t
            }
            _ => None,
        }
    }

    fn is_dynamic_operand(&self, node: Node<'_>) -> bool {
        match node.kind() {
            "identifier" => {
                let name = self.t(node);
                !is_constant_name(name) && !self.int_names.contains(name)
            }
            "field_expression" | "call_expression" | "index_expression" => true,
            "reference_expression" | "parenthesized_expression" => node
                .named_child(node.named_child_count().saturating_sub(1) as u32)
                .is_some_and(|c| self.is_dynamic_operand(c)),
            "binary_expression" => {
                node.child_by_field_name("left")
                    .is_some_and(|l| self.is_dynamic_operand(l))
                    || node
                        .child_by_field_name("right")
                        .is_some_and(|r| self.is_dynamic_operand(r))
            }
            _ => false,
        }
    }

    fn formatted_taint(&self, node: Node<'_>) -> Taint {
        let mut t = Taint::source(
            node.byte_range(),
            "text built by formatting non-constant values".into(),
        );
        t.formatted = true;
        t
    }

    fn call_taint(&self, node: Node<'_>, env: &Env, depth: usize) -> Option<Taint> {
        let function = node.child_by_field_name("function")?;
        let args: Vec<Node<'_>> = node
            .child_by_field_name("arguments")
            .map(|a| {
                let mut c = a.walk();
                a.named_children(&mut c).collect()
            })
            .unwrap_or_default();
        // An `Err` a helper returns travels the error path, not into the value its callers use.
        if self.summarising && self.t(function) == "Err" {
            return None;
        }
        if let Some(t) = self.helper_call_taint(node, function, &args, env, depth) {
            return t;
        }
        let args_taint = |this: &Self| {
            let mut t = None;
            for a in &args {
                t = union(t, this.taint_of(*a, env, depth + 1));
            }
            t
        };
        let (method_node, turbofish) = match function.kind() {
            "field_expression" => (Some(function), None),
            "generic_function" => {
                let inner = function.child_by_field_name("function")?;
                let types = function
                    .child_by_field_name("type_arguments")
                    .map(|t| self.t(t).trim_matches(['<', '>']).to_string());
                if inner.kind() == "field_expression" {
                    (Some(inner), types)
                } else {
                    return self.path_call_taint(
                        self.t(inner),
                        node,
                        &args,
                        env,
                        depth,
                        args_taint,
                    );
                }
            }
            _ => {
                return self.path_call_taint(self.t(function), node, &args, env, depth, args_taint);
            }
        };
        let method_node = method_node?;
        let method = method_node
            .child_by_field_name("field")
            .map_or("", |f| self.t(f));
        let receiver = method_node.child_by_field_name("value")?;
        if method == "accept" && args.is_empty() || method == "incoming" && args.is_empty() {
            return Some(Taint::source(
                node.byte_range(),
                format!("network connection from `{}`", self.t(node)),
            ));
        }
        if is_sanitizer(method) {
            return None;
        }
        let receiver_taint = self.taint_of(receiver, env, depth + 1);
        match method {
            "len" | "is_empty" | "is_some" | "is_none" | "is_ok" | "is_err" | "contains"
            | "starts_with" | "ends_with" | "eq" | "ne" | "cmp" | "partial_cmp" | "hash"
            | "count" | "capacity" | "exists" | "is_file" | "is_dir" | "is_absolute"
            | "is_relative" | "find" | "rfind" | "position" | "any" | "all" | "is_match"
            | "file_name" | "file_stem" | "extension" | "min" | "clamp" | "len_utf8"
            | "contains_key" | "is_ascii" => None,
            "parse" => {
                let numeric = turbofish
                    .as_deref()
                    .is_none_or(|t| is_int_type(t) || t == "_");
                receiver_taint.map(|mut t| {
                    if numeric {
                        t.numeric = true;
                    }
                    t
                })
            }
            "canonicalize" => receiver_taint.map(|mut t| {
                t.canonical = true;
                t
            }),
            "join" | "concat" | "chain" | "with_file_name" | "with_extension" | "replace"
            | "replacen" | "unwrap_or" | "or" | "add" | "push_str" | "get_or_insert" => {
                union(receiver_taint, args_taint(self))
            }
            _ => receiver_taint,
        }
    }

    /// The taint of a call to a function of this file, from its summary: `None` when the call
    /// does not resolve to exactly one such function (or names a sanitiser), `Some(None)` when
    /// it does but its value carries nothing (or the helper cannot be followed further).
    fn helper_call_taint(
        &self,
        node: Node<'_>,
        function: Node<'_>,
        args: &[Node<'_>],
        env: &Env,
        depth: usize,
    ) -> Option<Option<Taint>> {
        let (callee, receiver_first) = self.helpers.resolve(function)?;
        let name = callee
            .node
            .child_by_field_name("name")
            .map_or("", |n| node_text(n, self.text));
        if is_sanitizer(name) {
            return None;
        }
        if self.helper_levels == 0 {
            return Some(None);
        }
        let Some(summary) = self.helpers.summary(callee, self.helper_levels) else {
            return Some(None);
        };
        let mut inputs: Vec<Node<'_>> = Vec::new();
        if receiver_first {
            let method = if function.kind() == "generic_function" {
                function.child_by_field_name("function")?
            } else {
                function
            };
            inputs.push(method.child_by_field_name("value")?);
        }
        inputs.extend_from_slice(args);
        let mut out = summary
            .source
            .map(|t| returned_by(t, node.byte_range(), name));
        for (flow, input) in summary.params.iter().zip(&inputs) {
            let Some(flow) = flow else { continue };
            if let Some(mut t) = self.taint_of(*input, env, depth + 1) {
                t.numeric |= flow.numeric;
                t.canonical |= flow.canonical;
                out = union(out, Some(returned_by(t, node.byte_range(), name)));
            }
        }
        Some(out)
    }

    fn path_call_taint(
        &self,
        path: &str,
        node: Node<'_>,
        args: &[Node<'_>],
        env: &Env,
        _depth: usize,
        args_taint: impl Fn(&Self) -> Option<Taint>,
    ) -> Option<Taint> {
        let path = path.trim_start_matches("::").trim_start_matches("std::");
        let last = last_segment(path);
        let head = path.rsplit("::").nth(1).unwrap_or("");
        let source = match (head, last) {
            ("env", "var" | "var_os") => Some(format!(
                "environment variable {}",
                args.first().map_or("", |a| self.t(*a))
            )),
            ("env", "args" | "args_os") => Some("command-line arguments".into()),
            ("io" | "", "stdin") => Some("standard input".into()),
            ("TcpStream", "connect") | ("UdpSocket", "bind") => {
                Some(format!("network socket `{}`", self.t(node)))
            }
            _ => None,
        };
        if let Some(what) = source {
            return Some(if head == "TcpStream" || head == "UdpSocket" {
                Taint::source(node.byte_range(), what)
            } else {
                Taint::local_source(node.byte_range(), what)
            });
        }
        if is_sanitizer(last) {
            return None;
        }
        if (is_int_type(head) && matches!(last, "from_str" | "from_str_radix" | "try_from"))
            || matches!(last, "from_le_bytes" | "from_be_bytes" | "from_ne_bytes")
        {
            return args_taint(self).map(|mut t| {
                t.numeric = true;
                t
            });
        }
        let _ = env;
        match last {
            "from"
            | "new"
            | "from_utf8"
            | "from_utf8_lossy"
            | "from_utf8_unchecked"
            | "parse"
            | "join"
            | "Some"
            | "Ok"
            | "Err"
            | "Owned"
            | "Borrowed"
            | "from_str"
            | "to_string"
            | "from_slice"
            | "into" => args_taint(self),
            _ => None,
        }
    }

    /// The taint of a `format!`-like argument list: the format string's placeholders, inline
    /// names (`{name}`) and positional arguments. With `debug_barrier`, values printed with
    /// `{:?}` do not count (Debug formatting escapes newlines and quotes).
    fn format_taint(
        &self,
        args: &[Vec<Node<'_>>],
        env: &Env,
        _depth: usize,
        debug_barrier: bool,
    ) -> Option<Taint> {
        // Skip `target: "x",` and similar leading arguments up to the format string.
        let fmt_index = args.iter().position(|a| {
            a.len() == 1 && matches!(a[0].kind(), "string_literal" | "raw_string_literal")
        });
        let (placeholders, rest) = match fmt_index {
            Some(i) => (
                parse_placeholders(literal_content(args[i][0], self.text).unwrap_or("")),
                &args[i + 1..],
            ),
            None => (Vec::new(), args),
        };
        let mut taint = None;
        let mut dynamic = false;
        let mut positional = 0usize;
        let mut counted: HashSet<usize> = HashSet::new();
        for p in &placeholders {
            match &p.name {
                Some(name) => {
                    // Named arguments (`name = expr`) come from the list; otherwise a variable.
                    let named_arg = rest.iter().position(|a| {
                        a.len() >= 2
                            && self.t(a[0]) == name
                            && a.get(1).is_some_and(|n| self.t(*n) == "=")
                    });
                    if let Some(i) = named_arg {
                        counted.insert(i);
                        if !(debug_barrier && p.debug) {
                            taint = union(taint, self.tokens_taint(&rest[i][2..], env));
                            dynamic |= self.tokens_dynamic(&rest[i][2..]);
                        }
                    } else if !(debug_barrier && p.debug) {
                        taint = union(taint, env.get(name.as_str()).cloned());
                        dynamic |= !is_constant_name(name) && !self.int_names.contains(name);
                    }
                }
                None => {
                    let i = p.index.unwrap_or_else(|| {
                        positional += 1;
                        positional - 1
                    });
                    if let Some(arg) = rest.get(i) {
                        counted.insert(i);
                        if !(debug_barrier && p.debug) {
                            taint = union(taint, self.tokens_taint(arg, env));
                            dynamic |= self.tokens_dynamic(arg);
                        }
                    }
                }
            }
        }
        if fmt_index.is_none() {
            for a in rest {
                taint = union(taint, self.tokens_taint(a, env));
            }
        }
        if let Some(t) = taint {
            return Some(t);
        }
        if dynamic && let (Some(first), Some(last)) = (args.first(), args.last()) {
            let start = first.first().map_or(0, |n| n.start_byte());
            let end = last.last().map_or(start, |n| n.end_byte());
            let mut t = Taint::source(
                start..end,
                "text built by formatting non-constant values".into(),
            );
            t.formatted = true;
            return Some(t);
        }
        None
    }

    /// The variables a run of macro tokens reads, as keys (`a`, `a.b`), skipping paths,
    /// function names and values viewed through non-propagating methods (`x.len()`).
    fn token_keys(&self, tokens: &[Node<'_>]) -> Vec<String> {
        let mut keys = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let n = tokens[i];
            let prev = i.checked_sub(1).map(|p| self.t(tokens[p]));
            // `escape(x)` / `html_escape::encode_text(&x)`: a sanitiser call hides its input.
            if n.kind() == "identifier"
                && is_sanitizer(self.t(n))
                && tokens.get(i + 1).is_some_and(|t| t.kind() == "token_tree")
            {
                i += 2;
                continue;
            }
            if n.kind() == "identifier" && prev != Some("::") && prev != Some(".") {
                let mut key = self.t(n).to_string();
                let mut j = i + 1;
                let mut viewed_away = false;
                while j + 1 < tokens.len()
                    && self.t(tokens[j]) == "."
                    && tokens[j + 1].kind() == "identifier"
                {
                    let field = self.t(tokens[j + 1]);
                    let is_call = tokens.get(j + 2).is_some_and(|t| t.kind() == "token_tree");
                    if is_call {
                        viewed_away = matches!(
                            field,
                            "len"
                                | "is_empty"
                                | "is_some"
                                | "is_none"
                                | "count"
                                | "min"
                                | "clamp"
                                | "contains"
                                | "starts_with"
                        ) || is_sanitizer(field);
                        j += 3;
                        break;
                    }
                    key.push('.');
                    key.push_str(field);
                    j += 2;
                }
                let next = tokens.get(i + 1).map(|t| self.t(*t));
                let is_path_or_call = matches!(next, Some("::") | Some("!"))
                    || (tokens.get(i + 1).is_some_and(|t| t.kind() == "token_tree") && j == i + 1);
                if !is_path_or_call && !viewed_away {
                    keys.push(key);
                }
                i = j.max(i + 1);
                continue;
            }
            if n.kind() == "token_tree" {
                // `(a - b).min(MAX)`: the bounded or measured group does not carry its input.
                let bounded = tokens.get(i + 1).is_some_and(|t| self.t(*t) == ".")
                    && tokens.get(i + 2).is_some_and(|m| {
                        matches!(
                            self.t(*m),
                            "min" | "clamp" | "len" | "is_empty" | "count" | "contains"
                        )
                    })
                    && tokens.get(i + 3).is_some_and(|t| t.kind() == "token_tree");
                if bounded {
                    i += 4;
                    continue;
                }
                let mut cursor = n.walk();
                let inner: Vec<Node<'_>> = n.children(&mut cursor).collect();
                keys.extend(self.token_keys(&inner));
            }
            i += 1;
        }
        keys
    }

    fn tokens_taint(&self, tokens: &[Node<'_>], env: &Env) -> Option<Taint> {
        let joined: String = tokens.iter().map(|t| self.t(*t)).collect();
        for (needle, what) in [
            ("env::var(", "environment variable"),
            ("env::args(", "command-line arguments"),
            ("stdin()", "standard input"),
        ] {
            if joined.contains(needle)
                && let (Some(first), Some(last)) = (tokens.first(), tokens.last())
            {
                return Some(Taint::local_source(
                    first.start_byte()..last.end_byte(),
                    what.to_string(),
                ));
            }
        }
        let mut taint = None;
        for key in self.token_keys(tokens) {
            let mut prefix = key.as_str();
            loop {
                if let Some(t) = env.get(prefix) {
                    taint = union(taint, Some(t.clone()));
                    break;
                }
                match prefix.rfind('.') {
                    Some(i) => prefix = &prefix[..i],
                    None => break,
                }
            }
            let inner = format!("{key}.");
            for (k, v) in env {
                if k.starts_with(&inner) {
                    taint = union(taint, Some(v.clone()));
                }
            }
        }
        taint
    }

    fn tokens_dynamic(&self, tokens: &[Node<'_>]) -> bool {
        self.token_keys(tokens).iter().any(|k| {
            let root = k.split('.').next().unwrap_or(k);
            !(is_constant_name(root) || (k == root && self.int_names.contains(root)))
        })
    }
}

/// Whether a `return` leaves the function itself rather than a closure or `async` block in it.
fn returns_from_function(node: Node<'_>) -> bool {
    let mut current = node.parent();
    while let Some(n) = current {
        match n.kind() {
            "function_item" => return true,
            "closure_expression" | "async_block" => return false,
            _ => current = n.parent(),
        }
    }
    false
}

/// Whether a function or method name says it neutralises its input: one of its words (split
/// at `_`, `::` and camelCase humps) is a sanitising verb (`escape_html`, `shellQuote`,
/// `ammonia::clean`, `validate_name`). Whole words only, so `unescape`, `unquote`,
/// `encoded_len` and `cleaned` are not barriers.
fn is_sanitizer(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "escape",
        "escaped",
        "encode",
        "sanitize",
        "sanitise",
        "sanitized",
        "sanitised",
        "sanitizer",
        "quote",
        "quoted",
        "clean",
        "purify",
        "validate",
        "validated",
        "striptags",
    ];
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            words.push(std::mem::take(&mut current));
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    words.push(current);
    words.retain(|w| !w.is_empty());
    let joined_pairs = words.windows(2).map(|p| format!("{}{}", p[0], p[1]));
    words
        .iter()
        .cloned()
        .chain(joined_pairs)
        .any(|w| WORDS.contains(&w.as_str()))
}

fn is_literal(node: Node<'_>) -> bool {
    matches!(
        node.kind(),
        "string_literal"
            | "raw_string_literal"
            | "integer_literal"
            | "char_literal"
            | "boolean_literal"
            | "float_literal"
    ) || (node.kind() == "scoped_identifier")
}

fn pattern_is_literal(pattern: Node<'_>) -> bool {
    fn walk(node: Node<'_>, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match node.kind() {
            "string_literal" | "raw_string_literal" | "integer_literal" | "char_literal"
            | "boolean_literal" | "negative_literal" | "range_pattern" => true,
            "match_pattern" | "or_pattern" => {
                let mut cursor = node.walk();
                let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                !children.is_empty()
                    && children
                        .iter()
                        .filter(|c| !matches!(c.kind(), "line_comment" | "block_comment"))
                        .all(|c| walk(*c, depth + 1) || c.kind() == "condition")
            }
            _ => false,
        }
    }
    walk(pattern, 0)
}

fn token_tree_of(node: Node<'_>) -> Option<Node<'_>> {
    let mut cursor = node.walk();
    node.children(&mut cursor)
        .find(|c| c.kind() == "token_tree")
}

/// Splits a macro's token tree into its top-level comma-separated arguments.
fn split_args(tt: Node<'_>) -> Vec<Vec<Node<'_>>> {
    let mut cursor = tt.walk();
    let children: Vec<Node<'_>> = tt.children(&mut cursor).collect();
    let inner = if children.len() >= 2 {
        &children[1..children.len() - 1]
    } else {
        &children[..]
    };
    let mut args = vec![Vec::new()];
    for child in inner {
        if child.kind() == "," || child.kind() == ";" {
            args.push(Vec::new());
        } else if let Some(last) = args.last_mut() {
            last.push(*child);
        }
    }
    args.retain(|a| !a.is_empty());
    args
}

fn tokens_key(tokens: &[Node<'_>], text: &str) -> Option<String> {
    let mut key = String::new();
    for t in tokens {
        let s = node_text(*t, text);
        match t.kind() {
            "identifier" | "self" => key.push_str(s),
            _ if s == "." => key.push('.'),
            _ if s == "&" || s == "*" || s == "mut" => {}
            _ => break,
        }
    }
    let key = key.trim_end_matches('.').to_string();
    (!key.is_empty()).then_some(key)
}

struct Placeholder {
    name: Option<String>,
    index: Option<usize>,
    debug: bool,
}

fn parse_placeholders(fmt: &str) -> Vec<Placeholder> {
    let mut out = Vec::new();
    let mut chars = fmt.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => {
                if chars.peek().map(|(_, c)| *c) == Some('{') {
                    chars.next();
                    continue;
                }
                let rest = &fmt[i + 1..];
                let Some(end) = rest.find('}') else { break };
                let spec = &rest[..end];
                let (arg, format) = spec.split_once(':').unwrap_or((spec, ""));
                let arg = arg.trim();
                let debug = format.contains('?');
                let placeholder = if arg.is_empty() {
                    Placeholder {
                        name: None,
                        index: None,
                        debug,
                    }
                } else if let Ok(n) = arg.parse::<usize>() {
                    Placeholder {
                        name: None,
                        index: Some(n),
                        debug,
                    }
                } else {
                    Placeholder {
                        name: Some(arg.to_string()),
                        index: None,
                        debug,
                    }
                };
                out.push(placeholder);
                for _ in 0..end + 1 {
                    chars.next();
                }
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

fn is_log_sink(node: Node<'_>, text: &str) -> bool {
    node.kind() == "token_tree"
        && node.parent().is_some_and(|m| {
            m.kind() == "macro_invocation"
                && m.child_by_field_name("macro").is_some_and(|n| {
                    matches!(
                        last_segment(node_text(n, text)),
                        "info" | "warn" | "error" | "debug" | "trace" | "log" | "event"
                    )
                })
        })
}

fn last_named_child(node: Node<'_>) -> Option<Node<'_>> {
    node.named_child(u32::try_from(node.named_child_count().checked_sub(1)?).ok()?)
}

/// Whether formatted text looks like a SQL statement (keywords, not just any string).
fn reads_like_sql(text: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"(?i)\b(select\s.+\sfrom|insert\s+into|update\s+\S+\s+set|delete\s+from|where\s|order\s+by|drop\s+table|create\s+table|alter\s+table|values\s*\()",
        )
        .expect("valid regex")
    })
    .is_match(text)
}

/// Whether a function's text mentions anything the analysis treats as a source.
fn mentions_source(text: &str, local: bool) -> bool {
    const REMOTE: &[&str] = &["TcpStream", "UdpSocket", "accept()", "incoming()"];
    const LOCAL: &[&str] = &["env::var", "env::args", "stdin"];
    REMOTE.iter().any(|m| text.contains(m)) || (local && LOCAL.iter().any(|m| text.contains(m)))
}

#[cfg(test)]
mod tests {
    use super::is_sanitizer;

    #[test]
    fn sanitisers_are_recognised_by_whole_words() {
        for name in [
            "escape_html",
            "html_escape::encode_text",
            "shellQuote",
            "ammonia::clean",
            "validate_name",
            "strip_tags",
            "sanitize_path",
            "percent_encode",
        ] {
            assert!(is_sanitizer(name), "{name}");
        }
        for name in [
            "unescape",
            "unquote",
            "cleaned",
            "encoded_len",
            "html_unescape",
            "quotes_count",
            "read_to_string",
        ] {
            assert!(!is_sanitizer(name), "{name}");
        }
    }
}
