//! Google Cloud's build-and-run adapters: the builder on Cloud Build (images into Artifact
//! Registry), the runtime on Cloud Run Admin API v2 (with its logs from Cloud Logging), and
//! the secrets port on Secret Manager. Every call goes through [`call::with_retry`].
//!
//! The request bodies are rendered by pure functions (from the build request and the release
//! spec), so their snapshots show exactly what Google receives.

pub mod auth;
pub mod build_request;
pub mod call;
pub mod cloudbuild;
pub mod cloudrun;
pub mod config;
pub mod names;
pub mod secretmanager;
pub mod service;

pub use cloudbuild::{BuildNotifications, CloudBuildBuilder, CloudBuildSettings, PushOutcome};
pub use cloudrun::{CloudRunRuntime, Timing};
pub use config::{BuildEngine, CloudConfig, ConfigError, Endpoints};
pub use secretmanager::{SecretManagerError, SecretManagerSecrets};
