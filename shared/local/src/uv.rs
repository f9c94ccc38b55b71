//! Plain requirements installed with uv, the fastest installer a `pip install -r` plan allows:
//! uv found on `PATH` or installed once into `$DEVGEM_HOME/tools/uv`, a venv made by uv, and an
//! unchanged requirements file installed from its last resolution, offline, as a container
//! build reuses the layer of an unchanged `COPY requirements.txt` (re-resolved at least daily).
//! Anything uv cannot do falls back to pip, which follows this machine's pip configuration.

use devgem_plan::{BuildPlan, Language};
use devgem_ports::{BuildError, LogSink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::caches::stable_hash;
use crate::process;

/// The uv DevGem installs when this machine has none (`pip install uv==UV_VERSION`).
pub(crate) const UV_VERSION: &str = "0.13.9";

/// How long a recorded resolution is reused before the requirements are resolved again.
const RESOLUTION_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The arguments of the plan's install when it is a plain `pip install` of requirement files
/// and names (no options but `-r`, no local project) and nothing else the plan runs calls pip.
pub(crate) fn plain_pip_install(plan: &BuildPlan) -> Option<Vec<String>> {
    if plan.language != Language::Python {
        return None;
    }
    let install = plan.install_command.as_deref()?.trim();
    let args: Vec<String> = install
        .strip_prefix("pip install ")?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut expect_file = false;
    for arg in &args {
        let plain = arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.[],=<>~!*/".contains(c));
        if !plain || (arg.starts_with('-') && arg != "-r") || (!expect_file && arg.starts_with('.'))
        {
            return None;
        }
        expect_file = arg == "-r";
    }
    let others = [
        plan.build_command.as_deref(),
        Some(plan.start_command.as_str()),
    ];
    let calls_pip = others
        .into_iter()
        .flatten()
        .any(|c| c.split_whitespace().any(|w| w == "pip" || w == "pip3"));
    (!args.is_empty() && !expect_file && !calls_pip).then_some(args)
}

/// Whether a pip configuration file names an index or links uv would not know of; then pip
/// does the install, so that it goes where this machine's pip goes.
pub(crate) fn pip_config_names_an_index(env: &[(String, String)]) -> bool {
    let home = env
        .iter()
        .rev()
        .find(|(k, _)| k == "HOME")
        .map(|(_, v)| PathBuf::from(v));
    let mut files = vec![
        PathBuf::from("/etc/pip.conf"),
        PathBuf::from("/etc/xdg/pip/pip.conf"),
    ];
    if let Some(home) = home {
        files.push(home.join(".config/pip/pip.conf"));
        files.push(home.join(".pip/pip.conf"));
    }
    if let Some((_, file)) = env.iter().find(|(k, _)| k == "PIP_CONFIG_FILE") {
        files.push(PathBuf::from(file));
    }
    files.iter().any(|file| {
        std::fs::read_to_string(file).is_ok_and(|text| {
            text.lines().any(|l| {
                let key = l.split(['=', ':']).next().unwrap_or("").trim();
                matches!(
                    key,
                    "index-url" | "extra-index-url" | "find-links" | "index_url"
                )
            })
        })
    })
}

/// The `UV_*` equivalents of the `PIP_*` index settings in `env`, where uv's own are unset.
pub(crate) fn uv_index_env(env: &[(String, String)]) -> Vec<(String, String)> {
    let get = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut out = vec![
        // This machine's trust store, as pip uses it.
        ("UV_NATIVE_TLS".to_string(), "1".to_string()),
        ("UV_NO_PROGRESS".to_string(), "1".to_string()),
        ("UV_PYTHON_DOWNLOADS".to_string(), "never".to_string()),
    ];
    for (pip, uv, separator) in [
        ("PIP_INDEX_URL", "UV_DEFAULT_INDEX", " "),
        ("PIP_EXTRA_INDEX_URL", "UV_INDEX", " "),
        ("PIP_FIND_LINKS", "UV_FIND_LINKS", ","),
    ] {
        if let (Some(value), None) = (get(pip), get(uv)) {
            let joined = value.split_whitespace().collect::<Vec<_>>().join(separator);
            out.push((uv.to_string(), joined));
        }
    }
    out
}

/// What decides the result of installing `args` into the venv at `venv`, when it is decided by
/// files alone: the arguments, each requirement file's text and the interpreter. `None` when a
/// requirement file includes others or names a path or URL, whose content can change under it.
pub(crate) fn resolution_inputs(app: &Path, args: &[String], venv: &Path) -> Option<String> {
    let mut inputs = format!("args {}\n", args.join(" "));
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    for line in cfg.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        if matches!(key, "home" | "version_info" | "implementation" | "version") {
            inputs.push_str(line.trim());
            inputs.push('\n');
        }
    }
    let mut files = args.iter().skip_while(|a| *a != "-r");
    while let Some(flag) = files.next() {
        if flag != "-r" {
            continue;
        }
        let name = files.next()?;
        let text = std::fs::read_to_string(app.join(name)).ok()?;
        let only_names = text.lines().map(str::trim).all(|l| {
            l.is_empty()
                || l.starts_with('#')
                || (l.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && !l.contains("://")
                    && !l.contains(" @ ")
                    && !l.contains('/'))
        });
        if !only_names {
            return None;
        }
        inputs.push_str(&format!("file {name}\n{text}\n"));
    }
    Some(inputs)
}

/// A resolution recorded after a successful install, under `<cache>/python-resolutions/`.
pub(crate) struct Resolution {
    pub inputs: String,
    pub path: PathBuf,
}

impl Resolution {
    pub(crate) fn new(cache_dir: &Path, inputs: String) -> Self {
        let name = stable_hash(&[inputs.as_bytes()]);
        let path = cache_dir
            .join("python-resolutions")
            .join(format!("{name}.txt"));
        Self { inputs, path }
    }

    /// The recorded `uv pip freeze` file, when it was made from the same inputs recently.
    pub(crate) fn fresh_frozen(&self) -> Option<PathBuf> {
        let frozen = self.path.with_extension("frozen.txt");
        let recorded = std::fs::read_to_string(&self.path).ok()?;
        let age = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())?;
        (recorded == self.inputs && age < RESOLUTION_MAX_AGE && frozen.is_file()).then_some(frozen)
    }

    pub(crate) fn frozen_path(&self) -> PathBuf {
        self.path.with_extension("frozen.txt")
    }

    /// Records the inputs once `frozen_path` holds the freeze; the inputs file is written last,
    /// by rename, so a reader never sees a half-written record.
    pub(crate) fn record(&self) -> std::io::Result<()> {
        let partial = self
            .path
            .with_extension(format!("{}.partial", std::process::id()));
        std::fs::write(&partial, &self.inputs)?;
        std::fs::rename(&partial, &self.path)
    }
}

/// uv on `PATH`, or the copy in `<tools>/uv`, or that copy installed now with this machine's
/// pip. `None` (after saying why) when there is no uv and pip could not install it.
pub(crate) async fn find_or_install(
    tools_dir: &Path,
    env: &[(String, String)],
    log: &dyn LogSink,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Option<PathBuf>, BuildError> {
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .unwrap_or_default();
    if let Some(uv) = process::which("uv", &path) {
        return Ok(Some(uv));
    }
    let installed = tools_dir.join("uv");
    let binary = installed.join("bin/uv");
    if binary.is_file() {
        return Ok(Some(binary));
    }
    log.line("uv is not installed here");
    match install_release(tools_dir, "uv", UV_VERSION, env, log, timeout, cancel).await? {
        Some(uv) => Ok(Some(uv)),
        None => {
            log.line("Could not install uv; pip installs the requirements instead");
            Ok(None)
        }
    }
}

/// uv `version` installed once with this machine's pip into `<tools>/<dir_name>` (into a
/// private folder, renamed into place when complete, so a concurrent build never runs half
/// an install). `None` when there is no python3 or pip could not install it.
pub(crate) async fn install_release(
    tools_dir: &Path,
    dir_name: &str,
    version: &str,
    env: &[(String, String)],
    log: &dyn LogSink,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Option<PathBuf>, BuildError> {
    let installed = tools_dir.join(dir_name);
    let binary = installed.join("bin/uv");
    if binary.is_file() {
        return Ok(Some(binary));
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .unwrap_or_default();
    let Some(python) = process::which("python3", &path) else {
        return Ok(None);
    };
    log.line(&format!(
        "Installing uv {version} into {} once, for this and later builds",
        installed.display()
    ));
    let partial = tools_dir.join(format!("{dir_name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
    ])
    .arg(&partial)
    .arg(format!("uv=={version}"))
    .env_clear()
    .envs(env.iter().map(|(k, v)| (k, v)));
    let done = process::run(cmd, log, timeout, cancel, &|l| l.to_string()).await;
    match done {
        Ok(d) if d.status.success() && partial.join("bin/uv").is_file() => {
            // Another build may have installed it meanwhile; either copy is the same uv.
            if std::fs::rename(&partial, &installed).is_err() {
                let _ = std::fs::remove_dir_all(&partial);
            }
            Ok(binary.is_file().then_some(binary))
        }
        Err(process::RunError::Cancelled) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(BuildError::Cancelled)
        }
        _ => {
            let _ = std::fs::remove_dir_all(&partial);
            Ok(None)
        }
    }
}

/// `path` as one shell word.
pub(crate) fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_plan::Template;

    fn plan(install: &str, start: &str) -> BuildPlan {
        BuildPlan {
            install_command: Some(install.into()),
            ..BuildPlan::new(Language::Python, Template::Python, start)
        }
    }

    #[test]
    fn only_a_plain_pip_install_goes_to_uv() {
        assert_eq!(
            plain_pip_install(&plan("pip install -r requirements.txt", "gunicorn app:app")),
            Some(vec!["-r".to_string(), "requirements.txt".to_string()])
        );
        assert!(plain_pip_install(&plan("pip install .", "app")).is_none());
        assert!(plain_pip_install(&plan("pip install --user -r r.txt", "app")).is_none());
        assert!(plain_pip_install(&plan("pip install pipenv && pipenv install", "app")).is_none());
        assert!(plain_pip_install(&plan("pip install -r r.txt", "pip list; app")).is_none());
        assert!(plain_pip_install(&plan("pip install -r", "app")).is_none());
    }

    #[test]
    fn pip_index_settings_reach_uv_unless_uv_has_its_own() {
        let env = vec![
            ("PIP_FIND_LINKS".to_string(), "/opt/a /opt/b".to_string()),
            (
                "PIP_INDEX_URL".to_string(),
                "https://mirror/simple".to_string(),
            ),
            (
                "UV_DEFAULT_INDEX".to_string(),
                "https://uv-mirror/simple".to_string(),
            ),
        ];
        let uv = uv_index_env(&env);
        assert!(uv.contains(&("UV_FIND_LINKS".to_string(), "/opt/a,/opt/b".to_string())));
        assert!(!uv.iter().any(|(k, _)| k == "UV_DEFAULT_INDEX"));
    }

    #[test]
    fn a_resolution_is_reused_only_for_the_same_files_and_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let (app, venv) = (dir.path(), dir.path().join(".venv"));
        std::fs::create_dir(&venv).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            "home = /usr/bin\nversion_info = 3.11.7\nprompt = x\n",
        )
        .unwrap();
        std::fs::write(
            app.join("requirements.txt"),
            "flask==3.1.*\n# web\ngunicorn\n",
        )
        .unwrap();
        let args = vec!["-r".to_string(), "requirements.txt".to_string()];
        let first = resolution_inputs(app, &args, &venv).unwrap();
        assert_eq!(resolution_inputs(app, &args, &venv).unwrap(), first);

        let cache = dir.path().join("cache");
        let resolution = Resolution::new(&cache, first.clone());
        assert!(resolution.fresh_frozen().is_none());
        std::fs::create_dir_all(resolution.path.parent().unwrap()).unwrap();
        std::fs::write(resolution.frozen_path(), "flask==3.1.3\n").unwrap();
        resolution.record().unwrap();
        assert!(Resolution::new(&cache, first).fresh_frozen().is_some());

        std::fs::write(app.join("requirements.txt"), "flask==3.0.*\n").unwrap();
        let changed = resolution_inputs(app, &args, &venv).unwrap();
        assert!(Resolution::new(&cache, changed).fresh_frozen().is_none());

        std::fs::write(app.join("requirements.txt"), "-r base.txt\n").unwrap();
        assert!(resolution_inputs(app, &args, &venv).is_none());
        std::fs::write(app.join("requirements.txt"), "./libs/mine\n").unwrap();
        assert!(resolution_inputs(app, &args, &venv).is_none());
    }
}
