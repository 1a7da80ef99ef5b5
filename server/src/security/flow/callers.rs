//! Taint that enters a function through its parameters: what the file's callers pass. For a
//! function with a sink, every call site in the file that resolves to it is found (one pass over
//! the file indexes call-like names), the calling function is walked with its own sources —
//! and, recursively, with what its own callers pass — and the taint of each argument at the
//! call becomes the taint of the matching parameter, with the call site as a step of the trace.
//!
//! Bounded (`MAX_HELPER_LEVELS` levels of callers), memoised per function and depth, and
//! recursion-safe (a function whose callers are being computed contributes nothing to itself).
//! Only text and numbers from real sources cross a call: text merely formatted in a caller does
//! not count as SQL inside the callee.

use std::collections::HashMap;

use tree_sitter::Node;

use super::helpers::Helpers;
use super::sources::mentions_source;
use super::syntax::bound_names;
use super::{Env, Flow, SinkRequest, Taint, union};
use crate::security::engine::node_text;
use crate::security::rules::TaintSpec;

/// A call site: the call and its inputs in parameter order.
type CallSite<'t> = (Node<'t>, Vec<Node<'t>>);

/// Call sites per function are not followed past this many (generated code calls some
/// functions thousands of times; the first ones are representative).
pub(super) const MAX_CALL_SITES: usize = 64;

/// The name under which a function's callers are recorded in `Analysis::helper_names`: the
/// scan cache drops a cached result that depends on them whenever an item that calls the
/// function by name changes (see `ScanCache`).
pub(crate) const CALLERS_PREFIX: &str = "callers:";

/// Byte offsets of every identifier followed by `(` or `::<` in `text` for which `wanted`
/// holds (the names of the file's functions), by identifier.
pub(super) fn call_index(text: &str, wanted: impl Fn(&str) -> bool) -> HashMap<&str, Vec<usize>> {
    let bytes = text.as_bytes();
    let mut out: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let mut j = i;
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            let rest = &bytes[j..];
            if (rest.starts_with(b"(") || rest.starts_with(b"::<")) && wanted(&text[start..i]) {
                out.entry(&text[start..i]).or_default().push(start);
            }
        } else if b >= 0x80 {
            // Skip the rest of a multi-byte character so that `start` stays on a boundary.
            i += 1;
            while i < bytes.len() && (bytes[i] & 0xC0) == 0x80 {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

impl<'a, 't> Helpers<'a, 't> {
    /// Per declared parameter of `func` (`self` first), the taint its callers in this file
    /// pass, each with the call site as its last step; empty when nothing tainted is passed.
    pub(super) fn parameter_taint(
        &self,
        func: Node<'t>,
        local: bool,
        levels: usize,
    ) -> Vec<Option<Taint>> {
        let key = (func.id(), levels, local);
        if let Some(known) = self.callers_memo.borrow().get(&key) {
            return known.clone();
        }
        if levels == 0 || !self.callers_in_progress.borrow_mut().insert(func.id()) {
            return Vec::new();
        }
        let passed = self.compute_parameter_taint(func, local, levels);
        self.callers_in_progress.borrow_mut().remove(&func.id());
        self.callers_memo.borrow_mut().insert(key, passed.clone());
        passed
    }

    fn compute_parameter_taint(
        &self,
        func: Node<'t>,
        local: bool,
        levels: usize,
    ) -> Vec<Option<Taint>> {
        let text = self.text();
        let Some(name_node) = func.child_by_field_name("name") else {
            return Vec::new();
        };
        let name = node_text(name_node, text);
        let has_params = func.child_by_field_name("parameters").is_some_and(|p| {
            let mut c = p.walk();
            p.named_children(&mut c)
                .any(|n| matches!(n.kind(), "parameter" | "self_parameter"))
        });
        if !has_params {
            return Vec::new();
        }
        // Recorded even when nothing calls it yet: a caller written later changes the result.
        self.looked_up
            .borrow_mut()
            .insert(format!("{CALLERS_PREFIX}{name}"));
        // Call sites that resolve to `func`, grouped by the function they are in.
        let mut by_caller: Vec<(Node<'t>, Vec<CallSite<'t>>)> = Vec::new();
        let offsets: Vec<usize> = self
            .calls()
            .get(name)
            .map(|v| v.iter().copied().take(MAX_CALL_SITES).collect())
            .unwrap_or_default();
        for at in offsets {
            let Some((call, inputs)) = self.call_at(at, name.len(), func) else {
                continue;
            };
            let Some(caller) = self.ancestry().enclosing_function(call) else {
                continue;
            };
            if caller.id() == func.id() {
                continue;
            }
            match by_caller.iter_mut().find(|(c, _)| c.id() == caller.id()) {
                Some((_, sites)) => sites.push((call, inputs)),
                None => by_caller.push((caller, vec![(call, inputs)])),
            }
        }
        let mut out: Vec<Option<Taint>> = Vec::new();
        for (caller, sites) in by_caller {
            let mut requests: Vec<SinkRequest<'t>> = Vec::new();
            let mut slots: Vec<(usize, usize)> = Vec::new();
            for (site, (_, inputs)) in sites.iter().enumerate() {
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
            let results = self.walk_caller(caller, &requests, local, levels);
            for ((site, param), taint) in slots.into_iter().zip(results) {
                let Some(t) = taint.filter(|t| !t.formatted && t.param.is_none()) else {
                    continue;
                };
                if t.local && !local {
                    continue;
                }
                let call = sites[site].0;
                let t = t.step(call.byte_range(), format!("passed to `{name}`"));
                if out.len() <= param {
                    out.resize(param + 1, None);
                }
                out[param] = union(out[param].take(), Some(t));
            }
        }
        // And what the crate's other files pass, for parameters this file's callers leave clean.
        if let Some(view) = self.crate_view() {
            let me = self
                .functions_named(name)
                .iter()
                .find(|f| f.node.id() == func.id());
            let passed = me.map(|f| view.passed_to(name, f)).unwrap_or_default();
            if passed.iter().any(Option::is_some) {
                let declared = declared_parameters(func);
                for (param, cross) in passed.into_iter().enumerate() {
                    let (Some(cross), Some(node)) = (cross, declared.get(param)) else {
                        continue;
                    };
                    if cross.local && !local {
                        continue;
                    }
                    if out.len() <= param {
                        out.resize(param + 1, None);
                    }
                    if out[param].is_none() {
                        out[param] = Some(cross.at(node.byte_range()));
                    }
                }
            }
        }
        out
    }

    /// Walks `caller` with its own sources and what its callers pass, and returns the taint
    /// of each request's node (the arguments of its calls to the function asked about).
    pub(super) fn walk_caller(
        &self,
        caller: Node<'t>,
        requests: &[SinkRequest<'t>],
        local: bool,
        levels: usize,
    ) -> Vec<Option<Taint>> {
        let text = self.text();
        let mut flow = Flow::new(text, requests, self, levels);
        for (i, r) in requests.iter().enumerate() {
            flow.sinks.entry(r.node.id()).or_default().push(i);
        }
        let mut env = flow.parameters(caller);
        self.bind_parameter_taint(caller, &mut env, local, levels - 1);
        if env.is_empty()
            && !mentions_source(node_text(caller, text), local)
            && !self.calls_source_helper(caller, local, levels)
        {
            return vec![None; requests.len()];
        }
        flow.collect_safe_names(caller);
        if let Some(body) = caller.child_by_field_name("body") {
            flow.visit(body, &mut env, 0);
        }
        (0..requests.len())
            .map(|i| flow.results.get(&i).cloned().flatten())
            .collect()
    }

    /// Adds to `env` the taint callers pass to `func`'s parameters (those not already tainted
    /// by the function's own sources).
    pub(super) fn bind_parameter_taint(
        &self,
        func: Node<'t>,
        env: &mut Env,
        local: bool,
        levels: usize,
    ) {
        if levels == 0 {
            return;
        }
        let passed = self.parameter_taint(func, local, levels);
        if passed.iter().all(Option::is_none) {
            return;
        }
        let Some(list) = func.child_by_field_name("parameters") else {
            return;
        };
        let text = self.text();
        let mut cursor = list.walk();
        let declared: Vec<Node<'t>> = list
            .named_children(&mut cursor)
            .filter(|p| matches!(p.kind(), "parameter" | "self_parameter"))
            .collect();
        for (param, taint) in declared.into_iter().zip(passed) {
            let Some(taint) = taint else { continue };
            let mut names = Vec::new();
            match param.kind() {
                "self_parameter" => names.push(("self".to_string(), param)),
                _ => {
                    if let Some(pattern) = param.child_by_field_name("pattern") {
                        bound_names(pattern, text, &mut names, 0);
                    }
                }
            }
            for (name, at) in names {
                if env.contains_key(&name) {
                    continue;
                }
                let t = taint
                    .clone()
                    .step(at.byte_range(), format!("parameter `{name}`"));
                env.insert(name, t);
            }
        }
    }

    /// The call whose callee name starts at byte `at` if it resolves to `func`, with its
    /// inputs in parameter order (the receiver first for `self.method(..)`).
    fn call_at(&self, at: usize, len: usize, func: Node<'t>) -> Option<(Node<'t>, Vec<Node<'t>>)> {
        let (call, function, inputs) = self.call_inputs(at, len)?;
        let (callee, _) = self.resolve(function)?;
        (callee.node.id() == func.id()).then_some((call, inputs))
    }

    /// The call whose callee name starts at byte `at`, its `function` field, and its inputs in
    /// parameter order (the receiver first for `self.method(..)`).
    pub(super) fn call_inputs(
        &self,
        at: usize,
        len: usize,
    ) -> Option<(Node<'t>, Node<'t>, Vec<Node<'t>>)> {
        let ident = self.ancestry().descendant_for_byte_range(at, at + len)?;
        // The callee is the identifier itself, a path or method ending in it, or a turbofish.
        let mut up = self.ancestry().ancestors(ident);
        let mut function = ident;
        let mut call = up.next()?;
        for _ in 0..3 {
            if call.kind() == "call_expression" {
                break;
            }
            function = call;
            call = up.next()?;
        }
        if call.kind() != "call_expression"
            || call.child_by_field_name("function").map(|f| f.id()) != Some(function.id())
        {
            return None;
        }
        let receiver_first = function.kind() == "field_expression"
            || (function.kind() == "generic_function"
                && function
                    .child_by_field_name("function")
                    .is_some_and(|f| f.kind() == "field_expression"));
        let mut inputs = Vec::new();
        if receiver_first {
            let method = if function.kind() == "generic_function" {
                function.child_by_field_name("function")?
            } else {
                function
            };
            inputs.push(method.child_by_field_name("value")?);
        }
        if let Some(args) = call.child_by_field_name("arguments") {
            let mut c = args.walk();
            inputs.extend(
                args.named_children(&mut c)
                    .filter(|n| !matches!(n.kind(), "line_comment" | "block_comment")),
            );
        }
        Some((call, function, inputs))
    }
}

/// The declared parameters of `func` (`self` first), in order.
fn declared_parameters(func: Node<'_>) -> Vec<Node<'_>> {
    let Some(list) = func.child_by_field_name("parameters") else {
        return Vec::new();
    };
    let mut cursor = list.walk();
    list.named_children(&mut cursor)
        .filter(|p| matches!(p.kind(), "parameter" | "self_parameter"))
        .collect()
}
