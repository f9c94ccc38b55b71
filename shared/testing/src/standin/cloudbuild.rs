//! A stand-in for Cloud Build v1 (contracts §1): the regional create answers an Operation
//! whose `metadata.build` carries the id, `builds.get` moves QUEUED -> WORKING -> the chosen
//! end (SUCCESS with `results.images` digests, or FAILURE with `failureInfo` and log lines),
//! `:cancel` checks its documented body, and the build's log is served on Cloud Logging's
//! `entries:list` for `resource.type="build"` filters only. [`Faults`] answers chosen requests
//! with canned errors (429 with Retry-After, 403 naming a permission) for any API.

use super::storage::{StorageStandin, base64};
use super::{Api, Request, Response, located};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How a build ends.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every step succeeds; the images are pushed.
    Success,
    /// The step with this id fails with `detail`, after writing `log` to the build's log.
    Failure {
        step: String,
        detail: String,
        log: Vec<String>,
    },
}

/// How builds advance.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Each build answers this many gets QUEUED, as many WORKING, then ends.
    Polls(u32),
    /// A build stays WORKING until the test calls [`CloudBuildStandin::finish`].
    Manual,
}

struct Stored {
    project: String,
    location: String,
    build: Value,
    status: &'static str,
    gets: u32,
}

struct State {
    builds: BTreeMap<String, Stored>,
    created: u32,
    outcome: Outcome,
    progress: Progress,
    cancels: Vec<String>,
}

/// The builds created, by id.
pub struct CloudBuildStandin {
    state: Mutex<State>,
    storage: Option<Arc<StorageStandin>>,
}

/// The lines every successful build logs.
pub const SUCCESS_LOG: [&str; 3] = [
    "Fetching storage object or repository",
    "#5 [build 2/4] RUN npm ci",
    "DONE",
];

impl Default for CloudBuildStandin {
    fn default() -> Self {
        Self::new()
    }
}

impl CloudBuildStandin {
    /// Builds succeed after one QUEUED and one WORKING get.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                builds: BTreeMap::new(),
                created: 0,
                outcome: Outcome::Success,
                progress: Progress::Polls(1),
                cancels: Vec::new(),
            }),
            storage: None,
        }
    }

    /// Checks that a `storageSource` names an object uploaded to `storage` at that generation.
    pub fn with_storage(mut self, storage: Arc<StorageStandin>) -> Self {
        self.storage = Some(storage);
        self
    }

    pub fn with_outcome(self, outcome: Outcome) -> Self {
        self.state.lock().unwrap().outcome = outcome;
        self
    }

    pub fn with_progress(self, progress: Progress) -> Self {
        self.state.lock().unwrap().progress = progress;
        self
    }

    /// The ids of the builds created, oldest first.
    pub fn build_ids(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let mut ids: Vec<(u32, String)> = state
            .builds
            .iter()
            .map(|(id, b)| (b.build["_n"].as_u64().unwrap_or(0) as u32, id.clone()))
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// How many times build `id` was read.
    pub fn gets(&self, id: &str) -> u32 {
        self.state
            .lock()
            .unwrap()
            .builds
            .get(id)
            .map_or(0, |b| b.gets)
    }

    /// The builds cancelled through `:cancel`.
    pub fn cancelled(&self) -> Vec<String> {
        self.state.lock().unwrap().cancels.clone()
    }

    /// Ends build `id` now with the configured outcome (for [`Progress::Manual`]).
    pub fn finish(&self, id: &str) {
        let mut state = self.state.lock().unwrap();
        let outcome = state.outcome.clone();
        if let Some(stored) = state.builds.get_mut(id) {
            stored.status = end_status(&outcome);
        }
    }

    /// The push Cloud Build's `cloud-builds` topic delivers for build `id` as it is now
    /// (contracts §1.6): the Build JSON in `data`, `buildId` and `status` as attributes.
    pub fn push_body(&self, id: &str) -> Vec<u8> {
        let state = self.state.lock().unwrap();
        let stored = state.builds.get(id).expect("a build the stand-in created");
        let build = rendered(id, stored, &state.outcome);
        json!({
            "message": {
                "attributes": {"buildId": id, "status": stored.status},
                "data": base64(build.to_string().as_bytes()),
                "messageId": format!("{}-{}", id, stored.status),
                "publishTime": "2025-05-01T12:00:05.000Z",
            },
            "subscription": format!("projects/{}/subscriptions/cloud-builds-to-devgem", stored.project),
        })
        .to_string()
        .into_bytes()
    }

    fn create(&self, request: &Request, project: &str, location: &str) -> Response {
        if request
            .query
            .get("projectId")
            .is_some_and(|p| !p.is_empty() && p != project)
        {
            return invalid("projectId in the query differs from the path");
        }
        let body = request.json();
        if let Err(problem) = self.check_build(&body, project) {
            return invalid(&problem);
        }
        let mut state = self.state.lock().unwrap();
        state.created += 1;
        let n = state.created;
        let id = format!("{n:08x}-8585-44fe-a7dc-765502e5a8c0");
        let mut build = body;
        build["_n"] = json!(n);
        let stored = Stored {
            project: project.to_string(),
            location: location.to_string(),
            build,
            status: "QUEUED",
            gets: 0,
        };
        let mut shown = rendered(&id, &stored, &state.outcome);
        shown["@type"] = json!("type.googleapis.com/google.devtools.cloudbuild.v1.Build");
        state.builds.insert(id.clone(), stored);
        Response::json(
            200,
            json!({
                "name": format!("projects/{project}/locations/{location}/operations/{}", base64(id.as_bytes())),
                "metadata": {
                    "@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata",
                    "build": without_type(shown),
                },
            }),
        )
    }

    /// The documented rules of a Build body (contracts §1.1, §1.8, §1.10).
    fn check_build(&self, body: &Value, project: &str) -> Result<(), String> {
        let steps = body["steps"].as_array().ok_or("steps is required")?;
        if steps.is_empty() {
            return Err("steps is empty".into());
        }
        for step in steps {
            if step["name"].as_str().is_none_or(str::is_empty) {
                return Err(format!("a step without a name: {step}"));
            }
        }
        let tags: Vec<&str> = body["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !tags.contains(&"devgem") || !tags.iter().any(|t| t.starts_with("deploy-")) {
            return Err(format!("tags {tags:?} lack devgem and deploy-<id>"));
        }
        for tag in &tags {
            let ok = tag.len() <= 128
                && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(format!("tag {tag:?} is not valid"));
            }
        }
        let logging = &body["options"]["logging"];
        if logging != &json!("CLOUD_LOGGING_ONLY") && logging != &json!(5) {
            return Err(format!(
                "options.logging is {logging}, not CLOUD_LOGGING_ONLY"
            ));
        }
        let timeout = body["timeout"].as_str().unwrap_or_default();
        let is_duration = timeout
            .strip_suffix('s')
            .is_some_and(|s| s.parse::<f64>().is_ok());
        if !is_duration {
            return Err(format!("timeout {timeout:?} is not a Duration"));
        }
        match &body["source"]["storageSource"] {
            Value::Null => {
                if !steps.iter().any(|s| s["id"] == "fetch") {
                    return Err("no storageSource and no fetch step".into());
                }
            }
            source => {
                let bucket = source["bucket"].as_str().ok_or("storageSource.bucket")?;
                let object = source["object"].as_str().ok_or("storageSource.object")?;
                let generation = source["generation"]
                    .as_str()
                    .and_then(|g| g.parse::<i64>().ok())
                    .ok_or("storageSource.generation must be an int64 string")?;
                if !(object.ends_with(".tgz") || object.ends_with(".tar.gz")) {
                    return Err(format!("{object} is not a gzipped tarball"));
                }
                if let Some(storage) = &self.storage {
                    match storage.object(bucket, object) {
                        Some((g, _)) if g == generation => {}
                        Some((g, _)) => {
                            return Err(format!("gs://{bucket}/{object} is at generation {g}"));
                        }
                        None => return Err(format!("gs://{bucket}/{object} does not exist")),
                    }
                }
            }
        }
        // Each secret env must be used by a step (Cloud Build refuses unused ones).
        if let Some(secrets) = body["availableSecrets"]["secretManager"].as_array() {
            for secret in secrets {
                let env = secret["env"].as_str().unwrap_or_default();
                let version = secret["versionName"].as_str().unwrap_or_default();
                if !version.starts_with(&format!("projects/{project}/secrets/"))
                    || !version.contains("/versions/")
                {
                    return Err(format!("versionName {version:?} is not a secret version"));
                }
                let used = steps.iter().any(|s| {
                    s["secretEnv"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|v| v == env))
                });
                if !used {
                    return Err(format!("secret env {env} is used by no step"));
                }
            }
        }
        if let Some(images) = body["images"].as_array() {
            for image in images.iter().filter_map(Value::as_str) {
                if !image.contains(&format!("-docker.pkg.dev/{project}/")) {
                    return Err(format!("image {image} is not in this project's registry"));
                }
            }
        }
        Ok(())
    }

    fn get(&self, project: &str, location: &str, id: &str) -> Response {
        let mut state = self.state.lock().unwrap();
        let progress = state.progress;
        let outcome = state.outcome.clone();
        let Some(stored) = state.builds.get_mut(id) else {
            return Response::google_error(404, "NOT_FOUND", &format!("Build {id} not found"));
        };
        if stored.project != project || stored.location != location {
            return Response::google_error(
                404,
                "NOT_FOUND",
                "a regional build is read on its regional path",
            );
        }
        stored.gets += 1;
        if !is_terminal(stored.status) {
            stored.status = match progress {
                Progress::Polls(n) if stored.gets <= n => "QUEUED",
                Progress::Polls(n) if stored.gets <= 2 * n => "WORKING",
                Progress::Polls(_) => end_status(&outcome),
                Progress::Manual if stored.gets <= 1 => "QUEUED",
                Progress::Manual => "WORKING",
            };
        }
        Response::json(200, without_type(rendered(id, stored, &outcome)))
    }

    fn cancel(&self, request: &Request, project: &str, location: &str, id: &str) -> Response {
        let body = request.json();
        let name = format!("projects/{project}/locations/{location}/builds/{id}");
        if body["projectId"] != json!(project) || body["id"] != json!(id) {
            return invalid(&format!("the cancel body needs projectId and id: {body}"));
        }
        if !body["name"].is_null() && body["name"] != json!(name) {
            return invalid(&format!("the cancel body names {}", body["name"]));
        }
        let mut state = self.state.lock().unwrap();
        let outcome = state.outcome.clone();
        let Some(stored) = state.builds.get_mut(id) else {
            return Response::google_error(404, "NOT_FOUND", &format!("Build {id} not found"));
        };
        if is_terminal(stored.status) {
            return Response::google_error(
                400,
                "FAILED_PRECONDITION",
                &format!("Build {id} has already finished"),
            );
        }
        stored.status = "CANCELLED";
        let shown = rendered(id, stored, &outcome);
        state.cancels.push(id.to_string());
        Response::json(200, without_type(shown))
    }

    /// Cloud Logging's `entries:list` for a build's log (contracts §3.3).
    fn entries(&self, request: &Request) -> Option<Response> {
        let body = request.json();
        let filter = body["filter"].as_str()?;
        if !filter.contains("resource.type=\"build\"") {
            return None;
        }
        let Some(id) = filter
            .split("resource.labels.build_id=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            return Some(invalid("the filter names no resource.labels.build_id"));
        };
        let state = self.state.lock().unwrap();
        let Some(stored) = state.builds.get(id) else {
            return Some(Response::json(200, json!({})));
        };
        let project = format!("projects/{}", stored.project);
        if !body["resourceNames"]
            .as_array()
            .is_some_and(|r| r.iter().any(|n| n == &json!(project)))
        {
            return Some(invalid(&format!("resourceNames must name {project}")));
        }
        // A build writes its log once it runs; each line keeps its insertId across reads.
        let lines: Vec<String> = match (stored.status, &state.outcome) {
            ("QUEUED", _) => Vec::new(),
            (_, Outcome::Failure { log, .. }) => log.clone(),
            (_, Outcome::Success) => SUCCESS_LOG.iter().map(|l| l.to_string()).collect(),
        };
        let page_size = body["pageSize"].as_u64().unwrap_or(50).clamp(1, 1000) as usize;
        let offset: usize = body["pageToken"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let entries: Vec<Value> = lines
            .iter()
            .enumerate()
            .skip(offset)
            .take(page_size)
            .map(|(n, line)| {
                json!({
                    "logName": format!("{project}/logs/cloudbuild"),
                    "resource": {"type": "build", "labels": {"build_id": id, "project_id": stored.project}},
                    "textPayload": line,
                    "insertId": format!("{id}-{n}"),
                    "timestamp": format!("2025-05-01T12:00:{:02}.000Z", n % 60),
                    "severity": "INFO",
                })
            })
            .collect();
        let next = if offset + page_size < lines.len() {
            (offset + page_size).to_string()
        } else {
            String::new()
        };
        let mut answer = json!({"entries": entries});
        if !next.is_empty() {
            answer["nextPageToken"] = json!(next);
        }
        Some(Response::json(200, answer))
    }
}

impl Api for CloudBuildStandin {
    fn handle(&self, request: &Request) -> Option<Response> {
        if request.method == "POST" && request.path == "/v2/entries:list" {
            return self.entries(request);
        }
        let segments = request.segments();
        let (project, location, rest) = located(&segments, "v1")?;
        match (request.method.as_str(), rest) {
            ("POST", ["builds"]) => Some(self.create(request, project, location)),
            ("GET", ["builds", id]) => Some(self.get(project, location, id)),
            ("POST", ["builds", id_cancel]) => {
                let id = id_cancel.strip_suffix(":cancel")?;
                Some(self.cancel(request, project, location, id))
            }
            _ => None,
        }
    }
}

fn is_terminal(status: &str) -> bool {
    matches!(
        status,
        "SUCCESS" | "FAILURE" | "INTERNAL_ERROR" | "TIMEOUT" | "CANCELLED" | "EXPIRED"
    )
}

fn end_status(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "SUCCESS",
        Outcome::Failure { .. } => "FAILURE",
    }
}

fn without_type(mut build: Value) -> Value {
    if let Some(map) = build.as_object_mut() {
        map.remove("@type");
    }
    build
}

/// The Build as `builds.get` answers it now: the request's fields, the output-only ones, and
/// per-step statuses and results that follow the status.
fn rendered(id: &str, stored: &Stored, outcome: &Outcome) -> Value {
    let mut build = stored.build.clone();
    if let Some(map) = build.as_object_mut() {
        map.remove("_n");
    }
    let (project, location) = (&stored.project, &stored.location);
    build["id"] = json!(id);
    build["name"] = json!(format!(
        "projects/{project}/locations/{location}/builds/{id}"
    ));
    build["projectId"] = json!(project);
    build["status"] = json!(stored.status);
    build["createTime"] = json!("2025-05-01T12:00:00.123Z");
    build["logUrl"] = json!(format!(
        "https://console.cloud.google.com/cloud-build/builds;region={location}/{id}?project={project}"
    ));
    // Enums the client sent as numbers come back as names.
    build["options"]["logging"] = json!("CLOUD_LOGGING_ONLY");
    let failed_step = match outcome {
        Outcome::Failure { step, .. } if stored.status == "FAILURE" => Some(step.clone()),
        _ => None,
    };
    if let Some(steps) = build["steps"].as_array_mut() {
        let mut reached_failure = false;
        for step in steps.iter_mut() {
            let status = match stored.status {
                "SUCCESS" => "SUCCESS",
                "FAILURE" if reached_failure => "QUEUED",
                "FAILURE"
                    if Some(step["id"].as_str().unwrap_or_default().to_string()) == failed_step =>
                {
                    reached_failure = true;
                    "FAILURE"
                }
                "FAILURE" => "SUCCESS",
                "CANCELLED" => "CANCELLED",
                _ => "QUEUED",
            };
            step["status"] = json!(status);
        }
    }
    match stored.status {
        "SUCCESS" => {
            let images: Vec<Value> = build["images"]
                .as_array()
                .map(|images| {
                    images
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|name| json!({"name": name, "digest": digest_of(name)}))
                        .collect()
                })
                .unwrap_or_default();
            // kaniko's flow: the `digest` step copies the pushed digest to its output.
            let outputs: Vec<Value> = build["steps"]
                .as_array()
                .map(|steps| {
                    steps
                        .iter()
                        .map(|s| {
                            if s["id"] == "digest" {
                                json!(base64(digest_of(id).as_bytes()))
                            } else {
                                json!("")
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            build["results"] = json!({"images": images, "buildStepOutputs": outputs});
            build["finishTime"] = json!("2025-05-01T12:03:14.000Z");
        }
        "FAILURE" => {
            if let Outcome::Failure { step, detail, .. } = outcome {
                let index = build["steps"]
                    .as_array()
                    .and_then(|s| s.iter().position(|s| s["id"] == json!(step)))
                    .unwrap_or(0);
                let name = build["steps"][index]["name"].clone();
                build["statusDetail"] = json!(format!(
                    "Build step {index} {name} failed: step exited with non-zero status: 1"
                ));
                build["failureInfo"] = json!({"type": "USER_BUILD_STEP", "detail": detail});
            }
        }
        _ => {}
    }
    build
}

/// A stable `sha256:` digest for a pushed name.
fn digest_of(name: &str) -> String {
    let mut hex = String::new();
    let mut seed = super::storage::crc32c(name.as_bytes());
    while hex.len() < 64 {
        seed = super::storage::crc32c(&seed.to_be_bytes());
        hex.push_str(&format!("{seed:08x}"));
    }
    format!("sha256:{hex}")
}

/// Canned answers for chosen requests, each used once, whatever the API: put it first in the
/// stand-in's list.
#[derive(Default)]
pub struct Faults {
    queue: Mutex<Vec<(String, String, Response)>>,
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers the next `method` request whose path contains `fragment` with `response`.
    pub fn once(&self, method: &str, fragment: &str, response: Response) {
        self.queue
            .lock()
            .unwrap()
            .push((method.into(), fragment.into(), response));
    }

    /// How many canned answers were not used yet.
    pub fn pending(&self) -> usize {
        self.queue.lock().unwrap().len()
    }
}

impl Api for Faults {
    fn handle(&self, request: &Request) -> Option<Response> {
        let mut queue = self.queue.lock().unwrap();
        let at = queue
            .iter()
            .position(|(m, f, _)| *m == request.method && request.path.contains(f.as_str()))?;
        Some(queue.remove(at).2)
    }
}

/// Google's 429: `Retry-After` in seconds and a `RetryInfo` detail.
pub fn too_many_requests(retry_after_secs: u64) -> Response {
    Response::json(
        429,
        json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "message": "Quota exceeded for quota metric 'Build requests' of service 'cloudbuild.googleapis.com'.",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                         "retryDelay": format!("{retry_after_secs}s")}]}}),
    )
    .with_header("retry-after", &retry_after_secs.to_string())
}

/// Google's 403 for a missing permission on `resource`, naming it as Google does.
pub fn permission_denied(permission: &str, resource: &str) -> Response {
    Response::json(
        403,
        json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
            "message": format!("Permission '{permission}' denied on resource '{resource}' (or it may not exist)."),
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                         "reason": "IAM_PERMISSION_DENIED", "domain": "iam.googleapis.com",
                         "metadata": {"permission": permission, "resource": resource}}]}}),
    )
}

fn invalid(problem: &str) -> Response {
    Response::google_error(400, "INVALID_ARGUMENT", &format!("stand-in: {problem}"))
}
