//! Which models to ask, read from the environment, and the chain built from them.
//!
//! | variable | meaning |
//! |---|---|
//! | `DEVGEM_LLM` | `offline` (default) \| `gemini` \| `vertex` \| `openai` |
//! | `DEVGEM_LLM_MODEL` | model names, comma-separated, first choice first (defaults: Gemini `gemini-2.5-flash`; Vertex `gemini-2.5-pro,gemini-2.5-flash`; OpenAI-compatible: required) |
//! | `DEVGEM_LLM_TIMEOUT_SECS` | the bound on one model call (default 60) |
//! | `GEMINI_API_KEY` | the Gemini API key (required for `gemini`; with `vertex`, adds the Gemini API after the Vertex tiers) |
//! | `DEVGEM_GEMINI_ENDPOINT` | the Gemini API base URL (default `https://generativelanguage.googleapis.com`) |
//! | `GOOGLE_CLOUD_PROJECT` | the Vertex project (required for `vertex`) |
//! | `DEVGEM_VERTEX_REGIONS` | Vertex regions, comma-separated, tried in order (default `us-central1`; `global` works) |
//! | `DEVGEM_VERTEX_ENDPOINT` | one base URL for every region instead of Google's regional hosts (tests) |
//! | `GOOGLE_OAUTH_ACCESS_TOKEN` | a bearer token for Vertex instead of application default credentials |
//! | `OPENAI_BASE_URL` | the OpenAI-compatible base URL, up to `/v1` (default Ollama's `http://localhost:11434/v1`) |
//! | `OPENAI_API_KEY` | its key, when it wants one |

use crate::LanguageModel;
use crate::fallback::FallbackChain;
use crate::gemini::{GEMINI_API_ENDPOINT, GeminiApi, Vertex, vertex_credentials};
use crate::http::RetryPolicy;
use crate::offline::Offline;
use crate::openai::{OLLAMA_BASE_URL, OpenAiCompatible};
use std::sync::Arc;
use std::time::Duration;

/// A key or token. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// The provider `DEVGEM_LLM` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Offline,
    Gemini,
    Vertex,
    OpenAi,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeminiSettings {
    pub api_key: ApiKey,
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VertexSettings {
    pub project: String,
    pub regions: Vec<String>,
    pub endpoint: Option<String>,
    pub access_token: Option<ApiKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiSettings {
    pub base_url: String,
    pub api_key: Option<ApiKey>,
}

/// The models to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    pub provider: Provider,
    /// First choice first (empty for offline).
    pub models: Vec<String>,
    pub gemini: Option<GeminiSettings>,
    pub vertex: Option<VertexSettings>,
    pub openai: Option<OpenAiSettings>,
    pub policy: RetryPolicy,
}

/// A setting that cannot be used: the variable, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}. Fix: {fix}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
    pub fix: String,
}

impl ModelConfig {
    /// The offline engine alone.
    pub fn offline() -> Self {
        Self {
            provider: Provider::Offline,
            models: Vec::new(),
            gemini: None,
            vertex: None,
            openai: None,
            policy: RetryPolicy::default(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let list = |value: String| -> Vec<String> {
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let provider = match get("DEVGEM_LLM").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("offline") => Provider::Offline,
            Some("gemini") => Provider::Gemini,
            Some("vertex") => Provider::Vertex,
            Some("openai") => Provider::OpenAi,
            Some(other) => {
                return Err(ConfigError {
                    var: "DEVGEM_LLM",
                    problem: format!("{other:?} is not a provider"),
                    fix: "set it to offline, gemini, vertex or openai (or unset it for offline)"
                        .into(),
                });
            }
        };
        let mut policy = RetryPolicy::default();
        if let Some(secs) = get("DEVGEM_LLM_TIMEOUT_SECS") {
            policy.timeout = secs
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
                .ok_or_else(|| ConfigError {
                    var: "DEVGEM_LLM_TIMEOUT_SECS",
                    problem: format!("{secs:?} is not a positive number of seconds"),
                    fix: "set it to a whole number such as 60".into(),
                })?;
        }
        let gemini_key = get("GEMINI_API_KEY").map(ApiKey::new);
        let gemini = gemini_key.map(|api_key| GeminiSettings {
            api_key,
            endpoint: get("DEVGEM_GEMINI_ENDPOINT").unwrap_or_else(|| GEMINI_API_ENDPOINT.into()),
        });
        let mut models = get("DEVGEM_LLM_MODEL").map(list).unwrap_or_default();
        let mut config = Self {
            provider,
            models: Vec::new(),
            gemini: None,
            vertex: None,
            openai: None,
            policy,
        };
        match provider {
            Provider::Offline => {}
            Provider::Gemini => {
                if gemini.is_none() {
                    return Err(ConfigError {
                        var: "GEMINI_API_KEY",
                        problem: "not set, and DEVGEM_LLM=gemini needs it".into(),
                        fix: "export GEMINI_API_KEY=<a key from https://aistudio.google.com/apikey>, \
                              or unset DEVGEM_LLM to use the offline engine"
                            .into(),
                    });
                }
                if models.is_empty() {
                    models = vec!["gemini-2.5-flash".into()];
                }
                config.gemini = gemini;
            }
            Provider::Vertex => {
                let project = get("GOOGLE_CLOUD_PROJECT").ok_or_else(|| ConfigError {
                    var: "GOOGLE_CLOUD_PROJECT",
                    problem: "not set, and DEVGEM_LLM=vertex needs it".into(),
                    fix: "export GOOGLE_CLOUD_PROJECT=<the project with Vertex AI enabled>".into(),
                })?;
                let regions = get("DEVGEM_VERTEX_REGIONS")
                    .map(list)
                    .unwrap_or_else(|| vec!["us-central1".into()]);
                if let Some(bad) = regions.iter().find(|r| {
                    !r.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                }) {
                    return Err(ConfigError {
                        var: "DEVGEM_VERTEX_REGIONS",
                        problem: format!("{bad:?} is not a region"),
                        fix: "list regions separated by commas, e.g. us-central1,europe-west4"
                            .into(),
                    });
                }
                if models.is_empty() {
                    models = vec!["gemini-2.5-pro".into(), "gemini-2.5-flash".into()];
                }
                config.vertex = Some(VertexSettings {
                    project,
                    regions,
                    endpoint: get("DEVGEM_VERTEX_ENDPOINT"),
                    access_token: get("GOOGLE_OAUTH_ACCESS_TOKEN").map(ApiKey::new),
                });
                config.gemini = gemini;
            }
            Provider::OpenAi => {
                if models.is_empty() {
                    return Err(ConfigError {
                        var: "DEVGEM_LLM_MODEL",
                        problem: "not set, and an OpenAI-compatible server needs a model name"
                            .into(),
                        fix: "export DEVGEM_LLM_MODEL=<a model with tool calling, e.g. \
                              qwen2.5:7b-instruct for Ollama>"
                            .into(),
                    });
                }
                config.openai = Some(OpenAiSettings {
                    base_url: get("OPENAI_BASE_URL").unwrap_or_else(|| OLLAMA_BASE_URL.into()),
                    api_key: get("OPENAI_API_KEY").map(ApiKey::new),
                });
            }
        }
        config.models = models;
        Ok(config)
    }

    /// The chain: the provider's tiers (for Vertex each model in each region, then the Gemini
    /// API when a key is set), always ending in the offline engine.
    pub fn build(&self) -> Result<FallbackChain, ConfigError> {
        let mut tiers = self.model_tiers()?;
        tiers.push(Arc::new(Offline));
        Ok(FallbackChain::new(tiers))
    }

    /// The configured models alone, without the offline engine (which only understands chat
    /// requests): what the pipeline asks for reviews. `None` when no model is configured.
    pub fn models_only(&self) -> Result<Option<FallbackChain>, ConfigError> {
        let tiers = self.model_tiers()?;
        Ok((!tiers.is_empty()).then(|| FallbackChain::new(tiers)))
    }

    fn model_tiers(&self) -> Result<Vec<Arc<dyn LanguageModel>>, ConfigError> {
        let mut tiers: Vec<Arc<dyn LanguageModel>> = Vec::new();
        if let Some(vertex) = &self.vertex {
            let credentials =
                vertex_credentials(vertex.access_token.as_ref()).map_err(|problem| {
                    ConfigError {
                        var: "GOOGLE_APPLICATION_CREDENTIALS",
                        problem,
                        fix: "run `gcloud auth application-default login`".into(),
                    }
                })?;
            for model in &self.models {
                for region in &vertex.regions {
                    tiers.push(Arc::new(Vertex::new(
                        vertex.endpoint.as_deref(),
                        &vertex.project,
                        region,
                        model,
                        credentials.clone(),
                        self.policy,
                    )));
                }
            }
        }
        if let Some(gemini) = &self.gemini {
            for model in &self.models {
                tiers.push(Arc::new(GeminiApi::new(
                    &gemini.endpoint,
                    model,
                    gemini.api_key.clone(),
                    self.policy,
                )));
            }
        }
        if let Some(openai) = &self.openai {
            for model in &self.models {
                tiers.push(Arc::new(OpenAiCompatible::new(
                    &openai.base_url,
                    model,
                    openai.api_key.clone(),
                    self.policy,
                )));
            }
        }
        Ok(tiers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<ModelConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ModelConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn nothing_set_means_the_offline_engine() {
        let c = config(&[]).unwrap();
        assert_eq!(c.provider, Provider::Offline);
        assert_eq!(c.build().unwrap().tiers(), vec!["offline"]);
    }

    #[test]
    fn gemini_without_a_key_names_the_variable_and_the_fix() {
        let err = config(&[("DEVGEM_LLM", "gemini")]).unwrap_err();
        assert_eq!(err.var, "GEMINI_API_KEY");
        assert!(err.to_string().contains("Fix: export GEMINI_API_KEY"));
    }

    #[test]
    fn an_unknown_provider_is_refused() {
        let err = config(&[("DEVGEM_LLM", "claude")]).unwrap_err();
        assert_eq!(err.var, "DEVGEM_LLM");
    }

    #[test]
    fn openai_needs_a_model_name() {
        let err = config(&[("DEVGEM_LLM", "openai")]).unwrap_err();
        assert_eq!(err.var, "DEVGEM_LLM_MODEL");
        let c = config(&[("DEVGEM_LLM", "openai"), ("DEVGEM_LLM_MODEL", "qwen2.5")]).unwrap();
        assert_eq!(c.openai.unwrap().base_url, OLLAMA_BASE_URL);
    }

    #[test]
    fn vertex_tiers_are_each_model_in_each_region_then_the_gemini_api_then_offline() {
        let c = config(&[
            ("DEVGEM_LLM", "vertex"),
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("DEVGEM_VERTEX_REGIONS", "us-central1, europe-west4"),
            ("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.x"),
            ("GEMINI_API_KEY", "AIza-secret"),
        ])
        .unwrap();
        assert_eq!(
            c.build().unwrap().tiers(),
            vec![
                "Vertex AI gemini-2.5-pro in us-central1",
                "Vertex AI gemini-2.5-pro in europe-west4",
                "Vertex AI gemini-2.5-flash in us-central1",
                "Vertex AI gemini-2.5-flash in europe-west4",
                "Gemini API gemini-2.5-pro",
                "Gemini API gemini-2.5-flash",
                "offline",
            ]
        );
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("AIza-secret") && !debug.contains("ya29.x"),
            "{debug}"
        );
    }

    #[test]
    fn vertex_without_a_project_names_the_variable() {
        let err = config(&[("DEVGEM_LLM", "vertex")]).unwrap_err();
        assert_eq!(err.var, "GOOGLE_CLOUD_PROJECT");
    }
}
