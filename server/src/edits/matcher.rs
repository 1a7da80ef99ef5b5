//! Staged, unique, whole-line matching of a SEARCH part against a file's lines: exact; then with
//! a consistent leading-whitespace shift; then also ignoring trailing whitespace and blank lines
//! at the SEARCH part's ends. The first stage that finds anything decides: one match is taken,
//! two or more are refused as ambiguous. Nothing here guesses by edit distance.
//!
//! Pure: lines in, a match or a miss out, so a later stage can re-run it on a newer text.

use std::collections::HashMap;

use serde::Serialize;

/// Which matching stage found the SEARCH part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Every line identical.
    Exact,
    /// The same lines with one leading-whitespace shift (the replacement is shifted alike).
    Indentation,
    /// Also ignoring trailing whitespace and blank lines at the ends of the SEARCH part.
    Whitespace,
    /// No matching: an empty SEARCH part created the file (or filled an empty one).
    Create,
}

impl Stage {
    /// The stage's name, as in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Exact => "exact",
            Stage::Indentation => "indentation",
            Stage::Whitespace => "whitespace",
            Stage::Create => "create",
        }
    }
}

/// Where a SEARCH part matched and what goes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The stage that found it.
    pub stage: Stage,
    /// The first matched line, 0-based.
    pub start: usize,
    /// How many lines matched.
    pub len: usize,
    /// The lines to put in their place (re-indented for a shifted match).
    pub replacement: Vec<String>,
}

/// The closest place to a SEARCH part that matched nothing, for "did you mean".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nearest {
    /// The file's lines there, 1-based numbers and texts.
    pub lines: Vec<(usize, String)>,
    /// The first line there that differs from SEARCH: its number, the file's text and SEARCH's.
    pub first_difference: Option<(usize, String, String)>,
}

/// Why a SEARCH part was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No stage found it.
    NotFound(Option<Nearest>),
    /// A stage found it in more than one place.
    Ambiguous {
        /// The stage.
        stage: Stage,
        /// The first line (0-based) of each candidate, at most [`MAX_CANDIDATES`].
        starts: Vec<usize>,
        /// How many places matched in all.
        count: usize,
        /// The length of each candidate in lines.
        len: usize,
    },
    /// A shifted match whose replacement has a line that the shift cannot be applied to (less
    /// indented than the SEARCH part, with different whitespace).
    CannotReindent {
        /// The line of REPLACE, 1-based.
        line: usize,
        /// Its text.
        text: String,
    },
}

/// How many candidates of an ambiguous match are listed.
pub const MAX_CANDIDATES: usize = 10;

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

fn leading_ws(s: &str) -> &str {
    &s[..s.len() - s.trim_start().len()]
}

/// The longest common prefix of two strings, on a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            break;
        }
        end = i + x.len_utf8();
    }
    &a[..end]
}

/// The search lines of one relaxed stage: their common indentation and each line without it.
struct Shape<'a> {
    /// The SEARCH part's common indentation (of its non-blank lines).
    common: &'a str,
    /// Each line without `common` (after trimming its end at the whitespace stage); `None` for a
    /// blank line, which matches any blank line.
    dedented: Vec<Option<&'a str>>,
    /// The first non-blank line.
    first: usize,
}

impl<'a> Shape<'a> {
    fn new(lines: &[&'a str], trim_end: bool) -> Option<Self> {
        let first = lines.iter().position(|l| !blank(l))?;
        let mut common = leading_ws(lines[first]);
        for l in lines.iter().filter(|l| !blank(l)) {
            common = common_prefix(common, leading_ws(l));
        }
        let dedented = lines
            .iter()
            .map(|l| {
                if blank(l) {
                    None
                } else {
                    let l = if trim_end { l.trim_end() } else { l };
                    Some(&l[common.len()..])
                }
            })
            .collect();
        Some(Self {
            common,
            dedented,
            first,
        })
    }

    /// The file's indentation in place of `common` if the window at `start` matches.
    fn matches_at<'f, L: AsRef<str>>(
        &self,
        file: &'f [L],
        start: usize,
        trim_end: bool,
    ) -> Option<&'f str> {
        let norm = |s: &'f str| if trim_end { s.trim_end() } else { s };
        let d0 = self.dedented[self.first]?;
        let f0 = norm(file[start + self.first].as_ref());
        if !f0.ends_with(d0) {
            return None;
        }
        let prefix = &f0[..f0.len() - d0.len()];
        if !prefix.chars().all(char::is_whitespace) {
            return None;
        }
        for (i, d) in self.dedented.iter().enumerate() {
            let f = norm(file[start + i].as_ref());
            let ok = match d {
                None => blank(f),
                Some(d) => {
                    f.len() == prefix.len() + d.len() && f.starts_with(prefix) && f.ends_with(d)
                }
            };
            if !ok {
                return None;
            }
        }
        Some(prefix)
    }
}

/// Every window of `file` where `test` holds, as (first line, the value `test` returned): all of
/// them are counted, so that a second place is never missed.
fn windows<L, T>(
    file: &[L],
    len: usize,
    mut test: impl FnMut(usize) -> Option<T>,
) -> (Vec<(usize, T)>, usize) {
    let mut found = Vec::new();
    let mut count = 0;
    if len == 0 || len > file.len() {
        return (found, 0);
    }
    for start in 0..=file.len() - len {
        if let Some(v) = test(start) {
            count += 1;
            if found.len() < MAX_CANDIDATES {
                found.push((start, v));
            }
        }
    }
    (found, count)
}

/// Re-indents the replacement by the shift that took `common` (the SEARCH part's indentation)
/// to `prefix` (the file's).
fn reindent(replace: &[&str], common: &str, prefix: &str) -> Result<Vec<String>, Miss> {
    if common == prefix {
        return Ok(replace.iter().map(|l| l.to_string()).collect());
    }
    let mut out = Vec::with_capacity(replace.len());
    for (i, line) in replace.iter().enumerate() {
        if blank(line) {
            // A blank line has no indentation to shift; giving it some would add trailing
            // whitespace the model did not write.
            out.push(line.to_string());
        } else if let Some(rest) = line.strip_prefix(common) {
            out.push(format!("{prefix}{rest}"));
        } else if let Some(added) = prefix.strip_prefix(common) {
            // The file is indented deeper: a line further out than SEARCH moves in just as much.
            out.push(format!("{added}{line}"));
        } else if let Some(removed) = common.strip_prefix(prefix).filter(|r| {
            // Removing indentation from a line further out than SEARCH is only sound when
            // both are made of one and the same whitespace character.
            let mut chars = r.chars();
            chars
                .next()
                .is_some_and(|c| chars.all(|x| x == c) && leading_ws(line).starts_with(*r))
        }) {
            out.push(line[removed.len()..].to_string());
        } else {
            return Err(Miss::CannotReindent {
                line: i + 1,
                text: line.to_string(),
            });
        }
    }
    Ok(out)
}

/// Finds `search` (lines without endings, not empty) in `file` and computes what replaces it.
/// `file` is any slice of lines (`&str`, `String`, a [`super::text::Line`]), so that a caller
/// need not copy a large file's lines for each block.
pub fn find<L: AsRef<str>>(file: &[L], search: &[&str], replace: &[&str]) -> Result<Match, Miss> {
    // Stage 1: exact.
    let (found, count) = windows(file, search.len(), |start| {
        file[start..start + search.len()]
            .iter()
            .zip(search)
            .all(|(f, s)| f.as_ref() == *s)
            .then_some(())
    });
    match count {
        0 => {}
        1 => {
            return Ok(Match {
                stage: Stage::Exact,
                start: found[0].0,
                len: search.len(),
                replacement: replace.iter().map(|l| l.to_string()).collect(),
            });
        }
        _ => return Err(ambiguous(Stage::Exact, &found, count, search.len())),
    }
    // Stage 2: one leading-whitespace shift for every line.
    if let Some(shape) = Shape::new(search, false) {
        let (found, count) = windows(file, search.len(), |start| {
            shape.matches_at(file, start, false)
        });
        match count {
            0 => {}
            1 => {
                let (start, prefix) = found[0];
                return Ok(Match {
                    stage: Stage::Indentation,
                    start,
                    len: search.len(),
                    replacement: reindent(replace, shape.common, prefix)?,
                });
            }
            _ => return Err(ambiguous(Stage::Indentation, &found, count, search.len())),
        }
    }
    // Stage 3: also ignore trailing whitespace, and blank lines at the ends of SEARCH.
    let lead = search.iter().take_while(|l| blank(l)).count();
    let trail = search.iter().rev().take_while(|l| blank(l)).count();
    if lead < search.len() {
        let core = &search[lead..search.len() - trail];
        if let Some(shape) = Shape::new(core, true) {
            let (found, count) = windows(file, core.len(), |start| {
                shape.matches_at(file, start, true)
            });
            match count {
                0 => {}
                1 => {
                    let (start, prefix) = found[0];
                    // Blank lines at the ends that REPLACE repeats were context, not content.
                    let r_lead = replace.iter().take_while(|l| blank(l)).count().min(lead);
                    let r_trail = replace
                        .iter()
                        .rev()
                        .take_while(|l| blank(l))
                        .count()
                        .min(trail);
                    let inner = if r_lead + r_trail <= replace.len() {
                        &replace[r_lead..replace.len() - r_trail]
                    } else {
                        &[][..]
                    };
                    return Ok(Match {
                        stage: Stage::Whitespace,
                        start,
                        len: core.len(),
                        replacement: reindent(inner, shape.common, prefix)?,
                    });
                }
                _ => return Err(ambiguous(Stage::Whitespace, &found, count, core.len())),
            }
        }
    }
    Err(Miss::NotFound(nearest(file, search)))
}

fn ambiguous<T>(stage: Stage, found: &[(usize, T)], count: usize, len: usize) -> Miss {
    Miss::Ambiguous {
        stage,
        starts: found.iter().map(|(s, _)| *s).collect(),
        count,
        len,
    }
}

/// The window of the file that shares the most (trimmed, non-blank) lines with SEARCH at the
/// same offsets; `None` when no line of SEARCH occurs in the file at all.
pub fn nearest<L: AsRef<str>>(file: &[L], search: &[&str]) -> Option<Nearest> {
    let mut by_text: HashMap<&str, Vec<usize>> = HashMap::new();
    // Lines of punctuation only (`}`, `);`) occur everywhere and say nothing about where
    // SEARCH was meant to be.
    let informative = |l: &str| l.chars().filter(|c| c.is_alphanumeric()).count() >= 2;
    for (i, l) in search.iter().enumerate() {
        if informative(l) {
            by_text.entry(l.trim()).or_default().push(i);
        }
    }
    let mut votes: HashMap<usize, usize> = HashMap::new();
    for (j, l) in file.iter().enumerate() {
        if let Some(offsets) = by_text.get(l.as_ref().trim()) {
            for &i in offsets {
                if let Some(start) = j.checked_sub(i) {
                    *votes.entry(start).or_default() += 1;
                }
            }
        }
    }
    let start = match votes.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) {
        Some((&start, _)) => start,
        None => most_similar_line(file, search)?,
    };
    let end = (start + search.len()).min(file.len());
    let lines = (start..end)
        .map(|j| (j + 1, file[j].as_ref().to_string()))
        .collect();
    let differs = |exact: bool| {
        (start..end)
            .zip(search)
            .find(|(j, s)| {
                if exact {
                    file[*j].as_ref() != **s
                } else {
                    file[*j].as_ref().trim() != s.trim()
                }
            })
            .map(|(j, s)| (j + 1, file[j].as_ref().to_string(), s.to_string()))
    };
    let first_difference = differs(false).or_else(|| differs(true)).or_else(|| {
        // SEARCH runs past the end of the file.
        (end - start < search.len())
            .then(|| (end + 1, String::new(), search[end - start].to_string()))
    });
    Some(Nearest {
        lines,
        first_difference,
    })
}

/// When no line of SEARCH occurs in the file: where the file line most like one of SEARCH's
/// first lines (by shared character pairs, the Dice coefficient) would put SEARCH. Only a hint
/// for "did you mean", never a place to apply.
fn most_similar_line<L: AsRef<str>>(file: &[L], search: &[&str]) -> Option<usize> {
    fn pairs(s: &str) -> Vec<(char, char)> {
        let mut out: Vec<(char, char)> = s.trim().chars().zip(s.trim().chars().skip(1)).collect();
        out.sort_unstable();
        out
    }
    /// The character pairs of a line as a 256-bit set, computed without allocating: the Dice
    /// coefficient of two sets is a cheap estimate that lets most lines skip the exact count.
    fn sketch(s: &str) -> [u64; 4] {
        let t = s.trim();
        let mut bits = [0u64; 4];
        for (a, b) in t.chars().zip(t.chars().skip(1)) {
            let h = u64::from(u32::from(a)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ u64::from(u32::from(b)).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
            let bit = h >> 56;
            bits[(bit >> 6) as usize] |= 1 << (bit & 63);
        }
        bits
    }
    fn estimate(a: &[u64; 4], b: &[u64; 4]) -> f64 {
        let ones = |x: &[u64; 4]| x.iter().map(|w| w.count_ones()).sum::<u32>();
        let both: u32 = a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum();
        let total = ones(a) + ones(b);
        if total == 0 {
            0.0
        } else {
            2.0 * f64::from(both) / f64::from(total)
        }
    }
    fn dice(a: &[(char, char)], b: &[(char, char)]) -> f64 {
        if a.is_empty() || b.is_empty() {
            return 0.0;
        }
        let (mut i, mut j, mut shared) = (0, 0, 0u32);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        2.0 * f64::from(shared) / (a.len() + b.len()) as f64
    }
    const THRESHOLD: f64 = 0.5;
    /// A line of SEARCH: its index, its sorted character pairs and their sketch.
    type Wanted = (usize, Vec<(char, char)>, [u64; 4]);
    let wanted: Vec<Wanted> = search
        .iter()
        .enumerate()
        .filter(|(_, l)| !blank(l))
        .take(3)
        .map(|(i, l)| (i, pairs(l), sketch(l)))
        .collect();
    let mut best: Option<(f64, usize)> = None;
    for (j, line) in file.iter().enumerate() {
        let line = line.as_ref();
        if blank(line) {
            continue;
        }
        let bits = sketch(line);
        for (i, want, want_bits) in &wanted {
            if estimate(&bits, want_bits) < THRESHOLD - 0.1 {
                continue;
            }
            let score = dice(want, &pairs(line));
            if score >= THRESHOLD && best.is_none_or(|(b, _)| score > b) {
                if let Some(start) = j.checked_sub(*i) {
                    best = Some((score, start));
                }
            }
        }
    }
    best.map(|(_, start)| start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<&str> {
        s.lines().collect()
    }

    #[test]
    fn exact_beats_the_relaxed_stages_and_duplicates_are_ambiguous() {
        let file = lines("fn a() {\n    x();\n}\nfn b() {\n    x();\n}\n");
        let m = find(&file, &["fn b() {"], &["fn c() {"]).expect("unique");
        assert_eq!((m.stage, m.start, m.len), (Stage::Exact, 3, 1));
        let miss = find(&file, &["    x();", "}"], &["    y();", "}"]).expect_err("twice");
        assert!(
            matches!(miss, Miss::Ambiguous { stage: Stage::Exact, count: 2, ref starts, .. } if starts == &vec![1, 4])
        );
    }

    #[test]
    fn a_shifted_search_reindents_its_replacement() {
        let file = lines("impl A {\n    fn f(&self) {\n        go();\n    }\n}\n");
        let m = find(
            &file,
            &["fn f(&self) {", "    go();", "}"],
            &["fn f(&self) {", "    go();", "    again();", "}"],
        )
        .expect("shifted");
        assert_eq!(m.stage, Stage::Indentation);
        assert_eq!(
            m.replacement,
            vec![
                "    fn f(&self) {",
                "        go();",
                "        again();",
                "    }"
            ]
        );
    }

    #[test]
    fn a_tab_indented_file_takes_tabs() {
        let file = lines("mod m {\n\tfn f() {}\n}\n");
        let m = find(&file, &["    fn f() {}"], &["    fn f() { g() }"]).expect("tab");
        assert_eq!(m.replacement, vec!["\tfn f() { g() }"]);
    }

    #[test]
    fn trailing_whitespace_and_blank_ends_match_at_the_last_stage() {
        let file = lines("let a = 1;   \nlet b = 2;\n");
        let m = find(&file, &["", "let a = 1;", ""], &["", "let a = 10;", ""]).expect("ws");
        assert_eq!((m.stage, m.start, m.len), (Stage::Whitespace, 0, 1));
        assert_eq!(m.replacement, vec!["let a = 10;"]);
    }

    #[test]
    fn not_found_names_the_nearest_lines_and_the_first_difference() {
        let file = lines("fn a() {\n    let x = 1;\n    let y = 2;\n}\n");
        let miss = find(
            &file,
            &["fn a() {", "    let x = 1;", "    let y = 3;", "}"],
            &[],
        )
        .expect_err("differs");
        let Miss::NotFound(Some(n)) = miss else {
            panic!("expected nearest, got {miss:?}");
        };
        assert_eq!(n.lines[0], (1, "fn a() {".to_string()));
        assert_eq!(
            n.first_difference,
            Some((
                3,
                "    let y = 2;".to_string(),
                "    let y = 3;".to_string()
            ))
        );
    }

    #[test]
    fn a_line_further_out_than_a_shift_with_other_whitespace_is_refused() {
        let file = lines("\tfn f() {}\n");
        let miss = find(&file, &["  fn f() {}"], &[" }", "  fn f() {}"]).expect_err("mixed");
        assert!(
            matches!(miss, Miss::CannotReindent { line: 1, .. }),
            "{miss:?}"
        );
    }
}
