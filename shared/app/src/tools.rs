//! The tool executor: runs one [`ToolCall`] (from the chat's engine, a language model or an MCP
//! client) with the same application functions the REST API calls, and answers with a short
//! sentence for the user and the structured result for a program.
//!
//! **Invariant:** no environment value the user set appears in a result's text, data or
//! error; results name variables, never their values.

use crate::commands::{
    AppError, CreateDeployment, CreateOptions, LocalPaths, abort_deployment,
    create_deployment_with, require, stop_deployment, user_env,
};
use crate::lifecycle::modify;
use crate::links::{self, NewLink};
use crate::release::{self, EnvChange};
use crate::services::Services;
use devgem_diagnose::{Diagnosis, FailureInput, ProposedFix};
use devgem_domain::{
    DebianPackage, Dependency, Deployment, DeploymentId, Link, PlanOverride, Source, SourceKind,
    Status,
};
use devgem_plan::{Language, PackageManager};
use devgem_ports::{ListFilter, LogQuery, LogSink};
use devgem_tools::{DeploymentSummary, LinkSummary, ToolCall, ToolOutcome, reply_for};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

/// Who calls a tool, and in which conversation.
#[derive(Debug, Clone, Default)]
pub struct ToolContext {
    /// The owner every deployment the call reads or changes must belong to.
    pub owner: String,
    /// The session's current deployment: what a call without `deployment_id` means.
    pub current: Option<DeploymentId>,
    /// Whether a source may be a folder on this machine's disk.
    pub local_paths: LocalPaths,
    /// Where GitHub sends this server its pushes (`{public_url}/webhooks/github`), which a new
    /// link's reply tells the user to set; `None` when the server takes no GitHub webhooks.
    pub webhook_url: Option<String>,
}

/// What went wrong, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolErrorCode {
    /// The call needs a deployment and neither it nor the session names one.
    NoDeployment,
    NotFound,
    /// The arguments or the request cannot be carried out as given.
    BadRequest,
    /// The deployment is not in a state that allows it (still building, already over).
    Conflict,
    /// A service DevGem needs did not answer; retrying may help.
    Unavailable,
    Internal,
}

impl ToolErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolErrorCode::NoDeployment => "no_deployment",
            ToolErrorCode::NotFound => "not_found",
            ToolErrorCode::BadRequest => "bad_request",
            ToolErrorCode::Conflict => "conflict",
            ToolErrorCode::Unavailable => "unavailable",
            ToolErrorCode::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolError {
    pub code: ToolErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// What one call came to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolResult {
    pub ok: bool,
    /// A short sentence for the user.
    pub text: String,
    /// The structured result: the deployment as the REST API shows it, or the list, logs,
    /// environment, revisions, analysis or diagnosis. `null` when the call failed.
    pub data: Value,
    /// The deployment the call acted on or started: the session's next current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<DeploymentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ToolError>,
}

/// How many log lines `get_logs` reads.
const LOG_LINES: usize = 200;

/// What a successful call produced, before it is put in words.
struct Done {
    outcome: ToolOutcome,
    data: Value,
    deployment_id: Option<DeploymentId>,
}

/// Why a call did not happen.
enum Refusal {
    NoDeployment,
    App(AppError),
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        Refusal::App(e)
    }
}

impl From<devgem_ports::StoreError> for Refusal {
    fn from(e: devgem_ports::StoreError) -> Self {
        Refusal::App(e.into())
    }
}

/// Runs `call` for `ctx.owner`.
pub async fn run_tool(services: &Services, ctx: &ToolContext, call: &ToolCall) -> ToolResult {
    match execute(services, ctx, call).await {
        Ok(done) => ToolResult {
            ok: true,
            text: reply_for(call, &done.outcome),
            data: done.data,
            deployment_id: done.deployment_id,
            error: None,
        },
        Err(refusal) => refused(call, refusal),
    }
}

fn refused(call: &ToolCall, refusal: Refusal) -> ToolResult {
    let (outcome, code, message, hint, deployment_id) = match refusal {
        Refusal::NoDeployment => (
            ToolOutcome::NoDeployment,
            ToolErrorCode::NoDeployment,
            "no deployment was named and this session has none".to_string(),
            Some("name the deployment by its id (d-...), or deploy a repository first".into()),
            None,
        ),
        Refusal::App(AppError::NotFound(id)) => (
            ToolOutcome::NotFound {
                deployment_id: id.clone(),
            },
            ToolErrorCode::NotFound,
            format!("deployment {id} does not exist"),
            Some("list_deployments shows the ones there are".into()),
            None,
        ),
        Refusal::App(AppError::LinkNotFound(what)) => (
            ToolOutcome::LinkNotFound { what: what.clone() },
            ToolErrorCode::NotFound,
            format!("link {what} does not exist"),
            Some("list_links shows the ones there are".into()),
            None,
        ),
        Refusal::App(e) => {
            let (code, message, hint) = match e {
                AppError::BadRequest { message, hint } => {
                    (ToolErrorCode::BadRequest, message, Some(hint))
                }
                AppError::Conflict(m) => (ToolErrorCode::Conflict, m, None),
                AppError::Unavailable(m) => (ToolErrorCode::Unavailable, e_msg(&m), None),
                AppError::Internal(m) => {
                    tracing::error!(error = %m, tool = %call.name(), "tool failed");
                    (
                        ToolErrorCode::Internal,
                        "something went wrong on our side".to_string(),
                        None,
                    )
                }
                AppError::NotFound(_) | AppError::LinkNotFound(_) => {
                    unreachable!("handled above")
                }
            };
            let message = redact(call, &message);
            let hint = hint.map(|h| redact(call, &h));
            (
                ToolOutcome::Error {
                    message: message.clone(),
                },
                code,
                message,
                hint,
                call.deployment_id().cloned(),
            )
        }
    };
    ToolResult {
        ok: false,
        text: reply_for(call, &outcome),
        data: Value::Null,
        deployment_id,
        error: Some(ToolError {
            code,
            message,
            hint,
        }),
    }
}

fn e_msg(m: &str) -> String {
    format!("{m} is unavailable; try again shortly")
}

/// `text` with every value of the call's variables that could be secret replaced by `***`.
fn redact(call: &ToolCall, text: &str) -> String {
    let (env, secret) = match call {
        ToolCall::DeployRepository { env, secret, .. }
        | ToolCall::SetEnvVars { env, secret, .. } => (env, secret.as_slice()),
        ToolCall::LinkRepository { env, .. } => (env, &[][..]),
        _ => return text.to_string(),
    };
    let mut out = text.to_string();
    for (name, value) in env {
        let sensitive = secret.contains(name)
            || devgem_tools::is_secret_name(name)
            || release::is_secret_value(value);
        if sensitive && value.len() >= 3 {
            out = out.replace(value.as_str(), "***");
        }
    }
    out
}

fn to_value(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn bad(message: impl Into<String>, hint: impl Into<String>) -> Refusal {
    Refusal::App(AppError::BadRequest {
        message: message.into(),
        hint: hint.into(),
    })
}

/// The deployment a call acts on: the one it names, else the session's; only the owner's.
async fn target(
    services: &Services,
    ctx: &ToolContext,
    call: &ToolCall,
) -> Result<Deployment, Refusal> {
    let id = call
        .deployment_id()
        .or(ctx.current.as_ref())
        .cloned()
        .ok_or(Refusal::NoDeployment)?;
    owned(services, ctx, &id).await
}

async fn owned(
    services: &Services,
    ctx: &ToolContext,
    id: &DeploymentId,
) -> Result<Deployment, Refusal> {
    match services.core.store.get(id).await? {
        Some(d) if d.owner == ctx.owner => Ok(d),
        _ => Err(Refusal::App(AppError::NotFound(id.clone()))),
    }
}

fn deployment_done(outcome: ToolOutcome, d: &Deployment) -> Done {
    Done {
        outcome,
        data: to_value(d),
        deployment_id: Some(d.id.clone()),
    }
}

fn status_of(d: &Deployment) -> ToolOutcome {
    ToolOutcome::Status {
        deployment_id: d.id.clone(),
        status: d.status,
        url: d.url.clone(),
        error: d.error.as_ref().map(|f| f.reason.clone()),
    }
}

async fn execute(services: &Services, ctx: &ToolContext, call: &ToolCall) -> Result<Done, Refusal> {
    match call {
        ToolCall::DeployRepository {
            source,
            branch,
            subdir,
            service_name,
            env,
            secret,
            allow_findings,
        } => {
            if let Some(name) = secret.iter().find(|n| !env.contains_key(*n)) {
                return Err(bad(
                    format!("{name} is marked secret but has no value"),
                    format!("give its value too: env {{\"{name}\": \"...\"}}"),
                ));
            }
            let mut request = CreateDeployment {
                owner: ctx.owner.clone(),
                source: source.clone(),
                upload: None,
                local_paths: ctx.local_paths,
                branch: branch.clone(),
                subdir: subdir.clone(),
                service_name: service_name.as_ref().map(|s| s.to_string()),
                env: env.clone(),
                plan_override: None,
                private: false,
            };
            let mut options = CreateOptions {
                allow_findings: *allow_findings,
                region: None,
            };
            crate::apply_preferences(services, &mut request, None, &mut options).await?;
            let d = create_deployment_with(services, request, None, options).await?;
            Ok(deployment_done(
                ToolOutcome::Started {
                    deployment_id: d.id.clone(),
                },
                &d,
            ))
        }
        ToolCall::GetDeploymentStatus { .. } => {
            let d = target(services, ctx, call).await?;
            Ok(deployment_done(status_of(&d), &d))
        }
        ToolCall::ListDeployments => {
            let list = services
                .core
                .store
                .list(&ListFilter {
                    owner: Some(ctx.owner.clone()),
                    limit: 100,
                })
                .await?;
            let summaries = list
                .iter()
                .map(|d| DeploymentSummary {
                    id: d.id.clone(),
                    service_name: d.service_name.to_string(),
                    status: d.status,
                    url: d.url.clone(),
                })
                .collect();
            Ok(Done {
                outcome: ToolOutcome::Deployments(summaries),
                data: json!({ "deployments": list }),
                deployment_id: None,
            })
        }
        ToolCall::GetLogs { .. } => {
            let d = target(services, ctx, call).await?;
            let mut page = release::logs(
                services,
                &d.id,
                &LogQuery {
                    limit: LOG_LINES,
                    page_token: None,
                },
            )
            .await?;
            // An app may print its own secrets; the chat shows the lines masked.
            for line in &mut page.lines {
                line.text = devgem_diagnose::mask_secrets(&line.text);
            }
            Ok(Done {
                outcome: ToolOutcome::Logs {
                    deployment_id: d.id.clone(),
                    lines: page.lines.iter().map(|l| l.text.clone()).collect(),
                },
                data: json!({
                    "deployment_id": d.id,
                    "lines": page.lines,
                    "next_page_token": page.next_page_token,
                }),
                deployment_id: Some(d.id),
            })
        }
        ToolCall::SetEnvVars { env, secret, .. } => {
            let d = target(services, ctx, call).await?;
            let change = EnvChange {
                set: env.clone(),
                secret: secret.clone(),
                unset: Vec::new(),
            };
            change_env_or_redeploy(services, ctx, &d, change).await
        }
        ToolCall::UnsetEnvVars { names, .. } => {
            let d = target(services, ctx, call).await?;
            let change = EnvChange {
                unset: names.clone(),
                ..EnvChange::default()
            };
            change_env_or_redeploy(services, ctx, &d, change).await
        }
        ToolCall::AbortDeployment { .. } => {
            let d = target(services, ctx, call).await?;
            let d = abort_deployment(services, &d.id).await?;
            Ok(deployment_done(
                ToolOutcome::Done {
                    deployment_id: d.id.clone(),
                },
                &d,
            ))
        }
        ToolCall::StopDeployment { .. } => {
            let d = target(services, ctx, call).await?;
            let d = stop_deployment(services, &d.id).await?;
            Ok(deployment_done(
                ToolOutcome::Done {
                    deployment_id: d.id.clone(),
                },
                &d,
            ))
        }
        ToolCall::Redeploy { allow_findings, .. } => {
            let d = target(services, ctx, call).await?;
            // "Deploy anyway": the owner's override of a security-scan stop, kept by the new
            // deployment (and every redeploy of it) as the API's flag is.
            let next = redeploy_with(
                services,
                ctx,
                &d,
                BTreeMap::new(),
                &[],
                d.plan_override.clone(),
                d.allow_findings || *allow_findings,
            )
            .await?;
            Ok(deployment_done(
                ToolOutcome::Started {
                    deployment_id: next.id.clone(),
                },
                &next,
            ))
        }
        ToolCall::Rollback { revision, .. } => {
            let d = target(services, ctx, call).await?;
            let d = release::rollback(services, &d.id, revision.as_deref()).await?;
            Ok(deployment_done(
                ToolOutcome::RolledBack {
                    deployment_id: d.id.clone(),
                    revision: d.revision.clone().unwrap_or_default(),
                },
                &d,
            ))
        }
        ToolCall::AnalyzeRepository { source, branch } => {
            analyze_repository(services, ctx, source, branch.as_deref()).await
        }
        ToolCall::DiagnoseFailure { .. } => {
            let d = target(services, ctx, call).await?;
            let Some(diagnosis) = diagnosis_of(services, &d).await? else {
                return Ok(deployment_done(status_of(&d), &d));
            };
            Ok(Done {
                outcome: ToolOutcome::Diagnosis {
                    cause: diagnosis.cause.clone(),
                    fix: Some(diagnosis.fix.clone()),
                },
                data: json!({ "deployment_id": d.id, "diagnosis": diagnosis }),
                deployment_id: Some(d.id),
            })
        }
        ToolCall::ApplyFix { fix, .. } => {
            let d = target(services, ctx, call).await?;
            apply_fix(services, ctx, &d, fix.as_deref()).await
        }
        ToolCall::LinkRepository {
            repository,
            branch,
            service_name,
            env,
        } => {
            let request = NewLink {
                repository: repository.to_string(),
                branch: branch.clone().unwrap_or_else(|| "main".to_string()),
                service_name: service_name.as_ref().map(|s| s.to_string()),
                env: env.clone(),
            };
            let link = links::create_link(services, &ctx.owner, request).await?;
            Ok(Done {
                outcome: ToolOutcome::Linked {
                    link: link_summary(&link),
                    webhook_url: ctx.webhook_url.clone(),
                },
                data: json!({ "link": link, "webhook_url": ctx.webhook_url }),
                deployment_id: None,
            })
        }
        ToolCall::ListLinks => {
            let list = links::list_links(services, &ctx.owner).await?;
            Ok(Done {
                outcome: ToolOutcome::Links(list.iter().map(link_summary).collect()),
                data: json!({ "links": list }),
                deployment_id: None,
            })
        }
        ToolCall::UnlinkRepository {
            link_id,
            repository,
        } => {
            let removed = match (link_id, repository) {
                (Some(id), _) => vec![links::delete_link(services, &ctx.owner, id).await?],
                (None, repository) => {
                    let mine = links::list_links(services, &ctx.owner).await?;
                    let mut removed = Vec::new();
                    for link in links_named(mine, repository.as_ref())? {
                        removed.push(links::delete_link(services, &ctx.owner, &link.id).await?);
                    }
                    removed
                }
            };
            Ok(Done {
                outcome: ToolOutcome::Unlinked(removed.iter().map(link_summary).collect()),
                data: json!({ "deleted": removed }),
                deployment_id: None,
            })
        }
    }
}

fn link_summary(link: &Link) -> LinkSummary {
    LinkSummary {
        id: link.id.clone(),
        repository: link.repository.to_string(),
        branch: link.branch.clone(),
        service_name: link.service_name.to_string(),
    }
}

/// The links an unlink without an id means: every one of `repository`, or, with no
/// repository either, the caller's only link.
fn links_named(
    mine: Vec<Link>,
    repository: Option<&devgem_domain::RepositoryName>,
) -> Result<Vec<Link>, Refusal> {
    if let Some(r) = repository {
        let of: Vec<Link> = mine
            .into_iter()
            .filter(|l| l.repository.matches(r.as_str()))
            .collect();
        if of.is_empty() {
            return Err(Refusal::App(AppError::LinkNotFound(format!("of {r}"))));
        }
        return Ok(of);
    }
    match mine.len() {
        0 => Err(bad(
            "no repository is linked",
            "link one first: \"auto-deploy owner/name from main\"",
        )),
        1 => Ok(mine),
        n => {
            let listed: Vec<String> = mine
                .iter()
                .map(|l| format!("{} (branch {}, {})", l.repository, l.branch, l.id))
                .collect();
            Err(bad(
                format!("there are {n} links: {}", listed.join("; ")),
                "say which: the repository (owner/name) or the link's id",
            ))
        }
    }
}

/// A variable change: a new revision of a live deployment, or a new deployment with the
/// change when the old one no longer runs (it failed, was stopped or aborted).
async fn change_env_or_redeploy(
    services: &Services,
    ctx: &ToolContext,
    d: &Deployment,
    change: EnvChange,
) -> Result<Done, Refusal> {
    if d.status == Status::Live {
        let d = release::change_env(services, &d.id, change).await?;
        let env = release::env_view(services, &d.id).await?;
        return Ok(Done {
            outcome: ToolOutcome::Done {
                deployment_id: d.id.clone(),
            },
            data: json!({
                "deployment_id": d.id,
                "service": d.service_name,
                "revision": d.revision,
                "url": d.url,
                "status": d.status,
                "env": env,
            }),
            deployment_id: Some(d.id),
        });
    }
    if !d.status.is_terminal() {
        return Err(Refusal::App(AppError::Conflict(format!(
            "deployment {} is still {}; change its variables once it is live (or abort it)",
            d.id, d.status
        ))));
    }
    for name in change.set.keys().chain(&change.secret).chain(&change.unset) {
        release::check_env_name(name)?;
    }
    if let Some(name) = change
        .unset
        .iter()
        .find(|n| !d.env_names.iter().any(|e| e.as_str() == n.as_str()))
    {
        return Err(bad(
            format!("{name} is not one of the variables you set"),
            "get_deployment_status shows the names that are set",
        ));
    }
    let next = redeploy_with(
        services,
        ctx,
        d,
        change.set,
        &change.unset,
        d.plan_override.clone(),
        d.allow_findings,
    )
    .await?;
    Ok(deployment_done(
        ToolOutcome::Started {
            deployment_id: next.id.clone(),
        },
        &next,
    ))
}

/// A new deployment of `d`'s source, branch, folder, service and variables (their stored
/// values), with `env` set on top.
pub(crate) async fn redeploy(
    services: &Services,
    ctx: &ToolContext,
    d: &Deployment,
    env: BTreeMap<String, String>,
    plan_override: Option<PlanOverride>,
) -> Result<Deployment, AppError> {
    redeploy_with(services, ctx, d, env, &[], plan_override, d.allow_findings).await
}

async fn redeploy_with(
    services: &Services,
    ctx: &ToolContext,
    d: &Deployment,
    env: BTreeMap<String, String>,
    unset: &[String],
    plan_override: Option<PlanOverride>,
    allow_findings: bool,
) -> Result<Deployment, AppError> {
    let mut values: BTreeMap<String, String> = user_env(services.secrets.as_ref(), d)
        .await?
        .into_iter()
        .map(|(name, value)| (name, value.expose().to_string()))
        .collect();
    values.extend(env);
    values.retain(|name, _| !unset.contains(name));
    let upload = match &d.source.archive {
        Some(key) => {
            Some(
                services
                    .objects
                    .get(key)
                    .await?
                    .ok_or_else(|| AppError::BadRequest {
                        message: format!("the uploaded source of {} is gone", d.id),
                        hint: "deploy the folder again".into(),
                    })?,
            )
        }
        None => None,
    };
    // A source this server accepted once for this owner (a path the CLI deployed) may be
    // deployed again; `d` is the caller's own.
    let local_paths = if d.source.kind() == SourceKind::LocalPath {
        LocalPaths::Allowed
    } else {
        ctx.local_paths
    };
    let next = create_deployment_with(
        services,
        CreateDeployment {
            owner: d.owner.clone(),
            source: d.source.location.clone(),
            upload,
            local_paths,
            branch: d.source.branch.clone(),
            subdir: d.source.subdir.clone(),
            service_name: Some(d.service_name.to_string()),
            env: values,
            plan_override,
            // A redeploy is as reachable as what it replaces.
            private: d.private,
        },
        None,
        CreateOptions {
            allow_findings,
            // It runs where what it replaces runs.
            region: d.region.clone(),
        },
    )
    .await?;
    // The variables that reached the app as plain values still do.
    let plain: Vec<_> = d
        .plain_env_names
        .iter()
        .filter(|n| next.env_names.contains(n))
        .cloned()
        .collect();
    if !plain.is_empty() {
        modify(&services.core, &next.id, |n| {
            if n.plain_env_names == plain {
                return false;
            }
            n.plain_env_names = plain.clone();
            true
        })
        .await?;
    }
    require(&services.core, &next.id).await
}

/// Fetches and analyzes a repository without deploying it, as the analyze stage does.
async fn analyze_repository(
    services: &Services,
    ctx: &ToolContext,
    location: &str,
    branch: Option<&str>,
) -> Result<Done, Refusal> {
    let mut source = Source::at(location.trim());
    source.branch = branch.map(str::to_string);
    if source.kind() == SourceKind::LocalPath && ctx.local_paths == LocalPaths::Refused {
        return Err(bad(
            format!("{location:?} is a path on the server's disk, which requests cannot analyze"),
            "analyze a git URL; a server's owner may allow paths with DEVGEM_ALLOW_LOCAL_SOURCES=1",
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| AppError::Internal(e.to_string()))?;
    let credential = crate::sources::owner_github_token(services.secrets.as_ref(), &ctx.owner)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    services
        .source
        .fetch(
            &source,
            credential.as_ref(),
            dir.path(),
            &Quiet,
            &CancellationToken::new(),
        )
        .await
        .map_err(|e| match e {
            devgem_ports::SourceError::Rejected { reason, hint } => AppError::BadRequest {
                message: reason,
                hint,
            },
            devgem_ports::SourceError::Unavailable(m) => {
                AppError::Unavailable(format!("the repository ({m})"))
            }
            devgem_ports::SourceError::Cancelled => AppError::Internal("cancelled".into()),
        })?;
    let path = dir.path().to_path_buf();
    let analysis = tokio::task::spawn_blocking(move || devgem_analyzer::analyze(&path))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    if !analysis.is_recognized() {
        return Ok(Done {
            outcome: ToolOutcome::Analysis {
                summary: format!(
                    "I couldn't recognise a deployable app in {location}: no manifest (package.json, \
                     requirements.txt, go.mod, Cargo.toml, ...) or Dockerfile at its root."
                ),
            },
            data: json!({ "source": location, "analysis": analysis.public(), "plan": null }),
            deployment_id: None,
        });
    }
    let plan = devgem_analyzer::plan(&analysis).ok();
    let mut summary = format!("{location} is a {} app", analysis.language_name());
    if let Some(fw) = &analysis.framework {
        summary.push_str(&format!(" using {fw}"));
    }
    let start = plan
        .as_ref()
        .map(|p| p.start_command.clone())
        .or(analysis.start_command.clone());
    if let Some(start) = start {
        summary.push_str(&format!("; it starts with `{start}`"));
    }
    summary.push_str(&format!(" on port {}.", analysis.deploy_port));
    if !analysis.env_vars.is_empty() {
        let names: Vec<String> = analysis
            .env_vars
            .iter()
            .map(|v| {
                if v.secret {
                    format!("{} (secret)", v.name)
                } else {
                    v.name.clone()
                }
            })
            .collect();
        summary.push_str(&format!(" It reads {}.", names.join(", ")));
    }
    Ok(Done {
        outcome: ToolOutcome::Analysis { summary },
        data: json!({ "source": location, "analysis": analysis.public(), "plan": plan }),
        deployment_id: None,
    })
}

/// Fetch lines are not shown: the answer is the analysis.
struct Quiet;

impl LogSink for Quiet {
    fn line(&self, line: &str) {
        tracing::debug!("{line}");
    }
}

/// The diagnosis of a failed deployment from its error, its logs and its plan; `None` when it
/// did not fail.
async fn diagnosis_of(services: &Services, d: &Deployment) -> Result<Option<Diagnosis>, Refusal> {
    let Some(failure) = d.error.as_ref().filter(|_| d.status == Status::Failed) else {
        return Ok(None);
    };
    let mut lines: Vec<String> = release::build_log(services, &d.id)
        .await
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    if let Ok(page) = services
        .runtime
        .logs(&d.id, d.region.as_ref(), &LogQuery::default())
        .await
    {
        lines.extend(page.lines.into_iter().map(|l| l.text));
    }
    let plan = release::plan_of(services, &d.id).await.ok().flatten();
    let mut input = FailureInput::from_failure(failure).with_log(&lines);
    if let Some(plan) = &plan {
        input = input.with_plan(plan);
    }
    Ok(Some(devgem_diagnose::diagnose(&input)))
}

/// The dependency a fix adds, for the manifests DevGem patches: requirements.txt (pip) and
/// package.json (npm); a name that breaks its registry's rules is refused.
fn dependency_for(
    language: Language,
    manager: Option<PackageManager>,
    package: &str,
    diagnosis: &Diagnosis,
) -> Result<Dependency, Refusal> {
    let parsed = match (language, manager) {
        (Language::Python, None | Some(PackageManager::Pip)) => Dependency::python(package),
        (Language::Node, None | Some(PackageManager::Npm)) => Dependency::node(package),
        (language, manager) => {
            let with = manager.map(|m| format!(" with {m}")).unwrap_or_default();
            return Err(bad(
                format!(
                    "DevGem adds dependencies to requirements.txt (pip) and package.json (npm) only, and this {language} app is built{with}"
                ),
                diagnosis.fix.clone(),
            ));
        }
    };
    parsed.map_err(|e| {
        bad(
            format!("the fix's package is not one DevGem will add: {e}"),
            diagnosis.fix.clone(),
        )
    })
}

fn debian_package(package: &str) -> Result<DebianPackage, Refusal> {
    DebianPackage::parse(package).map_err(|e| {
        bad(
            format!("the fix's package is not one DevGem will add: {e}"),
            "install it in your own Dockerfile",
        )
    })
}

/// The name a fix goes by: its kind (`set_start_command`, `set_port`...).
fn fix_kind(fix: &ProposedFix) -> String {
    to_value(fix)["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn apply_fix(
    services: &Services,
    ctx: &ToolContext,
    d: &Deployment,
    wanted: Option<&str>,
) -> Result<Done, Refusal> {
    let Some(diagnosis) = diagnosis_of(services, d).await? else {
        return Err(Refusal::App(AppError::Conflict(format!(
            "deployment {} is {}, not failed: there is no fix to apply",
            d.id, d.status
        ))));
    };
    let signature = to_value(&diagnosis.signature)
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(proposed) = diagnosis.proposed.clone() else {
        return Err(bad(
            format!("{} DevGem cannot make this change itself", diagnosis.cause),
            diagnosis.fix.clone(),
        ));
    };
    let kind = fix_kind(&proposed);
    if let Some(w) = wanted
        && w != kind
        && w != signature
    {
        return Err(bad(
            format!("the diagnosis of {} proposes no fix {w:?}", d.id),
            format!("the fix it proposes is {kind:?} ({})", diagnosis.fix),
        ));
    }
    let mut change = d.plan_override.clone().unwrap_or_default();
    let description = match &proposed {
        ProposedFix::SetStartCommand { command } => {
            change.start_command = Some(command.clone());
            None
        }
        ProposedFix::SetPort { port } => {
            change.port = Some(*port);
            None
        }
        ProposedFix::AddDependency {
            language,
            manager,
            package,
        } => {
            let dependency = dependency_for(*language, *manager, package, &diagnosis)?;
            let said = format!(
                "added `{dependency}` to {} (the analysis patches the checkout with it on every deploy of this app; commit it to your repository to keep it there too)",
                dependency.manifest().file_name()
            );
            change.add_dependency(dependency);
            Some(said)
        }
        ProposedFix::AddSystemPackage { package } => {
            let package = debian_package(package)?;
            let said = format!("added the system package `{package}` to the image's plan");
            change.add_system_package(package);
            Some(said)
        }
        ProposedFix::AddBuildPackage { package } => {
            let package = debian_package(package)?;
            let said = format!("added the build package `{package}` to the build image's plan");
            change.add_build_package(package);
            Some(said)
        }
        ProposedFix::SetEnvVar { name } => {
            return Err(bad(
                format!("{} needs a value that only you know", name),
                format!("say \"set {name} to ...\" and I'll redeploy with it"),
            ));
        }
        _ => {
            return Err(bad(
                format!("DevGem cannot apply a {kind} fix by itself yet"),
                diagnosis.fix.clone(),
            ));
        }
    };
    let next = redeploy(services, ctx, d, BTreeMap::new(), Some(change.clone())).await?;
    let description = match description {
        Some(said) => format!("{said}; kept with the deployment as a plan override."),
        None => format!(
            "the plan now uses {} (kept with the deployment as a plan override).",
            change.describe()
        ),
    };
    Ok(Done {
        outcome: ToolOutcome::FixApplied {
            deployment_id: next.id.clone(),
            change: description,
        },
        data: json!({
            "deployment": next,
            "diagnosis": diagnosis,
            "plan_override": change,
        }),
        deployment_id: Some(next.id),
    })
}
