//! `devgem serve`: hosts one function (`FUNCTION_TARGET`) or all of them. Embedded, every stage
//! runs in this process; distributed, stages arrive as Pub/Sub pushes at `/pubsub/{topic}`.

use crate::cli::say;
use crate::config::Config;
use crate::push::PushRoutes;
use crate::wiring;
use anyhow::{Context, bail};
use devgem_gcp::DEAD_LETTER_TOPIC;
use devgem_http::{Request, Response, error, json};
use http::{Method, StatusCode};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The functions one process can host, and the topics each consumes.
const FUNCTIONS: &[(&str, &[&str])] = &[
    ("chat", &[DEAD_LETTER_TOPIC]),
    ("analyze", &["analyze"]),
    ("build-trigger", &["build"]),
    ("deploy", &["deploy"]),
];

struct App {
    api: Option<devgem_fn_chat::Api>,
    push: Option<PushRoutes>,
    function: String,
}

impl App {
    async fn handle(&self, req: Request) -> Response {
        let path = req.uri().path().to_string();
        if let (Some(push), Some(topic)) = (&self.push, path.strip_prefix("/pubsub/"))
            && req.method() == Method::POST
            && push.serves(topic)
        {
            let topic = topic.to_string();
            return push.handle(&topic, req).await;
        }
        match &self.api {
            Some(api) => api.handle(req).await,
            None if path == "/health" => json(
                StatusCode::OK,
                &serde_json::json!({"status": "ok", "function": self.function}),
            ),
            None => error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("the {} function does not serve {path}", self.function),
                None,
            ),
        }
    }
}

pub async fn run() -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    let target = config
        .function_target
        .clone()
        .unwrap_or_else(|| "all".into());
    let known: Vec<&str> = FUNCTIONS.iter().map(|(name, _)| *name).collect();
    if target != "all" && !known.contains(&target.as_str()) {
        bail!(
            "FUNCTION_TARGET={target} is not a DevGem function: use one of {}, or all",
            known.join(", ")
        );
    }
    let wiring = wiring::from_config(&config).await?;
    let services = wiring.services.clone();
    if wiring.local_bus.is_some() {
        if target != "all" {
            bail!(
                "FUNCTION_TARGET={target} needs the distributed mode: set GOOGLE_CLOUD_PROJECT \
                 (and the emulator hosts), or unset FUNCTION_TARGET"
            );
        }
        let resumed = devgem_app::resume_unfinished(&services)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if resumed > 0 {
            tracing::info!(resumed, "resuming unfinished deployments");
        }
    }
    let push = wiring.gcp.as_ref().map(|gcp| {
        let mut handlers = wiring::handlers(&services);
        let wanted: Vec<&str> = FUNCTIONS
            .iter()
            .filter(|(name, _)| target == "all" || *name == target)
            .flat_map(|(_, topics)| topics.iter().copied())
            .collect();
        handlers.retain(|topic, _| wanted.contains(topic));
        PushRoutes::new(handlers, gcp.push_auth())
    });
    let api = (target == "all" || target == "chat")
        .then(|| devgem_fn_chat::Api::new(services, config.api_token.clone()));
    let app = Arc::new(App {
        api,
        push,
        function: target.clone(),
    });
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
    say(format_args!("DevGem listening on http://127.0.0.1:{port}"));
    tracing::info!(port, function = %target, home = %config.home.display(), "serving");
    let handler: devgem_http::Handler = Arc::new(move |req| {
        let app = app.clone();
        Box::pin(async move {
            let started = std::time::Instant::now();
            let (method, path) = (req.method().clone(), req.uri().path().to_string());
            let res = app.handle(req).await;
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
