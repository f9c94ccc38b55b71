//! Picks the adapters from configuration and connects the stage functions to the bus.
//!
//! - Embedded (the default): SQLite, the in-process bus, a folder, under `DEVGEM_HOME`.
//! - Distributed (`GOOGLE_CLOUD_PROJECT` set): Firestore, Pub/Sub (push deliveries arrive over
//!   HTTP at `/pubsub/{topic}`) and Cloud Storage — the emulators when `*_EMULATOR_HOST` are set.
//!
//! Secrets, the source fetcher, the builder and the runtime are this machine's in both modes
//! for now; Secret Manager, Cloud Build and Cloud Run adapters plug in here.

use crate::config::Config;
use anyhow::Context;
use devgem_app::{DeadLetterHandler, InstanceId, Services, StageHandler};
use devgem_domain::Stage;
use devgem_embedded::{BusOptions, FileSecrets, FolderObjectStore, InProcessBus, SqliteStore};
use devgem_gcp::{DEAD_LETTER_TOPIC, GcpConfig};
use devgem_local::{FetchConfig, LocalSourceFetcher, NativeBuilder, ProcessRuntime, RunConfig};
use devgem_ports::{MessageBus, MessageHandler, ObjectStore, SecretValue, StateStore};
use std::collections::HashMap;
use std::sync::Arc;

/// The services a process runs with, and how its messages arrive.
pub struct Wiring {
    pub services: Services,
    /// Set in embedded mode: deliveries happen inside this process.
    pub local_bus: Option<InProcessBus>,
    /// Set in distributed mode.
    pub gcp: Option<GcpConfig>,
}

fn distributed_requested() -> bool {
    std::env::var("GOOGLE_CLOUD_PROJECT").is_ok_and(|p| !p.trim().is_empty())
}

/// Builds the services the configuration asks for.
pub async fn from_config(config: &Config) -> anyhow::Result<Wiring> {
    let home = &config.home;
    std::fs::create_dir_all(home)
        .with_context(|| format!("cannot create DEVGEM_HOME {}", home.display()))?;
    let Backbone {
        store,
        bus,
        objects,
        local_bus,
        gcp,
    } = if distributed_requested() {
        google_backbone().await?
    } else {
        embedded_backbone(config)?
    };
    let runtime = ProcessRuntime::with_config(
        home.join("apps"),
        RunConfig {
            ready_timeout: config.ready_timeout,
            ..RunConfig::default()
        },
    );
    let services = Services {
        store,
        bus,
        objects,
        secrets: Arc::new(FileSecrets::new(home.join("secrets.json"))),
        source: Arc::new(LocalSourceFetcher::new(FetchConfig {
            github_token: config.github_token.clone().map(SecretValue::new),
            ..FetchConfig::default()
        })),
        builder: Arc::new(NativeBuilder::new(home.join("builds"))),
        runtime: Arc::new(runtime),
        instance: InstanceId::current(),
        lease: config.lease,
    };
    if let Some(bus) = &local_bus {
        for (topic, handler) in handlers(&services) {
            match Stage::from_topic(topic) {
                Some(stage) => bus.subscribe(stage, handler),
                None => bus.set_dead_letter(handler),
            }
        }
    }
    Ok(Wiring {
        services,
        local_bus,
        gcp,
    })
}

/// The ports that differ between the two modes.
struct Backbone {
    store: Arc<dyn StateStore>,
    bus: Arc<dyn MessageBus>,
    objects: Arc<dyn ObjectStore>,
    local_bus: Option<InProcessBus>,
    gcp: Option<GcpConfig>,
}

async fn google_backbone() -> anyhow::Result<Backbone> {
    let gcp = GcpConfig::from_env().map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let store = gcp
        .state_store()
        .await
        .map_err(|e| anyhow::anyhow!("Firestore: {e}"))?;
    let bus = gcp
        .message_bus()
        .await
        .map_err(|e| anyhow::anyhow!("Pub/Sub: {e}"))?;
    let objects = gcp
        .object_store()
        .await
        .map_err(|e| anyhow::anyhow!("Cloud Storage: {e}"))?;
    Ok(Backbone {
        store,
        bus,
        objects,
        local_bus: None,
        gcp: Some(gcp),
    })
}

fn embedded_backbone(config: &Config) -> anyhow::Result<Backbone> {
    let home = &config.home;
    let store = SqliteStore::open(&home.join("devgem.db"))
        .map_err(|e| anyhow::anyhow!("cannot open the state store in {}: {e}", home.display()))?;
    let bus = InProcessBus::new(BusOptions {
        deliver_twice: config.deliver_twice,
        ..BusOptions::default()
    });
    Ok(Backbone {
        store: Arc::new(store),
        bus: Arc::new(bus.clone()),
        objects: Arc::new(FolderObjectStore::new(home.join("objects"))),
        local_bus: Some(bus),
        gcp: None,
    })
}

/// Every message handler by the topic it consumes.
pub fn handlers(services: &Services) -> HashMap<&'static str, Arc<dyn MessageHandler>> {
    let mut map: HashMap<&'static str, Arc<dyn MessageHandler>> = HashMap::new();
    map.insert(
        Stage::Analyze.topic(),
        Arc::new(StageHandler::new(
            services.clone(),
            devgem_fn_analyze::Analyze,
        )),
    );
    map.insert(
        Stage::Build.topic(),
        Arc::new(StageHandler::new(
            services.clone(),
            devgem_fn_build_trigger::BuildTrigger,
        )),
    );
    map.insert(
        Stage::Deploy.topic(),
        Arc::new(StageHandler::new(
            services.clone(),
            devgem_fn_deploy::Deploy,
        )),
    );
    map.insert(
        DEAD_LETTER_TOPIC,
        Arc::new(DeadLetterHandler::new(services.clone())),
    );
    map
}
