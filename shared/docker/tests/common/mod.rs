//! Helpers for the tests on a real Docker engine: finding the engine (a test that needs it
//! fails under CI=true when none answers), fixtures analysed and rendered as the analyze stage
//! does, builds and releases through the ports, HTTP GET.

#![allow(dead_code)]

use devgem_docker::{DockerBuilder, DockerRuntime, Engine};
use devgem_domain::{Artifact, DeploymentId, EnvVarName, ImageRef, ServiceName};
use devgem_embedded::{FileSecrets, FolderObjectStore};
use devgem_plan::BuildPlan;
use devgem_ports::{
    BuildRequest, BuildSource, Builder, LogSink, ObjectStore, ReleaseSpec, SecretEnv, SecretValue,
    Secrets,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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

/// The engine at DOCKER_HOST, or `None` (with the reason printed) where none answers and this
/// is not CI. Under CI=true a missing engine is a failure: `.ci/run` starts one.
pub async fn engine() -> Option<Engine> {
    let engine = Engine::from_env();
    if engine.answers(Duration::from_secs(3)).await {
        return Some(engine);
    }
    let reason = format!(
        "no Docker engine answers at {} (run `bash scripts/docker-engine.sh` as root)",
        engine.host()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/apps")
        .join(name)
}

/// A copy of fixture `name` in a temporary folder, to change it as a user would.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The object store and secrets the tests of one binary share.
struct Stores {
    dir: tempfile::TempDir,
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
            dir,
        }
    })
}

pub fn builder(engine: &Engine) -> DockerBuilder {
    DockerBuilder::new(
        engine.clone(),
        stores().objects.clone(),
        stores().dir.path().join("work"),
    )
}

pub fn runtime(engine: &Engine) -> DockerRuntime {
    DockerRuntime::new(engine.clone(), stores().secrets.clone())
}

/// The plan, Dockerfile and .dockerignore the analyzer makes for `dir`.
pub fn analysed(dir: &Path) -> (BuildPlan, String, String) {
    let analysis = devgem_analyzer::analyze(dir);
    let plan = devgem_analyzer::plan(&analysis).expect("the fixture has a plan");
    let dockerfile = devgem_analyzer::render_dockerfile(&plan);
    let dockerignore = devgem_analyzer::render_dockerignore(&plan);
    (plan, dockerfile, dockerignore)
}

/// A build request for `dir` (packed into the shared object store), as the build stage makes
/// it: the deployment, repository and commit as labels.
pub async fn request(
    id: &DeploymentId,
    service: &str,
    dir: &Path,
    plan: BuildPlan,
    dockerfile: String,
    dockerignore: String,
) -> BuildRequest {
    let key = format!("deployments/{id}/source.tar.gz");
    let packed = devgem_archive::pack(dir).unwrap();
    stores().objects.put(&key, packed.into()).await.unwrap();
    let service_name = ServiceName::derive_from(service);
    BuildRequest {
        deployment_id: id.clone(),
        image: ImageRef::for_deployment("devgem.local", &service_name, id).unwrap(),
        service_name,
        source: BuildSource {
            archive_key: key,
            git: None,
        },
        plan,
        dockerfile,
        dockerignore,
        labels: BTreeMap::from([
            ("org.devgem.deployment".to_string(), id.to_string()),
            (
                "org.devgem.repository".to_string(),
                dir.display().to_string(),
            ),
        ]),
    }
}

/// Builds `dir` as analysed; the artifact, the build's output and how long it took.
pub async fn build_dir(
    engine: &Engine,
    id: &DeploymentId,
    service: &str,
    dir: &Path,
) -> (Artifact, Lines, Duration, BuildPlan) {
    let (plan, dockerfile, dockerignore) = analysed(dir);
    let request = request(id, service, dir, plan.clone(), dockerfile, dockerignore).await;
    let lines = Lines::default();
    let started = Instant::now();
    let artifact = builder(engine)
        .build(&request, &lines, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("the build of {service} failed: {e:?}"));
    (artifact, lines, started.elapsed(), plan)
}

/// The release of `artifact`; `env`'s values go to the shared secrets and the spec names them
/// by reference, as the deploy stage does.
pub async fn release(
    id: &DeploymentId,
    service: &str,
    artifact: Artifact,
    plan: &BuildPlan,
    env: Vec<(&str, &str)>,
) -> ReleaseSpec {
    let mut secret_env = Vec::new();
    for (name, value) in env {
        let key = format!("deployments/{id}/env/{name}");
        stores()
            .secrets
            .put(&key, &SecretValue::new(value))
            .await
            .unwrap();
        secret_env.push(SecretEnv {
            name: EnvVarName::parse(name).unwrap(),
            secret: key,
            version: "latest".into(),
        });
    }
    ReleaseSpec::from_plan(
        id.clone(),
        ServiceName::derive_from(service),
        artifact,
        plan,
        secret_env,
        BTreeMap::new(),
    )
}

/// `GET /` on `url` (`http://127.0.0.1:PORT`): the status code and the whole answer.
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

/// Whether `url` answers no more (connection refused or closed without an answer).
pub fn gone(url: &str) -> bool {
    !matches!(get(url), Ok((status, _)) if status > 0)
}

/// The image's id, or an empty string for a native build.
pub fn image_id(artifact: &Artifact) -> String {
    match artifact {
        Artifact::ContainerImage { digest, .. } => digest.clone(),
        Artifact::LocalBuild { .. } => String::new(),
    }
}

/// Removes every container DevGem ran for `service` (left by an earlier run of a test, or by
/// this one), so that each run starts from none and leaves none.
pub async fn clear_service(engine: &Engine, service: &str) {
    use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
    let docker = engine.client().await.unwrap();
    let filters = std::collections::HashMap::from([(
        "label",
        vec![format!("{}={service}", devgem_docker::labels::SERVICE)],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    for container in docker.list_containers(Some(options)).await.unwrap() {
        let id = container.id.unwrap();
        let force = RemoveContainerOptionsBuilder::default().force(true).build();
        docker.remove_container(&id, Some(force)).await.unwrap();
    }
}
