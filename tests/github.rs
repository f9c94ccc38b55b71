//! Black-box tests of GitHub auto-deploys and previews: signed deliveries to `POST
//! /webhooks/github` of the real `devgem serve` (process runtime), a real git repository served
//! over smart HTTP on loopback as the payloads' `clone_url`, and the GitHub REST stand-in
//! receiving the commit statuses and pull-request comments. A private repository is cloned and
//! reported on with its link owner's GitHub token (the one signing in with GitHub stores).

mod support;

use devgem_testing::git_http::{GitServer, git};
use devgem_testing::standin::Standin;
use devgem_testing::standin::github::{CommentWrite, Github, StoredComment};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::{Home, Server, get, http, wait_for};

const SECRET: &str = "webhook-s3cret";
const TOKEN: &str = "ghp_standin_token";
const REPO: &str = "acme/shop";
/// The link owner's GitHub token, as signing in with GitHub stores it.
const OWNER_TOKEN: &str = "gho_owner_0123456789abcdef";

/// Who may read the repository, and which GitHub tokens DevGem holds.
struct Access {
    /// The repository is private: only this token reads it.
    private_token: Option<&'static str>,
    /// The link owner (the local user) signed in with GitHub and has this token.
    owner_token: Option<&'static str>,
    /// The server's `GITHUB_TOKEN`.
    server_token: Option<&'static str>,
}

impl Access {
    /// A public repository, and `GITHUB_TOKEN` set.
    fn public() -> Self {
        Self {
            private_token: None,
            owner_token: None,
            server_token: Some(TOKEN),
        }
    }
}

/// Everything one test talks to: DevGem, the GitHub stand-in, the git server.
struct World {
    home: Home,
    server: Server,
    github: Arc<Github>,
    _standin: Standin,
    git: GitServer,
    /// A working copy of `acme/shop` that pushes to the git server.
    work: tempfile::TempDir,
    clone_url: String,
}

impl World {
    fn new() -> Self {
        Self::with(Access::public())
    }

    fn with(access: Access) -> Self {
        let home = Home::new();
        let github = Arc::new(Github::new(TOKEN));
        if let Some(token) = access.owner_token {
            github.accept(token);
            // Where signing in with GitHub keeps the token (the file secrets port).
            let secrets = json!({ "accounts/local/github-token": token });
            std::fs::write(home.path().join("secrets.json"), secrets.to_string()).unwrap();
        }
        let standin = Standin::start(None, vec![github.clone()]);
        let git_server = GitServer::start();
        let clone_url = match access.private_token {
            Some(token) => git_server.create_private("shop", token),
            None => git_server.create("shop"),
        };
        let mut env = vec![
            ("GITHUB_WEBHOOK_SECRET", SECRET),
            ("RUST_LOG", "info"),
            ("DEVGEM_GITHUB_API_URL", standin.base_url.as_str()),
            // The loopback git server is GitHub's host here: the one host a GitHub token is
            // sent to. The source-host allow-list names it with its scheme, so plain http is
            // allowed to it; a clone URL anywhere else is refused.
            ("DEVGEM_GITHUB_URL", git_server.base_url.as_str()),
            ("DEVGEM_ALLOWED_SOURCE_HOSTS", git_server.base_url.as_str()),
            // Deployments come from git URLs only, as a GitHub server's do.
            ("DEVGEM_ALLOW_LOCAL_SOURCES", "0"),
        ];
        if let Some(token) = access.server_token {
            env.push(("GITHUB_TOKEN", token));
        }
        let server = home.serve_logging_to(&env, &home.path().join("server.log"));
        let work = tempfile::tempdir().unwrap();
        git(work.path(), &["init", "-q"]);
        Self {
            home,
            server,
            github,
            _standin: standin,
            git: git_server,
            work,
            clone_url,
        }
    }

    /// Commits the echo app answering `message` on `branch`, pushes it, returns the sha.
    fn commit_app(&self, branch: &str, message: &str) -> String {
        let dir = self.work.path();
        checkout(dir, branch);
        echo_app(dir, message);
        self.commit_and_push(branch, message)
    }

    /// Commits whatever is in the working copy on `branch` and pushes it.
    fn commit_and_push(&self, branch: &str, message: &str) -> String {
        let dir = self.work.path();
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
        let bare = self.git.bare("shop");
        git(
            dir,
            &["push", "-q", "--force", bare.to_str().unwrap(), branch],
        );
        git(dir, &["rev-parse", "HEAD"])
    }

    fn link(&self, branch: &str, service: &str) -> Value {
        let (status, link) = post_json(
            &format!("{}/api/links", self.server.url),
            &json!({"repository": REPO, "branch": branch, "service_name": service}),
        );
        assert_eq!(status, 201, "{link}");
        link
    }

    fn deliver(&self, event: &str, delivery: &str, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        deliver_raw(
            &self.server,
            event,
            Some(delivery),
            body.as_bytes(),
            Some(&sign(SECRET, body.as_bytes())),
        )
    }

    fn push_payload(&self, git_ref: &str, after: &str) -> Value {
        push_payload(REPO, &self.clone_url, git_ref, after)
    }

    fn deployments(&self) -> Vec<Value> {
        let (status, body) = get_json(&format!("{}/api/deployments", self.server.url));
        assert_eq!(status, 200, "{body}");
        body["deployments"].as_array().unwrap().clone()
    }

    fn deployment(&self, id: &str) -> Value {
        get_json(&format!("{}/api/deployments/{id}", self.server.url)).1
    }

    /// Waits for deployment `id` to end, returning it.
    fn finished(&self, id: &str) -> Value {
        wait_for("the deployment to end", Duration::from_secs(240), || {
            let d = self.deployment(id);
            matches!(
                d["status"].as_str(),
                Some("live" | "failed" | "aborted" | "stopped")
            )
            .then_some(d)
        })
    }

    /// Waits until the stand-in holds a final (non-pending) status for `sha`, returning every
    /// status of that commit.
    fn final_statuses(&self, sha: &str) -> Vec<devgem_testing::standin::github::StoredStatus> {
        wait_for(
            "a final commit status at the stand-in",
            Duration::from_secs(240),
            || {
                let all = self.github.statuses_of(sha);
                all.iter().any(|s| s.state != "pending").then_some(all)
            },
        )
    }
}

fn checkout(dir: &Path, branch: &str) {
    let has_commits = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "-q", "HEAD"])
        .output()
        .unwrap()
        .status
        .success();
    if has_commits {
        let exists = !git(dir, &["branch", "--list", branch]).is_empty();
        if exists {
            git(dir, &["checkout", "-q", branch]);
        } else {
            git(dir, &["checkout", "-q", "-b", branch]);
        }
    } else {
        git(dir, &["checkout", "-q", "-b", branch]);
    }
}

/// A Node app with no dependencies whose every answer is `message`.
fn echo_app(dir: &Path, message: &str) {
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"shop","version":"1.0.0","private":true,"scripts":{"start":"node server.js"}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("message.txt"), message).unwrap();
    std::fs::write(
        dir.join("server.js"),
        r#"const message = require("fs").readFileSync(__dirname + "/message.txt", "utf8");
require("http").createServer((q, s) => s.end(message))
  .listen(process.env.PORT, "0.0.0.0", () => console.log("shop started"));
"#,
    )
    .unwrap();
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn deliver_raw(
    server: &Server,
    event: &str,
    delivery: Option<&str>,
    body: &[u8],
    signature: Option<&str>,
) -> (u16, Value) {
    let mut req = http()
        .post(format!("{}/webhooks/github", server.url))
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/standin")
        .header("x-github-event", event)
        .body(body.to_vec());
    if let Some(d) = delivery {
        req = req.header("x-github-delivery", d);
    }
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    let res = req.send().expect("deliver");
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

fn push_payload(full_name: &str, clone_url: &str, git_ref: &str, after: &str) -> Value {
    let deleted = after.bytes().all(|b| b == b'0');
    json!({
        "ref": git_ref,
        "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "after": after,
        "created": false, "deleted": deleted, "forced": false, "base_ref": null,
        "commits": [],
        "head_commit": if deleted { Value::Null } else { json!({"id": after, "message": "change"}) },
        "repository": {
            "id": 1296269, "name": full_name.rsplit('/').next().unwrap(),
            "full_name": full_name, "private": false,
            "owner": {"login": full_name.split('/').next().unwrap(), "id": 1},
            "clone_url": clone_url, "default_branch": "main",
            // Push payloads send these as integers, other events as strings.
            "created_at": 1700000000, "pushed_at": 1714557600,
        },
        "pusher": {"name": "mona", "email": "mona@example.com"},
        "sender": {"login": "mona", "id": 2, "type": "User"},
    })
}

fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let res = http().post(url).json(body).send().expect("POST");
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

fn get_json(url: &str) -> (u16, Value) {
    let res = http().get(url).send().expect("GET");
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

/// What the live app at `url` answers.
fn app_body(url: &str) -> String {
    let (status, body) = get(url).expect("the app answers");
    assert_eq!(status, 200, "{body}");
    body
}

fn assert_json_error(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "a JSON error body, got {body}"
    );
}

#[test]
fn only_correctly_signed_deliveries_are_accepted_and_bad_ones_start_nothing() {
    let world = World::new();
    let sha = world.commit_app("main", "v1");
    world.link("main", "shop");
    let body = world.push_payload("refs/heads/main", &sha).to_string();
    let good = sign(SECRET, body.as_bytes());
    let wrong = sign("another-secret", body.as_bytes());
    let bad_signatures: [(&str, Option<&str>); 6] = [
        ("missing", None),
        ("wrong secret", Some(&wrong)),
        ("truncated", Some(&good[..good.len() - 1])),
        ("cut to the prefix", Some("sha256=")),
        ("without the sha256= prefix", Some(&good["sha256=".len()..])),
        ("not hex", Some("sha256=zzzz")),
    ];
    for (i, (what, signature)) in bad_signatures.iter().enumerate() {
        let delivery = format!("bad-{i}");
        let (status, res) = deliver_raw(
            &world.server,
            "push",
            Some(&delivery),
            body.as_bytes(),
            *signature,
        );
        assert_json_error(status, &res, 401);
        assert_eq!(res["error"]["code"], "bad_signature", "{what}: {res}");
    }
    // A body changed after signing fails too.
    let tampered = body.replace("refs/heads/main", "refs/heads/mainx");
    let (status, res) = deliver_raw(
        &world.server,
        "push",
        Some("tampered"),
        tampered.as_bytes(),
        Some(&good),
    );
    assert_json_error(status, &res, 401);
    assert!(
        world.deployments().is_empty(),
        "a refused delivery enqueued a deployment: {:?}",
        world.deployments()
    );
    assert!(world.github.statuses().is_empty());
    assert!(
        world.git.requests().is_empty(),
        "a refused delivery cloned the repository"
    );

    // Signed but malformed: a 4xx with a JSON error, nothing started.
    for (i, raw) in [&b"{not json"[..], b"", b"[]", br#"{"ref": 7}"#, b"\xff\xfe"]
        .iter()
        .enumerate()
    {
        let (status, res) = deliver_raw(
            &world.server,
            "push",
            Some(&format!("malformed-{i}")),
            raw,
            Some(&sign(SECRET, raw)),
        );
        assert!((400..500).contains(&status), "{status} {res}");
        assert!(
            res["error"]["code"].is_string(),
            "a JSON error body, got {res}"
        );
    }
    let (status, res) = deliver_raw(&world.server, "push", None, body.as_bytes(), Some(&good));
    assert_json_error(status, &res, 400);
    assert!(world.deployments().is_empty());

    // ping answers 200; events DevGem does not act on are acknowledged.
    let ping = json!({"zen": "Design for failure.", "hook_id": 123});
    let (status, res) = world.deliver("ping", "ping-1", &ping);
    assert_eq!(status, 200, "{res}");
    let (status, res) = world.deliver("issues", "issues-1", &json!({"action": "opened"}));
    assert_eq!(status, 202, "{res}");
    assert_eq!(res["ignored"], true);
    assert!(world.deployments().is_empty());

    // And the correctly signed push is accepted.
    let (status, res) = deliver_raw(
        &world.server,
        "push",
        Some("good-1"),
        body.as_bytes(),
        Some(&good),
    );
    assert_eq!(status, 202, "{res}");
    assert_eq!(res["deployments"].as_array().unwrap().len(), 1, "{res}");
}

#[test]
fn a_push_to_the_linked_branch_deploys_exactly_that_commit_and_reports_its_status() {
    let world = World::new();
    let first = world.commit_app("main", "first commit");
    let pushed = world.commit_app("main", "the pushed commit");
    // The branch moves on after the push was sent: the deployment must still be of `pushed`.
    let _later = world.commit_app("main", "a later commit");
    world.link("main", "shop");

    let (status, res) = world.deliver(
        "push",
        "delivery-push-1",
        &world.push_payload("refs/heads/main", &pushed),
    );
    assert_eq!(status, 202, "{res}");
    let ids = res["deployments"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 1, "{res}");
    let id = ids[0].as_str().unwrap();
    let d = world.finished(id);
    assert_eq!(d["status"], "live", "{d}");
    assert_eq!(d["service_name"], "shop", "{d}");
    let url = d["url"].as_str().unwrap();
    assert_eq!(app_body(url), "the pushed commit");
    assert!(
        world
            .git
            .requests()
            .iter()
            .any(|p| p.ends_with("git-upload-pack")),
        "the source was cloned from the git server: {:?}",
        world.git.requests()
    );

    // pending, then success with the app's URL, on exactly the pushed commit.
    let statuses = world.final_statuses(&pushed);
    let states: Vec<&str> = statuses.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["pending", "success"], "{statuses:?}");
    for s in &statuses {
        assert_eq!(s.repository, REPO);
        assert_eq!(s.context, "devgem/deploy");
        // The link's owner never signed in with GitHub: the server's GITHUB_TOKEN posts it.
        assert_eq!(s.token, TOKEN);
    }
    assert_eq!(statuses[1].target_url.as_deref(), Some(url));
    assert!(world.github.statuses_of(&first).is_empty());

    // The same delivery again (GitHub's redelivery keeps the GUID) starts nothing new.
    let (status, res) = world.deliver(
        "push",
        "delivery-push-1",
        &world.push_payload("refs/heads/main", &pushed),
    );
    assert!((200..300).contains(&status), "{res}");
    assert_eq!(res["duplicate"], true, "{res}");

    // Acknowledged and ignored: a branch deletion, a tag, another branch, another repository.
    let zeros = "0".repeat(40);
    let ignored = [
        ("deleted", world.push_payload("refs/heads/main", &zeros)),
        ("tag", world.push_payload("refs/tags/v1.0.0", &pushed)),
        (
            "other-branch",
            world.push_payload("refs/heads/dev", &pushed),
        ),
        (
            "unlinked",
            push_payload("acme/other", &world.clone_url, "refs/heads/main", &pushed),
        ),
    ];
    for (what, payload) in &ignored {
        let (status, res) = world.deliver("push", &format!("ignored-{what}"), payload);
        assert_eq!(status, 202, "{what}: {res}");
        assert_eq!(res["ignored"], true, "{what}: {res}");
    }
    assert_eq!(
        world.deployments().len(),
        1,
        "only the one push deployed: {:?}",
        world.deployments()
    );
    assert_eq!(world.github.statuses().len(), 2);
}

#[test]
fn a_delivery_that_fails_with_a_server_error_can_be_redelivered_and_then_deploys() {
    let world = World::new();
    let pushed = world.commit_app("main", "deployed on redelivery");
    let (status, link) = post_json(
        &format!("{}/api/links", world.server.url),
        &json!({"repository": REPO, "branch": "main", "service_name": "shop",
                "env": {"GREETING": "hello"}}),
    );
    assert_eq!(status, 201, "{link}");
    // The secrets port breaks (its file is corrupt): the link's env cannot be read.
    let secrets = world.home.path().join("secrets.json");
    let kept = std::fs::read(&secrets).unwrap();
    std::fs::write(&secrets, b"{ not json").unwrap();
    let payload = world.push_payload("refs/heads/main", &pushed);
    let (status, res) = world.deliver("push", "delivery-fails-first", &payload);
    assert!((500..600).contains(&status), "{status}: {res}");
    assert!(world.deployments().is_empty());

    // Repaired, GitHub's Redeliver (the same GUID) is handled afresh and deploys the commit.
    std::fs::write(&secrets, kept).unwrap();
    let (status, res) = world.deliver("push", "delivery-fails-first", &payload);
    assert_eq!(status, 202, "{res}");
    assert_ne!(res["duplicate"], true, "{res}");
    let ids = res["deployments"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 1, "{res}");
    let d = world.finished(ids[0].as_str().unwrap());
    assert_eq!(d["status"], "live", "{d}");
    assert_eq!(
        app_body(d["url"].as_str().unwrap()),
        "deployed on redelivery"
    );
    // Handled once it succeeded: a further redelivery starts nothing.
    let (_, res) = world.deliver("push", "delivery-fails-first", &payload);
    assert_eq!(res["duplicate"], true, "{res}");
    assert_eq!(world.deployments().len(), 1);
}

#[test]
fn a_clone_url_the_source_policy_refuses_starts_nothing() {
    let world = World::new();
    let sha = world.commit_app("main", "v1");
    world.link("main", "shop");
    let with_credentials = world.clone_url.replace("http://", "http://mona:pw@");
    let refused = [
        // Not on DEVGEM_ALLOWED_SOURCE_HOSTS (only the git server is).
        "https://github.com/acme/shop.git",
        "https://gitlab.com/acme/shop.git",
        "file:///srv/git/shop.git",
        "ext::sh -c id",
        "--upload-pack=touch /tmp/pwned",
        with_credentials.as_str(),
        "",
    ];
    for (i, clone_url) in refused.iter().enumerate() {
        let payload = push_payload(REPO, clone_url, "refs/heads/main", &sha);
        let (status, res) = world.deliver("push", &format!("refused-{i}"), &payload);
        assert_json_error(status, &res, 422);
        assert_eq!(
            res["error"]["code"], "source_not_allowed",
            "{clone_url}: {res}"
        );
    }
    assert!(world.deployments().is_empty());
    assert!(world.git.requests().is_empty());
}

#[test]
fn a_failing_push_posts_a_failure_status_with_the_reason() {
    let world = World::new();
    // A commit with nothing to run: no app DevGem can detect.
    checkout(world.work.path(), "main");
    std::fs::write(world.work.path().join("README.md"), "# Just words\n").unwrap();
    let sha = world.commit_and_push("main", "docs only");
    world.link("main", "shop");

    let (status, res) = world.deliver(
        "push",
        "delivery-fail-1",
        &world.push_payload("refs/heads/main", &sha),
    );
    assert_eq!(status, 202, "{res}");
    let id = res["deployments"][0].as_str().unwrap().to_string();
    let d = world.finished(&id);
    assert_eq!(d["status"], "failed", "{d}");

    let statuses = world.final_statuses(&sha);
    let states: Vec<&str> = statuses.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["pending", "failure"], "{statuses:?}");
    let failure = &statuses[1];
    assert_eq!(failure.target_url, None);
    let reason = failure.description.as_deref().unwrap_or_default();
    assert!(
        !reason.is_empty() && reason.chars().count() <= 140,
        "{reason:?}"
    );
    let message = d["error"]["reason"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty(),
        "the deployment says why it failed: {d}"
    );
    let head: String = message.chars().take(40).collect();
    assert!(
        reason.contains(&head),
        "the status says why the deployment failed ({message:?}), got {reason:?}"
    );
}

/// Every file under `dir` (links not followed) whose bytes, or a `.tar.gz`'s unpacked bytes,
/// contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let (path, kind) = (entry.path(), entry.file_type().unwrap());
        if kind.is_dir() {
            found.extend(files_containing(&path, needle));
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        if path.to_string_lossy().ends_with(".tar.gz") {
            let mut unpacked = Vec::new();
            let _ = std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                &mut unpacked,
            );
            bytes.extend(unpacked);
        }
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_private_repository_is_cloned_and_reported_with_the_link_owners_token_and_kept_nowhere() {
    // Only the owner's token reads the repository; the server's GITHUB_TOKEN cannot.
    let world = World::with(Access {
        private_token: Some(OWNER_TOKEN),
        owner_token: Some(OWNER_TOKEN),
        server_token: Some(TOKEN),
    });
    let sha = world.commit_app("main", "private code");
    world.link("main", "shop");
    let (status, res) = world.deliver(
        "push",
        "private-push",
        &world.push_payload("refs/heads/main", &sha),
    );
    assert_eq!(status, 202, "{res}");
    let id = res["deployments"][0].as_str().unwrap().to_string();
    let d = world.finished(&id);
    assert_eq!(d["status"], "live", "{d}");
    assert_eq!(app_body(d["url"].as_str().unwrap()), "private code");
    let served = world.git.requests_in_full();
    assert!(
        served
            .iter()
            .any(|r| r.status == 200 && r.path.ends_with("git-upload-pack")),
        "the private repository was cloned: {served:?}"
    );

    // Both statuses reached GitHub with the owner's token, not the server's.
    let statuses = world.final_statuses(&sha);
    let states: Vec<&str> = statuses.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["pending", "success"], "{statuses:?}");
    assert!(
        statuses.iter().all(|s| s.token == OWNER_TOKEN),
        "{statuses:?}"
    );

    // The token (or the basic-auth header made of it) is nowhere DevGem writes: not in the
    // deployment, its events or its logs, nor in the state store, the objects, the build's
    // copy of the checkout or the server's own log. Only the secrets port holds it.
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("x-access-token:{OWNER_TOKEN}"),
    );
    let url = &world.server.url;
    let events = support::read_events(url, &id, 0, 10_000);
    let (_, logs) = get_json(&format!("{url}/api/deployments/{id}/logs"));
    let seen = format!("{d} {} {logs}", Value::from(events));
    let kept = files_containing(world.home.path(), OWNER_TOKEN.as_bytes());
    assert!(
        kept.iter().any(|p| p.ends_with("secrets.json")),
        "the scan finds the token where it is kept: {kept:?}"
    );
    for needle in [OWNER_TOKEN, basic.as_str()] {
        assert!(!seen.contains(needle), "the API shows the token: {seen}");
        let files: Vec<_> = files_containing(world.home.path(), needle.as_bytes())
            .into_iter()
            .filter(|p| p.file_name().is_none_or(|n| n != "secrets.json"))
            .collect();
        assert!(files.is_empty(), "the token was written to {files:?}");
    }
    let log = std::fs::read_to_string(world.home.path().join("server.log")).unwrap();
    assert!(
        log.contains("request"),
        "the server's log was captured: {log}"
    );
}

#[test]
fn without_a_token_a_private_repository_fails_naming_the_fix_and_no_status_is_sent() {
    let world = World::with(Access {
        private_token: Some(OWNER_TOKEN),
        owner_token: None,
        server_token: None,
    });
    let sha = world.commit_app("main", "private code");
    world.link("main", "shop");
    let (status, res) = world.deliver(
        "push",
        "private-no-token",
        &world.push_payload("refs/heads/main", &sha),
    );
    assert_eq!(status, 202, "{res}");
    let d = world.finished(res["deployments"][0].as_str().unwrap());
    assert_eq!(d["status"], "failed", "{d}");
    let reason = d["error"]["reason"].as_str().unwrap_or_default();
    let hint = d["error"]["hint"].as_str().unwrap_or_default();
    assert!(reason.contains("private"), "{d}");
    assert!(
        hint.contains("sign in with GitHub") && hint.contains("GITHUB_TOKEN"),
        "the hint names the fix: {d}"
    );
    let served = world.git.requests_in_full();
    assert!(
        served.iter().all(|r| r.status == 401),
        "nothing was served without the token: {served:?}"
    );
    // No token to post with: GitHub hears nothing, and the server says why.
    assert!(world.github.statuses().is_empty());
    let log = wait_for("the note about the status", Duration::from_secs(30), || {
        let log = std::fs::read_to_string(world.home.path().join("server.log")).ok()?;
        log.contains("no commit status is sent").then_some(log)
    });
    assert!(log.contains("GITHUB_TOKEN"), "{log}");
}

fn pr_payload(world: &World, action: &str, number: u64, head_ref: &str, head_sha: &str) -> Value {
    let repo = json!({"full_name": REPO, "clone_url": world.clone_url, "fork": false});
    json!({
        "action": action,
        "number": number,
        "pull_request": {
            "number": number, "state": if action == "closed" { "closed" } else { "open" },
            "merged": false, "draft": false, "title": "A change",
            "head": {"ref": head_ref, "sha": head_sha, "label": format!("acme:{head_ref}"), "repo": repo},
            "base": {"ref": "main", "sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "repo": repo},
            "user": {"login": "mona"},
        },
        "repository": {"full_name": REPO, "clone_url": world.clone_url,
                       "created_at": "2025-01-01T00:00:00Z"},
        "sender": {"login": "mona"},
    })
}

/// DevGem's own comments on pull request `number` (the stand-in's token user).
fn devgem_comments(world: &World, number: u64) -> Vec<StoredComment> {
    world
        .github
        .comments_on(number)
        .into_iter()
        .filter(|c| c.author == "devgem-bot")
        .collect()
}

/// Waits until DevGem's one comment on `number` contains `text`.
fn sticky_comment_containing(world: &World, number: u64, text: &str) -> StoredComment {
    wait_for(
        &format!("the preview comment to say {text}"),
        Duration::from_secs(30),
        || {
            let ours = devgem_comments(world, number);
            ours.iter().any(|c| c.body.contains(text)).then_some(())
        },
    );
    let ours = devgem_comments(world, number);
    assert_eq!(ours.len(), 1, "one comment per preview: {ours:?}");
    ours[0].clone()
}

#[test]
fn a_pull_request_opens_a_preview_comments_its_url_and_closing_stops_it() {
    let world = World::new();
    world.commit_app("main", "production");
    let opened = world.commit_app("feature", "preview one");
    world.link("main", "shop");
    // Someone else pasted DevGem's marker into their own comment: it is not DevGem's to edit.
    let foreign_body =
        "<!-- devgem:preview acme/shop#7 shop-pr-7 -->\nThe preview of ... is live at (quoted)";
    let foreign = world.github.add_comment(REPO, 7, "mona", foreign_body);

    let (status, res) = world.deliver(
        "pull_request",
        "pr-opened",
        &pr_payload(&world, "opened", 7, "feature", &opened),
    );
    assert_eq!(status, 202, "{res}");
    let first = world.finished(res["deployments"][0].as_str().unwrap());
    assert_eq!(first["status"], "live", "{first}");
    assert_eq!(first["service_name"], "shop-pr-7", "{first}");
    let first_url = first["url"].as_str().unwrap().to_string();
    assert_eq!(app_body(&first_url), "preview one");

    let statuses = world.final_statuses(&opened);
    assert_eq!(statuses.last().unwrap().state, "success", "{statuses:?}");
    assert_eq!(
        statuses.last().unwrap().target_url.as_deref(),
        Some(first_url.as_str())
    );
    let comment = sticky_comment_containing(&world, 7, &first_url);
    assert_eq!(comment.repository, REPO);
    assert_eq!(comment.token, TOKEN);
    assert!(comment.body.contains(&opened), "{comment:?}");

    // Two pushes to the pull request: each a new preview of the new head, and the same
    // comment, edited, naming the latest.
    let mut second = Value::Null;
    let mut second_url = String::new();
    let mut synced = String::new();
    for (round, text) in ["preview two", "preview three"].into_iter().enumerate() {
        synced = world.commit_app("feature", text);
        let (status, res) = world.deliver(
            "pull_request",
            &format!("pr-sync-{round}"),
            &pr_payload(&world, "synchronize", 7, "feature", &synced),
        );
        assert_eq!(status, 202, "{res}");
        second = world.finished(res["deployments"][0].as_str().unwrap());
        assert_eq!(second["status"], "live", "{second}");
        assert_eq!(second["service_name"], "shop-pr-7");
        second_url = second["url"].as_str().unwrap().to_string();
        assert_eq!(app_body(&second_url), text);
        let edited = sticky_comment_containing(&world, 7, &synced);
        assert_eq!(edited.id, comment.id, "the same comment, edited");
        assert!(edited.body.contains(&second_url), "{edited:?}");
        assert!(!edited.body.contains(&opened), "{edited:?}");
    }

    // An action that changes no code is acknowledged and deploys nothing.
    let before = world.deployments().len();
    let (status, res) = world.deliver(
        "pull_request",
        "pr-labeled",
        &pr_payload(&world, "labeled", 7, "feature", &synced),
    );
    assert_eq!(status, 202, "{res}");
    assert_eq!(res["ignored"], true);
    assert_eq!(world.deployments().len(), before);

    // Closed: the preview is stopped and no longer answers.
    let (status, res) = world.deliver(
        "pull_request",
        "pr-closed",
        &pr_payload(&world, "closed", 7, "feature", &synced),
    );
    assert_eq!(status, 200, "{res}");
    let stopped: Vec<&str> = res["stopped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(stopped.contains(&second["id"].as_str().unwrap()), "{res}");
    wait_for("the preview to be stopped", Duration::from_secs(30), || {
        (world.deployment(second["id"].as_str().unwrap())["status"] == "stopped").then_some(())
    });
    wait_for(
        "the preview to stop answering",
        Duration::from_secs(30),
        || get(&second_url).is_none().then_some(()),
    );
    let removed = sticky_comment_containing(&world, 7, "removed");
    assert_eq!(removed.id, comment.id);
    assert!(!removed.body.contains(&second_url), "{removed:?}");
    // One write per event: created on opened, edited on each synchronize and on closed; the
    // foreign comment untouched.
    assert_eq!(
        world.github.comment_writes(),
        [
            CommentWrite::Created(comment.id),
            CommentWrite::Updated(comment.id),
            CommentWrite::Updated(comment.id),
            CommentWrite::Updated(comment.id),
        ]
    );
    let theirs: Vec<_> = world
        .github
        .comments_on(7)
        .into_iter()
        .filter(|c| c.id == foreign)
        .collect();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].body, foreign_body);
    // Production (the link's own service) was never touched.
    assert!(
        world
            .deployments()
            .iter()
            .all(|d| d["service_name"] == "shop-pr-7"),
        "only previews were deployed"
    );
}

#[test]
fn links_belong_to_their_owner_and_a_deleted_link_deploys_nothing() {
    let world = World::new();
    let sha = world.commit_app("main", "v1");
    let link = world.link("main", "shop");
    assert_eq!(link["owner"], "local", "{link}");
    assert_eq!(link["repository"], REPO);

    let (status, list) = get_json(&format!("{}/api/links", world.server.url));
    assert_eq!(status, 200);
    let links = list["links"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert!(links.iter().all(|l| l["owner"] == "local"), "{list}");

    // Another owner's or a missing link answers as a missing one does.
    let url = &world.server.url;
    let res = http()
        .delete(format!(
            "{url}/api/links/l-00000000-0000-0000-0000-000000000000"
        ))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let res = http()
        .delete(format!("{url}/api/links/not-an-id"))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);

    // A malformed link is refused with a reason.
    for body in [
        json!({"repository": "no-slash", "branch": "main"}),
        json!({"repository": REPO, "branch": "-delete"}),
        json!({"repository": REPO, "branch": "main", "extra": 1}),
    ] {
        let (status, res) = post_json(&format!("{url}/api/links"), &body);
        assert_json_error(status, &res, 400);
    }

    let id = link["id"].as_str().unwrap();
    let res = http()
        .delete(format!("{url}/api/links/{id}"))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (status, res) = world.deliver(
        "push",
        "after-unlink",
        &world.push_payload("refs/heads/main", &sha),
    );
    assert_eq!(status, 202, "{res}");
    assert_eq!(res["ignored"], true, "{res}");
    assert!(world.deployments().is_empty());
}

fn chat(world: &World, message: &str, session: Option<&str>) -> Value {
    let mut body = json!({ "message": message });
    if let Some(s) = session {
        body["session_id"] = s.into();
    }
    let (status, answer) = post_json(&format!("{}/chat", world.server.url), &body);
    assert_eq!(status, 200, "{answer}");
    answer
}

#[test]
fn a_link_made_in_the_chat_deploys_on_push_and_unlinking_in_the_chat_stops_it() {
    let world = World::new();
    let pushed = world.commit_app("main", "linked from the chat");

    let answer = chat(&world, "auto-deploy acme/shop from main", None);
    let session = answer["session_id"].as_str().unwrap().to_string();
    let action = &answer["actions"][0];
    assert_eq!(action["tool"], "link_repository", "{answer}");
    assert_eq!(action["ok"], true, "{answer}");
    let link_id = action["result"]["link"]["id"].as_str().unwrap().to_string();
    let reply = answer["reply"].as_str().unwrap();
    let webhook = format!("{}/webhooks/github", world.server.url);
    for said in [
        "acme/shop",
        "branch main",
        "service shop",
        &link_id,
        &webhook,
    ] {
        assert!(reply.contains(said), "{said:?} in {reply}");
    }

    // The REST API shows the link the chat made.
    let (status, links) = get_json(&format!("{}/api/links", world.server.url));
    assert_eq!(status, 200, "{links}");
    assert_eq!(links["links"].as_array().unwrap().len(), 1, "{links}");
    assert_eq!(links["links"][0]["id"], link_id.as_str());
    assert_eq!(links["links"][0]["repository"], REPO);
    assert_eq!(links["links"][0]["branch"], "main");

    // A signed push deploys it, of exactly the pushed commit.
    let (status, res) = world.deliver(
        "push",
        "chat-link-push-1",
        &world.push_payload("refs/heads/main", &pushed),
    );
    assert_eq!(status, 202, "{res}");
    let id = res["deployments"][0].as_str().unwrap().to_string();
    let d = world.finished(&id);
    assert_eq!(d["status"], "live", "{d}");
    assert_eq!(d["service_name"], "shop", "{d}");
    assert_eq!(app_body(d["url"].as_str().unwrap()), "linked from the chat");

    let answer = chat(&world, "what repos are linked?", Some(&session));
    assert_eq!(answer["actions"][0]["tool"], "list_links", "{answer}");
    assert!(
        answer["reply"].as_str().unwrap().contains(&link_id),
        "{answer}"
    );

    // Unlinked from the chat: gone from the API, and the next push deploys nothing.
    let answer = chat(&world, "stop auto-deploying acme/shop", Some(&session));
    let action = &answer["actions"][0];
    assert_eq!(action["tool"], "unlink_repository", "{answer}");
    assert_eq!(action["ok"], true, "{answer}");
    let reply = answer["reply"].as_str().unwrap();
    assert!(
        reply.contains("Removed the link") && reply.contains(&link_id),
        "{reply}"
    );
    let (_, links) = get_json(&format!("{}/api/links", world.server.url));
    assert_eq!(links["links"], json!([]), "{links}");
    let next = world.commit_app("main", "after the unlink");
    let (status, res) = world.deliver(
        "push",
        "chat-link-push-2",
        &world.push_payload("refs/heads/main", &next),
    );
    assert_eq!(status, 202, "{res}");
    assert_eq!(res["ignored"], true, "{res}");
    assert_eq!(world.deployments().len(), 1);

    // Unlinking again answers as a missing link does, and says so.
    let answer = chat(&world, &format!("unlink {link_id}"), Some(&session));
    assert_eq!(answer["actions"][0]["ok"], false, "{answer}");
    assert_eq!(
        answer["actions"][0]["error"]["code"], "not_found",
        "{answer}"
    );
    http()
        .post(format!("{}/api/deployments/{id}/stop", world.server.url))
        .send()
        .unwrap();
}
