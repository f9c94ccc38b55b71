//! The build-trigger function: the container build step. It unpacks the source archive the
//! analyze stage stored, hands it with the plan and the Dockerfile to the builder port, and
//! stores the build log.

use async_trait::async_trait;
use devgem_app::{StageContext, StageError, StageOutput, StageWork, archive, keys};
use devgem_domain::{Failure, Stage, Step};
use devgem_plan::BuildPlan;
use devgem_ports::{BuildError, BuildRequest};
use std::time::Duration;

pub struct BuildTrigger;

#[async_trait]
impl StageWork for BuildTrigger {
    fn stage(&self) -> Stage {
        Stage::Build
    }

    async fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let d = &ctx.deployment;
        let r = &ctx.reporter;
        let step = Step::ContainerBuild;
        r.step_started(step, "Building the app");
        let plan: BuildPlan = ctx.load_json(&keys::plan(&d.id)).await?;
        let objects = &ctx.services.objects;
        let transient = |e: &dyn std::fmt::Display| StageError::Transient(e.to_string());
        let dockerfile = objects
            .get(&keys::dockerfile(&d.id))
            .await
            .map_err(|e| transient(&e))?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let archive_bytes = objects
            .get(&keys::source_archive(&d.id))
            .await
            .map_err(|e| transient(&e))?
            .ok_or_else(|| StageError::Transient("the source archive is missing".into()))?;
        let source = tempfile::tempdir().map_err(|e| transient(&e))?;
        let dest = source.path().to_path_buf();
        tokio::task::spawn_blocking(move || archive::unpack(&archive_bytes, &dest))
            .await
            .map_err(|e| transient(&e))?
            .map_err(|e| transient(&e))?;
        let request = BuildRequest {
            deployment_id: d.id.clone(),
            service_name: d.service_name.clone(),
            source_dir: source.path().to_path_buf(),
            plan,
            dockerfile,
        };
        let result = {
            let _ticker = r.ticker(step, Duration::from_secs(40));
            ctx.services
                .builder
                .build(&request, &r.log_sink(step), &ctx.cancel)
                .await
        };
        // The log is worth keeping whatever the outcome.
        r.flush().await;
        let _ = objects
            .put(&keys::build_log(&d.id), r.log_text().into_bytes().into())
            .await;
        match result {
            Ok(artifact) => {
                r.step_completed(step, "Build finished");
                Ok(StageOutput {
                    artifact: Some(artifact.0),
                    ..Default::default()
                })
            }
            Err(BuildError::Failed { reason, hint }) => Err(StageError::Failed(
                Failure::new(step, reason).with_hint(hint),
            )),
            Err(BuildError::Unavailable(e)) => Err(StageError::Transient(e)),
            Err(BuildError::Cancelled) => Err(StageError::Cancelled),
        }
    }
}
