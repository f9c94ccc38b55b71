//! The state store in one SQLite file. Deployments are JSON documents with a version column
//! for compare-and-set; events are rows numbered per deployment. WAL mode and a busy timeout
//! let several DevGem processes (a `devgem serve` and a `devgem status`, say) share the file.
//!
//! Change streams go through an [`EventHub`]: an event appended here is published to its
//! subscribers as it commits (no read), and one poller per store, running only while some
//! deployment is watched, sees other processes' writes: every [`POLL_INTERVAL`] it asks SQLite
//! whether anyone else committed (`PRAGMA data_version`, no table read), and only then asks,
//! in one query, which watched deployments have new events, and reads those.

use crate::fanout::{ChangeFeed, EventHub, Published, WatchId};
use async_trait::async_trait;
use devgem_domain::{
    Account, ApiToken, Deployment, DeploymentId, Link, LinkId, NewEvent, ProgressEvent, Session,
    SessionId, TokenHash, TokenId, UserId,
};
use devgem_ports::{EventStream, ListFilter, StateStore, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the poller looks for events written by other processes; writes in this process
/// reach subscribers at once.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Events read per query.
const PAGE: usize = 1000;

#[derive(Clone)]
pub struct SqliteStore {
    /// An async lock, taken before a blocking thread is asked for: callers wait as tasks, so
    /// a burst of requests (10,000 streams subscribing) keeps one blocking thread busy instead
    /// of parking hundreds of them on the connection (each with its stack and malloc arena).
    conn: Arc<tokio::sync::Mutex<Connection>>,
    hub: Arc<EventHub>,
    poller: Arc<Poller>,
    counts: Arc<Counters>,
}

/// The store's one poller: at most one task per store, woken early by new watches and gaps.
#[derive(Default)]
struct Poller {
    running: AtomicBool,
    wake: Notify,
}

#[derive(Default)]
struct Counters {
    event_reads: AtomicU64,
    change_checks: AtomicU64,
}

/// Queries this store has run, for tests and benchmarks that check what streams cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryCounts {
    /// Queries that read the events table (backfill, catch-up, "which have new events").
    pub event_reads: u64,
    /// `PRAGMA data_version` checks for other processes' writes.
    pub change_checks: u64,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_hub(path, EventHub::default())
    }

    /// Opens the database with a hub of its own (another channel capacity, say).
    pub fn open_with_hub(path: &Path, hub: EventHub) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(unavailable)?;
        }
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(unavailable)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS deployments (
                 id TEXT PRIMARY KEY,
                 owner TEXT NOT NULL,
                 created_at TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 doc TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS deployments_owner ON deployments(owner, created_at);
             CREATE TABLE IF NOT EXISTS events (
                 deployment_id TEXT NOT NULL,
                 seq INTEGER NOT NULL,
                 doc TEXT NOT NULL,
                 PRIMARY KEY (deployment_id, seq)
             );
             CREATE TABLE IF NOT EXISTS sessions (
                 id TEXT PRIMARY KEY,
                 owner TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 doc TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS links (
                 id TEXT PRIMARY KEY,
                 owner TEXT NOT NULL,
                 created_at TEXT NOT NULL,
                 doc TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS deliveries (
                 id TEXT PRIMARY KEY
             );
             CREATE TABLE IF NOT EXISTS api_tokens (
                 id TEXT PRIMARY KEY,
                 hash TEXT NOT NULL UNIQUE,
                 created_at TEXT NOT NULL,
                 doc TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS accounts (
                 id TEXT PRIMARY KEY,
                 doc TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS account_identities (
                 key TEXT PRIMARY KEY,
                 account TEXT NOT NULL
             );",
        )
        .map_err(unavailable)?;
        Ok(Self {
            conn: Arc::new(tokio::sync::Mutex::new(conn)),
            hub: Arc::new(hub),
            poller: Arc::default(),
            counts: Arc::default(),
        })
    }

    /// The queries run so far.
    pub fn query_counts(&self) -> QueryCounts {
        QueryCounts {
            event_reads: self.counts.event_reads.load(Ordering::Relaxed),
            change_checks: self.counts.change_checks.load(Ordering::Relaxed),
        }
    }

    /// The fan-out of this store's change streams.
    pub fn hub(&self) -> &EventHub {
        &self.hub
    }

    /// Runs `f` on the connection off the async threads.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &StoreSide) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone().lock_owned().await;
        let side = StoreSide {
            hub: self.hub.clone(),
            counts: self.counts.clone(),
        };
        tokio::task::spawn_blocking(move || f(&mut conn, &side))
            .await
            .map_err(unavailable)?
    }

    /// Starts the poller unless it runs.
    fn ensure_poller(&self) {
        if !self.poller.running.swap(true, Ordering::AcqRel) {
            tokio::spawn(poll_changes(self.clone()));
        }
    }
}

/// What a closure on the connection may use besides it.
struct StoreSide {
    hub: Arc<EventHub>,
    counts: Arc<Counters>,
}

impl StoreSide {
    fn counted_read(&self) {
        self.counts.event_reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `id`'s events after `cursor` and publishes them, page by page. Runs under the
    /// connection lock, like a local append's publish, so the two cannot interleave.
    fn catch_up(
        &self,
        conn: &Connection,
        id: &DeploymentId,
        mut cursor: u64,
    ) -> Result<(), StoreError> {
        loop {
            let events = read_events(conn, self, id, cursor)?;
            let full = events.len() == PAGE;
            for event in events {
                cursor = event.seq;
                self.hub.publish(id, event);
            }
            if !full {
                return Ok(());
            }
        }
    }
}

/// The poller: see the module doc. Stops when no deployment is watched.
async fn poll_changes(store: SqliteStore) {
    let mut seen_version: Option<i64> = None;
    loop {
        let checked = store
            .with_conn(move |conn, side| {
                side.counts.change_checks.fetch_add(1, Ordering::Relaxed);
                // Changes when another connection commits; this connection's own commits
                // are published as they happen.
                let version: i64 = conn
                    .query_row("PRAGMA data_version", [], |row| row.get(0))
                    .map_err(unavailable)?;
                let others_wrote = seen_version.is_some_and(|seen| seen != version);
                let mut to_read: HashMap<DeploymentId, u64> =
                    side.hub.take_needs_read().into_iter().collect();
                if others_wrote {
                    for (id, cursor) in with_new_events(conn, side, &side.hub.watched())? {
                        to_read.entry(id).or_insert(cursor);
                    }
                }
                let mut failed = None;
                for (id, cursor) in to_read {
                    if failed.is_some() {
                        side.hub.mark_needs_read(&id);
                    } else if let Err(e) = side.catch_up(conn, &id, cursor) {
                        // Read these again next time instead of forgetting them.
                        side.hub.mark_needs_read(&id);
                        failed = Some(e);
                    }
                }
                failed.map_or(Ok(version), Err)
            })
            .await;
        match checked {
            Ok(version) => seen_version = Some(version),
            Err(e) => tracing::warn!(error = %e, "reading new events failed; retrying"),
        }
        if store.hub.watched().is_empty() {
            store.poller.running.store(false, Ordering::Release);
            // A watch that came in meanwhile either saw `running` false and started a poller,
            // or we keep going.
            if store.hub.watched().is_empty() || store.poller.running.swap(true, Ordering::AcqRel) {
                return;
            }
        }
        tokio::select! {
            () = store.poller.wake.notified() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// Of the `watched` deployments and their cursors, those with events past the cursor: one
/// query, one index lookup per deployment.
fn with_new_events(
    conn: &Connection,
    side: &StoreSide,
    watched: &[(DeploymentId, u64)],
) -> Result<Vec<(DeploymentId, u64)>, StoreError> {
    if watched.is_empty() {
        return Ok(vec![]);
    }
    let list: Vec<(&str, u64)> = watched.iter().map(|(id, c)| (id.as_str(), *c)).collect();
    let list = to_json(&list)?;
    side.counted_read();
    let mut stmt = conn
        .prepare_cached(
            "SELECT w.value ->> 0, w.value ->> 1 FROM json_each(?1) AS w
             WHERE (SELECT MAX(seq) FROM events WHERE deployment_id = w.value ->> 0)
                   > w.value ->> 1",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map(params![list], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(unavailable)?;
    let mut found = Vec::new();
    for row in rows {
        let (id, cursor) = row.map_err(unavailable)?;
        let id =
            DeploymentId::parse(&id).map_err(|e| unavailable(format!("corrupt id {id}: {e}")))?;
        found.push((id, cursor as u64));
    }
    Ok(found)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(unavailable)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| unavailable(format!("corrupt record: {e}")))
}

fn read_events(
    conn: &Connection,
    side: &StoreSide,
    id: &DeploymentId,
    after: u64,
) -> Result<Vec<ProgressEvent>, StoreError> {
    side.counted_read();
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc FROM events WHERE deployment_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map(params![id.as_str(), after as i64, PAGE as i64], |row| {
            row.get::<_, String>(0)
        })
        .map_err(unavailable)?;
    rows.map(|doc| from_json(&doc.map_err(unavailable)?))
        .collect()
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        let doc = to_json(account)?;
        let id = account.id.to_string();
        let keys: Vec<String> = account.identities.iter().map(|i| i.key()).collect();
        self.with_conn(move |conn, _| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            tx.execute(
                "INSERT INTO accounts (id, doc) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                params![id, doc],
            )
            .map_err(unavailable)?;
            for key in &keys {
                tx.execute(
                    "INSERT INTO account_identities (key, account) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET account = excluded.account",
                    params![key, id],
                )
                .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn get_account(&self, id: &UserId) -> Result<Option<Account>, StoreError> {
        let id = id.to_string();
        self.with_conn(move |conn, _| {
            let doc: Option<String> = conn
                .query_row(
                    "SELECT doc FROM accounts WHERE id = ?1",
                    params![id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn account_for_identity(&self, key: &str) -> Result<Option<Account>, StoreError> {
        let key = key.to_string();
        self.with_conn(move |conn, _| {
            let doc: Option<String> = conn
                .query_row(
                    "SELECT a.doc FROM account_identities i JOIN accounts a ON a.id = i.account
                     WHERE i.key = ?1",
                    params![key],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn put_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        let doc = to_json(token)?;
        let (id, hash, at) = (
            token.id.to_string(),
            token.hash.as_str().to_string(),
            token.created_at.to_rfc3339(),
        );
        self.with_conn(move |conn, _| {
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO api_tokens (id, hash, created_at, doc)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![id, hash, at, doc],
                )
                .map_err(unavailable)?;
            if inserted == 1 {
                Ok(())
            } else {
                Err(StoreError::Unavailable(format!(
                    "token {id} already exists"
                )))
            }
        })
        .await
    }

    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        let hash = hash.as_str().to_string();
        self.with_conn(move |conn, _| {
            let doc: Option<String> = conn
                .query_row(
                    "SELECT doc FROM api_tokens WHERE hash = ?1",
                    params![hash],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.with_conn(move |conn, _| {
            let mut stmt = conn
                .prepare("SELECT doc FROM api_tokens ORDER BY created_at, id")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(unavailable)?;
            rows.map(|doc| from_json(&doc.map_err(unavailable)?))
                .collect()
        })
        .await
    }

    async fn touch_token(
        &self,
        id: &TokenId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let (id, at) = (id.to_string(), at.to_rfc3339());
        self.with_conn(move |conn, _| {
            conn.execute(
                "UPDATE api_tokens SET doc = json_set(doc, '$.last_used_at', ?2) WHERE id = ?1",
                params![id, at],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn revoke_token(&self, id: &TokenId) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with_conn(move |conn, _| {
            let deleted = conn
                .execute("DELETE FROM api_tokens WHERE id = ?1", params![id])
                .map_err(unavailable)?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn put_link(&self, link: &Link) -> Result<(), StoreError> {
        let doc = to_json(link)?;
        let (id, owner, at) = (
            link.id.to_string(),
            link.owner.clone(),
            link.created_at.to_rfc3339(),
        );
        self.with_conn(move |conn, _| {
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO links (id, owner, created_at, doc) VALUES (?1, ?2, ?3, ?4)",
                    params![id, owner, at, doc],
                )
                .map_err(unavailable)?;
            if inserted == 1 {
                Ok(())
            } else {
                Err(StoreError::Unavailable(format!("link {id} already exists")))
            }
        })
        .await
    }

    async fn list_links(&self, owner: Option<&str>) -> Result<Vec<Link>, StoreError> {
        let owner = owner.map(str::to_string);
        self.with_conn(move |conn, _| {
            let mut stmt = conn
                .prepare(
                    "SELECT doc FROM links WHERE ?1 IS NULL OR owner = ?1 ORDER BY created_at, id",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![owner], |row| row.get::<_, String>(0))
                .map_err(unavailable)?;
            rows.map(|doc| from_json(&doc.map_err(unavailable)?))
                .collect()
        })
        .await
    }

    async fn delete_link(&self, id: &LinkId) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with_conn(move |conn, _| {
            let deleted = conn
                .execute("DELETE FROM links WHERE id = ?1", params![id])
                .map_err(unavailable)?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn claim_delivery(&self, delivery_id: &str) -> Result<bool, StoreError> {
        let id = delivery_id.to_string();
        self.with_conn(move |conn, _| {
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO deliveries (id) VALUES (?1)",
                    params![id],
                )
                .map_err(unavailable)?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn release_delivery(&self, delivery_id: &str) -> Result<(), StoreError> {
        let id = delivery_id.to_string();
        self.with_conn(move |conn, _| {
            conn.execute("DELETE FROM deliveries WHERE id = ?1", params![id])
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn put_session(&self, session: &Session) -> Result<Session, StoreError> {
        let mut stored = session.clone();
        stored.version = session.version + 1;
        let doc = to_json(&stored)?;
        let (id, owner, expected) = (session.id.clone(), session.owner.clone(), session.version);
        self.with_conn(move |conn, _| {
            let changed = if expected == 0 {
                conn.execute(
                    "INSERT OR IGNORE INTO sessions (id, owner, version, doc) VALUES (?1, ?2, 1, ?3)",
                    params![id.as_str(), owner, doc],
                )
            } else {
                conn.execute(
                    "UPDATE sessions SET doc = ?1, version = version + 1
                     WHERE id = ?2 AND version = ?3",
                    params![doc, id.as_str(), expected as i64],
                )
            }
            .map_err(unavailable)?;
            if changed == 1 {
                Ok(())
            } else {
                Err(StoreError::SessionConflict(id))
            }
        })
        .await?;
        Ok(stored)
    }

    async fn get_session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn, _| {
            let doc: Option<String> = conn
                .query_row(
                    "SELECT doc FROM sessions WHERE id = ?1",
                    params![id.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn create(&self, deployment: &Deployment) -> Result<(), StoreError> {
        let d = deployment.clone();
        let doc = to_json(&d)?;
        self.with_conn(move |conn, _| {
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO deployments (id, owner, created_at, version, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        d.id.as_str(),
                        d.owner,
                        d.created_at.to_rfc3339(),
                        d.version as i64,
                        doc
                    ],
                )
                .map_err(unavailable)?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists(d.id.clone()));
            }
            Ok(())
        })
        .await
    }

    async fn get(&self, id: &DeploymentId) -> Result<Option<Deployment>, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn, _| {
            let doc: Option<String> = conn
                .query_row(
                    "SELECT doc FROM deployments WHERE id = ?1",
                    params![id.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Deployment>, StoreError> {
        let owner = filter.owner.clone();
        let limit = if filter.limit == 0 { 100 } else { filter.limit } as i64;
        self.with_conn(move |conn, _| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT doc FROM deployments WHERE (?1 IS NULL OR owner = ?1)
                     ORDER BY created_at DESC, id DESC LIMIT ?2",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![owner, limit], |row| row.get::<_, String>(0))
                .map_err(unavailable)?;
            rows.map(|doc| from_json(&doc.map_err(unavailable)?))
                .collect()
        })
        .await
    }

    async fn update(&self, next: &Deployment) -> Result<Deployment, StoreError> {
        let mut stored = next.clone();
        stored.version = next.version + 1;
        let doc = to_json(&stored)?;
        let expected = next.version as i64;
        let id = next.id.clone();
        let result = self
            .with_conn(move |conn, _| {
                let changed = conn
                    .execute(
                        "UPDATE deployments SET doc = ?1, version = version + 1
                         WHERE id = ?2 AND version = ?3",
                        params![doc, id.as_str(), expected],
                    )
                    .map_err(unavailable)?;
                if changed == 1 {
                    return Ok(());
                }
                let exists: bool = conn
                    .query_row(
                        "SELECT 1 FROM deployments WHERE id = ?1",
                        params![id.as_str()],
                        |_| Ok(true),
                    )
                    .optional()
                    .map_err(unavailable)?
                    .unwrap_or(false);
                Err(if exists {
                    StoreError::Conflict(id)
                } else {
                    StoreError::NotFound(id)
                })
            })
            .await;
        result?;
        Ok(stored)
    }

    async fn append_event(
        &self,
        id: &DeploymentId,
        event: NewEvent,
    ) -> Result<ProgressEvent, StoreError> {
        let id = id.clone();
        let numbered = self
            .with_conn(move |conn, side| {
                // IMMEDIATE takes the write lock first, so two processes cannot pick one seq.
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(unavailable)?;
                let last: i64 = tx
                    .query_row(
                        "SELECT COALESCE(MAX(seq), 0) FROM events WHERE deployment_id = ?1",
                        params![id.as_str()],
                        |row| row.get(0),
                    )
                    .map_err(unavailable)?;
                let numbered = event.numbered(last as u64 + 1, chrono::Utc::now());
                tx.execute(
                    "INSERT INTO events (deployment_id, seq, doc) VALUES (?1, ?2, ?3)",
                    params![id.as_str(), numbered.seq as i64, to_json(&numbered)?],
                )
                .map_err(unavailable)?;
                tx.commit().map_err(unavailable)?;
                // Published under the connection lock: this process's events reach the hub
                // in seq order, with no read.
                if side.hub.publish(&id, numbered.clone()) == Published::Gap {
                    // Another process wrote the seqs in between; the poller reads them.
                    Ok((numbered, true))
                } else {
                    Ok((numbered, false))
                }
            })
            .await?;
        let (numbered, gap) = numbered;
        if gap {
            self.poller.wake.notify_one();
        }
        Ok(numbered)
    }

    async fn events(
        &self,
        id: &DeploymentId,
        after: u64,
    ) -> Result<Vec<ProgressEvent>, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn, side| read_events(conn, side, &id, after))
            .await
    }

    async fn subscribe(&self, id: &DeploymentId, after: u64) -> Result<EventStream, StoreError> {
        self.hub.clone().subscribe(self, id, after).await
    }
}

#[async_trait]
impl ChangeFeed for SqliteStore {
    async fn read_after(
        &self,
        id: &DeploymentId,
        after: u64,
    ) -> Result<Vec<ProgressEvent>, StoreError> {
        self.events(id, after).await
    }

    async fn last_event(&self, id: &DeploymentId) -> Result<Option<ProgressEvent>, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn, side| {
            side.counted_read();
            let doc: Option<String> = conn
                .query_row(
                    "SELECT doc FROM events WHERE deployment_id = ?1 ORDER BY seq DESC LIMIT 1",
                    params![id.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    fn watch(&self, _id: &DeploymentId, _watch: WatchId, _cursor: u64) {
        // The hub marked the new channel as needing a read; the poller does it.
        self.poller.wake.notify_one();
        self.ensure_poller();
    }

    fn unwatch(&self, _id: &DeploymentId, _watch: WatchId) {
        // The poller stops by itself once nothing is watched.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_domain::{EventKind, NewDeployment, ServiceName, Source, Status};
    use futures::StreamExt;

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

    #[tokio::test]
    async fn a_deployments_region_is_kept_and_a_record_without_one_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let mut d = deployment();
        d.region = Some(devgem_domain::Region::parse("europe-west1").unwrap());
        store.create(&d).await.unwrap();
        let stored = store.get(&d.id).await.unwrap().unwrap();
        assert_eq!(stored.region.unwrap().as_str(), "europe-west1");
        // A record written before deployments had regions.
        let mut old = serde_json::to_value(deployment()).unwrap();
        old.as_object_mut().unwrap().remove("region");
        let old: Deployment = serde_json::from_value(old).unwrap();
        assert_eq!(old.region, None);
    }

    #[tokio::test]
    async fn compare_and_set_lets_exactly_one_writer_win() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let d = deployment();
        store.create(&d).await.unwrap();
        assert!(matches!(
            store.create(&d).await,
            Err(StoreError::AlreadyExists(_))
        ));

        let mut a = d.clone();
        a.summary = Some("a".into());
        let mut b = d.clone();
        b.summary = Some("b".into());
        let first = store.update(&a).await.unwrap();
        assert_eq!(first.version, 1);
        assert!(matches!(
            store.update(&b).await,
            Err(StoreError::Conflict(_))
        ));
        let stored = store.get(&d.id).await.unwrap().unwrap();
        assert_eq!(stored.summary.as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn links_are_listed_per_owner_and_deliveries_are_claimed_once_across_handles() {
        use devgem_domain::{Link, LinkId, RepositoryName, ServiceName};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (one, two) = (
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        );
        let link = |id: &str, owner: &str| Link {
            id: LinkId::parse(id).unwrap(),
            owner: owner.into(),
            repository: RepositoryName::parse("acme/shop").unwrap(),
            branch: "main".into(),
            service_name: ServiceName::parse("shop").unwrap(),
            env_names: vec![],
            created_at: chrono::Utc::now(),
        };
        one.put_link(&link("l-a", "ann")).await.unwrap();
        two.put_link(&link("l-b", "bob")).await.unwrap();
        assert!(one.put_link(&link("l-a", "ann")).await.is_err());
        let anns = two.list_links(Some("ann")).await.unwrap();
        assert_eq!(anns.len(), 1);
        assert_eq!(anns[0].id.as_str(), "l-a");
        assert_eq!(one.list_links(None).await.unwrap().len(), 2);
        assert!(
            two.delete_link(&LinkId::parse("l-a").unwrap())
                .await
                .unwrap()
        );
        assert!(
            !one.delete_link(&LinkId::parse("l-a").unwrap())
                .await
                .unwrap()
        );
        assert!(one.list_links(Some("ann")).await.unwrap().is_empty());

        assert!(one.claim_delivery("guid-1").await.unwrap());
        assert!(!two.claim_delivery("guid-1").await.unwrap());
        assert!(two.claim_delivery("guid-2").await.unwrap());
        // A released delivery (its handling failed) is new again, for every handle.
        one.release_delivery("guid-1").await.unwrap();
        one.release_delivery("guid-never-seen").await.unwrap();
        assert!(two.claim_delivery("guid-1").await.unwrap());
        assert!(!one.claim_delivery("guid-1").await.unwrap());
        assert!(!one.claim_delivery("guid-2").await.unwrap());
    }

    #[tokio::test]
    async fn tokens_are_found_by_hash_touched_listed_and_revoked_across_handles() {
        use devgem_domain::{ApiToken, TokenHash, TokenId, UserId};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (one, two) = (
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        );
        let now = chrono::Utc::now();
        let issue = |id: &str, user: &str, seed: u8| {
            ApiToken::issue(
                TokenId::parse(id).unwrap(),
                UserId::parse(user).unwrap(),
                [seed; 32],
                now,
            )
        };
        let (ann, ann_plain) = issue("t-a", "ann", 1);
        let (bob, _) = issue("t-b", "bob", 2);
        one.put_token(&ann).await.unwrap();
        two.put_token(&bob).await.unwrap();
        assert!(one.put_token(&ann).await.is_err());
        let found = two
            .token_by_hash(&TokenHash::of(ann_plain.expose()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, ann);
        assert_eq!(
            one.token_by_hash(&TokenHash::of("dg_wrong")).await.unwrap(),
            None
        );
        let later = now + chrono::TimeDelta::minutes(5);
        one.touch_token(&ann.id, later).await.unwrap();
        let listed = two.list_tokens().await.unwrap();
        assert_eq!(listed.len(), 2);
        let touched = listed.iter().find(|t| t.id == ann.id).unwrap();
        assert_eq!(touched.last_used_at, Some(later));
        assert!(two.revoke_token(&ann.id).await.unwrap());
        assert!(!one.revoke_token(&ann.id).await.unwrap());
        assert_eq!(one.token_by_hash(&ann.hash).await.unwrap(), None);
        one.touch_token(&ann.id, later).await.unwrap();
        assert_eq!(one.list_tokens().await.unwrap(), vec![bob]);
    }

    #[tokio::test]
    async fn accounts_are_found_by_id_and_by_each_linked_identity() {
        use devgem_domain::{IdentityProvider, LinkedIdentity, identity_key};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (one, two) = (
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        );
        let github = LinkedIdentity {
            provider: IdentityProvider::Github,
            subject: "4242".into(),
            login: Some("ada".into()),
        };
        let mut account = Account::new(github, chrono::Utc::now()).unwrap();
        one.put_account(&account).await.unwrap();
        account.link(LinkedIdentity {
            provider: IdentityProvider::Google,
            subject: "1098".into(),
            login: None,
        });
        two.put_account(&account).await.unwrap();
        assert_eq!(
            one.get_account(&account.id).await.unwrap(),
            Some(account.clone())
        );
        let key = identity_key(IdentityProvider::Google, "1098");
        assert_eq!(one.account_for_identity(&key).await.unwrap(), Some(account));
        let nobody = identity_key(IdentityProvider::Github, "1");
        assert_eq!(one.account_for_identity(&nobody).await.unwrap(), None);
    }

    #[tokio::test]
    async fn sessions_are_written_with_compare_and_set_across_handles() {
        use devgem_domain::{ChatRole, Session, SessionId};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (one, two) = (
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        );
        let now = chrono::Utc::now();
        let id = SessionId::parse("s-0123").unwrap();
        assert_eq!(one.get_session(&id).await.unwrap(), None);
        let mut s = Session::new(id.clone(), "local", now);
        s.add_turn(ChatRole::User, "deploy it", now);
        let stored = one.put_session(&s).await.unwrap();
        assert_eq!(stored.version, 1);
        // A second create of the same id loses.
        assert!(matches!(
            two.put_session(&s).await,
            Err(StoreError::SessionConflict(_))
        ));
        let mut a = two.get_session(&id).await.unwrap().unwrap();
        assert_eq!(a, stored);
        let mut b = a.clone();
        a.add_turn(ChatRole::Assistant, "deploying", now);
        b.add_turn(ChatRole::Assistant, "other", now);
        assert_eq!(two.put_session(&a).await.unwrap().version, 2);
        assert!(matches!(
            one.put_session(&b).await,
            Err(StoreError::SessionConflict(_))
        ));
        let read = one.get_session(&id).await.unwrap().unwrap();
        assert_eq!(read.history.len(), 2);
        assert_eq!(read.history[1].text, "deploying");
    }

    #[tokio::test]
    async fn events_from_another_connection_reach_a_subscriber_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let reader = SqliteStore::open(&path).unwrap();
        // A second handle on the same file stands for another process.
        let writer = SqliteStore::open(&path).unwrap();
        let d = deployment();
        writer.create(&d).await.unwrap();
        writer
            .append_event(&d.id, NewEvent::new(EventKind::Progress, None, "one", 1))
            .await
            .unwrap();
        let mut stream = reader.subscribe(&d.id, 0).await.unwrap();
        let id = d.id.clone();
        tokio::spawn(async move {
            for n in 2..=5 {
                writer
                    .append_event(
                        &id,
                        NewEvent::new(EventKind::Progress, None, format!("{n}"), n),
                    )
                    .await
                    .unwrap();
            }
            writer
                .append_event(&id, NewEvent::status(Status::Live, "live", 100))
                .await
                .unwrap();
        });
        let mut seqs = vec![];
        while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("subscriber stalled")
        {
            seqs.push(event.unwrap().seq);
        }
        assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
        let resumed: Vec<u64> = reader
            .subscribe(&d.id, 4)
            .await
            .unwrap()
            .map(|e| e.unwrap().seq)
            .collect()
            .await;
        assert_eq!(resumed, vec![5, 6]);
    }
}
