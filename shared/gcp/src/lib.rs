//! Google Cloud adapters for DevGem's ports: Firestore as the state store, Pub/Sub as the
//! message bus (publish here, push delivery decoded and authenticated here), Cloud Storage
//! for objects, and `bootstrap` to create the topics and push subscriptions.
//!
//! **Invariant:** this is the only crate that talks to Google APIs.
//!
//! # Configuration (environment variables, read by [`GcpConfig::from_env`])
//!
//! | variable | meaning |
//! |---|---|
//! | `GOOGLE_CLOUD_PROJECT` | project id (required; any id such as `devgem-local` works with the emulators) |
//! | `PUBSUB_EMULATOR_HOST` | `host:port` of the Pub/Sub emulator; switches Pub/Sub to plaintext + anonymous credentials |
//! | `FIRESTORE_EMULATOR_HOST` | `host:port` of the Firestore emulator (read by the `firestore` crate too) |
//! | `STORAGE_EMULATOR_HOST` | base URL (or `host:port`) of a GCS emulator such as fake-gcs-server |
//! | `DEVGEM_BUCKET` | bucket for source archives and logs (required by [`GcsObjectStore`]) |
//! | `DEVGEM_TOPIC_PREFIX` | prefix of every topic and subscription name (default `devgem-`) |
//! | `DEVGEM_PUBSUB_ORDERING` | `1`/`true`: publish with ordering key = deployment id and create ordered subscriptions (default off) |
//! | `DEVGEM_PUSH_AUDIENCE` | expected `aud` of push OIDC tokens; set together with the next one to turn verification on |
//! | `DEVGEM_PUSH_SERVICE_ACCOUNT` | expected `email` of push OIDC tokens (the push service account) |
//! | `DEVGEM_PUSH_JWKS_URL` | where Google's signing keys are (default `https://www.googleapis.com/oauth2/v3/certs`) |
//!
//! Without credentials and emulators, the clients use Application Default Credentials.
//!
//! # Production notes
//!
//! * `list` with an owner filter orders by creation time: it needs the composite index
//!   `deployments(owner ASC, created_us DESC)`. Without it the store falls back to sorting
//!   in memory (and logs a warning).
//!
//! # What the emulators do
//!
//! Measured with Cloud SDK 528, pubsub-emulator 0.8.20, cloud-firestore-emulator 1.19.9 and
//! fake-gcs-server from PyPI (see `tests/emulated`):
//!
//! * Pub/Sub push: no `Authorization` header even with an OIDC token configured, no
//!   `deliveryAttempt`, no `orderingKey` in the envelope (ordering itself is accepted and
//!   honoured). Use [`AttemptCounter`] to count attempts per message id yourself.
//! * A non-2xx answer is redelivered after the retry policy's backoff (about 1 s, then 3 s).
//! * Dead letter policies are honoured: after `max_delivery_attempts` (5) failed pushes the
//!   message is pushed to the dead letter subscription, payload unchanged, with the attributes
//!   `CloudPubSubDeadLetterSourceSubscription`, `CloudPubSubDeadLetterSourceDeliveryCount`,
//!   `CloudPubSubDeadLetterSourceSubscriptionProject` and
//!   `CloudPubSubDeadLetterSourceTopicPublishTime` (see [`PushEnvelope::dead_letter_info`]).
//! * Firestore Listen on a query resets its target after every change and resends every
//!   matching document; the store's event hub drops the repeats by seq.

mod bootstrap;
mod config;
mod firestore_store;
mod gcs;
mod oidc;
mod pubsub;
mod push;

pub use bootstrap::{BootstrapError, BootstrapReport, DEAD_LETTER_TOPIC, bootstrap, push_url};
pub use config::{ConfigError, GcpConfig, PushAuthConfig};
pub use firestore_store::FirestoreStore;
pub use gcs::GcsObjectStore;
pub use oidc::{KeySource, OidcClaims, OidcError, PushAuth};
pub use pubsub::PubSubBus;
pub use push::{AttemptCounter, PushEnvelope, PushError, PushMessage, decode_push};

use devgem_ports::{BusError, MessageBus, ObjectError, ObjectStore, StateStore, StoreError};
use std::sync::Arc;

/// Builders of every adapter from one configuration, as the functions hold them.
impl GcpConfig {
    pub async fn state_store(&self) -> Result<Arc<dyn StateStore>, StoreError> {
        Ok(Arc::new(FirestoreStore::new(self).await?))
    }

    pub async fn message_bus(&self) -> Result<Arc<dyn MessageBus>, BusError> {
        Ok(Arc::new(PubSubBus::new(self).await?))
    }

    pub async fn object_store(&self) -> Result<Arc<dyn ObjectStore>, ObjectError> {
        Ok(Arc::new(GcsObjectStore::new(self).await?))
    }

    /// The push verifier, when `DEVGEM_PUSH_AUDIENCE` and `DEVGEM_PUSH_SERVICE_ACCOUNT` are set.
    pub fn push_auth(&self) -> Option<PushAuth> {
        self.push_auth.as_ref().map(PushAuth::from_config)
    }
}
