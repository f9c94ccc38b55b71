//! JavaScript runtimes: Node.js (npm, Yarn, pnpm), Bun and Deno; server frameworks (Express,
//! Fastify, Koa, NestJS, Hapi, Hono, Elysia, Oak, Fresh), full-stack frameworks (Next.js, Nuxt,
//! SvelteKit, Remix, Astro) and single-page apps (Angular, Vite, Create React App, Vue CLI,
//! Gatsby).

use crate::common::*;
use crate::native;
use crate::pat::Pat;
use crate::repo::App;
use crate::{Language, PackageManager, Template};
use serde_json::Value;

/// Evidence prefix when the start command only comes from package.json `main` (a library in
/// a monorepo looks like this, so monorepo discovery skips it).
pub const MAIN_EVIDENCE: &str = "no start script; package.json main: ";

const JS: &[&str] = &["js", "mjs", "cjs", "ts", "mts", "tsx", "jsx"];
const NODE_KNOWN: &[&str] = &["18", "20", "22", "24"];
const NODE_DEFAULT: &str = "22";

static ENV_DOT: Pat = Pat::new(
    &["process.env.", "Bun.env.", "import.meta.env."],
    r"(?:process\.env|Bun\.env|import\.meta\.env)\.([A-Za-z_][A-Za-z0-9_]*)",
);
static ENV_IDX: Pat = Pat::new(
    &["process.env["],
    r#"process\.env\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]"#,
);
static ENV_DENO: Pat = Pat::new(
    &["Deno.env.get"],
    r#"Deno\.env\.get\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\)"#,
);
static READS_PORT: Pat = Pat::new(
    &["PORT"],
    r#"(?:process\.env|Bun\.env)(?:\.PORT|\[\s*["']PORT["']\s*\])|Deno\.env\.get\(\s*["']PORT["']"#,
);
static LISTEN_PORT: Pat = Pat::new(
    &["listen(", "port", "PORT"],
    r"(?:\.listen\(\s*\{?\s*(?:port\s*:\s*)?|\bport\s*[:=]\s*|PORT\)?\s*(?:\|\||\?\?)\s*)(\d{2,5})\b",
);
static LOCALHOST: Pat = Pat::new(
    &["127.0.0.1", "localhost"],
    r#"listen\([^)]*["'](127\.0\.0\.1|localhost)["']"#,
);
static FASTIFY_LISTEN: Pat = Pat::new(&[".listen("], r"\.listen\(\s*\{([^}]*)\}");
static STANDALONE: Pat = Pat::new(&["standalone"], r#"output\s*:\s*["']standalone["']"#);
static EXPORT: Pat = Pat::new(&["export"], r#"output\s*:\s*["']export["']"#);

/// A parsed package.json.
pub struct Pkg {
    pub json: Value,
}

impl Pkg {
    pub(super) fn deps(&self) -> Vec<String> {
        let mut out = vec![];
        for k in ["dependencies", "devDependencies", "peerDependencies"] {
            if let Some(o) = self.json.get(k).and_then(Value::as_object) {
                out.extend(o.keys().cloned());
            }
        }
        out
    }
    fn runtime_deps(&self) -> Vec<String> {
        self.json
            .get("dependencies")
            .and_then(Value::as_object)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }
    pub(super) fn has(&self, dep: &str) -> bool {
        ["dependencies", "devDependencies"]
            .iter()
            .any(|k| self.json.get(k).and_then(|o| o.get(dep)).is_some())
    }
    pub(super) fn script(&self, name: &str) -> Option<&str> {
        self.json
            .get("scripts")
            .and_then(|s| s.get(name))
            .and_then(Value::as_str)
    }
    fn str(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(Value::as_str)
    }
}

/// The package.json, with a warning when it is malformed.
pub(super) fn package_json(app: &App) -> Option<Result<Pkg, String>> {
    let t = app.text("package.json")?;
    Some(match serde_json::from_str::<Value>(t) {
        Ok(v) if v.is_object() => Ok(Pkg { json: v }),
        Ok(_) => Err("warning: package.json is not a JSON object; ignored".into()),
        Err(e) => Err(format!(
            "warning: package.json is not valid JSON ({e}); ignored"
        )),
    })
}

pub(super) struct Pm {
    pub(super) manager: PackageManager,
    pub(super) lock: Option<&'static str>,
    /// Yarn 2 or later, whose install takes other flags than Yarn 1's.
    berry: bool,
}

/// Whether a Yarn project is a Berry one: it pins Yarn 2 or later, has a `.yarnrc.yml`, or a
/// lockfile in Berry's format.
fn is_yarn_berry(app: &App, field: &str) -> bool {
    let pinned_berry = field
        .strip_prefix("yarn@")
        .is_some_and(|v| !v.starts_with("1.") && v != "1");
    pinned_berry
        || app.has(".yarnrc.yml")
        || app
            .text("yarn.lock")
            .is_some_and(|t| t.lines().any(|l| l.starts_with("__metadata:")))
}

pub(super) fn package_manager(app: &App, pkg: Option<&Pkg>) -> Pm {
    let field = pkg.and_then(|p| p.str("packageManager")).unwrap_or("");
    for (lock, manager) in [
        ("bun.lockb", PackageManager::Bun),
        ("bun.lock", PackageManager::Bun),
        ("pnpm-lock.yaml", PackageManager::Pnpm),
        ("yarn.lock", PackageManager::Yarn),
        ("package-lock.json", PackageManager::Npm),
        ("npm-shrinkwrap.json", PackageManager::Npm),
    ] {
        if app.has(lock) {
            return Pm {
                manager,
                lock: Some(lock),
                berry: manager == PackageManager::Yarn && is_yarn_berry(app, field),
            };
        }
    }
    for manager in [
        PackageManager::Pnpm,
        PackageManager::Yarn,
        PackageManager::Bun,
    ] {
        if field.starts_with(manager.as_str()) {
            return Pm {
                manager,
                lock: None,
                berry: manager == PackageManager::Yarn && is_yarn_berry(app, field),
            };
        }
    }
    Pm {
        manager: PackageManager::Npm,
        lock: None,
        berry: false,
    }
}

/// The version of the package manager a repository needs, and why.
#[derive(Debug, PartialEq)]
pub(super) struct Pin {
    pub(super) version: String,
    source: String,
}

/// The last release of each pnpm major a pnpm-lock.yaml `lockfileVersion` needs: pnpm 9
/// refuses a version-6 lockfile, pnpm 8 writes one.
const PNPM_FOR_LOCKFILE: &[(&str, &str)] = &[
    ("5", "7.33.7"),
    ("6", "8.15.9"),
    ("7", "9.15.9"),
    ("9", "9.15.9"),
];

/// The last release of each Yarn Berry major a yarn.lock `__metadata` version needs.
const YARN_FOR_LOCKFILE: &[(&str, &str)] = &[
    ("4", "2.4.2"),
    ("5", "2.4.2"),
    ("6", "3.8.7"),
    ("8", "4.18.1"),
    ("10", "4.18.1"),
];

/// Yarn Berry when the repository has no pin but is a Berry project (`.yarnrc.yml`).
const YARN_BERRY_DEFAULT: &str = "4.18.1";

/// The package manager version the repository pins: package.json's `packageManager`
/// (`pnpm@8.15.4+sha512...`), else what the lockfile's format needs (pnpm's
/// `lockfileVersion`, Yarn Berry's `__metadata` version, or Berry for a `.yarnrc.yml`).
/// `None` when any version of the package manager will do (npm, Yarn classic, no pin).
pub(super) fn package_manager_pin(
    app: &App,
    pkg: Option<&Pkg>,
    manager: PackageManager,
) -> Option<Pin> {
    let declared = pkg
        .and_then(|p| p.str("packageManager"))
        .and_then(|f| f.split_once('@'))
        .filter(|(name, _)| *name == manager.as_str());
    if let Some((_, version)) = declared {
        let version = version.split('+').next().unwrap_or(version).trim();
        if !version.is_empty() {
            return Some(Pin {
                version: version.to_string(),
                source: "from package.json packageManager".into(),
            });
        }
    }
    let lockfile_version = |text: &str, key: &str| -> Option<String> {
        text.lines().take(40).find_map(|l| {
            let value = l.trim().strip_prefix(key)?.trim().trim_matches(['\'', '"']);
            Some(value.split('.').next().unwrap_or(value).to_string())
        })
    };
    match manager {
        PackageManager::Pnpm => {
            let major = lockfile_version(app.text("pnpm-lock.yaml")?, "lockfileVersion:")?;
            let (_, version) = PNPM_FOR_LOCKFILE.iter().find(|(m, _)| *m == major)?;
            Some(Pin {
                version: (*version).to_string(),
                source: format!(
                    "pnpm-lock.yaml lockfileVersion {major} needs pnpm {}",
                    &version[..1]
                ),
            })
        }
        PackageManager::Yarn => {
            let lock = app.text("yarn.lock").unwrap_or("");
            let berry_lock = lock.lines().any(|l| l.starts_with("__metadata:"));
            if berry_lock
                && let Some(major) = lock
                    .split("__metadata:")
                    .nth(1)
                    .and_then(|rest| lockfile_version(rest, "version:"))
                && let Some((_, version)) = YARN_FOR_LOCKFILE.iter().find(|(m, _)| *m == major)
            {
                return Some(Pin {
                    version: (*version).to_string(),
                    source: format!("yarn.lock metadata version {major} is Yarn Berry's"),
                });
            }
            (berry_lock || app.has(".yarnrc.yml")).then(|| Pin {
                version: YARN_BERRY_DEFAULT.to_string(),
                source: "a Yarn Berry project (.yarnrc.yml)".into(),
            })
        }
        _ => None,
    }
}

/// Install (all dependencies when there is a build, else production only), and a script runner.
pub(super) fn install_cmd(pm: &Pm, with_dev: bool) -> String {
    match (pm.manager, pm.lock.is_some(), with_dev) {
        (PackageManager::Npm, true, true) => "npm ci --include=dev".into(),
        (PackageManager::Npm, true, false) => "npm ci --omit=dev".into(),
        (PackageManager::Npm, false, true) => "npm install --include=dev".into(),
        (PackageManager::Npm, false, false) => "npm install --omit=dev".into(),
        // Berry has no production-only install without a plugin; `--immutable` is its
        // frozen lockfile.
        (PackageManager::Yarn, lock, _) if pm.berry => {
            format!("yarn install{}", if lock { " --immutable" } else { "" })
        }
        (PackageManager::Yarn, lock, dev) => format!(
            "yarn install{}{}",
            if lock { " --frozen-lockfile" } else { "" },
            if dev {
                " --production=false"
            } else {
                " --production=true"
            }
        ),
        (PackageManager::Pnpm, lock, dev) => format!(
            "pnpm install{}{}",
            if lock { " --frozen-lockfile" } else { "" },
            if dev { " --prod=false" } else { " --prod" }
        ),
        (PackageManager::Bun, lock, dev) => format!(
            "bun install{}{}",
            if lock { " --frozen-lockfile" } else { "" },
            if dev { "" } else { " --production" }
        ),
        _ => "npm install".into(),
    }
}

fn run_script(pm: &Pm, script: &str) -> String {
    format!("{} run {script}", pm.manager)
}

fn node_version(app: &App, pkg: Option<&Pkg>) -> Versioned {
    for f in [".nvmrc", ".node-version"] {
        if let Some(v) = pin_file(app, f) {
            let v = if v.starts_with("lts") {
                NODE_DEFAULT.to_string()
            } else {
                v
            };
            return Versioned::new(v, f);
        }
    }
    if let Some(v) = tool_versions(app, "nodejs").or_else(|| tool_versions(app, "node")) {
        return v;
    }
    if let Some(e) = pkg
        .and_then(|p| p.json.get("engines"))
        .and_then(|e| e.get("node"))
        .and_then(Value::as_str)
        && let Some(v) = pick_version(e, NODE_DEFAULT, NODE_KNOWN)
    {
        return Versioned::new(v, format!("package.json engines.node \"{e}\""));
    }
    if let Some(v) = pkg
        .and_then(|p| p.json.get("volta"))
        .and_then(|e| e.get("node"))
        .and_then(Value::as_str)
    {
        return Versioned::new(v, "package.json volta.node");
    }
    Versioned::new(NODE_DEFAULT, "default (no pin found)")
}

/// Which framework, from the manifest: meta-frameworks first, then servers, then SPA builders.
const FRAMEWORKS: &[(&str, &[&str])] = &[
    ("nextjs", &["next"]),
    ("nuxt", &["nuxt", "nuxt3"]),
    ("sveltekit", &["@sveltejs/kit"]),
    // React Router 7 framework mode (Remix's successor); plain `react-router` is a library.
    ("react-router", &["@react-router/dev"]),
    (
        "remix",
        &[
            "@remix-run/node",
            "@remix-run/serve",
            "@remix-run/react",
            "@remix-run/dev",
        ],
    ),
    ("astro", &["astro"]),
    ("nestjs", &["@nestjs/core"]),
    ("angular", &["@angular/core"]),
    ("gatsby", &["gatsby"]),
    ("express", &["express"]),
    ("fastify", &["fastify"]),
    ("koa", &["koa"]),
    ("hapi", &["@hapi/hapi", "hapi"]),
    ("elysia", &["elysia"]),
    ("hono", &["hono"]),
    ("vue-cli", &["@vue/cli-service"]),
    ("cra", &["react-scripts"]),
    ("vite", &["vite"]),
];

const SPA: &[&str] = &["angular", "vite", "cra", "vue-cli", "gatsby"];

/// The Node.js detector (also used by Bun with another runtime).
fn detect_js(app: &App, runtime: Language) -> Option<Detected> {
    // No package.json: a lone server file is still a Node app (nothing to install).
    let lone = match package_json(app) {
        Some(parsed) => Err(parsed),
        None if runtime == Language::Node => Ok(lone_server(app)?),
        None => return None,
    };
    let (pkg, warn) = match &lone {
        Ok(_) => (None, None),
        Err(Ok(p)) => (
            Some(Pkg {
                json: p.json.clone(),
            }),
            None,
        ),
        Err(Err(w)) => (None, Some(w.clone())),
    };
    let lone = lone.ok();
    let pm = package_manager(app, pkg.as_ref());
    let is_bun = pm.manager == PackageManager::Bun
        || app.has("bunfig.toml")
        || pkg.as_ref().is_some_and(|p| {
            p.has("@types/bun")
                || p.has("bun-types")
                || p.script("start").is_some_and(|s| s.starts_with("bun "))
        });
    if (runtime == Language::Bun) != is_bun && runtime == Language::Bun {
        return None;
    }
    let mut det = Detected::new(
        runtime,
        if runtime == Language::Bun {
            0.65
        } else if is_bun {
            0.45
        } else {
            0.6
        },
    );
    if let Some(w) = warn {
        det.evidence(w);
        det.score = 0.35;
    }
    if let Some(f) = lone {
        det.score = 0.4;
        det.evidence(format!(
            "no package.json: {f} starts a server with Node's own modules"
        ));
    } else {
        det.evidence(if runtime == Language::Bun {
            "package.json with Bun markers (bun lockfile, bunfig.toml or bun types)".to_string()
        } else {
            "package.json at the app root".to_string()
        });
    }
    let empty = Pkg {
        json: Value::Object(Default::default()),
    };
    let p = pkg.as_ref().unwrap_or(&empty);
    // Without a package.json there is nothing to install, so no package manager.
    if lone.is_none() {
        det.analysis.package_manager = Some(pm.manager);
        det.evidence(format!(
            "package manager {}{}",
            pm.manager,
            pm.lock.map(|l| format!(" (from {l})")).unwrap_or_default()
        ));
        if let Some(pin) = package_manager_pin(app, pkg.as_ref(), pm.manager) {
            det.evidence(format!("{} {} ({})", pm.manager, pin.version, pin.source));
            det.analysis.details.package_manager_version = Some(pin.version);
        }
    }
    if pm.lock.is_some() {
        det.score += 0.05;
    }
    if runtime == Language::Bun {
        let v = p
            .str("packageManager")
            .and_then(|s| s.strip_prefix("bun@"))
            .map(|v| Versioned::new(v, "package.json packageManager"))
            .or_else(|| tool_versions(app, "bun"))
            .unwrap_or_else(|| Versioned::new("1", "default (no pin found)"));
        det.set_version(v);
    } else {
        det.set_version(node_version(app, pkg.as_ref()));
    }

    let framework = FRAMEWORKS
        .iter()
        .find(|(_, deps)| deps.iter().any(|d| p.has(d)))
        .map(|(f, deps)| (*f, deps.iter().find(|d| p.has(d)).copied().unwrap_or("")));
    if let Some((f, dep)) = framework {
        det.score += 0.3;
        det.evidence(format!("framework {f}: \"{dep}\" is a dependency"));
    }
    let framework = framework.map(|f| f.0);
    det.analysis.framework = framework.map(str::to_string);

    // Decoys: the package.json is there, but something else runs the app.
    if let Some(cfg) = app
        .first_of(&["deno.json", "deno.jsonc", "deno.lock"])
        .or_else(|| {
            p.script("start")
                .filter(|s| s.trim_start().starts_with("deno "))
                .map(|_| "the start script")
        })
    {
        det.score = (det.score - 0.4).max(0.1);
        det.evidence(format!(
            "{cfg} says the app runs on Deno: package.json only lists its npm packages"
        ));
    }
    let server = framework.is_some_and(|f| !SPA.contains(&f));
    if let Some(backend) = app.first_of(BACKEND_MANIFESTS)
        && p.script("start").is_none()
        && !server
    {
        det.score = 0.3;
        det.evidence(format!(
            "package.json has no start script and no server beside {backend}: it only builds front-end assets"
        ));
    }

    let mut manifests = if lone.is_some() {
        vec![]
    } else {
        vec!["package.json".to_string()]
    };
    if let Some(l) = pm.lock {
        manifests.push(l.to_string());
    }
    for extra in [".npmrc", ".yarnrc.yml", "pnpm-workspace.yaml"] {
        if app.has(extra) {
            manifests.push(extra.to_string());
        }
    }
    det.analysis.details.manifests = manifests;

    let build_script = p.script("build").map(|_| run_script(&pm, "build"));
    let mut start: Option<String> = procfile_web(app);
    if let Some(s) = &start {
        det.evidence(format!("start command from Procfile: {s}"));
    }
    let mut template = if runtime == Language::Bun {
        Template::Bun
    } else {
        Template::Node
    };
    let mut static_dir: Option<String> = None;
    let mut has_build = false;
    let mut framework_default_port: Option<u16> = None;
    let mut env = std::collections::BTreeMap::new();
    let config = |prefix: &str| {
        app.files_in("")
            .into_iter()
            .find(|f| f.starts_with(prefix))
            .and_then(|f| app.text(&f).map(|t| (f.clone(), t)))
    };
    match framework {
        Some("nextjs") => {
            has_build = true;
            framework_default_port = Some(3000);
            // A commented-out `output: 'export'` is not an export.
            let cfg = config("next.config").map(|(f, t)| (f, without_js_comments(t)));
            let standalone = cfg.as_ref().is_some_and(|(_, t)| STANDALONE.is_match(t));
            let export_script = p.script("build").is_some_and(|b| b.contains("next export"));
            let export = export_script || cfg.as_ref().is_some_and(|(_, t)| EXPORT.is_match(t));
            if export {
                det.evidence(if export_script {
                    "the build script runs `next export`: served as static files from out/"
                } else {
                    "next.config sets output: 'export': served as static files from out/"
                });
                template = Template::Spa;
                static_dir = Some("out".into());
            } else {
                if standalone {
                    det.evidence(format!(
                        "{} sets output: 'standalone': the image keeps only .next/standalone",
                        cfg.as_ref().map(|c| c.0.as_str()).unwrap_or("next.config")
                    ));
                    template = Template::NextjsStandalone;
                    if app.has_dir("public") {
                        det.analysis.details.artifact = Some("public".into());
                    }
                } else {
                    template = Template::Nextjs;
                    det.evidence(
                        "not a static export: the Next.js server renders the pages (next start)",
                    );
                }
                if start.is_none() {
                    start = Some("next start -H 0.0.0.0 -p $PORT".into());
                }
            }
        }
        Some("nuxt") => {
            has_build = true;
            framework_default_port = Some(3000);
            template = Template::Nuxt;
            if start.is_none() {
                start = Some("HOST=0.0.0.0 node .output/server/index.mjs".into());
            }
            det.evidence("Nuxt builds a Nitro server in .output/ that reads HOST and PORT");
        }
        Some("sveltekit") => {
            has_build = true;
            framework_default_port = Some(3000);
            if p.has("@sveltejs/adapter-static") {
                template = Template::Spa;
                static_dir = Some("build".into());
                det.evidence("@sveltejs/adapter-static: served as static files from build/");
            } else {
                template = Template::NodeBuild;
                if !p.has("@sveltejs/adapter-node") {
                    det.evidence("warning: SvelteKit without @sveltejs/adapter-node; add it so `node build` serves the app (adapter-auto does not target containers)");
                } else {
                    det.evidence("@sveltejs/adapter-node builds a Node server in build/ that reads HOST and PORT");
                }
                if start.is_none() {
                    start = Some("HOST=0.0.0.0 node build".into());
                }
            }
        }
        Some("react-router") => {
            has_build = true;
            framework_default_port = Some(3000);
            let cfg = config("react-router.config").map(|(f, t)| (f, without_js_comments(t)));
            if cfg.as_ref().is_some_and(|(_, t)| SSR_OFF.is_match(t)) {
                template = Template::Spa;
                static_dir = Some("build/client".into());
                det.evidence("react-router.config sets ssr: false: served as static files from build/client/");
            } else {
                template = Template::NodeBuild;
                if start.is_none() {
                    let s = p
                        .script("start")
                        .map(str::to_string)
                        .unwrap_or_else(|| "react-router-serve ./build/server/index.js".into());
                    det.evidence(format!(
                        "React Router framework mode: {s} serves the build (react-router-serve reads PORT)"
                    ));
                    start = Some(s);
                }
            }
        }
        Some("remix") => {
            has_build = true;
            framework_default_port = Some(3000);
            template = Template::NodeBuild;
            if start.is_none() {
                let s = p.script("start").map(str::to_string).unwrap_or_else(|| {
                    if app.has("vite.config.ts") || app.has("vite.config.js") {
                        "remix-serve ./build/server/index.js".into()
                    } else {
                        "remix-serve ./build/index.js".into()
                    }
                });
                det.evidence(format!(
                    "Remix production server: {s} (remix-serve reads PORT)"
                ));
                start = Some(s);
            }
        }
        Some("astro") => {
            has_build = true;
            if p.has("@astrojs/node") {
                template = Template::NodeBuild;
                framework_default_port = Some(4321);
                if start.is_none() {
                    start = Some("HOST=0.0.0.0 node ./dist/server/entry.mjs".into());
                }
                det.evidence("@astrojs/node adapter: a Node server in dist/server/entry.mjs");
            } else {
                template = Template::Spa;
                static_dir = Some("dist".into());
                det.evidence("Astro without a server adapter builds a static site in dist/");
            }
        }
        Some("nestjs") => {
            has_build = true;
            framework_default_port = Some(3000);
            template = Template::NodeBuild;
            if start.is_none() {
                let s = p
                    .script("start:prod")
                    .filter(|s| s.starts_with("node "))
                    .map(str::to_string)
                    .unwrap_or_else(|| "node dist/main".into());
                det.evidence(format!("NestJS compiles to dist/; production start: {s}"));
                if app.has("src/main.ts") {
                    det.analysis.entrypoint = Some("src/main.ts".into());
                }
                start = Some(s);
            }
        }
        Some(f) if SPA.contains(&f) => {
            has_build = true;
            template = Template::Spa;
            let dir = match f {
                "angular" => angular_output(app).unwrap_or_else(|| "dist".into()),
                "cra" => "build".into(),
                "gatsby" => "public".into(),
                _ => "dist".into(),
            };
            det.evidence(format!(
                "single-page app: `{}` writes static files to {dir}/, served by a static server",
                build_script.clone().unwrap_or_default()
            ));
            static_dir = Some(dir);
        }
        _ => {}
    }

    // Plain servers: start script, then main, then a conventional file.
    if start.is_none() && static_dir.is_none() {
        if let Some(s) = p.script("start") {
            let s = s.trim();
            if let Some(rest) = s.strip_prefix("nodemon ") {
                det.evidence(format!("warning: the start script uses nodemon (a dev tool); running `node {rest}` instead"));
                start = Some(format!("node {rest}"));
            } else if s.starts_with("node ")
                || s.starts_with("bun ")
                || s.starts_with("tsx ")
                || s.starts_with("ts-node ")
            {
                det.evidence(format!("start script: {s}"));
                start = Some(s.to_string());
            } else {
                det.evidence(format!("start script: {s} (run through {})", pm.manager));
                start = Some(run_script(&pm, "start"));
            }
            if p.script("build").is_some() && !s.contains("vite") {
                has_build = true;
            }
        } else if let Some(f) = lone.or_else(|| app.has("server.js").then_some("server.js")) {
            // npm's default `start` is `node server.js` when server.js exists.
            if lone.is_none() {
                det.evidence("no start script: npm starts server.js (`node server.js`)");
            }
            start = Some(format!("{runtime} {f}"));
        } else if let Some(m) = p
            .str("main")
            .filter(|m| app.has(m.trim_start_matches("./")))
        {
            det.evidence(format!("{MAIN_EVIDENCE}{m}"));
            // The runtime's name is its command (`node`, `bun`).
            start = Some(format!("{runtime} {m}"));
        } else if let Some(f) = [
            "server.js",
            "index.js",
            "app.js",
            "main.js",
            "server.mjs",
            "index.mjs",
            "src/index.js",
            "src/server.js",
            "index.ts",
            "src/index.ts",
            "server.ts",
        ]
        .iter()
        .find(|f| app.has(f))
        {
            if runtime == Language::Bun {
                start = Some(format!("bun {f}"));
            } else if f.ends_with(".ts") {
                start = Some(format!("npx tsx {f}"));
            } else {
                start = Some(format!("node {f}"));
            }
            det.evidence(format!("no start script; entry file {f}"));
        }
        if start.is_some() {
            det.score += 0.1;
        }
    } else if start.is_some() || static_dir.is_some() {
        det.score += 0.1;
    }
    if runtime == Language::Bun && template == Template::Node {
        template = Template::Bun;
    }
    if let Some(dir) = &static_dir {
        start = Some(format!(
            "python3 -m http.server \"$PORT\" --bind 0.0.0.0 --directory {dir}"
        ));
        det.analysis.details.native_start_command = start.clone();
        env.insert("STATIC_DIR".to_string(), dir.clone());
    }
    det.analysis.details.static_dir = static_dir.clone();
    det.analysis.details.template = Some(template);

    let entry = start.as_deref().and_then(|s| {
        s.split_whitespace()
            .find(|w| JS.iter().any(|e| w.ends_with(&format!(".{e}"))))
            .map(|w| w.trim_start_matches("./").to_string())
    });
    if det.analysis.entrypoint.is_none() {
        det.analysis.entrypoint = entry.clone().or_else(|| p.str("main").map(str::to_string));
    }

    // Port.
    let reads = any_source(app, JS, &READS_PORT, 3);
    det.analysis.reads_port_env = reads.is_some()
        || framework.is_some_and(|f| {
            [
                "nextjs",
                "nuxt",
                "sveltekit",
                "remix",
                "react-router",
                "astro",
            ]
            .contains(&f)
        });
    let hit = entry
        .as_deref()
        .and_then(|e| app.text(e).map(|t| (e, t)))
        .and_then(|(e, t)| {
            LISTEN_PORT.captures(t).and_then(|c| {
                let m = c.get(1)?;
                Some(PortHit {
                    file: app.full(e),
                    line: line_of(t, m.start()),
                    port: m.as_str().parse().ok()?,
                    text: c.get(0)?.as_str().to_string(),
                })
            })
        })
        .or_else(|| find_port(app, JS, &LISTEN_PORT, 2));
    det.analysis.dev_port = hit
        .as_ref()
        .map(|h| h.port)
        .or(dotenv_port(app))
        .or(framework_default_port);
    let own_server = static_dir.is_none()
        && !framework.is_some_and(|f| {
            [
                "nextjs",
                "nuxt",
                "sveltekit",
                "remix",
                "react-router",
                "astro",
            ]
            .contains(&f)
        });
    if own_server {
        if let Some(h) = &hit
            && reads.is_none()
            && h.port != 8080
        {
            det.analysis.details.port_issue = Some(hardcoded_port_issue(
                h,
                "read the port from the environment: const port = process.env.PORT || 8080; and listen on \"0.0.0.0\"",
            ));
        } else if let Some(h) = find_port(app, JS, &LOCALHOST, 3).map(|mut h| {
            h.port = 0;
            h
        }) {
            det.analysis.details.port_issue = Some(crate::PortIssue {
                file: h.file,
                line: h.line,
                message: "the server binds to localhost, unreachable inside a container".into(),
                fix: "listen on \"0.0.0.0\"".into(),
                port: None,
            });
        } else if framework == Some("fastify") {
            for (path, text) in app.sources(JS, 2) {
                if let Some(c) = FASTIFY_LISTEN.captures(text)
                    && let Some(m) = c.get(1)
                    && !m.as_str().contains("host")
                {
                    det.analysis.details.port_issue = Some(crate::PortIssue {
                        file: app.full(path),
                        line: line_of(text, m.start()),
                        message: "Fastify listens on localhost unless a host is given: unreachable inside a container".into(),
                        fix: "pass host: \"0.0.0.0\" to listen(), e.g. app.listen({ port: Number(process.env.PORT) || 8080, host: \"0.0.0.0\" })".into(),
                        port: None,
                    });
                    break;
                }
            }
        }
    }

    // Native modules.
    let (bpk, rpk, ev) = native::lookup("node", p.runtime_deps().iter().map(String::as_str));
    for e in ev {
        det.evidence(e);
    }
    det.analysis.details.build_system_packages = bpk;
    det.analysis.system_packages = rpk;
    if p.has("puppeteer") {
        env.insert("PUPPETEER_CACHE_DIR".into(), "/app/.cache/puppeteer".into());
    }
    let _ = p.deps();

    let dev_runner = start
        .as_deref()
        .and_then(dev_runner)
        .filter(|r| !p.runtime_deps().iter().any(|d| d == r));
    if let Some(r) = dev_runner {
        det.evidence(format!(
            "the start command runs {r}, a dev dependency: the plan installs dev dependencies"
        ));
    }
    det.analysis.install_command = if lone.is_some() {
        None
    } else {
        Some(install_cmd(&pm, has_build || dev_runner.is_some()))
    };
    det.analysis.build_command = if has_build {
        build_script.clone()
    } else {
        None
    };
    if has_build && build_script.is_none() {
        let b = match framework {
            Some("nextjs") => Some("next build"),
            Some("nuxt") => Some("nuxt build"),
            Some("astro") => Some("astro build"),
            Some("vite") | Some("sveltekit") | Some("remix") => Some("vite build"),
            Some("react-router") => Some("react-router build"),
            Some("angular") => Some("ng build"),
            Some("cra") => Some("react-scripts build"),
            Some("nestjs") => Some("nest build"),
            _ => None,
        };
        det.analysis.build_command = b.map(str::to_string);
    }
    det.analysis.start_command = start;
    det.analysis.env_vars = env_vars(
        app,
        JS,
        &[
            EnvPattern {
                re: &ENV_DOT,
                required: Required::UnlessDefault,
            },
            EnvPattern {
                re: &ENV_IDX,
                required: Required::UnlessDefault,
            },
        ],
    )
    .into_iter()
    .filter(|v| !v.name.starts_with("VITE_") || framework == Some("vite"))
    .collect();
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    let d = &mut det.analysis.details;
    d.env.extend(env);
    if runtime == Language::Bun {
        d.base_image = Some(format!("oven/bun:{v}-slim"));
        d.build_image = d.base_image.clone();
    } else {
        d.build_image = Some(format!("node:{v}-bookworm-slim"));
        d.base_image = if static_dir.is_some() {
            Some("nginxinc/nginx-unprivileged:1.27-bookworm".into())
        } else {
            Some(format!("node:{v}-bookworm-slim"))
        };
    }
    det.score = det.score.min(1.0);
    Some(det)
}

/// Manifests of a server runtime that a package.json beside them only builds assets for.
const BACKEND_MANIFESTS: &[&str] = &[
    "composer.json",
    "Gemfile",
    "manage.py",
    "requirements.txt",
    "pyproject.toml",
    "go.mod",
    "mix.exs",
];

static SERVER_MARKER: Pat = Pat::new(
    &["createServer", ".listen("],
    r"\bcreateServer\(|\.listen\(",
);
static SSR_OFF: Pat = Pat::new(&["ssr"], r"\bssr\s*:\s*false\b");

/// A server file that runs without a package.json (only Node's own modules), npm's default
/// `server.js` first.
fn lone_server(app: &App) -> Option<&'static str> {
    [
        "server.js",
        "app.js",
        "index.js",
        "main.js",
        "server.mjs",
        "index.mjs",
        "app.mjs",
    ]
    .into_iter()
    .find(|f| app.text(f).is_some_and(|t| SERVER_MARKER.is_match(t)))
}

/// Tools that run TypeScript or reload code at start; projects list them as dev
/// dependencies, so a start command that uses one needs them installed.
const DEV_RUNNERS: &[&str] = &[
    "tsx",
    "ts-node",
    "ts-node-esm",
    "babel-node",
    "vite-node",
    "nodemon",
];

/// The dev tool a start command runs (`tsx src/index.ts`, `node --import tsx ...`,
/// `node -r ts-node/register ...`), as its npm package name.
pub fn dev_runner(start: &str) -> Option<&'static str> {
    let words: Vec<&str> = start
        .split_whitespace()
        .filter(|w| !w.contains('=') || w.starts_with('-'))
        .collect();
    let first = words.first()?.rsplit('/').next()?;
    let first = if first == "npx" {
        words.iter().skip(1).find(|w| !w.starts_with('-'))?
    } else {
        first
    };
    if let Some(r) = DEV_RUNNERS.iter().find(|r| **r == first) {
        return Some(if *r == "ts-node-esm" {
            "ts-node"
        } else if *r == "babel-node" {
            "@babel/node"
        } else {
            r
        });
    }
    if first == "node" {
        for w in words.windows(2) {
            let flag = w[0].split('=').next().unwrap_or(w[0]);
            let value = if w[0].contains('=') {
                w[0].split_once('=').map_or("", |x| x.1)
            } else {
                w[1]
            };
            if [
                "--import",
                "--loader",
                "--require",
                "-r",
                "--experimental-loader",
            ]
            .contains(&flag)
            {
                let pkg = value.split('/').next().unwrap_or(value);
                if let Some(r) = DEV_RUNNERS.iter().find(|r| **r == pkg) {
                    return Some(r);
                }
            }
        }
    }
    None
}

/// JavaScript without its `//` and `/* */` comments (strings containing `//`, such as URLs,
/// are kept: a `//` right after a colon or inside quotes is not a comment start).
fn without_js_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else if rest.starts_with("//") && !out.ends_with(':') {
            rest = rest.find('\n').map_or("", |i| &rest[i..]);
        } else if let Some(q) = rest.chars().next().filter(|c| "\"'`".contains(*c)) {
            let end = rest[1..].find(q).map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The Node image that builds front-end assets for an app another runtime serves.
pub const ASSET_BUILD_IMAGE: &str = "node:22-bookworm-slim";

/// The package manager of a front-end asset build, from the lockfile among `manifests`.
pub fn asset_package_manager(manifests: &[String]) -> Option<PackageManager> {
    Some(asset_pm(manifests).manager)
}

fn asset_pm(manifests: &[String]) -> Pm {
    let has = |f: &str| manifests.iter().any(|m| m == f);
    for (lock, manager) in [
        ("pnpm-lock.yaml", PackageManager::Pnpm),
        ("yarn.lock", PackageManager::Yarn),
        ("package-lock.json", PackageManager::Npm),
    ] {
        if has(lock) {
            return Pm {
                manager,
                lock: Some(lock),
                berry: false,
            };
        }
    }
    Pm {
        manager: PackageManager::Npm,
        lock: None,
        berry: false,
    }
}

/// The install and the build of front-end assets (`npm ci --include=dev`, `npm run build`),
/// from the package manifests among `manifests`: the same for the plan and the Dockerfile.
pub fn asset_build(manifests: &[String]) -> (String, String) {
    let pm = asset_pm(manifests);
    (install_cmd(&pm, true), run_script(&pm, "build"))
}

/// The package.json of a server app in another language when it only builds front-end assets
/// (a `build` script, no `start` script): the manifests to copy, for [`asset_build`].
pub fn asset_manifests(app: &App) -> Option<Vec<String>> {
    let Some(Ok(p)) = package_json(app) else {
        return None;
    };
    if p.script("start").is_some() || p.script("build").is_none() {
        return None;
    }
    let mut out = vec!["package.json".to_string()];
    out.extend(
        ["pnpm-lock.yaml", "yarn.lock", "package-lock.json", ".npmrc"]
            .iter()
            .filter(|f| app.has(f))
            .map(|f| f.to_string()),
    );
    Some(out)
}

fn angular_output(app: &App) -> Option<String> {
    let v: Value = serde_json::from_str(app.text("angular.json")?).ok()?;
    let projects = v.get("projects")?.as_object()?;
    let (name, proj) = projects.iter().next()?;
    let build = proj
        .get("architect")
        .or_else(|| proj.get("targets"))?
        .get("build")?;
    let builder = build.get("builder").and_then(Value::as_str).unwrap_or("");
    let out = build.get("options").and_then(|o| o.get("outputPath"));
    let base = match out {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("base")
            .and_then(Value::as_str)
            .unwrap_or("dist")
            .to_string(),
        _ => format!("dist/{name}"),
    };
    if builder.ends_with(":application") {
        Some(format!("{base}/browser"))
    } else {
        Some(base)
    }
}

pub fn detect_node(app: &App) -> Option<Detected> {
    detect_js(app, Language::Node)
}

pub fn detect_bun(app: &App) -> Option<Detected> {
    detect_js(app, Language::Bun)
}

/// Deno: deno.json(c) or Deno.serve in a main module.
pub fn detect_deno(app: &App) -> Option<Detected> {
    let cfg_name = app.first_of(&["deno.json", "deno.jsonc"]);
    let main = ["main.ts", "server.ts", "mod.ts", "main.js", "src/main.ts"]
        .iter()
        .find(|f| {
            app.text(f)
                .is_some_and(|t| t.contains("Deno.serve") || t.contains("Deno."))
        })
        .copied();
    // Deno 2 reads package.json too: a start script that runs deno says the runtime.
    let deno_script = match package_json(app) {
        Some(Ok(p)) => p
            .script("start")
            .map(str::trim)
            .filter(|s| s.starts_with("deno "))
            .map(str::to_string),
        _ => None,
    };
    if cfg_name.is_none() && main.is_none() {
        return None;
    }
    let mut det = Detected::new(Language::Deno, if cfg_name.is_some() { 0.7 } else { 0.4 });
    if let Some(s) = &deno_script {
        det.score += 0.3;
        det.evidence(format!("package.json start script runs Deno: {s}"));
    }
    let cfg: Option<Value> = cfg_name.and_then(|n| {
        let t = app.text(n)?;
        // deno.jsonc may hold comments: strip full-line ones.
        let cleaned: String = t
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        match serde_json::from_str(&cleaned) {
            Ok(v) => Some(v),
            Err(_) => {
                det.evidence(format!("warning: {n} could not be parsed; ignored"));
                None
            }
        }
    });
    if let Some(n) = cfg_name {
        det.evidence(format!("{n} at the app root"));
    }
    let imports = cfg
        .as_ref()
        .and_then(|c| c.get("imports"))
        .map(|i| i.to_string())
        .unwrap_or_default();
    let src: String = main.and_then(|m| app.text(m)).unwrap_or("").to_string();
    let framework = if imports.contains("$fresh") || imports.contains("@fresh/") {
        Some("fresh")
    } else if imports.contains("oak") || src.contains("/oak") || src.contains("@oak/") {
        Some("oak")
    } else if imports.contains("hono") || src.contains("hono") {
        Some("hono")
    } else {
        None
    };
    if let Some(f) = framework {
        det.score += 0.2;
        det.evidence(format!("framework {f}: imported"));
    }
    det.analysis.framework = framework.map(str::to_string);
    det.set_version(
        tool_versions(app, "deno")
            .unwrap_or_else(|| Versioned::new("2.1.4", "default (no pin found)")),
    );
    det.analysis.package_manager = Some(PackageManager::Deno);
    let task = cfg
        .as_ref()
        .and_then(|c| c.get("tasks"))
        .and_then(|t| t.get("start"))
        .and_then(Value::as_str);
    let start = if let Some(p) = procfile_web(app) {
        Some(p)
    } else if let Some(t) = task {
        det.evidence(format!("deno task start: {t}"));
        Some("deno task start".to_string())
    } else if let Some(s) = deno_script {
        Some(s)
    } else {
        main.map(|m| format!("deno run --allow-net --allow-env --allow-read {m}"))
    };
    det.analysis.entrypoint = main.map(str::to_string);
    det.analysis.install_command = main.map(|m| format!("deno cache {m}"));
    det.analysis.start_command = start;
    det.analysis.reads_port_env = src.contains("PORT");
    det.analysis.dev_port = Some(8000);
    if !det.analysis.reads_port_env
        && let Some(m) = main
    {
        det.analysis.details.port_issue = Some(crate::PortIssue {
            file: app.full(m),
            line: 1,
            message: "Deno.serve listens on 8000 by default and the code does not read $PORT".into(),
            fix: "Deno.serve({ port: Number(Deno.env.get(\"PORT\") ?? 8080), hostname: \"0.0.0.0\" }, handler)".into(),
            port: Some(8000),
        });
    }
    det.analysis.env_vars = env_vars_by(app, JS, &ENV_DENO, Required::UnlessDefault);
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    det.analysis.details.template = Some(Template::Deno);
    det.analysis.details.base_image = Some(format!("denoland/deno:debian-{v}"));
    det.analysis.details.manifests = cfg_name
        .into_iter()
        .map(str::to_string)
        .chain(app.has("deno.lock").then(|| "deno.lock".to_string()))
        .collect();
    Some(det)
}
