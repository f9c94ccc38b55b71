//! A chat session: the conversation (names only, never an environment value), the
//! deployments it started and the one "it" refers to, written with compare-and-set like a
//! deployment so two instances serving one session cannot lose each other's turns.

use crate::id::checked_string;
use crate::id::{DeploymentId, InvalidName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Identifies one session: `s-` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(format!("s-{}", uuid.simple()))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let ok = value.len() >= 3
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidName {
                what: "session id",
                value: value.chars().take(80).collect(),
                reason: "expected 3 to 64 characters of a-z, 0-9 and '-'",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_string!(SessionId);

/// Who said a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    User,
    Assistant,
}

/// One turn of the conversation, as stored: already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTurn {
    pub role: ChatRole,
    pub text: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub owner: String,
    #[serde(default)]
    pub history: Vec<ChatTurn>,
    /// The deployments this session started, oldest first.
    #[serde(default)]
    pub deployments: Vec<DeploymentId>,
    /// The deployment a message without an id means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<DeploymentId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// 0 for a session not stored yet; bumped by every write, which is conditional on it.
    pub version: u64,
}

impl Session {
    /// The most turns a session keeps; older ones are dropped first.
    pub const MAX_TURNS: usize = 200;

    pub fn new(id: SessionId, owner: impl Into<String>, now: DateTime<Utc>) -> Self {
        Self {
            id,
            owner: owner.into(),
            history: Vec::new(),
            deployments: Vec::new(),
            current: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    /// Adds a turn (its text already redacted), keeping at most [`Self::MAX_TURNS`].
    pub fn add_turn(&mut self, role: ChatRole, text: impl Into<String>, at: DateTime<Utc>) {
        self.history.push(ChatTurn {
            role,
            text: text.into(),
            at,
        });
        let extra = self.history.len().saturating_sub(Self::MAX_TURNS);
        self.history.drain(..extra);
        self.updated_at = at;
    }

    /// Makes `id` the current deployment, remembering it among the session's.
    pub fn focus(&mut self, id: &DeploymentId) {
        if !self.deployments.contains(id) {
            self.deployments.push(id.clone());
        }
        self.current = Some(id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_focus_remembers_deployments_once() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let mut s = Session::new(SessionId::parse("s-1").unwrap(), "local", now);
        for i in 0..Session::MAX_TURNS + 5 {
            s.add_turn(ChatRole::User, format!("turn {i}"), now);
        }
        assert_eq!(s.history.len(), Session::MAX_TURNS);
        assert_eq!(s.history[0].text, "turn 5");
        let a = DeploymentId::parse("d-a").unwrap();
        let b = DeploymentId::parse("d-b").unwrap();
        s.focus(&a);
        s.focus(&b);
        s.focus(&a);
        assert_eq!(s.deployments, [a.clone(), b]);
        assert_eq!(s.current, Some(a));
        assert!(SessionId::parse("S 1").is_err());
    }
}
