//! The deploy function: starts the built artifact on the runtime port with the user's
//! environment, waits until it answers, and records its URL.

use async_trait::async_trait;
use devgem_app::{StageContext, StageError, StageWork, keys, load_json};
use devgem_diagnose::RuntimeFacts;
use devgem_domain::{Deployment, Stage, StageResult, Step};
use devgem_llm::Advisor;
use devgem_plan::BuildPlan;
use devgem_ports::{LogQuery, ObjectStore, ReleaseSpec, Runtime, RuntimeError, SecretEnv};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The deploy stage, with the two ports it uses.
pub struct Deploy {
    pub objects: Arc<dyn ObjectStore>,
    pub runtime: Arc<dyn Runtime>,
    /// A configured language model, asked for runtime recommendations beside the rules'.
    pub advisor: Option<Advisor>,
}

/// How many of the app's first log lines the recommendations read.
const RECOMMENDATION_LOG_LINES: usize = 100;

#[async_trait]
impl StageWork for Deploy {
    fn stage(&self) -> Stage {
        Stage::Deploy
    }

    async fn run(&self, ctx: &StageContext) -> Result<StageResult, StageError> {
        let (d, r) = (&ctx.deployment, &ctx.reporter);
        let step = Step::Deploy;
        r.step_started(step, format!("Deploying service {}", d.service_name));
        let (spec, plan) = self.release_spec(d).await?;
        let started = std::time::Instant::now();
        let result = {
            let _ticker = r.ticker(step, Duration::from_secs(10));
            self.runtime
                .deploy(&spec, &r.log_sink(step), &ctx.cancel)
                .await
        };
        if matches!(result, Err(RuntimeError::Cancelled)) {
            // An abort must not leave a half-started app behind.
            let _ = self.runtime.stop(&d.id, d.region.as_ref()).await;
        }
        let release = result?;
        self.recommendations(ctx, &spec, &plan, started.elapsed())
            .await;
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
    async fn release_spec(&self, d: &Deployment) -> Result<(ReleaseSpec, BuildPlan), StageError> {
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
        spec.region = d.region.clone();
        Ok((spec, plan))
    }

    /// Tells the user which settings to change now that the app runs (from how long it took
    /// to start and what it logged), by the rules and, within its bound, by the model.
    async fn recommendations(
        &self,
        ctx: &StageContext,
        spec: &ReleaseSpec,
        plan: &BuildPlan,
        startup: Duration,
    ) {
        let (d, r) = (&ctx.deployment, &ctx.reporter);
        let query = LogQuery {
            limit: RECOMMENDATION_LOG_LINES,
            page_token: None,
        };
        let log_lines: Vec<String> = match self.runtime.logs(&d.id, d.region.as_ref(), &query).await
        {
            Ok(page) => page.lines.into_iter().map(|l| l.text).collect(),
            Err(_) => Vec::new(),
        };
        let facts = RuntimeFacts {
            plan,
            memory_mib: spec.resources.memory_mib,
            cpu_millis: spec.resources.cpu_millis,
            min_instances: spec.scaling.min_instances,
            startup,
            log_lines: &log_lines,
        };
        let mut all = devgem_diagnose::recommend(&facts);
        if let Some(advisor) = &self.advisor {
            let name = advisor.name();
            let brief = devgem_diagnose::recommend_brief(&facts);
            match advisor
                .ask(devgem_diagnose::RECOMMEND_INSTRUCTIONS, brief)
                .await
                .map_err(|e| e.to_string())
                .and_then(|text| devgem_diagnose::model_recommendations(&text, &name, &facts))
            {
                Ok(model) => all = devgem_diagnose::merge(all, model),
                Err(e) => r.reasoning(
                    Step::Deploy,
                    format!("{name} gave no runtime recommendation ({e}); the rules' stand"),
                ),
            }
        }
        for recommendation in &all {
            r.reasoning(Step::Deploy, format!("Recommended: {recommendation}"));
        }
    }
}
