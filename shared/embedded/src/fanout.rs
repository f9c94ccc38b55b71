//! One change stream per watched deployment, fanned out to all of its subscribers in this
//! process. A store's change feed (the SQLite poller, a Firestore Listen) publishes each event
//! once into the [`EventHub`]; every [`StateStore::subscribe`](devgem_ports::StateStore) stream
//! of that deployment reads it from a bounded broadcast channel. An idle subscriber costs no
//! store reads: only a subscriber that starts behind the hub, or falls behind it (lags past the
//! channel's capacity, or sees a gap), reads the store itself, and then rejoins the broadcast.
//!
//! The stream contract holds for every subscriber: each event with `seq > after`, in order,
//! once, ending after the final event.
//!
//! The hub is store-agnostic (no SQLite here) so the Firestore store uses it too.

use async_trait::async_trait;
use devgem_domain::{DeploymentId, ProgressEvent};
use devgem_ports::{EventStream, StoreError};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Events a channel holds for slow subscribers; one that falls further behind re-reads the
/// store. Events are shared (`Arc`), so a slot costs a pointer, not an event.
pub const DEFAULT_CAPACITY: usize = 128;
/// Events kept that arrived ahead of a missing seq (a feed that delivers out of order); beyond
/// this they are dropped and must be delivered again (the SQLite poller re-reads on a gap).
const MAX_AHEAD: usize = 4096;

/// Identifies one watch of a deployment (its channel from first subscriber to last), so a
/// store's late `unwatch` of an old watch never stops a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WatchId(u64);

/// What a store provides the hub: reads for backfill, and a feed it starts and stops per
/// deployment. The feed publishes every event with `seq > cursor` through
/// [`EventHub::publish`], in any order and with repeats if it must.
#[async_trait]
pub trait ChangeFeed: Clone + Send + Sync + 'static {
    /// Stored events with `seq > after`, in order; may be one page of them.
    async fn read_after(
        &self,
        id: &DeploymentId,
        after: u64,
    ) -> Result<Vec<ProgressEvent>, StoreError>;

    /// The highest-numbered stored event of the deployment.
    async fn last_event(&self, id: &DeploymentId) -> Result<Option<ProgressEvent>, StoreError>;

    /// The deployment got its first subscriber: start publishing its events after `cursor`.
    fn watch(&self, id: &DeploymentId, watch: WatchId, cursor: u64);

    /// Its last subscriber left: stop the feed started for `watch`.
    fn unwatch(&self, id: &DeploymentId, watch: WatchId);
}

/// Counts for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HubStats {
    /// Deployments with at least one subscriber.
    pub watched: usize,
    /// Open subscriber streams across them.
    pub subscribers: usize,
}

/// Per-process fan-out of deployments' events. Cheap to share (`Arc`).
pub struct EventHub {
    channels: Mutex<HashMap<DeploymentId, Channel>>,
    next_watch: AtomicU64,
    capacity: usize,
}

struct Channel {
    watch: WatchId,
    sender: broadcast::Sender<Arc<ProgressEvent>>,
    /// The highest seq published; every lower one was published before it.
    cursor: Arc<AtomicU64>,
    /// The cursor event is final: nothing more is read for this channel.
    at_final: bool,
    /// Events past a missing seq, waiting for it.
    ahead: BTreeMap<u64, ProgressEvent>,
    /// The feed should read the store for this channel (new, or a gap appeared).
    needs_read: bool,
}

/// What [`EventHub::publish`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Nobody watches the deployment.
    NotWatched,
    /// Sent to the subscribers (or already sent: a repeat).
    Delivered,
    /// Held back: an earlier seq is missing, and the channel is marked as needing a read.
    Gap,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl EventHub {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            channels: Mutex::default(),
            next_watch: AtomicU64::new(1),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DeploymentId, Channel>> {
        // The map stays consistent across a panic (every change is one insert or remove).
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes one event of `id` to its subscribers, in seq order: a repeat is ignored, an
    /// event ahead of a missing seq waits for it.
    pub fn publish(&self, id: &DeploymentId, event: ProgressEvent) -> Published {
        let mut channels = self.lock();
        let Some(channel) = channels.get_mut(id) else {
            return Published::NotWatched;
        };
        let cursor = channel.cursor.load(Ordering::Acquire);
        if event.seq <= cursor {
            return Published::Delivered;
        }
        if event.seq > cursor + 1 {
            if channel.ahead.len() < MAX_AHEAD {
                channel.ahead.insert(event.seq, event);
            }
            channel.needs_read = true;
            return Published::Gap;
        }
        channel.send(event);
        while let Some(next) = channel
            .ahead
            .remove(&(channel.cursor.load(Ordering::Acquire) + 1))
        {
            channel.send(next);
        }
        channel
            .ahead
            .retain(|&seq, _| seq > channel.cursor.load(Ordering::Acquire));
        if channel.ahead.is_empty() {
            Published::Delivered
        } else {
            channel.needs_read = true;
            Published::Gap
        }
    }

    /// Every watched deployment that can still get events, with its cursor.
    pub fn watched(&self) -> Vec<(DeploymentId, u64)> {
        self.lock()
            .iter()
            .filter(|(_, c)| !c.at_final)
            .map(|(id, c)| (id.clone(), c.cursor.load(Ordering::Acquire)))
            .collect()
    }

    /// The watched deployments marked as needing a read (new ones, and those with a gap), with
    /// their cursors; clears the marks.
    pub fn take_needs_read(&self) -> Vec<(DeploymentId, u64)> {
        self.lock()
            .iter_mut()
            .filter_map(|(id, c)| {
                let needs = std::mem::take(&mut c.needs_read) && !c.at_final;
                needs.then(|| (id.clone(), c.cursor.load(Ordering::Acquire)))
            })
            .collect()
    }

    /// Marks `id` as needing a read again (the feed's read failed).
    pub fn mark_needs_read(&self, id: &DeploymentId) {
        if let Some(channel) = self.lock().get_mut(id) {
            channel.needs_read = true;
        }
    }

    /// The feed of `watch` could not start or stopped for good: its subscribers read what the
    /// store has and then end with an error, and the next subscriber starts a new watch.
    pub fn fail(&self, id: &DeploymentId, watch: WatchId) {
        let mut channels = self.lock();
        if channels.get(id).is_some_and(|c| c.watch == watch) {
            channels.remove(id);
        }
    }

    pub fn stats(&self) -> HubStats {
        let channels = self.lock();
        HubStats {
            watched: channels.len(),
            subscribers: channels.values().map(|c| c.sender.receiver_count()).sum(),
        }
    }

    /// A stream of `id`'s events with `seq > after` (the `StateStore::subscribe` contract),
    /// served from this hub with `feed` for backfill.
    pub async fn subscribe<F: ChangeFeed>(
        self: &Arc<Self>,
        feed: &F,
        id: &DeploymentId,
        after: u64,
    ) -> Result<EventStream, StoreError> {
        let joined = match self.join(id, None) {
            Some(joined) => joined,
            None => {
                // No channel yet: learn where the stored events end before opening one.
                let last = feed.last_event(id).await?;
                match last {
                    Some(last) if last.is_final() => Joined::Finished { last: last.seq },
                    last => self
                        .join(id, Some(last.map_or(0, |e| e.seq)))
                        .expect("join with a cursor always joins"),
                }
            }
        };
        let subscriber = match joined {
            Joined::Finished { last } if after >= last => {
                return Ok(futures::stream::empty().boxed());
            }
            Joined::Finished { last } => {
                Subscriber::new(feed.clone(), id.clone(), after, last, None)
            }
            Joined::Live {
                rx,
                cursor,
                shared_cursor,
                watch,
                created,
            } => {
                if let Some(cursor) = created {
                    feed.watch(id, watch, cursor);
                }
                let membership = Membership {
                    hub: self.clone(),
                    feed: feed.clone(),
                    id: id.clone(),
                    watch,
                    rx: Some(rx),
                    cursor: shared_cursor,
                };
                Subscriber::new(feed.clone(), id.clone(), after, cursor, Some(membership))
            }
        };
        Ok(subscriber.into_stream().boxed())
    }

    /// Joins the channel of `id`, creating it at `create_at` when given and absent.
    fn join(&self, id: &DeploymentId, create_at: Option<u64>) -> Option<Joined> {
        let mut channels = self.lock();
        let mut created = None;
        if !channels.contains_key(id) {
            let cursor = create_at?;
            let watch = WatchId(self.next_watch.fetch_add(1, Ordering::Relaxed));
            let (sender, _) = broadcast::channel(self.capacity);
            channels.insert(
                id.clone(),
                Channel {
                    watch,
                    sender,
                    cursor: Arc::new(AtomicU64::new(cursor)),
                    at_final: false,
                    ahead: BTreeMap::new(),
                    // Events written between `last_event` and now were published to nobody.
                    needs_read: true,
                },
            );
            created = Some(cursor);
        }
        let channel = channels.get(id).expect("present");
        let cursor = channel.cursor.load(Ordering::Acquire);
        if channel.at_final {
            return Some(Joined::Finished { last: cursor });
        }
        Some(Joined::Live {
            rx: channel.sender.subscribe(),
            cursor,
            shared_cursor: channel.cursor.clone(),
            watch: channel.watch,
            created,
        })
    }

    /// Leaves the channel; the last one out closes it and stops its feed.
    fn leave<F: ChangeFeed>(&self, membership: &mut Membership<F>) {
        let mut channels = self.lock();
        drop(membership.rx.take());
        let last_out = channels
            .get(&membership.id)
            .is_some_and(|c| c.watch == membership.watch && c.sender.receiver_count() == 0);
        if last_out {
            channels.remove(&membership.id);
            drop(channels);
            membership.feed.unwatch(&membership.id, membership.watch);
        }
    }
}

impl Channel {
    fn send(&mut self, event: ProgressEvent) {
        self.cursor.store(event.seq, Ordering::Release);
        self.at_final = event.is_final();
        // No receivers is fine: the last one is leaving.
        let _ = self.sender.send(Arc::new(event));
    }
}

enum Joined {
    /// The deployment's last event is final; nothing more will be published.
    Finished { last: u64 },
    Live {
        rx: broadcast::Receiver<Arc<ProgressEvent>>,
        cursor: u64,
        shared_cursor: Arc<AtomicU64>,
        watch: WatchId,
        /// The channel was opened by this join, at this cursor.
        created: Option<u64>,
    },
}

/// A subscriber's place in a channel; leaving happens on drop, so a client that goes away
/// mid-stream frees its slot.
struct Membership<F: ChangeFeed> {
    hub: Arc<EventHub>,
    feed: F,
    id: DeploymentId,
    watch: WatchId,
    rx: Option<broadcast::Receiver<Arc<ProgressEvent>>>,
    /// The channel's cursor, to know how far to re-read after lagging.
    cursor: Arc<AtomicU64>,
}

impl<F: ChangeFeed> Drop for Membership<F> {
    fn drop(&mut self) {
        let hub = self.hub.clone();
        hub.leave(self);
    }
}

/// One subscriber's stream state.
struct Subscriber<F: ChangeFeed> {
    feed: F,
    id: DeploymentId,
    /// The seq of the last event yielded.
    last: u64,
    /// Read the store while `last < read_to` (backfill, or recovery after a lag or gap).
    read_to: u64,
    pending: VecDeque<ProgressEvent>,
    membership: Option<Membership<F>>,
    /// The channel closed once already (the next close is an error).
    closed: bool,
    done: bool,
}

impl<F: ChangeFeed> Subscriber<F> {
    fn new(
        feed: F,
        id: DeploymentId,
        after: u64,
        read_to: u64,
        membership: Option<Membership<F>>,
    ) -> Self {
        Self {
            feed,
            id,
            last: after,
            read_to,
            pending: VecDeque::new(),
            membership,
            closed: false,
            done: false,
        }
    }

    fn into_stream(self) -> impl futures::Stream<Item = Result<ProgressEvent, StoreError>> {
        futures::stream::unfold(self, |mut sub| async move {
            let item = sub.next().await?;
            Some((item, sub))
        })
    }

    async fn next(&mut self) -> Option<Result<ProgressEvent, StoreError>> {
        loop {
            if self.done {
                // Leave the channel now, not when the stream is dropped.
                self.membership = None;
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                if self.pending.is_empty() && self.pending.capacity() > 4 {
                    // A backfill's page is read: a stream that then waits for hours holds
                    // no room for one.
                    self.pending = VecDeque::new();
                }
                if event.seq <= self.last {
                    continue;
                }
                self.last = event.seq;
                if event.is_final() {
                    self.done = true;
                    self.pending.clear();
                }
                return Some(Ok(event));
            }
            if self.last < self.read_to {
                match self.feed.read_after(&self.id, self.last).await {
                    Ok(events) if !events.is_empty() => self.pending.extend(events),
                    // The store has nothing more (yet): the broadcast brings the rest.
                    Ok(_) => self.read_to = self.last,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            let Some(membership) = self.membership.as_mut() else {
                // Backfill-only (finished deployment) and the store ran out.
                self.done = true;
                continue;
            };
            let Some(rx) = membership.rx.as_mut() else {
                self.done = true;
                continue;
            };
            match rx.recv().await {
                Ok(event) if event.seq <= self.last => {}
                Ok(event) if event.seq == self.last + 1 => {
                    self.pending.push_back(Arc::unwrap_or_clone(event));
                }
                // A gap (we joined behind the channel): the store has everything up to it.
                Ok(event) => self.read_to = event.seq,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind by more than the channel holds: re-read what was missed
                    // instead of buffering it.
                    self.read_to = membership.cursor.load(Ordering::Acquire);
                }
                Err(broadcast::error::RecvError::Closed) if !self.closed => {
                    // The feed failed: take what the store has, then report it.
                    self.closed = true;
                    self.read_to = u64::MAX;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return Some(Err(StoreError::Unavailable(
                        "the deployment's change stream stopped".into(),
                    )));
                }
            }
        }
    }
}
