//! Open documents: a rope, an incrementally maintained syntax tree and the client's version.
//!
//! [`Documents`] is the single owner of document state. Its mutations (`open`, `change`,
//! `close`) are synchronous and are applied by the LSP layer in the order messages arrive; all
//! other work takes a [`Snapshot`] (an O(1) clone of the rope and the tree) and works on that,
//! so no document state is ever held across an `.await`.
//!
//! A keystroke only edits the rope and the tree (`Tree::edit`, microseconds); the reparse is
//! left to whoever needs the tree — [`Snapshot::tree`], called on a background thread — and the
//! fresh tree is handed back with [`Documents::store_tree`] so the next reparse starts from it.
//! Every change bumps a monotonic [`Snapshot::revision`], which is what staleness is judged by
//! (the client's version can repeat or go backwards). A document larger than
//! [`MAX_TREE_BYTES`] keeps its text but never gets a tree: features degrade and say so.

pub mod marks;
pub mod position;

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use ropey::Rope;

pub use marks::{Mark, Marks};
use tree_sitter::{InputEdit, Parser, Tree};

use crate::syntax::Language;
pub use position::{LineCol, PositionEncoding};

/// One change as the client sends it: a range in protocol positions (or none, meaning the whole
/// document) and the text that replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChange {
    /// The replaced range; `None` replaces the whole document.
    pub range: Option<(LineCol, LineCol)>,
    /// The new text.
    pub text: String,
}

/// Documents larger than this are kept as text only: parsing them would take seconds and
/// hundreds of megabytes, so no feature that needs a tree runs on them.
pub const MAX_TREE_BYTES: usize = 4 * 1024 * 1024;

/// Why a snapshot has no syntax tree, for the message that tells the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTree {
    /// The language is not one Conductor parses.
    UnknownLanguage,
    /// The text is larger than [`MAX_TREE_BYTES`].
    TooLarge {
        /// The document's size.
        bytes: usize,
    },
    /// The tree nests deeper than [`crate::syntax::MAX_TREE_DEPTH`] (generated or hostile
    /// input): walking it would take seconds or overflow the stack, so it is not used.
    TooDeep,
    /// The parser gave up.
    ParseFailed,
}

impl std::fmt::Display for NoTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoTree::UnknownLanguage => write!(f, "its language is not one Conductor parses"),
            NoTree::TooLarge { bytes } => write!(
                f,
                "it is {bytes} bytes, above the {MAX_TREE_BYTES}-byte limit for parsing"
            ),
            NoTree::TooDeep => write!(
                f,
                "its syntax nests deeper than {} levels",
                crate::syntax::MAX_TREE_DEPTH
            ),
            NoTree::ParseFailed => write!(f, "the parser gave up on it"),
        }
    }
}

/// Revisions are unique across documents and reopenings, so a result computed for a document
/// that was closed and reopened is never taken for the new one's.
static NEXT_REVISION: AtomicU64 = AtomicU64::new(1);

fn next_revision() -> u64 {
    NEXT_REVISION.fetch_add(1, Ordering::Relaxed)
}

/// An open document.
pub struct Document {
    text: Rope,
    version: i32,
    revision: u64,
    language: Option<&'static Language>,
    /// The last parse, edited (`Tree::edit`) by every change since; `tree_current` says whether
    /// it also matches the text (no reparse pending).
    tree: Option<Tree>,
    tree_current: bool,
    /// Why the text at this revision has no tree, once a parse found out (too deep): kept so
    /// that later requests answer at once instead of parsing the same text again.
    refused: Option<NoTree>,
    path: Option<PathBuf>,
    /// Ranges that follow the text's edits (where decisions are).
    marks: Marks,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("version", &self.version)
            .field("language", &self.language.map(|l| l.name))
            .field("bytes", &self.text.len_bytes())
            .finish()
    }
}

/// A read-only copy of a document at one version. Cloning is O(1).
#[derive(Clone)]
pub struct Snapshot {
    /// The document's URI, as the client named it.
    pub uri: String,
    /// The file path, for `file:` URIs.
    pub path: Option<PathBuf>,
    /// The client's version this snapshot was taken at (for the protocol only).
    pub version: i32,
    /// The server's own revision of the document: it increases with every change, and is what
    /// "is this result still current" is decided by.
    pub revision: u64,
    /// The text.
    pub text: Rope,
    /// The last tree, edited to follow the text but maybe not reparsed since.
    tree: Option<Tree>,
    tree_current: bool,
    refused: Option<NoTree>,
    /// The language, when known.
    pub language: Option<&'static Language>,
    /// The document's marks at this revision.
    pub marks: Marks,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("uri", &self.uri)
            .field("version", &self.version)
            .finish()
    }
}

impl Snapshot {
    /// The byte offset of a protocol position, clamped.
    pub fn offset(&self, pos: LineCol, encoding: PositionEncoding) -> usize {
        position::offset_of(&self.text, pos, encoding)
    }

    /// The protocol position of a byte offset, clamped.
    pub fn position(&self, byte: usize, encoding: PositionEncoding) -> LineCol {
        position::position_of(&self.text, byte, encoding)
    }

    /// The protocol range of a byte range.
    pub fn range(&self, bytes: Range<usize>, encoding: PositionEncoding) -> (LineCol, LineCol) {
        (
            self.position(bytes.start, encoding),
            self.position(bytes.end, encoding),
        )
    }

    /// The whole text as one string (a copy).
    pub fn to_text(&self) -> String {
        self.text.to_string()
    }

    /// Whether the document is too large to be parsed ([`MAX_TREE_BYTES`]).
    pub fn too_large(&self) -> bool {
        self.text.len_bytes() > MAX_TREE_BYTES
    }

    /// Whether [`tree`](Self::tree) has a reparse to do. Call it off the session's thread.
    pub fn needs_parse(&self) -> bool {
        !self.tree_current && self.language.is_some() && !self.too_large()
    }

    /// The syntax tree of `text`, when the language is known and the document is not too large
    /// or too deeply nested. Reparses (incrementally, from the edited last tree) when changes
    /// arrived since the last parse, which can take milliseconds: call it on a background
    /// thread, and hand a fresh tree back with [`Documents::store_tree`].
    pub fn tree(&self) -> Option<Tree> {
        self.parse().ok()
    }

    /// [`tree`](Self::tree), or why there is none.
    pub fn parse(&self) -> Result<Tree, NoTree> {
        let language = self.language.ok_or(NoTree::UnknownLanguage)?;
        if self.too_large() {
            return Err(NoTree::TooLarge {
                bytes: self.text.len_bytes(),
            });
        }
        if self.tree_current {
            if let Some(why) = self.refused {
                return Err(why);
            }
            return self.tree.clone().ok_or(NoTree::ParseFailed);
        }
        let mut parser = language.parser();
        let tree =
            parse_rope(&mut parser, &self.text, self.tree.as_ref()).ok_or(NoTree::ParseFailed)?;
        if crate::syntax::depth_exceeds(&tree, crate::syntax::MAX_TREE_DEPTH) {
            return Err(NoTree::TooDeep);
        }
        Ok(tree)
    }
}

fn parse_rope(parser: &mut Parser, rope: &Rope, old: Option<&Tree>) -> Option<Tree> {
    let mut read = |byte: usize, _: tree_sitter::Point| -> &[u8] {
        if byte >= rope.len_bytes() {
            return &[];
        }
        let (chunk, chunk_start, _, _) = rope.chunk_at_byte(byte);
        &chunk.as_bytes()[byte - chunk_start..]
    };
    parser.parse_with_options(&mut read, old, None)
}

impl Document {
    /// A document opened with `text`; it is parsed when a feature first asks for its tree.
    pub fn new(text: &str, version: i32, language: Option<&'static Language>) -> Self {
        Document {
            text: Rope::from_str(text),
            version,
            revision: next_revision(),
            language,
            tree: None,
            tree_current: language.is_none(),
            refused: None,
            path: None,
            marks: Marks::default(),
        }
    }

    /// The server's revision of this document (see [`Snapshot::revision`]).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The client's version of this document.
    pub fn version(&self) -> i32 {
        self.version
    }

    /// The current text.
    pub fn text(&self) -> &Rope {
        &self.text
    }

    /// The current syntax tree, parsing now if changes are pending. For tests and benchmarks:
    /// features work on snapshots, off the session's thread.
    pub fn tree(&mut self) -> Option<&Tree> {
        if !self.tree_current && self.text.len_bytes() <= MAX_TREE_BYTES {
            let fresh = self.snapshot("").tree();
            self.tree = fresh;
            self.tree_current = true;
        }
        self.tree.as_ref()
    }

    /// Replaces `bytes` (clamped to the document and to character boundaries) with `new_text`,
    /// editing the rope and the syntax tree, without reparsing.
    fn splice(&mut self, bytes: Range<usize>, new_text: &str) {
        let len = self.text.len_bytes();
        let to_char_boundary =
            |b: usize| self.text.char_to_byte(self.text.byte_to_char(b.min(len)));
        let start = to_char_boundary(bytes.start);
        let end = to_char_boundary(bytes.end).max(start);
        let start_point = position::point_of(&self.text, start);
        let old_end_point = position::point_of(&self.text, end);
        let start_char = self.text.byte_to_char(start);
        let end_char = self.text.byte_to_char(end);
        self.text.remove(start_char..end_char);
        self.text.insert(start_char, new_text);
        self.marks.edit(start..end, new_text.len());
        let new_end = start + new_text.len();
        if let Some(tree) = self.tree.as_mut() {
            tree.edit(&InputEdit {
                start_byte: start,
                old_end_byte: end,
                new_end_byte: new_end,
                start_position: start_point,
                old_end_position: old_end_point,
                new_end_position: position::point_of(&self.text, new_end),
            });
        }
    }

    /// Applies the client's changes in order. The tree is edited to follow them; the reparse is
    /// left to the first feature that needs the tree.
    pub fn apply_changes(
        &mut self,
        changes: &[TextChange],
        version: i32,
        encoding: PositionEncoding,
    ) {
        for change in changes {
            match change.range {
                Some((start, end)) => {
                    let start = position::offset_of(&self.text, start, encoding);
                    let end = position::offset_of(&self.text, end, encoding);
                    self.splice(start.min(end)..start.max(end), &change.text);
                }
                None => {
                    self.text = Rope::from_str(&change.text);
                    self.tree = None;
                    // A whole new text: no mark can say where it went; their owner finds
                    // its text again.
                    let keys: Vec<u64> = self.marks.all().iter().map(|m| m.key).collect();
                    for key in keys {
                        self.marks.forget(key);
                    }
                }
            }
        }
        self.version = version;
        self.revision = next_revision();
        self.tree_current = self.language.is_none();
        self.refused = None;
        if self.text.len_bytes() > MAX_TREE_BYTES {
            // Edited trees of huge texts are dropped, so their memory comes back.
            self.tree = None;
        }
    }

    /// A read-only copy of this document.
    pub fn snapshot(&self, uri: &str) -> Snapshot {
        Snapshot {
            uri: uri.to_string(),
            path: self.path.clone(),
            version: self.version,
            revision: self.revision,
            text: self.text.clone(),
            tree: self.tree.clone(),
            tree_current: self.tree_current,
            refused: self.refused,
            language: self.language,
            marks: self.marks.clone(),
        }
    }
}

/// What applying a change notification did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Applied in order.
    Applied,
    /// Applied, but the version did not increase; the text still follows the client's edits.
    AppliedOutOfOrder {
        /// The version the document had.
        previous: i32,
    },
    /// The document is not open; nothing was changed.
    NotOpen,
}

/// The owner of all open documents, keyed by URI identity ([`uri_key`]), so two spellings of
/// one file's URI find the same document.
#[derive(Debug, Default)]
pub struct Documents {
    docs: HashMap<String, (String, Document)>,
}

/// The identity of a URI: for `file:` URIs, percent-escapes decoded and a Windows drive letter
/// lower-cased (VS Code sends `file:///c%3A/x.rs` where a path gives `file:///C:/x.rs`); other
/// URIs as they are.
pub fn uri_key(uri: &str) -> String {
    let Some(rest) = uri.strip_prefix("file://") else {
        return uri.to_string();
    };
    let bytes = rest.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            decoded.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    let mut path = String::from_utf8_lossy(&decoded).into_owned();
    // `/C:/…` and `/c:/…` are one file.
    let b = path.as_bytes();
    if b.len() >= 3 && b[0] == b'/' && b[1].is_ascii_alphabetic() && b[2] == b':' {
        path.replace_range(1..2, &(b[1] as char).to_ascii_lowercase().to_string());
    }
    format!("file://{path}")
}

impl Documents {
    /// Opens (or reopens) a document.
    pub fn open(
        &mut self,
        uri: &str,
        path: Option<PathBuf>,
        language_id: &str,
        version: i32,
        text: &str,
    ) {
        let language =
            Language::by_name(language_id).or_else(|| path.as_deref().and_then(Language::for_path));
        let mut doc = Document::new(text, version, language);
        doc.path = path;
        self.docs.insert(uri_key(uri), (uri.to_string(), doc));
    }

    /// Applies a change notification.
    pub fn change(
        &mut self,
        uri: &str,
        version: i32,
        changes: &[TextChange],
        encoding: PositionEncoding,
    ) -> ChangeOutcome {
        let Some((_, doc)) = self.docs.get_mut(&uri_key(uri)) else {
            return ChangeOutcome::NotOpen;
        };
        let previous = doc.version;
        doc.apply_changes(changes, version, encoding);
        if version <= previous {
            ChangeOutcome::AppliedOutOfOrder { previous }
        } else {
            ChangeOutcome::Applied
        }
    }

    /// Hands back a tree parsed from a snapshot at `revision`; kept only if the document has not
    /// changed since, so that the next reparse starts from it. Returns whether it was kept.
    pub fn store_tree(&mut self, uri: &str, revision: u64, tree: Tree) -> bool {
        match self.docs.get_mut(&uri_key(uri)) {
            Some((_, doc)) if doc.revision == revision && !doc.tree_current => {
                doc.tree = Some(tree);
                doc.tree_current = true;
                true
            }
            _ => false,
        }
    }

    /// Records that the text of the document at `revision` has no usable tree (`why`, found
    /// by parsing a snapshot of it), so that snapshots of the same revision refuse at once
    /// rather than parse again (a document nested too deep took half a second per request).
    /// Kept only if the document has not changed since; returns whether it was kept.
    pub fn store_refusal(&mut self, uri: &str, revision: u64, why: NoTree) -> bool {
        match self.docs.get_mut(&uri_key(uri)) {
            Some((_, doc)) if doc.revision == revision && !doc.tree_current => {
                // The refused tree is dropped: its memory comes back, and the next edit
                // reparses from scratch, which a tree this deep costs anyway.
                doc.tree = None;
                doc.tree_current = true;
                doc.refused = Some(why);
                true
            }
            _ => false,
        }
    }

    /// Sets marks on the document at `uri`, and records the `unfound` keys as not in its text
    /// (until its next edit), if its text is still at `revision` (both were computed on a
    /// snapshot of it); returns whether they were set.
    pub fn set_marks(
        &mut self,
        uri: &str,
        revision: u64,
        marks: &[(u64, Range<usize>)],
        unfound: &[u64],
    ) -> bool {
        match self.docs.get_mut(&uri_key(uri)) {
            Some((_, doc)) if doc.revision == revision => {
                for (key, range) in marks {
                    doc.marks.set(*key, range.clone());
                }
                for key in unfound {
                    doc.marks.set_unfound(*key);
                }
                true
            }
            _ => false,
        }
    }

    /// Forgets marks of the document at `uri` (set or dropped; see [`Marks::forget`]).
    pub fn forget_marks(&mut self, uri: &str, keys: &[u64]) {
        if let Some((_, doc)) = self.docs.get_mut(&uri_key(uri)) {
            for key in keys {
                doc.marks.forget(*key);
            }
        }
    }

    /// Closes a document; returns whether it was open.
    pub fn close(&mut self, uri: &str) -> bool {
        self.docs.remove(&uri_key(uri)).is_some()
    }

    /// The document at `uri`.
    pub fn get(&self, uri: &str) -> Option<&Document> {
        self.docs.get(&uri_key(uri)).map(|(_, d)| d)
    }

    /// A snapshot of the document at `uri` (any spelling of it); the snapshot carries the URI
    /// as the client opened it.
    pub fn snapshot(&self, uri: &str) -> Option<Snapshot> {
        self.docs
            .get(&uri_key(uri))
            .map(|(opened_as, d)| d.snapshot(opened_as))
    }

    /// Snapshots of every open document.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.docs
            .values()
            .map(|(opened_as, d)| d.snapshot(opened_as))
            .collect()
    }

    /// How many documents are open.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether no document is open.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(sl: u32, sc: u32, el: u32, ec: u32, text: &str) -> TextChange {
        TextChange {
            range: Some((LineCol::new(sl, sc), LineCol::new(el, ec))),
            text: text.to_string(),
        }
    }

    #[test]
    fn incremental_changes_edit_text_and_tree() {
        let mut docs = Documents::default();
        docs.open(
            "file:///a.rs",
            None,
            "rust",
            1,
            "fn main() {\n    let x = 1;\n}\n",
        );
        let outcome = docs.change(
            "file:///a.rs",
            2,
            &[change(1, 12, 1, 13, "42"), change(0, 3, 0, 7, "start")],
            PositionEncoding::Utf16,
        );
        assert_eq!(outcome, ChangeOutcome::Applied);
        let snap = docs.snapshot("file:///a.rs").expect("open");
        assert_eq!(snap.to_text(), "fn start() {\n    let x = 42;\n}\n");
        let fresh = Language::by_name("rust")
            .and_then(|l| l.parse(&snap.to_text()))
            .expect("parse");
        assert!(
            snap.needs_parse(),
            "a change leaves the reparse to whoever needs the tree"
        );
        let tree = snap.tree().expect("tree");
        assert_eq!(tree.root_node().to_sexp(), fresh.root_node().to_sexp());
        assert_eq!(snap.version, 2);
        // The fresh tree is kept only for the revision it was parsed at.
        assert!(!docs.store_tree("file:///a.rs", snap.revision + 1, tree.clone()));
        assert!(docs.store_tree("file:///a.rs", snap.revision, tree));
        assert!(!docs.snapshot("file:///a.rs").expect("open").needs_parse());
    }

    #[test]
    fn full_replacement_and_out_of_order_versions() {
        let mut docs = Documents::default();
        docs.open("u", None, "rust", 5, "fn a() {}");
        let before = docs.snapshot("u").expect("open");
        let outcome = docs.change(
            "u",
            3,
            &[TextChange {
                range: None,
                text: "fn b() {}".into(),
            }],
            PositionEncoding::Utf8,
        );
        assert_eq!(outcome, ChangeOutcome::AppliedOutOfOrder { previous: 5 });
        let after = docs.snapshot("u").expect("open");
        assert_eq!(after.to_text(), "fn b() {}");
        // The client's version went backwards; the server's revision did not.
        assert!(after.revision > before.revision);
        assert_eq!(
            docs.change("nope", 1, &[], PositionEncoding::Utf8),
            ChangeOutcome::NotOpen
        );
        assert!(docs.close("u"));
        assert!(!docs.close("u"));
    }

    #[test]
    fn two_spellings_of_a_file_uri_are_one_document() {
        assert_eq!(
            uri_key("file:///c%3A/src/a.rs"),
            uri_key("file:///C:/src/a.rs")
        );
        assert_eq!(uri_key("file:///tmp/a%20b.rs"), "file:///tmp/a b.rs");
        assert_ne!(uri_key("file:///tmp/A.rs"), uri_key("file:///tmp/a.rs"));
        assert_eq!(uri_key("untitled:Untitled-1"), "untitled:Untitled-1");
        assert_eq!(uri_key("file:///bad%zz%4"), "file:///bad%zz%4");
        let mut docs = Documents::default();
        docs.open("file:///c%3A/src/a.rs", None, "rust", 1, "fn a() {}");
        let snap = docs
            .snapshot("file:///C:/src/a.rs")
            .expect("the same document");
        // Outgoing messages use the client's own spelling.
        assert_eq!(snap.uri, "file:///c%3A/src/a.rs");
        assert!(docs.close("file:///C:/src/a.rs"));
        assert!(docs.is_empty());
    }

    #[test]
    fn unknown_languages_keep_text_without_a_tree() {
        let mut docs = Documents::default();
        docs.open("file:///notes.txt", None, "plaintext", 1, "hello");
        docs.change(
            "file:///notes.txt",
            2,
            &[change(0, 5, 0, 5, " world")],
            PositionEncoding::Utf16,
        );
        let snap = docs.snapshot("file:///notes.txt").expect("open");
        assert_eq!(snap.to_text(), "hello world");
        assert!(snap.tree().is_none());
        assert!(!snap.needs_parse());
    }

    #[test]
    fn a_document_over_the_size_limit_keeps_its_text_and_gets_no_tree() {
        let mut docs = Documents::default();
        let big = "fn f() {}\n".repeat(MAX_TREE_BYTES / 10 + 1);
        docs.open("file:///big.rs", None, "rust", 1, &big);
        let snap = docs.snapshot("file:///big.rs").expect("open");
        assert!(snap.too_large());
        assert!(!snap.needs_parse());
        assert!(snap.tree().is_none());
        assert_eq!(snap.text.len_bytes(), big.len());
        // Shrunk under the limit, it is parsed again.
        docs.change(
            "file:///big.rs",
            2,
            &[TextChange {
                range: None,
                text: "fn small() {}\n".into(),
            }],
            PositionEncoding::Utf8,
        );
        let snap = docs.snapshot("file:///big.rs").expect("open");
        assert!(snap.tree().is_some());
    }
}
