//! Who is calling: the bearer token of a request (or a WebSocket's `?token=`) turned into an
//! [`Identity`], each user's rate limit, and the usage `GET /stats` shows.
//!
//! A request is answered for the identity its token names:
//! * `DEVGEM_API_TOKEN` (compared in constant time) is the operator: the local user, admin.
//! * A token made by `devgem token create USER` is that user (looked up by its SHA-256).
//! * A request without a token is the local admin only on an open server: one with no
//!   `DEVGEM_API_TOKEN` (which `devgem serve` allows on loopback only) where no user token has
//!   been made yet. Once any token exists, every request must carry one.
//!
//! A wrong token is refused even on an open server, so a typo never silently acts as someone
//! else.

use crate::{Api, app_error, query_param};
use devgem_domain::{Identity, RateLimit, TokenBucket, TokenHash};
use devgem_http::{Request, Response, error};
use http::{Method, StatusCode};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    /// A bearer token (the admin's or a user's), in `Authorization` or the WebSocket's `?token=`.
    Token,
    /// The session cookie of a browser that signed in: the browser sends it whichever site
    /// makes the request, so a request that changes something, or opens the WebSocket, must
    /// come from DevGem's own origin.
    Cookie,
    /// Nothing: an open loopback server.
    Open,
}

/// The per-process state of authentication: whether tokens exist, and the users' buckets.
#[derive(Default)]
pub(crate) struct Gate {
    /// Once a user token has been seen to exist, anonymous requests are refused without
    /// asking the store again (tokens are revoked rarely; refusing is the safe side).
    tokens_exist: AtomicBool,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

fn unauthorized(message: &str) -> Response {
    let mut res = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        message,
        Some(
            "send Authorization: Bearer <token> (`devgem token create USER` makes one; the \
             operator's is DEVGEM_API_TOKEN)"
                .into(),
        ),
    );
    res.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    res
}

/// The token a request carries: `Authorization: Bearer`, or on the WebSocket (browsers cannot
/// set headers on one) `?token=`.
fn presented_token(req: &Request) -> Option<(String, Credential)> {
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_string());
    let from_query = (req.uri().path().trim_end_matches('/') == "/ws/chat")
        .then(|| query_param(req, "token"))
        .flatten();
    header
        .or(from_query)
        .map(|t| (t, Credential::Token))
        .or_else(|| {
            crate::signin::cookie(req, crate::signin::SESSION_COOKIE)
                .map(|t| (t, Credential::Cookie))
        })
}

/// `scheme://host[:port]` of `url`, lowercased and without the scheme's default port: what a
/// browser sends as `Origin` for a page of that URL.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, a)| a);
    if authority.is_empty() {
        return None;
    }
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    let host = if default_port.is_empty() {
        authority
    } else {
        authority.strip_suffix(default_port).unwrap_or(authority)
    };
    Some(format!("{scheme}://{host}"))
}

/// Whether a request made with the session cookie may go on: one that only reads (GET, HEAD,
/// OPTIONS, other than the WebSocket's upgrade) always may; one that changes something, or
/// opens the WebSocket, may when it has no `Origin` (not a browser's cross-site request) or
/// DevGem's own. `public_url` is where browsers reach DevGem.
pub(crate) fn cookie_request_allowed(
    method: &Method,
    headers: &http::HeaderMap,
    public_url: Option<&str>,
) -> bool {
    let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let upgrade = headers.contains_key(http::header::UPGRADE);
    if reads && !upgrade {
        return true;
    }
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return true;
    };
    let ours = public_url.and_then(origin_of);
    let theirs = origin.to_str().ok().and_then(origin_of);
    ours.is_some() && ours == theirs
}

/// The answer to a cookie request from another site.
pub(crate) fn foreign_origin() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "foreign_origin",
        "this request carries DevGem's session cookie but comes from another site",
        Some(
            "make the request from DevGem's own pages (DEVGEM_PUBLIC_URL), or send \
             Authorization: Bearer <token> instead of the cookie"
                .into(),
        ),
    )
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Api {
    /// The identity a request acts for, or the 401 (or 503 when the store cannot be read)
    /// to answer it with.
    pub async fn authenticate(&self, req: &Request) -> Result<Identity, Response> {
        self.credential(req).await.map(|(identity, _)| identity)
    }

    pub(crate) async fn credential(
        &self,
        req: &Request,
    ) -> Result<(Identity, Credential), Response> {
        let store = &self.services.core.store;
        let Some((given, presented)) = presented_token(req) else {
            if self.options.token.is_some() || self.tokens_exist().await? {
                return Err(unauthorized("this server needs an API token"));
            }
            return Ok((Identity::local_admin(), Credential::Open));
        };
        if let Some(admin) = &self.options.token
            && constant_time_eq(given.as_bytes(), admin.as_bytes())
        {
            return Ok((Identity::local_admin(), presented));
        }
        let token = store
            .token_by_hash(&TokenHash::of(&given))
            .await
            .map_err(|e| app_error(e.into()))?
            .ok_or_else(|| unauthorized("this API token is not valid (or was revoked)"))?;
        self.gate.tokens_exist.store(true, Ordering::Relaxed);
        let now = self.services.core.clock.now();
        if token.needs_touch(now)
            && let Err(e) = store.touch_token(&token.id, now).await
        {
            tracing::warn!(token = %token.id, error = %e, "cannot record the token's use");
        }
        Ok((Identity::user(token.user), presented))
    }

    async fn tokens_exist(&self) -> Result<bool, Response> {
        if self.gate.tokens_exist.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let exist = !self
            .services
            .core
            .store
            .list_tokens()
            .await
            .map_err(|e| app_error(e.into()))?
            .is_empty();
        if exist {
            self.gate.tokens_exist.store(true, Ordering::Relaxed);
        }
        Ok(exist)
    }

    /// Takes one request from `identity`'s bucket, or answers 429 with `Retry-After`.
    pub(crate) fn rate_limit(&self, identity: &Identity) -> Result<(), Response> {
        let Some(limit) = self.options.rate_limit else {
            return Ok(());
        };
        let now = self.services.core.clock.now();
        let taken = {
            let mut buckets = self.gate.buckets.lock().unwrap_or_else(|p| p.into_inner());
            buckets
                .entry(identity.owner().to_string())
                .or_insert_with(|| TokenBucket::full(limit, now))
                .take(limit, now)
        };
        taken.map_err(|wait| {
            self.usage.count(identity.owner(), |c| c.rate_limited += 1);
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut res = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "more than {} requests a minute from {}",
                    limit.per_minute,
                    identity.owner()
                ),
                Some(format!("try again in {secs} s")),
            );
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            res
        })
    }

    /// `GET /stats`: usage per user (the caller's own row; every row for the admin) and in
    /// total.
    pub(crate) async fn stats(&self, identity: &Identity) -> Result<Response, Response> {
        let filter = devgem_ports::ListFilter {
            owner: (!identity.is_admin()).then(|| identity.owner().to_string()),
            limit: STATS_DEPLOYMENTS,
        };
        let deployments = self
            .services
            .core
            .store
            .list(&filter)
            .await
            .map_err(|e| app_error(e.into()))?;
        let mut rows: BTreeMap<String, Usage> = BTreeMap::new();
        rows.entry(identity.owner().to_string()).or_default();
        for d in &deployments {
            let row = rows.entry(d.owner.clone()).or_default();
            row.deployments += 1;
            if d.stages_done.contains(&devgem_domain::Stage::Analyze) {
                row.builds += 1;
            }
            if d.status == devgem_domain::Status::Failed {
                row.failed_deployments += 1;
            }
        }
        for (owner, counts) in self.usage.snapshot() {
            if identity.is_admin() || owner == identity.owner() {
                let row = rows.entry(owner).or_default();
                row.chat_messages = counts.chat_messages;
                row.requests = counts.requests;
                row.error_responses = counts.error_responses;
                row.rate_limited = counts.rate_limited;
            }
        }
        let mut total = Usage::default();
        let users: Vec<serde_json::Value> = rows
            .into_iter()
            .map(|(user, mut row)| {
                row.errors = row.failed_deployments + row.error_responses;
                total.add(&row);
                let mut value = serde_json::to_value(&row).unwrap_or_default();
                value["user"] = user.into();
                value
            })
            .collect();
        Ok(devgem_http::json(
            StatusCode::OK,
            &serde_json::json!({
                "scope": if identity.is_admin() { "all" } else { "user" },
                "users": users,
                "total": total,
            }),
        ))
    }
}

/// The most deployments `GET /stats` reads.
const STATS_DEPLOYMENTS: usize = 10_000;

/// One user's (or everyone's) usage, as `GET /stats` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    /// Deployments started (from the store: every instance's).
    pub deployments: u64,
    /// Of those, the ones whose build started.
    pub builds: u64,
    pub failed_deployments: u64,
    /// Chat messages answered (POST /chat, the WebSocket), by this process.
    pub chat_messages: u64,
    /// Authenticated requests answered by this process.
    pub requests: u64,
    /// Of those, the ones answered with an error (4xx or 5xx).
    pub error_responses: u64,
    /// Of those, the ones refused by the rate limit.
    pub rate_limited: u64,
    /// `failed_deployments + error_responses`.
    pub errors: u64,
}

impl Usage {
    fn add(&mut self, other: &Usage) {
        self.deployments += other.deployments;
        self.builds += other.builds;
        self.failed_deployments += other.failed_deployments;
        self.chat_messages += other.chat_messages;
        self.requests += other.requests;
        self.error_responses += other.error_responses;
        self.rate_limited += other.rate_limited;
        self.errors += other.errors;
    }
}

/// What this process counts per user (the store does not hold it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub chat_messages: u64,
    pub requests: u64,
    pub error_responses: u64,
    pub rate_limited: u64,
}

/// This process's counters per user; cheap to clone (one shared table).
#[derive(Debug, Clone, Default)]
pub struct UsageBook(Arc<Mutex<HashMap<String, Counts>>>);

impl UsageBook {
    pub fn count(&self, owner: &str, f: impl FnOnce(&mut Counts)) {
        let mut table = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(table.entry(owner.to_string()).or_default());
    }

    /// A response to one of `owner`'s requests.
    pub fn response(&self, owner: &str, status: StatusCode) {
        self.count(owner, |c| {
            c.requests += 1;
            if status.is_client_error() || status.is_server_error() {
                c.error_responses += 1;
            }
        });
    }

    pub fn snapshot(&self) -> Vec<(String, Counts)> {
        let table = self.0.lock().unwrap_or_else(|p| p.into_inner());
        table.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// The limit for `DEVGEM_RATE_LIMIT_PER_MINUTE`: 0 turns limiting off.
pub fn rate_limit(per_minute: u32) -> Option<RateLimit> {
    (per_minute > 0).then_some(RateLimit { per_minute })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port_without_the_default_port() {
        assert_eq!(
            origin_of("https://DevGem.example:443/app?x=1").as_deref(),
            Some("https://devgem.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("https://"), None);
    }

    #[test]
    fn a_cookie_request_that_changes_something_must_come_from_our_origin() {
        let ours = Some("https://devgem.example/");
        let headers = |origin: Option<&str>, upgrade: bool| {
            let mut h = http::HeaderMap::new();
            if let Some(o) = origin {
                h.insert(http::header::ORIGIN, o.parse().unwrap());
            }
            if upgrade {
                h.insert(http::header::UPGRADE, "websocket".parse().unwrap());
            }
            h
        };
        let allowed = |method, origin, upgrade| {
            cookie_request_allowed(&method, &headers(origin, upgrade), ours)
        };
        let evil = Some("https://evil.example");
        assert!(allowed(Method::GET, evil, false), "a read");
        assert!(!allowed(Method::GET, evil, true), "the WebSocket");
        assert!(!allowed(Method::POST, evil, false));
        assert!(!allowed(Method::PATCH, Some("null"), false));
        assert!(allowed(Method::POST, Some("https://devgem.example"), false));
        assert!(allowed(Method::GET, Some("https://devgem.example"), true));
        assert!(
            allowed(Method::DELETE, None, false),
            "not a browser's cross-site request"
        );
        assert!(!cookie_request_allowed(
            &Method::POST,
            &headers(evil, false),
            None
        ));
    }
}
