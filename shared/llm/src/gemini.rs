//! Gemini's `generateContent` with function declarations, through the Gemini API (an API key in
//! the `x-goog-api-key` header) or Vertex AI (a bearer token from application default
//! credentials, one regional endpoint per region). Both take the same body.

use crate::LanguageModel;
use crate::config::ApiKey;
use crate::conversation::{Conversation, FunctionCall, ModelTurn, Turn};
use crate::error::{ErrorKind, ModelError};
use crate::http::{RetryPolicy, post_json};
use crate::redact::redact;
use devgem_gcp_run::auth::{self, Credentials};
use devgem_tools::ToolDeclaration;
use http::HeaderMap;
use http::header::HeaderValue;
use serde_json::{Map, Value, json};

/// The Gemini API's default base URL.
pub const GEMINI_API_ENDPOINT: &str = "https://generativelanguage.googleapis.com";

/// The Gemini API (AI Studio): `POST {endpoint}/v1beta/models/{model}:generateContent`.
#[derive(Debug, Clone)]
pub struct GeminiApi {
    client: reqwest::Client,
    endpoint: String,
    model: String,
    key: ApiKey,
    policy: RetryPolicy,
}

impl GeminiApi {
    pub fn new(endpoint: &str, model: &str, key: ApiKey, policy: RetryPolicy) -> Self {
        Self {
            client: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            model: model.to_string(),
            key,
            policy,
        }
    }
}

#[async_trait::async_trait]
impl LanguageModel for GeminiApi {
    async fn next(
        &self,
        conversation: &Conversation,
        tools: &[ToolDeclaration],
    ) -> Result<ModelTurn, ModelError> {
        let name = self.name();
        // The key goes in a header, never the URL: URLs end up in logs and error messages.
        let mut key = HeaderValue::from_str(self.key.expose()).map_err(|_| {
            ModelError::new(
                &name,
                ErrorKind::Config,
                "GEMINI_API_KEY holds characters a header cannot carry",
            )
        })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-goog-api-key", key);
        let url = format!(
            "{}/v1beta/models/{}:generateContent",
            self.endpoint, self.model
        );
        let body = request_body(&redact(conversation), tools);
        let answer = post_json(&self.client, &self.policy, &name, &url, headers, &body).await?;
        parse_response(&name, &answer)
    }

    fn name(&self) -> String {
        format!("Gemini API {}", self.model)
    }
}

/// Vertex AI in one region:
/// `POST https://{region}-aiplatform.googleapis.com/v1/projects/{p}/locations/{region}/publishers/google/models/{model}:generateContent`.
#[derive(Clone)]
pub struct Vertex {
    client: reqwest::Client,
    /// The base URL; `None` means Google's regional (or global) host for the region.
    endpoint: Option<String>,
    project: String,
    region: String,
    model: String,
    credentials: Credentials,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Vertex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vertex")
            .field("endpoint", &self.endpoint)
            .field("project", &self.project)
            .field("region", &self.region)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Vertex {
    pub fn new(
        endpoint: Option<&str>,
        project: &str,
        region: &str,
        model: &str,
        credentials: Credentials,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            client: reqwest::Client::new(),
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
            project: project.to_string(),
            region: region.to_string(),
            model: model.to_string(),
            credentials,
            policy,
        }
    }

    fn url(&self) -> String {
        let base = match (&self.endpoint, self.region.as_str()) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, "global") => "https://aiplatform.googleapis.com".to_string(),
            (None, region) => format!("https://{region}-aiplatform.googleapis.com"),
        };
        format!(
            "{base}/v1/projects/{}/locations/{}/publishers/google/models/{}:generateContent",
            self.project, self.region, self.model
        )
    }
}

#[async_trait::async_trait]
impl LanguageModel for Vertex {
    async fn next(
        &self,
        conversation: &Conversation,
        tools: &[ToolDeclaration],
    ) -> Result<ModelTurn, ModelError> {
        let name = self.name();
        let headers = auth::bearer_headers(&self.credentials)
            .await
            .map_err(|e| ModelError::new(&name, ErrorKind::Config, e.to_string()))?;
        let body = request_body(&redact(conversation), tools);
        let answer = post_json(
            &self.client,
            &self.policy,
            &name,
            &self.url(),
            headers,
            &body,
        )
        .await?;
        parse_response(&name, &answer)
    }

    fn name(&self) -> String {
        format!("Vertex AI {} in {}", self.model, self.region)
    }
}

/// Application default credentials, or `access_token` as a bearer token when given
/// (`GOOGLE_OAUTH_ACCESS_TOKEN`, as the Terraform provider takes it): the same credentials
/// every Google adapter uses.
pub fn vertex_credentials(access_token: Option<&ApiKey>) -> Result<Credentials, String> {
    let token = access_token.map(|t| devgem_ports::SecretValue::new(t.expose()));
    auth::credentials(token.as_ref()).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// The wire shape (platform-contracts §8.2-8.4)

/// The `generateContent` body: the system instruction, the contents (roles always set, as
/// Vertex requires), the declarations as plain JSON Schema (`parametersJsonSchema`, since ours
/// use `additionalProperties`), and a low temperature.
pub(crate) fn request_body(conversation: &Conversation, tools: &[ToolDeclaration]) -> Value {
    let mut contents = Vec::new();
    for turn in &conversation.turns {
        match turn {
            Turn::User(text) => {
                contents.push(json!({"role": "user", "parts": [{"text": text}]}));
            }
            Turn::Model { text, calls } => {
                let mut parts = Vec::new();
                if let Some(text) = text.as_ref().filter(|t| !t.is_empty()) {
                    parts.push(json!({"text": text}));
                }
                for call in calls {
                    let mut function_call = json!({"name": call.name, "args": call.args});
                    if let Some(id) = &call.id {
                        function_call["id"] = Value::from(id.as_str());
                    }
                    let mut part = json!({"functionCall": function_call});
                    if let Some(signature) = &call.thought_signature {
                        part["thoughtSignature"] = Value::from(signature.as_str());
                    }
                    parts.push(part);
                }
                if parts.is_empty() {
                    parts.push(json!({"text": ""}));
                }
                contents.push(json!({"role": "model", "parts": parts}));
            }
            Turn::Results(results) => {
                let parts: Vec<Value> = results
                    .iter()
                    .map(|r| {
                        let response = match &r.response {
                            Value::Object(_) => r.response.clone(),
                            other => json!({"result": other}),
                        };
                        let mut function_response = json!({"name": r.name, "response": response});
                        if let Some(id) = &r.id {
                            function_response["id"] = Value::from(id.as_str());
                        }
                        json!({"functionResponse": function_response})
                    })
                    .collect();
                contents.push(json!({"role": "user", "parts": parts}));
            }
        }
    }
    let mut body = Map::new();
    if !conversation.system.is_empty() {
        body.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": conversation.system}]}),
        );
    }
    body.insert("contents".into(), Value::Array(contents));
    if !tools.is_empty() {
        let declarations: Vec<Value> = tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name.as_str(),
                    "description": t.description,
                    "parametersJsonSchema": t.parameters,
                })
            })
            .collect();
        body.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
        body.insert(
            "toolConfig".into(),
            json!({"functionCallingConfig": {"mode": "AUTO"}}),
        );
    }
    body.insert(
        "generationConfig".into(),
        json!({"temperature": 0.2, "maxOutputTokens": 2048}),
    );
    Value::Object(body)
}

/// The first candidate's text and calls (thought parts left out). No candidates is a blocked
/// prompt; a finish reason other than `STOP` or `MAX_TOKENS` with nothing usable is an error.
pub(crate) fn parse_response(provider: &str, answer: &Value) -> Result<ModelTurn, ModelError> {
    let Some(candidates) = answer.get("candidates") else {
        if let Some(reason) = answer
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
        {
            return Err(ModelError::new(
                provider,
                ErrorKind::Blocked,
                format!("the prompt was blocked ({reason})"),
            ));
        }
        return Err(ModelError::malformed(provider, "no `candidates`"));
    };
    let candidate = candidates
        .as_array()
        .and_then(|c| c.first())
        .ok_or_else(|| ModelError::malformed(provider, "`candidates` is empty or not a list"))?;
    let finish = candidate
        .get("finishReason")
        .and_then(Value::as_str)
        .unwrap_or("STOP");
    let parts = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in parts {
        if let Some(call) = part.get("functionCall") {
            let name = call
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| ModelError::malformed(provider, "a `functionCall` has no name"))?;
            let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
            if !args.is_object() {
                return Err(ModelError::malformed(
                    provider,
                    format!("the args of `{name}` are not an object"),
                ));
            }
            calls.push(FunctionCall {
                name: name.to_string(),
                args,
                id: call.get("id").and_then(Value::as_str).map(str::to_string),
                thought_signature: part
                    .get("thoughtSignature")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        } else if let Some(t) = part.get("text").and_then(Value::as_str)
            && part.get("thought").and_then(Value::as_bool) != Some(true)
        {
            text.push_str(t);
        }
    }
    if !calls.is_empty() {
        return Ok(ModelTurn::Calls {
            calls,
            text: Some(text).filter(|t| !t.trim().is_empty()),
        });
    }
    match finish {
        "STOP" | "MAX_TOKENS" if !text.trim().is_empty() => Ok(ModelTurn::Text(text)),
        "STOP" | "MAX_TOKENS" => Err(ModelError::malformed(
            provider,
            "the candidate has neither text nor a function call",
        )),
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => {
            Err(ModelError::new(
                provider,
                ErrorKind::Blocked,
                format!("it stopped: {finish}"),
            ))
        }
        other => Err(ModelError::new(
            provider,
            ErrorKind::Malformed,
            format!("it stopped with finishReason {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FunctionResult;

    #[test]
    fn a_function_call_round_trip_is_encoded_as_documented() {
        let mut c = Conversation::new("You are DevGem.").user("Deploy octo/app from main");
        c.turns.push(Turn::Model {
            text: None,
            calls: vec![FunctionCall {
                thought_signature: Some("CsYB".into()),
                ..FunctionCall::new("analyze_repository", json!({"source": "octo/app"}))
            }],
        });
        c.turns.push(Turn::Results(vec![FunctionResult {
            name: "analyze_repository".into(),
            id: None,
            response: json!("rust, axum, port 8080"),
            outcome: None,
        }]));
        let body = request_body(&c, &devgem_tools::declarations()[..1]);
        assert_eq!(
            body["systemInstruction"]["parts"][0]["text"],
            "You are DevGem."
        );
        assert_eq!(body["contents"][1]["role"], "model");
        assert_eq!(body["contents"][1]["parts"][0]["thoughtSignature"], "CsYB");
        assert_eq!(
            body["contents"][2]["parts"][0]["functionResponse"]["response"],
            json!({"result": "rust, axum, port 8080"})
        );
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["name"],
            "deploy_repository"
        );
    }

    #[test]
    fn thought_parts_are_not_shown_as_text() {
        let answer = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "thinking...", "thought": true}, {"text": "It is live."}]},
            "finishReason": "STOP"}]});
        assert_eq!(
            parse_response("g", &answer).unwrap(),
            ModelTurn::Text("It is live.".into())
        );
    }

    #[test]
    fn a_blocked_prompt_says_why() {
        let answer = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        let err = parse_response("Gemini API m", &answer).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Blocked);
        assert!(err.to_string().contains("SAFETY"));
    }
}
