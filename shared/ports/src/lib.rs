//! The ports: one narrow trait per outside service. Stages ask only for the ports they use,
//! held as `Arc<dyn Port>`. Adapters live in `devgem-embedded`, `devgem-local` and `devgem-gcp`.
//!
//! **Invariant:** nothing here does I/O; these are only contracts.

mod bus;
mod clock;
mod exec;
mod objects;
mod secrets;
mod store;

pub use bus::{BusError, Delivery, HandlerError, MessageBus, MessageHandler};
pub use clock::{Clock, IdSource};
pub use exec::{
    Artifact, BuildError, BuildRequest, BuildSource, Builder, DnsRecord, DomainMapping,
    DomainStatus, EnvUpdate, FetchedSource, GitRevision, LogLine, LogPage, LogQuery, LogSink,
    Release, ReleaseSpec, Resources, Revision, Runtime, RuntimeEnv, RuntimeError, Scaling,
    SecretEnv, SourceError, SourceFetcher, TcpProbe, next_revision,
};
pub use objects::{ObjectError, ObjectStore};
pub use secrets::{SecretError, SecretValue, Secrets};
pub use store::{EventStream, ListFilter, StateStore, StoreError};

pub use tokio_util::sync::CancellationToken;
