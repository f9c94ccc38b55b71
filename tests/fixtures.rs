//! Every Python, Node.js and static fixture app is deployed with the native local builder and
//! runtime and must answer `GET /` with 200 and its own name in the body: proof that the
//! analyzer's plans (install, build and start commands, port handling) really work.
//!
//! Fixtures for languages this machine has no toolchain for (Go, Rust, Java, PHP, Ruby, .NET,
//! Elixir, Deno, Bun) are covered by the analyzer's snapshot tests only. On this machine
//! `poetry install` cannot resolve (the registry proxy answers 404 to PyPI's per-release JSON
//! API, which Poetry needs), so flask-poetry also proves the builder's pip fallback.

mod support;

use std::path::Path;
use std::sync::Mutex;
use support::{Home, get, outcome};

/// How many deployments run at once (this machine has 2 cores).
const PARALLEL: usize = 2;

fn analysis(dir: &Path) -> Option<serde_json::Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_devgem"))
        .args(["analyze", "--json", dir.to_str()?])
        .output()
        .ok()?;
    serde_json::from_slice(&output.stdout).ok()
}

fn deployable_here(dir: &Path) -> bool {
    analysis(dir)
        .is_some_and(|a| matches!(a["language"].as_str(), Some("python" | "node" | "static")))
}

/// `--env NAME=VALUE` for every variable the analysis says the app requires, as a user
/// following DevGem's warning would pass them.
fn required_env(dir: &Path) -> Vec<String> {
    let Some(a) = analysis(dir) else {
        return vec![];
    };
    a["env_vars"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["required"] == true)
        .filter_map(|v| v["name"].as_str())
        .flat_map(|name| ["--env".to_string(), format!("{name}=devgem-test-value")])
        .collect()
}

/// Deploys one fixture; `Err` says what went wrong.
fn check(name: &str) -> Result<(), String> {
    let home = Home::new();
    let path = support::fixture(name);
    let mut args = vec!["deploy".to_string()];
    args.extend(required_env(&path));
    args.push(path.to_str().unwrap().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = home.run(&args);
    let out = outcome(&output);
    if out.status != "live" {
        let tail: Vec<&str> = out.stdout.lines().rev().take(25).collect();
        return Err(format!(
            "{name}: {} — {}\n{}",
            out.status,
            out.stderr.trim(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    // Streamlit and Gradio serve a generic JavaScript shell at `/`; their own text is
    // rendered in the browser, so for them a 200 page is the proof.
    let js_shell = name.starts_with("streamlit") || name.starts_with("gradio");
    let result = match get(&out.url) {
        Some((200, body)) if body.contains(name) || (js_shell && !body.is_empty()) => Ok(()),
        Some((status, body)) => Err(format!(
            "{name}: GET / answered {status} without the fixture's name: {}",
            body.chars().take(300).collect::<String>()
        )),
        None => Err(format!("{name}: nothing answers at {}", out.url)),
    };
    home.run(&["stop", &out.id]);
    result
}

#[test]
fn every_python_node_and_static_fixture_deploys_natively_and_answers() {
    let root = support::fixture("");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter(|e| deployable_here(&e.path()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // DEVGEM_FIXTURES=a,b runs only those (for working on one fixture).
    let sampled =
        std::env::var_os("CI").is_some() && std::env::var_os("DEVGEM_FIXTURES_ALL").is_none();
    if let Ok(only) = std::env::var("DEVGEM_FIXTURES") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        names.retain(|n| only.contains(&n.as_str()));
        assert!(
            !names.is_empty(),
            "DEVGEM_FIXTURES matched no deployable fixture"
        );
    } else {
        assert!(
            names.len() >= 20,
            "expected at least 20 deployable fixtures, found {names:?}"
        );
        if sampled {
            // CI deploys every fourth fixture, the same ones each run, to stay well inside its
            // time; scripts/test-all-fixtures.sh deploys them all.
            names = names.into_iter().step_by(4).collect();
            eprintln!("CI sample: {} fixtures: {}", names.len(), names.join(", "));
        }
    }
    let queue = Mutex::new(names.clone());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| {
                loop {
                    let Some(name) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let started = std::time::Instant::now();
                    let result = check(&name);
                    eprintln!(
                        "fixture {name}: {} in {:.1} s",
                        if result.is_ok() { "live" } else { "FAILED" },
                        started.elapsed().as_secs_f64()
                    );
                    if let Err(e) = result {
                        failures.lock().unwrap().push(e);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
}
