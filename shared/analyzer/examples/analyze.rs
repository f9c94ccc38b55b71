//! Prints the analysis of a folder as JSON (what `devgem analyze PATH --json` prints), or with
//! `--dockerfile` the rendered Dockerfile, or with `--summary` the readable summary.
//!
//! `cargo run --release -p devgem-analyzer --example analyze -- PATH [--summary|--dockerfile|--plan|--scan] [--service DIR]`

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| ".".into());
    let service = args
        .iter()
        .position(|a| a == "--service")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let path = std::path::Path::new(&path);
    if args.iter().any(|a| a == "--time") {
        for i in 0..3 {
            let t = std::time::Instant::now();
            let repo = devgem_analyzer::repo::Repo::load(path, &Default::default());
            let walk = t.elapsed();
            let a = devgem_analyzer::analyze_repo(&repo);
            eprintln!(
                "run {i}: walk {walk:?}, detect {:?} ({})",
                t.elapsed() - walk,
                a.language_name()
            );
        }
    }
    let analysis = match &service {
        Some(s) => devgem_analyzer::analyze_service(path, s),
        None => devgem_analyzer::analyze(path),
    };
    let flag = |f: &str| args.iter().any(|a| a == f);
    if flag("--summary") {
        print!("{}", analysis.summary());
        return;
    }
    if flag("--dockerfile") || flag("--plan") || flag("--scan") {
        match devgem_analyzer::plan(&analysis) {
            Ok(plan) => {
                let dockerfile = devgem_analyzer::render_dockerfile(&plan);
                if flag("--plan") {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&plan).unwrap_or_default()
                    );
                } else if flag("--scan") {
                    let report = devgem_analyzer::scan(path, &plan, &dockerfile);
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).unwrap_or_default()
                    );
                } else {
                    print!("{dockerfile}");
                }
            }
            Err(e) => {
                eprintln!("no plan: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&analysis).unwrap_or_default()
    );
}
