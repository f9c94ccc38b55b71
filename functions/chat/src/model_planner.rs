//! The chat on a language model: a [`Planner`] that asks a [`FallbackChain`] (which always ends
//! in the offline engine) for each round, shows it the tools' declarations, the session's
//! history and the results of the calls it made, and turns its function calls into tool calls.
//!
//! The model never sees a secret value: the chain's adapters send `redact(conversation)`, the
//! values the offline engine reads in the message (`set KEY to value`) are added to the
//! conversation's secrets, and a value the model sends back as `***` is restored here before
//! the call runs.

use crate::conversation::{MAX_ROUNDS, Plan, Planner, Planning, Step};
use async_trait::async_trait;
use devgem_domain::{ChatRole, ChatTurn};
use devgem_llm::{
    Conversation, FallbackChain, FunctionCall, FunctionResult, ModelTurn, REDACTED,
    ToolDeclaration, Turn, restore_env_values,
};
use devgem_tools::{Context, ToolCall, Understanding};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// How many stored turns of the session the model is shown (the newest).
const HISTORY_TURNS: usize = 20;

/// The planner on a chain of models.
pub struct ModelPlanner {
    chain: FallbackChain,
    tools: Vec<ToolDeclaration>,
}

impl ModelPlanner {
    pub fn new(chain: FallbackChain) -> Self {
        Self {
            chain,
            tools: devgem_tools::declarations(),
        }
    }

    /// The chain's tiers, first choice first (for the start-up log).
    pub fn tiers(&self) -> Vec<String> {
        self.chain.tiers()
    }
}

impl Planner for ModelPlanner {
    fn begin(&self, message: &str, history: &[ChatTurn]) -> Box<dyn Planning> {
        let mut conversation = Conversation::new(String::new());
        let skip = history.len().saturating_sub(HISTORY_TURNS);
        for turn in &history[skip..] {
            conversation.turns.push(match turn.role {
                ChatRole::User => Turn::User(turn.text.clone()),
                ChatRole::Assistant => Turn::Model {
                    text: Some(turn.text.clone()),
                    calls: Vec::new(),
                },
            });
        }
        conversation.turns.push(Turn::User(message.to_string()));
        Box::new(ModelPlanning {
            chain: self.chain.clone(),
            tools: self.tools.clone(),
            conversation,
            message: message.to_string(),
            said: None,
            pending: Vec::new(),
            answered: 0,
        })
    }
}

/// Why a call the model asked for was not handed to the executor.
enum Pending {
    /// It runs: the next unanswered step of `done` is its result.
    Runs,
    /// It was refused here; this is its result.
    Refused(Value),
}

struct ModelPlanning {
    chain: FallbackChain,
    tools: Vec<ToolDeclaration>,
    /// The whole conversation with real values; the adapters redact it on every request.
    conversation: Conversation,
    message: String,
    /// The environment values the offline engine reads in the message, by name (read once,
    /// with the session's context).
    said: Option<BTreeMap<String, String>>,
    /// The last model turn's calls, in order, waiting for their results.
    pending: Vec<(FunctionCall, Pending)>,
    /// How many steps of `done` have been given to the model.
    answered: usize,
}

#[async_trait]
impl Planning for ModelPlanning {
    async fn next(&mut self, context: &Context, done: &[Step]) -> Plan {
        let said = self
            .said
            .get_or_insert_with(|| values_said(&self.message, context))
            .clone();
        if self.conversation.secrets.is_empty() {
            self.conversation.secrets = said.values().cloned().collect();
        }
        self.answer_pending(done);
        self.conversation.context = context.clone();
        self.conversation.system = system_prompt(context);
        let mut thoughts = Vec::new();
        // A turn whose every call is refused goes straight back to the model, within the bound.
        for _ in 0..MAX_ROUNDS {
            let answer = match self.chain.answer(&self.conversation, &self.tools).await {
                Ok(answer) => answer,
                Err(error) => {
                    return Plan {
                        understanding: Understanding::Reply(format!(
                            "No language model answered ({error})."
                        )),
                        model: None,
                        thoughts,
                    };
                }
            };
            for failure in &answer.failures {
                thoughts.push(format!(
                    "{} did not answer: {}",
                    failure.provider, failure.message
                ));
            }
            let model = Some(answer.model.clone());
            let after_results = matches!(self.conversation.turns.last(), Some(Turn::Results(_)));
            match answer.turn {
                ModelTurn::Text(text) => {
                    self.conversation.push_model(&ModelTurn::Text(text.clone()));
                    // The offline engine has nothing to add to the tools' own sentences.
                    let text = if after_results && answer.model == "offline" {
                        String::new()
                    } else {
                        text
                    };
                    return Plan {
                        understanding: Understanding::Reply(text),
                        model,
                        thoughts,
                    };
                }
                ModelTurn::Calls { calls, text } => {
                    let mut runs = Vec::new();
                    let mut made = Vec::new();
                    for mut call in calls {
                        restore_env_values(&mut call, &self.conversation);
                        let pending = match tool_call(&mut call, &said) {
                            Ok(tool_call) => {
                                runs.push(tool_call);
                                Pending::Runs
                            }
                            Err(refusal) => Pending::Refused(refusal),
                        };
                        made.push((call, pending));
                    }
                    thoughts.push(format!(
                        "{} asked for {}",
                        answer.model,
                        made.iter()
                            .map(|(c, _)| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    self.conversation.turns.push(Turn::Model {
                        text: text.clone(),
                        calls: made.iter().map(|(c, _)| c.clone()).collect(),
                    });
                    self.pending = made;
                    if runs.is_empty() {
                        self.answer_pending(done);
                        continue;
                    }
                    return Plan {
                        understanding: Understanding::Calls {
                            calls: runs,
                            lead_in: text.filter(|t| !t.trim().is_empty()),
                        },
                        model,
                        thoughts,
                    };
                }
            }
        }
        Plan {
            understanding: Understanding::Reply(String::new()),
            model: None,
            thoughts,
        }
    }
}

impl ModelPlanning {
    /// Gives the model the results of its last turn's calls: the new steps of `done` for the
    /// calls that ran, in order, and the refusals for the others.
    fn answer_pending(&mut self, done: &[Step]) {
        if self.pending.is_empty() {
            return;
        }
        let mut fresh = done.get(self.answered..).unwrap_or_default().iter();
        let results =
            self.pending
                .drain(..)
                .map(|(call, pending)| {
                    let response = match pending {
                        Pending::Runs => fresh.next().map(step_response).unwrap_or_else(
                            || json!({"ok": false, "error": "the call did not run"}),
                        ),
                        Pending::Refused(refusal) => refusal,
                    };
                    FunctionResult {
                        name: call.name,
                        id: call.id,
                        response,
                        outcome: None,
                    }
                })
                .collect();
        self.conversation.turns.push(Turn::Results(results));
        self.answered = done.len();
    }
}

/// The call as a tool call, or the result that tells the model why not. A `***` value the
/// conversation cannot restore is refused: running it would set the variable to `***`.
fn tool_call(call: &mut FunctionCall, said: &BTreeMap<String, String>) -> Result<ToolCall, Value> {
    if let Some(Value::Object(env)) = call.args.get_mut("env") {
        for (name, value) in env.iter_mut() {
            if value.as_str() == Some(REDACTED) {
                match said.get(name) {
                    Some(real) => *value = Value::from(real.as_str()),
                    None => {
                        return Err(json!({
                            "ok": false,
                            "error": format!("the value of {name} is not known"),
                            "hint": format!("ask the user to give it as {name}=value"),
                        }));
                    }
                }
            }
        }
    }
    ToolCall::from_json(&call.name, &call.args).map_err(|e| {
        json!({"ok": false, "error": e.to_string(),
               "hint": "call the tool again with arguments that match its declaration"})
    })
}

/// What the model reads of a step: the tool's sentence and structured result (the adapters
/// redact `env` objects and known values before sending).
fn step_response(step: &Step) -> Value {
    match &step.result {
        Some(result) => json!({
            "ok": result.ok,
            "text": result.text,
            "deployment_id": result.deployment_id,
            "data": result.data,
            "error": result.error,
        }),
        None => json!({"ok": true, "dry_run": true, "text": "not run: this is a dry run"}),
    }
}

/// The environment values the offline engine reads in `message`, by name.
fn values_said(message: &str, context: &Context) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    if let Understanding::Calls { calls, .. } = devgem_tools::understand(message, context) {
        for call in calls {
            if let ToolCall::DeployRepository { env, .. }
            | ToolCall::SetEnvVars { env, .. }
            | ToolCall::LinkRepository { env, .. } = call
            {
                values.extend(env.into_iter().filter(|(_, v)| !v.is_empty()));
            }
        }
    }
    values
}

fn system_prompt(context: &Context) -> String {
    let current = match &context.current {
        Some(c) => format!(
            "The session's current deployment is {} ({}), status {}.",
            c.id,
            c.service_name.as_deref().unwrap_or("no service name yet"),
            c.status
        ),
        None => "The session has no deployment yet.".to_string(),
    };
    format!(
        "You are DevGem, a deployment assistant. You deploy git repositories and folders on this \
         machine and manage them with the tools you are given: call them to act, then answer in \
         a few plain sentences (the live URL when there is one). A call without deployment_id \
         acts on the session's current deployment. {current} Environment variable values are \
         hidden from you and shown as {REDACTED}: pass {REDACTED} as the value of a variable the \
         user gave and DevGem fills it in. Before a destructive call (abort, stop, rollback, \
         unset) be sure the user asked for it."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_value_is_restored_from_what_the_user_said_or_refused() {
        let said = values_said(
            "deploy github.com/acme/shop with STRIPE_KEY=sk_live_x",
            &Context::empty(),
        );
        assert_eq!(
            said.get("STRIPE_KEY").map(String::as_str),
            Some("sk_live_x")
        );
        let mut call = FunctionCall::new(
            "deploy_repository",
            json!({"source": "github.com/acme/shop", "env": {"STRIPE_KEY": "***"}}),
        );
        let ToolCall::DeployRepository { env, .. } = tool_call(&mut call, &said).unwrap() else {
            panic!("a deploy")
        };
        assert_eq!(env["STRIPE_KEY"], "sk_live_x");
        let mut unknown = FunctionCall::new("set_env_vars", json!({"env": {"OTHER": "***"}}));
        let refusal = tool_call(&mut unknown, &said).unwrap_err();
        assert!(refusal["error"].as_str().unwrap().contains("OTHER"));
    }
}
