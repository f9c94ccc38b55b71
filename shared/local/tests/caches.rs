//! The package caches builds share: a plain requirements file is installed with uv into the
//! cache beside the builds folder, and the next build of the same file installs the versions
//! resolved last time from that cache, without resolving again.

mod common;

use common::{Lines, plan};
use devgem_domain::DeploymentId;
use devgem_local::NativeBuilder;
use devgem_plan::Language;
use devgem_ports::{Artifact, Builder, CancellationToken};

#[tokio::test]
async fn an_unchanged_requirements_file_is_installed_again_from_the_shared_cache() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("requirements.txt"), "six==1.*\n").unwrap();
    let builder = NativeBuilder::new(home.path().join("builds"), common::objects());
    let p = plan(
        Language::Python,
        Some("pip install -r requirements.txt"),
        "true",
    );

    let mut logs = Vec::new();
    for _ in 0..2 {
        let lines = Lines::default();
        let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
        let request = common::build_request_for(&id, "cached", &src, p.clone()).await;
        let artifact = builder
            .build(&request, &lines, &CancellationToken::new())
            .await
            .unwrap_or_else(|e| panic!("build failed: {e:?}\n{}", lines.text()));
        let Artifact::LocalBuild { dir } = artifact else {
            panic!("expected a local build")
        };
        let imported = std::process::Command::new(dir.join(".venv/bin/python"))
            .args(["-c", "import six"])
            .status()
            .unwrap();
        assert!(
            imported.success(),
            "six is not installed in {}",
            dir.display()
        );
        logs.push(lines.text());
    }
    assert!(
        logs[0].contains("uv pip install -r requirements.txt"),
        "{}",
        logs[0]
    );
    assert!(
        std::fs::read_dir(home.path().join("cache/uv")).is_ok_and(|mut d| d.next().is_some()),
        "the uv cache is not under the shared cache folder"
    );
    assert!(
        logs[1].contains("The requirements are unchanged"),
        "{}",
        logs[1]
    );
    assert!(
        !logs[1].contains("uv pip install -r requirements.txt"),
        "{}",
        logs[1]
    );
}
