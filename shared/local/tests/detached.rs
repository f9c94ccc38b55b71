//! The app outlives the process that deployed it: a child process (this test binary, run
//! again) deploys and exits; this process then finds the app through `runtime.json`, checks it
//! answers, and stops it.

mod common;

use common::{Lines, get, plan, refuses, wait_until};
use devgem_domain::DeploymentId;
use devgem_local::ProcessRuntime;
use devgem_plan::Language;
use devgem_ports::{CancellationToken, Runtime};
use std::time::Duration;

const CHILD_BASE: &str = "DEVGEM_LOCAL_TEST_CHILD_BASE";
const CHILD_ID: &str = "DEVGEM_LOCAL_TEST_CHILD_ID";
const CHILD_APP: &str = "DEVGEM_LOCAL_TEST_CHILD_APP";

#[tokio::test]
async fn the_app_outlives_the_process_that_deployed_it() {
    // In the child: deploy, then return (the process exits with the test).
    if let (Ok(base), Ok(id), Ok(app)) = (
        std::env::var(CHILD_BASE),
        std::env::var(CHILD_ID),
        std::env::var(CHILD_APP),
    ) {
        let runtime = ProcessRuntime::new(base, common::secrets());
        let request = common::release(
            &DeploymentId::parse(&id).unwrap(),
            "detached",
            common::local_build(app),
            plan(
                Language::Static,
                None,
                "python3 -m http.server $PORT --bind 0.0.0.0",
            ),
            vec![],
        )
        .await;
        runtime
            .deploy(&request, &Lines::default(), &CancellationToken::new())
            .await
            .unwrap();
        return;
    }

    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "still here").unwrap();
    let base = work.path().join("run");
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());

    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "the_app_outlives_the_process_that_deployed_it"])
        .env(CHILD_BASE, &base)
        .env(CHILD_ID, id.as_str())
        .env(CHILD_APP, &app)
        .status()
        .unwrap();
    assert!(status.success(), "the deploying process failed");

    let runtime = ProcessRuntime::new(&base, common::secrets());
    let running = runtime.status(&id).expect("runtime.json names the app");
    assert!(
        running.alive,
        "the app died with the process that started it"
    );
    let (code, body) = get(&running.url).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("still here"), "{body}");

    runtime.stop(&id, None).await.unwrap();
    wait_until("the port refuses", Duration::from_secs(5), || {
        refuses(&running.url)
    })
    .await;
    assert!(runtime.status(&id).is_none());
}
