//! The credentials every client sends: `GOOGLE_OAUTH_ACCESS_TOKEN` as a bearer token when set
//! (as the Terraform provider takes it), otherwise application default credentials.

use devgem_ports::SecretValue;
pub use google_cloud_auth::credentials::Credentials;
use google_cloud_auth::credentials::{self, CacheableResource, CredentialsProvider, EntityTag};
use google_cloud_auth::errors::CredentialsError;
use http::header::{AUTHORIZATION, HeaderValue};
use http::{Extensions, HeaderMap};

/// A fixed access token. Its `Debug` is redacted, and the header is marked sensitive so no
/// request log prints it.
#[derive(Debug)]
struct StaticToken(SecretValue);

impl CredentialsProvider for StaticToken {
    async fn headers(
        &self,
        _extensions: Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", self.0.expose())).map_err(|_| {
                CredentialsError::from_msg(
                    false,
                    "GOOGLE_OAUTH_ACCESS_TOKEN holds characters a header cannot carry",
                )
            })?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        Ok(CacheableResource::New {
            entity_tag: EntityTag::new(),
            data: headers,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}

/// The credentials to call Google with.
pub fn credentials(access_token: Option<&SecretValue>) -> Result<Credentials, AuthError> {
    match access_token {
        Some(token) => Ok(Credentials::from(StaticToken(token.clone()))),
        None => credentials::Builder::default()
            .build()
            .map_err(|e| AuthError(e.to_string())),
    }
}

/// No credentials could be found.
#[derive(Debug, thiserror::Error)]
#[error(
    "no Google credentials ({0}). Fix: run `gcloud auth application-default login`, or export \
     GOOGLE_OAUTH_ACCESS_TOKEN=$(gcloud auth print-access-token)"
)]
pub struct AuthError(pub String);

/// The `Authorization` header for a call no generated client covers (plain reqwest).
pub async fn bearer_headers(credentials: &Credentials) -> Result<HeaderMap, AuthError> {
    match credentials.headers(Extensions::new()).await {
        Ok(CacheableResource::New { data, .. }) => Ok(data),
        Ok(CacheableResource::NotModified) => Err(AuthError(
            "the credentials answered 'not modified' to a fresh request".into(),
        )),
        Err(e) => Err(AuthError(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_access_token_is_sent_as_a_sensitive_bearer_header() {
        let creds = credentials(Some(&SecretValue::new("ya29.abc"))).unwrap();
        let headers = bearer_headers(&creds).await.unwrap();
        let value = headers.get(AUTHORIZATION).unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer ya29.abc");
        assert!(value.is_sensitive());
        assert!(!format!("{creds:?}").contains("ya29.abc"));
    }
}
