//! Decisions in the editor: hovers on code a run wrote, code lenses over the regions runs
//! changed, and the commands behind the lenses — `conductor.markReviewed`, `conductor.revert`
//! (and re-apply) and `conductor.showRun`.
//!
//! Conversion only: the index and where each decision is in an open document are
//! `decisions::live`'s (held by the `App`), what the commands do is `decisions::actions`'s.
//! This file parses the arguments, converts positions and lenses, sends a revert through the
//! editor port and says what happened.

use std::sync::Arc;

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
use crate::decisions::live::{Marks, Refused, journal_of, shown_path, targets};
use crate::decisions::{actions, render};
use crate::editor::{Applied, Editor};

/// `conductor.markReviewed` `{runId, hunk?, reviewed?}`: marks one decision (or all of a
/// run's) reviewed, or takes the mark back with `reviewed: false`.
pub const MARK_REVIEWED: &str = "conductor.markReviewed";
/// `conductor.revert` `{runId, hunk?, reapply?}`: restores the text a decision (or a whole
/// run) replaced, only where its text is unchanged since; `reapply: true` undoes a revert.
pub const REVERT: &str = "conductor.revert";
/// `conductor.showRun` `{runId, show?, hunk?}`: opens a run's story, plan, journal or
/// explanation.
pub const SHOW_RUN: &str = "conductor.showRun";

/// A refusal of `decisions::live`/`actions` as the client's error: invalid params, or a
/// request that failed.
fn refused(why: Refused) -> tower_lsp_server::jsonrpc::Error {
    match why {
        Refused::Invalid(why) => bad(why),
        Refused::Failed(why) => failed(why),
    }
}

/// The hover of the decisions under `position` of the open document `uri`, if any.
pub fn hover(session: &Session, uri: &str, position: Position) -> Option<String> {
    let snapshot = session.snapshot(uri)?;
    let offset = snapshot.offset(convert::from_position(position), session.encoding());
    let line = snapshot
        .text
        .byte_to_line(offset.min(snapshot.text.len_bytes()));
    session.app.decisions.hover(&session.app, &snapshot, line)
}

/// The code lenses of the open document `uri`.
pub fn code_lenses(session: &Session, uri: &Uri) -> Vec<CodeLens> {
    let Some(snapshot) = session.snapshot(uri.as_str()) else {
        return Vec::new();
    };
    session
        .app
        .decisions
        .lenses(&session.app, &snapshot)
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
}

/// A run ended (or its journal changed here): read its journal and refresh the lenses.
pub async fn run_changed(client: &Client, session: &Session, run: &str) {
    session.app.decisions.reload_run(&session.app, run);
    refresh_lenses(client, session).await;
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
    arguments: Vec<Value>,
) -> Result<Option<Value>> {
    let live = &session.app.decisions;
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
        let marks = live.touched_by(&session.app, &snapshot, first, last);
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
            .with(
                &session.app,
                |index| -> std::result::Result<Marks, Refused> {
                    let chosen = targets(index, MARK_REVIEWED, &args.run_id, args.hunk)?;
                    let journal = journal_of(index, &args.run_id)?;
                    let hunks = chosen.iter().map(|d| d.hunk).collect::<Vec<_>>();
                    Ok(Marks::from([(args.run_id.clone(), (journal, hunks))]))
                },
            )
            .ok_or_else(|| failed(format!("{MARK_REVIEWED} needs a workspace folder")))?
            .map_err(refused)?;
        (args.reviewed.unwrap_or(true), marks)
    };
    let mut done = Vec::new();
    for (run, (journal, hunks)) in &marks {
        actions::record_reviewed(journal, hunks, reviewed).map_err(failed)?;
        run_changed(client, session, run).await;
        let state = live
            .with(&session.app, |index| render::run_review_state(index, run))
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

/// `conductor.revert`.
pub async fn revert(
    client: &Client,
    session: &Arc<Session>,
    arguments: Vec<Value>,
) -> Result<Option<Value>> {
    let args: DecisionArgs = argument(REVERT, SHAPE, arguments)?;
    let reapply = args.reapply.unwrap_or(false);
    let plan = actions::plan_revert(
        &session.app,
        &session.app.decisions,
        REVERT,
        &args.run_id,
        args.hunk,
        reapply,
    )
    .map_err(refused)?;
    let (hunks, action) = (plan.hunks.clone(), plan.action);
    let change = match &plan.change {
        Ok(change) => change,
        Err(why) => {
            let _ = plan.record(&format!("refused: {why}"));
            let message = plan.refusal(why);
            client
                .show_message(MessageType::WARNING, message.clone())
                .await;
            return Ok(Some(
                json!({"runId": args.run_id, "hunks": hunks, "action": action, "result": "refused", "message": message}),
            ));
        }
    };
    let editor = LspEditor::new(client.clone(), session.clone());
    let result = match editor.apply(change, &CancellationToken::new()).await {
        Applied::Applied => "applied".to_string(),
        Applied::Refused(why) => why,
        Applied::Cancelled => "cancelled".to_string(),
    };
    if let Err(err) = plan.record(&result) {
        tracing::warn!(run = %args.run_id, "cannot journal the {action}: {err}");
    }
    if result == "applied" {
        plan.applied(&session.app);
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
    run_changed(client, session, &args.run_id).await;
    Ok(Some(
        json!({"runId": args.run_id, "hunks": hunks, "action": action, "result": result}),
    ))
}

/// `conductor.showRun`.
pub async fn show_run(
    client: &Client,
    session: &Arc<Session>,
    arguments: Vec<Value>,
) -> Result<Option<Value>> {
    let args: DecisionArgs = argument(SHOW_RUN, "{runId, show?}", arguments)?;
    let show = args.show.clone().unwrap_or_else(|| "story".into());
    let path = session
        .app
        .decisions
        .with(&session.app, |index| {
            shown_path(index, SHOW_RUN, &args.run_id, &show)
        })
        .ok_or_else(|| failed(format!("{SHOW_RUN} needs a workspace folder")))?
        .map_err(refused)?;
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
