//! Picks the adapters from configuration and connects the stage functions to the bus.
//!
//! Each port's adapter comes from [`Config::adapters`]: the embedded ones (SQLite, the
//! in-process bus, a folder, under `DEVGEM_HOME`) or Google's (Firestore, Pub/Sub with push
//! deliveries over HTTP at `/pubsub/{topic}`, Cloud Storage; the emulators when
//! `*_EMULATOR_HOST` are set). The builder and the runtime are this machine's (natively, or on
//! a Docker engine at `DOCKER_HOST`) or Google's (Cloud Build, Cloud Run); the secrets follow
//! the runtime (Secret Manager for Cloud Run, the owner-only file otherwise).

use crate::config::{BuilderKind, BusKind, Config, ObjectsKind, RuntimeKind, StoreKind};
use anyhow::Context;
use devgem_app::clock::{RandomIds, SystemClock};
use devgem_app::{Core, DeadLetterHandler, InstanceId, Services, StageHandler};
use devgem_docker::{DockerBuilder, DockerRunConfig, DockerRuntime, Engine};
use devgem_domain::Stage;
use devgem_embedded::{BusOptions, FileSecrets, FolderObjectStore, InProcessBus, SqliteStore};
use devgem_gcp::{DEAD_LETTER_TOPIC, GcpConfig};
use devgem_local::{FetchConfig, LocalSourceFetcher, NativeBuilder, ProcessRuntime, RunConfig};
use devgem_ports::{
    Builder, IdSource, MessageBus, MessageHandler, ObjectStore, Runtime, SecretValue, Secrets,
    SourceFetcher, StateStore,
};
use std::collections::HashMap;
use std::sync::Arc;

/// The services a process runs with, and how its messages arrive.
pub struct Wiring {
    /// The ports of the user's commands (and, inside them, the state machine's core).
    pub services: Services,
    /// The ports only the stages use.
    pub source: Arc<dyn SourceFetcher>,
    pub builder: Arc<dyn Builder>,
    /// Where built images go.
    pub image_repository: String,
    /// Set with the in-process bus: deliveries happen inside this process.
    pub local_bus: Option<InProcessBus>,
    /// Set when any Google adapter is used.
    pub gcp: Option<GcpConfig>,
    /// With Cloud Build: where `cloud-builds` pushes wake the builds this process waits on.
    pub build_notifications: Option<devgem_gcp_run::BuildNotifications>,
    /// With a configured language model: the analyze stage's second opinion.
    pub advisor: Option<devgem_llm::Advisor>,
}

/// Builds the services the configuration asks for, each port's adapter on its own.
pub async fn from_config(config: &Config) -> anyhow::Result<Wiring> {
    let home = &config.home;
    std::fs::create_dir_all(home)
        .with_context(|| format!("cannot create DEVGEM_HOME {}", home.display()))?;
    let gcp = || {
        config.gcp.as_ref().ok_or_else(|| {
            anyhow::anyhow!("configuration: a Google adapter needs GOOGLE_CLOUD_PROJECT")
        })
    };
    let cloud = || {
        config.cloud.as_ref().ok_or_else(|| {
            anyhow::anyhow!("configuration: Cloud Build and Cloud Run need GOOGLE_CLOUD_PROJECT")
        })
    };
    let store: Arc<dyn StateStore> = match config.adapters.store {
        StoreKind::Sqlite => Arc::new(SqliteStore::open(&home.join("devgem.db")).map_err(|e| {
            anyhow::anyhow!("cannot open the state store in {}: {e}", home.display())
        })?),
        StoreKind::Firestore => gcp()?
            .state_store()
            .await
            .map_err(|e| anyhow::anyhow!("Firestore: {e}"))?,
    };
    let (bus, local_bus): (Arc<dyn MessageBus>, _) = match config.adapters.bus {
        BusKind::Local => {
            let bus = InProcessBus::new(BusOptions {
                deliver_twice: config.deliver_twice,
                ..BusOptions::default()
            });
            (Arc::new(bus.clone()), Some(bus))
        }
        BusKind::PubSub => (
            gcp()?
                .message_bus()
                .await
                .map_err(|e| anyhow::anyhow!("Pub/Sub: {e}"))?,
            None,
        ),
    };
    let objects: Arc<dyn ObjectStore> = match config.adapters.objects {
        ObjectsKind::Folder => Arc::new(FolderObjectStore::new(home.join("objects"))),
        ObjectsKind::Gcs => gcp()?
            .object_store()
            .await
            .map_err(|e| anyhow::anyhow!("Cloud Storage: {e}"))?,
    };
    let mut build_notifications = None;
    let builder: Arc<dyn Builder> = match config.adapters.builder {
        BuilderKind::Native => Arc::new(NativeBuilder::new(home.join("builds"), objects.clone())),
        BuilderKind::Docker => Arc::new(DockerBuilder::new(
            Engine::from_env(),
            objects.clone(),
            home.join("builds"),
        )),
        BuilderKind::CloudBuild => {
            // Owners' GitHub tokens are in Secret Manager only where it is the secrets port.
            let owner_tokens = config.adapters.runtime == RuntimeKind::CloudRun;
            let builder =
                devgem_gcp_run::CloudBuildBuilder::new(cloud()?, objects.clone(), owner_tokens)
                    .await
                    .map_err(|e| anyhow::anyhow!("Cloud Build: {e}"))?;
            build_notifications = Some(builder.notifications());
            Arc::new(builder)
        }
    };
    // Cloud Run reads an app's secrets from Secret Manager; every other runtime from the file.
    let secrets: Arc<dyn Secrets> = match config.adapters.runtime {
        RuntimeKind::CloudRun => Arc::new(
            devgem_gcp_run::SecretManagerSecrets::new(cloud()?)
                .await
                .map_err(|e| anyhow::anyhow!("Secret Manager: {e}"))?,
        ),
        RuntimeKind::Process | RuntimeKind::Docker => {
            Arc::new(FileSecrets::new(home.join("secrets.json")))
        }
    };
    let runtime: Arc<dyn Runtime> = match config.adapters.runtime {
        RuntimeKind::Process => Arc::new(ProcessRuntime::with_config(
            home.join("apps"),
            secrets.clone(),
            RunConfig {
                ready_timeout: config.ready_timeout,
                ..RunConfig::default()
            },
        )),
        RuntimeKind::Docker => Arc::new(DockerRuntime::with_config(
            Engine::from_env(),
            secrets.clone(),
            DockerRunConfig {
                ready_timeout: config.ready_timeout,
                ..DockerRunConfig::default()
            },
        )),
        RuntimeKind::CloudRun => Arc::new(
            devgem_gcp_run::CloudRunRuntime::new(cloud()?)
                .await
                .map_err(|e| anyhow::anyhow!("Cloud Run: {e}"))?,
        ),
    };
    let ids: Arc<dyn IdSource> = Arc::new(RandomIds);
    let source: Arc<dyn SourceFetcher> = Arc::new(LocalSourceFetcher::new(FetchConfig {
        github_token: config
            .github_token
            .as_ref()
            .map(|t| SecretValue::new(t.expose())),
        github_url: config.github_url.clone(),
        policy: config.allowed_source_hosts.clone(),
        ..FetchConfig::default()
    }));
    let services = Services {
        core: Core {
            store,
            bus,
            clock: Arc::new(SystemClock),
            instance: InstanceId::current(ids.as_ref()),
            ids,
            lease: config.lease,
        },
        objects,
        secrets,
        runtime,
        source: source.clone(),
        sources: config.allowed_source_hosts.clone(),
    };
    let wiring = Wiring {
        services,
        source,
        builder,
        image_repository: config.image_repository.clone(),
        local_bus,
        gcp: config.gcp.clone(),
        build_notifications,
        advisor: advisor(config)?,
    };
    if let Some(bus) = &wiring.local_bus {
        for (topic, handler) in wiring.handlers() {
            match Stage::from_topic(topic) {
                Some(stage) => bus.subscribe(stage, handler),
                None => bus.set_dead_letter(handler),
            }
        }
    }
    Ok(wiring)
}

impl Wiring {
    /// Every message handler by the topic it consumes; each stage gets only its own ports.
    pub fn handlers(&self) -> HashMap<&'static str, Arc<dyn MessageHandler>> {
        let Services {
            core,
            objects,
            secrets,
            runtime,
            ..
        } = &self.services;
        let mut map: HashMap<&'static str, Arc<dyn MessageHandler>> = HashMap::new();
        map.insert(
            Stage::Analyze.topic(),
            Arc::new(StageHandler::new(
                core.clone(),
                devgem_fn_analyze::Analyze {
                    source: self.source.clone(),
                    objects: objects.clone(),
                    secrets: secrets.clone(),
                    reviewer: self.advisor.clone(),
                },
            )),
        );
        map.insert(
            Stage::Build.topic(),
            Arc::new(StageHandler::new(
                core.clone(),
                devgem_fn_build_trigger::BuildTrigger {
                    objects: objects.clone(),
                    builder: self.builder.clone(),
                    secrets: secrets.clone(),
                    image_repository: self.image_repository.clone(),
                },
            )),
        );
        map.insert(
            Stage::Deploy.topic(),
            Arc::new(StageHandler::new(
                core.clone(),
                devgem_fn_deploy::Deploy {
                    objects: objects.clone(),
                    runtime: runtime.clone(),
                    advisor: self.advisor.clone(),
                },
            )),
        );
        map.insert(
            DEAD_LETTER_TOPIC,
            Arc::new(DeadLetterHandler::new(core.clone())),
        );
        map
    }
}

/// The configured models (without the offline engine), which the stages ask for reviews
/// and recommendations.
fn advisor(config: &Config) -> anyhow::Result<Option<devgem_llm::Advisor>> {
    let models = config
        .llm
        .models_only()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    Ok(models.map(|chain| devgem_llm::Advisor {
        model: Arc::new(chain),
        bound: config.review_bound,
    }))
}

/// The chat's planner: the offline engine, or the configured models in a fallback chain that
/// ends in it. Credentials that cannot be used (Vertex without application default
/// credentials) are refused here, at start, naming the variable.
pub fn chat_planner(
    config: &Config,
) -> anyhow::Result<Arc<dyn devgem_fn_chat::conversation::Planner>> {
    if config.llm.provider == devgem_llm::Provider::Offline {
        return Ok(Arc::new(devgem_fn_chat::conversation::Offline));
    }
    let chain = config
        .llm
        .build()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    tracing::info!(models = ?chain.tiers(), "the chat asks these models, in order");
    Ok(Arc::new(devgem_fn_chat::model_planner::ModelPlanner::new(
        chain,
    )))
}
