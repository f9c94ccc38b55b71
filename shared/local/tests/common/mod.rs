//! Helpers shared by the integration tests: a log sink that keeps lines, plans, HTTP GET,
//! and waiting on a condition with a deadline (never sleeping for luck).

#![allow(dead_code)]

use devgem_plan::{BuildPlan, Language, Template};
use devgem_ports::LogSink;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keeps every line, and echoes it for `cargo test -- --nocapture`.
#[derive(Default)]
pub struct Lines(Mutex<Vec<String>>);

impl LogSink for Lines {
    fn line(&self, line: &str) {
        println!("  | {line}");
        self.0.lock().unwrap().push(line.to_string());
    }
}

impl Lines {
    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/apps")
        .join(name)
}

pub fn plan(language: Language, install: Option<&str>, start: &str) -> BuildPlan {
    // The native builder ignores the Dockerfile template; any family of the language will do.
    let template = match language {
        Language::Python => Template::Python,
        Language::Node => Template::Node,
        _ => Template::Static,
    };
    BuildPlan {
        install_command: install.map(Into::into),
        ..BuildPlan::new(language, template, start)
    }
}

/// `GET /` on `url` (`http://127.0.0.1:PORT`): the status code and the body.
pub fn get(url: &str) -> std::io::Result<(u16, String)> {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, answer))
}

/// Polls `condition` until it holds; panics with `what` after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn refuses(url: &str) -> bool {
    TcpStream::connect(url.trim_start_matches("http://")).is_err()
}

/// Whether process `pid` exists (and is not a zombie).
pub fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(") ").next().map(|r| !r.starts_with('Z')))
        .unwrap_or(false)
}
