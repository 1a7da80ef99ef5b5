//! Scripted agent replies in the documented formats (a plan, SEARCH/REPLACE blocks, the
//! decision list), shared by the run tests.

use conductor::testkit::Reply;
use serde_json::Value;

/// A planner reply of one coder step on `targets`.
pub fn plan_reply(targets: &[&str]) -> Reply {
    let targets: Vec<Value> = targets.iter().map(|t| Value::from(*t)).collect();
    let plan = serde_json::json!({
        "summary": "Change the constant the function returns.",
        "steps": [{"id": "s1", "title": "Return 42", "agent": "coder", "targets": targets, "depends_on": []}],
        "risks": ["callers that expect 41"],
        "tradeoffs": ["none worth noting"],
    });
    Reply::text(format!("Here is the plan.\n```json\n{plan}\n```\n"))
}

/// One SEARCH/REPLACE block.
pub fn block(path: &str, search: &str, replace: &str) -> String {
    format!("{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n")
}

/// The decisions block for blocks `1..=n`.
pub fn decisions(blocks: &[usize]) -> String {
    let list: Vec<Value> = blocks
        .iter()
        .map(|b| {
            serde_json::json!({
                "block": b,
                "summary": format!("block {b}: return 42"),
                "rationale": "the goal asks for 42",
                "alternatives": ["a named constant"],
                "tradeoffs": ["a literal is less self-explaining"],
            })
        })
        .collect();
    format!(
        "```json\n{}\n```\n",
        serde_json::json!({ "decisions": list })
    )
}

/// The coder reply that does the goal on `src/lib.rs`.
pub fn good_coder_reply() -> Reply {
    Reply::text(format!(
        "{}\n{}",
        block("src/lib.rs", "    41\n", "    42\n"),
        decisions(&[1])
    ))
}
