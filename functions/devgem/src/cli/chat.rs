//! `devgem chat`: talk to DevGem in the terminal, on this machine (the embedded wiring, as
//! `devgem deploy`) or with a server (`--server`, `POST /chat`). Each reply is printed; a
//! deployment the message started is followed to its end with the same progress display as
//! `devgem deploy` (bars on a terminal, plain lines when piped). Ends on end of input or `exit`.
//!
//! On a terminal the input line is edited with rustyline (arrows, Ctrl-R, history kept in
//! `DEVGEM_HOME/chat_history`, readable by its owner only and without the values of variables
//! typed); piped input is read line by line.

use super::Remote;
use super::remote::Client;
use crate::cli::say;
use crate::config::Config;
use crate::render::Renderer;
use crate::wiring::{self, Wiring};
use anyhow::Context;
use devgem_app::LocalPaths;
use devgem_domain::{Deployment, DeploymentId, SessionId};
use devgem_fn_chat::conversation::{self, Planner, Silent, Speaker};
use futures::StreamExt;
use serde::Deserialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::AsyncBufReadExt;

#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub remote: Remote,
}

/// What the terminal needs of an answer.
struct Reply {
    text: String,
    /// Deployments the message started, to follow.
    started: Vec<DeploymentId>,
}

/// Where the messages go.
enum Backend {
    Here {
        wiring: Box<Wiring>,
        planner: Arc<dyn Planner>,
        speaker: Speaker,
        session: Option<SessionId>,
    },
    Server {
        client: Client,
        session: Option<String>,
    },
}

/// `POST /chat`'s answer, the fields the terminal reads.
#[derive(Deserialize)]
struct RemoteAnswer {
    session_id: String,
    reply: String,
    #[serde(default)]
    deployment_id: Option<String>,
    #[serde(default)]
    actions: Vec<RemoteAction>,
}

#[derive(Deserialize)]
struct RemoteAction {
    tool: String,
    ok: bool,
}

/// The tools whose success starts a run worth following.
const STARTS_WORK: [&str; 5] = [
    "deploy_repository",
    "redeploy",
    "set_env_vars",
    "unset_env_vars",
    "apply_fix",
];

/// Colours on a terminal, none when piped.
struct Style {
    tty: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.tty {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

pub async fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let mut backend = match &args.remote.server {
        Some(server) => Backend::Server {
            client: Client::new(server, args.remote.token.clone())?,
            session: None,
        },
        None => {
            let config = Config::from_env()?;
            config.check_adapters()?;
            let planner = wiring::chat_planner(&config)?;
            let wiring = wiring::from_config(&config).await?;
            Backend::Here {
                wiring: Box::new(wiring),
                planner,
                speaker: Speaker {
                    owner: devgem_fn_chat::LOCAL_OWNER.to_string(),
                    // This machine's own folders are the user's to deploy.
                    local_paths: LocalPaths::Allowed,
                    usage: Default::default(),
                    webhook_url: config.webhook_url(),
                },
                session: None,
            }
        }
    };
    let style = Style {
        tty: std::io::stdout().is_terminal() && std::io::stdin().is_terminal(),
    };
    if style.tty {
        say(style.paint(
            "2",
            "Talk to DevGem: \"deploy github.com/owner/repo\", \"is it up?\", \"show me the logs\". \
             Ctrl-D or \"exit\" leaves.",
        ));
    }
    let mut input = if style.tty {
        Input::editor(history_file(|name| std::env::var(name).ok()), &style)
    } else {
        Input::piped()
    };
    loop {
        let Some(line) = input.next_line().await? else {
            break;
        };
        let message = line.trim();
        if message.is_empty() {
            continue;
        }
        if matches!(message, "exit" | "quit") {
            break;
        }
        let reply = match backend.send(message).await {
            Ok(reply) => reply,
            Err(e) => {
                eprintln!("{} {e:#}", style.paint("31", "error:"));
                continue;
            }
        };
        if !reply.text.is_empty() {
            say(format_args!(
                "{} {}",
                style.paint("36", "devgem:"),
                reply.text
            ));
        }
        for id in &reply.started {
            match backend.follow(id).await {
                Ok(d) => say(outcome_line(&d, &style)),
                Err(e) => eprintln!("{} {e:#}", style.paint("31", "error:")),
            }
        }
    }
    if let Backend::Here { wiring, .. } = &backend
        && let Some(bus) = &wiring.local_bus
    {
        bus.drain().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the input comes from: a line editor on a terminal, plain lines when piped.
enum Input {
    Piped(tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>),
    Editor {
        /// `None` while a blocking read holds it.
        editor: Option<Box<rustyline::DefaultEditor>>,
        history: Option<PathBuf>,
        prompt: String,
    },
}

impl Input {
    fn piped() -> Self {
        Input::Piped(tokio::io::BufReader::new(tokio::io::stdin()).lines())
    }

    /// A line editor with the history in `history`; plain lines when the terminal refuses
    /// one.
    fn editor(history: Option<PathBuf>, style: &Style) -> Self {
        let Ok(mut editor) = rustyline::DefaultEditor::new() else {
            return Input::piped();
        };
        if let Some(path) = &history
            && private_file(path).is_ok()
        {
            // A missing or unreadable history starts empty.
            let _ = editor.load_history(path);
        }
        Input::Editor {
            editor: Some(Box::new(editor)),
            history,
            prompt: format!("{} ", style.paint("1;32", ">")),
        }
    }

    /// The next line; `None` at the end of the input (Ctrl-D). Ctrl-C drops the line being
    /// typed, as in a shell.
    async fn next_line(&mut self) -> anyhow::Result<Option<String>> {
        match self {
            Input::Piped(lines) => lines.next_line().await.context("cannot read the input"),
            Input::Editor {
                editor,
                history,
                prompt,
            } => loop {
                let mut taken = editor.take().context("the line editor is gone")?;
                let shown = prompt.clone();
                let (taken, read) = tokio::task::spawn_blocking(move || {
                    let read = taken.readline(&shown);
                    (taken, read)
                })
                .await?;
                let taken = editor.insert(taken);
                match read {
                    Ok(line) => {
                        // History is a convenience: a failed write costs nothing else. It
                        // keeps the line without the values of variables typed in it, so a
                        // secret never lands in a file (or in Ctrl-R).
                        if !line.trim().is_empty()
                            && taken.add_history_entry(devgem_llm::redact_message(&line))?
                            && let Some(path) = history
                        {
                            let _ = taken.append_history(path);
                        }
                        return Ok(Some(line));
                    }
                    Err(rustyline::error::ReadlineError::Interrupted) => continue,
                    Err(rustyline::error::ReadlineError::Eof) => return Ok(None),
                    Err(e) => return Err(e).context("cannot read the input"),
                }
            },
        }
    }
}

/// `DEVGEM_HOME/chat_history` (`~/.devgem/chat_history` without it), from `get` (the
/// environment); `None` when neither is set.
fn history_file(get: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let home = match get("DEVGEM_HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from(get("HOME").filter(|h| !h.is_empty())?).join(".devgem"),
    };
    Some(home.join("chat_history"))
}

/// Creates `path` (and its folder) readable by its owner only, since a message may hold a
/// value the user set; an existing file is made so too.
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// `deployment d-… live http://…`, as `devgem deploy` ends.
fn outcome_line(d: &Deployment, style: &Style) -> String {
    let status = d.status.to_string();
    let status = match d.status {
        devgem_domain::Status::Live => style.paint("1;32", &status),
        devgem_domain::Status::Failed => style.paint("1;31", &status),
        _ => style.paint("33", &status),
    };
    let mut line = format!(
        "deployment {} {status} {}",
        d.id,
        d.url.as_deref().unwrap_or("-")
    );
    if let Some(error) = &d.error {
        let first = error.reason.lines().next().unwrap_or_default();
        line.push_str(&format!("\n{} failed: {first}", error.step.title()));
    }
    line
}

impl Backend {
    async fn send(&mut self, message: &str) -> anyhow::Result<Reply> {
        match self {
            Backend::Here {
                wiring,
                planner,
                speaker,
                session,
            } => {
                let services = &wiring.services;
                let stored = match session.as_ref() {
                    Some(id) => Some(
                        conversation::load_session(services, speaker, id)
                            .await
                            .map_err(|e| anyhow::anyhow!("{e}"))?,
                    ),
                    None => None,
                };
                let answer = conversation::converse(
                    services,
                    planner.as_ref(),
                    speaker,
                    stored,
                    message,
                    false,
                    &Silent,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                *session = Some(answer.session_id.clone());
                Ok(Reply {
                    text: answer.reply,
                    started: answer.started,
                })
            }
            Backend::Server { client, session } => {
                let mut body = serde_json::json!({"message": message});
                if let Some(id) = session.as_ref() {
                    body["session_id"] = serde_json::Value::from(id.as_str());
                }
                let answer: RemoteAnswer = client
                    .call(reqwest::Method::POST, "/chat", Some(body))
                    .await?;
                *session = Some(answer.session_id.clone());
                let started = answer
                    .actions
                    .iter()
                    .any(|a| a.ok && STARTS_WORK.contains(&a.tool.as_str()));
                let started = match (started, &answer.deployment_id) {
                    (true, Some(id)) => vec![
                        DeploymentId::parse(id)
                            .map_err(|e| anyhow::anyhow!("the server named a bad id: {e}"))?,
                    ],
                    _ => Vec::new(),
                };
                Ok(Reply {
                    text: answer.reply,
                    started,
                })
            }
        }
    }

    /// Shows the deployment's progress until it ends; returns it as it ended.
    async fn follow(&self, id: &DeploymentId) -> anyhow::Result<Deployment> {
        let mut renderer = Renderer::new(false);
        let deployment = match self {
            Backend::Here { wiring, .. } => {
                let core = &wiring.services.core;
                let mut events = devgem_app::follow(core, id, 0)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                while let Some(event) = events.next().await {
                    let event = event.map_err(|e| anyhow::anyhow!("lost the progress: {e}"))?;
                    renderer.show(&event);
                }
                core.store
                    .get(id)
                    .await?
                    .context("the deployment disappeared from the store")?
            }
            Backend::Server { client, .. } => {
                client
                    .follow(id.as_str(), |event| renderer.show(event))
                    .await?;
                client
                    .call(
                        reqwest::Method::GET,
                        &format!("/api/deployments/{id}"),
                        None,
                    )
                    .await?
            }
        };
        renderer.finish();
        Ok(deployment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_history_lives_in_devgem_home_else_in_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            history_file(env(&[("DEVGEM_HOME", "/srv/dg"), ("HOME", "/home/u")])),
            Some(PathBuf::from("/srv/dg/chat_history"))
        );
        assert_eq!(
            history_file(env(&[("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.devgem/chat_history"))
        );
        assert_eq!(
            history_file(env(&[("DEVGEM_HOME", ""), ("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.devgem/chat_history"))
        );
        assert_eq!(history_file(env(&[])), None);
    }

    #[test]
    fn the_history_file_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home").join("chat_history");
        private_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&path, "deploy .\n").unwrap();
        private_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "deploy .\n");
    }

    /// The history rustyline writes is the one it reads back on the next start.
    #[test]
    fn an_appended_history_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat_history");
        private_file(&path).unwrap();
        let mut first = rustyline::DefaultEditor::new().unwrap();
        first.add_history_entry("deploy .").unwrap();
        first.append_history(&path).unwrap();
        first.add_history_entry("is it up?").unwrap();
        first.append_history(&path).unwrap();
        let mut second = rustyline::DefaultEditor::new().unwrap();
        second.load_history(&path).unwrap();
        let lines: Vec<&String> = second.history().iter().collect();
        assert_eq!(lines, ["deploy .", "is it up?"]);
    }
}
