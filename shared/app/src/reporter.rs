//! Reports a stage's progress as numbered events in the store: step boundaries, reasoning,
//! warnings, output lines and a progress bar that never goes backward.
//!
//! Every stored event is a write (a Firestore document in production), so the reporter stores
//! few: output lines go in batches, and a step of unknown length stores one event saying its
//! bar moves on its own; readers compute the moves ([`devgem_domain::VirtualProgress`]).

use devgem_domain::{DeploymentId, EventKind, NewEvent, Step};
use devgem_ports::{LogSink, StateStore, StoreError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Output lines streamed per stage run (the build and deploy stages have one step each); the
/// rest is only in the stored log. Lines are stored in batches, so this bounds what a reader
/// scrolls through and what the events weigh, not the number of writes.
const MAX_STREAMED_LINES: usize = 2_000;
/// How long an output line waits for others to share its stored event: at most a few output
/// events per second, however chatty the build.
const LINES_BATCH_FOR: Duration = Duration::from_millis(400);
/// A batch is stored early when it reaches this many bytes (a Firestore document holds 1 MiB).
const MAX_BATCH_BYTES: usize = 64 << 10;
/// A step that ends sooner than this never stores that its bar moves on its own.
const TICKING_AFTER: Duration = Duration::from_secs(1);
/// Bytes of output kept for the stored log.
const MAX_LOG_BYTES: usize = 4 << 20;

/// How long an event is retried while the store is unavailable before it is given up.
const APPEND_RETRY_FOR: Duration = Duration::from_secs(180);

/// Appends `event`, retrying with backoff while the store is unavailable (an outage must not
/// cost the user a step, or the final event that ends their stream). The store recognises a
/// retried event whose earlier attempt did land, so a retry never shows an event twice.
async fn append_with_retry(store: &dyn StateStore, id: &DeploymentId, event: NewEvent) {
    let deadline = Instant::now() + APPEND_RETRY_FOR;
    let mut pause = Duration::from_millis(250);
    loop {
        match store.append_event(id, event.clone()).await {
            Ok(_) => return,
            Err(StoreError::Unavailable(e)) if Instant::now() + pause < deadline => {
                tracing::info!(deployment = %id, error = %e, "progress event not stored yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::warn!(deployment = %id, error = %e, "progress event lost");
                return;
            }
        }
    }
}

#[derive(Clone)]
pub struct Reporter {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn StateStore>,
    id: DeploymentId,
    percent: AtomicU8,
    /// Events go through one queue so they are stored in the order they were reported.
    queue: mpsc::UnboundedSender<Queued>,
    log: Mutex<LogBuffer>,
    /// Steps an interrupted earlier attempt already showed as completed.
    completed_before: Mutex<HashSet<Step>>,
}

enum Queued {
    Event(NewEvent),
    /// A line of output; consecutive lines of one step are stored as one event.
    Line {
        step: Step,
        line: String,
        percent: u8,
    },
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Output lines waiting to be stored as one `Log` event, one line of its message each.
struct Batch {
    step: Step,
    message: String,
    percent: u8,
    due: Instant,
}

impl Batch {
    fn into_event(self) -> NewEvent {
        NewEvent::new(EventKind::Log, Some(self.step), self.message, self.percent)
    }
}

/// Stores what the reporter queued, in order: a pending batch of output lines is stored
/// before anything that follows it, when it is due, or when it is full.
async fn write_queued(
    store: Arc<dyn StateStore>,
    id: DeploymentId,
    mut rx: mpsc::UnboundedReceiver<Queued>,
) {
    let mut batch: Option<Batch> = None;
    loop {
        let item = match &batch {
            Some(pending) => tokio::select! {
                item = rx.recv() => item,
                () = tokio::time::sleep_until(pending.due) => {
                    if let Some(done) = batch.take() {
                        append_with_retry(store.as_ref(), &id, done.into_event()).await;
                    }
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match item {
            Some(Queued::Line {
                step,
                line,
                percent,
            }) => {
                if let Some(pending) = batch.as_mut().filter(|b| b.step == step) {
                    pending.message.push('\n');
                    pending.message.push_str(&line);
                    pending.percent = percent;
                } else {
                    if let Some(done) = batch.take() {
                        append_with_retry(store.as_ref(), &id, done.into_event()).await;
                    }
                    batch = Some(Batch {
                        step,
                        message: line,
                        percent,
                        due: Instant::now() + LINES_BATCH_FOR,
                    });
                }
                if batch
                    .as_ref()
                    .is_some_and(|b| b.message.len() >= MAX_BATCH_BYTES)
                    && let Some(done) = batch.take()
                {
                    append_with_retry(store.as_ref(), &id, done.into_event()).await;
                }
            }
            Some(Queued::Event(event)) => {
                if let Some(done) = batch.take() {
                    append_with_retry(store.as_ref(), &id, done.into_event()).await;
                }
                append_with_retry(store.as_ref(), &id, event).await;
            }
            Some(Queued::Flush(flushed)) => {
                if let Some(done) = batch.take() {
                    append_with_retry(store.as_ref(), &id, done.into_event()).await;
                }
                let _ = flushed.send(());
            }
            None => {
                if let Some(done) = batch.take() {
                    append_with_retry(store.as_ref(), &id, done.into_event()).await;
                }
                return;
            }
        }
    }
}

#[derive(Default)]
struct LogBuffer {
    text: String,
    streamed: usize,
    truncated: bool,
}

impl Reporter {
    /// A reporter for `id` whose bar starts at `percent`.
    pub fn new(store: Arc<dyn StateStore>, id: DeploymentId, percent: u8) -> Self {
        let (queue, rx) = mpsc::unbounded_channel::<Queued>();
        tokio::spawn(write_queued(store.clone(), id.clone(), rx));
        Self {
            inner: Arc::new(Inner {
                store,
                id,
                percent: AtomicU8::new(percent),
                queue,
                log: Mutex::new(LogBuffer::default()),
                completed_before: Mutex::new(HashSet::new()),
            }),
        }
    }

    pub fn deployment_id(&self) -> &DeploymentId {
        &self.inner.id
    }

    pub fn percent(&self) -> u8 {
        self.inner.percent.load(Ordering::SeqCst)
    }

    /// Raises the bar to at least `percent` and returns the bar's value.
    fn raise(&self, percent: u8) -> u8 {
        let previous = self.inner.percent.fetch_max(percent, Ordering::SeqCst);
        previous.max(percent)
    }

    fn emit(&self, kind: EventKind, step: Option<Step>, message: String, percent: u8) {
        let percent = self.raise(percent);
        let _ = self
            .inner
            .queue
            .send(Queued::Event(NewEvent::new(kind, step, message, percent)));
    }

    /// Queues an already-built event (status changes) behind everything reported so far.
    pub fn emit_raw(&self, event: NewEvent) {
        let _ = self.inner.queue.send(Queued::Event(event));
    }

    pub fn step_started(&self, step: Step, message: impl Into<String>) {
        self.emit(
            EventKind::StepStarted,
            Some(step),
            message.into(),
            step.start_percent(),
        );
        self.inner.log_line(&format!("==> {}", step.title()));
    }

    /// Tells a resumed attempt which steps the user already saw completed: finishing one again
    /// is reported as a line of output, so each step completes once in the event stream.
    pub fn completed_before(&self, steps: impl IntoIterator<Item = Step>) {
        if let Ok(mut done) = self.inner.completed_before.lock() {
            done.extend(steps);
        }
    }

    pub fn step_completed(&self, step: Step, message: impl Into<String>) {
        let again = self
            .inner
            .completed_before
            .lock()
            .is_ok_and(|done| done.contains(&step));
        let kind = if again {
            EventKind::Log
        } else {
            EventKind::StepCompleted
        };
        self.emit(kind, Some(step), message.into(), step.end_percent());
    }

    pub fn reasoning(&self, step: Step, message: impl Into<String>) {
        self.emit(
            EventKind::Reasoning,
            Some(step),
            message.into(),
            self.percent(),
        );
    }

    pub fn warning(&self, step: Step, message: impl Into<String>) {
        let message = message.into();
        self.inner.log_line(&format!("warning: {message}"));
        self.emit(EventKind::Warning, Some(step), message, self.percent());
    }

    /// Output from a tool run during `step` (build output, app start-up).
    pub fn log_sink(&self, step: Step) -> StepLog {
        StepLog {
            reporter: self.clone(),
            step,
        }
    }

    /// Keeps the bar moving during a step of unknown length (typically `expected` long) until
    /// the guard is dropped. One event is stored, once the step has lasted a moment: it tells
    /// readers the bar moves on its own from then on, and they compute the moves.
    pub fn ticker(&self, step: Step, expected: Duration) -> TickerGuard {
        let reporter = self.clone();
        let expected_secs = u32::try_from(expected.as_secs()).unwrap_or(u32::MAX);
        let handle = tokio::spawn(async move {
            tokio::time::sleep(TICKING_AFTER).await;
            let percent = reporter.raise(step.start_percent());
            reporter.emit_raw(NewEvent::ticking(step, percent, expected_secs));
        });
        TickerGuard(handle)
    }

    /// Waits until every event reported so far is stored.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.inner.queue.send(Queued::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Everything logged so far, for the stored log.
    pub fn log_text(&self) -> String {
        self.inner
            .log
            .lock()
            .map(|l| l.text.clone())
            .unwrap_or_default()
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.inner.store
    }
}

impl Inner {
    /// Keeps the line for the stored log; says whether it should also be streamed.
    fn log_line(&self, line: &str) -> bool {
        let Ok(mut log) = self.log.lock() else {
            return false;
        };
        if log.text.len() + line.len() < MAX_LOG_BYTES {
            log.text.push_str(line);
            log.text.push('\n');
        }
        if log.streamed < MAX_STREAMED_LINES {
            log.streamed += 1;
            true
        } else {
            !std::mem::replace(&mut log.truncated, true)
        }
    }
}

/// A step's output, as a [`LogSink`] adapters can write to.
pub struct StepLog {
    reporter: Reporter,
    step: Step,
}

impl LogSink for StepLog {
    fn line(&self, line: &str) {
        let inner = &self.reporter.inner;
        let stream = inner.log_line(line);
        if !stream {
            return;
        }
        let streamed_all = inner.log.lock().map(|l| l.truncated).unwrap_or(false);
        let message = if streamed_all {
            "(more output in the deployment's logs)".to_string()
        } else {
            line.to_string()
        };
        let _ = inner.queue.send(Queued::Line {
            step: self.step,
            line: message,
            percent: self.reporter.percent(),
        });
    }
}

/// Stops the ticker when dropped.
pub struct TickerGuard(tokio::task::JoinHandle<()>);

impl Drop for TickerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_domain::ProgressEvent;
    use devgem_embedded::SqliteStore;

    struct World {
        _dir: tempfile::TempDir,
        store: Arc<SqliteStore>,
        reporter: Reporter,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let reporter = Reporter::new(
            store.clone(),
            DeploymentId::from_uuid(uuid::Uuid::now_v7()),
            0,
        );
        World {
            _dir: dir,
            store,
            reporter,
        }
    }

    impl World {
        async fn stored(&self) -> Vec<ProgressEvent> {
            self.reporter.flush().await;
            self.store
                .events(self.reporter.deployment_id(), 0)
                .await
                .unwrap()
        }
    }

    fn output(events: &[ProgressEvent]) -> Vec<String> {
        events
            .iter()
            .filter(|e| e.kind == EventKind::Log)
            .flat_map(|e| e.lines().map(str::to_string).collect::<Vec<_>>())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_five_minute_step_stores_one_progress_event() {
        let w = world();
        let step = Step::ContainerBuild;
        w.reporter.step_started(step, "Building");
        let ticker = w.reporter.ticker(step, Duration::from_secs(40));
        tokio::time::sleep(Duration::from_secs(300)).await;
        drop(ticker);
        w.reporter.step_completed(step, "Built");
        let events = w.stored().await;
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::StepStarted,
                EventKind::Progress,
                EventKind::StepCompleted
            ]
        );
        assert_eq!(events[1].expected_secs, Some(40));
        assert_eq!(events[1].percent, step.start_percent());
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_that_ends_at_once_stores_no_progress_event() {
        let w = world();
        let step = Step::Deploy;
        w.reporter.step_started(step, "Starting");
        let ticker = w.reporter.ticker(step, Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(ticker);
        w.reporter.step_completed(step, "Started");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let events = w.stored().await;
        assert!(
            events.iter().all(|e| e.kind != EventKind::Progress),
            "{events:#?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_thousand_lines_in_two_seconds_are_stored_in_a_few_events_in_order() {
        let w = world();
        let step = Step::ContainerBuild;
        let sink = w.reporter.log_sink(step);
        let sent: Vec<String> = (0..1000).map(|i| format!("npm line {i}")).collect();
        for chunk in sent.chunks(10) {
            for line in chunk {
                sink.line(line);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let events = w.stored().await;
        assert!(events.len() <= 10, "{} events stored", events.len());
        assert_eq!(output(&events), sent);
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_completed_after_output_lines_is_stored_after_them() {
        let w = world();
        let step = Step::Deploy;
        let sink = w.reporter.log_sink(step);
        sink.line("listening on 8080");
        sink.line("ready");
        w.reporter.step_completed(step, "Answering");
        let events = w.stored().await;
        assert_eq!(events.len(), 2, "{events:#?}");
        assert_eq!(events[0].kind, EventKind::Log);
        assert_eq!(events[0].message, "listening on 8080\nready");
        assert_eq!(events[1].kind, EventKind::StepCompleted);
    }

    #[tokio::test(start_paused = true)]
    async fn flush_stores_the_pending_lines_without_waiting_for_the_batch() {
        let w = world();
        let started = Instant::now();
        w.reporter.log_sink(Step::ContainerBuild).line("compiling");
        let events = w.stored().await;
        assert_eq!(output(&events), ["compiling"]);
        assert!(started.elapsed() < LINES_BATCH_FOR);
    }

    #[tokio::test(start_paused = true)]
    async fn output_past_the_streamed_limit_is_only_in_the_stored_log() {
        let w = world();
        let sink = w.reporter.log_sink(Step::ContainerBuild);
        for i in 0..MAX_STREAMED_LINES + 500 {
            sink.line(&format!("line {i}"));
        }
        let streamed = output(&w.stored().await);
        assert_eq!(streamed.len(), MAX_STREAMED_LINES + 1);
        assert_eq!(
            streamed.last().unwrap(),
            "(more output in the deployment's logs)"
        );
        assert!(w.reporter.log_text().contains("line 2499"));
    }
}
