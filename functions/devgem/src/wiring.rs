//! Picks the adapters from configuration and connects the stage functions to the bus.

use crate::config::Config;
use devgem_app::{DeadLetterHandler, InstanceId, Services, StageHandler};
use devgem_domain::Stage;
use devgem_embedded::{BusOptions, FileSecrets, FolderObjectStore, InProcessBus, SqliteStore};
use devgem_local::{FetchConfig, LocalSourceFetcher, NativeBuilder, ProcessRuntime, RunConfig};
use devgem_ports::SecretValue;
use std::sync::Arc;

/// The embedded defaults: everything on this machine, under `config.home`.
pub fn embedded(config: &Config) -> anyhow::Result<(Services, InProcessBus)> {
    let home = &config.home;
    std::fs::create_dir_all(home)
        .map_err(|e| anyhow::anyhow!("cannot create DEVGEM_HOME {}: {e}", home.display()))?;
    let store = SqliteStore::open(&home.join("devgem.db"))
        .map_err(|e| anyhow::anyhow!("cannot open the state store in {}: {e}", home.display()))?;
    let bus = InProcessBus::new(BusOptions {
        deliver_twice: config.deliver_twice,
        ..BusOptions::default()
    });
    let runtime = ProcessRuntime::with_config(
        home.join("apps"),
        RunConfig {
            ready_timeout: config.ready_timeout,
            ..RunConfig::default()
        },
    );
    let services = Services {
        store: Arc::new(store),
        bus: Arc::new(bus.clone()),
        objects: Arc::new(FolderObjectStore::new(home.join("objects"))),
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
    Ok((services, bus))
}

/// Routes each stage's messages to its function, and dead letters to the failure marker.
pub fn connect_stages(services: &Services, bus: &InProcessBus) {
    bus.subscribe(
        Stage::Analyze,
        Arc::new(StageHandler::new(
            services.clone(),
            devgem_fn_analyze::Analyze,
        )),
    );
    bus.subscribe(
        Stage::Build,
        Arc::new(StageHandler::new(
            services.clone(),
            devgem_fn_build_trigger::BuildTrigger,
        )),
    );
    bus.subscribe(
        Stage::Deploy,
        Arc::new(StageHandler::new(
            services.clone(),
            devgem_fn_deploy::Deploy,
        )),
    );
    bus.set_dead_letter(Arc::new(DeadLetterHandler::new(services.clone())));
}
