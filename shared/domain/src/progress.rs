//! The seven steps a user watches, their share of the progress bar, and the events that
//! report them.

use crate::message::Stage;
use crate::status::Status;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The user-visible steps, in order. Each belongs to one pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    RepositoryAccess,
    CodeAnalysis,
    DockerfileGeneration,
    EnvironmentConfig,
    SecurityScan,
    ContainerBuild,
    Deploy,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::RepositoryAccess,
        Step::CodeAnalysis,
        Step::DockerfileGeneration,
        Step::EnvironmentConfig,
        Step::SecurityScan,
        Step::ContainerBuild,
        Step::Deploy,
    ];

    pub fn stage(self) -> Stage {
        match self {
            Step::ContainerBuild => Stage::Build,
            Step::Deploy => Stage::Deploy,
            _ => Stage::Analyze,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Step::RepositoryAccess => "Repository access",
            Step::CodeAnalysis => "Code analysis",
            Step::DockerfileGeneration => "Dockerfile generation",
            Step::EnvironmentConfig => "Environment config",
            Step::SecurityScan => "Security scan",
            Step::ContainerBuild => "Container build",
            Step::Deploy => "Deploy",
        }
    }

    /// Share of the whole progress bar, in percent; the weights add up to 100.
    pub fn weight(self) -> u8 {
        match self {
            Step::RepositoryAccess => 10,
            Step::CodeAnalysis => 10,
            Step::DockerfileGeneration => 5,
            Step::EnvironmentConfig => 5,
            Step::SecurityScan => 5,
            Step::ContainerBuild => 45,
            Step::Deploy => 20,
        }
    }

    /// Progress at the start of this step.
    pub fn start_percent(self) -> u8 {
        Step::ALL
            .iter()
            .take_while(|s| **s != self)
            .map(|s| s.weight())
            .sum()
    }

    pub fn end_percent(self) -> u8 {
        self.start_percent() + self.weight()
    }

    /// Progress at `fraction` (0..=1) of this step.
    pub fn percent_at(self, fraction: f64) -> u8 {
        let f = fraction.clamp(0.0, 1.0);
        self.start_percent() + (f64::from(self.weight()) * f).floor() as u8
    }
}

impl Stage {
    /// The step a stage starts with, where its progress starts.
    pub fn first_step(self) -> Step {
        match self {
            Stage::Analyze => Step::RepositoryAccess,
            Stage::Build => Step::ContainerBuild,
            Stage::Deploy => Step::Deploy,
        }
    }

    /// The step a stage ends with, where its progress ends.
    pub fn last_step(self) -> Step {
        match self {
            Stage::Analyze => Step::SecurityScan,
            Stage::Build => Step::ContainerBuild,
            Stage::Deploy => Step::Deploy,
        }
    }
}

/// How far to move the bar during a step whose length is unknown: it approaches `cap` (below
/// the step's end) and slows down as it goes, so it keeps moving without ever claiming to be
/// done. `expected_secs` is the typical length of the step.
pub fn virtual_fraction(elapsed_secs: f64, expected_secs: f64) -> f64 {
    const CAP: f64 = 0.9;
    if elapsed_secs <= 0.0 || expected_secs <= 0.0 {
        return 0.0;
    }
    CAP * (1.0 - (-elapsed_secs / expected_secs).exp())
}

/// What a progress event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    StepStarted,
    StepCompleted,
    Progress,
    /// A line of build or deploy output.
    Log,
    /// Why DevGem decided something (detected framework, chosen port...).
    Reasoning,
    Warning,
    /// The deployment's status changed; `status` says to what.
    Status,
}

/// An event before the store numbered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    pub message: String,
    pub percent: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl NewEvent {
    pub fn new(
        kind: EventKind,
        step: Option<Step>,
        message: impl Into<String>,
        percent: u8,
    ) -> Self {
        Self {
            kind,
            step,
            message: message.into(),
            percent,
            status: None,
            url: None,
        }
    }

    pub fn status(status: Status, message: impl Into<String>, percent: u8) -> Self {
        Self {
            status: Some(status),
            ..Self::new(EventKind::Status, None, message, percent)
        }
    }

    /// Numbers the event; `seq` is 1-based and gapless per deployment.
    pub fn numbered(self, seq: u64, time: DateTime<Utc>) -> ProgressEvent {
        ProgressEvent {
            seq,
            time,
            kind: self.kind,
            step: self.step,
            message: self.message,
            percent: self.percent,
            status: self.status,
            url: self.url,
        }
    }
}

/// One progress event as stored and streamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    pub message: String,
    pub percent: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ProgressEvent {
    /// The last event of a deployment's run: nothing follows it.
    pub fn is_final(&self) -> bool {
        self.status.is_some_and(Status::is_terminal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_cover_the_whole_bar_in_order() {
        assert_eq!(
            Step::ALL.iter().map(|s| u32::from(s.weight())).sum::<u32>(),
            100
        );
        assert_eq!(Step::RepositoryAccess.start_percent(), 0);
        assert_eq!(Step::Deploy.end_percent(), 100);
        for pair in Step::ALL.windows(2) {
            assert_eq!(pair[0].end_percent(), pair[1].start_percent());
        }
    }

    #[test]
    fn virtual_progress_moves_but_stays_below_the_step_end() {
        let step = Step::ContainerBuild;
        let mut last = 0;
        for secs in [1.0, 5.0, 30.0, 120.0, 3600.0] {
            let p = step.percent_at(virtual_fraction(secs, 30.0));
            assert!(p >= last, "went backward at {secs}s");
            assert!(p < step.end_percent(), "reached the end at {secs}s");
            last = p;
        }
        assert!(last > step.start_percent());
    }

    #[test]
    fn steps_map_onto_stages() {
        assert_eq!(Step::SecurityScan.stage(), Stage::Analyze);
        assert_eq!(Step::ContainerBuild.stage(), Stage::Build);
        assert_eq!(Step::Deploy.stage(), Stage::Deploy);
    }
}
