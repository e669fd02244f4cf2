//! The token in an organization's callback URLs.
//!
//! Daraja signs nothing, so the URL is the secret: `/callbacks/mpesa/{org}/{token}` with
//! 128 random bits in hex (hex also keeps out the words Daraja refuses in URLs, such as
//! "exe", "cmd" or "sql"). The token is sealed at rest and compared in constant time. A
//! rotation issues a new token; the previous one keeps working for
//! [`PREVIOUS_TOKEN_GRACE`], so the callbacks of pushes made just before are not lost.
//!
//! The platform's own paybill has one more pair of URLs,
//! `/callbacks/c2b/platform/{token}/validation|confirmation`, whose token is derived from
//! the server's credentials key (see [`platform_c2b_token`]): it needs no storage, is the
//! same on every node, and changes when the key is rotated (then register again).

use chrono::{DateTime, TimeDelta, Utc};
use edge_core::{Error, OrgId};
use edge_tenancy::Sealed;
use rand::RngCore as _;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait as _, EntityTrait as _, IntoActiveModel as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;

use super::{Payments, db_err, is_unique_violation};
use crate::entities::mpesa_callback_tokens;

const SEAL_PURPOSE: &str = "mpesa.callback_token";

/// How long the token before a rotation is still accepted.
pub const PREVIOUS_TOKEN_GRACE: TimeDelta = TimeDelta::hours(24);

/// The organization's callback addresses, as shown to its admins.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CallbackUrls {
    /// STK push results.
    pub stk: String,
    /// Results of transaction status queries and reversals.
    pub result: String,
    /// Their time-outs.
    pub timeout: String,
    /// C2B validation on the organization's own shortcode.
    pub c2b_validation: String,
    /// C2B confirmation on the organization's own shortcode.
    pub c2b_confirmation: String,
    /// When the token in them was issued.
    pub issued_at: DateTime<Utc>,
}

fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The platform's C2B token: the first 32 hex characters of HMAC-SHA256 over
/// `"platform-c2b"` keyed with the credentials key (`None` for an empty key).
pub fn platform_c2b_token(credentials_key: &[u8]) -> Option<SecretString> {
    use hmac::Mac as _;
    if credentials_key.is_empty() {
        return None;
    }
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(credentials_key).ok()?;
    mac.update(b"platform-c2b");
    let digest = mac.finalize().into_bytes();
    Some(SecretString::from(hex::encode(digest)[..32].to_owned()))
}

/// The platform's C2B addresses, to register for the platform's shortcode.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PlatformC2bUrls {
    pub validation: String,
    pub confirmation: String,
}

impl Payments {
    /// Sets the key the platform's C2B token is derived from (the server's credentials
    /// key). Without it every platform C2B callback is refused.
    pub fn with_platform_token_key(mut self, credentials_key: &[u8]) -> Self {
        self.platform_c2b_token = platform_c2b_token(credentials_key).map(std::sync::Arc::new);
        self
    }

    /// Whether `token` is the platform's C2B token (in constant time).
    pub(crate) fn verify_platform_token(&self, token: &str) -> bool {
        self.platform_c2b_token.as_ref().is_some_and(|expected| {
            constant_time_eq(expected.expose_secret().as_bytes(), token.as_bytes())
        })
    }

    /// The platform's C2B addresses, or a 409 when the token key is not set.
    pub(crate) fn platform_c2b_urls(&self) -> Result<PlatformC2bUrls, Error> {
        let token = self.platform_c2b_token.as_ref().ok_or_else(|| {
            Error::Conflict("the platform's C2B token is not set up on this server".into())
        })?;
        let base = format!(
            "{}/callbacks/c2b/platform/{}",
            self.public_url,
            token.expose_secret()
        );
        Ok(PlatformC2bUrls {
            validation: format!("{base}/validation"),
            confirmation: format!("{base}/confirmation"),
        })
    }

    fn seal_token(&self, org: OrgId, token: &str) -> Result<String, Error> {
        Ok(self
            .keyring
            .seal(org, SEAL_PURPOSE, &SecretString::from(token.to_owned()))
            .map_err(Error::internal)?
            .to_string())
    }

    fn open_token(&self, org: OrgId, sealed: &str) -> Result<SecretString, Error> {
        let sealed: Sealed = sealed.parse().map_err(Error::internal)?;
        self.keyring
            .open(org, SEAL_PURPOSE, &sealed)
            .map_err(Error::internal)
    }

    /// The organization's token row, created on first use.
    async fn token_row(&self, org: OrgId) -> Result<mpesa_callback_tokens::Model, Error> {
        if let Some(row) = mpesa_callback_tokens::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
        {
            return Ok(row);
        }
        let row = mpesa_callback_tokens::ActiveModel {
            organization_id: Set(org.as_uuid()),
            token: Set(self.seal_token(org, &new_token())?),
            previous_token: Set(None),
            previous_valid_until: Set(None),
            rotated_at: Set(self.now()),
        };
        match row.insert(&self.db).await {
            Ok(row) => Ok(row),
            // Another request created it first: use theirs.
            Err(e) if is_unique_violation(&e) => {
                mpesa_callback_tokens::Entity::find_by_id(org.as_uuid())
                    .one(&self.db)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Error::internal(e))
            }
            Err(e) => Err(db_err(e)),
        }
    }

    /// The organization's callback addresses.
    pub async fn callback_urls(&self, org: OrgId) -> Result<CallbackUrls, Error> {
        let row = self.token_row(org).await?;
        let token = self.open_token(org, &row.token)?;
        let base = format!(
            "{}/callbacks/mpesa/{org}/{}",
            self.public_url,
            token.expose_secret()
        );
        // Daraja refuses C2B URLs that contain "mpesa": C2B has its own prefix.
        let c2b = format!(
            "{}/callbacks/c2b/{org}/{}",
            self.public_url,
            token.expose_secret()
        );
        Ok(CallbackUrls {
            stk: base.clone(),
            result: format!("{base}/result"),
            timeout: format!("{base}/timeout"),
            c2b_validation: format!("{c2b}/validation"),
            c2b_confirmation: format!("{c2b}/confirmation"),
            issued_at: row.rotated_at,
        })
    }

    /// Issues a new token. The old one is accepted for [`PREVIOUS_TOKEN_GRACE`] more.
    /// (C2B URLs registered with Daraja must be registered again.)
    pub async fn rotate_callback_token(&self, org: OrgId) -> Result<CallbackUrls, Error> {
        let row = self.token_row(org).await?;
        let now = self.now();
        let mut active = row.clone().into_active_model();
        active.previous_token = Set(Some(row.token));
        active.previous_valid_until = Set(Some(now + PREVIOUS_TOKEN_GRACE));
        active.token = Set(self.seal_token(org, &new_token())?);
        active.rotated_at = Set(now);
        active.update(&self.db).await.map_err(db_err)?;
        self.callback_urls(org).await
    }

    /// Whether `token` is the organization's current token, or its previous one within
    /// the grace period. An organization without a token has no valid one.
    pub(crate) async fn verify_callback_token(
        &self,
        org: OrgId,
        token: &str,
    ) -> Result<bool, Error> {
        let Some(row) = mpesa_callback_tokens::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
        else {
            return Ok(false);
        };
        let current = self.open_token(org, &row.token)?;
        if constant_time_eq(current.expose_secret().as_bytes(), token.as_bytes()) {
            return Ok(true);
        }
        match (&row.previous_token, row.previous_valid_until) {
            (Some(previous), Some(until)) if self.now() < until => {
                let previous = self.open_token(org, previous)?;
                Ok(constant_time_eq(
                    previous.expose_secret().as_bytes(),
                    token.as_bytes(),
                ))
            }
            _ => Ok(false),
        }
    }
}
