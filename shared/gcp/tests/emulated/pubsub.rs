//! PubSubBus, push delivery and bootstrap against the Pub/Sub emulator.

use crate::require_emulators;
use crate::support::{PushServer, median, unique_config};
use devgem_domain::{DeploymentId, Stage, StageMessage};
use devgem_gcp::{AttemptCounter, GcpConfig, PubSubBus, PushEnvelope, bootstrap, decode_push};
use devgem_ports::MessageBus;
use std::time::Instant;

fn endpoints(url: &str) -> Vec<(Stage, String)> {
    Stage::ALL
        .into_iter()
        .map(|s| (s, url.to_string()))
        .collect()
}

async fn setup(config: &GcpConfig, server: &PushServer) -> PubSubBus {
    let report = bootstrap(config, &endpoints(&server.url), Some(&server.url), 5)
        .await
        .unwrap();
    assert_eq!(report.topics_created.len(), 4, "{report:?}");
    assert_eq!(report.subscriptions_created.len(), 4, "{report:?}");
    PubSubBus::new(config).await.unwrap()
}

#[tokio::test]
async fn a_published_stage_message_is_pushed_and_decodes_back() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let config = unique_config(emu, "push");
    let mut server = PushServer::start().await;
    let bus = setup(&config, &server).await;

    let message = StageMessage::new(DeploymentId::from_uuid(uuid::Uuid::now_v7()), Stage::Build);
    let id = bus.publish_with_id(&message).await.unwrap();
    let got = server.next(20).await.expect("a push delivery");
    assert_eq!(got.path, "/pubsub/build");
    let envelope = PushEnvelope::parse(&got.body).unwrap();
    assert_eq!(envelope.message.message_id, id);
    assert_eq!(envelope.subscription, config.subscription_path("build"));
    assert_eq!(
        envelope
            .message
            .attributes
            .get("deployment_id")
            .map(String::as_str),
        Some(message.deployment_id.as_str())
    );
    assert_eq!(
        envelope.message.attributes.get("stage").map(String::as_str),
        Some("build")
    );
    let delivery = decode_push(&got.body).unwrap();
    assert_eq!(delivery.message, message);
    eprintln!(
        "OBSERVED emulator push: deliveryAttempt={:?}, orderingKey={:?}, Authorization={:?}",
        envelope.delivery_attempt, envelope.message.ordering_key, got.authorization
    );

    // Every stage goes to its own route.
    for stage in [Stage::Analyze, Stage::Deploy] {
        bus.publish(&StageMessage::new(message.deployment_id.clone(), stage))
            .await
            .unwrap();
        let got = server.next(20).await.expect("a push delivery");
        assert_eq!(
            got.path,
            format!("/pubsub/{}", decode_push(&got.body).unwrap().message.stage)
        );
    }
}

#[tokio::test]
async fn publish_to_push_handler_latency() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let config = unique_config(emu, "latency");
    let mut server = PushServer::start().await;
    let bus = setup(&config, &server).await;
    let mut times = Vec::new();
    let mut publish_times = Vec::new();
    for _ in 0..50 {
        let message = StageMessage::new(
            DeploymentId::from_uuid(uuid::Uuid::now_v7()),
            Stage::Analyze,
        );
        let t = Instant::now();
        bus.publish(&message).await.unwrap();
        publish_times.push(t.elapsed());
        let got = server.next(20).await.expect("a push delivery");
        times.push(got.at - t);
        assert_eq!(decode_push(&got.body).unwrap().message, message);
    }
    eprintln!(
        "MEASURE publish() until the emulator accepted it: median {:?} (n=50)",
        median(publish_times)
    );
    eprintln!(
        "MEASURE publish -> push handler: median {:?}, min {:?}, max {:?} (n=50)",
        median(times.clone()),
        times.iter().min().unwrap(),
        times.iter().max().unwrap()
    );
}

#[tokio::test]
async fn a_500_answer_is_redelivered_with_the_same_message_id() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let config = unique_config(emu, "retry");
    let mut server = PushServer::start().await;
    let bus = setup(&config, &server).await;
    let message = StageMessage::new(DeploymentId::from_uuid(uuid::Uuid::now_v7()), Stage::Deploy);
    server.fail_first(&message.deployment_id, 2);
    bus.publish(&message).await.unwrap();

    let counter = AttemptCounter::default();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let got = server.next(30).await.expect("a (re)delivery");
        let delivery = counter.annotate(decode_push(&got.body).unwrap());
        assert_eq!(delivery.message, message);
        seen.push((delivery.message_id.clone(), delivery.attempt, got.at));
    }
    assert!(
        seen.iter().all(|(id, _, _)| *id == seen[0].0),
        "same message id: {seen:?}"
    );
    assert_eq!(
        seen.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![Some(1), Some(2), Some(3)]
    );
    // Acked on the third try: nothing more comes.
    assert!(server.next(4).await.is_none(), "no delivery after the ack");
    eprintln!(
        "OBSERVED redelivery gaps after 500: {:?}, {:?}",
        seen[1].2 - seen[0].2,
        seen[2].2 - seen[1].2
    );
}

#[tokio::test]
async fn bootstrap_is_idempotent_and_moves_endpoints() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let config = unique_config(emu, "boot");
    let first = PushServer::start().await;
    let bus = setup(&config, &first).await;

    let again = bootstrap(&config, &endpoints(&first.url), Some(&first.url), 5)
        .await
        .unwrap();
    assert!(again.topics_created.is_empty(), "{again:?}");
    assert_eq!(again.topics_existing.len(), 4);
    assert!(again.subscriptions_created.is_empty(), "{again:?}");
    assert_eq!(again.subscriptions_unchanged.len(), 4, "{again:?}");
    eprintln!("OBSERVED bootstrap rerun warnings: {:?}", again.warnings);

    // The functions moved: the subscriptions follow.
    let mut second = PushServer::start().await;
    let moved = bootstrap(&config, &endpoints(&second.url), Some(&second.url), 5)
        .await
        .unwrap();
    assert_eq!(moved.subscriptions_updated.len(), 4, "{moved:?}");
    let message = StageMessage::new(DeploymentId::from_uuid(uuid::Uuid::now_v7()), Stage::Build);
    bus.publish(&message).await.unwrap();
    let got = second
        .next(20)
        .await
        .expect("delivered to the new endpoint");
    assert_eq!(decode_push(&got.body).unwrap().message, message);
}

#[tokio::test]
async fn ordered_publishing_is_accepted_and_keeps_order() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let mut config = unique_config(emu, "order");
    config.ordering = true;
    let mut server = PushServer::start().await;
    let bus = setup(&config, &server).await;
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let stages = [Stage::Analyze, Stage::Analyze, Stage::Analyze];
    let mut ids = Vec::new();
    for stage in stages {
        ids.push(
            bus.publish_with_id(&StageMessage::new(id.clone(), stage))
                .await
                .unwrap(),
        );
    }
    let mut got_ids = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..3 {
        let got = server.next(20).await.expect("delivery");
        let env = PushEnvelope::parse(&got.body).unwrap();
        keys.push(env.message.ordering_key.clone());
        got_ids.push(env.message.message_id);
    }
    assert_eq!(got_ids, ids, "delivered in publish order");
    eprintln!("OBSERVED ordering keys in push envelopes: {keys:?}");
}

/// The emulator honours dead letter policies (pubsub-emulator 0.8.20): after
/// `max_delivery_attempts` failed pushes (backoff per the retry policy) the message goes to
/// the dead letter topic, with `CloudPubSubDeadLetterSource*` attributes, still without
/// `deliveryAttempt` in the envelope.
#[tokio::test]
async fn a_message_failing_every_attempt_is_dead_lettered() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let config = unique_config(emu, "dlq");
    let mut server = PushServer::start().await;
    let bus = setup(&config, &server).await;
    let message = StageMessage::new(DeploymentId::from_uuid(uuid::Uuid::now_v7()), Stage::Build);
    server.fail_first(&message.deployment_id, u32::MAX);
    bus.publish(&message).await.unwrap();
    let started = Instant::now();
    let mut stage_deliveries = Vec::new();
    let dead = loop {
        let got = server.next(60).await.expect("a delivery or a dead letter");
        let env = PushEnvelope::parse(&got.body).unwrap();
        if got.path == "/pubsub/dead-letter" {
            break env;
        }
        assert_eq!(got.path, "/pubsub/build");
        stage_deliveries.push(got.at - started);
    };
    eprintln!(
        "OBSERVED dead letter after {:?}: stage deliveries at {stage_deliveries:?}; attributes {:?}; deliveryAttempt {:?}",
        started.elapsed(),
        dead.message.attributes,
        dead.delivery_attempt
    );
    assert_eq!(stage_deliveries.len(), 5, "max_delivery_attempts = 5");
    let info = dead.dead_letter_info().expect("dead letter attributes");
    assert_eq!(info.delivery_count, Some(5));
    assert_eq!(
        info.source_subscription.as_deref(),
        Some(
            config
                .subscription_path("build")
                .rsplit('/')
                .next()
                .unwrap()
        )
    );
    assert_eq!(
        dead.delivery().unwrap().message,
        message,
        "the payload is unchanged"
    );
}

/// The emulator accepts OIDC push settings but sends no token (so production verification
/// is tested with self-signed tokens in tests/oidc.rs).
#[tokio::test]
async fn oidc_push_settings_are_accepted_but_no_token_is_sent() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let mut config = unique_config(emu, "oidc");
    config.push_auth = Some(devgem_gcp::PushAuthConfig {
        audience: "https://devgem.example/pubsub".into(),
        service_account: "pubsub-push@devgem-local.iam.gserviceaccount.com".into(),
        jwks_url: "http://127.0.0.1:9/certs".into(),
    });
    let mut server = PushServer::start().await;
    let bus = setup(&config, &server).await;
    let message = StageMessage::new(
        DeploymentId::from_uuid(uuid::Uuid::now_v7()),
        Stage::Analyze,
    );
    bus.publish(&message).await.unwrap();
    let got = server.next(20).await.expect("a push delivery");
    assert_eq!(decode_push(&got.body).unwrap().message, message);
    assert_eq!(got.authorization, None);
}

#[tokio::test]
async fn publishing_to_a_missing_topic_fails_quickly() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let config = unique_config(emu, "missing");
    let bus = PubSubBus::new(&config).await.unwrap();
    let t = Instant::now();
    let result = bus
        .publish(&StageMessage::new(
            DeploymentId::from_uuid(uuid::Uuid::now_v7()),
            Stage::Build,
        ))
        .await;
    assert!(
        matches!(result, Err(devgem_ports::BusError::Unavailable(_))),
        "{result:?}"
    );
    eprintln!(
        "OBSERVED publish to a missing topic failed after {:?}: {result:?}",
        t.elapsed()
    );
}
