//! JavaScript workspaces (npm, pnpm and Yarn workspaces, Turborepo on top of one): a member
//! app is installed at the workspace root, built together with the workspace packages it
//! depends on (dependencies first), and started from its own folder.

use super::node::{self, Pkg};
use crate::repo::Repo;
use crate::{Analysis, Language, PackageManager};
use serde_json::Value;

/// The folders a workspace declares (package.json `workspaces`, pnpm-workspace.yaml), globs
/// expanded, each with the declaration that names it.
pub fn declared_dirs(repo: &Repo) -> Vec<(String, String)> {
    let root = repo.app("");
    let mut out: Vec<(String, String)> = vec![];
    let mut push = |pattern: &str, why: String| {
        let p = pattern.trim_start_matches("./").trim_end_matches('/');
        let dirs = if let Some(prefix) = p.strip_suffix("/*").or_else(|| p.strip_suffix("/**")) {
            root.subdirs(prefix)
                .into_iter()
                .map(|d| format!("{prefix}/{d}"))
                .collect()
        } else if p.contains('*') || p.is_empty() || p == "." {
            vec![]
        } else {
            vec![p.to_string()]
        };
        for d in dirs {
            if !out.iter().any(|(o, _)| *o == d) {
                out.push((d, why.clone()));
            }
        }
    };
    // npm / yarn / bun workspaces.
    if let Some(pkg) = root
        .text("package.json")
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
    {
        let ws = pkg.get("workspaces").and_then(|w| {
            w.as_array()
                .or_else(|| w.get("packages").and_then(|p| p.as_array()))
        });
        for p in ws.into_iter().flatten().filter_map(|v| v.as_str()) {
            if !p.starts_with('!') {
                push(p, format!("package.json workspaces \"{p}\""));
            }
        }
    }
    // pnpm workspaces.
    if let Some(t) = root.text("pnpm-workspace.yaml") {
        for l in t.lines() {
            if let Some(p) = l.trim().strip_prefix("- ") {
                let p = p.trim().trim_matches(|c| c == '\'' || c == '"');
                if !p.starts_with('!') {
                    push(p, format!("pnpm-workspace.yaml \"{p}\""));
                }
            }
        }
    }
    out
}

/// One package of the workspace.
struct Member {
    dir: String,
    name: String,
    pkg: Pkg,
}

impl Member {
    fn builds(&self) -> bool {
        self.pkg.script("build").is_some()
    }
}

fn members(repo: &Repo) -> Vec<Member> {
    declared_dirs(repo)
        .into_iter()
        .filter_map(|(dir, _)| {
            let json: Value = serde_json::from_str(repo.app(&dir).text("package.json")?).ok()?;
            let name = json.get("name")?.as_str()?.to_string();
            Some(Member {
                dir,
                name,
                pkg: Pkg { json },
            })
        })
        .collect()
}

/// The workspace packages `of` depends on, directly or not, dependencies first (each after
/// the packages it depends on itself).
fn dependencies_in_order<'m>(all: &'m [Member], of: &'m Member) -> Vec<&'m Member> {
    fn visit<'m>(
        all: &'m [Member],
        m: &'m Member,
        seen: &mut Vec<&'m str>,
        out: &mut Vec<&'m Member>,
    ) {
        if seen.contains(&m.dir.as_str()) {
            return;
        }
        seen.push(&m.dir);
        let deps = m.pkg.deps();
        for dep in all.iter().filter(|d| deps.contains(&d.name)) {
            visit(all, dep, seen, out);
        }
        out.push(m);
    }
    let (mut seen, mut out) = (vec![], vec![]);
    visit(all, of, &mut seen, &mut out);
    out.retain(|m| m.dir != of.dir);
    out
}

/// The command that runs `script` in one workspace package, from the workspace root.
fn run_in(manager: PackageManager, m: &Member, script: &str) -> String {
    match manager {
        PackageManager::Pnpm => format!("pnpm --filter {} run {script}", m.name),
        PackageManager::Yarn => format!("yarn workspace {} run {script}", m.name),
        PackageManager::Bun => format!("bun run --cwd {} {script}", m.dir),
        _ => format!("npm run {script} --workspace={}", m.dir),
    }
}

/// The runner of a package's binary installed at the workspace root.
fn exec(manager: PackageManager) -> &'static str {
    match manager {
        PackageManager::Pnpm => "pnpm exec",
        PackageManager::Yarn => "yarn run",
        PackageManager::Bun => "bunx",
        _ => "npx --no-install",
    }
}

/// Install flags that keep the dev dependencies.
const WITH_DEV: &[&str] = &["--include=dev", "--prod=false", "--production=false"];

/// Turns the analysis of the Node.js app in `dir` into a workspace member's when `dir` is a
/// package of the workspace at the repository root: install at the root with the root's
/// package manager and lockfile, build the workspace packages the app depends on and then the
/// app (Turborepo's `--filter=<app>...` when the root has Turborepo), start from `dir`.
pub fn as_member(repo: &Repo, dir: &str, a: &mut Analysis) {
    if a.language != Some(Language::Node) {
        return;
    }
    let root = repo.app("");
    let Some(Ok(root_pkg)) = node::package_json(&root) else {
        return;
    };
    let all = members(repo);
    let Some(me) = all.iter().find(|m| m.dir == dir) else {
        return;
    };
    let pm = node::package_manager(&root, Some(&root_pkg));
    let manager = pm.manager;
    let deps = dependencies_in_order(&all, me);
    let to_build: Vec<&Member> = deps.iter().copied().filter(|m| m.builds()).collect();
    let builds = me.builds() || !to_build.is_empty();
    let with_dev = builds
        || a.install_command
            .as_deref()
            .is_some_and(|c| WITH_DEV.iter().any(|f| c.contains(f)));
    let turbo = root.has("turbo.json") && root_pkg.has("turbo");

    // The member's own commands name the package manager it would use alone (npm: it has no
    // lockfile of its own); the workspace's is the root's.
    if let (Some(own), Some(start)) = (a.package_manager, a.start_command.as_mut())
        && let Some(script) = start.strip_prefix(&format!("{own} run "))
    {
        *start = format!("{manager} run {script}");
    }
    a.package_manager = Some(manager);
    a.details.package_manager_version =
        node::package_manager_pin(&root, Some(&root_pkg), manager).map(|p| p.version);
    a.install_command = Some(node::install_cmd(&pm, with_dev));
    a.build_command = if !builds {
        None
    } else if turbo {
        Some(format!(
            "{} turbo run build --filter={}...",
            exec(manager),
            me.name
        ))
    } else {
        let mut steps: Vec<String> = to_build
            .iter()
            .map(|m| run_in(manager, m, "build"))
            .collect();
        if me.builds() {
            steps.push(run_in(manager, me, "build"));
        }
        Some(steps.join(" && "))
    };
    let mut manifests = vec!["package.json".to_string()];
    manifests.extend(pm.lock.map(str::to_string));
    for extra in [".npmrc", ".yarnrc.yml", "pnpm-workspace.yaml"] {
        if root.has(extra) {
            manifests.push(extra.to_string());
        }
    }
    manifests.extend(all.iter().map(|m| format!("{}/package.json", m.dir)));
    a.details.manifests = manifests;
    a.details.workspace_root = Some(".".into());
    let built: Vec<&str> = to_build.iter().map(|m| m.dir.as_str()).collect();
    a.evidence.push(format!(
        "member {} of the {}{} workspace at the repository root: installed there{}, started from {dir}",
        me.name,
        manager,
        if turbo { " + Turborepo" } else { "" },
        match (built.is_empty(), me.builds()) {
            (true, true) => " and built".to_string(),
            (true, false) => String::new(),
            (false, _) => format!(", built after the workspace packages it uses ({})", built.join(", ")),
        }
    ));
}
