//! The command line: each subcommand in its own module.

pub mod analyze;
pub mod bootstrap;
pub mod chat;
pub mod deploy;
pub mod inspect;
pub mod mcp;
pub mod remote;
pub mod serve;
pub mod token;

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

/// Writes a line to stdout. A closed pipe (`devgem status | head`) ends the command quietly
/// instead of panicking, as Unix tools do.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}
