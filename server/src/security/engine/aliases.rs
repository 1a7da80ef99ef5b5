//! `use … as …` renames, resolved before the rules match: a rule that knows `des::Des` also
//! knows `Legacy` after `use des::Des as Legacy;`, and `legacy::Des` after `use des as legacy;`.
//!
//! Rules match names by their text (`#match?`, `#eq?`, `#any-of?`). The query cursor asks
//! [`Aliases::text`] for a captured node's text, which gives the renamed path in place of the
//! alias that starts it; offsets, the tree and every other predicate are untouched. The gate
//! sees the alias too ([`Aliases::extra_anchors`]): an item that names `Legacy` holds the
//! anchor words of `des::Des`.

use std::borrow::Cow;
use std::ops::Range;

use tree_sitter::Node;

use crate::security::rules::{Anchors, Gate};

/// The renames of a file's top-level `use` declarations (those inside modules and functions
/// are not followed).
#[derive(Default)]
pub(crate) struct Aliases {
    /// (alias, the path it stands for), in the order written.
    renames: Vec<(String, String)>,
}

impl Aliases {
    /// The renames among `top`, the file's top-level nodes.
    pub(crate) fn of(top: &[Node<'_>], text: &str) -> Aliases {
        let mut renames = Vec::new();
        for node in top {
            if node.kind() != "use_declaration" {
                continue;
            }
            if let Some(argument) = node.child_by_field_name("argument") {
                collect(argument, "", text, &mut renames, 0);
            }
        }
        Aliases { renames }
    }

    /// A digest of the renames, 0 when there are none.
    pub(crate) fn digest(&self) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        if self.renames.is_empty() {
            return 0;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.renames.hash(&mut hasher);
        hasher.finish()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.renames.is_empty()
    }

    /// The text a rule sees for `node`: its own, with an alias at its start replaced by the
    /// path the alias stands for (`Legacy::new` → `des::Des::new`). Only a whole first path
    /// segment counts: `Legacy`, `Legacy::…` and `Legacy<…>`, not `LegacyMode`.
    pub(crate) fn text<'a>(&self, own: &'a [u8]) -> Cow<'a, [u8]> {
        for (alias, path) in &self.renames {
            let Some(rest) = own.strip_prefix(alias.as_bytes()) else {
                continue;
            };
            if rest.is_empty() || rest.starts_with(b"::") || rest.starts_with(b"<") {
                let mut out = Vec::with_capacity(path.len() + rest.len());
                out.extend_from_slice(path.as_bytes());
                out.extend_from_slice(rest);
                return Cow::Owned(out);
            }
        }
        Cow::Borrowed(own)
    }

    /// The anchor words an alias brings where it is used: for each rename whose path holds
    /// anchor words, every use of the alias as a word inside `span` counts as holding them.
    /// Returns `None` when no rename brings any.
    pub(crate) fn extra_anchors(
        &self,
        gate: &Gate,
        anchors: &Anchors,
        text: &str,
        span: Range<usize>,
    ) -> Option<Anchors> {
        let mut extra = Vec::new();
        for (alias, path) in &self.renames {
            let words = gate.words_in(path);
            if words.is_empty() {
                continue;
            }
            for at in uses(alias, text, span.clone()) {
                extra.extend(words.iter().map(|&word| (at.start, at.end, word)));
            }
        }
        (!extra.is_empty()).then(|| anchors.with(extra))
    }

    /// Where inside `span` the aliases whose renamed path `wanted` accepts are used as a word.
    pub(crate) fn uses_where(
        &self,
        text: &str,
        span: Range<usize>,
        wanted: impl Fn(&str) -> bool,
    ) -> Vec<Range<usize>> {
        self.renames
            .iter()
            .filter(|(_, path)| wanted(path))
            .flat_map(|(alias, _)| uses(alias, text, span.clone()))
            .collect()
    }
}

/// Where `alias` occurs as a whole word in `text[span]`, as file offsets.
fn uses<'a>(
    alias: &'a str,
    text: &'a str,
    span: Range<usize>,
) -> impl Iterator<Item = Range<usize>> + 'a {
    let area = text.get(span.clone()).unwrap_or_default();
    let word_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    area.match_indices(alias).filter_map(move |(at, _)| {
        let start = span.start + at;
        let end = start + alias.len();
        let before = start.checked_sub(1).map(|i| text.as_bytes()[i]);
        let after = text.as_bytes().get(end).copied();
        (!before.is_some_and(word_char) && !after.is_some_and(word_char)).then_some(start..end)
    })
}

/// How deep `use` lists are followed: far beyond real code, and a bound on the recursion for
/// a hostile file of thousands of nested braces.
const MAX_USE_DEPTH: usize = 32;

/// Walks a `use` tree below `prefix` (the path of the enclosing `a::b::{…}`), collecting
/// every `path as alias`.
fn collect(
    node: Node<'_>,
    prefix: &str,
    text: &str,
    out: &mut Vec<(String, String)>,
    depth: usize,
) {
    if depth > MAX_USE_DEPTH {
        return;
    }
    let joined = |path: &str| {
        if prefix.is_empty() {
            path.to_string()
        } else {
            format!("{prefix}::{path}")
        }
    };
    match node.kind() {
        "use_as_clause" => {
            let (Some(path), Some(alias)) = (
                node.child_by_field_name("path"),
                node.child_by_field_name("alias"),
            ) else {
                return;
            };
            let (Some(path), Some(alias)) =
                (text.get(path.byte_range()), text.get(alias.byte_range()))
            else {
                return;
            };
            // `use x as _;` brings a trait into scope without a name. An alias that is not a
            // plain word, or an empty path, is never taken: an empty alias would match
            // everywhere (tree-sitter's recovery gave none in the broken forms tried, but a
            // zero-width missing node is possible in principle).
            let word = |t: &str| {
                !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            };
            if alias != "_" && word(alias) && !path.is_empty() {
                out.push((alias.to_string(), joined(path)));
            }
        }
        "scoped_use_list" => {
            let inner = node
                .child_by_field_name("path")
                .and_then(|p| text.get(p.byte_range()))
                .map(joined)
                .unwrap_or_else(|| prefix.to_string());
            if let Some(list) = node.child_by_field_name("list") {
                collect(list, &inner, text, out, depth + 1);
            }
        }
        "use_list" => {
            let mut cursor = node.walk();
            for child in node.named_children(&mut cursor) {
                collect(child, prefix, text, out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases_of(source: &str) -> Vec<(String, String)> {
        let tree = crate::syntax::Language::by_name("rust")
            .and_then(|language| language.parse(source))
            .expect("Rust parses");
        let root = tree.root_node();
        let mut cursor = root.walk();
        let top: Vec<Node<'_>> = root.named_children(&mut cursor).collect();
        Aliases::of(&top, source).renames
    }

    #[test]
    fn renames_are_found_in_plain_nested_and_listed_uses() {
        let found = aliases_of(
            "use des::Des as Legacy;\n\
             use cipher::{KeyInit, block::{Ecb as Mode, Cbc}};\n\
             use md5 as digest;\n\
             use std::fmt::Write as _;\n\
             use {rc4::Rc4 as Stream};\n\
             fn f() { use sha1::Sha1 as Inner; }\n",
        );
        let pairs: Vec<(&str, &str)> = found
            .iter()
            .map(|(a, p)| (a.as_str(), p.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("Legacy", "des::Des"),
                ("Mode", "cipher::block::Ecb"),
                ("digest", "md5"),
                ("Stream", "rc4::Rc4"),
            ]
        );
    }

    #[test]
    fn thousands_of_nested_use_lists_are_cut_at_the_depth_bound() {
        let deep = format!(
            "use {}x::Des as Deep{};\n",
            "a::{".repeat(5000),
            "}".repeat(5000)
        );
        assert!(aliases_of(&deep).is_empty());
        let shallow = format!(
            "use {}des::Des as Near{};\n",
            "a::{".repeat(3),
            "}".repeat(3)
        );
        assert_eq!(
            aliases_of(&shallow),
            [("Near".to_string(), "a::a::a::des::Des".to_string())]
        );
    }

    #[test]
    fn only_a_whole_first_segment_is_replaced() {
        let aliases = Aliases {
            renames: vec![("Legacy".into(), "des::Des".into())],
        };
        let seen = |t: &str| String::from_utf8(aliases.text(t.as_bytes()).into_owned()).unwrap();
        assert_eq!(seen("Legacy"), "des::Des");
        assert_eq!(seen("Legacy::new"), "des::Des::new");
        assert_eq!(seen("Legacy<U16>"), "des::Des<U16>");
        assert_eq!(seen("LegacyMode::new"), "LegacyMode::new");
        assert_eq!(seen("my::Legacy"), "my::Legacy");
    }
}
