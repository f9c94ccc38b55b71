//! The embedded defaults: every port implemented on one machine with no outside service, so
//! `devgem deploy` works on a laptop with nothing installed but DevGem.
//!
//! - [`SqliteStore`]: the state store in one SQLite file (WAL, so several DevGem processes can
//!   share it), with a change stream that sees writes from other processes.
//! - [`fanout`]: one change stream per watched deployment per process, shared by all of its
//!   subscribers (the SQLite and Firestore stores both use it).
//! - [`InProcessBus`]: at-least-once delivery inside the process, with backoff and a dead letter.
//! - [`FolderObjectStore`]: objects as files under a folder.
//! - [`FileSecrets`]: secrets in one JSON file readable only by its owner.

mod bus;
pub mod fanout;
mod objects;
mod secrets;
mod sqlite;

pub use bus::{BusOptions, InProcessBus};
pub use objects::FolderObjectStore;
pub use secrets::FileSecrets;
pub use sqlite::{POLL_INTERVAL, QueryCounts, SqliteStore};

/// Rejects keys that could escape the folder they are joined to.
pub(crate) fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}
