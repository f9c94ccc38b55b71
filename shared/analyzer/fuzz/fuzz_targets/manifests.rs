//! Arbitrary content under every manifest name the analyzer parses: the analysis, the plan,
//! the renderings and the summary must never panic.
#![no_main]

use devgem_analyzer::repo::Repo;
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "package.json", "pyproject.toml", "requirements.txt", "Pipfile", "setup.py", "Cargo.toml",
    "pom.xml", "build.gradle", "build.gradle.kts", "go.mod", "go.work", "composer.json", "Gemfile",
    "Gemfile.lock", "mix.exs", "deno.json", "Api.csproj", "global.json", "angular.json",
    "pnpm-workspace.yaml", ".nvmrc", ".python-version", "runtime.txt", ".tool-versions",
    "rust-toolchain.toml", "Procfile", "Dockerfile", ".env", ".env.example", "next.config.js",
    "app.py", "main.py", "server.js", "main.go", "src/main.rs", "manage.py", "mysite/settings.py",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    // One fuzzed manifest, or the same bytes under two names that interact.
    let a = NAMES[selector as usize % NAMES.len()];
    let b = NAMES[(selector as usize / NAMES.len()) % NAMES.len()];
    let files = [(a, text.as_ref()), (b, text.as_ref()), ("apps/x/package.json", text.as_ref())];
    let repo = Repo::from_files(files);
    let analysis = devgem_analyzer::analyze_repo(&repo);
    let _ = analysis.summary();
    let json = serde_json::to_string(&analysis).expect("serializable");
    let _: devgem_analyzer::Analysis = serde_json::from_str(&json).expect("round trip");
    if let Ok(plan) = devgem_analyzer::plan(&analysis) {
        let dockerfile = devgem_analyzer::render_dockerfile(&plan);
        let _ = devgem_analyzer::render_dockerignore(&plan);
        let _ = devgem_analyzer::scan_repo(&repo, &plan, &dockerfile);
    }
});
