//! The settings of the Google build-and-run adapters, read once at start-up: project, region,
//! repository, bucket, the base URL of every API (overridable for tests and private
//! endpoints) and the credentials.

use devgem_ports::SecretValue;

pub const DEFAULT_REGION: &str = "us-central1";
pub const DEFAULT_ARTIFACT_REPO: &str = "devgem";
/// Where GitHub is, unless `DEVGEM_GITHUB_URL` says otherwise (a loopback stand-in in tests).
pub const DEFAULT_GITHUB_URL: &str = "https://github.com";

/// A setting that is missing or malformed, with the variable to set and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}. Fix: {fix}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
    pub fix: String,
}

/// Which engine runs the Dockerfile inside Cloud Build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildEngine {
    /// `gcr.io/cloud-builders/docker` with BuildKit and a registry layer cache (the default:
    /// what Google's own Cloud Run tooling uses).
    #[default]
    Docker,
    /// kaniko, pinned by digest (its upstream was archived in 2025; kept as a setting).
    Kaniko,
}

/// The base URL of each Google API the adapters call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub cloudbuild: String,
    pub run: String,
    pub secretmanager: String,
    pub artifactregistry: String,
    pub logging: String,
    pub storage: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            cloudbuild: "https://cloudbuild.googleapis.com".into(),
            run: "https://run.googleapis.com".into(),
            secretmanager: "https://secretmanager.googleapis.com".into(),
            artifactregistry: "https://artifactregistry.googleapis.com".into(),
            logging: "https://logging.googleapis.com".into(),
            storage: "https://storage.googleapis.com".into(),
        }
    }
}

impl Endpoints {
    /// Every endpoint at one base URL (a test's stand-in serves them all).
    pub fn all_at(base: &str) -> Self {
        let base = base.trim_end_matches('/').to_string();
        Self {
            cloudbuild: base.clone(),
            run: base.clone(),
            secretmanager: base.clone(),
            artifactregistry: base.clone(),
            logging: base.clone(),
            storage: base,
        }
    }
}

/// Everything the adapters need to know.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    pub project: String,
    /// `GOOGLE_CLOUD_REGION`: where builds run and images are kept, always, and where a
    /// service runs when its deployment names no region of its own (Cloud Run pulls an image
    /// from another region's Artifact Registry).
    pub region: String,
    /// The Artifact Registry Docker repository images go to.
    pub artifact_repo: String,
    /// Where uploaded and local sources go for Cloud Build (`PROJECT_cloudbuild`, as gcloud).
    pub build_bucket: String,
    pub engine: BuildEngine,
    pub endpoints: Endpoints,
    /// `GOOGLE_OAUTH_ACCESS_TOKEN`: used as the bearer token when set; otherwise application
    /// default credentials (the metadata server on Cloud Run).
    pub access_token: Option<SecretValue>,
    /// The identity builds run as (`DEVGEM_BUILD_SERVICE_ACCOUNT`, an email); Cloud Build's
    /// default account when unset.
    pub build_service_account: Option<String>,
    /// The identity user apps run as (`DEVGEM_RUNTIME_SERVICE_ACCOUNT`); it is granted read
    /// access to each app's own secrets. The Compute Engine default account when unset.
    pub runtime_service_account: Option<String>,
    /// The Secret Manager secret id holding a GitHub token (`DEVGEM_GITHUB_TOKEN_SECRET_ID`),
    /// which Cloud Build's fetch step reads to clone private repositories.
    pub github_token_secret: Option<String>,
    /// `DEVGEM_GITHUB_URL` (default https://github.com): the one host a GitHub token is sent
    /// to, as the local fetcher does; a source on any other host is fetched without one.
    pub github_url: String,
}

impl CloudConfig {
    /// A configuration for `project` with the defaults and Google's endpoints.
    pub fn new(project: impl Into<String>) -> Self {
        let project = project.into();
        Self {
            build_bucket: format!("{project}_cloudbuild"),
            project,
            region: DEFAULT_REGION.into(),
            artifact_repo: DEFAULT_ARTIFACT_REPO.into(),
            engine: BuildEngine::default(),
            endpoints: Endpoints::default(),
            access_token: None,
            build_service_account: None,
            runtime_service_account: None,
            github_token_secret: None,
            github_url: DEFAULT_GITHUB_URL.into(),
        }
    }

    /// Reads the settings through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let project = get("GOOGLE_CLOUD_PROJECT").ok_or_else(|| ConfigError {
            var: "GOOGLE_CLOUD_PROJECT",
            problem: "not set, and Cloud Build and Cloud Run need a project".into(),
            fix: "export GOOGLE_CLOUD_PROJECT=<your project id> (gcloud config get-value project)"
                .into(),
        })?;
        let mut config = Self::new(project);
        if let Some(region) = get("GOOGLE_CLOUD_REGION") {
            config.region = checked_name("GOOGLE_CLOUD_REGION", region, "us-central1")?;
        }
        if let Some(repo) = get("DEVGEM_ARTIFACT_REPO") {
            config.artifact_repo = checked_name("DEVGEM_ARTIFACT_REPO", repo, "devgem")?;
        }
        if let Some(bucket) = get("DEVGEM_BUILD_BUCKET") {
            config.build_bucket = bucket.trim_start_matches("gs://").to_string();
        }
        config.engine = match get("DEVGEM_CLOUDBUILD_ENGINE").as_deref() {
            None | Some("docker") => BuildEngine::Docker,
            Some("kaniko") => BuildEngine::Kaniko,
            Some(other) => {
                return Err(ConfigError {
                    var: "DEVGEM_CLOUDBUILD_ENGINE",
                    problem: format!("{other:?} is not an engine"),
                    fix: "set it to docker (the default) or kaniko".into(),
                });
            }
        };
        let endpoint = |var: &'static str, default: String| -> Result<String, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    Ok(url.trim_end_matches('/').to_string())
                }
                Some(url) => Err(ConfigError {
                    var,
                    problem: format!("{url:?} is not a base URL"),
                    fix: "set it to a URL such as http://127.0.0.1:9000, or unset it".into(),
                }),
            }
        };
        let d = Endpoints::default();
        config.endpoints = Endpoints {
            cloudbuild: endpoint("DEVGEM_CLOUDBUILD_ENDPOINT", d.cloudbuild)?,
            run: endpoint("DEVGEM_RUN_ENDPOINT", d.run)?,
            secretmanager: endpoint("DEVGEM_SECRETMANAGER_ENDPOINT", d.secretmanager)?,
            artifactregistry: endpoint("DEVGEM_ARTIFACTREGISTRY_ENDPOINT", d.artifactregistry)?,
            logging: endpoint("DEVGEM_LOGGING_ENDPOINT", d.logging)?,
            storage: endpoint("DEVGEM_STORAGE_ENDPOINT", d.storage)?,
        };
        config.access_token = get("GOOGLE_OAUTH_ACCESS_TOKEN").map(SecretValue::new);
        let email = |var: &'static str| -> Result<Option<String>, ConfigError> {
            match get(var) {
                Some(v) if !v.contains('@') => Err(ConfigError {
                    var,
                    problem: format!("{v:?} is not a service account email"),
                    fix: "set it to NAME@PROJECT.iam.gserviceaccount.com (infra/ creates one)"
                        .into(),
                }),
                other => Ok(other),
            }
        };
        config.build_service_account = email("DEVGEM_BUILD_SERVICE_ACCOUNT")?;
        config.runtime_service_account = email("DEVGEM_RUNTIME_SERVICE_ACCOUNT")?;
        config.github_token_secret = get("DEVGEM_GITHUB_TOKEN_SECRET_ID");
        config.github_url = endpoint("DEVGEM_GITHUB_URL", DEFAULT_GITHUB_URL.into())?;
        Ok(config)
    }

    /// `projects/P/locations/R`, the parent of services, builds and repositories.
    pub fn location(&self) -> String {
        format!("projects/{}/locations/{}", self.project, self.region)
    }

    /// Whether a GitHub token may go with a fetch of `url`: only when it is on the GitHub
    /// host (`https://github.com/...`, not `https://github.com.evil/...` nor gitlab.com).
    pub fn is_github_source(&self, url: &str) -> bool {
        let prefix = format!("{}/", self.github_url.trim().trim_end_matches('/'));
        url.starts_with(&prefix)
    }

    /// The Secret Manager version Cloud Build reads the GitHub token from, when one is set.
    pub fn github_token_version(&self) -> Option<String> {
        self.github_token_secret
            .as_ref()
            .map(|id| format!("projects/{}/secrets/{id}/versions/latest", self.project))
    }

    /// The latest version of the Secret Manager secret the secrets port keeps `key` in.
    pub fn secret_version(&self, key: &str) -> String {
        format!(
            "projects/{}/secrets/{}/versions/latest",
            self.project,
            crate::names::secret_id(key)
        )
    }

    /// `R-docker.pkg.dev/P/REPO`, where this project's images go.
    pub fn image_repository(&self) -> String {
        format!(
            "{}-docker.pkg.dev/{}/{}",
            self.region, self.project, self.artifact_repo
        )
    }
}

/// Region and repository names: lowercase letters, digits and hyphens.
fn checked_name(var: &'static str, value: String, example: &str) -> Result<String, ConfigError> {
    let ok = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && value.starts_with(|c: char| c.is_ascii_lowercase());
    if ok {
        Ok(value)
    } else {
        Err(ConfigError {
            var,
            problem: format!("{value:?} is not a valid name (lowercase letters, digits, hyphens)"),
            fix: format!("set it to a name such as {example}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<CloudConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CloudConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_gcloud() {
        let c = read(&[("GOOGLE_CLOUD_PROJECT", "acme")]).unwrap();
        assert_eq!(c.region, "us-central1");
        assert_eq!(c.artifact_repo, "devgem");
        assert_eq!(c.build_bucket, "acme_cloudbuild");
        assert_eq!(
            c.image_repository(),
            "us-central1-docker.pkg.dev/acme/devgem"
        );
        assert_eq!(c.endpoints.run, "https://run.googleapis.com");
        assert!(c.access_token.is_none());
    }

    #[test]
    fn every_endpoint_can_be_overridden() {
        let c = read(&[
            ("GOOGLE_CLOUD_PROJECT", "acme"),
            ("GOOGLE_CLOUD_REGION", "europe-west1"),
            ("DEVGEM_RUN_ENDPOINT", "http://127.0.0.1:9000/"),
            ("DEVGEM_CLOUDBUILD_ENDPOINT", "http://127.0.0.1:9001"),
            ("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.secret"),
        ])
        .unwrap();
        assert_eq!(c.endpoints.run, "http://127.0.0.1:9000");
        assert_eq!(c.endpoints.cloudbuild, "http://127.0.0.1:9001");
        assert_eq!(c.location(), "projects/acme/locations/europe-west1");
        assert!(
            !format!("{c:?}").contains("ya29.secret"),
            "the token never prints"
        );
    }

    #[test]
    fn bad_settings_name_the_variable_and_the_fix() {
        let e = read(&[]).unwrap_err();
        assert_eq!(e.var, "GOOGLE_CLOUD_PROJECT");
        let e = read(&[
            ("GOOGLE_CLOUD_PROJECT", "a"),
            ("DEVGEM_RUN_ENDPOINT", "localhost:1"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "DEVGEM_RUN_ENDPOINT");
        let e = read(&[
            ("GOOGLE_CLOUD_PROJECT", "a"),
            ("GOOGLE_CLOUD_REGION", "US Central"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("us-central1"), "{e}");
        let e = read(&[
            ("GOOGLE_CLOUD_PROJECT", "a"),
            ("DEVGEM_BUILD_SERVICE_ACCOUNT", "builder"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "DEVGEM_BUILD_SERVICE_ACCOUNT");
    }

    #[test]
    fn identities_and_the_github_token_secret_come_from_infra() {
        let c = read(&[
            ("GOOGLE_CLOUD_PROJECT", "acme"),
            (
                "DEVGEM_RUNTIME_SERVICE_ACCOUNT",
                "apps@acme.iam.gserviceaccount.com",
            ),
            ("DEVGEM_GITHUB_TOKEN_SECRET_ID", "devgem-github-token"),
        ])
        .unwrap();
        assert_eq!(
            c.runtime_service_account.as_deref(),
            Some("apps@acme.iam.gserviceaccount.com")
        );
        assert_eq!(
            c.github_token_version().as_deref(),
            Some("projects/acme/secrets/devgem-github-token/versions/latest")
        );
    }

    #[test]
    fn a_github_token_goes_to_the_github_host_only() {
        let c = read(&[("GOOGLE_CLOUD_PROJECT", "acme")]).unwrap();
        assert!(c.is_github_source("https://github.com/octo/shop.git"));
        for url in [
            "https://gitlab.com/octo/shop.git",
            "https://github.com.evil.example/octo/shop.git",
            "http://github.com/octo/shop.git",
            "https://api.github.com/octo/shop.git",
        ] {
            assert!(!c.is_github_source(url), "{url}");
        }
        let c = read(&[
            ("GOOGLE_CLOUD_PROJECT", "acme"),
            ("DEVGEM_GITHUB_URL", "http://127.0.0.1:9418/"),
        ])
        .unwrap();
        assert!(c.is_github_source("http://127.0.0.1:9418/octo/shop.git"));
        assert!(!c.is_github_source("https://github.com/octo/shop.git"));
    }
}
