//! Off Google Cloud, DevGem deploys on the local machine, without Docker: this crate fetches
//! the source ([`LocalSourceFetcher`]), builds the plan natively ([`NativeBuilder`]) and runs
//! the app as a local process listening on `$PORT` ([`ProcessRuntime`]).
//!
//! **Invariant:** every child process leads its own process group, so stopping, cancelling
//! or timing out kills everything it started, and nothing else.
//!
//! The builder and the runtime should get different base folders: the builder replaces
//! `<base>/<deployment>/` on every build, while the runtime keeps the record of the running
//! app (`runtime.json`) and its output (`app.log`) in `<base>/<deployment>/`.

mod build;
mod fetch;
mod hint;
mod port;
mod process;
mod run;
mod tree;

pub use build::{BuildConfig, NativeBuilder};
pub use fetch::{FetchConfig, LocalSourceFetcher};
pub use run::{ProcessRuntime, RunConfig, RunningApp};
