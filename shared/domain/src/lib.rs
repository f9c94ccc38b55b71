//! DevGem's domain model: what a deployment is, the states it moves through, the progress a
//! user watches, and the small messages that chain the pipeline stages.
//!
//! **Invariant:** this crate does no I/O. Every clock reading is passed in, so every rule here
//! can be tested with plain values.

mod account;
mod deployment;
mod id;
mod link;
mod message;
mod package;
mod progress;
mod session;
mod status;
mod user;

pub use account::{Account, IdentityProvider, LinkedIdentity, Preferences, identity_key};
pub use deployment::{
    Artifact, Claim, CommitRefused, Deployment, Failure, NewDeployment, PlanOverride,
    SHORTHAND_GIT_HOSTS, Source, SourceKind, StageResult,
};
pub use id::{DeploymentId, EnvVarName, ImageRef, InvalidName, Region, ServiceName};
pub use link::{Link, LinkId, RepositoryName};
pub use message::{Stage, StageMessage};
pub use package::{DebianPackage, Dependency, Manifest};
pub use progress::{
    EventKind, NewEvent, ProgressEvent, Step, VirtualProgress, ticking_percent, virtual_fraction,
};
pub use session::{ChatRole, ChatTurn, Session, SessionId};
pub use status::{Status, TransitionError};
pub use user::{
    ApiToken, Identity, LOCAL_USER, PlainToken, RateLimit, Role, TokenBucket, TokenHash, TokenId,
    UserId,
};
