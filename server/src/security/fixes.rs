//! The fixes offered with a finding: a rule's fix templates filled from the match's captures
//! (a replacement, or a line inserted above), and the suppression comment every finding can
//! take.

use tree_sitter::Node;

use super::{Fix, FixTemplate};

pub(super) fn line_start(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1)
}

/// The start of the line `node` starts on, from the column tree-sitter keeps for it: searching
/// back for the newline costs the length of the line, and on a document of one long line that
/// was the whole text before the node, for every finding (quadratic). The column is checked
/// against the text in O(1) (a node of a tree parsed from other text falls back to the
/// search).
pub(super) fn node_line_start(node: Node<'_>, text: &str) -> usize {
    let start = node.start_byte();
    match start.checked_sub(node.start_position().column) {
        Some(0) => 0,
        Some(at) if text.as_bytes().get(at - 1) == Some(&b'\n') => at,
        _ => line_start(text, start),
    }
}

fn indentation(text: &str, start: usize) -> &str {
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c != ' ' && c != '\t')
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The comment that suppresses `rule_id` on the line that starts at byte `start`.
pub(super) fn suppression_fix(rule_id: &str, start: usize, text: &str) -> Fix {
    let indent = indentation(text, start);
    Fix {
        title: format!("Suppress {rule_id} here (with a reason)"),
        edits: vec![(
            start..start,
            format!("{indent}// conductor: allow({rule_id}) <reason>\n"),
        )],
    }
}

pub(super) fn build_fix(
    template: &FixTemplate,
    captures: &[(&'static str, Node<'_>)],
    text: &str,
) -> Option<Fix> {
    let target = captures
        .iter()
        .find(|(n, _)| *n == template.target)
        .map(|(_, node)| *node)?;
    if let Some(replace) = &template.replace {
        let mut out = String::new();
        let mut rest = replace.as_str();
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let close = after.find("}}")?;
            let name = &after[..close];
            let node = captures.iter().find(|(n, _)| *n == name)?.1;
            out.push_str(text.get(node.byte_range())?);
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        return Some(Fix {
            title: template.title.clone(),
            edits: vec![(target.byte_range(), out)],
        });
    }
    if let Some(line) = &template.insert_line_before {
        let start = node_line_start(target, text);
        let indent = indentation(text, start);
        return Some(Fix {
            title: template.title.clone(),
            edits: vec![(start..start, format!("{indent}{line}\n"))],
        });
    }
    None
}
