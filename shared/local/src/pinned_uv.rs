//! The uv release a uv project's plan pins (for its `uv.lock` and `[tool.uv]
//! required-version`): the uv on `PATH` when it is that release or newer (and the project
//! names no required version), else that release installed once into
//! `$DEVGEM_HOME/tools/uv-<version>` and run through a shim in `<root>/.devgem/bin`. The
//! plan's own `pip install uv==X` (what the Dockerfile runs) is then left out of the native
//! install. When the release cannot be installed, the uv on `PATH` is used, after a message
//! naming the lock and the fix.

use devgem_plan::{BuildPlan, PackageManager};
use devgem_ports::{BuildError, LogSink};
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::{process, toolchain, uv};

/// The plan's install command without its leading `pip install uv==<version> && `, when the
/// plan pins uv and installs it that way.
pub(crate) fn install_without_uv(plan: &BuildPlan) -> Option<(String, String)> {
    if plan.package_manager != Some(PackageManager::Uv) {
        return None;
    }
    let version = plan.package_manager_version.as_deref()?;
    let rest = plan
        .install_command
        .as_deref()?
        .trim()
        .strip_prefix(&format!("pip install uv=={version} && "))?;
    Some((version.to_string(), rest.to_string()))
}

/// The numeric parts of a version (`uv 0.8.24 (x86_64…)` → `[0, 8, 24]`).
fn parts(version: &str) -> Vec<u64> {
    let v = version
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("");
    v.split('.').map_while(|p| p.parse().ok()).collect()
}

/// Whether the uv that prints `have` serves a plan pinning `pinned`: the same release, or a
/// newer one when the project does not constrain uv's version (newer uv reads older locks).
pub(crate) fn serves(have: &str, pinned: &str, project_requires_version: bool) -> bool {
    let (have, pinned) = (parts(have), parts(pinned));
    !have.is_empty() && (have == pinned || (!project_requires_version && have >= pinned))
}

/// Whether pyproject.toml names a `required-version` in its `[tool.uv]` table.
fn requires_version(app: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(app.join("pyproject.toml")) else {
        return false;
    };
    let mut in_tool_uv = false;
    text.lines().map(str::trim).any(|l| {
        if l.starts_with('[') {
            in_tool_uv = l.trim_matches(['[', ']', ' ']) == "tool.uv";
            return false;
        }
        in_tool_uv
            && l.split('=')
                .next()
                .is_some_and(|k| k.trim() == "required-version")
    })
}

/// Provides uv `version` for the build (see the module comment). `Ok(())` when the install
/// command without its own `pip install uv` can run.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn provide(
    version: &str,
    root: &Path,
    app: &Path,
    tools_dir: &Path,
    env: &[(String, String)],
    log: &dyn LogSink,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), BuildError> {
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .unwrap_or_default();
    let on_path = process::which("uv", &path);
    let have = match &on_path {
        Some(bin) => toolchain::installed_version(bin, app, env).await,
        None => None,
    };
    let pinned_by_project = requires_version(app);
    if let Some(have) = &have
        && serves(have, version, pinned_by_project)
    {
        log.line(&format!(
            "The app needs uv {version}{}; using {have} from this machine",
            if pinned_by_project { "" } else { " or newer" }
        ));
        return Ok(());
    }
    let lock = if app.join("uv.lock").is_file() {
        "uv.lock"
    } else {
        "pyproject.toml"
    };
    let dir = format!("uv-{version}");
    match uv::install_release(tools_dir, &dir, version, env, log, timeout, cancel).await? {
        Some(bin) => {
            log.line(&format!(
                "The app needs uv {version} for its {lock}{}; the build uses {}",
                match &have {
                    Some(h) => format!(" and this machine has {h}"),
                    None => ", which is not installed here".to_string(),
                },
                bin.display()
            ));
            crate::build::write_shim(
                &root.join(".devgem/bin"),
                "uv",
                &format!("exec {} \"$@\"", uv::shell_word(&bin)),
            )
            .map_err(|e| BuildError::Unavailable(format!("could not write the uv shim: {e}")))
        }
        None => match have {
            Some(have) => {
                let fix = if pinned_by_project {
                    "or widen [tool.uv] required-version in pyproject.toml (uv refuses to run outside it)"
                } else {
                    "or regenerate the lock with this uv (uv lock) and commit it"
                };
                log.line(&format!(
                    "The app's {lock} asks for uv {version}, which could not be installed from PyPI (above); \
                     trying {have} from this machine instead. If it fails, install uv {version} \
                     (pip install uv=={version}), {fix}"
                ));
                Ok(())
            }
            None => Err(BuildError::Failed {
                reason: format!(
                    "the app's {lock} needs uv {version}, which is not installed here and could not be installed from PyPI"
                ),
                hint: format!(
                    "check that PyPI is reachable (pip download uv=={version}), or install it yourself (pip install uv=={version})"
                ),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_plan::{Language, Template};

    #[test]
    fn a_newer_uv_serves_unless_the_project_requires_a_version() {
        assert!(serves(
            "uv 0.13.9 (x86_64-unknown-linux-gnu)",
            "0.6.17",
            false
        ));
        assert!(!serves(
            "uv 0.13.9 (x86_64-unknown-linux-gnu)",
            "0.9.30",
            true
        ));
        assert!(serves("uv 0.9.30", "0.9.30", true));
        assert!(!serves("uv 0.5.31", "0.6.17", false));
        assert!(!serves("", "0.6.17", false));
    }

    #[test]
    fn only_the_pinned_uv_install_is_left_out() {
        let mut plan = BuildPlan::new(Language::Python, Template::Python, "gunicorn app:app");
        plan.package_manager = Some(PackageManager::Uv);
        plan.package_manager_version = Some("0.8.24".into());
        plan.install_command = Some("pip install uv==0.8.24 && uv export --frozen -o r.txt".into());
        assert_eq!(
            install_without_uv(&plan),
            Some(("0.8.24".into(), "uv export --frozen -o r.txt".into()))
        );
        plan.install_command = Some("pip install uv && uv export --frozen -o r.txt".into());
        assert_eq!(install_without_uv(&plan), None);
    }
}
