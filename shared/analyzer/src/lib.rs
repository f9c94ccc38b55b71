//! The analyzer: given a checkout, say what it is and how to build and run it on Cloud Run.
//!
//! Public API (the contract the rest of DevGem uses):
//! - [`analyze`]`(dir) -> Analysis`: detection with evidence,
//! - [`plan`]`(&Analysis) -> BuildPlan`: the one plan every rendering comes from,
//! - [`render_dockerfile`]`(&BuildPlan) -> String` and [`render_dockerignore`],
//! - [`scan`]`(dir, &BuildPlan, dockerfile) -> ScanReport`: the security scan.
//!
//! This is the walking skeleton's basic version; the analyzer issue completes it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// An environment variable the code reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVarUse {
    pub name: String,
    pub secret: bool,
    pub required: bool,
}

/// A runner-up in detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub language: String,
    pub framework: Option<String>,
    pub score: f64,
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
    pub services: Vec<serde_json::Value>,
    pub confidence: f64,
    pub evidence: Vec<String>,
    pub candidates: Vec<Candidate>,
}

impl Analysis {
    /// Whether anything deployable was recognised.
    pub fn is_recognized(&self) -> bool {
        self.language != "unknown"
    }
}

/// How to build and run one app. The Dockerfile, the Cloud Build request and the native local
/// build are all renderings of this plan.
///
/// Commands are POSIX shell strings run from `app_dir` with `PORT` set; the start command
/// makes the app listen on `0.0.0.0:$PORT`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub reason: String,
    pub hint: String,
}

/// Detects the app in `dir`.
pub fn analyze(dir: &Path) -> Analysis {
    let has = |f: &str| dir.join(f).is_file();
    let (language, framework, start, install, pm) = if has("requirements.txt") {
        let reqs = std::fs::read_to_string(dir.join("requirements.txt"))
            .unwrap_or_default()
            .to_lowercase();
        if reqs.contains("fastapi") {
            (
                "python",
                Some("fastapi"),
                "uvicorn main:app --host 0.0.0.0 --port $PORT",
                "pip install -r requirements.txt",
                "pip",
            )
        } else {
            (
                "python",
                Some("flask"),
                "gunicorn -b 0.0.0.0:$PORT app:app",
                "pip install -r requirements.txt",
                "pip",
            )
        }
    } else if has("package.json") {
        ("node", Some("express"), "npm start", "npm install", "npm")
    } else if has("index.html") {
        (
            "static",
            None,
            "python3 -m http.server $PORT --bind 0.0.0.0",
            "",
            "",
        )
    } else {
        ("unknown", None, "", "", "")
    };
    Analysis {
        language: language.into(),
        framework: framework.map(Into::into),
        runtime_version: None,
        package_manager: (!pm.is_empty()).then(|| pm.into()),
        install_command: (!install.is_empty()).then(|| install.into()),
        build_command: None,
        start_command: (!start.is_empty()).then(|| start.into()),
        entrypoint: None,
        dev_port: None,
        deploy_port: 8080,
        reads_port_env: true,
        system_packages: vec![],
        env_vars: vec![],
        services: vec![],
        confidence: if language == "unknown" { 0.0 } else { 0.5 },
        evidence: vec![],
        candidates: vec![],
    }
}

/// Makes the build plan for an analysis.
pub fn plan(analysis: &Analysis) -> Result<BuildPlan, PlanError> {
    let Some(start) = analysis.start_command.clone() else {
        return Err(PlanError {
            reason: "no start command could be determined".into(),
            hint: "add a Procfile with a `web:` line, or a start script".into(),
        });
    };
    Ok(BuildPlan {
        language: analysis.language.clone(),
        framework: analysis.framework.clone(),
        runtime_version: analysis.runtime_version.clone(),
        package_manager: analysis.package_manager.clone(),
        app_dir: ".".into(),
        install_command: analysis.install_command.clone(),
        build_command: analysis.build_command.clone(),
        start_command: start,
        deploy_port: 8080,
        system_packages: analysis.system_packages.clone(),
        env: BTreeMap::new(),
        base_image: "debian:bookworm-slim".into(),
    })
}

/// Renders the production Dockerfile for a plan.
pub fn render_dockerfile(plan: &BuildPlan) -> String {
    format!(
        "FROM {}\nWORKDIR /app\nCOPY . .\nENV PORT=8080\nCMD {}\n",
        plan.base_image, plan.start_command
    )
}

/// Renders the .dockerignore that goes with [`render_dockerfile`].
pub fn render_dockerignore(_plan: &BuildPlan) -> String {
    ".git\n.env\nnode_modules\n".into()
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
pub fn scan(_dir: &Path, _plan: &BuildPlan, _dockerfile: &str) -> ScanReport {
    ScanReport::default()
}

impl Analysis {
    /// A readable summary (stub; the analyzer issue writes the real one).
    pub fn summary(&self) -> String {
        format!("{} {:?}", self.language, self.framework)
    }
}
