//! The failure signatures, in the order they are tried (most specific first), and the matcher
//! that runs them over the failure's lines in one pass.
//!
//! Every pattern of every rule goes into one `RegexSet`, run once per line; only the lines the
//! set flags are matched again for their captures. A rule's patterns are tried in order and,
//! for each, the newest line first; its `explain` may decline a hit (a `KeyError` on a
//! lower-case key is not an environment variable), and then the next hit or rule is tried.

use crate::mask::mask_secrets;
use crate::names;
use crate::{Diagnosis, FailureInput, ProposedFix};
use devgem_domain::Step;
use devgem_plan::{BuildPlan, Language, PackageManager};
use once_cell::sync::Lazy;
use regex::{Captures, Regex, RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Declares [`Signature`] and its `ALL` list from one list of variants.
macro_rules! signatures {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// One class of failure the catalogue recognises.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Signature {
            $($(#[$doc])* $name,)*
        }

        impl Signature {
            /// Every signature, in declaration order.
            pub const ALL: &[Signature] = &[$(Signature::$name,)*];
        }
    };
}

signatures! {
    /// The repository is private or the URL is wrong: git could not authenticate.
    GitAuthRequired,
    /// The branch, tag or commit asked for does not exist.
    GitRefNotFound,
    /// A Dockerfile `COPY` names a file that is not in the build context.
    DockerfileCopyMissing,
    /// A script has Windows (CRLF) line endings, so its interpreter is `bash\r`.
    WindowsLineEndings,
    /// A binary or script cannot be executed on this CPU (`exec format error`).
    ExecFormat,
    /// `npm ci`: package.json and package-lock.json disagree.
    NpmLockOutOfSync,
    /// `npm ci` without a package-lock.json.
    NpmLockMissing,
    /// pnpm's frozen lockfile is older than package.json.
    PnpmLockOutdated,
    /// Yarn's frozen lockfile would have to change.
    YarnLockFrozen,
    /// poetry.lock, uv.lock, Pipfile.lock or pdm.lock is older than the manifest.
    PythonLockStale,
    /// Bundler in deployment (frozen) mode with a Gemfile changed since Gemfile.lock.
    BundlerLockStale,
    /// Gemfile.lock does not list the platform the image runs on.
    BundlerPlatform,
    /// composer.lock is older than composer.json.
    ComposerLockStale,
    /// go.sum lacks an entry, or go.mod needs `go mod tidy`.
    GoSumMissing,
    /// A package needs another Python version.
    PythonVersion,
    /// A package or framework needs another Node.js version.
    NodeVersion,
    /// go.mod asks for a newer Go.
    GoVersion,
    /// The code targets another Java version than the JDK or JRE.
    JavaVersion,
    /// The Gemfile or a gem asks for another Ruby.
    RubyVersion,
    /// Composer packages need another PHP.
    PhpVersion,
    /// A crate needs a newer Rust toolchain.
    RustVersion,
    /// A native module (or binary) was built for another libc, CPU or Node.js version.
    NativeModuleWrongPlatform,
    /// A binary needs a newer glibc than the image has.
    GlibcTooOld,
    /// A shared library the app loads at run time is not installed.
    MissingSharedLibrary,
    /// A compiler, header or `pkg-config` module needed to build a dependency is missing.
    MissingBuildTool,
    /// Rust's linker (`cc`) is not installed.
    RustLinkerMissing,
    /// A PHP extension Composer requires is not installed.
    PhpExtensionMissing,
    /// Python cannot import the app's own module (wrong folder or start command).
    PythonLocalImport,
    /// A Python module is imported but its package is not declared.
    PythonModuleNotFound,
    /// A name is missing from an installed Python package (a version mismatch).
    PythonImportName,
    /// A file the Node app requires does not exist (often an unbuilt `dist/`).
    NodeLocalFileNotFound,
    /// A Node package is imported but not installed.
    NodeModuleNotFound,
    /// A Go package is imported but not required in go.mod.
    GoPackageMissing,
    /// A Ruby file requires a gem the Gemfile does not declare.
    RubyGemMissing,
    /// Bundler cannot find a gem from Gemfile.lock.
    BundlerGemNotFound,
    /// PHP's autoloader cannot find a class.
    PhpClassNotFound,
    /// `flask run` cannot find the application object.
    FlaskAppNotFound,
    /// Uvicorn cannot import the ASGI app named in the start command.
    AsgiAppNotFound,
    /// `next start` without a `next build`.
    NextBuildMissing,
    /// Django refuses the deployment's host name (`ALLOWED_HOSTS`).
    DjangoDisallowedHost,
    /// A Gunicorn worker took longer than its timeout on a request.
    GunicornWorkerTimeout,
    /// package.json has no script of the name the command runs.
    MissingScript,
    /// The start (or build) command names a program that is not installed.
    CommandNotFound,
    /// The app needs an environment variable that is not set.
    MissingEnvVar,
    /// The app connects to a database on localhost or a Compose host name.
    DatabaseUnreachable,
    /// Node ran out of V8 heap.
    NodeHeapOutOfMemory,
    /// The process was killed for using too much memory.
    OutOfMemory,
    /// The disk is full.
    DiskFull,
    /// A TLS certificate could not be verified while fetching packages.
    TlsCertificate,
    /// A package registry or host could not be reached.
    RegistryUnreachable,
    /// The app listens on a port below 1024 without root.
    PrivilegedPort,
    /// A file or script cannot be read, written or executed.
    PermissionDenied,
    /// The port is taken (the app binds it twice, or two servers share it).
    AddressInUse,
    /// rustc rejected the code.
    RustCompileError,
    /// The Go compiler rejected the code.
    GoCompileError,
    /// TypeScript rejected the code.
    TypeScriptCompileError,
    /// javac (through Maven) rejected the code.
    MavenCompileError,
    /// Maven cannot resolve a dependency or parent POM.
    MavenDependencyMissing,
    /// A Gradle build failed.
    GradleBuildFailed,
    /// Python could not parse the code.
    PythonSyntaxError,
    /// pip found no release matching a requirement.
    PipNoMatchingVersion,
    /// Python requirements conflict with each other.
    PythonDependencyConflict,
    /// npm cannot resolve peer dependencies (`ERESOLVE`).
    NpmPeerConflict,
    /// The app listens on 127.0.0.1 or localhost, which the platform cannot reach.
    BindLocalhost,
    /// The app listens on a fixed port instead of `$PORT`.
    HardcodedPort,
    /// The app did not listen on `$PORT` within the startup probe.
    StartupProbeFailed,
    /// A Gunicorn worker crashed while importing the app.
    GunicornWorkerBoot,
    /// Maven failed for a reason stated in its `[ERROR]` lines.
    MavenBuildFailed,
    /// The build ran longer than it is allowed to.
    BuildTimeout,
    /// The static web server found no index.html.
    StaticIndexMissing,
    /// No signature matched.
    Unknown,
}

/// What a rule says about one hit.
struct Explained {
    cause: String,
    fix: String,
    proposed: Option<ProposedFix>,
    /// More lines (indexes into the context's lines) that show it.
    also: Vec<usize>,
}

fn says(
    cause: impl Into<String>,
    fix: impl Into<String>,
    proposed: Option<ProposedFix>,
) -> Option<Explained> {
    Some(Explained {
        cause: cause.into(),
        fix: fix.into(),
        proposed,
        also: Vec::new(),
    })
}

impl Explained {
    fn with_line(mut self, index: Option<usize>) -> Self {
        self.also.extend(index);
        self
    }
}

/// One pattern's match on one line.
struct Hit<'c> {
    index: usize,
    /// Which of the rule's patterns matched.
    pattern: usize,
    caps: Captures<'c>,
}

impl Hit<'_> {
    /// Capture group `n`, or "" when it did not take part.
    fn get(&self, n: usize) -> &str {
        self.caps.get(n).map_or("", |m| m.as_str())
    }
}

/// One signature: its patterns (one line each) and what a match means.
struct Rule {
    signature: Signature,
    patterns: &'static [&'static str],
    explain: fn(&Hit, &Context) -> Option<Explained>,
}

/// The failure's lines, cleaned for matching, and what the plan says.
pub(crate) struct Context<'a> {
    input: &'a FailureInput<'a>,
    lines: Vec<Cow<'a, str>>,
    /// The port the platform expects the app on.
    expected_port: u16,
}

/// Only the newest log lines are read: the failure is at the end.
const MAX_LOG_LINES: usize = 4000;
/// Longer lines are cut before matching (minified bundles, base64 blobs).
const MAX_LINE_BYTES: usize = 2000;
/// Evidence lines shown, and their length.
const MAX_EVIDENCE: usize = 3;
const MAX_EVIDENCE_CHARS: usize = 240;

static ANSI: Lazy<Regex> = Lazy::new(|| Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").expect("ansi"));
/// BuildKit's `#12 3.456 ` and Cloud Build's `Step #1 - "build": ` line prefixes.
static PREFIX: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r#"^(?:#\d+ \d+(?:\.\d+)? |Step #\d+(?: - "[^"]*")?: )"#).expect("prefix")
});
static REASON_PORT: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"\$PORT \((\d{2,5})\)|PORT=(\d{2,5})").expect("port"));

fn clean(line: &str) -> Cow<'_, str> {
    let mut line = Cow::Borrowed(truncate(line, MAX_LINE_BYTES));
    if line.contains('\x1b') {
        line = Cow::Owned(ANSI.replace_all(&line, "").into_owned());
    }
    if (line.starts_with('#') || line.starts_with("Step #"))
        && let Cow::Owned(stripped) = PREFIX.replace(&line, "")
    {
        line = Cow::Owned(stripped);
    }
    line
}

fn truncate(line: &str, max: usize) -> &str {
    if line.len() <= max {
        return line;
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

impl<'a> Context<'a> {
    fn new(input: &'a FailureInput<'a>) -> Self {
        let start = input.log_lines.len().saturating_sub(MAX_LOG_LINES);
        let mut lines: Vec<Cow<'a, str>> =
            input.log_lines[start..].iter().map(|l| clean(l)).collect();
        lines.extend(input.reason.lines().map(clean));
        let expected_port = input
            .plan
            .map(|p| p.deploy_port)
            .or_else(|| {
                let caps = REASON_PORT.captures(input.reason)?;
                caps.get(1).or(caps.get(2))?.as_str().parse().ok()
            })
            .unwrap_or(8080);
        Context {
            input,
            lines,
            expected_port,
        }
    }

    fn plan(&self) -> Option<&BuildPlan> {
        self.input.plan
    }

    fn step(&self) -> Step {
        self.input.step
    }

    /// The plan's package manager, when the plan builds `language`.
    fn manager_for(&self, language: Language) -> Option<PackageManager> {
        self.plan()
            .filter(|p| p.language == language)
            .and_then(|p| p.package_manager)
    }

    fn start_command(&self) -> Option<&str> {
        self.plan().map(|p| p.start_command.as_str())
    }

    /// The first line after `index` (within `window` lines) that `re` matches.
    fn find_after(&self, index: usize, window: usize, re: &Regex) -> Option<(usize, Captures<'_>)> {
        let end = (index + 1 + window).min(self.lines.len());
        (index + 1..end).find_map(|i| re.captures(&self.lines[i]).map(|c| (i, c)))
    }

    /// The nearest line before `index` (within `window` lines) that `re` matches.
    fn find_before(
        &self,
        index: usize,
        window: usize,
        re: &Regex,
    ) -> Option<(usize, Captures<'_>)> {
        let start = index.saturating_sub(window);
        (start..index)
            .rev()
            .find_map(|i| re.captures(&self.lines[i]).map(|c| (i, c)))
    }

    /// The package manager named anywhere in the lines (`poetry`, `uv.lock`...), else the plan's.
    fn python_manager(&self, line: &str) -> Option<PackageManager> {
        let lower = line.to_ascii_lowercase();
        if lower.contains("poetry") {
            Some(PackageManager::Poetry)
        } else if lower.contains("uv.lock") {
            Some(PackageManager::Uv)
        } else if lower.contains("pipfile") {
            Some(PackageManager::Pipenv)
        } else if lower.contains("pdm") {
            Some(PackageManager::Pdm)
        } else {
            self.manager_for(Language::Python)
        }
    }

    /// The command that runs a package.json script with the plan's manager.
    fn run_script(&self, script: &str) -> String {
        match self.manager_for(Language::Node) {
            Some(PackageManager::Pnpm) => format!("pnpm run {script}"),
            Some(PackageManager::Yarn) => format!("yarn {script}"),
            Some(PackageManager::Bun) => format!("bun run {script}"),
            _ => format!("npm run {script}"),
        }
    }
}

fn add_dependency(ctx: &Context, language: Language, package: &str) -> Option<ProposedFix> {
    Some(ProposedFix::AddDependency {
        language,
        manager: ctx.manager_for(language),
        package: package.to_string(),
    })
}

fn relock(manager: Option<PackageManager>) -> Option<ProposedFix> {
    Some(ProposedFix::RegenerateLockfile { manager })
}

fn runtime(version: Option<String>) -> Option<ProposedFix> {
    version.map(|version| ProposedFix::SetRuntimeVersion { version })
}

fn env_var(name: &str) -> Option<ProposedFix> {
    Some(ProposedFix::SetEnvVar {
        name: name.to_string(),
    })
}

fn build_package(package: &str) -> Option<ProposedFix> {
    Some(ProposedFix::AddBuildPackage {
        package: package.to_string(),
    })
}

static VERSION_BOUND: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(>=|>|\^|~=|~|===|==|=|<=|<)?\s*v?(\d+(?:\.\d+)*)").expect("bound"));

/// The lowest version a constraint such as `>=3.10`, `^18.0.0 || >=20`, `<3.12,>=3.8` or a
/// bare `1.22.0` allows, cut to `parts` components. Of `||` alternatives, the newest wins; a
/// constraint with only an upper bound `<X.Y` gives the minor before it.
fn lowest_allowed(constraint: &str, parts: usize) -> Option<String> {
    let mut best: Option<Vec<u64>> = None;
    for alternative in constraint.split("||") {
        let mut lower: Option<Vec<u64>> = None;
        let mut upper: Option<Vec<u64>> = None;
        for caps in VERSION_BOUND.captures_iter(alternative) {
            let numbers: Vec<u64> = caps[2].split('.').filter_map(|n| n.parse().ok()).collect();
            match caps.get(1).map(|m| m.as_str()) {
                Some("<") => upper = upper.or(Some(numbers)),
                Some("<=") => upper = upper.or(Some(numbers)),
                _ => lower = lower.or(Some(numbers)),
            }
        }
        let version = lower.or_else(|| {
            let mut v = upper?;
            // "<3.12" -> 3.11, "<4" -> 3.
            let last = v.len().min(2) - 1;
            if v[last] == 0 {
                return None;
            }
            v.truncate(last + 1);
            v[last] -= 1;
            Some(v)
        });
        if let Some(v) = version
            && best.as_ref().is_none_or(|b| v > *b)
        {
            best = Some(v);
        }
    }
    let mut version = best?;
    version.truncate(parts);
    Some(
        version
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The patterns that find an app's "I am listening" line: host (group 1) and port (group 2).
const LISTEN: &str = r"(?i)(?:running on|listening (?:on|at)|started (?:server )?on|(?:listening and )?serving (?:https? )?on|server (?:is )?(?:running|started|listening) (?:at|on)|bound to|available at|accepting connections at)[:\s]+(?:(?:https?|tcp)://)?(\[[0-9a-f:]*\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3}|localhost|\*)?:(\d{2,5})\b";
/// `listening on port 3000` (no host), `Tomcat started on port(s): 8080`.
const LISTEN_PORT: &str = r"(?i)\b(?:listening|running|started|serving|server|app|bound)\b.{0,24}?\bon port(?:\(s\))?:? (\d{2,5})\b";
/// PHP's built-in server.
const PHP_DEV_SERVER: &str = r"Development Server \(https?://([^:/)]+):(\d{2,5})\) started";
/// DevGem's runtimes: the listeners they saw.
const DEVGEM_LOOPBACK: &str = r"the app listens on \[?([^\]\s]+?)\]?:(\d{2,5}) only";
const DEVGEM_WRONG_PORT: &str =
    r"the app listens on port (\d{2,5})[\d, ]*, not \$PORT \((\d{2,5})\)";

fn is_loopback(host: &str) -> bool {
    let host = host.trim_matches(|c| c == '[' || c == ']');
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

static LISTEN_RE: Lazy<Regex> = Lazy::new(|| Regex::new(LISTEN).expect("listen"));

/// Whether the app's output also shows it listening on all (or a public) interface: Flask
/// and others print a 127.0.0.1 URL even when they listen on 0.0.0.0.
fn listens_publicly(ctx: &Context) -> bool {
    ctx.lines.iter().any(|line| {
        line.contains("Running on all addresses")
            || LISTEN_RE.captures(line).is_some_and(|c| {
                c.get(1)
                    .is_some_and(|host| !host.as_str().is_empty() && !is_loopback(host.as_str()))
            })
    })
}

/// The start command with its loopback host replaced, or a `--host 0.0.0.0` added for the
/// servers that take one; None when the start command does not show where the host comes from.
fn start_on_all_interfaces(command: &str) -> Option<String> {
    if command.contains("127.0.0.1") || command.contains("localhost") {
        return Some(
            command
                .replace("127.0.0.1", "0.0.0.0")
                .replace("localhost", "0.0.0.0"),
        );
    }
    if command.contains("streamlit") && !command.contains("--server.address") {
        let port = if command.contains("--server.port") {
            ""
        } else {
            " --server.port $PORT"
        };
        return Some(format!("{command} --server.address 0.0.0.0{port}"));
    }
    let takes_host = ["uvicorn", "flask run", "vite", "astro preview"];
    if takes_host.iter().any(|s| command.contains(s)) && !command.contains("--host") {
        let port = if command.contains("--port") {
            ""
        } else {
            " --port $PORT"
        };
        return Some(format!("{command} --host 0.0.0.0{port}"));
    }
    None
}

/// The name DevGem uses for the URL of the service on `port`, and the words for it.
fn service_for_port(port: u16) -> Option<(&'static str, &'static str)> {
    match port {
        5432 => Some(("DATABASE_URL", "PostgreSQL")),
        3306 => Some(("DATABASE_URL", "MySQL")),
        6379 => Some(("REDIS_URL", "Redis")),
        27017 => Some(("MONGODB_URI", "MongoDB")),
        5672 => Some(("AMQP_URL", "RabbitMQ")),
        9200 => Some(("ELASTICSEARCH_URL", "Elasticsearch")),
        _ => None,
    }
}

/// The variable the app reads for a service: the plan's own name when it has one of the kind.
fn service_env_var(ctx: &Context, default: &str) -> String {
    let markers: &[&str] = match default {
        "DATABASE_URL" => &["DATABASE", "POSTGRES", "PG", "MYSQL", "DB_"],
        "REDIS_URL" => &["REDIS"],
        "MONGODB_URI" => &["MONGO"],
        "AMQP_URL" => &["AMQP", "RABBIT"],
        _ => &["ELASTIC"],
    };
    ctx.plan()
        .and_then(|p| {
            p.env_vars
                .iter()
                .find(|v| markers.iter().any(|m| v.name.contains(m)))
        })
        .map_or_else(|| default.to_string(), |v| v.name.clone())
}

fn looks_like_env_name(name: &str) -> bool {
    name.len() >= 2
        && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

static PY_FILE_LINE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r#"File "([^"]+)", line (\d+)"#).expect("file line"));
static RUST_LOCATION: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^\s*--> (\S+:\d+:\d+)").expect("rust location"));
static GRADLE_WRONG: Lazy<Regex> = Lazy::new(|| Regex::new(r"^\s*(?:>\s*)?(\S.*)$").expect("gr"));
static PNPM_EXPECTED: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"Expected version: (.+)$").expect("pnpm expected"));
static PYDANTIC_FIELD: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*$").expect("field"));
static PYDANTIC_MODEL: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"validation errors? for (\w*(?:Settings|Config|Env)\w*)").expect("m"));
static ERROR_LINE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:error|exception|fatal|failed|failure|panic|traceback|cannot|could not|can't|not found|denied|refused|killed)\b")
        .expect("error line")
});
static PROBE_PORT: Lazy<Regex> = Lazy::new(|| Regex::new(r"\b(\d{2,5})\b").expect("probe port"));

/// The catalogue, most specific first.
static RULES: &[Rule] = &[
    // ---- Fetching the source ----
    Rule {
        signature: Signature::GitAuthRequired,
        patterns: &[
            r"fatal: could not read Username for '([^']+)'",
            r"fatal: Authentication failed for '([^']+)'",
            r"remote: Repository not found\.",
            r"remote: Invalid username or (?:password|token)",
            r"Permission denied \(publickey\)",
            r"The requested URL returned error: 40[13]",
        ],
        explain: |_, _| {
            says(
                "git could not read the repository: it is private (or the URL is wrong), and no credentials were given",
                "If the repository is private, give DevGem a token that can read it (a GitHub personal access token with read access to contents), then deploy again; otherwise check the URL.",
                Some(ProposedFix::ProvideRepositoryToken),
            )
        },
    },
    Rule {
        signature: Signature::GitRefNotFound,
        patterns: &[
            r"Remote branch (\S+) not found in upstream",
            r"couldn't find remote ref (\S+)",
            r"fatal: reference is not a tree: (\S+)",
            r"pathspec '([^']+)' did not match any file\(s\) known to git",
        ],
        explain: |h, _| {
            let name = h.get(1);
            says(
                format!("the repository has no branch, tag or commit `{name}`"),
                format!(
                    "Check the name (`git ls-remote` lists branches and tags) and deploy again with an existing one, or without `{name}` for the default branch."
                ),
                None,
            )
        },
    },
    // ---- The image ----
    Rule {
        signature: Signature::DockerfileCopyMissing,
        patterns: &[
            r#"failed to compute cache key: .*"/?([^"]+)": not found"#,
            r"COPY failed: .*stat (\S+): file does not exist",
            r"COPY failed: file not found in build context or excluded by \.dockerignore: stat (\S+):",
        ],
        explain: |h, _| {
            let file = h.get(1).trim_start_matches("/var/lib/docker/tmp/");
            says(
                format!("the Dockerfile copies `{file}`, which is not in the build context"),
                format!(
                    "Commit `{file}` (or fix the path in the Dockerfile), and check it is not excluded by .dockerignore."
                ),
                None,
            )
        },
    },
    Rule {
        signature: Signature::WindowsLineEndings,
        patterns: &[
            r"(?:\\r|\r)['’]?: No such file or directory",
            r"\$'\\r': command not found",
            r"syntax error near unexpected token `\$'\\r''",
        ],
        explain: |_, _| {
            says(
                "a shell script has Windows (CRLF) line endings, so Linux looks for an interpreter named with a trailing carriage return",
                "Convert the script to LF line endings (`dos2unix script.sh`, or `*.sh text eol=lf` in .gitattributes), commit, and deploy again.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::ExecFormat,
        patterns: &[r"exec (\S+): exec format error", r"exec format error"],
        explain: |h, _| {
            let what = if h.get(1).is_empty() {
                "a program".to_string()
            } else {
                format!("`{}`", h.get(1))
            };
            says(
                format!(
                    "{what} cannot be executed here: it was built for another CPU architecture (an arm64 binary on amd64), or it is a script without a `#!` line"
                ),
                "Build the binary inside the image rather than committing it (or build for linux/amd64), and start scripts with a `#!/bin/sh` line.",
                None,
            )
        },
    },
    // ---- Runtime versions ----
    Rule {
        signature: Signature::PythonVersion,
        patterns: &[
            r"Package '([^']+)' requires a different Python: ([\d.]+) not in '([^']+)'",
            r"Because the current Python version \(([\d.]+)\) does not satisfy Python\s*([^\s,]+)",
            r"The currently activated Python version ([\d.]+) is not supported by the project \(([^)]+)\)",
            r"No interpreter found for Python (\S+)",
            r"require a different python version: .*Requires-Python (\S+)",
            r"TypeError: unsupported operand type\(s\) for \|: 'type' and '(?:type|NoneType)'",
        ],
        explain: |h, ctx| {
            let constraint = match h.pattern {
                0 => h.get(3),
                1 | 2 => h.get(2),
                3 | 4 => h.get(1),
                _ => ">=3.10",
            };
            let version = lowest_allowed(constraint, 2)?;
            let current = ctx.plan().and_then(|p| p.runtime_version.clone());
            let now = current
                .map(|c| format!(" (the plan uses {c})"))
                .unwrap_or_default();
            says(
                format!("the code or a dependency needs Python {constraint}{now}"),
                format!(
                    "Build with Python {version}: set it in .python-version or `requires-python`, or DevGem can set it for this app."
                ),
                runtime(Some(version)),
            )
        },
    },
    Rule {
        signature: Signature::NodeVersion,
        patterns: &[
            r#"The engine "node" is incompatible with this module\. Expected version "([^"]+)"\. Got "([^"]+)""#,
            r"You are using Node\.js ([\d.]+)\. For Next\.js, Node\.js version (?:>= )?(v?[\d.]+) is required",
            r"ERR_PNPM_UNSUPPORTED_ENGINE",
            r"npm (?:ERR!|error) code EBADENGINE",
            r"ReferenceError: (File|fetch|structuredClone|ReadableStream) is not defined",
            r"SyntaxError: Unexpected token '(\?\?=|\|\|=|&&=|\?)'",
        ],
        explain: |h, ctx| {
            let constraint = match h.pattern {
                0 => h.get(1).to_string(),
                1 => format!(">={}", h.get(2)),
                2 => ctx.find_after(h.index, 6, &PNPM_EXPECTED)?.1[1].to_string(),
                3 => engine_required(ctx)?,
                _ => ">=20".to_string(),
            };
            let version = lowest_allowed(&constraint, 1)?;
            says(
                format!("the app or a dependency needs Node.js {constraint}"),
                format!(
                    "Build and run with Node.js {version}: set \"engines\": {{\"node\": \">={version}\"}} in package.json (or .nvmrc), or DevGem can set it."
                ),
                runtime(Some(version)),
            )
        },
    },
    Rule {
        signature: Signature::GoVersion,
        patterns: &[
            r"go\.mod requires go >= ([\d.]+)",
            r"note: module requires Go ([\d.]+)",
            r"invalid go version '([\d.]+)': must match format",
        ],
        explain: |h, _| {
            let version = lowest_allowed(h.get(1), 2)?;
            says(
                format!(
                    "go.mod asks for Go {}, newer than the toolchain in the build",
                    h.get(1)
                ),
                format!(
                    "Build with Go {version} (DevGem can set it), or lower the `go` line in go.mod if the code allows."
                ),
                runtime(Some(version)),
            )
        },
    },
    Rule {
        signature: Signature::JavaVersion,
        patterns: &[
            r"(?:invalid target release|release version|invalid source release):? (\d+)",
            r"class file version (\d+)\.0\), this version of the Java Runtime only recognizes",
            r"Dependency requires at least JVM runtime version (\d+)",
        ],
        explain: |h, _| {
            let number: u32 = h.get(1).parse().ok()?;
            // Class file 65 is Java 21: the class-file major version minus 44.
            let version = if h.pattern == 1 {
                number.checked_sub(44)?
            } else {
                number
            };
            says(
                format!(
                    "the code is built for Java {version}, newer than the JDK or JRE in the image"
                ),
                format!(
                    "Build and run with Java {version} (DevGem can set it), or lower `maven.compiler.release` / `java.toolchain` to the JDK you have."
                ),
                runtime(Some(version.to_string())),
            )
        },
    },
    Rule {
        signature: Signature::RubyVersion,
        patterns: &[
            r"Your Ruby version is ([\d.]+), but your Gemfile specified ([\d.]+)",
            r"(\S+) requires ruby version ([^,]*>=\s*[\d.]+[^,]*), which is incompatible with the current version, ([\d.]+)",
        ],
        explain: |h, _| {
            let version = if h.pattern == 0 {
                h.get(2).to_string()
            } else {
                lowest_allowed(h.get(2), 2)?
            };
            says(
                format!(
                    "the Gemfile or a gem needs Ruby {version}, not {}",
                    if h.pattern == 0 { h.get(1) } else { h.get(3) }
                ),
                format!("Build with Ruby {version} (set it in .ruby-version; DevGem can set it)."),
                runtime(Some(version)),
            )
        },
    },
    Rule {
        signature: Signature::PhpVersion,
        patterns: &[
            r"requires php (\S+) (?:->|but) your php version \(([\d.]+)\) does not satisfy",
            r#"Your Composer dependencies require a PHP version "([^"]+)""#,
        ],
        explain: |h, _| {
            let version = lowest_allowed(h.get(1), 2)?;
            says(
                format!("Composer packages need PHP {}", h.get(1)),
                format!(
                    "Build and run with PHP {version} (DevGem can set it), or relax the versions in composer.json."
                ),
                runtime(Some(version)),
            )
        },
    },
    Rule {
        signature: Signature::RustVersion,
        patterns: &[
            r"requires rustc ([\d.]+) or newer, while the currently active rustc version is",
            r"(\S+) requires rustc ([\d.]+)",
            r"feature `edition(\d{4})` is required",
        ],
        explain: |h, _| {
            let version = match h.pattern {
                0 => lowest_allowed(h.get(1), 2)?,
                1 => lowest_allowed(h.get(2), 2)?,
                _ => match h.get(1) {
                    "2024" => "1.85".to_string(),
                    "2021" => "1.56".to_string(),
                    _ => return None,
                },
            };
            says(
                format!("a crate needs Rust {version} or newer"),
                format!(
                    "Build with Rust {version} or newer (set it in rust-toolchain.toml; DevGem can set it)."
                ),
                runtime(Some(version)),
            )
        },
    },
    // ---- Lock files ----
    Rule {
        signature: Signature::NpmLockOutOfSync,
        patterns: &[
            r"`npm ci` can only install packages when your package\.json and package-lock\.json (?:or npm-shrinkwrap\.json )?are in sync",
            r"npm (?:ERR!|error) Missing: (\S+) from lock file",
            r"npm (?:ERR!|error) Invalid: lock file's (\S+) does not satisfy",
        ],
        explain: |_, _| {
            says(
                "package-lock.json does not match package.json, and `npm ci` installs only from a matching lock file",
                "Run `npm install` locally and commit the updated package-lock.json (DevGem can regenerate it).",
                relock(Some(PackageManager::Npm)),
            )
        },
    },
    Rule {
        signature: Signature::NpmLockMissing,
        patterns: &[
            r"The `npm ci` command can only install with an existing package-lock\.json",
            r"`npm ci` can only install with an existing package-lock\.json",
        ],
        explain: |_, _| {
            says(
                "there is no package-lock.json, and `npm ci` needs one",
                "Run `npm install` locally and commit package-lock.json (DevGem can generate it).",
                relock(Some(PackageManager::Npm)),
            )
        },
    },
    Rule {
        signature: Signature::PnpmLockOutdated,
        patterns: &[
            r"ERR_PNPM_OUTDATED_LOCKFILE",
            r"ERR_PNPM_LOCKFILE_CONFIG_MISMATCH",
        ],
        explain: |_, _| {
            says(
                "pnpm-lock.yaml is older than package.json, and the install uses a frozen lockfile",
                "Run `pnpm install` locally and commit the updated pnpm-lock.yaml (DevGem can regenerate it).",
                relock(Some(PackageManager::Pnpm)),
            )
        },
    },
    Rule {
        signature: Signature::YarnLockFrozen,
        patterns: &[
            r"Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`",
            r"The lockfile would have been (?:modified|created) by this install, which is explicitly forbidden",
        ],
        explain: |_, _| {
            says(
                "yarn.lock does not match package.json, and the install forbids changing it",
                "Run `yarn install` locally and commit the updated yarn.lock (DevGem can regenerate it).",
                relock(Some(PackageManager::Yarn)),
            )
        },
    },
    Rule {
        signature: Signature::PythonLockStale,
        patterns: &[
            r"pyproject\.toml changed significantly since poetry\.lock was last generated",
            r"poetry\.lock is not consistent with pyproject\.toml",
            r"The lock file is not up to date with the latest changes in pyproject\.toml",
            r"The lockfile at `uv\.lock` needs to be updated, but `--(?:locked|frozen)` was provided",
            r"Pipfile\.lock \(\w+\) out of date",
            r"(?i)lock file hash doesn't match pyproject\.toml",
        ],
        explain: |h, ctx| {
            let manager = ctx.python_manager(&ctx.lines[h.index]);
            let command = match manager {
                Some(PackageManager::Uv) => "uv lock",
                Some(PackageManager::Pipenv) => "pipenv lock",
                Some(PackageManager::Pdm) => "pdm lock",
                _ => "poetry lock",
            };
            says(
                "the lock file is older than pyproject.toml (or Pipfile), and the install refuses to change it",
                format!(
                    "Run `{command}` locally and commit the updated lock file (DevGem can regenerate it)."
                ),
                relock(manager),
            )
        },
    },
    Rule {
        signature: Signature::BundlerLockStale,
        patterns: &[
            r"You are trying to install in deployment mode after changing",
            r"Run `bundle install` elsewhere and add the",
            r"The gemspecs for path gems changed",
        ],
        explain: |_, _| {
            says(
                "the Gemfile changed since Gemfile.lock was written, and Bundler runs frozen",
                "Run `bundle install` locally and commit the updated Gemfile.lock (DevGem can regenerate it).",
                relock(Some(PackageManager::Bundler)),
            )
        },
    },
    Rule {
        signature: Signature::BundlerPlatform,
        patterns: &[
            r"Your bundle only supports platforms \[([^\]]*)\] but your local platform is ([\w-]+)",
            r"Could not find (\S+)-(?:arm64|x86_64|universal)-darwin\S* in",
        ],
        explain: |h, _| {
            let platform = if h.pattern == 0 {
                h.get(2)
            } else {
                "x86_64-linux"
            };
            says(
                format!(
                    "Gemfile.lock was made on another platform (macOS) and does not list `{platform}`"
                ),
                format!(
                    "Run `bundle lock --add-platform {platform}` (and `x86_64-linux` if missing) and commit Gemfile.lock."
                ),
                relock(Some(PackageManager::Bundler)),
            )
        },
    },
    Rule {
        signature: Signature::ComposerLockStale,
        patterns: &[
            r"lock file is not up to date with the latest changes in composer\.json",
            r"Your lock file does not contain a compatible set of packages",
        ],
        explain: |_, _| {
            says(
                "composer.lock is older than composer.json",
                "Run `composer update` locally and commit the updated composer.lock (DevGem can regenerate it).",
                relock(Some(PackageManager::Composer)),
            )
        },
    },
    Rule {
        signature: Signature::GoSumMissing,
        patterns: &[
            r"missing go\.sum entry for module providing package (\S+)",
            r"missing go\.sum entry for go\.mod file",
            r"go: updates to go\.mod needed",
        ],
        explain: |h, _| {
            let what = if h.get(1).is_empty() {
                String::new()
            } else {
                format!(" (for `{}`)", h.get(1))
            };
            says(
                format!("go.mod and go.sum are not tidy{what}"),
                "Run `go mod tidy` locally and commit go.mod and go.sum (DevGem can run it).",
                relock(Some(PackageManager::GoModules)),
            )
        },
    },
    // ---- Native code and system libraries ----
    Rule {
        signature: Signature::NativeModuleWrongPlatform,
        patterns: &[
            r"(\S+\.node): invalid ELF header",
            r"invalid ELF header",
            r"Error relocating (\S+): \S+: symbol not found",
            r"Error loading shared library (ld-linux-[\w-]+\.so\.\d)",
            r"(libc\.musl-\S+\.so\.\d): cannot open shared object file",
            r#"Could not load the "(\w+)" module using the (\S+) runtime"#,
            r"was compiled against a different Node\.js version using\s+NODE_MODULE_VERSION (\d+)",
            r"wrong ELF class: ELFCLASS\d+",
        ],
        explain: |h, _| {
            let what = match h.pattern {
                0 | 2 => format!("`{}`", h.get(1)),
                5 => format!("the `{}` module", h.get(1)),
                _ => "a native module".to_string(),
            };
            says(
                format!(
                    "{what} was compiled for another system (another libc, CPU or Node.js version) than the image runs"
                ),
                "Do not commit node_modules or other build output: add them to .dockerignore and .gitignore so the dependencies are installed (and compiled) inside the image.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::GlibcTooOld,
        patterns: &[r"version `(GLIBC_[\d.]+)' not found"],
        explain: |h, _| {
            says(
                format!(
                    "a binary needs {}, newer than the C library in the image",
                    h.get(1)
                ),
                "Build the binary in the same base image it runs in (or a newer base, such as Debian bookworm), instead of copying one built elsewhere.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::MissingSharedLibrary,
        patterns: &[
            r"(lib[\w+.-]*?\.so(?:\.[\d.]+)?): cannot open shared object file",
            r"error while loading shared libraries: (lib[\w+.-]*?\.so[\d.]*)",
            r"(?i)failed to find (libmagic)",
            r"OSError: cannot load library '([^']+)'",
            r"ImportError: (lib[\w+.-]*?\.so[\d.]*)",
        ],
        explain: |h, _| {
            let library = h.get(1);
            match names::debian_runtime_package(library) {
                Some(package) => says(
                    format!("the app loads `{library}`, which is not installed in the image"),
                    format!(
                        "Install the Debian package `{package}` in the runtime image (DevGem can add it to the plan)."
                    ),
                    Some(ProposedFix::AddSystemPackage {
                        package: package.to_string(),
                    }),
                ),
                None => says(
                    format!("the app loads `{library}`, which is not installed in the image"),
                    format!(
                        "Install the Debian package that provides `{library}` (`apt-file search {library}` finds it) in the runtime image."
                    ),
                    None,
                ),
            }
        },
    },
    Rule {
        signature: Signature::MissingBuildTool,
        patterns: &[
            r"(pg_config) executable not found",
            r"(mysql_config):? not found",
            r"fatal error: (\S+\.h): No such file or directory",
            r"Package '?([\w.+-]+)'?,? (?:was not found in the pkg-config search path|required by)",
            r"Could not find (openssl) via pkg-config",
            r"Could not find directory of (OpenSSL) installation",
            r"error: command '(\S+)' failed: No such file or directory",
            r"(pkg-config): (?:command )?not found",
            r"cannot find -l([\w+-]+)",
            r"Can't find the '(libpq)-fe\.h header",
            r"The headers or library files could not be found for (\w+)",
            r"gyp ERR! find (Python)",
            r"gyp ERR! stack Error: not found: (make)",
        ],
        explain: |h, _| {
            let wanted = h.get(1);
            let package = names::debian_build_package(wanted)
                .or_else(|| names::debian_build_package(&wanted.to_ascii_lowercase()))?;
            says(
                format!(
                    "building a dependency needs `{wanted}`, which is not installed in the build image"
                ),
                format!(
                    "Install `{package}` in the build image (DevGem can add it to the plan), or use a prebuilt package (psycopg2-binary, for example)."
                ),
                build_package(package),
            )
        },
    },
    Rule {
        signature: Signature::RustLinkerMissing,
        patterns: &[r"error: linker `(\S+)` not found"],
        explain: |h, _| {
            says(
                format!(
                    "Rust needs the system linker `{}` to link, and it is not installed",
                    h.get(1)
                ),
                "Install build-essential (gcc) in the build image (DevGem can add it).",
                build_package("build-essential"),
            )
        },
    },
    Rule {
        signature: Signature::PhpExtensionMissing,
        patterns: &[
            r"requires ext-(\w+)(?: \S+)? -> it is missing from your system",
            r#"requires PHP extension "?ext-(\w+)"#,
        ],
        explain: |h, _| {
            let ext = h.get(1);
            says(
                format!(
                    "a Composer package needs the PHP extension `{ext}`, which the image lacks"
                ),
                format!(
                    "Install the extension in the image (`docker-php-ext-install {ext}`, with its -dev library), or add `\"ext-{ext}\": \"*\"` to composer.json so DevGem installs it."
                ),
                None,
            )
        },
    },
    // ---- Missing modules and packages ----
    Rule {
        signature: Signature::PythonLocalImport,
        patterns: &[
            r"ModuleNotFoundError: No module named '([\w.]+)'",
            r"ImportError: No module named '?([\w.]+)'?",
        ],
        explain: |h, ctx| {
            let module = h.get(1);
            let top = module.split('.').next().unwrap_or(module);
            let in_start = ctx.start_command().is_some_and(|c| {
                c.split(|ch: char| ch.is_whitespace() || ch == ':' || ch == '=')
                    .any(|word| word.split('.').next() == Some(top))
            });
            let local = names::LOCAL_PYTHON_MODULES.contains(&top)
                || in_start
                || module.ends_with(".settings")
                || module.ends_with(".wsgi")
                || module.ends_with(".asgi");
            if !local {
                return None;
            }
            let dir = ctx.plan().map_or(".", |p| p.app_dir.as_str());
            says(
                format!(
                    "Python cannot import `{module}`, which looks like the app's own code: the app was started from a folder where it is not importable"
                ),
                format!(
                    "Check that `{top}` exists in the app folder (`{dir}`), has an `__init__.py` if it is a package, and that the start command names it as it is spelled (case matters on Linux)."
                ),
                None,
            )
        },
    },
    Rule {
        signature: Signature::PythonModuleNotFound,
        patterns: &[
            r"ModuleNotFoundError: No module named '([\w.]+)'",
            r"ImportError: No module named '?([\w.]+)'?",
        ],
        explain: |h, ctx| {
            let module = h.get(1);
            let package = names::pypi_package(module);
            says(
                format!(
                    "the code imports `{module}`, but its package `{package}` is not in the app's dependencies"
                ),
                format!(
                    "Add `{package}` to requirements.txt (or pyproject.toml) and deploy again; DevGem can add it."
                ),
                add_dependency(ctx, Language::Python, &package),
            )
        },
    },
    Rule {
        signature: Signature::PythonImportName,
        patterns: &[r"ImportError: cannot import name '(\w+)' from '([\w.]+)'"],
        explain: |h, ctx| {
            let (name, module) = (h.get(1), h.get(2));
            // Well-known breaks between major versions, and the pin that restores them.
            const PINS: &[(&str, &str, &str)] = &[
                ("url_quote", "werkzeug", "werkzeug<3"),
                ("escape", "jinja2", "jinja2<3.1"),
                ("soft_unicode", "markupsafe", "markupsafe<2.1"),
                ("json", "itsdangerous", "itsdangerous<2.1"),
            ];
            let top = module.split('.').next().unwrap_or(module);
            let pin = PINS
                .iter()
                .find(|(n, m, _)| *n == name && *m == top)
                .map(|(_, _, p)| *p);
            says(
                format!(
                    "`{module}` has no `{name}`: the installed version of `{top}` is not the one the code was written for"
                ),
                match pin {
                    Some(pin) => format!("Pin `{pin}` in the dependencies (DevGem can add it)."),
                    None => format!(
                        "Pin `{top}` to the version the code was written for in the dependencies."
                    ),
                },
                pin.and_then(|p| add_dependency(ctx, Language::Python, p)),
            )
        },
    },
    Rule {
        signature: Signature::NodeLocalFileNotFound,
        patterns: &[
            r"Error: Cannot find module '([./][^']*)'",
            r"Cannot find module '([./][^']*)' imported from",
        ],
        explain: |h, ctx| {
            let path = h.get(1);
            let built = ["/dist/", "/build/", "/.next/", "/out/", "dist/", "build/"]
                .iter()
                .any(|d| path.contains(d));
            let no_build = ctx.plan().is_some_and(|p| p.build_command.is_none());
            if built && no_build {
                let command = ctx.run_script("build");
                return says(
                    format!(
                        "the app starts `{path}`, which the build should produce, but no build ran"
                    ),
                    format!(
                        "Build before starting: set the build command to `{command}` (DevGem can set it)."
                    ),
                    Some(ProposedFix::SetBuildCommand { command }),
                );
            }
            says(
                format!("the app requires `{path}`, which does not exist in the image"),
                "Check the path in the start command or `main` in package.json (case matters on Linux), and that the build produces it.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::NodeModuleNotFound,
        patterns: &[
            r"Error: Cannot find module '([^']+)'",
            r"Cannot find package '([^']+)' imported from",
            r"Module not found: (?:Error: )?Can't resolve '([^']+)'",
            r"error TS2307: Cannot find module '([^']+)'",
            r#"Rollup failed to resolve import "([^"]+)""#,
        ],
        explain: |h, ctx| {
            let name = h.get(1);
            if name.starts_with('.') || name.starts_with('/') || name.starts_with("node:") {
                return None;
            }
            // `lodash/fp` -> `lodash`, `@aws-sdk/client-s3/dist` -> `@aws-sdk/client-s3`.
            let mut parts = name.split('/');
            let package = match parts.next() {
                Some(scope) if scope.starts_with('@') => format!("{scope}/{}", parts.next()?),
                Some(first) => first.to_string(),
                None => return None,
            };
            says(
                format!(
                    "the code imports `{package}`, which is not in package.json's dependencies (or is only a devDependency)"
                ),
                format!(
                    "Add `{package}` to \"dependencies\" in package.json (`npm install {package}`) and deploy again; DevGem can add it."
                ),
                add_dependency(ctx, Language::Node, &package),
            )
        },
    },
    Rule {
        signature: Signature::GoPackageMissing,
        patterns: &[
            r"no required module provides package ([^\s;]+)",
            r#"cannot find package "([^"]+)""#,
            r"package ([\w.-]+\.[\w./-]+) is not in (?:GOROOT|std)",
        ],
        explain: |h, ctx| {
            let package = h.get(1);
            says(
                format!("the code imports `{package}`, which go.mod does not require"),
                format!(
                    "Run `go get {package}` (or `go mod tidy`) and commit go.mod and go.sum; DevGem can add it."
                ),
                add_dependency(ctx, Language::Go, package),
            )
        },
    },
    Rule {
        signature: Signature::RubyGemMissing,
        patterns: &[r"cannot load such file -- ([\w/-]+)"],
        explain: |h, ctx| {
            let file = h.get(1);
            if file.starts_with('/') || file.starts_with('.') {
                return None;
            }
            let gem = file.split('/').next().unwrap_or(file).replace('_', "-");
            let gem = match gem.as_str() {
                "active-support" => "activesupport".to_string(),
                "active-record" => "activerecord".to_string(),
                _ => gem,
            };
            says(
                format!("the code requires `{file}`, but the gem `{gem}` is not in the Gemfile"),
                format!(
                    "Add `gem \"{gem}\"` to the Gemfile, run `bundle install` and commit Gemfile.lock; DevGem can add it."
                ),
                add_dependency(ctx, Language::Ruby, &gem),
            )
        },
    },
    Rule {
        signature: Signature::BundlerGemNotFound,
        patterns: &[
            r"Could not find gem '([^']+)' in",
            r"Could not find ([\w-]+?)-(\d[\w.]*)(?:,| in)",
            r"Bundler::GemNotFound",
        ],
        explain: |h, _| {
            let gem = if h.get(1).is_empty() {
                "a gem".to_string()
            } else {
                format!("`{}`", h.get(1))
            };
            says(
                format!(
                    "Bundler cannot find {gem} from Gemfile.lock: the install did not run, or the lock file names a version or platform that is not available"
                ),
                "Run `bundle install` locally and commit Gemfile.lock (DevGem can regenerate it); make sure the build runs `bundle install`.",
                relock(Some(PackageManager::Bundler)),
            )
        },
    },
    Rule {
        signature: Signature::PhpClassNotFound,
        patterns: &[
            r#"(?:Class|Interface|Trait) "([^"]+)" not found"#,
            r"(?:Class|Interface|Trait) '([^']+)' not found",
            r"(vendor/autoload\.php)\)?: [Ff]ailed to open stream",
        ],
        explain: |h, _| {
            let class = h.get(1);
            if h.pattern == 2 {
                return says(
                    "vendor/autoload.php is missing: Composer's install did not run",
                    "Run `composer install --no-dev` in the build (commit composer.json and composer.lock).",
                    None,
                );
            }
            says(
                format!("PHP's autoloader cannot find the class `{class}`"),
                format!(
                    "If `{class}` comes from a package, add it with `composer require`; if it is the app's, check its namespace and file name match the PSR-4 `autoload` section of composer.json (case matters on Linux), then `composer dump-autoload`."
                ),
                None,
            )
        },
    },
    // ---- Frameworks and start commands ----
    Rule {
        signature: Signature::FlaskAppNotFound,
        patterns: &[
            r"Failed to find Flask application or factory in module '?([\w.]+)'?",
            r"Could not locate a Flask application",
            r"Error: Could not import '([\w.]+)'",
        ],
        explain: |h, _| {
            let module = if h.get(1).is_empty() {
                "the module"
            } else {
                h.get(1)
            };
            says(
                format!("Flask found no application object in {module}"),
                "Name the app explicitly in the start command: `flask --app module:app run --host 0.0.0.0 --port $PORT`, or `gunicorn module:app`, where `app` is the variable holding `Flask(__name__)`.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::AsgiAppNotFound,
        patterns: &[
            r#"Error loading ASGI app\. Could not import module "([^"]+)""#,
            r#"Error loading ASGI app\. Attribute "([^"]+)" not found in module "([^"]+)""#,
            r#"Error loading ASGI app\. Import string "([^"]+)" must be in format"#,
        ],
        explain: |h, _| {
            let what = match h.pattern {
                0 => format!("the module `{}` cannot be imported", h.get(1)),
                1 => format!("the module `{}` has no `{}`", h.get(2), h.get(1)),
                _ => format!("`{}` is not `module:attribute`", h.get(1)),
            };
            says(
                format!("uvicorn cannot load the app: {what}"),
                "Start uvicorn with the app's import path as it is in the code, e.g. `uvicorn main:app --host 0.0.0.0 --port $PORT` for `app = FastAPI()` in main.py (run from the folder that contains it).",
                None,
            )
        },
    },
    Rule {
        signature: Signature::NextBuildMissing,
        patterns: &[
            r"Could not find a production build in the '([^']+)' directory",
            r"ENOENT: no such file or directory, open '\S*/\.next/BUILD_ID'",
        ],
        explain: |_, ctx| {
            let command = ctx.run_script("build");
            says(
                "`next start` found no production build: `next build` did not run",
                format!(
                    "Run `{command}` before starting (DevGem can set it as the build command)."
                ),
                Some(ProposedFix::SetBuildCommand { command }),
            )
        },
    },
    Rule {
        signature: Signature::DjangoDisallowedHost,
        patterns: &[
            r"Invalid HTTP_HOST header: '([^']+)'\. You may need to add",
            r"DisallowedHost",
        ],
        explain: |h, ctx| {
            let host = if h.get(1).is_empty() {
                "the deployment's host"
            } else {
                h.get(1)
            };
            let variable = ctx
                .plan()
                .and_then(|p| p.env_vars.iter().find(|v| v.name.contains("ALLOWED_HOSTS")))
                .map(|v| v.name.clone());
            match variable {
                Some(name) => says(
                    format!("Django refuses requests for {host}, which is not in ALLOWED_HOSTS"),
                    format!("Set `{name}` to include `{host}` (DevGem can set it)."),
                    env_var(&name),
                ),
                None => says(
                    format!("Django refuses requests for {host}, which is not in ALLOWED_HOSTS"),
                    format!(
                        "Add `{host}` to ALLOWED_HOSTS in settings.py, best read from an environment variable: `ALLOWED_HOSTS = os.environ.get(\"ALLOWED_HOSTS\", \"\").split(\",\")`."
                    ),
                    None,
                ),
            }
        },
    },
    Rule {
        signature: Signature::GunicornWorkerTimeout,
        patterns: &[r"\[CRITICAL\] WORKER TIMEOUT \(pid:(\d+)\)"],
        explain: |_, ctx| {
            let proposed = ctx
                .start_command()
                .filter(|c| c.contains("gunicorn") && !c.contains("--timeout"))
                .map(|c| ProposedFix::SetStartCommand {
                    command: format!("{c} --timeout 120"),
                });
            says(
                "a Gunicorn worker spent longer than its timeout (30 s by default) on a request or on start-up, and was killed",
                "Make the slow work faster or move it off the request; or raise the timeout with `--timeout 120` in the gunicorn command (DevGem can set it).",
                proposed,
            )
        },
    },
    Rule {
        signature: Signature::MissingScript,
        patterns: &[
            r#"Missing script: "?([\w:.-]+)"?"#,
            r#"error Command "([\w:.-]+)" not found\."#,
            r#"Couldn't find a script named "([^"]+)""#,
        ],
        explain: |h, _| {
            let script = h.get(1);
            let fix = match script {
                "start" => "Add a \"start\" script to package.json (for example `\"start\": \"node server.js\"`), or set the start command to the file that starts the server.".to_string(),
                "build" => "Add a \"build\" script to package.json, or remove the build command if the app needs no build.".to_string(),
                _ => format!("Add a \"{script}\" script to package.json, or change the command that runs it."),
            };
            says(
                format!("package.json has no \"{script}\" script, and the command runs it"),
                fix,
                None,
            )
        },
    },
    Rule {
        signature: Signature::CommandNotFound,
        patterns: &[
            r#"exec: "([^"]+)": executable file not found in \$PATH"#,
            r"(?:^|: )([\w.+-]+): (?:command )?not found\s*$",
            r"spawn (\S+) ENOENT",
            r"exec (\S+): no such file or directory",
        ],
        explain: |h, ctx| {
            let program = h.get(1);
            let base = program.rsplit('/').next().unwrap_or(program);
            if let Some((language, package)) = names::package_for_command(base) {
                return says(
                    format!(
                        "the command runs `{base}`, which is not installed: `{package}` is not in the app's dependencies"
                    ),
                    format!("Add `{package}` to the app's dependencies (DevGem can add it)."),
                    add_dependency(ctx, language, package),
                );
            }
            says(
                format!("the command runs `{program}`, which does not exist in the image"),
                format!(
                    "Check the start command (and the build command) for `{program}`: install what provides it, or use the right path."
                ),
                None,
            )
        },
    },
    // ---- Configuration ----
    Rule {
        signature: Signature::MissingEnvVar,
        patterns: &[
            r"(?i:environment variable)s?:? ['`]?([A-Z][A-Z0-9_]+)['`]? (?i:is |was |are )?(?i:not set|missing|required|not defined|undefined|empty)",
            r"(?i:environment variable not found): ([A-Z][A-Z0-9_]+)",
            r"(?i:missing|required|undefined|unset)(?: required)? (?i:env(?:ironment)?\.? ?var(?:iable)?)s?:? ['`]?([A-Z][A-Z0-9_]+)",
            r"The ([A-Z][A-Z0-9_]+) environment variable is (?:missing|not set)",
            r"Set the ([A-Z][A-Z0-9_]+) environment variable",
            r"The ([A-Z][A-Z0-9_]+) setting must not be empty",
            r"Missing `(secret_key_base)` for '\w+' environment",
            r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]+) (?:is not set|is not defined|is required|must be set|is missing)\b",
            r"KeyError: '([A-Z][A-Z0-9_]+)'",
            r"Field required \[type=missing",
        ],
        explain: |h, ctx| {
            let name = match h.pattern {
                6 => "SECRET_KEY_BASE".to_string(),
                9 => {
                    // pydantic-settings: the field name is the line before; the model names it.
                    ctx.find_before(h.index, 12, &PYDANTIC_MODEL)?;
                    let field = PYDANTIC_FIELD.captures(ctx.lines.get(h.index.checked_sub(1)?)?)?;
                    field[1].to_ascii_uppercase()
                }
                _ => h.get(1).to_string(),
            };
            if !looks_like_env_name(&name) {
                return None;
            }
            says(
                format!("the app needs the environment variable `{name}`, which is not set"),
                format!(
                    "Set `{name}` for this app (as a secret if it is a credential) and deploy again; DevGem will ask for its value."
                ),
                env_var(&name),
            )
        },
    },
    Rule {
        signature: Signature::DatabaseUnreachable,
        patterns: &[
            r"ECONNREFUSED (?:127\.0\.0\.1|::1|localhost):(\d+)",
            r#"connection to server at "[^"]+" \([^)]*\), port (\d+) failed: Connection refused"#,
            r"Error 111 connecting to [\w.-]+:(\d+)\. Connection refused",
            r"dial tcp (?:127\.0\.0\.1|\[::1\]|localhost):(\d+): connect: connection refused",
            r"Connection to (?:localhost|127\.0\.0\.1):(\d+) refused",
            r"Can't connect to (?:local )?MySQL server",
            r#"could not connect to server: Connection refused"#,
            r#"(?:getaddrinfo ENOTFOUND|could not translate host name "?|Name or service not known.*)(postgres\w*|db|database|mysql|mariadb|redis|mongo\w*)\b"#,
        ],
        explain: |h, ctx| {
            let port: u16 = match h.pattern {
                5 => 3306,
                6 => 5432,
                7 => match h.get(1) {
                    "redis" => 6379,
                    "mysql" | "mariadb" => 3306,
                    name if name.starts_with("mongo") => 27017,
                    _ => 5432,
                },
                _ => h.get(1).parse().ok()?,
            };
            let (default, kind) = service_for_port(port)?;
            let name = service_env_var(ctx, default);
            says(
                format!(
                    "the app connects to {kind} on localhost (or a Compose host name), and there is no {kind} in the deployment"
                ),
                format!(
                    "Create a {kind} database (Cloud SQL, Memorystore, Atlas...) and set `{name}` to its URL; DevGem will ask for the value."
                ),
                env_var(&name),
            )
        },
    },
    // ---- Resources and the platform ----
    Rule {
        signature: Signature::NodeHeapOutOfMemory,
        patterns: &[
            r"JavaScript heap out of memory",
            r"Reached heap limit Allocation failed",
        ],
        explain: |_, _| {
            says(
                "Node.js ran out of heap memory",
                "Give the app (or the build) more memory; if the container has memory to spare, raise Node's heap with NODE_OPTIONS=--max-old-space-size=<MB> at about 75% of it.",
                Some(ProposedFix::IncreaseMemory),
            )
        },
    },
    Rule {
        signature: Signature::OutOfMemory,
        patterns: &[
            r"Memory limit of \d+ ?\w+ exceeded",
            r"OOMKilled",
            r"java\.lang\.OutOfMemoryError",
            r"fatal error: runtime: out of memory",
            r"^\s*MemoryError\b",
            r"(?:exit code|exit status|exited with code|returned a non-zero code):? 137\b",
            r"terminated with signal 9",
            r"signal: killed",
            r"^\s*Killed\s*$",
            r"Cannot allocate memory",
        ],
        explain: |_, ctx| {
            let during = if ctx.step() == Step::ContainerBuild {
                "the build"
            } else {
                "the app"
            };
            says(
                format!("{during} used more memory than it has and was killed"),
                "Give it more memory (DevGem can raise the limit), or use less: fewer workers, smaller batches, or a lighter dependency.",
                Some(ProposedFix::IncreaseMemory),
            )
        },
    },
    Rule {
        signature: Signature::DiskFull,
        patterns: &[r"No space left on device", r"ENOSPC: no space left"],
        explain: |_, _| {
            says(
                "the disk is full",
                "Free disk space (locally `docker system prune` removes old images and build cache) and try again; large downloads during the build can also be trimmed.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::TlsCertificate,
        patterns: &[
            r"CERTIFICATE_VERIFY_FAILED",
            r"unable to get local issuer certificate",
            r"x509: certificate signed by unknown authority",
            r"SELF_SIGNED_CERT_IN_CHAIN",
            r"UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            r"PKIX path building failed",
            r"SSL certificate problem",
        ],
        explain: |_, _| {
            says(
                "a TLS certificate could not be verified while downloading: the image lacks CA certificates, or a proxy re-signs traffic",
                "Install ca-certificates in the build image (DevGem can add it); behind a corporate proxy, add its CA certificate instead of turning verification off.",
                build_package("ca-certificates"),
            )
        },
    },
    Rule {
        signature: Signature::RegistryUnreachable,
        patterns: &[
            r"getaddrinfo (?:ENOTFOUND|EAI_AGAIN) ([\w.-]+\.[a-z]{2,})",
            r"Could not resolve host: (\S+)",
            r"dial tcp: lookup ([\w.-]+)",
            r"Temporary failure in name resolution",
            r"npm (?:ERR!|error) code (?:ETIMEDOUT|ECONNRESET|EAI_AGAIN)",
            r"Failed to establish a new connection",
        ],
        explain: |h, ctx| {
            // At run time this is the app's own call to some host, not a package download.
            if ctx.step() == Step::Deploy {
                return None;
            }
            let host = if h.get(1).is_empty() {
                "a package registry".to_string()
            } else {
                format!("`{}`", h.get(1))
            };
            says(
                format!("{host} could not be reached from the build (DNS or network)"),
                "Check the network (and the proxy settings) of the machine that builds, then deploy again; a registry outage passes by itself.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::PrivilegedPort,
        patterns: &[
            r"listen EACCES: permission denied \S*?:?(\d+)\s*$",
            r"listen tcp \S*?:(\d+): bind: permission denied",
        ],
        explain: |h, _| {
            let port: u16 = h.get(1).parse().ok()?;
            if port >= 1024 {
                return None;
            }
            says(
                format!("the app listens on port {port}, which only root may open"),
                "Listen on the port in the PORT environment variable (8080 by default) instead of a fixed low port.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::PermissionDenied,
        patterns: &[
            r"EACCES: permission denied, \w+ '([^']+)'",
            r"PermissionError: \[Errno 13\] Permission denied: '([^']+)'",
            r"open (\S+): permission denied",
            r"(\S+): Permission denied\s*$",
        ],
        explain: |h, ctx| {
            let path = h.get(1).trim_start_matches("/bin/sh: 1: ").to_string();
            let path = path.rsplit(": ").next().unwrap_or(&path).to_string();
            let script =
                path.ends_with(".sh") || path.ends_with("gradlew") || path.ends_with("mvnw");
            if script {
                let proposed = ctx
                    .start_command()
                    .filter(|c| c.trim_start().starts_with(path.as_str()))
                    .map(|c| ProposedFix::SetStartCommand {
                        command: format!("sh {}", c.trim_start()),
                    });
                return says(
                    format!("`{path}` is not executable (its execute bit is not in git)"),
                    format!(
                        "Run `git update-index --chmod=+x {path}` and commit, or run it through `sh {path}`."
                    ),
                    proposed,
                );
            }
            says(
                format!(
                    "the app may not write or read `{path}`: the container runs as a user without access to it"
                ),
                "Write to /tmp (or a folder the Dockerfile gives to the app's user) instead of the app folder; on Cloud Run, only /tmp is writable by default.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::AddressInUse,
        patterns: &[
            r"EADDRINUSE: address already in use \S*?:?(\d+)\s*$",
            r"EADDRINUSE",
            r"\[Errno 98\].*[Aa]ddress already in use",
            r"bind: address already in use",
            r"Address already in use",
        ],
        explain: |h, _| {
            let port = if h.get(1).is_empty() {
                "its port".to_string()
            } else {
                format!("port {}", h.get(1))
            };
            says(
                format!(
                    "the app tried to listen on {port}, which is already taken: it starts its server twice, or two processes use one port"
                ),
                "Start one server on $PORT: remove a second `listen()`/`app.run()` (a dev server started on import, Flask's reloader), and give other processes other ports.",
                None,
            )
        },
    },
    // ---- Compilers ----
    Rule {
        signature: Signature::RustCompileError,
        patterns: &[
            r"^error\[(E\d{4})\]: (.+)$",
            r"error: could not compile `([^`]+)`",
        ],
        explain: |h, ctx| {
            if h.pattern == 1 {
                return says(
                    format!("the crate `{}` does not compile", h.get(1)),
                    "Run `cargo build --release` locally and fix the errors it prints first.",
                    None,
                );
            }
            let location = ctx.find_after(h.index, 3, &RUST_LOCATION);
            let at = location
                .as_ref()
                .map(|(_, c)| format!(" at {}", &c[1]))
                .unwrap_or_default();
            let line = location.as_ref().map(|(i, _)| *i);
            says(
                format!("rustc rejected the code{at}: {} ({})", h.get(2), h.get(1)),
                format!(
                    "Fix the error{at} (`rustc --explain {}` describes it) and deploy again.",
                    h.get(1)
                ),
                None,
            )
            .map(|e| e.with_line(line))
        },
    },
    Rule {
        signature: Signature::GoCompileError,
        patterns: &[r"^(?:\./)?([\w/.-]+\.go:\d+:\d+): (.+)$"],
        explain: |h, _| {
            says(
                format!(
                    "the Go compiler rejected the code at {}: {}",
                    h.get(1),
                    h.get(2)
                ),
                format!(
                    "Fix {} (run `go build ./...` locally) and deploy again.",
                    h.get(1)
                ),
                None,
            )
        },
    },
    Rule {
        signature: Signature::TypeScriptCompileError,
        patterns: &[
            r"(\S+\.tsx?)(?:\((\d+),\d+\)|:\d+:\d+)? ?-? ?error (TS\d+): (.+)$",
            r"error (TS\d+): (.+)$",
        ],
        explain: |h, _| {
            let (code, message) = if h.pattern == 0 {
                (h.get(3), h.get(4))
            } else {
                (h.get(1), h.get(2))
            };
            let at = if h.pattern == 0 {
                format!(" in {}", h.get(1))
            } else {
                String::new()
            };
            says(
                format!("TypeScript rejected the code{at}: {message} ({code})"),
                "Fix the type error (run the build locally, `npx tsc --noEmit` shows them all) and deploy again.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::MavenCompileError,
        patterns: &[
            r"\[ERROR\] (/\S+\.(?:java|kt)):\[(\d+),(\d+)\] (.+)$",
            r"\[ERROR\] COMPILATION ERROR",
        ],
        explain: |h, _| {
            if h.pattern == 1 {
                return says(
                    "javac rejected the code",
                    "Run `mvn -q package` locally and fix the compilation errors it lists.",
                    None,
                );
            }
            let file = h.get(1).rsplit('/').next().unwrap_or(h.get(1));
            says(
                format!("javac rejected {file} at line {}: {}", h.get(2), h.get(4)),
                format!(
                    "Fix {file}:{} (run `mvn package` locally) and deploy again.",
                    h.get(2)
                ),
                None,
            )
        },
    },
    Rule {
        signature: Signature::MavenDependencyMissing,
        patterns: &[
            r"Could not find artifact (\S+) in",
            r"The following artifacts could not be resolved: ([^:]+:[^:]+:[^\s,]+)",
            r"Non-resolvable parent POM for (\S+)",
        ],
        explain: |h, _| {
            says(
                format!("Maven cannot download `{}`", h.get(1)),
                "Check the coordinates and version in pom.xml; if it comes from a private repository, add the repository (and its credentials) to the build.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::GradleBuildFailed,
        patterns: &[
            r"> Could not find ([\w.-]+:[\w.-]+:[\w.-]+)\.",
            r"\* What went wrong:",
            r"Execution failed for task '([^']+)'",
            r"FAILURE: Build failed with an exception",
        ],
        explain: |h, ctx| match h.pattern {
            0 => says(
                format!("Gradle cannot download `{}`", h.get(1)),
                "Check the coordinates and version in build.gradle, and that its repository (mavenCentral() or a private one) is declared.",
                None,
            ),
            1 => {
                let (i, caps) = ctx.find_after(h.index, 2, &GRADLE_WRONG)?;
                let what = caps[1].to_string();
                says(
                    format!("the Gradle build failed: {what}"),
                    "Run `./gradlew build` locally and fix what it reports.",
                    None,
                )
                .map(|e| e.with_line(Some(i)))
            }
            2 => says(
                format!("the Gradle task `{}` failed", h.get(1)),
                "Run `./gradlew build` locally and fix what it reports (the lines before this one say why).",
                None,
            ),
            _ => says(
                "the Gradle build failed",
                "Run `./gradlew build` locally and fix what it reports.",
                None,
            ),
        },
    },
    Rule {
        signature: Signature::PythonSyntaxError,
        patterns: &[r"^\s*SyntaxError: (.+)$", r"^\s*IndentationError: (.+)$"],
        explain: |h, ctx| {
            let location = ctx.find_before(h.index, 5, &PY_FILE_LINE);
            let at = location
                .as_ref()
                .map(|(_, c)| format!(" in {} line {}", &c[1], &c[2]))
                .unwrap_or_default();
            let line = location.as_ref().map(|(i, _)| *i);
            let version = ctx.plan().and_then(|p| p.runtime_version.clone());
            let note = version
                .map(|v| {
                    format!(
                        " If the code is valid in a newer Python than {v}, build with that version."
                    )
                })
                .unwrap_or_default();
            says(
                format!("Python cannot parse the code{at}: {}", h.get(1)),
                format!("Fix the syntax{at}.{note}"),
                None,
            )
            .map(|e| e.with_line(line))
        },
    },
    Rule {
        signature: Signature::PipNoMatchingVersion,
        patterns: &[
            r"No matching distribution found for ([^\s;]+)",
            r"Could not find a version that satisfies the requirement ([^\s;]+)",
        ],
        explain: |h, ctx| {
            let requirement = h.get(1);
            let name = requirement
                .split(|c: char| "<>=!~[ ;".contains(c))
                .next()
                .unwrap_or(requirement);
            // A requirement spelled as its import name (cv2, PIL, yaml...) has a real name.
            let real = names::pypi_package(name);
            if real != name {
                return says(
                    format!(
                        "the requirement `{name}` is an import name; its PyPI package is `{real}`"
                    ),
                    format!(
                        "Replace `{name}` with `{real}` in the requirements (DevGem can add it)."
                    ),
                    add_dependency(ctx, Language::Python, &real),
                );
            }
            says(
                format!(
                    "pip found no release of `{requirement}` for this Python version and platform"
                ),
                format!(
                    "Check the spelling and the version pin of `{name}`, and that it supports the Python version the build uses."
                ),
                None,
            )
        },
    },
    Rule {
        signature: Signature::PythonDependencyConflict,
        patterns: &[
            r"Cannot install (.+) because these package versions have conflicting dependencies",
            r"ResolutionImpossible",
            r"No solution found when resolving dependencies",
            r"SolverProblemError",
        ],
        explain: |_, _| {
            says(
                "the Python requirements conflict: no set of versions satisfies all of them",
                "Loosen the conflicting pins (the lines above name them) so one version of each package satisfies all, then regenerate the lock file.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::NpmPeerConflict,
        patterns: &[
            r"npm (?:ERR!|error) code ERESOLVE",
            r"ERESOLVE unable to resolve dependency tree",
        ],
        explain: |_, _| {
            says(
                "npm cannot satisfy a package's peer dependency with the versions in package.json",
                "Align the versions the error names in package.json; or, if they work together anyway, install with `npm install --legacy-peer-deps` and commit the lock file.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::NodeVersion,
        patterns: &[r"EBADENGINE\s+required: \{ node: '([^']+)' \}"],
        explain: |h, _| {
            let version = lowest_allowed(h.get(1), 1)?;
            says(
                format!("a dependency needs Node.js {}", h.get(1)),
                format!(
                    "Build and run with Node.js {version}: set \"engines\": {{\"node\": \">={version}\"}} in package.json, or DevGem can set it."
                ),
                runtime(Some(version)),
            )
        },
    },
    // ---- Listening ----
    Rule {
        signature: Signature::BindLocalhost,
        patterns: &[
            DEVGEM_LOOPBACK,
            LISTEN,
            PHP_DEV_SERVER,
            r"Network: use --host to expose",
        ],
        explain: |h, ctx| {
            if ctx.step() != Step::Deploy {
                return None;
            }
            let host = match h.pattern {
                3 => "localhost",
                _ => h.get(1),
            };
            if !is_loopback(host) || (h.pattern != 0 && listens_publicly(ctx)) {
                return None;
            }
            let proposed = ctx
                .start_command()
                .and_then(start_on_all_interfaces)
                .map(|command| ProposedFix::SetStartCommand { command });
            says(
                format!(
                    "the app listens on {host} only, which the platform cannot reach from outside the container"
                ),
                "Listen on 0.0.0.0 (all interfaces) at the port in $PORT, e.g. `--host 0.0.0.0`, `app.run(host=\"0.0.0.0\")` or `app.listen(process.env.PORT, \"0.0.0.0\")`.",
                proposed,
            )
        },
    },
    Rule {
        signature: Signature::HardcodedPort,
        patterns: &[DEVGEM_WRONG_PORT, LISTEN, LISTEN_PORT, PHP_DEV_SERVER],
        explain: |h, ctx| {
            if ctx.step() != Step::Deploy {
                return None;
            }
            let port: u16 = match h.pattern {
                2 => h.get(1).parse().ok()?,
                0 => h.get(1).parse().ok()?,
                _ => h.get(2).parse().ok()?,
            };
            let expected = if h.pattern == 0 {
                h.get(2).parse().unwrap_or(ctx.expected_port)
            } else {
                ctx.expected_port
            };
            if port == expected {
                return None;
            }
            says(
                format!("the app listens on port {port}, not on $PORT ({expected})"),
                format!(
                    "Read the port from the PORT environment variable (e.g. `int(os.environ.get(\"PORT\", {port}))`, `process.env.PORT || {port}`); or DevGem can route to port {port}."
                ),
                Some(ProposedFix::SetPort { port }),
            )
        },
    },
    Rule {
        signature: Signature::StartupProbeFailed,
        patterns: &[
            r"did not listen on \$PORT \((\d+)\)",
            r"failed to start and listen on the port defined (?:provided )?by the PORT=(\d+) environment variable",
            r"(?:Default )?STARTUP (?:TCP|HTTP) probe failed",
            r"did not answer GET / in time",
        ],
        explain: |h, ctx| {
            let port = PROBE_PORT
                .captures(h.get(1))
                .map_or(ctx.expected_port.to_string(), |c| c[1].to_string());
            says(
                format!(
                    "the app did not start listening on port {port} within the startup probe: it crashed, is still starting, or listens elsewhere"
                ),
                format!(
                    "Make the app listen on 0.0.0.0:$PORT ({port}) soon after it starts; move slow start-up work (migrations, model downloads) to the build or to the background. Its last output above says more."
                ),
                None,
            )
        },
    },
    // ---- Catch-alls of one tool ----
    Rule {
        signature: Signature::GunicornWorkerBoot,
        patterns: &[
            r"Worker failed to boot",
            r"\[ERROR\] Exception in worker process",
        ],
        explain: |h, ctx| {
            let last_error = ctx.find_before(h.index, 40, &ERROR_LINE).map(|(i, _)| i);
            says(
                "a Gunicorn worker crashed while importing the app",
                "Read the traceback above this line: it names the import or setting that fails. Run `python -c \"import <module>\"` with the same environment locally.",
                None,
            )
            .map(|e| e.with_line(last_error))
        },
    },
    Rule {
        signature: Signature::MavenBuildFailed,
        patterns: &[r"\[ERROR\] Failed to execute goal (\S+)", r"BUILD FAILURE"],
        explain: |h, _| {
            let goal = if h.get(1).is_empty() {
                String::new()
            } else {
                format!(" in `{}`", h.get(1))
            };
            says(
                format!("the Maven build failed{goal}"),
                "Run `mvn package` locally and fix the first [ERROR] it prints.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::BuildTimeout,
        patterns: &[
            r"(?i)build (?:timed out|timeout)",
            r"(?i)timed out after (\d+)\s*(?:s|seconds|m|minutes)\b",
            r"status: TIMEOUT",
            r"context deadline exceeded",
        ],
        explain: |_, ctx| {
            if ctx.step() != Step::ContainerBuild {
                return None;
            }
            says(
                "the build ran longer than it is allowed to",
                "Make the build faster (cache dependencies: commit the lock file; skip tests and dev tools in the image), or raise the build timeout.",
                None,
            )
        },
    },
    Rule {
        signature: Signature::StaticIndexMissing,
        patterns: &[
            r#"directory index of "([^"]+)" is forbidden"#,
            r#"open\(\) "([^"]+)/index\.html" failed \(2: No such file or directory\)"#,
        ],
        explain: |h, ctx| {
            let dir = ctx
                .plan()
                .and_then(|p| p.static_dir.clone())
                .unwrap_or_else(|| h.get(1).to_string());
            says(
                format!("the web server found no index.html in `{dir}`"),
                "Point the static folder at the one that holds index.html (often `dist` or `build` after the build), or add index.html.",
                None,
            )
        },
    },
];

/// The `required: { node: '...' }` line of an npm EBADENGINE error.
fn engine_required(ctx: &Context) -> Option<String> {
    static REQUIRED: Lazy<Regex> =
        Lazy::new(|| Regex::new(r"required: \{ node: '([^']+)'").expect("required"));
    ctx.lines
        .iter()
        .rev()
        .find_map(|l| REQUIRED.captures(l).map(|c| c[1].to_string()))
}

/// The rules' patterns, compiled once: one set to find which lines may match, and each
/// pattern alone for its captures.
struct Compiled {
    set: RegexSet,
    regexes: Vec<Regex>,
    /// Index of each rule's first pattern in `regexes`.
    first: Vec<usize>,
}

static COMPILED: Lazy<Compiled> = Lazy::new(|| {
    let mut patterns = Vec::new();
    let mut first = Vec::with_capacity(RULES.len());
    for rule in RULES {
        first.push(patterns.len());
        patterns.extend(rule.patterns.iter().copied());
    }
    let set = RegexSetBuilder::new(&patterns)
        .size_limit(64 << 20)
        .dfa_size_limit(64 << 20)
        .build()
        .expect("the catalogue's patterns compile");
    let regexes = patterns
        .iter()
        .map(|p| Regex::new(p).expect("the catalogue's patterns compile"))
        .collect();
    Compiled {
        set,
        regexes,
        first,
    }
});

/// Hits of one pattern tried per rule before moving on: the newest few.
const HITS_TRIED: usize = 8;

pub(crate) fn diagnose(input: &FailureInput) -> Diagnosis {
    let ctx = Context::new(input);
    let compiled = &*COMPILED;
    let mut hits: Vec<Vec<usize>> = vec![Vec::new(); compiled.regexes.len()];
    for (index, line) in ctx.lines.iter().enumerate() {
        for pattern in compiled.set.matches(line).iter() {
            hits[pattern].push(index);
        }
    }
    for (r, rule) in RULES.iter().enumerate() {
        let first = compiled.first[r];
        let own = first..first + rule.patterns.len();
        for p in own.clone() {
            for &index in hits[p].iter().rev().take(HITS_TRIED) {
                let Some(caps) = compiled.regexes[p].captures(&ctx.lines[index]) else {
                    continue;
                };
                let hit = Hit {
                    index,
                    pattern: p - first,
                    caps,
                };
                if let Some(explained) = (rule.explain)(&hit, &ctx) {
                    let others = own.clone().flat_map(|q| hits[q].iter().copied());
                    let evidence = evidence(&ctx, index, &explained.also, others);
                    return Diagnosis {
                        signature: rule.signature,
                        cause: explained.cause,
                        evidence,
                        fix: explained.fix,
                        proposed: explained.proposed,
                    };
                }
            }
        }
    }
    unknown(&ctx)
}

/// The hit line, the lines its rule added, and other lines of the same signature: at most
/// [`MAX_EVIDENCE`], oldest first, each shown once, masked and shortened.
fn evidence(
    ctx: &Context,
    hit: usize,
    also: &[usize],
    others: impl Iterator<Item = usize>,
) -> Vec<String> {
    let mut chosen: Vec<usize> = vec![hit];
    chosen.extend(also.iter().copied());
    let mut others: Vec<usize> = others.filter(|i| !chosen.contains(i)).collect();
    others.sort_unstable();
    others.dedup();
    for index in others.into_iter().rev() {
        if chosen.len() >= MAX_EVIDENCE {
            break;
        }
        chosen.push(index);
    }
    chosen.sort_unstable();
    let mut shown: Vec<String> = Vec::new();
    for index in chosen {
        let line = shown_line(&ctx.lines[index]);
        if !line.is_empty() && !shown.contains(&line) {
            shown.push(line);
        }
    }
    shown.truncate(MAX_EVIDENCE + 1);
    shown
}

fn shown_line(line: &str) -> String {
    let masked = mask_secrets(line.trim());
    if masked.chars().count() <= MAX_EVIDENCE_CHARS {
        return masked;
    }
    let cut: String = masked.chars().take(MAX_EVIDENCE_CHARS).collect();
    format!("{cut}…")
}

/// No signature matched: name the step and quote the last error-looking lines.
fn unknown(ctx: &Context) -> Diagnosis {
    let step = ctx.step();
    let mut indexes: Vec<usize> = (0..ctx.lines.len())
        .rev()
        .filter(|&i| ERROR_LINE.is_match(&ctx.lines[i]))
        .take(MAX_EVIDENCE)
        .collect();
    if indexes.is_empty() {
        indexes = (0..ctx.lines.len())
            .rev()
            .filter(|&i| !ctx.lines[i].trim().is_empty())
            .take(MAX_EVIDENCE)
            .collect();
    }
    indexes.reverse();
    let mut evidence: Vec<String> = Vec::new();
    for i in indexes {
        let line = shown_line(&ctx.lines[i]);
        if !evidence.contains(&line) {
            evidence.push(line);
        }
    }
    let reason = ctx.input.reason.lines().next().unwrap_or("").trim();
    let fix = match ctx.input.hint {
        Some(hint) if !hint.trim().is_empty() => hint.trim().to_string(),
        _ => match step {
            Step::RepositoryAccess => "Check the repository URL, the branch and that DevGem may read the repository.".to_string(),
            Step::ContainerBuild => "Run the build command locally and fix the first error it prints; the lines above are the end of the build log.".to_string(),
            Step::Deploy => "Run the start command locally with PORT set, and check that the app listens on 0.0.0.0:$PORT and stays up; the lines above are its last output.".to_string(),
            _ => "Read the lines above: they are the last errors the step printed.".to_string(),
        },
    };
    Diagnosis {
        signature: Signature::Unknown,
        cause: format!(
            "the {} step failed: {}",
            step.title().to_lowercase(),
            mask_secrets(reason)
        ),
        evidence,
        fix,
        proposed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_pattern_compiles_and_every_signature_but_unknown_has_a_rule() {
        assert_eq!(
            COMPILED.regexes.len(),
            RULES.iter().map(|r| r.patterns.len()).sum::<usize>()
        );
        for signature in Signature::ALL {
            if *signature != Signature::Unknown {
                assert!(
                    RULES.iter().any(|r| r.signature == *signature),
                    "{signature:?} has no rule"
                );
            }
        }
    }

    #[test]
    fn lowest_allowed_reads_constraints() {
        assert_eq!(lowest_allowed(">=3.10", 2).as_deref(), Some("3.10"));
        assert_eq!(
            lowest_allowed("^18.0.0 || >=20.0.0", 1).as_deref(),
            Some("20")
        );
        assert_eq!(lowest_allowed("<3.12,>=3.8", 2).as_deref(), Some("3.8"));
        assert_eq!(lowest_allowed("<3.12", 2).as_deref(), Some("3.11"));
        assert_eq!(lowest_allowed("1.22.0", 2).as_deref(), Some("1.22"));
        assert_eq!(lowest_allowed("^8.2", 2).as_deref(), Some("8.2"));
    }
}
