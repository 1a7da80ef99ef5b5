//! Unified diffs of a planned edit, for people reading `conductor apply` (Myers' O(ND)
//! algorithm on lines, after the common start and end are set aside).

/// One step of an edit script, with the positions in the old and new lines before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal(usize, usize),
    Delete(usize, usize),
    Insert(usize, usize),
}

impl Op {
    fn at(self) -> (usize, usize) {
        match self {
            Op::Equal(a, b) | Op::Delete(a, b) | Op::Insert(a, b) => (a, b),
        }
    }
}

/// The shortest edit script from `a` to `b` (Myers): deletions and insertions between equal runs.
fn myers(a: &[&str], b: &[&str], a0: usize, b0: usize, out: &mut Vec<Op>) {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (n + m) as usize;
    let off = max as isize + 1;
    let mut v = vec![0isize; 2 * max + 3];
    // The frontier before each round d, as the window k in -d-1..=d+1.
    let mut trace: Vec<Vec<isize>> = Vec::new();
    'rounds: for d in 0..=max as isize {
        trace.push(v[(off - d - 1) as usize..=(off + d + 1) as usize].to_vec());
        let mut k = -d;
        while k <= d {
            let i = (off + k) as usize;
            let mut x = if k == -d || (k != d && v[i - 1] < v[i + 1]) {
                v[i + 1]
            } else {
                v[i - 1] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[i] = x;
            if x >= n && y >= m {
                break 'rounds;
            }
            k += 2;
        }
    }
    let mut ops = Vec::new();
    let (mut x, mut y) = (n, m);
    for d in (0..trace.len() as isize).rev() {
        let w = &trace[d as usize];
        let at = |k: isize| w[(k + d + 1) as usize];
        let k = x - y;
        let prev_k = if k == -d || (k != d && at(k - 1) < at(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = if d == 0 { 0 } else { at(prev_k) };
        let prev_y = if d == 0 { 0 } else { prev_x - prev_k };
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            ops.push(Op::Equal(x as usize + a0, y as usize + b0));
        }
        if d > 0 {
            if x == prev_x {
                ops.push(Op::Insert(x as usize + a0, prev_y as usize + b0));
            } else {
                ops.push(Op::Delete(prev_x as usize + a0, y as usize + b0));
            }
        }
        x = prev_x;
        y = prev_y;
    }
    out.extend(ops.into_iter().rev());
}

fn script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut ops: Vec<Op> = (0..prefix).map(|i| Op::Equal(i, i)).collect();
    myers(
        &a[prefix..a.len() - suffix],
        &b[prefix..b.len() - suffix],
        prefix,
        prefix,
        &mut ops,
    );
    let (da, db) = (a.len() - suffix, b.len() - suffix);
    ops.extend((0..suffix).map(|i| Op::Equal(da + i, db + i)));
    ops
}

fn shown(line: &str) -> &str {
    line.strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(line)
}

/// One run of changed lines: `old` lines of the first text (0-based, end exclusive; empty for
/// a pure insertion before line `old.start`) became `new` lines of the second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineHunk {
    /// The replaced lines of the first text.
    pub old: std::ops::Range<usize>,
    /// The lines that replace them in the second.
    pub new: std::ops::Range<usize>,
}

/// The changed runs of lines from `before` to `after` (lines split after each `\n`), in order,
/// with no context: the hunks a reviewer accepts or rejects one by one.
pub fn line_hunks(before: &str, after: &str) -> Vec<LineHunk> {
    let a: Vec<&str> = before.split_inclusive('\n').collect();
    let b: Vec<&str> = after.split_inclusive('\n').collect();
    let mut hunks: Vec<LineHunk> = Vec::new();
    let mut open: Option<LineHunk> = None;
    for op in script(&a, &b) {
        match op {
            Op::Equal(..) => hunks.extend(open.take()),
            Op::Delete(i, j) => {
                let h = open.get_or_insert(LineHunk {
                    old: i..i,
                    new: j..j,
                });
                h.old.end = i + 1;
            }
            Op::Insert(i, j) => {
                let h = open.get_or_insert(LineHunk {
                    old: i..i,
                    new: j..j,
                });
                h.new.end = j + 1;
            }
        }
    }
    hunks.extend(open);
    hunks
}

/// A unified diff with three lines of context; `before` is `None` for a new file. Empty when the
/// texts are equal.
pub fn unified(path: &str, before: Option<&str>, after: &str) -> String {
    const CONTEXT: usize = 3;
    let a: Vec<&str> = before.unwrap_or("").split_inclusive('\n').collect();
    let b: Vec<&str> = after.split_inclusive('\n').collect();
    let ops = script(&a, &b);
    let changes: Vec<usize> = (0..ops.len())
        .filter(|&i| !matches!(ops[i], Op::Equal(..)))
        .collect();
    if changes.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    match before {
        Some(_) => out.push_str(&format!("--- a/{path}\n+++ b/{path}\n")),
        None => out.push_str(&format!("--- /dev/null\n+++ b/{path}\n")),
    }
    let mut g = 0;
    while g < changes.len() {
        let mut last = g;
        while last + 1 < changes.len() && changes[last + 1] - changes[last] <= 2 * CONTEXT + 1 {
            last += 1;
        }
        let from = changes[g].saturating_sub(CONTEXT);
        let to = (changes[last] + CONTEXT + 1).min(ops.len());
        let hunk = &ops[from..to];
        let a_len = hunk.iter().filter(|o| !matches!(o, Op::Insert(..))).count();
        let b_len = hunk.iter().filter(|o| !matches!(o, Op::Delete(..))).count();
        let (a0, b0) = hunk[0].at();
        let a_start = if a_len == 0 { a0 } else { a0 + 1 };
        let b_start = if b_len == 0 { b0 } else { b0 + 1 };
        out.push_str(&format!("@@ -{a_start},{a_len} +{b_start},{b_len} @@\n"));
        for op in hunk {
            let (sign, line) = match *op {
                Op::Equal(i, _) => (' ', a[i]),
                Op::Delete(i, _) => ('-', a[i]),
                Op::Insert(_, j) => ('+', b[j]),
            };
            out.push(sign);
            out.push_str(shown(line));
            out.push('\n');
            if !line.ends_with('\n') {
                out.push_str("\\ No newline at end of file\n");
            }
        }
        g = last + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_hunks_are_the_changed_runs_without_context() {
        let before = "a\nb\nc\nd\ne\n";
        let after = "a\nB\nc\nd\nx\ne\n";
        assert_eq!(
            line_hunks(before, after),
            vec![
                LineHunk {
                    old: 1..2,
                    new: 1..2
                },
                LineHunk {
                    old: 4..4,
                    new: 4..5
                },
            ]
        );
        assert_eq!(
            line_hunks(before, "a\ne\n"),
            vec![LineHunk {
                old: 1..4,
                new: 1..1
            }]
        );
        assert!(line_hunks(before, before).is_empty());
        assert_eq!(
            line_hunks("", "x\n"),
            vec![LineHunk {
                old: 0..0,
                new: 0..1
            }]
        );
    }

    use super::*;

    #[test]
    fn a_changed_line_gets_one_hunk_with_context() {
        let before = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let after = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified("x.rs", Some(before), after),
            "--- a/x.rs\n+++ b/x.rs\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn new_files_far_apart_changes_and_missing_newlines_are_shown() {
        assert_eq!(
            unified("n.rs", None, "fn a() {}\n"),
            "--- /dev/null\n+++ b/n.rs\n@@ -0,0 +1,1 @@\n+fn a() {}\n"
        );
        let before: String = (0..20).map(|i| format!("{i}\n")).collect();
        let after = before.replace("2\n", "two\n").replace("17\n", "");
        let diff = unified("f.rs", Some(&before), &after);
        assert_eq!(diff.matches("@@ -").count(), 2, "{diff}");
        assert!(diff.contains("-17\n"), "{diff}");
        let diff = unified("e.rs", Some("x\ny"), "x\nz");
        assert!(
            diff.ends_with("-y\n\\ No newline at end of file\n+z\n\\ No newline at end of file\n"),
            "{diff}"
        );
        assert_eq!(unified("same.rs", Some("a\n"), "a\n"), "");
    }
}
