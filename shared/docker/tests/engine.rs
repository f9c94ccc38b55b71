//! The generated Dockerfiles built and run on a real Docker engine, through the ports: each
//! fixture answers with its own content, runs as non-root, keeps secrets out of its image, and
//! a redeploy after a one-line change takes its dependencies from cache. Start-up failures
//! (a crash, the wrong port) and an abort during a build say what happened.

mod common;

use common::*;
use devgem_domain::{Artifact, DeploymentId, ServiceName};
use devgem_plan::{BuildPlan, Language, Template};
use devgem_ports::{BuildError, Builder, Runtime, RuntimeError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What `docker history` and `docker inspect` show of an image, as one text.
async fn image_metadata(engine: &devgem_docker::Engine, image: &str) -> (String, String) {
    let docker = engine.client().await.unwrap();
    let inspect = docker.inspect_image(image).await.unwrap();
    let history = docker.image_history(image).await.unwrap();
    let history: Vec<String> = history.into_iter().map(|h| h.created_by).collect();
    let user = inspect
        .config
        .as_ref()
        .and_then(|c| c.user.clone())
        .unwrap_or_default();
    (
        format!(
            "{}\n{}",
            serde_json::to_string(&inspect).unwrap(),
            history.join("\n")
        ),
        user,
    )
}

#[tokio::test]
async fn flask_builds_runs_as_non_root_keeps_secrets_out_and_redeploys_from_cache() {
    let Some(engine) = engine().await else { return };
    let runtime = runtime(&engine);
    let dir = copy_fixture("flask-basic");
    let service = "flask-docker-test";
    clear_service(&engine, service).await;
    let first = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let (artifact, _, first_build, plan) = build_dir(&engine, &first, service, dir.path()).await;
    assert_eq!(plan.template, Template::Python);

    let secret = "s3cr3t-value-that-must-stay-out-of-images";
    let spec = release(
        &first,
        service,
        artifact.clone(),
        &plan,
        vec![("API_TOKEN", secret)],
    )
    .await;
    let lines = Lines::default();
    let live = runtime
        .deploy(&spec, &lines, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("deploy failed: {e:?}"));
    let (status, body) = get(&live.url).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Hello from flask-basic, a DevGem fixture"),
        "{body}"
    );

    // Non-root, and no secret in any layer, env or label of the image.
    let image = image_id(&artifact);
    let (metadata, user) = image_metadata(&engine, &image).await;
    assert!(
        !user.is_empty() && user != "root" && user != "0",
        "runs as {user:?}"
    );
    assert!(!metadata.contains(secret), "the secret is in the image");
    assert!(
        !metadata.contains("API_TOKEN"),
        "the variable is in the image"
    );
    assert!(
        metadata.contains(&first.to_string()),
        "the image names its deployment"
    );

    // The Cloud Run contract inside the container.
    let docker = engine.client().await.unwrap();
    let summaries = docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .filters(&std::collections::HashMap::from([(
                    "label",
                    vec![format!("org.devgem.deployment={first}")],
                )]))
                .build(),
        ))
        .await
        .unwrap();
    let container = docker
        .inspect_container(summaries[0].id.as_deref().unwrap(), None)
        .await
        .unwrap();
    let labels = serde_json::to_string(&container.config_labels()).unwrap();
    assert!(
        !labels.contains(secret),
        "the secret is in a container label"
    );
    let env = container.config.clone().unwrap().env.unwrap();
    for wanted in [
        "PORT=8080".to_string(),
        format!("K_SERVICE={service}"),
        format!("K_CONFIGURATION={service}"),
        format!("K_REVISION={}", live.revision),
        format!("API_TOKEN={secret}"),
    ] {
        assert!(env.contains(&wanted), "{wanted} missing from {env:?}");
    }
    let host = container.host_config.unwrap();
    assert_eq!(host.memory, Some(512 << 20));
    assert_eq!(host.nano_cpus, Some(1_000_000_000));

    // A one-line change, deployed again: the dependencies come from cache.
    let app = dir.path().join("app.py");
    let source = std::fs::read_to_string(&app).unwrap();
    std::fs::write(
        &app,
        source.replace("a DevGem fixture", "changed by one line"),
    )
    .unwrap();
    let second = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let (artifact2, build_lines, redeploy_build, _) =
        build_dir(&engine, &second, service, dir.path()).await;
    let output = build_lines.text();
    let install = output
        .lines()
        .position(|l| l.contains("RUN pip install"))
        .expect("the install step ran");
    assert!(
        output
            .lines()
            .nth(install + 1)
            .unwrap()
            .contains("Using cache"),
        "the dependency step was not cached:\n{output}"
    );
    println!(
        "flask-basic: first build {:.1} s, redeploy build {:.1} s",
        first_build.as_secs_f64(),
        redeploy_build.as_secs_f64()
    );
    let spec2 = release(
        &second,
        service,
        artifact2,
        &plan,
        vec![("API_TOKEN", secret)],
    )
    .await;
    let live2 = runtime
        .deploy(&spec2, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap();
    assert!(get(&live2.url).unwrap().1.contains("changed by one line"));
    let logs = runtime
        .logs(&second, None, &Default::default())
        .await
        .unwrap()
        .text();
    assert!(logs.contains("Booting worker"), "{logs}");

    // Rollback: all traffic to the first revision, the second stops.
    let name = ServiceName::derive_from(service);
    let revisions = runtime.revisions(&name, None).await.unwrap();
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[0].name, live2.revision, "newest first");
    let back = runtime
        .route_traffic(
            &name,
            None,
            &live.revision,
            &Lines::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(back.url, live.url);
    assert!(gone(&live2.url), "the second revision still answers");
    assert!(get(&live.url).unwrap().1.contains("a DevGem fixture"));

    for id in [&first, &second] {
        runtime.stop(id, None).await.unwrap();
    }
    assert!(gone(&live.url), "stopped, it still answers");
    clear_service(&engine, service).await;
}

/// What a container's inspection lists as labels.
trait ConfigLabels {
    fn config_labels(&self) -> std::collections::HashMap<String, String>;
}

impl ConfigLabels for bollard::models::ContainerInspectResponse {
    fn config_labels(&self) -> std::collections::HashMap<String, String> {
        self.config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn static_site_is_served_by_nginx_as_uid_101() {
    let Some(engine) = engine().await else { return };
    let runtime = runtime(&engine);
    clear_service(&engine, "static-docker-test").await;
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let (artifact, _, took, plan) =
        build_dir(&engine, &id, "static-docker-test", &fixture("static-site")).await;
    println!("static-site: first build {:.1} s", took.as_secs_f64());
    let (_, user) = image_metadata(&engine, &image_id(&artifact)).await;
    assert_eq!(user, "101");
    let spec = release(&id, "static-docker-test", artifact, &plan, vec![]).await;
    let live = runtime
        .deploy(&spec, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("deploy failed: {e:?}"));
    let (status, body) = get(&live.url).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Hello from static-site, a DevGem fixture"),
        "{body}"
    );
    runtime.stop(&id, None).await.unwrap();
    assert!(gone(&live.url));
    clear_service(&engine, "static-docker-test").await;
}

/// A plan for a hand-written Dockerfile (the runtime reads only its port).
fn plain_plan() -> BuildPlan {
    BuildPlan::new(Language::Python, Template::Python, "unused")
}

/// Builds a small hand-written Dockerfile over an empty folder.
async fn build_dockerfile(
    engine: &devgem_docker::Engine,
    id: &DeploymentId,
    dockerfile: &str,
) -> Artifact {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), "empty").unwrap();
    let request = request(
        id,
        "docker-failures",
        dir.path(),
        plain_plan(),
        dockerfile.to_string(),
        String::new(),
    )
    .await;
    builder(engine)
        .build(&request, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_container_that_crashes_at_start_fails_with_its_output() {
    let Some(engine) = engine().await else { return };
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let artifact = build_dockerfile(
        &engine,
        &id,
        "FROM debian:bookworm-slim\nCMD [\"sh\", \"-c\", \"echo 'cannot open config.yml' >&2; exit 3\"]\n",
    )
    .await;
    let spec = release(&id, "docker-failures", artifact, &plain_plan(), vec![]).await;
    let err = runtime(&engine)
        .deploy(&spec, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap_err();
    let RuntimeError::Failed { reason, .. } = err else {
        panic!("{err:?}")
    };
    assert!(reason.contains("exited with code 3"), "{reason}");
    assert!(reason.contains("cannot open config.yml"), "{reason}");
}

#[tokio::test]
async fn an_app_on_a_hard_coded_port_is_told_to_read_port() {
    let Some(engine) = engine().await else { return };
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    // Listens on 5000 whatever $PORT says, at app.py line 20, where the analyzer finds it.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/broken/python-hard-coded-port");
    let (artifact, _, _, plan) = build_dir(&engine, &id, "docker-failures", &dir).await;
    let spec = release(&id, "docker-failures", artifact, &plan, vec![]).await;
    let err = runtime(&engine)
        .deploy(&spec, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap_err();
    let RuntimeError::Failed { reason, hint } = err else {
        panic!("{err:?}")
    };
    assert!(
        reason.contains("listens on port 5000 (app.py line 20), not $PORT (8080)"),
        "{reason}"
    );
    assert!(reason.contains("read the port from $PORT"), "{reason}");
    assert!(hint.contains("PORT"), "{hint}");
}

#[tokio::test]
async fn an_abort_during_a_build_stops_it() {
    let Some(engine) = engine().await else { return };
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), "empty").unwrap();
    let request = request(
        &id,
        "docker-abort",
        dir.path(),
        plain_plan(),
        format!("FROM debian:bookworm-slim\nRUN echo {id} && sleep 120\n"),
        String::new(),
    )
    .await;
    let cancel = CancellationToken::new();
    let lines = std::sync::Arc::new(Lines::default());
    let build = {
        let (cancel, lines) = (cancel.clone(), lines.clone());
        let builder = builder(&engine);
        tokio::spawn(async move { builder.build(&request, lines.as_ref(), &cancel).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lines.text().contains("sleep 120") {
        assert!(
            Instant::now() < deadline,
            "the build never reached its step"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let aborted = Instant::now();
    cancel.cancel();
    let outcome = build.await.unwrap();
    assert!(matches!(outcome, Err(BuildError::Cancelled)), "{outcome:?}");
    assert!(aborted.elapsed() < Duration::from_secs(5));
    // The engine stops the step's container too.
    let docker = engine.client().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running = docker
            .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
            .await
            .unwrap();
        if !running.iter().any(|c| {
            c.command
                .as_deref()
                .is_some_and(|cmd| cmd.contains(id.as_str()))
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "the build step still runs");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_native_build_is_refused_with_the_fix() {
    // No engine is needed: the artifact is refused before anything starts.
    let runtime = runtime(&devgem_docker::Engine::at("unix:///nonexistent.sock"));
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let artifact = Artifact::LocalBuild {
        dir: "/tmp/build".into(),
    };
    let spec = release(&id, "native", artifact, &plain_plan(), vec![]).await;
    let err = runtime
        .deploy(&spec, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap_err();
    let RuntimeError::Failed { reason, hint } = err else {
        panic!("{err:?}")
    };
    assert!(reason.contains("native build"), "{reason}");
    assert!(hint.contains("DEVGEM_BUILDER=docker"), "{hint}");
}

#[tokio::test]
async fn express_installs_its_dependencies_and_runs_as_node() {
    let Some(engine) = engine().await else { return };
    let runtime = runtime(&engine);
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let service = "express-docker-test";
    clear_service(&engine, service).await;
    let (artifact, _, took, plan) =
        build_dir(&engine, &id, service, &fixture("express-basic")).await;
    assert_eq!(plan.template, Template::Node);
    println!("express-basic: first build {:.1} s", took.as_secs_f64());
    let (_, user) = image_metadata(&engine, &image_id(&artifact)).await;
    assert_eq!(user, "node");
    let spec = release(&id, service, artifact, &plan, vec![]).await;
    let lines = Lines::default();
    let live = runtime
        .deploy(&spec, &lines, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("deploy failed: {e:?}"));
    let (status, body) = get(&live.url).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Hello from express-basic, a DevGem fixture"),
        "{body}"
    );
    // The app's own start-up line reached the deployment's log, with the port it was given.
    assert!(
        lines.text().contains("express-basic listening on 8080"),
        "{}",
        lines.text()
    );
    runtime.stop(&id, None).await.unwrap();
    assert!(gone(&live.url));
    clear_service(&engine, service).await;
}

#[tokio::test]
async fn a_single_page_app_is_built_with_node_and_served_by_nginx_without_it() {
    let Some(engine) = engine().await else { return };
    let runtime = runtime(&engine);
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let service = "spa-docker-test";
    clear_service(&engine, service).await;
    let (artifact, _, took, plan) = build_dir(&engine, &id, service, &fixture("vite-react")).await;
    assert_eq!(plan.template, Template::Spa);
    println!("vite-react: first build {:.1} s", took.as_secs_f64());
    // The build stage's tools stay in the build stage: no npm step made a final layer.
    let docker = engine.client().await.unwrap();
    let history = docker.image_history(&image_id(&artifact)).await.unwrap();
    assert!(
        history.iter().all(|h| !h.created_by.contains("npm")),
        "{:#?}",
        history.iter().map(|h| &h.created_by).collect::<Vec<_>>()
    );
    let (_, user) = image_metadata(&engine, &image_id(&artifact)).await;
    assert_eq!(user, "101");
    let spec = release(&id, service, artifact, &plan, vec![]).await;
    let live = runtime
        .deploy(&spec, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("deploy failed: {e:?}"));
    let (status, body) = get(&live.url).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Hello from vite-react, a DevGem fixture"),
        "{body}"
    );
    // The built bundle, not the source entry point.
    assert!(!body.contains("/src/main.jsx"), "{body}");
    runtime.stop(&id, None).await.unwrap();
    clear_service(&engine, service).await;
}

#[tokio::test]
async fn a_redeploy_replaces_the_container_only_once_the_new_one_answers() {
    let Some(engine) = engine().await else { return };
    let runtime = runtime(&engine);
    let service = "replace-docker-test";
    clear_service(&engine, service).await;
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let (good, _, _, plan) = build_dir(&engine, &id, service, &fixture("static-site")).await;
    let spec = release(&id, service, good, &plan, vec![]).await;
    let first = runtime
        .deploy(&spec, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap();

    // The same deployment again, with an image that crashes: the running one keeps serving.
    let crashing = build_dockerfile(
        &engine,
        &DeploymentId::from_uuid(uuid::Uuid::now_v7()),
        "FROM debian:bookworm-slim\nCMD [\"sh\", \"-c\", \"echo broken >&2; exit 1\"]\n",
    )
    .await;
    let broken = devgem_ports::ReleaseSpec {
        artifact: crashing,
        ..spec.clone()
    };
    let err = runtime
        .deploy(&broken, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("broken"), "{err}");
    assert_eq!(
        get(&first.url).unwrap().0,
        200,
        "the old container was replaced"
    );

    // Again with a good image: the new container serves, the old one is gone.
    let second = runtime
        .deploy(&spec, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap();
    assert_ne!(second.url, first.url);
    assert_eq!(get(&second.url).unwrap().0, 200);
    assert!(gone(&first.url), "the old container still answers");
    let revisions = runtime
        .revisions(&ServiceName::derive_from(service), None)
        .await
        .unwrap();
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    clear_service(&engine, service).await;
}

/// Builds fixture `name` as analysed, checks its template, deploys it and checks that `GET /`
/// answers 200 with `expected` in the body; then stops it. The build's output and the deploy
/// log are in the panic message when a step fails.
async fn fixture_answers(name: &str, template: Template, expected: &str) {
    let Some(engine) = engine().await else { return };
    let runtime = runtime(&engine);
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let service = format!("{name}-docker-test");
    clear_service(&engine, &service).await;
    let (artifact, _, took, plan) = build_dir(&engine, &id, &service, &fixture(name)).await;
    assert_eq!(plan.template, template);
    println!("{name}: first build {:.1} s", took.as_secs_f64());
    let spec = release(&id, &service, artifact, &plan, vec![]).await;
    let lines = Lines::default();
    let live = runtime
        .deploy(&spec, &lines, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("deploy of {name} failed: {e:?}\n{}", lines.text()));
    let (status, body) = get(&live.url).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(expected), "{body}");
    runtime.stop(&id, None).await.unwrap();
    clear_service(&engine, &service).await;
}

/// FastHTML writes its session key into the working directory at start: /app must belong to
/// the app user (it was root's when WORKDIR made it before the copy).
#[tokio::test]
async fn a_python_app_may_write_into_its_folder() {
    fixture_answers("fasthtml-main", Template::Python, "fasthtml-main todo").await;
}

/// Whether the build step whose line contains `step` came from the layer cache.
fn cached(output: &str, step: &str) -> bool {
    let lines: Vec<&str> = output.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(step))
        .unwrap_or_else(|| panic!("no step `{step}` in:\n{output}"));
    lines.get(at + 1).is_some_and(|l| l.contains("Using cache"))
}

/// A template with a build step (NestJS's `tsc`): after a one-line source change the install
/// and the pruning to production dependencies come from cache; only the build runs again.
#[tokio::test]
async fn a_node_build_redeploy_takes_its_dependencies_from_cache() {
    let Some(engine) = engine().await else { return };
    let runtime = runtime(&engine);
    let service = "nestjs-docker-test";
    clear_service(&engine, service).await;
    let dir = copy_fixture("nestjs-basic");
    let first = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let (_, _, first_build, plan) = build_dir(&engine, &first, service, dir.path()).await;
    assert_eq!(plan.template, Template::NodeBuild);

    let controller = dir.path().join("src/app.controller.ts");
    let source = std::fs::read_to_string(&controller).unwrap();
    std::fs::write(
        &controller,
        // A change no earlier run made, so the engine cannot hold its layer already.
        source.replace(
            "a DevGem fixture",
            &format!("changed by one line {}", uuid::Uuid::now_v7()),
        ),
    )
    .unwrap();
    let second = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let (artifact, lines, redeploy_build, _) =
        build_dir(&engine, &second, service, dir.path()).await;
    let output = lines.text();
    for step in [
        "RUN npm install",
        "RUN npm prune",
        "COPY --from=production-dependencies",
    ] {
        assert!(cached(&output, step), "`{step}` was not cached:\n{output}");
    }
    assert!(!cached(&output, "RUN npm run build"), "{output}");
    // The times are figures for BENCHMARKS.md (scripts/bench-docker.sh), not a pass mark:
    // on a machine whose engine already holds these layers the first build is cached too.
    println!(
        "nestjs-basic: first build {:.1} s, redeploy build {:.1} s",
        first_build.as_secs_f64(),
        redeploy_build.as_secs_f64()
    );

    let spec = release(&second, service, artifact, &plan, vec![]).await;
    let live = runtime
        .deploy(&spec, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("deploy failed: {e:?}"));
    let (status, body) = get(&live.url).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("changed by one line"), "{body}");
    runtime.stop(&second, None).await.unwrap();
    clear_service(&engine, service).await;
}

/// Next.js's `next start` runs from node_modules/.bin in the final stage.
#[tokio::test]
async fn next_js_builds_and_starts() {
    fixture_answers("nextjs-basic", Template::Nextjs, "Hello from nextjs-basic").await;
}

/// Nuxt 3's build needs Node.js 20.12 or later: the node stand-in carries the official 22.
#[tokio::test]
async fn nuxt_builds_and_starts() {
    fixture_answers("nuxt-basic", Template::Nuxt, "Hello from nuxt-basic").await;
}

/// A package.json without dependencies installs no node_modules; the image builds all the same.
#[tokio::test]
async fn a_node_app_without_dependencies_builds() {
    fixture_answers(
        "node-empty-package-json",
        Template::Node,
        "from node-empty-package-json",
    )
    .await;
}

/// A workspace member is built with the workspace root as its context: the install runs at
/// the root (where npm links the workspace package's `greeter-serve` binary) and the app
/// starts from its folder (issue 10's failing fixture).
#[tokio::test]
async fn an_npm_workspace_member_installs_at_the_root_and_starts_in_its_folder() {
    fixture_answers(
        "npm-workspace-bin",
        Template::Node,
        "Hello from npm-workspace-bin",
    )
    .await;
}

/// The workspace packages the app uses are built first, in dependency order (tokens, then
/// ui), with a pinned pnpm installed in the build stage.
#[tokio::test]
async fn a_pnpm_workspace_builds_the_packages_the_app_depends_on() {
    fixture_answers(
        "pnpm-workspace-chain",
        Template::Node,
        "built with ui (on tokens)",
    )
    .await;
}
