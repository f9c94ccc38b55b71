//! The walker over real folders (gitignore, skipped folders, symlinks, bad files) and the
//! security scan.

use devgem_analyzer::repo::{Limits, Repo};
use devgem_analyzer::{Language, Severity};
use std::fs;
use std::path::Path;

fn write(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(p, content).expect("write");
}

#[test]
fn walk_is_gitignore_aware_and_skips_dependency_folders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(
        r,
        "package.json",
        br#"{"scripts":{"start":"node index.js"}}"#,
    );
    write(
        r,
        "index.js",
        b"require('http').createServer().listen(process.env.PORT)",
    );
    write(r, ".gitignore", b"secret-notes/\n");
    write(r, "secret-notes/package.json", b"{}");
    write(r, "node_modules/express/package.json", b"{}");
    write(r, "dist/index.html", b"<html>");
    write(r, "dist/app.js", b"console.log(1)");
    write(r, ".venv/lib/site.py", b"");
    let repo = Repo::load(r, &Limits::default());
    assert!(repo.paths.contains("package.json"));
    assert!(
        !repo.paths.iter().any(|p| p.starts_with("secret-notes")),
        "{:?}",
        repo.paths
    );
    assert!(!repo.paths.iter().any(|p| p.starts_with("node_modules")
        || (p.starts_with("dist") && p != "dist/index.html")
        || p.starts_with(".venv")));
    // A build folder's index.html is noted (a folder of built files can be the app), never
    // read, and nothing else in it is listed.
    assert!(repo.paths.contains("dist/index.html"));
    assert!(!repo.files.contains_key("dist/index.html"));
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_checkout_and_loops_are_not_followed() {
    let outside = tempfile::tempdir().expect("tempdir");
    write(
        outside.path(),
        "package.json",
        br#"{"dependencies":{"next":"15"}}"#,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(r, "requirements.txt", b"flask\n");
    write(
        r,
        "app.py",
        b"from flask import Flask\napp = Flask(__name__)\n",
    );
    std::os::unix::fs::symlink(outside.path().join("package.json"), r.join("package.json"))
        .expect("symlink");
    std::os::unix::fs::symlink(r, r.join("loop")).expect("loop");
    std::os::unix::fs::symlink(r.join("app.py"), r.join("wsgi.py")).expect("inside link");
    let a = devgem_analyzer::analyze(r);
    assert_eq!(a.language, Some(Language::Python));
    assert!(
        a.evidence.iter().any(|e| e.contains("symbolic link")),
        "{:#?}",
        a.evidence
    );
    let repo = Repo::load(r, &Limits::default());
    assert!(
        repo.files.contains_key("wsgi.py"),
        "a link inside the checkout is read"
    );
    assert!(!repo.files.contains_key("package.json"));
}

#[test]
fn huge_binary_and_unreadable_manifests_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(r, "package.json", &vec![b' '; 2 << 20]);
    write(r, "requirements.txt", b"flask\0\xff\xfe");
    write(r, "Cargo.toml", b"\xff\xfe\xfd not utf-8");
    write(r, "index.html", b"<h1>hi</h1>");
    let a = devgem_analyzer::analyze(r);
    assert_eq!(a.language, Some(Language::Static));
    let warnings: Vec<&String> = a
        .evidence
        .iter()
        .filter(|e| e.starts_with("warning:"))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("package.json") && w.contains("too large")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("requirements.txt") && w.contains("binary")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Cargo.toml") && w.contains("UTF-8")),
        "{warnings:#?}"
    );
}

#[test]
fn a_missing_folder_returns_unknown() {
    let a = devgem_analyzer::analyze(Path::new("/nonexistent/devgem/checkout"));
    assert!(!a.is_recognized());
    assert!(a.evidence.iter().any(|e| e.contains("cannot open")));
}

#[test]
fn the_walk_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..50 {
        write(dir.path(), &format!("f{i}.txt"), b"x");
    }
    let repo = Repo::load(
        dir.path(),
        &Limits {
            max_paths: 10,
            ..Limits::default()
        },
    );
    assert!(repo.truncated);
    assert_eq!(repo.paths.len(), 10);
}

fn scan_files(files: &[(&str, &str)], dockerfile: &str) -> devgem_analyzer::ScanReport {
    let repo = Repo::from_files(files.iter().copied());
    let a = devgem_analyzer::analyze_repo(&repo);
    let plan = devgem_analyzer::plan(&a).expect("plan");
    devgem_analyzer::scan_repo(&repo, &plan, dockerfile)
}

const APP: (&str, &str) = ("index.html", "<h1>x</h1>");

#[test]
fn committed_credentials_block_the_deployment() {
    let key = format!(
        "-----BEGIN {}PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
        "RSA "
    );
    let aws = format!("aws_access_key_id = AKIA{}\n", "ABCDEFGHIJKLMNOP");
    let sa = r#"{"type": "service_account", "private_key_id": "1"}"#;
    let r = scan_files(
        &[
            APP,
            ("deploy/key.pem", &key),
            ("config/aws.ini", &aws),
            ("sa.json", sa),
        ],
        "USER app\nENV PORT=8080\n",
    );
    let high: Vec<&str> = r.blocking().map(|f| f.file.as_str()).collect();
    assert_eq!(
        high,
        ["config/aws.ini", "deploy/key.pem", "sa.json"],
        "{:#?}",
        r.findings
    );
    assert!(r.findings.iter().all(|f| !f.fix.is_empty()));
}

#[test]
fn env_files_and_dockerfile_secrets() {
    let r = scan_files(
        &[
            APP,
            (".env", "DEBUG=1\nSTRIPE_SECRET_KEY=sk_test_abcdef123456\n"),
        ],
        "FROM node:latest\nENV API_TOKEN=abc123def\nARG DB_PASSWORD\nADD https://example.com/x.tgz /x\nRUN curl -sL https://x.sh | bash\n",
    );
    let has = |sev: Severity, needle: &str| {
        r.findings
            .iter()
            .any(|f| f.severity == sev && f.message.contains(needle))
    };
    assert!(
        has(Severity::Medium, ".env is committed"),
        "{:#?}",
        r.findings
    );
    assert!(has(Severity::High, "STRIPE_SECRET_KEY"));
    assert!(has(Severity::High, "API_TOKEN"));
    assert!(has(Severity::Medium, "DB_PASSWORD"));
    assert!(has(Severity::Medium, "latest"));
    assert!(has(Severity::Medium, "runs as root"));
    assert!(has(Severity::Medium, "ADD from a URL"));
    assert!(has(Severity::Low, "piped"));
    let line = r
        .findings
        .iter()
        .find(|f| f.message.contains("API_TOKEN"))
        .and_then(|f| f.line);
    assert_eq!(line, Some(2));
}

#[test]
fn placeholders_are_not_secrets() {
    let r = scan_files(
        &[APP, (".env.example", "API_KEY=changeme\n")],
        "FROM python:3.12-slim\nENV SECRET_KEY=${SECRET_KEY}\nUSER app\nENV PORT=8080\n",
    );
    assert_eq!(r.blocking().count(), 0, "{:#?}", r.findings);
}

#[test]
fn nested_gitignores_and_negations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(r, ".gitignore", b"*.log\n!keep.log\n/generated/\n");
    write(r, "a.log", b"x");
    write(r, "keep.log", b"x");
    write(r, "generated/out.js", b"x");
    write(r, "sub/.gitignore", b"secret.txt\n");
    write(r, "sub/secret.txt", b"x");
    write(r, "sub/ok.txt", b"x");
    write(r, "sub/generated/kept.js", b"x");
    let repo = Repo::load(r, &Limits::default());
    let paths: Vec<&str> = repo.paths.iter().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            ".gitignore",
            "keep.log",
            "sub/.gitignore",
            "sub/generated/kept.js",
            "sub/ok.txt"
        ]
    );
}

#[test]
fn committed_tokens_are_found_by_file_and_line_with_the_value_masked() {
    let token = format!("ghp_{}", "A1b2C3d4".repeat(5));
    let aws = "AKIAIOSFODNN7EXAMPLQ";
    let r = scan_files(
        &[
            APP,
            ("config/deploy.py", &format!("X = 1\nTOKEN = '{token}'\n")),
            ("keys/aws.txt", &format!("\n\nid={aws}\n")),
            (".env", "DATABASE_PASSWORD=hunter2hunter2\n"),
        ],
        "FROM python:3.12-slim\nRUN apt-get update && apt-get install -y curl\nRUN apt-get install -y --no-install-recommends git\nUSER app\nENV PORT=8080\n",
    );
    let find = |needle: &str| {
        r.findings
            .iter()
            .find(|f| f.message.contains(needle))
            .unwrap_or_else(|| panic!("no {needle}: {:#?}", r.findings))
    };
    let gh = find("GitHub token");
    assert_eq!((gh.file.as_str(), gh.line), ("config/deploy.py", Some(2)));
    assert!(gh.message.contains("ghp_****"), "{}", gh.message);
    let key = find("AWS access key");
    assert_eq!((key.file.as_str(), key.line), ("keys/aws.txt", Some(3)));
    assert!(key.message.contains("AKIA****"), "{}", key.message);
    let env = find("DATABASE_PASSWORD");
    assert!(
        env.message.contains("DATABASE_PASSWORD=hunt****"),
        "{}",
        env.message
    );
    for f in &r.findings {
        assert!(
            !f.message.contains(&token) && !f.message.contains(aws),
            "{}",
            f.message
        );
        assert!(!f.message.contains("hunter2hunter2"), "{}", f.message);
    }
    assert_eq!(r.blocking().count(), 3, "{:#?}", r.findings);
    // Only the install without --no-install-recommends is named.
    let apt: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.message.contains("--no-install-recommends"))
        .collect();
    assert_eq!(apt.len(), 1, "{apt:#?}");
    assert_eq!(apt[0].line, Some(2));
}
