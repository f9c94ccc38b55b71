//! GitHub's OAuth App web flow: `/login/oauth/authorize`, the code exchange at
//! `/login/oauth/access_token`, and the profile from `GET /user`.

use crate::{
    ClientCredentials, IdentityProvider, Profile, ProviderKind, SignInError, SignedIn, query,
};
use serde::Deserialize;

/// The scopes DevGem asks for: private repositories (clone, commit statuses, PR comments)
/// and the profile.
const SCOPES: &str = "repo read:user user:email";

pub struct GithubOAuth {
    credentials: ClientCredentials,
    /// `DEVGEM_GITHUB_URL` (https://github.com).
    web_url: String,
    /// `DEVGEM_GITHUB_API_URL` (https://api.github.com).
    api_url: String,
    http: reqwest::Client,
}

/// The exchange's answer: a token, or (with HTTP 200, as GitHub does) an error.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
}

impl GithubOAuth {
    pub fn new(credentials: ClientCredentials, web_url: &str, api_url: &str) -> Self {
        Self {
            credentials,
            web_url: web_url.trim_end_matches('/').to_string(),
            api_url: api_url.trim_end_matches('/').to_string(),
            http: crate::http_client(),
        }
    }

    fn failed(reason: impl Into<String>) -> SignInError {
        SignInError::Provider {
            provider: ProviderKind::Github,
            reason: reason.into(),
        }
    }

    async fn exchange(&self, code: &str, redirect_uri: &str) -> Result<TokenAnswer, SignInError> {
        let body = query(&[
            ("client_id", &self.credentials.client_id),
            ("client_secret", &self.credentials.client_secret),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ]);
        let res = self
            .http
            .post(format!("{}/login/oauth/access_token", self.web_url))
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            // reqwest's error names the URL, never the form body with the secret.
            .map_err(|e| Self::failed(format!("the code exchange failed: {e}")))?;
        let status = res.status();
        if !status.is_success() {
            return Err(Self::failed(format!(
                "the code exchange answered HTTP {status}"
            )));
        }
        res.json()
            .await
            .map_err(|e| Self::failed(format!("the code exchange answered no token: {e}")))
    }

    async fn user(&self, token: &str) -> Result<User, SignInError> {
        let res = self
            .http
            .get(format!("{}/user", self.api_url))
            .bearer_auth(token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| Self::failed(format!("reading the profile failed: {e}")))?;
        let status = res.status();
        if !status.is_success() {
            return Err(Self::failed(format!(
                "reading the profile answered HTTP {status}"
            )));
        }
        res.json()
            .await
            .map_err(|e| Self::failed(format!("the profile is not GitHub's user shape: {e}")))
    }
}

#[async_trait::async_trait]
impl IdentityProvider for GithubOAuth {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Github
    }

    fn authorize_url(&self, redirect_uri: &str, state: &str, _nonce: &str) -> String {
        format!(
            "{}/login/oauth/authorize?{}",
            self.web_url,
            query(&[
                ("client_id", &self.credentials.client_id),
                ("redirect_uri", redirect_uri),
                ("scope", SCOPES),
                ("state", state),
                ("allow_signup", "true"),
            ])
        )
    }

    async fn complete(
        &self,
        code: &str,
        redirect_uri: &str,
        _nonce: &str,
    ) -> Result<SignedIn, SignInError> {
        let answer = self.exchange(code, redirect_uri).await?;
        if let Some(error) = answer.error {
            return Err(SignInError::Refused {
                provider: ProviderKind::Github,
                reason: answer
                    .error_description
                    .map_or(error.clone(), |d| format!("{error}: {d}")),
            });
        }
        let token = answer
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Self::failed("the code exchange answered no access_token"))?;
        let user = self.user(&token).await?;
        Ok(SignedIn {
            profile: Profile {
                provider: ProviderKind::Github,
                subject: user.id.to_string(),
                login: Some(user.login),
                name: user.name,
                email: user.email,
                avatar_url: user.avatar_url,
            },
            access_token: token,
            scopes: answer
                .scope
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}
