//! The native builder: runs the build plan's install and build commands on this machine, in
//! a fresh copy of the checkout, with the language's tools (a Python venv, `node_modules/.bin`)
//! first on `PATH`. It renders the same plan the Dockerfile encodes, so a local run proves it.

use async_trait::async_trait;
use devgem_plan::{BuildPlan, Language, PackageManager};
use devgem_ports::{Artifact, BuildError, BuildRequest, Builder, LogSink, ObjectStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::caches;
use crate::hint;
use crate::pinned_uv;
use crate::poetry;
use crate::process::{self, RunError};
use crate::toolchain;
use crate::tree::{self, CopyRules};
use crate::uv;

/// How the builder behaves.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// The longest one command (install, build) may run.
    pub command_timeout: Duration,
    /// Where toolchains (python3, node, npm...) are looked for, behind the app's own tool
    /// folders; `None` is this process's `PATH`.
    pub tool_path: Option<std::ffi::OsString>,
    /// The package caches every build shares (`pip/`, `npm/`, `uv/`...); `None` is `cache`
    /// beside the base folder (`$DEVGEM_HOME/cache` for `$DEVGEM_HOME/builds`).
    pub cache_dir: Option<PathBuf>,
    /// Tools DevGem installs for builds (uv, a pinned pnpm...); `None` is `tools` beside
    /// the base folder.
    pub tools_dir: Option<PathBuf>,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(15 * 60),
            tool_path: None,
            cache_dir: None,
            tools_dir: None,
        }
    }
}

/// `<parent of base>/<name>`: the shared folders live beside the builds folder.
fn beside(base: &Path, name: &str) -> PathBuf {
    base.parent()
        .map_or_else(|| PathBuf::from(name), |p| p.join(name))
}

/// Builds in `<base_dir>/<deployment id>/`; the artifact is that folder. The source comes
/// from the archive the request names, read from object storage.
#[derive(Clone)]
pub struct NativeBuilder {
    base_dir: PathBuf,
    objects: Arc<dyn ObjectStore>,
    config: BuildConfig,
}

impl NativeBuilder {
    pub fn new(base_dir: impl Into<PathBuf>, objects: Arc<dyn ObjectStore>) -> Self {
        Self::with_config(base_dir, objects, BuildConfig::default())
    }

    pub fn with_config(
        base_dir: impl Into<PathBuf>,
        objects: Arc<dyn ObjectStore>,
        config: BuildConfig,
    ) -> Self {
        Self {
            base_dir: base_dir.into(),
            objects,
            config,
        }
    }

    fn cache_dir(&self) -> PathBuf {
        self.config
            .cache_dir
            .clone()
            .unwrap_or_else(|| beside(&self.base_dir, "cache"))
    }

    fn tools_dir(&self) -> PathBuf {
        self.config
            .tools_dir
            .clone()
            .unwrap_or_else(|| beside(&self.base_dir, "tools"))
    }

    /// Unpacks the request's source archive into `<base>/<id>.src/`, which the caller removes.
    async fn unpack_source(&self, request: &BuildRequest) -> Result<PathBuf, BuildError> {
        let key = &request.source.archive_key;
        let bytes = self
            .objects
            .get(key)
            .await
            .map_err(|e| BuildError::Unavailable(e.to_string()))?
            .ok_or_else(|| {
                BuildError::Unavailable(format!("the source archive {key} is missing"))
            })?;
        let dest = self
            .base_dir
            .join(format!("{}.src", request.deployment_id.as_str()));
        let unpacked_to = dest.clone();
        tokio::task::spawn_blocking(move || {
            if unpacked_to.exists() {
                std::fs::remove_dir_all(&unpacked_to)?;
            }
            std::fs::create_dir_all(&unpacked_to)?;
            devgem_archive::unpack(&bytes, &unpacked_to, &devgem_archive::Limits::default())
                .map_err(std::io::Error::other)
        })
        .await
        .map_err(|e| BuildError::Unavailable(format!("unpack task failed: {e}")))?
        .map_err(|e| BuildError::Unavailable(format!("could not unpack {key}: {e}")))?;
        Ok(dest)
    }
}

/// Machine-specific folders that are never copied from the checkout: they are rebuilt here
/// (the Dockerfile's `.dockerignore` leaves `node_modules` out for the same reason).
const NOT_COPIED: &[&str] = &["node_modules", ".venv"];

fn failed(reason: impl Into<String>, hint: impl Into<String>) -> BuildError {
    BuildError::Failed {
        reason: reason.into(),
        hint: hint.into(),
    }
}

#[async_trait]
impl Builder for NativeBuilder {
    async fn build(
        &self,
        request: &BuildRequest,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Artifact, BuildError> {
        let plan = &request.plan;
        if !tree::is_contained(Path::new(&plan.app_dir))
            || !tree::is_contained(Path::new(plan.build_dir()))
        {
            return Err(failed(
                format!(
                    "the plan's app folder {:?} is outside the checkout",
                    plan.app_dir
                ),
                "the app folder must be a relative path inside the repository",
            ));
        }
        let root = self.base_dir.join(request.deployment_id.as_str());
        let source = self.unpack_source(request).await?;
        let copied = prepare_copy(&source, &root, log).await;
        let _ = std::fs::remove_dir_all(&source);
        copied?;
        let app = root.join(&plan.app_dir);
        if !app.is_dir() {
            return Err(failed(
                format!(
                    "the app folder {} does not exist in the checkout",
                    plan.app_dir
                ),
                "check the folder (subdir) given for the app",
            ));
        }
        // Install and build run in the build folder: the workspace root of a workspace
        // member (the start runs from the app's folder), else the app's folder.
        let work = root.join(plan.build_dir());
        if cancel.is_cancelled() {
            return Err(BuildError::Cancelled);
        }

        let mut env = build_env(plan, &root, &app, self.config.tool_path.as_deref());
        env.extend(caches::package_cache_env(
            &self.cache_dir(),
            uses_tool(plan, PackageManager::Pnpm),
            work.join(".yarnrc.yml").is_file()
                || (plan.package_manager == Some(PackageManager::Yarn)
                    && plan
                        .package_manager_version
                        .as_deref()
                        .is_some_and(|v| toolchain::major(v) != "1")),
        ));
        if !plan.system_packages.is_empty() {
            // The native build cannot install system packages; the container build does.
            log.line(&format!(
                "The plan needs system packages ({}); this build uses what this machine has installed",
                plan.system_packages.join(", ")
            ));
        }
        let mut steps: Vec<String> = Vec::new();
        let mut installed = false;
        // The plan's install, without the `pip install uv==X` that a pinned uv provided
        // natively makes unneeded.
        let mut install = plan.install_command.clone();
        match plan.language {
            Language::Python => {
                if let Some((version, rest)) = pinned_uv::install_without_uv(plan) {
                    pinned_uv::provide(
                        &version,
                        &root,
                        &app,
                        &self.tools_dir(),
                        &env,
                        log,
                        self.config.command_timeout,
                        cancel,
                    )
                    .await?;
                    install = Some(rest);
                }
                let python = pick_python(plan, &app, &env, log)?;
                env.push((
                    "VIRTUAL_ENV".into(),
                    app.join(".venv").to_string_lossy().into_owned(),
                ));
                if let Some(args) = uv::plain_pip_install(plan) {
                    installed = self
                        .install_with_uv(&python, &args, &app, &env, log, cancel)
                        .await?;
                }
                if !installed {
                    self.make_venv(&python, &app, &env, log, cancel).await?;
                    steps.extend(python_tools(plan));
                }
            }
            Language::Node => {
                require(
                    &env,
                    "node",
                    "Node.js",
                    "install Node.js (https://nodejs.org, or apt install nodejs npm)",
                )?;
                note_node_version(plan, &env, log).await;
                shim_package_managers(
                    plan,
                    &root,
                    &work,
                    &self.tools_dir(),
                    &env,
                    log,
                    self.config.command_timeout,
                    cancel,
                )
                .await?;
                if cancel.is_cancelled() {
                    return Err(BuildError::Cancelled);
                }
            }
            // Bun runs the app too; when it is not installed it comes from its npm package.
            Language::Bun => {
                shim_package_managers(
                    plan,
                    &root,
                    &work,
                    &self.tools_dir(),
                    &env,
                    log,
                    self.config.command_timeout,
                    cancel,
                )
                .await?;
            }
            _ => {}
        }
        steps.extend(install.filter(|c| !installed && !c.trim().is_empty()));
        steps.extend(
            plan.build_command
                .iter()
                .filter(|c| !c.trim().is_empty())
                .cloned(),
        );
        if steps.is_empty() {
            log.line("Nothing to install or build");
        }
        for step in &steps {
            match self.run_step(step, &work, &env, log, cancel).await {
                Err(BuildError::Failed { reason, hint }) if poetry::is_poetry_install(step) => {
                    self.install_poetry_project_with_pip(&root, &app, &env, log, cancel)
                        .await
                        .map_err(|fallback| match fallback {
                            BuildError::Failed {
                                reason: pip_reason, ..
                            } => failed(
                                format!("{reason}\nand installing with pip instead failed too: {pip_reason}"),
                                hint,
                            ),
                            other => other,
                        })?;
                }
                other => other?,
            }
        }
        log.line(&format!("Build ready in {}", root.display()));
        Ok(Artifact::LocalBuild { dir: root })
    }
}

/// Puts pip into a venv made `--without-pip` by unpacking the wheel Python bundles for
/// `ensurepip`, and writing the `pip` scripts. `python -m venv` does the same through pip
/// itself, compiling every module: 5 to 10 s on a busy machine instead of half a second.
const SEED_PIP: &str = r##"
import ensurepip, glob, os, sys, sysconfig, zipfile
wheel = glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))[0]
zipfile.ZipFile(wheel).extractall(sysconfig.get_paths()["purelib"])
scripts = sysconfig.get_paths()["scripts"]
for name in ("pip", "pip3", "pip3.%d" % sys.version_info.minor):
    path = os.path.join(scripts, name)
    with open(path, "w") as f:
        f.write("#!%s\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n" % sys.executable)
    os.chmod(path, 0o755)
print("pip", os.path.basename(wheel).split("-")[1], "seeded from", os.path.basename(wheel))
"##;

impl NativeBuilder {
    /// Makes `<app>/.venv` with pip in it, the fast way when this Python bundles a pip wheel
    /// and through `ensurepip` otherwise (Debian's Python keeps its wheels elsewhere).
    async fn make_venv(
        &self,
        python: &str,
        app: &Path,
        env: &[(String, String)],
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(), BuildError> {
        self.run_step(
            &format!(
                "{} -m venv --without-pip .venv",
                uv::shell_word(Path::new(python))
            ),
            app,
            env,
            log,
            cancel,
        )
        .await?;
        let mut seed = Command::new(app.join(".venv/bin/python"));
        seed.args(["-c", SEED_PIP])
            .current_dir(app)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        let seeded = process::run(seed, log, Duration::from_secs(60), cancel, &|l| {
            l.to_string()
        })
        .await;
        match seeded {
            Ok(done) if done.status.success() => Ok(()),
            Err(RunError::Cancelled) => Err(BuildError::Cancelled),
            _ => {
                log.line("No bundled pip wheel to unpack; installing pip with ensurepip");
                self.run_step(
                    ".venv/bin/python -m ensurepip --default-pip",
                    app,
                    env,
                    log,
                    cancel,
                )
                .await
            }
        }
    }

    /// The fallback for a failed `poetry install` (see `poetry.rs`): the requirements
    /// pyproject.toml declares, pinned by poetry.lock when there is one, installed by pip.
    async fn install_poetry_project_with_pip(
        &self,
        root: &Path,
        app: &Path,
        env: &[(String, String)],
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(), BuildError> {
        log.line(
            "Poetry could not install the dependencies (above). Installing the ones pyproject.toml \
             declares with pip instead, which follows this machine's pip configuration \
             (pip.conf, PIP_INDEX_URL); versions pinned in poetry.lock are kept",
        );
        let dir = root.join(".devgem");
        std::fs::create_dir_all(&dir)
            .and_then(|()| {
                std::fs::write(
                    dir.join("poetry_requirements.py"),
                    poetry::REQUIREMENTS_SCRIPT,
                )
            })
            .map_err(|e| {
                BuildError::Unavailable(format!("could not write to {}: {e}", dir.display()))
            })?;
        self.run_step(&poetry::pip_fallback_command(&dir), app, env, log, cancel)
            .await
    }

    /// Installs a plain `pip install` plan with uv (see `uv.rs`) into a venv uv makes.
    /// `Ok(false)` when uv is not available or failed, after removing what it left: the
    /// caller then installs with pip.
    async fn install_with_uv(
        &self,
        python: &str,
        args: &[String],
        app: &Path,
        env: &[(String, String)],
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<bool, BuildError> {
        if uv::pip_config_names_an_index(env) {
            return Ok(false);
        }
        let timeout = self.config.command_timeout;
        let Some(uv) = uv::find_or_install(&self.tools_dir(), env, log, timeout, cancel).await?
        else {
            return Ok(false);
        };
        let uv = uv::shell_word(&uv);
        let mut env = env.to_vec();
        env.extend(uv::uv_index_env(&env));
        let venv = app.join(".venv");
        let quiet = |step: String| run_quietly(step, app, env.clone(), timeout, cancel);
        let made = self
            .run_step(
                &format!(
                    "{uv} venv --quiet --python {} .venv",
                    uv::shell_word(Path::new(python))
                ),
                app,
                &env,
                log,
                cancel,
            )
            .await;
        let outcome = match made {
            Err(BuildError::Cancelled) => return Err(BuildError::Cancelled),
            Err(_) => Err(()),
            Ok(()) => {
                let resolution = uv::resolution_inputs(app, args, &venv)
                    .map(|inputs| uv::Resolution::new(&self.cache_dir(), inputs));
                let reused = match resolution.as_ref().and_then(uv::Resolution::fresh_frozen) {
                    Some(frozen) => {
                        let step = format!(
                            "{uv} pip install --offline --no-deps --quiet -r {}",
                            uv::shell_word(&frozen)
                        );
                        match quiet(step).await {
                            Ok(done) if done.status.success() => true,
                            Err(RunError::Cancelled) => return Err(BuildError::Cancelled),
                            _ => false,
                        }
                    }
                    None => false,
                };
                if reused {
                    log.line(&format!(
                        "The requirements are unchanged: installed the versions resolved for them last time from the package cache (`pip install {}` resolves again after a change, or a day)",
                        args.join(" ")
                    ));
                    Ok(())
                } else {
                    let step = format!("{uv} pip install {}", args.join(" "));
                    match self.run_step(&step, app, &env, log, cancel).await {
                        Err(BuildError::Cancelled) => return Err(BuildError::Cancelled),
                        Err(_) => Err(()),
                        Ok(()) => {
                            if let Some(resolution) = &resolution {
                                let record = std::fs::create_dir_all(
                                    resolution.path.parent().unwrap_or(app),
                                );
                                let freeze = format!(
                                    "{uv} pip freeze > {}",
                                    uv::shell_word(&resolution.frozen_path())
                                );
                                if record.is_ok()
                                    && matches!(quiet(freeze).await, Ok(d) if d.status.success())
                                {
                                    let _ = resolution.record();
                                }
                            }
                            Ok(())
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(()) => Ok(true),
            Err(()) => {
                log.line("uv could not install the requirements (above); installing them with pip instead");
                let _ = std::fs::remove_dir_all(&venv);
                Ok(false)
            }
        }
    }

    /// Runs one shell command of the build, streaming its output.
    pub(crate) async fn run_step(
        &self,
        step: &str,
        dir: &Path,
        env: &[(String, String)],
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<(), BuildError> {
        log.line(&format!("$ {step}"));
        let mut cmd = Command::new(process::SHELL);
        cmd.arg("-c")
            .arg(step)
            .current_dir(dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        let timeout = self.config.command_timeout;
        let started = std::time::Instant::now();
        match process::run(cmd, log, timeout, cancel, &|l: &str| l.to_string()).await {
            Ok(done) if done.status.success() => {
                tracing::debug!(
                    step,
                    seconds = started.elapsed().as_secs_f64(),
                    "build step done"
                );
                log.line(&format!(
                    "`{step}` done in {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
                Ok(())
            }
            Ok(done) => {
                let code = done
                    .status
                    .code()
                    .map_or_else(|| "a signal".to_string(), |c| format!("code {c}"));
                let hint = hint::for_output(&done.tail.all()).unwrap_or_else(|| {
                    "read the output above; the same command fails the same way on your machine"
                        .into()
                });
                Err(failed(
                    format!("`{step}` exited with {code}:\n{}", done.tail.last(20)),
                    hint,
                ))
            }
            Err(RunError::Cancelled) => Err(BuildError::Cancelled),
            Err(RunError::TimedOut(tail)) => Err(failed(
                format!(
                    "`{step}` did not finish within {} s:\n{}",
                    timeout.as_secs(),
                    tail.last(20)
                ),
                "a command may be waiting for input or stuck on the network; make it non-interactive",
            )),
            Err(RunError::Spawn(e)) => Err(BuildError::Unavailable(format!(
                "could not start sh for `{step}`: {e}"
            ))),
        }
    }
}

/// Replaces any previous build of this deployment with a fresh copy of the checkout.
async fn prepare_copy(source: &Path, root: &Path, log: &dyn LogSink) -> Result<(), BuildError> {
    let (source, root) = (source.to_path_buf(), root.to_path_buf());
    let shown = root.display().to_string();
    log.line(&format!("Copying the checkout to {shown}"));
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        std::fs::create_dir_all(&root)?;
        let rules = CopyRules {
            gitignore: false,
            skip_names: NOT_COPIED,
        };
        tree::copy_tree(&source, &root, &rules).map(|_| ())
    })
    .await
    .map_err(|e| BuildError::Unavailable(format!("copy task failed: {e}")))?
    .map_err(|e| BuildError::Unavailable(format!("could not prepare {shown}: {e}")))
}

/// The environment every build command gets: the host's toolchain settings (no DevGem
/// secrets), the app's tool folders first on `PATH`, the plan's settings and `PORT`.
fn build_env(
    plan: &BuildPlan,
    root: &Path,
    app: &Path,
    tool_path: Option<&std::ffi::OsStr>,
) -> Vec<(String, String)> {
    let mut env = process::tool_env(root, app, tool_path);
    for (k, v) in &plan.env {
        // NODE_ENV=production would make `npm install` skip the devDependencies a build step
        // needs (TypeScript, bundlers); the Dockerfile's build stage leaves it unset too.
        if k != "NODE_ENV" {
            env.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in [
        ("PORT", plan.deploy_port.to_string()),
        ("PYTHONUNBUFFERED", "1".into()),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1".into()),
        ("PIP_NO_INPUT", "1".into()),
        // Progress bars are noise in a log that is not a terminal.
        ("PIP_PROGRESS_BAR", "off".into()),
        ("npm_config_fund", "false".into()),
        ("npm_config_audit", "false".into()),
        ("npm_config_update_notifier", "false".into()),
        ("COREPACK_ENABLE_DOWNLOAD_PROMPT", "0".into()),
        // Poetry installs into the venv we made rather than one of its own.
        ("POETRY_VIRTUALENVS_CREATE", "false".into()),
    ] {
        env.push((k.into(), v));
    }
    env
}

fn path_of(env: &[(String, String)]) -> std::ffi::OsString {
    env.iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.into())
        .unwrap_or_default()
}

/// Fails with an install hint when `program` is not on the build's `PATH`.
fn require(
    env: &[(String, String)],
    program: &str,
    what: &str,
    hint: &str,
) -> Result<PathBuf, BuildError> {
    process::which(program, &path_of(env)).ok_or_else(|| {
        failed(
            format!("{what} is needed to build this app, but `{program}` is not installed on this machine"),
            format!("{hint}; or deploy to Google Cloud, where the build runs in a container"),
        )
    })
}

/// The Python to make the venv with, as the path of the interpreter itself: `python3.X` when
/// the plan asks for 3.X and this machine has it, else `python3`. Resolving a version
/// manager's shim once (pyenv's takes a few tenths of a second per run) makes every later
/// step start the interpreter directly.
fn pick_python(
    plan: &BuildPlan,
    app: &Path,
    env: &[(String, String)],
    log: &dyn LogSink,
) -> Result<String, BuildError> {
    if let Some(version) = &plan.runtime_version {
        let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
        let wanted = format!("python{minor}");
        // A pyenv shim exists for versions that are installed but not active, and fails when
        // run: only a Python that answers counts.
        if minor.contains('.')
            && let Some(found) = interpreter_path(&wanted, app, env)
        {
            return Ok(found);
        }
        log.line(&format!(
            "The plan asks for Python {version}; {wanted} is not installed here, using python3"
        ));
    }
    require(
        env,
        "python3",
        "Python 3",
        "install Python 3 with its venv module (apt install python3 python3-venv)",
    )?;
    Ok(interpreter_path("python3", app, env).unwrap_or_else(|| "python3".into()))
}

/// The interpreter `program` runs, from the app's folder (where a `.python-version` may
/// choose it), when it is on the build's `PATH` and runs.
fn interpreter_path(program: &str, app: &Path, env: &[(String, String)]) -> Option<String> {
    let path = path_of(env);
    let bin = process::which(program, &path)?;
    let out = std::process::Command::new(bin)
        .args(["-c", "import sys; print(sys.executable)"])
        .current_dir(app)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && found.starts_with('/')).then_some(found)
}

/// Says so when this machine's Node.js major version differs from the plan's: the build
/// goes on, but a difference explains failures that the container build would not have.
async fn note_node_version(plan: &BuildPlan, env: &[(String, String)], log: &dyn LogSink) {
    let Some(wanted) = &plan.runtime_version else {
        return;
    };
    let probe = Command::new("node")
        .arg("--version")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output();
    let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(10), probe).await else {
        return;
    };
    let have = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches('v')
        .to_string();
    let major = |v: &str| v.split('.').next().unwrap_or("").to_string();
    if !have.is_empty() && major(&have) != major(wanted.trim_start_matches('v')) {
        log.line(&format!(
            "The plan asks for Node.js {wanted}; this machine has {have}, which the build uses"
        ));
    }
}

/// Python project tools the plan's commands call that a fresh venv lacks.
fn python_tools(plan: &BuildPlan) -> Vec<String> {
    let commands = all_commands(plan);
    let words: Vec<&str> = commands
        .split(|c: char| c.is_whitespace() || c == ';' || c == '&')
        .collect();
    let install = plan.install_command.as_deref().unwrap_or("");
    ["poetry", "pipenv", "uv"]
        .into_iter()
        .filter(|tool| words.contains(tool))
        // The install installs it itself, at the version the plan pins.
        .filter(|tool| {
            !install.starts_with(&format!("pip install {tool} "))
                && !install.starts_with(&format!("pip install {tool}=="))
        })
        .map(|tool| format!("pip install --quiet {tool}"))
        .collect()
}

/// The package managers the plan uses, provided at the version it needs (see `toolchain.rs`).
/// A pinned version (the plan's, else package.json's `packageManager`) is installed into the
/// tools folder unless the one on `PATH` has the same major version. Without a pin, yarn and
/// pnpm come from `PATH`, else Corepack (shipped with Node; old corepacks fail to verify new
/// releases), else npx, which only needs the npm registry; Bun, when it is not installed,
/// from its npm package. A small script in `<root>/.devgem/bin` (on `PATH` for the build and
/// the app) makes the bare name work.
#[allow(clippy::too_many_arguments)]
async fn shim_package_managers(
    plan: &BuildPlan,
    root: &Path,
    app: &Path,
    tools_dir: &Path,
    env: &[(String, String)],
    log: &dyn LogSink,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), BuildError> {
    let path = path_of(env);
    let uses = |pm: PackageManager| uses_tool(plan, pm);
    if uses(PackageManager::Npm) || plan.package_manager.is_none() {
        require(
            env,
            "npm",
            "npm",
            "install npm (it comes with Node.js: apt install npm)",
        )?;
    }
    let declared = declared_package_manager(app);
    for manager in [
        PackageManager::Yarn,
        PackageManager::Pnpm,
        PackageManager::Bun,
    ] {
        let pm = manager.as_str();
        if !uses(manager) {
            continue;
        }
        let pinned = plan
            .package_manager_version
            .clone()
            .filter(|_| plan.package_manager == Some(manager))
            .or_else(|| {
                declared
                    .as_ref()
                    .filter(|(name, _)| name == pm)
                    .map(|(_, version)| version.clone())
            })
            .or_else(|| {
                // Bun is the runtime too: its version is the plan's runtime version.
                (manager == PackageManager::Bun)
                    .then(|| plan.runtime_version.clone().unwrap_or_else(|| "1".into()))
            });
        let on_path = process::which(pm, &path);
        let have = match &on_path {
            Some(bin) => toolchain::installed_version(bin, app, env).await,
            None => None,
        };
        if let Some(version) = &pinned {
            if have
                .as_deref()
                .is_some_and(|h| toolchain::major(h) == toolchain::major(version))
            {
                continue;
            }
            let Some((package, program)) = toolchain::npm_package(manager, version) else {
                continue;
            };
            require(
                env,
                "npm",
                "npm",
                &format!("install npm (it comes with Node.js), or install {package} yourself"),
            )?;
            let bin = toolchain::install(
                tools_dir, &package, program, version, env, log, timeout, cancel,
            )
            .await?;
            log.line(&format!(
                "The app needs {pm} {version}{}; the build and the app use {package} from {}",
                match &have {
                    Some(h) => format!(" and this machine has {h}"),
                    None => ", which is not installed here".to_string(),
                },
                bin.display()
            ));
            write_shim(
                &root.join(".devgem/bin"),
                pm,
                &format!("exec {} \"$@\"", uv::shell_word(&bin)),
            )
            .map_err(|e| BuildError::Unavailable(format!("could not write the {pm} shim: {e}")))?;
            continue;
        }
        if on_path.is_some() {
            continue;
        }
        let body = if process::which("corepack", &path).is_some()
            && corepack_works(pm, app, env, cancel).await
        {
            log.line(&format!(
                "{pm} is not installed here; running it through corepack"
            ));
            format!("exec corepack {pm} \"$@\"")
        } else if process::which("npx", &path).is_some() {
            log.line(&format!(
                "{pm} is not installed here; running it through npx ({pm})"
            ));
            format!("exec npx --yes {pm} \"$@\"")
        } else {
            return Err(failed(
                format!("the app uses {pm}, which is not installed on this machine"),
                format!("install it (npm install -g {pm}), or enable corepack (corepack enable)"),
            ));
        };
        write_shim(&root.join(".devgem/bin"), pm, &body)
            .map_err(|e| BuildError::Unavailable(format!("could not write the {pm} shim: {e}")))?;
    }
    Ok(())
}

/// Whether the plan uses `pm`: it is the plan's package manager or a command names it.
fn uses_tool(plan: &BuildPlan, pm: PackageManager) -> bool {
    plan.package_manager == Some(pm)
        || all_commands(plan)
            .split_whitespace()
            .any(|w| w == pm.as_str())
}

/// All of the plan's commands, as one string to look for tool names in.
fn all_commands(plan: &BuildPlan) -> String {
    [
        plan.install_command.as_deref(),
        plan.build_command.as_deref(),
        Some(plan.start_command.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

/// The `packageManager` field of package.json (`pnpm@8.15.4+sha512...`) as (name, version).
fn declared_package_manager(app: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(app.join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let field = json.get("packageManager")?.as_str()?;
    let (name, version) = field.split_once('@')?;
    let version = version.split('+').next().unwrap_or(version);
    Some((name.to_string(), version.to_string()))
}

/// Whether `corepack <pm> --version` works here (it downloads the package manager once).
async fn corepack_works(
    pm: &str,
    app: &Path,
    env: &[(String, String)],
    cancel: &CancellationToken,
) -> bool {
    let mut cmd = Command::new("corepack");
    cmd.args([pm, "--version"])
        .current_dir(app)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    let done = process::run(cmd, &Quiet, Duration::from_secs(60), cancel, &|l| {
        l.to_string()
    })
    .await;
    matches!(done, Ok(d) if d.status.success())
}

/// Runs `step` in `dir` without logging its output.
async fn run_quietly(
    step: String,
    dir: &Path,
    env: Vec<(String, String)>,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<process::Finished, RunError> {
    let mut cmd = Command::new(process::SHELL);
    cmd.arg("-c")
        .arg(&step)
        .current_dir(dir)
        .env_clear()
        .envs(env);
    process::run(cmd, &Quiet, timeout, cancel, &|l| l.to_string()).await
}

/// A sink for commands whose output only matters by their exit status.
struct Quiet;

impl LogSink for Quiet {
    fn line(&self, _: &str) {}
}

pub(crate) fn write_shim(dir: &Path, name: &str, body: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let file = dir.join(name);
    std::fs::write(&file, format!("#!/bin/sh\n{body}\n"))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(install: &str, start: &str) -> BuildPlan {
        BuildPlan {
            install_command: Some(install.into()),
            base_image: "python:3.12-slim".into(),
            ..BuildPlan::new(Language::Python, devgem_plan::Template::Python, start)
        }
    }

    #[test]
    fn installs_python_project_tools_the_commands_use() {
        assert_eq!(
            python_tools(&plan(
                "poetry install --no-root",
                "poetry run gunicorn app:app"
            )),
            vec!["pip install --quiet poetry"]
        );
        assert!(
            python_tools(&plan("pip install -r requirements.txt", "gunicorn app:app")).is_empty()
        );
        assert_eq!(
            python_tools(&plan("uv sync", "uvicorn main:app")),
            vec!["pip install --quiet uv"]
        );
    }
}
