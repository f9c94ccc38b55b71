//! `devgem deploy --to cloudrun` end to end, as a user runs it from a laptop: the real binary,
//! the embedded store, and Cloud Build, Artifact Registry, Cloud Storage, Cloud Run, Cloud
//! Logging and Secret Manager answered by the loopback stand-in (only Google can answer them
//! for real), which checks each documented request.

mod support;

use devgem_testing::standin::artifactregistry::ArtifactRegistryStandin;
use devgem_testing::standin::cloudbuild::CloudBuildStandin;
use devgem_testing::standin::cloudrun::CloudRun;
use devgem_testing::standin::logging::Logging;
use devgem_testing::standin::secretmanager::SecretManager;
use devgem_testing::standin::storage::StorageStandin;
use devgem_testing::standin::{Api, Standin};
use std::sync::Arc;
use support::{Home, fixture};

const PROJECT: &str = "acme-prod";
const TOKEN: &str = "ya29.standin-token";
const SECRET_VALUE: &str = "sk_live_0123456789abcdef";

struct Google {
    standin: Standin,
    cloud_run: Arc<CloudRun>,
    build: Arc<CloudBuildStandin>,
    storage: Arc<StorageStandin>,
}

fn google() -> Google {
    let storage = Arc::new(StorageStandin::new([format!("{PROJECT}_cloudbuild")]));
    let build = Arc::new(CloudBuildStandin::new().with_storage(storage.clone()));
    let cloud_run = Arc::new(CloudRun::new());
    let apis: Vec<Arc<dyn Api>> = vec![
        build.clone(),
        storage.clone(),
        Arc::new(ArtifactRegistryStandin::new()),
        cloud_run.clone(),
        Arc::new(Logging::new()),
        Arc::new(SecretManager::new(PROJECT)),
    ];
    Google {
        standin: Standin::start(Some(TOKEN), apis),
        cloud_run,
        build,
        storage,
    }
}

/// How the user picks Google's adapters: `--to cloudrun`, or the two variables.
enum Choice {
    ToFlag,
    Variables,
}

fn deploy_to_cloud_run(
    home: &Home,
    google: &Google,
    app: &str,
    choice: Choice,
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = home.devgem();
    cmd.arg("deploy");
    match choice {
        Choice::ToFlag => {
            cmd.args(["--to", "cloudrun"])
                .env_remove("DEVGEM_BUILDER")
                .env_remove("DEVGEM_RUNTIME");
        }
        Choice::Variables => {
            cmd.env("DEVGEM_BUILDER", "cloudbuild")
                .env("DEVGEM_RUNTIME", "cloudrun");
        }
    }
    cmd.args(extra)
        .arg("--env")
        .arg(format!("STRIPE_KEY={SECRET_VALUE}"))
        .arg(fixture(app))
        .env("GOOGLE_CLOUD_PROJECT", PROJECT)
        .env("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN);
    for var in [
        "DEVGEM_CLOUDBUILD_ENDPOINT",
        "DEVGEM_RUN_ENDPOINT",
        "DEVGEM_SECRETMANAGER_ENDPOINT",
        "DEVGEM_ARTIFACTREGISTRY_ENDPOINT",
        "DEVGEM_LOGGING_ENDPOINT",
        "DEVGEM_STORAGE_ENDPOINT",
    ] {
        cmd.env(var, &google.standin.base_url);
    }
    cmd.output().expect("run devgem deploy")
}

#[test]
fn devgem_deploy_to_cloudrun_goes_live_at_the_service_url_on_the_standin() {
    let home = Home::new();
    let google = google();
    let out = deploy_to_cloud_run(&home, &google, "flask-basic", Choice::ToFlag, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    // The last line names the URL the stand-in's Cloud Run service reported, and it answers.
    let last = stdout.lines().last().unwrap_or_default();
    let url = last
        .split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_string();
    assert!(
        last.contains(" live ") && url.starts_with(&google.standin.base_url),
        "{last}"
    );
    let page = reqwest::blocking::get(&url).expect("the app URL answers");
    assert!(page.status().is_success(), "{}", page.status());

    // Every Google call carried the token; the stand-in found no contract problem.
    let requests = google.standin.requests();
    assert!(
        requests
            .iter()
            .filter(|r| !r.path.starts_with("/apps/"))
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))),
        "a request went without the token"
    );
    assert_eq!(google.cloud_run.problems(), Vec::<String>::new());

    // The source went to the build bucket and Cloud Build built exactly that upload.
    assert_eq!(google.build.build_ids().len(), 1);
    assert_eq!(google.storage.objects().len(), 1, "one source tarball");

    // Cloud Run got the image by digest and the secret as a Secret Manager reference.
    let create = google.standin.requests_to("POST", "/services");
    let service = create.first().expect("a service create").json();
    let container = &service["template"]["containers"][0];
    assert!(
        container["image"]
            .as_str()
            .unwrap_or_default()
            .contains("@sha256:"),
        "{container}"
    );
    let env = container["env"].as_array().cloned().unwrap_or_default();
    let stripe = env
        .iter()
        .find(|e| e["name"] == "STRIPE_KEY")
        .expect("STRIPE_KEY is in the service's env");
    assert!(
        stripe["valueSource"]["secretKeyRef"]["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("devgem-")),
        "{stripe}"
    );

    // Public by default: anyone may invoke it.
    let grants = google.standin.requests_to("POST", ":setIamPolicy");
    assert!(
        grants
            .iter()
            .any(|r| r.path.contains("/services/") && r.json().to_string().contains("allUsers")),
        "the service was made public"
    );

    // The value itself went to Secret Manager's addVersion and nowhere else.
    let b64 = devgem_testing::standin::storage::base64(SECRET_VALUE.as_bytes());
    for r in &requests {
        let body = String::from_utf8_lossy(&r.body);
        if r.path.ends_with(":addVersion") {
            assert!(body.contains(&b64), "addVersion carries the value");
        } else {
            assert!(
                !body.contains(SECRET_VALUE) && !body.contains(&b64),
                "the secret leaked into {} {}",
                r.method,
                r.path
            );
        }
    }
    assert!(!stdout.contains(SECRET_VALUE) && !stderr.contains(SECRET_VALUE));
    let store = std::fs::read(home.path().join("devgem.db")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&store).contains(SECRET_VALUE),
        "the value is not in the embedded store"
    );
}

#[test]
fn a_private_deploy_by_the_two_variables_grants_no_public_invoker_on_the_standin() {
    let home = Home::new();
    let google = google();
    let out = deploy_to_cloud_run(
        &home,
        &google,
        "static-site",
        Choice::Variables,
        &["--private"],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let public_grants: Vec<_> = google
        .standin
        .requests_to("POST", ":setIamPolicy")
        .into_iter()
        .filter(|r| r.json().to_string().contains("allUsers"))
        .collect();
    assert!(public_grants.is_empty(), "a private app got allUsers");
    assert_eq!(google.build.build_ids().len(), 1);
}
