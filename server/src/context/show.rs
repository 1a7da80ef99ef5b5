//! "Show context" (`conductor.showContext` in the editor): the bundle of a selection, built
//! from the text the user has, written as a Markdown document under `.conductor/context/`.
//! `lsp/context.rs` converts the selection to bytes, shows the document and answers.

use std::path::{Path, PathBuf};

use super::{BundleRequest, build_bundle};
use crate::app::App;
use crate::document::Snapshot;
use crate::workspace::artifacts::{self, ArtifactKind};

/// A bundle written for the user to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The Markdown document.
    pub path: PathBuf,
    /// How many items the bundle holds.
    pub items: usize,
    /// Their tokens.
    pub total_tokens: usize,
    /// The budget they were chosen within.
    pub budget: usize,
}

/// Builds the bundle of `request` on the live index and writes it under `root`'s
/// `.conductor/context/`. `snapshot`, the open document's, lends its syntax tree (reparsed
/// here if edits are pending) so the file is not parsed again. Blocking: call it off the
/// async threads. `Err` says, for the user, why there is no bundle.
pub fn write_bundle(
    app: &App,
    root: &Path,
    mut request: BundleRequest,
    snapshot: Option<Snapshot>,
) -> Result<Shown, String> {
    // Updates the handlers sent before this command are applied first, so the bundle sees
    // what the user typed (the index thread never waits for this reader).
    app.index.flush();
    let index = app
        .index
        .snapshot()
        .ok_or("the workspace is still being indexed; try again in a moment")?;
    request.tree = snapshot.and_then(|s| s.tree());
    let bundle = build_bundle(&index, &request).map_err(|e| format!("{e:#}"))?;
    let line = bundle.items.first().map_or(1, |i| i.start_line);
    let path = artifacts::artifact_path(
        root,
        ArtifactKind::Context,
        &artifacts::context_document_name(&bundle.file, line),
    );
    artifacts::write_artifact(&path, &bundle.to_markdown()).map_err(|e| format!("{e:#}"))?;
    Ok(Shown {
        path,
        items: bundle.items.len(),
        total_tokens: bundle.total_tokens,
        budget: bundle.budget,
    })
}
