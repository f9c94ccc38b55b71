//! A model asked one question by the pipeline (review this analysis, recommend these
//! settings), with a bound on how long the stage waits: past it, the rules decide.

use crate::{Conversation, LanguageModel, ModelError};
use std::sync::Arc;
use std::time::Duration;

/// A configured model and how long a stage waits for it.
#[derive(Clone)]
pub struct Advisor {
    pub model: Arc<dyn LanguageModel>,
    pub bound: Duration,
}

/// Why an advisor gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum AdviceError {
    #[error("did not answer within {} s", .0.as_secs_f32())]
    TimedOut(Duration),
    #[error("could not answer ({0})")]
    Failed(ModelError),
    #[error("answered with function calls instead of text")]
    NoText,
}

impl Advisor {
    /// The model's text answer to `brief` under `instructions`, within the bound.
    pub async fn ask(&self, instructions: &str, brief: String) -> Result<String, AdviceError> {
        let conversation = Conversation::new(instructions).user(brief);
        match tokio::time::timeout(self.bound, self.model.next(&conversation, &[])).await {
            Err(_) => Err(AdviceError::TimedOut(self.bound)),
            Ok(Err(e)) => Err(AdviceError::Failed(e)),
            Ok(Ok(turn)) => turn.text().map(str::to_string).ok_or(AdviceError::NoText),
        }
    }

    /// Which model answers, for the user.
    pub fn name(&self) -> String {
        self.model.name()
    }
}
