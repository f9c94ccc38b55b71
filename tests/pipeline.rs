//! The pipeline's guarantees, through `devgem serve` and its HTTP API: idempotent stages under
//! duplicate delivery, abort, recovery after the server is killed, and a progress stream that
//! resumes from Last-Event-ID with every event once and in order.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Home, fixture, get, http, read_events, slow_build_app, wait_for};

fn create(base: &str, source: &str) -> String {
    let res = http()
        .post(format!("{base}/api/deployments"))
        .json(&json!({ "source": source }))
        .send()
        .expect("POST /api/deployments");
    assert_eq!(res.status().as_u16(), 202);
    let d: Value = res.json().unwrap();
    assert_eq!(d["status"], "queued");
    d["id"].as_str().unwrap().to_string()
}

fn deployment(base: &str, id: &str) -> Option<Value> {
    let res = http()
        .get(format!("{base}/api/deployments/{id}"))
        .send()
        .ok()?;
    (res.status().as_u16() == 200).then(|| res.json().unwrap())
}

fn wait_status(base: &str, id: &str, wanted: &[&str], limit: Duration) -> Value {
    wait_for(
        &format!("deployment {id} to be one of {wanted:?}"),
        limit,
        || deployment(base, id).filter(|d| wanted.contains(&d["status"].as_str().unwrap_or(""))),
    )
}

fn all_events(base: &str, id: &str) -> Vec<Value> {
    read_events(base, id, 0, usize::MAX)
}

#[test]
fn every_message_delivered_twice_still_runs_each_stage_once() {
    let home = Home::new();
    let server = home.serve(&[("DEVGEM_BUS_DELIVER_TWICE", "1")]);
    let id = create(&server.url, fixture("static-site").to_str().unwrap());
    let d = wait_status(
        &server.url,
        &id,
        &["live", "failed"],
        Duration::from_secs(120),
    );
    assert_eq!(d["status"], "live", "{d}");
    let events = all_events(&server.url, &id);
    for stage in ["analyze", "build", "deploy"] {
        let starts = events
            .iter()
            .filter(|e| e["message"] == format!("Starting the {stage} stage"))
            .count();
        assert_eq!(starts, 1, "the {stage} stage ran {starts} times");
    }
    for step in ["repository_access", "container_build", "deploy"] {
        let started = events
            .iter()
            .filter(|e| e["kind"] == "step_started" && e["step"] == step)
            .count();
        assert_eq!(started, 1, "{step} started {started} times");
    }
    // The app was started once: its log holds one start-up.
    let (status, _) = get(d["url"].as_str().unwrap()).unwrap();
    assert_eq!(status, 200);
}

#[test]
fn abort_during_the_build_stops_everything() {
    let home = Home::new();
    let app = home.path().join("src/slow");
    slow_build_app(&app, 20);
    let server = home.serve(&[]);
    let id = create(&server.url, app.to_str().unwrap());
    wait_status(&server.url, &id, &["building"], Duration::from_secs(60));
    let res = http()
        .post(format!("{}/api/deployments/{id}/abort", server.url))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let d = wait_status(
        &server.url,
        &id,
        &["aborted", "failed", "live"],
        Duration::from_secs(15),
    );
    assert_eq!(d["status"], "aborted");
    assert!(d["url"].is_null(), "an aborted deployment has no URL");
    let events = all_events(&server.url, &id);
    assert!(
        !events.iter().any(|e| e["step"] == "deploy"),
        "the deploy stage ran after the abort"
    );
    assert_eq!(events.last().unwrap()["status"], "aborted");
    // Aborting again is a clear conflict, not a crash.
    let again = http()
        .post(format!("{}/api/deployments/{id}/abort", server.url))
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
}

#[test]
fn a_killed_server_resumes_the_deployment_when_restarted() {
    let home = Home::new();
    let app = home.path().join("src/slow");
    slow_build_app(&app, 4);
    let mut server = home.serve(&[]);
    let id = create(&server.url, app.to_str().unwrap());
    wait_status(&server.url, &id, &["building"], Duration::from_secs(60));
    server.kill(); // SIGKILL, mid-build
    let server = home.serve(&[]);
    let d = wait_status(
        &server.url,
        &id,
        &["live", "failed", "aborted"],
        Duration::from_secs(120),
    );
    assert_eq!(d["status"], "live", "{d}");
    let (status, body) = get(d["url"].as_str().unwrap()).expect("the app answers");
    assert_eq!(status, 200);
    assert!(body.contains("Hello from slow-build"));
    let events = all_events(&server.url, &id);
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .unwrap_or("")
            .contains("Resuming the build stage")),
        "the restarted server should say it resumed"
    );
}

#[test]
fn the_progress_stream_resumes_from_last_event_id_without_loss_or_repeats() {
    let home = Home::new();
    let app = home.path().join("src/slow");
    slow_build_app(&app, 2);
    let server = home.serve(&[]);
    let id = create(&server.url, app.to_str().unwrap());
    // Read a few events, drop the connection, then resume from the last one seen.
    let first = read_events(&server.url, &id, 0, 3);
    assert_eq!(first.len(), 3);
    let last_seen = first.last().unwrap()["seq"].as_u64().unwrap();
    let rest = read_events(&server.url, &id, last_seen, usize::MAX);
    let seqs: Vec<u64> = first
        .iter()
        .chain(rest.iter())
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gaps or repeats"
    );
    let final_event = rest.last().expect("the stream ends with the final event");
    assert_eq!(final_event["status"], "live");
    // A fresh read of the finished deployment gives exactly the same events.
    assert_eq!(all_events(&server.url, &id).len(), seqs.len());
}

#[test]
fn api_errors_have_one_shape_and_the_right_status() {
    let home = Home::new();
    let server = home.serve(&[]);
    let client = http();
    let missing = client
        .get(format!("{}/api/deployments/d-0000000000000000", server.url))
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let body: Value = missing.json().unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let bad = client
        .post(format!("{}/api/deployments", server.url))
        .header("content-type", "application/json")
        .body("{\"source\": 42}")
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let empty = client
        .post(format!("{}/api/deployments", server.url))
        .json(&json!({"source": "  "}))
        .send()
        .unwrap();
    assert_eq!(empty.status().as_u16(), 400);
    let body: Value = empty.json().unwrap();
    assert!(body["error"]["hint"].as_str().is_some());
    let bad_env = client
        .post(format!("{}/api/deployments", server.url))
        .json(&json!({"source": "/tmp", "env": {"NOT-VALID": "x"}}))
        .send()
        .unwrap();
    assert_eq!(bad_env.status().as_u16(), 400);
    let health: Value = client
        .get(format!("{}/health", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok");
}

#[test]
fn the_cli_can_deploy_through_a_running_server() {
    let home = Home::new();
    // The server refuses paths on its disk: the CLI uploads the folder instead.
    let server = home.serve(&[("DEVGEM_ALLOW_LOCAL_SOURCES", "0")]);
    // A second, empty home shows the CLI keeps nothing locally in this mode.
    let client_home = Home::new();
    let output = client_home
        .devgem()
        .args(["deploy", fixture("static-site").to_str().unwrap()])
        .env("DEVGEM_SERVER", &server.url)
        .output()
        .unwrap();
    let out = support::outcome(&output);
    assert_eq!(out.status, "live", "{}\n{}", out.stdout, out.stderr);
    let (status, body) = get(&out.url).expect("the app answers");
    assert_eq!(status, 200);
    assert!(body.contains("Hello from static-site"));
    // The server knows it; the client's own store does not.
    assert!(deployment(&server.url, &out.id).is_some());
    let local = client_home.run(&["status", &out.id]);
    assert!(!local.status.success());
    // Status, logs and stop through the server.
    let remote_status = client_home
        .devgem()
        .args(["status", &out.id, "--server", &server.url])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&remote_status.stdout).contains("live"));
    let stop = client_home
        .devgem()
        .args(["stop", &out.id, "--server", &server.url])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&stop.stdout).contains("stopped"));
}

#[test]
fn the_server_shuts_down_gracefully_on_sigterm() {
    let home = Home::new();
    let mut server = home.serve(&[]);
    let (status, _) = get(&format!("{}/health", server.url)).unwrap();
    assert_eq!(status, 200);
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = wait_for("the server to exit", Duration::from_secs(15), || {
        server.child.try_wait().unwrap()
    });
    assert!(exit.success(), "exit status {exit:?}");
    assert!(get(&format!("{}/health", server.url)).is_none());
}

#[test]
fn an_api_token_is_required_when_configured() {
    let home = Home::new();
    let server = home.serve(&[("DEVGEM_API_TOKEN", "s3cret-token")]);
    let url = format!("{}/api/deployments", server.url);
    let anonymous = http().get(&url).send().unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let wrong = http().get(&url).bearer_auth("nope").send().unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = http().get(&url).bearer_auth("s3cret-token").send().unwrap();
    assert_eq!(right.status().as_u16(), 200);
    // Health stays open for load balancers.
    assert_eq!(get(&format!("{}/health", server.url)).unwrap().0, 200);
}

#[test]
fn a_path_on_the_servers_disk_is_refused_over_http_with_a_hint() {
    let home = Home::new();
    let server = home.serve(&[("DEVGEM_ALLOW_LOCAL_SOURCES", "0")]);
    let url = format!("{}/api/deployments", server.url);
    for source in [
        fixture("static-site").display().to_string(),
        "file:///etc".to_string(),
    ] {
        let res = http()
            .post(&url)
            .json(&json!({ "source": source }))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 400, "{source}");
        let body: Value = res.json().unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
        let hint = body["error"]["hint"].as_str().unwrap();
        assert!(hint.contains("devgem deploy PATH --server URL"), "{hint}");
    }
    let list: Value = http().get(&url).send().unwrap().json().unwrap();
    assert_eq!(list["deployments"].as_array().unwrap().len(), 0, "{list}");
}

/// A gzipped tar with one entry whose name is written raw, so `..` gets through.
fn archive_with_entry(name: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    builder.append(&header, data).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

fn upload(url: &str, archive: Vec<u8>) -> reqwest::blocking::Response {
    let form = reqwest::blocking::multipart::Form::new()
        .text("deployment", json!({ "source": "site" }).to_string())
        .part(
            "source",
            reqwest::blocking::multipart::Part::bytes(archive).file_name("source.tar.gz"),
        );
    http().post(url).multipart(form).send().unwrap()
}

#[test]
fn an_uploaded_archive_deploys_and_one_that_escapes_its_folder_is_refused() {
    let home = Home::new();
    let server = home.serve(&[("DEVGEM_ALLOW_LOCAL_SOURCES", "0")]);
    let url = format!("{}/api/deployments", server.url);

    let evil = archive_with_entry("../../outside.txt", b"pwned");
    let res = upload(&url, evil);
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("../../outside.txt"), "{message}");
    assert!(!home.path().join("outside.txt").exists());
    let garbage = upload(&url, b"not a tarball".to_vec());
    assert_eq!(garbage.status().as_u16(), 400);
    let list: Value = http().get(&url).send().unwrap().json().unwrap();
    assert_eq!(list["deployments"].as_array().unwrap().len(), 0, "{list}");

    let site = archive_with_entry("index.html", b"<h1>Uploaded site</h1>");
    let res = upload(&url, site);
    assert_eq!(res.status().as_u16(), 202);
    let d: Value = res.json().unwrap();
    let id = d["id"].as_str().unwrap();
    let live = wait_status(
        &server.url,
        id,
        &["live", "failed"],
        Duration::from_secs(120),
    );
    assert_eq!(live["status"], "live", "{live}");
    let (status, body) = get(live["url"].as_str().unwrap()).expect("the app answers");
    assert_eq!(status, 200);
    assert!(body.contains("Uploaded site"), "{body}");
    let _ = http().post(format!("{url}/{id}/stop")).send().unwrap();
}
