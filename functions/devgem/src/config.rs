//! The binary's one typed configuration, read from the environment (12-factor) in one place.
//! Every variable is listed in README.md; `devgem serve --print-config` shows the result with
//! secrets masked.
//!
//! Each port's adapter is chosen on its own (`DEVGEM_STORE`, `DEVGEM_BUS`, `DEVGEM_OBJECTS`,
//! `DEVGEM_BUILDER`, `DEVGEM_RUNTIME`). Their defaults are the embedded ones, except that a
//! project with emulator hosts set (`GOOGLE_CLOUD_PROJECT` plus `FIRESTORE_EMULATOR_HOST` /
//! `PUBSUB_EMULATOR_HOST`) and a process on Cloud Run (`K_SERVICE`) default to Firestore,
//! Pub/Sub and Cloud Storage, and on Cloud Run to Cloud Build and Cloud Run too. An adapter
//! that is named but not built yet is refused at start.
//!
//! The secrets adapter follows the runtime: Cloud Run reads an app's secrets from Secret
//! Manager, so `DEVGEM_RUNTIME=cloudrun` keeps them there; every other runtime reads the
//! owner-only file under `DEVGEM_HOME`.

use devgem_domain::Stage;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A setting that is missing, malformed or unsafe: the variable, what is wrong, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {var}: {problem}. Fix: {fix}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
    pub fix: String,
}

fn config_error(
    var: &'static str,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Declares an adapter choice: its variable, its values as users spell them, and which of them
/// exist yet.
macro_rules! choice {
    ($(#[$doc:meta])* $name:ident, $var:literal, { $($variant:ident = $text:literal, built = $built:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const VAR: &'static str = $var;
            const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Whether this adapter exists in this build of DevGem.
            pub fn is_built(self) -> bool {
                match self { $($name::$variant => $built),+ }
            }

            fn parse(value: &str) -> Result<Self, ConfigError> {
                let wanted = value.trim().to_ascii_lowercase();
                Self::ALL.iter().copied().find(|c| c.as_str() == wanted).ok_or_else(|| {
                    config_error(
                        $var,
                        format!("{value:?} is not one of its values"),
                        format!("set it to one of {}", Self::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")),
                    )
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice!(
    /// Where deployments and their progress events are kept.
    StoreKind, "DEVGEM_STORE", {
        Sqlite = "sqlite", built = true,
        Firestore = "firestore", built = true,
    }
);
choice!(
    /// How stage messages travel.
    BusKind, "DEVGEM_BUS", {
        Local = "local", built = true,
        PubSub = "pubsub", built = true,
    }
);
choice!(
    /// Where source archives, plans and logs are kept.
    ObjectsKind, "DEVGEM_OBJECTS", {
        Folder = "folder", built = true,
        Gcs = "gcs", built = true,
    }
);
choice!(
    /// What builds the app.
    BuilderKind, "DEVGEM_BUILDER", {
        Native = "native", built = true,
        Docker = "docker", built = true,
        CloudBuild = "cloudbuild", built = true,
    }
);
choice!(
    /// What runs the app.
    RuntimeKind, "DEVGEM_RUNTIME", {
        Process = "process", built = true,
        Docker = "docker", built = true,
        CloudRun = "cloudrun", built = true,
    }
);

/// The adapters one process runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adapters {
    pub store: StoreKind,
    pub bus: BusKind,
    pub objects: ObjectsKind,
    pub builder: BuilderKind,
    pub runtime: RuntimeKind,
}

impl Adapters {
    /// Whether any Google service is used (so `GOOGLE_CLOUD_PROJECT` is needed).
    pub fn uses_google(&self) -> bool {
        self.store == StoreKind::Firestore
            || self.bus == BusKind::PubSub
            || self.objects == ObjectsKind::Gcs
    }

    /// Whether Cloud Build or Cloud Run is used (so their settings are read).
    pub fn uses_google_release(&self) -> bool {
        self.builder == BuilderKind::CloudBuild || self.runtime == RuntimeKind::CloudRun
    }
}

/// The function a `devgem serve` process hosts (`FUNCTION_TARGET`). A stage function is named
/// after its stage; `chat` serves the API and the dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionTarget {
    All,
    Chat,
    Stage(Stage),
}

impl FunctionTarget {
    /// The name `FUNCTION_TARGET` uses for a stage's function.
    pub fn stage_function(stage: Stage) -> &'static str {
        match stage {
            Stage::Analyze => "analyze",
            Stage::Build => "build-trigger",
            Stage::Deploy => "deploy",
        }
    }

    fn names() -> Vec<&'static str> {
        let mut names = vec!["chat"];
        names.extend(Stage::ALL.into_iter().map(Self::stage_function));
        names.push("all");
        names
    }

    fn parse(value: &str) -> Result<Self, ConfigError> {
        let value = value.trim();
        match value {
            "all" => Ok(Self::All),
            "chat" => Ok(Self::Chat),
            other => Stage::ALL
                .into_iter()
                .find(|s| Self::stage_function(*s) == other)
                .map(Self::Stage)
                .ok_or_else(|| {
                    config_error(
                        "FUNCTION_TARGET",
                        format!("{other:?} is not a DevGem function"),
                        format!("use one of {}", Self::names().join(", ")),
                    )
                }),
        }
    }

    /// Whether this process serves the HTTP API.
    pub fn serves_api(self) -> bool {
        matches!(self, Self::All | Self::Chat)
    }

    /// Whether this process consumes the messages of `stage`.
    pub fn runs(self, stage: Stage) -> bool {
        match self {
            Self::All => true,
            Self::Chat => false,
            Self::Stage(s) => s == stage,
        }
    }

    /// Whether this process handles dead letters (the chat function does).
    pub fn handles_dead_letters(self) -> bool {
        self.serves_api()
    }
}

impl fmt::Display for FunctionTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Chat => f.write_str("chat"),
            Self::Stage(s) => f.write_str(Self::stage_function(*s)),
        }
    }
}

/// A value that must never be printed; `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub adapters: Adapters,
    /// Where the embedded adapters keep their files (`DEVGEM_HOME`, default `~/.devgem`).
    pub home: PathBuf,
    /// Where `devgem serve` listens: `DEVGEM_LISTEN` (an address, or address:port) and `PORT`
    /// (default 8080; 0 picks a free one); 127.0.0.1 unless on Cloud Run.
    pub listen: SocketAddr,
    /// Set on Cloud Run (`K_SERVICE`): the process serves Google's front end.
    pub on_cloud_run: bool,
    /// The operator's token (acts as the local user, admin). When set, every request needs
    /// `Authorization: Bearer` with it or a user's token (`devgem token create`).
    pub api_token: Option<Secret>,
    /// Requests a minute per user (`DEVGEM_RATE_LIMIT_PER_MINUTE`, default
    /// [`DEFAULT_RATE_LIMIT_PER_MINUTE`]; 0 turns the limit off).
    pub rate_limit_per_minute: u32,
    /// Sent to GitHub so private repositories can be cloned.
    pub github_token: Option<Secret>,
    /// Whether an HTTP request may name a folder on this server's disk as its source.
    pub allow_local_sources: bool,
    /// Which hosts git sources may come from (`DEVGEM_ALLOWED_SOURCE_HOSTS`, default github.com).
    pub allowed_source_hosts: devgem_app::SourcePolicy,
    /// The largest source archive `POST /api/deployments` accepts.
    pub max_upload_bytes: usize,
    /// Where built images go (`DEVGEM_IMAGE_REPOSITORY`).
    pub image_repository: String,
    /// Deliver every bus message twice (fault injection for idempotency tests).
    pub deliver_twice: bool,
    /// How long a stage worker's claim lasts without renewal.
    pub lease: Duration,
    /// How long a deployed app may take to listen on its port.
    /// How often a live deployment a chat socket follows is probed (DEVGEM_MONITOR_INTERVAL_SECS).
    pub monitor_every: Duration,
    pub ready_timeout: Duration,
    /// The chat's language models (`DEVGEM_LLM`, `DEVGEM_LLM_MODEL` and the provider's
    /// settings, as `devgem_llm::ModelConfig` reads them); the offline engine by default.
    pub llm: devgem_llm::ModelConfig,
    /// How long the analyze stage waits for a model's review before the rules decide
    /// (`DEVGEM_LLM_REVIEW_TIMEOUT_SECS`).
    pub review_bound: Duration,
    /// Which function `devgem serve` hosts.
    pub function: FunctionTarget,
    /// The Google adapters' settings, when any Google adapter is chosen.
    pub gcp: Option<devgem_gcp::GcpConfig>,
    /// Cloud Build's and Cloud Run's settings, when either is chosen.
    pub cloud: Option<devgem_gcp_run::CloudConfig>,
    /// GitHub: the webhook secret (`GITHUB_WEBHOOK_SECRET`; no deliveries without it), the web
    /// host clone URLs must be on (`DEVGEM_GITHUB_URL`) and the REST API (`DEVGEM_GITHUB_API_URL`).
    pub github_webhook_secret: Option<Secret>,
    pub github_url: String,
    pub github_api_url: String,
    /// Sign-in with GitHub (`GITHUB_CLIENT_ID`, `GITHUB_CLIENT_SECRET`), when both are set.
    pub github_oauth: Option<OAuthClient>,
    /// Sign-in with Google (`GOOGLE_CLIENT_ID`, `GOOGLE_CLIENT_SECRET`), when both are set,
    /// at `DEVGEM_GOOGLE_ACCOUNTS_URL` and `DEVGEM_GOOGLE_TOKEN_URL`.
    pub google_oauth: Option<OAuthClient>,
    pub google_accounts_url: String,
    pub google_token_url: String,
    /// DevGem's URL as browsers reach it (`DEVGEM_PUBLIC_URL`; default: the listen address):
    /// the sign-in callbacks' base.
    pub public_url: Option<String>,
}

/// An OAuth client's id and secret.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: Secret,
}

/// Both halves of an OAuth client, or neither.
fn oauth_client(
    get: &impl Fn(&str) -> Option<String>,
    id_var: &'static str,
    secret_var: &'static str,
) -> Result<Option<OAuthClient>, ConfigError> {
    match (get(id_var), get(secret_var)) {
        (Some(client_id), Some(secret)) => Ok(Some(OAuthClient {
            client_id,
            client_secret: Secret(secret),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(config_error(
            secret_var,
            "is not set",
            format!("set {secret_var} to the OAuth client's secret, or unset {id_var}"),
        )),
        (None, Some(_)) => Err(config_error(
            id_var,
            "is not set",
            format!("set {id_var} to the OAuth client's id, or unset {secret_var}"),
        )),
    }
}

/// Where images are named when no registry is configured: built here, pushed nowhere.
const DEFAULT_IMAGE_REPOSITORY: &str = "devgem.local/devgem";

/// A source archive larger than this is refused unless `DEVGEM_MAX_UPLOAD_MB` says otherwise.
const DEFAULT_MAX_UPLOAD_MB: usize = 200;
/// Generous enough for a CLI or a page polling a deployment; a script gone wrong is held back.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 1200;

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<Duration, ConfigError> {
    match get(name) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v.parse::<u64>().map(Duration::from_secs).map_err(|_| {
            config_error(
                name,
                format!("{v:?} is not a whole number of seconds"),
                "set it to e.g. 30",
            )
        }),
    }
}

fn flag(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match get(name).as_deref() {
        None | Some("0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(config_error(
            name,
            format!("{other:?} is not a boolean"),
            "set it to 1 or 0",
        )),
    }
}

fn choose<T>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    parse: fn(&str) -> Result<T, ConfigError>,
    default: T,
) -> Result<T, ConfigError> {
    get(var).map_or(Ok(default), |v| parse(&v))
}

impl Config {
    /// Where GitHub sends pushes to `devgem serve` with this configuration, when it takes
    /// GitHub webhooks and its public URL is set: what a link made by a client without a
    /// server of its own (`devgem chat`, `devgem mcp`) tells the user to set.
    pub fn webhook_url(&self) -> Option<String> {
        self.github_webhook_secret.as_ref()?;
        let base = self.public_url.as_deref()?;
        Some(format!("{}/webhooks/github", base.trim_end_matches('/')))
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every setting through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let on_cloud_run = get("K_SERVICE").is_some();
        let project = get("GOOGLE_CLOUD_PROJECT").is_some();
        let emulated = |host: &str| project && get(host).is_some();

        let store = choose(
            &get,
            StoreKind::VAR,
            StoreKind::parse,
            if on_cloud_run || emulated("FIRESTORE_EMULATOR_HOST") {
                StoreKind::Firestore
            } else {
                StoreKind::Sqlite
            },
        )?;
        let bus = choose(
            &get,
            BusKind::VAR,
            BusKind::parse,
            if on_cloud_run || emulated("PUBSUB_EMULATOR_HOST") {
                BusKind::PubSub
            } else {
                BusKind::Local
            },
        )?;
        // Stages on other machines need one shared object store.
        let objects = choose(
            &get,
            ObjectsKind::VAR,
            ObjectsKind::parse,
            if bus == BusKind::PubSub {
                ObjectsKind::Gcs
            } else {
                ObjectsKind::Folder
            },
        )?;
        let runtime = choose(
            &get,
            RuntimeKind::VAR,
            RuntimeKind::parse,
            if on_cloud_run {
                RuntimeKind::CloudRun
            } else {
                RuntimeKind::Process
            },
        )?;
        // Cloud Run runs images, so choosing it alone builds them on Cloud Build, as
        // `gcloud run deploy --source` does.
        let builder = choose(
            &get,
            BuilderKind::VAR,
            BuilderKind::parse,
            if on_cloud_run || runtime == RuntimeKind::CloudRun {
                BuilderKind::CloudBuild
            } else {
                BuilderKind::Native
            },
        )?;
        let adapters = Adapters {
            store,
            bus,
            objects,
            builder,
            runtime,
        };
        let gcp = if adapters.uses_google() {
            Some(
                devgem_gcp::GcpConfig::from_lookup(get)
                    .map_err(|e| config_error(e.var, e.problem, e.fix))?,
            )
        } else {
            None
        };
        let cloud = if adapters.uses_google_release() {
            Some(
                devgem_gcp_run::CloudConfig::from_lookup(get)
                    .map_err(|e| config_error(e.var, e.problem, e.fix))?,
            )
        } else {
            None
        };

        let home = match get("DEVGEM_HOME") {
            Some(h) => PathBuf::from(h),
            None => match get("HOME") {
                Some(h) => PathBuf::from(h).join(".devgem"),
                None => {
                    return Err(config_error(
                        "DEVGEM_HOME",
                        "neither DEVGEM_HOME nor HOME is set",
                        "set DEVGEM_HOME to a folder DevGem may use",
                    ));
                }
            },
        };
        let port = match get("PORT") {
            None => 8080,
            Some(p) => p.parse().map_err(|_| {
                config_error(
                    "PORT",
                    format!("{p:?} is not a port number"),
                    "set it to 0-65535",
                )
            })?,
        };
        let listen = match get("DEVGEM_LISTEN") {
            Some(addr) => parse_listen(&addr, port)?,
            // Cloud Run's front end reaches the container on 0.0.0.0:$PORT.
            None if on_cloud_run => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            None => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        };
        let allowed_source_hosts = match get("DEVGEM_ALLOWED_SOURCE_HOSTS") {
            None => devgem_app::SourcePolicy::default(),
            Some(list) => devgem_app::SourcePolicy::parse(&list).map_err(|problem| {
                config_error(
                    "DEVGEM_ALLOWED_SOURCE_HOSTS",
                    problem,
                    "list hosts as host or host:port, comma-separated (http://host:port also \
                     allows plain http to it; * allows any public host)",
                )
            })?,
        };
        let max_upload_mb = match get("DEVGEM_MAX_UPLOAD_MB") {
            None => DEFAULT_MAX_UPLOAD_MB,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|mb| *mb > 0)
                .ok_or_else(|| {
                    config_error(
                        "DEVGEM_MAX_UPLOAD_MB",
                        format!("{v:?} is not a positive whole number of MiB"),
                        "set it to e.g. 200",
                    )
                })?,
        };
        let rate_limit_per_minute = match get("DEVGEM_RATE_LIMIT_PER_MINUTE") {
            None => DEFAULT_RATE_LIMIT_PER_MINUTE,
            Some(v) => v.parse::<u32>().map_err(|_| {
                config_error(
                    "DEVGEM_RATE_LIMIT_PER_MINUTE",
                    format!("{v:?} is not a whole number of requests"),
                    "set it to e.g. 600, or 0 for no limit",
                )
            })?,
        };
        let function = match get("FUNCTION_TARGET") {
            None => FunctionTarget::All,
            Some(v) => FunctionTarget::parse(&v)?,
        };
        Ok(Self {
            adapters,
            home,
            listen,
            on_cloud_run,
            api_token: get("DEVGEM_API_TOKEN").map(Secret),
            rate_limit_per_minute,
            github_token: get("GITHUB_TOKEN").map(Secret),
            allow_local_sources: flag(&get, "DEVGEM_ALLOW_LOCAL_SOURCES")?,
            allowed_source_hosts,
            max_upload_bytes: max_upload_mb << 20,
            image_repository: get("DEVGEM_IMAGE_REPOSITORY").unwrap_or_else(|| {
                match (&cloud, builder) {
                    (Some(cloud), BuilderKind::CloudBuild) => cloud.image_repository(),
                    _ => DEFAULT_IMAGE_REPOSITORY.to_string(),
                }
            }),
            deliver_twice: flag(&get, "DEVGEM_BUS_DELIVER_TWICE")?,
            lease: seconds(&get, "DEVGEM_LEASE_SECS", 30)?,
            ready_timeout: seconds(&get, "DEVGEM_READY_TIMEOUT_SECS", 60)?,
            monitor_every: seconds(&get, "DEVGEM_MONITOR_INTERVAL_SECS", 30)?,
            review_bound: seconds(&get, "DEVGEM_LLM_REVIEW_TIMEOUT_SECS", 10)?,
            llm: devgem_llm::ModelConfig::from_lookup(get)
                .map_err(|e| config_error(e.var, e.problem, e.fix))?,
            function,
            gcp,
            cloud,
            github_webhook_secret: get("GITHUB_WEBHOOK_SECRET").map(Secret),
            github_url: get("DEVGEM_GITHUB_URL").unwrap_or_else(|| "https://github.com".into()),
            github_api_url: get("DEVGEM_GITHUB_API_URL")
                .unwrap_or_else(|| "https://api.github.com".into()),
            github_oauth: oauth_client(&get, "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET")?,
            google_oauth: oauth_client(&get, "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET")?,
            google_accounts_url: get("DEVGEM_GOOGLE_ACCOUNTS_URL")
                .unwrap_or_else(|| "https://accounts.google.com".into()),
            google_token_url: get("DEVGEM_GOOGLE_TOKEN_URL")
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
            public_url: get("DEVGEM_PUBLIC_URL"),
        })
    }

    /// Refuses an adapter that is named but does not exist yet, before anything starts.
    pub fn check_adapters(&self) -> Result<(), ConfigError> {
        let a = &self.adapters;
        let chosen = [
            (StoreKind::VAR, a.store.as_str(), a.store.is_built()),
            (BusKind::VAR, a.bus.as_str(), a.bus.is_built()),
            (ObjectsKind::VAR, a.objects.as_str(), a.objects.is_built()),
            (BuilderKind::VAR, a.builder.as_str(), a.builder.is_built()),
            (RuntimeKind::VAR, a.runtime.as_str(), a.runtime.is_built()),
        ];
        for (var, value, built) in chosen {
            if !built {
                return Err(config_error(
                    var,
                    format!("the {value} adapter is not part of this DevGem yet"),
                    format!("unset {var} to use the default, or pick an adapter this build has"),
                ));
            }
        }
        Ok(())
    }

    /// Refuses, before anything starts, an unbuilt adapter and a server that would answer
    /// strangers without asking who they are.
    pub fn check_servable(&self) -> Result<(), ConfigError> {
        self.check_adapters()?;
        let a = &self.adapters;
        if self.function != FunctionTarget::All && a.bus == BusKind::Local {
            return Err(config_error(
                "FUNCTION_TARGET",
                format!("{} alone needs a shared message bus", self.function),
                "set DEVGEM_BUS=pubsub (with GOOGLE_CLOUD_PROJECT and, locally, the emulator \
                 hosts), or unset FUNCTION_TARGET",
            ));
        }
        // Every function receives pushes on Pub/Sub: the stages their messages, chat the
        // dead letters.
        let pushes = a.bus == BusKind::PubSub;
        let emulated_bus = self
            .gcp
            .as_ref()
            .is_some_and(|g| g.pubsub_emulator.is_some());
        let push_auth = self.gcp.as_ref().is_some_and(|g| g.push_auth.is_some());
        if pushes && !emulated_bus && !push_auth {
            return Err(config_error(
                "DEVGEM_PUSH_AUDIENCE",
                "Pub/Sub push requests would be accepted without a verified OIDC token",
                "set DEVGEM_PUSH_AUDIENCE and DEVGEM_PUSH_SERVICE_ACCOUNT to the push \
                 subscriptions' audience and service account",
            ));
        }
        if !self.listen.ip().is_loopback() && self.function.serves_api() && self.api_token.is_none()
        {
            return Err(config_error(
                "DEVGEM_LISTEN",
                format!(
                    "listening on {} would let anyone who reaches it deploy, with no \
                     authentication configured",
                    self.listen.ip()
                ),
                "set DEVGEM_API_TOKEN (clients then send Authorization: Bearer <token>), or \
                 listen on 127.0.0.1",
            ));
        }
        // Without it the sign-in would send providers back to http://127.0.0.1 and set its
        // cookies without Secure: right only on the machine itself.
        let signs_in = self.github_oauth.is_some() || self.google_oauth.is_some();
        if signs_in
            && self.function.serves_api()
            && self.public_url.is_none()
            && !self.listen.ip().is_loopback()
        {
            return Err(config_error(
                "DEVGEM_PUBLIC_URL",
                format!(
                    "sign-in is configured and the server listens on {}, but DevGem's public \
                     URL is not set, so the sign-in callback and cookies would be for \
                     http://127.0.0.1",
                    self.listen.ip()
                ),
                "set DEVGEM_PUBLIC_URL to the https URL browsers reach DevGem at (the \
                 providers' callback is DEVGEM_PUBLIC_URL/auth/{github,google}/callback)",
            ));
        }
        Ok(())
    }

    /// The configuration as `devgem serve --print-config` shows it; secrets are masked.
    pub fn describe(&self) -> String {
        let masked = |s: &Option<Secret>| if s.is_some() { "***" } else { "(not set)" };
        let a = &self.adapters;
        let mut lines = vec![
            format!("function      {}", self.function),
            format!(
                "cloud_run     {}",
                if self.on_cloud_run {
                    "yes (K_SERVICE set)"
                } else {
                    "no"
                }
            ),
            format!("listen        {}", self.listen),
            format!("store         {}", a.store),
            format!("bus           {}", a.bus),
            format!("objects       {}", a.objects),
            format!("builder       {}", a.builder),
            format!("runtime       {}", a.runtime),
            if a.runtime == RuntimeKind::CloudRun {
                "secrets       Secret Manager".to_string()
            } else {
                format!(
                    "secrets       file ({})",
                    self.home.join("secrets.json").display()
                )
            },
            format!("home          {}", self.home.display()),
            format!("api_token     {}", masked(&self.api_token)),
            format!("github_token  {}", masked(&self.github_token)),
            format!(
                "signin        {}",
                match (&self.github_oauth, &self.google_oauth) {
                    (Some(_), Some(_)) => "github, google (client secrets ***)",
                    (Some(_), None) => "github (client secret ***)",
                    (None, Some(_)) => "google (client secret ***)",
                    (None, None) => "(off)",
                }
            ),
            format!(
                "local_sources {}",
                if self.allow_local_sources {
                    "allowed over HTTP"
                } else {
                    "refused over HTTP"
                }
            ),
            format!("source_hosts  {}", self.allowed_source_hosts.describe()),
            format!("max_upload    {} MiB", self.max_upload_bytes >> 20),
            format!("rate_limit    {}/min per user", self.rate_limit_per_minute),
            format!("images        {}", self.image_repository),
            format!("lease         {}s", self.lease.as_secs()),
            format!("ready_timeout {}s", self.ready_timeout.as_secs()),
        ];
        lines.extend(describe_llm(&self.llm));
        if self.llm.provider != devgem_llm::Provider::Offline {
            lines.push(format!(
                "llm_review    analyses below {:.0}% confidence, waits {}s",
                devgem_analyzer::review::REVIEW_BELOW_CONFIDENCE * 100.0,
                self.review_bound.as_secs()
            ));
        }
        if let Some(c) = &self.cloud {
            lines.push(format!("region        {}", c.region));
            lines.push(format!("build_bucket  {}", c.build_bucket));
            let e = &c.endpoints;
            for (name, url, default) in [
                (
                    "cloudbuild",
                    &e.cloudbuild,
                    "https://cloudbuild.googleapis.com",
                ),
                ("run", &e.run, "https://run.googleapis.com"),
                (
                    "secretmanager",
                    &e.secretmanager,
                    "https://secretmanager.googleapis.com",
                ),
                (
                    "artifactreg.",
                    &e.artifactregistry,
                    "https://artifactregistry.googleapis.com",
                ),
                ("logging", &e.logging, "https://logging.googleapis.com"),
                ("storage", &e.storage, "https://storage.googleapis.com"),
            ] {
                if url != default {
                    lines.push(format!("{name:<14}at {url}"));
                }
            }
            lines.push(format!(
                "credentials   {}",
                if c.access_token.is_some() {
                    "GOOGLE_OAUTH_ACCESS_TOKEN (***)"
                } else {
                    "application default credentials"
                }
            ));
        }
        if let Some(g) = &self.gcp {
            lines.push(format!("project       {}", g.project));
            lines.push(format!("topic_prefix  {}", g.topic_prefix));
            for (name, host) in [
                ("pubsub", &g.pubsub_emulator),
                ("firestore", &g.firestore_emulator),
                ("storage", &g.storage_emulator),
            ] {
                if let Some(host) = host {
                    lines.push(format!("{name:<14}emulator at {host}"));
                }
            }
            lines.push(format!(
                "push_auth     {}",
                match &g.push_auth {
                    Some(p) => format!("audience {} signed by {}", p.audience, p.service_account),
                    None => "off".into(),
                }
            ));
        }
        lines.join("\n")
    }
}

/// The chat's models as `describe` shows them: the provider, the models, where they are
/// reached; keys masked.
fn describe_llm(llm: &devgem_llm::ModelConfig) -> Vec<String> {
    use devgem_llm::Provider;
    let provider = match llm.provider {
        Provider::Offline => "offline",
        Provider::Gemini => "gemini",
        Provider::Vertex => "vertex",
        Provider::OpenAi => "openai",
    };
    let mut lines = vec![format!("llm           {provider}")];
    if llm.provider == Provider::Offline {
        return lines;
    }
    lines.push(format!(
        "llm_models    {} (then offline)",
        llm.models.join(", ")
    ));
    if let Some(v) = &llm.vertex {
        lines.push(format!(
            "vertex        project {} in {}{}",
            v.project,
            v.regions.join(", "),
            v.endpoint
                .as_deref()
                .map(|e| format!(" at {e}"))
                .unwrap_or_default()
        ));
    }
    if let Some(g) = &llm.gemini {
        lines.push(format!("gemini        key *** at {}", g.endpoint));
    }
    if let Some(o) = &llm.openai {
        let key = if o.api_key.is_some() {
            "***"
        } else {
            "(not set)"
        };
        lines.push(format!("openai        key {key} at {}", o.base_url));
    }
    lines.push(format!("llm_timeout   {}s", llm.policy.timeout.as_secs()));
    lines
}

fn parse_listen(value: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let host = value.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    host.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, port))
        .map_err(|_| {
            config_error(
                "DEVGEM_LISTEN",
                format!("{value:?} is not an IP address"),
                "give an address such as 127.0.0.1, 0.0.0.0 or [::1]:8080",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = [("HOME", "/home/u")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_embedded_and_loopback() {
        let c = config(&[]).unwrap();
        assert_eq!(c.adapters.store, StoreKind::Sqlite);
        assert_eq!(c.adapters.bus, BusKind::Local);
        assert_eq!(c.adapters.objects, ObjectsKind::Folder);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.function, FunctionTarget::All);
        assert!(!c.allow_local_sources);
        c.check_servable().unwrap();
    }

    #[test]
    fn emulator_hosts_make_google_the_default_of_store_and_bus() {
        let c = config(&[
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1"),
            ("PUBSUB_EMULATOR_HOST", "127.0.0.1:2"),
        ])
        .unwrap();
        assert_eq!(c.adapters.store, StoreKind::Firestore);
        assert_eq!(c.adapters.bus, BusKind::PubSub);
        assert_eq!(c.adapters.objects, ObjectsKind::Gcs);
        // A project alone switches nothing.
        let c = config(&[("GOOGLE_CLOUD_PROJECT", "p")]).unwrap();
        assert_eq!(c.adapters.store, StoreKind::Sqlite);
        assert!(c.gcp.is_none());
        // Each adapter is chosen on its own.
        let c = config(&[("GOOGLE_CLOUD_PROJECT", "p"), ("DEVGEM_STORE", "firestore")]).unwrap();
        assert_eq!(
            (c.adapters.store, c.adapters.bus),
            (StoreKind::Firestore, BusKind::Local)
        );
    }

    #[test]
    fn unknown_and_unbuilt_adapters_are_refused_by_name() {
        let err = config(&[("DEVGEM_BUS", "kafka")]).unwrap_err();
        assert_eq!(err.var, "DEVGEM_BUS");
        assert!(err.fix.contains("local, pubsub"), "{err}");
        let err = config(&[("DEVGEM_RUNTIME", "lambda")]).unwrap_err();
        assert!(err.fix.contains("process, docker, cloudrun"), "{err}");
    }

    #[test]
    fn cloud_run_builds_on_cloud_build_and_keeps_secrets_in_secret_manager() {
        // Chosen alone, Cloud Run brings Cloud Build, as `gcloud run deploy --source` does.
        let c = config(&[
            ("GOOGLE_CLOUD_PROJECT", "acme"),
            ("DEVGEM_RUNTIME", "cloudrun"),
        ])
        .unwrap();
        assert_eq!(c.adapters.builder, BuilderKind::CloudBuild);
        assert_eq!(c.image_repository, "us-central1-docker.pkg.dev/acme/devgem");
        // The state stays embedded: only the build and run adapters are Google's.
        assert_eq!(c.adapters.store, StoreKind::Sqlite);
        assert!(c.describe().contains("secrets       Secret Manager"));
        c.check_servable().unwrap();
        // On Cloud Run every default is Google's.
        let c = config(&[
            ("K_SERVICE", "deploy"),
            ("GOOGLE_CLOUD_PROJECT", "acme"),
            ("GOOGLE_CLOUD_REGION", "europe-west1"),
        ])
        .unwrap();
        assert_eq!(
            (c.adapters.builder, c.adapters.runtime),
            (BuilderKind::CloudBuild, RuntimeKind::CloudRun)
        );
        assert_eq!(
            c.image_repository,
            "europe-west1-docker.pkg.dev/acme/devgem"
        );
        // A token is used, never shown.
        let c = config(&[
            ("GOOGLE_CLOUD_PROJECT", "acme"),
            ("DEVGEM_BUILDER", "cloudbuild"),
            ("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.private"),
            ("DEVGEM_RUN_ENDPOINT", "http://127.0.0.1:9"),
        ])
        .unwrap();
        assert_eq!(c.adapters.runtime, RuntimeKind::Process);
        let shown = c.describe();
        assert!(
            !shown.contains("ya29.private")
                && shown.contains("run           at http://127.0.0.1:9"),
            "{shown}"
        );
        // Without a project the error says where to find one.
        let err = config(&[("DEVGEM_BUILDER", "cloudbuild")]).unwrap_err();
        assert_eq!(err.var, "GOOGLE_CLOUD_PROJECT");
    }

    #[test]
    fn google_adapters_need_a_project() {
        let err = config(&[("DEVGEM_STORE", "firestore")]).unwrap_err();
        assert_eq!(err.var, "GOOGLE_CLOUD_PROJECT");
    }

    #[test]
    fn function_targets_come_from_the_stages() {
        let c = config(&[("FUNCTION_TARGET", "build-trigger")]).unwrap();
        assert_eq!(c.function, FunctionTarget::Stage(Stage::Build));
        assert!(c.function.runs(Stage::Build) && !c.function.runs(Stage::Deploy));
        let err = config(&[("FUNCTION_TARGET", "build")]).unwrap_err();
        assert!(
            err.fix
                .contains("chat, analyze, build-trigger, deploy, all"),
            "{err}"
        );
        // A lone stage function needs a shared bus.
        assert_eq!(c.check_servable().unwrap_err().var, "FUNCTION_TARGET");
    }

    #[test]
    fn exposure_needs_authentication() {
        let c = config(&[("DEVGEM_LISTEN", "0.0.0.0")]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.check_servable().unwrap_err().var, "DEVGEM_LISTEN");
        let c = config(&[("DEVGEM_LISTEN", "0.0.0.0"), ("DEVGEM_API_TOKEN", "t")]).unwrap();
        c.check_servable().unwrap();
        // Cloud Run listens on every interface, as its contract requires.
        let c = config(&[
            ("K_SERVICE", "chat"),
            ("PORT", "9000"),
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("DEVGEM_API_TOKEN", "t"),
            ("DEVGEM_PUSH_AUDIENCE", "a"),
            (
                "DEVGEM_PUSH_SERVICE_ACCOUNT",
                "sa@p.iam.gserviceaccount.com",
            ),
        ])
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        c.check_servable().unwrap();
    }

    #[test]
    fn sign_in_beyond_loopback_needs_the_public_url() {
        let exposed = [
            ("DEVGEM_LISTEN", "0.0.0.0"),
            ("DEVGEM_API_TOKEN", "t"),
            ("GITHUB_CLIENT_ID", "id"),
            ("GITHUB_CLIENT_SECRET", "secret"),
        ];
        let refused = config(&exposed).unwrap().check_servable().unwrap_err();
        assert_eq!(refused.var, "DEVGEM_PUBLIC_URL");
        assert!(refused.to_string().contains("0.0.0.0"), "{refused}");
        let mut public = exposed.to_vec();
        public.push(("DEVGEM_PUBLIC_URL", "https://devgem.example"));
        config(&public).unwrap().check_servable().unwrap();
        // On loopback the derived http://127.0.0.1 URL is the right one.
        let local = [
            ("GITHUB_CLIENT_ID", "id"),
            ("GITHUB_CLIENT_SECRET", "secret"),
        ];
        config(&local).unwrap().check_servable().unwrap();
    }

    #[test]
    fn pushes_from_google_must_be_verified() {
        let c = config(&[
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("DEVGEM_BUS", "pubsub"),
            ("FUNCTION_TARGET", "analyze"),
        ])
        .unwrap();
        assert_eq!(c.check_servable().unwrap_err().var, "DEVGEM_PUSH_AUDIENCE");
        // The emulator sends no tokens.
        let c = config(&[
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("PUBSUB_EMULATOR_HOST", "127.0.0.1:1"),
            ("FUNCTION_TARGET", "analyze"),
        ])
        .unwrap();
        c.check_servable().unwrap();
    }

    #[test]
    fn printed_configuration_masks_secrets() {
        let c = config(&[("DEVGEM_API_TOKEN", "hunter2"), ("GITHUB_TOKEN", "ghp_x")]).unwrap();
        let text = c.describe();
        assert!(
            !text.contains("hunter2") && !text.contains("ghp_x"),
            "{text}"
        );
        assert!(text.contains("api_token     ***"), "{text}");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn the_chat_models_are_read_shown_masked_and_a_bad_value_names_its_variable() {
        assert_eq!(
            config(&[]).unwrap().llm.provider,
            devgem_llm::Provider::Offline
        );
        let c = config(&[
            ("DEVGEM_LLM", "gemini"),
            ("GEMINI_API_KEY", "AIza-secret"),
            ("DEVGEM_LLM_MODEL", "gemini-2.5-pro"),
        ])
        .unwrap();
        let text = c.describe();
        assert!(!text.contains("AIza-secret"), "{text}");
        assert!(text.contains("llm           gemini"), "{text}");
        assert!(text.contains("gemini-2.5-pro"), "{text}");
        let err = config(&[("DEVGEM_LLM", "gpt")]).unwrap_err();
        assert_eq!(err.var, "DEVGEM_LLM");
        assert!(
            err.to_string()
                .contains("offline, gemini, vertex or openai")
        );
        let err = config(&[("DEVGEM_LLM", "gemini")]).unwrap_err();
        assert_eq!(err.var, "GEMINI_API_KEY");
    }
}
