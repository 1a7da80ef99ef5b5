//! Conductor: a language server that orchestrates AI agents — plan, code, review, test,
//! improve — and makes every decision visible where the code lives.
//!
//! See `docs/architecture.md` for the code map and the invariants.

pub mod agents;
pub mod alloc;
pub mod app;
pub mod cli;
pub mod config;
pub mod context;
pub mod decisions;
pub mod document;
pub mod editor;
pub mod edits;
pub mod journal;
pub mod llm;
pub mod logging;
pub mod lsp;
pub mod orchestrator;
pub mod security;
pub mod syntax;
pub mod tester;
/// The fault-injecting model server of the tests and benchmarks: built only with the `testkit`
/// feature (which the crate's own dev-dependency turns on), never into the release binary.
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod testkit;
pub mod util;
pub mod workspace;
