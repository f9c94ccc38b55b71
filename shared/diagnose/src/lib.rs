//! Why a deployment failed, and what to change: a catalogue of failure signatures.
//!
//! [`diagnose`] reads the error a user saw and the build and app log, finds the most specific
//! [`Signature`] that explains them, and answers with the root cause, the log lines that show
//! it (secret-looking values masked), a concrete fix and, when one can be made without
//! guessing, a machine-applicable [`ProposedFix`]. An unrecognised failure still gets a
//! diagnosis that names the step and quotes the last error-looking lines.
//!
//! Pure: no I/O, no clock, no randomness; the patterns are compiled once, on first use.

mod catalogue;
mod mask;
mod names;
mod recommend;

pub use catalogue::Signature;
pub use mask::{MASK, mask_secrets};
pub use names::pypi_package;
pub use recommend::{
    RECOMMEND_INSTRUCTIONS, Recommendation, RuntimeFacts, Setting, Source, merge,
    model_recommendations, recommend, recommend_brief,
};

use devgem_domain::{Failure, Step};
use devgem_plan::{BuildPlan, Language, PackageManager};
use serde::{Deserialize, Serialize};

/// Everything known about one failure.
#[derive(Debug, Clone, Copy)]
pub struct FailureInput<'a> {
    /// The user-visible step that failed.
    pub step: Step,
    /// The error the user saw (may span lines: DevGem quotes the app's last output in it).
    pub reason: &'a str,
    /// DevGem's own hint, if it gave one.
    pub hint: Option<&'a str>,
    /// The build log and the app's output, oldest first.
    pub log_lines: &'a [String],
    /// The plan the build ran with, when there was one.
    pub plan: Option<&'a BuildPlan>,
}

impl<'a> FailureInput<'a> {
    /// A failure with only its step and reason.
    pub fn new(step: Step, reason: &'a str) -> Self {
        FailureInput {
            step,
            reason,
            hint: None,
            log_lines: &[],
            plan: None,
        }
    }

    /// The failure a stage recorded.
    pub fn from_failure(failure: &'a Failure) -> Self {
        FailureInput {
            hint: failure.hint.as_deref(),
            ..FailureInput::new(failure.step, &failure.reason)
        }
    }

    pub fn with_log(self, log_lines: &'a [String]) -> Self {
        FailureInput { log_lines, ..self }
    }

    pub fn with_plan(self, plan: &'a BuildPlan) -> Self {
        FailureInput {
            plan: Some(plan),
            ..self
        }
    }
}

/// The answer: which failure this is, why, what shows it, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub signature: Signature,
    /// The root cause, in one sentence.
    pub cause: String,
    /// The log lines that show it (a few at most, oldest first, secret-looking values masked).
    pub evidence: Vec<String>,
    /// What to do, concretely.
    pub fix: String,
    /// The change DevGem can make itself once the user accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed: Option<ProposedFix>,
}

/// A change DevGem can apply to the plan or the checkout, with the value the log named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProposedFix {
    /// Declare a dependency in the app's manifest (`requirements.txt`, `package.json`,
    /// `go.mod`, `Gemfile`...). `package` is the registry's name, possibly with a version
    /// constraint (`werkzeug<3`). `manager` is the plan's, when it builds this language.
    AddDependency {
        language: Language,
        manager: Option<PackageManager>,
        package: String,
    },
    /// Run the app with this command instead.
    SetStartCommand { command: String },
    /// Build the app with this command.
    SetBuildCommand { command: String },
    /// Route traffic to the port the app really listens on.
    SetPort { port: u16 },
    /// Ask the user for this variable's value (never guessed here) and set it.
    SetEnvVar { name: String },
    /// Install a Debian package in the runtime image.
    AddSystemPackage { package: String },
    /// Install a Debian package in the build image only (compilers, headers).
    AddBuildPackage { package: String },
    /// Build and run with this language version (`3.12`, `20`, `1.22`, `21`).
    SetRuntimeVersion { version: String },
    /// Regenerate the lock file from the manifest (`npm install`, `poetry lock`...).
    RegenerateLockfile { manager: Option<PackageManager> },
    /// Give the app more memory (the next size up).
    IncreaseMemory,
    /// Ask the user for a token that can read the repository, then fetch again.
    ProvideRepositoryToken,
}

/// The most specific diagnosis of `input`.
pub fn diagnose(input: &FailureInput) -> Diagnosis {
    catalogue::diagnose(input)
}
