//! The Secret Manager adapter of the secrets port against the loopback stand-in, which checks
//! each documented request (only Google can answer for real).

use base64::Engine;
use devgem_gcp_run::call::RetryPolicy;
use devgem_gcp_run::{CloudConfig, Endpoints, SecretManagerSecrets};
use devgem_ports::{SecretValue, Secrets};
use devgem_testing::standin::secretmanager::SecretManager;
use devgem_testing::standin::{Api, Standin};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "ya29.standin-token";
const KEY: &str = "deployments/d-0193ab/env/STRIPE_KEY";
const SECRET_ID: &str = "devgem-deployments-d-0193ab-env-STRIPE_KEY";

async fn start() -> (Standin, Arc<SecretManager>, SecretManagerSecrets) {
    let api = Arc::new(SecretManager::new("acme"));
    let standin = Standin::start(Some(TOKEN), vec![api.clone() as Arc<dyn Api>]);
    let mut config = CloudConfig::new("acme");
    config.endpoints = Endpoints::all_at(&standin.base_url);
    config.access_token = Some(SecretValue::new(TOKEN));
    let secrets = SecretManagerSecrets::new(&config)
        .await
        .expect("client")
        .with_retry_policy(RetryPolicy {
            attempts: 2,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            attempt_timeout: Duration::from_secs(10),
        });
    (standin, api, secrets)
}

#[tokio::test]
async fn put_then_get_round_trips_on_the_standin() {
    let (standin, api, secrets) = start().await;
    secrets
        .put(KEY, &SecretValue::new("sk_live_123"))
        .await
        .unwrap();
    let value = secrets.get(KEY).await.unwrap().expect("the value");
    assert_eq!(value.expose(), "sk_live_123");

    let create = &standin.requests_to("POST", "/v1/projects/acme/secrets")[0];
    assert_eq!(create.path, "/v1/projects/acme/secrets");
    assert_eq!(create.query["secretId"], SECRET_ID);
    assert_eq!(
        create.json()["replication"],
        serde_json::json!({"automatic": {}})
    );
    assert_eq!(
        create.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        api.labels(SECRET_ID).unwrap()["devgem-deployment"],
        "d-0193ab"
    );
    let access = &standin.requests_to("GET", ":access")[0];
    assert_eq!(
        access.path,
        format!("/v1/projects/acme/secrets/{SECRET_ID}/versions/latest:access")
    );
}

#[tokio::test]
async fn a_second_put_adds_a_version_and_get_reads_the_latest_on_the_standin() {
    let (standin, api, secrets) = start().await;
    secrets.put(KEY, &SecretValue::new("first")).await.unwrap();
    secrets.put(KEY, &SecretValue::new("second")).await.unwrap();
    assert_eq!(api.version_count(SECRET_ID), 2);
    assert_eq!(secrets.get(KEY).await.unwrap().unwrap().expose(), "second");
    // The second create met 409 ALREADY_EXISTS and the put carried on.
    let creates = standin
        .requests_to("POST", "/v1/projects/acme/secrets")
        .into_iter()
        .filter(|r| r.path == "/v1/projects/acme/secrets")
        .count();
    assert_eq!(creates, 2);
    assert_eq!(standin.requests_to("POST", ":addVersion").len(), 2);
}

#[tokio::test]
async fn the_value_appears_in_no_request_but_add_version_on_the_standin() {
    let (standin, _api, secrets) = start().await;
    let value = "hunter2-very-secret";
    secrets.put(KEY, &SecretValue::new(value)).await.unwrap();
    secrets.get(KEY).await.unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(value);
    let requests = standin.requests();
    assert!(requests.len() >= 3, "{requests:?}");
    for r in &requests {
        let everything = format!(
            "{} {} {:?} {:?} {}",
            r.method,
            r.path,
            r.query,
            r.headers,
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            !everything.contains(value),
            "the raw value leaked: {everything}"
        );
        let is_add_version = r.method == "POST" && r.path.ends_with(":addVersion");
        assert_eq!(
            everything.contains(&encoded),
            is_add_version,
            "only addVersion carries the payload: {everything}"
        );
        if is_add_version {
            let payload = &r.json()["payload"];
            assert_eq!(payload["data"], encoded.as_str());
            assert_eq!(
                payload["dataCrc32c"],
                crc32c::crc32c(value.as_bytes()).to_string().as_str()
            );
        }
    }
}

#[tokio::test]
async fn a_missing_secret_is_none_on_the_standin() {
    let (_standin, _api, secrets) = start().await;
    assert!(
        secrets
            .get("deployments/d-1/env/NOPE")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn delete_removes_the_secret_and_a_missing_one_is_fine_on_the_standin() {
    let (standin, api, secrets) = start().await;
    secrets.put(KEY, &SecretValue::new("v")).await.unwrap();
    secrets.delete(KEY).await.unwrap();
    assert_eq!(api.version_count(SECRET_ID), 0);
    assert!(secrets.get(KEY).await.unwrap().is_none());
    let delete = &standin.requests_to("DELETE", "/v1/projects/acme/secrets")[0];
    assert_eq!(
        delete.path,
        format!("/v1/projects/acme/secrets/{SECRET_ID}")
    );
    // Deleting again (or a key never set) is not an error.
    secrets.delete(KEY).await.unwrap();
}

#[tokio::test]
async fn a_403_names_the_missing_permission_on_the_standin() {
    let (standin, api, secrets) = start().await;
    api.deny("secretmanager.versions.add");
    let err = secrets
        .put(KEY, &SecretValue::new("v"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("secretmanager.versions.add"), "{err}");
    assert!(err.contains("grant the missing permission"), "{err}");
    // A refusal is final: it is not retried.
    assert_eq!(standin.requests_to("POST", ":addVersion").len(), 1);
}

#[tokio::test]
async fn only_the_apps_account_may_read_a_new_secret_on_the_standin() {
    let api = Arc::new(SecretManager::new("acme"));
    let standin = Standin::start(Some(TOKEN), vec![api.clone() as Arc<dyn Api>]);
    let mut config = CloudConfig::new("acme");
    config.endpoints = Endpoints::all_at(&standin.base_url);
    config.access_token = Some(SecretValue::new(TOKEN));
    config.runtime_service_account = Some("apps@acme.iam.gserviceaccount.com".into());
    let secrets = SecretManagerSecrets::new(&config).await.expect("client");
    secrets.put(KEY, &SecretValue::new("v1")).await.unwrap();
    secrets.put(KEY, &SecretValue::new("v2")).await.unwrap();

    let policy = api.policy(SECRET_ID).expect("a policy on the secret");
    assert_eq!(
        policy["bindings"],
        serde_json::json!([{
            "role": "roles/secretmanager.secretAccessor",
            "members": ["serviceAccount:apps@acme.iam.gserviceaccount.com"]
        }])
    );
    // Granted once, when the secret was created; a new version changes no policy.
    assert_eq!(standin.requests_to("POST", ":setIamPolicy").len(), 1);
}
