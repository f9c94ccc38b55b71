//! The offline intent engine as a language model: no network, no key, deterministic. A user
//! message becomes the engine's calls (or its reply); the results of those calls become the
//! engine's sentences about them.

use crate::LanguageModel;
use crate::conversation::{Conversation, FunctionCall, FunctionResult, ModelTurn, Turn};
use crate::error::ModelError;
use devgem_tools::{ToolCall, ToolDeclaration, Understanding, reply_for, understand};

/// The offline engine. It never fails and never waits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline;

impl Offline {
    /// The turn the engine takes, without the async wrapper.
    pub fn answer(&self, conversation: &Conversation) -> ModelTurn {
        match conversation.turns.last() {
            Some(Turn::User(text)) => match understand(text, &conversation.context) {
                Understanding::Calls { calls, lead_in } => ModelTurn::Calls {
                    calls: calls
                        .iter()
                        .map(|c| FunctionCall::new(c.name().as_str(), c.to_json()))
                        .collect(),
                    text: lead_in,
                },
                Understanding::Reply(reply) => ModelTurn::Text(reply),
            },
            Some(Turn::Results(results)) => {
                ModelTurn::Text(describe_results(conversation, results))
            }
            // Nothing new to answer: say what the engine can do.
            Some(Turn::Model { .. }) | None => match understand("help", &conversation.context) {
                Understanding::Reply(reply) => ModelTurn::Text(reply),
                Understanding::Calls { lead_in, .. } => {
                    ModelTurn::Text(lead_in.unwrap_or_else(|| "How can I help?".into()))
                }
            },
        }
    }
}

/// One sentence per result, from the call it answers (the previous model turn's, by position).
fn describe_results(conversation: &Conversation, results: &[FunctionResult]) -> String {
    let calls: &[FunctionCall] = conversation
        .turns
        .iter()
        .rev()
        .find_map(|t| match t {
            Turn::Model { calls, .. } if !calls.is_empty() => Some(calls.as_slice()),
            _ => None,
        })
        .unwrap_or_default();
    results
        .iter()
        .enumerate()
        .map(|(i, result)| {
            let call = calls
                .get(i)
                .filter(|c| c.name == result.name)
                .or_else(|| calls.iter().find(|c| c.name == result.name))
                .and_then(|c| ToolCall::from_json(&c.name, &c.args).ok());
            match (call, &result.outcome) {
                (Some(call), Some(outcome)) => reply_for(&call, outcome),
                _ => format!("{} done.", result.name.replace('_', " ")),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[async_trait::async_trait]
impl LanguageModel for Offline {
    async fn next(
        &self,
        conversation: &Conversation,
        _tools: &[ToolDeclaration],
    ) -> Result<ModelTurn, ModelError> {
        Ok(self.answer(conversation))
    }

    fn name(&self) -> String {
        "offline".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_tools::ToolOutcome;
    use serde_json::json;

    #[test]
    fn a_deploy_request_becomes_a_call_and_its_result_a_sentence() {
        let mut c = Conversation::new("").user("deploy github.com/acme/shop from staging");
        let turn = Offline.answer(&c);
        let call = &turn.calls()[0];
        assert_eq!(call.name, "deploy_repository");
        assert_eq!(call.args["branch"], "staging");
        c.push_model(&turn);
        let id = devgem_domain::DeploymentId::parse("d-123").unwrap();
        c.turns.push(Turn::Results(vec![FunctionResult {
            name: call.name.clone(),
            id: None,
            response: json!({"deployment_id": "d-123"}),
            outcome: Some(ToolOutcome::Started { deployment_id: id }),
        }]));
        let ModelTurn::Text(reply) = Offline.answer(&c) else {
            panic!("a text reply")
        };
        assert!(reply.contains("d-123"), "{reply}");
    }

    #[test]
    fn a_greeting_is_answered_in_text() {
        let c = Conversation::new("").user("hello");
        assert!(matches!(Offline.answer(&c), ModelTurn::Text(_)));
    }
}
