//! The coder: one plan step, its context, the current text of the files it may change and the
//! feedback so far become SEARCH/REPLACE edit blocks with one decision record per block. The
//! blocks are a proposal: this module returns them as data and never touches a file.

use super::{Answer, DATA_RULE, data, numbered};
use crate::llm::protocol::{
    AskError, CODER_FORMAT, CoderReply, PlanStep, ask_validated, parse_coder,
};
use crate::llm::{AgentRole, ChatRequest, ModelClient, Run};

/// A file the coder may change, as it is now (with the run's earlier steps applied).
#[derive(Debug, Clone)]
pub struct TargetFile {
    /// Relative to the workspace root.
    pub path: String,
    /// Its current text; `None` when it does not exist yet.
    pub text: Option<String>,
}

/// What the coder is given.
#[derive(Debug, Clone)]
pub struct CoderInput {
    /// The run's goal.
    pub goal: String,
    /// The plan's summary.
    pub plan_summary: String,
    /// The step to do.
    pub step: PlanStep,
    /// The files it may change.
    pub files: Vec<TargetFile>,
    /// The context bundle for the step's targets, rendered as a prompt; empty when none.
    pub context: String,
    /// What went wrong so far: refused blocks with their reasons, review findings, test
    /// failures. Untrusted (it quotes model replies and test output), so it is fenced.
    pub feedback: Vec<String>,
}

/// The system prompt of the coder.
pub fn system_prompt() -> String {
    format!(
        "You are the coding agent of Conductor. You do one step of a plan by proposing edits; Conductor applies them to a copy of the workspace, reviews and tests them, and the developer accepts or rejects them. \
You cannot read other files or run commands.\n\
Rules for edit blocks:\n\
- the path is relative to the workspace root; only change the files you are shown, or create new ones;\n\
- SEARCH quotes the file's current lines exactly, with their indentation, and without the `N| ` line-number margin, which is not part of the file;\n\
- quote enough lines that SEARCH matches one place only; keep blocks small; never write `...` for lines you leave out;\n\
- write one decision per block: what it does, why this way, the alternatives you considered and the trade-offs.\n\
{DATA_RULE}\n\
Reply with exactly this format:\n{CODER_FORMAT}"
    )
}

/// The user turn of the coder's request.
pub fn user_prompt(input: &CoderInput) -> String {
    let step = &input.step;
    let mut out = format!(
        "Goal of the run: {}\nPlan: {}\nYour step ({}): {}\nTargets: {}\n\n",
        input.goal.trim(),
        input.plan_summary.trim(),
        step.id,
        step.title.trim(),
        if step.targets.is_empty() {
            "(none named)".to_string()
        } else {
            step.targets.join(", ")
        }
    );
    for file in &input.files {
        match &file.text {
            Some(text) => out.push_str(&data(
                &format!("the current text of {} (line numbers in the margin)", file.path),
                &numbered(text),
            )),
            None => out.push_str(&format!(
                "{} does not exist yet; create it with an empty SEARCH part if the step needs it.\n",
                file.path
            )),
        }
        out.push('\n');
    }
    if !input.context.trim().is_empty() {
        out.push_str(&data(
            "context from the rest of the workspace",
            &input.context,
        ));
        out.push('\n');
    }
    if !input.feedback.is_empty() {
        out.push_str(
            "Your earlier proposal for this step needs another attempt. What happened to it:\n",
        );
        out.push_str(&data("feedback", &input.feedback.join("\n")));
        out.push_str(
            "Reply with the blocks still needed, quoting the files as they are now (shown above).\n",
        );
    }
    out
}

/// Asks the coder for one step's edit blocks and decisions; a reply that does not validate
/// (no blocks, a decision list that does not match them, a block cut off) gets one corrective
/// retry.
pub async fn code(
    client: &ModelClient,
    run: &Run,
    input: &CoderInput,
) -> Result<Answer<CoderReply>, AskError> {
    let request = ChatRequest::new(AgentRole::Coder, Some(system_prompt()), user_prompt(input));
    let (value, responses) =
        ask_validated(client, run, request, parse_coder, CODER_FORMAT, &mut |_| {}).await?;
    Ok(Answer { value, responses })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::protocol::StepAgent;

    #[test]
    fn the_coder_sees_numbered_files_and_fenced_feedback() {
        let input = CoderInput {
            goal: "validate input".into(),
            plan_summary: "one change".into(),
            step: PlanStep {
                id: "s1".into(),
                title: "check the length".into(),
                agent: StepAgent::Coder,
                targets: vec!["src/a.rs".into()],
                depends_on: vec![],
            },
            files: vec![
                TargetFile {
                    path: "src/a.rs".into(),
                    text: Some("fn a() {}\n".into()),
                },
                TargetFile {
                    path: "src/new.rs".into(),
                    text: None,
                },
            ],
            context: String::new(),
            feedback: vec!["block 1: the SEARCH part was not found".into()],
        };
        let prompt = user_prompt(&input);
        assert!(prompt.contains("1| fn a() {}\n"), "{prompt}");
        assert!(prompt.contains("src/new.rs does not exist yet"));
        assert!(prompt.contains("DATA — feedback:"));
        assert!(prompt.contains("Your step (s1): check the length"));
    }
}
