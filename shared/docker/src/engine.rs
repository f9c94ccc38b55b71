//! The connection to the Docker engine: `DOCKER_HOST`, and an API version both sides accept.

use bollard::Docker;
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long one API request may take: a build is one request, and may take many minutes.
const REQUEST_TIMEOUT_SECS: u64 = 60 * 60;

/// A lazily opened connection to the engine at `DOCKER_HOST`, shared by the clones of one
/// adapter. The first use negotiates the API version.
#[derive(Clone, Default)]
pub struct Engine {
    host: Option<String>,
    docker: std::sync::Arc<OnceCell<Docker>>,
}

impl Engine {
    /// The engine at `DOCKER_HOST`, or the local socket.
    pub fn from_env() -> Self {
        Self {
            host: std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()),
            docker: Default::default(),
        }
    }

    /// The engine at `host` (`unix:///path` or `tcp://host:port`).
    pub fn at(host: impl Into<String>) -> Self {
        Self {
            host: Some(host.into()),
            docker: Default::default(),
        }
    }

    /// Where the engine is, as the user would set `DOCKER_HOST`.
    pub fn host(&self) -> &str {
        self.host
            .as_deref()
            .unwrap_or("unix:///var/run/docker.sock")
    }

    /// The client, connected and with the API version negotiated.
    pub async fn client(&self) -> Result<&Docker, String> {
        self.docker
            .get_or_try_init(|| async {
                let host = self.host();
                let docker = if let Some(path) = host.strip_prefix("unix://") {
                    Docker::connect_with_unix(
                        path,
                        REQUEST_TIMEOUT_SECS,
                        bollard::API_DEFAULT_VERSION,
                    )
                } else if host.starts_with("tcp://") || host.starts_with("http://") {
                    Docker::connect_with_http(
                        host,
                        REQUEST_TIMEOUT_SECS,
                        bollard::API_DEFAULT_VERSION,
                    )
                } else {
                    return Err(format!(
                        "DOCKER_HOST={host} is not supported: use unix:///path or tcp://host:port"
                    ));
                }
                .map_err(|e| format!("the Docker engine at {host}: {e}"))?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| format!("no Docker engine answers at {host} ({e})"))
            })
            .await
    }

    /// Whether the engine answers a ping within `limit`.
    pub async fn answers(&self, limit: Duration) -> bool {
        let ping = async {
            let docker = self.client().await.ok()?;
            docker.ping().await.ok()
        };
        matches!(tokio::time::timeout(limit, ping).await, Ok(Some(_)))
    }
}

/// Whether a Docker engine answers at `DOCKER_HOST` (or the local socket) within a second.
pub async fn engine_answers() -> bool {
    Engine::from_env().answers(Duration::from_secs(1)).await
}
