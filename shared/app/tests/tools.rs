//! The tool executor on the real embedded adapters (SQLite, the folder object store, the
//! secrets file, the local fetcher and the process runtime), without stage workers: what each
//! tool does to the store, what it answers, and that no value the user set leaks.

use devgem_app::clock::RandomIds;
use devgem_app::{Core, InstanceId, LocalPaths, Services, ToolContext, ToolErrorCode, run_tool};
use devgem_domain::{DeploymentId, Failure, Step};
use devgem_embedded::{BusOptions, FileSecrets, FolderObjectStore, InProcessBus, SqliteStore};
use devgem_local::{LocalSourceFetcher, ProcessRuntime};
use devgem_ports::{Secrets, StateStore};
use devgem_tools::ToolCall;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct World {
    _dir: tempfile::TempDir,
    services: Services,
    store: Arc<SqliteStore>,
    secrets: Arc<FileSecrets>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let secrets = Arc::new(FileSecrets::new(dir.path().join("secrets.json")));
    let services = Services {
        core: Core {
            store: store.clone(),
            // No stage subscribes: deployments stay where the tools leave them.
            bus: Arc::new(InProcessBus::new(BusOptions::default())),
            clock: Arc::new(devgem_app::clock::SystemClock),
            ids: Arc::new(RandomIds),
            instance: InstanceId::current(&RandomIds),
            lease: Duration::from_secs(30),
        },
        objects: Arc::new(FolderObjectStore::new(dir.path().join("objects"))),
        secrets: secrets.clone(),
        runtime: Arc::new(ProcessRuntime::new(
            dir.path().join("apps"),
            secrets.clone(),
        )),
        source: Arc::new(LocalSourceFetcher::new(Default::default())),
        sources: devgem_app::SourcePolicy::default(),
    };
    World {
        _dir: dir,
        services,
        store,
        secrets,
    }
}

fn me() -> ToolContext {
    ToolContext {
        owner: "local".into(),
        current: None,
        local_paths: LocalPaths::Allowed,
        webhook_url: Some("https://devgem.example/webhooks/github".into()),
    }
}

fn call(name: &str, args: serde_json::Value) -> ToolCall {
    ToolCall::from_json(name, &args).unwrap()
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/apps")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Deploys `source` with `env` and returns the new deployment's id.
async fn deployed(w: &World, env: serde_json::Value) -> DeploymentId {
    let r = run_tool(
        &w.services,
        &me(),
        &call(
            "deploy_repository",
            json!({"source": fixture("flask-basic"), "env": env, "secret": ["STRIPE_KEY"]}),
        ),
    )
    .await;
    assert!(r.ok, "{r:?}");
    r.deployment_id.unwrap()
}

/// Marks `id` failed with `reason`, as a stage would.
async fn fail(w: &World, id: &DeploymentId, step: Step, reason: &str) {
    let mut d = w.store.get(id).await.unwrap().unwrap();
    d.fail(Failure::new(step, reason), chrono::Utc::now())
        .unwrap();
    w.store.update(&d).await.unwrap();
}

#[tokio::test]
async fn a_deploy_stores_names_and_values_apart_and_says_so_without_the_values() {
    let w = world();
    let r = run_tool(
        &w.services,
        &me(),
        &call(
            "deploy_repository",
            json!({"source": fixture("flask-basic"), "env": {"DEBUG": "false", "STRIPE_KEY": "sk_live_hush"}, "secret": ["STRIPE_KEY"]}),
        ),
    )
    .await;
    assert!(r.ok, "{r:?}");
    let id = r.deployment_id.clone().unwrap();
    assert!(r.text.contains(id.as_str()), "{}", r.text);
    assert_eq!(r.data["id"], id.as_str());
    assert_eq!(r.data["status"], "queued");
    assert_eq!(r.data["env_names"], json!(["DEBUG", "STRIPE_KEY"]));
    let all = serde_json::to_string(&r).unwrap();
    assert!(!all.contains("sk_live_hush"), "{all}");
    // The value is in the secrets port, under the deployment.
    let stored = w
        .secrets
        .get(&devgem_app::keys::env_secret(&id, "STRIPE_KEY"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.expose(), "sk_live_hush");
}

#[tokio::test]
async fn a_call_without_a_deployment_asks_which_one() {
    let w = world();
    let r = run_tool(&w.services, &me(), &call("get_logs", json!({}))).await;
    assert!(!r.ok);
    assert_eq!(r.error.as_ref().unwrap().code, ToolErrorCode::NoDeployment);
    assert!(r.text.contains("Which deployment"), "{}", r.text);
}

#[tokio::test]
async fn the_session_current_deployment_is_used_and_others_owners_are_not_found() {
    let w = world();
    let id = deployed(&w, json!({"STRIPE_KEY": "sk_live_x"})).await;
    let ctx = ToolContext {
        current: Some(id.clone()),
        ..me()
    };
    let r = run_tool(&w.services, &ctx, &call("get_deployment_status", json!({}))).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.deployment_id.as_ref(), Some(&id));
    assert!(r.text.contains("queued"), "{}", r.text);

    let stranger = ToolContext {
        owner: "someone-else".into(),
        ..ctx
    };
    let r = run_tool(
        &w.services,
        &stranger,
        &call("get_deployment_status", json!({})),
    )
    .await;
    assert_eq!(r.error.unwrap().code, ToolErrorCode::NotFound);
    let r = run_tool(&w.services, &stranger, &call("list_deployments", json!({}))).await;
    assert_eq!(r.data["deployments"], json!([]));
    let r = run_tool(&w.services, &me(), &call("list_deployments", json!({}))).await;
    assert_eq!(r.data["deployments"][0]["id"], id.as_str());
    assert!(r.text.starts_with("1 deployment:"), "{}", r.text);
}

#[tokio::test]
async fn abort_stops_a_queued_deployment_and_says_what_it_did() {
    let w = world();
    let id = deployed(&w, json!({"STRIPE_KEY": "sk_live_x"})).await;
    let r = run_tool(
        &w.services,
        &me(),
        &call("abort_deployment", json!({"deployment_id": id.as_str()})),
    )
    .await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.text, format!("Aborted {id}."));
    assert_eq!(r.data["status"], "aborted");
    // Twice is a conflict the user reads, not a crash.
    let r = run_tool(
        &w.services,
        &me(),
        &call("abort_deployment", json!({"deployment_id": id.as_str()})),
    )
    .await;
    assert!(!r.ok);
    assert_eq!(r.error.unwrap().code, ToolErrorCode::Conflict);
}

#[tokio::test]
async fn setting_a_variable_on_a_failed_deployment_redeploys_with_the_old_values_kept() {
    let w = world();
    let id = deployed(&w, json!({"STRIPE_KEY": "sk_live_keep"})).await;
    fail(&w, &id, Step::Deploy, "the app exited with status 1").await;
    let ctx = ToolContext {
        current: Some(id.clone()),
        ..me()
    };
    let r = run_tool(
        &w.services,
        &ctx,
        &call("set_env_vars", json!({"env": {"GREETING": "hi"}})),
    )
    .await;
    assert!(r.ok, "{r:?}");
    let next = r.deployment_id.clone().unwrap();
    assert_ne!(next, id);
    assert_eq!(r.data["env_names"], json!(["GREETING", "STRIPE_KEY"]));
    assert!(r.text.contains(next.as_str()), "{}", r.text);
    let kept = w
        .secrets
        .get(&devgem_app::keys::env_secret(&next, "STRIPE_KEY"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.expose(), "sk_live_keep");
    // A deployment on its way cannot be changed under its worker.
    let busy = ToolContext {
        current: Some(next),
        ..me()
    };
    let r = run_tool(
        &w.services,
        &busy,
        &call("set_env_vars", json!({"env": {"GREETING": "yo"}})),
    )
    .await;
    assert_eq!(r.error.unwrap().code, ToolErrorCode::Conflict);
}

#[tokio::test]
async fn a_redeploy_runs_in_the_region_of_what_it_replaces() {
    let w = world();
    let id = deployed(&w, json!({"STRIPE_KEY": "sk_live_keep"})).await;
    let mut d = w.store.get(&id).await.unwrap().unwrap();
    d.region = Some(devgem_domain::Region::parse("europe-west1").unwrap());
    w.store.update(&d).await.unwrap();
    fail(&w, &id, Step::Deploy, "the app exited with status 1").await;
    let ctx = ToolContext {
        current: Some(id.clone()),
        ..me()
    };
    let r = run_tool(
        &w.services,
        &ctx,
        &call("set_env_vars", json!({"env": {"GREETING": "hi"}})),
    )
    .await;
    assert!(r.ok, "{r:?}");
    let next = r.deployment_id.unwrap();
    assert_ne!(next, id);
    let next = w.store.get(&next).await.unwrap().unwrap();
    assert_eq!(
        next.region.map(|r| r.to_string()).as_deref(),
        Some("europe-west1")
    );
}

#[tokio::test]
async fn a_missing_package_or_library_fix_is_kept_as_a_validated_override() {
    let w = world();
    let id = deployed(&w, json!({"STRIPE_KEY": "sk_live_x"})).await;
    fail(
        &w,
        &id,
        Step::Deploy,
        "the app exited; its last output:\nModuleNotFoundError: No module named 'requests'",
    )
    .await;
    let ctx = ToolContext {
        current: Some(id.clone()),
        ..me()
    };
    let r = run_tool(&w.services, &ctx, &call("apply_fix", json!({}))).await;
    assert!(r.ok, "{r:?}");
    assert!(
        r.text.contains("added `requests` to requirements.txt"),
        "{}",
        r.text
    );
    let next = r.deployment_id.clone().unwrap();
    let stored = w.store.get(&next).await.unwrap().unwrap();
    let change = stored.plan_override.unwrap();
    assert_eq!(change.dependencies[0].requirement(), "requests");

    // The next failure's fix adds to the kept one.
    fail(
        &w,
        &next,
        Step::Deploy,
        "the app exited; its last output:\nImportError: libGL.so.1: cannot open shared object file: No such file or directory",
    )
    .await;
    let ctx = ToolContext {
        current: Some(next.clone()),
        ..me()
    };
    let r = run_tool(&w.services, &ctx, &call("apply_fix", json!({}))).await;
    assert!(r.ok, "{r:?}");
    assert!(r.text.contains("system package `libgl1`"), "{}", r.text);
    let third = r.deployment_id.clone().unwrap();
    let change = w
        .store
        .get(&third)
        .await
        .unwrap()
        .unwrap()
        .plan_override
        .unwrap();
    assert_eq!(change.dependencies.len(), 1);
    assert_eq!(change.system_packages[0].as_str(), "libgl1");
}

#[tokio::test]
async fn a_wrong_port_is_diagnosed_and_the_fix_redeploys_with_a_visible_override() {
    let w = world();
    let id = deployed(&w, json!({"STRIPE_KEY": "sk_live_x"})).await;
    fail(
        &w,
        &id,
        Step::Deploy,
        "the app listens on port 5000, not $PORT (8080); its last output:\n * Running on all addresses (0.0.0.0)\n * Running on http://172.17.0.2:5000",
    )
    .await;
    let ctx = ToolContext {
        current: Some(id.clone()),
        ..me()
    };
    let r = run_tool(&w.services, &ctx, &call("diagnose_failure", json!({}))).await;
    assert!(r.ok, "{r:?}");
    assert!(r.text.contains("port 5000"), "{}", r.text);
    assert_eq!(r.data["diagnosis"]["proposed"]["kind"], "set_port");

    let r = run_tool(
        &w.services,
        &ctx,
        &call("apply_fix", json!({"fix": "set_start_command"})),
    )
    .await;
    assert_eq!(r.error.unwrap().code, ToolErrorCode::BadRequest);

    let r = run_tool(&w.services, &ctx, &call("apply_fix", json!({}))).await;
    assert!(r.ok, "{r:?}");
    let next = r.deployment_id.clone().unwrap();
    assert!(r.text.contains("port 5000"), "{}", r.text);
    let stored = w.store.get(&next).await.unwrap().unwrap();
    assert_eq!(stored.plan_override.unwrap().port, Some(5000));
    assert_eq!(stored.service_name.as_str(), "flask-basic");

    // Nothing to diagnose on a deployment that did not fail.
    let r = run_tool(
        &w.services,
        &me(),
        &call("diagnose_failure", json!({"deployment_id": next.as_str()})),
    )
    .await;
    assert!(r.ok);
    assert!(r.text.contains("queued"), "{}", r.text);
}

#[tokio::test]
async fn analyze_reads_a_folder_without_deploying_and_refuses_paths_over_http() {
    let w = world();
    let r = run_tool(
        &w.services,
        &me(),
        &call(
            "analyze_repository",
            json!({"source": fixture("flask-basic")}),
        ),
    )
    .await;
    assert!(r.ok, "{r:?}");
    assert!(r.text.contains("python app using flask"), "{}", r.text);
    assert_eq!(r.data["analysis"]["language"], "python");
    assert!(r.data["plan"]["start_command"].is_string());
    assert!(w.store.list(&Default::default()).await.unwrap().is_empty());

    let remote = ToolContext {
        local_paths: LocalPaths::Refused,
        ..me()
    };
    let r = run_tool(
        &w.services,
        &remote,
        &call(
            "analyze_repository",
            json!({"source": fixture("flask-basic")}),
        ),
    )
    .await;
    assert_eq!(r.error.unwrap().code, ToolErrorCode::BadRequest);
}

#[tokio::test]
async fn links_are_made_listed_and_removed_for_their_owner_only() {
    let w = world();
    let r = run_tool(
        &w.services,
        &me(),
        &call(
            "link_repository",
            json!({"repository": "https://github.com/acme/shop.git", "env": {"API_TOKEN": "tok_hush"}}),
        ),
    )
    .await;
    assert!(r.ok, "{r:?}");
    let link = &r.data["link"];
    assert_eq!(link["repository"], "acme/shop");
    assert_eq!(link["branch"], "main", "the default branch");
    assert_eq!(link["service_name"], "shop");
    let id = link["id"].as_str().unwrap().to_string();
    for said in [
        "acme/shop",
        "branch main",
        "service shop",
        "https://devgem.example/webhooks/github",
    ] {
        assert!(r.text.contains(said), "{said}: {}", r.text);
    }
    let all = serde_json::to_string(&r).unwrap();
    assert!(!all.contains("tok_hush"), "{all}");
    // The link is the one the webhook reads: in the store, its value in the secrets port.
    let stored = w.store.list_links(Some("local")).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.as_str(), id);
    let env = devgem_app::links::link_env(&w.services, &stored[0])
        .await
        .unwrap();
    assert_eq!(env["API_TOKEN"], "tok_hush");

    let r = run_tool(&w.services, &me(), &call("list_links", json!({}))).await;
    assert!(
        r.ok && r.text.contains("acme/shop") && r.text.contains(&id),
        "{r:?}"
    );

    // Another user: their list is empty, and the link answers exactly as a missing one.
    let stranger = ToolContext {
        owner: "someone-else".into(),
        ..me()
    };
    let r = run_tool(&w.services, &stranger, &call("list_links", json!({}))).await;
    assert!(r.ok && r.data["links"] == json!([]), "{r:?}");
    let missing = "l-00000000000000000000000000000000";
    let by_id = |id: &str| call("unlink_repository", json!({ "link_id": id }));
    let theirs = run_tool(&w.services, &stranger, &by_id(&id)).await;
    let nobodys = run_tool(&w.services, &stranger, &by_id(missing)).await;
    assert!(!theirs.ok);
    assert_eq!(theirs.error.as_ref().unwrap().code, ToolErrorCode::NotFound);
    assert_eq!(
        theirs.text.replace(&id, "ID"),
        nobodys.text.replace(missing, "ID")
    );
    let by_repository = call("unlink_repository", json!({"repository": "acme/shop"}));
    let r = run_tool(&w.services, &stranger, &by_repository).await;
    assert_eq!(
        r.error.as_ref().unwrap().code,
        ToolErrorCode::NotFound,
        "{r:?}"
    );
    let r = run_tool(
        &w.services,
        &stranger,
        &call("unlink_repository", json!({})),
    )
    .await;
    assert!(!r.ok, "{r:?}");
    assert_eq!(w.store.list_links(Some("local")).await.unwrap().len(), 1);

    // The owner removes it by repository; the reply says what went.
    let r = run_tool(&w.services, &me(), &by_repository).await;
    assert!(r.ok, "{r:?}");
    assert!(
        r.text.contains("Removed the link") && r.text.contains(&id) && r.text.contains("acme/shop"),
        "{}",
        r.text
    );
    assert!(w.store.list_links(Some("local")).await.unwrap().is_empty());
    // Its env value went with it: nothing of the link is left in the secrets port.
    let key = format!("links/{id}/env/API_TOKEN");
    assert!(
        w.secrets.get(&key).await.unwrap().is_none(),
        "{key} is left"
    );
}

#[tokio::test]
async fn a_link_with_an_oversized_env_value_is_refused_when_it_is_made() {
    let w = world();
    let request = devgem_app::links::NewLink {
        repository: "acme/shop".into(),
        branch: "main".into(),
        service_name: None,
        env: [("BIG".to_string(), "x".repeat(33 * 1024))].into(),
    };
    let err = devgem_app::links::create_link(&w.services, "local", request)
        .await
        .unwrap_err();
    match &err {
        devgem_app::AppError::BadRequest { message, hint } => {
            assert!(
                message.contains("BIG") && message.contains("32 KiB"),
                "{message}"
            );
            assert!(!hint.is_empty());
        }
        other => panic!("not a 400: {other:?}"),
    }
    assert!(w.store.list_links(None).await.unwrap().is_empty());
    let secrets = std::fs::read_to_string(w._dir.path().join("secrets.json")).unwrap_or_default();
    assert!(!secrets.contains("xxxx"), "the value was stored");
}

#[tokio::test]
async fn unlinking_without_naming_a_link_takes_the_only_one_and_asks_among_several() {
    let w = world();
    let link = |repository: &str| call("link_repository", json!({ "repository": repository }));
    assert!(run_tool(&w.services, &me(), &link("acme/shop")).await.ok);
    assert!(run_tool(&w.services, &me(), &link("acme/api")).await.ok);
    let unlink = call("unlink_repository", json!({}));
    let r = run_tool(&w.services, &me(), &unlink).await;
    assert_eq!(
        r.error.as_ref().unwrap().code,
        ToolErrorCode::BadRequest,
        "{r:?}"
    );
    assert!(
        r.text.contains("acme/shop") && r.text.contains("acme/api"),
        "{}",
        r.text
    );
    assert_eq!(w.store.list_links(Some("local")).await.unwrap().len(), 2);
    let r = run_tool(
        &w.services,
        &me(),
        &call("unlink_repository", json!({"repository": "acme/api"})),
    )
    .await;
    assert!(r.ok, "{r:?}");
    let r = run_tool(&w.services, &me(), &unlink).await;
    assert!(r.ok && r.text.contains("acme/shop"), "{r:?}");
    assert!(w.store.list_links(Some("local")).await.unwrap().is_empty());
}

#[tokio::test]
async fn deploy_anyway_redeploys_a_findings_stop_with_the_override_kept() {
    let w = world();
    let id = deployed(&w, json!({"STRIPE_KEY": "sk_live_x"})).await;
    fail(
        &w,
        &id,
        Step::SecurityScan,
        "1 high-severity finding(s): aws.txt:2",
    )
    .await;
    let ctx = ToolContext {
        current: Some(id.clone()),
        ..me()
    };
    let plain = run_tool(&w.services, &ctx, &call("redeploy", json!({}))).await;
    assert!(plain.ok, "{plain:?}");
    assert_ne!(plain.data["allow_findings"], true, "{}", plain.data);
    let r = run_tool(
        &w.services,
        &ctx,
        &call("redeploy", json!({"allow_findings": true})),
    )
    .await;
    assert!(r.ok, "{r:?}");
    let next = r.deployment_id.clone().unwrap();
    assert_ne!(next, id);
    assert_eq!(r.data["allow_findings"], true, "{}", r.data);
    assert!(r.text.contains("security findings allowed"), "{}", r.text);
    // A later redeploy of it keeps the owner's choice.
    let ctx = ToolContext {
        current: Some(next),
        ..me()
    };
    let again = run_tool(&w.services, &ctx, &call("redeploy", json!({}))).await;
    assert_eq!(again.data["allow_findings"], true, "{}", again.data);
    // And a new deploy takes the flag too.
    let r = run_tool(
        &w.services,
        &me(),
        &call(
            "deploy_repository",
            json!({"source": fixture("flask-basic"), "allow_findings": true}),
        ),
    )
    .await;
    assert_eq!(r.data["allow_findings"], true, "{}", r.data);
}
