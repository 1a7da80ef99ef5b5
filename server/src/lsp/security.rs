//! Security findings in the editor: debounced live diagnostics computed on a snapshot, hover
//! on a finding, quick fixes, and the `conductor.scanWorkspace` command with progress.
//!
//! Only the latest version of a document is ever published: every change bumps the document's
//! generation, a scan that finds its generation outdated (after the debounce, or after it
//! finished) throws its result away, and a result is published only if the document is still at
//! the version that was scanned. No lock is held across an `.await`.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::*;

use super::convert;
use super::session::Session;
use crate::document::Snapshot;
use crate::document::position::position_of;
use crate::security::{self, Finding, ScanCache, SecuritySettings, Severity, report};

/// The command that scans every Rust file of the workspace.
pub const SCAN_WORKSPACE_COMMAND: &str = "conductor.scanWorkspace";

/// The findings published for an open document, with the snapshot they were computed on, so
/// that hovers and quick fixes convert offsets against the same text.
struct Published {
    snapshot: Snapshot,
    findings: Vec<Finding>,
}

#[derive(Default)]
struct State {
    generation: HashMap<String, u64>,
    /// Per open document, the findings of its items, so a keystroke re-scans one item.
    caches: HashMap<String, Arc<Mutex<ScanCache>>>,
    published: HashMap<String, Published>,
    workspace_scans: u64,
}

/// Live security state of one session.
#[derive(Default)]
pub struct LiveSecurity {
    state: Mutex<State>,
}

impl std::fmt::Debug for LiveSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSecurity").finish_non_exhaustive()
    }
}

fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn severity(s: Severity) -> DiagnosticSeverity {
    match s {
        Severity::Critical | Severity::High => DiagnosticSeverity::ERROR,
        Severity::Medium => DiagnosticSeverity::WARNING,
        Severity::Low => DiagnosticSeverity::INFORMATION,
        Severity::Info => DiagnosticSeverity::HINT,
    }
}

fn to_diagnostic(
    uri: &Uri,
    finding: &Finding,
    range_of: &dyn Fn(std::ops::Range<usize>) -> Range,
) -> Diagnostic {
    let related: Vec<DiagnosticRelatedInformation> = finding
        .related
        .iter()
        .map(|r| DiagnosticRelatedInformation {
            location: Location::new(uri.clone(), range_of(r.range.clone())),
            message: r.message.clone(),
        })
        .collect();
    Diagnostic {
        range: range_of(finding.range.clone()),
        severity: Some(severity(finding.severity)),
        code: Some(NumberOrString::String(finding.rule_id.to_string())),
        code_description: finding
            .cwe
            .first()
            .and_then(|c| security::cwe_url(c))
            .and_then(|url| Uri::from_str(&url).ok())
            .map(|href| CodeDescription { href }),
        source: Some("conductor".into()),
        message: format!("{} [{}]", finding.message, finding.cwe.join(", ")),
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: None,
    }
}

fn settings(session: &Session) -> SecuritySettings {
    session.config().security
}

impl LiveSecurity {
    /// Schedules a debounced scan of `uri` after a change (or on open).
    pub fn schedule(self: &Arc<Self>, client: &Client, session: &Arc<Session>, uri: &str) {
        let generation = {
            let mut state = lock(&self.state);
            let g = state.generation.entry(uri.to_string()).or_insert(0);
            *g += 1;
            *g
        };
        let this = self.clone();
        let client = client.clone();
        let session = session.clone();
        let uri = uri.to_string();
        tokio::spawn(async move {
            let settings = settings(&session);
            tokio::time::sleep(Duration::from_millis(settings.debounce_ms)).await;
            if !this.is_current(&uri, generation) {
                return;
            }
            let Some(snapshot) = session.snapshot(&uri) else {
                return;
            };
            let (Some(language), Some(tree)) = (snapshot.language, snapshot.tree.clone()) else {
                return;
            };
            let scanned = snapshot.clone();
            let cache = lock(&this.state)
                .caches
                .entry(uri.clone())
                .or_default()
                .clone();
            let findings = tokio::task::spawn_blocking(move || {
                let text = scanned.text.to_string();
                cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .scan(language, &text, &tree, &settings)
            })
            .await;
            let Ok(findings) = findings else {
                tracing::error!("security scan of {uri} panicked");
                return;
            };
            this.publish(&client, &session, &uri, generation, snapshot, findings)
                .await;
        });
    }

    /// Schedules a re-scan of every open document that has findings state (after a
    /// configuration change).
    pub fn rescan_open(self: &Arc<Self>, client: &Client, session: &Arc<Session>) {
        let uris: Vec<String> = lock(&self.state).caches.keys().cloned().collect();
        for uri in uris {
            if session.snapshot(&uri).is_some() {
                self.schedule(client, session, &uri);
            }
        }
    }

    fn is_current(&self, uri: &str, generation: u64) -> bool {
        lock(&self.state).generation.get(uri) == Some(&generation)
    }

    async fn publish(
        &self,
        client: &Client,
        session: &Session,
        uri: &str,
        generation: u64,
        snapshot: Snapshot,
        findings: Vec<Finding>,
    ) {
        // The document may have changed (or closed) while the scan ran: then a newer scan is
        // scheduled, and this result describes text the editor no longer shows.
        let current_version = session.snapshot(uri).map(|s| s.version);
        if current_version != Some(snapshot.version) || !self.is_current(uri, generation) {
            return;
        }
        let Ok(lsp_uri) = Uri::from_str(uri) else {
            return;
        };
        let encoding = session.encoding();
        let diagnostics: Vec<Diagnostic> = findings
            .iter()
            .map(|f| to_diagnostic(&lsp_uri, f, &|r| convert::to_range(&snapshot, r, encoding)))
            .collect();
        let version = snapshot.version;
        lock(&self.state)
            .published
            .insert(uri.to_string(), Published { snapshot, findings });
        client
            .publish_diagnostics(lsp_uri, diagnostics, Some(version))
            .await;
    }

    /// Forgets a closed document and clears its diagnostics.
    pub async fn closed(&self, client: &Client, uri: &str) {
        {
            let mut state = lock(&self.state);
            *state.generation.entry(uri.to_string()).or_insert(0) += 1;
            state.published.remove(uri);
            state.caches.remove(uri);
        }
        if let Ok(lsp_uri) = Uri::from_str(uri) {
            client.publish_diagnostics(lsp_uri, Vec::new(), None).await;
        }
    }

    /// The hover for a finding under `position`, if any.
    pub fn hover(&self, session: &Session, uri: &str, position: Position) -> Option<Hover> {
        let state = lock(&self.state);
        let published = state.published.get(uri)?;
        // Findings of an older version would be matched against moved text.
        if session.snapshot(uri).map(|s| s.version) != Some(published.snapshot.version) {
            return None;
        }
        let encoding = session.encoding();
        let offset = published
            .snapshot
            .offset(convert::from_position(position), encoding);
        let text = published.snapshot.text.to_string();
        let hits: Vec<String> = published
            .findings
            .iter()
            .filter(|f| f.range.start <= offset && offset <= f.range.end)
            .map(|f| report::hover_markdown(f, &text))
            .collect();
        if hits.is_empty() {
            return None;
        }
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: hits.join("\n\n---\n\n"),
            }),
            range: None,
        })
    }

    /// Quick fixes for the findings that touch `range`.
    pub fn code_actions(
        &self,
        session: &Session,
        uri: &Uri,
        range: Range,
    ) -> Vec<CodeActionOrCommand> {
        let state = lock(&self.state);
        let Some(published) = state.published.get(uri.as_str()) else {
            return Vec::new();
        };
        // Fixes are byte edits against the scanned text; offering them for another version
        // would edit the wrong place.
        if session.snapshot(uri.as_str()).map(|s| s.version) != Some(published.snapshot.version) {
            return Vec::new();
        }
        let encoding = session.encoding();
        let snapshot = &published.snapshot;
        let wanted = convert::byte_range(snapshot, range, encoding);
        let mut actions = Vec::new();
        for finding in &published.findings {
            if finding.range.end < wanted.start || finding.range.start > wanted.end {
                continue;
            }
            let diagnostic =
                to_diagnostic(uri, finding, &|r| convert::to_range(snapshot, r, encoding));
            for (i, fix) in finding.fixes.iter().enumerate() {
                let edits: Vec<OneOf<TextEdit, AnnotatedTextEdit>> = fix
                    .edits
                    .iter()
                    .map(|(r, text)| {
                        OneOf::Left(TextEdit::new(
                            convert::to_range(snapshot, r.clone(), encoding),
                            text.clone(),
                        ))
                    })
                    .collect();
                let edit = WorkspaceEdit {
                    document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                        text_document: OptionalVersionedTextDocumentIdentifier {
                            uri: uri.clone(),
                            version: Some(snapshot.version),
                        },
                        edits,
                    }])),
                    ..WorkspaceEdit::default()
                };
                actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                    title: fix.title.clone(),
                    kind: Some(CodeActionKind::QUICKFIX),
                    diagnostics: Some(vec![diagnostic.clone()]),
                    edit: Some(edit),
                    command: None,
                    is_preferred: Some(i == 0 && finding.fixes.len() > 1),
                    disabled: None,
                    data: None,
                }));
            }
        }
        actions
    }

    /// Scans every source file of the workspace in the background, publishing diagnostics per
    /// file (open documents keep their live diagnostics) with `$/progress` reports.
    pub fn scan_workspace(self: &Arc<Self>, client: &Client, session: &Arc<Session>) -> bool {
        let Some(root) = session.root() else {
            return false;
        };
        let scan_id = {
            let mut state = lock(&self.state);
            state.workspace_scans += 1;
            state.workspace_scans
        };
        let client = client.clone();
        let session = session.clone();
        tokio::spawn(async move {
            let settings = settings(&session);
            let token = NumberOrString::String(format!("conductor/scanWorkspace/{scan_id}"));
            let progress = session.client().work_done_progress
                && client
                    .send_request::<request::WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                        token: token.clone(),
                    })
                    .await
                    .is_ok();
            let send = |value: WorkDoneProgress| {
                let client = client.clone();
                let token = token.clone();
                async move {
                    if progress {
                        client
                            .send_notification::<notification::Progress>(ProgressParams {
                                token,
                                value: ProgressParamsValue::WorkDone(value),
                            })
                            .await;
                    }
                }
            };
            send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: "Conductor: security scan".into(),
                cancellable: Some(false),
                message: Some("finding files".into()),
                percentage: Some(0),
            }))
            .await;
            let listing = {
                let root = root.clone();
                let settings = settings.clone();
                tokio::task::spawn_blocking(move || {
                    security::walk::source_files(&[root], &settings)
                })
                .await
            };
            let files = match listing {
                Ok(Ok((files, _notes))) => files,
                Ok(Err(err)) => {
                    tracing::warn!("workspace scan: {err:#}");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            };
            let total = files.len().max(1);
            let mut findings_total = 0usize;
            let mut done = 0usize;
            // Chunks keep progress moving and let diagnostics appear as files are scanned.
            for chunk in files.chunks(64) {
                let chunk = chunk.to_vec();
                let settings = settings.clone();
                let reports = tokio::task::spawn_blocking(move || {
                    security::walk::scan_files(&chunk, &settings)
                        .into_iter()
                        .filter_map(Result::ok)
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_default();
                done += 64;
                for file in reports {
                    let Some(uri) = convert::path_to_uri(&file.path) else {
                        continue;
                    };
                    if session.snapshot(uri.as_str()).is_some() {
                        continue;
                    }
                    findings_total += file.findings.len();
                    let rope = ropey::Rope::from_str(&file.text);
                    let encoding = session.encoding();
                    let range_of = |r: std::ops::Range<usize>| {
                        Range::new(
                            convert::to_position(position_of(&rope, r.start, encoding)),
                            convert::to_position(position_of(&rope, r.end, encoding)),
                        )
                    };
                    let diagnostics: Vec<Diagnostic> = file
                        .findings
                        .iter()
                        .map(|f| to_diagnostic(&uri, f, &range_of))
                        .collect();
                    client.publish_diagnostics(uri, diagnostics, None).await;
                }
                send(WorkDoneProgress::Report(WorkDoneProgressReport {
                    cancellable: Some(false),
                    message: Some(format!(
                        "{} of {} files",
                        done.min(files.len()),
                        files.len()
                    )),
                    percentage: Some((100 * done.min(total) / total) as u32),
                }))
                .await;
            }
            send(WorkDoneProgress::End(WorkDoneProgressEnd {
                message: Some(format!(
                    "{findings_total} findings in {} files",
                    files.len()
                )),
            }))
            .await;
        });
        true
    }
}
