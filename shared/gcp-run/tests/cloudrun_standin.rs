//! The Cloud Run runtime against the loopback stand-in of Cloud Run Admin v2, the v1 domain
//! mappings and Cloud Logging (devgem-testing): only Google can answer these APIs for real,
//! so the stand-in checks every documented request and these tests check what a user sees.

use devgem_domain::{DeploymentId, EnvVarName, Region, ServiceName};
use devgem_gcp_run::call::RetryPolicy;
use devgem_gcp_run::{CloudConfig, CloudRunRuntime, Endpoints, Timing, names};
use devgem_ports::{
    Artifact, DomainStatus, EnvUpdate, LogQuery, LogSink, ReleaseSpec, Resources, Runtime,
    RuntimeEnv, RuntimeError, Scaling, SecretEnv, SecretValue, TcpProbe,
};
use devgem_testing::standin::cloudrun::CloudRun;
use devgem_testing::standin::logging::Logging;
use devgem_testing::standin::{Api, Standin};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "ya29.standin-token";
const SECRET_VALUE: &str = "sk_live_never_on_the_wire";

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl LogSink for Lines {
    fn line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

struct World {
    standin: Standin,
    cloudrun: Arc<CloudRun>,
    logging: Arc<Logging>,
    runtime: CloudRunRuntime,
}

async fn world() -> World {
    let cloudrun = Arc::new(CloudRun::new());
    let logging = Arc::new(Logging::new());
    let standin = Standin::start(
        Some(TOKEN),
        vec![
            cloudrun.clone() as Arc<dyn Api>,
            logging.clone() as Arc<dyn Api>,
        ],
    );
    let mut config = CloudConfig::new("acme");
    config.endpoints = Endpoints::all_at(&standin.base_url);
    config.access_token = Some(SecretValue::new(TOKEN));
    let runtime = CloudRunRuntime::new(&config)
        .await
        .unwrap()
        .with_timing(Timing {
            operation_poll: Duration::from_millis(20),
            operation_deadline: Duration::from_secs(10),
            url_poll: Duration::from_millis(20),
            url_deadline: Duration::from_secs(5),
            not_found_grace: Duration::from_millis(200),
        })
        .with_retry_policy(RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
        });
    World {
        standin,
        cloudrun,
        logging,
        runtime,
    }
}

fn deployment() -> DeploymentId {
    DeploymentId::parse("d-0193aa7f2b3c4d5e8f9a0b1c2d3e4f50").unwrap()
}

fn spec(image: &str) -> ReleaseSpec {
    let id = deployment();
    ReleaseSpec {
        service_name: ServiceName::parse("octo-app").unwrap(),
        artifact: Artifact::ContainerImage {
            reference: format!("us-central1-docker.pkg.dev/acme/devgem/{image}:9fceb02"),
            digest: format!("sha256:{:0>64}", image.len()),
        },
        container_port: 8080,
        start_command: None,
        working_dir: None,
        env: BTreeMap::from([("NODE_ENV".to_string(), "production".to_string())]),
        secret_env: vec![SecretEnv {
            name: EnvVarName::parse("STRIPE_KEY").unwrap(),
            secret: format!("deployments/{id}/env/STRIPE_KEY"),
            version: "latest".into(),
        }],
        resources: Resources {
            cpu_millis: 1000,
            memory_mib: 512,
        },
        scaling: Scaling {
            min_instances: 0,
            max_instances: 10,
        },
        startup_probe: TcpProbe {
            port: 8080,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(240),
        },
        labels: BTreeMap::from([("devgem-deployment".to_string(), id.to_string())]),
        public: true,
        hard_coded_port: None,
        region: None,
        deployment_id: id,
    }
}

async fn deploy(w: &World, spec: &ReleaseSpec) -> Result<devgem_ports::Release, RuntimeError> {
    w.runtime
        .deploy(spec, &Lines::default(), &CancellationToken::new())
        .await
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The create calls (`POST .../services`), not the IAM calls under a service.
fn creates(w: &World) -> Vec<devgem_testing::standin::Request> {
    w.standin
        .requests_to("POST", "/services")
        .into_iter()
        .filter(|r| r.path.ends_with("/services"))
        .collect()
}

fn service() -> ServiceName {
    ServiceName::parse("octo-app").unwrap()
}

#[tokio::test]
async fn a_deploy_goes_live_at_the_service_url_on_the_standin() {
    let w = world().await;
    let s = spec("octo-app");
    let release = deploy(&w, &s).await.unwrap();

    assert_eq!(
        release.url,
        format!("{}/apps/octo-app/", w.standin.base_url)
    );
    assert_eq!(release.revision, s.first_revision());
    let (status, body) = get(&release.url).await;
    assert_eq!(status, 200);
    assert!(body.contains(&release.revision), "{body}");

    let requests = w.standin.requests();
    for r in requests.iter().filter(|r| !r.path.starts_with("/apps/")) {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{} {}",
            r.method,
            r.path
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains(SECRET_VALUE),
            "a secret value went to {}",
            r.path
        );
    }
    let create = &creates(&w)[0];
    assert_eq!(create.query["serviceId"], "octo-app");
    let container = &create.json()["template"]["containers"][0];
    assert!(
        container["image"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/octo-app@sha256:{:0>64}", 8)),
        "{}",
        container["image"]
    );
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    let stripe = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "STRIPE_KEY")
        .unwrap();
    assert!(stripe.get("value").is_none());
    assert_eq!(
        stripe["valueSource"]["secretKeyRef"]["secret"],
        names::secret_id(&s.secret_env[0].secret)
    );
    let set_policy = &w.standin.requests_to("POST", ":setIamPolicy")[0];
    assert_eq!(
        set_policy.json()["policy"]["bindings"][0],
        serde_json::json!({"role": "roles/run.invoker", "members": ["allUsers"]})
    );
    assert_eq!(w.cloudrun.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn a_service_that_exists_gets_a_new_revision_on_the_standin() {
    let w = world().await;
    let s = spec("octo-app");
    let first = deploy(&w, &s).await.unwrap();
    let second = deploy(&w, &s).await.unwrap();

    assert_eq!(second.revision, format!("{}-r2", first.revision));
    let patch = &w.standin.requests_to("PATCH", "/services/octo-app")[0];
    assert!(!patch.query.contains_key("updateMask"), "a whole update");
    assert_eq!(patch.json()["etag"], "\"etag-2\"", "the etag just read");
    assert!(get(&second.url).await.1.contains(&second.revision));
    assert_eq!(creates(&w).len(), 2, "create answered 409, then the update");
    assert_eq!(w.cloudrun.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn a_throttled_create_waits_for_retry_after_on_the_standin() {
    let w = world().await;
    w.cloudrun.throttle_once("POST", "/services");
    let started = Instant::now();
    let release = deploy(&w, &spec("octo-app")).await.unwrap();

    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(creates(&w).len(), 2);
    assert_eq!(get(&release.url).await.0, 200);
}

#[tokio::test]
async fn a_refused_create_names_the_missing_permission_on_the_standin() {
    let w = world().await;
    w.cloudrun.deny("POST", "/services", "run.services.create");
    let err = deploy(&w, &spec("octo-app")).await.unwrap_err();

    match err {
        RuntimeError::Failed { reason, hint } => {
            assert!(reason.contains("run.services.create"), "{reason}");
            assert!(hint.contains("permission"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(creates(&w).len(), 1, "not retried");
}

#[tokio::test]
async fn a_revision_that_never_becomes_ready_leaves_traffic_on_the_last_good_one_on_the_standin() {
    let w = world().await;
    let good = deploy(&w, &spec("octo-app")).await.unwrap();
    w.cloudrun.never_ready(
        "broken",
        "The user-provided container failed to start and listen on the port defined provided \
         by the PORT=8080 environment variable.",
    );
    let err = deploy(&w, &spec("broken")).await.unwrap_err();

    let failed = format!("{}-r2", good.revision);
    let reason = err.to_string();
    assert!(reason.contains(&failed), "{reason}");
    assert!(reason.contains("PORT=8080"), "{reason}");
    assert!(reason.contains(&good.revision), "{reason}");
    assert!(
        w.standin
            .requests_to("PATCH", "/services/octo-app")
            .iter()
            .any(|r| r.query.get("updateMask").map(String::as_str) == Some("traffic")),
        "traffic was pinned back"
    );
    assert_eq!(
        w.cloudrun.serving("octo-app"),
        BTreeMap::from([(good.revision.clone(), 100)])
    );
    assert!(get(&good.url).await.1.contains(&good.revision));
    assert_eq!(w.cloudrun.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn revisions_list_newest_first_and_route_traffic_rolls_back_on_the_standin() {
    let w = world().await;
    let v1 = deploy(&w, &spec("octo-app")).await.unwrap();
    let v2 = deploy(&w, &spec("octo-app-v2")).await.unwrap();

    let revisions = w.runtime.revisions(&service(), None).await.unwrap();
    let listed: Vec<(&str, bool)> = revisions
        .iter()
        .map(|r| (r.name.as_str(), r.serving))
        .collect();
    assert_eq!(
        listed,
        vec![(v2.revision.as_str(), true), (v1.revision.as_str(), false)]
    );
    assert_eq!(revisions[0].deployment_id, deployment());
    assert_eq!(revisions[0].url.as_deref(), Some(v2.url.as_str()));

    let back = w
        .runtime
        .route_traffic(
            &service(),
            None,
            &v1.revision,
            &Lines::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(back.revision, v1.revision);
    assert!(get(&back.url).await.1.contains(&v1.revision));
    let serving: Vec<bool> = w
        .runtime
        .revisions(&service(), None)
        .await
        .unwrap()
        .iter()
        .map(|r| r.serving)
        .collect();
    assert_eq!(serving, vec![false, true]);

    let unknown = w
        .runtime
        .route_traffic(
            &service(),
            None,
            "octo-app-nope",
            &Lines::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("no revision"), "{unknown}");
    assert_eq!(w.cloudrun.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn an_env_update_is_a_new_revision_with_the_merged_env_on_the_standin() {
    let w = world().await;
    let first = deploy(&w, &spec("octo-app")).await.unwrap();
    let update = EnvUpdate {
        set: BTreeMap::from([("FEATURE".to_string(), "on".to_string())]),
        set_secrets: vec![SecretEnv {
            name: EnvVarName::parse("DB_URL").unwrap(),
            secret: "deployments/x/env/DB_URL".into(),
            version: "2".into(),
        }],
        remove: vec!["NODE_ENV".into()],
    };
    let release = w
        .runtime
        .update_env(
            &service(),
            None,
            &update,
            &Lines::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(release.revision, format!("{}-r2", first.revision));
    assert!(get(&release.url).await.1.contains(&release.revision));
    let patch = w.standin.requests_to("PATCH", "/services/octo-app");
    let env = patch.last().unwrap().json()["template"]["containers"][0]["env"].clone();
    let names: Vec<&str> = env
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["STRIPE_KEY", "FEATURE", "DB_URL"]);
    assert_eq!(env[1]["value"], "on");
    assert_eq!(
        env[2]["valueSource"]["secretKeyRef"],
        serde_json::json!({"secret": "devgem-deployments-x-env-DB_URL", "version": "2"})
    );
    // What the service runs reads back: the plain value, and the secret as a reference only.
    let running = w
        .runtime
        .current_env(&service(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(running.contains(&RuntimeEnv::Plain {
        name: "FEATURE".into(),
        value: "on".into()
    }));
    assert!(running.contains(&RuntimeEnv::Secret {
        name: "DB_URL".into(),
        secret: "devgem-deployments-x-env-DB_URL".into()
    }));
    assert!(!running.iter().any(|v| v.name() == "NODE_ENV"));
    assert_eq!(w.cloudrun.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn logs_come_in_pages_newest_last_on_the_standin() {
    let w = world().await;
    deploy(&w, &spec("octo-app")).await.unwrap();
    w.logging.add_lines(
        "octo-app",
        &["line 0", "line 1", "line 2", "line 3", "line 4"],
    );

    let mut query = LogQuery {
        limit: 2,
        page_token: None,
    };
    let newest = w.runtime.logs(&deployment(), None, &query).await.unwrap();
    assert_eq!(newest.text(), "line 3\nline 4\n");
    assert!(newest.lines[0].timestamp < newest.lines[1].timestamp);
    query.page_token = newest.next_page_token.clone();
    let before = w.runtime.logs(&deployment(), None, &query).await.unwrap();
    assert_eq!(before.text(), "line 1\nline 2\n");
    query.page_token = before.next_page_token.clone();
    let oldest = w.runtime.logs(&deployment(), None, &query).await.unwrap();
    assert_eq!(oldest.text(), "line 0\n");
    assert_eq!(oldest.next_page_token, None);

    let list = &w.standin.requests_to("POST", "/v2/entries:list")[0];
    assert_eq!(list.json()["pageSize"], 2);
    assert_eq!(w.logging.problems(), Vec::<String>::new());

    let other = DeploymentId::parse("d-ffff").unwrap();
    assert!(
        w.runtime
            .logs(&other, None, &query)
            .await
            .unwrap()
            .lines
            .is_empty()
    );
}

#[tokio::test]
async fn a_domain_mapping_answers_with_the_dns_records_on_the_standin() {
    let w = world().await;
    deploy(&w, &spec("octo-app")).await.unwrap();

    let sub = w
        .runtime
        .map_domain(&service(), None, "app.example.com")
        .await
        .unwrap();
    assert!(matches!(sub.status, DomainStatus::Pending(ref m) if m.contains("certificate")));
    assert_eq!(sub.records.len(), 1);
    assert_eq!(
        (
            sub.records[0].kind.as_str(),
            sub.records[0].name.as_str(),
            sub.records[0].data.as_str()
        ),
        ("CNAME", "app", "ghs.googlehosted.com.")
    );
    let apex = w
        .runtime
        .map_domain(&service(), None, "example.com")
        .await
        .unwrap();
    let kinds: Vec<&str> = apex.records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["A", "A", "A", "A", "AAAA", "AAAA", "AAAA", "AAAA"]);

    let again = w
        .runtime
        .map_domain(&service(), None, "app.example.com")
        .await
        .unwrap();
    assert_eq!(again, sub, "mapping twice reads the existing mapping");
    let listed = w.runtime.domains(&service(), None).await.unwrap();
    assert_eq!(listed.len(), 2);
    let create = &w.standin.requests_to(
        "POST",
        "/v1/projects/acme/locations/us-central1/domainmappings",
    )[0];
    assert_eq!(create.json()["spec"]["routeName"], "octo-app");
    assert_eq!(
        create.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(w.cloudrun.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn stop_deletes_the_service_on_the_standin() {
    let w = world().await;
    let release = deploy(&w, &spec("octo-app")).await.unwrap();
    w.runtime.stop(&deployment(), None).await.unwrap();

    assert_eq!(get(&release.url).await.0, 404);
    assert!(
        w.runtime
            .revisions(&service(), None)
            .await
            .unwrap()
            .is_empty()
    );
    w.runtime.stop(&deployment(), None).await.unwrap();
}

/// The paths of the Cloud Run Admin calls (v2 services and operations, v1 domain mappings).
fn cloud_run_paths(w: &World) -> Vec<String> {
    w.standin
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.starts_with("/v2/projects/") || p.starts_with("/v1/projects/"))
        .collect()
}

#[tokio::test]
async fn a_deployment_with_a_region_runs_and_is_managed_in_that_region_on_the_standin() {
    let w = world().await; // configured region: us-central1
    let europe = Region::parse("europe-west1").unwrap();
    let mut s = spec("octo-app");
    s.region = Some(europe.clone());
    let lines = Lines::default();
    let release = w
        .runtime
        .deploy(&s, &lines, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        release.url,
        format!("{}/apps/octo-app/", w.standin.base_url)
    );
    assert_eq!(release.revision, s.first_revision());
    assert!(get(&release.url).await.1.contains(&release.revision));
    assert!(
        lines
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.ends_with("in europe-west1")),
        "the log says where it deploys"
    );
    assert_eq!(
        creates(&w)[0].path,
        "/v2/projects/acme/locations/europe-west1/services"
    );

    // Every later call addresses the same region.
    let europe = Some(&europe);
    let cancel = CancellationToken::new();
    let revisions = w.runtime.revisions(&service(), europe).await.unwrap();
    assert_eq!(revisions[0].name, release.revision);
    w.runtime
        .update_env(
            &service(),
            europe,
            &EnvUpdate {
                set: BTreeMap::from([("FEATURE".to_string(), "on".to_string())]),
                ..EnvUpdate::default()
            },
            &Lines::default(),
            &cancel,
        )
        .await
        .unwrap();
    assert!(
        w.runtime
            .current_env(&service(), europe)
            .await
            .unwrap()
            .unwrap()
            .iter()
            .any(|v| v.name() == "FEATURE")
    );
    let back = w
        .runtime
        .route_traffic(
            &service(),
            europe,
            &release.revision,
            &Lines::default(),
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(back.revision, release.revision);
    w.runtime
        .map_domain(&service(), europe, "app.example.com")
        .await
        .unwrap();
    w.logging.add_lines("octo-app", &["hello from europe"]);
    w.runtime
        .logs(&deployment(), europe, &LogQuery::default())
        .await
        .unwrap();
    let filter = w.standin.requests_to("POST", "/v2/entries:list")[0].json()["filter"].clone();
    assert!(
        filter
            .as_str()
            .unwrap()
            .contains(r#"resource.labels.location="europe-west1""#),
        "{filter}"
    );
    w.runtime.stop(&deployment(), europe).await.unwrap();
    assert_eq!(get(&release.url).await.0, 404);

    let paths = cloud_run_paths(&w);
    assert!(paths.len() > 10, "{paths:?}");
    let elsewhere: Vec<&String> = paths
        .iter()
        .filter(|p| !p.contains("/locations/europe-west1/"))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "calls outside europe-west1: {elsewhere:?}"
    );
    assert!(
        w.standin
            .requests_to(
                "DELETE",
                "/v2/projects/acme/locations/europe-west1/services/octo-app"
            )
            .len()
            == 1
    );
    assert_eq!(w.cloudrun.problems(), Vec::<String>::new());
    assert_eq!(w.logging.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn a_deployment_without_a_region_runs_in_the_configured_one_on_the_standin() {
    let w = world().await;
    deploy(&w, &spec("octo-app")).await.unwrap();
    w.runtime.revisions(&service(), None).await.unwrap();
    w.runtime.stop(&deployment(), None).await.unwrap();
    let paths = cloud_run_paths(&w);
    assert!(!paths.is_empty());
    assert!(
        paths.iter().all(|p| p.contains("/locations/us-central1/")),
        "{paths:?}"
    );
}

#[tokio::test]
async fn a_native_build_is_refused_before_any_call_on_the_standin() {
    let w = world().await;
    let mut s = spec("octo-app");
    s.artifact = Artifact::LocalBuild {
        dir: "/tmp/app".into(),
    };
    let err = deploy(&w, &s).await.unwrap_err();
    assert!(err.to_string().contains("native build"), "{err}");
    assert!(w.standin.requests().is_empty());
}
