//! The local Google Cloud emulators for tests (Pub/Sub, Firestore, fake-gcs-server), started
//! once per test process by `scripts/emulators.sh` on free ports and stopped when the process
//! exits, or taken from the environment when a set is already running.
//!
//! Without gcloud (or java) a test that needs them is skipped with a loud message, except under
//! CI (`CI=true`), where it fails: a CI machine without the emulators is a broken CI machine,
//! and a green run that tested nothing would hide it.
//!
//! [`standin`] is a loopback stand-in for the Google APIs that only Google can answer (and
//! GitHub's REST API); [`git_http`] serves real git repositories over smart HTTP on loopback.

pub mod git_http;
pub mod standin;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The variables that locate a running set; when all three are set, no emulator is started.
const NEEDED: [&str; 3] = [
    "PUBSUB_EMULATOR_HOST",
    "FIRESTORE_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
];

/// `scripts/emulators.sh start` exits with this when gcloud, java or fake-gcs-server is missing.
const EXIT_MISSING: i32 = 3;

/// A running set of emulators.
pub struct Emulators {
    vars: HashMap<String, String>,
    /// The state directory of `scripts/emulators.sh` (pid files); `None` when the set came
    /// from the environment without one, so it cannot be paused.
    dir: Option<PathBuf>,
}

/// What starting the emulators came to.
enum Start {
    Running(Emulators),
    /// Not installed on this machine: the script's explanation.
    Missing(String),
    /// Installed but did not come up: the script's explanation.
    Failed(String),
}

/// The emulators, started on first use and shared by every test of this process.
///
/// `None` (after a loud SKIPPED message) when they are not installed, so the calling test
/// returns early and passes; panics instead when `CI` is `true` or when they are installed
/// but fail to start.
pub fn emulators() -> Option<&'static Emulators> {
    static STARTED: OnceLock<Start> = OnceLock::new();
    match STARTED.get_or_init(start) {
        Start::Running(emulators) => Some(emulators),
        Start::Missing(why) if under_ci() => panic!(
            "CI is set and the emulators cannot run on this machine, so this test cannot \
             run: {why}\n(install them with scripts/setup.sh)"
        ),
        Start::Missing(why) => {
            eprintln!(
                "\n==========\nSKIPPED: the emulator tests need the Google Cloud CLI with the \
                 Pub/Sub and Firestore emulators, and java: {why}\n==========\n"
            );
            None
        }
        Start::Failed(why) => panic!("the emulators did not start: {why}"),
    }
}

/// Whether the tests run under CI (`CI=true`, as GitHub Actions and most CI systems set it).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/emulators.sh")
}

fn start() -> Start {
    if NEEDED.iter().all(|v| std::env::var(v).is_ok()) {
        return Start::Running(from_environment());
    }
    let dir = std::env::temp_dir().join(format!("devgem-emulators-test-{}", std::process::id()));
    let started = std::time::Instant::now();
    let out = Command::new("bash")
        .arg(script())
        .args([
            "start",
            "--owner-pid",
            &std::process::id().to_string(),
            "--cleanup",
        ])
        .env("DEVGEM_EMULATOR_DIR", &dir)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => return Start::Missing(format!("cannot run bash: {e}")),
    };
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match out.status.code() {
        Some(0) => {}
        Some(EXIT_MISSING) => {
            // Nothing was started, so nothing (not even logs) is worth keeping.
            let _ = std::fs::remove_dir_all(&dir);
            return Start::Missing(stderr);
        }
        _ => {
            return Start::Failed(format!(
                "scripts/emulators.sh start ({}):\n{stderr}",
                out.status
            ));
        }
    }
    let mut vars = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    eprintln!("emulators started in {:?}: {vars:?}", started.elapsed());
    Start::Running(Emulators {
        vars,
        dir: Some(dir),
    })
}

fn from_environment() -> Emulators {
    let mut vars: HashMap<String, String> = NEEDED
        .iter()
        .map(|v| (v.to_string(), std::env::var(v).unwrap_or_default()))
        .collect();
    let or = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    vars.insert(
        "GOOGLE_CLOUD_PROJECT".into(),
        or("GOOGLE_CLOUD_PROJECT", "devgem-local"),
    );
    vars.insert(
        "DEVGEM_BUCKET".into(),
        or("DEVGEM_BUCKET", "devgem-artifacts"),
    );
    let dir = std::env::var("DEVGEM_EMULATOR_DIR").ok().map(PathBuf::from);
    if let Some(dir) = &dir {
        vars.insert("DEVGEM_EMULATOR_DIR".into(), dir.display().to_string());
    }
    Emulators { vars, dir }
}

impl Emulators {
    /// Every setting as `NAME=value` pairs, as `scripts/emulators.sh env` prints them: what a
    /// child process (or a `GcpConfig::from_lookup`) needs to reach this set.
    pub fn vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    /// One setting; panics when it is not set.
    pub fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{name} is not set"))
    }

    /// The Google Cloud project the emulators serve.
    pub fn project(&self) -> &str {
        self.var("GOOGLE_CLOUD_PROJECT")
    }

    /// Whether [`Emulators::pause`] can work: the set's pid files are known.
    pub fn can_pause(&self) -> bool {
        self.dir.is_some()
    }

    /// Stops (SIGSTOP) the process group of emulator `name` (`pubsub`, `firestore` or `gcs`):
    /// it keeps its port, accepts connections, and answers nothing until the guard is
    /// dropped. Hold [`exclusive_emulators`] meanwhile, so no other test sees the outage.
    pub fn pause(&self, name: &str) -> Paused {
        let dir = self
            .dir
            .as_ref()
            .expect("pausing needs the emulators' state directory (DEVGEM_EMULATOR_DIR)");
        let pid = std::fs::read_to_string(dir.join(format!("{name}.pid")))
            .unwrap_or_else(|e| panic!("{name}.pid: {e}"))
            .trim()
            .to_string();
        signal_group("STOP", &pid);
        Paused { pgid: pid }
    }
}

fn signal_group(signal: &str, pgid: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pgid}")])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} -{pgid} failed");
}

/// An emulator stopped by [`Emulators::pause`]; continued (SIGCONT) when dropped, so a
/// failing test never leaves it frozen for the others.
pub struct Paused {
    pgid: String,
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal_group("CONT", &self.pgid);
    }
}

/// Tests that make an emulator unreachable hold this exclusively; every other test of the
/// process holds it shared, so an outage never hits a test that did not ask for it.
static GATE: RwLock<()> = RwLock::new(());

/// Held by a test that needs the emulators answering.
pub fn shared_emulators() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(|e| e.into_inner())
}

/// Held by a test that pauses an emulator.
pub fn exclusive_emulators() -> RwLockWriteGuard<'static, ()> {
    GATE.write().unwrap_or_else(|e| e.into_inner())
}
