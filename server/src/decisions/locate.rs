//! Where a decision's text is now, in a text that may have changed since the run: at the
//! recorded lines while the file is the one the run left (same hash), else where the recorded
//! text still reads the same — at its recorded line, or at the nearest place that holds it. A
//! text too plain to be told apart from others (`}` alone) is found only at its recorded line.

use std::ops::Range;

use super::Decision;

/// Fewer non-blank characters than this and a text is only looked for at its recorded line.
const DISTINCTIVE_CHARS: usize = 12;

/// The byte offset where 1-based line `line` starts (the text's end for the line after the
/// last); `None` past that.
pub fn line_start(text: &str, line: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    if line == 1 {
        return Some(0);
    }
    text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)
}

/// The bytes of 1-based inclusive `lines` (`[l, l - 1]`: the empty place before line `l`).
pub fn line_range(text: &str, lines: [usize; 2]) -> Option<Range<usize>> {
    let start = line_start(text, lines[0])?;
    if lines[1] < lines[0] {
        return Some(start..start);
    }
    let end = line_start(text, lines[1] + 1).unwrap_or(text.len());
    Some(start..end)
}

/// The 1-based line holding byte `at`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn distinctive(text: &str) -> bool {
    text.chars().filter(|c| !c.is_whitespace()).count() >= DISTINCTIVE_CHARS
}

/// Where `d`'s text is in `text` (whose hash is `hash`, see `editor::text_hash`), or `None`
/// when it is not there any more (rewritten, or deleted). Among the places that hold its text,
/// the one whose surrounding lines still read as recorded wins, then the nearest to its
/// recorded line; a plain text (or a place a hunk only removed lines from) must have
/// distinctive surroundings, or be at its recorded line, to count.
pub fn locate(d: &Decision, text: &str, hash: &str) -> Option<Range<usize>> {
    if !d.reverted && hash == d.file_hash {
        return line_range(text, d.lines);
    }
    let expected = d.expected();
    let (before, after) = (d.context_before.as_str(), d.context_after.as_str());
    let recorded = line_start(text, d.lines[0]);
    let at_line_start = |i: usize| i == 0 || text.as_bytes()[i - 1] == b'\n';
    let candidates: Vec<usize> = if expected.is_empty() {
        let around = format!("{before}{after}");
        if around.is_empty() {
            return None;
        }
        text.match_indices(around.as_str())
            .map(|(i, _)| i + before.len())
            .collect()
    } else {
        text.match_indices(expected)
            .map(|(i, _)| i)
            .filter(|&i| at_line_start(i) || !expected.ends_with('\n'))
            .collect()
    };
    let near = recorded.unwrap_or(text.len());
    candidates
        .into_iter()
        .filter_map(|i| {
            let end = i + expected.len();
            let before_ok = !before.is_empty() && text[..i].ends_with(before);
            let after_ok = !after.is_empty() && text[end..].starts_with(after);
            let strong = distinctive(expected)
                || (before_ok && distinctive(before))
                || (after_ok && distinctive(after))
                || Some(i) == recorded;
            strong.then_some((i, usize::from(before_ok) + usize::from(after_ok)))
        })
        .max_by(|(a, sa), (b, sb)| sa.cmp(sb).then(b.abs_diff(near).cmp(&a.abs_diff(near))))
        .map(|(i, _)| i..i + expected.len())
}
