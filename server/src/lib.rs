//! Conductor: a language server that orchestrates AI agents — plan, code, review, test,
//! improve — and makes every decision visible where the code lives.
//!
//! See `docs/architecture.md` for the code map and the invariants.

pub mod cli;
pub mod config;
pub mod context;
pub mod document;
pub mod edits;
pub mod llm;
pub mod logging;
pub mod lsp;
pub mod security;
pub mod syntax;
#[doc(hidden)]
pub mod testkit;
