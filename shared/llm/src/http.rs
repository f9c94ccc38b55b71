//! One JSON POST to a provider, with a timeout per attempt and exponential backoff with jitter on
//! 429, 5xx, timeouts and dropped connections, honouring `Retry-After` (and Google's
//! `RetryInfo.retryDelay`).

use crate::error::{ErrorKind, Failure, ModelError};
use http::HeaderMap;
use rand::Rng;
use serde_json::Value;
use std::time::Duration;

/// How hard one model tier tries before the chain moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The first backoff; it doubles per attempt.
    pub base_delay: Duration,
    /// The longest wait between attempts. A `Retry-After` longer than this ends the tier's
    /// attempts: the next tier answers sooner.
    pub max_delay: Duration,
    /// The bound on one attempt, connection to last byte.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// As the Gemini documentation advises: 1 s, 2 s, 4 s ... capped, about 5 tries.
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 0): the provider's
    /// `Retry-After` when it gave one, else `base * 2^attempt` with full jitter in its upper
    /// half (so clients that failed together do not retry together).
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait;
        }
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max_delay);
        let jitter = rand::rng().random_range(0.5..=1.0);
        exp.mul_f64(jitter)
    }
}

/// POSTs `body` as JSON and returns the JSON answer, retrying what the policy allows.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    policy: &RetryPolicy,
    provider: &str,
    url: &str,
    headers: HeaderMap,
    body: &Value,
) -> Result<Value, ModelError> {
    let mut attempt = 0;
    loop {
        let failure = match attempt_once(client, policy, provider, url, headers.clone(), body).await
        {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        attempt += 1;
        if !failure.error.kind.is_retryable() || attempt >= policy.attempts {
            return Err(failure.error);
        }
        let wait = policy.delay(attempt - 1, failure.retry_after);
        if wait > policy.max_delay {
            return Err(ModelError {
                message: format!(
                    "{} (it asked to wait {} s, longer than the {} s this tier waits)",
                    failure.error.message,
                    wait.as_secs(),
                    policy.max_delay.as_secs()
                ),
                ..failure.error
            });
        }
        tracing::debug!(
            provider,
            attempt,
            wait_ms = wait.as_millis() as u64,
            error = %failure.error.message,
            "retrying the model call"
        );
        tokio::time::sleep(wait).await;
    }
}

async fn attempt_once(
    client: &reqwest::Client,
    policy: &RetryPolicy,
    provider: &str,
    url: &str,
    headers: HeaderMap,
    body: &Value,
) -> Result<Value, Failure> {
    let transport = |e: reqwest::Error| {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Transport
        };
        let message = if e.is_timeout() {
            format!("no answer within {:?}", policy.timeout)
        } else {
            // Without the URL: a key passed in a query would otherwise reach the logs.
            format!("the request failed: {}", e.without_url())
        };
        Failure {
            error: ModelError::new(provider, kind, message),
            retry_after: None,
        }
    };
    let response = client
        .post(url)
        .headers(headers)
        .timeout(policy.timeout)
        .json(body)
        .send()
        .await
        .map_err(transport)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let bytes = response.bytes().await.map_err(transport)?;
    if (200..300).contains(&status) {
        return serde_json::from_slice(&bytes).map_err(|e| Failure {
            error: ModelError::malformed(provider, format!("the body is not JSON ({e})")),
            retry_after: None,
        });
    }
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let kind = match status {
        429 => ErrorKind::RateLimited,
        401 | 403 => ErrorKind::Unauthorized,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Rejected,
    };
    let detail = error_message(&body)
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
    let mut message = format!("HTTP {status}: {detail}");
    match kind {
        ErrorKind::Unauthorized => message.push_str(". Fix: check the API key or credentials"),
        ErrorKind::Rejected if status == 404 => {
            message.push_str(". Fix: check the model name (DEVGEM_LLM_MODEL)")
        }
        _ => {}
    }
    Err(Failure {
        error: ModelError::new(provider, kind, message),
        retry_after: retry_after.or_else(|| google_retry_delay(&body)),
    })
}

/// The message of Google's `{"error": {"status", "message"}}` or OpenAI's
/// `{"error": {"message", "type"}}`.
fn error_message(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    if let Some(text) = error.as_str() {
        return Some(text.chars().take(300).collect());
    }
    let message: String = error.get("message")?.as_str()?.chars().take(300).collect();
    match error
        .get("status")
        .or_else(|| error.get("type"))
        .and_then(Value::as_str)
    {
        Some(status) => Some(format!("{status}: {message}")),
        None => Some(message),
    }
}

/// `RetryInfo.retryDelay` (`"1.5s"`) from a Google error's `details`.
fn google_retry_delay(body: &Value) -> Option<Duration> {
    body.pointer("/error/details")?
        .as_array()?
        .iter()
        .find_map(|d| {
            d.get("retryDelay")?
                .as_str()?
                .strip_suffix('s')?
                .parse::<f64>()
                .ok()
        })
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_the_cap() {
        let policy = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            timeout: Duration::from_secs(1),
        };
        for attempt in 0..6 {
            let full = Duration::from_secs(1 << attempt).min(Duration::from_secs(8));
            let d = policy.delay(attempt, None);
            assert!(d <= full && d >= full / 2, "attempt {attempt}: {d:?}");
        }
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn googles_retry_delay_is_read_from_the_error_details() {
        let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]}});
        assert_eq!(google_retry_delay(&body), Some(Duration::from_millis(2500)));
        assert_eq!(
            error_message(&body).as_deref(),
            Some("RESOURCE_EXHAUSTED: quota")
        );
    }
}
