//! The tester's baseline cache: what the test command did on an unchanged workspace tree,
//! keyed by the tree's content hash (with the workspace, the command and the sandbox), kept in
//! memory for the session and in `.conductor/tester/baselines.json` so that a restarted
//! server or a new command-line run does not pay for a baseline it already ran.
//!
//! The file is Conductor's own, but it sits in the user's tree and is read as untrusted input:
//! bounded in size, and a file that cannot be read or parsed is an empty cache, rewritten on
//! the next store. It holds at most [`MAX_BASELINES`] entries, the most recent, and only what a
//! comparison needs (the failing tests' names and whether the build broke), never output.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use serde::{Deserialize, Serialize};

/// What the change is compared with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// The tests that failed on the unchanged tree.
    pub failing: BTreeSet<String>,
    /// The command failed without a failing test to show for it (the build broke).
    pub broken: bool,
}

/// The most baselines kept, in memory and on disk.
pub const MAX_BASELINES: usize = 32;

/// The largest cache file read; past it the cache starts empty (a baseline holds names only,
/// so 32 of them come nowhere near this).
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The most failing-test names one stored baseline keeps; a baseline with more is kept in
/// memory only (a tree that fails that many tests is not worth a big file).
const MAX_STORED_NAMES: usize = 5_000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// SHA-256 of the cache key.
    key: String,
    /// When it was stored, milliseconds since the epoch (the oldest goes first).
    at_ms: u64,
    #[serde(flatten)]
    baseline: Baseline,
}

/// The cache key of `key` in the workspace at `root`.
fn hash(root: &Path, key: &str) -> String {
    crate::editor::text_hash(format!("{}\n{key}", root.display()).as_bytes())
}

static MEMORY: LazyLock<Mutex<HashMap<String, Arc<Baseline>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The cache file of the workspace at `root`.
pub fn path(root: &Path) -> PathBuf {
    root.join(".conductor")
        .join("tester")
        .join("baselines.json")
}

fn read_file(root: &Path) -> File {
    crate::util::read_regular_text(&path(root), MAX_FILE_BYTES)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// The baseline of `key` in the workspace at `root`: from memory, else from the file.
pub fn load(root: &Path, key: &str) -> Option<Arc<Baseline>> {
    let hashed = hash(root, key);
    if let Some(found) = crate::util::lock(&MEMORY).get(&hashed) {
        return Some(found.clone());
    }
    let entry = read_file(root)
        .entries
        .into_iter()
        .find(|e| e.key == hashed)?;
    let baseline = Arc::new(entry.baseline);
    remember(&hashed, baseline.clone());
    Some(baseline)
}

fn remember(hashed: &str, baseline: Arc<Baseline>) {
    let mut memory = crate::util::lock(&MEMORY);
    // A long session sees many tree states; the cache keeps the recent few.
    if memory.len() >= MAX_BASELINES {
        memory.clear();
    }
    memory.insert(hashed.to_string(), baseline);
}

/// Stores the baseline of `key`: in memory, and in the workspace's cache file (the oldest
/// entries dropped past [`MAX_BASELINES`]). A file that cannot be written leaves the memory
/// cache alone and is logged: the next run pays for its own baseline, nothing worse.
pub fn store(root: &Path, key: &str, baseline: Baseline) {
    let hashed = hash(root, key);
    let too_big = baseline.failing.len() > MAX_STORED_NAMES;
    remember(&hashed, Arc::new(baseline.clone()));
    if too_big {
        return;
    }
    let mut file = read_file(root);
    file.entries.retain(|e| e.key != hashed);
    file.entries.push(Entry {
        key: hashed,
        at_ms: crate::journal::now_ms(),
        baseline,
    });
    file.entries.sort_by_key(|e| e.at_ms);
    let excess = file.entries.len().saturating_sub(MAX_BASELINES);
    file.entries.drain(..excess);
    if let Err(err) = write_file(root, &file) {
        tracing::warn!(
            "writing the tester's baseline cache {}: {err}",
            path(root).display()
        );
    }
}

fn write_file(root: &Path, file: &File) -> std::io::Result<()> {
    let target = path(root);
    let dir = target.parent().unwrap_or(root);
    std::fs::create_dir_all(dir)?;
    let text = serde_json::to_string(file).map_err(std::io::Error::other)?;
    // Written aside and renamed: a reader (another server on the same tree) never sees half.
    let temp = dir.join(format!("baselines.json.{}.tmp", std::process::id()));
    std::fs::write(&temp, text.as_bytes())?;
    std::fs::rename(&temp, &target).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// Forgets the in-memory cache, as a restarted process would (for tests).
#[cfg(any(test, feature = "testkit"))]
pub fn forget_memory() {
    crate::util::lock(&MEMORY).clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(names: &[&str]) -> Baseline {
        Baseline {
            failing: names.iter().map(|n| n.to_string()).collect(),
            broken: false,
        }
    }

    #[test]
    fn a_stored_baseline_survives_a_restart_and_the_file_keeps_the_most_recent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        store(root, "tree-a", failing(&["tests::old"]));
        forget_memory();
        assert_eq!(
            load(root, "tree-a").as_deref(),
            Some(&failing(&["tests::old"])),
            "read back from .conductor/tester/baselines.json"
        );
        assert!(load(root, "tree-b").is_none());
        for i in 0..MAX_BASELINES + 3 {
            store(root, &format!("tree-{i}"), failing(&[]));
        }
        let file = read_file(root);
        assert_eq!(file.entries.len(), MAX_BASELINES, "bounded");
        forget_memory();
        assert!(
            load(root, "tree-a").is_none(),
            "the oldest entry went first"
        );
        assert!(load(root, &format!("tree-{}", MAX_BASELINES + 2)).is_some());
    }

    #[test]
    fn a_damaged_cache_file_is_an_empty_cache_and_is_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(path(root).parent().expect("parent")).expect("mkdir");
        std::fs::write(path(root), "{not json").expect("write");
        forget_memory();
        assert!(load(root, "tree").is_none());
        store(root, "tree", failing(&["a"]));
        forget_memory();
        assert_eq!(load(root, "tree").as_deref(), Some(&failing(&["a"])));
    }
}
