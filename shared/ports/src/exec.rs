//! The ports that do the work: fetch the source, build it, run it.
//!
//! Each error separates what the user must fix (`Failed`/`Rejected`, with a reason and a hint,
//! not retried) from what may pass (`Unavailable`, retried by redelivery).

use crate::SecretValue;
use async_trait::async_trait;
pub use devgem_domain::Artifact;
use devgem_domain::{DeploymentId, EnvVarName, ImageRef, Region, ServiceName, Source};
use devgem_plan::{BuildPlan, PortFinding};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    /// Puts the source's files into `dest` (an empty folder that exists). `credential` is a
    /// token that can read the repository (its owner's GitHub token), used instead of the
    /// fetcher's own; it never reaches a file, an argument list, a log line or an error.
    async fn fetch(
        &self,
        source: &Source,
        credential: Option<&SecretValue>,
        dest: &Path,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<FetchedSource, SourceError>;
}

/// Where a build's source is. The packed checkout is always in object storage; for a git
/// source the repository and the exact commit are named too, so a remote builder (Cloud Build)
/// may clone it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSource {
    /// The object key of the `.tar.gz` of the checkout.
    pub archive_key: String,
    pub git: Option<GitRevision>,
}

/// A repository and the exact commit that was analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRevision {
    pub url: String,
    pub commit: String,
    /// The secrets-port key of a token that can read the repository (its owner's GitHub
    /// token), when they have one: a remote builder reads the value from its secret store,
    /// so the request never carries it.
    pub credential: Option<String>,
}

/// What to build: the source, the plan, its rendered Dockerfile and `.dockerignore`, and the
/// image to produce (a native builder keeps a folder instead).
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub deployment_id: DeploymentId,
    pub service_name: ServiceName,
    pub source: BuildSource,
    pub plan: BuildPlan,
    pub dockerfile: String,
    pub dockerignore: String,
    pub image: ImageRef,
    /// Labels for the image: the deployment, the repository and the commit.
    pub labels: BTreeMap<String, String>,
}

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

/// An environment variable whose value lives in the secrets port; the runtime resolves it when
/// the app starts (Cloud Run: a Secret Manager reference), so no request carries the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEnv {
    pub name: EnvVarName,
    /// The key of the value in the secrets port.
    pub secret: String,
    /// `latest`, or a version number.
    pub version: String,
}

/// CPU and memory of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Thousandths of a CPU (1000 = one CPU).
    pub cpu_millis: u32,
    pub memory_mib: u32,
}

/// How many instances may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaling {
    pub min_instances: u32,
    pub max_instances: u32,
}

/// Cloud Run's startup probe: the container port must accept a TCP connection within
/// `timeout`, tried every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpProbe {
    pub port: u16,
    pub period: Duration,
    pub timeout: Duration,
}

/// What to run: everything Cloud Run's service template needs, and the local runtimes honour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSpec {
    pub deployment_id: DeploymentId,
    pub service_name: ServiceName,
    pub artifact: Artifact,
    /// The port the app listens on inside its container: `$PORT`, 8080 on Cloud Run.
    pub container_port: u16,
    /// The command and folder (inside a local build) a runtime without an image starts; an
    /// image brings its own.
    pub start_command: Option<String>,
    pub working_dir: Option<String>,
    /// Plain settings (the plan's production settings).
    pub env: BTreeMap<String, String>,
    /// The user's variables, as references.
    pub secret_env: Vec<SecretEnv>,
    pub resources: Resources,
    pub scaling: Scaling,
    pub startup_probe: TcpProbe,
    pub labels: BTreeMap<String, String>,
    /// Whether anyone may call the app (Cloud Run: `roles/run.invoker` for `allUsers`). A
    /// spec recorded before the field existed reads as public, the default.
    #[serde(default = "public_by_default")]
    pub public: bool,
    /// The port the code listens on instead of `$PORT`, as the analyzer found it: named in
    /// the error when the app does not open `container_port`.
    #[serde(default)]
    pub hard_coded_port: Option<PortFinding>,
    /// The region the service runs in (the deployment's); `None`: the runtime's own (Cloud
    /// Run: `GOOGLE_CLOUD_REGION`). Runtimes on this machine have no regions and ignore it.
    #[serde(default)]
    pub region: Option<Region>,
}

fn public_by_default() -> bool {
    true
}

impl ReleaseSpec {
    /// The release of `artifact` for `plan`, with the user's variables `secret_env`. Cloud
    /// Run's defaults where the plan says nothing: one CPU, 512 MiB, zero to ten instances.
    pub fn from_plan(
        deployment_id: DeploymentId,
        service_name: ServiceName,
        artifact: Artifact,
        plan: &BuildPlan,
        secret_env: Vec<SecretEnv>,
        labels: BTreeMap<String, String>,
    ) -> Self {
        let local = matches!(artifact, Artifact::LocalBuild { .. });
        let mut env = plan.env.clone();
        // The runtime sets PORT itself, as Cloud Run does.
        env.remove("PORT");
        Self {
            deployment_id,
            service_name,
            container_port: plan.deploy_port,
            start_command: local.then(|| plan.native_start().to_string()),
            working_dir: local.then(|| plan.app_dir.clone()),
            artifact,
            env,
            secret_env,
            resources: Resources {
                cpu_millis: 1000,
                memory_mib: 512,
            },
            scaling: Scaling {
                min_instances: 0,
                max_instances: 10,
            },
            startup_probe: TcpProbe {
                port: plan.deploy_port,
                period: Duration::from_secs(1),
                timeout: Duration::from_secs(240),
            },
            labels,
            public: true,
            hard_coded_port: plan.hard_coded_port.clone(),
            region: None,
        }
    }
}

impl ReleaseSpec {
    /// The name of a deployment's first revision, as every runtime names it: the service and
    /// the random end of the deployment id.
    pub fn first_revision(&self) -> String {
        let id = self.deployment_id.as_str();
        format!(
            "{}-{}",
            self.service_name,
            &id[id.len().saturating_sub(8)..]
        )
    }
}

/// The revision after `name`: `svc-abc` -> `svc-abc-r2` -> `svc-abc-r3`.
pub fn next_revision(name: &str) -> String {
    let generation = name
        .rsplit_once("-r")
        .and_then(|(base, n)| Some((base, n.parse::<u32>().ok()?)));
    match generation {
        Some((base, n)) => format!("{base}-r{}", n + 1),
        None => format!("{name}-r2"),
    }
}

/// A running release: where it answers and the revision that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub url: String,
    pub revision: String,
}

/// One revision of a service, newest first in listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub name: String,
    pub deployment_id: DeploymentId,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Whether it receives the service's traffic now.
    pub serving: bool,
    pub url: Option<String>,
}

/// A change to a service's environment, applied as a new revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvUpdate {
    pub set: BTreeMap<String, String>,
    pub set_secrets: Vec<SecretEnv>,
    pub remove: Vec<String>,
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

/// The methods that address a service take the region it runs in: the deployment's
/// (`Deployment::region`), `None` for the runtime's own. Cloud Run needs it (a service is
/// `projects/p/locations/REGION/services/s`); runtimes on this machine have no regions and
/// ignore it.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// Starts the release as a new revision of its service (in `spec.region`), waits until it
    /// answers, and returns its URL and revision. Deploying the same deployment again replaces
    /// what ran before.
    async fn deploy(
        &self,
        spec: &ReleaseSpec,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError>;

    /// Stops the deployment's app; stopping one that does not run is not an error.
    async fn stop(&self, id: &DeploymentId, region: Option<&Region>) -> Result<(), RuntimeError>;

    /// The app's output (stdout and stderr), oldest line first, at most `query.limit` lines
    /// of it: the newest ones, or the page `query.page_token` names. `region` is the
    /// deployment's (`None`: the runtime's own).
    async fn logs(
        &self,
        id: &DeploymentId,
        region: Option<&Region>,
        query: &LogQuery,
    ) -> Result<LogPage, RuntimeError>;

    /// The service's revisions, newest first.
    async fn revisions(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
    ) -> Result<Vec<Revision>, RuntimeError>;

    /// Sends all of the service's traffic to `revision` (a rollback when it is older),
    /// starting it again if it does not run.
    async fn route_traffic(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
        revision: &str,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError>;

    /// Applies `update` to the serving revision's environment as a new revision.
    async fn update_env(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
        update: &EnvUpdate,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError>;

    /// The serving revision's environment as the runtime holds it, when it can be read back
    /// (Cloud Run: the service's container env, which someone may have changed directly).
    /// `None`: this runtime keeps no env of its own beyond DevGem's records.
    async fn current_env(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
    ) -> Result<Option<Vec<RuntimeEnv>>, RuntimeError> {
        let _ = (service, region);
        Ok(None)
    }

    /// Maps `domain` to the service; answers with the DNS records the user must set.
    async fn map_domain(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
        domain: &str,
    ) -> Result<DomainMapping, RuntimeError> {
        let _ = (service, region, domain);
        Err(no_domains())
    }

    /// The service's domain mappings with their status.
    async fn domains(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
    ) -> Result<Vec<DomainMapping>, RuntimeError> {
        let _ = (service, region);
        Err(no_domains())
    }
}

fn no_domains() -> RuntimeError {
    RuntimeError::Failed {
        reason: "custom domains need Cloud Run; this runtime serves on a loopback port".into(),
        hint:
            "deploy with DEVGEM_RUNTIME=cloudrun (or `devgem deploy --to cloudrun`) to map a domain"
                .into(),
    }
}

/// One variable of a running service: a value, or a reference to a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEnv {
    Plain { name: String, value: String },
    Secret { name: String, secret: String },
}

impl RuntimeEnv {
    pub fn name(&self) -> &str {
        match self {
            RuntimeEnv::Plain { name, .. } | RuntimeEnv::Secret { name, .. } => name,
        }
    }
}

/// Which lines of a log to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// At most this many lines (the newest ones when no page is named).
    pub limit: usize,
    /// A page an earlier [`LogPage::next_page_token`] named.
    pub page_token: Option<String>,
}

impl Default for LogQuery {
    fn default() -> Self {
        Self {
            limit: 1000,
            page_token: None,
        }
    }
}

/// One line of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub timestamp: Option<chrono::DateTime<chrono::Utc>>,
    pub text: String,
}

/// Lines, oldest first, and where the page before them starts, if there is more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    pub next_page_token: Option<String>,
}

impl LogPage {
    /// The last `limit` of `lines` (a runtime that keeps its output in memory).
    pub fn tail(lines: impl IntoIterator<Item = String>, limit: usize) -> Self {
        let lines: Vec<String> = lines.into_iter().collect();
        let skip = lines.len().saturating_sub(limit);
        Self {
            lines: lines
                .into_iter()
                .skip(skip)
                .map(|text| LogLine {
                    timestamp: None,
                    text,
                })
                .collect(),
            next_page_token: None,
        }
    }

    /// The lines as text, one per line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(&line.text);
            out.push('\n');
        }
        out
    }
}

/// A custom domain mapped to a service, and what DNS must say for it to work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainMapping {
    pub domain: String,
    pub status: DomainStatus,
    pub records: Vec<DnsRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "message")]
pub enum DomainStatus {
    /// Waiting for DNS or for the certificate.
    Pending(String),
    Ready,
    Failed(String),
}

/// One record to set at the domain's DNS provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// `A`, `AAAA` or `CNAME`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub data: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_count_up() {
        assert_eq!(next_revision("shop-0a1b2c3d"), "shop-0a1b2c3d-r2");
        assert_eq!(next_revision("shop-0a1b2c3d-r2"), "shop-0a1b2c3d-r3");
        assert_eq!(next_revision("my-shop-12345678-r9"), "my-shop-12345678-r10");
        assert_eq!(next_revision("web-r2d2-12345678"), "web-r2d2-12345678-r2");
    }
}
