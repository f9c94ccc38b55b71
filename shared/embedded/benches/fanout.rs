//! Fan-out benchmark: N open progress streams of one deployment on one SQLite store. Prints
//! resident memory with the streams open, CPU and store queries while they sit idle, and the
//! latency from `append_event` to delivery (to each subscriber, and to all of them).
//!
//! Run one size per process, so the memory figures are its own:
//! `cargo bench -p devgem-embedded --bench fanout -- 10000` (default: 1000 streams, 200 events).

use devgem_domain::{
    Deployment, DeploymentId, EventKind, NewDeployment, NewEvent, ServiceName, Source, Status,
};
use devgem_embedded::SqliteStore;
use devgem_ports::StateStore;
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Events timed, one at a time (`DEVGEM_BENCH_EVENTS` overrides).
const DEFAULT_EVENTS: u64 = 200;
const IDLE: Duration = Duration::from_secs(5);

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A field of /proc/self/status in KiB (VmRSS, VmHWM).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of this process, in clock ticks (1/100 s on Linux).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that closes the command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Duration::from_nanos(sorted[i])
}

fn deployment() -> Deployment {
    Deployment::new(
        DeploymentId::from_uuid(uuid::Uuid::now_v7()),
        NewDeployment {
            owner: "bench".into(),
            source: Source {
                location: "/tmp/bench".into(),
                archive: None,
                branch: None,
                commit: None,
                subdir: None,
            },
            service_name: ServiceName::derive_from("bench"),
            env_names: vec![],
        },
        chrono::Utc::now(),
    )
}

/// Per event: when it was appended, how many subscribers got it, and when the last one did.
struct Timing {
    sent: Vec<AtomicU64>,
    delivered: Vec<AtomicUsize>,
    last_delivery: Vec<AtomicU64>,
    /// Every delivery's latency, in ns.
    latencies: Mutex<Vec<u64>>,
    /// Woken by the subscriber that completes an event's delivery.
    all_got_it: tokio::sync::Notify,
    streams: usize,
}

fn main() {
    let streams: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    now_ns();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(streams));
}

async fn run(streams: usize) {
    let events: u64 = std::env::var("DEVGEM_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_EVENTS);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    let d = deployment();
    store.create(&d).await.unwrap();
    store
        .append_event(&d.id, NewEvent::status(Status::Building, "building", 10))
        .await
        .unwrap();
    let n_events = events as usize + 3;
    let timing = Arc::new(Timing {
        sent: (0..n_events).map(|_| AtomicU64::new(0)).collect(),
        delivered: (0..n_events).map(|_| AtomicUsize::new(0)).collect(),
        last_delivery: (0..n_events).map(|_| AtomicU64::new(0)).collect(),
        latencies: Mutex::new(Vec::with_capacity(streams * events as usize)),
        all_got_it: tokio::sync::Notify::new(),
        streams,
    });
    let rss_before = status_kib("VmRSS");

    let subscribed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(streams);
    for _ in 0..streams {
        let store = store.clone();
        let id = d.id.clone();
        let timing = timing.clone();
        let subscribed = subscribed.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = store.subscribe(&id, 1).await.unwrap();
            subscribed.fetch_add(1, Ordering::Relaxed);
            let mut mine = Vec::new();
            while let Some(event) = stream.next().await {
                let at = now_ns();
                let seq = event.unwrap().seq as usize;
                mine.push(at.saturating_sub(timing.sent[seq].load(Ordering::Acquire)));
                timing.last_delivery[seq].fetch_max(at, Ordering::AcqRel);
                if timing.delivered[seq].fetch_add(1, Ordering::AcqRel) + 1 == timing.streams {
                    timing.all_got_it.notify_one();
                }
            }
            timing.latencies.lock().unwrap().extend(mine);
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while subscribed.load(Ordering::Relaxed) < streams {
        assert!(Instant::now() < deadline, "subscribing took too long");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let every subscriber reach its wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_open = status_kib("VmRSS");

    let queries_before = store.query_counts();
    let cpu_before = cpu_ticks();
    let idle_start = Instant::now();
    tokio::time::sleep(IDLE).await;
    let idle_cpu =
        (cpu_ticks() - cpu_before) as f64 / 100.0 / idle_start.elapsed().as_secs_f64() * 100.0;
    let queries_idle = store.query_counts();

    let mut all_delivered = Vec::with_capacity(events as usize);
    for n in 0..=events {
        let seq = n as usize + 2;
        let event = if n == events {
            NewEvent::status(Status::Live, "live", 100)
        } else {
            NewEvent::new(EventKind::Log, None, format!("line {n}"), 50)
        };
        let sent = now_ns();
        timing.sent[seq].store(sent, Ordering::Release);
        let stored = store.append_event(&d.id, event).await.unwrap();
        assert_eq!(stored.seq as usize, seq);
        tokio::time::timeout(Duration::from_secs(60), timing.all_got_it.notified())
            .await
            .unwrap_or_else(|_| panic!("event {seq} not delivered to all"));
        all_delivered.push(timing.last_delivery[seq].load(Ordering::Acquire) - sent);
        // Events arrive a few per second per deployment, not back to back.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut each = std::mem::take(&mut *timing.latencies.lock().unwrap());
    each.sort_unstable();
    all_delivered.sort_unstable();

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "streams: {streams} on one deployment, {} events timed",
        events + 1
    );
    println!(
        "memory: RSS {:.1} MiB with streams open ({:.1} MiB before them, {:.0} bytes per stream); peak {:.1} MiB",
        mib(rss_open),
        mib(rss_before),
        (rss_open.saturating_sub(rss_before) * 1024) as f64 / streams as f64,
        mib(status_kib("VmHWM")),
    );
    println!(
        "idle {:?}: CPU {idle_cpu:.1}% of one core; store queries: {} event reads, {} change checks",
        IDLE,
        queries_idle.event_reads - queries_before.event_reads,
        queries_idle.change_checks - queries_before.change_checks,
    );
    println!(
        "append -> one subscriber: p50 {:?}, p99 {:?} ({} deliveries)",
        percentile(&each, 0.50),
        percentile(&each, 0.99),
        each.len()
    );
    println!(
        "append -> all subscribers: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&all_delivered, 0.50),
        percentile(&all_delivered, 0.99),
        percentile(&all_delivered, 1.0),
    );
}
