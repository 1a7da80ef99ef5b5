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

fn indentation(text: &str, start: usize) -> &str {
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c != ' ' && c != '\t')
        .unwrap_or(rest.len());
    &rest[..end]
}

pub(super) fn suppression_fix(rule_id: &str, at: usize, text: &str) -> Fix {
    let start = line_start(text, at);
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
        let start = line_start(text, target.start_byte());
        let indent = indentation(text, start);
        return Some(Fix {
            title: template.title.clone(),
            edits: vec![(start..start, format!("{indent}{line}\n"))],
        });
    }
    None
}
