//! Parsing only the parts of a large seed file that a bundle reads: the top-level items around
//! the request, the top-level `use` and `extern crate` declarations, and the modules that may
//! be test modules.
//!
//! For the largest files the seed's parse and the structure query over its tree were most of a
//! bundle's time (its p95), yet every reader of the seed's tree looks only at those parts: the
//! structure query (the items around the selection, the imports in scope, the test module's
//! header and imports), name resolution and receiver types (the selection and its enclosing
//! function), and the file's own re-exports (its top-level `use`s). Everything else the bundle
//! knows of the file (definitions, references) comes from the index's tags of the same text.
//!
//! A lexical scan (comments, strings, raw strings, characters against lifetimes, brackets)
//! cuts the text into top-level chunks, each one whole item with its doc comments and
//! attributes; tree-sitter parses the chosen chunks alone (`Parser::set_included_ranges`),
//! and its nodes keep their byte positions in the whole text. A scan that cut an item in two
//! shows up as an error in the tree, and the caller then parses the whole file, as it would
//! a file that has errors anyway.

use std::ops::Range;

use tree_sitter::{Point, Tree};

use super::structure::LineIndex;
use crate::syntax::Language;

/// Files shorter than this are parsed whole: their parse costs little, and the whole tree
/// is what the cache of seeds keeps for the next bundle of the same text.
pub(super) const PARTIAL_PARSE_BYTES: usize = 16 * 1024;

/// Lines kept on either side of the request: a cursor outside every item selects the lines
/// around it, and those need their tree for name resolution.
const AROUND_LINES: u32 = 10;

/// A tree of `text` holding only the chunks a bundle for `range` reads (see the module
/// docs); `None` when that would save little, or when the partial tree has an error, so that
/// the caller parses the whole text.
pub(super) fn parse_needed(
    rust: &Language,
    text: &str,
    lines: &LineIndex,
    range: &Range<usize>,
) -> Option<Tree> {
    let first = lines.line_of(range.start).saturating_sub(AROUND_LINES);
    let last = lines.line_of(range.end) + AROUND_LINES;
    let window = lines.start_of(first)..lines.end_of(last);
    let mut ranges: Vec<tree_sitter::Range> = Vec::new();
    let mut kept = 0;
    let chunks = top_level_chunks(text);
    for (at, chunk) in chunks.iter().enumerate() {
        // With the whitespace after it: the lexer looks one character past a token's end
        // before it takes the token as ended.
        let chunk = chunk.start..chunks.get(at + 1).map_or(text.len(), |next| next.start);
        let near = chunk.start < window.end && window.start < chunk.end;
        if !near && !needed_anywhere(&text[chunk.clone()]) {
            continue;
        }
        kept += chunk.len();
        ranges.push(tree_sitter::Range {
            start_byte: chunk.start,
            end_byte: chunk.end,
            start_point: point(lines, chunk.start),
            end_point: point(lines, chunk.end),
        });
    }
    // Most of the file is needed: a whole parse is as cheap, and is a tree the seed cache can
    // keep for other selections in the same text.
    if ranges.is_empty() || kept > text.len() * 3 / 4 {
        return None;
    }
    let mut parser = rust.parser();
    parser.set_included_ranges(&ranges).ok()?;
    let tree = parser.parse(text, None)?;
    (!tree.root_node().has_error()).then_some(tree)
}

fn point(lines: &LineIndex, byte: usize) -> Point {
    let row = lines.line_of(byte);
    Point {
        row: row as usize,
        column: byte - lines.start_of(row),
    }
}

/// Whether a chunk away from the request is still read: a `use` or `extern crate`
/// declaration (the imports in scope and the file's re-exports), or a module that mentions
/// `test` (a `#[cfg(test)]` module or `mod tests`, or one holding such a module, whose header
/// and imports the bundle shows).
fn needed_anywhere(chunk: &str) -> bool {
    let mut words = leading_words(chunk);
    match words.next() {
        Some("use") => true,
        Some("extern") => words.next() == Some("crate"),
        Some("mod") => chunk.contains("test"),
        _ => false,
    }
}

/// The words an item starts with, after its doc comments, attributes and visibility.
fn leading_words(chunk: &str) -> impl Iterator<Item = &str> {
    let bytes = chunk.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if let Some(end) = skip_comment_or_literal(bytes, i) {
            i = end;
        } else if bytes.get(i) == Some(&b'#') {
            // `#[…]` or `#![…]`: to the bracket that closes it.
            let open = if bytes.get(i + 1) == Some(&b'!') {
                i + 2
            } else {
                i + 1
            };
            i = close_of(bytes, open).map_or(bytes.len(), |c| c + 1);
        } else if chunk[i..].starts_with("pub") && !is_ident(bytes.get(i + 3).copied()) {
            i += 3;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if bytes.get(i) == Some(&b'(') {
                i = close_of(bytes, i).map_or(bytes.len(), |c| c + 1);
            }
        } else {
            break;
        }
    }
    chunk[i.min(chunk.len())..]
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// The byte of the bracket closing the one at `open`, skipping comments and literals.
fn close_of(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        if let Some(end) = skip_comment_or_literal(bytes, i) {
            i = end;
            continue;
        }
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The top-level chunks of `text`, in order: each runs from its first byte that is not
/// whitespace (doc comments and attributes included) to the `;` or the `}` that ends it at
/// bracket depth 0. A brace followed by `;` (`use a::{b, c};`) does not end it, and a `const`,
/// `static` or `type` item ends only at its `;`, since its value may hold a block (`const X:
/// u32 = { 1 } + { 2 };`). Whatever the scan cannot tell apart stays in
/// one chunk, which is always safe; only a cut inside an item is not, and the parse shows it.
pub(super) fn top_level_chunks(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut chunks = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let from = *start.get_or_insert(i);
        if let Some(end) = skip_comment_or_literal(bytes, i) {
            i = end;
            continue;
        }
        match byte {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'}' => {
                depth = depth.saturating_sub(1);
                // `use a::{b, c};` and `m! { … };` end at the `;` right after the brace.
                let semicolon_next = bytes[i + 1..]
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|&b| b == b';');
                if depth == 0 && !semicolon_next && !ends_at_semicolon(&text[from..i]) {
                    chunks.push(from..i + 1);
                    start = None;
                }
            }
            b';' if depth == 0 => {
                chunks.push(from..i + 1);
                start = None;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(from) = start {
        chunks.push(from..bytes.len());
    }
    chunks
}

/// Whether the item a chunk starts is a `const`, `static` or `type` (not a `const fn`), which
/// ends at its `;` even after a block.
fn ends_at_semicolon(chunk: &str) -> bool {
    let mut words = leading_words(chunk);
    match words.next() {
        Some("const" | "static") => {
            !matches!(words.next(), Some("fn" | "unsafe" | "async" | "extern"))
        }
        Some("type") => true,
        _ => false,
    }
}

fn is_ident(byte: Option<u8>) -> bool {
    byte.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80)
}

/// Where the comment, string, raw string or character literal at `i` ends (one past it), if
/// one starts there. An unterminated one runs to the end of the text.
fn skip_comment_or_literal(bytes: &[u8], i: usize) -> Option<usize> {
    let at = |k: usize| bytes.get(k).copied();
    match at(i)? {
        b'/' if at(i + 1) == Some(b'/') => Some(
            bytes[i..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |p| i + p),
        ),
        b'/' if at(i + 1) == Some(b'*') => {
            // Block comments nest.
            let (mut depth, mut k) = (1usize, i + 2);
            while k < bytes.len() {
                if bytes[k] == b'/' && at(k + 1) == Some(b'*') {
                    depth += 1;
                    k += 2;
                } else if bytes[k] == b'*' && at(k + 1) == Some(b'/') {
                    depth -= 1;
                    k += 2;
                    if depth == 0 {
                        return Some(k);
                    }
                } else {
                    k += 1;
                }
            }
            Some(bytes.len())
        }
        b'"' => {
            let mut k = i + 1;
            while k < bytes.len() {
                match bytes[k] {
                    b'\\' => k += 2,
                    b'"' => return Some(k + 1),
                    _ => k += 1,
                }
            }
            Some(bytes.len())
        }
        b'\'' => {
            // `'\n'`, `'\u{7f}'`, `'\''`: to the next quote after the escape's first two bytes.
            if at(i + 1) == Some(b'\\') {
                return bytes
                    .get(i + 3..(i + 14).min(bytes.len()))?
                    .iter()
                    .position(|&b| b == b'\'')
                    .map(|p| i + 3 + p + 1);
            }
            // `'x'` (of any UTF-8 width) is a character; `'a` without a closing quote after
            // one character is a lifetime or a label, which is no literal.
            let width = match at(i + 1)? {
                b if b < 0x80 => 1,
                b if b >= 0xf0 => 4,
                b if b >= 0xe0 => 3,
                _ => 2,
            };
            (at(i + 1 + width) == Some(b'\'')).then_some(i + 2 + width)
        }
        b'r' | b'b' | b'c' if !is_ident(i.checked_sub(1).and_then(at)) => {
            // Raw strings: `r"…"`, `r#"…"#`, `br"…"`, `cr#"…"#`.
            let mut k = i + 1;
            if bytes[i] != b'r' {
                if at(k) != Some(b'r') {
                    return None;
                }
                k += 1;
            }
            let hashes = bytes[k..].iter().take_while(|&&b| b == b'#').count();
            k += hashes;
            if at(k) != Some(b'"') {
                return None;
            }
            let mut close = Vec::with_capacity(hashes + 1);
            close.push(b'"');
            close.extend(std::iter::repeat_n(b'#', hashes));
            Some(
                bytes[k + 1..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(bytes.len(), |p| k + 1 + p + close.len()),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(text: &str) -> Vec<&str> {
        top_level_chunks(text)
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn chunks_are_whole_items_whatever_their_strings_comments_and_characters_hold() {
        let text = concat!(
            "//! Docs.\n",
            "use std::{fmt, io};\n",
            "use std::fmt; // a { in a comment\n",
            "/// A doc with a } in it.\n",
            "#[derive(Debug)]\n",
            "pub(crate) struct A { s: &'static str }\n",
            "fn b<'a>(x: &'a str) -> char { let _ = \"}\"; let _ = r#\"}\"#; '}' }\n",
            "const C: u32 = { 1 } + { 2 };\n",
            "const fn d() -> u32 { /* } /* nested } */ */ 3 }\n",
            "macro_rules! m { () => {}; }\n",
            "m!(x; y);\n",
            "impl A { fn e(&self) -> u8 { b'{' } }\n",
        );
        assert_eq!(
            chunks(text),
            vec![
                "//! Docs.\nuse std::{fmt, io};",
                "use std::fmt;",
                "// a { in a comment\n/// A doc with a } in it.\n#[derive(Debug)]\npub(crate) struct A { s: &'static str }",
                "fn b<'a>(x: &'a str) -> char { let _ = \"}\"; let _ = r#\"}\"#; '}' }",
                "const C: u32 = { 1 } + { 2 };",
                "const fn d() -> u32 { /* } /* nested } */ */ 3 }",
                "macro_rules! m { () => {}; }",
                "m!(x; y);",
                "impl A { fn e(&self) -> u8 { b'{' } }",
            ]
        );
    }

    #[test]
    fn uses_and_modules_that_may_hold_tests_are_kept_wherever_they_are() {
        assert!(needed_anywhere("/// Docs.\npub(crate) use a::b;"));
        assert!(needed_anywhere("#[macro_use]\nextern crate serde;"));
        assert!(needed_anywhere("#[cfg(test)]\nmod tests { fn t() {} }"));
        assert!(needed_anywhere("mod outer { #[cfg(test)] mod inner {} }"));
        assert!(!needed_anywhere("mod util { fn f() {} }"));
        assert!(!needed_anywhere("fn used() {}"));
        assert!(!needed_anywhere("#[test]\nfn user() {}"));
    }

    #[test]
    fn a_partial_tree_holds_the_chosen_items_at_their_places_and_nothing_else() {
        let rust = Language::by_name("rust").expect("rust");
        let filler: String = (0..400)
            .map(|i| format!("fn filler_{i}() -> u32 {{ {i} }}\n"))
            .collect();
        let text = format!(
            "use std::fmt;\n{filler}pub fn wanted() -> u32 {{ 7 }}\n{filler}#[cfg(test)]\nmod tests {{ use super::*; }}\n"
        );
        let at = text.find("pub fn wanted").expect("wanted");
        let lines = LineIndex::new(&text);
        let tree = parse_needed(rust, &text, &lines, &(at..at)).expect("a partial tree");
        let root = tree.root_node();
        let mut walker = root.walk();
        let kinds: Vec<(&str, &str)> = root
            .named_children(&mut walker)
            .map(|n| (n.kind(), &text[n.byte_range()]))
            .collect();
        // The 21 lines around the cursor, the `use` and the test module with its attribute;
        // not the 780 other functions.
        assert_eq!(kinds.len(), 24, "{kinds:?}");
        assert_eq!(kinds[0], ("use_declaration", "use std::fmt;"));
        let functions = kinds.iter().filter(|(k, _)| *k == "function_item").count();
        assert_eq!(functions, 21, "{kinds:?}");
        assert!(kinds.contains(&("function_item", "pub fn wanted() -> u32 { 7 }")));
        assert_eq!(kinds[22], ("attribute_item", "#[cfg(test)]"));
        assert_eq!(kinds[23], ("mod_item", "mod tests { use super::*; }"));
        // A text whose chunks cannot be told apart (an unclosed item) is parsed whole.
        let broken = format!("{filler}fn open() {{\n{filler}");
        let at = broken.find("fn open").expect("open");
        let lines = LineIndex::new(&broken);
        assert!(parse_needed(rust, &broken, &lines, &(at..at)).is_none());
    }
}
