//! The context bundle: what an agent sees for a selection, ranked and fitted to a token budget.
//!
//! Candidates come from the syntax tree of the current file (the selection, its enclosing items,
//! imports, the test module) and from the workspace index (definitions the selection uses,
//! callers, tests, what the goal names, crate facts). Each is scored from its kind, the
//! personalised PageRank of its file, how ambiguous its name is, the goal, and its distance from
//! the selection; then the best are taken greedily until the budget is spent, falling back to a
//! definition's signature when its body does not fit. Every item says why it is there and what it
//! costs.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tree_sitter::{QueryCursor, StreamingIterator as _, Tree};

use super::index::{FileId, WorkspaceIndex};
use super::tags::{self, Definition, FileTags, RefKind, SymbolKind};
use super::tokens::Tokenizer;
use crate::syntax::Language;

/// What to build a bundle for.
#[derive(Clone, Debug, Default)]
pub struct BundleRequest {
    /// The file, absolute or relative to the workspace root.
    pub file: PathBuf,
    /// The file's live text (the editor's buffer); `None` reads the indexed copy, then the disk.
    pub text: Option<String>,
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
    /// What it costs, in tokens of the bundle's tokenizer, as rendered by `to_prompt`.
    pub tokens: usize,
    /// The code or facts themselves.
    pub text: String,
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
    /// Sum of the items' tokens.
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

/// Why a definition is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Selection,
    Signature,
    Goal,
}

/// A scored candidate before fitting.
struct Candidate {
    item: ContextItem,
    /// A cheaper version (signature only) to fall back to when the item does not fit.
    compact: Option<(String, String)>,
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
    if index.secrets().is_secret(&request.file) {
        bail!(
            "{} looks like a secret file; it never enters context",
            request.file.display()
        );
    }
    let (rel, current) = match index.relative(&request.file) {
        Ok(rel) => {
            let id = index.file_id(&rel);
            (rel, id)
        }
        Err(err) => {
            notes.push(format!(
                "{err:#}: only the file itself and definitions from the workspace index are used"
            ));
            (request.file.clone(), None)
        }
    };
    let display = display_path(&rel);
    let text: String = match (&request.text, current.and_then(|id| index.file(id))) {
        (Some(text), _) => text.clone(),
        (None, Some(file)) => file.text.to_string(),
        (None, None) => {
            let path = if rel.is_absolute() {
                rel.clone()
            } else {
                index.root().join(&rel)
            };
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
        }
    };
    let rust = Language::by_name("rust").context("the rust language is not registered")?;
    if Language::for_path(&rel).is_none() {
        notes.push(format!(
            "{display} is not a Rust file; reading it as Rust anyway"
        ));
    }
    let tree = rust
        .parse(&text)
        .with_context(|| format!("parsing {display}"))?;
    let live = tags::extract(&text, &tree)?;
    let structure = file_structure(&text, &tree)?;
    let lines = LineIndex::new(&text);

    let range = clamp_range(&text, request.range.clone());
    let enclosing: Vec<&StructureItem> = {
        let mut items: Vec<&StructureItem> = structure
            .items
            .iter()
            .filter(|i| i.range.start <= range.start && range.end <= i.range.end)
            .collect();
        items.sort_by_key(|i| i.range.len());
        items
    };
    // A cursor (or a selection inside one line of a function) stands for the function around it.
    let (selection, selection_reason, focus) = if range.is_empty() {
        match enclosing
            .iter()
            .find(|i| i.kind == "function")
            .or(enclosing.first())
        {
            Some(item) => (
                item.full.clone(),
                format!("the {} under the cursor", item.kind),
                Some(*item),
            ),
            None => {
                let line = lines.line_of(range.start);
                let start = lines.start_of(line.saturating_sub(10));
                let end = lines.end_of(line + 10);
                (start..end, "the lines around the cursor".to_string(), None)
            }
        }
    } else {
        let start = lines.start_of(lines.line_of(range.start));
        let end = lines.end_of(lines.line_of(range.end.saturating_sub(1).max(range.start)));
        let focus = enclosing.iter().find(|i| i.kind == "function").copied();
        (start..end, "the selection".to_string(), focus)
    };
    let focus_name = focus.and_then(|f| f.name.clone()).or_else(|| {
        // A selection that is exactly a function's signature or body still names it.
        live.definitions
            .iter()
            .find(|d| {
                d.kind.is_function()
                    && selection.start <= d.range.start
                    && d.range.end <= selection.end
            })
            .map(|d| d.name.clone())
    });

    let goal_words: HashSet<String> = request.goal.as_deref().map(identifiers).unwrap_or_default();

    // Personalise the walk on the current file and on the files defining goal identifiers.
    let mut home: HashMap<FileId, f64> = HashMap::new();
    if let Some(id) = current {
        home.insert(id, 1.0);
    }
    for word in &goal_words {
        let defs = index.definitions_of(word);
        for d in defs {
            *home.entry(d.file).or_default() += 0.5 / defs.len() as f64;
        }
    }
    let graph = index.graph();
    let rank = graph.pagerank(&home);
    let max_rank = rank
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i as FileId) != current)
        .map(|(_, r)| *r)
        .fold(0.0_f64, f64::max);
    let rank_of = |file: FileId| -> f64 {
        if max_rank <= 0.0 {
            0.0
        } else {
            (rank.get(file as usize).copied().unwrap_or(0.0) / max_rank).min(1.0)
        }
    };
    let current_crate = index.crate_for(&rel).map(|c| c.dir.clone());
    let same_crate = |path: &Path| -> bool {
        current_crate
            .as_ref()
            .is_some_and(|dir| index.crate_for(path).is_some_and(|c| &c.dir == dir))
    };

    let mut candidates: Vec<Candidate> = Vec::new();

    // The selection itself.
    let (sel_start, sel_end) = (
        lines.line_of(selection.start),
        lines.line_of(selection.end.saturating_sub(1).max(selection.start)),
    );
    candidates.push(Candidate {
        item: ContextItem {
            kind: ItemKind::Selection,
            file: display.clone(),
            start_line: sel_start + 1,
            end_line: sel_end + 1,
            symbol: focus_name.clone(),
            reason: selection_reason,
            score: 1.0,
            tokens: 0,
            text: text[selection.clone()].to_string(),
        },
        compact: None,
    });

    // Enclosing items: their doc and signature.
    for (depth, item) in enclosing.iter().enumerate() {
        if item.full.start >= selection.start && item.full.end <= selection.end {
            continue;
        }
        let header = format!(
            "{} {{ … }}",
            text[item.full.start..item.body_start].trim_end()
        );
        candidates.push(Candidate {
            item: ContextItem {
                kind: ItemKind::Enclosing,
                file: display.clone(),
                start_line: lines.line_of(item.full.start) + 1,
                end_line: lines.line_of(item.body_start) + 1,
                symbol: item.name.clone(),
                reason: format!("the {} that encloses the selection", item.kind),
                score: (0.98 - 0.01 * depth as f64).max(0.9),
                tokens: 0,
                text: header,
            },
            compact: None,
        });
    }

    // Imports in scope.
    // Those of the file's top level and of the modules around the selection, not those of
    // sibling modules such as `tests`.
    let in_scope: Vec<&Range<usize>> = structure
        .imports
        .iter()
        .filter(|import| {
            structure
                .items
                .iter()
                .filter(|m| {
                    m.kind == "module" && m.range.start <= import.start && import.end <= m.range.end
                })
                .all(|m| m.range.start <= selection.start && selection.end <= m.range.end)
        })
        .collect();
    if !in_scope.is_empty() {
        let first = in_scope.iter().map(|r| r.start).min().unwrap_or(0);
        let last = in_scope.iter().map(|r| r.end).max().unwrap_or(0);
        let mut block = String::new();
        for import in &in_scope {
            block.push_str(&text[(*import).clone()]);
            block.push('\n');
        }
        candidates.push(Candidate {
            item: ContextItem {
                kind: ItemKind::Imports,
                file: display.clone(),
                start_line: lines.line_of(first) + 1,
                end_line: lines.line_of(last) + 1,
                symbol: None,
                reason: "the imports in scope".into(),
                score: 0.9,
                tokens: 0,
                text: block,
            },
            compact: None,
        });
    }

    // Crate facts.
    if let Some(facts) = index.crate_for(&rel) {
        let manifest = facts.dir.join("Cargo.toml");
        let text = facts.render();
        candidates.push(Candidate {
            item: ContextItem {
                kind: ItemKind::Crate,
                file: display_path(&manifest),
                start_line: 1,
                end_line: 1,
                symbol: Some(facts.name.clone()),
                reason: "the crate's name, edition and dependencies".into(),
                score: 0.88,
                tokens: 0,
                text,
            },
            compact: None,
        });
    }

    // Definitions the selection uses, anywhere in the workspace.
    // Names in the selection first, then those in the signature of the function around it
    // (its parameter and return types frame whatever the selection does).
    let mut used: Vec<(&str, RefKind, Origin)> = Vec::new();
    let mut seen_names = HashSet::new();
    let signature = focus
        .filter(|f| f.kind == "function" && f.full.start < selection.start)
        .map_or(0..0, |f| f.full.start..f.body_start);
    for (range, origin) in [
        (selection.clone(), Origin::Selection),
        (signature, Origin::Signature),
    ] {
        for r in &live.references {
            if range.contains(&r.byte) && seen_names.insert(r.name.as_str()) {
                used.push((r.name.as_str(), r.kind, origin));
            }
        }
    }
    let mut covered: HashSet<(String, u32)> = HashSet::new();
    // `method_only`: the name is only called as `x.name()`, which cannot be a free function, and
    // whose receiver type we do not know, so a match is less certain.
    let mut push_definition =
        |candidates: &mut Vec<Candidate>, name: &str, origin: Origin, method_only: bool| {
            let from_goal = origin == Origin::Goal;
            // (file shown, file id or None for the live file, definition, its text)
            let mut found: Vec<(String, Option<FileId>, &Definition, &str)> = Vec::new();
            let fits = |d: &Definition| !method_only || d.kind == SymbolKind::Method;
            for d in &live.definitions {
                if d.name == name
                    && fits(d)
                    && !(d.range.start >= selection.start && d.range.end <= selection.end)
                    && !(d.range.start <= selection.start && selection.end <= d.range.end)
                {
                    found.push((display.clone(), None, d, text.as_str()));
                }
            }
            for id in index.definitions_of(name) {
                if Some(id.file) == current {
                    continue;
                }
                let (Some(file), Some(def)) = (index.file(id.file), index.definition(*id)) else {
                    continue;
                };
                if fits(def) {
                    found.push((display_path(&file.path), Some(id.file), def, &file.text));
                }
            }
            let ambiguity = found.len().max(1) as f64;
            let mut scored: Vec<(f64, String, &Definition, &str, String)> = Vec::new();
            for (file_shown, file_id, def, source) in &found {
                if !covered.insert((file_shown.clone(), def.start_line)) {
                    continue;
                }
                let file_rank = match file_id {
                    Some(id) => rank_of(*id),
                    None => 1.0,
                };
                let mut score = 0.35 + 0.4 * file_rank / ambiguity.sqrt();
                if method_only {
                    score -= 0.15;
                }
                let mut why = Vec::new();
                if file_id.is_none() {
                    let distance = lines.line_of(selection.start).abs_diff(def.start_line) as f64;
                    score += 0.15 * (1.0 - (distance / 300.0).min(1.0));
                    why.push("in this file".to_string());
                } else if file_id
                    .and_then(|id| index.file(id))
                    .is_some_and(|f| same_crate(&f.path))
                {
                    score += 0.05;
                }
                if from_goal || goal_words.contains(name) {
                    score += 0.15;
                }
                if found.len() > 1 {
                    why.push(format!("1 of {} definitions of the name", found.len()));
                }
                let lead = match origin {
                    Origin::Goal => format!("`{name}` is named in the goal"),
                    Origin::Selection => format!("`{name}` is used by the selection"),
                    Origin::Signature => {
                        score -= 0.05;
                        format!(
                            "`{name}` is in the signature of `{}`",
                            focus_name.as_deref().unwrap_or("the function")
                        )
                    }
                };
                let reason = if why.is_empty() {
                    lead
                } else {
                    format!("{lead} ({})", why.join(", "))
                };
                scored.push((score.min(0.95), file_shown.clone(), *def, *source, reason));
            }
            // A name with dozens of definitions (`new`) keeps only its best few; only those are
            // rendered.
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (score, file_shown, def, source, reason) in scored.into_iter().take(3) {
                let (full, compact) = definition_text(def, source, settings.max_body_lines);
                candidates.push(Candidate {
                    item: ContextItem {
                        kind: ItemKind::Definition,
                        file: file_shown,
                        start_line: def.doc_line + 1,
                        end_line: def.end_line + 1,
                        symbol: Some(def.name.clone()),
                        reason: reason.clone(),
                        score,
                        tokens: 0,
                        text: full,
                    },
                    compact: compact.map(|c| (c, format!("{reason}; signature only"))),
                });
            }
        };
    for (name, kind, origin) in &used {
        if Some(*name) == focus_name.as_deref() {
            continue;
        }
        push_definition(&mut candidates, name, *origin, *kind == RefKind::Method);
    }
    let mut goal_sorted: Vec<&String> = goal_words.iter().collect();
    goal_sorted.sort();
    for word in goal_sorted {
        if !seen_names.contains(word.as_str()) && Some(word.as_str()) != focus_name.as_deref() {
            push_definition(&mut candidates, word, Origin::Goal, false);
        }
    }

    // Callers and tests of the focused function.
    if let Some(name) = focus_name.as_deref() {
        let focus_is_method = live
            .definitions
            .iter()
            .any(|d| d.name == name && d.kind == SymbolKind::Method);
        // (score, kind, file, caller, its file's text, line of the call, reason)
        type Site<'a> = (f64, ItemKind, String, &'a Definition, &'a str, u32, String);
        let mut callers: Vec<Site<'_>> = Vec::new();
        let mut tests: Vec<Site<'_>> = Vec::new();
        let mut sites: Vec<(String, Option<FileId>, &FileTags, &str)> =
            vec![(display.clone(), None, &live, text.as_str())];
        for &id in index.files_referencing(name) {
            if Some(id) == current {
                continue;
            }
            if let Some(file) = index.file(id) {
                sites.push((display_path(&file.path), Some(id), &file.tags, &file.text));
            }
        }
        for (file_shown, file_id, file_tags, source) in sites {
            let mut seen_fns = HashSet::new();
            for r in file_tags.references.iter().filter(|r| {
                r.name == name
                    && (r.kind == RefKind::Call || (r.kind == RefKind::Method && focus_is_method))
            }) {
                if file_id.is_none() && r.byte >= selection.start && r.byte < selection.end {
                    continue;
                }
                let Some(caller) = file_tags.enclosing(r.line, true) else {
                    continue;
                };
                if !seen_fns.insert(caller.range.start) {
                    continue;
                }
                let is_test = caller.is_test
                    || in_test_module(file_tags, caller)
                    || Path::new(&file_shown).starts_with("tests");
                let file_rank = file_id.map_or(1.0, rank_of);
                let proximity = if file_id.is_none() { 0.1 } else { 0.0 };
                if is_test {
                    let reason = format!("test `{}` calls `{name}`", caller.name);
                    let score = 0.5 + 0.3 * file_rank + proximity;
                    tests.push((
                        score,
                        ItemKind::Test,
                        file_shown.clone(),
                        caller,
                        source,
                        r.line,
                        reason,
                    ));
                } else {
                    let reason = format!("`{}` calls `{name}`", caller.name);
                    let score = 0.3 + 0.4 * file_rank + proximity;
                    callers.push((
                        score,
                        ItemKind::Caller,
                        file_shown.clone(),
                        caller,
                        source,
                        r.line,
                        reason,
                    ));
                }
            }
        }
        for list in [&mut callers, &mut tests] {
            list.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (score, kind, file, caller, source, line, reason) in
                list.drain(..).take(settings.max_callers)
            {
                candidates.push(Candidate {
                    item: ContextItem {
                        kind,
                        file,
                        start_line: caller.doc_line + 1,
                        end_line: caller.end_line + 1,
                        symbol: Some(caller.name.clone()),
                        reason,
                        score: score.min(0.95),
                        tokens: 0,
                        text: excerpt(caller, source, line, settings.max_body_lines),
                    },
                    compact: None,
                });
            }
        }
        // Where new tests would go: the header of this file's test module.
        if let Some(module) = structure.test_modules.first()
            && !candidates
                .iter()
                .any(|c| c.item.kind == ItemKind::Test && c.item.file == display)
        {
            let header_end = lines.end_of(lines.line_of(module.body_start));
            let mut header = text[module.full.start..header_end].to_string();
            for import in structure
                .imports
                .iter()
                .filter(|i| module.full.start <= i.start && i.end <= module.full.end)
            {
                header.push_str(&text[import.clone()]);
                header.push('\n');
            }
            header.push_str("    // …\n}");
            candidates.push(Candidate {
                item: ContextItem {
                    kind: ItemKind::Test,
                    file: display.clone(),
                    start_line: lines.line_of(module.full.start) + 1,
                    end_line: lines.line_of(module.full.end) + 1,
                    symbol: module.name.clone(),
                    reason: "this file's test module, where its unit tests live".into(),
                    score: 0.45,
                    tokens: 0,
                    text: header,
                },
                compact: None,
            });
        }
    }

    // The repository map: signatures from the best-ranked other files, scored below everything
    // else (at most 0.12; the least definition scores 0.15) so that they only fill what budget
    // is left.
    let mut ranked: Vec<(FileId, f64)> = index
        .files()
        .map(|(id, _)| (id, rank_of(id)))
        .filter(|(id, r)| Some(*id) != current && *r > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut mapped = 0;
    'files: for (id, file_rank) in ranked.into_iter().take(MAP_FILES) {
        let Some(file) = index.file(id) else { continue };
        let shown = display_path(&file.path);
        for def in &file.tags.definitions {
            if mapped >= MAP_ITEMS {
                break 'files;
            }
            if def.is_test
                || def.kind == SymbolKind::Module
                || covered.contains(&(shown.clone(), def.start_line))
            {
                continue;
            }
            let Some(signature) = map_signature(def, &file.text) else {
                continue;
            };
            mapped += 1;
            candidates.push(Candidate {
                item: ContextItem {
                    kind: ItemKind::Map,
                    file: shown.clone(),
                    start_line: def.start_line + 1,
                    end_line: def.end_line + 1,
                    symbol: Some(def.name.clone()),
                    reason: format!(
                        "signature from a file the code here depends on (rank {file_rank:.2})"
                    ),
                    score: 0.02 + 0.1 * file_rank,
                    tokens: 0,
                    text: signature,
                },
                compact: None,
            });
        }
    }

    fit(
        candidates,
        budget,
        tokenizer,
        display,
        request.goal.clone(),
        notes,
    )
}

/// How many of the best-ranked other files contribute signatures to the repository map.
const MAP_FILES: usize = 8;
/// At most this many map entries are considered per bundle.
const MAP_ITEMS: usize = 80;

/// A one-line signature for the repository map: the item up to its body, whitespace collapsed.
fn map_signature(def: &Definition, source: &str) -> Option<String> {
    let end = def.body_start.unwrap_or(def.range.end);
    let text = source.get(def.range.start..end)?;
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 200 {
        let mut cut = 200;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str(" …");
    }
    Some(line)
}

/// Takes candidates best-first while they fit; a definition whose body does not fit may still
/// fit as its signature. The selection always goes in, cut to the budget if it must be.
fn fit(
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

/// How one item reads in the prompt; its token count is measured on exactly this.
fn render_item(item: &ContextItem) -> String {
    let symbol = item
        .symbol
        .as_deref()
        .map(|s| format!(" `{s}`"))
        .unwrap_or_default();
    let fence = if item.kind == ItemKind::Crate {
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
        let mut out = String::from(
            "Context from the workspace, each block headed by its file, lines and why it is included.\n\n",
        );
        for item in items {
            out.push_str(&render_item(item));
            out.push('\n');
        }
        if let Some(goal) = &self.goal {
            let _ = writeln!(out, "Goal: {goal}");
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
                if item.kind == ItemKind::Crate {
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

/// A definition's text: doc, signature and body when short; otherwise doc, signature and an
/// elided body. The second value is the signature-only form, when it differs.
fn definition_text(
    def: &Definition,
    source: &str,
    max_body_lines: usize,
) -> (String, Option<String>) {
    let whole = source.get(def.doc_start..def.range.end).unwrap_or("");
    let signature = def
        .body_start
        .and_then(|b| source.get(def.doc_start..b))
        .map(|s| format!("{} {{ … }}", s.trim_end()));
    let body_lines = (def.end_line - def.start_line + 1) as usize;
    if body_lines <= max_body_lines {
        return (whole.to_string(), signature);
    }
    if let (SymbolKind::Function | SymbolKind::Method | SymbolKind::Module, Some(signature)) =
        (def.kind, &signature)
    {
        return (signature.clone(), None);
    }
    // Types and traits: the first lines say most (fields, variants, required methods).
    let mut cut = whole
        .lines()
        .take(max_body_lines)
        .collect::<Vec<_>>()
        .join("\n");
    cut.push_str("\n    // …\n}");
    (cut, signature)
}

/// A caller or test: whole when short, else its signature and the lines around the call.
fn excerpt(def: &Definition, source: &str, call_line: u32, max_lines: usize) -> String {
    let whole = source.get(def.doc_start..def.range.end).unwrap_or("");
    if ((def.end_line - def.start_line + 1) as usize) <= max_lines {
        return whole.to_string();
    }
    let lines: Vec<&str> = source.lines().collect();
    let signature = def
        .body_start
        .and_then(|b| source.get(def.range.start..b))
        .unwrap_or("")
        .trim_end();
    let from = (call_line.saturating_sub(3)).max(def.start_line + 1) as usize;
    let to = ((call_line + 3).min(def.end_line) as usize).min(lines.len().saturating_sub(1));
    let mut out = format!("{signature} {{\n    // …\n");
    for line in lines.get(from..=to).unwrap_or(&[]) {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("    // …\n}");
    out
}

fn in_test_module(tags: &FileTags, def: &Definition) -> bool {
    tags.definitions.iter().any(|m| {
        m.kind == SymbolKind::Module
            && m.name == "tests"
            && m.range.start <= def.range.start
            && def.range.end <= m.range.end
    })
}

/// Identifiers in free text that could name code (at least three characters).
fn identifiers(goal: &str) -> HashSet<String> {
    goal.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 3 && !w.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

fn display_path(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

fn clamp_range(text: &str, range: Range<usize>) -> Range<usize> {
    let floor = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(range.start);
    let end = floor(range.end.max(range.start));
    start..end
}

/// An item of the current file that can enclose a selection.
#[derive(Debug)]
struct StructureItem {
    kind: &'static str,
    name: Option<String>,
    /// From the first doc comment or attribute to the end.
    full: Range<usize>,
    /// Where the body starts.
    body_start: usize,
    range: Range<usize>,
}

/// The parts of the current file the bundle needs, from `context.scm`.
#[derive(Debug, Default)]
struct FileStructure {
    items: Vec<StructureItem>,
    test_modules: Vec<StructureItem>,
    imports: Vec<Range<usize>>,
}

fn file_structure(text: &str, tree: &Tree) -> anyhow::Result<FileStructure> {
    let rust = Language::by_name("rust").context("the rust language is not registered")?;
    let query = rust.query("context.scm")?;
    let names = query.capture_names();
    let mut structure = FileStructure::default();
    let mut cursor = QueryCursor::new();
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
                "context.test_module" => item = Some(("test_module", c.node)),
                "context.import" => item = Some(("import", c.node)),
                _ => {}
            }
        }
        let Some((role, node)) = item else { continue };
        let doc_start = leading_start(node, text);
        match role {
            "import" => structure.imports.push(node.byte_range()),
            "test_module" => {
                if seen_modules.insert(node.id())
                    && let Some(body) = node.child_by_field_name("body")
                {
                    structure.test_modules.push(StructureItem {
                        kind: "module",
                        name,
                        full: doc_start..node.end_byte(),
                        body_start: body.start_byte(),
                        range: node.byte_range(),
                    });
                }
            }
            _ => {
                let Some(body) = body else { continue };
                let kind = match node.kind() {
                    "function_item" => "function",
                    "impl_item" => "impl",
                    "trait_item" => "trait",
                    _ => "module",
                };
                structure.items.push(StructureItem {
                    kind,
                    name,
                    full: doc_start..node.end_byte(),
                    body_start: body.start_byte(),
                    range: node.byte_range(),
                });
            }
        }
    }
    Ok(structure)
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
struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// 0-based line of a byte offset.
    fn line_of(&self, byte: usize) -> u32 {
        (self
            .starts
            .partition_point(|&s| s <= byte)
            .saturating_sub(1)) as u32
    }

    fn start_of(&self, line: u32) -> usize {
        self.starts.get(line as usize).copied().unwrap_or(self.len)
    }

    /// The end of a line, including its newline.
    fn end_of(&self, line: u32) -> usize {
        self.starts
            .get(line as usize + 1)
            .copied()
            .unwrap_or(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ContextSettings;

    /// Builds an in-memory workspace from a multi-file fixture (`//- /path` headers) and a
    /// request for the `$0` cursor (one marker) or `$0…$0` selection (two markers).
    fn fixture(text: &str, settings: &ContextSettings) -> (WorkspaceIndex, BundleRequest) {
        let mut files = Vec::new();
        let mut manifests = Vec::new();
        let mut request = BundleRequest::default();
        for chunk in text.split("//- /").skip(1) {
            let (path, body) = chunk.split_once('\n').expect("a header line");
            let path = PathBuf::from(path.trim());
            let mut body = body.to_string();
            let markers: Vec<usize> = body.match_indices("$0").map(|(i, _)| i).collect();
            if !markers.is_empty() {
                body = body.replace("$0", "");
                let start = markers[0];
                let end = markers.get(1).map_or(start, |e| e - 2);
                request.file = path.clone();
                request.range = start..end;
            }
            if path.file_name().is_some_and(|n| n == "Cargo.toml") {
                manifests.push((path, body));
            } else {
                files.push((path, body));
            }
        }
        let index = WorkspaceIndex::from_texts(Path::new("/ws"), settings, files, &manifests)
            .expect("index");
        (index, request)
    }

    fn summary(bundle: &ContextBundle) -> Vec<String> {
        bundle
            .items
            .iter()
            .map(|i| {
                format!(
                    "{} {}:{} {}",
                    i.kind.label(),
                    i.file,
                    i.start_line,
                    i.symbol.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    const SHOP: &str = r#"
//- /Cargo.toml
[package]
name = "shop"
edition = "2021"
[dependencies]
serde = "1"
//- /src/lib.rs
pub mod cart;
pub mod price;
//- /src/price.rs
/// An amount of money in cents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    pub cents: u64,
}

impl Price {
    /// A price from a number of cents.
    pub fn from_cents(cents: u64) -> Price {
        Price { cents }
    }
}

/// The largest basket we accept.
pub const MAX_ITEMS: usize = 100;
//- /src/unrelated.rs
pub struct Weather { pub celsius: f64 }
pub fn forecast() -> Weather { Weather { celsius: 20.0 } }
//- /src/cart.rs
use crate::price::{Price, MAX_ITEMS};

/// The sum of the prices.
pub fn total(items: &[Price]) -> Price {
    assert!(items.len() <= MAX_ITEMS);
    let sum = items.iter().map(|p| p.cents).$0sum();
    Price::from_cents(sum)
}

pub fn checkout(items: &[Price]) -> String {
    format!("{:?}", total(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up() {
        assert_eq!(total(&[Price::from_cents(2)]).cents, 2);
    }
}
//- /tests/shop.rs
#[test]
fn checkout_prints_the_total() {
    assert!(shop::cart::total(&[]).cents == 0);
}
"#;

    #[test]
    fn a_function_bundle_has_its_definitions_callers_tests_and_reasons() {
        let settings = ContextSettings::default();
        let (index, request) = fixture(SHOP, &settings);
        let bundle = build_bundle(&index, &request).expect("bundle");
        let summary = summary(&bundle);
        for expected in [
            "selection src/cart.rs:3 total",
            "definition src/price.rs:1 Price",
            "definition src/price.rs:8 from_cents",
            "definition src/price.rs:14 MAX_ITEMS",
            "caller src/cart.rs:10 checkout",
            "test src/cart.rs:18 totals_add_up",
            "test tests/shop.rs:1 checkout_prints_the_total",
            "imports src/cart.rs:1 -",
            "crate Cargo.toml:1 shop",
        ] {
            assert!(
                summary.contains(&expected.to_string()),
                "{expected} missing from {summary:#?}"
            );
        }
        assert!(
            !summary.iter().any(|s| s.contains("unrelated.rs")),
            "{summary:#?}"
        );
        let imports = bundle
            .items
            .iter()
            .find(|i| i.kind == ItemKind::Imports)
            .expect("imports");
        // The test module's `use super::*` is not in scope of `total`.
        assert_eq!(
            (imports.start_line, imports.end_line, imports.text.as_str()),
            (1, 1, "use crate::price::{Price, MAX_ITEMS};\n")
        );
        assert!(bundle.total_tokens <= bundle.budget);
        assert_eq!(
            bundle.total_tokens,
            bundle.items.iter().map(|i| i.tokens).sum::<usize>()
        );
        for item in &bundle.items {
            assert!(!item.reason.is_empty() && item.tokens > 0, "{item:?}");
        }
        let price = bundle
            .items
            .iter()
            .find(|i| i.symbol.as_deref() == Some("Price"))
            .expect("Price");
        assert_eq!(price.reason, "`Price` is used by the selection");
        assert!(
            price.text.starts_with("/// An amount of money"),
            "{}",
            price.text
        );
        // The selection comes first, and everything is ordered by score.
        assert_eq!(bundle.items[0].kind, ItemKind::Selection);
        assert!(bundle.items.windows(2).all(|w| w[0].score >= w[1].score));
        let prompt = bundle.to_prompt();
        assert!(
            prompt.find("src/price.rs").expect("price")
                < prompt.find("src/cart.rs:3").expect("selection")
        );
        assert!(
            bundle
                .to_markdown()
                .contains("| 1 | selection | src/cart.rs:3-8 | total |")
        );
    }

    #[test]
    fn a_small_budget_keeps_the_best_items_and_falls_back_to_signatures() {
        let mut settings = ContextSettings::default();
        let (index, mut request) = fixture(SHOP, &settings);
        let full = build_bundle(&index, &request).expect("bundle");
        request.budget = Some(full.total_tokens / 2);
        let half = build_bundle(&index, &request).expect("bundle");
        assert!(half.total_tokens <= half.budget, "{}", half.to_text());
        assert!(half.items.len() < full.items.len());
        assert!(!half.omitted.is_empty());
        assert_eq!(half.items[0].kind, ItemKind::Selection);
        // A budget below the selection cuts it and says so.
        request.budget = Some(40);
        let tiny = build_bundle(&index, &request).expect("bundle");
        assert!(tiny.total_tokens <= 40, "{}", tiny.to_text());
        assert!(
            tiny.notes.iter().any(|n| n.contains("selection was cut")),
            "{:?}",
            tiny.notes
        );
        // Long bodies are elided to their signatures.
        settings.max_body_lines = 1;
        let (index, request) = fixture(SHOP, &settings);
        let bundle = build_bundle(&index, &request).expect("bundle");
        let from_cents = bundle
            .items
            .iter()
            .find(|i| i.symbol.as_deref() == Some("from_cents"))
            .expect("from_cents");
        assert!(
            from_cents
                .text
                .ends_with("pub fn from_cents(cents: u64) -> Price { … }"),
            "{}",
            from_cents.text
        );
    }

    #[test]
    fn the_index_follows_edits_and_removals() {
        let settings = ContextSettings::default();
        let (mut index, mut request) = fixture(SHOP, &settings);
        // A new helper in another file, then a selection that calls it.
        let price = index
            .file(index.file_id(Path::new("src/price.rs")).expect("indexed"))
            .expect("file")
            .text
            .to_string();
        index
            .update_file(
                Path::new("src/price.rs"),
                &format!(
                    "{price}\n/// Takes a share off.\npub fn discount(p: Price) -> Price {{ p }}\n"
                ),
            )
            .expect("update");
        assert_eq!(index.definitions_of("discount").len(), 1);
        let cart = "use crate::price::*;\npub fn sale(p: Price) -> Price { discount(p) }\n";
        request.text = Some(cart.to_string());
        request.range = 40..40;
        let bundle = build_bundle(&index, &request).expect("bundle");
        assert!(
            summary(&bundle).contains(&"definition src/price.rs:17 discount".to_string()),
            "{:#?}",
            summary(&bundle)
        );
        // Once the file is gone, so is its definition.
        index
            .remove_file(Path::new("src/price.rs"))
            .expect("remove");
        assert!(index.definitions_of("discount").is_empty());
        assert!(index.definitions_of("Price").is_empty());
        let bundle = build_bundle(&index, &request).expect("bundle");
        assert!(!summary(&bundle).iter().any(|s| s.contains("price.rs")));
    }

    #[test]
    fn the_repository_map_fills_the_rest_with_signatures_from_related_files_only() {
        let settings = ContextSettings::default();
        let shop = SHOP.replace(
            "/// The largest basket we accept.",
            "/// Half off.\npub fn halve(p: Price) -> Price {\n    Price { cents: p.cents / 2 }\n}\n\n/// The largest basket we accept.",
        );
        let (index, request) = fixture(&shop, &settings);
        let bundle = build_bundle(&index, &request).expect("bundle");
        let map: Vec<&ContextItem> = bundle
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::Map)
            .collect();
        assert_eq!(map.len(), 1, "{}", bundle.to_text());
        assert_eq!(
            (
                map[0].file.as_str(),
                map[0].symbol.as_deref(),
                map[0].text.as_str()
            ),
            (
                "src/price.rs",
                Some("halve"),
                "pub fn halve(p: Price) -> Price"
            )
        );
        assert!(map[0].reason.starts_with("signature from a file"));
        let lowest_other = bundle
            .items
            .iter()
            .filter(|i| i.kind != ItemKind::Map)
            .map(|i| i.score)
            .fold(f64::MAX, f64::min);
        assert!(map[0].score < lowest_other);
    }

    #[test]
    fn the_goal_pulls_in_what_it_names() {
        let settings = ContextSettings::default();
        let (index, mut request) = fixture(SHOP, &settings);
        request.goal = Some("show the forecast next to the total".into());
        let bundle = build_bundle(&index, &request).expect("bundle");
        let forecast = bundle
            .items
            .iter()
            .find(|i| i.symbol.as_deref() == Some("forecast"))
            .expect("forecast");
        assert_eq!(forecast.reason, "`forecast` is named in the goal");
        assert!(
            bundle
                .to_prompt()
                .ends_with("Goal: show the forecast next to the total\n")
        );
    }

    #[test]
    fn secrets_are_refused_and_outside_files_are_noted() {
        let settings = ContextSettings::default();
        let (index, mut request) = fixture(SHOP, &settings);
        request.file = PathBuf::from("config/.env");
        request.text = Some("API_KEY=abc".into());
        let err = build_bundle(&index, &request).expect_err("a secret");
        assert!(err.to_string().contains("looks like a secret"), "{err}");
        request.file = PathBuf::from("/elsewhere/tool.rs");
        request.text = Some("fn tool() { forecast(); }".into());
        request.range = 0..0;
        let bundle = build_bundle(&index, &request).expect("bundle");
        assert!(
            bundle.notes[0].contains("outside the workspace"),
            "{:?}",
            bundle.notes
        );
        assert!(summary(&bundle).contains(&"definition src/unrelated.rs:2 forecast".to_string()));
    }

    #[test]
    fn a_cursor_outside_any_item_and_broken_code_still_give_a_bundle() {
        let settings = ContextSettings::default();
        let (index, mut request) = fixture(SHOP, &settings);
        request.text =
            Some("use crate::price::Price;\n\nfn broken( { let x = Price::from_cents(;\n".into());
        request.range = 1000..2000;
        let bundle = build_bundle(&index, &request).expect("bundle");
        assert_eq!(bundle.items[0].kind, ItemKind::Selection);
        assert!(summary(&bundle).iter().any(|s| s.starts_with("imports")));
    }
}
