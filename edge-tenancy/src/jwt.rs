//! HS256 access tokens.
//!
//! A small, strict JWT implementation: only `HS256`, always with a key id (`kid`) so the
//! signing secret can rotate, signatures compared in constant time, and `exp`, `nbf`,
//! `iss` and `aud` always checked against the injected clock. Nothing else of the JWT
//! zoo (no `none`, no public-key algorithms, no embedded keys) is accepted.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use edge_core::{OrgId, SessionId, UserId};
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

use crate::role::Role;

type HmacSha256 = Hmac<Sha256>;

/// The shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_LEN: usize = 32;
/// Tokens longer than this are rejected before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why a token was refused or could not be issued. Says nothing about the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three base64url parts of valid JSON with the expected claims.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than HS256.
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// The header names no key id, or one this verifier does not hold.
    #[error("token signed with an unknown key")]
    UnknownKey,
    /// The signature does not match.
    #[error("bad token signature")]
    BadSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` (or `iat`) lies in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("token from another issuer")]
    WrongIssuer,
    /// `aud` does not include the expected audience.
    #[error("token for another audience")]
    WrongAudience,
    /// A signing secret is shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("signing secret must be at least {MIN_SECRET_LEN} bytes")]
    WeakSecret,
    /// A key id is empty, longer than 64 characters, or the same id was added twice.
    #[error("invalid or duplicate key id")]
    InvalidKeyId,
}

impl From<JwtError> for edge_core::Error {
    fn from(err: JwtError) -> Self {
        match err {
            JwtError::WeakSecret | JwtError::InvalidKeyId => edge_core::Error::internal(err),
            _ => edge_core::Error::Unauthenticated,
        }
    }
}

/// The claims of an Edge access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: UserId,
    /// The organization the token is for.
    pub org: OrgId,
    /// The user's role in that organization.
    pub role: Role,
    /// The login session; revoking it stops the token at once.
    pub sid: SessionId,
    /// Who issued the token.
    pub iss: String,
    /// Who the token is for.
    pub aud: Audience,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// A unique token id.
    pub jti: String,
}

/// The `aud` claim: one audience or several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

impl Audience {
    /// Whether `audience` is among them.
    pub fn contains(&self, audience: &str) -> bool {
        self.0.iter().any(|a| a == audience)
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(one) => Audience(vec![one]),
            OneOrMany::Many(many) => Audience(many),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
}

/// Who a new token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSubject {
    /// The user.
    pub user: UserId,
    /// The organization.
    pub org: OrgId,
    /// The user's role there.
    pub role: Role,
    /// The login session.
    pub session: SessionId,
}

/// Issues and verifies HS256 access tokens. Cheap to share behind an `Arc`; its `Debug`
/// shows key ids only.
#[derive(Clone)]
pub struct JwtCodec {
    issuer: String,
    audience: String,
    active_kid: String,
    keys: HashMap<String, SecretString>,
    ttl: Duration,
    leeway: Duration,
}

impl JwtCodec {
    /// A codec that signs with `secret` under key id `kid`, for tokens from `issuer` to
    /// `audience`. Tokens live 15 minutes and clocks may disagree by 30 seconds, unless
    /// changed with [`with_ttl`](Self::with_ttl) and [`with_leeway`](Self::with_leeway).
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        kid: impl Into<String>,
        secret: SecretString,
    ) -> Result<Self, JwtError> {
        let kid = checked_kid(kid.into())?;
        check_secret(&secret)?;
        let mut keys = HashMap::new();
        keys.insert(kid.clone(), secret);
        Ok(Self {
            issuer: issuer.into(),
            audience: audience.into(),
            active_kid: kid,
            keys,
            ttl: Duration::from_secs(15 * 60),
            leeway: Duration::from_secs(30),
        })
    }

    /// Also accepts tokens signed with an older secret under `kid`.
    pub fn with_retired_key(
        mut self,
        kid: impl Into<String>,
        secret: SecretString,
    ) -> Result<Self, JwtError> {
        let kid = checked_kid(kid.into())?;
        check_secret(&secret)?;
        if self.keys.contains_key(&kid) {
            return Err(JwtError::InvalidKeyId);
        }
        self.keys.insert(kid, secret);
        Ok(self)
    }

    /// How long issued tokens live.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How far clocks may disagree when checking `exp` and `nbf`.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The key id new tokens are signed with.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// Issues a token for `subject`, valid from `now` for the configured lifetime.
    pub fn issue(
        &self,
        subject: TokenSubject,
        now: DateTime<Utc>,
    ) -> Result<(String, Claims), JwtError> {
        let iat = now.timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let claims = Claims {
            sub: subject.user,
            org: subject.org,
            role: subject.role,
            sid: subject.session,
            iss: self.issuer.clone(),
            aud: Audience(vec![self.audience.clone()]),
            exp: iat.saturating_add(ttl),
            iat,
            nbf: Some(iat),
            jti: hex::encode(jti),
        };
        let token = self.sign(&claims)?;
        Ok((token, claims))
    }

    /// Signs arbitrary `claims` with the active key. Prefer [`issue`](Self::issue).
    pub fn sign(&self, claims: &Claims) -> Result<String, JwtError> {
        let header = Header {
            alg: "HS256".into(),
            typ: Some("JWT".into()),
            kid: Some(self.active_kid.clone()),
        };
        let header = serde_json::to_vec(&header).map_err(|_| JwtError::Malformed)?;
        let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Malformed)?;
        let mut token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = self.mac(&self.active_kid)?;
        mac.update(token.as_bytes());
        let signature = mac.finalize().into_bytes();
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }

    /// Verifies `token` at instant `now` and returns its claims.
    ///
    /// Checks, in order: shape and size, algorithm, key id, signature (constant time),
    /// then `iss`, `aud`, `exp`, `nbf` and `iat`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Header = decode_json(header_b64)?;
        if header.alg != "HS256" {
            return Err(JwtError::UnsupportedAlgorithm);
        }
        let kid = header.kid.ok_or(JwtError::UnknownKey)?;
        let mut mac = self.mac(&kid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| JwtError::Malformed)?;
        let signed_len = header_b64.len() + 1 + payload_b64.len();
        mac.update(&token.as_bytes()[..signed_len]);
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::BadSignature)?;

        let claims: Claims = decode_json(payload_b64)?;
        if claims.iss != self.issuer {
            return Err(JwtError::WrongIssuer);
        }
        if !claims.aud.contains(&self.audience) {
            return Err(JwtError::WrongAudience);
        }
        let now = now.timestamp();
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        if now >= claims.exp.saturating_add(leeway) {
            return Err(JwtError::Expired);
        }
        let not_before = claims.nbf.unwrap_or(claims.iat).max(claims.iat);
        if now.saturating_add(leeway) < not_before {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }

    fn mac(&self, kid: &str) -> Result<HmacSha256, JwtError> {
        let secret = self.keys.get(kid).ok_or(JwtError::UnknownKey)?;
        HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
            .map_err(|_| JwtError::WeakSecret)
    }
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        f.debug_struct("JwtCodec")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("active_kid", &self.active_kid)
            .field("kids", &kids)
            .field("ttl", &self.ttl)
            .field("leeway", &self.leeway)
            .finish()
    }
}

fn checked_kid(kid: String) -> Result<String, JwtError> {
    if kid.is_empty() || kid.len() > 64 {
        Err(JwtError::InvalidKeyId)
    } else {
        Ok(kid)
    }
}

fn check_secret(secret: &SecretString) -> Result<(), JwtError> {
    if secret.expose_secret().len() < MIN_SECRET_LEN {
        Err(JwtError::WeakSecret)
    } else {
        Ok(())
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}
