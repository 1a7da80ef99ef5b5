//! Marks: byte ranges of an open document that follow its edits — where a decision's text is.
//!
//! The document owns its marks and moves them in the same step that edits its text (arrival
//! order, nothing awaited), so a mark is never a keystroke behind. What a mark stands for is
//! not known here: its owner (the decision index) knows it by its key. An edit before a mark
//! moves it; an edit inside it grows or shrinks it and marks it *touched* (the text is no
//! longer what the run wrote); an edit that covers it whole drops it (the user rewrote that
//! region). Marks are kept in a shared vector that is copied only when a snapshot still holds
//! the old one, so a snapshot costs nothing more.

use std::ops::Range;
use std::sync::Arc;

/// One mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The owner's key.
    pub key: u64,
    /// The bytes it covers now (empty: a place between two characters).
    pub start: usize,
    /// End, exclusive.
    pub end: usize,
    /// Whether an edit has changed text inside it since it was set.
    pub touched: bool,
}

impl Mark {
    /// Its range.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// The marks of one document, in no particular order.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    marks: Arc<Vec<Mark>>,
    /// Keys of marks set on this document and dropped since by an edit that covered them.
    gone: Arc<Vec<u64>>,
    /// Keys their owner looked for in the text as it is and did not find: not looked for
    /// again until the next edit (which may bring the text back).
    unfound: Arc<Vec<u64>>,
}

impl Marks {
    /// Sets (or replaces) the mark `key` over `range`, untouched.
    pub fn set(&mut self, key: u64, range: Range<usize>) {
        if self.gone.contains(&key) {
            Arc::make_mut(&mut self.gone).retain(|k| *k != key);
        }
        let marks = Arc::make_mut(&mut self.marks);
        marks.retain(|m| m.key != key);
        marks.push(Mark {
            key,
            start: range.start,
            end: range.end.max(range.start),
            touched: false,
        });
    }

    /// Forgets the mark `key`, set, dropped or unfound: its owner will look for its text again.
    pub fn forget(&mut self, key: u64) {
        if self.gone.contains(&key) {
            Arc::make_mut(&mut self.gone).retain(|k| *k != key);
        }
        if self.unfound.contains(&key) {
            Arc::make_mut(&mut self.unfound).retain(|k| *k != key);
        }
        if self.marks.iter().any(|m| m.key == key) {
            Arc::make_mut(&mut self.marks).retain(|m| m.key != key);
        }
    }

    /// Whether the mark `key` was set here and dropped since by an edit over its whole region.
    pub fn is_gone(&self, key: u64) -> bool {
        self.gone.contains(&key)
    }

    /// Records that `key`'s text is not in the document as it is now.
    pub fn set_unfound(&mut self, key: u64) {
        if !self.unfound.contains(&key) {
            Arc::make_mut(&mut self.unfound).push(key);
        }
    }

    /// Whether `key` was looked for since the last edit and not found.
    pub fn is_unfound(&self, key: u64) -> bool {
        self.unfound.contains(&key)
    }

    /// The mark `key`.
    pub fn get(&self, key: u64) -> Option<Mark> {
        self.marks.iter().find(|m| m.key == key).copied()
    }

    /// Every mark.
    pub fn all(&self) -> &[Mark] {
        &self.marks
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// Follows one edit: `old` (bytes of the text before it) replaced by `new_len` bytes.
    pub fn edit(&mut self, old: Range<usize>, new_len: usize) {
        if !self.unfound.is_empty() {
            self.unfound = Arc::default();
        }
        if self.marks.is_empty() {
            return;
        }
        // Nothing to do when every mark ends before the edit: the common case of typing below
        // the marked code costs one pass and no copy.
        if self.marks.iter().all(|m| m.end < old.start) {
            return;
        }
        let (s, e) = (old.start, old.end.max(old.start));
        let shift = |at: usize| at + new_len - (e - s);
        let mut dropped = Vec::new();
        let marks = Arc::make_mut(&mut self.marks);
        marks.retain_mut(|m| {
            let (a, b) = (m.start, m.end);
            if a == b {
                // A place: moved by edits wholly before it, dropped by one that spans it.
                if e <= a && !(s == e && s == a) {
                    m.start = shift(a);
                    m.end = m.start;
                } else if s < a && a < e {
                    dropped.push(m.key);
                    return false;
                }
                return true;
            }
            if e <= a {
                // Wholly before (an insertion at the mark's start is before it, not in it).
                m.start = shift(a);
                m.end = shift(b);
            } else if s >= b {
                // Wholly after; an insertion at the mark's end is after it.
            } else if s <= a && e >= b {
                // The whole region replaced: the user rewrote it.
                dropped.push(m.key);
                return false;
            } else {
                m.touched = true;
                if a <= s && e <= b {
                    // Inside.
                    m.end = shift(b);
                } else if s < a {
                    // Over its start: what remains begins after the new text.
                    m.start = s + new_len;
                    m.end = shift(b).max(m.start);
                } else {
                    // Over its end.
                    m.end = s;
                }
                if m.start >= m.end {
                    dropped.push(m.key);
                    return false;
                }
            }
            true
        });
        if !dropped.is_empty() {
            Arc::make_mut(&mut self.gone).extend(dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `old → new` to `text` and to the marks, and returns each mark's text.
    fn apply(text: &mut String, marks: &mut Marks, old: Range<usize>, new: &str) {
        text.replace_range(old.clone(), new);
        marks.edit(old, new.len());
    }

    fn marked(text: &str, marks: &Marks, key: u64) -> Option<(String, bool)> {
        marks
            .get(key)
            .map(|m| (text[m.range()].to_string(), m.touched))
    }

    #[test]
    fn a_mark_follows_edits_before_inside_and_after_it() {
        let mut text = String::from("fn a() {}\nfn run() { x(); }\nfn z() {}\n");
        let mut marks = Marks::default();
        let start = text.find("fn run").expect("run");
        let end = start + "fn run() { x(); }\n".len();
        marks.set(1, start..end);
        // Typing above moves it.
        apply(&mut text, &mut marks, 0..0, "// hi\n");
        assert_eq!(
            marked(&text, &marks, 1),
            Some(("fn run() { x(); }\n".into(), false))
        );
        // Typing below, and right at its end, leaves it alone.
        let len = text.len();
        apply(&mut text, &mut marks, len..len, "fn w() {}\n");
        let at_end = marks.get(1).expect("mark").end;
        apply(&mut text, &mut marks, at_end..at_end, "\n");
        assert_eq!(
            marked(&text, &marks, 1),
            Some(("fn run() { x(); }\n".into(), false))
        );
        // Typing inside grows it and touches it.
        let inside = text.find("x();").expect("x");
        apply(&mut text, &mut marks, inside..inside, "y(); ");
        assert_eq!(
            marked(&text, &marks, 1),
            Some(("fn run() { y(); x(); }\n".into(), true))
        );
        // Replacing the whole region drops it, once.
        let m = marks.get(1).expect("mark");
        apply(
            &mut text,
            &mut marks,
            m.start - 1..m.end,
            "\nfn mine() {}\n",
        );
        assert_eq!(marks.get(1), None);
        assert!(marks.is_gone(1));
        // Forgotten, it is neither set nor gone: its owner may look for it again.
        marks.forget(1);
        assert!(!marks.is_gone(1));
    }

    #[test]
    fn an_unfound_key_is_remembered_until_the_next_edit_even_with_no_marks() {
        let mut text = String::from("fn user_rewrote_it() {}\n");
        let mut marks = Marks::default();
        marks.set_unfound(4);
        marks.set_unfound(4);
        assert!(marks.is_unfound(4));
        assert!(!marks.is_unfound(5));
        // A copy (a snapshot) sees it too.
        assert!(marks.clone().is_unfound(4));
        // Any edit may bring the text back: it is looked for again.
        apply(&mut text, &mut marks, 0..0, " ");
        assert!(!marks.is_unfound(4));
        marks.set_unfound(4);
        marks.forget(4);
        assert!(!marks.is_unfound(4));
    }

    #[test]
    fn an_edit_over_one_end_keeps_the_rest() {
        let mut text = String::from("aaaa RUN-WROTE-THIS bbbb");
        let mut marks = Marks::default();
        let start = text.find("RUN").expect("run");
        marks.set(7, start..start + "RUN-WROTE-THIS".len());
        // Over its start.
        apply(&mut text, &mut marks, start - 2..start + 4, "XY");
        assert_eq!(marked(&text, &marks, 7), Some(("WROTE-THIS".into(), true)));
        // Over its end.
        let m = marks.get(7).expect("mark");
        apply(&mut text, &mut marks, m.end - 4..m.end + 2, "");
        assert_eq!(marked(&text, &marks, 7), Some(("WROTE-".into(), true)));
    }

    #[test]
    fn a_place_moves_with_edits_before_it_and_dies_with_one_across_it() {
        let mut text = String::from("one\ntwo\nthree\n");
        let mut marks = Marks::default();
        marks.set(3, 4..4);
        apply(&mut text, &mut marks, 0..0, "zero\n");
        assert_eq!(marks.get(3).map(|m| m.range()), Some(9..9));
        // Typing right at the place is after it.
        apply(&mut text, &mut marks, 9..9, "X");
        assert_eq!(marks.get(3).map(|m| m.range()), Some(9..9));
        apply(&mut text, &mut marks, 8..11, "");
        assert_eq!(marks.get(3), None);
    }

    #[test]
    fn a_property_untouched_marks_keep_their_text() {
        // Random edits anywhere; a mark that is neither touched nor dropped still covers the
        // very text it was set on.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        for _ in 0..200 {
            let mut text: String = (0..30).map(|i| format!("line {i:02}\n")).collect();
            let mut marks = Marks::default();
            let mut expected = Vec::new();
            for key in 0..5u64 {
                let a = next(30) * 8;
                let b = (a + 8 * (1 + next(3))).min(text.len());
                marks.set(key, a..b);
                expected.push(text[a..b].to_string());
            }
            for _ in 0..20 {
                let a = next(text.len() + 1);
                let b = (a + next(6)).min(text.len());
                let new = ["", "z", "zz\n", "hello"][next(4)];
                apply(&mut text, &mut marks, a..b, new);
            }
            for m in marks.all() {
                assert!(m.start <= m.end && m.end <= text.len(), "{m:?}");
                if !m.touched {
                    assert_eq!(text[m.range()], expected[m.key as usize], "{m:?}");
                }
            }
        }
    }
}
