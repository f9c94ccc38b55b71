//! Black-box tests of the release API (revisions, rollback, env, logs, domains) through the
//! real HTTP API of `devgem serve`, with the process runtime.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use support::{Home, Server, get, http, wait_for};

/// A Node app with no dependencies that answers with its GREETING and its revision.
fn echo_app(dir: &Path) {
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"echo","version":"1.0.0","private":true,"scripts":{"start":"node server.js"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("server.js"),
        r#"require("http").createServer((q, s) => {
  console.log("request " + q.url);
  s.end(`greeting=${process.env.GREETING} revision=${process.env.K_REVISION}`);
}).listen(process.env.PORT, "0.0.0.0", () => console.log("echo started"));
"#,
    )
    .unwrap();
}

fn post(url: &str, body: &Value) -> (u16, Value) {
    let res = http().post(url).json(body).send().expect("POST");
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

fn get_json(url: &str) -> (u16, Value) {
    let res = http().get(url).send().expect("GET");
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

/// Starts a deployment of `dir` as service `echo` and waits until it is live.
fn deploy(server: &Server, dir: &Path, env: Value) -> Value {
    let (status, d) = post(
        &format!("{}/api/deployments", server.url),
        &json!({"source": dir.to_str().unwrap(), "service_name": "echo", "env": env}),
    );
    assert_eq!(status, 202, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    wait_for(
        "the deployment to go live",
        Duration::from_secs(240),
        || {
            let (_, d) = get_json(&format!("{}/api/deployments/{id}", server.url));
            match d["status"].as_str() {
                Some("live") => Some(d),
                Some("failed" | "aborted") => panic!("the deployment ended: {d}"),
                _ => None,
            }
        },
    )
}

fn body_of(url: &str) -> String {
    let (status, body) = get(url).expect("the app answers");
    assert_eq!(status, 200, "{body}");
    body
}

fn entry<'a>(env: &'a Value, name: &str) -> Option<&'a Value> {
    env["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
}

#[test]
fn env_changes_make_revisions_and_a_rollback_serves_the_old_one() {
    let home = Home::new();
    let server = home.serve(&[]);
    let app = tempfile::tempdir().unwrap();
    echo_app(app.path());
    let secret = "tok_r3l3as3_n0t_f0r_the_store";
    let first = deploy(&server, app.path(), json!({"API_TOKEN": secret}));
    let id = first["id"].as_str().unwrap();
    let api = format!("{}/api/deployments/{id}", server.url);

    // The merged view: the user's secret masked, with its source; the plan's settings shown.
    let (status, env) = get_json(&format!("{api}/env"));
    assert_eq!(status, 200, "{env}");
    let token = entry(&env, "API_TOKEN").expect("API_TOKEN is listed");
    assert_eq!(token["source"], "secret");
    assert_eq!(token["masked"], true);
    assert!(!env.to_string().contains(secret), "{env}");
    for e in env["env"].as_array().unwrap() {
        assert!(["plan", "user", "secret"].contains(&e["source"].as_str().unwrap()));
    }

    // A reserved name is refused, naming it.
    let (status, err) = post(&format!("{api}/env"), &json!({"set": {"K_REVISION": "x"}}));
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("K_REVISION"),
        "{err}"
    );
    let (status, err) = post(&format!("{api}/env"), &json!({"set": {"9LIVES": "x"}}));
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("9LIVES"), "{err}");

    // A plain variable: a new revision that sees it; the response shows the plain value.
    let (status, changed) = post(
        &format!("{api}/env"),
        &json!({"set": {"GREETING": "hello"}}),
    );
    assert_eq!(status, 200, "{changed}");
    let greeting = entry(&changed, "GREETING").unwrap();
    assert_eq!(greeting["source"], "user");
    assert_eq!(greeting["value"], "hello");
    let second_revision = changed["revision"].as_str().unwrap().to_string();
    assert_ne!(Some(second_revision.as_str()), first["revision"].as_str());
    let url = changed["url"].as_str().unwrap();
    assert_eq!(
        body_of(url),
        format!("greeting=hello revision={second_revision}")
    );

    // A value that looks secret becomes a secret whatever its name.
    let (status, changed) = post(
        &format!("{api}/env"),
        &json!({"set": {"UPSTREAM": "postgres://app:hunter2@db/app"}}),
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(entry(&changed, "UPSTREAM").unwrap()["source"], "secret");
    assert!(!changed.to_string().contains("hunter2"), "{changed}");

    // Unset: gone from the view and from the app.
    let (status, changed) = post(&format!("{api}/env"), &json!({"unset": ["GREETING"]}));
    assert_eq!(status, 200, "{changed}");
    assert!(entry(&changed, "GREETING").is_none(), "{changed}");
    let third_revision = changed["revision"].as_str().unwrap().to_string();
    assert_eq!(
        body_of(changed["url"].as_str().unwrap()),
        format!("greeting=undefined revision={third_revision}")
    );

    // A redeploy of the same service: its revisions list both deployments'.
    let second = deploy(&server, app.path(), json!({}));
    let second_id = second["id"].as_str().unwrap();
    let second_api = format!("{}/api/deployments/{second_id}", server.url);
    let (status, revisions) = get_json(&format!("{second_api}/revisions"));
    assert_eq!(status, 200, "{revisions}");
    let names: Vec<&str> = revisions["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names[0],
        second["revision"].as_str().unwrap(),
        "{revisions}"
    );
    assert!(names.contains(&third_revision.as_str()), "{revisions}");
    assert_eq!(revisions["revisions"][0]["serving"], true);

    // An unknown revision is refused, naming it and the known ones.
    let (status, err) = post(
        &format!("{second_api}/rollback"),
        &json!({"revision": "echo-nope"}),
    );
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("echo-nope"), "{err}");
    assert!(err.to_string().contains(&third_revision), "{err}");

    // Roll back (no body: the revision before the serving one) and get answered by it.
    let res = http()
        .post(format!("{second_api}/rollback"))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let rolled: Value = res.json().unwrap();
    assert_eq!(rolled["revision"], third_revision.as_str(), "{rolled}");
    assert_eq!(
        body_of(rolled["url"].as_str().unwrap()),
        format!("greeting=undefined revision={third_revision}")
    );
    let (_, record) = get_json(&second_api);
    assert_eq!(record["revision"], third_revision.as_str());
    let (_, revisions) = get_json(&format!("{second_api}/revisions"));
    let serving: Vec<&str> = revisions["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["serving"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(serving, [third_revision.as_str()], "{revisions}");

    // No value ever reached the store.
    let db = std::fs::read(home.path().join("devgem.db")).unwrap();
    let wal = std::fs::read(home.path().join("devgem.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        for value in [secret, "hunter2"] {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{value} is in the state store"
            );
        }
    }
}

#[test]
fn logs_page_through_build_and_app_lines_and_domains_need_cloud_run() {
    let home = Home::new();
    let server = home.serve(&[]);
    let app = tempfile::tempdir().unwrap();
    echo_app(app.path());
    let d = deploy(&server, app.path(), json!({}));
    body_of(d["url"].as_str().unwrap());
    let api = format!(
        "{}/api/deployments/{}",
        server.url,
        d["id"].as_str().unwrap()
    );

    // The first page keeps the whole texts; the newest line is last.
    let (status, first) = get_json(&format!("{api}/logs"));
    assert_eq!(status, 200, "{first}");
    assert!(
        first["build"].as_str().is_some_and(|b| !b.is_empty()),
        "{first}"
    );
    assert!(
        first["app"].as_str().unwrap().contains("echo started"),
        "{first}"
    );
    let all: Vec<Value> = first["lines"].as_array().unwrap().clone();
    assert_eq!(all.last().unwrap()["source"], "app", "{first}");
    assert_eq!(all.first().unwrap()["source"], "build", "{first}");

    // Two lines a page, newest page first, until the token runs out: the same lines.
    let mut pages: Vec<Vec<Value>> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = http().get(format!("{api}/logs")).query(&[("limit", "2")]);
        if let Some(t) = &token {
            request = request.query(&[("page_token", t.as_str())]);
        }
        let page: Value = request.send().unwrap().json().unwrap();
        let lines = page["lines"].as_array().unwrap().clone();
        assert!(lines.len() <= 2, "{page}");
        assert!(!lines.is_empty(), "{page}");
        assert_eq!(page.get("build").is_some(), token.is_none(), "{page}");
        pages.push(lines);
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
        assert!(pages.len() < 500, "the pages never end");
    }
    assert!(pages.len() > 1);
    let paged: Vec<Value> = pages.into_iter().rev().flatten().collect();
    let texts = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .map(|l| l["text"].as_str().unwrap().to_string())
            .collect()
    };
    // The process runtime keeps no pages of its own: each first page holds its newest lines.
    let build_lines = all.iter().filter(|l| l["source"] == "build").count();
    assert_eq!(
        texts(&paged[paged.len() - build_lines - 2..paged.len() - 2]),
        texts(&all[..build_lines])
    );
    let (status, err) = get_json(&format!("{api}/logs?page_token=nonsense"));
    assert_eq!(status, 400, "{err}");

    // Custom domains: a clear 4xx saying Cloud Run maps them.
    let (status, err) = post(
        &format!("{api}/domains"),
        &json!({"domain": "shop.example.com"}),
    );
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("Cloud Run"), "{err}");
    let (status, err) = get_json(&format!("{api}/domains"));
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("cloudrun"), "{err}");
    let (status, _) = post(
        &format!("{api}/domains"),
        &json!({"domain": "not a domain"}),
    );
    assert_eq!(status, 400);
}
