//! The build-trigger function: the container build step. It unpacks the source archive the
//! analyze stage stored, hands it with the plan and the Dockerfile to the builder port, and
//! stores the build log.

use async_trait::async_trait;
use devgem_app::{StageContext, StageError, StageWork, keys, load_json};
use devgem_domain::{Deployment, ImageRef, SourceKind, Stage, StageResult, Step};
use devgem_plan::BuildPlan;
use devgem_ports::{BuildRequest, BuildSource, Builder, GitRevision, ObjectStore, Secrets};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The build stage, with the ports it uses and where its images go.
pub struct BuildTrigger {
    pub objects: Arc<dyn ObjectStore>,
    pub builder: Arc<dyn Builder>,
    /// Only asked whether the owner has a GitHub token: a builder that clones (Cloud Build)
    /// is told its key, never its value.
    pub secrets: Arc<dyn Secrets>,
    /// The image repository, e.g. `us-central1-docker.pkg.dev/PROJECT/devgem`.
    pub image_repository: String,
}

#[async_trait]
impl StageWork for BuildTrigger {
    fn stage(&self) -> Stage {
        Stage::Build
    }

    async fn run(&self, ctx: &StageContext) -> Result<StageResult, StageError> {
        let (d, r) = (&ctx.deployment, &ctx.reporter);
        let step = Step::ContainerBuild;
        r.step_started(step, "Building the app");
        let request = self.request(d).await?;
        let result = {
            let _ticker = r.ticker(step, Duration::from_secs(40));
            self.builder
                .build(&request, &r.log_sink(step), &ctx.cancel)
                .await
        };
        // The log is worth keeping whatever the outcome.
        r.flush().await;
        let _ = self
            .objects
            .put(&keys::build_log(&d.id), r.log_text().into_bytes().into())
            .await;
        let artifact = result?;
        r.reasoning(step, format!("Built {artifact}"));
        r.step_completed(step, "Build finished");
        Ok(StageResult {
            artifact: Some(artifact),
            ..StageResult::default()
        })
    }
}

impl BuildTrigger {
    /// The build request from what the analyze stage stored.
    async fn request(&self, d: &Deployment) -> Result<BuildRequest, StageError> {
        let plan: BuildPlan = load_json(self.objects.as_ref(), &keys::plan(&d.id)).await?;
        let text = |key: String| async move {
            Ok::<_, StageError>(
                self.objects
                    .get(&key)
                    .await?
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default(),
            )
        };
        let dockerfile = text(keys::dockerfile(&d.id)).await?;
        let dockerignore = text(keys::dockerignore(&d.id)).await?;
        let image = ImageRef::for_deployment(&self.image_repository, &d.service_name, &d.id)
            .map_err(|e| StageError::Transient(format!("the image repository: {e}")))?;
        let git = match (d.source.kind(), &d.commit) {
            (SourceKind::Git, Some(commit)) => {
                let owned =
                    devgem_app::sources::owner_github_token(self.secrets.as_ref(), &d.owner)
                        .await?
                        .is_some();
                Some(GitRevision {
                    url: d.source.location.clone(),
                    commit: commit.clone(),
                    credential: owned.then(|| keys::github_token(&d.owner)),
                })
            }
            _ => None,
        };
        let mut labels = BTreeMap::from([("devgem-deployment".to_string(), d.id.to_string())]);
        if let Some(git) = &git {
            labels.insert("devgem-repository".into(), git.url.clone());
            labels.insert("devgem-commit".into(), git.commit.clone());
        }
        Ok(BuildRequest {
            deployment_id: d.id.clone(),
            service_name: d.service_name.clone(),
            source: BuildSource {
                archive_key: keys::source_archive(&d.id),
                git,
            },
            plan,
            dockerfile,
            dockerignore,
            image,
            labels,
        })
    }
}
