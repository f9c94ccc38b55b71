//! Any OpenAI-compatible server with tool calling (Ollama, vLLM, llama.cpp's server, OpenAI):
//! `POST {base}/chat/completions` with `tools`, results sent back as `role: tool` messages.

use crate::LanguageModel;
use crate::config::ApiKey;
use crate::conversation::{Conversation, FunctionCall, ModelTurn, Turn};
use crate::error::{ErrorKind, ModelError};
use crate::http::{RetryPolicy, post_json};
use crate::redact::redact;
use devgem_tools::ToolDeclaration;
use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};

/// Ollama's OpenAI-compatible base URL, the default.
pub const OLLAMA_BASE_URL: &str = "http://localhost:11434/v1";

#[derive(Debug, Clone)]
pub struct OpenAiCompatible {
    client: reqwest::Client,
    base_url: String,
    model: String,
    key: Option<ApiKey>,
    policy: RetryPolicy,
}

impl OpenAiCompatible {
    pub fn new(base_url: &str, model: &str, key: Option<ApiKey>, policy: RetryPolicy) -> Self {
        Self {
            client: reqwest::Client::new(),
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            key,
            policy,
        }
    }
}

#[async_trait::async_trait]
impl LanguageModel for OpenAiCompatible {
    async fn next(
        &self,
        conversation: &Conversation,
        tools: &[ToolDeclaration],
    ) -> Result<ModelTurn, ModelError> {
        let name = self.name();
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.key {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    ModelError::new(
                        &name,
                        ErrorKind::Config,
                        "OPENAI_API_KEY holds characters a header cannot carry",
                    )
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let url = format!("{}/chat/completions", self.base_url);
        let body = request_body(&self.model, &redact(conversation), tools);
        let answer = post_json(&self.client, &self.policy, &name, &url, headers, &body).await?;
        parse_response(&name, &answer)
    }

    fn name(&self) -> String {
        format!("OpenAI-compatible {} at {}", self.model, self.base_url)
    }
}

/// The chat completions body (platform-contracts §8.7). A call without an id (one the offline
/// engine or Gemini made) gets one from its position, so its result can name it.
pub(crate) fn request_body(
    model: &str,
    conversation: &Conversation,
    tools: &[ToolDeclaration],
) -> Value {
    let mut messages = Vec::new();
    if !conversation.system.is_empty() {
        messages.push(json!({"role": "system", "content": conversation.system}));
    }
    let mut last_ids: Vec<String> = Vec::new();
    for (t, turn) in conversation.turns.iter().enumerate() {
        match turn {
            Turn::User(text) => messages.push(json!({"role": "user", "content": text})),
            Turn::Model { text, calls } => {
                last_ids = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| c.id.clone().unwrap_or_else(|| format!("call_{t}_{i}")))
                    .collect();
                let mut message =
                    json!({"role": "assistant", "content": text.clone().unwrap_or_default()});
                if !calls.is_empty() {
                    message["tool_calls"] = calls
                        .iter()
                        .zip(&last_ids)
                        .map(|(c, id)| {
                            let arguments = match &c.args {
                                Value::String(raw) => raw.clone(),
                                args => args.to_string(),
                            };
                            json!({"id": id, "type": "function",
                                   "function": {"name": c.name, "arguments": arguments}})
                        })
                        .collect();
                }
                messages.push(message);
            }
            Turn::Results(results) => {
                for (i, r) in results.iter().enumerate() {
                    let id =
                        r.id.clone()
                            .or_else(|| last_ids.get(i).cloned())
                            .unwrap_or_else(|| format!("call_{t}_{i}"));
                    let content = match &r.response {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    messages.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
                }
            }
        }
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": false,
        "temperature": 0.2,
        "max_tokens": 2048,
    });
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name.as_str(),
                    "description": t.description,
                    "parameters": t.parameters,
                }})
            })
            .collect();
    }
    body
}

/// `choices[0].message`: its `tool_calls` (arguments parsed from their JSON string) or its
/// `content`.
pub(crate) fn parse_response(provider: &str, answer: &Value) -> Result<ModelTurn, ModelError> {
    let message = answer
        .pointer("/choices/0/message")
        .ok_or_else(|| ModelError::malformed(provider, "no `choices[0].message`"))?;
    let text = message
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|t| !t.trim().is_empty());
    let tool_calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if tool_calls.is_empty() {
        return text.map(ModelTurn::Text).ok_or_else(|| {
            ModelError::malformed(provider, "the message has neither content nor tool_calls")
        });
    }
    let mut calls = Vec::new();
    for call in tool_calls {
        let function = call
            .get("function")
            .ok_or_else(|| ModelError::malformed(provider, "a tool call has no `function`"))?;
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ModelError::malformed(provider, "a tool call has no name"))?;
        // A string of JSON in this shape; some servers send an object. Invalid JSON is kept as
        // the raw string so the tool answers with an argument error the model can correct.
        let args = match function.get("arguments") {
            Some(Value::String(raw)) if raw.trim().is_empty() => json!({}),
            Some(Value::String(raw)) => {
                serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()))
            }
            Some(object @ Value::Object(_)) => object.clone(),
            None | Some(Value::Null) => json!({}),
            Some(other) => other.clone(),
        };
        calls.push(FunctionCall {
            name: name.to_string(),
            args,
            id: call.get("id").and_then(Value::as_str).map(str::to_string),
            thought_signature: None,
        });
    }
    Ok(ModelTurn::Calls { calls, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_that_are_not_json_reach_the_tool_as_a_string() {
        let answer = json!({"choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "get_logs", "arguments": "{deployment_id: d1"}}]}}]});
        let turn = parse_response("o", &answer).unwrap();
        assert_eq!(turn.calls()[0].args, json!("{deployment_id: d1"));
        assert_eq!(turn.calls()[0].id.as_deref(), Some("c1"));
    }
}
