//! The offline intent engine: plain English in, tool calls (or a helpful question) out, with no
//! model and no network. Deterministic: the same message and context give the same answer.
//!
//! How it reads a message: it splits it into words, pulls out the things a tool needs (a
//! source, a deployment id, `NAME=value` pairs, a branch, a folder, a service name, a revision),
//! then matches what is left against phrases, strongest intent first. Typos in the words that
//! carry an intent ("deplyo", "stauts", "rollbak") are corrected against a small vocabulary.

use crate::tools::{ToolCall, env_name_problem, github_repository};
use devgem_domain::{DeploymentId, LinkId, RepositoryName, ServiceName, Status};
use std::collections::BTreeMap;

/// What the engine knows about the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The session's current deployment, when it has one.
    pub current: Option<CurrentDeployment>,
}

impl Context {
    /// A session with no deployment yet.
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn with_current(id: DeploymentId, status: Status, service_name: Option<String>) -> Self {
        Self {
            current: Some(CurrentDeployment {
                id,
                status,
                service_name,
            }),
        }
    }

    fn status(&self) -> Option<Status> {
        self.current.as_ref().map(|c| c.status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentDeployment {
    pub id: DeploymentId,
    pub status: Status,
    pub service_name: Option<String>,
}

/// What the engine made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Understanding {
    /// Calls to make, in order, and a short sentence to show before their results. A call
    /// without a `deployment_id` means the session's current deployment.
    Calls {
        calls: Vec<ToolCall>,
        lead_in: Option<String>,
    },
    /// Nothing to call: a greeting, help, or a question for what is missing.
    Reply(String),
}

/// Understands one message.
pub fn understand(message: &str, context: &Context) -> Understanding {
    let mut m = Message::read(message);
    m.extract();
    m.decide(context)
}

// ---------------------------------------------------------------------------------------------
// Words

#[derive(Debug)]
struct Word {
    /// The token as typed.
    full: String,
    /// Without surrounding punctuation, case kept (values, names, sources).
    raw: String,
    /// Lowercase, no apostrophes or hyphens, typos corrected: what intents match on.
    lower: String,
}

/// Punctuation that ends or wraps a word, not part of it.
fn is_wrapping(c: char) -> bool {
    matches!(
        c,
        ',' | ';'
            | ':'
            | '!'
            | '?'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '"'
            | '\''
            | '`'
            | '<'
            | '>'
            | '*'
    )
}

fn trim_word(token: &str) -> &str {
    let t = token.trim_matches(is_wrapping);
    // A sentence's full stop, but not `.` or `..` (paths).
    let t = if t.len() > 1 && t.ends_with('.') && !t.ends_with("..") {
        t.trim_end_matches('.')
    } else {
        t
    };
    t.trim_matches(is_wrapping)
}

/// Words whose typos are corrected, and the corrections' targets.
const VOCABULARY: &[&str] = &[
    "deploy",
    "deployment",
    "deployments",
    "deployed",
    "deploying",
    "redeploy",
    "status",
    "rollback",
    "analyze",
    "analyse",
    "diagnose",
    "cancel",
    "abort",
    "secret",
    "branch",
    "previous",
    "framework",
    "variable",
    "variables",
    "repository",
    "failed",
    "restart",
    "logs",
    "running",
    "unset",
];

/// Real words one letter away from a vocabulary word: never "corrected".
const NOT_TYPOS: &[&str] = &[
    "about", "blogs", "states", "start", "state", "stats", "secrets", "cancels", "aborts",
    "branches", "varies", "failure", "fails", "unsent", "upset", "sunset", "analyst", "ranking",
    "burning", "turning", "tunning", "cunning",
];

/// Short typos the distance rule leaves alone.
const KNOWN_TYPOS: &[(&str, &str)] = &[
    ("lgos", "logs"),
    ("logz", "logs"),
    ("lofs", "logs"),
    ("logd", "logs"),
    ("lgo", "log"),
    ("stat", "status"),
    ("staus", "status"),
    ("satus", "status"),
    ("deply", "deploy"),
    ("dpeloy", "deploy"),
    ("rolback", "rollback"),
    ("rollbak", "rollback"),
    ("analize", "analyze"),
    ("analyis", "analysis"),
    ("pls", "please"),
    ("plz", "please"),
    ("u", "you"),
    ("ur", "your"),
    ("wat", "what"),
    ("wut", "what"),
    ("y", "why"),
];

fn normalize(raw: &str) -> String {
    let lower: String = raw
        .chars()
        .filter(|c| *c != '\'' && *c != '’' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    if let Some((_, fixed)) = KNOWN_TYPOS.iter().find(|(typo, _)| *typo == lower) {
        return (*fixed).to_string();
    }
    if lower.len() < 5
        || !lower.bytes().all(|b| b.is_ascii_lowercase())
        || VOCABULARY.contains(&lower.as_str())
        || NOT_TYPOS.contains(&lower.as_str())
    {
        return lower;
    }
    let allowed = if lower.len() >= 8 { 2 } else { 1 };
    let mut best: Option<(usize, &str)> = None;
    for word in VOCABULARY {
        if word.len().abs_diff(lower.len()) > allowed {
            continue;
        }
        let d = edit_distance(&lower, word);
        if d <= allowed && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, word));
        }
    }
    best.map_or(lower, |(_, w)| w.to_string())
}

/// Damerau-Levenshtein distance (with adjacent transpositions), for short ASCII words.
fn edit_distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// The things a message names, pulled out of it.
#[derive(Debug, Default)]
struct Found {
    source: Option<String>,
    branch: Option<String>,
    subdir: Option<String>,
    service_name: Option<String>,
    deployment_id: Option<DeploymentId>,
    link_id: Option<LinkId>,
    revision: Option<String>,
    fix: Option<String>,
    env: BTreeMap<String, String>,
    /// Names said to be secrets, in the order said.
    secret: Vec<String>,
    /// Variable names mentioned without a value (and not as secrets).
    bare_names: Vec<String>,
}

struct Message {
    words: Vec<Word>,
    /// Words taken by an entity: intents do not match on them.
    used: Vec<bool>,
    found: Found,
    /// The unused words' `lower`, space-separated with a space at each end.
    text: String,
}

/// Small words that are never a value of anything.
const FILLER: &[&str] = &[
    "the",
    "a",
    "an",
    "it",
    "its",
    "my",
    "our",
    "this",
    "that",
    "to",
    "and",
    "or",
    "please",
    "now",
    "for",
    "me",
    "us",
    "of",
    "on",
    "in",
    "from",
    "with",
    "too",
    "also",
    "then",
    "again",
    "you",
    "can",
    "could",
    "would",
    "will",
    "is",
    "be",
    "just",
    "all",
    "both",
    "them",
    "thanks",
    "thank",
    "app",
    "service",
    "env",
    "var",
    "vars",
    "variable",
    "variables",
    "environment",
    "setting",
    "settings",
    "config",
    "value",
    "values",
    "so",
    "here",
    "there",
    "up",
    "yet",
];

fn is_filler(lower: &str) -> bool {
    FILLER.contains(&lower)
}

/// Capitalised words people shout that are not variables.
const SHOUTED: &[&str] = &[
    "stop", "abort", "cancel", "now", "asap", "please", "help", "ok", "yes", "no", "url", "fix",
    "why", "what", "now", "i", "it", "api", "app", "dns", "http", "https", "ssl", "tls", "ui",
    "pls", "all",
];

/// Looks like an environment variable's name in a sentence: `LOG_LEVEL`, `api_key`, or
/// `DEBUG` in a sentence that is not all capitals.
fn looks_like_env_name(raw: &str, shouting: bool) -> bool {
    if env_name_problem(raw).is_some()
        || raw.len() < 2
        || !raw.chars().any(|c| c.is_ascii_alphabetic())
    {
        return false;
    }
    if raw.contains('_') {
        return true;
    }
    let capitals = raw
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let lower = normalize(raw);
    capitals
        && !shouting
        && !VOCABULARY.contains(&lower.as_str())
        && !SHOUTED.contains(&lower.as_str())
}

/// Names that look like credentials: the one rule, kept with the plan.
pub use devgem_plan::is_secret_name;

fn is_deployment_id(lower: &str) -> bool {
    lower.len() >= 6 && lower.starts_with("d-") && lower[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// `l-` and hex digits, as links are named.
fn is_link_id(lower: &str) -> bool {
    lower.len() >= 6 && lower.starts_with("l-") && lower[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

const GIT_HOSTS: &[&str] = &["github.com/", "gitlab.com/", "bitbucket.org/"];

/// A repository URL, a host-prefixed path or a local path, as typed.
fn is_explicit_source(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("git@")
        || lower.starts_with("ssh://")
        || lower.starts_with("git://")
        || GIT_HOSTS.iter().any(|h| lower.contains(h))
        || raw.starts_with("./")
        || raw.starts_with("../")
        || raw.starts_with("~/")
        || (raw.starts_with('/') && raw.len() > 1)
}

/// `owner/repo`: GitHub shorthand.
fn is_shorthand(raw: &str) -> bool {
    let Some((owner, repo)) = raw.split_once('/') else {
        return false;
    };
    let part = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    part(owner) && part(repo) && owner.chars().any(|c| c.is_ascii_alphabetic())
}

const FOLDER_WORDS: &[&str] = &[
    "folder",
    "directory",
    "dir",
    "subdir",
    "subdirectory",
    "subfolder",
    "package",
    "path",
];
const SUBDIR_PREPOSITIONS: &[&str] = &["in", "under", "inside", "within", "at"];

impl Message {
    fn read(message: &str) -> Self {
        let cleaned: String = message
            .chars()
            .map(|c| match c {
                '’' | '‘' => '\'',
                '“' | '”' => '"',
                c => c,
            })
            .collect();
        let mut words = Vec::new();
        for token in cleaned.split_whitespace() {
            let raw = trim_word(token);
            if raw.is_empty() {
                continue;
            }
            words.push(Word {
                full: token.to_string(),
                raw: raw.to_string(),
                lower: normalize(raw),
            });
        }
        let used = vec![false; words.len()];
        Message {
            words,
            used,
            found: Found::default(),
            text: String::new(),
        }
    }

    fn lower(&self, i: usize) -> &str {
        self.words.get(i).map_or("", |w| w.lower.as_str())
    }

    fn raw(&self, i: usize) -> &str {
        self.words.get(i).map_or("", |w| w.raw.as_str())
    }

    fn free(&self, i: usize) -> bool {
        i < self.words.len() && !self.used[i]
    }

    fn take(&mut self, i: usize) {
        if i < self.used.len() {
            self.used[i] = true;
        }
    }

    fn extract(&mut self) {
        self.extract_ids();
        self.extract_keyed();
        self.extract_source();
        self.extract_subdir();
        self.extract_env();
        self.extract_branch();
        self.extract_service_name();
        self.extract_revision_and_fix();
        let mut text = String::from(" ");
        for (i, w) in self.words.iter().enumerate() {
            text.push_str(if self.used[i] { "<x>" } else { &w.lower });
            text.push(' ');
        }
        self.text = text;
    }

    fn extract_ids(&mut self) {
        for i in 0..self.words.len() {
            let lower = self.raw(i).to_ascii_lowercase();
            if is_deployment_id(&lower) {
                if self.found.deployment_id.is_none() {
                    self.found.deployment_id = DeploymentId::parse(&lower).ok();
                }
                self.take(i);
            } else if is_link_id(&lower) {
                if self.found.link_id.is_none() {
                    self.found.link_id = LinkId::parse(&lower).ok();
                }
                self.take(i);
            }
        }
    }

    /// `branch=dev`, `subdir: apps/web`, `name=shop`.
    fn extract_keyed(&mut self) {
        for i in 0..self.words.len() {
            let raw = self.raw(i).to_string();
            let Some((key, value)) = raw.split_once(['=', ':']) else {
                continue;
            };
            if value.is_empty() || value.starts_with("//") {
                continue;
            }
            let value = value.to_string();
            match key.to_ascii_lowercase().as_str() {
                "branch" => self.found.branch = Some(value),
                "subdir" | "dir" | "folder" | "path" => self.found.subdir = Some(value),
                "name" | "service" | "service_name" => self.found.service_name = Some(value),
                _ => continue,
            }
            self.take(i);
        }
    }

    fn extract_source(&mut self) {
        let n = self.words.len();
        let mut candidate = None;
        for i in 0..n {
            if !self.free(i) {
                continue;
            }
            let raw = self.raw(i);
            if is_explicit_source(raw) && !raw.contains('=') {
                candidate = Some(i);
                break;
            }
        }
        if candidate.is_none() {
            for i in 0..n {
                if !self.free(i) || !is_shorthand(self.raw(i)) {
                    continue;
                }
                let before = if i > 0 { self.lower(i - 1) } else { "" };
                let after = self.lower(i + 1);
                let folder_context = SUBDIR_PREPOSITIONS.contains(&before)
                    || FOLDER_WORDS.contains(&before)
                    || FOLDER_WORDS.contains(&after)
                    || (before == "the" && FOLDER_WORDS.contains(&after));
                if !folder_context {
                    candidate = Some(i);
                    break;
                }
            }
        }
        if let Some(i) = candidate {
            let mut source = self.raw(i).trim_end_matches('/').to_string();
            // `github.com/a/b/tree/dev`, `github.com/a/b#dev`, `a/b@dev`: a branch rides along.
            if let Some(at) = source.find("/tree/") {
                let branch = source[at + 6..].to_string();
                if !branch.is_empty() {
                    self.found.branch = Some(branch);
                }
                source.truncate(at);
            } else if let Some((s, b)) = source.rsplit_once('#') {
                if !b.is_empty() {
                    self.found.branch = Some(b.to_string());
                }
                source = s.to_string();
            } else if let Some(at) = source.rfind('@')
                && source[..at].contains('/')
                && !source[at..].contains('/')
            {
                self.found.branch = Some(source[at + 1..].to_string());
                source.truncate(at);
            }
            if is_shorthand(&source) && !is_explicit_source(&source) {
                source = format!("github.com/{source}");
            }
            self.found.source = Some(source);
            self.take(i);
            return;
        }
        // "deploy this folder", "deploy the current directory", "deploy ." — here.
        for i in 0..n {
            let l = self.lower(i);
            let here = (self.raw(i) == "." && self.free(i))
                || ((l == "this" || l == "current")
                    && matches!(
                        self.lower(i + 1),
                        "folder" | "directory" | "dir" | "project"
                    ));
            if here {
                self.found.source = Some(".".to_string());
                self.take(i);
                if self.raw(i) != "." {
                    self.take(i + 1);
                }
                return;
            }
        }
    }

    fn extract_subdir(&mut self) {
        if self.found.subdir.is_some() {
            return;
        }
        let n = self.words.len();
        for i in 0..n {
            if !self.free(i) {
                continue;
            }
            let l = self.lower(i).to_string();
            // "subdir apps/web", "folder web", "in apps/web", "in the web folder",
            // "from the apps/api directory".
            if FOLDER_WORDS.contains(&l.as_str()) && l != "package" && l != "path" {
                let next = i + 1;
                if self.free(next) && !is_filler(self.lower(next)) {
                    self.found.subdir = Some(self.raw(next).to_string());
                    self.take(i);
                    self.take(next);
                    return;
                }
                // "the web folder": the word before.
                if i >= 1 && self.free(i - 1) && !is_filler(self.lower(i - 1)) {
                    let before_it = if i >= 2 { self.lower(i - 2) } else { "" };
                    if matches!(before_it, "the" | "in" | "from" | "under" | "inside") {
                        self.found.subdir = Some(self.raw(i - 1).to_string());
                        self.take(i - 1);
                        self.take(i);
                        return;
                    }
                }
            }
            if SUBDIR_PREPOSITIONS.contains(&l.as_str()) {
                let mut next = i + 1;
                if self.lower(next) == "the" {
                    next += 1;
                }
                if !self.free(next) {
                    continue;
                }
                let raw = self.raw(next).to_string();
                let is_path =
                    raw.contains('/') && !is_explicit_source(&raw) || raw.starts_with("./");
                if is_path {
                    self.found.subdir = Some(raw);
                    self.take(next);
                    self.take(i);
                    return;
                }
            }
        }
    }

    /// `NAME=value`, `NAME = value`, `set NAME to value`, `NAME as a secret`, `secret NAME=v`.
    fn extract_env(&mut self) {
        let n = self.words.len();
        let shouting = !self
            .words
            .iter()
            .any(|w| w.raw.chars().any(|c| c.is_ascii_lowercase()));
        let set_verbs = [
            "set",
            "change",
            "update",
            "make",
            "switch",
            "configure",
            "put",
            "add",
            "use",
        ];
        let mut order: Vec<(usize, String)> = Vec::new();
        // Where the names said without a value are.
        let mut bare: Vec<usize> = Vec::new();
        let mut i = 0;
        while i < n {
            if !self.free(i) {
                i += 1;
                continue;
            }
            let full = self.words[i].full.clone();
            let raw = self.raw(i).to_string();
            // NAME=value (value may be quoted and span words).
            let body = full.trim_start_matches(is_wrapping);
            if let Some((name, value)) = body.split_once('=')
                && env_name_problem(name).is_none()
                && !name.is_empty()
            {
                let (value, last) = if value.trim_matches(is_wrapping).is_empty()
                    && !value.starts_with(['"', '\''])
                {
                    // "NAME= value"
                    if i + 1 < n {
                        self.value_from(i + 1, "")
                    } else {
                        (String::new(), i)
                    }
                } else {
                    self.value_from(i, value)
                };
                for k in i..=last {
                    self.take(k);
                }
                order.push((i, name.to_string()));
                self.found.env.insert(name.to_string(), value);
                i = last + 1;
                continue;
            }
            if looks_like_env_name(&raw, shouting)
                || (i >= 1
                    && set_verbs.contains(&self.lower(i - 1))
                    && env_name_problem(&raw).is_none()
                    && !is_filler(self.lower(i)))
            {
                // NAME = value, NAME to value, NAME should be value, NAME: value.
                let after = self.lower(i + 1).to_string();
                let mut value_at = None;
                if self
                    .words
                    .get(i + 1)
                    .is_some_and(|w| w.full == "=" || w.full == ":")
                    || (raw.len() < self.words[i].full.len() && self.words[i].full.ends_with(':'))
                {
                    value_at = Some(if self.words[i].full.ends_with(':') {
                        i + 1
                    } else {
                        i + 2
                    });
                } else if after == "to" || after == "equals" {
                    value_at = Some(i + 2);
                } else if (after == "should" || after == "must") && self.lower(i + 2) == "be" {
                    value_at = Some(i + 3);
                } else if after == "as"
                    && !matches!(self.lower(i + 2), "a" | "secret" | "secrets" | "an")
                {
                    value_at = Some(i + 2);
                } else if i >= 1
                    && matches!(self.lower(i - 1), "make" | "set" | "switch" | "change")
                    && i + 2 == n
                    && !is_filler(&after)
                    && !after.is_empty()
                {
                    // "make LOG_LEVEL debug": the verb, the name, the value, nothing after.
                    value_at = Some(i + 1);
                }
                let has_verb = (0..i).any(|k| set_verbs.contains(&self.lower(k)));
                let name_ok = looks_like_env_name(&raw, shouting) || has_verb;
                if let Some(v) = value_at
                    && name_ok
                    && v < n
                    && self.free(v)
                {
                    let name = raw.to_ascii_uppercase();
                    let (value, last) = self.value_from(v, "");
                    for k in i..=last {
                        self.take(k);
                    }
                    order.push((i, name.clone()));
                    self.found.env.insert(name, value);
                    i = last + 1;
                    continue;
                }
                if looks_like_env_name(&raw, shouting) {
                    let name = raw.to_ascii_uppercase();
                    bare.push(i);
                    order.push((i, name.clone()));
                    self.found.bare_names.push(name);
                    self.take(i);
                }
            }
            i += 1;
        }
        // Which of them are secrets: said so ("as a secret", "secret X"), or named like one.
        let mut secret: Vec<String> = Vec::new();
        for i in 0..n {
            let l = self.lower(i);
            if l != "secret" && l != "secrets" && l != "secretly" {
                continue;
            }
            let plural = l == "secrets";
            // After: "X as a secret" / "X=1 and Y=2 as secrets" / "X (secret)".
            let preceding: Vec<&(usize, String)> = order.iter().filter(|(at, _)| *at < i).collect();
            let following = order.iter().find(|(at, _)| *at > i && *at <= i + 3);
            let prev_word = if i >= 1 { self.lower(i - 1) } else { "" };
            let announces = matches!(prev_word, "a" | "as" | "(")
                || (i >= 2 && self.lower(i - 2) == "as")
                || self.words[i].full.starts_with('(');
            if let Some((_, name)) = following.filter(|_| !announces || preceding.is_empty()) {
                secret.push(name.clone());
                if plural {
                    for (_, name) in order.iter().filter(|(at, _)| *at > i) {
                        secret.push(name.clone());
                    }
                }
            } else if plural {
                for (_, name) in &preceding {
                    secret.push(name.clone());
                }
            } else if let Some((_, name)) = preceding.last() {
                secret.push(name.clone());
            }
        }
        // Named like a credential: a secret, when it comes with a value.
        for (at, name) in &order {
            if !bare.contains(at) && is_secret_name(name) {
                secret.push(name.clone());
            }
        }
        for name in secret {
            if !self.found.secret.contains(&name) {
                self.found.secret.push(name);
            }
        }
        let secret = &self.found.secret;
        self.found.bare_names.retain(|n| !secret.contains(n));
    }

    /// A value starting at word `at` (`first` is its text when it rides on a `NAME=` word):
    /// one word, or a quoted run of words. Returns it and the last word it took.
    fn value_from(&self, at: usize, first: &str) -> (String, usize) {
        let start = if first.is_empty() {
            self.words[at].full.as_str()
        } else {
            first
        };
        let start = start.trim_start_matches(['(', '[']);
        for quote in ['"', '\'', '`'] {
            if let Some(rest) = start.strip_prefix(quote) {
                let mut value = String::new();
                let mut piece = rest.to_string();
                let mut k = at;
                loop {
                    let closing = piece.trim_end_matches([',', ';', '.', '!', '?', ')']);
                    if let Some(done) = closing.strip_suffix(quote) {
                        value.push_str(done);
                        return (value, k);
                    }
                    value.push_str(&piece);
                    k += 1;
                    if k >= self.words.len() {
                        return (value, k - 1);
                    }
                    value.push(' ');
                    piece = self.words[k].full.clone();
                }
            }
        }
        let mut value = start.trim_end_matches([',', ';', '!', '?', ')']);
        if value.len() > 1 && value.ends_with('.') && !value.ends_with("..") {
            value = value.trim_end_matches('.');
        }
        (value.to_string(), at)
    }

    fn extract_branch(&mut self) {
        if self.found.branch.is_some() {
            return;
        }
        let n = self.words.len();
        const NOT_BRANCH: &[&str] = &[
            "default",
            "same",
            "which",
            "what",
            "another",
            "other",
            "any",
            "new",
            "right",
            "correct",
            "cloud",
            "gcp",
            "google",
            "run",
            "cloudrun",
            "production",
            "prod",
            "port",
            "the",
            "a",
            "my",
            "it",
            "me",
            "there",
            "here",
            "top",
            "please",
            "every",
            "each",
            "push",
            "pushes",
            "commit",
            "commits",
            "auto",
            "automatic",
        ];
        let ok = |m: &Message, i: usize| -> bool {
            m.free(i) && !NOT_BRANCH.contains(&m.lower(i)) && !is_filler(m.lower(i))
        };
        for i in 0..n {
            let l = self.lower(i);
            if l != "branch" || !self.free(i) {
                continue;
            }
            // "the staging branch", "from staging branch".
            if i >= 1 && ok(self, i - 1) {
                self.found.branch = Some(self.raw(i - 1).to_string());
                self.take(i - 1);
                self.take(i);
                return;
            }
            // "branch staging", "on branch feature/x", "branch called dev".
            let mut next = i + 1;
            if matches!(self.lower(next), "called" | "named") {
                next += 1;
            }
            if ok(self, next) {
                self.found.branch = Some(self.raw(next).to_string());
                self.take(i);
                self.take(next);
                return;
            }
        }
        // "every push to staging", "whenever I push to main", "merges into release".
        for i in 0..n {
            let pushes = matches!(
                self.lower(i),
                "push" | "pushes" | "pushed" | "commit" | "commits" | "merge" | "merges"
            );
            let next = i + 1;
            if pushes
                && self.free(next)
                && matches!(self.lower(next), "to" | "into" | "on")
                && ok(self, next + 1)
            {
                self.found.branch = Some(self.raw(next + 1).to_string());
                self.take(next);
                self.take(next + 1);
                return;
            }
        }
        // "on staging", "from dev" (only once the source is known: "from" leads to it too).
        if self.found.source.is_none() {
            return;
        }
        for i in 0..n {
            if !self.free(i) || !matches!(self.lower(i), "on" | "from" | "off" | "using") {
                continue;
            }
            let next = i + 1;
            if ok(self, next) && !FOLDER_WORDS.contains(&self.lower(next + 1)) {
                let raw = self.raw(next);
                let plain = raw
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
                if plain && !raw.contains("..") {
                    self.found.branch = Some(raw.to_string());
                    self.take(i);
                    self.take(next);
                    return;
                }
            }
        }
    }

    fn extract_service_name(&mut self) {
        let n = self.words.len();
        const NOT_NAMES: &[&str] = &[
            "a", "an", "the", "secret", "secrets", "well", "soon", "usual", "before", "is",
            "possible", "it", "before", "always", "such", "normal", "planned", "expected",
        ];
        for i in 0..n {
            if !self.free(i) {
                continue;
            }
            let l = self.lower(i);
            let next = match l {
                "as" | "called" | "named" => i + 1,
                "call" | "name" if self.lower(i + 1) == "it" => i + 2,
                "service" if self.lower(i + 1) == "name" => i + 2,
                _ => continue,
            };
            let next = if self.lower(next) == "is" {
                next + 1
            } else {
                next
            };
            if !self.free(next) || NOT_NAMES.contains(&self.lower(next)) {
                continue;
            }
            let raw = self.raw(next).to_ascii_lowercase();
            let name = match ServiceName::parse(&raw) {
                Ok(n) => n,
                Err(_) => ServiceName::derive_from(&raw),
            };
            self.found.service_name = Some(name.as_str().to_string());
            for k in i..=next {
                self.take(k);
            }
            return;
        }
    }

    fn extract_revision_and_fix(&mut self) {
        let n = self.words.len();
        for i in 0..n {
            let l = self.lower(i).to_string();
            let l = l.as_str();
            if matches!(l, "to" | "revision" | "rev" | "version") && self.free(i + 1) {
                let raw = self.raw(i + 1).to_ascii_lowercase();
                let looks = raw.bytes().any(|b| b.is_ascii_digit())
                    && raw
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !matches!(
                        self.lower(i + 2),
                        "days" | "hours" | "minutes" | "ago" | "day" | "hour"
                    );
                if looks && self.found.revision.is_none() {
                    self.found.revision = Some(raw);
                    self.take(i + 1);
                }
            }
            if l == "fix" && self.free(i + 1) {
                let raw = self.raw(i + 1).trim_start_matches('#');
                if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
                    self.found.fix = Some(raw.to_string());
                    self.take(i + 1);
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Intents

    /// Whether the message's free words hold the phrase (whole words).
    fn has(&self, phrase: &str) -> bool {
        let t = self.text.as_bytes();
        let mut from = 0;
        while let Some(pos) = self.text[from..].find(phrase) {
            let start = from + pos;
            let end = start + phrase.len();
            if t[start - 1] == b' ' && t.get(end) == Some(&b' ') {
                return true;
            }
            from = start + 1;
        }
        false
    }

    fn any(&self, phrases: &[&str]) -> bool {
        phrases.iter().any(|p| self.has(p))
    }

    /// Whether a free word starts with the stem (`deploy` matches `deploying`).
    fn stem(&self, stem: &str) -> bool {
        self.words
            .iter()
            .enumerate()
            .any(|(i, w)| !self.used[i] && w.lower.starts_with(stem))
    }

    /// The deploy call for the source the message names, with what it said.
    fn deploy_call(&self, source: &str, allow_findings: bool) -> ToolCall {
        let f = &self.found;
        ToolCall::DeployRepository {
            source: source.to_string(),
            branch: f.branch.clone(),
            subdir: f.subdir.clone(),
            service_name: f
                .service_name
                .as_deref()
                .and_then(|s| ServiceName::parse(s).ok()),
            env: f.env.clone(),
            secret: f.secret.clone(),
            allow_findings,
        }
    }

    /// Repository links ("auto-deploy acme/shop from main", "what's linked?", "stop
    /// auto-deploying acme/shop") and the override of a security-scan stop ("deploy anyway"),
    /// decided before the deploy, stop and fix intents whose words they share.
    fn links_and_findings(&self, context: &Context) -> Option<Understanding> {
        let f = &self.found;
        let auto = self.stem("autodeploy")
            || self.stem("autoredeploy")
            || self.any(&[
                "auto deploy",
                "auto deploying",
                "auto deployment",
                "auto deployments",
                "automatic deploy",
                "automatic deployment",
                "automatic deployments",
                "deploy automatically",
                "automatically deploy",
                "automatically redeploy",
                "redeploy automatically",
                "continuous deployment",
                "continuous delivery",
                "continuously deploy",
                "cd",
            ]);
        let on_push = self.any(&[
            "every push",
            "each push",
            "on push",
            "on pushes",
            "on every push",
            "whenever i push",
            "whenever we push",
            "whenever someone pushes",
            "every time i push",
            "every time we push",
            "each time i push",
            "when i push",
            "when we push",
            "pushes to",
            "every commit",
            "each commit",
            "on commit",
            "every merge",
            "on merge",
        ]) || (self.stem("push")
            && self.any(&["whenever", "every time", "each time"]));
        // "link acme/shop" asks for a link; "the link for acme/shop" is a URL.
        let link_verb = self.any(&["link", "connect", "hook up", "wire up", "hook"])
            && !self.any(&[
                "the link",
                "a link",
                "my link",
                "its link",
                "that link",
                "link for",
                "link of",
                "link to",
            ]);
        let unlink_verb = self.any(&[
            "unlink",
            "disconnect",
            "unhook",
            "remove the link",
            "delete the link",
            "remove link",
            "delete link",
            "remove the links",
            "delete the links",
            "drop the link",
            "get rid of the link",
        ]);
        let stop_verb = self.any(&[
            "stop",
            "turn off",
            "disable",
            "no more",
            "pause",
            "cancel",
            "switch off",
            "quit",
        ]);
        let repository = f.source.as_deref().map(github_repository);

        // Unlinking: a link verb undone, or automatic deploys stopped.
        if unlink_verb || (stop_verb && (auto || on_push)) {
            let repository = match repository {
                Some(Some(name)) => match RepositoryName::parse(&name) {
                    Ok(r) => Some(r),
                    Err(_) => return Some(Understanding::Reply(NOT_GITHUB.to_string())),
                },
                Some(None) => return Some(Understanding::Reply(NOT_GITHUB.to_string())),
                None => None,
            };
            let lead = match (&f.link_id, &repository) {
                (Some(id), _) => format!("Removing the link {id}."),
                (None, Some(r)) => format!("Removing the links of {r}."),
                (None, None) => "Removing the link.".to_string(),
            };
            return Some(calls(
                ToolCall::UnlinkRepository {
                    link_id: f.link_id.clone(),
                    repository: repository.filter(|_| f.link_id.is_none()),
                },
                Some(lead),
            ));
        }

        // Linking: a repository and a word for deploying it on every push.
        if f.source.is_some() && (auto || on_push || link_verb) {
            let Some(Some(name)) = repository else {
                return Some(Understanding::Reply(NOT_GITHUB.to_string()));
            };
            let Ok(repository) = RepositoryName::parse(&name) else {
                return Some(Understanding::Reply(NOT_GITHUB.to_string()));
            };
            let call = ToolCall::LinkRepository {
                repository: repository.clone(),
                branch: f.branch.clone(),
                service_name: f
                    .service_name
                    .as_deref()
                    .and_then(|s| ServiceName::parse(s).ok()),
                env: f.env.clone(),
            };
            let branch = f.branch.as_deref().unwrap_or("main");
            return Some(calls(
                call,
                Some(format!(
                    "Linking {repository}: every push to {branch} will deploy it."
                )),
            ));
        }

        // The links there are.
        let asks = matches!(
            self.lower(0),
            "what" | "whats" | "which" | "show" | "list" | "any" | "do" | "are" | "is" | "how"
        ) || self.any(&["show", "list", "any", "tell me"]);
        let link_nouns = self.any(&[
            "links",
            "linked",
            "linked repos",
            "linked repositories",
            "connected repos",
            "connected repositories",
            "hooked up",
        ]);
        if f.source.is_none() && (link_nouns || (asks && auto)) {
            return Some(calls(ToolCall::ListLinks, None));
        }
        if f.source.is_none() && (auto || (on_push && !self.stem("status"))) {
            return Some(Understanding::Reply(ASK_LINK.to_string()));
        }

        // Overriding a security-scan stop: said outright, or "anyway" with a go-ahead.
        let outright = self.any(&[
            "accept the risk",
            "accept the risks",
            "take the risk",
            "ill take the risk",
            "my risk",
            "ignore the findings",
            "ignore the finding",
            "ignore findings",
            "ignore the security",
            "ignore security",
            "ignore the warnings",
            "ignore the warning",
            "ignore the scan",
            "ignore the secret",
            "ignore the key",
            "override the scan",
            "override the security",
            "override the findings",
            "override the block",
            "allow the findings",
            "allow findings",
            "allow the finding",
            "allow_findings",
            "skip the security",
            "skip the scan",
            "skip security",
            "bypass the scan",
            "bypass the security",
            "despite the findings",
            "despite the warnings",
        ]);
        let hedged = self.any(&[
            "anyway",
            "anyways",
            "regardless",
            "false positive",
            "false positives",
            "false alarm",
            "false alarms",
            "its fine",
            "its safe",
            "its fake",
            "test key",
            "dummy key",
            "fake key",
        ]);
        let go = self.stem("deploy")
            || self.stem("redeploy")
            || self.any(&[
                "ship",
                "go ahead",
                "proceed",
                "do it",
                "continue",
                "go for it",
                "push it",
                "launch",
                "release",
                "try again",
                "retry",
                "again",
                "let it through",
                "let it go",
            ]);
        if outright || (hedged && go) {
            if let Some(source) = &f.source {
                let call = self.deploy_call(source, true);
                let lead = deploy_lead_in(&call);
                return Some(calls(call, Some(lead)));
            }
            let lead = if context.current.is_some() || f.deployment_id.is_some() {
                "Deploying it again with its security findings allowed, as you asked."
            } else {
                "Deploying again with the security findings allowed."
            };
            return Some(calls(
                ToolCall::Redeploy {
                    deployment_id: f.deployment_id.clone(),
                    allow_findings: true,
                },
                Some(lead.to_string()),
            ));
        }
        None
    }

    fn decide(self, context: &Context) -> Understanding {
        let id = self.found.deployment_id.clone();
        let f = &self.found;
        let in_progress = context.status().is_some_and(|s| !s.is_terminal());
        let failed = context.status() == Some(Status::Failed);

        if self.words.is_empty() {
            return Understanding::Reply(HELP.to_string());
        }
        if self.any(&["dont", "do not", "wait dont", "no dont"])
            && (self.has("dont") && self.text.trim_start().starts_with("dont")
                || self.text.trim_start().starts_with("do not"))
        {
            return Understanding::Reply(
                "Okay, I won't do anything. Tell me when you're ready.".to_string(),
            );
        }

        if let Some(understood) = self.links_and_findings(context) {
            return understood;
        }

        // "the deploy", "before deploying": the word, not the request.
        let deploy_not_asked = self.any(&[
            "the deploy",
            "my deploy",
            "this deploy",
            "that deploy",
            "last deploy",
            "before deploying",
            "before i deploy",
            "before we deploy",
            "before you deploy",
            "without deploying",
            "not deploy",
            "dont deploy",
        ]);
        let strong_deploy = (self.stem("deploy") && !self.stem("deployment") && !deploy_not_asked)
            || self.any(&["ship", "launch", "publish", "release", "go live", "host"]);
        let weak_deploy = self.any(&[
            "put", "push", "run", "get", "spin up", "stand up", "bring up", "start", "set up",
            "setup", "start up", "build", "serve", "make",
        ]);
        // "is github.com/x/y a django app?", "does acme/shop use postgres?": about a repository.
        let question = matches!(
            self.lower(0),
            "is" | "does" | "what" | "whats" | "which" | "how" | "do" | "can"
        ) && !self.has("can you")
            && f.source.is_some();
        let analyze_words = question
            || self.stem("analy")
            || self.any(&[
                "inspect",
                "scan",
                "framework",
                "frameworks",
                "language",
                "stack",
                "detect",
                "examine",
                "what kind",
                "what type",
                "what sort",
                "tell me about",
                "look at",
                "check out",
                "take a look",
                "review",
                "written in",
                "built with",
                "uses",
            ]);

        // Rollback before anything with "back" or a deploy verb in it.
        if self.any(&[
            "rollback",
            "roll back",
            "roll it back",
            "rolled back",
            "revert",
            "go back",
            "previous version",
            "previous revision",
            "last version",
            "last good",
            "undo",
            "switch back",
            "back to",
            "older version",
            "prior version",
            "earlier version",
        ]) {
            return calls(
                ToolCall::Rollback {
                    deployment_id: id,
                    revision: f.revision.clone(),
                },
                Some(match &f.revision {
                    Some(r) => format!("Rolling back to {r}."),
                    None => "Rolling back to the previous revision.".to_string(),
                }),
            );
        }

        let abort_words = self.any(&[
            "abort",
            "cancel",
            "never mind",
            "nevermind",
            "kill the build",
            "stop the build",
            "stop building",
            "stop deploying",
            "stop the deploy",
            "halt",
            "scrap that",
            "forget it",
            "call it off",
            "forget that",
        ]) || self.stem("abort")
            || self.stem("cancel");
        let stop_words = self.any(&[
            "stop",
            "take it down",
            "take down",
            "take it offline",
            "shut it down",
            "shut down",
            "shutdown",
            "turn it off",
            "turn off",
            "tear it down",
            "tear down",
            "bring it down",
            "kill it",
            "kill the app",
            "kill the service",
            "delete the app",
            "delete the service",
            "delete the deployment",
            "delete it",
            "remove the app",
            "remove the service",
            "remove the deployment",
            "remove it",
            "offline",
            "destroy",
            "pause",
            "unpublish",
            "stop serving",
            "disable",
        ]);
        if abort_words || (stop_words && in_progress) {
            return calls(
                ToolCall::AbortDeployment { deployment_id: id },
                Some("Aborting the deployment.".to_string()),
            );
        }

        // Removing variables: a remove verb and names to remove.
        let unset_verb = self.any(&[
            "unset",
            "remove",
            "delete",
            "drop",
            "get rid of",
            "clear",
            "take out",
            "take away",
            "erase",
            "strip",
            "rm",
        ]);
        if unset_verb && !f.bare_names.is_empty() && f.env.is_empty() {
            return calls(
                ToolCall::UnsetEnvVars {
                    deployment_id: id,
                    names: f.bare_names.clone(),
                },
                Some(format!("Removing {}.", join_names(&f.bare_names))),
            );
        }
        if stop_words {
            return calls(
                ToolCall::StopDeployment { deployment_id: id },
                Some("Stopping the service.".to_string()),
            );
        }
        if unset_verb && self.any(&["variable", "variables", "var", "vars", "env"]) {
            return Understanding::Reply(
                "Which variables should I remove? For example: \"unset DEBUG\".".to_string(),
            );
        }

        let redeploy_words = self.any(&[
            "redeploy",
            "another go",
            "another try",
            "another shot",
            "go again",
            "deploy again",
            "deploy it again",
            "again",
            "retry",
            "try again",
            "restart",
            "rebuild",
            "rerun",
            "re run",
            "one more time",
            "once more",
            "reship",
            "relaunch",
            "refresh",
            "reboot",
            "bounce",
        ]);
        let has_env = !f.env.is_empty() || !f.secret.is_empty();

        // A source and a deploy verb (or a source alone): deploy it, with what was said.
        if let Some(source) = &f.source
            && (strong_deploy || !analyze_words)
        {
            let call = self.deploy_call(source, false);
            let lead = deploy_lead_in(&call);
            return calls(call, Some(lead));
        }
        if let Some(source) = &f.source {
            return calls(
                ToolCall::AnalyzeRepository {
                    source: source.clone(),
                    branch: f.branch.clone(),
                },
                Some(format!("Analyzing {source}.")),
            );
        }

        // Setting variables on the current deployment.
        if has_env {
            let mut secret = f.secret.clone();
            secret.retain(|n| f.env.contains_key(n) || !f.bare_names.contains(n));
            let names: Vec<String> = f
                .env
                .keys()
                .cloned()
                .chain(secret.iter().filter(|n| !f.env.contains_key(*n)).cloned())
                .collect();
            return calls(
                ToolCall::SetEnvVars {
                    deployment_id: id,
                    env: f.env.clone(),
                    secret,
                },
                Some(format!("Setting {} and redeploying.", join_names(&names))),
            );
        }
        if !f.bare_names.is_empty()
            && self.any(&["set", "change", "update", "add", "configure", "make", "put"])
        {
            let name = &f.bare_names[0];
            return Understanding::Reply(format!(
                "What value should {name} have? Say, for example, \"set {name}=value\"."
            ));
        }

        // Diagnosis questions before "fix": "how do I fix it?" asks, "fix it" acts.
        let asks_how = self.any(&[
            "how do i fix",
            "how can i fix",
            "how to fix",
            "how should i fix",
            "how would i fix",
            "how do we fix",
            "how can we fix",
            "what should i do",
            "what do i do",
        ]);
        let why = asks_how
            || self.any(&[
                "why",
                "what went wrong",
                "whats wrong",
                "what is wrong",
                "what was wrong",
                "what happened",
                "whats the problem",
                "what is the problem",
                "whats the issue",
                "what is the issue",
                "root cause",
                "diagnose",
                "diagnosis",
                "explain",
                "wrong with",
            ]);
        if why && !self.has("logs") && !self.has("log") {
            return calls(
                ToolCall::DiagnoseFailure { deployment_id: id },
                Some("Looking into what went wrong.".to_string()),
            );
        }
        let fix_words = self.any(&[
            "fix",
            "fix it",
            "apply",
            "repair",
            "patch",
            "fix that",
            "correct it",
            "sort it out",
            "resolve",
            "make it work",
        ]) || (failed
            && self.any(&[
                "yes",
                "yeah",
                "yep",
                "sure",
                "ok",
                "okay",
                "go ahead",
                "do it",
                "please do",
                "sounds good",
            ]));
        if fix_words && !self.has("logs") {
            return calls(
                ToolCall::ApplyFix {
                    deployment_id: id,
                    fix: f.fix.clone(),
                },
                Some("Applying the fix and redeploying.".to_string()),
            );
        }
        if why {
            return calls(
                ToolCall::DiagnoseFailure { deployment_id: id },
                Some("Looking into what went wrong.".to_string()),
            );
        }

        if self.any(&[
            "log",
            "logs",
            "tail",
            "output",
            "stdout",
            "stderr",
            "console",
            "printed",
            "prints",
            "print",
            "logging",
            "journal",
            "trace",
            "traceback",
            "stack trace",
        ]) {
            return calls(
                ToolCall::GetLogs { deployment_id: id },
                Some("Here are the latest logs.".to_string()),
            );
        }
        if self.any(&[
            "fail",
            "failed",
            "failing",
            "failure",
            "fails",
            "crash",
            "crashed",
            "crashing",
            "broken",
            "broke",
            "error",
            "errors",
            "not working",
            "doesnt work",
            "didnt work",
            "isnt working",
            "wont start",
            "bug",
            "issue",
            "problem",
            "500",
            "502",
            "503",
        ]) {
            return calls(
                ToolCall::DiagnoseFailure { deployment_id: id },
                Some("Looking into what went wrong.".to_string()),
            );
        }

        if redeploy_words {
            return calls(
                ToolCall::Redeploy {
                    deployment_id: id,
                    allow_findings: false,
                },
                Some("Deploying it again.".to_string()),
            );
        }

        if analyze_words && !self.any(&["is it", "status"]) {
            return Understanding::Reply(
                "Which repository should I analyze? Give me its URL, like github.com/acme/shop."
                    .to_string(),
            );
        }

        // List before status: "what's running" lists, "is it running" asks about one.
        if self.any(&[
            "list",
            "ls",
            "deployments",
            "whats running",
            "what is running",
            "whats deployed",
            "what is deployed",
            "what do i have",
            "what have i deployed",
            "what did i deploy",
            "my apps",
            "my services",
            "all apps",
            "all services",
            "all my",
            "everything",
            "which apps",
            "which services",
            "what apps",
            "what services",
            "show all",
            "what is live",
            "whats live",
            "whats up and running",
            "inventory",
        ]) {
            return calls(ToolCall::ListDeployments, None);
        }

        if strong_deploy || (weak_deploy && self.any(&["cloud run", "cloudrun", "online", "live"]))
        {
            if context.current.is_some() && self.any(&["it", "this", "that", "same"]) {
                return calls(
                    ToolCall::Redeploy {
                        deployment_id: id,
                        allow_findings: false,
                    },
                    Some("Deploying it again.".to_string()),
                );
            }
            return Understanding::Reply(ASK_SOURCE.to_string());
        }

        if id.is_some()
            || self.stem("status")
            || self.any(&[
                "is it up",
                "is my site",
                "is my app",
                "is the site",
                "is the app",
                "is my service",
                "is the service",
                "up yet",
                "is it live",
                "live yet",
                "is it ready",
                "ready yet",
                "is it done",
                "done yet",
                "is it deployed",
                "deployed yet",
                "is it running",
                "is it working",
                "is it online",
                "is it finished",
                "finished yet",
                "progress",
                "how is it going",
                "hows it going",
                "how is it doing",
                "hows it doing",
                "hows the deploy",
                "how is the deploy",
                "hows the deployment",
                "how is the deployment",
                "hows my app",
                "how is my app",
                "url",
                "link",
                "address",
                "where is it",
                "wheres it",
                "where can i see",
                "did it work",
                "did it deploy",
                "state",
                "check on",
                "how far",
                "still building",
                "eta",
                "update me",
                "any news",
                "any update",
                "is it there",
                "done",
                "ready",
                "live",
                "stats",
                "health",
                "healthy",
                "alive",
                "whats happening",
                "whats going on",
                "what is happening",
                "where are we",
                "is it still",
            ])
        {
            return calls(ToolCall::GetDeploymentStatus { deployment_id: id }, None);
        }

        if self.any(&[
            "help",
            "what can you do",
            "what do you do",
            "how does this work",
            "commands",
            "options",
            "capabilities",
            "who are you",
            "what are you",
        ]) {
            return Understanding::Reply(HELP.to_string());
        }
        if self.any(&[
            "hi",
            "hello",
            "hey",
            "howdy",
            "yo",
            "hiya",
            "good morning",
            "good afternoon",
            "good evening",
            "greetings",
            "sup",
        ]) {
            return Understanding::Reply(GREETING.to_string());
        }
        if self.any(&[
            "thanks",
            "thank you",
            "thx",
            "ty",
            "cheers",
            "great",
            "awesome",
            "nice",
            "perfect",
            "cool",
        ]) {
            return Understanding::Reply(
                "You're welcome! Tell me what you'd like to do next.".to_string(),
            );
        }
        Understanding::Reply(FALLBACK.to_string())
    }
}

fn calls(call: ToolCall, lead_in: Option<String>) -> Understanding {
    Understanding::Calls {
        calls: vec![call],
        lead_in,
    }
}

const ASK_SOURCE: &str = "Which repository should I deploy? Give me its URL (like \
    github.com/acme/shop), owner/repo, or a local path (like ./my-app).";

const ASK_LINK: &str = "Which GitHub repository should deploy on every push? Say, for example, \
    \"auto-deploy acme/shop from main\".";

const NOT_GITHUB: &str = "I can link GitHub repositories only (pushes come from GitHub's \
    webhook): name one as owner/name or github.com/owner/name.";

const GREETING: &str = "Hi! I deploy repositories: say \"deploy github.com/owner/repo\" and I'll \
    analyze, build and run it. I can also show status and logs, set environment variables, roll \
    back, and explain a failure.";

const HELP: &str = "I can deploy a repository (\"deploy github.com/acme/shop from the staging \
    branch\"), show its status or logs, set or remove environment variables (\"set \
    LOG_LEVEL=debug\"), redeploy, roll back, abort or stop it, analyze a repository without \
    deploying it, explain why a deployment failed and fix it, and deploy a GitHub repository on \
    every push (\"auto-deploy acme/shop from main\").";

const FALLBACK: &str = "I'm not sure what you'd like me to do. I can deploy a repository \
    (\"deploy github.com/acme/shop\"), show status or logs, set environment variables, redeploy, \
    roll back, stop a service, or explain a failure. What would you like?";

/// "A", "A and B", "A, B and C".
fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn deploy_lead_in(call: &ToolCall) -> String {
    let ToolCall::DeployRepository {
        source,
        branch,
        subdir,
        service_name,
        env,
        secret,
        allow_findings,
    } = call
    else {
        return String::new();
    };
    let mut s = format!("Deploying {source}");
    if let Some(b) = branch {
        s.push_str(&format!(" from the {b} branch"));
    }
    if let Some(d) = subdir {
        s.push_str(&format!(" (folder {d})"));
    }
    if let Some(n) = service_name {
        s.push_str(&format!(" as {n}"));
    }
    let mut names: Vec<String> = env
        .keys()
        .map(|k| {
            if secret.contains(k) {
                format!("{k} (secret)")
            } else {
                k.clone()
            }
        })
        .collect();
    names.extend(
        secret
            .iter()
            .filter(|n| !env.contains_key(*n))
            .map(|n| format!("{n} (secret, the stored value)")),
    );
    if !names.is_empty() {
        s.push_str(&format!(" with {}", join_names(&names)));
    }
    if *allow_findings {
        s.push_str(", allowing its high-severity security findings as you asked");
    }
    s.push('.');
    s
}

// ---------------------------------------------------------------------------------------------
// Replies to results

/// One deployment in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSummary {
    pub id: DeploymentId,
    pub service_name: String,
    pub status: Status,
    pub url: Option<String>,
}

/// One repository link, as a reply shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSummary {
    pub id: LinkId,
    pub repository: String,
    pub branch: String,
    pub service_name: String,
}

/// What a tool call came to, as the caller saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutcome {
    /// Work started: a new deployment (deploy, redeploy, env change, rollback, fix) is on its way.
    Started {
        deployment_id: DeploymentId,
    },
    /// A deployment's state (status, or the end of a deployment the caller waited for).
    Status {
        deployment_id: DeploymentId,
        status: Status,
        url: Option<String>,
        /// Why it failed, when it did.
        error: Option<String>,
    },
    Deployments(Vec<DeploymentSummary>),
    Logs {
        deployment_id: DeploymentId,
        lines: Vec<String>,
    },
    /// Abort, stop, set or unset done; the call says which.
    Done {
        deployment_id: DeploymentId,
    },
    RolledBack {
        deployment_id: DeploymentId,
        revision: String,
    },
    Analysis {
        summary: String,
    },
    Diagnosis {
        cause: String,
        fix: Option<String>,
    },
    FixApplied {
        deployment_id: DeploymentId,
        change: String,
    },
    /// A repository was linked; `webhook_url` is where GitHub must send its pushes (`None`
    /// when this server takes no GitHub webhooks).
    Linked {
        link: LinkSummary,
        webhook_url: Option<String>,
    },
    Links(Vec<LinkSummary>),
    /// The links that were removed.
    Unlinked(Vec<LinkSummary>),
    /// No link of the caller's is the one named (a link id, or a repository).
    LinkNotFound {
        what: String,
    },
    /// The call needs a deployment and the session has none (and the call named none).
    NoDeployment,
    NotFound {
        deployment_id: DeploymentId,
    },
    /// The call was refused or failed; the message is the app's.
    Error {
        message: String,
    },
}

/// How many log lines a reply shows.
const LOG_LINES_SHOWN: usize = 20;

/// A sentence (or a few) telling the user what a call did. Never holds an environment value.
pub fn reply_for(call: &ToolCall, outcome: &ToolOutcome) -> String {
    let reply = reply_text(call, outcome);
    redact(call, reply)
}

fn reply_text(call: &ToolCall, outcome: &ToolOutcome) -> String {
    match outcome {
        ToolOutcome::NoDeployment => "Which deployment do you mean? This session has none yet: \
            deploy a repository first, or name one by its id (\"list my deployments\" shows \
            them)."
            .to_string(),
        ToolOutcome::NotFound { deployment_id } => format!(
            "I can't find a deployment {deployment_id}. \"list my deployments\" shows the ones \
             there are."
        ),
        ToolOutcome::Error { message } => format!("That didn't work: {message}"),
        ToolOutcome::Linked { link, webhook_url } => linked_reply(link, webhook_url.as_deref()),
        ToolOutcome::Links(links) => {
            if links.is_empty() {
                return "No repositories are linked. Say \"auto-deploy acme/shop from main\" to \
                        deploy one on every push."
                    .to_string();
            }
            let mut s = format!(
                "{} linked repositor{}:",
                links.len(),
                if links.len() == 1 { "y" } else { "ies" }
            );
            for l in links {
                s.push_str(&format!(
                    "\n- {} (branch {}) deploys the service {} [{}]",
                    l.repository, l.branch, l.service_name, l.id
                ));
            }
            s
        }
        ToolOutcome::Unlinked(links) => {
            let mut s = String::new();
            for l in links {
                s.push_str(&format!(
                    "Removed the link {} of {} (branch {}, service {}): pushes to {} no longer \
                     deploy it.\n",
                    l.id, l.repository, l.branch, l.service_name, l.branch
                ));
            }
            s.push_str(
                "Deployments it already made keep running; the webhook in GitHub can be deleted \
                 too.",
            );
            s
        }
        ToolOutcome::LinkNotFound { what } => {
            format!("I can't find a link {what}. \"What repos are linked?\" lists yours.")
        }
        ToolOutcome::Started { deployment_id } => match call {
            ToolCall::DeployRepository {
                source,
                allow_findings: true,
                ..
            } => format!(
                "Deploying {source} as {deployment_id}, with high-severity security findings \
                 allowed (your choice, recorded on the deployment). I'll tell you when it's live."
            ),
            ToolCall::DeployRepository { source, .. } => {
                format!("Deploying {source} as {deployment_id}. I'll tell you when it's live.")
            }
            ToolCall::Redeploy {
                allow_findings: true,
                ..
            } => format!(
                "Redeploying as {deployment_id} with the high-severity security findings \
                 allowed: they no longer stop it (your choice, recorded on the deployment). \
                 I'll tell you when it's live."
            ),
            ToolCall::SetEnvVars { env, secret, .. } => {
                let names = env_names(env, secret);
                format!(
                    "Set {} ({}); redeploying as {deployment_id}.",
                    join_names(&names),
                    if names.len() == 1 {
                        "name only shown"
                    } else {
                        "names only shown"
                    }
                )
            }
            ToolCall::UnsetEnvVars { names, .. } => format!(
                "Removed {}; redeploying without {} as {deployment_id}.",
                join_names(names),
                if names.len() == 1 { "it" } else { "them" }
            ),
            ToolCall::Rollback { revision, .. } => match revision {
                Some(r) => format!("Rolling back to {r} as {deployment_id}."),
                None => format!("Rolling back to the previous revision as {deployment_id}."),
            },
            ToolCall::ApplyFix { .. } => {
                format!("Applied the fix; redeploying as {deployment_id}.")
            }
            _ => format!("Redeploying as {deployment_id}. I'll tell you when it's live."),
        },
        ToolOutcome::Status {
            deployment_id,
            status,
            url,
            error,
        } => match status {
            Status::Live => match url {
                Some(url) => format!("{deployment_id} is live at {url}"),
                None => format!("{deployment_id} is live."),
            },
            Status::Failed => match error {
                Some(e) => format!(
                    "{deployment_id} failed: {e}. Ask \"why did it fail?\" for a diagnosis and \
                     a fix."
                ),
                None => format!(
                    "{deployment_id} failed. Ask \"why did it fail?\" for a diagnosis and a fix."
                ),
            },
            Status::Aborted => format!("{deployment_id} was aborted."),
            Status::Stopped => {
                format!("{deployment_id} is stopped; say \"redeploy\" to bring it back.")
            }
            Status::Queued => format!("{deployment_id} is queued and will start shortly."),
            in_progress => format!("{deployment_id} is {in_progress}…"),
        },
        ToolOutcome::Deployments(list) => {
            if list.is_empty() {
                return "There are no deployments yet. Say \"deploy github.com/owner/repo\" to \
                        start one."
                    .to_string();
            }
            let mut s = format!(
                "{} deployment{}:",
                list.len(),
                if list.len() == 1 { "" } else { "s" }
            );
            for d in list {
                s.push_str(&format!("\n- {} {} {}", d.id, d.service_name, d.status));
                if let Some(url) = &d.url {
                    s.push_str(&format!(" {url}"));
                }
            }
            s
        }
        ToolOutcome::Logs {
            deployment_id,
            lines,
        } => {
            if lines.is_empty() {
                return format!("{deployment_id} has no log lines yet.");
            }
            let shown = &lines[lines.len().saturating_sub(LOG_LINES_SHOWN)..];
            format!(
                "The last {} log line{} of {deployment_id}:\n{}",
                shown.len(),
                if shown.len() == 1 { "" } else { "s" },
                shown.join("\n")
            )
        }
        ToolOutcome::Done { deployment_id } => match call {
            ToolCall::AbortDeployment { .. } => format!("Aborted {deployment_id}."),
            ToolCall::StopDeployment { .. } => format!(
                "Stopped {deployment_id}: it no longer answers at its URL. Say \"redeploy\" to \
                 bring it back."
            ),
            ToolCall::SetEnvVars { env, secret, .. } => format!(
                "Set {} on {deployment_id}.",
                join_names(&env_names(env, secret))
            ),
            ToolCall::UnsetEnvVars { names, .. } => {
                format!("Removed {} from {deployment_id}.", join_names(names))
            }
            other => format!("Done: {} on {deployment_id}.", other.name()),
        },
        ToolOutcome::RolledBack {
            deployment_id,
            revision,
        } => format!("Rolled {deployment_id} back to revision {revision}."),
        ToolOutcome::Analysis { summary } => summary.clone(),
        ToolOutcome::Diagnosis { cause, fix } => match fix {
            Some(fix) => format!("{cause} Suggested fix: {fix} Say \"apply the fix\" to do it."),
            None => cause.clone(),
        },
        ToolOutcome::FixApplied {
            deployment_id,
            change,
        } => format!("Fixed: {change} Redeploying as {deployment_id}."),
    }
}

fn linked_reply(link: &LinkSummary, webhook_url: Option<&str>) -> String {
    let LinkSummary {
        id,
        repository,
        branch,
        service_name,
    } = link;
    let mut s = format!(
        "Linked {repository} (branch {branch}) to the service {service_name} as {id}: every \
         push to {branch} deploys it, and pull requests against {branch} get previews."
    );
    match webhook_url {
        Some(url) => s.push_str(&format!(
            " In GitHub, add a webhook to {repository} (Settings → Webhooks → Add webhook) with \
             the payload URL {url}, content type application/json, this server's \
             GITHUB_WEBHOOK_SECRET as its secret, and the push and pull request events."
        )),
        None => s.push_str(
            " This server takes no GitHub webhooks yet: its operator sets \
             GITHUB_WEBHOOK_SECRET, then a webhook in GitHub points at this server's \
             /webhooks/github.",
        ),
    }
    s
}

/// Names with the secret ones marked.
fn env_names(env: &BTreeMap<String, String>, secret: &[String]) -> Vec<String> {
    let mut names: Vec<String> = env
        .keys()
        .map(|k| {
            if secret.contains(k) {
                format!("{k} (secret)")
            } else {
                k.clone()
            }
        })
        .collect();
    names.extend(
        secret
            .iter()
            .filter(|n| !env.contains_key(*n))
            .map(|n| format!("{n} (secret)")),
    );
    names
}

/// Replaces any value of the call's secret variables that a caller-written text (an error, a
/// log line) carries.
fn redact(call: &ToolCall, mut reply: String) -> String {
    let (env, secret) = match call {
        ToolCall::DeployRepository { env, secret, .. }
        | ToolCall::SetEnvVars { env, secret, .. } => (env, secret.as_slice()),
        ToolCall::LinkRepository { env, .. } => (env, &[][..]),
        _ => return reply,
    };
    for (name, value) in env {
        let sensitive = secret.contains(name) || is_secret_name(name);
        if sensitive && value.len() >= 3 && reply.contains(value.as_str()) {
            reply = reply.replace(value.as_str(), "***");
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_transpositions_as_one() {
        assert_eq!(edit_distance("deplyo", "deploy"), 1);
        assert_eq!(edit_distance("stauts", "status"), 1);
        assert_eq!(edit_distance("rollbak", "rollback"), 1);
        assert_eq!(normalize("about"), "about");
        assert_eq!(normalize("Deplyo"), "deploy");
        assert_eq!(normalize("What's"), "whats");
    }

    #[test]
    fn replies_never_show_a_secret_value() {
        let call = ToolCall::SetEnvVars {
            deployment_id: None,
            env: [("API_KEY".to_string(), "sk_live_123".to_string())].into(),
            secret: vec!["API_KEY".to_string()],
        };
        let id = DeploymentId::parse("d-0193abcd").unwrap();
        for outcome in [
            ToolOutcome::Started {
                deployment_id: id.clone(),
            },
            ToolOutcome::Done {
                deployment_id: id.clone(),
            },
            ToolOutcome::Error {
                message: "rejected value sk_live_123".to_string(),
            },
        ] {
            let reply = reply_for(&call, &outcome);
            assert!(!reply.contains("sk_live_123"), "{reply}");
            assert!(
                reply.contains("API_KEY") || reply.contains("***"),
                "{reply}"
            );
        }
    }

    #[test]
    fn results_read_as_sentences() {
        let id = DeploymentId::parse("d-0193abcd").unwrap();
        let status = |status, url: Option<&str>, error: Option<&str>| ToolOutcome::Status {
            deployment_id: id.clone(),
            status,
            url: url.map(str::to_string),
            error: error.map(str::to_string),
        };
        let get = ToolCall::GetDeploymentStatus {
            deployment_id: None,
        };
        assert_eq!(
            reply_for(
                &get,
                &status(Status::Live, Some("https://shop.run.app"), None)
            ),
            "d-0193abcd is live at https://shop.run.app"
        );
        let failed = reply_for(
            &get,
            &status(Status::Failed, None, Some("port 3000 never answered")),
        );
        assert!(
            failed.contains("failed: port 3000 never answered"),
            "{failed}"
        );
        assert!(failed.contains("why did it fail"), "{failed}");
        let abort = ToolCall::AbortDeployment {
            deployment_id: None,
        };
        assert_eq!(
            reply_for(
                &abort,
                &ToolOutcome::Done {
                    deployment_id: id.clone()
                }
            ),
            "Aborted d-0193abcd."
        );
        let rollback = ToolCall::Rollback {
            deployment_id: None,
            revision: None,
        };
        assert_eq!(
            reply_for(
                &rollback,
                &ToolOutcome::RolledBack {
                    deployment_id: id.clone(),
                    revision: "shop-00003-abc".to_string()
                }
            ),
            "Rolled d-0193abcd back to revision shop-00003-abc."
        );
        let none = reply_for(&abort, &ToolOutcome::NoDeployment);
        assert!(none.starts_with("Which deployment do you mean?"), "{none}");
    }
}
