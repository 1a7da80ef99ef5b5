//! Calls to functions defined in the same file: the file's function index ([`LocalFn`] by
//! name), how a call site resolves to one of them, the memoised summaries of what a helper
//! returns ([`Helpers`]), and the per-name digests the scan cache checks cached results
//! against ([`FunctionDigests`]).

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;

use tree_sitter::Node;

use super::across::CrateView;
use super::sources::mentions_source;
use super::syntax::{bound_names, is_int_type, last_segment, tail_expression};
use super::{Env, Flow, MAX_DEPTH, MAX_STEPS, Taint, union};
use crate::security::ancestry::Ancestry;
use crate::security::engine::node_text;

/// How many levels of helper calls are followed (a helper of a helper of a helper).
pub(super) const MAX_HELPER_LEVELS: usize = 3;

/// Parameters past this many are not tracked through a helper.
const MAX_HELPER_PARAMS: usize = 16;

/// A function defined in the analysed file, as call sites resolve it.
pub(crate) struct LocalFn<'t> {
    pub(super) node: Node<'t>,
    /// The type of the `impl` block it is defined in, or `None` for a free function.
    pub(super) owner: Option<String>,
    /// The innermost `mod` it is defined in.
    pub(super) module: Option<String>,
    pub(super) takes_self: bool,
}

/// Every function a file defines, by name (see [`collect_functions`]). Built at most once per
/// scan and shared by the data flow and the scan cache's helper digests.
pub(crate) type FunctionIndex<'t> = HashMap<String, Vec<LocalFn<'t>>>;

/// A lazily built [`FunctionIndex`].
pub(crate) struct LazyFunctions<'t> {
    functions: OnceCell<FunctionIndex<'t>>,
    /// What the scan cache already knows of the file's functions ([`defined_functions`]):
    /// then a name's functions are found in the tree only when the data flow asks for it,
    /// instead of indexing every function of the file.
    known: Option<Known<'t>>,
    /// Call-like names of the file and where they are: built once per scan of a file and
    /// shared by every item's analysis (built per item, a file of many small functions cost
    /// a whole-text pass per item).
    calls: OnceCell<HashMap<String, Vec<usize>>>,
    /// The summaries of the other files of the crate, when the scan has them.
    krate: Option<CrateView>,
}

impl<'t> LazyFunctions<'t> {
    /// Nothing computed yet.
    pub(crate) fn new() -> Self {
        Self::with_crate(None)
    }

    /// Nothing computed yet; calls that do not resolve in the file resolve in `krate`.
    pub(crate) fn with_crate(krate: Option<CrateView>) -> Self {
        Self {
            functions: OnceCell::new(),
            known: None,
            calls: OnceCell::new(),
            krate,
        }
    }

    /// Nothing computed yet; the file's functions are those of `items` (each top-level item's
    /// start and the functions it defines, in the file's order), whose nodes are among `top`.
    pub(crate) fn with_known(
        krate: Option<CrateView>,
        top: &'t [Node<'t>],
        items: Vec<(usize, &'t ItemFunctions)>,
    ) -> Self {
        Self {
            known: Some(Known {
                top,
                items,
                by_name: OnceCell::new(),
            }),
            ..Self::with_crate(krate)
        }
    }

    /// Whether the file defines a function named `name`.
    fn defines(&self, root: Node<'t>, text: &str, name: &str) -> bool {
        match &self.known {
            Some(known) => known.by_name().contains_key(name),
            None => self
                .functions
                .get_or_init(|| function_index(root, text))
                .contains_key(name),
        }
    }

    /// The file's functions named `name`, in the file's order.
    fn named(&self, root: Node<'t>, text: &str, name: &str) -> &[LocalFn<'t>] {
        match &self.known {
            Some(known) => known.named(name),
            None => self
                .functions
                .get_or_init(|| function_index(root, text))
                .get(name)
                .map_or(&[], Vec::as_slice),
        }
    }
}

/// The file's functions as the scan cache knows them, each name's nodes found on first use.
struct Known<'t> {
    top: &'t [Node<'t>],
    items: Vec<(usize, &'t ItemFunctions)>,
    /// By name: the functions' starts and what they are, and their nodes once looked up.
    by_name: OnceCell<HashMap<&'t str, KnownName<'t>>>,
}

type KnownName<'t> = (Vec<(usize, &'t DefinedFn)>, OnceCell<Vec<LocalFn<'t>>>);

impl<'t> Known<'t> {
    fn by_name(&self) -> &HashMap<&'t str, KnownName<'t>> {
        self.by_name.get_or_init(|| {
            let mut map: HashMap<&'t str, KnownName<'t>> = HashMap::new();
            for &(start, item) in &self.items {
                // The whole-file index records where it stopped on deep nesting; so does this.
                if let Some(at) = item.cut {
                    crate::security::cut::record(start + at, crate::security::cut::Cut::FlowDepth);
                }
                for f in &item.fns {
                    map.entry(f.name.as_str())
                        .or_default()
                        .0
                        .push((start + f.offset, f));
                }
            }
            map
        })
    }

    fn named(&self, name: &str) -> &[LocalFn<'t>] {
        let Some((defs, nodes)) = self.by_name().get(name) else {
            return &[];
        };
        nodes.get_or_init(|| {
            defs.iter()
                .filter_map(|&(start, f)| {
                    Some(LocalFn {
                        node: function_at(self.top, start)?,
                        owner: f.owner.clone(),
                        module: f.module.clone(),
                        takes_self: f.takes_self,
                    })
                })
                .collect()
        })
    }
}

/// The `function_item` that starts at byte `start`, found from the top-level node that holds
/// it down through `impl` and `mod` bodies.
fn function_at<'t>(top: &[Node<'t>], start: usize) -> Option<Node<'t>> {
    let i = top
        .partition_point(|n| n.start_byte() <= start)
        .checked_sub(1)?;
    let mut node = top[i];
    loop {
        if node.kind() == "function_item" && node.start_byte() == start {
            return Some(node);
        }
        let body = match node.kind() {
            "impl_item" | "mod_item" => node.child_by_field_name("body")?,
            _ => return None,
        };
        let mut cursor = body.walk();
        node = body
            .named_children(&mut cursor)
            .find(|n| n.start_byte() <= start && start < n.end_byte())?;
    }
}

fn function_index<'t>(root: Node<'t>, text: &str) -> FunctionIndex<'t> {
    let mut out = HashMap::new();
    collect_functions(root, text, None, None, &mut out, 0, &mut None);
    out
}

/// What a helper's return value carries.
#[derive(Clone, Debug, Default)]
pub(super) struct Summary {
    /// A source reached the return value whatever the arguments were.
    pub(super) source: Option<Taint>,
    /// Per parameter (`self` first when the helper takes it): whether its taint reaches the
    /// return value, and with which barriers applied (`numeric`, `canonical`).
    pub(super) params: Vec<Option<ParamFlow>>,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct ParamFlow {
    pub(super) numeric: bool,
    pub(super) canonical: bool,
}

/// (function node id, levels left, whether local sources count).
pub(super) type CallersKey = (usize, usize, bool);

/// The functions of one file and their summaries, computed only when a sink needs one:
/// summaries are memoised per function and per remaining depth, a call back into a summary
/// being computed yields no taint, and at most `MAX_HELPER_LEVELS` levels are followed.
pub(crate) struct Helpers<'a, 't> {
    text: &'a str,
    ancestry: Ancestry<'a, 't>,
    functions: &'a LazyFunctions<'t>,
    summaries: RefCell<HashMap<(usize, usize), Option<Summary>>>,
    may_source: RefCell<HashMap<(usize, usize, bool), bool>>,
    in_progress: RefCell<HashSet<usize>>,
    pub(super) looked_up: RefCell<BTreeSet<String>>,
    /// What callers pass to each function's parameters, by (function, levels, local sources);
    /// see [`super::callers`].
    pub(super) callers_memo: RefCell<HashMap<CallersKey, Vec<Option<Taint>>>>,
    /// Functions whose callers are being walked, so that a call cycle ends.
    pub(super) callers_in_progress: RefCell<HashSet<usize>>,
}

impl<'a, 't> Helpers<'a, 't> {
    pub(super) fn new(
        text: &'a str,
        ancestry: Ancestry<'a, 't>,
        functions: &'a LazyFunctions<'t>,
    ) -> Self {
        Helpers {
            text,
            ancestry,
            functions,
            summaries: RefCell::new(HashMap::new()),
            may_source: RefCell::new(HashMap::new()),
            in_progress: RefCell::new(HashSet::new()),
            looked_up: RefCell::new(BTreeSet::new()),
            callers_memo: RefCell::new(HashMap::new()),
            callers_in_progress: RefCell::new(HashSet::new()),
        }
    }

    pub(super) fn text(&self) -> &'a str {
        self.text
    }

    pub(super) fn root(&self) -> Node<'t> {
        self.ancestry.root()
    }

    /// Finds nodes' ancestors from the file's top-level items (never `Node::parent`).
    pub(super) fn ancestry(&self) -> &Ancestry<'a, 't> {
        &self.ancestry
    }

    /// Where the file calls each name (see [`super::callers::call_index`]).
    pub(super) fn calls(&self) -> &HashMap<String, Vec<usize>> {
        self.functions.calls.get_or_init(|| {
            let (root, text) = (self.root(), self.text);
            super::callers::call_index(self.text, |name| self.functions.defines(root, text, name))
                .into_iter()
                .map(|(name, at)| (name.to_string(), at))
                .collect()
        })
    }

    /// The summaries of the crate's other files, if the scan has them.
    pub(super) fn crate_view(&self) -> Option<&CrateView> {
        self.functions.krate.as_ref()
    }

    /// The file's functions named `name`.
    pub(super) fn functions_named(&self, name: &str) -> &[LocalFn<'t>] {
        self.named(name)
    }

    /// The file's functions named `name` (recording the look-up).
    fn named(&self, name: &str) -> &[LocalFn<'t>] {
        self.looked_up.borrow_mut().insert(name.to_string());
        self.functions.named(self.root(), self.text, name)
    }

    /// Whether `func` calls a function of this file that may return a source.
    pub(super) fn calls_source_helper(&self, func: Node<'_>, local: bool, levels: usize) -> bool {
        if levels == 0 {
            return false;
        }
        let body = func.child_by_field_name("body").unwrap_or(func);
        let names = called_names(node_text(body, self.text));
        names.iter().any(|name| {
            self.named(name)
                .iter()
                .any(|f| self.may_return_source(f.node, local, levels))
        }) || self
            .crate_view()
            .is_some_and(|view| view.returns_source(names.iter().copied()))
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
    pub(super) fn resolve(&self, function: Node<'t>) -> Option<(&LocalFn<'t>, bool)> {
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
                let owner = enclosing_impl_type(function, text, &self.ancestry)?;
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
                    let owner = enclosing_impl_type(function, text, &self.ancestry)?;
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
    pub(super) fn summary(&self, func: &LocalFn<'t>, levels: usize) -> Option<Summary> {
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
        flow.collect_safe_names(func);
        flow.visit(body, &mut env, 0);
        let tail = tail_expression(body).and_then(|t| flow.taint_of(t, &env, 0));
        union(flow.returns.take(), tail)
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
    cut: &mut Option<usize>,
) {
    if depth > MAX_DEPTH {
        crate::security::cut::record(node.start_byte(), crate::security::cut::Cut::FlowDepth);
        cut.get_or_insert(node.start_byte());
        return;
    }
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        collect_item(child, text, owner, module, out, depth, cut);
    }
}

/// What [`collect_functions`] indexes of one child of the node it walks (at `depth`); `cut`
/// gets the first place where the depth bound stopped it.
fn collect_item<'t>(
    child: Node<'t>,
    text: &str,
    owner: Option<&str>,
    module: Option<&str>,
    out: &mut HashMap<String, Vec<LocalFn<'t>>>,
    depth: usize,
    cut: &mut Option<usize>,
) {
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
                return;
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
                collect_functions(body, text, Some(ty), module, out, depth + 1, cut);
            }
        }
        "mod_item" => {
            let name = child
                .child_by_field_name("name")
                .map(|n| node_text(n, text));
            if let Some(body) = child.child_by_field_name("body") {
                collect_functions(body, text, None, name, out, depth + 1, cut);
            }
        }
        _ => {}
    }
}

/// A function that one top-level item defines, as the scan cache checks it: everything a call
/// resolved against it depends on, hashed, and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct DefinedFn {
    pub(crate) name: String,
    /// A hash of its text, its `impl` type and its `mod`.
    content: u64,
    /// Its first byte, counted from the start of the item.
    offset: usize,
    owner: Option<String>,
    module: Option<String>,
    takes_self: bool,
}

/// The functions one top-level item defines ([`defined_functions`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct ItemFunctions {
    /// In the file's order.
    fns: Vec<DefinedFn>,
    /// Where the depth bound stopped the listing, counted from the start of the item.
    cut: Option<usize>,
}

/// The functions the top-level nodes `items` define, in the file's order, as
/// [`collect_functions`] indexes them from the root; offsets count from byte `base`. What a
/// top-level item defines depends on its own text only, so the scan cache keeps these lists
/// per item and rebuilds only the changed item's.
pub(crate) fn defined_functions(items: &[Node<'_>], text: &str, base: usize) -> ItemFunctions {
    use std::hash::{Hash as _, Hasher as _};
    let mut index = HashMap::new();
    let mut cut = None;
    for &item in items {
        collect_item(item, text, None, None, &mut index, 0, &mut cut);
    }
    let mut out: Vec<DefinedFn> = index
        .into_iter()
        .flat_map(|(name, fns)| {
            fns.into_iter().map(move |f| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                node_text(f.node, text).hash(&mut h);
                f.owner.hash(&mut h);
                f.module.hash(&mut h);
                DefinedFn {
                    name: name.clone(),
                    content: h.finish(),
                    offset: f.node.start_byte() - base,
                    owner: f.owner,
                    module: f.module,
                    takes_self: f.takes_self,
                }
            })
        })
        .collect();
    out.sort_by_key(|f| f.offset);
    ItemFunctions {
        fns: out,
        cut: cut.map(|at| at - base),
    }
}

/// The type of the `impl` block around `node`.
pub(super) fn enclosing_impl_type<'t>(
    node: Node<'t>,
    text: &str,
    ancestry: &Ancestry<'_, 't>,
) -> Option<String> {
    for n in ancestry.ancestors(node) {
        if n.kind() == "impl_item" {
            let ty = n.child_by_field_name("type")?;
            return Some(last_segment(node_text(ty, text)).to_string());
        }
        if matches!(n.kind(), "trait_item" | "mod_item") {
            return None;
        }
    }
    None
}

/// The names a piece of code calls (`name(`, `x.name(`, `T::name(`, `name::<T>(`).
pub(crate) fn called_names(code: &str) -> BTreeSet<&str> {
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
/// on (their text, `impl` type and `mod`), from the per-item lists of [`defined_functions`].
pub(crate) struct FunctionDigests<'a> {
    /// Each item's start and its functions, in the file's order.
    items: Vec<(usize, &'a ItemFunctions)>,
    /// By name: each function's content hash and first byte, in the file's order.
    by_name: OnceCell<HashMap<&'a str, Vec<(u64, usize)>>>,
}

impl<'a> FunctionDigests<'a> {
    /// `items`: each top-level item's start and the functions it defines, in the file's order.
    pub(crate) fn new(items: Vec<(usize, &'a ItemFunctions)>) -> Self {
        FunctionDigests {
            items,
            by_name: OnceCell::new(),
        }
    }

    /// The digest of the functions named `name` (absent ones too); with `at`, also of their
    /// offsets from that byte, for results whose traces point into them.
    pub(crate) fn digest(&self, name: &str, at: Option<usize>) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        let by_name = self.by_name.get_or_init(|| {
            let mut map: HashMap<&'a str, Vec<(u64, usize)>> = HashMap::new();
            for &(start, item) in &self.items {
                for f in &item.fns {
                    map.entry(f.name.as_str())
                        .or_default()
                        .push((f.content, start + f.offset));
                }
            }
            map
        });
        let fns = by_name.get(name).map_or(&[][..], Vec::as_slice);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        for (content, _) in fns {
            content.hash(&mut h);
        }
        if let Some(at) = at {
            for (_, start) in fns {
                start.wrapping_sub(at).hash(&mut h);
            }
        }
        h.finish()
    }
}

/// Keeps the first step (the source) and room for the step at the call site and one more.
pub(super) fn returned_by(mut t: Taint, call: Range<usize>, name: &str) -> Taint {
    if t.steps.len() > MAX_STEPS - 2 {
        let keep_tail = MAX_STEPS - 3;
        let tail = t.steps.split_off(t.steps.len() - keep_tail);
        t.steps.truncate(1);
        t.steps.extend(tail);
    }
    t.steps.push((call, format!("returned by `{name}`")));
    t
}
