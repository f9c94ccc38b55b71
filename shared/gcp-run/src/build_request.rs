//! The Cloud Build request rendered from a build request, like the Dockerfile from the plan: a
//! pure function, so its snapshots show exactly what Cloud Build receives.
//!
//! Two sources: an uploaded tarball of the checkout (`storageSource`, pinned by generation),
//! or a git repository at an exact commit that Cloud Build fetches itself (a private
//! repository's token comes from Secret Manager as a secret env, never in visible arguments).
//! The generated Dockerfile and `.dockerignore` ride in a step's env as base64, unchanged.

use crate::config::{BuildEngine, CloudConfig};
use base64::Engine as _;
use devgem_ports::BuildRequest;
use google_cloud_build_v1::model::{
    Build, BuildOptions, BuildStep, SecretManagerSecret, Secrets, Source, StorageSource,
    build_options::LoggingMode,
};
use std::time::Duration;

/// The image every shell step and the default engine run (it has bash and base64, and Cloud
/// Build workers keep it cached).
pub const DOCKER_BUILDER: &str = "gcr.io/cloud-builders/docker";
/// The image that fetches a git source.
pub const GIT_BUILDER: &str = "gcr.io/cloud-builders/git";
/// kaniko v1.23.2 (the last release before its upstream was archived), pinned by the digest
/// of its multi-platform index so a moved tag cannot change what runs.
pub const KANIKO_EXECUTOR: &str = "gcr.io/kaniko-project/executor:v1.23.2@sha256:9e69fd4330ec887829c780f5126dd80edc663df6def362cd22e79bcdf00ac53f";
/// The tag of the layer cache next to each image.
pub const CACHE_TAG: &str = "buildcache";
/// The tag every DevGem build carries, so the `cloud-builds` consumer can tell them apart.
pub const DEVGEM_TAG: &str = "devgem";
/// The secret env a private repository's token is exposed as (to the fetch step only).
pub const TOKEN_ENV: &str = "GITHUB_TOKEN";
/// Where kaniko writes the pushed digest; the `digest` step copies it to the build's outputs.
const KANIKO_DIGEST_FILE: &str = "/workspace/digest";

/// Where Cloud Build finds the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLocation {
    /// The checkout's tarball in the build bucket.
    Upload {
        bucket: String,
        object: String,
        /// The generation the upload created: a later overwrite cannot change the build.
        generation: i64,
        /// A digest of the tarball (hex), the image's tag.
        digest: String,
    },
    /// A repository at an exact commit, fetched by Cloud Build itself.
    Git {
        url: String,
        commit: String,
        /// A Secret Manager version (`projects/P/secrets/S/versions/V`) holding the token
        /// of a private repository.
        token_secret: Option<String>,
    },
}

/// The image a rendered build pushes, and how to read its digest from the finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedImage {
    /// The repository path without a tag (`R-docker.pkg.dev/P/REPO/svc`).
    pub name: String,
    /// `name:tag`, the reference the build pushes.
    pub tagged: String,
    /// Where the digest comes back.
    pub digest_from: DigestFrom,
}

/// Where a finished build reports the image's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestFrom {
    /// `results.images[]`, the entry whose `name` is the tagged image (docker engine).
    Images,
    /// `results.buildStepOutputs[index]` (kaniko pushes itself; a step copies its digest file).
    StepOutput(usize),
}

/// The Build to create for `request`, and the image it will push.
pub fn render_build(
    request: &BuildRequest,
    config: &CloudConfig,
    source: &SourceLocation,
    timeout: Duration,
) -> (Build, RenderedImage) {
    let name = image_name(request.image.as_str());
    let tag = match source {
        SourceLocation::Upload { digest, .. } => format!("src-{digest}"),
        SourceLocation::Git { commit, .. } => commit.clone(),
    };
    let tagged = format!("{name}:{tag}");
    let mut steps = Vec::new();
    let mut build = Build::new();

    // Where the checkout lands in /workspace, and the build folder inside it (the app's, or
    // the workspace root of a workspace member: the Dockerfile's context).
    let checkout = match source {
        SourceLocation::Upload {
            bucket,
            object,
            generation,
            ..
        } => {
            build = build.set_source(
                Source::new().set_storage_source(
                    StorageSource::new()
                        .set_bucket(bucket)
                        .set_object(object)
                        .set_generation(*generation),
                ),
            );
            ""
        }
        SourceLocation::Git {
            url,
            commit,
            token_secret,
        } => {
            // Checked again here: whoever made `source`, a token goes to the GitHub host only.
            let token_secret = token_secret
                .as_ref()
                .filter(|_| config.is_github_source(url));
            steps.push(fetch_step(url, commit, token_secret.is_some()));
            if let Some(version) = token_secret {
                build = build.set_available_secrets(
                    Secrets::new().set_secret_manager([SecretManagerSecret::new()
                        .set_version_name(version)
                        .set_env(TOKEN_ENV)]),
                );
            }
            "src"
        }
    };
    let app_dir = join_dir(checkout, request.plan.build_dir());
    steps.push(context_step(
        &app_dir,
        &request.dockerfile,
        &request.dockerignore,
    ));

    let digest_from = match config.engine {
        BuildEngine::Docker => {
            let cache = format!("{name}:{CACHE_TAG}");
            let mut args: Vec<String> = vec![
                "build".into(),
                "-t".into(),
                literal(&tagged),
                "-t".into(),
                literal(&cache),
                "--cache-from".into(),
                literal(&cache),
                "--build-arg".into(),
                "BUILDKIT_INLINE_CACHE=1".into(),
            ];
            for (key, value) in &request.labels {
                args.push("--label".into());
                args.push(literal(&format!("{key}={value}")));
            }
            args.push(".".into());
            steps.push(
                BuildStep::new()
                    .set_id("build")
                    .set_name(DOCKER_BUILDER)
                    .set_dir(app_dir.clone())
                    .set_env(["DOCKER_BUILDKIT=1"])
                    .set_args(args),
            );
            // Cloud Build pushes these after every step succeeded, and reports their digests.
            build = build.set_images([literal(&tagged), literal(&cache)]);
            DigestFrom::Images
        }
        BuildEngine::Kaniko => {
            let context = workspace_path(&app_dir);
            let mut args: Vec<String> = vec![
                literal(&format!("--context=dir://{context}")),
                literal(&format!("--dockerfile={context}/Dockerfile")),
                literal(&format!("--destination={tagged}")),
                "--cache=true".into(),
                literal(&format!("--cache-repo={name}/cache")),
                "--cache-ttl=168h".into(),
                format!("--digest-file={KANIKO_DIGEST_FILE}"),
            ];
            for (key, value) in &request.labels {
                args.push(literal(&format!("--label={key}={value}")));
            }
            steps.push(
                BuildStep::new()
                    .set_id("build")
                    .set_name(KANIKO_EXECUTOR)
                    .set_args(args),
            );
            steps.push(
                BuildStep::new()
                    .set_id("digest")
                    .set_name(DOCKER_BUILDER)
                    .set_entrypoint("bash")
                    .set_args([
                        "-c".to_string(),
                        format!("cp {KANIKO_DIGEST_FILE} \"$$BUILDER_OUTPUT/output\""),
                    ]),
            );
            DigestFrom::StepOutput(steps.len() - 1)
        }
    };

    let build = build
        .set_steps(steps)
        .set_timeout(google_cloud_wkt::Duration::clamp(
            timeout.as_secs() as i64,
            0,
        ))
        .set_tags([
            DEVGEM_TAG.to_string(),
            format!(
                "deploy-{}",
                crate::names::label_value(request.deployment_id.as_str())
            ),
        ])
        .set_options(BuildOptions::new().set_logging(LoggingMode::CloudLoggingOnly));
    // With its own account a build cannot log to the default bucket: CLOUD_LOGGING_ONLY
    // above is what makes this accepted.
    let build = match &config.build_service_account {
        Some(email) => build.set_service_account(format!(
            "projects/{}/serviceAccounts/{email}",
            config.project
        )),
        None => build,
    };
    (
        build,
        RenderedImage {
            name,
            tagged,
            digest_from,
        },
    )
}

/// `repo/svc:tag` -> `repo/svc` (a registry port is not a tag: `host:5000/svc` stays).
pub fn image_name(reference: &str) -> String {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name.to_string(),
        _ => reference.to_string(),
    }
}

/// The step that fetches exactly `commit` into `/workspace/src` and drops `.git`, so nothing
/// git-related (nor a token) reaches the image. `git fetch URL SHA` without `git remote add`
/// keeps the URL out of `.git/config`.
fn fetch_step(url: &str, commit: &str, with_token: bool) -> BuildStep {
    let remote = match (with_token, url.strip_prefix("https://")) {
        // The shell reads the secret env (`literal` below makes it `$$GITHUB_TOKEN`, which
        // Cloud Build passes to the shell as `$GITHUB_TOKEN`).
        (true, Some(rest)) => format!(
            "'https://x-access-token:'\"${TOKEN_ENV}\"{}",
            shell_quote(&format!("@{rest}"))
        ),
        _ => shell_quote(url),
    };
    let script = format!(
        "set -euo pipefail; git init -q src && cd src && git fetch -q --depth 1 {remote} {} \
         && git checkout -q FETCH_HEAD && rm -rf .git",
        shell_quote(commit)
    );
    let step = BuildStep::new()
        .set_id("fetch")
        .set_name(GIT_BUILDER)
        .set_entrypoint("bash")
        .set_args(["-c".to_string(), literal(&script)]);
    if with_token {
        step.set_secret_env([TOKEN_ENV])
    } else {
        step
    }
}

/// The step that writes the rendered Dockerfile and `.dockerignore` into the app folder, byte
/// for byte (base64 in the env: no quoting can alter them).
fn context_step(app_dir: &str, dockerfile: &str, dockerignore: &str) -> BuildStep {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    BuildStep::new()
        .set_id("dockerfile")
        .set_name(DOCKER_BUILDER)
        .set_entrypoint("bash")
        .set_dir(app_dir.to_string())
        .set_env([
            format!("DEVGEM_DOCKERFILE_B64={}", b64(dockerfile)),
            format!("DEVGEM_DOCKERIGNORE_B64={}", b64(dockerignore)),
        ])
        .set_args([
            "-c".to_string(),
            "set -euo pipefail; printf '%s' \"$$DEVGEM_DOCKERFILE_B64\" | base64 -d > Dockerfile \
             && printf '%s' \"$$DEVGEM_DOCKERIGNORE_B64\" | base64 -d > .dockerignore"
                .to_string(),
        ])
}

/// `checkout` and the plan's build folder as a step `dir` (relative to /workspace; "" = it).
fn join_dir(checkout: &str, app_dir: &str) -> String {
    let parts: Vec<&str> = [checkout]
        .into_iter()
        .chain(app_dir.split('/'))
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

fn workspace_path(dir: &str) -> String {
    if dir.is_empty() {
        "/workspace".into()
    } else {
        format!("/workspace/{dir}")
    }
}

/// A value Cloud Build must pass as is: every `$` doubled, so no substitution applies.
fn literal(value: &str) -> String {
    value.replace('$', "$$")
}

/// `value` as one single-quoted shell word.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_domain::{DeploymentId, ImageRef, ServiceName};
    use devgem_plan::{BuildPlan, Language, Template};
    use devgem_ports::BuildSource;
    use std::collections::BTreeMap;

    const COMMIT: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";

    fn config(engine: BuildEngine) -> CloudConfig {
        let mut config = CloudConfig::new("my-proj");
        config.engine = engine;
        config
    }

    /// A request as the build stage makes it for `plan`.
    fn request(
        service: &str,
        plan: BuildPlan,
        dockerfile: &str,
        dockerignore: &str,
    ) -> BuildRequest {
        let config = config(BuildEngine::Docker);
        let id = DeploymentId::parse("d-0193a1b2c3d4").unwrap();
        let service_name = ServiceName::derive_from(service);
        BuildRequest {
            image: ImageRef::for_deployment(&config.image_repository(), &service_name, &id)
                .unwrap(),
            deployment_id: id.clone(),
            service_name,
            source: BuildSource {
                archive_key: format!("deployments/{id}/source.tar.gz"),
                git: None,
            },
            plan,
            dockerfile: dockerfile.into(),
            dockerignore: dockerignore.into(),
            labels: BTreeMap::from([
                ("org.devgem.deployment".to_string(), id.to_string()),
                ("org.devgem.repository".to_string(), "octo/app".to_string()),
            ]),
        }
    }

    fn rendered(
        request: &BuildRequest,
        engine: BuildEngine,
        source: &SourceLocation,
    ) -> serde_json::Value {
        let (build, image) =
            render_build(request, &config(engine), source, Duration::from_secs(1200));
        let mut json = serde_json::to_value(&build).unwrap();
        json["_image"] = serde_json::json!({"name": image.name, "tagged": image.tagged,
                                            "digest_from": format!("{:?}", image.digest_from)});
        json
    }

    fn node_express() -> BuildRequest {
        let mut plan = BuildPlan::new(Language::Node, Template::Node, "node server.js");
        plan.base_image = "node:22-bookworm-slim".into();
        request(
            "express-api",
            plan,
            "FROM node:22-bookworm-slim\nWORKDIR /app\nCOPY package*.json ./\nRUN npm ci --omit=dev\nCOPY . .\nENV PORT=8080\nCMD [\"node\", \"server.js\"]\n",
            ".git\nnode_modules\n",
        )
    }

    #[test]
    fn a_public_repository_is_fetched_at_the_commit_by_cloud_build() {
        let source = SourceLocation::Git {
            url: "https://github.com/octo/express-api.git".into(),
            commit: COMMIT.into(),
            token_secret: None,
        };
        insta::assert_json_snapshot!(rendered(&node_express(), BuildEngine::Docker, &source));
    }

    #[test]
    fn a_private_monorepo_service_reads_its_token_from_secret_manager() {
        let mut plan = BuildPlan::new(Language::Python, Template::Python, "gunicorn app:app");
        plan.app_dir = "services/api".into();
        let request = request(
            "api",
            plan,
            "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\nCMD exec gunicorn --bind :$PORT app:app\n",
            ".git\n__pycache__\n.venv\n",
        );
        let source = SourceLocation::Git {
            url: "https://github.com/octo/monorepo.git".into(),
            commit: COMMIT.into(),
            token_secret: Some(
                "projects/my-proj/secrets/devgem-github-token/versions/latest".into(),
            ),
        };
        let json = rendered(&request, BuildEngine::Docker, &source);
        let text = json.to_string();
        assert!(
            !text.contains("ghp_"),
            "no token value can be in the request"
        );
        assert!(
            text.contains("$$GITHUB_TOKEN"),
            "the shell reads the secret env"
        );
        insta::assert_json_snapshot!(json);
    }

    #[test]
    fn a_source_on_another_host_gets_no_github_token() {
        let source = SourceLocation::Git {
            url: "https://gitlab.com/octo/express-api.git".into(),
            commit: COMMIT.into(),
            token_secret: Some(
                "projects/my-proj/secrets/devgem-github-token/versions/latest".into(),
            ),
        };
        let json = rendered(&node_express(), BuildEngine::Docker, &source);
        assert!(json["availableSecrets"].is_null(), "{json}");
        let fetch = &json["steps"][0];
        assert!(fetch["secretEnv"].is_null(), "{fetch}");
        let script = fetch["args"][1].as_str().unwrap();
        assert!(
            script.contains("'https://gitlab.com/octo/express-api.git'"),
            "{script}"
        );
        assert!(!script.contains("GITHUB_TOKEN") && !script.contains("x-access-token"));
    }

    #[test]
    fn an_upload_is_built_from_its_generation_with_the_registry_cache() {
        let plan = BuildPlan::new(Language::Static, Template::Static, "caddy run");
        let request = request(
            "landing",
            plan,
            "FROM caddy:2-alpine\nCOPY . /srv\nCMD [\"caddy\", \"file-server\", \"--root\", \"/srv\", \"--listen\", \":8080\"]\n",
            ".git\n",
        );
        let source = SourceLocation::Upload {
            bucket: "my-proj_cloudbuild".into(),
            object: "source/1714557600.d-0193a1b2c3d4.tgz".into(),
            generation: 1_714_557_601_234_567,
            digest: "3f9c0d1e".into(),
        };
        insta::assert_json_snapshot!(rendered(&request, BuildEngine::Docker, &source));
    }

    #[test]
    fn a_workspace_member_is_built_with_the_workspace_root_as_its_context() {
        let mut plan = BuildPlan::new(Language::Node, Template::Node, "npm run start");
        plan.app_dir = "site/apps/web".into();
        plan.workspace_root = Some("site".into());
        let request = request("web", plan, "FROM node:22-bookworm-slim\n", ".git\n");
        for engine in [BuildEngine::Docker, BuildEngine::Kaniko] {
            let source = SourceLocation::Git {
                url: "https://github.com/octo/monorepo.git".into(),
                commit: COMMIT.into(),
                token_secret: None,
            };
            let json = rendered(&request, engine, &source);
            let steps = json["steps"].as_array().unwrap();
            let dockerfile = steps.iter().find(|s| s["id"] == "dockerfile").unwrap();
            assert_eq!(dockerfile["dir"], "src/site", "{engine:?}");
            let text = json.to_string();
            assert!(!text.contains("apps/web"), "{engine:?}: {text}");
        }
    }

    #[test]
    fn a_build_runs_as_the_configured_account_and_logs_to_cloud_logging_only() {
        let plan = BuildPlan::new(Language::Static, Template::Static, "caddy run");
        let request = request("landing", plan, "FROM scratch\n", ".git\n");
        let source = SourceLocation::Upload {
            bucket: "b".into(),
            object: "source/x.tgz".into(),
            generation: 1,
            digest: "3f9c0d1e".into(),
        };
        let mut config = config(BuildEngine::Docker);
        config.build_service_account = Some("builder@my-proj.iam.gserviceaccount.com".into());
        let (build, _) = render_build(&request, &config, &source, Duration::from_secs(60));
        let json = serde_json::to_value(&build).unwrap();
        assert_eq!(
            json["serviceAccount"],
            format!(
                "projects/{}/serviceAccounts/builder@my-proj.iam.gserviceaccount.com",
                config.project
            )
        );
        assert_eq!(
            build.options.as_ref().map(|o| o.logging.clone()),
            Some(LoggingMode::CloudLoggingOnly)
        );
    }

    #[test]
    fn kaniko_is_pinned_and_reports_its_digest_through_a_step_output() {
        let mut plan = BuildPlan::new(Language::Go, Template::Go, "/app/server");
        plan.app_dir = "cmd/server".into();
        let request = request(
            "go-server",
            plan,
            "FROM golang:1.23 AS build\nWORKDIR /src\nCOPY . .\nRUN CGO_ENABLED=0 go build -o /server .\nFROM gcr.io/distroless/static\nCOPY --from=build /server /server\nCMD [\"/server\"]\n",
            ".git\n",
        );
        let source = SourceLocation::Upload {
            bucket: "my-proj_cloudbuild".into(),
            object: "source/1714557600.d-0193a1b2c3d4.tgz".into(),
            generation: 42,
            digest: "0badcafe".into(),
        };
        let json = rendered(&request, BuildEngine::Kaniko, &source);
        assert!(json["images"].is_null(), "kaniko pushes itself");
        assert!(KANIKO_EXECUTOR.contains("@sha256:"));
        insta::assert_json_snapshot!(json);
    }

    #[test]
    fn the_dockerfile_reaches_the_build_unchanged() {
        let request = node_express();
        let source = SourceLocation::Git {
            url: "https://github.com/octo/express-api.git".into(),
            commit: COMMIT.into(),
            token_secret: None,
        };
        let json = rendered(&request, BuildEngine::Docker, &source);
        let env = json["steps"][1]["env"].as_array().unwrap();
        let decode = |prefix: &str| {
            let value = env
                .iter()
                .filter_map(|e| e.as_str())
                .find_map(|e| e.strip_prefix(prefix))
                .unwrap();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(decode("DEVGEM_DOCKERFILE_B64="), request.dockerfile);
        assert_eq!(decode("DEVGEM_DOCKERIGNORE_B64="), request.dockerignore);
    }

    #[test]
    fn tags_are_dropped_but_registry_ports_kept() {
        assert_eq!(image_name("r/p/devgem/shop:d-1"), "r/p/devgem/shop");
        assert_eq!(image_name("host:5000/shop"), "host:5000/shop");
        assert_eq!(image_name("r/shop@sha256:ab"), "r/shop");
    }

    #[test]
    fn app_folders_join_the_checkout() {
        assert_eq!(join_dir("", "."), "");
        assert_eq!(join_dir("src", "."), "src");
        assert_eq!(join_dir("src", "apps/web/"), "src/apps/web");
        assert_eq!(join_dir("", "./api"), "api");
    }

    #[test]
    fn dollars_never_reach_substitution() {
        assert_eq!(literal("a$b${C}"), "a$$b$${C}");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
