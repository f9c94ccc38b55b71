//! The state store in one SQLite file. Deployments are JSON documents with a version column
//! for compare-and-set; events are rows numbered per deployment. WAL mode and a busy timeout
//! let several DevGem processes (a `devgem serve` and a `devgem status`, say) share the file.

use async_trait::async_trait;
use devgem_domain::{Deployment, DeploymentId, NewEvent, ProgressEvent};
use devgem_ports::{EventStream, ListFilter, StateStore, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often a subscriber looks for events written by other processes; writes in this process
/// wake subscribers at once.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    written: Arc<Notify>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
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
             );",
        )
        .map_err(unavailable)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            written: Arc::new(Notify::new()),
        })
    }

    /// Runs `f` on the connection off the async threads.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| unavailable("store lock poisoned"))?;
            f(&mut conn)
        })
        .await
        .map_err(unavailable)?
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(unavailable)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| unavailable(format!("corrupt record: {e}")))
}

fn read_events(
    conn: &Connection,
    id: &DeploymentId,
    after: u64,
) -> Result<Vec<ProgressEvent>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc FROM events WHERE deployment_id = ?1 AND seq > ?2 ORDER BY seq LIMIT 1000",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map(params![id.as_str(), after as i64], |row| {
            row.get::<_, String>(0)
        })
        .map_err(unavailable)?;
    rows.map(|doc| from_json(&doc.map_err(unavailable)?))
        .collect()
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn create(&self, deployment: &Deployment) -> Result<(), StoreError> {
        let d = deployment.clone();
        let doc = to_json(&d)?;
        self.with_conn(move |conn| {
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
        self.with_conn(move |conn| {
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
        self.with_conn(move |conn| {
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
            .with_conn(move |conn| {
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
        self.written.notify_waiters();
        Ok(stored)
    }

    async fn append_event(
        &self,
        id: &DeploymentId,
        event: NewEvent,
    ) -> Result<ProgressEvent, StoreError> {
        let id = id.clone();
        let numbered = self
            .with_conn(move |conn| {
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
                Ok(numbered)
            })
            .await?;
        self.written.notify_waiters();
        Ok(numbered)
    }

    async fn events(
        &self,
        id: &DeploymentId,
        after: u64,
    ) -> Result<Vec<ProgressEvent>, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn| read_events(conn, &id, after))
            .await
    }

    async fn subscribe(&self, id: &DeploymentId, after: u64) -> Result<EventStream, StoreError> {
        struct State {
            store: SqliteStore,
            id: DeploymentId,
            last: u64,
            pending: std::collections::VecDeque<ProgressEvent>,
            finished: bool,
        }
        let state = State {
            store: self.clone(),
            id: id.clone(),
            last: after,
            pending: Default::default(),
            finished: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(event) = st.pending.pop_front() {
                    st.last = event.seq;
                    if event.is_final() {
                        st.finished = true;
                        st.pending.clear();
                    }
                    return Some((Ok(event), st));
                }
                if st.finished {
                    return None;
                }
                // Register for wake-ups before reading, so a write between the read and the
                // wait is not missed.
                let written = st.store.written.clone();
                let notified = written.notified();
                match st.store.events(&st.id, st.last).await {
                    Ok(events) if !events.is_empty() => st.pending.extend(events),
                    Ok(_) => {
                        let _ = tokio::time::timeout(POLL_INTERVAL, notified).await;
                    }
                    Err(e) => {
                        st.finished = true;
                        return Some((Err(e), st));
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_domain::{EventKind, NewDeployment, ServiceName, Source, Status};
    use futures::StreamExt;

    fn deployment() -> Deployment {
        Deployment::new(
            DeploymentId::generate(),
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
