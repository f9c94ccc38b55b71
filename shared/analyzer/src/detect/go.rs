//! Go modules: Gin, Echo, Fiber, Chi, Gorilla mux and plain net/http (the standard library,
//! so no framework); the main package at the root or in cmd/*; a lone `main.go` without a
//! go.mod.

use crate::common::*;
use crate::native;
use crate::pat::Pat;
use crate::repo::App;
use crate::{Language, PackageManager, Template};

const GO: &[&str] = &["go"];

static ENV: Pat = Pat::new(
    &["Getenv", "LookupEnv"],
    r#"os\.(?:Getenv|LookupEnv)\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)"#,
);
static READS_PORT: Pat = Pat::new(&["\"PORT\""], r#"os\.(?:Getenv|LookupEnv)\(\s*"PORT"\s*\)"#);
static LISTEN: Pat = Pat::new(
    &["ListenAndServe(", ".Run(", ".Start(", ".Listen("],
    r#"(?:ListenAndServe|\.Run|\.Start|\.Listen)\(\s*"(?:0\.0\.0\.0|localhost|127\.0\.0\.1)?:(\d{2,5})""#,
);
static PKG_MAIN: Pat = Pat::new(&["package main"], r"(?m)^package main\b");
static NET_HTTP: Pat = Pat::new(
    &["http.ListenAndServe", "http.Server{"],
    r"http\.ListenAndServe|http\.Server\{",
);
static IMPORT_PATH: Pat = Pat::new(
    &["\""],
    r#"(?m)^\s*(?:import\s+)?(?:\w+\s+)?"([\w.\-]+(?:/[\w.\-]+)*)"\s*$"#,
);
static GIN_RUN_DEFAULT: Pat = Pat::new(&[".Run("], r"\.Run\(\s*\)");

/// Main-package files at the root of an app without a go.mod (tests excluded).
fn lone_main_files(app: &App) -> Vec<String> {
    app.files_in("")
        .into_iter()
        .filter(|f| {
            f.ends_with(".go")
                && !f.ends_with("_test.go")
                && app.text(f).is_some_and(|t| PKG_MAIN.is_match(t))
        })
        .collect()
}

pub fn detect(app: &App) -> Option<Detected> {
    if !app.has("go.mod") {
        return detect_lone(app);
    }
    let gomod = app.text("go.mod").unwrap_or("");
    let mut det = Detected::new(Language::Go, 0.6);
    det.evidence("go.mod at the app root");
    let module = gomod
        .lines()
        .find_map(|l| l.trim().strip_prefix("module "))
        .map(|m| m.trim().to_string())
        .unwrap_or_default();
    let requires: Vec<&str> = gomod
        .lines()
        .map(str::trim)
        .filter_map(|l| {
            let l = l.strip_prefix("require ").unwrap_or(l);
            let first = l.split_whitespace().next()?;
            first.contains('.').then_some(first)
        })
        .collect();
    // Version: toolchain directive, then go directive.
    let v = gomod
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("toolchain go")
                .map(|v| Versioned::new(v.trim(), "go.mod toolchain"))
        })
        .or_else(|| {
            gomod.lines().find_map(|l| {
                l.trim().strip_prefix("go ").map(|v| {
                    Versioned::new(
                        v.trim().split('.').take(2).collect::<Vec<_>>().join("."),
                        "go.mod go directive",
                    )
                })
            })
        })
        .or_else(|| tool_versions(app, "golang"))
        .unwrap_or_else(|| Versioned::new("1.23", "default (no pin found)"));
    det.set_version(v);
    det.analysis.package_manager = Some(PackageManager::GoModules);
    const FW: &[(&str, &str)] = &[
        ("gin", "github.com/gin-gonic/gin"),
        ("echo", "github.com/labstack/echo"),
        ("fiber", "github.com/gofiber/fiber"),
        ("chi", "github.com/go-chi/chi"),
        ("gorilla", "github.com/gorilla/mux"),
    ];
    let framework = FW
        .iter()
        .find(|(_, m)| requires.iter().any(|r| r.starts_with(m)))
        .map(|(f, m)| {
            det.evidence(format!("framework {f}: {m} is required in go.mod"));
            *f
        });
    // net/http is the standard library: a server, but no framework to report.
    let net_http = framework.is_none()
        && any_source(app, GO, &NET_HTTP, 3)
            .inspect(|f| {
                det.evidence(format!(
                    "plain net/http server in {f} (standard library, no framework)"
                ));
            })
            .is_some();
    if framework.is_some() || net_http {
        det.score += 0.3;
    }
    det.analysis.framework = framework.map(str::to_string);

    // Main package: the root, else cmd/<name>.
    let root_main = app
        .files_in("")
        .iter()
        .any(|f| f.ends_with(".go") && app.text(f).is_some_and(|t| PKG_MAIN.is_match(t)));
    let name_hint = module.rsplit('/').next().unwrap_or("").to_string();
    let target = if root_main {
        Some(".".to_string())
    } else {
        let mut cmds: Vec<String> = app
            .subdirs("cmd")
            .into_iter()
            .filter(|d| {
                app.files_in(&format!("cmd/{d}")).iter().any(|f| {
                    f.ends_with(".go") && app.text(f).is_some_and(|t| PKG_MAIN.is_match(t))
                })
            })
            .collect();
        cmds.sort_by_key(|d| {
            if *d == name_hint {
                0
            } else if ["server", "api", "web", "app", "http"].contains(&d.as_str()) {
                1
            } else {
                2
            }
        });
        if cmds.len() > 1 {
            det.evidence(format!(
                "several main packages in cmd/ ({}); picked cmd/{}",
                cmds.join(", "),
                cmds[0]
            ));
        }
        cmds.first().map(|c| format!("./cmd/{c}"))
    };
    let (bpk, rpk, ev) = native::lookup("go", requires.iter().copied());
    let cgo = !bpk.is_empty();
    for e in ev {
        det.evidence(e);
    }
    det.analysis.details.build_system_packages = bpk;
    det.analysis.system_packages = rpk;
    if let Some(t) = &target {
        det.score += 0.1;
        det.evidence(format!("main package {t}"));
        det.analysis.entrypoint = Some(t.clone());
        det.analysis.build_command = Some(format!(
            "CGO_ENABLED={} go build -trimpath -ldflags=\"-s -w\" -o ./server {t}",
            u8::from(cgo)
        ));
        det.analysis.start_command = Some(procfile_web(app).unwrap_or_else(|| "./server".into()));
        det.analysis.details.artifact = Some("server".into());
    }
    det.analysis.install_command = Some("go mod download".into());
    let reads = any_source(app, GO, &READS_PORT, 4);
    det.analysis.reads_port_env = reads.is_some()
        || (framework == Some("gin") && any_source(app, GO, &GIN_RUN_DEFAULT, 4).is_some());
    port_from_sources(
        app,
        &mut det.analysis,
        GO,
        &LISTEN,
        (framework == Some("gin")).then_some(8080),
        "read the port: port := os.Getenv(\"PORT\"); if port == \"\" { port = \"8080\" } and listen on \":\"+port",
    );
    det.analysis.env_vars = env_vars_by(app, GO, &ENV, Required::Never);
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    let d = &mut det.analysis.details;
    d.template = Some(Template::Go);
    d.build_image = Some(format!("golang:{v}-bookworm"));
    d.base_image = Some(
        if cgo {
            "gcr.io/distroless/base-debian12:nonroot"
        } else {
            "gcr.io/distroless/static-debian12:nonroot"
        }
        .into(),
    );
    d.manifests = existing_files(app, &["go.mod", "go.sum"]);
    Some(det)
}

/// A lone `main.go` (no go.mod): built as named files, which needs only the standard library.
fn detect_lone(app: &App) -> Option<Detected> {
    let files = lone_main_files(app);
    if files.is_empty() {
        return None;
    }
    let mut det = Detected::new(Language::Go, 0.4);
    det.evidence(format!(
        "no go.mod: {} in package main, built as files",
        files.join(", ")
    ));
    let sources: Vec<&str> = files.iter().filter_map(|f| app.text(f)).collect();
    if sources.iter().any(|t| NET_HTTP.is_match(t)) {
        det.score += 0.3;
        det.evidence("plain net/http server (standard library, no framework)");
    }
    let foreign: Vec<String> = sources
        .iter()
        .flat_map(|t| IMPORT_PATH.captures_iter(t))
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
        .filter(|p| p.split('/').next().is_some_and(|h| h.contains('.')))
        .collect();
    if !foreign.is_empty() {
        det.evidence(format!(
            "warning: {} is not in the standard library; add a go.mod (`go mod init` and `go mod tidy`) so it can be downloaded",
            dedup(foreign).join(", ")
        ));
    }
    det.set_version(
        tool_versions(app, "golang")
            .unwrap_or_else(|| Versioned::new("1.23", "default (no pin found)")),
    );
    det.analysis.entrypoint = files.first().cloned();
    det.analysis.build_command = Some(format!(
        "CGO_ENABLED=0 go build -trimpath -ldflags=\"-s -w\" -o ./server {}",
        files.join(" ")
    ));
    det.analysis.start_command = Some(procfile_web(app).unwrap_or_else(|| "./server".into()));
    det.analysis.details.artifact = Some("server".into());
    det.analysis.reads_port_env = any_source(app, GO, &READS_PORT, 1).is_some();
    port_from_sources(
        app,
        &mut det.analysis,
        GO,
        &LISTEN,
        None,
        "read the port: port := os.Getenv(\"PORT\"); if port == \"\" { port = \"8080\" } and listen on \":\"+port",
    );
    det.analysis.env_vars = env_vars_by(app, GO, &ENV, Required::Never);
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    let d = &mut det.analysis.details;
    d.template = Some(Template::Go);
    d.build_image = Some(format!("golang:{v}-bookworm"));
    d.base_image = Some("gcr.io/distroless/static-debian12:nonroot".into());
    Some(det)
}
