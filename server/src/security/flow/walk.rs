//! The walk over a function body in source order: `let`, assignment, `if`/`match`, loops
//! (walked twice), closures, method calls that fill or extend a buffer, `write!`, and the
//! sinks met on the way, each recorded with the taint it carries at that point. The value of
//! an expression is asked of [`super::expr`]; branch conditions are turned into barriers by
//! [`super::barriers`].

use tree_sitter::Node;

use super::barriers::{diverges, pattern_is_literal};
use super::macros::{is_log_sink, split_args, token_tree_of, tokens_key};
use super::syntax::{bound_names, is_int_type, last_segment, path_key};
use super::{Env, Flow, MAX_DEPTH, Taint, join, union};
use crate::security::ancestry::Ancestry;

impl<'r, 't> Flow<'_, 'r, 't> {
    pub(super) fn collect_int_names(&mut self, node: Node<'t>, depth: usize) {
        if depth > MAX_DEPTH {
            crate::security::cut::record(node.start_byte(), crate::security::cut::Cut::FlowDepth);
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
                && is_log_sink(node, self.text, self.helpers.ancestry());
            let taint = self.taint_of(node, env, depth);
            self.debug_barrier = false;
            let slot = self.results.entry(i).or_insert(None);
            // Loop bodies are walked twice; keep the most telling result.
            *slot = union(slot.take(), taint);
        }
    }

    pub(super) fn bind(&self, pattern: Node<'t>, taint: Option<Taint>, env: &mut Env) {
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

    pub(super) fn visit(&mut self, node: Node<'t>, env: &mut Env, depth: usize) {
        if depth > MAX_DEPTH {
            crate::security::cut::record(node.start_byte(), crate::security::cut::Cut::FlowDepth);
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
                    && returns_from_function(node, self.helpers.ancestry())
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

    fn bind_struct(&self, var: Node<'t>, value: Node<'t>, env: &mut Env, depth: usize) {
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
}

/// Whether a `return` leaves the function itself rather than a closure or `async` block in it.
fn returns_from_function<'t>(node: Node<'t>, ancestry: &Ancestry<'_, 't>) -> bool {
    for n in ancestry.ancestors(node) {
        match n.kind() {
            "function_item" => return true,
            "closure_expression" | "async_block" => return false,
            _ => {}
        }
    }
    false
}
