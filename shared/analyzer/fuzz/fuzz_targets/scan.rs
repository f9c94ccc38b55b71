//! Arbitrary Dockerfiles and committed files through the security scan.
#![no_main]

use devgem_analyzer::repo::Repo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (dockerfile, file) = text.split_at(text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i));
    let repo = Repo::from_files([("index.html", "<h1>x</h1>"), (".env", file), ("config/key.pem", file)]);
    let analysis = devgem_analyzer::analyze_repo(&repo);
    if let Ok(plan) = devgem_analyzer::plan(&analysis) {
        let _ = devgem_analyzer::scan_repo(&repo, &plan, dockerfile);
    }
});
