//! Gemini `generateContent` (the Gemini API's `/v1beta/models/{m}:generateContent` and Vertex's
//! `/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`): checks the
//! request against the documented shape (platform-contracts §8.2-8.4) and answers from a script.

use super::{Api, Request, Response};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Mutex;

/// Scripted answers for the requests whose path contains a fragment (a model name, a region).
/// Each request takes the next answer; the last one repeats.
#[derive(Default)]
pub struct Script {
    entries: Mutex<Vec<(String, VecDeque<Response>)>>,
}

impl Script {
    pub fn push(&self, path_fragment: &str, answers: Vec<Response>) {
        self.entries
            .lock()
            .unwrap()
            .push((path_fragment.to_string(), answers.into()));
    }

    /// The next answer for `path`, when one is scripted.
    pub fn next(&self, path: &str) -> Option<Response> {
        let mut entries = self.entries.lock().unwrap();
        let (_, answers) = entries
            .iter_mut()
            .find(|(fragment, _)| path.contains(fragment.as_str()))?;
        if answers.len() > 1 {
            answers.pop_front()
        } else {
            answers.front().cloned()
        }
    }
}

/// The Gemini stand-in. With an API key set, a Gemini API request must carry it in
/// `x-goog-api-key` (and not in `?key=`); Vertex requests are checked by the stand-in's token.
#[derive(Default)]
pub struct Gemini {
    api_key: Option<String>,
    pub script: Script,
    /// Thought signatures this stand-in issued, by function name: a replayed call must carry
    /// its signature, as Gemini 3 models require.
    signatures: Mutex<Vec<(String, String)>>,
}

impl Gemini {
    pub fn new(api_key: Option<&str>) -> Self {
        Self {
            api_key: api_key.map(str::to_string),
            ..Self::default()
        }
    }
}

impl Api for Gemini {
    fn handle(&self, request: &Request) -> Option<Response> {
        if request.method != "POST" || !request.path.ends_with(":generateContent") {
            return None;
        }
        let is_vertex = request.path.starts_with("/v1/projects/");
        if !is_vertex && !request.path.starts_with("/v1beta/models/") {
            return None;
        }
        if let (Some(key), false) = (&self.api_key, is_vertex) {
            if request.query.contains_key("key") {
                return Some(Response::google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "the stand-in wants the key in x-goog-api-key, not in the URL",
                ));
            }
            if request.header("x-goog-api-key") != Some(key.as_str()) {
                return Some(Response::google_error(
                    403,
                    "PERMISSION_DENIED",
                    "API key not valid. Please pass a valid API key.",
                ));
            }
        }
        let body = request.json();
        if let Err(problem) = self.check(&body, is_vertex) {
            return Some(Response::google_error(400, "INVALID_ARGUMENT", &problem));
        }
        let answer = self
            .script
            .next(&request.path)
            .unwrap_or_else(|| text_response("OK."));
        // Remember the signatures handed out, to check their replay.
        if let Ok(value) = serde_json::from_slice::<Value>(&answer.body) {
            for part in parts_of(&value) {
                if let (Some(name), Some(sig)) = (
                    part.pointer("/functionCall/name").and_then(Value::as_str),
                    part.get("thoughtSignature").and_then(Value::as_str),
                ) {
                    self.signatures
                        .lock()
                        .unwrap()
                        .push((name.to_string(), sig.to_string()));
                }
            }
        }
        Some(answer)
    }
}

fn parts_of(response: &Value) -> Vec<Value> {
    response
        .pointer("/candidates/0/content/parts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

impl Gemini {
    fn check(&self, body: &Value, is_vertex: bool) -> Result<(), String> {
        if let Some(system) = body.get("systemInstruction") {
            let ok = system
                .get("parts")
                .and_then(Value::as_array)
                .is_some_and(|p| {
                    p.iter()
                        .all(|p| p.get("text").is_some_and(Value::is_string))
                });
            if !ok {
                return Err("systemInstruction.parts[] must hold text parts".into());
            }
        }
        let contents = body
            .get("contents")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or("contents must be a non-empty list")?;
        let mut previous_calls: Vec<String> = Vec::new();
        for (i, content) in contents.iter().enumerate() {
            let role = content.get("role").and_then(Value::as_str);
            match role {
                Some("user" | "model") => {}
                None if !is_vertex => {}
                None => return Err(format!("contents[{i}].role is required on Vertex")),
                Some(other) => {
                    return Err(format!("contents[{i}].role {other:?} is not user or model"));
                }
            }
            let parts = content
                .get("parts")
                .and_then(Value::as_array)
                .filter(|p| !p.is_empty())
                .ok_or(format!("contents[{i}].parts must be a non-empty list"))?;
            let mut calls = Vec::new();
            let mut responses = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let kinds = [
                    "text",
                    "inlineData",
                    "fileData",
                    "functionCall",
                    "functionResponse",
                ]
                .iter()
                .filter(|k| part.get(**k).is_some())
                .count();
                if kinds != 1 {
                    return Err(format!(
                        "contents[{i}].parts[{j}] must hold exactly one of text, functionCall, functionResponse"
                    ));
                }
                if let Some(call) = part.get("functionCall") {
                    if role != Some("model") {
                        return Err(format!(
                            "contents[{i}]: a functionCall belongs to a model turn"
                        ));
                    }
                    let name = call
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or("functionCall.name is required")?;
                    if !call.get("args").is_none_or(Value::is_object) {
                        return Err("functionCall.args must be an object".into());
                    }
                    let issued = self
                        .signatures
                        .lock()
                        .unwrap()
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, s)| s.clone());
                    if let Some(signature) = issued
                        && part.get("thoughtSignature").and_then(Value::as_str)
                            != Some(signature.as_str())
                    {
                        return Err(format!(
                            "Function call `{name}` in contents[{i}] is missing a thought_signature"
                        ));
                    }
                    calls.push(name.to_string());
                }
                if let Some(response) = part.get("functionResponse") {
                    let name = response
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or("functionResponse.name is required")?;
                    if !response.get("response").is_some_and(Value::is_object) {
                        return Err("functionResponse.response must be an object".into());
                    }
                    responses.push(name.to_string());
                }
            }
            if !responses.is_empty() && responses != previous_calls {
                return Err(format!(
                    "contents[{i}]: the function responses {responses:?} do not answer the previous turn's calls {previous_calls:?} in order"
                ));
            }
            previous_calls = calls;
        }
        if let Some(tools) = body.get("tools") {
            let declarations = tools
                .as_array()
                .ok_or("tools must be a list")?
                .iter()
                .flat_map(|t| {
                    t.get("functionDeclarations")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                });
            for d in declarations {
                let name = d.get("name").and_then(Value::as_str).unwrap_or_default();
                let valid_name = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
                if !valid_name {
                    return Err(format!("function declaration name {name:?} is invalid"));
                }
                if !d.get("description").is_some_and(Value::is_string) {
                    return Err(format!("function declaration {name} needs a description"));
                }
                let schemas = ["parameters", "parametersJsonSchema"]
                    .iter()
                    .filter(|k| d.get(**k).is_some())
                    .count();
                if schemas > 1 {
                    return Err(format!(
                        "function declaration {name}: parameters and parametersJsonSchema are exclusive"
                    ));
                }
                if d.get("parameters")
                    .is_some_and(|p| p.to_string().contains("additionalProperties"))
                {
                    return Err(format!(
                        "function declaration {name}: additionalProperties is not supported in parameters; use parametersJsonSchema"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A `generateContent` answer with text, in the documented shape.
pub fn text_response(text: &str) -> Response {
    Response::json(
        200,
        json!({"candidates": [{
            "content": {"role": "model", "parts": [{"text": text}]},
            "finishReason": "STOP", "index": 0}],
         "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 8, "totalTokenCount": 48},
         "modelVersion": "gemini-2.5-flash", "responseId": "standin-text"}),
    )
}

/// A `generateContent` answer calling functions `(name, args)`, each part with a thought
/// signature, in the documented shape (§8.3).
pub fn function_call_response(calls: &[(&str, Value)]) -> Response {
    let parts: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"functionCall": {"name": name, "args": args},
                   "thoughtSignature": format!("CsYBAVSoXO-standin-{i}-{name}")})
        })
        .collect();
    Response::json(
        200,
        json!({"candidates": [{
            "content": {"role": "model", "parts": parts},
            "finishReason": "STOP", "index": 0}],
         "usageMetadata": {"promptTokenCount": 312, "candidatesTokenCount": 21, "thoughtsTokenCount": 140,
                           "totalTokenCount": 473},
         "modelVersion": "gemini-2.5-flash", "responseId": "standin-call"}),
    )
}

/// 429 `RESOURCE_EXHAUSTED` with `Retry-After: {seconds}` and a `RetryInfo` detail.
pub fn rate_limited(seconds: u32) -> Response {
    Response::json(
        429,
        json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "message": "Resource has been exhausted (e.g. check quota).",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{seconds}s")}]}}),
    )
    .with_header("retry-after", &seconds.to_string())
}
