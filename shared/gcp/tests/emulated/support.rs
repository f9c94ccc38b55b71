//! Emulator start-up shared by the tests, and small helpers.

use devgem_domain::{Deployment, DeploymentId, NewDeployment, ServiceName, Source};
use devgem_gcp::GcpConfig;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The emulator settings as `NAME=value` pairs (also passed to child processes).
pub struct Emulators {
    pub vars: HashMap<String, String>,
}

impl Emulators {
    pub fn config(&self) -> GcpConfig {
        GcpConfig::from_lookup(|k| self.vars.get(k).cloned()).expect("emulator config")
    }
}

const NEEDED: [&str; 3] = [
    "PUBSUB_EMULATOR_HOST",
    "FIRESTORE_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
];

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/emulators.sh")
}

fn start() -> Option<Emulators> {
    let mut vars: HashMap<String, String> = HashMap::new();
    if NEEDED.iter().all(|v| std::env::var(v).is_ok()) {
        for v in NEEDED {
            vars.insert(v.into(), std::env::var(v).unwrap_or_default());
        }
        vars.insert(
            "GOOGLE_CLOUD_PROJECT".into(),
            std::env::var("GOOGLE_CLOUD_PROJECT").unwrap_or_else(|_| "devgem-local".into()),
        );
        vars.insert(
            "DEVGEM_BUCKET".into(),
            std::env::var("DEVGEM_BUCKET").unwrap_or_else(|_| "devgem-artifacts".into()),
        );
        return Some(Emulators { vars });
    }
    let gcloud = Command::new("sh")
        .args(["-c", "command -v gcloud"])
        .output();
    if !gcloud.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "\n\n==========\nSKIPPED: gcloud missing — install the Google Cloud CLI with the Pub/Sub and Firestore emulators to run the devgem-gcp emulator tests\n==========\n"
        );
        return None;
    }
    let dir = std::env::temp_dir().join(format!("devgem-gcp-tests-{}", std::process::id()));
    let started = std::time::Instant::now();
    let out = Command::new("bash")
        .arg(script())
        .args(["start", "--owner-pid", &std::process::id().to_string()])
        .env("DEVGEM_EMULATOR_DIR", &dir)
        .output()
        .expect("run scripts/emulators.sh");
    assert!(
        out.status.success(),
        "scripts/emulators.sh start failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    eprintln!("emulators started in {:?}: {vars:?}", started.elapsed());
    Some(Emulators { vars })
}

/// The emulators, started once per test binary; `None` (after a loud message) without gcloud.
pub fn emulators() -> Option<&'static Emulators> {
    static EMULATORS: OnceLock<Option<Emulators>> = OnceLock::new();
    EMULATORS.get_or_init(start).as_ref()
}

/// A config whose topic prefix is unique to the calling test, so tests never share topics.
pub fn unique_config(emulators: &Emulators, test: &str) -> GcpConfig {
    let mut config = emulators.config();
    config.topic_prefix = format!("t{}-{test}-", short_uid());
    config
}

pub fn short_uid() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

pub fn deployment(owner: &str) -> Deployment {
    Deployment::new(
        DeploymentId::generate(),
        NewDeployment {
            owner: owner.to_string(),
            source: Source {
                location: "https://github.com/acme/shop".into(),
                branch: Some("main".into()),
                commit: None,
                subdir: None,
            },
            service_name: ServiceName::derive_from("shop"),
            env_names: vec![],
        },
        chrono::Utc::now(),
    )
}

pub fn median(mut v: Vec<std::time::Duration>) -> std::time::Duration {
    v.sort();
    v[v.len() / 2]
}

/// `let Some(emu) = require_emulators!() else { return };`
#[macro_export]
macro_rules! require_emulators {
    () => {
        match $crate::support::emulators() {
            Some(e) => Some(e),
            None => {
                eprintln!("SKIPPED: gcloud missing");
                None
            }
        }
    };
}
