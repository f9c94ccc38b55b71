//! Object storage on Cloud Storage with the official `google-cloud-storage` client: source
//! archives and build logs, keyed by relative paths inside one bucket.

use crate::config::{CALL_TIMEOUT, GcpConfig, anonymous_if};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use devgem_ports::{ObjectError, ObjectStore};
use google_cloud_gax::retry_policy::RetryPolicyExt;
use google_cloud_storage::client::Storage;
use google_cloud_storage::retry_policy::RetryableErrors;
use std::time::Duration;

/// How long one put or get keeps retrying transient errors.
const RETRY_TIME_LIMIT: Duration = Duration::from_secs(10);

/// Stores objects as `gs://BUCKET/KEY`.
#[derive(Clone, Debug)]
pub struct GcsObjectStore {
    client: Storage,
    /// `projects/_/buckets/NAME`, the form the client wants.
    bucket: String,
}

impl GcsObjectStore {
    pub async fn new(config: &GcpConfig) -> Result<Self, ObjectError> {
        let bucket = config
            .require_bucket()
            .map_err(|e| ObjectError::Unavailable(e.to_string()))?;
        // The default policy retries a refused connection for minutes; a stage would rather
        // fail over to Pub/Sub's redelivery sooner.
        let mut builder =
            Storage::builder().with_retry_policy(RetryableErrors.with_time_limit(RETRY_TIME_LIMIT));
        if let Some(endpoint) = &config.storage_emulator {
            // fake-gcs-server builds resumable-upload URLs from the Host header, which the
            // client sends without the port, so resumable uploads hang there: upload every
            // object in one request instead (objects here are far below GCS's 5 TiB cap).
            builder = builder
                .with_endpoint(endpoint.clone())
                .with_resumable_upload_threshold(usize::MAX);
        }
        if let Some(creds) = anonymous_if(config.storage_emulator.is_some()) {
            builder = builder.with_credentials(creds);
        }
        let client = builder.build().await.map_err(|e| {
            ObjectError::Unavailable(format!("cannot create the Cloud Storage client: {e}"))
        })?;
        Ok(Self {
            client,
            bucket: format!("projects/_/buckets/{bucket}"),
        })
    }
}

/// Keys are relative `/`-separated paths without empty, `.` or `..` segments.
fn check_key(key: &str) -> Result<(), ObjectError> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && !key.chars().any(char::is_control)
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok {
        Ok(())
    } else {
        Err(ObjectError::InvalidKey(key.to_string()))
    }
}

#[async_trait]
impl ObjectStore for GcsObjectStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), ObjectError> {
        check_key(key)?;
        // Passing the checksum we already know avoids the trailing checksum part that
        // fake-gcs-server appends to the object, and lets GCS verify the upload.
        let crc = crc32c::crc32c(&bytes);
        let upload = self
            .client
            .write_object(&self.bucket, key, bytes)
            .with_known_crc32c(crc)
            .send_buffered();
        tokio::time::timeout(CALL_TIMEOUT * 4, upload)
            .await
            .map_err(|_| ObjectError::Unavailable(format!("upload of {key} timed out")))?
            .map_err(|e| ObjectError::Unavailable(format!("upload of {key} failed: {e}")))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectError> {
        check_key(key)?;
        let download = async {
            let mut response = match self.client.read_object(&self.bucket, key).send().await {
                Ok(r) => r,
                Err(e) if e.http_status_code() == Some(404) => return Ok(None),
                Err(e) => {
                    return Err(ObjectError::Unavailable(format!(
                        "download of {key} failed: {e}"
                    )));
                }
            };
            let mut buf = BytesMut::new();
            while let Some(chunk) = response.next().await {
                let chunk = chunk.map_err(|e| {
                    ObjectError::Unavailable(format!("download of {key} failed: {e}"))
                })?;
                buf.extend_from_slice(&chunk);
            }
            Ok(Some(buf.freeze()))
        };
        tokio::time::timeout(CALL_TIMEOUT * 4, download)
            .await
            .map_err(|_| ObjectError::Unavailable(format!("download of {key} timed out")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_paths() {
        assert!(check_key("deployments/d-1/source.tar.gz").is_ok());
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "a/", "a\nb"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
