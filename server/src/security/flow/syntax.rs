//! Names and shapes read off the syntax tree, with no taint involved, shared by every part of
//! the analysis: the last segment of a path, integer-like type names, constant names, the
//! identifiers a pattern binds, the variable path an expression names, and a block's value.

use tree_sitter::Node;

use super::MAX_DEPTH;
use crate::security::engine::node_text;

pub(super) fn is_int_type(ty: &str) -> bool {
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

pub(super) fn last_segment(path: &str) -> &str {
    let path = path.split('<').next().unwrap_or(path);
    path.rsplit("::").next().unwrap_or(path).trim()
}

pub(super) fn is_constant_name(name: &str) -> bool {
    name.chars().any(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Identifiers a pattern binds (not the type names and constants in it).
pub(super) fn bound_names<'t>(
    pattern: Node<'t>,
    text: &str,
    out: &mut Vec<(String, Node<'t>)>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        crate::security::cut::record(pattern.start_byte(), crate::security::cut::Cut::FlowDepth);
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
pub(super) fn path_key(node: Node<'_>, text: &str, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        crate::security::cut::record(node.start_byte(), crate::security::cut::Cut::FlowDepth);
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

fn last_named_child(node: Node<'_>) -> Option<Node<'_>> {
    node.named_child(u32::try_from(node.named_child_count().checked_sub(1)?).ok()?)
}

/// The expression whose value a block gives back, if any. A trailing `if`, `match` or block
/// parses as a statement; without its own `;` it is still the block's value.
pub(super) fn tail_expression(block: Node<'_>) -> Option<Node<'_>> {
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
