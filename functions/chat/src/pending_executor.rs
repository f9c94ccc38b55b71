//! A stand-in for `devgem_app::tools` (the tool executor, on its way from another branch) with
//! the same names: only deploy_repository and get_deployment_status. Removed at the merge.

use devgem_app::{CreateDeployment, LocalPaths, Services};
use devgem_domain::DeploymentId;
use devgem_tools::ToolCall;

pub struct ToolContext {
    pub owner: String,
    pub current: Option<DeploymentId>,
    pub local_paths: LocalPaths,
}

pub struct ToolError {
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
}

pub struct ToolResult {
    pub ok: bool,
    pub text: String,
    pub data: serde_json::Value,
    pub deployment_id: Option<DeploymentId>,
    pub error: Option<ToolError>,
}

fn failed(message: String) -> ToolResult {
    ToolResult {
        ok: false,
        text: message.clone(),
        data: serde_json::Value::Null,
        deployment_id: None,
        error: Some(ToolError {
            code: "failed".into(),
            message,
            hint: None,
        }),
    }
}

pub async fn run_tool(services: &Services, ctx: &ToolContext, call: &ToolCall) -> ToolResult {
    match call {
        ToolCall::DeployRepository {
            source,
            branch,
            subdir,
            service_name,
            env,
            ..
        } => {
            let request = CreateDeployment {
                owner: ctx.owner.clone(),
                source: source.clone(),
                upload: None,
                local_paths: ctx.local_paths,
                branch: branch.clone(),
                subdir: subdir.clone(),
                service_name: service_name.as_ref().map(|s| s.as_str().to_string()),
                env: env.clone(),
            };
            match devgem_app::create_deployment(services, request).await {
                Ok(d) => ToolResult {
                    ok: true,
                    text: format!("deployment {} started", d.id),
                    data: serde_json::to_value(&d).unwrap_or_default(),
                    deployment_id: Some(d.id),
                    error: None,
                },
                Err(e) => failed(e.to_string()),
            }
        }
        ToolCall::GetDeploymentStatus { deployment_id } => {
            let Some(id) = deployment_id.clone().or(ctx.current.clone()) else {
                return failed("which deployment?".into());
            };
            match services.core.store.get(&id).await {
                Ok(Some(d)) => ToolResult {
                    ok: true,
                    text: format!("deployment {} is {:?}", d.id, d.status),
                    data: serde_json::to_value(&d).unwrap_or_default(),
                    deployment_id: Some(d.id),
                    error: None,
                },
                Ok(None) => failed(format!("deployment {id} does not exist")),
                Err(e) => failed(e.to_string()),
            }
        }
        other => failed(format!("{} is not wired yet", other.name())),
    }
}
