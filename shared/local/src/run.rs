//! The local runtime: starts a built app as a process of its own that listens on `$PORT`,
//! outlives the DevGem process that started it, and is found again (to stop it, to read its
//! logs) through `<base>/<deployment>/runtime.json`.
//!
//! A deployment is live once its port accepts connections and `GET /` answers without a 5xx,
//! the local counterpart of Cloud Run's TCP startup probe followed by DevGem's URL probe.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use devgem_domain::{Artifact, DeploymentId, Region, ServiceName};
use devgem_plan::{PortFinding, port_not_opened};
use devgem_ports::{
    EnvUpdate, LogPage, LogQuery, LogSink, Release, ReleaseSpec, Revision, Runtime, RuntimeError,
    Secrets,
};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::hint;
use crate::port::{self, Listener};
use crate::process::{self, Tail};
use crate::tree;

/// How the runtime behaves.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// How long the app may take to accept connections on `$PORT`.
    pub ready_timeout: Duration,
    /// How long `GET /` may take to answer once the port is open.
    pub http_timeout: Duration,
    /// How long a stopped app gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// How long the app may listen on other ports only before that counts as the port
    /// mistake (some apps open a side port first and `$PORT` a moment later).
    pub wrong_port_grace: Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            ready_timeout: Duration::from_secs(60),
            http_timeout: Duration::from_secs(10),
            stop_grace: Duration::from_secs(5),
            wrong_port_grace: Duration::from_secs(3),
        }
    }
}

/// Runs each deployment as a process group of its own, with its state in
/// `<base_dir>/<deployment id>/` (`runtime.json`, `app.log`). A deployment's current run is
/// a revision of its service; the user's variables are read from the secrets port when the app
/// starts, as Cloud Run reads Secret Manager.
#[derive(Clone)]
pub struct ProcessRuntime {
    base_dir: PathBuf,
    secrets: Arc<dyn Secrets>,
    config: RunConfig,
}

/// A deployment's app as `devgem status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningApp {
    pub pid: u32,
    pub pgid: u32,
    pub port: u16,
    pub url: String,
    pub started_at: DateTime<Utc>,
    /// Whether its processes still run (false: it exited or crashed since it went live).
    pub alive: bool,
}

/// What `runtime.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    pid: i32,
    pgid: i32,
    port: u16,
    url: String,
    started_at: DateTime<Utc>,
    /// The leader's start time, so a recycled pid is never taken for the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_ticks: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stopped_at: Option<DateTime<Utc>>,
    /// The revision this run is, and the release it runs (references, never secret values),
    /// so that it can be listed, started again (a rollback) or changed (an env update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec: Option<ReleaseSpec>,
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

impl ProcessRuntime {
    pub fn new(base_dir: impl Into<PathBuf>, secrets: Arc<dyn Secrets>) -> Self {
        Self::with_config(base_dir, secrets, RunConfig::default())
    }

    pub fn with_config(
        base_dir: impl Into<PathBuf>,
        secrets: Arc<dyn Secrets>,
        config: RunConfig,
    ) -> Self {
        Self {
            base_dir: base_dir.into(),
            secrets,
            config,
        }
    }

    /// Every recorded run of `service`, with its deployment.
    fn runs_of(&self, service: &ServiceName) -> Vec<(DeploymentId, Record)> {
        let Ok(entries) = std::fs::read_dir(&self.base_dir) else {
            return Vec::new();
        };
        let mut runs: Vec<(DeploymentId, Record)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| DeploymentId::parse(&e.file_name().to_string_lossy()).ok())
            .filter_map(|id| self.read_record(&id).map(|r| (id, r)))
            .filter(|(_, r)| r.spec.as_ref().is_some_and(|s| &s.service_name == service))
            .collect();
        runs.sort_by_key(|run| std::cmp::Reverse(run.1.started_at));
        runs
    }

    /// The user's variables, resolved from the secrets port at start.
    async fn resolve_secrets(
        &self,
        spec: &ReleaseSpec,
    ) -> Result<Vec<(String, String)>, RuntimeError> {
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
            env.push((s.name.as_str().to_string(), value.expose().to_string()));
        }
        Ok(env)
    }

    /// Starts `spec` as `revision` in its deployment's folder, replacing that deployment's
    /// earlier run, and waits until it answers.
    async fn start(
        &self,
        spec: &ReleaseSpec,
        revision: String,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError> {
        let id = &spec.deployment_id;
        let dir = self.dir(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| unavailable(&format!("could not create {}", dir.display()), e))?;
        if let Some(old) = self.read_record(id).filter(|r| r.stopped_at.is_none()) {
            log.line("Stopping the previous run of this deployment");
            self.stop_record(id, old, self.config.stop_grace).await;
        }

        let command = spec.start_command.clone().unwrap_or_default();
        if command.trim().is_empty() {
            return Err(failed(
                "the release has no start command",
                "add a Procfile with a `web:` line, or a start script",
            ));
        }
        let Artifact::LocalBuild { dir: root } = &spec.artifact else {
            return Err(failed(
                format!(
                    "the process runtime cannot run the container image {}",
                    spec.artifact
                ),
                "use DEVGEM_RUNTIME=docker or cloudrun for images, or DEVGEM_BUILDER=native",
            ));
        };
        let working_dir = spec.working_dir.clone().unwrap_or_else(|| ".".into());
        if !tree::is_contained(Path::new(&working_dir)) || !root.join(&working_dir).is_dir() {
            return Err(failed(
                format!(
                    "the build folder {} has no app folder {working_dir:?}",
                    root.display(),
                ),
                "build the deployment again",
            ));
        }
        let app_dir = root.join(&working_dir);
        let secrets = self.resolve_secrets(spec).await?;
        let port = port::free_port().map_err(|e| unavailable("no free port", e))?;
        let log_path = self.log_path(id);
        rotate_if_large(&log_path);
        append_line(
            &log_path,
            &format!(
                "--- devgem: starting `{command}` on port {port} at {} ---",
                Utc::now().to_rfc3339()
            ),
        );
        let mut follower = LogFollower::at_end(&log_path);
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| unavailable(&format!("could not open {}", log_path.display()), e))?;
        let err = out.try_clone().map_err(|e| unavailable("app.log", e))?;

        log.line(&format!("$ {command}   (PORT={port})"));
        let mut cmd = Command::new(process::SHELL);
        cmd.arg("-c")
            .arg(command)
            .current_dir(&app_dir)
            .env_clear()
            .envs(run_env(spec, &revision, secrets, root, &app_dir, port))
            // Its own group: Ctrl-C on DevGem does not reach it, and stopping it reaches
            // every process it started.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut child = cmd
            .spawn()
            .map_err(|e| unavailable("could not start sh", e))?;
        let pid = child.id().map_or(0, |p| p as i32);
        let url = format!("http://127.0.0.1:{port}");
        let record = Record {
            pid,
            pgid: pid,
            port,
            url: url.clone(),
            started_at: Utc::now(),
            start_ticks: port::start_ticks(pid),
            stopped_at: None,
            revision: Some(revision.clone()),
            spec: Some(spec.clone()),
        };
        if let Err(e) = self.write_record(id, &record) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            return Err(e);
        }

        tracing::info!(deployment = %id, pid, port, "started the app");
        match self
            .wait_live(&mut child, &record, &mut follower, log, cancel)
            .await
        {
            Ok(()) => {
                // Dropping the handle leaves the app running; tokio reaps it if it exits
                // while this process lives.
                drop(child);
                Ok(Release { url, revision })
            }
            Err(e) => {
                // A failed or cancelled start leaves nothing running.
                self.stop_record(id, record, Duration::from_millis(500))
                    .await;
                let _ = child.try_wait();
                Err(e)
            }
        }
    }

    /// The deployment's app, if it was started and not stopped since.
    pub fn status(&self, id: &DeploymentId) -> Option<RunningApp> {
        let record = self.read_record(id)?;
        if record.stopped_at.is_some() {
            return None;
        }
        Some(RunningApp {
            pid: record.pid as u32,
            pgid: record.pgid as u32,
            port: record.port,
            url: record.url.clone(),
            started_at: record.started_at,
            alive: is_ours_and_alive(&record),
        })
    }

    fn dir(&self, id: &DeploymentId) -> PathBuf {
        self.base_dir.join(id.as_str())
    }

    fn record_path(&self, id: &DeploymentId) -> PathBuf {
        self.dir(id).join("runtime.json")
    }

    fn log_path(&self, id: &DeploymentId) -> PathBuf {
        self.dir(id).join("app.log")
    }

    fn read_record(&self, id: &DeploymentId) -> Option<Record> {
        let text = std::fs::read_to_string(self.record_path(id)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write_record(&self, id: &DeploymentId, record: &Record) -> Result<(), RuntimeError> {
        let path = self.record_path(id);
        let tmp = path.with_extension("json.tmp");
        let text =
            serde_json::to_string_pretty(record).map_err(|e| unavailable("runtime.json", e))?;
        // Written then renamed, so a reader never sees half a record.
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| unavailable(&format!("could not write {}", path.display()), e))
    }

    /// Stops the group (SIGTERM, then SIGKILL after the grace period) and marks it stopped.
    async fn stop_record(&self, id: &DeploymentId, mut record: Record, grace: Duration) {
        if is_ours_and_alive(&record) {
            let pgid = Pid::from_raw(record.pgid);
            let _ = killpg(pgid, Signal::SIGTERM);
            let forced = !wait_gone(record.pgid, grace).await;
            if forced {
                let _ = killpg(pgid, Signal::SIGKILL);
                wait_gone(record.pgid, Duration::from_secs(2)).await;
            }
            tracing::info!(deployment = %id, pgid = record.pgid, forced, "stopped the app");
        }
        record.stopped_at = Some(Utc::now());
        let _ = self.write_record(id, &record);
        append_line(
            &self.log_path(id),
            &format!("--- devgem: stopped at {} ---", Utc::now().to_rfc3339()),
        );
    }

    /// Everything after the app has been spawned: wait for the port, probe, report.
    async fn wait_live(
        &self,
        child: &mut tokio::process::Child,
        record: &Record,
        follower: &mut LogFollower,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(), RuntimeError> {
        let port = record.port;
        let finding = record
            .spec
            .as_ref()
            .and_then(|s| s.hard_coded_port.as_ref());
        let started = Instant::now();
        let deadline = started + self.config.ready_timeout;
        let mut leader_exit: Option<std::process::ExitStatus> = None;
        let mut wrong_port_since: Option<Instant> = None;
        let mut last_scan = Instant::now() - Duration::from_secs(1);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                _ = tick.tick() => {}
            }
            follower.forward(log);
            if connects(port).await {
                break;
            }
            if leader_exit.is_none() {
                leader_exit = child.try_wait().ok().flatten();
            }
            // The shell may exit while what it started runs on (`cmd &`): only a group with
            // nobody left in it has really exited.
            if let Some(status) = leader_exit
                && !port::group_alive(record.pgid)
            {
                follower.forward(log);
                let code = status
                    .code()
                    .map_or_else(|| "a signal".to_string(), |c| format!("code {c}"));
                let lines = follower.tail.last(FAILURE_LINES);
                return Err(failed(
                    format!(
                        "the app exited with {code} before listening on $PORT ({port}):\n{lines}"
                    ),
                    hint::for_output(&follower.tail.all()).unwrap_or_else(|| {
                        "run the start command on your machine with PORT set and read its error"
                            .into()
                    }),
                ));
            }
            if last_scan.elapsed() >= Duration::from_millis(500) {
                last_scan = Instant::now();
                let listeners = port::group_listeners(record.pgid);
                if let Some(err) =
                    self.port_mistake(&listeners, port, finding, &mut wrong_port_since, follower)
                {
                    return Err(err);
                }
            }
            if Instant::now() >= deadline {
                follower.forward(log);
                let lines = follower.tail.last(FAILURE_LINES);
                return Err(failed(
                    format!(
                        "{}; its last output:\n{lines}",
                        port_not_opened(port, &[], self.config.ready_timeout.as_secs(), finding)
                    ),
                    hint::for_output(&follower.tail.all()).unwrap_or_else(|| {
                        "the app must listen on 0.0.0.0 at the port in the PORT environment variable".into()
                    }),
                ));
            }
        }
        log.line(&format!(
            "The app accepts connections on port {port} ({:.1} s after start)",
            started.elapsed().as_secs_f64()
        ));
        let listeners = port::group_listeners(record.pgid);
        let on_port: Vec<&Listener> = listeners.iter().filter(|l| l.port == port).collect();
        if !on_port.is_empty() && on_port.iter().all(|l| l.is_loopback_only()) {
            log.line(&format!(
                "Warning: the app listens on {} only; on Cloud Run it must listen on 0.0.0.0",
                on_port[0].addr
            ));
        }

        // A server may accept connections a moment before it can answer them well: a 5xx
        // or no answer is retried until the HTTP timeout, then it is the app's failure.
        let probe_deadline = Instant::now() + self.config.http_timeout;
        let outcome = loop {
            let left = probe_deadline.saturating_duration_since(Instant::now());
            let outcome = tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                outcome = http_get(port, left.max(Duration::from_millis(100))) => outcome,
            };
            let retry = !matches!(outcome, Ok(status) if status < 500);
            if !retry || Instant::now() + Duration::from_millis(300) >= probe_deadline {
                break outcome;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        follower.forward(log);
        match outcome {
            Ok(status) if status < 500 => {
                log.line(&format!("GET / answered {status}"));
                Ok(())
            }
            Ok(status) => Err(failed(
                format!(
                    "GET / answered {status}; the app's last output:\n{}",
                    follower.tail.last(FAILURE_LINES)
                ),
                hint::for_output(&follower.tail.all())
                    .unwrap_or_else(|| "the app fails on its first request: read its log".into()),
            )),
            Err(why) => Err(failed(
                format!(
                    "the app accepted a connection on port {port} but {why}; its last output:\n{}",
                    follower.tail.last(FAILURE_LINES)
                ),
                "the app must answer HTTP on $PORT",
            )),
        }
    }

    /// The failure for an app that listens, but not where it should, once that has lasted
    /// the grace period.
    fn port_mistake(
        &self,
        listeners: &[Listener],
        port: u16,
        finding: Option<&PortFinding>,
        since: &mut Option<Instant>,
        follower: &LogFollower,
    ) -> Option<RuntimeError> {
        let on_port: Vec<&Listener> = listeners.iter().filter(|l| l.port == port).collect();
        let mistake = if listeners.is_empty() {
            None
        } else if on_port.is_empty() {
            let mut others: Vec<u16> = listeners.iter().map(|l| l.port).collect();
            others.sort_unstable();
            others.dedup();
            Some(failed(
                format!(
                    "{}; its last output:\n{}",
                    port_not_opened(port, &others, 0, finding),
                    follower.tail.last(FAILURE_LINES)
                ),
                "make it read the PORT environment variable (Cloud Run sets it, 8080 by default)",
            ))
        } else {
            // It listens on $PORT but 127.0.0.1 could not connect: bound to ::1 only, as
            // Node does for "localhost".
            Some(failed(
                format!(
                    "the app listens on [{}]:{port} only, which 127.0.0.1 cannot reach",
                    on_port[0].addr
                ),
                "listen on 0.0.0.0 (all interfaces), as Cloud Run requires",
            ))
        };
        match mistake {
            None => {
                *since = None;
                None
            }
            Some(err) => {
                let first = *since.get_or_insert_with(Instant::now);
                (first.elapsed() >= self.config.wrong_port_grace).then_some(err)
            }
        }
    }
}

/// Apps run on this machine, which has no regions: the `region` of a spec or a call is
/// ignored (it matters to Cloud Run only).
#[async_trait]
impl Runtime for ProcessRuntime {
    async fn deploy(
        &self,
        spec: &ReleaseSpec,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError> {
        self.start(spec, spec.first_revision(), log, cancel).await
    }

    async fn revisions(
        &self,
        service: &ServiceName,
        _region: Option<&Region>,
    ) -> Result<Vec<Revision>, RuntimeError> {
        Ok(self
            .runs_of(service)
            .into_iter()
            .filter_map(|(id, record)| {
                let serving = record.stopped_at.is_none() && is_ours_and_alive(&record);
                Some(Revision {
                    name: record.revision.clone()?,
                    deployment_id: id,
                    created_at: record.started_at,
                    serving,
                    url: serving.then(|| record.url.clone()),
                })
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
        let runs = self.runs_of(service);
        let Some((target_id, target)) = runs
            .iter()
            .find(|(_, r)| r.revision.as_deref() == Some(revision))
            .cloned()
        else {
            let known: Vec<String> = runs
                .iter()
                .filter_map(|(_, r)| r.revision.clone())
                .collect();
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
        let release = if target.stopped_at.is_none() && is_ours_and_alive(&target) {
            Release {
                url: target.url.clone(),
                revision: revision.to_string(),
            }
        } else {
            let Some(spec) = target.spec.clone() else {
                return Err(failed(
                    format!(
                        "revision {revision} was started by an older DevGem and cannot be started again"
                    ),
                    "deploy the service again",
                ));
            };
            log.line(&format!("Starting revision {revision} again"));
            self.start(&spec, revision.to_string(), log, cancel).await?
        };
        // All traffic to the target: the service's other runs stop, once the target answers.
        for (id, record) in runs {
            if id != target_id && record.stopped_at.is_none() {
                log.line(&format!(
                    "Stopping revision {}",
                    record.revision.as_deref().unwrap_or("(unnamed)")
                ));
                self.stop_record(&id, record, self.config.stop_grace).await;
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
        let Some((_, serving)) = self
            .runs_of(service)
            .into_iter()
            .find(|(_, r)| r.stopped_at.is_none() && is_ours_and_alive(r))
        else {
            return Err(failed(
                format!("service {service} has no running revision to change"),
                "deploy it (or roll back to a revision) first",
            ));
        };
        let (Some(mut spec), Some(current)) = (serving.spec.clone(), serving.revision.clone())
        else {
            return Err(failed(
                format!("the running revision of {service} was started by an older DevGem"),
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
        let revision = devgem_ports::next_revision(&current);
        log.line(&format!(
            "Starting revision {revision} with the new environment"
        ));
        self.start(&spec, revision, log, cancel).await
    }

    async fn stop(&self, id: &DeploymentId, _region: Option<&Region>) -> Result<(), RuntimeError> {
        if let Some(record) = self.read_record(id).filter(|r| r.stopped_at.is_none()) {
            self.stop_record(id, record, self.config.stop_grace).await;
        }
        Ok(())
    }

    async fn logs(
        &self,
        id: &DeploymentId,
        _region: Option<&Region>,
        query: &LogQuery,
    ) -> Result<LogPage, RuntimeError> {
        let path = self.log_path(id);
        match std::fs::File::open(&path) {
            Ok(file) => tail_of_file(file, query.limit.min(LOG_LINES))
                .map(|text| LogPage::tail(text.lines().map(str::to_string), query.limit))
                .map_err(|e| unavailable(&format!("could not read {}", path.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LogPage::default()),
            Err(e) => Err(unavailable(
                &format!("could not read {}", path.display()),
                e,
            )),
        }
    }
}

/// The app's environment, in increasing precedence: the host's toolchain settings (no DevGem
/// secrets), the app's tool folders first on `PATH`, the plan's production settings, the
/// user's variables, then what Cloud Run itself sets (`PORT`, `K_SERVICE`...).
fn run_env(
    spec: &ReleaseSpec,
    revision: &str,
    secrets: Vec<(String, String)>,
    root: &Path,
    app: &Path,
    port: u16,
) -> Vec<(String, String)> {
    let mut env = process::tool_env(root, app, None);
    let venv = app.join(".venv");
    if venv.is_dir() {
        env.push(("VIRTUAL_ENV".into(), venv.to_string_lossy().into_owned()));
    }
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(secrets);
    let service = spec.service_name.as_str();
    env.extend([
        ("PORT".to_string(), port.to_string()),
        ("K_SERVICE".to_string(), service.to_string()),
        ("K_CONFIGURATION".to_string(), service.to_string()),
        ("K_REVISION".to_string(), revision.to_string()),
    ]);
    env
}

/// Whether the recorded app still runs and is really ours (its leader's pid was not reused).
fn is_ours_and_alive(record: &Record) -> bool {
    match (record.start_ticks, port::start_ticks(record.pid)) {
        // The leader's pid now names another process: ours is gone, and its group with it
        // (a group id is not reused while any member lives).
        (Some(ours), Some(now)) if ours != now => false,
        _ => port::group_alive(record.pgid),
    }
}

/// Waits until nobody in group `pgid` runs; false if `limit` passed first.
async fn wait_gone(pgid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while port::group_alive(pgid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

async fn connects(port: u16) -> bool {
    let attempt = TcpStream::connect(("127.0.0.1", port));
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(_))
    )
}

/// `GET /` over a plain HTTP/1.1 connection; the status code, or why there was none.
async fn http_get(port: u16, limit: Duration) -> Result<u16, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("a new connection failed ({e})"))?;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: devgem-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("the request could not be sent ({e})"))?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading the answer failed ({e})"))?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        parse_status(&head).ok_or_else(|| {
            if head.is_empty() {
                "closed the connection without answering GET /".to_string()
            } else {
                "did not answer GET / with HTTP".to_string()
            }
        })
    };
    tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or_else(|_| Err("did not answer GET / in time".to_string()))
}

/// The status code of an HTTP/1.x status line.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = String::from_utf8_lossy(head);
    let mut parts = line.lines().next()?.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Follows `app.log` from where this run began, passing new lines to the sink and keeping
/// the last ones for error messages.
struct LogFollower {
    path: PathBuf,
    offset: u64,
    partial: String,
    tail: Tail,
}

impl LogFollower {
    fn at_end(path: &Path) -> Self {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        Self {
            path: path.to_path_buf(),
            offset,
            partial: String::new(),
            tail: Tail::default(),
        }
    }

    fn forward(&mut self, log: &dyn LogSink) {
        let Ok(mut file) = File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        let Ok(n) = file.read_to_end(&mut bytes) else {
            return;
        };
        self.offset += n as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = self.partial.find('\n') {
            let raw: String = self.partial.drain(..=end).collect();
            let line = process::clean_line(raw.trim_end_matches(['\r', '\n']));
            if !line.trim().is_empty() {
                log.line(&line);
                self.tail.push(line);
            }
        }
    }
}

/// Keeps `app.log` from growing without end across runs: past 10 MiB it becomes
/// `app.log.1` (replacing the one before).
fn rotate_if_large(path: &Path) {
    const LIMIT: u64 = 10 << 20;
    if std::fs::metadata(path).is_ok_and(|m| m.len() > LIMIT) {
        let _ = std::fs::rename(path, path.with_extension("log.1"));
    }
}

/// Appends one line to a file, creating it; a failure only costs a line of log.
fn append_line(path: &Path, line: &str) {
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "{line}");
    }
}

/// The last `n` lines of a file, reading at most its last 1 MiB.
fn tail_of_file(mut file: File, n: usize) -> std::io::Result<String> {
    const WINDOW: u64 = 1 << 20;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(WINDOW)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            parse_status(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }
}
