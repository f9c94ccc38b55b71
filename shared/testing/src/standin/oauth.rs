//! Stand-ins for the two sign-in providers, as their documentation describes them:
//! GitHub's OAuth App web flow (`GET /login/oauth/authorize`, `POST /login/oauth/access_token`,
//! `GET /user`) and Google's OpenID Connect code flow (`GET /o/oauth2/v2/auth`,
//! `POST /token`). The authorize pages consent at once (as a person clicking "Allow" would)
//! and redirect to `redirect_uri` with a single-use code; the exchanges check the client's
//! id and secret, the code and the `redirect_uri`, and answer the documented shapes —
//! including GitHub's habit of answering a bad code with HTTP 200 and `{"error"}`.

use super::{Api, Request, Response};
use base64::Engine;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The person who "signs in" at a stand-in provider.
#[derive(Debug, Clone)]
pub struct Person {
    /// GitHub's numeric id or Google's `sub`.
    pub id: u64,
    pub login: String,
    pub name: String,
    pub email: String,
}

/// A code the authorize page handed out, and what it was bound to.
#[derive(Debug, Clone)]
struct Grant {
    redirect_uri: String,
    nonce: Option<String>,
}

fn redirect(to: &str, pairs: &[(&str, &str)]) -> Response {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let sep = if to.contains('?') { '&' } else { '?' };
    Response::text(302, "").with_header("location", &format!("{to}{sep}{}", q.finish()))
}

fn form(request: &Request) -> BTreeMap<String, String> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

/// GitHub's web flow and `GET /user`.
pub struct GithubOAuthStandin {
    client_id: String,
    client_secret: String,
    person: Person,
    grants: Mutex<BTreeMap<String, Grant>>,
    /// Tokens handed out, so `GET /user` answers only those (and other stand-ins may
    /// answer other tokens).
    tokens: Mutex<Vec<String>>,
    next: Mutex<u32>,
}

impl GithubOAuthStandin {
    pub fn new(client_id: &str, client_secret: &str, person: Person) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            person,
            grants: Mutex::default(),
            tokens: Mutex::default(),
            next: Mutex::new(0),
        }
    }

    /// The access tokens handed out so far (a test checks where they ended up).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }

    fn serial(&self) -> u32 {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        *n
    }

    fn authorize(&self, request: &Request) -> Response {
        let q = &request.query;
        if q.get("client_id") != Some(&self.client_id) {
            return Response::text(404, "unknown client_id");
        }
        let (Some(redirect_uri), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
            return Response::text(400, "redirect_uri and state are required");
        };
        let code = format!("gh-code-{}", self.serial());
        self.grants.lock().unwrap().insert(
            code.clone(),
            Grant {
                redirect_uri: redirect_uri.clone(),
                nonce: None,
            },
        );
        redirect(redirect_uri, &[("code", &code), ("state", state)])
    }

    fn exchange(&self, request: &Request) -> Response {
        if request.header("accept") != Some("application/json") {
            // Without it GitHub answers form-encoded; the client would not parse that.
            return Response::text(406, "send Accept: application/json");
        }
        let f = form(request);
        let error = |code: &str, description: &str| {
            Response::json(
                200,
                json!({"error": code, "error_description": description,
                       "error_uri": "https://docs.github.com/apps/oauth"}),
            )
        };
        if f.get("client_id") != Some(&self.client_id)
            || f.get("client_secret") != Some(&self.client_secret)
        {
            return error(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            );
        }
        let grant = f
            .get("code")
            .and_then(|c| self.grants.lock().unwrap().remove(c));
        let Some(grant) = grant else {
            return error(
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            );
        };
        if f.get("redirect_uri") != Some(&grant.redirect_uri) {
            return error(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            );
        }
        let token = format!("gho_standin{:08}", self.serial());
        self.tokens.lock().unwrap().push(token.clone());
        Response::json(
            200,
            json!({"access_token": token, "token_type": "bearer",
                   "scope": "repo,read:user,user:email"}),
        )
    }

    fn user(&self, request: &Request) -> Option<Response> {
        let token = request.header("authorization")?.strip_prefix("Bearer ")?;
        if !self.tokens.lock().unwrap().iter().any(|t| t == token) {
            return None;
        }
        let p = &self.person;
        Some(Response::json(
            200,
            json!({"login": p.login, "id": p.id, "node_id": "U_standin", "type": "User",
                   "name": p.name, "email": p.email,
                   "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", p.id),
                   "html_url": format!("https://github.com/{}", p.login)}),
        ))
    }
}

impl Api for GithubOAuthStandin {
    fn handle(&self, request: &Request) -> Option<Response> {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/login/oauth/authorize") => Some(self.authorize(request)),
            ("POST", "/login/oauth/access_token") => Some(self.exchange(request)),
            ("GET", "/user") => self.user(request),
            _ => None,
        }
    }
}

/// Google's OpenID Connect code flow.
pub struct GoogleOidcStandin {
    client_id: String,
    client_secret: String,
    person: Person,
    grants: Mutex<BTreeMap<String, Grant>>,
    next: Mutex<u32>,
}

impl GoogleOidcStandin {
    pub fn new(client_id: &str, client_secret: &str, person: Person) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            person,
            grants: Mutex::default(),
            next: Mutex::new(0),
        }
    }

    fn serial(&self) -> u32 {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        *n
    }

    fn authorize(&self, request: &Request) -> Response {
        let q = &request.query;
        if q.get("client_id") != Some(&self.client_id) {
            return Response::text(400, "Error 401: invalid_client");
        }
        if q.get("response_type").map(String::as_str) != Some("code")
            || !q
                .get("scope")
                .is_some_and(|s| s.split(' ').any(|x| x == "openid"))
        {
            return Response::text(400, "Error 400: invalid_request");
        }
        let (Some(redirect_uri), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
            return Response::text(400, "Error 400: invalid_request");
        };
        let code = format!("4/google-code-{}", self.serial());
        self.grants.lock().unwrap().insert(
            code.clone(),
            Grant {
                redirect_uri: redirect_uri.clone(),
                nonce: q.get("nonce").cloned(),
            },
        );
        redirect(
            redirect_uri,
            &[
                ("state", state),
                ("code", &code),
                ("scope", "openid email profile"),
            ],
        )
    }

    fn exchange(&self, request: &Request) -> Response {
        let f = form(request);
        let error = |status: u16, code: &str, description: &str| {
            Response::json(
                status,
                json!({"error": code, "error_description": description}),
            )
        };
        if f.get("grant_type").map(String::as_str) != Some("authorization_code") {
            return error(400, "unsupported_grant_type", "Invalid grant_type.");
        }
        if f.get("client_id") != Some(&self.client_id)
            || f.get("client_secret") != Some(&self.client_secret)
        {
            return error(401, "invalid_client", "Unauthorized");
        }
        let grant = f
            .get("code")
            .and_then(|c| self.grants.lock().unwrap().remove(c));
        let Some(grant) = grant else {
            return error(400, "invalid_grant", "Malformed auth code.");
        };
        if f.get("redirect_uri") != Some(&grant.redirect_uri) {
            return error(400, "redirect_uri_mismatch", "Bad Request");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let p = &self.person;
        let mut claims = json!({
            "iss": "https://accounts.google.com", "azp": self.client_id, "aud": self.client_id,
            "sub": p.id.to_string(), "email": p.email, "email_verified": true,
            "name": p.name, "picture": format!("https://lh3.googleusercontent.com/a/{}", p.id),
            "iat": now, "exp": now + 3600,
        });
        if let Some(nonce) = grant.nonce {
            claims["nonce"] = json!(nonce);
        }
        Response::json(
            200,
            json!({"access_token": format!("ya29.standin{}", self.serial()), "expires_in": 3599,
                   "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
                   "token_type": "Bearer", "id_token": id_token(&claims)}),
        )
    }
}

/// A JWT with these claims. Its signature is a placeholder: a client that receives the token
/// straight from the token endpoint may rely on TLS instead (OpenID Connect Core 3.1.3.7).
fn id_token(claims: &serde_json::Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        b64.encode(br#"{"alg":"RS256","kid":"standin","typ":"JWT"}"#),
        b64.encode(claims.to_string()),
        b64.encode(b"standin-signature")
    )
}

impl Api for GoogleOidcStandin {
    fn handle(&self, request: &Request) -> Option<Response> {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/o/oauth2/v2/auth") => Some(self.authorize(request)),
            ("POST", "/token") => Some(self.exchange(request)),
            _ => None,
        }
    }
}
