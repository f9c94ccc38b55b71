//! The clocks and id sources a process runs with: the system's, and a manual clock that tests
//! move by hand instead of sleeping.

use chrono::{DateTime, Utc};
use devgem_domain::DeploymentId;
use devgem_ports::{Clock, IdSource};
use std::sync::Mutex;

/// 32 bytes from the operating system's random source (two version-4 UUIDs, `getrandom`
/// underneath: 244 random bits), for tokens, sign-in states and nonces.
pub fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
            .lock()
            .map(|now| *now)
            .unwrap_or_else(|e| *e.into_inner())
    }
}

/// Random ids: UUID v7 deployment ids (they sort by creation) and random nonces.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn deployment_id(&self) -> DeploymentId {
        DeploymentId::from_uuid(uuid::Uuid::now_v7())
    }

    fn nonce(&self) -> String {
        uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(std::time::Duration::from_secs(31));
        assert_eq!(clock.now(), start + chrono::Duration::seconds(31));
    }

    #[test]
    fn ids_are_fresh_and_ordered() {
        let a = RandomIds.deployment_id();
        let b = RandomIds.deployment_id();
        assert_ne!(a, b);
        assert!(a < b, "{a} then {b}");
        assert_eq!(RandomIds.nonce().len(), 8);
    }
}
