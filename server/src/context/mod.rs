//! The context engine: a workspace index built from tree-sitter tags, and the context bundle —
//! what an agent sees of the code around a selection, ranked and fitted to a token budget.
//!
//! Everything here is plain data in, plain data out; the LSP and CLI layers convert at their
//! edges. The pieces:
//! - [`tags`]: definitions and references of one file, from `queries/rust/tags.scm`;
//! - [`index`]: the [`WorkspaceIndex`] — files, definitions, references, crate facts, and the
//!   file reference graph, kept current file by file;
//! - [`rank`]: personalised PageRank over the file graph;
//! - [`bundle`]: the [`ContextBundle`] for a file, a byte range, a goal and a budget;
//! - [`tokens`]: token counting (a real BPE for OpenAI-style models);
//! - [`secrets`]: which files never enter context;
//! - [`manifest`]: crate facts from `Cargo.toml`;
//! - [`eval`]: recall of bundles against the history of a git repository.

pub mod bundle;
pub mod eval;
pub mod index;
pub mod live;
pub mod manifest;
pub mod rank;
pub mod secrets;
pub mod show;
pub mod tags;
pub mod tokens;

use serde::{Deserialize, Serialize};

pub use bundle::{BundleRequest, ContextBundle, ContextItem, ItemKind, build_bundle};
pub use index::WorkspaceIndex;

/// `[context]`: the workspace index and the context bundle. Documented in
/// `docs/configuration.md`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ContextSettings {
    /// The token budget of a bundle when the caller does not give one.
    pub budget: usize,
    /// Globs (relative to the workspace root, gitignore-style `**` allowed) never indexed, on top
    /// of `.gitignore`, `target/`, `.git/` and `.conductor/`.
    pub exclude: Vec<String>,
    /// Files larger than this many bytes are skipped (with a note): they are usually generated.
    pub max_file_bytes: u64,
    /// Extra file-name globs that look like secrets; the built-in list always applies.
    pub secret_files: Vec<String>,
    /// How many threads parse files while indexing (0 = one per core).
    pub threads: usize,
    /// A definition's body is included when it has at most this many lines; otherwise only its
    /// doc comment and signature.
    pub max_body_lines: usize,
    /// How many callers and how many tests at most a bundle lists.
    pub max_callers: usize,
    /// The tokenizer used to count tokens: `o200k` (GPT-4o and later), `cl100k` (GPT-4,
    /// GPT-3.5) or `estimate` (bytes / 4, for other model families).
    pub tokenizer: String,
}

impl Default for ContextSettings {
    fn default() -> Self {
        Self {
            budget: 6000,
            exclude: Vec::new(),
            max_file_bytes: 1024 * 1024,
            secret_files: Vec::new(),
            threads: 0,
            max_body_lines: 40,
            max_callers: 5,
            tokenizer: "o200k".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::syntax::Language;

    #[test]
    fn the_context_queries_compile_against_the_rust_grammar() {
        let rust = Language::by_name("rust").expect("rust");
        for name in ["tags.scm", "context.scm"] {
            if let Err(err) = rust.query(name) {
                panic!("queries/rust/{name}: {err:#}");
            }
        }
    }
}
