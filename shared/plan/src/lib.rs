//! The build plan: how to build and run one app, as pure data (serde only, no I/O).
//!
//! The analyzer makes a [`BuildPlan`]; the ports carry it and the adapters (native builder,
//! process runtime, later Cloud Build and Cloud Run) render it. It lives in its own crate so
//! that the ports and the adapters depend on the plan, never on the analyzer.
//!
//! Every enum here is serialized as the lowercase string the analyzer always printed
//! (`"python"`, `"go modules"`, `"nextjs-standalone"`...), so stored plans and
//! `devgem analyze --json` keep their shape; [`Language::as_str`] and the others give the same
//! strings for messages. An unknown string is rejected when deserializing (serde's
//! "unknown variant" error names the value and the accepted ones).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The language (or runtime) an app is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    Node,
    Bun,
    Deno,
    Go,
    Rust,
    Java,
    Php,
    Ruby,
    Dotnet,
    Elixir,
    /// Plain HTML served as files.
    Static,
    /// No language manifest, only the repository's own Dockerfile.
    Docker,
}

impl Language {
    /// Every language, in declaration order.
    pub const ALL: &[Language] = &[
        Language::Python,
        Language::Node,
        Language::Bun,
        Language::Deno,
        Language::Go,
        Language::Rust,
        Language::Java,
        Language::Php,
        Language::Ruby,
        Language::Dotnet,
        Language::Elixir,
        Language::Static,
        Language::Docker,
    ];

    /// The name as serialized and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Node => "node",
            Language::Bun => "bun",
            Language::Deno => "deno",
            Language::Go => "go",
            Language::Rust => "rust",
            Language::Java => "java",
            Language::Php => "php",
            Language::Ruby => "ruby",
            Language::Dotnet => "dotnet",
            Language::Elixir => "elixir",
            Language::Static => "static",
            Language::Docker => "docker",
        }
    }
}

/// The tool that installs an app's dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Npm,
    Yarn,
    Pnpm,
    Bun,
    Deno,
    Pip,
    Uv,
    Poetry,
    Pdm,
    Pipenv,
    #[serde(rename = "go modules")]
    GoModules,
    Cargo,
    Maven,
    Gradle,
    Composer,
    Bundler,
    Dotnet,
    Mix,
}

impl PackageManager {
    /// Every package manager, in declaration order.
    pub const ALL: &[PackageManager] = &[
        PackageManager::Npm,
        PackageManager::Yarn,
        PackageManager::Pnpm,
        PackageManager::Bun,
        PackageManager::Deno,
        PackageManager::Pip,
        PackageManager::Uv,
        PackageManager::Poetry,
        PackageManager::Pdm,
        PackageManager::Pipenv,
        PackageManager::GoModules,
        PackageManager::Cargo,
        PackageManager::Maven,
        PackageManager::Gradle,
        PackageManager::Composer,
        PackageManager::Bundler,
        PackageManager::Dotnet,
        PackageManager::Mix,
    ];

    /// The name as serialized and shown to users (also the command, except for Go modules).
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Npm => "npm",
            PackageManager::Yarn => "yarn",
            PackageManager::Pnpm => "pnpm",
            PackageManager::Bun => "bun",
            PackageManager::Deno => "deno",
            PackageManager::Pip => "pip",
            PackageManager::Uv => "uv",
            PackageManager::Poetry => "poetry",
            PackageManager::Pdm => "pdm",
            PackageManager::Pipenv => "pipenv",
            PackageManager::GoModules => "go modules",
            PackageManager::Cargo => "cargo",
            PackageManager::Maven => "maven",
            PackageManager::Gradle => "gradle",
            PackageManager::Composer => "composer",
            PackageManager::Bundler => "bundler",
            PackageManager::Dotnet => "dotnet",
            PackageManager::Mix => "mix",
        }
    }
}

/// The Dockerfile template family a plan is rendered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Template {
    /// Dependencies from manifests, then the sources.
    Python,
    /// `pip install .`: the sources are needed before the install.
    PythonSourceInstall,
    /// A Node.js server with no build step.
    Node,
    /// A Node.js server with a build step.
    NodeBuild,
    Nextjs,
    /// Next.js `output: "standalone"`: only the standalone server is kept.
    NextjsStandalone,
    Nuxt,
    /// A single-page app built to static files and served by nginx.
    Spa,
    /// Plain files served by nginx.
    Static,
    Bun,
    Deno,
    Go,
    Rust,
    JavaMaven,
    JavaGradle,
    /// Java sources without a build tool: compiled with `javac`, run with `java`.
    JavaSource,
    Php,
    Ruby,
    Dotnet,
    Elixir,
    /// The repository's own Dockerfile, used as is.
    Dockerfile,
}

impl Template {
    /// Every template family, in declaration order.
    pub const ALL: &[Template] = &[
        Template::Python,
        Template::PythonSourceInstall,
        Template::Node,
        Template::NodeBuild,
        Template::Nextjs,
        Template::NextjsStandalone,
        Template::Nuxt,
        Template::Spa,
        Template::Static,
        Template::Bun,
        Template::Deno,
        Template::Go,
        Template::Rust,
        Template::JavaMaven,
        Template::JavaGradle,
        Template::JavaSource,
        Template::Php,
        Template::Ruby,
        Template::Dotnet,
        Template::Elixir,
        Template::Dockerfile,
    ];

    /// The name as serialized and shown in the generated Dockerfile's header.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Python => "python",
            Template::PythonSourceInstall => "python-source-install",
            Template::Node => "node",
            Template::NodeBuild => "node-build",
            Template::Nextjs => "nextjs",
            Template::NextjsStandalone => "nextjs-standalone",
            Template::Nuxt => "nuxt",
            Template::Spa => "spa",
            Template::Static => "static",
            Template::Bun => "bun",
            Template::Deno => "deno",
            Template::Go => "go",
            Template::Rust => "rust",
            Template::JavaMaven => "java-maven",
            Template::JavaGradle => "java-gradle",
            Template::JavaSource => "java-source",
            Template::Php => "php",
            Template::Ruby => "ruby",
            Template::Dotnet => "dotnet",
            Template::Elixir => "elixir",
            Template::Dockerfile => "dockerfile",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for PackageManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An environment variable the code reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVarUse {
    pub name: String,
    /// The name looks like a credential (KEY, TOKEN, SECRET, PASSWORD, DATABASE_URL...).
    pub secret: bool,
    /// The code reads it without a default.
    pub required: bool,
}

/// How to build and run one app. The Dockerfile, the Cloud Build request and the native local
/// build are all renderings of this plan.
///
/// Commands are POSIX shell strings run with `PORT` set: the install and build commands from
/// [`BuildPlan::build_dir`] (the workspace root of a workspace member, else `app_dir`), the
/// start command from `app_dir`; it makes the app listen on `0.0.0.0:$PORT`. Python runs inside a virtualenv whose `bin/` is
/// first on `PATH`; Node has `node_modules/.bin` on `PATH`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildPlan {
    pub language: Language,
    pub framework: Option<String>,
    pub runtime_version: Option<String>,
    pub package_manager: Option<PackageManager>,
    /// The exact version of the package manager to install (`8.15.9` for a pnpm
    /// lockfileVersion 6, Yarn Berry's `4.18.1`), when the repository pins one or its
    /// lockfile needs one; `None` when any version will do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_manager_version: Option<String>,
    /// The folder of the app inside the checkout ("." for the root): the start command runs
    /// here.
    pub app_dir: String,
    /// The root of the workspace (npm, pnpm or Yarn workspaces, Turborepo) the app is a member
    /// of, inside the checkout ("." for the root), when it is one: the dependencies are
    /// installed and the app and the workspace packages it depends on built there, and it is
    /// the Dockerfile's build context. `None` for an app built in its own folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_root: Option<String>,
    pub install_command: Option<String>,
    pub build_command: Option<String>,
    pub start_command: String,
    pub deploy_port: u16,
    pub system_packages: Vec<String>,
    /// Production settings the app runs with (NODE_ENV, PYTHONUNBUFFERED...).
    pub env: BTreeMap<String, String>,
    /// The base image of the runtime stage.
    pub base_image: String,
    /// The start command a native runner (no Docker) prefers when set.
    #[serde(default)]
    pub native_start_command: Option<String>,
    /// The base image of the build stage, when there is one.
    #[serde(default)]
    pub build_image: Option<String>,
    /// Debian packages needed only to build.
    #[serde(default)]
    pub build_system_packages: Vec<String>,
    /// Dockerfile template family.
    pub template: Template,
    /// Folder of static files served (static sites, single-page apps).
    #[serde(default)]
    pub static_dir: Option<String>,
    /// Build artifact kept by the runtime stage.
    #[serde(default)]
    pub artifact: Option<String>,
    /// Manifests copied before the sources.
    #[serde(default)]
    pub manifests: Vec<String>,
    /// The repository's own Dockerfile content, rendered as is.
    #[serde(default)]
    pub existing_dockerfile: Option<String>,
    /// Names of environment variables the app reads (never values).
    #[serde(default)]
    pub env_vars: Vec<EnvVarUse>,
    /// The port the code listens on instead of `$PORT`, when the analyzer found one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_coded_port: Option<PortFinding>,
}

/// A port number the code listens on without reading `$PORT`, and where the analyzer found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortFinding {
    pub port: u16,
    /// The file, relative to the checkout.
    pub file: String,
    pub line: u32,
}

/// The first sentence of a runtime's error for an app that did not open `port` (`$PORT`):
/// the ports it listens on instead (`listening`, empty when none was seen) or how long it was
/// given, and the analyzer's `finding` of a hard-coded port, so the user learns where to look.
/// One wording for every runtime.
pub fn port_not_opened(
    port: u16,
    listening: &[u16],
    waited_secs: u64,
    finding: Option<&PortFinding>,
) -> String {
    let listed: Vec<String> = listening.iter().map(u16::to_string).collect();
    match finding {
        Some(f) if listening == [f.port] => format!(
            "the app listens on port {} ({} line {}), not $PORT ({port}): read the port from $PORT",
            f.port, f.file, f.line
        ),
        Some(f) => {
            let seen = if listening.is_empty() {
                format!("the app did not listen on $PORT ({port}) within {waited_secs} s")
            } else {
                format!(
                    "the app listens on port {}, not $PORT ({port})",
                    listed.join(", ")
                )
            };
            format!(
                "{seen}: it listens on {} ({} line {}): read the port from $PORT",
                f.port, f.file, f.line
            )
        }
        None if listening.is_empty() => {
            format!("the app did not listen on $PORT ({port}) within {waited_secs} s")
        }
        None => format!(
            "the app listens on port {}, not $PORT ({port})",
            listed.join(", ")
        ),
    }
}

impl BuildPlan {
    /// A plan with only what every plan needs: the app at the checkout root, port 8080, a
    /// Debian slim runtime base and nothing to install or build. Set the other fields as needed.
    pub fn new(language: Language, template: Template, start_command: impl Into<String>) -> Self {
        BuildPlan {
            language,
            framework: None,
            runtime_version: None,
            package_manager: None,
            package_manager_version: None,
            app_dir: ".".into(),
            workspace_root: None,
            install_command: None,
            build_command: None,
            start_command: start_command.into(),
            deploy_port: 8080,
            system_packages: vec![],
            env: BTreeMap::new(),
            base_image: "debian:bookworm-slim".into(),
            native_start_command: None,
            build_image: None,
            build_system_packages: vec![],
            template,
            static_dir: None,
            artifact: None,
            manifests: vec![],
            existing_dockerfile: None,
            env_vars: vec![],
            hard_coded_port: None,
        }
    }

    /// The folder, inside the checkout, the dependencies are installed and the app built in,
    /// and the Dockerfile's build context: the workspace root for a workspace member, else
    /// the app's folder.
    pub fn build_dir(&self) -> &str {
        self.workspace_root.as_deref().unwrap_or(&self.app_dir)
    }

    /// The app's folder relative to [`BuildPlan::build_dir`] ("." when they are the same):
    /// where the start command runs inside the image (`/app/<this>`).
    pub fn app_dir_in_build_dir(&self) -> String {
        let parts = |d: &str| -> Vec<String> {
            d.split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .map(str::to_string)
                .collect()
        };
        let (base, app) = (parts(self.build_dir()), parts(&self.app_dir));
        match app.strip_prefix(base.as_slice()) {
            Some(rest) if !rest.is_empty() => rest.join("/"),
            _ => ".".into(),
        }
    }

    /// The command a native runner should start (prefers `native_start_command`).
    pub fn native_start(&self) -> &str {
        self.native_start_command
            .as_deref()
            .unwrap_or(&self.start_command)
    }
}

/// Names of environment variables that look like credentials (`STRIPE_API_KEY`,
/// `DATABASE_URL`), not paths to them (`..._FILE`, `..._PATH`). The one rule: the analyzer
/// marks such variables secret, and the API and the chat keep their values secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    const MARKERS: &[&str] = &[
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PWD",
        "CREDENTIAL",
        "PRIVATE",
        "DATABASE_URL",
        "DB_URL",
        "_DSN",
        "CONNECTION_STRING",
        "AUTH",
        "SALT",
        "WEBHOOK",
        "REDIS_URL",
        "MONGO",
        "SESSION",
        "COOKIE",
    ];
    MARKERS.iter().any(|m| n.contains(m)) && !n.ends_with("_PATH") && !n.ends_with("_FILE")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    /// Each value serializes as its `as_str` and reads back as itself; no two share a string.
    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + Serialize + DeserializeOwned,
    {
        let mut seen = std::collections::BTreeSet::new();
        for &v in all {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", as_str(v)), "{v:?}");
            assert_eq!(v.to_string(), as_str(v), "{v:?}");
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v, "{json}");
            assert!(seen.insert(as_str(v)), "{} is used twice", as_str(v));
        }
    }

    #[test]
    fn a_port_error_names_the_hard_coded_port_and_its_place() {
        let finding = PortFinding {
            port: 5000,
            file: "app.py".into(),
            line: 12,
        };
        assert_eq!(
            port_not_opened(8080, &[5000], 60, Some(&finding)),
            "the app listens on port 5000 (app.py line 12), not $PORT (8080): read the port from $PORT"
        );
        assert_eq!(
            port_not_opened(8080, &[], 60, Some(&finding)),
            "the app did not listen on $PORT (8080) within 60 s: it listens on 5000 (app.py line 12): read the port from $PORT"
        );
        assert_eq!(
            port_not_opened(8080, &[3000, 3001], 60, None),
            "the app listens on port 3000, 3001, not $PORT (8080)"
        );
        assert_eq!(
            port_not_opened(8080, &[], 60, None),
            "the app did not listen on $PORT (8080) within 60 s"
        );
    }

    #[test]
    fn a_plan_without_a_hard_coded_port_reads_and_writes_as_before() {
        let plan = BuildPlan::new(Language::Python, Template::Python, "python app.py");
        let json = serde_json::to_value(&plan).unwrap();
        assert!(json.get("hard_coded_port").is_none(), "{json}");
        let back: BuildPlan = serde_json::from_value(json).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn every_value_round_trips_as_its_string() {
        round_trips(Language::ALL, Language::as_str);
        round_trips(PackageManager::ALL, PackageManager::as_str);
        round_trips(Template::ALL, Template::as_str);
    }

    #[test]
    fn the_strings_are_the_ones_the_analyzer_always_printed() {
        assert_eq!(Language::Dotnet.as_str(), "dotnet");
        assert_eq!(PackageManager::GoModules.as_str(), "go modules");
        assert_eq!(
            Template::PythonSourceInstall.as_str(),
            "python-source-install"
        );
        assert_eq!(Template::NextjsStandalone.as_str(), "nextjs-standalone");
        assert_eq!(Template::JavaMaven.as_str(), "java-maven");
    }

    #[test]
    fn an_unknown_string_is_rejected_with_the_accepted_values() {
        let err = serde_json::from_str::<Language>("\"cobol\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `cobol`"), "{err}");
        assert!(err.contains("`python`"), "{err}");
        // Nothing recognised is not a language: "unknown" is not accepted either.
        assert!(serde_json::from_str::<Language>("\"unknown\"").is_err());
        // Case matters: the stored form is lowercase.
        assert!(serde_json::from_str::<Language>("\"Python\"").is_err());
        let err = serde_json::from_str::<Template>("\"nextjs_standalone\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `nextjs_standalone`"), "{err}");
        let err = serde_json::from_str::<PackageManager>("\"go-modules\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`go modules`"), "{err}");
    }

    #[test]
    fn a_stored_plan_reads_back_the_same() {
        let mut plan = BuildPlan::new(Language::Node, Template::NextjsStandalone, "node server.js");
        plan.package_manager = Some(PackageManager::Pnpm);
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["language"], "node");
        assert_eq!(json["template"], "nextjs-standalone");
        assert_eq!(json["package_manager"], "pnpm");
        let back: BuildPlan = serde_json::from_value(json).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn a_workspace_member_builds_at_the_workspace_root_and_starts_in_its_folder() {
        let mut plan = BuildPlan::new(Language::Node, Template::Node, "npm run start");
        assert_eq!(plan.build_dir(), ".");
        assert_eq!(plan.app_dir_in_build_dir(), ".");
        plan.app_dir = "apps/web".into();
        assert_eq!(plan.build_dir(), "apps/web");
        assert_eq!(plan.app_dir_in_build_dir(), ".");
        plan.workspace_root = Some(".".into());
        assert_eq!(plan.build_dir(), ".");
        assert_eq!(plan.app_dir_in_build_dir(), "apps/web");
        // The repository's own folder around a workspace (a deployment's subdir).
        plan.app_dir = "site/apps/web".into();
        plan.workspace_root = Some("site".into());
        assert_eq!(plan.build_dir(), "site");
        assert_eq!(plan.app_dir_in_build_dir(), "apps/web");
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["workspace_root"], "site");
        assert_eq!(serde_json::from_value::<BuildPlan>(json).unwrap(), plan);
        // A plan stored before workspaces reads as one built in its own folder.
        let mut old =
            serde_json::to_value(BuildPlan::new(Language::Node, Template::Node, "x")).unwrap();
        old.as_object_mut().unwrap().remove("workspace_root");
        assert_eq!(
            serde_json::from_value::<BuildPlan>(old)
                .unwrap()
                .workspace_root,
            None
        );
    }

    #[test]
    fn a_native_runner_prefers_the_native_start_command() {
        let mut plan = BuildPlan::new(Language::Static, Template::Static, "nginx");
        assert_eq!(plan.native_start(), "nginx");
        plan.native_start_command = Some("python3 -m http.server $PORT".into());
        assert_eq!(plan.native_start(), "python3 -m http.server $PORT");
    }
}
