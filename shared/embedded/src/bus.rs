//! An in-process message bus with Pub/Sub's delivery contract: at least once, redelivery with
//! exponential backoff after a handler error, and a dead letter after `max_attempts`.
//! Messages do not survive the process; after a restart the pipeline's reconciler re-publishes
//! whatever the store says is unfinished.

use async_trait::async_trait;
use devgem_domain::{Stage, StageMessage};
use devgem_ports::{BusError, Delivery, MessageBus, MessageHandler};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone)]
pub struct BusOptions {
    /// Deliveries before a message goes to the dead letter handler.
    pub max_attempts: u32,
    /// Wait before the first redelivery; doubled each time up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Deliver every message twice, concurrently: a fault-injection switch that proves the
    /// handlers are idempotent.
    pub deliver_twice: bool,
}

impl Default for BusOptions {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            deliver_twice: false,
        }
    }
}

type Handlers = HashMap<Stage, Arc<dyn MessageHandler>>;

#[derive(Clone)]
pub struct InProcessBus {
    handlers: Arc<RwLock<Handlers>>,
    dead_letter: Arc<RwLock<Option<Arc<dyn MessageHandler>>>>,
    options: BusOptions,
    tasks: TaskTracker,
    next_id: Arc<AtomicU64>,
}

impl InProcessBus {
    pub fn new(options: BusOptions) -> Self {
        Self {
            handlers: Default::default(),
            dead_letter: Default::default(),
            options,
            tasks: TaskTracker::new(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Routes the stage's messages to `handler`.
    pub fn subscribe(&self, stage: Stage, handler: Arc<dyn MessageHandler>) {
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.insert(stage, handler);
        }
    }

    /// Where messages go after `max_attempts` failed deliveries.
    pub fn set_dead_letter(&self, handler: Arc<dyn MessageHandler>) {
        if let Ok(mut slot) = self.dead_letter.write() {
            *slot = Some(handler);
        }
    }

    /// Waits until every message published so far has been acked or dead-lettered.
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }

    fn handler(&self, stage: Stage) -> Option<Arc<dyn MessageHandler>> {
        self.handlers.read().ok()?.get(&stage).cloned()
    }

    fn deliver(&self, message: StageMessage, message_id: String) {
        let bus = self.clone();
        self.tasks.spawn(async move {
            let mut backoff = bus.options.min_backoff;
            for attempt in 1..=bus.options.max_attempts {
                let delivery = Delivery {
                    message: message.clone(),
                    message_id: message_id.clone(),
                    attempt: Some(attempt),
                };
                let outcome = match bus.handler(message.stage) {
                    Some(handler) => handler.handle(delivery).await.map_err(|e| e.to_string()),
                    None => Err(format!("no handler for topic {}", message.stage.topic())),
                };
                match outcome {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::debug!(%message_id, attempt, %error, "delivery nacked");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(bus.options.max_backoff);
                    }
                }
            }
            let dead_letter = bus.dead_letter.read().ok().and_then(|d| d.clone());
            tracing::warn!(%message_id, stage = %message.stage, "message dead-lettered");
            if let Some(handler) = dead_letter {
                let delivery = Delivery {
                    message,
                    message_id,
                    attempt: Some(bus.options.max_attempts),
                };
                if let Err(error) = handler.handle(delivery).await {
                    tracing::error!(%error, "dead letter handler failed");
                }
            }
        });
    }
}

#[async_trait]
impl MessageBus for InProcessBus {
    async fn publish(&self, message: &StageMessage) -> Result<(), BusError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        self.deliver(message.clone(), id.clone());
        if self.options.deliver_twice {
            self.deliver(message.clone(), id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_domain::DeploymentId;
    use devgem_ports::HandlerError;
    use std::sync::Mutex;

    /// Fails the first `fail_first` deliveries, then acks; records every attempt.
    struct Flaky {
        fail_first: u32,
        attempts: Mutex<Vec<u32>>,
    }

    #[async_trait]
    impl MessageHandler for Flaky {
        async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
            let attempt = delivery.attempt.unwrap_or(0);
            self.attempts.lock().unwrap().push(attempt);
            if attempt <= self.fail_first {
                Err(HandlerError::Failed("not yet".into()))
            } else {
                Ok(())
            }
        }
    }

    fn options() -> BusOptions {
        BusOptions {
            max_attempts: 3,
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            deliver_twice: false,
        }
    }

    fn message() -> StageMessage {
        StageMessage::new(DeploymentId::from_uuid(uuid::Uuid::now_v7()), Stage::Build)
    }

    #[tokio::test]
    async fn redelivers_until_acked() {
        let bus = InProcessBus::new(options());
        let handler = Arc::new(Flaky {
            fail_first: 2,
            attempts: Mutex::new(vec![]),
        });
        bus.subscribe(Stage::Build, handler.clone());
        bus.publish(&message()).await.unwrap();
        bus.drain().await;
        assert_eq!(*handler.attempts.lock().unwrap(), vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn dead_letters_after_max_attempts() {
        let bus = InProcessBus::new(options());
        let handler = Arc::new(Flaky {
            fail_first: u32::MAX,
            attempts: Mutex::new(vec![]),
        });
        let dead = Arc::new(Flaky {
            fail_first: 0,
            attempts: Mutex::new(vec![]),
        });
        bus.subscribe(Stage::Build, handler.clone());
        bus.set_dead_letter(dead.clone());
        bus.publish(&message()).await.unwrap();
        bus.drain().await;
        assert_eq!(handler.attempts.lock().unwrap().len(), 3);
        assert_eq!(dead.attempts.lock().unwrap().len(), 1);
    }
}
