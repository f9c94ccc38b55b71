//! Helpers for DevGem's black-box tests: a private DEVGEM_HOME per test, the real `devgem`
//! binary as a child process, a server started on a free port, and waiting on conditions
//! with deadlines (never sleeping for luck).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/apps")
        .join(name)
}

/// A private DevGem home; stops every app started under it when dropped.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // The tools DevGem installs for builds (uv) are shared by every test's home, as they
        // are by every deployment of one home: installed once per target folder, not per test.
        let tools = Path::new(env!("CARGO_TARGET_TMPDIR")).join("devgem-tools");
        std::fs::create_dir_all(&tools).expect("shared tools folder");
        std::os::unix::fs::symlink(&tools, dir.path().join("tools")).expect("link tools");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `devgem ARGS` with this home.
    pub fn devgem(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_devgem"));
        cmd.env("DEVGEM_HOME", self.path())
            .env_remove("DEVGEM_SERVER")
            .env_remove("FUNCTION_TARGET")
            .env_remove("DEVGEM_LISTEN")
            .env_remove("K_SERVICE")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.devgem().args(args).output().expect("run devgem")
    }

    /// Starts `devgem serve` on a free port. The tests deploy fixture folders by path, so
    /// the server allows paths on its disk unless `env` says `DEVGEM_ALLOW_LOCAL_SOURCES=0`.
    pub fn serve(&self, env: &[(&str, &str)]) -> Server {
        self.start_server(env, Stdio::inherit())
    }

    /// [`Home::serve`], with the server's own log (stderr) written to `log`.
    pub fn serve_logging_to(&self, env: &[(&str, &str)], log: &Path) -> Server {
        let file = std::fs::File::create(log).expect("create the server's log file");
        self.start_server(env, Stdio::from(file))
    }

    fn start_server(&self, env: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut cmd = self.devgem();
        cmd.arg("serve")
            .env("PORT", "0")
            .env("DEVGEM_ALLOW_LOCAL_SOURCES", "1")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start devgem serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("DevGem listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from devgem serve: {line:?}"))
            .to_string();
        Server { child, url }
    }

    /// Kills every app process group recorded under this home.
    fn stop_apps(&self) {
        let Ok(entries) = std::fs::read_dir(self.path().join("apps")) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("runtime.json")) else {
                continue;
            };
            let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if let Some(pgid) = record["pgid"].as_i64() {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pgid}")])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.stop_apps();
    }
}

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A blocking HTTP client for the tests.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// GET `url`, returning status and body, or None when nothing answers.
pub fn get(url: &str) -> Option<(u16, String)> {
    let res = http().get(url).send().ok()?;
    let status = res.status().as_u16();
    Some((status, res.text().unwrap_or_default()))
}

/// The last line of a `devgem deploy` run: `deployment ID STATUS URL`.
pub struct Outcome {
    pub id: String,
    pub status: String,
    pub url: String,
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

pub fn outcome(output: &Output) -> Outcome {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let parts: Vec<&str> = last.split_whitespace().collect();
    assert!(
        parts.len() == 4 && parts[0] == "deployment",
        "the last line should be `deployment ID STATUS URL`, got {last:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    Outcome {
        id: parts[1].to_string(),
        status: parts[2].to_string(),
        url: parts[3].to_string(),
        stdout,
        stderr,
        code: output.status.code(),
    }
}

/// Reads a deployment's SSE stream from `after`, returning the stored events (those with an
/// `id:`) as JSON. Stops after `max` events, or when the stream ends.
pub fn read_events(base: &str, id: &str, after: u64, max: usize) -> Vec<serde_json::Value> {
    let res = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("client")
        .get(format!("{base}/api/deployments/{id}/events"))
        .header("Last-Event-ID", after.to_string())
        .send()
        .expect("open the event stream");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut events = Vec::new();
    let mut data = String::new();
    let mut stored = false;
    for line in BufReader::new(res).lines() {
        let Ok(line) = line else { break };
        if let Some(d) = line.strip_prefix("data: ") {
            data.push_str(d);
        } else if line.starts_with("id: ") {
            stored = true;
        } else if line.is_empty() && !data.is_empty() {
            // A frame without an id is progress computed while a step ticks, not a stored event.
            if std::mem::take(&mut stored) {
                events.push(serde_json::from_str(&data).expect("event JSON"));
            }
            data.clear();
            if events.len() >= max {
                break;
            }
        }
    }
    events
}

/// Writes a small Node.js app with no dependencies whose build takes `build_secs`.
pub fn slow_build_app(dir: &Path, build_secs: u32) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        format!(
            r#"{{"name":"slow-build","version":"1.0.0","private":true,
  "scripts":{{"build":"sleep {build_secs} && mkdir -p dist && echo built > dist/stamp","start":"node server.js"}}}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("server.js"),
        r#"const http = require("http");
http.createServer((req, res) => res.end("Hello from slow-build\n"))
  .listen(process.env.PORT || 3000, "0.0.0.0", () => console.log("slow-build started"));
"#,
    )
    .unwrap();
}
