//! A stand-in for Secret Manager v1: create a secret (`?secretId=`, automatic replication),
//! add versions, access a version (a number or `latest`), delete a secret. It checks each documented request
//! and keeps every version, so `access` of `latest` answers the newest one.

use super::{Api, Request, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One secret as the stand-in keeps it.
#[derive(Debug, Clone, Default)]
struct StoredSecret {
    labels: Value,
    /// The payloads (base64, as sent) with their checksums, oldest first: version n is
    /// `versions[n - 1]`.
    versions: Vec<(String, Option<String>)>,
}

/// Secret Manager for one project.
#[derive(Debug, Default)]
pub struct SecretManager {
    project: String,
    secrets: Mutex<BTreeMap<String, StoredSecret>>,
    /// Permissions the caller lacks: a request that needs one is answered 403.
    denied: Mutex<Vec<String>>,
    /// The IAM policy set on each secret.
    policies: Mutex<BTreeMap<String, Value>>,
}

/// The permission each operation needs, as Google names it in a 403.
const CREATE: &str = "secretmanager.secrets.create";
const ADD_VERSION: &str = "secretmanager.versions.add";
const ACCESS: &str = "secretmanager.versions.access";
const DELETE: &str = "secretmanager.secrets.delete";

impl SecretManager {
    pub fn new(project: &str) -> Self {
        Self {
            project: project.to_string(),
            ..Self::default()
        }
    }

    /// From now on, requests that need `permission` (`secretmanager.versions.access`...) are
    /// refused with 403 PERMISSION_DENIED.
    pub fn deny(&self, permission: &str) {
        self.denied.lock().unwrap().push(permission.to_string());
    }

    /// How many versions secret `id` has (0 when it does not exist).
    pub fn version_count(&self, id: &str) -> usize {
        self.secrets
            .lock()
            .unwrap()
            .get(id)
            .map_or(0, |s| s.versions.len())
    }

    /// The IAM policy last set on secret `id`.
    pub fn policy(&self, id: &str) -> Option<Value> {
        self.policies.lock().unwrap().get(id).cloned()
    }

    /// `setIamPolicy`: the body must be `{"policy": {"bindings": [{"role", "members"}]}}` on a
    /// secret that exists.
    fn set_policy(&self, request: &Request, id: &str) -> Response {
        if !self.secrets.lock().unwrap().contains_key(id) {
            return not_found(id);
        }
        let body = request.json();
        let bindings_ok = body["policy"]["bindings"].as_array().is_some_and(|b| {
            b.iter().all(|binding| {
                binding["role"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("roles/"))
                    && binding["members"].as_array().is_some_and(|m| !m.is_empty())
            })
        });
        if !bindings_ok {
            return bad_request("setIamPolicy needs policy.bindings[] with a role and members");
        }
        let policy = body["policy"].clone();
        self.policies
            .lock()
            .unwrap()
            .insert(id.to_string(), policy.clone());
        Response::json(200, policy)
    }

    /// The labels secret `id` was created with.
    pub fn labels(&self, id: &str) -> Option<Value> {
        self.secrets
            .lock()
            .unwrap()
            .get(id)
            .map(|s| s.labels.clone())
    }

    fn refused(&self, permission: &str, resource: &str) -> Option<Response> {
        let denied = self.denied.lock().unwrap();
        denied.iter().any(|p| p == permission).then(|| {
            Response::google_error(
                403,
                "PERMISSION_DENIED",
                &format!(
                    "Permission '{permission}' denied for resource '{resource}' (or it may not \
                     exist)."
                ),
            )
        })
    }

    fn create(&self, request: &Request, secret_id: Option<&String>) -> Response {
        let Some(id) = secret_id.filter(|id| valid_secret_id(id)) else {
            return bad_request("secretId must be 1 to 255 letters, digits, '_' or '-'");
        };
        let body = request.json();
        if !body["replication"]["automatic"].is_object() {
            return bad_request("replication.automatic must be set (an object)");
        }
        let labels = body.get("labels").cloned().unwrap_or(json!({}));
        let labels_ok = labels.as_object().is_some_and(|l| {
            l.iter().all(|(k, v)| {
                valid_label(k, true) && v.as_str().is_some_and(|v| valid_label(v, false))
            })
        });
        if !labels_ok {
            return bad_request(
                "labels must map lowercase keys to lowercase values of at most 63 characters",
            );
        }
        let name = format!("projects/{}/secrets/{id}", self.project);
        if let Some(refused) = self.refused(CREATE, &name) {
            return refused;
        }
        let mut secrets = self.secrets.lock().unwrap();
        if secrets.contains_key(id) {
            return Response::google_error(
                409,
                "ALREADY_EXISTS",
                &format!("Secret [{name}] already exists."),
            );
        }
        secrets.insert(
            id.clone(),
            StoredSecret {
                labels: labels.clone(),
                versions: Vec::new(),
            },
        );
        Response::json(
            200,
            json!({
                "name": name,
                "replication": {"automatic": {}},
                "createTime": "2025-05-01T12:00:00.000000Z",
                "labels": labels,
                "etag": "\"1\"",
            }),
        )
    }

    fn add_version(&self, request: &Request, id: &str) -> Response {
        let body = request.json();
        let Some(data) = body["payload"]["data"].as_str().filter(|d| is_base64(d)) else {
            return bad_request("payload.data must be base64");
        };
        let crc = match &body["payload"]["dataCrc32c"] {
            Value::Null => None,
            Value::String(s) if s.parse::<u64>().is_ok() => Some(s.clone()),
            _ => return bad_request("payload.dataCrc32c must be an int64 as a decimal string"),
        };
        let name = format!("projects/{}/secrets/{id}", self.project);
        if let Some(refused) = self.refused(ADD_VERSION, &name) {
            return refused;
        }
        let mut secrets = self.secrets.lock().unwrap();
        let Some(secret) = secrets.get_mut(id) else {
            return not_found(&name);
        };
        secret.versions.push((data.to_string(), crc));
        Response::json(
            200,
            json!({
                "name": format!("{name}/versions/{}", secret.versions.len()),
                "createTime": "2025-05-01T12:00:00.000000Z",
                "state": "ENABLED",
                "replicationStatus": {"automatic": {}},
                "etag": "\"1\"",
            }),
        )
    }

    /// `secrets.delete`: the secret and all its versions go; answers `{}` (Empty).
    fn delete(&self, id: &str) -> Response {
        let name = format!("projects/{}/secrets/{id}", self.project);
        if let Some(refused) = self.refused(DELETE, &name) {
            return refused;
        }
        if self.secrets.lock().unwrap().remove(id).is_none() {
            return not_found(&name);
        }
        self.policies.lock().unwrap().remove(id);
        Response::json(200, json!({}))
    }

    fn access(&self, id: &str, version: &str) -> Response {
        let name = format!("projects/{}/secrets/{id}/versions/{version}", self.project);
        if let Some(refused) = self.refused(ACCESS, &name) {
            return refused;
        }
        let secrets = self.secrets.lock().unwrap();
        let Some(secret) = secrets.get(id) else {
            return not_found(&name);
        };
        let number = match version {
            "latest" => secret.versions.len(),
            n => match n.parse::<usize>() {
                Ok(n) => n,
                Err(_) => return bad_request("the version must be a number or `latest`"),
            },
        };
        let Some((data, crc)) = number.checked_sub(1).and_then(|i| secret.versions.get(i)) else {
            return not_found(&name);
        };
        let mut payload = json!({ "data": data });
        if let Some(crc) = crc {
            payload["dataCrc32c"] = json!(crc);
        }
        Response::json(
            200,
            json!({
                "name": format!("projects/{}/secrets/{id}/versions/{number}", self.project),
                "payload": payload,
            }),
        )
    }
}

impl Api for SecretManager {
    fn handle(&self, request: &Request) -> Option<Response> {
        let segments = request.segments();
        let ["v1", "projects", project, "secrets", rest @ ..] = segments.as_slice() else {
            return None;
        };
        if *project != self.project {
            return Some(Response::google_error(
                403,
                "PERMISSION_DENIED",
                &format!(
                    "Permission denied on project {project} (the stand-in serves {})",
                    self.project
                ),
            ));
        }
        let response = match (request.method.as_str(), rest) {
            ("POST", []) => self.create(request, request.query.get("secretId")),
            ("POST", [last]) => match last.split_once(':') {
                Some((id, "addVersion")) => self.add_version(request, id),
                Some((id, "setIamPolicy")) => self.set_policy(request, id),
                _ => return None,
            },
            ("DELETE", [id]) => self.delete(id),
            ("GET", [id, "versions", last]) => match last.split_once(':') {
                Some((version, "access")) => self.access(id, version),
                _ => return None,
            },
            _ => return None,
        };
        Some(response)
    }
}

fn bad_request(message: &str) -> Response {
    Response::google_error(400, "INVALID_ARGUMENT", message)
}

fn not_found(name: &str) -> Response {
    Response::google_error(
        404,
        "NOT_FOUND",
        &format!("Secret [{name}] not found or has no versions."),
    )
}

fn valid_secret_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_label(value: &str, is_key: bool) -> bool {
    value.len() <= 63
        && (!is_key || value.starts_with(|c: char| c.is_ascii_lowercase()))
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_base64(data: &str) -> bool {
    data.len().is_multiple_of(4)
        && data
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}
