//! `WS /ws/chat`: the chat over a WebSocket. The server sends `session` first (id, history,
//! the state of its deployments), then `message`, `ai_thought` (each tool step),
//! `deployment_started`, `analysis` (once a deployment it follows is analysed),
//! `monitoring_alert` (a live deployment it follows stopped answering its periodic probe),
//! `deployment_progress`, `deployment_update`, `deployment_complete` and
//! `pong`; it sends `ping` to a client that has been quiet. Progress comes from the store's
//! change stream, so any instance streams any deployment.

use crate::conversation::{self, Action, Observer, Planner, Speaker};
use devgem_app::{AppError, Services};
use devgem_domain::{Deployment, DeploymentId, EventKind, ProgressEvent, Session, Status, Step};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// How often a live deployment a socket follows is probed, unless the server is told otherwise.
pub const DEFAULT_MONITOR_EVERY: Duration = Duration::from_secs(30);

/// How long a client may stay quiet before the server pings it.
pub const IDLE_PING: Duration = Duration::from_secs(25);

/// The socket's buffers. tungstenite's defaults (128 KiB to read into, zero-filled, and 128 KiB
/// of writes gathered before a flush) would make every open socket cost over 128 KiB; a chat
/// socket reads short messages (a longer one is read in several reads) and sends each message
/// as it comes, so 1 KiB holds it (BENCHMARKS.md, "Progress streams: many watchers").
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(1024 * 1024))
        .max_frame_size(Some(1024 * 1024))
}

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientMessage {
    Message {
        text: String,
        #[serde(default)]
        dry_run: bool,
    },
    Ping,
    Pong,
}

/// Everything one socket needs, owned (it outlives the request).
pub struct Socket {
    pub services: Services,
    pub planner: Arc<dyn Planner>,
    pub speaker: Speaker,
    pub session: Session,
    /// How often a live deployment this socket follows is probed (`monitoring_alert`).
    pub monitor_every: Duration,
}

/// Sends to the socket's writer; a closed socket drops what is sent. Messages wait as text, a
/// fraction of their `Value` tree's size, since a burst of events to thousands of sockets
/// queues one message per socket at once.
#[derive(Clone)]
struct Outbox(mpsc::UnboundedSender<String>);

impl Outbox {
    fn send(&self, value: Value) {
        let _ = self.0.send(value.to_string());
    }
}

impl Observer for Outbox {
    fn step(&self, action: &Action) {
        self.send(json!({"type": "ai_thought", "action": action, "text": thought(action)}));
    }

    /// The model's own steps (which model answered, a tier that failed) are shown too.
    fn thought(&self, text: &str) {
        self.send(json!({"type": "ai_thought", "text": text}));
    }
}

fn thought(action: &Action) -> String {
    match (&action.text, action.ok) {
        (Some(text), _) => format!("{} {}: {text}", action.tool, action.args),
        (None, true) => format!("would call {} {}", action.tool, action.args),
        (None, false) => format!("{} needs a deployment", action.tool),
    }
}

/// Runs the socket until the client goes away.
pub async fn run(socket: Socket, upgraded: hyper::upgrade::Upgraded) {
    let ws = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(socket_config()),
    )
    .await;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let outbox = Outbox(tx);
    let Socket {
        services,
        planner,
        speaker,
        session,
        monitor_every,
    } = socket;
    let mut following: HashSet<DeploymentId> = HashSet::new();

    let mut states = Vec::new();
    for id in &session.deployments {
        if let Ok(Some(d)) = services.core.store.get(id).await {
            states.push(d);
        }
    }
    outbox.send(json!({
        "type": "session",
        "session_id": session.id,
        "history": session.history,
        "current": session.current,
        "deployments": states,
    }));
    for d in &states {
        if !d.status.is_terminal() {
            follow(
                &services,
                &outbox,
                &mut following,
                d.id.clone(),
                monitor_every,
            );
        }
    }
    // The socket may stay open for hours: keep none of the documents it started with.
    drop(states);
    let mut session_id = Some(session.id.clone());
    drop(session);

    let mut idle = tokio::time::interval_at(tokio::time::Instant::now() + IDLE_PING, IDLE_PING);
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(out) = out else { break };
                if sink.send(Message::text(out)).await.is_err() {
                    break;
                }
            }
            incoming = stream.next() => {
                idle.reset();
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    // Protocol pings are answered by the library; binary is not ours.
                    Some(Ok(_)) => continue,
                };
                match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Ping) => outbox.send(json!({"type": "pong"})),
                    Ok(ClientMessage::Pong) => {}
                    Ok(ClientMessage::Message { text, dry_run }) => {
                        let session = match &session_id {
                            Some(id) => conversation::load_session(&services, &speaker, id).await.ok(),
                            None => None,
                        };
                        // Boxed: a turn's future is large (every tool's), and a socket that only
                        // watches should not carry its space while it waits.
                        let turn = Box::pin(conversation::converse(&services, planner.as_ref(), &speaker, session, &text, dry_run, &outbox));
                        match turn.await {
                            Ok(answer) => {
                                session_id = Some(answer.session_id.clone());
                                for id in &answer.started {
                                    if let Ok(Some(d)) = services.core.store.get(id).await {
                                        outbox.send(json!({"type": "deployment_started", "deployment_id": id, "deployment": d}));
                                    }
                                    follow(&services, &outbox, &mut following, id.clone(), monitor_every);
                                }
                                outbox.send(json!({
                                    "type": "message",
                                    "role": "assistant",
                                    "text": answer.reply,
                                    "actions": answer.actions,
                                    "deployment_id": answer.deployment_id,
                                }));
                            }
                            Err(e) => outbox.send(error_message(e)),
                        }
                    }
                    Err(e) => outbox.send(json!({
                        "type": "error",
                        "message": format!("not a message this socket understands: {e}"),
                        "hint": "send {\"type\": \"message\", \"text\": \"...\"} or {\"type\": \"ping\"}",
                    })),
                }
            }
            _ = idle.tick() => {
                outbox.send(json!({"type": "ping"}));
            }
        }
    }
}

fn error_message(e: AppError) -> Value {
    let message = match &e {
        AppError::Internal(m) => {
            tracing::error!(error = %m, "chat turn failed");
            "something went wrong on our side".to_string()
        }
        other => other.to_string(),
    };
    json!({"type": "error", "message": message})
}

/// Streams `id`'s events to the socket, once per deployment per socket.
fn follow(
    services: &Services,
    outbox: &Outbox,
    following: &mut HashSet<DeploymentId>,
    id: DeploymentId,
    monitor_every: Duration,
) {
    if !following.insert(id.clone()) {
        return;
    }
    let (services, outbox) = (services.clone(), outbox.clone());
    tokio::spawn(async move {
        let mut events = match devgem_app::follow(&services.core, &id, 0).await {
            Ok(events) => events,
            Err(e) => return outbox.send(error_message(e)),
        };
        // The security scan's findings, gathered until the analysis is sent.
        let mut findings: Vec<String> = Vec::new();
        let mut analysed = false;
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            if outbox.0.is_closed() {
                return;
            }
            let last = event.is_final();
            if event.kind == EventKind::Warning && event.step == Some(Step::SecurityScan) {
                findings.push(event.message.clone());
            }
            // Analysis is done once the deployment moves past it (building, or a later state).
            let past_analysis = event.status.is_some_and(|s| {
                !matches!(
                    s,
                    Status::Queued | Status::Analyzing | Status::Failed | Status::Aborted
                )
            });
            if past_analysis && !analysed {
                analysed = true;
                // Boxed, as the monitor below: a task's size is its largest await, and
                // thousands of these wait on `events.next()` alone.
                let analysed_message =
                    Box::pin(analysis(&services, &id, std::mem::take(&mut findings)));
                if let Some(message) = analysed_message.await {
                    outbox.send(message);
                }
            }
            outbox.send(event_message(&id, &event));
            if last {
                break;
            }
        }
        let Ok(Some(d)) = services.core.store.get(&id).await else {
            return;
        };
        outbox.send(complete(&d));
        if let (Status::Live, Some(url)) = (d.status, d.url) {
            Box::pin(monitor(&services, &outbox, &id, &url, monitor_every)).await;
        }
    });
}

/// Probes a live deployment every `every` while the socket is open and the deployment live;
/// a probe that fails sends `monitoring_alert` with the app's last log lines and a diagnosis,
/// once per outage (the next alert waits for a probe that succeeds).
async fn monitor(
    services: &Services,
    outbox: &Outbox,
    id: &DeploymentId,
    url: &str,
    every: Duration,
) {
    // One client for every socket's probes (a client holds a pool and TLS roots).
    static CLIENT: std::sync::OnceLock<Option<reqwest::Client>> = std::sync::OnceLock::new();
    let Some(client) = CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(PROBE_TIMEOUT)
                .build()
                .ok()
        })
        .as_ref()
    else {
        return tracing::warn!("no HTTP client for monitoring");
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut alerted = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = outbox.0.closed() => return,
        }
        let region = match services.core.store.get(id).await {
            Ok(Some(d)) if d.status == Status::Live && d.url.as_deref() == Some(url) => d.region,
            // Stopped, redeployed elsewhere or gone: nothing to watch here any more.
            Ok(_) => return,
            Err(_) => continue,
        };
        let failure = match client.get(url).send().await {
            Ok(res) if res.status().is_server_error() => {
                Some(format!("the app answered {} at {url}", res.status()))
            }
            Ok(_) => None,
            Err(e) => Some(format!(
                "the app did not answer at {url}: {}",
                probe_error(&e)
            )),
        };
        match failure {
            None => alerted = false,
            Some(_) if alerted => {}
            Some(reason) => {
                alerted = true;
                outbox.send(alert(services, id, region.as_ref(), url, &reason).await);
            }
        }
    }
}

/// How long one monitoring probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The log lines a `monitoring_alert` carries.
const ALERT_LOG_LINES: usize = 20;

fn probe_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {}s", PROBE_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "the connection was refused".to_string()
    } else {
        e.to_string()
    }
}

async fn alert(
    services: &Services,
    id: &DeploymentId,
    region: Option<&devgem_domain::Region>,
    url: &str,
    reason: &str,
) -> Value {
    let query = devgem_ports::LogQuery {
        limit: ALERT_LOG_LINES,
        page_token: None,
    };
    let lines: Vec<String> = match services.runtime.logs(id, region, &query).await {
        Ok(page) => page.lines.into_iter().map(|l| l.text).collect(),
        Err(_) => Vec::new(),
    };
    let plan = match services.objects.get(&devgem_app::keys::plan(id)).await {
        Ok(Some(bytes)) => serde_json::from_slice::<devgem_plan::BuildPlan>(&bytes).ok(),
        _ => None,
    };
    let mut input = devgem_diagnose::FailureInput::new(Step::Deploy, reason).with_log(&lines);
    if let Some(plan) = &plan {
        input = input.with_plan(plan);
    }
    let diagnosis = devgem_diagnose::diagnose(&input);
    json!({
        "type": "monitoring_alert",
        "deployment_id": id,
        "url": url,
        "reason": reason,
        "log_lines": lines,
        "diagnosis": diagnosis,
    })
}

/// The `analysis` message: what the analysis found (from the stored plan) and the scan's
/// findings; none when the plan is not readable.
async fn analysis(services: &Services, id: &DeploymentId, findings: Vec<String>) -> Option<Value> {
    let bytes = services
        .objects
        .get(&devgem_app::keys::plan(id))
        .await
        .ok()??;
    let plan: devgem_plan::BuildPlan = serde_json::from_slice(&bytes).ok()?;
    Some(json!({
        "type": "analysis",
        "deployment_id": id,
        "language": plan.language,
        "framework": plan.framework,
        "port": plan.deploy_port,
        "start_command": plan.start_command,
        "findings": findings,
    }))
}

fn event_message(id: &DeploymentId, event: &ProgressEvent) -> Value {
    let kind = if event.kind == EventKind::Status {
        "deployment_update"
    } else {
        "deployment_progress"
    };
    json!({
        "type": kind,
        "deployment_id": id,
        "status": event.status,
        "event": event,
    })
}

fn complete(d: &Deployment) -> Value {
    json!({
        "type": "deployment_complete",
        "deployment_id": d.id,
        "status": d.status,
        "url": d.url.as_ref().filter(|_| d.status == devgem_domain::Status::Live),
        "error": d.error,
        "deployment": d,
    })
}
