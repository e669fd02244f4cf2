//! Sealed per-tenant credentials.
//!
//! A credential (an M-Pesa consumer secret, a WhatsApp access token, …) is sealed with
//! AES-256-GCM under one of the platform's master keys. The associated data binds the
//! ciphertext to its organization, its purpose and the key id, so a sealed value copied
//! into another tenant's row, or into another column of the same row, fails to open.
//!
//! The sealed value is one printable string, `v1.<key id>.<base64url(nonce ‖ ciphertext)>`,
//! that fits in one text column. Master keys rotate by key id: add the new key as active,
//! keep the old ones for opening, and [`Keyring::reseal`] rows at leisure.
//!
//! ```
//! use edge_core::OrgId;
//! use edge_tenancy::{KeyId, Keyring, MasterKey};
//! use secrecy::{ExposeSecret, SecretString};
//!
//! let keyring = Keyring::new(KeyId::new("2026-11")?, MasterKey::generate());
//! let acme = OrgId::new();
//! let secret = SecretString::from("daraja consumer secret");
//! let sealed = keyring.seal(acme, "mpesa.consumer_secret", &secret)?;
//! let column: String = sealed.to_string(); // "v1.2026-11.…"
//!
//! let opened = keyring.open(acme, "mpesa.consumer_secret", &column.parse()?)?;
//! assert_eq!(opened.expose_secret(), "daraja consumer secret");
//! // Copied into another tenant's row, it does not open.
//! assert!(keyring.open(OrgId::new(), "mpesa.consumer_secret", &sealed).is_err());
//! # Ok::<(), edge_tenancy::SealError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edge_core::{OrgId, SharedClock};
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const VERSION: &str = "v1";
const AAD_DOMAIN: &[u8] = b"edge-seal/v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAX_PURPOSE_LEN: usize = 128;

/// Why a credential could not be sealed or opened. Never carries key material or
/// plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The sealed value names a key id the keyring does not hold.
    #[error("sealed with unknown master key {0:?}")]
    UnknownKey(String),
    /// The text is not a sealed value.
    #[error("malformed sealed value")]
    Malformed,
    /// Authentication failed: wrong organization or purpose, tampered ciphertext, or a
    /// different key under the same id.
    #[error("sealed value does not open for this organization and purpose")]
    OpenFailed,
    /// A key id is empty, too long, or has characters other than `A-Z a-z 0-9 _ -`.
    #[error("invalid key id: use 1 to 32 characters from A-Z, a-z, 0-9, '_' and '-'")]
    InvalidKeyId,
    /// A master key is not 32 bytes (or not valid base64).
    #[error("a master key must be exactly 32 bytes")]
    InvalidKey,
    /// A purpose is empty or longer than 128 bytes.
    #[error("invalid purpose: use 1 to 128 bytes")]
    InvalidPurpose,
    /// The same key id was added twice.
    #[error("key id {0:?} is already in the keyring")]
    DuplicateKeyId(String),
}

impl From<SealError> for edge_core::Error {
    fn from(err: SealError) -> Self {
        edge_core::Error::internal(err)
    }
}

/// The id of a master key, stored in every sealed value so keys can rotate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Validates a key id: 1 to 32 characters from `A-Z a-z 0-9 _ -`.
    pub fn new(id: impl Into<String>) -> Result<Self, SealError> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(id))
        } else {
            Err(SealError::InvalidKeyId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 256-bit master key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct MasterKey(Arc<SecretBox<[u8; 32]>>);

impl MasterKey {
    /// Wraps 32 bytes of key material.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Arc::new(SecretBox::new(Box::new(bytes))))
    }

    /// Decodes a key given as standard or URL-safe base64 (as it would sit in
    /// configuration).
    pub fn from_base64(encoded: &SecretString) -> Result<Self, SealError> {
        let text = encoded.expose_secret().trim();
        let mut decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| SealError::InvalidKey)?;
        let result = <[u8; 32]>::try_from(decoded.as_slice())
            .map(Self::from_bytes)
            .map_err(|_| SealError::InvalidKey);
        decoded.fill(0);
        result
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.0.expose_secret().into())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// A credential sealed for one organization and purpose. Safe to store and log: it is
/// ciphertext.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sealed {
    key_id: KeyId,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl Sealed {
    /// The id of the master key this value was sealed under.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id.0)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

impl fmt::Display for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = Vec::with_capacity(NONCE_LEN + self.ciphertext.len());
        body.extend_from_slice(&self.nonce);
        body.extend_from_slice(&self.ciphertext);
        write!(
            f,
            "{VERSION}.{}.{}",
            self.key_id,
            URL_SAFE_NO_PAD.encode(body)
        )
    }
}

impl FromStr for Sealed {
    type Err = SealError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().splitn(3, '.');
        let (Some(VERSION), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Malformed);
        };
        let key_id = KeyId::new(kid).map_err(|_| SealError::Malformed)?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| SealError::Malformed)?;
        Ok(Self {
            key_id,
            nonce,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

impl Serialize for Sealed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sealed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The master keys, by id, with one active for sealing. Cheap to clone.
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<HashMap<KeyId, MasterKey>>,
    active: KeyId,
}

impl Keyring {
    /// A keyring whose only (and active) key is `key`.
    pub fn new(active_id: KeyId, key: MasterKey) -> Self {
        let mut keys = HashMap::new();
        keys.insert(active_id.clone(), key);
        Self {
            keys: Arc::new(keys),
            active: active_id,
        }
    }

    /// Adds an older key that is still used to open values sealed under it.
    pub fn with_retired(mut self, id: KeyId, key: MasterKey) -> Result<Self, SealError> {
        if self.keys.contains_key(&id) {
            return Err(SealError::DuplicateKeyId(id.0));
        }
        Arc::make_mut(&mut self.keys).insert(id, key);
        Ok(self)
    }

    /// Adds `key` and makes it the one new values are sealed under; the previous keys
    /// remain for opening.
    pub fn rotate_to(mut self, id: KeyId, key: MasterKey) -> Result<Self, SealError> {
        self = self.with_retired(id.clone(), key)?;
        self.active = id;
        Ok(self)
    }

    /// The id of the key new values are sealed under.
    pub fn active_key_id(&self) -> &KeyId {
        &self.active
    }

    /// Seals `secret` for `org` and `purpose` (e.g. `"mpesa.consumer_secret"`) under the
    /// active key, with a fresh random nonce.
    pub fn seal(
        &self,
        org: OrgId,
        purpose: &str,
        secret: &SecretString,
    ) -> Result<Sealed, SealError> {
        let key = self
            .keys
            .get(&self.active)
            .ok_or_else(|| SealError::UnknownKey(self.active.0.clone()))?;
        let aad = associated_data(&self.active, org, purpose)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = key
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::InvalidKey)?;
        Ok(Sealed {
            key_id: self.active.clone(),
            nonce,
            ciphertext,
        })
    }

    /// Opens a value sealed for `org` and `purpose`. Any other organization or purpose,
    /// or any change to the value, fails with [`SealError::OpenFailed`].
    pub fn open(
        &self,
        org: OrgId,
        purpose: &str,
        sealed: &Sealed,
    ) -> Result<SecretString, SealError> {
        let key = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey(sealed.key_id.0.clone()))?;
        let aad = associated_data(&sealed.key_id, org, purpose)?;
        let plaintext = key
            .cipher()
            .decrypt(
                &Nonce::from(sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::OpenFailed)?;
        match String::from_utf8(plaintext) {
            Ok(text) => Ok(SecretString::from(text)),
            Err(err) => {
                let mut bytes = err.into_bytes();
                bytes.fill(0);
                Err(SealError::OpenFailed)
            }
        }
    }

    /// Whether `sealed` is under a key other than the active one.
    pub fn needs_reseal(&self, sealed: &Sealed) -> bool {
        sealed.key_id != self.active
    }

    /// Opens `sealed` and seals it again under the active key (for key rotation). The
    /// organization and purpose must match the original ones.
    pub fn reseal(&self, org: OrgId, purpose: &str, sealed: &Sealed) -> Result<Sealed, SealError> {
        let secret = self.open(org, purpose, sealed)?;
        self.seal(org, purpose, &secret)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.keys.keys().map(KeyId::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("Keyring")
            .field("active", &self.active.0)
            .field("key_ids", &ids)
            .finish()
    }
}

fn associated_data(key_id: &KeyId, org: OrgId, purpose: &str) -> Result<Vec<u8>, SealError> {
    if purpose.is_empty() || purpose.len() > MAX_PURPOSE_LEN {
        return Err(SealError::InvalidPurpose);
    }
    let kid = key_id.as_str().as_bytes();
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 2 + kid.len() + 16 + purpose.len());
    aad.extend_from_slice(AAD_DOMAIN);
    // Lengths are bounded (32 and 128), so one byte each is enough and the encoding is
    // unambiguous.
    aad.push(kid.len() as u8);
    aad.extend_from_slice(kid);
    aad.extend_from_slice(org.as_uuid().as_bytes());
    aad.push(purpose.len() as u8);
    aad.extend_from_slice(purpose.as_bytes());
    Ok(aad)
}

type CacheKey = (OrgId, String, Sealed);

struct CacheEntry {
    secret: SecretString,
    expires_at: chrono::DateTime<chrono::Utc>,
}

/// Opened credentials kept for a short time, so a request does not run AES-GCM for every
/// credential it uses.
///
/// Entries are keyed by organization, purpose **and** the sealed value itself, so a
/// credential that is changed or re-sealed is never served stale. Time comes from the
/// injected clock.
pub struct CredentialCache {
    keyring: Keyring,
    clock: SharedClock,
    ttl: chrono::Duration,
    capacity: usize,
    entries: Mutex<HashMap<CacheKey, CacheEntry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often a [`CredentialCache`] answered from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Opens answered from the cache.
    pub hits: u64,
    /// Opens that ran AES-GCM (including failed ones).
    pub misses: u64,
}

impl CredentialCache {
    /// A cache over `keyring` keeping opened secrets for `ttl`, holding at most
    /// `capacity` of them.
    pub fn new(
        keyring: Keyring,
        clock: SharedClock,
        ttl: std::time::Duration,
        capacity: usize,
    ) -> Self {
        Self {
            keyring,
            clock,
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The keyring behind this cache.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Opens `sealed` for `org` and `purpose`, from the cache when a fresh entry exists.
    pub fn open(
        &self,
        org: OrgId,
        purpose: &str,
        sealed: &Sealed,
    ) -> Result<SecretString, SealError> {
        let now = self.clock.now();
        let key: CacheKey = (org, purpose.to_owned(), sealed.clone());
        {
            let entries = self.lock();
            if let Some(entry) = entries.get(&key)
                && entry.expires_at > now
            {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(entry.secret.clone());
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let secret = self.keyring.open(org, purpose, sealed)?;
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, entry| entry.expires_at > now);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.expires_at)
                    .map(|(key, _)| key.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            key,
            CacheEntry {
                secret: secret.clone(),
                expires_at: now
                    .checked_add_signed(self.ttl)
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
            },
        );
        Ok(secret)
    }

    /// Hit and miss counts since the cache was made.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Forgets every cached secret of `org` (call it when its credentials change).
    pub fn invalidate_org(&self, org: OrgId) {
        self.lock().retain(|(entry_org, _, _), _| *entry_org != org);
    }

    /// How many secrets are cached (fresh or not yet evicted).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, CacheEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialCache")
            .field("keyring", &self.keyring)
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
