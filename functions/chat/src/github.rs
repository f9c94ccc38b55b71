//! GitHub auto-deploys and previews: `POST /webhooks/github` (signed deliveries, each handled
//! once), the repository links of `/api/links`, and the results sent back to GitHub as commit
//! statuses and pull-request comments through the small [`GithubApi`] port.

use crate::{MAX_JSON_BODY, app_error};
use async_trait::async_trait;
use devgem_app::{AppError, CreateDeployment, LocalPaths, Services, links};
use devgem_domain::{Deployment, Link, LinkId, ServiceName, Status};
use devgem_http::{Request, Response, error, json, read_json};
use devgem_ports::SecretValue;
use futures::StreamExt;
use hmac::{KeyInit, Mac};
use http::{Method, StatusCode};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The context DevGem's statuses carry on a commit.
const STATUS_CONTEXT: &str = "devgem/deploy";

/// GitHub's limit on a status description.
const MAX_DESCRIPTION: usize = 140;

/// How DevGem talks to GitHub.
#[derive(Clone)]
pub struct GithubOptions {
    /// `GITHUB_WEBHOOK_SECRET`; without it the webhook refuses every delivery.
    pub webhook_secret: Option<String>,
    /// `GITHUB_TOKEN`: what statuses and comments are posted with when the link's owner has
    /// no GitHub token of their own (they never signed in with GitHub).
    pub token: Option<SecretValue>,
}

/// A commit status's state (§7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CommitStatus {
    pub state: StatusState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    pub description: String,
    pub context: String,
}

/// One comment on an issue or pull request, as GitHub lists it (§7.6).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    pub user: CommentAuthor,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommentAuthor {
    pub login: String,
}

/// The GitHub REST calls DevGem makes, each with the token it acts as.
#[async_trait]
pub trait GithubApi: Send + Sync {
    /// `POST /repos/{repo}/statuses/{sha}`.
    async fn set_status(
        &self,
        token: &SecretValue,
        repo: &str,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), String>;
    /// `GET /user`: the login the token acts as.
    async fn login(&self, token: &SecretValue) -> Result<String, String>;
    /// `GET /repos/{repo}/issues/{number}/comments`, every page, oldest first.
    async fn list_comments(
        &self,
        token: &SecretValue,
        repo: &str,
        number: u64,
    ) -> Result<Vec<IssueComment>, String>;
    /// `POST /repos/{repo}/issues/{number}/comments`.
    async fn create_comment(
        &self,
        token: &SecretValue,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<IssueComment, String>;
    /// `PATCH /repos/{repo}/issues/comments/{id}`.
    async fn update_comment(
        &self,
        token: &SecretValue,
        repo: &str,
        id: u64,
        body: &str,
    ) -> Result<IssueComment, String>;
}

/// GitHub's largest page of a list.
const PER_PAGE: usize = 100;

/// How many pages of comments are read before giving up on finding DevGem's (30 000
/// comments: a pull request with more is not one a preview comment matters on).
const MAX_COMMENT_PAGES: usize = 300;

/// [`GithubApi`] over HTTPS with reqwest.
pub struct RestGithub {
    client: reqwest::Client,
    api_url: String,
}

impl RestGithub {
    /// `api_url` is `DEVGEM_GITHUB_API_URL` (https://api.github.com).
    pub fn new(api_url: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .user_agent(concat!("devgem/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            api_url: api_url.trim_end_matches('/').to_string(),
        }
    }

    /// One REST call; a non-2xx answer is an error naming the method and path (never the
    /// token).
    async fn call(
        &self,
        token: &SecretValue,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, String> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.api_url))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .bearer_auth(token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        // reqwest's error names the URL, never the headers.
        let res = request.send().await.map_err(|e| format!("GitHub: {e}"))?;
        if res.status().is_success() {
            Ok(res)
        } else {
            Err(format!(
                "GitHub answered {} to {method} {path}",
                res.status()
            ))
        }
    }

    async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        token: &SecretValue,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, String> {
        let res = self.call(token, method.clone(), path, body).await?;
        res.json().await.map_err(|e| {
            format!("GitHub's answer to {method} {path} is not what it documents: {e}")
        })
    }
}

#[derive(Deserialize)]
struct GithubUser {
    login: String,
}

#[async_trait]
impl GithubApi for RestGithub {
    async fn set_status(
        &self,
        token: &SecretValue,
        repo: &str,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), String> {
        let body = serde_json::to_value(status).map_err(|e| e.to_string())?;
        let path = format!("/repos/{repo}/statuses/{sha}");
        self.call(token, Method::POST, &path, Some(&body)).await?;
        Ok(())
    }

    async fn login(&self, token: &SecretValue) -> Result<String, String> {
        let user: GithubUser = self.call_json(token, Method::GET, "/user", None).await?;
        Ok(user.login)
    }

    async fn list_comments(
        &self,
        token: &SecretValue,
        repo: &str,
        number: u64,
    ) -> Result<Vec<IssueComment>, String> {
        let mut all = Vec::new();
        for page in 1..=MAX_COMMENT_PAGES {
            let path =
                format!("/repos/{repo}/issues/{number}/comments?per_page={PER_PAGE}&page={page}");
            let batch: Vec<IssueComment> = self.call_json(token, Method::GET, &path, None).await?;
            let last = batch.len() < PER_PAGE;
            all.extend(batch);
            if last {
                break;
            }
        }
        Ok(all)
    }

    async fn create_comment(
        &self,
        token: &SecretValue,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<IssueComment, String> {
        let path = format!("/repos/{repo}/issues/{number}/comments");
        let body = serde_json::json!({ "body": body });
        self.call_json(token, Method::POST, &path, Some(&body))
            .await
    }

    async fn update_comment(
        &self,
        token: &SecretValue,
        repo: &str,
        id: u64,
        body: &str,
    ) -> Result<IssueComment, String> {
        let path = format!("/repos/{repo}/issues/comments/{id}");
        let body = serde_json::json!({ "body": body });
        self.call_json(token, Method::PATCH, &path, Some(&body))
            .await
    }
}

/// The webhook and the links, with what they need.
#[derive(Clone)]
pub struct Github {
    pub options: GithubOptions,
    pub api: Arc<dyn GithubApi>,
    comment_locks: CommentLocks,
}

/// One lock per preview comment (keyed by its marker), so the events of one pull request
/// read and write its comment one after the other: two reports that both find no comment
/// would otherwise both create one.
#[derive(Clone, Default)]
struct CommentLocks(Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl CommentLocks {
    fn of(&self, marker: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(marker.to_string()).or_default().clone()
    }
}

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with `secret`, compared in
/// constant time.
pub fn signature_is_valid(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A delivery whose signature checked out, decoded.
#[derive(Debug)]
pub enum WebhookEvent {
    Ping,
    Push(PushEvent),
    PullRequest(PullRequestEvent),
    /// An event DevGem does not act on (acknowledged).
    Other,
}

/// The webhook's decoder, a pure function of the delivery (the fuzz target's entry): the
/// signature is checked over the raw bytes before anything is parsed; a bad one is a 401, a
/// payload that is not what GitHub sends a 400, both with a JSON error.
pub fn decode_webhook(
    secret: &[u8],
    event: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<WebhookEvent, Response> {
    if !signature_is_valid(secret, body, signature) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "the X-Hub-Signature-256 header is missing or does not match the body",
            Some("set the hook's secret to GITHUB_WEBHOOK_SECRET".into()),
        ));
    }
    let malformed = |e: serde_json::Error| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the {event} payload is not what GitHub sends: {e}"),
            None,
        )
    };
    Ok(match event {
        "ping" => WebhookEvent::Ping,
        "push" => WebhookEvent::Push(serde_json::from_slice(body).map_err(malformed)?),
        "pull_request" => {
            WebhookEvent::PullRequest(serde_json::from_slice(body).map_err(malformed)?)
        }
        _ => WebhookEvent::Other,
    })
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn acknowledged(reason: &str) -> Response {
    json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "ignored": true, "reason": reason }),
    )
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
    #[serde(default)]
    clone_url: Option<String>,
}

/// The fields of a `push` payload DevGem reads (platform contracts §7.2).
#[derive(Debug, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    repository: Repository,
}

/// The fields of a `pull_request` payload DevGem reads (§7.3).
#[derive(Debug, Deserialize)]
pub struct PullRequestEvent {
    action: String,
    number: u64,
    pull_request: PullRequest,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    head: GitEnd,
    base: GitEnd,
}

#[derive(Debug, Deserialize)]
struct GitEnd {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
    #[serde(default)]
    repo: Option<Repository>,
}

/// What a deployment started from a webhook reports back to, and for whom.
#[derive(Debug, Clone)]
struct Origin {
    /// The link's owner, whose GitHub token the results are posted with.
    owner: String,
    repository: String,
    sha: String,
    pull_request: Option<u64>,
}

impl Github {
    pub fn new(options: GithubOptions, api: Arc<dyn GithubApi>) -> Self {
        Self {
            options,
            api,
            comment_locks: CommentLocks::default(),
        }
    }

    /// `POST /webhooks/github`.
    pub async fn webhook(
        &self,
        services: &Services,
        local_paths: LocalPaths,
        req: Request,
    ) -> Response {
        self.handle_webhook(services, local_paths, req)
            .await
            .unwrap_or_else(|res| res)
    }

    async fn handle_webhook(
        &self,
        services: &Services,
        local_paths: LocalPaths,
        req: Request,
    ) -> Result<Response, Response> {
        let Some(secret) = self.options.webhook_secret.clone() else {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "webhook_not_configured",
                "this server has no GitHub webhook secret, so it accepts no deliveries",
                Some("set GITHUB_WEBHOOK_SECRET to the hook's secret".into()),
            ));
        };
        let signature = header(&req, "x-hub-signature-256").map(str::to_string);
        let event = header(&req, "x-github-event")
            .unwrap_or_default()
            .to_string();
        let delivery = header(&req, "x-github-delivery").map(str::to_string);
        // 25 MB is GitHub's own cap on a delivery.
        let body = devgem_http::read_body(req, 25 << 20).await?;
        let decoded = decode_webhook(secret.as_bytes(), &event, signature.as_deref(), &body)?;
        let delivery = delivery
            .filter(|d| !d.is_empty() && d.len() <= 200)
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "no_delivery_id",
                    "the X-GitHub-Delivery header is missing",
                    None,
                )
            })?;
        let decoded = match decoded {
            WebhookEvent::Ping => {
                return Ok(json(StatusCode::OK, &serde_json::json!({ "pong": true })));
            }
            WebhookEvent::Other => {
                return Ok(acknowledged(
                    "DevGem acts on push and pull_request events only",
                ));
            }
            other => other,
        };
        let first = services
            .core
            .store
            .claim_delivery(&delivery)
            .await
            .map_err(|e| app_error(e.into()))?;
        if !first {
            return Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "duplicate": true, "delivery": delivery }),
            ));
        }
        let answer = match decoded {
            WebhookEvent::Push(push) => self.push(services, local_paths, push).await,
            WebhookEvent::PullRequest(pr) => self.pull_request(services, local_paths, pr).await,
            WebhookEvent::Ping | WebhookEvent::Other => unreachable!("answered above"),
        };
        // A failure of the server's (store or secrets down, ...) must not make GitHub's
        // Redeliver a no-op: the claim goes, so the redelivery is handled afresh. A 4xx is the
        // delivery's own fault and stays claimed.
        let status = match &answer {
            Ok(r) | Err(r) => r.status(),
        };
        if status.is_server_error()
            && let Err(e) = services.core.store.release_delivery(&delivery).await
        {
            tracing::warn!(%delivery, error = %e, "could not release a failed delivery");
        }
        answer
    }

    async fn links_for(
        &self,
        services: &Services,
        full_name: &str,
        branch_ref: &str,
    ) -> Result<Vec<Link>, Response> {
        let links = services
            .core
            .store
            .list_links(None)
            .await
            .map_err(|e| app_error(e.into()))?;
        Ok(links
            .into_iter()
            .filter(|l| l.repository.matches(full_name) && l.tracks(branch_ref))
            .collect())
    }

    /// Whether a payload's clone URL may be fetched: the rule every source follows (the
    /// allowed hosts, resolved addresses checked, no credentials or options in the URL), and
    /// a `file://` repository only where the server allows local sources.
    async fn clone_url_allowed(
        &self,
        services: &Services,
        url: &str,
        local_paths: LocalPaths,
    ) -> Result<(), Response> {
        devgem_app::sources::check_source(&services.sources, local_paths, url, None, None)
            .await
            .map_err(|e| match e {
                devgem_app::AppError::BadRequest { message, hint } => error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "source_not_allowed",
                    format!("the repository's clone URL is refused: {message}"),
                    Some(hint),
                ),
                other => app_error(other),
            })
    }

    async fn push(
        &self,
        services: &Services,
        local_paths: LocalPaths,
        push: PushEvent,
    ) -> Result<Response, Response> {
        if push.git_ref.starts_with("refs/tags/") {
            return Ok(acknowledged("tag pushes are not deployed"));
        }
        if push.deleted || push.after.bytes().all(|b| b == b'0') {
            return Ok(acknowledged("the branch was deleted"));
        }
        let links = self
            .links_for(services, &push.repository.full_name, &push.git_ref)
            .await?;
        if links.is_empty() {
            return Ok(acknowledged("no link for this repository and branch"));
        }
        let clone_url = push.repository.clone_url.clone().unwrap_or_default();
        self.clone_url_allowed(services, &clone_url, local_paths)
            .await?;
        let mut started = Vec::new();
        for link in links {
            let env = link_env(services, &link).await?;
            let origin = Origin {
                owner: link.owner.clone(),
                repository: push.repository.full_name.clone(),
                sha: push.after.clone(),
                pull_request: None,
            };
            let d = self
                .deploy(
                    services,
                    local_paths,
                    &link,
                    &clone_url,
                    link.service_name.clone(),
                    env,
                    origin,
                )
                .await?;
            started.push(d.id);
        }
        Ok(json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "deployments": started }),
        ))
    }

    async fn pull_request(
        &self,
        services: &Services,
        local_paths: LocalPaths,
        pr: PullRequestEvent,
    ) -> Result<Response, Response> {
        let base_repo = pr
            .pull_request
            .base
            .repo
            .as_ref()
            .map(|r| r.full_name.clone())
            .unwrap_or_else(|| pr.repository.full_name.clone());
        let base_ref = format!("refs/heads/{}", pr.pull_request.base.git_ref);
        let links = self.links_for(services, &base_repo, &base_ref).await?;
        if links.is_empty() {
            return Ok(acknowledged("no link for this repository and base branch"));
        }
        match pr.action.as_str() {
            "opened" | "reopened" | "synchronize" => {
                let head = &pr.pull_request.head;
                let fork = head
                    .repo
                    .as_ref()
                    .is_none_or(|r| !r.full_name.eq_ignore_ascii_case(&base_repo));
                let clone_url = head
                    .repo
                    .as_ref()
                    .and_then(|r| r.clone_url.clone())
                    .or_else(|| pr.repository.clone_url.clone())
                    .unwrap_or_default();
                self.clone_url_allowed(services, &clone_url, local_paths)
                    .await?;
                let mut started = Vec::new();
                for link in links {
                    // A fork's code is untrusted: it gets none of the link's secrets.
                    let env = if fork {
                        BTreeMap::new()
                    } else {
                        link_env(services, &link).await?
                    };
                    let origin = Origin {
                        owner: link.owner.clone(),
                        repository: base_repo.clone(),
                        sha: head.sha.clone(),
                        pull_request: Some(pr.number),
                    };
                    let mut preview = link.clone();
                    preview.branch = head.git_ref.clone();
                    let d = self
                        .deploy(
                            services,
                            local_paths,
                            &preview,
                            &clone_url,
                            link.preview_service(pr.number),
                            env,
                            origin,
                        )
                        .await?;
                    started.push(d.id);
                }
                Ok(json(
                    StatusCode::ACCEPTED,
                    &serde_json::json!({ "deployments": started }),
                ))
            }
            "closed" => {
                let mut stopped = Vec::new();
                for link in links {
                    let name = link.preview_service(pr.number);
                    for d in previews(services, &link.owner, &name).await? {
                        devgem_app::stop_deployment(services, &d.id)
                            .await
                            .map_err(app_error)?;
                        stopped.push(d.id);
                    }
                    let origin = Origin {
                        owner: link.owner.clone(),
                        repository: base_repo.clone(),
                        sha: pr.pull_request.head.sha.clone(),
                        pull_request: Some(pr.number),
                    };
                    let (services, github) = (services.clone(), self.clone());
                    tokio::spawn(
                        async move { github.report_removed(services, origin, name).await },
                    );
                }
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "stopped": stopped }),
                ))
            }
            _ => Ok(acknowledged("this pull request action changes no preview")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn deploy(
        &self,
        services: &Services,
        local_paths: LocalPaths,
        link: &Link,
        clone_url: &str,
        service_name: ServiceName,
        env: BTreeMap<String, String>,
        origin: Origin,
    ) -> Result<Deployment, Response> {
        let mut request = CreateDeployment {
            owner: link.owner.clone(),
            source: clone_url.to_string(),
            upload: None,
            local_paths,
            branch: Some(link.branch.clone()),
            subdir: None,
            service_name: Some(service_name.as_str().to_string()),
            env,
            private: false,
            plan_override: None,
        };
        // The link's own variables win over the owner's defaults.
        let mut options = devgem_app::CreateOptions::default();
        devgem_app::apply_preferences(services, &mut request, None, &mut options)
            .await
            .map_err(app_error)?;
        let d = devgem_app::create_deployment_with(
            services,
            request,
            Some(origin.sha.clone()),
            options,
        )
        .await
        .map_err(app_error)?;
        let (services, github, id) = (services.clone(), self.clone(), d.id.clone());
        tokio::spawn(async move { github.report(services, id, origin).await });
        Ok(d)
    }

    /// `/api/links...` for `owner`: the shared link commands ([`devgem_app::links`]).
    pub async fn links_api(
        &self,
        services: &Services,
        req: Request,
        method: &Method,
        rest: &[&str],
        owner: &str,
    ) -> Result<Response, Response> {
        match (method, rest) {
            (&Method::POST, []) => {
                let body: LinkBody = read_json(req, MAX_JSON_BODY).await?;
                let request = links::NewLink {
                    repository: body.repository,
                    branch: body.branch,
                    service_name: body.service_name,
                    env: body.env,
                };
                let link = links::create_link(services, owner, request)
                    .await
                    .map_err(app_error)?;
                Ok(json(StatusCode::CREATED, &link))
            }
            (&Method::GET, []) => {
                let links = links::list_links(services, owner)
                    .await
                    .map_err(app_error)?;
                Ok(json(StatusCode::OK, &serde_json::json!({ "links": links })))
            }
            (&Method::DELETE, [id]) => {
                let id = LinkId::parse(id)
                    .map_err(|_| app_error(AppError::LinkNotFound(id.to_string())))?;
                let link = links::delete_link(services, owner, &id)
                    .await
                    .map_err(app_error)?;
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "deleted": link.id }),
                ))
            }
            _ => Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route for {method} /api/links/{}", rest.join("/")),
                Some("POST /api/links, GET /api/links, DELETE /api/links/{id}".into()),
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    repository: String,
    branch: String,
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// The link's env values, from the secrets port.
async fn link_env(services: &Services, link: &Link) -> Result<BTreeMap<String, String>, Response> {
    links::link_env(services, link).await.map_err(app_error)
}

/// `owner`'s running or live deployments of the service `name`.
async fn previews(
    services: &Services,
    owner: &str,
    name: &ServiceName,
) -> Result<Vec<Deployment>, Response> {
    let list = services
        .core
        .store
        .list(&devgem_ports::ListFilter {
            owner: Some(owner.to_string()),
            limit: 100,
        })
        .await
        .map_err(|e| app_error(e.into()))?;
    Ok(list
        .into_iter()
        .filter(|d| &d.service_name == name)
        .filter(|d| d.status == Status::Live || !d.status.is_terminal())
        .collect())
}

fn short(text: &str) -> String {
    text.chars().take(MAX_DESCRIPTION).collect()
}

/// The token the results for `origin` are posted with: its link owner's GitHub token, else
/// the server's `GITHUB_TOKEN`.
async fn reporting_token(
    services: &Services,
    fallback: Option<SecretValue>,
    origin: &Origin,
) -> Option<SecretValue> {
    match devgem_app::sources::owner_github_token(services.secrets.as_ref(), &origin.owner).await {
        Ok(Some(token)) => Some(token),
        Ok(None) => fallback,
        Err(e) => {
            tracing::warn!(error = %e, owner = %origin.owner, "the link owner's GitHub token could not be read; using GITHUB_TOKEN");
            fallback
        }
    }
}

impl Github {
    /// Follows a deployment to its end and tells GitHub: pending now, then success with the
    /// app's URL or failure with the reason; a preview's URL is also commented on its PR. Posted
    /// with the link owner's GitHub token, else `GITHUB_TOKEN`; without either nothing is sent.
    async fn report(&self, services: Services, id: devgem_domain::DeploymentId, origin: Origin) {
        let api = &self.api;
        let Some(token) = reporting_token(&services, self.options.token.clone(), &origin).await
        else {
            tracing::info!(
                repository = %origin.repository,
                owner = %origin.owner,
                "no commit status is sent: the link's owner has not signed in with GitHub and no \
                 GITHUB_TOKEN is set"
            );
            return;
        };
        let pending = CommitStatus {
            state: StatusState::Pending,
            target_url: None,
            description: format!("Deploying {}", &origin.sha[..origin.sha.len().min(7)]),
            context: STATUS_CONTEXT.into(),
        };
        if let Err(e) = api
            .set_status(&token, &origin.repository, &origin.sha, &pending)
            .await
        {
            tracing::warn!(error = %e, "the pending commit status was not sent");
        }
        if let Ok(mut events) = devgem_app::follow(&services.core, &id, 0).await {
            while let Some(event) = events.next().await {
                match event {
                    Ok(e) if e.status.is_some_and(Status::is_terminal) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "following a webhook deployment failed");
                        break;
                    }
                }
            }
        }
        let Ok(Some(d)) = services.core.store.get(&id).await else {
            return;
        };
        let status = match (d.status, &d.url) {
            (Status::Live, Some(url)) => CommitStatus {
                state: StatusState::Success,
                target_url: Some(url.clone()),
                description: short(&format!("Deployed to {url}")),
                context: STATUS_CONTEXT.into(),
            },
            _ => CommitStatus {
                state: StatusState::Failure,
                target_url: None,
                description: short(
                    &d.error
                        .as_ref()
                        .map(|f| f.to_string())
                        .unwrap_or_else(|| format!("the deployment ended {}", d.status)),
                ),
                context: STATUS_CONTEXT.into(),
            },
        };
        if let Err(e) = api
            .set_status(&token, &origin.repository, &origin.sha, &status)
            .await
        {
            tracing::warn!(error = %e, "the final commit status was not sent");
        }
        if let (Some(number), Status::Live, Some(_)) = (origin.pull_request, d.status, &d.url) {
            let marker = preview_marker(&origin.repository, number, &d.service_name);
            let lock = self.comment_locks.of(&marker);
            let _one_writer = lock.lock().await;
            // Re-read under the lock: a preview stopped by `closed`, or replaced by a newer
            // push meanwhile, must not put its URL back.
            match current_preview(&services, &d).await {
                Ok(Some(d)) => {
                    let url = d.url.as_deref().unwrap_or_default();
                    let body = format!(
                        "The preview of {} is live at {url} (service `{}`).",
                        origin.sha, d.service_name
                    );
                    if let Err(e) = write_preview_comment(
                        api.as_ref(),
                        &token,
                        &origin.repository,
                        number,
                        &marker,
                        &body,
                        true,
                    )
                    .await
                    {
                        tracing::warn!(error = %e, "the preview comment was not sent");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "the preview comment was not sent"),
            }
        }
    }

    /// After `closed`: the preview's comment, if DevGem wrote one, now says the preview is gone.
    async fn report_removed(&self, services: Services, origin: Origin, service: ServiceName) {
        let Some(number) = origin.pull_request else {
            return;
        };
        let Some(token) = reporting_token(&services, self.options.token.clone(), &origin).await
        else {
            return;
        };
        let marker = preview_marker(&origin.repository, number, &service);
        let lock = self.comment_locks.of(&marker);
        let _one_writer = lock.lock().await;
        let body = format!(
            "The preview was removed when the pull request was closed (service `{service}`)."
        );
        if let Err(e) = write_preview_comment(
            self.api.as_ref(),
            &token,
            &origin.repository,
            number,
            &marker,
            &body,
            false,
        )
        .await
        {
            tracing::warn!(error = %e, "the preview comment was not updated");
        }
    }
}

/// The hidden line that marks DevGem's comment about one preview of one pull request (a
/// repository linked twice has two previews, each with its comment).
fn preview_marker(repository: &str, number: u64, service: &ServiceName) -> String {
    format!("<!-- devgem:preview {repository}#{number} {service} -->")
}

/// `d` as it is now, if it is still live and the newest deployment of its service.
async fn current_preview(
    services: &Services,
    d: &Deployment,
) -> Result<Option<Deployment>, String> {
    let store = &services.core.store;
    let Some(now) = store.get(&d.id).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    if now.status != Status::Live {
        return Ok(None);
    }
    let newer = store
        .list(&devgem_ports::ListFilter {
            owner: Some(d.owner.clone()),
            limit: 100,
        })
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .any(|other| other.service_name == d.service_name && other.created_at > d.created_at);
    Ok((!newer).then_some(now))
}

/// What [`write_preview_comment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommentWrite {
    Created(u64),
    Updated(u64),
    /// There was no comment to update, and none was to be created.
    Nothing,
}

/// The sticky preview comment: the pull request's comments are listed, the one carrying
/// `marker` and written by the token's own login is edited to say `text` (under the
/// marker, so the next event finds it again), else (when
/// `create_if_missing`) one is created. One write at most, as GitHub's rate limits ask.
/// When the token's login cannot be read (a GitHub App token has no `GET /user`), the
/// marker alone identifies the comment.
async fn write_preview_comment(
    api: &dyn GithubApi,
    token: &SecretValue,
    repository: &str,
    number: u64,
    marker: &str,
    text: &str,
    create_if_missing: bool,
) -> Result<CommentWrite, String> {
    let body = format!("{marker}\n{text}");
    let body = body.as_str();
    let login = match api.login(token).await {
        Ok(login) => Some(login),
        Err(e) => {
            tracing::info!(error = %e, "the token's login is unknown; the preview comment is found by its marker alone");
            None
        }
    };
    let comments = api.list_comments(token, repository, number).await?;
    let ours = comments.iter().find(|c| {
        c.body.as_deref().is_some_and(|b| b.contains(marker))
            && login
                .as_deref()
                .is_none_or(|l| c.user.login.eq_ignore_ascii_case(l))
    });
    match ours {
        Some(comment) => {
            let updated = api
                .update_comment(token, repository, comment.id, body)
                .await?;
            Ok(CommentWrite::Updated(updated.id))
        }
        None if create_if_missing => {
            let created = api.create_comment(token, repository, number, body).await?;
            Ok(CommentWrite::Created(created.id))
        }
        None => Ok(CommentWrite::Nothing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        format!(
            "sha256={}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }

    #[tokio::test]
    async fn the_preview_comment_is_found_past_the_first_page_and_only_if_it_is_ours() {
        use devgem_testing::standin::{Standin, github as standin};
        let github = Arc::new(standin::Github::new("ghp_t"));
        let server = Standin::start(None, vec![github.clone()]);
        let api = RestGithub::new(&server.base_url);
        let token = SecretValue::new("ghp_t");
        let marker = preview_marker("acme/shop", 7, &ServiceName::parse("shop-pr-7").unwrap());
        // Others quote the marker, before and after DevGem's comment, past one page.
        for i in 0..130 {
            github.add_comment("acme/shop", 7, "mona", &format!("{marker} quoted {i}"));
        }
        let write = |body: &'static str, create: bool| {
            write_preview_comment(&api, &token, "acme/shop", 7, &marker, body, create)
        };
        assert_eq!(write("removed", false).await, Ok(CommentWrite::Nothing));
        let CommentWrite::Created(id) = write("live at one", true).await.unwrap() else {
            panic!("no comment of DevGem's existed yet");
        };
        for i in 0..120 {
            github.add_comment("acme/shop", 7, "mona", &format!("{marker} again {i}"));
        }
        assert_eq!(
            write("live at two", true).await,
            Ok(CommentWrite::Updated(id))
        );
        let listed = api.list_comments(&token, "acme/shop", 7).await.unwrap();
        assert_eq!(listed.len(), 251, "every page is read");
        let ours: Vec<_> = github
            .comments_on(7)
            .into_iter()
            .filter(|c| c.author != "mona")
            .collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].body, format!("{marker}\nlive at two"));
        assert_eq!(
            github.comment_writes(),
            [
                standin::CommentWrite::Created(id),
                standin::CommentWrite::Updated(id)
            ]
        );
    }

    #[test]
    fn only_the_exact_signature_of_the_exact_body_passes() {
        let body = br#"{"zen":"Design for failure."}"#;
        let good = sign("s3cret", body);
        assert!(signature_is_valid(b"s3cret", body, Some(&good)));
        assert!(!signature_is_valid(b"other", body, Some(&good)));
        assert!(!signature_is_valid(b"s3cret", b"{}", Some(&good)));
        assert!(!signature_is_valid(b"s3cret", body, None));
        assert!(!signature_is_valid(
            b"s3cret",
            body,
            Some(&good[..good.len() - 2])
        ));
        assert!(!signature_is_valid(
            b"s3cret",
            body,
            Some(good.trim_start_matches("sha256="))
        ));
        assert!(!signature_is_valid(b"s3cret", body, Some("sha256=zz")));
    }

    #[test]
    fn the_decoder_checks_the_signature_before_it_parses() {
        let body =
            br#"{"ref": "refs/heads/main", "after": "x", "repository": {"full_name": "a/b"}}"#;
        let good = sign("s3cret", body);
        assert!(matches!(
            decode_webhook(b"s3cret", "push", Some(&good), body),
            Ok(WebhookEvent::Push(_))
        ));
        let refused = |event: &str, sig: Option<&str>, body: &[u8]| {
            decode_webhook(b"s3cret", event, sig, body)
                .err()
                .map(|r| r.status().as_u16())
        };
        // Unparsable, but the signature is checked first: 401, not 400.
        assert_eq!(refused("push", Some("sha256=00"), b"{"), Some(401));
        assert_eq!(
            refused("push", Some(&sign("s3cret", b"{")), b"{"),
            Some(400)
        );
        assert_eq!(
            refused("pull_request", Some(&sign("s3cret", b"[]")), b"[]"),
            Some(400)
        );
        assert_eq!(refused("ping", Some(&sign("s3cret", b"x")), b"x"), None);
    }
}
