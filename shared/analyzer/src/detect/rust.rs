//! Rust (Cargo): Axum, Actix Web, Rocket, Warp, Poem, Salvo, Tide; the binary target from
//! Cargo.toml.

use crate::common::*;
use crate::native;
use crate::pat::Pat;
use crate::repo::App;
use crate::{Language, PackageManager, Template};

const RS: &[&str] = &["rs"];

static ENV: Pat = Pat::new(
    &["var("],
    r#"(?:env::var|env::var_os|std::env::var|dotenvy::var)\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)"#,
);
/// `env::var` returns a `Result`: the variable is required only where a missing one panics or
/// returns an error; `.ok()`, `.is_ok()`, `.unwrap_or(...)`, `match` and `if let` have a fallback.
static UNWRAPPED: Pat = Pat::new(&[], r"^\s*(?:\.unwrap\(\)|\.expect\(|\?)");
static READS_PORT: Pat = Pat::new(&["\"PORT\""], r#"env::var(?:_os)?\(\s*"PORT"\s*\)"#);
static ADDR: Pat = Pat::new(
    &[
        "\"0.0.0.0:",
        "\"127.0.0.1:",
        "\"localhost:",
        "\"[::]:",
        "\":",
        "([",
    ],
    r#"(?:"(?:0\.0\.0\.0|127\.0\.0\.1|localhost|\[::\])?:|\(\[\d+,\s*\d+,\s*\d+,\s*\d+\],\s*)(\d{2,5})\b"#,
);

pub fn detect(app: &App) -> Option<Detected> {
    let text = app.text("Cargo.toml")?;
    let mut det = Detected::new(Language::Rust, 0.6);
    det.evidence("Cargo.toml at the app root");
    let cargo = match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(e) => {
            det.score = 0.3;
            det.evidence(format!(
                "warning: Cargo.toml is not valid TOML ({}); ignored",
                e.to_string().lines().next().unwrap_or("")
            ));
            toml::Table::new()
        }
    };
    let package = cargo.get("package");
    if package.is_none() && cargo.contains_key("workspace") {
        det.evidence("a Cargo workspace root without its own package");
        det.score = 0.35;
    }
    let deps: Vec<String> = ["dependencies"]
        .iter()
        .filter_map(|k| cargo.get(*k).and_then(|d| d.as_table()))
        .flat_map(|t| t.keys().cloned())
        .collect();
    const FW: &[(&str, &str)] = &[
        ("axum", "axum"),
        ("actix-web", "actix-web"),
        ("rocket", "rocket"),
        ("warp", "warp"),
        ("poem", "poem"),
        ("salvo", "salvo"),
        ("tide", "tide"),
        ("hyper", "hyper"),
    ];
    let framework = FW
        .iter()
        .find(|(_, d)| deps.iter().any(|x| x == d))
        .map(|f| f.0);
    if let Some(f) = framework {
        det.score += 0.3;
        det.evidence(format!("framework {f}: \"{f}\" is a dependency"));
    }
    det.analysis.framework = framework.map(str::to_string);
    det.analysis.package_manager = Some(PackageManager::Cargo);
    // Version: rust-toolchain, then package.rust-version.
    let v = app
        .text("rust-toolchain.toml")
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| {
            t.get("toolchain")?
                .get("channel")?
                .as_str()
                .map(str::to_string)
        })
        .map(|c| Versioned::new(c, "rust-toolchain.toml"))
        .or_else(|| pin_file(app, "rust-toolchain").map(|c| Versioned::new(c, "rust-toolchain")))
        .or_else(|| {
            package
                .and_then(|p| p.get("rust-version"))
                .and_then(|v| v.as_str())
                .map(|v| Versioned::new(v, "Cargo.toml rust-version"))
        })
        .or_else(|| tool_versions(app, "rust"))
        .unwrap_or_else(|| Versioned::new("1", "default (no pin found)"));
    let v = if ["stable", "nightly", "beta"].contains(&v.version.as_str()) {
        Versioned::new("1", format!("{} ({})", v.source, v.version))
    } else {
        v
    };
    det.set_version(v);
    let bins: Vec<String> = cargo
        .get("bin")
        .and_then(|b| b.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|b| b.get("name")?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let name = package
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string);
    let bin = if let Some(b) = bins.first() {
        Some(b.clone())
    } else if app.has("src/main.rs") {
        name.clone()
    } else {
        None
    };
    // Root-relative manifests of the whole workspace, when the app is a member of one.
    let mut workspace_manifests: Option<Vec<String>> = None;
    if let Some(b) = &bin {
        det.score += 0.1;
        det.evidence(format!("binary target {b}"));
        // A member of a Cargo workspace builds from the workspace root (shared lockfile and
        // path dependencies): the plan's folder becomes the root and selects the package.
        let root = app.repo.app("");
        let root_cargo = root
            .text("Cargo.toml")
            .and_then(|t| t.parse::<toml::Table>().ok());
        let in_workspace = !app.base.is_empty()
            && root_cargo
                .as_ref()
                .is_some_and(|t| t.contains_key("workspace"));
        if in_workspace {
            workspace_manifests = root_cargo.as_ref().and_then(|t| member_manifests(&root, t));
        }
        let locked = if app.has("Cargo.lock") || (in_workspace && root.has("Cargo.lock")) {
            " --locked"
        } else {
            ""
        };
        let package = match (&name, in_workspace) {
            (Some(n), true) => format!(" -p {n}"),
            _ => String::new(),
        };
        if in_workspace {
            det.evidence(format!(
                "member of the Cargo workspace at the repository root: built from there with -p {}",
                name.as_deref().unwrap_or(b)
            ));
            det.analysis
                .details
                .env
                .insert("DEVGEM_BUILD_ROOT".into(), ".".into());
        }
        det.analysis.build_command = Some(format!(
            "cargo build --release{locked} --target-dir target{package} --bin {b}"
        ));
        let start = if framework == Some("rocket") {
            format!("ROCKET_ADDRESS=0.0.0.0 ROCKET_PORT=$PORT ./target/release/{b}")
        } else {
            format!("./target/release/{b}")
        };
        det.analysis.start_command = Some(procfile_web(app).unwrap_or(start));
        det.analysis.entrypoint = Some(if bins.is_empty() {
            "src/main.rs".into()
        } else {
            format!("bin {b}")
        });
        det.analysis.details.artifact = Some(b.clone());
    }
    let (bpk, rpk, ev) = native::lookup("rust", deps.iter().map(String::as_str));
    for e in ev {
        det.evidence(e);
    }
    det.analysis.details.build_system_packages = bpk;
    let mut rpk = rpk;
    rpk.push("ca-certificates".into());
    det.analysis.system_packages = dedup(rpk);
    det.analysis.reads_port_env =
        any_source(app, RS, &READS_PORT, 4).is_some() || framework == Some("rocket");
    port_from_sources(
        app,
        &mut det.analysis,
        RS,
        &ADDR,
        (framework == Some("rocket")).then_some(8000),
        "read the port: let port = std::env::var(\"PORT\").unwrap_or_else(|_| \"8080\".into()); and bind (\"0.0.0.0\", port)",
    );
    det.analysis.env_vars = env_vars_in(
        app,
        RS,
        &[EnvPattern {
            re: &ENV,
            required: Required::When(&UNWRAPPED),
        }],
        runs_in_app,
    );
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    let d = &mut det.analysis.details;
    d.template = Some(Template::Rust);
    d.build_image = Some(format!("rust:{v}-slim-bookworm"));
    d.base_image = Some("debian:bookworm-slim".into());
    d.manifests =
        workspace_manifests.unwrap_or_else(|| existing_files(app, &["Cargo.toml", "Cargo.lock"]));
    Some(det)
}

/// Whether a source file is part of the running app: not a build script (it runs inside
/// `cargo build`, where Cargo sets its variables), and not tests, benches or examples.
fn runs_in_app(path: &str) -> bool {
    let mut parts = path.split('/');
    let file = parts.next_back().unwrap_or_default();
    file != "build.rs" && !parts.any(|dir| matches!(dir, "tests" | "benches" | "examples"))
}

/// The workspace's Cargo.toml and Cargo.lock and every member's Cargo.toml, root-relative, so
/// the Dockerfile can build the dependencies before the sources arrive. Members are listed
/// literally or as `dir/*`; `None` (no dependency layer) for other patterns, or for paths that
/// are not plain names, since they end up in Dockerfile instructions.
fn member_manifests(root: &App, cargo: &toml::Table) -> Option<Vec<String>> {
    let patterns = cargo.get("workspace")?.get("members")?.as_array()?;
    let mut members: Vec<String> = vec![];
    for pattern in patterns {
        let pattern = pattern.as_str()?.trim_end_matches('/');
        match pattern.strip_suffix("/*") {
            Some(parent) if !parent.contains('*') => members.extend(
                root.subdirs(parent)
                    .into_iter()
                    .map(|d| format!("{parent}/{d}")),
            ),
            None if !pattern.contains(['*', '?', '[']) => members.push(pattern.to_string()),
            _ => return None,
        }
    }
    let plain = |p: &str| {
        !p.is_empty()
            && !p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
    };
    let mut manifests = existing_files(root, &["Cargo.toml", "Cargo.lock"]);
    for member in members {
        let manifest = format!("{member}/Cargo.toml");
        if !root.has(&manifest) {
            continue;
        }
        if !plain(&member) {
            return None;
        }
        manifests.push(manifest);
    }
    Some(manifests)
}
