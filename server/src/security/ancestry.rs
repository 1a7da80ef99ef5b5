//! A node's ancestors and previous siblings, found from the tree's top-level items by binary
//! search and a descent from the one that holds the node.
//!
//! Tree-sitter keeps no parent links: `Node::parent` and `Node::prev_named_sibling` search down
//! from the root, through every top-level item before the node. On a file of many items (a
//! megabyte on one line: 13,000 functions) every walk up from a hit then cost time in proportion
//! to the items before it, and the first scan grew with the square of their number. Every walk
//! up in the scan (rule predicates, the data flow, the crate summaries) goes through here.

use tree_sitter::{Node, Tree};

/// Deeper than any tree the parser keeps ([`crate::syntax::MAX_TREE_DEPTH`] and the
/// scan's depth guard stop well before): a bound on the descent, not a limit that is reached.
const MAX_DESCENT: usize = 1 << 16;

/// A tree's root and top-level nodes in order ([`top_level`]): what a walk up needs to find any
/// node's ancestors without searching through the items before it.
#[derive(Clone, Copy)]
pub(crate) struct Ancestry<'a, 't> {
    root: Node<'t>,
    top: &'a [Node<'t>],
}

/// The top-level nodes of `tree`, in order: walked once per scan and shared by every item's
/// scan and every walk up ([`Ancestry`]).
pub(crate) fn top_level(tree: &Tree) -> Vec<Node<'_>> {
    let root = tree.root_node();
    let mut c = root.walk();
    root.children(&mut c).collect()
}

impl<'a, 't> Ancestry<'a, 't> {
    /// `top` must be the root's children in order ([`top_level`] of the root's tree).
    pub(crate) fn new(root: Node<'t>, top: &'a [Node<'t>]) -> Self {
        Ancestry { root, top }
    }

    pub(crate) fn root(&self) -> Node<'t> {
        self.root
    }

    /// The top-level nodes that may be `node` or hold it, most likely first: the last one
    /// starting at or before it, then the one before (items may touch, and an empty node may
    /// sit at the end of the item before).
    fn candidates(&self, node: Node<'t>) -> impl Iterator<Item = Node<'t>> + '_ {
        let (start, end) = (node.start_byte(), node.end_byte());
        let after = self.top.partition_point(|n| n.start_byte() <= start);
        self.top[after.saturating_sub(2)..after]
            .iter()
            .rev()
            .copied()
            .filter(move |n| n.start_byte() <= start && end <= n.end_byte())
    }

    /// Whether `node` is one of the top-level nodes.
    fn is_top_level(&self, node: Node<'t>) -> bool {
        self.candidates(node).any(|n| n.id() == node.id())
    }

    /// The ancestors of `node` from the root down to its parent (empty for the root). The same
    /// nodes as following `Node::parent` up, in the opposite order.
    pub(crate) fn path(&self, node: Node<'t>) -> Vec<Node<'t>> {
        if node.id() == self.root.id() {
            return Vec::new();
        }
        self.candidates(node)
            .find_map(|item| self.descend(item, node))
            .unwrap_or_else(|| walk_up(node))
    }

    /// [`Self::path`] by descending from the top-level node `item`; `None` when `node` is not
    /// found under it (another item holds it, or it is a node of another tree: the re-parsed
    /// macro arguments).
    fn descend(&self, item: Node<'t>, node: Node<'t>) -> Option<Vec<Node<'t>>> {
        let mut path = vec![self.root];
        if item.id() == node.id() {
            return Some(path);
        }
        path.push(item);
        let mut current = item;
        while path.len() < MAX_DESCENT {
            let child = current.child_with_descendant(node)?;
            if child.id() == node.id() {
                return Some(path);
            }
            path.push(child);
            current = child;
        }
        None
    }

    /// The parent of `node` (the root for a top-level node; `None` for the root).
    pub(crate) fn parent(&self, node: Node<'t>) -> Option<Node<'t>> {
        if node.id() == self.root.id() {
            return None;
        }
        if self.is_top_level(node) {
            return Some(self.root);
        }
        self.path(node).pop()
    }

    /// The ancestors of `node`, nearest first, the root last.
    pub(crate) fn ancestors(&self, node: Node<'t>) -> impl Iterator<Item = Node<'t>> {
        self.path(node).into_iter().rev()
    }

    /// The function item around `node`, the nearest one (not `node` itself).
    pub(crate) fn enclosing_function(&self, node: Node<'t>) -> Option<Node<'t>> {
        self.ancestors(node).find(|n| n.kind() == "function_item")
    }

    /// The named sibling just before `node`, as `Node::prev_named_sibling` gives it.
    pub(crate) fn prev_named_sibling(&self, node: Node<'t>) -> Option<Node<'t>> {
        if self.is_top_level(node) {
            let at = self
                .top
                .partition_point(|n| n.start_byte() < node.start_byte());
            let at = (at..self.top.len())
                .find(|&i| self.top[i].id() == node.id())
                .unwrap_or(at);
            return self.top[..at].iter().rev().find(|n| n.is_named()).copied();
        }
        let Some(parent) = self.parent(node) else {
            return node.prev_named_sibling();
        };
        let mut c = parent.walk();
        let mut previous = None;
        for child in parent.named_children(&mut c) {
            if child.id() == node.id() {
                return previous;
            }
            previous = Some(child);
        }
        // Not found among its parent's children (a hidden node in between): tree-sitter's own.
        node.prev_named_sibling()
    }

    /// The smallest node that spans `start..end`, as `Node::descendant_for_byte_range` of the
    /// root gives it, searched from the top-level node that holds the range.
    pub(crate) fn descendant_for_byte_range(&self, start: usize, end: usize) -> Option<Node<'t>> {
        let after = self.top.partition_point(|n| n.start_byte() <= start);
        match after.checked_sub(1).map(|i| self.top[i]) {
            Some(item) if end <= item.end_byte() && start < item.end_byte() => {
                item.descendant_for_byte_range(start, end)
            }
            _ => self.root.descendant_for_byte_range(start, end),
        }
    }
}

/// Tree-sitter's walk up, for a node [`Ancestry::descend`] cannot place.
fn walk_up<'t>(node: Node<'t>) -> Vec<Node<'t>> {
    let mut path = Vec::new();
    let mut current = node.parent();
    while let Some(n) = current {
        path.push(n);
        current = n.parent();
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Tree {
        let mut parser = tree_sitter::Parser::new();
        parser
            .set_language(&tree_sitter_rust::LANGUAGE.into())
            .expect("grammar");
        parser.parse(text, None).expect("parse")
    }

    /// Every node of the tree, depth first.
    fn all_nodes(tree: &Tree) -> Vec<Node<'_>> {
        let mut out = Vec::new();
        let mut stack = vec![tree.root_node()];
        while let Some(n) = stack.pop() {
            out.push(n);
            let mut c = n.walk();
            stack.extend(n.children(&mut c));
        }
        out
    }

    /// The ids of `node`'s ancestors as tree-sitter's own `Node::parent` finds them, nearest
    /// first.
    fn tree_sitters_ancestors(node: Node<'_>) -> Vec<usize> {
        std::iter::successors(node.parent(), |p| p.parent())
            .map(|p| p.id())
            .collect()
    }

    #[test]
    fn every_node_gets_the_parent_and_previous_sibling_tree_sitter_gives() {
        // Items touching on one line, attributes and comments between items, an empty
        // (missing) node from a syntax error, nested closures, macros and modules.
        let text = "#[test]\nfn a(){let x=|y|{y+1};}fn b(){}/*c*/ mod m { // x\n fn c(q: u8) -> u8 { \
                    if q > 0 { return q } format!(\"{}\", q); q }\n}\nstruct S { f: u8 \nimpl S { fn d(&self) { self.f } }\nfn broken( {";
        let tree = parse(text);
        let top = top_level(&tree);
        let ancestry = Ancestry::new(tree.root_node(), &top);
        let nodes = all_nodes(&tree);
        assert!(nodes.len() > 100, "a tree worth checking: {}", nodes.len());
        assert!(nodes.iter().any(|n| n.is_missing() || n.is_error()));
        for node in nodes {
            assert_eq!(
                ancestry.parent(node).map(|p| p.id()),
                node.parent().map(|p| p.id()),
                "parent of {} at {:?}",
                node.kind(),
                node.byte_range()
            );
            let expected = tree_sitters_ancestors(node);
            let got: Vec<usize> = ancestry.ancestors(node).map(|n| n.id()).collect();
            assert_eq!(
                got,
                expected,
                "ancestors of {} at {:?}",
                node.kind(),
                node.byte_range()
            );
            if node.id() != tree.root_node().id() {
                assert_eq!(
                    ancestry.prev_named_sibling(node).map(|p| p.id()),
                    node.prev_named_sibling().map(|p| p.id()),
                    "previous sibling of {} at {:?}",
                    node.kind(),
                    node.byte_range()
                );
            }
        }
        for start in 0..text.len() {
            for end in [start, start + 1, start + 4] {
                let end = end.min(text.len());
                assert_eq!(
                    ancestry
                        .descendant_for_byte_range(start, end)
                        .map(|n| n.id()),
                    tree.root_node()
                        .descendant_for_byte_range(start, end)
                        .map(|n| n.id()),
                    "descendant for {start}..{end}"
                );
            }
        }
    }

    #[test]
    fn a_node_of_another_tree_is_placed_by_its_own_tree() {
        let text = "fn a() { let x = 1; }";
        let tree = parse(text);
        let other = parse(text);
        let top = top_level(&tree);
        let ancestry = Ancestry::new(tree.root_node(), &top);
        let foreign = other
            .root_node()
            .descendant_for_byte_range(13, 14)
            .expect("the `x`");
        let got: Vec<usize> = ancestry.ancestors(foreign).map(|n| n.id()).collect();
        assert_eq!(got, tree_sitters_ancestors(foreign));
        assert_eq!(
            ancestry.enclosing_function(foreign).map(|f| f.id()),
            other.root_node().child(0).map(|f| f.id())
        );
    }
}
