//! The taint an expression's value carries under an environment: variables and field paths,
//! operators, casts, blocks and branches, method chains (which methods propagate, parse to a
//! number or canonicalise), calls by path (including the sources `env::var`, `env::args`,
//! stdin and sockets), and calls to helpers of the same file through their summaries.

use tree_sitter::Node;

use super::across::Callee;
use super::barriers::{is_sanitizer, pattern_is_literal};
use super::helpers::returned_by;
use super::macros::{split_args, token_tree_of};
use super::syntax::{is_constant_name, is_int_type, last_segment, path_key, tail_expression};
use super::{Env, Flow, MAX_DEPTH, Taint, union};
use crate::security::engine::node_text;

impl<'r, 't> Flow<'_, 'r, 't> {
    /// The taint an expression's value carries under `env`.
    pub(super) fn taint_of(&self, node: Node<'t>, env: &Env, depth: usize) -> Option<Taint> {
        if depth > MAX_DEPTH {
            crate::security::cut::record(node.start_byte(), crate::security::cut::Cut::FlowDepth);
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
                                .any(|n| self.is_dynamic_operand(*n, depth + 1));
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

    fn is_dynamic_operand(&self, node: Node<'t>, depth: usize) -> bool {
        // `a + b + … ` chains nest one level per operator; past the bound, assume dynamic.
        if depth > MAX_DEPTH {
            crate::security::cut::record(node.start_byte(), crate::security::cut::Cut::FlowDepth);
            return true;
        }
        if super::values::is_constant_expr(node, self.text, &self.int_names, 0) {
            return false;
        }
        match node.kind() {
            "identifier" => {
                let name = self.t(node);
                !is_constant_name(name) && !self.int_names.contains(name)
            }
            "field_expression" | "call_expression" | "index_expression" => true,
            "reference_expression" | "parenthesized_expression" => node
                .named_child(node.named_child_count().saturating_sub(1) as u32)
                .is_some_and(|c| self.is_dynamic_operand(c, depth + 1)),
            "binary_expression" => {
                node.child_by_field_name("left")
                    .is_some_and(|l| self.is_dynamic_operand(l, depth + 1))
                    || node
                        .child_by_field_name("right")
                        .is_some_and(|r| self.is_dynamic_operand(r, depth + 1))
            }
            _ => false,
        }
    }

    fn formatted_taint(&self, node: Node<'t>) -> Taint {
        let mut t = Taint::source(
            node.byte_range(),
            "text built by formatting non-constant values".into(),
        );
        t.formatted = true;
        t
    }

    fn call_taint(&self, node: Node<'t>, env: &Env, depth: usize) -> Option<Taint> {
        let function = node.child_by_field_name("function")?;
        let args: Vec<Node<'t>> = node
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
        if method == "send" && args.is_empty() && is_http_request(self.t(receiver)) {
            return Some(Taint::source(
                node.byte_range(),
                format!("HTTP response of `{}`", self.t(node)),
            ));
        }
        let receiver_taint = self.taint_of(receiver, env, depth + 1);
        match method {
            "len"
            | "is_empty"
            | "is_some"
            | "is_none"
            | "is_ok"
            | "is_err"
            | "contains"
            | "starts_with"
            | "ends_with"
            | "eq"
            | "ne"
            | "cmp"
            | "partial_cmp"
            | "hash"
            | "count"
            | "capacity"
            | "exists"
            | "is_file"
            | "is_dir"
            | "is_absolute"
            | "is_relative"
            | "find"
            | "rfind"
            | "position"
            | "any"
            | "all"
            | "is_match"
            | "file_name"
            | "file_stem"
            | "extension"
            | "min"
            | "clamp"
            | "len_utf8"
            | "contains_key"
            | "is_ascii"
            | "status"
            | "is_success"
            | "is_client_error"
            | "is_server_error"
            | "is_redirection"
            | "content_length"
            | "error_for_status_ref" => None,
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
        node: Node<'t>,
        function: Node<'t>,
        args: &[Node<'t>],
        env: &Env,
        depth: usize,
    ) -> Option<Option<Taint>> {
        let Some((callee, receiver_first)) = self.helpers.resolve(function) else {
            return self.crate_call_taint(node, function, args, env, depth);
        };
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
        let mut inputs: Vec<Node<'t>> = Vec::new();
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

    /// The taint of a call to a function defined in another file of the crate, from its
    /// summary ([`super::across`]): `None` when the call means no such function.
    fn crate_call_taint(
        &self,
        node: Node<'t>,
        function: Node<'t>,
        args: &[Node<'t>],
        env: &Env,
        depth: usize,
    ) -> Option<Option<Taint>> {
        let view = self.helpers.crate_view()?;
        let (name, callee) = Callee::of(function, self.text, self.helpers.ancestry())?;
        if is_sanitizer(name) {
            return None;
        }
        let exported = view.exported(name, &callee)?;
        let mut inputs: Vec<Node<'t>> = Vec::new();
        if matches!(callee, Callee::SelfMethod(_)) {
            let method = if function.kind() == "generic_function" {
                function.child_by_field_name("function")?
            } else {
                function
            };
            inputs.push(method.child_by_field_name("value")?);
        }
        inputs.extend_from_slice(args);
        let returned = |t: Taint| {
            let mut t = returned_by(t, node.byte_range(), name);
            if let Some(last) = t.steps.last_mut() {
                last.1 = format!("returned by `{name}` ({})", exported.location);
            }
            t
        };
        let mut out = exported
            .source
            .as_ref()
            .map(|s| returned(s.at(node.byte_range())));
        for (flow, input) in exported.params.iter().zip(&inputs) {
            let Some((numeric, canonical)) = *flow else {
                continue;
            };
            if let Some(mut t) = self.taint_of(*input, env, depth + 1) {
                t.numeric |= numeric;
                t.canonical |= canonical;
                out = union(out, Some(returned(t)));
            }
        }
        Some(out)
    }

    fn path_call_taint(
        &self,
        path: &str,
        node: Node<'t>,
        args: &[Node<'t>],
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
            // What another server answers is as untrusted as a request.
            ("reqwest" | "blocking" | "ureq", "get") => {
                Some(format!("HTTP response of `{}`", self.t(node)))
            }
            _ => None,
        };
        if let Some(what) = source {
            return Some(
                if matches!(
                    head,
                    "TcpStream" | "UdpSocket" | "reqwest" | "blocking" | "ureq"
                ) {
                    Taint::source(node.byte_range(), what)
                } else {
                    Taint::local_source(node.byte_range(), what)
                },
            );
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
            | "into"
            // `Layout::from_size_align(n, ..)`, `Layout::array::<T>(n)`: the size of a raw
            // allocation.
            | "from_size_align"
            | "from_size_align_unchecked"
            | "array" => args_taint(self),
            _ => None,
        }
    }
}

/// Whether a method chain builds an HTTP client request (`client.get(url)`, `.post(..)`,
/// `http.request(..)`), whose `send()` answers with data from another server.
fn is_http_request(chain: &str) -> bool {
    static RE: std::sync::OnceLock<[regex::Regex; 2]> = std::sync::OnceLock::new();
    let [client, verb] = RE.get_or_init(|| {
        [
            regex::Regex::new(r"(?i)(client|http|reqwest|ureq|agent)").expect("valid regex"),
            regex::Regex::new(r"\.\s*(get|post|put|patch|delete|head|request)\s*\(")
                .expect("valid regex"),
        ]
    });
    client.is_match(chain) && verb.is_match(chain)
}
