//! The Cloud Build builder against the loopback stand-in of Cloud Build, Artifact Registry,
//! Cloud Storage and Cloud Logging (only Google can answer these APIs for real): every request
//! is checked against the documented contract, and the tests look at what a user sees (the
//! image digest, the build's log, the failure message) and at what Google received.

use devgem_domain::{DeploymentId, ImageRef, ServiceName};
use devgem_embedded::FolderObjectStore;
use devgem_gcp_run::call::RetryPolicy;
use devgem_gcp_run::cloudbuild::{CloudBuildBuilder, CloudBuildSettings, PushOutcome};
use devgem_gcp_run::{CloudConfig, Endpoints};
use devgem_plan::{BuildPlan, Language, Template};
use devgem_ports::{
    Artifact, BuildError, BuildRequest, BuildSource, Builder, CancellationToken, GitRevision,
    LogSink, ObjectStore, SecretValue,
};
use devgem_testing::standin::artifactregistry::ArtifactRegistryStandin;
use devgem_testing::standin::cloudbuild::{
    CloudBuildStandin, Faults, Outcome, Progress, SUCCESS_LOG, permission_denied, too_many_requests,
};
use devgem_testing::standin::storage::StorageStandin;
use devgem_testing::standin::{Api, Standin};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "ya29.standin-access-token";
const PROJECT: &str = "acme";
const BUCKET: &str = "acme_cloudbuild";

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl LogSink for Lines {
    fn line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

impl Lines {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct Setup {
    standin: Standin,
    cloudbuild: Arc<CloudBuildStandin>,
    registry: Arc<ArtifactRegistryStandin>,
    storage: Arc<StorageStandin>,
    faults: Arc<Faults>,
    builder: Arc<CloudBuildBuilder>,
    objects: Arc<FolderObjectStore>,
    _dir: tempfile::TempDir,
}

fn settings() -> CloudBuildSettings {
    CloudBuildSettings {
        poll_interval: Duration::from_millis(20),
        retry: RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
        },
        ..CloudBuildSettings::default()
    }
}

async fn setup_with(
    cloudbuild: CloudBuildStandin,
    registry: ArtifactRegistryStandin,
    settings: CloudBuildSettings,
) -> Setup {
    let storage = Arc::new(StorageStandin::new([BUCKET]));
    let cloudbuild = Arc::new(cloudbuild.with_storage(storage.clone()));
    let registry = Arc::new(registry);
    let faults = Arc::new(Faults::new());
    let standin = Standin::start(
        Some(TOKEN),
        vec![
            faults.clone() as Arc<dyn Api>,
            registry.clone(),
            storage.clone(),
            cloudbuild.clone(),
        ],
    );
    let mut config = CloudConfig::new(PROJECT);
    config.endpoints = Endpoints::all_at(&standin.base_url);
    config.access_token = Some(SecretValue::new(TOKEN));
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(FolderObjectStore::new(dir.path().join("objects")));
    let builder = CloudBuildBuilder::with_settings(&config, objects.clone(), settings)
        .await
        .expect("the builder");
    Setup {
        standin,
        cloudbuild,
        registry,
        storage,
        faults,
        builder: Arc::new(builder),
        objects,
        _dir: dir,
    }
}

async fn setup(cloudbuild: CloudBuildStandin) -> Setup {
    setup_with(cloudbuild, ArtifactRegistryStandin::new(), settings()).await
}

/// A builder whose server has a GitHub token in Secret Manager.
async fn setup_with_server_token() -> Setup {
    let mut settings = settings();
    settings.token_secret = Some(format!(
        "projects/{PROJECT}/secrets/devgem-github/versions/latest"
    ));
    setup_with(
        CloudBuildStandin::new(),
        ArtifactRegistryStandin::new(),
        settings,
    )
    .await
}

/// The commit the git-source tests build.
const COMMIT: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";

/// A small Node app, packed into the object store as the fetch stage leaves it.
async fn request(setup: &Setup, git: Option<GitRevision>) -> (BuildRequest, Vec<u8>) {
    let app = setup._dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"shop","scripts":{"start":"node server.js"}}"#,
    )
    .unwrap();
    std::fs::write(
        app.join("server.js"),
        "require('http').createServer((q, s) => s.end('hi')).listen(process.env.PORT)\n",
    )
    .unwrap();
    let archive = devgem_archive::pack(&app).unwrap();
    let id = DeploymentId::parse("d-0193a1b2c3d4").unwrap();
    let key = format!("deployments/{id}/source.tar.gz");
    setup
        .objects
        .put(&key, archive.clone().into())
        .await
        .unwrap();
    let service_name = ServiceName::derive_from("shop");
    let request = BuildRequest {
        image: ImageRef::for_deployment(
            &format!("us-central1-docker.pkg.dev/{PROJECT}/devgem"),
            &service_name,
            &id,
        )
        .unwrap(),
        deployment_id: id.clone(),
        service_name,
        source: BuildSource {
            archive_key: key,
            git,
        },
        plan: BuildPlan::new(Language::Node, Template::Node, "node server.js"),
        dockerfile: "FROM node:22-slim\nWORKDIR /app\nCOPY . .\nCMD [\"node\", \"server.js\"]\n"
            .into(),
        dockerignore: ".git\nnode_modules\n".into(),
        labels: BTreeMap::from([("org.devgem.deployment".to_string(), id.to_string())]),
    };
    (request, archive)
}

fn created_builds(setup: &Setup) -> Vec<serde_json::Value> {
    setup
        .standin
        .requests_to(
            "POST",
            &format!("/v1/projects/{PROJECT}/locations/us-central1/builds"),
        )
        .into_iter()
        .filter(|r| !r.path.ends_with(":cancel"))
        .map(|r| r.json())
        .collect()
}

/// Waits until `condition` holds, or fails after 10 s.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_uploaded_source_is_built_and_its_digest_returned_on_the_standin() {
    let setup = setup(CloudBuildStandin::new().with_progress(Progress::Polls(2))).await;
    let (request, archive) = request(&setup, None).await;
    let log = Lines::default();

    let artifact = setup
        .builder
        .build(&request, &log, &CancellationToken::new())
        .await
        .expect("the build succeeds");

    let Artifact::ContainerImage { reference, digest } = artifact else {
        panic!("an image");
    };
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert!(
        reference.starts_with(&format!(
            "us-central1-docker.pkg.dev/{PROJECT}/devgem/shop:"
        )),
        "{reference}"
    );
    assert_eq!(
        devgem_gcp_run::service::image_by_digest(&Artifact::ContainerImage {
            reference: reference.clone(),
            digest: digest.clone()
        })
        .unwrap(),
        format!("us-central1-docker.pkg.dev/{PROJECT}/devgem/shop@{digest}")
    );
    // The archive went to the build bucket whole, and the build names its generation.
    let objects = setup.storage.objects();
    assert_eq!(objects.len(), 1);
    let (bucket, object, generation) = &objects[0];
    assert_eq!(bucket, BUCKET);
    assert!(
        object.starts_with("source/") && object.ends_with(".d-0193a1b2c3d4.tgz"),
        "{object}"
    );
    assert_eq!(setup.storage.object(bucket, object).unwrap().1, archive);
    let builds = created_builds(&setup);
    assert_eq!(builds.len(), 1);
    assert_eq!(
        builds[0]["source"]["storageSource"],
        serde_json::json!({"bucket": BUCKET, "object": object, "generation": generation.to_string()})
    );
    assert_eq!(
        setup.registry.repositories(),
        vec![format!(
            "projects/{PROJECT}/locations/us-central1/repositories/devgem"
        )]
    );
    // The build's log reached the user once, though it was read at every poll.
    let lines = log.all();
    for line in SUCCESS_LOG {
        assert_eq!(
            lines.iter().filter(|l| *l == line).count(),
            1,
            "{line}: {lines:#?}"
        );
    }
    // Every request carried the bearer token (the stand-in answers 401 otherwise).
    let requests = setup.standin.requests();
    assert!(requests.len() >= 6, "{}", requests.len());
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{} {}",
            r.method,
            r.path
        );
    }
}

#[tokio::test]
async fn a_git_source_is_fetched_by_cloud_build_with_no_token_in_the_request_on_the_standin() {
    let setup = setup_with_server_token().await;
    let commit = COMMIT;
    let (request, _) = request(
        &setup,
        Some(GitRevision {
            url: "https://github.com/octo/shop.git".into(),
            commit: commit.into(),
            credential: None,
        }),
    )
    .await;

    let artifact = setup
        .builder
        .build(&request, &Lines::default(), &CancellationToken::new())
        .await
        .expect("the build succeeds");

    assert!(artifact.to_string().contains("/devgem/shop:"), "{artifact}");
    assert!(artifact.to_string().contains("@sha256:"), "{artifact}");
    assert!(
        setup.storage.objects().is_empty(),
        "a git source is not uploaded"
    );
    let build = &created_builds(&setup)[0];
    assert!(build["source"].is_null());
    let fetch = &build["steps"][0];
    assert_eq!(fetch["id"], "fetch");
    assert_eq!(fetch["secretEnv"], serde_json::json!(["GITHUB_TOKEN"]));
    let script = fetch["args"][1].as_str().unwrap();
    assert!(script.contains("github.com/octo/shop.git"), "{script}");
    assert!(
        script.contains("--depth 1") && script.contains(commit),
        "{script}"
    );
    assert!(
        script.contains("$$GITHUB_TOKEN"),
        "the shell reads the secret: {script}"
    );
    assert_eq!(
        build["images"][0],
        format!("us-central1-docker.pkg.dev/{PROJECT}/devgem/shop:{commit}")
    );
    // No credential travels in any body or query: only in the Authorization header.
    for r in setup.standin.requests() {
        let body = String::from_utf8_lossy(&r.body);
        assert!(!body.contains(TOKEN) && !format!("{:?}", r.query).contains(TOKEN));
        assert!(!body.contains("x-access-token:ghp"), "{body}");
    }
}

#[tokio::test]
async fn a_git_source_is_fetched_with_its_owners_token_from_secret_manager_on_the_standin() {
    let setup = setup_with_server_token().await;
    let commit = COMMIT;
    let (request, _) = request(
        &setup,
        Some(GitRevision {
            url: "https://github.com/octo/private-shop.git".into(),
            commit: commit.into(),
            credential: Some("accounts/ada/github-token".into()),
        }),
    )
    .await;
    setup
        .builder
        .build(&request, &Lines::default(), &CancellationToken::new())
        .await
        .expect("the build succeeds");
    let build = &created_builds(&setup)[0];
    // The secret the Secret Manager secrets port keeps the owner's token in, not the server's.
    assert_eq!(
        build["availableSecrets"]["secretManager"],
        serde_json::json!([{
            "versionName": format!(
                "projects/{PROJECT}/secrets/devgem-accounts-ada-github-token/versions/latest"
            ),
            "env": "GITHUB_TOKEN",
        }])
    );
    assert_eq!(
        build["steps"][0]["secretEnv"],
        serde_json::json!(["GITHUB_TOKEN"])
    );
}

#[tokio::test]
async fn a_source_on_another_host_is_fetched_without_any_github_token_on_the_standin() {
    let setup = setup_with_server_token().await;
    let commit = COMMIT;
    // Neither the owner's token nor the server's may reach gitlab.com.
    let (request, _) = request(
        &setup,
        Some(GitRevision {
            url: "https://gitlab.com/octo/shop.git".into(),
            commit: commit.into(),
            credential: Some("accounts/ada/github-token".into()),
        }),
    )
    .await;
    setup
        .builder
        .build(&request, &Lines::default(), &CancellationToken::new())
        .await
        .expect("the build succeeds");
    let build = &created_builds(&setup)[0];
    assert!(build["availableSecrets"].is_null(), "{build}");
    let fetch = &build["steps"][0];
    assert!(fetch["secretEnv"].is_null(), "{fetch}");
    let script = fetch["args"][1].as_str().unwrap();
    assert!(
        script.contains("'https://gitlab.com/octo/shop.git'"),
        "{script}"
    );
    assert!(
        !script.contains("GITHUB_TOKEN") && !script.contains("x-access-token"),
        "{script}"
    );
}

#[tokio::test]
async fn an_existing_repository_409_is_carried_on_from_on_the_standin() {
    let setup = setup_with(
        CloudBuildStandin::new(),
        ArtifactRegistryStandin::new().with_repository(PROJECT, "us-central1", "devgem"),
        settings(),
    )
    .await;
    let (request, _) = request(&setup, None).await;

    setup
        .builder
        .build(&request, &Lines::default(), &CancellationToken::new())
        .await
        .expect("a 409 on the repository is not an error");
    // A second build does not ask again.
    setup
        .builder
        .build(&request, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap();

    let creates = setup.standin.requests_to("POST", "/repositories");
    assert_eq!(creates.len(), 1);
    assert_eq!(
        creates[0].query.get("repositoryId").map(String::as_str),
        Some("devgem")
    );
    assert_eq!(created_builds(&setup).len(), 2);
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_the_build_runs_on_the_standin() {
    let setup = setup(CloudBuildStandin::new()).await;
    setup.faults.once(
        "POST",
        &format!("/v1/projects/{PROJECT}/locations/us-central1/builds"),
        too_many_requests(1),
    );
    let (request, _) = request(&setup, None).await;

    let started = Instant::now();
    setup
        .builder
        .build(&request, &Lines::default(), &CancellationToken::new())
        .await
        .expect("the build runs after the wait");

    assert_eq!(setup.faults.pending(), 0);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured ({:?})",
        started.elapsed()
    );
    // Two attempts reached the stand-in; one build was created.
    assert_eq!(created_builds(&setup).len(), 2);
    assert_eq!(setup.cloudbuild.build_ids().len(), 1);
}

#[tokio::test]
async fn a_403_names_the_missing_permission_on_the_standin() {
    let setup = setup(CloudBuildStandin::new()).await;
    setup.faults.once(
        "POST",
        &format!("/v1/projects/{PROJECT}/locations/us-central1/builds"),
        permission_denied("cloudbuild.builds.create", &format!("projects/{PROJECT}")),
    );
    let (request, _) = request(&setup, None).await;

    let error = setup
        .builder
        .build(&request, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap_err();

    let BuildError::Failed { reason, hint } = error else {
        panic!("a refusal is the user's to fix: {error:?}");
    };
    assert!(reason.contains("cloudbuild.builds.create"), "{reason}");
    assert!(hint.contains("grant the missing permission"), "{hint}");
    assert_eq!(created_builds(&setup).len(), 1, "a 403 is not retried");
}

#[tokio::test]
async fn a_failed_build_names_the_step_the_message_and_the_log_tail_on_the_standin() {
    let setup = setup(CloudBuildStandin::new().with_outcome(Outcome::Failure {
        step: "build".into(),
        detail: "Build step failure: build step 2 \"gcr.io/cloud-builders/docker\" failed: step exited with non-zero status: 1".into(),
        log: vec![
            "#7 [3/4] RUN npm run build".into(),
            "npm ERR! Missing script: \"build\"".into(),
            "ERROR: process \"/bin/sh -c npm run build\" did not complete successfully: exit code: 1".into(),
        ],
    }))
    .await;
    let (request, _) = request(&setup, None).await;
    let log = Lines::default();

    let error = setup
        .builder
        .build(&request, &log, &CancellationToken::new())
        .await
        .unwrap_err();

    let BuildError::Failed { reason, hint } = error else {
        panic!("a failed build is the user's to fix: {error:?}");
    };
    assert!(reason.contains("FAILURE at step build"), "{reason}");
    assert!(
        reason.contains("step exited with non-zero status: 1"),
        "{reason}"
    );
    assert!(
        reason.contains("npm ERR! Missing script: \"build\""),
        "{reason}"
    );
    assert!(hint.contains("Dockerfile step failed"), "{hint}");
    assert!(log.all().iter().any(|l| l.contains("npm ERR!")));
}

#[tokio::test]
async fn an_abort_cancels_the_build_on_the_standin() {
    let setup = setup(CloudBuildStandin::new().with_progress(Progress::Manual)).await;
    let (request, _) = request(&setup, None).await;
    let cancel = CancellationToken::new();
    let builder = setup.builder.clone();
    let token = cancel.clone();
    let running =
        tokio::spawn(async move { builder.build(&request, &Lines::default(), &token).await });
    let cloudbuild = setup.cloudbuild.clone();
    until("the build to be read", || {
        cloudbuild
            .build_ids()
            .first()
            .is_some_and(|id| cloudbuild.gets(id) >= 2)
    })
    .await;

    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the build stops")
        .unwrap();

    assert!(matches!(outcome, Err(BuildError::Cancelled)), "{outcome:?}");
    let id = setup.cloudbuild.build_ids()[0].clone();
    assert_eq!(setup.cloudbuild.cancelled(), vec![id.clone()]);
    let cancels = setup.standin.requests_to("POST", ":cancel");
    assert_eq!(
        cancels[0].path,
        format!("/v1/projects/{PROJECT}/locations/us-central1/builds/{id}:cancel")
    );
}

#[tokio::test]
async fn a_cloud_builds_push_wakes_the_waiting_builder_on_the_standin() {
    let mut settings = settings();
    // Polling alone would take an hour: only the push can end this wait in time.
    settings.poll_interval = Duration::from_secs(3600);
    let setup = setup_with(
        CloudBuildStandin::new().with_progress(Progress::Manual),
        ArtifactRegistryStandin::new(),
        settings,
    )
    .await;
    let notifications = setup.builder.notifications();
    let (request, _) = request(&setup, None).await;
    let builder = setup.builder.clone();
    let running = tokio::spawn(async move {
        builder
            .build(&request, &Lines::default(), &CancellationToken::new())
            .await
    });
    let cloudbuild = setup.cloudbuild.clone();
    until("the first read of the build", || {
        cloudbuild
            .build_ids()
            .first()
            .is_some_and(|id| cloudbuild.gets(id) >= 1)
    })
    .await;
    let id = setup.cloudbuild.build_ids()[0].clone();

    setup.cloudbuild.finish(&id);
    let outcome = notifications
        .on_push(&setup.cloudbuild.push_body(&id))
        .unwrap();

    assert_eq!(
        outcome,
        PushOutcome::Recorded {
            build_id: id.clone(),
            status: "SUCCESS".into(),
            terminal: true,
            woke: true,
        }
    );
    let artifact = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the push ended the wait")
        .unwrap()
        .expect("the build succeeded");
    assert!(matches!(artifact, Artifact::ContainerImage { .. }));
    // The same push again changes nothing.
    assert_eq!(
        notifications
            .on_push(&setup.cloudbuild.push_body(&id))
            .unwrap(),
        PushOutcome::Duplicate
    );
}
