//! The analyze function: the first five steps a user watches. It fetches the source, packs it
//! into object storage for the build stage, analyzes it, plans the build, renders the
//! Dockerfile, checks the environment variables the code needs, and scans for secrets and
//! unsafe settings. Its results (analysis, plan, Dockerfile) go to object storage.
//!
//! The analysis and the scan of a git commit are also kept in object storage, keyed by the
//! repository, the commit, the folder and the analyzer, so a second deployment of the same
//! commit skips both walks. Local folders and uploads are never cached: their content can
//! change while their name (and the commit of a folder's enclosing repository) stays.

mod patch;

use async_trait::async_trait;
use devgem_analyzer::{Analysis, BuildPlan, ScanReport, review};
use devgem_app::{StageContext, StageError, StageWork, keys};
use devgem_domain::{Deployment, Failure, Manifest, SourceKind, Stage, StageResult, Step};
use devgem_llm::Advisor;
use devgem_ports::{FetchedSource, ObjectStore, Secrets, SourceFetcher};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The analyze stage, with the ports it uses.
pub struct Analyze {
    pub source: Arc<dyn SourceFetcher>,
    pub objects: Arc<dyn ObjectStore>,
    /// Where the deployment's owner's GitHub token is, when they signed in with GitHub: a
    /// private repository is cloned with it.
    pub secrets: Arc<dyn Secrets>,
    /// A language model that reviews the analyses the rules are least sure of; `None`
    /// without a configured model (the rules alone decide).
    pub reviewer: Option<Advisor>,
}

/// A checkout of the source: the folder (removed when dropped), the app's folder inside it,
/// and what the fetch said about it.
struct Checkout {
    _root: tempfile::TempDir,
    app_dir: PathBuf,
    fetched: FetchedSource,
    /// Where this commit's analysis is cached, when its content is named by the commit.
    cache: Option<CacheKey>,
}

/// A git source at one commit, analysed by this analyzer: what names a cached analysis.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct CacheKey {
    source: String,
    commit: String,
    subdir: Option<String>,
    analyzer: String,
}

impl CacheKey {
    /// The key for a clone of a repository at a known commit; `None` for a local folder or
    /// an upload. A `file://` URL is cloned like any repository, so its commit names it.
    fn for_source(d: &Deployment, fetched: &FetchedSource) -> Option<Self> {
        let cloned = d.source.archive.is_none()
            && (d.source.kind() == SourceKind::Git
                || d.source.location.trim().starts_with("file://"));
        let commit = fetched.commit.clone().filter(|_| cloned)?;
        Some(Self {
            source: d.source.location.trim().trim_end_matches('/').to_string(),
            commit,
            subdir: d.source.subdir.clone(),
            analyzer: analyzer_identity().to_string(),
        })
    }

    fn object(&self, part: &str) -> String {
        keys::analysis_cache(
            &self.source,
            &self.commit,
            self.subdir.as_deref(),
            &self.analyzer,
            part,
        )
    }
}

/// A cached result with the key it was made for.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cached<T> {
    key: CacheKey,
    value: T,
}

/// Which analyzer made a result: this build of DevGem (its version and the modification
/// time of its binary), so a rebuilt analyzer never reuses an older one's findings.
fn analyzer_identity() -> &'static str {
    static IDENTITY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IDENTITY.get_or_init(|| {
        let built = std::env::current_exe()
            .and_then(std::fs::metadata)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!("{} {built}", env!("CARGO_PKG_VERSION"))
    })
}

/// The rendered build: the plan and its Dockerfile.
struct Rendered {
    plan: BuildPlan,
    dockerfile: String,
}

#[async_trait]
impl StageWork for Analyze {
    fn stage(&self) -> Stage {
        Stage::Analyze
    }

    async fn run(&self, ctx: &StageContext) -> Result<StageResult, StageError> {
        let checkout = self.repository_access(ctx).await?;
        let analysis = self.code_analysis(ctx, &checkout).await?;
        let rendered = self
            .dockerfile_generation(ctx, &checkout, &analysis)
            .await?;
        environment_config(ctx, &analysis, &rendered.plan);
        self.security_scan(ctx, &checkout, &rendered).await?;
        Ok(StageResult {
            summary: Some(describe(&analysis)),
            commit: checkout.fetched.commit,
            ..StageResult::default()
        })
    }
}

impl Analyze {
    /// Step 1: fetch the source and pack it into object storage for the build stage.
    async fn repository_access(&self, ctx: &StageContext) -> Result<Checkout, StageError> {
        let (d, r) = (&ctx.deployment, &ctx.reporter);
        let step = Step::RepositoryAccess;
        r.step_started(step, format!("Fetching {}", d.source.location));
        let root = tempfile::tempdir().map_err(|e| StageError::Transient(e.to_string()))?;
        let fetched = match &d.source.archive {
            Some(key) => self.unpack_upload(key, root.path()).await?,
            None => {
                let credential =
                    devgem_app::sources::owner_github_token(self.secrets.as_ref(), &d.owner)
                        .await?;
                let _ticker = r.ticker(step, Duration::from_secs(5));
                self.source
                    .fetch(
                        &d.source,
                        credential.as_ref(),
                        root.path(),
                        &r.log_sink(step),
                        &ctx.cancel,
                    )
                    .await?
            }
        };
        let app_dir =
            app_dir(root.path(), d.source.subdir.as_deref()).map_err(StageError::Failed)?;
        let patched = self.accepted_dependencies(ctx, &app_dir).await?;
        let packed = root.path().to_path_buf();
        let archive = tokio::task::spawn_blocking(move || devgem_archive::pack(&packed))
            .await?
            .map_err(|e| {
                StageError::Failed(
                    Failure::new(step, format!("the source could not be archived: {e}"))
                        .with_hint("check that every file in the repository is readable"),
                )
            })?;
        let size = archive.len();
        self.objects
            .put(&keys::source_archive(&d.id), archive.into())
            .await?;
        let at = fetched
            .commit
            .as_deref()
            .map(|c| format!(" at commit {}", &c[..c.len().min(12)]))
            .unwrap_or_default();
        r.step_completed(
            step,
            format!("Fetched the source{at} ({} packed)", human_size(size)),
        );
        // A patched checkout is no longer what its commit names.
        let cache = CacheKey::for_source(d, &fetched).filter(|_| !patched);
        Ok(Checkout {
            _root: root,
            app_dir,
            fetched,
            cache,
        })
    }

    /// Writes the dependencies the user accepted (a fix) into the app's manifest, saying so
    /// in the progress; whether the checkout changed.
    async fn accepted_dependencies(
        &self,
        ctx: &StageContext,
        app_dir: &Path,
    ) -> Result<bool, StageError> {
        let dependencies = match &ctx.deployment.plan_override {
            Some(change) if !change.dependencies.is_empty() => change.dependencies.clone(),
            _ => return Ok(false),
        };
        let dir = app_dir.to_path_buf();
        let applied = tokio::task::spawn_blocking(move || patch::apply(&dir, &dependencies))
            .await?
            .map_err(StageError::Failed)?;
        for a in &applied {
            ctx.reporter
                .reasoning(Step::RepositoryAccess, a.message.clone());
        }
        Ok(applied.iter().any(|a| a.changed))
    }

    /// An uploaded source: its archive, checked again as it is unpacked.
    async fn unpack_upload(&self, key: &str, dest: &Path) -> Result<FetchedSource, StageError> {
        let bytes = self.objects.get(key).await?.ok_or_else(|| {
            StageError::Transient(format!("the uploaded source {key} is missing"))
        })?;
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || {
            devgem_archive::unpack(&bytes, &dest, &devgem_archive::Limits::default())
        })
        .await?
        .map_err(|e| {
            StageError::Failed(
                Failure::new(Step::RepositoryAccess, format!("the uploaded source: {e}"))
                    .with_hint("upload the app's folder again"),
            )
        })?;
        Ok(FetchedSource { commit: None })
    }

    /// Step 2: detect the language, framework, commands and port, with the reasons.
    async fn code_analysis(
        &self,
        ctx: &StageContext,
        checkout: &Checkout,
    ) -> Result<Analysis, StageError> {
        let (d, r) = (&ctx.deployment, &ctx.reporter);
        let step = Step::CodeAnalysis;
        r.step_started(step, "Detecting language, framework, commands and port");
        let cached = match &checkout.cache {
            Some(key) => self.cached::<Analysis>(key, "analysis").await,
            None => None,
        };
        let analysis = match cached {
            Some(analysis) => {
                r.reasoning(step, reused(checkout, "analysis"));
                analysis
            }
            None => {
                let dir = checkout.app_dir.clone();
                let analysis =
                    tokio::task::spawn_blocking(move || devgem_analyzer::analyze(&dir)).await?;
                if analysis.is_recognized()
                    && let Some(key) = &checkout.cache
                {
                    self.keep(key, "analysis", &analysis).await;
                }
                analysis
            }
        };
        for line in &analysis.evidence {
            r.reasoning(step, line.clone());
        }
        if !analysis.is_recognized() {
            return Err(StageError::Failed(unrecognised(&checkout.app_dir)));
        }
        self.objects
            .put(&keys::analysis(&d.id), to_json(&analysis).into())
            .await?;
        r.step_completed(step, format!("Detected {}", describe(&analysis)));
        Ok(analysis)
    }

    /// Step 3: plan the build and render the Dockerfile from the plan.
    async fn dockerfile_generation(
        &self,
        ctx: &StageContext,
        checkout: &Checkout,
        analysis: &Analysis,
    ) -> Result<Rendered, StageError> {
        let (d, r) = (&ctx.deployment, &ctx.reporter);
        let step = Step::DockerfileGeneration;
        r.step_started(step, "Planning the build and writing the Dockerfile");
        let mut plan = plan_for(d, analysis)
            .map_err(|e| StageError::Failed(Failure::new(step, e.reason).with_hint(e.hint)))?;
        if let Some(reviewer) = &self.reviewer
            && review::wants_review(analysis)
        {
            self.second_opinion(ctx, reviewer, checkout, analysis, &mut plan)
                .await;
        }
        let dockerfile = devgem_analyzer::render_dockerfile(&plan);
        self.objects
            .put(&keys::plan(&d.id), to_json(&plan).into())
            .await?;
        self.objects
            .put(
                &keys::dockerfile(&d.id),
                dockerfile.clone().into_bytes().into(),
            )
            .await?;
        if let Some(change) = d.plan_override.as_ref().filter(|c| !c.is_empty()) {
            r.reasoning(
                step,
                format!("Using the change you accepted: {}", change.describe()),
            );
        }
        r.reasoning(step, format!("Start command: {}", plan.start_command));
        r.step_completed(
            step,
            format!(
                "Wrote a {}-line Dockerfile from {}",
                dockerfile.lines().count(),
                plan.base_image
            ),
        );
        Ok(Rendered { plan, dockerfile })
    }

    /// Asks the model to review an analysis the rules are unsure of, within the bound, and
    /// applies the checked corrections to the plan. Every outcome is told to the user: each
    /// correction with both answers, each refused part with why, or that the rules stand.
    async fn second_opinion(
        &self,
        ctx: &StageContext,
        reviewer: &Advisor,
        checkout: &Checkout,
        analysis: &Analysis,
        plan: &mut BuildPlan,
    ) {
        let (d, r) = (&ctx.deployment, &ctx.reporter);
        let step = Step::DockerfileGeneration;
        let name = reviewer.name();
        let dir = checkout.app_dir.clone();
        let for_brief = analysis.clone();
        let Ok(brief) = tokio::task::spawn_blocking(move || {
            let view = devgem_analyzer::repo::Repo::load(&dir, &Default::default());
            review::brief(&view, &for_brief)
        })
        .await
        else {
            return;
        };
        let text = match reviewer.ask(review::REVIEW_INSTRUCTIONS, brief).await {
            Ok(text) => text,
            Err(e) => {
                r.reasoning(
                    step,
                    format!("{name} {e} to review the analysis; the rules decide"),
                );
                return;
            }
        };
        let model_review = match review::parse_review(&text) {
            Ok(v) => v,
            Err(e) => {
                r.reasoning(
                    step,
                    format!("{name} answered no usable review ({e}); the rules decide"),
                );
                return;
            }
        };
        let kept = user_choices(d);
        let (changed, refused) = review::apply_review(plan, &model_review, &kept);
        if changed.is_empty() && refused.is_empty() {
            r.reasoning(
                step,
                format!("{name} reviewed the analysis and agrees with the rules"),
            );
        }
        for c in &changed {
            r.reasoning(step, format!("Second opinion from {name}: {c}"));
        }
        for x in &refused {
            r.reasoning(
                step,
                format!("Not taken from {name}: its {} ({})", x.field, x.reason),
            );
        }
        if !changed.is_empty()
            && let Some(reason) = model_review.reason.as_deref().filter(|s| !s.is_empty())
        {
            let reason: String = reason.chars().take(300).collect();
            r.reasoning(step, format!("{name}'s reason: {reason}"));
        }
    }

    /// The cached `part` for `key`; a missing, unreadable or mismatched one is a miss.
    async fn cached<T: serde::de::DeserializeOwned>(
        &self,
        key: &CacheKey,
        part: &str,
    ) -> Option<T> {
        let bytes = self.objects.get(&key.object(part)).await.ok()??;
        let cached: Cached<T> = serde_json::from_slice(&bytes).ok()?;
        (cached.key == *key).then_some(cached.value)
    }

    /// Keeps `value` for later deployments of the same commit. A failed write only costs
    /// the next deployment a walk, so it does not fail this one.
    async fn keep<T: serde::Serialize>(&self, key: &CacheKey, part: &str, value: &T) {
        let cached = Cached {
            key: key.clone(),
            value,
        };
        if let Err(e) = self
            .objects
            .put(&key.object(part), to_json(&cached).into())
            .await
        {
            tracing::warn!(error = %e, "could not cache the {part} of this commit");
        }
    }
}

/// The line saying a cached result was used.
fn reused(checkout: &Checkout, what: &str) -> String {
    let commit = checkout.fetched.commit.as_deref().unwrap_or("");
    format!(
        "reused the {what} of commit {} made by an earlier deployment (the source is the same, so the {what} is too)",
        &commit[..commit.len().min(12)]
    )
}

/// `dir` of the app, as a path from the repository root when the app is in folder `sub`.
fn within(sub: &str, dir: &str) -> String {
    match dir {
        "" | "." => sub.to_string(),
        inner => format!("{sub}/{inner}"),
    }
}

/// The plan for the analysed app, run from the requested folder of the repository.
fn plan_for(d: &Deployment, analysis: &Analysis) -> Result<BuildPlan, devgem_analyzer::PlanError> {
    let mut plan = devgem_analyzer::plan(analysis)?;
    if let Some(sub) = &d.source.subdir {
        let sub = sub.trim_end_matches('/');
        plan.app_dir = within(sub, &plan.app_dir);
        plan.workspace_root = plan.workspace_root.as_deref().map(|dir| within(sub, dir));
    }
    // The user accepted these changes (a fix); they win over what was detected.
    if let Some(change) = &d.plan_override {
        if let Some(command) = &change.start_command {
            plan.start_command = command.clone();
            plan.native_start_command = Some(command.clone());
        }
        if let Some(port) = change.port {
            plan.deploy_port = port;
        }
        for p in &change.system_packages {
            if !plan.system_packages.iter().any(|q| q == p.as_str()) {
                plan.system_packages.push(p.to_string());
            }
        }
        for p in &change.build_packages {
            if !plan.build_system_packages.iter().any(|q| q == p.as_str()) {
                plan.build_system_packages.push(p.to_string());
            }
        }
        // package.json gained a dependency its lockfile lacks, which `npm ci` refuses.
        let npm_added = change
            .dependencies
            .iter()
            .any(|d| d.manifest() == Manifest::PackageJson);
        if npm_added
            && let Some(rest) = plan
                .install_command
                .as_deref()
                .and_then(|c| c.strip_prefix("npm ci"))
        {
            plan.install_command = Some(format!("npm install{rest}"));
        }
    }
    Ok(plan)
}

/// The parts of the plan the user decided (an accepted fix): a model may not change them.
fn user_choices(d: &Deployment) -> Vec<review::ReviewedField> {
    let mut kept = Vec::new();
    if let Some(change) = &d.plan_override {
        if change.start_command.is_some() {
            kept.push(review::ReviewedField::StartCommand);
        }
        if change.port.is_some() {
            kept.push(review::ReviewedField::Port);
        }
    }
    kept
}

/// Step 4: compare the variables the code reads with the ones the user set.
fn environment_config(ctx: &StageContext, analysis: &Analysis, plan: &BuildPlan) {
    let (d, r) = (&ctx.deployment, &ctx.reporter);
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
}

impl Analyze {
    /// Step 5: scan the source and the Dockerfile; a blocking finding fails the deployment.
    async fn security_scan(
        &self,
        ctx: &StageContext,
        checkout: &Checkout,
        rendered: &Rendered,
    ) -> Result<(), StageError> {
        let r = &ctx.reporter;
        let step = Step::SecurityScan;
        r.step_started(step, "Scanning the source and the Dockerfile");
        // The scan reads the plan and the Dockerfile too: the key holds only while they are the
        // ones this commit's analysis always gives (no folder of the user's choosing changed them).
        let cached = match &checkout.cache {
            Some(key) => self
                .cached::<(BuildPlan, String, ScanReport)>(key, "scan")
                .await
                .filter(|(plan, dockerfile, _)| {
                    *plan == rendered.plan && *dockerfile == rendered.dockerfile
                })
                .map(|(_, _, report)| report),
            None => None,
        };
        let report = match cached {
            Some(report) => {
                r.reasoning(step, reused(checkout, "scan"));
                report
            }
            None => {
                let (dir, plan, dockerfile) = (
                    checkout.app_dir.clone(),
                    rendered.plan.clone(),
                    rendered.dockerfile.clone(),
                );
                let report = tokio::task::spawn_blocking(move || {
                    devgem_analyzer::scan(&dir, &plan, &dockerfile)
                })
                .await?;
                if let Some(key) = &checkout.cache {
                    let kept = (&rendered.plan, &rendered.dockerfile, &report);
                    self.keep(key, "scan", &kept).await;
                }
                report
            }
        };
        let allowed = ctx.deployment.allow_findings;
        let blocking: Vec<_> = report.blocking().collect();
        for f in &report.findings {
            let overridden = if blocking.contains(&f) {
                " [high, allowed by the owner]"
            } else {
                ""
            };
            if overridden.is_empty() || allowed {
                r.warning(
                    step,
                    format!(
                        "{}: {}{overridden} (fix: {})",
                        location(f),
                        f.message,
                        f.fix
                    ),
                );
            }
        }
        if !blocking.is_empty() && !allowed {
            // Every blocking finding at once, so one round of fixes is enough.
            let listed: Vec<String> = blocking
                .iter()
                .map(|f| format!("{}: {}", location(f), f.message))
                .collect();
            let fixes: Vec<&str> = blocking.iter().map(|f| f.fix.as_str()).collect();
            return Err(StageError::Failed(
                Failure::new(
                    step,
                    format!(
                        "{} high-severity finding(s): {}",
                        blocking.len(),
                        listed.join("; ")
                    ),
                )
                .with_hint(format!(
                    "{}; or, if they are false alarms, deploy again with --allow-findings \
                     (API: \"allow_findings\": true)",
                    fixes.join("; ")
                )),
            ));
        }
        let summary = if blocking.is_empty() {
            format!("{} finding(s), none blocking", report.findings.len())
        } else {
            format!(
                "{} finding(s); {} high-severity allowed by the owner",
                report.findings.len(),
                blocking.len()
            )
        };
        r.step_completed(step, summary);
        Ok(())
    }
}

/// Why nothing deployable was found, and what to add.
fn unrecognised(app_dir: &Path) -> Failure {
    let reason = if is_empty_dir(app_dir) {
        "the repository is empty"
    } else {
        "no web app was recognised in the source"
    };
    Failure::new(Step::CodeAnalysis, reason).with_hint(
        "add a manifest DevGem recognises (requirements.txt or pyproject.toml, package.json, \
         index.html, go.mod, Cargo.toml, pom.xml, a Dockerfile...) or point at the app's folder",
    )
}

fn to_json(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
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
