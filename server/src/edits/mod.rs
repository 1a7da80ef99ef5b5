//! Edit application: a coder reply's SEARCH/REPLACE blocks turned into new file texts, safely.
//!
//! Plain data, no LSP and no runs: [`plan_edits`] takes a reply (or parsed blocks), the current
//! text of each file through a [`TextSource`] (an open buffer or the disk) and the run's
//! [`Redactor`], and returns an [`EditPlan`]: one [`BlockOutcome`] per block (applied, which
//! stage, which lines; a no-op; or refused, and why, in words a model can act on in its retry)
//! and one [`FileEdit`] per changed file with the hash of the text it was based on.
//! [`write_files`] writes a plan to disk, each file atomically. Nothing is guessed: a SEARCH part
//! that matches twice is refused (see [`matcher`]), and a path outside the workspace or on a
//! protected name is never written (see [`confine`]).

pub mod confine;
pub mod diff;
pub mod matcher;
pub mod text;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::llm::protocol::{EditBlock, ProtocolError, parse_edit_blocks};
use crate::llm::redact::Redactor;
pub use confine::{Confined, Unconfined, Workspace};
pub use matcher::{Miss, Nearest, Stage};
pub use text::{FileText, hash};

/// Where the applier reads a file's current text.
pub trait TextSource {
    /// The bytes of the file at `path` (absolute, resolved, inside the workspace), or `None`
    /// when there is no such file.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
}

/// Reads files from disk.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskText;

impl TextSource for DiskText {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match crate::util::read_regular_file(path, crate::util::MAX_READ_BYTES) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// A line range, 1-based and inclusive; empty (`last == first - 1`) where lines were only
/// inserted or only removed. Serialised as `[first, last]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSpan {
    /// The first line.
    pub first: usize,
    /// The last line.
    pub last: usize,
}

impl LineSpan {
    fn of(start: usize, len: usize) -> Self {
        Self {
            first: start + 1,
            last: start + len,
        }
    }
}

impl Serialize for LineSpan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.first, self.last].serialize(s)
    }
}

impl std::fmt::Display for LineSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.last.cmp(&self.first) {
            std::cmp::Ordering::Less => write!(f, "none (before line {})", self.first),
            std::cmp::Ordering::Equal => write!(f, "{}", self.first),
            std::cmp::Ordering::Greater => write!(f, "{}-{}", self.first, self.last),
        }
    }
}

/// Why a block was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The reply uses redaction placeholders this run never issued; nothing of it is applied.
    UnknownPlaceholder(Vec<String>),
    /// The path is absolute, has `..`, or resolves outside the workspace.
    OutsideWorkspace(String),
    /// The path is (or resolves to) one that is never written.
    ProtectedPath(String),
    /// The path exists but is not a regular file.
    NotAFile(String),
    /// SEARCH is not empty and the file does not exist.
    FileMissing,
    /// SEARCH is empty (create a file) and the file exists with content.
    FileExists,
    /// The file is not UTF-8; it is never rewritten.
    NotUtf8 {
        /// The byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The file could not be read.
    Unreadable(String),
    /// REPLACE has a line such as `// ... existing code ...` that SEARCH does not: applying
    /// it would delete the code it stands for.
    ElidedReplacement {
        /// The line of REPLACE, 1-based.
        line: usize,
        /// Its text.
        text: String,
    },
    /// No stage found SEARCH.
    NotFound(Option<Nearest>),
    /// A stage found SEARCH in more than one place.
    Ambiguous {
        /// The stage.
        stage: Stage,
        /// The candidate places (at most [`matcher::MAX_CANDIDATES`]).
        candidates: Vec<LineSpan>,
        /// How many places matched.
        count: usize,
    },
    /// A shifted match whose replacement cannot be shifted alike.
    CannotReindent {
        /// The line of REPLACE, 1-based.
        line: usize,
        /// Its text.
        text: String,
    },
}

impl Refusal {
    /// A stable name for the kind of refusal (for tests and scripts).
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::UnknownPlaceholder(_) => "unknown-placeholder",
            Refusal::OutsideWorkspace(_) => "outside-workspace",
            Refusal::ProtectedPath(_) => "protected-path",
            Refusal::NotAFile(_) => "not-a-file",
            Refusal::FileMissing => "file-missing",
            Refusal::FileExists => "file-exists",
            Refusal::NotUtf8 { .. } => "not-utf8",
            Refusal::Unreadable(_) => "unreadable",
            Refusal::ElidedReplacement { .. } => "elided-replacement",
            Refusal::NotFound(_) => "not-found",
            Refusal::Ambiguous { .. } => "ambiguous",
            Refusal::CannotReindent { .. } => "cannot-reindent",
        }
    }

    /// What went wrong and what to do, for a person or for the model's retry.
    pub fn message(&self, file: &str) -> String {
        match self {
            Refusal::UnknownPlaceholder(p) => format!(
                "the reply uses redaction placeholder(s) {} that this run never issued; no block of it is applied. Use only placeholders that appear in the context, exactly as written",
                p.join(", ")
            ),
            Refusal::OutsideWorkspace(why) => format!("outside the workspace: {why}"),
            Refusal::ProtectedPath(p) => format!(
                "{file}: `{p}` is protected (git, Conductor and editor settings are never written)"
            ),
            Refusal::NotAFile(why) => format!("{why}; only regular files are edited"),
            Refusal::FileMissing => {
                format!("{file} does not exist; to create it, leave the SEARCH part empty")
            }
            Refusal::FileExists => format!(
                "{file} already exists and is not empty; an empty SEARCH part only creates a new file. Quote the lines to change in SEARCH"
            ),
            Refusal::NotUtf8 { offset } => format!(
                "{file} is not UTF-8 (invalid byte at offset {offset}); it is never rewritten"
            ),
            Refusal::Unreadable(err) => format!("{file} could not be read: {err}"),
            Refusal::ElidedReplacement { line, text } => format!(
                "line {line} of REPLACE, `{}`, stands for lines it does not show; applying it would delete them. Write out every line of REPLACE",
                text.trim()
            ),
            Refusal::NotFound(None) => format!(
                "the SEARCH part was not found in {file}, and none of its lines occurs there. Quote the file's current lines exactly"
            ),
            Refusal::NotFound(Some(n)) => {
                let mut out = format!("the SEARCH part was not found in {file}");
                if let (Some(first), Some(last)) = (n.lines.first(), n.lines.last()) {
                    out.push_str(&format!("; did you mean lines {}-{}?", first.0, last.0));
                }
                if let Some((line, file_text, search_text)) = &n.first_difference {
                    out.push_str(&format!(
                        " The first difference is at line {line}: the file has `{file_text}`, SEARCH has `{search_text}`"
                    ));
                }
                out.push_str(". Quote the file's current lines exactly");
                out
            }
            Refusal::Ambiguous {
                stage,
                candidates,
                count,
            } => {
                let at: Vec<String> = candidates.iter().map(|c| format!("lines {c}")).collect();
                format!(
                    "the SEARCH part matches {count} places in {file} ({} match): {}; include more surrounding lines so that it matches one place only",
                    stage.name(),
                    at.join(", ")
                )
            }
            Refusal::CannotReindent { line, text } => format!(
                "the SEARCH part matched {file} only with a different indentation, and line {line} of REPLACE, `{text}`, cannot be re-indented alike. Copy SEARCH with the file's own indentation"
            ),
        }
    }
}

/// What became of one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockStatus {
    /// Applied.
    Applied {
        /// The stage that matched (or [`Stage::Create`]).
        stage: Stage,
        /// The replaced lines, in the text the block was matched against.
        before: LineSpan,
        /// The new lines, in the text after the block.
        after: LineSpan,
    },
    /// SEARCH and REPLACE are the same: nothing to do, and not an error.
    Noop,
    /// Refused.
    Refused(Refusal),
}

/// One block's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// The block's number in the reply, from 1.
    pub index: usize,
    /// The file as the block named it (normalised when it could be confined).
    pub file: String,
    /// What happened.
    pub status: BlockStatus,
    /// The SHA-256 of the file's text when the plan read it (`None` when there was no file).
    /// The block was matched against that text with the reply's earlier blocks for the same
    /// file applied on top, so (this hash, the earlier blocks) names its base exactly.
    pub base_hash: Option<String>,
}

impl BlockOutcome {
    /// The refusal's message, or a note for a no-op; `None` when applied.
    pub fn reason(&self) -> Option<String> {
        match &self.status {
            BlockStatus::Applied { .. } => None,
            BlockStatus::Noop => Some(format!(
                "SEARCH and REPLACE are identical; {} is left as it is",
                self.file
            )),
            BlockStatus::Refused(r) => Some(r.message(&self.file)),
        }
    }
}

/// The new text of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    /// Where it is.
    pub path: Confined,
    /// The SHA-256 of the text it was based on; `None` for a new file.
    pub base_hash: Option<String>,
    /// That text; `None` for a new file.
    pub before: Option<String>,
    /// The text with every applied block.
    pub after: String,
}

impl FileEdit {
    /// A unified diff from `before` to `after`.
    pub fn diff(&self) -> String {
        diff::unified(&self.path.relative, self.before.as_deref(), &self.after)
    }
}

/// Every block's outcome and every changed file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EditPlan {
    /// One per block, in reply order.
    pub blocks: Vec<BlockOutcome>,
    /// One per file that at least one block changed, in the order first touched.
    pub files: Vec<FileEdit>,
}

impl EditPlan {
    /// Whether every block applied or was a no-op.
    pub fn all_applied(&self) -> bool {
        self.blocks
            .iter()
            .all(|b| !matches!(b.status, BlockStatus::Refused(_)))
    }
}

/// Parses `reply` and plans its blocks (see [`plan_blocks`]); a reply that does not parse is an
/// error naming the block.
pub fn plan_edits(
    workspace: &Workspace,
    reply: &str,
    source: &dyn TextSource,
    redactor: &Redactor,
) -> Result<EditPlan, ProtocolError> {
    Ok(plan_blocks(
        workspace,
        &parse_edit_blocks(reply)?,
        source,
        redactor,
    ))
}

/// The lines of a block part (each `\n`-terminated), without endings.
fn part_lines(part: &str) -> Vec<&str> {
    if part.is_empty() {
        return Vec::new();
    }
    let body = part.strip_suffix('\n').unwrap_or(part);
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// A REPLACE line that stands for unchanged code instead of showing it.
fn elision(line: &str) -> bool {
    let t = line.trim();
    if matches!(t, "..." | "…" | "// ..." | "// …" | "/* ... */" | "# ...") {
        return true;
    }
    let Some(comment) = t
        .strip_prefix("//")
        .or_else(|| t.strip_prefix("/*"))
        .or_else(|| t.strip_prefix('#'))
    else {
        return false;
    };
    let c = comment.to_lowercase();
    (c.contains("...") || c.contains('…'))
        && [
            "existing",
            "unchanged",
            "rest of",
            "remain",
            "as before",
            "omitted",
            "same as",
            "other ",
        ]
        .iter()
        .any(|w| c.contains(w))
}

/// The first elision line of REPLACE that SEARCH does not have (1-based).
fn elided(search: &[&str], replace: &[&str]) -> Option<(usize, String)> {
    replace.iter().enumerate().find_map(|(i, l)| {
        (elision(l) && !search.iter().any(|s| s.trim() == l.trim())).then(|| (i + 1, l.to_string()))
    })
}

/// A file's state while a plan is built.
struct Working {
    path: Confined,
    base_hash: Option<String>,
    before: Option<String>,
    text: FileText,
    exists: bool,
    changed: bool,
}

/// Plans `blocks` in order, each on the text the blocks before it left. A refused block does
/// not stop the others. Reads each file once through `source`.
pub fn plan_blocks(
    workspace: &Workspace,
    blocks: &[EditBlock],
    source: &dyn TextSource,
    redactor: &Redactor,
) -> EditPlan {
    let mut plan = EditPlan::default();
    // Placeholders the run never issued: the model invented them, so the reply as a whole is not
    // trusted, and nothing of it is applied.
    let mut unknown: Vec<String> = Vec::new();
    for b in blocks {
        for p in redactor
            .unknown_placeholders(&b.search)
            .into_iter()
            .chain(redactor.unknown_placeholders(&b.replace))
        {
            if !unknown.contains(&p) {
                unknown.push(p);
            }
        }
    }
    if !unknown.is_empty() {
        plan.blocks = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| BlockOutcome {
                index: i + 1,
                file: b.path.clone(),
                status: BlockStatus::Refused(Refusal::UnknownPlaceholder(unknown.clone())),
                base_hash: None,
            })
            .collect();
        return plan;
    }
    let mut files: Vec<Working> = Vec::new();
    let mut by_real: HashMap<PathBuf, usize> = HashMap::new();
    // Reads that failed, by real path, so every block on that file is refused alike.
    let mut failed: HashMap<PathBuf, Refusal> = HashMap::new();
    let mut confinements: HashMap<String, Result<Confined, Unconfined>> = HashMap::new();
    for (i, block) in blocks.iter().enumerate() {
        let mut outcome = BlockOutcome {
            index: i + 1,
            file: block.path.clone(),
            status: BlockStatus::Noop,
            base_hash: None,
        };
        // One confinement per path and plan: blocks of a reply mostly name the same files.
        let confined = confinements
            .entry(block.path.clone())
            .or_insert_with(|| workspace.confine(&block.path))
            .clone();
        let path = match confined {
            Ok(path) => path,
            Err(err) => {
                outcome.status = BlockStatus::Refused(match err {
                    Unconfined::Outside(why) => Refusal::OutsideWorkspace(why),
                    Unconfined::Protected(p) => Refusal::ProtectedPath(p),
                    Unconfined::NotAFile(why) => Refusal::NotAFile(why),
                });
                plan.blocks.push(outcome);
                continue;
            }
        };
        outcome.file = path.relative.clone();
        if let Some(refusal) = failed.get(&path.real) {
            outcome.status = BlockStatus::Refused(refusal.clone());
            plan.blocks.push(outcome);
            continue;
        }
        let slot = match by_real.get(&path.real) {
            Some(&slot) => slot,
            None => match read(source, path.clone()) {
                Ok(working) => {
                    files.push(working);
                    by_real.insert(path.real.clone(), files.len() - 1);
                    files.len() - 1
                }
                Err(refusal) => {
                    failed.insert(path.real.clone(), refusal.clone());
                    outcome.status = BlockStatus::Refused(refusal);
                    plan.blocks.push(outcome);
                    continue;
                }
            },
        };
        let working = &mut files[slot];
        outcome.base_hash = working.base_hash.clone();
        // The model saw placeholders where secrets are; the file and its new text have the
        // secrets themselves.
        let search = redactor.restore(&block.search);
        let replace = redactor.restore(&block.replace);
        outcome.status = apply_block(working, &search, &replace);
        plan.blocks.push(outcome);
    }
    plan.files = files
        .into_iter()
        .filter(|w| w.changed)
        .map(|w| FileEdit {
            after: w.text.to_text(),
            path: w.path,
            base_hash: w.base_hash,
            before: w.before,
        })
        .filter(|f| f.before.as_deref() != Some(f.after.as_str()))
        .collect();
    plan
}

fn read(source: &dyn TextSource, path: Confined) -> Result<Working, Refusal> {
    match source.read(&path.real) {
        Err(err) => Err(Refusal::Unreadable(err.to_string())),
        Ok(None) => Ok(Working {
            path,
            base_hash: None,
            before: None,
            text: FileText::from_text(""),
            exists: false,
            changed: false,
        }),
        Ok(Some(bytes)) => {
            let text =
                FileText::decode(&bytes).map_err(|e| Refusal::NotUtf8 { offset: e.offset })?;
            Ok(Working {
                path,
                base_hash: Some(hash(&bytes)),
                before: String::from_utf8(bytes).ok(),
                text,
                exists: true,
                changed: false,
            })
        }
    }
}

fn apply_block(working: &mut Working, search: &str, replace: &str) -> BlockStatus {
    let search_lines = part_lines(search);
    let replace_lines = part_lines(replace);
    if let Some((line, text)) = elided(&search_lines, &replace_lines) {
        return BlockStatus::Refused(Refusal::ElidedReplacement { line, text });
    }
    if search_lines.is_empty() {
        // Create the file, or fill one that exists but is empty (nothing there to lose).
        if !working.text.lines.is_empty() {
            return BlockStatus::Refused(Refusal::FileExists);
        }
        let len = replace_lines.len();
        let mut created = FileText::from_text("");
        created.bom = working.text.bom;
        created.style = working.text.style;
        created.splice(0, 0, replace_lines.iter().map(|l| l.to_string()).collect());
        working.text = created;
        working.changed = true;
        return BlockStatus::Applied {
            stage: Stage::Create,
            before: LineSpan::of(0, 0),
            after: LineSpan::of(0, len),
        };
    }
    if !working.exists && working.text.lines.is_empty() {
        return BlockStatus::Refused(Refusal::FileMissing);
    }
    if search_lines == replace_lines {
        return BlockStatus::Noop;
    }
    let found = matcher::find(&working.text.lines, &search_lines, &replace_lines);
    match found {
        Ok(m) => {
            let new_len = m.replacement.len();
            working.text.splice(m.start, m.len, m.replacement);
            working.changed = true;
            BlockStatus::Applied {
                stage: m.stage,
                before: LineSpan::of(m.start, m.len),
                after: LineSpan::of(m.start, new_len),
            }
        }
        Err(Miss::NotFound(nearest)) => BlockStatus::Refused(Refusal::NotFound(nearest)),
        Err(Miss::Ambiguous {
            stage,
            starts,
            count,
            len,
        }) => BlockStatus::Refused(Refusal::Ambiguous {
            stage,
            candidates: starts.into_iter().map(|s| LineSpan::of(s, len)).collect(),
            count,
        }),
        Err(Miss::CannotReindent { line, text }) => {
            BlockStatus::Refused(Refusal::CannotReindent { line, text })
        }
    }
}

/// How writing one file went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The file, relative to the root.
    pub file: String,
    /// `Ok` when written; else why not (nothing was written to it).
    pub result: Result<(), String>,
}

/// Writes every file of `plan` to disk, each atomically (a temporary file in the same folder,
/// then a rename), after confining its path again and checking that the file on disk is still
/// the text the plan was based on. For plans whose texts came from the disk.
pub fn write_files(workspace: &Workspace, plan: &EditPlan) -> Vec<Written> {
    plan.files
        .iter()
        .map(|edit| Written {
            file: edit.path.relative.clone(),
            result: write_one(workspace, edit),
        })
        .collect()
}

fn write_one(workspace: &Workspace, edit: &FileEdit) -> Result<(), String> {
    let name = &edit.path.relative;
    let real = &edit.path.real;
    workspace
        .recheck(&edit.path)
        .map_err(|e| format!("{name}: refused: {e}"))?;
    let on_disk = DiskText
        .read(real)
        .map_err(|e| format!("{name}: reading it before writing: {e}"))?;
    match (&edit.base_hash, &on_disk) {
        (None, Some(_)) => {
            return Err(format!(
                "{name}: was created by someone else since the edit was planned"
            ));
        }
        (Some(_), None) => return Err(format!("{name}: was deleted since the edit was planned")),
        (Some(base), Some(bytes)) if *base != hash(bytes) => {
            return Err(format!(
                "{name}: changed on disk since the edit was planned"
            ));
        }
        _ => {}
    }
    let folder = real
        .parent()
        .ok_or_else(|| format!("{name}: has no parent folder"))?;
    std::fs::create_dir_all(folder)
        .map_err(|e| format!("{name}: creating {}: {e}", folder.display()))?;
    // The folders just created may not be symlinks, but check: they must still be inside.
    workspace
        .recheck(&edit.path)
        .map_err(|e| format!("{name}: refused: {e}"))?;
    // The last check runs just before the rename makes the write visible: a symlink swapped
    // in while writing is refused.
    crate::editor::write_atomically_checked(real, edit.after.as_bytes(), || {
        workspace.recheck(&edit.path).map_err(|e| e.to_string())
    })
    .map_err(|err| match err {
        crate::editor::WriteError::Io(err) => format!("{name}: writing it: {err}"),
        crate::editor::WriteError::Refused(e) => format!("{name}: refused: {e}"),
    })
}

#[cfg(test)]
mod tests;
