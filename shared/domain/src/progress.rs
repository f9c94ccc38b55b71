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
    /// Set on a `Progress` event that says the step's bar moves on its own from now on, for a
    /// step typically this many seconds long: readers compute the moves (see
    /// [`VirtualProgress`]), so they cost no stored events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_secs: Option<u32>,
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
            expected_secs: None,
        }
    }

    /// `step`'s bar stands at `percent` and moves on its own from the event's time on, for a
    /// step typically `expected_secs` long.
    pub fn ticking(step: Step, percent: u8, expected_secs: u32) -> Self {
        Self {
            expected_secs: Some(expected_secs.max(1)),
            ..Self::new(EventKind::Progress, Some(step), step.title(), percent)
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
            expected_secs: self.expected_secs,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_secs: Option<u32>,
}

impl ProgressEvent {
    /// The last event of a deployment's run: nothing follows it.
    pub fn is_final(&self) -> bool {
        self.status.is_some_and(Status::is_terminal)
    }

    /// The lines of output a `Log` event carries: output is stored in batches, one line of
    /// the message per line of output.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.message.split('\n')
    }
}

/// Where `step`'s bar stands at `now` when it has moved on its own since `since`, for a step
/// typically `expected_secs` long: below the step's end, whatever the time.
pub fn ticking_percent(
    step: Step,
    since: DateTime<Utc>,
    expected_secs: u32,
    now: DateTime<Utc>,
) -> u8 {
    let elapsed = (now - since).num_milliseconds() as f64 / 1000.0;
    let percent = step.percent_at(virtual_fraction(elapsed, f64::from(expected_secs)));
    percent.min(step.end_percent().saturating_sub(1))
}

/// A reader's view of the bar between stored events: it follows the stored events and computes
/// the moves of a step that ticks on its own, never going backward. The SSE endpoint and the
/// CLI share it, so both show the same bar.
#[derive(Debug, Clone, Default)]
pub struct VirtualProgress {
    ticking: Option<Ticking>,
    shown: u8,
}

#[derive(Debug, Clone, Copy)]
struct Ticking {
    step: Step,
    since: DateTime<Utc>,
    expected_secs: u32,
}

impl VirtualProgress {
    /// Takes a stored event into account; returns the percent to show with it, which is never
    /// below what was shown before (a computed move may have passed the stored value).
    pub fn observe(&mut self, event: &ProgressEvent) -> u8 {
        match (event.kind, event.step, event.expected_secs) {
            (EventKind::Progress, Some(step), Some(expected_secs)) => {
                self.ticking = Some(Ticking {
                    step,
                    since: event.time,
                    expected_secs,
                });
            }
            // The step ended, another began, or the stage changed hands: stop moving.
            (EventKind::StepStarted | EventKind::Status, _, _) => self.ticking = None,
            (EventKind::StepCompleted, step, _)
                if self.ticking.is_some_and(|t| Some(t.step) == step) =>
            {
                self.ticking = None;
            }
            _ => {}
        }
        self.shown = self.shown.max(event.percent);
        self.shown
    }

    /// The step whose bar moves on its own, and the percent it reached at `now`, when that is
    /// more than was shown; the reached percent counts as shown from then on.
    pub fn advance(&mut self, now: DateTime<Utc>) -> Option<(Step, u8)> {
        let t = self.ticking?;
        let percent = ticking_percent(t.step, t.since, t.expected_secs, now);
        if percent <= self.shown {
            return None;
        }
        self.shown = percent;
        Some((t.step, percent))
    }

    /// The step whose bar moves on its own, if any.
    pub fn ticking_step(&self) -> Option<Step> {
        self.ticking.map(|t| t.step)
    }

    /// The highest percent shown so far.
    pub fn shown(&self) -> u8 {
        self.shown
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

    fn stored(seq: u64, secs: i64, event: NewEvent) -> ProgressEvent {
        event.numbered(
            seq,
            DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
        )
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_ticking_step_moves_on_its_own_and_stays_below_its_end() {
        let step = Step::ContainerBuild;
        let mut bar = VirtualProgress::default();
        bar.observe(&stored(
            1,
            0,
            NewEvent::new(EventKind::StepStarted, Some(step), "Building", 35),
        ));
        bar.observe(&stored(2, 1, NewEvent::ticking(step, 35, 40)));
        assert_eq!(bar.ticking_step(), Some(step));
        // After one expected length the bar is at 90% * (1 - 1/e) ~ 57% of the step.
        assert_eq!(bar.advance(at(41)), Some((step, 35 + 25)));
        // Nothing new within the same percent.
        assert_eq!(bar.advance(at(41)), None);
        let mut last = 60;
        for secs in [60, 120, 300, 3600, 86_400] {
            if let Some((_, p)) = bar.advance(at(secs)) {
                assert!(p > last && p < step.end_percent(), "{p} at {secs}s");
                last = p;
            }
        }
        // The bar approaches 90% of the step and never reaches its end.
        assert_eq!(last, 35 + 40);
    }

    #[test]
    fn a_stored_event_never_takes_the_bar_backward() {
        let step = Step::ContainerBuild;
        let mut bar = VirtualProgress::default();
        bar.observe(&stored(1, 0, NewEvent::ticking(step, 35, 10)));
        assert_eq!(bar.advance(at(20)), Some((step, 35 + 35)));
        // An output line stored after the move carries the percent of the time it was written.
        let log = stored(2, 20, NewEvent::new(EventKind::Log, Some(step), "x", 35));
        assert_eq!(bar.observe(&log), 70);
        assert_eq!(
            bar.ticking_step(),
            Some(step),
            "output does not stop the bar"
        );
    }

    #[test]
    fn the_bar_stops_when_the_step_completes_or_another_starts() {
        let step = Step::ContainerBuild;
        let mut bar = VirtualProgress::default();
        bar.observe(&stored(1, 0, NewEvent::ticking(step, 35, 10)));
        bar.observe(&stored(
            2,
            5,
            NewEvent::new(EventKind::StepCompleted, Some(step), "built", 80),
        ));
        assert_eq!(bar.advance(at(100)), None);

        bar.observe(&stored(3, 6, NewEvent::ticking(Step::Deploy, 80, 10)));
        bar.observe(&stored(
            4,
            7,
            NewEvent::new(EventKind::StepStarted, Some(Step::SecurityScan), "s", 80),
        ));
        assert_eq!(bar.advance(at(100)), None);
        assert_eq!(bar.shown(), 80);
    }

    #[test]
    fn events_stored_before_ticking_existed_still_parse() {
        let old = r#"{"seq":3,"time":"2024-01-01T00:00:00Z","kind":"progress","step":"deploy","message":"Deploy","percent":82}"#;
        let event: ProgressEvent = serde_json::from_str(old).unwrap();
        assert_eq!(event.expected_secs, None);
        let mut bar = VirtualProgress::default();
        assert_eq!(bar.observe(&event), 82);
        assert_eq!(bar.ticking_step(), None);
        // And a plain event is stored without the field.
        let json = serde_json::to_string(&event).unwrap();
        assert!(!json.contains("expected_secs"), "{json}");
    }

    #[test]
    fn steps_map_onto_stages() {
        assert_eq!(Step::SecurityScan.stage(), Stage::Analyze);
        assert_eq!(Step::ContainerBuild.stage(), Stage::Build);
        assert_eq!(Step::Deploy.stage(), Stage::Deploy);
    }
}
