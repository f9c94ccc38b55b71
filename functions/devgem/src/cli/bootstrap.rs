//! `devgem bootstrap`: creates (idempotently) the Pub/Sub topics, the push subscription of
//! each stage function and the dead letter topic and subscription, on the emulator or on
//! Google Cloud.

use crate::cli::say;
use anyhow::bail;
use devgem_domain::Stage;
use devgem_gcp::GcpConfig;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct BootstrapArgs {
    /// FUNCTION=URL of a stage function (analyze, build-trigger, deploy); repeatable.
    #[arg(long = "endpoint", value_name = "FUNCTION=URL", required = true)]
    pub endpoints: Vec<String>,
    /// The URL of the function that handles dead letters (the chat function).
    #[arg(long, value_name = "URL")]
    pub dead_letter: Option<String>,
    /// Deliveries before a message is dead-lettered (Pub/Sub allows 5 to 100).
    #[arg(long, default_value_t = 5)]
    pub max_attempts: i32,
}

fn stage_of(function: &str) -> Option<Stage> {
    match function {
        "analyze" => Some(Stage::Analyze),
        "build-trigger" | "build" => Some(Stage::Build),
        "deploy" => Some(Stage::Deploy),
        _ => None,
    }
}

pub async fn run(args: BootstrapArgs) -> anyhow::Result<ExitCode> {
    let config = GcpConfig::from_env()
        .map_err(|e| anyhow::anyhow!("bootstrap needs Google Cloud settings: {e}"))?;
    let mut endpoints = Vec::new();
    for pair in &args.endpoints {
        let Some((function, url)) = pair.split_once('=') else {
            bail!("--endpoint {pair:?} has no '=': write --endpoint analyze=https://...");
        };
        let Some(stage) = stage_of(function.trim()) else {
            bail!(
                "--endpoint {function:?} is not a stage function: use analyze, build-trigger or deploy"
            );
        };
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--endpoint {function}={url:?}: the URL must start with http:// or https://");
        }
        endpoints.push((stage, url.to_string()));
    }
    let report = devgem_gcp::bootstrap(
        &config,
        &endpoints,
        args.dead_letter.as_deref(),
        args.max_attempts,
    )
    .await
    .map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?;
    let groups = [
        ("created topic", &report.topics_created),
        ("existing topic", &report.topics_existing),
        ("created subscription", &report.subscriptions_created),
        ("updated subscription", &report.subscriptions_updated),
        ("unchanged subscription", &report.subscriptions_unchanged),
    ];
    for (what, names) in groups {
        for name in names.iter() {
            say(format_args!("{what:<24} {name}"));
        }
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}
