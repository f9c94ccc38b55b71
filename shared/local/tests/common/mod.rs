//! Helpers shared by the integration tests: a log sink that keeps lines, plans, HTTP GET,
//! and waiting on a condition with a deadline (never sleeping for luck).

#![allow(dead_code)]

use devgem_domain::{Artifact, DeploymentId, EnvVarName, ImageRef, ServiceName};
use devgem_embedded::{FileSecrets, FolderObjectStore};
use devgem_plan::{BuildPlan, Language, Template};
use devgem_ports::{
    BuildRequest, BuildSource, LogSink, ObjectStore, ReleaseSpec, SecretEnv, SecretValue, Secrets,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
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

/// The object store and secrets every test of a process shares: sources are packed into the
/// one, the user's variables kept in the other, as the stages do.
struct Stores {
    _dir: tempfile::TempDir,
    objects: Arc<FolderObjectStore>,
    secrets: Arc<FileSecrets>,
}

fn stores() -> &'static Stores {
    static STORES: OnceLock<Stores> = OnceLock::new();
    STORES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        Stores {
            objects: Arc::new(FolderObjectStore::new(dir.path().join("objects"))),
            secrets: Arc::new(FileSecrets::new(dir.path().join("secrets.json"))),
            _dir: dir,
        }
    })
}

pub fn objects() -> Arc<dyn ObjectStore> {
    stores().objects.clone()
}

pub fn secrets() -> Arc<dyn Secrets> {
    stores().secrets.clone()
}

/// A build request for the folder `source`, packed into the shared object store.
pub async fn build_request_for(
    id: &DeploymentId,
    service: &str,
    source: &Path,
    plan: BuildPlan,
) -> BuildRequest {
    let key = format!("deployments/{id}/source.tar.gz");
    let packed = devgem_archive::pack(source).unwrap();
    stores().objects.put(&key, packed.into()).await.unwrap();
    let service_name = ServiceName::derive_from(service);
    BuildRequest {
        deployment_id: id.clone(),
        image: ImageRef::for_deployment("devgem.local/test", &service_name, id).unwrap(),
        service_name,
        source: BuildSource {
            archive_key: key,
            git: None,
        },
        plan,
        dockerfile: String::new(),
        dockerignore: String::new(),
        labels: BTreeMap::new(),
    }
}

/// The release of `artifact`; `env`'s values go to the shared secrets and the spec names
/// them by reference, as the deploy stage does.
pub async fn release(
    id: &DeploymentId,
    service: &str,
    artifact: Artifact,
    plan: BuildPlan,
    env: Vec<(String, SecretValue)>,
) -> ReleaseSpec {
    let mut secret_env = Vec::new();
    for (name, value) in env {
        let key = format!("deployments/{id}/env/{name}");
        stores().secrets.put(&key, &value).await.unwrap();
        secret_env.push(SecretEnv {
            name: EnvVarName::parse(&name).unwrap(),
            secret: key,
            version: "latest".into(),
        });
    }
    ReleaseSpec::from_plan(
        id.clone(),
        ServiceName::derive_from(service),
        artifact,
        &plan,
        secret_env,
        BTreeMap::new(),
    )
}

/// A local build artifact in `dir`.
pub fn local_build(dir: impl Into<PathBuf>) -> Artifact {
    Artifact::LocalBuild { dir: dir.into() }
}
