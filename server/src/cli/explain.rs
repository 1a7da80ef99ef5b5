//! `conductor explain`: `--run ID` prints a run's whole story from its journal (goal, plan and
//! the human's edits to it, context, decisions, review, tests, usage, review state) as text,
//! markdown or JSON; `FILE:LINE` is the decisions covering that line.
//!
//! Exit codes: 0 the story (or the line's decisions) printed; 2 a usage error, an unknown run
//! id (the message names the runs folder) or a journal that cannot be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{EXIT_OK, EXIT_USAGE};
use crate::journal::{self, story};

/// Output formats of `conductor explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    /// For a terminal.
    Text,
    /// A document for people (what `.conductor/runs/<id>/story.md` holds).
    Markdown,
    /// For scripts.
    Json,
}

/// Arguments of `conductor explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// `FILE:LINE` (1-based): the decisions covering that line.
    #[arg(
        value_name = "FILE:LINE",
        required_unless_present = "run",
        conflicts_with = "run"
    )]
    pub target: Option<String>,
    /// A run's whole story (ids as `conductor runs` lists them).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ExplainFormat,
    /// The workspace root (default: the one that holds FILE, else the current folder's).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

/// Runs `conductor explain`.
pub fn run(args: &ExplainArgs) -> ExitCode {
    ExitCode::from(match (&args.run, &args.target) {
        (Some(id), _) => explain_run(args, id),
        (None, Some(target)) => explain_line(args, target),
        (None, None) => {
            eprintln!("conductor explain: give FILE:LINE or --run ID");
            EXIT_USAGE
        }
    })
}

fn explain_run(args: &ExplainArgs, id: &str) -> u8 {
    let root = match &args.root {
        Some(root) => root.canonicalize().unwrap_or_else(|_| root.clone()),
        None => super::run::root_of(Path::new(".")),
    };
    let found = match story::load(&root, id) {
        Ok(found) => found,
        Err(err) => {
            eprintln!(
                "conductor explain: cannot read the journal of run {id} in {}: {err}",
                journal::runs_dir(&root).display()
            );
            return EXIT_USAGE;
        }
    };
    let Some(story) = found else {
        eprintln!(
            "conductor explain: no run {id:?} is journalled in {} (`conductor runs` lists the runs there)",
            journal::runs_dir(&root).display()
        );
        return EXIT_USAGE;
    };
    match args.format {
        ExplainFormat::Text => print!("{}", story::to_text(&story)),
        ExplainFormat::Markdown => print!("{}", story::to_markdown(&story)),
        ExplainFormat::Json => match serde_json::to_string_pretty(&story) {
            Ok(json) => println!("{json}"),
            Err(err) => {
                eprintln!("conductor explain: cannot write run {id} as JSON: {err}");
                return EXIT_USAGE;
            }
        },
    }
    // The story is printed in full; its unreadable lines are repeated on stderr so a script
    // reading stdout still learns that the journal was not whole.
    for warning in &story.warnings {
        eprintln!("conductor explain: {warning}");
    }
    EXIT_OK
}

/// `FILE:LINE` → the file and its 1-based line.
pub fn parse_target(target: &str) -> Result<(PathBuf, usize), String> {
    let Some((file, line)) = target.rsplit_once(':') else {
        return Err(format!(
            "`{target}` is not FILE:LINE (for example src/lib.rs:42)"
        ));
    };
    if file.is_empty() {
        return Err(format!("`{target}` names no file"));
    }
    match line.trim().parse::<usize>() {
        Ok(line) if line >= 1 => Ok((PathBuf::from(file), line)),
        _ => Err(format!(
            "`{target}`: the line `{line}` is not a number from 1 (lines are 1-based)"
        )),
    }
}

fn explain_line(args: &ExplainArgs, target: &str) -> u8 {
    let (file, line) = match parse_target(target) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("conductor explain: {err}");
            return EXIT_USAGE;
        }
    };
    if !file.exists() {
        eprintln!("conductor explain: {}: no such file", file.display());
        return EXIT_USAGE;
    }
    let file = file.canonicalize().unwrap_or(file);
    // The workspace whose journals recorded the file: the nearest folder above it that has
    // runs, else the one `conductor scan` would take.
    let root = match &args.root {
        Some(root) => root.canonicalize().unwrap_or_else(|_| root.clone()),
        None => file
            .ancestors()
            .skip(1)
            .find(|dir| journal::runs_dir(dir).is_dir())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| super::run::root_of(&file)),
    };
    let format = match args.format {
        ExplainFormat::Text => "text",
        ExplainFormat::Markdown => "markdown",
        ExplainFormat::Json => "json",
    };
    match crate::decisions::explain_line(&root, &file, line, format) {
        Ok(out) => {
            println!("{}", out.trim_end());
            EXIT_OK
        }
        Err(err) => {
            eprintln!("conductor explain: {err}");
            EXIT_USAGE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_line_targets_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_target("src/lib.rs:42"),
            Ok((PathBuf::from("src/lib.rs"), 42))
        );
        assert_eq!(
            parse_target("C:/w/a.rs:3"),
            Ok((PathBuf::from("C:/w/a.rs"), 3)),
            "the last colon separates the line"
        );
        assert!(
            parse_target("src/lib.rs")
                .unwrap_err()
                .contains("FILE:LINE")
        );
        assert!(
            parse_target("src/lib.rs:0")
                .unwrap_err()
                .contains("1-based")
        );
        assert!(parse_target(":4").unwrap_err().contains("no file"));
    }
}
