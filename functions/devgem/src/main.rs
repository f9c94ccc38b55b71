//! `devgem`: one binary that hosts any DevGem function (`FUNCTION_TARGET`) or all of them
//! (`devgem serve`), and the command line that deploys, inspects and stops deployments.

mod cli;
mod config;
mod logging;
mod push;
mod render;
mod wiring;

// jemalloc, for memory per open stream: a connection's buffers are mostly pages never written,
// which jemalloc leaves unbacked where glibc's chunk headers touch them (2,000 SSE streams:
// 12.3 KB each instead of 17.6 KB; BENCHMARKS.md, "Progress streams: many watchers").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "devgem",
    version,
    about = "Deploy any Git repository, from a sentence or a push."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deploy a local folder or a git URL and print its URL once it answers.
    Deploy(cli::deploy::DeployArgs),
    /// Serve the HTTP API and run every stage in this process (or one, with FUNCTION_TARGET).
    Serve(cli::serve::ServeArgs),
    /// Show deployments, or one deployment.
    Status {
        id: Option<String>,
        #[command(flatten)]
        remote: cli::Remote,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a deployment's build and app logs.
    Logs {
        id: String,
        #[command(flatten)]
        remote: cli::Remote,
    },
    /// Stop a deployment: abort it if it is running, stop its app if it is live.
    Stop {
        id: String,
        #[command(flatten)]
        remote: cli::Remote,
    },
    /// Serve DevGem's tools to an AI assistant over MCP on stdin/stdout (its `mcpServers`
    /// entry: {"command": "devgem", "args": ["mcp"]}).
    Mcp,
    /// Talk to DevGem in the terminal: on this machine, or with a server (--server).
    Chat(cli::chat::ChatArgs),
    /// Make, list and revoke users' API tokens (in this machine's configured store).
    #[command(subcommand)]
    Token(cli::token::TokenCommand),
    /// Create the Pub/Sub topics and push subscriptions (emulator or Google Cloud).
    Bootstrap(cli::bootstrap::BootstrapArgs),
    #[command(flatten)]
    Analyzer(AnalyzerCommand),
}

/// The analyzer's commands: part of `Command` for `--help`, and parsed on their own first
/// because they are one-shot and latency-sensitive (see `main`).
#[derive(Subcommand)]
enum AnalyzerCommand {
    /// Say what the app in PATH is and how DevGem would build and run it.
    Analyze {
        /// The app's folder.
        path: PathBuf,
        /// Print the analysis as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the Dockerfile DevGem writes for the app in PATH.
    Dockerfile {
        /// The app's folder.
        path: PathBuf,
        /// Write Dockerfile and .dockerignore into PATH instead of printing.
        #[arg(long)]
        write: bool,
    },
}

/// `devgem analyze|dockerfile ...` alone, without building the whole command tree.
#[derive(Parser)]
#[command(name = "devgem")]
struct AnalyzerCli {
    #[command(subcommand)]
    command: AnalyzerCommand,
}

fn run_analyzer(command: AnalyzerCommand) -> ExitCode {
    match command {
        AnalyzerCommand::Analyze { path, json } => finish(cli::analyze::analyze(path, json)),
        AnalyzerCommand::Dockerfile { path, write } => {
            finish(cli::analyze::dockerfile(path, write))
        }
    }
}

fn main() -> ExitCode {
    // The analyzer commands do no I/O beyond reading the folder and print no logs: no logging
    // set-up, no async runtime and only their own arguments, so that a whole `devgem analyze`
    // process costs little more than starting one (BENCHMARKS.md, "Analyzer").
    if matches!(
        std::env::args_os()
            .nth(1)
            .as_deref()
            .and_then(|a| a.to_str()),
        Some("analyze" | "dockerfile")
    ) {
        return run_analyzer(AnalyzerCli::parse().command);
    }
    let cli = Cli::parse();
    let serving = matches!(&cli.command, Command::Serve(args) if !args.print_config);
    logging::init(serving);
    let command = match cli.command {
        Command::Analyzer(command) => return run_analyzer(command),
        other => other,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Deploy(args) => cli::deploy::run(args).await,
            Command::Serve(args) => cli::serve::run(args).await,
            Command::Bootstrap(args) => cli::bootstrap::run(args).await,
            Command::Mcp => cli::mcp::run().await,
            Command::Chat(args) => cli::chat::run(args).await,
            Command::Token(command) => cli::token::run(command).await,
            Command::Status { id, remote, json } => cli::inspect::status(id, remote, json).await,
            Command::Logs { id, remote } => cli::inspect::logs(id, remote).await,
            Command::Stop { id, remote } => cli::inspect::stop(id, remote).await,
            Command::Analyzer(_) => {
                unreachable!("the analyzer commands return before the runtime starts")
            }
        }
    });
    // Background tasks (stream readers, tickers) must not keep a finished command alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    finish(result)
}

/// The exit code of a command; an error is printed as one line.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
