//! Black-box tests of the models in the pipeline: the real `devgem deploy` with
//! `DEVGEM_LLM=gemini` against the Gemini stand-in (loopback, the documented shapes). Where
//! the rules are unsure (a lone `server.js` beside another script) the analyze stage asks the
//! model for a second opinion; the user sees both answers; a model that does not answer in
//! time leaves the rules to decide, and no prompt holds a value from the repository's `.env`.
//! Once the app answers, the model recommends runtime settings beside the rules.

mod support;

use devgem_testing::standin::Standin;
use devgem_testing::standin::gemini::{Gemini, text_response};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use support::{Home, get};

const API_KEY: &str = "test-gemini-key";
const ENV_SECRET: &str = "dotenv-value-7781";

/// No start script and two scripts: the rules start `server.js`, as npm would.
fn two_scripts(dir: &Path) {
    std::fs::write(dir.join("package.json"), "{}").unwrap();
    for (file, says) in [("server.js", "from server.js"), ("app.js", "from app.js")] {
        std::fs::write(
            dir.join(file),
            format!(
                "require('http').createServer((q, s) => s.end('{says}')).listen(process.env.PORT, '0.0.0.0');\n"
            ),
        )
        .unwrap();
    }
    std::fs::write(dir.join(".env"), format!("WELCOME_TEXT={ENV_SECRET}\n")).unwrap();
}

/// `devgem deploy --json` with the model at `endpoint`; the events and the final line.
fn deploy(home: &Home, app: &Path, endpoint: &str, bound_secs: &str) -> (Vec<Value>, Value) {
    let out = home
        .devgem()
        .args(["deploy", "--json"])
        .arg(app)
        .env("DEVGEM_LLM", "gemini")
        .env("GEMINI_API_KEY", API_KEY)
        .env("DEVGEM_GEMINI_ENDPOINT", endpoint)
        .env("DEVGEM_LLM_REVIEW_TIMEOUT_SECS", bound_secs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "deploy failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let last = lines.last().cloned().expect("a final line");
    (lines, last)
}

fn messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

fn stop(home: &Home, last: &Value) {
    home.run(&["stop", last["deployment_id"].as_str().unwrap()]);
}

#[test]
fn a_model_corrects_the_start_command_of_an_unsure_analysis_on_the_gemini_standin() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    two_scripts(app.path());
    let gemini = Arc::new(Gemini::new(Some(API_KEY)));
    gemini.script.push(
        "gemini-2.5-flash",
        vec![text_response(
            "```json\n{\"framework\": null, \"start_command\": \"node app.js\", \"port\": null, \
             \"system_packages\": [], \"reason\": \"app.js is the app; server.js is a leftover\"}\n```",
        ),
        text_response(
            "{\"memory_mib\": 1024, \"concurrency\": null, \"min_instances\": null, \
             \"reason\": \"the log shows large allocations\"}",
        )],
    );
    let standin = Standin::start(None, vec![gemini]);

    let (events, last) = deploy(&home, app.path(), &standin.base_url, "20");
    let said = messages(&events);
    assert!(
        said.iter().any(|m| m
            .contains("start command: the rules said node server.js, the model says node app.js")),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|m| m.contains("app.js is the app")),
        "{said:#?}"
    );
    let url = last["url"].as_str().expect("a live URL");
    assert_eq!(
        get(url).map(|(_, body)| body).as_deref(),
        Some("from app.js")
    );

    // Once live, the model recommends settings beside the rules.
    assert!(
        said.iter().any(|m| m.starts_with(
            "Recommended: memory 1024 MiB: the log shows large allocations (suggested by"
        )),
        "{said:#?}"
    );

    // The model saw the files and the manifest, never the value in .env.
    let asked = standin.requests_to("POST", "generateContent");
    assert_eq!(asked.len(), 2, "one review, one recommendation");
    let prompt = String::from_utf8_lossy(&asked[0].body).into_owned();
    assert!(
        prompt.contains("- app.js") && prompt.contains("--- package.json"),
        "{prompt}"
    );
    assert!(
        !prompt.contains(ENV_SECRET),
        "the prompt holds the .env value: {prompt}"
    );
    stop(&home, &last);
}

#[test]
fn a_model_that_does_not_answer_in_time_leaves_the_rules_to_decide() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    two_scripts(app.path());
    // A model endpoint that takes the connection and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());

    let (events, last) = deploy(&home, app.path(), &endpoint, "1");
    let said = messages(&events);
    assert!(
        said.iter()
            .any(|m| m
                .contains("did not answer within 1 s to review the analysis; the rules decide")),
        "{said:#?}"
    );
    let url = last["url"].as_str().expect("a live URL");
    assert_eq!(
        get(url).map(|(_, body)| body).as_deref(),
        Some("from server.js")
    );
    stop(&home, &last);
}
