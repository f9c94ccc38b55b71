//! PHP (Composer: Laravel, Symfony), Ruby (Bundler: Rails, Sinatra), .NET (ASP.NET Core),
//! Elixir (Mix: Phoenix) and static HTML sites.

use crate::common::*;
use crate::native;
use crate::pat::Pat;
use crate::repo::App;
use crate::{Language, PackageManager, Template};
use serde_json::Value;

static PHP_ENV: Pat = Pat::new(
    &["getenv(", "env(", "$_ENV", "$_SERVER"],
    r#"(?:getenv|env)\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\)|\$_(?:ENV|SERVER)\[\s*['"]([A-Z][A-Z0-9_]*)['"]\s*\]"#,
);
static RUBY_ENV: Pat = Pat::new(
    &["ENV["],
    r#"ENV\[\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\]"#,
);
static RUBY_FETCH: Pat = Pat::new(
    &["ENV.fetch"],
    r#"ENV\.fetch\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\)"#,
);
static DOTNET_ENV: Pat = Pat::new(
    &["GetEnvironmentVariable"],
    r#"Environment\.GetEnvironmentVariable\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)"#,
);
static EX_ENV: Pat = Pat::new(
    &["System.get_env", "System.fetch_env"],
    r#"System\.(?:get_env|fetch_env!?)\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)"#,
);
static GEM: Pat = Pat::new(&["gem"], r#"(?m)^\s*gem\s+['"]([\w\-]+)['"]"#);
static GEMFILE_RUBY: Pat = Pat::new(&["ruby"], r#"(?m)^\s*ruby\s+['"]([^'"]+)['"]"#);
static TFM: Pat = Pat::new(
    &["<TargetFramework"],
    r"<TargetFrameworks?>\s*net(\d+\.\d+)",
);
static ASSEMBLY: Pat = Pat::new(
    &["<AssemblyName>"],
    r"<AssemblyName>\s*([^<\s]+)\s*</AssemblyName>",
);
static MIX_APP: Pat = Pat::new(&["app:"], r"app:\s*:(\w+)");
static MIX_ELIXIR: Pat = Pat::new(&["elixir:"], r#"elixir:\s*"[~>= ]*(\d+\.\d+)"#);

pub fn detect_php(app: &App) -> Option<Detected> {
    let text = app.text("composer.json");
    let index = app.has("index.php") || app.has("public/index.php");
    if text.is_none() && !index {
        return None;
    }
    let mut det = Detected::new(Language::Php, if text.is_some() { 0.6 } else { 0.4 });
    let json: Value = match text.map(serde_json::from_str::<Value>) {
        Some(Ok(v)) => {
            det.evidence("composer.json at the app root");
            v
        }
        Some(Err(e)) => {
            det.score = 0.35;
            det.evidence(format!(
                "warning: composer.json is not valid JSON ({e}); ignored"
            ));
            Value::Null
        }
        None => {
            det.evidence("index.php without composer.json");
            Value::Null
        }
    };
    let require: Vec<String> = json
        .get("require")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let has = |n: &str| require.iter().any(|r| r == n);
    // The framework package itself, not a component: Slim and Laravel apps require Symfony
    // components too.
    const FRAMEWORKS: &[(&str, &[&str])] = &[
        ("laravel", &["laravel/framework", "laravel/lumen-framework"]),
        ("slim", &["slim/slim"]),
        (
            "symfony",
            &["symfony/framework-bundle", "symfony/http-kernel"],
        ),
        ("cakephp", &["cakephp/cakephp"]),
        ("codeigniter", &["codeigniter4/framework"]),
        ("yii", &["yiisoft/yii2"]),
        ("laminas", &["laminas/laminas-mvc"]),
    ];
    let found = FRAMEWORKS
        .iter()
        .find_map(|(f, pkgs)| pkgs.iter().find(|p| has(p)).map(|p| (*f, *p)));
    let framework = match found {
        Some((f, pkg)) => {
            det.evidence(format!(
                "framework {f}: \"{pkg}\" is required in composer.json"
            ));
            Some(f)
        }
        None if app.has("artisan") => {
            det.evidence("framework laravel: artisan at the app root");
            Some("laravel")
        }
        None => None,
    };
    if framework.is_some() {
        det.score += 0.3;
    }
    det.analysis.framework = framework.map(str::to_string);
    let v = json
        .get("require")
        .and_then(|r| r.get("php"))
        .and_then(Value::as_str)
        .and_then(|c| {
            pick_version(c, "8.3", &["7.4", "8.0", "8.1", "8.2", "8.3", "8.4"])
                .map(|v| Versioned::new(v, format!("composer.json require.php \"{c}\"")))
        })
        .or_else(|| tool_versions(app, "php"))
        .unwrap_or_else(|| Versioned::new("8.3", "default (no pin found)"));
    det.set_version(v);
    det.analysis.package_manager = Some(PackageManager::Composer);
    if text.is_some() {
        det.analysis.install_command = Some(
            "composer install --no-dev --optimize-autoloader --no-interaction --no-scripts".into(),
        );
    }
    let docroot = if app.has("public/index.php") || framework.is_some() {
        "public"
    } else {
        "."
    };
    det.analysis.start_command =
        Some(procfile_web(app).unwrap_or_else(|| "apache2-foreground".into()));
    det.analysis.details.native_start_command = Some(if framework == Some("laravel") {
        "php artisan serve --host=0.0.0.0 --port=$PORT".into()
    } else {
        format!("php -S 0.0.0.0:$PORT -t {docroot}")
    });
    det.analysis.details.static_dir = Some(docroot.into());
    det.analysis.entrypoint = Some(if docroot == "." {
        "index.php".into()
    } else {
        format!("{docroot}/index.php")
    });
    det.analysis.reads_port_env = true;
    det.analysis.dev_port = Some(if framework == Some("laravel") {
        8000
    } else {
        80
    });
    let exts: Vec<&str> = require
        .iter()
        .filter(|r| r.starts_with("ext-"))
        .map(String::as_str)
        .collect();
    let (b, r, ev) = native::lookup("php", exts.iter().copied());
    for e in ev {
        det.evidence(e);
    }
    det.analysis.details.build_system_packages = b;
    det.analysis.system_packages = r;
    det.analysis.details.artifact = Some(
        exts.iter()
            .map(|e| e.trim_start_matches("ext-"))
            .filter(|e| {
                [
                    "pgsql",
                    "pdo_pgsql",
                    "pdo_mysql",
                    "mysqli",
                    "gd",
                    "zip",
                    "intl",
                    "bcmath",
                    "opcache",
                ]
                .contains(e)
            })
            .collect::<Vec<_>>()
            .join(" "),
    );
    det.analysis.env_vars = env_vars_by(app, &["php"], &PHP_ENV, Required::Never);
    let mut manifests = existing_files(app, &["composer.json", "composer.lock"]);
    // PHP runs the app; a package.json beside it only builds the front-end assets, a step
    // of the build.
    if let Some(assets) = super::asset_manifests(app) {
        let (install, build) = super::asset_build(&assets);
        det.evidence(format!(
            "package.json builds the front-end assets: `{install} && {build}` at build time"
        ));
        det.analysis.build_command = Some(format!("{install} && {build}"));
        manifests.extend(assets);
    }
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    let d = &mut det.analysis.details;
    d.template = Some(Template::Php);
    d.base_image = Some(format!("php:{v}-apache-bookworm"));
    d.build_image = Some("composer:2".into());
    d.manifests = manifests;
    det.score = det.score.min(1.0);
    Some(det)
}

pub fn detect_ruby(app: &App) -> Option<Detected> {
    let gemfile = app.text("Gemfile")?;
    let mut det = Detected::new(Language::Ruby, 0.6);
    det.evidence("Gemfile at the app root");
    let gems: Vec<String> = GEM
        .captures_iter(gemfile)
        .filter_map(|c| Some(c.get(1)?.as_str().to_string()))
        .collect();
    let has = |g: &str| gems.iter().any(|x| x == g);
    let framework = if has("rails") || has("railties") {
        Some("rails")
    } else if has("sinatra") {
        Some("sinatra")
    } else if has("hanami") {
        Some("hanami")
    } else {
        None
    };
    if let Some(f) = framework {
        det.score += 0.3;
        det.evidence(format!("framework {f}: gem \"{f}\" in the Gemfile"));
    }
    det.analysis.framework = framework.map(str::to_string);
    let v = pin_file(app, ".ruby-version")
        .map(|v| Versioned::new(v.trim_start_matches("ruby-"), ".ruby-version"))
        .or_else(|| {
            GEMFILE_RUBY
                .captures(gemfile)
                .and_then(|c| c.get(1))
                .map(|m| {
                    Versioned::new(
                        m.as_str().trim_start_matches(['~', '>', '=', ' ']),
                        "Gemfile ruby",
                    )
                })
        })
        .or_else(|| {
            let lock = app.text("Gemfile.lock")?;
            let i = lock.find("RUBY VERSION")?;
            let v = lock[i..]
                .lines()
                .nth(1)?
                .trim()
                .strip_prefix("ruby ")?
                .split('p')
                .next()?
                .to_string();
            Some(Versioned::new(v, "Gemfile.lock RUBY VERSION"))
        })
        .or_else(|| tool_versions(app, "ruby"))
        .unwrap_or_else(|| Versioned::new("3.3", "default (no pin found)"));
    det.set_version(v);
    det.analysis.package_manager = Some(PackageManager::Bundler);
    det.analysis.install_command = Some(
        "bundle config set --local without 'development test' && bundle install --jobs 4".into(),
    );
    let start = match framework {
        Some("rails") => {
            det.analysis.entrypoint = Some("config.ru".into());
            if app.has_dir("app/assets") || app.has_dir("app/javascript") {
                det.analysis.build_command =
                    Some("SECRET_KEY_BASE_DUMMY=1 bundle exec rails assets:precompile".into());
            }
            "bundle exec rails server -b 0.0.0.0 -p $PORT".to_string()
        }
        _ if app.has("config.ru") => {
            det.analysis.entrypoint = Some("config.ru".into());
            if !has("rackup") {
                det.evidence(
                    "warning: rackup is not in the Gemfile (Rack 3 moved it to its own gem)",
                );
            }
            "bundle exec rackup -o 0.0.0.0 -p $PORT".to_string()
        }
        _ => {
            let f = ["app.rb", "main.rb", "server.rb"]
                .iter()
                .find(|f| app.has(f))
                .copied()
                .unwrap_or("app.rb");
            det.analysis.entrypoint = Some(f.into());
            format!("bundle exec ruby {f} -o 0.0.0.0 -p $PORT")
        }
    };
    det.analysis.start_command = Some(procfile_web(app).unwrap_or(start));
    det.score += 0.1;
    det.analysis.reads_port_env = true;
    det.analysis.dev_port = Some(if framework == Some("rails") {
        3000
    } else {
        4567
    });
    let (b, r, ev) = native::lookup("ruby", gems.iter().map(String::as_str));
    for e in ev {
        det.evidence(e);
    }
    det.analysis.details.build_system_packages =
        dedup(b.into_iter().chain(["build-essential".to_string()]));
    det.analysis.system_packages = r;
    det.analysis.env_vars = env_vars(
        app,
        &["rb"],
        &[
            EnvPattern {
                re: &RUBY_ENV,
                required: Required::Never,
            },
            EnvPattern {
                re: &RUBY_FETCH,
                required: Required::UnlessDefault,
            },
        ],
    );
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    let d = &mut det.analysis.details;
    d.template = Some(Template::Ruby);
    d.base_image = Some(format!("ruby:{v}-slim-bookworm"));
    d.build_image = d.base_image.clone();
    d.manifests = existing_files(app, &["Gemfile", "Gemfile.lock"]);
    det.score = det.score.min(1.0);
    Some(det)
}

pub fn detect_dotnet(app: &App) -> Option<Detected> {
    let proj = app
        .files_in("")
        .into_iter()
        .find(|f| f.ends_with(".csproj") || f.ends_with(".fsproj"))?;
    let text = app.text(&proj).unwrap_or("");
    let mut det = Detected::new(Language::Dotnet, 0.6);
    det.evidence(format!("{proj} at the app root"));
    let web = text.contains("Microsoft.NET.Sdk.Web");
    if web {
        det.score += 0.3;
        det.evidence("framework aspnet-core: the project uses Microsoft.NET.Sdk.Web");
        det.analysis.framework = Some("aspnet-core".into());
    }
    let v = app
        .text("global.json")
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .and_then(|v| {
            v.get("sdk")?
                .get("version")?
                .as_str()
                .map(|s| s.split('.').take(2).collect::<Vec<_>>().join("."))
        })
        .map(|v| Versioned::new(v, "global.json sdk.version"))
        .or_else(|| {
            TFM.captures(text)
                .and_then(|c| c.get(1))
                .map(|m| Versioned::new(m.as_str(), format!("{proj} TargetFramework")))
        })
        .unwrap_or_else(|| Versioned::new("8.0", "default (no pin found)"));
    det.set_version(v);
    det.analysis.package_manager = Some(PackageManager::Dotnet);
    let stem = proj.rsplit_once('.').map(|x| x.0).unwrap_or(&proj);
    let assembly = ASSEMBLY
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| stem.to_string());
    det.analysis.install_command = Some(format!("dotnet restore {proj}"));
    det.analysis.build_command = Some(format!(
        "dotnet publish {proj} -c Release -o out --no-restore"
    ));
    det.analysis.start_command = Some(
        procfile_web(app)
            .unwrap_or_else(|| format!("dotnet out/{assembly}.dll --urls http://0.0.0.0:$PORT")),
    );
    det.analysis.entrypoint = Some(format!("{assembly}.dll"));
    det.analysis.details.artifact = Some(format!("{assembly}.dll"));
    det.analysis.reads_port_env = true;
    det.analysis.dev_port = Some(5000);
    det.score += 0.05;
    det.analysis.env_vars = env_vars_by(app, &["cs"], &DOTNET_ENV, Required::Never);
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    let d = &mut det.analysis.details;
    d.template = Some(Template::Dotnet);
    d.build_image = Some(format!("mcr.microsoft.com/dotnet/sdk:{v}-bookworm-slim"));
    d.base_image = Some(format!("mcr.microsoft.com/dotnet/aspnet:{v}-bookworm-slim"));
    d.manifests = vec![proj.clone()];
    if app.has("global.json") {
        d.manifests.push("global.json".into());
    }
    Some(det)
}

pub fn detect_elixir(app: &App) -> Option<Detected> {
    let mix = app.text("mix.exs")?;
    let mut det = Detected::new(Language::Elixir, 0.6);
    det.evidence("mix.exs at the app root");
    let phoenix = mix.contains(":phoenix,") || mix.contains("{:phoenix,");
    if phoenix {
        det.score += 0.3;
        det.evidence("framework phoenix: :phoenix is a dependency in mix.exs");
        det.analysis.framework = Some("phoenix".into());
    }
    let name = MIX_APP
        .captures(mix)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "app".into());
    let v = tool_versions(app, "elixir")
        .map(|v| {
            Versioned::new(
                v.version
                    .split('-')
                    .next()
                    .unwrap_or("1.17")
                    .split('.')
                    .take(2)
                    .collect::<Vec<_>>()
                    .join("."),
                v.source,
            )
        })
        .or_else(|| {
            MIX_ELIXIR
                .captures(mix)
                .and_then(|c| c.get(1))
                .map(|m| Versioned::new(m.as_str(), "mix.exs elixir requirement (minimum)"))
        })
        .unwrap_or_else(|| Versioned::new("1.17", "default (no pin found)"));
    let v = if v.source.contains("minimum") && v.version.as_str() < "1.17" {
        Versioned::new(
            "1.17",
            format!("{} \"~> {}\" allows the current 1.17", v.source, v.version),
        )
    } else {
        v
    };
    det.set_version(v);
    det.analysis.package_manager = Some(PackageManager::Mix);
    det.analysis.install_command =
        Some("mix local.hex --force && mix local.rebar --force && mix deps.get --only prod".into());
    let assets = if app.has_dir("assets") && phoenix {
        " && mix assets.deploy"
    } else {
        ""
    };
    det.analysis.build_command = Some(format!("mix compile{assets} && mix release --overwrite"));
    det.analysis.start_command = Some(
        procfile_web(app).unwrap_or_else(|| format!("_build/prod/rel/{name}/bin/{name} start")),
    );
    det.analysis.entrypoint = Some(format!("release {name}"));
    det.analysis.details.artifact = Some(name);
    det.analysis.reads_port_env = phoenix;
    det.analysis.dev_port = Some(4000);
    det.score += 0.05;
    det.analysis.env_vars = env_vars_by(app, &["ex", "exs"], &EX_ENV, Required::Never);
    det.analysis.system_packages = [
        "libstdc++6",
        "openssl",
        "libncurses6",
        "locales",
        "ca-certificates",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    det.analysis.details.build_system_packages = vec!["build-essential".into(), "git".into()];
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    let d = &mut det.analysis.details;
    d.template = Some(Template::Elixir);
    d.build_image = Some(format!("elixir:{v}-slim"));
    d.base_image = Some("debian:bookworm-slim".into());
    d.manifests = existing_files(app, &["mix.exs", "mix.lock"]);
    Some(det)
}

/// Static HTML: index.html at the app root (or in public/ without any manifest).
pub fn detect_static(app: &App) -> Option<Detected> {
    // A Staticfile (Cloud Foundry's static buildpack) names its root folder.
    let staticfile_root = app.text("Staticfile").map(|t| {
        t.lines()
            .find_map(|l| l.trim().strip_prefix("root:"))
            .map(|r| r.trim().trim_matches(['"', '\'']).trim_end_matches('/'))
            .filter(|r| !r.is_empty())
            .unwrap_or(".")
            .to_string()
    });
    let dir: String = if let Some(root) = staticfile_root {
        root
    } else if app.has("index.html") {
        ".".into()
    } else if let Some(d) = ["public", "dist", "build"]
        .iter()
        .find(|d| app.has(&format!("{d}/index.html")))
        .filter(|_| !app.has("package.json"))
    {
        d.to_string()
    } else {
        return None;
    };
    let dir = dir.as_str();
    let mut det = Detected::new(Language::Static, 0.5);
    if app.has("Staticfile") {
        det.score = 0.6;
        det.evidence(format!("Staticfile: the site's root is {dir}/"));
    }
    det.evidence(format!(
        "{} at the app root",
        if dir == "." {
            "index.html".to_string()
        } else {
            format!("{dir}/index.html")
        }
    ));
    det.analysis.entrypoint = Some(if dir == "." {
        "index.html".into()
    } else {
        format!("{dir}/index.html")
    });
    let start = format!("python3 -m http.server \"$PORT\" --bind 0.0.0.0 --directory {dir}");
    det.analysis.start_command = Some(start.clone());
    det.analysis.details.native_start_command = Some(start);
    det.analysis.details.static_dir = Some(dir.into());
    det.analysis.reads_port_env = true;
    det.analysis.dev_port = None;
    det.evidence("served by nginx in the image (python3 -m http.server for native runs)");
    let d = &mut det.analysis.details;
    d.template = Some(Template::Static);
    d.base_image = Some("nginxinc/nginx-unprivileged:1.27-bookworm".into());
    Some(det)
}
