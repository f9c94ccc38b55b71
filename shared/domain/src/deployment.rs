//! A deployment and the one state machine it moves through.
//!
//! ```text
//! queued -> analyzing -> building -> deploying -> live -> stopped
//!    \_________\____________\___________\-----> failed | aborted
//! ```
//!
//! Stage handlers move a deployment with a conditional write on `version`, so two handlers
//! racing on the same deployment cannot both win.

use crate::id::{DeploymentId, EnvVarName, Region, ServiceName};
use crate::message::Stage;
use crate::package::{DebianPackage, Dependency};
use crate::progress::Step;
use crate::status::{Status, TransitionError};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What to deploy: a git URL, a local path or an uploaded archive, optionally a branch, a
/// commit and a folder inside the repository (for monorepos).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The URL or path as the user gave it (for an upload, the name of the uploaded folder).
    pub location: String,
    /// The object key of an uploaded source archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdir: Option<String>,
}

/// What a [`Source`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A repository to clone (`https://`, `ssh://`, `git@host:`, or `github.com/owner/repo`).
    Git,
    /// A folder on the machine that runs the analyze stage.
    LocalPath,
    /// An archive the user uploaded, in object storage.
    Upload,
}

/// Hosts whose `host/owner/repo` shorthand means the https URL.
pub const SHORTHAND_GIT_HOSTS: &[&str] = &["github.com/", "gitlab.com/", "bitbucket.org/"];

impl Source {
    /// The source at `location`: its default branch, the whole repository.
    pub fn at(location: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            archive: None,
            branch: None,
            commit: None,
            subdir: None,
        }
    }

    /// What the location names, decided from the text alone.
    pub fn kind(&self) -> SourceKind {
        if self.archive.is_some() {
            return SourceKind::Upload;
        }
        let location = self.location.trim();
        let schemes = ["https://", "http://", "git://", "ssh://", "git+ssh://"];
        let scp_like = location
            .split_once(':')
            .is_some_and(|(before, _)| before.contains('@') && !before.contains('/'));
        let bare = location.strip_prefix("www.").unwrap_or(location);
        if schemes.iter().any(|s| location.starts_with(s))
            || scp_like
            || SHORTHAND_GIT_HOSTS.iter().any(|h| bare.starts_with(h))
        {
            SourceKind::Git
        } else {
            SourceKind::LocalPath
        }
    }
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

/// Changes to the build plan the user accepted (a fix from a diagnosis), kept with the
/// deployment so the change is visible and every later plan of it applies the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOverride {
    /// Run the app with this command instead of the detected one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_command: Option<String>,
    /// Route traffic to this port instead of the detected one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Declare these in the app's manifest before the build (a patch of the checkout the
    /// analyze stage applies and tells the user about).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    /// Install these Debian packages in the runtime image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system_packages: Vec<DebianPackage>,
    /// Install these Debian packages in the build image only (compilers, headers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_packages: Vec<DebianPackage>,
}

impl PlanOverride {
    pub fn is_empty(&self) -> bool {
        self == &PlanOverride::default()
    }

    /// What the override changes, in words ("start command `gunicorn app:app`, port 5000").
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.start_command {
            parts.push(format!("start command `{c}`"));
        }
        if let Some(p) = self.port {
            parts.push(format!("port {p}"));
        }
        for d in &self.dependencies {
            parts.push(format!("`{d}` in {}", d.manifest().file_name()));
        }
        for p in &self.system_packages {
            parts.push(format!("system package `{p}`"));
        }
        for p in &self.build_packages {
            parts.push(format!("build package `{p}`"));
        }
        parts.join(", ")
    }

    /// Adds `dependency`, replacing an earlier one of the same name (a new pin wins);
    /// whether anything changed.
    pub fn add_dependency(&mut self, dependency: Dependency) -> bool {
        if self.dependencies.contains(&dependency) {
            return false;
        }
        self.dependencies
            .retain(|d| !(d.manifest() == dependency.manifest() && d.name() == dependency.name()));
        self.dependencies.push(dependency);
        true
    }

    /// Adds a runtime system package once; whether anything changed.
    pub fn add_system_package(&mut self, package: DebianPackage) -> bool {
        add_once(&mut self.system_packages, package)
    }

    /// Adds a build-only system package once; whether anything changed.
    pub fn add_build_package(&mut self, package: DebianPackage) -> bool {
        add_once(&mut self.build_packages, package)
    }
}

fn add_once(list: &mut Vec<DebianPackage>, package: DebianPackage) -> bool {
    if list.contains(&package) {
        return false;
    }
    list.push(package);
    true
}

/// A stage worker's lease on a deployment. While it is held and not expired, other workers
/// leave the deployment alone (and ask the bus to redeliver later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub holder: String,
    pub stage: Stage,
    pub expires_at: DateTime<Utc>,
}

impl Claim {
    /// The one rule for a lease: it holds until `expires_at`, and not at that instant.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }

    /// Whether a holder should renew: once a third of `lease` has passed.
    pub fn needs_renewal(&self, lease: Duration, now: DateTime<Utc>) -> bool {
        self.expires_at - now < lease * 2 / 3
    }
}

/// What a finished stage leaves on its deployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageResult {
    /// Detected language and framework (analyze).
    pub summary: Option<String>,
    /// The commit that was fetched (analyze).
    pub commit: Option<String>,
    /// What the build produced (build).
    pub artifact: Option<Artifact>,
    /// Where the app answers, and the revision that serves it (deploy).
    pub url: Option<String>,
    pub revision: Option<String>,
}

/// Why a stage's result was not committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommitRefused {
    /// The committing worker no longer holds the claim, the stage is done, or the deployment
    /// is over: its result is dropped.
    #[error("the claim was lost before the commit")]
    ClaimLost,
    /// The owner asked to abort while the stage finished: the abort wins.
    #[error("an abort was requested")]
    AbortRequested,
}

/// What a build produced: an image in a registry, or a build folder on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Artifact {
    /// A container image: where it is, and its content digest (`sha256:...`).
    ContainerImage { reference: String, digest: String },
    /// A native build in a folder of the machine that runs the runtime.
    LocalBuild { dir: std::path::PathBuf },
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Artifact::ContainerImage { reference, digest } => write!(f, "{reference}@{digest}"),
            Artifact::LocalBuild { dir } => write!(f, "{}", dir.display()),
        }
    }
}

/// Reads an artifact as stored now, or as the plain string earlier versions stored (a local
/// build folder).
fn artifact_or_legacy<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Artifact>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Typed(Artifact),
        Legacy(String),
    }
    Ok(
        Option::<Stored>::deserialize(deserializer)?.map(|stored| match stored {
            Stored::Typed(a) => a,
            Stored::Legacy(dir) => Artifact::LocalBuild { dir: dir.into() },
        }),
    )
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
    /// Those of `env_names` the app gets as plain environment variables; the others are
    /// secret references. Either way the values are in the secrets port only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plain_env_names: Vec<EnvVarName>,
    /// Detected language and framework, for listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Plan changes the user accepted; the analyze stage applies them to the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_override: Option<PlanOverride>,
    /// What the build produced.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "artifact_or_legacy"
    )]
    pub artifact: Option<Artifact>,
    /// The runtime's revision that serves `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The Cloud Run region the app runs in; `None`: the runtime's own (Cloud Run: the
    /// configured `GOOGLE_CLOUD_REGION`; local runtimes have no regions). A redeploy keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// Reachable only by those the owner lets in: no public invoker grant on Cloud Run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
    /// The owner chose to deploy despite high-severity security findings: they are kept as
    /// warnings instead of stopping the deployment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_findings: bool,
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
            plain_env_names: Vec::new(),
            summary: None,
            plan_override: None,
            artifact: None,
            revision: None,
            region: None,
            private: false,
            allow_findings: false,
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

    /// Whether this deployment is waiting for (or running) `stage`.
    pub fn awaits(&self, stage: Stage) -> bool {
        self.status.stage() == Some(stage) && !self.is_done(stage)
    }

    /// The claim of a worker still at work on this deployment: live, and not held by a process
    /// `is_gone` knows to have died.
    pub fn live_claim(&self, now: DateTime<Utc>, is_gone: impl Fn(&str) -> bool) -> Option<&Claim> {
        self.claim
            .as_ref()
            .filter(|c| c.is_live(now) && !is_gone(&c.holder))
    }

    /// Whether `holder` holds the claim.
    pub fn is_held_by(&self, holder: &str) -> bool {
        self.claim.as_ref().is_some_and(|c| c.holder == holder)
    }

    /// Claims the deployment for `holder` to run `stage`, leaving queued if it was.
    pub fn claim(
        &mut self,
        holder: &str,
        stage: Stage,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        if self.status == Status::Queued {
            self.transition(Status::Analyzing, now)?;
        }
        self.claim = Some(Claim {
            holder: holder.to_string(),
            stage,
            expires_at: now + lease,
        });
        let first = stage.first_step();
        self.advance(first, first.start_percent());
        Ok(())
    }

    /// Extends `holder`'s claim by `lease` from `now`; false when it does not hold it.
    pub fn renew_claim(&mut self, holder: &str, lease: Duration, now: DateTime<Utc>) -> bool {
        match self.claim.as_mut() {
            Some(c) if c.holder == holder => {
                c.expires_at = now + lease;
                true
            }
            _ => false,
        }
    }

    /// Gives the claim back (so any worker may retry at once); false when `holder` did not
    /// hold it.
    pub fn release_claim(&mut self, holder: &str) -> bool {
        if self.is_held_by(holder) {
            self.claim = None;
            return true;
        }
        false
    }

    /// Records `stage` as done by `holder` with its result and moves to the next status.
    pub fn commit_stage(
        &mut self,
        stage: Stage,
        holder: &str,
        result: &StageResult,
        now: DateTime<Utc>,
    ) -> Result<(), CommitRefused> {
        if !self.is_held_by(holder) || self.status.is_terminal() || self.is_done(stage) {
            return Err(CommitRefused::ClaimLost);
        }
        if self.abort_requested {
            return Err(CommitRefused::AbortRequested);
        }
        let next = match stage.next() {
            Some(next) => Status::running(next),
            None => Status::Live,
        };
        self.transition(next, now)
            .map_err(|_| CommitRefused::ClaimLost)?;
        self.stages_done.push(stage);
        self.claim = None;
        let last = stage.last_step();
        self.advance(last, last.end_percent());
        let StageResult {
            summary,
            commit,
            artifact,
            url,
            revision,
        } = result.clone();
        self.summary = summary.or(self.summary.take());
        self.commit = commit.or(self.commit.take());
        self.artifact = artifact.or(self.artifact.take());
        self.url = url.or(self.url.take());
        self.revision = revision.or(self.revision.take());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn sample(now: DateTime<Utc>) -> Deployment {
        Deployment::new(
            DeploymentId::parse("d-0123456789abcdef").unwrap(),
            NewDeployment {
                owner: "local".into(),
                source: Source {
                    location: "/tmp/app".into(),
                    archive: None,
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
        let now = at(0);
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
        let now = at(0);
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
        let mut d = sample(at(0));
        d.advance(Step::ContainerBuild, 60);
        d.advance(Step::ContainerBuild, 40);
        assert_eq!(d.progress, 60);
    }

    #[test]
    fn a_claim_is_live_until_it_expires_and_not_when_its_holder_is_gone() {
        let now = at(0);
        let mut d = sample(now);
        d.claim("worker-a", Stage::Analyze, Duration::seconds(20), now)
            .unwrap();
        assert_eq!(d.status, Status::Analyzing);
        let nobody_gone = |_: &str| false;
        assert!(d.live_claim(now, nobody_gone).is_some());
        assert!(d.live_claim(at(19), nobody_gone).is_some());
        // The lease ends at its expiry instant, for every caller alike.
        assert!(d.live_claim(at(20), nobody_gone).is_none());
        assert!(d.live_claim(now, |h| h == "worker-a").is_none());
        assert!(
            !d.claim
                .as_ref()
                .unwrap()
                .needs_renewal(Duration::seconds(20), at(6))
        );
        assert!(
            d.claim
                .as_ref()
                .unwrap()
                .needs_renewal(Duration::seconds(20), at(7))
        );
        assert!(d.renew_claim("worker-a", Duration::seconds(20), at(10)));
        assert!(!d.renew_claim("worker-b", Duration::seconds(20), at(10)));
        assert!(d.live_claim(at(29), nobody_gone).is_some());
    }

    #[test]
    fn only_the_holder_commits_a_stage_and_an_abort_wins() {
        let now = at(0);
        let mut d = sample(now);
        d.claim("a", Stage::Analyze, Duration::seconds(30), now)
            .unwrap();
        let result = StageResult {
            summary: Some("python / flask".into()),
            ..StageResult::default()
        };
        assert_eq!(
            d.commit_stage(Stage::Analyze, "b", &result, now),
            Err(CommitRefused::ClaimLost)
        );
        d.commit_stage(Stage::Analyze, "a", &result, now).unwrap();
        assert_eq!(d.status, Status::Building);
        assert!(d.claim.is_none() && d.is_done(Stage::Analyze) && !d.awaits(Stage::Analyze));
        assert!(d.awaits(Stage::Build));
        assert_eq!(d.progress, Step::SecurityScan.end_percent());
        assert_eq!(d.summary.as_deref(), Some("python / flask"));
        // A second commit of the same stage is refused.
        assert_eq!(
            d.commit_stage(Stage::Analyze, "a", &result, now),
            Err(CommitRefused::ClaimLost)
        );
        d.claim("a", Stage::Build, Duration::seconds(30), now)
            .unwrap();
        d.abort_requested = true;
        assert_eq!(
            d.commit_stage(Stage::Build, "a", &StageResult::default(), now),
            Err(CommitRefused::AbortRequested)
        );
    }

    #[test]
    fn sources_are_told_apart_by_their_text() {
        let kind = |location: &str| Source::at(location).kind();
        assert_eq!(kind("https://github.com/acme/shop"), SourceKind::Git);
        assert_eq!(kind("git@github.com:acme/shop.git"), SourceKind::Git);
        assert_eq!(kind("github.com/acme/shop"), SourceKind::Git);
        assert_eq!(kind("/srv/app"), SourceKind::LocalPath);
        assert_eq!(kind("./app"), SourceKind::LocalPath);
        assert_eq!(kind("file:///srv/repo"), SourceKind::LocalPath);
    }

    #[test]
    fn artifacts_read_what_earlier_versions_stored() {
        let mut json = serde_json::to_value(sample(at(0))).unwrap();
        json["artifact"] = serde_json::json!("/home/me/.devgem/builds/d-1");
        let d: Deployment = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(
            d.artifact,
            Some(Artifact::LocalBuild {
                dir: "/home/me/.devgem/builds/d-1".into()
            })
        );
        let image = Artifact::ContainerImage {
            reference: "us-docker.pkg.dev/p/devgem/shop".into(),
            digest: "sha256:abc".into(),
        };
        json["artifact"] = serde_json::to_value(&image).unwrap();
        assert_eq!(json["artifact"]["kind"], "container_image");
        let d: Deployment = serde_json::from_value(json).unwrap();
        assert_eq!(d.artifact, Some(image));
    }
}
