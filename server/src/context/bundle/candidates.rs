//! The candidate sources of a bundle, one function each: the selection, its enclosing items,
//! the imports in scope, the crate's facts, the definitions it uses, its callers, its tests and
//! the repository map. Each reads a [`Seed`] (and the [`Ranking`] where scores depend on it) and
//! returns scored candidates; fitting them to the budget is `fit.rs`'s job.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use super::names::{self, Found, Resolution, Resolver};
use super::seed::{Ranking, Seed, display_path};
use super::structure::FileStructure;
use super::{ContextItem, ItemKind};
use crate::context::index::FileId;
use crate::context::tags::{Definition, FileTags, RefKind, SymbolKind};

/// A scored candidate before fitting.
pub(super) struct Candidate {
    pub item: ContextItem,
    /// A cheaper version (signature only) and its reason, to fall back to when the item does
    /// not fit.
    pub compact: Option<(String, String)>,
}

impl Candidate {
    fn new(item: ContextItem) -> Candidate {
        Candidate {
            item,
            compact: None,
        }
    }
}

/// Definitions already offered, by (file shown, first line): a definition found through two
/// names, or once as a definition and once on the map, is offered once.
pub(super) type Covered = HashSet<(String, u32)>;

/// Why a definition is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Selection,
    Signature,
    /// Used in the function around the selection, outside the selection.
    Enclosing,
    Goal,
}

/// The selection itself.
pub(super) fn selection(seed: &Seed<'_>) -> Vec<Candidate> {
    let (lines, selection) = (&seed.lines, &seed.selection);
    let (sel_start, sel_end) = (
        lines.line_of(selection.start),
        lines.line_of(selection.end.saturating_sub(1).max(selection.start)),
    );
    vec![Candidate::new(ContextItem {
        kind: ItemKind::Selection,
        file: seed.display.clone(),
        start_line: sel_start + 1,
        end_line: sel_end + 1,
        symbol: seed.focus_name.clone(),
        reason: seed.selection_reason.clone(),
        score: 1.0,
        tokens: 0,
        text: seed.text[selection.clone()].to_string(),
        certain: None,
    })]
}

/// The items around the selection: their doc and signature.
pub(super) fn enclosing(seed: &Seed<'_>) -> Vec<Candidate> {
    let (text, selection) = (&seed.text, &seed.selection);
    let mut candidates = Vec::new();
    for (depth, item) in seed.enclosing.iter().enumerate() {
        if item.full.start >= selection.start && item.full.end <= selection.end {
            continue;
        }
        let header = format!(
            "{} {{ … }}",
            text[item.full.start..item.body_start].trim_end()
        );
        candidates.push(Candidate::new(ContextItem {
            kind: ItemKind::Enclosing,
            file: seed.display.clone(),
            start_line: seed.lines.line_of(item.full.start) + 1,
            end_line: seed.lines.line_of(item.body_start) + 1,
            symbol: item.name.clone(),
            reason: format!("the {} that encloses the selection", item.kind),
            score: (0.98 - 0.01 * depth as f64).max(0.9),
            tokens: 0,
            text: header,
            certain: None,
        }));
    }
    candidates
}

/// The `use` declarations in scope as one item.
pub(super) fn imports(seed: &Seed<'_>) -> Vec<Candidate> {
    let in_scope = imports_in_scope(seed);
    if in_scope.is_empty() {
        return Vec::new();
    }
    let first = in_scope.iter().map(|r| r.start).min().unwrap_or(0);
    let last = in_scope.iter().map(|r| r.end).max().unwrap_or(0);
    let mut block = String::new();
    for import in &in_scope {
        block.push_str(&seed.text[(*import).clone()]);
        block.push('\n');
    }
    vec![Candidate::new(ContextItem {
        kind: ItemKind::Imports,
        file: seed.display.clone(),
        start_line: seed.lines.line_of(first) + 1,
        end_line: seed.lines.line_of(last) + 1,
        symbol: None,
        reason: "the imports in scope".into(),
        score: 0.9,
        tokens: 0,
        text: block,
        certain: None,
    })]
}

/// The imports of the file's top level and of the modules around the selection, not those of
/// sibling modules such as `tests`, nor those local to functions the selection is not in.
fn imports_in_scope<'s>(seed: &'s Seed<'_>) -> Vec<&'s Range<usize>> {
    in_scope(&seed.structure, &seed.selection)
}

/// The imports of `structure` in scope of `selection` (see [`imports`]): a `use` inside an
/// inline module counts only when the module holds the whole selection, and one inside a
/// function body only when the function and the selection overlap, as the compiler sees it.
/// (A function's local `use` elsewhere in the file once counted: it could resolve the
/// selection's names to what that other function imports, and it made a large file's bundle
/// differ between its whole tree and the partial tree, which holds no other function.)
pub(super) fn in_scope<'s>(
    structure: &'s FileStructure,
    selection: &Range<usize>,
) -> Vec<&'s Range<usize>> {
    structure
        .imports
        .iter()
        .filter(|import| {
            structure
                .items
                .iter()
                .filter(|m| m.range.start <= import.start && import.end <= m.range.end)
                .all(|m| match m.kind {
                    "module" => m.range.start <= selection.start && selection.end <= m.range.end,
                    "function" => m.range.start < selection.end && selection.start < m.range.end,
                    _ => true,
                })
        })
        .collect()
}

/// The owning crate's name, edition and dependencies.
pub(super) fn crate_facts(seed: &Seed<'_>) -> Vec<Candidate> {
    let Some(facts) = seed.index.crate_for(&seed.rel) else {
        return Vec::new();
    };
    let manifest = facts.dir.join("Cargo.toml");
    vec![Candidate::new(ContextItem {
        kind: ItemKind::Crate,
        file: display_path(&manifest),
        start_line: 1,
        end_line: 1,
        symbol: Some(facts.name.clone()),
        reason: "the crate's name, edition and dependencies".into(),
        score: 0.88,
        tokens: 0,
        text: facts.render(),
        certain: None,
    })]
}

/// The definitions of the names the selection uses, then of those in the signature of the
/// function around it (its parameter and return types frame whatever the selection does), then
/// of those used elsewhere in that function, then of the identifiers the goal names. Each name
/// is resolved the way the compiler would see it ([`names`]); a name that leads outside the
/// workspace is listed in one `external` item instead. Each definition offered is added to
/// `covered`.
pub(super) fn definitions(
    seed: &Seed<'_>,
    ranking: &Ranking,
    max_body_lines: usize,
    covered: &mut Covered,
) -> Vec<Candidate> {
    let selection = &seed.selection;
    let resolver = Resolver::new(seed);
    let (signature, whole) = match seed.focus.as_ref() {
        Some(f) if f.kind == "function" => (
            if f.full.start < selection.start {
                f.full.start..f.body_start
            } else {
                0..0
            },
            f.full.clone(),
        ),
        _ => (0..0, 0..0),
    };
    // Every use of a name, in the order of the places that matter most: a method name may be
    // resolvable at one call and not at another.
    let mut order: Vec<(&str, Origin)> = Vec::new();
    let mut uses: HashMap<&str, Vec<(RefKind, usize)>> = HashMap::new();
    for (range, origin) in [
        (selection.clone(), Origin::Selection),
        (signature, Origin::Signature),
        (whole, Origin::Enclosing),
    ] {
        for r in &seed.live.references {
            if !range.contains(&r.byte) {
                continue;
            }
            let entry = uses.entry(r.name.as_str()).or_default();
            if entry.is_empty() {
                order.push((r.name.as_str(), origin));
            }
            if !entry.iter().any(|(_, b)| *b == r.byte) {
                entry.push((r.kind, r.byte));
            }
        }
    }
    let focus_name = seed.focus_name.as_deref();
    let mut candidates = Vec::new();
    let mut external: Vec<String> = Vec::new();
    let mut external_names: Vec<String> = Vec::new();
    for (name, origin) in &order {
        if Some(*name) == focus_name {
            continue;
        }
        // Each use on its own: `self.names.push(…)` may be `Vec`'s and `self.store.push(…)`
        // a workspace type's.
        let mut local: Option<(Vec<Found<'_>>, String, bool)> = None;
        let mut outside: Option<(String, String)> = None;
        for (kind, byte) in uses.get(name).into_iter().flatten() {
            match resolver.resolve(name, *kind, *byte) {
                Resolution::Local {
                    found,
                    how,
                    certain,
                } => match &mut local {
                    None => local = Some((found, how, certain)),
                    Some((all, _, all_certain)) => {
                        for f in found {
                            if !all
                                .iter()
                                .any(|a| a.shown == f.shown && a.def.range == f.def.range)
                            {
                                all.push(f);
                            }
                        }
                        *all_certain &= certain;
                    }
                },
                Resolution::External { path, package } => {
                    outside.get_or_insert((path, package));
                }
                Resolution::Skip => {}
            }
        }
        if let Some((found, how, certain)) = local {
            candidates.extend(definitions_of(
                seed,
                ranking,
                max_body_lines,
                covered,
                name,
                *origin,
                found,
                &how,
                certain,
            ));
        }
        // The standard library goes without saying unless the code names its path
        // (`std::fs::read`); prelude names (`Option`, `vec!`) and `String::new` do not.
        if let Some((path, package)) = outside
            && (package != "std"
                || ["std::", "core::", "alloc::"]
                    .iter()
                    .any(|p| path.starts_with(p)))
            && !external_names.iter().any(|n| n == name)
        {
            external.push(names::external_line(name, &path, &package));
            external_names.push(name.to_string());
        }
    }
    let mut goal_sorted: Vec<&String> = seed.goal_words.iter().collect();
    goal_sorted.sort();
    for word in goal_sorted {
        if !uses.contains_key(word.as_str()) && Some(word.as_str()) != focus_name {
            if let Resolution::Local {
                found,
                how,
                certain,
            } = resolver.plain(word, None)
            {
                candidates.extend(definitions_of(
                    seed,
                    ranking,
                    max_body_lines,
                    covered,
                    word,
                    Origin::Goal,
                    found,
                    &how,
                    certain,
                ));
            }
        }
    }
    if !external.is_empty() {
        let (file, line) = match seed.index.crate_for(&seed.rel) {
            Some(facts) => (display_path(&facts.dir.join("Cargo.toml")), 1),
            None => (seed.display.clone(), 1),
        };
        let mut text = String::from("Defined outside the workspace (not looked up here):\n");
        for line in &external {
            text.push_str("- ");
            text.push_str(line);
            text.push('\n');
        }
        let mut item = ContextItem::new(
            ItemKind::External,
            file,
            line,
            line,
            "names the selection uses from outside the workspace".into(),
            0.86,
            text,
        );
        item.symbol = Some(external_names.join(", "));
        candidates.push(Candidate::new(item));
    }
    candidates
}

/// The best few of the definitions a name resolved to.
#[allow(clippy::too_many_arguments)]
fn definitions_of(
    seed: &Seed<'_>,
    ranking: &Ranking,
    max_body_lines: usize,
    covered: &mut Covered,
    name: &str,
    origin: Origin,
    found: Vec<Found<'_>>,
    how: &str,
    certain: bool,
) -> Vec<Candidate> {
    let (index, selection, lines) = (seed.index, &seed.selection, &seed.lines);
    let from_goal = origin == Origin::Goal;
    let ambiguity = found.len().max(1) as f64;
    let mut scored: Vec<(f64, Found<'_>, String)> = Vec::new();
    for f in &found {
        if !covered.insert((f.shown.clone(), f.def.start_line)) {
            continue;
        }
        let file_rank = match f.file {
            Some(id) => ranking.rank_of(id),
            None => 1.0,
        };
        let mut score = 0.35 + 0.4 * file_rank / ambiguity.sqrt();
        if !certain {
            // Matched by name alone: it may well be another item of that name.
            score -= 0.1;
        }
        let mut why = Vec::new();
        if f.file.is_none() {
            let distance = lines.line_of(selection.start).abs_diff(f.def.start_line) as f64;
            score += 0.15 * (1.0 - (distance / 300.0).min(1.0));
            if how != "in this file" {
                why.push("in this file".to_string());
            }
        } else if f
            .file
            .and_then(|id| index.file(id))
            .is_some_and(|file| ranking.same_crate(index, &file.path))
        {
            score += 0.05;
        }
        if from_goal || seed.goal_words.contains(name) {
            score += 0.15;
        }
        why.push(how.to_string());
        if found.len() > 1 {
            why.push(format!("1 of {} definitions it may be", found.len()));
        }
        let lead = match origin {
            Origin::Goal => format!("`{name}` is named in the goal"),
            Origin::Selection => format!("`{name}` is used by the selection"),
            Origin::Signature => {
                score -= 0.05;
                format!(
                    "`{name}` is in the signature of `{}`",
                    seed.focus_name.as_deref().unwrap_or("the function")
                )
            }
            Origin::Enclosing => {
                score -= 0.1;
                format!(
                    "`{name}` is used elsewhere in `{}`",
                    seed.focus_name.as_deref().unwrap_or("the function")
                )
            }
        };
        let reason = format!("{lead} ({})", why.join(", "));
        scored.push((score.min(0.95), f.clone(), reason));
    }
    // A name with dozens of definitions (`new`) keeps only its best few; only those are
    // rendered.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut candidates = Vec::new();
    for (score, f, reason) in scored.into_iter().take(3) {
        let (full, compact) = definition_text(f.def, f.source, max_body_lines);
        let mut item = ContextItem::new(
            ItemKind::Definition,
            f.shown,
            f.def.doc_line + 1,
            f.def.end_line + 1,
            reason.clone(),
            score,
            full,
        );
        item.symbol = Some(f.def.name.clone());
        item.certain = Some(certain && found.len() == 1);
        candidates.push(Candidate {
            item,
            compact: compact.map(|c| (c, format!("{reason}; signature only"))),
        });
    }
    candidates
}

/// A function that calls the focus function: where, and how it scores.
struct CallSite<'a> {
    score: f64,
    file: String,
    caller: &'a Definition,
    source: &'a str,
    line: u32,
    reason: String,
}

/// The functions (`tests == false`) or the tests (`tests == true`) that call the focus
/// function, in this file and across the workspace, best first.
fn call_sites<'a>(seed: &'a Seed<'_>, ranking: &Ranking, tests: bool) -> Vec<CallSite<'a>> {
    let Some(name) = seed.focus_name.as_deref() else {
        return Vec::new();
    };
    let index = seed.index;
    let focus_is_method = seed
        .live
        .definitions
        .iter()
        .any(|d| d.name == name && d.kind == SymbolKind::Method);
    let mut sites: Vec<(String, Option<FileId>, &FileTags, &str)> =
        vec![(seed.display.clone(), None, &seed.live, seed.text.as_str())];
    for &id in index.files_referencing(name) {
        if Some(id) == seed.current {
            continue;
        }
        // Only code whose crate can reach this one can call it.
        if let Some(file) = index.file(id)
            && index.reaches_file(index.crate_index(&file.path), &seed.rel)
        {
            sites.push((display_path(&file.path), Some(id), &file.tags, &file.text));
        }
    }
    let mut found = Vec::new();
    for (file_shown, file_id, file_tags, source) in sites {
        let mut seen_fns = HashSet::new();
        for r in file_tags.references.iter().filter(|r| {
            r.name == name
                && (r.kind == RefKind::Call || (r.kind == RefKind::Method && focus_is_method))
        }) {
            if file_id.is_none() && r.byte >= seed.selection.start && r.byte < seed.selection.end {
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
            if is_test != tests {
                continue;
            }
            let file_rank = file_id.map_or(1.0, |id| ranking.rank_of(id));
            let proximity = if file_id.is_none() { 0.1 } else { 0.0 };
            let (score, reason) = if is_test {
                (
                    0.5 + 0.3 * file_rank + proximity,
                    format!("test `{}` calls `{name}`", caller.name),
                )
            } else {
                (
                    0.3 + 0.4 * file_rank + proximity,
                    format!("`{}` calls `{name}`", caller.name),
                )
            };
            found.push(CallSite {
                score,
                file: file_shown.clone(),
                caller,
                source,
                line: r.line,
                reason,
            });
        }
    }
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    found
}

/// The factor by which each further caller's (or test's) score decays.
const CALL_SITE_DECAY: f64 = 0.85;

fn call_site_candidates(
    sites: Vec<CallSite<'_>>,
    kind: ItemKind,
    max_callers: usize,
    max_body_lines: usize,
) -> Vec<Candidate> {
    sites
        .into_iter()
        .take(max_callers)
        .enumerate()
        .map(|(shown, site)| {
            // Each further call site shows less that is new than the one before (the first
            // teaches how the function is called, the fifth rarely does): its score decays, so
            // that the definitions the selection needs come before the fourth or fifth caller.
            let score = site.score * CALL_SITE_DECAY.powi(shown as i32);
            Candidate::new(ContextItem {
                kind,
                file: site.file,
                start_line: site.caller.doc_line + 1,
                end_line: site.caller.end_line + 1,
                symbol: Some(site.caller.name.clone()),
                reason: site.reason,
                score: score.min(0.95),
                tokens: 0,
                text: excerpt(site.caller, site.source, site.line, max_body_lines),
                certain: None,
            })
        })
        .collect()
}

/// The functions that call the focus function (tests excepted).
pub(super) fn callers(
    seed: &Seed<'_>,
    ranking: &Ranking,
    max_callers: usize,
    max_body_lines: usize,
) -> Vec<Candidate> {
    let sites = call_sites(seed, ranking, false);
    call_site_candidates(sites, ItemKind::Caller, max_callers, max_body_lines)
}

/// The tests that call the focus function; when none of them is in this file, the header of
/// this file's test module, which is where new unit tests would go.
pub(super) fn tests(
    seed: &Seed<'_>,
    ranking: &Ranking,
    max_callers: usize,
    max_body_lines: usize,
) -> Vec<Candidate> {
    if seed.focus_name.is_none() {
        return Vec::new();
    }
    let sites = call_sites(seed, ranking, true);
    let mut candidates = call_site_candidates(sites, ItemKind::Test, max_callers, max_body_lines);
    let (text, lines, structure) = (&seed.text, &seed.lines, &seed.structure);
    if let Some(module) = structure.test_modules.first()
        && !candidates.iter().any(|c| c.item.file == seed.display)
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
        candidates.push(Candidate::new(ContextItem {
            kind: ItemKind::Test,
            file: seed.display.clone(),
            start_line: lines.line_of(module.full.start) + 1,
            end_line: lines.line_of(module.full.end) + 1,
            symbol: module.name.clone(),
            reason: "this file's test module, where its unit tests live".into(),
            score: 0.45,
            tokens: 0,
            text: header,
            certain: None,
        }));
    }
    candidates
}

/// The repository map: signatures from the best-ranked other files, scored below everything
/// else (at most 0.12; the least definition scores 0.15) so that they only fill what budget
/// is left. Definitions in `covered` are already offered and left out.
pub(super) fn repository_map(
    seed: &Seed<'_>,
    ranking: &Ranking,
    covered: &Covered,
) -> Vec<Candidate> {
    let index = seed.index;
    let mut ranked: Vec<(FileId, f64)> = index
        .files()
        .filter(|(id, _)| ranking.reachable(*id))
        .map(|(id, _)| (id, ranking.rank_of(id)))
        .filter(|(id, r)| Some(*id) != seed.current && *r > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut candidates = Vec::new();
    'files: for (id, file_rank) in ranked.into_iter().take(MAP_FILES) {
        let Some(file) = index.file(id) else { continue };
        let shown = display_path(&file.path);
        for def in &file.tags.definitions {
            if candidates.len() >= MAP_ITEMS {
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
            candidates.push(Candidate::new(ContextItem {
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
                certain: None,
            }));
        }
    }
    candidates
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

/// A definition's text: doc, signature and body when short; otherwise doc, signature and an
/// elided body. The second value is the signature-only form, when it differs.
fn definition_text(
    def: &Definition,
    source: &str,
    max_body_lines: usize,
) -> (String, Option<String>) {
    let doc = summary_doc(source.get(def.doc_start..def.range.start).unwrap_or(""));
    let item = source.get(def.range.clone()).unwrap_or("");
    let whole = format!("{doc}{item}");
    let signature = def
        .body_start
        .and_then(|b| source.get(def.range.start..b))
        .map(|s| format!("{doc}{} {{ … }}", s.trim_end()));
    let body_lines = (def.end_line - def.start_line + 1) as usize;
    if body_lines <= max_body_lines {
        return (whole, signature);
    }
    if let (SymbolKind::Function | SymbolKind::Method | SymbolKind::Module, Some(signature)) =
        (def.kind, &signature)
    {
        return (signature.clone(), None);
    }
    // Types and traits: the first lines say most (fields, variants, required methods).
    let mut cut = doc;
    cut.push_str(
        &item
            .lines()
            .take(max_body_lines)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    cut.push_str("\n    // …\n}");
    (cut, signature)
}

/// Doc comments longer than this many lines are cut to their summary.
const MAX_DOC_LINES: usize = 8;

/// The doc comments and attributes before an item, with a long doc cut to its first paragraph
/// (at most [`MAX_DOC_LINES`] lines of it) and a `/// …` line where the rest was: rustdoc's
/// summary, which says what the item is; the examples and fine print after it cost a budget
/// the definitions after it need (a well-documented crate's types carry 50 to 90 lines of
/// doc). Attributes are kept; a short doc is kept whole.
fn summary_doc(doc: &str) -> String {
    let is_doc = |line: &str| {
        let t = line.trim_start();
        t.starts_with("///") || t.starts_with("//!")
    };
    if doc.lines().filter(|l| is_doc(l)).count() <= MAX_DOC_LINES {
        return doc.to_string();
    }
    let mut out = String::with_capacity(doc.len().min(1024));
    let (mut kept, mut summary_over, mut marked) = (0, false, false);
    for line in doc.split_inclusive('\n') {
        if !is_doc(line) {
            out.push_str(line);
            continue;
        }
        let words = line.trim_start()[3..].trim();
        if !summary_over && words.is_empty() && kept > 0 {
            summary_over = true;
        }
        if !summary_over && kept < MAX_DOC_LINES {
            out.push_str(line);
            kept += 1;
            continue;
        }
        summary_over = true;
        if !marked {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(indent);
            out.push_str("/// …\n");
            marked = true;
        }
    }
    out
}

/// A caller or test: whole when short, else its signature and the lines around the call.
fn excerpt(def: &Definition, source: &str, call_line: u32, max_lines: usize) -> String {
    if ((def.end_line - def.start_line + 1) as usize) <= max_lines {
        let doc = summary_doc(source.get(def.doc_start..def.range.start).unwrap_or(""));
        return format!("{doc}{}", source.get(def.range.clone()).unwrap_or(""));
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
pub(super) fn identifiers(goal: &str) -> HashSet<String> {
    goal.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 3 && !w.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}
