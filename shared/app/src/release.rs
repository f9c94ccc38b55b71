//! What users do with a release once it runs: list its service's revisions and roll back,
//! read and change its environment (secret-like values go to the secrets port as
//! references), read its build and app logs a page at a time, and map custom domains.
//!
//! Thin on purpose: the HTTP API and the chat's tools call the same functions.

use crate::commands::{AppError, require};
use crate::keys;
use crate::lifecycle::modify;
use crate::services::Services;
use chrono::{DateTime, Utc};
use devgem_domain::{Deployment, DeploymentId, EnvVarName};
use devgem_plan::BuildPlan;
use devgem_ports::{
    DomainMapping, EnvUpdate, LogQuery, LogSink, RuntimeEnv, RuntimeError, SecretEnv, SecretValue,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

/// What a masked value shows instead of itself.
pub const MASK: &str = "********";

/// The most lines one page of logs holds.
pub const MAX_LOG_LINES: usize = 1000;

/// The largest value one variable may have (Cloud Run's limit for all of them together).
const MAX_VALUE_BYTES: usize = 32 * 1024;

fn bad(message: impl Into<String>, hint: impl Into<String>) -> AppError {
    AppError::BadRequest {
        message: message.into(),
        hint: hint.into(),
    }
}

/// A runtime's refusal is the user's to fix (4xx); the rest is as elsewhere.
fn runtime_error(e: RuntimeError) -> AppError {
    match e {
        RuntimeError::Failed { reason, hint } => AppError::BadRequest {
            message: reason,
            hint,
        },
        RuntimeError::Unavailable(m) => AppError::Unavailable(format!("the runtime ({m})")),
        RuntimeError::Cancelled => AppError::Internal("the runtime call was cancelled".into()),
    }
}

/// Where the runtime's lines about a rollback or an env change go: the server's log (they
/// name revisions, never values).
struct TracingSink<'a>(&'a DeploymentId);

impl LogSink for TracingSink<'_> {
    fn line(&self, line: &str) {
        tracing::info!(deployment = %self.0, "{line}");
    }
}

/// A deployment that is still on its way cannot be changed under its worker.
fn require_settled(d: &Deployment) -> Result<(), AppError> {
    if d.status.is_terminal() {
        Ok(())
    } else {
        Err(AppError::Conflict(format!(
            "deployment {} is still {}; wait until it is live",
            d.id, d.status
        )))
    }
}

// ---------------------------------------------------------------------------------------
// Revisions and rollback

/// One revision of a deployment's service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevisionView {
    pub name: String,
    pub deployment_id: DeploymentId,
    pub created_at: DateTime<Utc>,
    pub serving: bool,
    pub url: Option<String>,
}

/// The revisions of `id`'s service, newest first: only those of deployments with the same
/// owner (a service name may be shared on one runtime).
pub async fn revisions(
    services: &Services,
    id: &DeploymentId,
) -> Result<Vec<RevisionView>, AppError> {
    let d = require(&services.core, id).await?;
    let all = services
        .runtime
        .revisions(&d.service_name, d.region.as_ref())
        .await
        .map_err(runtime_error)?;
    let mut owners: BTreeMap<DeploymentId, bool> = BTreeMap::new();
    let mut out = Vec::new();
    for r in all {
        let ours = match owners.get(&r.deployment_id) {
            Some(ours) => *ours,
            None => {
                let ours = services
                    .core
                    .store
                    .get(&r.deployment_id)
                    .await?
                    .is_some_and(|other| other.owner == d.owner);
                owners.insert(r.deployment_id.clone(), ours);
                ours
            }
        };
        if ours {
            out.push(RevisionView {
                name: r.name,
                deployment_id: r.deployment_id,
                created_at: r.created_at,
                serving: r.serving,
                url: r.url,
            });
        }
    }
    Ok(out)
}

/// The revision a rollback goes to when none is named: the newest one older than the
/// (newest) serving one. `list` is newest first.
pub fn default_rollback_target(list: &[RevisionView]) -> Result<&RevisionView, AppError> {
    let Some(serving) = list.iter().position(|r| r.serving) else {
        return Err(bad(
            "no revision serves now, so there is no 'previous' one",
            "name the revision to roll back to: {\"revision\": \"NAME\"} (GET .../revisions lists them)",
        ));
    };
    list.get(serving + 1).ok_or_else(|| {
        bad(
            format!(
                "revision {} is the oldest; there is none before it to roll back to",
                list[serving].name
            ),
            "deploy again, or name a revision (GET .../revisions lists them)",
        )
    })
}

/// Sends all of the service's traffic to `revision` (default: the one before the serving
/// one) and records the serving revision and its URL on the deployment.
pub async fn rollback(
    services: &Services,
    id: &DeploymentId,
    revision: Option<&str>,
) -> Result<Deployment, AppError> {
    let d = require(&services.core, id).await?;
    require_settled(&d)?;
    let list = revisions(services, id).await?;
    let target = match revision {
        Some(name) => list.iter().find(|r| r.name == name).ok_or_else(|| {
            let known: Vec<&str> = list.iter().map(|r| r.name.as_str()).collect();
            bad(
                format!("service {} has no revision {name:?}", d.service_name),
                format!(
                    "pick one of: {}",
                    if known.is_empty() {
                        "(none)".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?,
        None => default_rollback_target(&list)?,
    };
    let release = services
        .runtime
        .route_traffic(
            &d.service_name,
            d.region.as_ref(),
            &target.name,
            &TracingSink(id),
            &CancellationToken::new(),
        )
        .await
        .map_err(runtime_error)?;
    let now = services.core.clock.now();
    modify(&services.core, id, |d| {
        d.url = Some(release.url.clone());
        d.revision = Some(release.revision.clone());
        d.updated_at = now;
        true
    })
    .await?;
    require(&services.core, id).await
}

// ---------------------------------------------------------------------------------------
// Environment

/// Where a variable of the merged view comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvSource {
    /// The build plan's production settings (NODE_ENV...).
    Plan,
    /// Set by the user as a plain value.
    User,
    /// Set by the user and kept as a secret (the app gets a reference).
    Secret,
    /// Found on the running service but not set through DevGem (changed there directly).
    Service,
}

/// One variable as the app sees it; a secret-like value is masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvEntry {
    pub name: String,
    pub value: String,
    pub source: EnvSource,
    pub masked: bool,
}

/// A change to a deployment's variables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvChange {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Names (in `set`, or already set) to keep as secrets whatever they look like.
    #[serde(default)]
    pub secret: Vec<String>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// A variable name as Cloud Run accepts it, or a 400 naming it and the fix.
pub fn check_env_name(name: &str) -> Result<EnvVarName, AppError> {
    const RESERVED: [&str; 4] = ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"];
    if RESERVED.contains(&name) {
        return Err(bad(
            format!("{name} is reserved: Cloud Run sets it for every app"),
            format!("read {name} in the app instead of setting it, or pick another name"),
        ));
    }
    EnvVarName::parse(name).map_err(|e| {
        bad(
            e.to_string(),
            format!(
                "rename {:?}: letters, digits and '_', not starting with a digit (e.g. MY_SETTING)",
                name.chars().take(80).collect::<String>()
            ),
        )
    })
}

/// Names that look like credentials: the one rule, kept with the plan.
pub use devgem_plan::is_secret_name;

/// Values that look like credentials whatever their name: well-known key prefixes, private
/// keys, URLs with a password, JSON web tokens, and long random-looking tokens.
pub fn is_secret_value(value: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk_live_",
        "sk_test_",
        "rk_live_",
        "ghp_",
        "gho_",
        "ghs_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "xoxp-",
        "AKIA",
        "AIza",
        "ya29.",
        "-----BEGIN",
    ];
    let v = value.trim();
    if PREFIXES.iter().any(|p| v.starts_with(p)) {
        return true;
    }
    // scheme://user:password@host
    if let Some((_, rest)) = v.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && userinfo.contains(':')
    {
        return true;
    }
    if v.starts_with("eyJ") && v.split('.').count() == 3 {
        return true;
    }
    // A long token of letters and digits (and -_+/=) with both, and no spaces.
    v.len() >= 32
        && !v.contains("://")
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+/=".contains(&b))
        && v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes().any(|b| b.is_ascii_alphabetic())
}

/// The plan of a deployment, if its analysis stored one.
pub(crate) async fn plan_of(
    services: &Services,
    id: &DeploymentId,
) -> Result<Option<BuildPlan>, AppError> {
    let Some(bytes) = services.objects.get(&keys::plan(id)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AppError::Internal(format!("the stored plan of {id} is unreadable: {e}")))
}

/// Whether the plan says the app reads `name` as a credential.
fn plan_says_secret(plan: Option<&BuildPlan>, name: &str) -> bool {
    plan.is_some_and(|p| p.env_vars.iter().any(|v| v.secret && v.name == name))
}

/// The merged view of a deployment's variables, by name: the plan's settings, overridden by
/// the user's; secrets and secret-like values masked.
pub async fn env_view(services: &Services, id: &DeploymentId) -> Result<Vec<EnvEntry>, AppError> {
    let d = require(&services.core, id).await?;
    let plan = plan_of(services, id).await?;
    let mut merged: BTreeMap<String, EnvEntry> = BTreeMap::new();
    if let Some(plan) = &plan {
        for (name, value) in &plan.env {
            if name == "PORT" {
                continue;
            }
            let masked = is_secret_name(name) || is_secret_value(value);
            merged.insert(
                name.clone(),
                EnvEntry {
                    name: name.clone(),
                    value: if masked { MASK.into() } else { value.clone() },
                    source: EnvSource::Plan,
                    masked,
                },
            );
        }
    }
    for name in &d.env_names {
        let entry = if d.plain_env_names.contains(name) {
            // Read back from the secrets port, so a change made there shows here.
            let value = services
                .secrets
                .get(&keys::env_secret(id, name.as_str()))
                .await?
                .map(|v| v.expose().to_string())
                .unwrap_or_default();
            EnvEntry {
                name: name.to_string(),
                value,
                source: EnvSource::User,
                masked: false,
            }
        } else {
            EnvEntry {
                name: name.to_string(),
                value: MASK.into(),
                source: EnvSource::Secret,
                masked: true,
            }
        };
        merged.insert(name.to_string(), entry);
    }
    // What the service really runs wins: a variable changed on it directly shows as it is.
    if let Some(running) = services
        .runtime
        .current_env(&d.service_name, d.region.as_ref())
        .await?
    {
        for var in running {
            let name = var.name().to_string();
            let known = merged.get(&name);
            let entry = match var {
                RuntimeEnv::Plain { value, .. } => {
                    let masked = is_secret_name(&name) || is_secret_value(&value);
                    let changed = known.is_none_or(|k| !k.masked && k.value != value);
                    if !changed {
                        continue;
                    }
                    EnvEntry {
                        name: name.clone(),
                        value: if masked { MASK.into() } else { value },
                        source: EnvSource::Service,
                        masked,
                    }
                }
                RuntimeEnv::Secret { .. } if known.is_some() => continue,
                RuntimeEnv::Secret { .. } => EnvEntry {
                    name: name.clone(),
                    value: MASK.into(),
                    source: EnvSource::Service,
                    masked: true,
                },
            };
            merged.insert(name, entry);
        }
    }
    Ok(merged.into_values().collect())
}

/// Applies `change` as a new revision: every value goes to the secrets port; secret-like
/// ones (by name, by value, by the plan, or marked) reach the app as references, plain ones
/// as env vars. The deployment records the names, the new revision and its URL.
pub async fn change_env(
    services: &Services,
    id: &DeploymentId,
    change: EnvChange,
) -> Result<Deployment, AppError> {
    let d = require(&services.core, id).await?;
    require_settled(&d)?;
    let plan = plan_of(services, id).await?;

    let mut set = Vec::new();
    for (name, value) in &change.set {
        let name = check_env_name(name)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(bad(
                format!("the value of {name} is {} bytes", value.len()),
                "Cloud Run allows 32 KiB of variables; keep large data in a file or a bucket",
            ));
        }
        set.push((name, value));
    }
    let mut marked = Vec::new();
    for name in &change.secret {
        let name = check_env_name(name)?;
        if !change.set.contains_key(name.as_str()) && !d.env_names.contains(&name) {
            return Err(bad(
                format!("{name} is marked secret but is not set"),
                format!(
                    "give its value too: {{\"set\": {{\"{name}\": \"...\"}}, \"secret\": [\"{name}\"]}}"
                ),
            ));
        }
        marked.push(name);
    }
    let mut unset = Vec::new();
    for name in &change.unset {
        let name = check_env_name(name)?;
        if change.set.contains_key(name.as_str()) {
            return Err(bad(
                format!("{name} is both set and unset"),
                "send it in one of `set` or `unset`",
            ));
        }
        if !d.env_names.contains(&name) {
            let from_plan = plan
                .as_ref()
                .is_some_and(|p| p.env.contains_key(name.as_str()));
            return Err(bad(
                format!("{name} is not one of the variables you set"),
                if from_plan {
                    format!("{name} comes from the build plan; set it to another value instead")
                } else {
                    "GET .../env lists the variables".to_string()
                },
            ));
        }
        unset.push(name);
    }
    if set.is_empty() && marked.is_empty() && unset.is_empty() {
        return Err(bad(
            "the change is empty",
            "send {\"set\": {\"NAME\": \"value\"}}, {\"secret\": [\"NAME\"]} or {\"unset\": [\"NAME\"]}",
        ));
    }

    let reference = |name: &EnvVarName| SecretEnv {
        name: name.clone(),
        secret: keys::env_secret(id, name.as_str()),
        version: "latest".into(),
    };
    let mut update = EnvUpdate::default();
    let mut plain = Vec::new();
    let mut secret = Vec::new();
    for (name, value) in set {
        services
            .secrets
            .put(
                &keys::env_secret(id, name.as_str()),
                &SecretValue::new(value.clone()),
            )
            .await?;
        let is_secret = marked.contains(&name)
            || is_secret_name(name.as_str())
            || is_secret_value(value)
            || plan_says_secret(plan.as_ref(), name.as_str());
        if is_secret {
            update.set_secrets.push(reference(&name));
            secret.push(name);
        } else {
            update.set.insert(name.to_string(), value.clone());
            plain.push(name);
        }
    }
    // Marked secret without a new value: the stored value becomes a reference.
    for name in marked {
        if !secret.contains(&name) {
            update.set_secrets.push(reference(&name));
            secret.push(name);
        }
    }
    update.remove = unset.iter().map(|n| n.to_string()).collect();

    let release = services
        .runtime
        .update_env(
            &d.service_name,
            d.region.as_ref(),
            &update,
            &TracingSink(id),
            &CancellationToken::new(),
        )
        .await
        .map_err(runtime_error)?;
    let now = services.core.clock.now();
    modify(&services.core, id, |d| {
        for name in plain.iter().chain(&secret) {
            if !d.env_names.contains(name) {
                d.env_names.push(name.clone());
            }
        }
        d.env_names.retain(|n| !unset.contains(n));
        d.plain_env_names
            .retain(|n| !unset.contains(n) && !secret.contains(n));
        for name in &plain {
            if !d.plain_env_names.contains(name) {
                d.plain_env_names.push(name.clone());
            }
        }
        d.url = Some(release.url.clone());
        d.revision = Some(release.revision.clone());
        d.updated_at = now;
        true
    })
    .await?;
    require(&services.core, id).await
}

// ---------------------------------------------------------------------------------------
// Logs

/// Which log a line comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    Build,
    App,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    pub timestamp: Option<DateTime<Utc>>,
    pub source: LogSource,
    pub text: String,
}

/// One page of a deployment's logs, oldest line first; `next_page_token` names the page of
/// older lines, if there are any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogsPage {
    pub lines: Vec<LogEntry>,
    pub next_page_token: Option<String>,
}

/// Where the next page starts: inside the app's log (the runtime's own token), or in the
/// build log before line `n` (the build ran before the app, so its lines are older).
#[derive(Debug, Clone, PartialEq, Eq)]
enum LogCursor {
    App(Option<String>),
    BuildBefore(usize),
}

impl LogCursor {
    fn parse(token: Option<&str>) -> Result<Self, AppError> {
        let invalid = || {
            bad(
                "the page token is not one this server gave",
                "pass next_page_token from the previous page unchanged, or omit it",
            )
        };
        match token {
            None | Some("") => Ok(LogCursor::App(None)),
            Some(t) => match t.split_once(':') {
                Some(("a", rest)) => Ok(LogCursor::App(Some(rest.to_string()))),
                Some(("b", n)) => n.parse().map(LogCursor::BuildBefore).map_err(|_| invalid()),
                _ => Err(invalid()),
            },
        }
    }

    fn token(&self) -> String {
        match self {
            LogCursor::App(Some(t)) => format!("a:{t}"),
            LogCursor::App(None) => "a:".into(),
            LogCursor::BuildBefore(n) => format!("b:{n}"),
        }
    }
}

/// The build log as stored (empty when there is none yet).
pub async fn build_log(services: &Services, id: &DeploymentId) -> Result<String, AppError> {
    Ok(services
        .objects
        .get(&keys::build_log(id))
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default())
}

/// The newest `query.limit` lines of the build and app logs merged (newest last), or the
/// older page `query.page_token` names.
pub async fn logs(
    services: &Services,
    id: &DeploymentId,
    query: &LogQuery,
) -> Result<LogsPage, AppError> {
    let d = require(&services.core, id).await?;
    let limit = query.limit.clamp(1, MAX_LOG_LINES);
    let mut lines = Vec::new();
    let build_end = match LogCursor::parse(query.page_token.as_deref())? {
        LogCursor::App(token) => {
            let page = services
                .runtime
                .logs(
                    &d.id,
                    d.region.as_ref(),
                    &LogQuery {
                        limit,
                        page_token: token,
                    },
                )
                .await
                .map_err(runtime_error)?;
            lines.extend(page.lines.into_iter().map(|l| LogEntry {
                timestamp: l.timestamp,
                source: LogSource::App,
                text: l.text,
            }));
            if let Some(next) = page.next_page_token {
                return Ok(LogsPage {
                    lines,
                    next_page_token: Some(LogCursor::App(Some(next)).token()),
                });
            }
            None
        }
        LogCursor::BuildBefore(n) => Some(n),
    };
    let build = build_log(services, id).await?;
    let build: Vec<&str> = build.lines().collect();
    let end = build_end.unwrap_or(build.len()).min(build.len());
    let room = limit.saturating_sub(lines.len());
    let start = end.saturating_sub(room);
    let older: Vec<LogEntry> = build[start..end]
        .iter()
        .map(|text| LogEntry {
            timestamp: None,
            source: LogSource::Build,
            text: text.to_string(),
        })
        .collect();
    lines.splice(0..0, older);
    Ok(LogsPage {
        lines,
        next_page_token: (start > 0).then(|| LogCursor::BuildBefore(start).token()),
    })
}

// ---------------------------------------------------------------------------------------
// Domains

/// A domain name as DNS accepts it: labels of letters, digits and '-', at least two.
pub fn check_domain(domain: &str) -> Result<String, AppError> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let ok = d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(d)
    } else {
        Err(bad(
            format!("{domain:?} is not a domain name"),
            "give a name such as shop.example.com (no scheme, no path)",
        ))
    }
}

/// Maps `domain` to the deployment's service; the answer names the DNS records to set.
pub async fn map_domain(
    services: &Services,
    id: &DeploymentId,
    domain: &str,
) -> Result<DomainMapping, AppError> {
    let d = require(&services.core, id).await?;
    let domain = check_domain(domain)?;
    services
        .runtime
        .map_domain(&d.service_name, d.region.as_ref(), &domain)
        .await
        .map_err(runtime_error)
}

/// The service's domain mappings with their status.
pub async fn domains(
    services: &Services,
    id: &DeploymentId,
) -> Result<Vec<DomainMapping>, AppError> {
    let d = require(&services.core, id).await?;
    services
        .runtime
        .domains(&d.service_name, d.region.as_ref())
        .await
        .map_err(runtime_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(name: &str) -> String {
        match check_env_name(name) {
            Err(AppError::BadRequest { message, hint }) => format!("{message} / {hint}"),
            other => panic!("{name} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn env_names_follow_cloud_runs_rules_and_name_the_fix() {
        assert!(check_env_name("STRIPE_KEY").is_ok());
        assert!(check_env_name("_private1").is_ok());
        for reserved in ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"] {
            let e = rejected(reserved);
            assert!(e.contains(reserved) && e.contains("reserved"), "{e}");
        }
        let e = rejected("1ST");
        assert!(
            e.contains("1ST") && e.contains("not starting with a digit"),
            "{e}"
        );
        let e = rejected("MY-VAR");
        assert!(
            e.contains("MY-VAR") && e.contains("letters, digits and '_'"),
            "{e}"
        );
        assert!(check_env_name("").is_err());
        assert!(check_env_name("A=B").is_err());
    }

    #[test]
    fn secret_likeness_by_name_and_by_value() {
        assert!(is_secret_name("STRIPE_API_KEY"));
        assert!(is_secret_name("database_url"));
        assert!(!is_secret_name("LOG_LEVEL"));
        assert!(!is_secret_name("GOOGLE_APPLICATION_CREDENTIALS_FILE"));
        assert!(is_secret_value("sk_live_abc"));
        assert!(is_secret_value("postgres://app:hunter2@db:5432/app"));
        assert!(is_secret_value("eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"));
        assert!(is_secret_value("Zx8Q2kLmP0aB7cD9eF1gH3iJ5kL7mN9o"));
        assert!(!is_secret_value("debug"));
        assert!(!is_secret_value("https://api.example.com/v1"));
        assert!(!is_secret_value(
            "hello world, this is a long plain sentence"
        ));
    }

    fn rev(name: &str, serving: bool) -> RevisionView {
        RevisionView {
            name: name.into(),
            deployment_id: DeploymentId::parse("d-1").unwrap(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            serving,
            url: None,
        }
    }

    #[test]
    fn a_rollback_goes_to_the_revision_before_the_serving_one() {
        let list = [rev("s-r3", false), rev("s-r2", true), rev("s-r1", false)];
        assert_eq!(default_rollback_target(&list).unwrap().name, "s-r1");
        assert!(default_rollback_target(&[rev("s-r1", true)]).is_err());
        assert!(default_rollback_target(&[rev("s-r1", false)]).is_err());
    }

    #[test]
    fn log_page_tokens_round_trip() {
        for cursor in [
            LogCursor::App(Some("abc:def".into())),
            LogCursor::BuildBefore(42),
        ] {
            assert_eq!(LogCursor::parse(Some(&cursor.token())).unwrap(), cursor);
        }
        assert!(LogCursor::parse(Some("garbage")).is_err());
    }

    #[test]
    fn domains_are_checked() {
        assert_eq!(
            check_domain("Shop.Example.com.").unwrap(),
            "shop.example.com"
        );
        assert!(check_domain("https://shop.example.com").is_err());
        assert!(check_domain("localhost").is_err());
    }
}
