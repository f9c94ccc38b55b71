//! The ports that do the work: fetch the source, build it, run it.
//!
//! Each error separates what the user must fix (`Failed`/`Rejected`, with a reason and a hint,
//! not retried) from what may pass (`Unavailable`, retried by redelivery).

use async_trait::async_trait;
use devgem_domain::{DeploymentId, ServiceName, Source};
use devgem_plan::BuildPlan;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

use crate::secrets::SecretValue;

/// Where adapters send the lines of output a user should see (build output, app start-up).
pub trait LogSink: Send + Sync {
    fn line(&self, line: &str);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedSource {
    /// The commit that was checked out, when the source is a git repository.
    pub commit: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source cannot be used as given (missing path, unknown repository, no access).
    #[error("{reason}")]
    Rejected { reason: String, hint: String },
    /// A network or server problem that may pass.
    #[error("source unavailable: {0}")]
    Unavailable(String),
    #[error("cancelled")]
    Cancelled,
}

#[async_trait]
pub trait SourceFetcher: Send + Sync {
    /// Puts the source's files into `dest` (an empty folder that exists).
    async fn fetch(
        &self,
        source: &Source,
        dest: &Path,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<FetchedSource, SourceError>;
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub deployment_id: DeploymentId,
    pub service_name: ServiceName,
    /// The checkout, unpacked by the build stage.
    pub source_dir: PathBuf,
    pub plan: BuildPlan,
    pub dockerfile: String,
}

/// What a build produced: an image reference or a local build folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact(pub String);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{reason}")]
    Failed { reason: String, hint: String },
    #[error("builder unavailable: {0}")]
    Unavailable(String),
    #[error("cancelled")]
    Cancelled,
}

#[async_trait]
pub trait Builder: Send + Sync {
    async fn build(
        &self,
        request: &BuildRequest,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Artifact, BuildError>;
}

/// What to run.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub deployment_id: DeploymentId,
    pub service_name: ServiceName,
    pub artifact: Artifact,
    pub plan: BuildPlan,
    /// The user's environment variables, values included.
    pub env: Vec<(String, SecretValue)>,
}

/// A running release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{reason}")]
    Failed { reason: String, hint: String },
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
    #[error("cancelled")]
    Cancelled,
}

#[async_trait]
pub trait Runtime: Send + Sync {
    /// Starts the artifact, waits until it answers, and returns its URL. Deploying the same
    /// deployment again replaces what ran before.
    async fn deploy(
        &self,
        request: &DeployRequest,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError>;

    /// Stops the deployment's app; stopping one that does not run is not an error.
    async fn stop(&self, id: &DeploymentId) -> Result<(), RuntimeError>;

    /// The app's recent output (stdout and stderr), oldest line first.
    async fn logs(&self, id: &DeploymentId) -> Result<String, RuntimeError>;
}
