//! A bundle as text: the prompt the agents send, the document the editor opens, and the
//! command line's listing.

use std::fmt::Write as _;

use super::{ContextBundle, ContextItem, ItemKind};

/// The first line of every prompt (and the blank line after it).
pub(super) const PROMPT_OPENING: &str =
    "Context from the workspace, each block headed by its file, lines and why it is included.\n\n";

/// The last line of a prompt with a goal.
pub(super) fn goal_line(goal: &str) -> String {
    format!("Goal: {goal}\n")
}

/// What one item adds to the prompt: its block and the blank line after it. Its token count is
/// measured on exactly this.
pub(super) fn prompt_block(item: &ContextItem) -> String {
    let mut block = render_item(item);
    block.push('\n');
    block
}

/// How one item reads in the prompt and in nothing else: header line and fenced text.
fn render_item(item: &ContextItem) -> String {
    let symbol = item
        .symbol
        .as_deref()
        .map(|s| format!(" `{s}`"))
        .unwrap_or_default();
    let fence = if matches!(item.kind, ItemKind::Crate | ItemKind::External) {
        "text"
    } else {
        "rust"
    };
    format!(
        "{}:{}-{} ({}{symbol}: {})\n```{fence}\n{}\n```\n",
        item.file,
        item.start_line,
        item.end_line,
        item.kind.label(),
        item.reason,
        item.text.trim_end_matches('\n')
    )
}

impl ContextBundle {
    /// The bundle as the model sees it: crate facts and imports first, the selection last, so
    /// the code to work on sits nearest the instructions that follow.
    pub fn to_prompt(&self) -> String {
        let order = |kind: ItemKind| match kind {
            ItemKind::Crate => 0,
            ItemKind::External => 0,
            ItemKind::Map => 1,
            ItemKind::Imports => 1,
            ItemKind::Definition => 2,
            ItemKind::Caller => 3,
            ItemKind::Test => 4,
            ItemKind::Enclosing => 5,
            ItemKind::Selection => 6,
        };
        let mut items: Vec<&ContextItem> = self.items.iter().collect();
        items.sort_by_key(|i| order(i.kind));
        let mut out = String::from(PROMPT_OPENING);
        for item in items {
            out.push_str(&prompt_block(item));
        }
        if let Some(goal) = &self.goal {
            out.push_str(&goal_line(goal));
        }
        out
    }

    /// The bundle as a document for the developer: a table of what is in it and why, then the
    /// items.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# Context for `{}`\n\n", self.file);
        if let Some(goal) = &self.goal {
            let _ = writeln!(out, "Goal: {goal}\n");
        }
        let _ = writeln!(
            out,
            "{} of {} tokens used ({}), {} items, {} left out.\n",
            self.total_tokens,
            self.budget,
            self.tokenizer,
            self.items.len(),
            self.omitted.len()
        );
        for note in &self.notes {
            let _ = writeln!(out, "> {note}");
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        out.push_str(
            "| # | kind | where | symbol | score | tokens | why |\n|---|---|---|---|---|---|---|\n",
        );
        for (i, item) in self.items.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {}:{}-{} | {} | {:.2} | {} | {} |",
                i + 1,
                item.kind.label(),
                item.file,
                item.start_line,
                item.end_line,
                item.symbol.as_deref().unwrap_or(""),
                item.score,
                item.tokens,
                item.reason.replace('|', "\\|")
            );
        }
        for (i, item) in self.items.iter().enumerate() {
            let _ = write!(
                out,
                "\n## {}. {} · {}:{}-{}\n\n{}\n\n```{}\n{}\n```\n",
                i + 1,
                item.kind.label(),
                item.file,
                item.start_line,
                item.end_line,
                item.reason,
                if matches!(item.kind, ItemKind::Crate | ItemKind::External) {
                    "text"
                } else {
                    "rust"
                },
                item.text.trim_end_matches('\n')
            );
        }
        if !self.omitted.is_empty() {
            out.push_str("\n## Left out for lack of budget\n\n");
            for o in &self.omitted {
                let _ = writeln!(
                    out,
                    "- {} {} in {} ({} tokens, score {:.2})",
                    o.kind.label(),
                    o.symbol.as_deref().unwrap_or(""),
                    o.file,
                    o.tokens,
                    o.score
                );
            }
        }
        out
    }

    /// A short plain-text listing (the CLI's `text` format).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for item in &self.items {
            let _ = writeln!(
                out,
                "{:<10} {}:{}-{}  {}  score {:.2}  {} tokens  — {}",
                item.kind.label(),
                item.file,
                item.start_line,
                item.end_line,
                item.symbol.as_deref().unwrap_or("-"),
                item.score,
                item.tokens,
                item.reason
            );
        }
        let _ = writeln!(
            out,
            "{} of {} tokens ({}); {} candidates left out",
            self.total_tokens,
            self.budget,
            self.tokenizer,
            self.omitted.len()
        );
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}
