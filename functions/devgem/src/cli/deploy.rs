//! `devgem deploy PATH|GIT_URL`: starts a deployment (here, or on a server with --server),
//! shows its progress, and returns once it is live — the app keeps running.

use super::Remote;
use super::remote::Client;
use crate::cli::say;
use crate::config::{BuilderKind, Config, RuntimeKind};
use crate::render::Renderer;
use crate::wiring;
use anyhow::{Context, bail};
use devgem_app::{CreateDeployment, LocalPaths};
use devgem_domain::{Deployment, SourceKind, Status};
use devgem_local::{FetchConfig, LocalSourceFetcher};
use devgem_ports::{CancellationToken, SourceFetcher};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// A folder on this machine or a git URL (https://github.com/owner/repo, github.com/owner/repo).
    pub source: String,
    /// The branch to deploy (default: the repository's default branch).
    #[arg(long)]
    pub branch: Option<String>,
    /// The folder inside the repository to deploy (for monorepos).
    #[arg(long)]
    pub subdir: Option<String>,
    /// The service name (default: from the repository or folder name).
    #[arg(long)]
    pub name: Option<String>,
    /// An environment variable for the app, NAME=VALUE; repeatable. Values are kept secret.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Where the app runs: `process` (natively, here), `docker` (the generated Dockerfile on
    /// the Docker engine) or `cloudrun` (built on Cloud Build, run on Cloud Run). The same as
    /// DEVGEM_RUNTIME, which it overrides; the builder follows unless DEVGEM_BUILDER is set.
    #[arg(long, value_name = "RUNTIME")]
    pub to: Option<String>,
    /// Keep the app private: on Cloud Run, no public (`allUsers`) invoker; callers need IAM.
    #[arg(long)]
    pub private: bool,
    /// The Cloud Run region to run in (us-central1, europe-west1, ...), as `gcloud run deploy
    /// --region`; default: GOOGLE_CLOUD_REGION (or, on a server, your default_region). Builds
    /// and images stay in GOOGLE_CLOUD_REGION. Redeploys keep it.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Deploy despite high-severity security findings (committed keys, secrets in the
    /// Dockerfile); they are recorded on the deployment and shown as warnings.
    #[arg(long)]
    pub allow_findings: bool,
    /// Print one JSON event per line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub remote: Remote,
}

/// The configuration with `--to` applied: it names the runtime, and the builder that makes
/// what that runtime runs, unless DEVGEM_BUILDER says otherwise.
fn config_for(to: Option<&str>) -> anyhow::Result<Config> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let Some(to) = to else {
        return Ok(Config::from_env()?);
    };
    let builder = match to.trim() {
        "docker" => Some("docker"),
        "cloudrun" => Some("cloudbuild"),
        _ => None,
    };
    Config::from_lookup(|name| match name {
        "DEVGEM_RUNTIME" => Some(to.to_string()),
        "DEVGEM_BUILDER" => env(name).or(builder.map(str::to_string)),
        _ => env(name),
    })
    .map_err(|e| {
        anyhow::anyhow!(
            e.to_string()
                .replace("DEVGEM_RUNTIME", "--to (DEVGEM_RUNTIME)")
        )
    })
}

fn parse_env(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--env {pair:?} has no '=': write --env NAME=VALUE");
        };
        env.insert(name.trim().to_string(), value.to_string());
    }
    Ok(env)
}

/// A local path is made absolute, so a server in another folder finds it too.
fn absolute_source(source: &str) -> String {
    let path = std::path::Path::new(source);
    let looks_like_url = source.contains("://") || source.starts_with("git@");
    if !looks_like_url
        && path.exists()
        && let Ok(abs) = std::fs::canonicalize(path)
    {
        return abs.display().to_string();
    }
    source.to_string()
}

pub async fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let env = parse_env(&args.env)?;
    let request = CreateDeployment {
        owner: devgem_fn_chat::LOCAL_OWNER.to_string(),
        source: absolute_source(&args.source),
        upload: None,
        // This machine's own folders are the user's to deploy.
        local_paths: LocalPaths::Allowed,
        branch: args.branch.clone(),
        subdir: args.subdir.clone(),
        service_name: args.name.clone(),
        env,
        private: args.private,
        plan_override: None,
    };
    let region = args
        .region
        .as_deref()
        .map(devgem_domain::Region::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--region: {e}"))?;
    let options = devgem_app::CreateOptions {
        allow_findings: args.allow_findings,
        region,
    };
    let mut renderer = Renderer::new(args.json);
    let deployment = match &args.remote.server {
        Some(server) if args.to.is_some() => bail!(
            "--to chooses where a deploy from this machine runs; the server at {server} runs              apps where its own DEVGEM_RUNTIME says. Drop --to, or drop --server"
        ),
        Some(server) => {
            deploy_remote(
                server,
                args.remote.token.clone(),
                request,
                options,
                &mut renderer,
            )
            .await?
        }
        None => {
            let config = config_for(args.to.as_deref())?;
            deploy_here(config, args.to.is_some(), request, options, &mut renderer).await?
        }
    };
    renderer.finish();
    Ok(report(&deployment, renderer.is_json()))
}

/// When a Docker engine answers and neither the builder nor the runtime was chosen, one line
/// says that the native path is taken and how to take the engine's instead.
async fn say_which_path(config: &Config, to_given: bool) {
    let chosen = |var: &str| std::env::var(var).is_ok_and(|v| !v.trim().is_empty());
    if to_given || chosen(BuilderKind::VAR) || chosen(RuntimeKind::VAR) {
        return;
    }
    let engine = devgem_docker::Engine::from_env();
    if engine.answers(std::time::Duration::from_secs(1)).await {
        eprintln!(
            "note: a Docker engine answers at {}, but this deploy takes the native path \
             (builder {}, runtime {}); to build and run the generated Dockerfile on it, set \
             DEVGEM_BUILDER=docker DEVGEM_RUNTIME=docker",
            engine.host(),
            config.adapters.builder,
            config.adapters.runtime
        );
    }
}

/// `chosen`: the user named the runtime with `--to`.
async fn deploy_here(
    config: Config,
    chosen: bool,
    request: CreateDeployment,
    options: devgem_app::CreateOptions,
    renderer: &mut Renderer,
) -> anyhow::Result<Deployment> {
    config.check_adapters()?;
    say_which_path(&config, chosen).await;
    if let Some(region) = &options.region
        && config.adapters.runtime != RuntimeKind::CloudRun
    {
        eprintln!(
            "note: --region {region} is recorded, but runtime {} runs the app on this machine, \
             which has no regions; it applies on Cloud Run (--to cloudrun)",
            config.adapters.runtime
        );
    }
    let wiring = wiring::from_config(&config).await?;
    let services = wiring.services;
    let deployment = devgem_app::create_deployment_with(&services, request, None, options)
        .await
        .map_err(|e| match e {
            // The fix is part of the refusal: say it on the next line.
            devgem_app::AppError::BadRequest { message, hint } => {
                anyhow::anyhow!("{message}\nFix: {hint}")
            }
            other => anyhow::anyhow!("{other}"),
        })?;
    let id = deployment.id.clone();
    let mut events = devgem_app::follow(&services.core, &id, 0)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut interrupted = false;
    loop {
        tokio::select! {
            next = events.next() => match next {
                Some(Ok(event)) => renderer.show(&event),
                Some(Err(e)) => return Err(anyhow::anyhow!("lost the progress stream: {e}")),
                None => break,
            },
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                eprintln!("interrupted: aborting deployment {id} (press Ctrl-C again to leave it running)");
                let _ = devgem_app::abort_deployment(&services, &id).await;
            }
        }
    }
    if let Some(bus) = &wiring.local_bus {
        bus.drain().await;
    }
    services
        .core
        .store
        .get(&id)
        .await?
        .context("the deployment disappeared from the store")
}

async fn deploy_remote(
    server: &str,
    token: Option<String>,
    request: CreateDeployment,
    options: devgem_app::CreateOptions,
    renderer: &mut Renderer,
) -> anyhow::Result<Deployment> {
    let client = Client::new(server, token)?;
    let folder = local_folder(&request.source);
    let source = match &folder {
        // The server's disk is not this machine's: the folder goes up as an archive.
        Some(path) => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        None => request.source.clone(),
    };
    let body = serde_json::json!({
        "source": source,
        "branch": request.branch,
        "subdir": request.subdir,
        "service_name": request.service_name,
        "env": request.env,
        "public": !request.private,
        "allow_findings": options.allow_findings,
        "region": options.region,
    });
    let created: Deployment = match folder {
        Some(path) => {
            let archive = pack_folder(&path).await?;
            if !renderer.is_json() {
                eprintln!(
                    "Uploading {} ({} KiB packed)",
                    path.display(),
                    archive.len().div_ceil(1024)
                );
            }
            client.upload("/api/deployments", body, archive).await?
        }
        None => {
            client
                .call(reqwest::Method::POST, "/api/deployments", Some(body))
                .await?
        }
    };
    client
        .follow(created.id.as_str(), |event| renderer.show(event))
        .await?;
    client
        .call(
            reqwest::Method::GET,
            &format!("/api/deployments/{}", created.id),
            None,
        )
        .await
}

/// The folder on this machine that `source` names, if it names one.
fn local_folder(source: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(source);
    (devgem_domain::Source::at(source).kind() == SourceKind::LocalPath && path.is_dir())
        .then(|| path.to_path_buf())
}

/// Packs the folder as a clone of it would hold it: without `.git`, ignored files or links
/// leading out of it.
async fn pack_folder(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let copy = tempfile::tempdir()?;
    let fetcher = LocalSourceFetcher::new(FetchConfig::default());
    let source = devgem_domain::Source::at(path.display().to_string());
    struct Quiet;
    impl devgem_ports::LogSink for Quiet {
        fn line(&self, _: &str) {}
    }
    fetcher
        .fetch(
            &source,
            None,
            copy.path(),
            &Quiet,
            &CancellationToken::new(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let dir = copy.path().to_path_buf();
    let packed = tokio::task::spawn_blocking(move || devgem_archive::pack(&dir)).await??;
    Ok(packed)
}

/// Prints the outcome; its last line names the deployment, its status and its URL.
fn report(d: &Deployment, json: bool) -> ExitCode {
    if json {
        say(format_args!(
            "{}",
            serde_json::json!({
                "deployment_id": d.id,
                "status": d.status,
                "url": d.url,
                "error": d.error,
            })
        ));
    } else {
        if let Some(error) = &d.error {
            // One line with the step, the cause and the fix; then any quoted output.
            let (first, rest) = error.reason.split_once('\n').unwrap_or((&error.reason, ""));
            let fix = error
                .hint
                .as_deref()
                .map(|h| format!(" (fix: {h})"))
                .unwrap_or_default();
            eprintln!("error: {} failed: {first}{fix}", error.step.title());
            for line in rest.lines() {
                eprintln!("  {line}");
            }
        }
        let url = d.url.as_deref().unwrap_or("-");
        say(format_args!("deployment {} {} {url}", d.id, d.status));
    }
    match d.status {
        Status::Live => ExitCode::SUCCESS,
        Status::Aborted => ExitCode::from(130),
        _ => ExitCode::from(1),
    }
}
