//! One snapshot of the analysis and one of the Dockerfile per fixture app in
//! `tests/fixtures/apps/`, so every change in behaviour shows as a reviewable diff.

use std::path::PathBuf;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/apps")
}

fn fixtures() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

#[test]
fn at_least_45_fixtures() {
    assert!(fixtures().len() >= 45, "{} fixtures", fixtures().len());
}

#[test]
fn every_fixture_is_recognised_and_planned() {
    for (name, path) in fixtures() {
        let a = devgem_analyzer::analyze(&path);
        assert!(a.is_recognized(), "{name}: not recognised");
        let plan = devgem_analyzer::plan(&a).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plan.deploy_port, 8080, "{name}");
        assert_eq!(
            plan.env.get("PORT").map(String::as_str),
            Some("8080"),
            "{name}"
        );
        let start = plan.native_start();
        assert!(
            start.contains("$PORT") || a.reads_port_env || a.details.port_issue.is_some(),
            "{name}: start command `{start}` ignores $PORT and the code does not read it"
        );
        let dockerfile = devgem_analyzer::render_dockerfile(&plan);
        if plan.existing_dockerfile.is_none() {
            assert!(!dockerfile.contains("alpine"), "{name}: Alpine base");
            assert!(dockerfile.contains("USER "), "{name}: no USER");
            assert!(dockerfile.contains("PORT=8080"), "{name}: no PORT=8080");
            // A generated Dockerfile never carries a secret.
            let scan = devgem_analyzer::scan(&path, &plan, &dockerfile);
            assert_eq!(scan.blocking().count(), 0, "{name}: {:?}", scan.findings);
        }
        let ignore = devgem_analyzer::render_dockerignore(&plan);
        for must in [".git", ".env", "node_modules"] {
            assert!(
                ignore.lines().any(|l| l == must),
                "{name}: .dockerignore lacks {must}"
            );
        }
    }
}

#[test]
fn snapshots() {
    for (name, path) in fixtures() {
        let analysis = devgem_analyzer::analyze(&path);
        insta::assert_json_snapshot!(format!("{name}__analysis"), analysis);
        if let Ok(plan) = devgem_analyzer::plan(&analysis) {
            insta::assert_snapshot!(
                format!("{name}__dockerfile"),
                devgem_analyzer::render_dockerfile(&plan)
            );
        }
    }
}
