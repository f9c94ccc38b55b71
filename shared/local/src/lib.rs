//! Off Google Cloud, DevGem deploys on the local machine, without Docker: this crate fetches
//! the source ([`LocalSourceFetcher`]), builds the plan natively ([`NativeBuilder`]) and runs
//! the app as a local process listening on `$PORT` ([`ProcessRuntime`]).
//!
//! # Code map
//!
//! - `fetch`: a local folder (copied, honouring `.gitignore`) or a git URL (shallow clone,
//!   never prompting, token in the environment, credentials redacted from every line).
//! - `build`: a fresh copy of the checkout in `<base>/<deployment>/`, a Python venv or the
//!   Node package manager, then the plan's install and build commands.
//! - `run`: the app in its own process group, `runtime.json` and `app.log` in
//!   `<base>/<deployment>/`, readiness by TCP then `GET /`, the port-mistake diagnosis.
//! - `process`: the one way child processes are run (own group, streamed lines, timeout,
//!   cancellation, no leftovers) and the environment they inherit.
//! - `port`: free ports and what `/proc` says about a process group and its sockets.
//! - `tree`: copying a tree without `.git`, ignored files or links leading out of it.
//! - `hint`: output of a failed command -> a fix a user can apply.
//! - `caches`: one package cache per package manager, shared by builds (`$DEVGEM_HOME/cache`).
//! - `toolchain`: the package manager the repository pins (pnpm, Yarn, Bun), installed once.
//! - `uv`: plain requirements installed with uv, an unchanged file from its last resolution.
//!
//! # Invariants
//!
//! **Every child process leads its own process group**, so stopping, cancelling or timing
//! out kills everything it started, and nothing else.
//!
//! **Builds and apps see no DevGem secrets**: their environment is built from an allow-list
//! of the host's toolchain, locale, proxy and CA settings, plus the plan's and the user's
//! variables; user values are never written to a log.
//!
//! **A started app does not depend on the process that started it**: everything needed to
//! find, stop or read it again is in `runtime.json` and `app.log`.
//!
//! # Wiring
//!
//! Give the builder and the runtime different base folders (say `~/.devgem/builds` and
//! `~/.devgem/apps`): the builder replaces `<base>/<deployment>/` on every build, while the
//! runtime keeps the record of the running app there. [`FetchConfig::from_env`] takes the
//! GitHub token from `GITHUB_TOKEN`.

mod build;
mod caches;
mod fetch;
mod hint;
mod pinned_uv;
mod poetry;
mod port;
mod process;
mod run;
mod toolchain;
mod tree;
mod uv;

pub use build::{BuildConfig, NativeBuilder};
pub use fetch::{FetchConfig, LocalSourceFetcher};
pub use run::{ProcessRuntime, RunConfig, RunningApp};
