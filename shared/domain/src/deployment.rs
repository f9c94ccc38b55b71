//! A deployment and the one state machine it moves through.
//!
//! ```text
//! queued -> analyzing -> building -> deploying -> live -> stopped
//!    \_________\____________\___________\-----> failed | aborted
//! ```
//!
//! Stage handlers move a deployment with a conditional write on `version`, so two handlers
//! racing on the same deployment cannot both win.

use crate::id::{DeploymentId, EnvVarName, ServiceName};
use crate::message::Stage;
use crate::progress::Step;
use crate::status::{Status, TransitionError};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What to deploy: a git URL or a local path, optionally a branch, a commit and a folder
/// inside the repository (for monorepos).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdir: Option<String>,
}

/// Why a deployment failed, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The user-visible step that failed.
    pub step: Step,
    /// What went wrong.
    pub reason: String,
    /// How to fix it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(step: Step, reason: impl Into<String>) -> Self {
        Self {
            step,
            reason: reason.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.step.title(), self.reason)?;
        if let Some(hint) = &self.hint {
            write!(f, " (fix: {hint})")?;
        }
        Ok(())
    }
}

/// A stage worker's lease on a deployment. While it is held and not expired, other workers
/// leave the deployment alone (and ask the bus to redeliver later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub holder: String,
    pub stage: Stage,
    pub expires_at: DateTime<Utc>,
}

/// What a caller supplies to start a deployment.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub owner: String,
    pub source: Source,
    pub service_name: ServiceName,
    pub env_names: Vec<EnvVarName>,
}

/// One deployment as the store holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeploymentId,
    pub owner: String,
    pub source: Source,
    pub service_name: ServiceName,
    pub status: Status,
    /// The user-visible step running now, or the last one that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    /// 0..=100, never decreasing.
    pub progress: u8,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    #[serde(default)]
    pub abort_requested: bool,
    /// Names of the environment variables set by the user; the values are in the secrets port.
    #[serde(default)]
    pub env_names: Vec<EnvVarName>,
    /// Detected language and framework, for listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What the build produced: an image reference, or a local build folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// The commit that was fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    /// The stages that have finished, so a late message for one of them is a no-op.
    #[serde(default)]
    pub stages_done: Vec<Stage>,
    /// Bumped by every write; writes are conditional on it.
    pub version: u64,
}

impl Deployment {
    pub fn new(id: DeploymentId, new: NewDeployment, now: DateTime<Utc>) -> Self {
        Self {
            id,
            owner: new.owner,
            source: new.source,
            service_name: new.service_name,
            status: Status::Queued,
            step: None,
            progress: 0,
            created_at: now,
            updated_at: now,
            url: None,
            error: None,
            abort_requested: false,
            env_names: new.env_names,
            summary: None,
            artifact: None,
            commit: None,
            claim: None,
            stages_done: Vec::new(),
            version: 0,
        }
    }

    /// Moves to `next` if the state machine allows it.
    pub fn transition(&mut self, next: Status, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if !self.status.can_become(next) {
            return Err(TransitionError {
                from: self.status,
                to: next,
            });
        }
        self.status = next;
        self.updated_at = now;
        if next.is_terminal() {
            self.claim = None;
        }
        if next == Status::Live {
            self.progress = 100;
        }
        Ok(())
    }

    /// Ends the deployment as failed, keeping the reason.
    pub fn fail(&mut self, failure: Failure, now: DateTime<Utc>) -> Result<(), TransitionError> {
        self.transition(Status::Failed, now)?;
        self.step = Some(failure.step);
        self.error = Some(failure);
        Ok(())
    }

    /// Raises progress; a lower value is ignored, so progress never goes backward.
    pub fn advance(&mut self, step: Step, percent: u8) {
        self.step = Some(step);
        self.progress = self.progress.max(percent.min(100));
    }

    pub fn is_done(&self, stage: Stage) -> bool {
        self.stages_done.contains(&stage)
    }

    /// Whether `holder` may work on this deployment now: nobody holds a live claim, or it does.
    pub fn claimable_by(&self, holder: &str, now: DateTime<Utc>) -> bool {
        match &self.claim {
            None => true,
            Some(c) => c.holder == holder || c.expires_at <= now,
        }
    }

    pub fn claim(&mut self, holder: &str, stage: Stage, lease: Duration, now: DateTime<Utc>) {
        self.claim = Some(Claim {
            holder: holder.to_string(),
            stage,
            expires_at: now + lease,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(now: DateTime<Utc>) -> Deployment {
        Deployment::new(
            DeploymentId::generate(),
            NewDeployment {
                owner: "local".into(),
                source: Source {
                    location: "/tmp/app".into(),
                    branch: None,
                    commit: None,
                    subdir: None,
                },
                service_name: ServiceName::derive_from("app"),
                env_names: vec![],
            },
            now,
        )
    }

    #[test]
    fn happy_path_reaches_live_and_completes_progress() {
        let now = Utc::now();
        let mut d = sample(now);
        for next in [
            Status::Analyzing,
            Status::Building,
            Status::Deploying,
            Status::Live,
        ] {
            d.transition(next, now).unwrap();
        }
        assert_eq!(d.status, Status::Live);
        assert_eq!(d.progress, 100);
    }

    #[test]
    fn illegal_moves_are_rejected() {
        let now = Utc::now();
        let mut d = sample(now);
        assert_eq!(
            d.transition(Status::Building, now),
            Err(TransitionError {
                from: Status::Queued,
                to: Status::Building
            })
        );
        d.transition(Status::Aborted, now).unwrap();
        assert!(d.transition(Status::Failed, now).is_err());
        assert!(d.transition(Status::Analyzing, now).is_err());
    }

    #[test]
    fn abort_is_allowed_from_every_running_state() {
        for from in [
            Status::Queued,
            Status::Analyzing,
            Status::Building,
            Status::Deploying,
        ] {
            assert!(from.can_become(Status::Aborted), "{from}");
            assert!(from.can_become(Status::Failed), "{from}");
        }
        for from in [
            Status::Live,
            Status::Failed,
            Status::Aborted,
            Status::Stopped,
        ] {
            assert!(!from.can_become(Status::Aborted), "{from}");
        }
    }

    #[test]
    fn progress_never_goes_backward() {
        let mut d = sample(Utc::now());
        d.advance(Step::ContainerBuild, 60);
        d.advance(Step::ContainerBuild, 40);
        assert_eq!(d.progress, 60);
    }

    #[test]
    fn an_expired_claim_can_be_taken_over() {
        let now = Utc::now();
        let mut d = sample(now);
        d.claim("worker-a", Stage::Build, Duration::seconds(20), now);
        assert!(d.claimable_by("worker-a", now));
        assert!(!d.claimable_by("worker-b", now));
        assert!(d.claimable_by("worker-b", now + Duration::seconds(21)));
    }
}
