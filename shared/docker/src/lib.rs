//! On a Docker engine: [`DockerBuilder`] builds the plan's generated Dockerfile into an image,
//! and [`DockerRuntime`] runs that image the way Cloud Run does (`PORT=8080` inside, `K_*`
//! variables, memory and CPU limits, secrets resolved at start, a TCP then HTTP startup probe),
//! so that a local run proves the Cloud Run contract.
//!
//! The engine is reached through the Engine API with `bollard`, at `DOCKER_HOST` (default
//! `unix:///var/run/docker.sock`); the API version is negotiated with the engine. The engine
//! that `scripts/docker-engine.sh` installs here is Debian bookworm's Docker 20.10.24, which
//! accepts Engine API 1.41 at most.
//!
//! Builder: the classic builder (`version=1`). BuildKit through the API needs a gRPC session
//! over the connection (bollard's `buildkit` features, a large dependency), and the generated
//! Dockerfiles start with `# syntax=docker/dockerfile:1`, which makes BuildKit fetch its
//! Dockerfile frontend from Docker Hub: no registry is reachable on these machines, so such a
//! BuildKit build cannot start here. The classic builder reads that line as a comment, and
//! reuses layers from every image the engine holds, so a redeploy whose dependency files did
//! not change takes its install steps from cache ("Using cache").
//!
//! Base images cannot be pulled here either: `scripts/docker-engine.sh` makes stand-ins from
//! Debian's packages under the official names (each labelled `org.devgem.stand-in` with what
//! it really contains), and a build never asks for a pull.

mod build;
mod context;
mod engine;
mod probe;
mod run;

pub use build::{DockerBuildConfig, DockerBuilder};
pub use engine::{Engine, engine_answers};
pub use run::{DockerRunConfig, DockerRuntime};

/// The labels DevGem puts on the containers it runs (the images carry the request's labels).
pub mod labels {
    pub const DEPLOYMENT: &str = "org.devgem.deployment";
    pub const SERVICE: &str = "org.devgem.service";
    pub const REVISION: &str = "org.devgem.revision";
    /// The release spec as JSON: references to secrets, never their values.
    pub const SPEC: &str = "org.devgem.release";
    pub const URL: &str = "org.devgem.url";
    pub const STARTED_AT: &str = "org.devgem.started-at";
}
