//! CPU time of the offline intent engine per message, over a mix of what people type.

use criterion::{Criterion, criterion_group, criterion_main};
use devgem_domain::{DeploymentId, Status};
use devgem_tools::{Context, understand};
use std::hint::black_box;

const MESSAGES: &[&str] = &[
    "deploy github.com/acme/shop from the staging branch, set DEBUG=false and STRIPE_KEY as a secret",
    "is it up yet?",
    "why did it fail?",
    "show me the logs",
    "set LOG_LEVEL=debug and API_KEY=xyz as secret",
    "rollback to shop-0003",
    "can u plz stop the app",
    "what framework is github.com/x/y",
    "hello there",
    "hmm, not sure what I want to do today honestly, maybe something with my repositories later",
];

fn bench(c: &mut Criterion) {
    let context = Context::with_current(
        DeploymentId::parse("d-0193abcdef").unwrap(),
        Status::Live,
        Some("shop".to_string()),
    );
    c.bench_function("offline understand (10-message mix)", |b| {
        b.iter(|| {
            for m in MESSAGES {
                black_box(understand(black_box(m), &context));
            }
        })
    });
    c.bench_function("offline understand (long deploy request)", |b| {
        b.iter(|| black_box(understand(black_box(MESSAGES[0]), &context)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
