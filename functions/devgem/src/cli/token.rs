//! `devgem token create|list|revoke`: users' API tokens, in this machine's configured store
//! (the SQLite file under DEVGEM_HOME, or Firestore with DEVGEM_STORE=firestore). Only the
//! token's SHA-256 is stored; the plaintext is printed once, alone on the last line.

use crate::cli::say;
use crate::config::Config;
use crate::wiring;
use devgem_domain::{ApiToken, TokenId, UserId};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum TokenCommand {
    /// Make a new token for USER and print it (once: only its hash is kept).
    Create {
        /// The user the token acts for (a-z, 0-9, '.', '_', '-', '@').
        user: String,
    },
    /// Show every token: id, user, when it was made and last used (never the token).
    List,
    /// Revoke a token by its id (from `devgem token list`): it no longer authenticates anyone.
    Revoke {
        /// The token's id, t-...
        token_id: String,
    },
}

pub async fn run(command: TokenCommand) -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    let services = wiring::from_config(&config).await?.services;
    let store = &services.core.store;
    match command {
        TokenCommand::Create { user } => {
            let user = UserId::parse(&user)?;
            let now = services.core.clock.now();
            let id = TokenId::from_uuid(uuid::Uuid::now_v7());
            let (token, plain) = ApiToken::issue(id, user, devgem_app::clock::random_bytes(), now);
            store.put_token(&token).await?;
            say(format_args!(
                "Made token {} for {}. It is shown once; send it as Authorization: Bearer <token>:",
                token.id, token.user
            ));
            say(plain.expose());
        }
        TokenCommand::List => {
            let tokens = store.list_tokens().await?;
            if tokens.is_empty() {
                say("no tokens: `devgem token create USER` makes one");
                return Ok(ExitCode::SUCCESS);
            }
            say(format_args!(
                "{:<34}  {:<20}  {:<20}  LAST USED",
                "ID", "USER", "CREATED"
            ));
            let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
            for t in tokens {
                say(format_args!(
                    "{:<34}  {:<20}  {:<20}  {}",
                    t.id,
                    t.user,
                    when(t.created_at),
                    t.last_used_at.map_or_else(|| "never".to_string(), when)
                ));
            }
        }
        TokenCommand::Revoke { token_id } => {
            let id = TokenId::parse(&token_id)?;
            if !store.revoke_token(&id).await? {
                anyhow::bail!("token {id} does not exist: `devgem token list` shows the tokens");
            }
            say(format_args!("revoked {id}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
