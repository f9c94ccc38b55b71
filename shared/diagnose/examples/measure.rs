//! A rough timing of `diagnose` on a long log: `cargo run --release -p devgem-diagnose --example measure`.

use devgem_diagnose::{FailureInput, diagnose};
use devgem_domain::Step;
use std::time::Instant;

fn main() {
    // 4,000 lines of ordinary build output, then the failure at the end.
    let mut log: Vec<String> = (0..4000)
        .map(|i| format!("#12 {}.{:03} Downloading package-{i}-1.2.{i}.tar.gz (1.{i} MB) from https://registry.example.com", i / 100, i % 1000))
        .collect();
    log.push("ModuleNotFoundError: No module named 'cv2'".into());
    let reason = "the app exited with code 1";

    let started = Instant::now();
    let first = diagnose(&FailureInput::new(Step::Deploy, reason).with_log(&log));
    println!(
        "first call (compiles the catalogue): {:?} -> {:?}",
        started.elapsed(),
        first.signature
    );

    let runs = 50;
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(diagnose(
            &FailureInput::new(Step::Deploy, reason).with_log(&log),
        ));
    }
    let per = started.elapsed() / runs;
    println!(
        "{} lines: {per:?} per diagnosis ({:.2} µs per line)",
        log.len(),
        per.as_secs_f64() * 1e6 / log.len() as f64
    );

    let short: Vec<String> = log[log.len() - 30..].to_vec();
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(diagnose(
            &FailureInput::new(Step::Deploy, reason).with_log(&short),
        ));
    }
    println!("30 lines: {:?} per diagnosis", started.elapsed() / runs);
}
