//! One snapshot of the analysis and one of the Dockerfile per fixture app in
//! `tests/fixtures/apps/`, so every change in behaviour shows as a reviewable diff.

use std::path::PathBuf;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/apps")
}

fn fixtures() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

#[test]
fn at_least_45_fixtures() {
    assert!(fixtures().len() >= 45, "{} fixtures", fixtures().len());
}

#[test]
fn every_fixture_is_recognised_and_planned() {
    for (name, path) in fixtures() {
        let a = devgem_analyzer::analyze(&path);
        assert!(a.is_recognized(), "{name}: not recognised");
        let plan = devgem_analyzer::plan(&a).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plan.deploy_port, 8080, "{name}");
        assert_eq!(
            plan.env.get("PORT").map(String::as_str),
            Some("8080"),
            "{name}"
        );
        let start = plan.native_start();
        assert!(
            start.contains("$PORT") || a.reads_port_env || a.details.port_issue.is_some(),
            "{name}: start command `{start}` ignores $PORT and the code does not read it"
        );
        let dockerfile = devgem_analyzer::render_dockerfile(&plan);
        if plan.existing_dockerfile.is_none() {
            assert!(!dockerfile.contains("alpine"), "{name}: Alpine base");
            assert!(dockerfile.contains("USER "), "{name}: no USER");
            assert!(dockerfile.contains("PORT=8080"), "{name}: no PORT=8080");
            // A generated Dockerfile never carries a secret.
            let scan = devgem_analyzer::scan(&path, &plan, &dockerfile);
            assert_eq!(scan.blocking().count(), 0, "{name}: {:?}", scan.findings);
        }
        let ignore = devgem_analyzer::render_dockerignore(&plan);
        // A workspace's context is its root: every package's node_modules stays out.
        let modules = if plan.workspace_root.is_some() {
            "**/node_modules"
        } else {
            "node_modules"
        };
        for must in [".git", ".env", modules] {
            assert!(
                ignore.lines().any(|l| l == must),
                "{name}: .dockerignore lacks {must}"
            );
        }
    }
}

#[test]
fn snapshots() {
    for (name, path) in fixtures() {
        let analysis = devgem_analyzer::analyze(&path);
        insta::assert_json_snapshot!(format!("{name}__analysis"), analysis);
        if let Ok(plan) = devgem_analyzer::plan(&analysis) {
            insta::assert_snapshot!(
                format!("{name}__dockerfile"),
                devgem_analyzer::render_dockerfile(&plan)
            );
        }
    }
}

/// A Dockerfile's instructions, continuation lines joined, comments dropped, grouped by stage.
fn stages(dockerfile: &str) -> Vec<Vec<String>> {
    let mut instructions: Vec<String> = vec![];
    let mut pending = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                instructions.push(std::mem::take(&mut pending));
            }
        }
    }
    let mut out: Vec<Vec<String>> = vec![];
    for i in instructions {
        if i.starts_with("FROM ") || out.is_empty() {
            out.push(vec![]);
        }
        if let Some(stage) = out.last_mut() {
            stage.push(i);
        }
    }
    out
}

/// Commands that install an app's dependencies from its manifests.
const INSTALLS: &[&str] = &[
    "pip install",
    "poetry install",
    "uv sync",
    "pipenv install",
    "pdm install",
    "npm ci",
    "npm install",
    "yarn install",
    "pnpm install",
    "bun install",
    "go mod download",
    "cargo fetch",
    "cargo build",
    "mvn ",
    "gradle ",
    "composer install",
    "bundle install",
    "mix deps.get",
    "dotnet restore",
    "deno install",
    "deno cache",
];

#[test]
fn every_generated_dockerfile_follows_the_rules() {
    let mut checked = 0;
    let mut problems: Vec<String> = vec![];
    for (name, path) in fixtures() {
        let analysis = devgem_analyzer::analyze(&path);
        let Ok(plan) = devgem_analyzer::plan(&analysis) else {
            continue;
        };
        if plan.existing_dockerfile.is_some() {
            continue;
        }
        checked += 1;
        let dockerfile = devgem_analyzer::render_dockerfile(&plan);
        let stages = stages(&dockerfile);
        let last = stages.last().expect("a stage");
        for stage in &stages {
            let from = &stage[0];
            assert!(
                !from.contains("alpine"),
                "{name}: {from}: Debian-based images only"
            );
            // Dependencies are installed from the manifests before the sources arrive, so a
            // change to the code does not invalidate the dependency layer.
            let sources = stage.iter().position(|i| i.starts_with("COPY . "));
            let install = stage
                .iter()
                .position(|i| i.starts_with("RUN ") && INSTALLS.iter().any(|c| i.contains(c)));
            if let (Some(sources), Some(install)) = (sources, install)
                && install > sources
            {
                problems.push(format!(
                    "{name}: `{}` runs after the sources are copied in ({from})",
                    stage[install]
                ));
            }
        }
        let user = last
            .iter()
            .rev()
            .find_map(|i| i.strip_prefix("USER "))
            .unwrap_or_else(|| panic!("{name}: the final stage sets no USER"));
        assert!(
            !matches!(user.trim(), "root" | "0" | "0:0"),
            "{name}: the app runs as {user}"
        );
        assert!(
            last.iter()
                .any(|i| i.starts_with("ENV ") && i.contains("PORT=8080")),
            "{name}: the final stage does not set PORT=8080"
        );
        // nginx images start their server themselves.
        assert!(
            last[0].contains("nginx")
                || last
                    .iter()
                    .any(|i| i.starts_with("CMD ") || i.starts_with("ENTRYPOINT ")),
            "{name}: the final stage starts nothing"
        );
        let settings = last.iter().filter(|i| i.starts_with("ENV ")).cloned();
        let settings: String = settings.collect::<Vec<_>>().join(" ");
        // Production settings where the app itself runs on the language's runtime.
        if last[0].starts_with("FROM python:") {
            assert!(settings.contains("PYTHONUNBUFFERED=1"), "{name}");
        }
        if last[0].starts_with("FROM node:") {
            assert!(settings.contains("NODE_ENV=production"), "{name}");
        }
        if stages.len() == 1 {
            assert!(
                plan.build_command.is_none(),
                "{name}: a build step but no separate build stage"
            );
        }
    }
    assert!(
        checked >= 45,
        "only {checked} generated Dockerfiles checked"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
