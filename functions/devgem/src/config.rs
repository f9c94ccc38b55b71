//! Configuration from the environment (12-factor). Every variable is listed in README.md.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the embedded adapters keep their files (`DEVGEM_HOME`, default `~/.devgem`).
    pub home: PathBuf,
    /// The port `devgem serve` listens on (`PORT`, default 8080; 0 picks a free one).
    pub port: u16,
    /// When set, every /api request needs `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// Sent to GitHub so private repositories can be cloned.
    pub github_token: Option<String>,
    /// Deliver every bus message twice (fault injection for idempotency tests).
    pub deliver_twice: bool,
    /// How long a stage worker's claim lasts without renewal.
    pub lease: Duration,
    /// How long a deployed app may take to listen on its port.
    pub ready_timeout: Duration,
    /// Which function `devgem serve` hosts (`FUNCTION_TARGET`); all of them when unset.
    pub function_target: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn seconds(name: &str, default: u64) -> anyhow::Result<Duration> {
    match var(name) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a whole number of seconds")),
    }
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let home = match var("DEVGEM_HOME") {
            Some(h) => PathBuf::from(h),
            None => match var("HOME") {
                Some(h) => PathBuf::from(h).join(".devgem"),
                None => anyhow::bail!(
                    "neither DEVGEM_HOME nor HOME is set: set DEVGEM_HOME to a folder DevGem may use"
                ),
            },
        };
        let port = match var("PORT") {
            None => 8080,
            Some(p) => p
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("PORT={p:?} is not a port number (0-65535)"))?,
        };
        Ok(Self {
            home,
            port,
            api_token: var("DEVGEM_API_TOKEN"),
            github_token: var("GITHUB_TOKEN"),
            deliver_twice: var("DEVGEM_BUS_DELIVER_TWICE").is_some_and(|v| v == "1" || v == "true"),
            lease: seconds("DEVGEM_LEASE_SECS", 30)?,
            ready_timeout: seconds("DEVGEM_READY_TIMEOUT_SECS", 60)?,
            function_target: var("FUNCTION_TARGET"),
        })
    }
}
