//! A stand-in for Cloud Run Admin API v2 (services, operations, revisions, IAM) and the v1
//! domain mappings, keeping services in memory. It checks each request as documented
//! (platform-contracts.md §2, §11): a create carries `serviceId` and no `name`, the image is
//! pinned by digest, the port is `http1` 8080, `cpuIdle` is set, the startup probe is TCP, an
//! update carries the current `etag` and a new revision name, a traffic change says
//! `updateMask=traffic`. What breaks a rule is answered 400 and listed in [`CloudRun::problems`].
//!
//! A service's `uri` is `{base_url}/apps/{service}/`, which this stand-in serves itself
//! (200 naming the service and the revision that takes its traffic).

use super::{Api, Request, Response, located};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Cloud Run, in memory.
#[derive(Default)]
pub struct CloudRun {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    services: BTreeMap<String, Svc>,
    operations: BTreeMap<String, Op>,
    domains: BTreeMap<String, Value>,
    /// An image fragment whose revisions never become ready, and Cloud Run's message.
    failing_images: Vec<(String, String)>,
    /// (method, path fragment): answered 429 with `Retry-After: 1`, once.
    throttled: Vec<(String, String)>,
    /// (method, path fragment, permission): answered 403 naming the permission.
    denied: Vec<(String, String, String)>,
    problems: Vec<String>,
    counter: u64,
}

struct Svc {
    name: String,
    uri: String,
    etag: u64,
    generation: u64,
    labels: Value,
    template: Value,
    traffic: Value,
    traffic_statuses: Value,
    latest_ready: String,
    latest_created: String,
    terminal: Value,
    revisions: Vec<Rev>,
    policy: Value,
}

struct Rev {
    name: String,
    create_time: String,
    labels: Value,
    template: Value,
    ready: bool,
}

struct Op {
    polls_left: u32,
    done: Value,
}

impl CloudRun {
    pub fn new() -> Self {
        Self::default()
    }

    /// Revisions whose image contains `image_fragment` never become ready; the service's
    /// `terminalCondition` then carries `message`.
    pub fn never_ready(&self, image_fragment: &str, message: &str) {
        self.lock()
            .failing_images
            .push((image_fragment.into(), message.into()));
    }

    /// The next `method` request whose path contains `fragment` is answered 429 with
    /// `Retry-After: 1`.
    pub fn throttle_once(&self, method: &str, fragment: &str) {
        self.lock().throttled.push((method.into(), fragment.into()));
    }

    /// `method` requests whose path contains `fragment` are refused for lack of `permission`.
    pub fn deny(&self, method: &str, fragment: &str, permission: &str) {
        self.lock()
            .denied
            .push((method.into(), fragment.into(), permission.into()));
    }

    /// What broke the documented contract, one line each.
    pub fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }

    /// The service's traffic as the stand-in resolved it: revision -> percent.
    pub fn serving(&self, service: &str) -> BTreeMap<String, i64> {
        let state = self.lock();
        let Some(svc) = state.services.get(service) else {
            return BTreeMap::new();
        };
        resolve(&svc.traffic_statuses, &svc.latest_ready)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

/// Revision -> percent for a list of traffic targets.
fn resolve(traffic: &Value, latest_ready: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for t in traffic.as_array().into_iter().flatten() {
        let revision = if is_latest(&t["type"]) {
            latest_ready.to_string()
        } else {
            t["revision"].as_str().unwrap_or_default().to_string()
        };
        *out.entry(revision).or_insert(0) += t["percent"].as_i64().unwrap_or(0);
    }
    out
}

fn is_latest(kind: &Value) -> bool {
    kind == 1 || kind == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
}

fn is_revision(kind: &Value) -> bool {
    kind == 2 || kind == "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
}

fn bad(problem: String) -> Response {
    Response::google_error(400, "INVALID_ARGUMENT", &problem)
}

impl State {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn time(&mut self) -> String {
        let n = self.next();
        format!("2025-05-01T12:{:02}:{:02}Z", (n / 60) % 60, n % 60)
    }

    fn problem(&mut self, problem: String) -> Response {
        self.problems.push(problem.clone());
        bad(problem)
    }

    /// The documented rules for a service template, as the first broken one.
    fn check_template(&self, service_id: &str, template: &Value) -> Option<String> {
        let container = &template["containers"][0];
        let image = container["image"].as_str().unwrap_or_default();
        let revision = template["revision"].as_str().unwrap_or_default();
        if !image.contains("@sha256:") {
            return Some(format!("the image {image:?} is not pinned by digest"));
        }
        if container["ports"] != json!([{"name": "http1", "containerPort": 8080}]) {
            return Some(format!(
                "ports must be http1 8080, got {}",
                container["ports"]
            ));
        }
        if container["resources"]["cpuIdle"] != true {
            return Some("resources without cpuIdle: true bill per instance".into());
        }
        if container["startupProbe"]["tcpSocket"]["port"] != 8080 {
            return Some(format!(
                "the startup probe must be TCP on 8080, got {}",
                container["startupProbe"]
            ));
        }
        if !revision.starts_with(&format!("{service_id}-")) {
            return Some(format!(
                "template.revision {revision:?} must be {service_id}-SUFFIX"
            ));
        }
        for env in container["env"].as_array().into_iter().flatten() {
            let has_value = env.get("value").is_some();
            let has_ref = env["valueSource"]["secretKeyRef"]["secret"].is_string();
            if has_value == has_ref {
                return Some(format!("env {env} needs exactly one of value, valueSource"));
            }
        }
        None
    }

    /// A new revision of `service_id` from `template`: ready, or failed as configured.
    /// Returns the operation's final state.
    fn roll_out(&mut self, service_id: &str, template: Value, traffic: Value) -> Value {
        let image = template["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let failure = self
            .failing_images
            .iter()
            .find(|(fragment, _)| image.contains(fragment.as_str()))
            .map(|(_, message)| message.clone());
        let create_time = self.time();
        let svc = self.services.get_mut(service_id).expect("the service");
        let revision = template["revision"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        svc.revisions.push(Rev {
            name: revision.clone(),
            create_time,
            labels: template["labels"].clone(),
            template: template.clone(),
            ready: failure.is_none(),
        });
        svc.template = template;
        svc.traffic = traffic;
        svc.generation += 1;
        svc.etag += 1;
        svc.latest_created = revision.clone();
        match failure {
            None => {
                svc.latest_ready = revision;
                svc.traffic_statuses = svc.traffic.clone();
                svc.terminal = json!({"type": "Ready", "state": "CONDITION_SUCCEEDED"});
                let response = svc.json();
                json!({"done": true, "response": with_type(response)})
            }
            Some(message) => {
                // Traffic stays where it was: the failed revision is not ready.
                svc.terminal = json!({"type": "Ready", "state": "CONDITION_FAILED",
                    "reason": "REVISION_FAILED",
                    "message": format!("Revision '{revision}' is not ready and cannot serve traffic. {message}")});
                json!({"done": true, "error": {"code": 9, "message": message}})
            }
        }
    }

    fn operation(&mut self, project: &str, location: &str, done: Value) -> Response {
        let n = self.next();
        let name = format!("projects/{project}/locations/{location}/operations/op-{n}");
        self.operations.insert(
            name.clone(),
            Op {
                polls_left: 1,
                done,
            },
        );
        Response::json(
            200,
            json!({"name": name,
                   "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Service"}}),
        )
    }
}

fn with_type(mut service: Value) -> Value {
    service["@type"] = json!("type.googleapis.com/google.cloud.run.v2.Service");
    service
}

impl Svc {
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "uid": format!("uid-{}", self.name.len()),
            "generation": self.generation.to_string(),
            "observedGeneration": self.generation.to_string(),
            "etag": format!("\"etag-{}\"", self.etag),
            "labels": self.labels,
            "template": self.template,
            "traffic": self.traffic,
            "trafficStatuses": self.traffic_statuses,
            "uri": self.uri,
            "urls": [self.uri],
            "latestReadyRevision": self.latest_ready,
            "latestCreatedRevision": self.latest_created,
            "terminalCondition": self.terminal,
            "reconciling": false,
        })
    }

    fn revision_json(&self, rev: &Rev) -> Value {
        let condition = if rev.ready {
            json!({"type": "Ready", "state": "CONDITION_SUCCEEDED"})
        } else {
            json!({"type": "Ready", "state": "CONDITION_FAILED"})
        };
        json!({
            "name": format!("{}/revisions/{}", self.name, rev.name),
            "service": self.name,
            "createTime": rev.create_time,
            "labels": rev.labels,
            "containers": rev.template["containers"],
            "conditions": [condition],
        })
    }
}

impl Api for CloudRun {
    fn handle(&self, request: &Request) -> Option<Response> {
        let segments = request.segments();
        if let ["apps", service, ..] = segments.as_slice() {
            return Some(self.app(service));
        }
        let v2 = located(&segments, "v2");
        let v1 = located(&segments, "v1");
        let mine = match (v2, v1) {
            (Some((_, _, rest)), _) => {
                matches!(rest.first(), Some(s) if s.starts_with("services") || *s == "operations")
            }
            (_, Some((_, _, rest))) => rest.first() == Some(&"domainmappings"),
            _ => false,
        };
        if !mine {
            return None;
        }
        let mut state = self.lock();
        if let Some(i) = state
            .throttled
            .iter()
            .position(|(m, f)| *m == request.method && request.path.contains(f.as_str()))
        {
            state.throttled.remove(i);
            return Some(
                Response::google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded, slow down")
                    .with_header("retry-after", "1"),
            );
        }
        if let Some((_, _, permission)) = state
            .denied
            .iter()
            .find(|(m, f, _)| *m == request.method && request.path.contains(f.as_str()))
        {
            let message = format!(
                "Permission '{permission}' denied on resource '{}' (or it may not exist).",
                request.path.trim_start_matches("/v2/")
            );
            return Some(Response::google_error(403, "PERMISSION_DENIED", &message));
        }
        if !request
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
        {
            let problem = format!("{} {} has no bearer token", request.method, request.path);
            return Some(state.problem(problem));
        }
        Some(match (v2, v1) {
            (Some((project, location, rest)), _) => state.v2(request, project, location, rest),
            (_, Some((project, location, rest))) => state.domain(request, project, location, rest),
            _ => unreachable!("checked above"),
        })
    }
}

impl CloudRun {
    fn app(&self, service: &str) -> Response {
        let state = self.lock();
        match state.services.get(service) {
            None => Response::text(404, "Error: Page not found"),
            Some(svc) => {
                let serving = resolve(&svc.traffic_statuses, &svc.latest_ready);
                let revision = serving
                    .iter()
                    .max_by_key(|(_, p)| **p)
                    .map(|(r, _)| r.clone())
                    .unwrap_or_default();
                Response::text(200, format!("service {service} revision {revision}\n"))
            }
        }
    }
}

impl State {
    fn v2(&mut self, request: &Request, project: &str, location: &str, rest: &[&str]) -> Response {
        let parent = format!("projects/{project}/locations/{location}");
        let method = request.method.as_str();
        match (method, rest) {
            ("GET", ["operations", op]) => {
                let name = format!("{parent}/operations/{op}");
                let Some(entry) = self.operations.get_mut(&name) else {
                    return Response::google_error(404, "NOT_FOUND", &format!("{name} not found"));
                };
                if entry.polls_left > 0 {
                    entry.polls_left -= 1;
                    return Response::json(
                        200,
                        json!({"name": name,
                        "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Service"}}),
                    );
                }
                let mut done = entry.done.clone();
                done["name"] = json!(name);
                Response::json(200, done)
            }
            ("POST", ["services"]) => self.create(request, project, location),
            ("GET", ["services"]) => {
                let services: Vec<Value> = self.services.values().map(Svc::json).collect();
                Response::json(200, json!({"services": services}))
            }
            ("GET", ["services", id]) if id.ends_with(":getIamPolicy") => {
                let id = id.trim_end_matches(":getIamPolicy");
                match self.services.get(id) {
                    None => not_found(id),
                    Some(svc) => Response::json(200, svc.policy.clone()),
                }
            }
            ("POST", ["services", id]) if id.ends_with(":setIamPolicy") => {
                let id = id.trim_end_matches(":setIamPolicy").to_string();
                let body = request.json();
                let Some(svc) = self.services.get_mut(&id) else {
                    return not_found(&id);
                };
                if body["policy"]["etag"] != svc.policy["etag"] {
                    let problem = format!(
                        "setIamPolicy without the etag read by getIamPolicy: {}",
                        body["policy"]
                    );
                    return self.problem(problem);
                }
                let mut policy = body["policy"].clone();
                policy["etag"] = json!("BwYAAAAAAAE=");
                policy["version"] = json!(1);
                svc.policy = policy.clone();
                Response::json(200, policy)
            }
            ("GET", ["services", id]) => match self.services.get(*id) {
                None => not_found(id),
                Some(svc) => Response::json(200, svc.json()),
            },
            ("PATCH", ["services", id]) => self.update(request, project, location, id),
            ("DELETE", ["services", id]) => {
                if self.services.remove(*id).is_none() {
                    return not_found(id);
                }
                self.operation(
                    project,
                    location,
                    json!({"done": true,
                    "response": {"@type": "type.googleapis.com/google.cloud.run.v2.Service"}}),
                )
            }
            ("GET", ["services", id, "revisions"]) => match self.services.get(*id) {
                None => not_found(id),
                Some(svc) => {
                    let revisions: Vec<Value> = svc
                        .revisions
                        .iter()
                        .rev()
                        .map(|r| svc.revision_json(r))
                        .collect();
                    Response::json(200, json!({"revisions": revisions}))
                }
            },
            _ => Response::google_error(
                404,
                "NOT_FOUND",
                &format!(
                    "the Cloud Run stand-in has no route for {method} {}",
                    request.path
                ),
            ),
        }
    }

    fn create(&mut self, request: &Request, project: &str, location: &str) -> Response {
        let Some(id) = request.query.get("serviceId").cloned() else {
            return self.problem("create without serviceId".into());
        };
        let body = request.json();
        if body.get("name").is_some_and(|n| n != "") {
            return self.problem(format!("create with a name ({}): omit it", body["name"]));
        }
        if let Some(problem) = self.check_template(&id, &body["template"]) {
            return self.problem(problem);
        }
        if self.services.contains_key(&id) {
            return Response::google_error(
                409,
                "ALREADY_EXISTS",
                &format!(
                    "Resource 'projects/{project}/locations/{location}/services/{id}' already exists."
                ),
            );
        }
        let traffic = if body["traffic"].is_array() {
            body["traffic"].clone()
        } else {
            json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}])
        };
        self.services.insert(
            id.clone(),
            Svc {
                name: format!("projects/{project}/locations/{location}/services/{id}"),
                uri: format!("{}/apps/{id}/", request.base_url),
                etag: 1,
                generation: 0,
                labels: body["labels"].clone(),
                template: Value::Null,
                traffic: json!([]),
                traffic_statuses: json!([]),
                latest_ready: String::new(),
                latest_created: String::new(),
                terminal: Value::Null,
                revisions: Vec::new(),
                policy: json!({"version": 1, "etag": "BwYAAAAAAAA="}),
            },
        );
        let done = self.roll_out(&id, body["template"].clone(), traffic);
        self.operation(project, location, done)
    }

    fn update(&mut self, request: &Request, project: &str, location: &str, id: &str) -> Response {
        let body = request.json();
        let Some(svc) = self.services.get(id) else {
            return not_found(id);
        };
        let expected_name = svc.name.clone();
        if body["name"] != expected_name.as_str() {
            return self.problem(format!(
                "PATCH body names {} instead of {expected_name}",
                body["name"]
            ));
        }
        if request.query.get("updateMask").map(String::as_str) == Some("traffic") {
            let known: Vec<String> = svc.revisions.iter().map(|r| r.name.clone()).collect();
            for t in body["traffic"].as_array().into_iter().flatten() {
                if is_revision(&t["type"]) && !known.iter().any(|k| t["revision"] == k.as_str()) {
                    return Response::google_error(
                        400,
                        "INVALID_ARGUMENT",
                        &format!("Revision {} does not exist", t["revision"]),
                    );
                }
            }
            let svc = self.services.get_mut(id).expect("the service");
            svc.traffic = body["traffic"].clone();
            svc.traffic_statuses = body["traffic"].clone();
            svc.etag += 1;
            let done = json!({"done": true, "response": with_type(svc.json())});
            return self.operation(project, location, done);
        }
        if let Some(mask) = request.query.get("updateMask") {
            return self.problem(format!(
                "the stand-in knows updateMask=traffic only, got {mask}"
            ));
        }
        let current_etag = format!("\"etag-{}\"", svc.etag);
        if body["etag"] != current_etag.as_str() {
            return Response::google_error(
                409,
                "ABORTED",
                &format!("etag {} is stale (now {current_etag})", body["etag"]),
            );
        }
        if let Some(problem) = self.check_template(id, &body["template"]) {
            return self.problem(problem);
        }
        let revision = body["template"]["revision"].as_str().unwrap_or_default();
        let svc = self.services.get_mut(id).expect("the service");
        if svc.revisions.iter().any(|r| r.name == revision) {
            return Response::google_error(
                409,
                "ALREADY_EXISTS",
                &format!(
                    "Revision named '{revision}' with different configuration already exists."
                ),
            );
        }
        svc.labels = body["labels"].clone();
        let done = self.roll_out(id, body["template"].clone(), body["traffic"].clone());
        self.operation(project, location, done)
    }

    fn domain(
        &mut self,
        request: &Request,
        project: &str,
        _location: &str,
        rest: &[&str],
    ) -> Response {
        match (request.method.as_str(), rest) {
            ("POST", ["domainmappings"]) => {
                let body = request.json();
                let domain = body["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let route = body["spec"]["routeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if body["apiVersion"] != "domains.cloudrun.com/v1"
                    || body["kind"] != "DomainMapping"
                {
                    return self.problem(format!("a domain mapping needs apiVersion domains.cloudrun.com/v1 and kind DomainMapping: {body}"));
                }
                if body["metadata"]["namespace"] != project {
                    return self.problem(format!("metadata.namespace must be {project}"));
                }
                if !self.services.contains_key(&route) {
                    return Response::google_error(
                        404,
                        "NOT_FOUND",
                        &format!("service {route} not found"),
                    );
                }
                if self.domains.contains_key(&domain) {
                    return Response::google_error(
                        409,
                        "ALREADY_EXISTS",
                        &format!("Resource '{domain}' already exists."),
                    );
                }
                let mapping = mapping(project, &domain, &route);
                self.domains.insert(domain, mapping.clone());
                Response::json(200, mapping)
            }
            ("GET", ["domainmappings"]) => {
                let items: Vec<Value> = self.domains.values().cloned().collect();
                Response::json(
                    200,
                    json!({"apiVersion": "domains.cloudrun.com/v1",
                    "kind": "DomainMappingList", "items": items, "metadata": {}}),
                )
            }
            ("GET", ["domainmappings", domain]) => match self.domains.get(*domain) {
                Some(m) => Response::json(200, m.clone()),
                None => not_found(domain),
            },
            _ => Response::google_error(404, "NOT_FOUND", "no such domain mapping route"),
        }
    }
}

/// A mapping waiting for its certificate, with the records Google hands out: a CNAME for a
/// subdomain, four A and four AAAA for an apex domain.
fn mapping(project: &str, domain: &str, route: &str) -> Value {
    let labels: Vec<&str> = domain.split('.').collect();
    let records = if labels.len() > 2 {
        json!([{"name": labels[0], "type": "CNAME", "rrdata": "ghs.googlehosted.com."}])
    } else {
        let mut r: Vec<Value> = ["32", "34", "36", "38"]
            .iter()
            .map(|n| json!({"type": "A", "rrdata": format!("216.239.{n}.21")}))
            .collect();
        r.extend(
            ["32", "34", "36", "38"]
                .iter()
                .map(|n| json!({"type": "AAAA", "rrdata": format!("2001:4860:4802:{n}::15")})),
        );
        Value::Array(r)
    };
    json!({"apiVersion": "domains.cloudrun.com/v1", "kind": "DomainMapping",
        "metadata": {"name": domain, "namespace": project, "generation": 1},
        "spec": {"routeName": route, "certificateMode": "AUTOMATIC"},
        "status": {"observedGeneration": 1, "mappedRouteName": route,
            "conditions": [{"type": "Ready", "status": "Unknown", "reason": "CertificatePending",
                            "message": "Waiting for certificate provisioning. You must configure your DNS records for certificate issuance to begin."}],
            "resourceRecords": records}})
}

fn not_found(what: &str) -> Response {
    Response::google_error(
        404,
        "NOT_FOUND",
        &format!("Resource '{what}' was not found"),
    )
}
