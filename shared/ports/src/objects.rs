//! Object storage for what is too large for the store: source archives, build logs.

use async_trait::async_trait;
use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object storage unavailable: {0}")]
    Unavailable(String),
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
}

/// Keys are `/`-separated relative paths such as `deployments/d-123/source.tar.gz`.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), ObjectError>;
    /// `None` when there is no such object.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectError>;
}
