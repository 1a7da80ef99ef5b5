//! Definitions and references of one file, read from a syntax tree with `tags.scm`.
//!
//! The query names what is a definition or a reference (see `docs/queries.md`); this module
//! turns matches into plain data: byte ranges, 0-based lines, the signature/body split, the
//! doc comments and attributes above an item, and whether a function is a test.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ops::Range;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tree_sitter::{Node, QueryCursor, StreamingIterator as _, Tree};

use crate::syntax::Language;

/// What kind of item a definition is (the `@definition.<kind>` suffix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum SymbolKind {
    /// A free function.
    Function,
    /// A function in an `impl` or `trait` body.
    Method,
    /// A struct, union or type alias.
    Struct,
    /// An enum.
    Enum,
    /// A trait.
    Trait,
    /// A module.
    Module,
    /// A `const` or `static`.
    Constant,
    /// A `macro_rules!` macro.
    Macro,
}

impl SymbolKind {
    fn from_capture(suffix: &str) -> Option<SymbolKind> {
        Some(match suffix {
            "function" => SymbolKind::Function,
            "method" => SymbolKind::Method,
            "struct" => SymbolKind::Struct,
            "enum" => SymbolKind::Enum,
            "trait" => SymbolKind::Trait,
            "module" => SymbolKind::Module,
            "constant" => SymbolKind::Constant,
            "macro" => SymbolKind::Macro,
            _ => return None,
        })
    }

    /// Whether this kind is callable (its references are calls).
    pub fn is_function(self) -> bool {
        matches!(self, SymbolKind::Function | SymbolKind::Method)
    }
}

/// What kind of use a reference is (the `@reference.<kind>` suffix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefKind {
    /// A function or macro call.
    Call,
    /// A method call, `receiver.name(…)`: which type's method it is needs types we lack.
    Method,
    /// A type, or the path in `Type::item`.
    Type,
    /// The trait of an `impl Trait for T`.
    Implementation,
    /// An upper-case identifier: a constant or static.
    Constant,
}

/// One definition in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// The defined name.
    pub name: String,
    /// The kind of item.
    pub kind: SymbolKind,
    /// The item, without its doc comments and attributes.
    pub range: Range<usize>,
    /// Where its doc comments and attributes start (`range.start` when it has none).
    pub doc_start: usize,
    /// Where its body starts, if it has one: the signature is `range.start..body_start`.
    pub body_start: Option<usize>,
    /// 0-based line of `doc_start`.
    pub doc_line: u32,
    /// 0-based first line of the item.
    pub start_line: u32,
    /// 0-based last line of the item.
    pub end_line: u32,
    /// A function marked `#[test]`, `#[tokio::test]`, `#[rstest]` and the like.
    pub is_test: bool,
    /// Where its name starts.
    pub name_start: usize,
    /// For a method, the type of its `impl` (`Store` for `impl<T> Display for Store<T>`, the
    /// last path segment, generics left out) or the trait it is declared in; `None` for items
    /// outside `impl` and `trait` bodies.
    pub owner: Option<String>,
}

/// One reference in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The referenced name.
    pub name: String,
    /// How it is used.
    pub kind: RefKind,
    /// The byte offset of the name.
    pub byte: usize,
    /// Its 0-based line.
    pub line: u32,
}

/// The definitions and references of one file, in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileTags {
    /// Definitions, ordered by start.
    pub definitions: Vec<Definition>,
    /// References, ordered by position.
    pub references: Vec<Reference>,
    /// The byte ranges of the file's top-level `use` declarations: what it imports and
    /// re-exports (`pub use`), read again by name resolution without parsing the whole file.
    pub uses: Vec<Range<usize>>,
}

impl FileTags {
    /// The innermost definition of one of `kinds` that contains `line`, if any.
    pub fn enclosing(&self, line: u32, functions_only: bool) -> Option<&Definition> {
        self.definitions
            .iter()
            .filter(|d| d.start_line <= line && line <= d.end_line)
            .filter(|d| !functions_only || d.kind.is_function())
            .min_by_key(|d| d.end_line - d.start_line)
    }
}

/// Nesting past which a tree's query matching gets [`DEEP_MATCH_LIMIT`] (far deeper than
/// hand-written code nests).
pub(crate) const DEEP_TREE: usize = 400;

/// The in-progress match budget of a query on a tree deeper than [`DEEP_TREE`].
pub(crate) const DEEP_MATCH_LIMIT: u32 = 64;

/// A query cursor for `tree`. Matching keeps states for every pattern at every open ancestor,
/// so on a tree hundreds of levels deep (still below `MAX_TREE_DEPTH`) each node costs work in
/// proportion to the depth, and the whole match the square of it. Such a tree gets a small
/// budget of in-progress matches, which keeps the work linear; matches that span hundreds of
/// levels may be lost there, ordinary code loses nothing.
pub(crate) fn deep_tree_cursor(tree: &Tree) -> QueryCursor {
    let mut cursor = QueryCursor::new();
    if crate::syntax::depth_exceeds(tree, DEEP_TREE) {
        cursor.set_match_limit(DEEP_MATCH_LIMIT);
    }
    cursor
}

/// Extracts the tags of `text`, whose syntax tree is `tree`.
pub fn extract(text: &str, tree: &Tree) -> anyhow::Result<FileTags> {
    // Matching the tags query grows with the square of the nesting depth: a tree deeper than
    // any hand-written code (generated or hostile input) is not indexed rather than stalling.
    if crate::syntax::depth_exceeds(tree, crate::syntax::MAX_TREE_DEPTH) {
        anyhow::bail!(
            "its syntax nests deeper than {} levels; not indexed",
            crate::syntax::MAX_TREE_DEPTH
        );
    }
    let rust = Language::by_name("rust").context("the rust language is not registered")?;
    let query = rust.query("tags.scm")?;
    let names = query.capture_names();
    let bytes = text.as_bytes();

    // A node can match several patterns (a method is also a function); keep the most specific
    // kind per node, which is the larger enum value for method over function.
    let mut definitions: HashMap<usize, Definition> = HashMap::new();
    let mut references: Vec<Reference> = Vec::new();
    // The token trees of macro invocations, whose items the grammar does not parse.
    let mut macro_items: Vec<Node<'_>> = Vec::new();
    // The file's own `macro_rules!`, for the functions their invocations define.
    let mut macro_rules: Vec<Node<'_>> = Vec::new();
    let mut cursor = deep_tree_cursor(tree);
    let mut matches = cursor.matches(&query, tree.root_node(), bytes);
    while let Some(m) = matches.next() {
        let mut name_node = None;
        let mut item = None;
        for capture in m.captures() {
            let capture_name = names[capture.index as usize];
            if capture_name == "name" {
                name_node = Some(capture.node);
            } else if let Some(suffix) = capture_name.strip_prefix("definition.") {
                item = SymbolKind::from_capture(suffix).map(|k| (Ok(k), capture.node));
            } else if capture_name == "macro.items" {
                macro_items.push(capture.node);
                continue;
            } else if let Some(suffix) = capture_name.strip_prefix("reference.") {
                let kind = match suffix {
                    "call" => RefKind::Call,
                    "type" => RefKind::Type,
                    "implementation" => RefKind::Implementation,
                    "constant" => RefKind::Constant,
                    _ => continue,
                };
                item = Some((Err(kind), capture.node));
            }
        }
        let (Some(name_node), Some((kind, node))) = (name_node, item) else {
            continue;
        };
        let Ok(name) = name_node.utf8_text(bytes) else {
            continue;
        };
        if kind == Ok(SymbolKind::Macro) && node.kind() == "macro_definition" {
            macro_rules.push(node);
        }
        match kind {
            Ok(kind) => match definitions.entry(node.id()) {
                Entry::Occupied(mut existing) => {
                    if kind == SymbolKind::Method {
                        existing.get_mut().kind = kind;
                    }
                }
                Entry::Vacant(slot) => {
                    slot.insert(definition(name, name_node.start_byte(), kind, node, text));
                }
            },
            Err(kind) => references.push(Reference {
                name: name.to_string(),
                kind: if kind == RefKind::Call && name_node.kind() == "field_identifier" {
                    RefKind::Method
                } else {
                    kind
                },
                byte: name_node.start_byte(),
                line: name_node.start_position().row as u32,
            }),
        }
    }
    let mut definitions: Vec<Definition> = definitions.into_values().collect();
    let generators = function_generators(&macro_rules, text);
    for tree in macro_items {
        token_tree_definitions(tree, text, &mut definitions);
        if !generators.is_empty() {
            generated_function(tree, text, &generators, &mut definitions);
        }
    }
    definitions.sort_by_key(|d| (d.range.start, std::cmp::Reverse(d.range.end)));
    // A definition's own name is not a reference to it.
    let definition_names: std::collections::HashSet<usize> =
        definitions.iter().map(|d| d.name_start).collect();
    references.retain(|r| !definition_names.contains(&r.byte));
    // One name can match several reference patterns (a trait in `impl Show for A` is also a
    // type); the most specific kind sorts first and survives the dedup.
    references.sort_by_key(|r| (r.byte, ref_priority(r.kind)));
    references.dedup_by(|a, b| a.byte == b.byte && a.name == b.name);
    let root = tree.root_node();
    let mut walker = root.walk();
    let uses = root
        .named_children(&mut walker)
        .filter(|n| n.kind() == "use_declaration")
        .map(|n| n.byte_range())
        .collect();
    Ok(FileTags {
        definitions,
        references,
        uses,
    })
}

fn definition(
    name: &str,
    name_start: usize,
    kind: SymbolKind,
    node: Node<'_>,
    text: &str,
) -> Definition {
    let (doc_node, is_test) = leading_trivia(node, text);
    // `impl … { fn … }` and `trait … { fn … }`: the body's parent says whose method it is.
    let owner = node
        .parent()
        .filter(|p| p.kind() == "declaration_list")
        .and_then(|p| p.parent())
        .and_then(|item| match item.kind() {
            "impl_item" => item.child_by_field_name("type"),
            "trait_item" => item.child_by_field_name("name"),
            _ => None,
        })
        .and_then(|t| type_name(t, text));
    let kind = match node.parent() {
        Some(parent)
            if kind == SymbolKind::Function
                && parent.kind() == "declaration_list"
                && parent
                    .parent()
                    .is_some_and(|p| matches!(p.kind(), "impl_item" | "trait_item")) =>
        {
            SymbolKind::Method
        }
        _ => kind,
    };
    Definition {
        name: name.to_string(),
        kind,
        range: node.byte_range(),
        doc_start: doc_node.start_byte(),
        body_start: node
            .child_by_field_name("body")
            .map(|body| body.start_byte()),
        doc_line: doc_node.start_position().row as u32,
        start_line: node.start_position().row as u32,
        end_line: node.end_position().row as u32,
        is_test,
        name_start,
        owner,
    }
}

/// The name a type is known by in method lookups: `Store` for `Store<T>`, `crate::a::Store`,
/// `&mut Store` or `Box<Store>`'s outer `Box`; primitive types (`str`, `u32`) by their
/// keyword; `dyn Trait` and `impl Trait` by the trait. `None` for types without one name
/// (tuples, arrays).
pub fn type_name(node: Node<'_>, text: &str) -> Option<String> {
    match node.kind() {
        "type_identifier" | "primitive_type" | "identifier" => {
            text.get(node.byte_range()).map(str::to_string)
        }
        "generic_type" => type_name(node.child_by_field_name("type")?, text),
        "scoped_type_identifier" | "scoped_identifier" => {
            type_name(node.child_by_field_name("name")?, text)
        }
        "reference_type" => type_name(node.child_by_field_name("type")?, text),
        // `dyn Widget`, `impl Widget`: the trait's methods are what can be called.
        "dynamic_type" | "abstract_type" => type_name(node.child_by_field_name("trait")?, text),
        _ => None,
    }
}

/// The first node of the doc comments and attributes right above `node` (or `node` itself), and
/// whether one of those attributes marks a test.
fn leading_trivia<'t>(node: Node<'t>, text: &str) -> (Node<'t>, bool) {
    let mut first = node;
    let mut is_test = false;
    let mut current = node;
    while let Some(previous) = current.prev_sibling() {
        // Only trivia that touches the item (no blank line between) belongs to it.
        if previous.end_position().row + 1 < current.start_position().row {
            break;
        }
        let source = text.get(previous.byte_range()).unwrap_or("");
        match previous.kind() {
            "attribute_item" => {
                is_test |= is_test_attribute(source);
                first = previous;
            }
            "line_comment" | "block_comment" if is_doc_comment(source) => first = previous,
            _ => break,
        }
        current = previous;
    }
    (first, is_test)
}

/// Items written inside a macro invocation's token tree — `bitflags! { pub struct Flags: u32
/// { const A = 1; } }`, `lazy_static! { static ref X: T = …; }`, `thread_local! { static X: … }`,
/// a `macro_rules!` inside `cfg_if!` — which the grammar leaves as flat tokens. They are matched
/// as token patterns (`struct NAME`, `static [ref] [mut] NAME`, `macro_rules ! NAME`, …) at every
/// depth of the tree, because such bodies are rarely valid Rust to re-parse (`: u32` after a
/// struct name, `static ref`).
fn token_tree_definitions(tree: Node<'_>, text: &str, out: &mut Vec<Definition>) {
    token_tree_definitions_within(tree, text, out, 0);
}

/// Token trees nested deeper than this are not searched for items (only generated or hostile
/// input nests macro bodies that deep, and each level is a stack frame).
const MAX_TOKEN_TREE_DEPTH: usize = 200;

fn token_tree_definitions_within(
    tree: Node<'_>,
    text: &str,
    out: &mut Vec<Definition>,
    depth: usize,
) {
    if depth > MAX_TOKEN_TREE_DEPTH {
        return;
    }
    let mut walker = tree.walk();
    let tokens: Vec<Node<'_>> = tree.children(&mut walker).collect();
    let word = |i: usize| -> &str {
        tokens
            .get(i)
            .and_then(|n| text.get(n.byte_range()))
            .unwrap_or("")
    };
    let is_name = |i: usize| tokens.get(i).is_some_and(|n| n.kind() == "identifier");
    for (i, token) in tokens.iter().enumerate() {
        if token.kind() == "token_tree" {
            token_tree_definitions_within(*token, text, out, depth + 1);
            continue;
        }
        let (kind, mut name_at) = match word(i) {
            "fn" => (SymbolKind::Function, i + 1),
            "struct" | "union" | "type" => (SymbolKind::Struct, i + 1),
            "enum" => (SymbolKind::Enum, i + 1),
            "trait" => (SymbolKind::Trait, i + 1),
            "mod" => (SymbolKind::Module, i + 1),
            "const" if word(i + 1) != "fn" => (SymbolKind::Constant, i + 1),
            "static" => (SymbolKind::Constant, i + 1),
            "macro_rules" if word(i + 1) == "!" => (SymbolKind::Macro, i + 2),
            _ => continue,
        };
        if kind == SymbolKind::Constant {
            // `*const T` in an argument (`&v as *const libc::c_int`) is a pointer type, and
            // an item's name is followed by its type or value: `const N: u8`, `static ref RE:
            // Regex`, bitflags' `const READ = 1;`.
            if i >= 1 && word(i - 1) == "*" {
                continue;
            }
            while matches!(word(name_at), "ref" | "mut") {
                name_at += 1;
            }
            if !matches!(word(name_at + 1), ":" | "=") {
                continue;
            }
        }
        if !is_name(name_at) {
            continue;
        }
        // The item starts at its keyword, or at a `pub` / `pub(crate)` before it.
        let mut first = i;
        if i >= 1 && word(i - 1) == "pub" {
            first = i - 1;
        } else if i >= 2 && word(i - 2) == "pub" && word(i - 1).starts_with('(') {
            first = i - 2;
        }
        // Doc comments and `#[…]` attributes directly above belong to it.
        let mut doc = first;
        loop {
            let source = word(doc.wrapping_sub(1));
            if doc >= 1 && tokens[doc - 1].kind() == "line_comment" && is_doc_comment(source) {
                doc -= 1;
            } else if doc >= 2 && word(doc - 2) == "#" && source.starts_with('[') {
                doc -= 2;
            } else {
                break;
            }
        }
        // It ends after its `{ … }` body for items with one, else at the `;` that closes it.
        let mut body = None;
        let mut last = name_at;
        for (j, next) in tokens.iter().enumerate().skip(name_at + 1) {
            last = j;
            let source = word(j);
            if source == ";" {
                break;
            }
            if next.kind() == "token_tree"
                && source.starts_with('{')
                && !matches!(kind, SymbolKind::Constant | SymbolKind::Macro)
            {
                body = Some(next.start_byte());
                break;
            }
            if next.kind() == "token_tree" && kind == SymbolKind::Macro {
                body = Some(next.start_byte());
                break;
            }
            if source == "}" && j + 1 == tokens.len() {
                // The closing delimiter of the enclosing tree: the item ends before it.
                last = j - 1;
                break;
            }
        }
        let (start, doc_node, end) = (tokens[first], tokens[doc], tokens[last]);
        let Some(name) = text.get(tokens[name_at].byte_range()) else {
            continue;
        };
        out.push(Definition {
            name: name.to_string(),
            kind,
            range: start.start_byte()..end.end_byte(),
            doc_start: doc_node.start_byte(),
            body_start: body,
            doc_line: doc_node.start_position().row as u32,
            start_line: start.start_position().row as u32,
            end_line: end.end_position().row as u32,
            is_test: false,
            name_start: tokens[name_at].start_byte(),
            owner: None,
        });
    }
}

/// A `macro_rules!` of the file that writes `fn $name`: its name, and which comma-separated
/// argument of an invocation is `$name` (`top_level_handler_fn!(get, GET);` defines `get`).
struct FunctionGenerator {
    macro_name: String,
    argument: usize,
}

/// The file's macros that define a function named by one of their arguments. Only an
/// argument matched as `$x:ident` in the first rule that mentions it counts; macros that build
/// names otherwise (`paste!`, concatenation) are not followed.
fn function_generators(macros: &[Node<'_>], text: &str) -> Vec<FunctionGenerator> {
    let mut out = Vec::new();
    for node in macros {
        let (Some(name), Some(source)) = (
            node.child_by_field_name("name")
                .and_then(|n| text.get(n.byte_range())),
            text.get(node.byte_range()),
        ) else {
            continue;
        };
        // The metavariables written right after `fn`.
        let mut named: Vec<String> = Vec::new();
        for (at, _) in source.match_indices("fn $") {
            let rest = &source[at + 4..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end > 0 && !named.iter().any(|n| n == &rest[..end]) {
                named.push(rest[..end].to_string());
            }
        }
        let mut walker = node.walk();
        let rules: Vec<Node<'_>> = node
            .named_children(&mut walker)
            .filter(|r| r.kind() == "macro_rule")
            .collect();
        'variable: for variable in &named {
            let binding = format!("${variable}:ident");
            for rule in &rules {
                let Some(left) = rule.child_by_field_name("left") else {
                    continue;
                };
                let parts = comma_parts(left, text);
                if let Some(argument) = parts.iter().position(|part| {
                    let compact: String = part.iter().flat_map(|t| t.chars()).collect();
                    compact.contains(&binding)
                }) {
                    out.push(FunctionGenerator {
                        macro_name: name.to_string(),
                        argument,
                    });
                    continue 'variable;
                }
            }
        }
    }
    out
}

/// The texts of a token tree's children between its delimiters, split at its own commas
/// (whitespace dropped: the tokens are joined as written).
fn comma_parts<'t>(tree: Node<'_>, text: &'t str) -> Vec<Vec<&'t str>> {
    let mut parts: Vec<Vec<&str>> = vec![Vec::new()];
    let mut walker = tree.walk();
    let children: Vec<Node<'_>> = tree.children(&mut walker).collect();
    let inner = children
        .get(1..children.len().saturating_sub(1))
        .unwrap_or(&[]);
    for child in inner {
        let source = text.get(child.byte_range()).unwrap_or("");
        if source == "," {
            parts.push(Vec::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(source);
        }
    }
    parts
}

/// The function an invocation of one of the file's generator macros defines, as a definition
/// spanning the invocation (which is what "go to definition" shows for it).
fn generated_function(
    tree: Node<'_>,
    text: &str,
    generators: &[FunctionGenerator],
    out: &mut Vec<Definition>,
) {
    let Some(invocation) = tree.parent().filter(|p| p.kind() == "macro_invocation") else {
        return;
    };
    let Some(macro_name) = invocation
        .child_by_field_name("macro")
        .and_then(|m| text.get(m.byte_range()))
    else {
        return;
    };
    // Only an item-level invocation defines an item (not one inside a function body).
    // At the top level the grammar wraps it, with its `;` and the doc comments before it, in
    // an `expression_statement`.
    let item = invocation
        .parent()
        .filter(|p| p.kind() == "expression_statement")
        .unwrap_or(invocation);
    if !item
        .parent()
        .is_some_and(|c| matches!(c.kind(), "source_file" | "declaration_list"))
    {
        return;
    }
    for generator in generators.iter().filter(|g| g.macro_name == macro_name) {
        // The argument's last identifier: doc comments and attributes may come before it.
        let mut walker = tree.walk();
        let children: Vec<Node<'_>> = tree.children(&mut walker).collect();
        let mut argument = 0;
        let mut name: Option<Node<'_>> = None;
        for child in children
            .get(1..children.len().saturating_sub(1))
            .unwrap_or(&[])
        {
            if text.get(child.byte_range()) == Some(",") {
                argument += 1;
            } else if argument == generator.argument && child.kind() == "identifier" {
                name = Some(*child);
            }
        }
        let Some(name_node) = name else { continue };
        let Some(name) = text.get(name_node.byte_range()) else {
            continue;
        };
        let mut def = definition(
            name,
            name_node.start_byte(),
            SymbolKind::Function,
            item,
            text,
        );
        def.body_start = None;
        out.push(def);
    }
}

fn ref_priority(kind: RefKind) -> u8 {
    match kind {
        RefKind::Implementation => 0,
        RefKind::Call | RefKind::Method => 1,
        RefKind::Constant => 2,
        RefKind::Type => 3,
    }
}

fn is_doc_comment(source: &str) -> bool {
    (source.starts_with("///") && !source.starts_with("////"))
        || (source.starts_with("/**") && !source.starts_with("/***"))
}

/// `#[test]`, `#[tokio::test(flavor = "multi_thread")]`, `#[rstest]`, …
fn is_test_attribute(source: &str) -> bool {
    let inner = source
        .trim_start_matches("#[")
        .split(['(', ']', '='])
        .next()
        .unwrap_or("")
        .trim();
    let last = inner.rsplit("::").next().unwrap_or(inner);
    matches!(last, "test" | "rstest" | "quickcheck" | "proptest")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(text: &str) -> FileTags {
        let rust = Language::by_name("rust").expect("rust");
        let tree = rust.parse(text).expect("tree");
        extract(text, &tree).expect("tags")
    }

    #[test]
    fn definitions_carry_kind_docs_signature_and_test_marks() {
        let text = "\
/// A point.
/// In two dimensions.
#[derive(Debug)]
pub struct Point { x: i32 }

// not a doc
fn helper() {}

impl Point {
    /// Makes one.
    pub fn new() -> Self { Point { x: LIMIT } }
}

const LIMIT: i32 = 3;

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn makes() { super::Point::new(); helper(); }
}
";
        let tags = tags(text);
        let summary: Vec<_> = tags
            .definitions
            .iter()
            .map(|d| (d.name.as_str(), d.kind, d.doc_line, d.start_line, d.is_test))
            .collect();
        assert_eq!(
            summary,
            [
                ("Point", SymbolKind::Struct, 0, 3, false),
                ("helper", SymbolKind::Function, 6, 6, false),
                ("new", SymbolKind::Method, 9, 10, false),
                ("LIMIT", SymbolKind::Constant, 13, 13, false),
                ("tests", SymbolKind::Module, 15, 16, false),
                ("makes", SymbolKind::Function, 17, 18, true),
            ]
        );
        let new = &tags.definitions[2];
        let signature = &text[new.range.start..new.body_start.expect("a body")];
        assert_eq!(signature.trim(), "pub fn new() -> Self");
    }

    #[test]
    fn references_are_calls_types_and_constants_but_not_definition_names() {
        let tags = tags(
            "struct A; impl Show for A { fn f(&self) -> B { let b = g(MAX); b.h(); A::k(); m!(); b } }",
        );
        let refs: Vec<_> = tags
            .references
            .iter()
            .map(|r| (r.name.as_str(), r.kind))
            .collect();
        assert_eq!(
            refs,
            [
                ("Show", RefKind::Implementation),
                ("A", RefKind::Type),
                ("B", RefKind::Type),
                ("g", RefKind::Call),
                ("MAX", RefKind::Constant),
                ("h", RefKind::Method),
                ("A", RefKind::Type),
                ("k", RefKind::Call),
                ("m", RefKind::Call),
            ]
        );
    }

    #[test]
    fn functions_a_local_macro_defines_from_an_argument_are_definitions() {
        // axum's `routing::get`: written by a `macro_rules!` of the same file, never as `fn get`.
        let text = "\
macro_rules! top_level_handler_fn {
    ($name:ident, GET) => {
        top_level_handler_fn!(/// A GET route.
            $name, GET);
    };
    ($(#[$m:meta])+ $name:ident, $method:ident) => {
        $(#[$m])+
        pub fn $name<H>(handler: H) -> MethodRouter { on(MethodFilter::$method, handler) }
    };
}
macro_rules! other { ($a:ident) => { const $a: u8 = 1; }; }
top_level_handler_fn!(get, GET);
other!(ZERO);
impl MethodRouter {
    chained!(post, POST);
}
fn f() {
    top_level_handler_fn!(local, GET);
}
";
        let tags = tags(text);
        let functions: Vec<(&str, SymbolKind, u32)> = tags
            .definitions
            .iter()
            .filter(|d| d.kind.is_function())
            .map(|d| (d.name.as_str(), d.kind, d.start_line))
            .collect();
        // `other!` writes no `fn`, `chained!` is not a macro of this file, and an invocation
        // inside a function body defines nothing the rest of the crate can name.
        assert_eq!(
            functions,
            [
                ("get", SymbolKind::Function, 11),
                ("f", SymbolKind::Function, 16)
            ]
        );
        let get = &tags
            .definitions
            .iter()
            .find(|d| d.name == "get")
            .expect("get");
        assert_eq!(&text[get.range.clone()], "top_level_handler_fn!(get, GET);");
        // The invocation's own `get` is the definition's name, not a use of it.
        assert!(!tags.references.iter().any(|r| r.name == "get"));
    }

    #[test]
    fn items_written_inside_macro_invocations_are_definitions() {
        let text = "\
bitflags! {
    /// What a file may do.
    pub struct Flags: u32 {
        const READ = 1;
    }
}
lazy_static! { pub static ref REGISTRY: Mutex<Vec<u8>> = Mutex::new(Vec::new()); }
fn f() {
    thread_local! { static DEPTH: Cell<u32> = Cell::new(0); }
}
cfg_if! { if #[cfg(unix)] { macro_rules! sys { () => {} } } }
fn g(fd: i32, v: i32) { syscall!(setsockopt(fd, &v as *const libc::c_int as *const c_void)); }
";
        let tags = tags(text);
        let summary: Vec<_> = tags
            .definitions
            .iter()
            .map(|d| {
                (
                    d.name.as_str(),
                    d.kind,
                    d.doc_line,
                    d.start_line,
                    d.end_line,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("Flags", SymbolKind::Struct, 1, 2, 4),
                ("READ", SymbolKind::Constant, 3, 3, 3),
                ("REGISTRY", SymbolKind::Constant, 6, 6, 6),
                ("f", SymbolKind::Function, 7, 7, 9),
                ("DEPTH", SymbolKind::Constant, 8, 8, 8),
                ("sys", SymbolKind::Macro, 10, 10, 10),
                // `*const libc::c_int` in a macro's arguments is a pointer type, not a `const`.
                ("g", SymbolKind::Function, 11, 11, 11),
            ]
        );
        let flags = &tags.definitions[0];
        assert_eq!(
            &text[flags.doc_start..flags.body_start.expect("a body")],
            "/// What a file may do.\n    pub struct Flags: u32 "
        );
        let registry = &tags.definitions[2];
        assert_eq!(
            &text[registry.range.clone()],
            "pub static ref REGISTRY: Mutex<Vec<u8>> = Mutex::new(Vec::new());"
        );
        // The defined names are not references to themselves.
        assert!(
            !tags
                .references
                .iter()
                .any(|r| r.name == "Flags" || r.name == "REGISTRY"),
            "{:?}",
            tags.references
        );
    }

    #[test]
    fn a_definition_knows_where_its_name_is_and_whose_method_it_is() {
        // The name `p` also starts `pub`; `Show` appears in the method before its trait's name.
        let text = "pub fn p() {}\npub struct Pub;\nimpl<T> Show for crate::a::Store<T> { fn show(&self) {} }\ntrait Show { fn show(&self); }\n";
        let tags = tags(text);
        for d in &tags.definitions {
            assert_eq!(
                &text[d.name_start..d.name_start + d.name.len()],
                d.name,
                "{d:?}"
            );
        }
        let p = &tags.definitions[0];
        assert_eq!(p.name_start, text.find("p()").expect("p"));
        let owners: Vec<(&str, Option<&str>)> = tags
            .definitions
            .iter()
            .map(|d| (d.name.as_str(), d.owner.as_deref()))
            .collect();
        assert_eq!(
            owners,
            [
                ("p", None),
                ("Pub", None),
                ("show", Some("Store")),
                ("Show", None),
                ("show", Some("Show")),
            ]
        );
        // A definition's own name is no reference to it.
        assert!(!tags.references.iter().any(|r| r.name == "Pub"));
    }

    #[test]
    fn broken_code_still_yields_tags() {
        let tags = tags("fn ok() { used(); }\nfn broken( { let = ;\nstruct After;");
        assert!(tags.definitions.iter().any(|d| d.name == "ok"));
        assert!(tags.references.iter().any(|r| r.name == "used"));
    }
}
