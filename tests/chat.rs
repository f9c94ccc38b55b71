//! Black-box tests of the chat through the real `devgem serve` with the process runtime and
//! the offline engine: conversations over `POST /chat` and over a real WebSocket client.

mod support;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use support::{Home, Server, get, http, wait_for};
use tokio_tungstenite::tungstenite::Message;

/// A Node app with no dependencies that answers with its GREETING; with `port`, it ignores
/// $PORT and listens there (a hard-coded port, which the diagnosis catches).
fn echo_app(dir: &Path, port: Option<u16>) {
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"echo","version":"1.0.0","private":true,"scripts":{"start":"node server.js"}}"#,
    )
    .unwrap();
    let listen = match port {
        Some(p) => p.to_string(),
        None => "process.env.PORT".to_string(),
    };
    std::fs::write(
        dir.join("server.js"),
        format!(
            r#"const port = {listen};
require("http").createServer((q, s) => s.end(`greeting=${{process.env.GREETING}}`))
  .listen(port, "0.0.0.0", () => console.log("listening on port " + port));
"#
        ),
    )
    .unwrap();
}

fn chat(server: &Server, body: &Value) -> (u16, Value) {
    let res = http()
        .post(format!("{}/chat", server.url))
        .json(body)
        .send()
        .expect("POST /chat");
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

fn deployment(server: &Server, id: &str) -> Value {
    let res = http()
        .get(format!("{}/api/deployments/{id}", server.url))
        .send()
        .expect("GET deployment");
    res.json().unwrap()
}

/// Waits until deployment `id` ends; returns it.
fn finished(server: &Server, id: &str) -> Value {
    wait_for("the deployment to end", Duration::from_secs(240), || {
        let d = deployment(server, id);
        matches!(
            d["status"].as_str(),
            Some("live" | "failed" | "aborted" | "stopped")
        )
        .then_some(d)
    })
}

fn body_of(url: &str) -> String {
    let (status, body) = get(url).expect("the app answers");
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn a_conversation_deploys_a_folder_then_sets_a_variable_the_app_shows() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    echo_app(app.path(), None);
    let server = home.serve(&[]);

    let (status, answer) = chat(
        &server,
        &json!({"message": format!("deploy {}", app.path().display())}),
    );
    assert_eq!(status, 200, "{answer}");
    let session = answer["session_id"].as_str().unwrap().to_string();
    assert_eq!(
        answer["actions"][0]["tool"], "deploy_repository",
        "{answer}"
    );
    assert_eq!(answer["actions"][0]["ok"], true, "{answer}");
    let id = answer["deployment_id"].as_str().unwrap().to_string();
    assert!(answer["reply"].as_str().unwrap().contains(&id), "{answer}");
    let d = finished(&server, &id);
    assert_eq!(d["status"], "live", "{d}");
    assert_eq!(body_of(d["url"].as_str().unwrap()), "greeting=undefined");

    let (status, answer) = chat(
        &server,
        &json!({"message": "set GREETING to hi", "session_id": session}),
    );
    assert_eq!(status, 200, "{answer}");
    let action = &answer["actions"][0];
    assert_eq!(action["tool"], "set_env_vars", "{answer}");
    assert_eq!(action["ok"], true, "{answer}");
    // The arguments are shown with the value hidden.
    assert_eq!(action["args"]["env"]["GREETING"], "***", "{answer}");
    let url = action["result"]["url"].as_str().unwrap().to_string();
    assert_eq!(body_of(&url), "greeting=hi");

    // "is it up?" is about the same deployment.
    let (_, answer) = chat(
        &server,
        &json!({"message": "is it up yet?", "session_id": session}),
    );
    assert_eq!(
        answer["actions"][0]["tool"], "get_deployment_status",
        "{answer}"
    );
    assert!(
        answer["reply"].as_str().unwrap().contains("live"),
        "{answer}"
    );
}

#[test]
fn a_security_scan_stop_is_overridden_by_deploy_anyway_and_the_app_goes_live() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    echo_app(app.path(), None);
    std::fs::write(app.path().join("aws.txt"), "\nid=AKIAIOSFODNN7EXAMPLQ\n").unwrap();
    let server = home.serve(&[]);

    let (_, answer) = chat(
        &server,
        &json!({"message": format!("deploy {}", app.path().display())}),
    );
    let session = answer["session_id"].as_str().unwrap().to_string();
    let stopped = answer["deployment_id"].as_str().unwrap().to_string();
    let d = finished(&server, &stopped);
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["error"]["step"], "security_scan", "{d}");

    let (status, answer) = chat(
        &server,
        &json!({"message": "it's a test key, deploy anyway", "session_id": session}),
    );
    assert_eq!(status, 200, "{answer}");
    let action = &answer["actions"][0];
    assert_eq!(action["tool"], "redeploy", "{answer}");
    assert_eq!(action["args"]["allow_findings"], true, "{answer}");
    assert_eq!(action["ok"], true, "{answer}");
    let reply = answer["reply"].as_str().unwrap();
    assert!(reply.contains("security findings allowed"), "{reply}");
    let next = answer["deployment_id"].as_str().unwrap().to_string();
    assert_ne!(next, stopped);
    let d = finished(&server, &next);
    assert_eq!(d["status"], "live", "{d}");
    assert_eq!(d["allow_findings"], true, "{d}");
    assert_eq!(body_of(d["url"].as_str().unwrap()), "greeting=undefined");
    http()
        .post(format!("{}/api/deployments/{next}/stop", server.url))
        .send()
        .unwrap();
}

#[test]
fn cancel_that_aborts_the_deployment_on_its_way() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    echo_app(app.path(), None);
    let server = home.serve(&[]);
    let (_, answer) = chat(
        &server,
        &json!({"message": format!("deploy {}", app.path().display())}),
    );
    let session = answer["session_id"].as_str().unwrap().to_string();
    let id = answer["deployment_id"].as_str().unwrap().to_string();
    let (status, answer) = chat(
        &server,
        &json!({"message": "cancel that", "session_id": session}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["actions"][0]["tool"], "abort_deployment", "{answer}");
    assert_eq!(answer["actions"][0]["ok"], true, "{answer}");
    assert!(
        answer["reply"].as_str().unwrap().contains("Aborted"),
        "{answer}"
    );
    assert_eq!(finished(&server, &id)["status"], "aborted");
}

#[test]
fn a_dry_run_lists_the_actions_and_runs_nothing() {
    let home = Home::new();
    let server = home.serve(&[]);
    let (status, answer) = chat(
        &server,
        &json!({"message": "deploy github.com/acme/shop with DEBUG=false", "dry_run": true}),
    );
    assert_eq!(status, 200, "{answer}");
    let action = &answer["actions"][0];
    assert_eq!(action["tool"], "deploy_repository", "{answer}");
    assert_eq!(action["args"]["env"]["DEBUG"], "***", "{answer}");
    assert!(action.get("result").is_none(), "{answer}");
    let list: Value = http()
        .get(format!("{}/api/deployments", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["deployments"], json!([]), "nothing ran");

    // An action that needs a deployment the session does not have is listed, and asked about.
    let (_, answer) = chat(
        &server,
        &json!({"message": "show me the logs", "dry_run": true}),
    );
    assert_eq!(answer["actions"][0]["tool"], "get_logs", "{answer}");
    assert_eq!(answer["actions"][0]["ok"], false, "{answer}");
    assert!(
        answer["reply"]
            .as_str()
            .unwrap()
            .contains("Which deployment"),
        "{answer}"
    );
}

/// The process runtime picks each app's port itself, so a port fix cannot make this app live
/// here (on Docker and Cloud Run the plan's port is the container's); what is checked is that
/// the diagnosis names the port and the fix is a visible override the next deployment plans
/// with.
#[test]
fn a_failed_deploy_is_diagnosed_and_the_fix_redeploys_with_a_visible_plan_override() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    echo_app(app.path(), Some(5077));
    let server = home.serve(&[("DEVGEM_READY_TIMEOUT_SECS", "10")]);
    let (_, answer) = chat(
        &server,
        &json!({"message": format!("deploy {}", app.path().display())}),
    );
    let session = answer["session_id"].as_str().unwrap().to_string();
    let id = answer["deployment_id"].as_str().unwrap().to_string();
    assert_eq!(finished(&server, &id)["status"], "failed");

    let (_, answer) = chat(
        &server,
        &json!({"message": "why did it fail?", "session_id": session}),
    );
    assert_eq!(answer["actions"][0]["tool"], "diagnose_failure", "{answer}");
    assert!(
        answer["reply"].as_str().unwrap().contains("5077"),
        "{answer}"
    );

    let (_, answer) = chat(
        &server,
        &json!({"message": "apply the fix", "session_id": session}),
    );
    assert_eq!(answer["actions"][0]["tool"], "apply_fix", "{answer}");
    assert_eq!(answer["actions"][0]["ok"], true, "{answer}");
    let next = answer["deployment_id"].as_str().unwrap().to_string();
    assert_ne!(next, id);
    assert!(
        answer["reply"].as_str().unwrap().contains("port 5077"),
        "{answer}"
    );
    let d = finished(&server, &next);
    assert_eq!(d["plan_override"]["port"], 5077, "{d}");
    let events = support::read_events(&server.url, &next, 0, 1000);
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("Using the change you accepted: port 5077"))),
        "the analysis says it used the fix: {events:?}"
    );
}

/// A Node app that requires `ms`, a small npm package, without declaring it: it builds, then
/// dies at start. The diagnosis names the package, the fix adds it to package.json (a real
/// `npm install` from the registry) and the next deployment answers with it.
#[test]
fn a_missing_npm_package_is_diagnosed_added_to_package_json_and_the_app_goes_live() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("package.json"),
        r#"{"name":"uses-ms","version":"1.0.0","private":true,"scripts":{"start":"node server.js"}}"#,
    )
    .unwrap();
    std::fs::write(
        app.path().join("server.js"),
        r#"const ms = require("ms");
require("http").createServer((q, s) => s.end(`two days is ${ms("2 days")} ms`))
  .listen(process.env.PORT, "0.0.0.0");
"#,
    )
    .unwrap();
    let server = home.serve(&[("DEVGEM_READY_TIMEOUT_SECS", "20")]);
    let (_, answer) = chat(
        &server,
        &json!({"message": format!("deploy {}", app.path().display())}),
    );
    let session = answer["session_id"].as_str().unwrap().to_string();
    let id = answer["deployment_id"].as_str().unwrap().to_string();
    assert_eq!(finished(&server, &id)["status"], "failed");

    let (_, answer) = chat(
        &server,
        &json!({"message": "why did it fail?", "session_id": session}),
    );
    assert_eq!(answer["actions"][0]["tool"], "diagnose_failure", "{answer}");
    assert!(
        answer["reply"].as_str().unwrap().contains("`ms`"),
        "the diagnosis names the package: {answer}"
    );

    let (_, answer) = chat(
        &server,
        &json!({"message": "yes, apply it", "session_id": session}),
    );
    assert_eq!(answer["actions"][0]["tool"], "apply_fix", "{answer}");
    assert_eq!(answer["actions"][0]["ok"], true, "{answer}");
    let reply = answer["reply"].as_str().unwrap();
    assert!(reply.contains("added `ms` to package.json"), "{answer}");
    let next = answer["deployment_id"].as_str().unwrap().to_string();
    let d = finished(&server, &next);
    assert_eq!(d["status"], "live", "{d}");
    assert_eq!(d["plan_override"]["dependencies"][0]["name"], "ms", "{d}");
    assert_eq!(
        body_of(d["url"].as_str().unwrap()),
        "two days is 172800000 ms"
    );
    let events = support::read_events(&server.url, &next, 0, 1000);
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("Added `ms` to package.json, as you accepted"))),
        "the progress shows the patch: {events:?}"
    );
    let source = std::fs::read_to_string(app.path().join("package.json")).unwrap();
    assert!(
        !source.contains("\"ms\""),
        "the user's own folder is left as it was: {source}"
    );
}

#[test]
fn a_token_protected_server_refuses_the_chat_without_it() {
    let home = Home::new();
    let server = home.serve(&[("DEVGEM_API_TOKEN", "open-sesame")]);
    let (status, body) = chat(&server, &json!({"message": "list my deployments"}));
    assert_eq!(status, 401, "{body}");
    let res = http()
        .post(format!("{}/chat", server.url))
        .bearer_auth("open-sesame")
        .json(&json!({"message": "list my deployments"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let ws = server.url.replacen("http", "ws", 1) + "/ws/chat";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let refused = tokio_tungstenite::connect_async(ws.as_str()).await;
        assert!(refused.is_err(), "a socket without the token is refused");
        let (mut socket, _) = tokio_tungstenite::connect_async(format!("{ws}?token=open-sesame"))
            .await
            .expect("the token opens the socket");
        assert_eq!(next_json(&mut socket).await["type"], "session");
    });
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON message, within 60 seconds.
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .expect("a message within 60s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}

/// Messages until one of type `kind` (returned with those before it), within `limit`.
async fn until(socket: &mut Socket, kind: &str, limit: Duration) -> (Value, Vec<Value>) {
    let mut seen = Vec::new();
    tokio::time::timeout(limit, async {
        loop {
            let m = next_json(socket).await;
            if m["type"] == kind {
                return (m, seen);
            }
            seen.push(m);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} within {limit:?}"))
}

async fn send(socket: &mut Socket, value: Value) {
    socket
        .send(Message::text(value.to_string()))
        .await
        .expect("send");
}

#[test]
fn the_websocket_streams_a_deploy_to_its_url_and_a_reconnect_rehydrates_the_session() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    echo_app(app.path(), None);
    let server = home.serve(&[]);
    let ws = server.url.replacen("http", "ws", 1) + "/ws/chat";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws.as_str()).await.unwrap();
        let first = next_json(&mut socket).await;
        assert_eq!(first["type"], "session", "{first}");
        assert_eq!(first["history"], json!([]));
        let session = first["session_id"].as_str().unwrap().to_string();

        send(&mut socket, json!({"type": "ping"})).await;
        assert_eq!(next_json(&mut socket).await["type"], "pong");

        let deploy = format!("deploy {}", app.path().display());
        send(&mut socket, json!({"type": "message", "text": deploy})).await;
        let (thought, _) = until(&mut socket, "ai_thought", Duration::from_secs(30)).await;
        assert_eq!(thought["action"]["tool"], "deploy_repository", "{thought}");
        let (started, _) = until(&mut socket, "deployment_started", Duration::from_secs(30)).await;
        let id = started["deployment_id"].as_str().unwrap().to_string();
        let (complete, before) =
            until(&mut socket, "deployment_complete", Duration::from_secs(240)).await;
        assert!(
            before.iter().any(|m| m["type"] == "message"),
            "the reply came: {before:?}"
        );
        assert!(
            before.iter().any(|m| m["type"] == "deployment_progress"),
            "progress came: {before:?}"
        );
        assert!(
            before
                .iter()
                .any(|m| m["type"] == "deployment_update" && m["status"] == "live"),
            "the status changes came: {before:?}"
        );
        assert_eq!(complete["deployment_id"], id.as_str());
        assert_eq!(complete["status"], "live", "{complete}");
        let url = complete["url"].as_str().unwrap().to_string();
        let body = tokio::task::spawn_blocking(move || body_of(&url))
            .await
            .unwrap();
        assert_eq!(body, "greeting=undefined");
        socket.close(None).await.unwrap();

        // A new socket on the same session gets its history and its deployments' state.
        let (mut again, _) = tokio_tungstenite::connect_async(format!("{ws}?session_id={session}"))
            .await
            .unwrap();
        let first = next_json(&mut again).await;
        assert_eq!(first["type"], "session", "{first}");
        assert_eq!(first["session_id"], session.as_str());
        assert_eq!(first["current"], id.as_str());
        let history = first["history"].as_array().unwrap();
        assert_eq!(history[0]["role"], "user");
        assert!(
            history[0]["text"].as_str().unwrap().starts_with("deploy "),
            "{first}"
        );
        assert_eq!(history[1]["role"], "assistant");
        assert_eq!(first["deployments"][0]["id"], id.as_str());
        assert_eq!(first["deployments"][0]["status"], "live");

        // A session that does not exist is refused at the handshake.
        let missing = tokio_tungstenite::connect_async(format!("{ws}?session_id=s-nope")).await;
        assert!(missing.is_err());
    });
}

/// Kills the process group of every app running under `home` (the app "crashes").
fn kill_apps(home: &Home) {
    for entry in std::fs::read_dir(home.path().join("apps"))
        .unwrap()
        .flatten()
    {
        let Ok(text) = std::fs::read_to_string(entry.path().join("runtime.json")) else {
            continue;
        };
        let record: Value = serde_json::from_str(&text).unwrap();
        if let Some(pgid) = record["pgid"].as_i64() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
        }
    }
}

#[test]
fn the_websocket_sends_the_analysis_and_alerts_when_the_live_app_stops_answering() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    echo_app(app.path(), None);
    // Probed every second, so the alert comes soon after the app dies.
    let server = home.serve(&[("DEVGEM_MONITOR_INTERVAL_SECS", "1")]);
    let ws = server.url.replacen("http", "ws", 1) + "/ws/chat";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws.as_str()).await.unwrap();
        assert_eq!(next_json(&mut socket).await["type"], "session");
        let deploy = format!("deploy {}", app.path().display());
        send(&mut socket, json!({"type": "message", "text": deploy})).await;

        let (analysis, _) = until(&mut socket, "analysis", Duration::from_secs(120)).await;
        assert_eq!(analysis["language"], "node", "{analysis}");
        assert_eq!(analysis["start_command"], "node server.js", "{analysis}");
        assert!(analysis["port"].as_u64().is_some(), "{analysis}");
        assert!(analysis["findings"].is_array(), "{analysis}");
        let (complete, _) =
            until(&mut socket, "deployment_complete", Duration::from_secs(240)).await;
        assert_eq!(complete["status"], "live", "{complete}");
        assert_eq!(complete["deployment_id"], analysis["deployment_id"]);

        kill_apps(&home);
        let (alert, _) = until(&mut socket, "monitoring_alert", Duration::from_secs(60)).await;
        assert_eq!(alert["deployment_id"], complete["deployment_id"], "{alert}");
        assert!(
            alert["reason"].as_str().unwrap().contains("did not answer"),
            "{alert}"
        );
        let lines = alert["log_lines"].as_array().unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.as_str().unwrap().contains("listening on port")),
            "the app's last lines come with the alert: {alert}"
        );
        assert!(
            !alert["diagnosis"]["cause"].as_str().unwrap().is_empty(),
            "{alert}"
        );
        assert!(
            !alert["diagnosis"]["fix"].as_str().unwrap().is_empty(),
            "{alert}"
        );
    });
}
