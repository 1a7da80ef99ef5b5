//! The decision index of a session's workspace, and the decisions of its open documents.
//!
//! The index ([`Index`]) is read once and then only where the journals changed. In an open
//! document a decision's place is a mark of the document (`document::marks`), moved by every
//! edit where the edit is applied; a decision without a mark yet is looked for by its text on
//! a snapshot and marked if the document has not changed since. A mark that an edit dropped
//! (the user rewrote the region) stays dropped until the document is closed. `lsp/decisions.rs`
//! converts what this answers into hovers, code lenses and command results.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::render::{self, Located};
use super::{Decision, Index};
use crate::app::App;
use crate::document::Snapshot;
use crate::editor::text_hash;
use crate::util::lock;

/// The decision index of the session's workspace.
#[derive(Debug, Default)]
pub struct LiveDecisions {
    index: Mutex<Option<Index>>,
}

/// One decision of an open document: its key, where it is, whether it was edited inside.
type Placed = (u64, Range<usize>, bool);

/// Review marks to record: per run, its journal and the hunks.
pub type Marks = BTreeMap<String, (PathBuf, Vec<usize>)>;

impl LiveDecisions {
    /// Runs `f` on the index of the workspace root, refreshed (only changed journals are read);
    /// `None` without a workspace folder.
    pub fn with<T>(&self, app: &App, f: impl FnOnce(&mut Index) -> T) -> Option<T> {
        let root = app.root()?;
        let root = root.canonicalize().unwrap_or(root);
        let mut slot = lock(&self.index);
        if slot.as_ref().is_none_or(|i| i.root() != root) {
            *slot = Some(Index::new(&root));
        }
        let index = slot.as_mut()?;
        index.refresh();
        Some(f(index))
    }

    /// Reads the journals now, so the first hover does not pay for it.
    pub fn warm(&self, app: &App) {
        self.with(app, |_| ());
    }

    /// The decisions of an open document, placed: by their marks, or found by their text and
    /// marked now.
    fn placed(app: &App, index: &Index, snapshot: &Snapshot) -> Vec<Placed> {
        let Some(rel) = relative_of(app, snapshot) else {
            return Vec::new();
        };
        let decisions = index.in_file(&rel);
        if decisions.is_empty() {
            return Vec::new();
        }
        let mut placed = Vec::new();
        let mut text: Option<(String, String)> = None;
        let mut to_mark = Vec::new();
        let mut unfound = Vec::new();
        for d in decisions {
            if let Some(mark) = snapshot.marks.get(d.key) {
                placed.push((d.key, mark.range(), mark.touched));
                continue;
            }
            if snapshot.marks.is_gone(d.key) || snapshot.marks.is_unfound(d.key) {
                continue;
            }
            let (text, hash) = text.get_or_insert_with(|| {
                let t = snapshot.text.to_string();
                let h = text_hash(t.as_bytes());
                (t, h)
            });
            match super::locate(d, text, hash) {
                Some(range) => {
                    to_mark.push((d.key, range.clone()));
                    placed.push((d.key, range, false));
                }
                // Not looked for again until the document changes: hovers and lenses on a
                // document whose decisions were rewritten do not each copy and search it.
                None => unfound.push(d.key),
            }
        }
        if !to_mark.is_empty() || !unfound.is_empty() {
            // Kept only if the document is still the snapshot's text; else found again next time.
            app.with_documents(|docs| {
                docs.set_marks(&snapshot.uri, snapshot.revision, &to_mark, &unfound)
            });
        }
        placed
    }

    /// The hover (Markdown) of the decisions on 0-based `line` of the open document, if any
    /// and if `[decisions] hover` is on.
    pub fn hover(&self, app: &App, snapshot: &Snapshot, line: usize) -> Option<String> {
        if !app.config().decisions.hover {
            return None;
        }
        self.with(app, |index| {
            let placed = Self::placed(app, index, snapshot);
            let parts: Vec<String> = located(index, snapshot, &placed)
                .iter()
                .filter(|at| {
                    let (first, last) = lines_of(snapshot, &at.range);
                    first <= line && line <= last
                })
                .map(|at| render::hover(index, at))
                .filter(|h| !h.is_empty())
                .collect();
            (!parts.is_empty()).then(|| parts.join("\n\n---\n\n"))
        })
        .flatten()
    }

    /// The code lenses of the open document, if `[decisions] lenses` is on.
    pub fn lenses(&self, app: &App, snapshot: &Snapshot) -> Vec<render::Lens> {
        if !app.config().decisions.lenses {
            return Vec::new();
        }
        self.with(app, |index| {
            let placed = Self::placed(app, index, snapshot);
            render::lenses(index, &located(index, snapshot, &placed))
        })
        .unwrap_or_default()
    }

    /// A run ended (or its journal changed here): reads its journal again, and marks its
    /// decisions in the open documents now, while their text is the one the run left (typing
    /// from here on moves them, however plain the decision's text).
    pub fn reload_run(&self, app: &App, run: &str) {
        self.with(app, |index| {
            index.reload_run(run);
            let files: Vec<String> = index.of_run(run).iter().map(|d| d.file.clone()).collect();
            for snapshot in app.snapshots() {
                if relative_of(app, &snapshot).is_some_and(|rel| files.contains(&rel)) {
                    Self::placed(app, index, &snapshot);
                }
            }
        });
    }

    /// The decisions that 0-based lines `first..=last` of the open document touch, per run
    /// (explanations are not changes and are left out). Empty: none does.
    pub fn touched_by(&self, app: &App, snapshot: &Snapshot, first: usize, last: usize) -> Marks {
        self.with(app, |index| {
            let placed = Self::placed(app, index, snapshot);
            let mut by_run = Marks::new();
            for at in located(index, snapshot, &placed) {
                let (a, z) = lines_of(snapshot, &at.range);
                let Some(run) = index.run(&at.decision.run) else {
                    continue;
                };
                if a <= last.max(first) && first <= z && run.explanation.is_none() {
                    by_run
                        .entry(run.id.clone())
                        .or_insert_with(|| (run.journal.clone(), Vec::new()))
                        .1
                        .push(at.decision.hunk);
                }
            }
            by_run
        })
        .unwrap_or_default()
    }
}

/// The document's path relative to the workspace root, as journals name files.
fn relative_of(app: &App, snapshot: &Snapshot) -> Option<String> {
    let root = app.root()?;
    let root = root.canonicalize().unwrap_or(root);
    let path = snapshot.path.as_ref()?;
    let path = path.canonicalize().unwrap_or_else(|_| path.clone());
    path.starts_with(&root)
        .then(|| crate::orchestrator::relative(&root, &path))
}

/// 0-based first and last lines of `range` in the snapshot (a place: the line it is before).
fn lines_of(snapshot: &Snapshot, range: &Range<usize>) -> (usize, usize) {
    let len = snapshot.text.len_bytes();
    let first = snapshot.text.byte_to_line(range.start.min(len));
    if range.is_empty() {
        return (first, first);
    }
    let last = snapshot
        .text
        .byte_to_line(range.end.saturating_sub(1).min(len));
    (first, last.max(first))
}

fn located<'a>(index: &'a Index, snapshot: &Snapshot, placed: &[Placed]) -> Vec<Located<'a>> {
    placed
        .iter()
        .filter_map(|(key, range, touched)| {
            Some(Located {
                decision: index.get(*key)?,
                line: lines_of(snapshot, range).0 + 1,
                range: range.clone(),
                touched: *touched,
            })
        })
        .collect()
}

/// Why a command on decisions cannot be done: a request naming what does not exist is
/// invalid; one the workspace cannot carry out failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The request names a run or decision that is not there, or asks for nothing.
    Invalid(String),
    /// It cannot be carried out here (no workspace, a journal that cannot be written).
    Failed(String),
}

/// The decisions a command names: decision `hunk` of run `run`, or every one of the run.
pub fn targets(
    index: &Index,
    command: &str,
    run: &str,
    hunk: Option<usize>,
) -> Result<Vec<Decision>, Refused> {
    if index.run(run).is_none() {
        return Err(Refused::Invalid(format!(
            "{command}: no run `{run}` in this workspace's journals"
        )));
    }
    let all = index.of_run(run);
    match hunk {
        Some(hunk) => all
            .into_iter()
            .find(|d| d.hunk == hunk)
            .cloned()
            .map(|d| vec![d])
            .ok_or_else(|| {
                Refused::Invalid(format!("{command}: run `{run}` has no decision {hunk}"))
            }),
        None if all.is_empty() => Err(Refused::Invalid(format!(
            "{command}: run `{run}` applied no change, so it has no decisions"
        ))),
        None => Ok(all.into_iter().cloned().collect()),
    }
}

/// The journal of run `run`, for a command that records in it.
pub fn journal_of(index: &Index, run: &str) -> Result<PathBuf, Refused> {
    index
        .run(run)
        .map(|r| r.journal.clone())
        .ok_or_else(|| Refused::Invalid("the run's journal is gone".into()))
}

/// The path of what `conductor.showRun` shows of run `run`: `story` (written from the journal
/// now), `plan`, `journal` or `explanation`.
pub fn shown_path(index: &Index, command: &str, run: &str, show: &str) -> Result<PathBuf, Refused> {
    let facts = index.run(run).ok_or_else(|| {
        Refused::Invalid(format!(
            "{command}: no run `{run}` in this workspace's journals"
        ))
    })?;
    match show {
        "journal" => Ok(facts.journal.clone()),
        "plan" => facts.plan_file.clone().ok_or_else(|| {
            Refused::Invalid(format!(
                "{command}: run `{}` has no plan document",
                facts.id
            ))
        }),
        "explanation" => facts
            .explanation
            .as_ref()
            .map(|(_, doc)| index.root().join(doc))
            .ok_or_else(|| {
                Refused::Invalid(format!(
                    "{command}: run `{}` is not an explanation",
                    facts.id
                ))
            }),
        "story" => story_document(&facts.journal),
        other => Err(Refused::Invalid(format!(
            "{command}: unknown `show` value `{other}`: use story, plan, journal or explanation"
        ))),
    }
}

/// Writes the run's story (`.conductor/runs/<id>/story.md`) from its journal and returns it.
fn story_document(journal: &Path) -> Result<PathBuf, Refused> {
    let read = crate::journal::read(journal)
        .map_err(|e| Refused::Failed(format!("cannot read {}: {e}", journal.display())))?;
    let story = crate::journal::story::build(journal, &read);
    crate::journal::story::write_markdown(&story)
        .map_err(|e| Refused::Failed(format!("cannot write the run's story: {e}")))
}
