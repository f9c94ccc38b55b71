//! infra/ checked offline: python-hcl2 parses every Terraform file, the structure users rely on
//! holds (one Cloud Run service per function, authenticated pushes with dead letters, no basic
//! roles, no secret values), and checkov's GCP policies find nothing failed.
//!
//! No Terraform provider registry is reachable here, so `terraform validate` cannot run; these
//! are the checks that can. The tools live in the venv scripts/setup.sh makes
//! (`DEVGEM_INFRA_TOOLS`, default `~/.cache/devgem/infra-tools`). Without them the tests fail
//! under CI and skip, loudly, elsewhere.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The DevGem functions, as FUNCTION_TARGET names them (functions/devgem/src/config.rs).
const FUNCTIONS: [&str; 4] = ["chat", "analyze", "build-trigger", "deploy"];

fn infra_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra")
}

fn tools_dir() -> PathBuf {
    match std::env::var_os("DEVGEM_INFRA_TOOLS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/devgem/infra-tools"),
    }
}

/// The venv's Python (with hcl2) and checkov, or `None` after saying why (a failure under CI).
fn tools() -> Option<(PathBuf, PathBuf)> {
    let dir = tools_dir();
    let python = dir.join("bin/python");
    let checkov = dir.join("bin/checkov");
    let has_hcl2 = Command::new(&python)
        .args(["-c", "import hcl2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_hcl2 && checkov.is_file() {
        return Some((python, checkov));
    }
    let problem = format!(
        "python-hcl2 and checkov are not installed in {} (run bash scripts/setup.sh, or set \
         DEVGEM_INFRA_TOOLS to a venv that has them)",
        dir.display()
    );
    if devgem_testing::under_ci() {
        panic!("{problem}");
    }
    loud(&format!(
        "SKIPPED: the infra/ checks did not run: {problem}"
    ));
    None
}

/// Writes to stderr past the test harness's capture, so a skip shows even when the test passes.
fn loud(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Every `.tf` file of infra/, parsed by python-hcl2 into JSON: `{file name: document}`.
fn parsed() -> Option<&'static serde_json::Map<String, Value>> {
    static PARSED: OnceLock<Option<serde_json::Map<String, Value>>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            let (python, _) = tools()?;
            let script = r#"
import hcl2, json, pathlib, sys
docs = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.tf")):
    with open(path) as f:
        docs[path.name] = hcl2.load(f)
json.dump(docs, sys.stdout)
"#;
            let out = Command::new(python)
                .args(["-c", script])
                .arg(infra_dir())
                .output()
                .expect("run python");
            assert!(
                out.status.success(),
                "python-hcl2 could not parse infra/: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            match serde_json::from_slice(&out.stdout).expect("hcl2 printed JSON") {
                Value::Object(docs) => Some(docs),
                other => panic!("expected an object of documents, got {other}"),
            }
        })
        .as_ref()
}

/// python-hcl2 wraps every attribute value in a one-element list; this unwraps it.
fn attr<'a>(block: &'a Value, name: &str) -> Option<&'a Value> {
    match block.get(name)? {
        Value::Array(items) if items.len() == 1 => items.first(),
        other => Some(other),
    }
}

fn attr_str<'a>(block: &'a Value, name: &str) -> &'a str {
    attr(block, name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{name} is not a string in {block}"))
}

/// Nested blocks of one type (`push_config`, `env`, ...): always a list.
fn blocks<'a>(block: &'a Value, name: &str) -> Vec<&'a Value> {
    block
        .get(name)
        .and_then(Value::as_array)
        .map(|items| items.iter().collect())
        .unwrap_or_default()
}

/// Every `resource "TYPE" "NAME"` of every file, as (type, name, body).
fn resources(docs: &serde_json::Map<String, Value>) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for doc in docs.values() {
        for entry in blocks(doc, "resource") {
            for (kind, named) in entry.as_object().into_iter().flatten() {
                for (name, body) in named.as_object().into_iter().flatten() {
                    found.push((kind.clone(), name.clone(), body.clone()));
                }
            }
        }
    }
    found
}

fn resources_of(docs: &serde_json::Map<String, Value>, kind: &str) -> Vec<(String, Value)> {
    resources(docs)
        .into_iter()
        .filter(|(k, _, _)| k == kind)
        .map(|(_, name, body)| (name, body))
        .collect()
}

/// The value of `local.NAME`, wherever it is defined.
fn local(docs: &serde_json::Map<String, Value>, name: &str) -> Value {
    docs.values()
        .flat_map(|doc| blocks(doc, "locals"))
        .find_map(|locals| attr(locals, name).cloned())
        .unwrap_or_else(|| panic!("local.{name} is defined nowhere in infra/"))
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().filter(|k| !k.starts_with("__")).cloned().collect())
        .unwrap_or_default()
}

/// Every string anywhere in `value` (keys included), for scans of the whole configuration.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_terraform_file_parses_with_python_hcl2() {
    let Some(docs) = parsed() else { return };
    let on_disk: BTreeSet<String> = std::fs::read_dir(infra_dir())
        .expect("infra/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".tf"))
        .collect();
    let parsed: BTreeSet<String> = docs.keys().cloned().collect();
    assert_eq!(parsed, on_disk);
    for file in [
        "apis.tf",
        "iam.tf",
        "pubsub.tf",
        "run.tf",
        "variables.tf",
        "outputs.tf",
    ] {
        assert!(parsed.contains(file), "infra/{file} is missing");
    }
}

#[test]
fn one_cloud_run_service_per_function_from_one_image() {
    let Some(docs) = parsed() else { return };
    let services = resources_of(docs, "google_cloud_run_v2_service");
    assert_eq!(services.len(), 1, "one service resource, for_each function");
    let (_, service) = &services[0];
    assert_eq!(attr_str(service, "for_each"), "${local.functions}");
    let functions = local(docs, "functions");
    let expected: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.to_string()).collect();
    assert_eq!(keys(&functions), expected);
    assert_eq!(
        local(docs, "function_names"),
        serde_json::json!(FUNCTIONS),
        "one service account per function"
    );

    let template = blocks(service, "template")[0];
    assert_eq!(
        attr_str(template, "service_account"),
        "${google_service_account.function[each.key].email}",
        "each function runs as its own account"
    );
    let container = blocks(template, "containers")[0];
    assert_eq!(attr_str(container, "image"), "${var.image}");
    let envs = blocks(container, "env");
    assert!(
        envs.iter()
            .any(|e| attr_str(e, "name") == "FUNCTION_TARGET"
                && attr_str(e, "value") == "${each.key}"),
        "FUNCTION_TARGET is the function's name: {envs:?}"
    );

    // Only chat is public; the stage functions take internal traffic (Pub/Sub) only.
    let public: Vec<&str> = FUNCTIONS
        .into_iter()
        .filter(|f| functions[*f]["public"] == Value::Bool(true))
        .collect();
    assert_eq!(public, ["chat"]);
    assert_eq!(
        attr_str(service, "ingress"),
        "${each.value.public ? \"INGRESS_TRAFFIC_ALL\" : \"INGRESS_TRAFFIC_INTERNAL_ONLY\"}"
    );
    let invokers = resources_of(docs, "google_cloud_run_v2_service_iam_member");
    for (name, invoker) in &invokers {
        let member = attr_str(invoker, "member");
        match name.as_str() {
            "push_invokes" => assert_eq!(member, "${google_service_account.push.member}"),
            "public" => {
                assert_eq!(member, "allUsers");
                assert!(attr_str(invoker, "for_each").contains("if f.public"));
            }
            other => panic!("unexpected invoker grant {other}: {member}"),
        }
    }

    // The adapters each function is configured with.
    let common = local(docs, "common_env");
    for (var, value) in [
        ("DEVGEM_STORE", "firestore"),
        ("DEVGEM_BUS", "pubsub"),
        ("DEVGEM_OBJECTS", "gcs"),
        ("GOOGLE_CLOUD_PROJECT", "${var.project}"),
        ("DEVGEM_PUSH_AUDIENCE", "${var.push_audience}"),
        (
            "DEVGEM_PUSH_SERVICE_ACCOUNT",
            "${google_service_account.push.email}",
        ),
    ] {
        assert_eq!(common[var], value, "{var}");
    }
    assert_eq!(local(docs, "builder_env")["DEVGEM_BUILDER"], "cloudbuild");
    assert_eq!(local(docs, "runtime_env")["DEVGEM_RUNTIME"], "cloudrun");
    let env_of = |f: &str| functions[f]["env"].as_str().unwrap_or_default().to_string();
    assert!(env_of("build-trigger").contains("local.builder_env"));
    assert!(env_of("deploy").contains("local.runtime_env"));
}

#[test]
fn every_push_subscription_has_an_oidc_token_and_a_dead_letter_policy() {
    let Some(docs) = parsed() else { return };
    let subscriptions = resources_of(docs, "google_pubsub_subscription");
    let pushed: Vec<_> = subscriptions
        .iter()
        .filter(|(_, s)| !blocks(s, "push_config").is_empty())
        .collect();
    assert!(!pushed.is_empty(), "no push subscription in infra/");
    for (name, subscription) in pushed {
        let push = blocks(subscription, "push_config")[0];
        let tokens = blocks(push, "oidc_token");
        assert_eq!(tokens.len(), 1, "{name}: pushes without an OIDC token");
        assert_eq!(
            attr_str(tokens[0], "service_account_email"),
            "${google_service_account.push.email}"
        );
        assert_eq!(attr_str(tokens[0], "audience"), "${var.push_audience}");
        let dead_letters = blocks(subscription, "dead_letter_policy");
        assert_eq!(dead_letters.len(), 1, "{name}: no dead-letter policy");
        assert!(attr(dead_letters[0], "dead_letter_topic").is_some());
    }

    // Who receives what, at the routes `devgem serve` serves (`/pubsub/{topic}`).
    let routes = local(docs, "push_subscriptions");
    let receiver = |topic: &str| {
        let s = &routes[topic];
        (s["function"].as_str(), s["route"].as_str())
    };
    assert_eq!(receiver("analyze"), (Some("analyze"), Some("analyze")));
    assert_eq!(receiver("build"), (Some("build-trigger"), Some("build")));
    assert_eq!(receiver("deploy"), (Some("deploy"), Some("deploy")));
    assert_eq!(receiver("dead-letter"), (Some("chat"), Some("dead-letter")));
    assert_eq!(
        receiver("cloud-builds"),
        (Some("build-trigger"), Some("cloud-builds"))
    );
    // Dead letters of the dead-letter subscription go elsewhere, never back in a loop.
    assert_ne!(
        routes["dead-letter"]["dead_letter"],
        "${google_pubsub_topic.dead_letter.id}"
    );
    let topics: BTreeSet<String> = resources_of(docs, "google_pubsub_topic")
        .into_iter()
        .map(|(_, t)| attr_str(&t, "name").to_string())
        .collect();
    assert!(topics.contains("cloud-builds"), "{topics:?}");
    assert!(
        topics.contains("${var.topic_prefix}dead-letter"),
        "{topics:?}"
    );
}

#[test]
fn no_account_holds_owner_editor_or_viewer() {
    let Some(docs) = parsed() else { return };
    let mut all = Vec::new();
    strings(&Value::Object(docs.clone()), &mut all);
    for basic in ["roles/owner", "roles/editor", "roles/viewer"] {
        let hits: Vec<&String> = all.iter().filter(|s| s.contains(basic)).collect();
        assert!(hits.is_empty(), "{basic} is granted: {hits:?}");
    }
    // Every project-wide role is one of a short, reviewed list.
    let reviewed = [
        "roles/datastore.user",
        "roles/logging.viewer",
        "roles/run.developer",
        "roles/cloudbuild.builds.editor",
        "roles/run.admin",
    ];
    let mut granted = Vec::new();
    strings(&local(docs, "function_project_roles"), &mut granted);
    for role in granted.iter().filter(|r| r.starts_with("roles/")) {
        assert!(reviewed.contains(&role.as_str()), "unreviewed role {role}");
    }
    // The runtime account of deployed apps has no grant of its own.
    for (kind, name, body) in resources(docs) {
        if kind.ends_with("_iam_member") {
            assert_ne!(
                attr_str(&body, "member"),
                "${google_service_account.runtime.member}",
                "{kind}.{name} grants the apps' runtime account a role"
            );
        }
    }
}

#[test]
fn no_secret_value_is_in_the_hcl() {
    let Some(docs) = parsed() else { return };
    for (kind, name, body) in resources(docs) {
        assert_ne!(
            kind, "google_secret_manager_secret_version",
            "{name}: a secret version puts its value in the configuration and the state"
        );
        assert!(body.get("secret_data").is_none(), "{kind}.{name}");
    }
    let mut all = Vec::new();
    strings(&Value::Object(docs.clone()), &mut all);
    // Shapes of real credentials: Google API keys, GitHub tokens, private keys.
    for shape in ["AIza", "ghp_", "gho_", "github_pat_", "-----BEGIN"] {
        let hits: Vec<&String> = all.iter().filter(|s| s.contains(shape)).collect();
        assert!(
            hits.is_empty(),
            "something like a credential ({shape}): {hits:?}"
        );
    }
    // The secrets themselves exist, as empty containers, for the values users add.
    let secrets = keys(&local(docs, "secrets"));
    for wanted in [
        "api-token",
        "gemini-api-key",
        "github-webhook-secret",
        "github-oauth-client-secret",
    ] {
        assert!(secrets.contains(wanted), "{wanted}: {secrets:?}");
    }
}

#[test]
fn checkov_finds_no_failed_check() {
    let Some((_, checkov)) = tools() else { return };
    // --skip-download: no Prisma Cloud look-up (nothing is reachable here, and the policies
    // ship with checkov).
    let out = Command::new(checkov)
        .args([
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
            "-d",
        ])
        .arg(infra_dir())
        .output()
        .expect("run checkov");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {}: {}", c["check_id"], c["resource"], c["check_name"]))
        .collect();
    assert!(
        failed.is_empty(),
        "checkov failed checks:\n{}",
        failed.join("\n")
    );
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(
        summary["passed"].as_u64() > Some(20),
        "checkov checked little: {summary}"
    );
    // Every skip says why, inline.
    for skipped in report["results"]["skipped_checks"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let reason = skipped["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        assert!(reason.len() > 20, "skip without a reason: {skipped}");
    }
}

/// `terraform fmt` needs no provider, so it runs wherever Terraform is installed.
#[test]
fn terraform_files_are_formatted_when_terraform_is_here() {
    let Ok(out) = Command::new("terraform")
        .args(["fmt", "-check", "-diff", "-recursive"])
        .arg(infra_dir())
        .output()
    else {
        loud("NOTE: terraform is not installed; `terraform fmt -check` did not run");
        return;
    };
    assert!(
        out.status.success(),
        "terraform fmt would change infra/:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
