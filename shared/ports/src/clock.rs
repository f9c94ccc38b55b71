//! Time and fresh identities, injected like any other outside service so that the rules which
//! depend on them (leases, progress ticks, ids) run on a clock a test controls.

use chrono::{DateTime, Utc};
use devgem_domain::DeploymentId;

/// The current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Fresh identifiers: deployment ids (time-ordered) and the nonces that name one attempt.
pub trait IdSource: Send + Sync {
    fn deployment_id(&self) -> DeploymentId;
    /// Eight lowercase hex digits, unique enough to tell attempts of one process apart.
    fn nonce(&self) -> String;
}
