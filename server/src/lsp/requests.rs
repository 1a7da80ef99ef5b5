//! Requests the server sends to the client, each with a policy chosen for its method: a time
//! limit, a cancellation, or both. No handler and no start-up step waits on a client answer
//! without one, so a client that never answers can slow a feature down but never stop another.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc;
use tower_lsp_server::ls_types::request::Request;

/// The time limit of requests whose answer the server needs promptly (configuration,
/// registrations, progress tokens, showing a document).
pub const PROMPT: Duration = Duration::from_secs(10);

/// How long the server waits for one request.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Give up after this long.
    pub timeout: Option<Duration>,
    /// Give up when this is cancelled.
    pub cancel: Option<CancellationToken>,
}

impl Policy {
    /// Wait at most `timeout`.
    pub fn within(timeout: Duration) -> Policy {
        Policy {
            timeout: Some(timeout),
            cancel: None,
        }
    }

    /// Wait until answered or `cancel` fires, however long: for `workspace/applyEdit` with a
    /// preview, where the user may take minutes to decide.
    pub fn until_cancelled(cancel: CancellationToken) -> Policy {
        Policy {
            timeout: None,
            cancel: Some(cancel),
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer<T> {
    /// The client answered.
    Answered(T),
    /// The client answered with an error.
    Refused(jsonrpc::Error),
    /// No answer within the time limit.
    TimedOut,
    /// The policy's cancellation fired first.
    Cancelled,
}

impl<T> Answer<T> {
    /// The answer, if there was one.
    pub fn ok(self) -> Option<T> {
        match self {
            Answer::Answered(value) => Some(value),
            _ => None,
        }
    }

    /// Words for the log: what happened to request `method`.
    pub fn describe(&self, method: &str) -> String {
        match self {
            Answer::Answered(_) => format!("{method} answered"),
            Answer::Refused(err) => format!("{method} refused by the client: {err}"),
            Answer::TimedOut => format!("{method} not answered in time"),
            Answer::Cancelled => format!("{method} cancelled"),
        }
    }
}

/// Sends request `R` and waits for its answer as `policy` allows.
pub async fn send<R: Request>(
    client: &Client,
    params: R::Params,
    policy: Policy,
) -> Answer<R::Result> {
    let request = client.send_request::<R>(params);
    let limited = async {
        match policy.timeout {
            Some(limit) => tokio::time::timeout(limit, request).await.ok(),
            None => Some(request.await),
        }
    };
    let outcome = match &policy.cancel {
        Some(cancel) => tokio::select! {
            outcome = limited => outcome,
            () = cancel.cancelled() => return Answer::Cancelled,
        },
        None => limited.await,
    };
    let answer = match outcome {
        Some(Ok(result)) => Answer::Answered(result),
        Some(Err(err)) => Answer::Refused(err),
        None => Answer::TimedOut,
    };
    if !matches!(answer, Answer::Answered(_)) {
        tracing::warn!("{}", answer.describe(R::METHOD));
    }
    answer
}

/// Registers one capability dynamically (`client/registerCapability`), within the prompt limit.
/// Returns whether the client accepted it.
pub async fn register(
    client: &Client,
    registration: tower_lsp_server::ls_types::Registration,
) -> bool {
    use tower_lsp_server::ls_types::{RegistrationParams, request::RegisterCapability};
    matches!(
        send::<RegisterCapability>(
            client,
            RegistrationParams {
                registrations: vec![registration],
            },
            Policy::within(PROMPT),
        )
        .await,
        Answer::Answered(())
    )
}
