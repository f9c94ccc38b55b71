//! The source fetcher against real folders and real git repositories made in a tempdir.

mod common;

use common::Lines;
use devgem_domain::Source;
use devgem_local::{FetchConfig, LocalSourceFetcher};
use devgem_ports::{CancellationToken, SecretValue, SourceError, SourceFetcher};
use devgem_sources::SourcePolicy;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A repository with a commit on `main`, another on `feature`, ignored files and links.
fn make_repo(dir: &Path) -> String {
    std::fs::write(dir.join("app.py"), "print('hi')\n").unwrap();
    std::fs::write(dir.join(".gitignore"), "secret.txt\nbuild/\n").unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/util.py"), "X = 1\n").unwrap();
    git(dir, &["init", "-q"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "first"]);
    git(dir, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(dir.join("feature.txt"), "on feature\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "feature"]);
    git(dir, &["checkout", "-q", "main"]);
    // Untracked and ignored files that only a local copy could see.
    std::fs::write(dir.join("secret.txt"), "do not copy\n").unwrap();
    std::fs::create_dir_all(dir.join("build")).unwrap();
    std::fs::write(dir.join("build/out.bin"), "x").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("outside-link")).unwrap();
    std::os::unix::fs::symlink("sub/util.py", dir.join("inside-link")).unwrap();
    git(dir, &["rev-parse", "HEAD"])
}

fn source(location: &str) -> Source {
    Source {
        location: location.into(),
        archive: None,
        branch: None,
        commit: None,
        subdir: None,
    }
}

async fn fetch(source: &Source, dest: &Path) -> Result<Option<String>, SourceError> {
    fetch_with(policy("github.com"), source, dest)
        .await
        .map(|(commit, _)| commit)
}

fn policy(list: &str) -> SourcePolicy {
    SourcePolicy::parse(list).unwrap()
}

/// A fetch under `policy`: the commit and the log.
async fn fetch_with(
    policy: SourcePolicy,
    source: &Source,
    dest: &Path,
) -> Result<(Option<String>, String), SourceError> {
    let fetcher = LocalSourceFetcher::new(FetchConfig {
        git_timeout: Duration::from_secs(30),
        policy,
        ..FetchConfig::default()
    });
    let lines = Lines::default();
    let result = fetcher
        .fetch(source, None, dest, &lines, &CancellationToken::new())
        .await;
    result.map(|f| (f.commit, lines.text()))
}

fn rejected_reason(result: Result<Option<String>, SourceError>) -> String {
    match result {
        Err(SourceError::Rejected { reason, hint }) => {
            assert!(!hint.is_empty(), "no hint for {reason}");
            reason
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_local_repo_is_copied_without_git_ignored_files_or_outside_links() {
    let repo = tempfile::tempdir().unwrap();
    let head = make_repo(repo.path());
    let dest = tempfile::tempdir().unwrap();

    let commit = fetch(&source(repo.path().to_str().unwrap()), dest.path())
        .await
        .unwrap();

    assert_eq!(commit.as_deref(), Some(head.as_str()));
    let d = dest.path();
    assert!(d.join("app.py").is_file());
    assert!(d.join("sub/util.py").is_file());
    assert!(d.join(".gitignore").is_file());
    assert!(!d.join(".git").exists(), ".git was copied");
    assert!(!d.join("secret.txt").exists(), "an ignored file was copied");
    assert!(!d.join("build").exists(), "an ignored folder was copied");
    assert!(
        !d.join("outside-link").exists(),
        "a link out of the tree was copied"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("inside-link")).unwrap(),
        "X = 1\n"
    );
}

#[tokio::test]
async fn a_file_url_is_cloned_with_its_commit_and_branch() {
    let repo = tempfile::tempdir().unwrap();
    let head = make_repo(repo.path());
    let url = format!("file://{}", repo.path().display());

    let dest = tempfile::tempdir().unwrap();
    let commit = fetch(&source(&url), dest.path()).await.unwrap();
    assert_eq!(commit.as_deref(), Some(head.as_str()));
    assert!(dest.path().join("app.py").is_file());
    assert!(!dest.path().join(".git").exists());
    assert!(!dest.path().join("secret.txt").exists());
    assert!(!dest.path().join("feature.txt").exists());

    let dest = tempfile::tempdir().unwrap();
    let mut on_feature = source(&url);
    on_feature.branch = Some("feature".into());
    let commit = fetch(&on_feature, dest.path()).await.unwrap();
    assert_eq!(commit, Some(git(repo.path(), &["rev-parse", "feature"])));
    assert!(dest.path().join("feature.txt").is_file());
}

#[tokio::test]
async fn a_missing_branch_is_rejected_by_name() {
    let repo = tempfile::tempdir().unwrap();
    make_repo(repo.path());
    let mut s = source(&format!("file://{}", repo.path().display()));
    s.branch = Some("nope".into());
    let dest = tempfile::tempdir().unwrap();
    let reason = rejected_reason(fetch(&s, dest.path()).await);
    assert!(reason.contains("branch nope does not exist"), "{reason}");
}

#[tokio::test]
async fn a_missing_path_is_rejected() {
    let dest = tempfile::tempdir().unwrap();
    let reason = rejected_reason(fetch(&source("/definitely/not/here"), dest.path()).await);
    assert!(reason.contains("does not exist"), "{reason}");
}

#[tokio::test]
async fn a_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.py");
    std::fs::write(&file, "x").unwrap();
    let dest = tempfile::tempdir().unwrap();
    let reason = rejected_reason(fetch(&source(file.to_str().unwrap()), dest.path()).await);
    assert!(reason.contains("not a folder"), "{reason}");
}

#[tokio::test]
async fn an_empty_folder_is_rejected() {
    let empty = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let reason = rejected_reason(fetch(&source(empty.path().to_str().unwrap()), dest.path()).await);
    assert!(reason.contains("is empty"), "{reason}");
}

#[tokio::test]
async fn an_unresolvable_url_is_rejected_fast() {
    let dest = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // Any public host is allowed here, so the name is looked up (and found to be missing).
    let missing = source("https://nonexistent.invalid/x/y.git");
    let result = fetch_with(policy("*"), &missing, dest.path()).await;
    let reason = rejected_reason(result.map(|(commit, _)| commit));
    assert!(reason.contains("could not be found"), "{reason}");
    assert!(reason.contains("nonexistent.invalid"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_url_that_is_not_a_repository_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let url = format!("file://{}/missing", dir.path().display());
    let reason = rejected_reason(fetch(&source(&url), dest.path()).await);
    assert!(reason.contains("not a git repository"), "{reason}");
}

#[tokio::test]
async fn credentials_in_a_url_never_reach_the_log_or_the_reason() {
    let dest = tempfile::tempdir().unwrap();
    let fetcher = LocalSourceFetcher::default();
    let lines = Lines::default();
    let result = fetcher
        .fetch(
            &source("https://user:tok_SECRET123@nonexistent.invalid/x/y.git"),
            None,
            dest.path(),
            &lines,
            &CancellationToken::new(),
        )
        .await;
    let reason = rejected_reason(result.map(|f| f.commit));
    assert!(!reason.contains("tok_SECRET123"), "{reason}");
    assert!(!lines.text().contains("tok_SECRET123"), "{}", lines.text());
}

/// A policy that lists the scheme, host and port of `url` (a loopback test server).
fn listed(url: &str) -> SourcePolicy {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split('/').next().unwrap();
    policy(&format!("{scheme}://{host}"))
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test]
async fn a_private_repository_is_cloned_with_its_owners_token_sent_to_the_github_host_only() {
    let server = devgem_testing::git_http::GitServer::start();
    let url = server.create_private("private-shop", "ghp_OWNER_TOKEN");
    let work = tempfile::tempdir().unwrap();
    let head = make_repo(work.path());
    let bare = server.bare("private-shop");
    git(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
    // The git server stands in for GitHub: DEVGEM_GITHUB_URL names it.
    let fetcher = |server_token: Option<&str>, github_url: &str| {
        LocalSourceFetcher::new(FetchConfig {
            git_timeout: Duration::from_secs(30),
            policy: listed(&url),
            github_token: server_token.map(SecretValue::new),
            github_url: github_url.to_string(),
            ..FetchConfig::default()
        })
    };
    let owner = SecretValue::new("ghp_OWNER_TOKEN");
    let run = |fetcher: LocalSourceFetcher, credential: Option<SecretValue>| {
        let url = url.clone();
        async move {
            let dest = tempfile::tempdir().unwrap();
            let lines = Lines::default();
            let result = fetcher
                .fetch(
                    &source(&url),
                    credential.as_ref(),
                    dest.path(),
                    &lines,
                    &CancellationToken::new(),
                )
                .await;
            (result, dest, lines.text())
        }
    };

    // The owner's token clones it, even where the server's own token cannot.
    let (result, dest, log) = run(
        fetcher(Some("ghp_WRONG"), &server.base_url),
        Some(owner.clone()),
    )
    .await;
    assert_eq!(result.unwrap().commit.as_deref(), Some(head.as_str()));
    assert!(dest.path().join("app.py").is_file());
    assert!(!dest.path().join(".git").exists());
    assert!(files_containing(dest.path(), "ghp_OWNER_TOKEN").is_empty());
    assert!(!log.contains("ghp_OWNER_TOKEN"), "{log}");
    let served = server.requests_in_full();
    assert!(
        served
            .iter()
            .any(|r| r.status == 200 && r.path.ends_with("git-upload-pack")),
        "{served:?}"
    );

    // Without the owner's token, the server's GITHUB_TOKEN is used.
    let (result, _dest, _) = run(fetcher(Some("ghp_OWNER_TOKEN"), &server.base_url), None).await;
    assert!(result.is_ok(), "{result:?}");

    // With neither, the reason says how to give DevGem access.
    let (result, _dest, log) = run(fetcher(None, &server.base_url), None).await;
    let Err(SourceError::Rejected { reason, hint }) = result else {
        panic!("{result:?}");
    };
    assert!(reason.contains("private"), "{reason}");
    assert!(
        hint.contains("sign in with GitHub") && hint.contains("GITHUB_TOKEN"),
        "{hint}"
    );
    assert!(!log.contains("ghp_"), "{log}");

    // A token that cannot read it is named as the problem, and is not repeated.
    let wrong = SecretValue::new("ghp_STALE");
    let (result, _dest, log) = run(fetcher(None, &server.base_url), Some(wrong)).await;
    let Err(SourceError::Rejected { reason, hint }) = result else {
        panic!("{result:?}");
    };
    assert!(reason.contains("token used cannot read it"), "{reason}");
    assert!(!format!("{reason} {hint} {log}").contains("ghp_STALE"));

    // A GitHub token never goes to another host, allowed or not.
    let before = server.requests_in_full().len();
    let (result, _dest, _) = run(fetcher(None, "https://github.com"), Some(owner)).await;
    assert!(
        matches!(result, Err(SourceError::Rejected { .. })),
        "{result:?}"
    );
    let later = &server.requests_in_full()[before..];
    assert!(!later.is_empty());
    assert!(later.iter().all(|r| r.authorization.is_none()), "{later:?}");
}

/// A loopback server that accepts connections and never answers, like a network that hangs.
fn hanging_server() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/owner/repo.git", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            held.push(stream);
        }
    });
    (url, handle)
}

#[tokio::test]
async fn a_clone_that_hangs_is_unavailable_after_the_timeout() {
    let (url, _server) = hanging_server();
    let fetcher = LocalSourceFetcher::new(FetchConfig {
        git_timeout: Duration::from_secs(2),
        policy: listed(&url),
        ..FetchConfig::default()
    });
    let dest = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let result = fetcher
        .fetch(
            &source(&url),
            None,
            dest.path(),
            &Lines::default(),
            &CancellationToken::new(),
        )
        .await;
    assert!(
        matches!(result, Err(SourceError::Unavailable(ref m)) if m.contains("within 2 s")),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn a_clone_can_be_cancelled() {
    let (url, _server) = hanging_server();
    let dest = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        canceller.cancel();
    });
    let started = Instant::now();
    let fetcher = LocalSourceFetcher::new(FetchConfig {
        policy: listed(&url),
        ..FetchConfig::default()
    });
    let result = fetcher
        .fetch(&source(&url), None, dest.path(), &Lines::default(), &cancel)
        .await;
    assert!(matches!(result, Err(SourceError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_subdir_is_checked_but_the_checkout_stays_whole() {
    let repo = tempfile::tempdir().unwrap();
    make_repo(repo.path());
    let mut s = source(repo.path().to_str().unwrap());
    s.subdir = Some("sub".into());
    let dest = tempfile::tempdir().unwrap();
    fetch(&s, dest.path()).await.unwrap();
    assert!(dest.path().join("app.py").is_file());
    assert!(dest.path().join("sub/util.py").is_file());

    s.subdir = Some("nope".into());
    let dest = tempfile::tempdir().unwrap();
    let reason = rejected_reason(fetch(&s, dest.path()).await);
    assert!(reason.contains("nope does not exist"), "{reason}");
}

/// `git daemon` serving `base` on a loopback port: a real network clone, no internet.
struct GitDaemon {
    child: std::process::Child,
    port: u16,
}

impl GitDaemon {
    async fn start(base: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        use std::os::unix::process::CommandExt;
        // `git daemon` runs `git-daemon` as a child: a group of their own lets Drop end both.
        let child = Command::new("git")
            .process_group(0)
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        common::wait_until("git daemon listens", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        Self { child, port }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_repository_is_cloned_over_the_git_protocol_from_a_loopback_server() {
    let base = tempfile::tempdir().unwrap();
    let repo = base.path().join("shop");
    std::fs::create_dir_all(&repo).unwrap();
    let head = make_repo(&repo);
    let daemon = GitDaemon::start(base.path()).await;

    let dest = tempfile::tempdir().unwrap();
    let url = format!("git://127.0.0.1:{}/shop", daemon.port);
    let (commit, _) = fetch_with(listed(&url), &source(&url), dest.path())
        .await
        .unwrap();
    assert_eq!(commit.as_deref(), Some(head.as_str()));
    assert!(dest.path().join("sub/util.py").is_file());

    let dest = tempfile::tempdir().unwrap();
    let missing = format!("git://127.0.0.1:{}/nope", daemon.port);
    let result = fetch_with(listed(&url), &source(&missing), dest.path()).await;
    let reason = rejected_reason(result.map(|(commit, _)| commit));
    assert!(reason.contains("not found, or it is private"), "{reason}");
}

/// A repository whose commit holds links (one inside, one to /etc/hostname) and a submodule.
fn repo_with_links_and_a_submodule(dir: &Path, other: &Path) {
    std::fs::write(other.join("lib.txt"), "vendored\n").unwrap();
    git(other, &["init", "-q"]);
    git(other, &["add", "."]);
    git(other, &["commit", "-q", "-m", "lib"]);
    std::fs::write(dir.join("index.html"), "<h1>hi</h1>\n").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("outside-link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc", dir.join("climbing-link")).unwrap();
    std::os::unix::fs::symlink("index.html", dir.join("inside-link")).unwrap();
    git(dir, &["init", "-q"]);
    let other_url = format!("file://{}", other.display());
    git(
        dir,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &other_url,
            "vendored",
        ],
    );
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "links"]);
}

#[tokio::test]
async fn a_clone_drops_links_out_of_the_checkout_and_never_fetches_submodules() {
    let (repo, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    repo_with_links_and_a_submodule(repo.path(), other.path());
    let dest = tempfile::tempdir().unwrap();
    let url = format!("file://{}", repo.path().display());
    let (_, log) = fetch_with(policy("github.com"), &source(&url), dest.path())
        .await
        .unwrap();
    let d = dest.path();
    assert!(d.join("index.html").is_file());
    assert!(d.join("inside-link").is_symlink(), "{log}");
    assert!(!d.join("outside-link").exists() && !d.join("outside-link").is_symlink());
    assert!(!d.join("climbing-link").is_symlink(), "{log}");
    assert!(log.contains("Removed the link outside-link"), "{log}");
    assert!(
        !d.join("vendored/lib.txt").exists(),
        "the submodule was fetched"
    );
    assert!(log.contains("submodules are not fetched"), "{log}");
}

#[tokio::test]
async fn a_tree_over_the_limits_is_refused_before_anything_is_checked_out() {
    let repo = tempfile::tempdir().unwrap();
    make_repo(repo.path());
    let url = format!("file://{}", repo.path().display());
    for (max_files, max_bytes, says) in [
        (2, 1 << 30, "holds 3 files"),
        (1000, 10, "at most 1000 files and 0 MiB"),
    ] {
        let dest = tempfile::tempdir().unwrap();
        let fetcher = LocalSourceFetcher::new(FetchConfig {
            max_files,
            max_bytes,
            ..FetchConfig::default()
        });
        let result = fetcher
            .fetch(
                &source(&url),
                None,
                dest.path(),
                &Lines::default(),
                &CancellationToken::new(),
            )
            .await;
        let reason = rejected_reason(result.map(|f| f.commit));
        assert!(reason.contains(says), "{reason}");
        assert!(!dest.path().join("app.py").exists(), "files were written");
    }
}

/// A repository like `make_repo`'s plus 8 MiB that no compression shrinks.
fn make_big_repo(dir: &Path) {
    make_repo(dir);
    let noise: Vec<u8> = (0..8u64 << 20)
        .scan(0x9E37_79B9_7F4A_7C15u64, |x, _| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            Some(*x as u8)
        })
        .collect();
    std::fs::write(dir.join("big.bin"), noise).unwrap();
    git(dir, &["add", "big.bin"]);
    git(dir, &["commit", "-q", "-m", "big"]);
}

/// A loopback proxy to `port` that passes the server's bytes on slowly (64 KiB every 20 ms,
/// about 3 MB/s), as a distant host would: an 8 MiB download takes seconds.
fn slow_proxy(port: u16) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let server = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (mut up_from, mut up_to) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut up_from, &mut up_to));
            let (mut down_from, mut down_to) = (server, client);
            std::thread::spawn(move || {
                let mut chunk = vec![0; 64 << 10];
                while let Ok(n @ 1..) = down_from.read(&mut chunk) {
                    if down_to.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
    });
    proxy_port
}

#[tokio::test]
async fn a_download_over_the_size_limit_is_stopped_while_git_runs() {
    let base = tempfile::tempdir().unwrap();
    let repo = base.path().join("big");
    std::fs::create_dir_all(&repo).unwrap();
    make_big_repo(&repo);
    let daemon = GitDaemon::start(base.path()).await;
    let url = format!("git://127.0.0.1:{}/big", slow_proxy(daemon.port));
    let dest = tempfile::tempdir().unwrap();
    let fetcher = LocalSourceFetcher::new(FetchConfig {
        policy: listed(&url),
        max_bytes: 2 << 20,
        ..FetchConfig::default()
    });
    let result = fetcher
        .fetch(
            &source(&url),
            None,
            dest.path(),
            &Lines::default(),
            &CancellationToken::new(),
        )
        .await;
    let reason = rejected_reason(result.map(|f| f.commit));
    assert!(
        reason.contains("downloads more than the limit of 2 MiB: git was stopped"),
        "{reason}"
    );
    assert!(!dest.path().join("app.py").exists(), "files were written");
}

#[tokio::test]
async fn a_download_over_the_size_limit_that_finishes_fast_is_refused_too() {
    let repo = tempfile::tempdir().unwrap();
    make_big_repo(repo.path());
    let url = format!("file://{}", repo.path().display());
    let dest = tempfile::tempdir().unwrap();
    let fetcher = LocalSourceFetcher::new(FetchConfig {
        max_bytes: 2 << 20,
        ..FetchConfig::default()
    });
    let result = fetcher
        .fetch(
            &source(&url),
            None,
            dest.path(),
            &Lines::default(),
            &CancellationToken::new(),
        )
        .await;
    let reason = rejected_reason(result.map(|f| f.commit));
    assert!(
        reason.contains("downloads more than the limit of 2 MiB"),
        "{reason}"
    );
    assert!(!dest.path().join("app.py").exists(), "files were written");
}

#[tokio::test]
async fn an_exact_commit_is_fetched_alone() {
    let repo = tempfile::tempdir().unwrap();
    make_repo(repo.path());
    let first = git(repo.path(), &["rev-parse", "HEAD"]);
    std::fs::write(repo.path().join("later.txt"), "later\n").unwrap();
    git(repo.path(), &["add", "later.txt"]);
    git(repo.path(), &["commit", "-q", "-m", "later"]);
    let dest = tempfile::tempdir().unwrap();
    let mut s = source(&format!("file://{}", repo.path().display()));
    s.commit = Some(first.clone());
    let commit = fetch(&s, dest.path()).await.unwrap();
    assert_eq!(commit.as_deref(), Some(first.as_str()));
    assert!(dest.path().join("app.py").is_file());
    assert!(!dest.path().join("later.txt").exists());
}

#[tokio::test]
async fn a_host_off_the_list_is_refused_before_git_runs() {
    let dest = tempfile::tempdir().unwrap();
    for (url, says) in [
        ("https://evil.example/a/b", "not an allowed source host"),
        ("ext::sh -c id", "git transport"),
        ("--upload-pack=touch /tmp/x", "option"),
        ("https://169.254.169.254/latest", "link-local"),
        ("http://github.com/a/b", "plain http"),
    ] {
        let reason = rejected_reason(fetch(&source(url), dest.path()).await);
        assert!(reason.contains(says), "{url}: {reason}");
    }
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_unless_it_is_listed() {
    let base = tempfile::tempdir().unwrap();
    let repo = base.path().join("shop");
    std::fs::create_dir_all(&repo).unwrap();
    let head = make_repo(&repo);
    let daemon = GitDaemon::start(base.path()).await;

    // Any public host may be named: `localhost` is looked up, and its address refused.
    let dest = tempfile::tempdir().unwrap();
    let url = format!("https://localhost:{}/shop", daemon.port);
    let result = fetch_with(policy("*"), &source(&url), dest.path()).await;
    let reason = rejected_reason(result.map(|(commit, _)| commit));
    assert!(
        reason.contains("localhost resolves to 127.0.0.1"),
        "{reason}"
    );

    // Listed, it is trusted.
    let url = format!("git://localhost:{}/shop", daemon.port);
    let (commit, _) = fetch_with(listed(&url), &source(&url), dest.path())
        .await
        .unwrap();
    assert_eq!(commit.as_deref(), Some(head.as_str()));
}
