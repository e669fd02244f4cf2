//! Per-call credentials: one client serves every tenant.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::Error;

/// How an STK push reaches the merchant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StkAccount {
    /// A paybill: `BusinessShortCode` and `PartyB` are both the paybill number,
    /// `TransactionType` is `CustomerPayBillOnline`.
    PayBill,
    /// A till (buy goods): `BusinessShortCode` is the store / head-office number (the
    /// credentials' shortcode), `PartyB` is the till number, `TransactionType` is
    /// `CustomerBuyGoodsOnline`.
    Till {
        /// The till number that receives the money.
        till_number: String,
    },
}

/// One tenant's Daraja credentials, passed with every call.
///
/// Required: the app's consumer key and secret. The rest depends on the API: STK needs a
/// shortcode and passkey; B2C, B2B, transaction status, balance and reversal need a
/// shortcode, an initiator name and a `SecurityCredential` (see
/// [`security_credential`](crate::security_credential)). A missing piece is reported as
/// [`Error::InvalidRequest`] before anything is sent; there are no sandbox fallbacks.
///
/// `Debug` never shows the secret, the passkey or the security credential.
#[derive(Clone)]
pub struct Credentials {
    consumer_key: String,
    consumer_secret: SecretString,
    shortcode: Option<String>,
    stk_account: StkAccount,
    passkey: Option<SecretString>,
    initiator_name: Option<String>,
    security_credential: Option<SecretString>,
}

impl Credentials {
    /// Credentials for a Daraja app.
    pub fn new(consumer_key: impl Into<String>, consumer_secret: SecretString) -> Self {
        Self {
            consumer_key: consumer_key.into(),
            consumer_secret,
            shortcode: None,
            stk_account: StkAccount::PayBill,
            passkey: None,
            initiator_name: None,
            security_credential: None,
        }
    }

    /// The business shortcode: paybill number, store / head-office number for tills, or the
    /// B2C shortcode.
    pub fn shortcode(mut self, shortcode: impl Into<String>) -> Self {
        self.shortcode = Some(shortcode.into());
        self
    }

    /// The Lipa Na M-Pesa Online passkey (for STK push and query).
    pub fn passkey(mut self, passkey: SecretString) -> Self {
        self.passkey = Some(passkey);
        self
    }

    /// STK pushes pay a paybill (the default).
    pub fn paybill(mut self) -> Self {
        self.stk_account = StkAccount::PayBill;
        self
    }

    /// STK pushes pay this till (buy goods); the shortcode is then the store number.
    pub fn till(mut self, till_number: impl Into<String>) -> Self {
        self.stk_account = StkAccount::Till {
            till_number: till_number.into(),
        };
        self
    }

    /// The initiator (API operator) name and its encrypted `SecurityCredential`.
    pub fn initiator(mut self, name: impl Into<String>, security_credential: SecretString) -> Self {
        self.initiator_name = Some(name.into());
        self.security_credential = Some(security_credential);
        self
    }

    /// The consumer key (not a secret; it keys the token cache).
    pub fn consumer_key(&self) -> &str {
        &self.consumer_key
    }

    /// The configured shortcode, if any.
    pub fn get_shortcode(&self) -> Option<&str> {
        self.shortcode.as_deref()
    }

    /// Paybill or till.
    pub fn stk_account(&self) -> &StkAccount {
        &self.stk_account
    }

    pub(crate) fn consumer_secret(&self) -> &SecretString {
        &self.consumer_secret
    }

    pub(crate) fn require_shortcode(&self) -> Result<&str, Error> {
        let code = self.shortcode.as_deref().ok_or_else(|| {
            Error::invalid("BusinessShortCode", "the credentials have no shortcode")
        })?;
        check_shortcode("BusinessShortCode", code)?;
        Ok(code)
    }

    pub(crate) fn require_passkey(&self) -> Result<&str, Error> {
        let key = self
            .passkey
            .as_ref()
            .ok_or_else(|| Error::invalid("Password", "the credentials have no passkey"))?;
        let key = key.expose_secret();
        if key.trim().is_empty() {
            return Err(Error::invalid("Password", "the passkey is empty"));
        }
        Ok(key)
    }

    pub(crate) fn require_initiator(&self) -> Result<(&str, &str), Error> {
        let name = self
            .initiator_name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| Error::invalid("Initiator", "the credentials have no initiator name"))?;
        let credential = self
            .security_credential
            .as_ref()
            .map(|c| c.expose_secret())
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                Error::invalid(
                    "SecurityCredential",
                    "the credentials have no security credential",
                )
            })?;
        Ok((name, credential))
    }
}

pub(crate) fn check_shortcode(field: &'static str, code: &str) -> Result<(), Error> {
    if (5..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::invalid(field, "a shortcode is 5 to 8 digits"))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { "[REDACTED]" } else { "None" };
        f.debug_struct("Credentials")
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"[REDACTED]")
            .field("shortcode", &self.shortcode)
            .field("stk_account", &self.stk_account)
            .field("passkey", &redacted(self.passkey.is_some()))
            .field("initiator_name", &self.initiator_name)
            .field(
                "security_credential",
                &redacted(self.security_credential.is_some()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let creds = Credentials::new("key", SecretString::from("s3cr3t-consumer"))
            .shortcode("174379")
            .passkey(SecretString::from("pa55key"))
            .initiator("testapi", SecretString::from("c2VjdXJpdHk="));
        let debug = format!("{creds:?}");
        for secret in ["s3cr3t-consumer", "pa55key", "c2VjdXJpdHk="] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("174379") && debug.contains("testapi"));
    }

    #[test]
    fn missing_pieces_are_invalid_requests() {
        let creds = Credentials::new("key", SecretString::from("secret"));
        assert!(matches!(
            creds.require_shortcode(),
            Err(Error::InvalidRequest {
                field: "BusinessShortCode",
                ..
            })
        ));
        assert!(creds.require_passkey().is_err());
        assert!(creds.require_initiator().is_err());
        let creds = creds.shortcode("17a379");
        assert!(creds.require_shortcode().is_err());
    }
}
