//! What a bundle is built around: the file's text, syntax, structure and tags, the selection
//! (or the item under the cursor) and its focus function, and the ranking of the other files.
//!
//! Every candidate source reads a [`Seed`] and a [`Ranking`], so a bundle can be seeded from
//! anything that names a file and a byte range (an editor selection today; a plan step's target
//! or a failing test's location later).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context as _, bail};

use super::BundleRequest;
use super::candidates::{identifiers, in_scope};
use super::partial::{PARTIAL_PARSE_BYTES, parse_needed};
use super::resolve::{UseScope, imported_names};
use super::structure::{FileStructure, LineIndex, StructureItem, file_structure};
use crate::context::index::{FileId, WorkspaceIndex};
use crate::context::tags::{self, FileTags};
use crate::syntax::Language;

/// The file and selection a bundle is for, read once.
pub(super) struct Seed<'a> {
    pub index: &'a WorkspaceIndex,
    /// The file relative to the root, or as given when it is outside the workspace.
    pub rel: PathBuf,
    /// `rel` with `/` separators, as items show it.
    pub display: String,
    /// The file's id in the index, if it is indexed.
    pub current: Option<FileId>,
    /// The file's text (the live buffer when the request carries one).
    pub text: String,
    /// The definitions and references of `text`.
    pub live: FileTags,
    /// The items, test modules and imports of `text`.
    pub structure: Arc<FileStructure>,
    pub lines: LineIndex,
    /// The selection, widened to whole lines (or to the item under the cursor).
    pub selection: Range<usize>,
    /// Why the selection is what it is, in words.
    pub selection_reason: String,
    /// The items of the file that enclose the request's range, innermost first.
    pub enclosing: Vec<StructureItem>,
    /// The function the selection is about, if any.
    pub focus: Option<StructureItem>,
    /// Its name, or that of the function the selection covers.
    pub focus_name: Option<String>,
    /// Identifiers the goal mentions.
    pub goal_words: HashSet<String>,
    /// What the `use` declarations in scope import: names by local name, and globs.
    pub imports: UseScope,
    /// The syntax tree of `text`.
    pub tree: tree_sitter::Tree,
    /// The file's crate, by its position in the index's crates.
    pub krate: Option<usize>,
}

/// A non-function item under the cursor longer than this many lines (a big `impl`, `trait` or
/// `mod`) is not the selection itself: the function nearest the cursor inside it is, and the
/// item's header comes as an enclosing item, so the definitions that function needs are not
/// crowded out.
const LARGE_ITEM_LINES: u32 = 120;

impl<'a> Seed<'a> {
    /// Reads the request's file and works out the selection; `notes` collects what the
    /// developer should know (a file outside the workspace, a file that is not Rust).
    pub fn new(
        index: &'a WorkspaceIndex,
        request: &BundleRequest,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<Seed<'a>> {
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
        // Relative to the root, so that the folders the workspace sits in never count.
        if index.secrets().is_secret(&rel) {
            bail!(
                "{} looks like a secret file; it never enters context",
                request.file.display()
            );
        }
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
                crate::util::read_regular_text(&path, crate::util::MAX_READ_BYTES)
                    .with_context(|| format!("reading {}", path.display()))?
            }
        };
        let rust = Language::by_name("rust").context("the rust language is not registered")?;
        if Language::for_path(&rel).is_none() {
            notes.push(format!(
                "{display} is not a Rust file; reading it as Rust anyway"
            ));
        }
        // The editor's tree of this very text saves a parse, the largest single cost of a
        // bundle; one that does not span the text belongs to another revision. A text bundled
        // a moment ago (the same revision again, a plan's next step) has its tree and structure
        // in the cache.
        let lines = LineIndex::new(&text);
        let range = clamp_range(&text, request.range.clone());
        let indexed = current
            .and_then(|id| index.file(id))
            .filter(|file| *file.text == *text);
        let key = text_key(&text);
        let (tree, structure) = match cached_seed(key) {
            Some(hit) => hit,
            None => match (&request.text, &request.tree) {
                (Some(_), Some(tree)) if tree.root_node().end_byte() == text.len() => {
                    let structure = Arc::new(file_structure(&text, tree)?);
                    remember_seed(key, tree, &structure);
                    (tree.clone(), structure)
                }
                // A large file the index holds as it is: its definitions and references come
                // from the index, so only the parts the bundle reads are parsed. That tree is
                // for this request's range, so it is not cached for others.
                _ if indexed.is_some() && text.len() >= PARTIAL_PARSE_BYTES => {
                    match parse_needed(rust, &text, &lines, &range) {
                        Some(tree) => {
                            let structure = Arc::new(file_structure(&text, &tree)?);
                            (tree, structure)
                        }
                        None => parse_whole(rust, &text, &display, key)?,
                    }
                }
                _ => parse_whole(rust, &text, &display, key)?,
            },
        };
        // The index read the same text already (the usual case: an unedited file, or a live
        // buffer the index has caught up with): its tags are these, without a second query.
        let live = match indexed {
            Some(file) => file.tags.clone(),
            None => tags::extract(&text, &tree)?,
        };

        let enclosing: Vec<StructureItem> = {
            let mut items: Vec<&StructureItem> = structure
                .items
                .iter()
                .filter(|i| i.range.start <= range.start && range.end <= i.range.end)
                .collect();
            items.sort_by_key(|i| i.range.len());
            items.into_iter().cloned().collect()
        };
        // A cursor (or a selection inside one line of a function) stands for the function
        // around it.
        let (selection, selection_reason, focus) = if range.is_empty() {
            match enclosing
                .iter()
                .find(|i| i.kind == "function")
                .or(enclosing.first())
            {
                Some(item)
                    if item.kind != "function"
                        && lines.line_of(item.full.end) - lines.line_of(item.full.start)
                            > LARGE_ITEM_LINES
                        && nearest_function(&structure, item, range.start).is_some() =>
                {
                    let method = nearest_function(&structure, item, range.start)
                        .cloned()
                        .unwrap_or_else(|| item.clone());
                    let size = lines.line_of(item.full.end) - lines.line_of(item.full.start) + 1;
                    (
                        method.full.clone(),
                        format!(
                            "the function nearest the cursor in the {size}-line {} around it \
                             (whose header is given apart)",
                            item.kind
                        ),
                        Some(method),
                    )
                }
                Some(item) => (
                    item.full.clone(),
                    format!("the {} under the cursor", item.kind),
                    Some(item.clone()),
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
            let focus = enclosing.iter().find(|i| i.kind == "function").cloned();
            (start..end, "the selection".to_string(), focus)
        };
        let focus_name = focus.as_ref().and_then(|f| f.name.clone()).or_else(|| {
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
        let goal_words: HashSet<String> =
            request.goal.as_deref().map(identifiers).unwrap_or_default();
        let mut imports = UseScope::default();
        for range in in_scope(&structure, &selection) {
            let inline: Vec<String> = structure
                .items
                .iter()
                .filter(|m| {
                    m.kind == "module" && m.range.start <= range.start && range.end <= m.range.end
                })
                .filter_map(|m| m.name.clone())
                .collect();
            let scope = imported_names(&tree, &text, &[range]);
            for (local, mut import) in scope.names {
                import.inline = inline.clone();
                imports.names.insert(local, import);
            }
            for mut glob in scope.globs {
                glob.inline = inline.clone();
                imports.globs.push(glob);
            }
        }
        let krate = index.crate_index(&rel);
        Ok(Seed {
            index,
            rel,
            display,
            current,
            text,
            live,
            structure,
            lines,
            selection,
            selection_reason,
            enclosing,
            focus,
            focus_name,
            goal_words,
            imports,
            tree,
            krate,
        })
    }
}

/// The personalised PageRank of the workspace's files, seen from a seed.
pub(super) struct Ranking {
    rank: Vec<f64>,
    /// Whether the seed's crate can reach each file, by file id.
    reachable: Vec<bool>,
    max_rank: f64,
    current_crate: Option<PathBuf>,
}

impl Ranking {
    /// Personalises the walk on the seed's file and on the files defining goal identifiers.
    pub fn new(seed: &Seed<'_>) -> Ranking {
        let index = seed.index;
        let mut home: HashMap<FileId, f64> = HashMap::new();
        if let Some(id) = seed.current {
            home.insert(id, 1.0);
        }
        for word in &seed.goal_words {
            let defs = index.definitions_of(word);
            for d in defs {
                *home.entry(d.file).or_default() += 0.5 / defs.len() as f64;
            }
        }
        let graph = index.graph();
        // The walk stays among the files the seed's crate can reach: the others never enter a
        // bundle, and ranks are normalised among these.
        let reachable: Vec<bool> = (0..graph.len())
            .map(|i| {
                index
                    .file(i as FileId)
                    .is_some_and(|f| index.reaches_file(seed.krate, &f.path))
            })
            .collect();
        let rank = graph.pagerank_within(&home, &reachable);
        let max_rank = rank
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i as FileId) != seed.current)
            .filter(|(i, _)| reachable[*i])
            .map(|(_, r)| *r)
            .fold(0.0_f64, f64::max);
        Ranking {
            rank,
            reachable,
            max_rank,
            current_crate: index.crate_for(&seed.rel).map(|c| c.dir.clone()),
        }
    }

    /// Whether the seed's crate can reach the file (see [`WorkspaceIndex::reaches_file`]).
    pub fn reachable(&self, file: FileId) -> bool {
        self.reachable.get(file as usize).copied().unwrap_or(false)
    }

    /// A file's rank, normalised to the best file other than the seed's, 0–1.
    pub fn rank_of(&self, file: FileId) -> f64 {
        if self.max_rank <= 0.0 {
            0.0
        } else {
            (self.rank.get(file as usize).copied().unwrap_or(0.0) / self.max_rank).min(1.0)
        }
    }

    /// Whether `path` (relative to the root) is in the seed's crate.
    pub fn same_crate(&self, index: &WorkspaceIndex, path: &Path) -> bool {
        self.current_crate
            .as_ref()
            .is_some_and(|dir| index.crate_for(path).is_some_and(|c| &c.dir == dir))
    }
}

/// A text's length and hash, what [`SEEDS`] knows it by.
type TextKey = (usize, u64);

fn text_key(text: &str) -> TextKey {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    (text.len(), hasher.finish())
}

/// The syntax trees and structures of the texts bundled last, newest last: an editor asks again
/// for the revision it shows, a run bundles each step of its plan in the same files, and the
/// eval bundles each function with and without a goal. Parsing and the structure query were
/// about 40% of a bundle's time. A tree is about ten times its text; [`SEED_CACHE`] files of
/// at most `context.max_file_bytes` bound it.
static SEEDS: Mutex<Vec<(TextKey, tree_sitter::Tree, Arc<FileStructure>)>> = Mutex::new(Vec::new());

/// How many texts [`SEEDS`] keeps.
const SEED_CACHE: usize = 8;

fn cached_seed(key: TextKey) -> Option<(tree_sitter::Tree, Arc<FileStructure>)> {
    let seeds = SEEDS.lock().unwrap_or_else(PoisonError::into_inner);
    seeds
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, tree, structure)| (tree.clone(), structure.clone()))
}

fn remember_seed(key: TextKey, tree: &tree_sitter::Tree, structure: &Arc<FileStructure>) {
    let mut seeds = SEEDS.lock().unwrap_or_else(PoisonError::into_inner);
    seeds.retain(|(k, _, _)| *k != key);
    if seeds.len() >= SEED_CACHE {
        seeds.remove(0);
    }
    seeds.push((key, tree.clone(), structure.clone()));
}

/// Parses the whole of `text` and reads its structure, and keeps both for the next bundle of
/// the same text.
fn parse_whole(
    rust: &Language,
    text: &str,
    display: &str,
    key: TextKey,
) -> anyhow::Result<(tree_sitter::Tree, Arc<FileStructure>)> {
    let tree = rust
        .parse(text)
        .with_context(|| format!("parsing {display}"))?;
    let structure = Arc::new(file_structure(text, &tree)?);
    remember_seed(key, &tree, &structure);
    Ok((tree, structure))
}

/// The function inside `item` that holds `at`, else the first one after it, else the last one
/// before it.
fn nearest_function<'s>(
    structure: &'s FileStructure,
    item: &StructureItem,
    at: usize,
) -> Option<&'s StructureItem> {
    let inside: Vec<&StructureItem> = structure
        .items
        .iter()
        .filter(|i| {
            i.kind == "function" && item.full.start <= i.full.start && i.full.end <= item.full.end
        })
        .collect();
    inside
        .iter()
        .find(|i| i.full.start <= at && at <= i.full.end)
        .or_else(|| inside.iter().find(|i| i.full.start >= at))
        .or_else(|| inside.last())
        .copied()
}

pub(super) fn display_path(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

pub(super) fn clamp_range(text: &str, range: Range<usize>) -> Range<usize> {
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
