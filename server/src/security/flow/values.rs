//! Value tracking: which local variables of a function only ever hold constant values
//! (literals, `const`s, and `let`s, simple conditionals, `format!` and conversions built from
//! them). Formatting such a variable into text is as safe as formatting a literal, so the SQL
//! rule's "formatted from non-constant values" heuristic ignores it.
//!
//! The test is flow-insensitive and conservative: a name is constant only when every place
//! that binds or assigns it in the function gives it a constant value, and nothing borrows it
//! mutably or calls a method that could change it in place.

use std::collections::{HashMap, HashSet};

use tree_sitter::Node;

use super::MAX_DEPTH;
use super::macros::{split_args, token_tree_of};
use super::syntax::{bound_names, is_constant_name, last_segment};
use crate::security::engine::node_text;

/// How many rounds a constant may take to propagate through other constants (`let a = "x";
/// let b = a;` takes two); more is rare and only costs precision, never a wrong answer.
const ROUNDS: usize = 4;

/// The names in `func` that only ever hold constant values.
pub(super) fn constant_locals(func: Node<'_>, text: &str) -> HashSet<String> {
    let mut bindings: HashMap<String, Vec<Option<Node<'_>>>> = HashMap::new();
    collect_bindings(func, text, &mut bindings, 0);
    let mut constants: HashSet<String> = HashSet::new();
    for _ in 0..ROUNDS {
        let before = constants.len();
        for (name, values) in &bindings {
            if constants.contains(name) {
                continue;
            }
            let constant = values
                .iter()
                .all(|v| v.is_some_and(|v| is_constant_expr(v, text, &constants, 0)));
            if constant {
                constants.insert(name.clone());
            }
        }
        if constants.len() == before {
            break;
        }
    }
    constants
}

/// Every binding and assignment of every name: `Some(value)` for `let x = value` and
/// `x = value`, `None` for any other way a name gets a value or may change (parameters,
/// patterns, `&mut x`, `x += …`, `x.push_str(…)`).
fn collect_bindings<'t>(
    node: Node<'t>,
    text: &str,
    out: &mut HashMap<String, Vec<Option<Node<'t>>>>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        crate::security::cut::record(node.start_byte(), crate::security::cut::Cut::FlowDepth);
        return;
    }
    let poison = |pattern: Node<'t>, out: &mut HashMap<String, Vec<Option<Node<'t>>>>| {
        let mut names = Vec::new();
        bound_names(pattern, text, &mut names, 0);
        for (name, _) in names {
            out.entry(name).or_default().push(None);
        }
    };
    match node.kind() {
        "let_declaration" => {
            if let Some(pattern) = node.child_by_field_name("pattern") {
                let value = node.child_by_field_name("value");
                if pattern.kind() == "identifier" && value.is_some() {
                    out.entry(node_text(pattern, text).to_string())
                        .or_default()
                        .push(value);
                } else {
                    poison(pattern, out);
                }
            }
        }
        "parameter" | "closure_parameters" | "match_arm" | "let_condition" | "for_expression" => {
            let pattern = match node.kind() {
                "closure_parameters" => Some(node),
                _ => node.child_by_field_name("pattern"),
            };
            if let Some(p) = pattern {
                poison(p, out);
            }
        }
        "assignment_expression" => {
            if let Some(left) = node.child_by_field_name("left")
                && left.kind() == "identifier"
            {
                out.entry(node_text(left, text).to_string())
                    .or_default()
                    .push(node.child_by_field_name("right"));
            }
        }
        "compound_assignment_expr" => {
            if let Some(left) = node.child_by_field_name("left")
                && left.kind() == "identifier"
            {
                out.entry(node_text(left, text).to_string())
                    .or_default()
                    .push(None);
            }
        }
        "reference_expression" => {
            let mutable = {
                let mut c = node.walk();
                node.children(&mut c)
                    .any(|ch| ch.kind() == "mutable_specifier")
            };
            if mutable
                && let Some(value) = node.child_by_field_name("value")
                && value.kind() == "identifier"
            {
                out.entry(node_text(value, text).to_string())
                    .or_default()
                    .push(None);
            }
        }
        "call_expression" => {
            // `x.push_str(…)`, `x.clear()`, `x.insert(…)`: a method on the variable itself may
            // change it, unless it is one that only reads.
            if let Some(function) = node.child_by_field_name("function")
                && function.kind() == "field_expression"
                && let Some(receiver) = function.child_by_field_name("value")
                && receiver.kind() == "identifier"
                && let Some(method) = function.child_by_field_name("field")
                && !reads_only(node_text(method, text))
            {
                out.entry(node_text(receiver, text).to_string())
                    .or_default()
                    .push(None);
            }
        }
        "macro_invocation" => {
            // `write!(x, …)` fills `x`.
            let name = node
                .child_by_field_name("macro")
                .map_or("", |m| node_text(m, text));
            if matches!(last_segment(name), "write" | "writeln")
                && let Some(tt) = token_tree_of(node)
                && let Some(dest) = split_args(tt).first().and_then(|a| a.first().copied())
            {
                let dest = if node_text(dest, text) == "&" {
                    None
                } else {
                    Some(node_text(dest, text).to_string())
                };
                if let Some(dest) = dest {
                    out.entry(dest).or_default().push(None);
                }
            }
        }
        _ => {}
    }
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        collect_bindings(child, text, out, depth + 1);
    }
}

/// Methods that give a view or a copy and never change their receiver.
fn reads_only(method: &str) -> bool {
    matches!(
        method,
        "as_str"
            | "as_ref"
            | "to_string"
            | "to_owned"
            | "clone"
            | "into"
            | "as_bytes"
            | "len"
            | "is_empty"
            | "trim"
            | "to_lowercase"
            | "to_uppercase"
            | "to_ascii_lowercase"
            | "to_ascii_uppercase"
            | "contains"
            | "starts_with"
            | "ends_with"
            | "eq"
            | "as_deref"
            | "borrow"
    )
}

/// Whether an expression's value is a constant under `constants` (the names known to hold
/// only constants).
pub(super) fn is_constant_expr(
    node: Node<'_>,
    text: &str,
    constants: &HashSet<String>,
    depth: usize,
) -> bool {
    if depth > MAX_DEPTH {
        crate::security::cut::record(node.start_byte(), crate::security::cut::Cut::FlowDepth);
        return false;
    }
    let recurse = |n: Node<'_>| is_constant_expr(n, text, constants, depth + 1);
    match node.kind() {
        "string_literal" | "raw_string_literal" | "integer_literal" | "float_literal"
        | "boolean_literal" | "char_literal" => true,
        "identifier" => {
            let name = node_text(node, text);
            is_constant_name(name) || constants.contains(name)
        }
        "scoped_identifier" => node
            .child_by_field_name("name")
            .is_some_and(|n| is_constant_name(node_text(n, text))),
        "reference_expression" | "parenthesized_expression" => node
            .named_child(node.named_child_count().saturating_sub(1) as u32)
            .is_some_and(recurse),
        "binary_expression" => {
            node.child_by_field_name("left").is_some_and(recurse)
                && node.child_by_field_name("right").is_some_and(recurse)
        }
        "block" => {
            super::syntax::tail_expression(node).is_some_and(recurse) && {
                // Only a block that is just its value: statements could do anything.
                let mut c = node.walk();
                node.named_children(&mut c)
                    .filter(|n| !matches!(n.kind(), "line_comment" | "block_comment"))
                    .count()
                    == 1
            }
        }
        "expression_statement" => node.named_child(0).is_some_and(recurse),
        "if_expression" => {
            node.child_by_field_name("consequence").is_some_and(recurse)
                && node
                    .child_by_field_name("alternative")
                    .and_then(|a| a.named_child(0))
                    .is_some_and(recurse)
        }
        "match_expression" => node.child_by_field_name("body").is_some_and(|body| {
            let mut c = body.walk();
            let arms: Vec<Node<'_>> = body
                .named_children(&mut c)
                .filter(|a| a.kind() == "match_arm")
                .collect();
            !arms.is_empty()
                && arms
                    .iter()
                    .all(|a| a.child_by_field_name("value").is_some_and(recurse))
        }),
        "call_expression" => {
            let Some(function) = node.child_by_field_name("function") else {
                return false;
            };
            let args: Vec<Node<'_>> = node
                .child_by_field_name("arguments")
                .map(|a| {
                    let mut c = a.walk();
                    a.named_children(&mut c).collect()
                })
                .unwrap_or_default();
            match function.kind() {
                "field_expression" => {
                    let method = function
                        .child_by_field_name("field")
                        .map_or("", |f| node_text(f, text));
                    matches!(
                        method,
                        "to_string"
                            | "to_owned"
                            | "into"
                            | "as_str"
                            | "clone"
                            | "to_uppercase"
                            | "to_lowercase"
                    ) && args.is_empty()
                        && function.child_by_field_name("value").is_some_and(recurse)
                }
                "scoped_identifier" => {
                    let path = node_text(function, text);
                    matches!(
                        path,
                        "String::from" | "std::string::String::from" | "Cow::Borrowed"
                    ) && args.len() == 1
                        && args.iter().all(|a| recurse(*a))
                }
                _ => false,
            }
        }
        "macro_invocation" => {
            let name = node
                .child_by_field_name("macro")
                .map_or("", |m| last_segment(node_text(m, text)));
            if !matches!(name, "format" | "concat" | "stringify") {
                return false;
            }
            let Some(tt) = token_tree_of(node) else {
                return false;
            };
            if name != "format" {
                return true;
            }
            format_is_constant(tt, text, constants)
        }
        _ => false,
    }
}

/// Whether every value a `format!` token tree formats is a constant: each argument is a
/// single literal or constant name, and each inline `{name}` names a constant.
fn format_is_constant(tt: Node<'_>, text: &str, constants: &HashSet<String>) -> bool {
    let args = split_args(tt);
    let Some((fmt, rest)) = args.split_first() else {
        return false;
    };
    let [fmt] = fmt.as_slice() else {
        return false;
    };
    if !matches!(fmt.kind(), "string_literal" | "raw_string_literal") {
        return false;
    }
    let constant_token = |n: Node<'_>| match n.kind() {
        "string_literal" | "raw_string_literal" | "integer_literal" | "float_literal"
        | "boolean_literal" | "char_literal" => true,
        "identifier" => {
            let name = node_text(n, text);
            is_constant_name(name) || constants.contains(name)
        }
        _ => false,
    };
    let args_constant = rest.iter().all(|arg| match arg.as_slice() {
        [single] => constant_token(*single),
        // `name = value`
        [name, eq, value] => {
            name.kind() == "identifier" && node_text(*eq, text) == "=" && constant_token(*value)
        }
        _ => false,
    });
    let named: HashSet<&str> = rest
        .iter()
        .filter(|a| a.len() == 3)
        .map(|a| node_text(a[0], text))
        .collect();
    let inline_constant = crate::security::engine::literal_content(*fmt, text)
        .map(inline_names)
        .is_some_and(|names| {
            names
                .iter()
                .all(|n| named.contains(n.as_str()) || is_constant_name(n) || constants.contains(n))
        });
    args_constant && inline_constant
}

/// The names written inside a format string's placeholders (`{name}`, `{name:?}`).
fn inline_names(fmt: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = fmt;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        if let Some(escaped) = after.strip_prefix('{') {
            rest = escaped;
            continue;
        }
        let Some(close) = after.find('}') else { break };
        let arg = after[..close].split(':').next().unwrap_or("").trim();
        if !arg.is_empty() && arg.parse::<usize>().is_err() {
            out.push(arg.to_string());
        }
        rest = &after[close + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::Language;

    fn constants(code: &str) -> Vec<String> {
        let rust = Language::by_name("rust").expect("rust registered");
        let tree = rust.parse(code).expect("a tree");
        let root = tree.root_node();
        let func = root.named_child(0).expect("a function");
        let mut names: Vec<String> = constant_locals(func, code).into_iter().collect();
        names.sort();
        names
    }

    #[test]
    fn literals_conditionals_and_formats_of_constants_are_constant() {
        let code = r#"fn f(flag: bool, user: &str) {
            let table = "users";
            let column = if flag { "name" } else { "email" };
            let order = match flag { true => "ASC", false => "DESC" };
            let both = format!("{table}.{column} {}", order);
            let owned = table.to_string();
            let copied = owned;
            let who = user;
            let mut grown = String::from("a");
            grown.push_str(user);
            let mut reset = "x";
            reset = user;
        }"#;
        assert_eq!(
            constants(code),
            vec!["both", "column", "copied", "order", "owned", "table"]
        );
    }
}
