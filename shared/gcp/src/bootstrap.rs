//! Idempotent setup of the Pub/Sub resources the pipeline needs: one topic per stage, a
//! dead letter topic, a push subscription per stage pointing at the stage function, and a
//! push subscription of the dead letter topic.

use crate::config::{GcpConfig, anonymous_if};
use devgem_domain::Stage;
use google_cloud_pubsub::client::{SubscriptionAdmin, TopicAdmin};
use google_cloud_pubsub::model::{
    DeadLetterPolicy, PushConfig, RetryPolicy, Subscription, push_config::OidcToken,
};
use google_cloud_wkt::{Duration, FieldMask};

/// The short name of the dead letter topic (prefixed like the stage topics).
pub const DEAD_LETTER_TOPIC: &str = "dead-letter";
/// Pub/Sub's own bounds for `maxDeliveryAttempts`.
const MIN_ATTEMPTS: i32 = 5;
const MAX_ATTEMPTS: i32 = 100;
/// Backoff between redeliveries of a nacked message.
const MIN_BACKOFF_SECS: i64 = 1;
const MAX_BACKOFF_SECS: i64 = 60;
/// For push, the ack deadline is also the HTTP timeout Pub/Sub gives the handler: the
/// maximum, because stages (fetching and analyzing a repository) can take minutes.
const ACK_DEADLINE_SECS: i32 = 600;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot create the Pub/Sub admin client: {0}")]
    Client(String),
    #[error("{what} failed: {cause}")]
    Api { what: String, cause: String },
    #[error(
        "subscription {subscription} exists for topic {actual}, not {expected}; delete it \
         (gcloud pubsub subscriptions delete {subscription}) and run bootstrap again"
    )]
    WrongTopic {
        subscription: String,
        expected: String,
        actual: String,
    },
}

/// What `bootstrap` did, resource by resource (full resource names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootstrapReport {
    pub topics_created: Vec<String>,
    pub topics_existing: Vec<String>,
    pub subscriptions_created: Vec<String>,
    /// Existed with a different push endpoint, token or policy, and were updated.
    pub subscriptions_updated: Vec<String>,
    pub subscriptions_unchanged: Vec<String>,
    /// Settings the server refused to change (e.g. the emulator), for the operator to read.
    pub warnings: Vec<String>,
}

/// Creates (or brings up to date) the topics `{prefix}analyze|build|deploy|dead-letter`, a push
/// subscription `{topic}-push` per stage in `endpoints` delivering to
/// `{base_url}/pubsub/{stage}` with a dead letter policy (`max_delivery_attempts`, clamped to
/// Pub/Sub's 5..=100) and a 1 s..60 s retry backoff, and, when `dead_letter_url` is given, a
/// push subscription of the dead letter topic delivering to `{dead_letter_url}/pubsub/dead-letter`.
/// With `config.push_auth` set, every subscription sends an OIDC token for that service
/// account and audience. Running it again changes nothing, or only what differs.
pub async fn bootstrap(
    config: &GcpConfig,
    endpoints: &[(Stage, String)],
    dead_letter_url: Option<&str>,
    max_delivery_attempts: i32,
) -> Result<BootstrapReport, BootstrapError> {
    let admin = Admin::new(config).await?;
    let mut report = BootstrapReport::default();

    let dead_letter_topic = config.topic_path(DEAD_LETTER_TOPIC);
    admin.ensure_topic(&dead_letter_topic, &mut report).await?;
    for stage in Stage::ALL {
        admin
            .ensure_topic(&config.topic_path(stage.topic()), &mut report)
            .await?;
    }

    let attempts = max_delivery_attempts.clamp(MIN_ATTEMPTS, MAX_ATTEMPTS);
    for (stage, base_url) in endpoints {
        let wanted = Subscription::new()
            .set_name(config.subscription_path(stage.topic()))
            .set_topic(config.topic_path(stage.topic()))
            .set_push_config(push_config(config, &push_url(base_url, stage.topic())))
            .set_ack_deadline_seconds(ACK_DEADLINE_SECS)
            .set_enable_message_ordering(config.ordering)
            .set_retry_policy(retry_policy())
            .set_dead_letter_policy(
                DeadLetterPolicy::new()
                    .set_dead_letter_topic(&dead_letter_topic)
                    .set_max_delivery_attempts(attempts),
            );
        admin.ensure_subscription(wanted, &mut report).await?;
    }
    if let Some(base_url) = dead_letter_url {
        // No dead letter policy here: a dead letter that cannot be handled stays on this
        // subscription (retained 7 days) rather than looping between topics.
        let wanted = Subscription::new()
            .set_name(config.subscription_path(DEAD_LETTER_TOPIC))
            .set_topic(&dead_letter_topic)
            .set_push_config(push_config(config, &push_url(base_url, DEAD_LETTER_TOPIC)))
            .set_ack_deadline_seconds(60)
            .set_retry_policy(retry_policy());
        admin.ensure_subscription(wanted, &mut report).await?;
    }
    Ok(report)
}

/// `{base}/pubsub/{short}`, the route the functions serve.
pub fn push_url(base_url: &str, short_topic: &str) -> String {
    format!("{}/pubsub/{short_topic}", base_url.trim_end_matches('/'))
}

fn push_config(config: &GcpConfig, endpoint: &str) -> PushConfig {
    let push = PushConfig::new().set_push_endpoint(endpoint);
    match &config.push_auth {
        Some(auth) => push.set_oidc_token(
            OidcToken::new()
                .set_service_account_email(&auth.service_account)
                .set_audience(&auth.audience),
        ),
        None => push,
    }
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy::new()
        .set_minimum_backoff(Duration::clamp(MIN_BACKOFF_SECS, 0))
        .set_maximum_backoff(Duration::clamp(MAX_BACKOFF_SECS, 0))
}

struct Admin {
    topics: TopicAdmin,
    subscriptions: SubscriptionAdmin,
}

fn api_error(what: impl Into<String>, e: impl std::fmt::Display) -> BootstrapError {
    BootstrapError::Api {
        what: what.into(),
        cause: e.to_string(),
    }
}

/// `true` for "already exists": HTTP 409 (the admin clients speak REST).
fn already_exists(e: &google_cloud_pubsub::Error) -> bool {
    e.http_status_code() == Some(409)
}

impl Admin {
    async fn new(config: &GcpConfig) -> Result<Self, BootstrapError> {
        let endpoint = config.pubsub_endpoint();
        let emulated = config.pubsub_emulator.is_some();
        let mut topics = TopicAdmin::builder();
        let mut subscriptions = SubscriptionAdmin::builder();
        if let Some(ep) = &endpoint {
            topics = topics.with_endpoint(ep.clone());
            subscriptions = subscriptions.with_endpoint(ep.clone());
        }
        if let Some(creds) = anonymous_if(emulated) {
            topics = topics.with_credentials(creds.clone());
            subscriptions = subscriptions.with_credentials(creds);
        }
        Ok(Self {
            topics: topics
                .build()
                .await
                .map_err(|e| BootstrapError::Client(e.to_string()))?,
            subscriptions: subscriptions
                .build()
                .await
                .map_err(|e| BootstrapError::Client(e.to_string()))?,
        })
    }

    async fn ensure_topic(
        &self,
        name: &str,
        report: &mut BootstrapReport,
    ) -> Result<(), BootstrapError> {
        match self.topics.create_topic().set_name(name).send().await {
            Ok(_) => report.topics_created.push(name.to_string()),
            Err(e) if already_exists(&e) => report.topics_existing.push(name.to_string()),
            Err(e) => return Err(api_error(format!("creating topic {name}"), e)),
        }
        Ok(())
    }

    async fn ensure_subscription(
        &self,
        wanted: Subscription,
        report: &mut BootstrapReport,
    ) -> Result<(), BootstrapError> {
        let name = wanted.name.clone();
        match self
            .subscriptions
            .create_subscription()
            .with_request(wanted.clone())
            .send()
            .await
        {
            Ok(_) => {
                report.subscriptions_created.push(name);
                return Ok(());
            }
            Err(e) if already_exists(&e) => {}
            Err(e) => return Err(api_error(format!("creating subscription {name}"), e)),
        }
        let existing = self
            .subscriptions
            .get_subscription()
            .set_subscription(&name)
            .send()
            .await
            .map_err(|e| api_error(format!("reading subscription {name}"), e))?;
        if existing.topic != wanted.topic {
            return Err(BootstrapError::WrongTopic {
                subscription: name,
                expected: wanted.topic,
                actual: existing.topic,
            });
        }
        let mut changed = false;
        if !same_push(existing.push_config.as_ref(), wanted.push_config.as_ref()) {
            self.subscriptions
                .modify_push_config()
                .set_subscription(&name)
                .set_or_clear_push_config(wanted.push_config.clone())
                .send()
                .await
                .map_err(|e| api_error(format!("updating the push config of {name}"), e))?;
            changed = true;
        }
        let mut mask = Vec::new();
        if existing.dead_letter_policy != wanted.dead_letter_policy {
            mask.push("dead_letter_policy");
        }
        if existing.retry_policy != wanted.retry_policy {
            mask.push("retry_policy");
        }
        if existing.ack_deadline_seconds != wanted.ack_deadline_seconds {
            mask.push("ack_deadline_seconds");
        }
        if existing.enable_message_ordering != wanted.enable_message_ordering {
            report.warnings.push(format!(
                "{name}: message ordering is {} but {} was asked; ordering is fixed at creation \
                 (delete the subscription and bootstrap again to change it)",
                existing.enable_message_ordering, wanted.enable_message_ordering
            ));
        }
        if !mask.is_empty() {
            let result = self
                .subscriptions
                .update_subscription()
                .set_subscription(wanted.clone())
                .set_update_mask(FieldMask::default().set_paths(mask.iter().copied()))
                .send()
                .await;
            match result {
                Ok(_) => changed = true,
                // The emulator does not implement every update; say so rather than fail the
                // whole bootstrap over a policy that only matters in production.
                Err(e) => report
                    .warnings
                    .push(format!("{name}: could not update {}: {e}", mask.join(", "))),
            }
        }
        if changed {
            report.subscriptions_updated.push(name);
        } else {
            report.subscriptions_unchanged.push(name);
        }
        Ok(())
    }
}

/// Whether two push configs deliver to the same endpoint with the same token.
fn same_push(a: Option<&PushConfig>, b: Option<&PushConfig>) -> bool {
    let endpoint = |p: Option<&PushConfig>| p.map(|p| p.push_endpoint.clone()).unwrap_or_default();
    let token = |p: Option<&PushConfig>| {
        p.and_then(|p| p.oidc_token())
            .map(|t| (t.service_account_email.clone(), t.audience.clone()))
    };
    endpoint(a) == endpoint(b) && token(a) == token(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_urls_join_cleanly() {
        assert_eq!(
            push_url("http://127.0.0.1:8080/", "build"),
            "http://127.0.0.1:8080/pubsub/build"
        );
        assert_eq!(
            push_url("https://x.run.app", "dead-letter"),
            "https://x.run.app/pubsub/dead-letter"
        );
    }

    #[test]
    fn push_configs_compare_by_endpoint_and_token() {
        let a = PushConfig::new().set_push_endpoint("http://a/pubsub/build");
        let b = PushConfig::new().set_push_endpoint("http://b/pubsub/build");
        assert!(same_push(Some(&a), Some(&a.clone())));
        assert!(!same_push(Some(&a), Some(&b)));
        let with_token = a
            .clone()
            .set_oidc_token(OidcToken::new().set_audience("aud"));
        assert!(!same_push(Some(&a), Some(&with_token)));
    }
}
