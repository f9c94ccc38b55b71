//! `devgem status`, `devgem logs` and `devgem stop`, on this machine's store or a server.

use super::Remote;
use super::remote::Client;
use crate::cli::say;
use crate::config::Config;
use crate::wiring;
use anyhow::bail;
use devgem_app::clock::{RandomIds, SystemClock};
use devgem_app::{Services, keys};
use devgem_domain::{Deployment, DeploymentId};
use devgem_ports::Clock;
use devgem_ports::ListFilter;
use std::process::ExitCode;

fn parse_id(raw: &str) -> anyhow::Result<DeploymentId> {
    DeploymentId::parse(raw).map_err(|e| anyhow::anyhow!("{e}: `devgem status` lists the ids"))
}

async fn local() -> anyhow::Result<Services> {
    Ok(wiring::from_config(&Config::from_env()?).await?.services)
}

async fn get_local(services: &Services, id: &DeploymentId) -> anyhow::Result<Deployment> {
    match services.core.store.get(id).await? {
        Some(d) => Ok(d),
        None => bail!("deployment {id} does not exist: `devgem status` lists the deployments"),
    }
}

/// A running deployment whose worker is gone (a `devgem deploy` that was killed, say).
fn is_orphaned(d: &Deployment) -> bool {
    if d.status.is_terminal() {
        return false;
    }
    let me = devgem_app::InstanceId::current(&RandomIds);
    let now = SystemClock.now();
    match &d.claim {
        Some(_) => d.live_claim(now, |h| me.is_gone(h)).is_none(),
        // Between stages a message is in flight; only an old one is a sign of trouble.
        None => now - d.updated_at > chrono::Duration::minutes(2),
    }
}

fn show_one(d: &Deployment) {
    say(format_args!("deployment  {}", d.id));
    say(format_args!("service     {}", d.service_name));
    say(format_args!("source      {}", d.source.location));
    if let Some(commit) = &d.commit {
        say(format_args!("commit      {commit}"));
    }
    if let Some(summary) = &d.summary {
        say(format_args!("detected    {summary}"));
    }
    say(format_args!("status      {} ({}%)", d.status, d.progress));
    if let Some(step) = d.step {
        say(format_args!("step        {}", step.title()));
    }
    if let Some(url) = &d.url {
        say(format_args!("url         {url}"));
    }
    if let Some(error) = &d.error {
        say(format_args!("error       {error}"));
    }
    say(format_args!(
        "created     {}",
        d.created_at.format("%Y-%m-%d %H:%M:%S UTC")
    ));
    if is_orphaned(d) {
        say(format_args!(
            "note        no DevGem process is working on it: `devgem serve` resumes it, \
             `devgem stop {}` aborts it",
            d.id
        ));
    }
}

fn show_list(list: &[Deployment]) {
    if list.is_empty() {
        say(format_args!(
            "no deployments yet: `devgem deploy PATH` starts one"
        ));
        return;
    }
    say(format_args!(
        "{:<36} {:<20} {:<10} {:>4}  URL",
        "ID", "SERVICE", "STATUS", "%"
    ));
    for d in list {
        say(format_args!(
            "{:<36} {:<20} {:<10} {:>4}  {}",
            d.id,
            d.service_name,
            d.status,
            d.progress,
            d.url.as_deref().unwrap_or("-")
        ));
    }
}

pub async fn status(id: Option<String>, remote: Remote, json: bool) -> anyhow::Result<ExitCode> {
    let id = id.as_deref().map(parse_id).transpose()?;
    let value: serde_json::Value = match (&remote.server, &id) {
        (Some(server), Some(id)) => {
            Client::new(server, remote.token)?
                .call(
                    reqwest::Method::GET,
                    &format!("/api/deployments/{id}"),
                    None,
                )
                .await?
        }
        (Some(server), None) => Client::new(server, remote.token)?
            .call::<serde_json::Value>(reqwest::Method::GET, "/api/deployments", None)
            .await?["deployments"]
            .take(),
        (None, Some(id)) => serde_json::to_value(get_local(&local().await?, id).await?)?,
        (None, None) => serde_json::to_value(
            local()
                .await?
                .core
                .store
                .list(&ListFilter {
                    owner: None,
                    limit: 50,
                })
                .await?,
        )?,
    };
    if json {
        say(serde_json::to_string_pretty(&value)?);
    } else if id.is_some() {
        show_one(&serde_json::from_value(value)?);
    } else {
        show_list(&serde_json::from_value::<Vec<Deployment>>(value)?);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(id: String, remote: Remote) -> anyhow::Result<ExitCode> {
    let id = parse_id(&id)?;
    let (build, app) = match &remote.server {
        Some(server) => {
            let v: serde_json::Value = Client::new(server, remote.token)?
                .call(
                    reqwest::Method::GET,
                    &format!("/api/deployments/{id}/logs"),
                    None,
                )
                .await?;
            (
                v["build"].as_str().unwrap_or_default().to_string(),
                v["app"].as_str().unwrap_or_default().to_string(),
            )
        }
        None => {
            let services = local().await?;
            let d = get_local(&services, &id).await?;
            let build = services
                .objects
                .get(&keys::build_log(&id))
                .await?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let app = services
                .runtime
                .logs(&id, d.region.as_ref(), &Default::default())
                .await
                .map(|p| p.text())
                .unwrap_or_default();
            (build, app)
        }
    };
    say(format_args!(
        "==> build log\n{}",
        if build.is_empty() { "(none)\n" } else { &build }
    ));
    say(format_args!(
        "==> app log\n{}",
        if app.is_empty() { "(none)" } else { &app }
    ));
    Ok(ExitCode::SUCCESS)
}

pub async fn stop(id: String, remote: Remote) -> anyhow::Result<ExitCode> {
    let id = parse_id(&id)?;
    let d: Deployment = match &remote.server {
        Some(server) => {
            Client::new(server, remote.token)?
                .call(
                    reqwest::Method::POST,
                    &format!("/api/deployments/{id}/stop"),
                    None,
                )
                .await?
        }
        None => {
            let services = local().await?;
            devgem_app::stop_deployment(&services, &id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };
    say(format_args!("deployment {} {}", d.id, d.status));
    Ok(ExitCode::SUCCESS)
}
