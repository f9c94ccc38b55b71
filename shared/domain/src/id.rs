//! Newtypes with one checked constructor each: once built, the value is known to be valid.

use serde::{Deserialize, Serialize};

/// The conversions every checked string newtype (`struct Name(String)` with a
/// `parse(&str) -> Result<Self, InvalidName>`) has: from a `String` through `parse` (so serde,
/// with `#[serde(try_from = "String", into = "String")]`, reads only valid values), back into
/// its `String`, and shown as the text itself.
macro_rules! checked_string {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = $crate::id::InvalidName;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}
pub(crate) use checked_string;

/// A name that failed validation, with the reason a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: {reason}")]
pub struct InvalidName {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// Identifies one deployment. Time-ordered (UUID v7) so listings sort by creation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeploymentId(String);

impl DeploymentId {
    /// The id of a UUID: `d-` and its 32 lowercase hex digits. Fresh ids come from the id
    /// source (UUID v7, so they sort by creation); the domain reads no clock or randomness.
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(format!("d-{}", uuid.simple()))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let ok = value.len() >= 3
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidName {
                what: "deployment id",
                value: value.chars().take(80).collect(),
                reason: "expected 3 to 64 characters of a-z, 0-9 and '-'",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The short form users see and type (`devgem logs d-0193...`).
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(14)]
    }
}

checked_string!(DeploymentId);

/// A Cloud Run service name: lowercase letters, digits and hyphens, starting with a letter,
/// not ending with a hyphen, at most 49 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceName(String);

impl ServiceName {
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let err = |reason| InvalidName {
            what: "service name",
            value: value.chars().take(80).collect(),
            reason,
        };
        if value.is_empty() || value.len() > 49 {
            return Err(err("must be 1 to 49 characters"));
        }
        if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(err("must start with a lowercase letter"));
        }
        if value.ends_with('-') {
            return Err(err("must not end with '-'"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err("may hold only a-z, 0-9 and '-'"));
        }
        Ok(Self(value.to_string()))
    }

    /// Derives a valid service name from anything (a repository name, a folder name).
    pub fn derive_from(raw: &str) -> Self {
        let mut name = String::new();
        for c in raw.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                name.push(c);
            } else if !name.ends_with('-') && !name.is_empty() {
                name.push('-');
            }
        }
        let mut name: String = name
            .trim_start_matches(|c: char| !c.is_ascii_lowercase())
            .chars()
            .take(49)
            .collect();
        while name.ends_with('-') {
            name.pop();
        }
        if name.is_empty() {
            name = "app".to_string();
        }
        Self(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_string!(ServiceName);

/// A Cloud Run region (`us-central1`, `europe-west1`): lowercase letters, digits and '-', in
/// at least two parts, at most 40 characters. Whether Google runs a region by that name only
/// Google can say; this is the shape `gcloud run deploy --region` accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let ok = !value.is_empty()
            && value.len() <= 40
            && value.split('-').count() >= 2
            && value.split('-').all(|part| !part.is_empty())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidName {
                what: "Cloud Run region",
                value: value.chars().take(80).collect(),
                reason: "use a region name such as us-central1 or europe-west1",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_string!(Region);

/// An environment variable name as POSIX shells and Cloud Run accept it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvVarName(String);

impl EnvVarName {
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let valid = !value.is_empty()
            && value.len() <= 256
            && !value.starts_with(|c: char| c.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(InvalidName {
                what: "environment variable name",
                value: value.chars().take(80).collect(),
                reason: "use letters, digits and '_', not starting with a digit",
            });
        }
        // Set by the platform (Cloud Run and the local runtime alike); a user's value would
        // be overwritten, or would break the probe that waits for `$PORT`.
        const RESERVED: &[&str] = &["PORT", "CLOUD_RUN_JOB", "CLOUD_RUN_EXECUTION"];
        if RESERVED.contains(&value)
            || value.starts_with("K_")
            || value.starts_with("CLOUD_RUN_TASK_")
        {
            return Err(InvalidName {
                what: "environment variable name",
                value: value.to_string(),
                reason: "PORT, K_* and CLOUD_RUN_* are set by Cloud Run itself",
            });
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_string!(EnvVarName);

/// A container image reference to push to or run: `registry/path/name[:tag]`, lowercase, as
/// Docker and Artifact Registry accept it (a digest is kept apart, in the artifact).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef(String);

impl ImageRef {
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let err = |reason| InvalidName {
            what: "image reference",
            value: value.chars().take(120).collect(),
            reason,
        };
        if value.is_empty() || value.len() > 255 {
            return Err(err("must be 1 to 255 characters"));
        }
        let (name, tag) = match value.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
            _ => (value, None),
        };
        let name_ok = !name.starts_with(['/', '.', '-'])
            && !name.ends_with('/')
            && !name.contains("//")
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
        if !name_ok {
            return Err(err("use lowercase letters, digits, '.', '_', '-' and '/'"));
        }
        if let Some(tag) = tag {
            let tag_ok = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !tag_ok {
                return Err(err("the tag may hold letters, digits, '.', '_' and '-'"));
            }
        }
        Ok(Self(value.to_string()))
    }

    /// The image of one deployment of `service` in `repository` (e.g.
    /// `us-central1-docker.pkg.dev/proj/devgem`), tagged with the deployment id.
    pub fn for_deployment(
        repository: &str,
        service: &ServiceName,
        id: &DeploymentId,
    ) -> Result<Self, InvalidName> {
        Self::parse(&format!(
            "{}/{}:{}",
            repository.trim_end_matches('/'),
            service.as_str(),
            id.as_str()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_string!(ImageRef);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_have_the_shape_gcloud_accepts() {
        for ok in [
            "us-central1",
            "europe-west1",
            "asia-northeast1",
            "me-central2",
        ] {
            assert_eq!(Region::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "us central",
            "US-CENTRAL1",
            "uscentral1",
            "us--central1",
            "-us",
            "us-",
        ] {
            let e = Region::parse(bad).unwrap_err();
            assert!(e.to_string().contains("europe-west1"), "{e}");
        }
        assert!(Region::parse(&format!("us-{}", "a".repeat(40))).is_err());
        assert!(serde_json::from_str::<Region>("\"us central\"").is_err());
    }

    #[test]
    fn service_names_follow_cloud_run_rules() {
        assert_eq!(
            ServiceName::derive_from("My_Shop.API").as_str(),
            "my-shop-api"
        );
        assert_eq!(ServiceName::derive_from("42-things-").as_str(), "things");
        assert_eq!(ServiceName::derive_from("___").as_str(), "app");
        assert!(ServiceName::parse("Shop").is_err());
        assert!(ServiceName::parse("shop-").is_err());
        assert!(ServiceName::parse(&"a".repeat(50)).is_err());
        assert!(ServiceName::parse("shop-2").is_ok());
    }

    #[test]
    fn deployment_ids_round_trip_and_reject_garbage() {
        let id = DeploymentId::from_uuid(uuid::Uuid::from_u128(0x0193_abcd));
        assert_eq!(id.as_str(), "d-0000000000000000000000000193abcd");
        assert_eq!(DeploymentId::parse(id.as_str()).unwrap(), id);
        assert!(DeploymentId::parse("../etc/passwd").is_err());
        assert!(DeploymentId::parse("").is_err());
    }

    #[test]
    fn image_references_follow_registry_rules() {
        let id = DeploymentId::parse("d-0123").unwrap();
        let shop = ServiceName::parse("shop").unwrap();
        let image = ImageRef::for_deployment("us-central1-docker.pkg.dev/proj/devgem/", &shop, &id)
            .unwrap();
        assert_eq!(
            image.as_str(),
            "us-central1-docker.pkg.dev/proj/devgem/shop:d-0123"
        );
        assert!(ImageRef::parse("localhost:5000/devgem/shop").is_ok());
        assert!(ImageRef::parse("Shop").is_err());
        assert!(ImageRef::parse("shop:bad tag").is_err());
        assert!(ImageRef::parse("/shop").is_err());
    }

    #[test]
    fn env_names_reject_reserved_and_malformed() {
        assert!(EnvVarName::parse("STRIPE_KEY").is_ok());
        assert!(EnvVarName::parse("PORT").is_err());
        assert!(EnvVarName::parse("1X").is_err());
        assert!(EnvVarName::parse("A-B").is_err());
    }
}
