//! The presenting stage's plain-data part: a proposed change cut into hunks, each with the
//! reason it was written, re-anchored on the text the user has *now*.
//!
//! A run reads an open document once, when it starts; the user may type in it while the run
//! works. Before anything reaches the editor, each file's hunks (the changed runs of lines,
//! [`line_hunks`]) are re-anchored: the user's own edits since the run read the file are
//! diffed the same way, a hunk clear of them is moved by the lines they added or removed, and a
//! hunk whose lines the user touched is refused and reported — never applied over the user's
//! typing. The result is one [`ChangeSet`] against the exact text the user has, whose editor
//! (the LSP client, with versioned edits) refuses it again if even that changed since.

use std::ops::Range;
use std::path::Path;

use super::{BlockRecord, ChangedFile, DecisionRecord, FindingStatus, ReviewFinding, TestOutcome};
use crate::editor::{Base, Current, FileChange, Note, TextEdit, text_hash};
use crate::edits::diff::{LineHunk, line_hunks};

/// The byte offset where each line starts, plus the text's length: `starts[n]` is the start of
/// line `n` (0-based), and `starts[lines]` the end.
fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    if *starts.last().unwrap_or(&0) != text.len() {
        starts.push(text.len());
    }
    starts
}

/// Whether a run hunk over `run` lines and a user edit over `user` lines (both of the text the
/// run read) touch the same text. Replacing neighbouring lines is fine; an insertion strictly
/// inside the other's replaced lines, or two insertions at one point (whose order nobody
/// chose), is not.
fn conflicts(run: &Range<usize>, user: &Range<usize>) -> bool {
    match (run.is_empty(), user.is_empty()) {
        (false, false) => run.start < user.end && user.start < run.end,
        (true, false) => user.start < run.start && run.start < user.end,
        (false, true) => run.start < user.start && user.start < run.end,
        (true, true) => run.start == user.start,
    }
}

/// One hunk of a file's change, in the text the run read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedHunk {
    /// The lines it replaces and the lines that replace them.
    pub lines: LineHunk,
    /// The bytes it replaces, in the text the run read.
    pub range: Range<usize>,
    /// The text that replaces them.
    pub new_text: String,
}

/// The hunks that turn `before` into `after`.
pub fn plan_hunks(before: &str, after: &str) -> Vec<PlannedHunk> {
    let (a, b) = (line_starts(before), line_starts(after));
    line_hunks(before, after)
        .into_iter()
        .map(|h| PlannedHunk {
            range: a[h.old.start]..a[h.old.end],
            new_text: after[b[h.new.start]..b[h.new.end]].to_string(),
            lines: h,
        })
        .collect()
}

/// A hunk refused because the user changed its lines while the run worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedHunk {
    /// 1-based inclusive lines of the hunk, in the text the run read.
    pub lines: (usize, usize),
    /// Why, in words for the user.
    pub reason: String,
}

fn shown_lines(r: &Range<usize>) -> (usize, usize) {
    (r.start + 1, r.end.max(r.start + 1))
}

/// Moves `hunks` (computed on `before`) onto `current` (what the user has now): each hunk
/// clear of the user's edits becomes an edit of `current`, paired with its index in `hunks`;
/// the others are refused.
pub fn rebase(
    before: &str,
    current: &str,
    hunks: &[PlannedHunk],
) -> (Vec<(usize, TextEdit)>, Vec<RefusedHunk>) {
    let user = line_hunks(before, current);
    let starts = line_starts(current);
    let mut moved = Vec::new();
    let mut refused = Vec::new();
    for (i, hunk) in hunks.iter().enumerate() {
        let old = &hunk.lines.old;
        if let Some(u) = user.iter().find(|u| conflicts(old, &u.old)) {
            let (a, b) = shown_lines(old);
            let (c, d) = shown_lines(&u.old);
            refused.push(RefusedHunk {
                lines: (a, b),
                reason: format!(
                    "you changed line(s) {c}-{d} while the run worked, where its hunk at line(s) {a}-{b} goes; that hunk was not applied over your typing"
                ),
            });
            continue;
        }
        // Every user edit wholly before the hunk shifts it by the lines it added or removed.
        let shift: isize = user
            .iter()
            .filter(|u| u.old.end <= old.start)
            .map(|u| u.new.len() as isize - u.old.len() as isize)
            .sum();
        let start = old.start as isize + shift;
        let end = old.end as isize + shift;
        let range = usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| Some(*starts.get(s)?..*starts.get(e)?));
        // The lines the hunk replaces must read the same at their new place; the diff makes it
        // so, and this keeps a bug there from ever writing over other text.
        match range {
            Some(range) if current.get(range.clone()) == before.get(hunk.range.clone()) => {
                moved.push((
                    i,
                    TextEdit {
                        range,
                        new_text: hunk.new_text.clone(),
                        note: None,
                    },
                ));
            }
            _ => refused.push(RefusedHunk {
                lines: shown_lines(old),
                reason: "the file changed around this hunk in a way it could not be moved across; it was not applied".into(),
            }),
        }
    }
    (moved, refused)
}

/// What the presenting stage knows about the run, to explain each hunk.
pub struct Explain<'a> {
    /// The run's id and goal, for hunks no decision covers.
    pub run_id: &'a str,
    /// The goal.
    pub goal: &'a str,
    /// Every block's outcome (for the lines each applied block wrote).
    pub blocks: &'a [BlockRecord],
    /// Why each applied block was written.
    pub decisions: &'a [DecisionRecord],
    /// The review's findings.
    pub findings: &'a [ReviewFinding],
    /// The test stage's outcome.
    pub tests: &'a TestOutcome,
}

impl Explain<'_> {
    /// The decision behind a hunk of `file` that wrote new lines `new` (0-based, end
    /// exclusive): that of the latest applied block of this file whose lines meet the hunk's
    /// (later attempts and improve rounds supersede earlier ones).
    fn decision(&self, file: &str, new: &Range<usize>) -> Option<&DecisionRecord> {
        let (first, last) = shown_lines(new);
        self.blocks
            .iter()
            .rev()
            .filter(|b| b.file == file && b.status == "applied")
            .filter(|b| b.lines.is_some_and(|[a, z]| a <= last && first <= z))
            .find_map(|b| {
                self.decisions
                    .iter()
                    .rev()
                    .find(|d| d.file == file && d.step == b.step && d.block == b.index)
            })
    }

    /// The note of a hunk of `file` that wrote new lines `new` (0-based, end exclusive).
    fn note(&self, file: &str, new: &Range<usize>) -> Note {
        let (first, last) = shown_lines(new);
        let decision = self.decision(file, new);
        let findings: Vec<String> = self
            .findings
            .iter()
            .filter(|f| f.file == file && f.status == FindingStatus::New)
            .filter(|f| first <= f.line && f.line <= last)
            .map(|f| {
                format!(
                    "new {} finding at line {}: {} ({})",
                    f.severity.as_str(),
                    f.line,
                    f.message,
                    f.rule_id
                )
            })
            .collect();
        let review = if findings.is_empty() {
            "Review: no new security findings on these lines.".to_string()
        } else {
            format!("Review: {}.", findings.join("; "))
        };
        let tests = format!("Tests: {} — {}", self.tests.status, self.tests.message);
        match decision {
            Some(d) => {
                let mut description = d.rationale.trim().to_string();
                if !d.tradeoffs.is_empty() {
                    description.push_str(&format!("\nTrade-offs: {}", d.tradeoffs.join("; ")));
                }
                if !d.alternatives.is_empty() {
                    description.push_str(&format!(
                        "\nAlternatives considered: {}",
                        d.alternatives.join("; ")
                    ));
                }
                description.push_str(&format!(
                    "\n{review}\n{tests}\n(run {}, {} {})",
                    self.run_id, d.agent, d.model
                ));
                Note {
                    label: d.summary.trim().to_string(),
                    description,
                }
            }
            None => Note {
                label: format!("Conductor run {}: {}", self.run_id, self.goal.trim()),
                description: format!("{review}\n{tests}"),
            },
        }
    }
}

/// One file of the change, ready for the editor: its edits against what the user has now, and
/// the hunks that could not be moved there.
#[derive(Debug)]
pub struct AnchoredFile {
    /// The edits and their base, or why the whole file is refused.
    pub change: Result<FileChange, String>,
    /// Hunks refused because the user typed over their lines.
    pub refused: Vec<RefusedHunk>,
    /// The text the edits apply to (what the user has now).
    pub text: String,
    /// Per edit of `change`, in order: the decision behind it and the line a lens shows.
    pub decisions: Vec<HunkDecision>,
}

/// The decision behind one edit: its step and block, if a block wrote it, and the line a lens
/// shows for it.
pub type HunkDecision = (Option<(String, usize)>, String);

/// A hunk as it lies in the file once applied: what decision anchors in the journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedHunk {
    /// 1-based inclusive lines of its text after the change (`[l, l - 1]`: it only removed
    /// lines, and sits before line `l`).
    pub lines: [usize; 2],
    /// The text it wrote.
    pub written: String,
    /// The text it replaced.
    pub original: String,
    /// Up to [`CONTEXT_LINES`] lines before it after the change, to find a plain text again.
    pub before: String,
    /// Up to [`CONTEXT_LINES`] lines after it.
    pub after: String,
}

/// How many lines around a hunk its anchor keeps, to tell apart two places with the same text.
pub const CONTEXT_LINES: usize = 3;

/// The up to [`CONTEXT_LINES`] whole lines before byte `start` and after byte `end` of `text`
/// (both at line starts).
pub fn context_around(text: &str, start: usize, end: usize) -> (String, String) {
    let head = &text[..start];
    let from = head
        .match_indices('\n')
        .rev()
        .nth(CONTEXT_LINES)
        .map_or(0, |(i, _)| i + 1);
    let tail = &text[end..];
    let to = tail
        .match_indices('\n')
        .nth(CONTEXT_LINES - 1)
        .map_or(tail.len(), |(i, _)| i + 1);
    (head[from..].to_string(), tail[..to].to_string())
}

/// Where each of `edits` (of `text`) lies once they are applied, and the text after them;
/// `None` if the edits do not apply to `text`.
pub fn place(text: &str, edits: &[TextEdit]) -> Option<(String, Vec<PlacedHunk>)> {
    let after = crate::editor::apply_edits(text, edits)?;
    let mut order: Vec<usize> = (0..edits.len()).collect();
    order.sort_by_key(|&i| (edits[i].range.start, edits[i].range.end));
    let mut placed = vec![None; edits.len()];
    // Bytes added so far by the edits before this one.
    let mut delta: isize = 0;
    for i in order {
        let edit = &edits[i];
        let start = (edit.range.start as isize + delta) as usize;
        delta += edit.new_text.len() as isize - edit.range.len() as isize;
        let first = after.get(..start)?.matches('\n').count() + 1;
        let written = edit.new_text.clone();
        let newlines = written.matches('\n').count();
        let last = if written.is_empty() {
            first - 1
        } else {
            first + newlines - usize::from(written.ends_with('\n'))
        };
        let (before, after_lines) = context_around(&after, start, start + written.len());
        placed[i] = Some(PlacedHunk {
            lines: [first, last],
            original: text.get(edit.range.clone())?.to_string(),
            written,
            before,
            after: after_lines,
        });
    }
    Some((after, placed.into_iter().collect::<Option<Vec<_>>>()?))
}

/// Anchors `file`'s change on what the user has now: `current` (the open buffer, when the
/// editor has the file open) or the file on disk, which must still hold what the run read.
/// Notes are appended to `notes`, one per hunk.
pub fn anchor(
    file: &ChangedFile,
    current: Option<Current>,
    explain: &Explain<'_>,
    notes: &mut Vec<Note>,
) -> AnchoredFile {
    let refuse = |why: String| AnchoredFile {
        change: Err(why),
        refused: Vec::new(),
        text: String::new(),
        decisions: Vec::new(),
    };
    let before = file.before.as_deref();
    let (base, now) = match (current, before) {
        (Some(current), Some(_)) => (current.base, current.text),
        (Some(_), None) => {
            return refuse(format!(
                "{} was created in the editor while the run worked; the run's new file was not written over it",
                file.path
            ));
        }
        (None, None) => match std::fs::symlink_metadata(&file.real) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                (Base::Missing, String::new())
            }
            _ => {
                return refuse(format!(
                    "{} exists now, and the run meant to create it; it was not overwritten",
                    file.path
                ));
            }
        },
        (None, Some(before)) => match read_disk(&file.real) {
            Ok(Some(disk)) if disk == before => (
                Base::Disk {
                    hash: text_hash(disk.as_bytes()),
                },
                disk,
            ),
            Ok(Some(_)) => {
                return refuse(format!(
                    "{} changed on disk since the run read it{}; nothing was written to it",
                    file.path,
                    if matches!(file.base, Base::Open { .. }) {
                        " (and it is no longer open)"
                    } else {
                        ""
                    }
                ));
            }
            Ok(None) => {
                return refuse(format!(
                    "{} no longer exists (deleted or renamed while the run worked); nothing was written",
                    file.path
                ));
            }
            Err(why) => return refuse(format!("{}: {why}", file.path)),
        },
    };
    let before = before.unwrap_or("");
    let hunks = plan_hunks(before, &file.after);
    let (moved, refused) = if now == before {
        let moved = hunks
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    i,
                    TextEdit {
                        range: h.range.clone(),
                        new_text: h.new_text.clone(),
                        note: None,
                    },
                )
            })
            .collect();
        (moved, Vec::new())
    } else {
        rebase(before, &now, &hunks)
    };
    let mut decisions = Vec::new();
    let edits = moved
        .into_iter()
        .map(|(i, mut edit)| {
            let new = &hunks[i].lines.new;
            let note = explain.note(&file.path, new);
            decisions.push((
                explain
                    .decision(&file.path, new)
                    .map(|d| (d.step.clone(), d.block)),
                note.label.clone(),
            ));
            notes.push(note);
            edit.note = Some(notes.len() - 1);
            edit
        })
        .collect::<Vec<_>>();
    if edits.is_empty() {
        let why = match refused.first() {
            Some(r) => format!("{}: {}", file.path, r.reason),
            None => format!("{}: nothing left to change", file.path),
        };
        return AnchoredFile {
            change: Err(why),
            refused,
            text: String::new(),
            decisions: Vec::new(),
        };
    }
    AnchoredFile {
        change: Ok(FileChange {
            path: file.real.clone(),
            base,
            edits,
        }),
        refused,
        text: now,
        decisions,
    }
}

/// The file's text on disk; `Ok(None)` when it does not exist.
fn read_disk(path: &Path) -> Result<Option<String>, String> {
    match crate::util::read_regular_text(path, crate::util::MAX_READ_BYTES) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("cannot read it: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::apply_edits;

    fn edits(moved: Vec<(usize, TextEdit)>) -> Vec<TextEdit> {
        moved.into_iter().map(|(_, e)| e).collect()
    }

    #[test]
    fn hunks_reproduce_the_change() {
        let before = "a\nb\nc\nd\ne\n";
        for after in [
            "a\nB\nc\nd\ne\n",
            "a\nb\nc\nd\ne\nf\n",
            "x\n",
            "",
            "a\nb\nc\nd\ne",
        ] {
            let hunks = plan_hunks(before, after);
            let (moved, refused) = rebase(before, before, &hunks);
            assert!(refused.is_empty());
            assert_eq!(
                apply_edits(before, &edits(moved)).as_deref(),
                Some(after),
                "{after:?}"
            );
        }
    }

    #[test]
    fn a_hunk_clear_of_the_users_typing_moves_and_one_under_it_is_refused() {
        let before = "fn a() {}\nfn b() {}\nfn c() {}\nfn d() {}\n";
        // The run changes b and d.
        let after = "fn a() {}\nfn b2() {}\nfn c() {}\nfn d2() {}\n";
        let hunks = plan_hunks(before, after);
        assert_eq!(hunks.len(), 2);
        // The user added two lines at the top: both hunks move down.
        let typed = "// one\n// two\nfn a() {}\nfn b() {}\nfn c() {}\nfn d() {}\n";
        let (moved, refused) = rebase(before, typed, &hunks);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(
            apply_edits(typed, &edits(moved)).as_deref(),
            Some("// one\n// two\nfn a() {}\nfn b2() {}\nfn c() {}\nfn d2() {}\n")
        );
        // The user rewrote d: the hunk on d is refused, the one on b applies.
        let typed = "fn a() {}\nfn b() {}\nfn c() {}\nfn mine() {}\n";
        let (moved, refused) = rebase(before, typed, &hunks);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].lines, (4, 4));
        assert!(refused[0].reason.contains("not applied over your typing"));
        assert_eq!(
            apply_edits(typed, &edits(moved)).as_deref(),
            Some("fn a() {}\nfn b2() {}\nfn c() {}\nfn mine() {}\n")
        );
        // The user deleted line c, between the two hunks: both still apply, around it.
        let typed = "fn a() {}\nfn b() {}\nfn d() {}\n";
        let (moved, refused) = rebase(before, typed, &hunks);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(
            apply_edits(typed, &edits(moved)).as_deref(),
            Some("fn a() {}\nfn b2() {}\nfn d2() {}\n")
        );
    }

    #[test]
    fn placed_hunks_name_the_lines_they_occupy_after_the_change() {
        let before = "a\nb\nc\nd\ne\n";
        // b replaced by two lines, d removed, a line added at the end.
        let after = "a\nB1\nB2\nc\ne\nf\n";
        let hunks = plan_hunks(before, after);
        let (moved, _) = rebase(before, before, &hunks);
        let edits = edits(moved);
        let (text, placed) = place(before, &edits).expect("applies");
        assert_eq!(text, after);
        assert_eq!(placed[0].before, "a\n");
        assert_eq!(placed[0].after, "c\ne\nf\n");
        assert_eq!(placed[1].before, "B1\nB2\nc\n");
        let shown: Vec<([usize; 2], &str, &str)> = placed
            .iter()
            .map(|p| (p.lines, p.written.as_str(), p.original.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ([2, 3], "B1\nB2\n", "b\n"),
                ([5, 4], "", "d\n"),
                ([6, 6], "f\n", ""),
            ]
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1..3], ["B1", "B2"]);
    }

    #[test]
    fn insertions_at_one_point_conflict_and_neighbours_do_not() {
        assert!(conflicts(&(2..2), &(2..2)));
        assert!(!conflicts(&(2..2), &(3..3)));
        assert!(conflicts(&(2..4), &(3..3)));
        assert!(!conflicts(&(2..4), &(4..4)));
        assert!(!conflicts(&(2..4), &(4..6)));
        assert!(conflicts(&(2..4), &(3..6)));
        assert!(conflicts(&(3..3), &(2..4)));
        assert!(!conflicts(&(2..2), &(2..4)));
    }

    #[test]
    fn a_property_rebased_hunks_equal_applying_both_changes_when_they_are_apart() {
        // Lines 0..40; the run edits some lines, the user others, never the same or adjacent
        // insertion points: the result must be the run's change and the user's together.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..300 {
            let lines: Vec<String> = (0..40).map(|i| format!("line {i}\n")).collect();
            let mut run = lines.clone();
            let mut user = lines.clone();
            let mut expected = lines.clone();
            // Even lines are the run's, odd lines are the user's; each is replaced or kept.
            for i in 0..40 {
                match (i % 2 == 0, next(4)) {
                    (true, 0) => {
                        run[i] = format!("run {i}\n");
                        expected[i] = run[i].clone();
                    }
                    (false, 0) => {
                        user[i] = format!("user {i}\n");
                        expected[i] = user[i].clone();
                    }
                    _ => {}
                }
            }
            let (before, after, typed) = (lines.concat(), run.concat(), user.concat());
            let hunks = plan_hunks(&before, &after);
            let (moved, refused) = rebase(&before, &typed, &hunks);
            // Adjacent replaced lines of the two sides are neighbours, never a conflict.
            assert!(refused.is_empty(), "{refused:?}");
            assert_eq!(
                apply_edits(&typed, &edits(moved)).as_deref(),
                Some(expected.concat().as_str())
            );
        }
    }
}
