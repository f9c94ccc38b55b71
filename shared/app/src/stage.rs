//! The stage runner: turns a stage's work into an idempotent, resumable bus handler.
//!
//! ```text
//! message(deployment, stage)
//!   -> already done?  ack (and make sure the next stage was asked for)
//!   -> terminal or aborted?  ack
//!   -> claimed by a live worker?  nack: the bus redelivers later
//!   -> claim (conditional write), run the work while renewing the claim and watching for abort
//!   -> commit the result (conditional write), then publish the next stage's message
//! ```
//!
//! A worker that dies mid-stage leaves a claim that expires (or is seen to be gone, on the same
//! host); the redelivered message then runs the stage again from the start.

use crate::lifecycle::{finish_aborted, finish_failed, modify, stored_events};
use crate::reporter::Reporter;
use crate::services::Core;
use async_trait::async_trait;
use devgem_domain::{
    CommitRefused, EventKind, Failure, NewEvent, Stage, StageMessage, StageResult, Step,
};
use devgem_ports::{
    BuildError, CancellationToken, Delivery, HandlerError, MessageHandler, ObjectError,
    ObjectStore, RuntimeError, SecretError, SourceError, StoreError,
};
use std::time::Duration;

/// How a stage's work can end without producing output.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The user must change something: the deployment fails with this reason.
    #[error("{0}")]
    Failed(Failure),
    /// The deployment was aborted, or the claim was lost to another worker.
    #[error("cancelled")]
    Cancelled,
    /// Something that may pass (a service down): the message is redelivered.
    #[error("{0}")]
    Transient(String),
}

impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        StageError::Transient(e.to_string())
    }
}

impl From<ObjectError> for StageError {
    fn from(e: ObjectError) -> Self {
        StageError::Transient(e.to_string())
    }
}

impl From<SecretError> for StageError {
    fn from(e: SecretError) -> Self {
        StageError::Transient(e.to_string())
    }
}

/// The source fetcher serves the repository access step.
impl From<SourceError> for StageError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Rejected { reason, hint } => {
                StageError::Failed(Failure::new(Step::RepositoryAccess, reason).with_hint(hint))
            }
            SourceError::Unavailable(e) => StageError::Transient(e),
            SourceError::Cancelled => StageError::Cancelled,
        }
    }
}

/// The builder serves the container build step.
impl From<BuildError> for StageError {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::Failed { reason, hint } => {
                StageError::Failed(Failure::new(Step::ContainerBuild, reason).with_hint(hint))
            }
            BuildError::Unavailable(e) => StageError::Transient(e),
            BuildError::Cancelled => StageError::Cancelled,
        }
    }
}

/// The runtime serves the deploy step.
impl From<RuntimeError> for StageError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Failed { reason, hint } => {
                StageError::Failed(Failure::new(Step::Deploy, reason).with_hint(hint))
            }
            RuntimeError::Unavailable(e) => StageError::Transient(e),
            RuntimeError::Cancelled => StageError::Cancelled,
        }
    }
}

/// A task that could not finish (it panicked or was cancelled) may succeed on redelivery.
impl From<tokio::task::JoinError> for StageError {
    fn from(e: tokio::task::JoinError) -> Self {
        StageError::Transient(e.to_string())
    }
}

/// What a stage's work gets from the runner; its ports it holds itself.
pub struct StageContext {
    /// The deployment as it was when the stage claimed it.
    pub deployment: devgem_domain::Deployment,
    pub reporter: Reporter,
    /// Cancelled when the deployment is aborted or the claim is lost.
    pub cancel: CancellationToken,
}

/// Reads a JSON artifact an earlier stage stored; a missing one is retried, since the stage
/// that writes it may not have committed yet.
pub async fn load_json<T: serde::de::DeserializeOwned>(
    objects: &dyn ObjectStore,
    key: &str,
) -> Result<T, StageError> {
    let bytes = objects
        .get(key)
        .await?
        .ok_or_else(|| StageError::Transient(format!("{key} is missing")))?;
    serde_json::from_slice(&bytes).map_err(|e| StageError::Transient(format!("{key}: {e}")))
}

/// One stage's work; the runner does the bookkeeping around it.
#[async_trait]
pub trait StageWork: Send + Sync {
    fn stage(&self) -> Stage;
    async fn run(&self, ctx: &StageContext) -> Result<StageResult, StageError>;
}

/// A bus handler that runs `W` under the rules in the module doc.
pub struct StageHandler<W> {
    core: Core,
    work: W,
}

impl<W: StageWork> StageHandler<W> {
    pub fn new(core: Core, work: W) -> Self {
        Self { core, work }
    }
}

fn retry(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Retry(e.to_string())
}

#[async_trait]
impl<W: StageWork> MessageHandler for StageHandler<W> {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let stage = self.work.stage();
        let StageMessage {
            deployment_id: id,
            stage: asked,
        } = delivery.message;
        if asked != stage {
            tracing::warn!(%id, %asked, %stage, "message for another stage; dropped");
            return Ok(());
        }
        let core = &self.core;
        let Some(d) = core.store.get(&id).await.map_err(retry)? else {
            tracing::warn!(%id, %stage, "message for an unknown deployment; dropped");
            return Ok(());
        };

        if d.is_done(stage) {
            // The stage committed; make sure the next one was asked for, in case the publish
            // after the commit was lost.
            if let Some(next) = stage.next()
                && d.awaits(next)
                && d.claim.is_none()
            {
                core.bus
                    .publish(&StageMessage::new(id.clone(), next))
                    .await
                    .map_err(retry)?;
            }
            return Ok(());
        }
        if d.status.is_terminal() {
            return Ok(());
        }
        if d.abort_requested {
            finish_aborted(core, &id).await.map_err(retry)?;
            return Ok(());
        }
        if !d.awaits(stage) {
            return Err(retry(format!(
                "deployment is {}, not ready for {stage}",
                d.status
            )));
        }
        let now = core.clock.now();
        let me = core.instance.attempt(core.ids.as_ref());
        if let Some(claim) = d.live_claim(now, |h| core.instance.is_gone(h)) {
            return Err(retry(format!("{stage} is being run by {}", claim.holder)));
        }

        // Claim it. Losing this race means another worker claimed it first.
        let mut claimed = d.clone();
        claimed.claim(&me, stage, lease(core), now).map_err(retry)?;
        let claimed = match core.store.update(&claimed).await {
            Ok(stored) => stored,
            Err(StoreError::Conflict(_)) => return Err(retry("lost the claim race")),
            Err(e) => return Err(retry(e)),
        };
        let resumed = d.claim.is_some();
        let reporter = Reporter::new(core.store.clone(), id.clone(), claimed.progress);
        if resumed {
            // The interrupted attempt may have shown some steps completed before it stopped.
            match stored_events(core.store.as_ref(), &id, 0).await {
                Ok(events) => reporter.completed_before(
                    events
                        .iter()
                        .filter(|e| e.kind == EventKind::StepCompleted)
                        .filter_map(|e| e.step),
                ),
                Err(e) => {
                    tracing::warn!(%id, error = %e, "could not read the earlier attempt's events")
                }
            }
        }
        reporter.emit_raw(NewEvent {
            step: Some(stage.first_step()),
            ..NewEvent::status(
                claimed.status,
                if resumed {
                    format!("Resuming the {stage} stage after an interrupted attempt")
                } else {
                    format!("Starting the {stage} stage")
                },
                claimed.progress,
            )
        });

        let cancel = CancellationToken::new();
        let keeper = tokio::spawn(keep_claim(
            core.clone(),
            id.clone(),
            me.clone(),
            cancel.clone(),
        ));
        let ctx = StageContext {
            deployment: claimed,
            reporter: reporter.clone(),
            cancel: cancel.clone(),
        };
        let span = tracing::info_span!("stage", deployment = %id, %stage);
        let result = tracing::Instrument::instrument(self.work.run(&ctx), span).await;
        keeper.abort();
        reporter.flush().await;

        match result {
            Ok(output) => self.commit(&reporter, &id, &me, stage, output).await,
            Err(StageError::Failed(failure)) => {
                tracing::info!(%id, %stage, reason = %failure, "deployment failed");
                finish_failed(core, Some(&reporter), &id, failure)
                    .await
                    .map_err(retry)
            }
            Err(StageError::Cancelled) => {
                let aborted = core
                    .store
                    .get(&id)
                    .await
                    .map_err(retry)?
                    .is_some_and(|d| d.abort_requested);
                if aborted {
                    finish_aborted(core, &id).await.map_err(retry)?;
                }
                Ok(())
            }
            Err(StageError::Transient(reason)) => {
                // Let any worker retry at once rather than wait for the lease.
                let _ = modify(core, &id, |d| d.release_claim(&me)).await;
                Err(HandlerError::Retry(reason))
            }
        }
    }
}

fn lease(core: &Core) -> chrono::Duration {
    chrono::Duration::from_std(core.lease).unwrap_or(chrono::Duration::seconds(30))
}

impl<W: StageWork> StageHandler<W> {
    async fn commit(
        &self,
        reporter: &Reporter,
        id: &devgem_domain::DeploymentId,
        me: &str,
        stage: Stage,
        output: StageResult,
    ) -> Result<(), HandlerError> {
        let core = &self.core;
        let now = core.clock.now();
        let mut refused = None;
        let stored = modify(core, id, |d| {
            match d.commit_stage(stage, me, &output, now) {
                Ok(()) => true,
                Err(why) => {
                    refused = Some(why);
                    false
                }
            }
        })
        .await
        .map_err(retry)?;
        let Some(d) = stored else {
            match refused {
                Some(CommitRefused::AbortRequested) => {
                    finish_aborted(core, id).await.map_err(retry)?;
                }
                _ => tracing::warn!(%id, %stage, "claim lost before commit; result dropped"),
            }
            return Ok(());
        };
        let message = match stage.next() {
            Some(next) => format!("The {stage} stage is done; the {next} stage is next"),
            None => format!(
                "Live at {}",
                d.url.clone().unwrap_or_else(|| "(no url)".to_string())
            ),
        };
        reporter.emit_raw(NewEvent {
            url: d.url.clone(),
            ..NewEvent::status(d.status, message, d.progress)
        });
        reporter.flush().await;
        if let Some(next) = stage.next() {
            core.bus
                .publish(&StageMessage::new(id.clone(), next))
                .await
                .map_err(retry)?;
        }
        Ok(())
    }
}

/// Renews the claim while the work runs and cancels the work when the deployment is aborted
/// or the claim is taken by someone else.
async fn keep_claim(
    core: Core,
    id: devgem_domain::DeploymentId,
    me: String,
    cancel: CancellationToken,
) {
    let period = (core.lease / 3).clamp(Duration::from_millis(200), Duration::from_secs(1));
    let lease = lease(&core);
    loop {
        tokio::time::sleep(period).await;
        let Ok(Some(d)) = core.store.get(&id).await else {
            continue;
        };
        if d.abort_requested || !d.is_held_by(&me) || d.status.is_terminal() {
            cancel.cancel();
            return;
        }
        let now = core.clock.now();
        if d.claim
            .as_ref()
            .is_some_and(|c| c.needs_renewal(lease, now))
        {
            let mut renewed = d.clone();
            renewed.renew_claim(&me, lease, now);
            // A conflict just means another write landed; the next round renews.
            let _ = core.store.update(&renewed).await;
        }
    }
}

/// Marks the deployment of a message that could not be delivered as failed.
pub struct DeadLetterHandler {
    core: Core,
}

impl DeadLetterHandler {
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

#[async_trait]
impl MessageHandler for DeadLetterHandler {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let StageMessage {
            deployment_id: id,
            stage,
        } = delivery.message;
        let attempts = delivery
            .attempt
            .map(|n| format!(" after {n} attempts"))
            .unwrap_or_default();
        let core = &self.core;
        let Some(d) = core.store.get(&id).await.map_err(retry)? else {
            return Ok(());
        };
        // Only a message the deployment was waiting for can strand it. A duplicate that came
        // early (a later stage's message nacked as "not ready" until it ran out of attempts) or
        // late (its stage is done) says nothing about the deployment: failing it would kill a
        // healthy run.
        if !d.awaits(stage) {
            tracing::info!(%id, %stage, status = %d.status, "dead letter of a stray message; ignored");
            return Ok(());
        }
        // A duplicate nacked while another delivery runs the stage: decide once that run ends
        // (it commits, fails, or gives the claim back), so ask for this one again later.
        if let Some(claim) = d.live_claim(core.clock.now(), |h| core.instance.is_gone(h)) {
            return Err(retry(format!(
                "{stage} is being run by {}; the dead letter waits",
                claim.holder
            )));
        }
        let step = d.step.unwrap_or(stage.first_step());
        let failure = Failure::new(
            step,
            format!("the {stage} stage could not be completed{attempts}"),
        )
        .with_hint("a service DevGem depends on kept failing; see the deployment's logs, then deploy again");
        finish_failed(core, None, &id, failure).await.map_err(retry)
    }
}
