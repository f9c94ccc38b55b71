//! The source fetcher: a local folder (copied, honouring `.gitignore`) or a git URL the source
//! policy allows (a shallow clone with a timeout, never prompting for credentials, connected
//! only to the address that was checked, bounded in files and bytes, without submodules and
//! without links that lead out of the checkout).

use async_trait::async_trait;
use base64::Engine as _;
use devgem_domain::Source;
use devgem_ports::{FetchedSource, LogSink, SecretValue, SourceError, SourceFetcher};
use devgem_sources::{Scheme, SourcePolicy};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::process::{self, RunError};
use crate::tree::{self, CopyRules};

/// How the fetcher behaves.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// The longest a clone (or a fetch of a commit) may take.
    pub git_timeout: Duration,
    /// `GITHUB_TOKEN`: sent to the GitHub host when the deployment's owner has no token of
    /// their own, so private repositories can be cloned.
    pub github_token: Option<SecretValue>,
    /// `DEVGEM_GITHUB_URL` (https://github.com): the only host a GitHub token is sent to.
    pub github_url: String,
    /// Which hosts a clone may reach; checked again here, at connect time.
    pub policy: SourcePolicy,
    /// The most files a checkout may hold.
    pub max_files: usize,
    /// The most bytes a checkout's files may hold together.
    pub max_bytes: u64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            git_timeout: Duration::from_secs(120),
            github_token: None,
            github_url: "https://github.com".into(),
            policy: SourcePolicy::default(),
            max_files: 100_000,
            max_bytes: 2 << 30,
        }
    }
}

impl FetchConfig {
    /// The defaults, with the GitHub token from `GITHUB_TOKEN` (or `GH_TOKEN`) when set.
    pub fn from_env() -> Self {
        let token = ["GITHUB_TOKEN", "GH_TOKEN"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
        Self {
            github_token: token.map(SecretValue::new),
            ..Self::default()
        }
    }
}

/// Fetches a [`Source`] whose location is a local path or a git URL.
#[derive(Debug, Clone, Default)]
pub struct LocalSourceFetcher {
    config: FetchConfig,
}

impl LocalSourceFetcher {
    pub fn new(config: FetchConfig) -> Self {
        Self { config }
    }
}

/// What a location string names.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    Path(PathBuf),
    Git(String),
}

/// Hosts whose `host/owner/repo` shorthand means the https URL.
const SHORTHAND_HOSTS: &[&str] = &["github.com/", "gitlab.com/", "bitbucket.org/"];

fn classify(location: &str) -> Location {
    let location = location.trim();
    let schemes = [
        "https://",
        "http://",
        "git://",
        "ssh://",
        "file://",
        "git+ssh://",
    ];
    if schemes.iter().any(|s| location.starts_with(s)) {
        return Location::Git(location.to_string());
    }
    // scp-like ssh: `git@github.com:owner/repo.git` (a colon before any slash, after an `@`).
    if let Some((before, _)) = location.split_once(':')
        && before.contains('@')
        && !before.contains('/')
    {
        return Location::Git(location.to_string());
    }
    let path = expand_home(location);
    let bare = location.strip_prefix("www.").unwrap_or(location);
    if SHORTHAND_HOSTS.iter().any(|h| bare.starts_with(h)) && !path.exists() {
        return Location::Git(format!("https://{bare}"));
    }
    Location::Path(path)
}

fn expand_home(location: &str) -> PathBuf {
    match (location.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(location),
    }
}

/// `url` with any user name or token replaced by `***`, for logs and messages.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', ' ', '\'', '"']).unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[async_trait]
impl SourceFetcher for LocalSourceFetcher {
    async fn fetch(
        &self,
        source: &Source,
        credential: Option<&SecretValue>,
        dest: &Path,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<FetchedSource, SourceError> {
        // The policy again, whoever stored the source: a transport, an option or a refused
        // host never reaches git.
        if let Err(r) = self.config.policy.classify(source.location.trim()) {
            return Err(SourceError::Rejected {
                reason: r.to_string(),
                hint: r.hint,
            });
        }
        let fetched = match classify(&source.location) {
            Location::Path(path) => self.copy_local(&path, source, dest, log, cancel).await,
            Location::Git(url) => {
                self.clone_git(&url, source, credential, dest, log, cancel)
                    .await
            }
        }?;
        // The checkout stays whole (the app may use files beside its folder); the folder is
        // only checked, so a typo fails here with a clear reason rather than in analysis.
        if let Some(subdir) = source.subdir.as_deref().filter(|s| !s.is_empty()) {
            let path = Path::new(subdir);
            if !tree::is_contained(path) || !dest.join(path).is_dir() {
                return Err(SourceError::Rejected {
                    reason: format!("the folder {subdir} does not exist in the source"),
                    hint: "give the app's folder relative to the repository root, e.g. apps/web"
                        .into(),
                });
            }
            log.line(&format!("The app is in {subdir}"));
        }
        Ok(fetched)
    }
}

impl LocalSourceFetcher {
    async fn copy_local(
        &self,
        path: &Path,
        source: &Source,
        dest: &Path,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<FetchedSource, SourceError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|_| SourceError::Rejected {
            reason: format!("the path {shown} does not exist"),
            hint: "check the path, or give a git URL such as https://github.com/owner/repo".into(),
        })?;
        if !meta.is_dir() {
            return Err(SourceError::Rejected {
                reason: format!("{shown} is a file, not a folder"),
                hint: "give the folder that holds the app (the one with package.json, requirements.txt, index.html...)".into(),
            });
        }
        let empty = tree::is_empty_dir(path).map_err(|e| SourceError::Rejected {
            reason: format!("the folder {shown} cannot be read: {e}"),
            hint: "check its permissions".into(),
        })?;
        if empty {
            return Err(SourceError::Rejected {
                reason: format!("the folder {shown} is empty"),
                hint: "point DevGem at the folder that holds your app's code".into(),
            });
        }
        if cancel.is_cancelled() {
            return Err(SourceError::Cancelled);
        }
        log.line(&format!(
            "Copying {shown} (honouring .gitignore, without .git)"
        ));
        let (src, dst) = (path.to_path_buf(), dest.to_path_buf());
        let report = tokio::task::spawn_blocking(move || {
            let rules = CopyRules {
                gitignore: true,
                skip_names: &[],
            };
            tree::copy_tree(&src, &dst, &rules)
        })
        .await
        .map_err(|e| SourceError::Unavailable(format!("copy task failed: {e}")))?
        .map_err(|e| SourceError::Rejected {
            reason: format!("copying {shown} failed: {e}"),
            hint: "check that every file in the folder is readable".into(),
        })?;
        for link in &report.skipped_links {
            log.line(&format!(
                "Skipped the link {}: it points outside the folder or nowhere",
                link.display()
            ));
        }
        if report.files == 0 {
            return Err(SourceError::Rejected {
                reason: format!(
                    "the folder {shown} has no files to deploy: .gitignore excludes them all"
                ),
                hint: "point DevGem at the folder that holds your app's code".into(),
            });
        }
        log.line(&format!("Copied {} files", report.files));
        let commit = head_commit(path).await;
        // A folder is deployed as it is on disk: a branch or commit cannot be checked out
        // without touching the user's working copy, so say what was deployed instead.
        if let Some(branch) = &source.branch {
            log.line(&format!(
                "Note: {shown} is a folder; deploying it as it is, not branch {branch}"
            ));
        }
        if let Some(wanted) = &source.commit
            && !commit
                .as_deref()
                .is_some_and(|c| c.starts_with(wanted.as_str()))
        {
            log.line(&format!(
                "Note: {shown} is at commit {}, not {wanted}; deploying it as it is",
                commit.as_deref().unwrap_or("(none)")
            ));
        }
        Ok(FetchedSource { commit })
    }

    /// `DEVGEM_GITHUB_URL` with one trailing `/`: the prefix of the URLs a token is sent to.
    fn github_prefix(&self) -> String {
        format!("{}/", self.config.github_url.trim().trim_end_matches('/'))
    }

    async fn clone_git(
        &self,
        url: &str,
        source: &Source,
        credential: Option<&SecretValue>,
        dest: &Path,
        log: &dyn LogSink,
        cancel: &CancellationToken,
    ) -> Result<FetchedSource, SourceError> {
        let shown = redact_url(url);
        let (url, hardening) = self.connect_rules(url).await?;
        let url = url.as_str();
        // A GitHub token goes to the GitHub host only: the owner's, else the server's.
        let prefix = self.github_prefix();
        let token = credential
            .or(self.config.github_token.as_ref())
            .filter(|_| url.starts_with(&prefix))
            .map(|t| t.expose().to_string());
        let redact = {
            let token = token.clone();
            move |line: &str| {
                let line = redact_url(line);
                match &token {
                    Some(t) if !t.is_empty() => line.replace(t.as_str(), "***"),
                    _ => line,
                }
            }
        };
        let git = |args: &[&str], dir: Option<&Path>, token: Option<&str>| {
            self.git(&hardening, args, dir, token)
        };

        // No checkout yet: the tree's size is checked before a file is written.
        let mut args = vec!["clone", "--no-checkout", "--depth", "1", "--no-tags"];
        if let Some(branch) = &source.branch {
            args.extend(["--branch", branch.as_str()]);
            log.line(&format!("Cloning {shown} (branch {branch})"));
        } else {
            log.line(&format!("Cloning {shown}"));
        }
        let dest_str = dest.to_string_lossy();
        args.extend(["--", url, &dest_str]);
        let remote = Remote {
            shown: &shown,
            source,
            with_token: token.is_some(),
        };
        self.download(
            git(&args, None, token.as_deref()),
            dest,
            &remote,
            log,
            cancel,
            &redact,
        )
        .await?;

        let mut target = "HEAD".to_string();
        if let Some(commit) = &source.commit {
            let head = rev_parse(dest).await.unwrap_or_default();
            if !head.starts_with(commit.as_str()) {
                log.line(&format!("Fetching commit {commit}"));
                let fetch = git(
                    &["fetch", "--depth", "1", "--no-tags", "origin", "--", commit],
                    Some(dest),
                    token.as_deref(),
                );
                self.download(fetch, dest, &remote, log, cancel, &redact)
                    .await
                    .map_err(|e| match e {
                        SourceError::Rejected { ref reason, .. } if reason.contains(TOO_BIG) => e,
                        SourceError::Rejected { .. } => SourceError::Rejected {
                            reason: format!("commit {commit} was not found in {shown}"),
                            hint: "give the full 40-character sha of a commit that was pushed"
                                .into(),
                        },
                        other => other,
                    })?;
                target = "FETCH_HEAD".to_string();
            }
        }
        self.check_tree_size(dest, &target, &shown).await?;
        let checkout = git(
            &["checkout", "--quiet", "--detach", &target],
            Some(dest),
            None,
        );
        let local = Remote {
            with_token: false,
            ..remote
        };
        self.run_git(checkout, &local, log, cancel, &redact).await?;
        let commit = rev_parse(dest).await;
        if let Some(sha) = &commit {
            log.line(&format!("Checked out {sha}"));
        }
        if dest.join(".gitmodules").is_file() {
            // A submodule can point anywhere (another host, a file:// path): never followed.
            log.line(
                "Note: submodules are not fetched; vendor what the app needs into the repository",
            );
        }
        // The checkout is the files only, as for a local folder: history is not deployed.
        let _ = std::fs::remove_dir_all(dest.join(".git"));
        let dropped = tree::drop_links_outside(dest).map_err(|e| {
            SourceError::Unavailable(format!("the checkout could not be read: {e}"))
        })?;
        for link in dropped {
            log.line(&format!(
                "Removed the link {}: it points outside the repository or nowhere",
                link.display()
            ));
        }
        Ok(FetchedSource { commit })
    }

    /// The URL git is given and the settings it runs with: the source policy checked here
    /// again (a stored deployment or a webhook may name any URL), the host of an unlisted
    /// name resolved and each address checked, and git pinned to the checked address so a
    /// second lookup (DNS rebinding) cannot lead it elsewhere. Only the URL's own protocol is
    /// allowed, and an unlisted host may not redirect.
    async fn connect_rules(&self, url: &str) -> Result<(String, Vec<String>), SourceError> {
        let refused = |r: devgem_sources::Refusal| SourceError::Rejected {
            reason: r.to_string(),
            hint: r.hint,
        };
        let mut config = vec!["submodule.recurse=false".to_string()];
        if url
            .trim_start()
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("file://"))
        {
            // Whoever asked was allowed local sources (the request was checked when made).
            config.push("protocol.allow=never".into());
            config.push("protocol.file.allow=always".into());
            return Ok((url.to_string(), config));
        }
        let policy = &self.config.policy;
        let parsed = policy.check_remote(url).map_err(refused)?;
        let protocol = match parsed.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Ssh => "ssh",
            Scheme::Git => "git",
        };
        config.push("protocol.allow=never".into());
        config.push(format!("protocol.{protocol}.allow=always"));
        if policy.needs_resolution(&parsed) {
            let devgem_sources::Host::Name(name) = &parsed.host else {
                unreachable!("only names need resolving");
            };
            let port = parsed.effective_port();
            let addresses: Vec<std::net::IpAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|e| SourceError::Rejected {
                    reason: format!("the host {name} could not be found ({e})"),
                    hint: "check the URL, and that this machine is online".into(),
                })?
                .map(|a| a.ip())
                .collect();
            policy
                .check_addresses(&parsed, &addresses)
                .map_err(refused)?;
            let pinned = match addresses[0] {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            config.push(format!("http.curloptResolve={name}:{port}:{pinned}"));
            config.push("http.followRedirects=false".into());
        }
        Ok((parsed.to_git_url(), config))
    }

    /// Refuses a tree with more files or bytes than the limits, read from git's object
    /// listing before anything is checked out.
    async fn check_tree_size(
        &self,
        dest: &Path,
        rev: &str,
        shown: &str,
    ) -> Result<(), SourceError> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dest)
            .args(["ls-tree", "-r", "-l", "-z", "--", rev])
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| SourceError::Unavailable(format!("git ls-tree could not start: {e}")))?;
        if !out.status.success() {
            return Err(SourceError::Unavailable(format!(
                "the tree of {shown} could not be listed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let (files, bytes) = tree_totals(&out.stdout);
        let (max_files, max_bytes) = (self.config.max_files, self.config.max_bytes);
        if files > max_files || bytes > max_bytes {
            return Err(SourceError::Rejected {
                reason: format!(
                    "{shown} holds {files} files of {} MiB; a deployment takes at most {max_files} \
                     files and {} MiB",
                    bytes >> 20,
                    max_bytes >> 20
                ),
                hint: "deploy the app's folder of a smaller repository, or move large assets \
                       to object storage"
                    .into(),
            });
        }
        Ok(())
    }

    /// A git command that never prompts: no terminal prompt, no credential helper dialogs,
    /// ssh in batch mode. A GitHub token travels in the environment, never on the command
    /// line where `ps` would show it.
    fn git(
        &self,
        config: &[String],
        args: &[&str],
        dir: Option<&Path>,
        token: Option<&str>,
    ) -> Command {
        let mut cmd = Command::new("git");
        if let Some(dir) = dir {
            cmd.arg("-C").arg(dir);
        }
        for setting in config {
            cmd.arg("-c").arg(setting);
        }
        cmd.args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GCM_INTERACTIVE", "never")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE");
        if std::env::var_os("GIT_SSH_COMMAND").is_none() {
            cmd.env(
                "GIT_SSH_COMMAND",
                "ssh -o BatchMode=yes -o ConnectTimeout=30",
            );
        }
        if let Some(token) = token {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env(
                    "GIT_CONFIG_KEY_0",
                    format!("http.{}.extraheader", self.github_prefix()),
                )
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                );
        }
        cmd
    }

    /// Runs a git command that downloads into `dest`, watching `dest`'s size while it runs:
    /// past the limit git is stopped, so a huge repository is refused before it fills the
    /// disk (the tree's own size is checked after, from git's listing).
    async fn download(
        &self,
        cmd: Command,
        dest: &Path,
        remote: &Remote<'_>,
        log: &dyn LogSink,
        cancel: &CancellationToken,
        redact: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<(), SourceError> {
        // git's own files (hooks, config, index) come on top of the objects.
        let limit = self.config.max_bytes.saturating_add(GIT_OVERHEAD_BYTES);
        let stop = cancel.child_token();
        let over = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (dest, stop, over) = (dest.to_path_buf(), stop.clone(), over.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(SIZE_POLL).await;
                    let dir = dest.clone();
                    let size = tokio::task::spawn_blocking(move || folder_bytes(&dir))
                        .await
                        .unwrap_or(0);
                    if size > limit {
                        over.store(true, Ordering::SeqCst);
                        stop.cancel();
                        return;
                    }
                }
            })
        };
        let result = self.run_git(cmd, remote, log, &stop, redact).await;
        watcher.abort();
        let too_big = |how: &str| SourceError::Rejected {
            reason: format!(
                "{} {TOO_BIG} of {} MiB{how}",
                remote.shown,
                self.config.max_bytes >> 20
            ),
            hint: "deploy a smaller repository, or move large assets to object storage".into(),
        };
        if over.load(Ordering::SeqCst) {
            return Err(too_big(": git was stopped"));
        }
        // A download faster than the watch is measured once it is done.
        let dir = dest.to_path_buf();
        let size = tokio::task::spawn_blocking(move || folder_bytes(&dir))
            .await
            .unwrap_or(0);
        if result.is_ok() && size > limit {
            return Err(too_big(""));
        }
        result
    }

    async fn run_git(
        &self,
        cmd: Command,
        remote: &Remote<'_>,
        log: &dyn LogSink,
        cancel: &CancellationToken,
        redact: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<(), SourceError> {
        let shown = remote.shown;
        let timeout = self.config.git_timeout;
        match process::run(cmd, log, timeout, cancel, redact).await {
            Ok(done) if done.status.success() => Ok(()),
            Ok(done) => Err(classify_git_failure(&redact(&done.tail.all()), remote)),
            Err(RunError::Cancelled) => Err(SourceError::Cancelled),
            Err(RunError::TimedOut(_)) => Err(SourceError::Unavailable(format!(
                "git did not finish fetching {shown} within {} s",
                timeout.as_secs()
            ))),
            Err(RunError::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(SourceError::Rejected {
                    reason: "git is not installed on this machine".into(),
                    hint: "install git (apt install git, or brew install git)".into(),
                })
            }
            Err(RunError::Spawn(e)) => Err(SourceError::Unavailable(format!(
                "git could not start: {e}"
            ))),
        }
    }
}

/// How often a download's folder is measured.
const SIZE_POLL: Duration = Duration::from_millis(50);
/// Room for git's own files in a download's folder, besides the objects.
const GIT_OVERHEAD_BYTES: u64 = 1 << 20;
/// What a refused download says (and how a commit fetch tells it from a missing commit).
const TOO_BIG: &str = "downloads more than the limit";

/// The bytes of the files under `dir` (links not followed); what cannot be read counts 0.
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => folder_bytes(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Reads git's complaint: what the user must fix is `Rejected`, what may pass is
/// `Unavailable`.
/// What a git command fetches from, for the messages about it.
#[derive(Clone, Copy)]
struct Remote<'a> {
    /// The URL as logs may show it.
    shown: &'a str,
    source: &'a Source,
    /// A GitHub token was sent, so "not found" means it cannot read the repository.
    with_token: bool,
}

fn classify_git_failure(output: &str, remote: &Remote<'_>) -> SourceError {
    let Remote {
        shown,
        source,
        with_token,
    } = *remote;
    let lower = output.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let last = output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    let rejected = |reason: String, hint: &str| SourceError::Rejected {
        reason,
        hint: hint.to_string(),
    };
    if has(&["could not resolve host", "name or service not known"]) {
        return rejected(
            format!("the host of {shown} could not be found ({last})"),
            "check the URL, and that this machine is online",
        );
    }
    if has(&["remote branch"]) && has(&["not found"]) {
        let branch = source.branch.as_deref().unwrap_or("?");
        return rejected(
            format!("the branch {branch} does not exist in {shown}"),
            "check the branch name (git ls-remote --heads URL lists them)",
        );
    }
    if has(&[
        "permission denied (publickey)",
        "host key verification failed",
    ]) {
        return rejected(
            format!("ssh access to {shown} was refused ({last})"),
            "load an SSH key with access into ssh-agent, or use the https URL and set GITHUB_TOKEN",
        );
    }
    if has(&[
        "repository not found",
        "repository not exported",
        "access denied",
        "could not read username",
        "could not read password",
        "authentication failed",
        "terminal prompts disabled",
        "error: 403",
        "error: 401",
        "error: 404",
        "returned error: 403",
        "returned error: 401",
        "returned error: 404",
    ]) {
        return if with_token {
            rejected(
                format!(
                    "the repository {shown} was not found, or the GitHub token used cannot read it"
                ),
                "check the URL; the deployment's owner should sign in with GitHub again as an \
                 account that can read the repository (or set GITHUB_TOKEN to one that can)",
            )
        } else {
            rejected(
                format!("the repository {shown} was not found, or it is private"),
                "check the URL; for a private repository sign in with GitHub (the deployment \
                 then clones with your token) or set GITHUB_TOKEN to a token that can read it",
            )
        };
    }
    if has(&[
        "does not appear to be a git repository",
        "not a git repository",
        "not found",
    ]) {
        return rejected(
            format!("{shown} is not a git repository ({last})"),
            "check the URL",
        );
    }
    if has(&[
        "timed out",
        "connection refused",
        "failed to connect",
        "couldn't connect",
        "network is unreachable",
        "early eof",
        "rpc failed",
        "remote end hung up",
        "returned error: 5",
        "connection reset",
        "tls",
        "ssl",
    ]) {
        return SourceError::Unavailable(format!("fetching {shown} failed: {last}"));
    }
    rejected(
        format!("git could not fetch {shown}: {last}"),
        "check that `git clone` works for this URL on this machine",
    )
}

/// The number of files and their bytes in `git ls-tree -r -l -z` output (links and
/// submodules count as files; a submodule has no size).
fn tree_totals(listing: &[u8]) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0u64;
    for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        files += 1;
        // `<mode> <type> <object> <size>\t<path>`
        let head = entry.split(|b| *b == b'\t').next().unwrap_or_default();
        let size = String::from_utf8_lossy(head)
            .split_whitespace()
            .nth(3)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        bytes += size;
    }
    (files, bytes)
}

/// The commit checked out in `dir`, if it is inside a git repository with commits.
async fn head_commit(dir: &Path) -> Option<String> {
    rev_parse(dir).await
}

async fn rev_parse(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "-q", "HEAD"])
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && sha.len() >= 40).then_some(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_locations() {
        let git = |s: &str| Location::Git(s.to_string());
        assert_eq!(
            classify("https://github.com/a/b"),
            git("https://github.com/a/b")
        );
        assert_eq!(classify("github.com/a/b"), git("https://github.com/a/b"));
        assert_eq!(
            classify("www.github.com/a/b"),
            git("https://github.com/a/b")
        );
        assert_eq!(
            classify("git@github.com:a/b.git"),
            git("git@github.com:a/b.git")
        );
        assert_eq!(classify("file:///tmp/repo"), git("file:///tmp/repo"));
        assert_eq!(classify("./app"), Location::Path(PathBuf::from("./app")));
        assert_eq!(
            classify("/srv/app"),
            Location::Path(PathBuf::from("/srv/app"))
        );
        assert_eq!(
            classify("/srv/a:b@c"),
            Location::Path(PathBuf::from("/srv/a:b@c"))
        );
    }

    #[test]
    fn a_token_travels_in_the_environment_not_the_arguments() {
        let fetcher = LocalSourceFetcher::default();
        let cmd = fetcher.git(
            &[],
            &["clone", "https://github.com/a/b"],
            None,
            Some("ghp_TOKEN"),
        );
        let cmd = cmd.as_std();
        assert!(
            cmd.get_args()
                .all(|a| !a.to_string_lossy().contains("ghp_TOKEN"))
        );
        let header = cmd
            .get_envs()
            .find(|(k, _)| *k == "GIT_CONFIG_VALUE_0")
            .and_then(|(_, v)| v)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let basic = base64::engine::general_purpose::STANDARD.encode("x-access-token:ghp_TOKEN");
        assert_eq!(header, format!("Authorization: Basic {basic}"));
        // Scoped to the GitHub host: git sends it to no other URL.
        let key = cmd.get_envs().find(|(k, _)| *k == "GIT_CONFIG_KEY_0");
        assert_eq!(
            key.and_then(|(_, v)| v),
            Some(std::ffi::OsStr::new("http.https://github.com/.extraheader"))
        );
        let prompt = cmd.get_envs().find(|(k, _)| *k == "GIT_TERMINAL_PROMPT");
        assert_eq!(prompt.and_then(|(_, v)| v), Some(std::ffi::OsStr::new("0")));
    }

    #[test]
    fn redacts_credentials_in_urls() {
        assert_eq!(
            redact_url("https://user:ghp_secret@github.com/a/b.git"),
            "https://***@github.com/a/b.git"
        );
        assert_eq!(
            redact_url("fatal: repository 'https://tok@github.com/a/' not found"),
            "fatal: repository 'https://***@github.com/a/' not found"
        );
        assert_eq!(
            redact_url("https://github.com/a/b"),
            "https://github.com/a/b"
        );
    }
}
