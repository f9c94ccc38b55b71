//! Sign-in with Google (OpenID Connect, authorization code flow): the consent page at
//! `accounts.google.com/o/oauth2/v2/auth`, the exchange at `oauth2.googleapis.com/token`,
//! and the person from the ID token's claims.

use crate::{
    ClientCredentials, IdentityProvider, Profile, ProviderKind, SignInError, SignedIn, query,
};
use serde::Deserialize;

/// The two spellings of Google's issuer that appear in ID tokens.
const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 60;

pub struct GoogleOidc {
    credentials: ClientCredentials,
    /// `DEVGEM_GOOGLE_ACCOUNTS_URL` (https://accounts.google.com).
    accounts_url: String,
    /// `DEVGEM_GOOGLE_TOKEN_URL` (https://oauth2.googleapis.com/token).
    token_url: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    id_token: String,
    #[serde(default)]
    scope: Option<String>,
}

/// Google's error body on the token endpoint (`{"error", "error_description"}`).
#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct IdClaims {
    iss: String,
    aud: String,
    exp: u64,
    sub: String,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    picture: Option<String>,
}

impl GoogleOidc {
    pub fn new(credentials: ClientCredentials, accounts_url: &str, token_url: &str) -> Self {
        Self {
            credentials,
            accounts_url: accounts_url.trim_end_matches('/').to_string(),
            token_url: token_url.to_string(),
            http: crate::http_client(),
        }
    }

    fn failed(reason: impl Into<String>) -> SignInError {
        SignInError::Provider {
            provider: ProviderKind::Google,
            reason: reason.into(),
        }
    }

    /// The person from the ID token, after the checks of OpenID Connect Core 3.1.3.7.
    /// The token came straight from the token endpoint over the connection this client
    /// opened, so (step 6 of that section) the endpoint's TLS stands in for the signature;
    /// issuer, audience, expiry and nonce are still checked.
    fn person(&self, id_token: &str, nonce: &str, now_secs: u64) -> Result<Profile, SignInError> {
        let claims: IdClaims = jsonwebtoken::dangerous::insecure_decode_claims(id_token)
            .map_err(|e| Self::failed(format!("the ID token is malformed: {e}")))?;
        if !GOOGLE_ISSUERS.contains(&claims.iss.as_str()) {
            return Err(Self::failed(format!(
                "the ID token's issuer {:?} is not Google",
                claims.iss
            )));
        }
        if claims.aud != self.credentials.client_id {
            return Err(Self::failed(
                "the ID token was issued to another client (aud is not GOOGLE_CLIENT_ID)",
            ));
        }
        if claims.exp + LEEWAY_SECS < now_secs {
            return Err(Self::failed("the ID token has expired"));
        }
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(Self::failed(
                "the ID token's nonce is not the one this sign-in sent (a replayed token?)",
            ));
        }
        Ok(Profile {
            provider: ProviderKind::Google,
            subject: claims.sub,
            login: None,
            name: claims.name,
            // An address Google has not verified says nothing about who this is.
            email: claims.email.filter(|_| claims.email_verified == Some(true)),
            avatar_url: claims.picture,
        })
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[async_trait::async_trait]
impl IdentityProvider for GoogleOidc {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Google
    }

    fn authorize_url(&self, redirect_uri: &str, state: &str, nonce: &str) -> String {
        format!(
            "{}/o/oauth2/v2/auth?{}",
            self.accounts_url,
            query(&[
                ("client_id", &self.credentials.client_id),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("scope", "openid email profile"),
                ("state", state),
                ("nonce", nonce),
            ])
        )
    }

    async fn complete(
        &self,
        code: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<SignedIn, SignInError> {
        let body = query(&[
            ("code", code),
            ("client_id", &self.credentials.client_id),
            ("client_secret", &self.credentials.client_secret),
            ("redirect_uri", redirect_uri),
            ("grant_type", "authorization_code"),
        ]);
        let res = self
            .http
            .post(&self.token_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| Self::failed(format!("the code exchange failed: {e}")))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| Self::failed(format!("the code exchange failed: {e}")))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<TokenError>(&bytes) {
                Ok(e) => SignInError::Refused {
                    provider: ProviderKind::Google,
                    reason: e
                        .error_description
                        .map_or(e.error.clone(), |d| format!("{}: {d}", e.error)),
                },
                Err(_) => Self::failed(format!("the code exchange answered HTTP {status}")),
            });
        }
        let answer: TokenAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| Self::failed(format!("the code exchange answered no ID token: {e}")))?;
        let profile = self.person(&answer.id_token, nonce, now_secs())?;
        Ok(SignedIn {
            profile,
            access_token: answer.access_token,
            scopes: answer
                .scope
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn google() -> GoogleOidc {
        GoogleOidc::new(
            ClientCredentials {
                client_id: "client-1.apps.googleusercontent.com".into(),
                client_secret: "s".into(),
            },
            "https://accounts.google.com",
            "https://oauth2.googleapis.com/token",
        )
    }

    /// An unsigned token with these claims (the checks here are about the claims).
    fn token(claims: serde_json::Value) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b64.encode(br#"{"alg":"RS256","kid":"k"}"#),
            b64.encode(claims.to_string())
        )
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "iss": "https://accounts.google.com",
            "aud": "client-1.apps.googleusercontent.com",
            "exp": 2_000_000_000u64,
            "sub": "1098",
            "nonce": "n-1",
            "email": "ada@example.com",
            "email_verified": true,
            "name": "Ada",
            "picture": "https://lh3.googleusercontent.com/a/ada",
        })
    }

    #[test]
    fn a_good_token_names_the_person() {
        let p = google()
            .person(&token(claims()), "n-1", 1_900_000_000)
            .unwrap();
        assert_eq!(p.subject, "1098");
        assert_eq!(p.email.as_deref(), Some("ada@example.com"));
        assert_eq!(p.name.as_deref(), Some("Ada"));
    }

    #[test]
    fn each_claim_is_checked() {
        let cases = [
            ("iss", serde_json::json!("https://evil.example"), "issuer"),
            ("aud", serde_json::json!("another-client"), "another client"),
            ("exp", serde_json::json!(1_000u64), "expired"),
            ("nonce", serde_json::json!("n-2"), "nonce"),
        ];
        for (claim, value, says) in cases {
            let mut c = claims();
            c[claim] = value;
            let err = google()
                .person(&token(c), "n-1", 1_900_000_000)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{claim}: {err}");
        }
    }

    #[test]
    fn an_unverified_email_is_dropped() {
        let mut c = claims();
        c["email_verified"] = serde_json::json!(false);
        let p = google().person(&token(c), "n-1", 1_900_000_000).unwrap();
        assert_eq!(p.email, None);
    }
}
