//! A file's text as the applier sees it: UTF-8 lines with their own line endings, a byte-order
//! mark and a final newline (or its absence) remembered, so that writing it back changes only the
//! lines an edit replaced.

use sha2::{Digest, Sha256};

/// How one line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eol {
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
    /// The last line of a file without a final newline.
    None,
}

impl Eol {
    fn as_str(self) -> &'static str {
        match self {
            Eol::Lf => "\n",
            Eol::CrLf => "\r\n",
            Eol::None => "",
        }
    }
}

/// One line: its text without the line ending, and the ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's text, without `\n` or `\r\n`.
    pub text: String,
    /// How it ends.
    pub eol: Eol,
}

impl AsRef<str> for Line {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// A decoded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileText {
    /// The lines, in order; empty for an empty file.
    pub lines: Vec<Line>,
    /// Whether the file starts with a UTF-8 byte-order mark (kept on the way out).
    pub bom: bool,
    /// The ending new lines get: CRLF when most of the file's lines end so, else LF.
    pub style: Eol,
    /// Whether the last line ends with a newline; an edit keeps this as it was.
    pub final_newline: bool,
}

/// The text is not UTF-8; it is refused rather than rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8 {
    /// The byte offset of the first invalid sequence.
    pub offset: usize,
}

const BOM: &str = "\u{feff}";

/// The SHA-256 of `bytes`, in lowercase hex: the base-text hash recorded with each edit. (Not
/// `DefaultHasher`, whose output may change between Rust releases.)
pub fn hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

impl FileText {
    /// Decodes `bytes`; refuses anything that is not UTF-8.
    pub fn decode(bytes: &[u8]) -> Result<Self, NotUtf8> {
        let text = std::str::from_utf8(bytes).map_err(|e| NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        Ok(Self::from_text(text))
    }

    /// Splits `text` into lines (a BOM at its start is remembered and left out of the lines).
    pub fn from_text(text: &str) -> Self {
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut lines = Vec::new();
        let (mut lf, mut crlf) = (0usize, 0usize);
        let mut rest = body;
        while !rest.is_empty() {
            match rest.find('\n') {
                Some(at) => {
                    let raw = &rest[..at];
                    let line = match raw.strip_suffix('\r') {
                        Some(text) => {
                            crlf += 1;
                            Line {
                                text: text.to_string(),
                                eol: Eol::CrLf,
                            }
                        }
                        None => {
                            lf += 1;
                            Line {
                                text: raw.to_string(),
                                eol: Eol::Lf,
                            }
                        }
                    };
                    lines.push(line);
                    rest = &rest[at + 1..];
                }
                None => {
                    lines.push(Line {
                        text: rest.to_string(),
                        eol: Eol::None,
                    });
                    rest = "";
                }
            }
        }
        let final_newline = lines.last().is_none_or(|l| l.eol != Eol::None);
        Self {
            lines,
            bom,
            style: if crlf > lf { Eol::CrLf } else { Eol::Lf },
            final_newline,
        }
    }

    /// Replaces `len` lines from `start` (0-based) with `replacement`, which take the file's
    /// line-ending style; the file's final newline, or its absence, stays as it was.
    pub fn splice(&mut self, start: usize, len: usize, replacement: Vec<String>) {
        let style = self.style;
        let new = replacement
            .into_iter()
            .map(|text| Line { text, eol: style });
        self.lines.splice(start..start + len, new);
        if let Some(last) = self.lines.last_mut() {
            if !self.final_newline {
                last.eol = Eol::None;
            } else if last.eol == Eol::None {
                last.eol = style;
            }
        }
        // A line that ended the file without a newline and is now followed by others needs one.
        let n = self.lines.len();
        for line in self.lines.iter_mut().take(n.saturating_sub(1)) {
            if line.eol == Eol::None {
                line.eol = style;
            }
        }
    }

    /// The text to write back: the BOM if there was one, then every line with its ending.
    pub fn to_text(&self) -> String {
        let size: usize = self.lines.iter().map(|l| l.text.len() + 2).sum();
        let mut out = String::with_capacity(size + BOM.len());
        if self.bom {
            out.push_str(BOM);
        }
        for line in &self.lines {
            out.push_str(&line.text);
            out.push_str(line.eol.as_str());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_keeps_bom_endings_and_the_missing_final_newline() {
        for text in [
            "",
            "a\n",
            "a\r\nb\r\n",
            "\u{feff}fn main() {}\r\n",
            "mixed\r\nlf\nlast",
            "no newline",
        ] {
            assert_eq!(FileText::from_text(text).to_text(), text, "{text:?}");
        }
        let crlf = FileText::from_text("a\r\nb\r\nc\n");
        assert_eq!(crlf.style, Eol::CrLf);
        assert!(!FileText::from_text("x").final_newline);
    }

    #[test]
    fn splicing_uses_the_file_style_and_keeps_the_final_newline_state() {
        let mut t = FileText::from_text("a\r\nb\r\nc");
        t.splice(2, 1, vec!["c1".into(), "c2".into()]);
        assert_eq!(t.to_text(), "a\r\nb\r\nc1\r\nc2");
        t.splice(1, 2, vec![]);
        assert_eq!(t.to_text(), "a\r\nc2");
        let mut t = FileText::from_text("x\ny\n");
        t.splice(1, 1, vec![]);
        assert_eq!(t.to_text(), "x\n");
    }

    #[test]
    fn non_utf8_is_refused_with_its_offset() {
        assert_eq!(
            FileText::decode(b"ok\n\xe9t\xe9"),
            Err(NotUtf8 { offset: 3 })
        );
    }
}
