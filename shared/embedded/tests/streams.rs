//! Progress streams of the SQLite store under many subscribers: each gets every event once in
//! order, late and slow ones included, writes by another connection are seen, and idle
//! subscribers cost no queries.

use devgem_domain::{
    Deployment, DeploymentId, EventKind, NewDeployment, NewEvent, ServiceName, Source, Status,
};
use devgem_embedded::fanout::EventHub;
use devgem_embedded::{POLL_INTERVAL, SqliteStore};
use devgem_ports::{EventStream, StateStore};
use futures::StreamExt;
use std::time::{Duration, Instant};

fn deployment() -> Deployment {
    Deployment::new(
        DeploymentId::from_uuid(uuid::Uuid::now_v7()),
        NewDeployment {
            owner: "local".into(),
            source: Source {
                location: "/tmp/x".into(),
                archive: None,
                branch: None,
                commit: None,
                subdir: None,
            },
            service_name: ServiceName::derive_from("x"),
            env_names: vec![],
        },
        chrono::Utc::now(),
    )
}

fn line(n: u64) -> NewEvent {
    NewEvent::new(EventKind::Log, None, format!("line {n}"), 50)
}

fn live() -> NewEvent {
    NewEvent::status(Status::Live, "live", 100)
}

/// Every seq the stream yields until it ends by itself.
async fn seqs(stream: EventStream) -> Vec<u64> {
    tokio::time::timeout(
        Duration::from_secs(30),
        stream.map(|e| e.expect("event").seq).collect::<Vec<_>>(),
    )
    .await
    .expect("stream ended")
}

/// Waits for `condition`, failing after a deadline.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("db")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_subscribers_each_get_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let d = deployment();
    store.create(&d).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let stream = store.subscribe(&d.id, 0).await.unwrap();
        tasks.push(tokio::spawn(seqs(stream)));
    }
    assert_eq!(store.hub().stats().subscribers, 300);
    for n in 1..=50 {
        store.append_event(&d.id, line(n)).await.unwrap();
    }
    store.append_event(&d.id, live()).await.unwrap();
    let expected: Vec<u64> = (1..=51).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), expected);
    }
    // Ended streams leave the hub.
    assert_eq!(store.hub().stats().watched, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_with_an_old_after_gets_the_backlog_then_the_live_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let d = deployment();
    store.create(&d).await.unwrap();
    let early = tokio::spawn(seqs(store.subscribe(&d.id, 0).await.unwrap()));
    for n in 1..=30 {
        store.append_event(&d.id, line(n)).await.unwrap();
    }
    // The channel is at 30; this one starts at 5 and must get 6..30 from the store.
    let late = store.subscribe(&d.id, 5).await.unwrap();
    // Events keep coming while the late one catches up.
    let writer = store.clone();
    let id = d.id.clone();
    let writing = tokio::spawn(async move {
        for n in 31..=60 {
            writer.append_event(&id, line(n)).await.unwrap();
        }
        writer.append_event(&id, live()).await.unwrap();
    });
    assert_eq!(seqs(late).await, (6..=61).collect::<Vec<_>>());
    writing.await.unwrap();
    assert_eq!(early.await.unwrap(), (1..=61).collect::<Vec<_>>());

    // After the end: from the start, everything; right after the final event, nothing, at once.
    assert_eq!(
        seqs(store.subscribe(&d.id, 0).await.unwrap()).await,
        (1..=61).collect::<Vec<_>>()
    );
    assert!(
        seqs(store.subscribe(&d.id, 61).await.unwrap())
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_another_connection_reach_every_subscriber() {
    let dir = tempfile::tempdir().unwrap();
    let reader = open(&dir);
    // A second store on the same file stands for another process.
    let other = open(&dir);
    let d = deployment();
    reader.create(&d).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        tasks.push(tokio::spawn(seqs(
            reader.subscribe(&d.id, 0).await.unwrap(),
        )));
    }
    // Both write, interleaved: each of the reader's own appends lands after one it has not
    // seen yet, a gap its poller must fill.
    for n in 1..=20 {
        let store = if n % 2 == 0 { &reader } else { &other };
        store.append_event(&d.id, line(n)).await.unwrap();
    }
    other.append_event(&d.id, live()).await.unwrap();
    let expected: Vec<u64> = (1..=21).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_subscribers_cost_no_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let d = deployment();
    store.create(&d).await.unwrap();
    for n in 1..=3 {
        store.append_event(&d.id, line(n)).await.unwrap();
    }
    let before = store.query_counts();
    let mut streams = Vec::new();
    for _ in 0..1000 {
        streams.push(store.subscribe(&d.id, 3).await.unwrap());
    }
    // Opening the channel reads the last event, and the poller reads once for events that
    // came in meanwhile; the other 999 subscribers read nothing.
    // Two checks: the first poll (and any read it started) is over once the second begins.
    until("the first poll", || {
        store.query_counts().change_checks >= before.change_checks + 2
    })
    .await;
    let joined = store.query_counts();
    assert!(
        joined.event_reads - before.event_reads <= 2,
        "{before:?} -> {joined:?}"
    );

    // Idle: a second of nothing costs no event reads, and only the store's one cheap
    // change check per poll interval, however many subscribers wait.
    let window = Duration::from_secs(1);
    tokio::time::sleep(window).await;
    let idle = store.query_counts();
    assert_eq!(idle.event_reads, joined.event_reads);
    let polls = (window.as_millis() / POLL_INTERVAL.as_millis()) as u64 + 2;
    assert!(
        idle.change_checks - joined.change_checks <= polls,
        "{joined:?} -> {idle:?}"
    );

    // The last subscriber gone, the poller stops (after at most the check it was waiting for).
    drop(streams);
    assert_eq!(store.hub().stats().watched, 0);
    let dropped = store.query_counts();
    tokio::time::sleep(window).await;
    let after = store.query_counts();
    assert_eq!(after.event_reads, dropped.event_reads);
    assert!(
        after.change_checks - dropped.change_checks <= 1,
        "{dropped:?} -> {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_still_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    // A tiny channel, so the slow subscriber falls off it.
    let store =
        SqliteStore::open_with_hub(&dir.path().join("db"), EventHub::with_capacity(4)).unwrap();
    let d = deployment();
    store.create(&d).await.unwrap();
    let fast = tokio::spawn(seqs(store.subscribe(&d.id, 0).await.unwrap()));
    let mut slow = store.subscribe(&d.id, 0).await.unwrap();
    store.append_event(&d.id, line(1)).await.unwrap();
    // The slow one takes one event, then nothing while 200 more are written.
    let first = slow.next().await.unwrap().unwrap();
    assert_eq!(first.seq, 1);
    for n in 2..=200 {
        store.append_event(&d.id, line(n)).await.unwrap();
    }
    store.append_event(&d.id, live()).await.unwrap();
    let reads = store.query_counts().event_reads;
    let rest = seqs(slow).await;
    assert_eq!(rest, (2..=201).collect::<Vec<_>>());
    assert!(
        store.query_counts().event_reads > reads,
        "it re-read from the store"
    );
    assert_eq!(fast.await.unwrap(), (1..=201).collect::<Vec<_>>());
}
