//! Macro calls, whose arguments the grammar leaves as token trees: splitting them into
//! arguments, the placeholders of a format string, the taint of a `format!`-like argument
//! list, the variables a run of tokens reads, and which macros are log sinks.

use std::collections::HashSet;

use tree_sitter::Node;

use super::barriers::is_sanitizer;
use super::syntax::{is_constant_name, last_segment};
use super::{Env, Flow, MAX_DEPTH, Taint, union};
use crate::security::ancestry::Ancestry;
use crate::security::engine::{literal_content, node_text};

impl<'r, 't> Flow<'_, 'r, 't> {
    /// The taint of a `format!`-like argument list: the format string's placeholders, inline
    /// names (`{name}`) and positional arguments. With `debug_barrier`, values printed with
    /// `{:?}` do not count (Debug formatting escapes newlines and quotes).
    pub(super) fn format_taint(
        &self,
        args: &[Vec<Node<'t>>],
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
    fn token_keys(&self, tokens: &[Node<'t>]) -> Vec<String> {
        self.token_keys_within(tokens, 0)
    }

    /// [`token_keys`](Self::token_keys) of token trees nested `depth` deep; deeper groups
    /// than `MAX_DEPTH` are not read.
    fn token_keys_within(&self, tokens: &[Node<'t>], depth: usize) -> Vec<String> {
        let mut keys = Vec::new();
        if depth > MAX_DEPTH {
            if let Some(first) = tokens.first() {
                crate::security::cut::record(
                    first.start_byte(),
                    crate::security::cut::Cut::FlowDepth,
                );
            }
            return keys;
        }
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
                let inner: Vec<Node<'t>> = n.children(&mut cursor).collect();
                keys.extend(self.token_keys_within(&inner, depth + 1));
            }
            i += 1;
        }
        keys
    }

    pub(super) fn tokens_taint(&self, tokens: &[Node<'t>], env: &Env) -> Option<Taint> {
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

    fn tokens_dynamic(&self, tokens: &[Node<'t>]) -> bool {
        self.token_keys(tokens).iter().any(|k| {
            let root = k.split('.').next().unwrap_or(k);
            !(is_constant_name(root) || (k == root && self.int_names.contains(root)))
        })
    }
}

pub(super) fn token_tree_of(node: Node<'_>) -> Option<Node<'_>> {
    let mut cursor = node.walk();
    node.children(&mut cursor)
        .find(|c| c.kind() == "token_tree")
}

/// Splits a macro's token tree into its top-level comma-separated arguments.
pub(super) fn split_args(tt: Node<'_>) -> Vec<Vec<Node<'_>>> {
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

pub(super) fn tokens_key(tokens: &[Node<'_>], text: &str) -> Option<String> {
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
                // `end` is a byte offset into `rest`: skip to the closing `}` by position, not
                // by counting characters, which a multi-byte fill such as `─` would overshoot.
                let close = i + 1 + end;
                while chars.next_if(|(j, _)| *j <= close).is_some() {}
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

pub(super) fn is_log_sink<'t>(node: Node<'t>, text: &str, ancestry: &Ancestry<'_, 't>) -> bool {
    node.kind() == "token_tree"
        && ancestry.parent(node).is_some_and(|m| {
            m.kind() == "macro_invocation"
                && m.child_by_field_name("macro").is_some_and(|n| {
                    matches!(
                        last_segment(node_text(n, text)),
                        "info" | "warn" | "error" | "debug" | "trace" | "log" | "event"
                    )
                })
        })
}

#[cfg(test)]
mod tests {
    use super::parse_placeholders;

    /// `(name, index, debug)` of each placeholder, in order.
    fn placeholders(fmt: &str) -> Vec<(Option<String>, Option<usize>, bool)> {
        parse_placeholders(fmt)
            .into_iter()
            .map(|p| (p.name, p.index, p.debug))
            .collect()
    }

    #[test]
    fn placeholders_after_a_multi_byte_fill_character_are_all_found() {
        // `─` is three bytes long: the placeholder after `{:─^20}` must not be skipped.
        assert_eq!(
            placeholders("{:─^20}{}"),
            vec![(None, None, false), (None, None, false)]
        );
        assert_eq!(
            placeholders("{:─^20}{}{name:?}{1}"),
            vec![
                (None, None, false),
                (None, None, false),
                (Some("name".to_string()), None, true),
                (None, Some(1), false),
            ]
        );
        // Multi-byte text inside a placeholder's own spec and around it.
        assert_eq!(
            placeholders("é{:é<3}ü{}{{}}"),
            vec![(None, None, false), (None, None, false)]
        );
    }
}
