//! Reports a stage's progress as numbered events in the store: step boundaries, reasoning,
//! warnings, output lines and a progress bar that never goes backward.

use devgem_domain::{DeploymentId, EventKind, NewEvent, Step, virtual_fraction};
use devgem_ports::{LogSink, StateStore, StoreError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Output lines streamed as events per step; the rest is only in the stored log.
const MAX_LOG_EVENTS_PER_STEP: usize = 400;
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
    Flush(tokio::sync::oneshot::Sender<()>),
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
        let (queue, mut rx) = mpsc::unbounded_channel::<Queued>();
        let writer_store = store.clone();
        let writer_id = id.clone();
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                match item {
                    Queued::Event(event) => {
                        append_with_retry(writer_store.as_ref(), &writer_id, event).await;
                    }
                    Queued::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
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

    /// Keeps the bar moving during a step of unknown length until the guard is dropped.
    pub fn ticker(&self, step: Step, expected: Duration) -> TickerGuard {
        let reporter = self.clone();
        let started = Instant::now();
        let handle = tokio::spawn(async move {
            let mut shown = reporter.percent();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let fraction =
                    virtual_fraction(started.elapsed().as_secs_f64(), expected.as_secs_f64());
                let percent = step.percent_at(fraction);
                if percent > shown {
                    shown = percent;
                    reporter.emit(
                        EventKind::Progress,
                        Some(step),
                        step.title().to_string(),
                        percent,
                    );
                }
            }
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
        if log.streamed < MAX_LOG_EVENTS_PER_STEP {
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
        self.reporter.emit(
            EventKind::Log,
            Some(self.step),
            message,
            self.reporter.percent(),
        );
    }
}

/// Stops the ticker when dropped.
pub struct TickerGuard(tokio::task::JoinHandle<()>);

impl Drop for TickerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
