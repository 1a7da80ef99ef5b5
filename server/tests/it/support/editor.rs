//! The test client's editor model: its own copies of the documents it opened (text, version,
//! dirty flag) and the application of a `WorkspaceEdit` the way VS Code applies one. It is plain
//! data with no I/O except the workspace files an edit touches that are not open, so
//! `tests/it/harness.rs` can drive it directly; `support/mod.rs` wires it to the pipe.
//!
//! What a real editor does, and this model therefore does:
//! - Every `TextDocumentEdit` that names a version is checked against the editor's copy first.
//!   One mismatch refuses the whole edit and nothing is applied (VS Code: "bad state - model
//!   changed in the meantime"). The edit is atomic across all its documents and files.
//! - Edits within one `TextDocumentEdit` (or one `changes` entry) refer to the same text and
//!   apply as if simultaneously; they must not overlap. Inserts at one position keep their
//!   order in the array (LSP 3.17, `TextEdit[]`).
//! - Positions are in the negotiated encoding. Like VS Code's `validatePosition`, a position
//!   past the end of its line or of the document is clamped, and one inside a character (a
//!   UTF-16 surrogate pair, a UTF-8 sequence) is moved to that character's start.
//! - Every changed open document gets a `textDocument/didChange` with the next version, and
//!   all of them are sent before the `applied: true` answer, which is VS Code's order.
//! - A document that is not open is edited on disk, as if the editor saved it at once (VS Code
//!   applies the edit to a hidden model and can save refactored files itself, the setting
//!   `files.refactoring.autoSave`): the file changes and no buffer is opened, so the server sees
//!   the change as a file on disk, not as an open document. A test that needs the unsaved-buffer
//!   case opens the document first.
//! - `CreateFile` creates the file on disk, empty, as VS Code's file operation does. VS Code then
//!   resolves a text model for it, which its language client announces with `didOpen`; text
//!   edits to it change that buffer, which stays dirty (unsaved). This model does the same: the
//!   created file becomes an open, dirty buffer, and the disk keeps the empty file.
//! - `RenameFile` and `DeleteFile` are refused: the harness advertises only `create`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde_json::{Value, json};

/// The client's copy of one open document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditorDocument {
    /// The full text.
    pub text: String,
    /// The version the client last sent for it.
    pub version: i32,
    /// Whether the buffer holds changes that are not on disk (an applied edit or a created file).
    pub dirty: bool,
}

/// How the client sends its own content changes to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChangeStyle {
    /// One content change per edit, each with a range (what VS Code sends).
    #[default]
    Incremental,
    /// One content change holding the whole new text.
    Full,
}

/// A notification the client must send to the server, in order, because of an applied edit.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// `textDocument/didOpen` or `textDocument/didChange`.
    pub method: &'static str,
    /// Its params.
    pub params: Value,
}

/// What applying one `WorkspaceEdit` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The notifications to send before answering, in order.
    pub notifications: Vec<Outgoing>,
    /// The open documents that changed, with their new versions.
    pub changed: Vec<(String, i32)>,
    /// The files written on disk (edited while not open, or created).
    pub written: Vec<PathBuf>,
}

/// One planned text edit, as byte offsets into the text it applies to.
#[derive(Debug, Clone)]
struct ByteEdit {
    start: usize,
    end: usize,
    text: String,
}

/// The state of one document while an edit is planned, before anything is committed.
#[derive(Debug, Clone)]
struct Planned {
    /// The text before this workspace edit (to build incremental changes from).
    original: String,
    /// The text after the groups planned so far.
    text: String,
    /// The content changes for `didChange`, in the order the server must apply them.
    changes: Vec<Value>,
    /// Whether the document is (or will be, once created) open in the client.
    open: bool,
    /// Whether it is created by this edit.
    created: bool,
    /// Whether any text edit touched it.
    touched: bool,
}

/// The client's documents and how it applies edits to them.
#[derive(Debug, Clone, Default)]
pub struct Editor {
    /// The negotiated position encoding: `utf-8`, `utf-16` (the default) or `utf-32`.
    pub encoding: String,
    /// How content changes are sent.
    pub style: ChangeStyle,
    documents: HashMap<String, EditorDocument>,
}

impl Editor {
    /// An editor with no document open, using `encoding` for positions.
    pub fn new(encoding: &str) -> Editor {
        Editor {
            encoding: encoding.to_string(),
            ..Editor::default()
        }
    }

    /// Records a document as opened at version 1 (the caller sends `didOpen`).
    pub fn open(&mut self, uri: &str, text: &str) {
        self.documents.insert(
            uri.to_string(),
            EditorDocument {
                text: text.to_string(),
                version: 1,
                dirty: false,
            },
        );
    }

    /// Forgets a document (the caller sends `didClose`).
    pub fn close(&mut self, uri: &str) {
        self.documents.remove(uri);
    }

    /// The client's copy of an open document.
    pub fn document(&self, uri: &str) -> Option<&EditorDocument> {
        self.documents.get(uri)
    }

    /// The URIs of the open documents.
    pub fn open_uris(&self) -> Vec<String> {
        let mut uris: Vec<String> = self.documents.keys().cloned().collect();
        uris.sort();
        uris
    }

    /// Applies content changes the user (the test) typed, in the order `didChange` applies them,
    /// and returns the next version. `None` when the document is not open.
    pub fn type_changes(&mut self, uri: &str, changes: &[Value]) -> Option<i32> {
        let encoding = self.encoding.clone();
        let document = self.documents.get_mut(uri)?;
        for change in changes {
            let text = change["text"].as_str().unwrap_or("");
            if change.get("range").is_some_and(|r| !r.is_null()) {
                let start = offset(&document.text, &change["range"]["start"], &encoding);
                let end = offset(&document.text, &change["range"]["end"], &encoding);
                let (start, end) = (start.min(end), start.max(end));
                document.text.replace_range(start..end, text);
            } else {
                document.text = text.to_string();
            }
        }
        document.version += 1;
        document.dirty = true;
        Some(document.version)
    }

    /// Applies a `WorkspaceEdit` atomically: either every part applies, or nothing changes and
    /// the reason is returned (the client's `failureReason`). Files that are not open are read
    /// and written through the file system.
    pub fn apply_workspace_edit(&mut self, edit: &Value) -> Result<Applied, String> {
        let mut plan: BTreeMap<String, Planned> = BTreeMap::new();
        // Creations in order, so that `didOpen` precedes the `didChange` of the same document.
        let mut created: Vec<String> = Vec::new();
        if let Some(operations) = edit.get("documentChanges").filter(|v| !v.is_null()) {
            let operations = operations
                .as_array()
                .ok_or("`documentChanges` is not an array")?;
            // Check every version before anything else, so a stale edit changes nothing.
            for operation in operations {
                if operation.get("kind").is_none() {
                    self.check_version(operation)?;
                }
            }
            for (i, operation) in operations.iter().enumerate() {
                match operation.get("kind").and_then(Value::as_str) {
                    None => {
                        let uri = operation["textDocument"]["uri"]
                            .as_str()
                            .ok_or_else(|| format!("documentChanges[{i}] has no uri"))?;
                        let edits = operation["edits"]
                            .as_array()
                            .ok_or_else(|| format!("documentChanges[{i}] has no edits"))?;
                        self.plan_group(&mut plan, uri, edits)
                            .map_err(|e| format!("documentChanges[{i}] ({uri}): {e}"))?;
                    }
                    Some("create") => {
                        let uri = operation["uri"]
                            .as_str()
                            .ok_or_else(|| format!("documentChanges[{i}] creates no uri"))?;
                        if self.plan_create(&mut plan, uri, &operation["options"])? {
                            created.push(uri.to_string());
                        }
                    }
                    Some(other) => {
                        return Err(format!(
                            "documentChanges[{i}]: resource operation `{other}` is not supported \
                             by this client (it advertises only `create`)"
                        ));
                    }
                }
            }
        } else if let Some(changes) = edit.get("changes").filter(|v| !v.is_null()) {
            let changes = changes.as_object().ok_or("`changes` is not an object")?;
            for (uri, edits) in changes {
                let edits = edits
                    .as_array()
                    .ok_or_else(|| format!("changes[{uri}] is not an array"))?;
                self.plan_group(&mut plan, uri, edits)
                    .map_err(|e| format!("changes ({uri}): {e}"))?;
            }
        }
        self.commit(plan, &created)
    }

    /// Refuses a `TextDocumentEdit` whose version is not the client's.
    fn check_version(&self, operation: &Value) -> Result<(), String> {
        let uri = operation["textDocument"]["uri"].as_str().unwrap_or("");
        let Some(wanted) = operation["textDocument"]["version"].as_i64() else {
            // `null` (or absent): the server does not know a version; nothing to check.
            return Ok(());
        };
        match self.documents.get(uri) {
            Some(doc) if i64::from(doc.version) == wanted => Ok(()),
            Some(doc) => Err(format!(
                "the edit is for version {wanted} of {uri}, but the document is at version {}",
                doc.version
            )),
            None => Err(format!(
                "the edit is for version {wanted} of {uri}, but the document is not open"
            )),
        }
    }

    /// Plans one `CreateFile`; returns whether a document is created (false: ignored).
    fn plan_create(
        &self,
        plan: &mut BTreeMap<String, Planned>,
        uri: &str,
        options: &Value,
    ) -> Result<bool, String> {
        let path = uri_to_path(uri).ok_or_else(|| format!("create: {uri} is not a file"))?;
        let exists = path.exists() || self.documents.contains_key(uri) || plan.contains_key(uri);
        let overwrite = options["overwrite"].as_bool().unwrap_or(false);
        if exists && !overwrite {
            if options["ignoreIfExists"].as_bool().unwrap_or(false) {
                return Ok(false);
            }
            return Err(format!("create: {} already exists", path.display()));
        }
        plan.insert(
            uri.to_string(),
            Planned {
                original: String::new(),
                text: String::new(),
                changes: Vec::new(),
                open: true,
                created: true,
                touched: false,
            },
        );
        Ok(true)
    }

    /// Plans one group of simultaneous text edits for `uri`, on the text planned so far.
    fn plan_group(
        &self,
        plan: &mut BTreeMap<String, Planned>,
        uri: &str,
        edits: &[Value],
    ) -> Result<(), String> {
        if !plan.contains_key(uri) {
            let (text, open) = match self.documents.get(uri) {
                Some(doc) => (doc.text.clone(), true),
                None => {
                    let path = uri_to_path(uri).ok_or("not a file URI")?;
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("reading {}: {e}", path.display()))?;
                    (text, false)
                }
            };
            plan.insert(
                uri.to_string(),
                Planned {
                    original: text.clone(),
                    text,
                    changes: Vec::new(),
                    open,
                    created: false,
                    touched: false,
                },
            );
        }
        let planned = plan.get_mut(uri).ok_or("planned document vanished")?;
        let (text, changes) = apply_simultaneous(&planned.text, edits, &self.encoding)?;
        planned.text = text;
        planned.changes.extend(changes);
        planned.touched = true;
        Ok(())
    }

    /// Makes a plan real: writes files, updates the copies, and lists what to send.
    fn commit(
        &mut self,
        plan: BTreeMap<String, Planned>,
        created: &[String],
    ) -> Result<Applied, String> {
        let mut applied = Applied::default();
        // Disk first: a failed write must leave the buffers untouched too. Created files are
        // written empty (their text lives in the dirty buffer).
        for (uri, planned) in &plan {
            if planned.created || !planned.open {
                let path = uri_to_path(uri).ok_or_else(|| format!("{uri} is not a file"))?;
                let contents = if planned.created { "" } else { &planned.text };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                }
                std::fs::write(&path, contents)
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                applied.written.push(path);
            }
        }
        for uri in created {
            self.open(uri, "");
            if let Some(doc) = self.documents.get_mut(uri) {
                doc.dirty = true;
            }
            applied.notifications.push(Outgoing {
                method: "textDocument/didOpen",
                params: json!({"textDocument": {
                    "uri": uri, "languageId": language_id(uri), "version": 1, "text": ""}}),
            });
        }
        for (uri, planned) in plan {
            if !planned.open || !planned.touched || planned.text == planned.original {
                continue;
            }
            let Some(doc) = self.documents.get_mut(&uri) else {
                continue;
            };
            doc.text = planned.text.clone();
            doc.version += 1;
            doc.dirty = true;
            let content_changes = match self.style {
                ChangeStyle::Incremental => planned.changes,
                ChangeStyle::Full => vec![json!({"text": planned.text})],
            };
            applied.notifications.push(Outgoing {
                method: "textDocument/didChange",
                params: json!({"textDocument": {"uri": uri, "version": doc.version},
                    "contentChanges": content_changes}),
            });
            applied.changed.push((uri, doc.version));
        }
        Ok(applied)
    }
}

/// Applies `edits` (LSP `TextEdit`s, all against `text`) as if simultaneously. Returns the new
/// text and the incremental content changes that produce it when applied one after the other.
pub fn apply_simultaneous(
    text: &str,
    edits: &[Value],
    encoding: &str,
) -> Result<(String, Vec<Value>), String> {
    let mut planned: Vec<(usize, ByteEdit)> = Vec::with_capacity(edits.len());
    for (i, edit) in edits.iter().enumerate() {
        let range = &edit["range"];
        if range.is_null() {
            return Err(format!("edit {i} has no range"));
        }
        let new_text = edit["newText"]
            .as_str()
            .ok_or_else(|| format!("edit {i} has no newText"))?;
        let start = offset(text, &range["start"], encoding);
        let end = offset(text, &range["end"], encoding);
        if end < start {
            return Err(format!("edit {i}: its range ends before it starts"));
        }
        planned.push((
            i,
            ByteEdit {
                start,
                end,
                text: new_text.to_string(),
            },
        ));
    }
    // Stable: inserts at one position keep their order in the array.
    planned.sort_by_key(|(_, e)| (e.start, e.end));
    for pair in planned.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // Sorted by start then end, so an insert sorts before a replacement at its point and two
        // inserts at one point never overlap; a range that contains the next one's start does.
        if b.1.start < a.1.end {
            return Err(format!("edits {} and {} overlap", a.0, b.0));
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (_, edit) in &planned {
        out.push_str(&text[at..edit.start]);
        out.push_str(&edit.text);
        at = edit.end;
    }
    out.push_str(&text[at..]);
    // From the last edit backwards, every range is still valid in the original coordinates.
    // The ranges are the clamped ones, so the server cannot be handed a position it would have
    // to clamp differently.
    let changes = planned
        .iter()
        .rev()
        .map(|(_, edit)| {
            json!({"range": {
                "start": position(text, edit.start, encoding),
                "end": position(text, edit.end, encoding),
            }, "text": edit.text})
        })
        .collect();
    Ok((out, changes))
}

/// Where each line starts and where its content ends (before `\n`, `\r\n` or `\r`).
fn lines(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push((start, i));
                start = i + 1;
            }
            b'\r' => {
                lines.push((start, i));
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    lines.push((start, bytes.len()));
    lines
}

/// The width of a character in the encoding's code units.
fn units(c: char, encoding: &str) -> usize {
    match encoding {
        "utf-8" => c.len_utf8(),
        "utf-32" => 1,
        _ => c.len_utf16(),
    }
}

/// The byte offset of an LSP position in `text`, clamped as VS Code clamps: a line past the end
/// is the end of the document, a character past the line's end is the line's end, a character
/// inside a code point is that code point's start.
pub fn offset(text: &str, position: &Value, encoding: &str) -> usize {
    let lines = lines(text);
    let line = position["line"].as_u64().unwrap_or(0) as usize;
    let Some(&(start, end)) = lines.get(line) else {
        return text.len();
    };
    let wanted = position["character"].as_u64().unwrap_or(0) as usize;
    let mut counted = 0;
    for (i, c) in text[start..end].char_indices() {
        let width = units(c, encoding);
        if counted + width > wanted {
            return start + i;
        }
        counted += width;
    }
    end
}

/// The LSP position of a byte offset (on a character boundary) in `text`.
pub fn position(text: &str, byte: usize, encoding: &str) -> Value {
    let lines = lines(text);
    let line = lines
        .iter()
        .rposition(|&(start, _)| start <= byte)
        .unwrap_or(0);
    let (start, end) = lines[line];
    let character: usize = text[start..byte.min(end).max(start)]
        .chars()
        .map(|c| units(c, encoding))
        .sum();
    json!({"line": line, "character": character})
}

/// The path of a `file:` URI, with `%XX` escapes decoded.
pub fn uri_to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(PathBuf::from(String::from_utf8(out).ok()?))
}

/// The language id a client would announce for a path.
fn language_id(uri: &str) -> &'static str {
    if uri.ends_with(".rs") {
        "rust"
    } else if uri.ends_with(".md") {
        "markdown"
    } else if uri.ends_with(".toml") {
        "toml"
    } else {
        "plaintext"
    }
}
