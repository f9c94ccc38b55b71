//! The dependencies a user accepted (a fix), written into the checkout's manifest before it
//! is packed for the build: a line of requirements.txt or an entry of package.json's
//! `"dependencies"`. The text edits are pure; [`apply`] reads and writes the files.

use devgem_domain::{Dependency, Failure, Manifest, Step};
use std::path::Path;

/// What [`apply`] did for one dependency, in words for the user's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub message: String,
    /// Whether a file of the checkout changed.
    pub changed: bool,
}

/// Writes each dependency into its manifest in `app_dir`.
pub fn apply(app_dir: &Path, dependencies: &[Dependency]) -> Result<Vec<Applied>, Failure> {
    let mut applied = Vec::new();
    for dependency in dependencies {
        let file = dependency.manifest().file_name();
        let path = app_dir.join(file);
        let current = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(failure(format!("could not read {file}: {e}"), dependency)),
        };
        let next = match (dependency.manifest(), current) {
            (Manifest::RequirementsTxt, Some(text)) => add_requirement(&text, dependency),
            (Manifest::RequirementsTxt, None) => {
                if let Some(other) = PYTHON_MANIFESTS.iter().find(|m| app_dir.join(m).exists()) {
                    return Err(failure(
                        format!(
                            "the app declares its dependencies in {other}, not requirements.txt"
                        ),
                        dependency,
                    ));
                }
                add_requirement("", dependency)
            }
            (Manifest::PackageJson, Some(text)) => {
                add_npm_dependency(&text, dependency).map_err(|e| failure(e, dependency))?
            }
            (Manifest::PackageJson, None) => {
                return Err(failure(
                    "the app's folder has no package.json".to_string(),
                    dependency,
                ));
            }
        };
        let message = match next {
            Some(text) => {
                std::fs::write(&path, text)
                    .map_err(|e| failure(format!("could not write {file}: {e}"), dependency))?;
                format!("Added `{dependency}` to {file}, as you accepted")
            }
            None => format!("{file} already declares `{dependency}`, as you accepted"),
        };
        applied.push(Applied {
            changed: message.starts_with("Added"),
            message,
        });
    }
    Ok(applied)
}

/// Files that declare a Python app's dependencies instead of requirements.txt.
const PYTHON_MANIFESTS: &[&str] = &["pyproject.toml", "Pipfile", "setup.py", "setup.cfg"];

fn failure(reason: String, dependency: &Dependency) -> Failure {
    Failure::new(
        Step::RepositoryAccess,
        format!("the fix you accepted could not add `{dependency}`: {reason}"),
    )
    .with_hint(format!(
        "add `{dependency}` to the app's dependencies in the repository and deploy again"
    ))
}

/// A PyPI name as pip compares them (PEP 503): lowercase, runs of `-_.` as one `-`.
fn normalized(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if "-_.".contains(c) {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The project a requirements.txt line names, when it names one (not a comment or an option).
fn line_name(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
        return None;
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
        .unwrap_or(line.len());
    (end > 0).then(|| normalized(&line[..end]))
}

/// `text` with the dependency's requirement: a line naming the same project is replaced
/// (the accepted pin wins), else the requirement is appended. `None` when the exact line is
/// already there, or the project is and the fix names no version.
pub fn add_requirement(text: &str, dependency: &Dependency) -> Option<String> {
    let wanted = dependency.requirement();
    let name = normalized(dependency.name());
    let mut found = false;
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        if line_name(line).as_deref() == Some(name.as_str()) {
            if line.trim() == wanted || dependency.version().is_none() {
                return None;
            }
            if !found {
                lines.push(wanted.clone());
                found = true;
            }
        } else {
            lines.push(line.to_string());
        }
    }
    if !found {
        lines.push(wanted);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    Some(out)
}

/// `text` (a package.json) with the dependency in `"dependencies"` (and out of
/// `"devDependencies"`, which a production install skips). `None` when it is already there
/// with the same range; an error when the file is not a JSON object.
pub fn add_npm_dependency(text: &str, dependency: &Dependency) -> Result<Option<String>, String> {
    let mut manifest: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("package.json is not valid JSON: {e}"))?;
    let object = manifest
        .as_object_mut()
        .ok_or("package.json is not a JSON object")?;
    let name = dependency.name();
    let range = dependency.npm_range();
    let declared = object
        .get("dependencies")
        .and_then(|d| d.get(name))
        .and_then(|v| v.as_str());
    // Any version already declared satisfies a fix that names none.
    if declared == Some(range) || (declared.is_some() && dependency.version().is_none()) {
        return Ok(None);
    }
    if let Some(dev) = object
        .get_mut("devDependencies")
        .and_then(|d| d.as_object_mut())
    {
        dev.remove(name);
    }
    let dependencies = object
        .entry("dependencies")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    let dependencies = dependencies
        .as_object_mut()
        .ok_or("package.json's \"dependencies\" is not an object")?;
    dependencies.insert(name.to_string(), range.into());
    let mut out = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    out.push('\n');
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requirement_is_appended_once_and_a_pin_replaces_the_bare_name() {
        let requests = Dependency::python("requests").unwrap();
        assert_eq!(
            add_requirement("flask==3.0\n# web\n", &requests).unwrap(),
            "flask==3.0\n# web\nrequests\n"
        );
        assert_eq!(
            add_requirement("flask", &requests).unwrap(),
            "flask\nrequests\n"
        );
        assert_eq!(add_requirement("", &requests).unwrap(), "requests\n");
        assert_eq!(add_requirement("Requests>=2\n", &requests), None);
        assert_eq!(add_requirement("flask\nrequests\n", &requests), None);
        let pin = Dependency::python("werkzeug<3").unwrap();
        assert_eq!(
            add_requirement("flask\nWerkzeug>=2\ngunicorn\n", &pin).unwrap(),
            "flask\nwerkzeug<3\ngunicorn\n"
        );
        let dotted = Dependency::python("zope.interface>=5").unwrap();
        assert_eq!(
            add_requirement("zope_interface\n", &dotted).unwrap(),
            "zope.interface>=5\n"
        );
    }

    #[test]
    fn an_npm_dependency_goes_into_dependencies_out_of_dev_dependencies() {
        let ms = Dependency::node("ms").unwrap();
        let out = add_npm_dependency(r#"{"name":"a","scripts":{"start":"node s.js"}}"#, &ms)
            .unwrap()
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["dependencies"]["ms"], "*");
        assert_eq!(json["scripts"]["start"], "node s.js");

        let dev = r#"{"dependencies":{"express":"^4"},"devDependencies":{"ms":"^2"}}"#;
        let json: serde_json::Value =
            serde_json::from_str(&add_npm_dependency(dev, &ms).unwrap().unwrap()).unwrap();
        assert_eq!(json["dependencies"]["ms"], "*");
        assert_eq!(json["dependencies"]["express"], "^4");
        assert!(json["devDependencies"].get("ms").is_none());

        let declared = r#"{"dependencies":{"ms":"^2.1"}}"#;
        assert_eq!(add_npm_dependency(declared, &ms).unwrap(), None);
        let pin = Dependency::node("ms@2.0.0").unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&add_npm_dependency(declared, &pin).unwrap().unwrap()).unwrap();
        assert_eq!(json["dependencies"]["ms"], "2.0.0");

        assert!(add_npm_dependency("[1]", &ms).is_err());
        assert!(add_npm_dependency("{", &ms).is_err());
    }

    #[test]
    fn apply_writes_the_manifest_and_refuses_another_python_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package.json"), r#"{"name":"a"}"#).unwrap();
        let ms = Dependency::node("ms").unwrap();
        let done = apply(dir.path(), std::slice::from_ref(&ms)).unwrap();
        assert_eq!(
            done[0].message,
            "Added `ms` to package.json, as you accepted"
        );
        assert!(done[0].changed);
        let again = apply(dir.path(), &[ms]).unwrap();
        assert!(!again[0].changed, "{again:?}");

        let requests = Dependency::python("requests").unwrap();
        std::fs::write(dir.path().join("pyproject.toml"), "[project]\n").unwrap();
        let refused = apply(dir.path(), std::slice::from_ref(&requests)).unwrap_err();
        assert!(refused.reason.contains("pyproject.toml"), "{refused}");
        std::fs::remove_file(dir.path().join("pyproject.toml")).unwrap();
        apply(dir.path(), &[requests]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("requirements.txt")).unwrap(),
            "requests\n"
        );
    }
}
