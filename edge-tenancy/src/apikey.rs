//! API keys.
//!
//! A key looks like `edge_live_3k9x2m7q4w8z_<40 random characters>`: a fixed marker, the
//! environment (`live` or `test`), a visible **prefix** that identifies the key in lists
//! and logs, and the secret. Only the prefix and the SHA-256 of the whole key are stored;
//! the key itself is shown once, when it is issued. Keys carry about 300 bits of
//! randomness, so a fast hash is enough (no password hashing needed), and hashes are
//! compared in constant time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use edge_core::{ApiKeyId, Error, OrgId};
use rand::Rng as _;
use rand::distr::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::role::Role;

const MARKER: &str = "edge";
/// Length of the visible prefix.
pub const PREFIX_LEN: usize = 12;
/// Length of the secret part.
pub const SECRET_LEN: usize = 40;

/// Whether a key works against live money and messages or a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyEnvironment {
    /// Production.
    Live,
    /// Sandbox.
    Test,
}

impl KeyEnvironment {
    /// `"live"` or `"test"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyEnvironment::Live => "live",
            KeyEnvironment::Test => "test",
        }
    }
}

/// The SHA-256 of a whole API key: what the store keeps. Its `Debug` shows only the
/// first bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// Hashes a presented key.
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Wraps stored hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The hash bytes, for storage.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash as lowercase hex, for storage in a text column.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses a hash stored as hex.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// A presented key, split into its parts and hashed. Holds no copy of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    environment: KeyEnvironment,
    prefix: String,
    hash: KeyHash,
}

impl PresentedKey {
    /// Parses a key as sent by a client. Anything that is not exactly an Edge key is
    /// [`Error::Unauthenticated`].
    pub fn parse(key: &str) -> Result<Self, Error> {
        let mut parts = key.split('_');
        let (Some(MARKER), Some(environment), Some(prefix), Some(secret), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(Error::Unauthenticated);
        };
        let environment = match environment {
            "live" => KeyEnvironment::Live,
            "test" => KeyEnvironment::Test,
            _ => return Err(Error::Unauthenticated),
        };
        let well_formed = prefix.len() == PREFIX_LEN
            && secret.len() == SECRET_LEN
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && secret.bytes().all(|b| b.is_ascii_alphanumeric());
        if !well_formed {
            return Err(Error::Unauthenticated);
        }
        Ok(Self {
            environment,
            prefix: prefix.to_owned(),
            hash: KeyHash::of(key),
        })
    }

    /// Whether `text` has the shape of an Edge API key (as opposed to a JWT).
    pub fn looks_like_key(text: &str) -> bool {
        text.starts_with("edge_")
    }

    /// The key's environment.
    pub fn environment(&self) -> KeyEnvironment {
        self.environment
    }

    /// The visible prefix, used to look the key up.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The SHA-256 of the whole key.
    pub fn hash(&self) -> KeyHash {
        self.hash
    }
}

/// What the store keeps about an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key's id.
    pub id: ApiKeyId,
    /// The organization it acts for.
    pub org: OrgId,
    /// A label chosen by whoever created it.
    pub name: String,
    /// The visible prefix (unique across all keys).
    pub prefix: String,
    /// The SHA-256 of the whole key.
    pub hash: KeyHash,
    /// The role requests with this key get. Never [`Role::SuperAdmin`].
    pub role: Role,
    /// Live or test.
    pub environment: KeyEnvironment,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyRecord {
    /// Whether `presented` is this key and it is usable at `now`.
    pub fn accepts(&self, presented: &PresentedKey, now: DateTime<Utc>) -> bool {
        // Evaluate every check so the time taken does not depend on which one fails.
        let same_hash = self.hash.ct_eq(&presented.hash);
        let same_prefix = self.prefix == presented.prefix;
        let same_env = self.environment == presented.environment;
        let not_revoked = self.revoked_at.is_none_or(|at| at > now);
        let not_expired = self.expires_at.is_none_or(|at| at > now);
        same_hash & same_prefix & same_env & not_revoked & not_expired
    }
}

/// A newly issued key: the record to store and the key to show the client once.
pub struct IssuedApiKey {
    /// The whole key. Show it once; never store or log it.
    pub key: SecretString,
    /// What to store.
    pub record: ApiKeyRecord,
}

impl fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("key", &"[redacted]")
            .field("record", &self.record)
            .finish()
    }
}

/// What a new key is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The organization it acts for.
    pub org: OrgId,
    /// A label.
    pub name: String,
    /// The role it grants. [`Role::SuperAdmin`] is refused.
    pub role: Role,
    /// Live or test.
    pub environment: KeyEnvironment,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewApiKey {
    /// Generates the key. `now` is the creation time (from the injected clock).
    pub fn issue(self, now: DateTime<Utc>) -> Result<IssuedApiKey, Error> {
        if self.role.is_operator() {
            return Err(Error::Forbidden(
                "API keys cannot carry the super_admin role".into(),
            ));
        }
        if self.name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        let mut rng = rand::rng();
        let prefix: String = (&mut rng)
            .sample_iter(Alphanumeric)
            .map(|b| char::from(b).to_ascii_lowercase())
            .take(PREFIX_LEN)
            .collect();
        let secret: String = (&mut rng)
            .sample_iter(Alphanumeric)
            .map(char::from)
            .take(SECRET_LEN)
            .collect();
        let key = format!("{MARKER}_{}_{prefix}_{secret}", self.environment.as_str());
        let hash = KeyHash::of(&key);
        Ok(IssuedApiKey {
            key: SecretString::from(key),
            record: ApiKeyRecord {
                id: ApiKeyId::new(),
                org: self.org,
                name: self.name,
                prefix,
                hash,
                role: self.role,
                environment: self.environment,
                created_at: now,
                expires_at: self.expires_at,
                revoked_at: None,
            },
        })
    }
}

impl FromStr for PresentedKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Hashes and parses a key held as a secret (convenience for tests and clients).
pub fn present(key: &SecretString) -> Result<PresentedKey, Error> {
    PresentedKey::parse(key.expose_secret())
}
