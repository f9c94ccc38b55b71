//! The tool registry as types: one `ToolCall` per tool with typed arguments, read from and
//! written to the JSON a language model (or an MCP client) exchanges, with a JSON Schema and
//! truthful annotations per tool. The chat and the MCP server both serve exactly this list.

use devgem_domain::{DeploymentId, LinkId, RepositoryName, ServiceName};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// The tools, by name. `as_str` is the name models and MCP clients call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ToolName {
    DeployRepository,
    GetDeploymentStatus,
    ListDeployments,
    GetLogs,
    SetEnvVars,
    UnsetEnvVars,
    AbortDeployment,
    StopDeployment,
    Redeploy,
    Rollback,
    AnalyzeRepository,
    DiagnoseFailure,
    ApplyFix,
    LinkRepository,
    ListLinks,
    UnlinkRepository,
}

impl ToolName {
    /// Every tool, in the order the declarations list them.
    pub const ALL: [ToolName; 16] = [
        ToolName::DeployRepository,
        ToolName::GetDeploymentStatus,
        ToolName::ListDeployments,
        ToolName::GetLogs,
        ToolName::SetEnvVars,
        ToolName::UnsetEnvVars,
        ToolName::AbortDeployment,
        ToolName::StopDeployment,
        ToolName::Redeploy,
        ToolName::Rollback,
        ToolName::AnalyzeRepository,
        ToolName::DiagnoseFailure,
        ToolName::ApplyFix,
        ToolName::LinkRepository,
        ToolName::ListLinks,
        ToolName::UnlinkRepository,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::DeployRepository => "deploy_repository",
            ToolName::GetDeploymentStatus => "get_deployment_status",
            ToolName::ListDeployments => "list_deployments",
            ToolName::GetLogs => "get_logs",
            ToolName::SetEnvVars => "set_env_vars",
            ToolName::UnsetEnvVars => "unset_env_vars",
            ToolName::AbortDeployment => "abort_deployment",
            ToolName::StopDeployment => "stop_deployment",
            ToolName::Redeploy => "redeploy",
            ToolName::Rollback => "rollback",
            ToolName::AnalyzeRepository => "analyze_repository",
            ToolName::DiagnoseFailure => "diagnose_failure",
            ToolName::ApplyFix => "apply_fix",
            ToolName::LinkRepository => "link_repository",
            ToolName::ListLinks => "list_links",
            ToolName::UnlinkRepository => "unlink_repository",
        }
    }

    pub fn parse(name: &str) -> Option<ToolName> {
        ToolName::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// What the tool does, as the model and the MCP client read it.
    pub fn description(self) -> &'static str {
        match self {
            ToolName::DeployRepository => {
                "Deploy a git repository (a URL, github.com/owner/repo, or owner/repo) or a local \
                 directory: analyze it, build it and run it, answering at a URL. Returns the new \
                 deployment's id. High-severity security findings stop it unless \
                 `allow_findings` is true."
            }
            ToolName::GetDeploymentStatus => {
                "The status of a deployment (queued, analyzing, building, deploying, live, \
                 stopped, failed, aborted), its URL when live and its error when failed."
            }
            ToolName::ListDeployments => "The deployments, newest first, with status and URL.",
            ToolName::GetLogs => "The latest build and runtime log lines of a deployment.",
            ToolName::SetEnvVars => {
                "Set environment variables on a deployment's service and redeploy it with them. \
                 Names listed in `secret` are kept as secrets."
            }
            ToolName::UnsetEnvVars => {
                "Remove environment variables from a deployment's service and redeploy it \
                 without them."
            }
            ToolName::AbortDeployment => {
                "Abort a deployment that is still queued, analyzing, building or deploying."
            }
            ToolName::StopDeployment => {
                "Stop a live deployment: its service stops answering at its URL."
            }
            ToolName::Redeploy => {
                "Deploy the same source and settings again, as a new deployment. With \
                 `allow_findings`, high-severity security findings (which stop a deployment) \
                 are allowed: the user's \"deploy anyway\" after a security-scan stop."
            }
            ToolName::Rollback => {
                "Send a service's traffic back to an earlier revision: the previous one, or the \
                 named `revision`."
            }
            ToolName::AnalyzeRepository => {
                "Analyze a repository without deploying it: language, framework, start command, \
                 port and the environment variables it reads."
            }
            ToolName::DiagnoseFailure => {
                "Explain why a deployment failed: the root cause, the log lines that show it and \
                 a concrete fix."
            }
            ToolName::ApplyFix => {
                "Apply the fix a diagnosis proposed (or the one named by `fix`), say what \
                 changed, and redeploy."
            }
            ToolName::LinkRepository => {
                "Link a GitHub repository's branch to a service: every push to the branch \
                 deploys it, and pull requests against it get previews. Returns the link and \
                 the webhook URL to set in GitHub."
            }
            ToolName::ListLinks => {
                "The linked repositories: repository, branch, service and link id."
            }
            ToolName::UnlinkRepository => {
                "Remove a link (by `link_id`, or every link of `repository`): pushes no longer \
                 deploy. Says what it removed."
            }
        }
    }

    /// What calling the tool does to the world, as MCP's tool annotations say it.
    pub fn annotations(self) -> ToolAnnotations {
        let (read_only, destructive, idempotent) = match self {
            ToolName::GetDeploymentStatus
            | ToolName::ListDeployments
            | ToolName::GetLogs
            | ToolName::AnalyzeRepository
            | ToolName::DiagnoseFailure
            | ToolName::ListLinks => (true, false, true),
            // Aborting or stopping twice leaves the same state as once.
            ToolName::AbortDeployment | ToolName::StopDeployment | ToolName::UnlinkRepository => {
                (false, true, true)
            }
            // Each call starts a new deployment (unset and rollback also remove something).
            ToolName::UnsetEnvVars | ToolName::Rollback => (false, true, false),
            ToolName::DeployRepository
            | ToolName::SetEnvVars
            | ToolName::Redeploy
            | ToolName::ApplyFix
            | ToolName::LinkRepository => (false, false, false),
        };
        ToolAnnotations {
            read_only,
            destructive,
            idempotent,
        }
    }

    /// The arguments the tool takes, in the order the schema lists them.
    fn params(self) -> &'static [Param] {
        match self {
            ToolName::DeployRepository => &[
                SOURCE,
                BRANCH,
                Param {
                    name: "subdir",
                    kind: Kind::Text,
                    required: false,
                    description: "The folder inside the repository that holds the app, e.g. apps/web.",
                },
                Param {
                    name: "service_name",
                    kind: Kind::Text,
                    required: false,
                    description: "The service name: lowercase letters, digits and '-', starting with a letter. Derived from the repository when absent.",
                },
                ENV_OPTIONAL,
                SECRET,
                ALLOW_FINDINGS,
            ],
            ToolName::ListDeployments | ToolName::ListLinks => &[],
            ToolName::GetDeploymentStatus
            | ToolName::GetLogs
            | ToolName::AbortDeployment
            | ToolName::StopDeployment
            | ToolName::DiagnoseFailure => &[DEPLOYMENT_ID],
            ToolName::Redeploy => &[DEPLOYMENT_ID, ALLOW_FINDINGS],
            ToolName::LinkRepository => &[
                Param {
                    required: true,
                    ..REPOSITORY
                },
                Param {
                    name: "branch",
                    kind: Kind::Text,
                    required: false,
                    description: "The branch whose pushes deploy; main when absent.",
                },
                Param {
                    name: "service_name",
                    kind: Kind::Text,
                    required: false,
                    description: "The service the pushes deploy: lowercase letters, digits and '-', starting with a letter. The repository's name when absent.",
                },
                ENV_OPTIONAL,
            ],
            ToolName::UnlinkRepository => &[
                Param {
                    name: "link_id",
                    kind: Kind::Text,
                    required: false,
                    description: "The link to remove (l-...).",
                },
                Param {
                    description: "Remove every link of this repository (owner/name). With neither this nor link_id, the only link there is.",
                    ..REPOSITORY
                },
            ],
            ToolName::SetEnvVars => &[
                DEPLOYMENT_ID,
                Param {
                    required: true,
                    ..ENV_OPTIONAL
                },
                SECRET,
            ],
            ToolName::UnsetEnvVars => &[
                DEPLOYMENT_ID,
                Param {
                    name: "names",
                    kind: Kind::Names,
                    required: true,
                    description: "The names of the variables to remove.",
                },
            ],
            ToolName::Rollback => &[
                DEPLOYMENT_ID,
                Param {
                    name: "revision",
                    kind: Kind::Text,
                    required: false,
                    description: "The revision to go back to (e.g. shop-00003-abc); the previous one when absent.",
                },
            ],
            ToolName::AnalyzeRepository => &[SOURCE, BRANCH],
            ToolName::ApplyFix => &[
                DEPLOYMENT_ID,
                Param {
                    name: "fix",
                    kind: Kind::Text,
                    required: false,
                    description: "Which proposed fix to apply, by the id the diagnosis gave; the first one when absent.",
                },
            ],
        }
    }
}

impl Serialize for ToolName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// MCP's tool annotations (`readOnlyHint`, `destructiveHint`, `idempotentHint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ToolAnnotations {
    /// The tool changes nothing.
    pub read_only: bool,
    /// The tool may remove or end something the user had.
    pub destructive: bool,
    /// Calling it again with the same arguments has no further effect.
    pub idempotent: bool,
}

/// One function declaration: what a model is told it may call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDeclaration {
    pub name: ToolName,
    pub description: &'static str,
    /// A JSON Schema object: `type`, `properties`, `required`, `additionalProperties: false`.
    pub parameters: Value,
    pub annotations: ToolAnnotations,
}

/// The declarations of every tool, in one order.
pub fn declarations() -> Vec<ToolDeclaration> {
    ToolName::ALL
        .into_iter()
        .map(|tool| ToolDeclaration {
            name: tool,
            description: tool.description(),
            parameters: schema(tool),
            annotations: tool.annotations(),
        })
        .collect()
}

fn schema(tool: ToolName) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in tool.params() {
        let mut prop = match p.kind {
            Kind::Text => json!({"type": "string", "minLength": 1}),
            Kind::DeploymentId => json!({"type": "string", "pattern": "^[a-z0-9-]{3,64}$"}),
            Kind::Flag => json!({"type": "boolean"}),
            Kind::Env => json!({
                "type": "object",
                "propertyNames": {"pattern": ENV_NAME_PATTERN},
                "additionalProperties": {"type": "string"},
            }),
            Kind::Names => json!({
                "type": "array",
                "items": {"type": "string", "pattern": ENV_NAME_PATTERN},
            }),
        };
        prop["description"] = Value::from(p.description);
        properties.insert(p.name.to_string(), prop);
        if p.required {
            required.push(Value::from(p.name));
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// Names Cloud Run sets in every container: a user may not set them.
pub const RESERVED_ENV_NAMES: [&str; 4] = ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"];

/// Why a name cannot be an environment variable name on Cloud Run, or `None` when it can.
pub fn env_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 256 {
        Some("is longer than 256 characters")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some("must not start with a digit")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Some("may hold only letters, digits and '_'")
    } else if RESERVED_ENV_NAMES.contains(&name) {
        Some("is reserved: Cloud Run sets it")
    } else {
        None
    }
}

/// One argument of a tool.
#[derive(Debug, Clone, Copy)]
struct Param {
    name: &'static str,
    kind: Kind,
    required: bool,
    description: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    DeploymentId,
    /// `{NAME: value}`.
    Env,
    /// `[NAME]`.
    Names,
    /// `true` or `false`.
    Flag,
}

const SOURCE: Param = Param {
    name: "source",
    kind: Kind::Text,
    required: true,
    description: "The repository: https://github.com/owner/repo, github.com/owner/repo, owner/repo (GitHub), a git URL, or a local path.",
};
const BRANCH: Param = Param {
    name: "branch",
    kind: Kind::Text,
    required: false,
    description: "The branch (or tag) to use; the repository's default branch when absent.",
};
const DEPLOYMENT_ID: Param = Param {
    name: "deployment_id",
    kind: Kind::DeploymentId,
    required: false,
    description: "The deployment (d-...); the session's current deployment when absent.",
};
const ENV_OPTIONAL: Param = Param {
    name: "env",
    kind: Kind::Env,
    required: false,
    description: "Environment variables to set, {NAME: value}. PORT, K_SERVICE, K_REVISION and K_CONFIGURATION are reserved.",
};
const SECRET: Param = Param {
    name: "secret",
    kind: Kind::Names,
    required: false,
    description: "Names of variables to keep as secrets (their values are never shown). A name with no value in `env` keeps the value already stored.",
};

const ALLOW_FINDINGS: Param = Param {
    name: "allow_findings",
    kind: Kind::Flag,
    required: false,
    description: "Deploy despite high-severity security findings (a committed key, secrets in the Dockerfile); only when the user said so. Recorded on the deployment.",
};
const REPOSITORY: Param = Param {
    name: "repository",
    kind: Kind::Text,
    required: false,
    description: "The GitHub repository: owner/name, github.com/owner/name or https://github.com/owner/name.",
};

/// A tool call with its arguments checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    DeployRepository {
        source: String,
        branch: Option<String>,
        subdir: Option<String>,
        service_name: Option<ServiceName>,
        env: BTreeMap<String, String>,
        secret: Vec<String>,
        /// High-severity security findings do not stop it (the user said so).
        allow_findings: bool,
    },
    GetDeploymentStatus {
        deployment_id: Option<DeploymentId>,
    },
    ListDeployments,
    GetLogs {
        deployment_id: Option<DeploymentId>,
    },
    SetEnvVars {
        deployment_id: Option<DeploymentId>,
        env: BTreeMap<String, String>,
        secret: Vec<String>,
    },
    UnsetEnvVars {
        deployment_id: Option<DeploymentId>,
        names: Vec<String>,
    },
    AbortDeployment {
        deployment_id: Option<DeploymentId>,
    },
    StopDeployment {
        deployment_id: Option<DeploymentId>,
    },
    Redeploy {
        deployment_id: Option<DeploymentId>,
        /// High-severity security findings do not stop it ("deploy anyway").
        allow_findings: bool,
    },
    Rollback {
        deployment_id: Option<DeploymentId>,
        revision: Option<String>,
    },
    AnalyzeRepository {
        source: String,
        branch: Option<String>,
    },
    DiagnoseFailure {
        deployment_id: Option<DeploymentId>,
    },
    ApplyFix {
        deployment_id: Option<DeploymentId>,
        fix: Option<String>,
    },
    LinkRepository {
        repository: RepositoryName,
        /// `main` when absent.
        branch: Option<String>,
        service_name: Option<ServiceName>,
        env: BTreeMap<String, String>,
    },
    ListLinks,
    /// At most one of the two; with neither, the caller's only link.
    UnlinkRepository {
        link_id: Option<LinkId>,
        repository: Option<RepositoryName>,
    },
}

/// A call a tool cannot take, naming the tool and the argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("unknown tool `{name}`")]
    UnknownTool { name: String },
    #[error("{tool}: the arguments must be a JSON object")]
    NotAnObject { tool: ToolName },
    #[error("{tool}: unknown argument `{argument}` (it takes {expected})")]
    UnknownArgument {
        tool: ToolName,
        argument: String,
        expected: String,
    },
    #[error("{tool}: `{argument}` is required")]
    Missing {
        tool: ToolName,
        argument: &'static str,
    },
    #[error("{tool}: `{argument}` {problem}")]
    Invalid {
        tool: ToolName,
        /// The argument, or the entry in it (`env.PORT`, `names[1]`).
        argument: String,
        problem: String,
    },
}

impl ArgError {
    /// The argument at fault, when one is.
    pub fn argument(&self) -> Option<&str> {
        match self {
            ArgError::UnknownTool { .. } | ArgError::NotAnObject { .. } => None,
            ArgError::UnknownArgument { argument, .. } | ArgError::Invalid { argument, .. } => {
                Some(argument)
            }
            ArgError::Missing { argument, .. } => Some(argument),
        }
    }
}

impl ToolCall {
    pub fn name(&self) -> ToolName {
        match self {
            ToolCall::DeployRepository { .. } => ToolName::DeployRepository,
            ToolCall::GetDeploymentStatus { .. } => ToolName::GetDeploymentStatus,
            ToolCall::ListDeployments => ToolName::ListDeployments,
            ToolCall::GetLogs { .. } => ToolName::GetLogs,
            ToolCall::SetEnvVars { .. } => ToolName::SetEnvVars,
            ToolCall::UnsetEnvVars { .. } => ToolName::UnsetEnvVars,
            ToolCall::AbortDeployment { .. } => ToolName::AbortDeployment,
            ToolCall::StopDeployment { .. } => ToolName::StopDeployment,
            ToolCall::Redeploy { .. } => ToolName::Redeploy,
            ToolCall::Rollback { .. } => ToolName::Rollback,
            ToolCall::AnalyzeRepository { .. } => ToolName::AnalyzeRepository,
            ToolCall::DiagnoseFailure { .. } => ToolName::DiagnoseFailure,
            ToolCall::ApplyFix { .. } => ToolName::ApplyFix,
            ToolCall::LinkRepository { .. } => ToolName::LinkRepository,
            ToolCall::ListLinks => ToolName::ListLinks,
            ToolCall::UnlinkRepository { .. } => ToolName::UnlinkRepository,
        }
    }

    /// Whether the tool acts on one deployment (the session's current one when the call names
    /// none).
    pub fn acts_on_deployment(&self) -> bool {
        !matches!(
            self,
            ToolCall::DeployRepository { .. }
                | ToolCall::ListDeployments
                | ToolCall::AnalyzeRepository { .. }
                | ToolCall::LinkRepository { .. }
                | ToolCall::ListLinks
                | ToolCall::UnlinkRepository { .. }
        )
    }

    /// The deployment the call names, if it names one.
    pub fn deployment_id(&self) -> Option<&DeploymentId> {
        match self {
            ToolCall::GetDeploymentStatus { deployment_id }
            | ToolCall::GetLogs { deployment_id }
            | ToolCall::SetEnvVars { deployment_id, .. }
            | ToolCall::UnsetEnvVars { deployment_id, .. }
            | ToolCall::AbortDeployment { deployment_id }
            | ToolCall::StopDeployment { deployment_id }
            | ToolCall::Redeploy { deployment_id, .. }
            | ToolCall::Rollback { deployment_id, .. }
            | ToolCall::DiagnoseFailure { deployment_id }
            | ToolCall::ApplyFix { deployment_id, .. } => deployment_id.as_ref(),
            ToolCall::DeployRepository { .. }
            | ToolCall::ListDeployments
            | ToolCall::AnalyzeRepository { .. }
            | ToolCall::LinkRepository { .. }
            | ToolCall::ListLinks
            | ToolCall::UnlinkRepository { .. } => None,
        }
    }

    /// Reads a call as a model or an MCP client sends it: the tool's name and its arguments
    /// (an object; `null` counts as `{}`).
    pub fn from_json(name: &str, args: &Value) -> Result<ToolCall, ArgError> {
        let tool = ToolName::parse(name).ok_or_else(|| ArgError::UnknownTool {
            name: name.chars().take(80).collect(),
        })?;
        let empty = Map::new();
        let object = match args {
            Value::Object(o) => o,
            Value::Null => &empty,
            _ => return Err(ArgError::NotAnObject { tool }),
        };
        let params = tool.params();
        for key in object.keys() {
            if !params.iter().any(|p| p.name == key) {
                let expected = if params.is_empty() {
                    "no arguments".to_string()
                } else {
                    params
                        .iter()
                        .map(|p| format!("`{}`", p.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(ArgError::UnknownArgument {
                    tool,
                    argument: key.chars().take(80).collect(),
                    expected,
                });
            }
        }
        let args = Args { tool, object };
        let call = match tool {
            ToolName::DeployRepository => ToolCall::DeployRepository {
                source: args.required_text("source")?,
                branch: args.branch()?,
                subdir: args.subdir()?,
                service_name: args.service_name()?,
                env: args.env()?.unwrap_or_default(),
                secret: args.names("secret")?.unwrap_or_default(),
                allow_findings: args.flag("allow_findings")?,
            },
            ToolName::GetDeploymentStatus => ToolCall::GetDeploymentStatus {
                deployment_id: args.deployment_id()?,
            },
            ToolName::ListDeployments => ToolCall::ListDeployments,
            ToolName::GetLogs => ToolCall::GetLogs {
                deployment_id: args.deployment_id()?,
            },
            ToolName::SetEnvVars => {
                let env = args.env()?.ok_or(ArgError::Missing {
                    tool,
                    argument: "env",
                })?;
                let secret = args.names("secret")?.unwrap_or_default();
                if env.is_empty() && secret.is_empty() {
                    return Err(args.invalid("env", "is empty: name at least one variable"));
                }
                ToolCall::SetEnvVars {
                    deployment_id: args.deployment_id()?,
                    env,
                    secret,
                }
            }
            ToolName::UnsetEnvVars => {
                let names = args.names("names")?.ok_or(ArgError::Missing {
                    tool,
                    argument: "names",
                })?;
                if names.is_empty() {
                    return Err(args.invalid("names", "is empty: name at least one variable"));
                }
                ToolCall::UnsetEnvVars {
                    deployment_id: args.deployment_id()?,
                    names,
                }
            }
            ToolName::AbortDeployment => ToolCall::AbortDeployment {
                deployment_id: args.deployment_id()?,
            },
            ToolName::StopDeployment => ToolCall::StopDeployment {
                deployment_id: args.deployment_id()?,
            },
            ToolName::Redeploy => ToolCall::Redeploy {
                deployment_id: args.deployment_id()?,
                allow_findings: args.flag("allow_findings")?,
            },
            ToolName::Rollback => ToolCall::Rollback {
                deployment_id: args.deployment_id()?,
                revision: args.word("revision")?,
            },
            ToolName::AnalyzeRepository => ToolCall::AnalyzeRepository {
                source: args.required_text("source")?,
                branch: args.branch()?,
            },
            ToolName::DiagnoseFailure => ToolCall::DiagnoseFailure {
                deployment_id: args.deployment_id()?,
            },
            ToolName::ApplyFix => ToolCall::ApplyFix {
                deployment_id: args.deployment_id()?,
                fix: args.text("fix")?,
            },
            ToolName::LinkRepository => ToolCall::LinkRepository {
                repository: args.repository()?.ok_or(ArgError::Missing {
                    tool,
                    argument: "repository",
                })?,
                branch: args.branch()?,
                service_name: args.service_name()?,
                env: args.env()?.unwrap_or_default(),
            },
            ToolName::ListLinks => ToolCall::ListLinks,
            ToolName::UnlinkRepository => {
                let link_id = args
                    .text("link_id")?
                    .map(|s| LinkId::parse(&s).map_err(|e| args.invalid("link_id", e.reason)))
                    .transpose()?;
                let repository = args.repository()?;
                if link_id.is_some() && repository.is_some() {
                    return Err(
                        args.invalid("repository", "goes without `link_id`: give one of the two")
                    );
                }
                ToolCall::UnlinkRepository {
                    link_id,
                    repository,
                }
            }
        };
        Ok(call)
    }

    /// The arguments as JSON, as `from_json` reads them back (absent optionals are left out).
    pub fn to_json(&self) -> Value {
        self.args_json(false)
    }

    /// The arguments with every environment value replaced by `"***"`: what a prompt, a log
    /// line or an action list may show.
    pub fn to_redacted_json(&self) -> Value {
        self.args_json(true)
    }

    fn args_json(&self, redact: bool) -> Value {
        let mut o = Map::new();
        let mut put = |key: &str, value: Value| {
            o.insert(key.to_string(), value);
        };
        let env_json = |env: &BTreeMap<String, String>| -> Value {
            env.iter()
                .map(|(k, v)| {
                    let v = if redact { "***" } else { v.as_str() };
                    (k.clone(), Value::from(v))
                })
                .collect::<Map<_, _>>()
                .into()
        };
        let id_json = |id: &Option<DeploymentId>| id.as_ref().map(|id| Value::from(id.as_str()));
        match self {
            ToolCall::DeployRepository {
                source,
                branch,
                subdir,
                service_name,
                env,
                secret,
                allow_findings,
            } => {
                put("source", source.as_str().into());
                if let Some(b) = branch {
                    put("branch", b.as_str().into());
                }
                if let Some(s) = subdir {
                    put("subdir", s.as_str().into());
                }
                if let Some(s) = service_name {
                    put("service_name", s.as_str().into());
                }
                if !env.is_empty() {
                    put("env", env_json(env));
                }
                if !secret.is_empty() {
                    put("secret", secret.clone().into());
                }
                if *allow_findings {
                    put("allow_findings", true.into());
                }
            }
            ToolCall::SetEnvVars {
                deployment_id,
                env,
                secret,
            } => {
                if let Some(id) = id_json(deployment_id) {
                    put("deployment_id", id);
                }
                put("env", env_json(env));
                if !secret.is_empty() {
                    put("secret", secret.clone().into());
                }
            }
            ToolCall::UnsetEnvVars {
                deployment_id,
                names,
            } => {
                if let Some(id) = id_json(deployment_id) {
                    put("deployment_id", id);
                }
                put("names", names.clone().into());
            }
            ToolCall::Rollback {
                deployment_id,
                revision,
            } => {
                if let Some(id) = id_json(deployment_id) {
                    put("deployment_id", id);
                }
                if let Some(r) = revision {
                    put("revision", r.as_str().into());
                }
            }
            ToolCall::ApplyFix { deployment_id, fix } => {
                if let Some(id) = id_json(deployment_id) {
                    put("deployment_id", id);
                }
                if let Some(f) = fix {
                    put("fix", f.as_str().into());
                }
            }
            ToolCall::AnalyzeRepository { source, branch } => {
                put("source", source.as_str().into());
                if let Some(b) = branch {
                    put("branch", b.as_str().into());
                }
            }
            ToolCall::ListDeployments | ToolCall::ListLinks => {}
            ToolCall::GetDeploymentStatus { deployment_id }
            | ToolCall::GetLogs { deployment_id }
            | ToolCall::AbortDeployment { deployment_id }
            | ToolCall::StopDeployment { deployment_id }
            | ToolCall::DiagnoseFailure { deployment_id } => {
                if let Some(id) = id_json(deployment_id) {
                    put("deployment_id", id);
                }
            }
            ToolCall::Redeploy {
                deployment_id,
                allow_findings,
            } => {
                if let Some(id) = id_json(deployment_id) {
                    put("deployment_id", id);
                }
                if *allow_findings {
                    put("allow_findings", true.into());
                }
            }
            ToolCall::LinkRepository {
                repository,
                branch,
                service_name,
                env,
            } => {
                put("repository", repository.as_str().into());
                if let Some(b) = branch {
                    put("branch", b.as_str().into());
                }
                if let Some(s) = service_name {
                    put("service_name", s.as_str().into());
                }
                if !env.is_empty() {
                    put("env", env_json(env));
                }
            }
            ToolCall::UnlinkRepository {
                link_id,
                repository,
            } => {
                if let Some(id) = link_id {
                    put("link_id", id.as_str().into());
                }
                if let Some(r) = repository {
                    put("repository", r.as_str().into());
                }
            }
        }
        Value::Object(o)
    }
}

/// The arguments of one call, read with the tool's name at hand for the errors.
struct Args<'a> {
    tool: ToolName,
    object: &'a Map<String, Value>,
}

impl Args<'_> {
    fn invalid(&self, argument: impl Into<String>, problem: impl Into<String>) -> ArgError {
        ArgError::Invalid {
            tool: self.tool,
            argument: argument.into(),
            problem: problem.into(),
        }
    }

    /// A string argument; `null` counts as absent, an empty string is refused.
    fn text(&self, name: &'static str) -> Result<Option<String>, ArgError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(self.invalid(name, "is empty")),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => {
                Err(self.invalid(name, format!("must be a string, not {}", json_type(other))))
            }
        }
    }

    fn required_text(&self, name: &'static str) -> Result<String, ArgError> {
        self.text(name)?.ok_or(ArgError::Missing {
            tool: self.tool,
            argument: name,
        })
    }

    /// A string without whitespace (a branch, a revision).
    fn word(&self, name: &'static str) -> Result<Option<String>, ArgError> {
        let value = self.text(name)?;
        if let Some(v) = &value
            && v.chars().any(char::is_whitespace)
        {
            return Err(self.invalid(name, "must not contain spaces"));
        }
        Ok(value)
    }

    fn branch(&self) -> Result<Option<String>, ArgError> {
        let branch = self.word("branch")?;
        if let Some(b) = &branch
            && (b.starts_with('-') || b.contains(".."))
        {
            return Err(self.invalid("branch", "is not a valid git branch name"));
        }
        Ok(branch)
    }

    fn subdir(&self) -> Result<Option<String>, ArgError> {
        let Some(subdir) = self.text("subdir")? else {
            return Ok(None);
        };
        let trimmed = subdir.trim_start_matches("./").trim_end_matches('/');
        if subdir.starts_with('/') || trimmed.split('/').any(|part| part == "..") {
            return Err(self.invalid("subdir", "must be a folder inside the repository"));
        }
        Ok(if trimmed.is_empty() || trimmed == "." {
            None
        } else {
            Some(trimmed.to_string())
        })
    }

    fn service_name(&self) -> Result<Option<ServiceName>, ArgError> {
        self.text("service_name")?
            .map(|s| ServiceName::parse(&s).map_err(|e| self.invalid("service_name", e.reason)))
            .transpose()
    }

    /// `true` or `false`; absent or `null` is `false`.
    fn flag(&self, name: &'static str) -> Result<bool, ArgError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.invalid(
                name,
                format!("must be true or false, not {}", json_type(other)),
            )),
        }
    }

    /// A GitHub repository as `owner/name`, also read from github.com/owner/name and
    /// https://github.com/owner/name(.git).
    fn repository(&self) -> Result<Option<RepositoryName>, ArgError> {
        let Some(text) = self.text("repository")? else {
            return Ok(None);
        };
        let bare = github_repository(&text).ok_or_else(|| {
            self.invalid(
                "repository",
                "must be a GitHub repository: owner/name or https://github.com/owner/name",
            )
        })?;
        RepositoryName::parse(&bare)
            .map(Some)
            .map_err(|e| self.invalid("repository", e.reason))
    }

    fn deployment_id(&self) -> Result<Option<DeploymentId>, ArgError> {
        self.text("deployment_id")?
            .map(|s| DeploymentId::parse(&s).map_err(|e| self.invalid("deployment_id", e.reason)))
            .transpose()
    }

    fn env(&self) -> Result<Option<BTreeMap<String, String>>, ArgError> {
        let object = match self.object.get("env") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(o)) => o,
            Some(other) => {
                return Err(self.invalid(
                    "env",
                    format!("must be an object of NAME: value, not {}", json_type(other)),
                ));
            }
        };
        let mut env = BTreeMap::new();
        for (name, value) in object {
            let entry = format!("env.{name}");
            if let Some(problem) = env_name_problem(name) {
                return Err(self.invalid(entry, problem));
            }
            // Models often send `false` or `8080` unquoted: the value is the same text.
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(
                        self.invalid(entry, format!("must be a string, not {}", json_type(other)))
                    );
                }
            };
            env.insert(name.clone(), value);
        }
        Ok(Some(env))
    }

    fn names(&self, name: &'static str) -> Result<Option<Vec<String>>, ArgError> {
        let items = match self.object.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(self.invalid(
                    name,
                    format!("must be a list of names, not {}", json_type(other)),
                ));
            }
        };
        let mut names: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Value::String(n) = item else {
                return Err(self.invalid(
                    format!("{name}[{i}]"),
                    format!("must be a string, not {}", json_type(item)),
                ));
            };
            if let Some(problem) = env_name_problem(n) {
                return Err(self.invalid(format!("{name}[{i}]"), format!("({n}) {problem}")));
            }
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        Ok(Some(names))
    }
}

/// `owner/name` out of `owner/name`, `github.com/owner/name` or
/// `https://github.com/owner/name.git` (a `/tree/branch` tail is dropped); `None` for another
/// host or shape.
pub fn github_repository(text: &str) -> Option<String> {
    let mut rest = text.trim();
    for scheme in ["https://", "http://"] {
        if rest.len() >= scheme.len() && rest[..scheme.len()].eq_ignore_ascii_case(scheme) {
            rest = &rest[scheme.len()..];
        }
    }
    let lower = rest.to_ascii_lowercase();
    if let Some(host_end) = ["www.github.com/", "github.com/"]
        .iter()
        .find(|h| lower.starts_with(*h))
        .map(|h| h.len())
    {
        rest = &rest[host_end..];
    } else if text.contains("://") {
        return None;
    }
    let mut parts = rest.trim_end_matches('/').split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    if parts.next().is_some_and(|p| p != "tree") {
        return None;
    }
    let name = name.strip_suffix(".git").unwrap_or(name);
    (!owner.is_empty() && !name.is_empty()).then(|| format!("{owner}/{name}"))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(name: &str, args: Value) -> String {
        ToolCall::from_json(name, &args).unwrap_err().to_string()
    }

    #[test]
    fn a_missing_source_names_the_tool_and_the_argument() {
        assert_eq!(
            err("deploy_repository", json!({})),
            "deploy_repository: `source` is required"
        );
        assert_eq!(
            err("analyze_repository", json!({"branch": "main"})),
            "analyze_repository: `source` is required"
        );
    }

    #[test]
    fn reserved_and_malformed_env_names_are_refused_by_entry() {
        let e = err(
            "deploy_repository",
            json!({"source": "acme/shop", "env": {"PORT": "80"}}),
        );
        assert!(e.contains("`env.PORT` is reserved"), "{e}");
        for reserved in RESERVED_ENV_NAMES {
            let e = err("set_env_vars", json!({"env": {reserved: "x"}}));
            assert!(e.contains(&format!("`env.{reserved}` is reserved")), "{e}");
        }
        let e = err("set_env_vars", json!({"env": {"1ABC": "x"}}));
        assert!(e.contains("`env.1ABC` must not start with a digit"), "{e}");
        let e = err("set_env_vars", json!({"env": {"A-B": "x"}}));
        assert!(e.contains("`env.A-B` may hold only"), "{e}");
        let e = err("unset_env_vars", json!({"names": ["OK", "NO PE"]}));
        assert!(e.starts_with("unset_env_vars: `names[1]`"), "{e}");
        // K_ names other than Cloud Run's own are ordinary names.
        assert!(ToolCall::from_json("set_env_vars", &json!({"env": {"K_MINE": "1"}})).is_ok());
    }

    #[test]
    fn unknown_arguments_and_tools_are_refused() {
        let e = ToolCall::from_json("get_logs", &json!({"deployment": "d-1"})).unwrap_err();
        assert_eq!(e.argument(), Some("deployment"));
        assert_eq!(
            e.to_string(),
            "get_logs: unknown argument `deployment` (it takes `deployment_id`)"
        );
        let e = err("list_deployments", json!({"all": true}));
        assert!(e.contains("it takes no arguments"), "{e}");
        assert_eq!(
            err("deploy_everything", json!({})),
            "unknown tool `deploy_everything`"
        );
        assert_eq!(
            err("get_logs", json!(["d-1"])),
            "get_logs: the arguments must be a JSON object"
        );
    }

    #[test]
    fn wrong_types_and_values_name_the_argument() {
        assert_eq!(
            err("deploy_repository", json!({"source": 5})),
            "deploy_repository: `source` must be a string, not a number"
        );
        assert_eq!(
            err("deploy_repository", json!({"source": "  "})),
            "deploy_repository: `source` is empty"
        );
        let e = err("get_deployment_status", json!({"deployment_id": "D 1"}));
        assert!(
            e.starts_with("get_deployment_status: `deployment_id` expected"),
            "{e}"
        );
        let e = err(
            "deploy_repository",
            json!({"source": "a/b", "service_name": "Shop"}),
        );
        assert!(
            e.starts_with("deploy_repository: `service_name` must start"),
            "{e}"
        );
        let e = err(
            "deploy_repository",
            json!({"source": "a/b", "subdir": "../x"}),
        );
        assert!(e.contains("`subdir` must be a folder inside"), "{e}");
        let e = err("rollback", json!({"revision": "a b"}));
        assert!(e.contains("`revision` must not contain spaces"), "{e}");
        assert_eq!(
            err("set_env_vars", json!({"deployment_id": "d-1"})),
            "set_env_vars: `env` is required"
        );
        assert_eq!(
            err("unset_env_vars", json!({})),
            "unset_env_vars: `names` is required"
        );
        assert!(err("unset_env_vars", json!({"names": []})).contains("`names` is empty"));
        assert!(err("set_env_vars", json!({"env": {"A": [1]}})).contains("`env.A` must be"));
    }

    #[test]
    fn calls_round_trip_through_json() {
        let mut env = BTreeMap::new();
        env.insert("DEBUG".to_string(), "false".to_string());
        env.insert("STRIPE_KEY".to_string(), "sk_live_1".to_string());
        let calls = [
            ToolCall::DeployRepository {
                source: "github.com/acme/shop".into(),
                branch: Some("staging".into()),
                subdir: Some("apps/web".into()),
                service_name: Some(ServiceName::parse("shop").unwrap()),
                env: env.clone(),
                secret: vec!["STRIPE_KEY".into()],
                allow_findings: true,
            },
            ToolCall::ListDeployments,
            ToolCall::Redeploy {
                deployment_id: None,
                allow_findings: true,
            },
            ToolCall::LinkRepository {
                repository: RepositoryName::parse("acme/shop").unwrap(),
                branch: Some("staging".into()),
                service_name: Some(ServiceName::parse("storefront").unwrap()),
                env: env.clone(),
            },
            ToolCall::ListLinks,
            ToolCall::UnlinkRepository {
                link_id: Some(LinkId::parse("l-0193abcd").unwrap()),
                repository: None,
            },
            ToolCall::SetEnvVars {
                deployment_id: Some(DeploymentId::parse("d-0193").unwrap()),
                env,
                secret: vec![],
            },
            ToolCall::UnsetEnvVars {
                deployment_id: None,
                names: vec!["A".into(), "B".into()],
            },
            ToolCall::Rollback {
                deployment_id: None,
                revision: Some("shop-00003-abc".into()),
            },
            ToolCall::ApplyFix {
                deployment_id: None,
                fix: None,
            },
        ];
        for call in calls {
            let back = ToolCall::from_json(call.name().as_str(), &call.to_json()).unwrap();
            assert_eq!(back, call);
        }
    }

    #[test]
    fn repositories_are_read_from_github_urls_and_other_hosts_refused() {
        let link = |repository: &str| {
            ToolCall::from_json("link_repository", &json!({"repository": repository}))
        };
        for given in [
            "acme/shop",
            "github.com/acme/shop",
            "https://github.com/acme/shop",
            "https://github.com/acme/shop.git",
            "https://www.github.com/acme/shop/",
            "HTTPS://GitHub.com/acme/shop/tree/main",
        ] {
            let ToolCall::LinkRepository { repository, .. } = link(given).unwrap() else {
                panic!("{given}")
            };
            assert_eq!(repository.as_str(), "acme/shop", "{given}");
        }
        for refused in [
            "https://gitlab.com/acme/shop",
            "acme",
            "git@github.com:acme/shop.git",
            "github.com/acme/shop/issues/3",
            "-x/shop",
        ] {
            let e = link(refused).unwrap_err();
            assert_eq!(e.argument(), Some("repository"), "{refused}: {e}");
        }
        assert_eq!(
            err("link_repository", json!({})),
            "link_repository: `repository` is required"
        );
        let e = err(
            "unlink_repository",
            json!({"link_id": "l-1", "repository": "acme/shop"}),
        );
        assert!(e.contains("give one of the two"), "{e}");
        let e = err("redeploy", json!({"allow_findings": "yes"}));
        assert_eq!(
            e,
            "redeploy: `allow_findings` must be true or false, not a string"
        );
    }

    #[test]
    fn unquoted_env_values_are_read_as_text_and_redaction_hides_every_value() {
        let call = ToolCall::from_json(
            "set_env_vars",
            &json!({"env": {"DEBUG": false, "WORKERS": 4, "API_KEY": "xyz"}}),
        )
        .unwrap();
        let ToolCall::SetEnvVars { env, .. } = &call else {
            panic!("{call:?}")
        };
        assert_eq!(env["DEBUG"], "false");
        assert_eq!(env["WORKERS"], "4");
        let shown = call.to_redacted_json().to_string();
        assert!(
            !shown.contains("xyz") && !shown.contains("false"),
            "{shown}"
        );
        assert!(shown.contains("API_KEY"), "{shown}");
    }

    #[test]
    fn every_tool_has_a_closed_object_schema_with_its_required_arguments() {
        let decls = declarations();
        assert_eq!(decls.len(), ToolName::ALL.len());
        for d in &decls {
            let p = &d.parameters;
            assert_eq!(p["type"], "object", "{}", d.name);
            assert_eq!(p["additionalProperties"], false, "{}", d.name);
            assert!(p["properties"].is_object(), "{}", d.name);
            assert!(!d.description.is_empty());
            for r in p["required"].as_array().unwrap() {
                assert!(
                    p["properties"].get(r.as_str().unwrap()).is_some(),
                    "{}",
                    d.name
                );
            }
            for (_, prop) in p["properties"].as_object().unwrap() {
                assert!(prop["description"].is_string(), "{}", d.name);
            }
        }
        let required = |tool: ToolName| -> Vec<String> {
            decls.iter().find(|d| d.name == tool).unwrap().parameters["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(required(ToolName::DeployRepository), ["source"]);
        assert_eq!(required(ToolName::AnalyzeRepository), ["source"]);
        assert_eq!(required(ToolName::SetEnvVars), ["env"]);
        assert_eq!(required(ToolName::UnsetEnvVars), ["names"]);
        assert!(required(ToolName::Rollback).is_empty());
        assert!(required(ToolName::ListDeployments).is_empty());
        assert_eq!(required(ToolName::LinkRepository), ["repository"]);
        assert!(required(ToolName::UnlinkRepository).is_empty());
    }

    #[test]
    fn annotations_say_what_each_tool_does_to_the_world() {
        for tool in ToolName::ALL {
            let a = tool.annotations();
            assert!(!(a.read_only && a.destructive), "{tool}");
        }
        for tool in [
            ToolName::GetDeploymentStatus,
            ToolName::ListDeployments,
            ToolName::GetLogs,
            ToolName::AnalyzeRepository,
            ToolName::DiagnoseFailure,
        ] {
            assert!(tool.annotations().read_only, "{tool}");
        }
        for tool in [
            ToolName::AbortDeployment,
            ToolName::StopDeployment,
            ToolName::Rollback,
            ToolName::UnsetEnvVars,
            ToolName::UnlinkRepository,
        ] {
            assert!(tool.annotations().destructive, "{tool}");
        }
        assert!(!ToolName::DeployRepository.annotations().read_only);
        assert!(!ToolName::DeployRepository.annotations().idempotent);
    }

    #[test]
    fn names_parse_back() {
        for tool in ToolName::ALL {
            assert_eq!(ToolName::parse(tool.as_str()), Some(tool));
        }
        assert_eq!(ToolName::parse("Deploy"), None);
    }
}
