//! Decoding of Pub/Sub push deliveries (`POST /pubsub/{topic}` with the JSON envelope) into
//! the bus's `Delivery`, and an attempt counter for when Pub/Sub does not send one.

use base64::Engine;
use devgem_domain::StageMessage;
use devgem_ports::Delivery;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Why a push body is not a stage message. None of these improves on redelivery, so a
/// handler should log it and ack (2xx), or the message loops until it is dead-lettered.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("push body is not a Pub/Sub envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    #[error("push message {0} has no data")]
    NoData(String),
    #[error("push message {0} data is not base64: {1}")]
    Base64(String, #[source] base64::DecodeError),
    #[error("push message {0} is not a stage message: {1}")]
    NotAStageMessage(String, #[source] serde_json::Error),
}

/// The wrapped push envelope. Real Pub/Sub and the emulator both send camelCase and
/// snake_case copies of the ids; the camelCase ones are read and unknown fields ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct PushEnvelope {
    pub message: PushMessage,
    #[serde(default)]
    pub subscription: String,
    /// Only sent by Pub/Sub when the subscription has a dead letter policy; never by the
    /// emulator (seen with pubsub-emulator 0.8.20).
    #[serde(rename = "deliveryAttempt", default)]
    pub delivery_attempt: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PushMessage {
    /// Standard base64 of the published bytes; omitted when empty.
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    #[serde(rename = "messageId")]
    pub message_id: String,
    #[serde(rename = "publishTime", default)]
    pub publish_time: Option<String>,
    #[serde(rename = "orderingKey", default)]
    pub ordering_key: Option<String>,
}

impl PushEnvelope {
    pub fn parse(body: &[u8]) -> Result<Self, PushError> {
        serde_json::from_slice(body).map_err(PushError::Envelope)
    }

    /// The published bytes.
    pub fn data(&self) -> Result<Vec<u8>, PushError> {
        let id = &self.message.message_id;
        let data = self
            .message
            .data
            .as_deref()
            .ok_or_else(|| PushError::NoData(id.clone()))?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| PushError::Base64(id.clone(), e))
    }

    pub fn delivery(&self) -> Result<Delivery, PushError> {
        let data = self.data()?;
        let message = StageMessage::from_json(&data)
            .map_err(|e| PushError::NotAStageMessage(self.message.message_id.clone(), e))?;
        Ok(Delivery {
            message,
            message_id: self.message.message_id.clone(),
            attempt: self.delivery_attempt,
        })
    }
}

/// Where a dead-lettered message came from, from the attributes Pub/Sub adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterInfo {
    /// The subscription id (not the full path) the message failed on.
    pub source_subscription: Option<String>,
    /// How many times it was delivered there.
    pub delivery_count: Option<u32>,
}

impl PushEnvelope {
    /// `Some` when this message was forwarded to a dead letter topic (it carries the
    /// `CloudPubSubDeadLetterSource*` attributes; seen on the emulator too).
    pub fn dead_letter_info(&self) -> Option<DeadLetterInfo> {
        let attrs = &self.message.attributes;
        let source = attrs
            .get("CloudPubSubDeadLetterSourceSubscription")
            .cloned();
        let count = attrs
            .get("CloudPubSubDeadLetterSourceDeliveryCount")
            .and_then(|c| c.parse().ok());
        (source.is_some() || count.is_some()).then_some(DeadLetterInfo {
            source_subscription: source,
            delivery_count: count,
        })
    }
}

/// Decodes a push request body into a delivery of a stage message.
pub fn decode_push(body: &[u8]) -> Result<Delivery, PushError> {
    PushEnvelope::parse(body)?.delivery()
}

/// Counts deliveries per message id in this process, for when the push request carries no
/// `deliveryAttempt` (the emulator never sends it; Google sends it only with a dead letter
/// policy). It only sees the deliveries that reach this instance, so with several instances
/// the count is a lower bound. Remembers the last `capacity` message ids.
#[derive(Debug)]
pub struct AttemptCounter {
    capacity: usize,
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    by_id: HashMap<String, u32>,
    order: VecDeque<String>,
}

impl AttemptCounter {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Counts::default()),
        }
    }

    /// Records one delivery of `message_id` and returns its attempt number (1 for the first).
    pub fn record(&self, message_id: &str) -> u32 {
        // A poisoned lock only means another thread panicked mid-count; the counts are
        // still usable.
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.by_id.get_mut(message_id) {
            *n += 1;
            return *n;
        }
        if counts.order.len() >= self.capacity
            && let Some(oldest) = counts.order.pop_front()
        {
            counts.by_id.remove(&oldest);
        }
        counts.order.push_back(message_id.to_string());
        counts.by_id.insert(message_id.to_string(), 1);
        1
    }

    /// Fills in `delivery.attempt` from this counter when Pub/Sub did not say; always
    /// records the delivery so the count stays right if later ones lack it.
    pub fn annotate(&self, mut delivery: Delivery) -> Delivery {
        let counted = self.record(&delivery.message_id);
        delivery.attempt = Some(delivery.attempt.unwrap_or(counted));
        delivery
    }

    /// Forgets a message once it is acked.
    pub fn forget(&self, message_id: &str) {
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if counts.by_id.remove(message_id).is_some() {
            counts.order.retain(|id| id != message_id);
        }
    }
}

impl Default for AttemptCounter {
    fn default() -> Self {
        Self::new(10_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_domain::Stage;

    /// Captured from pubsub-emulator 0.8.20 (see docs/gcp-crates.md), with our payload.
    const EMULATOR_BODY: &str = r#"{"subscription":"projects\/test\/subscriptions\/devgem-build-push",
      "message":{"publishTime":"2026-11-25T22:27:58.210Z",
        "data":"eyJkZXBsb3ltZW50X2lkIjoiZC0xMjM0Iiwic3RhZ2UiOiJidWlsZCJ9",
        "publish_time":"2026-11-25T22:27:58.210Z","messageId":"1",
        "attributes":{"deployment_id":"d-1234","stage":"build"},"message_id":"1"}}"#;

    #[test]
    fn decodes_the_emulator_envelope() {
        let d = decode_push(EMULATOR_BODY.as_bytes()).unwrap();
        assert_eq!(d.message.deployment_id.as_str(), "d-1234");
        assert_eq!(d.message.stage, Stage::Build);
        assert_eq!(d.message_id, "1");
        assert_eq!(d.attempt, None);
    }

    #[test]
    fn reads_delivery_attempt_and_tolerates_missing_attributes() {
        let body = r#"{"message":{"data":"eyJkZXBsb3ltZW50X2lkIjoiZC0xMjM0Iiwic3RhZ2UiOiJkZXBsb3kifQ==",
            "messageId":"77","orderingKey":"d-1234"},"subscription":"s","deliveryAttempt":3}"#;
        let env = PushEnvelope::parse(body.as_bytes()).unwrap();
        assert_eq!(env.message.ordering_key.as_deref(), Some("d-1234"));
        let d = env.delivery().unwrap();
        assert_eq!(d.attempt, Some(3));
        assert_eq!(d.message.stage, Stage::Deploy);
    }

    #[test]
    fn rejects_what_is_not_a_stage_message() {
        assert!(matches!(decode_push(b"nope"), Err(PushError::Envelope(_))));
        let no_data = r#"{"message":{"messageId":"1"}}"#;
        assert!(matches!(
            decode_push(no_data.as_bytes()),
            Err(PushError::NoData(_))
        ));
        let bad_b64 = r#"{"message":{"messageId":"1","data":"%%%"}}"#;
        assert!(matches!(
            decode_push(bad_b64.as_bytes()),
            Err(PushError::Base64(..))
        ));
        let other = r#"{"message":{"messageId":"1","data":"e30="}}"#;
        assert!(matches!(
            decode_push(other.as_bytes()),
            Err(PushError::NotAStageMessage(..))
        ));
    }

    #[test]
    fn dead_letter_attributes_are_read() {
        let body = r#"{"message":{"messageId":"9","data":"eyJkZXBsb3ltZW50X2lkIjoiZC0xMjM0Iiwic3RhZ2UiOiJidWlsZCJ9",
            "attributes":{"CloudPubSubDeadLetterSourceSubscription":"devgem-build-push",
            "CloudPubSubDeadLetterSourceDeliveryCount":"5"}}}"#;
        let env = PushEnvelope::parse(body.as_bytes()).unwrap();
        let info = env.dead_letter_info().unwrap();
        assert_eq!(info.delivery_count, Some(5));
        assert_eq!(
            info.source_subscription.as_deref(),
            Some("devgem-build-push")
        );
        assert_eq!(
            PushEnvelope::parse(EMULATOR_BODY.as_bytes())
                .unwrap()
                .dead_letter_info(),
            None
        );
    }

    #[test]
    fn attempt_counter_counts_per_message_and_forgets_the_oldest() {
        let c = AttemptCounter::new(2);
        assert_eq!(c.record("a"), 1);
        assert_eq!(c.record("a"), 2);
        assert_eq!(c.record("b"), 1);
        assert_eq!(c.record("c"), 1); // evicts "a"
        assert_eq!(c.record("a"), 1);
        c.forget("a");
        assert_eq!(c.record("a"), 1);
    }
}
