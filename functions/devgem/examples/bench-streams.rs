//! The client of `scripts/bench-streams.sh`: opens many progress streams (SSE,
//! `GET /api/deployments/{id}/events`) on a running `devgem serve`, releases the deployments'
//! builds (creates the go file their build script waits for), and measures for every event
//! every subscriber receives after that how long it took from the event's stored time to
//! arriving here, and the server's resident memory while the streams are open.
//!
//! usage: bench-streams sse|ws ADDR SERVER_PID GO_FILE STREAMS ID...
//! (ADDR is host:port. With `sse` the IDs are deployments, streamed from
//! `/api/deployments/{id}/events`; with `ws` they are chat sessions that each started one
//! deployment, watched over `/ws/chat?session_id=`. The streams are spread evenly over them.)

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Connections opened at once (the server's listen backlog is finite).
const CONNECTING_AT_ONCE: usize = 256;
/// How long the whole run may take once the builds are released.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// What one stream saw after the go file appeared.
#[derive(Default)]
struct Seen {
    /// Delivery latency of each event, in microseconds.
    latencies_us: Vec<u64>,
    /// Data lines that were not a progress event.
    unreadable: usize,
    /// The stream ended with the deployment's final event.
    ended: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Sse,
    WebSocket,
}

#[derive(Clone)]
struct Args {
    mode: Mode,
    addr: String,
    pid: u32,
    go_file: String,
    streams: usize,
    ids: Vec<String>,
}

fn args() -> Args {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: bench-streams sse|ws ADDR SERVER_PID GO_FILE STREAMS ID...");
        std::process::exit(2)
    };
    let mode = match a.first().map(String::as_str) {
        Some("sse") => Mode::Sse,
        Some("ws") => Mode::WebSocket,
        _ => usage(),
    };
    if a.len() < 6 {
        usage();
    }
    Args {
        mode,
        addr: a[1].clone(),
        pid: a[2].parse().expect("SERVER_PID is a number"),
        go_file: a[3].clone(),
        streams: a[4].parse().expect("STREAMS is a number"),
        ids: a[5..].to_vec(),
    }
}

/// The server's threads.
fn threads(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The server's resident and peak resident memory, in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Reads one stream until the deployment's final event; events stored before `go` are
/// backfill and not counted.
async fn stream(
    addr: String,
    id: String,
    connecting: Arc<Semaphore>,
    connected: Arc<AtomicUsize>,
    go: Arc<tokio::sync::watch::Receiver<Option<DateTime<Utc>>>>,
) -> std::io::Result<Seen> {
    let permit = connecting.acquire_owned().await.expect("open semaphore");
    let mut tcp = TcpStream::connect(&addr).await?;
    let request = format!(
        "GET /api/deployments/{id}/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut reader = BufReader::with_capacity(4096, tcp);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    if !line.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("answered {}", line.trim())));
    }
    drop(permit);
    connected.fetch_add(1, Ordering::Relaxed);
    let mut seen = Seen::default();
    let mut stored = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(seen);
        }
        // A stored event comes with its `id:`; a computed bar move has none and is not timed.
        if line.starts_with("id: ") {
            stored = true;
        }
        let Some(data) = line.trim_end().strip_prefix("data: ") else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(data) else {
            seen.unreadable += 1;
            continue;
        };
        if seen.event(&event, std::mem::take(&mut stored), &go) {
            return Ok(seen);
        }
    }
}

impl Seen {
    /// Times one received event; true when it is the deployment's last.
    fn event(
        &mut self,
        event: &serde_json::Value,
        stored: bool,
        go: &tokio::sync::watch::Receiver<Option<DateTime<Utc>>>,
    ) -> bool {
        let arrived = Utc::now();
        let Some(time) = event["time"]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        else {
            self.unreadable += 1;
            return false;
        };
        // Only events stored after the release are timed.
        if stored && go.borrow().is_some_and(|g| time >= g) {
            let us = (arrived - time)
                .num_microseconds()
                .unwrap_or(i64::MAX)
                .max(0);
            self.latencies_us.push(us as u64);
        }
        let ended = matches!(
            event["status"].as_str(),
            Some("live" | "failed" | "aborted" | "stopped")
        );
        self.ended |= ended;
        ended
    }
}

/// Watches one chat session over the WebSocket until its deployment completes.
async fn socket(
    addr: String,
    session: String,
    connecting: Arc<Semaphore>,
    connected: Arc<AtomicUsize>,
    go: Arc<tokio::sync::watch::Receiver<Option<DateTime<Utc>>>>,
) -> std::io::Result<Seen> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};
    let permit = connecting.acquire_owned().await.expect("open semaphore");
    // Small buffers, as the server's: the defaults would cost this client 128 KiB a socket.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("ws://{addr}/ws/chat?session_id={session}");
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .map_err(std::io::Error::other)?;
    drop(permit);
    connected.fetch_add(1, Ordering::Relaxed);
    let mut seen = Seen::default();
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message.map_err(std::io::Error::other)? else {
            continue;
        };
        let Ok(m) = serde_json::from_str::<serde_json::Value>(&text) else {
            seen.unreadable += 1;
            continue;
        };
        match m["type"].as_str() {
            Some("deployment_progress" | "deployment_update") => {
                seen.event(&m["event"], true, &go);
            }
            Some("deployment_complete") => {
                seen.ended = true;
                return Ok(seen);
            }
            _ => {}
        }
    }
    Ok(seen)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = args();
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let connected = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = tokio::sync::watch::channel(None);
    let go_rx = Arc::new(go_rx);
    let (rss_idle, _) = memory_kb(args.pid);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.streams);
    for n in 0..args.streams {
        let id = args.ids[n % args.ids.len()].clone();
        let (addr, connecting, connected, go) = (
            args.addr.clone(),
            connecting.clone(),
            connected.clone(),
            go_rx.clone(),
        );
        tasks.push(match args.mode {
            Mode::Sse => tokio::spawn(stream(addr, id, connecting, connected, go)),
            Mode::WebSocket => tokio::spawn(socket(addr, id, connecting, connected, go)),
        });
    }
    // Every stream answered (or failed) before the builds are released.
    let deadline = Instant::now() + Duration::from_secs(120);
    while connected.load(Ordering::Relaxed) < args.streams && Instant::now() < deadline {
        if tasks.iter().filter(|t| t.is_finished()).count() + connected.load(Ordering::Relaxed)
            >= args.streams
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open = connected.load(Ordering::Relaxed);
    let connect_secs = started.elapsed().as_secs_f64();
    let (rss_open, _) = memory_kb(args.pid);
    println!(
        "streams open: {open} of {} in {connect_secs:.1} s over {} deployments; server threads: {}",
        args.streams,
        args.ids.len(),
        threads(args.pid)
    );

    let _ = go_tx.send(Some(Utc::now()));
    std::fs::write(&args.go_file, b"go").expect("write the go file");

    // The peak while events flow.
    let pid = args.pid;
    let peak = Arc::new(AtomicU64::new(rss_open));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(memory_kb(pid).0, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut latencies = Vec::new();
    let (mut failed, mut ended, mut unreadable, mut per_stream) = (0, 0, 0, Vec::new());
    let all = futures::future::join_all(tasks);
    let results = match tokio::time::timeout(RUN_LIMIT, all).await {
        Ok(results) => results,
        Err(_) => {
            eprintln!("the streams did not end within {RUN_LIMIT:?}");
            std::process::exit(1);
        }
    };
    sampler.abort();
    let rss_peak = peak.load(Ordering::Relaxed);
    let (_, hwm) = memory_kb(pid);
    for result in results {
        match result {
            Ok(Ok(seen)) => {
                ended += usize::from(seen.ended);
                unreadable += seen.unreadable;
                per_stream.push(seen.latencies_us.len());
                latencies.extend(seen.latencies_us);
            }
            Ok(Err(e)) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("a stream failed: {e}");
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("a stream task failed: {e}");
            }
        }
    }
    latencies.sort_unstable();
    per_stream.sort_unstable();
    println!(
        "streams ended with the final event: {ended}; failed: {failed}; unreadable lines: {unreadable}"
    );
    println!(
        "events timed: {} ({} to {} per stream)",
        latencies.len(),
        per_stream.first().unwrap_or(&0),
        per_stream.last().unwrap_or(&0)
    );
    println!(
        "delivery latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0)
    );
    println!(
        "server RSS: {:.1} MB before the streams, {:.1} MB with them open, {:.1} MB at most while events flowed (sampled every 100 ms), peak (VmHWM) {:.1} MB",
        rss_idle as f64 / 1024.0,
        rss_open as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
}
