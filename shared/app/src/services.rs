//! The ports one process runs with, grouped by who uses them, and who that process is.

use devgem_ports::{
    Clock, IdSource, MessageBus, ObjectStore, Runtime, Secrets, SourceFetcher, StateStore,
};
use std::sync::Arc;

/// What the state machine itself needs, in every function: the store, the bus, time, fresh
/// ids, who this process is and how long its claims last.
#[derive(Clone)]
pub struct Core {
    pub store: Arc<dyn StateStore>,
    pub bus: Arc<dyn MessageBus>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    pub instance: InstanceId,
    /// How long a stage worker's claim lasts without renewal.
    pub lease: std::time::Duration,
}

/// What the user's commands (the API, the CLI, the chat's tools) use: the core, the secrets the
/// user sets, the objects they read back (logs), the runtime they stop and the fetcher that
/// reads a repository to analyze it without deploying. The stages get their own ports.
#[derive(Clone)]
pub struct Services {
    pub core: Core,
    pub objects: Arc<dyn ObjectStore>,
    pub secrets: Arc<dyn Secrets>,
    pub runtime: Arc<dyn Runtime>,
    pub source: Arc<dyn SourceFetcher>,
    /// Which hosts sources may come from (`DEVGEM_ALLOWED_SOURCE_HOSTS`), checked when a
    /// deployment is requested.
    pub sources: devgem_sources::SourcePolicy,
}

/// Names one running DevGem process: `host/pid/nonce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn current(ids: &dyn IdSource) -> Self {
        Self(format!(
            "{}/{}/{}",
            hostname(),
            std::process::id(),
            ids.nonce()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A claim holder name for one attempt at a stage by this process.
    pub fn attempt(&self, ids: &dyn IdSource) -> String {
        format!("{}#{}", self.0, ids.nonce())
    }

    /// Whether `holder` was a process on this host that no longer runs, so its claims can be
    /// taken over at once instead of after the lease. Other hosts' claims simply expire.
    pub fn is_gone(&self, holder: &str) -> bool {
        // A holder is `instance#attempt`: one process may run several attempts at once.
        let instance = holder.split('#').next().unwrap_or(holder);
        if instance == self.0 {
            return false;
        }
        let mut parts = instance.split('/');
        let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
            return false;
        };
        if host != hostname() {
            return false;
        }
        match pid.parse::<u32>() {
            Ok(pid) if pid != std::process::id() => !process_runs(pid),
            // The same pid with another nonce is an earlier life of a reused pid.
            Ok(_) => true,
            Err(_) => false,
        }
    }
}

/// Whether `pid` is a live process here (a zombie that was killed but not yet reaped is not).
fn process_runs(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::RandomIds;

    #[test]
    fn only_dead_local_processes_are_gone() {
        let me = InstanceId::current(&RandomIds);
        // Another attempt of this very process is alive.
        assert!(!me.is_gone(&me.attempt(&RandomIds)));
        // An earlier life of this pid (another nonce) is gone.
        let earlier = format!("{}/{}/deadbeef#1234", hostname(), std::process::id());
        assert!(me.is_gone(&earlier));
        // A pid that does not run on this host is gone; another host's claim is never.
        let dead = format!("{}/{}/00000000#1", hostname(), u32::MAX - 7);
        assert!(me.is_gone(&dead));
        assert!(!me.is_gone("some-other-host/1/abc#1"));
    }
}
