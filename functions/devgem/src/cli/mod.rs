//! The command line: each subcommand in its own module.

pub mod analyze;
pub mod deploy;
pub mod inspect;
pub mod remote;
pub mod serve;

use tracing_subscriber::EnvFilter;

/// Which server to talk to; without one, commands work on this machine's embedded store.
#[derive(clap::Args, Debug, Clone)]
pub struct Remote {
    /// A running DevGem server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "DEVGEM_SERVER")]
    pub server: Option<String>,
    /// The server's API token.
    #[arg(long, env = "DEVGEM_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Logs go to stderr, so stdout stays clean for results: JSON lines on Cloud Run (or with
/// DEVGEM_LOG_FORMAT=json) in the fields Cloud Logging reads, readable text elsewhere.
pub fn init_tracing(serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("K_SERVICE").is_ok()
        || std::env::var("DEVGEM_LOG_FORMAT").is_ok_and(|f| f == "json");
    if json {
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .compact()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
}
