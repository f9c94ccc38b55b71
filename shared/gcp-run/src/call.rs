//! How every Google call is made: a deadline per attempt, exponential backoff with full
//! jitter on 429 and 5xx (honouring `Retry-After` and `google.rpc.RetryInfo`), and errors
//! turned into what the user must do.
//!
//! The generated clients' own retry loop does not read `Retry-After`, so their retries are
//! off (see [`no_retry`]) and this loop is the one that runs.

use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::error::rpc::Code;
use std::future::Future;
use std::time::Duration;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// The deadline of one attempt.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `n + 1` (`n` from 1): what the server asked for, or a random
    /// share of the exponential bound.
    pub fn delay(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        if let Some(asked) = asked {
            return asked.min(self.max_delay);
        }
        let bound = self
            .first_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        bound.mul_f64(rand::random::<f64>().max(0.1))
    }
}

/// What a failed call means for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The resource does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// It exists already (409 on create: read it and carry on).
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller lacks a permission or the request is wrong: retrying will not help.
    #[error("{message}")]
    Refused { message: String, hint: String },
    /// Still failing after every retry, or the network is down: may pass later.
    #[error("{0}")]
    Unavailable(String),
}

impl CallError {
    pub fn hint(&self) -> &str {
        match self {
            CallError::Refused { hint, .. } => hint,
            _ => "",
        }
    }
}

/// Options for a generated client's request: its own retries off, a deadline per attempt.
pub fn no_retry() -> google_cloud_gax::retry_policy::NeverRetry {
    google_cloud_gax::retry_policy::NeverRetry
}

/// Runs `call` until it succeeds, fails for good, or the attempts run out. `what` names the
/// call in errors ("Cloud Run: create service shop").
pub async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut call: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, GaxError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = match tokio::time::timeout(policy.attempt_timeout, call()).await {
            Ok(outcome) => outcome.map_err(|e| classify(what, &e)),
            Err(_) => Err(Failure::Transient {
                message: format!(
                    "{what}: no answer within {}s",
                    policy.attempt_timeout.as_secs()
                ),
                asked: None,
            }),
        };
        match outcome {
            Ok(value) => return Ok(value),
            Err(Failure::Final(e)) => return Err(e),
            Err(Failure::Transient { message, asked }) => {
                if attempt >= policy.attempts {
                    return Err(CallError::Unavailable(format!(
                        "{message} (gave up after {attempt} attempts)"
                    )));
                }
                tracing::debug!(what, attempt, %message, "retrying a Google call");
                tokio::time::sleep(policy.delay(attempt, asked)).await;
            }
        }
    }
}

enum Failure {
    Final(CallError),
    Transient {
        message: String,
        asked: Option<Duration>,
    },
}

fn classify(what: &str, e: &GaxError) -> Failure {
    let http = e.http_status_code();
    let status = e.status();
    let message = status
        .map(|s| s.message.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| e.to_string());
    let message = format!("{what}: {message}");
    let code = status.map(|s| s.code);
    let asked = retry_after(e);
    match (http, code) {
        (Some(404), _) | (_, Some(Code::NotFound)) => Failure::Final(CallError::NotFound(message)),
        (Some(409), _) | (_, Some(Code::AlreadyExists)) => {
            Failure::Final(CallError::AlreadyExists(message))
        }
        (Some(403), _) | (_, Some(Code::PermissionDenied)) => Failure::Final(CallError::Refused {
            hint: "grant the missing permission named above to the account DevGem runs as \
                   (infra/ lists the roles each part needs), or check that the API is enabled"
                .into(),
            message,
        }),
        (Some(401), _) | (_, Some(Code::Unauthenticated)) => Failure::Final(CallError::Refused {
            message,
            hint: "the credentials were refused: run `gcloud auth application-default login` \
                   or refresh GOOGLE_OAUTH_ACCESS_TOKEN"
                .into(),
        }),
        (Some(429 | 500 | 502 | 503 | 504), _)
        | (
            _,
            Some(
                Code::ResourceExhausted
                | Code::Unavailable
                | Code::Internal
                | Code::DeadlineExceeded,
            ),
        ) => Failure::Transient { message, asked },
        (Some(400..=499), _) | (_, Some(_)) => Failure::Final(CallError::Refused {
            message,
            hint: String::new(),
        }),
        // No HTTP status at all: the connection failed, which may pass.
        (None, None) => Failure::Transient { message, asked },
        (Some(_), None) => Failure::Transient { message, asked },
    }
}

/// How long the server asked us to wait: `Retry-After` (seconds), else `RetryInfo`.
fn retry_after(e: &GaxError) -> Option<Duration> {
    let header = e
        .http_headers()
        .and_then(|h| h.get(http::header::RETRY_AFTER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    header.or_else(|| {
        e.status()?.details.iter().find_map(|d| match d {
            google_cloud_gax::error::rpc::StatusDetails::RetryInfo(info) => info
                .retry_delay
                .as_ref()
                .and_then(|d| Duration::try_from(*d).ok()),
            _ => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds_and_honour_the_server() {
        let p = RetryPolicy::default();
        for attempt in 1..10 {
            let d = p.delay(attempt, None);
            assert!(d <= p.max_delay, "{d:?}");
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(700))), p.max_delay);
    }
}
