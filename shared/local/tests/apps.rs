//! The fixtures, end to end through the ports: fetched by path, built natively, started as a
//! local process, answered over HTTP, logged, and stopped.

mod common;

use common::{Lines, fixture, get, plan, refuses, wait_until};
use devgem_domain::{DeploymentId, Source};
use devgem_local::{LocalSourceFetcher, NativeBuilder, ProcessRuntime};
use devgem_plan::{BuildPlan, Language, PackageManager};
use devgem_ports::{Builder, CancellationToken, Runtime, SecretValue, SourceFetcher};
use std::time::{Duration, Instant};

/// Fetches, builds, deploys and checks one fixture; prints the timings.
async fn deploy_fixture(name: &str, plan: BuildPlan, expected: &str, in_log: &str) {
    let work = tempfile::tempdir().unwrap();
    let checkout = work.path().join("checkout");
    std::fs::create_dir_all(&checkout).unwrap();
    let cancel = CancellationToken::new();
    let lines = Lines::default();
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());

    let source = Source {
        location: fixture(name).to_string_lossy().into_owned(),
        archive: None,
        branch: None,
        commit: None,
        subdir: None,
    };
    LocalSourceFetcher::default()
        .fetch(&source, None, &checkout, &lines, &cancel)
        .await
        .unwrap();

    let started = Instant::now();
    let builder = NativeBuilder::new(work.path().join("builds"), common::objects());
    let artifact = builder
        .build(
            &common::build_request_for(&id, name, &checkout, plan.clone()).await,
            &lines,
            &cancel,
        )
        .await
        .unwrap_or_else(|e| panic!("{name} build failed: {e:?}"));
    let build_time = started.elapsed();

    let started = Instant::now();
    let runtime = ProcessRuntime::new(work.path().join("run"), common::secrets());
    let release = runtime
        .deploy(
            &common::release(
                &id,
                name,
                artifact,
                plan,
                vec![("GREETING".into(), SecretValue::new("s3cret-value"))],
            )
            .await,
            &lines,
            &cancel,
        )
        .await
        .unwrap_or_else(|e| panic!("{name} deploy failed: {e:?}"));
    let start_time = started.elapsed();
    eprintln!(
        "TIMING {name}: build {:.1} s, start {:.1} s",
        build_time.as_secs_f64(),
        start_time.as_secs_f64()
    );

    assert!(
        release.url.starts_with("http://127.0.0.1:"),
        "{}",
        release.url
    );
    let (status, body) = get(&release.url).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(expected), "{body}");

    let app = runtime.status(&id).expect("a status for a live app");
    assert!(app.alive);
    assert_eq!(app.url, release.url);
    let record = std::fs::read_to_string(
        work.path()
            .join("run")
            .join(id.as_str())
            .join("runtime.json"),
    )
    .unwrap();
    assert!(record.contains("\"pgid\""), "{record}");

    let logs = runtime
        .logs(&id, None, &Default::default())
        .await
        .unwrap()
        .text();
    assert!(
        logs.contains(in_log),
        "{in_log:?} is not in the app's log:\n{logs}"
    );
    assert!(
        !lines.text().contains("s3cret-value"),
        "a secret reached the log"
    );

    runtime.stop(&id, None).await.unwrap();
    wait_until(
        "the port refuses connections",
        Duration::from_secs(10),
        || refuses(&release.url),
    )
    .await;
    assert!(runtime.status(&id).is_none());
    // Stopping again is not an error.
    runtime.stop(&id, None).await.unwrap();
    let logs = runtime
        .logs(&id, None, &Default::default())
        .await
        .unwrap()
        .text();
    assert!(logs.contains("devgem: stopped"), "{logs}");
    println!("--- logs of {name} ---\n{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_basic() {
    deploy_fixture(
        "flask-basic",
        plan(
            Language::Python,
            Some("pip install -r requirements.txt"),
            "gunicorn -b 0.0.0.0:$PORT app:app",
        ),
        "Hello from flask-basic",
        "Listening at: http://0.0.0.0:",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastapi_basic() {
    deploy_fixture(
        "fastapi-basic",
        plan(
            Language::Python,
            Some("pip install -r requirements.txt"),
            "uvicorn main:app --host 0.0.0.0 --port $PORT",
        ),
        "Hello from fastapi-basic",
        "Uvicorn running on http://0.0.0.0:",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_basic() {
    let mut p = plan(Language::Node, Some("npm install"), "npm start");
    p.package_manager = Some(PackageManager::Npm);
    p.env.insert("NODE_ENV".into(), "production".into());
    deploy_fixture(
        "express-basic",
        p,
        "Hello from express-basic",
        "express-basic listening on",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_site() {
    deploy_fixture(
        "static-site",
        plan(
            Language::Static,
            None,
            "python3 -m http.server $PORT --bind 0.0.0.0",
        ),
        "Hello from static-site",
        "\"GET / HTTP/1.1\" 200",
    )
    .await;
}

/// yarn is not installed on most machines: the builder provides it (corepack, else npx).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_basic_with_yarn() {
    let mut p = plan(Language::Node, Some("yarn install"), "yarn start");
    p.package_manager = Some(PackageManager::Yarn);
    deploy_fixture(
        "express-basic",
        p,
        "Hello from express-basic",
        "express-basic listening on",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_basic_with_pnpm() {
    let mut p = plan(Language::Node, Some("pnpm install"), "pnpm start");
    p.package_manager = Some(PackageManager::Pnpm);
    deploy_fixture(
        "express-basic",
        p,
        "Hello from express-basic",
        "express-basic listening on",
    )
    .await;
}

/// A workspace (monorepo): npm installs at the checkout root, so the binary the app starts is
/// linked into the root's `node_modules/.bin`, not the app's; the app runs from its folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_app_starts_a_binary_installed_at_the_root() {
    deploy_fixture(
        "npm-workspace-bin",
        BuildPlan {
            app_dir: "apps/web".into(),
            package_manager: Some(PackageManager::Npm),
            ..plan(Language::Node, Some("npm install"), "greeter-serve")
        },
        "Hello from npm-workspace-bin",
        "npm-workspace-bin listening on",
    )
    .await;
}
