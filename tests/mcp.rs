//! DevGem as an MCP server, driven by a client this project did not write: the official Python
//! `mcp` package (2.x, and the last 1.x for the older protocol versions), installed by
//! scripts/mcp-client-setup.sh. The client scripts in tests/mcp/ make the checks; these tests
//! start the server (`devgem mcp` over stdio, `devgem serve` for `POST /mcp`) and run them.
//! Without the client the tests fail under CI and skip loudly elsewhere.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Home, fixture, http};

const TOKEN: &str = "mcp-test-token";

/// The Python of the venv holding `mcp` `major`.x, or None (after saying why) to skip.
fn client_python(major: &str) -> Option<PathBuf> {
    let root = std::env::var_os("DEVGEM_MCP_CLIENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/devgem/mcp-client")
        });
    let python = root.join(major).join("bin/python");
    let works = Command::new(&python)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    let why = format!(
        "the Python MCP client {major}.x is not installed at {}: run scripts/mcp-client-setup.sh",
        python.display()
    );
    assert!(!devgem_testing::under_ci(), "{why}");
    eprintln!("\n==========\nSKIPPED: {why}\n==========\n");
    None
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp")
}

/// How the client reaches the server.
enum Transport<'a> {
    /// It starts `devgem mcp` with this home.
    Stdio(&'a Home),
    /// It POSTs to this URL, with this token (or none).
    Http {
        url: &'a str,
        token: Option<&'a str>,
    },
}

/// Runs tests/mcp/`script` with `python`; panics with its output unless it succeeds, and
/// returns the JSON line it reported last.
fn run(python: &Path, script: &str, transport: Transport, env: &[(&str, &str)]) -> Value {
    let mut cmd = Command::new(python);
    cmd.arg(scripts().join(script))
        .current_dir(scripts())
        .env_remove("DEVGEM_SERVER")
        .env_remove("FUNCTION_TARGET")
        .env_remove("DEVGEM_LISTEN")
        .env_remove("K_SERVICE")
        .env_remove("MCP_TOKEN")
        .env("RUST_LOG", "warn");
    match transport {
        Transport::Stdio(home) => {
            cmd.env("MCP_TRANSPORT", "stdio")
                .env("MCP_COMMAND", env!("CARGO_BIN_EXE_devgem"))
                .env("DEVGEM_HOME", home.path());
        }
        Transport::Http { url, token } => {
            cmd.env("MCP_TRANSPORT", "http").env("MCP_URL", url);
            if let Some(token) = token {
                cmd.env("MCP_TOKEN", token);
            }
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the MCP client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{script} reported no JSON ({e}):\n{stdout}\n{stderr}"))
}

fn flask() -> String {
    fixture("flask-basic").display().to_string()
}

/// Progress values as numbers, in the order they arrived.
fn progress(report: &Value) -> Vec<f64> {
    report["progress"]
        .as_array()
        .expect("progress")
        .iter()
        .map(|p| p.as_f64().expect("a number"))
        .collect()
}

#[test]
fn the_tools_are_the_registry_with_schemas_and_bad_arguments_are_named() {
    let Some(python) = client_python("v2") else {
        return;
    };
    let home = Home::new();
    // The 2026-07-28 protocol (server/discover) and the initialize handshake.
    for mode in ["auto", "legacy"] {
        let report = run(
            &python,
            "tools.py",
            Transport::Stdio(&home),
            &[("MCP_MODE", mode)],
        );
        assert_eq!(report["tools"], 16, "{report}");
        assert_eq!(report["server"], "devgem", "{report}");
        let expected = if mode == "auto" {
            "2026-07-28"
        } else {
            "2025-11-25"
        };
        assert_eq!(report["protocol_version"], expected, "{report}");
        assert!(
            report["bad_argument_error"]
                .as_str()
                .unwrap()
                .contains("deployment_id"),
            "{report}"
        );
    }
}

#[test]
fn deploy_repository_over_stdio_waits_until_live_with_progress_in_order() {
    let Some(python) = client_python("v2") else {
        return;
    };
    let home = Home::new();
    let source = flask();
    let report = run(
        &python,
        "deploy.py",
        Transport::Stdio(&home),
        &[("MCP_SOURCE", &source)],
    );
    let values = progress(&report);
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{report}");
    assert_eq!(values.last(), Some(&100.0), "{report}");
    // The app outlives the MCP session (the client closed it): it still answers.
    let url = report["url"].as_str().unwrap();
    let (status, body) = support::get(url).expect("the app answers after the session");
    assert_eq!(status, 200);
    assert!(body.contains("flask-basic"), "{body}");
}

#[test]
fn post_mcp_deploys_with_the_token_and_refuses_calls_without_it() {
    let Some(python) = client_python("v2") else {
        return;
    };
    let home = Home::new();
    let server = home.serve(&[("DEVGEM_API_TOKEN", TOKEN)]);
    let url = format!("{}/mcp", server.url);

    // Without the token, or with a wrong one: 401 before any MCP, for the official client too.
    let res = http()
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .expect("POST /mcp");
    assert_eq!(res.status().as_u16(), 401);
    for bad in ["", "not-the-token"] {
        let report = run(
            &python,
            "unauthorized.py",
            Transport::Http {
                url: &url,
                token: None,
            },
            &[("MCP_BAD_TOKEN", bad)],
        );
        assert_eq!(report["refused"], true, "{report}");
    }

    let authorized = || Transport::Http {
        url: &url,
        token: Some(TOKEN),
    };
    let report = run(&python, "tools.py", authorized(), &[]);
    assert_eq!(report["tools"], 16, "{report}");
    let source = flask();
    let report = run(
        &python,
        "deploy.py",
        authorized(),
        &[("MCP_SOURCE", &source)],
    );
    let values = progress(&report);
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{report}");
    assert!(
        report["url"].as_str().unwrap().starts_with("http://"),
        "{report}"
    );
}

#[test]
fn older_clients_are_served_in_the_versions_they_offer() {
    let Some(python) = client_python("v1") else {
        return;
    };
    let home = Home::new();
    for offered in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let report = run(
            &python,
            "v1_client.py",
            Transport::Stdio(&home),
            &[("MCP_PROTOCOL_VERSION", offered)],
        );
        assert_eq!(report["protocol_version"], offered, "{report}");
    }
    // Over HTTP, a whole deployment with the 1.x client.
    let server = home.serve(&[("DEVGEM_API_TOKEN", TOKEN)]);
    let url = format!("{}/mcp", server.url);
    let source = flask();
    let report = run(
        &python,
        "v1_client.py",
        Transport::Http {
            url: &url,
            token: Some(TOKEN),
        },
        &[("MCP_SOURCE", &source)],
    );
    assert_eq!(report["tools"], 16, "{report}");
    assert!(
        report["url"].as_str().unwrap().starts_with("http://"),
        "{report}"
    );
}
