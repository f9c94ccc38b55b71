//! `devgem mcp`: DevGem as an MCP server over stdio, the way desktop assistants (Claude Code,
//! Gemini CLI, Cursor, VS Code) launch one. It runs embedded, like `devgem deploy`: every stage
//! runs in this process, on this machine's store. Stdout carries only the protocol; logs go to
//! stderr.

use crate::config::Config;
use crate::wiring;
use devgem_app::LocalPaths;
use devgem_fn_chat::mcp::{McpOptions, McpServer};
use std::process::ExitCode;

pub async fn run() -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    config.check_adapters()?;
    let wiring = wiring::from_config(&config).await?;
    let server = McpServer::new(
        wiring.services.clone(),
        McpOptions {
            owner: devgem_fn_chat::LOCAL_OWNER.to_string(),
            // The assistant runs on the user's machine: its folders are the user's to deploy.
            local_paths: LocalPaths::Allowed,
            // This process takes no webhooks; a `devgem serve` on the same store would.
            webhook_url: config.webhook_url(),
        },
    );
    tracing::info!(home = %config.home.display(), "serving MCP on stdio");
    server
        .serve_stdio()
        .await
        .map_err(|e| anyhow::anyhow!("MCP over stdio: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
