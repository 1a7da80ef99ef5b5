//! The live scan of open documents, in plain data: each document's generation (the latest
//! change wins), its per-item [`ScanCache`], each workspace file's view of its crate's
//! summaries (from the latest workspace scan, followed as open documents change), and the
//! scan of one snapshot.
//!
//! Nothing here knows the protocol: `lsp::security` keeps a [`LiveScans`] under the same lock
//! as what it published, debounces, runs [`scan_snapshot`] off the async threads, converts
//! the findings and publishes them only while their generation is still the latest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::{CrateView, Finding, ScanCache, SecuritySettings};
use crate::app::App;
use crate::document::Snapshot;

/// The live scans' state of one session.
#[derive(Debug, Default)]
pub struct LiveScans {
    /// The latest generation of each open document; generations come from one counter, so an
    /// entry can be dropped when its document closes (a reopened document never reuses one).
    generation: HashMap<String, u64>,
    next_generation: u64,
    /// Per open document, the findings of its items, so a keystroke re-scans one item.
    caches: HashMap<String, Arc<Mutex<ScanCache>>>,
    /// Each workspace file's view of its crate's summaries, from the latest workspace scan:
    /// live scans of open documents follow calls into the crate's other files through it.
    crates: Arc<HashMap<PathBuf, CrateView>>,
}

impl LiveScans {
    /// A new generation for `uri` (it changed, or a scan of it is wanted): results of older
    /// ones are thrown away.
    pub fn next(&mut self, uri: &str) -> u64 {
        self.next_generation += 1;
        let g = self.next_generation;
        self.generation.insert(uri.to_string(), g);
        g
    }

    /// Whether `generation` is still the latest of `uri`.
    pub fn is_current(&self, uri: &str, generation: u64) -> bool {
        self.generation.get(uri) == Some(&generation)
    }

    /// The scan cache of `uri` (a new one on its first scan).
    pub fn cache(&mut self, uri: &str) -> Arc<Mutex<ScanCache>> {
        self.caches.entry(uri.to_string()).or_default().clone()
    }

    /// The documents that have been scanned and not closed since.
    pub fn scanned(&self) -> Vec<String> {
        self.caches.keys().cloned().collect()
    }

    /// File `path`'s view of its crate's summaries, if a workspace scan saw it.
    pub fn view(&self, path: &Path) -> Option<CrateView> {
        self.crates.get(path).cloned()
    }

    /// The views of a new workspace scan, replacing the last one's.
    pub fn set_views(&mut self, crates: HashMap<PathBuf, CrateView>) {
        self.crates = Arc::new(crates);
    }

    /// An open document's part of its crate's summaries changed (`old` was its view, `new` is
    /// its view with its part recomputed): every file of that crate now sees `new`. Returns
    /// those files, whose open documents are to be scanned again (empty when a workspace scan
    /// replaced the summaries meanwhile: its views are newer).
    pub fn follow(&mut self, old: &CrateView, new: &CrateView) -> Vec<PathBuf> {
        let mut crates: HashMap<PathBuf, CrateView> = (*self.crates).clone();
        let mut members = Vec::new();
        for (path, view) in crates.iter_mut() {
            if view.same_summaries(old) {
                *view = view.over(new);
                members.push(path.clone());
            }
        }
        if !members.is_empty() {
            self.crates = Arc::new(crates);
        }
        members
    }

    /// Forgets a closed document.
    pub fn forget(&mut self, uri: &str) {
        self.generation.remove(uri);
        self.caches.remove(uri);
    }

    /// How many documents have a generation, and a cache (for `conductor/status`).
    pub fn tracked(&self) -> (usize, usize) {
        (self.generation.len(), self.caches.len())
    }
}

/// What the live scan of a snapshot found.
#[derive(Debug)]
pub enum Scanned {
    /// Its findings; with the document's own part of its crate's summaries recomputed from its
    /// text when it has a view and that part changed (see [`LiveScans::follow`]).
    Findings(Vec<Finding>, Option<CrateView>),
    /// It was not scanned, and this says why (too large for `security.max_file_bytes`, or no
    /// tree: too large or too deep to parse).
    NotScanned(String),
}

/// The live scan of an open document's snapshot, with `cache` (its items' findings from the
/// last scan) and `view` (its crate's summaries). Blocking: the reparse a keystroke left
/// pending happens here, so call it off the async threads. Live documents get the disk path's
/// size guard: a document the workspace scan would skip is not scanned while it is edited
/// either.
pub fn scan_snapshot(
    app: &App,
    snapshot: &Snapshot,
    settings: &SecuritySettings,
    cache: &Mutex<ScanCache>,
    view: Option<&CrateView>,
) -> Option<Scanned> {
    let language = snapshot.language?;
    let bytes = snapshot.text.len_bytes();
    if bytes as u64 > settings.max_file_bytes {
        return Some(Scanned::NotScanned(format!(
            "Conductor did not scan this document for security problems: it is {bytes} bytes, above security.max_file_bytes ({})",
            settings.max_file_bytes
        )));
    }
    let tree = match app.parse(snapshot) {
        Ok(tree) => tree,
        Err(why) => {
            return Some(Scanned::NotScanned(format!(
                "Conductor did not scan this document for security problems: {why}"
            )));
        }
    };
    let text = snapshot.text.to_string();
    // The document's own part of its crate's summaries, from its text as edited: the other
    // files of the crate see it once this scan is done.
    let refreshed = view.and_then(|v| v.refreshed(&text, &tree));
    let findings = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .scan_in_crate(language, &text, &tree, settings, view);
    Some(Scanned::Findings(findings, refreshed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_generation_wins_and_a_closed_document_is_forgotten() {
        let mut scans = LiveScans::default();
        let a1 = scans.next("file:///a.rs");
        let b1 = scans.next("file:///b.rs");
        let a2 = scans.next("file:///a.rs");
        assert!(!scans.is_current("file:///a.rs", a1), "an older change");
        assert!(scans.is_current("file:///a.rs", a2));
        assert!(scans.is_current("file:///b.rs", b1));
        scans.cache("file:///a.rs");
        assert_eq!(scans.tracked(), (2, 1));
        scans.forget("file:///a.rs");
        assert!(!scans.is_current("file:///a.rs", a2));
        assert_eq!(scans.tracked(), (1, 0));
        // A reopened document never reuses a generation.
        assert!(scans.next("file:///a.rs") > a2);
    }

    #[test]
    fn a_document_is_scanned_unless_it_is_too_large_and_then_says_why() {
        let app = App::new(|_| {}).expect("app");
        let text = "fn h(p: &str) -> String { format!(\"{:x}\", md5::compute(p)) }\n";
        app.with_documents(|docs| {
            docs.open("file:///w/a.rs", Some("/w/a.rs".into()), "rust", 1, text)
        });
        let snapshot = app.snapshot("file:///w/a.rs").expect("open");
        let cache = Mutex::new(ScanCache::default());
        let settings = SecuritySettings::default();
        let Some(Scanned::Findings(findings, refreshed)) =
            scan_snapshot(&app, &snapshot, &settings, &cache, None)
        else {
            panic!("scanned");
        };
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(refreshed.is_none(), "no crate view, nothing to refresh");
        let small = SecuritySettings {
            max_file_bytes: 10,
            ..SecuritySettings::default()
        };
        let Some(Scanned::NotScanned(why)) = scan_snapshot(&app, &snapshot, &small, &cache, None)
        else {
            panic!("not scanned");
        };
        assert!(why.contains("above security.max_file_bytes (10)"), "{why}");
        // A document of no known language is not scanned at all.
        app.with_documents(|docs| docs.open("file:///w/a.txt", None, "plaintext", 1, "md5"));
        let plain = app.snapshot("file:///w/a.txt").expect("open");
        assert!(scan_snapshot(&app, &plain, &settings, &cache, None).is_none());
    }
}
