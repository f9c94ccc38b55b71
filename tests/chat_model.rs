//! Black-box tests of the chat on a language model: the real `devgem serve` with
//! `DEVGEM_LLM=gemini` against the Gemini stand-in (loopback, the documented shapes). The model
//! calls `deploy_repository`, DevGem runs it and the model's text is the reply; the model never
//! sees a secret value; a model that keeps failing leaves the offline engine to answer.

mod support;

use devgem_testing::standin::gemini::{Gemini, function_call_response, text_response};
use devgem_testing::standin::{Response, Standin};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::{Home, Server, get, http, wait_for};

const API_KEY: &str = "test-gemini-key";
const SECRET: &str = "sk_live_x4Kq9";

/// A Node app that answers with the STRIPE_KEY it was given.
fn key_app(dir: &Path) {
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"keyapp","version":"1.0.0","private":true,"scripts":{"start":"node server.js"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("server.js"),
        r#"require("http").createServer((q, s) => s.end(`key=${process.env.STRIPE_KEY}`))
  .listen(process.env.PORT, "0.0.0.0");
"#,
    )
    .unwrap();
}

fn serve_with_gemini(home: &Home, standin: &Standin) -> Server {
    home.serve(&[
        ("DEVGEM_LLM", "gemini"),
        ("GEMINI_API_KEY", API_KEY),
        ("DEVGEM_GEMINI_ENDPOINT", &standin.base_url),
    ])
}

fn chat(server: &Server, message: &str) -> Value {
    let res = http()
        .post(format!("{}/chat", server.url))
        .json(&json!({"message": message}))
        .send()
        .expect("POST /chat");
    assert_eq!(res.status().as_u16(), 200);
    res.json().unwrap()
}

fn live(server: &Server, id: &str) -> Value {
    wait_for("the deployment to end", Duration::from_secs(240), || {
        let d: Value = http()
            .get(format!("{}/api/deployments/{id}", server.url))
            .send()
            .ok()?
            .json()
            .ok()?;
        matches!(
            d["status"].as_str(),
            Some("live" | "failed" | "aborted" | "stopped")
        )
        .then_some(d)
    })
}

#[test]
fn the_model_deploys_by_function_call_and_answers_without_ever_seeing_the_secret() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    key_app(app.path());
    let gemini = Arc::new(Gemini::new(Some(API_KEY)));
    // The model sees `STRIPE_KEY=***` and passes the hidden value on, as the prompt asks.
    gemini.script.push(
        "gemini-2.5-flash",
        vec![
            function_call_response(&[(
                "deploy_repository",
                json!({"source": app.path().display().to_string(), "env": {"STRIPE_KEY": "***"}}),
            )]),
            text_response("Your app is on its way; I will tell you when it is live."),
        ],
    );
    let standin = Standin::start(None, vec![gemini]);
    let server = serve_with_gemini(&home, &standin);

    let answer = chat(
        &server,
        &format!("put my app online with STRIPE_KEY={SECRET}"),
    );
    assert_eq!(
        answer["reply"], "Your app is on its way; I will tell you when it is live.",
        "{answer}"
    );
    assert_eq!(answer["model"], "Gemini API gemini-2.5-flash", "{answer}");
    assert_eq!(
        answer["actions"][0]["tool"], "deploy_repository",
        "{answer}"
    );
    assert_eq!(answer["actions"][0]["ok"], true, "{answer}");
    assert!(!answer.to_string().contains(SECRET), "{answer}");
    let id = answer["deployment_id"].as_str().expect("a deployment");
    let d = live(&server, id);
    assert_eq!(d["status"], "live", "{d}");
    // The app got the real value, put back by DevGem after the model sent `***`.
    let (status, body) = get(d["url"].as_str().unwrap()).expect("the app answers");
    assert_eq!(
        (status, body.as_str()),
        (200, format!("key={SECRET}").as_str())
    );

    // The chat's requests declare the tools; the pipeline's (its review and recommendations)
    // do not.
    let requests = standin.requests_to("POST", ":generateContent");
    let chat_rounds = requests
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("functionDeclarations"))
        .count();
    assert_eq!(chat_rounds, 2, "a call round, then the text");
    for r in &requests {
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains(SECRET),
            "the model was sent the secret: {body}"
        );
        assert!(
            body.contains("STRIPE_KEY"),
            "the model sees the name: {body}"
        );
    }
    // The second request carries the tool's result for the model to sum up.
    let second = requests[1].json();
    assert!(second.to_string().contains("functionResponse"), "{second}");
}

#[test]
fn with_the_model_failing_the_offline_engine_answers() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    key_app(app.path());
    let gemini = Arc::new(Gemini::new(Some(API_KEY)));
    gemini.script.push(
        "gemini",
        vec![Response::google_error(
            500,
            "INTERNAL",
            "the stand-in is down",
        )],
    );
    let standin = Standin::start(None, vec![gemini]);
    let server = serve_with_gemini(&home, &standin);

    let answer = chat(&server, &format!("deploy {}", app.path().display()));
    assert_eq!(answer["model"], "offline", "{answer}");
    assert_eq!(
        answer["actions"][0]["tool"], "deploy_repository",
        "{answer}"
    );
    assert_eq!(answer["actions"][0]["ok"], true, "{answer}");
    let id = answer["deployment_id"].as_str().expect("a deployment");
    assert!(answer["reply"].as_str().unwrap().contains(id), "{answer}");
    assert!(!standin.requests_to("POST", ":generateContent").is_empty());
    assert_eq!(live(&server, id)["status"], "live");
}

#[test]
fn a_bad_provider_stops_the_server_at_start_naming_the_variable() {
    let home = Home::new();
    let out = home
        .devgem()
        .arg("serve")
        .env("PORT", "0")
        .env("DEVGEM_LLM", "gpt-9")
        .output()
        .expect("run devgem serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEVGEM_LLM"), "{stderr}");
    assert!(
        stderr.contains("offline, gemini, vertex or openai"),
        "{stderr}"
    );
}

/// Runs `devgem chat ARGS` with `input` piped in; returns its stdout once it exits (at the end
/// of the input).
fn chat_in_terminal(home: &Home, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = home
        .devgem()
        .arg("chat")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start devgem chat");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("devgem chat ends");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The live URL `devgem chat` printed (`deployment d-… live URL`), answering with the app's body.
fn live_url_in(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with("deployment ") && l.contains(" live "))
        .unwrap_or_else(|| panic!("no live deployment in the output:\n{out}"));
    let url = line.rsplit(' ').next().unwrap().to_string();
    let (status, body) = get(&url).expect("the app answers");
    assert_eq!((status, body.as_str()), (200, "key=undefined"), "{out}");
    url
}

#[test]
fn devgem_chat_piped_deploys_a_folder_here_shows_progress_and_the_status_names_the_url() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    key_app(app.path());
    let out = chat_in_terminal(
        &home,
        &[],
        &format!("deploy {}\nstatus\n", app.path().display()),
    );
    let url = live_url_in(&out);
    // Plain progress lines while it ran, no colour codes when piped.
    assert!(out.lines().count() > 4, "{out}");
    assert!(!out.contains('\x1b'), "{out}");
    // "status" is about the deployment the session just made.
    let status_reply = out
        .lines()
        .rfind(|l| l.starts_with("devgem:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(status_reply.contains("live"), "{out}");
    assert!(out.contains(&url));
}

#[test]
fn devgem_chat_with_a_server_follows_the_deployment_over_its_event_stream() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    key_app(app.path());
    let server = home.serve(&[("DEVGEM_API_TOKEN", "chat-token")]);
    let out = chat_in_terminal(
        &home,
        &["--server", &server.url, "--token", "chat-token"],
        &format!("deploy {}\nexit\nstatus\n", app.path().display()),
    );
    live_url_in(&out);
    // `exit` ends the session: the line after it is never sent.
    assert_eq!(
        out.lines().filter(|l| l.starts_with("devgem:")).count(),
        1,
        "{out}"
    );
}
