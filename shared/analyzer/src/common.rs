//! Helpers every detector shares: the detection result, version constraints, environment
//! variables, ports, Procfiles.

use crate::pat::Pat;
use crate::repo::App;
use crate::{Analysis, EnvVarUse, Language, PortIssue};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};

/// Compiles a static pattern with ASCII classes: `\w`, `\d`, `\s` and `\b` are rewritten to
/// their ASCII forms, which compile many times faster than the Unicode ones (compiling is most
/// of the cost of analysing a small repository in a fresh process).
pub fn re(pattern: &str) -> Regex {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('d') => out.push_str("[0-9]"),
            Some('s') => out.push_str("[\\t\\n\\r ]"),
            Some('b') => out.push_str("(?-u:\\b)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Regex::new(&out).expect("static regex")
}

/// One detector's verdict: a score in 0..=1 and the analysis it would report.
#[derive(Debug, Clone)]
pub struct Detected {
    pub score: f64,
    pub analysis: Analysis,
}

impl Detected {
    pub fn new(language: Language, score: f64) -> Detected {
        let mut analysis = Analysis::unknown();
        analysis.language = Some(language);
        Detected { score, analysis }
    }

    pub fn evidence(&mut self, s: impl Into<String>) {
        self.analysis.evidence.push(s.into());
    }

    pub fn set_version(&mut self, v: Versioned) {
        self.evidence(format!("runtime version {} (from {})", v.version, v.source));
        self.analysis.runtime_version = Some(v.version);
        self.analysis.details.runtime_version_source = Some(v.source);
    }
}

/// A version and where it came from.
#[derive(Debug, Clone)]
pub struct Versioned {
    pub version: String,
    pub source: String,
}

impl Versioned {
    pub fn new(version: impl Into<String>, source: impl Into<String>) -> Self {
        Versioned {
            version: version.into(),
            source: source.into(),
        }
    }
}

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> u32 {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u32
        + 1
}

/// The `web:` command of a Procfile.
pub fn procfile_web(app: &App) -> Option<String> {
    let text = app.text("Procfile")?;
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("web:")
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
    })
}

/// A tool's version from `.tool-versions` (asdf / mise).
pub fn tool_versions(app: &App, tool: &str) -> Option<Versioned> {
    let text = app.text(".tool-versions")?;
    text.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(tool))
            .then(|| parts.next())
            .flatten()
            .map(|v| Versioned::new(v.trim_start_matches('v'), ".tool-versions"))
    })
}

/// The first non-empty, non-comment line of a pin file.
pub fn pin_file(app: &App, name: &str) -> Option<String> {
    app.text(name)?
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches('v').to_string())
}

fn parse_num(s: &str) -> Option<Vec<u32>> {
    let s = s.trim().trim_start_matches('v');
    let parts: Vec<u32> = s
        .split('.')
        .take_while(|p| !p.is_empty() && *p != "*" && *p != "x" && *p != "X")
        .map(|p| {
            p.chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
                .parse()
                .ok()
        })
        .collect::<Option<Vec<u32>>>()?;
    (!parts.is_empty()).then_some(parts)
}

/// Picks a version from `known` (oldest first, "major" or "major.minor" strings) that satisfies
/// a constraint such as `>=3.9,<3.12`, `^20`, `18.x`, `~=3.11`, `20 || 22`, `==3.11.*`.
/// Prefers `default` when it satisfies, else the newest one that does. Granularity is the
/// number of components of the `known` entries.
pub fn pick_version(constraint: &str, default: &str, known: &[&str]) -> Option<String> {
    let alternatives: Vec<&str> = constraint.split("||").collect();
    let sat = |cand: &[u32]| alternatives.iter().any(|alt| satisfies(alt, cand));
    let d = parse_num(default)?;
    if sat(&d) {
        return Some(default.to_string());
    }
    known
        .iter()
        .rev()
        .find(|k| parse_num(k).is_some_and(|v| sat(&v)))
        .map(|k| k.to_string())
}

fn cmp_prefix(cand: &[u32], bound: &[u32]) -> std::cmp::Ordering {
    for (i, b) in bound.iter().enumerate() {
        let c = cand.get(i).copied().unwrap_or(0);
        match c.cmp(b) {
            std::cmp::Ordering::Equal => continue,
            o => return o,
        }
    }
    std::cmp::Ordering::Equal
}

/// Whether the components both versions have are equal.
fn eq_prefix(cand: &[u32], bound: &[u32]) -> bool {
    cand.iter().zip(bound).all(|(a, b)| a == b)
}

fn satisfies(alt: &str, cand: &[u32]) -> bool {
    use std::cmp::Ordering::*;
    let alt = alt.trim();
    if alt.is_empty() || alt == "*" {
        return true;
    }
    // Split on commas and spaces between operators (">=18 <21" or ">=3.9,<3.12").
    let mut ok = true;
    let normalized = alt.replace(", ", ",").replace(' ', ",");
    let mut tokens: Vec<String> = vec![];
    for t in normalized.split(',').filter(|t| !t.is_empty()) {
        // Join a bare operator with the next number (">= 18").
        if t.chars().all(|c| "<>=!~^".contains(c)) {
            tokens.push(t.to_string());
        } else if let Some(last) = tokens.last_mut() {
            if last.chars().all(|c| "<>=!~^".contains(c)) {
                last.push_str(t);
            } else {
                tokens.push(t.to_string());
            }
        } else {
            tokens.push(t.to_string());
        }
    }
    for t in tokens {
        let t = t.trim();
        let (op, rest) = ["===", "==", ">=", "<=", "~=", "!=", ">", "<", "^", "~", "="]
            .iter()
            .find_map(|op| t.strip_prefix(op).map(|r| (*op, r)))
            .unwrap_or(("=", t));
        let Some(v) = parse_num(rest) else { continue };
        // A candidate line ("20", "3.12") satisfies a lower bound when some release of it
        // does: compare only the components the candidate has.
        let lower = matches!(op, ">=" | "^" | "~" | "~=");
        let c = if lower {
            cmp_prefix(cand, &v[..v.len().min(cand.len())])
        } else {
            cmp_prefix(cand, &v)
        };
        let good = match op {
            ">=" => c != Less,
            ">" => {
                // ">3.9" with granularity major.minor: 3.10 and up.
                c == Greater
            }
            "<=" => c != Greater,
            "<" => c == Less,
            "!=" => c != Equal,
            "~=" => {
                // Compatible release: >= v, and same prefix without the last component.
                c != Less && eq_prefix(cand, &v[..v.len().saturating_sub(1).max(1)])
            }
            "^" => c != Less && cand.first() == v.first(),
            "~" => {
                c != Less && eq_prefix(cand, &v[..v.len().clamp(1, 2)])
                    || (v.len() == 1 && cand.first() == v.first())
            }
            _ => {
                // Exact or wildcard ("3.11", "18.x", "==3.11.*"): compare known components.
                let n = v.len().min(cand.len());
                cmp_prefix(&cand[..n], &v[..n]) == Equal
            }
        };
        ok &= good;
    }
    ok
}

/// Names that look like credentials: the one rule, kept with the plan.
pub use devgem_plan::is_secret_name as is_secret;

/// Variables the platform sets: never reported.
const PLATFORM_VARS: &[&str] = &[
    "PORT",
    "HOST",
    "NODE_ENV",
    "HOME",
    "PATH",
    "PWD",
    "K_SERVICE",
    "K_REVISION",
    "K_CONFIGURATION",
    "DEBUG",
    "PYTHONUNBUFFERED",
    "RAILS_ENV",
    "RACK_ENV",
    "MIX_ENV",
    "APP_ENV",
    "BUNDLE_GEMFILE",
    "MODE",
    "DEV",
    "PROD",
    "SSR",
    "BASE_URL",
    "CI",
];

/// One way a language reads an environment variable: the regex captures the name in group 1;
/// `required` tells when a read means the app cannot start without the variable.
pub struct EnvPattern {
    pub re: &'static Pat,
    pub required: Required,
}

/// When a read of an environment variable makes it required.
#[derive(Clone, Copy)]
pub enum Required {
    /// Never: the form always has a fallback (PHP's `getenv`, Go's `os.Getenv`...).
    Never,
    /// Unless `DEFAULT_AFTER` matches right after the read (`|| "x"`, `.unwrap_or(...)`, `, "x"`).
    UnlessDefault,
    /// Only when this pattern matches right after the read (Rust: `.unwrap()`, `.expect(`, `?`).
    When(&'static Pat),
}

static DEFAULT_AFTER: Pat = Pat::new(
    &[],
    r#"^\s*(\|\||\?\?|\.unwrap_or|\.or_else|\.unwrap_or_else|,\s*["'\w]|\bor\b)"#,
);

/// Environment variables read by the app's sources with extensions `exts`, plus the ones
/// listed in `.env.example` and friends.
pub fn env_vars(
    app: &App,
    exts: &'static [&'static str],
    patterns: &[EnvPattern],
) -> Vec<EnvVarUse> {
    env_vars_in(app, exts, patterns, |_| true)
}

/// [`env_vars`] in the sources for which `runs_in_app` is true (not build scripts or tests).
pub fn env_vars_in(
    app: &App,
    exts: &'static [&'static str],
    patterns: &[EnvPattern],
    runs_in_app: impl Fn(&str) -> bool,
) -> Vec<EnvVarUse> {
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    for (path, text) in app.sources(exts, 4) {
        if !runs_in_app(path) {
            continue;
        }
        for p in patterns {
            for c in p.re.captures_iter(text) {
                let (Some(m), Some(name)) = (c.get(0), c.get(1)) else {
                    continue;
                };
                let name = name.as_str();
                if PLATFORM_VARS.contains(&name) || name.len() < 2 {
                    continue;
                }
                let mut end = text.len().min(m.end() + 40);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let rest = &text[m.end()..end];
                let required = match p.required {
                    Required::Never => false,
                    Required::UnlessDefault => !DEFAULT_AFTER.is_match(rest),
                    Required::When(after) => after.is_match(rest),
                };
                let e = found.entry(name.to_string()).or_insert(required);
                *e |= required;
            }
        }
    }
    for f in [".env.example", ".env.sample", ".env.template"] {
        if let Some(text) = app.text(f) {
            for l in text.lines() {
                let l = l.trim().trim_start_matches("export ").trim();
                if l.starts_with('#') {
                    continue;
                }
                if let Some((k, v)) = l.split_once('=') {
                    let k = k.trim();
                    if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && !k.is_empty()
                        && !PLATFORM_VARS.contains(&k)
                    {
                        let required = v.trim().is_empty();
                        let e = found.entry(k.to_string()).or_insert(required);
                        *e |= required;
                    }
                }
            }
        }
    }
    found
        .into_iter()
        .map(|(name, required)| EnvVarUse {
            secret: is_secret(&name),
            name,
            required,
        })
        .collect()
}

/// [`env_vars`] for languages with a single way to read a variable.
pub fn env_vars_by(
    app: &App,
    exts: &'static [&'static str],
    re: &'static Pat,
    required: Required,
) -> Vec<EnvVarUse> {
    env_vars(app, exts, &[EnvPattern { re, required }])
}

/// The app files among `names` that exist, in that order (manifests copied before the sources).
pub fn existing_files(app: &App, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|f| app.has(f))
        .map(|s| s.to_string())
        .collect()
}

/// A hardcoded port number found in code, with its place.
#[derive(Debug, Clone)]
pub struct PortHit {
    pub file: String,
    pub line: u32,
    pub port: u16,
    pub text: String,
}

/// The first match of `re` (group 1 = port) in the app's sources with `exts`.
pub fn find_port(
    app: &App,
    exts: &'static [&'static str],
    re: &Pat,
    depth: usize,
) -> Option<PortHit> {
    for (path, text) in app.sources(exts, depth) {
        if let Some(c) = re.captures(text)
            && let Some(p) = c.get(1)
            && let Ok(port) = p.as_str().parse::<u16>()
        {
            let m = c.get(0).map(|m| m.as_str()).unwrap_or_default();
            return Some(PortHit {
                file: app.full(path),
                line: line_of(text, p.start()),
                port,
                text: m.trim().to_string(),
            });
        }
    }
    None
}

/// Whether any source with `exts` matches `re`.
pub fn any_source(
    app: &App,
    exts: &'static [&'static str],
    re: &Pat,
    depth: usize,
) -> Option<String> {
    app.sources(exts, depth)
        .find(|(_, t)| re.is_match(t))
        .map(|(p, _)| p.to_string())
}

/// PORT from `.env`, when set.
pub fn dotenv_port(app: &App) -> Option<u16> {
    app.text(".env")?.lines().find_map(|l| {
        l.trim()
            .strip_prefix("PORT=")
            .and_then(|v| v.trim().trim_matches('"').parse().ok())
    })
}

/// The issue to report when code hardcodes a port other than 8080 and does not read $PORT.
pub fn hardcoded_port_issue(hit: &PortHit, fix: &str) -> PortIssue {
    PortIssue {
        file: hit.file.clone(),
        line: hit.line,
        message: format!(
            "the app listens on port {} ({}) and does not read $PORT; Cloud Run sends traffic to $PORT (8080)",
            hit.port, hit.text
        ),
        fix: fix.to_string(),
        port: Some(hit.port),
    }
}

/// Dev port from the first port the sources hardcode (else the framework's `default`), and
/// the port issue when that port is not 8080 and the app does not read $PORT; so
/// `reads_port_env` must be known before.
pub fn port_from_sources(
    app: &App,
    analysis: &mut Analysis,
    exts: &'static [&'static str],
    re: &Pat,
    default: Option<u16>,
    fix: &str,
) {
    let hit = find_port(app, exts, re, 4);
    analysis.dev_port = hit.as_ref().map(|h| h.port).or(default);
    if let Some(h) = &hit
        && !analysis.reads_port_env
        && h.port != 8080
    {
        analysis.details.port_issue = Some(hardcoded_port_issue(h, fix));
    }
}

/// Production settings per language (the plan adds PORT).
pub fn production_env(language: Language) -> BTreeMap<String, String> {
    let pairs: &[(&str, &str)] = match language {
        Language::Python => &[
            ("PYTHONUNBUFFERED", "1"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("PIP_NO_CACHE_DIR", "1"),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ],
        Language::Node | Language::Bun => &[("NODE_ENV", "production"), ("HOSTNAME", "0.0.0.0")],
        Language::Ruby => &[
            ("RAILS_ENV", "production"),
            ("RACK_ENV", "production"),
            ("BUNDLE_WITHOUT", "development:test"),
            ("RAILS_LOG_TO_STDOUT", "1"),
            ("RAILS_SERVE_STATIC_FILES", "1"),
        ],
        Language::Php => &[("APP_ENV", "production")],
        Language::Elixir => &[("MIX_ENV", "prod"), ("PHX_SERVER", "true")],
        Language::Dotnet => &[
            ("ASPNETCORE_ENVIRONMENT", "Production"),
            ("DOTNET_RUNNING_IN_CONTAINER", "true"),
        ],
        Language::Java => &[("JAVA_TOOL_OPTIONS", "-XX:MaxRAMPercentage=75")],
        Language::Go => &[("GIN_MODE", "release")],
        Language::Rust => &[("RUST_LOG", "info")],
        Language::Deno => &[("DENO_ENV", "production")],
        Language::Static | Language::Docker => &[],
    };
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What to tell a user whose app has no start command.
pub fn start_hint(language: Language) -> String {
    match language {
        Language::Python => "add a Procfile with `web: gunicorn -b 0.0.0.0:$PORT module:app`, or an app.py/main.py that creates the app".into(),
        Language::Node | Language::Bun => "add a \"start\" script to package.json (e.g. \"node server.js\")".into(),
        Language::Go => "add a main package (main.go or cmd/<name>/main.go)".into(),
        Language::Rust => "add a binary target (src/main.rs)".into(),
        Language::Static => "add an index.html at the app root".into(),
        _ => "add a Procfile with a `web:` line".into(),
    }
}

/// Sorted, de-duplicated strings.
pub fn dedup(v: impl IntoIterator<Item = String>) -> Vec<String> {
    v.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let py = ["3.9", "3.10", "3.11", "3.12", "3.13"];
        let check = |c: &str, want: &str| {
            assert_eq!(pick_version(c, "3.13", &py).as_deref(), Some(want), "{c}");
        };
        check(">=3.9", "3.13");
        check(">=3.9,<3.12", "3.11");
        check("==3.11.*", "3.11");
        check("~=3.10", "3.13");
        check("^3.10", "3.13");
        check("3.10", "3.10");
        check(">=3.8, <3.11", "3.10");
        let node = ["18", "20", "22", "24"];
        let check = |c: &str, want: &str| {
            assert_eq!(pick_version(c, "22", &node).as_deref(), Some(want), "{c}");
        };
        check(">=18", "22");
        check("18.x", "18");
        check("^20.10.0", "20");
        check("20 || 22", "22");
        check(">=16 <21", "20");
        check("~18.17.0", "18");
        check(">= 20", "22");
    }

    #[test]
    fn secrets() {
        assert!(is_secret("STRIPE_API_KEY"));
        assert!(is_secret("DATABASE_URL"));
        assert!(!is_secret("LOG_LEVEL"));
        assert!(!is_secret("GOOGLE_APPLICATION_CREDENTIALS_FILE"));
    }
}
