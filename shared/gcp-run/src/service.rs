//! The Cloud Run service a release becomes, rendered without I/O: the image by digest, port
//! `http1` 8080, plain env and Secret Manager references, CPU and memory (request-based
//! billing, startup boost), scaling, a TCP startup probe, labels, and an explicit revision
//! name. Its JSON is what Cloud Run Admin v2 receives (snapshots in `tests/snapshots`).

use crate::names;
use devgem_ports::{Artifact, ReleaseSpec, RuntimeError, SecretEnv};
use google_cloud_run_v2::model::{
    Container, ContainerPort, EnvVar, EnvVarSource, Probe, ResourceRequirements, RevisionScaling,
    RevisionTemplate, SecretKeySelector, Service, TCPSocketAction, TrafficTarget,
    TrafficTargetAllocationType,
};
use std::collections::HashMap;

/// The service label (and revision label) naming the deployment a service belongs to.
pub const DEPLOYMENT_LABEL: &str = "devgem-deployment";

/// The image reference Cloud Run runs: `repo/app@sha256:...` (a tag is dropped, the digest is
/// what a rollback must run again).
pub fn image_by_digest(artifact: &Artifact) -> Result<String, RuntimeError> {
    match artifact {
        Artifact::ContainerImage { reference, digest } => {
            if reference.contains("@sha256:") {
                return Ok(reference.clone());
            }
            if !digest.starts_with("sha256:") {
                return Err(RuntimeError::Failed {
                    reason: format!(
                        "Cloud Run deploys images by digest, and {reference} has no digest recorded"
                    ),
                    hint: "build the deployment again (the builder records the pushed digest)"
                        .into(),
                });
            }
            let (repo, name) = reference.rsplit_once('/').unwrap_or(("", reference));
            let name = name.split_once(':').map_or(name, |(name, _tag)| name);
            let repository = if repo.is_empty() {
                name.to_string()
            } else {
                format!("{repo}/{name}")
            };
            Ok(format!("{repository}@{digest}"))
        }
        Artifact::LocalBuild { dir } => Err(RuntimeError::Failed {
            reason: format!(
                "Cloud Run runs container images, and {} is a native build on this machine",
                dir.display()
            ),
            hint: "build images with DEVGEM_BUILDER=cloudbuild (or docker, pushed to Artifact \
                   Registry) to deploy to Cloud Run"
                .into(),
        }),
    }
}

/// The whole service for `spec`, its new revision named `revision`, all traffic to the
/// latest ready revision (a revision that fails never takes it).
pub fn render_service(spec: &ReleaseSpec, revision: &str) -> Result<Service, RuntimeError> {
    let mut labels = sanitized_labels(spec);
    labels.insert("managed-by".into(), "devgem".into());
    Ok(Service::new()
        .set_labels(labels)
        .set_template(render_template(spec, revision)?)
        .set_traffic([latest_traffic()]))
}

/// The revision template for `spec`.
pub fn render_template(
    spec: &ReleaseSpec,
    revision: &str,
) -> Result<RevisionTemplate, RuntimeError> {
    let image = image_by_digest(&spec.artifact)?;
    let port = i32::from(spec.container_port);
    let mut env: Vec<EnvVar> = spec
        .env
        .iter()
        .map(|(name, value)| EnvVar::new().set_name(name).set_value(value))
        .collect();
    env.extend(spec.secret_env.iter().map(secret_env_var));
    let container = Container::new()
        .set_image(image)
        .set_ports([ContainerPort::new()
            .set_name("http1")
            .set_container_port(port)])
        .set_env(env)
        .set_resources(
            ResourceRequirements::new()
                .set_limits([
                    ("cpu".to_string(), cpu_quantity(spec.resources.cpu_millis)),
                    (
                        "memory".to_string(),
                        format!("{}Mi", spec.resources.memory_mib),
                    ),
                ])
                // Sending `resources` without `cpuIdle` switches to instance-based billing.
                .set_cpu_idle(true)
                .set_startup_cpu_boost(true),
        )
        .set_startup_probe(startup_probe(spec));
    Ok(RevisionTemplate::new()
        .set_revision(revision)
        .set_labels(sanitized_labels(spec))
        .set_scaling(
            RevisionScaling::new()
                .set_min_instance_count(clamp_i32(spec.scaling.min_instances))
                .set_max_instance_count(clamp_i32(spec.scaling.max_instances)),
        )
        .set_containers([container]))
}

/// A variable whose value stays in Secret Manager: Cloud Run resolves it at start.
pub fn secret_env_var(secret: &SecretEnv) -> EnvVar {
    EnvVar::new()
        .set_name(secret.name.as_str())
        .set_value_source(
            EnvVarSource::new().set_secret_key_ref(
                SecretKeySelector::new()
                    .set_secret(names::secret_id(&secret.secret))
                    .set_version(&secret.version),
            ),
        )
}

/// All traffic to whatever revision is the latest ready one.
pub fn latest_traffic() -> TrafficTarget {
    TrafficTarget::new()
        .set_type(TrafficTargetAllocationType::Latest)
        .set_percent(100)
}

/// All traffic to one revision (a rollback, or back to the last good one).
pub fn revision_traffic(revision: &str) -> TrafficTarget {
    TrafficTarget::new()
        .set_type(TrafficTargetAllocationType::Revision)
        .set_revision(revision)
        .set_percent(100)
}

/// Service and revision labels: the spec's, in Google's alphabet, plus the deployment.
fn sanitized_labels(spec: &ReleaseSpec) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (names::label_key(k), names::label_value(v)))
        .collect();
    labels.insert(
        DEPLOYMENT_LABEL.into(),
        names::label_value(spec.deployment_id.as_str()),
    );
    labels
}

/// The spec's probe: a TCP connection to the port, tried every `period` until `timeout`
/// has passed (each try may take the whole period; Cloud Run wants timeout <= period).
fn startup_probe(spec: &ReleaseSpec) -> Probe {
    let probe = spec.startup_probe;
    let period = probe.period.as_secs().clamp(1, 240);
    let budget = probe.timeout.as_secs().max(period);
    let failures = budget.div_ceil(period);
    Probe::new()
        .set_tcp_socket(TCPSocketAction::new().set_port(i32::from(probe.port)))
        .set_period_seconds(period as i32)
        .set_timeout_seconds(period as i32)
        .set_failure_threshold(clamp_i32(u32::try_from(failures).unwrap_or(u32::MAX)))
}

/// `1000` -> `"1"`, `500` -> `"500m"` (Kubernetes quantities, as Cloud Run takes them).
fn cpu_quantity(millis: u32) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

fn clamp_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_domain::{DeploymentId, EnvVarName, ServiceName};
    use devgem_ports::{Resources, Scaling, TcpProbe};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn spec() -> ReleaseSpec {
        ReleaseSpec {
            deployment_id: DeploymentId::parse("d-0193aa7f2b3c4d5e8f9a0b1c2d3e4f50").unwrap(),
            service_name: ServiceName::parse("octo-app").unwrap(),
            artifact: Artifact::ContainerImage {
                reference: "us-central1-docker.pkg.dev/acme/devgem/octo-app:9fceb02".into(),
                digest: "sha256:3b1f0000000000000000000000000000000000000000000000000000000000aa"
                    .into(),
            },
            container_port: 8080,
            start_command: None,
            working_dir: None,
            env: BTreeMap::from([
                ("NODE_ENV".to_string(), "production".to_string()),
                ("RUST_LOG".to_string(), "info".to_string()),
            ]),
            secret_env: vec![],
            resources: Resources {
                cpu_millis: 1000,
                memory_mib: 512,
            },
            scaling: Scaling {
                min_instances: 0,
                max_instances: 10,
            },
            startup_probe: TcpProbe {
                port: 8080,
                period: Duration::from_secs(1),
                timeout: Duration::from_secs(240),
            },
            labels: BTreeMap::from([
                (
                    "devgem-deployment".to_string(),
                    "d-0193aa7f2b3c4d5e8f9a0b1c2d3e4f50".to_string(),
                ),
                ("devgem.repo".to_string(), "Octo/My.App".to_string()),
            ]),
            public: true,
            hard_coded_port: None,
            region: None,
        }
    }

    fn json(spec: &ReleaseSpec) -> serde_json::Value {
        let service = render_service(spec, &spec.first_revision()).unwrap();
        serde_json::to_value(&service).unwrap()
    }

    #[test]
    fn a_plain_release_renders_the_documented_service() {
        insta::assert_json_snapshot!("plain", json(&spec()));
    }

    #[test]
    fn secrets_become_references_to_secret_manager() {
        let mut s = spec();
        s.secret_env = vec![
            SecretEnv {
                name: EnvVarName::parse("STRIPE_KEY").unwrap(),
                secret: format!("deployments/{}/env/STRIPE_KEY", s.deployment_id),
                version: "latest".into(),
            },
            SecretEnv {
                name: EnvVarName::parse("DATABASE_URL").unwrap(),
                secret: format!("deployments/{}/env/DATABASE_URL", s.deployment_id),
                version: "3".into(),
            },
        ];
        insta::assert_json_snapshot!("with_secrets", json(&s));
    }

    #[test]
    fn resources_and_scaling_follow_the_spec() {
        let mut s = spec();
        s.resources = Resources {
            cpu_millis: 2000,
            memory_mib: 2048,
        };
        s.scaling = Scaling {
            min_instances: 1,
            max_instances: 3,
        };
        s.startup_probe = TcpProbe {
            port: 8080,
            period: Duration::from_secs(5),
            timeout: Duration::from_secs(120),
        };
        s.env.clear();
        insta::assert_json_snapshot!("two_cpus", json(&s));
        s.resources.cpu_millis = 500;
        let v = json(&s);
        assert_eq!(
            v["template"]["containers"][0]["resources"]["limits"]["cpu"],
            "500m"
        );
    }

    #[test]
    fn the_image_is_pinned_by_digest() {
        let image = image_by_digest(&spec().artifact).unwrap();
        assert_eq!(
            image,
            "us-central1-docker.pkg.dev/acme/devgem/octo-app@sha256:3b1f0000000000000000000000000000000000000000000000000000000000aa"
        );
        let registry_port = Artifact::ContainerImage {
            reference: "localhost:5000/app".into(),
            digest: "sha256:ab".into(),
        };
        assert_eq!(
            image_by_digest(&registry_port).unwrap(),
            "localhost:5000/app@sha256:ab"
        );
        let no_digest = Artifact::ContainerImage {
            reference: "r/app:latest".into(),
            digest: String::new(),
        };
        assert!(image_by_digest(&no_digest).is_err());
    }

    #[test]
    fn a_native_build_is_refused_with_the_builder_to_use() {
        let mut s = spec();
        s.artifact = Artifact::LocalBuild {
            dir: "/tmp/build".into(),
        };
        let err = render_service(&s, "octo-app-x").unwrap_err();
        match err {
            RuntimeError::Failed { hint, .. } => {
                assert!(hint.contains("DEVGEM_BUILDER=cloudbuild"))
            }
            other => panic!("{other:?}"),
        }
    }
}
