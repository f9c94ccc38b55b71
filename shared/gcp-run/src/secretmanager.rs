//! The secrets port on Secret Manager: a key is one secret (`names::secret_id`), each `put`
//! a new version of it, `get` the latest version. The value travels in `addVersion` only.

use crate::call::{self, CallError, RetryPolicy};
use crate::{CloudConfig, auth, names};
use async_trait::async_trait;
use devgem_ports::{SecretError, SecretValue, Secrets};
use google_cloud_gax::options::RequestOptionsBuilder;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use google_cloud_secretmanager_v1::model::{Replication, Secret, SecretPayload, replication};
use std::collections::BTreeMap;

/// Secret Manager's largest payload.
const MAX_PAYLOAD: usize = 64 * 1024;

/// The secrets of one project in Secret Manager.
#[derive(Debug, Clone)]
pub struct SecretManagerSecrets {
    client: SecretManagerService,
    project: String,
    retry: RetryPolicy,
    /// The apps' identity, granted read access to each secret created here.
    reader: Option<String>,
}

/// The client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SecretManagerError {
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("could not set up the Secret Manager client: {0}")]
    Client(String),
}

impl SecretManagerSecrets {
    /// A client of `config.endpoints.secretmanager` with `config`'s credentials; its own
    /// retries are off, as [`call::with_retry`] is the one loop.
    pub async fn new(config: &CloudConfig) -> Result<Self, SecretManagerError> {
        let credentials = auth::credentials(config.access_token.as_ref())?;
        let client = SecretManagerService::builder()
            .with_endpoint(config.endpoints.secretmanager.clone())
            .with_credentials(credentials)
            .with_retry_policy(call::no_retry())
            .build()
            .await
            .map_err(|e| SecretManagerError::Client(e.to_string()))?;
        Ok(Self {
            client,
            project: config.project.clone(),
            retry: RetryPolicy::default(),
            reader: config.runtime_service_account.clone(),
        })
    }

    /// The same client with another retry policy (tests use short delays).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn secret_name(&self, key: &str) -> String {
        format!(
            "projects/{}/secrets/{}",
            self.project,
            names::secret_id(key)
        )
    }

    /// Creates the secret (automatic replication, labels naming its owner); one that exists
    /// already is fine.
    async fn ensure_secret(&self, key: &str) -> Result<(), CallError> {
        let id = names::secret_id(key);
        let parent = format!("projects/{}", self.project);
        let labels = labels(key);
        let what = format!("Secret Manager: create secret {id}");
        let created = call::with_retry(&self.retry, &what, || {
            self.client
                .create_secret()
                .set_parent(parent.clone())
                .set_secret_id(id.clone())
                .set_secret(
                    Secret::new()
                        .set_replication(
                            Replication::new().set_automatic(replication::Automatic::default()),
                        )
                        .set_labels(labels.clone()),
                )
                .with_retry_policy(call::no_retry())
                .send()
        })
        .await;
        match created {
            Ok(_) => self.grant_reader(&id).await,
            Err(CallError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lets the apps' service account read this one secret (least privilege: no project-wide
    /// accessor role). A new secret has no policy yet, so this sets the whole of it.
    async fn grant_reader(&self, id: &str) -> Result<(), CallError> {
        let Some(reader) = &self.reader else {
            return Ok(());
        };
        let resource = format!("projects/{}/secrets/{id}", self.project);
        let policy = google_cloud_iam_v1::model::Policy::new().set_bindings([
            google_cloud_iam_v1::model::Binding::new()
                .set_role("roles/secretmanager.secretAccessor")
                .set_members([format!("serviceAccount:{reader}")]),
        ]);
        let what = format!("Secret Manager: let {reader} read {id}");
        call::with_retry(&self.retry, &what, || {
            self.client
                .set_iam_policy()
                .set_resource(resource.clone())
                .set_policy(policy.clone())
                .with_retry_policy(call::no_retry())
                .send()
        })
        .await
        .map(|_| ())
    }
}

/// Labels tying a secret to DevGem and, for a deployment's variable, to its deployment.
fn labels(key: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([("managed-by".to_string(), "devgem".to_string())]);
    let mut parts = key.split('/');
    if let (Some("deployments"), Some(id)) = (parts.next(), parts.next()) {
        labels.insert("devgem-deployment".into(), names::label_value(id));
    }
    labels
}

/// A failed call as the secrets port reports it: what went wrong and what to do.
fn port_error(e: CallError) -> SecretError {
    match e.hint() {
        "" => SecretError::Unavailable(e.to_string()),
        hint => SecretError::Unavailable(format!("{e}. Fix: {hint}")),
    }
}

#[async_trait]
impl Secrets for SecretManagerSecrets {
    async fn put(&self, key: &str, value: &SecretValue) -> Result<(), SecretError> {
        if key.is_empty() {
            return Err(SecretError::InvalidKey(key.to_string()));
        }
        let data = value.expose().as_bytes().to_vec();
        if data.len() > MAX_PAYLOAD {
            return Err(SecretError::Unavailable(format!(
                "the value of {key} is {} bytes; Secret Manager holds at most 64 KiB",
                data.len()
            )));
        }
        self.ensure_secret(key).await.map_err(port_error)?;
        let crc = i64::from(crc32c::crc32c(&data));
        let parent = self.secret_name(key);
        let what = format!("Secret Manager: add a version to {}", names::secret_id(key));
        call::with_retry(&self.retry, &what, || {
            self.client
                .add_secret_version()
                .set_parent(parent.clone())
                .set_payload(
                    SecretPayload::new()
                        .set_data(bytes::Bytes::from(data.clone()))
                        .set_data_crc32c(crc),
                )
                .with_retry_policy(call::no_retry())
                .send()
        })
        .await
        .map_err(port_error)?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), SecretError> {
        let name = self.secret_name(key);
        let what = format!("Secret Manager: delete secret {}", names::secret_id(key));
        let deleted = call::with_retry(&self.retry, &what, || {
            self.client
                .delete_secret()
                .set_name(name.clone())
                .with_retry_policy(call::no_retry())
                .send()
        })
        .await;
        match deleted {
            Ok(()) | Err(CallError::NotFound(_)) => Ok(()),
            Err(e) => Err(port_error(e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<SecretValue>, SecretError> {
        let name = format!("{}/versions/latest", self.secret_name(key));
        let what = format!(
            "Secret Manager: access the latest version of {}",
            names::secret_id(key)
        );
        let accessed = call::with_retry(&self.retry, &what, || {
            self.client
                .access_secret_version()
                .set_name(name.clone())
                .with_retry_policy(call::no_retry())
                .send()
        })
        .await;
        let response = match accessed {
            Ok(response) => response,
            Err(CallError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(port_error(e)),
        };
        let Some(payload) = response.payload else {
            return Ok(None);
        };
        if let Some(expected) = payload.data_crc32c
            && expected != i64::from(crc32c::crc32c(&payload.data))
        {
            return Err(SecretError::Unavailable(format!(
                "{what}: the payload's checksum does not match (corrupted in transit); try again"
            )));
        }
        let text = String::from_utf8(payload.data.to_vec()).map_err(|_| {
            SecretError::Unavailable(format!(
                "{what}: the value is not UTF-8 text, which an environment variable must be"
            ))
        })?;
        Ok(Some(SecretValue::new(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployments_secret_is_labelled_with_it() {
        let l = labels("deployments/d-0193ab/env/STRIPE_KEY");
        assert_eq!(l["managed-by"], "devgem");
        assert_eq!(l["devgem-deployment"], "d-0193ab");
        assert!(!labels("github/token").contains_key("devgem-deployment"));
    }
}
