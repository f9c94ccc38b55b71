//! The workspace's design rules, checked: the pure crates (domain, analyzer, plan) reach no I/O
//! crate, the ports name no adapter, only the Google adapter talks to Google Cloud, nothing
//! depends on the binary, and every module says what it is in a leading `//!` line.
//!
//! Dependencies come from `cargo metadata` (the resolved graph for the platform the tests run
//! on); a violation names the crate and the chain of dependencies that reaches the offender.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates that must stay pure: no I/O crate may be among their normal or build dependencies,
/// directly or through others. `devgem-plan` is checked once it exists.
const PURE: [&str; 6] = [
    "devgem-domain",
    "devgem-sources",
    "devgem-analyzer",
    "devgem-plan",
    "devgem-diagnose",
    "devgem-tools",
];
const OPTIONAL: [&str; 1] = ["devgem-plan"];

/// What the ports (the traits the app needs) must not reach: the adapters and the analyzer.
const NOT_FOR_PORTS: [&str; 5] = [
    "devgem-embedded",
    "devgem-local",
    "devgem-gcp",
    "devgem-gcp-run",
    "devgem-analyzer",
];

/// The crates that may name the Google Cloud client crates: the state, bus and objects
/// adapters, and the build-and-run adapters.
const GOOGLE_ADAPTERS: [&str; 2] = ["devgem-gcp", "devgem-gcp-run"];

/// The binary crate: it wires everything and nothing may depend on it.
const BINARY: &str = "devgem";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Crates that do I/O: an async runtime, HTTP, SQLite, Google Cloud, Docker.
fn is_io(name: &str) -> bool {
    matches!(
        name,
        "tokio" | "hyper" | "reqwest" | "rusqlite" | "firestore" | "bollard"
    ) || is_google_cloud(name)
}

fn is_google_cloud(name: &str) -> bool {
    name == "firestore" || name.starts_with("google-cloud-")
}

/// The resolved dependency graph of the workspace.
struct Graph {
    names: HashMap<String, String>,
    /// Package id to the ids of its normal and build (non-dev) dependencies.
    runtime_deps: HashMap<String, Vec<String>>,
    /// Workspace crate name to its id.
    members: BTreeMap<String, String>,
    /// Workspace crate name to the names it declares as dependencies (any kind).
    declared: BTreeMap<String, Vec<String>>,
}

impl Graph {
    fn load() -> Self {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let host = host_triple(&cargo);
        let out = Command::new(&cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                &host,
            ])
            .arg("--manifest-path")
            .arg(root().join("Cargo.toml"))
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
        let names: HashMap<String, String> = meta["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| (text(&p["id"]), text(&p["name"])))
            .collect();
        let mut runtime_deps = HashMap::new();
        for node in meta["resolve"]["nodes"].as_array().expect("resolve.nodes") {
            let deps = node["deps"]
                .as_array()
                .expect("deps")
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .expect("dep_kinds")
                        .iter()
                        .any(|k| k["kind"] != "dev")
                })
                .map(|d| text(&d["pkg"]))
                .collect();
            runtime_deps.insert(text(&node["id"]), deps);
        }
        let mut members = BTreeMap::new();
        for id in meta["workspace_members"]
            .as_array()
            .expect("workspace_members")
        {
            let id = text(id);
            members.insert(names[&id].clone(), id);
        }
        let mut declared = BTreeMap::new();
        for package in meta["packages"].as_array().expect("packages") {
            let name = text(&package["name"]);
            if members.contains_key(&name) {
                let deps = package["dependencies"]
                    .as_array()
                    .expect("dependencies")
                    .iter()
                    .map(|d| text(&d["name"]))
                    .collect();
                declared.insert(name, deps);
            }
        }
        Self {
            names,
            runtime_deps,
            members,
            declared,
        }
    }

    /// Every crate `krate` reaches through non-dev dependencies, each with the chain of crate
    /// names that leads to it (`krate -> a -> b`).
    fn reached(&self, krate: &str) -> BTreeMap<String, String> {
        let start = &self.members[krate];
        let mut chains: HashMap<String, String> = HashMap::from([(start.clone(), krate.into())]);
        let mut queue = vec![start.clone()];
        // Breadth first, so each chain is a shortest one.
        while !queue.is_empty() {
            let mut next = vec![];
            for id in queue {
                for dep in &self.runtime_deps[&id] {
                    if !chains.contains_key(dep) {
                        let chain = format!("{} -> {}", chains[&id], self.names[dep]);
                        chains.insert(dep.clone(), chain);
                        next.push(dep.clone());
                    }
                }
            }
            queue = next;
        }
        chains.remove(start);
        chains
            .into_iter()
            .map(|(id, chain)| (self.names[&id].clone(), chain))
            .collect()
    }
}

fn text(v: &Value) -> String {
    v.as_str().expect("a string").to_string()
}

fn host_triple(cargo: &str) -> String {
    let out = Command::new(cargo)
        .arg("-vV")
        .output()
        .expect("run cargo -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("cargo -vV names the host")
        .to_string()
}

/// The dependency rules; each violation names the crate and the offending dependency.
fn dependency_violations(graph: &Graph) -> Vec<String> {
    let mut violations = vec![];
    for krate in PURE {
        if !graph.members.contains_key(krate) {
            assert!(OPTIONAL.contains(&krate), "{krate} is not in the workspace");
            continue;
        }
        for (dep, chain) in graph.reached(krate) {
            if is_io(&dep) {
                violations.push(format!(
                    "{krate} must do no I/O, but depends on {dep}: {chain}"
                ));
            }
        }
    }
    for (dep, chain) in graph.reached("devgem-ports") {
        if NOT_FOR_PORTS.contains(&dep.as_str()) {
            violations.push(format!(
                "devgem-ports must not depend on an adapter or the analyzer, but depends on {dep}: {chain}"
            ));
        }
    }
    for (krate, deps) in &graph.declared {
        for dep in deps {
            if is_google_cloud(dep) && !GOOGLE_ADAPTERS.contains(&krate.as_str()) {
                violations.push(format!(
                    "only {GOOGLE_ADAPTERS:?} may use Google Cloud, but {krate} depends on {dep}"
                ));
            }
            if dep == BINARY {
                violations.push(format!(
                    "nothing may depend on the binary crate {BINARY}, but {krate} does"
                ));
            }
        }
    }
    violations
}

#[test]
fn crates_depend_only_in_the_allowed_directions() {
    let violations = dependency_violations(&Graph::load());
    assert!(
        violations.is_empty(),
        "design rules broken:\n  {}",
        violations.join("\n  ")
    );
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_module_starts_with_a_doc_line() {
    let mut files = vec![];
    for group in ["shared", "functions"] {
        let crates = std::fs::read_dir(root().join(group)).expect("the crate folders");
        for krate in crates {
            rust_files(
                &krate.expect("a crate folder").path().join("src"),
                &mut files,
            );
        }
    }
    assert!(files.len() > 20, "found only {} modules", files.len());
    let mut missing: Vec<String> = files
        .iter()
        .filter(|file| {
            let source = std::fs::read_to_string(file).expect("read a module");
            let first = source.lines().find(|l| !l.trim().is_empty());
            !first.is_some_and(|l| l.starts_with("//!"))
        })
        .map(|file| {
            let relative = file.strip_prefix(root()).unwrap_or(file);
            relative.display().to_string()
        })
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "modules without a leading `//!` line saying what they are:\n  {}",
        missing.join("\n  ")
    );
}

/// The code of a module before its `#[cfg(test)]` tests.
fn code_before_tests(source: &str) -> &str {
    source.split("#[cfg(test)]").next().unwrap_or(source)
}

#[test]
fn the_pure_crates_read_no_clock_and_no_randomness() {
    let mut files = vec![];
    for krate in ["shared/domain", "shared/plan", "shared/analyzer"] {
        rust_files(&root().join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 10, "found only {} modules", files.len());
    let forbidden = [
        "Utc::now",
        "Local::now",
        "SystemTime",
        "Instant::now",
        "now_v7",
        "new_v4",
    ];
    let mut found = vec![];
    for file in &files {
        let source = std::fs::read_to_string(file).expect("read a module");
        for call in forbidden {
            if code_before_tests(&source).contains(call) {
                let relative = file.strip_prefix(root()).unwrap_or(file);
                found.push(format!("{} calls {call}", relative.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "time and ids come from the Clock and IdSource ports:\n  {}",
        found.join("\n  ")
    );
}
