//! Where a bound cut a scan short: the depth bounds of the data flow and of the rules'
//! predicates, and the query's match budget on pathologically deep trees record here which
//! top-level item they stopped in, so that the findings of that item (or, with none, a note
//! of its own) can say the analysis there was incomplete.
//!
//! The bounds sit in dozens of small recursive helpers that share no state, so the record is a
//! per-thread one that [`Recording`] opens for one `scan_in` call and closes again; a bound
//! hit outside a recording (a test calling a helper directly) records nothing.

use std::cell::RefCell;
use std::ops::Range;

/// The rule id of the note on an item whose analysis was cut short and that has no finding.
pub const ANALYSIS_INCOMPLETE: &str = "conductor/analysis-incomplete";

/// Which bound stopped the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The data flow's nesting bound (`flow::MAX_DEPTH`).
    FlowDepth,
    /// A rule predicate's bound on nested macro token trees.
    TokenDepth,
    /// The query's match budget on a deeply nested item.
    MatchBudget,
}

impl Cut {
    /// What was left out, in words for the developer.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Cut::FlowDepth => {
                "the data flow stopped at code nested more than 200 levels deep, so untrusted data may reach a sink unseen"
            }
            Cut::TokenDepth => {
                "a rule stopped reading macro arguments nested more than 200 levels deep"
            }
            Cut::MatchBudget => {
                "the rule patterns ran out of their match budget in code nested more than 400 levels deep, so some matches may be missing"
            }
        }
    }
}

struct Recorder {
    /// The top-level items being scanned, in order, and the first cut seen in each.
    items: Vec<(Range<usize>, Option<Cut>)>,
    /// The first cut seen outside those items (in a helper function elsewhere in the file).
    elsewhere: Option<Cut>,
}

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Records that `cut` stopped the analysis at byte `at`. Cheap, and a no-op outside a
/// [`Recording`].
pub(crate) fn record(at: usize, cut: Cut) {
    RECORDER.with_borrow_mut(|recorder| {
        let Some(recorder) = recorder.as_mut() else {
            return;
        };
        let i = recorder.items.partition_point(|(r, _)| r.end <= at);
        match recorder.items.get_mut(i) {
            Some((range, slot)) if range.start <= at => {
                slot.get_or_insert(cut);
            }
            _ => {
                recorder.elsewhere.get_or_insert(cut);
            }
        }
    });
}

/// The cuts seen while a [`Recording`] was open.
#[derive(Debug, Default)]
pub(crate) struct Cuts {
    /// The items scanned, each with the first cut in it.
    pub items: Vec<(Range<usize>, Option<Cut>)>,
    /// The first cut outside them.
    pub elsewhere: Option<Cut>,
}

impl Cuts {
    /// The cut in the item that holds byte `at`, if any.
    #[cfg(test)]
    pub(crate) fn at(&self, at: usize) -> Option<Cut> {
        let i = self.items.partition_point(|(r, _)| r.end <= at);
        self.items
            .get(i)
            .filter(|(r, _)| r.start <= at)
            .and_then(|(_, c)| *c)
    }
}

/// An open record of cuts for one scan of `items` (sorted, not overlapping). Dropping it
/// without [`finish`](Self::finish) discards the record, so a panic cannot leave one open.
pub(crate) struct Recording(());

impl Recording {
    pub(crate) fn begin(items: Vec<Range<usize>>) -> Recording {
        RECORDER.with_borrow_mut(|recorder| {
            *recorder = Some(Recorder {
                items: items.into_iter().map(|r| (r, None)).collect(),
                elsewhere: None,
            });
        });
        Recording(())
    }

    pub(crate) fn finish(self) -> Cuts {
        let recorder = RECORDER.with_borrow_mut(Option::take);
        drop(self);
        match recorder {
            Some(r) => Cuts {
                items: r.items,
                elsewhere: r.elsewhere,
            },
            None => Cuts::default(),
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        RECORDER.with_borrow_mut(|recorder| *recorder = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_attributed_to_the_item_that_holds_them() {
        let recording = Recording::begin(vec![0..10, 20..30]);
        record(25, Cut::FlowDepth);
        record(27, Cut::MatchBudget);
        record(15, Cut::TokenDepth);
        let cuts = recording.finish();
        assert_eq!(cuts.at(5), None);
        assert_eq!(cuts.at(20), Some(Cut::FlowDepth), "the first cut is kept");
        assert_eq!(cuts.elsewhere, Some(Cut::TokenDepth));
        // Closed: nothing more is recorded.
        record(5, Cut::FlowDepth);
        assert!(RECORDER.with_borrow(Option::is_none));
    }
}
