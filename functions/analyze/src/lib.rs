//! The analyze function: the first five steps a user watches. It fetches the source, packs it
//! into object storage for the build stage, analyzes it, plans the build, renders the
//! Dockerfile, checks the environment variables the code needs, and scans for secrets and
//! unsafe settings. Its results (analysis, plan, Dockerfile) go to object storage.

use async_trait::async_trait;
use devgem_analyzer::{Analysis, BuildPlan};
use devgem_app::{StageContext, StageError, StageOutput, StageWork, archive, keys};
use devgem_domain::{Failure, Stage, Step};
use devgem_ports::{ObjectError, SourceError};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

pub struct Analyze;

fn stored(e: ObjectError) -> StageError {
    StageError::Transient(e.to_string())
}

#[async_trait]
impl StageWork for Analyze {
    fn stage(&self) -> Stage {
        Stage::Analyze
    }

    async fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let d = &ctx.deployment;
        let r = &ctx.reporter;
        let objects = &ctx.services.objects;

        // 1. Repository access.
        let step = Step::RepositoryAccess;
        r.step_started(step, format!("Fetching {}", d.source.location));
        let checkout = tempfile::tempdir().map_err(|e| StageError::Transient(e.to_string()))?;
        let fetched = {
            let _ticker = r.ticker(step, Duration::from_secs(5));
            ctx.services
                .source
                .fetch(&d.source, checkout.path(), &r.log_sink(step), &ctx.cancel)
                .await
        };
        let fetched = match fetched {
            Ok(f) => f,
            Err(SourceError::Rejected { reason, hint }) => {
                return Err(StageError::Failed(
                    Failure::new(step, reason).with_hint(hint),
                ));
            }
            Err(SourceError::Unavailable(e)) => return Err(StageError::Transient(e)),
            Err(SourceError::Cancelled) => return Err(StageError::Cancelled),
        };
        let app_dir =
            app_dir(checkout.path(), d.source.subdir.as_deref()).map_err(StageError::Failed)?;
        let root = checkout.path().to_path_buf();
        let archive = tokio::task::spawn_blocking(move || archive::pack(&root))
            .await
            .map_err(|e| StageError::Transient(e.to_string()))?
            .map_err(|e| {
                StageError::Failed(
                    Failure::new(step, format!("the source could not be archived: {e}"))
                        .with_hint("check that every file in the repository is readable"),
                )
            })?;
        let size = archive.len();
        objects
            .put(&keys::source_archive(&d.id), archive.into())
            .await
            .map_err(stored)?;
        let at = fetched
            .commit
            .as_deref()
            .map(|c| format!(" at commit {}", &c[..c.len().min(12)]))
            .unwrap_or_default();
        r.step_completed(
            step,
            format!("Fetched the source{at} ({} packed)", human_size(size)),
        );

        // 2. Code analysis.
        let step = Step::CodeAnalysis;
        r.step_started(step, "Detecting language, framework, commands and port");
        let dir = app_dir.clone();
        let analysis: Analysis =
            tokio::task::spawn_blocking(move || devgem_analyzer::analyze(&dir))
                .await
                .map_err(|e| StageError::Transient(e.to_string()))?;
        for line in &analysis.evidence {
            r.reasoning(step, line.clone());
        }
        if !analysis.is_recognized() {
            let hint = "add a manifest DevGem recognises (requirements.txt or pyproject.toml, \
                        package.json, index.html, go.mod, Cargo.toml, pom.xml, a Dockerfile...) \
                        or point at the app's folder";
            let reason = if is_empty_dir(&app_dir) {
                "the repository is empty".to_string()
            } else {
                "no web app was recognised in the source".to_string()
            };
            return Err(StageError::Failed(
                Failure::new(step, reason).with_hint(hint),
            ));
        }
        let summary = describe(&analysis);
        objects
            .put(
                &keys::analysis(&d.id),
                serde_json::to_vec_pretty(&analysis)
                    .unwrap_or_default()
                    .into(),
            )
            .await
            .map_err(stored)?;
        r.step_completed(step, format!("Detected {summary}"));

        // 3. Dockerfile generation (from the build plan).
        let step = Step::DockerfileGeneration;
        r.step_started(step, "Planning the build and writing the Dockerfile");
        let mut plan: BuildPlan = devgem_analyzer::plan(&analysis)
            .map_err(|e| StageError::Failed(Failure::new(step, e.reason).with_hint(e.hint)))?;
        if let Some(sub) = &d.source.subdir {
            let sub = sub.trim_end_matches('/');
            plan.app_dir = match plan.app_dir.as_str() {
                "" | "." => sub.to_string(),
                inner => format!("{sub}/{inner}"),
            };
        }
        let dockerfile = devgem_analyzer::render_dockerfile(&plan);
        objects
            .put(
                &keys::plan(&d.id),
                serde_json::to_vec_pretty(&plan).unwrap_or_default().into(),
            )
            .await
            .map_err(stored)?;
        objects
            .put(
                &keys::dockerfile(&d.id),
                dockerfile.clone().into_bytes().into(),
            )
            .await
            .map_err(stored)?;
        r.reasoning(step, format!("Start command: {}", plan.start_command));
        r.step_completed(
            step,
            format!(
                "Wrote a {}-line Dockerfile from {}",
                dockerfile.lines().count(),
                plan.base_image
            ),
        );

        // 4. Environment config.
        let step = Step::EnvironmentConfig;
        r.step_started(step, "Checking the environment variables the code reads");
        let given: Vec<&str> = d.env_names.iter().map(|n| n.as_str()).collect();
        let missing: Vec<&str> = analysis
            .env_vars
            .iter()
            .filter(|v| v.required && !given.contains(&v.name.as_str()))
            .map(|v| v.name.as_str())
            .collect();
        if !missing.is_empty() {
            r.warning(
                step,
                format!(
                    "the code needs {} but no value was given; set them with --env NAME=VALUE",
                    missing.join(", ")
                ),
            );
        }
        r.step_completed(
            step,
            format!(
                "{} variable(s) set by you ({}), PORT={} set by the runtime",
                given.len(),
                if given.is_empty() {
                    "none".to_string()
                } else {
                    given.join(", ")
                },
                plan.deploy_port
            ),
        );

        // 5. Security scan.
        let step = Step::SecurityScan;
        r.step_started(step, "Scanning the source and the Dockerfile");
        let (scan_dir, scan_plan, scan_docker) =
            (app_dir.clone(), plan.clone(), dockerfile.clone());
        let report = tokio::task::spawn_blocking(move || {
            devgem_analyzer::scan(&scan_dir, &scan_plan, &scan_docker)
        })
        .await
        .map_err(|e| StageError::Transient(e.to_string()))?;
        for f in report
            .findings
            .iter()
            .filter(|f| f.severity != devgem_analyzer::Severity::High)
        {
            r.warning(
                step,
                format!("{}: {} (fix: {})", location(f), f.message, f.fix),
            );
        }
        if let Some(f) = report.blocking().next() {
            return Err(StageError::Failed(
                Failure::new(step, format!("{}: {}", location(f), f.message))
                    .with_hint(f.fix.clone()),
            ));
        }
        r.step_completed(
            step,
            format!("{} finding(s), none blocking", report.findings.len()),
        );

        Ok(StageOutput {
            summary: Some(summary),
            commit: fetched.commit,
            ..Default::default()
        })
    }
}

fn human_size(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

fn location(f: &devgem_analyzer::Finding) -> String {
    match f.line {
        Some(line) => format!("{}:{line}", f.file),
        None => f.file.clone(),
    }
}

/// "python / flask" style label for listings.
fn describe(a: &Analysis) -> String {
    match &a.framework {
        Some(fw) => format!("{} / {fw}", a.language_name()),
        None => a.language_name().to_string(),
    }
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut entries| entries.all(|e| e.is_ok_and(|e| e.file_name() == ".git")))
        .unwrap_or(true)
}

/// The folder to analyze: the checkout, or the requested folder inside it.
fn app_dir(checkout: &Path, subdir: Option<&str>) -> Result<PathBuf, Failure> {
    let Some(sub) = subdir else {
        return Ok(checkout.to_path_buf());
    };
    let relative = Path::new(sub);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Failure::new(
            Step::RepositoryAccess,
            format!("the folder {sub:?} points outside the repository"),
        )
        .with_hint("give a relative folder such as apps/web"));
    }
    let dir = checkout.join(relative);
    if !dir.is_dir() {
        return Err(Failure::new(
            Step::RepositoryAccess,
            format!("the repository has no folder {sub:?}"),
        )
        .with_hint("check the folder name; `devgem analyze` lists the services it finds"));
    }
    Ok(dir)
}
