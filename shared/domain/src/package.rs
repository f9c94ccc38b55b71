//! Packages a user accepted adding (a fix from a diagnosis): a dependency for the app's
//! manifest and a Debian package for the image, each checked against its registry's naming
//! rules, so what is kept and later written into a manifest or a Dockerfile is never shell
//! text.

use crate::id::InvalidName;
use crate::id::checked_string;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Debian package name (`libgl1`, `libpq5`, `g++`): lowercase letters, digits, `+`, `-`
/// and `.`, at least two characters, starting with a letter or digit (Debian policy 5.6.1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DebianPackage(String);

impl DebianPackage {
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let err = |reason| InvalidName {
            what: "Debian package",
            value: value.chars().take(80).collect(),
            reason,
        };
        if value.len() < 2 || value.len() > 100 {
            return Err(err("must be 2 to 100 characters"));
        }
        if !value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return Err(err("must start with a lowercase letter or a digit"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
        {
            return Err(err("expected only a-z, 0-9, '+', '-' and '.'"));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_string!(DebianPackage);

/// The manifest a dependency is declared in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Manifest {
    /// A line of Python's `requirements.txt` (pip).
    RequirementsTxt,
    /// An entry of `"dependencies"` in Node's `package.json` (npm).
    PackageJson,
}

impl Manifest {
    /// The file's name in the app's folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Manifest::RequirementsTxt => "requirements.txt",
            Manifest::PackageJson => "package.json",
        }
    }
}

/// A dependency to declare: a registry name and, when the fix pins one, a version
/// constraint (`<3` for pip, `^4.18` for npm).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "DependencyFields")]
pub struct Dependency {
    manifest: Manifest,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

/// A stored dependency before its names are checked again.
#[derive(Deserialize)]
struct DependencyFields {
    manifest: Manifest,
    name: String,
    #[serde(default)]
    version: Option<String>,
}

impl TryFrom<DependencyFields> for Dependency {
    type Error = InvalidName;
    fn try_from(f: DependencyFields) -> Result<Self, Self::Error> {
        Dependency::new(f.manifest, &f.name, f.version.as_deref())
    }
}

impl Dependency {
    /// A dependency of `manifest` named `name`, optionally constrained to `version`.
    pub fn new(manifest: Manifest, name: &str, version: Option<&str>) -> Result<Self, InvalidName> {
        let version = version.map(str::trim).filter(|v| !v.is_empty());
        match manifest {
            Manifest::RequirementsTxt => {
                check_python_name(name)?;
                let version = version.map(|v| v.replace(' ', ""));
                if let Some(v) = &version {
                    check_python_constraint(v)?;
                }
                Ok(Self {
                    manifest,
                    name: name.to_string(),
                    version,
                })
            }
            Manifest::PackageJson => {
                check_npm_name(name)?;
                if let Some(v) = version {
                    check_npm_range(v)?;
                }
                Ok(Self {
                    manifest,
                    name: name.to_string(),
                    version: version.map(str::to_string),
                })
            }
        }
    }

    /// A requirement as pip writes it: `requests`, `werkzeug<3`, `flask>=2,<4`.
    pub fn python(requirement: &str) -> Result<Self, InvalidName> {
        let requirement = requirement.trim();
        let split = requirement
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
            .unwrap_or(requirement.len());
        let (name, rest) = requirement.split_at(split);
        Self::new(
            Manifest::RequirementsTxt,
            name,
            Some(rest).filter(|r| !r.trim().is_empty()),
        )
    }

    /// A package as npm names it on the command line: `express`, `express@^4`,
    /// `@aws-sdk/client-s3@3`.
    pub fn node(spec: &str) -> Result<Self, InvalidName> {
        let spec = spec.trim();
        let (name, version) = match spec.rfind('@') {
            Some(at) if at > 0 => (&spec[..at], Some(&spec[at + 1..])),
            _ => (spec, None),
        };
        Self::new(Manifest::PackageJson, name, version)
    }

    pub fn manifest(&self) -> Manifest {
        self.manifest
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The line of requirements.txt: the name and its constraint.
    pub fn requirement(&self) -> String {
        format!("{}{}", self.name, self.version.as_deref().unwrap_or(""))
    }

    /// The range package.json records: the constraint, or any version (`*`).
    pub fn npm_range(&self) -> &str {
        self.version.as_deref().unwrap_or("*")
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.manifest, &self.version) {
            (Manifest::PackageJson, Some(v)) => write!(f, "{}@{v}", self.name),
            _ => f.write_str(&self.requirement()),
        }
    }
}

fn invalid(what: &'static str, value: &str, reason: &'static str) -> InvalidName {
    InvalidName {
        what,
        value: value.chars().take(80).collect(),
        reason,
    }
}

/// A PyPI project name (PEP 508): letters, digits, `.`, `_` and `-`, starting and ending
/// with a letter or digit.
fn check_python_name(name: &str) -> Result<(), InvalidName> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "Python package",
            name,
            "expected 1 to 100 letters, digits, '.', '_' and '-', starting and ending with a letter or digit",
        ))
    }
}

/// A PEP 440 specifier list such as `<3`, `>=2.31,<3`, `==1.*`.
fn check_python_constraint(constraint: &str) -> Result<(), InvalidName> {
    const OPERATORS: &[&str] = &["===", "~=", "==", "!=", "<=", ">=", "<", ">"];
    let clause_ok = |clause: &str| {
        OPERATORS.iter().any(|op| {
            clause.strip_prefix(op).is_some_and(|v| {
                !v.is_empty()
                    && v.len() <= 40
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".*+!_-".contains(&b))
            })
        })
    };
    if constraint.len() <= 100 && constraint.split(',').all(clause_ok) {
        Ok(())
    } else {
        Err(invalid(
            "Python version constraint",
            constraint,
            "expected clauses such as '>=2.31' or '<3', separated by commas",
        ))
    }
}

/// An npm package name: lowercase, at most 214 characters, optionally `@scope/`, not
/// starting with `.` or `_`.
fn check_npm_name(name: &str) -> Result<(), InvalidName> {
    let part_ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with(['.', '_'])
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._~".contains(&b))
    };
    let ok = name.len() <= 214
        && match name.strip_prefix('@') {
            Some(scoped) => scoped
                .split_once('/')
                .is_some_and(|(scope, rest)| part_ok(scope) && part_ok(rest)),
            None => part_ok(name),
        };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "npm package",
            name,
            "expected lowercase letters, digits, '-', '.', '_' and '~', optionally under an @scope/",
        ))
    }
}

/// A semver range (`^4.18.2`, `>=1 <3`, `1.x || 2.x`) or a dist-tag (`latest`): never a URL,
/// a path or a git reference.
fn check_npm_range(range: &str) -> Result<(), InvalidName> {
    let ok = range.len() <= 64
        && !range.starts_with('-')
        && range
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".^~<>=*+|- ".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "npm version range",
            range,
            "expected a semver range such as '^4.18' or a tag such as 'latest'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_names_follow_policy_and_refuse_shell_text() {
        for ok in ["libgl1", "libpq5", "g++", "libglib2.0-0", "ffmpeg"] {
            assert!(DebianPackage::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Libgl1",
            "-rf",
            "libgl1; rm -rf /",
            "libgl1 curl",
            "$(id)",
            "lib`x`",
        ] {
            assert!(DebianPackage::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn python_requirements_split_into_a_name_and_a_checked_constraint() {
        let d = Dependency::python("requests").unwrap();
        assert_eq!((d.name(), d.version()), ("requests", None));
        assert_eq!(d.requirement(), "requests");
        let d = Dependency::python("werkzeug<3").unwrap();
        assert_eq!((d.name(), d.version()), ("werkzeug", Some("<3")));
        assert_eq!(
            Dependency::python("flask >= 2, <4").unwrap().requirement(),
            "flask>=2,<4"
        );
        assert!(Dependency::python("python-dotenv").is_ok());
        for bad in [
            "",
            "-r other.txt",
            "requests; os_name=='nt'",
            "requests && curl evil",
            "git+https://example.com/x.git",
            "requests\nflask",
            "requests<",
            "requests@1",
            "./local",
        ] {
            assert!(Dependency::python(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn npm_specs_split_at_the_version_and_keep_scopes() {
        let d = Dependency::node("ms").unwrap();
        assert_eq!((d.name(), d.npm_range()), ("ms", "*"));
        let d = Dependency::node("express@^4.18").unwrap();
        assert_eq!((d.name(), d.npm_range()), ("express", "^4.18"));
        let d = Dependency::node("@aws-sdk/client-s3@3").unwrap();
        assert_eq!((d.name(), d.version()), ("@aws-sdk/client-s3", Some("3")));
        assert_eq!(
            Dependency::node("@types/node").unwrap().name(),
            "@types/node"
        );
        for bad in [
            "",
            "Express",
            ".hidden",
            "_private",
            "@scope",
            "x@git+https://github.com/a/b",
            "x@file:../y",
            "x@$(id)",
            "a b",
            "x@-rf",
        ] {
            assert!(Dependency::node(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_stored_dependency_is_checked_again_when_read() {
        let d = Dependency::node("ms@2").unwrap();
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"manifest": "package_json", "name": "ms", "version": "2"})
        );
        assert_eq!(serde_json::from_value::<Dependency>(json).unwrap(), d);
        let tampered = serde_json::json!({"manifest": "requirements_txt", "name": "x; rm -rf /"});
        assert!(serde_json::from_value::<Dependency>(tampered).is_err());
        assert!(serde_json::from_value::<DebianPackage>(serde_json::json!("a b")).is_err());
    }
}
