//! Settings worth changing on a service that runs: memory, concurrency, minimum instances and
//! CPU, from what its first start showed (how long it took, what it logged) and from the
//! plan. The rules answer alone; a configured model may add its own, which are checked here
//! against the values Cloud Run accepts before anyone sees them.
//!
//! Pure: facts in, recommendations out.

use crate::mask_secrets;
use devgem_plan::{BuildPlan, Language};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// A start slower than this makes a warm instance worth its cost.
const SLOW_START: Duration = Duration::from_secs(8);
/// The JVM's heap, metaspace and threads need about this much to start reliably.
const JVM_MEMORY_MIB: u32 = 1024;
/// Cloud Run's bounds.
const MEMORY_MIB: (u32, u32) = (128, 32 * 1024);
const CONCURRENCY: (u32, u32) = (1, 1000);
const MAX_MIN_INSTANCES: u32 = 10;
/// The log lines a model is shown.
const LOG_LINES: usize = 40;

/// What is known about a service after its first start.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeFacts<'a> {
    pub plan: &'a BuildPlan,
    pub memory_mib: u32,
    pub cpu_millis: u32,
    pub min_instances: u32,
    /// From the deploy's start to the first answer.
    pub startup: Duration,
    /// The app's output, oldest first.
    pub log_lines: &'a [String],
}

/// One setting to change, and to what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    MemoryMib(u32),
    Concurrency(u32),
    MinInstances(u32),
}

impl Setting {
    fn kind(self) -> &'static str {
        match self {
            Setting::MemoryMib(_) => "memory",
            Setting::Concurrency(_) => "concurrency",
            Setting::MinInstances(_) => "min instances",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::MemoryMib(m) => write!(f, "memory {m} MiB"),
            Setting::Concurrency(c) => write!(f, "concurrency {c}"),
            Setting::MinInstances(n) => write!(f, "min instances {n}"),
        }
    }
}

/// Who recommends a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Rules,
    /// The model's name.
    Model(String),
}

/// A setting to change, why, and who says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    pub setting: Setting,
    pub reason: String,
    pub source: Source,
}

impl fmt::Display for Recommendation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.reason)?;
        if let Source::Model(name) = &self.source {
            write!(f, " (suggested by {name})")?;
        }
        Ok(())
    }
}

/// The rules' recommendations.
pub fn recommend(facts: &RuntimeFacts) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let mut add = |setting, reason: String| {
        out.push(Recommendation {
            setting,
            reason,
            source: Source::Rules,
        })
    };
    let oom = facts.log_lines.iter().any(|l| is_out_of_memory(l));
    if oom {
        add(
            Setting::MemoryMib(clamp_memory(facts.memory_mib.saturating_mul(2))),
            format!("the app ran out of memory in its {} MiB", facts.memory_mib),
        );
    } else if is_jvm(facts.plan.language) && facts.memory_mib < JVM_MEMORY_MIB {
        add(
            Setting::MemoryMib(JVM_MEMORY_MIB),
            format!(
                "a JVM app needs about {JVM_MEMORY_MIB} MiB for its heap, metaspace and threads; {} MiB risks being killed under load",
                facts.memory_mib
            ),
        );
    }
    if facts.startup >= SLOW_START && facts.min_instances == 0 {
        add(
            Setting::MinInstances(1),
            format!(
                "it took {:.1} s to answer after starting; with no warm instance, the first request after an idle spell waits that long (one warm instance is billed while idle)",
                facts.startup.as_secs_f32()
            ),
        );
    }
    if let Some(workers) = sync_workers(&facts.plan.start_command) {
        add(
            Setting::Concurrency(workers),
            format!(
                "gunicorn's sync workers serve one request each ({workers} here); more concurrent requests queue inside the container while Cloud Run could start another instance"
            ),
        );
    }
    out
}

fn is_jvm(language: Language) -> bool {
    // Kotlin and Scala apps are planned as Java (they build to a jar).
    language == Language::Java
}

fn is_out_of_memory(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.contains("out of memory")
        || l.contains("memoryerror")
        || l.contains("outofmemoryerror")
        || l.contains("memory limit of")
        || l.contains("oomkilled")
}

/// The number of sync workers of a gunicorn start command (1 without `--workers`), or
/// `None` when it is not gunicorn with sync workers.
fn sync_workers(command: &str) -> Option<u32> {
    let words: Vec<&str> = command.split_whitespace().collect();
    if !words.iter().any(|w| w.ends_with("gunicorn")) {
        return None;
    }
    let threaded = words.iter().any(|w| {
        *w == "-k"
            || w.starts_with("--worker-class")
            || *w == "--threads"
            || w.starts_with("--threads=")
            || w.starts_with("-k")
    });
    if threaded {
        return None;
    }
    let mut workers = 1;
    for (i, w) in words.iter().enumerate() {
        let value = if *w == "-w" || *w == "--workers" {
            words.get(i + 1).copied()
        } else {
            w.strip_prefix("--workers=")
        };
        if let Some(n) = value.and_then(|v| v.parse::<u32>().ok()) {
            workers = n;
        }
    }
    Some(workers.clamp(CONCURRENCY.0, CONCURRENCY.1))
}

fn clamp_memory(mib: u32) -> u32 {
    mib.clamp(MEMORY_MIB.0, MEMORY_MIB.1)
}

/// What the model is asked.
pub const RECOMMEND_INSTRUCTIONS: &str = "You tune a service that just started on Google Cloud Run. From the facts and its log, \
answer with ONE JSON object and nothing else: {\"memory_mib\": number|null, \"concurrency\": \
number|null, \"min_instances\": number|null, \"reason\": string}. Set a field only to change it; \
leave it null when the current value is right.";

/// The facts as the model sees them (the log with secret-looking values masked).
pub fn recommend_brief(facts: &RuntimeFacts) -> String {
    let mut out = format!(
        "language: {}\nframework: {}\nstart command: {}\nmemory: {} MiB\ncpu: {} millicores\nmin instances: {}\nstartup: {:.1} s\nlog (last lines):\n",
        facts.plan.language,
        facts.plan.framework.as_deref().unwrap_or("none"),
        facts.plan.start_command,
        facts.memory_mib,
        facts.cpu_millis,
        facts.min_instances,
        facts.startup.as_secs_f32(),
    );
    let skip = facts.log_lines.len().saturating_sub(LOG_LINES);
    for line in &facts.log_lines[skip..] {
        out.push_str(&mask_secrets(line));
        out.push('\n');
    }
    out
}

#[derive(Debug, Default, Deserialize)]
struct ModelAnswer {
    #[serde(default)]
    memory_mib: Option<u32>,
    #[serde(default)]
    concurrency: Option<u32>,
    #[serde(default)]
    min_instances: Option<u32>,
    #[serde(default)]
    reason: Option<String>,
}

/// The model's recommendations from its text, each checked against Cloud Run's bounds and
/// the current values; an answer that is not the asked-for object yields an error.
pub fn model_recommendations(
    text: &str,
    model: &str,
    facts: &RuntimeFacts,
) -> Result<Vec<Recommendation>, String> {
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        return Err("the answer has no JSON object".into());
    };
    if end < start {
        return Err("the answer has no JSON object".into());
    }
    let answer: ModelAnswer = serde_json::from_str(&text[start..=end])
        .map_err(|e| format!("the answer is not a recommendation: {e}"))?;
    let reason: String = answer
        .reason
        .unwrap_or_default()
        .chars()
        .take(240)
        .collect();
    let reason = if reason.is_empty() {
        "no reason given".to_string()
    } else {
        reason
    };
    let mut out = Vec::new();
    let mut add = |setting| {
        out.push(Recommendation {
            setting,
            reason: reason.clone(),
            source: Source::Model(model.to_string()),
        })
    };
    if let Some(m) = answer.memory_mib
        && m != facts.memory_mib
        && (MEMORY_MIB.0..=MEMORY_MIB.1).contains(&m)
    {
        add(Setting::MemoryMib(m));
    }
    if let Some(c) = answer.concurrency
        && (CONCURRENCY.0..=CONCURRENCY.1).contains(&c)
    {
        add(Setting::Concurrency(c));
    }
    if let Some(n) = answer.min_instances
        && n != facts.min_instances
        && n <= MAX_MIN_INSTANCES
    {
        add(Setting::MinInstances(n));
    }
    Ok(out)
}

/// The rules' recommendations with the model's: for each setting the model names, its
/// value replaces the rules' one.
pub fn merge(rules: Vec<Recommendation>, model: Vec<Recommendation>) -> Vec<Recommendation> {
    let mut out: Vec<Recommendation> = rules
        .into_iter()
        .filter(|r| !model.iter().any(|m| m.setting.kind() == r.setting.kind()))
        .collect();
    out.extend(model);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_plan::Template;

    fn plan(language: Language, start: &str) -> BuildPlan {
        BuildPlan::new(language, Template::Python, start)
    }

    fn facts<'a>(plan: &'a BuildPlan, startup_secs: u64, logs: &'a [String]) -> RuntimeFacts<'a> {
        RuntimeFacts {
            plan,
            memory_mib: 512,
            cpu_millis: 1000,
            min_instances: 0,
            startup: Duration::from_secs(startup_secs),
            log_lines: logs,
        }
    }

    #[test]
    fn a_quick_small_app_needs_nothing() {
        let p = plan(Language::Node, "node server.js");
        assert!(recommend(&facts(&p, 1, &[])).is_empty());
    }

    #[test]
    fn a_slow_start_wants_a_warm_instance_and_a_jvm_wants_memory() {
        let p = plan(Language::Java, "java -jar app.jar");
        let r = recommend(&facts(&p, 12, &[]));
        let settings: Vec<Setting> = r.iter().map(|r| r.setting).collect();
        assert_eq!(
            settings,
            [Setting::MemoryMib(1024), Setting::MinInstances(1)]
        );
        assert!(r[1].reason.contains("12.0 s"), "{}", r[1]);
    }

    #[test]
    fn running_out_of_memory_doubles_it() {
        let p = plan(Language::Node, "node server.js");
        let logs = [
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
                .to_string(),
        ];
        let r = recommend(&facts(&p, 1, &logs));
        assert_eq!(r[0].setting, Setting::MemoryMib(1024));
    }

    #[test]
    fn gunicorn_sync_workers_bound_concurrency() {
        let p = plan(Language::Python, "gunicorn -w 3 -b 0.0.0.0:$PORT app:app");
        assert_eq!(
            recommend(&facts(&p, 1, &[]))[0].setting,
            Setting::Concurrency(3)
        );
        let threaded = plan(Language::Python, "gunicorn --threads 8 app:app");
        assert!(recommend(&facts(&threaded, 1, &[])).is_empty());
    }

    #[test]
    fn a_model_answer_is_bounded_and_wins_per_setting() {
        let p = plan(Language::Java, "java -jar app.jar");
        let f = facts(&p, 12, &[]);
        let model = model_recommendations(
            "{\"memory_mib\": 2048, \"concurrency\": 5000, \"min_instances\": 99, \"reason\": \"Spring Boot with Hibernate\"}",
            "gemini-2.5-flash",
            &f,
        )
        .unwrap();
        assert_eq!(model.len(), 1, "{model:?}");
        let all = merge(recommend(&f), model);
        let settings: Vec<Setting> = all.iter().map(|r| r.setting).collect();
        assert_eq!(
            settings,
            [Setting::MinInstances(1), Setting::MemoryMib(2048)]
        );
        assert_eq!(
            all[1].to_string(),
            "memory 2048 MiB: Spring Boot with Hibernate (suggested by gemini-2.5-flash)"
        );
        assert!(model_recommendations("looks fine", "m", &f).is_err());
    }

    #[test]
    fn the_brief_masks_secret_looking_log_lines() {
        let p = plan(Language::Node, "node server.js");
        let logs = ["connecting with password=hunter2secret".to_string()];
        let brief = recommend_brief(&facts(&p, 1, &logs));
        assert!(!brief.contains("hunter2secret"), "{brief}");
    }
}
