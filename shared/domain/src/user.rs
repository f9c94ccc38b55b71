//! Who calls DevGem: users, the identity a request carries, API tokens (stored only as their
//! SHA-256, the plaintext shown once) and the token bucket that limits each user's rate.
//!
//! Tokens are made from random bytes the caller passes in and limits are checked at times the
//! caller passes in: nothing here reads a clock or a random source.

use crate::id::InvalidName;
use crate::id::checked_string;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;

/// The user a request acts for when no user token is involved (the local default, and the
/// holder of `DEVGEM_API_TOKEN`); deployments, sessions and links are owned by this name.
pub const LOCAL_USER: &str = "local";

/// A user's name: what deployments, sessions and links record as their `owner`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// 1 to 64 characters of a-z, 0-9, `.`, `_`, `-` and `@`, starting with a letter or digit.
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.as_bytes()[0].is_ascii_alphanumeric()
            && value.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'-' | b'@')
            });
        if ok {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidName {
                what: "user",
                value: value.chars().take(80).collect(),
                reason: "expected 1 to 64 characters of a-z, 0-9, '.', '_', '-' and '@', \
                         starting with a letter or digit",
            })
        }
    }

    /// The local user, [`LOCAL_USER`].
    pub fn local() -> Self {
        Self(LOCAL_USER.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_string!(UserId);

/// What a caller may see beyond their own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The operator (`DEVGEM_API_TOKEN`, or anyone on an open loopback server): sees every
    /// user's usage. Their deployments are still only their own.
    Admin,
    User,
}

/// Who an authenticated request acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub user: UserId,
    pub role: Role,
}

impl Identity {
    /// The operator, as the local user.
    pub fn local_admin() -> Self {
        Self {
            user: UserId::local(),
            role: Role::Admin,
        }
    }

    pub fn user(user: UserId) -> Self {
        Self {
            user,
            role: Role::User,
        }
    }

    /// The `owner` this identity's deployments, sessions and links carry.
    pub fn owner(&self) -> &str {
        self.user.as_str()
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Identifies one API token (not the token itself): `t-` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenId(String);

impl TokenId {
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(format!("t-{}", uuid.simple()))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let ok = value.len() > 2
            && value.len() <= 64
            && value.starts_with("t-")
            && value[2..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidName {
                what: "token id",
                value: value.chars().take(80).collect(),
                reason: "expected t- and up to 62 characters of a-z, 0-9 and '-' \
                         (`devgem token list` shows the ids)",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

checked_string!(TokenId);

/// The SHA-256 of a token's plaintext, as 64 lowercase hex digits: all the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenHash(String);

impl TokenHash {
    /// The hash of whatever a caller presented. The token has 256 random bits, so an
    /// unsalted, fast hash is enough: there is nothing to guess a dictionary for.
    pub fn of(plaintext: &str) -> Self {
        Self(hex(&Sha256::digest(plaintext.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TokenHash {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.len() == 64
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(value))
        } else {
            Err(InvalidName {
                what: "token hash",
                value: value.chars().take(80).collect(),
                reason: "expected 64 lowercase hex digits",
            })
        }
    }
}

impl From<TokenHash> for String {
    fn from(hash: TokenHash) -> String {
        hash.0
    }
}

/// A token's plaintext: `dg_` and 64 hex digits (32 random bytes). It exists only between
/// its making and the one time it is shown; `Debug` never prints it.
pub struct PlainToken(String);

impl PlainToken {
    /// The token made of 32 random bytes (from the operating system's random source).
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(format!("dg_{}", hex(&bytes)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainToken(***)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An API token as the store holds it: whose it is and its hash, never the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: TokenId,
    pub user: UserId,
    pub hash: TokenHash,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// How stale `last_used_at` may get before a use writes it again: one write per token per
    /// interval, not one per request.
    pub const TOUCH_INTERVAL: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

    /// A new token for `user` from 32 random bytes: the record to store, and the plaintext to
    /// show once.
    pub fn issue(
        id: TokenId,
        user: UserId,
        random: [u8; 32],
        now: DateTime<Utc>,
    ) -> (Self, PlainToken) {
        let plain = PlainToken::from_random(random);
        let token = Self {
            id,
            user,
            hash: plain.hash(),
            created_at: now,
            last_used_at: None,
        };
        (token, plain)
    }

    /// Whether a use at `now` should record itself.
    pub fn needs_touch(&self, now: DateTime<Utc>) -> bool {
        self.last_used_at
            .is_none_or(|at| now - at >= Self::TOUCH_INTERVAL)
    }
}

/// How many requests a user may make: `per_minute` on average, bursts of up to `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
}

/// One user's token bucket: full at first, one request takes one token, tokens come back at
/// the limit's rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    available: f64,
    at: DateTime<Utc>,
}

impl TokenBucket {
    pub fn full(limit: RateLimit, now: DateTime<Utc>) -> Self {
        Self {
            available: f64::from(limit.per_minute),
            at: now,
        }
    }

    /// Takes a token for a request at `now`, or says how long until one is there.
    pub fn take(&mut self, limit: RateLimit, now: DateTime<Utc>) -> Result<(), Duration> {
        let capacity = f64::from(limit.per_minute);
        let per_second = capacity / 60.0;
        // A clock that went back refills nothing (and takes nothing away).
        let elapsed = (now - self.at).to_std().unwrap_or_default().as_secs_f64();
        self.available = (self.available + elapsed * per_second).min(capacity);
        self.at = self.at.max(now);
        if self.available >= 1.0 {
            self.available -= 1.0;
            Ok(())
        } else if per_second <= 0.0 {
            Err(Duration::from_secs(60))
        } else {
            Err(Duration::from_secs_f64((1.0 - self.available) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_token_is_stored_as_its_hash_and_shown_once() {
        let (token, plain) = ApiToken::issue(
            TokenId::parse("t-1").unwrap(),
            UserId::parse("ann").unwrap(),
            [7; 32],
            at(0),
        );
        assert!(plain.expose().starts_with("dg_"));
        assert_eq!(plain.expose().len(), 3 + 64);
        assert_eq!(token.hash, TokenHash::of(plain.expose()));
        assert_ne!(token.hash, TokenHash::of("dg_guess"));
        let stored = serde_json::to_string(&token).unwrap();
        assert!(!stored.contains(plain.expose()), "{stored}");
        assert_eq!(format!("{plain:?}"), "PlainToken(***)");
        let (_, other) = ApiToken::issue(token.id.clone(), token.user.clone(), [8; 32], at(0));
        assert_ne!(other.expose(), plain.expose());
    }

    #[test]
    fn a_use_is_recorded_at_most_once_a_minute() {
        let (mut token, _) = ApiToken::issue(
            TokenId::parse("t-1").unwrap(),
            UserId::local(),
            [0; 32],
            at(0),
        );
        assert!(token.needs_touch(at(0)));
        token.last_used_at = Some(at(0));
        assert!(!token.needs_touch(at(59)));
        assert!(token.needs_touch(at(60)));
    }

    #[test]
    fn user_and_token_ids_are_checked() {
        for good in ["ann", "bob.smith", "a@b.c", "u-1_2"] {
            assert!(UserId::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Ann", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(UserId::parse(bad).is_err(), "{bad}");
        }
        assert!(TokenId::parse("t-0193abc").is_ok());
        for bad in ["t-", "x-1", "t-A", "dg_123"] {
            assert!(TokenId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_bucket_allows_a_burst_then_refills_at_the_rate() {
        let limit = RateLimit { per_minute: 3 };
        let mut bucket = TokenBucket::full(limit, at(0));
        for _ in 0..3 {
            assert_eq!(bucket.take(limit, at(0)), Ok(()));
        }
        // One token comes back every 20 s.
        assert_eq!(bucket.take(limit, at(0)), Err(Duration::from_secs(20)));
        assert_eq!(bucket.take(limit, at(5)), Err(Duration::from_secs(15)));
        assert_eq!(bucket.take(limit, at(20)), Ok(()));
        assert!(bucket.take(limit, at(20)).is_err());
        // A long pause refills to the burst, not beyond.
        for _ in 0..3 {
            assert_eq!(bucket.take(limit, at(3600)), Ok(()));
        }
        assert!(bucket.take(limit, at(3600)).is_err());
        // A clock that steps back gives nothing.
        assert!(bucket.take(limit, at(0)).is_err());
    }
}
