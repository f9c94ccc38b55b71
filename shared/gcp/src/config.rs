//! Configuration of the Google adapters from environment variables, and the endpoint and
//! credential choice (emulator or Google) every client builder shares.

use std::time::Duration;

/// The default topic (and subscription) name prefix.
pub const DEFAULT_TOPIC_PREFIX: &str = "devgem-";
/// Where Google publishes the keys that sign its ID tokens (Pub/Sub push OIDC tokens).
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// A setting that is missing or malformed, with the variable to set and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}. Fix: {fix}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
    pub fix: String,
}

/// How push deliveries are authenticated: the token's audience and signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAuthConfig {
    pub audience: String,
    pub service_account: String,
    pub jwks_url: String,
}

/// Everything the Google adapters need to know, read once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpConfig {
    pub project: String,
    /// `host:port` of the Pub/Sub emulator.
    pub pubsub_emulator: Option<String>,
    /// `host:port` of the Firestore emulator.
    pub firestore_emulator: Option<String>,
    /// Base URL of the storage emulator, e.g. `http://127.0.0.1:4443`.
    pub storage_emulator: Option<String>,
    pub bucket: Option<String>,
    pub topic_prefix: String,
    /// Publish with ordering keys and create ordered subscriptions.
    pub ordering: bool,
    /// `None`: push deliveries are not authenticated (emulator, local runs).
    pub push_auth: Option<PushAuthConfig>,
}

impl GcpConfig {
    /// A configuration for `project` with defaults and no emulators.
    pub fn new(project: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            pubsub_emulator: None,
            firestore_emulator: None,
            storage_emulator: None,
            bucket: None,
            topic_prefix: DEFAULT_TOPIC_PREFIX.to_string(),
            ordering: false,
            push_auth: None,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let project = get("GOOGLE_CLOUD_PROJECT").ok_or_else(|| ConfigError {
            var: "GOOGLE_CLOUD_PROJECT",
            problem: "not set".into(),
            fix: "export GOOGLE_CLOUD_PROJECT=<your project id> (with the emulators any id works, \
                  e.g. devgem-local; scripts/emulators.sh start prints it)"
                .into(),
        })?;
        let ordering = match get("DEVGEM_PUBSUB_ORDERING").as_deref() {
            None | Some("0" | "false" | "no") => false,
            Some("1" | "true" | "yes") => true,
            Some(other) => {
                return Err(ConfigError {
                    var: "DEVGEM_PUBSUB_ORDERING",
                    problem: format!("{other:?} is not a boolean"),
                    fix: "set it to 1 or 0".into(),
                });
            }
        };
        let push_auth = match (
            get("DEVGEM_PUSH_AUDIENCE"),
            get("DEVGEM_PUSH_SERVICE_ACCOUNT"),
        ) {
            (None, None) => None,
            (Some(audience), Some(service_account)) => Some(PushAuthConfig {
                audience,
                service_account,
                jwks_url: get("DEVGEM_PUSH_JWKS_URL").unwrap_or_else(|| GOOGLE_JWKS_URL.into()),
            }),
            (Some(_), None) => {
                return Err(ConfigError {
                    var: "DEVGEM_PUSH_SERVICE_ACCOUNT",
                    problem: "not set, but DEVGEM_PUSH_AUDIENCE is".into(),
                    fix: "set it to the push subscription's service account email \
                          (e.g. pubsub-push@PROJECT.iam.gserviceaccount.com), or unset \
                          DEVGEM_PUSH_AUDIENCE to turn push authentication off"
                        .into(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    var: "DEVGEM_PUSH_AUDIENCE",
                    problem: "not set, but DEVGEM_PUSH_SERVICE_ACCOUNT is".into(),
                    fix: "set it to the audience configured on the push subscriptions \
                          (by default the service URL), or unset DEVGEM_PUSH_SERVICE_ACCOUNT"
                        .into(),
                });
            }
        };
        Ok(Self {
            project,
            pubsub_emulator: get("PUBSUB_EMULATOR_HOST"),
            firestore_emulator: get("FIRESTORE_EMULATOR_HOST"),
            storage_emulator: get("STORAGE_EMULATOR_HOST").map(|h| with_scheme(&h)),
            bucket: get("DEVGEM_BUCKET"),
            topic_prefix: get("DEVGEM_TOPIC_PREFIX").unwrap_or_else(|| DEFAULT_TOPIC_PREFIX.into()),
            ordering,
            push_auth,
        })
    }

    /// The bucket, or the error telling the user to set it.
    pub fn require_bucket(&self) -> Result<&str, ConfigError> {
        self.bucket.as_deref().ok_or_else(|| ConfigError {
            var: "DEVGEM_BUCKET",
            problem: "not set".into(),
            fix: "export DEVGEM_BUCKET=<bucket for source archives and logs> \
                  (with fake-gcs-server, scripts/emulators.sh creates devgem-artifacts)"
                .into(),
        })
    }

    /// The short topic name of a stage or of the dead letter topic, with the prefix.
    pub fn topic_id(&self, short: &str) -> String {
        format!("{}{short}", self.topic_prefix)
    }

    /// `projects/P/topics/ID`.
    pub fn topic_path(&self, short: &str) -> String {
        format!("projects/{}/topics/{}", self.project, self.topic_id(short))
    }

    /// `projects/P/subscriptions/ID-push`.
    pub fn subscription_path(&self, short: &str) -> String {
        format!(
            "projects/{}/subscriptions/{}-push",
            self.project,
            self.topic_id(short)
        )
    }

    /// The Pub/Sub endpoint: the emulator over plaintext, or `None` for Google's default.
    pub(crate) fn pubsub_endpoint(&self) -> Option<String> {
        self.pubsub_emulator.as_deref().map(with_scheme)
    }
}

/// Credentials for a client: anonymous against an emulator, otherwise Application Default
/// Credentials (`None` lets the client builder find them).
pub(crate) fn anonymous_if(emulated: bool) -> Option<google_cloud_auth::credentials::Credentials> {
    emulated.then(|| google_cloud_auth::credentials::anonymous::Builder::new().build())
}

/// Emulator hosts come as `host:port`; the clients want a URL. An `http://` URL is also what
/// makes the gRPC clients drop TLS.
fn with_scheme(host: &str) -> String {
    if host.starts_with("http://") || host.starts_with("https://") {
        host.trim_end_matches('/').to_string()
    } else {
        format!("http://{host}")
    }
}

/// How long to wait for one Google API call before calling the service unavailable.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<GcpConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GcpConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn project_is_required_and_the_error_names_the_fix() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err.var, "GOOGLE_CLOUD_PROJECT");
        assert!(err.to_string().contains("export GOOGLE_CLOUD_PROJECT"));
    }

    #[test]
    fn emulator_hosts_become_urls_and_defaults_apply() {
        let c = config(&[
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("PUBSUB_EMULATOR_HOST", "127.0.0.1:1"),
            ("STORAGE_EMULATOR_HOST", "127.0.0.1:2"),
        ])
        .unwrap();
        assert_eq!(c.pubsub_endpoint().as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(c.storage_emulator.as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(c.topic_path("build"), "projects/p/topics/devgem-build");
        assert_eq!(
            c.subscription_path("build"),
            "projects/p/subscriptions/devgem-build-push"
        );
        assert!(c.push_auth.is_none());
        assert!(!c.ordering);
        assert_eq!(c.require_bucket().unwrap_err().var, "DEVGEM_BUCKET");
    }

    #[test]
    fn push_auth_needs_both_audience_and_account() {
        let err =
            config(&[("GOOGLE_CLOUD_PROJECT", "p"), ("DEVGEM_PUSH_AUDIENCE", "a")]).unwrap_err();
        assert_eq!(err.var, "DEVGEM_PUSH_SERVICE_ACCOUNT");
        let c = config(&[
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("DEVGEM_PUSH_AUDIENCE", "a"),
            (
                "DEVGEM_PUSH_SERVICE_ACCOUNT",
                "sa@p.iam.gserviceaccount.com",
            ),
        ])
        .unwrap();
        let auth = c.push_auth.unwrap();
        assert_eq!(auth.jwks_url, GOOGLE_JWKS_URL);
        assert_eq!(auth.audience, "a");
    }

    #[test]
    fn ordering_flag_is_parsed_strictly() {
        let c = config(&[
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("DEVGEM_PUBSUB_ORDERING", "1"),
        ])
        .unwrap();
        assert!(c.ordering);
        let err = config(&[
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("DEVGEM_PUBSUB_ORDERING", "maybe"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "DEVGEM_PUBSUB_ORDERING");
    }
}
