//! The message bus: publish a stage message; deliver it at least once to the stage's handler.
//! A handler's `Ok` acks; an `Err` makes the bus redeliver with backoff, and after the
//! configured number of attempts the message goes to the dead letter handler.

use async_trait::async_trait;
use devgem_domain::StageMessage;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
}

/// One delivery of a message.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: StageMessage,
    /// The bus's id of the message; the same for every redelivery.
    pub message_id: String,
    /// 1 for the first delivery; `None` when the bus does not say.
    pub attempt: Option<u32>,
}

/// Why a handler did not ack. Both kinds are redelivered; the distinction is for logs.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Someone else is working on it, or a dependency is down: try again later.
    #[error("retry later: {0}")]
    Retry(String),
    #[error("handler failed: {0}")]
    Failed(String),
}

#[async_trait]
pub trait MessageBus: Send + Sync {
    /// Publishes to the stage's topic; returns once the bus has accepted the message.
    async fn publish(&self, message: &StageMessage) -> Result<(), BusError>;
}

/// What a bus delivers to: one stage function, or the dead letter handler.
#[async_trait]
pub trait MessageHandler: Send + Sync {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError>;
}
