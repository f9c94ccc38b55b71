//! What users ask for — start, abort and stop a deployment — and the recovery that resumes
//! unfinished deployments after a restart.

use crate::keys;
use crate::lifecycle::{finish_aborted, modify, stored_events};
use crate::services::{Core, Services};
use devgem_domain::{
    Deployment, DeploymentId, EnvVarName, NewDeployment, NewEvent, PlanOverride, Region,
    ServiceName, Source, StageMessage, Status,
};
use devgem_ports::{ListFilter, SecretError, SecretValue, Secrets, StoreError};
use std::collections::BTreeMap;

/// Errors a user can see: bad input, a missing deployment or link, a conflict (4xx), or ours (5xx).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    BadRequest { message: String, hint: String },
    #[error("deployment {0} does not exist")]
    NotFound(DeploymentId),
    /// A repository link that does not exist or is another user's (the id as given).
    #[error("link {0} does not exist")]
    LinkNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} is unavailable; try again shortly")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => AppError::NotFound(id),
            StoreError::Unavailable(m) => AppError::Unavailable(format!("the state store ({m})")),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<SecretError> for AppError {
    fn from(e: SecretError) -> Self {
        AppError::Unavailable(format!("the secret store ({e})"))
    }
}

impl From<devgem_ports::ObjectError> for AppError {
    fn from(e: devgem_ports::ObjectError) -> Self {
        AppError::Unavailable(format!("object storage ({e})"))
    }
}

impl From<devgem_ports::BusError> for AppError {
    fn from(e: devgem_ports::BusError) -> Self {
        AppError::Unavailable(e.to_string())
    }
}

impl From<devgem_ports::RuntimeError> for AppError {
    fn from(e: devgem_ports::RuntimeError) -> Self {
        AppError::Unavailable(e.to_string())
    }
}

/// Whether a request may name a folder on the disk of the machine that serves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LocalPaths {
    /// The CLI on its own machine, or a server started with `DEVGEM_ALLOW_LOCAL_SOURCES=1`.
    Allowed,
    /// A request over HTTP: the server's disk is not the caller's to read.
    #[default]
    Refused,
}

/// A request to deploy something.
#[derive(Debug, Clone, Default)]
pub struct CreateDeployment {
    pub owner: String,
    /// A git URL or a path on the machine that runs the analyze stage; for an upload, the name
    /// of the uploaded folder.
    pub source: String,
    /// An uploaded `.tar.gz` of the source, already checked by [`check_upload`].
    pub upload: Option<bytes::Bytes>,
    pub local_paths: LocalPaths,
    pub branch: Option<String>,
    /// A folder inside the repository to deploy (monorepos).
    pub subdir: Option<String>,
    pub service_name: Option<String>,
    /// Environment variables for the app; the values go to the secrets port only.
    pub env: BTreeMap<String, String>,
    /// Keep the app off the public internet (on Cloud Run: no `allUsers` invoker).
    pub private: bool,
    /// Plan changes the user accepted (a fix), kept with the deployment.
    pub plan_override: Option<PlanOverride>,
}

/// Choices about a new deployment beyond what it deploys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Deploy despite high-severity security findings (recorded on the deployment).
    pub allow_findings: bool,
    /// The Cloud Run region to run in (`--region`, the API's `region`, else the owner's
    /// `default_region`); `None`: the runtime's own.
    pub region: Option<Region>,
}

/// The owner's preferences; an owner without an account (the local user, an admin token) has
/// the defaults.
pub async fn owner_preferences(
    services: &Services,
    owner: &str,
) -> Result<devgem_domain::Preferences, AppError> {
    let Ok(user) = devgem_domain::UserId::parse(owner) else {
        return Ok(Default::default());
    };
    Ok(services
        .core
        .store
        .get_account(&user)
        .await?
        .map(|a| a.preferences)
        .unwrap_or_default())
}

/// Completes `request` from its owner's preferences, as every door (the API, the chat and MCP
/// tools, a linked push) does: the default variables under the ones the request sets, public
/// or private when `public` is unset (public without a preference), and the region when
/// `options` names none.
pub async fn apply_preferences(
    services: &Services,
    request: &mut CreateDeployment,
    public: Option<bool>,
    options: &mut CreateOptions,
) -> Result<(), AppError> {
    let preferences = owner_preferences(services, &request.owner).await?;
    let mut env: BTreeMap<String, String> = preferences
        .default_env
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    env.extend(std::mem::take(&mut request.env));
    request.env = env;
    request.private = !public.or(preferences.default_public).unwrap_or(true);
    if options.region.is_none() {
        options.region = preferences.default_region;
    }
    Ok(())
}

fn bad(message: impl Into<String>, hint: impl Into<String>) -> AppError {
    AppError::BadRequest {
        message: message.into(),
        hint: hint.into(),
    }
}

/// The name a service gets from its source: the repository or folder name.
fn default_service_name(source: &str, subdir: Option<&str>) -> ServiceName {
    let base = subdir
        .filter(|s| !s.is_empty())
        .unwrap_or(source)
        .trim_end_matches('/')
        .trim_end_matches(".git");
    let last = base.rsplit(['/', ':']).next().unwrap_or(base);
    ServiceName::derive_from(last)
}

/// Validates and stores a new deployment, then asks for its analysis.
pub async fn create_deployment(
    services: &Services,
    request: CreateDeployment,
) -> Result<Deployment, AppError> {
    create_deployment_at(services, request, None).await
}

/// [`create_deployment`] of exactly `commit` (a full sha), as a pushed webhook names it.
pub async fn create_deployment_at(
    services: &Services,
    request: CreateDeployment,
    commit: Option<String>,
) -> Result<Deployment, AppError> {
    create_deployment_with(services, request, commit, CreateOptions::default()).await
}

/// [`create_deployment_at`] with the owner's [`CreateOptions`].
pub async fn create_deployment_with(
    services: &Services,
    request: CreateDeployment,
    commit: Option<String>,
    options: CreateOptions,
) -> Result<Deployment, AppError> {
    if let Some(sha) = &commit
        && !(sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(bad(
            format!("{sha:?} is not a commit sha"),
            "give the full 40-character sha",
        ));
    }
    let source = request.source.trim().to_string();
    if source.is_empty() && request.upload.is_none() {
        return Err(bad(
            "the source is empty",
            "give a git URL (https://github.com/owner/repo) or a path to a folder",
        ));
    }
    if source.len() > 2048 || source.chars().any(char::is_control) {
        return Err(bad(
            "the source is not a valid URL or path",
            "check for stray characters",
        ));
    }
    // The policy decides first: a transport or an option is refused as what it is, even
    // where it would otherwise read as a (missing) local path.
    match &request.upload {
        None => {
            crate::sources::check_source(
                &services.sources,
                request.local_paths,
                &source,
                request.branch.as_deref(),
                request.subdir.as_deref(),
            )
            .await?
        }
        Some(_) => {
            if let Some(sub) = request.subdir.as_deref().filter(|s| !s.is_empty()) {
                devgem_sources::check_subdir(sub).map_err(|r| bad(r.reason, r.hint))?;
            }
        }
    }
    let service_name = match &request.service_name {
        Some(name) => ServiceName::parse(name).map_err(|e| {
            bad(
                e.to_string(),
                "use lowercase letters, digits and '-', starting with a letter",
            )
        })?,
        None => default_service_name(&source, request.subdir.as_deref()),
    };
    crate::sources::check_env_sizes(&request.env)?;
    let mut env_names = Vec::new();
    for name in request.env.keys() {
        env_names.push(EnvVarName::parse(name).map_err(|e| {
            bad(
                e.to_string(),
                "rename the variable (letters, digits and '_')",
            )
        })?);
    }
    let core = &services.core;
    let id = core.ids.deployment_id();
    let archive = match request.upload {
        Some(bytes) => {
            let key = keys::upload(&id);
            services.objects.put(&key, bytes).await?;
            Some(key)
        }
        None => None,
    };
    for (name, value) in &request.env {
        services
            .secrets
            .put(
                &keys::env_secret(&id, name),
                &SecretValue::new(value.clone()),
            )
            .await?;
    }
    let mut deployment = Deployment::new(
        id.clone(),
        NewDeployment {
            owner: request.owner,
            source: Source {
                location: source,
                archive,
                branch: request.branch.filter(|b| !b.is_empty()),
                commit,
                subdir: request.subdir.filter(|s| !s.is_empty()),
            },
            service_name,
            env_names,
        },
        core.clock.now(),
    );
    deployment.private = request.private;
    deployment.allow_findings = options.allow_findings;
    deployment.region = options.region;
    deployment.plan_override = request.plan_override.filter(|o| !o.is_empty());
    core.store.create(&deployment).await?;
    core.store
        .append_event(
            &id,
            NewEvent::status(
                Status::Queued,
                format!("Queued deployment of {}", deployment.source.location),
                0,
            ),
        )
        .await?;
    core.bus
        .publish(&StageMessage::new(id, devgem_domain::Stage::Analyze))
        .await?;
    Ok(deployment)
}

/// Checks an uploaded source archive the way a clone is checked (no entry outside the folder,
/// links kept only inside it, size limits), so a bad upload is refused before it is stored.
pub fn check_upload(bytes: &[u8], limits: &devgem_archive::Limits) -> Result<(), AppError> {
    let scratch = tempfile::tempdir().map_err(|e| AppError::Internal(e.to_string()))?;
    match devgem_archive::unpack(bytes, scratch.path(), limits) {
        Ok(_) => Ok(()),
        Err(e) if e.is_the_archives_fault() => Err(bad(
            format!("the uploaded source was refused: {e}"),
            "upload a gzipped tar of the app's folder (tar czf app.tar.gz -C app .), with no \
             paths outside it",
        )),
        Err(e) => Err(AppError::Internal(e.to_string())),
    }
}

/// The deployment, or `NotFound`.
pub(crate) async fn require(core: &Core, id: &DeploymentId) -> Result<Deployment, AppError> {
    core.store
        .get(id)
        .await?
        .ok_or_else(|| AppError::NotFound(id.clone()))
}

/// Asks a running deployment to stop where it is. A deployment that no worker holds is
/// aborted at once; one in a stage is aborted by its worker within about a second.
pub async fn abort_deployment(
    services: &Services,
    id: &DeploymentId,
) -> Result<Deployment, AppError> {
    let core = &services.core;
    let current = require(core, id).await?;
    if current.status.is_terminal() {
        return Err(AppError::Conflict(format!(
            "deployment {id} is already {}; only a running deployment can be aborted",
            current.status
        )));
    }
    modify(core, id, |d| {
        if d.status.is_terminal() || d.abort_requested {
            return false;
        }
        d.abort_requested = true;
        true
    })
    .await?;
    // Nobody works on it (between stages, or its worker is gone): abort it here.
    let now = core.clock.now();
    let unattended = require(core, id)
        .await?
        .live_claim(now, |h| core.instance.is_gone(h))
        .is_none();
    if unattended && finish_aborted(core, id).await? {
        // A worker that died mid-deploy may have left the app starting.
        let _ = services.runtime.stop(id, current.region.as_ref()).await;
    }
    require(core, id).await
}

/// Stops a live deployment's app.
pub async fn stop_deployment(
    services: &Services,
    id: &DeploymentId,
) -> Result<Deployment, AppError> {
    let core = &services.core;
    let current = require(core, id).await?;
    if !current.status.is_terminal() {
        return abort_deployment(services, id).await;
    }
    services.runtime.stop(id, current.region.as_ref()).await?;
    let now = core.clock.now();
    if let Some(d) = modify(core, id, |d| d.transition(Status::Stopped, now).is_ok()).await? {
        core.store
            .append_event(
                id,
                NewEvent::status(Status::Stopped, "Stopped by its owner", d.progress),
            )
            .await?;
        return Ok(d);
    }
    Ok(current)
}

/// Re-publishes the message of every unfinished deployment, so work interrupted by a restart
/// goes on. Stage handlers make the duplicates harmless.
pub async fn resume_unfinished(core: &Core) -> Result<usize, AppError> {
    let all = core
        .store
        .list(&ListFilter {
            owner: None,
            limit: 1000,
        })
        .await?;
    let mut resumed = 0;
    for d in all.into_iter().filter(|d| !d.status.is_terminal()) {
        if let Some(stage) = d.status.stage() {
            core.bus
                .publish(&StageMessage::new(d.id.clone(), stage))
                .await?;
            resumed += 1;
        }
    }
    Ok(resumed)
}

/// The user's environment variables with their values, for the runtime.
pub async fn user_env(
    secrets: &dyn Secrets,
    deployment: &Deployment,
) -> Result<Vec<(String, SecretValue)>, AppError> {
    let mut env = Vec::new();
    for name in &deployment.env_names {
        let value = secrets
            .get(&keys::env_secret(&deployment.id, name.as_str()))
            .await?
            .ok_or_else(|| AppError::Internal(format!("the value of {name} is missing")))?;
        env.push((name.as_str().to_string(), value));
    }
    Ok(env)
}

/// A deployment's events after `after`: the stored ones, then live ones until the final
/// event. For a finished deployment the stream ends with what is stored.
pub async fn follow(
    core: &Core,
    id: &DeploymentId,
    after: u64,
) -> Result<devgem_ports::EventStream, AppError> {
    let d = require(core, id).await?;
    if d.status.is_terminal() {
        let events = stored_events(core.store.as_ref(), id, after).await?;
        return Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))));
    }
    Ok(core.store.subscribe(id, after).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_come_from_the_repository_or_folder() {
        assert_eq!(
            default_service_name("https://github.com/acme/Shop.git", None).as_str(),
            "shop"
        );
        assert_eq!(
            default_service_name("/home/me/my_app/", None).as_str(),
            "my-app"
        );
        assert_eq!(
            default_service_name("git@github.com:acme/mono.git", Some("apps/web")).as_str(),
            "web"
        );
    }
}
