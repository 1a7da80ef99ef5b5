//! What the workspace is: its root, which files belong to it ([`Filter`], with the walk that
//! lists them), the one parallel per-file worker ([`par_map`]) the index and the security
//! scan run on, the one writer of Conductor's own folder, `.conductor/` ([`artifacts`]), and the
//! one rule for which Cargo workspace owns a package ([`cargo`]).
//!
//! Every feature that asks "is this file part of the workspace" (the context index, cold and
//! incremental; the security scan and its disk refresh) asks a [`Filter`], so they agree.

pub mod artifacts;
pub mod cargo;
mod filter;
mod par;

use std::path::{Path, PathBuf};

pub use filter::{BUILTIN_FOLDERS, Filter, Walk};
pub use par::{par_collect, par_map, workers};

/// The workspace root that holds `path` (a file or a folder): the Cargo workspace that owns it
/// ([`cargo::owning_workspace`]: the nearest one that holds its package, so a package excluded
/// from an outer workspace, or with an empty `[workspace]` of its own, is its own root), else
/// the nearest folder with a `conductor.toml` or a `.git`; `None` when there is none of these.
/// Every command that needs a root (`scan`, `run`, `fix`, `context`) asks this one function.
pub fn root_for(path: &Path) -> Option<PathBuf> {
    if let Some(root) = cargo::owning_workspace(path) {
        return Some(root);
    }
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let start = if path.is_dir() {
        path.as_path()
    } else {
        path.parent()?
    };
    start
        .ancestors()
        .find(|dir| dir.join(crate::config::CONFIG_FILE).is_file() || dir.join(".git").exists())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_nearest_owning_cargo_workspace_then_a_marker() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        let write = |rel: &str, text: &str| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        write(
            "ws/Cargo.toml",
            "[workspace]\nmembers = [\"app\"]\nexclude = [\"examples\"]\n",
        );
        write("ws/app/Cargo.toml", "[package]\nname = \"app\"\n");
        write("ws/app/src/main.rs", "fn main() {}\n");
        // Like this repository's `examples/`: excluded, and a `[workspace]` of its own.
        write(
            "ws/examples/Cargo.toml",
            "[package]\nname = \"shop\"\n[workspace]\n",
        );
        write("ws/examples/src/main.rs", "fn main() {}\n");
        // Inside a member's folder but no member itself (not listed), no table of its own: its
        // own root, not the member's workspace.
        write(
            "ws/app/vendored/Cargo.toml",
            "[package]\nname = \"vendored\"\n",
        );
        write("ws/app/vendored/src/lib.rs", "");
        write("solo/Cargo.toml", "[package]\nname = \"solo\"\n");
        write("solo/src/lib.rs", "");
        write("plain/conductor.toml", "");
        write("plain/deep/x.rs", "");
        assert_eq!(
            root_for(&root.join("ws/app/src/main.rs")),
            Some(root.join("ws"))
        );
        assert_eq!(root_for(&root.join("ws/app")), Some(root.join("ws")));
        assert_eq!(
            root_for(&root.join("ws/examples/src/main.rs")),
            Some(root.join("ws/examples"))
        );
        assert_eq!(
            root_for(&root.join("ws/examples")),
            Some(root.join("ws/examples"))
        );
        assert_eq!(
            root_for(&root.join("ws/app/vendored/src/lib.rs")),
            Some(root.join("ws/app/vendored"))
        );
        assert_eq!(root_for(&root.join("solo/src")), Some(root.join("solo")));
        assert_eq!(
            root_for(&root.join("plain/deep/x.rs")),
            Some(root.join("plain"))
        );
    }

    #[test]
    fn this_repository_s_examples_are_their_own_root() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the repository")
            .canonicalize()
            .expect("canonical");
        assert_eq!(
            root_for(&repo.join("examples")),
            Some(repo.join("examples"))
        );
        assert_eq!(
            root_for(&repo.join("examples/src/handlers.rs")),
            Some(repo.join("examples"))
        );
        assert_eq!(
            root_for(&repo.join("server/src/lib.rs")),
            Some(repo.clone())
        );
    }
}
