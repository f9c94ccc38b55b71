//! The command line: each subcommand in its own module.

pub mod analyze;
pub mod bootstrap;
pub mod deploy;
pub mod inspect;
pub mod remote;
pub mod serve;

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
