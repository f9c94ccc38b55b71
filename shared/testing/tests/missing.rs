//! What a test that needs the emulators does on a machine without them: skips and passes on a
//! developer's machine, fails under CI. The machine is simulated by running this test binary
//! again with a PATH that holds only bash, so `scripts/emulators.sh` finds no gcloud.

use std::process::{Command, Output};

/// Runs `probe` in a child of this test binary with no gcloud on its PATH, under CI or not.
fn probe_without_gcloud(ci: bool) -> Output {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/bin/bash", bin.path().join("bash")).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["probe", "--exact", "--ignored", "--nocapture"])
        .env("PATH", bin.path())
        .env_remove("PUBSUB_EMULATOR_HOST")
        .env_remove("FIRESTORE_EMULATOR_HOST")
        .env_remove("STORAGE_EMULATOR_HOST");
    if ci {
        cmd.env("CI", "true");
    } else {
        cmd.env_remove("CI");
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn without_gcloud_a_test_is_skipped_outside_ci() {
    let out = probe_without_gcloud(false);
    let text = text(&out);
    assert!(out.status.success(), "the probe failed:\n{text}");
    assert!(text.contains("SKIPPED"), "no SKIPPED message:\n{text}");
    assert!(
        text.contains("gcloud is not installed"),
        "no reason:\n{text}"
    );
}

#[test]
fn without_gcloud_a_test_fails_under_ci() {
    let out = probe_without_gcloud(true);
    let text = text(&out);
    assert!(!out.status.success(), "the probe passed under CI:\n{text}");
    assert!(
        text.contains("CI is set and the emulators cannot run on this machine"),
        "no clear message:\n{text}"
    );
    assert!(
        text.contains("gcloud is not installed"),
        "no reason:\n{text}"
    );
}

/// A test that needs the emulators, as the suites write one; run only as the child above.
#[test]
#[ignore = "run by the tests above in a child process without gcloud"]
fn probe() {
    let Some(emulators) = devgem_testing::emulators() else {
        return;
    };
    assert!(!emulators.project().is_empty());
}
