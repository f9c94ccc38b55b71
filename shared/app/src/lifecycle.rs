//! The writes that end a deployment or change it under contention, shared by the stage runner
//! and the user's commands (so neither depends on the other).

use crate::reporter::Reporter;
use crate::services::Core;
use devgem_domain::{Deployment, DeploymentId, Failure, NewEvent, ProgressEvent, Status};
use devgem_ports::{StateStore, StoreError};
use std::time::Duration;

/// Retries a read-modify-write on a deployment until it lands or `change` declines.
/// `change` returns `false` to leave the deployment as it is.
pub(crate) async fn modify(
    core: &Core,
    id: &DeploymentId,
    mut change: impl FnMut(&mut Deployment) -> bool,
) -> Result<Option<Deployment>, StoreError> {
    for _ in 0..20 {
        let Some(mut d) = core.store.get(id).await? else {
            return Err(StoreError::NotFound(id.clone()));
        };
        if !change(&mut d) {
            return Ok(None);
        }
        match core.store.update(&d).await {
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

/// Ends a deployment as aborted, if it is not already over. Returns whether this call did it.
pub(crate) async fn finish_aborted(core: &Core, id: &DeploymentId) -> Result<bool, StoreError> {
    let now = core.clock.now();
    let stored = modify(core, id, |d| d.transition(Status::Aborted, now).is_ok()).await?;
    let Some(d) = stored else { return Ok(false) };
    core.store
        .append_event(
            id,
            NewEvent::status(
                Status::Aborted,
                "Deployment aborted by its owner",
                d.progress,
            ),
        )
        .await?;
    Ok(true)
}

/// Ends a deployment as failed with `failure` (if it is not already over).
pub(crate) async fn finish_failed(
    core: &Core,
    reporter: Option<&Reporter>,
    id: &DeploymentId,
    failure: Failure,
) -> Result<(), StoreError> {
    let now = core.clock.now();
    let message = failure.to_string();
    let stored = modify(core, id, |d| d.fail(failure.clone(), now).is_ok()).await?;
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
                core.store.append_event(id, event).await?;
            }
        }
    }
    Ok(())
}

/// Every stored event of `id` after `after`. Stores answer in pages; this reads until a page
/// comes back empty.
pub(crate) async fn stored_events(
    store: &dyn StateStore,
    id: &DeploymentId,
    after: u64,
) -> Result<Vec<ProgressEvent>, StoreError> {
    let mut events = Vec::new();
    let mut last = after;
    loop {
        let page = store.events(id, last).await?;
        let Some(end) = page.last() else { break };
        last = end.seq;
        events.extend(page);
    }
    Ok(events)
}
