//! Hostile sources through a real `devgem serve` and the CLI: each is refused when the request
//! is made, with a reason and a fix, and no deployment is created.

mod support;

use serde_json::{Value, json};
use support::{Home, http};

/// Sources an attacker might post, each with a word its refusal must name.
const HOSTILE: &[(&str, &str)] = &[
    ("ext::sh -c touch% /tmp/pwned", "transport"),
    ("fd::17", "transport"),
    ("git://github.com/a/b.git", "unencrypted"),
    ("ftp://github.com/a/b", "not a way to fetch"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "not a way to fetch"),
    ("--upload-pack=touch /tmp/x", "option"),
    ("-oProxyCommand=id", "option"),
    ("ssh://-oProxyCommand=id/x", "not a valid host"),
    ("git@github.com:-u/x", "option"),
    ("https://user:ghp_secret@github.com/a/b", "credentials"),
    ("https://github.com@evil.com/x", "credentials"),
    ("https://github.com:443@evil.com/x", "credentials"),
    ("https://github.com%40evil.com/x", "not a valid host"),
    ("https://evil.com\\@github.com/x", "backslash"),
    ("https://evil.com#@github.com/x", "fragment"),
    ("https://evil.com/a/b", "not an allowed source host"),
    ("HTTPS://EVIL.COM/a/b", "not an allowed source host"),
    (
        "https://github.com.evil.com/a/b",
        "not an allowed source host",
    ),
    ("https://github.com:8443/a/b", "not an allowed source host"),
    ("https://%2dgithub.com/a/b", "not a valid host"),
    ("https://github.com:99999/a/b", "not a valid host"),
    ("http://github.com/a/b", "plain http"),
    ("ssh://git@evil.com/a/b", "ssh"),
    ("git@evil.com:a/b.git", "ssh"),
    ("https://127.0.0.1/a/b", "loopback"),
    ("https://2130706433/a/b", "unusual"),
    ("https://0x7f000001/a/b", "unusual"),
    ("https://0177.0.0.1/a/b", "unusual"),
    ("https://127.1/a/b", "unusual"),
    ("https://[::1]/a/b", "loopback"),
    ("https://[::ffff:127.0.0.1]/a/b", "loopback"),
    ("https://[::ffff:a9fe:a9fe]/a/b", "link-local"),
    ("https://10.0.0.5/a/b", "private"),
    ("https://172.16.3.4/a/b", "private"),
    ("https://192.168.1.1/a/b", "private"),
    ("https://[fd00::1]/a/b", "private"),
    ("https://169.254.169.254/computeMetadata/v1/", "link-local"),
    ("https://[fe80::1]/a/b", "link-local"),
    ("https://224.0.0.1/a/b", "multicast"),
    ("https://0.0.0.0/a/b", "unspecified"),
    (
        "https://metadata.google.internal/computeMetadata/v1/",
        "metadata",
    ),
    ("https://github.com /a/b", "whitespace"),
    ("file:///etc", "server's disk"),
    ("/etc", "server's disk"),
];

fn post(base: &str, body: Value) -> (u16, String) {
    let res = http()
        .post(format!("{base}/api/deployments"))
        .json(&body)
        .send()
        .expect("POST /api/deployments");
    (res.status().as_u16(), res.text().unwrap())
}

fn deployments(base: &str) -> usize {
    let list: Value = http()
        .get(format!("{base}/api/deployments"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    list["deployments"].as_array().unwrap().len()
}

#[test]
fn hostile_sources_are_refused_with_a_reason_before_any_deployment_exists() {
    assert!(HOSTILE.len() >= 40);
    let home = Home::new();
    let server = home.serve(&[("DEVGEM_ALLOW_LOCAL_SOURCES", "0")]);
    for (source, says) in HOSTILE {
        let (status, body) = post(&server.url, json!({ "source": source }));
        assert_eq!(status, 400, "{source}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.to_lowercase().contains(says), "{source}: {message}");
        assert!(
            !body["error"]["hint"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        );
        assert!(!message.contains("ghp_secret"), "{message}");
    }
    // A good URL with a branch or folder that git would read as an option.
    for body in [
        json!({ "source": "https://github.com/a/b", "branch": "--upload-pack=id" }),
        json!({ "source": "https://github.com/a/b", "subdir": "-c" }),
        json!({ "source": "https://github.com/a/b", "env": { "K_SERVICE": "x" } }),
        json!({ "source": "https://github.com/a/b", "env": { "BIG": "x".repeat(40_000) } }),
    ] {
        let (status, text) = post(&server.url, body.clone());
        assert_eq!(status, 400, "{body}: {text}");
    }
    assert_eq!(deployments(&server.url), 0);
}

#[test]
fn a_name_that_resolves_to_loopback_is_refused_when_any_public_host_is_allowed() {
    let home = Home::new();
    let server = home.serve(&[("DEVGEM_ALLOWED_SOURCE_HOSTS", "github.com,*")]);
    let (status, body) = post(
        &server.url,
        json!({ "source": "https://localhost/acme/shop" }),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("localhost resolves to 127.0.0.1"), "{body}");
    assert_eq!(deployments(&server.url), 0);
}

#[test]
fn the_cli_refuses_a_host_off_the_list_with_a_reason() {
    let home = Home::new();
    let output = home.run(&["deploy", "https://evil.example/acme/shop"]);
    assert!(!output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(all.contains("not an allowed source host"), "{all}");
    assert!(all.contains("DEVGEM_ALLOWED_SOURCE_HOSTS"), "{all}");
}

#[test]
fn a_committed_key_stops_the_deployment_unless_the_owner_allows_findings() {
    let home = Home::new();
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("index.html"), "<h1>hi</h1>\n").unwrap();
    std::fs::write(app.path().join("aws.txt"), "\nid=AKIAIOSFODNN7EXAMPLQ\n").unwrap();
    let dir = app.path().to_str().unwrap();
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    let stopped = home.run(&["deploy", dir]);
    let all = text(&stopped);
    assert!(!stopped.status.success(), "{all}");
    assert!(
        all.contains("aws.txt:2: an AWS access key id is committed"),
        "{all}"
    );
    assert!(all.contains("AKIA****"), "{all}");
    assert!(!all.contains("AKIAIOSFODNN7EXAMPLQ"), "{all}");
    assert!(all.contains("--allow-findings"), "{all}");

    let allowed = home.run(&["deploy", "--json", "--allow-findings", dir]);
    let all = text(&allowed);
    assert!(allowed.status.success(), "{all}");
    assert!(all.contains("allowed by the owner"), "{all}");
    let last: Value = serde_json::from_str(
        String::from_utf8_lossy(&allowed.stdout)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["status"], "live", "{last}");
    home.run(&["stop", last["deployment_id"].as_str().unwrap()]);
}
