//! A loopback stand-in for the Google APIs that no emulator covers (Cloud Build, Cloud Run,
//! Secret Manager, Artifact Registry, Cloud Logging, Cloud Storage uploads) and for GitHub's REST
//! API. Each API is an [`Api`] that checks the documented request and answers with the
//! documented response shapes; the server records every request so a test can assert on
//! exactly what was sent.
//!
//! Tests that use it say so in their names (`..._on_the_standin`): only Google can answer
//! these APIs for real (or GitHub).

pub mod artifactregistry;
pub mod cloudbuild;
pub mod cloudrun;
pub mod gemini;
pub mod github;
pub mod logging;
pub mod oauth;
pub mod openai;
pub mod secretmanager;
pub mod storage;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded (`/v2/projects/p/locations/l/services/s:getIamPolicy`).
    pub path: String,
    /// The query parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// Header names in lowercase.
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
    /// The stand-in's own base URL, for answers that name URLs (a service's `uri`).
    pub base_url: String,
}

impl Request {
    /// The body as JSON (`Null` when it is empty or not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The path split on `/` after the leading one.
    pub fn segments(&self) -> Vec<&str> {
        self.path.trim_start_matches('/').split('/').collect()
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Response {
    pub fn json(status: u16, value: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(value.to_string()),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Bytes::from(body.into()),
        }
    }

    /// Google's error body: `{"error": {"code", "status", "message"}}`.
    pub fn google_error(code: u16, status: &str, message: &str) -> Self {
        Self::json(
            code,
            serde_json::json!({"error": {"code": code, "status": status, "message": message}}),
        )
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// One API of the stand-in. `handle` answers the requests that belong to it and returns
/// `None` for the others.
pub trait Api: Send + Sync {
    fn handle(&self, request: &Request) -> Option<Response>;
}

/// The running stand-in.
pub struct Standin {
    pub base_url: String,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Standin {
    /// Serves `apis` on a free loopback port (its own thread and runtime, so it works from
    /// sync and async tests alike). When `token` is set, a request without
    /// `Authorization: Bearer TOKEN` is answered 401, as Google does.
    pub fn start(token: Option<&str>, apis: Vec<Arc<dyn Api>>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let base_url = format!("http://{addr}");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::new(Shared {
            apis,
            token: token.map(str::to_string),
            log: log.clone(),
            base_url: base_url.clone(),
        });
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("stand-in runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let state = state.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |req| {
                                    let state = state.clone();
                                    async move { Ok::<_, hyper::Error>(state.serve(req).await) }
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
            addr,
            log,
            _shutdown: tx,
        }
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// The requests with `method` whose path contains `fragment`.
    pub fn requests_to(&self, method: &str, fragment: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(fragment))
            .collect()
    }
}

struct Shared {
    apis: Vec<Arc<dyn Api>>,
    token: Option<String>,
    log: Arc<Mutex<Vec<Request>>>,
    base_url: String,
}

impl Shared {
    async fn serve(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let raw_path = parts.uri.path();
        let path = form_urlencoded::parse(format!("p={}", raw_path.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| raw_path.to_string());
        let query = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let request = Request {
            method: parts.method.as_str().to_string(),
            path,
            query,
            headers,
            body,
            base_url: self.base_url.clone(),
        };
        self.log.lock().unwrap().push(request.clone());
        let response = self.answer(&request);
        let mut builder = hyper::Response::builder().status(response.status);
        for (name, value) in &response.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(response.body))
            .expect("a valid response")
    }

    fn answer(&self, request: &Request) -> Response {
        // The apps a fake Cloud Run serves are public URLs: no token there.
        let is_app = request.path.starts_with("/apps/");
        if let (Some(token), false) = (&self.token, is_app) {
            let expected = format!("Bearer {token}");
            if request.header("authorization") != Some(expected.as_str()) {
                return Response::google_error(
                    401,
                    "UNAUTHENTICATED",
                    "Request is missing required authentication credential.",
                );
            }
        }
        self.apis
            .iter()
            .find_map(|api| api.handle(request))
            .unwrap_or_else(|| {
                Response::google_error(
                    404,
                    "NOT_FOUND",
                    &format!(
                        "the stand-in has no route for {} {}",
                        request.method, request.path
                    ),
                )
            })
    }
}

/// `/v2/projects/P/locations/L/...` split into its project, location and the rest.
pub fn located<'a>(
    segments: &'a [&'a str],
    version: &str,
) -> Option<(&'a str, &'a str, &'a [&'a str])> {
    match segments {
        [v, "projects", project, "locations", location, rest @ ..] if *v == version => {
            Some((project, location, rest))
        }
        _ => None,
    }
}
