//! Authentication of Pub/Sub push requests: the `Authorization: Bearer` OIDC token that
//! Google signs for the push subscription's service account (RS256, keys from a JWKS).

use crate::config::PushAuthConfig;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// The two spellings of Google's issuer that appear in ID tokens.
const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// Clock skew tolerated on `exp`/`nbf`/`iat`.
const LEEWAY_SECS: u64 = 60;
/// How long fetched keys are kept when the response has no `Cache-Control: max-age`.
const DEFAULT_KEY_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the keys, but not more often than this (so forged tokens
/// with random key ids cannot make us hammer the key endpoint).
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Why a push request was not accepted. `KeysUnavailable` is ours (answer 503 so Pub/Sub
/// retries); every other variant is the caller's (answer 401).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("no bearer token in the Authorization header")]
    MissingToken,
    #[error("token is malformed: {0}")]
    Malformed(String),
    #[error("token algorithm {0:?} is not RS256")]
    WrongAlgorithm(Algorithm),
    #[error("token is signed with an unknown key {0:?}")]
    UnknownKey(String),
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token audience is not the configured one")]
    WrongAudience,
    #[error("token issuer is not Google")]
    WrongIssuer,
    #[error("token email {0:?} is not the push service account")]
    WrongEmail(String),
    #[error("token email is not verified")]
    EmailNotVerified,
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

impl OidcError {
    /// Whether the fault is on our side (keys could not be fetched), so Pub/Sub should retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, OidcError::KeysUnavailable(_))
    }
}

/// The claims DevGem checks; the rest of the token is ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct OidcClaims {
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    #[serde(default)]
    pub iat: Option<u64>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
}

/// Where the verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS URL fetched on demand and cached (Google's in production).
    Url(String),
    /// A fixed key set (tests, or air-gapped setups).
    Static(JwkSet),
}

#[derive(Debug)]
struct CachedKeys {
    keys: JwkSet,
    fetched_at: Instant,
    ttl: Duration,
}

/// Verifies push tokens: RS256 signature by a key of the set, Google issuer, configured
/// audience, not expired, `email` = configured service account with `email_verified`.
#[derive(Debug)]
pub struct PushAuth {
    audience: String,
    service_account: String,
    source: KeySource,
    http: reqwest::Client,
    cache: RwLock<Option<CachedKeys>>,
}

impl PushAuth {
    pub fn new(
        audience: impl Into<String>,
        service_account: impl Into<String>,
        source: KeySource,
    ) -> Self {
        let cache = match &source {
            KeySource::Static(keys) => Some(CachedKeys {
                keys: keys.clone(),
                fetched_at: Instant::now(),
                ttl: Duration::MAX,
            }),
            KeySource::Url(_) => None,
        };
        Self {
            audience: audience.into(),
            service_account: service_account.into(),
            source,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            cache: RwLock::new(cache),
        }
    }

    pub fn from_config(config: &PushAuthConfig) -> Self {
        Self::new(
            &config.audience,
            &config.service_account,
            KeySource::Url(config.jwks_url.clone()),
        )
    }

    /// Verifies the value of an `Authorization` header (`Bearer <jwt>`).
    pub async fn verify_header(
        &self,
        authorization: Option<&str>,
    ) -> Result<OidcClaims, OidcError> {
        let token = authorization
            .and_then(|h| {
                let (scheme, token) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(OidcError::MissingToken)?;
        self.verify(token).await
    }

    pub async fn verify(&self, token: &str) -> Result<OidcClaims, OidcError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| OidcError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(OidcError::WrongAlgorithm(header.alg));
        }
        let kid = header
            .kid
            .ok_or_else(|| OidcError::Malformed("no key id (kid) in the header".into()))?;
        let key = self.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&GOOGLE_ISSUERS);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data =
            jsonwebtoken::decode::<OidcClaims>(token, &key, &validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::InvalidSignature => OidcError::BadSignature,
                    ErrorKind::ExpiredSignature => OidcError::Expired,
                    ErrorKind::InvalidAudience => OidcError::WrongAudience,
                    ErrorKind::InvalidIssuer => OidcError::WrongIssuer,
                    _ => OidcError::Invalid(e.to_string()),
                }
            })?;
        let claims = data.claims;
        if claims.email.as_deref() != Some(self.service_account.as_str()) {
            return Err(OidcError::WrongEmail(claims.email.unwrap_or_default()));
        }
        if claims.email_verified != Some(true) {
            return Err(OidcError::EmailNotVerified);
        }
        Ok(claims)
    }

    /// The decoding key for `kid`, from the cache or a (re)fetch of the key set.
    async fn key(&self, kid: &str) -> Result<DecodingKey, OidcError> {
        let stale_or_missing = {
            let cache = self.cache.read().await;
            match cache.as_ref() {
                Some(c) if c.fetched_at.elapsed() < c.ttl => match c.keys.find(kid) {
                    Some(jwk) => return decoding_key(jwk),
                    // Google rotates keys: an unknown kid may be a new key.
                    None => c.fetched_at.elapsed() >= MIN_REFETCH_INTERVAL,
                },
                _ => true,
            }
        };
        let KeySource::Url(url) = &self.source else {
            return Err(OidcError::UnknownKey(kid.to_string()));
        };
        if !stale_or_missing {
            return Err(OidcError::UnknownKey(kid.to_string()));
        }
        let mut cache = self.cache.write().await;
        // Another request may have refreshed the keys while we waited for the lock.
        let fresh = cache
            .as_ref()
            .is_some_and(|c| c.fetched_at.elapsed() < MIN_REFETCH_INTERVAL);
        if !fresh {
            *cache = Some(self.fetch(url).await?);
        }
        match cache.as_ref().and_then(|c| c.keys.find(kid)) {
            Some(jwk) => decoding_key(jwk),
            None => Err(OidcError::UnknownKey(kid.to_string())),
        }
    }

    async fn fetch(&self, url: &str) -> Result<CachedKeys, OidcError> {
        let unavailable = |e: reqwest::Error| OidcError::KeysUnavailable(format!("{url}: {e}"));
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(unavailable)?
            .error_for_status()
            .map_err(unavailable)?;
        let ttl = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_KEY_TTL);
        let keys: JwkSet = response.json().await.map_err(unavailable)?;
        Ok(CachedKeys {
            keys,
            fetched_at: Instant::now(),
            ttl,
        })
    }
}

fn decoding_key(jwk: &jsonwebtoken::jwk::Jwk) -> Result<DecodingKey, OidcError> {
    DecodingKey::from_jwk(jwk).map_err(|e| OidcError::KeysUnavailable(format!("unusable key: {e}")))
}

/// `max-age` of a `Cache-Control` value.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k.eq_ignore_ascii_case("max-age"))
            .then(|| v.trim().parse().ok().map(Duration::from_secs))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=19949, must-revalidate, no-transform"),
            Some(Duration::from_secs(19949))
        );
        assert_eq!(max_age("no-cache"), None);
    }

    #[tokio::test]
    async fn a_missing_or_non_bearer_header_is_rejected() {
        let auth = PushAuth::new("a", "sa", KeySource::Static(JwkSet { keys: vec![] }));
        assert!(matches!(
            auth.verify_header(None).await,
            Err(OidcError::MissingToken)
        ));
        assert!(matches!(
            auth.verify_header(Some("Basic abc")).await,
            Err(OidcError::MissingToken)
        ));
        assert!(matches!(
            auth.verify_header(Some("Bearer x.y")).await,
            Err(OidcError::Malformed(_))
        ));
    }
}
