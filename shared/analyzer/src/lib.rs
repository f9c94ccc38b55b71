//! The analyzer: given a checkout, say what it is and how to build and run it on Cloud Run.
//!
//! Public API (the contract the rest of DevGem uses):
//! - [`analyze`]`(dir) -> Analysis`: detection with evidence, runners-up and monorepo services,
//! - [`analyze_service`]`(dir, service_path) -> Analysis`: the same for one service of a
//!   monorepo (a path from [`Analysis::services`], e.g. `"apps/web"`),
//! - [`plan`]`(&Analysis) -> BuildPlan`: the one plan every rendering comes from,
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
//! Code map:
//! - `repo.rs`: the walk and the read-only view ([`repo::Repo`], [`repo::App`]),
//! - `detect/`: one module per ecosystem (`python`, `node` with Bun and Deno, `go`, `rust`,
//!   `jvm`, `others` for PHP, Ruby, .NET, Elixir and static sites) and `mod.rs`, which ranks
//!   them and finds monorepo services,
//! - `common.rs`: versions, environment variables, ports, Procfiles; `native.rs`: the table
//!   of language packages that need Debian packages ([`NATIVE_LIBRARIES`]); `pat.rs`: cheap
//!   literal-prefiltered patterns,
//! - `dockerfile.rs`: the template families ([`TEMPLATES`]); `scan.rs`: the security scan;
//!   `summary.rs`: the readable summary.
//!
//! **Architecture Invariant:** only `repo.rs` touches the file system; `analyze_repo`,
//! [`plan`] and the renderers are pure and deterministic.
//!
//! Native runs: commands in a [`BuildPlan`] are POSIX `sh -c` strings run from the app folder
//! with `PORT` set. When [`BuildPlan::native_start_command`] is set, a native runner (no
//! Docker) must prefer it to `start_command`: static sites are served by nginx in the image but
//! by `python3 -m http.server` natively, PHP by Apache in the image and `php -S` natively.
//!
//! Build context: a rendered Dockerfile expects the app folder ([`BuildPlan::app_dir`]) as its
//! build context.

mod common;
mod detect;
mod dockerfile;
mod native;
mod pat;
pub mod repo;
mod scan;
mod summary;

pub use dockerfile::TEMPLATES;
pub use native::NATIVE_LIBRARIES;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// An environment variable the code reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVarUse {
    pub name: String,
    /// The name looks like a credential (KEY, TOKEN, SECRET, PASSWORD, DATABASE_URL...).
    pub secret: bool,
    /// The code reads it without a default.
    pub required: bool,
}

/// A runner-up in detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub language: String,
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
}

/// What the plan and renderers need beyond the public summary fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Details {
    /// The app folder inside the checkout ("." for the root).
    pub app_dir: String,
    /// The Dockerfile template family (e.g. "python", "nextjs-standalone", "spa").
    pub template: String,
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
    /// Manifest and lock files copied before the sources (layer caching), app-relative.
    pub manifests: Vec<String>,
    /// Extra production settings.
    pub env: BTreeMap<String, String>,
}

/// What the analyzer found; `devgem analyze --json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub language: String,
    pub framework: Option<String>,
    pub runtime_version: Option<String>,
    pub package_manager: Option<String>,
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
    pub package_manager: &'a Option<String>,
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
            language: &self.language,
            framework: &self.framework,
            runtime_version: &self.runtime_version,
            package_manager: &self.package_manager,
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
        self.language != "unknown"
    }

    /// An analysis that recognised nothing.
    pub fn unknown() -> Analysis {
        Analysis {
            language: "unknown".into(),
            framework: None,
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

/// How to build and run one app. The Dockerfile, the Cloud Build request and the native local
/// build are all renderings of this plan.
///
/// Commands are POSIX shell strings run from `app_dir` with `PORT` set; the start command
/// makes the app listen on `0.0.0.0:$PORT`. Python runs inside a virtualenv whose `bin/` is
/// first on `PATH`; Node has `node_modules/.bin` on `PATH`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildPlan {
    pub language: String,
    pub framework: Option<String>,
    pub runtime_version: Option<String>,
    pub package_manager: Option<String>,
    /// The folder of the app inside the checkout ("." for the root).
    pub app_dir: String,
    pub install_command: Option<String>,
    pub build_command: Option<String>,
    pub start_command: String,
    pub deploy_port: u16,
    pub system_packages: Vec<String>,
    /// Production settings the app runs with (NODE_ENV, PYTHONUNBUFFERED...).
    pub env: BTreeMap<String, String>,
    /// The base image of the runtime stage.
    pub base_image: String,
    /// The start command a native runner (no Docker) prefers when set.
    #[serde(default)]
    pub native_start_command: Option<String>,
    /// The base image of the build stage, when there is one.
    #[serde(default)]
    pub build_image: Option<String>,
    /// Debian packages needed only to build.
    #[serde(default)]
    pub build_system_packages: Vec<String>,
    /// Dockerfile template family.
    #[serde(default)]
    pub template: String,
    /// Folder of static files served (static sites, single-page apps).
    #[serde(default)]
    pub static_dir: Option<String>,
    /// Build artifact kept by the runtime stage.
    #[serde(default)]
    pub artifact: Option<String>,
    /// Manifests copied before the sources.
    #[serde(default)]
    pub manifests: Vec<String>,
    /// The repository's own Dockerfile content, rendered as is.
    #[serde(default)]
    pub existing_dockerfile: Option<String>,
    /// Names of environment variables the app reads (never values).
    #[serde(default)]
    pub env_vars: Vec<EnvVarUse>,
}

impl BuildPlan {
    /// The command a native runner should start (prefers `native_start_command`).
    pub fn native_start(&self) -> &str {
        self.native_start_command
            .as_deref()
            .unwrap_or(&self.start_command)
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
    if !analysis.is_recognized() {
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
    }
    let Some(start) = analysis.start_command.clone() else {
        return Err(PlanError {
            reason: format!(
                "no start command could be determined for this {} app",
                analysis.language
            ),
            hint: common::start_hint(&analysis.language),
        });
    };
    let d = &analysis.details;
    let mut env = common::production_env(&analysis.language);
    env.extend(d.env.clone());
    env.insert("PORT".into(), analysis.deploy_port.to_string());
    Ok(BuildPlan {
        language: analysis.language.clone(),
        framework: analysis.framework.clone(),
        runtime_version: analysis.runtime_version.clone(),
        package_manager: analysis.package_manager.clone(),
        app_dir: if d.app_dir.is_empty() {
            ".".into()
        } else {
            d.app_dir.clone()
        },
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
        template: d.template.clone(),
        static_dir: d.static_dir.clone(),
        artifact: d.artifact.clone(),
        manifests: d.manifests.clone(),
        existing_dockerfile: d.existing_dockerfile_content.clone(),
        env_vars: analysis.env_vars.clone(),
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

/// A finding of the security scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// "high" blocks the deployment; "medium" and "low" are warnings.
    pub severity: String,
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
        self.findings.iter().filter(|f| f.severity == "high")
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
