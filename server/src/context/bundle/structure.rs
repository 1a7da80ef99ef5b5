//! The parts of the current file a bundle needs, from `queries/rust/context.scm`: the items
//! that can enclose a selection, the test modules and the imports; and [`LineIndex`] for byte ↔
//! line conversions.

use std::collections::HashSet;
use std::ops::Range;

use anyhow::Context as _;
use tree_sitter::{StreamingIterator as _, Tree};

use crate::syntax::Language;

/// An item of the current file that can enclose a selection.
#[derive(Clone, Debug)]
pub(super) struct StructureItem {
    pub kind: &'static str,
    pub name: Option<String>,
    /// From the first doc comment or attribute to the end.
    pub full: Range<usize>,
    /// Where the body starts.
    pub body_start: usize,
    pub range: Range<usize>,
}

/// The parts of the current file the bundle needs, from `context.scm`.
#[derive(Debug, Default)]
pub(super) struct FileStructure {
    pub items: Vec<StructureItem>,
    pub test_modules: Vec<StructureItem>,
    pub imports: Vec<Range<usize>>,
}

pub(super) fn file_structure(text: &str, tree: &Tree) -> anyhow::Result<FileStructure> {
    let rust = Language::by_name("rust").context("the rust language is not registered")?;
    let query = rust.query("context.scm")?;
    let names = query.capture_names();
    let mut structure = FileStructure::default();
    // A budget on deep trees, as for the tags (the same quadratic matching).
    let mut cursor = crate::context::tags::deep_tree_cursor(tree);
    let mut matches = cursor.matches(&query, tree.root_node(), text.as_bytes());
    let mut seen_modules = HashSet::new();
    while let Some(m) = matches.next() {
        let mut name = None;
        let mut body = None;
        let mut item = None;
        for c in m.captures() {
            match names[c.index as usize] {
                "name" => name = c.node.utf8_text(text.as_bytes()).ok().map(str::to_string),
                "context.body" => body = Some(c.node),
                "context.item" => item = Some(("item", c.node)),
                "context.import" => item = Some(("import", c.node)),
                _ => {}
            }
        }
        let Some((role, node)) = item else { continue };
        let doc_start = leading_start(node, text);
        match role {
            "import" => structure.imports.push(node.byte_range()),
            _ => {
                let Some(body) = body else { continue };
                let kind = match node.kind() {
                    "function_item" => "function",
                    "impl_item" => "impl",
                    "trait_item" => "trait",
                    _ => "module",
                };
                let item = StructureItem {
                    kind,
                    name,
                    full: doc_start..node.end_byte(),
                    body_start: body.start_byte(),
                    range: node.byte_range(),
                };
                if kind == "module"
                    && (item.name.as_deref() == Some("tests") || cfg_test(node, text))
                    && seen_modules.insert(node.id())
                {
                    structure.test_modules.push(item.clone());
                }
                structure.items.push(item);
            }
        }
    }
    Ok(structure)
}

/// Whether one of the attributes and comments right above `node` is `#[cfg(test)]` (a
/// `cfg` whose arguments hold `test` at their top level, as `#[cfg(test)]` and
/// `#[cfg(test, …)]` do).
fn cfg_test(node: tree_sitter::Node<'_>, text: &str) -> bool {
    let mut current = node.prev_sibling();
    while let Some(previous) = current {
        match previous.kind() {
            "attribute_item" => {
                let attribute = previous.named_child(0).filter(|a| a.kind() == "attribute");
                let is_cfg = attribute.and_then(|a| a.named_child(0)).is_some_and(|n| {
                    n.kind() == "identifier" && text.get(n.byte_range()) == Some("cfg")
                });
                let arguments = attribute.and_then(|a| a.child_by_field_name("arguments"));
                if is_cfg && let Some(arguments) = arguments {
                    let mut walker = arguments.walk();
                    if arguments.named_children(&mut walker).any(|t| {
                        t.kind() == "identifier" && text.get(t.byte_range()) == Some("test")
                    }) {
                        return true;
                    }
                }
            }
            "line_comment" | "block_comment" => {}
            _ => return false,
        }
        current = previous.prev_sibling();
    }
    false
}

/// The start of the doc comments and attributes directly above `node`.
fn leading_start(node: tree_sitter::Node<'_>, text: &str) -> usize {
    let mut start = node.start_byte();
    let mut current = node;
    while let Some(previous) = current.prev_sibling() {
        if previous.end_position().row + 1 < current.start_position().row {
            break;
        }
        let source = text.get(previous.byte_range()).unwrap_or("");
        let keep = match previous.kind() {
            "attribute_item" => true,
            "line_comment" | "block_comment" => {
                source.starts_with("///") || source.starts_with("/**")
            }
            _ => false,
        };
        if !keep {
            break;
        }
        start = previous.start_byte();
        current = previous;
    }
    start
}

/// Line starts of a text, for byte ↔ line conversions.
pub(super) struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// 0-based line of a byte offset.
    pub fn line_of(&self, byte: usize) -> u32 {
        (self
            .starts
            .partition_point(|&s| s <= byte)
            .saturating_sub(1)) as u32
    }

    pub fn start_of(&self, line: u32) -> usize {
        self.starts.get(line as usize).copied().unwrap_or(self.len)
    }

    /// The end of a line, including its newline.
    pub fn end_of(&self, line: u32) -> usize {
        self.starts
            .get(line as usize + 1)
            .copied()
            .unwrap_or(self.len)
    }
}
