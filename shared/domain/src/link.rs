//! A link from a GitHub repository and branch to a user's service: pushes to the branch
//! redeploy it, pull requests against it get previews. A link belongs to its user.

use crate::id::checked_string;
use crate::id::{InvalidName, ServiceName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest service name (Cloud Run's limit, as [`ServiceName::parse`] checks).
const SERVICE_NAME_MAX: usize = 49;

/// Identifies one link: `l-` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LinkId(String);

impl LinkId {
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(format!("l-{}", uuid.simple()))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let ok = value.starts_with("l-")
            && value.len() <= 64
            && value[2..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok && value.len() > 2 {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidName {
                what: "link id",
                value: value.chars().take(80).collect(),
                reason: "expected l- and up to 62 characters of a-z, 0-9 and '-'",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_string!(LinkId);

/// A repository's `owner/name` as GitHub spells it (compared without regard to case, as
/// GitHub does).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepositoryName(String);

impl RepositoryName {
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let value = value.trim();
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 100
                && !p.starts_with('.')
                && !p.starts_with('-')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        match value.split_once('/') {
            Some((owner, name)) if part_ok(owner) && part_ok(name) => Ok(Self(value.to_string())),
            _ => Err(InvalidName {
                what: "repository",
                value: value.chars().take(80).collect(),
                reason: "expected owner/name, such as acme/shop",
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `full_name` (from a webhook) names this repository.
    pub fn matches(&self, full_name: &str) -> bool {
        self.0.eq_ignore_ascii_case(full_name)
    }
}

checked_string!(RepositoryName);

/// A repository and branch linked to a service. Env values are in the secrets port; the link
/// keeps only their names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: LinkId,
    pub owner: String,
    pub repository: RepositoryName,
    pub branch: String,
    pub service_name: ServiceName,
    #[serde(default)]
    pub env_names: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Link {
    /// The service a pull request's preview runs as: `<service>-pr-<number>`, cut so it stays
    /// a valid service name.
    pub fn preview_service(&self, number: u64) -> ServiceName {
        let suffix = format!("-pr-{number}");
        let base = self.service_name.as_str();
        let keep = SERVICE_NAME_MAX
            .saturating_sub(suffix.len())
            .min(base.len());
        let base = base[..keep].trim_end_matches('-');
        ServiceName::derive_from(&format!("{base}{suffix}"))
    }

    /// Whether a push to `git_ref` (`refs/heads/...`) is for this link's branch.
    pub fn tracks(&self, git_ref: &str) -> bool {
        git_ref.strip_prefix("refs/heads/") == Some(self.branch.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(service: &str) -> Link {
        Link {
            id: LinkId::parse("l-1").unwrap(),
            owner: "local".into(),
            repository: RepositoryName::parse("acme/shop").unwrap(),
            branch: "main".into(),
            service_name: ServiceName::parse(service).unwrap(),
            env_names: vec![],
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn previews_get_their_own_valid_service_name() {
        assert_eq!(link("shop").preview_service(7).as_str(), "shop-pr-7");
        let long = "a".repeat(SERVICE_NAME_MAX);
        let name = link(&long).preview_service(12345);
        assert!(name.as_str().ends_with("-pr-12345"), "{name}");
        assert!(name.as_str().len() <= SERVICE_NAME_MAX);
    }

    #[test]
    fn a_link_tracks_only_its_branch_and_repository_names_are_checked() {
        let l = link("shop");
        assert!(l.tracks("refs/heads/main"));
        assert!(!l.tracks("refs/heads/main2"));
        assert!(!l.tracks("refs/tags/main"));
        assert!(l.repository.matches("Acme/Shop"));
        for bad in ["acme", "/shop", "acme/", "acme/sh op", "-x/y", "a/b/c"] {
            assert!(RepositoryName::parse(bad).is_err(), "{bad}");
        }
    }
}
