//! A stand-in for the GitHub REST API calls DevGem makes (platform contracts §7.5, §7.6):
//! `POST /repos/{owner}/{repo}/statuses/{sha}`, `POST /repos/{owner}/{repo}/issues/{number}/comments`
//! and `GET /user`. It checks the documented request (the bearer token, `Accept:
//! application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28`, a `User-Agent`, the JSON
//! body's fields) and answers GitHub's shapes, including its errors (`{"message",
//! "documentation_url"}`); it keeps every status and comment, with the token it came with,
//! for assertions.

use super::{Api, Request, Response};
use serde_json::{Value, json};
use std::sync::Mutex;

/// The API version DevGem pins.
pub const API_VERSION: &str = "2022-11-28";

/// The user the token belongs to.
const LOGIN: &str = "devgem-bot";

/// One commit status as GitHub stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStatus {
    /// `owner/repo`.
    pub repository: String,
    pub sha: String,
    pub state: String,
    pub target_url: Option<String>,
    pub description: Option<String>,
    pub context: String,
    /// The token it was posted with.
    pub token: String,
}

/// One issue (or pull-request) comment as GitHub stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredComment {
    pub id: u64,
    pub repository: String,
    pub number: u64,
    pub body: String,
    /// The token it was posted with.
    pub token: String,
}

/// GitHub's REST API for the tokens it was given.
#[derive(Debug)]
pub struct Github {
    tokens: Mutex<Vec<String>>,
    statuses: Mutex<Vec<StoredStatus>>,
    comments: Mutex<Vec<StoredComment>>,
}

fn github_error(status: u16, message: &str) -> Response {
    Response::json(
        status,
        json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": status.to_string(),
        }),
    )
}

/// GitHub's 422 for a body field it refuses.
fn validation_failed(resource: &str, field: &str, code: &str) -> Response {
    Response::json(
        422,
        json!({
            "message": "Validation Failed",
            "errors": [{"resource": resource, "field": field, "code": code}],
            "documentation_url": "https://docs.github.com/rest",
            "status": "422",
        }),
    )
}

fn is_sha(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Github {
    /// Accepts requests that carry `Authorization: Bearer TOKEN` (or GitHub's older `token
    /// TOKEN` form).
    pub fn new(token: &str) -> Self {
        Self {
            tokens: Mutex::new(vec![token.to_string()]),
            statuses: Mutex::new(Vec::new()),
            comments: Mutex::new(Vec::new()),
        }
    }

    /// Accepts `token` too (another user's).
    pub fn accept(&self, token: &str) {
        self.tokens.lock().unwrap().push(token.to_string());
    }

    /// The token a request carries, `Bearer TOKEN` or `token TOKEN`.
    fn token_of(request: &Request) -> Option<&str> {
        let auth = request.header("authorization")?;
        auth.strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("token "))
    }

    /// Every status posted so far, oldest first.
    pub fn statuses(&self) -> Vec<StoredStatus> {
        self.statuses.lock().unwrap().clone()
    }

    /// The statuses posted for one commit, oldest first.
    pub fn statuses_of(&self, sha: &str) -> Vec<StoredStatus> {
        self.statuses()
            .into_iter()
            .filter(|s| s.sha == sha)
            .collect()
    }

    /// Every comment posted so far, oldest first.
    pub fn comments(&self) -> Vec<StoredComment> {
        self.comments.lock().unwrap().clone()
    }

    /// The comments on issue or pull request `number`, oldest first.
    pub fn comments_on(&self, number: u64) -> Vec<StoredComment> {
        self.comments()
            .into_iter()
            .filter(|c| c.number == number)
            .collect()
    }

    /// The checks every REST call gets: token, media type, version, user agent.
    fn refuse(&self, request: &Request) -> Option<Response> {
        let auth = request.header("authorization").unwrap_or_default();
        let known = Self::token_of(request)
            .is_some_and(|given| self.tokens.lock().unwrap().iter().any(|t| t == given));
        if !known {
            return Some(if auth.is_empty() {
                github_error(401, "Requires authentication")
            } else {
                github_error(401, "Bad credentials")
            });
        }
        if request.header("user-agent").is_none_or(str::is_empty) {
            // GitHub refuses requests without a User-Agent outright.
            return Some(github_error(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
            ));
        }
        if request.header("accept") != Some("application/vnd.github+json") {
            return Some(github_error(
                415,
                "the stand-in wants Accept: application/vnd.github+json, as DevGem's contract says",
            ));
        }
        if request.header("x-github-api-version") != Some(API_VERSION) {
            return Some(github_error(
                400,
                &format!("the stand-in wants X-GitHub-Api-Version: {API_VERSION}"),
            ));
        }
        None
    }

    fn json_body(request: &Request) -> Result<serde_json::Map<String, Value>, Response> {
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(github_error(400, "Problems parsing JSON")),
        }
    }

    fn create_status(&self, request: &Request, owner: &str, repo: &str, sha: &str) -> Response {
        if !is_sha(sha) {
            return github_error(422, &format!("No commit found for SHA: {sha}"));
        }
        let body = match Self::json_body(request) {
            Ok(body) => body,
            Err(res) => return res,
        };
        let state = body
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !matches!(state, "error" | "failure" | "pending" | "success") {
            return validation_failed("Status", "state", "custom");
        }
        let text = |name: &str| -> Result<Option<String>, Response> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(validation_failed("Status", name, "invalid")),
            }
        };
        let (target_url, description, context) =
            match (text("target_url"), text("description"), text("context")) {
                (Ok(t), Ok(d), Ok(c)) => (t, d, c),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e,
            };
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 140)
        {
            return validation_failed("Status", "description", "custom");
        }
        if let Some(url) = &target_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return validation_failed("Status", "target_url", "custom");
        }
        let stored = StoredStatus {
            repository: format!("{owner}/{repo}"),
            sha: sha.to_string(),
            state: state.to_string(),
            target_url,
            description,
            context: context.unwrap_or_else(|| "default".into()),
            token: Self::token_of(request).unwrap_or_default().to_string(),
        };
        let id = {
            let mut statuses = self.statuses.lock().unwrap();
            statuses.push(stored.clone());
            statuses.len() as u64
        };
        Response::json(
            201,
            json!({
                "url": format!("{}/repos/{owner}/{repo}/statuses/{sha}", request.base_url),
                "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
                "id": id,
                "node_id": format!("SC_{id}"),
                "state": stored.state,
                "description": stored.description,
                "target_url": stored.target_url,
                "context": stored.context,
                "created_at": "2025-05-01T12:00:00Z",
                "updated_at": "2025-05-01T12:00:00Z",
                "creator": {"login": LOGIN, "id": 1, "type": "User"},
            }),
        )
    }

    fn create_comment(&self, request: &Request, owner: &str, repo: &str, number: &str) -> Response {
        let Some(number) = number.parse::<u64>().ok().filter(|n| *n > 0) else {
            return github_error(404, "Not Found");
        };
        let body = match Self::json_body(request) {
            Ok(body) => body,
            Err(res) => return res,
        };
        let Some(text) = body
            .get("body")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        else {
            return validation_failed("IssueComment", "body", "missing_field");
        };
        if text.chars().count() > 65536 {
            return validation_failed("IssueComment", "body", "custom");
        }
        let stored = {
            let mut comments = self.comments.lock().unwrap();
            let stored = StoredComment {
                id: 1_000_000 + comments.len() as u64 + 1,
                repository: format!("{owner}/{repo}"),
                number,
                body: text.to_string(),
                token: Self::token_of(request).unwrap_or_default().to_string(),
            };
            comments.push(stored.clone());
            stored
        };
        Response::json(
            201,
            json!({
                "id": stored.id,
                "node_id": format!("IC_{}", stored.id),
                "url": format!("{}/repos/{owner}/{repo}/issues/comments/{}", request.base_url, stored.id),
                "html_url": format!("https://github.com/{owner}/{repo}/pull/{number}#issuecomment-{}", stored.id),
                "issue_url": format!("{}/repos/{owner}/{repo}/issues/{number}", request.base_url),
                "body": stored.body,
                "user": {"login": LOGIN, "id": 1, "type": "User"},
                "created_at": "2025-05-01T12:00:00Z",
                "updated_at": "2025-05-01T12:00:00Z",
                "author_association": "NONE",
            }),
        )
    }

    fn user(&self) -> Response {
        Response::json(
            200,
            json!({
                "login": LOGIN,
                "id": 1,
                "node_id": "U_1",
                "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
                "html_url": format!("https://github.com/{LOGIN}"),
                "type": "User",
                "name": "DevGem Bot",
                "email": null,
            }),
        )
        .with_header("x-oauth-scopes", "repo, read:user, user:email")
    }
}

impl Api for Github {
    fn handle(&self, request: &Request) -> Option<Response> {
        let segments = request.segments();
        let route = match (request.method.as_str(), segments.as_slice()) {
            ("POST", ["repos", owner, repo, "statuses", sha]) => Route::Status(owner, repo, sha),
            ("POST", ["repos", owner, repo, "issues", number, "comments"]) => {
                Route::Comment(owner, repo, number)
            }
            ("GET", ["user"]) => Route::User,
            _ => return None,
        };
        if let Some(refused) = self.refuse(request) {
            return Some(refused);
        }
        Some(match route {
            Route::Status(owner, repo, sha) => self.create_status(request, owner, repo, sha),
            Route::Comment(owner, repo, number) => {
                self.create_comment(request, owner, repo, number)
            }
            Route::User => self.user(),
        })
    }
}

enum Route<'a> {
    Status(&'a str, &'a str, &'a str),
    Comment(&'a str, &'a str, &'a str),
    User,
}
