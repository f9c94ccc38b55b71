//! Real git repositories served on loopback over git's smart HTTP protocol: `git http-backend`
//! run as a CGI program behind a small hyper server, so a test's `clone_url` is an
//! `http://127.0.0.1:PORT/NAME.git` URL that `git clone` and `git fetch SHA` use as they would
//! GitHub's. Every request's path is recorded. A private repository answers 401 (as GitHub
//! does) unless the request carries its token, as HTTP basic auth (any user name) or as a
//! bearer token.

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// A running git HTTP server for the bare repositories under its root.
pub struct GitServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    root: tempfile::TempDir,
    log: Arc<Mutex<Vec<Request>>>,
    /// The token each private repository (by name) requires.
    private: Arc<Mutex<HashMap<String, String>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    /// The `Authorization` header, as sent.
    pub authorization: Option<String>,
    pub status: u16,
}

/// Runs `git ARGS` in `dir` with a fixed identity, panicking with its output on failure, and
/// returns its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl GitServer {
    /// Serves the bare repositories under a new temporary folder on a free loopback port.
    pub fn start() -> Self {
        let root = tempfile::tempdir().expect("git server root");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the git server");
        listener.set_nonblocking(true).expect("nonblocking");
        let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let private = Arc::new(Mutex::new(HashMap::new()));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let (project_root, requests) = (root.path().to_path_buf(), log.clone());
        let tokens = private.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("git server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, peer)) = accepted else { continue };
                            let (root, log) = (project_root.clone(), requests.clone());
                            let tokens = tokens.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |req| {
                                    let (root, log) = (root.clone(), log.clone());
                                    let tokens = tokens.clone();
                                    async move {
                                        Ok::<_, hyper::Error>(
                                            serve(&root, &log, &tokens, peer, req).await,
                                        )
                                    }
                                });
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        Self {
            base_url,
            root,
            log,
            private,
            _shutdown: tx,
        }
    }

    /// Creates the empty bare repository `NAME.git`, readable only with `token`, and returns
    /// its clone URL.
    pub fn create_private(&self, name: &str, token: &str) -> String {
        let url = self.create(name);
        self.private
            .lock()
            .unwrap()
            .insert(name.to_string(), token.to_string());
        url
    }

    /// Creates the empty bare repository `NAME.git` and returns its clone URL.
    pub fn create(&self, name: &str) -> String {
        let bare = self.bare(name);
        git(
            self.root.path(),
            &["init", "-q", "--bare", bare.to_str().unwrap()],
        );
        // Fetching a commit by sha (what a deployment of an exact commit does) needs this with
        // protocol v0; v2 allows it anyway.
        git(&bare, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
        git(&bare, &["config", "http.receivepack", "true"]);
        self.clone_url(name)
    }

    /// `BASE/NAME.git`.
    pub fn clone_url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.base_url)
    }

    /// The bare repository's folder, to push to it directly with `git push PATH`.
    pub fn bare(&self, name: &str) -> PathBuf {
        self.root.path().join(format!("{name}.git"))
    }

    /// The paths of every request so far (`/shop.git/info/refs`, `/shop.git/git-upload-pack`).
    pub fn requests(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }

    /// Every request so far with its `Authorization` header and the status it got.
    pub fn requests_in_full(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

/// Whether `authorization` carries `token`: `Basic base64(USER:TOKEN)` or `Bearer TOKEN`.
fn carries(authorization: Option<&str>, token: &str) -> bool {
    let Some((kind, value)) = authorization.and_then(|a| a.trim().split_once(' ')) else {
        return false;
    };
    if kind.eq_ignore_ascii_case("bearer") {
        return value.trim() == token;
    }
    kind.eq_ignore_ascii_case("basic")
        && base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| pair.split_once(':').map(|(_, t)| t == token))
            .unwrap_or(false)
}

async fn serve(
    root: &Path,
    log: &Mutex<Vec<Request>>,
    private: &Mutex<HashMap<String, String>>,
    peer: std::net::SocketAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let repository = path
        .trim_start_matches('/')
        .split_once(".git")
        .map(|(name, _)| name.to_string())
        .unwrap_or_default();
    let required = private.lock().unwrap().get(&repository).cloned();
    let res = match required {
        Some(token) if !carries(authorization.as_deref(), &token) => hyper::Response::builder()
            .status(401)
            .header("www-authenticate", "Basic realm=\"GitHub\"")
            .body(Full::new(Bytes::from_static(b"authentication required")))
            .expect("a response"),
        _ => cgi(root, &path, peer, req).await,
    };
    log.lock().unwrap().push(Request {
        path,
        authorization,
        status: res.status().as_u16(),
    });
    res
}

async fn cgi(
    root: &Path,
    path: &str,
    peer: std::net::SocketAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", path)
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", peer.ip().to_string())
        .env("REMOTE_USER", "test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let failed = |why: String| {
        hyper::Response::builder()
            .status(500)
            .body(Full::new(Bytes::from(why)))
            .expect("a response")
    };
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return failed(format!("git http-backend did not start: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body).await;
    }
    let out = match child.wait_with_output().await {
        Ok(out) => out,
        Err(e) => return failed(format!("git http-backend failed: {e}")),
    };
    // CGI output: header lines, a blank line, the body.
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|at| (at, 2))
        });
    let Some((at, gap)) = split else {
        return failed(format!(
            "git http-backend wrote no headers: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    };
    let head = String::from_utf8_lossy(&out.stdout[..at]).into_owned();
    let mut builder = hyper::Response::builder().status(200);
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .unwrap_or(500);
            builder = builder.status(code);
        } else {
            builder = builder.header(name.trim(), value);
        }
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(&out.stdout[at + gap..])))
        .unwrap_or_else(|e| failed(format!("a bad CGI header: {e}")))
}
