//! What Google receives for real apps: the Cloud Build request and the Cloud Run service
//! rendered from the plans the analyzer makes of fixture apps (tests/fixtures/apps), as
//! snapshots. A change to the analyzer, the Dockerfile templates or either renderer that
//! changes a request shows up here.

use devgem_domain::{Artifact, DeploymentId, EnvVarName, ImageRef, ServiceName};
use devgem_gcp_run::CloudConfig;
use devgem_gcp_run::build_request::{SourceLocation, render_build};
use devgem_gcp_run::service::render_service;
use devgem_ports::{BuildRequest, BuildSource, GitRevision, ReleaseSpec, SecretEnv};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const FIXTURES: [&str; 5] = [
    "flask-basic",
    "express-basic",
    "fastapi-uv",
    "vite-react",
    "nextjs-standalone",
];

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/apps")
        .join(name)
}

/// The request as JSON with every object's keys in order: the generated models keep maps
/// (labels, limits) in hash maps, whose order changes from run to run.
fn sorted(value: &impl serde::Serialize) -> serde_json::Value {
    fn sort(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    sort(serde_json::to_value(value).expect("the request serializes"))
}

#[test]
fn cloud_build_and_cloud_run_requests_for_fixture_apps() {
    let config = CloudConfig::new("acme-prod");
    let id = DeploymentId::parse("d-0193a1b2c3d4").unwrap();
    for app in FIXTURES {
        let analysis = devgem_analyzer::analyze(&fixture(app));
        let plan = devgem_analyzer::plan(&analysis).unwrap_or_else(|e| panic!("{app}: {e}"));
        let service_name = ServiceName::derive_from(app);
        let image =
            ImageRef::for_deployment(&config.image_repository(), &service_name, &id).unwrap();
        let commit = "9fceb02d0ae598e95dc970b74767f19372d61af8";
        let request = BuildRequest {
            deployment_id: id.clone(),
            service_name: service_name.clone(),
            source: BuildSource {
                archive_key: format!("deployments/{id}/source.tar.gz"),
                git: Some(GitRevision {
                    url: format!("https://github.com/acme/{app}.git"),
                    commit: commit.into(),
                    credential: None,
                }),
            },
            dockerfile: devgem_analyzer::render_dockerfile(&plan),
            dockerignore: devgem_analyzer::render_dockerignore(&plan),
            plan: plan.clone(),
            image,
            labels: BTreeMap::from([("devgem-deployment".to_string(), id.to_string())]),
        };
        let source = SourceLocation::Git {
            url: format!("https://github.com/acme/{app}.git"),
            commit: commit.into(),
            token_secret: None,
        };
        let (build, rendered) = render_build(&request, &config, &source, Duration::from_secs(1200));
        insta::assert_json_snapshot!(format!("{app}-cloud-build"), sorted(&build));

        let spec = ReleaseSpec::from_plan(
            id.clone(),
            service_name,
            Artifact::ContainerImage {
                reference: rendered.tagged.clone(),
                digest: format!("sha256:{}", "ab".repeat(32)),
            },
            &plan,
            vec![SecretEnv {
                name: EnvVarName::parse("STRIPE_KEY").unwrap(),
                secret: format!("deployments/{id}/env/STRIPE_KEY"),
                version: "latest".into(),
            }],
            BTreeMap::from([("devgem-commit".to_string(), commit.to_string())]),
        );
        let service = render_service(&spec, &spec.first_revision()).unwrap();
        insta::assert_json_snapshot!(format!("{app}-cloud-run-service"), sorted(&service));
    }
}
