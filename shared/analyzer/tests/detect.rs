//! Detection over in-memory repositories: tie-breaking, package managers, versions, ports,
//! native libraries, environment variables, bad input. Each case goes through `check`.

use devgem_analyzer::repo::Repo;
use devgem_analyzer::{Analysis, Language, PackageManager, analyze_repo};

fn analyze(files: &[(&str, &str)]) -> Analysis {
    analyze_repo(&Repo::from_files(files.iter().copied()))
}

/// Runs the analysis and checks language, framework and any field through a closure.
fn check(
    files: &[(&str, &str)],
    language: &str,
    framework: Option<&str>,
    more: impl Fn(&Analysis),
) {
    let a = analyze(files);
    assert_eq!(a.language_name(), language, "evidence: {:#?}", a.evidence);
    assert_eq!(
        a.framework.as_deref(),
        framework,
        "evidence: {:#?}",
        a.evidence
    );
    more(&a);
}

const FLASK: &str = "from flask import Flask\napp = Flask(__name__)\n";

#[test]
fn a_stray_manifest_in_a_subfolder_does_not_flip_the_result() {
    // Nixpacks calls its own repository C# because an example folder holds a .csproj.
    check(
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"tool\"\nversion = \"0.1.0\"\n[dependencies]\naxum = \"0.7\"\n",
            ),
            ("src/main.rs", "fn main() {}\n"),
            (
                "examples/csharp/App.csproj",
                "<Project Sdk=\"Microsoft.NET.Sdk.Web\"></Project>",
            ),
            (
                "examples/node/package.json",
                "{\"dependencies\":{\"express\":\"4\"}}",
            ),
        ],
        "rust",
        Some("axum"),
        |a| assert!(a.services.is_empty(), "{:?}", a.services),
    );
}

#[test]
fn runners_up_are_reported() {
    check(
        &[
            ("requirements.txt", "flask\n"),
            ("app.py", FLASK),
            (
                "package.json",
                "{\"devDependencies\":{\"tailwindcss\":\"3\"}}",
            ),
        ],
        "python",
        Some("flask"),
        |a| {
            assert!(
                a.candidates.iter().any(|c| c.language == Language::Node),
                "{:?}",
                a.candidates
            );
            assert!(a.confidence > 0.0 && a.confidence <= 1.0);
        },
    );
}

#[test]
fn python_package_managers_and_versions() {
    check(
        &[
            (
                "pyproject.toml",
                "[project]\nname='x'\nrequires-python='>=3.9,<3.12'\ndependencies=['fastapi']\n",
            ),
            ("uv.lock", ""),
            ("main.py", "from fastapi import FastAPI\napp = FastAPI()\n"),
        ],
        "python",
        Some("fastapi"),
        |a| {
            assert_eq!(a.package_manager, Some(PackageManager::Uv));
            assert_eq!(a.runtime_version.as_deref(), Some("3.11"));
            assert!(
                a.install_command
                    .as_deref()
                    .unwrap_or("")
                    .contains("uvicorn"),
                "uvicorn is added: {:?}",
                a.install_command
            );
        },
    );
    check(
        &[
            (
                "pyproject.toml",
                "[tool.poetry.dependencies]\npython='^3.11'\nflask='*'\n",
            ),
            ("poetry.lock", ""),
            ("app.py", FLASK),
        ],
        "python",
        Some("flask"),
        |a| {
            assert_eq!(a.package_manager, Some(PackageManager::Poetry));
        },
    );
    check(
        &[
            (
                "pyproject.toml",
                "[project]\nname='x'\ndependencies=['flask']\n[tool.pdm]\n",
            ),
            ("pdm.lock", ""),
            ("app.py", FLASK),
        ],
        "python",
        Some("flask"),
        |a| {
            assert_eq!(a.package_manager, Some(PackageManager::Pdm));
        },
    );
    check(
        &[
            ("Pipfile", "[packages]\nflask='*'\n"),
            ("Pipfile.lock", "{}"),
            ("app.py", FLASK),
            (".python-version", "3.10.4\n"),
        ],
        "python",
        Some("flask"),
        |a| {
            assert_eq!(a.package_manager, Some(PackageManager::Pipenv));
            assert_eq!(a.runtime_version.as_deref(), Some("3.10.4"));
            assert_eq!(
                a.details.runtime_version_source.as_deref(),
                Some(".python-version")
            );
            assert_eq!(
                a.details.base_image.as_deref(),
                Some("python:3.10.4-slim-bookworm")
            );
        },
    );
}

#[test]
fn node_package_managers_and_versions() {
    let pkg = r#"{"scripts":{"start":"node index.js"},"dependencies":{"express":"4"},"engines":{"node":">=18 <21"}}"#;
    for (lock, pm, install) in [
        ("package-lock.json", "npm", "npm ci --omit=dev"),
        (
            "yarn.lock",
            "yarn",
            "yarn install --frozen-lockfile --production=true",
        ),
        (
            "pnpm-lock.yaml",
            "pnpm",
            "pnpm install --frozen-lockfile --prod",
        ),
    ] {
        check(
            &[
                ("package.json", pkg),
                (lock, ""),
                ("index.js", "app.listen(process.env.PORT)"),
            ],
            "node",
            Some("express"),
            |a| {
                assert_eq!(a.package_manager.map(PackageManager::as_str), Some(pm));
                assert_eq!(a.install_command.as_deref(), Some(install));
                assert_eq!(a.runtime_version.as_deref(), Some("20"));
            },
        );
    }
    check(
        &[("package.json", pkg), ("bun.lockb", "")],
        "bun",
        Some("express"),
        |a| {
            assert!(a.candidates.iter().any(|c| c.language == Language::Node));
        },
    );
    check(
        &[("package.json", pkg), (".nvmrc", "v18.19.0\n")],
        "node",
        Some("express"),
        |a| {
            assert_eq!(a.runtime_version.as_deref(), Some("18.19.0"));
        },
    );
}

#[test]
fn hardcoded_ports_are_reported_with_file_line_and_fix() {
    check(
        &[
            ("requirements.txt", "requests\n"),
            (
                "main.py",
                "import http.server\n\nserver = http.server.HTTPServer(('', 5000), None)\nserver.listen(port=5000)\n",
            ),
        ],
        "python",
        None,
        |a| {
            let issue = a.details.port_issue.as_ref().expect("port issue");
            assert_eq!(issue.file, "main.py");
            assert_eq!(issue.line, 4);
            assert!(issue.fix.contains("PORT"));
            // The plan carries it to the runtimes, which name it when the app misses $PORT.
            let plan = devgem_analyzer::plan(a).expect("plan");
            assert_eq!(
                plan.hard_coded_port,
                Some(devgem_plan::PortFinding {
                    port: 5000,
                    file: "main.py".into(),
                    line: 4
                })
            );
        },
    );
    check(
        &[
            (
                "package.json",
                r#"{"main":"server.js","dependencies":{"fastify":"5"}}"#,
            ),
            (
                "server.js",
                "const f = require('fastify')();\nf.listen({ port: 3000 });\n",
            ),
        ],
        "node",
        Some("fastify"),
        |a| {
            let issue = a.details.port_issue.as_ref().expect("port issue");
            assert_eq!((issue.file.as_str(), issue.line), ("server.js", 2));
            assert_eq!(a.dev_port, Some(3000));
            assert!(!a.reads_port_env);
        },
    );
    check(
        &[
            (
                "package.json",
                r#"{"main":"server.js","dependencies":{"fastify":"5"}}"#,
            ),
            (
                "server.js",
                "f.listen({ port: process.env.PORT || 3000 });\n",
            ),
        ],
        "node",
        Some("fastify"),
        |a| {
            assert!(
                a.details
                    .port_issue
                    .as_ref()
                    .is_some_and(|i| i.message.contains("localhost"))
            )
        },
    );
}

#[test]
fn native_libraries() {
    check(
        &[
            (
                "requirements.txt",
                "opencv-python==4.10\npsycopg2>=2.9\nFlask\n",
            ),
            ("app.py", FLASK),
        ],
        "python",
        Some("flask"),
        |a| {
            for p in ["libgl1", "libglib2.0-0", "libpq5"] {
                assert!(
                    a.system_packages.contains(&p.to_string()),
                    "{p}: {:?}",
                    a.system_packages
                );
            }
            assert!(
                a.details
                    .build_system_packages
                    .contains(&"libpq-dev".to_string())
            );
        },
    );
    check(
        &[(
            "package.json",
            r#"{"scripts":{"start":"node i.js"},"dependencies":{"canvas":"2","puppeteer":"23"}}"#,
        )],
        "node",
        None,
        |a| {
            assert!(a.system_packages.contains(&"libcairo2".to_string()));
            assert!(a.system_packages.contains(&"libnss3".to_string()));
            assert!(
                a.details
                    .build_system_packages
                    .contains(&"libcairo2-dev".to_string())
            );
        },
    );
    assert!(devgem_analyzer::NATIVE_LIBRARIES.len() >= 40);
}

#[test]
fn environment_variables() {
    check(
        &[
            ("requirements.txt", "flask\n"),
            (
                "app.py",
                "import os\nfrom flask import Flask\napp = Flask(__name__)\nDB = os.environ['DATABASE_URL']\nLEVEL = os.getenv('LOG_LEVEL', 'info')\n",
            ),
            (".env.example", "STRIPE_SECRET_KEY=\nFEATURE_FLAG=on\n"),
        ],
        "python",
        Some("flask"),
        |a| {
            let v = |n: &str| {
                a.env_vars
                    .iter()
                    .find(|v| v.name == n)
                    .cloned()
                    .unwrap_or_else(|| panic!("{n}: {:?}", a.env_vars))
            };
            assert!(v("DATABASE_URL").secret && v("DATABASE_URL").required);
            assert!(!v("LOG_LEVEL").secret && !v("LOG_LEVEL").required);
            assert!(v("STRIPE_SECRET_KEY").secret && v("STRIPE_SECRET_KEY").required);
            assert!(!v("FEATURE_FLAG").required);
        },
    );
    check(
        &[
            ("package.json", r#"{"scripts":{"start":"node i.js"}}"#),
            (
                "i.js",
                "const k = process.env.API_TOKEN;\nconst r = process.env.REGION || 'eu';\n",
            ),
        ],
        "node",
        None,
        |a| {
            assert!(
                a.env_vars
                    .iter()
                    .any(|v| v.name == "API_TOKEN" && v.secret && v.required)
            );
            assert!(
                a.env_vars
                    .iter()
                    .any(|v| v.name == "REGION" && !v.secret && !v.required)
            );
        },
    );
    // Rust: a read is required only where a missing variable panics or returns an error; a
    // build script's reads happen inside `cargo build`, and tests do not run in the service.
    check(
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"svc\"\nversion = \"0.1.0\"\n[dependencies]\naxum = \"0.7\"\n",
            ),
            (
                "src/main.rs",
                "fn main() -> anyhow::Result<()> {\n    let db = std::env::var(\"DATABASE_URL\").expect(\"set it\");\n    let key = std::env::var(\"API_KEY\")?;\n    let level = std::env::var(\"LOG_LEVEL\").unwrap_or_else(|_| \"info\".into());\n    let json = std::env::var(\"LOG_JSON\").is_ok();\n    let region = std::env::var(\"REGION\").ok();\n    Ok(())\n}\n",
            ),
            (
                "build.rs",
                "fn main() { let t = std::env::var(\"TARGET\").unwrap(); }\n",
            ),
            (
                "tests/api.rs",
                "#[test] fn t() { std::env::var(\"TEST_ONLY\").unwrap(); }\n",
            ),
        ],
        "rust",
        Some("axum"),
        |a| {
            let required = |n: &str| {
                a.env_vars
                    .iter()
                    .find(|v| v.name == n)
                    .map(|v| v.required)
                    .unwrap_or_else(|| panic!("{n} missing: {:?}", a.env_vars))
            };
            assert!(required("DATABASE_URL") && required("API_KEY"));
            assert!(!required("LOG_LEVEL") && !required("LOG_JSON") && !required("REGION"));
            for absent in ["TARGET", "TEST_ONLY"] {
                assert!(
                    a.env_vars.iter().all(|v| v.name != absent),
                    "{absent}: {:?}",
                    a.env_vars
                );
            }
        },
    );
}

#[test]
fn malformed_manifests_still_return_with_a_warning() {
    for (file, content) in [
        ("package.json", "{ not json"),
        ("pyproject.toml", "[project\nname ="),
        ("Cargo.toml", "[package\n"),
        ("pom.xml", "<project><artifactId>x</project>"),
        ("composer.json", "]"),
        ("deno.json", "{"),
    ] {
        let a = analyze(&[(file, content)]);
        assert!(
            a.evidence.iter().any(|e| e.starts_with("warning:")),
            "{file}: {:#?}",
            a.evidence
        );
        let _ = devgem_analyzer::plan(&a);
        let _ = a.summary();
    }
}

#[test]
fn unknown_and_plan_errors() {
    let a = analyze(&[("README.md", "hello")]);
    assert!(!a.is_recognized());
    let e = devgem_analyzer::plan(&a).expect_err("no plan");
    assert!(!e.hint.is_empty());
    let a = analyze(&[
        ("Gemfile", "gem 'rails'\n"),
        ("Procfile", "web: bundle exec puma -p $PORT\n"),
    ]);
    assert_eq!(
        a.start_command.as_deref(),
        Some("bundle exec puma -p $PORT")
    );
}

#[test]
fn nothing_recognised_prints_unknown_and_reads_back() {
    let a = analyze(&[("README.md", "hello")]);
    assert_eq!(a.language, None);
    let public = serde_json::to_value(a.public()).expect("json");
    assert_eq!(public["language"], "unknown");
    let full = serde_json::to_string(&a).expect("json");
    assert!(full.contains(r#""language":"unknown""#), "{full}");
    let back: Analysis = serde_json::from_str(&full).expect("reads back");
    assert_eq!(back, a);
    // A stored analysis of a recognised app reads back with its types.
    let a = analyze(&[
        ("go.mod", "module x\ngo 1.23\n"),
        ("main.go", "package main\n"),
    ]);
    let back: Analysis =
        serde_json::from_str(&serde_json::to_string(&a).expect("json")).expect("reads back");
    assert_eq!(back.language, Some(Language::Go));
    assert_eq!(back.package_manager, Some(PackageManager::GoModules));
    assert_eq!(back, a);
}

#[test]
fn monorepo_services_are_listed_and_pickable() {
    let files = [
        (
            "package.json",
            r#"{"private":true,"workspaces":["apps/*"]}"#,
        ),
        (
            "apps/web/package.json",
            r#"{"dependencies":{"next":"15"},"scripts":{"build":"next build"}}"#,
        ),
        (
            "apps/api/package.json",
            r#"{"dependencies":{"express":"4"},"scripts":{"start":"node server.js"}}"#,
        ),
        ("go.work", "go 1.23\nuse ./services/auth\n"),
        ("services/auth/go.mod", "module x/auth\ngo 1.23\n"),
        (
            "services/auth/main.go",
            "package main\nfunc main() { http.ListenAndServe(\":\"+os.Getenv(\"PORT\"), nil) }\n",
        ),
    ];
    let repo = Repo::from_files(files.iter().copied());
    let a = analyze_repo(&repo);
    let paths: Vec<&str> = a.services.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["apps/api", "apps/web", "services/auth"]);
    let web = devgem_analyzer::analyze_repo_service(&repo, "apps/web");
    assert_eq!(web.framework.as_deref(), Some("nextjs"));
    let plan = devgem_analyzer::plan(&web).expect("plan");
    assert_eq!(plan.app_dir, "apps/web");
    let json = serde_json::to_value(&a).expect("json");
    assert_eq!(json["services"][2]["path"], "services/auth");
    assert_eq!(json["services"][2]["language"], "go");
}

/// Files, language, framework.
type Case = (Vec<(String, String)>, &'static str, &'static str);

#[test]
fn framework_signatures() {
    // (files, language, framework): at least 35 frameworks, decided from manifests first.
    let pkg = |dep: &str| {
        format!(
            r#"{{"scripts":{{"build":"x","start":"node s.js"}},"dependencies":{{"{dep}":"1"}}}}"#
        )
    };
    let mut cases: Vec<Case> = vec![];
    for (dep, fw) in [
        ("express", "express"),
        ("fastify", "fastify"),
        ("koa", "koa"),
        ("@nestjs/core", "nestjs"),
        ("@hapi/hapi", "hapi"),
        ("hono", "hono"),
        ("next", "nextjs"),
        ("nuxt", "nuxt"),
        ("@sveltejs/kit", "sveltekit"),
        ("@remix-run/node", "remix"),
        ("astro", "astro"),
        ("@angular/core", "angular"),
        ("vite", "vite"),
        ("react-scripts", "cra"),
        ("gatsby", "gatsby"),
        ("@vue/cli-service", "vue-cli"),
    ] {
        cases.push((vec![("package.json".into(), pkg(dep))], "node", fw));
    }
    for (dep, fw, src) in [
        ("flask", "flask", FLASK),
        ("fastapi", "fastapi", ""),
        ("django", "django", ""),
        ("streamlit", "streamlit", ""),
        ("gradio", "gradio", ""),
        ("starlette", "starlette", ""),
        ("aiohttp", "aiohttp", ""),
        ("sanic", "sanic", ""),
        ("tornado", "tornado", ""),
        ("bottle", "bottle", ""),
        ("falcon", "falcon", ""),
    ] {
        cases.push((
            vec![
                ("requirements.txt".into(), format!("{dep}\n")),
                ("app.py".into(), src.into()),
            ],
            "python",
            fw,
        ));
    }
    for (m, fw) in [
        ("github.com/gin-gonic/gin", "gin"),
        ("github.com/labstack/echo/v4", "echo"),
        ("github.com/gofiber/fiber/v2", "fiber"),
        ("github.com/go-chi/chi/v5", "chi"),
    ] {
        cases.push((
            vec![(
                "go.mod".into(),
                format!("module x\ngo 1.23\nrequire {m} v1.0.0\n"),
            )],
            "go",
            fw,
        ));
    }
    cases.push((
        vec![(
            "composer.json".into(),
            r#"{"require":{"slim/slim":"^4","symfony/yaml":"^7"}}"#.into(),
        )],
        "php",
        "slim",
    ));
    cases.push((
        vec![
            ("requirements.txt".into(), "python-fasthtml\n".into()),
            (
                "main.py".into(),
                "from fasthtml.common import *\napp, rt = fast_app()\n".into(),
            ),
        ],
        "python",
        "fasthtml",
    ));
    cases.push((
        vec![(
            "package.json".into(),
            r#"{"dependencies":{"react-router":"7","@react-router/node":"7"},"devDependencies":{"@react-router/dev":"7","vite":"6"}}"#.into(),
        )],
        "node",
        "react-router",
    ));
    for fw in ["axum", "actix-web", "rocket", "warp"] {
        cases.push((
            vec![
                (
                    "Cargo.toml".into(),
                    format!("[package]\nname='x'\n[dependencies]\n{fw} = '1'\n"),
                ),
                ("src/main.rs".into(), "fn main(){}".into()),
            ],
            "rust",
            fw,
        ));
    }
    cases.push((vec![("pom.xml".into(), "<project><parent><artifactId>spring-boot-starter-parent</artifactId></parent></project>".into())], "java", "spring-boot"));
    cases.push((vec![("pom.xml".into(), "<project><dependencies><dependency><groupId>io.quarkus</groupId></dependency></dependencies></project>".into())], "java", "quarkus"));
    cases.push((
        vec![(
            "build.gradle".into(),
            "plugins { id 'io.micronaut.application' }".into(),
        )],
        "java",
        "micronaut",
    ));
    cases.push((
        vec![(
            "composer.json".into(),
            r#"{"require":{"laravel/framework":"^11"}}"#.into(),
        )],
        "php",
        "laravel",
    ));
    cases.push((
        vec![(
            "composer.json".into(),
            r#"{"require":{"symfony/framework-bundle":"^7"}}"#.into(),
        )],
        "php",
        "symfony",
    ));
    cases.push((
        vec![("Gemfile".into(), "gem 'rails'\n".into())],
        "ruby",
        "rails",
    ));
    cases.push((
        vec![("Gemfile".into(), "gem 'sinatra'\n".into())],
        "ruby",
        "sinatra",
    ));
    cases.push((
        vec![(
            "Api.csproj".into(),
            "<Project Sdk=\"Microsoft.NET.Sdk.Web\"></Project>".into(),
        )],
        "dotnet",
        "aspnet-core",
    ));
    cases.push((
        vec![(
            "mix.exs".into(),
            "defp deps do [{:phoenix, \"~> 1.7\"}] end".into(),
        )],
        "elixir",
        "phoenix",
    ));
    cases.push((
        vec![
            (
                "package.json".into(),
                r#"{"dependencies":{"elysia":"1"}}"#.into(),
            ),
            ("bun.lock".into(), String::new()),
        ],
        "bun",
        "elysia",
    ));
    cases.push((
        vec![(
            "deno.json".into(),
            r#"{"imports":{"$fresh/":"https://deno.land/x/fresh/"}}"#.into(),
        )],
        "deno",
        "fresh",
    ));
    cases.push((
        vec![(
            "deno.json".into(),
            r#"{"imports":{"@oak/oak":"jsr:@oak/oak"}}"#.into(),
        )],
        "deno",
        "oak",
    ));
    let mut frameworks = std::collections::BTreeSet::new();
    for (files, lang, fw) in &cases {
        let a = analyze_repo(&Repo::from_files(
            files.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        ));
        assert_eq!(
            (a.language_name(), a.framework.as_deref()),
            (*lang, Some(*fw)),
            "{files:?}"
        );
        frameworks.insert(*fw);
    }
    assert!(
        frameworks.len() >= 35,
        "{} framework signatures",
        frameworks.len()
    );
}

#[test]
fn multibyte_text_after_an_environment_read_does_not_panic() {
    // Found by the `manifests` fuzz target: the look-ahead for a default cut a character.
    let src = "import os\nX = os.environ['API_KEY']                                     ééé\n";
    check(
        &[("requirements.txt", "flask\n"), ("app.py", src)],
        "python",
        Some("flask"),
        |a| {
            assert!(a.env_vars.iter().any(|v| v.name == "API_KEY"));
        },
    );
}

#[test]
fn table_sizes() {
    let n = devgem_analyzer::NATIVE_LIBRARIES.len();
    assert!(n >= 40, "{n} native library rows");
    assert!(devgem_analyzer::Template::ALL.len() >= 15);
}

#[test]
fn requirement_includes_are_followed_and_copied_with_their_folder() {
    let files = [
        ("requirements.txt", "-r requirements/base.txt\ngunicorn\n"),
        ("requirements/base.txt", "django==5.1\npsycopg2\n"),
        ("manage.py", ""),
        (
            "proj/settings.py",
            "WSGI_APPLICATION = 'proj.wsgi.application'\n",
        ),
    ];
    check(&files, "python", Some("django"), |a| {
        assert!(a.system_packages.contains(&"libpq5".to_string()));
        let plan = devgem_analyzer::plan(a).expect("plan");
        let df = devgem_analyzer::render_dockerfile(&plan);
        assert!(df.contains("COPY requirements.txt ./\n"), "{df}");
        assert!(
            df.contains("COPY requirements/base.txt ./requirements/base.txt\n"),
            "{df}"
        );
    });
}

#[test]
fn app_factories_are_shell_safe() {
    let factory =
        "from flask import Flask\n\ndef create_app():\n    app = Flask(__name__)\n    return app\n";
    check(
        &[("requirements.txt", "flask\n"), ("app.py", factory)],
        "python",
        Some("flask"),
        |a| {
            assert!(
                a.start_command
                    .as_deref()
                    .unwrap_or("")
                    .ends_with(" 'app:create_app()'"),
                "{:?}",
                a.start_command
            );
        },
    );
    let factory =
        "from fastapi import FastAPI\n\ndef create_app():\n    app = FastAPI()\n    return app\n";
    check(
        &[("requirements.txt", "fastapi\n"), ("main.py", factory)],
        "python",
        Some("fastapi"),
        |a| {
            assert!(
                a.start_command
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("uvicorn --factory main:create_app "),
                "{:?}",
                a.start_command
            );
        },
    );
}

#[test]
fn python_apps_run_from_their_import_root() {
    // A package at the root: the module path starts at the root.
    check(
        &[
            ("requirements.txt", "fastapi\nuvicorn\n"),
            ("app/__init__.py", ""),
            (
                "app/main.py",
                "from fastapi import FastAPI\napp = FastAPI()\n",
            ),
        ],
        "python",
        Some("fastapi"),
        |a| {
            let start = a.start_command.as_deref().unwrap_or_default();
            assert!(start.starts_with("uvicorn app.main:app "), "{start}");
            // The package is part of the app, not a second service.
            assert!(a.services.is_empty(), "{:?}", a.services);
        },
    );
    // A src layout: `shop` imports itself as `shop`, so it runs from `src`.
    check(
        &[
            ("requirements.txt", "flask\ngunicorn\n"),
            (
                "src/shop/__init__.py",
                "from flask import Flask\n\ndef create_app():\n    app = Flask(__name__)\n    from shop.views import register\n    register(app)\n    return app\n",
            ),
            ("src/shop/views.py", "def register(app):\n    pass\n"),
        ],
        "python",
        Some("flask"),
        |a| {
            let start = a.start_command.as_deref().unwrap_or_default();
            assert!(start.contains("--chdir src 'shop:create_app()'"), "{start}");
        },
    );
}

#[test]
fn the_package_manager_version_the_repository_needs_is_planned() {
    const SERVER: (&str, &str) = (
        "server.js",
        "require('http').createServer().listen(process.env.PORT)\n",
    );
    let pin = |files: &[(&str, &str)]| {
        let mut all = files.to_vec();
        all.push(SERVER);
        let a = analyze(&all);
        devgem_analyzer::plan(&a)
            .unwrap()
            .package_manager_version
            .map(|v| (a.package_manager.unwrap(), v))
    };
    let pkg = r#"{"name":"a","scripts":{"start":"node server.js"}}"#;
    // pnpm 9 refuses a version-6 lockfile; pnpm 8 reads it.
    assert_eq!(
        pin(&[
            ("package.json", pkg),
            ("pnpm-lock.yaml", "lockfileVersion: '6.0'\n")
        ]),
        Some((PackageManager::Pnpm, "8.15.9".into()))
    );
    assert_eq!(
        pin(&[
            ("package.json", pkg),
            ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n")
        ]),
        Some((PackageManager::Pnpm, "9.15.9".into()))
    );
    // packageManager wins over the lockfile, without its hash.
    let pinned = r#"{"name":"a","packageManager":"pnpm@8.6.1+sha512.abc","scripts":{"start":"node server.js"}}"#;
    assert_eq!(
        pin(&[
            ("package.json", pinned),
            ("pnpm-lock.yaml", "lockfileVersion: '6.0'\n")
        ]),
        Some((PackageManager::Pnpm, "8.6.1".into()))
    );
    // Yarn classic: any Yarn 1 will do. Berry: by its lockfile or .yarnrc.yml.
    assert_eq!(
        pin(&[
            ("package.json", pkg),
            ("yarn.lock", "# yarn lockfile v1\n\n")
        ]),
        None
    );
    assert_eq!(
        pin(&[
            ("package.json", pkg),
            ("yarn.lock", "__metadata:\n  version: 6\n  cacheKey: 8\n")
        ]),
        Some((PackageManager::Yarn, "3.8.7".into()))
    );
    assert_eq!(
        pin(&[
            ("package.json", pkg),
            ("yarn.lock", ""),
            (".yarnrc.yml", "nodeLinker: node-modules\n")
        ]),
        Some((PackageManager::Yarn, "4.18.1".into()))
    );
    let berry = analyze(&[
        ("package.json", pkg),
        ("yarn.lock", "__metadata:\n  version: 8\n"),
        SERVER,
    ]);
    assert_eq!(
        berry.install_command.as_deref(),
        Some("yarn install --immutable")
    );
    assert_eq!(
        pin(&[("package.json", pkg), ("package-lock.json", "{}")]),
        None
    );
}
