//! Security findings in the editor: debounced live diagnostics computed on a snapshot, hover
//! on a finding, quick fixes, the `conductor.scanWorkspace` command with cancellable progress,
//! and closed files' diagnostics kept current with the disk after a workspace scan.
//!
//! Only the latest version of a document is ever published: every change bumps the document's
//! generation, a scan that finds its generation outdated (after the debounce, or after it
//! finished) throws its result away, and a result is published only if the document is still at
//! the version that was scanned. Closed files follow the same idea with a clock of disk changes:
//! a result read before a file's latest change is never published. The open buffer wins over
//! the disk. No lock is held across an `.await`.
//!
//! The workspace scan itself and the disk-change clock are plain data in
//! `security::workspace`; this module converts their results to diagnostics, decides and
//! queues each publication under its state's lock, and reports progress.
//!
//! Beside the live scan's diagnostics a URI can carry *pinned* ones: a security review's
//! findings and failing tests (`lsp::review`, and a run's remaining findings). A publication
//! replaces a URI's whole set, so every publication here sends both parts. A pinned diagnostic
//! belongs to the text of its line: when the document's text is published again it follows
//! that line if lines above it were inserted or removed, and goes away once the line is edited
//! or removed; re-reviewing (or re-testing) the file replaces its pins, and closing the
//! document clears them with its live diagnostics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::*;

use super::convert;
use super::session::Session;
use crate::document::position::position_of;
use crate::document::{PositionEncoding, Snapshot};
use crate::security::live::{self, LiveScans, Scanned};
use crate::security::walk::FileReport;
use crate::security::workspace::{
    DiskChange, DiskTracker, ScanEvent, Stop, StopFlag, rescan_from_disk,
};
use crate::security::{self, Category, Finding, SecuritySettings, Severity, report};
use crate::syntax::Language;

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
    /// Generations, scan caches and crate views of the live scan (`security::live`), under
    /// the same lock as what was published, so a result is checked and published in one step.
    scans: LiveScans,
    published: HashMap<String, Published>,
    workspace_scans: u64,
    /// The latest workspace scan.
    scan: Option<WorkspaceScan>,
    /// The settings the latest workspace scan ran with.
    scanned_with: Option<SecuritySettings>,
    disk: DiskTracker,
    /// The live (or disk) scan's part of each URI's diagnostics as last sent, with its version.
    live: HashMap<String, (Vec<Diagnostic>, Option<i32>)>,
    /// The pinned part of each URI's diagnostics.
    pinned: HashMap<String, Vec<Pinned>>,
}

/// Where a pinned diagnostic came from; pinning a URI's diagnostics of one origin replaces
/// that origin's only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A security review (`conductor.review`, or a run's review stage).
    Review,
    /// A test run (`conductor.runTests`).
    Tests,
}

impl Origin {
    /// The `data.origin` of its diagnostics.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Review => "review",
            Origin::Tests => "tests",
        }
    }
}

/// A diagnostic that stays with the text of its line (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Pinned {
    /// Its origin.
    pub origin: Origin,
    /// The line's text (trimmed) when the diagnostic was made.
    pub line_text: String,
    /// The diagnostic; its range starts on that line.
    pub diagnostic: Diagnostic,
    /// Its hover, in Markdown: what the finding or failure is, in full, and what to do.
    pub hover: String,
}

/// The 0-based line `n` of `rope`, trimmed (`None` past the end).
fn trimmed_line(rope: &ropey::Rope, n: usize) -> Option<String> {
    (n < rope.len_lines()).then(|| rope.line(n).to_string().trim().to_string())
}

/// Moves each pin to the line of `rope` that still holds its text, the nearest to where it was
/// (lines inserted or removed above it), and drops the pins whose line text is gone (the line
/// was edited or deleted).
fn relocate(pins: &mut Vec<Pinned>, rope: &ropey::Rope) {
    let lines = rope.len_lines();
    pins.retain_mut(|pin| {
        let at = pin.diagnostic.range.start.line as usize;
        let found = (0..lines.max(at + 1)).find_map(|distance| {
            let below = at + distance;
            let above = at.checked_sub(distance);
            [Some(below), above.filter(|_| distance > 0)]
                .into_iter()
                .flatten()
                .find(|&n| trimmed_line(rope, n).as_deref() == Some(pin.line_text.as_str()))
        });
        let Some(line) = found else {
            return false;
        };
        let delta = line as i64 - at as i64;
        let shift = |p: &mut Position| p.line = (p.line as i64 + delta).max(0) as u32;
        shift(&mut pin.diagnostic.range.start);
        shift(&mut pin.diagnostic.range.end);
        true
    });
}

/// Live security state of one session.
pub struct LiveSecurity {
    state: Mutex<State>,
    /// Diagnostics go out through one queue, in the order they were decided under the state's
    /// lock, so a publication can never overtake the clearing of a closed document.
    publisher: tokio::sync::mpsc::UnboundedSender<Publication>,
}

/// What the publishing queue carries.
enum Publication {
    /// `textDocument/publishDiagnostics`.
    Diagnostics(Uri, Vec<Diagnostic>, Option<i32>),
    /// Answered once everything queued before it has been sent.
    Flushed(tokio::sync::oneshot::Sender<()>),
}

impl std::fmt::Debug for LiveSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSecurity").finish_non_exhaustive()
    }
}

fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn severity(s: Severity) -> DiagnosticSeverity {
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
    let note = finding.rule_id == security::ANALYSIS_INCOMPLETE;
    let message = match &finding.incomplete {
        _ if note => finding.message.clone(),
        Some(why) => format!(
            "{} [{}] (analysis cut short here: {why})",
            finding.message,
            finding.cwe.join(", ")
        ),
        None => format!("{} [{}]", finding.message, finding.cwe.join(", ")),
    };
    Diagnostic {
        range: range_of(finding.range.clone()),
        // The note that an item's analysis was incomplete is information, not a hint a
        // developer might filter out: it says findings there may be missing.
        severity: Some(match finding.category {
            _ if note => DiagnosticSeverity::INFORMATION,
            Category::Lint => DiagnosticSeverity::HINT,
            Category::Security => severity(finding.severity),
        }),
        code: Some(NumberOrString::String(finding.rule_id.to_string())),
        code_description: finding
            .cwe
            .first()
            .and_then(|c| security::cwe_url(c))
            .and_then(|url| Uri::from_str(&url).ok())
            .map(|href| CodeDescription { href }),
        source: Some("conductor".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: None,
    }
}

/// The code of the diagnostic that says a document was not scanned, and why.
pub const NOT_SCANNED_CODE: &str = "conductor/not-scanned";

fn not_scanned(message: String) -> Diagnostic {
    Diagnostic {
        range: Range::default(),
        severity: Some(DiagnosticSeverity::INFORMATION),
        code: Some(NumberOrString::String(NOT_SCANNED_CODE.into())),
        source: Some("conductor".into()),
        message,
        ..Diagnostic::default()
    }
}

/// The scan settings of live diagnostics: the configured ones, with lints always on (they are
/// shown as hints, where a missing `// SAFETY:` comment belongs; only batch reports leave them
/// out by default).
fn settings(session: &Session) -> SecuritySettings {
    let mut settings = session.config().security.clone();
    settings.lints = true;
    settings
}

impl LiveSecurity {
    /// The live security state of a session whose diagnostics go to `client`.
    pub fn new(client: &Client) -> LiveSecurity {
        let (publisher, mut queue) = tokio::sync::mpsc::unbounded_channel::<Publication>();
        let client = client.clone();
        tokio::spawn(async move {
            while let Some(publication) = queue.recv().await {
                match publication {
                    Publication::Diagnostics(uri, diagnostics, version) => {
                        client.publish_diagnostics(uri, diagnostics, version).await;
                    }
                    Publication::Flushed(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        LiveSecurity {
            state: Mutex::default(),
            publisher,
        }
    }

    fn send(&self, uri: Uri, diagnostics: Vec<Diagnostic>, version: Option<i32>) {
        let _ = self
            .publisher
            .send(Publication::Diagnostics(uri, diagnostics, version));
    }

    /// Sends the scan's `live` part of `uri`'s diagnostics with its pinned part, after moving
    /// the pins to `text` (the text `live` was computed on) when it is known. Called under the
    /// state's lock, like every publication.
    fn send_merged(
        &self,
        state: &mut State,
        uri: Uri,
        live: Vec<Diagnostic>,
        version: Option<i32>,
        text: Option<&ropey::Rope>,
    ) {
        let key = uri.as_str().to_string();
        let mut all = live.clone();
        if let Some(pins) = state.pinned.get_mut(&key) {
            if let Some(rope) = text {
                relocate(pins, rope);
            }
            all.extend(pins.iter().map(|p| p.diagnostic.clone()));
            if pins.is_empty() {
                state.pinned.remove(&key);
            }
        }
        state.live.insert(key, (live, version));
        self.send(uri, all, version);
    }

    /// Adds `pins` to `uri`'s pinned diagnostics, in place of those of `origin` that
    /// `replaced` selects, and publishes them with the scan's diagnostics last sent for it.
    /// With `text` (the document's current text, when it is not the text the pins were made
    /// on), the pins are first moved to it.
    pub fn pin(
        &self,
        uri: &Uri,
        origin: Origin,
        pins: Vec<Pinned>,
        replaced: &dyn Fn(&Pinned) -> bool,
        text: Option<&ropey::Rope>,
    ) {
        let mut state = lock(&self.state);
        let key = uri.as_str().to_string();
        let entry = state.pinned.entry(key.clone()).or_default();
        entry.retain(|p| p.origin != origin || !replaced(p));
        entry.extend(pins);
        let (live, version) = state.live.get(&key).cloned().unwrap_or_default();
        self.send_merged(&mut state, uri.clone(), live, version, text);
    }

    /// Drops every pinned diagnostic of `origin` on every URI but those in `keep`, and
    /// republishes the URIs that had some (a new test run replaces the last one's failures).
    pub fn unpin_all(&self, origin: Origin, keep: &[Uri]) {
        let mut state = lock(&self.state);
        let touched: Vec<String> = state
            .pinned
            .iter()
            .filter(|(uri, pins)| {
                !keep.iter().any(|k| k.as_str() == uri.as_str())
                    && pins.iter().any(|p| p.origin == origin)
            })
            .map(|(uri, _)| uri.clone())
            .collect();
        for key in touched {
            if let Some(pins) = state.pinned.get_mut(&key) {
                pins.retain(|p| p.origin != origin);
            }
            let Ok(uri) = Uri::from_str(&key) else {
                continue;
            };
            let (live, version) = state.live.get(&key).cloned().unwrap_or_default();
            self.send_merged(&mut state, uri, live, version, None);
        }
    }

    /// The pinned diagnostics of `uri` (for tests and for the code actions of a finding).
    pub fn pinned(&self, uri: &Uri) -> Vec<Pinned> {
        lock(&self.state)
            .pinned
            .get(uri.as_str())
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until every diagnostic queued so far has gone out (so a progress end that says
    /// "N findings published" is not overtaken by them).
    async fn flushed(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.publisher.send(Publication::Flushed(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Schedules a debounced scan of `uri` after a change (or on open).
    pub fn schedule(self: &Arc<Self>, _client: &Client, session: &Arc<Session>, uri: &str) {
        self.schedule_dependent(session, uri);
    }

    /// [`schedule`](Self::schedule), for a scan the server starts itself (a document whose
    /// crate's summaries changed).
    fn schedule_dependent(self: &Arc<Self>, session: &Arc<Session>, uri: &str) {
        let generation = lock(&self.state).scans.next(uri);
        let this = self.clone();
        let session = session.clone();
        let uri = uri.to_string();
        tokio::spawn(async move {
            let debounce = settings(&session).debounce_ms;
            tokio::time::sleep(Duration::from_millis(debounce)).await;
            if !this.is_current(&uri, generation) {
                return;
            }
            // Read after the debounce: a configuration change that arrives meanwhile finds no
            // scan to redo yet (`rescan_open`), so this scan must already use it.
            let settings = settings(&session);
            let Some(snapshot) = session.snapshot(&uri) else {
                return;
            };
            if snapshot.language.is_none() {
                return;
            }
            let path = Uri::from_str(&uri)
                .ok()
                .and_then(|u| convert::uri_to_path(&u));
            let (cache, view) = {
                let mut state = lock(&this.state);
                let view = path.and_then(|p| state.scans.view(&p));
                (state.scans.cache(&uri), view)
            };
            let app = session.app.clone();
            let scanned = snapshot.clone();
            let old_view = view.clone();
            let result = crate::util::background(move || {
                live::scan_snapshot(&app, &scanned, &settings, &cache, view.as_ref())
            })
            .await;
            let (findings, note) = match result {
                Ok(Some(Scanned::Findings(findings, refreshed))) => {
                    if let (Some(old), Some(new)) = (old_view, refreshed) {
                        this.crate_changed(&session, &uri, &old, &new);
                    }
                    (findings, None)
                }
                Ok(Some(Scanned::NotScanned(note))) => (Vec::new(), Some(note)),
                Ok(None) => return,
                Err(err) => {
                    tracing::error!("security scan of {uri} failed: {}", join_error(err));
                    return;
                }
            };
            this.publish(&session, &uri, generation, snapshot, findings, note)
                .await;
        });
    }

    /// An open document's part of its crate's summaries changed (`old` was its view, `new` is
    /// its view with its part recomputed): every file of that crate now sees `new`, and the
    /// crate's other open documents are scanned again (their dependents; a document whose own
    /// part does not change in turn schedules nothing more, so this ends).
    fn crate_changed(
        self: &Arc<Self>,
        session: &Arc<Session>,
        uri: &str,
        old: &security::CrateView,
        new: &security::CrateView,
    ) {
        let (members, open) = {
            let mut state = lock(&self.state);
            (state.scans.follow(old, new), state.scans.scanned())
        };
        if members.is_empty() {
            return;
        }
        for other in open {
            if other == uri || session.snapshot(&other).is_none() {
                continue;
            }
            let path = Uri::from_str(&other)
                .ok()
                .and_then(|u| convert::uri_to_path(&u));
            if path.is_some_and(|p| members.contains(&p)) {
                self.schedule_dependent(session, &other);
            }
        }
    }

    /// Schedules a re-scan of every open document that has findings state (after a
    /// configuration change).
    pub fn rescan_open(self: &Arc<Self>, client: &Client, session: &Arc<Session>) {
        let uris: Vec<String> = lock(&self.state).scans.scanned();
        for uri in uris {
            if session.snapshot(&uri).is_some() {
                self.schedule(client, session, &uri);
            }
        }
    }

    fn is_current(&self, uri: &str, generation: u64) -> bool {
        lock(&self.state).scans.is_current(uri, generation)
    }

    /// Publishes a scan's findings, and `note` (why the document was not scanned) as an
    /// information diagnostic on its first line.
    async fn publish(
        &self,
        session: &Session,
        uri: &str,
        generation: u64,
        snapshot: Snapshot,
        findings: Vec<Finding>,
        note: Option<String>,
    ) {
        let Ok(lsp_uri) = Uri::from_str(uri) else {
            return;
        };
        let encoding = session.encoding();
        let mut diagnostics: Vec<Diagnostic> = findings
            .iter()
            .map(|f| to_diagnostic(&lsp_uri, f, &|r| convert::to_range(&snapshot, r, encoding)))
            .collect();
        diagnostics.extend(note.map(not_scanned));
        let version = snapshot.version;
        // Checked and recorded under one lock, and queued under it too: a close that comes
        // after this either sees the published entry (and clears it) or makes this one stale.
        let mut state = lock(&self.state);
        // The document may have changed (or closed) while the scan ran: then a newer scan is
        // scheduled, and this result describes text the editor no longer shows.
        let current = session.snapshot(uri).map(|s| s.revision);
        if current != Some(snapshot.revision) || !state.scans.is_current(uri, generation) {
            return;
        }
        let rope = snapshot.text.clone();
        state
            .published
            .insert(uri.to_string(), Published { snapshot, findings });
        self.send_merged(&mut state, lsp_uri, diagnostics, Some(version), Some(&rope));
    }

    /// Forgets a closed document and clears its live diagnostics. After a workspace scan, the
    /// file's disk text is the truth again, so its diagnostics are then recomputed from disk.
    pub async fn closed(self: &Arc<Self>, client: &Client, session: &Arc<Session>, uri: &Uri) {
        {
            let mut state = lock(&self.state);
            state.scans.forget(uri.as_str());
            state.published.remove(uri.as_str());
            state.live.remove(uri.as_str());
            state.pinned.remove(uri.as_str());
            self.send(uri.clone(), Vec::new(), None);
        }
        if let Some(path) = convert::uri_to_path(uri)
            && Language::for_path(&path).is_some()
        {
            self.queue_disk(client, session, vec![(path, DiskChange::Written)]);
        }
    }

    /// How many URIs each per-document map holds, for `conductor/status`: after every document
    /// closed (and no workspace scan published from disk), each is zero.
    pub fn tracked(&self) -> serde_json::Value {
        let state = lock(&self.state);
        let (generations, caches) = state.scans.tracked();
        serde_json::json!({
            "generations": generations,
            "caches": caches,
            "published": state.published.len(),
            "live": state.live.len(),
            "pinned": state.pinned.len(),
        })
    }

    /// The hover markdown of the findings under `position`, if any.
    pub fn hover(&self, session: &Session, uri: &str, position: Position) -> Option<String> {
        let state = lock(&self.state);
        let published = state.published.get(uri)?;
        // Findings of an older revision would be matched against moved text.
        if session.snapshot(uri).map(|s| s.revision) != Some(published.snapshot.revision) {
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
        (!hits.is_empty()).then(|| hits.join("\n\n---\n\n"))
    }

    /// The goal of "Fix with agents" on `diagnostic`: the finding, its explanation and its
    /// data-flow path when the finding is still published for the document as it is, else what
    /// the diagnostic itself says.
    pub fn fix_goal(&self, session: &Session, uri: &Uri, diagnostic: &Diagnostic) -> String {
        let code = match &diagnostic.code {
            Some(NumberOrString::String(code)) => code.clone(),
            Some(NumberOrString::Number(n)) => n.to_string(),
            None => String::new(),
        };
        let line = diagnostic.range.start.line + 1;
        let explained = {
            let state = lock(&self.state);
            state.published.get(uri.as_str()).and_then(|published| {
                let snapshot = &published.snapshot;
                if session.snapshot(uri.as_str()).map(|s| s.revision) != Some(snapshot.revision) {
                    return None;
                }
                let encoding = session.encoding();
                let wanted = convert::byte_range(snapshot, diagnostic.range, encoding);
                let text = snapshot.text.to_string();
                published
                    .findings
                    .iter()
                    .find(|f| *f.rule_id == *code && f.range == wanted)
                    .map(|f| report::hover_markdown(f, &text))
            })
        };
        let explanation = explained.unwrap_or_else(|| {
            let mut out = diagnostic.message.clone();
            for related in diagnostic.related_information.iter().flatten() {
                out.push_str(&format!(
                    "\n- line {}: {}",
                    related.location.range.start.line + 1,
                    related.message
                ));
            }
            out
        });
        crate::orchestrator::existing::fix_goal(
            crate::orchestrator::existing::FixOf::Scanned(&code),
            line,
            &explanation,
        )
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
        if session.snapshot(uri.as_str()).map(|s| s.revision) != Some(published.snapshot.revision) {
            return Vec::new();
        }
        // Versioned edits only for a client that takes them; others get plain `changes`,
        // which is safe here because the fix is offered only for the revision it was computed on.
        let versioned = session.client().document_changes;
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
            if finding.category == Category::Security
                && finding.rule_id != security::ANALYSIS_INCOMPLETE
            {
                actions.push(super::runs::fix_action(uri, &diagnostic));
            }
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
                let edit = if versioned {
                    WorkspaceEdit {
                        document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                            text_document: OptionalVersionedTextDocumentIdentifier {
                                uri: uri.clone(),
                                version: Some(snapshot.version),
                            },
                            edits,
                        }])),
                        ..WorkspaceEdit::default()
                    }
                } else {
                    let plain = edits
                        .into_iter()
                        .map(|e| match e {
                            OneOf::Left(edit) => edit,
                            OneOf::Right(annotated) => annotated.text_edit,
                        })
                        .collect();
                    WorkspaceEdit {
                        changes: Some(HashMap::from([(uri.clone(), plain)])),
                        ..WorkspaceEdit::default()
                    }
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

    /// Starts a scan of every source file of the workspace in the background, publishing
    /// diagnostics per closed file as it goes (open documents keep their live diagnostics), with
    /// cancellable `$/progress`. A scan still running is cancelled and replaced: the new one
    /// starts once the old one has stopped, so the old one's diagnostics never land after the
    /// new one's. `None` when there is no workspace folder.
    pub fn scan_workspace(
        self: &Arc<Self>,
        client: &Client,
        session: &Arc<Session>,
    ) -> Option<ScanStarted> {
        let root = session.root()?;
        let mut state = lock(&self.state);
        state.workspace_scans += 1;
        let token = session.progress.token("scanWorkspace");
        // From now on the client wants diagnostics for closed files, so disk changes refresh them.
        state.disk.activate();
        let previous = state.scan.take().map(|scan| {
            scan.stop.stop(Stop::Superseded);
            scan.task
        });
        let replaced = previous.as_ref().is_some_and(|task| !task.is_finished());
        let settings = settings(session);
        state.scanned_with = Some(settings.clone());
        let run = ScanRun {
            token: token.clone(),
            settings,
            stop: Arc::new(StopFlag::default()),
            // Results of files that change on disk after this point are superseded by the
            // refresh those changes trigger.
            clock: state.disk.clock(),
        };
        let stop = run.stop.clone();
        // Spawning does not run the task, so the lock is not held by it; the handle is stored
        // under the same lock so that the next scan always finds it.
        let task = tokio::spawn(self.clone().run_workspace_scan(
            client.clone(),
            session.clone(),
            root,
            run,
            previous,
        ));
        state.scan = Some(WorkspaceScan {
            token: token.clone(),
            stop,
            task,
        });
        Some(ScanStarted { token, replaced })
    }

    /// After a configuration change: when the `[security]` settings differ from those the last
    /// workspace scan ran with, closed files show stale findings (a rule disabled, an exclude
    /// added), so the workspace is scanned again. Returns whether a scan started.
    pub fn rescan_workspace_if_settings_changed(
        self: &Arc<Self>,
        client: &Client,
        session: &Arc<Session>,
    ) -> bool {
        let stale = lock(&self.state)
            .scanned_with
            .as_ref()
            .is_some_and(|scanned| *scanned != settings(session));
        stale && self.scan_workspace(client, session).is_some()
    }

    /// `window/workDoneProgress/cancel`: stops the workspace scan that reports under `token`.
    /// Returns whether the token was the current scan's.
    pub fn cancel_progress(&self, token: &NumberOrString) -> bool {
        let state = lock(&self.state);
        match (&state.scan, token) {
            (Some(scan), NumberOrString::String(t)) if *t == scan.token => {
                scan.stop.stop(Stop::Cancelled);
                true
            }
            _ => false,
        }
    }

    async fn run_workspace_scan(
        self: Arc<Self>,
        client: Client,
        session: Arc<Session>,
        root: PathBuf,
        run: ScanRun,
        previous: Option<tokio::task::JoinHandle<()>>,
    ) {
        if let Some(previous) = previous {
            // It stops before its next file; a panic in it is not this scan's business.
            let _ = previous.await;
        }
        let settings = run.settings.clone();
        // A client that never answers `create` gets a scan without progress rather than no
        // scan; the handle ends the progress even if this task panics.
        let stop = run.stop.clone();
        let progress = session
            .begin_progress(
                &client,
                run.token.clone(),
                "Conductor: security scan",
                Some("finding files".into()),
                Some(Arc::new(move || stop.stop(Stop::Cancelled))),
            )
            .await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let worker = {
            let stop = run.stop.clone();
            let settings = settings.clone();
            let this = self.clone();
            crate::util::background(move || {
                security::workspace::scan_workspace(
                    &root,
                    &settings,
                    &stop,
                    &|views| lock(&this.state).scans.set_views(views),
                    &|event| {
                        let _ = tx.send(event);
                    },
                );
            })
        };
        let (mut total, mut skipped, mut done) = (0usize, 0usize, 0usize);
        let mut findings_total = 0usize;
        let mut reported = 0u32;
        // Results arrive file by file, so diagnostics appear as the scan goes.
        while let Some(event) = rx.recv().await {
            let (path, result) = match event {
                ScanEvent::Listed {
                    total: listed,
                    skipped: left_out,
                } => {
                    (total, skipped) = (listed, left_out);
                    continue;
                }
                ScanEvent::Unlisted(err) => {
                    tracing::warn!("workspace scan: {err}");
                    client
                        .show_message(
                            MessageType::WARNING,
                            format!("Conductor: the workspace scan cannot list files: {err}"),
                        )
                        .await;
                    continue;
                }
                ScanEvent::File(path, result) => (path, result),
            };
            done += 1;
            match result {
                Ok(report) => {
                    if self
                        .publish_disk(&client, &session, &path, run.clock, Some(&report))
                        .await
                    {
                        findings_total += report.findings.len();
                    }
                }
                Err(note) => {
                    skipped += 1;
                    tracing::debug!("workspace scan: {}: {note}", path.display())
                }
            }
            let percentage = (100 * done / total.max(1)) as u32;
            if percentage > reported || done == total {
                reported = percentage;
                progress
                    .report(format!("{done} of {total} files"), Some(percentage))
                    .await;
            }
        }
        if let Err(err) = worker.await {
            tracing::error!(
                "workspace scan: the scanning task failed: {}",
                join_error(err)
            );
        }
        let message = security::workspace::scan_summary(
            findings_total,
            total,
            done,
            skipped,
            run.stop.stopped(),
        );
        tracing::info!("workspace scan {}: {message}", run.token);
        self.flushed().await;
        progress.end(message).await;
    }

    /// Files changed on disk (`workspace/didChangeWatchedFiles`): once a workspace scan has
    /// published diagnostics for closed files, those of the changed files are recomputed in the
    /// background (or cleared for deleted and newly excluded files). Open documents are left
    /// alone: their live diagnostics describe the buffer, which wins over the disk.
    pub fn files_changed(
        self: &Arc<Self>,
        client: &Client,
        session: &Arc<Session>,
        changes: &[FileEvent],
    ) {
        let changes: Vec<(PathBuf, DiskChange)> = changes
            .iter()
            .filter(|event| session.snapshot(event.uri.as_str()).is_none())
            .filter_map(|event| {
                let path = convert::uri_to_path(&event.uri)?;
                Language::for_path(&path)?;
                let change = if event.typ == FileChangeType::DELETED {
                    DiskChange::Deleted
                } else {
                    DiskChange::Written
                };
                Some((path, change))
            })
            .collect();
        self.queue_disk(client, session, changes);
    }

    fn queue_disk(
        self: &Arc<Self>,
        client: &Client,
        session: &Arc<Session>,
        changes: Vec<(PathBuf, DiskChange)>,
    ) {
        let start = lock(&self.state).disk.queue(changes);
        if start {
            tokio::spawn(
                self.clone()
                    .refresh_closed_files(client.clone(), session.clone()),
            );
        }
    }

    /// Processes queued disk changes, one batch at a time and in the order they arrived, until
    /// none is left. One task at a time runs this (`DiskTracker::queue` says when to start it),
    /// so results for the same file are published in order.
    async fn refresh_closed_files(self: Arc<Self>, client: Client, session: Arc<Session>) {
        // Should this task die (a panic), the next change starts a new one instead of waiting
        // for ever.
        let mut guard = Refreshing {
            security: &self,
            finished: false,
        };
        loop {
            let Some(batch) = lock(&self.state).disk.next_batch() else {
                guard.finished = true;
                return;
            };
            let settings = settings(&session);
            let root = session.root();
            let outcomes = crate::util::background(move || {
                rescan_from_disk(root.as_deref(), batch, &settings)
            })
            .await;
            let outcomes = match outcomes {
                Ok(outcomes) => outcomes,
                Err(err) => {
                    tracing::error!(
                        "refreshing the diagnostics of changed files failed: {}",
                        join_error(err)
                    );
                    continue;
                }
            };
            for (path, clock, report) in outcomes {
                self.publish_disk(&client, &session, &path, clock, report.as_ref())
                    .await;
            }
        }
    }

    /// Publishes the diagnostics of a closed file from its disk text (`None`: the file is gone
    /// or not scanned, so diagnostics published earlier are cleared). Nothing is published for
    /// an open document (its live diagnostics win), nor when the file changed on disk after
    /// `clock` (the refresh of that change publishes newer results). Returns whether
    /// diagnostics were published.
    async fn publish_disk(
        &self,
        client: &Client,
        session: &Session,
        path: &Path,
        clock: u64,
        report: Option<&FileReport>,
    ) -> bool {
        let Some(uri) = convert::path_to_uri(path) else {
            return false;
        };
        if session.snapshot(uri.as_str()).is_some() {
            return false;
        }
        let _ = client;
        let mut state = lock(&self.state);
        let disk = &mut state.disk;
        if !disk.may_publish(path, clock) {
            return false;
        }
        let (diagnostics, text) = match report {
            Some(report) => {
                disk.mark_published(path);
                (
                    disk_diagnostics(&uri, report, session.encoding()),
                    Some(ropey::Rope::from_str(&report.text)),
                )
            }
            None if disk.mark_cleared(path) => (Vec::new(), None),
            None => return false,
        };
        self.send_merged(&mut state, uri, diagnostics, None, text.as_ref());
        true
    }
}

/// Tells the disk tracker when the refresh task ends without finishing its queue.
struct Refreshing<'a> {
    security: &'a LiveSecurity,
    finished: bool,
}

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        if !self.finished {
            lock(&self.security.state).disk.refresher_ended();
        }
    }
}

/// The prefix of the `$/progress` tokens of workspace scans (followed by the scan's number).
pub const SCAN_PROGRESS_TOKEN_PREFIX: &str = "conductor/scanWorkspace/";

/// A workspace scan that was started.
#[derive(Debug, Clone)]
pub struct ScanStarted {
    /// Its `$/progress` token (used only if the client supports work-done progress).
    pub token: String,
    /// Whether a scan that was still running was cancelled to start this one.
    pub replaced: bool,
}

/// What one run of the workspace scan needs besides the session.
struct ScanRun {
    token: String,
    settings: SecuritySettings,
    stop: Arc<StopFlag>,
    clock: u64,
}

/// The latest workspace scan (running or finished).
struct WorkspaceScan {
    token: String,
    stop: Arc<StopFlag>,
    task: tokio::task::JoinHandle<()>,
}

/// Why a background task ended without its result: its panic's message when it panicked.
fn join_error(err: tokio::task::JoinError) -> String {
    match err.try_into_panic() {
        Ok(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            format!("it panicked: {message}")
        }
        Err(err) => err.to_string(),
    }
}

/// The diagnostics of a file scanned from disk.
fn disk_diagnostics(uri: &Uri, report: &FileReport, encoding: PositionEncoding) -> Vec<Diagnostic> {
    let rope = ropey::Rope::from_str(&report.text);
    let range_of = |r: std::ops::Range<usize>| {
        Range::new(
            convert::to_position(position_of(&rope, r.start, encoding)),
            convert::to_position(position_of(&rope, r.end, encoding)),
        )
    };
    report
        .findings
        .iter()
        .map(|f| to_diagnostic(uri, f, &range_of))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(line: u32, text: &str) -> Pinned {
        Pinned {
            origin: Origin::Review,
            line_text: text.into(),
            diagnostic: Diagnostic {
                range: Range::new(Position::new(line, 4), Position::new(line, 9)),
                ..Diagnostic::default()
            },
            hover: String::new(),
        }
    }

    #[test]
    fn pins_follow_their_line_and_go_when_it_is_edited() {
        let mut pins = vec![pin(1, "let a = run(x);"), pin(2, "let b = 2;")];
        // Two lines inserted above; the second pinned line edited.
        let rope = ropey::Rope::from_str(
            "fn f() {\n// one\n// two\n    let a = run(x);\n    let b = 3;\n}\n",
        );
        relocate(&mut pins, &rope);
        assert_eq!(pins.len(), 1, "{pins:?}");
        assert_eq!(pins[0].line_text, "let a = run(x);");
        let range = pins[0].diagnostic.range;
        assert_eq!((range.start.line, range.end.line), (3, 3));
        assert_eq!(range.start.character, 4, "the columns stay");
        // A line removed above moves it back up; the nearest copy of the text wins.
        let rope = ropey::Rope::from_str("    let a = run(x);\nfn f() {\n    let a = run(x);\n}\n");
        relocate(&mut pins, &rope);
        assert_eq!(pins[0].diagnostic.range.start.line, 2);
    }
}
