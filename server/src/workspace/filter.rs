//! The one definition of "this file belongs to the workspace", and the walk that lists the
//! files it admits.
//!
//! A path is admitted when no component of it, relative to the root, is rejected. A component is
//! rejected when it is hidden (its name starts with `.`, which covers `.git/` and `.conductor/`),
//! when it is a built-in folder (`target/`, `node_modules/`), when a feature's exclude pattern
//! matches it, or when an ignore file of the workspace ignores it. Feature excludes and ignore
//! files share one pattern language, gitignore's, and the same precedence `rg` uses: the feature's
//! patterns win over `.ignore` files, which win over `.gitignore` files; among files of one kind
//! the deepest folder's decides; a `!pattern` re-admits what a shallower rule ignored, but never
//! a path whose folder is already rejected (as in git).
//!
//! Only ignore files at or below the root are read (not those of parent folders, git's global
//! excludes or `.git/info/exclude`): what belongs to a workspace depends on the workspace alone.
//! Each folder's ignore files are read once per `Filter` and cached, so a `Filter` is rebuilt
//! when an ignore file changes; building one reads nothing.
//!
//! **Symlinks are not followed**, by the walk or by [`Filter::admits`]. A link can point outside
//! the root (the whole disk, someone else's checkout), make a loop, or show the same file twice
//! under two paths (the index would then hold every definition twice, and names would become
//! ambiguous); and the edit applier refuses paths that resolve outside the root, so context
//! drawn from there could never be edited. A folder reached through a link is a workspace of its
//! own: open it as one.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::Context as _;
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Folders that never belong to a workspace, at any depth: build output and installed
/// dependencies. (`.git/` and `.conductor/` are hidden, so they are rejected as such.)
pub const BUILTIN_FOLDERS: &[&str] = &["target", ".git", ".conductor", "node_modules"];

/// The ignore files read in every folder, by kind, most authoritative first.
const IGNORE_FILES: [&str; 2] = [".ignore", ".gitignore"];

/// Decides which paths under a root belong to the workspace. Cheap to build (nothing is read
/// until a path is asked about) and safe to share between threads.
#[derive(Debug)]
pub struct Filter {
    root: PathBuf,
    /// The root with links resolved, to relate paths spelled differently; `None` when the root
    /// does not exist on disk (an index built from texts).
    canonical_root: Option<PathBuf>,
    /// The feature's exclude patterns, rooted at the root.
    excludes: Gitignore,
    /// Whether ignore files are read and links refused; off for files given as text.
    on_disk: bool,
    /// Per folder (relative to the root), its ignore files in [`IGNORE_FILES`] order.
    ignore_files: RwLock<HashMap<PathBuf, Arc<[Option<Gitignore>; 2]>>>,
    /// Per folder (relative to the root) already asked about, whether it is admitted by the
    /// patterns, so a batch of paths in the same folders matches each folder once.
    folders: RwLock<HashMap<PathBuf, bool>>,
}

/// What a walk found: the admitted files and the entries it could not read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Walk {
    /// The admitted files, sorted, spelled as the start folder joined with their path below it.
    pub files: Vec<PathBuf>,
    /// Folders or entries that could not be read, with why.
    pub errors: Vec<(PathBuf, String)>,
}

impl Filter {
    /// A filter for the workspace at `root` with a feature's `excludes` (gitignore syntax,
    /// relative to the root). `key` names the setting in errors, such as `context.exclude`.
    pub fn new(root: &Path, excludes: &[String], key: &str) -> anyhow::Result<Filter> {
        let mut builder = GitignoreBuilder::new(root);
        for pattern in excludes {
            builder
                .add_line(None, pattern)
                .with_context(|| format!("{key}: invalid pattern `{pattern}`"))?;
        }
        let excludes = builder
            .build()
            .with_context(|| format!("{key}: compiling the patterns"))?;
        Ok(Filter {
            root: root.to_path_buf(),
            canonical_root: root.canonicalize().ok(),
            excludes,
            on_disk: true,
            ignore_files: RwLock::new(HashMap::new()),
            folders: RwLock::new(HashMap::new()),
        })
    }

    /// Like [`new`](Self::new) for files that are not read from disk (the blobs of a git
    /// commit): built-in folders, hidden paths and `excludes` apply, and the disk is never
    /// read (no ignore files, no link check).
    pub fn detached(root: &Path, excludes: &[String], key: &str) -> anyhow::Result<Filter> {
        let mut filter = Filter::new(root, excludes, key)?;
        filter.on_disk = false;
        filter.canonical_root = None;
        Ok(filter)
    }

    /// A filter with no feature excludes: the built-in folders, hidden paths and ignore files.
    pub fn plain(root: &Path) -> Filter {
        Filter {
            root: root.to_path_buf(),
            canonical_root: root.canonicalize().ok(),
            excludes: Gitignore::empty(),
            on_disk: true,
            ignore_files: RwLock::new(HashMap::new()),
            folders: RwLock::new(HashMap::new()),
        }
    }

    /// The root as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `path` (absolute, or relative to the root) belongs to the workspace, taken as a
    /// file. Decided from the path's components and the patterns, so it answers for files that
    /// no longer exist (a deletion event); the disk is read only for ignore files and to refuse
    /// a path that passes through a symlink. A path outside the root is not admitted.
    pub fn admits(&self, path: &Path) -> bool {
        let Some(rel) = self.relative(path) else {
            return false;
        };
        self.admits_relative(&rel, false)
    }

    /// Like [`admits`](Self::admits) for a folder: whether files below it may belong.
    pub fn admits_folder(&self, path: &Path) -> bool {
        match self.relative(path) {
            Some(rel) if rel.as_os_str().is_empty() => true,
            Some(rel) => self.admits_relative(&rel, true),
            None => false,
        }
    }

    fn admits_relative(&self, rel: &Path, is_dir: bool) -> bool {
        if rel.as_os_str().is_empty() {
            return false;
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        self.folder_admitted(parent) && !self.rejects(rel, is_dir) && !self.through_symlink(rel)
    }

    /// Whether the patterns admit folder `rel` and every folder above it (the root always),
    /// remembered per folder.
    fn folder_admitted(&self, rel: &Path) -> bool {
        if rel.as_os_str().is_empty() {
            return true;
        }
        if let Some(&known) = self
            .folders
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(rel)
        {
            return known;
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        let admitted = self.folder_admitted(parent) && !self.rejects(rel, true);
        self.folders
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(rel.to_path_buf(), admitted);
        admitted
    }

    /// Whether the last component of `rel` is rejected, its folders having been admitted. This
    /// is the whole per-entry decision: [`admits`](Self::admits) asks it of every prefix, the
    /// walk of every entry it meets, so the two cannot disagree.
    fn rejects(&self, rel: &Path, is_dir: bool) -> bool {
        let Some(name) = rel.file_name().and_then(OsStr::to_str) else {
            // A name that is not UTF-8 cannot be matched reliably; it is left out.
            return true;
        };
        if name.starts_with('.') || (is_dir && BUILTIN_FOLDERS.contains(&name)) {
            return true;
        }
        let full = self.root.join(rel);
        match self.excludes.matched(&full, is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
        if !self.on_disk {
            return false;
        }
        // Deepest folder first, as the module docs say.
        let levels: Vec<Arc<[Option<Gitignore>; 2]>> = rel
            .ancestors()
            .skip(1)
            .map(|folder| self.ignore_files_of(folder))
            .collect();
        for kind in 0..IGNORE_FILES.len() {
            for matchers in &levels {
                let Some(matcher) = &matchers[kind] else {
                    continue;
                };
                match matcher.matched(&full, is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
        }
        false
    }

    /// Whether an existing component of `rel` is a symlink (see the module docs).
    fn through_symlink(&self, rel: &Path) -> bool {
        if !self.on_disk {
            return false;
        }
        let mut path = self.root.clone();
        for name in rel.iter() {
            path.push(name);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => return true,
                Ok(_) => {}
                // What does not exist (any more) cannot be a link, nor can anything below it.
                Err(_) => return false,
            }
        }
        false
    }

    /// The ignore files of `folder` (relative to the root), read on first use.
    fn ignore_files_of(&self, folder: &Path) -> Arc<[Option<Gitignore>; 2]> {
        if let Some(found) = self
            .ignore_files
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(folder)
        {
            return found.clone();
        }
        let dir = self.root.join(folder);
        let read = |name: &str| {
            let path = dir.join(name);
            if !path.is_file() {
                return None;
            }
            let mut builder = GitignoreBuilder::new(&dir);
            if let Some(err) = builder.add(&path) {
                // A bad line loses only itself; the file's other patterns still apply.
                tracing::debug!("{}: {err}", path.display());
            }
            match builder.build() {
                Ok(matcher) if !matcher.is_empty() => Some(matcher),
                Ok(_) => None,
                Err(err) => {
                    tracing::debug!("{}: {err}", path.display());
                    None
                }
            }
        };
        let matchers = Arc::new([read(IGNORE_FILES[0]), read(IGNORE_FILES[1])]);
        self.ignore_files
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(folder.to_path_buf(), matchers.clone());
        matchers
    }

    /// `path` relative to the root, or `None` when it is outside (or climbs out with `..`).
    /// A relative path is taken as relative to the root.
    pub fn relative(&self, path: &Path) -> Option<PathBuf> {
        let rel = match path.strip_prefix(&self.root) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) if path.is_absolute() => {
                let canonical_root = self.canonical_root.as_ref()?;
                canonical_relative(path, canonical_root)?
            }
            Err(_) => path.to_path_buf(),
        };
        let rel: PathBuf = rel
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        rel.components()
            .all(|c| matches!(c, Component::Normal(_)))
            .then_some(rel)
    }

    /// Lists the admitted files at or below `start` (a folder under the root, or the root
    /// itself), without following symlinks. A `start` that is itself not admitted lists nothing.
    pub fn walk(&self, start: &Path) -> Walk {
        let mut walk = Walk::default();
        // The start folder exists, so its links are resolved to relate it to the root whatever
        // the caller's spelling (`.`, a relative path from another folder).
        let start_rel = match start.canonicalize() {
            Ok(canonical) => self
                .canonical_root
                .as_deref()
                .and_then(|root| canonical.strip_prefix(root).ok())
                .map(Path::to_path_buf),
            Err(err) => {
                walk.errors.push((start.to_path_buf(), err.to_string()));
                return walk;
            }
        };
        let Some(start_rel) = start_rel else {
            walk.errors
                .push((start.to_path_buf(), "is outside the workspace".into()));
            return walk;
        };
        if !start_rel.as_os_str().is_empty() && !self.admits_relative(&start_rel, true) {
            return walk;
        }
        // (folder as the caller spells it, the same folder relative to the root)
        let mut pending = vec![(start.to_path_buf(), start_rel)];
        while let Some((dir, dir_rel)) = pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(err) => {
                    walk.errors.push((dir, err.to_string()));
                    continue;
                }
            };
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(err) => {
                        walk.errors.push((dir.clone(), err.to_string()));
                        continue;
                    }
                };
                let Ok(file_type) = entry.file_type() else {
                    walk.errors
                        .push((entry.path(), "cannot read its file type".into()));
                    continue;
                };
                let rel = dir_rel.join(entry.file_name());
                if file_type.is_dir() {
                    if !self.rejects(&rel, true) {
                        pending.push((entry.path(), rel));
                    }
                } else if file_type.is_file() && !self.rejects(&rel, false) {
                    walk.files.push(entry.path());
                }
                // Symlinks are neither files nor folders here: not followed (module docs).
            }
        }
        walk.files.sort();
        walk
    }
}

/// `path` relative to `canonical_root` once links are resolved in the longest part of it that
/// exists (the rest may be a deleted file or folder).
fn canonical_relative(path: &Path, canonical_root: &Path) -> Option<PathBuf> {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            let mut rel = canonical.strip_prefix(canonical_root).ok()?.to_path_buf();
            rel.extend(rest.iter().rev());
            return Some(rel);
        }
        rest.push(existing.file_name()?);
        existing = existing.parent()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    fn listed(filter: &Filter, root: &Path) -> Vec<String> {
        filter
            .walk(root)
            .files
            .iter()
            .map(|f| {
                let rel = f.strip_prefix(root).expect("under root");
                rel.to_string_lossy().replace('\\', "/")
            })
            .collect()
    }

    const TREE: &[(&str, &str)] = &[
        ("src/lib.rs", ""),
        ("src/gen/out.rs", ""),
        ("src/gen/keep.rs", ""),
        ("src/.hidden.rs", ""),
        ("target/debug/build/x/out/gen.rs", ""),
        ("crates/a/target/release/y.rs", ""),
        ("node_modules/pkg/index.js", ""),
        (".git/config", ""),
        (".conductor/runs/r.jsonl", ""),
        ("vendor/v.rs", ""),
        ("third_party/deep/t.rs", ""),
        ("docs/notes.md", ""),
        ("ignored/skip.rs", ""),
        ("logs/app.log", ""),
        ("logs/keep.log", ""),
        ("nested/.gitignore", "*.tmp\n!important.tmp\n"),
        ("nested/a.tmp", ""),
        ("nested/important.tmp", ""),
        ("nested/b.rs", ""),
        ("sub/.ignore", "!forced.rs\n"),
        ("sub/forced.rs", ""),
        ("sub/plain.rs", ""),
        (
            ".gitignore",
            "ignored/\n*.log\n!keep.log\nsrc/gen/*\n!src/gen/keep.rs\nsub/forced.rs\n",
        ),
    ];

    #[test]
    fn the_walk_lists_exactly_what_admits_accepts() {
        let dir = workspace(TREE);
        let root = dir.path();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("src"), root.join("linked")).expect("symlink");
        let excludes = vec!["vendor/".to_string(), "third_party".to_string()];
        let filter = Filter::new(root, &excludes, "test.exclude").expect("filter");
        let walked = listed(&filter, root);
        assert_eq!(
            walked,
            [
                "docs/notes.md",
                "logs/keep.log",
                "nested/b.rs",
                "nested/important.tmp",
                "src/gen/keep.rs",
                "src/lib.rs",
                "sub/forced.rs",
                "sub/plain.rs",
            ]
        );
        // Every file on disk, and some that are not (deleted), get the same answer from
        // `admits` as from the walk.
        let mut candidates: Vec<String> = TREE.iter().map(|(p, _)| p.to_string()).collect();
        candidates.extend(["target/gone.rs", "src/gone.rs", "vendor/gone/x.rs"].map(String::from));
        #[cfg(unix)]
        candidates.push("linked/lib.rs".into());
        for rel in &candidates {
            let expected = walked.contains(rel) || rel == "src/gone.rs";
            assert_eq!(
                filter.admits(&root.join(rel)),
                expected,
                "admits({rel}) disagrees with the walk"
            );
            assert_eq!(filter.admits(Path::new(rel)), expected, "relative {rel}");
        }
    }

    #[test]
    fn paths_outside_the_root_or_climbing_out_are_not_admitted() {
        let dir = workspace(&[("src/lib.rs", "")]);
        let filter = Filter::plain(dir.path());
        assert!(filter.admits(&dir.path().join("src/lib.rs")));
        assert!(!filter.admits(Path::new("/elsewhere/lib.rs")));
        assert!(!filter.admits(Path::new("../lib.rs")));
        assert!(!filter.admits(&dir.path().join("src/../../x.rs")));
        // A spelling through `.` is the same file.
        assert!(filter.admits(&dir.path().join("./src/lib.rs")));
    }

    #[test]
    fn a_walk_from_a_subfolder_uses_the_root_patterns() {
        let dir = workspace(&[
            ("src/a.rs", ""),
            ("src/generated/b.rs", ""),
            ("target/c.rs", ""),
        ]);
        let filter =
            Filter::new(dir.path(), &["/src/generated/".into()], "x.exclude").expect("filter");
        let walk = filter.walk(&dir.path().join("src"));
        assert_eq!(walk.files, [dir.path().join("src/a.rs")]);
        assert!(filter.walk(&dir.path().join("target")).files.is_empty());
    }

    #[test]
    fn a_bad_pattern_names_the_setting() {
        let err = Filter::new(Path::new("/ws"), &["src/{a,b".into()], "context.exclude")
            .expect_err("invalid glob");
        assert!(format!("{err:#}").contains("context.exclude"), "{err:#}");
    }
}
