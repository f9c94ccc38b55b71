//! The Docker runtime: runs a deployment's image as one container, the way Cloud Run runs a
//! revision: `PORT` (the container port, 8080) inside, `K_SERVICE`, `K_REVISION` and
//! `K_CONFIGURATION` set, the spec's memory and CPU as limits, the plan's settings and the
//! user's variables (resolved from the secrets port at start, so they are in the container's
//! environment only, never in an image or a label), published on a free 127.0.0.1 port.
//!
//! A container is live once its port accepts a TCP connection (probed at the container's own
//! address, since the engine's port proxy accepts on the host side before the app listens)
//! and `GET /` through the published port answers without a 5xx. The container's labels are
//! its record: deployment, service, revision, URL and the release spec (secret references only),
//! so revisions can be listed, started again (a rollback) and changed (an env update).

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerSummary, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use chrono::{DateTime, Utc};
use devgem_domain::{Artifact, DeploymentId, Region, ServiceName};
use devgem_plan::port_not_opened;
use devgem_ports::{
    EnvUpdate, LogPage, LogQuery, LogSink, Release, ReleaseSpec, Revision, Runtime, RuntimeError,
    Secrets,
};
use futures::StreamExt;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::build::Tail;
use crate::engine::Engine;
use crate::labels;
use crate::probe;

/// How the runtime behaves.
#[derive(Debug, Clone)]
pub struct DockerRunConfig {
    /// The longest the app may take to accept connections; the spec's startup probe timeout
    /// is used when it is shorter.
    pub ready_timeout: Duration,
    /// How long `GET /` may take to answer once the port is open.
    pub http_timeout: Duration,
    /// How long a stopped container gets between SIGTERM and SIGKILL (Cloud Run: 10 s).
    pub stop_grace: Duration,
    /// How long the app may listen on other ports only before that counts as the port mistake.
    pub wrong_port_grace: Duration,
}

impl Default for DockerRunConfig {
    fn default() -> Self {
        Self {
            ready_timeout: Duration::from_secs(60),
            http_timeout: Duration::from_secs(10),
            stop_grace: Duration::from_secs(5),
            wrong_port_grace: Duration::from_secs(3),
        }
    }
}

/// Runs each deployment as one container on the engine (the latest revision of that
/// deployment; the one before it is removed once the new one answers).
#[derive(Clone)]
pub struct DockerRuntime {
    engine: Engine,
    secrets: Arc<dyn Secrets>,
    config: DockerRunConfig,
}

/// How many lines of the app's output a failure quotes, and `logs` returns.
const FAILURE_LINES: usize = 20;
const LOG_LINES: usize = 500;

fn failed(reason: impl Into<String>, hint: impl Into<String>) -> RuntimeError {
    RuntimeError::Failed {
        reason: reason.into(),
        hint: hint.into(),
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Unavailable(format!("{what}: {e}"))
}

/// One container DevGem started, read back from its labels.
#[derive(Debug, Clone)]
struct Run {
    container: String,
    deployment_id: DeploymentId,
    revision: String,
    url: String,
    started_at: DateTime<Utc>,
    running: bool,
    spec: Option<ReleaseSpec>,
}

impl Run {
    fn from_summary(summary: &ContainerSummary) -> Option<Self> {
        let labels = summary.labels.as_ref()?;
        Some(Self {
            container: summary.id.clone()?,
            deployment_id: DeploymentId::parse(labels.get(labels::DEPLOYMENT)?).ok()?,
            revision: labels.get(labels::REVISION)?.clone(),
            url: labels.get(labels::URL).cloned().unwrap_or_default(),
            started_at: labels
                .get(labels::STARTED_AT)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
            running: summary
                .state
                .as_ref()
                .is_some_and(|s| matches!(s, bollard::models::ContainerSummaryStateEnum::RUNNING)),
            spec: labels
                .get(labels::SPEC)
                .and_then(|s| serde_json::from_str(s).ok()),
        })
    }
}

impl DockerRuntime {
    pub fn new(engine: Engine, secrets: Arc<dyn Secrets>) -> Self {
        Self::with_config(engine, secrets, DockerRunConfig::default())
    }

    pub fn with_config(engine: Engine, secrets: Arc<dyn Secrets>, config: DockerRunConfig) -> Self {
        Self {
            engine,
            secrets,
            config,
        }
    }

    async fn docker(&self) -> Result<&Docker, RuntimeError> {
        self.engine
            .client()
            .await
            .map_err(RuntimeError::Unavailable)
    }

    /// DevGem's containers with label `key=value`, newest first.
    async fn runs(&self, key: &str, value: &str) -> Result<Vec<Run>, RuntimeError> {
        let filters = HashMap::from([("label", vec![format!("{key}={value}")])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker()
            .await?
            .list_containers(Some(options))
            .await
            .map_err(|e| unavailable("listing containers", e))?;
        let mut runs: Vec<Run> = summaries.iter().filter_map(Run::from_summary).collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        Ok(runs)
    }

    /// The user's variables, resolved from the secrets port at start.
    async fn resolve_secrets(&self, spec: &ReleaseSpec) -> Result<Vec<String>, RuntimeError> {
        let mut env = Vec::new();
        for s in &spec.secret_env {
            let value = self
                .secrets
                .get(&s.secret)
                .await
                .map_err(|e| unavailable("the secret store", e))?
                .ok_or_else(|| {
                    failed(
                        format!("the value of {} is missing from the secret store", s.name),
                        "set the variable again and redeploy",
                    )
                })?;
            env.push(format!("{}={}", s.name, value.expose()));
        }
        Ok(env)
    }

    async fn remove(&self, container: &str) {
        if let Ok(docker) = self.docker().await {
            let options = RemoveContainerOptionsBuilder::default().force(true).build();
            let _ = docker.remove_container(container, Some(options)).await;
        }
    }

    async fn stop_container(&self, container: &str) {
        if let Ok(docker) = self.docker().await {
            let options = StopContainerOptionsBuilder::default()
                .t(self.config.stop_grace.as_secs() as i32)
                .build();
            let _ = docker.stop_container(container, Some(options)).await;
        }
    }

    /// Starts `spec` as `revision` in a new container and waits until it answers; then the
    /// deployment's earlier containers are removed. A failed start removes the new container
    /// and leaves the earlier one serving.
    async fn start(
        &self,
        spec: &ReleaseSpec,
        revision: String,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError> {
        let image = match &spec.artifact {
            Artifact::ContainerImage { reference, digest } => {
                // The image id, when known: a later build that reuses the tag does not change
                // what this revision runs (a rollback runs the previous image).
                if digest.is_empty() {
                    reference.clone()
                } else {
                    digest.clone()
                }
            }
            Artifact::LocalBuild { dir } => {
                return Err(failed(
                    format!(
                        "the docker runtime runs container images, and {} is a native build",
                        dir.display()
                    ),
                    "build images with DEVGEM_BUILDER=docker, or run native builds with \
                     DEVGEM_RUNTIME=process",
                ));
            }
        };
        let earlier = self
            .runs(labels::DEPLOYMENT, spec.deployment_id.as_str())
            .await?;
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.extend(self.resolve_secrets(spec).await?);
        let service = spec.service_name.as_str();
        env.extend([
            format!("PORT={}", spec.container_port),
            format!("K_SERVICE={service}"),
            format!("K_CONFIGURATION={service}"),
            format!("K_REVISION={revision}"),
        ]);
        let host_port = probe::free_port().map_err(|e| unavailable("no free port", e))?;
        let url = format!("http://127.0.0.1:{host_port}");
        let started_at = Utc::now();
        let mut container_labels: HashMap<String, String> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        container_labels.extend([
            (labels::DEPLOYMENT.into(), spec.deployment_id.to_string()),
            (labels::SERVICE.into(), service.to_string()),
            (labels::REVISION.into(), revision.clone()),
            (labels::URL.into(), url.clone()),
            (labels::STARTED_AT.into(), started_at.to_rfc3339()),
            (
                labels::SPEC.into(),
                serde_json::to_string(spec).map_err(|e| unavailable("the release spec", e))?,
            ),
        ]);
        let port_key = format!("{}/tcp", spec.container_port);
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            env: Some(env),
            labels: Some(container_labels),
            exposed_ports: Some(vec![port_key.clone()]),
            host_config: Some(HostConfig {
                memory: Some(i64::from(spec.resources.memory_mib) << 20),
                nano_cpus: Some(i64::from(spec.resources.cpu_millis) * 1_000_000),
                port_bindings: Some(HashMap::from([(
                    port_key,
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(host_port.to_string()),
                    }]),
                )])),
                init: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = format!(
            "devgem-{revision}-{}",
            started_at.timestamp_millis() % 1_000_000
        );
        let docker = self.docker().await?;
        let created = docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .map_err(|e| match e {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    message,
                } => failed(
                    format!("the image {image} is not on the Docker engine: {message}"),
                    "build the deployment again",
                ),
                e => unavailable("creating the container", e),
            })?;
        let container = created.id;
        log.line(&format!(
            "Starting container {name} from {image} (PORT={}, published on {url}, {} MiB, {} mCPU)",
            spec.container_port, spec.resources.memory_mib, spec.resources.cpu_millis
        ));
        if let Err(e) = docker.start_container(&container, None).await {
            self.remove(&container).await;
            return Err(failed(
                format!("the container could not start: {e}"),
                "check the image's CMD and ENTRYPOINT",
            ));
        }
        tracing::info!(deployment = %spec.deployment_id, %container, host_port, "started the container");
        match self
            .wait_live(&container, spec, host_port, log, cancel)
            .await
        {
            Ok(()) => {
                for run in earlier {
                    log.line(&format!(
                        "Removing the earlier container of revision {}",
                        run.revision
                    ));
                    self.stop_container(&run.container).await;
                    self.remove(&run.container).await;
                }
                Ok(Release { url, revision })
            }
            Err(e) => {
                self.remove(&container).await;
                Err(e)
            }
        }
    }

    /// Waits until the container accepts TCP on its port, then probes `GET /`.
    async fn wait_live(
        &self,
        container: &str,
        spec: &ReleaseSpec,
        host_port: u16,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(), RuntimeError> {
        let docker = self.docker().await?;
        let port = spec.container_port;
        let finding = spec.hard_coded_port.as_ref();
        let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
        let follower = tokio::spawn(follow_logs(docker.clone(), container.to_string(), lines_tx));
        let _stop_following = AbortOnDrop(follower);
        let mut tail = Tail::default();
        let forward = |lines: &mut mpsc::UnboundedReceiver<String>, tail: &mut Tail| {
            while let Ok(line) = lines.try_recv() {
                log.line(&line);
                tail.push(&line);
            }
        };

        let ready_timeout = self.config.ready_timeout.min(spec.startup_probe.timeout);
        let period = spec
            .startup_probe
            .period
            .clamp(Duration::from_millis(100), Duration::from_millis(250));
        let started = Instant::now();
        let deadline = started + ready_timeout;
        let mut wrong_port_since: Option<Instant> = None;
        loop {
            let state = docker
                .inspect_container(container, None)
                .await
                .map_err(|e| unavailable("inspecting the container", e))?;
            let running = state
                .state
                .as_ref()
                .and_then(|s| s.running)
                .unwrap_or(false);
            if !running {
                // Its last words arrive after it exits: read them whole.
                let output = container_logs(docker, container, FAILURE_LINES).await;
                let code = state.state.and_then(|s| s.exit_code).unwrap_or(-1);
                return Err(failed(
                    format!(
                        "the app exited with code {code} before it listened on $PORT ({port}); its last output:\n{}",
                        output.trim_end()
                    ),
                    exit_hint(code, &output),
                ));
            }
            let ip = state
                .network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref())
                .and_then(|n| n.values().find_map(|e| e.ip_address.clone()))
                .and_then(|ip| ip.parse::<IpAddr>().ok());
            let probe_at = match ip {
                Some(ip) => SocketAddr::new(ip, port),
                // An engine on another host: only the published port can be tried.
                None => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), host_port),
            };
            tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                open = probe::connects(probe_at) => if open { break },
            }
            forward(&mut lines, &mut tail);
            if let Some(pid) = state.state.as_ref().and_then(|s| s.pid).filter(|p| *p > 0) {
                let listening = probe::listening_ports(pid);
                if !listening.is_empty() && !listening.contains(&port) {
                    let first = *wrong_port_since.get_or_insert_with(Instant::now);
                    if first.elapsed() >= self.config.wrong_port_grace {
                        let listening: Vec<u16> = listening.into_iter().collect();
                        return Err(failed(
                            format!(
                                "{}; its last output:\n{}",
                                port_not_opened(port, &listening, 0, finding),
                                tail.last(FAILURE_LINES)
                            ),
                            "make it read the PORT environment variable (Cloud Run sets it, 8080 by default)",
                        ));
                    }
                } else {
                    wrong_port_since = None;
                }
            }
            if Instant::now() >= deadline {
                return Err(failed(
                    format!(
                        "{}; its last output:\n{}",
                        port_not_opened(port, &[], ready_timeout.as_secs(), finding),
                        tail.last(FAILURE_LINES)
                    ),
                    "the app must listen on 0.0.0.0 at the port in the PORT environment variable",
                ));
            }
            tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                () = tokio::time::sleep(period) => {}
            }
        }
        log.line(&format!(
            "The app accepts connections on port {port} ({:.1} s after start)",
            started.elapsed().as_secs_f64()
        ));

        // Through the published port, as a user will reach it. A 5xx or no answer is retried
        // until the HTTP timeout: a server may accept a moment before it answers well.
        let published = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), host_port);
        let probe_deadline = Instant::now() + self.config.http_timeout;
        let outcome = loop {
            let left = probe_deadline.saturating_duration_since(Instant::now());
            let outcome = tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                outcome = probe::http_get(published, left.max(Duration::from_millis(100))) => outcome,
            };
            let retry = !matches!(outcome, Ok(status) if status < 500);
            if !retry || Instant::now() + Duration::from_millis(300) >= probe_deadline {
                break outcome;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        forward(&mut lines, &mut tail);
        match outcome {
            Ok(status) if status < 500 => {
                log.line(&format!("GET / answered {status}"));
                Ok(())
            }
            Ok(status) => Err(failed(
                format!(
                    "GET / answered {status}; the app's last output:\n{}",
                    tail.last(FAILURE_LINES)
                ),
                "the app fails on its first request: read its log",
            )),
            Err(why) => Err(failed(
                format!(
                    "the app accepted a connection on port {port} but {why}; its last output:\n{}",
                    tail.last(FAILURE_LINES)
                ),
                "the app must answer HTTP on $PORT",
            )),
        }
    }
}

/// A hint for an app that exited at start, from its exit code and output.
fn exit_hint(code: i64, output: &str) -> String {
    if code == 137 || output.contains("Killed") {
        "the app was killed, most likely out of memory: raise the memory or make it use less".into()
    } else if output.contains("ModuleNotFoundError") || output.contains("Cannot find module") {
        "a module the app imports is not installed: add it to the dependency file".into()
    } else if code == 127 {
        "the start command is not in the image: check the CMD and the installed packages".into()
    } else {
        "the app fails at start: its output is above".into()
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends the container's output, line by line, until it ends or the receiver goes.
async fn follow_logs(docker: Docker, container: String, lines: mpsc::UnboundedSender<String>) {
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = docker.logs(&container, Some(options));
    let mut partial = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        partial.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        while let Some(end) = partial.find('\n') {
            let line: String = partial.drain(..=end).collect();
            let line = line.trim_end();
            if !line.trim().is_empty() && lines.send(line.to_string()).is_err() {
                return;
            }
        }
    }
}

/// The container's last `n` lines of output (stdout and stderr, as they came).
async fn container_logs(docker: &Docker, container: &str, n: usize) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let chunks: Vec<_> = docker.logs(container, Some(options)).collect().await;
    let mut out = String::new();
    for chunk in chunks.into_iter().flatten() {
        out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    out
}

/// Containers run on this machine's Docker engine, which has no regions: the `region` of a
/// spec or a call is ignored (it matters to Cloud Run only).
#[async_trait]
impl Runtime for DockerRuntime {
    async fn deploy(
        &self,
        spec: &ReleaseSpec,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError> {
        self.start(spec, spec.first_revision(), log, cancel).await
    }

    async fn stop(&self, id: &DeploymentId, _region: Option<&Region>) -> Result<(), RuntimeError> {
        for run in self.runs(labels::DEPLOYMENT, id.as_str()).await? {
            if run.running {
                self.stop_container(&run.container).await;
            }
        }
        Ok(())
    }

    async fn logs(
        &self,
        id: &DeploymentId,
        _region: Option<&Region>,
        query: &LogQuery,
    ) -> Result<LogPage, RuntimeError> {
        let Some(run) = self
            .runs(labels::DEPLOYMENT, id.as_str())
            .await?
            .into_iter()
            .next()
        else {
            return Ok(LogPage::default());
        };
        let docker = self.docker().await?;
        let text = container_logs(docker, &run.container, query.limit.min(LOG_LINES)).await;
        Ok(LogPage::tail(text.lines().map(str::to_string), query.limit))
    }

    async fn revisions(
        &self,
        service: &ServiceName,
        _region: Option<&Region>,
    ) -> Result<Vec<Revision>, RuntimeError> {
        Ok(self
            .runs(labels::SERVICE, service.as_str())
            .await?
            .into_iter()
            .map(|run| Revision {
                name: run.revision,
                deployment_id: run.deployment_id,
                created_at: run.started_at,
                serving: run.running,
                url: run.running.then_some(run.url),
            })
            .collect())
    }

    async fn route_traffic(
        &self,
        service: &ServiceName,
        _region: Option<&Region>,
        revision: &str,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError> {
        let runs = self.runs(labels::SERVICE, service.as_str()).await?;
        let Some(target) = runs.iter().find(|r| r.revision == revision).cloned() else {
            let known: Vec<&str> = runs.iter().map(|r| r.revision.as_str()).collect();
            return Err(failed(
                format!("service {service} has no revision {revision:?}"),
                format!(
                    "pick one of its revisions: {}",
                    if known.is_empty() {
                        "(none)".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        let release = if target.running {
            Release {
                url: target.url.clone(),
                revision: revision.to_string(),
            }
        } else {
            let Some(spec) = target.spec.clone() else {
                return Err(failed(
                    format!(
                        "revision {revision} has no release recorded and cannot be started again"
                    ),
                    "deploy the service again",
                ));
            };
            log.line(&format!("Starting revision {revision} again"));
            self.start(&spec, revision.to_string(), log, cancel).await?
        };
        // All traffic to the target: the service's other containers stop once it answers.
        for run in runs {
            if run.deployment_id != target.deployment_id && run.running {
                log.line(&format!("Stopping revision {}", run.revision));
                self.stop_container(&run.container).await;
            }
        }
        Ok(release)
    }

    async fn update_env(
        &self,
        service: &ServiceName,
        _region: Option<&Region>,
        update: &EnvUpdate,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError> {
        let Some(serving) = self
            .runs(labels::SERVICE, service.as_str())
            .await?
            .into_iter()
            .find(|r| r.running)
        else {
            return Err(failed(
                format!("service {service} has no running revision to change"),
                "deploy it (or roll back to a revision) first",
            ));
        };
        let Some(mut spec) = serving.spec.clone() else {
            return Err(failed(
                format!("the running revision of {service} has no release recorded"),
                "deploy the service again",
            ));
        };
        for name in &update.remove {
            spec.env.remove(name);
            spec.secret_env.retain(|s| s.name.as_str() != name);
        }
        for (name, value) in &update.set {
            spec.secret_env.retain(|s| s.name.as_str() != name);
            spec.env.insert(name.clone(), value.clone());
        }
        for secret in &update.set_secrets {
            spec.env.remove(secret.name.as_str());
            spec.secret_env.retain(|s| s.name != secret.name);
            spec.secret_env.push(secret.clone());
        }
        let revision = devgem_ports::next_revision(&serving.revision);
        log.line(&format!(
            "Starting revision {revision} with the new environment"
        ));
        self.start(&spec, revision, log, cancel).await
    }
}
