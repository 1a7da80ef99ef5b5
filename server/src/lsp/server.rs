//! The `LanguageServer` implementation: thin handlers that convert from the protocol, call a
//! feature on a snapshot, and convert back.
//!
//! Text synchronisation is applied by `lsp::sync` before these handlers run; the handlers for
//! `didOpen`/`didChange`/`didClose` only schedule background work.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use super::context;
use super::convert;
use super::decisions;
use super::explain;
use super::requests::{self, Policy};
use super::review;
use super::runs;
use super::security::{LiveSecurity, SCAN_WORKSPACE_COMMAND};
use super::session::{ClientFacts, Session};
use crate::config::{CONFIG_FILE, ConfigProblem};

/// The configuration section Conductor reads from `workspace/configuration`.
pub const CONFIG_SECTION: &str = "conductor";

/// How long the server waits for the client to answer one of its prompt requests.
pub const CLIENT_REQUEST_TIMEOUT: std::time::Duration = requests::PROMPT;

/// A command's handler: the arguments of `workspace/executeCommand` in, its result out.
type CommandHandler = for<'a> fn(&'a Server, Vec<Value>) -> BoxFuture<'a, Result<Option<Value>>>;

/// Every command the server runs: the one table that both dispatches
/// `workspace/executeCommand` and produces the list announced in `initialize`.
const COMMANDS: &[(&str, CommandHandler)] = &[
    (SCAN_WORKSPACE_COMMAND, |server, _| {
        Box::pin(server.scan_workspace())
    }),
    (context::SHOW_CONTEXT, |server, arguments| {
        Box::pin(server.show_context(arguments))
    }),
    (runs::ORCHESTRATE, |server, arguments| {
        Box::pin(server.run_command(runs::ORCHESTRATE, arguments))
    }),
    (runs::PLAN, |server, arguments| {
        Box::pin(server.run_command(runs::PLAN, arguments))
    }),
    (runs::WRITE_TESTS, |server, arguments| {
        Box::pin(server.run_command(runs::WRITE_TESTS, arguments))
    }),
    (runs::FIX, |server, arguments| {
        Box::pin(server.run_command(runs::FIX, arguments))
    }),
    (runs::RUN_PLAN, |server, arguments| {
        Box::pin(server.run_command(runs::RUN_PLAN, arguments))
    }),
    (runs::CANCEL, |server, arguments| {
        Box::pin(server.run_command(runs::CANCEL, arguments))
    }),
    (runs::RUNS, |server, arguments| {
        Box::pin(server.run_command(runs::RUNS, arguments))
    }),
    (decisions::MARK_REVIEWED, |server, arguments| {
        Box::pin(decisions::mark_reviewed(
            &server.client,
            &server.session,
            arguments,
        ))
    }),
    (decisions::REVERT, |server, arguments| {
        Box::pin(decisions::revert(
            &server.client,
            &server.session,
            arguments,
        ))
    }),
    (decisions::SHOW_RUN, |server, arguments| {
        Box::pin(decisions::show_run(
            &server.client,
            &server.session,
            arguments,
        ))
    }),
    (review::REVIEW, |server, arguments| {
        Box::pin(server.review_command(review::REVIEW, arguments))
    }),
    (review::RUN_TESTS, |server, arguments| {
        Box::pin(server.review_command(review::RUN_TESTS, arguments))
    }),
    (explain::EXPLAIN, |server, arguments| {
        Box::pin(server.explain(arguments))
    }),
];

/// The names of the commands the server announces.
pub fn command_names() -> Vec<String> {
    COMMANDS.iter().map(|(name, _)| name.to_string()).collect()
}

/// Whether an action of `kind` passes the client's `context.only` filter: kinds are
/// hierarchical (`quickfix` admits `quickfix.conductor`).
fn kind_allowed(only: Option<&Vec<CodeActionKind>>, kind: Option<&CodeActionKind>) -> bool {
    let Some(only) = only else {
        return true;
    };
    let kind = kind.map_or("", |k| k.as_str());
    only.iter().any(|wanted| {
        let wanted = wanted.as_str();
        kind == wanted
            || kind
                .strip_prefix(wanted)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// The language server. Clones share everything (handlers hand a clone to background tasks).
#[derive(Debug, Clone)]
pub struct Server {
    client: Client,
    session: Arc<Session>,
    security: Arc<LiveSecurity>,
}

/// Parameters of `conductor/debugDocument`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebugDocumentParams {
    /// The document.
    pub text_document: TextDocumentIdentifier,
}

impl Server {
    /// A server sharing `session` with the transport hook.
    pub fn new(client: Client, session: Arc<Session>) -> Self {
        Self {
            security: Arc::new(LiveSecurity::new(&client)),
            client,
            session,
        }
    }

    async fn scan_workspace(&self) -> Result<Option<Value>> {
        // The scan runs in the background; the command answers at once. A scan still running is
        // cancelled and replaced by this one.
        let Some(started) = self.security.scan_workspace(&self.client, &self.session) else {
            return Err(Error::invalid_params(
                "conductor.scanWorkspace needs a workspace folder",
            ));
        };
        // The token is the one `window/workDoneProgress/cancel` takes; a client without
        // work-done progress gets none (and no way to cancel but running a new scan).
        let token = self
            .session
            .client()
            .work_done_progress
            .then_some(started.token);
        Ok(Some(json!({
            "started": true,
            "token": token,
            "replacedRunningScan": started.replaced,
        })))
    }

    async fn run_command(&self, name: &str, arguments: Vec<Value>) -> Result<Option<Value>> {
        runs::execute(&self.client, &self.session, &self.security, name, arguments)
            .await
            .map(Some)
    }

    async fn review_command(&self, name: &str, arguments: Vec<Value>) -> Result<Option<Value>> {
        review::execute(&self.client, &self.session, &self.security, name, arguments)
            .await
            .map(Some)
    }

    async fn explain(&self, arguments: Vec<Value>) -> Result<Option<Value>> {
        explain::execute(&self.client, &self.session, arguments)
            .await
            .map(Some)
    }

    async fn show_context(&self, arguments: Vec<Value>) -> Result<Option<Value>> {
        context::show_context(&self.client, self.session.clone(), arguments)
            .await
            .map(Some)
            .map_err(|failure| match failure {
                context::Failure::BadArguments(message) => Error::invalid_params(message),
                context::Failure::Failed(message) => Error {
                    code: tower_lsp_server::jsonrpc::ErrorCode::ServerError(-32001),
                    message: message.into(),
                    data: None,
                },
            })
    }

    /// `conductor/debugDocument`: the server's view of a document (version, text, syntax tree
    /// dump, encoding), for tests and for users who suspect the server and editor disagree.
    pub async fn debug_document(&self, params: DebugDocumentParams) -> Result<Value> {
        let uri = params.text_document.uri;
        let snapshot = self
            .session
            .snapshot(uri.as_str())
            .ok_or_else(|| Error::invalid_params(format!("{} is not open", uri.as_str())))?;
        let (parsed, app) = (snapshot.clone(), self.session.app.clone());
        // Parsing and the (bounded) dump run off the session's tasks: on a large document
        // each takes milliseconds. A revision a live scan parsed (or refused) already is not
        // parsed again (`App::parse`).
        let (tree, dump) = crate::util::background(move || match app.parse(&parsed) {
            Ok(tree) => {
                let dump = crate::syntax::dump_tree(&tree);
                (Ok(tree), Some(dump))
            }
            Err(why) => (Err(why), None),
        })
        .await
        .map_err(|e| Error {
            code: tower_lsp_server::jsonrpc::ErrorCode::InternalError,
            message: format!("parsing the document failed: {e}").into(),
            data: None,
        })?;
        Ok(json!({
            "version": snapshot.version,
            "revision": snapshot.revision,
            "text": snapshot.to_text(),
            "tree": dump,
            "noTree": tree.as_ref().err().map(ToString::to_string),
            "language": snapshot.language.map(|l| l.name),
            "encoding": self.session.encoding().as_str(),
        }))
    }

    /// `conductor/status`: what the session holds (open documents, each per-document map of the
    /// live scan), so a user or a test can see that closing documents gives their state back.
    pub async fn status(&self) -> Result<Value> {
        Ok(json!({
            "documents": self.session.app.snapshots().len(),
            "security": self.security.tracked(),
        }))
    }

    /// `window/workDoneProgress/cancel` (not part of tower-lsp-server's `LanguageServer` trait,
    /// so registered as a custom notification in `lsp::serve`): stops the workspace scan that
    /// reports under the token. Other tokens (indexing) are not cancellable and are ignored.
    pub async fn work_done_progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        if !self.session.progress.cancel(&params.token)
            && !self.security.cancel_progress(&params.token)
        {
            tracing::debug!(
                "cancel for a progress that cannot be cancelled: {:?}",
                params.token
            );
        }
    }

    async fn report_config_problems(&self, problems: Vec<ConfigProblem>) {
        if problems.is_empty() {
            return;
        }
        for p in &problems {
            tracing::warn!("configuration: {p}");
        }
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        self.client
            .show_message(
                MessageType::WARNING,
                format!(
                    "Conductor: {} configuration problem{} (defaults used for these keys): {}",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    list.join("; ")
                ),
            )
            .await;
    }

    /// Applies settings that take effect immediately (logging), and reports problems.
    async fn config_changed(&self, problems: Vec<ConfigProblem>) {
        let config = self.session.config();
        if let Some(message) = crate::logging::apply(&config.log) {
            self.client
                .show_message(MessageType::WARNING, &message)
                .await;
        }
        self.report_config_problems(problems).await;
        context::settings_changed(&self.session);
        // Security settings may have changed (disabled rules, severities): re-scan what is open,
        // and the workspace if a workspace scan ran with other settings.
        self.security.rescan_open(&self.client, &self.session);
        self.security
            .rescan_workspace_if_settings_changed(&self.client, &self.session);
    }

    /// Pulls the `conductor` section with `workspace/configuration`, when the client can.
    async fn pull_configuration(&self) -> Option<Vec<ConfigProblem>> {
        if !self.session.client().configuration {
            return None;
        }
        let items = vec![ConfigurationItem {
            scope_uri: None,
            section: Some(CONFIG_SECTION.into()),
        }];
        // A client that never answers must not stall configuration for ever.
        let values = requests::send::<request::WorkspaceConfiguration>(
            &self.client,
            ConfigurationParams { items },
            Policy::within(requests::PROMPT),
        )
        .await
        .ok()?;
        let value = values.into_iter().next().unwrap_or(Value::Null);
        Some(
            self.session
                .update_config(|s| s.push("workspace/configuration", value)),
        )
    }

    /// `conductor.toml` changed on disk: read it again (its precedence does not change).
    async fn config_file_changed(&self) {
        let Some(root) = self.session.root() else {
            return;
        };
        let mut file_problem = None;
        let mut problems = self
            .session
            .update_config(|sources| file_problem = sources.push_file(&root));
        problems.extend(file_problem);
        tracing::info!("{CONFIG_FILE} changed: configuration re-read");
        self.config_changed(problems).await;
    }

    /// The start-up steps that need the client's answers, in the background: `initialized`
    /// returns at once, and a client that never answers delays them by the prompt limit at
    /// most, never stops them.
    async fn start_up(self: Arc<Self>) {
        let facts = self.session.client();
        if facts.dynamic_configuration {
            let client = self.client.clone();
            tokio::spawn(async move {
                let registration = Registration {
                    id: "conductor-configuration".into(),
                    method: "workspace/didChangeConfiguration".into(),
                    register_options: None,
                };
                requests::register(&client, registration).await;
            });
        }
        if let Some(problems) = self.pull_configuration().await {
            self.config_changed(problems).await;
        }
        context::start(self.client.clone(), self.session.clone()).await;
        // The journals are read once here, off the handlers, so the first hover is fast.
        let session = self.session.clone();
        crate::util::background(move || session.app.decisions.warm(&session.app));
        tracing::info!("ready");
    }
}

fn client_facts(caps: &ClientCapabilities) -> ClientFacts {
    let workspace = caps.workspace.as_ref();
    let window = caps.window.as_ref();
    let edit = workspace.and_then(|w| w.workspace_edit.as_ref());
    ClientFacts {
        configuration: workspace.and_then(|w| w.configuration).unwrap_or(false),
        dynamic_configuration: workspace
            .and_then(|w| w.did_change_configuration.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false),
        work_done_progress: window.and_then(|w| w.work_done_progress).unwrap_or(false),
        show_document: window
            .and_then(|w| w.show_document.as_ref())
            .is_some_and(|s| s.support),
        apply_edit: workspace.and_then(|w| w.apply_edit).unwrap_or(false),
        document_changes: edit.and_then(|e| e.document_changes).unwrap_or(false),
        resource_operations: edit
            .and_then(|e| e.resource_operations.as_ref())
            .map(|ops| {
                ops.iter()
                    .filter_map(|op| serde_json::to_value(op).ok())
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        failure_handling: edit
            .and_then(|e| e.failure_handling.as_ref())
            .and_then(|f| serde_json::to_value(f).ok())
            .and_then(|v| v.as_str().map(str::to_string)),
        change_annotations: edit
            .and_then(|e| e.change_annotation_support.as_ref())
            .is_some(),
        annotation_groups_on_label: edit
            .and_then(|e| e.change_annotation_support.as_ref())
            .and_then(|a| a.groups_on_label)
            .unwrap_or(false),
        code_lens: caps
            .text_document
            .as_ref()
            .is_some_and(|t| t.code_lens.is_some()),
        code_lens_refresh: workspace
            .and_then(|w| w.code_lens.as_ref())
            .and_then(|c| c.refresh_support)
            .unwrap_or(false),
        message_action_items: window
            .and_then(|w| w.show_message.as_ref())
            .and_then(|m| m.message_action_item.as_ref())
            .is_some(),
        dynamic_watched_files: workspace
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false),
    }
}

fn workspace_root(params: &InitializeParams) -> Option<std::path::PathBuf> {
    if let Some(folder) = params.workspace_folders.as_ref().and_then(|f| f.first()) {
        return convert::uri_to_path(&folder.uri);
    }
    #[allow(deprecated)]
    params.root_uri.as_ref().and_then(convert::uri_to_path)
}

impl LanguageServer for Server {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        self.session.set_client(client_facts(&params.capabilities));
        let root = workspace_root(&params);
        self.session.app.set_root(root.clone());
        let mut file_problem = None;
        let problems = self.session.update_config(|sources| {
            if let Some(root) = &root {
                file_problem = sources.push_file(root);
            }
            if let Some(options) = params.initialization_options.clone() {
                sources.push("initializationOptions", options);
            }
        });
        let mut problems = problems;
        problems.extend(file_problem);
        self.config_changed(problems).await;

        let encoding = self.session.encoding();
        tracing::info!(
            root = ?root,
            encoding = encoding.as_str(),
            "initialize from {}",
            params.client_info.as_ref().map_or("an unnamed client", |c| c.name.as_str())
        );
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "conductor".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
                position_encoding: Some(PositionEncodingKind::new(encoding.as_str())),
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        will_save: None,
                        will_save_wait_until: None,
                        save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    },
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                code_action_provider: Some(CodeActionProviderCapability::Options(
                    CodeActionOptions {
                        code_action_kinds: Some(vec![
                            CodeActionKind::QUICKFIX,
                            CodeActionKind::new(context::SHOW_CONTEXT_KIND),
                            CodeActionKind::new(runs::RUN_KIND),
                            CodeActionKind::new(review::REVIEW_KIND),
                            CodeActionKind::new(explain::EXPLAIN_KIND),
                        ]),
                        ..CodeActionOptions::default()
                    },
                )),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: command_names(),
                    ..ExecuteCommandOptions::default()
                }),
                ..ServerCapabilities::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        tokio::spawn(Arc::new(self.clone()).start_up());
    }

    async fn shutdown(&self) -> Result<()> {
        tracing::info!("shutdown requested");
        // Runs in flight stop (and apply nothing more); their journals say so.
        for run in self.session.app.runs.active() {
            self.session.app.runs.cancel(&run.id);
        }
        Ok(())
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        // Clients that answer `workspace/configuration` are asked again (the notification's
        // payload is often empty or partial), in the background: notifications are handled in
        // order, and this one must not hold the next behind a client answer.
        let server = self.clone();
        tokio::spawn(async move {
            let problems = match server.pull_configuration().await {
                Some(problems) => problems,
                None => {
                    let settings = match params.settings {
                        Value::Object(mut map) if map.contains_key(CONFIG_SECTION) => {
                            map.remove(CONFIG_SECTION).unwrap_or(Value::Null)
                        }
                        other => other,
                    };
                    server
                        .session
                        .update_config(|s| s.push("workspace/didChangeConfiguration", settings))
                }
            };
            server.config_changed(problems).await;
        });
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let uri = params.text_document.uri.as_str();
        tracing::debug!("opened {uri}");
        context::document_changed(&self.session, uri);
        self.security.schedule(&self.client, &self.session, uri);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri.as_str();
        tracing::trace!("changed {uri} to version {}", params.text_document.version);
        context::document_changed(&self.session, uri);
        self.security.schedule(&self.client, &self.session, uri);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        context::document_changed(&self.session, params.text_document.uri.as_str());
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        self.security
            .files_changed(&self.client, &self.session, &params.changes);
        context::watched_files_changed(&self.session, &params.changes);
        let config_file = self.session.root().map(|root| root.join(CONFIG_FILE));
        let touches_config = params.changes.iter().any(|event| {
            convert::uri_to_path(&event.uri).is_some_and(|p| Some(&p) == config_file.as_ref())
        });
        if touches_config {
            let server = self.clone();
            tokio::spawn(async move { server.config_file_changed().await });
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri.as_str();
        tracing::debug!("closed {uri}");
        context::document_closed(&self.session, &params.text_document.uri);
        self.security
            .closed(&self.client, &self.session, &params.text_document.uri)
            .await;
        // The document, its tree and its scan state are dropped by now; the memory they held
        // goes back to the system, not only to the allocator.
        crate::util::release_freed_memory();
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let at = params.text_document_position_params;
        let uri = at.text_document.uri.as_str();
        // Every provider's answer, in order; one hover shows them all.
        let parts: Vec<String> = [
            self.security.hover(&self.session, uri, at.position),
            review::hover(&self.security, uri, at.position),
            decisions::hover(&self.session, uri, at.position),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok((!parts.is_empty()).then(|| Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: parts.join("\n\n---\n\n"),
            }),
            range: None,
        }))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let providers = [
            self.security
                .code_actions(&self.session, &params.text_document.uri, params.range),
            context::code_actions(&self.session, &params),
            runs::code_actions(&self.session, &params),
            review::code_actions(&self.session, &params),
            review::fix_actions(&self.security, &params),
            explain::code_actions(&self.session, &params),
        ];
        let only = params.context.only.as_ref();
        let actions: Vec<CodeActionOrCommand> = providers
            .into_iter()
            .flatten()
            .filter(|action| match action {
                CodeActionOrCommand::CodeAction(action) => kind_allowed(only, action.kind.as_ref()),
                CodeActionOrCommand::Command(_) => only.is_none(),
            })
            .collect();
        Ok((!actions.is_empty()).then_some(actions))
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        let mut lenses = runs::code_lenses(&self.session, &params.text_document.uri);
        lenses.extend(decisions::code_lenses(
            &self.session,
            &params.text_document.uri,
        ));
        Ok((!lenses.is_empty()).then_some(lenses))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        match COMMANDS.iter().find(|(name, _)| *name == params.command) {
            Some((_, run)) => run(self, params.arguments).await,
            None => Err(Error::invalid_params(format!(
                "unknown command `{}`",
                params.command
            ))),
        }
    }
}
