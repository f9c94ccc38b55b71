//! A person's account: who they are as GitHub or Google says (the identities they signed in
//! with), their profile, and the preferences deploys and the chat use when a request leaves a
//! choice open (public or private, default variables, region).
//!
//! An account's [`UserId`] comes from the first identity it signed in with (`github-4242`,
//! `google-1098...`), never from a name a person chooses, so signing in can never land someone
//! in an account made by `devgem token create`.

use crate::{EnvVarName, InvalidName, Region, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who vouches for an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityProvider {
    Github,
    Google,
}

impl IdentityProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityProvider::Github => "github",
            IdentityProvider::Google => "google",
        }
    }
}

/// One identity an account signs in with: the provider's stable id for the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedIdentity {
    pub provider: IdentityProvider,
    /// GitHub's numeric user id, Google's `sub`.
    pub subject: String,
    /// GitHub's login (shown; never used to find the account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

impl LinkedIdentity {
    /// The key the store finds the account of this identity by (`github-4242`).
    pub fn key(&self) -> String {
        identity_key(self.provider, &self.subject)
    }
}

/// The store's key for an identity.
pub fn identity_key(provider: IdentityProvider, subject: &str) -> String {
    format!("{}-{}", provider.as_str(), subject.to_ascii_lowercase())
}

/// The choices a request may leave open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// The Cloud Run region the user's deployments go to when a request names none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "default_region"
    )]
    pub default_region: Option<Region>,
    /// Whether new deployments are public (`None`: DevGem's default, public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_public: Option<bool>,
    /// Plain variables every new deployment gets unless it sets them itself. Never a secret:
    /// a secret-like name is refused when the preferences are set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub default_env: BTreeMap<EnvVarName, String>,
}

/// A region, with the field named in the error (serde names only the value).
fn default_region<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Region>, D::Error> {
    let raw = Option::<String>::deserialize(d)?;
    raw.map(|r| {
        Region::parse(&r).map_err(|e| serde::de::Error::custom(format!("default_region: {e}")))
    })
    .transpose()
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    pub identities: Vec<LinkedIdentity>,
    #[serde(default)]
    pub preferences: Preferences,
    pub created_at: DateTime<Utc>,
}

impl Account {
    /// A new account for an identity's first sign-in.
    pub fn new(identity: LinkedIdentity, now: DateTime<Utc>) -> Result<Self, InvalidName> {
        Ok(Self {
            id: UserId::parse(&identity.key())?,
            name: None,
            email: None,
            avatar_url: None,
            identities: vec![identity],
            preferences: Preferences::default(),
            created_at: now,
        })
    }

    /// The identity of `provider` this account signs in with, if it has one.
    pub fn identity(&self, provider: IdentityProvider) -> Option<&LinkedIdentity> {
        self.identities.iter().find(|i| i.provider == provider)
    }

    /// Adds (or refreshes, when the provider already has one) an identity: signing in with
    /// GitHub while signed in with Google links the GitHub account.
    pub fn link(&mut self, identity: LinkedIdentity) {
        self.identities.retain(|i| i.provider != identity.provider);
        self.identities.push(identity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github(subject: &str) -> LinkedIdentity {
        LinkedIdentity {
            provider: IdentityProvider::Github,
            subject: subject.into(),
            login: Some("Ada".into()),
        }
    }

    #[test]
    fn an_account_id_comes_from_the_identity_not_a_chosen_name() {
        let a = Account::new(github("4242"), Utc::now()).unwrap();
        assert_eq!(a.id.as_str(), "github-4242");
        let odd = LinkedIdentity {
            provider: IdentityProvider::Google,
            subject: "x/../y".into(),
            login: None,
        };
        assert!(Account::new(odd, Utc::now()).is_err());
    }

    #[test]
    fn linking_a_second_provider_keeps_the_first_and_refreshes_the_same_one() {
        let mut a = Account::new(github("4242"), Utc::now()).unwrap();
        a.link(LinkedIdentity {
            provider: IdentityProvider::Google,
            subject: "1098".into(),
            login: None,
        });
        a.link(github("4242"));
        assert_eq!(a.identities.len(), 2);
        assert_eq!(
            a.identity(IdentityProvider::Google).unwrap().subject,
            "1098"
        );
    }

    #[test]
    fn a_bad_default_region_is_refused_naming_the_field_and_the_fix() {
        let e = serde_json::from_str::<Preferences>(r#"{"default_region": "us central"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("default_region") && e.contains("europe-west1"),
            "{e}"
        );
        let p: Preferences = serde_json::from_str(r#"{"default_region": "europe-west1"}"#).unwrap();
        assert_eq!(p.default_region.unwrap().as_str(), "europe-west1");
    }

    #[test]
    fn preferences_refuse_unknown_fields() {
        let bad = serde_json::from_str::<Preferences>(r#"{"default_regoin": "x"}"#);
        assert!(bad.is_err());
    }
}
