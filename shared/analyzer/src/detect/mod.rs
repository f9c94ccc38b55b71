//! Runs every language detector over an app folder, ranks them by score, and finds the
//! services of a monorepo. All detectors run: the best score wins and the others are the
//! runners-up, so the order below decides nothing but ties.

mod go;
mod jvm;
mod node;
mod others;
mod python;
mod python_pins;
mod rust;
mod workspace;

use crate::common::Detected;
use crate::repo::{App, Repo};
use crate::{Analysis, Candidate, Language, PortIssue, Service, Template};

pub use node::{
    ASSET_BUILD_IMAGE, asset_build, asset_manifests, asset_package_manager, dev_runner,
};

type Detector = fn(&App) -> Option<Detected>;

/// Every detector. Ties are broken by this order.
const DETECTORS: &[Detector] = &[
    node::detect_node,
    node::detect_bun,
    node::detect_deno,
    python::detect,
    go::detect,
    rust::detect,
    jvm::detect_maven,
    jvm::detect_gradle,
    jvm::detect_java_source,
    others::detect_php,
    others::detect_ruby,
    others::detect_dotnet,
    others::detect_elixir,
    others::detect_static,
];

/// Analyses the app in folder `app` (no monorepo discovery).
pub fn analyze_app(app: &App) -> Analysis {
    let mut results: Vec<Detected> = DETECTORS.iter().filter_map(|d| d(app)).collect();
    let dockerfile = existing_dockerfile(app);
    // The repository's own Dockerfile says what runs the app: the manifest of that runtime
    // wins over the others beside it (a package.json of dev tools next to a Python service).
    if results.len() > 1
        && let Some((path, content)) = &dockerfile
        && let Some((language, why)) = dockerfile_runtime(content)
    {
        for r in results.iter_mut() {
            if r.analysis.language == Some(language) {
                r.evidence(format!("{path} runs {language} ({why})"));
            } else {
                r.score = (r.score - DOCKERFILE_VOTE).max(0.0);
            }
        }
    }
    // Stable sort: highest score first, ties in detector order.
    results.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut analysis = if results.is_empty() {
        let mut a = Analysis::unknown();
        if dockerfile.is_some() {
            a.language = Some(Language::Docker);
            a.confidence = 0.5;
            a.evidence
                .push("no language manifest, but the repository has its own Dockerfile".into());
        } else {
            a.evidence.push(format!(
                "no manifest recognised in {} (looked for package.json, requirements.txt, pyproject.toml, go.mod, Cargo.toml, pom.xml, build.gradle, composer.json, Gemfile, *.csproj, mix.exs, deno.json, index.html, Staticfile, and a lone server.js, main.go or Main.java)",
                app.dir()
            ));
        }
        a
    } else {
        let winner = results.remove(0);
        let mut a = winner.analysis;
        let runner_up = results.first().map(|r| r.score).unwrap_or(0.0);
        // Confidence: the winner's score, reduced when a runner-up is close.
        let margin = (winner.score - runner_up).clamp(0.0, 1.0);
        a.confidence = round2((winner.score * (0.6 + 0.4 * margin.min(0.5) * 2.0)).min(1.0));
        a.candidates = results
            .into_iter()
            // Every detector's analysis names its language (`Detected::new`).
            .filter_map(|r| {
                Some(Candidate {
                    language: r.analysis.language?,
                    framework: r.analysis.framework,
                    score: round2(r.score),
                })
            })
            .collect();
        a.evidence.insert(
            0,
            format!(
                "detected {}{} with score {:.2}",
                a.language_name(),
                a.framework
                    .as_deref()
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default(),
                winner.score
            ),
        );
        a
    };
    analysis.details.app_dir = app.dir().to_string();
    analysis.framework_icon = analysis
        .framework
        .as_deref()
        .and_then(crate::icon::framework_icon)
        .map(str::to_string);
    // A Cargo workspace member is built and run from the workspace root (its detector lists
    // the workspace's manifests, root-relative).
    if analysis.details.env.remove("DEVGEM_BUILD_ROOT").is_some() {
        analysis.details.app_dir = ".".into();
    }
    if let Some((path, content)) = dockerfile {
        apply_existing_dockerfile(&mut analysis, &path, content);
    }
    if let Some(issue) = &analysis.details.port_issue {
        analysis.evidence.push(format!(
            "port problem at {}:{}: {} — fix: {}",
            issue.file, issue.line, issue.message, issue.fix
        ));
    }
    analysis
}

/// What the other languages lose when the repository's own Dockerfile runs one of them.
const DOCKERFILE_VOTE: f64 = 0.3;

/// The runtime a Dockerfile runs, from its start command (`CMD`/`ENTRYPOINT`) first, then from
/// its base images (the last stage's first): the language and the line that says so.
fn dockerfile_runtime(content: &str) -> Option<(Language, String)> {
    let mut images: Vec<&str> = vec![];
    let mut command: Option<&str> = None;
    for line in content.lines().map(str::trim) {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("FROM ") {
            if let Some(image) = line[5..].split_whitespace().find(|w| !w.starts_with("--")) {
                images.push(image);
            }
        } else if upper.starts_with("CMD ") || upper.starts_with("ENTRYPOINT ") {
            command = line.split_once(' ').map(|(_, c)| c.trim());
        }
    }
    const COMMANDS: &[(&str, Language)] = &[
        ("gunicorn", Language::Python),
        ("uvicorn", Language::Python),
        ("python", Language::Python),
        ("streamlit", Language::Python),
        ("deno", Language::Deno),
        ("bun", Language::Bun),
        ("node", Language::Node),
        ("npm", Language::Node),
        ("java", Language::Java),
        ("php", Language::Php),
        ("apache2-foreground", Language::Php),
        ("bundle", Language::Ruby),
        ("rails", Language::Ruby),
        ("dotnet", Language::Dotnet),
    ];
    if let Some(c) = command {
        let words: Vec<&str> = c
            .split(|ch: char| ch.is_whitespace() || "[],\"'".contains(ch))
            .filter(|w| !w.is_empty() && !["sh", "-c", "exec"].contains(w))
            .collect();
        if let Some(first) = words.first() {
            let name = first.rsplit('/').next().unwrap_or(first);
            if let Some((_, language)) = COMMANDS
                .iter()
                .find(|(cmd, _)| name == *cmd || name.starts_with(&format!("{cmd}3")))
            {
                return Some((*language, format!("its start command is `{c}`")));
            }
        }
    }
    const IMAGES: &[(&str, Language)] = &[
        ("python", Language::Python),
        ("node", Language::Node),
        ("oven/bun", Language::Bun),
        ("denoland/deno", Language::Deno),
        ("golang", Language::Go),
        ("rust", Language::Rust),
        ("eclipse-temurin", Language::Java),
        ("openjdk", Language::Java),
        ("maven", Language::Java),
        ("gradle", Language::Java),
        ("php", Language::Php),
        ("composer", Language::Php),
        ("ruby", Language::Ruby),
        ("mcr.microsoft.com/dotnet", Language::Dotnet),
        ("elixir", Language::Elixir),
        ("hexpm/elixir", Language::Elixir),
    ];
    images.iter().rev().find_map(|image| {
        let name = image
            .trim_start_matches("docker.io/")
            .trim_start_matches("library/");
        let name = name.split([':', '@']).next().unwrap_or(name);
        IMAGES
            .iter()
            .find(|(prefix, _)| name == *prefix)
            .map(|(_, language)| (*language, format!("FROM {image}")))
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn existing_dockerfile<'a>(app: &App<'a>) -> Option<(String, &'a str)> {
    let path = app.first_of(&["Dockerfile", "dockerfile"])?;
    match app.text(path) {
        Some(t) => Some((app.full(path), t)),
        None => None,
    }
}

/// The repository's own Dockerfile is used as is; its CMD, EXPOSE and USER are checked.
fn apply_existing_dockerfile(a: &mut Analysis, path: &str, content: &str) {
    a.details.existing_dockerfile = Some(path.to_string());
    a.details.existing_dockerfile_content = Some(content.to_string());
    a.details.template = Some(Template::Dockerfile);
    a.evidence.push(format!(
        "{path} exists: it is used as is (the detected plan is kept for native runs)"
    ));
    let mut expose = None;
    let mut cmd = None;
    for (i, line) in content.lines().enumerate() {
        let l = line.trim();
        let upper = l.to_ascii_uppercase();
        if upper.starts_with("EXPOSE ") {
            expose = l[7..]
                .split_whitespace()
                .next()
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse::<u16>().ok())
                .map(|p| (p, i as u32 + 1));
        }
        if upper.starts_with("CMD ") || upper.starts_with("ENTRYPOINT ") {
            cmd = Some(
                l.split_once(' ')
                    .map(|x| x.1)
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            );
        }
    }
    if let Some((port, line)) = expose {
        a.dev_port.get_or_insert(port);
        if port != 8080 && !content.contains("$PORT") && !content.contains("${PORT") {
            a.details.port_issue.get_or_insert(PortIssue {
                file: path.to_string(),
                line,
                message: format!(
                    "the Dockerfile exposes port {port}; Cloud Run sends traffic to $PORT (8080)"
                ),
                fix: format!(
                    "make the server listen on ${{PORT:-8080}} (or deploy with --port {port})"
                ),
                port: Some(port),
            });
        }
    }
    if a.start_command.is_none()
        && let Some(c) = cmd
    {
        a.start_command = Some(exec_form_to_shell(&c));
    }
}

fn exec_form_to_shell(c: &str) -> String {
    match serde_json::from_str::<Vec<String>>(c) {
        Ok(parts) => parts.join(" "),
        Err(_) => c.to_string(),
    }
}

/// Folders that may hold a deployable service of a monorepo, from declared workspaces and
/// conventional layouts.
fn service_dirs(repo: &Repo) -> Vec<(String, String)> {
    let root = repo.app("");
    let mut out: Vec<(String, String)> = vec![];
    let mut push = |dir: String, why: String| {
        let dir = dir
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if !dir.is_empty() && dir != "." && !out.iter().any(|(d, _)| *d == dir) {
            out.push((dir, why));
        }
    };
    let expand = |pattern: &str| -> Vec<String> {
        let p = pattern.trim_start_matches("./").trim_end_matches('/');
        if let Some(prefix) = p.strip_suffix("/*").or_else(|| p.strip_suffix("/**")) {
            root.subdirs(prefix)
                .into_iter()
                .map(|d| format!("{prefix}/{d}"))
                .collect()
        } else if p.contains('*') {
            vec![]
        } else {
            vec![p.to_string()]
        }
    };
    // npm / yarn / bun / pnpm workspaces.
    for (d, why) in workspace::declared_dirs(repo) {
        push(d, why);
    }
    // go.work
    if let Some(t) = root.text("go.work") {
        for l in t.lines() {
            let l = l.trim().trim_start_matches("use").trim();
            let l = l.trim_matches(|c| c == '(' || c == ')').trim();
            if l.starts_with("./") || (l.starts_with('.') && l.len() > 1) {
                push(l.to_string(), "go.work".into());
            }
        }
    }
    // Cargo workspace.
    if let Some(t) = root.text("Cargo.toml")
        && let Ok(v) = t.parse::<toml::Table>()
        && let Some(members) = v
            .get("workspace")
            .and_then(|w| w.get("members"))
            .and_then(|m| m.as_array())
    {
        for p in members.iter().filter_map(|m| m.as_str()) {
            for d in expand(p) {
                push(d, format!("Cargo workspace member \"{p}\""));
            }
        }
    }
    // Conventional layouts.
    for parent in ["apps", "services", "packages"] {
        for d in root.subdirs(parent) {
            push(format!("{parent}/{d}"), format!("{parent}/* layout"));
        }
    }
    for d in [
        "frontend", "backend", "web", "api", "server", "client", "app",
    ] {
        if root.has_dir(d) {
            push(d.to_string(), "frontend/backend layout".into());
        }
    }
    out
}

/// Analyses the checkout root and lists monorepo services.
pub fn analyze_root(repo: &Repo) -> Analysis {
    let root_app = repo.app("");
    let mut root = analyze_app(&root_app);
    let workspace_root = is_workspace_root(&root_app);
    let mut services: Vec<Service> = vec![];
    for (dir, why) in service_dirs(repo) {
        let app = repo.app(&dir);
        // Only folders with their own manifest count (a stray index.html does not make a service).
        let a = analyze_app(&app);
        // A package whose only start is its `main` is a library, not a service.
        let library = a.framework.is_none()
            && a.evidence
                .iter()
                .any(|e| e.starts_with(node::MAIN_EVIDENCE));
        if a.is_recognized()
            && a.start_command.is_some()
            && !library
            && has_own_project_file(&app)
            && (a.language != Some(Language::Static) || is_service_dir(&dir))
        {
            let mut a = a;
            a.evidence.push(format!("service found through {why}"));
            workspace::as_member(repo, &dir, &mut a);
            services.push(Service {
                path: dir,
                analysis: a,
            });
        }
    }
    let root_deployable = root.is_recognized() && root.start_command.is_some() && !workspace_root;
    if !root_deployable && !services.is_empty() {
        // A monorepo whose root is not itself an app: report the most confident service and
        // list them all; deploying picks one by path.
        let best = services
            .iter()
            .enumerate()
            .max_by(|(ia, a), (ib, b)| {
                a.analysis
                    .confidence
                    .total_cmp(&b.analysis.confidence)
                    .then(ib.cmp(ia))
            })
            .map(|(i, _)| i)
            .unwrap_or(0);
        let chosen = services[best].clone();
        let mut top = chosen.analysis;
        top.evidence.insert(
            0,
            format!(
                "monorepo with {} deployable services ({}); the default is {} — pick another with its path",
                services.len(),
                services
                    .iter()
                    .map(|s| s.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                chosen.path
            ),
        );
        if let Some(language) = root.language {
            top.candidates.insert(
                0,
                Candidate {
                    language,
                    framework: root.framework.clone(),
                    score: root.confidence,
                },
            );
        }
        root = top;
    }
    root.services = services;
    for w in &repo.warnings {
        root.evidence.push(format!("warning: {w}"));
    }
    if repo.truncated {
        root.evidence.push(
            "warning: the walk stopped at a size limit; the analysis used what it read".into(),
        );
    }
    root
}

/// Files that make a folder a project of its own. Without one, a folder of sources (a Python
/// package named `app`, a Go package named `api`) is part of the app around it, not a service.
const PROJECT_FILES: &[&str] = &[
    "package.json",
    "pyproject.toml",
    "Pipfile",
    "setup.py",
    "go.mod",
    "Cargo.toml",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "composer.json",
    "Gemfile",
    "mix.exs",
    "deno.json",
    "deno.jsonc",
    "Procfile",
    "Dockerfile",
    "index.html",
];

fn has_own_project_file(app: &App) -> bool {
    app.files_in("").iter().any(|f| {
        PROJECT_FILES.contains(&f.as_str())
            || f.ends_with(".csproj")
            || f.ends_with(".fsproj")
            || (f.starts_with("requirements") && f.ends_with(".txt"))
    })
}

fn is_service_dir(dir: &str) -> bool {
    ["frontend", "web", "client", "app"].contains(&dir) || dir.starts_with("apps/")
}

fn is_workspace_root(app: &App) -> bool {
    if app.has("go.work")
        || app.has("pnpm-workspace.yaml")
        || app.has("turbo.json")
        || app.has("nx.json")
    {
        return true;
    }
    if let Some(t) = app.text("package.json")
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(t)
        && v.get("workspaces").is_some()
    {
        return true;
    }
    if let Some(t) = app.text("Cargo.toml")
        && let Ok(v) = t.parse::<toml::Table>()
        && v.contains_key("workspace")
        && !v.contains_key("package")
    {
        return true;
    }
    false
}
