//! Pub/Sub push deliveries: `POST /pubsub/{topic}` authenticates the request (when configured),
//! decodes the envelope and runs the topic's handler inside the request. A 2xx answer acks;
//! anything else makes Pub/Sub redeliver with backoff, then dead-letter.

use devgem_gcp::{DEAD_LETTER_TOPIC, PushAuth, PushEnvelope};
use devgem_http::{Request, Response, error, read_body};
use devgem_ports::{HandlerError, MessageHandler};
use http::StatusCode;
use std::collections::HashMap;
use std::sync::Arc;

/// Pub/Sub caps messages at 10 MB; ours are tiny, so anything large is not ours.
const MAX_PUSH_BODY: usize = 1 << 20;

pub struct PushRoutes {
    handlers: HashMap<&'static str, Arc<dyn MessageHandler>>,
    auth: Option<PushAuth>,
}

impl PushRoutes {
    pub fn new(
        handlers: HashMap<&'static str, Arc<dyn MessageHandler>>,
        auth: Option<PushAuth>,
    ) -> Self {
        Self { handlers, auth }
    }

    pub fn serves(&self, topic: &str) -> bool {
        self.handlers.contains_key(topic)
    }

    pub async fn handle(&self, topic: &str, req: Request) -> Response {
        let Some(handler) = self.handlers.get(topic) else {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("this function does not consume the topic {topic:?}"),
                Some("point the push subscription at the function that serves it".into()),
            );
        };
        if let Some(auth) = &self.auth {
            let header = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if let Err(e) = auth.verify_header(header).await {
                if e.is_unavailable() {
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        e.to_string(),
                        None,
                    );
                }
                tracing::warn!(%topic, error = %e, "push request refused");
                return error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    e.to_string(),
                    None,
                );
            }
        }
        let body = match read_body(req, MAX_PUSH_BODY).await {
            Ok(body) => body,
            Err(res) => return res,
        };
        let delivery = PushEnvelope::parse(&body).and_then(|envelope| {
            let mut delivery = envelope.delivery()?;
            if topic == DEAD_LETTER_TOPIC
                && let Some(info) = envelope.dead_letter_info()
            {
                delivery.attempt = info.delivery_count.or(delivery.attempt);
            }
            Ok(delivery)
        });
        let delivery = match delivery {
            Ok(d) => d,
            Err(e) => {
                // Not ours to process; a 4xx lets Pub/Sub dead-letter it after the attempts.
                tracing::warn!(%topic, error = %e, "undecodable push request");
                return error(StatusCode::BAD_REQUEST, "bad_message", e.to_string(), None);
            }
        };
        let id = delivery.message.deployment_id.clone();
        match handler.handle(delivery).await {
            Ok(()) => devgem_http::text(StatusCode::NO_CONTENT, ""),
            Err(HandlerError::Retry(reason)) => {
                tracing::info!(%topic, deployment = %id, %reason, "nack: retry later");
                error(StatusCode::SERVICE_UNAVAILABLE, "retry", reason, None)
            }
            Err(HandlerError::Failed(reason)) => {
                tracing::warn!(%topic, deployment = %id, %reason, "nack: handler failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, "failed", reason, None)
            }
        }
    }
}
