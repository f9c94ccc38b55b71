//! The conversation a model is given and the turn it answers with, in DevGem's own terms (no
//! provider's wire shape leaks in here).

use devgem_tools::{Context, ToolOutcome};
use serde_json::Value;

/// Everything a model reads to take its next turn. The API behind it is stateless: the whole
/// conversation is sent on every call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversation {
    /// The system prompt.
    pub system: String,
    /// The turns so far, oldest first.
    pub turns: Vec<Turn>,
    /// What the session knows (its current deployment). The offline engine reads it; networked
    /// models learn it from the system prompt, if the caller puts it there.
    pub context: Context,
    /// Values that must never leave the machine, besides the ones [`crate::redact`] finds on
    /// its own (`NAME=value` in user text, `env` arguments). The caller adds the values it holds
    /// (a stored secret a tool result might echo).
    pub secrets: Vec<String>,
}

impl Conversation {
    pub fn new(system: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            ..Self::default()
        }
    }

    /// Appends a user message.
    pub fn user(mut self, text: impl Into<String>) -> Self {
        self.turns.push(Turn::User(text.into()));
        self
    }

    /// Appends the turn a model answered with.
    pub fn push_model(&mut self, turn: &ModelTurn) {
        self.turns.push(match turn {
            ModelTurn::Text(text) => Turn::Model {
                text: Some(text.clone()),
                calls: Vec::new(),
            },
            ModelTurn::Calls { calls, text } => Turn::Model {
                text: text.clone(),
                calls: calls.clone(),
            },
        });
    }

    /// The text of the last user message, when the last turn is one.
    pub fn last_user_text(&self) -> Option<&str> {
        match self.turns.last() {
            Some(Turn::User(text)) => Some(text),
            _ => None,
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// What the user said.
    User(String),
    /// What a model answered: text, calls, or both. Kept as the model sent it (a Gemini
    /// thought signature included), because thinking models refuse a replay without it.
    Model {
        text: Option<String>,
        calls: Vec<FunctionCall>,
    },
    /// The results of the previous model turn's calls, one per call, in the same order.
    Results(Vec<FunctionResult>),
}

/// A call a model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCall {
    /// The tool's name (`deploy_repository`).
    pub name: String,
    /// The arguments. An object, except when an OpenAI-compatible model sent arguments that are
    /// not JSON: then the raw string, so the tool answers with an argument error the model can
    /// correct.
    pub args: Value,
    /// The provider's id for the call (OpenAI's `tool_call_id`; Gemini sometimes), echoed in the
    /// result.
    pub id: Option<String>,
    /// Gemini's `thoughtSignature` on the call's part, replayed verbatim.
    pub thought_signature: Option<String>,
}

impl FunctionCall {
    pub fn new(name: impl Into<String>, args: Value) -> Self {
        Self {
            name: name.into(),
            args,
            id: None,
            thought_signature: None,
        }
    }
}

/// What one call came to.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionResult {
    /// The tool's name, as the call had it.
    pub name: String,
    /// The call's id, when it had one.
    pub id: Option<String>,
    /// The result as the model reads it (a JSON object is best; anything else is wrapped as
    /// `{"result": ...}` for Gemini).
    pub response: Value,
    /// The result as the application saw it, for the offline engine's sentences.
    pub outcome: Option<ToolOutcome>,
}

/// The turn a model answered with.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelTurn {
    /// A reply to show the user: the tool loop ends.
    Text(String),
    /// Calls to make (in order), with any text the model said alongside them.
    Calls {
        calls: Vec<FunctionCall>,
        text: Option<String>,
    },
}

impl ModelTurn {
    /// The text of the turn, if any.
    pub fn text(&self) -> Option<&str> {
        match self {
            ModelTurn::Text(text) => Some(text),
            ModelTurn::Calls { text, .. } => text.as_deref(),
        }
    }

    /// The calls of the turn (none for a text turn).
    pub fn calls(&self) -> &[FunctionCall] {
        match self {
            ModelTurn::Text(_) => &[],
            ModelTurn::Calls { calls, .. } => calls,
        }
    }
}
