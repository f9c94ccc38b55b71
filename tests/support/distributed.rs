//! Helpers for the distributed-mode black-box tests: the real gcloud emulators (devgem-testing
//! starts them once per test binary and stops them when the binary exits), and a "cluster"
//! of four `devgem serve` processes (chat, analyze, build-trigger, deploy), each on its own
//! port, wired together by `devgem bootstrap` under a topic prefix unique to the test.

#![allow(dead_code)]

use crate::support::{Home, Server, http, read_events, wait_for};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub use devgem_testing::{Emulators, emulators, exclusive_emulators, shared_emulators};

/// The Google adapters' configuration for the emulators and topic `prefix`.
pub fn gcp_config(emulators: &Emulators, prefix: &str) -> devgem_gcp::GcpConfig {
    let mut config = devgem_gcp::GcpConfig::from_lookup(|k| emulators.vars().get(k).cloned())
        .expect("emulator config");
    config.topic_prefix = prefix.to_string();
    config
}

/// A name no other test (or earlier run against the same emulators) uses.
pub fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "t{}x{}x{}-{name}-",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// The functions, in pipeline order, with the topic each consumes.
pub const STAGES: [(&str, &str); 3] = [
    ("analyze", "analyze"),
    ("build-trigger", "build"),
    ("deploy", "deploy"),
];

/// Four `devgem serve` processes sharing one DEVGEM_HOME (secrets, builds, apps are local)
/// and one topic prefix, plus the push subscriptions between them.
pub struct Cluster {
    // Fields drop in order: the servers stop before the home stops the apps.
    pub chat: Server,
    pub stages: HashMap<&'static str, Server>,
    pub env: Vec<(String, String)>,
    pub prefix: String,
    pub emulators: &'static Emulators,
    pub home: Home,
}

pub struct ClusterOptions {
    pub max_attempts: u32,
    pub rust_log: String,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            rust_log: std::env::var("DEVGEM_TEST_LOG")
                .unwrap_or_else(|_| "warn,firestore=error".into()),
        }
    }
}

impl Cluster {
    pub fn start(emulators: &'static Emulators, name: &str) -> Self {
        Self::start_with(emulators, name, ClusterOptions::default())
    }

    pub fn start_with(emulators: &'static Emulators, name: &str, options: ClusterOptions) -> Self {
        let home = Home::new();
        let prefix = unique(name);
        let mut env: Vec<(String, String)> = emulators
            .vars()
            .iter()
            .filter(|(k, _)| *k != "DEVGEM_EMULATOR_DIR")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push(("DEVGEM_TOPIC_PREFIX".into(), prefix.clone()));
        env.push(("RUST_LOG".into(), options.rust_log.clone()));
        let mut cluster = Self {
            chat: serve(&home, &env, "chat", None),
            stages: HashMap::new(),
            env,
            prefix,
            emulators,
            home,
        };
        for (function, _) in STAGES {
            let server = serve(&cluster.home, &cluster.env, function, None);
            cluster.stages.insert(function, server);
        }
        let mut cmd = cluster.home.devgem();
        cmd.arg("bootstrap");
        for (function, _) in STAGES {
            cmd.args([
                "--endpoint",
                &format!("{function}={}", cluster.stages[function].url),
            ]);
        }
        cmd.args(["--dead-letter", &cluster.chat.url])
            .args(["--max-attempts", &options.max_attempts.to_string()]);
        for (k, v) in &cluster.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run devgem bootstrap");
        assert!(
            out.status.success(),
            "devgem bootstrap failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    pub fn api(&self) -> &str {
        &self.chat.url
    }

    /// Kills (SIGKILL) the process hosting `function`.
    pub fn kill(&mut self, function: &str) {
        self.stages
            .get_mut(function)
            .unwrap_or_else(|| panic!("no function {function}"))
            .kill();
    }

    /// Starts `function` again on the port it had, so its push subscription reaches it.
    pub fn restart(&mut self, function: &'static str) {
        let old = self.stages.remove(function).expect("known function");
        let port: u16 = old
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in url");
        drop(old);
        let server = serve(&self.home, &self.env, function, Some(port));
        self.stages.insert(function, server);
    }

    /// POST /api/deployments on the chat process; returns the new id.
    pub fn create(&self, source: &str) -> String {
        let res = http()
            .post(format!("{}/api/deployments", self.api()))
            .json(&json!({ "source": source }))
            .send()
            .expect("POST /api/deployments");
        let status = res.status().as_u16();
        let body: Value = res.json().unwrap_or(Value::Null);
        assert_eq!(
            status, 202,
            "POST /api/deployments answered {status}: {body}"
        );
        assert_eq!(body["status"], "queued", "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// GET /api/deployments/{id}, or None when it does not answer 200.
    pub fn deployment(&self, id: &str) -> Option<Value> {
        let res = http()
            .get(format!("{}/api/deployments/{id}", self.api()))
            .send()
            .ok()?;
        (res.status().as_u16() == 200)
            .then(|| res.json().ok())
            .flatten()
    }

    pub fn wait_status(&self, id: &str, wanted: &[&str], limit: Duration) -> Value {
        wait_for(
            &format!("deployment {id} to be one of {wanted:?}"),
            limit,
            || {
                self.deployment(id)
                    .filter(|d| wanted.contains(&d["status"].as_str().unwrap_or("")))
            },
        )
    }

    /// Every event of a finished deployment, from the chat process's SSE stream.
    pub fn all_events(&self, id: &str) -> Vec<Value> {
        read_events(self.api(), id, 0, usize::MAX)
    }

    /// Publishes `{"deployment_id": id, "stage": stage}` to the stage's topic through the
    /// emulator's REST API, as a duplicate (or stray) delivery would arrive.
    pub fn publish_raw(&self, stage: &str, id: &str) {
        publish_raw(self.emulators, &self.prefix, stage, id);
    }
}

pub fn publish_raw(emulators: &Emulators, prefix: &str, stage: &str, id: &str) {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .encode(json!({ "deployment_id": id, "stage": stage }).to_string());
    let url = format!(
        "http://{}/v1/projects/{}/topics/{prefix}{stage}:publish",
        emulators.var("PUBSUB_EMULATOR_HOST"),
        emulators.project()
    );
    let res = http()
        .post(&url)
        .json(&json!({ "messages": [{ "data": data }] }))
        .send()
        .expect("publish through the emulator's REST API");
    assert!(
        res.status().is_success(),
        "publish to {url} answered {}",
        res.status()
    );
}

/// `devgem serve` hosting `function` (distributed mode), on `port` or a free one.
fn serve(home: &Home, env: &[(String, String)], function: &str, port: Option<u16>) -> Server {
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.push(("FUNCTION_TARGET", function));
    let port = port.map(|p| p.to_string());
    if let Some(p) = &port {
        vars.push(("PORT", p));
    }
    let server = home.serve(&vars);
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "unexpected url {}",
        server.url
    );
    server
}

/// Events of `events` with `kind` and `message`.
pub fn count(events: &[Value], kind: &str, message: &str) -> usize {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["message"] == message)
        .count()
}

/// Asserts the seqs of `events` are exactly 1..=n.
pub fn assert_contiguous(events: &[Value]) {
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "event seqs are not 1..n");
}

/// Checks each stage ran exactly once: one "Starting the X stage" event per stage, no resumes.
pub fn assert_each_stage_once(events: &[Value]) {
    for (_, stage) in STAGES {
        let starts = events
            .iter()
            .filter(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m == format!("Starting the {stage} stage"))
            })
            .count();
        assert_eq!(starts, 1, "the {stage} stage started {starts} times");
    }
}

/// Whether the process group `pgid` still has a member.
pub fn group_alive(pgid: i64) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Asserts the user saw the whole story of a live deployment: every one of the seven steps
/// completed exactly once (a resumed stage may start a step again, never finish it twice),
/// and one final "live" event that ends the stream. A progress event lost to an outage
/// shows up here as a missing step.
pub fn assert_complete_story(id: &str, events: &[Value]) {
    for step in devgem_domain::Step::ALL {
        let name = serde_json::to_value(step).unwrap();
        let started = events
            .iter()
            .filter(|e| e["kind"] == "step_started" && e["step"] == name)
            .count();
        let completed = events
            .iter()
            .filter(|e| e["kind"] == "step_completed" && e["step"] == name)
            .count();
        assert!(started >= 1, "{id}: step {name} never started: {events:#?}");
        assert_eq!(
            completed, 1,
            "{id}: step {name} completed {completed} times: {events:#?}"
        );
    }
    let live = events.iter().filter(|e| e["status"] == "live").count();
    assert_eq!(live, 1, "{id}: live announced {live} times");
    let last = events.last().expect("events");
    assert_eq!(
        last["status"], "live",
        "{id}: the last event is not the final one: {last}"
    );
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.chat.kill();
        for server in self.stages.values_mut() {
            server.kill();
        }
        // A stage process killed mid-stage leaves its children (a build in its own process
        // group) running: kill every process group working under this home.
        sweep(self.home.path());
    }
}

/// Kills (SIGKILL) the process group of every process whose working directory is under `dir`.
pub fn sweep(dir: &std::path::Path) {
    let Ok(dir) = dir.canonicalize() else { return };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        if !cwd.starts_with(&dir) {
            continue;
        }
        // Field 5 of /proc/PID/stat is the process group (after the parenthesised name).
        let pgid = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.to_string();
                rest.split_whitespace().nth(2)?.parse::<i32>().ok()
            });
        let target = match pgid {
            // Never our own group (the test binary's).
            Some(g) if g > 1 && g != own_pgid() => format!("-{g}"),
            _ => pid.to_string(),
        };
        let _ = Command::new("kill")
            .args(["-KILL", "--", &target])
            .stderr(Stdio::null())
            .status();
    }
}

fn own_pgid() -> i32 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            rest.split_whitespace().nth(2)?.parse::<i32>().ok()
        })
        .unwrap_or(0)
}
