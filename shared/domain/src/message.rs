//! The messages that chain the stages. They name a deployment and a stage, nothing more:
//! the data lives in the store.

use crate::id::DeploymentId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A pipeline stage; each one is a function and a topic of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Analyze,
    Build,
    Deploy,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Analyze, Stage::Build, Stage::Deploy];

    /// The topic whose messages ask for this stage.
    pub fn topic(self) -> &'static str {
        match self {
            Stage::Analyze => "analyze",
            Stage::Build => "build",
            Stage::Deploy => "deploy",
        }
    }

    pub fn from_topic(topic: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.topic() == topic)
    }

    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Analyze => Some(Stage::Build),
            Stage::Build => Some(Stage::Deploy),
            Stage::Deploy => None,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.topic())
    }
}

/// "Run `stage` for `deployment_id`." Published when the previous stage commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageMessage {
    pub deployment_id: DeploymentId,
    pub stage: Stage,
}

impl StageMessage {
    pub fn new(deployment_id: DeploymentId, stage: Stage) -> Self {
        Self {
            deployment_id,
            stage,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_small_json() {
        let m = StageMessage::new(DeploymentId::parse("d-1234").unwrap(), Stage::Build);
        let bytes = m.to_json();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"deployment_id":"d-1234","stage":"build"}"#
        );
        assert_eq!(StageMessage::from_json(&bytes).unwrap(), m);
    }
}
