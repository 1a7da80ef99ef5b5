//! What the commands on decisions do, as plain data: record a review mark, and plan a revert
//! (or re-apply) of a run's decisions — all or nothing, only where the text is what the run
//! left — as one [`ChangeSet`] for the editor port, journalled either way. `lsp/decisions.rs`
//! parses the arguments, sends the change through its port and converts the answers.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use super::Decision;
use super::live::{LiveDecisions, Refused, journal_of, targets};
use crate::app::App;
use crate::editor::{Base, ChangeSet, FileChange, TextEdit, text_hash};
use crate::journal::{Event, Journal};

/// Records in `journal` that `hunks` were marked reviewed (or, `reviewed: false`, not), by the
/// editor.
pub fn record_reviewed(journal: &Path, hunks: &[usize], reviewed: bool) -> Result<(), String> {
    let appended = Journal::append_to(journal).map_err(|e| {
        format!(
            "cannot record the review mark in {}: {e}",
            journal.display()
        )
    })?;
    appended.record(Event::Reviewed {
        hunks: hunks.to_vec(),
        reviewed,
        by: "editor".into(),
    });
    if appended.failures() > 0 {
        return Err(format!(
            "cannot record the review mark in {}",
            journal.display()
        ));
    }
    Ok(())
}

/// Where a decision to revert is, and the edit that restores it.
#[derive(Debug, Clone)]
struct Restore {
    path: PathBuf,
    base: Base,
    range: Range<usize>,
    replacement: String,
}

/// A revert (or re-apply) of some of a run's decisions, ready for the editor.
#[derive(Debug, Clone)]
pub struct RevertPlan {
    /// The run.
    pub run: String,
    /// Its journal.
    pub journal: PathBuf,
    /// The decisions it is about.
    pub hunks: Vec<usize>,
    /// `revert` or `reapply`.
    pub action: &'static str,
    /// The change to hand to the editor; `Err`: why nothing is to be done (every decision that
    /// cannot be restored, joined: half of a run's change undone can leave code that does not
    /// build).
    pub change: Result<ChangeSet, String>,
    /// The open documents' marks of the restored decisions, forgotten once the change is
    /// applied (the restored text is found again by its own hash, where the edit put it).
    forget: Vec<(String, u64)>,
}

impl RevertPlan {
    /// What the user is told when the plan was refused.
    pub fn refusal(&self, why: &str) -> String {
        format!(
            "Conductor run {}: nothing was {}: {why}",
            self.run,
            if self.action == "reapply" {
                "re-applied"
            } else {
                "reverted"
            }
        )
    }

    /// Records how the revert ended (`applied`, `cancelled`, `refused: …`, or the editor's
    /// reason) in the run's journal.
    pub fn record(&self, result: &str) -> std::io::Result<()> {
        let j = Journal::append_to(&self.journal)?;
        j.record(Event::Reverted {
            hunks: self.hunks.clone(),
            action: self.action.into(),
            result: result.into(),
        });
        Ok(())
    }

    /// After the editor applied the change: the restored decisions' marks are let go.
    pub fn applied(&self, app: &App) {
        for (uri, key) in &self.forget {
            app.with_documents(|docs| docs.forget_marks(uri, &[*key]));
        }
    }
}

/// Plans `conductor.revert` of decision `hunk` of `run` (every decision of the run not yet in
/// the wanted state, without one); `reapply` undoes a revert. Each decision's text is looked
/// for in the open document (by its mark) or on disk, and must read exactly as the run left
/// it; `needs_confirmation` previews the change like a run's.
pub fn plan_revert(
    app: &App,
    live: &LiveDecisions,
    command: &str,
    run: &str,
    hunk: Option<usize>,
    reapply: bool,
) -> Result<RevertPlan, Refused> {
    let action = if reapply { "reapply" } else { "revert" };
    let root = app
        .root()
        .ok_or_else(|| Refused::Failed(format!("{command} needs a workspace folder")))?;
    let root = root.canonicalize().unwrap_or(root);
    let (journal, planned) = live
        .with(app, |index| -> Result<_, Refused> {
            let mut chosen = targets(index, command, run, hunk)?;
            if hunk.is_none() {
                chosen.retain(|d| d.reverted == reapply);
            }
            let journal = journal_of(index, run)?;
            let planned: Vec<(Decision, Result<Restore, String>)> = chosen
                .into_iter()
                .map(|d| {
                    let restore = if d.reverted != reapply {
                        Err(format!(
                            "decision {} is already {}",
                            d.hunk,
                            if reapply { "applied" } else { "reverted" }
                        ))
                    } else {
                        restore(app, &root, &d, reapply)
                    };
                    (d, restore)
                })
                .collect();
            Ok((journal, planned))
        })
        .ok_or_else(|| Refused::Failed(format!("{command} needs a workspace folder")))??;
    if planned.is_empty() {
        return Err(Refused::Invalid(format!(
            "{command}: nothing to {action} in run `{run}`"
        )));
    }
    let hunks: Vec<usize> = planned.iter().map(|(d, _)| d.hunk).collect();
    let refusals: Vec<&str> = planned
        .iter()
        .filter_map(|(_, r)| r.as_ref().err().map(String::as_str))
        .collect();
    let mut plan = RevertPlan {
        run: run.to_string(),
        journal,
        hunks,
        action,
        change: Err(refusals.join("; ")),
        forget: Vec::new(),
    };
    if !refusals.is_empty() {
        return Ok(plan);
    }
    let mut files: BTreeMap<PathBuf, FileChange> = BTreeMap::new();
    for (d, restore) in planned {
        let Ok(r) = restore else { continue };
        if let Base::Open { uri, .. } = &r.base {
            plan.forget.push((uri.clone(), d.key));
        }
        files
            .entry(r.path.clone())
            .or_insert_with(|| FileChange {
                path: r.path.clone(),
                base: r.base.clone(),
                edits: Vec::new(),
            })
            .edits
            .push(TextEdit {
                range: r.range,
                new_text: r.replacement,
                note: None,
            });
    }
    plan.change = Ok(ChangeSet {
        label: format!(
            "Conductor: {} run {run}",
            if reapply { "re-apply" } else { "revert" }
        ),
        description: String::new(),
        // Previewed like a run's change when runs are (`run.confirm`).
        needs_confirmation: app.config().run.confirm,
        notes: Vec::new(),
        files: files.into_values().collect(),
    });
    Ok(plan)
}

/// Where `d`'s text is now (the open document, else the file on disk) and the edit that swaps
/// it back; `Err` says why it cannot be done.
fn restore(app: &App, root: &Path, d: &Decision, reapply: bool) -> Result<Restore, String> {
    // A journal is a file in the workspace like any other (a cloned repository can bring
    // one): its paths are confined to the workspace before anything is read or written.
    let confined = Path::new(&d.file)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !confined || d.file.is_empty() {
        return Err(format!(
            "{}: not a path inside the workspace; nothing is written there",
            d.file
        ));
    }
    let path = root.join(&d.file);
    let replacement = if reapply { &d.written } else { &d.original };
    let (base, range) = match app.snapshot_of_path(&path) {
        Some(snapshot) => {
            let range = match snapshot.marks.get(d.key) {
                Some(mark) if mark.touched => {
                    return Err(format!(
                        "{}:{}: you edited this decision's text since the run",
                        d.file, d.lines[0]
                    ));
                }
                Some(mark) => Some(mark.range()),
                None if snapshot.marks.is_gone(d.key) => {
                    return Err(format!(
                        "{}:{}: you rewrote this decision's text since the run",
                        d.file, d.lines[0]
                    ));
                }
                None => {
                    let text = snapshot.text.to_string();
                    super::locate(d, &text, &text_hash(text.as_bytes()))
                }
            };
            let range = range.ok_or_else(|| {
                format!(
                    "{}:{}: this decision's text is no longer in the file",
                    d.file, d.lines[0]
                )
            })?;
            // The mark's text must read exactly as recorded (a mark follows moves, not content).
            let now = snapshot
                .text
                .get_byte_slice(range.clone())
                .map(|t| t.to_string());
            if now.as_deref() != Some(d.expected()) {
                return Err(format!(
                    "{}:{}: the text there is not what the run left",
                    d.file, d.lines[0]
                ));
            }
            (
                Base::Open {
                    uri: snapshot.uri.clone(),
                    version: snapshot.version,
                    revision: snapshot.revision,
                },
                range,
            )
        }
        None => {
            let text = crate::util::read_regular_text(&path, crate::util::MAX_READ_BYTES)
                .map_err(|e| format!("{}: cannot read it: {e}", d.file))?;
            let hash = text_hash(text.as_bytes());
            let range = super::locate(d, &text, &hash).ok_or_else(|| {
                format!(
                    "{}:{}: this decision's text is no longer in the file",
                    d.file, d.lines[0]
                )
            })?;
            (Base::Disk { hash }, range)
        }
    };
    Ok(Restore {
        path,
        base,
        range,
        replacement: replacement.clone(),
    })
}
