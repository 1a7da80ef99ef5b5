//! Crate facts from `Cargo.toml`: name, edition and dependencies, and workspace membership —
//! which Cargo workspace owns a package, and which crates each dependency name leads to.

use serde::Serialize;
use std::path::{Path, PathBuf};

// The workspace rule lives with the workspace; the crate graph reads it from here too.
use crate::workspace::cargo::package_and_path;
pub use crate::workspace::cargo::{WorkspaceTable, normalise, owning_workspace, workspace_table};

/// What a bundle says about the crate a file belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrateFacts {
    /// The folder holding the `Cargo.toml`, relative to the workspace root (empty for the root).
    pub dir: PathBuf,
    /// `package.name`.
    pub name: String,
    /// `package.edition` (inherited from `[workspace.package]` when so declared); `2015` when
    /// absent, as Cargo assumes.
    pub edition: String,
    /// Dependency names with their version requirement (or `path`/`git`/`workspace` when that is
    /// how they are given), normal dependencies first, then dev-dependencies marked `(dev)`.
    pub dependencies: Vec<String>,
    /// The name code uses for the crate's library: `[lib] name`, else the package name with `-`
    /// as `_`.
    pub lib_name: String,
    /// The dependencies as the crate graph needs them: the name code writes, the package it is,
    /// and where it lives when it is given by path.
    pub links: Vec<Dependency>,
    /// Whether the manifest has a `[workspace]` table of its own (then it owns itself).
    pub own_workspace: bool,
    /// `package.workspace`, the explicit path to the owning workspace, relative to `dir`.
    pub workspace_path: Option<PathBuf>,
    /// The root files of targets placed outside `src/` by `[lib] path` or `[[bin]] path`,
    /// relative to the workspace root: their folder is where those crates' modules live.
    pub roots: Vec<PathBuf>,
}

/// One dependency of a crate, as the crate graph sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    /// The name code writes for it: the key, `-` as `_` (`tui` for
    /// `tui = { package = "helix-tui" }`).
    pub name: String,
    /// The package it is (`helix-tui`).
    pub package: String,
    /// Its folder, relative to the workspace root, when it is given by `path`.
    pub path: Option<PathBuf>,
    /// `{ workspace = true }`: the `[workspace.dependencies]` entry says the rest.
    pub inherited: bool,
    /// A dev-dependency (tests, examples and benches only).
    pub dev: bool,
}

impl CrateFacts {
    /// The facts as a few lines of text, the way a bundle shows them.
    pub fn render(&self) -> String {
        let mut out = format!(
            "crate `{}` (edition {}) at {}\n",
            self.name,
            self.edition,
            if self.dir.as_os_str().is_empty() {
                ".".to_string()
            } else {
                self.dir.display().to_string()
            }
        );
        if self.dependencies.is_empty() {
            out.push_str("no dependencies\n");
        } else {
            out.push_str("dependencies: ");
            out.push_str(&self.dependencies.join(", "));
            out.push('\n');
        }
        out
    }
}

/// Parses a `Cargo.toml`. Returns `None` for a manifest without `[package]` (a virtual
/// workspace manifest) or one that is not valid TOML (the caller notes it).
/// `workspace_edition` is the `[workspace.package] edition` of the enclosing workspace, if any.
pub fn parse_manifest(
    dir: &Path,
    text: &str,
    workspace_edition: Option<&str>,
) -> Result<Option<CrateFacts>, String> {
    let value: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let Some(package) = value.get("package").and_then(|p| p.as_table()) else {
        return Ok(None);
    };
    let name = package
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("?")
        .to_string();
    let edition = match package.get("edition") {
        Some(toml::Value::String(e)) => e.clone(),
        Some(toml::Value::Table(t)) if t.get("workspace").is_some() => {
            workspace_edition.unwrap_or("?").to_string()
        }
        _ => value
            .get("workspace")
            .and_then(|w| w.get("package"))
            .and_then(|p| p.get("edition"))
            .and_then(|e| e.as_str())
            .unwrap_or("2015")
            .to_string(),
    };
    let mut dependencies = Vec::new();
    let mut links = Vec::new();
    // Platform-specific tables (`[target.'cfg(unix)'.dependencies]`) reach the code as well.
    let mut sections: Vec<(&toml::Table, &str)> = Vec::new();
    for (section, suffix) in [("dependencies", ""), ("dev-dependencies", " (dev)")] {
        if let Some(deps) = value.get(section).and_then(|d| d.as_table()) {
            sections.push((deps, suffix));
        }
    }
    if let Some(targets) = value.get("target").and_then(|t| t.as_table()) {
        for target in targets.values() {
            for (section, suffix) in [("dependencies", ""), ("dev-dependencies", " (dev)")] {
                if let Some(deps) = target.get(section).and_then(|d| d.as_table()) {
                    sections.push((deps, suffix));
                }
            }
        }
    }
    for (deps, suffix) in sections {
        for (dep, spec) in deps {
            let (package, path) = package_and_path(dep, spec);
            links.push(Dependency {
                name: dep.replace('-', "_"),
                package,
                path: path.map(|p| normalise(&dir.join(p))),
                inherited: spec.get("workspace").is_some(),
                dev: !suffix.is_empty(),
            });
            let requirement = match spec {
                toml::Value::String(v) => v.clone(),
                toml::Value::Table(t) => {
                    if let Some(v) = t.get("version").and_then(|v| v.as_str()) {
                        v.to_string()
                    } else if t.contains_key("path") {
                        "path".into()
                    } else if t.contains_key("git") {
                        "git".into()
                    } else if t.contains_key("workspace") {
                        "workspace".into()
                    } else {
                        "*".into()
                    }
                }
                _ => "*".into(),
            };
            dependencies.push(format!("{dep} {requirement}{suffix}"));
        }
    }
    let lib_name = value
        .get("lib")
        .and_then(|l| l.get("name"))
        .and_then(|n| n.as_str())
        .map_or_else(|| name.replace('-', "_"), str::to_string);
    let mut roots: Vec<PathBuf> = Vec::new();
    let target_path = |t: &toml::Value| {
        t.get("path")
            .and_then(|p| p.as_str())
            .map(|p| normalise(&dir.join(p)))
    };
    roots.extend(value.get("lib").and_then(target_path));
    if let Some(bins) = value.get("bin").and_then(|b| b.as_array()) {
        roots.extend(bins.iter().filter_map(target_path));
    }
    roots.retain(|r| !r.starts_with(dir.join("src")));
    Ok(Some(CrateFacts {
        roots,
        dir: dir.to_path_buf(),
        lib_name,
        name,
        edition,
        dependencies,
        links,
        own_workspace: value.get("workspace").is_some_and(toml::Value::is_table),
        workspace_path: package
            .get("workspace")
            .and_then(|w| w.as_str())
            .map(PathBuf::from),
    }))
}

/// The `[workspace.package] edition` of a workspace manifest, if it declares one.
pub fn workspace_edition(text: &str) -> Option<String> {
    let value: toml::Table = toml::from_str(text).ok()?;
    value
        .get("workspace")?
        .get("package")?
        .get("edition")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_come_from_the_package_and_its_dependencies() {
        let text = r#"
[package]
name = "demo"
edition.workspace = true
[dependencies]
serde = { version = "1", features = ["derive"] }
anyhow = "1"
local = { path = "../local" }
[dev-dependencies]
expect-test = "1"
"#;
        let facts = parse_manifest(Path::new("crates/demo"), text, Some("2024"))
            .expect("valid")
            .expect("a package");
        assert_eq!(facts.name, "demo");
        assert_eq!(facts.edition, "2024");
        assert_eq!(
            facts.dependencies,
            ["anyhow 1", "local path", "serde 1", "expect-test 1 (dev)"]
        );
        assert!(facts.render().contains("crate `demo` (edition 2024)"));
    }

    #[test]
    fn a_virtual_manifest_has_no_facts_and_broken_toml_is_an_error() {
        assert_eq!(
            parse_manifest(Path::new(""), "[workspace]\nmembers = []\n", None),
            Ok(None)
        );
        assert!(parse_manifest(Path::new(""), "[package\n", None).is_err());
        assert_eq!(
            workspace_edition("[workspace.package]\nedition = \"2021\"\n").as_deref(),
            Some("2021")
        );
    }

    #[test]
    fn renamed_path_and_inherited_dependencies_are_links_of_the_crate_graph() {
        let text = r#"
[package]
name = "helix-term"
workspace = "../.."
[lib]
name = "term"
[dependencies]
tui = { package = "helix-tui", path = "../tui" }
helix-core = { workspace = true }
[target.'cfg(unix)'.dependencies]
libc = "0.2"
[dev-dependencies]
tempfile = "3"
"#;
        let facts = parse_manifest(Path::new("crates/term"), text, None)
            .expect("valid")
            .expect("a package");
        assert_eq!(facts.lib_name, "term");
        assert_eq!(facts.workspace_path, Some(PathBuf::from("../..")));
        assert!(!facts.own_workspace);
        let links: Vec<(&str, &str, Option<&Path>, bool, bool)> = facts
            .links
            .iter()
            .map(|d| {
                (
                    d.name.as_str(),
                    d.package.as_str(),
                    d.path.as_deref(),
                    d.inherited,
                    d.dev,
                )
            })
            .collect();
        assert_eq!(
            links,
            [
                ("helix_core", "helix-core", None, true, false),
                (
                    "tui",
                    "helix-tui",
                    Some(Path::new("crates/tui")),
                    false,
                    false
                ),
                ("tempfile", "tempfile", None, false, true),
                ("libc", "libc", None, false, false),
            ]
        );
    }
}
