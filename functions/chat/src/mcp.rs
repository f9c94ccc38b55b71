//! DevGem as a Model Context Protocol server: the chat's tool registry (the same names, schemas
//! and executor) offered to any MCP client over stdio (`devgem mcp`) or Streamable HTTP
//! (`POST /mcp`), with a deployment's status and logs as resources and two prompts. The
//! protocol itself is the official SDK's (`rmcp`); this module only maps DevGem onto it.

use devgem_app::tools::{ToolContext, ToolResult, run_tool};
use devgem_app::{LocalPaths, Services};
use devgem_domain::{Deployment, DeploymentId, Status};
use devgem_tools::{ArgError, ToolCall, ToolName, declarations};
use futures::StreamExt;
use http_body_util::BodyExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, JsonObject, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, Prompt, PromptArgument, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, Role, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The argument the long tools take on top of the registry's: `false` answers at once with
/// the deployment's id instead of when it is live or failed.
const WAIT: &str = "wait";

const URI_PREFIX: &str = "devgem://deployments/";

/// Who the server acts for and what it may read.
#[derive(Debug, Clone)]
pub struct McpOptions {
    /// The owner of the deployments the tools see and start.
    pub owner: String,
    /// Whether a tool may deploy a folder on this machine's disk.
    pub local_paths: LocalPaths,
    /// Where GitHub sends the server its pushes, which a new link's result names.
    pub webhook_url: Option<String>,
}

/// One MCP server: a client's session over stdio, or one HTTP request.
#[derive(Clone)]
pub struct McpServer {
    services: Services,
    options: McpOptions,
    /// The deployment this session last worked on: a tool called without `deployment_id`
    /// acts on it, as in the chat.
    current: Arc<Mutex<Option<DeploymentId>>>,
}

impl McpServer {
    pub fn new(services: Services, options: McpOptions) -> Self {
        Self {
            services,
            options,
            current: Arc::default(),
        }
    }

    /// Serves one client on this process's stdin and stdout until it closes stdin.
    pub async fn serve_stdio(self) -> Result<(), std::io::Error> {
        let running = self
            .serve(rmcp::transport::stdio())
            .await
            .map_err(std::io::Error::other)?;
        running.waiting().await.map_err(std::io::Error::other)?;
        Ok(())
    }

    fn current(&self) -> Option<DeploymentId> {
        self.current.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn set_current(&self, id: &DeploymentId) {
        if let Ok(mut current) = self.current.lock() {
            *current = Some(id.clone());
        }
    }

    async fn owned(&self, id: &DeploymentId) -> Result<Deployment, ErrorData> {
        match self.services.core.store.get(id).await {
            Ok(Some(d)) if d.owner == self.options.owner => Ok(d),
            Ok(_) => Err(ErrorData::resource_not_found(
                format!("deployment {id} does not exist"),
                Some(json!({"uri": format!("{URI_PREFIX}{id}")})),
            )),
            Err(e) => Err(ErrorData::internal_error(e.to_string(), None)),
        }
    }

    /// Follows deployment `id` until it is live or failed, telling the client each time the
    /// bar moves (when it asked with a progress token), then answers with the deployment.
    async fn wait_until_done(
        &self,
        id: &DeploymentId,
        started: ToolResult,
        progress: Option<(ProgressToken, Peer<RoleServer>)>,
    ) -> CallToolResult {
        let mut events = match devgem_app::follow(&self.services.core, id, 0).await {
            Ok(events) => events,
            Err(e) => {
                return error_result(
                    "not_found",
                    format!("cannot follow deployment {id}: {e}"),
                    None,
                );
            }
        };
        // MCP wants `progress` to grow with every notification: only a higher percent is sent.
        let mut shown: Option<u8> = None;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    return error_result(
                        "unavailable",
                        format!("lost deployment {id}'s progress: {e}"),
                        None,
                    );
                }
            };
            let Some((token, peer)) = &progress else {
                continue;
            };
            if shown.is_some_and(|p| event.percent <= p) {
                continue;
            }
            shown = Some(event.percent);
            let note = ProgressNotificationParam::new(token.clone(), f64::from(event.percent))
                .with_total(100.0)
                .with_message(event.message.clone());
            if let Err(e) = peer.notify_progress(note).await {
                tracing::debug!(error = %e, "progress notification not delivered");
            }
        }
        let d = match self.owned(id).await {
            Ok(d) => d,
            Err(e) => return error_result("not_found", e.message.to_string(), None),
        };
        let text = match (d.status, &d.url, &d.error) {
            (Status::Live, Some(url), _) => format!("deployment {id} is live at {url}"),
            (_, _, Some(failure)) => {
                let hint = failure
                    .hint
                    .as_deref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                format!("deployment {id} is {}: {}{hint}", d.status, failure.reason)
            }
            _ => format!("deployment {id} is {} ({})", d.status, started.text),
        };
        let mut result = if d.status == Status::Live {
            CallToolResult::success(vec![ContentBlock::text(text)])
        } else {
            CallToolResult::error(vec![ContentBlock::text(text)])
        };
        result.structured_content = serde_json::to_value(&d).ok();
        result
    }
}

/// The tools that start a deployment and, unless called with `"wait": false`, answer when it
/// is live or failed.
fn waits(tool: ToolName) -> bool {
    matches!(
        tool,
        ToolName::DeployRepository | ToolName::Redeploy | ToolName::Rollback | ToolName::ApplyFix
    )
}

/// The registry's declarations as MCP tools: the same names, descriptions and schemas (plus
/// `wait` on the long tools), with the registry's annotations.
pub fn tools() -> Vec<Tool> {
    declarations()
        .into_iter()
        .map(|d| {
            let mut schema: JsonObject = match d.parameters {
                Value::Object(o) => o,
                _ => JsonObject::new(),
            };
            if waits(d.name)
                && let Some(Value::Object(properties)) = schema.get_mut("properties")
            {
                properties.insert(
                    WAIT.to_string(),
                    json!({
                        "type": "boolean",
                        "description": "Answer when the deployment is live or failed (true, \
                                        the default) or at once with its id (false).",
                    }),
                );
            }
            let a = d.annotations;
            // Deploying and analyzing fetch whatever repository they are given.
            let open_world = matches!(
                d.name,
                ToolName::DeployRepository | ToolName::AnalyzeRepository
            );
            Tool::new(d.name.as_str(), d.description, Arc::new(schema)).with_annotations(
                ToolAnnotations::new()
                    .read_only(a.read_only)
                    .destructive(a.destructive)
                    .idempotent(a.idempotent)
                    .open_world(open_world),
            )
        })
        .collect()
}

/// A failed call as the client's model reads it: the message, and how to go on.
fn error_result(code: &str, message: String, hint: Option<String>) -> CallToolResult {
    let text = match &hint {
        Some(hint) => format!("{message} ({hint})"),
        None => message.clone(),
    };
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content =
        Some(json!({"error": {"code": code, "message": message, "hint": hint}}));
    result
}

/// A bad or missing argument: a tool error whose message names it (MCP 2025-11-25 reports
/// input-validation failures as tool errors, so the model can correct the call).
fn argument_error(e: &ArgError) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(e.to_string())]);
    result.structured_content = Some(json!({
        "error": {"code": "invalid_argument", "message": e.to_string(), "argument": e.argument()},
    }));
    result
}

/// The executor's answer as a tool result: its short text, and its data as structured content.
fn tool_result(result: ToolResult) -> CallToolResult {
    if let Some(error) = &result.error {
        return error_result(
            error.code.as_str(),
            error.message.to_string(),
            error.hint.clone(),
        );
    }
    let text = vec![ContentBlock::text(result.text)];
    let mut out = if result.ok {
        CallToolResult::success(text)
    } else {
        CallToolResult::error(text)
    };
    // MCP's structured content is an object.
    out.structured_content = match result.data {
        Value::Null => None,
        Value::Object(o) => Some(Value::Object(o)),
        other => Some(json!({ "value": other })),
    };
    out
}

/// The deployment a resource URI names, and whether it names its logs.
fn parse_uri(uri: &str) -> Option<(DeploymentId, bool)> {
    let rest = uri.strip_prefix(URI_PREFIX)?;
    let (id, logs) = match rest.strip_suffix("/logs") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    DeploymentId::parse(id).ok().map(|id| (id, logs))
}

const PROMPT_DEPLOY: &str = "deploy_this_repository";
const PROMPT_WHY_FAILED: &str = "why_did_my_deployment_fail";

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(
            Implementation::new("devgem", env!("CARGO_PKG_VERSION")).with_title("DevGem"),
        )
        .with_instructions(
            "DevGem deploys git repositories (or local folders) and answers at a URL. \
             deploy_repository deploys and returns when the app is live or failed; \
             diagnose_failure explains a failure and apply_fix repairs it. A deployment's \
             status and logs are the resources devgem://deployments/{id} and \
             devgem://deployments/{id}/logs.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        let Some(tool) = ToolName::parse(name) else {
            let known: Vec<&str> = ToolName::ALL.iter().map(|t| t.as_str()).collect();
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool `{}`",
                    name.chars().take(80).collect::<String>()
                ),
                Some(json!({ "tools": known })),
            ));
        };
        let mut arguments = request.arguments.unwrap_or_default();
        let wait = match waits(tool).then(|| arguments.remove(WAIT)).flatten() {
            None | Some(Value::Null) => true,
            Some(Value::Bool(wait)) => wait,
            Some(_) => {
                return Ok(argument_error(&ArgError::Invalid {
                    tool,
                    argument: WAIT.to_string(),
                    problem: "must be true or false".to_string(),
                })
                .into());
            }
        };
        let call = match ToolCall::from_json(name, &Value::Object(arguments)) {
            Ok(call) => call,
            Err(e) => return Ok(argument_error(&e).into()),
        };
        let ctx = ToolContext {
            owner: self.options.owner.clone(),
            current: self.current(),
            local_paths: self.options.local_paths,
            webhook_url: self.options.webhook_url.clone(),
        };
        let result = run_tool(&self.services, &ctx, &call).await;
        if let Some(id) = &result.deployment_id {
            self.set_current(id);
        }
        match result.deployment_id.clone() {
            Some(id) if wait && waits(tool) && result.ok && result.error.is_none() => {
                let progress = context
                    .meta
                    .get_progress_token()
                    .map(|token| (token, context.peer.clone()));
                Ok(self.wait_until_done(&id, result, progress).await.into())
            }
            _ => Ok(tool_result(result).into()),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let list = self
            .services
            .core
            .store
            .list(&devgem_ports::ListFilter {
                owner: Some(self.options.owner.clone()),
                limit: 100,
            })
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let resources = list
            .iter()
            .flat_map(|d| {
                [
                    Resource::new(format!("{URI_PREFIX}{}", d.id), format!("{}", d.id))
                        .with_title(format!("{} ({})", d.service_name, d.status))
                        .with_mime_type("application/json"),
                    Resource::new(
                        format!("{URI_PREFIX}{}/logs", d.id),
                        format!("{} logs", d.id),
                    )
                    .with_title(format!("{} build and runtime logs", d.service_name))
                    .with_mime_type("text/plain"),
                ]
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{URI_PREFIX}{{id}}"), "deployment")
                .with_title("A deployment's status")
                .with_description(
                    "The deployment as the REST API shows it: status, URL, error, revision.",
                )
                .with_mime_type("application/json"),
            ResourceTemplate::new(format!("{URI_PREFIX}{{id}}/logs"), "deployment-logs")
                .with_title("A deployment's logs")
                .with_description("The build log, then the app's latest runtime log lines.")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let Some((id, logs)) = parse_uri(&uri) else {
            return Err(ErrorData::resource_not_found(
                format!("no resource {uri}: DevGem serves {URI_PREFIX}{{id}} and its /logs"),
                Some(json!({ "uri": uri })),
            ));
        };
        let d = self.owned(&id).await?;
        let contents = if logs {
            let build = devgem_app::release::build_log(&self.services, &d.id)
                .await
                .unwrap_or_default();
            let app = self
                .services
                .runtime
                .logs(&d.id, d.region.as_ref(), &Default::default())
                .await
                .map(|p| p.text())
                .unwrap_or_default();
            ResourceContents::text(format!("== build ==\n{build}\n== app ==\n{app}"), uri)
                .with_mime_type("text/plain")
        } else {
            let body = serde_json::to_string(&d)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            ResourceContents::text(body, uri).with_mime_type("application/json")
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(vec![
            Prompt::new(
                PROMPT_DEPLOY,
                Some("Deploy this repository and report its URL."),
                Some(vec![
                    PromptArgument::new("source")
                        .with_description("The repository URL, owner/repo, or a local folder.")
                        .with_required(true),
                    PromptArgument::new("branch")
                        .with_description("The branch to deploy; the default branch when absent.")
                        .with_required(false),
                ]),
            )
            .with_title("Deploy this repository"),
            Prompt::new(
                PROMPT_WHY_FAILED,
                Some("Explain why a deployment failed and offer the fix."),
                Some(vec![
                    PromptArgument::new("deployment_id")
                        .with_description("The deployment (d-...); the latest one when absent.")
                        .with_required(false),
                ]),
            )
            .with_title("Why did my deployment fail?"),
        ]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let arguments = request.arguments.unwrap_or_default();
        let argument = |name: &str| {
            arguments
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let text = match request.name.as_str() {
            PROMPT_DEPLOY => {
                let Some(source) = argument("source") else {
                    return Err(ErrorData::invalid_params(
                        format!("{PROMPT_DEPLOY}: the argument `source` is required"),
                        Some(json!({ "argument": "source" })),
                    ));
                };
                let branch = argument("branch")
                    .map(|b| format!(" (branch {b})"))
                    .unwrap_or_default();
                format!(
                    "Deploy {source}{branch} with DevGem: call deploy_repository with source \
                     {source:?}. When it is live, tell me its URL; if it fails, call \
                     diagnose_failure on it and tell me the cause and the fix."
                )
            }
            PROMPT_WHY_FAILED => {
                let which = match argument("deployment_id") {
                    Some(id) => format!("deployment {id}"),
                    None => "my latest failed deployment (list_deployments finds it)".into(),
                };
                format!(
                    "Why did {which} fail? Call diagnose_failure on it, read its logs if that \
                     helps, then tell me the root cause, the log lines that show it, and the \
                     fix; offer to apply it with apply_fix."
                )
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "unknown prompt `{}`",
                        other.chars().take(80).collect::<String>()
                    ),
                    Some(json!({ "prompts": [PROMPT_DEPLOY, PROMPT_WHY_FAILED] })),
                ));
            }
        };
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).into())
    }
}

/// Serves one `/mcp` request (Streamable HTTP, statelessly: each request gets a fresh server,
/// so any instance answers any request) for an authenticated `owner`.
pub async fn handle_http(
    services: Services,
    options: McpOptions,
    protected: bool,
    req: devgem_http::Request,
) -> devgem_http::Response {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    // The Host check guards an unauthenticated local server against DNS rebinding; behind
    // the API token (Cloud Run, any host name) the token is the guard.
    if protected {
        config = config.disable_allowed_hosts();
    }
    // The body is read and checked here, with the API's limit and error shape, before the SDK
    // sees it: its own answers to a bad body are plain text (and its limit 4 MiB).
    let (parts, body) = req.into_parts();
    let body = if parts.method == http::Method::POST {
        match checked_json_body(&parts.headers, devgem_http::Request::new(body)).await {
            Ok(bytes) => bytes,
            Err(refused) => return refused,
        }
    } else {
        bytes::Bytes::new()
    };
    let req = http::Request::from_parts(parts, http_body_util::Full::new(body));
    let server = McpServer::new(services, options);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    service.handle(req).await.map(|body| body.boxed_unsync())
}

/// The body of a `POST /mcp`: JSON, as its `Content-Type` says, of at most
/// `MAX_JSON_BODY` bytes, or the 4xx that says which of these it is not.
async fn checked_json_body(
    headers: &http::HeaderMap,
    body: devgem_http::Request,
) -> Result<bytes::Bytes, devgem_http::Response> {
    let is_json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split_once(';').map_or(v, |(essence, _)| essence);
            essence.trim().eq_ignore_ascii_case("application/json")
        });
    if !is_json {
        return Err(devgem_http::error(
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "an MCP request is a JSON-RPC message",
            Some("send Content-Type: application/json".into()),
        ));
    }
    let bytes = devgem_http::read_body(body, crate::MAX_JSON_BODY).await?;
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        return Err(devgem_http::error(
            http::StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
            Some("send one JSON-RPC message (or a batch) as the body".into()),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registry_tool_is_offered_with_its_annotations() {
        let tools = tools();
        assert_eq!(tools.len(), ToolName::ALL.len());
        for (tool, name) in tools.iter().zip(ToolName::ALL) {
            assert_eq!(tool.name, name.as_str());
            let a = tool.annotations.as_ref().expect("annotations");
            assert_eq!(a.read_only_hint, Some(name.annotations().read_only));
            assert_eq!(a.destructive_hint, Some(name.annotations().destructive));
            assert_eq!(a.idempotent_hint, Some(name.annotations().idempotent));
            let has_wait = tool.input_schema["properties"].get(WAIT).is_some();
            assert_eq!(has_wait, waits(name), "{name}");
        }
    }

    #[test]
    fn resource_uris_name_a_deployment_and_maybe_its_logs() {
        let id = "d-0193abc";
        let (parsed, logs) = parse_uri(&format!("{URI_PREFIX}{id}")).expect("status uri");
        assert_eq!((parsed.as_str(), logs), (id, false));
        let (parsed, logs) = parse_uri(&format!("{URI_PREFIX}{id}/logs")).expect("logs uri");
        assert_eq!((parsed.as_str(), logs), (id, true));
        assert!(parse_uri("devgem://elsewhere/d-1").is_none());
        assert!(parse_uri(&format!("{URI_PREFIX}NOT AN ID")).is_none());
    }
}
