//! A service wrapper that turns a panic in any handler into an `InternalError` response, so one
//! bug never takes the server (and the user's session) down.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::FutureExt as _;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Request, Response};

/// Catches panics of the wrapped service's handlers.
#[derive(Debug)]
pub struct CatchPanic<S>(pub S);

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<Request> for CatchPanic<S>
where
    S: tower::Service<Request, Response = Option<Response>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Option<Response>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Option<Response>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let id = request.id().cloned();
        let method = request.method().to_string();
        let answer = move |payload: Box<dyn std::any::Any + Send>| {
            let message = panic_message(&*payload);
            tracing::error!("handler for {method} panicked: {message}");
            id.map(|id| {
                Response::from_error(
                    id,
                    Error {
                        code: ErrorCode::InternalError,
                        message: format!("internal error while handling {method}: {message}")
                            .into(),
                        data: None,
                    },
                )
            })
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.0.call(request))) {
            Ok(future) => Box::pin(async move {
                match AssertUnwindSafe(future).catch_unwind().await {
                    Ok(result) => result,
                    Err(payload) => Ok(answer(payload)),
                }
            }),
            Err(payload) => {
                let response = answer(payload);
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Service as _, ServiceExt as _};
    use tower_lsp_server::jsonrpc::Id;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_with_an_internal_error() {
        let inner = tower::service_fn(|request: Request| async move {
            if request.method() == "boom" {
                panic!("handler bug");
            }
            Ok::<_, std::convert::Infallible>(
                request
                    .id()
                    .cloned()
                    .map(|id| Response::from_ok(id, serde_json::Value::Bool(true))),
            )
        });
        let mut service = CatchPanic(inner);
        let boom = Request::build("boom").id(7).finish();
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(boom)
            .await
            .expect("no service error")
            .expect("a response");
        let (id, body) = response.into_parts();
        assert_eq!(id, Id::Number(7));
        let error = body.expect_err("an error");
        assert_eq!(error.code, ErrorCode::InternalError);
        assert!(error.message.contains("handler bug"), "{}", error.message);
        // The service still answers afterwards.
        let fine = Request::build("fine").id(8).finish();
        let response = service.ready().await.expect("ready").call(fine).await;
        assert!(
            response
                .expect("ok")
                .expect("response")
                .into_parts()
                .1
                .is_ok()
        );
        // A notification that panics produces no response.
        let note = Request::build("boom").finish();
        assert!(
            service
                .ready()
                .await
                .expect("ready")
                .call(note)
                .await
                .expect("ok")
                .is_none()
        );
    }
}
