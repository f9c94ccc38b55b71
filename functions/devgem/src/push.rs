//! Pub/Sub push deliveries: `POST /pubsub/{topic}` authenticates the request (when configured),
//! decodes the envelope and runs the topic's handler inside the request. A 2xx answer acks;
//! anything else makes Pub/Sub redeliver with backoff, then dead-letter.
//!
//! `POST /pubsub/cloud-builds` takes Cloud Build's own notifications (not DevGem messages):
//! they wake the builds this process waits on, and are always acked, since a notification
//! that is not ours or that came twice has nothing to retry.

use devgem_gcp::{DEAD_LETTER_TOPIC, PushAuth, PushEnvelope};
use devgem_gcp_run::BuildNotifications;
use devgem_http::{Request, Response, error, read_body};
use devgem_ports::{HandlerError, MessageHandler};
use http::StatusCode;
use std::collections::HashMap;
use std::sync::Arc;

/// Pub/Sub caps messages at 10 MB; ours are tiny, so anything large is not ours.
const MAX_PUSH_BODY: usize = 1 << 20;

/// The topic Cloud Build publishes build changes to.
pub const CLOUD_BUILDS_TOPIC: &str = "cloud-builds";

pub struct PushRoutes {
    handlers: HashMap<&'static str, Arc<dyn MessageHandler>>,
    auth: Option<PushAuth>,
    builds: Option<BuildNotifications>,
}

impl PushRoutes {
    pub fn new(
        handlers: HashMap<&'static str, Arc<dyn MessageHandler>>,
        auth: Option<PushAuth>,
    ) -> Self {
        Self {
            handlers,
            auth,
            builds: None,
        }
    }

    /// Also takes Cloud Build's notifications at `/pubsub/cloud-builds`.
    pub fn with_build_notifications(mut self, builds: Option<BuildNotifications>) -> Self {
        self.builds = builds;
        self
    }

    pub fn serves(&self, topic: &str) -> bool {
        self.handlers.contains_key(topic) || (topic == CLOUD_BUILDS_TOPIC && self.builds.is_some())
    }

    pub async fn handle(&self, topic: &str, req: Request) -> Response {
        if let Err(refused) = self.authenticate(topic, &req).await {
            return refused;
        }
        if let (CLOUD_BUILDS_TOPIC, Some(builds)) = (topic, &self.builds) {
            let body = match read_body(req, MAX_PUSH_BODY).await {
                Ok(body) => body,
                Err(res) => return res,
            };
            match builds.on_push(&body) {
                Ok(outcome) => tracing::debug!(?outcome, "cloud-builds notification"),
                Err(e) => tracing::warn!(error = %e, "undecodable cloud-builds notification"),
            }
            return devgem_http::text(StatusCode::NO_CONTENT, "");
        }
        let Some(handler) = self.handlers.get(topic) else {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("this function does not consume the topic {topic:?}"),
                Some("point the push subscription at the function that serves it".into()),
            );
        };
        self.deliver(topic, handler.as_ref(), req).await
    }

    /// The push's OIDC token checked, when push authentication is configured.
    async fn authenticate(&self, topic: &str, req: &Request) -> Result<(), Response> {
        if let Some(auth) = &self.auth {
            let header = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if let Err(e) = auth.verify_header(header).await {
                if e.is_unavailable() {
                    return Err(error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        e.to_string(),
                        None,
                    ));
                }
                tracing::warn!(%topic, error = %e, "push request refused");
                return Err(error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    e.to_string(),
                    None,
                ));
            }
        }
        Ok(())
    }

    async fn deliver(&self, topic: &str, handler: &dyn MessageHandler, req: Request) -> Response {
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
