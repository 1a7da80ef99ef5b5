//! Confinement: which paths an edit may write. A path is relative to the workspace root; `..`,
//! absolute paths and symlinks that resolve outside the root are refused, and the folders and
//! files that steer git, Conductor itself or an editor are never written. The check runs on the
//! path as written, again on the real path after resolving symlinks, and [`Workspace::recheck`]
//! repeats it right before a write, so a symlink swapped in meanwhile is caught.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Folders never written, at any depth (compared ignoring ASCII case, since case-insensitive
/// file systems would let `.GIT/config` reach `.git/config`).
pub const PROTECTED_FOLDERS: &[&str] =
    &[".git", ".conductor", ".vscode", ".idea", ".zed", ".helix"];

/// File names never written, at any depth: Conductor's configuration, Neovim's per-project
/// settings, and a `.git` file (how a submodule or worktree points at its repository).
pub const PROTECTED_FILES: &[&str] = &["conductor.toml", ".nvim.lua", ".git"];

/// Why a path may not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unconfined {
    /// Absolute, `..`, empty, or resolving (through a symlink) outside the root.
    Outside(String),
    /// Inside the root but protected; names the protected part.
    Protected(String),
    /// Exists but is not a regular file (a folder, a socket, a dangling symlink).
    NotAFile(String),
}

impl std::fmt::Display for Unconfined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unconfined::Outside(why) => write!(f, "outside the workspace: {why}"),
            Unconfined::Protected(p) => write!(f, "`{p}` is protected and never written"),
            Unconfined::NotAFile(why) => write!(f, "{why}"),
        }
    }
}

/// A path that may be written: as the reply named it (normalised) and where it really is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confined {
    /// Relative to the root, `/`-separated, without `.` parts.
    pub relative: String,
    /// The absolute path after resolving symlinks of the parts that exist.
    pub real: PathBuf,
}

/// A workspace root, resolved once.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

fn protected_part(parts: &[&str]) -> Option<String> {
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        let folder = i < last
            && PROTECTED_FOLDERS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(part));
        let file = i == last
            && (PROTECTED_FILES.iter().any(|p| p.eq_ignore_ascii_case(part))
                || PROTECTED_FOLDERS
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(part)));
        if folder || file {
            return Some(parts[..=i].join("/"));
        }
    }
    None
}

impl Workspace {
    /// Resolves `root` (it must exist).
    pub fn new(root: &Path) -> io::Result<Self> {
        Ok(Self {
            root: root.canonicalize()?,
        })
    }

    /// The resolved root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Confines `path` as a reply wrote it.
    pub fn confine(&self, path: &str) -> Result<Confined, Unconfined> {
        if path.contains('\0') {
            return Err(Unconfined::Outside(format!("{path:?} contains a NUL byte")));
        }
        let drive = path.len() >= 2
            && path.as_bytes()[1] == b':'
            && path.as_bytes()[0].is_ascii_alphabetic();
        if path.starts_with('/') || path.starts_with('\\') || drive || Path::new(path).is_absolute()
        {
            return Err(Unconfined::Outside(format!(
                "{path} is an absolute path; paths are relative to the workspace root"
            )));
        }
        // A backslash is taken as a separator too: a file name with one is rare, and a Windows
        // path `..\x` must not slip through as one odd name.
        let mut parts = Vec::new();
        for part in path.split(['/', '\\']) {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(Unconfined::Outside(format!(
                        "{path} leaves the workspace (`..`)"
                    )));
                }
                p => parts.push(p),
            }
        }
        if parts.is_empty() {
            return Err(Unconfined::Outside(format!("{path:?} names no file")));
        }
        if let Some(p) = protected_part(&parts) {
            return Err(Unconfined::Protected(p));
        }
        let relative = parts.join("/");
        let real = self.resolve(&parts, &relative)?;
        Ok(Confined { relative, real })
    }

    /// Confines the path again, right before a write: it must still resolve to the same place.
    pub fn recheck(&self, confined: &Confined) -> Result<(), Unconfined> {
        let again = self.confine(&confined.relative)?;
        if again.real != confined.real {
            return Err(Unconfined::Outside(format!(
                "{} now resolves to {} instead of {} (a symlink changed since the edit was planned)",
                confined.relative,
                again.real.display(),
                confined.real.display()
            )));
        }
        Ok(())
    }

    /// The real path: the longest existing prefix resolved, then the parts that do not exist
    /// yet (which cannot be symlinks). Refuses what lands outside the root or on a protected name.
    fn resolve(&self, parts: &[&str], relative: &str) -> Result<PathBuf, Unconfined> {
        let mut existing = self.root.clone();
        let mut n = 0;
        for part in parts {
            let next = existing.join(part);
            if std::fs::symlink_metadata(&next).is_err() {
                break;
            }
            existing = next;
            n += 1;
        }
        let resolved = existing.canonicalize().map_err(|err| {
            Unconfined::NotAFile(format!(
                "{relative}: cannot resolve {}: {err}",
                existing.display()
            ))
        })?;
        let Ok(inside) = resolved.strip_prefix(&self.root) else {
            return Err(Unconfined::Outside(format!(
                "{relative} resolves to {}, outside the workspace",
                resolved.display()
            )));
        };
        let mut real_parts: Vec<String> = inside
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        real_parts.extend(parts[n..].iter().map(|p| p.to_string()));
        let borrowed: Vec<&str> = real_parts.iter().map(String::as_str).collect();
        if let Some(p) = protected_part(&borrowed) {
            return Err(Unconfined::Protected(format!("{relative} resolves to {p}")));
        }
        if borrowed.is_empty() {
            return Err(Unconfined::Outside(format!(
                "{relative} resolves to the workspace root"
            )));
        }
        let real = parts[n..].iter().fold(resolved, |acc, p| acc.join(p));
        if n == parts.len() && !real.is_file() {
            return Err(Unconfined::NotAFile(format!(
                "{relative} is not a regular file"
            )));
        }
        Ok(real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("root/src")).expect("mkdir");
        std::fs::write(dir.path().join("root/src/lib.rs"), "").expect("write");
        let ws = Workspace::new(&dir.path().join("root")).expect("root");
        (dir, ws)
    }

    #[test]
    fn relative_paths_inside_are_confined_and_normalised() {
        let (_dir, ws) = workspace();
        let c = ws.confine("./src//lib.rs").expect("inside");
        assert_eq!(c.relative, "src/lib.rs");
        assert_eq!(c.real, ws.root().join("src/lib.rs"));
        assert!(
            ws.confine("src/new/mod.rs").is_ok(),
            "a new file in a new folder"
        );
    }

    #[test]
    fn escapes_and_protected_names_are_refused() {
        let (_dir, ws) = workspace();
        for path in [
            "../x.rs",
            "src/../../x.rs",
            "/etc/passwd",
            "\\x",
            "C:\\x.rs",
            "src\\..\\..\\x",
            ".",
        ] {
            assert!(
                matches!(ws.confine(path), Err(Unconfined::Outside(_))),
                "{path}"
            );
        }
        for path in [
            ".git/config",
            "a/.GIT/hooks/pre-commit",
            "conductor.toml",
            ".vscode/settings.json",
            "x/.nvim.lua",
            ".conductor/runs/1.jsonl",
            ".git",
        ] {
            assert!(
                matches!(ws.confine(path), Err(Unconfined::Protected(_))),
                "{path}"
            );
        }
        assert!(matches!(ws.confine("src"), Err(Unconfined::NotAFile(_))));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_judged_by_where_they_lead() {
        let (dir, ws) = workspace();
        std::fs::write(dir.path().join("secret.rs"), "").expect("outside file");
        std::os::unix::fs::symlink(dir.path().join("secret.rs"), ws.root().join("out.rs"))
            .expect("link");
        std::os::unix::fs::symlink(dir.path(), ws.root().join("up")).expect("link");
        std::fs::create_dir(ws.root().join(".git")).expect("git");
        std::os::unix::fs::symlink(ws.root().join(".git"), ws.root().join("meta")).expect("link");
        assert!(matches!(ws.confine("out.rs"), Err(Unconfined::Outside(_))));
        assert!(matches!(
            ws.confine("up/new.rs"),
            Err(Unconfined::Outside(_))
        ));
        assert!(matches!(
            ws.confine("meta/config"),
            Err(Unconfined::Protected(_))
        ));
        std::os::unix::fs::symlink(ws.root().join("src/lib.rs"), ws.root().join("alias.rs"))
            .expect("link");
        let c = ws.confine("alias.rs").expect("inside link");
        assert_eq!(c.real, ws.root().join("src/lib.rs"));
        // Swapped for a link to outside after planning: the recheck refuses it.
        std::fs::remove_file(ws.root().join("alias.rs")).expect("rm");
        std::os::unix::fs::symlink(dir.path().join("secret.rs"), ws.root().join("alias.rs"))
            .expect("link");
        assert!(ws.recheck(&c).is_err());
    }
}
