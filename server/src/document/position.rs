//! Every conversion between protocol positions and byte offsets happens here.
//!
//! A protocol position is a zero-based line and a column counted in the negotiated encoding's
//! code units (UTF-8 bytes, UTF-16 code units or UTF-32 code points). Lines end at `\n`, `\r\n`
//! or `\r`, as LSP defines (ropey is built with `cr_lines` and without `unicode_lines`).
//! Out-of-range input is clamped, never a panic: a line past the end maps to the end of the
//! document, a column past the end of its line maps to the end of that line, and a column inside
//! a character (the middle of a UTF-16 surrogate pair or of a UTF-8 sequence) maps to the start
//! of that character.

use ropey::{Rope, RopeSlice};

/// The unit in which columns are counted, as negotiated with the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PositionEncoding {
    /// Columns count UTF-8 bytes.
    Utf8,
    /// Columns count UTF-16 code units: the protocol's default.
    #[default]
    Utf16,
    /// Columns count Unicode code points.
    Utf32,
}

impl PositionEncoding {
    /// The encoding's name in the protocol (`utf-8`, `utf-16`, `utf-32`).
    pub fn as_str(self) -> &'static str {
        match self {
            PositionEncoding::Utf8 => "utf-8",
            PositionEncoding::Utf16 => "utf-16",
            PositionEncoding::Utf32 => "utf-32",
        }
    }

    /// Picks the encoding from the ones a client offers: UTF-8 when offered (no conversion
    /// needed), else UTF-16, which every client supports; UTF-32 only when it is all there is.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> PositionEncoding {
        let offered: Vec<&str> = offered.into_iter().collect();
        if offered.contains(&"utf-8") {
            PositionEncoding::Utf8
        } else if offered.is_empty() || offered.contains(&"utf-16") {
            PositionEncoding::Utf16
        } else if offered.contains(&"utf-32") {
            PositionEncoding::Utf32
        } else {
            PositionEncoding::Utf16
        }
    }
}

/// A position as the protocol states it: zero-based line, column in the encoding's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LineCol {
    /// Zero-based line.
    pub line: u32,
    /// Zero-based column in code units of the negotiated encoding.
    pub character: u32,
}

impl LineCol {
    /// A position from its parts.
    pub const fn new(line: u32, character: u32) -> Self {
        Self { line, character }
    }
}

/// The byte length of a line's content, without its line terminator.
fn content_len(line: RopeSlice<'_>) -> usize {
    let len = line.len_bytes();
    if len == 0 {
        return 0;
    }
    match line.byte(len - 1) {
        b'\n' if len >= 2 && line.byte(len - 2) == b'\r' => len - 2,
        b'\n' | b'\r' => len - 1,
        _ => len,
    }
}

/// Code units of `encoding` before char index `char_idx`, from the rope's own metrics: O(log n)
/// however long the line is (a per-character count made each diagnostic of a one-line
/// megabyte document cost a megabyte, and a scan's publication quadratic).
fn units_before(rope: &Rope, char_idx: usize, encoding: PositionEncoding) -> usize {
    match encoding {
        PositionEncoding::Utf8 => rope.char_to_byte(char_idx),
        PositionEncoding::Utf16 => rope.char_to_utf16_cu(char_idx),
        PositionEncoding::Utf32 => char_idx,
    }
}

/// The byte offset of a protocol position, clamped into the document. O(log n).
pub fn offset_of(rope: &Rope, pos: LineCol, encoding: PositionEncoding) -> usize {
    let line_idx = pos.line as usize;
    if line_idx >= rope.len_lines() {
        return rope.len_bytes();
    }
    let line_start = rope.line_to_byte(line_idx);
    let content_end = line_start + content_len(rope.line(line_idx));
    let start_char = rope.byte_to_char(line_start);
    let end_char = rope.byte_to_char(content_end);
    let start_units = units_before(rope, start_char, encoding);
    let end_units = units_before(rope, end_char, encoding);
    let wanted = start_units.saturating_add(pos.character as usize);
    if wanted >= end_units {
        return content_end;
    }
    // `wanted` is at or inside a character: round down to its start.
    let char_idx = match encoding {
        PositionEncoding::Utf8 => rope.byte_to_char(wanted),
        PositionEncoding::Utf16 => {
            let c = rope.utf16_cu_to_char(wanted);
            // ropey rounds a unit inside a surrogate pair either way; never past `wanted`.
            if rope.char_to_utf16_cu(c) > wanted {
                c - 1
            } else {
                c
            }
        }
        PositionEncoding::Utf32 => wanted,
    };
    rope.char_to_byte(char_idx.clamp(start_char, end_char))
}

/// The protocol position of a byte offset. An offset past the end clamps to the end; an offset
/// inside a character or inside a line terminator rounds down to a valid place. O(log n).
pub fn position_of(rope: &Rope, byte: usize, encoding: PositionEncoding) -> LineCol {
    let byte = byte.min(rope.len_bytes());
    // Round down to a character boundary.
    let char_idx = rope.byte_to_char(byte);
    let byte = rope.char_to_byte(char_idx);
    let line_idx = rope.byte_to_line(byte);
    let line_start = rope.line_to_byte(line_idx);
    let within = (byte - line_start).min(content_len(rope.line(line_idx)));
    let start_char = rope.byte_to_char(line_start);
    let at_char = rope.byte_to_char(line_start + within);
    let column = units_before(rope, at_char, encoding) - units_before(rope, start_char, encoding);
    LineCol::new(
        u32::try_from(line_idx).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// The tree-sitter point (row, byte column) of a byte offset. Rows follow the rope's lines,
/// which equal tree-sitter's rows except in files with a lone `\r` line end; byte ranges, which
/// are what parsing relies on, are exact either way.
pub fn point_of(rope: &Rope, byte: usize) -> tree_sitter::Point {
    let byte = byte.min(rope.len_bytes());
    let row = rope.byte_to_line(byte);
    tree_sitter::Point::new(row, byte - rope.line_to_byte(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PositionEncoding::*;

    fn round_trip(text: &str, enc: PositionEncoding) {
        let rope = Rope::from_str(text);
        for (byte, _) in text.char_indices().chain([(text.len(), ' ')]) {
            let pos = position_of(&rope, byte, enc);
            let back = offset_of(&rope, pos, enc);
            // Offsets inside a CRLF terminator map to the end of the line content.
            let expected = {
                let line = rope.byte_to_line(byte);
                let start = rope.line_to_byte(line);
                (start + content_len(rope.line(line))).min(byte)
            };
            assert_eq!(
                back, expected,
                "{text:?} byte {byte} via {pos:?} in {enc:?}"
            );
        }
    }

    #[test]
    fn round_trips_in_every_encoding() {
        for text in [
            "",
            "fn main() {}\n",
            "a😀b\r\nc中文d\n\re\u{301}f",
            "\r\n\r\n",
            "x\ry\nz",
            "emoji 👩‍👩‍👧 end",
        ] {
            for enc in [Utf8, Utf16, Utf32] {
                round_trip(text, enc);
            }
        }
    }

    #[test]
    fn astral_characters_count_two_utf16_units_and_four_bytes() {
        let rope = Rope::from_str("a😀b");
        assert_eq!(position_of(&rope, 5, Utf16), LineCol::new(0, 3));
        assert_eq!(position_of(&rope, 5, Utf8), LineCol::new(0, 5));
        assert_eq!(position_of(&rope, 5, Utf32), LineCol::new(0, 2));
        assert_eq!(offset_of(&rope, LineCol::new(0, 3), Utf16), 5);
        // The middle of the surrogate pair rounds down to the start of the emoji.
        assert_eq!(offset_of(&rope, LineCol::new(0, 2), Utf16), 1);
        // The middle of the UTF-8 sequence too.
        assert_eq!(offset_of(&rope, LineCol::new(0, 3), Utf8), 1);
    }

    #[test]
    fn cjk_and_combining_characters() {
        let rope = Rope::from_str("中文e\u{301}x");
        // 中 and 文 are 3 bytes and 1 UTF-16 unit each; the combining accent is its own code point.
        assert_eq!(offset_of(&rope, LineCol::new(0, 2), Utf16), 6);
        assert_eq!(offset_of(&rope, LineCol::new(0, 4), Utf16), 9);
        assert_eq!(position_of(&rope, 9, Utf32), LineCol::new(0, 4));
    }

    #[test]
    fn every_line_terminator_ends_a_line() {
        let rope = Rope::from_str("a\r\nb\rc\nd");
        assert_eq!(offset_of(&rope, LineCol::new(1, 0), Utf16), 3);
        assert_eq!(offset_of(&rope, LineCol::new(2, 0), Utf16), 5);
        assert_eq!(offset_of(&rope, LineCol::new(3, 0), Utf16), 7);
        assert_eq!(position_of(&rope, 7, Utf16), LineCol::new(3, 0));
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let rope = Rope::from_str("ab\r\ncd");
        // Past the end of a line: the end of its content, before the CRLF.
        assert_eq!(offset_of(&rope, LineCol::new(0, 99), Utf16), 2);
        // Past the last line: the end of the document.
        assert_eq!(offset_of(&rope, LineCol::new(9, 0), Utf16), 6);
        assert_eq!(position_of(&rope, 999, Utf16), LineCol::new(1, 2));
        // Inside the CRLF: the end of the line content.
        assert_eq!(position_of(&rope, 3, Utf16), LineCol::new(0, 2));
    }

    #[test]
    fn conversions_on_a_megabyte_line_take_no_time_per_call() {
        // One line of 4 MB: a per-character count took milliseconds per call (and a scan's
        // publication of thousands of diagnostics minutes); the rope's metrics take microseconds
        // (the bound is loose for unoptimised builds on a busy machine).
        let text = "a😀中".repeat(500_000);
        let rope = Rope::from_str(&text);
        let started = std::time::Instant::now();
        for i in 0..2_000usize {
            let byte = text.len() - 1 - i * 7;
            let pos = position_of(&rope, byte, Utf16);
            assert!(offset_of(&rope, pos, Utf16) <= byte);
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed < std::time::Duration::from_secs(5),
            "4,000 conversions took {elapsed:?}"
        );
        assert_eq!(position_of(&rope, text.len(), Utf32).character, 1_500_000);
        assert_eq!(position_of(&rope, text.len(), Utf16).character, 2_000_000);
    }

    #[test]
    fn negotiation_prefers_utf8_then_utf16() {
        assert_eq!(PositionEncoding::negotiate(["utf-16", "utf-8"]), Utf8);
        assert_eq!(PositionEncoding::negotiate(["utf-32", "utf-16"]), Utf16);
        assert_eq!(PositionEncoding::negotiate(["utf-32"]), Utf32);
        assert_eq!(PositionEncoding::negotiate([]), Utf16);
        assert_eq!(PositionEncoding::negotiate(["latin-1"]), Utf16);
    }
}
