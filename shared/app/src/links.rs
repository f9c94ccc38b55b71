//! Repository links (a GitHub repository and branch that deploys a user's service on every
//! push): created, listed and removed for their owner, by `/api/links` and by the chat's and
//! MCP's tools alike. A link's env values live in the secrets port; the link keeps their names.

use crate::commands::AppError;
use crate::services::Services;
use devgem_domain::{EnvVarName, Link, LinkId, RepositoryName, ServiceName};
use devgem_ports::SecretValue;
use std::collections::BTreeMap;

/// What a new link is asked for with.
#[derive(Debug, Clone, Default)]
pub struct NewLink {
    /// `owner/name`.
    pub repository: String,
    pub branch: String,
    /// Derived from the repository's name when absent.
    pub service_name: Option<String>,
    /// Variables every deployment of the link gets; the values go to the secrets port only.
    pub env: BTreeMap<String, String>,
}

fn bad(message: impl Into<String>, hint: &str) -> AppError {
    AppError::BadRequest {
        message: message.into(),
        hint: hint.to_string(),
    }
}

/// Checks and stores a new link of `owner`'s.
pub async fn create_link(
    services: &Services,
    owner: &str,
    request: NewLink,
) -> Result<Link, AppError> {
    let repository = RepositoryName::parse(&request.repository)
        .map_err(|e| bad(e.to_string(), "give the repository as owner/name"))?;
    let branch = request.branch.trim().to_string();
    if branch.is_empty()
        || branch.starts_with('-')
        || branch.len() > 255
        || branch.chars().any(|c| c.is_control() || c == ' ')
    {
        return Err(bad(
            format!("{branch:?} is not a branch name"),
            "give the branch to deploy, such as main",
        ));
    }
    let service_name = match &request.service_name {
        Some(name) => ServiceName::parse(name).map_err(|e| {
            bad(
                e.to_string(),
                "use lowercase letters, digits and '-', starting with a letter",
            )
        })?,
        None => {
            ServiceName::derive_from(repository.as_str().rsplit('/').next().unwrap_or_default())
        }
    };
    for name in request.env.keys() {
        EnvVarName::parse(name).map_err(|e| {
            bad(
                e.to_string(),
                "rename the variable (letters, digits and '_')",
            )
        })?;
    }
    // The same limits a deployment's env gets, so an oversized value is refused here and not
    // at every push the link deploys.
    crate::sources::check_env_sizes(&request.env)?;
    let core = &services.core;
    let link = Link {
        id: LinkId::from_uuid(uuid::Uuid::new_v4()),
        owner: owner.to_string(),
        repository,
        branch,
        service_name,
        env_names: request.env.keys().cloned().collect(),
        created_at: core.clock.now(),
    };
    for (name, value) in &request.env {
        services
            .secrets
            .put(
                &link_env_key(&link.id, name),
                &SecretValue::new(value.clone()),
            )
            .await?;
    }
    core.store.put_link(&link).await?;
    Ok(link)
}

/// `owner`'s links.
pub async fn list_links(services: &Services, owner: &str) -> Result<Vec<Link>, AppError> {
    Ok(services.core.store.list_links(Some(owner)).await?)
}

/// Removes `owner`'s link `id` and returns it; another user's link is not found, exactly as a
/// missing one.
pub async fn delete_link(services: &Services, owner: &str, id: &LinkId) -> Result<Link, AppError> {
    let store = &services.core.store;
    let link = list_links(services, owner)
        .await?
        .into_iter()
        .find(|l| &l.id == id)
        .ok_or_else(|| AppError::LinkNotFound(id.to_string()))?;
    // The values first: if the secrets port fails, the link stays and deleting it again
    // finishes the job (a key already gone is fine), rather than orphaning the values.
    for name in &link.env_names {
        services.secrets.delete(&link_env_key(id, name)).await?;
    }
    if !store.delete_link(id).await? {
        return Err(AppError::LinkNotFound(id.to_string()));
    }
    Ok(link)
}

/// Where the value of a link's variable `name` is kept (secrets port).
pub fn link_env_key(id: &LinkId, name: &str) -> String {
    format!("links/{id}/env/{name}")
}

/// The link's env values, from the secrets port.
pub async fn link_env(
    services: &Services,
    link: &Link,
) -> Result<BTreeMap<String, String>, AppError> {
    let mut env = BTreeMap::new();
    for name in &link.env_names {
        let value = services.secrets.get(&link_env_key(&link.id, name)).await?;
        if let Some(value) = value {
            env.insert(name.clone(), value.expose().to_string());
        }
    }
    Ok(env)
}
