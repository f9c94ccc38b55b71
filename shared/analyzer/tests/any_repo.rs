//! The layouts that used to fail (issue 11), one class at a time: each fixture app of a class
//! must be detected as what runs it and planned the way it runs. The snapshots hold the whole
//! analysis; these tests state what a user would notice.

use devgem_analyzer::{Analysis, BuildPlan, Language, PackageManager, Template};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/apps")
        .join(name)
}

fn analyze(name: &str) -> (Analysis, BuildPlan) {
    let a = devgem_analyzer::analyze(&fixture(name));
    let plan = devgem_analyzer::plan(&a).unwrap_or_else(|e| panic!("{name}: {e}"));
    (a, plan)
}

/// What a fixture must analyze as: its language, framework and native start command.
struct Expect {
    fixture: &'static str,
    language: Language,
    framework: Option<&'static str>,
    start: &'static str,
}

const fn expect(
    fixture: &'static str,
    language: Language,
    framework: Option<&'static str>,
    start: &'static str,
) -> Expect {
    Expect {
        fixture,
        language,
        framework,
        start,
    }
}

fn check(class: &[Expect]) {
    for e in class {
        let (a, plan) = analyze(e.fixture);
        assert_eq!(
            (a.language, a.framework.as_deref()),
            (Some(e.language), e.framework),
            "{}: {:#?}",
            e.fixture,
            a.evidence
        );
        assert_eq!(plan.native_start(), e.start, "{}", e.fixture);
        let dockerfile = devgem_analyzer::render_dockerfile(&plan);
        assert!(dockerfile.contains("EXPOSE 8080"), "{}", e.fixture);
    }
}

const STATIC_SERVER: &str = "python3 -m http.server \"$PORT\" --bind 0.0.0.0 --directory";

/// Apps with no manifest at all.
const NO_MANIFEST: &[Expect] = &[
    expect("node-lone-server", Language::Node, None, "node server.js"),
    expect(
        "node-empty-package-json",
        Language::Node,
        None,
        "node server.js",
    ),
    expect(
        "node-no-start-script",
        Language::Node,
        Some("express"),
        "node server.js",
    ),
    expect("go-lone-main", Language::Go, None, "./server"),
    expect("java-lone-main", Language::Java, None, "java -cp out Main"),
    expect(
        "static-dist",
        Language::Static,
        None,
        "python3 -m http.server \"$PORT\" --bind 0.0.0.0 --directory dist",
    ),
    expect(
        "static-build-folder",
        Language::Static,
        None,
        "python3 -m http.server \"$PORT\" --bind 0.0.0.0 --directory build",
    ),
    expect(
        "staticfile-root",
        Language::Static,
        None,
        "python3 -m http.server \"$PORT\" --bind 0.0.0.0 --directory site",
    ),
];

/// Decoys: a manifest that is there but does not run the app.
const DECOYS: &[Expect] = &[
    expect(
        "deno-with-package-json",
        Language::Deno,
        Some("hono"),
        "deno task start",
    ),
    expect(
        "deno-package-json-only",
        Language::Deno,
        None,
        "deno run --allow-net --allow-env server.ts",
    ),
    expect(
        "laravel-vite",
        Language::Php,
        Some("laravel"),
        "php artisan serve --host=0.0.0.0 --port=$PORT",
    ),
    expect(
        "symfony-encore",
        Language::Php,
        Some("symfony"),
        "php -S 0.0.0.0:$PORT -t public",
    ),
    expect(
        "fastapi-dockerfile-tooling",
        Language::Python,
        Some("fastapi"),
        "uvicorn main:app --host 0.0.0.0 --port $PORT --proxy-headers --forwarded-allow-ips '*'",
    ),
    expect("go-dockerfile-tooling", Language::Go, None, "./server"),
];

/// Frameworks found one level deeper than the manifest's first line.
const DEEPER: &[Expect] = &[
    expect(
        "php-slim",
        Language::Php,
        Some("slim"),
        "php -S 0.0.0.0:$PORT -t public",
    ),
    expect(
        "fasthtml-main",
        Language::Python,
        Some("fasthtml"),
        "uvicorn main:app --host 0.0.0.0 --port $PORT --proxy-headers --forwarded-allow-ips '*'",
    ),
    expect(
        "litestar-main",
        Language::Python,
        Some("litestar"),
        "uvicorn main:app --host 0.0.0.0 --port $PORT --proxy-headers --forwarded-allow-ips '*'",
    ),
    expect(
        "react-router-framework",
        Language::Node,
        Some("react-router"),
        "react-router-serve ./build/server/index.js",
    ),
    expect(
        "remix-basic",
        Language::Node,
        Some("remix"),
        "remix-serve ./build/server/index.js",
    ),
    expect("hono-tsx", Language::Node, Some("hono"), "tsx src/index.ts"),
    expect(
        "express-ts-node",
        Language::Node,
        Some("express"),
        "ts-node src/server.ts",
    ),
    expect("go-nethttp", Language::Go, None, "./server"),
];

/// Next.js: only a real static export is served as files.
const NEXTJS: &[Expect] = &[
    expect(
        "nextjs-commented-export",
        Language::Node,
        Some("nextjs"),
        "next start -H 0.0.0.0 -p $PORT",
    ),
    expect(
        "nextjs-conditional-export",
        Language::Node,
        Some("nextjs"),
        "next start -H 0.0.0.0 -p $PORT",
    ),
    expect(
        "nextjs-static-export",
        Language::Node,
        Some("nextjs"),
        "python3 -m http.server \"$PORT\" --bind 0.0.0.0 --directory out",
    ),
];

#[test]
fn apps_with_no_manifest_are_detected_from_their_sources() {
    check(NO_MANIFEST);
    // Nothing to install without a manifest; the plan builds from the sources alone.
    let (a, plan) = analyze("node-lone-server");
    assert_eq!((a.package_manager, plan.install_command), (None, None));
    let (_, plan) = analyze("go-lone-main");
    assert_eq!(plan.install_command, None);
    assert!(plan.build_command.unwrap().ends_with("-o ./server main.go"));
    let (_, plan) = analyze("java-lone-main");
    assert_eq!(plan.template, Template::JavaSource);
    assert_eq!(
        plan.build_command.as_deref(),
        Some("javac -d out Greeting.java Main.java")
    );
    for name in ["static-dist", "static-build-folder", "staticfile-root"] {
        let (_, plan) = analyze(name);
        assert!(plan.native_start().starts_with(STATIC_SERVER), "{name}");
        // The folder the static server serves is not left out of the image.
        let dir = plan.static_dir.clone().unwrap();
        let ignore = devgem_analyzer::render_dockerignore(&plan);
        assert!(!ignore.lines().any(|l| l == dir), "{name}: {ignore}");
    }
}

#[test]
fn decoy_manifests_lose_to_what_runs_the_app() {
    check(DECOYS);
    // PHP runs Laravel; Node only builds its assets, in a stage of the image and in the plan.
    let (a, plan) = analyze("laravel-vite");
    assert_eq!(
        plan.build_command.as_deref(),
        Some("npm ci --include=dev && npm run build")
    );
    assert!(
        a.candidates
            .iter()
            .any(|c| c.language == Language::Node && c.score < 0.5)
    );
    let dockerfile = devgem_analyzer::render_dockerfile(&plan);
    assert!(dockerfile.contains("FROM node:22-bookworm-slim AS assets"));
    assert!(dockerfile.contains("COPY --from=assets /app/public/ ./public/"));
    // The repository's own Dockerfile is kept, and its runtime decided the language.
    let (a, plan) = analyze("fastapi-dockerfile-tooling");
    assert_eq!(plan.template, Template::Dockerfile);
    assert!(
        a.evidence
            .iter()
            .any(|e| e.contains("Dockerfile runs python"))
    );
}

#[test]
fn frameworks_are_found_one_level_deeper() {
    check(DEEPER);
    // A start command that runs a dev dependency installs dev dependencies.
    for name in ["hono-tsx", "express-ts-node"] {
        let (_, plan) = analyze(name);
        assert_eq!(
            plan.install_command.as_deref(),
            Some("npm install --include=dev"),
            "{name}"
        );
        let dockerfile = devgem_analyzer::render_dockerfile(&plan);
        assert!(
            dockerfile.contains("ENV PATH=\"/app/node_modules/.bin:$PATH\""),
            "{name}: {dockerfile}"
        );
    }
    // ASGI apps need an ASGI server, installed when the app does not list one.
    let (_, plan) = analyze("fasthtml-main");
    assert!(
        plan.install_command
            .unwrap()
            .ends_with("pip install uvicorn")
    );
    let (_, plan) = analyze("react-router-framework");
    assert_eq!(plan.template, Template::NodeBuild);
    assert_eq!(plan.package_manager, Some(PackageManager::Npm));
}

#[test]
fn nextjs_is_served_as_files_only_for_a_static_export() {
    check(NEXTJS);
    for name in ["nextjs-commented-export", "nextjs-conditional-export"] {
        let (_, plan) = analyze(name);
        assert_eq!(plan.template, Template::Nextjs, "{name}");
        let dockerfile = devgem_analyzer::render_dockerfile(&plan);
        // `next` is found in the image: node_modules/.bin is on PATH.
        assert!(dockerfile.contains("node_modules/.bin"), "{name}");
    }
    let (_, plan) = analyze("nextjs-static-export");
    assert_eq!(plan.template, Template::Spa);
}

#[test]
fn the_framework_icon_is_in_the_full_analysis_only() {
    for (name, icon) in [
        ("flask-basic", Some("flask")),
        ("fastapi-basic", Some("fastapi")),
        ("nextjs-basic", Some("nextdotjs")),
        ("express-basic", Some("express")),
        ("django-basic", Some("django")),
        ("laravel-vite", Some("laravel")),
        ("go-nethttp", None),
    ] {
        let a = devgem_analyzer::analyze(&fixture(name));
        assert_eq!(a.framework_icon.as_deref(), icon, "{name}");
        let full = serde_json::to_value(&a).unwrap();
        assert_eq!(full["framework_icon"].as_str(), icon, "{name}");
        // The documented `devgem analyze --json` object keeps its shape.
        let public = serde_json::to_value(a.public()).unwrap();
        assert!(public.get("framework_icon").is_none(), "{name}");
    }
}

#[test]
fn each_class_has_at_least_two_fixtures() {
    for (class, fixtures) in [
        ("no manifest", NO_MANIFEST),
        ("decoys", DECOYS),
        ("frameworks one level deeper", DEEPER),
        ("Next.js", NEXTJS),
    ] {
        assert!(fixtures.len() >= 2, "{class}: {}", fixtures.len());
    }
}

/// Toolchains the app asks for: each fixture's package manager, the release the plan pins
/// (what the native build and the Dockerfile install) and the install that pins it.
const TOOLCHAIN_PINS: &[(&str, PackageManager, &str)] = &[
    ("pnpm-lockfile-v6", PackageManager::Pnpm, "8.15.9"),
    ("yarn-berry", PackageManager::Yarn, "4.18.1"),
    // uv.lock revision 2 (written by uv 0.6/0.7) is read by uv 0.6.17 and later.
    ("flask-uv-lock-rev2", PackageManager::Uv, "0.6.17"),
    // `[tool.uv] required-version = ">=0.8,<0.10"`: uv 0.13 refuses to run there.
    ("flask-uv-required-version", PackageManager::Uv, "0.9.30"),
    ("flask-poetry-lock-1-8", PackageManager::Poetry, "1.8.5"),
    // `requires-poetry = ">=2.0,<2.3"`, poetry.lock generated by Poetry 2.2.1.
    (
        "flask-poetry-requires-poetry",
        PackageManager::Poetry,
        "2.2.1",
    ),
];

#[test]
fn the_package_manager_release_the_repository_needs_is_pinned_in_plan_and_dockerfile() {
    for &(name, manager, version) in TOOLCHAIN_PINS {
        let (a, plan) = analyze(name);
        assert_eq!(a.package_manager, Some(manager), "{name}");
        assert_eq!(
            plan.package_manager_version.as_deref(),
            Some(version),
            "{name}: {:#?}",
            a.evidence
        );
        let dockerfile = devgem_analyzer::render_dockerfile(&plan);
        let installs = match manager {
            PackageManager::Uv => format!("pip install uv=={version}"),
            PackageManager::Poetry => format!("pip install poetry=={version}"),
            PackageManager::Pnpm => format!("pnpm@{version}"),
            _ => format!("@{version}"),
        };
        assert!(dockerfile.contains(&installs), "{name}:\n{dockerfile}");
    }
    let uv = TOOLCHAIN_PINS.iter().filter(|p| p.1 == PackageManager::Uv);
    let poetry = TOOLCHAIN_PINS
        .iter()
        .filter(|p| p.1 == PackageManager::Poetry);
    assert!(uv.count() >= 2 && poetry.count() >= 2);
}
