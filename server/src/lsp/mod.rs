//! The language server: the only module that knows LSP types.
//!
//! `transport` frames and validates bytes and calls `sync` for every message in arrival order;
//! `server` holds the handlers; `convert` turns protocol types into plain data and back;
//! `session` is the application state plus what only LSP has; `requests` sends the server's
//! own requests, each with a time limit or a cancellation; `progress` is work-done progress
//! (unique tokens, an end even on panic, cancel routed by token); `editor` is the editor port
//! over the client; `panic` keeps a handler's panic from ending the session;
//! `context` keeps the workspace index current and serves "Show context".
//! `security` publishes security findings (diagnostics, hover, quick fixes, workspace scan).
//! `runs` starts, follows, cancels and lists runs (commands, code actions, progress).
//! `review` runs the security review and the selected tests on existing code, and pins their
//! findings and failures (and a run's remaining findings) as diagnostics.
//! `explain` serves "Explain trade-offs" (the explain run, its document and its messages).

pub mod context;
pub mod convert;
pub mod decisions;
pub mod editor;
pub mod explain;
pub mod panic;
pub mod progress;
pub mod requests;
pub mod review;
pub mod runs;
pub mod security;
pub mod server;
pub mod session;
pub mod sync;
pub mod transport;

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::LspService;

pub use transport::SessionEnd;

/// Serves one LSP session over a pair of byte streams until the client exits or the input ends.
/// Used with stdio by `conductor lsp`, and with in-memory pipes by the end-to-end tests.
pub async fn serve<I, O>(input: I, output: O) -> SessionEnd
where
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin + Send + 'static,
{
    let session = match session::Session::new() {
        Ok(session) => Arc::new(session),
        Err(err) => {
            tracing::error!("cannot start the session (the index thread): {err}");
            return SessionEnd::default();
        }
    };
    let (service, socket) = LspService::build({
        let session = session.clone();
        move |client| server::Server::new(client, session)
    })
    .custom_method("conductor/debugDocument", server::Server::debug_document)
    .custom_method("conductor/status", server::Server::status)
    .custom_method(
        "window/workDoneProgress/cancel",
        server::Server::work_done_progress_cancel,
    )
    .finish();
    transport::serve(
        input,
        output,
        panic::CatchPanic(service),
        socket,
        |message| {
            if std::panic::catch_unwind(AssertUnwindSafe(|| sync::on_message(&session, message)))
                .is_err()
            {
                tracing::error!("applying a document change panicked; the document may be stale");
            }
        },
    )
    .await
}

/// Runs the language server on stdin/stdout until the client exits.
pub fn run_stdio() -> ExitCode {
    crate::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("conductor")
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("conductor: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let end = runtime.block_on(serve(tokio::io::stdin(), tokio::io::stdout()));
    // The stdin reader is a blocking thread that never returns on its own; do not wait for it,
    // nor for background work the session left behind.
    runtime.shutdown_timeout(Duration::from_millis(100));
    tracing::info!(?end, "session ended");
    ExitCode::from(end.exit_code())
}
