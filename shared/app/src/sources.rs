//! The source check a request passes before any deployment exists: the pure policy
//! (`devgem-sources`) on the URL, branch and folder, and, for a host that is not listed, its
//! name resolved here and every address checked (the fetcher checks again when it connects).

use crate::commands::{AppError, LocalPaths};
use devgem_ports::{SecretError, SecretValue, Secrets};
use devgem_sources::{Location, Refusal, SourcePolicy, check_branch, check_subdir};
use std::net::IpAddr;
use std::time::Duration;

/// How long a name may take to resolve before the request is refused.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits on a request's environment variables (Cloud Run's own: 32 KiB a value).
pub const MAX_ENV_VARS: usize = 200;
pub const MAX_ENV_VALUE_BYTES: usize = 32 * 1024;
pub const MAX_ENV_TOTAL_BYTES: usize = 256 * 1024;

fn refused(r: Refusal) -> AppError {
    AppError::BadRequest {
        message: format!("repository access: {r}"),
        hint: r.hint,
    }
}

/// Checks a source text, its branch and its folder. Local paths and `file://` pass only
/// where `local` allows them (the caller has refused them otherwise).
pub async fn check_source(
    policy: &SourcePolicy,
    local: LocalPaths,
    source: &str,
    branch: Option<&str>,
    subdir: Option<&str>,
) -> Result<(), AppError> {
    if let Some(branch) = branch.filter(|b| !b.is_empty()) {
        check_branch(branch).map_err(refused)?;
    }
    if let Some(subdir) = subdir.filter(|s| !s.is_empty()) {
        check_subdir(subdir).map_err(refused)?;
    }
    match policy.classify(source).map_err(refused)? {
        Location::LocalPath | Location::FileUrl if local == LocalPaths::Allowed => Ok(()),
        Location::LocalPath | Location::FileUrl => Err(AppError::BadRequest {
            message: format!(
                "{source:?} is a path on the server's disk, which requests cannot deploy"
            ),
            hint: "deploy a git URL, or upload the folder (`devgem deploy PATH --server URL` \
                   sends it as an archive); a server's owner may allow paths with \
                   DEVGEM_ALLOW_LOCAL_SOURCES=1"
                .into(),
        }),
        Location::Remote(url) if policy.needs_resolution(&url) => {
            let host = url.host.to_string();
            let addresses =
                resolve(&host, url.effective_port())
                    .await
                    .map_err(|e| AppError::BadRequest {
                        message: format!(
                            "repository access: the host {host} could not be found ({e})"
                        ),
                        hint: "check the URL".into(),
                    })?;
            policy.check_addresses(&url, &addresses).map_err(refused)
        }
        Location::Remote(_) => Ok(()),
    }
}

/// The GitHub token `owner` signed in with, if they did: what their deployments clone with
/// and what their commit statuses are posted with (the server's `GITHUB_TOKEN` otherwise).
pub async fn owner_github_token(
    secrets: &dyn Secrets,
    owner: &str,
) -> Result<Option<SecretValue>, SecretError> {
    let token = secrets.get(&crate::keys::github_token(owner)).await?;
    Ok(token.filter(|t| !t.expose().is_empty()))
}

/// Every address `host` resolves to.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
    let lookup = tokio::net::lookup_host((host.trim_matches(['[', ']']), port));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => Ok(addrs.map(|a| a.ip()).collect()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", RESOLVE_TIMEOUT.as_secs())),
    }
}

/// Checks the request's environment variables as a whole: how many, and how large. Names
/// are checked one by one by `EnvVarName::parse` (valid, not reserved).
pub fn check_env_sizes<'a>(
    env: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), AppError> {
    let (mut count, mut total) = (0, 0);
    for (name, value) in env {
        count += 1;
        total += name.len() + value.len();
        if value.len() > MAX_ENV_VALUE_BYTES {
            return Err(AppError::BadRequest {
                message: format!(
                    "the value of {name} is {} bytes; a value may hold at most {} KiB",
                    value.len(),
                    MAX_ENV_VALUE_BYTES / 1024
                ),
                hint: "keep large configuration in a file of the repository or in object storage"
                    .into(),
            });
        }
    }
    if count > MAX_ENV_VARS || total > MAX_ENV_TOTAL_BYTES {
        return Err(AppError::BadRequest {
            message: format!(
                "{count} environment variables of {total} bytes in all: at most {MAX_ENV_VARS} \
                 and {} KiB",
                MAX_ENV_TOTAL_BYTES / 1024
            ),
            hint: "set fewer variables".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_unless_listed() {
        let any = SourcePolicy::parse("*").unwrap();
        let check = |policy: SourcePolicy, source: &'static str| async move {
            check_source(&policy, LocalPaths::Refused, source, None, None).await
        };
        let refused = check(any.clone(), "https://localhost/acme/shop").await;
        let Err(AppError::BadRequest { message, .. }) = refused else {
            panic!("{refused:?}");
        };
        assert!(
            message.contains("localhost resolves to 127.0.0.1"),
            "{message}"
        );
        let listed = SourcePolicy::parse("localhost").unwrap();
        assert!(check(listed, "https://localhost/acme/shop").await.is_ok());
    }

    #[tokio::test]
    async fn branches_folders_and_local_sources_are_checked() {
        let policy = SourcePolicy::default();
        let ok = "https://github.com/acme/shop";
        let run = |local, source: &'static str, branch, subdir| {
            let policy = policy.clone();
            async move { check_source(&policy, local, source, branch, subdir).await }
        };
        assert!(
            run(LocalPaths::Refused, ok, Some("main"), Some("apps/web"))
                .await
                .is_ok()
        );
        assert!(
            run(LocalPaths::Refused, ok, Some("--upload-pack=id"), None)
                .await
                .is_err()
        );
        assert!(
            run(LocalPaths::Refused, ok, None, Some("-x"))
                .await
                .is_err()
        );
        assert!(
            run(LocalPaths::Refused, "file:///etc", None, None)
                .await
                .is_err()
        );
        assert!(
            run(LocalPaths::Allowed, "file:///etc", None, None)
                .await
                .is_ok()
        );
        assert!(
            run(LocalPaths::Allowed, "ext::sh -c id", None, None)
                .await
                .is_err()
        );
    }

    #[test]
    fn env_sizes_are_bounded() {
        let small = std::collections::BTreeMap::from([("A".to_string(), "b".to_string())]);
        assert!(check_env_sizes(&small).is_ok());
        let big = std::collections::BTreeMap::from([("A".to_string(), "b".repeat(40_000))]);
        assert!(check_env_sizes(&big).is_err());
        let many: std::collections::BTreeMap<_, _> =
            (0..300).map(|i| (format!("V{i}"), String::new())).collect();
        assert!(check_env_sizes(&many).is_err());
    }
}
