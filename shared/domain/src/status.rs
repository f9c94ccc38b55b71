//! The statuses a deployment moves through, and the one table of legal moves between them.
//!
//! ```text
//! queued -> analyzing -> building -> deploying -> live -> stopped
//!    \_________\____________\___________\-----> failed | aborted
//! ```

use crate::message::Stage;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a deployment is in its life. Terminal states never change again, except
/// `live`, which a user may stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Accepted and stored; the analyze message is on its way.
    Queued,
    /// Fetching the source, analyzing it, writing the Dockerfile, scanning it.
    Analyzing,
    /// The image (or the native build) is being built.
    Building,
    /// The built artifact is being started and probed.
    Deploying,
    /// Answering at its URL.
    Live,
    /// Was live; stopped by its owner.
    Stopped,
    /// Ended with an error; `Deployment::error` says where and why.
    Failed,
    /// Ended because its owner asked.
    Aborted,
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Live | Status::Stopped | Status::Failed | Status::Aborted
        )
    }

    /// The stage a deployment in this status is running or waiting for.
    pub fn stage(self) -> Option<Stage> {
        match self {
            Status::Queued | Status::Analyzing => Some(Stage::Analyze),
            Status::Building => Some(Stage::Build),
            Status::Deploying => Some(Stage::Deploy),
            _ => None,
        }
    }

    /// The status a deployment has while `stage` runs.
    pub fn running(stage: Stage) -> Status {
        match stage {
            Stage::Analyze => Status::Analyzing,
            Stage::Build => Status::Building,
            Stage::Deploy => Status::Deploying,
        }
    }

    /// Every legal move, in one place.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        match (self, next) {
            (Queued, Analyzing) | (Analyzing, Building) | (Building, Deploying) => true,
            (Deploying, Live) | (Live, Stopped) => true,
            (from, Failed | Aborted) => !from.is_terminal(),
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Analyzing => "analyzing",
            Status::Building => "building",
            Status::Deploying => "deploying",
            Status::Live => "live",
            Status::Stopped => "stopped",
            Status::Failed => "failed",
            Status::Aborted => "aborted",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A move the state machine forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} deployment cannot become {to}")]
pub struct TransitionError {
    pub from: Status,
    pub to: Status,
}
