//! The one place the analyzer touches the file system: a bounded, gitignore-aware walk that
//! builds a read-only in-memory view of a checkout. Every detector is a pure function over
//! [`Repo`], so tests build views in memory with [`Repo::from_files`].
//!
//! **Architecture Invariant:** nothing else in this crate reads the disk.

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Build-output folders among [`SKIPPED_DIRS`] whose `index.html` is recorded (not read): a
/// folder of built static files is an app of its own when nothing else is.
pub const BUILT_SITE_DIRS: &[&str] = &["dist", "build"];

/// Folders that hold dependencies or build output: never walked.
pub const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    "target",
    "dist",
    "build",
    ".next",
    ".nuxt",
    ".output",
    ".svelte-kit",
    "vendor",
    "_build",
    "deps",
    "obj",
    ".git",
    ".hg",
    ".gradle",
    ".idea",
    ".vscode",
    ".mypy_cache",
    ".pytest_cache",
    ".tox",
    "coverage",
    ".cache",
    ".turbo",
    ".angular",
    ".terraform",
];

/// File names whose content the analyzer always wants (manifests, lockfiles, version pins).
const MANIFEST_NAMES: &[&str] = &[
    "package.json",
    "requirements.txt",
    "pyproject.toml",
    "Pipfile",
    "setup.py",
    "setup.cfg",
    "runtime.txt",
    ".python-version",
    ".nvmrc",
    ".node-version",
    ".tool-versions",
    ".ruby-version",
    "go.mod",
    "go.work",
    "Cargo.toml",
    "rust-toolchain",
    "rust-toolchain.toml",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "settings.gradle",
    "settings.gradle.kts",
    "composer.json",
    "Gemfile",
    "Gemfile.lock",
    "mix.exs",
    "global.json",
    "deno.json",
    "deno.jsonc",
    "bunfig.toml",
    "Procfile",
    "Staticfile",
    "Dockerfile",
    "pnpm-workspace.yaml",
    "angular.json",
    "app.json",
    "nixpacks.toml",
    "manage.py",
    "config.ru",
    ".env",
    ".env.example",
    ".env.sample",
    ".env.template",
    "application.properties",
    "application.yml",
    "application.yaml",
    "gradle.properties",
    ".dockerignore",
];

/// Lockfiles whose head names their format (pnpm's `lockfileVersion`, Yarn Berry's
/// `__metadata`), which says which package manager version reads them. Only the first
/// [`LOCKFILE_HEAD_BYTES`] are kept: a lockfile can be megabytes.
const LOCKFILE_HEADS: &[&str] = &["pnpm-lock.yaml", "yarn.lock"];
const LOCKFILE_HEAD_BYTES: usize = 1024;

/// Source extensions read for imports, ports and environment variables.
const SOURCE_EXTS: &[&str] = &[
    "py", "js", "mjs", "cjs", "ts", "mts", "tsx", "jsx", "go", "rs", "java", "kt", "rb", "php",
    "ex", "exs", "cs", "csproj", "fsproj", "html", "svelte", "vue", "astro",
];

/// Extra text files the security scan reads.
const SCAN_EXTS: &[&str] = &[
    "json",
    "yml",
    "yaml",
    "pem",
    "key",
    "properties",
    "ini",
    "cfg",
    "conf",
    "toml",
    "env",
    "txt",
    "xml",
    "sh",
    "tf",
    "tfvars",
    "p12",
    "ppk",
];

/// Limits of one walk. The defaults keep a 100,000-file monorepo well under a second.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Paths listed at most (the rest is reported as truncated).
    pub max_paths: usize,
    /// Largest manifest read.
    pub max_manifest_bytes: u64,
    /// Largest source file read.
    pub max_source_bytes: u64,
    /// Deepest source file read (manifests are read at any depth the walk reaches).
    pub max_source_depth: usize,
    /// Source files read at most.
    pub max_source_files: usize,
    /// Total bytes read at most.
    pub max_total_bytes: u64,
    /// Deepest folder walked.
    pub max_depth: usize,
    /// Also read configuration-like files (for the security scan).
    pub scan: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_paths: 400_000,
            max_manifest_bytes: 1 << 20,
            max_source_bytes: 256 << 10,
            max_source_depth: 5,
            max_source_files: 3_000,
            max_total_bytes: 32 << 20,
            max_depth: 12,
            scan: false,
        }
    }
}

impl Limits {
    /// Limits for the security scan: reads configuration files too, and more of them.
    pub fn scan() -> Self {
        Limits {
            max_source_depth: 8,
            max_source_files: 20_000,
            max_total_bytes: 64 << 20,
            scan: true,
            ..Limits::default()
        }
    }
}

/// A read-only view of a checkout: every path (relative, `/`-separated) and the text of the
/// files that matter.
#[derive(Debug, Clone, Default)]
pub struct Repo {
    /// All file paths seen (relative, `/`-separated).
    pub paths: BTreeSet<String>,
    /// All folders seen (relative, `/`-separated, no trailing slash).
    pub dirs: BTreeSet<String>,
    /// Text content of the files read.
    pub files: BTreeMap<String, String>,
    /// Problems met while walking (unreadable, binary, too large, symlink outside...).
    pub warnings: Vec<String>,
    /// Whether the walk stopped at a limit.
    pub truncated: bool,
}

fn is_manifest(name: &str) -> bool {
    MANIFEST_NAMES.contains(&name)
        || name.ends_with(".csproj")
        || name.ends_with(".fsproj")
        || name.ends_with(".sln")
        || name.starts_with("requirements")
        || name.starts_with(".env")
        || name.starts_with("Dockerfile")
        || name.starts_with("next.config")
        || name.starts_with("nuxt.config")
        || name.starts_with("svelte.config")
        || name.starts_with("astro.config")
        || name.starts_with("vite.config")
        || name.starts_with("remix.config")
        || name.starts_with("nest-cli")
}

/// The first `max` bytes of a text file, cut at the last whole line.
fn read_head(path: &Path, max: usize) -> Option<String> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(max);
    std::fs::File::open(path)
        .ok()?
        .take(max as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() == max
        && let Some(end) = bytes.iter().rposition(|b| *b == b'\n')
    {
        bytes.truncate(end + 1);
    }
    String::from_utf8(bytes).ok()
}

fn ext(name: &str) -> &str {
    name.rsplit_once('.').map(|(_, e)| e).unwrap_or("")
}

/// State of one walk.
struct Walk<'a> {
    root: &'a Path,
    limits: &'a Limits,
    /// `.gitignore` matchers of the folders being walked, outermost first.
    ignores: Vec<Gitignore>,
    total: u64,
    sources: usize,
    stop: bool,
}

impl Walk<'_> {
    fn warn(repo: &mut Repo, w: String) {
        if repo.warnings.len() < 50 {
            repo.warnings.push(w);
        }
    }

    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        for m in self.ignores.iter().rev() {
            match m.matched(path, is_dir) {
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
                ignore::Match::None => {}
            }
        }
        false
    }

    /// Walks folder `abs` (checkout-relative `rel`, "" for the root); entries are at `depth`.
    fn dir(&mut self, repo: &mut Repo, abs: &Path, rel: &str, depth: usize) {
        let mut entries: Vec<(String, std::fs::FileType)> = match std::fs::read_dir(abs) {
            Ok(rd) => rd
                .filter_map(|e| match e {
                    Ok(e) => match (e.file_name().into_string(), e.file_type()) {
                        (Ok(name), Ok(ft)) => Some((name, ft)),
                        (Err(name), _) => {
                            Self::warn(
                                repo,
                                format!(
                                    "skipped a path that is not UTF-8: {}",
                                    abs.join(name).display()
                                ),
                            );
                            None
                        }
                        (_, Err(_)) => None,
                    },
                    Err(e) => {
                        Self::warn(repo, format!("walk: {e}"));
                        None
                    }
                })
                .collect(),
            Err(e) => {
                Self::warn(
                    repo,
                    format!(
                        "{}: unreadable folder ({e})",
                        if rel.is_empty() { "." } else { rel }
                    ),
                );
                return;
            }
        };
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let pushed = if entries
            .iter()
            .any(|(n, ft)| n == ".gitignore" && ft.is_file())
        {
            let mut b = GitignoreBuilder::new(abs);
            if let Some(e) = b.add(abs.join(".gitignore")) {
                Self::warn(repo, format!("{rel}/.gitignore: {e}"));
            }
            match b.build() {
                Ok(g) => {
                    self.ignores.push(g);
                    true
                }
                Err(_) => false,
            }
        } else {
            false
        };
        for (name, ft) in entries {
            if self.stop {
                break;
            }
            let path = abs.join(&name);
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if ft.is_dir() {
                if SKIPPED_DIRS.contains(&name.as_str()) || self.ignored(&path, true) {
                    // Built static files committed without their sources are the app: note
                    // the folder and its index.html (never walked or read).
                    if BUILT_SITE_DIRS.contains(&name.as_str())
                        && !self.ignored(&path, true)
                        && path.join("index.html").is_file()
                    {
                        repo.add_path(&format!("{child}/index.html"));
                    }
                    continue;
                }
                repo.dirs.insert(child.clone());
                if depth < self.limits.max_depth {
                    self.dir(repo, &path, &child, depth + 1);
                }
                continue;
            }
            if self.ignored(&path, false) {
                continue;
            }
            let mut real = path;
            if ft.is_symlink() {
                // Read a link only when it resolves to a file inside the checkout.
                match real.canonicalize() {
                    Ok(target) if target.starts_with(self.root) && target.is_file() => {
                        real = target
                    }
                    Ok(_) | Err(_) => {
                        Self::warn(
                            repo,
                            format!(
                                "{child}: symbolic link to a folder, outside the checkout, or broken: ignored"
                            ),
                        );
                        continue;
                    }
                }
            } else if !ft.is_file() {
                continue;
            }
            self.file(repo, child, &name, &real, depth);
        }
        if pushed {
            self.ignores.pop();
        }
    }

    fn file(&mut self, repo: &mut Repo, rel: String, name: &str, real: &Path, depth: usize) {
        let limits = self.limits;
        if repo.paths.len() >= limits.max_paths {
            repo.truncated = true;
            self.stop = true;
            repo.warnings.push(format!(
                "stopped listing files after {} paths",
                limits.max_paths
            ));
            return;
        }
        if !limits.scan && LOCKFILE_HEADS.contains(&name) {
            repo.paths.insert(rel.clone());
            if let Some(head) = read_head(real, LOCKFILE_HEAD_BYTES) {
                self.total += head.len() as u64;
                repo.files.insert(rel, head);
            }
            return;
        }
        let manifest = is_manifest(name);
        let wanted = manifest
            || (depth <= limits.max_source_depth
                && self.sources < limits.max_source_files
                && (SOURCE_EXTS.contains(&ext(name))
                    || (limits.scan
                        && (SCAN_EXTS.contains(&ext(name))
                            || name.starts_with("id_")
                            || !name.contains('.')))));
        repo.paths.insert(rel.clone());
        if !wanted {
            return;
        }
        let max = if manifest {
            limits.max_manifest_bytes
        } else {
            limits.max_source_bytes
        };
        let size = std::fs::metadata(real).map(|m| m.len()).unwrap_or(0);
        if size > max {
            if manifest {
                repo.warnings
                    .push(format!("{rel}: {size} bytes, too large to read, ignored"));
            }
            return;
        }
        if self.total + size > limits.max_total_bytes {
            repo.truncated = true;
            return;
        }
        match std::fs::read(real) {
            Ok(bytes) => {
                self.total += bytes.len() as u64;
                if !manifest {
                    self.sources += 1;
                }
                if bytes.contains(&0) {
                    if manifest {
                        repo.warnings
                            .push(format!("{rel}: binary content, ignored"));
                    }
                    return;
                }
                match String::from_utf8(bytes) {
                    Ok(text) => {
                        repo.files.insert(rel, text);
                    }
                    Err(e) => {
                        if manifest {
                            repo.warnings.push(format!("{rel}: not UTF-8, ignored"));
                        } else {
                            repo.files
                                .insert(rel, String::from_utf8_lossy(e.as_bytes()).into_owned());
                        }
                    }
                }
            }
            Err(e) => repo.warnings.push(format!("{rel}: unreadable ({e})")),
        }
    }
}

impl Repo {
    /// Builds a view from in-memory files (tests, fuzzing, benchmarks).
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Repo {
        let mut repo = Repo::default();
        for (path, content) in files {
            repo.add_path(path);
            repo.files.insert(path.to_string(), content.to_string());
        }
        repo
    }

    fn add_path(&mut self, path: &str) {
        let mut dir = path;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if !self.dirs.insert(parent.to_string()) {
                break;
            }
            dir = parent;
        }
        self.paths.insert(path.to_string());
    }

    /// Walks `root` within `limits`. Never panics and never follows a symlink out of `root`.
    ///
    /// The walk is a plain recursive `read_dir` (cheap in a fresh process) that honours every
    /// `.gitignore` it meets with the `ignore` crate's matcher, deepest file first, as git does.
    pub fn load(root: &Path, limits: &Limits) -> Repo {
        let mut repo = Repo::default();
        let canonical_root = match root.canonicalize() {
            Ok(p) => p,
            Err(e) => {
                repo.warnings
                    .push(format!("cannot open {}: {e}", root.display()));
                return repo;
            }
        };
        if !canonical_root.is_dir() {
            repo.warnings
                .push(format!("{} is not a folder", root.display()));
            return repo;
        }
        let mut walk = Walk {
            root: &canonical_root,
            limits,
            ignores: vec![],
            total: 0,
            sources: 0,
            stop: false,
        };
        walk.dir(&mut repo, &canonical_root, "", 1);
        repo
    }

    /// A view of the app rooted at `base` ("" for the checkout root).
    pub fn app<'a>(&'a self, base: &str) -> App<'a> {
        let base = base.trim_matches('/');
        let base = if base == "." { "" } else { base };
        App {
            repo: self,
            base: base.to_string(),
        }
    }
}

/// The view of one app inside a [`Repo`]: paths are relative to its folder.
#[derive(Debug, Clone)]
pub struct App<'a> {
    pub repo: &'a Repo,
    /// The app's folder inside the checkout ("" for the root).
    pub base: String,
}

impl<'a> App<'a> {
    /// The checkout-relative path of an app-relative one.
    pub fn full(&self, rel: &str) -> String {
        if self.base.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{}", self.base, rel)
        }
    }

    /// The app folder as shown to users ("." for the root).
    pub fn dir(&self) -> &str {
        if self.base.is_empty() {
            "."
        } else {
            &self.base
        }
    }

    /// Whether the file exists (read or not).
    pub fn has(&self, rel: &str) -> bool {
        self.repo.paths.contains(&self.full(rel))
    }

    /// Whether the folder exists.
    pub fn has_dir(&self, rel: &str) -> bool {
        self.repo.dirs.contains(&self.full(rel))
    }

    /// The text of a file, when it was read.
    pub fn text(&self, rel: &str) -> Option<&'a str> {
        self.repo.files.get(&self.full(rel)).map(String::as_str)
    }

    /// The first of `names` that exists.
    pub fn first_of(&self, names: &[&'a str]) -> Option<&'a str> {
        names.iter().copied().find(|n| self.has(n))
    }

    /// Read files under the app (app-relative path, text), at most `max_depth` folders deep,
    /// whose extension is one of `exts`, skipping nested apps' dependency folders.
    pub fn sources(
        &self,
        exts: &'a [&'a str],
        max_depth: usize,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let prefix = self.dir_prefix("");
        let start = prefix.clone();
        let skip = prefix.len();
        self.repo
            .files
            .range(start..)
            .take_while(move |(p, _)| p.starts_with(&prefix))
            .filter_map(move |(p, t)| {
                let rel = &p[skip..];
                let depth = rel.matches('/').count();
                (depth <= max_depth && exts.contains(&ext(rel))).then_some((rel, t.as_str()))
            })
    }

    /// Repo path prefix of app folder `rel` ("" for the app folder), with its trailing slash;
    /// empty at the repo root, whose paths have no leading slash.
    fn dir_prefix(&self, rel: &str) -> String {
        let full = if rel.is_empty() {
            self.base.clone()
        } else {
            self.full(rel)
        };
        if full.is_empty() {
            String::new()
        } else {
            format!("{full}/")
        }
    }

    /// Immediate subfolders of `rel` ("" for the app folder).
    pub fn subdirs(&self, rel: &str) -> Vec<String> {
        let prefix = self.dir_prefix(rel);
        direct_children(&self.repo.dirs, &prefix)
            .map(str::to_string)
            .collect()
    }

    /// App-relative files directly inside folder `rel`.
    pub fn files_in(&self, rel: &str) -> Vec<String> {
        let prefix = self.dir_prefix(rel);
        direct_children(&self.repo.paths, &prefix)
            .map(|name| {
                if rel.is_empty() {
                    name.to_string()
                } else {
                    format!("{rel}/{name}")
                }
            })
            .collect()
    }
}

/// Names of the entries of `set` directly under `prefix` (a folder prefix with its slash, or
/// ""); the set is sorted, so they form one contiguous range.
fn direct_children<'s>(
    set: &'s BTreeSet<String>,
    prefix: &'s str,
) -> impl Iterator<Item = &'s str> {
    set.range(prefix.to_string()..)
        .take_while(move |p| p.starts_with(prefix))
        .map(move |p| &p[prefix.len()..])
        .filter(|name| !name.contains('/'))
}
