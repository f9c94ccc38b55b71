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
use std::collections::BTreeMap;
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
    /// `POST /repos/{repo}/issues/{number}/comments`.
    async fn comment(
        &self,
        token: &SecretValue,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<(), String>;
}

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

    async fn post(
        &self,
        token: &SecretValue,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(), String> {
        let res = self
            .client
            .post(format!("{}{path}", self.api_url))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .bearer_auth(token.expose())
            .json(body)
            .send()
            .await
            // reqwest's error names the URL, never the headers.
            .map_err(|e| format!("GitHub: {e}"))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("GitHub answered {} to POST {path}", res.status()))
        }
    }
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
        self.post(token, &format!("/repos/{repo}/statuses/{sha}"), &body)
            .await
    }

    async fn comment(
        &self,
        token: &SecretValue,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<(), String> {
        self.post(
            token,
            &format!("/repos/{repo}/issues/{number}/comments"),
            &serde_json::json!({ "body": body }),
        )
        .await
    }
}

/// The webhook and the links, with what they need.
#[derive(Clone)]
pub struct Github {
    pub options: GithubOptions,
    pub api: Arc<dyn GithubApi>,
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
        match decoded {
            WebhookEvent::Push(push) => self.push(services, local_paths, push).await,
            WebhookEvent::PullRequest(pr) => self.pull_request(services, local_paths, pr).await,
            WebhookEvent::Ping | WebhookEvent::Other => unreachable!("answered above"),
        }
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
        let (services, api, id) = (services.clone(), self.api.clone(), d.id.clone());
        let fallback = self.options.token.clone();
        tokio::spawn(async move { report(services, api, fallback, id, origin).await });
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

/// Follows a deployment to its end and tells GitHub: pending now, then success with the
/// app's URL or failure with the reason; a preview's URL is also commented on its PR. Posted
/// with the link owner's GitHub token, else `GITHUB_TOKEN`; without either nothing is sent.
async fn report(
    services: Services,
    api: Arc<dyn GithubApi>,
    fallback: Option<SecretValue>,
    id: devgem_domain::DeploymentId,
    origin: Origin,
) {
    let Some(token) = reporting_token(&services, fallback, &origin).await else {
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
    if let (Some(number), Status::Live, Some(url)) = (origin.pull_request, d.status, &d.url) {
        let body = format!(
            "<!-- devgem:preview {} -->\nThe preview of {} is live at {url} (service `{}`).",
            d.id, origin.sha, d.service_name
        );
        if let Err(e) = api.comment(&token, &origin.repository, number, &body).await {
            tracing::warn!(error = %e, "the preview comment was not sent");
        }
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
