//! Which Cargo workspace owns a package: the one rule, used on disk (the command line's
//! workspace root, [`owning_workspace`]) and over manifests already read (the context index's
//! crate graph, [`owner`]), so the two never disagree.
//!
//! The rule is Cargo's: a package whose manifest has a `[workspace]` table (an empty one
//! included) is a workspace of its own; one that names its workspace with `package.workspace`
//! belongs there; otherwise the nearest manifest above it with a `[workspace]` table owns it,
//! unless that table excludes it or does not list it as a member, and then the package stands
//! alone. Never the outermost workspace: this repository's `examples/` sits inside its outer
//! workspace and is its own.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The `[workspace]` table of a manifest: which packages it holds and what it shares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkspaceTable {
    /// The folder of the manifest, relative to the workspace root.
    pub dir: PathBuf,
    /// `members` globs, relative to `dir`.
    pub members: Vec<String>,
    /// `exclude` paths, relative to `dir`.
    pub exclude: Vec<String>,
    /// `[workspace.dependencies]`: key → (package, folder when given by path).
    pub dependencies: BTreeMap<String, (String, Option<PathBuf>)>,
}

impl WorkspaceTable {
    /// Whether the package at `dir` (relative to the root) is excluded from this workspace.
    pub fn excludes(&self, dir: &Path) -> bool {
        self.exclude
            .iter()
            .any(|e| dir.starts_with(normalise(&self.dir.join(e))))
    }

    /// Whether `members` names the package at `dir`; a workspace whose members are not listed
    /// (an empty `[workspace]`) holds only its own package.
    pub fn lists(&self, dir: &Path) -> bool {
        if dir == self.dir {
            return true;
        }
        self.members.iter().any(|m| {
            let pattern = normalise(&self.dir.join(m));
            globset::GlobBuilder::new(&pattern.to_string_lossy())
                .literal_separator(true)
                .build()
                .is_ok_and(|g| g.compile_matcher().is_match(dir))
        })
    }

    /// Whether this workspace owns the package at `dir`, a folder below its own.
    pub fn holds(&self, dir: &Path) -> bool {
        !self.excludes(dir) && self.lists(dir)
    }
}

/// The `[workspace]` table of a manifest at `dir`, if it has one.
pub fn workspace_table(dir: &Path, text: &str) -> Option<WorkspaceTable> {
    let value: toml::Table = toml::from_str(text).ok()?;
    let table = value.get("workspace")?.as_table()?;
    let strings = |key: &str| -> Vec<String> {
        table
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut dependencies = BTreeMap::new();
    if let Some(deps) = table.get("dependencies").and_then(|d| d.as_table()) {
        for (key, spec) in deps {
            let (package, path) = package_and_path(key, spec);
            dependencies.insert(
                key.clone(),
                (package, path.map(|p| normalise(&dir.join(p)))),
            );
        }
    }
    Some(WorkspaceTable {
        dir: dir.to_path_buf(),
        members: strings("members"),
        exclude: strings("exclude"),
        dependencies,
    })
}

/// What a package's own manifest says about its workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership<'a> {
    /// The package's folder.
    pub dir: &'a Path,
    /// Its manifest has a `[workspace]` table of its own.
    pub own_workspace: bool,
    /// `package.workspace`, relative to `dir`.
    pub workspace_path: Option<&'a Path>,
}

/// The folder of the workspace that owns a package, given the nearest `[workspace]` table in
/// a folder strictly above the package's (see the module's doc for the rule).
pub fn owner(package: Membership<'_>, nearest_above: Option<&WorkspaceTable>) -> PathBuf {
    if package.own_workspace {
        return package.dir.to_path_buf();
    }
    if let Some(path) = package.workspace_path {
        return normalise(&package.dir.join(path));
    }
    match nearest_above {
        Some(table) if table.holds(package.dir) => table.dir.clone(),
        _ => package.dir.to_path_buf(),
    }
}

/// The folder of the Cargo workspace that owns the file or folder `path` on disk, by
/// [`owner`]'s rule; a path inside a virtual workspace's folder but in none of its packages
/// belongs to that workspace. `None` when no `Cargo.toml` is at or above `path`.
pub fn owning_workspace(path: &Path) -> Option<PathBuf> {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let start = if path.is_dir() {
        path.as_path()
    } else {
        path.parent()?
    };
    // The package manifest nearest the path: its folder and what it says about membership.
    let mut package: Option<(PathBuf, bool, Option<PathBuf>)> = None;
    for dir in start.ancestors() {
        let Ok(text) =
            crate::util::read_regular_text(&dir.join("Cargo.toml"), crate::util::MAX_READ_BYTES)
        else {
            continue;
        };
        let value: Option<toml::Table> = toml::from_str(&text).ok();
        let table = workspace_table(dir, &text);
        let Some((package_dir, own, workspace_path)) = &package else {
            let is_package = value.as_ref().is_none_or(|v| v.contains_key("package"));
            if !is_package {
                // A virtual manifest: the path is in its folder, in none of its packages.
                if table.is_some() {
                    return Some(dir.to_path_buf());
                }
                continue;
            }
            let workspace_path = value.as_ref().and_then(|v| {
                v.get("package")?
                    .get("workspace")?
                    .as_str()
                    .map(PathBuf::from)
            });
            let own = table.is_some();
            if own || workspace_path.is_some() {
                return Some(owner(
                    Membership {
                        dir,
                        own_workspace: own,
                        workspace_path: workspace_path.as_deref(),
                    },
                    None,
                ));
            }
            package = Some((dir.to_path_buf(), own, workspace_path));
            continue;
        };
        if let Some(table) = table {
            return Some(owner(
                Membership {
                    dir: package_dir,
                    own_workspace: *own,
                    workspace_path: workspace_path.as_deref(),
                },
                Some(&table),
            ));
        }
    }
    package.map(|(dir, _, _)| dir)
}

/// `a/./b/../c` as `a/c`, without touching the disk.
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The package a dependency entry names and its `path`, if any.
pub fn package_and_path(key: &str, spec: &toml::Value) -> (String, Option<String>) {
    match spec {
        toml::Value::Table(t) => (
            t.get("package")
                .and_then(|p| p.as_str())
                .unwrap_or(key)
                .to_string(),
            t.get("path").and_then(|p| p.as_str()).map(str::to_string),
        ),
        _ => (key.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_table_lists_members_by_glob_and_honours_exclude() {
        let table = workspace_table(
            Path::new(""),
            "[workspace]\nmembers = [\"crates/*\", \"server\"]\nexclude = [\"examples\"]\n\
             [workspace.dependencies]\ncore = { path = \"crates/core\", package = \"x-core\" }\n",
        )
        .expect("a workspace");
        assert!(table.lists(Path::new("crates/a")));
        assert!(table.lists(Path::new("server")));
        assert!(!table.lists(Path::new("crates/a/nested")));
        assert!(!table.lists(Path::new("tools")));
        assert!(table.excludes(Path::new("examples")));
        assert!(table.excludes(Path::new("examples/deep")));
        assert!(!table.excludes(Path::new("server")));
        assert_eq!(
            table.dependencies.get("core"),
            Some(&("x-core".to_string(), Some(PathBuf::from("crates/core"))))
        );
        assert_eq!(
            workspace_table(Path::new(""), "[package]\nname = \"a\"\n"),
            None
        );
    }

    #[test]
    fn the_rule_over_read_manifests_is_the_nearest_table_that_holds_the_package() {
        let outer = workspace_table(
            Path::new(""),
            "[workspace]\nmembers = [\"crates/*\"]\nexclude = [\"crates/out\"]\n",
        )
        .expect("a workspace");
        let member = |dir: &'static str| Membership {
            dir: Path::new(dir),
            own_workspace: false,
            workspace_path: None,
        };
        assert_eq!(owner(member("crates/a"), Some(&outer)), PathBuf::from(""));
        assert_eq!(
            owner(member("crates/out"), Some(&outer)),
            PathBuf::from("crates/out")
        );
        assert_eq!(owner(member("tools"), Some(&outer)), PathBuf::from("tools"));
        assert_eq!(
            owner(
                Membership {
                    own_workspace: true,
                    ..member("crates/a")
                },
                Some(&outer)
            ),
            PathBuf::from("crates/a")
        );
        assert_eq!(
            owner(
                Membership {
                    workspace_path: Some(Path::new("../..")),
                    ..member("deep/x/y")
                },
                None
            ),
            PathBuf::from("deep")
        );
    }

    #[test]
    fn on_disk_the_owner_is_the_nearest_workspace_that_holds_the_package() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        let write = |rel: &str, text: &str| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        write(
            "Cargo.toml",
            "[workspace]\nmembers = [\"server\", \"nested/*\"]\nexclude = [\"excluded\"]\n",
        );
        write("server/Cargo.toml", "[package]\nname = \"server\"\n");
        write("server/src/lib.rs", "");
        // This repository's `examples/`: an empty `[workspace]` of its own.
        write(
            "examples/Cargo.toml",
            "[package]\nname = \"shop\"\n[workspace]\n",
        );
        write("examples/src/handlers.rs", "");
        write("excluded/Cargo.toml", "[package]\nname = \"out\"\n");
        write("excluded/src/main.rs", "");
        write("loose/Cargo.toml", "[package]\nname = \"loose\"\n");
        write("loose/src/main.rs", "");
        // A workspace inside a member's folder of the outer one: the inner one owns its own.
        write(
            "nested/inner/Cargo.toml",
            "[workspace]\nmembers = [\"crates/*\"]\n",
        );
        write(
            "nested/inner/crates/a/Cargo.toml",
            "[package]\nname = \"a\"\n",
        );
        write("nested/inner/crates/a/src/lib.rs", "");
        write("docs/notes.rs", "");
        let owner = |rel: &str| owning_workspace(&root.join(rel));
        assert_eq!(owner("server/src/lib.rs"), Some(root.clone()));
        assert_eq!(
            owner("examples/src/handlers.rs"),
            Some(root.join("examples"))
        );
        assert_eq!(owner("excluded/src/main.rs"), Some(root.join("excluded")));
        // Not listed in `members`: Cargo would refuse it as a member, so it stands alone.
        assert_eq!(owner("loose/src/main.rs"), Some(root.join("loose")));
        assert_eq!(
            owner("nested/inner/crates/a/src/lib.rs"),
            Some(root.join("nested/inner"))
        );
        assert_eq!(owner("server"), Some(root.clone()));
        assert_eq!(owner("docs/notes.rs"), Some(root.clone()));
    }
}
