//! The context bundle: what an agent sees for a selection, ranked and fitted to a token budget.
//!
//! Candidates come from the syntax tree of the current file (the selection, its enclosing items,
//! imports, the test module) and from the workspace index (definitions the selection uses,
//! callers, tests, what the goal names, crate facts). Each is scored from its kind, the
//! personalised PageRank of its file, how ambiguous its name is, the goal, and its distance from
//! the selection; then the best are taken greedily until the budget is spent, falling back to a
//! definition's signature when its body does not fit. Every item says why it is there and what it
//! costs.
//!
//! The parts: [`seed`] reads the file and works out the selection and the file ranking;
//! [`candidates`] has one function per candidate source; [`fit`] fits them to the budget;
//! [`render`] writes a bundle as a prompt, a document or a listing; [`structure`] reads the
//! file's enclosing items and imports from `context.scm`; [`partial`] parses only what a
//! bundle reads of a large file.

mod candidates;
mod fit;
mod names;
mod partial;
mod render;
mod resolve;
mod seed;
mod structure;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::PathBuf;

use serde::Serialize;

use super::index::WorkspaceIndex;
use super::tokens::Tokenizer;
use candidates::Covered;
use seed::{Ranking, Seed};

/// What to build a bundle for.
#[derive(Clone, Debug, Default)]
pub struct BundleRequest {
    /// The file, absolute or relative to the workspace root.
    pub file: PathBuf,
    /// The file's live text (the editor's buffer); `None` reads the indexed copy, then the disk.
    pub text: Option<String>,
    /// A syntax tree of exactly that text, when the caller keeps one (the editor's document
    /// does): the bundle then does not parse the file again. Ignored without `text`, and when
    /// it does not span the text.
    pub tree: Option<tree_sitter::Tree>,
    /// The selection in bytes; an empty range is a cursor, which selects the item around it.
    pub range: Range<usize>,
    /// What the developer wants done, if said; identifiers in it steer the ranking.
    pub goal: Option<String>,
    /// The token budget; `None` uses `context.budget`.
    pub budget: Option<usize>,
}

/// Why an item is in a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// The selected code (or the item under the cursor).
    Selection,
    /// An item that encloses the selection: its doc and signature.
    Enclosing,
    /// A definition the selection uses, or one the goal names.
    Definition,
    /// A function that calls the selected function.
    Caller,
    /// A test that exercises the selected code, or the file's test module.
    Test,
    /// The `use` declarations in scope.
    Imports,
    /// The crate's name, edition and dependencies.
    Crate,
    /// Names the selection uses from outside the workspace (`axum::extract::State`), listed
    /// rather than matched to same-named local items.
    External,
    /// A signature from one of the files ranked closest to the selection: the repository map
    /// that fills what budget is left.
    Map,
}

impl ItemKind {
    fn label(self) -> &'static str {
        match self {
            ItemKind::Selection => "selection",
            ItemKind::Enclosing => "enclosing",
            ItemKind::Definition => "definition",
            ItemKind::Caller => "caller",
            ItemKind::Test => "test",
            ItemKind::Imports => "imports",
            ItemKind::Crate => "crate",
            ItemKind::External => "external",
            ItemKind::Map => "map",
        }
    }
}

/// One piece of context.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ContextItem {
    /// Why it is here, as a category.
    pub kind: ItemKind,
    /// The file, relative to the workspace root, with `/` separators.
    pub file: String,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based, inclusive.
    pub end_line: u32,
    /// The symbol it is about, if any.
    pub symbol: Option<String>,
    /// Why it was included, in words.
    pub reason: String,
    /// Its ranking score, 0–1.
    pub score: f64,
    /// What it costs, in tokens of the bundle's tokenizer: its block in `to_prompt` and the
    /// blank line after it.
    pub tokens: usize,
    /// The code or facts themselves.
    pub text: String,
    /// For a definition: whether its name resolved for certain (through an import, a path,
    /// this file or a known receiver type, to exactly one definition) rather than by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certain: Option<bool>,
}

impl ContextItem {
    /// An item without a symbol, its tokens still to be counted.
    pub(crate) fn new(
        kind: ItemKind,
        file: String,
        start_line: u32,
        end_line: u32,
        reason: String,
        score: f64,
        text: String,
    ) -> ContextItem {
        ContextItem {
            kind,
            file,
            start_line,
            end_line,
            symbol: None,
            reason,
            score,
            tokens: 0,
            text,
            certain: None,
        }
    }
}

/// A candidate that did not fit the budget.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OmittedItem {
    /// Its kind.
    pub kind: ItemKind,
    /// Its file.
    pub file: String,
    /// Its symbol.
    pub symbol: Option<String>,
    /// Its score.
    pub score: f64,
    /// What it would have cost.
    pub tokens: usize,
}

/// The context for one selection.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ContextBundle {
    /// The file the selection is in, as given relative to the root.
    pub file: String,
    /// The goal, if any.
    pub goal: Option<String>,
    /// Items in decreasing score.
    pub items: Vec<ContextItem>,
    /// What the whole `to_prompt` rendering costs: the items' blocks plus its opening line and
    /// goal line. Never more than `budget` unless the budget cannot hold even those lines.
    pub total_tokens: usize,
    /// The budget the items were fitted to.
    pub budget: usize,
    /// The tokenizer tokens were counted with.
    pub tokenizer: String,
    /// Candidates left out for lack of budget, best first.
    pub omitted: Vec<OmittedItem>,
    /// Things the developer should know (file outside the workspace, truncated selection, …).
    pub notes: Vec<String>,
}

/// Builds the bundle for `request` from `index`.
pub fn build_bundle(
    index: &WorkspaceIndex,
    request: &BundleRequest,
) -> anyhow::Result<ContextBundle> {
    let settings = index.settings();
    let mut notes = Vec::new();
    let tokenizer = Tokenizer::from_name(&settings.tokenizer).unwrap_or_else(|| {
        notes.push(format!(
            "unknown tokenizer `{}`; counting tokens as bytes / 4",
            settings.tokenizer
        ));
        Tokenizer::Estimate
    });
    let budget = request.budget.unwrap_or(settings.budget);
    let seed = Seed::new(index, request, &mut notes)?;
    let ranking = Ranking::new(&seed);
    let (max_body_lines, max_callers) = (settings.max_body_lines, settings.max_callers);

    let mut covered = Covered::new();
    let mut all = candidates::selection(&seed);
    all.extend(candidates::enclosing(&seed));
    all.extend(candidates::imports(&seed));
    all.extend(candidates::crate_facts(&seed));
    all.extend(candidates::definitions(
        &seed,
        &ranking,
        max_body_lines,
        &mut covered,
    ));
    all.extend(candidates::callers(
        &seed,
        &ranking,
        max_callers,
        max_body_lines,
    ));
    all.extend(candidates::tests(
        &seed,
        &ranking,
        max_callers,
        max_body_lines,
    ));
    all.extend(candidates::repository_map(&seed, &ranking, &covered));

    fit::fit(
        all,
        budget,
        tokenizer,
        seed.display,
        request.goal.clone(),
        notes,
    )
}
