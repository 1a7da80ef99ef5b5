//! The editor port over LSP: a [`ChangeSet`] becomes one `workspace/applyEdit` — versioned
//! `TextDocumentEdit`s and change annotations when the client takes them, plain `changes`
//! otherwise — sent from the caller's task with no time limit (the user may be looking at a
//! preview) but cancellable by the run.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::*;

use super::convert;
use super::requests::{self, Answer, Policy};
use super::security::LiveSecurity;
use super::session::Session;
use crate::document::position::position_of;
use crate::editor::{
    Applied, Base, ChangeSet, Current, Editor, EditorFuture, FileChange, text_hash,
};
use crate::orchestrator::existing::LeftBehind;

/// A file's protocol edits: its URI, the version they are for, the edits.
type FileEdits = (Uri, Option<i32>, Vec<OneOf<TextEdit, AnnotatedTextEdit>>);

/// The annotation id of a change set's hunks that have no note of their own (and of the files
/// it creates); a hunk with note `n` carries `conductor/n`.
const ANNOTATION: &str = "conductor";

fn annotation_id(note: Option<usize>) -> String {
    match note {
        Some(n) => format!("{ANNOTATION}/{n}"),
        None => ANNOTATION.into(),
    }
}

/// The editor port of a language-server session.
#[derive(Debug, Clone)]
pub struct LspEditor {
    client: Client,
    session: Arc<Session>,
    /// Where a run's progress lines go (its work-done progress); `None`: the log.
    progress: Option<mpsc::UnboundedSender<String>>,
    /// Where a run's remaining findings are pinned (the live scan's diagnostics); `None`: a
    /// port that publishes none (a revert, a document to show).
    security: Option<Arc<LiveSecurity>>,
}

impl LspEditor {
    /// The port over `client`; progress goes to the client's log.
    pub fn new(client: Client, session: Arc<Session>) -> Self {
        Self {
            client,
            session,
            progress: None,
            security: None,
        }
    }

    /// The port of one run, whose progress lines go to `progress` (in order; the receiver
    /// shows them as the run's work-done progress) and whose remaining findings, if it has
    /// any to publish, are pinned beside `security`'s diagnostics.
    pub fn for_run(
        client: Client,
        session: Arc<Session>,
        security: Option<Arc<LiveSecurity>>,
        progress: mpsc::UnboundedSender<String>,
    ) -> Self {
        Self {
            client,
            session,
            progress: Some(progress),
            security,
        }
    }

    /// The protocol edits of one file, each range converted against the exact text the change
    /// was computed on; `Err` says why the file cannot be edited.
    fn text_edits(&self, file: &FileChange, annotated: bool) -> Result<FileEdits, String> {
        let encoding = self.session.encoding();
        let shown = file.path.display();
        let (uri, version, rope) = match &file.base {
            Base::Open {
                uri,
                version,
                revision,
            } => {
                let snapshot = self
                    .session
                    .snapshot(uri)
                    .ok_or_else(|| format!("{shown} was closed since the change was computed"))?;
                if snapshot.revision != *revision {
                    return Err(format!(
                        "{shown} was edited since the change was computed; it was not applied over your typing"
                    ));
                }
                let uri: Uri = uri
                    .parse()
                    .map_err(|_| format!("{uri} is not a valid URI"))?;
                (uri, Some(*version), snapshot.text)
            }
            Base::Disk { hash } => {
                let bytes = crate::util::read_regular_file(&file.path, crate::util::MAX_READ_BYTES)
                    .map_err(|e| format!("reading {shown}: {e}"))?;
                if text_hash(&bytes) != *hash {
                    return Err(format!(
                        "{shown} changed on disk since the change was computed"
                    ));
                }
                let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8"))?;
                let uri = convert::path_to_uri(&file.path)
                    .ok_or_else(|| format!("{shown} has no file URI"))?;
                (uri, None, ropey::Rope::from_str(&text))
            }
            Base::Missing => {
                let uri = convert::path_to_uri(&file.path)
                    .ok_or_else(|| format!("{shown} has no file URI"))?;
                (uri, None, ropey::Rope::new())
            }
        };
        let edits = file
            .edits
            .iter()
            .map(|edit| {
                let range = Range::new(
                    convert::to_position(position_of(&rope, edit.range.start, encoding)),
                    convert::to_position(position_of(&rope, edit.range.end, encoding)),
                );
                let text_edit = TextEdit::new(range, edit.new_text.clone());
                if annotated {
                    OneOf::Right(AnnotatedTextEdit {
                        text_edit,
                        annotation_id: annotation_id(edit.note),
                    })
                } else {
                    OneOf::Left(text_edit)
                }
            })
            .collect();
        Ok((uri, version, edits))
    }

    /// The `WorkspaceEdit` for `change`, shaped by what the client supports.
    fn workspace_edit(&self, change: &ChangeSet) -> Result<WorkspaceEdit, String> {
        let facts = self.session.client();
        if !facts.apply_edit {
            return Err("the editor does not accept workspace edits (workspace/applyEdit)".into());
        }
        let creates = change.files.iter().any(|f| f.base == Base::Missing);
        if creates && !facts.can_create_files() {
            return Err(
                "the change creates a file, and the editor cannot create files in a workspace edit"
                    .into(),
            );
        }
        let annotated = facts.document_changes && facts.change_annotations;
        if !facts.document_changes {
            // Without versions the editor cannot reject a stale edit itself; the revision and
            // hash checks above are then the only guard, and they ran just now.
            let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
            for file in &change.files {
                let (uri, _, edits) = self.text_edits(file, false)?;
                changes
                    .entry(uri)
                    .or_default()
                    .extend(edits.into_iter().map(|e| match e {
                        OneOf::Left(edit) => edit,
                        OneOf::Right(annotated) => annotated.text_edit,
                    }));
            }
            return Ok(WorkspaceEdit {
                changes: Some(changes),
                ..WorkspaceEdit::default()
            });
        }
        let mut operations = Vec::new();
        for file in &change.files {
            let (uri, version, edits) = self.text_edits(file, annotated)?;
            if file.base == Base::Missing {
                operations.push(DocumentChangeOperation::Op(ResourceOp::Create(
                    CreateFile {
                        uri: uri.clone(),
                        options: Some(CreateFileOptions {
                            overwrite: Some(false),
                            ignore_if_exists: Some(false),
                        }),
                        annotation_id: annotated.then(|| ANNOTATION.into()),
                    },
                )));
            }
            operations.push(DocumentChangeOperation::Edit(TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier { uri, version },
                edits,
            }));
        }
        // One annotation per note, so a preview shows each hunk with its own reason and the
        // user accepts or rejects it alone; the change set's own for the rest.
        let change_annotations = annotated.then(|| {
            let mut annotations = HashMap::from([(
                ANNOTATION.to_string(),
                ChangeAnnotation {
                    label: change.label.clone(),
                    needs_confirmation: Some(change.needs_confirmation),
                    description: (!change.description.is_empty())
                        .then(|| change.description.clone()),
                },
            )]);
            for (n, note) in change.notes.iter().enumerate() {
                annotations.insert(
                    annotation_id(Some(n)),
                    ChangeAnnotation {
                        label: note.label.clone(),
                        needs_confirmation: Some(change.needs_confirmation),
                        description: (!note.description.is_empty())
                            .then(|| note.description.clone()),
                    },
                );
            }
            annotations
        });
        Ok(WorkspaceEdit {
            document_changes: Some(DocumentChanges::Operations(operations)),
            change_annotations,
            ..WorkspaceEdit::default()
        })
    }
}

impl Editor for LspEditor {
    fn apply<'a>(
        &'a self,
        change: &'a ChangeSet,
        cancel: &'a CancellationToken,
    ) -> EditorFuture<'a, Applied> {
        Box::pin(async move {
            let edit = match self.workspace_edit(change) {
                Ok(edit) => edit,
                Err(why) => return Applied::Refused(why),
            };
            let answer = requests::send::<request::ApplyWorkspaceEdit>(
                &self.client,
                ApplyWorkspaceEditParams {
                    label: Some(change.label.clone()),
                    edit,
                },
                Policy::until_cancelled(cancel.clone()),
            )
            .await;
            match answer {
                Answer::Answered(result) if result.applied => Applied::Applied,
                Answer::Answered(result) => Applied::Refused(
                    result
                        .failure_reason
                        .unwrap_or_else(|| "the editor did not apply the change".into()),
                ),
                Answer::Refused(err) => {
                    Applied::Refused(format!("the editor refused the change: {}", err.message))
                }
                Answer::TimedOut => Applied::Refused("the editor did not answer".into()),
                Answer::Cancelled => Applied::Cancelled,
            }
        })
    }

    fn progress(&self, stage: &str, message: &str, percentage: Option<u32>) {
        if let Some(progress) = &self.progress {
            // The receiver may be gone (the run's progress ended): the line is then not needed.
            let _ = progress.send(message.to_string());
            return;
        }
        let client = self.client.clone();
        let line = match percentage {
            Some(p) => format!("Conductor: {stage}: {message} ({p}%)"),
            None => format!("Conductor: {stage}: {message}"),
        };
        tokio::spawn(async move { client.log_message(MessageType::INFO, line).await });
    }

    fn current(&self, path: &Path) -> Option<Current> {
        // The run's paths are canonical; a document's is as its URI names it.
        let snapshot = self.session.app.snapshot_of_path(path)?;
        Some(Current {
            text: snapshot.text.to_string(),
            base: Base::Open {
                uri: snapshot.uri.clone(),
                version: snapshot.version,
                revision: snapshot.revision,
            },
        })
    }

    fn publish_findings(&self, run: &str, left: &[LeftBehind<'_>]) {
        if let Some(security) = &self.security {
            super::review::publish_left_behind(&self.session, security, run, left);
        }
    }

    fn decisions_changed<'a>(&'a self, run: &'a str) -> EditorFuture<'a, ()> {
        Box::pin(super::decisions::run_changed(
            &self.client,
            &self.session,
            run,
        ))
    }

    fn show<'a>(&'a self, path: &'a Path) -> EditorFuture<'a, bool> {
        Box::pin(async move {
            let Some(uri) = convert::path_to_uri(path) else {
                return false;
            };
            if !self.session.client().show_document {
                return false;
            }
            requests::send::<request::ShowDocument>(
                &self.client,
                ShowDocumentParams {
                    uri,
                    external: None,
                    take_focus: Some(true),
                    selection: None,
                },
                Policy::within(requests::PROMPT),
            )
            .await
            .ok()
            .is_some_and(|r| r.success)
        })
    }
}
