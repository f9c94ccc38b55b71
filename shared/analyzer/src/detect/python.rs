//! Python: pip, Poetry, uv, Pipenv, PDM; Flask, FastAPI, Django, Streamlit, Gradio, Starlette,
//! aiohttp, Sanic, Tornado, Bottle, Falcon; FastHTML, Litestar and Quart (ASGI apps, served by
//! uvicorn whatever their `__main__` block does).

use super::python_pins;
use crate::common::*;
use crate::native;
use crate::pat::Pat;
use crate::repo::App;
use crate::{Language, PackageManager, Template};

const PY: &[&str] = &["py"];
const KNOWN: &[&str] = &["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"];
const DEFAULT: &str = "3.13";

static STREAMLIT_IMPORT: Pat = Pat::new(&["import streamlit"], r"import streamlit");
static GRADIO_LAUNCH: Pat = Pat::new(&[".launch("], r"\.launch\(");
static ENV_INDEX: Pat = Pat::new(
    &["environ["],
    r#"os\.environ\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]"#,
);
static ENV_GET: Pat = Pat::new(
    &["getenv(", "environ.get("],
    r#"(?:os\.environ\.get|os\.getenv|getenv)\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"#,
);
static ENV_CFG: Pat = Pat::new(
    &["env(", "config("],
    r#"(?:env|config)\(\s*["']([A-Z][A-Z0-9_]*)["']\s*\)"#,
);
static READS_PORT: Pat = Pat::new(
    &["PORT"],
    r#"(?:environ(?:\.get)?|getenv)[\[(]\s*["']PORT["']"#,
);
static RUN_PORT: Pat = Pat::new(
    &[".run(", ".launch(", "run_app(", ".listen("],
    r#"(?:\.run|\.launch|run_app|\.listen)\([^)]*?port\s*=\s*(?:int\([^)]*?["']?)?(\d{2,5})"#,
);
static DEFAULT_PORT: Pat = Pat::new(&["PORT"], r#"["']PORT["']\s*,\s*["']?(\d{2,5})"#);
static LOCALHOST_RUN: Pat = Pat::new(
    &["127.0.0.1", "localhost"],
    r#"\.run\([^)]*host\s*=\s*["'](127\.0\.0\.1|localhost)["']"#,
);

static FLASK_APP: Pat = Pat::new(
    &["Flask("],
    r"(?m)^(\w+)\s*(?::\s*\w+\s*)?=\s*(?:flask\.)?Flask\(",
);
static FASTAPI_APP: Pat = Pat::new(
    &["FastAPI("],
    r"(?m)^(\w+)\s*(?::\s*\w+\s*)?=\s*(?:fastapi\.)?FastAPI\(",
);
static STARLETTE_APP: Pat = Pat::new(
    &["Starlette("],
    r"(?m)^(\w+)\s*(?::\s*\w+\s*)?=\s*Starlette\(",
);
static FASTHTML_APP: Pat = Pat::new(
    &["fast_app(", "FastHTML("],
    r"(?m)^(\w+)\s*(?:,\s*\w+\s*)*=\s*(?:fasthtml\.common\.)?(?:fast_app|FastHTML)\(",
);
static LITESTAR_APP: Pat = Pat::new(&["Litestar("], r"(?m)^(\w+)\s*=\s*Litestar\(");
static QUART_APP: Pat = Pat::new(&["Quart("], r"(?m)^(\w+)\s*=\s*Quart\(");
static FALCON_ASGI: Pat = Pat::new(&["falcon.asgi"], r"falcon\.asgi\.App\(");
static SANIC_APP: Pat = Pat::new(&["Sanic("], r"(?m)^(\w+)\s*=\s*Sanic\(");
static AIOHTTP_APP: Pat = Pat::new(
    &["web.Application("],
    r"(?m)^(\w+)\s*=\s*web\.Application\(",
);
static BOTTLE_APP: Pat = Pat::new(&["Bottle("], r"(?m)^(\w+)\s*=\s*(?:bottle\.)?Bottle\(");
static FALCON_APP: Pat = Pat::new(
    &[".App(", ".API("],
    r"(?m)^(\w+)\s*=\s*falcon\.(?:asgi\.)?(?:App|API)\(",
);
static FACTORY: Pat = Pat::new(
    &["def create_app(", "def make_app(", "def app_factory("],
    r"(?m)^def (create_app|make_app|app_factory)\(",
);
static WSGI_APP: Pat = Pat::new(
    &["WSGI_APPLICATION"],
    r#"WSGI_APPLICATION\s*=\s*["']([\w.]+)["']"#,
);
static STATIC_ROOT: Pat = Pat::new(&["STATIC_ROOT"], r"(?m)^STATIC_ROOT\s*=");

/// Normalised requirement name ("Flask[async]>=2" -> "flask").
fn req_name(line: &str) -> Option<String> {
    let l = line.split('#').next()?.trim();
    if l.is_empty() || l.starts_with('-') || l.contains("://") {
        return None;
    }
    let end = l
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(l.len());
    let name = l[..end].to_ascii_lowercase().replace('_', "-");
    (!name.is_empty()).then_some(name)
}

/// Dependencies and the manifests they came from.
struct Deps {
    names: Vec<String>,
    manifests: Vec<String>,
    pyproject: Option<toml::Table>,
    warnings: Vec<String>,
}

fn deps(app: &App) -> Deps {
    let mut d = Deps {
        names: vec![],
        manifests: vec![],
        pyproject: None,
        warnings: vec![],
    };
    for f in [
        "requirements.txt",
        "requirements/prod.txt",
        "requirements/production.txt",
        "requirements/base.txt",
    ] {
        if d.manifests.iter().any(|m| m == f) {
            continue;
        }
        // Follow `-r other.txt` includes (relative to the including file), a few levels deep.
        let mut todo = vec![f.to_string()];
        while let Some(f) = todo.pop() {
            let Some(t) = app.text(&f) else { continue };
            if d.manifests.contains(&f) || d.manifests.len() > 8 {
                continue;
            }
            d.names.extend(t.lines().filter_map(req_name));
            d.manifests.push(f.clone());
            let dir = f
                .rsplit_once('/')
                .map(|(d, _)| format!("{d}/"))
                .unwrap_or_default();
            for l in t.lines() {
                let l = l.trim();
                if let Some(inc) = l
                    .strip_prefix("-r ")
                    .or_else(|| l.strip_prefix("--requirement "))
                    .or_else(|| l.strip_prefix("-c "))
                {
                    todo.push(format!("{dir}{}", inc.trim()));
                }
            }
        }
    }
    if let Some(t) = app.text("pyproject.toml") {
        d.manifests.push("pyproject.toml".into());
        match t.parse::<toml::Table>() {
            Ok(v) => {
                if let Some(arr) = v
                    .get("project")
                    .and_then(|p| p.get("dependencies"))
                    .and_then(|x| x.as_array())
                {
                    d.names
                        .extend(arr.iter().filter_map(|x| x.as_str()).filter_map(req_name));
                }
                if let Some(tbl) = v
                    .get("tool")
                    .and_then(|t| t.get("poetry"))
                    .and_then(|p| p.get("dependencies"))
                    .and_then(|x| x.as_table())
                {
                    d.names.extend(
                        tbl.keys()
                            .filter(|k| *k != "python")
                            .map(|k| k.to_ascii_lowercase().replace('_', "-")),
                    );
                }
                d.pyproject = Some(v);
            }
            Err(e) => d.warnings.push(format!(
                "warning: pyproject.toml is not valid TOML ({}); ignored",
                first_line(&e.to_string())
            )),
        }
    }
    if let Some(t) = app.text("Pipfile") {
        d.manifests.push("Pipfile".into());
        match t.parse::<toml::Table>() {
            Ok(v) => {
                if let Some(tbl) = v.get("packages").and_then(|x| x.as_table()) {
                    d.names
                        .extend(tbl.keys().map(|k| k.to_ascii_lowercase().replace('_', "-")));
                }
            }
            Err(_) => d
                .warnings
                .push("warning: Pipfile is not valid TOML; ignored".into()),
        }
    }
    if let Some(t) = app.text("setup.py") {
        d.manifests.push("setup.py".into());
        static INSTALL_REQ: Pat = Pat::new(
            &[],
            r#"["']([A-Za-z0-9_.\-\[\]]+)\s*(?:[<>=!~][^"']*)?["']"#,
        );
        if let Some(start) = t.find("install_requires") {
            let rest = &t[start..];
            let end = rest.find(']').unwrap_or(rest.len());
            d.names.extend(
                INSTALL_REQ
                    .captures_iter(&rest[..end])
                    .filter_map(|c| req_name(c.get(1)?.as_str())),
            );
        }
    }
    d.names.sort();
    d.names.dedup();
    d
}

/// A `module:factory()` target quoted for `sh -c` (gunicorn calls factories itself).
fn quoted(target: &str) -> String {
    if target.contains('(') {
        format!("'{target}'")
    } else {
        target.to_string()
    }
}

/// uvicorn and sanic take a factory as `--factory module:factory`.
fn factory_flag(target: &str) -> String {
    match target.strip_suffix("()") {
        Some(t) => format!("--factory {t}"),
        None => target.to_string(),
    }
}

pub fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Where the Python version comes from, in order of precedence.
fn version(app: &App, d: &Deps) -> Versioned {
    if let Some(v) = pin_file(app, ".python-version") {
        return Versioned::new(v, ".python-version");
    }
    if let Some(v) = app
        .text("runtime.txt")
        .and_then(|t| t.trim().strip_prefix("python-").map(str::to_string))
    {
        return Versioned::new(v, "runtime.txt");
    }
    if let Some(v) = tool_versions(app, "python") {
        return v;
    }
    if let Some(py) = &d.pyproject {
        let req = py
            .get("project")
            .and_then(|p| p.get("requires-python"))
            .and_then(|x| x.as_str())
            .map(|r| (r, "pyproject.toml requires-python"))
            .or_else(|| {
                py.get("tool")
                    .and_then(|t| t.get("poetry"))
                    .and_then(|p| p.get("dependencies"))
                    .and_then(|x| x.get("python"))
                    .and_then(|x| x.as_str())
                    .map(|r| (r, "pyproject.toml [tool.poetry.dependencies] python"))
            });
        if let Some((r, src)) = req
            && let Some(v) = pick_version(r, DEFAULT, KNOWN)
        {
            return Versioned::new(v, format!("{src} \"{r}\""));
        }
    }
    if let Some(t) = app.text("Pipfile")
        && let Ok(v) = t.parse::<toml::Table>()
        && let Some(pv) = v
            .get("requires")
            .and_then(|r| r.get("python_version"))
            .and_then(|x| x.as_str())
    {
        return Versioned::new(pv, "Pipfile [requires] python_version");
    }
    Versioned::new(DEFAULT, "default (no pin found)")
}

fn module_of(path: &str) -> String {
    let m = path.trim_end_matches(".py").replace('/', ".");
    match m.strip_suffix(".__init__") {
        Some(pkg) => pkg.to_string(),
        None => m,
    }
}

/// An ASGI/WSGI app object: (file, module, variable), with `--chdir`-style folder if the file
/// sits in a folder that is not a package.
struct AppRef {
    file: String,
    target: String,
    chdir: Option<String>,
}

const ENTRY_PREFERENCE: &[&str] = &[
    "app.py",
    "main.py",
    "wsgi.py",
    "asgi.py",
    "server.py",
    "application.py",
    "run.py",
    "api.py",
    "bot.py",
];

fn rank(path: &str) -> usize {
    let name = path.rsplit('/').next().unwrap_or(path);
    let depth = path.matches('/').count();
    ENTRY_PREFERENCE
        .iter()
        .position(|p| *p == name)
        .unwrap_or(20)
        + depth * 30
}

fn find_app(app: &App, pattern: &Pat) -> Option<AppRef> {
    let mut hits: Vec<(&str, &str)> = app
        .sources(PY, 3)
        .filter(|(p, t)| !p.contains("test") && pattern.is_match(t))
        .collect();
    hits.sort_by_key(|(p, _)| rank(p));
    if let Some((path, text)) = hits.first() {
        let var = pattern.captures(text)?.get(1)?.as_str().to_string();
        return Some(app_ref(app, path, &var, text));
    }
    // Application factory: `def create_app():` building the app inside a function.
    let mut factories: Vec<(&str, &str)> = app
        .sources(PY, 3)
        .filter(|(p, t)| !p.contains("test") && FACTORY.is_match(t))
        .collect();
    factories.sort_by_key(|(p, _)| rank(p));
    let (path, text) = factories.first()?;
    let f = FACTORY.captures(text)?.get(1)?.as_str().to_string();
    Some(app_ref(app, path, &format!("{f}()"), ""))
}

fn app_ref(app: &App, path: &str, var: &str, text: &str) -> AppRef {
    let var = if FACTORY.is_match(text)
        && !text.contains(&format!("\n{var} ="))
        && !text.starts_with(&format!("{var} ="))
    {
        FACTORY
            .captures(text)
            .and_then(|c| c.get(1))
            .map(|m| format!("{}()", m.as_str()))
            .unwrap_or(var.to_string())
    } else {
        var.to_string()
    };
    // The app runs from its import root: the folder above the packages (folders with an
    // __init__.py) that hold the file. That is the app folder itself for `app/main.py` in a
    // package, the file's own folder when it is in none, and `src` in a src layout.
    let (dir, _) = path.rsplit_once('/').unwrap_or(("", path));
    let mut root = dir;
    while !root.is_empty() && app.has(&format!("{root}/__init__.py")) {
        root = root.rsplit_once('/').map_or("", |(parent, _)| parent);
    }
    if root.is_empty() {
        AppRef {
            file: path.to_string(),
            target: format!("{}:{var}", module_of(path)),
            chdir: None,
        }
    } else {
        AppRef {
            file: path.to_string(),
            target: format!("{}:{var}", module_of(&path[root.len() + 1..])),
            chdir: Some(root.to_string()),
        }
    }
}

fn entry_with(app: &App, needle: &Pat) -> Option<String> {
    let mut hits: Vec<&str> = app
        .sources(PY, 2)
        .filter(|(p, t)| !p.contains("test") && needle.is_match(t))
        .map(|(p, _)| p)
        .collect();
    hits.sort_by_key(|p| {
        let name = p.rsplit('/').next().unwrap_or(p);
        if name == "streamlit_app.py" {
            0
        } else {
            rank(p) + 1
        }
    });
    hits.first().map(|s| s.to_string())
}

/// `tool` at the pinned release as pip names it (`uv==0.8.24`), after recording the pin in
/// the analysis and why in its evidence; the bare name when nothing pins it.
fn pinned_tool(tool: &str, pin: &Option<python_pins::ToolPin>, det: &mut Detected) -> String {
    let Some(pin) = pin else {
        return tool.to_string();
    };
    match &pin.version {
        Some(v) => {
            det.evidence(format!("{tool} {v} ({})", pin.source));
            det.analysis.details.package_manager_version = Some(v.clone());
            format!("{tool}=={v}")
        }
        None => {
            det.evidence(format!("{tool} not pinned: {}", pin.source));
            tool.to_string()
        }
    }
}

pub fn detect(app: &App) -> Option<Detected> {
    let d = deps(app);
    let has_lock = |f: &str| app.has(f);
    let py_files = app.sources(PY, 1).count();
    if d.manifests.is_empty()
        && !(py_files > 0 && (app.has("app.py") || app.has("main.py") || app.has("manage.py")))
    {
        return None;
    }
    let mut det = Detected::new(
        Language::Python,
        if d.manifests.is_empty() { 0.3 } else { 0.55 },
    );
    for w in &d.warnings {
        det.evidence(w.clone());
    }
    if d.manifests.is_empty() {
        det.evidence("Python sources without a manifest (no requirements.txt or pyproject.toml)");
    } else {
        det.evidence(format!("Python manifests: {}", d.manifests.join(", ")));
    }
    let has = |n: &str| d.names.iter().any(|x| x == n);

    // Package manager, from lockfiles first.
    let tool = |name: &str| {
        d.pyproject
            .as_ref()
            .and_then(|p| p.get("tool"))
            .and_then(|t| t.get(name))
            .is_some()
    };
    // A string setting of `[tool.<name>]` (`required-version`).
    let tool_str = |name: &str, key: &str| {
        d.pyproject
            .as_ref()
            .and_then(|p| p.get("tool"))
            .and_then(|t| t.get(name))
            .and_then(|t| t.get(key))
            .and_then(|v| v.as_str())
    };
    let (pm, install, lock) = if has_lock("uv.lock") || (tool("uv") && !app.has("requirements.txt"))
    {
        let pin = python_pins::uv_pin(app.text("uv.lock"), tool_str("uv", "required-version"));
        let uv = pinned_tool("uv", &pin, &mut det);
        let cmd = if has_lock("uv.lock") {
            format!(
                "pip install {uv} && uv export --frozen --no-dev --no-emit-project --no-hashes -o requirements.uv.txt && uv pip install --python \"$(command -v python)\" -r requirements.uv.txt"
            )
        } else {
            format!(
                "pip install {uv} && uv pip install --python \"$(command -v python)\" -r pyproject.toml"
            )
        };
        (
            PackageManager::Uv,
            cmd,
            has_lock("uv.lock").then_some("uv.lock"),
        )
    } else if has_lock("poetry.lock") || (tool("poetry") && !app.has("requirements.txt")) {
        let pin = python_pins::poetry_pin(
            app.text("poetry.lock"),
            tool_str("poetry", "requires-poetry"),
        );
        let poetry = pinned_tool("poetry", &pin, &mut det);
        (
            PackageManager::Poetry,
            format!(
                "pip install {poetry} && POETRY_VIRTUALENVS_CREATE=false poetry install --no-root --only main --no-interaction"
            ),
            has_lock("poetry.lock").then_some("poetry.lock"),
        )
    } else if has_lock("pdm.lock") || (tool("pdm") && !app.has("requirements.txt")) {
        (
            PackageManager::Pdm,
            "pip install pdm && pdm export --prod --without-hashes -o requirements.pdm.txt && pip install -r requirements.pdm.txt".to_string(),
            has_lock("pdm.lock").then_some("pdm.lock"),
        )
    } else if app.has("Pipfile") {
        let cmd = if has_lock("Pipfile.lock") {
            "pip install pipenv && pipenv requirements > requirements.pipenv.txt && pip install -r requirements.pipenv.txt"
        } else {
            "pip install pipenv && pipenv install --system --skip-lock"
        };
        (
            PackageManager::Pipenv,
            cmd.to_string(),
            has_lock("Pipfile.lock").then_some("Pipfile.lock"),
        )
    } else if let Some(req) = d.manifests.iter().find(|m| m.starts_with("requirements")) {
        (PackageManager::Pip, format!("pip install -r {req}"), None)
    } else if app.has("pyproject.toml") || app.has("setup.py") {
        (PackageManager::Pip, "pip install .".to_string(), None)
    } else {
        (PackageManager::Pip, String::new(), None)
    };
    det.evidence(format!(
        "package manager {pm}{}",
        lock.map(|l| format!(" (from {l})")).unwrap_or_default()
    ));
    let mut manifests = d.manifests.clone();
    if let Some(l) = lock {
        manifests.push(l.to_string());
        det.score += 0.05;
    }
    let needs_sources = install.contains("pip install .");
    det.analysis.package_manager = Some(pm);
    det.set_version(version(app, &d));

    // Framework: dependency first, then imports.
    const ORDER: &[(&str, &str, &[&str])] = &[
        ("django", "django", &["from django", "import django"]),
        ("fastapi", "fastapi", &["from fastapi", "import fastapi"]),
        (
            "fasthtml",
            "python-fasthtml",
            &["from fasthtml", "import fasthtml"],
        ),
        (
            "litestar",
            "litestar",
            &["from litestar", "import litestar"],
        ),
        ("quart", "quart", &["from quart", "import quart"]),
        ("flask", "flask", &["from flask", "import flask"]),
        ("streamlit", "streamlit", &["import streamlit"]),
        ("gradio", "gradio", &["import gradio"]),
        ("sanic", "sanic", &["from sanic", "import sanic"]),
        ("aiohttp", "aiohttp", &["from aiohttp import web"]),
        (
            "starlette",
            "starlette",
            &["from starlette", "import starlette"],
        ),
        ("tornado", "tornado", &["from tornado", "import tornado"]),
        ("bottle", "bottle", &["from bottle", "import bottle"]),
        ("falcon", "falcon", &["import falcon"]),
    ];
    let in_deps: Vec<&(&str, &str, &[&str])> =
        ORDER.iter().filter(|(_, dep, _)| has(dep)).collect();
    let imported = |imports: &[&str]| {
        app.sources(PY, 2)
            .any(|(_, t)| imports.iter().any(|i| t.contains(i)))
    };
    let framework = if in_deps.len() > 1 {
        // Several frameworks in the manifest: the one an entry file imports wins.
        in_deps
            .iter()
            .find(|(_, _, imp)| imported(imp))
            .or(in_deps.first())
            .map(|f| f.0)
    } else if let Some(f) = in_deps.first() {
        Some(f.0)
    } else {
        ORDER.iter().find(|(_, _, imp)| imported(imp)).map(|f| f.0)
    };
    if let Some(f) = framework {
        det.score += 0.3;
        let dep = ORDER
            .iter()
            .find(|(name, _, _)| *name == f)
            .map_or(f, |(_, dep, _)| *dep);
        det.evidence(if has(dep) {
            format!("framework {f}: \"{dep}\" is a dependency")
        } else {
            format!("framework {f}: imported in the sources")
        });
    }
    det.analysis.framework = framework.map(str::to_string);

    // Start command.
    let mut extra_pkgs: Vec<&str> = vec![];
    let mut start: Option<String> = None;
    let mut entry: Option<String> = None;
    let mut dev_port_default: Option<u16> = None;
    let mut build: Option<String> = None;
    let gunicorn = |r: &AppRef, extra: &str| {
        format!(
            "gunicorn --bind 0.0.0.0:$PORT --workers ${{WEB_CONCURRENCY:-2}} --threads 4 --timeout 0 --access-logfile -{}{extra} {}",
            r.chdir
                .as_ref()
                .map(|c| format!(" --chdir {c}"))
                .unwrap_or_default(),
            quoted(&r.target)
        )
    };
    let uvicorn = |r: &AppRef| {
        format!(
            "uvicorn {} --host 0.0.0.0 --port $PORT --proxy-headers --forwarded-allow-ips '*'{}",
            factory_flag(&r.target),
            r.chdir
                .as_ref()
                .map(|c| format!(" --app-dir {c}"))
                .unwrap_or_default()
        )
    };
    if let Some(p) = procfile_web(app) {
        det.evidence(format!("start command from Procfile: {p}"));
        start = Some(p);
    }
    match framework {
        Some("flask") | Some("bottle") | Some("falcon") => {
            dev_port_default = Some(if framework == Some("flask") {
                5000
            } else {
                8000
            });
            let pat: &Pat = match framework {
                Some("flask") => &FLASK_APP,
                Some("bottle") => &BOTTLE_APP,
                _ => &FALCON_APP,
            };
            if let Some(r) = find_app(app, pat) {
                let asgi = app.text(&r.file).is_some_and(|t| FALCON_ASGI.is_match(t));
                det.evidence(format!(
                    "{} app `{}` found in {}",
                    if asgi { "ASGI" } else { "WSGI" },
                    r.target,
                    r.file
                ));
                det.score += 0.1;
                entry = Some(r.file.clone());
                if start.is_none() {
                    start = Some(if asgi { uvicorn(&r) } else { gunicorn(&r, "") });
                }
                let server = if asgi { "uvicorn" } else { "gunicorn" };
                if !has(server) {
                    extra_pkgs.push(server);
                }
            }
        }
        Some(f @ ("fastapi" | "starlette" | "fasthtml" | "litestar" | "quart")) => {
            dev_port_default = Some(if f == "fasthtml" { 5001 } else { 8000 });
            let pat: &Pat = match f {
                "fastapi" => &FASTAPI_APP,
                "fasthtml" => &FASTHTML_APP,
                "litestar" => &LITESTAR_APP,
                "quart" => &QUART_APP,
                _ => &STARLETTE_APP,
            };
            if let Some(r) = find_app(app, pat) {
                det.evidence(format!("ASGI app `{}` found in {}", r.target, r.file));
                if app
                    .text(&r.file)
                    .is_some_and(|t| t.contains("__name__") && t.contains("__main__"))
                {
                    det.evidence(format!(
                        "{}'s __main__ block is for local runs; the server is uvicorn",
                        r.file
                    ));
                }
                det.score += 0.1;
                entry = Some(r.file.clone());
                if start.is_none() {
                    start = Some(uvicorn(&r));
                }
                if !has("uvicorn") {
                    extra_pkgs.push("uvicorn");
                }
            }
        }
        Some("sanic") => {
            dev_port_default = Some(8000);
            if let Some(r) = find_app(app, &SANIC_APP) {
                det.evidence(format!("Sanic app `{}` found in {}", r.target, r.file));
                det.score += 0.1;
                entry = Some(r.file.clone());
                if start.is_none() {
                    start = Some(format!(
                        "sanic {} --host 0.0.0.0 --port $PORT --single-process",
                        factory_flag(&r.target)
                    ));
                }
            }
        }
        Some("aiohttp") => {
            dev_port_default = Some(8080);
            if let Some(r) = find_app(app, &AIOHTTP_APP) {
                det.evidence(format!(
                    "aiohttp application `{}` found in {}",
                    r.target, r.file
                ));
                det.score += 0.1;
                entry = Some(r.file.clone());
                if start.is_none() {
                    start = Some(gunicorn(&r, " --worker-class aiohttp.GunicornWebWorker"));
                }
                if !has("gunicorn") {
                    extra_pkgs.push("gunicorn");
                }
            }
        }
        Some("django") => {
            dev_port_default = Some(8000);
            let settings = app
                .sources(PY, 3)
                .find(|(p, t)| p.contains("settings") && WSGI_APP.is_match(t));
            if let Some((path, text)) = settings {
                let wsgi = WSGI_APP
                    .captures(text)
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str())
                    .unwrap_or("");
                let target = match wsgi.rsplit_once('.') {
                    Some((module, obj)) => format!("{module}:{obj}"),
                    None => wsgi.to_string(),
                };
                det.evidence(format!("Django WSGI_APPLICATION = \"{wsgi}\" in {path}"));
                det.score += 0.1;
                entry = Some("manage.py".into());
                if start.is_none() {
                    start = Some(format!(
                        "gunicorn --bind 0.0.0.0:$PORT --workers ${{WEB_CONCURRENCY:-2}} --threads 4 --timeout 0 --access-logfile - {target}"
                    ));
                }
                if STATIC_ROOT.is_match(text) {
                    build = Some("python manage.py collectstatic --noinput".into());
                    det.evidence(format!(
                        "STATIC_ROOT is set in {path}: static files are collected at build time"
                    ));
                }
                if !has("gunicorn") {
                    extra_pkgs.push("gunicorn");
                }
            }
        }
        Some("streamlit") => {
            dev_port_default = Some(8501);
            if let Some(f) = entry_with(app, &STREAMLIT_IMPORT) {
                det.evidence(format!("Streamlit script {f}"));
                det.score += 0.1;
                if start.is_none() {
                    start = Some(format!(
                        "streamlit run {f} --server.port $PORT --server.address 0.0.0.0 --server.headless true --browser.gatherUsageStats false"
                    ));
                }
                entry = Some(f);
            }
        }
        Some("gradio") => {
            dev_port_default = Some(7860);
            if let Some(f) = entry_with(app, &GRADIO_LAUNCH) {
                det.evidence(format!("Gradio app launched in {f}; Gradio reads GRADIO_SERVER_NAME and GRADIO_SERVER_PORT"));
                det.score += 0.1;
                if start.is_none() {
                    start = Some(format!(
                        "GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=$PORT python {f}"
                    ));
                }
                entry = Some(f);
            }
        }
        _ => {}
    }
    if start.is_none() {
        // Plain script: python main.py / app.py.
        let f = ENTRY_PREFERENCE
            .iter()
            .find(|f| app.has(f))
            .map(|s| s.to_string());
        if let Some(f) = f {
            det.evidence(format!("no server framework entry found; running {f}"));
            start = Some(format!("python {f}"));
            entry = Some(f);
        }
    }

    // Port: what the code listens on, and whether it reads $PORT.
    let reads = any_source(app, PY, &READS_PORT, 3);
    det.analysis.reads_port_env = reads.is_some();
    let hit = find_port(app, PY, &RUN_PORT, 3).or_else(|| find_port(app, PY, &DEFAULT_PORT, 3));
    det.analysis.dev_port = hit
        .as_ref()
        .map(|h| h.port)
        .or(dotenv_port(app))
        .or(dev_port_default);
    if let Some(f) = &reads {
        det.evidence(format!("{f} reads $PORT"));
    }
    let runs_own_server = start.as_deref().is_some_and(|s| s.starts_with("python "));
    if !runs_own_server
        && let Some(h) = &hit
        && start.is_some()
    {
        det.evidence(format!(
            "{}:{} sets port {} for local runs; the start command binds $PORT instead",
            h.file, h.line, h.port
        ));
    }
    if runs_own_server {
        if let Some(h) = &hit
            && reads.is_none()
            && h.port != 8080
        {
            det.analysis.details.port_issue = Some(hardcoded_port_issue(
                h,
                "read the port from the environment: port=int(os.environ.get(\"PORT\", \"8080\")) and host=\"0.0.0.0\"",
            ));
        } else if let Some(h) = find_port(app, PY, &LOCALHOST_RUN, 3).map(|mut h| {
            h.port = 0;
            h
        }) {
            det.analysis.details.port_issue = Some(crate::PortIssue {
                file: h.file,
                line: h.line,
                message: "the app binds to localhost, unreachable inside a container".into(),
                fix: "bind to all interfaces: host=\"0.0.0.0\"".into(),
                port: None,
            });
        }
    }

    // Native libraries.
    let (bpk, rpk, ev) = native::lookup("python", d.names.iter().map(String::as_str));
    for e in ev {
        det.evidence(e);
    }
    det.analysis.details.build_system_packages = bpk;
    det.analysis.system_packages = rpk;

    let mut install = install;
    if !extra_pkgs.is_empty() {
        let extra = extra_pkgs.join(" ");
        det.evidence(format!(
            "{extra} is not a dependency: the plan installs it to serve the app"
        ));
        install = if install.is_empty() {
            format!("pip install {extra}")
        } else {
            format!("{install} && pip install {extra}")
        };
    }
    det.analysis.install_command = (!install.is_empty()).then_some(install);
    det.analysis.build_command = build;
    det.analysis.start_command = start;
    det.analysis.entrypoint = entry;
    det.analysis.env_vars = env_vars(
        app,
        PY,
        &[
            EnvPattern {
                re: &ENV_INDEX,
                required: Required::UnlessDefault,
            },
            EnvPattern {
                re: &ENV_GET,
                required: Required::Never,
            },
            EnvPattern {
                re: &ENV_CFG,
                required: Required::Never,
            },
        ],
    );
    let v = det
        .analysis
        .runtime_version
        .clone()
        .unwrap_or(DEFAULT.into());
    let dd = &mut det.analysis.details;
    dd.template = Some(if needs_sources {
        Template::PythonSourceInstall
    } else {
        Template::Python
    });
    dd.base_image = Some(format!("python:{v}-slim-bookworm"));
    dd.build_image = Some(format!("python:{v}-slim-bookworm"));
    dd.manifests = manifests;
    det.score = det.score.min(1.0);
    Some(det)
}
