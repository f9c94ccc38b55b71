//! The build-trigger function: the container build step. It unpacks the source archive the
//! analyze stage stored, hands it with the plan and the Dockerfile to the builder port, and
//! stores the build log.

use async_trait::async_trait;
use devgem_app::{StageContext, StageError, StageWork, archive, keys, load_json};
use devgem_domain::{Artifact, Stage, StageResult, Step};
use devgem_plan::BuildPlan;
use devgem_ports::{BuildRequest, Builder, ObjectStore};
use std::sync::Arc;
use std::time::Duration;

/// The build stage, with the two ports it uses.
pub struct BuildTrigger {
    pub objects: Arc<dyn ObjectStore>,
    pub builder: Arc<dyn Builder>,
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
        let plan: BuildPlan = load_json(self.objects.as_ref(), &keys::plan(&d.id)).await?;
        let dockerfile = self
            .objects
            .get(&keys::dockerfile(&d.id))
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let archive_bytes = self
            .objects
            .get(&keys::source_archive(&d.id))
            .await?
            .ok_or_else(|| StageError::Transient("the source archive is missing".into()))?;
        let source = tempfile::tempdir().map_err(|e| StageError::Transient(e.to_string()))?;
        let dest = source.path().to_path_buf();
        tokio::task::spawn_blocking(move || archive::unpack(&archive_bytes, &dest))
            .await?
            .map_err(|e| StageError::Transient(e.to_string()))?;
        let request = BuildRequest {
            deployment_id: d.id.clone(),
            service_name: d.service_name.clone(),
            source_dir: source.path().to_path_buf(),
            plan,
            dockerfile,
        };
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
        r.step_completed(step, "Build finished");
        Ok(StageResult {
            artifact: Some(Artifact::LocalBuild {
                dir: artifact.0.into(),
            }),
            ..StageResult::default()
        })
    }
}
