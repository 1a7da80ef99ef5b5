//! Crate facts from `Cargo.toml`: name, edition and dependencies, and workspace membership.

use serde::Serialize;
use std::path::{Path, PathBuf};

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
    for (section, suffix) in [("dependencies", ""), ("dev-dependencies", " (dev)")] {
        let Some(deps) = value.get(section).and_then(|d| d.as_table()) else {
            continue;
        };
        for (dep, spec) in deps {
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
    Ok(Some(CrateFacts {
        dir: dir.to_path_buf(),
        name,
        edition,
        dependencies,
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
}
