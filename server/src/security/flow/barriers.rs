//! What cleans a value: conditions that check it (allow-lists, comparisons with literals,
//! bounds, prefix checks, validator calls, `matches!`) and the branches they guard, blocks that
//! leave early, literal match patterns, and sanitiser names (`escape`, `encode`, `quote`…).

use tree_sitter::Node;

use super::macros::{split_args, token_tree_of, tokens_key};
use super::syntax::{last_segment, path_key};
use super::{Env, Flow, MAX_DEPTH, Taint};
use crate::security::engine::node_text;

pub(super) fn diverges(block: Node<'_>, text: &str) -> bool {
    diverges_within(block, text, 0)
}

fn diverges_within(block: Node<'_>, text: &str, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        crate::security::cut::record(block.start_byte(), crate::security::cut::Cut::FlowDepth);
        return false;
    }
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
        "block" => diverges_within(last, text, depth + 1),
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
    /// The checks a condition performs when it evaluates to `when`.
    fn checks(&self, cond: Node<'t>, when: bool, out: &mut Vec<(String, Check)>, depth: usize) {
        if depth > MAX_DEPTH {
            crate::security::cut::record(cond.start_byte(), crate::security::cut::Cut::FlowDepth);
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
                let args: Vec<Node<'t>> = cond
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

    pub(super) fn apply_checks(&self, cond: Node<'t>, when: bool, env: &mut Env) {
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
}

/// Whether a function or method name says it neutralises its input: one of its words (split
/// at `_`, `::` and camelCase humps) is a sanitising verb (`escape_html`, `shellQuote`,
/// `ammonia::clean`, `validate_name`). Whole words only, so `unescape`, `unquote`,
/// `encoded_len` and `cleaned` are not barriers.
pub(super) fn is_sanitizer(name: &str) -> bool {
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

pub(super) fn pattern_is_literal(pattern: Node<'_>) -> bool {
    fn walk(node: Node<'_>, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            crate::security::cut::record(node.start_byte(), crate::security::cut::Cut::FlowDepth);
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
