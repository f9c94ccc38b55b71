//! The message bus on Pub/Sub: publishes stage messages with the official client's
//! `Publisher` (gRPC). Delivery comes back as push requests, decoded by `push`.

use crate::config::{CALL_TIMEOUT, GcpConfig, anonymous_if};
use async_trait::async_trait;
use devgem_domain::{Stage, StageMessage};
use devgem_ports::{BusError, MessageBus};
use google_cloud_pubsub::client::{BasePublisher, Publisher};
use google_cloud_pubsub::error::PublishError;
use google_cloud_pubsub::model::Message;
use std::collections::HashMap;
use std::time::Duration;

/// Publishes `StageMessage`s to `{prefix}{stage}` with the attributes `deployment_id` and
/// `stage`, and, when ordering is on, the deployment id as ordering key.
pub struct PubSubBus {
    publishers: HashMap<Stage, Publisher>,
    ordering: bool,
}

impl std::fmt::Debug for PubSubBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubBus")
            .field("stages", &self.publishers.keys().collect::<Vec<_>>())
            .field("ordering", &self.ordering)
            .finish()
    }
}

impl PubSubBus {
    /// Connects one publisher per stage topic. The topics need not exist yet (see
    /// `bootstrap`), but publishing to a missing topic fails.
    pub async fn new(config: &GcpConfig) -> Result<Self, BusError> {
        let mut builder = BasePublisher::builder();
        if let Some(endpoint) = config.pubsub_endpoint() {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(creds) = anonymous_if(config.pubsub_emulator.is_some()) {
            builder = builder.with_credentials(creds);
        }
        let base = builder.build().await.map_err(|e| {
            BusError::Unavailable(format!("cannot create the Pub/Sub publisher: {e}"))
        })?;
        let publishers = Stage::ALL
            .into_iter()
            .map(|stage| {
                // Stage messages are few and latency matters more than batching: send each
                // message as soon as it is published.
                let publisher = base
                    .publisher(config.topic_path(stage.topic()))
                    .set_message_count_threshold(1)
                    .set_delay_threshold(Duration::from_millis(1))
                    .build();
                (stage, publisher)
            })
            .collect();
        Ok(Self {
            publishers,
            ordering: config.ordering,
        })
    }

    /// Publishes and returns the message id Pub/Sub assigned.
    pub async fn publish_with_id(&self, message: &StageMessage) -> Result<String, BusError> {
        let publisher = self.publishers.get(&message.stage).ok_or_else(|| {
            BusError::Unavailable(format!("no publisher for stage {}", message.stage))
        })?;
        let id = message.deployment_id.as_str();
        let mut msg = Message::new()
            .set_data(message.to_json())
            .set_attributes([("deployment_id", id), ("stage", message.stage.topic())]);
        if self.ordering {
            msg = msg.set_ordering_key(id);
        }
        let result = tokio::time::timeout(CALL_TIMEOUT, publisher.publish(msg))
            .await
            .map_err(|_| {
                BusError::Unavailable(format!("publish to {} timed out", message.stage))
            })?;
        match result {
            Ok(message_id) => Ok(message_id),
            Err(PublishError::OrderingKeyPaused) => {
                // The client pauses a key after a failed publish to keep order; the caller
                // will retry the whole step, so let the next attempt through.
                publisher.resume_publish(id);
                Err(BusError::Unavailable(format!(
                    "publishing for {id} was paused after an earlier failure; retry"
                )))
            }
            Err(e) => Err(BusError::Unavailable(format!(
                "publish to {} failed: {e}",
                message.stage
            ))),
        }
    }
}

#[async_trait]
impl MessageBus for PubSubBus {
    async fn publish(&self, message: &StageMessage) -> Result<(), BusError> {
        self.publish_with_id(message).await.map(drop)
    }
}
