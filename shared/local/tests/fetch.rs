//! The source fetcher against real folders and real git repositories made in a tempdir.

mod common;

use common::Lines;
use devgem_domain::Source;
use devgem_local::{FetchConfig, LocalSourceFetcher};
use devgem_ports::{CancellationToken, SourceError, SourceFetcher};
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
    let fetcher = LocalSourceFetcher::new(FetchConfig {
        git_timeout: Duration::from_secs(30),
        github_token: None,
    });
    let lines = Lines::default();
    fetcher
        .fetch(source, dest, &lines, &CancellationToken::new())
        .await
        .map(|f| f.commit)
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
    let reason =
        rejected_reason(fetch(&source("https://nonexistent.invalid/x/y.git"), dest.path()).await);
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
            dest.path(),
            &lines,
            &CancellationToken::new(),
        )
        .await;
    let reason = rejected_reason(result.map(|f| f.commit));
    assert!(!reason.contains("tok_SECRET123"), "{reason}");
    assert!(!lines.text().contains("tok_SECRET123"), "{}", lines.text());
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
        github_token: None,
    });
    let dest = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let result = fetcher
        .fetch(
            &source(&url),
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
    let result = LocalSourceFetcher::default()
        .fetch(&source(&url), dest.path(), &Lines::default(), &cancel)
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
    let commit = fetch(&source(&url), dest.path()).await.unwrap();
    assert_eq!(commit.as_deref(), Some(head.as_str()));
    assert!(dest.path().join("sub/util.py").is_file());

    let dest = tempfile::tempdir().unwrap();
    let missing = format!("git://127.0.0.1:{}/nope", daemon.port);
    let reason = rejected_reason(fetch(&source(&missing), dest.path()).await);
    assert!(reason.contains("not found, or it is private"), "{reason}");
}
