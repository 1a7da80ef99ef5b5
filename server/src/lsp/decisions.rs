//! Decisions in the editor: hovers on code a run wrote, code lenses over the regions runs
//! changed, and the commands behind the lenses — `conductor.markReviewed`, `conductor.revert`
//! (and re-apply) and `conductor.showRun`.
//!
//! The decision index (`crate::decisions`, plain data) is read once and then only where the
//! journals changed. In an open document a decision's place is a mark of the document
//! (`document::marks`), moved by every edit where the edit is applied; a decision without a
//! mark yet is looked for by its text on a snapshot and marked if the document has not
//! changed since. A mark that an edit dropped (the user rewrote the region) stays dropped
//! until the document is closed.

use std::collections::BTreeMap;
use std::ops::Range as Bytes;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::convert;
use super::editor::LspEditor;
use super::requests::{self, Policy};
use super::runs::{argument, bad, failed};
use super::session::Session;
use crate::decisions::render::{self, Located};
use crate::decisions::{Decision, Index};
use crate::document::Snapshot;
use crate::editor::{Applied, Base, ChangeSet, Editor, FileChange, TextEdit, text_hash};
use crate::journal::{Event, Journal};
use crate::util::lock;

/// `conductor.markReviewed` `{runId, hunk?, reviewed?}`: marks one decision (or all of a
/// run's) reviewed, or takes the mark back with `reviewed: false`.
pub const MARK_REVIEWED: &str = "conductor.markReviewed";
/// `conductor.revert` `{runId, hunk?, reapply?}`: restores the text a decision (or a whole
/// run) replaced, only where its text is unchanged since; `reapply: true` undoes a revert.
pub const REVERT: &str = "conductor.revert";
/// `conductor.showRun` `{runId, show?, hunk?}`: opens a run's story, plan, journal or
/// explanation.
pub const SHOW_RUN: &str = "conductor.showRun";

/// The decision index of the session's workspace.
#[derive(Debug, Default)]
pub struct LiveDecisions {
    index: Mutex<Option<Index>>,
}

/// One decision of an open document: its key, where it is, whether it was edited inside.
type Placed = (u64, Bytes<usize>, bool);

impl LiveDecisions {
    /// Runs `f` on the index of the session's root, refreshed (only changed journals are read).
    fn with<T>(&self, session: &Session, f: impl FnOnce(&mut Index) -> T) -> Option<T> {
        let root = session.root()?;
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
    pub fn warm(&self, session: &Session) {
        self.with(session, |_| ());
    }

    /// The decisions of the open document `uri`, placed: by their marks, or found by their text
    /// and marked now.
    fn placed(session: &Session, index: &Index, snapshot: &Snapshot) -> Vec<Placed> {
        let Some(rel) = relative_of(session, snapshot) else {
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
            match crate::decisions::locate(d, text, hash) {
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
            session.with_documents(|docs| {
                docs.set_marks(&snapshot.uri, snapshot.revision, &to_mark, &unfound)
            });
        }
        placed
    }

    /// The hover of the decisions under `position`, if any.
    pub fn hover(&self, session: &Session, uri: &str, position: Position) -> Option<String> {
        if !session.config().decisions.hover {
            return None;
        }
        let snapshot = session.snapshot(uri)?;
        self.with(session, |index| {
            let placed = Self::placed(session, index, &snapshot);
            let offset = snapshot.offset(convert::from_position(position), session.encoding());
            let line = snapshot
                .text
                .byte_to_line(offset.min(snapshot.text.len_bytes()));
            let parts: Vec<String> = located(index, &snapshot, &placed)
                .iter()
                .filter(|at| {
                    let (first, last) = lines_of(&snapshot, &at.range);
                    first <= line && line <= last
                })
                .map(|at| render::hover(index, at))
                .filter(|h| !h.is_empty())
                .collect();
            (!parts.is_empty()).then(|| parts.join("\n\n---\n\n"))
        })
        .flatten()
    }

    /// The code lenses of the open document `uri`.
    pub fn code_lenses(&self, session: &Session, uri: &Uri) -> Vec<CodeLens> {
        if !session.config().decisions.lenses {
            return Vec::new();
        }
        let Some(snapshot) = session.snapshot(uri.as_str()) else {
            return Vec::new();
        };
        self.with(session, |index| {
            let placed = Self::placed(session, index, &snapshot);
            let located = located(index, &snapshot, &placed);
            render::lenses(index, &located)
                .into_iter()
                .map(|lens| {
                    let at = Position::new(lens.line as u32, 0);
                    CodeLens {
                        range: Range::new(at, at),
                        command: Some(Command {
                            title: lens.title,
                            command: lens.command,
                            arguments: Some(vec![lens.argument]),
                        }),
                        data: None,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
    }

    /// A run ended (or its journal changed here): read its journal and refresh the lenses.
    pub async fn run_changed(&self, client: &Client, session: &Session, run: &str) {
        self.with(session, |index| {
            index.reload_run(run);
            // The run's open documents get their marks now, while their text is the one the
            // run left: typing from here on moves them, however plain the decision's text.
            let files: Vec<String> = index.of_run(run).iter().map(|d| d.file.clone()).collect();
            for snapshot in session.app.snapshots() {
                if relative_of(session, &snapshot).is_some_and(|rel| files.contains(&rel)) {
                    Self::placed(session, index, &snapshot);
                }
            }
        });
        refresh_lenses(client, session).await;
    }
}

/// Asks the client to ask for code lenses again, when it takes that request.
pub async fn refresh_lenses(client: &Client, session: &Session) {
    if session.client().code_lens_refresh {
        let _ = requests::send::<request::CodeLensRefresh>(
            client,
            (),
            Policy::within(requests::PROMPT),
        )
        .await;
    }
}

/// The document's path relative to the workspace root, as journals name files.
fn relative_of(session: &Session, snapshot: &Snapshot) -> Option<String> {
    let root = session.root()?;
    let root = root.canonicalize().unwrap_or(root);
    let path = snapshot.path.as_ref()?;
    let path = path.canonicalize().unwrap_or_else(|_| path.clone());
    path.starts_with(&root)
        .then(|| crate::orchestrator::relative(&root, &path))
}

/// 0-based first and last lines of `range` in the snapshot (a place: the line it is before).
fn lines_of(snapshot: &Snapshot, range: &Bytes<usize>) -> (usize, usize) {
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DecisionArgs {
    run_id: String,
    hunk: Option<usize>,
    reviewed: Option<bool>,
    reapply: Option<bool>,
    show: Option<String>,
}

const SHAPE: &str = "{runId, hunk?}";

/// The decisions a command names: the one hunk, or every one of the run.
fn targets(index: &Index, command: &str, args: &DecisionArgs) -> Result<Vec<Decision>> {
    if index.run(&args.run_id).is_none() {
        return Err(bad(format!(
            "{command}: no run `{}` in this workspace's journals",
            args.run_id
        )));
    }
    let all = index.of_run(&args.run_id);
    match args.hunk {
        Some(hunk) => all
            .into_iter()
            .find(|d| d.hunk == hunk)
            .cloned()
            .map(|d| vec![d])
            .ok_or_else(|| {
                bad(format!(
                    "{command}: run `{}` has no decision {hunk}",
                    args.run_id
                ))
            }),
        None if all.is_empty() => Err(bad(format!(
            "{command}: run `{}` applied no change, so it has no decisions",
            args.run_id
        ))),
        None => Ok(all.into_iter().cloned().collect()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SelectionArgs {
    uri: Uri,
    range: Range,
    reviewed: Option<bool>,
}

/// `conductor.markReviewed`: `{runId, hunk?, reviewed?}`, or `{uri, range, reviewed?}` for the
/// decisions the selection touches (what the editors send from their palettes).
pub async fn mark_reviewed(
    client: &Client,
    session: &Arc<Session>,
    live: &LiveDecisions,
    arguments: Vec<Value>,
) -> Result<Option<Value>> {
    let by_selection = arguments
        .first()
        .is_some_and(|a| a.get("uri").is_some() && a.get("runId").is_none());
    let (reviewed, marks) = if by_selection {
        let args: SelectionArgs = argument(MARK_REVIEWED, "{uri, range}", arguments)?;
        let snapshot = session.snapshot(args.uri.as_str()).ok_or_else(|| {
            bad(format!(
                "{MARK_REVIEWED}: {} is not open",
                args.uri.as_str()
            ))
        })?;
        let (first, last) = (args.range.start.line as usize, args.range.end.line as usize);
        let marks = live
            .with(session, |index| {
                let placed = LiveDecisions::placed(session, index, &snapshot);
                let mut by_run: BTreeMap<String, (PathBuf, Vec<usize>)> = BTreeMap::new();
                for at in located(index, &snapshot, &placed) {
                    let (a, z) = lines_of(&snapshot, &at.range);
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
            .unwrap_or_default();
        if marks.is_empty() {
            return Err(bad(format!(
                "{MARK_REVIEWED}: no run's decision covers lines {}-{} of {}",
                first + 1,
                last.max(first) + 1,
                args.uri.as_str()
            )));
        }
        (args.reviewed.unwrap_or(true), marks)
    } else {
        let args: DecisionArgs = argument(MARK_REVIEWED, SHAPE, arguments)?;
        let marks = live
            .with(session, |index| -> Result<_> {
                let targets = targets(index, MARK_REVIEWED, &args)?;
                let journal = index
                    .run(&args.run_id)
                    .map(|r| r.journal.clone())
                    .ok_or_else(|| bad("the run's journal is gone"))?;
                let hunks = targets.iter().map(|d| d.hunk).collect::<Vec<_>>();
                Ok(BTreeMap::from([(args.run_id.clone(), (journal, hunks))]))
            })
            .ok_or_else(|| failed(format!("{MARK_REVIEWED} needs a workspace folder")))??;
        (args.reviewed.unwrap_or(true), marks)
    };
    let mut done = Vec::new();
    for (run, (journal, hunks)) in &marks {
        let appended = Journal::append_to(journal).map_err(|e| {
            failed(format!(
                "cannot record the review mark in {}: {e}",
                journal.display()
            ))
        })?;
        appended.record(Event::Reviewed {
            hunks: hunks.clone(),
            reviewed,
            by: "editor".into(),
        });
        if appended.failures() > 0 {
            return Err(failed(format!(
                "cannot record the review mark in {}",
                journal.display()
            )));
        }
        live.run_changed(client, session, run).await;
        let state = live
            .with(session, |index| render::run_review_state(index, run))
            .unwrap_or_default();
        done.push(json!({"runId": run, "hunks": hunks, "run": state}));
    }
    // One run (the lens's case): its fields at the top level too.
    let mut result = json!({"reviewed": reviewed, "runs": done});
    if let [one] = done.as_slice()
        && let (Some(map), Some(one)) = (result.as_object_mut(), one.as_object())
    {
        for (k, v) in one {
            map.insert(k.clone(), v.clone());
        }
    }
    Ok(Some(result))
}

/// Where a decision to revert is, and the edit that restores it.
struct Restore {
    path: PathBuf,
    base: Base,
    range: Bytes<usize>,
    replacement: String,
}

/// Where `d`'s text is now (the open document, else the file on disk) and the edit that swaps
/// it back; `Err` says why it cannot be done.
fn restore(
    session: &Session,
    root: &std::path::Path,
    d: &Decision,
    reapply: bool,
) -> std::result::Result<Restore, String> {
    // A journal is a file in the workspace like any other (a cloned repository can bring
    // one): its paths are confined to the workspace before anything is read or written.
    let confined = std::path::Path::new(&d.file)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !confined || d.file.is_empty() {
        return Err(format!(
            "{}: not a path inside the workspace; nothing is written there",
            d.file
        ));
    }
    let path = root.join(&d.file);
    let replacement = if reapply { &d.written } else { &d.original };
    let open = convert::path_to_uri(&path).and_then(|uri| session.snapshot(uri.as_str()));
    let (base, range) = match open {
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
                    crate::decisions::locate(d, &text, &text_hash(text.as_bytes()))
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
            let range = crate::decisions::locate(d, &text, &hash).ok_or_else(|| {
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

/// `conductor.revert`.
pub async fn revert(
    client: &Client,
    session: &Arc<Session>,
    live: &LiveDecisions,
    arguments: Vec<Value>,
) -> Result<Option<Value>> {
    let args: DecisionArgs = argument(REVERT, SHAPE, arguments)?;
    let reapply = args.reapply.unwrap_or(false);
    let action = if reapply { "reapply" } else { "revert" };
    let root = session
        .root()
        .ok_or_else(|| failed(format!("{REVERT} needs a workspace folder")))?;
    let root = root.canonicalize().unwrap_or(root);
    let (journal, planned) = live
        .with(session, |index| -> Result<_> {
            let mut targets = targets(index, REVERT, &args)?;
            // A whole run: the decisions not yet in the wanted state.
            if args.hunk.is_none() {
                targets.retain(|d| d.reverted == reapply);
            }
            let journal = index
                .run(&args.run_id)
                .map(|r| r.journal.clone())
                .ok_or_else(|| bad("the run's journal is gone"))?;
            let planned: Vec<(Decision, std::result::Result<Restore, String>)> = targets
                .into_iter()
                .map(|d| {
                    let restore = if d.reverted != reapply {
                        Err(format!(
                            "decision {} is already {}",
                            d.hunk,
                            if reapply { "applied" } else { "reverted" }
                        ))
                    } else {
                        restore(session, &root, &d, reapply)
                    };
                    (d, restore)
                })
                .collect();
            Ok((journal, planned))
        })
        .ok_or_else(|| failed(format!("{REVERT} needs a workspace folder")))??;
    if planned.is_empty() {
        return Err(bad(format!(
            "{REVERT}: nothing to {action} in run `{}`",
            args.run_id
        )));
    }
    let hunks: Vec<usize> = planned.iter().map(|(d, _)| d.hunk).collect();
    let record = |result: &str| -> std::io::Result<()> {
        let j = Journal::append_to(&journal)?;
        j.record(Event::Reverted {
            hunks: hunks.clone(),
            action: action.into(),
            result: result.into(),
        });
        Ok(())
    };
    // All or nothing: half of a run's change undone can leave code that does not build.
    let refusals: Vec<&String> = planned
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    if !refusals.is_empty() {
        let why = refusals
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let _ = record(&format!("refused: {why}"));
        let message = format!(
            "Conductor run {}: nothing was {}: {why}",
            args.run_id,
            if reapply { "re-applied" } else { "reverted" }
        );
        client
            .show_message(MessageType::WARNING, message.clone())
            .await;
        return Ok(Some(
            json!({"runId": args.run_id, "hunks": hunks, "action": action, "result": "refused", "message": message}),
        ));
    }
    let mut files: BTreeMap<PathBuf, FileChange> = BTreeMap::new();
    let mut keys: Vec<(PathBuf, u64)> = Vec::new();
    for (d, restore) in planned {
        let Ok(r) = restore else { continue };
        keys.push((r.path.clone(), d.key));
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
    let change = ChangeSet {
        label: format!(
            "Conductor: {} run {}",
            if reapply { "re-apply" } else { "revert" },
            args.run_id
        ),
        description: String::new(),
        // Previewed like a run's change when runs are (`run.confirm`).
        needs_confirmation: session.config().run.confirm,
        notes: Vec::new(),
        files: files.into_values().collect(),
    };
    let editor = LspEditor::new(client.clone(), session.clone());
    let result = match editor.apply(&change, &CancellationToken::new()).await {
        Applied::Applied => "applied".to_string(),
        Applied::Refused(why) => why,
        Applied::Cancelled => "cancelled".to_string(),
    };
    if let Err(err) = record(&result) {
        tracing::warn!(run = %args.run_id, "cannot journal the {action}: {err}");
    }
    if result == "applied" {
        // The restored text is found again by its own hash, where the edit put it.
        for (path, key) in &keys {
            if let Some(uri) = convert::path_to_uri(path) {
                session.with_documents(|docs| docs.forget_marks(uri.as_str(), &[*key]));
            }
        }
    } else {
        client
            .show_message(
                MessageType::WARNING,
                format!(
                    "Conductor run {}: the {action} was not applied: {result}",
                    args.run_id
                ),
            )
            .await;
    }
    live.run_changed(client, session, &args.run_id).await;
    Ok(Some(
        json!({"runId": args.run_id, "hunks": hunks, "action": action, "result": result}),
    ))
}

/// `conductor.showRun`.
pub async fn show_run(
    client: &Client,
    session: &Arc<Session>,
    live: &LiveDecisions,
    arguments: Vec<Value>,
) -> Result<Option<Value>> {
    let args: DecisionArgs = argument(SHOW_RUN, "{runId, show?}", arguments)?;
    let show = args.show.clone().unwrap_or_else(|| "story".into());
    let path = live
        .with(session, |index| -> Result<PathBuf> {
            let run = index.run(&args.run_id).ok_or_else(|| {
                bad(format!(
                    "{SHOW_RUN}: no run `{}` in this workspace's journals",
                    args.run_id
                ))
            })?;
            match show.as_str() {
                "journal" => Ok(run.journal.clone()),
                "plan" => run.plan_file.clone().ok_or_else(|| {
                    bad(format!("{SHOW_RUN}: run `{}` has no plan document", run.id))
                }),
                "explanation" => run
                    .explanation
                    .as_ref()
                    .map(|(_, doc)| index.root().join(doc))
                    .ok_or_else(|| bad(format!("{SHOW_RUN}: run `{}` is not an explanation", run.id))),
                "story" => story_document(index, &run.journal),
                other => Err(bad(format!(
                    "{SHOW_RUN}: unknown `show` value `{other}`: use story, plan, journal or explanation"
                ))),
            }
        })
        .ok_or_else(|| failed(format!("{SHOW_RUN} needs a workspace folder")))??;
    let editor = LspEditor::new(client.clone(), session.clone());
    let shown = editor.show(&path).await;
    if !shown {
        client
            .show_message(
                MessageType::INFO,
                format!("Conductor run {}: {}", args.run_id, path.display()),
            )
            .await;
    }
    Ok(Some(
        json!({"runId": args.run_id, "path": path.display().to_string(), "shown": shown}),
    ))
}

/// Writes the run's story (`.conductor/runs/<id>/story.md`) from its journal and returns it.
fn story_document(index: &Index, journal: &std::path::Path) -> Result<PathBuf> {
    let read = crate::journal::read(journal)
        .map_err(|e| failed(format!("cannot read {}: {e}", journal.display())))?;
    let story = crate::journal::story::build(journal, &read);
    let _ = index;
    crate::journal::story::write_markdown(&story)
        .map_err(|e| failed(format!("cannot write the run's story: {e}")))
}
