//! `conductor context` (print the bundle an agent would see for a position or selection) and
//! `conductor eval context` (measure bundle recall on a git repository's history).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};
use crate::config;
use crate::context::eval::{EvalOptions, evaluate};
use crate::context::{BundleRequest, ContextSettings, WorkspaceIndex, build_bundle};
use crate::workspace;

/// How `conductor context` prints the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ContextFormat {
    /// One line per item: kind, place, symbol, score, tokens, reason.
    Text,
    /// `{"items":[…],"total_tokens":N,"budget":N,…}`, lines 1-based.
    Json,
    /// The prompt-ready text the agents send.
    Prompt,
    /// The document "Conductor: Show context" opens.
    Markdown,
}

/// Arguments of `conductor context`.
#[derive(Debug, Args)]
pub struct ContextArgs {
    /// Where the cursor is: `FILE:LINE[:COL]`, 1-based (the column counts characters).
    pub position: String,
    /// The end of a selection starting at the position: `LINE:COL`, 1-based.
    #[arg(long)]
    pub end: Option<String>,
    /// What you want done; identifiers in it steer the ranking.
    #[arg(long)]
    pub goal: Option<String>,
    /// The token budget (default: `context.budget`, 6000).
    #[arg(long)]
    pub budget: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ContextFormat,
    /// The workspace root (default: the Cargo workspace that owns the file — the nearest
    /// `Cargo.toml` with a `[workspace]` table that does not exclude it, or the package's own —
    /// else the folder holding `conductor.toml` or `.git`, else the current folder).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

/// `conductor eval …`.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Recall of context bundles against a git repository's history, with two baselines.
    Context(EvalContextArgs),
}

/// Arguments of `conductor eval context`.
#[derive(Debug, Args)]
pub struct EvalContextArgs {
    /// The git repository (its work tree is never touched: history is read with `git`).
    #[arg(long)]
    pub repo: PathBuf,
    /// How many of the latest non-merge commits to examine.
    #[arg(long, default_value_t = 100)]
    pub commits: usize,
    /// The token budget of every bundle and baseline.
    #[arg(long)]
    pub budget: Option<usize>,
    /// The "N lines around the selection" baseline's N.
    #[arg(long, default_value_t = 100)]
    pub lines: usize,
    /// At most this many changed functions per commit.
    #[arg(long, default_value_t = 5)]
    pub per_commit: usize,
    /// Print one line per evaluated function.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs `conductor context`.
pub fn run(args: ContextArgs) -> ExitCode {
    match context(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::from(EXIT_OK)
        }
        Err(Failure::Usage(err)) => {
            eprintln!("conductor context: {err:#}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Run(err)) => {
            eprintln!("conductor context: {err:#}");
            ExitCode::from(EXIT_FINDINGS)
        }
    }
}

enum Failure {
    Usage(anyhow::Error),
    Run(anyhow::Error),
}

fn context(args: &ContextArgs) -> Result<String, Failure> {
    let (file, line, col) = parse_position(&args.position).map_err(Failure::Usage)?;
    let end = args
        .end
        .as_deref()
        .map(parse_line_col)
        .transpose()
        .map_err(Failure::Usage)?;
    let text = crate::util::read_regular_text(&file, crate::util::MAX_READ_BYTES)
        .with_context(|| format!("reading {}", file.display()))
        .map_err(Failure::Usage)?;
    let file = file
        .canonicalize()
        .with_context(|| format!("resolving {}", file.display()))
        .map_err(Failure::Usage)?;
    let root = match &args.root {
        Some(root) => root.clone(),
        None => workspace_root(&file),
    };
    let settings = load_settings(&root);
    let start = byte_offset(&text, line, col);
    let end = end.map_or(start, |(l, c)| byte_offset(&text, l, c));
    if end < start {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--end is before the position"
        )));
    }
    let index = WorkspaceIndex::build(&root, &settings).map_err(Failure::Run)?;
    let request = BundleRequest {
        file,
        text: Some(text),
        tree: None,
        range: start..end,
        goal: args.goal.clone(),
        budget: args.budget,
    };
    let bundle = build_bundle(&index, &request).map_err(Failure::Run)?;
    Ok(match args.format {
        ContextFormat::Text => bundle.to_text(),
        ContextFormat::Json => {
            let mut json = serde_json::to_string_pretty(&bundle)
                .context("serialising the bundle")
                .map_err(Failure::Run)?;
            json.push('\n');
            json
        }
        ContextFormat::Prompt => bundle.to_prompt(),
        ContextFormat::Markdown => bundle.to_markdown(),
    })
}

/// Runs `conductor eval …`.
pub fn run_eval(command: EvalCommand) -> ExitCode {
    match command {
        EvalCommand::Context(args) => {
            let root = args.repo.clone();
            let settings = load_settings(&root);
            let options = EvalOptions {
                commits: args.commits,
                budget: args.budget.unwrap_or(settings.budget),
                window_lines: args.lines,
                per_commit: args.per_commit,
                verbose: args.verbose,
            };
            match evaluate(&args.repo, &settings, &options, &mut std::io::stdout()) {
                Ok(report) => {
                    print!("{}", report.render());
                    ExitCode::from(EXIT_OK)
                }
                Err(err) => {
                    eprintln!("conductor eval context: {err:#}");
                    ExitCode::from(EXIT_FINDINGS)
                }
            }
        }
    }
}

/// `[context]` from `conductor.toml` at `root`; problems are reported and defaults kept.
fn load_settings(root: &Path) -> ContextSettings {
    let (config, problems) = config::load_workspace(root);
    for problem in problems {
        eprintln!("conductor: {problem}");
    }
    config.context
}

/// `FILE:LINE[:COL]` → (file, line, column), 1-based.
fn parse_position(spec: &str) -> anyhow::Result<(PathBuf, usize, usize)> {
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let numbers: Vec<Option<usize>> = parts.iter().map(|p| p.parse().ok()).collect();
    match (parts.as_slice(), numbers.as_slice()) {
        ([col, line, file], [Some(_), Some(_), _]) if !file.is_empty() => {
            Ok((PathBuf::from(file), parse_one(line)?, parse_one(col)?))
        }
        ([line, rest @ ..], [Some(_), ..]) if !rest.is_empty() => {
            // `FILE:LINE`, where FILE may itself contain a colon.
            let file = spec[..spec.len() - line.len() - 1].to_string();
            Ok((PathBuf::from(file), parse_one(line)?, 1))
        }
        _ => bail!("expected FILE:LINE[:COL] with a 1-based line, got `{spec}`"),
    }
}

fn parse_line_col(spec: &str) -> anyhow::Result<(usize, usize)> {
    let (line, col) = spec
        .split_once(':')
        .with_context(|| format!("expected LINE:COL, got `{spec}`"))?;
    Ok((parse_one(line)?, parse_one(col)?))
}

fn parse_one(number: &str) -> anyhow::Result<usize> {
    match number.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => bail!("`{number}` is not a 1-based line or column"),
    }
}

/// The byte offset of a 1-based line and character column, clamped to the text.
fn byte_offset(text: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let content = l.trim_end_matches(['\n', '\r']);
            let within = content
                .char_indices()
                .nth(col - 1)
                .map_or(content.len(), |(b, _)| b);
            return offset + within;
        }
        offset += l.len();
    }
    text.len()
}

/// The workspace root of `file` ([`workspace::root_for`]: the Cargo workspace that owns it, the
/// one rule every command uses), else the current folder.
fn workspace_root(file: &Path) -> PathBuf {
    workspace::root_for(file)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_with_and_without_columns() {
        let (file, line, col) = parse_position("src/lib.rs:12:5").expect("valid");
        assert_eq!((file, line, col), (PathBuf::from("src/lib.rs"), 12, 5));
        let (file, line, col) = parse_position("src/lib.rs:7").expect("valid");
        assert_eq!((file, line, col), (PathBuf::from("src/lib.rs"), 7, 1));
        assert!(parse_position("src/lib.rs").is_err());
        assert!(parse_position("src/lib.rs:0").is_err());
        assert!(parse_line_col("3").is_err());
    }

    /// The case of issue 18: `cd examples && conductor context src/handlers.rs:28` showed the
    /// server's `len`, `query` and two `State`s, from another Cargo workspace.
    #[test]
    fn the_example_handler_gets_no_definitions_from_the_server_workspace() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the repository");
        let handlers = repo.join("examples/src/handlers.rs");
        for root in [None, Some(repo.to_path_buf())] {
            let args = ContextArgs {
                position: format!("{}:28", handlers.display()),
                end: None,
                goal: None,
                budget: Some(1500),
                format: ContextFormat::Json,
                root: root.clone(),
            };
            let Ok(out) = context(&args) else {
                panic!("conductor context failed with root {root:?}");
            };
            let bundle: serde_json::Value = serde_json::from_str(&out).expect("json");
            let items = bundle["items"].as_array().expect("items");
            let files: Vec<&str> = items.iter().filter_map(|i| i["file"].as_str()).collect();
            assert!(
                files.iter().all(|f| !f.starts_with("server/")),
                "root {root:?}: {files:?}"
            );
            let external = items
                .iter()
                .find(|i| i["kind"] == "external")
                .and_then(|i| i["text"].as_str())
                .unwrap_or_default();
            assert!(
                external.contains("`State`: `axum::extract::State`")
                    && external.contains("`query`: `sqlx::query`"),
                "root {root:?}: {external}"
            );
        }
        assert_eq!(workspace_root(&handlers), repo.join("examples"));
    }

    #[test]
    fn columns_count_characters_and_clamp() {
        let text = "fn é() {}\nlet x = 1;\n";
        assert_eq!(byte_offset(text, 1, 5), 5);
        assert_eq!(byte_offset(text, 1, 6), 6);
        assert_eq!(byte_offset(text, 2, 1), 11);
        assert_eq!(byte_offset(text, 2, 99), 21);
        assert_eq!(byte_offset(text, 99, 1), text.len());
    }
}
