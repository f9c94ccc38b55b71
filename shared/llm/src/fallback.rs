//! Tiers of models tried in order (Vertex Pro -> Vertex Flash -> the Gemini API, across regions,
//! ending in the offline engine): a tier that exhausts its retries or fails for good hands the
//! same conversation to the next.

use crate::LanguageModel;
use crate::conversation::{Conversation, ModelTurn};
use crate::error::ModelError;
use devgem_tools::ToolDeclaration;
use std::sync::Arc;

/// The tiers, first choice first.
#[derive(Clone)]
pub struct FallbackChain {
    tiers: Vec<Arc<dyn LanguageModel>>,
}

/// A turn and the model that gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub turn: ModelTurn,
    /// The [`LanguageModel::name`] of the tier that answered.
    pub model: String,
    /// Why the tiers before it did not answer, in order.
    pub failures: Vec<ModelError>,
}

impl std::fmt::Debug for FallbackChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.tiers.iter().map(|t| t.name()))
            .finish()
    }
}

impl FallbackChain {
    pub fn new(tiers: Vec<Arc<dyn LanguageModel>>) -> Self {
        Self { tiers }
    }

    /// The tiers' names, first choice first.
    pub fn tiers(&self) -> Vec<String> {
        self.tiers.iter().map(|t| t.name()).collect()
    }

    /// Asks each tier in turn until one answers. The error, when every tier failed, is the
    /// last tier's (the others are logged).
    pub async fn answer(
        &self,
        conversation: &Conversation,
        tools: &[ToolDeclaration],
    ) -> Result<Answer, ModelError> {
        let mut failures = Vec::new();
        for tier in &self.tiers {
            match tier.next(conversation, tools).await {
                Ok(turn) => {
                    return Ok(Answer {
                        turn,
                        model: tier.name(),
                        failures,
                    });
                }
                Err(error) => {
                    tracing::warn!(model = %tier.name(), %error, "model tier failed; trying the next");
                    failures.push(error);
                }
            }
        }
        Err(failures.pop().unwrap_or_else(|| {
            ModelError::new(
                "fallback chain",
                crate::ErrorKind::Config,
                "the chain has no models. Fix: set DEVGEM_LLM",
            )
        }))
    }
}

#[async_trait::async_trait]
impl LanguageModel for FallbackChain {
    async fn next(
        &self,
        conversation: &Conversation,
        tools: &[ToolDeclaration],
    ) -> Result<ModelTurn, ModelError> {
        self.answer(conversation, tools).await.map(|a| a.turn)
    }

    fn name(&self) -> String {
        self.tiers().join(" -> ")
    }
}
