//! `devgem serve`: hosts one function (`FUNCTION_TARGET`) or all of them. Embedded, every stage
//! runs in this process; distributed, stages arrive as Pub/Sub pushes at `/pubsub/{topic}`.

use crate::cli::say;
use crate::config::Config;
use crate::config::FunctionTarget;
use crate::push::PushRoutes;
use crate::wiring;
use anyhow::Context;
use devgem_app::LocalPaths;
use devgem_domain::Stage;
use devgem_gcp::DEAD_LETTER_TOPIC;
use devgem_http::{Request, Response, error, json};
use http::{Method, StatusCode};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// `devgem serve`'s own flags; everything else comes from the environment.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// The address to listen on (overrides DEVGEM_LISTEN), e.g. 0.0.0.0 or 127.0.0.1:9000.
    #[arg(long)]
    pub listen: Option<String>,
    /// Print the configuration this process would run with (secrets masked) and exit.
    #[arg(long)]
    pub print_config: bool,
}

struct App {
    api: Option<devgem_fn_chat::Api>,
    push: Option<PushRoutes>,
    function: FunctionTarget,
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
                &serde_json::json!({"status": "ok", "function": self.function.to_string()}),
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

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.listen {
        Some(listen) => Config::from_lookup(|name| match name {
            "DEVGEM_LISTEN" => Some(listen.clone()),
            other => std::env::var(other).ok(),
        })?,
        None => Config::from_env()?,
    };
    if args.print_config {
        say(config.describe());
        return Ok(ExitCode::SUCCESS);
    }
    config.check_servable()?;
    let planner = wiring::chat_planner(&config)?;
    let target = config.function;
    let wiring = wiring::from_config(&config).await?;
    let services = wiring.services.clone();
    if wiring.local_bus.is_some() {
        let resumed = devgem_app::resume_unfinished(&services.core)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if resumed > 0 {
            tracing::info!(resumed, "resuming unfinished deployments");
        }
    }
    let push = wiring
        .gcp
        .as_ref()
        .filter(|_| wiring.local_bus.is_none())
        .map(|gcp| {
            let mut handlers = wiring.handlers();
            handlers.retain(|topic, _| match Stage::from_topic(topic) {
                Some(stage) => target.runs(stage),
                None => *topic == DEAD_LETTER_TOPIC && target.handles_dead_letters(),
            });
            PushRoutes::new(handlers, gcp.push_auth()).with_build_notifications(
                wiring
                    .build_notifications
                    .clone()
                    .filter(|_| target.runs(Stage::Build)),
            )
        });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: set PORT to a free port (or DEVGEM_LISTEN to an address \
                 of this machine)",
                config.listen
            )
        })?;
    let port = listener.local_addr()?.port();
    // Tests and scripts read this line to find the port when PORT=0.
    let shown = if config.listen.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        config.listen.ip()
    };
    let reachable = std::net::SocketAddr::new(shown, port);
    let api = target.serves_api().then(|| {
        devgem_fn_chat::Api::new(
            services,
            devgem_fn_chat::ApiOptions {
                token: config.api_token.as_ref().map(|t| t.expose().to_string()),
                rate_limit: devgem_fn_chat::auth::rate_limit(config.rate_limit_per_minute),
                local_paths: if config.allow_local_sources {
                    LocalPaths::Allowed
                } else {
                    LocalPaths::Refused
                },
                max_upload_bytes: config.max_upload_bytes,
                monitor_every: Some(config.monitor_every),
                public_url: Some(
                    config
                        .public_url
                        .clone()
                        .unwrap_or_else(|| format!("http://{reachable}")),
                ),
            },
        )
        .with_planner(planner)
        .with_github(devgem_fn_chat::github::Github::new(
            devgem_fn_chat::github::GithubOptions {
                webhook_secret: config
                    .github_webhook_secret
                    .as_ref()
                    .map(|s| s.expose().to_string()),
                token: config
                    .github_token
                    .as_ref()
                    .map(|t| devgem_ports::SecretValue::new(t.expose())),
            },
            Arc::new(devgem_fn_chat::github::RestGithub::new(
                &config.github_api_url,
            )),
        ))
    });
    let api = api.map(|api| match signin(&config, reachable) {
        Some(signin) => api.with_signin(signin),
        None => api,
    });
    let app = Arc::new(App {
        api,
        push,
        function: target,
    });
    say(format_args!("DevGem listening on http://{reachable}"));
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

/// The sign-in providers the configuration names, with the callbacks' base URL.
fn signin(
    config: &Config,
    reachable: std::net::SocketAddr,
) -> Option<devgem_fn_chat::signin::SignIn> {
    let credentials = |c: &crate::config::OAuthClient| devgem_signin::ClientCredentials {
        client_id: c.client_id.clone(),
        client_secret: c.client_secret.expose().to_string(),
    };
    let mut providers: Vec<Arc<dyn devgem_signin::IdentityProvider>> = Vec::new();
    if let Some(c) = &config.github_oauth {
        providers.push(Arc::new(devgem_signin::GithubOAuth::new(
            credentials(c),
            &config.github_url,
            &config.github_api_url,
        )));
    }
    if let Some(c) = &config.google_oauth {
        providers.push(Arc::new(devgem_signin::GoogleOidc::new(
            credentials(c),
            &config.google_accounts_url,
            &config.google_token_url,
        )));
    }
    if providers.is_empty() {
        return None;
    }
    Some(devgem_fn_chat::signin::SignIn {
        providers,
        public_url: config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{reachable}")),
    })
}
