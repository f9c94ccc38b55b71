//! FirestoreStore against the Firestore emulator: the StateStore contract.

use crate::require_emulators;
use crate::support::{config, deployment, median};
use devgem_domain::{DeploymentId, EventKind, NewEvent, Status, Step};
use devgem_gcp::{FirestoreStore, GcpConfig};
use devgem_ports::{ListFilter, StateStore, StoreError};
use futures::StreamExt;
use std::time::{Duration, Instant};

async fn store(config: &GcpConfig) -> FirestoreStore {
    FirestoreStore::new(config).await.expect("firestore store")
}

fn log(i: u64) -> NewEvent {
    NewEvent::new(
        EventKind::Log,
        Some(Step::ContainerBuild),
        format!("line {i}"),
        50,
    )
}

#[tokio::test]
async fn create_get_and_list_newest_first() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let s = store(&config(emu)).await;
    let owner = format!("owner-{}", crate::support::short_uid());
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut d = deployment(&owner);
        d.created_at += chrono::Duration::seconds(i);
        s.create(&d).await.unwrap();
        assert_eq!(s.get(&d.id).await.unwrap().as_ref(), Some(&d));
        ids.push(d.id.clone());
    }
    let again = s.get(&ids[0]).await.unwrap().unwrap();
    assert!(matches!(
        s.create(&again).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        s.get(&DeploymentId::from_uuid(uuid::Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );

    let listed = s
        .list(&ListFilter {
            owner: Some(owner.clone()),
            limit: 0,
        })
        .await
        .unwrap();
    let listed_ids: Vec<_> = listed.iter().map(|d| d.id.clone()).collect();
    assert_eq!(listed_ids, ids.iter().rev().cloned().collect::<Vec<_>>());
    let two = s
        .list(&ListFilter {
            owner: Some(owner),
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].id, ids[2]);

    let all = s.list(&ListFilter::default()).await.unwrap();
    assert!(
        all.windows(2).all(|w| w[0].created_at >= w[1].created_at),
        "newest first"
    );
}

#[tokio::test]
async fn concurrent_updates_from_one_version_have_exactly_one_winner() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let a = store(&config(emu)).await;
    let b = store(&config(emu)).await; // an independent client, as another instance would be
    let d = deployment("cas");
    a.create(&d).await.unwrap();

    let mut to_building = d.clone();
    to_building
        .transition(Status::Analyzing, chrono::Utc::now())
        .unwrap();
    let mut to_aborted = d.clone();
    to_aborted
        .transition(Status::Aborted, chrono::Utc::now())
        .unwrap();
    let (ra, rb) = tokio::join!(a.update(&to_building), b.update(&to_aborted));
    let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one winner: {ra:?} / {rb:?}");
    let loser = if ra.is_ok() { &rb } else { &ra };
    assert!(matches!(loser, Err(StoreError::Conflict(_))), "{loser:?}");
    let winner = ra.as_ref().or(rb.as_ref()).unwrap().clone();
    assert_eq!(winner.version, 1);
    assert_eq!(a.get(&d.id).await.unwrap().unwrap(), winner);

    // A stale write never overwrites.
    assert!(matches!(
        a.update(&to_building).await,
        Err(StoreError::Conflict(_))
    ));
    // Fields the new version drops are really gone (the document is replaced).
    let mut next = winner.clone();
    next.summary = None;
    next.url = Some("https://x".into());
    next.region = Some(devgem_domain::Region::parse("europe-west1").unwrap());
    let stored = a.update(&next).await.unwrap();
    assert_eq!(stored.version, 2);
    let read = a.get(&d.id).await.unwrap().unwrap();
    assert_eq!(
        read.region.map(|r| r.to_string()).as_deref(),
        Some("europe-west1")
    );
    let mut cleared = stored.clone();
    cleared.url = None;
    a.update(&cleared).await.unwrap();
    assert_eq!(a.get(&d.id).await.unwrap().unwrap().url, None);

    let missing = deployment("cas");
    assert!(matches!(
        a.update(&missing).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn cas_update_latency() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let s = store(&config(emu)).await;
    let mut d = deployment("latency");
    s.create(&d).await.unwrap();
    let mut times = Vec::new();
    for i in 0..30u8 {
        d.progress = i;
        let t = Instant::now();
        d = s.update(&d).await.unwrap();
        times.push(t.elapsed());
    }
    eprintln!(
        "MEASURE firestore CAS update: median {:?}, max {:?} (n=30)",
        median(times.clone()),
        times.iter().max().unwrap()
    );
}

#[tokio::test]
async fn concurrent_appenders_get_gapless_unique_seqs() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let a = store(&config(emu)).await;
    let b = store(&config(emu)).await;
    let d = deployment("append");
    a.create(&d).await.unwrap();

    let run = |s: FirestoreStore, id: DeploymentId| async move {
        let mut seqs = Vec::new();
        let mut times = Vec::new();
        for i in 0..50 {
            let t = Instant::now();
            seqs.push(s.append_event(&id, log(i)).await.unwrap().seq);
            times.push(t.elapsed());
        }
        (seqs, times)
    };
    let started = Instant::now();
    let ((sa, ta), (sb, tb)) =
        tokio::join!(run(a.clone(), d.id.clone()), run(b.clone(), d.id.clone()));
    let wall = started.elapsed();
    let mut all: Vec<u64> = sa.iter().chain(&sb).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=100).collect::<Vec<_>>());
    assert!(sa.windows(2).all(|w| w[0] < w[1]) && sb.windows(2).all(|w| w[0] < w[1]));

    let stored = a.events(&d.id, 0).await.unwrap();
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<_>>()
    );
    assert_eq!(a.events(&d.id, 95).await.unwrap().len(), 5);
    let contended: Vec<_> = ta.into_iter().chain(tb).collect();
    eprintln!(
        "MEASURE firestore append_event, 2 concurrent appenders: median {:?}, max {:?}, 100 events in {:?}",
        median(contended.clone()),
        contended.iter().max().unwrap(),
        wall
    );

    // Uncontended, one appender (the common case: one stage writes a deployment's events).
    let solo = deployment("append-solo");
    a.create(&solo).await.unwrap();
    let mut times = Vec::new();
    for i in 0..30 {
        let t = Instant::now();
        a.append_event(&solo.id, log(i)).await.unwrap();
        times.push(t.elapsed());
    }
    eprintln!(
        "MEASURE firestore append_event, one appender: median {:?} (n=30)",
        median(times)
    );
}

/// Appends events from ANOTHER OS process: this same test binary, started with
/// DEVGEM_TEST_CHILD_APPEND=<deployment id>:<count> and the emulator variables.
#[tokio::test]
#[ignore = "helper run as a child process by subscribe_sees_events_from_another_process"]
async fn child_appender() {
    let Ok(spec) = std::env::var("DEVGEM_TEST_CHILD_APPEND") else {
        return;
    };
    let (id, count) = spec.split_once(':').unwrap();
    let id = DeploymentId::parse(id).unwrap();
    let count: u64 = count.parse().unwrap();
    let config = GcpConfig::from_env().unwrap();
    let s = FirestoreStore::new(&config).await.unwrap();
    let start = s.events(&id, 0).await.unwrap().len() as u64;
    for i in start + 1..=count {
        let event = if i == count {
            NewEvent::status(Status::Live, "live at https://shop.example", 100)
        } else {
            log(i)
        };
        s.append_event(&id, event).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn subscribe_sees_events_from_another_process_in_order_and_resumes() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let s = store(&config(emu)).await;
    let d = deployment("subscribe");
    s.create(&d).await.unwrap();
    // Some events exist before the subscription; the rest come from the child.
    for i in 1..=3 {
        s.append_event(&d.id, log(i)).await.unwrap();
    }
    let total = 25u64;
    let mut stream = s.subscribe(&d.id, 0).await.unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut child = tokio::process::Command::new(exe)
        .args([
            "firestore::child_appender",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(emu.vars())
        .env("DEVGEM_TEST_CHILD_APPEND", format!("{}:{total}", d.id))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let collect = async {
        let mut seqs = Vec::new();
        while let Some(event) = stream.next().await {
            let event = event.unwrap();
            seqs.push(event.seq);
            if event.is_final() {
                // The stream must end by itself after the final event.
                assert!(stream.next().await.is_none());
                break;
            }
        }
        seqs
    };
    let seqs = tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .expect("stream finished");
    assert!(
        child.wait().await.unwrap().success(),
        "child appender failed"
    );
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "each event once, in order"
    );

    // Resume after seq 21: the stored tail, then the end.
    let resumed: Vec<u64> = s
        .subscribe(&d.id, 21)
        .await
        .unwrap()
        .map(|e| e.unwrap().seq)
        .collect()
        .await;
    assert_eq!(resumed, vec![22, 23, 24, 25]);

    // Resuming after the final event ends at once instead of waiting forever.
    let after_end = tokio::time::timeout(Duration::from_secs(10), async {
        s.subscribe(&d.id, total)
            .await
            .unwrap()
            .collect::<Vec<_>>()
            .await
    })
    .await
    .expect("ends at once");
    assert!(after_end.is_empty());
}

#[tokio::test]
async fn live_events_reach_a_subscriber_quickly() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let writer = store(&config(emu)).await;
    let reader = store(&config(emu)).await;
    let d = deployment("listen-latency");
    writer.create(&d).await.unwrap();
    let mut stream = reader.subscribe(&d.id, 0).await.unwrap();
    let mut times = Vec::new();
    for i in 1..=20u64 {
        let t = Instant::now();
        writer.append_event(&d.id, log(i)).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got.seq, i);
        times.push(t.elapsed());
    }
    eprintln!(
        "MEASURE firestore append -> subscriber (other client): median {:?} (n=20)",
        median(times)
    );
}

#[tokio::test]
async fn an_unreachable_firestore_is_unavailable() {
    let mut config = GcpConfig::new("devgem-local");
    config.firestore_emulator = Some("127.0.0.1:9".into());
    let result = match FirestoreStore::new(&config).await {
        Ok(s) => s
            .get(&DeploymentId::from_uuid(uuid::Uuid::now_v7()))
            .await
            .map(drop),
        Err(e) => Err(e),
    };
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn many_subscribers_share_one_listen_and_each_get_every_event_once() {
    let Some(emu) = require_emulators!() else {
        return;
    };
    let reader = store(&config(emu)).await;
    // Another instance writes, so the events reach the reader only through its Listen.
    let writer = store(&config(emu)).await;
    let d = deployment("fan-out");
    writer.create(&d).await.unwrap();
    writer.append_event(&d.id, log(1)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let stream = reader.subscribe(&d.id, 0).await.unwrap();
        tasks.push(tokio::spawn(async move {
            stream.map(|e| e.unwrap().seq).collect::<Vec<_>>().await
        }));
    }
    let stats = reader.hub().stats();
    assert_eq!(
        (stats.watched, stats.subscribers),
        (1, 50),
        "one watched deployment"
    );
    for i in 2..=10 {
        writer.append_event(&d.id, log(i)).await.unwrap();
    }
    // A late subscriber with an old `after` joins mid-stream.
    let late = reader.subscribe(&d.id, 4).await.unwrap();
    writer
        .append_event(&d.id, NewEvent::status(Status::Live, "live", 100))
        .await
        .unwrap();
    let all = async {
        let mut got = Vec::new();
        for task in tasks {
            got.push(task.await.unwrap());
        }
        let late: Vec<u64> = late.map(|e| e.unwrap().seq).collect().await;
        (got, late)
    };
    let (got, late) = tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("streams finished");
    for seqs in got {
        assert_eq!(seqs, (1..=11).collect::<Vec<_>>());
    }
    assert_eq!(late, (5..=11).collect::<Vec<_>>());
    assert_eq!(reader.hub().stats().watched, 0, "the Listen closed");
}

#[tokio::test]
async fn sessions_are_written_with_compare_and_set() {
    use devgem_domain::{ChatRole, Session, SessionId};
    let Some(emu) = require_emulators!() else {
        return;
    };
    let s = store(&config(emu)).await;
    let id = SessionId::from_uuid(uuid::Uuid::new_v4());
    assert_eq!(s.get_session(&id).await.unwrap(), None);
    let now = chrono::Utc::now();
    let mut session = Session::new(id.clone(), "local", now);
    session.add_turn(ChatRole::User, "deploy acme/shop", now);
    let stored = s.put_session(&session).await.unwrap();
    assert_eq!(stored.version, 1);
    assert!(matches!(
        s.put_session(&session).await,
        Err(StoreError::SessionConflict(_))
    ));
    let mut a = s.get_session(&id).await.unwrap().unwrap();
    assert_eq!(a, stored);
    let mut b = a.clone();
    a.add_turn(ChatRole::Assistant, "deploying", now);
    b.add_turn(ChatRole::Assistant, "lost", now);
    assert_eq!(s.put_session(&a).await.unwrap().version, 2);
    assert!(matches!(
        s.put_session(&b).await,
        Err(StoreError::SessionConflict(_))
    ));
    let read = s.get_session(&id).await.unwrap().unwrap();
    assert_eq!(read.history.len(), 2);
    assert_eq!(read.history[1].text, "deploying");
}

#[tokio::test]
async fn links_are_listed_per_owner_and_deliveries_are_claimed_once() {
    use devgem_domain::{Link, LinkId, RepositoryName, ServiceName};
    let Some(emu) = require_emulators!() else {
        return;
    };
    let (one, two) = (store(&config(emu)).await, store(&config(emu)).await);
    // Owners unique to this run: the emulator's data outlives a test.
    let (ann, bob) = (
        format!("ann-{}", uuid::Uuid::new_v4().simple()),
        format!("bob-{}", uuid::Uuid::new_v4().simple()),
    );
    let link = |owner: &str| Link {
        id: LinkId::from_uuid(uuid::Uuid::new_v4()),
        owner: owner.into(),
        repository: RepositoryName::parse("acme/shop").unwrap(),
        branch: "main".into(),
        service_name: ServiceName::parse("shop").unwrap(),
        env_names: vec![],
        created_at: chrono::Utc::now(),
    };
    let (a, b) = (link(&ann), link(&bob));
    one.put_link(&a).await.unwrap();
    two.put_link(&b).await.unwrap();
    assert!(one.put_link(&a).await.is_err());
    assert_eq!(
        two.list_links(Some(&ann)).await.unwrap(),
        std::slice::from_ref(&a)
    );
    assert!(two.delete_link(&a.id).await.unwrap());
    assert!(!one.delete_link(&a.id).await.unwrap());
    assert!(one.list_links(Some(&ann)).await.unwrap().is_empty());
    assert_eq!(one.list_links(Some(&bob)).await.unwrap().len(), 1);

    let guid = uuid::Uuid::new_v4().to_string();
    assert!(one.claim_delivery(&guid).await.unwrap());
    assert!(!two.claim_delivery(&guid).await.unwrap());
    // Released after a failed handling: the redelivery is new again.
    two.release_delivery(&guid).await.unwrap();
    assert!(one.claim_delivery(&guid).await.unwrap());
    one.release_delivery("never-claimed").await.unwrap();
}

#[tokio::test]
async fn tokens_are_found_by_hash_touched_listed_and_revoked() {
    use devgem_domain::{ApiToken, TokenHash, TokenId, UserId};
    let Some(emu) = require_emulators!() else {
        return;
    };
    let (one, two) = (store(&config(emu)).await, store(&config(emu)).await);
    let now = chrono::Utc::now();
    // Random bytes and ids unique to this run: the emulator's data outlives a test.
    let issue = |user: &str| {
        let random: [u8; 32] = [
            *uuid::Uuid::new_v4().as_bytes(),
            *uuid::Uuid::new_v4().as_bytes(),
        ]
        .concat()
        .try_into()
        .unwrap();
        ApiToken::issue(
            TokenId::from_uuid(uuid::Uuid::new_v4()),
            UserId::parse(user).unwrap(),
            random,
            now,
        )
    };
    let (ann, ann_plain) = issue("ann");
    let (bob, _) = issue("bob");
    one.put_token(&ann).await.unwrap();
    two.put_token(&bob).await.unwrap();
    assert!(one.put_token(&ann).await.is_err(), "a second put of one id");
    let found = two
        .token_by_hash(&TokenHash::of(ann_plain.expose()))
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(&ann));
    assert_eq!(
        one.token_by_hash(&TokenHash::of("dg_wrong")).await.unwrap(),
        None
    );
    let later = now + chrono::TimeDelta::minutes(5);
    one.touch_token(&ann.id, later).await.unwrap();
    let listed = two.list_tokens().await.unwrap();
    let touched = listed.iter().find(|t| t.id == ann.id).expect("ann's token");
    assert_eq!(touched.last_used_at, Some(later));
    assert_eq!(touched.hash, ann.hash);
    assert!(listed.iter().any(|t| t.id == bob.id));
    assert!(two.revoke_token(&ann.id).await.unwrap());
    assert!(!one.revoke_token(&ann.id).await.unwrap());
    assert_eq!(one.token_by_hash(&ann.hash).await.unwrap(), None);
    // A use recorded after the revoke does not bring the token back.
    one.touch_token(&ann.id, later).await.unwrap();
    assert_eq!(one.token_by_hash(&ann.hash).await.unwrap(), None);
    assert!(
        !two.list_tokens()
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == ann.id)
    );
}

#[tokio::test]
async fn accounts_are_found_by_id_and_by_each_linked_identity() {
    use devgem_domain::{Account, IdentityProvider, LinkedIdentity, identity_key};
    let Some(emu) = require_emulators!() else {
        return;
    };
    let (one, two) = (store(&config(emu)).await, store(&config(emu)).await);
    // A subject unique to this run: the emulator's data outlives a test.
    let subject = uuid::Uuid::new_v4().simple().to_string();
    let github = LinkedIdentity {
        provider: IdentityProvider::Github,
        subject: subject.clone(),
        login: Some("ada".into()),
    };
    let mut account = Account::new(github, chrono::Utc::now()).unwrap();
    one.put_account(&account).await.unwrap();
    assert_eq!(
        two.get_account(&account.id).await.unwrap(),
        Some(account.clone())
    );

    account.link(LinkedIdentity {
        provider: IdentityProvider::Google,
        subject: format!("g{subject}"),
        login: None,
    });
    account.preferences.default_public = Some(false);
    two.put_account(&account).await.unwrap();
    let by_google = one
        .account_for_identity(&identity_key(
            IdentityProvider::Google,
            &format!("g{subject}"),
        ))
        .await
        .unwrap();
    assert_eq!(by_google, Some(account.clone()));
    assert_eq!(
        one.account_for_identity(&identity_key(IdentityProvider::Github, "nobody"))
            .await
            .unwrap(),
        None
    );
}
