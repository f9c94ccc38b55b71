//! The deploy function: starts the built artifact on the runtime port with the user's
//! environment, waits until it answers, and records its URL.

use async_trait::async_trait;
use devgem_app::{AppError, StageContext, StageError, StageWork, keys, load_json, user_env};
use devgem_domain::{Artifact, Failure, Stage, StageResult, Step};
use devgem_plan::BuildPlan;
use devgem_ports::{DeployRequest, ObjectStore, Runtime, RuntimeError, Secrets};
use std::sync::Arc;
use std::time::Duration;

/// The deploy stage, with the three ports it uses.
pub struct Deploy {
    pub objects: Arc<dyn ObjectStore>,
    pub secrets: Arc<dyn Secrets>,
    pub runtime: Arc<dyn Runtime>,
}

#[async_trait]
impl StageWork for Deploy {
    fn stage(&self) -> Stage {
        Stage::Deploy
    }

    async fn run(&self, ctx: &StageContext) -> Result<StageResult, StageError> {
        let (d, r) = (&ctx.deployment, &ctx.reporter);
        let step = Step::Deploy;
        r.step_started(step, format!("Deploying service {}", d.service_name));
        let plan: BuildPlan = load_json(self.objects.as_ref(), &keys::plan(&d.id)).await?;
        let Some(Artifact::LocalBuild { dir }) = d.artifact.clone() else {
            return Err(StageError::Transient(
                "the build artifact is not recorded yet".into(),
            ));
        };
        let env = user_env(self.secrets.as_ref(), d)
            .await
            .map_err(|e| match e {
                AppError::Unavailable(m) => StageError::Transient(m),
                other => StageError::Failed(
                    Failure::new(step, other.to_string())
                        .with_hint("set the variable again and redeploy"),
                ),
            })?;
        let request = DeployRequest {
            deployment_id: d.id.clone(),
            service_name: d.service_name.clone(),
            artifact: devgem_ports::Artifact(dir.to_string_lossy().into_owned()),
            plan,
            env,
        };
        let result = {
            let _ticker = r.ticker(step, Duration::from_secs(10));
            self.runtime
                .deploy(&request, &r.log_sink(step), &ctx.cancel)
                .await
        };
        if matches!(result, Err(RuntimeError::Cancelled)) {
            // An abort must not leave a half-started app behind.
            let _ = self.runtime.stop(&d.id).await;
        }
        let release = result?;
        r.step_completed(step, format!("Answering at {}", release.url));
        Ok(StageResult {
            url: Some(release.url),
            ..StageResult::default()
        })
    }
}
