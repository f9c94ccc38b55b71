//! The builder on Cloud Build: the image goes to Artifact Registry (its Docker repository is
//! created when missing), an uploaded source goes to the build bucket first, the build is
//! followed by polling `builds.get` (woken early by the `cloud-builds` topic's pushes), its
//! Cloud Logging lines are copied to the deployment's log, and an abort cancels it.

use crate::auth::{self, AuthError};
use crate::build_request::{self, DigestFrom, RenderedImage, SourceLocation};
use crate::call::{CallError, RetryPolicy, no_retry, with_retry};
use crate::config::CloudConfig;
use async_trait::async_trait;
use base64::Engine as _;
use devgem_ports::{Artifact, BuildError, BuildRequest, Builder, LogSink, ObjectStore};
use google_cloud_artifactregistry_v1::client::ArtifactRegistry;
use google_cloud_artifactregistry_v1::model::{Repository, repository::Format};
use google_cloud_build_v1::client::CloudBuild;
use google_cloud_build_v1::model::build::Status;
use google_cloud_build_v1::model::build::failure_info::FailureType;
use google_cloud_build_v1::model::{Build, BuildOperationMetadata};
use google_cloud_logging_v2::client::LoggingServiceV2;
use google_cloud_storage::client::Storage;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How the builder behaves.
#[derive(Debug, Clone)]
pub struct CloudBuildSettings {
    /// How often `builds.get` (and Cloud Logging) is read while the build runs; a
    /// `cloud-builds` push wakes the wait earlier.
    pub poll_interval: Duration,
    /// The build's `timeout` (Cloud Build stops it with TIMEOUT after that).
    pub build_timeout: Duration,
    pub retry: RetryPolicy,
    /// A Secret Manager version holding a GitHub token, for private repositories.
    pub token_secret: Option<String>,
    /// Whether the secrets port is Secret Manager in this project, so a repository owner's
    /// token (a secrets-port key) is a secret Cloud Build can read. Without it only
    /// `token_secret` is used.
    pub owner_tokens: bool,
}

impl Default for CloudBuildSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(3),
            build_timeout: Duration::from_secs(20 * 60),
            retry: RetryPolicy::default(),
            token_secret: None,
            owner_tokens: true,
        }
    }
}

/// The builder could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Credentials(#[from] AuthError),
    #[error("could not create the {api} client: {message}")]
    Client { api: &'static str, message: String },
}

/// How many lines of the build's log a failure quotes.
const FAILURE_LINES: usize = 25;

/// Builds images on Cloud Build.
pub struct CloudBuildBuilder {
    config: CloudConfig,
    objects: Arc<dyn ObjectStore>,
    settings: CloudBuildSettings,
    builds: CloudBuild,
    registry: ArtifactRegistry,
    storage: Storage,
    logging: LoggingServiceV2,
    /// For the one call no generated client makes as documented (cancel).
    http: reqwest::Client,
    credentials: google_cloud_auth::credentials::Credentials,
    repository_ready: tokio::sync::OnceCell<()>,
    notifications: BuildNotifications,
}

impl CloudBuildBuilder {
    /// `owner_tokens`: the secrets port is Secret Manager (see [`CloudBuildSettings`]).
    pub async fn new(
        config: &CloudConfig,
        objects: Arc<dyn ObjectStore>,
        owner_tokens: bool,
    ) -> Result<Self, SetupError> {
        let settings = CloudBuildSettings {
            token_secret: config.github_token_version(),
            owner_tokens,
            ..CloudBuildSettings::default()
        };
        Self::with_settings(config, objects, settings).await
    }

    pub async fn with_settings(
        config: &CloudConfig,
        objects: Arc<dyn ObjectStore>,
        settings: CloudBuildSettings,
    ) -> Result<Self, SetupError> {
        let credentials = auth::credentials(config.access_token.as_ref())?;
        let client_error = |api| {
            move |e: google_cloud_gax::client_builder::Error| SetupError::Client {
                api,
                message: e.to_string(),
            }
        };
        let builds = CloudBuild::builder()
            .with_endpoint(&config.endpoints.cloudbuild)
            .with_credentials(credentials.clone())
            .with_retry_policy(no_retry())
            .build()
            .await
            .map_err(client_error("Cloud Build"))?;
        let registry = ArtifactRegistry::builder()
            .with_endpoint(&config.endpoints.artifactregistry)
            .with_credentials(credentials.clone())
            .with_retry_policy(no_retry())
            .build()
            .await
            .map_err(client_error("Artifact Registry"))?;
        let logging = LoggingServiceV2::builder()
            .with_endpoint(&config.endpoints.logging)
            .with_credentials(credentials.clone())
            .with_retry_policy(no_retry())
            .build()
            .await
            .map_err(client_error("Cloud Logging"))?;
        let storage = Storage::builder()
            .with_endpoint(&config.endpoints.storage)
            .with_credentials(credentials.clone())
            .with_retry_policy(no_retry())
            .build()
            .await
            .map_err(|e| SetupError::Client {
                api: "Cloud Storage",
                message: e.to_string(),
            })?;
        Ok(Self {
            config: config.clone(),
            objects,
            settings,
            builds,
            registry,
            storage,
            logging,
            http: reqwest::Client::new(),
            credentials,
            repository_ready: tokio::sync::OnceCell::new(),
            notifications: BuildNotifications::default(),
        })
    }

    /// The receiver of `cloud-builds` pushes that wakes this builder's waits (mount its
    /// [`BuildNotifications::on_push`] at `/pubsub/cloud-builds`).
    pub fn notifications(&self) -> BuildNotifications {
        self.notifications.clone()
    }

    /// Creates the Artifact Registry Docker repository once per builder (409: it exists).
    async fn ensure_repository(&self) -> Result<(), BuildError> {
        self.repository_ready
            .get_or_try_init(|| async {
                let what = format!(
                    "Artifact Registry: create repository {}",
                    self.config.artifact_repo
                );
                let created = with_retry(&self.settings.retry, &what, || {
                    self.registry
                        .create_repository()
                        .set_parent(self.config.location())
                        .set_repository_id(&self.config.artifact_repo)
                        .set_repository(
                            Repository::new()
                                .set_format(Format::Docker)
                                .set_description("DevGem build outputs")
                                .set_labels([("managed-by", "devgem")]),
                        )
                        .send()
                })
                .await;
                let mut operation = match created {
                    Ok(operation) => operation,
                    Err(CallError::AlreadyExists(_)) => return Ok(()),
                    Err(e) => return Err(call_failed(e)),
                };
                // Creating a repository takes a moment; its operation says when it is there.
                for _ in 0..60 {
                    if operation.done {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    operation = with_retry(&self.settings.retry, &what, || {
                        self.registry
                            .get_operation()
                            .set_name(operation.name.clone())
                            .send()
                    })
                    .await
                    .map_err(call_failed)?;
                }
                if let Some(google_cloud_longrunning::model::operation::Result::Error(status)) =
                    &operation.result
                {
                    return Err(BuildError::Failed {
                        reason: format!("{what}: {}", status.message),
                        hint: "check that the Artifact Registry API is enabled and the region \
                               is one it serves"
                            .into(),
                    });
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Puts the source archive in the build bucket as `source/<unix>.<id>.tgz`.
    async fn upload(&self, request: &BuildRequest) -> Result<SourceLocation, BuildError> {
        let key = &request.source.archive_key;
        let archive = self
            .objects
            .get(key)
            .await
            .map_err(|e| BuildError::Unavailable(e.to_string()))?
            .ok_or_else(|| {
                BuildError::Unavailable(format!("the source archive {key} is missing"))
            })?;
        let crc = crc32c::crc32c(&archive);
        let object = format!(
            "source/{}.{}.tgz",
            chrono::Utc::now().timestamp(),
            request.deployment_id.as_str()
        );
        let bucket = &self.config.build_bucket;
        let what = format!("Cloud Storage: upload gs://{bucket}/{object}");
        let uploaded = with_retry(&self.settings.retry, &what, || {
            self.storage
                .write_object(
                    format!("projects/_/buckets/{bucket}"),
                    &object,
                    archive.clone(),
                )
                .set_content_type("application/gzip")
                .with_known_crc32c(crc)
                .send_unbuffered()
        })
        .await
        .map_err(|e| match e {
            CallError::NotFound(message) => BuildError::Failed {
                reason: message,
                hint: format!(
                    "the build bucket gs://{bucket} does not exist: create it (gcloud storage \
                     buckets create gs://{bucket} --location={}) or set DEVGEM_BUILD_BUCKET",
                    self.config.region
                ),
            },
            e => call_failed(e),
        })?;
        Ok(SourceLocation::Upload {
            bucket: bucket.clone(),
            object,
            generation: uploaded.generation,
            digest: format!("{crc:08x}"),
        })
    }

    async fn get_build(&self, id: &str) -> Result<Build, BuildError> {
        let name = format!("{}/builds/{id}", self.config.location());
        with_retry(
            &self.settings.retry,
            &format!("Cloud Build: get build {id}"),
            || {
                // The name alone selects the regional path (a project id would pick the
                // global one, where a regional build is not found).
                self.builds.get_build().set_name(&name).set_id(id).send()
            },
        )
        .await
        .map_err(call_failed)
    }

    /// Asks Cloud Build to stop `id`; a build that ended already is not an error.
    ///
    /// Plain HTTP: on the regional path the generated client sends neither `projectId` nor
    /// `id` in the body, and `CancelBuildRequest` marks both required.
    async fn cancel_build(&self, id: &str, log: &dyn LogSink) {
        let name = format!("{}/builds/{id}", self.config.location());
        let url = format!("{}/v1/{name}:cancel", self.config.endpoints.cloudbuild);
        let body = serde_json::json!({"name": name, "projectId": self.config.project, "id": id});
        let retry = &self.settings.retry;
        let mut outcome = Err(String::from("not sent"));
        for attempt in 1..=retry.attempts.max(1) {
            let headers = match auth::bearer_headers(&self.credentials).await {
                Ok(headers) => headers,
                Err(e) => {
                    outcome = Err(e.to_string());
                    break;
                }
            };
            let sent = self
                .http
                .post(&url)
                .headers(headers)
                .json(&body)
                .timeout(retry.attempt_timeout)
                .send()
                .await;
            let (status, asked) = match sent {
                Ok(response) => {
                    let status = response.status();
                    let asked = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        outcome = Ok(());
                        break;
                    }
                    outcome = Err(format!("{status}: {text}"));
                    (Some(status.as_u16()), asked)
                }
                Err(e) => {
                    outcome = Err(e.to_string());
                    (None, None)
                }
            };
            let transient = matches!(status, None | Some(429 | 500 | 502 | 503 | 504));
            if !transient || attempt == retry.attempts {
                break;
            }
            tokio::time::sleep(retry.delay(attempt, asked)).await;
        }
        match outcome {
            Ok(()) => log.line(&format!("Cloud Build: cancelled build {id}")),
            Err(e) => log.line(&format!("Cloud Build: could not cancel build {id}: {e}")),
        }
    }

    /// Copies the build's new Cloud Logging lines to `log` (and `tail`). Reading logs never
    /// fails the build: a refused or slow read is retried at the next poll.
    async fn copy_logs(&self, id: &str, since: &str, copied: &mut LogCopy, log: &dyn LogSink) {
        let filter = format!(
            "resource.type=\"build\" AND resource.labels.build_id=\"{id}\" AND \
             timestamp>=\"{since}\""
        );
        // One attempt: the poll loop is the retry, and entries:list has a low quota.
        let once = RetryPolicy {
            attempts: 1,
            ..self.settings.retry
        };
        let mut page_token = String::new();
        for _ in 0..20 {
            let page = with_retry(&once, "Cloud Logging: list build log entries", || {
                self.logging
                    .list_log_entries()
                    .set_resource_names([format!("projects/{}", self.config.project)])
                    .set_filter(&filter)
                    .set_order_by("timestamp asc")
                    .set_page_size(1000)
                    .set_page_token(&page_token)
                    .send()
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::debug!(build = id, error = %e, "could not read the build's log");
                    return;
                }
            };
            for entry in &page.entries {
                if !copied.seen.insert(entry.insert_id.clone()) {
                    continue;
                }
                if let Some(text) = entry.text_payload() {
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        log.line(line);
                        copied.push(line);
                    }
                }
            }
            if page.next_page_token.is_empty() {
                return;
            }
            page_token = page.next_page_token;
        }
    }

    /// Follows build `id` until it ends, copying its log; cancels it on `cancel`.
    async fn follow(
        &self,
        id: &str,
        since: &str,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(Build, LogCopy), BuildError> {
        let wake = self.notifications.watch(id);
        let _forget = Forget(&self.notifications, id);
        let mut copied = LogCopy::default();
        let mut last_status = Status::Unknown;
        loop {
            let build = self.get_build(id).await?;
            self.copy_logs(id, since, &mut copied, log).await;
            if build.status != last_status {
                last_status = build.status.clone();
                log.line(&format!(
                    "Cloud Build: build {id} is {}",
                    status_name(&build.status)
                ));
            }
            if is_terminal(&build.status) {
                return Ok((build, copied));
            }
            tokio::select! {
                () = cancel.cancelled() => {
                    self.cancel_build(id, log).await;
                    return Err(BuildError::Cancelled);
                }
                () = wake.notified() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }
}

#[async_trait]
impl Builder for CloudBuildBuilder {
    async fn build(
        &self,
        request: &BuildRequest,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Artifact, BuildError> {
        self.ensure_repository().await?;
        let source = match &request.source.git {
            // The owner's token (kept by the Secret Manager secrets port), else the server's,
            // and only to the GitHub host: a gitlab.com source must not receive a GitHub token.
            Some(git) => SourceLocation::Git {
                url: git.url.clone(),
                commit: git.commit.clone(),
                token_secret: git
                    .credential
                    .as_deref()
                    .filter(|_| self.settings.owner_tokens)
                    .map(|key| self.config.secret_version(key))
                    .or_else(|| self.settings.token_secret.clone())
                    .filter(|_| self.config.is_github_source(&git.url)),
            },
            None => self.upload(request).await?,
        };
        if cancel.is_cancelled() {
            return Err(BuildError::Cancelled);
        }
        let (build, image) = build_request::render_build(
            request,
            &self.config,
            &source,
            self.settings.build_timeout,
        );
        let operation = with_retry(
            &self.settings.retry,
            &format!("Cloud Build: create the build of {}", image.tagged),
            || {
                // The parent alone selects the regional path (see `get_build`).
                self.builds
                    .create_build()
                    .set_parent(self.config.location())
                    .set_build(build.clone())
                    .send()
            },
        )
        .await
        .map_err(call_failed)?;
        let created = operation
            .metadata
            .as_ref()
            .and_then(|any| any.to_msg::<BuildOperationMetadata>().ok())
            .and_then(|m| m.build)
            .filter(|b| !b.id.is_empty())
            .ok_or_else(|| {
                BuildError::Unavailable(format!(
                    "Cloud Build answered the create of {} without a build id (operation {})",
                    image.tagged, operation.name
                ))
            })?;
        let id = created.id.clone();
        log.line(&format!(
            "Cloud Build: building {} as build {id}{}",
            image.tagged,
            if created.log_url.is_empty() {
                String::new()
            } else {
                format!(" ({})", created.log_url)
            }
        ));
        let since = log_window_start(&created);
        let (build, copied) = self.follow(&id, &since, log, cancel).await?;
        finished(&build, &image, &copied, self.settings.build_timeout)
    }
}

/// The artifact of a finished build, or why it failed.
fn finished(
    build: &Build,
    image: &RenderedImage,
    copied: &LogCopy,
    timeout: Duration,
) -> Result<Artifact, BuildError> {
    if build.status == Status::Success {
        let digest = match image.digest_from {
            DigestFrom::Images => build
                .results
                .as_ref()
                .and_then(|r| r.images.iter().find(|i| i.name == image.tagged))
                .map(|i| i.digest.clone()),
            DigestFrom::StepOutput(index) => build
                .results
                .as_ref()
                .and_then(|r| r.build_step_outputs.get(index))
                .map(|out| String::from_utf8_lossy(out).trim().to_string()),
        }
        .filter(|d| d.starts_with("sha256:"))
        .ok_or_else(|| {
            BuildError::Unavailable(format!(
                "Cloud Build build {} succeeded but reported no digest for {}",
                build.id, image.tagged
            ))
        })?;
        // As every builder records it: the tagged name, and the digest beside it (the
        // artifact prints as `name:tag@sha256:...`; Cloud Run deploys `name@sha256:...`).
        return Ok(Artifact::ContainerImage {
            reference: image.tagged.clone(),
            digest,
        });
    }
    Err(build_failure(build, copied, timeout))
}

/// What the user reads when a build did not succeed: the step, Cloud Build's message and the
/// end of the log.
fn build_failure(build: &Build, copied: &LogCopy, timeout: Duration) -> BuildError {
    let status = status_name(&build.status);
    let step = build
        .steps
        .iter()
        .find(|s| matches!(s.status, Status::Failure | Status::Timeout))
        .map(|s| {
            let id = if s.id.is_empty() { &s.name } else { &s.id };
            format!(" at step {id}")
        })
        .unwrap_or_default();
    let failure = build.failure_info.as_ref();
    let message = failure
        .map(|f| f.detail.clone())
        .filter(|d| !d.is_empty())
        .or_else(|| Some(build.status_detail.clone()).filter(|d| !d.is_empty()))
        .unwrap_or_else(|| "no message from Cloud Build".into());
    let tail = copied.last(FAILURE_LINES);
    let hint = match (&build.status, failure.map(|f| &f.r#type)) {
        (_, Some(FailureType::PushNotAuthorized)) => {
            "grant roles/artifactregistry.writer on the repository to the Cloud Build service \
             account"
                .to_string()
        }
        (_, Some(FailureType::FetchSourceFailed)) => {
            "Cloud Build could not fetch the source: a private repository needs a token in \
             Secret Manager (and roles/secretmanager.secretAccessor for the build's account); \
             an upload needs roles/storage.objectViewer on the build bucket"
                .to_string()
        }
        (Status::Timeout, _) => format!(
            "the build took longer than {} min: a step hangs or downloads too much",
            timeout.as_secs() / 60
        ),
        (Status::Cancelled, _) => "the build was cancelled outside DevGem: deploy again".into(),
        (Status::Expired, _) => {
            "the build waited in Cloud Build's queue too long: deploy again".into()
        }
        (Status::InternalError, _) => "Cloud Build failed on its side: deploy again".into(),
        _ => "a Dockerfile step failed: its output is above; fix the app (or its dependency \
              files) and deploy again"
            .into(),
    };
    let mut reason = format!("Cloud Build build {} {status}{step}: {message}", build.id);
    if !tail.is_empty() {
        reason.push('\n');
        reason.push_str(&tail);
    }
    BuildError::Failed { reason, hint }
}

fn call_failed(e: CallError) -> BuildError {
    match e {
        CallError::Unavailable(message) => BuildError::Unavailable(message),
        CallError::Refused { message, hint } => BuildError::Failed {
            reason: message,
            hint,
        },
        CallError::NotFound(message) | CallError::AlreadyExists(message) => BuildError::Failed {
            reason: message,
            hint: "check GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_REGION".into(),
        },
    }
}

/// The lower bound of the log query: a minute before the build was created (clock skew).
fn log_window_start(build: &Build) -> String {
    let created = build
        .create_time
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds(), 0))
        .unwrap_or_else(chrono::Utc::now);
    (created - chrono::Duration::seconds(60)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn is_terminal(status: &Status) -> bool {
    matches!(
        status,
        Status::Success
            | Status::Failure
            | Status::InternalError
            | Status::Timeout
            | Status::Cancelled
            | Status::Expired
    )
}

fn status_name(status: &Status) -> String {
    status
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{status:?}"))
}

/// The log lines copied so far: `insertId`s seen, and the last lines for error messages.
#[derive(Default)]
struct LogCopy {
    seen: HashSet<String>,
    lines: VecDeque<String>,
}

impl LogCopy {
    const KEEP: usize = 200;

    fn push(&mut self, line: &str) {
        if self.lines.len() == Self::KEEP {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_string());
    }

    fn last(&self, n: usize) -> String {
        let skip = self.lines.len().saturating_sub(n);
        self.lines
            .iter()
            .skip(skip)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Stops watching a build when its wait ends, however it ends.
struct Forget<'a>(&'a BuildNotifications, &'a str);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.forget(self.1);
    }
}

/// The `cloud-builds` topic's pushes: each wakes the builder that waits on that build, so it
/// reads the build now instead of at its next poll (polling stays the fallback: a push may
/// reach another instance, or never come).
#[derive(Clone, Default)]
pub struct BuildNotifications {
    inner: Arc<Mutex<Notified>>,
}

#[derive(Default)]
struct Notified {
    /// The builds a builder of this process waits on.
    watched: HashMap<String, Arc<Notify>>,
    /// `(buildId, status)` pairs seen, oldest first (Pub/Sub delivers more than once).
    seen: HashSet<(String, String)>,
    seen_order: VecDeque<(String, String)>,
    /// Builds whose terminal status arrived: later pushes for them change nothing.
    ended: HashSet<String>,
}

/// How many `(build, status)` pairs are remembered for de-duplication.
const REMEMBERED: usize = 4096;

/// What a push meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// A build of another tool (no `devgem` tag): nothing to do.
    NotDevgem,
    /// This build and status arrived before, or the build had ended already.
    Duplicate,
    /// A new status of a DevGem build.
    Recorded {
        build_id: String,
        status: String,
        terminal: bool,
        /// Whether a builder of this process waited on it.
        woke: bool,
    },
}

/// A push body that is not a `cloud-builds` message. Answer it with a 2xx anyway (or it is
/// redelivered until it dead-letters): it can never be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cloud-builds push: {0}")]
pub struct PushError(pub String);

#[derive(serde::Deserialize)]
struct PushEnvelope {
    message: PushMessage,
}

#[derive(serde::Deserialize)]
struct PushMessage {
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    data: Option<String>,
}

impl BuildNotifications {
    /// Handles one push to `/pubsub/cloud-builds`.
    pub fn on_push(&self, body: &[u8]) -> Result<PushOutcome, PushError> {
        let envelope: PushEnvelope =
            serde_json::from_slice(body).map_err(|e| PushError(format!("not JSON: {e}")))?;
        let message = envelope.message;
        let data = message
            .data
            .as_deref()
            .map(|d| base64::engine::general_purpose::STANDARD.decode(d.trim()))
            .transpose()
            .map_err(|e| PushError(format!("data is not base64: {e}")))?;
        let build: serde_json::Value = match &data {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| PushError(format!("data is not a Build: {e}")))?,
            None => serde_json::Value::Null,
        };
        let devgem = build["tags"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|t| t == build_request::DEVGEM_TAG));
        if !devgem {
            return Ok(PushOutcome::NotDevgem);
        }
        let build_id = message
            .attributes
            .get("buildId")
            .cloned()
            .or_else(|| build["id"].as_str().map(str::to_string))
            .ok_or_else(|| PushError("no buildId".into()))?;
        let status = message
            .attributes
            .get("status")
            .cloned()
            .or_else(|| build["status"].as_str().map(str::to_string))
            .ok_or_else(|| PushError("no status".into()))?;
        let terminal = is_terminal(&Status::from(status.as_str()));
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (build_id.clone(), status.clone());
        if state.ended.contains(&build_id) || state.seen.contains(&key) {
            return Ok(PushOutcome::Duplicate);
        }
        state.seen.insert(key.clone());
        state.seen_order.push_back(key);
        if state.seen_order.len() > REMEMBERED
            && let Some(old) = state.seen_order.pop_front()
        {
            state.seen.remove(&old);
            state.ended.remove(&old.0);
        }
        if terminal {
            state.ended.insert(build_id.clone());
        }
        let woke = match state.watched.get(&build_id) {
            Some(wake) => {
                // A stored permit: the wake is not lost if the builder is mid-poll.
                wake.notify_one();
                true
            }
            None => false,
        };
        Ok(PushOutcome::Recorded {
            build_id,
            status,
            terminal,
            woke,
        })
    }

    fn watch(&self, build_id: &str) -> Arc<Notify> {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        state
            .watched
            .entry(build_id.to_string())
            .or_default()
            .clone()
    }

    fn forget(&self, build_id: &str) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        state.watched.remove(build_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(id: &str, status: &str, tags: &[&str]) -> Vec<u8> {
        let build = serde_json::json!({"id": id, "status": status, "tags": tags});
        let data = base64::engine::general_purpose::STANDARD.encode(build.to_string());
        serde_json::json!({
            "message": {"attributes": {"buildId": id, "status": status}, "data": data,
                        "messageId": "1", "publishTime": "2025-05-01T12:00:00Z"},
            "subscription": "projects/p/subscriptions/cloud-builds-to-devgem"
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn pushes_of_other_tools_duplicates_and_late_statuses_change_nothing() {
        let n = BuildNotifications::default();
        assert_eq!(
            n.on_push(&push("b1", "SUCCESS", &["other"])).unwrap(),
            PushOutcome::NotDevgem
        );
        let first = n.on_push(&push("b1", "WORKING", &["devgem"])).unwrap();
        assert!(matches!(
            first,
            PushOutcome::Recorded {
                terminal: false,
                woke: false,
                ..
            }
        ));
        assert_eq!(
            n.on_push(&push("b1", "WORKING", &["devgem"])).unwrap(),
            PushOutcome::Duplicate
        );
        let done = n.on_push(&push("b1", "SUCCESS", &["devgem"])).unwrap();
        assert!(matches!(done, PushOutcome::Recorded { terminal: true, .. }));
        // Reordered: QUEUED after the end is ignored.
        assert_eq!(
            n.on_push(&push("b1", "QUEUED", &["devgem"])).unwrap(),
            PushOutcome::Duplicate
        );
        assert!(n.on_push(b"{}").is_err());
    }

    #[tokio::test]
    async fn a_push_wakes_the_build_being_watched() {
        let n = BuildNotifications::default();
        let wake = n.watch("b2");
        let outcome = n.on_push(&push("b2", "SUCCESS", &["devgem"])).unwrap();
        assert!(matches!(outcome, PushOutcome::Recorded { woke: true, .. }));
        tokio::time::timeout(Duration::from_secs(1), wake.notified())
            .await
            .expect("the stored wake");
    }
}
