//! The deploy function: starts the built artifact on the runtime port with the user's
//! environment, waits until it answers, and records its URL.

use async_trait::async_trait;
use devgem_app::{StageContext, StageError, StageWork, keys, load_json};
use devgem_domain::{Deployment, Stage, StageResult, Step};
use devgem_plan::BuildPlan;
use devgem_ports::{ObjectStore, ReleaseSpec, Runtime, RuntimeError, SecretEnv};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The deploy stage, with the two ports it uses.
pub struct Deploy {
    pub objects: Arc<dyn ObjectStore>,
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
        let spec = self.release_spec(d).await?;
        let result = {
            let _ticker = r.ticker(step, Duration::from_secs(10));
            self.runtime
                .deploy(&spec, &r.log_sink(step), &ctx.cancel)
                .await
        };
        if matches!(result, Err(RuntimeError::Cancelled)) {
            // An abort must not leave a half-started app behind.
            let _ = self.runtime.stop(&d.id).await;
        }
        let release = result?;
        r.step_completed(
            step,
            format!("Revision {} answering at {}", release.revision, release.url),
        );
        Ok(StageResult {
            url: Some(release.url),
            revision: Some(release.revision),
            ..StageResult::default()
        })
    }
}

impl Deploy {
    /// The release of the built artifact, rendered from the plan; the user's variables go as
    /// references to the secrets port, never as values.
    async fn release_spec(&self, d: &Deployment) -> Result<ReleaseSpec, StageError> {
        let plan: BuildPlan = load_json(self.objects.as_ref(), &keys::plan(&d.id)).await?;
        let Some(artifact) = d.artifact.clone() else {
            return Err(StageError::Transient(
                "the build artifact is not recorded yet".into(),
            ));
        };
        let secret_env = d
            .env_names
            .iter()
            .map(|name| SecretEnv {
                name: name.clone(),
                secret: keys::env_secret(&d.id, name.as_str()),
                version: "latest".into(),
            })
            .collect();
        let mut labels = BTreeMap::from([("devgem-deployment".to_string(), d.id.to_string())]);
        if let Some(commit) = &d.commit {
            labels.insert("devgem-commit".into(), commit.clone());
        }
        let mut spec = ReleaseSpec::from_plan(
            d.id.clone(),
            d.service_name.clone(),
            artifact,
            &plan,
            secret_env,
            labels,
        );
        spec.public = !d.private;
        Ok(spec)
    }
}
