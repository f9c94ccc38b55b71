//! What a user sees when things go wrong: apps that crash, never listen, or listen on the
//! wrong port; builds that fail or are cancelled. Each app is a small script in a tempdir.

mod common;

use common::{Lines, plan, process_alive, wait_until};
use devgem_domain::{DeploymentId, ServiceName};
use devgem_local::{BuildConfig, NativeBuilder, ProcessRuntime, RunConfig};
use devgem_plan::{BuildPlan, Language};
use devgem_ports::{BuildError, BuildRequest, Builder, CancellationToken, Runtime, RuntimeError};
use std::path::Path;
use std::time::{Duration, Instant};

fn quick_runtime(base: &Path) -> ProcessRuntime {
    ProcessRuntime::with_config(
        base,
        common::secrets(),
        RunConfig {
            ready_timeout: Duration::from_secs(5),
            http_timeout: Duration::from_secs(2),
            stop_grace: Duration::from_secs(2),
            wrong_port_grace: Duration::from_secs(1),
        },
    )
}

/// Deploys `app.py` (written into a fresh folder) started by `start`.
async fn deploy_script(script: &str, start: &str) -> (Result<String, RuntimeError>, String) {
    deploy_script_with(script, plan(Language::Static, None, start)).await
}

/// [`deploy_script`] with a plan of its own.
async fn deploy_script_with(
    script: &str,
    plan: BuildPlan,
) -> (Result<String, RuntimeError>, String) {
    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("app.py"), script).unwrap();
    let runtime = quick_runtime(&work.path().join("run"));
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let lines = Lines::default();
    let result = runtime
        .deploy(
            &common::release(
                &id,
                "script",
                common::local_build(app.clone()),
                plan,
                vec![],
            )
            .await,
            &lines,
            &CancellationToken::new(),
        )
        .await;
    // A failed start leaves nothing running.
    if result.is_err() {
        assert!(runtime.status(&id).is_none());
    }
    let _ = runtime.stop(&id, None).await;
    (result.map(|r| r.url), lines.text())
}

fn failure(result: Result<String, RuntimeError>) -> (String, String) {
    match result {
        Err(RuntimeError::Failed { reason, hint }) => (reason, hint),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_app_that_crashes_at_start_fails_with_its_traceback() {
    let (result, log) = deploy_script(
        "import sys\nprint('starting up', flush=True)\nraise RuntimeError('database URL missing')\n",
        "python3 app.py",
    )
    .await;
    let (reason, _) = failure(result);
    assert!(
        reason.contains("exited with code 1 before listening on $PORT"),
        "{reason}"
    );
    assert!(
        reason.contains("RuntimeError: database URL missing"),
        "{reason}"
    );
    assert!(
        log.contains("starting up"),
        "the app's output was not streamed: {log}"
    );
}

#[tokio::test]
async fn a_missing_module_at_start_gets_a_hint() {
    let (result, _) = deploy_script("import devgem_no_such_module\n", "python3 app.py").await;
    let (reason, hint) = failure(result);
    assert!(
        reason.contains("No module named 'devgem_no_such_module'"),
        "{reason}"
    );
    assert!(hint.contains("requirements.txt"), "{hint}");
}

#[tokio::test]
async fn an_app_that_never_listens_fails_after_the_deadline() {
    let started = Instant::now();
    let (result, _) = deploy_script(
        "import time\nprint('warming up forever', flush=True)\ntime.sleep(600)\n",
        "python3 app.py",
    )
    .await;
    let (reason, _) = failure(result);
    assert!(reason.contains("did not listen on $PORT"), "{reason}");
    assert!(reason.contains("warming up forever"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn an_app_on_a_hard_coded_port_gets_the_port_hint() {
    let other = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = other.local_addr().unwrap().port();
    drop(other);
    let script = format!(
        "import http.server\nhttp.server.HTTPServer(('0.0.0.0', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    );
    let (result, _) = deploy_script(&script, "python3 app.py").await;
    let (reason, hint) = failure(result);
    assert!(
        reason.contains(&format!("listens on port {port}, not $PORT")),
        "{reason}"
    );
    assert!(hint.contains("PORT environment variable"), "{hint}");

    // With the analyzer's finding in the plan, the error says where the port is set.
    let with_finding = BuildPlan {
        hard_coded_port: Some(devgem_plan::PortFinding {
            port,
            file: "app.py".into(),
            line: 2,
        }),
        ..plan(Language::Static, None, "python3 app.py")
    };
    let (result, _) = deploy_script_with(&script, with_finding).await;
    let (reason, _) = failure(result);
    assert!(
        reason.contains(&format!(
            "listens on port {port} (app.py line 2), not $PORT"
        )),
        "{reason}"
    );
    assert!(reason.contains("read the port from $PORT"), "{reason}");
}

#[tokio::test]
async fn an_app_answering_500_fails() {
    let script = "import http.server, os\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        print('boom on GET', flush=True)\n        self.send_response(500)\n        self.end_headers()\nhttp.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n";
    let (result, _) = deploy_script(script, "python3 -u app.py").await;
    let (reason, _) = failure(result);
    assert!(reason.contains("GET / answered 500"), "{reason}");
    assert!(reason.contains("boom on GET"), "{reason}");
}

#[tokio::test]
async fn an_app_that_accepts_but_never_answers_fails() {
    let script = "import os, socket, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', int(os.environ['PORT'])))\ns.listen(16)\nprint('listening, never answering', flush=True)\ntime.sleep(600)\n";
    let (result, _) = deploy_script(script, "python3 app.py").await;
    let (reason, hint) = failure(result);
    assert!(reason.contains("did not answer GET / in time"), "{reason}");
    assert!(reason.contains("never answering"), "{reason}");
    assert!(hint.contains("answer HTTP"), "{hint}");
}

#[tokio::test]
async fn the_user_env_reaches_the_app_and_a_redeploy_replaces_the_old_process() {
    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let script = "import http.server, os\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = ('greeting=' + os.environ.get('GREETING', '') + ' service=' + os.environ.get('K_SERVICE', '')).encode()\n        self.send_response(200)\n        self.end_headers()\n        self.wfile.write(body)\nhttp.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n";
    std::fs::write(app.join("app.py"), script).unwrap();
    let runtime = quick_runtime(&work.path().join("run"));
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let request = common::release(
        &id,
        "envy",
        common::local_build(app.clone()),
        plan(Language::Static, None, "python3 app.py"),
        vec![("GREETING".into(), devgem_ports::SecretValue::new("bonjour"))],
    )
    .await;
    let lines = Lines::default();
    let cancel = CancellationToken::new();
    let first = runtime.deploy(&request, &lines, &cancel).await.unwrap();
    let (_, body) = common::get(&first.url).unwrap();
    assert!(body.contains("greeting=bonjour service=envy"), "{body}");
    assert!(!lines.text().contains("bonjour"));
    let first_pid = runtime.status(&id).unwrap().pid as i32;

    let second = runtime.deploy(&request, &lines, &cancel).await.unwrap();
    assert!(!process_alive(first_pid), "the first run still runs");
    assert!(common::refuses(&first.url) || first.url == second.url);
    assert_eq!(common::get(&second.url).unwrap().0, 200);
    runtime.stop(&id, None).await.unwrap();
    wait_until("the port refuses", Duration::from_secs(5), || {
        common::refuses(&second.url)
    })
    .await;
}

#[tokio::test]
async fn cancelling_a_deploy_kills_the_app() {
    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let runtime = quick_runtime(&work.path().join("run"));
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let cancel = CancellationToken::new();
    let request = common::release(
        &id,
        "slow",
        common::local_build(app.clone()),
        plan(Language::Static, None, "echo $$ > pid; exec sleep 60"),
        vec![],
    )
    .await;
    let lines = Lines::default();
    let canceller = cancel.clone();
    let pid_file = app.join("pid");
    tokio::spawn(async move {
        wait_until("the app started", Duration::from_secs(5), || {
            pid_file.exists()
        })
        .await;
        canceller.cancel();
    });
    let started = Instant::now();
    let result = runtime.deploy(&request, &lines, &cancel).await;
    assert!(matches!(result, Err(RuntimeError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let pid: i32 = std::fs::read_to_string(app.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!process_alive(pid));
}

async fn build_request(source: &Path, plan: BuildPlan) -> BuildRequest {
    common::build_request_for(
        &DeploymentId::from_uuid(uuid::Uuid::now_v7()),
        "b",
        source,
        plan,
    )
    .await
}

#[tokio::test]
async fn a_failing_build_command_reports_its_exit_code_output_and_hint() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("index.html"), "hi").unwrap();
    let builder = NativeBuilder::new(work.path().join("builds"), common::objects());
    let mut p = plan(
        Language::Static,
        Some("echo compiling; echo 'Error: pg_config executable not found.' >&2; exit 3"),
        "true",
    );
    p.build_command = Some("echo never runs".into());
    let lines = Lines::default();
    let result = builder
        .build(
            &build_request(work.path(), p).await,
            &lines,
            &CancellationToken::new(),
        )
        .await;
    match result {
        Err(BuildError::Failed { reason, hint }) => {
            assert!(reason.contains("exited with code 3"), "{reason}");
            assert!(
                reason.contains("pg_config executable not found"),
                "{reason}"
            );
            assert!(hint.contains("libpq-dev"), "{hint}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(lines.text().contains("compiling"));
    assert!(!lines.text().contains("never runs"));
}

#[tokio::test]
async fn a_build_command_that_overruns_its_timeout_fails() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("index.html"), "hi").unwrap();
    let builder = NativeBuilder::with_config(
        work.path().join("builds"),
        common::objects(),
        BuildConfig {
            command_timeout: Duration::from_secs(1),
            ..BuildConfig::default()
        },
    );
    let started = Instant::now();
    let result = builder
        .build(
            &build_request(
                work.path(),
                plan(Language::Static, Some("sleep 30"), "true"),
            )
            .await,
            &Lines::default(),
            &CancellationToken::new(),
        )
        .await;
    match result {
        Err(BuildError::Failed { reason, .. }) => {
            assert!(reason.contains("did not finish within 1 s"), "{reason}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn cancelling_a_long_install_is_quick_and_leaves_no_process() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("index.html"), "hi").unwrap();
    let builds = work.path().join("builds");
    let builder = NativeBuilder::new(&builds, common::objects());
    let request = build_request(
        work.path(),
        plan(
            Language::Static,
            Some("sleep 30 & echo $! > sleep.pid; wait"),
            "true",
        ),
    )
    .await;
    let pid_file = builds
        .join(request.deployment_id.as_str())
        .join("sleep.pid");
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    let watched = pid_file.clone();
    tokio::spawn(async move {
        wait_until("the install started", Duration::from_secs(10), || {
            std::fs::read_to_string(&watched).is_ok_and(|s| s.ends_with('\n'))
        })
        .await;
        canceller.cancel();
    });
    let result = builder.build(&request, &Lines::default(), &cancel).await;
    let cancelled_at = Instant::now();
    assert!(matches!(result, Err(BuildError::Cancelled)), "{result:?}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_until("the sleep is gone", Duration::from_secs(2), || {
        !process_alive(pid)
    })
    .await;
    assert!(cancelled_at.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_missing_app_folder_fails_the_build() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("index.html"), "hi").unwrap();
    let mut p = plan(Language::Static, None, "true");
    p.app_dir = "web".into();
    let result = NativeBuilder::new(work.path().join("builds"), common::objects())
        .build(
            &build_request(work.path(), p).await,
            &Lines::default(),
            &CancellationToken::new(),
        )
        .await;
    assert!(
        matches!(result, Err(BuildError::Failed { ref reason, .. }) if reason.contains("web")),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_app_bound_to_ipv6_loopback_only_gets_the_bind_hint() {
    let script = "import http.server, os, socket\nclass S(http.server.HTTPServer):\n    address_family = socket.AF_INET6\nS(('::1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n";
    let (result, _) = deploy_script(script, "python3 app.py").await;
    let (reason, hint) = failure(result);
    assert!(reason.contains("listens on [::1]"), "{reason}");
    assert!(hint.contains("0.0.0.0"), "{hint}");
}

#[tokio::test]
async fn stop_kills_an_app_that_ignores_sigterm() {
    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "stubborn").unwrap();
    let runtime = quick_runtime(&work.path().join("run"));
    let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let request = common::release(
        &id,
        "stubborn",
        common::local_build(app.clone()),
        plan(
            Language::Static,
            None,
            "trap '' TERM; exec python3 -m http.server $PORT",
        ),
        vec![],
    )
    .await;
    let release = runtime
        .deploy(&request, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap();
    let started = Instant::now();
    runtime.stop(&id, None).await.unwrap();
    assert!(common::refuses(&release.url));
    // The grace period (2 s here) passed, then SIGKILL.
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn a_missing_toolchain_fails_with_an_install_hint() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("requirements.txt"), "flask\n").unwrap();
    std::fs::write(src.join("package.json"), "{}").unwrap();
    let builder = NativeBuilder::with_config(
        work.path().join("builds"),
        common::objects(),
        BuildConfig {
            tool_path: Some(work.path().join("empty-bin").into_os_string()),
            ..BuildConfig::default()
        },
    );
    for (language, program) in [(Language::Python, "python3"), (Language::Node, "node")] {
        let result = builder
            .build(
                &build_request(&src, plan(language, Some("true"), "true")).await,
                &Lines::default(),
                &CancellationToken::new(),
            )
            .await;
        match result {
            Err(BuildError::Failed { reason, hint }) => {
                assert!(
                    reason.contains(&format!("`{program}` is not installed")),
                    "{reason}"
                );
                assert!(hint.contains("install"), "{hint}");
            }
            other => panic!("expected Failed for {language}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_pip_install_that_finds_no_distribution_names_it_and_hints() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("requirements.txt"), "flask==0.0.1\n").unwrap();
    let builder = NativeBuilder::new(work.path().join("builds"), common::objects());
    // --no-index keeps the test off the network: pip looks nowhere and finds nothing.
    let p = plan(
        Language::Python,
        Some("pip install --no-index -r requirements.txt"),
        "true",
    );
    let lines = Lines::default();
    let result = builder
        .build(
            &build_request(&src, p).await,
            &lines,
            &CancellationToken::new(),
        )
        .await;
    match result {
        Err(BuildError::Failed { reason, hint }) => {
            assert!(
                reason
                    .starts_with("`pip install --no-index -r requirements.txt` exited with code 1"),
                "{reason}"
            );
            assert!(reason.contains("flask==0.0.1"), "{reason}");
            assert!(hint.contains("requirements.txt"), "{hint}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(lines.text().contains(" -m venv --without-pip .venv"));
}

/// An app that answers with its greeting and the revision it is.
const ECHO_APP: &str = "import http.server, os\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = ('greeting=' + os.environ.get('GREETING', '') + ' revision=' + os.environ.get('K_REVISION', '')).encode()\n        self.send_response(200)\n        self.end_headers()\n        self.wfile.write(body)\nhttp.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n";

#[tokio::test]
async fn revisions_are_listed_rolled_back_to_and_given_new_env() {
    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("app.py"), ECHO_APP).unwrap();
    let runtime = quick_runtime(&work.path().join("run"));
    let service = ServiceName::derive_from("rolling");
    let (lines, cancel) = (Lines::default(), CancellationToken::new());
    let mut releases = Vec::new();
    for greeting in ["one", "two"] {
        let id = DeploymentId::from_uuid(uuid::Uuid::now_v7());
        let spec = common::release(
            &id,
            "rolling",
            common::local_build(app.clone()),
            plan(Language::Static, None, "python3 app.py"),
            vec![("GREETING".into(), devgem_ports::SecretValue::new(greeting))],
        )
        .await;
        releases.push(runtime.deploy(&spec, &lines, &cancel).await.unwrap());
    }
    let (first, second) = (&releases[0], &releases[1]);
    assert!(common::get(&first.url).unwrap().1.contains("greeting=one"));
    let body = common::get(&second.url).unwrap().1;
    assert!(
        body.contains(&format!("greeting=two revision={}", second.revision)),
        "{body}"
    );

    let revisions = runtime.revisions(&service, None).await.unwrap();
    let names: Vec<&str> = revisions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, [second.revision.as_str(), first.revision.as_str()]);
    assert!(revisions.iter().all(|r| r.serving));

    // Roll back: the first revision takes all traffic, the second stops.
    let back = runtime
        .route_traffic(&service, None, &first.revision, &lines, &cancel)
        .await
        .unwrap();
    assert_eq!(back.revision, first.revision);
    wait_until("the second revision stops", Duration::from_secs(5), || {
        common::refuses(&second.url)
    })
    .await;
    let serving: Vec<String> = runtime
        .revisions(&service, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.serving)
        .map(|r| r.name)
        .collect();
    assert_eq!(serving, std::slice::from_ref(&first.revision));

    // A plain value replaces the secret one, as a new revision.
    let update = devgem_ports::EnvUpdate {
        set: [("GREETING".to_string(), "three".to_string())].into(),
        ..Default::default()
    };
    let changed = runtime
        .update_env(&service, None, &update, &lines, &cancel)
        .await
        .unwrap();
    assert_eq!(changed.revision, format!("{}-r2", first.revision));
    let body = common::get(&changed.url).unwrap().1;
    assert!(
        body.contains(&format!("greeting=three revision={}", changed.revision)),
        "{body}"
    );

    let unknown = runtime
        .route_traffic(&service, None, "rolling-nope", &lines, &cancel)
        .await
        .unwrap_err();
    let (reason, hint) = failure(Err(unknown));
    assert!(reason.contains("no revision \"rolling-nope\""), "{reason}");
    assert!(hint.contains(&changed.revision), "{hint}");
    for r in runtime.revisions(&service, None).await.unwrap() {
        runtime.stop(&r.deployment_id, None).await.unwrap();
    }
}
