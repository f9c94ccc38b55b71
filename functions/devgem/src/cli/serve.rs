//! `devgem serve`: the HTTP API and every stage in one process, on the embedded defaults.

use crate::config::Config;
use crate::wiring;
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub async fn run() -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    if let Some(target) = &config.function_target
        && target != "all"
    {
        anyhow::bail!(
            "FUNCTION_TARGET={target} needs the distributed mode (Pub/Sub), which this build does not \
             configure yet; unset FUNCTION_TARGET to serve every function in this process"
        );
    }
    let (services, bus) = wiring::embedded(&config)?;
    wiring::connect_stages(&services, &bus);
    let resumed = devgem_app::resume_unfinished(&services)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if resumed > 0 {
        tracing::info!(resumed, "resuming unfinished deployments");
    }
    let api = Arc::new(devgem_fn_chat::Api::new(services, config.api_token.clone()));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on port {}: set PORT to a free port",
                config.port
            )
        })?;
    let port = listener.local_addr()?.port();
    // Tests and scripts read this line to find the port when PORT=0.
    println!("DevGem listening on http://127.0.0.1:{port}");
    tracing::info!(port, home = %config.home.display(), "serving");
    let handler: devgem_http::Handler = Arc::new(move |req| {
        let api = api.clone();
        Box::pin(async move {
            let started = std::time::Instant::now();
            let (method, path) = (req.method().clone(), req.uri().path().to_string());
            let res = api.handle(req).await;
            tracing::info!(
                method = %method,
                path = %path,
                status = res.status().as_u16(),
                latency_ms = started.elapsed().as_millis() as u64,
                "request"
            );
            res
        })
    });
    devgem_http::serve(
        listener,
        handler,
        devgem_http::shutdown_signal(),
        Duration::from_secs(8),
    )
    .await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
