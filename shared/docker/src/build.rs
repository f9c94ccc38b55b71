//! The Docker builder: the request's rendered Dockerfile built from its source archive by the
//! engine's classic builder, the output streamed line by line, the image labelled with the
//! deployment, repository and commit.

use async_trait::async_trait;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use devgem_ports::{Artifact, BuildError, BuildRequest, Builder, LogSink, ObjectStore};
use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::context;
use crate::engine::Engine;

/// How the builder behaves.
#[derive(Debug, Clone)]
pub struct DockerBuildConfig {
    /// The longest a build may take.
    pub timeout: Duration,
}

impl Default for DockerBuildConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Builds images on the engine; the source archive is read from object storage and unpacked
/// into `<work_dir>/<deployment id>.src/` for the time of the build.
#[derive(Clone)]
pub struct DockerBuilder {
    engine: Engine,
    objects: Arc<dyn ObjectStore>,
    work_dir: PathBuf,
    config: DockerBuildConfig,
}

/// How many lines of build output a failure quotes.
const FAILURE_LINES: usize = 25;

fn failed(reason: impl Into<String>, hint: impl Into<String>) -> BuildError {
    BuildError::Failed {
        reason: reason.into(),
        hint: hint.into(),
    }
}

impl DockerBuilder {
    pub fn new(
        engine: Engine,
        objects: Arc<dyn ObjectStore>,
        work_dir: impl Into<PathBuf>,
    ) -> Self {
        Self::with_config(engine, objects, work_dir, DockerBuildConfig::default())
    }

    pub fn with_config(
        engine: Engine,
        objects: Arc<dyn ObjectStore>,
        work_dir: impl Into<PathBuf>,
        config: DockerBuildConfig,
    ) -> Self {
        Self {
            engine,
            objects,
            work_dir: work_dir.into(),
            config,
        }
    }

    /// The build context (a tar) of the plan's build folder: the app's folder, or the
    /// workspace root of a workspace member ([`devgem_plan::BuildPlan::build_dir`]).
    async fn context(&self, request: &BuildRequest) -> Result<Vec<u8>, BuildError> {
        let key = &request.source.archive_key;
        let bytes = self
            .objects
            .get(key)
            .await
            .map_err(|e| BuildError::Unavailable(e.to_string()))?
            .ok_or_else(|| {
                BuildError::Unavailable(format!("the source archive {key} is missing"))
            })?;
        let app_dir = request.plan.build_dir().to_string();
        if Path::new(&app_dir).components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        }) {
            return Err(failed(
                format!("the plan's app folder {app_dir:?} is outside the checkout"),
                "the app folder must be a relative path inside the repository",
            ));
        }
        let dest = self
            .work_dir
            .join(format!("{}.src", request.deployment_id.as_str()));
        let (dockerfile, dockerignore) = (request.dockerfile.clone(), request.dockerignore.clone());
        let key = key.clone();
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::create_dir_all(&dest)
                .map_err(|e| BuildError::Unavailable(format!("{}: {e}", dest.display())))?;
            let packed = devgem_archive::unpack(&bytes, &dest, &devgem_archive::Limits::default())
                .map_err(|e| {
                    if e.is_the_archives_fault() {
                        failed(format!("the source archive {key}: {e}"), "deploy again")
                    } else {
                        BuildError::Unavailable(format!("could not unpack {key}: {e}"))
                    }
                })
                .and_then(|_| {
                    let root = dest.join(&app_dir);
                    if !root.is_dir() {
                        return Err(failed(
                            format!("the app folder {app_dir} does not exist in the checkout"),
                            "check the folder (subdir) given for the app",
                        ));
                    }
                    context::pack(&root, &dockerfile, &dockerignore)
                        .map_err(BuildError::Unavailable)
                });
            let _ = std::fs::remove_dir_all(&dest);
            packed
        })
        .await
        .map_err(|e| BuildError::Unavailable(format!("the packing task failed: {e}")))?
    }

    async fn run_build(
        &self,
        request: &BuildRequest,
        tar: Vec<u8>,
        log: &dyn LogSink,
    ) -> Result<(), BuildError> {
        let docker = self
            .engine
            .client()
            .await
            .map_err(BuildError::Unavailable)?;
        let labels: HashMap<String, String> = request
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(context::DOCKERFILE)
            .t(request.image.as_str())
            .labels(&labels)
            .rm(true)
            .forcerm(true)
            .version(BuilderVersion::BuilderV1)
            .build();
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
        let mut tail = Tail::default();
        let mut partial = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        partial.push_str(&text);
                        while let Some(end) = partial.find('\n') {
                            let line: String = partial.drain(..=end).collect();
                            let line = without_ansi(line.trim_end());
                            if !line.trim().is_empty() {
                                log.line(&line);
                                tail.push(&line);
                            }
                        }
                    }
                    if let Some(status) = info.status {
                        log.line(&status);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    if !partial.trim().is_empty() {
                        tail.push(partial.trim_end());
                    }
                    return Err(build_failure(&error, &tail));
                }
                Err(e) => {
                    return Err(BuildError::Unavailable(format!(
                        "the Docker engine at {}: {e}",
                        self.engine.host()
                    )));
                }
            }
        }
        if !partial.trim().is_empty() {
            log.line(partial.trim_end());
        }
        Ok(())
    }
}

/// `line` without terminal escape sequences (the classic builder colours a step's stderr).
fn without_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, then one final byte in @..~.
            if chars.clone().next() == Some('[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// What the user reads when the engine reports a failed build.
fn build_failure(error: &str, tail: &Tail) -> BuildError {
    let error = error.trim();
    let output = tail.last(FAILURE_LINES);
    let missing_base = error.contains("pull access denied")
        || error.contains("no such host")
        || error.contains("manifest unknown")
        || (error.contains("not found") && error.contains("repository"));
    let hint = if missing_base {
        "the base image is not on this engine and no registry can be reached: run \
         scripts/docker-engine.sh, which makes the stand-in base images"
    } else if error.contains("returned a non-zero code") {
        "a Dockerfile step failed: its output is above; fix the app (or its dependency files) \
         and deploy again"
    } else {
        "read the build output above"
    };
    failed(format!("the image build failed: {error}\n{output}"), hint)
}

#[async_trait]
impl Builder for DockerBuilder {
    async fn build(
        &self,
        request: &BuildRequest,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<Artifact, BuildError> {
        let tar = self.context(request).await?;
        if cancel.is_cancelled() {
            return Err(BuildError::Cancelled);
        }
        log.line(&format!(
            "Building {} on the Docker engine at {} (build context {} KiB)",
            request.image,
            self.engine.host(),
            tar.len() / 1024
        ));
        // Dropping the build's request closes its connection, and the engine stops the build.
        tokio::select! {
            () = cancel.cancelled() => return Err(BuildError::Cancelled),
            () = tokio::time::sleep(self.config.timeout) => {
                return Err(failed(
                    format!("the image build took longer than {} min", self.config.timeout.as_secs() / 60),
                    "a step hangs or downloads too much: read the build output",
                ));
            }
            built = self.run_build(request, tar, log) => built?,
        }
        let docker = self
            .engine
            .client()
            .await
            .map_err(BuildError::Unavailable)?;
        let image = docker
            .inspect_image(request.image.as_str())
            .await
            .map_err(|e| BuildError::Unavailable(format!("the built image: {e}")))?;
        let digest = image
            .id
            .ok_or_else(|| BuildError::Unavailable("the built image has no id".into()))?;
        log.line(&format!(
            "Built {} ({digest}, {} MB)",
            request.image,
            image.size.unwrap_or(0) / 1_000_000
        ));
        Ok(Artifact::ContainerImage {
            reference: request.image.as_str().to_string(),
            digest,
        })
    }
}

/// The last lines of output, for error messages.
#[derive(Default)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    const KEEP: usize = 200;

    pub(crate) fn push(&mut self, line: &str) {
        if self.lines.len() == Self::KEEP {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_string());
    }

    pub(crate) fn last(&self, n: usize) -> String {
        let skip = self.lines.len().saturating_sub(n);
        self.lines
            .iter()
            .skip(skip)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_colour_of_stderr_lines() {
        assert_eq!(
            without_ansi("\u{1b}[91mSyntaxError: x\u{1b}[0m"),
            "SyntaxError: x"
        );
        assert_eq!(without_ansi("plain [91m"), "plain [91m");
    }
}
