//! The state store: deployments with compare-and-set writes, each deployment's numbered
//! progress events with a change stream, chat sessions (compare-and-set too), repository
//! links, the webhook deliveries already seen, and users' API tokens (by hash only).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use devgem_domain::{
    Account, ApiToken, Deployment, DeploymentId, Link, LinkId, NewEvent, ProgressEvent, Session,
    SessionId, TokenHash, TokenId, UserId,
};
use futures::stream::BoxStream;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("deployment {0} does not exist")]
    NotFound(DeploymentId),
    #[error("deployment {0} already exists")]
    AlreadyExists(DeploymentId),
    /// Someone else wrote the deployment since it was read: read again and retry.
    #[error("deployment {0} was changed by someone else (version conflict)")]
    Conflict(DeploymentId),
    /// Someone else wrote the session since it was read (or created it first).
    #[error("session {0} was changed by someone else (version conflict)")]
    SessionConflict(SessionId),
    /// The store could not be reached or answered with an error; retrying may help.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
}

/// A stream of a deployment's events, in `seq` order, each once. It ends after the final
/// event (the one with a terminal status) or when the subscriber drops it.
pub type EventStream = BoxStream<'static, Result<ProgressEvent, StoreError>>;

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this owner's deployments.
    pub owner: Option<String>,
    /// At most this many, newest first; 0 means the store's default (100).
    pub limit: usize,
}

#[async_trait]
pub trait StateStore: Send + Sync {
    /// Stores a new deployment (its `version` is 0). Fails with `AlreadyExists` on a taken id.
    async fn create(&self, deployment: &Deployment) -> Result<(), StoreError>;

    async fn get(&self, id: &DeploymentId) -> Result<Option<Deployment>, StoreError>;

    /// Newest first.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<Deployment>, StoreError>;

    /// Writes `next` only if the stored version still equals `next.version`; the stored copy
    /// gets `version + 1` and is returned. A lost race is `Conflict`, never an overwrite.
    async fn update(&self, next: &Deployment) -> Result<Deployment, StoreError>;

    /// Appends an event, numbering it with the next `seq` (1, 2, 3... per deployment).
    async fn append_event(
        &self,
        id: &DeploymentId,
        event: NewEvent,
    ) -> Result<ProgressEvent, StoreError>;

    /// Events with `seq > after`, in order; a store may return them a page at a time, so read
    /// again after the last one until nothing comes back.
    async fn events(&self, id: &DeploymentId, after: u64)
    -> Result<Vec<ProgressEvent>, StoreError>;

    /// Every event with `seq > after`, then each new one as it is written (by this process or
    /// any other), until the final event.
    async fn subscribe(&self, id: &DeploymentId, after: u64) -> Result<EventStream, StoreError>;

    /// Writes a session if the stored version still equals `session.version` (0: it must
    /// not exist yet); the stored copy gets `version + 1` and is returned. A lost race is
    /// `SessionConflict`, never an overwrite.
    async fn put_session(&self, session: &Session) -> Result<Session, StoreError>;

    async fn get_session(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;

    /// Stores a new link (its id must be new).
    async fn put_link(&self, link: &Link) -> Result<(), StoreError>;

    /// Every link, or only `owner`'s, oldest first.
    async fn list_links(&self, owner: Option<&str>) -> Result<Vec<Link>, StoreError>;

    /// Removes a link; `false` when there was none.
    async fn delete_link(&self, id: &LinkId) -> Result<bool, StoreError>;

    /// Records a webhook delivery id if it is new (create-if-absent, so it holds across
    /// instances): `true` the first time, `false` for a redelivery.
    async fn claim_delivery(&self, delivery_id: &str) -> Result<bool, StoreError>;

    /// Forgets a claimed delivery id, so GitHub's redelivery of it is handled afresh: used
    /// when handling it failed for a reason of the server's. An unknown id is fine.
    async fn release_delivery(&self, delivery_id: &str) -> Result<(), StoreError>;

    /// Stores a new API token (its id and hash must be new).
    async fn put_token(&self, token: &ApiToken) -> Result<(), StoreError>;

    /// The token whose hash this is, if it exists (it was not revoked).
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError>;

    /// Every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;

    /// Records a use of the token at `at` (nothing when it was revoked meanwhile).
    async fn touch_token(&self, id: &TokenId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Deletes a token, so it no longer authenticates anyone; `false` when there was none.
    async fn revoke_token(&self, id: &TokenId) -> Result<bool, StoreError>;

    /// Writes an account (the last write wins) and makes each of its identities find it.
    async fn put_account(&self, account: &Account) -> Result<(), StoreError>;

    async fn get_account(&self, id: &UserId) -> Result<Option<Account>, StoreError>;

    /// The account an identity signs in to (by [`devgem_domain::identity_key`]).
    async fn account_for_identity(&self, key: &str) -> Result<Option<Account>, StoreError>;
}
