//! The runtime port on Cloud Run Admin API v2: a deployment is one Cloud Run service, each
//! release a named revision of it. Its logs come from Cloud Logging, custom domains from the
//! v1 domain-mapping API (no v2 resource exists; plain reqwest there).
//!
//! Choices worth knowing:
//! - Create first; on 409 read the service and PATCH it whole (fresh `etag`, template,
//!   labels, traffic to LATEST), as `gcloud run deploy` does.
//! - Operations are waited on with `operations.get` through the one retry loop
//!   ([`with_retry`]), with a deadline and the caller's cancellation. The generated
//!   `poller()` is not used: it re-issues the start itself and has neither.
//! - A revision that does not become ready: traffic is PATCHed back (`updateMask=traffic`)
//!   to the revision that served before, and the error names the failed revision and Cloud
//!   Run's message.
//! - The URL counts as answering on any HTTP status except, for a public release, `403`
//!   (the `allUsers` binding is still propagating: polled until the deadline) and `404`
//!   (Google's frontend before the route exists: polled for a short grace, then accepted, since
//!   many apps answer 404 at `/`). A private release answers 403 to anonymous callers by design.
//! - A service runs in its deployment's region (`ReleaseSpec::region`, the `region` of each
//!   call), else in the configured `GOOGLE_CLOUD_REGION`. Cloud Build and Artifact Registry
//!   stay in the configured region: Cloud Run pulls an image from another region's registry.
//! - `stop` deletes the service: Cloud Run bills nothing for a stopped app only when it is
//!   gone or scaled to zero, and a deleted deployment should not keep a public URL.

use crate::auth::{self, AuthError};
use crate::call::{CallError, RetryPolicy, no_retry, with_retry};
use crate::config::CloudConfig;
use crate::names;
use crate::service::{self, DEPLOYMENT_LABEL};
use async_trait::async_trait;
use devgem_domain::{DeploymentId, Region, ServiceName};
use devgem_ports::{
    DnsRecord, DomainMapping, DomainStatus, EnvUpdate, LogLine, LogPage, LogQuery, LogSink,
    Release, ReleaseSpec, Revision, Runtime, RuntimeEnv, RuntimeError,
};
use google_cloud_auth::credentials::Credentials;
use google_cloud_gax::error::Error as GaxError;
use google_cloud_longrunning::model::{Operation, operation};
use google_cloud_run_v2::client::{Revisions, Services};
use google_cloud_run_v2::model::condition::State as ConditionState;
use google_cloud_run_v2::model::{EnvVar, RevisionTemplate, Service, TrafficTargetAllocationType};
use google_cloud_wkt::FieldMask;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long the runtime waits, and how often it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Between two reads of an operation.
    pub operation_poll: Duration,
    /// The longest a rollout may take (Cloud Run: typically 15-90 s).
    pub operation_deadline: Duration,
    /// Between two GETs of the service URL.
    pub url_poll: Duration,
    /// The longest the URL may take to answer once the revision is ready (IAM propagates
    /// slowly).
    pub url_deadline: Duration,
    /// How long a `404` is taken for Google's frontend before it counts as the app's answer.
    pub not_found_grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            operation_poll: Duration::from_secs(2),
            operation_deadline: Duration::from_secs(15 * 60),
            url_poll: Duration::from_secs(2),
            url_deadline: Duration::from_secs(180),
            not_found_grace: Duration::from_secs(20),
        }
    }
}

/// The Cloud Run runtime.
pub struct CloudRunRuntime {
    config: CloudConfig,
    services: Services,
    revisions: Revisions,
    logging: google_cloud_logging_v2::client::LoggingServiceV2,
    credentials: Credentials,
    http: reqwest::Client,
    retry: RetryPolicy,
    timing: Timing,
}

fn failed(reason: impl Into<String>, hint: impl Into<String>) -> RuntimeError {
    RuntimeError::Failed {
        reason: reason.into(),
        hint: hint.into(),
    }
}

/// What a failed Google call means for the runtime's caller.
fn from_call(e: CallError) -> RuntimeError {
    match e {
        CallError::Refused { message, hint } => failed(message, hint),
        CallError::NotFound(m) | CallError::AlreadyExists(m) => failed(m, ""),
        CallError::Unavailable(m) => RuntimeError::Unavailable(m),
    }
}

fn from_auth(e: AuthError) -> RuntimeError {
    failed(e.to_string(), "")
}

/// The role and member that make a service public.
const INVOKER_ROLE: &str = "roles/run.invoker";
const ALL_USERS: &str = "allUsers";

const NOT_READY_HINT: &str = "read the revision's log (devgem logs): the app must listen on \
     0.0.0.0:$PORT (8080) within the startup probe, and every secret it reads must exist";

impl CloudRunRuntime {
    /// The template running as the configured runtime identity, if there is one.
    fn with_identity(&self, template: RevisionTemplate) -> RevisionTemplate {
        match &self.config.runtime_service_account {
            Some(email) => template.set_service_account(email),
            None => template,
        }
    }

    /// Clients for `config`'s project and region, their own retries off (the one retry loop
    /// is [`with_retry`]).
    pub async fn new(config: &CloudConfig) -> Result<Self, RuntimeError> {
        let credentials = auth::credentials(config.access_token.as_ref()).map_err(from_auth)?;
        let client_error = |what: &str, e: &dyn std::fmt::Display| {
            failed(format!("the {what} client could not be built: {e}"), "")
        };
        let services = Services::builder()
            .with_endpoint(&config.endpoints.run)
            .with_credentials(credentials.clone())
            .with_retry_policy(no_retry())
            .build()
            .await
            .map_err(|e| client_error("Cloud Run", &e))?;
        let revisions = Revisions::builder()
            .with_endpoint(&config.endpoints.run)
            .with_credentials(credentials.clone())
            .with_retry_policy(no_retry())
            .build()
            .await
            .map_err(|e| client_error("Cloud Run", &e))?;
        let logging = google_cloud_logging_v2::client::LoggingServiceV2::builder()
            .with_endpoint(&config.endpoints.logging)
            .with_credentials(credentials.clone())
            .with_retry_policy(no_retry())
            .build()
            .await
            .map_err(|e| client_error("Cloud Logging", &e))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| client_error("HTTP", &e))?;
        Ok(Self {
            config: config.clone(),
            services,
            revisions,
            logging,
            credentials,
            http,
            retry: RetryPolicy::default(),
            timing: Timing::default(),
        })
    }

    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The region a call addresses: the deployment's, else the configured one.
    fn region<'a>(&'a self, region: Option<&'a Region>) -> &'a str {
        region.map_or(self.config.region.as_str(), Region::as_str)
    }

    /// `projects/P/locations/R`, the parent of the services in `region`.
    fn location(&self, region: Option<&Region>) -> String {
        format!(
            "projects/{}/locations/{}",
            self.config.project,
            self.region(region)
        )
    }

    fn service_name(&self, service: &str, region: Option<&Region>) -> String {
        format!("{}/services/{service}", self.location(region))
    }

    async fn get_service(&self, name: &str) -> Result<Service, CallError> {
        with_retry(
            &self.retry,
            &format!("Cloud Run: get service {name}"),
            || self.services.get_service().set_name(name).send(),
        )
        .await
    }

    /// The short names of the service's revisions, newest first.
    async fn list_revisions(
        &self,
        service: &str,
    ) -> Result<Vec<google_cloud_run_v2::model::Revision>, CallError> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = with_retry(
                &self.retry,
                &format!("Cloud Run: list revisions of {service}"),
                || {
                    self.revisions
                        .list_revisions()
                        .set_parent(service)
                        .set_page_token(&token)
                        .send()
                },
            )
            .await?;
            all.extend(page.revisions);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        all.sort_by_key(|r| std::cmp::Reverse(r.create_time.map(|t| (t.seconds(), t.nanos()))));
        Ok(all)
    }

    /// The services of deployment `id` (by their deployment label).
    async fn services_of(
        &self,
        id: &DeploymentId,
        region: Option<&Region>,
    ) -> Result<Vec<Service>, CallError> {
        let parent = self.location(region);
        let wanted = names::label_value(id.as_str());
        let mut found = Vec::new();
        let mut token = String::new();
        loop {
            let page = with_retry(&self.retry, "Cloud Run: list services", || {
                self.services
                    .list_services()
                    .set_parent(&parent)
                    .set_page_token(&token)
                    .send()
            })
            .await?;
            found.extend(
                page.services
                    .into_iter()
                    .filter(|s| s.labels.get(DEPLOYMENT_LABEL) == Some(&wanted)),
            );
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        Ok(found)
    }

    /// Waits for `op` to finish: `Ok(Err(message))` when the operation itself failed.
    async fn wait_operation(
        &self,
        mut op: Operation,
        cancel: &CancellationToken,
    ) -> Result<Result<(), String>, RuntimeError> {
        let deadline = Instant::now() + self.timing.operation_deadline;
        loop {
            if op.done {
                return Ok(match op.result {
                    Some(operation::Result::Error(status)) => Err(status.message.clone()),
                    _ => Ok(()),
                });
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::Unavailable(format!(
                    "Cloud Run: operation {} did not finish within {} s",
                    op.name,
                    self.timing.operation_deadline.as_secs()
                )));
            }
            tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                () = tokio::time::sleep(self.timing.operation_poll) => {}
            }
            let name = op.name.clone();
            op = with_retry(
                &self.retry,
                &format!("Cloud Run: get operation {name}"),
                || self.services.get_operation().set_name(&name).send(),
            )
            .await
            .map_err(from_call)?;
        }
    }

    /// PATCHes `service` whole (a new revision when its template changed).
    async fn update(&self, service: &Service) -> Result<Operation, RuntimeError> {
        with_retry(
            &self.retry,
            &format!("Cloud Run: update service {}", service.name),
            || {
                self.services
                    .update_service()
                    .set_service(service.clone())
                    .send()
            },
        )
        .await
        .map_err(from_call)
    }

    /// PATCHes only the traffic of service `name`: all of it to `revision`.
    async fn pin_traffic(
        &self,
        name: &str,
        revision: &str,
        cancel: &CancellationToken,
    ) -> Result<(), RuntimeError> {
        let body = Service::new()
            .set_name(name)
            .set_traffic([service::revision_traffic(revision)]);
        let op = with_retry(
            &self.retry,
            &format!("Cloud Run: route traffic of {name} to {revision}"),
            || {
                self.services
                    .update_service()
                    .set_service(body.clone())
                    .set_update_mask(FieldMask::default().set_paths(["traffic"]))
                    .send()
            },
        )
        .await
        .map_err(from_call)?;
        match self.wait_operation(op, cancel).await? {
            Ok(()) => Ok(()),
            Err(message) => Err(failed(
                format!("Cloud Run could not route traffic to {revision}: {message}"),
                "",
            )),
        }
    }

    /// Waits for the rollout of `revision`; when it does not become ready, traffic goes back
    /// to `previous` and the error says why.
    async fn finish_rollout(
        &self,
        name: &str,
        op: Operation,
        revision: &str,
        previous: Option<String>,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Service, RuntimeError> {
        log.line(&format!("Waiting for revision {revision} to become ready"));
        let outcome = self.wait_operation(op, cancel).await?;
        let service = self.get_service(name).await.map_err(from_call)?;
        let terminal = service.terminal_condition.as_ref();
        let succeeded = terminal.is_some_and(|c| c.state == ConditionState::ConditionSucceeded);
        if outcome.is_ok() && succeeded && service.latest_ready_revision == revision {
            log.line(&format!("Revision {revision} is ready"));
            return Ok(service);
        }
        let message = terminal
            .filter(|c| c.state == ConditionState::ConditionFailed && !c.message.is_empty())
            .map(|c| c.message.clone())
            .or(outcome.err())
            .unwrap_or_else(|| "Cloud Run did not report it ready".into());
        let good = previous
            .filter(|p| p != revision)
            .or_else(|| Some(service.latest_ready_revision.clone()))
            .filter(|p| !p.is_empty() && p != revision);
        match good {
            Some(good) => {
                log.line(&format!(
                    "Revision {revision} failed; routing all traffic back to {good}"
                ));
                if let Err(e) = self.pin_traffic(name, &good, cancel).await {
                    log.line(&format!("Could not route traffic back to {good}: {e}"));
                }
                Err(failed(
                    format!(
                        "revision {revision} did not become ready: {message}. Traffic stays on \
                         {good}, the last good revision"
                    ),
                    NOT_READY_HINT,
                ))
            }
            None => Err(failed(
                format!("revision {revision} did not become ready: {message}"),
                NOT_READY_HINT,
            )),
        }
    }

    /// Grants `roles/run.invoker` to `allUsers` (read-modify-write, so other bindings stay).
    async fn make_public(&self, name: &str, log: &dyn LogSink) -> Result<(), RuntimeError> {
        let mut policy = with_retry(
            &self.retry,
            &format!("Cloud Run: get the IAM policy of {name}"),
            || self.services.get_iam_policy().set_resource(name).send(),
        )
        .await
        .map_err(from_call)?;
        let binding = policy.bindings.iter_mut().find(|b| b.role == INVOKER_ROLE);
        match binding {
            Some(b) if b.members.iter().any(|m| m == ALL_USERS) => return Ok(()),
            Some(b) => b.members.push(ALL_USERS.into()),
            None => policy.bindings.push(
                google_cloud_iam_v1::model::Binding::new()
                    .set_role(INVOKER_ROLE)
                    .set_members([ALL_USERS]),
            ),
        }
        log.line("Allowing unauthenticated calls (roles/run.invoker for allUsers)");
        with_retry(
            &self.retry,
            &format!("Cloud Run: set the IAM policy of {name}"),
            || {
                self.services
                    .set_iam_policy()
                    .set_resource(name)
                    .set_policy(policy.clone())
                    .send()
            },
        )
        .await
        .map_err(|e| match e {
            CallError::Refused { message, .. } => failed(
                format!("the service could not be made public: {message}"),
                "an organization policy (iam.allowedPolicyMemberDomains) may forbid allUsers: \
                 ask an admin, or deploy with public: false",
            ),
            e => from_call(e),
        })?;
        Ok(())
    }

    /// GETs `url` until it answers (see the module comment for what counts).
    async fn wait_answering(
        &self,
        url: &str,
        public: bool,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(), RuntimeError> {
        let started = Instant::now();
        let deadline = started + self.timing.url_deadline;
        let mut first_not_found: Option<Instant> = None;
        let mut last: String;
        loop {
            let answer = tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                answer = self.http.get(url).timeout(Duration::from_secs(10)).send() => answer,
            };
            match answer {
                Ok(response) => {
                    let status = response.status().as_u16();
                    last = format!("HTTP {status}");
                    let waiting = match status {
                        403 => public,
                        404 => {
                            let first = *first_not_found.get_or_insert_with(Instant::now);
                            public && first.elapsed() < self.timing.not_found_grace
                        }
                        _ => false,
                    };
                    if !waiting {
                        log.line(&format!(
                            "{url} answered {status} ({:.1} s after the revision was ready)",
                            started.elapsed().as_secs_f64()
                        ));
                        return Ok(());
                    }
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                let hint = if last == "HTTP 403" {
                    "the allUsers invoker binding has not taken effect: wait a minute and open \
                     the URL again, or check the organization's policies"
                } else {
                    "open the URL again in a minute; the revision itself is ready"
                };
                return Err(failed(
                    format!(
                        "{url} did not answer within {} s (last: {last})",
                        self.timing.url_deadline.as_secs()
                    ),
                    hint,
                ));
            }
            tokio::select! {
                () = cancel.cancelled() => return Err(RuntimeError::Cancelled),
                () = tokio::time::sleep(self.timing.url_poll) => {}
            }
        }
    }

    /// The first of `candidate`, `next_revision(candidate)`, ... that the service does not
    /// have yet (Cloud Run refuses a revision name twice).
    async fn unused_revision(&self, name: &str, candidate: String) -> Result<String, CallError> {
        let taken: BTreeSet<String> = self
            .list_revisions(name)
            .await?
            .into_iter()
            .map(|r| short_name(&r.name).to_string())
            .collect();
        let mut revision = candidate;
        while taken.contains(&revision) {
            revision = devgem_ports::next_revision(&revision);
        }
        Ok(revision)
    }

    /// A JSON call no generated client covers (domain mappings), through the retry loop.
    async fn rest(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<serde_json::Value, CallError> {
        let headers =
            auth::bearer_headers(&self.credentials)
                .await
                .map_err(|e| CallError::Refused {
                    message: e.to_string(),
                    hint: String::new(),
                })?;
        with_retry(&self.retry, what, || {
            let mut request = self
                .http
                .request(method.clone(), url)
                .headers(headers.clone());
            if let Some(body) = body {
                request = request.json(body);
            }
            async move {
                let response = request.send().await.map_err(GaxError::io)?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let bytes = response.bytes().await.map_err(GaxError::io)?;
                if (200..300).contains(&status) {
                    return serde_json::from_slice(&bytes).map_err(GaxError::deser);
                }
                Err(
                    match google_cloud_gax::error::rpc::Status::try_from(&bytes) {
                        // The same classification as the generated clients' errors.
                        Ok(s) => {
                            GaxError::service_with_http_metadata(s, Some(status), Some(headers))
                        }
                        Err(_) => GaxError::http(status, headers, bytes),
                    },
                )
            }
        })
        .await
    }

    fn domain_mappings_url(&self, region: Option<&Region>) -> String {
        // The location-style form of the v1 API on the configured Cloud Run host (the
        // namespace form needs the regional host, which an endpoint override cannot name).
        format!(
            "{}/v1/{}/domainmappings",
            self.config.endpoints.run,
            self.location(region)
        )
    }

    /// A new revision of `current` with `template`, traffic to the latest ready one.
    async fn roll_out(
        &self,
        mut next: Service,
        revision: &str,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Service, RuntimeError> {
        let previous = serving_revision(&next);
        next.traffic = vec![service::latest_traffic()];
        let name = next.name.clone();
        let op = self.update(&next).await?;
        self.finish_rollout(&name, op, revision, previous, log, cancel)
            .await
    }
}

/// `projects/p/locations/l/services/s/revisions/r` -> `r`.
fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The revision that takes (most of) the service's traffic now.
fn serving_revision(service: &Service) -> Option<String> {
    service
        .traffic_statuses
        .iter()
        .filter(|t| t.percent > 0)
        .max_by_key(|t| t.percent)
        .map(|t| {
            if t.r#type == TrafficTargetAllocationType::Latest || t.revision.is_empty() {
                service.latest_ready_revision.clone()
            } else {
                t.revision.clone()
            }
        })
        .or_else(|| Some(service.latest_ready_revision.clone()))
        .filter(|r| !r.is_empty())
}

/// The revisions serving traffic now.
fn serving_revisions(service: &Service) -> BTreeSet<String> {
    service
        .traffic_statuses
        .iter()
        .filter(|t| t.percent > 0)
        .map(|t| {
            if t.r#type == TrafficTargetAllocationType::Latest || t.revision.is_empty() {
                service.latest_ready_revision.clone()
            } else {
                t.revision.clone()
            }
        })
        .collect()
}

/// Applies `update` to a container's variables (secrets as Secret Manager references).
fn apply_env(env: &mut Vec<EnvVar>, update: &EnvUpdate) {
    let touched: BTreeSet<&str> = update
        .remove
        .iter()
        .map(String::as_str)
        .chain(update.set.keys().map(String::as_str))
        .chain(update.set_secrets.iter().map(|s| s.name.as_str()))
        .collect();
    env.retain(|v| !touched.contains(v.name.as_str()));
    env.extend(
        update
            .set
            .iter()
            .map(|(name, value)| EnvVar::new().set_name(name).set_value(value)),
    );
    env.extend(update.set_secrets.iter().map(service::secret_env_var));
}

fn timestamp(t: Option<google_cloud_wkt::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds(), t.nanos().max(0) as u32))
}

/// A log entry as one line of text.
fn entry_text(entry: &google_cloud_logging_v2::model::LogEntry) -> String {
    if let Some(text) = entry.text_payload() {
        return text.trim_end().to_string();
    }
    if let Some(json) = entry.json_payload() {
        if let Some(serde_json::Value::String(message)) = json.get("message") {
            return message.trim_end().to_string();
        }
        return serde_json::Value::Object((**json).clone()).to_string();
    }
    String::new()
}

/// A domain mapping as the API returns it, in the port's terms.
fn domain_mapping(value: &serde_json::Value) -> DomainMapping {
    let domain = value["metadata"]["name"].as_str().unwrap_or_default();
    let ready = value["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    let message = ready
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string();
    let status = match ready.and_then(|c| c["status"].as_str()) {
        Some("True") => DomainStatus::Ready,
        Some("False") => DomainStatus::Failed(message),
        _ if message.is_empty() => {
            DomainStatus::Pending("waiting for the DNS records and the certificate".into())
        }
        _ => DomainStatus::Pending(message),
    };
    let records = value["status"]["resourceRecords"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| DnsRecord {
                    kind: r["type"].as_str().unwrap_or_default().to_string(),
                    // `name` is relative and only set for CNAME; A and AAAA are the domain.
                    name: r["name"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .unwrap_or(domain)
                        .to_string(),
                    data: r["rrdata"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    DomainMapping {
        domain: domain.to_string(),
        status,
        records,
    }
}

#[async_trait]
impl Runtime for CloudRunRuntime {
    async fn deploy(
        &self,
        spec: &ReleaseSpec,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError> {
        let first = spec.first_revision();
        let mut rendered = service::render_service(spec, &first)?;
        rendered.template = rendered.template.map(|t| self.with_identity(t));
        let service_id = spec.service_name.as_str();
        let region = spec.region.as_ref();
        let name = self.service_name(service_id, region);
        let parent = self.location(region);
        log.line(&format!(
            "Deploying {} to Cloud Run service {service_id} in {}",
            service::image_by_digest(&spec.artifact)?,
            self.region(region)
        ));
        let created = with_retry(
            &self.retry,
            &format!("Cloud Run: create service {service_id}"),
            || {
                self.services
                    .create_service()
                    .set_parent(&parent)
                    .set_service_id(service_id)
                    .set_service(rendered.clone())
                    .send()
            },
        )
        .await;
        let (service, revision) = match created {
            Ok(op) => {
                let service = self
                    .finish_rollout(&name, op, &first, None, log, cancel)
                    .await?;
                (service, first)
            }
            Err(CallError::AlreadyExists(_)) => {
                log.line(&format!(
                    "Service {service_id} exists: updating it with a new revision"
                ));
                let current = self.get_service(&name).await.map_err(from_call)?;
                let revision = self
                    .unused_revision(&name, first)
                    .await
                    .map_err(from_call)?;
                let mut next = current;
                next.template =
                    Some(self.with_identity(service::render_template(spec, &revision)?));
                next.labels.extend(rendered.labels.clone());
                let service = self.roll_out(next, &revision, log, cancel).await?;
                (service, revision)
            }
            Err(e) => return Err(from_call(e)),
        };
        if spec.public {
            self.make_public(&name, log).await?;
        }
        if service.uri.is_empty() {
            return Err(failed(
                format!("Cloud Run reported service {service_id} ready without a URL"),
                "check the service's ingress and defaultUriDisabled settings",
            ));
        }
        self.wait_answering(&service.uri, spec.public, log, cancel)
            .await?;
        Ok(Release {
            url: service.uri,
            revision,
        })
    }

    async fn stop(&self, id: &DeploymentId, region: Option<&Region>) -> Result<(), RuntimeError> {
        let cancel = CancellationToken::new();
        for found in self.services_of(id, region).await.map_err(from_call)? {
            let deleted = with_retry(
                &self.retry,
                &format!("Cloud Run: delete service {}", found.name),
                || self.services.delete_service().set_name(&found.name).send(),
            )
            .await;
            match deleted {
                Ok(op) => {
                    if let Err(message) = self.wait_operation(op, &cancel).await? {
                        return Err(failed(
                            format!("Cloud Run could not delete {}: {message}", found.name),
                            "",
                        ));
                    }
                }
                Err(CallError::NotFound(_)) => {}
                Err(e) => return Err(from_call(e)),
            }
        }
        Ok(())
    }

    async fn logs(
        &self,
        id: &DeploymentId,
        region: Option<&Region>,
        query: &LogQuery,
    ) -> Result<LogPage, RuntimeError> {
        let Some(found) = self
            .services_of(id, region)
            .await
            .map_err(from_call)?
            .into_iter()
            .next()
        else {
            return Ok(LogPage::default());
        };
        // Cloud Run keeps logs 30 days by default; the bound keeps the query fast.
        let since = (chrono::Utc::now() - chrono::Duration::days(30))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let filter = format!(
            "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"{}\" AND \
             resource.labels.location=\"{}\" AND timestamp>=\"{since}\"",
            short_name(&found.name),
            self.region(region)
        );
        let page_size = i32::try_from(query.limit.clamp(1, 1000)).unwrap_or(1000);
        let page_token = query.page_token.clone().unwrap_or_default();
        let resource = format!("projects/{}", self.config.project);
        let response = with_retry(&self.retry, "Cloud Logging: list entries", || {
            self.logging
                .list_log_entries()
                .set_resource_names([resource.as_str()])
                .set_filter(&filter)
                .set_order_by("timestamp desc")
                .set_page_size(page_size)
                .set_page_token(&page_token)
                .send()
        })
        .await
        .map_err(from_call)?;
        // Newest first on the wire (so a page is the newest lines); oldest first for the user.
        let lines = response
            .entries
            .iter()
            .rev()
            .map(|e| LogLine {
                timestamp: timestamp(e.timestamp),
                text: entry_text(e),
            })
            .collect();
        Ok(LogPage {
            lines,
            next_page_token: Some(response.next_page_token).filter(|t| !t.is_empty()),
        })
    }

    async fn revisions(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
    ) -> Result<Vec<Revision>, RuntimeError> {
        let name = self.service_name(service.as_str(), region);
        let current = match self.get_service(&name).await {
            Ok(s) => s,
            Err(CallError::NotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(from_call(e)),
        };
        let serving = serving_revisions(&current);
        let service_deployment = current.labels.get(DEPLOYMENT_LABEL).cloned();
        let revisions = self.list_revisions(&name).await.map_err(from_call)?;
        Ok(revisions
            .into_iter()
            .filter_map(|r| {
                let short = short_name(&r.name).to_string();
                let deployment = r
                    .labels
                    .get(DEPLOYMENT_LABEL)
                    .or(service_deployment.as_ref())
                    .and_then(|d| DeploymentId::parse(d).ok())?;
                let is_serving = serving.contains(&short);
                Some(Revision {
                    deployment_id: deployment,
                    created_at: timestamp(r.create_time).unwrap_or_default(),
                    serving: is_serving,
                    url: is_serving.then(|| current.uri.clone()),
                    name: short,
                })
            })
            .collect())
    }

    async fn route_traffic(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
        revision: &str,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError> {
        let name = self.service_name(service.as_str(), region);
        let known: Vec<String> = self
            .list_revisions(&name)
            .await
            .map_err(from_call)?
            .iter()
            .map(|r| short_name(&r.name).to_string())
            .collect();
        if !known.iter().any(|k| k == revision) {
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
        }
        log.line(&format!("Routing all traffic of {service} to {revision}"));
        self.pin_traffic(&name, revision, cancel).await?;
        let current = self.get_service(&name).await.map_err(from_call)?;
        Ok(Release {
            url: current.uri,
            revision: revision.to_string(),
        })
    }

    async fn update_env(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
        update: &EnvUpdate,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Release, RuntimeError> {
        let name = self.service_name(service.as_str(), region);
        let mut next = match self.get_service(&name).await {
            Ok(s) => s,
            Err(CallError::NotFound(_)) => {
                return Err(failed(
                    format!("service {service} does not exist on Cloud Run"),
                    "deploy it first",
                ));
            }
            Err(e) => return Err(from_call(e)),
        };
        let base = [&next.latest_created_revision, &next.latest_ready_revision]
            .into_iter()
            .find(|r| !r.is_empty())
            .cloned()
            .unwrap_or_else(|| service.to_string());
        let revision = self
            .unused_revision(&name, devgem_ports::next_revision(&base))
            .await
            .map_err(from_call)?;
        let Some(template) = next.template.as_mut() else {
            return Err(failed(
                format!("service {service} has no revision template"),
                "deploy it again",
            ));
        };
        let Some(container) = template.containers.first_mut() else {
            return Err(failed(
                format!("service {service} has no container"),
                "deploy it again",
            ));
        };
        apply_env(&mut container.env, update);
        template.revision = revision.clone();
        log.line(&format!(
            "Starting revision {revision} with the new environment"
        ));
        let updated = self.roll_out(next, &revision, log, cancel).await?;
        // Whether the service is public is not known here: any answer will do.
        self.wait_answering(&updated.uri, false, log, cancel)
            .await?;
        Ok(Release {
            url: updated.uri,
            revision,
        })
    }

    async fn map_domain(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
        domain: &str,
    ) -> Result<DomainMapping, RuntimeError> {
        let url = self.domain_mappings_url(region);
        let body = serde_json::json!({
            "apiVersion": "domains.cloudrun.com/v1",
            "kind": "DomainMapping",
            "metadata": {"name": domain, "namespace": self.config.project,
                         "labels": {"managed-by": "devgem"}},
            "spec": {"routeName": service.as_str(), "certificateMode": "AUTOMATIC"},
        });
        let what = format!("Cloud Run: map {domain} to {service}");
        let created = self
            .rest(reqwest::Method::POST, &url, Some(&body), &what)
            .await;
        let value = match created {
            Ok(value) => value,
            Err(CallError::AlreadyExists(_)) => {
                let existing = self
                    .rest(
                        reqwest::Method::GET,
                        &format!("{url}/{domain}"),
                        None,
                        &format!("Cloud Run: get domain mapping {domain}"),
                    )
                    .await
                    .map_err(from_call)?;
                let route = existing["spec"]["routeName"].as_str().unwrap_or_default();
                if route != service.as_str() {
                    return Err(failed(
                        format!("{domain} is already mapped to service {route}"),
                        "remove that mapping first, or pick another domain",
                    ));
                }
                existing
            }
            Err(e) => return Err(from_call(e)),
        };
        Ok(domain_mapping(&value))
    }

    async fn current_env(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
    ) -> Result<Option<Vec<RuntimeEnv>>, RuntimeError> {
        let name = self.service_name(service.as_str(), region);
        let found = match self.get_service(&name).await {
            Ok(found) => found,
            Err(CallError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(from_call(e)),
        };
        let env = found
            .template
            .iter()
            .flat_map(|t| t.containers.first())
            .flat_map(|c| c.env.iter())
            .filter_map(|var| match &var.values {
                Some(google_cloud_run_v2::model::env_var::Values::Value(value)) => {
                    Some(RuntimeEnv::Plain {
                        name: var.name.clone(),
                        value: value.clone(),
                    })
                }
                Some(google_cloud_run_v2::model::env_var::Values::ValueSource(source)) => {
                    source.secret_key_ref.as_ref().map(|r| RuntimeEnv::Secret {
                        name: var.name.clone(),
                        secret: r.secret.clone(),
                    })
                }
                _ => None,
            })
            .collect();
        Ok(Some(env))
    }

    async fn domains(
        &self,
        service: &ServiceName,
        region: Option<&Region>,
    ) -> Result<Vec<DomainMapping>, RuntimeError> {
        let list = self
            .rest(
                reqwest::Method::GET,
                &self.domain_mappings_url(region),
                None,
                "Cloud Run: list domain mappings",
            )
            .await
            .map_err(from_call)?;
        Ok(list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|m| m["spec"]["routeName"] == service.as_str())
                    .map(domain_mapping)
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_domain::EnvVarName;
    use devgem_ports::SecretEnv;

    #[test]
    fn an_env_update_replaces_removes_and_references_secrets() {
        let mut env = vec![
            EnvVar::new().set_name("A").set_value("1"),
            EnvVar::new().set_name("B").set_value("2"),
            EnvVar::new().set_name("C").set_value("3"),
        ];
        let update = EnvUpdate {
            set: [("A".to_string(), "10".to_string())].into(),
            set_secrets: vec![SecretEnv {
                name: EnvVarName::parse("C").unwrap(),
                secret: "deployments/d-1/env/C".into(),
                version: "2".into(),
            }],
            remove: vec!["B".into()],
        };
        apply_env(&mut env, &update);
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(json[0], serde_json::json!({"name": "A", "value": "10"}));
        assert_eq!(
            json[1]["valueSource"]["secretKeyRef"],
            serde_json::json!({"secret": "devgem-deployments-d-1-env-C", "version": "2"})
        );
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn domain_records_come_from_the_status() {
        let value = serde_json::json!({
            "metadata": {"name": "app.example.com"},
            "spec": {"routeName": "octo-app"},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown",
                                       "reason": "CertificatePending",
                                       "message": "Waiting for certificate provisioning."}],
                       "resourceRecords": [{"name": "app", "type": "CNAME",
                                            "rrdata": "ghs.googlehosted.com."}]}});
        let m = domain_mapping(&value);
        assert_eq!(
            m.status,
            DomainStatus::Pending("Waiting for certificate provisioning.".into())
        );
        assert_eq!(
            m.records,
            vec![DnsRecord {
                kind: "CNAME".into(),
                name: "app".into(),
                data: "ghs.googlehosted.com.".into()
            }]
        );
    }
}
