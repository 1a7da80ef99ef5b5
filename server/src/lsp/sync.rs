//! Document mutations, applied synchronously in the order messages arrive.
//!
//! The transport calls [`on_message`] for every well-formed incoming message before the
//! framework sees it. Text synchronisation is applied here and nowhere else, so a `didChange`
//! can never be reordered with another, and a request that arrives after a change always sees
//! it. Nothing here awaits. The framework's handlers for these notifications only schedule
//! background work on the already-updated state.

use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tower_lsp_server::ls_types::{
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    InitializeParams,
};

use super::convert;
use super::session::Session;
use crate::document::{ChangeOutcome, PositionEncoding, TextChange};

/// Takes the params out of the message and decodes them (once: the framework later decodes
/// only the small stand-in the hook puts back).
fn take_params<T: DeserializeOwned>(message: &mut Map<String, Value>, method: &str) -> Option<T> {
    let params = message.remove("params")?;
    match serde_json::from_value(params) {
        Ok(p) => Some(p),
        Err(err) => {
            tracing::warn!("invalid params for {method}: {err}");
            None
        }
    }
}

/// Applies what must happen in arrival order. A document notification's text is taken out of
/// the message and applied here; what goes on to the framework's handler is the document's
/// identity alone (the handler only schedules background work), so a large text is decoded
/// once and never copied.
pub fn on_message(session: &Session, message: &mut Map<String, Value>) {
    let Some(method) = message
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    match method.as_str() {
        // Only the first `initialize` negotiates: the framework refuses a second one, and a
        // refused request must change nothing (a re-negotiated encoding put later edits at the
        // wrong column).
        "initialize" if session.first_initialize() => {
            let offered = message
                .get("params")
                .and_then(|p| InitializeParams::deserialize(p).ok())
                .and_then(|p| p.capabilities.general)
                .and_then(|g| g.position_encodings)
                .unwrap_or_default();
            let encoding = PositionEncoding::negotiate(offered.iter().map(|e| e.as_str()));
            session.set_encoding(encoding);
        }
        "textDocument/didOpen" => {
            if let Some(p) = take_params::<DidOpenTextDocumentParams>(message, &method) {
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
                message.insert(
                    "params".into(),
                    json!({"textDocument": {"uri": doc.uri, "languageId": doc.language_id,
                        "version": doc.version, "text": ""}}),
                );
            }
        }
        "textDocument/didChange" => {
            if let Some(p) = take_params::<DidChangeTextDocumentParams>(message, &method) {
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
                message.insert(
                    "params".into(),
                    json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": []}),
                );
            }
        }
        "textDocument/didClose" => {
            if let Some(p) = message
                .get("params")
                .and_then(|p| DidCloseTextDocumentParams::deserialize(p).ok())
            {
                let uri = p.text_document.uri;
                if !session.with_documents(|docs| docs.close(uri.as_str())) {
                    tracing::warn!("didClose for {}, which is not open", uri.as_str());
                }
            }
        }
        _ => {}
    }
}
