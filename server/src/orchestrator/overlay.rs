//! The run's in-memory copy of the workspace: every file the run reads is read once (from the
//! open document's snapshot when there is one, else from disk) and remembered as the base the
//! change is computed against; the coder's blocks and the mechanical fixes change only this
//! copy. At the end, the difference between base and copy is the proposed change.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{ChangedFile, OpenText, relative};
use crate::editor::{Base, text_hash};
use crate::edits::TextSource;
use crate::util::lock;

/// What a file was when the run first read it.
#[derive(Debug, Clone)]
struct Original {
    bytes: Option<Vec<u8>>,
    base: Base,
}

/// The copy. Reads take a short lock; nothing is held across an `.await`.
#[derive(Debug)]
pub struct Overlay {
    root: PathBuf,
    open: Arc<HashMap<PathBuf, OpenText>>,
    max_bytes: u64,
    originals: Mutex<HashMap<PathBuf, Original>>,
    /// Changed texts, by path, in a stable order for presenting.
    changed: Mutex<BTreeMap<PathBuf, String>>,
}

impl Overlay {
    /// A copy of the workspace at `root`, reading open documents from `open`, refusing files
    /// larger than `max_bytes`.
    pub fn new(root: &Path, open: Arc<HashMap<PathBuf, OpenText>>, max_bytes: u64) -> Self {
        Self {
            root: root.to_path_buf(),
            open,
            max_bytes,
            originals: Mutex::default(),
            changed: Mutex::default(),
        }
    }

    fn original(&self, path: &Path) -> io::Result<Original> {
        if let Some(found) = lock(&self.originals).get(path) {
            return Ok(found.clone());
        }
        let original = match self.open.get(path) {
            Some(open) => Original {
                bytes: Some(open.text.clone().into_bytes()),
                base: open.base.clone(),
            },
            None => match crate::util::read_regular_file(path, self.max_bytes) {
                Ok(bytes) => Original {
                    base: Base::Disk {
                        hash: text_hash(&bytes),
                    },
                    bytes: Some(bytes),
                },
                Err(err) if err.kind() == io::ErrorKind::NotFound => Original {
                    bytes: None,
                    base: Base::Missing,
                },
                Err(err) => return Err(err),
            },
        };
        // The first read wins: a file that changes on disk later is still compared with what
        // the run saw, and the editor refuses to apply over the newer text.
        Ok(lock(&self.originals)
            .entry(path.to_path_buf())
            .or_insert(original)
            .clone())
    }

    /// The current text of `path` in the copy (`None`: no such file), or why it cannot be read.
    pub fn text(&self, path: &Path) -> io::Result<Option<String>> {
        if let Some(text) = lock(&self.changed).get(path) {
            return Ok(Some(text.clone()));
        }
        match self.original(path)?.bytes {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| io::Error::other(format!("{} is not UTF-8", path.display()))),
        }
    }

    /// Replaces the copy's text of `path` (already read through [`Overlay::text`] or the
    /// [`TextSource`]).
    pub fn set(&self, path: &Path, text: String) {
        lock(&self.changed).insert(path.to_path_buf(), text);
    }

    /// The identity of what the run first read of `path`, if it read it.
    pub fn base(&self, path: &Path) -> Option<Base> {
        lock(&self.originals).get(path).map(|o| o.base.clone())
    }

    /// The change: every file whose copy differs from what the run first read.
    pub fn changes(&self) -> Vec<ChangedFile> {
        let changed = lock(&self.changed).clone();
        let originals = lock(&self.originals);
        changed
            .into_iter()
            .filter_map(|(real, after)| {
                let original = originals.get(&real)?;
                let before = original
                    .bytes
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned());
                (before.as_deref() != Some(after.as_str())).then(|| ChangedFile {
                    path: relative(&self.root, &real),
                    real,
                    before,
                    after,
                    base: original.base.clone(),
                    applied: None,
                })
            })
            .collect()
    }
}

impl TextSource for Overlay {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        if let Some(text) = lock(&self.changed).get(path) {
            return Ok(Some(text.clone().into_bytes()));
        }
        Ok(self.original(path)?.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_changes_and_the_disk_does_not_and_the_base_is_the_first_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("root");
        let file = root.join("a.rs");
        std::fs::write(&file, "fn a() {}\n").expect("write");
        let overlay = Overlay::new(&root, Arc::default(), 1 << 20);
        assert_eq!(
            overlay.text(&file).expect("read").as_deref(),
            Some("fn a() {}\n")
        );
        overlay.set(&file, "fn b() {}\n".into());
        // The disk changes after the run read it: the base stays what the run saw.
        std::fs::write(&file, "fn c() {}\n").expect("write");
        let changes = overlay.changes();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "a.rs");
        assert_eq!(changes[0].before.as_deref(), Some("fn a() {}\n"));
        assert_eq!(changes[0].after, "fn b() {}\n");
        assert_eq!(
            changes[0].base,
            Base::Disk {
                hash: text_hash(b"fn a() {}\n")
            }
        );
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "fn c() {}\n");
        // A file set back to what it was is no change.
        overlay.set(&file, "fn a() {}\n".into());
        assert!(overlay.changes().is_empty());
    }
}
