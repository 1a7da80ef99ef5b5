//! The scratch copy the tester runs in: the workspace's tracked and untracked-not-ignored files
//! with the run's change on top, kept in a per-workspace folder under the system's temporary
//! folder, never inside the user's tree.
//!
//! The copy is synchronised rather than rebuilt: a file whose bytes already match is left alone
//! (its modification time too, so that cargo's freshness check keeps the crate's build), a file
//! that differs is written anew (its time is now, newer than any build made from the old text,
//! so cargo rebuilds it), and anything else in the copy (a file a test wrote, a file the change
//! no longer has) is removed. Files are plain copies, never hard links: a test that writes a
//! file of its copy must not write the user's.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Folders never copied: build output, version control, Conductor's own folder.
const SKIPPED_FOLDERS: [&str; 3] = ["target", ".git", ".conductor"];

/// The largest file copied; a larger one (a data blob) is left out and named in the result.
const MAX_COPIED_FILE: u64 = 64 * 1024 * 1024;

/// What a synchronisation did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// The hash of the workspace's own files (before the change): the baseline's cache key.
    pub base_hash: String,
    /// The files the copy holds.
    pub files: usize,
    /// Files written (new or different).
    pub written: usize,
    /// Files removed from the copy.
    pub removed: usize,
    /// Files left out (too large, unreadable, symlinks leaving the workspace).
    pub left_out: Vec<String>,
}

/// The relative paths (`/`-separated) of the files that make up the workspace at `root`: with
/// git, the tracked and the untracked-not-ignored files; without, a walk. Build output,
/// `.git/` and `.conductor/` are never included.
pub fn workspace_files(root: &Path) -> Vec<String> {
    let listed = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-co", "--exclude-standard", "-z"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success());
    let mut files: Vec<String> = match listed {
        Some(out) => out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .filter_map(|p| std::str::from_utf8(p).ok().map(str::to_string))
            .collect(),
        None => {
            let mut out = Vec::new();
            walk(root, root, &mut out);
            out
        }
    };
    files.retain(|f| !skipped(f));
    files.sort();
    files.dedup();
    files
}

fn skipped(rel: &str) -> bool {
    rel.split('/')
        .any(|part| SKIPPED_FOLDERS.contains(&part) || part == "..")
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        if kind.is_dir() {
            if SKIPPED_FOLDERS.iter().any(|s| name == *s) {
                continue;
            }
            walk(root, &path, out);
        } else if (kind.is_file() || kind.is_symlink())
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(crate::orchestrator::relative(Path::new(""), rel));
        }
    }
}

/// Reads a workspace file for the copy: a regular file, or a symlink that resolves to a
/// regular file inside the workspace (copied as a plain file). `None`: left out.
fn read_source(root: &Path, rel: &str) -> Option<Vec<u8>> {
    let path = root.join(rel);
    let meta = fs::symlink_metadata(&path).ok()?;
    let real = if meta.file_type().is_symlink() {
        let real = path.canonicalize().ok()?;
        if !real.starts_with(root) {
            return None;
        }
        real
    } else {
        path
    };
    let meta = fs::metadata(&real).ok()?;
    if !meta.is_file() || meta.len() > MAX_COPIED_FILE {
        return None;
    }
    fs::read(&real).ok()
}

/// Makes `work` hold exactly the workspace `files` of `root`, with `changes` (relative path →
/// new text) on top. `work` must not be inside `root`.
pub fn sync(
    root: &Path,
    files: &[String],
    changes: &BTreeMap<String, String>,
    work: &Path,
) -> Result<SyncReport> {
    if work.starts_with(root) {
        bail!(
            "the scratch folder {} is inside the workspace {}; refusing to copy the workspace into itself",
            work.display(),
            root.display()
        );
    }
    fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let mut report = SyncReport::default();
    let mut base = Sha256::new();
    let mut keep: HashSet<PathBuf> = HashSet::new();
    let mut all: Vec<&str> = files.iter().map(String::as_str).collect();
    for rel in changes.keys() {
        if !files.iter().any(|f| f == rel) {
            all.push(rel);
        }
    }
    for rel in all {
        if skipped(rel) {
            continue;
        }
        let source = read_source(root, rel);
        if let Some(bytes) = &source {
            base.update((rel.len() as u64).to_le_bytes());
            base.update(rel.as_bytes());
            base.update((bytes.len() as u64).to_le_bytes());
            base.update(bytes);
        }
        let content: &[u8] = match (changes.get(rel), &source) {
            (Some(text), _) => text.as_bytes(),
            (None, Some(bytes)) => bytes,
            (None, None) => {
                report.left_out.push(rel.to_string());
                continue;
            }
        };
        let dest = work.join(rel);
        keep.insert(dest.clone());
        report.files += 1;
        // Unchanged bytes: leave the file, and its time, as they are.
        if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file())
            && fs::read(&dest).is_ok_and(|old| old == content)
        {
            continue;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        // A symlink or folder in the way is removed first, so the write cannot follow it.
        if let Ok(meta) = fs::symlink_metadata(&dest) {
            if meta.is_dir() {
                fs::remove_dir_all(&dest)
            } else {
                fs::remove_file(&dest)
            }
            .with_context(|| format!("removing {}", dest.display()))?;
        }
        let mut file =
            fs::File::create(&dest).with_context(|| format!("writing {}", dest.display()))?;
        file.write_all(content)
            .with_context(|| format!("writing {}", dest.display()))?;
        report.written += 1;
    }
    // A workspace without a lock file gets one from cargo in the copy; keeping it spares
    // resolving the dependencies again on every run.
    if !root.join("Cargo.lock").exists() {
        keep.insert(work.join("Cargo.lock"));
    }
    report.removed = prune(work, &keep);
    report.base_hash = format!("{:x}", base.finalize());
    Ok(report)
}

/// Removes everything under `dir` that is not in `keep` (nor a folder on the way to it);
/// returns how many files went.
fn prune(dir: &Path, keep: &HashSet<PathBuf>) -> usize {
    let mut removed = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            removed += prune(&path, keep);
            if fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none()) {
                let _ = fs::remove_dir(&path);
            }
        } else if !keep.contains(&path) && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_holds_the_workspace_with_the_change_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("ws");
        let work = dir.path().join("work");
        fs::create_dir_all(root.join("src")).expect("mkdir");
        fs::create_dir_all(root.join("target/debug")).expect("mkdir");
        fs::write(root.join("src/lib.rs"), "fn a() {}\n").expect("write");
        fs::write(root.join("README.md"), "hi\n").expect("write");
        fs::write(root.join("target/debug/big"), "build output").expect("write");
        let files = workspace_files(&root);
        assert_eq!(files, ["README.md", "src/lib.rs"]);
        let mut changes = BTreeMap::new();
        changes.insert("src/lib.rs".to_string(), "fn b() {}\n".to_string());
        changes.insert("src/new.rs".to_string(), "fn c() {}\n".to_string());
        let first = sync(&root, &files, &changes, &work).expect("sync");
        assert_eq!((first.files, first.written), (3, 3));
        assert_eq!(
            fs::read_to_string(work.join("src/lib.rs")).expect("read"),
            "fn b() {}\n"
        );
        // The user's file is untouched, and the copy is not a hard link to it.
        assert_eq!(
            fs::read_to_string(root.join("src/lib.rs")).expect("read"),
            "fn a() {}\n"
        );
        fs::write(work.join("README.md"), "written by a test\n").expect("write");
        fs::write(work.join("stray.txt"), "left by a test\n").expect("write");
        assert_eq!(
            fs::read_to_string(root.join("README.md")).expect("read"),
            "hi\n"
        );
        // Back to the plain workspace: the change and the stray file go, the file a test
        // overwrote is restored, the unchanged file is not rewritten.
        let again = sync(&root, &files, &BTreeMap::new(), &work).expect("sync");
        assert_eq!((again.files, again.written, again.removed), (2, 2, 2));
        assert!(!work.join("stray.txt").exists() && !work.join("src/new.rs").exists());
        assert_eq!(
            first.base_hash, again.base_hash,
            "the base ignores the change"
        );
        let third = sync(&root, &files, &BTreeMap::new(), &work).expect("sync");
        assert_eq!(third.written, 0);
        assert!(sync(&root, &files, &BTreeMap::new(), &root.join("inside")).is_err());
    }
}
