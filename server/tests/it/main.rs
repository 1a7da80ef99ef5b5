//! Integration tests: one binary, one module per area, all driving the real server in process
//! (or the real binary over stdio) and never reaching beyond loopback.

mod support;

mod client_requests;
mod context;
mod decisions;
mod editor_roundtrip;
mod editors;
mod edits;
mod explain;
mod explain_cli;
mod fuzz;
mod harness;
mod hostile;
mod llm;
mod lsp_basics;
mod lsp_edits_property;
mod plan_doc;
mod review_editor;
mod review_loop;
mod runs;
mod runs_editor;
mod security;
mod security_workspace;
mod stdio;
mod tidy;
