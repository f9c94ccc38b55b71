//! DevGem's application layer, shared by every function: the bundle of ports a process runs
//! with, the stage runner that makes every stage idempotent and resumable, and the commands
//! users issue (start, abort, stop), the release commands (revisions, rollback, env, logs,
//! domains) and the recovery that resumes unfinished work.
//!
//! **Invariant:** nothing here keeps state between requests; everything that must outlive a
//! request is in the store, everything that must happen next is a bus message.

pub mod clock;
mod commands;
mod lifecycle;
pub mod release;
mod reporter;
mod services;
mod stage;

pub use commands::{
    AppError, CreateDeployment, LocalPaths, abort_deployment, check_upload, create_deployment,
    follow, resume_unfinished, stop_deployment, user_env,
};
pub use reporter::{Reporter, TickerGuard};
pub use services::{Core, InstanceId, Services};
pub use stage::{DeadLetterHandler, StageContext, StageError, StageHandler, StageWork, load_json};

/// Object keys of a deployment's artifacts.
pub mod keys {
    use devgem_domain::DeploymentId;

    /// A source archive the user uploaded.
    pub fn upload(id: &DeploymentId) -> String {
        format!("deployments/{id}/upload.tar.gz")
    }
    pub fn source_archive(id: &DeploymentId) -> String {
        format!("deployments/{id}/source.tar.gz")
    }
    pub fn plan(id: &DeploymentId) -> String {
        format!("deployments/{id}/plan.json")
    }
    pub fn dockerfile(id: &DeploymentId) -> String {
        format!("deployments/{id}/Dockerfile")
    }
    pub fn dockerignore(id: &DeploymentId) -> String {
        format!("deployments/{id}/dockerignore")
    }
    pub fn analysis(id: &DeploymentId) -> String {
        format!("deployments/{id}/analysis.json")
    }
    pub fn build_log(id: &DeploymentId) -> String {
        format!("deployments/{id}/build.log")
    }
    /// Where the value of the user's environment variable `name` is kept (secrets port).
    pub fn env_secret(id: &DeploymentId, name: &str) -> String {
        format!("deployments/{id}/env/{name}")
    }
}
