//! Work-done progress: unique tokens, a begin that never waits for ever for the client's
//! `window/workDoneProgress/create`, an end that is sent even when the task reporting it
//! panics (the handle ends it on drop), and `window/workDoneProgress/cancel` routed by token to
//! whoever owns the progress.

use std::collections::HashMap;
use std::sync::Arc;

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::*;

use super::requests::{self, Answer, Policy};
use crate::util::lock;

pub(super) type Canceller = Arc<dyn Fn() + Send + Sync>;

/// The progress in flight, by token.
#[derive(Default)]
pub struct ProgressRegistry {
    /// Per kind of token, how many were handed out.
    next: std::sync::Mutex<HashMap<String, u64>>,
    cancellers: Arc<std::sync::Mutex<HashMap<String, Canceller>>>,
}

impl std::fmt::Debug for ProgressRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressRegistry").finish_non_exhaustive()
    }
}

impl ProgressRegistry {
    /// `window/workDoneProgress/cancel`: runs the canceller registered for `token`. Returns
    /// whether there was one.
    pub fn cancel(&self, token: &NumberOrString) -> bool {
        let NumberOrString::String(token) = token else {
            return false;
        };
        let canceller = lock(&self.cancellers).get(token).cloned();
        match canceller {
            Some(cancel) => {
                cancel();
                true
            }
            None => false,
        }
    }

    /// A token not used before in this session: `conductor/<kind>/<n>`.
    pub fn token(&self, kind: &str) -> String {
        let mut next = lock(&self.next);
        let n = next.entry(kind.to_string()).or_insert(0);
        *n += 1;
        format!("conductor/{kind}/{n}")
    }

    /// Begins a progress under `token` (from [`token`](Self::token)). When the client does not show progress,
    /// or does not answer `window/workDoneProgress/create` within the prompt limit, nothing is
    /// shown but the handle still works (and still routes a cancel). `cancel` makes the progress
    /// cancellable.
    pub async fn begin(
        &self,
        client: &Client,
        shown: bool,
        token: String,
        title: &str,
        message: Option<String>,
        cancel: Option<Canceller>,
    ) -> Progress {
        let wire = NumberOrString::String(token.clone());
        let shown = shown
            && matches!(
                requests::send::<request::WorkDoneProgressCreate>(
                    client,
                    WorkDoneProgressCreateParams {
                        token: wire.clone()
                    },
                    Policy::within(requests::PROMPT),
                )
                .await,
                Answer::Answered(())
            );
        let cancellable = cancel.is_some();
        if let Some(cancel) = cancel {
            lock(&self.cancellers).insert(token.clone(), cancel);
        }
        let progress = Progress {
            client: client.clone(),
            token: wire,
            key: token,
            shown,
            cancellable,
            ended: false,
            cancellers: self.cancellers.clone(),
        };
        progress
            .send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: title.into(),
                cancellable: Some(cancellable),
                message,
                percentage: Some(0),
            }))
            .await;
        progress
    }
}

/// One progress in flight; ended with [`end`](Self::end), or on drop.
pub struct Progress {
    client: Client,
    token: NumberOrString,
    key: String,
    shown: bool,
    cancellable: bool,
    ended: bool,
    cancellers: Arc<std::sync::Mutex<HashMap<String, Canceller>>>,
}

impl Progress {
    /// The token, as `$/progress` and `window/workDoneProgress/cancel` carry it.
    pub fn token(&self) -> &str {
        &self.key
    }

    /// Whether the client is shown this progress.
    pub fn shown(&self) -> bool {
        self.shown
    }

    async fn send(&self, value: WorkDoneProgress) {
        if self.shown {
            self.client
                .send_notification::<notification::Progress>(ProgressParams {
                    token: self.token.clone(),
                    value: ProgressParamsValue::WorkDone(value),
                })
                .await;
        }
    }

    /// Reports how far the work is.
    pub async fn report(&self, message: impl Into<String>, percentage: Option<u32>) {
        self.send(WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: Some(self.cancellable),
            message: Some(message.into()),
            percentage,
        }))
        .await;
    }

    /// Ends the progress with a final message.
    pub async fn end(mut self, message: impl Into<String>) {
        self.ended = true;
        lock(&self.cancellers).remove(&self.key);
        self.send(WorkDoneProgress::End(WorkDoneProgressEnd {
            message: Some(message.into()),
        }))
        .await;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        lock(&self.cancellers).remove(&self.key);
        // The task that owned it stopped early (a panic, an early return): end it anyway, so
        // the client does not show a spinner for ever.
        if self.shown
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let client = self.client.clone();
            let token = self.token.clone();
            runtime.spawn(async move {
                client
                    .send_notification::<notification::Progress>(ProgressParams {
                        token,
                        value: ProgressParamsValue::WorkDone(WorkDoneProgress::End(
                            WorkDoneProgressEnd {
                                message: Some("stopped unexpectedly (see the log)".into()),
                            },
                        )),
                    })
                    .await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;
    use tower::{Service as _, ServiceExt as _};

    use tower_lsp_server::jsonrpc::{self, Request};
    use tower_lsp_server::{LanguageServer, LspService};

    use super::*;

    struct Minimal;

    impl LanguageServer for Minimal {
        async fn initialize(&self, _: InitializeParams) -> jsonrpc::Result<InitializeResult> {
            Ok(InitializeResult::default())
        }
        async fn shutdown(&self) -> jsonrpc::Result<()> {
            Ok(())
        }
    }

    /// A client of an initialized service, and the stream of what it sends.
    async fn client() -> (
        Client,
        impl futures::Stream<Item = Request> + Unpin,
        impl futures::Sink<jsonrpc::Response> + Unpin,
    ) {
        let mut captured = None;
        let (mut service, socket) = LspService::new(|client| {
            captured = Some(client);
            Minimal
        });
        let initialize = Request::build("initialize")
            .id(1)
            .params(serde_json::json!({"capabilities": {}}))
            .finish();
        service
            .ready()
            .await
            .expect("ready")
            .call(initialize)
            .await
            .expect("initialized");
        let initialized = Request::build("initialized")
            .params(serde_json::json!({}))
            .finish();
        service
            .ready()
            .await
            .expect("ready")
            .call(initialized)
            .await
            .expect("initialized");
        // The service must outlive the test's messages; leak it for the test's duration.
        std::mem::forget(service);
        let (requests, answers) = tower_lsp_server::Loopback::split(socket);
        (captured.expect("client"), requests, answers)
    }

    fn kind(request: &Request) -> Option<String> {
        request
            .params()
            .and_then(|p| p["value"]["kind"].as_str())
            .map(str::to_string)
    }

    #[tokio::test]
    async fn a_progress_dropped_without_an_end_is_ended_and_unregistered() {
        use futures::SinkExt as _;
        let (client, mut sent, mut answers) = client().await;
        let registry = ProgressRegistry::default();
        let token = registry.token("test");
        let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cancelled.clone();
        let begin = registry.begin(
            &client,
            true,
            token.clone(),
            "Work",
            None,
            Some(Arc::new(move || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst)
            })),
        );
        // The client answers `window/workDoneProgress/create`.
        let (progress, ()) = tokio::join!(begin, async {
            let create = sent.next().await.expect("create");
            assert_eq!(create.method(), "window/workDoneProgress/create");
            let id = create.id().cloned().expect("a request");
            let _ = answers
                .send(jsonrpc::Response::from_ok(id, serde_json::Value::Null))
                .await;
        });
        assert!(progress.shown());
        assert_eq!(
            sent.next().await.as_ref().and_then(kind).as_deref(),
            Some("begin")
        );
        // A cancel is routed by token while the progress lives.
        assert!(registry.cancel(&NumberOrString::String(token.clone())));
        assert!(cancelled.load(std::sync::atomic::Ordering::SeqCst));
        // The task that owned it stops without ending it (as a panic would unwind it).
        let task = tokio::spawn(async move {
            let _owned = progress;
            panic!("the work failed");
        });
        assert!(task.await.is_err());
        let end = tokio::time::timeout(std::time::Duration::from_secs(5), sent.next())
            .await
            .expect("an end within 5 s")
            .expect("a message");
        assert_eq!(kind(&end).as_deref(), Some("end"));
        assert_eq!(
            end.params().map(|p| p["token"].clone()),
            Some(token.clone().into())
        );
        assert!(!registry.cancel(&NumberOrString::String(token)));
    }
}
