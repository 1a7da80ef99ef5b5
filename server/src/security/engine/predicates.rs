//! The predicates tree-sitter leaves to the caller (`#secret-name?`, `#no-safety-comment?`,
//! `#chain-lacks-method?`…): how each is evaluated on a match's captures, and the text and tree
//! tests behind them.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex::Regex;
use tree_sitter::{Node, QueryPredicateArg};

use super::{in_test_code, literal_content};
use crate::security::ancestry::Ancestry;
use crate::security::fixes::node_line_start;

/// `Regex::new(pattern)`, kept for reuse: the value-tracking predicates build their patterns
/// from a name (`let flag`, `const KEY`), and compiling the same few patterns again for every
/// hit cost more than the search itself (about 2 ms per finding on a file of many). Each thread
/// keeps up to 256 patterns and starts over when full.
fn name_regex(pattern: &str) -> Result<Regex, regex::Error> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static COMPILED: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
    }
    COMPILED.with(|compiled| {
        if let Some(found) = compiled.borrow().get(pattern) {
            return Ok(found.clone());
        }
        let regex = Regex::new(pattern)?;
        let mut compiled = compiled.borrow_mut();
        if compiled.len() >= 256 {
            compiled.clear();
        }
        compiled.insert(pattern.to_string(), regex.clone());
        Ok(regex)
    })
}

/// Names that say a value is a secret.
fn secret_name() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)(^|_|\b)(pass(word|wd|phrase)?|pwd|secret|api_?key|apikey|access_?key|private_?key|secret_?key|auth_?token|access_?token|refresh_?token|bearer|token|client_?secret|credentials?)($|_|\b)",
        )
        .expect("valid regex")
    })
}

/// Name parts that say a value is about a secret without being one (`PASSWORD_ENV`,
/// `token_url`, `password_len`).
fn secret_metadata_name() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)(_|^)(env|var|name|names|header|field|key_?id|id|url|uri|path|file|prefix|suffix|len|length|type|kind|label|hint|prompt|regex|pattern|re|policy|min|max|count|hash|hashed|digest|salt_?len|endpoint|expiry|expires|ttl|timeout|error|msg|message|placeholder|param|column|col|query)(_|$)",
        )
        .expect("valid regex")
    })
}

/// Whether `text` contains a word that every secret name ([`secret_name`]) contains: a cheap
/// test before walking a long macro call name by name.
fn mentions_secret_word(text: &str) -> bool {
    static WORDS: OnceLock<AhoCorasick> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build([
                    "pass",
                    "pwd",
                    "secret",
                    "key",
                    "token",
                    "bearer",
                    "credential",
                ])
                .expect("valid anchor words")
        })
        .is_match(text)
}

/// Whether an identifier names a secret value.
fn names_secret(name: &str) -> bool {
    secret_name().is_match(name) && !secret_metadata_name().is_match(name)
}

fn capture_node<'t>(
    args: &[QueryPredicateArg],
    index: usize,
    captures: &[(&'static str, Node<'t>)],
    names: &[&'static str],
) -> Option<Node<'t>> {
    match args.get(index)? {
        QueryPredicateArg::Capture(c) => {
            let name = names.get(*c as usize)?;
            captures
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, node)| *node)
        }
        QueryPredicateArg::String(_) => None,
    }
}

fn string_arg(args: &[QueryPredicateArg], index: usize) -> Option<&str> {
    match args.get(index)? {
        QueryPredicateArg::String(s) => Some(s),
        QueryPredicateArg::Capture(_) => None,
    }
}

/// Evaluates the predicates tree-sitter leaves to us. An unknown predicate fails closed (the
/// match is dropped), and the tidy test makes sure no rule uses one.
pub(super) fn predicate_holds<'t>(
    operator: &str,
    args: &[QueryPredicateArg],
    captures: &[(&'static str, Node<'t>)],
    names: &[&'static str],
    text: &str,
    anc: &Ancestry<'_, 't>,
    searches: &FileSearches,
) -> bool {
    let node = capture_node(args, 0, captures, names);
    let node_text = |n: Node<'_>| text.get(n.byte_range()).unwrap_or("");
    match operator {
        "secret-name?" => node.is_some_and(|n| names_secret(node_text(n))),
        "secret-literal?" => node.is_some_and(|n| looks_like_secret_literal(n, text)),
        "no-safety-comment?" => node.is_some_and(|n| !has_safety_comment(n, text)),
        "chain-lacks-method?" => match (node, string_arg(args, 1)) {
            (Some(n), Some(method)) => chain_lacks_method(n, method, text, anc),
            _ => false,
        },
        "local-binding?" => node.is_some_and(|n| is_local_binding(n, text, false, anc)),
        "owned-local?" => node.is_some_and(|n| is_local_binding(n, text, true, anc)),
        "uninit-vec?" => node.is_some_and(|n| is_uninit_vec(n, text, anc)),
        "non-local-http?" => node.is_some_and(|n| is_non_local_http(node_text(n))),
        "holds-non-local-http?" => {
            node.is_some_and(|n| url_value(n, text, 0, anc).is_some_and(|u| is_non_local_http(&u)))
        }
        "constant-bytes?" => node.is_some_and(|n| constant_bytes(n, text, 0, anc, searches)),
        "formats-secret?" => {
            node.is_some_and(|n| mentions_secret_word(node_text(n)) && formats_secret(n, text))
        }
        "not-zeroable?" => node.is_some_and(|n| not_zeroable(node_text(n))),
        "outside-test?" => node.is_some_and(|n| !in_test_code(n, text, anc)),
        "lock-guard?" => node.is_some_and(|n| is_lock_guard(n, text, anc)),
        "freed-or-null?" => match (node, capture_node(args, 1, captures, names)) {
            (Some(ptr), Some(scope)) => freed_or_null(ptr, scope, text, anc),
            _ => false,
        },
        "may-be-true?" => {
            node.is_some_and(|n| constant_bool(n, text, 0, anc, searches) != Some(false))
        }
        "provably-false?" => {
            node.is_some_and(|n| constant_bool(n, text, 0, anc, searches) == Some(false))
        }
        "uninit-of-initialised-type?" => {
            node.is_some_and(|n| uninit_of_initialised_type(n, text, anc))
        }
        _ => false,
    }
}

/// The predicates rules may use besides tree-sitter's own `#eq?`, `#match?` and `#any-of?`.
#[cfg(test)]
pub(crate) const KNOWN_PREDICATES: &[&str] = &[
    "secret-name?",
    "secret-literal?",
    "no-safety-comment?",
    "chain-lacks-method?",
    "local-binding?",
    "owned-local?",
    "uninit-vec?",
    "non-local-http?",
    "holds-non-local-http?",
    "constant-bytes?",
    "formats-secret?",
    "not-zeroable?",
    "outside-test?",
    "lock-guard?",
    "freed-or-null?",
    "may-be-true?",
    "provably-false?",
    "uninit-of-initialised-type?",
];

fn looks_like_secret_literal(node: Node<'_>, text: &str) -> bool {
    let Some(value) = literal_content(node, text) else {
        return false;
    };
    let trimmed = value.trim();
    if trimmed.chars().count() < 6 || trimmed.contains(char::is_whitespace) {
        return false;
    }
    // Names of environment variables or settings (`DATABASE_PASSWORD`), interpolation
    // templates and obvious placeholders are not secrets.
    let env_like = trimmed
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '.');
    let lowered = trimmed.to_ascii_lowercase();
    let placeholder = trimmed.contains('{')
        || trimmed.contains('<')
        || trimmed.contains('$')
        || trimmed.starts_with('/')
        || trimmed.contains("://")
        || lowered.contains("example")
        || lowered.contains("xxxx")
        || lowered.contains("your")
        || lowered.contains("redacted")
        || lowered.contains("dummy")
        || lowered.contains("placeholder")
        || lowered.starts_with("test")
        || lowered.starts_with("fake")
        || lowered.starts_with("mock")
        || trimmed.chars().all(|c| c == '*' || c == 'x' || c == '.');
    // A value that is itself just a field name ("password", "api-key", "x-auth-token").
    const NAME_WORDS: &[&str] = &[
        "x", "password", "passwd", "pwd", "secret", "api", "key", "apikey", "token", "access",
        "refresh", "auth", "client", "private", "bearer", "session", "id", "name", "user", "new",
        "old", "confirm", "current",
    ];
    let identifier_like = trimmed
        .to_ascii_lowercase()
        .split(['_', '-', '.'])
        .all(|w| NAME_WORDS.contains(&w));
    !(env_like || placeholder || identifier_like)
}

/// How far the safety-comment check reads on the node's own line, before the node and after
/// its end, and how long a line above it may be to count as a comment. A check that read whole
/// lines cost the line's length for every `unsafe` on it: quadratic on a document of one long
/// line of them.
const SAFETY_WINDOW: usize = 512;
const MAX_COMMENT_LINE: usize = 4096;

/// Whether `text` holds `SAFETY:` in any case.
fn mentions_safety(text: &str) -> bool {
    text.as_bytes()
        .windows(7)
        .any(|w| w.eq_ignore_ascii_case(b"SAFETY:"))
}

/// The largest char boundary of `text` at or below `at`.
fn boundary_below(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn has_safety_comment(node: Node<'_>, text: &str) -> bool {
    let at = node.start_byte().min(text.len());
    let start = node_line_start(node, text);
    // The same line, before or after the node (`// SAFETY:` at the end of a one-liner), within
    // the window.
    let from = boundary_below(text, start.max(at.saturating_sub(SAFETY_WINDOW)));
    let limit = boundary_below(text, node.end_byte().max(at).saturating_add(SAFETY_WINDOW));
    let line_end = text[at..limit].find('\n').map_or(limit, |i| at + i);
    if mentions_safety(&text[from..line_end]) {
        return true;
    }
    // The first line inside the block.
    if text.as_bytes().get(line_end) == Some(&b'\n') {
        let next = &text.as_bytes()[line_end + 1..];
        let indent = next
            .iter()
            .take(SAFETY_WINDOW)
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r'))
            .count();
        if next
            .get(indent..indent + 10)
            .is_some_and(|head| head.eq_ignore_ascii_case(b"// SAFETY:"))
        {
            return true;
        }
    }
    // The comment lines (and attributes) directly above; a line longer than a comment would be
    // ends the search.
    let mut end = start;
    while end > 0 {
        let floor = boundary_below(text, (end - 1).saturating_sub(MAX_COMMENT_LINE));
        let prev = match text[floor..end - 1].rfind('\n') {
            Some(i) => floor + i + 1,
            None if floor == 0 => 0,
            None => return false,
        };
        let line = text[prev..end].trim();
        if mentions_safety(line) {
            return true;
        }
        let continues = line.starts_with("//")
            || line.starts_with("/*")
            || line.starts_with('*')
            || line.starts_with("#[")
            || line.ends_with("*/");
        // `let x =` on the line above the `unsafe {` that starts its value.
        let statement_head = line.ends_with('=') && end == start;
        if !(continues || statement_head) {
            return false;
        }
        end = prev;
    }
    false
}

fn chain_lacks_method<'t>(
    node: Node<'t>,
    method: &str,
    text: &str,
    anc: &Ancestry<'_, 't>,
) -> bool {
    // One walk up. `depth` is the number of ancestors of `top`, so its parent is
    // `path[depth - 1]`.
    let path = anc.path(node);
    let parent_of = |depth: usize| depth.checked_sub(1).and_then(|d| path.get(d)).copied();
    let mut top = node;
    let mut depth = path.len();
    while let Some(parent) = parent_of(depth) {
        let is_receiver = parent.kind() == "field_expression"
            && parent.child_by_field_name("value").map(|v| v.id()) == Some(top.id());
        if !is_receiver {
            break;
        }
        if let Some(call) = parent_of(depth - 1).filter(|c| c.kind() == "call_expression") {
            let name = parent
                .child_by_field_name("field")
                .and_then(|f| text.get(f.byte_range()))
                .unwrap_or("");
            if name == method {
                return false;
            }
            top = call;
            depth -= 2;
        } else {
            top = parent;
            depth -= 1;
        }
    }
    // A builder kept in a variable and completed later: look for the method on it nearby.
    if let Some(decl) = parent_of(depth).filter(|p| p.kind() == "let_declaration")
        && let Some(block) = parent_of(depth - 1)
        && let Some(pattern) = decl.child_by_field_name("pattern")
    {
        let var = text
            .get(pattern.byte_range())
            .unwrap_or("")
            .trim_start_matches("mut ")
            .trim();
        let scope = text.get(decl.end_byte()..block.end_byte()).unwrap_or("");
        let set = format!("set_{method}(");
        if scope.contains(&format!("{var}.{method}(")) || scope.contains(&format!("{var}.{set}")) {
            return false;
        }
    }
    true
}

/// The text of `node` (a name) and the body of the function it stands in.
fn name_and_function_body<'a, 't>(
    node: Node<'t>,
    text: &'a str,
    anc: &Ancestry<'_, 't>,
) -> Option<(&'a str, Node<'t>)> {
    let name = text.get(node.byte_range())?;
    let body = anc.enclosing_function(node)?.child_by_field_name("body")?;
    Some((name, body))
}

/// Whether `node` names a variable bound by `let` in its function; with `owned`, only when
/// the value is created there (a literal, `vec!`, a constructor), not borrowed from elsewhere.
fn is_local_binding<'t>(node: Node<'t>, text: &str, owned: bool, anc: &Ancestry<'_, 't>) -> bool {
    let Some((name, body)) = name_and_function_body(node, text, anc) else {
        return false;
    };
    let body_text = text.get(body.byte_range()).unwrap_or("");
    let Some(value) = let_value(body_text, name) else {
        return false;
    };
    if !owned {
        return true;
    }
    let value = value.trim_start();
    [
        "vec!",
        "Vec::",
        "String::",
        "format!",
        "[",
        "Box::new",
        "CString::new",
        "\"",
    ]
    .iter()
    .any(|p| value.starts_with(p))
        || value.starts_with(|c: char| c.is_ascii_digit())
        || [
            ".to_vec(",
            ".to_string(",
            ".to_owned(",
            ".into_bytes(",
            ".collect(",
        ]
        .iter()
        .any(|m| value.contains(m))
}

/// The text after `=` (up to the `;`) of the first `let [mut] name … = …;` in `body`.
fn let_value<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = body;
    while let Some(i) = rest.find("let ") {
        let after = &rest[i + 4..];
        let after_mut = after
            .trim_start()
            .strip_prefix("mut ")
            .unwrap_or(after.trim_start());
        let boundary_before =
            i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if boundary_before
            && let Some(tail) = after_mut.strip_prefix(name)
            && !tail.starts_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            let statement = &tail[..tail.find(';').unwrap_or(tail.len())];
            return Some(statement.split_once('=').map_or("", |(_, v)| v));
        }
        rest = after;
    }
    None
}

/// Whether a value is a lock, borrow or permit guard: such a call itself, or a variable bound
/// to one in the same function. Scope guards that run clean-up code on panic (and are
/// forgotten on purpose on the success path) are not.
fn is_lock_guard<'t>(node: Node<'t>, text: &str, anc: &Ancestry<'_, 't>) -> bool {
    const ACQUIRE: &[&str] = &[
        ".lock(",
        ".try_lock(",
        ".write(",
        ".read(",
        ".try_write(",
        ".try_read(",
        ".borrow_mut(",
        ".borrow(",
        ".acquire(",
        ".try_acquire(",
        ".acquire_owned(",
        ".enter(",
        ".upgradable_read(",
    ];
    let value = text.get(node.byte_range()).unwrap_or("");
    if ACQUIRE.iter().any(|a| value.contains(a)) {
        return true;
    }
    if node.kind() != "identifier" {
        return false;
    }
    let Some(body) = anc
        .enclosing_function(node)
        .and_then(|f| f.child_by_field_name("body"))
    else {
        return false;
    };
    let before = text.get(body.start_byte()..node.start_byte()).unwrap_or("");
    let_value(before, value).is_some_and(|v| ACQUIRE.iter().any(|a| v.contains(a)))
}

/// Whether `MaybeUninit::uninit().assume_init()` at `node` visibly produces a type that needs
/// initialisation: the type is known (turbofish, `let` annotation, or the function's return
/// type for a tail expression) and is not itself made of `MaybeUninit`, which is the sound
/// "array of uninitialised slots" idiom. Unknown types are not reported.
fn uninit_of_initialised_type<'t>(node: Node<'t>, text: &str, anc: &Ancestry<'_, 't>) -> bool {
    let own = text.get(node.byte_range()).unwrap_or("");
    if let Some(i) = own.find("::<") {
        return !own[i..].contains("MaybeUninit<") && !own[i + 3..].starts_with("MaybeUninit");
    }
    let mut current = node;
    for parent in anc.ancestors(node) {
        match parent.kind() {
            "unsafe_block" | "parenthesized_expression" | "expression_statement" => {
                current = parent
            }
            "block" => {
                let mut c = parent.walk();
                let last = parent
                    .named_children(&mut c)
                    .filter(|n| !matches!(n.kind(), "line_comment" | "block_comment"))
                    .last();
                if last.map(|l| l.id()) != Some(current.id()) {
                    return false;
                }
                current = parent;
            }
            "let_declaration" => {
                return parent.child_by_field_name("type").is_some_and(|t| {
                    !text
                        .get(t.byte_range())
                        .unwrap_or("")
                        .contains("MaybeUninit")
                });
            }
            "function_item" => {
                return parent.child_by_field_name("return_type").is_some_and(|t| {
                    !text
                        .get(t.byte_range())
                        .unwrap_or("")
                        .contains("MaybeUninit")
                });
            }
            _ => return false,
        }
    }
    false
}

fn is_uninit_vec<'t>(node: Node<'t>, text: &str, anc: &Ancestry<'_, 't>) -> bool {
    let Some((name, body)) = name_and_function_body(node, text, anc) else {
        return false;
    };
    let before = text.get(body.start_byte()..node.start_byte()).unwrap_or("");
    let created_with_capacity = let_value(before, name).is_some_and(|v| {
        let v = v.trim_start();
        v.starts_with("Vec::") && v.contains("with_capacity(")
    });
    if !created_with_capacity {
        return false;
    }
    // Any sign that the spare capacity is written before the length grows.
    let writers = [
        "as_mut_ptr",
        "spare_capacity_mut",
        "ptr::write",
        "copy_nonoverlapping",
        "copy_to",
        "copy_from",
        ".write(",
        "read_buf",
        "fill",
    ];
    !writers.iter().any(|w| before.contains(w))
}

fn is_non_local_http(literal: &str) -> bool {
    let value = literal.trim_matches(|c| c == '"' || c == 'r' || c == '#');
    let Some(rest) = value.strip_prefix("http://") else {
        return false;
    };
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    let host = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or("")
    };
    let local = host.is_empty()
        || host == "localhost"
        || host.ends_with(".localhost")
        || host.starts_with("127.")
        || host == "0.0.0.0"
        || host == "::1"
        || host.ends_with(".local")
        || host.ends_with(".internal")
        || host.ends_with(".test")
        || host == "example.com"
        || host.ends_with(".example.com")
        || host.ends_with(".example");
    !local && !host.contains('{')
}

/// Whether a formatting macro's token tree prints a secret-named value in clear text.
fn formats_secret(node: Node<'_>, text: &str) -> bool {
    formats_secret_within(node, text, 0)
}

/// Token trees nested deeper than this are not looked into (hostile or generated input).
const MAX_TOKEN_DEPTH: usize = 200;

fn formats_secret_within(node: Node<'_>, text: &str, depth: usize) -> bool {
    if depth > MAX_TOKEN_DEPTH {
        crate::security::cut::record(node.start_byte(), crate::security::cut::Cut::TokenDepth);
        return false;
    }
    let mut cursor = node.walk();
    let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
    for (i, child) in children.iter().enumerate() {
        match child.kind() {
            "identifier" | "field_identifier" => {
                let name = text.get(child.byte_range()).unwrap_or("");
                // A bare `token` is as often a lexer or event token as a credential.
                if !names_secret(name) || name.eq_ignore_ascii_case("token") {
                    continue;
                }
                // `password.len()`, `token.is_some()`: the value itself is not printed.
                let next_is_method = children.get(i + 1).is_some_and(|n| {
                    text.get(n.byte_range()) == Some(".")
                        && children.get(i + 2).is_some_and(|m| {
                            let method = text.get(m.byte_range()).unwrap_or("");
                            matches!(
                                method,
                                "len" | "is_empty" | "is_some" | "is_none" | "chars" | "count"
                            )
                        })
                });
                // `key = value` named arguments, and the left side of `a.password` when the
                // field is what matters.
                let next_is_assign = children
                    .get(i + 1)
                    .is_some_and(|n| text.get(n.byte_range()) == Some("="));
                if !next_is_method && !next_is_assign {
                    return true;
                }
            }
            "string_literal" => {
                let body = literal_content(*child, text).unwrap_or("");
                for piece in body.split('{').skip(1) {
                    let name = piece.split(['}', ':']).next().unwrap_or("").trim();
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                        && names_secret(name)
                        && !name.eq_ignore_ascii_case("token")
                    {
                        return true;
                    }
                }
            }
            "token_tree" if formats_secret_within(*child, text, depth + 1) => return true,
            _ => {}
        }
    }
    false
}

fn not_zeroable(ty: &str) -> bool {
    let ty = ty.trim();
    ty.starts_with('&')
        || ty.starts_with("fn(")
        || ty.starts_with("fn (")
        || [
            "Box<", "Vec<", "String", "NonNull", "Arc<", "Rc<", "NonZero", "bool", "char",
        ]
        .iter()
        .any(|p| ty.starts_with(p) || ty.contains(&format!("::{p}")))
}

/// Whether the pointer variable `ptr` (an identifier being dereferenced) was freed — passed to
/// `dealloc`, `free` or `drop_in_place`, or turned back into a `Box` that was dropped — or set
/// to null, by an earlier statement of a block enclosing it up to and including `scope`, with
/// no reassignment and no null check of the name in between. Looking no further than `scope`
/// (the block the rule's pattern starts at) keeps the answer inside the code the anchor gate
/// judged.
fn freed_or_null<'t>(ptr: Node<'t>, scope: Node<'t>, text: &str, anc: &Ancestry<'_, 't>) -> bool {
    let Some(name) = text.get(ptr.byte_range()) else {
        return false;
    };
    let mut dropped: Vec<&str> = Vec::new();
    let mut checked = false;
    let mut current = ptr;
    for parent in anc.ancestors(ptr) {
        if matches!(parent.kind(), "function_item" | "closure_expression") {
            return false;
        }
        if parent.kind() == "block" && parent.byte_range().end <= scope.byte_range().end {
            // The statements before `current`, nearest first.
            let mut c = parent.walk();
            let before: Vec<Node<'t>> = parent
                .named_children(&mut c)
                .take_while(|n| n.id() != current.id())
                .collect();
            for s in before.into_iter().rev() {
                let code = text.get(s.byte_range()).unwrap_or("");
                if s.kind() == "let_declaration"
                    && s.child_by_field_name("pattern").is_some_and(|p| {
                        text.get(p.byte_range())
                            .is_some_and(|p| p.trim_start_matches("mut ") == name)
                    })
                {
                    let value = s
                        .child_by_field_name("value")
                        .and_then(|v| text.get(v.byte_range()))
                        .unwrap_or("");
                    return !checked && is_null_constructor(value);
                }
                if let Some(from_box) = s
                    .child_by_field_name("pattern")
                    .and_then(|p| text.get(p.byte_range()))
                    .filter(|bound| dropped.contains(bound))
                    .and(s.child_by_field_name("value"))
                    .and_then(|v| text.get(v.byte_range()))
                    && calls_with(from_box, "Box::from_raw", name)
                {
                    return true;
                }
                if assigns(code, name) {
                    return !checked
                        && code
                            .split_once('=')
                            .is_some_and(|(_, v)| is_null_constructor(v));
                }
                if ["dealloc", "free", "drop_in_place"]
                    .iter()
                    .any(|f| calls_with(code, f, name))
                    || calls_with(code, "drop(Box::from_raw", name)
                {
                    return true;
                }
                if let Some(arg) = code.trim().strip_prefix("drop(") {
                    let arg = arg.split(')').next().unwrap_or("").trim();
                    if !arg.is_empty() {
                        dropped.push(arg);
                    }
                }
                if code.contains(&format!("{name}.is_null()")) {
                    checked = true;
                }
            }
        }
        if parent.id() == scope.id() {
            return false;
        }
        current = parent;
    }
    false
}

fn is_null_constructor(value: &str) -> bool {
    let value = value.trim().trim_end_matches(';').trim();
    let value = value.split("::<").next().unwrap_or(value);
    value.ends_with("ptr::null()")
        || value.ends_with("ptr::null_mut()")
        || value == "null()"
        || value == "null_mut()"
        || value.ends_with("ptr::null")
        || value.ends_with("ptr::null_mut")
}

/// Whether `code` calls `function` (a name or a path ending in it) with `name` as its first
/// argument, possibly behind `&`, `&mut`, `*` or a cast.
fn calls_with(code: &str, function: &str, name: &str) -> bool {
    let mut rest = code;
    while let Some(at) = rest.find(function) {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + function.len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(args) = after.trim_start().strip_prefix('(') else {
            continue;
        };
        let arg = args
            .trim_start()
            .trim_start_matches('&')
            .trim_start()
            .trim_start_matches("mut ")
            .trim_start_matches('*')
            .trim_start();
        if arg.starts_with(name)
            && !arg[name.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.')
        {
            return true;
        }
    }
    false
}

/// Whether a statement assigns the variable `name` (`name = …`).
fn assigns(code: &str, name: &str) -> bool {
    code.trim_start()
        .strip_prefix(name)
        .map(str::trim_start)
        .is_some_and(|r| r.starts_with('=') && !r.starts_with("=="))
}

/// The value of a flag when it is a constant: a literal, `!` of one, or a name bound once to
/// one — a `let` in the enclosing function that is never reassigned, or a `const`/`static` of
/// the file. `None` when the value is not known here (a parameter, a field, a call).
fn constant_bool<'t>(
    node: Node<'t>,
    text: &str,
    depth: usize,
    anc: &Ancestry<'_, 't>,
    searches: &FileSearches,
) -> Option<bool> {
    if depth > 8 {
        return None;
    }
    let code = text.get(node.byte_range())?.trim();
    match node.kind() {
        "boolean_literal" => Some(code == "true"),
        "unary_expression" if code.starts_with('!') => {
            constant_bool(node.named_child(0)?, text, depth + 1, anc, searches).map(|b| !b)
        }
        "parenthesized_expression" => {
            constant_bool(node.named_child(0)?, text, depth + 1, anc, searches)
        }
        "identifier" | "scoped_identifier" => {
            let name = code.rsplit("::").next()?.trim();
            let function = anc.enclosing_function(node);
            let scope = function
                .and_then(|f| text.get(f.byte_range()))
                .unwrap_or("");
            let escaped = regex::escape(name);
            let binding = name_regex(&format!(
                r"\blet\s+(mut\s+)?{escaped}\s*(:\s*bool\s*)?=\s*(true|false)\s*;"
            ))
            .ok()?;
            let bound = name_regex(&format!(r"\blet\s+(mut\s+)?{escaped}\b")).ok()?;
            let assigned = name_regex(&format!(r"(^|[^.\w]){escaped}\s*=[^=]")).ok()?;
            if bound.find_iter(scope).count() == 1
                && let Some(c) = binding.captures(scope)
            {
                let rest = &scope[c.get(0).map_or(0, |m| m.end())..];
                if !assigned.is_match(rest) {
                    return Some(c.get(3)?.as_str() == "true");
                }
                return None;
            }
            if bound.is_match(scope) {
                return None;
            }
            let item = format!(r"\b(const|static)\s+{escaped}\s*:\s*bool\s*=\s*(true|false)\s*;");
            Some(searches.only_match(&item, 2, text)? == "true")
        }
        _ => None,
    }
}

/// The one `let` of `name` in `scope` (a function's text) and its initialiser, when `name` is
/// bound exactly once there and never assigned or lent mutably after (so the value at any use
/// is the initialiser's).
fn sole_binding<'s>(scope: &'s str, name: &str) -> Option<&'s str> {
    let escaped = regex::escape(name);
    let bound = name_regex(&format!(r"\blet\s+(mut\s+)?{escaped}\b")).ok()?;
    if bound.find_iter(scope).count() != 1 {
        return None;
    }
    // The initialiser runs to the `;` that ends its line (`[0u8; 16]` holds one too).
    let binding = name_regex(&format!(
        r"(?m)\blet\s+(mut\s+)?{escaped}\s*(:[^=;]+)?=\s*([^\n]+?);[ \t]*(//.*)?$"
    ))
    .ok()?;
    let c = binding.captures(scope)?;
    let init = c.get(3)?.as_str();
    let rest = &scope[c.get(0)?.end()..];
    let assigned = name_regex(&format!(r"(^|[^.\w]){escaped}\s*=[^=]")).ok()?;
    let lent = name_regex(&format!(r"&\s*mut\s+{escaped}\b|\b{escaped}\s*\.\s*(fill|try_fill|fill_bytes|try_fill_bytes|copy_from_slice|clone_from_slice|as_mut)")).ok()?;
    (!assigned.is_match(rest) && !lent.is_match(rest)).then_some(init)
}

/// The text of the enclosing function of `node`, or the whole text outside any.
fn scope_of<'s, 't>(node: Node<'t>, text: &'s str, anc: &Ancestry<'_, 't>) -> &'s str {
    anc.enclosing_function(node)
        .and_then(|f| text.get(f.byte_range()))
        .unwrap_or(text)
}

/// The URL a request argument holds when it is known from the code: a literal, a `format!`
/// template (its placeholders stay as they are: `http://{host}/x`), `String::from`, `.to_string()`
/// or a reference to either, or a local bound once to one of them (value tracking through
/// `let`, see [`sole_binding`]).
fn url_value<'t>(
    node: Node<'t>,
    text: &str,
    depth: usize,
    anc: &Ancestry<'_, 't>,
) -> Option<String> {
    let code = text.get(node.byte_range())?.trim();
    url_of_code(code, node, text, depth, anc)
}

fn url_of_code<'t>(
    code: &str,
    node: Node<'t>,
    text: &str,
    depth: usize,
    anc: &Ancestry<'_, 't>,
) -> Option<String> {
    if depth > 4 {
        return None;
    }
    let code = code.trim().trim_start_matches('&').trim();
    let code = code
        .strip_suffix(".to_string()")
        .or_else(|| code.strip_suffix(".to_owned()"))
        .or_else(|| code.strip_suffix(".as_str()"))
        .unwrap_or(code)
        .trim();
    let inner = code
        .strip_prefix("format!(")
        .or_else(|| code.strip_prefix("String::from("))
        .or_else(|| code.strip_prefix("&format!("))
        .map(str::trim_start);
    let literal = inner.unwrap_or(code);
    if let Some(rest) = literal.strip_prefix('"') {
        let value = rest.split('"').next()?;
        // A template's placeholders are values the code does not show: `http://{host}/x`
        // goes wherever `host` says, so it counts as a remote host (`localhost:{port}` stays
        // local).
        return Some(if inner.is_some() {
            placeholders_as_hosts(value)
        } else {
            value.to_string()
        });
    }
    if inner.is_none() && code.chars().all(|c| c.is_alphanumeric() || c == '_') && !code.is_empty()
    {
        let init = sole_binding(scope_of(node, text, anc), code)?;
        return url_of_code(init, node, text, depth + 1, anc);
    }
    None
}

/// Whether the bytes an argument holds are fixed in the code: a byte string, an array of
/// integer literals or `[0u8; 16]`, through `&`, `.into()`, `GenericArray::from_slice(..)` and
/// friends, a local bound once to one (never filled afterwards: `getrandom(&mut iv)` makes it
/// random), or a `const`/`static` of the file holding one.
fn constant_bytes<'t>(
    node: Node<'t>,
    text: &str,
    depth: usize,
    anc: &Ancestry<'_, 't>,
    searches: &FileSearches,
) -> bool {
    let Some(code) = text.get(node.byte_range()) else {
        return false;
    };
    constant_bytes_code(code, node, text, depth, anc, searches)
}

fn constant_bytes_code<'t>(
    code: &str,
    node: Node<'t>,
    text: &str,
    depth: usize,
    anc: &Ancestry<'_, 't>,
    searches: &FileSearches,
) -> bool {
    static ARRAY: OnceLock<Regex> = OnceLock::new();
    static REPEAT: OnceLock<Regex> = OnceLock::new();
    if depth > 4 {
        return false;
    }
    let mut code = code.trim();
    loop {
        let before = code;
        code = code.trim_start_matches('&').trim();
        for suffix in [
            ".into()",
            ".as_slice()",
            ".as_ref()",
            ".to_vec()",
            ".clone()",
        ] {
            if let Some(c) = code.strip_suffix(suffix) {
                code = c.trim();
            }
        }
        for wrapper in [
            "GenericArray::from_slice(",
            "GenericArray::from(",
            "Nonce::from_slice(",
            "Iv::from_slice(",
            "Key::from_slice(",
            "from_slice(",
        ] {
            if let Some(start) = code.find(wrapper)
                && let Some(c) = code[start + wrapper.len()..].strip_suffix(')')
            {
                code = c.trim();
            }
        }
        if code.starts_with('(') && code.ends_with(')') {
            code = code[1..code.len() - 1].trim();
        }
        if code == before {
            break;
        }
    }
    if code.starts_with("b\"") || code.starts_with("br\"") || code.starts_with("br#") {
        return true;
    }
    let array = ARRAY.get_or_init(|| {
        Regex::new(r"^\[\s*((0x[0-9a-fA-F_]+|[0-9][0-9_]*)(u8|u16|u32|u64|i8|i32)?\s*,?\s*)+\]$")
            .expect("valid regex")
    });
    let repeat = REPEAT.get_or_init(|| {
        Regex::new(r"^\[\s*(0x[0-9a-fA-F_]+|[0-9][0-9_]*)(u8|u16|u32|u64|i8|i32)?\s*;\s*[0-9A-Z_a-z]+\s*\]$")
            .expect("valid regex")
    });
    if array.is_match(code) || repeat.is_match(code) {
        return true;
    }
    if code.is_empty() || !code.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return false;
    }
    if let Some(init) = sole_binding(scope_of(node, text, anc), code) {
        return constant_bytes_code(init, node, text, depth + 1, anc, searches);
    }
    // A local bound some other way (a parameter, twice, filled) is not known.
    let escaped = regex::escape(code);
    let Ok(bound) = name_regex(&format!(r"\blet\s+(mut\s+)?{escaped}\b|\b{escaped}\s*:")) else {
        return false;
    };
    if bound.is_match(scope_of(node, text, anc)) {
        return false;
    }
    let item = format!(r"(?m)\b(const|static)\s+{escaped}\s*:[^=]+=\s*([^\n]+?);[ \t]*(//.*)?$");
    searches
        .only_match(&item, 2, text)
        .is_some_and(|init| constant_bytes_code(&init, node, text, depth + 1, anc, searches))
}

/// Searches of the whole file that the value-tracking predicates would repeat for every hit
/// (the one `const` or `static` of a name), each made once per scan of one text: a search per
/// hit made a file of many such hits scan in quadratic time.
#[derive(Default)]
pub(super) struct FileSearches {
    found: std::cell::RefCell<std::collections::HashMap<(String, usize), Option<String>>>,
}

impl FileSearches {
    /// Capture `group` of the only match of `pattern` in `text`; `None` when there is no match,
    /// more than one, or the pattern does not compile. Every call on one value must pass the
    /// same `text`.
    fn only_match(&self, pattern: &str, group: usize, text: &str) -> Option<String> {
        let key = (pattern.to_string(), group);
        if let Some(known) = self.found.borrow().get(&key) {
            return known.clone();
        }
        let value = name_regex(pattern).ok().and_then(|regex| {
            let mut found = regex.captures_iter(text);
            match (found.next(), found.next()) {
                (Some(c), None) => c.get(group).map(|m| m.as_str().to_string()),
                _ => None,
            }
        });
        self.found.borrow_mut().insert(key, value.clone());
        value
    }
}

/// `value` with each `{…}` placeholder replaced by a plain name.
fn placeholders_as_hosts(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push_str("remote");
                }
                depth += 1;
            }
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}
