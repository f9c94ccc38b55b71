//! The API's per-user rate limit on a manual clock: a user's burst, the 429 with
//! `Retry-After`, and the bucket refilling as the clock (not the wall) moves. The API runs on
//! the real embedded adapters and answers real HTTP on loopback.

use devgem_app::clock::{ManualClock, RandomIds};
use devgem_app::{Core, InstanceId, LocalPaths, Services};
use devgem_domain::{ApiToken, RateLimit, TokenId, UserId};
use devgem_embedded::{BusOptions, FileSecrets, FolderObjectStore, InProcessBus, SqliteStore};
use devgem_fn_chat::{Api, ApiOptions};
use devgem_local::{LocalSourceFetcher, ProcessRuntime};
use devgem_ports::StateStore;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn a_users_burst_is_limited_and_refills_as_the_clock_moves() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let secrets = Arc::new(FileSecrets::new(dir.path().join("secrets.json")));
    let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let services = Services {
        core: Core {
            store: store.clone(),
            bus: Arc::new(InProcessBus::new(BusOptions::default())),
            clock: clock.clone(),
            ids: Arc::new(RandomIds),
            instance: InstanceId::current(&RandomIds),
            lease: Duration::from_secs(30),
        },
        objects: Arc::new(FolderObjectStore::new(dir.path().join("objects"))),
        secrets: secrets.clone(),
        runtime: Arc::new(ProcessRuntime::new(dir.path().join("apps"), secrets)),
        source: Arc::new(LocalSourceFetcher::new(Default::default())),
        sources: devgem_app::SourcePolicy::default(),
    };
    let mut tokens = Vec::new();
    for (n, user) in ["ann", "bob"].into_iter().enumerate() {
        let (token, plain) = ApiToken::issue(
            TokenId::from_uuid(uuid::Uuid::new_v4()),
            UserId::parse(user).unwrap(),
            [n as u8 + 1; 32],
            start,
        );
        store.put_token(&token).await.unwrap();
        tokens.push(plain.expose().to_string());
    }
    let api = Arc::new(Api::new(
        services,
        ApiOptions {
            token: None,
            rate_limit: Some(RateLimit { per_minute: 6 }),
            local_paths: LocalPaths::Refused,
            max_upload_bytes: 1 << 20,
            monitor_every: None,
            public_url: None,
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handler: devgem_http::Handler = Arc::new(move |req| {
        let api = api.clone();
        Box::pin(async move { api.handle(req).await })
    });
    tokio::spawn(devgem_http::serve(
        listener,
        handler,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    let client = reqwest::Client::new();
    let list = |token: &str| {
        client
            .get(format!("{base}/api/deployments"))
            .bearer_auth(token)
            .send()
    };
    let (ann, bob) = (&tokens[0], &tokens[1]);
    for _ in 0..6 {
        assert_eq!(list(ann).await.unwrap().status(), 200);
    }
    let limited = list(ann).await.unwrap();
    assert_eq!(limited.status(), 429);
    // Six a minute: one comes back every 10 s.
    assert_eq!(limited.headers()["retry-after"], "10");
    assert_eq!(
        list(bob).await.unwrap().status(),
        200,
        "bob has his own bucket"
    );
    clock.advance(Duration::from_secs(4));
    let limited = list(ann).await.unwrap();
    assert_eq!(limited.headers()["retry-after"], "6");
    clock.advance(Duration::from_secs(6));
    assert_eq!(list(ann).await.unwrap().status(), 200);
    assert_eq!(list(ann).await.unwrap().status(), 429);

    // The refusals are counted in ann's usage, which only she (and the admin) sees.
    clock.advance(Duration::from_secs(10));
    let stats: serde_json::Value = client
        .get(format!("{base}/stats"))
        .bearer_auth(ann)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["scope"], "user", "{stats}");
    assert_eq!(stats["users"].as_array().unwrap().len(), 1, "{stats}");
    assert_eq!(stats["users"][0]["user"], "ann");
    assert_eq!(stats["users"][0]["rate_limited"], 3, "{stats}");
    assert_eq!(stats["users"][0]["requests"], 10, "{stats}");
}
