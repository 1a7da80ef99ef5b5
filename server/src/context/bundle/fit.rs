//! Fitting candidates to the token budget.

use super::candidates::Candidate;
use super::render::render_item;
use super::{ContextBundle, ContextItem, ItemKind, OmittedItem};
use crate::context::tokens::Tokenizer;

/// Takes candidates best-first while they fit; a definition whose body does not fit may still
/// fit as its signature. The selection always goes in, cut to the budget if it must be.
pub(super) fn fit(
    mut candidates: Vec<Candidate>,
    budget: usize,
    tokenizer: Tokenizer,
    file: String,
    goal: Option<String>,
    mut notes: Vec<String>,
) -> anyhow::Result<ContextBundle> {
    candidates.sort_by(|a, b| {
        b.item
            .score
            .total_cmp(&a.item.score)
            .then(a.item.kind.cmp(&b.item.kind))
            .then(a.item.file.cmp(&b.item.file))
            .then(a.item.start_line.cmp(&b.item.start_line))
    });
    let mut items = Vec::new();
    let mut omitted = Vec::new();
    let mut used = 0usize;
    for Candidate { mut item, compact } in candidates {
        item.tokens = tokenizer.count(&render_item(&item));
        if used + item.tokens <= budget {
            used += item.tokens;
            items.push(item);
            continue;
        }
        if item.kind == ItemKind::Selection {
            // Cut the selection line by line until it fits what is left.
            let lines: Vec<&str> = item.text.lines().collect();
            let mut keep = lines.len();
            while keep > 0 {
                keep = keep * 3 / 4;
                let mut cut = lines[..keep].join("\n");
                cut.push_str("\n// … (selection cut to fit the budget)");
                let candidate = ContextItem {
                    text: cut,
                    ..item.clone()
                };
                let tokens = tokenizer.count(&render_item(&candidate));
                if used + tokens <= budget {
                    notes.push(format!(
                        "the selection was cut to its first {keep} of {} lines to fit the budget of {budget} tokens",
                        lines.len()
                    ));
                    used += tokens;
                    items.push(ContextItem {
                        tokens,
                        ..candidate
                    });
                    break;
                }
            }
            if keep == 0 {
                notes.push(format!(
                    "the budget of {budget} tokens is too small for any of the selection"
                ));
            }
            continue;
        }
        if let Some((text, reason)) = compact {
            let candidate = ContextItem {
                text,
                reason,
                ..item.clone()
            };
            let tokens = tokenizer.count(&render_item(&candidate));
            if used + tokens <= budget {
                used += tokens;
                items.push(ContextItem {
                    tokens,
                    ..candidate
                });
                continue;
            }
        }
        omitted.push(OmittedItem {
            kind: item.kind,
            file: item.file,
            symbol: item.symbol,
            score: item.score,
            tokens: item.tokens,
        });
    }
    Ok(ContextBundle {
        file,
        goal,
        items,
        total_tokens: used,
        budget,
        tokenizer: tokenizer.to_string(),
        omitted,
        notes,
    })
}
