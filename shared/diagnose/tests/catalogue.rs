//! One realistic failure per signature, as the tools print it: the signature found, the value
//! it extracted (in the cause) and the fix it proposes.

use devgem_diagnose::{Diagnosis, FailureInput, ProposedFix, Signature, diagnose};
use devgem_domain::Step;
use devgem_plan::{BuildPlan, EnvVarUse, Language, PackageManager, Template};

const BUILD: Step = Step::ContainerBuild;
const DEPLOY: Step = Step::Deploy;
const FETCH: Step = Step::RepositoryAccess;

fn lines(log: &str) -> Vec<String> {
    log.lines().map(str::to_string).collect()
}

/// The diagnosis of a failure whose reason is the log's last line.
fn diagnosed(step: Step, log: &str, plan: Option<&BuildPlan>) -> Diagnosis {
    let log = lines(log);
    let reason = log.last().cloned().unwrap_or_default();
    let mut input = FailureInput::new(step, &reason).with_log(&log);
    input.plan = plan;
    diagnose(&input)
}

fn plan(language: Language, manager: Option<PackageManager>, start: &str) -> BuildPlan {
    let mut plan = BuildPlan::new(language, Template::Python, start);
    plan.package_manager = manager;
    plan
}

fn dep(language: Language, manager: Option<PackageManager>, package: &str) -> Option<ProposedFix> {
    Some(ProposedFix::AddDependency {
        language,
        manager,
        package: package.into(),
    })
}

fn version(v: &str) -> Option<ProposedFix> {
    Some(ProposedFix::SetRuntimeVersion { version: v.into() })
}

fn relock(manager: PackageManager) -> Option<ProposedFix> {
    Some(ProposedFix::RegenerateLockfile {
        manager: Some(manager),
    })
}

fn env(name: &str) -> Option<ProposedFix> {
    Some(ProposedFix::SetEnvVar { name: name.into() })
}

fn build_pkg(name: &str) -> Option<ProposedFix> {
    Some(ProposedFix::AddBuildPackage {
        package: name.into(),
    })
}

/// A test: the step and log, the signature expected, the proposal and a word of the cause.
macro_rules! case {
    ($name:ident, $step:expr, $log:expr, $signature:ident, $proposed:expr, $in_cause:expr) => {
        case!($name, $step, $log, None, $signature, $proposed, $in_cause);
    };
    ($name:ident, $step:expr, $log:expr, $plan:expr, $signature:ident, $proposed:expr, $in_cause:expr) => {
        #[test]
        fn $name() {
            let plan: Option<BuildPlan> = $plan;
            let d = diagnosed($step, $log, plan.as_ref());
            assert_eq!(d.signature, Signature::$signature, "{d:#?}");
            assert_eq!(d.proposed, $proposed, "{d:#?}");
            assert!(
                d.cause.contains($in_cause),
                "cause lacks {:?}: {d:#?}",
                $in_cause
            );
            assert!(!d.evidence.is_empty() && d.evidence.len() <= 4, "{d:#?}");
            assert!(!d.fix.is_empty());
        }
    };
}

case!(
    git_private_repository,
    FETCH,
    "Cloning into '/tmp/devgem/src'...
fatal: could not read Username for 'https://github.com': No such device or address",
    GitAuthRequired,
    Some(ProposedFix::ProvideRepositoryToken),
    "private"
);

case!(
    git_missing_branch,
    FETCH,
    "Cloning into 'repo'...
warning: Could not find remote branch develop to clone.
fatal: Remote branch develop not found in upstream origin",
    GitRefNotFound,
    None,
    "`develop`"
);

case!(
    dockerfile_copies_a_missing_file,
    BUILD,
    r#"#9 [4/7] COPY requirements.txt .
#9 ERROR: failed to calculate checksum of ref 4b0c8a1e::x2f: "/requirements.txt": not found
------
ERROR: failed to solve: failed to compute cache key: failed to calculate checksum of ref 4b0c8a1e-7c1f-4a3c-9d9f-1c2e3f4a5b6c::x2fqz: "/requirements.txt": not found"#,
    DockerfileCopyMissing,
    None,
    "`requirements.txt`"
);

case!(
    script_with_crlf_line_endings,
    DEPLOY,
    r"/usr/bin/env: 'bash\r': No such file or directory",
    WindowsLineEndings,
    None,
    "CRLF"
);

case!(
    binary_for_another_cpu,
    DEPLOY,
    "exec /app/server: exec format error",
    ExecFormat,
    None,
    "`/app/server`"
);

case!(npm_ci_lock_out_of_sync, BUILD, "npm ERR! code EUSAGE
npm ERR!
npm ERR! `npm ci` can only install packages when your package.json and package-lock.json or npm-shrinkwrap.json are in sync. Please update your lock file with `npm install` before continuing.
npm ERR!
npm ERR! Missing: zod@3.23.8 from lock file",
    NpmLockOutOfSync, relock(PackageManager::Npm), "package-lock.json");

case!(
    npm_ci_without_lock,
    BUILD,
    "npm ERR! code EUSAGE
npm ERR!
npm ERR! The `npm ci` command can only install with an existing package-lock.json or
npm ERR! npm-shrinkwrap.json with lockfileVersion >= 1. Run an install with npm@5 or
npm ERR! later to generate a package-lock.json file, then try again.",
    NpmLockMissing,
    relock(PackageManager::Npm),
    "no package-lock.json"
);

case!(pnpm_outdated_lockfile, BUILD, " ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with \"frozen-lockfile\" because pnpm-lock.yaml is not up to date with <ROOT>/package.json

Note that in CI environments this setting is true by default. If you still need to run install in such cases, use \"pnpm install --no-frozen-lockfile\"",
    PnpmLockOutdated, relock(PackageManager::Pnpm), "pnpm-lock.yaml");

case!(
    yarn_frozen_lockfile,
    BUILD,
    "yarn install v1.22.19
[1/4] Resolving packages...
error Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`.
info Visit https://yarnpkg.com/en/docs/cli/install for documentation about this command.",
    YarnLockFrozen,
    relock(PackageManager::Yarn),
    "yarn.lock"
);

case!(poetry_lock_stale, BUILD, "Installing dependencies from lock file

pyproject.toml changed significantly since poetry.lock was last generated. Run `poetry lock [--no-update]` to fix the lock file.",
    PythonLockStale, relock(PackageManager::Poetry), "lock file");

case!(uv_lock_stale, BUILD, "Resolved 42 packages in 12ms
error: The lockfile at `uv.lock` needs to be updated, but `--locked` was provided. To update the lockfile, run `uv lock`.",
    PythonLockStale, relock(PackageManager::Uv), "lock file");

case!(
    bundler_frozen_after_gemfile_change,
    BUILD,
    "You are trying to install in deployment mode after changing
your Gemfile. Run `bundle install` elsewhere and add the
updated Gemfile.lock to version control.

The dependencies in your gemfile changed",
    BundlerLockStale,
    relock(PackageManager::Bundler),
    "Gemfile.lock"
);

case!(bundler_lock_from_macos, BUILD, "Your bundle only supports platforms [\"arm64-darwin-23\"] but your local platform is x86_64-linux. Add the current platform to the lockfile with
`bundle lock --add-platform x86_64-linux` and try again.",
    BundlerPlatform, relock(PackageManager::Bundler), "`x86_64-linux`");

case!(composer_lock_stale, BUILD, "Installing dependencies from lock file (including require-dev)
Verifying lock file contents can be installed on current platform.
Warning: The lock file is not up to date with the latest changes in composer.json. You may be getting outdated dependencies. It is recommended that you run `composer update` or `composer update <package name>`.
- Required package \"guzzlehttp/guzzle\" is not present in the lock file.",
    ComposerLockStale, relock(PackageManager::Composer), "composer.lock");

case!(go_sum_entry_missing, BUILD, "main.go:6:2: missing go.sum entry for module providing package github.com/gin-gonic/gin (imported by example.com/app); to add:
	go get example.com/app",
    GoSumMissing, relock(PackageManager::GoModules), "github.com/gin-gonic/gin");

case!(
    python_package_needs_newer_python,
    BUILD,
    "Collecting django==5.0.6
  Downloading Django-5.0.6-py3-none-any.whl.metadata (4.1 kB)
ERROR: Package 'django' requires a different Python: 3.8.18 not in '>=3.10'",
    PythonVersion,
    version("3.10"),
    ">=3.10"
);

case!(node_engine_incompatible_with_yarn, BUILD, "[1/4] Resolving packages...
[2/4] Fetching packages...
error next@14.2.3: The engine \"node\" is incompatible with this module. Expected version \">=18.17.0\". Got \"16.20.2\"
error Found incompatible module.",
    NodeVersion, version("18"), ">=18.17.0");

case!(
    go_mod_needs_newer_go,
    BUILD,
    "go: go.mod requires go >= 1.22.0 (running go 1.21.6; GOTOOLCHAIN=local)",
    GoVersion,
    version("1.22"),
    "1.22.0"
);

case!(maven_release_not_supported, BUILD, "[INFO] --- compiler:3.11.0:compile (default-compile) @ demo ---
[INFO] BUILD FAILURE
[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin:3.11.0:compile (default-compile) on project demo: Fatal error compiling: error: release version 21 not supported -> [Help 1]",
    JavaVersion, version("21"), "Java 21");

case!(
    java_class_file_too_new,
    DEPLOY,
    "Exception in thread \"main\" java.lang.UnsupportedClassVersionError: com/example/demo/DemoApplication has been compiled by a more recent version of the Java Runtime (class file version 65.0), this version of the Java Runtime only recognizes class file versions up to 61.0",
    JavaVersion,
    version("21"),
    "Java 21"
);

case!(
    ruby_version_differs_from_gemfile,
    BUILD,
    "Your Ruby version is 3.1.4, but your Gemfile specified 3.3.0",
    RubyVersion,
    version("3.3.0"),
    "3.1.4"
);

case!(php_version_too_old_for_the_lock, BUILD, "Your lock file does not contain a compatible set of packages. Please run composer update.

  Problem 1
    - laravel/framework is locked to version v11.9.2 and an update of this package was not requested.
    - laravel/framework v11.9.2 requires php ^8.2 -> your php version (8.1.27) does not satisfy that requirement.",
    PhpVersion, version("8.2"), "^8.2");

case!(crate_needs_newer_rustc, BUILD, "error: package `clap_lex v0.7.2` cannot be built because it requires rustc 1.74 or newer, while the currently active rustc version is 1.70.0
Either upgrade to rustc 1.74 or newer, or use
cargo update clap_lex@0.7.2 --precise ver",
    RustVersion, version("1.74"), "1.74");

case!(
    native_module_from_another_platform,
    DEPLOY,
    "node:internal/modules/cjs/loader:1340
  return process.dlopen(module, path.toNamespacedPath(filename));
Error: /app/node_modules/bcrypt/lib/binding/napi-v3/bcrypt_lib.node: invalid ELF header
    at Module._extensions..node (node:internal/modules/cjs/loader:1340:18)",
    NativeModuleWrongPlatform,
    None,
    "bcrypt_lib.node"
);

case!(
    binary_needs_newer_glibc,
    DEPLOY,
    "/app/server: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by /app/server)",
    GlibcTooOld,
    None,
    "GLIBC_2.34"
);

case!(
    opencv_needs_libgl,
    DEPLOY,
    r#"Traceback (most recent call last):
  File "/app/main.py", line 3, in <module>
    import cv2
  File "/app/.venv/lib/python3.11/site-packages/cv2/__init__.py", line 181, in <module>
    bootstrap()
ImportError: libGL.so.1: cannot open shared object file: No such file or directory"#,
    MissingSharedLibrary,
    Some(ProposedFix::AddSystemPackage {
        package: "libgl1".into()
    }),
    "libGL.so.1"
);

case!(
    psycopg_needs_libpq,
    DEPLOY,
    "ImportError: libpq.so.5: cannot open shared object file: No such file or directory",
    MissingSharedLibrary,
    Some(ProposedFix::AddSystemPackage {
        package: "libpq5".into()
    }),
    "libpq.so.5"
);

case!(
    python_magic_needs_libmagic,
    DEPLOY,
    "ImportError: failed to find libmagic.  Check your installation",
    MissingSharedLibrary,
    Some(ProposedFix::AddSystemPackage {
        package: "libmagic1".into()
    }),
    "libmagic"
);

case!(
    psycopg2_needs_pg_config,
    BUILD,
    "      running egg_info
      Error: pg_config executable not found.

      pg_config is required to build psycopg2 from source.  Please add the directory
      containing pg_config to the $PATH or specify the full executable path with the option:
  error: subprocess-exited-with-error",
    MissingBuildTool,
    build_pkg("libpq-dev"),
    "pg_config"
);

case!(
    c_extension_needs_python_headers,
    BUILD,
    "      src/_cffi_backend.c:2:10: fatal error: Python.h: No such file or directory
          2 | #include <Python.h>
      compilation terminated.
      error: command '/usr/bin/gcc' failed with exit code 1",
    MissingBuildTool,
    build_pkg("python3-dev"),
    "Python.h"
);

case!(
    openssl_sys_needs_libssl,
    BUILD,
    "  Could not find openssl via pkg-config:
  The system library `openssl` required by crate `openssl-sys` was not found.
  error: failed to run custom build command for `openssl-sys v0.9.102`",
    MissingBuildTool,
    build_pkg("libssl-dev"),
    "openssl"
);

case!(
    rust_linker_missing,
    BUILD,
    "   Compiling proc-macro2 v1.0.86
error: linker `cc` not found
  |
  = note: No such file or directory (os error 2)

error: could not compile `proc-macro2` (build script) due to 1 previous error",
    RustLinkerMissing,
    build_pkg("build-essential"),
    "`cc`"
);

case!(php_extension_missing, BUILD, "Your requirements could not be resolved to an installable set of packages.

  Problem 1
    - Root composer.json requires PHP extension ext-gd * but it is missing from your system. Install or enable PHP's gd extension.",
    PhpExtensionMissing, None, "`gd`");

case!(
    python_cannot_import_own_module,
    DEPLOY,
    "[2024-05-02 10:00:01 +0000] [7] [ERROR] Exception in worker process
ModuleNotFoundError: No module named 'myproject'
[2024-05-02 10:00:01 +0000] [1] [ERROR] Reason: Worker failed to boot.",
    Some(plan(
        Language::Python,
        Some(PackageManager::Pip),
        "gunicorn myproject.wsgi:application --bind 0.0.0.0:$PORT"
    )),
    PythonLocalImport,
    None,
    "`myproject`"
);

case!(
    python_module_not_declared,
    DEPLOY,
    r#"Traceback (most recent call last):
  File "/app/main.py", line 1, in <module>
    import yaml
ModuleNotFoundError: No module named 'yaml'"#,
    Some(plan(
        Language::Python,
        Some(PackageManager::Pip),
        "python main.py"
    )),
    PythonModuleNotFound,
    dep(Language::Python, Some(PackageManager::Pip), "pyyaml"),
    "`yaml`"
);

case!(
    python_cv2_maps_to_opencv,
    DEPLOY,
    "    from cv2 import imread
ModuleNotFoundError: No module named 'cv2'",
    PythonModuleNotFound,
    dep(Language::Python, None, "opencv-python-headless"),
    "opencv-python-headless"
);

case!(python_name_gone_from_package, DEPLOY, "  File \"/app/.venv/lib/python3.12/site-packages/flask/app.py\", line 28, in <module>
    from werkzeug.urls import url_quote
ImportError: cannot import name 'url_quote' from 'werkzeug.urls' (/app/.venv/lib/python3.12/site-packages/werkzeug/urls.py)",
    PythonImportName, dep(Language::Python, None, "werkzeug<3"), "`url_quote`");

case!(
    node_start_file_not_built,
    DEPLOY,
    "node:internal/modules/cjs/loader:1148
  throw err;
  ^

Error: Cannot find module '/app/dist/index.js'
    at Module._resolveFilename (node:internal/modules/cjs/loader:1145:15)
    at Module._load (node:internal/modules/cjs/loader:986:27)",
    Some(plan(
        Language::Node,
        Some(PackageManager::Npm),
        "node dist/index.js"
    )),
    NodeLocalFileNotFound,
    Some(ProposedFix::SetBuildCommand {
        command: "npm run build".into()
    }),
    "/app/dist/index.js"
);

case!(
    node_package_not_declared,
    DEPLOY,
    "node:internal/modules/cjs/loader:1080
  throw err;
  ^

Error: Cannot find module 'express'
Require stack:
- /app/server.js
    at Module._resolveFilename (node:internal/modules/cjs/loader:1077:15)",
    Some(plan(
        Language::Node,
        Some(PackageManager::Pnpm),
        "node server.js"
    )),
    NodeModuleNotFound,
    dep(Language::Node, Some(PackageManager::Pnpm), "express"),
    "`express`"
);

case!(node_scoped_esm_package_not_declared, DEPLOY, "node:internal/process/esm_loader:40
      internalBinding('errors').triggerUncaughtException(
Error [ERR_MODULE_NOT_FOUND]: Cannot find package '@aws-sdk/client-s3' imported from /app/src/upload.js",
    NodeModuleNotFound, dep(Language::Node, None, "@aws-sdk/client-s3"), "@aws-sdk/client-s3");

case!(
    go_package_not_required,
    BUILD,
    "main.go:8:2: no required module provides package github.com/gorilla/mux; to add it:
	go get github.com/gorilla/mux",
    GoPackageMissing,
    dep(Language::Go, None, "github.com/gorilla/mux"),
    "github.com/gorilla/mux"
);

case!(ruby_gem_not_in_gemfile, DEPLOY, "<internal:/usr/local/lib/ruby/3.3.0/rubygems/core_ext/kernel_require.rb>:136:in 'require': cannot load such file -- sinatra (LoadError)
	from /app/app.rb:1:in '<main>'",
    RubyGemMissing, dep(Language::Ruby, None, "sinatra"), "`sinatra`");

case!(
    bundler_gem_not_installed,
    DEPLOY,
    "/usr/local/lib/ruby/3.2.0/bundler/spec_set.rb:155:in `block in materialize': Could not find nokogiri-1.15.4, rack-3.0.8 in locally installed gems (Bundler::GemNotFound)",
    BundlerGemNotFound,
    relock(PackageManager::Bundler),
    "`nokogiri`"
);

case!(
    php_class_not_found,
    DEPLOY,
    r#"PHP Fatal error:  Uncaught Error: Class "App\Http\Controllers\UserController" not found in /var/www/html/routes/web.php:5"#,
    PhpClassNotFound,
    None,
    r"App\Http\Controllers\UserController"
);

case!(flask_app_not_found, DEPLOY, "Usage: flask run [OPTIONS]
Try 'flask run --help' for help.

Error: Could not locate a Flask application. Use the 'flask --app' option, 'FLASK_APP' environment variable, or a 'wsgi.py' or 'app.py' file in the current directory.",
    FlaskAppNotFound, None, "Flask");

case!(
    uvicorn_cannot_import_app,
    DEPLOY,
    "ERROR:    Error loading ASGI app. Could not import module \"main\".",
    AsgiAppNotFound,
    None,
    "`main`"
);

case!(next_start_without_build, DEPLOY, "> next start

Error: Could not find a production build in the '.next' directory. Try building your app with 'next build' before starting the production server. https://nextjs.org/docs/messages/production-start-no-build-id",
    Some(plan(Language::Node, Some(PackageManager::Pnpm), "pnpm start")),
    NextBuildMissing, Some(ProposedFix::SetBuildCommand { command: "pnpm run build".into() }), "next build");

case!(django_disallowed_host, DEPLOY, "Bad Request: /
django.core.exceptions.DisallowedHost: Invalid HTTP_HOST header: 'myapp-abc123-uc.a.run.app'. You may need to add 'myapp-abc123-uc.a.run.app' to ALLOWED_HOSTS.",
    Some({
        let mut p = plan(Language::Python, Some(PackageManager::Pip), "gunicorn mysite.wsgi");
        p.env_vars.push(EnvVarUse { name: "DJANGO_ALLOWED_HOSTS".into(), secret: false, required: false });
        p
    }),
    DjangoDisallowedHost, env("DJANGO_ALLOWED_HOSTS"), "myapp-abc123-uc.a.run.app");

case!(
    gunicorn_worker_timeout,
    DEPLOY,
    "[2024-05-02 10:11:12 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:8)
[2024-05-02 10:11:12 +0000] [8] [INFO] Worker exiting (pid: 8)
[2024-05-02 10:11:13 +0000] [9] [INFO] Booting worker with pid: 9",
    Some(plan(
        Language::Python,
        Some(PackageManager::Pip),
        "gunicorn app:app --bind 0.0.0.0:$PORT"
    )),
    GunicornWorkerTimeout,
    Some(ProposedFix::SetStartCommand {
        command: "gunicorn app:app --bind 0.0.0.0:$PORT --timeout 120".into()
    }),
    "timeout"
);

case!(
    npm_missing_build_script,
    BUILD,
    "npm ERR! Missing script: \"build\"
npm ERR!
npm ERR! To see a list of scripts, run:
npm ERR!   npm run",
    MissingScript,
    None,
    "\"build\""
);

case!(
    gunicorn_not_installed,
    DEPLOY,
    "/bin/sh: 1: gunicorn: not found",
    Some(plan(
        Language::Python,
        Some(PackageManager::Uv),
        "gunicorn app:app"
    )),
    CommandNotFound,
    dep(Language::Python, Some(PackageManager::Uv), "gunicorn"),
    "`gunicorn`"
);

case!(
    env_var_missing_keyerror,
    DEPLOY,
    r#"Traceback (most recent call last):
  File "/app/app.py", line 7, in <module>
    SECRET = os.environ["STRIPE_SECRET_KEY"]
  File "<frozen os>", line 714, in __getitem__
KeyError: 'STRIPE_SECRET_KEY'"#,
    MissingEnvVar,
    env("STRIPE_SECRET_KEY"),
    "`STRIPE_SECRET_KEY`"
);

case!(
    env_var_missing_prisma,
    DEPLOY,
    "PrismaClientInitializationError: error: Environment variable not found: DATABASE_URL.
  -->  schema.prisma:10
   | 
 9 |   provider = \"postgresql\"
10 |   url      = env(\"DATABASE_URL\")",
    MissingEnvVar,
    env("DATABASE_URL"),
    "`DATABASE_URL`"
);

case!(
    env_var_missing_openai_sdk,
    DEPLOY,
    "OpenAIError: The OPENAI_API_KEY environment variable is missing or empty; either provide it, or instantiate the OpenAI client with an apiKey option, like new OpenAI({ apiKey: 'My API Key' }).",
    MissingEnvVar,
    env("OPENAI_API_KEY"),
    "`OPENAI_API_KEY`"
);

case!(
    env_var_missing_pydantic_settings,
    DEPLOY,
    "pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings
database_url
  Field required [type=missing, input_value={}, input_type=dict]
    For further information visit https://errors.pydantic.dev/2.7/v/missing",
    MissingEnvVar,
    env("DATABASE_URL"),
    "`DATABASE_URL`"
);

case!(
    postgres_on_localhost,
    DEPLOY,
    "Error: connect ECONNREFUSED 127.0.0.1:5432
    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16) {
  errno: -111,
  code: 'ECONNREFUSED',",
    DatabaseUnreachable,
    env("DATABASE_URL"),
    "PostgreSQL"
);

case!(
    redis_on_localhost_uses_the_plans_name,
    DEPLOY,
    "redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379. Connection refused.",
    Some({
        let mut p = plan(
            Language::Python,
            Some(PackageManager::Pip),
            "python worker.py",
        );
        p.env_vars.push(EnvVarUse {
            name: "CACHE_REDIS_URL".into(),
            secret: true,
            required: true,
        });
        p
    }),
    DatabaseUnreachable,
    env("CACHE_REDIS_URL"),
    "Redis"
);

case!(node_heap_out_of_memory, BUILD, "<--- Last few GCs --->
[38:0x5d1f0a0]    89121 ms: Mark-Compact 2020.1 (2083.9) -> 2019.0 (2084.4) MB, 1640.95 / 0.00 ms  (average mu = 0.116, current mu = 0.009) allocation failure; scavenge might not succeed
FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
    NodeHeapOutOfMemory, Some(ProposedFix::IncreaseMemory), "heap");

case!(build_killed_for_memory, BUILD, "#12 45.21 Building wheel for torch (setup.py): started
#12 98.77 Killed
ERROR: failed to solve: process \"/bin/sh -c pip install -r requirements.txt\" did not complete successfully: exit code: 137",
    OutOfMemory, Some(ProposedFix::IncreaseMemory), "the build");

case!(
    cloud_run_memory_limit,
    DEPLOY,
    "Memory limit of 512 MiB exceeded with 531 MiB used. Consider increasing the memory limit, see https://cloud.google.com/run/docs/configuring/memory-limits",
    OutOfMemory,
    Some(ProposedFix::IncreaseMemory),
    "the app"
);

case!(
    disk_full,
    BUILD,
    "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device",
    DiskFull,
    None,
    "disk is full"
);

case!(npm_self_signed_certificate, BUILD, "npm ERR! code SELF_SIGNED_CERT_IN_CHAIN
npm ERR! errno SELF_SIGNED_CERT_IN_CHAIN
npm ERR! request to https://registry.npmjs.org/express failed, reason: self-signed certificate in certificate chain",
    TlsCertificate, build_pkg("ca-certificates"), "certificate");

case!(
    pip_certificate_verify_failed,
    BUILD,
    "  WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)'))': /simple/flask/",
    TlsCertificate,
    build_pkg("ca-certificates"),
    "certificate"
);

case!(registry_not_resolvable, BUILD, "npm ERR! code ENOTFOUND
npm ERR! syscall getaddrinfo
npm ERR! errno ENOTFOUND
npm ERR! network request to https://registry.npmjs.org/express failed, reason: getaddrinfo ENOTFOUND registry.npmjs.org",
    RegistryUnreachable, None, "registry.npmjs.org");

case!(
    listens_on_port_80_without_root,
    DEPLOY,
    "Error: listen EACCES: permission denied 0.0.0.0:80
    at Server.setupListenHandle [as _listen2] (node:net:1855:21)",
    PrivilegedPort,
    None,
    "port 80"
);

case!(
    start_script_not_executable,
    DEPLOY,
    "/bin/sh: 1: ./start.sh: Permission denied",
    Some(plan(
        Language::Node,
        Some(PackageManager::Npm),
        "./start.sh"
    )),
    PermissionDenied,
    Some(ProposedFix::SetStartCommand {
        command: "sh ./start.sh".into()
    }),
    "`./start.sh`"
);

case!(
    app_writes_where_it_may_not,
    DEPLOY,
    "[Error: EACCES: permission denied, mkdir '/app/node_modules/.cache'] {
  errno: -13,",
    PermissionDenied,
    None,
    "/app/node_modules/.cache"
);

case!(
    port_already_in_use,
    DEPLOY,
    "node:events:497
      throw er; // Unhandled 'error' event
Error: listen EADDRINUSE: address already in use :::8080",
    AddressInUse,
    None,
    "port 8080"
);

case!(
    rust_compile_error,
    BUILD,
    "   Compiling app v0.1.0 (/app)
error[E0425]: cannot find value `conifg` in this scope
 --> src/main.rs:12:20
   |
12 |     let port = conifg.port;
   |                ^^^^^^ help: a local variable with a similar name exists: `config`

error: could not compile `app` (bin \"app\") due to 1 previous error",
    RustCompileError,
    None,
    "src/main.rs:12:20"
);

case!(
    go_undefined,
    BUILD,
    "# example.com/app
./main.go:14:2: undefined: handleHealth",
    GoCompileError,
    None,
    "main.go:14:2"
);

case!(
    typescript_type_error,
    BUILD,
    "> tsc -p tsconfig.json

src/index.ts(12,7): error TS2322: Type 'string' is not assignable to type 'number'.",
    TypeScriptCompileError,
    None,
    "TS2322"
);

case!(
    maven_compilation_error,
    BUILD,
    "[INFO] BUILD FAILURE
[ERROR] COMPILATION ERROR :
[ERROR] /app/src/main/java/com/example/demo/HelloController.java:[14,16] cannot find symbol
  symbol:   class Strin",
    MavenCompileError,
    None,
    "HelloController.java"
);

case!(
    maven_missing_artifact,
    BUILD,
    "[ERROR] Failed to execute goal on project demo: Could not resolve dependencies for project com.example:demo:jar:0.0.1-SNAPSHOT: Could not find artifact com.example:internal-lib:jar:1.4.2 in central (https://repo.maven.apache.org/maven2) -> [Help 1]",
    MavenDependencyMissing,
    None,
    "com.example:internal-lib:jar:1.4.2"
);

case!(
    gradle_missing_dependency,
    BUILD,
    "FAILURE: Build failed with an exception.

* What went wrong:
Execution failed for task ':compileJava'.
> Could not resolve all files for configuration ':compileClasspath'.
   > Could not find com.example:missing-lib:2.0.1.",
    GradleBuildFailed,
    None,
    "com.example:missing-lib:2.0.1"
);

case!(
    python_syntax_error,
    DEPLOY,
    r#"  File "/app/main.py", line 8
    match command:
          ^^^^^^^
SyntaxError: invalid syntax"#,
    PythonSyntaxError,
    None,
    "/app/main.py line 8"
);

case!(pip_no_matching_version, BUILD, "ERROR: Could not find a version that satisfies the requirement tensorflow==2.3.0 (from versions: 2.12.0, 2.13.0)
ERROR: No matching distribution found for tensorflow==2.3.0",
    PipNoMatchingVersion, None, "tensorflow==2.3.0");

case!(
    pip_requirement_spelled_as_import_name,
    BUILD,
    "ERROR: Could not find a version that satisfies the requirement PIL (from versions: none)
ERROR: No matching distribution found for PIL",
    PipNoMatchingVersion,
    dep(Language::Python, None, "pillow"),
    "`pillow`"
);

case!(pip_resolution_impossible, BUILD, "ERROR: Cannot install -r requirements.txt (line 3) and fastapi==0.110.0 because these package versions have conflicting dependencies.
ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts",
    PythonDependencyConflict, None, "conflict");

case!(
    npm_peer_dependency_conflict,
    BUILD,
    "npm ERR! code ERESOLVE
npm ERR! ERESOLVE unable to resolve dependency tree
npm ERR! Found: react@18.2.0
npm ERR! Could not resolve dependency:
npm ERR! peer react@\"^16.8.0 || ^17.0.0\" from react-beautiful-dnd@13.1.1",
    NpmPeerConflict,
    None,
    "peer"
);

case!(flask_dev_server_on_localhost, DEPLOY, " * Serving Flask app 'app'
 * Debug mode: off
WARNING: This is a development server. Do not use it in a production deployment. Use a production WSGI server instead.
 * Running on http://127.0.0.1:5000
Press CTRL+C to quit",
    Some(plan(Language::Python, Some(PackageManager::Pip), "flask run")),
    BindLocalhost, Some(ProposedFix::SetStartCommand { command: "flask run --host 0.0.0.0 --port $PORT".into() }), "127.0.0.1");

case!(
    devgem_sees_a_loopback_listener,
    DEPLOY,
    "the app listens on [::1]:8080 only, which 127.0.0.1 cannot reach",
    BindLocalhost,
    None,
    "::1"
);

case!(
    express_on_a_fixed_port,
    DEPLOY,
    "> node server.js

Server listening on port 3000",
    Some(plan(
        Language::Node,
        Some(PackageManager::Npm),
        "node server.js"
    )),
    HardcodedPort,
    Some(ProposedFix::SetPort { port: 3000 }),
    "port 3000"
);

case!(
    cloud_run_startup_probe,
    DEPLOY,
    "Revision 'myapp-00002-xyz' is not ready and cannot serve traffic. The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable within the allocated timeout. This can happen when the port is misconfigured or if the timeout is too short.",
    StartupProbeFailed,
    None,
    "port 8080"
);

case!(
    gunicorn_worker_boot_without_a_known_cause,
    DEPLOY,
    r#"[2024-05-02 10:00:01 +0000] [7] [ERROR] Exception in worker process
  File "/app/app/__init__.py", line 9, in create_app
    workers = int(os.environ.get("WORKERS", "four"))
ValueError: invalid literal for int() with base 10: 'four'
[2024-05-02 10:00:01 +0000] [7] [INFO] Worker exiting (pid: 7)
[2024-05-02 10:00:01 +0000] [1] [ERROR] Reason: Worker failed to boot."#,
    GunicornWorkerBoot,
    None,
    "Gunicorn"
);

case!(maven_test_failures, BUILD, "[INFO] BUILD FAILURE
[INFO] ------------------------------------------------------------------------
[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.1.2:test (default-test) on project demo: There are test failures.",
    MavenBuildFailed, None, "maven-surefire-plugin");

case!(
    build_timed_out,
    BUILD,
    "Step #0: Installing collected packages: torch
the build timed out after 600 s",
    BuildTimeout,
    None,
    "longer"
);

case!(
    nginx_without_index,
    DEPLOY,
    r#"2024/05/02 10:00:00 [error] 29#29: *1 directory index of "/usr/share/nginx/html/" is forbidden, client: 169.254.1.1, server: localhost, request: "GET / HTTP/1.1""#,
    StaticIndexMissing,
    None,
    "/usr/share/nginx/html/"
);

#[test]
fn an_unknown_failure_names_the_step_and_quotes_the_last_errors() {
    let d = diagnosed(
        BUILD,
        "Step 5/9 : RUN make release\ncc -O2 -o app main.o\nmake: *** [Makefile:12: release] Error 2\nexit status 2",
        None,
    );
    assert_eq!(d.signature, Signature::Unknown, "{d:#?}");
    assert!(d.cause.contains("container build"), "{d:#?}");
    assert!(
        d.evidence.iter().any(|l| l.contains("Makefile:12")),
        "{d:#?}"
    );
    assert_eq!(d.proposed, None);
}

#[test]
fn the_unknown_diagnosis_uses_devgems_hint() {
    let failure = devgem_domain::Failure::new(DEPLOY, "the app exited with code 3")
        .with_hint("read the app's log");
    let d = diagnose(&FailureInput::from_failure(&failure));
    assert_eq!(d.signature, Signature::Unknown);
    assert_eq!(d.fix, "read the app's log");
}

#[test]
fn secret_looking_values_are_masked_in_evidence() {
    let d = diagnosed(
        BUILD,
        "npm ERR! network request to https://ci:s3cr3tPassw0rd@npm.internal.example.com/express failed, reason: getaddrinfo ENOTFOUND npm.internal.example.com",
        None,
    );
    assert_eq!(d.signature, Signature::RegistryUnreachable, "{d:#?}");
    let shown = d.evidence.join("\n");
    assert!(!shown.contains("s3cr3tPassw0rd"), "{shown}");
    assert!(
        shown.contains("ci:****@npm.internal.example.com"),
        "{shown}"
    );

    let d = diagnosed(
        DEPLOY,
        "boot with DATABASE_PASSWORD=hunter22 API_TOKEN: ghp_0123456789abcdefghijABCDEFGHIJ012345\nKeyError: 'SENTRY_DSN'",
        None,
    );
    let shown = format!("{}\n{}", d.evidence.join("\n"), d.cause);
    assert_eq!(d.signature, Signature::MissingEnvVar);
    assert!(
        !shown.contains("hunter22") && !shown.contains("ghp_0123"),
        "{shown}"
    );
}

#[test]
fn a_module_in_a_gunicorn_traceback_beats_worker_failed_to_boot() {
    let d = diagnosed(
        DEPLOY,
        r#"[2024-05-02 10:00:01 +0000] [7] [ERROR] Exception in worker process
Traceback (most recent call last):
  File "/app/.venv/lib/python3.12/site-packages/gunicorn/arbiter.py", line 609, in spawn_worker
    worker.init_process()
  File "/app/wsgi.py", line 3, in <module>
    from app import create_app
  File "/app/app/__init__.py", line 2, in <module>
    from flask_sqlalchemy import SQLAlchemy
ModuleNotFoundError: No module named 'flask_sqlalchemy'
[2024-05-02 10:00:01 +0000] [7] [INFO] Worker exiting (pid: 7)
[2024-05-02 10:00:01 +0000] [1] [ERROR] Worker (pid:7) exited with code 3
[2024-05-02 10:00:01 +0000] [1] [ERROR] Shutting down: Master
[2024-05-02 10:00:01 +0000] [1] [ERROR] Reason: Worker failed to boot."#,
        None,
    );
    assert_eq!(d.signature, Signature::PythonModuleNotFound, "{d:#?}");
    assert_eq!(d.proposed, dep(Language::Python, None, "flask_sqlalchemy"));
    assert!(
        d.evidence
            .iter()
            .any(|l| l.contains("No module named 'flask_sqlalchemy'"))
    );
}

#[test]
fn flask_on_all_addresses_is_a_wrong_port_not_localhost() {
    let reason = "the app listens on port 5000, not $PORT (8080); its last output:
 * Running on all addresses (0.0.0.0)
 * Running on http://127.0.0.1:5000
 * Running on http://172.17.0.2:5000";
    let d = diagnose(&FailureInput::new(DEPLOY, reason));
    assert_eq!(d.signature, Signature::HardcodedPort, "{d:#?}");
    assert_eq!(d.proposed, Some(ProposedFix::SetPort { port: 5000 }));
}

#[test]
fn a_listen_line_on_the_expected_port_is_not_a_diagnosis() {
    let d = diagnosed(
        DEPLOY,
        " * Running on http://0.0.0.0:8080\nthe app exited with code 1",
        None,
    );
    assert_eq!(d.signature, Signature::Unknown, "{d:#?}");
}

#[test]
fn a_lower_case_key_error_is_not_an_env_var() {
    let d = diagnosed(DEPLOY, "KeyError: 'user_id'", None);
    assert_ne!(d.signature, Signature::MissingEnvVar, "{d:#?}");
}

#[test]
fn buildkit_prefixes_and_colours_do_not_hide_a_match() {
    let d = diagnosed(
        BUILD,
        "#11 12.40 \x1b[31mERROR: No matching distribution found for PIL\x1b[0m",
        None,
    );
    assert_eq!(d.signature, Signature::PipNoMatchingVersion, "{d:#?}");
    assert_eq!(
        d.evidence,
        vec!["ERROR: No matching distribution found for PIL".to_string()]
    );
}

#[test]
fn the_catalogue_has_at_least_thirty_signatures() {
    assert!(Signature::ALL.len() >= 30, "{}", Signature::ALL.len());
}

#[test]
fn a_diagnosis_serializes_with_tagged_fixes() {
    let d = diagnosed(DEPLOY, "ModuleNotFoundError: No module named 'bs4'", None);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["signature"], "python_module_not_found");
    assert_eq!(json["proposed"]["kind"], "add_dependency");
    assert_eq!(json["proposed"]["package"], "beautifulsoup4");
    let back: Diagnosis = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);
}
