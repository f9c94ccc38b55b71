//! DevGem's application layer, shared by every function: the bundle of ports a process runs
//! with, the stage runner that makes every stage idempotent and resumable, and the commands
//! users issue (start, abort, stop), the release commands (revisions, rollback, env, logs,
//! domains), the tool executor the chat and the MCP server share, and the recovery that resumes
//! unfinished work.
//!
//! **Invariant:** nothing here keeps state between requests; everything that must outlive a
//! request is in the store, everything that must happen next is a bus message.

pub mod clock;
mod commands;
mod lifecycle;
pub mod links;
pub mod release;
mod reporter;
mod services;
pub mod sources;
mod stage;
pub mod tools;

pub use commands::{
    AppError, CreateDeployment, CreateOptions, LocalPaths, abort_deployment, apply_preferences,
    check_upload, create_deployment, create_deployment_at, create_deployment_with, follow,
    owner_preferences, resume_unfinished, stop_deployment, user_env,
};
pub use devgem_sources::SourcePolicy;
pub use reporter::{Reporter, TickerGuard};
pub use services::{Core, InstanceId, Services};
pub use stage::{DeadLetterHandler, StageContext, StageError, StageHandler, StageWork, load_json};
pub use tools::{ToolContext, ToolError, ToolErrorCode, ToolResult, run_tool};

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
    /// Where the analysis of `source` at `commit` (its folder `subdir`) by the analyzer
    /// `analyzer` is kept for later deployments of the same commit; `part` is `analysis` or
    /// `scan`. The name is a stable hash of the four; the object repeats them, so a
    /// collision reads as a miss.
    pub fn analysis_cache(
        source: &str,
        commit: &str,
        subdir: Option<&str>,
        analyzer: &str,
        part: &str,
    ) -> String {
        let name = stable_hash(&[
            source.as_bytes(),
            commit.as_bytes(),
            subdir.unwrap_or("").as_bytes(),
            analyzer.as_bytes(),
        ]);
        format!("analysis-cache/{name}/{part}.json")
    }

    /// FNV-1a, 64 bits, over the parts with a separator: stable across runs and builds.
    fn stable_hash(parts: &[&[u8]]) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for byte in part.iter().chain(&[0xff]) {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{hash:016x}")
    }

    /// Where the value of the user's environment variable `name` is kept (secrets port).
    pub fn env_secret(id: &DeploymentId, name: &str) -> String {
        format!("deployments/{id}/env/{name}")
    }

    /// Where the GitHub token of `user` (kept when they sign in with GitHub) is kept (secrets
    /// port): what their repositories are cloned and their commit statuses posted with.
    pub fn github_token(user: &str) -> String {
        format!("accounts/{user}/github-token")
    }
}
