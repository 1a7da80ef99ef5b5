//! Fitting candidates to the token budget.

use super::candidates::Candidate;
use super::render::{PROMPT_OPENING, goal_line, prompt_block};
use super::{ContextBundle, ContextItem, ItemKind, OmittedItem};
use crate::context::tokens::Tokenizer;

/// The tokens a definition's block costs beyond its text (its header line and the blank line),
/// for the estimate of the room kept for definitions still to come.
const BLOCK_OVERHEAD: usize = 24;

/// Takes candidates best-first while they fit, keeping room for the signatures of the certain
/// definitions still to come; a definition whose body does not fit may still fit as its
/// signature, and gets its body back at the end if room is left. The selection always goes
/// in, cut to the budget if it must be.
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
    candidates.sort_by(|a, b| best_first(&a.item, &b.item));
    // A definition matched by name alone may be another item of that name: it is taken only
    // with the budget the certain items left, so that it never displaces one; the repository
    // map, which resolves nothing, comes after it.
    let (mut candidates, last): (Vec<Candidate>, Vec<Candidate>) = candidates
        .into_iter()
        .partition(|c| !matched_by_name(&c.item) && c.item.kind != ItemKind::Map);
    let (mut by_name, map): (Vec<Candidate>, Vec<Candidate>) =
        last.into_iter().partition(|c| matched_by_name(&c.item));
    for c in &mut by_name {
        c.item.reason.push_str(BY_NAME_LABEL);
        if let Some((_, reason)) = &mut c.compact {
            reason.push_str(BY_NAME_LABEL);
        }
    }
    let by_name_from = (!by_name.is_empty() || !map.is_empty()).then_some(candidates.len());
    candidates.extend(by_name);
    candidates.extend(map);
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
    // Breadth before depth: every certain definition still to come keeps room for its cheapest
    // form (its signature), so a few long bodies early in the order cannot crowd out the
    // definitions after them. The room is an estimate (bytes / 4), capped so that callers and
    // tests still get a share; what it leaves unused goes to bodies and to the items passed
    // over, in two passes at the end.
    let floors: Vec<usize> = candidates
        .iter()
        .map(|c| {
            // Only a definition the name certainly leads to: one matched by name alone may be
            // another item of that name, and keeping room for it would trade precision away.
            if c.item.kind != ItemKind::Definition || c.item.certain != Some(true) {
                return 0;
            }
            let text = c.compact.as_ref().map_or(&c.item.text, |(t, _)| t);
            text.len() / 4 + BLOCK_OVERHEAD
        })
        .collect();
    let mut reserve: usize = floors.iter().sum();
    let cap = budget / 4;
    // Definitions that went in as their signature, with the whole text to upgrade to.
    let mut upgrades: Vec<(usize, ContextItem, usize)> = Vec::new();
    let mut passed_over: Vec<Candidate> = Vec::new();
    let mut by_name: Vec<Candidate> = Vec::new();
    for (at, (Candidate { mut item, compact }, floor)) in
        candidates.into_iter().zip(floors).enumerate()
    {
        if by_name_from.is_some_and(|from| at >= from) {
            by_name.push(Candidate { item, compact });
            continue;
        }
        reserve -= floor;
        let room = budget.saturating_sub(reserve.min(cap));
        item.tokens = tokenizer.count_cached(&prompt_block(&item));
        if used + item.tokens <= room
            || (item.kind == ItemKind::Selection && used + item.tokens <= budget)
        {
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
                let tokens = tokenizer.count_cached(&prompt_block(&candidate));
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
        if let Some((text, reason)) = &compact {
            let candidate = ContextItem {
                text: text.clone(),
                reason: reason.clone(),
                ..item.clone()
            };
            let tokens = tokenizer.count_cached(&prompt_block(&candidate));
            if used + tokens <= budget {
                used += tokens;
                upgrades.push((items.len(), item, tokens));
                items.push(ContextItem {
                    tokens,
                    ..candidate
                });
                continue;
            }
        }
        passed_over.push(Candidate { item, compact });
    }
    // Whole texts for the definitions that went in as signatures, best first, while they fit.
    for (at, whole, compact_tokens) in upgrades {
        if used - compact_tokens + whole.tokens <= budget {
            used = used - compact_tokens + whole.tokens;
            items[at] = whole;
        }
    }
    // Then what was passed over to keep room, best first, in whichever form fits; then the
    // definitions matched by name alone and the map, with what is left.
    for Candidate { mut item, compact } in passed_over.into_iter().chain(by_name) {
        if item.tokens == 0 {
            item.tokens = tokenizer.count_cached(&prompt_block(&item));
        }
        if used + item.tokens <= budget {
            used += item.tokens;
            items.push(item);
            continue;
        }
        if let Some((text, reason)) = compact {
            let candidate = ContextItem {
                text,
                reason,
                ..item.clone()
            };
            let tokens = tokenizer.count_cached(&prompt_block(&candidate));
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
    // The final trim below drops the last items first: keep them in decreasing score.
    items.sort_by(best_first);
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
    bundle.total_tokens = match tokenizer {
        // A prompt whose blocks end and begin where the tokenizer's pre-split would cut anyway
        // costs exactly the sum of its pieces: counting it again would only repeat the work.
        Tokenizer::O200k | Tokenizer::Cl100k if pieces_add_up(&bundle.items) => {
            frame + bundle.items.iter().map(|i| i.tokens).sum::<usize>()
        }
        _ => tokenizer.count(&bundle.to_prompt()),
    };
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

/// Said in the reason of a definition matched by name alone, which the fit takes last.
const BY_NAME_LABEL: &str = "; uncertain, so taken only with the budget the certain items left";

/// Whether an item is a definition its name may not lead to (matched by name alone).
fn matched_by_name(item: &ContextItem) -> bool {
    item.kind == ItemKind::Definition && item.certain == Some(false)
}

/// Whether the BPE tokenizers split the prompt at every block boundary, so that its count is
/// the sum of the blocks' counts and the opening and goal lines'. Every block (and the
/// opening) ends with punctuation and a blank line (`` ```\n\n ``, `.\n\n`), which their
/// pre-split patterns take as one piece that stops before anything but `/`, `\r` or `\n`;
/// what follows is a block's header, which starts with its file, or the goal line. So the
/// pieces line up when no file starts with anything but a letter, digit or `_`.
fn pieces_add_up(items: &[ContextItem]) -> bool {
    items.iter().all(|i| {
        i.file
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The order items are taken and shown in: decreasing score, then kind, file and line.
fn best_first(a: &ContextItem, b: &ContextItem) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.kind.cmp(&b.kind))
        .then(a.file.cmp(&b.file))
        .then(a.start_line.cmp(&b.start_line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(name: &str, score: f64, body_lines: usize) -> Candidate {
        let body: String = (0..body_lines)
            .map(|i| format!("    let value_{i} = compute_something_long({i}, {i} * 2);\n"))
            .collect();
        let mut item = ContextItem::new(
            ItemKind::Definition,
            "src/lib.rs".into(),
            1,
            body_lines as u32 + 2,
            format!("`{name}` is used by the selection"),
            score,
            format!("fn {name}() {{\n{body}}}"),
        );
        item.symbol = Some(name.into());
        item.certain = Some(true);
        Candidate {
            item,
            compact: Some((format!("fn {name}() {{ … }}"), "signature only".to_string())),
        }
    }

    #[test]
    fn a_long_body_does_not_crowd_out_the_definitions_after_it() {
        let selection = Candidate {
            item: ContextItem::new(
                ItemKind::Selection,
                "src/main.rs".into(),
                1,
                1,
                "the selection".into(),
                1.0,
                "fn main() { first(); second(); third(); }".into(),
            ),
            compact: None,
        };
        // The budget holds the selection and the first definition's whole body, and one token
        // less than the next definition's signature: taken greedily, the first body left no
        // room for the two definitions after it.
        let tokenizer = Tokenizer::Estimate;
        let first = definition("first", 0.9, 50);
        let second = definition("second", 0.8, 2);
        let cost = |item: &ContextItem| tokenizer.count_cached(&prompt_block(item));
        let second_signature = ContextItem {
            text: second.compact.clone().expect("a signature").0,
            ..second.item.clone()
        };
        let budget = tokenizer.count(PROMPT_OPENING)
            + cost(&selection.item)
            + cost(&first.item)
            + cost(&second_signature)
            - 1;
        let candidates = vec![selection, first, second, definition("third", 0.7, 2)];
        let bundle = fit(
            candidates,
            budget,
            Tokenizer::Estimate,
            "src/main.rs".into(),
            None,
            Vec::new(),
        )
        .expect("fitted");
        let symbols: Vec<(&str, bool)> = bundle
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::Definition)
            .map(|i| {
                (
                    i.symbol.as_deref().unwrap_or(""),
                    i.reason.ends_with("signature only"),
                )
            })
            .collect();
        assert_eq!(
            symbols,
            [("first", true), ("second", false), ("third", false)]
        );
        assert!(bundle.total_tokens <= budget);
        assert!(bundle.omitted.is_empty());
    }

    #[test]
    fn room_left_at_the_end_gives_a_signature_its_body_back() {
        let bundle = fit(
            vec![definition("first", 0.9, 10), definition("second", 0.8, 2)],
            2_000,
            Tokenizer::Estimate,
            "src/main.rs".into(),
            None,
            Vec::new(),
        )
        .expect("fitted");
        assert!(
            bundle
                .items
                .iter()
                .all(|i| !i.reason.ends_with("signature only")),
            "{:?}",
            bundle.items.iter().map(|i| &i.reason).collect::<Vec<_>>()
        );
        assert_eq!(bundle.items.len(), 2);
    }
}
