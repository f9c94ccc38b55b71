//! One chat turn: the message is understood (by a [`Planner`]: the offline engine, or a
//! language model through [`crate::model_planner::ModelPlanner`]), each tool call runs through
//! the shared executor, the session keeps the redacted turn and the deployment the conversation
//! is about.

use async_trait::async_trait;
use devgem_app::{AppError, LocalPaths, Services, ToolContext, ToolError, ToolResult, run_tool};
use devgem_domain::{ChatRole, ChatTurn, DeploymentId, Session, SessionId};
use devgem_ports::StoreError;
use devgem_tools::{Context, ToolCall, ToolName, Understanding};
use serde::Serialize;
use serde_json::Value;

/// The most rounds of tool calls one message may take before the reply is given.
pub const MAX_ROUNDS: usize = 4;

/// Turns messages into tool calls or replies.
pub trait Planner: Send + Sync {
    /// The planning of one message, given the session's stored (already redacted) history.
    fn begin(&self, message: &str, history: &[ChatTurn]) -> Box<dyn Planning>;
}

/// The planning of one message, asked once per round. `done` holds every call made for this
/// message so far with its result; a planning with nothing more to call answers `Reply`.
#[async_trait]
pub trait Planning: Send {
    async fn next(&mut self, context: &Context, done: &[Step]) -> Plan;
}

/// One round's decision, and who took it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub understanding: Understanding,
    /// The model that answered (`offline` for the engine).
    pub model: Option<String>,
    /// Steps worth showing the user (a model tier that failed, the model that answered).
    pub thoughts: Vec<String>,
}

/// The offline intent engine: one round, no network.
pub struct Offline;

impl Planner for Offline {
    fn begin(&self, message: &str, _history: &[ChatTurn]) -> Box<dyn Planning> {
        Box::new(OfflinePlanning(message.to_string()))
    }
}

struct OfflinePlanning(String);

#[async_trait]
impl Planning for OfflinePlanning {
    async fn next(&mut self, context: &Context, done: &[Step]) -> Plan {
        let understanding = if done.is_empty() {
            devgem_tools::understand(&self.0, context)
        } else {
            Understanding::Reply(String::new())
        };
        Plan {
            understanding,
            model: Some("offline".into()),
            thoughts: Vec::new(),
        }
    }
}

/// One call made for a message, and what it came to.
#[derive(Debug, Clone)]
pub struct Step {
    pub call: ToolCall,
    pub result: Option<ToolResult>,
}

/// An action as clients see it: arguments redacted, the structured result or the error.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub tool: ToolName,
    pub args: Value,
    pub ok: bool,
    /// The sentence the tool answered with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ToolError>,
}

/// What a message came to.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub session_id: SessionId,
    pub reply: String,
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<DeploymentId>,
    /// The model that gave the reply (`offline`, `Gemini API gemini-2.5-flash`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Deployments this message started (the sockets follow them).
    #[serde(skip)]
    pub started: Vec<DeploymentId>,
}

/// What a turn reports while it runs (the WebSocket shows each step as it happens).
pub trait Observer: Send + Sync {
    fn step(&self, action: &Action);

    /// A planning step that is not a tool call (a model tier failed, a model answered).
    fn thought(&self, _text: &str) {}
}

/// Reports nothing (`POST /chat` answers once, at the end).
pub struct Silent;

impl Observer for Silent {
    fn step(&self, _action: &Action) {}
}

/// Who talks, and what they may do.
#[derive(Debug, Clone)]
pub struct Speaker {
    pub owner: String,
    pub local_paths: LocalPaths,
    /// Where the speaker's chat messages are counted (`GET /stats`).
    pub usage: crate::auth::UsageBook,
    /// Where GitHub sends this server its pushes, which a new link's reply names.
    pub webhook_url: Option<String>,
}

/// A session of `speaker` by id, or `NotFound` (another owner's is not found either).
pub async fn load_session(
    services: &Services,
    speaker: &Speaker,
    id: &SessionId,
) -> Result<Session, AppError> {
    match services.core.store.get_session(id).await? {
        Some(s) if s.owner == speaker.owner => Ok(s),
        _ => Err(AppError::BadRequest {
            message: format!("session {id} does not exist"),
            hint: "leave session_id out to start a new session".into(),
        }),
    }
}

/// A new, stored session.
pub async fn new_session(services: &Services, speaker: &Speaker) -> Result<Session, AppError> {
    let id = SessionId::from_uuid(uuid::Uuid::new_v4());
    let session = Session::new(id, speaker.owner.clone(), services.core.clock.now());
    Ok(services.core.store.put_session(&session).await?)
}

/// The engine's view of the session: its current deployment and that deployment's status.
async fn context_of(services: &Services, session: &Session) -> Context {
    let Some(id) = &session.current else {
        return Context::empty();
    };
    match services.core.store.get(id).await {
        Ok(Some(d)) => Context::with_current(d.id, d.status, Some(d.service_name.to_string())),
        _ => Context::empty(),
    }
}

/// Answers `message` in `session` (created when `None`), running the calls unless `dry_run`.
pub async fn converse(
    services: &Services,
    planner: &dyn Planner,
    speaker: &Speaker,
    session: Option<Session>,
    message: &str,
    dry_run: bool,
    observer: &dyn Observer,
) -> Result<Answer, AppError> {
    let session = match session {
        Some(s) => s,
        None => new_session(services, speaker).await?,
    };
    speaker
        .usage
        .count(&speaker.owner, |c| c.chat_messages += 1);
    let mut ctx = ToolContext {
        owner: speaker.owner.clone(),
        current: session.current.clone(),
        local_paths: speaker.local_paths,
        webhook_url: speaker.webhook_url.clone(),
    };
    let mut context = context_of(services, &session).await;
    let mut steps: Vec<Step> = Vec::new();
    let mut actions = Vec::new();
    let mut replies: Vec<String> = Vec::new();
    let mut started = Vec::new();
    let mut focus: Vec<DeploymentId> = Vec::new();
    // The planner's closing text: when there is one, it is the reply (a model sums up the
    // results itself); without one, the tools' sentences are.
    let mut closing: Option<String> = None;
    let mut model: Option<String> = None;
    let mut planning = planner.begin(message, &session.history);
    for _ in 0..MAX_ROUNDS {
        let plan = planning.next(&context, &steps).await;
        for thought in &plan.thoughts {
            observer.thought(thought);
        }
        model = plan.model.or(model);
        let (calls, lead_in) = match plan.understanding {
            Understanding::Reply(text) => {
                if !text.is_empty() {
                    closing = Some(text);
                }
                break;
            }
            Understanding::Calls { calls, lead_in } => (calls, lead_in),
        };
        if calls.is_empty() {
            break;
        }
        if let Some(lead_in) = lead_in {
            replies.push(lead_in);
        }
        for call in calls {
            let args = call.to_redacted_json();
            if dry_run {
                let missing = call.acts_on_deployment()
                    && call.deployment_id().or(ctx.current.as_ref()).is_none();
                let action = Action {
                    tool: call.name(),
                    args,
                    ok: !missing,
                    text: None,
                    result: None,
                    error: missing.then(|| ToolError {
                        code: devgem_app::ToolErrorCode::NoDeployment,
                        message: "no deployment was named and this session has none".into(),
                        hint: Some("name the deployment by its id, or deploy one first".into()),
                    }),
                };
                observer.step(&action);
                actions.push(action);
                steps.push(Step { call, result: None });
                continue;
            }
            let result = run_tool(services, &ctx, &call).await;
            if let Some(id) = &result.deployment_id {
                let new = result.ok && ctx.current.as_ref() != Some(id) && starts_work(&call);
                if new {
                    started.push(id.clone());
                }
                if result.ok {
                    ctx.current = Some(id.clone());
                    focus.push(id.clone());
                }
            }
            replies.push(result.text.clone());
            let action = Action {
                tool: call.name(),
                args,
                ok: result.ok,
                text: Some(result.text.clone()),
                result: (!result.data.is_null()).then(|| result.data.clone()),
                error: result.error.clone(),
            };
            observer.step(&action);
            actions.push(action);
            steps.push(Step {
                call,
                result: Some(result),
            });
        }
        context = match &ctx.current {
            Some(id) => match services.core.store.get(id).await? {
                Some(d) => Context::with_current(d.id, d.status, Some(d.service_name.to_string())),
                None => context,
            },
            None => context,
        };
    }
    let reply = if dry_run && !actions.is_empty() {
        dry_run_reply(&actions, &replies)
    } else {
        closing.unwrap_or_else(|| replies.join("\n"))
    };
    let values = secret_values(&steps);
    let stored = record(
        services,
        session,
        &redact_values(message, &values),
        &redact_values(&reply, &values),
        &focus,
    )
    .await?;
    Ok(Answer {
        session_id: stored.id.clone(),
        reply: redact_values(&reply, &values),
        actions,
        deployment_id: stored.current.clone(),
        model,
        started,
    })
}

/// Whether a successful call of this tool starts a deployment run worth following.
fn starts_work(call: &ToolCall) -> bool {
    matches!(
        call,
        ToolCall::DeployRepository { .. }
            | ToolCall::Redeploy { .. }
            | ToolCall::SetEnvVars { .. }
            | ToolCall::UnsetEnvVars { .. }
            | ToolCall::ApplyFix { .. }
    )
}

fn dry_run_reply(actions: &[Action], replies: &[String]) -> String {
    let mut s = String::from("Here is what I would do (nothing has run):");
    for a in actions {
        s.push_str(&format!("\n- {} {}", a.tool, a.args));
    }
    if actions.iter().any(|a| !a.ok) {
        s.push_str(
            "\nWhich deployment do you mean? This session has none yet: name it by its id, or \
             deploy a repository first.",
        );
    }
    if let Some(lead) = replies.first() {
        s = format!("{lead}\n{s}");
    }
    s
}

/// Every environment value the calls carried: none of them is stored or shown.
fn secret_values(steps: &[Step]) -> Vec<String> {
    let mut values = Vec::new();
    for step in steps {
        if let ToolCall::DeployRepository { env, .. }
        | ToolCall::SetEnvVars { env, .. }
        | ToolCall::LinkRepository { env, .. } = &step.call
        {
            values.extend(env.values().filter(|v| !v.is_empty()).cloned());
        }
    }
    // Longest first, so a value that contains another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
}

/// `text` with each of `values` replaced by `***` where it stands as a whole word.
pub fn redact_values(text: &str, values: &[String]) -> String {
    let mut out = text.to_string();
    for value in values {
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(value.as_str()) {
            let before = rest[..at].chars().next_back();
            let after = rest[at + value.len()..].chars().next();
            let bounded = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '_');
            result.push_str(&rest[..at]);
            if bounded(before) && bounded(after) {
                result.push_str("***");
            } else {
                result.push_str(value);
            }
            rest = &rest[at + value.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// Stores the turn: the user's message and the reply (both redacted), and the deployments the
/// turn focused on; on a lost race, reads the session again and applies the turn to it.
async fn record(
    services: &Services,
    mut session: Session,
    message: &str,
    reply: &str,
    focus: &[DeploymentId],
) -> Result<Session, AppError> {
    for _ in 0..10 {
        let now = services.core.clock.now();
        session.add_turn(ChatRole::User, message, now);
        if !reply.is_empty() {
            session.add_turn(ChatRole::Assistant, reply, now);
        }
        for id in focus {
            session.focus(id);
        }
        match services.core.store.put_session(&session).await {
            Ok(stored) => return Ok(stored),
            Err(StoreError::SessionConflict(id)) => {
                session = services
                    .core
                    .store
                    .get_session(&id)
                    .await?
                    .ok_or_else(|| AppError::Internal(format!("session {id} vanished")))?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::Unavailable(
        "the session store (too many concurrent writes)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_redacted_as_whole_words_only() {
        let values = vec!["hi".to_string(), "sk_live_1".to_string()];
        assert_eq!(
            redact_values("set GREETING to hi and KEY=sk_live_1; this stays", &values),
            "set GREETING to *** and KEY=***; this stays"
        );
    }
}
