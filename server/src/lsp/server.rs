//! The `LanguageServer` implementation: thin handlers that convert from the protocol, call a
//! feature on a snapshot, and convert back.
//!
//! Text synchronisation is applied by `lsp::sync` before these handlers run; the handlers for
//! `didOpen`/`didChange`/`didClose` only schedule background work.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use super::context;
use super::convert;
use super::security::{LiveSecurity, SCAN_WORKSPACE_COMMAND};
use super::session::{ClientFacts, Session};
use crate::config::ConfigProblem;

/// The configuration section Conductor reads from `workspace/configuration`.
pub const CONFIG_SECTION: &str = "conductor";

/// How long the server waits for the client to answer one of its requests.
pub const CLIENT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The language server.
#[derive(Debug)]
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
            client,
            session,
            security: Arc::default(),
        }
    }

    /// `conductor/debugDocument`: the server's view of a document (version, text, syntax tree
    /// dump, encoding), for tests and for users who suspect the server and editor disagree.
    pub async fn debug_document(&self, params: DebugDocumentParams) -> Result<Value> {
        let uri = params.text_document.uri;
        let snapshot = self
            .session
            .snapshot(uri.as_str())
            .ok_or_else(|| Error::invalid_params(format!("{} is not open", uri.as_str())))?;
        Ok(json!({
            "version": snapshot.version,
            "text": snapshot.to_text(),
            "tree": snapshot.tree.as_ref().map(crate::syntax::dump_tree),
            "language": snapshot.language.map(|l| l.name),
            "encoding": self.session.encoding().as_str(),
        }))
    }

    /// `window/workDoneProgress/cancel` (not part of tower-lsp-server's `LanguageServer` trait,
    /// so registered as a custom notification in `lsp::serve`): stops the workspace scan that
    /// reports under the token. Other tokens (indexing) are not cancellable and are ignored.
    pub async fn work_done_progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        if !self.security.cancel_progress(&params.token) {
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
        context::settings_changed(&self.client, &self.session);
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
        let answer = tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, self.client.configuration(items));
        match answer
            .await
            .unwrap_or_else(|_| Err(tower_lsp_server::jsonrpc::Error::invalid_request()))
        {
            Ok(values) => {
                let value = values.into_iter().next().unwrap_or(Value::Null);
                Some(
                    self.session
                        .update_config(|s| s.push("workspace/configuration", value)),
                )
            }
            Err(err) => {
                tracing::warn!("workspace/configuration failed: {err}");
                None
            }
        }
    }
}

fn client_facts(caps: &ClientCapabilities) -> ClientFacts {
    let workspace = caps.workspace.as_ref();
    let window = caps.window.as_ref();
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
        change_annotations: workspace
            .and_then(|w| w.workspace_edit.as_ref())
            .and_then(|e| e.change_annotation_support.as_ref())
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
        self.session.set_root(root.clone());
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
                        ]),
                        ..CodeActionOptions::default()
                    },
                )),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![
                        SCAN_WORKSPACE_COMMAND.to_string(),
                        context::SHOW_CONTEXT.into(),
                    ],
                    ..ExecuteCommandOptions::default()
                }),
                ..ServerCapabilities::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let facts = self.session.client();
        if facts.dynamic_configuration {
            let registration = Registration {
                id: "conductor-configuration".into(),
                method: "workspace/didChangeConfiguration".into(),
                register_options: None,
            };
            if let Err(err) = self.client.register_capability(vec![registration]).await {
                tracing::warn!("registering didChangeConfiguration failed: {err}");
            }
        }
        if let Some(problems) = self.pull_configuration().await {
            self.config_changed(problems).await;
        }
        tokio::spawn(context::start_indexing(
            self.client.clone(),
            self.session.clone(),
        ));
        tracing::info!("ready");
    }

    async fn shutdown(&self) -> Result<()> {
        tracing::info!("shutdown requested");
        Ok(())
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        // Clients that answer `workspace/configuration` are asked again (the notification's
        // payload is often empty or partial); others push the settings in the notification.
        let problems = match self.pull_configuration().await {
            Some(problems) => problems,
            None => {
                let settings = match params.settings {
                    Value::Object(mut map) if map.contains_key(CONFIG_SECTION) => {
                        map.remove(CONFIG_SECTION).unwrap_or(Value::Null)
                    }
                    other => other,
                };
                self.session
                    .update_config(|s| s.push("workspace/didChangeConfiguration", settings))
            }
        };
        self.config_changed(problems).await;
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
        context::watched_files_changed(&self.session, params);
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri.as_str();
        tracing::debug!("closed {uri}");
        context::document_closed(&self.session, &params.text_document.uri);
        self.security
            .closed(&self.client, &self.session, &params.text_document.uri)
            .await;
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let at = params.text_document_position_params;
        Ok(self
            .security
            .hover(&self.session, at.text_document.uri.as_str(), at.position))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let mut actions =
            self.security
                .code_actions(&self.session, &params.text_document.uri, params.range);
        actions.extend(context::code_actions(&self.session, &params));
        Ok((!actions.is_empty()).then_some(actions))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        match params.command.as_str() {
            SCAN_WORKSPACE_COMMAND => {
                // The scan runs in the background; the command answers at once. A scan still
                // running is cancelled and replaced by this one.
                let Some(started) = self.security.scan_workspace(&self.client, &self.session)
                else {
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
            context::SHOW_CONTEXT => {
                context::show_context(&self.client, self.session.clone(), params.arguments)
                    .await
                    .map(Some)
                    .map_err(Error::invalid_params)
            }
            other => Err(Error::invalid_params(format!("unknown command `{other}`"))),
        }
    }
}
