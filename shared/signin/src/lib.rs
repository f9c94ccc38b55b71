//! Sign-in: who a person is, as GitHub (the OAuth App web flow) or Google (OpenID Connect)
//! says. Each provider is an [`IdentityProvider`]: it names the page to send the browser to,
//! and turns the code the browser comes back with into a [`SignedIn`] profile. Checking the
//! `state` against the browser's cookie, keeping users and sessions, and storing the token
//! are the server's job; this crate only speaks to the providers.

mod github;
mod google;

pub use github::GithubOAuth;
pub use google::GoogleOidc;

use std::fmt;

/// Which provider a person signs in with; also the path segment of its routes
/// (`/auth/github/login`, `/auth/google/callback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Github,
    Google,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Github => "github",
            ProviderKind::Google => "google",
        }
    }

    pub fn from_path(segment: &str) -> Option<Self> {
        match segment {
            "github" => Some(ProviderKind::Github),
            "google" => Some(ProviderKind::Google),
            _ => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth client's id and secret. The secret never reaches `Debug` output.
#[derive(Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish()
    }
}

/// A person as the provider describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub provider: ProviderKind,
    /// The provider's stable id for the person (GitHub's numeric user id, Google's `sub`).
    pub subject: String,
    /// GitHub's login; Google has none.
    pub login: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
}

/// The outcome of a completed sign-in.
pub struct SignedIn {
    pub profile: Profile,
    /// The provider's access token (GitHub's is what clones private repositories and posts
    /// commit statuses); it belongs in the secrets port, nowhere else.
    pub access_token: String,
    /// The scopes the person actually granted (may be narrower than asked).
    pub scopes: Vec<String>,
}

impl fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedIn")
            .field("profile", &self.profile)
            .field("access_token", &"***")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Why a sign-in did not complete. Every message is safe to show: it never holds a token,
/// a code or the client secret.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The person declined, or the provider refused the request (`?error=` on the callback).
    #[error("{provider} sign-in was refused: {reason}")]
    Refused {
        provider: ProviderKind,
        reason: String,
    },
    /// The callback is not one this server asked for (no code, or its state does not match).
    #[error("{provider} sign-in callback is invalid: {reason}")]
    BadCallback {
        provider: ProviderKind,
        reason: String,
    },
    /// The provider could not be reached or answered something unexpected.
    #[error("{provider} could not complete the sign-in: {reason}")]
    Provider {
        provider: ProviderKind,
        reason: String,
    },
}

/// What the browser brought back to the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub code: String,
    pub state: String,
}

impl Callback {
    /// Reads `?code=&state=` (or the provider's `?error=`) from a callback's query string.
    pub fn from_query(provider: ProviderKind, query: &str) -> Result<Self, SignInError> {
        let mut code = None;
        let mut state = None;
        let mut error = None;
        let mut description = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "code" => code = Some(value.into_owned()),
                "state" => state = Some(value.into_owned()),
                "error" => error = Some(value.into_owned()),
                "error_description" => description = Some(value.into_owned()),
                _ => {}
            }
        }
        if let Some(error) = error {
            return Err(SignInError::Refused {
                provider,
                reason: description.map_or(error.clone(), |d| format!("{error}: {d}")),
            });
        }
        let bad = |reason: &str| SignInError::BadCallback {
            provider,
            reason: reason.to_string(),
        };
        Ok(Self {
            code: code
                .filter(|c| !c.is_empty())
                .ok_or_else(|| bad("no `code`"))?,
            state: state
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad("no `state`"))?,
        })
    }
}

/// One sign-in provider.
#[async_trait::async_trait]
pub trait IdentityProvider: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// The provider's page to send the browser to. `state` comes back on the callback and
    /// must match the browser's cookie (CSRF); `nonce` is bound into Google's ID token.
    fn authorize_url(&self, redirect_uri: &str, state: &str, nonce: &str) -> String;

    /// Exchanges the callback's code for a token and reads the person's profile.
    async fn complete(
        &self,
        code: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<SignedIn, SignInError>;
}

/// A query string from pairs, percent-encoded.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .user_agent(concat!("devgem/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_carries_code_and_state() {
        let cb = Callback::from_query(ProviderKind::Github, "code=abc&state=s%2B1").unwrap();
        assert_eq!(cb.code, "abc");
        assert_eq!(cb.state, "s+1");
    }

    #[test]
    fn a_denied_callback_says_why() {
        let err = Callback::from_query(
            ProviderKind::Github,
            "error=access_denied&error_description=The+user+has+denied&state=x",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "github sign-in was refused: access_denied: The user has denied"
        );
    }

    #[test]
    fn a_callback_without_code_or_state_is_refused() {
        for q in ["state=x", "code=c", "code=&state=x", ""] {
            assert!(matches!(
                Callback::from_query(ProviderKind::Google, q),
                Err(SignInError::BadCallback { .. })
            ));
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let creds = ClientCredentials {
            client_id: "id".into(),
            client_secret: "very-secret".into(),
        };
        assert!(!format!("{creds:?}").contains("very-secret"));
    }
}
