//! Keeps secret values out of prompts: every networked adapter sends `redact(conversation)`,
//! never the conversation itself, so a model sees variable names and never their values.

use crate::conversation::{Conversation, FunctionCall, Turn};
use devgem_tools::ToolCall;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// What a value is replaced by.
pub const REDACTED: &str = "***";

/// Values shorter than this are replaced only where they stand as values (`NAME=1`, an `env`
/// argument), not wherever the characters occur: replacing every `1` would mangle ids.
const SHORTEST_VALUE_REPLACED_ANYWHERE: usize = 4;

/// `NAME=value`, `NAME="a value"` or `NAME='a value'` in what a user typed.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\b([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|[^\s,;]+)"#).expect("a valid regex")
});

/// The conversation with every environment value replaced by `***`: `NAME=value` in user text,
/// `env` in call arguments (through [`ToolCall::to_redacted_json`] when the call parses),
/// `env` objects in results, and any occurrence of those values or of
/// [`Conversation::secrets`] anywhere else (the system prompt, texts, string leaves of results).
pub fn redact(conversation: &Conversation) -> Conversation {
    let mut values: Vec<String> = conversation
        .secrets
        .iter()
        .chain(known_env_values(conversation).values())
        .filter(|v| v.len() >= SHORTEST_VALUE_REPLACED_ANYWHERE && v.as_str() != REDACTED)
        .cloned()
        .collect();
    // Longest first, so a value that contains another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    let scrub = |text: &str| -> String {
        values
            .iter()
            .fold(text.to_string(), |t, v| t.replace(v.as_str(), REDACTED))
    };
    let turns = conversation
        .turns
        .iter()
        .map(|turn| match turn {
            Turn::User(text) => Turn::User(scrub(&redact_assignments(text))),
            Turn::Model { text, calls } => Turn::Model {
                text: text.as_deref().map(scrub),
                calls: calls
                    .iter()
                    .map(|call| FunctionCall {
                        args: scrub_value(&redacted_args(call), &scrub),
                        ..call.clone()
                    })
                    .collect(),
            },
            Turn::Results(results) => Turn::Results(
                results
                    .iter()
                    .map(|r| crate::FunctionResult {
                        response: scrub_value(&redact_env_objects(&r.response), &scrub),
                        ..r.clone()
                    })
                    .collect(),
            ),
        })
        .collect();
    Conversation {
        system: scrub(&conversation.system),
        turns,
        context: conversation.context.clone(),
        secrets: Vec::new(),
    }
}

/// Puts the real values back into a call a model made from a redacted prompt: an `env` entry
/// the model sent as `***` takes the value the user gave that name (the latest `NAME=value` in
/// the conversation, or an earlier call's argument). Entries with no known value stay `***`.
pub fn restore_env_values(call: &mut FunctionCall, conversation: &Conversation) {
    let known = known_env_values(conversation);
    if let Some(Value::Object(env)) = call.args.get_mut("env") {
        for (name, value) in env.iter_mut() {
            if value.as_str() == Some(REDACTED)
                && let Some(real) = known.get(name)
            {
                *value = Value::from(real.as_str());
            }
        }
    }
}

/// Every `NAME -> value` the conversation holds, later ones winning.
fn known_env_values(conversation: &Conversation) -> BTreeMap<String, String> {
    let mut known = BTreeMap::new();
    for turn in &conversation.turns {
        match turn {
            Turn::User(text) => {
                for c in ASSIGNMENT.captures_iter(text) {
                    known.insert(c[1].to_string(), unquote(&c[2]).to_string());
                }
            }
            Turn::Model { calls, .. } => {
                for call in calls {
                    if let Some(Value::Object(env)) = call.args.get("env") {
                        for (name, value) in env {
                            if let Some(v) = value.as_str().filter(|v| *v != REDACTED) {
                                known.insert(name.clone(), v.to_string());
                            }
                        }
                    }
                }
            }
            Turn::Results(_) => {}
        }
    }
    known
}

/// `text` (one message a user typed) with every environment value in it replaced by `***`:
/// `NAME=value` assignments, and the values the offline engine reads from it however they are
/// phrased ("set STRIPE_KEY to sk_live_1"). For what is kept of a message on disk, such as a
/// terminal's line history.
pub fn redact_message(text: &str) -> String {
    let mut values: Vec<String> = Vec::new();
    if let devgem_tools::Understanding::Calls { calls, .. } =
        devgem_tools::understand(text, &devgem_tools::Context::empty())
    {
        for call in &calls {
            if let Some(Value::Object(env)) = call.to_json().get("env") {
                values.extend(env.values().filter_map(|v| v.as_str().map(str::to_string)));
            }
        }
    }
    // Longest first, so a value that contains another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
        .iter()
        .filter(|v| !v.is_empty())
        .fold(redact_assignments(text), |t, v| {
            replace_word(&t, v, REDACTED)
        })
}

/// `text` with each occurrence of `value` that stands as a word of its own (not inside a
/// longer word, so `1` in `DEBUG=1` does not take the `1` out of `v1`) replaced.
fn replace_word(text: &str, value: &str, with: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(value) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + value.len()..].chars().next();
        let alone = !before.is_some_and(is_word) && !after.is_some_and(is_word);
        out.push_str(&rest[..at]);
        out.push_str(if alone { with } else { value });
        rest = &rest[at + value.len()..];
    }
    out.push_str(rest);
    out
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value)
}

fn redact_assignments(text: &str) -> String {
    ASSIGNMENT
        .replace_all(text, |c: &regex::Captures| format!("{}={REDACTED}", &c[1]))
        .into_owned()
}

/// The call's arguments with `env` values replaced: through the tool registry when the call is
/// one of ours, else every string in an `env` object.
fn redacted_args(call: &FunctionCall) -> Value {
    match ToolCall::from_json(&call.name, &call.args) {
        Ok(tool_call) => tool_call.to_redacted_json(),
        Err(_) => redact_env_objects(&call.args),
    }
}

/// Replaces the values of every `env` object, however deep.
fn redact_env_objects(value: &Value) -> Value {
    match value {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("env", Value::Object(env)) => Value::Object(
                            env.keys()
                                .map(|name| (name.clone(), Value::from(REDACTED)))
                                .collect::<Map<_, _>>(),
                        ),
                        _ => redact_env_objects(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_env_objects).collect()),
        other => other.clone(),
    }
}

fn scrub_value(value: &Value, scrub: &impl Fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(scrub(s)),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (scrub(k), scrub_value(v, scrub)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| scrub_value(v, scrub)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FunctionResult;
    use serde_json::json;

    fn conversation() -> Conversation {
        let mut c = Conversation::new("You are DevGem.")
            .user("deploy octo/shop with STRIPE_KEY=sk_live_abc123 and DEBUG=1");
        c.turns.push(Turn::Model {
            text: None,
            calls: vec![FunctionCall::new(
                "deploy_repository",
                json!({"source": "octo/shop", "env": {"STRIPE_KEY": "sk_live_abc123", "DEBUG": "1"}}),
            )],
        });
        c.turns.push(Turn::Results(vec![FunctionResult {
            name: "deploy_repository".into(),
            id: None,
            response: json!({"deployment_id": "d-1", "note": "set STRIPE_KEY to sk_live_abc123"}),
            outcome: None,
        }]));
        c
    }

    #[test]
    fn a_typed_message_keeps_its_names_and_loses_its_values_however_phrased() {
        for (typed, value) in [
            (
                "deploy acme/shop with STRIPE_KEY=sk_live_abc123 as a secret",
                "sk_live_abc123",
            ),
            ("set STRIPE_KEY to sk_live_zz9 as a secret", "sk_live_zz9"),
            ("set LOG_LEVEL=\"very loud\"", "very loud"),
            (
                "change DATABASE_URL to postgres://u:pw@db/app",
                "postgres://u:pw@db/app",
            ),
        ] {
            let kept = redact_message(typed);
            assert!(!kept.contains(value), "{typed:?} kept as {kept:?}");
            assert!(kept.contains(REDACTED), "{kept:?}");
        }
        assert_eq!(
            redact_message("set DEBUG to 1 on v1"),
            "set DEBUG to *** on v1"
        );
        assert_eq!(redact_message("is it up yet?"), "is it up yet?");
    }

    #[test]
    fn values_are_gone_from_every_turn_and_names_stay() {
        let redacted = redact(&conversation());
        let text = format!("{redacted:?}");
        assert!(!text.contains("sk_live_abc123"), "{text}");
        assert!(text.contains("STRIPE_KEY"));
        assert_eq!(
            redacted.turns[0],
            Turn::User("deploy octo/shop with STRIPE_KEY=*** and DEBUG=***".into())
        );
        let Turn::Model { calls, .. } = &redacted.turns[1] else {
            panic!()
        };
        assert_eq!(
            calls[0].args["env"],
            json!({"STRIPE_KEY": "***", "DEBUG": "***"})
        );
        // A short value is not replaced inside other strings.
        let Turn::Results(results) = &redacted.turns[2] else {
            panic!()
        };
        assert_eq!(results[0].response["deployment_id"], "d-1");
    }

    #[test]
    fn a_secret_the_caller_names_is_replaced_in_results() {
        let mut c = Conversation::new("sys").user("show me the logs");
        c.secrets.push("hunter2-password".into());
        c.turns.push(Turn::Results(vec![FunctionResult {
            name: "get_logs".into(),
            id: None,
            response: json!({"lines": ["connecting with hunter2-password"]}),
            outcome: None,
        }]));
        let redacted = redact(&c);
        assert!(!format!("{redacted:?}").contains("hunter2"));
    }

    #[test]
    fn a_redacted_value_a_model_sends_back_is_restored_from_the_users_message() {
        let c = Conversation::new("sys").user("set TOKEN=\"a b c\" please");
        let mut call = FunctionCall::new("set_env_vars", json!({"env": {"TOKEN": "***"}}));
        restore_env_values(&mut call, &c);
        assert_eq!(call.args["env"]["TOKEN"], "a b c");
    }
}
