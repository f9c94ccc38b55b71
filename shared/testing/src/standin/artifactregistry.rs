//! A stand-in for Artifact Registry's repositories (contracts §3.2): create answers an
//! Operation (done, with the Repository), a second create of the same id 409, get reads it.

use super::{Api, Request, Response, located};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The repositories that exist, by full name.
#[derive(Default)]
pub struct ArtifactRegistryStandin {
    repositories: Mutex<BTreeMap<String, serde_json::Value>>,
}

impl ArtifactRegistryStandin {
    pub fn new() -> Self {
        Self::default()
    }

    /// A Docker repository that exists already (a create of it is answered 409).
    pub fn with_repository(self, project: &str, location: &str, id: &str) -> Self {
        let name = format!("projects/{project}/locations/{location}/repositories/{id}");
        self.repositories
            .lock()
            .unwrap()
            .insert(name.clone(), json!({"name": name, "format": "DOCKER"}));
        self
    }

    /// The full names of the repositories.
    pub fn repositories(&self) -> Vec<String> {
        self.repositories.lock().unwrap().keys().cloned().collect()
    }

    fn create(&self, request: &Request, parent: &str) -> Response {
        let Some(id) = request
            .query
            .get("repositoryId")
            .filter(|id| !id.is_empty())
        else {
            return invalid("repositoryId is required");
        };
        let body = request.json();
        // The generated clients send enums as numbers (`$alt=json;enum-encoding=int`).
        if body["format"] != json!("DOCKER") && body["format"] != json!(1) {
            return invalid(&format!("format is {}, not DOCKER", body["format"]));
        }
        let name = format!("{parent}/repositories/{id}");
        let mut repositories = self.repositories.lock().unwrap();
        if repositories.contains_key(&name) {
            return Response::google_error(
                409,
                "ALREADY_EXISTS",
                &format!("the repository already exists: {name}"),
            );
        }
        let mut repository = body.clone();
        repository["name"] = json!(name);
        repository["format"] = json!("DOCKER");
        repositories.insert(name.clone(), repository.clone());
        repository["@type"] =
            json!("type.googleapis.com/google.devtools.artifactregistry.v1.Repository");
        Response::json(
            200,
            json!({
                "name": format!("{parent}/operations/create-{id}"),
                "metadata": {"@type": "type.googleapis.com/google.devtools.artifactregistry.v1.OperationMetadata"},
                "done": true,
                "response": repository,
            }),
        )
    }
}

impl Api for ArtifactRegistryStandin {
    fn handle(&self, request: &Request) -> Option<Response> {
        let segments = request.segments();
        let (project, location, rest) = located(&segments, "v1")?;
        let parent = format!("projects/{project}/locations/{location}");
        match (request.method.as_str(), rest) {
            ("POST", ["repositories"]) => Some(self.create(request, &parent)),
            ("GET", ["repositories", id]) => {
                let name = format!("{parent}/repositories/{id}");
                Some(match self.repositories.lock().unwrap().get(&name) {
                    Some(repository) => Response::json(200, repository.clone()),
                    None => Response::google_error(
                        404,
                        "NOT_FOUND",
                        &format!("Requested entity was not found: {name}"),
                    ),
                })
            }
            _ => None,
        }
    }
}

fn invalid(problem: &str) -> Response {
    Response::google_error(400, "INVALID_ARGUMENT", &format!("stand-in: {problem}"))
}
