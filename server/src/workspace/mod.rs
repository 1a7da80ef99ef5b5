//! What the workspace is: its root, which files belong to it ([`Filter`], with the walk that
//! lists them), the one parallel per-file worker ([`par_map`]) the index and the security
//! scan run on, and the one writer of Conductor's own folder, `.conductor/` ([`artifacts`]).
//!
//! Every feature that asks "is this file part of the workspace" (the context index, cold and
//! incremental; the security scan and its disk refresh) asks a [`Filter`], so they agree.

pub mod artifacts;
mod filter;
mod par;

use std::path::{Path, PathBuf};

pub use filter::{BUILTIN_FOLDERS, Filter, Walk};
pub use par::{par_collect, par_map, workers};

/// The workspace root that holds `path` (a file or a folder): the outermost folder whose
/// `Cargo.toml` declares `[workspace]`, else the nearest folder with a `Cargo.toml`, else the
/// nearest with a `conductor.toml` or a `.git`; `None` when there is none of these.
pub fn root_for(path: &Path) -> Option<PathBuf> {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let start = if path.is_dir() {
        path.as_path()
    } else {
        path.parent()?
    };
    let mut nearest_manifest = None;
    let mut outermost_workspace = None;
    let mut nearest_marker = None;
    for dir in start.ancestors() {
        if let Ok(text) =
            crate::util::read_regular_text(&dir.join("Cargo.toml"), crate::util::MAX_READ_BYTES)
        {
            nearest_manifest.get_or_insert_with(|| dir.to_path_buf());
            if text.lines().any(|l| l.trim() == "[workspace]") {
                outermost_workspace = Some(dir.to_path_buf());
            }
        }
        if nearest_marker.is_none()
            && (dir.join(crate::config::CONFIG_FILE).is_file() || dir.join(".git").exists())
        {
            nearest_marker = Some(dir.to_path_buf());
        }
    }
    outermost_workspace.or(nearest_manifest).or(nearest_marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_outermost_cargo_workspace_then_the_nearest_manifest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        let write = |rel: &str, text: &str| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        write("ws/Cargo.toml", "[workspace]\nmembers = [\"app\"]\n");
        write("ws/app/Cargo.toml", "[package]\nname = \"app\"\n");
        write("ws/app/src/main.rs", "fn main() {}\n");
        write("solo/Cargo.toml", "[package]\nname = \"solo\"\n");
        write("solo/src/lib.rs", "");
        write("plain/conductor.toml", "");
        write("plain/deep/x.rs", "");
        assert_eq!(
            root_for(&root.join("ws/app/src/main.rs")),
            Some(root.join("ws"))
        );
        assert_eq!(root_for(&root.join("ws/app")), Some(root.join("ws")));
        assert_eq!(root_for(&root.join("solo/src")), Some(root.join("solo")));
        assert_eq!(
            root_for(&root.join("plain/deep/x.rs")),
            Some(root.join("plain"))
        );
    }
}
