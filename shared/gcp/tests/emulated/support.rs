//! The emulators (from devgem-testing, shared with the distributed tests) as the Google
//! adapters' configuration, a local push endpoint, and small helpers.

use devgem_domain::{Deployment, DeploymentId, NewDeployment, ServiceName, Source};
use devgem_gcp::GcpConfig;
pub use devgem_testing::{Emulators, emulators};
use std::collections::HashMap;

/// The Google adapters' configuration for the emulators.
pub fn config(emulators: &Emulators) -> GcpConfig {
    GcpConfig::from_lookup(|k| emulators.vars().get(k).cloned()).expect("emulator config")
}

/// A config whose topic prefix is unique to the calling test, so tests never share topics.
pub fn unique_config(emulators: &Emulators, test: &str) -> GcpConfig {
    let mut config = config(emulators);
    config.topic_prefix = format!("t{}-{test}-", short_uid());
    config
}

pub fn short_uid() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

pub fn deployment(owner: &str) -> Deployment {
    Deployment::new(
        DeploymentId::from_uuid(uuid::Uuid::now_v7()),
        NewDeployment {
            owner: owner.to_string(),
            source: Source {
                location: "https://github.com/acme/shop".into(),
                archive: None,
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

/// `let Some(emu) = require_emulators!() else { return };` (devgem-testing says SKIPPED, or
/// fails the test under CI, when the emulators are missing).
#[macro_export]
macro_rules! require_emulators {
    () => {
        $crate::support::emulators()
    };
}

/// One push request as the local endpoint received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub authorization: Option<String>,
    pub body: bytes::Bytes,
    pub at: std::time::Instant,
}

/// A local HTTP endpoint standing in for the stage functions: records every push and
/// answers 500 to the first `fail` deliveries of chosen deployments, 204 otherwise.
pub struct PushServer {
    pub url: String,
    pub rx: tokio::sync::mpsc::UnboundedReceiver<Received>,
    pub fail: std::sync::Arc<std::sync::Mutex<HashMap<String, u32>>>,
}

impl PushServer {
    pub async fn start() -> Self {
        use http_body_util::BodyExt;
        use hyper_util::rt::TokioIo;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let fail: std::sync::Arc<std::sync::Mutex<HashMap<String, u32>>> = Default::default();
        let fail_in = fail.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                let fail = fail_in.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let tx = tx.clone();
                            let fail = fail.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let authorization = req
                                    .headers()
                                    .get("authorization")
                                    .and_then(|v| v.to_str().ok())
                                    .map(String::from);
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let received = Received {
                                    path,
                                    authorization,
                                    body: body.clone(),
                                    at: std::time::Instant::now(),
                                };
                                let _ = tx.send(received);
                                let mut status = 204;
                                if let Ok(d) = devgem_gcp::decode_push(&body) {
                                    let mut fail = fail.lock().unwrap();
                                    if let Some(n) = fail.get_mut(d.message.deployment_id.as_str())
                                        && *n > 0
                                    {
                                        *n -= 1;
                                        status = 500;
                                    }
                                }
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(http_body_util::Full::new(bytes::Bytes::new()))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { url, rx, fail }
    }

    /// The next push, or `None` after `secs` seconds without one.
    pub async fn next(&mut self, secs: u64) -> Option<Received> {
        tokio::time::timeout(std::time::Duration::from_secs(secs), self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    pub fn fail_first(&self, deployment: &DeploymentId, times: u32) {
        self.fail
            .lock()
            .unwrap()
            .insert(deployment.to_string(), times);
    }
}
