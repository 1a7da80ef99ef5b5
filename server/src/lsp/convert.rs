//! Conversions between protocol types and Conductor's plain data. Handlers call these at the
//! edge; nothing outside `lsp/` sees a protocol type.

use std::ops::Range as ByteRange;
use std::path::PathBuf;

use tower_lsp_server::ls_types::{Position, Range, Uri};

use crate::document::{LineCol, PositionEncoding, Snapshot};

/// A protocol position as plain data.
pub fn from_position(p: Position) -> LineCol {
    LineCol::new(p.line, p.character)
}

/// Plain data as a protocol position.
pub fn to_position(p: LineCol) -> Position {
    Position::new(p.line, p.character)
}

/// The byte range of a protocol range in a snapshot (clamped; reversed ranges are ordered).
pub fn byte_range(
    snapshot: &Snapshot,
    range: Range,
    encoding: PositionEncoding,
) -> ByteRange<usize> {
    let a = snapshot.offset(from_position(range.start), encoding);
    let b = snapshot.offset(from_position(range.end), encoding);
    a.min(b)..a.max(b)
}

/// The protocol range of a byte range in a snapshot.
pub fn to_range(snapshot: &Snapshot, bytes: ByteRange<usize>, encoding: PositionEncoding) -> Range {
    let (start, end) = snapshot.range(bytes, encoding);
    Range::new(to_position(start), to_position(end))
}

/// The file path of a `file:` URI.
pub fn uri_to_path(uri: &Uri) -> Option<PathBuf> {
    uri.to_file_path().map(|p| p.into_owned())
}

/// The `file:` URI of a path.
pub fn path_to_uri(path: &std::path::Path) -> Option<Uri> {
    Uri::from_file_path(path)
}

/// How a message is shown, as the protocol's message type.
pub fn message_type(
    tone: crate::orchestrator::editor_runs::Tone,
) -> tower_lsp_server::ls_types::MessageType {
    use crate::orchestrator::editor_runs::Tone;
    use tower_lsp_server::ls_types::MessageType;
    match tone {
        Tone::Info => MessageType::INFO,
        Tone::Warning => MessageType::WARNING,
        Tone::Error => MessageType::ERROR,
    }
}
