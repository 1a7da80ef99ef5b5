//! Data flow on the syntax tree, within functions and across the file's calls: which values at
//! a rule's sink carry untrusted data, and the path they took from their source.
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
//!
//! The other direction too: a function's parameters take the taint of what the file's callers
//! pass them ([`callers`]), three levels of callers up, with the call site in the trace.
//!
//! Across files: when the scan has its crate's summaries ([`across`]), a call that resolves to
//! no function of the file resolves against the functions of the crate's other files, and a
//! function's parameters also take what those files' calls pass — one hop in each direction.
//!
//! Where each part lives: this module holds the taint, the environment and the entry point
//! ([`analyze`]); [`helpers`] the file's function index and helper summaries; [`callers`] the
//! taint callers pass in; [`across`] the crate-wide summaries; [`values`] the locals that only hold constants; [`sources`] what
//! counts as untrusted data; [`walk`] the statement walk that updates the environment;
//! [`expr`] the taint of an expression's value; [`barriers`] the checks and sanitisers that
//! clean a value; [`macros`] format strings and macro token trees; [`syntax`] the names and
//! paths read off the tree that all of them share.

mod across;
mod barriers;
mod callers;
mod expr;
mod helpers;
mod macros;
mod sources;
mod syntax;
mod values;
mod walk;

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use tree_sitter::Node;

use super::Related;
use super::ancestry::Ancestry;
use super::engine::node_text;
use super::rules::TaintSpec;
use helpers::{Helpers, MAX_HELPER_LEVELS};
use sources::mentions_source;

pub(crate) use across::{
    CratePlan, FileSummaries, FileTask, TextFacts, could_hold_source, file_module, plan,
    summarise_file, text_facts,
};
pub use across::{CrateSummaries, CrateView};
pub(crate) use callers::CALLERS_PREFIX;
pub(crate) use helpers::{
    FunctionDigests, ItemFunctions, LazyFunctions, called_names, defined_functions,
};

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
/// `ancestry` is that of the requests' tree.
pub(crate) fn analyze<'t>(
    text: &str,
    ancestry: Ancestry<'_, 't>,
    requests: &[SinkRequest<'t>],
    functions: &LazyFunctions<'t>,
) -> Analysis {
    let mut out: Vec<Option<Trace>> = (0..requests.len()).map(|_| None).collect();
    if requests.is_empty() {
        return Analysis {
            traces: out,
            helper_names: Vec::new(),
        };
    }
    // The top-level items are handed in: walking up from a sink with `Node::parent` (which
    // searches down from the root, through every top-level item before the node) made the
    // first scan of a file of many items quadratic.
    let helpers = Helpers::new(text, ancestry, functions);
    let mut by_function: HashMap<usize, (Node<'t>, Vec<usize>)> = HashMap::new();
    for (i, r) in requests.iter().enumerate() {
        if let Some(func) = ancestry.enclosing_function(r.node) {
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
        let local = indices.iter().any(|&i| requests[i].local_sources);
        // Parameters are also tainted by what the file's callers pass them.
        helpers.bind_parameter_taint(func, &mut env, local, MAX_HELPER_LEVELS);
        // Most functions hold a sink (a log macro, a `with_capacity`) but no source at all;
        // they need no walk. SQL sinks are the exception: formatted text counts there. A call
        // to a helper of this file that may return a source counts as a source.
        let formatted = indices.iter().any(|&i| requests[i].spec.formatted);
        if env.is_empty()
            && !formatted
            && !mentions_source(node_text(func, text), local)
            && !helpers.calls_source_helper(func, local, MAX_HELPER_LEVELS)
        {
            continue;
        }
        flow.collect_safe_names(func);
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
    /// Variables declared with an integer or boolean type, or that only ever hold constant
    /// values ([`values`]): formatting them into text is safe.
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

impl<'r, 't> Flow<'_, 'r, 't> {
    fn t(&self, node: Node<'_>) -> &str {
        node_text(node, self.text)
    }

    /// Fills `int_names` for `func`: integer-typed names and names that only hold constants.
    fn collect_safe_names(&mut self, func: Node<'t>) {
        self.collect_int_names(func, 0);
        self.int_names
            .extend(values::constant_locals(func, self.text));
    }
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
