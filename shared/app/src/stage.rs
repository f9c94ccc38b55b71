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

use crate::reporter::Reporter;
use crate::services::Services;
use async_trait::async_trait;
use chrono::Utc;
use devgem_domain::{Deployment, EventKind, Failure, NewEvent, Stage, StageMessage, Status, Step};
use devgem_ports::{CancellationToken, Delivery, HandlerError, MessageHandler, StoreError};
use std::time::Duration;

/// What a stage's work produced, written to the deployment when the stage commits.
#[derive(Debug, Default, Clone)]
pub struct StageOutput {
    pub summary: Option<String>,
    pub artifact: Option<String>,
    pub commit: Option<String>,
    pub url: Option<String>,
}

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

/// Everything a stage's work may use.
pub struct StageContext {
    pub services: Services,
    /// The deployment as it was when the stage claimed it.
    pub deployment: Deployment,
    pub reporter: Reporter,
    /// Cancelled when the deployment is aborted or the claim is lost.
    pub cancel: CancellationToken,
}

impl StageContext {
    /// Reads a JSON artifact an earlier stage stored; a missing one is retried, since the
    /// stage that writes it may not have committed yet.
    pub async fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<T, StageError> {
        let bytes = self
            .services
            .objects
            .get(key)
            .await
            .map_err(|e| StageError::Transient(e.to_string()))?
            .ok_or_else(|| StageError::Transient(format!("{key} is missing")))?;
        serde_json::from_slice(&bytes).map_err(|e| StageError::Transient(format!("{key}: {e}")))
    }
}

/// One stage's work; the runner does the bookkeeping around it.
#[async_trait]
pub trait StageWork: Send + Sync {
    fn stage(&self) -> Stage;
    async fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError>;
}

/// A bus handler that runs `W` under the rules in the module doc.
pub struct StageHandler<W> {
    services: Services,
    work: W,
}

impl<W: StageWork> StageHandler<W> {
    pub fn new(services: Services, work: W) -> Self {
        Self { services, work }
    }
}

fn retry(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Retry(e.to_string())
}

/// The first step of each stage, where its progress starts.
fn first_step(stage: Stage) -> Step {
    match stage {
        Stage::Analyze => Step::RepositoryAccess,
        Stage::Build => Step::ContainerBuild,
        Stage::Deploy => Step::Deploy,
    }
}

/// The last step of each stage, where its progress ends.
fn last_step(stage: Stage) -> Step {
    match stage {
        Stage::Analyze => Step::SecurityScan,
        Stage::Build => Step::ContainerBuild,
        Stage::Deploy => Step::Deploy,
    }
}

/// Retries a read-modify-write on a deployment until it lands or `change` declines.
/// `change` returns `false` to leave the deployment as it is.
pub(crate) async fn modify(
    services: &Services,
    id: &devgem_domain::DeploymentId,
    mut change: impl FnMut(&mut Deployment) -> bool,
) -> Result<Option<Deployment>, StoreError> {
    for _ in 0..20 {
        let Some(mut d) = services.store.get(id).await? else {
            return Err(StoreError::NotFound(id.clone()));
        };
        if !change(&mut d) {
            return Ok(None);
        }
        match services.store.update(&d).await {
            Ok(stored) => return Ok(Some(stored)),
            Err(StoreError::Conflict(_)) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict(id.clone()))
}

/// Ends a deployment as aborted (if it is not already over) and stops anything it started.
pub(crate) async fn finish_aborted(
    services: &Services,
    id: &devgem_domain::DeploymentId,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let stored = modify(services, id, |d| d.transition(Status::Aborted, now).is_ok()).await?;
    if let Some(d) = stored {
        let _ = services.runtime.stop(id).await;
        services
            .store
            .append_event(
                id,
                NewEvent::status(
                    Status::Aborted,
                    "Deployment aborted by its owner",
                    d.progress,
                ),
            )
            .await?;
    }
    Ok(())
}

/// Ends a deployment as failed with `failure` (if it is not already over).
pub(crate) async fn finish_failed(
    services: &Services,
    reporter: Option<&Reporter>,
    id: &devgem_domain::DeploymentId,
    failure: Failure,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let message = failure.to_string();
    let stored = modify(services, id, |d| d.fail(failure.clone(), now).is_ok()).await?;
    if let Some(d) = stored {
        let event = NewEvent {
            step: Some(failure.step),
            ..NewEvent::status(Status::Failed, message, d.progress)
        };
        match reporter {
            Some(r) => {
                r.emit_raw(event);
                r.flush().await;
            }
            None => {
                services.store.append_event(id, event).await?;
            }
        }
    }
    Ok(())
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
        let services = &self.services;
        let Some(d) = services.store.get(&id).await.map_err(retry)? else {
            tracing::warn!(%id, %stage, "message for an unknown deployment; dropped");
            return Ok(());
        };

        if d.is_done(stage) {
            // The stage committed; make sure the next one was asked for, in case the publish
            // after the commit was lost.
            if let Some(next) = stage.next()
                && d.status == Status::running(next)
                && !d.is_done(next)
                && d.claim.is_none()
            {
                services
                    .bus
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
            finish_aborted(services, &id).await.map_err(retry)?;
            return Ok(());
        }
        let ready = match stage {
            Stage::Analyze => matches!(d.status, Status::Queued | Status::Analyzing),
            other => d.status == Status::running(other),
        };
        if !ready {
            return Err(retry(format!(
                "deployment is {}, not ready for {stage}",
                d.status
            )));
        }
        let now = Utc::now();
        let me = services.instance.attempt();
        if !d.claimable_by(&me, now) {
            let holder = d
                .claim
                .as_ref()
                .map(|c| c.holder.clone())
                .unwrap_or_default();
            if !services.instance.is_gone(&holder) {
                return Err(retry(format!("{stage} is being run by {holder}")));
            }
        }

        // Claim it. Losing this race means another worker claimed it first.
        let mut claimed = d.clone();
        if claimed.status == Status::Queued {
            claimed.transition(Status::Analyzing, now).map_err(retry)?;
        }
        let lease =
            chrono::Duration::from_std(services.lease).unwrap_or(chrono::Duration::seconds(30));
        claimed.claim(&me, stage, lease, now);
        claimed.advance(first_step(stage), first_step(stage).start_percent());
        let claimed = match services.store.update(&claimed).await {
            Ok(stored) => stored,
            Err(StoreError::Conflict(_)) => return Err(retry("lost the claim race")),
            Err(e) => return Err(retry(e)),
        };
        let resumed = d.claim.is_some();
        let reporter = Reporter::new(services.store.clone(), id.clone(), claimed.progress);
        if resumed {
            // The interrupted attempt may have shown some steps completed before it stopped.
            match crate::commands::stored_events(services.store.as_ref(), &id, 0).await {
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
            step: Some(first_step(stage)),
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
            services.clone(),
            id.clone(),
            me.clone(),
            cancel.clone(),
        ));
        let ctx = StageContext {
            services: services.clone(),
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
                finish_failed(services, Some(&reporter), &id, failure)
                    .await
                    .map_err(retry)
            }
            Err(StageError::Cancelled) => {
                let aborted = services
                    .store
                    .get(&id)
                    .await
                    .map_err(retry)?
                    .is_some_and(|d| d.abort_requested);
                if aborted {
                    finish_aborted(services, &id).await.map_err(retry)?;
                }
                Ok(())
            }
            Err(StageError::Transient(reason)) => {
                // Let any worker retry at once rather than wait for the lease.
                let _ = modify(services, &id, |d| {
                    let mine = d.claim.as_ref().is_some_and(|c| c.holder == me);
                    if mine {
                        d.claim = None;
                    }
                    mine
                })
                .await;
                Err(HandlerError::Retry(reason))
            }
        }
    }
}

impl<W: StageWork> StageHandler<W> {
    async fn commit(
        &self,
        reporter: &Reporter,
        id: &devgem_domain::DeploymentId,
        me: &str,
        stage: Stage,
        output: StageOutput,
    ) -> Result<(), HandlerError> {
        let services = &self.services;
        let now = Utc::now();
        let next_status = match stage.next() {
            Some(next) => Status::running(next),
            None => Status::Live,
        };
        let mut lost = false;
        let stored = modify(services, id, |d| {
            let mine = d.claim.as_ref().is_some_and(|c| c.holder == me);
            if !mine || d.status.is_terminal() || d.is_done(stage) {
                lost = true;
                return false;
            }
            if d.abort_requested {
                return false;
            }
            if d.transition(next_status, now).is_err() {
                lost = true;
                return false;
            }
            d.stages_done.push(stage);
            d.claim = None;
            d.advance(last_step(stage), last_step(stage).end_percent());
            if let Some(s) = &output.summary {
                d.summary = Some(s.clone());
            }
            if let Some(a) = &output.artifact {
                d.artifact = Some(a.clone());
            }
            if let Some(c) = &output.commit {
                d.commit = Some(c.clone());
            }
            if let Some(u) = &output.url {
                d.url = Some(u.clone());
            }
            true
        })
        .await
        .map_err(retry)?;
        let Some(d) = stored else {
            if lost {
                tracing::warn!(%id, %stage, "claim lost before commit; result dropped");
                return Ok(());
            }
            // Aborted while finishing the stage.
            finish_aborted(services, id).await.map_err(retry)?;
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
            services
                .bus
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
    services: Services,
    id: devgem_domain::DeploymentId,
    me: String,
    cancel: CancellationToken,
) {
    let period = (services.lease / 3).max(Duration::from_millis(200));
    let lease = chrono::Duration::from_std(services.lease).unwrap_or(chrono::Duration::seconds(30));
    loop {
        tokio::time::sleep(period.min(Duration::from_secs(1))).await;
        let Ok(Some(d)) = services.store.get(&id).await else {
            continue;
        };
        let mine = d.claim.as_ref().is_some_and(|c| c.holder == me);
        if d.abort_requested || !mine || d.status.is_terminal() {
            cancel.cancel();
            return;
        }
        // Renew once a third of the lease has passed.
        let due = d
            .claim
            .as_ref()
            .is_some_and(|c| c.expires_at - Utc::now() < lease * 2 / 3);
        if due {
            let mut renewed = d.clone();
            if let Some(c) = renewed.claim.as_mut() {
                c.expires_at = Utc::now() + lease;
            }
            // A conflict just means another write landed; the next round renews.
            let _ = services.store.update(&renewed).await;
        }
    }
}

/// Marks the deployment of a message that could not be delivered as failed.
pub struct DeadLetterHandler {
    services: Services,
}

impl DeadLetterHandler {
    pub fn new(services: Services) -> Self {
        Self { services }
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
        let Some(d) = self.services.store.get(&id).await.map_err(retry)? else {
            return Ok(());
        };
        // Only a message the deployment was waiting for can strand it. A duplicate that came
        // early (a later stage's message nacked as "not ready" until it ran out of attempts) or
        // late (its stage is done) says nothing about the deployment: failing it would kill a
        // healthy run.
        let waiting_for_it = match stage {
            Stage::Analyze => matches!(d.status, Status::Queued | Status::Analyzing),
            other => d.status == Status::running(other),
        };
        if !waiting_for_it || d.is_done(stage) {
            tracing::info!(%id, %stage, status = %d.status, "dead letter of a stray message; ignored");
            return Ok(());
        }
        // A duplicate nacked while another delivery runs the stage: decide once that run ends
        // (it commits, fails, or gives the claim back), so ask for this one again later.
        if let Some(claim) = &d.claim
            && claim.expires_at > Utc::now()
            && !self.services.instance.is_gone(&claim.holder)
        {
            return Err(retry(format!(
                "{stage} is being run by {}; the dead letter waits",
                claim.holder
            )));
        }
        let step = d.step.unwrap_or(first_step(stage));
        let failure = Failure::new(
            step,
            format!("the {stage} stage could not be completed{attempts}"),
        )
        .with_hint("a service DevGem depends on kept failing; see the deployment's logs, then deploy again");
        finish_failed(&self.services, None, &id, failure)
            .await
            .map_err(retry)
    }
}
