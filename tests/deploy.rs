//! `devgem deploy` end to end on the embedded defaults: real fixture apps are fetched,
//! analyzed, built natively, started as processes and answer HTTP at the printed URL; bad
//! input ends in one clear line, a non-zero exit and a failed deployment that keeps the reason.

mod support;

use std::time::Duration;
use support::{Home, fixture, get, outcome};

/// Deploys a fixture, checks the URL answers with the fixture's own content, stops it.
fn deploys_and_answers(name: &str) {
    let home = Home::new();
    let path = fixture(name);
    let out = outcome(&home.run(&["deploy", path.to_str().unwrap()]));
    assert_eq!(
        out.code,
        Some(0),
        "deploy of {name} failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(out.status, "live");
    let (status, body) = get(&out.url).expect("the app answers");
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("Hello from {name}")),
        "unexpected body from {name}: {body}"
    );
    // Every one of the seven steps reported its progress.
    for step in [
        "Repository access",
        "Code analysis",
        "Dockerfile generation",
        "Environment config",
        "Security scan",
        "Container build",
        "Deploy",
    ] {
        assert!(out.stdout.contains(step), "{step} missing from the output");
    }
    // The command returned; the app keeps running until stopped.
    let stopped = home.run(&["stop", &out.id]);
    assert!(stopped.status.success());
    assert!(String::from_utf8_lossy(&stopped.stdout).contains("stopped"));
    support::wait_for("the app to stop answering", Duration::from_secs(15), || {
        get(&out.url).is_none().then_some(())
    });
}

#[test]
fn flask_app_is_deployed_and_answers() {
    deploys_and_answers("flask-basic");
}

#[test]
fn fastapi_app_is_deployed_and_answers() {
    deploys_and_answers("fastapi-basic");
}

#[test]
fn express_app_is_deployed_and_answers() {
    deploys_and_answers("express-basic");
}

#[test]
fn static_site_is_deployed_and_answers() {
    deploys_and_answers("static-site");
}

#[test]
fn json_mode_prints_one_event_per_line_and_a_final_summary() {
    let home = Home::new();
    let output = home.run(&["deploy", "--json", fixture("static-site").to_str().unwrap()]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "live");
    assert!(
        last["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let seqs: Vec<u64> = lines[..lines.len() - 1]
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let percents: Vec<u64> = lines[..lines.len() - 1]
        .iter()
        .map(|e| e["percent"].as_u64().unwrap())
        .collect();
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1]),
        "progress went backward: {percents:?}"
    );
    assert_eq!(*percents.last().unwrap(), 100);
}

/// Runs a deploy that must fail, and checks the user-facing contract of failures.
fn fails_clearly(home: &Home, source: &str, step: &str, cause: &str) -> support::Outcome {
    let out = outcome(&home.run(&["deploy", source]));
    assert_ne!(out.code, Some(0), "expected a failure:\n{}", out.stdout);
    assert_eq!(out.status, "failed");
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in stderr: {}", out.stderr))
        .to_string();
    assert!(
        error.contains(step),
        "{error:?} should name the step {step:?}"
    );
    assert!(
        error.contains(cause),
        "{error:?} should name the cause {cause:?}"
    );
    assert!(
        error.contains("(fix: "),
        "{error:?} should say how to fix it"
    );
    // The deployment is stored as failed, with the reason.
    let status = home.run(&["status", &out.id, "--json"]);
    let stored: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(stored["status"], "failed");
    assert!(stored["error"]["reason"].as_str().unwrap().contains(cause));
    out
}

#[test]
fn a_malformed_region_is_refused_before_anything_starts() {
    let home = Home::new();
    let source = fixture("static-site");
    let output = home.run(&[
        "deploy",
        "--region",
        "Europe West",
        source.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--region") && stderr.contains("europe-west1"),
        "{stderr}"
    );
    assert!(!stderr.contains("Queued"), "nothing was deployed: {stderr}");
}

#[test]
fn a_path_that_does_not_exist_fails_at_repository_access() {
    let home = Home::new();
    fails_clearly(
        &home,
        "/definitely/not/here",
        "Repository access",
        "does not exist",
    );
}

#[test]
fn an_empty_folder_fails_at_repository_access() {
    let home = Home::new();
    let empty = tempfile::tempdir().unwrap();
    fails_clearly(
        &home,
        empty.path().to_str().unwrap(),
        "Repository access",
        "empty",
    );
}

#[test]
fn a_folder_with_no_app_fails_at_code_analysis() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "just some notes\n").unwrap();
    fails_clearly(
        &home,
        dir.path().to_str().unwrap(),
        "Code analysis",
        "no web app",
    );
}

#[test]
fn a_git_url_that_does_not_resolve_is_refused_at_repository_access() {
    let home = Home::new();
    // Any public host is allowed, so the name is looked up when the deploy is asked for; it
    // is refused then, before a deployment exists.
    let output = home
        .devgem()
        .env("DEVGEM_ALLOWED_SOURCE_HOSTS", "*")
        .args(["deploy", "https://nonexistent.invalid/acme/shop.git"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("repository access: the host nonexistent.invalid could not be found"),
        "{stderr}"
    );
    assert!(stderr.contains("Fix: check the URL"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("deployment "),
        "a deployment was created"
    );
}

#[test]
fn an_app_that_crashes_fails_at_deploy_with_its_logs() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("requirements.txt"),
        "flask==3.1.*\ngunicorn==23.*\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "raise RuntimeError('boom: missing configuration')\n",
    )
    .unwrap();
    let out = fails_clearly(&home, dir.path().to_str().unwrap(), "Deploy", "the app");
    let logs = String::from_utf8_lossy(&home.run(&["logs", &out.id]).stdout).into_owned();
    assert!(
        logs.contains("boom: missing configuration"),
        "logs lack the crash: {logs}"
    );
}

#[test]
fn an_app_that_never_listens_fails_at_deploy_after_the_deadline() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("package.json"),
        r#"{"name":"sleeper","version":"1.0.0","scripts":{"start":"node sleeper.js"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sleeper.js"),
        "console.log('sleeping instead of listening'); setInterval(() => {}, 1000);\n",
    )
    .unwrap();
    let output = home
        .devgem()
        .args(["deploy", dir.path().to_str().unwrap()])
        .env("DEVGEM_READY_TIMEOUT_SECS", "3")
        .output()
        .unwrap();
    let out = outcome(&output);
    assert_eq!(out.status, "failed");
    assert!(out.stderr.contains("Deploy failed"), "{}", out.stderr);
    assert!(
        out.stderr.contains("sleeping instead of listening"),
        "{}",
        out.stderr
    );
}

#[test]
fn env_values_reach_the_app_but_never_the_store_events_or_output() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("package.json"),
        r#"{"name":"env-echo","version":"1.0.0","scripts":{"start":"node server.js"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("server.js"),
        r#"require("http").createServer((q, s) => s.end("key=" + process.env.STRIPE_KEY))
  .listen(process.env.PORT, "0.0.0.0");
"#,
    )
    .unwrap();
    let secret = "sk_live_d3vg3m_n0t_f0r_l0gs";
    let output = home.run(&[
        "deploy",
        "--json",
        "--env",
        &format!("STRIPE_KEY={secret}"),
        dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let (_, body) = get(last["url"].as_str().unwrap()).unwrap();
    assert_eq!(body, format!("key={secret}"));
    assert!(!stdout.contains(secret), "the secret was printed");
    assert!(!String::from_utf8_lossy(&output.stderr).contains(secret));
    let db = std::fs::read(home.path().join("devgem.db")).unwrap();
    let wal = std::fs::read(home.path().join("devgem.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is in the state store"
        );
    }
    let status = home.run(&["status", last["deployment_id"].as_str().unwrap(), "--json"]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.contains("STRIPE_KEY") && !status.contains(secret));
}

#[test]
fn analyze_json_prints_exactly_the_documented_object() {
    let home = Home::new();
    let output = home.run(&[
        "analyze",
        "--json",
        fixture("fullstack-monorepo").to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let documented = [
        "language",
        "framework",
        "runtime_version",
        "package_manager",
        "install_command",
        "build_command",
        "start_command",
        "entrypoint",
        "dev_port",
        "deploy_port",
        "reads_port_env",
        "system_packages",
        "env_vars",
        "services",
        "confidence",
        "evidence",
        "candidates",
    ];
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = documented.to_vec();
    sorted.sort();
    assert_eq!(keys, sorted, "top-level keys");
    let services = value["services"].as_array().unwrap();
    assert!(!services.is_empty(), "a monorepo lists its services");
    for service in services {
        assert!(service["path"].is_string());
        assert!(service.get("details").is_none());
    }
    // Without --json: a readable summary; on a missing path: a clear error and exit 1.
    let summary = home.run(&["analyze", fixture("flask-basic").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&summary.stdout).contains("flask"));
    let missing = home.run(&["analyze", "/no/such/app"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}

#[test]
fn dockerfile_write_creates_the_dockerfile_and_dockerignore() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    for file in ["app.py", "requirements.txt"] {
        std::fs::copy(fixture("flask-basic").join(file), dir.path().join(file)).unwrap();
    }
    let printed = home.run(&["dockerfile", dir.path().to_str().unwrap()]);
    let printed = String::from_utf8_lossy(&printed.stdout).into_owned();
    assert!(printed.contains("FROM python:"), "{printed}");
    let written = home.run(&["dockerfile", "--write", dir.path().to_str().unwrap()]);
    assert!(written.status.success());
    let dockerfile = std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap();
    assert_eq!(dockerfile.trim_end(), printed.trim_end());
    let ignore = std::fs::read_to_string(dir.path().join(".dockerignore")).unwrap();
    for entry in [".git", ".env"] {
        assert!(
            ignore.lines().any(|l| l.trim_start_matches('/') == entry),
            "{entry} not ignored"
        );
    }
}

#[test]
fn serve_refuses_to_expose_itself_without_authentication() {
    let home = Home::new();
    let out = home
        .devgem()
        .args(["serve"])
        .env("DEVGEM_LISTEN", "0.0.0.0")
        .env("PORT", "0")
        .env_remove("DEVGEM_API_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DEVGEM_LISTEN") && err.contains("DEVGEM_API_TOKEN"),
        "{err}"
    );
}

#[test]
fn cloud_run_without_a_project_is_refused_at_start_with_the_fix() {
    let home = Home::new();
    let out = home
        .devgem()
        .args(["serve"])
        .env("DEVGEM_RUNTIME", "cloudrun")
        .env_remove("GOOGLE_CLOUD_PROJECT")
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GOOGLE_CLOUD_PROJECT") && err.contains("gcloud config get-value project"),
        "{err}"
    );
}

#[test]
fn print_config_shows_the_chosen_adapters_and_masks_secrets() {
    let home = Home::new();
    let out = home
        .devgem()
        .args(["serve", "--print-config"])
        .env_remove("PORT")
        .env("DEVGEM_API_TOKEN", "tok-5ecret")
        .env("GITHUB_TOKEN", "ghp_5ecret")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("store         sqlite"), "{text}");
    assert!(text.contains("listen        127.0.0.1:8080"), "{text}");
    assert!(text.contains("api_token     ***"), "{text}");
    assert!(!text.contains("5ecret"), "{text}");
}

/// `git ARGS` in `dir`, which must succeed.
fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=DevGem Test",
            "-c",
            "user.email=test@devgem.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deploys `source` with `--json`, stops it, and returns the output.
fn deploy_and_stop(home: &Home, source: &str) -> String {
    let output = home.run(&["deploy", "--json", source]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "deploy of {source} failed:\n{stdout}"
    );
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    home.run(&["stop", last["deployment_id"].as_str().unwrap()]);
    stdout
}

#[test]
fn a_second_deployment_of_the_same_commit_reuses_its_analysis() {
    let home = Home::new();
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("index.html"),
        "<h1>Hello from a repository</h1>\n",
    )
    .unwrap();
    git(repo.path(), &["init", "--quiet"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "--quiet", "-m", "first"]);
    let url = format!("file://{}", repo.path().display());
    const REUSED: &str = "reused the analysis of commit";

    let first = deploy_and_stop(&home, &url);
    assert!(!first.contains(REUSED), "{first}");
    let second = deploy_and_stop(&home, &url);
    assert!(second.contains(REUSED), "{second}");
    assert!(second.contains("reused the scan of commit"), "{second}");
    assert!(second.contains("Detected static"), "{second}");

    // A new commit is analysed again: here the site moved into public/.
    std::fs::create_dir(repo.path().join("public")).unwrap();
    git(repo.path(), &["mv", "index.html", "public/index.html"]);
    git(repo.path(), &["commit", "--quiet", "-m", "second"]);
    let third = deploy_and_stop(&home, &url);
    assert!(!third.contains(REUSED), "{third}");
    assert!(third.contains("public"), "{third}");

    // A folder's content can change under the same commit: it is always analysed.
    let path = repo.path().to_str().unwrap();
    deploy_and_stop(&home, path);
    let again = deploy_and_stop(&home, path);
    assert!(!again.contains(REUSED), "{again}");
}
