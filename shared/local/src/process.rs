//! Child processes the way the builder and the fetcher need them: each in its own process
//! group, every output line streamed to a sink, a timeout, cancellation, and no leftovers.
//!
//! A command such as `npm install` starts grandchildren; killing only the shell would leave
//! them running and holding our pipes open. So every child leads its own process group and
//! the whole group is killed when it times out, is cancelled, or exits leaving helpers behind.

use devgem_ports::LogSink;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How many output lines a [`Tail`] keeps: enough to recognise an error, small enough to
/// hold in memory for any build.
const TAIL_LINES: usize = 200;

/// The last lines a command printed, for error messages and hints.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    pub(crate) fn push(&mut self, line: String) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// The last `n` lines, joined by newlines.
    pub(crate) fn last(&self, n: usize) -> String {
        let skip = self.lines.len().saturating_sub(n);
        let lines: Vec<&str> = self.lines.iter().skip(skip).map(String::as_str).collect();
        lines.join("\n")
    }

    /// Everything kept, for pattern matching.
    pub(crate) fn all(&self) -> String {
        self.last(TAIL_LINES)
    }
}

/// How a command ended, when it ended by itself.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub tail: Tail,
}

#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started (usually: it is not installed).
    Spawn(std::io::Error),
    TimedOut(Tail),
    Cancelled,
}

/// Runs `cmd` to completion in its own process group, sending each output line (stdout and
/// stderr, interleaved as they arrive) through `redact` to `log`.
pub(crate) async fn run(
    mut cmd: Command,
    log: &dyn LogSink,
    timeout: Duration,
    cancel: &CancellationToken,
    redact: &(dyn Fn(&str) -> String + Sync),
) -> Result<Finished, RunError> {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // If this future is dropped half-way, the shell dies with it; the guard below takes
        // care of the rest of its group.
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let guard = GroupGuard(child.id().map(|pid| Pid::from_raw(pid as i32)));

    // Readers run as tasks (the sink is borrowed, so lines come back over a channel).
    let (tx, mut rx) = mpsc::channel::<String>(1024);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_lines(out, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_lines(err, tx.clone()));
    }
    drop(tx);

    let mut tail = Tail::default();
    let mut emit = |line: String| {
        let line = redact(&line);
        log.line(&line);
        tail.push(line);
    };
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut pipes_open = true;
    let status = loop {
        tokio::select! {
            line = rx.recv(), if pipes_open => match line {
                Some(line) => emit(line),
                None => pipes_open = false,
            },
            status = child.wait() => break status.map_err(RunError::Spawn)?,
            () = &mut deadline => {
                guard.kill();
                let _ = child.wait().await;
                drain(&mut rx, &mut emit).await;
                return Err(RunError::TimedOut(tail));
            }
            () = cancel.cancelled() => {
                guard.kill();
                let _ = child.wait().await;
                return Err(RunError::Cancelled);
            }
        }
    };
    // The shell is done; anything it left in its group would keep the pipes open forever.
    guard.kill();
    drain(&mut rx, &mut emit).await;
    Ok(Finished { status, tail })
}

/// Takes the lines still buffered, waiting briefly for the readers to reach end of file.
async fn drain(rx: &mut mpsc::Receiver<String>, emit: &mut impl FnMut(String)) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(line) = rx.recv().await {
            emit(line);
        }
    })
    .await;
}

/// Sends each line of `reader` down `tx`. Lines are split on `\n` and on `\r` (progress bars
/// redraw with `\r`), and bytes that are not UTF-8 are replaced rather than ending the stream.
async fn forward_lines(reader: impl AsyncRead + Unpin, tx: mpsc::Sender<String>) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                for part in text.split(['\r', '\n']) {
                    let line = clean_line(part);
                    if !line.trim().is_empty() && tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The longest line kept: a minified bundle printed by a failing build must not flood the log
/// or the error message.
const MAX_LINE: usize = 4000;

/// A line as a log should hold it: colour and cursor escape codes removed (some tools force
/// them even without a terminal), and cut at [`MAX_LINE`] bytes.
pub(crate) fn clean_line(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_LINE));
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ending with a byte in @..~; other escapes: ESC and one char.
            if chars.next_if_eq(&'[').is_some() {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
            continue;
        }
        if out.len() + c.len_utf8() > MAX_LINE {
            out.push_str(" [...]");
            break;
        }
        out.push(c);
    }
    out
}

/// Kills a process group when asked or when dropped.
pub(crate) struct GroupGuard(Option<Pid>);

impl GroupGuard {
    pub(crate) fn kill(&self) {
        if let Some(pgid) = self.0 {
            // ESRCH (nobody left) is the normal case after a clean exit.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Finds `program` on `path` (a `PATH`-style list), as `sh` would.
pub(crate) fn which(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The host's environment variables a build or an app may see. DevGem's own settings (API
/// keys, tokens, cloud credentials) stay out; toolchain, locale, proxy and CA settings come
/// along, because without them installs fail behind corporate proxies and custom CAs.
/// The host's toolchain settings with `PATH` replaced by the app's tool folders first, then
/// `base_path` (or the host's `PATH`): where every build command and app process starts.
pub(crate) fn tool_env(
    root: &Path,
    app: &Path,
    base_path: Option<&std::ffi::OsStr>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = inherited_env()
        .into_iter()
        .filter(|(k, _)| k != "PATH")
        .collect();
    env.push(("PATH".into(), path_with(&tool_dirs(root, app), base_path)));
    env
}

pub(crate) fn inherited_env() -> Vec<(String, String)> {
    const NAMES: &[&str] = &[
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TERM",
        "LD_LIBRARY_PATH",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NIX_SSL_CERT_FILE",
        "JAVA_HOME",
        "GOPATH",
        "GOROOT",
        "GOPROXY",
        "GOMODCACHE",
        "CARGO_HOME",
        "RUSTUP_HOME",
    ];
    const PREFIXES: &[&str] = &[
        "LC_",
        "XDG_",
        "SSL_",
        "PYENV",
        "NVM_",
        "PIP_",
        "UV_",
        "POETRY_",
        "NPM_CONFIG_",
        "npm_config_",
        "YARN_",
        "COREPACK_",
    ];
    std::env::vars()
        .filter(|(name, _)| {
            NAMES.contains(&name.as_str()) || PREFIXES.iter().any(|p| name.starts_with(p))
        })
        .collect()
}

/// `dirs` in front of `base` (the host's `PATH` when `None`). A folder that does not exist
/// yet, such as `node_modules/.bin` before the install, costs nothing.
pub(crate) fn path_with(dirs: &[PathBuf], base: Option<&std::ffi::OsStr>) -> String {
    let host = std::env::var_os("PATH").unwrap_or_default();
    let base = base.unwrap_or(&host);
    let all = dirs
        .iter()
        .cloned()
        .chain(std::env::split_paths(base))
        .collect::<Vec<_>>();
    std::env::join_paths(all)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| base.to_string_lossy().into_owned())
}

/// The shell that runs plan commands, by absolute path so that a `PATH` without the system
/// folders cannot hide it.
pub(crate) const SHELL: &str = "/bin/sh";

/// The folders of an app's own tools, in the order they win on `PATH`. In a workspace
/// (monorepo) the package manager installs at the checkout root, so the root's
/// `node_modules/.bin` holds the app's binaries (`next`, `vite`) when its own has none.
pub(crate) fn tool_dirs(root: &Path, app: &Path) -> Vec<PathBuf> {
    [
        app.join(".venv/bin"),
        app.join("node_modules/.bin"),
        root.join("node_modules/.bin"),
        root.join(".devgem/bin"),
    ]
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_lose_escape_codes_and_excess_length() {
        assert_eq!(clean_line("\u{1b}[32mINFO\u{1b}[0m: ready"), "INFO: ready");
        assert_eq!(clean_line("plain"), "plain");
        let long = "é".repeat(5000);
        let cleaned = clean_line(&long);
        assert!(cleaned.len() <= MAX_LINE + 10 && cleaned.ends_with("[...]"));
    }
}
