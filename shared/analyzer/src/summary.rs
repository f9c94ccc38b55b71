//! The readable summary `devgem analyze PATH` prints without `--json`.

use crate::{Analysis, PackageManager, Template};
use std::fmt::Write;

pub fn summary(a: &Analysis) -> String {
    let mut o = String::new();
    if !a.is_recognized() {
        let _ = writeln!(o, "Nothing deployable recognised.");
    } else {
        let _ = writeln!(
            o,
            "{}{}  (confidence {:.0}%)",
            a.language_name(),
            a.framework
                .as_deref()
                .map(|f| format!(" / {f}"))
                .unwrap_or_default(),
            a.confidence * 100.0
        );
    }
    let row = |o: &mut String, k: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            let _ = writeln!(o, "  {k:<16} {v}");
        }
    };
    if a.details.app_dir != "." && !a.details.app_dir.is_empty() {
        row(&mut o, "app folder", Some(&a.details.app_dir));
    }
    let version = a.runtime_version.as_ref().map(|v| {
        format!(
            "{v}{}",
            a.details
                .runtime_version_source
                .as_deref()
                .map(|s| format!("  (from {s})"))
                .unwrap_or_default()
        )
    });
    row(&mut o, "runtime", version.as_deref());
    row(
        &mut o,
        "package manager",
        a.package_manager.map(PackageManager::as_str),
    );
    row(&mut o, "install", a.install_command.as_deref());
    row(&mut o, "build", a.build_command.as_deref());
    row(&mut o, "start", a.start_command.as_deref());
    row(&mut o, "entrypoint", a.entrypoint.as_deref());
    let port = format!(
        "{} on Cloud Run{}{}",
        a.deploy_port,
        a.dev_port
            .map(|p| format!(", {p} in development"))
            .unwrap_or_default(),
        if a.reads_port_env {
            ", reads $PORT"
        } else {
            ""
        }
    );
    row(&mut o, "port", Some(&port));
    if !a.system_packages.is_empty() {
        row(
            &mut o,
            "system packages",
            Some(&a.system_packages.join(" ")),
        );
    }
    row(
        &mut o,
        "Dockerfile",
        a.details
            .existing_dockerfile
            .as_deref()
            .map(|d| format!("{d} (used as is)"))
            .as_deref()
            .or(a.details.template.map(Template::as_str)),
    );
    if !a.env_vars.is_empty() {
        let vars: Vec<String> = a
            .env_vars
            .iter()
            .map(|v| {
                format!(
                    "{}{}{}",
                    v.name,
                    if v.secret { " (secret)" } else { "" },
                    if v.required { " (required)" } else { "" }
                )
            })
            .collect();
        row(&mut o, "env vars", Some(&vars.join(", ")));
    }
    if let Some(p) = &a.details.port_issue {
        let _ = writeln!(
            o,
            "\n  ! {}:{}: {}\n    fix: {}",
            p.file, p.line, p.message, p.fix
        );
    }
    if !a.services.is_empty() {
        let _ = writeln!(o, "\nServices ({}):", a.services.len());
        for s in &a.services {
            let _ = writeln!(
                o,
                "  {:<24} {}{}  start: {}",
                s.path,
                s.analysis.language_name(),
                s.analysis
                    .framework
                    .as_deref()
                    .map(|f| format!(" / {f}"))
                    .unwrap_or_default(),
                s.analysis.start_command.as_deref().unwrap_or("-")
            );
        }
    }
    if !a.evidence.is_empty() {
        let _ = writeln!(o, "\nWhy:");
        for e in &a.evidence {
            let _ = writeln!(o, "  - {e}");
        }
    }
    if !a.candidates.is_empty() {
        let c: Vec<String> = a
            .candidates
            .iter()
            .map(|c| {
                format!(
                    "{}{} {:.2}",
                    c.language,
                    c.framework
                        .as_deref()
                        .map(|f| format!("/{f}"))
                        .unwrap_or_default(),
                    c.score
                )
            })
            .collect();
        let _ = writeln!(o, "\nRunners-up: {}", c.join(", "));
    }
    o
}
