//! The one writer for `.conductor/`, the folder of the workspace where Conductor keeps what it
//! produces for the user to read (context documents, trade-off explanations): where an artefact
//! goes ([`artifact_path`]) and how it is written ([`write_artifact`], atomically).
//!
//! The folder is one of the workspace filter's built-in folders, so nothing written here is
//! indexed or scanned, and edits never write into it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::Context as _;

/// The folder under the workspace root that holds every artefact.
pub const FOLDER: &str = ".conductor";

/// What an artefact is, which decides its folder under [`FOLDER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A context bundle written as markdown (`conductor.showContext`).
    Context,
    /// A trade-off explanation of a selection (`conductor.explain`).
    Explanation,
}

impl ArtifactKind {
    /// The folder of this kind, under [`FOLDER`].
    pub fn folder(self) -> &'static str {
        match self {
            ArtifactKind::Context => "context",
            ArtifactKind::Explanation => "explanations",
        }
    }
}

/// Where the artefact `name` of `kind` goes: `root/.conductor/<kind>/<name>`. The name becomes
/// one file name whatever it holds: leading `/`s are dropped, path separators and `:`
/// become `_`, so an artefact never lands outside its folder.
pub fn artifact_path(root: &Path, kind: ArtifactKind, name: &str) -> PathBuf {
    let mut name = name.trim_start_matches('/').replace(['/', '\\', ':'], "_");
    if name.is_empty() || name == "." || name == ".." {
        name = name.replace('.', "_") + "_";
    }
    root.join(FOLDER).join(kind.folder()).join(name)
}

/// The name of the context document of a bundle for `file` (relative to the root) whose first
/// item starts on `line`: `file-L{line}.md`, one per file and place, so showing the context of
/// the same selection again replaces the earlier document.
pub fn context_document_name(file: &str, line: u32) -> String {
    format!("{file}-L{line}.md")
}

/// Writes an artefact (creating its folders) through a temporary file and a rename, so a reader
/// never sees half a document.
pub fn write_artifact(path: &Path, text: &str) -> anyhow::Result<()> {
    // The temporary file's name is the same for every write of `path` from this process, so two
    // writes of the same artefact at once (the same selection shown twice) would rename each
    // other's file away; one at a time, they both succeed.
    static WRITING: Mutex<()> = Mutex::new(());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _one_at_a_time = WRITING.lock().unwrap_or_else(PoisonError::into_inner);
    crate::editor::write_atomically(path, text)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artefact_name_is_one_file_in_its_kinds_folder() {
        let root = Path::new("/ws");
        let context = root.join(".conductor/context");
        assert_eq!(
            artifact_path(
                root,
                ArtifactKind::Context,
                &context_document_name("src/shop/cart.rs", 12)
            ),
            context.join("src_shop_cart.rs-L12.md")
        );
        assert_eq!(
            artifact_path(
                root,
                ArtifactKind::Context,
                &context_document_name("/abs/x.rs", 1)
            ),
            context.join("abs_x.rs-L1.md")
        );
        assert_eq!(
            artifact_path(
                root,
                ArtifactKind::Context,
                &context_document_name("C:\\w\\y.rs", 3)
            ),
            context.join("C__w_y.rs-L3.md")
        );
        for name in ["", ".", "..", "../..", "/"] {
            let path = artifact_path(root, ArtifactKind::Context, name);
            assert_eq!(
                path.parent(),
                Some(context.as_path()),
                "{name:?} -> {path:?}"
            );
            assert!(
                !matches!(path.file_name().and_then(|n| n.to_str()), None | Some("..")),
                "{name:?} -> {path:?}"
            );
        }
    }

    #[test]
    fn an_artefact_is_written_whole_with_its_folders_and_no_temporary_file_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = artifact_path(dir.path(), ArtifactKind::Context, "a.rs-L1.md");
        write_artifact(&path, "first\n").expect("written");
        write_artifact(&path, "second\n").expect("replaced");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "second\n");
        let folder = path.parent().expect("folder");
        let entries: Vec<_> = std::fs::read_dir(folder)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("a.rs-L1.md")]);
    }

    #[test]
    fn the_same_artefact_written_at_once_from_two_threads_succeeds_both_times() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = artifact_path(dir.path(), ArtifactKind::Context, "same.md");
        let text = "x".repeat(64 * 1024);
        std::thread::scope(|scope| {
            let writers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..50)
                            .map(|_| write_artifact(&path, &text).map_err(|e| format!("{e:#}")))
                            .collect::<Result<Vec<()>, String>>()
                    })
                })
                .collect();
            for writer in writers {
                writer
                    .join()
                    .expect("writer")
                    .expect("every write succeeds");
            }
        });
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    }

    #[test]
    fn a_failed_write_names_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A file where the folder should be.
        std::fs::write(dir.path().join(FOLDER), "").expect("write");
        let path = artifact_path(dir.path(), ArtifactKind::Context, "a.md");
        let err = format!(
            "{:#}",
            write_artifact(&path, "x").expect_err("cannot write")
        );
        assert!(
            err.starts_with(&format!(
                "creating {}",
                path.parent().expect("folder").display()
            )),
            "{err}"
        );
    }
}
