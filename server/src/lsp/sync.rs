//! Document mutations, applied synchronously in the order messages arrive.
//!
//! The transport calls [`on_message`] for every well-formed incoming message before the
//! framework sees it. Text synchronisation is applied here and nowhere else, so a `didChange`
//! can never be reordered with another, and a request that arrives after a change always sees
//! it. Nothing here awaits. The framework's handlers for these notifications only schedule
//! background work on the already-updated state.

use serde::de::DeserializeOwned;
use serde_json::Value;
use tower_lsp_server::ls_types::{
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    InitializeParams,
};

use super::convert;
use super::session::Session;
use crate::document::{ChangeOutcome, PositionEncoding, TextChange};

fn params<T: DeserializeOwned>(message: &Value) -> Option<T> {
    let params = message.get("params")?.clone();
    match serde_json::from_value(params) {
        Ok(p) => Some(p),
        Err(err) => {
            let method = message.get("method").and_then(Value::as_str).unwrap_or("");
            tracing::warn!("invalid params for {method}: {err}");
            None
        }
    }
}

/// Applies what must happen in arrival order.
pub fn on_message(session: &Session, message: &Value) {
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        return;
    };
    match method {
        "initialize" => {
            if let Some(p) = params::<InitializeParams>(message) {
                let offered = p
                    .capabilities
                    .general
                    .and_then(|g| g.position_encodings)
                    .unwrap_or_default();
                let encoding = PositionEncoding::negotiate(offered.iter().map(|e| e.as_str()));
                session.set_encoding(encoding);
            }
        }
        "textDocument/didOpen" => {
            if let Some(p) = params::<DidOpenTextDocumentParams>(message) {
                let doc = p.text_document;
                let path = convert::uri_to_path(&doc.uri);
                session.with_documents(|docs| {
                    docs.open(
                        doc.uri.as_str(),
                        path,
                        &doc.language_id,
                        doc.version,
                        &doc.text,
                    )
                });
            }
        }
        "textDocument/didChange" => {
            if let Some(p) = params::<DidChangeTextDocumentParams>(message) {
                let encoding = session.encoding();
                let changes: Vec<TextChange> = p
                    .content_changes
                    .into_iter()
                    .map(|c| TextChange {
                        range: c.range.map(|r| {
                            (
                                convert::from_position(r.start),
                                convert::from_position(r.end),
                            )
                        }),
                        text: c.text,
                    })
                    .collect();
                let uri = p.text_document.uri;
                let version = p.text_document.version;
                let outcome = session
                    .with_documents(|docs| docs.change(uri.as_str(), version, &changes, encoding));
                match outcome {
                    ChangeOutcome::Applied => {}
                    ChangeOutcome::AppliedOutOfOrder { previous } => tracing::warn!(
                        "{}: version {version} arrived after version {previous}; applied the edits anyway, since the client's text follows them",
                        uri.as_str()
                    ),
                    ChangeOutcome::NotOpen => {
                        tracing::warn!("didChange for {}, which is not open; ignored", uri.as_str())
                    }
                }
            }
        }
        "textDocument/didClose" => {
            if let Some(p) = params::<DidCloseTextDocumentParams>(message) {
                let uri = p.text_document.uri;
                if !session.with_documents(|docs| docs.close(uri.as_str())) {
                    tracing::warn!("didClose for {}, which is not open", uri.as_str());
                }
            }
        }
        _ => {}
    }
}
