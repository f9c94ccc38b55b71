//! A deployment's progress as Server-Sent Events: every stored event with its `id:`, and
//! between them, about once a second while a step's bar moves on its own, the computed
//! progress without an `id:` (it is not stored, so `Last-Event-ID` resumes from stored events
//! only and a reconnecting client misses nothing it cannot compute again).

use chrono::{DateTime, Utc};
use devgem_domain::{EventKind, NewEvent, ProgressEvent, VirtualProgress};
use devgem_http::SseEvent;
use devgem_ports::EventStream;
use futures::{Stream, StreamExt};
use std::time::Duration;

/// How often a moving bar is sent while nothing is stored.
pub(crate) const TICK_EVERY: Duration = Duration::from_secs(1);

/// The SSE events of `events` (a deployment's stored events from the first one on) after seq
/// `after`. Events up to `after` are read only to know whether a bar is moving. A stored
/// event's percent is raised to what the stream already showed, so the bar never goes back.
pub(crate) fn progress_events(
    events: EventStream,
    after: u64,
    now: impl Fn() -> DateTime<Utc> + Send + 'static,
) -> impl Stream<Item = SseEvent> + Send + 'static {
    struct State<F> {
        events: EventStream,
        after: u64,
        last_seq: u64,
        bar: VirtualProgress,
        ticks: tokio::time::Interval,
        now: F,
    }
    let mut ticks = tokio::time::interval(TICK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        events,
        after,
        last_seq: 0,
        bar: VirtualProgress::default(),
        ticks,
        now,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            let next = if st.bar.ticking_step().is_some() {
                tokio::select! {
                    next = st.events.next() => Some(next),
                    _ = st.ticks.tick() => None,
                }
            } else {
                Some(st.events.next().await)
            };
            match next {
                Some(Some(Ok(event))) => {
                    let percent = st.bar.observe(&event);
                    st.last_seq = event.seq;
                    if event.seq <= st.after {
                        continue;
                    }
                    let shown = ProgressEvent { percent, ..event };
                    return Some((stored(&shown), st));
                }
                // The store failed or the deployment ended: so does the stream.
                Some(Some(Err(_)) | None) => return None,
                None => {
                    if let Some((step, percent)) = st.bar.advance((st.now)()) {
                        let moved =
                            NewEvent::new(EventKind::Progress, Some(step), step.title(), percent)
                                .numbered(st.last_seq, (st.now)());
                        return Some((computed(&moved), st));
                    }
                }
            }
        }
    })
}

fn stored(event: &ProgressEvent) -> SseEvent {
    SseEvent {
        id: Some(event.seq.to_string()),
        event: Some("progress".to_string()),
        data: serde_json::to_string(event).unwrap_or_default(),
    }
}

/// A computed move: it repeats the seq of the last stored event (clients that skip seqs they
/// have seen skip it) and has no `id:`.
fn computed(event: &ProgressEvent) -> SseEvent {
    SseEvent {
        id: None,
        ..stored(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_domain::Step;

    /// A clock that follows tokio's (paused) clock from a fixed moment.
    fn clock() -> impl Fn() -> DateTime<Utc> + Send + 'static {
        let start = tokio::time::Instant::now();
        let base = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        move || base + chrono::Duration::from_std(start.elapsed()).unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    /// `stored` and then nothing, as a running deployment's stream is.
    fn running(stored: Vec<ProgressEvent>) -> EventStream {
        futures::stream::iter(stored.into_iter().map(Ok))
            .chain(futures::stream::pending())
            .boxed()
    }

    fn build_events() -> Vec<ProgressEvent> {
        let step = Step::ContainerBuild;
        vec![
            NewEvent::new(EventKind::StepStarted, Some(step), "Building", 35).numbered(1, at(0)),
            NewEvent::ticking(step, 35, 40).numbered(2, at(0)),
        ]
    }

    fn parse(event: &SseEvent) -> ProgressEvent {
        serde_json::from_str(&event.data).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticking_step_streams_computed_progress_without_ids() {
        let stream = progress_events(running(build_events()), 0, clock());
        let events: Vec<SseEvent> = stream.take(6).collect().await;
        assert_eq!(events[0].id.as_deref(), Some("1"));
        assert_eq!(events[1].id.as_deref(), Some("2"));
        let mut last = 35;
        for moved in &events[2..] {
            assert_eq!(moved.id, None, "a computed move is not a stored event");
            let e = parse(moved);
            assert_eq!(e.seq, 2);
            assert!(e.percent > last && e.percent < Step::ContainerBuild.end_percent());
            last = e.percent;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_stream_keeps_moving_the_bar_of_a_step_ticking_before_it() {
        let stream = progress_events(running(build_events()), 2, clock());
        let events: Vec<SseEvent> = stream.take(2).collect().await;
        assert!(events.iter().all(|e| e.id.is_none()));
        assert!(parse(&events[1]).percent > parse(&events[0]).percent);
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_stops_moving_the_bar_when_the_step_completes() {
        let mut events = build_events();
        events.push(
            NewEvent::new(
                EventKind::StepCompleted,
                Some(Step::ContainerBuild),
                "Built",
                80,
            )
            .numbered(3, at(0)),
        );
        let mut stream = Box::pin(progress_events(running(events), 0, clock()));
        let mut sent = Vec::new();
        // The deployment still runs, so the stream stays open: read what a minute brings.
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(event) = stream.next().await {
                sent.push(event);
            }
        })
        .await;
        let ids: Vec<Option<&str>> = sent.iter().map(|e| e.id.as_deref()).collect();
        assert_eq!(ids, [Some("1"), Some("2"), Some("3")], "no computed moves");
    }
}
