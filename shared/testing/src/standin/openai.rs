//! An OpenAI-compatible `POST .../chat/completions` with tools (as Ollama, vLLM and llama.cpp's
//! server answer it): checks the request against the documented shape (platform-contracts §8.7)
//! and answers from a script.

use super::gemini::Script;
use super::{Api, Request, Response};
use serde_json::{Value, json};

/// The OpenAI-compatible stand-in. With a key set, a request must carry
/// `Authorization: Bearer KEY`.
#[derive(Default)]
pub struct OpenAi {
    api_key: Option<String>,
    /// Answers by path fragment; scripted per model with [`OpenAi::push_for_model`].
    pub script: Script,
    by_model: Script,
}

impl OpenAi {
    pub fn new(api_key: Option<&str>) -> Self {
        Self {
            api_key: api_key.map(str::to_string),
            ..Self::default()
        }
    }

    /// Answers for requests naming `model` in their body.
    pub fn push_for_model(&self, model: &str, answers: Vec<Response>) {
        self.by_model.push(&format!("model={model};"), answers);
    }
}

impl Api for OpenAi {
    fn handle(&self, request: &Request) -> Option<Response> {
        if request.method != "POST" || !request.path.ends_with("/chat/completions") {
            return None;
        }
        if let Some(key) = &self.api_key
            && request.header("authorization") != Some(format!("Bearer {key}").as_str())
        {
            return Some(error(
                401,
                "invalid_request_error",
                "Incorrect API key provided.",
            ));
        }
        let body = request.json();
        if let Err(problem) = check(&body) {
            return Some(error(400, "invalid_request_error", &problem));
        }
        let model = body["model"].as_str().unwrap_or_default();
        self.by_model
            .next(&format!("model={model};"))
            .or_else(|| self.script.next(&request.path))
            .or_else(|| Some(text_response("OK.")))
    }
}

fn check(body: &Value) -> Result<(), String> {
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("`model` is required".into());
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("`messages` must be a non-empty list")?;
    let mut open_ids: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m.get("role").and_then(Value::as_str) {
            Some("system" | "user") => {
                if !m.get("content").is_some_and(Value::is_string) {
                    return Err(format!("messages[{i}].content must be a string"));
                }
            }
            Some("assistant") => {
                open_ids.clear();
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let id = call
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or(format!("messages[{i}].tool_calls[].id is required"))?;
                    if call.get("type").and_then(Value::as_str) != Some("function") {
                        return Err(format!(
                            "messages[{i}].tool_calls[].type must be \"function\""
                        ));
                    }
                    if !call
                        .pointer("/function/arguments")
                        .is_some_and(Value::is_string)
                    {
                        return Err(format!(
                            "messages[{i}].tool_calls[].function.arguments must be a JSON string"
                        ));
                    }
                    open_ids.push(id.to_string());
                }
            }
            Some("tool") => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !open_ids.iter().any(|o| o == id) {
                    return Err(format!(
                        "messages[{i}]: tool_call_id {id:?} answers no preceding tool call"
                    ));
                }
                if !m.get("content").is_some_and(Value::is_string) {
                    return Err(format!(
                        "messages[{i}].content of a tool message must be a string"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "messages[{i}].role {other:?} is not system, user, assistant or tool"
                ));
            }
        }
    }
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if tool.get("type").and_then(Value::as_str) != Some("function")
            || !tool.pointer("/function/name").is_some_and(Value::is_string)
            || !tool
                .pointer("/function/parameters")
                .is_some_and(Value::is_object)
        {
            return Err("tools[] must be {type: function, function: {name, parameters}}".into());
        }
    }
    Ok(())
}

/// OpenAI's error body: `{"error": {"message", "type", "code"}}`.
pub fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

/// A chat completion answering in text.
pub fn text_response(content: &str) -> Response {
    completion(json!({"role": "assistant", "content": content}), "stop")
}

/// A chat completion calling tools `(id, name, args)`; the arguments go out as a JSON string,
/// as documented.
pub fn tool_calls_response(calls: &[(&str, &str, Value)]) -> Response {
    let tool_calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (id, name, args))| {
            json!({"id": id, "index": i, "type": "function",
                   "function": {"name": name, "arguments": args.to_string()}})
        })
        .collect();
    completion(
        json!({"role": "assistant", "content": "", "tool_calls": tool_calls}),
        "tool_calls",
    )
}

fn completion(message: Value, finish_reason: &str) -> Response {
    Response::json(
        200,
        json!({"id": "chatcmpl-838", "object": "chat.completion", "created": 1744438886,
               "model": "qwen2.5:7b-instruct", "system_fingerprint": "fp_ollama",
               "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
               "usage": {"prompt_tokens": 120, "completion_tokens": 18, "total_tokens": 138}}),
    )
}
