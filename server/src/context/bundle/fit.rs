//! Fitting candidates to the token budget.

use super::candidates::Candidate;
use super::render::{PROMPT_OPENING, goal_line, prompt_block};
use super::{ContextBundle, ContextItem, ItemKind, OmittedItem};
use crate::context::tokens::Tokenizer;

/// Takes candidates best-first while they fit; a definition whose body does not fit may still
/// fit as its signature. The selection always goes in, cut to the budget if it must be.
///
/// The budget is for everything `to_prompt` emits: its opening line and goal line are counted
/// first, then each item's block with the blank line after it. Token counts of pieces need not
/// add up exactly to the count of their concatenation, so the finished prompt is counted once
/// more and the lowest-scored items give way until it fits.
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
    let frame = tokenizer.count(PROMPT_OPENING)
        + goal
            .as_deref()
            .map_or(0, |g| tokenizer.count(&goal_line(g)));
    if frame > budget {
        notes.push(format!(
            "the budget of {budget} tokens is too small for the prompt's opening and goal lines ({frame} tokens)"
        ));
    }
    let mut used = frame;
    for Candidate { mut item, compact } in candidates {
        item.tokens = tokenizer.count(&prompt_block(&item));
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
                let tokens = tokenizer.count(&prompt_block(&candidate));
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
            let tokens = tokenizer.count(&prompt_block(&candidate));
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
    let mut bundle = ContextBundle {
        file,
        goal,
        items,
        total_tokens: 0,
        budget,
        tokenizer: tokenizer.to_string(),
        omitted,
        notes,
    };
    bundle.total_tokens = tokenizer.count(&bundle.to_prompt());
    while bundle.total_tokens > budget && bundle.items.len() > usize::from(frame <= budget) {
        // Items are in decreasing score, the selection first: the last one weighs least.
        let Some(item) = bundle.items.pop() else {
            break;
        };
        bundle.omitted.insert(
            0,
            OmittedItem {
                kind: item.kind,
                file: item.file,
                symbol: item.symbol,
                score: item.score,
                tokens: item.tokens,
            },
        );
        bundle.total_tokens = tokenizer.count(&bundle.to_prompt());
    }
    Ok(bundle)
}
