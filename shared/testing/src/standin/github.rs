//! A stand-in for the GitHub REST API calls DevGem makes (platform contracts §7.5, §7.6):
//! `POST /repos/{owner}/{repo}/statuses/{sha}`, the issue comments of a pull request (`GET`
//! and `POST /repos/{owner}/{repo}/issues/{number}/comments`, `PATCH
//! /repos/{owner}/{repo}/issues/comments/{id}`) and `GET /user`. It checks the documented
//! request (the bearer token, `Accept: application/vnd.github+json`, `X-GitHub-Api-Version:
//! 2022-11-28`, a `User-Agent`, the JSON body's fields) and answers GitHub's shapes, including
//! its errors (`{"message", "documentation_url"}`) and its pages (`per_page`, `page`, a `Link`
//! header); it keeps every status and comment, with the token it came with, and every comment
//! write, for assertions.

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
    /// `user.login`: who wrote it.
    pub author: String,
    /// The token it was posted (or last edited) with; empty for one [`Github::add_comment`]
    /// put there.
    pub token: String,
}

/// A comment write DevGem made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentWrite {
    /// `POST .../issues/{number}/comments`, the new comment's id.
    Created(u64),
    /// `PATCH .../issues/comments/{id}`.
    Updated(u64),
}

/// GitHub's REST API for the tokens it was given.
#[derive(Debug)]
pub struct Github {
    tokens: Mutex<Vec<String>>,
    statuses: Mutex<Vec<StoredStatus>>,
    comments: Mutex<Vec<StoredComment>>,
    comment_writes: Mutex<Vec<CommentWrite>>,
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
            comment_writes: Mutex::new(Vec::new()),
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

    /// Every comment write made through the API, in order.
    pub fn comment_writes(&self) -> Vec<CommentWrite> {
        self.comment_writes.lock().unwrap().clone()
    }

    /// Puts a comment by `author` (someone other than the token's user) on `number`, as if
    /// they had written it on github.com; returns its id.
    pub fn add_comment(&self, repository: &str, number: u64, author: &str, body: &str) -> u64 {
        let mut comments = self.comments.lock().unwrap();
        let id = 1_000_000 + comments.len() as u64 + 1;
        comments.push(StoredComment {
            id,
            repository: repository.to_string(),
            number,
            body: body.to_string(),
            author: author.to_string(),
            token: String::new(),
        });
        id
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

    /// A comment's `body`, as GitHub validates it.
    fn comment_text(request: &Request) -> Result<String, Response> {
        let body = Self::json_body(request)?;
        let Some(text) = body
            .get("body")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        else {
            return Err(validation_failed("IssueComment", "body", "missing_field"));
        };
        if text.chars().count() > 65536 {
            return Err(validation_failed("IssueComment", "body", "custom"));
        }
        Ok(text.to_string())
    }

    fn comment_json(base_url: &str, comment: &StoredComment) -> Value {
        let (id, repository, number) = (comment.id, &comment.repository, comment.number);
        json!({
            "id": id,
            "node_id": format!("IC_{id}"),
            "url": format!("{base_url}/repos/{repository}/issues/comments/{id}"),
            "html_url": format!("https://github.com/{repository}/pull/{number}#issuecomment-{id}"),
            "issue_url": format!("{base_url}/repos/{repository}/issues/{number}"),
            "body": comment.body,
            "user": {"login": comment.author, "id": 1, "type": "User"},
            "created_at": "2025-05-01T12:00:00Z",
            "updated_at": "2025-05-01T12:00:00Z",
            "author_association": "NONE",
        })
    }

    fn create_comment(&self, request: &Request, owner: &str, repo: &str, number: &str) -> Response {
        let Some(number) = number.parse::<u64>().ok().filter(|n| *n > 0) else {
            return github_error(404, "Not Found");
        };
        let text = match Self::comment_text(request) {
            Ok(text) => text,
            Err(res) => return res,
        };
        let stored = {
            let mut comments = self.comments.lock().unwrap();
            let stored = StoredComment {
                id: 1_000_000 + comments.len() as u64 + 1,
                repository: format!("{owner}/{repo}"),
                number,
                body: text,
                author: LOGIN.to_string(),
                token: Self::token_of(request).unwrap_or_default().to_string(),
            };
            comments.push(stored.clone());
            stored
        };
        self.comment_writes
            .lock()
            .unwrap()
            .push(CommentWrite::Created(stored.id));
        Response::json(201, Self::comment_json(&request.base_url, &stored))
    }

    /// `PATCH .../issues/comments/{id}`: only the comment's author may edit it here (GitHub
    /// also lets repository admins, which the stand-in's user is not).
    fn update_comment(&self, request: &Request, owner: &str, repo: &str, id: &str) -> Response {
        let repository = format!("{owner}/{repo}");
        let text = match Self::comment_text(request) {
            Ok(text) => text,
            Err(res) => return res,
        };
        let updated = {
            let mut comments = self.comments.lock().unwrap();
            let Some(comment) = comments
                .iter_mut()
                .find(|c| c.id.to_string() == id && c.repository == repository)
            else {
                return github_error(404, "Not Found");
            };
            if comment.author != LOGIN {
                return github_error(403, "Must have admin rights to Repository.");
            }
            comment.body = text;
            comment.token = Self::token_of(request).unwrap_or_default().to_string();
            comment.clone()
        };
        self.comment_writes
            .lock()
            .unwrap()
            .push(CommentWrite::Updated(updated.id));
        Response::json(200, Self::comment_json(&request.base_url, &updated))
    }

    /// `GET .../issues/{number}/comments?per_page=N&page=M`: oldest first, `per_page` 30 by
    /// default and at most 100, a `Link` header naming the next and last pages.
    fn list_comments(&self, request: &Request, owner: &str, repo: &str, number: &str) -> Response {
        let Some(number) = number.parse::<u64>().ok().filter(|n| *n > 0) else {
            return github_error(404, "Not Found");
        };
        let param = |name: &str, default: usize| -> Option<usize> {
            match request.query.get(name) {
                None => Some(default),
                Some(v) => v.parse().ok(),
            }
        };
        let (Some(per_page), Some(page)) = (param("per_page", 30), param("page", 1)) else {
            return github_error(400, "Invalid pagination parameters");
        };
        let (per_page, page) = (per_page.clamp(1, 100), page.max(1));
        let repository = format!("{owner}/{repo}");
        let all: Vec<StoredComment> = self
            .comments()
            .into_iter()
            .filter(|c| c.repository == repository && c.number == number)
            .collect();
        let shown: Vec<Value> = all
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|c| Self::comment_json(&request.base_url, c))
            .collect();
        let last = all.len().div_ceil(per_page).max(1);
        let link = |p: usize, rel: &str| {
            format!(
                "<{}/repos/{repository}/issues/{number}/comments?per_page={per_page}&page={p}>; rel=\"{rel}\"",
                request.base_url
            )
        };
        let response = Response::json(200, Value::Array(shown));
        if page < last {
            response.with_header(
                "link",
                &format!("{}, {}", link(page + 1, "next"), link(last, "last")),
            )
        } else {
            response
        }
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
            ("GET", ["repos", owner, repo, "issues", number, "comments"]) => {
                Route::Comments(owner, repo, number)
            }
            ("PATCH", ["repos", owner, repo, "issues", "comments", id]) => {
                Route::EditComment(owner, repo, id)
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
            Route::Comments(owner, repo, number) => {
                self.list_comments(request, owner, repo, number)
            }
            Route::EditComment(owner, repo, id) => self.update_comment(request, owner, repo, id),
            Route::User => self.user(),
        })
    }
}

enum Route<'a> {
    Status(&'a str, &'a str, &'a str),
    Comment(&'a str, &'a str, &'a str),
    Comments(&'a str, &'a str, &'a str),
    EditComment(&'a str, &'a str, &'a str),
    User,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const TOKEN: &str = "ghp_test";

    fn request(method: &str, path: &str, query: &[(&str, &str)], body: Value) -> Request {
        let headers = [
            ("authorization", format!("Bearer {TOKEN}")),
            ("accept", "application/vnd.github+json".into()),
            ("x-github-api-version", API_VERSION.into()),
            ("user-agent", "devgem-test".into()),
        ];
        Request {
            method: method.into(),
            path: path.into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<BTreeMap<_, _>>(),
            body: if body.is_null() {
                Default::default()
            } else {
                body.to_string().into()
            },
            base_url: "http://stand-in".into(),
        }
    }

    fn answer(github: &Github, request: &Request) -> (u16, Value) {
        let res = github.handle(request).expect("a GitHub route");
        (res.status, serde_json::from_slice(&res.body).unwrap())
    }

    #[test]
    fn comments_are_listed_in_pages_with_a_link_to_the_next() {
        let github = Github::new(TOKEN);
        for i in 0..5 {
            github.add_comment("acme/shop", 7, "mona", &format!("comment {i}"));
        }
        github.add_comment("acme/shop", 8, "mona", "another pull request");
        let path = "/repos/acme/shop/issues/7/comments";
        let res = github
            .handle(&request(
                "GET",
                path,
                &[("per_page", "2"), ("page", "2")],
                Value::Null,
            ))
            .unwrap();
        assert_eq!(res.status, 200);
        let link = res
            .headers
            .iter()
            .find(|(k, _)| k == "link")
            .map(|(_, v)| v.clone())
            .unwrap();
        assert!(link.contains("page=3>; rel=\"next\""), "{link}");
        let page: Value = serde_json::from_slice(&res.body).unwrap();
        let bodies: Vec<&str> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["comment 2", "comment 3"]);
        assert_eq!(page[0]["user"]["login"], "mona");
        let (_, last) = answer(
            &github,
            &request(
                "GET",
                path,
                &[("per_page", "2"), ("page", "3")],
                Value::Null,
            ),
        );
        assert_eq!(last.as_array().unwrap().len(), 1);
        let (_, beyond) = answer(
            &github,
            &request(
                "GET",
                path,
                &[("per_page", "2"), ("page", "4")],
                Value::Null,
            ),
        );
        assert_eq!(beyond, json!([]));
    }

    #[test]
    fn only_the_tokens_own_comments_can_be_edited_and_every_write_is_recorded() {
        let github = Github::new(TOKEN);
        let foreign = github.add_comment("acme/shop", 7, "mona", "<!-- devgem:preview -->");
        let (status, created) = answer(
            &github,
            &request(
                "POST",
                "/repos/acme/shop/issues/7/comments",
                &[],
                json!({"body": "first"}),
            ),
        );
        assert_eq!(status, 201);
        assert_eq!(created["user"]["login"], LOGIN);
        let ours = created["id"].as_u64().unwrap();
        assert!(
            created["html_url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("#issuecomment-{ours}"))
        );

        let edit = |id: u64, text: &str| {
            answer(
                &github,
                &request(
                    "PATCH",
                    &format!("/repos/acme/shop/issues/comments/{id}"),
                    &[],
                    json!({ "body": text }),
                ),
            )
        };
        let (status, edited) = edit(ours, "second");
        assert_eq!(status, 200);
        assert_eq!(edited["body"], "second");
        assert_eq!(edit(foreign, "taken over").0, 403);
        assert_eq!(edit(42, "missing").0, 404);
        assert_eq!(edit(ours, "").0, 422);

        let bodies: Vec<String> = github.comments_on(7).into_iter().map(|c| c.body).collect();
        assert_eq!(bodies, ["<!-- devgem:preview -->", "second"]);
        assert_eq!(
            github.comment_writes(),
            [CommentWrite::Created(ours), CommentWrite::Updated(ours)]
        );
    }
}
