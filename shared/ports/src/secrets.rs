//! Secret values (environment variables a user sets). Values never appear in logs,
//! `Debug` output, events or the store.

use async_trait::async_trait;
use std::fmt;

/// A secret value; its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; call only where it is handed to the app.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
    #[error("invalid secret key {0:?}")]
    InvalidKey(String),
}

/// Keys are `/`-separated, e.g. `deployments/d-123/env/STRIPE_KEY`.
#[async_trait]
pub trait Secrets: Send + Sync {
    async fn put(&self, key: &str, value: &SecretValue) -> Result<(), SecretError>;
    async fn get(&self, key: &str) -> Result<Option<SecretValue>, SecretError>;
    /// Forgets `key` and every value it held; a key that holds nothing is fine.
    async fn delete(&self, key: &str) -> Result<(), SecretError>;
}
