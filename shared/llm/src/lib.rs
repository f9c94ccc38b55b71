//! DevGem's language-model port: a [`Conversation`] (the system prompt and the turns so far) and
//! the tools' declarations in, a [`ModelTurn`] (text, or function calls) out.
//!
//! Adapters: the Gemini API ([`GeminiApi`]), Vertex AI ([`Vertex`]), any OpenAI-compatible
//! server with tool calling ([`OpenAiCompatible`]), and the offline intent engine
//! ([`Offline`], the default: no key, no network). A [`FallbackChain`] tries tiers in order and
//! says which model answered; [`ModelConfig`] builds one from the environment.
//!
//! **Invariant:** no prompt holds a secret value. Every networked adapter sends
//! [`redact`]`(conversation)`: the model sees variable names, never their values.

mod advisor;
mod config;
mod conversation;
mod error;
mod fallback;
mod gemini;
mod http;
mod offline;
mod openai;
mod redact;

pub use advisor::{AdviceError, Advisor};
pub use config::{
    ApiKey, ConfigError, GeminiSettings, ModelConfig, OpenAiSettings, Provider, VertexSettings,
};
pub use conversation::{Conversation, FunctionCall, FunctionResult, ModelTurn, Turn};
pub use devgem_tools::ToolDeclaration;
pub use error::{ErrorKind, ModelError};
pub use fallback::{Answer, FallbackChain};
pub use gemini::{GEMINI_API_ENDPOINT, GeminiApi, Vertex, vertex_credentials};
pub use http::RetryPolicy;
pub use offline::Offline;
pub use openai::{OLLAMA_BASE_URL, OpenAiCompatible};
pub use redact::{REDACTED, redact, redact_message, restore_env_values};

/// A language model: given the conversation so far and the tools it may call, its next turn.
/// Implementations retry what is worth retrying (429, 5xx) within a bounded time and never put
/// a secret value in a request.
#[async_trait::async_trait]
pub trait LanguageModel: Send + Sync {
    /// The model's next turn.
    async fn next(
        &self,
        conversation: &Conversation,
        tools: &[ToolDeclaration],
    ) -> Result<ModelTurn, ModelError>;

    /// Which model this is, for the user and the logs (`Vertex AI gemini-2.5-pro in
    /// us-central1`). Never holds a key.
    fn name(&self) -> String;
}
