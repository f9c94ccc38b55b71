//! A stand-in for Cloud Logging `entries:list`, for Cloud Run revision logs only (another
//! stand-in answers build-log filters): it checks the documented request (§3.3: the project
//! in `resourceNames`, a filter on the service and location bounded by `timestamp`,
//! `orderBy`, `pageSize`) and pages through the lines a test gave it.

use super::{Api, Request, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Cloud Logging, holding app output per Cloud Run service.
#[derive(Default)]
pub struct Logging {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// service -> lines, oldest first.
    lines: BTreeMap<String, Vec<String>>,
    problems: Vec<String>,
}

impl Logging {
    pub fn new() -> Self {
        Self::default()
    }

    /// `lines` written by `service`, in order (timestamps one second apart).
    pub fn add_lines(&self, service: &str, lines: &[&str]) {
        self.state
            .lock()
            .unwrap()
            .lines
            .entry(service.into())
            .or_default()
            .extend(lines.iter().map(|l| l.to_string()));
    }

    /// What broke the documented contract, one line each.
    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }
}

/// The value of `key="..."` in a Logging filter.
fn filter_value<'a>(filter: &'a str, key: &str) -> Option<&'a str> {
    let start = filter.find(&format!("{key}=\""))? + key.len() + 2;
    let end = filter[start..].find('"')? + start;
    Some(&filter[start..end])
}

impl Api for Logging {
    fn handle(&self, request: &Request) -> Option<Response> {
        if request.method != "POST" || request.path != "/v2/entries:list" {
            return None;
        }
        let body = request.json();
        let filter = body["filter"].as_str().unwrap_or_default().to_string();
        if filter_value(&filter, "resource.type") != Some("cloud_run_revision") {
            return None;
        }
        let mut state = self.state.lock().unwrap();
        let mut problem = |p: String| {
            state.problems.push(p.clone());
            Some(Response::google_error(400, "INVALID_ARGUMENT", &p))
        };
        let project = body["resourceNames"][0].as_str().unwrap_or_default();
        if !project.starts_with("projects/") {
            return problem(format!("resourceNames must name the project: {body}"));
        }
        let Some(service) = filter_value(&filter, "resource.labels.service_name") else {
            return problem(format!("the filter names no service: {filter}"));
        };
        if filter_value(&filter, "resource.labels.location").is_none() {
            return problem(format!("the filter names no location: {filter}"));
        }
        if !filter.contains("timestamp>=\"") {
            return problem(format!("the filter has no timestamp bound: {filter}"));
        }
        if body["orderBy"] != "timestamp desc" {
            return problem(format!("orderBy must be \"timestamp desc\": {body}"));
        }
        let page_size = body["pageSize"].as_u64().unwrap_or(50).clamp(1, 1000) as usize;
        let offset: usize = body["pageToken"]
            .as_str()
            .and_then(|t| t.strip_prefix("after-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let service = service.to_string();
        let lines = state.lines.get(&service).cloned().unwrap_or_default();
        let newest_first: Vec<(usize, &String)> = lines.iter().enumerate().rev().collect();
        let page: Vec<Value> = newest_first
            .iter()
            .skip(offset)
            .take(page_size)
            .map(|(i, text)| {
                json!({
                    "logName": format!("{project}/logs/run.googleapis.com%2Fstdout"),
                    "resource": {"type": "cloud_run_revision",
                                 "labels": {"service_name": service, "location": "us-central1"}},
                    "timestamp": format!("2025-05-01T12:{:02}:{:02}Z", i / 60 % 60, i % 60),
                    "insertId": format!("id-{i}"),
                    "severity": "DEFAULT",
                    "textPayload": text,
                })
            })
            .collect();
        let mut answer = json!({"entries": page});
        if offset + page_size < lines.len() {
            answer["nextPageToken"] = json!(format!("after-{}", offset + page_size));
        }
        Some(Response::json(200, answer))
    }
}
