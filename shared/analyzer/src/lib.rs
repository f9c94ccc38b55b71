//! The analyzer: given a checkout, say what it is and how to build and run it on Cloud Run.
//!
//! Public API (the contract the rest of DevGem uses):
//! - [`analyze`]`(dir) -> Analysis`: detection with evidence, runners-up and monorepo services,
//! - [`analyze_service`]`(dir, service_path) -> Analysis`: the same for one service of a
//!   monorepo (a path from [`Analysis::services`], e.g. `"apps/web"`),
//! - [`plan`]`(&Analysis) -> BuildPlan`: the one plan every rendering comes from
//!   ([`BuildPlan`], [`Language`], [`PackageManager`], [`Template`] and [`EnvVarUse`] live in
//!   the pure `devgem-plan` crate and are re-exported here, so the ports and the adapters
//!   depend on the plan without depending on the analyzer),
//! - [`render_dockerfile`]`(&BuildPlan) -> String` and [`render_dockerignore`],
//! - [`scan`]`(dir, &BuildPlan, dockerfile) -> ScanReport`: the security scan,
//! - [`Analysis::summary`]: the readable text `devgem analyze PATH` prints without `--json`.
//!
//! How it works: [`repo::Repo::load`] is the only I/O, a bounded gitignore-aware walk that
//! builds a read-only in-memory view of the checkout (it skips dependency and build folders
//! and never follows a symlink out of the checkout). Every language detector (`detect::*`) is
//! a pure function over that view returning a score and its evidence; all detectors run, the
//! best score wins and the others are reported as runners-up, so no stray file can flip the
//! result by being looked at first. Manifests are only read at the app root and in declared
//! workspaces.
//!
//! Types, not strings: the language, package manager, Dockerfile template family and finding
//! [`Severity`] are enums serialized as the lowercase strings `--json` has always printed.
//! Nothing recognised is `Analysis::language == None`, printed as `"unknown"`.
//!
//! Code map:
//! - `lib.rs`: the public types ([`Analysis`], [`Details`], [`Finding`], [`Severity`]...) and
//!   [`plan`],
//! - `repo.rs`: the walk and the read-only view ([`repo::Repo`], [`repo::App`]),
//! - `detect/`: one module per ecosystem (`python`, `node` with Bun and Deno, `go`, `rust`,
//!   `jvm`, `others` for PHP, Ruby, .NET, Elixir and static sites) and `mod.rs`, which ranks
//!   them and finds monorepo services,
//! - `icon.rs`: the framework's Simple Icons slug ([`Analysis::framework_icon`]),
//! - `common.rs`: versions, environment variables, ports, Procfiles; `native.rs`: the table
//!   of language packages that need Debian packages ([`NATIVE_LIBRARIES`]); `pat.rs`: cheap
//!   literal-prefiltered patterns,
//! - `dockerfile.rs`: one rendering per template family ([`Template::ALL`]); `scan.rs`: the
//!   security scan; `summary.rs`: the readable summary.
//!
//! **Architecture Invariant:** only `repo.rs` touches the file system; `analyze_repo`,
//! [`plan`] and the renderers are pure and deterministic.
//!
//! Native runs: commands in a [`BuildPlan`] are POSIX `sh -c` strings run from the app folder
//! with `PORT` set. When [`BuildPlan::native_start_command`] is set, a native runner (no
//! Docker) must prefer it to `start_command`: static sites are served by nginx in the image but
//! by `python3 -m http.server` natively, PHP by Apache in the image and `php -S` natively.
//!
//! Build context: a rendered Dockerfile expects [`BuildPlan::build_dir`] as its build context:
//! the app folder ([`BuildPlan::app_dir`]), or the workspace root of a workspace member.

mod common;
mod detect;
mod dockerfile;
mod icon;
mod native;
mod pat;
pub mod repo;
pub mod review;
mod scan;
mod summary;

pub use devgem_plan::{BuildPlan, EnvVarUse, Language, PackageManager, Template};
pub use native::NATIVE_LIBRARIES;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A runner-up in detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub language: Language,
    pub framework: Option<String>,
    pub score: f64,
}

/// A deployable service of a monorepo: its path and its own analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// The service folder inside the checkout, e.g. "apps/web".
    pub path: String,
    #[serde(flatten)]
    pub analysis: Analysis,
}

/// A hardcoded port or host that keeps the app from answering on Cloud Run, and its fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortIssue {
    pub file: String,
    pub line: u32,
    pub message: String,
    pub fix: String,
    /// The port the code listens on instead of $PORT, when the issue is a hard-coded port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// What the plan and renderers need beyond the public summary fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Details {
    /// The app folder inside the checkout ("." for the root).
    pub app_dir: String,
    /// The workspace root the app is a member of ([`BuildPlan::workspace_root`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_root: Option<String>,
    /// The Dockerfile template family; `None` only when nothing was recognised.
    pub template: Option<Template>,
    /// Where the runtime version came from (a file, or "default").
    pub runtime_version_source: Option<String>,
    /// Base image of the build stage.
    pub build_image: Option<String>,
    /// Base image of the runtime stage.
    pub base_image: Option<String>,
    /// Debian packages the build stage needs.
    pub build_system_packages: Vec<String>,
    /// Folder of built static files (static sites and single-page apps).
    pub static_dir: Option<String>,
    /// Start command for a native run (no Docker), when it differs from the image's.
    pub native_start_command: Option<String>,
    /// A hardcoded port or host that needs a code change.
    pub port_issue: Option<PortIssue>,
    /// The repository's own Dockerfile (path), used as is.
    pub existing_dockerfile: Option<String>,
    /// Its content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_dockerfile_content: Option<String>,
    /// The build artifact the runtime stage keeps (binary, jar, release name...).
    pub artifact: Option<String>,
    /// The package manager version the repository pins or its lockfile needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_manager_version: Option<String>,
    /// Manifest and lock files copied before the sources (layer caching), app-relative.
    pub manifests: Vec<String>,
    /// Extra production settings.
    pub env: BTreeMap<String, String>,
}

/// What the analyzer found; `devgem analyze --json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// `None` when nothing deployable was recognised (printed as "unknown").
    #[serde(with = "language_or_unknown")]
    pub language: Option<Language>,
    pub framework: Option<String>,
    /// The framework's Simple Icons slug (`flask`, `nextdotjs`...) for clients to show; not
    /// part of the documented `--json` object ([`PublicAnalysis`]).
    #[serde(default)]
    pub framework_icon: Option<String>,
    pub runtime_version: Option<String>,
    pub package_manager: Option<PackageManager>,
    pub install_command: Option<String>,
    pub build_command: Option<String>,
    pub start_command: Option<String>,
    pub entrypoint: Option<String>,
    pub dev_port: Option<u16>,
    pub deploy_port: u16,
    pub reads_port_env: bool,
    pub system_packages: Vec<String>,
    pub env_vars: Vec<EnvVarUse>,
    pub services: Vec<Service>,
    pub confidence: f64,
    pub evidence: Vec<String>,
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub details: Details,
}

/// The analysis exactly as `devgem analyze --json` documents it: the public fields in their
/// documented order, without the internal [`Details`].
#[derive(Debug, Serialize)]
pub struct PublicAnalysis<'a> {
    pub language: &'a str,
    pub framework: &'a Option<String>,
    pub runtime_version: &'a Option<String>,
    pub package_manager: Option<PackageManager>,
    pub install_command: &'a Option<String>,
    pub build_command: &'a Option<String>,
    pub start_command: &'a Option<String>,
    pub entrypoint: &'a Option<String>,
    pub dev_port: Option<u16>,
    pub deploy_port: u16,
    pub reads_port_env: bool,
    pub system_packages: &'a [String],
    pub env_vars: &'a [EnvVarUse],
    pub services: Vec<PublicService<'a>>,
    pub confidence: f64,
    pub evidence: &'a [String],
    pub candidates: &'a [Candidate],
}

/// A service of a monorepo in [`PublicAnalysis`]: its path, then the same fields.
#[derive(Debug, Serialize)]
pub struct PublicService<'a> {
    pub path: &'a str,
    #[serde(flatten)]
    pub analysis: PublicAnalysis<'a>,
}

impl Analysis {
    /// The documented public shape of this analysis (for `--json` output).
    pub fn public(&self) -> PublicAnalysis<'_> {
        PublicAnalysis {
            language: self.language_name(),
            framework: &self.framework,
            runtime_version: &self.runtime_version,
            package_manager: self.package_manager,
            install_command: &self.install_command,
            build_command: &self.build_command,
            start_command: &self.start_command,
            entrypoint: &self.entrypoint,
            dev_port: self.dev_port,
            deploy_port: self.deploy_port,
            reads_port_env: self.reads_port_env,
            system_packages: &self.system_packages,
            env_vars: &self.env_vars,
            services: self
                .services
                .iter()
                .map(|s| PublicService {
                    path: &s.path,
                    analysis: s.analysis.public(),
                })
                .collect(),
            confidence: self.confidence,
            evidence: &self.evidence,
            candidates: &self.candidates,
        }
    }

    /// Whether anything deployable was recognised.
    pub fn is_recognized(&self) -> bool {
        self.language.is_some()
    }

    /// The language's name, "unknown" when nothing was recognised (as `--json` prints it).
    pub fn language_name(&self) -> &'static str {
        self.language
            .map_or(language_or_unknown::UNKNOWN, Language::as_str)
    }

    /// An analysis that recognised nothing.
    pub fn unknown() -> Analysis {
        Analysis {
            language: None,
            framework: None,
            framework_icon: None,
            runtime_version: None,
            package_manager: None,
            install_command: None,
            build_command: None,
            start_command: None,
            entrypoint: None,
            dev_port: None,
            deploy_port: 8080,
            reads_port_env: false,
            system_packages: vec![],
            env_vars: vec![],
            services: vec![],
            confidence: 0.0,
            evidence: vec![],
            candidates: vec![],
            details: Details {
                app_dir: ".".into(),
                ..Details::default()
            },
        }
    }

    /// A readable multi-line summary (what `devgem analyze PATH` prints).
    pub fn summary(&self) -> String {
        summary::summary(self)
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub reason: String,
    pub hint: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (hint: {})", self.reason, self.hint)
    }
}

impl std::error::Error for PlanError {}

/// Detects the app in `dir` (and lists monorepo services). Never panics.
pub fn analyze(dir: &Path) -> Analysis {
    let repo = repo::Repo::load(dir, &repo::Limits::default());
    analyze_repo(&repo)
}

/// Analyses one service of a monorepo, `service_path` being relative to `dir` (e.g.
/// `"apps/web"`; `"."` is the root). The plan made from it runs in that folder.
pub fn analyze_service(dir: &Path, service_path: &str) -> Analysis {
    let repo = repo::Repo::load(dir, &repo::Limits::default());
    analyze_repo_service(&repo, service_path)
}

/// [`analyze`] over an in-memory view (pure).
pub fn analyze_repo(repo: &repo::Repo) -> Analysis {
    detect::analyze_root(repo)
}

/// [`analyze_service`] over an in-memory view (pure).
pub fn analyze_repo_service(repo: &repo::Repo, service_path: &str) -> Analysis {
    let mut a = detect::analyze_app(&repo.app(service_path));
    for w in &repo.warnings {
        a.evidence.push(format!("warning: {w}"));
    }
    a
}

/// Makes the build plan for an analysis.
pub fn plan(analysis: &Analysis) -> Result<BuildPlan, PlanError> {
    let Some(language) = analysis.language else {
        let hint = if analysis.services.is_empty() {
            "add a manifest (package.json, requirements.txt, go.mod, Cargo.toml, pom.xml...) or a Dockerfile at the app root".to_string()
        } else {
            format!(
                "this is a monorepo: pick a service ({})",
                analysis
                    .services
                    .iter()
                    .map(|s| s.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(PlanError {
            reason: "no deployable app was recognised".into(),
            hint,
        });
    };
    let Some(start) = analysis.start_command.clone() else {
        return Err(PlanError {
            reason: format!("no start command could be determined for this {language} app"),
            hint: common::start_hint(language),
        });
    };
    let d = &analysis.details;
    // Every detector names its template; a recognised analysis without one is a detector bug.
    let Some(template) = d.template else {
        return Err(PlanError {
            reason: format!("no Dockerfile template was chosen for this {language} app"),
            hint: "add a Dockerfile at the app root".into(),
        });
    };
    let mut env = common::production_env(language);
    env.extend(d.env.clone());
    env.insert("PORT".into(), analysis.deploy_port.to_string());
    Ok(BuildPlan {
        language,
        framework: analysis.framework.clone(),
        runtime_version: analysis.runtime_version.clone(),
        package_manager: analysis.package_manager,
        package_manager_version: d.package_manager_version.clone(),
        app_dir: if d.app_dir.is_empty() {
            ".".into()
        } else {
            d.app_dir.clone()
        },
        workspace_root: d.workspace_root.clone(),
        install_command: analysis.install_command.clone(),
        build_command: analysis.build_command.clone(),
        start_command: start,
        deploy_port: analysis.deploy_port,
        system_packages: analysis.system_packages.clone(),
        env,
        base_image: d
            .base_image
            .clone()
            .unwrap_or_else(|| "debian:bookworm-slim".into()),
        native_start_command: d.native_start_command.clone(),
        build_image: d.build_image.clone(),
        build_system_packages: d.build_system_packages.clone(),
        template,
        static_dir: d.static_dir.clone(),
        artifact: d.artifact.clone(),
        manifests: d.manifests.clone(),
        existing_dockerfile: d.existing_dockerfile_content.clone(),
        env_vars: analysis.env_vars.clone(),
        hard_coded_port: d.port_issue.as_ref().and_then(|i| {
            Some(devgem_plan::PortFinding {
                port: i.port?,
                file: i.file.clone(),
                line: i.line,
            })
        }),
    })
}

/// Renders the production Dockerfile for a plan (the repository's own when it has one).
pub fn render_dockerfile(plan: &BuildPlan) -> String {
    dockerfile::render(plan)
}

/// Renders the .dockerignore that goes with [`render_dockerfile`].
pub fn render_dockerignore(plan: &BuildPlan) -> String {
    dockerfile::render_ignore(plan)
}

/// How much a finding of the security scan matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks the deployment.
    High,
    /// A warning.
    Medium,
    /// A warning.
    Low,
}

impl Severity {
    /// The name as serialized and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finding of the security scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// [`Severity::High`] blocks the deployment; the others are warnings.
    pub severity: Severity,
    pub file: String,
    pub line: Option<u32>,
    pub message: String,
    pub fix: String,
}

/// The security scan's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    pub findings: Vec<Finding>,
}

impl ScanReport {
    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::High)
    }
}

/// Scans the checkout and the generated Dockerfile.
pub fn scan(dir: &Path, plan: &BuildPlan, dockerfile: &str) -> ScanReport {
    let repo = repo::Repo::load(dir, &repo::Limits::scan());
    scan::scan_repo(&repo, plan, dockerfile)
}

/// [`scan`] over an in-memory view (pure).
pub fn scan_repo(repo: &repo::Repo, plan: &BuildPlan, dockerfile: &str) -> ScanReport {
    scan::scan_repo(repo, plan, dockerfile)
}

/// [`Analysis::language`] on the wire: the language's name, or "unknown" when nothing was
/// recognised, as `devgem analyze --json` has always printed it.
mod language_or_unknown {
    use crate::Language;
    use serde::de::IntoDeserializer;
    use serde::{Deserialize, Deserializer, Serializer};

    pub const UNKNOWN: &str = "unknown";

    pub fn serialize<S: Serializer>(language: &Option<Language>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(language.map_or(UNKNOWN, Language::as_str))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Language>, D::Error> {
        let name = String::deserialize(d)?;
        if name == UNKNOWN {
            return Ok(None);
        }
        Language::deserialize(name.as_str().into_deserializer()).map(Some)
    }
}
