//! Idempotency keys.
//!
//! Every operation that moves money carries a key chosen by the caller. Repeating the
//! operation with the same key returns the first result instead of doing it again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// The longest key accepted, in bytes.
pub const MAX_LEN: usize = 255;

/// A caller-chosen key: 1 to 255 visible ASCII characters (`!` to `~`, no spaces).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

/// Why a string is not an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdempotencyKeyError {
    /// The key is empty.
    #[error("idempotency key is empty")]
    Empty,
    /// The key is longer than [`MAX_LEN`] bytes.
    #[error("idempotency key is {0} bytes long; at most 255 are allowed")]
    TooLong(usize),
    /// The key contains a character outside visible ASCII.
    #[error(
        "idempotency key may contain only visible ASCII characters (no spaces or control characters)"
    )]
    InvalidCharacter,
}

impl IdempotencyKey {
    /// Checks and wraps `key`.
    pub fn new(key: impl Into<String>) -> Result<Self, IdempotencyKeyError> {
        let key = key.into();
        if key.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if key.len() > MAX_LEN {
            return Err(IdempotencyKeyError::TooLong(key.len()));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdempotencyKeyError::InvalidCharacter);
        }
        Ok(Self(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Derives a key for a sub-operation, e.g. `key.derive("capture")` → `"<key>:capture"`.
    ///
    /// Fails like [`IdempotencyKey::new`] if the result is longer than [`MAX_LEN`] bytes.
    pub fn derive(&self, suffix: &str) -> Result<Self, IdempotencyKeyError> {
        Self::new(format!("{}:{suffix}", self.0))
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({:?})", self.0)
    }
}

impl FromStr for IdempotencyKey {
    type Err = IdempotencyKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_visible_ascii_up_to_255_bytes() {
        assert_eq!(
            IdempotencyKey::new("topup-2026-11-23#1").unwrap().as_str(),
            "topup-2026-11-23#1"
        );
        assert!(IdempotencyKey::new("x".repeat(255)).is_ok());
    }

    #[test]
    fn refuses_empty_long_and_unprintable_keys() {
        assert_eq!(IdempotencyKey::new(""), Err(IdempotencyKeyError::Empty));
        assert_eq!(
            IdempotencyKey::new("x".repeat(256)),
            Err(IdempotencyKeyError::TooLong(256))
        );
        for bad in ["a b", "tab\t", "new\nline", "ñ", "\u{7f}"] {
            assert_eq!(
                IdempotencyKey::new(bad),
                Err(IdempotencyKeyError::InvalidCharacter),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<IdempotencyKey>("\"\"").is_err());
    }

    #[test]
    fn derived_keys_are_checked_too() {
        let key = IdempotencyKey::new("send-1").unwrap();
        assert_eq!(key.derive("capture").unwrap().as_str(), "send-1:capture");
        let long = IdempotencyKey::new("x".repeat(250)).unwrap();
        assert!(long.derive("capture").is_err());
    }
}
