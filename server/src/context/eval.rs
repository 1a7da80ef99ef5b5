//! Quality evaluation of context bundles on a git repository's history.
//!
//! For each recent commit that changes the body of a function, the bundle for that function is
//! built at the parent commit, and compared with what the new body actually uses: the
//! definitions it references that live elsewhere in the workspace (definition recall), and the
//! other files the commit changed (file recall). Two baselines get the same budget and the same
//! scoring: the current file only (as much of it as fits, centred on the function), and the
//! function with N lines around it. History is read with the `git` command (`log`, `diff-tree`,
//! `ls-tree`, `cat-file --batch`) into an in-memory index; the repository's work tree, index
//! and refs are never touched.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, BufReader, Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};

use super::ContextSettings;
use super::bundle::{BundleRequest, ItemKind, build_bundle};
use super::index::{CrateTarget, WorkspaceIndex, is_prelude_name};
use super::tags::{self, Definition, FileTags};
use super::tokens::Tokenizer;
use crate::syntax::Language;

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// How many of the latest non-merge commits to examine.
    pub commits: usize,
    /// The token budget of bundles and baselines.
    pub budget: usize,
    /// N for the "N lines around the selection" baseline (N/2 above, N/2 below).
    pub window_lines: usize,
    /// At most this many changed functions per commit.
    pub per_commit: usize,
    /// Print a line per evaluated function to the progress writer.
    pub verbose: bool,
}

/// Totals for one way of choosing context.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StrategyTotals {
    /// The strategy's name.
    pub name: String,
    /// Used definitions found in the context.
    pub definitions_found: usize,
    /// Used definitions in all.
    pub definitions_total: usize,
    /// Of those, the ones the old body did not use yet (the harder half: new dependencies).
    pub new_found: usize,
    /// Definitions first used by the new body.
    pub new_total: usize,
    /// Other changed files represented in the context.
    pub files_found: usize,
    /// Other changed files in all.
    pub files_total: usize,
    /// Tokens spent, summed over cases.
    pub tokens_spent: usize,
    /// Tokens spent on items that were used, summed over cases.
    pub tokens_used: usize,
    /// Budget summed over cases.
    pub tokens_budget: usize,
    /// Like `definitions_found`, for the workspace targets: names the new body uses that the
    /// file does not import from outside the workspace, that are not the prelude's and that are
    /// not only called as methods (`x.name()`, whose type only a type checker knows), with only
    /// the definitions in crates the file's crate can reach counting.
    pub workspace_found: usize,
    /// Workspace targets in all.
    pub workspace_total: usize,
    /// Definition items the bundles held (baselines have none).
    pub definition_items: usize,
    /// Of those, the ones whose file the selection's crate can reach and whose name resolved
    /// for certain (an import, a path, the file itself or a known receiver type, one
    /// definition): the precision figure.
    pub precise_items: usize,
}

impl StrategyTotals {
    fn percent(found: usize, total: usize) -> String {
        if total == 0 {
            "   n/a".into()
        } else {
            format!("{:5.1}%", 100.0 * found as f64 / total as f64)
        }
    }
}

/// The outcome of an evaluation.
#[derive(Clone, Debug, Default)]
pub struct EvalReport {
    /// The repository.
    pub repo: PathBuf,
    /// Commits examined.
    pub commits_examined: usize,
    /// Commits whose parent could not be read (a shallow clone's oldest commit).
    pub commits_skipped: usize,
    /// Commits that changed at least one function body.
    pub commits_used: usize,
    /// Functions evaluated.
    pub cases: usize,
    /// Cases whose new body uses at least one definition from elsewhere.
    pub cases_with_definitions: usize,
    /// Cases whose commit changed other (existing) Rust files.
    pub cases_with_other_files: usize,
    /// The budget.
    pub budget: usize,
    /// The tokenizer.
    pub tokenizer: String,
    /// The baseline window.
    pub window_lines: usize,
    /// One entry per strategy: bundle, bundle + goal, current file, window.
    pub strategies: Vec<StrategyTotals>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Mean bundle build time in milliseconds.
    pub bundle_ms: f64,
}

impl EvalReport {
    /// The report as a table.
    pub fn render(&self) -> String {
        let mut out = format!(
            "conductor eval context: {}\n{} commits examined ({} unreadable), {} change a function body; {} functions \
             ({} use definitions from elsewhere, {} come with changes to other Rust files)\n\
             budget {} tokens ({}); window baseline: {} lines around the function; {:.1} s, \
             {:.1} ms per bundle\n\n",
            self.repo.display(),
            self.commits_examined,
            self.commits_skipped,
            self.commits_used,
            self.cases,
            self.cases_with_definitions,
            self.cases_with_other_files,
            self.budget,
            self.tokenizer,
            self.window_lines,
            self.seconds,
            self.bundle_ms,
        );
        out.push_str(&format!(
            "{:<26} {:>22} {:>22} {:>20} {:>20} {:>12} {:>13} {:>22}\n",
            "strategy",
            "definition recall",
            "workspace recall",
            "of which new uses",
            "file recall",
            "budget spent",
            "spent on used",
            "definition precision"
        ));
        for s in &self.strategies {
            let budget = s.tokens_budget.max(1) as f64;
            out.push_str(&format!(
                "{:<26} {} ({:>5}/{:<5}) {} ({:>5}/{:<5}) {} ({:>5}/{:<5}) {} ({:>5}/{:<5}) {:>11.1}% {:>12.1}% {} ({:>5}/{:<5})\n",
                s.name,
                StrategyTotals::percent(s.definitions_found, s.definitions_total),
                s.definitions_found,
                s.definitions_total,
                StrategyTotals::percent(s.workspace_found, s.workspace_total),
                s.workspace_found,
                s.workspace_total,
                StrategyTotals::percent(s.new_found, s.new_total),
                s.new_found,
                s.new_total,
                StrategyTotals::percent(s.files_found, s.files_total),
                s.files_found,
                s.files_total,
                100.0 * s.tokens_spent as f64 / budget,
                100.0 * s.tokens_used as f64 / budget,
                StrategyTotals::percent(s.precise_items, s.definition_items),
                s.precise_items,
                s.definition_items,
            ));
        }
        out
    }
}

/// A region of context: a file's lines (0-based, inclusive) and what it cost.
struct Span {
    file: String,
    start: u32,
    end: u32,
    tokens: usize,
    selection: bool,
    /// For a definition item: whether it counts as precise (see
    /// [`StrategyTotals::precise_items`]).
    precise: Option<bool>,
}

/// Runs the evaluation. Progress lines go to `progress`.
pub fn evaluate(
    repo: &Path,
    settings: &ContextSettings,
    options: &EvalOptions,
    progress: &mut dyn Write,
) -> anyhow::Result<EvalReport> {
    let started = Instant::now();
    let git = Git::open(repo)?;
    let tokenizer = Tokenizer::from_name(&settings.tokenizer).unwrap_or(Tokenizer::Estimate);
    let rust = Language::by_name("rust").context("the rust language is not registered")?;
    let log = git.run(&[
        "log",
        "--no-merges",
        "--first-parent",
        &format!("-n{}", options.commits),
        "--format=%H %P%x09%s",
    ])?;
    let mut commits: Vec<(String, String, String)> = Vec::new();
    for line in log.lines() {
        let (ids, subject) = line.split_once('\t').unwrap_or((line, ""));
        let mut ids = ids.split_whitespace();
        if let (Some(commit), Some(parent)) = (ids.next(), ids.next()) {
            commits.push((commit.into(), parent.into(), subject.into()));
        }
    }
    commits.reverse();
    let mut report = EvalReport {
        repo: git.root.clone(),
        commits_examined: commits.len(),
        budget: options.budget,
        tokenizer: tokenizer.to_string(),
        window_lines: options.window_lines,
        strategies: ["bundle", "bundle + goal (subject)", "current file only"]
            .iter()
            .map(|n| n.to_string())
            .chain([format!("{} lines around", options.window_lines)])
            .map(|name| StrategyTotals {
                name,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut index: Option<(String, WorkspaceIndex)> = None;
    let mut bundle_time = 0.0;
    let mut bundles = 0usize;
    for (commit, parent, subject) in &commits {
        // A shallow clone lacks the parent of its oldest commit: skip what cannot be read.
        let Ok(changes) = git.changed_files(parent, commit) else {
            report.commits_skipped += 1;
            continue;
        };
        let modified: Vec<&Change> = changes
            .iter()
            .filter(|c| c.old.is_some() && c.new.is_some() && is_rust(c.new.as_deref()))
            .collect();
        if modified.is_empty() {
            continue;
        }
        // Find the changed function bodies before touching the index.
        let mut cases = Vec::new();
        let mut new_texts: HashMap<String, String> = HashMap::new();
        let mut methods_only: HashMap<(String, String), HashSet<String>> = HashMap::new();
        let mut qualified: HashMap<(String, String), WrittenPaths> = HashMap::new();
        for change in &modified {
            let (Some(old_path), Some(new_path)) = (&change.old, &change.new) else {
                continue;
            };
            let mut blobs = git.blobs(&[
                (parent.as_str(), old_path.as_str()),
                (commit.as_str(), new_path.as_str()),
            ])?;
            let (Some(new_text), Some(old_text)) = (blobs.pop().flatten(), blobs.pop().flatten())
            else {
                continue;
            };
            if old_text.len() as u64 > settings.max_file_bytes {
                continue;
            }
            let (Some(old_tree), Some(new_tree)) = (rust.parse(&old_text), rust.parse(&new_text))
            else {
                continue;
            };
            let old_tags = tags::extract(&old_text, &old_tree)?;
            let new_tags = tags::extract(&new_text, &new_tree)?;
            for (old_def, new_def) in changed_functions(&old_tags, &old_text, &new_tags, &new_text)
            {
                if cases.len() >= options.per_commit {
                    break;
                }
                let used: HashSet<String> = new_tags
                    .references
                    .iter()
                    .filter(|r| new_def.range.contains(&r.byte))
                    .map(|r| r.name.clone())
                    .filter(|n| *n != new_def.name)
                    .collect();
                // Names the new body only calls as `x.name()`: which type's method that is
                // needs types, so the workspace targets leave them out; so are names only
                // used after a standard type (`String::from`).
                // A call written `.name(` inside a macro's arguments is a method call too, and
                // `String::from(…)`, `Vec::new()` are the standard library's.
                let before = |byte: usize| new_text.get(..byte).unwrap_or("").trim_end();
                let method_only: HashSet<String> = used
                    .iter()
                    .filter(|n| {
                        new_tags
                            .references
                            .iter()
                            .filter(|r| new_def.range.contains(&r.byte) && r.name == **n)
                            .all(|r| {
                                let before = before(r.byte);
                                r.kind == tags::RefKind::Method
                                    || before.ends_with('.')
                                    || before.strip_suffix("::").is_some_and(|q| {
                                        let qualifier = q
                                            .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                                            .next()
                                            .unwrap_or("");
                                        is_prelude_name(qualifier)
                                            || is_primitive_type(qualifier)
                                            || matches!(
                                                qualifier,
                                                "str"
                                                    | "HashMap"
                                                    | "HashSet"
                                                    | "Path"
                                                    | "PathBuf"
                                                    | "Arc"
                                                    | "Rc"
                                            )
                                    })
                            })
                    })
                    .cloned()
                    .collect();
                // A parameter, `let` or closure binding of the body called by its bare name
                // (`parse(&reply)` with `parse: impl Fn(…)`) is not looked up in the workspace.
                let locals = local_bindings(&new_tree, new_def.range.clone(), &new_text);
                let method_only: HashSet<String> = method_only
                    .into_iter()
                    .chain(
                        used.iter()
                            .filter(|n| {
                                locals.contains(n.as_str())
                                    && new_tags
                                        .references
                                        .iter()
                                        .filter(|r| {
                                            new_def.range.contains(&r.byte) && r.name == **n
                                        })
                                        .all(|r| qualifier_before(&new_text, r.byte).is_empty())
                            })
                            .cloned(),
                    )
                    .collect();
                methods_only.insert((old_path.clone(), old_def.name.clone()), method_only);
                // How each name is written at each use: the path before it (`a::b::` of
                // `a::b::name`), empty for a name written alone.
                let mut written: HashMap<String, Vec<Vec<String>>> = HashMap::new();
                for r in new_tags
                    .references
                    .iter()
                    .filter(|r| new_def.range.contains(&r.byte) && used.contains(&r.name))
                {
                    written
                        .entry(r.name.clone())
                        .or_default()
                        .push(qualifier_before(&new_text, r.byte));
                }
                qualified.insert((old_path.clone(), old_def.name.clone()), written);
                let already: HashSet<String> = old_tags
                    .references
                    .iter()
                    .filter(|r| old_def.range.contains(&r.byte))
                    .map(|r| r.name.clone())
                    .collect();
                let fresh: HashSet<String> = used.difference(&already).cloned().collect();
                new_texts.insert(old_path.clone(), new_text.clone());
                cases.push((
                    old_path.clone(),
                    old_text.clone(),
                    old_def.clone(),
                    used,
                    fresh,
                ));
            }
        }
        if cases.is_empty() {
            continue;
        }
        // Bring the scratch index to the parent commit.
        let current = match index.take() {
            Some((at, mut idx)) => {
                if at != *parent {
                    for change in git.changed_files(&at, parent)? {
                        if let Some(old) = &change.old
                            && change.new.as_ref() != Some(old)
                        {
                            idx.remove_file(Path::new(old))?;
                        }
                        if let Some(new) = &change.new
                            && (is_rust(Some(new)) || new.ends_with("Cargo.toml"))
                        {
                            let text = git
                                .blobs(&[(parent.as_str(), new.as_str())])?
                                .pop()
                                .flatten();
                            if let Some(text) = text {
                                idx.update_file(Path::new(new), &text)?;
                            }
                        }
                    }
                }
                idx
            }
            None => match git.index_at(parent, settings) {
                Ok(index) => index,
                Err(err) => {
                    tracing::warn!("skipping {commit}: {err:#}");
                    report.commits_skipped += 1;
                    continue;
                }
            },
        };
        report.commits_used += 1;
        let other_files: Vec<&str> = changes
            .iter()
            .filter_map(|c| c.old.as_deref())
            .filter(|p| is_rust(Some(p)))
            .collect();
        for (path, old_text, def, used, fresh) in cases {
            // The definitions the new body uses that live elsewhere in the workspace.
            let mut targets: Vec<(String, Vec<(String, u32)>)> = Vec::new();
            for name in &used {
                let places: Vec<(String, u32)> = current
                    .definitions_of(name)
                    .iter()
                    .filter_map(|id| {
                        let file = current.file(id.file)?;
                        let d = current.definition(*id)?;
                        let file_name = file.path.to_string_lossy().replace('\\', "/");
                        let inside = file_name == path
                            && d.range.start >= def.range.start
                            && d.range.end <= def.range.end;
                        (!inside).then_some((file_name, d.start_line))
                    })
                    .collect();
                if !places.is_empty() {
                    targets.push((name.clone(), places));
                }
            }
            // The workspace targets: what the compiler would look up in the workspace.
            let krate = current.crate_index(Path::new(&path));
            let outside = imported_from_outside(&current, krate, &new_texts[&path]);
            let workspace_targets: Vec<(String, Vec<(String, u32)>)> = targets
                .iter()
                .filter(|(name, _)| !outside.contains(name.as_str()))
                .filter(|(name, _)| {
                    !methods_only
                        .get(&(path.clone(), def.name.clone()))
                        .is_some_and(|m| m.contains(name))
                })
                .filter(|(name, _)| {
                    !is_prelude_name(name) || new_texts[&path].contains(&format!("{name}::"))
                })
                .map(|(name, places)| {
                    let written = qualified
                        .get(&(path.clone(), def.name.clone()))
                        .and_then(|w| w.get(name));
                    let reachable: Vec<(String, u32)> = places
                        .iter()
                        .filter(|(f, l)| {
                            current.reaches_file(krate, Path::new(f))
                                && written.is_none_or(|uses| {
                                    uses.iter().any(|q| {
                                        workspace_use(&current, krate, &outside, q, name, f, *l)
                                    })
                                })
                        })
                        .cloned()
                        .collect();
                    (name.clone(), reachable)
                })
                .filter(|(_, places)| !places.is_empty())
                .collect();
            let others: Vec<&str> = other_files.iter().copied().filter(|f| *f != path).collect();
            report.cases += 1;
            report.cases_with_definitions += usize::from(!targets.is_empty());
            report.cases_with_other_files += usize::from(!others.is_empty());

            let mut strategies: Vec<Vec<Span>> = Vec::new();
            // Why the plain bundle missed what it missed, for `--verbose`: left out for the
            // budget, or labelled as from outside the workspace.
            let mut omitted_names: HashSet<String> = HashSet::new();
            let mut external_text = String::new();
            for goal in [None, Some(subject.clone())] {
                let plain = goal.is_none();
                let request = BundleRequest {
                    file: PathBuf::from(&path),
                    text: Some(old_text.clone()),
                    tree: None,
                    range: def.doc_start..def.range.end,
                    goal,
                    budget: Some(options.budget),
                };
                let t = Instant::now();
                let bundle = build_bundle(&current, &request)
                    .with_context(|| format!("building the bundle for {path} at {parent}"))?;
                bundle_time += t.elapsed().as_secs_f64();
                bundles += 1;
                if plain {
                    omitted_names.extend(bundle.omitted.iter().filter_map(|o| o.symbol.clone()));
                    for item in bundle.items.iter().filter(|i| i.kind == ItemKind::External) {
                        external_text.push_str(&item.text);
                    }
                }
                let krate = current.crate_index(Path::new(&path));
                strategies.push(
                    bundle
                        .items
                        .iter()
                        .filter(|i| !matches!(i.kind, ItemKind::Crate | ItemKind::External))
                        .map(|i| Span {
                            file: i.file.clone(),
                            start: i.start_line.saturating_sub(1),
                            end: i.end_line.saturating_sub(1),
                            tokens: i.tokens,
                            selection: i.kind == ItemKind::Selection,
                            precise: (i.kind == ItemKind::Definition).then(|| {
                                i.certain == Some(true)
                                    && current.reaches_file(krate, Path::new(&i.file))
                            }),
                        })
                        .collect(),
                );
            }
            let line_tokens: Vec<usize> =
                old_text.lines().map(|l| tokenizer.count(l) + 1).collect();
            let whole_file = line_tokens.len().saturating_sub(1) as u32;
            strategies.push(vec![window(
                &path,
                &line_tokens,
                def.doc_line,
                def.end_line,
                0,
                whole_file,
                options.budget,
            )]);
            let half = (options.window_lines / 2) as u32;
            strategies.push(vec![window(
                &path,
                &line_tokens,
                def.doc_line,
                def.end_line,
                half,
                half,
                options.budget,
            )]);
            let mut line = format!("{}:{} {}", &commit[..commit.len().min(10)], path, def.name);
            let mut missed: Vec<&str> = Vec::new();
            // The names the by-name recall missed, for `--verbose`.
            let mut missed_by_name: Vec<&str> = Vec::new();
            for (n, (totals, spans)) in report.strategies.iter_mut().zip(&strategies).enumerate() {
                let contains = |file: &str, line: u32| {
                    spans
                        .iter()
                        .any(|s| s.file == file && s.start <= line && line <= s.end)
                };
                let found = targets
                    .iter()
                    .filter(|(_, places)| places.iter().any(|(f, l)| contains(f, *l)))
                    .count();
                if n == 0 {
                    missed = workspace_targets
                        .iter()
                        .filter(|(_, places)| !places.iter().any(|(f, l)| contains(f, *l)))
                        .map(|(name, _)| name.as_str())
                        .collect();
                    missed.sort_unstable();
                    missed_by_name = targets
                        .iter()
                        .filter(|(_, places)| !places.iter().any(|(f, l)| contains(f, *l)))
                        .map(|(name, _)| name.as_str())
                        .collect();
                    missed_by_name.sort_unstable();
                }
                let files = others
                    .iter()
                    .filter(|f| spans.iter().any(|s| s.file == **f))
                    .count();
                let new_targets: Vec<_> =
                    targets.iter().filter(|(n, _)| fresh.contains(n)).collect();
                totals.new_found += new_targets
                    .iter()
                    .filter(|(_, places)| places.iter().any(|(f, l)| contains(f, *l)))
                    .count();
                totals.new_total += new_targets.len();
                totals.workspace_found += workspace_targets
                    .iter()
                    .filter(|(_, places)| places.iter().any(|(f, l)| contains(f, *l)))
                    .count();
                totals.workspace_total += workspace_targets.len();
                totals.definitions_found += found;
                totals.definitions_total += targets.len();
                totals.files_found += files;
                totals.files_total += others.len();
                totals.tokens_budget += options.budget;
                for span in spans {
                    totals.tokens_spent += span.tokens;
                    if let Some(precise) = span.precise {
                        totals.definition_items += 1;
                        totals.precise_items += usize::from(precise);
                    }
                    let used = span.selection
                        || others.contains(&span.file.as_str())
                        || targets.iter().any(|(_, places)| {
                            places
                                .iter()
                                .any(|(f, l)| *f == span.file && span.start <= *l && *l <= span.end)
                        });
                    if used {
                        totals.tokens_used += span.tokens;
                    }
                }
                line.push_str(&format!(
                    " | {}/{} defs {}/{} files",
                    found,
                    targets.len(),
                    files,
                    others.len()
                ));
            }
            if options.verbose {
                if !missed.is_empty() {
                    let why = |name: &str| {
                        if omitted_names.contains(name) {
                            format!("{name} (over budget)")
                        } else if external_text.contains(&format!("`{name}`:")) {
                            format!("{name} (labelled external)")
                        } else {
                            name.to_string()
                        }
                    };
                    let missed: Vec<String> = missed.iter().map(|n| why(n)).collect();
                    line.push_str(&format!(
                        " | the bundle missed the workspace targets {}",
                        missed.join(" ")
                    ));
                }
                if !missed_by_name.is_empty() {
                    line.push_str(&format!(
                        " | by name it missed {}",
                        missed_by_name.join(" ")
                    ));
                }
                let _ = writeln!(progress, "{line}");
            }
        }
        index = Some((parent.clone(), current));
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.bundle_ms = if bundles == 0 {
        0.0
    } else {
        1000.0 * bundle_time / bundles as f64
    };
    Ok(report)
}

/// The lines `start - before ..= end + after` of a file, shrunk from both ends (the far side
/// first) until their tokens fit the budget; the function itself is cut last.
fn window(
    file: &str,
    line_tokens: &[usize],
    start: u32,
    end: u32,
    before: u32,
    after: u32,
    budget: usize,
) -> Span {
    let last = line_tokens.len().saturating_sub(1) as u32;
    let mut lo = start.saturating_sub(before);
    let mut hi = end.saturating_add(after).min(last);
    let cost = |lo: u32, hi: u32| -> usize {
        line_tokens
            .get(lo as usize..=(hi as usize).min(line_tokens.len().saturating_sub(1)))
            .map_or(0, |s| s.iter().sum())
    };
    while cost(lo, hi) > budget && hi > lo {
        // Drop whichever side is further from the function, keeping it centred.
        let above = start.saturating_sub(lo);
        let below = hi.saturating_sub(end);
        if above == 0 && below == 0 {
            hi -= 1;
        } else if above >= below {
            lo += 1;
        } else {
            hi -= 1;
        }
    }
    Span {
        file: file.to_string(),
        start: lo,
        end: hi,
        tokens: cost(lo, hi),
        selection: false,
        precise: None,
    }
}

/// Per name a function uses, the path written before it at each use.
type WrittenPaths = HashMap<String, Vec<Vec<String>>>;

/// Whether `name` is one of the language's primitive types (`u64::from`, `char::from_u32`
/// are the standard library's).
fn is_primitive_type(name: &str) -> bool {
    matches!(
        name,
        "u8" | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "isize"
            | "f32"
            | "f64"
            | "bool"
            | "char"
    )
}

/// The names the function at `range` binds itself: its parameters', its closures'
/// parameters' and its `let` patterns' identifiers, and the generic parameters it and the
/// `impl` or `trait` around it declare (`T` of `fn never<T>()`, which the compiler never looks
/// up in the workspace).
fn local_bindings(
    tree: &tree_sitter::Tree,
    range: std::ops::Range<usize>,
    text: &str,
) -> HashSet<String> {
    let mut out = HashSet::new();
    let Some(function) = tree
        .root_node()
        .descendant_for_byte_range(range.start, range.end.saturating_sub(1).max(range.start))
    else {
        return out;
    };
    let mut around = Some(function);
    while let Some(node) = around {
        if let Some(params) = node.child_by_field_name("type_parameters") {
            let mut walker = params.walk();
            for param in params.named_children(&mut walker) {
                let id = param.child_by_field_name("name").unwrap_or(param);
                let id = if matches!(id.kind(), "type_identifier" | "identifier") {
                    Some(id)
                } else {
                    let mut w = id.walk();
                    id.named_children(&mut w)
                        .find(|c| c.kind() == "type_identifier")
                };
                if let Some(name) = id.and_then(|i| text.get(i.byte_range())) {
                    out.insert(name.to_string());
                }
            }
        }
        around = node.parent();
    }
    let mut stack = vec![function];
    while let Some(node) = stack.pop() {
        let pattern = match node.kind() {
            "parameter" | "let_declaration" => node.child_by_field_name("pattern"),
            "closure_parameters" => Some(node),
            _ => None,
        };
        if let Some(pattern) = pattern {
            let mut inner = vec![pattern];
            while let Some(n) = inner.pop() {
                if matches!(n.kind(), "identifier" | "shorthand_field_identifier") {
                    if let Some(name) = text.get(n.byte_range()) {
                        out.insert(name.to_string());
                    }
                } else {
                    // Not the path of `Some(x)` or `Point { x, .. }`, nor a type annotation.
                    for i in 0..n.named_child_count() as u32 {
                        let field = n.field_name_for_named_child(i);
                        if !matches!(field, Some("type"))
                            && let Some(child) = n.named_child(i)
                        {
                            inner.push(child);
                        }
                    }
                }
            }
        }
        let mut walker = node.walk();
        stack.extend(node.named_children(&mut walker));
    }
    out
}

/// The path written before the name at `byte` (`["a", "B"]` for `a::B::name`), empty for a
/// name written alone. A path with generic arguments (`Vec::<u8>::new`) stops at them.
fn qualifier_before(text: &str, byte: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut end = byte;
    while let Some(q) = text
        .get(..end)
        .and_then(|t| t.trim_end().strip_suffix("::"))
    {
        let q = q.trim_end();
        let start = q
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let Some(segment) = q.get(start..).filter(|s| !s.is_empty()) else {
            break;
        };
        out.insert(0, segment.to_string());
        end = start;
    }
    out
}

/// Whether a use of `name` written after the path `qualifier` can mean the definition of
/// `name` at `file`:`line`, the way the compiler would look it up: not when the path starts
/// outside the workspace (`anyhow::Result`, `header::CONTENT_TYPE` with `header` imported from
/// `http`); not when it is a variant or associated item of a type (`Match::Ignore`,
/// `SearchMode::JSON`: the type is the target, not a same-named struct); and for
/// `Type::function` only a function of that type (`PartialErrorBuilder::default` with a derived
/// `Default` has no definition to find, and another type's `default` is not it).
fn workspace_use(
    index: &WorkspaceIndex,
    krate: Option<usize>,
    outside: &HashSet<String>,
    qualifier: &[String],
    name: &str,
    file: &str,
    line: u32,
) -> bool {
    let (Some(first), Some(last)) = (qualifier.first(), qualifier.last()) else {
        return true;
    };
    if outside.contains(first)
        || matches!(
            index.crate_named(krate, first),
            Some(CrateTarget::External { .. })
        )
    {
        return false;
    }
    let upper = |s: &str| s.starts_with(|c: char| c.is_ascii_uppercase());
    if !upper(last) || last == "Self" {
        return true;
    }
    if upper(name) {
        return false;
    }
    index
        .file_id(Path::new(file))
        .and_then(|id| index.file(id))
        .is_some_and(|f| {
            f.tags.definitions.iter().any(|d| {
                d.name == name && d.start_line == line && d.owner.as_deref() == Some(last.as_str())
            })
        })
}

/// The names a file's top-level `use` declarations bring in from outside the workspace (a
/// registry dependency, the standard library), as the crate graph of `index` says.
fn imported_from_outside(
    index: &WorkspaceIndex,
    krate: Option<usize>,
    text: &str,
) -> HashSet<String> {
    let mut out = HashSet::new();
    let Some(tree) = Language::by_name("rust").and_then(|r| r.parse(text)) else {
        return out;
    };
    let root = tree.root_node();
    let mut walker = root.walk();
    for node in root.named_children(&mut walker) {
        if node.kind() != "use_declaration" {
            continue;
        }
        let Some(source) = text.get(node.byte_range()) else {
            continue;
        };
        // `use a::b::{C, d::E as F};`: the first segment says where it all comes from.
        let body = source
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ")
            .trim_start_matches("use ")
            .trim_start_matches("::");
        let first: String = body
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !matches!(
            index.crate_named(krate, &first),
            Some(CrateTarget::External { .. })
        ) {
            continue;
        }
        let names = body.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        out.extend(names.filter(|n| !n.is_empty()).map(str::to_string));
    }
    out
}

/// Functions present in both versions whose text changed, matched by the type they belong to,
/// their name and their occurrence among those: by name alone, the third `default` of a file
/// would be paired with another type's `default` as soon as a commit removes one before it.
fn changed_functions<'a>(
    old: &'a FileTags,
    old_text: &str,
    new: &'a FileTags,
    new_text: &str,
) -> Vec<(&'a Definition, &'a Definition)> {
    type Key = (Option<String>, String, usize);
    let key = |defs: &'a [Definition]| -> HashMap<Key, &'a Definition> {
        let mut seen: HashMap<(Option<&str>, &str), usize> = HashMap::new();
        defs.iter()
            .filter(|d| d.kind.is_function() && !d.is_test && d.body_start.is_some())
            .map(|d| {
                let n = seen
                    .entry((d.owner.as_deref(), d.name.as_str()))
                    .or_default();
                *n += 1;
                ((d.owner.clone(), d.name.clone(), *n), d)
            })
            .collect()
    };
    let old_fns = key(&old.definitions);
    let new_fns = key(&new.definitions);
    let mut pairs: Vec<(&Definition, &Definition)> = old_fns
        .iter()
        .filter_map(|(k, o)| {
            let n = new_fns.get(k)?;
            let before = old_text.get(o.range.clone())?;
            let after = new_text.get(n.range.clone())?;
            (before != after).then_some((*o, *n))
        })
        .collect();
    pairs.sort_by_key(|(o, _)| o.range.start);
    pairs
}

fn is_rust(path: Option<&str>) -> bool {
    path.is_some_and(|p| p.ends_with(".rs"))
}

/// A file changed between two commits: the old path (absent when added) and the new path
/// (absent when deleted).
struct Change {
    old: Option<String>,
    new: Option<String>,
}

/// Read-only access to a repository through the `git` command.
struct Git {
    root: PathBuf,
}

impl Git {
    fn open(repo: &Path) -> anyhow::Result<Git> {
        let output = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["rev-parse", "--show-toplevel"])
            .output()
            .context("running git (is it installed?)")?;
        if !output.status.success() {
            bail!(
                "{} is not a git repository: {}",
                repo.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let root = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        Ok(Git { root })
    }

    fn command(&self) -> Command {
        let mut command = Command::new("git");
        command
            .arg("-C")
            .arg(&self.root)
            .args(["-c", "core.quotepath=off"]);
        command
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self
            .command()
            .args(args)
            .output()
            .with_context(|| format!("running git {}", args.join(" ")))?;
        if !output.status.success() {
            bail!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn changed_files(&self, from: &str, to: &str) -> anyhow::Result<Vec<Change>> {
        let out = self.run(&["diff-tree", "-r", "-M", "--name-status", from, to])?;
        let mut changes = Vec::new();
        for line in out.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let change = match fields.as_slice() {
                [status, path] if status.starts_with('A') => Change {
                    old: None,
                    new: Some(path.to_string()),
                },
                [status, path] if status.starts_with('D') => Change {
                    old: Some(path.to_string()),
                    new: None,
                },
                [_, path] => Change {
                    old: Some(path.to_string()),
                    new: Some(path.to_string()),
                },
                [_, old, new] => Change {
                    old: Some(old.to_string()),
                    new: Some(new.to_string()),
                },
                _ => continue,
            };
            changes.push(change);
        }
        Ok(changes)
    }

    /// The contents of `rev:path` for each pair (`None` if missing, binary or not UTF-8).
    fn blobs(&self, specs: &[(&str, &str)]) -> anyhow::Result<Vec<Option<String>>> {
        let mut child = self
            .command()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("running git cat-file --batch")?;
        let mut stdin = child.stdin.take().context("git cat-file stdin")?;
        let input: String = specs
            .iter()
            .map(|(rev, path)| format!("{rev}:{path}\n"))
            .collect();
        // Write from a thread so a large answer cannot deadlock against our input.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let mut stdout = BufReader::new(child.stdout.take().context("git cat-file stdout")?);
        let mut blobs = Vec::with_capacity(specs.len());
        for _ in specs {
            let mut header = String::new();
            if stdout.read_line(&mut header)? == 0 {
                bail!("git cat-file ended early");
            }
            let parts: Vec<&str> = header.split_whitespace().collect();
            match parts.as_slice() {
                [_, kind, size] => {
                    let size: usize = size.parse().context("git cat-file size")?;
                    let mut content = vec![0; size + 1];
                    stdout.read_exact(&mut content)?;
                    content.pop();
                    blobs.push(if *kind == "blob" {
                        String::from_utf8(content).ok()
                    } else {
                        None
                    });
                }
                _ => blobs.push(None),
            }
        }
        let _ = writer.join();
        let _ = child.wait();
        Ok(blobs)
    }

    /// An in-memory index of the Rust files and manifests at `rev`.
    fn index_at(&self, rev: &str, settings: &ContextSettings) -> anyhow::Result<WorkspaceIndex> {
        let listing = self.run(&["ls-tree", "-r", "--name-only", rev])?;
        let paths: Vec<&str> = listing
            .lines()
            .filter(|p| p.ends_with(".rs") || p.ends_with("Cargo.toml"))
            .collect();
        let specs: Vec<(&str, &str)> = paths.iter().map(|p| (rev, *p)).collect();
        let blobs = self.blobs(&specs)?;
        let mut files = Vec::new();
        let mut manifests = Vec::new();
        for (path, blob) in paths.iter().zip(blobs) {
            let Some(text) = blob else { continue };
            if path.ends_with("Cargo.toml") {
                manifests.push((PathBuf::from(path), text));
            } else if text.len() as u64 <= settings.max_file_bytes {
                files.push((PathBuf::from(path), text));
            }
        }
        WorkspaceIndex::from_texts(&self.root, settings, files, &manifests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_functions_own_bindings_are_its_parameters_lets_and_closure_parameters() {
        let text = "fn ask(parse: impl Fn(&str) -> u8, n: u32) {\n    \
                    let Some(first) = get() else { return };\n    \
                    let Point { x, .. } = origin();\n    \
                    let f = |item: Item, (a, b)| a;\n    parse(first);\n}\n";
        let tree = Language::by_name("rust")
            .expect("rust")
            .parse(text)
            .expect("a tree");
        let locals = local_bindings(&tree, 0..text.len(), text);
        let mut names: Vec<&str> = locals.iter().map(String::as_str).collect();
        names.sort_unstable();
        // Not the patterns' paths (`Some`, `Point`), nor types, nor called functions.
        assert_eq!(names, ["a", "b", "f", "first", "item", "n", "parse", "x"]);
    }

    #[test]
    fn generic_parameters_of_the_function_and_its_impl_are_its_own() {
        let text = "struct Other;\nimpl<T: Clone, const N: usize> Ring<T, N> {\n    \
                    fn map<U, F>(&self, f: F) -> Ring<U, N> where F: Fn(T) -> U {\n        \
                    let u: U = f(T::default());\n        Other::wrap(u)\n    }\n}\n";
        let tree = Language::by_name("rust")
            .expect("rust")
            .parse(text)
            .expect("a tree");
        let start = text.find("fn map").expect("fn map");
        let end = text.rfind("    }").expect("end of map") + 5;
        let locals = local_bindings(&tree, start..end, text);
        let mut names: Vec<&str> = locals.iter().map(String::as_str).collect();
        names.sort_unstable();
        // The generics of `map` and of the `impl` around it, not the types it names.
        assert_eq!(names, ["F", "N", "T", "U", "f", "u"]);
    }

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn history_is_scored_for_the_bundle_and_both_baselines() {
        let dir = std::env::temp_dir().join(format!("conductor-eval-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).expect("dir");
        git(&dir, &["init", "-q"]);
        std::fs::write(
            dir.join("Cargo.toml"),
            "[package]\nname = \"demo\"\nedition = \"2021\"\n",
        )
        .expect("w");
        let lib = |body: &str| {
            format!(
                "pub mod util;\n{}pub fn run() -> u32 {{\n    {body}\n}}\n",
                "// padding\n".repeat(300)
            )
        };
        let util = |op: &str| {
            format!(
                "/// Doubles.\npub fn double(x: u32) -> u32 {{ {op} }}\n/// Triples.\npub fn triple(x: u32) -> u32 {{ x * 3 }}\n"
            )
        };
        std::fs::write(dir.join("src/lib.rs"), lib("util::double(1)")).expect("w");
        std::fs::write(dir.join("src/util.rs"), util("x * 2")).expect("w");
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-qm", "start"]);
        std::fs::write(
            dir.join("src/lib.rs"),
            lib("util::double(1) + util::triple(1)"),
        )
        .expect("w");
        std::fs::write(dir.join("src/util.rs"), util("x + x")).expect("w");
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-qm", "run adds a triple"]);
        let options = EvalOptions {
            commits: 10,
            budget: 600,
            window_lines: 20,
            per_commit: 5,
            verbose: false,
        };
        let report =
            evaluate(&dir, &ContextSettings::default(), &options, &mut Vec::new()).expect("eval");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((report.commits_examined, report.commits_used), (1, 1));
        // `run` and `double` both changed; the new `run` uses `util` (lib.rs), `double` and
        // `triple` (util.rs). The bundle of the old `run` has what it already used, and the
        // repository map adds `triple`'s signature from util.rs, the file `run` depends on;
        // `double`'s bundle lists `run` as a caller in lib.rs.
        let render = report.render();
        assert_eq!(report.cases, 2, "{render}");
        let bundle = &report.strategies[0];
        assert_eq!(
            (bundle.definitions_found, bundle.definitions_total),
            (3, 3),
            "{render}"
        );
        assert_eq!((bundle.new_found, bundle.new_total), (1, 1), "{render}");
        assert_eq!((bundle.files_found, bundle.files_total), (2, 2), "{render}");
        // Every definition the bundle offers is reachable and resolved for certain: `util` and
        // `double` through the path `util::double` from lib.rs.
        assert!(bundle.definition_items > 0, "{render}");
        assert_eq!(bundle.precise_items, bundle.definition_items, "{render}");
        assert!(render.contains("definition precision"), "{render}");
        let with_goal = &report.strategies[1];
        assert_eq!(with_goal.definitions_found, 3, "{render}");
        assert_eq!(
            (with_goal.new_found, with_goal.new_total),
            (1, 1),
            "{render}"
        );
        for baseline in &report.strategies[2..] {
            assert_eq!(baseline.definition_items, 0, "{}", report.render());
            assert_eq!(baseline.definitions_found, 0, "{}", report.render());
            assert_eq!(baseline.files_found, 0, "{}", report.render());
            assert!(baseline.tokens_spent <= 2 * options.budget);
        }
        assert!(report.render().contains("20 lines around"));
    }

    #[test]
    fn a_folder_that_is_not_a_repository_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("conductor-eval-none-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let options = EvalOptions {
            commits: 1,
            budget: 100,
            window_lines: 10,
            per_commit: 1,
            verbose: false,
        };
        let err = evaluate(&dir, &ContextSettings::default(), &options, &mut Vec::new())
            .expect_err("not a repo");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.to_string().contains("not a git repository"), "{err}");
    }

    #[test]
    fn a_changed_function_is_paired_with_the_same_type_s_function() {
        let rust = Language::by_name("rust").expect("rust");
        let tags_of = |text: &str| {
            let tree = rust.parse(text).expect("tree");
            tags::extract(text, &tree).expect("tags")
        };
        // The commit removes `A`'s `default` and changes `B`'s: by name and occurrence alone,
        // the old `A::default` would be paired with the new `B::default`.
        let old = "struct A;\nstruct B;\nimpl Default for A {\n    fn default() -> A { A }\n}\n\
                   impl Default for B {\n    fn default() -> B { B }\n}\n";
        let new = "struct A;\nstruct B;\nimpl Default for B {\n    fn default() -> B { let b = B; b }\n}\n";
        let (old_tags, new_tags) = (tags_of(old), tags_of(new));
        let pairs = changed_functions(&old_tags, old, &new_tags, new);
        let owners: Vec<(Option<&str>, Option<&str>)> = pairs
            .iter()
            .map(|(o, n)| (o.owner.as_deref(), n.owner.as_deref()))
            .collect();
        assert_eq!(owners, [(Some("B"), Some("B"))]);
    }

    #[test]
    fn the_path_written_before_a_name_is_read_back() {
        let text = "let x = grep::searcher::MmapChoice::auto(); y(); Vec::<u8>::new(); é::z";
        let at = |needle: &str| text.find(needle).expect("present");
        assert_eq!(
            qualifier_before(text, at("auto")),
            ["grep", "searcher", "MmapChoice"]
        );
        assert!(qualifier_before(text, at("y()")).is_empty());
        // Generic arguments end the path rather than being read as a segment.
        assert!(qualifier_before(text, at("new")).is_empty());
        assert_eq!(qualifier_before(text, at("z")), ["é"]);
    }
}
