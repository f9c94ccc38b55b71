//! The stage runner's rules, driven step by step on the real SQLite store and the real local
//! adapters, with a stage whose work only counts its runs: a message runs the work once,
//! duplicates and late messages change nothing, a live claim makes others wait, a dead one is
//! taken over, and an abort wins over the work.

use async_trait::async_trait;
use devgem_app::clock::{ManualClock, RandomIds};
use devgem_app::{Core, InstanceId, Services, StageContext, StageError, StageHandler, StageWork};
use devgem_domain::{
    Deployment, DeploymentId, EventKind, NewDeployment, NewEvent, ServiceName, Source, Stage,
    StageMessage, StageResult, Status, Step,
};
use devgem_embedded::{BusOptions, FileSecrets, FolderObjectStore, InProcessBus, SqliteStore};
use devgem_local::ProcessRuntime;
use devgem_ports::{Clock, Delivery, HandlerError, IdSource, MessageHandler, StateStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts runs; optionally waits for cancellation instead of finishing.
struct Counting {
    runs: Arc<AtomicUsize>,
    block_until_cancelled: bool,
}

#[async_trait]
impl StageWork for Counting {
    fn stage(&self) -> Stage {
        Stage::Analyze
    }

    async fn run(&self, ctx: &StageContext) -> Result<StageResult, StageError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if self.block_until_cancelled {
            ctx.cancel.cancelled().await;
            return Err(StageError::Cancelled);
        }
        Ok(StageResult {
            summary: Some("counted".into()),
            ..Default::default()
        })
    }
}

struct World {
    _dir: tempfile::TempDir,
    services: Services,
    store: Arc<SqliteStore>,
    /// The clock every lease is measured on; tests move it instead of sleeping.
    clock: Arc<ManualClock>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let bus = InProcessBus::new(BusOptions::default());
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let services = Services {
        core: Core {
            store: store.clone(),
            bus: Arc::new(bus),
            clock: clock.clone(),
            ids: Arc::new(RandomIds),
            instance: InstanceId::current(&RandomIds),
            lease: Duration::from_secs(30),
        },
        objects: Arc::new(FolderObjectStore::new(dir.path().join("objects"))),
        secrets: Arc::new(FileSecrets::new(dir.path().join("secrets.json"))),
        runtime: Arc::new(ProcessRuntime::new(
            dir.path().join("apps"),
            Arc::new(FileSecrets::new(dir.path().join("secrets.json"))),
        )),
        source: Arc::new(devgem_local::LocalSourceFetcher::new(Default::default())),
        sources: devgem_app::SourcePolicy::default(),
    };
    World {
        _dir: dir,
        services,
        store,
        clock,
    }
}

async fn queued(store: &SqliteStore) -> Deployment {
    let d = Deployment::new(
        RandomIds.deployment_id(),
        NewDeployment {
            owner: "local".into(),
            source: Source {
                location: "/nowhere".into(),
                archive: None,
                branch: None,
                commit: None,
                subdir: None,
            },
            service_name: ServiceName::derive_from("app"),
            env_names: vec![],
        },
        chrono::Utc::now(),
    );
    store.create(&d).await.unwrap();
    d
}

fn delivery(id: &DeploymentId) -> Delivery {
    Delivery {
        message: StageMessage::new(id.clone(), Stage::Analyze),
        message_id: "m-1".into(),
        attempt: Some(1),
    }
}

fn handler(world: &World, runs: &Arc<AtomicUsize>, block: bool) -> StageHandler<Counting> {
    StageHandler::new(
        world.services.core.clone(),
        Counting {
            runs: runs.clone(),
            block_until_cancelled: block,
        },
    )
}

#[tokio::test]
async fn a_message_runs_the_stage_once_and_a_late_duplicate_changes_nothing() {
    let w = world();
    let d = queued(&w.store).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let h = handler(&w, &runs, false);
    h.handle(delivery(&d.id)).await.unwrap();
    let after = w.store.get(&d.id).await.unwrap().unwrap();
    assert_eq!(after.status, Status::Building);
    assert_eq!(after.summary.as_deref(), Some("counted"));
    assert!(after.claim.is_none());
    let events_before = w.store.events(&d.id, 0).await.unwrap().len();

    h.handle(delivery(&d.id)).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let again = w.store.get(&d.id).await.unwrap().unwrap();
    assert_eq!(
        again.version, after.version,
        "a duplicate wrote to the deployment"
    );
    assert_eq!(w.store.events(&d.id, 0).await.unwrap().len(), events_before);
}

#[tokio::test]
async fn a_live_claim_makes_a_second_worker_retry_and_an_expired_one_is_taken_over() {
    let w = world();
    let mut d = queued(&w.store).await;
    // Another host's worker holds the stage; its claim runs out in 30 s.
    d.claim(
        "other-host/1/abc#1",
        Stage::Analyze,
        chrono::Duration::seconds(30),
        w.clock.now(),
    )
    .unwrap();
    w.store.update(&d).await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let h = handler(&w, &runs, false);
    assert!(matches!(
        h.handle(delivery(&d.id)).await,
        Err(HandlerError::Retry(_))
    ));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    w.clock.advance(Duration::from_secs(29));
    assert!(matches!(
        h.handle(delivery(&d.id)).await,
        Err(HandlerError::Retry(_))
    ));
    w.clock.advance(Duration::from_secs(1)); // the lease runs out
    h.handle(delivery(&d.id)).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let events = w.store.events(&d.id, 0).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("Resuming the analyze stage"))
    );
}

#[tokio::test]
async fn abort_cancels_running_work_and_ends_the_deployment_aborted() {
    let w = world();
    let d = queued(&w.store).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let h = Arc::new(handler(&w, &runs, true));
    let running = {
        let h = h.clone();
        let id = d.id.clone();
        tokio::spawn(async move { h.handle(delivery(&id)).await })
    };
    // Wait for the work to start, then abort.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while runs.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "work never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    devgem_app::abort_deployment(&w.services, &d.id)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the work was not cancelled")
        .unwrap()
        .unwrap();
    let after = w.store.get(&d.id).await.unwrap().unwrap();
    assert_eq!(after.status, Status::Aborted);
    let last = w.store.events(&d.id, 0).await.unwrap().pop().unwrap();
    assert_eq!(last.status, Some(Status::Aborted));
}

#[tokio::test]
async fn messages_for_finished_or_unknown_deployments_are_acked_without_work() {
    let w = world();
    let mut d = queued(&w.store).await;
    d.transition(Status::Failed, w.clock.now()).unwrap();
    w.store.update(&d).await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let h = handler(&w, &runs, false);
    h.handle(delivery(&d.id)).await.unwrap();
    h.handle(delivery(&RandomIds.deployment_id()))
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// Shows two steps completed, as the analyze stage does.
struct Reporting;

#[async_trait]
impl StageWork for Reporting {
    fn stage(&self) -> Stage {
        Stage::Analyze
    }

    async fn run(&self, ctx: &StageContext) -> Result<StageResult, StageError> {
        for step in [Step::RepositoryAccess, Step::CodeAnalysis] {
            ctx.reporter.step_started(step, "working");
            ctx.reporter
                .step_completed(step, "done by the second attempt");
        }
        Ok(StageResult::default())
    }
}

#[tokio::test]
async fn a_resumed_attempt_does_not_show_a_step_completed_twice() {
    let w = world();
    let mut d = queued(&w.store).await;
    // An earlier attempt on another host completed the first step, then stopped (its store
    // went away before it could commit) and its claim ran out.
    d.claim(
        "other-host/1/abc#1",
        Stage::Analyze,
        chrono::Duration::seconds(30),
        w.clock.now(),
    )
    .unwrap();
    w.store.update(&d).await.unwrap();
    for kind in [EventKind::StepStarted, EventKind::StepCompleted] {
        w.store
            .append_event(
                &d.id,
                NewEvent::new(kind, Some(Step::RepositoryAccess), "first attempt", 5),
            )
            .await
            .unwrap();
    }
    w.clock.advance(Duration::from_secs(30)); // the lease runs out

    StageHandler::new(w.services.core.clone(), Reporting)
        .handle(delivery(&d.id))
        .await
        .unwrap();
    let events = w.store.events(&d.id, 0).await.unwrap();
    let completed = |step: Step| {
        events
            .iter()
            .filter(|e| e.kind == EventKind::StepCompleted && e.step == Some(step))
            .count()
    };
    assert_eq!(completed(Step::RepositoryAccess), 1, "{events:#?}");
    assert_eq!(completed(Step::CodeAnalysis), 1, "{events:#?}");
    // What the second attempt said is still there, as output.
    assert!(events.iter().any(|e| e.kind == EventKind::Log
        && e.step == Some(Step::RepositoryAccess)
        && e.message == "done by the second attempt"));
}
