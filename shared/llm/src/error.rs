//! What can go wrong asking a model, named by provider so a user knows which one and what to do.

use std::time::Duration;

/// A model call that did not give a turn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct ModelError {
    /// The model that failed, as [`crate::LanguageModel::name`] gives it
    /// (`Gemini API gemini-2.5-flash`).
    pub provider: String,
    pub kind: ErrorKind,
    /// What happened, in the provider's words where it gave some. Never holds a key.
    pub message: String,
}

/// The kinds of failure, by what a caller does about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 429: quota or rate limit. Retried; then the next tier.
    RateLimited,
    /// 5xx: the provider is overloaded or failing. Retried; then the next tier.
    Unavailable,
    /// No answer within the call's timeout. Retried; then the next tier.
    Timeout,
    /// The connection failed. Retried; then the next tier.
    Transport,
    /// 401 or 403: a bad key or missing permission. Fix the configuration.
    Unauthorized,
    /// Another 4xx: the request, the model name or the account. Fix the configuration.
    Rejected,
    /// A 200 whose body is not the documented shape.
    Malformed,
    /// The provider refused to answer (a safety block, no candidates).
    Blocked,
    /// The configuration or the credentials could not be used.
    Config,
}

impl ErrorKind {
    /// Whether trying the same call again may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::Transport
        )
    }
}

impl ModelError {
    pub fn new(provider: impl Into<String>, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            kind,
            message: message.into(),
        }
    }

    pub fn malformed(provider: &str, detail: impl std::fmt::Display) -> Self {
        Self::new(
            provider,
            ErrorKind::Malformed,
            format!("the response is not the documented shape: {detail}"),
        )
    }
}

/// A retryable failure and how long the provider asked us to wait, if it said.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: ModelError,
    pub retry_after: Option<Duration>,
}
