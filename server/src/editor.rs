//! The editor port: how features that act on the user's files (runs, fixes) reach whatever is
//! in front of the user — an LSP client, the file system for the command line, or a test.
//!
//! A feature never sees `tower_lsp_server::Client`: it builds a [`ChangeSet`] of byte edits
//! against the exact text it read (an open document's revision, or a file's bytes on disk by
//! hash), and the port either applies it, refuses it (the text changed under it, the user
//! declined, the client cannot), or is cancelled. It also reports progress, shows documents,
//! publishes the findings a run left behind and refreshes the lenses over a run's decisions.
//! Implementations: `lsp::editor::LspEditor`
//! over the client, [`FsEditor`] here over the file system, and the test doubles in the tests.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::orchestrator::existing::LeftBehind;

/// A boxed future, for the port's asynchronous methods (the trait is used as `dyn Editor`).
pub type EditorFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an edit was computed against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// An open document at the server's revision (and the client's version, for the protocol).
    Open {
        /// The document's URI as the client named it.
        uri: String,
        /// `Snapshot::version`.
        version: i32,
        /// `Snapshot::revision`.
        revision: u64,
    },
    /// A file on disk whose bytes hash to this (see [`text_hash`]).
    Disk {
        /// The hex SHA-256 of the file's bytes.
        hash: String,
    },
    /// A file that does not exist yet and is created.
    Missing,
}

/// One replacement of a byte range of the base text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEdit {
    /// Bytes of the base text (non-overlapping within a file, applied as if simultaneously).
    pub range: Range<usize>,
    /// The new text.
    pub new_text: String,
    /// The [`Note`] of [`ChangeSet::notes`] that explains this hunk, if any.
    pub note: Option<usize>,
}

/// Why one or more hunks of a change were written: shown beside each hunk in a preview (LSP
/// change annotations), so the user accepts or rejects each with its reason in view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Note {
    /// A short label (the decision's summary).
    pub label: String,
    /// The longer reason (rationale, review verdict, test outcome).
    pub description: String,
}

/// What the user has in front of them for a file right now: an open buffer's text and its
/// identity. The presenting stage re-anchors a change on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// The buffer's text now.
    pub text: String,
    /// Its identity (`Base::Open`).
    pub base: Base,
}

/// The edits of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The file (absolute).
    pub path: PathBuf,
    /// What the edits were computed against.
    pub base: Base,
    /// The edits.
    pub edits: Vec<TextEdit>,
}

/// A change the user may review: the files it touches, with a label and a reason per file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeSet {
    /// A short title ("Conductor run 7: add retry").
    pub label: String,
    /// Why (shown in a preview when the client supports annotations).
    pub description: String,
    /// Whether the user must confirm each hunk before it applies (when the client can).
    pub needs_confirmation: bool,
    /// The reasons the hunks refer to ([`TextEdit::note`]).
    pub notes: Vec<Note>,
    /// The files.
    pub files: Vec<FileChange>,
}

/// What became of a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Every file was changed.
    Applied,
    /// Nothing was changed, for this reason (in words for the user).
    Refused(String),
    /// The run was cancelled before the editor answered; the editor may still apply it, so the
    /// caller must not assume either way.
    Cancelled,
}

/// The editor in front of the user.
pub trait Editor: Send + Sync {
    /// Applies `change` all or nothing; `cancel` ends the wait (a preview can take minutes).
    fn apply<'a>(
        &'a self,
        change: &'a ChangeSet,
        cancel: &'a CancellationToken,
    ) -> EditorFuture<'a, Applied>;

    /// Reports progress of a stage ("planning", "testing 3/14"); never waits.
    fn progress(&self, stage: &str, message: &str, percentage: Option<u32>);

    /// Shows a document (a plan, an explanation); returns whether it was shown.
    fn show<'a>(&'a self, path: &'a Path) -> EditorFuture<'a, bool>;

    /// The text the user has open for `path` now, when the editor has it open (never waits).
    /// `None`: the file is not open, and its bytes on disk are what the user has.
    fn current(&self, path: &Path) -> Option<Current> {
        let _ = path;
        None
    }

    /// Shows the high findings run `run` left in the files it changed
    /// (`orchestrator::existing::left_behind`) where the user reads the code, in place of the
    /// run's earlier ones on the same lines; never waits. Without an editor (the file system)
    /// there is nowhere to show them: the command line prints them with the run's outcome.
    fn publish_findings(&self, run: &str, left: &[LeftBehind<'_>]) {
        let _ = (run, left);
    }

    /// Run `run`'s decisions changed (it applied a change, or explained code): the editor
    /// reads its journal again and refreshes the code lenses and hovers over them. Without an
    /// editor there are none to refresh (`conductor explain` reads the journals each time).
    fn decisions_changed<'a>(&'a self, run: &'a str) -> EditorFuture<'a, ()> {
        let _ = run;
        Box::pin(async {})
    }
}

/// The hex SHA-256 of `bytes`: the stable identity of a text a change was based on.
pub fn text_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies non-overlapping byte edits to `text` as if simultaneously. `None` when an edit is
/// out of range, not on a character boundary, or overlaps another.
pub fn apply_edits(text: &str, edits: &[TextEdit]) -> Option<String> {
    let mut sorted: Vec<&TextEdit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.range.start, e.range.end));
    let mut out = String::with_capacity(text.len());
    let mut at = 0usize;
    for edit in sorted {
        let Range { start, end } = edit.range;
        if start < at || start > end || !text.is_char_boundary(start) || !text.is_char_boundary(end)
        {
            return None;
        }
        out.push_str(text.get(at..start)?);
        out.push_str(&edit.new_text);
        at = end;
    }
    out.push_str(text.get(at..)?);
    Some(out)
}

/// The editor of the command line: changes go straight to the files, each written atomically
/// (a temporary file in the same folder, then a rename), and only when every file's bytes still
/// hash to what the change was computed against. Progress goes to the log.
#[derive(Debug, Default)]
pub struct FsEditor;

impl FsEditor {
    fn plan(change: &ChangeSet) -> Result<Vec<(PathBuf, String)>, String> {
        let mut planned = Vec::with_capacity(change.files.len());
        for file in &change.files {
            let shown = file.path.display();
            let current =
                match crate::util::read_regular_file(&file.path, crate::util::MAX_READ_BYTES) {
                    Ok(bytes) => Some(bytes),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                    Err(err) => return Err(format!("reading {shown}: {err}")),
                };
            let base_text = match (&file.base, current) {
                (Base::Missing, None) => String::new(),
                (Base::Missing, Some(_)) => {
                    return Err(format!("{shown} exists already; it was not overwritten"));
                }
                (_, None) => return Err(format!("{shown} no longer exists")),
                (Base::Disk { hash }, Some(bytes)) if text_hash(&bytes) == *hash => {
                    String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8"))?
                }
                (Base::Disk { .. }, Some(_)) => {
                    return Err(format!(
                        "{shown} changed on disk since the change was computed; nothing was written"
                    ));
                }
                (Base::Open { .. }, Some(_)) => {
                    return Err(format!(
                        "{shown} was computed against an editor buffer; the command line cannot apply it"
                    ));
                }
            };
            let after = apply_edits(&base_text, &file.edits)
                .ok_or_else(|| format!("{shown}: the edits overlap or fall outside the text"))?;
            planned.push((file.path.clone(), after));
        }
        Ok(planned)
    }
}

/// Why a checked atomic write did not happen.
#[derive(Debug)]
pub enum WriteError {
    /// Writing the temporary file, or renaming it over the target, failed.
    Io(std::io::Error),
    /// The check run just before the rename refused (the temporary file is removed).
    Refused(String),
}

/// Writes `bytes` to `path` through a new temporary file in the same folder (created
/// exclusively, with the target's permissions, synced) and a rename, so an interrupted write
/// never leaves half a file. `before_rename` runs last, just before the write becomes visible
/// (the edit applier re-checks confinement there); its refusal discards the write.
pub fn write_atomically_checked(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce() -> Result<(), String>,
) -> Result<(), WriteError> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(WriteError::Io)?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    // Unique per write, so two writers of one path never share (and break) a temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.conductor-{}-{n}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()
    })();
    let checked = written
        .map_err(WriteError::Io)
        .and_then(|()| before_rename().map_err(WriteError::Refused))
        .and_then(|()| std::fs::rename(&temp, path).map_err(WriteError::Io));
    if checked.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    checked
}

/// [`write_atomically_checked`] with nothing to check before the rename.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    write_atomically_checked(path, text.as_bytes(), || Ok(())).map_err(|err| match err {
        WriteError::Io(err) => err,
        WriteError::Refused(why) => std::io::Error::other(why),
    })
}

impl Editor for FsEditor {
    fn apply<'a>(
        &'a self,
        change: &'a ChangeSet,
        cancel: &'a CancellationToken,
    ) -> EditorFuture<'a, Applied> {
        Box::pin(async move {
            if cancel.is_cancelled() {
                return Applied::Cancelled;
            }
            let planned = match Self::plan(change) {
                Ok(planned) => planned,
                Err(why) => return Applied::Refused(why),
            };
            for (path, text) in &planned {
                if let Err(err) = write_atomically(path, text) {
                    return Applied::Refused(format!("writing {}: {err}", path.display()));
                }
            }
            Applied::Applied
        })
    }

    fn progress(&self, stage: &str, message: &str, percentage: Option<u32>) {
        match percentage {
            Some(p) => tracing::info!("{stage}: {message} ({p}%)"),
            None => tracing::info!("{stage}: {message}"),
        }
    }

    fn show<'a>(&'a self, path: &'a Path) -> EditorFuture<'a, bool> {
        Box::pin(async move {
            tracing::info!("written to {}", path.display());
            false
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(range: Range<usize>, text: &str) -> TextEdit {
        TextEdit {
            range,
            new_text: text.into(),
            note: None,
        }
    }

    #[test]
    fn edits_apply_as_if_simultaneous_and_bad_ones_are_refused() {
        let text = "fn a() {}\nfn b() {}\n";
        let out = apply_edits(text, &[edit(13..14, "c"), edit(3..4, "z")]).expect("applies");
        assert_eq!(out, "fn z() {}\nfn c() {}\n");
        assert_eq!(apply_edits(text, &[edit(0..5, ""), edit(3..8, "")]), None);
        assert_eq!(apply_edits(text, &[edit(0..99, "")]), None);
        assert_eq!(apply_edits("é", &[edit(1..1, "x")]), None);
    }

    #[tokio::test]
    async fn the_file_system_editor_writes_only_unchanged_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("lib.rs");
        std::fs::write(&path, "fn a() {}\n").expect("write");
        let change = |base: Base| ChangeSet {
            files: vec![FileChange {
                path: path.clone(),
                base,
                edits: vec![edit(3..4, "b")],
            }],
            ..ChangeSet::default()
        };
        let cancel = CancellationToken::new();
        let stale = change(Base::Disk {
            hash: text_hash(b"something else"),
        });
        assert!(matches!(
            FsEditor.apply(&stale, &cancel).await,
            Applied::Refused(why) if why.contains("changed on disk")
        ));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "fn a() {}\n");
        let fresh = change(Base::Disk {
            hash: text_hash(b"fn a() {}\n"),
        });
        assert_eq!(FsEditor.apply(&fresh, &cancel).await, Applied::Applied);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "fn b() {}\n");
        // A file the change means to create must not exist.
        assert!(matches!(
            FsEditor.apply(&change(Base::Missing), &cancel).await,
            Applied::Refused(why) if why.contains("exists already")
        ));
        cancel.cancel();
        assert_eq!(FsEditor.apply(&fresh, &cancel).await, Applied::Cancelled);
    }
}
