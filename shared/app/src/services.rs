//! The ports one process runs with, and who that process is.

use devgem_ports::{Builder, MessageBus, ObjectStore, Runtime, Secrets, SourceFetcher, StateStore};
use std::sync::Arc;

/// Every port, as trait objects picked by configuration at start-up.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn StateStore>,
    pub bus: Arc<dyn MessageBus>,
    pub objects: Arc<dyn ObjectStore>,
    pub secrets: Arc<dyn Secrets>,
    pub source: Arc<dyn SourceFetcher>,
    pub builder: Arc<dyn Builder>,
    pub runtime: Arc<dyn Runtime>,
    pub instance: InstanceId,
    /// How long a stage worker's claim lasts without renewal.
    pub lease: std::time::Duration,
}

/// Names one running DevGem process: `host/pid/nonce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn current() -> Self {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        Self(format!(
            "{}/{}/{}",
            hostname(),
            std::process::id(),
            &nonce[..8]
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `holder` was a process on this host that no longer runs, so its claims can be
    /// taken over at once instead of after the lease. Other hosts' claims simply expire.
    pub fn is_gone(&self, holder: &str) -> bool {
        let mut parts = holder.split('/');
        let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
            return false;
        };
        if host != hostname() || holder == self.0 {
            return false;
        }
        match pid.parse::<u32>() {
            Ok(pid) if pid != std::process::id() => {
                !std::path::Path::new(&format!("/proc/{pid}")).exists()
            }
            // The same pid with another nonce is an earlier life of a reused pid.
            Ok(_) => true,
            Err(_) => false,
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}
