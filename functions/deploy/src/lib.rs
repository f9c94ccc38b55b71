//! The deploy function: starts the built artifact on the runtime port with the user's
//! environment, waits until it answers, and records its URL.

use async_trait::async_trait;
use devgem_app::{AppError, StageContext, StageError, StageOutput, StageWork, keys, user_env};
use devgem_domain::{Failure, Stage, Step};
use devgem_plan::BuildPlan;
use devgem_ports::{Artifact, DeployRequest, RuntimeError};
use std::time::Duration;

pub struct Deploy;

#[async_trait]
impl StageWork for Deploy {
    fn stage(&self) -> Stage {
        Stage::Deploy
    }

    async fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let d = &ctx.deployment;
        let r = &ctx.reporter;
        let step = Step::Deploy;
        r.step_started(step, format!("Deploying service {}", d.service_name));
        let plan: BuildPlan = ctx.load_json(&keys::plan(&d.id)).await?;
        let Some(artifact) = d.artifact.clone() else {
            return Err(StageError::Transient(
                "the build artifact is not recorded yet".into(),
            ));
        };
        let env = user_env(&ctx.services, d).await.map_err(|e| match e {
            AppError::Unavailable(m) => StageError::Transient(m),
            other => StageError::Failed(
                Failure::new(step, other.to_string())
                    .with_hint("set the variable again and redeploy"),
            ),
        })?;
        let request = DeployRequest {
            deployment_id: d.id.clone(),
            service_name: d.service_name.clone(),
            artifact: Artifact(artifact),
            plan,
            env,
        };
        let result = {
            let _ticker = r.ticker(step, Duration::from_secs(10));
            ctx.services
                .runtime
                .deploy(&request, &r.log_sink(step), &ctx.cancel)
                .await
        };
        match result {
            Ok(release) => {
                r.step_completed(step, format!("Answering at {}", release.url));
                Ok(StageOutput {
                    url: Some(release.url),
                    ..Default::default()
                })
            }
            Err(RuntimeError::Failed { reason, hint }) => Err(StageError::Failed(
                Failure::new(step, reason).with_hint(hint),
            )),
            Err(RuntimeError::Unavailable(e)) => Err(StageError::Transient(e)),
            Err(RuntimeError::Cancelled) => Err(StageError::Cancelled),
        }
    }
}
