//! Criterion benchmarks of the analyzer: whole `analyze` (walk + detection) on fixture apps,
//! the pure part alone (detection over an in-memory view), plan + Dockerfile rendering, and
//! a generated 100,000-file monorepo.

use criterion::{Criterion, criterion_group, criterion_main};
use devgem_analyzer::repo::{Limits, Repo};
use std::hint::black_box;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/apps")
        .join(name)
}

const APPS: &[&str] = &[
    "flask-basic",
    "express-basic",
    "nextjs-basic",
    "django-basic",
    "spring-boot-maven",
    "go-chi",
    "node-monorepo",
];

fn fixtures(c: &mut Criterion) {
    let mut g = c.benchmark_group("analyze");
    for app in APPS {
        let path = fixture(app);
        g.bench_function(*app, |b| {
            b.iter(|| devgem_analyzer::analyze(black_box(&path)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("detect_in_memory");
    for app in APPS {
        let repo = Repo::load(&fixture(app), &Limits::default());
        g.bench_function(*app, |b| {
            b.iter(|| devgem_analyzer::analyze_repo(black_box(&repo)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("plan_and_render");
    for app in APPS {
        let a = devgem_analyzer::analyze(&fixture(app));
        g.bench_function(*app, |b| {
            b.iter(|| {
                let plan = devgem_analyzer::plan(black_box(&a)).expect("plan");
                (
                    devgem_analyzer::render_dockerfile(&plan),
                    devgem_analyzer::render_dockerignore(&plan),
                )
            })
        });
    }
    g.finish();
}

/// Writes a monorepo of `apps` Node services with `files_per_app` files each (100 x 1000 =
/// 100,000 files), the same shape `scripts/bench-analyze.sh` generates.
pub fn generate_monorepo(root: &Path, apps: usize, files_per_app: usize) {
    let w = |p: PathBuf, s: &str| {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, s).expect("write");
    };
    w(
        root.join("package.json"),
        r#"{"private":true,"workspaces":["apps/*"]}"#,
    );
    for a in 0..apps {
        let dir = root.join(format!("apps/app{a:03}"));
        w(
            dir.join("package.json"),
            &format!(
                r#"{{"name":"app{a:03}","scripts":{{"start":"node index.js"}},"dependencies":{{"express":"^4.21.0"}}}}"#
            ),
        );
        w(
            dir.join("index.js"),
            "const express = require('express');\nconst app = express();\napp.get('/', (_q, r) => r.send('ok'));\napp.listen(process.env.PORT || 3000);\n",
        );
        for f in 0..files_per_app.saturating_sub(2) {
            w(
                dir.join(format!("src/m{:02}/f{f:04}.js", f % 20)),
                &format!(
                    "module.exports = () => process.env.FLAG_{} || {f};\n",
                    f % 7
                ),
            );
        }
    }
}

fn monorepo(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    generate_monorepo(dir.path(), 100, 1000);
    let mut g = c.benchmark_group("monorepo");
    g.sample_size(10);
    g.bench_function("analyze_100k_files", |b| {
        b.iter(|| devgem_analyzer::analyze(black_box(dir.path())))
    });
    g.finish();
}

criterion_group!(benches, fixtures, monorepo);
criterion_main!(benches);
