//! The package manager a repository pins, at the version it pins: pnpm by `packageManager` or
//! its lockfile's format, Yarn classic or Berry, Bun. When the one on `PATH` is another major
//! version (or there is none), the pinned release is installed once from the npm registry
//! into `$DEVGEM_HOME/tools/<name>-<version>` and a shim in `<root>/.devgem/bin` (on `PATH`
//! for the build and the app) runs it. The Dockerfile installs the same release.

use devgem_plan::PackageManager;
use devgem_ports::{BuildError, LogSink};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::process::{self, RunError};

/// The npm package that holds `manager` at `version`, and the program it provides: Yarn 2 and
/// later are published as `@yarnpkg/cli-dist`, the `yarn` package holds only Yarn 1.
pub(crate) fn npm_package(
    manager: PackageManager,
    version: &str,
) -> Option<(String, &'static str)> {
    match manager {
        PackageManager::Pnpm => Some((format!("pnpm@{version}"), "pnpm")),
        PackageManager::Yarn if version.starts_with("1.") || version == "1" => {
            Some((format!("yarn@{version}"), "yarn"))
        }
        PackageManager::Yarn => Some((format!("@yarnpkg/cli-dist@{version}"), "yarn")),
        PackageManager::Bun => Some((format!("bun@{version}"), "bun")),
        _ => None,
    }
}

/// The major version of a version string (`8` of `8.15.9`, of `v8.1`, of `8`).
pub(crate) fn major(version: &str) -> &str {
    let v = version.trim().trim_start_matches('v');
    v.split('.').next().unwrap_or(v)
}

/// What `program --version` prints, from `dir`, when it runs.
pub(crate) async fn installed_version(
    program: &Path,
    dir: &Path,
    env: &[(String, String)],
) -> Option<String> {
    let probe = Command::new(program)
        .arg("--version")
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        // A pinned `packageManager` makes some versions refuse to run in the project:
        // ask from a neutral folder's point of view.
        .env("COREPACK_ENABLE_STRICT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), probe)
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The program of `package` installed into `<tools>/<program>-<version>`, installing it with
/// npm the first time (into a private folder, renamed into place when complete, so a
/// concurrent build never runs half an install).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn install(
    tools_dir: &Path,
    package: &str,
    program: &str,
    version: &str,
    env: &[(String, String)],
    log: &dyn LogSink,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<PathBuf, BuildError> {
    let dir = tools_dir.join(format!("{program}-{version}"));
    let binary = dir.join("node_modules/.bin").join(program);
    if binary.is_file() {
        return Ok(binary);
    }
    log.line(&format!(
        "Installing {package} into {} once, for this and later builds",
        dir.display()
    ));
    let partial = tools_dir.join(format!(
        "{program}-{version}.partial-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| {
        BuildError::Unavailable(format!("could not create {}: {e}", partial.display()))
    })?;
    let mut cmd = Command::new(process::SHELL);
    cmd.arg("-c")
        .arg(format!(
            "npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error --prefix . {package}"
        ))
        .current_dir(&partial)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    let done = process::run(cmd, log, timeout, cancel, &|l| l.to_string()).await;
    let installed = partial.join("node_modules/.bin").join(program);
    match done {
        Ok(d) if d.status.success() && installed.is_file() => {
            // Another build may have installed the same release meanwhile; either will do.
            if std::fs::rename(&partial, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&partial);
            }
            Ok(binary)
        }
        Err(RunError::Cancelled) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(BuildError::Cancelled)
        }
        Ok(d) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(BuildError::Failed {
                reason: format!(
                    "the app needs {package}, which could not be installed from the npm registry:\n{}",
                    d.tail.last(15)
                ),
                hint: format!(
                    "check that the npm registry is reachable (npm view {package} version), or install it yourself (npm install -g {package})"
                ),
            })
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(BuildError::Unavailable(format!(
                "npm install {package}: {e:?}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pin_comes_from_the_package_that_publishes_it() {
        assert_eq!(
            npm_package(PackageManager::Pnpm, "8.15.9"),
            Some(("pnpm@8.15.9".into(), "pnpm"))
        );
        assert_eq!(
            npm_package(PackageManager::Yarn, "1.22.22"),
            Some(("yarn@1.22.22".into(), "yarn"))
        );
        assert_eq!(
            npm_package(PackageManager::Yarn, "4.18.1"),
            Some(("@yarnpkg/cli-dist@4.18.1".into(), "yarn"))
        );
        assert_eq!(npm_package(PackageManager::Npm, "10.0.0"), None);
        assert_eq!(major("v8.15.9"), "8");
        assert_eq!(major("9"), "9");
    }
}
