//! DevGem's chat tools: one registry of tools as types, with the JSON schemas a language model
//! (Gemini, an OpenAI-compatible server) or an MCP client is given, and the offline intent
//! engine that turns plain English into the same tool calls with no model at all.
//!
//! **Invariant:** this crate does no I/O, reads no clock and draws no random numbers: the same
//! message gives the same calls, so every phrasing can be tested as a plain value.

mod offline;
mod tools;

pub use offline::{
    Context, CurrentDeployment, DeploymentSummary, LinkSummary, ToolOutcome, Understanding,
    is_secret_name, reply_for, understand,
};
pub use tools::{
    ArgError, RESERVED_ENV_NAMES, ToolAnnotations, ToolCall, ToolDeclaration, ToolName,
    declarations, env_name_problem, github_repository,
};
