//! The chat function: DevGem's HTTP API for people and the CLI. It starts deployments, reads
//! them back, aborts and stops them, serves their logs and streams their progress as
//! Server-Sent Events that resume from `Last-Event-ID`. It also serves the chat: `POST /chat`
//! and `WS /ws/chat`, which run the same tools through the shared executor.
//!
//! Every route but `/`, `/health` and the webhook is authenticated ([`auth`]) and answers only
//! for its caller: another user's deployment, session or link is "not found", exactly as a
//! missing one.
//!
//! Every answer is JSON, and every error has the shape of [`devgem_http::error`].

// Handlers return `Result<_, Response>` so `?` answers the client early; the error is the
// response itself, so its size is not worth boxing.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod conversation;
pub mod decode;
pub mod github;
pub mod mcp;
pub mod model_planner;
mod progress_stream;
pub mod signin;
mod ws;

use devgem_app::{AppError, CreateDeployment, LocalPaths, Services, release};
use devgem_domain::DeploymentId;
use devgem_http::{Request, Response, error, json, read_json};
use devgem_ports::ListFilter;
use http::{Method, StatusCode};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The owner of requests when no user token is involved (the local default, the admin).
pub const LOCAL_OWNER: &str = devgem_domain::LOCAL_USER;

pub struct Api {
    services: Services,
    options: ApiOptions,
    planner: std::sync::Arc<dyn conversation::Planner>,
    github: Option<github::Github>,
    signin: Option<signin::SignIn>,
    gate: auth::Gate,
    usage: auth::UsageBook,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatBody {
    message: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// How the API treats its callers.
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    /// The operator's token (`DEVGEM_API_TOKEN`): it acts as the local user, admin. When set,
    /// every request must carry a token (this one or a user's).
    pub token: Option<String>,
    /// Each user's rate (`DEVGEM_RATE_LIMIT_PER_MINUTE`); `None`: unlimited.
    pub rate_limit: Option<devgem_domain::RateLimit>,
    /// Whether a request may name a folder on this server's disk.
    pub local_paths: LocalPaths,
    /// The largest source archive an upload may be.
    pub max_upload_bytes: usize,
    /// How often a live deployment a chat socket follows is probed; `None`: every 30 s.
    pub monitor_every: Option<Duration>,
    /// DevGem's URL as GitHub reaches it (`DEVGEM_PUBLIC_URL`): the base of the webhook URL
    /// a link made in the chat or over MCP tells the user to set.
    pub public_url: Option<String>,
}

/// A JSON body can be small; an upload is the archive's size.
const MAX_JSON_BODY: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// A git URL or path; with an upload, the name of the uploaded folder (optional).
    #[serde(default)]
    source: String,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    subdir: Option<String>,
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// `false` keeps the app private (public is the default, as `gcloud run deploy
    /// --allow-unauthenticated`).
    /// Unset: the account's `default_public` preference, else public.
    #[serde(default)]
    public: Option<bool>,
    /// The Cloud Run region (as `gcloud run deploy --region`). Unset: the account's
    /// `default_region` preference, else the server's `GOOGLE_CLOUD_REGION`.
    #[serde(default)]
    region: Option<String>,
    /// Deploy despite high-severity security findings (recorded on the deployment).
    #[serde(default)]
    allow_findings: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// The revision to send the traffic to; default: the one before the serving one.
    #[serde(default)]
    revision: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainBody {
    domain: String,
}

/// The env view with the revision it describes.
fn env_body(d: &devgem_domain::Deployment, env: Vec<release::EnvEntry>) -> serde_json::Value {
    serde_json::json!({
        "deployment_id": d.id,
        "service": d.service_name,
        "revision": d.revision,
        "url": d.url,
        "env": env,
    })
}

/// A JSON body that may be left out (an empty body is the default).
async fn read_optional_json<T: serde::de::DeserializeOwned + Default>(
    req: Request,
) -> Result<T, Response> {
    let bytes = devgem_http::read_body(req, MAX_JSON_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON for this request: {e}"),
            None,
        )
    })
}

/// `?limit=N&page_token=T` of a logs request.
fn log_query(req: &Request) -> Result<devgem_ports::LogQuery, Response> {
    let mut query = devgem_ports::LogQuery {
        limit: 200,
        page_token: None,
    };
    let pairs: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                query.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=release::MAX_LOG_LINES).contains(n))
                    .ok_or_else(|| {
                        error(
                            StatusCode::BAD_REQUEST,
                            "invalid_limit",
                            format!("limit {value:?} is not a number of lines"),
                            Some(format!("give 1 to {}", release::MAX_LOG_LINES)),
                        )
                    })?
            }
            "page_token" if !value.is_empty() => query.page_token = Some(value),
            _ => {}
        }
    }
    Ok(query)
}

fn app_error(e: AppError) -> Response {
    match e {
        AppError::BadRequest { message, hint } => {
            error(StatusCode::BAD_REQUEST, "bad_request", message, Some(hint))
        }
        AppError::NotFound(id) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("deployment {id} does not exist"),
            Some("list deployments with GET /api/deployments".into()),
        ),
        AppError::LinkNotFound(id) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("link {id} does not exist"),
            Some("list links with GET /api/links".into()),
        ),
        AppError::Conflict(m) => error(StatusCode::CONFLICT, "conflict", m, None),
        AppError::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m, None),
        AppError::Internal(m) => {
            tracing::error!(error = %m, "internal error");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "something went wrong on our side",
                None,
            )
        }
    }
}

/// The boundary of a `multipart/form-data` request, which carries an upload.
fn multipart_boundary(req: &Request) -> Option<String> {
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    multer::parse_boundary(content_type).ok()
}

fn bad_upload(message: impl Into<String>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "bad_upload",
        message,
        Some(
            "send multipart/form-data with a `deployment` part (the JSON fields) and a `source` \
             part (a gzipped tar of the app's folder); `devgem deploy PATH --server URL` does"
                .into(),
        ),
    )
}

/// Reads an upload: the `deployment` part (JSON, as the plain request's body) and the
/// `source` part (the `.tar.gz`), the whole request at most `limit` bytes.
async fn read_upload(
    req: Request,
    boundary: String,
    limit: usize,
) -> Result<(CreateBody, bytes::Bytes), Response> {
    let body = devgem_http::read_body(req, limit).await?;
    parse_upload(body, boundary).await
}

/// The multipart half of [`read_upload`], on the body's bytes.
async fn parse_upload(
    body: bytes::Bytes,
    boundary: String,
) -> Result<(CreateBody, bytes::Bytes), Response> {
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let (mut fields, mut archive) = (None, None);
    loop {
        let part = match parts.next_field().await {
            Ok(Some(part)) => part,
            Ok(None) => break,
            Err(e) => {
                return Err(bad_upload(format!(
                    "the upload is not valid multipart: {e}"
                )));
            }
        };
        let name = part.name().map(str::to_string);
        let bytes = part
            .bytes()
            .await
            .map_err(|e| bad_upload(format!("the upload was cut off: {e}")))?;
        match name.as_deref() {
            Some("deployment") if bytes.len() <= MAX_JSON_BODY => {
                let parsed: CreateBody = serde_json::from_slice(&bytes).map_err(|e| {
                    bad_upload(format!("the `deployment` part is not valid JSON: {e}"))
                })?;
                fields = Some(parsed);
            }
            Some("deployment") => return Err(bad_upload("the `deployment` part is too large")),
            Some("source") => archive = Some(bytes),
            other => {
                return Err(bad_upload(format!(
                    "unexpected part {:?}",
                    other.unwrap_or("(unnamed)")
                )));
            }
        }
    }
    let archive = archive.ok_or_else(|| bad_upload("the upload has no `source` part"))?;
    let fields = fields.unwrap_or(CreateBody {
        source: String::new(),
        branch: None,
        subdir: None,
        service_name: None,
        env: BTreeMap::new(),
        public: None,
        region: None,
        allow_findings: false,
    });
    Ok((fields, archive))
}

fn parse_id(raw: &str) -> Result<DeploymentId, Response> {
    DeploymentId::parse(raw).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            e.to_string(),
            Some("deployment ids look like d-0193...".into()),
        )
    })
}

impl Api {
    pub fn new(services: Services, options: ApiOptions) -> Self {
        Self {
            services,
            options,
            planner: std::sync::Arc::new(conversation::Offline),
            github: None,
            signin: None,
            gate: auth::Gate::default(),
            usage: auth::UsageBook::default(),
        }
    }

    /// The same API with the GitHub webhook and links.
    pub fn with_github(mut self, github: github::Github) -> Self {
        self.github = Some(github);
        self
    }

    /// The same API with sign-in (GitHub, Google) and sessions.
    pub fn with_signin(mut self, signin: signin::SignIn) -> Self {
        self.signin = Some(signin);
        self
    }

    /// The same API with another planner for the chat (a language model).
    pub fn with_planner(mut self, planner: std::sync::Arc<dyn conversation::Planner>) -> Self {
        self.planner = planner;
        self
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Routes one request.
    pub async fn handle(&self, req: Request) -> Response {
        let path = req.uri().path().trim_end_matches('/').to_string();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let method = req.method().clone();
        match (&method, segments.as_slice()) {
            (&Method::GET, []) => json(
                StatusCode::OK,
                &serde_json::json!({
                    "name": "DevGem",
                    "about": "Deploys any Git repository to Cloud Run (or, locally, to this machine).",
                    "endpoints": ["GET /health", "POST /api/deployments", "GET /api/deployments",
                        "GET /api/deployments/{id}", "GET /api/deployments/{id}/logs",
                        "GET /api/deployments/{id}/events", "POST /api/deployments/{id}/abort",
                        "POST /api/deployments/{id}/stop", "GET /api/deployments/{id}/revisions",
                        "POST /api/deployments/{id}/rollback", "GET /api/deployments/{id}/env",
                        "POST /api/deployments/{id}/env", "GET /api/deployments/{id}/domains",
                        "POST /api/deployments/{id}/domains", "POST /api/links", "GET /api/links",
                        "DELETE /api/links/{id}", "POST /chat", "GET /ws/chat", "POST /mcp",
                        "GET /stats", "GET /api/me", "PATCH /api/me", "GET /auth/{provider}/login",
                        "GET /auth/{provider}/callback", "POST /auth/logout"],
                }),
            ),
            (&Method::POST, ["webhooks", "github"]) => match &self.github {
                Some(gh) => {
                    gh.webhook(&self.services, self.options.local_paths, req)
                        .await
                }
                None => error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "GitHub webhooks are not enabled on this server",
                    Some("set GITHUB_WEBHOOK_SECRET".into()),
                ),
            },
            (&Method::GET, ["health"]) => {
                json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
            }
            (_, ["auth", rest @ ..]) => self.auth_route(req, &method, rest).await,
            (_, [first, ..]) if AUTHENTICATED.contains(first) => {
                self.authenticated(req, &method, &segments).await
            }
            _ => error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route for {method} {path}"),
                Some("GET / lists the endpoints".into()),
            ),
        }
    }

    /// A route behind authentication: the caller is identified and rate limited first, then
    /// the route answers for them alone.
    async fn authenticated(&self, req: Request, method: &Method, segments: &[&str]) -> Response {
        let (identity, credential) = match self.credential(&req).await {
            Ok(found) => found,
            Err(res) => return res,
        };
        if credential == auth::Credential::Cookie
            && !auth::cookie_request_allowed(method, req.headers(), self.public_url())
        {
            return auth::foreign_origin();
        }
        let owner = identity.owner().to_string();
        let res = match self.rate_limit(&identity) {
            Ok(()) => self
                .route(req, method, segments, &identity, credential)
                .await
                .unwrap_or_else(|res| res),
            Err(res) => res,
        };
        self.usage.response(&owner, res.status());
        res
    }

    async fn route(
        &self,
        req: Request,
        method: &Method,
        segments: &[&str],
        identity: &devgem_domain::Identity,
        credential: auth::Credential,
    ) -> Result<Response, Response> {
        let owner = identity.owner();
        match (method, segments) {
            (&Method::POST, ["chat"]) => self.chat(req, owner).await,
            (&Method::GET, ["ws", "chat"]) => self.ws_chat(req, owner).await,
            // MCP over Streamable HTTP, behind the same tokens as the API.
            (_, ["mcp"]) => {
                let options = mcp::McpOptions {
                    owner: owner.to_string(),
                    local_paths: self.options.local_paths,
                    webhook_url: self.webhook_url(),
                };
                let protected = credential != auth::Credential::Open;
                Ok(mcp::handle_http(self.services.clone(), options, protected, req).await)
            }
            (&Method::GET, ["stats"]) => self.stats(identity).await,
            (&Method::GET | &Method::PATCH, ["api", "me"]) => self.me(req, method, identity).await,
            (_, ["api", rest @ ..]) => self.api(req, method, rest, owner).await,
            _ => Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route for {method} /{}", segments.join("/")),
                Some("GET / lists the endpoints".into()),
            )),
        }
    }

    async fn api(
        &self,
        req: Request,
        method: &Method,
        rest: &[&str],
        owner: &str,
    ) -> Result<Response, Response> {
        let services = &self.services;
        if let ["links", rest @ ..] = rest {
            let Some(gh) = &self.github else {
                return Err(error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "GitHub links are not enabled on this server",
                    None,
                ));
            };
            return gh.links_api(services, req, method, rest, owner).await;
        }
        match (method, rest) {
            (&Method::POST, ["deployments"]) => {
                let (body, upload) = match multipart_boundary(&req) {
                    Some(boundary) => {
                        let (body, archive) =
                            read_upload(req, boundary, self.options.max_upload_bytes).await?;
                        (body, Some(archive))
                    }
                    None => (read_json(req, MAX_JSON_BODY).await?, None),
                };
                if let Some(archive) = &upload {
                    let limits = devgem_archive::Limits::default();
                    devgem_app::check_upload(archive, &limits).map_err(app_error)?;
                }
                let region = match body.region.as_deref() {
                    Some(raw) => Some(devgem_domain::Region::parse(raw).map_err(|e| {
                        error(
                            StatusCode::BAD_REQUEST,
                            "invalid_region",
                            format!("region: {e}"),
                            Some(
                                "name a Cloud Run region such as us-central1 or \
                                 europe-west1, or leave region out for your default"
                                    .into(),
                            ),
                        )
                    })?),
                    None => None,
                };
                let mut request = CreateDeployment {
                    owner: owner.to_string(),
                    source: body.source,
                    upload,
                    local_paths: self.options.local_paths,
                    branch: body.branch,
                    subdir: body.subdir,
                    service_name: body.service_name,
                    env: body.env,
                    private: false,
                    plan_override: None,
                };
                let mut options = devgem_app::CreateOptions {
                    allow_findings: body.allow_findings,
                    region,
                };
                // What the request leaves open, the owner's preferences decide.
                devgem_app::apply_preferences(services, &mut request, body.public, &mut options)
                    .await
                    .map_err(app_error)?;
                let d = devgem_app::create_deployment_with(services, request, None, options)
                    .await
                    .map_err(app_error)?;
                Ok(json(StatusCode::ACCEPTED, &d))
            }
            (&Method::GET, ["deployments"]) => {
                let list = services
                    .core
                    .store
                    .list(&ListFilter {
                        owner: Some(owner.to_string()),
                        limit: 100,
                    })
                    .await
                    .map_err(|e| app_error(e.into()))?;
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "deployments": list }),
                ))
            }
            (&Method::GET, ["deployments", id]) => {
                let d = self.owned(id, owner).await?;
                Ok(json(StatusCode::OK, &d))
            }
            (&Method::GET, ["deployments", id, "logs"]) => {
                let d = self.owned(id, owner).await?;
                let query = log_query(&req)?;
                let first_page = query.page_token.is_none();
                let page = release::logs(services, &d.id, &query)
                    .await
                    .map_err(app_error)?;
                let mut body = serde_json::json!({
                    "deployment_id": d.id,
                    "lines": page.lines,
                    "next_page_token": page.next_page_token,
                });
                // The whole texts, as before paging existed (`devgem logs` reads them).
                if first_page {
                    body["build"] = release::build_log(services, &d.id)
                        .await
                        .unwrap_or_default()
                        .into();
                    body["app"] = services
                        .runtime
                        .logs(&d.id, d.region.as_ref(), &Default::default())
                        .await
                        .map(|p| p.text())
                        .unwrap_or_default()
                        .into();
                }
                Ok(json(StatusCode::OK, &body))
            }
            (&Method::GET, ["deployments", id, "revisions"]) => {
                let d = self.owned(id, owner).await?;
                let revisions = release::revisions(services, &d.id)
                    .await
                    .map_err(app_error)?;
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "deployment_id": d.id,
                        "service": d.service_name,
                        "revisions": revisions,
                    }),
                ))
            }
            (&Method::POST, ["deployments", id, "rollback"]) => {
                let d = self.owned(id, owner).await?;
                let body: RollbackBody = read_optional_json(req).await?;
                let d = release::rollback(services, &d.id, body.revision.as_deref())
                    .await
                    .map_err(app_error)?;
                Ok(json(StatusCode::OK, &d))
            }
            (&Method::GET, ["deployments", id, "env"]) => {
                let d = self.owned(id, owner).await?;
                let env = release::env_view(services, &d.id)
                    .await
                    .map_err(app_error)?;
                Ok(json(StatusCode::OK, &env_body(&d, env)))
            }
            (&Method::POST, ["deployments", id, "env"]) => {
                let d = self.owned(id, owner).await?;
                let change: release::EnvChange = read_json(req, MAX_JSON_BODY).await?;
                let d = release::change_env(services, &d.id, change)
                    .await
                    .map_err(app_error)?;
                let env = release::env_view(services, &d.id)
                    .await
                    .map_err(app_error)?;
                Ok(json(StatusCode::OK, &env_body(&d, env)))
            }
            (&Method::GET, ["deployments", id, "domains"]) => {
                let d = self.owned(id, owner).await?;
                let domains = release::domains(services, &d.id).await.map_err(app_error)?;
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "deployment_id": d.id, "domains": domains }),
                ))
            }
            (&Method::POST, ["deployments", id, "domains"]) => {
                let d = self.owned(id, owner).await?;
                let body: DomainBody = read_json(req, MAX_JSON_BODY).await?;
                let mapping = release::map_domain(services, &d.id, &body.domain)
                    .await
                    .map_err(app_error)?;
                Ok(json(StatusCode::CREATED, &mapping))
            }
            (&Method::POST, ["deployments", id, "abort"]) => {
                let d = self.owned(id, owner).await?;
                let d = devgem_app::abort_deployment(services, &d.id)
                    .await
                    .map_err(app_error)?;
                Ok(json(StatusCode::ACCEPTED, &d))
            }
            (&Method::POST, ["deployments", id, "stop"]) => {
                let d = self.owned(id, owner).await?;
                let d = devgem_app::stop_deployment(services, &d.id)
                    .await
                    .map_err(app_error)?;
                Ok(json(StatusCode::OK, &d))
            }
            (&Method::GET, ["deployments", id, "events"]) => {
                let d = self.owned(id, owner).await?;
                let after = last_event_id(&req)?;
                // From the first event, so a resumed stream knows whether a bar is moving.
                let stream = devgem_app::follow(&services.core, &d.id, 0)
                    .await
                    .map_err(app_error)?;
                let clock = services.core.clock.clone();
                let events = progress_stream::progress_events(stream, after, move || clock.now());
                Ok(devgem_http::sse(events, Duration::from_secs(15)))
            }
            _ => Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route for {method} /api/{}", rest.join("/")),
                Some("GET / lists the endpoints".into()),
            )),
        }
    }

    fn speaker(&self, owner: &str) -> conversation::Speaker {
        conversation::Speaker {
            owner: owner.to_string(),
            local_paths: self.options.local_paths,
            usage: self.usage.clone(),
            webhook_url: self.webhook_url(),
        }
    }

    /// Where browsers reach DevGem: the sign-in's public URL (`DEVGEM_PUBLIC_URL`, or the
    /// address the server is bound to), else the configured public URL.
    fn public_url(&self) -> Option<&str> {
        self.signin
            .as_ref()
            .map(|s| s.public_url.as_str())
            .or(self.options.public_url.as_deref())
    }

    /// `{public_url}/webhooks/github` when this server takes GitHub's deliveries.
    fn webhook_url(&self) -> Option<String> {
        let github = self.github.as_ref()?;
        github.options.webhook_secret.as_ref()?;
        let base = self.options.public_url.as_deref()?;
        Some(format!("{}/webhooks/github", base.trim_end_matches('/')))
    }

    /// `POST /chat`: one message, answered with the reply and the actions taken.
    async fn chat(&self, req: Request, owner: &str) -> Result<Response, Response> {
        let body: ChatBody = read_json(req, MAX_JSON_BODY).await?;
        if body.message.trim().is_empty() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the message is empty",
                Some("send {\"message\": \"deploy github.com/owner/repo\"}".into()),
            ));
        }
        let speaker = self.speaker(owner);
        let session = match &body.session_id {
            Some(raw) => Some(self.session(&speaker, raw).await?),
            None => None,
        };
        let answer = conversation::converse(
            &self.services,
            self.planner.as_ref(),
            &speaker,
            session,
            &body.message,
            body.dry_run,
            &conversation::Silent,
        )
        .await
        .map_err(app_error)?;
        Ok(json(StatusCode::OK, &answer))
    }

    async fn session(
        &self,
        speaker: &conversation::Speaker,
        raw: &str,
    ) -> Result<devgem_domain::Session, Response> {
        let id = devgem_domain::SessionId::parse(raw).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_session_id",
                e.to_string(),
                Some("session ids look like s-...; leave it out to start a session".into()),
            )
        })?;
        conversation::load_session(&self.services, speaker, &id)
            .await
            .map_err(|_| {
                error(
                    StatusCode::NOT_FOUND,
                    "session_not_found",
                    format!("session {id} does not exist"),
                    Some("leave session_id out to start a new session".into()),
                )
            })
    }

    /// `GET /ws/chat`: upgrades to a WebSocket and runs the session on it.
    async fn ws_chat(&self, mut req: Request, owner: &str) -> Result<Response, Response> {
        let key = req
            .headers()
            .get("sec-websocket-key")
            .filter(|_| {
                req.headers()
                    .get(http::header::UPGRADE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
            })
            .map(|k| tokio_tungstenite::tungstenite::handshake::derive_accept_key(k.as_bytes()))
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "not_a_websocket",
                    "/ws/chat is a WebSocket endpoint",
                    Some("connect with a WebSocket client (ws://HOST/ws/chat)".into()),
                )
            })?;
        let speaker = self.speaker(owner);
        let session = match query_param(&req, "session_id") {
            Some(raw) => self.session(&speaker, &raw).await?,
            None => conversation::new_session(&self.services, &speaker)
                .await
                .map_err(app_error)?,
        };
        let socket = ws::Socket {
            services: self.services.clone(),
            planner: self.planner.clone(),
            speaker,
            session,
            monitor_every: self
                .options
                .monitor_every
                .filter(|every| !every.is_zero())
                .unwrap_or(ws::DEFAULT_MONITOR_EVERY),
        };
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => ws::run(socket, upgraded).await,
                Err(e) => tracing::warn!(error = %e, "the WebSocket upgrade failed"),
            }
        });
        let mut res = hyper::Response::new(devgem_http::full(bytes::Bytes::new()));
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = res.headers_mut();
        headers.insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static("websocket"),
        );
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("Upgrade"),
        );
        headers.insert(
            "sec-websocket-accept",
            http::HeaderValue::from_str(&key).map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    "bad_key",
                    "bad Sec-WebSocket-Key",
                    None,
                )
            })?,
        );
        Ok(res)
    }

    /// The deployment `raw_id` if it exists and belongs to `owner` (others' are "not found").
    async fn owned(
        &self,
        raw_id: &str,
        owner: &str,
    ) -> Result<devgem_domain::Deployment, Response> {
        let id = parse_id(raw_id)?;
        match self.services.core.store.get(&id).await {
            Ok(Some(d)) if d.owner == owner => Ok(d),
            Ok(_) => Err(app_error(AppError::NotFound(id))),
            Err(e) => Err(app_error(e.into())),
        }
    }
}

/// Where a progress stream resumes: `Last-Event-ID` (sent by reconnecting EventSource
/// clients), else `?after=N`, else the beginning.
fn last_event_id(req: &Request) -> Result<u64, Response> {
    let header = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let query = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("after=").map(str::to_string))
    });
    match header.or(query) {
        None => Ok(0),
        Some(raw) => raw.trim().parse().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_last_event_id",
                format!("Last-Event-ID {raw:?} is not an event number"),
                None,
            )
        }),
    }
}

/// The first path segments of the routes that need a caller (`/api/...`, `/chat`,
/// `/ws/chat`, `/mcp`, `/stats`): any path under them, even one with no route, is answered
/// only to an authenticated caller.
const AUTHENTICATED: [&str; 5] = ["api", "chat", "ws", "mcp", "stats"];

/// The value of `name` in the request's query string.
fn query_param(req: &Request, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}
