//! The pipeline's security scan: committed credentials and the generated Dockerfile.
//! Findings of [`Severity::High`] block the deployment; the others are warnings.

use crate::common::re;
use crate::common::{is_secret, line_of};
use crate::repo::Repo;
use crate::{BuildPlan, Finding, ScanReport, Severity};
use regex::Regex;
use std::sync::LazyLock;

struct Rule {
    re: LazyLock<Regex>,
    severity: Severity,
    what: &'static str,
    fix: &'static str,
}

static RULES: [Rule; 8] = [
    Rule {
        re: LazyLock::new(|| {
            re(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY( BLOCK)?-----")
        }),
        severity: Severity::High,
        what: "a private key is committed",
        fix: "remove the key from the repository (and its history), rotate it, and pass it as a secret",
    },
    Rule {
        re: LazyLock::new(|| re(r#""type"\s*:\s*"service_account""#)),
        severity: Severity::High,
        what: "a Google service account key file is committed",
        fix: "delete the key in IAM, remove the file, and use the Cloud Run service identity instead",
    },
    Rule {
        re: LazyLock::new(|| re(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
        severity: Severity::High,
        what: "an AWS access key id is committed",
        fix: "deactivate the key in AWS IAM and pass credentials as secrets",
    },
    Rule {
        re: LazyLock::new(|| re(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}")),
        severity: Severity::High,
        what: "a GitHub token is committed",
        fix: "revoke the token on GitHub and pass it as a secret",
    },
    Rule {
        re: LazyLock::new(|| re(r"\b(?:sk|rk)_live_[0-9a-zA-Z]{16,}")),
        severity: Severity::High,
        what: "a Stripe live secret key is committed",
        fix: "roll the key in the Stripe dashboard and pass it as a secret",
    },
    Rule {
        re: LazyLock::new(|| re(r"\bxox[baprs]-[0-9A-Za-z-]{10,}")),
        severity: Severity::High,
        what: "a Slack token is committed",
        fix: "revoke the token and pass it as a secret",
    },
    Rule {
        re: LazyLock::new(|| re(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}")),
        severity: Severity::High,
        what: "an API secret key (sk-...) is committed",
        fix: "revoke the key and pass it as a secret",
    },
    Rule {
        re: LazyLock::new(|| re(r"\bAIza[0-9A-Za-z_-]{35}\b")),
        severity: Severity::Medium,
        what: "a Google API key is committed",
        fix: "restrict or rotate the key and pass it as a secret",
    },
];

static DOCKER_SECRET: LazyLock<Regex> = LazyLock::new(|| re(r"(?im)^\s*(ENV|ARG)\s+(.+)$"));
static FROM: LazyLock<Regex> = LazyLock::new(|| re(r"(?im)^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)"));
static USER: LazyLock<Regex> = LazyLock::new(|| re(r"(?im)^\s*USER\s+(\S+)"));
static ADD_URL: LazyLock<Regex> = LazyLock::new(|| re(r"(?im)^\s*ADD\s+(?:--\S+\s+)*https?://"));
/// One `apt-get install` / `apt install` command, up to the end of its line or `&&`.
static APT_INSTALL: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\bapt(?:-get)?\s+(?:-\S+\s+)*install\b[^\n&;]*"));
static CURL_SH: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)(?:curl|wget)[^|\n]*\|\s*(?:sudo\s+)?(?:ba)?sh\b"));

fn finding(
    severity: Severity,
    file: &str,
    line: Option<u32>,
    message: String,
    fix: &str,
) -> Finding {
    Finding {
        severity,
        file: file.into(),
        line,
        message,
        fix: fix.into(),
    }
}

/// A secret as a user may be shown it: its first four characters, then stars.
pub(crate) fn mask(value: &str) -> String {
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    let head: String = value.chars().take(4).collect();
    if value.chars().count() <= 8 {
        "****".to_string()
    } else {
        format!("{head}****")
    }
}

fn is_placeholder(v: &str) -> bool {
    let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
    v.is_empty()
        || v.starts_with('$')
        || v.starts_with('<')
        || v.starts_with("${")
        || [
            "changeme",
            "change-me",
            "xxx",
            "your",
            "example",
            "placeholder",
            "todo",
            "none",
            "null",
            "dummy",
            "secret",
            "password",
        ]
        .iter()
        .any(|p| v.to_ascii_lowercase().contains(p))
}

pub fn scan_repo(repo: &Repo, plan: &BuildPlan, dockerfile: &str) -> ScanReport {
    let mut findings = vec![];
    for (path, text) in &repo.files {
        let name = path.rsplit('/').next().unwrap_or(path);
        if path.contains("test") && path.contains("fixture") {
            continue;
        }
        for rule in &RULES {
            if let Some(m) = rule.re.find(text) {
                // A token is shown masked, so the user can find it; a key file's header says
                // nothing secret and is shown as it is.
                let shown = match m.as_str() {
                    v if v.starts_with('-') || v.starts_with('"') => String::new(),
                    v => format!(" ({})", mask(v)),
                };
                findings.push(finding(
                    rule.severity,
                    path,
                    Some(line_of(text, m.start())),
                    format!("{} in {path}{shown}", rule.what),
                    rule.fix,
                ));
            }
        }
        let is_env = name == ".env"
            || (name.starts_with(".env.")
                && !["example", "sample", "template", "dist", "defaults"]
                    .iter()
                    .any(|s| name.ends_with(s)));
        if is_env {
            findings.push(finding(Severity::Medium, path, None, format!("{path} is committed: local environment files often hold credentials"), "remove it from the repository, add it to .gitignore, and set the variables on the service (secrets for credentials)"));
            for (i, l) in text.lines().enumerate() {
                if let Some((k, v)) = l.trim().trim_start_matches("export ").split_once('=')
                    && is_secret(k.trim())
                    && !is_placeholder(v)
                {
                    findings.push(finding(
                        Severity::High,
                        path,
                        Some(i as u32 + 1),
                        format!(
                            "{path} sets the credential {} in the repository ({}={})",
                            k.trim(),
                            k.trim(),
                            mask(v.trim())
                        ),
                        "rotate the credential, delete the line, and pass the value as a secret",
                    ));
                }
            }
        }
    }
    for p in &repo.paths {
        let name = p.rsplit('/').next().unwrap_or(p);
        if matches!(name, "id_rsa" | "id_ed25519" | "id_ecdsa" | "id_dsa")
            && !repo.files.contains_key(p)
        {
            findings.push(finding(
                Severity::High,
                p,
                None,
                format!("{p} looks like a committed SSH private key"),
                "remove it from the repository and rotate the key",
            ));
        }
    }
    scan_dockerfile(&mut findings, plan, dockerfile);
    findings.sort_by(|a, b| {
        // High first (the enum's order).
        a.severity
            .cmp(&b.severity)
            .then(a.file.cmp(&b.file))
            .then(a.line.cmp(&b.line))
    });
    findings.dedup();
    ScanReport { findings }
}

fn scan_dockerfile(findings: &mut Vec<Finding>, plan: &BuildPlan, dockerfile: &str) {
    let file = "Dockerfile";
    for c in DOCKER_SECRET.captures_iter(dockerfile) {
        let (Some(kw), Some(rest)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let line = line_of(dockerfile, kw.start());
        // ENV A=b C=d, ENV A b, ARG A=b
        let pairs: Vec<(String, String)> = if rest.as_str().contains('=') {
            rest.as_str()
                .split_whitespace()
                .filter_map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect()
        } else {
            let mut it = rest.as_str().splitn(2, char::is_whitespace);
            match (it.next(), it.next()) {
                (Some(k), Some(v)) => vec![(k.to_string(), v.to_string())],
                (Some(k), None) if kw.as_str().eq_ignore_ascii_case("ARG") && is_secret(k) => {
                    findings.push(finding(Severity::Medium, file, Some(line), format!("build argument {k} looks like a credential: build arguments are kept in the image history"), "use a BuildKit secret mount (RUN --mount=type=secret) or set it on the service at runtime"));
                    vec![]
                }
                _ => vec![],
            }
        };
        for (k, v) in pairs {
            if is_secret(&k) && !is_placeholder(&v) {
                findings.push(finding(
                    Severity::High,
                    file,
                    Some(line),
                    format!(
                        "{} {k} bakes a secret into an image layer",
                        kw.as_str().to_ascii_uppercase()
                    ),
                    "remove the value from the Dockerfile and pass it as a Cloud Run secret",
                ));
            }
        }
    }
    for c in FROM.captures_iter(dockerfile) {
        let Some(img) = c.get(1) else { continue };
        let i = img.as_str();
        if i.eq_ignore_ascii_case("scratch")
            || !i.contains(['/', ':', '@'])
                && !i.contains('.')
                && dockerfile.contains(&format!(" AS {i}"))
        {
            continue;
        }
        let line = Some(line_of(dockerfile, img.start()));
        let tag = i.rsplit('/').next().unwrap_or(i);
        if tag.ends_with(":latest") {
            findings.push(finding(
                Severity::Medium,
                file,
                line,
                format!("base image {i} uses the `latest` tag: builds are not reproducible"),
                "pin a version tag (and ideally a digest)",
            ));
        } else if !tag.contains(':')
            && !i.contains('@')
            && !dockerfile
                .to_ascii_lowercase()
                .contains(&format!(" as {}", i.to_ascii_lowercase()))
        {
            findings.push(finding(
                Severity::Low,
                file,
                line,
                format!("base image {i} has no tag (means `latest`)"),
                "pin a version tag",
            ));
        }
        if tag.contains("alpine") {
            findings.push(finding(
                Severity::Low,
                file,
                line,
                format!("base image {i} is Alpine (musl): native modules often break"),
                "use a Debian slim base",
            ));
        }
    }
    let last_user = USER
        .captures_iter(dockerfile)
        .filter_map(|c| c.get(1))
        .last();
    match last_user {
        None => findings.push(finding(
            Severity::Medium,
            file,
            None,
            "the container runs as root (no USER instruction)".into(),
            "add a non-root user and a USER line before CMD",
        )),
        Some(u) if matches!(u.as_str(), "root" | "0" | "0:0") => findings.push(finding(
            Severity::Medium,
            file,
            Some(line_of(dockerfile, u.start())),
            "the container runs as root (USER root)".into(),
            "switch to a non-root user before CMD",
        )),
        _ => {}
    }
    if let Some(m) = ADD_URL.find(dockerfile) {
        findings.push(finding(
            Severity::Medium,
            file,
            Some(line_of(dockerfile, m.start())),
            "ADD from a URL downloads unverified content".into(),
            "download with curl and verify a checksum, or use ADD --checksum",
        ));
    }
    for m in APT_INSTALL.find_iter(dockerfile) {
        if !m.as_str().contains("--no-install-recommends") {
            findings.push(finding(
                Severity::Low,
                file,
                Some(line_of(dockerfile, m.start())),
                "apt-get install without --no-install-recommends pulls in packages the app \
                 does not need"
                    .into(),
                "add --no-install-recommends (and remove /var/lib/apt/lists/* in the same RUN)",
            ));
        }
    }
    if let Some(m) = CURL_SH.find(dockerfile) {
        findings.push(finding(
            Severity::Low,
            file,
            Some(line_of(dockerfile, m.start())),
            "a script is piped from the network into a shell".into(),
            "download, verify a checksum, then run",
        ));
    }
    if plan.existing_dockerfile.is_none() && !dockerfile.contains("PORT") {
        findings.push(finding(
            Severity::Low,
            file,
            None,
            "the Dockerfile does not mention PORT".into(),
            "make the server listen on $PORT (8080)",
        ));
    }
}
