//! C2B: registering the validation and confirmation URLs.

use serde::{Deserialize, Serialize};

use super::{check_url, de_text};
use crate::client::ResponseCheck;
use crate::{Credentials, DarajaClient, Error};

/// The C2B API version enabled on the Daraja app (a mismatch answers
/// `401.003.01 … no apiproduct match found`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum C2bVersion {
    /// `/mpesa/c2b/v1/registerurl` (confirmations carry a SHA-256 of the MSISDN).
    V1,
    /// `/mpesa/c2b/v2/registerurl` (confirmations carry a masked MSISDN).
    #[default]
    V2,
}

/// What M-Pesa does when the validation URL does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ResponseType {
    /// Complete the payment.
    #[default]
    Completed,
    /// Cancel the payment.
    Cancelled,
}

/// Registers the confirmation and validation URLs of the credentials' shortcode.
///
/// In production this is one-shot per shortcode; changing URLs needs Safaricom's portal.
/// URLs are checked against Safaricom's keyword rules (no `mpesa`, `m-pesa`, `safaricom`,
/// `exe`, `exec`, `cmd`, `sql` or `query`, in any case) before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterUrls {
    confirmation_url: String,
    validation_url: String,
    response_type: ResponseType,
    version: C2bVersion,
}

#[derive(Serialize)]
struct RegisterWire<'a> {
    #[serde(rename = "ShortCode")]
    short_code: &'a str,
    #[serde(rename = "ResponseType")]
    response_type: &'static str,
    #[serde(rename = "ConfirmationURL")]
    confirmation_url: &'a str,
    #[serde(rename = "ValidationURL")]
    validation_url: &'a str,
}

/// Daraja's answer to a URL registration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct C2bRegisterResponse {
    /// `OriginatorCoversationID` (sic).
    #[serde(
        rename = "OriginatorCoversationID",
        alias = "OriginatorConversationID",
        deserialize_with = "de_text",
        default
    )]
    pub originator_conversation_id: String,
    /// `ResponseCode` (`"0"`).
    #[serde(rename = "ResponseCode", deserialize_with = "de_text", default)]
    pub response_code: String,
    /// `ResponseDescription`.
    #[serde(rename = "ResponseDescription", deserialize_with = "de_text", default)]
    pub response_description: String,
}

const FORBIDDEN: [&str; 8] = [
    "m-pesa",
    "mpesa",
    "safaricom",
    "exec",
    "exe",
    "cmd",
    "sql",
    "query",
];

fn check_c2b_url(field: &'static str, url: &str, allow_http: bool) -> Result<(), Error> {
    check_url(field, url, allow_http)?;
    let lower = url.to_ascii_lowercase();
    if let Some(word) = FORBIDDEN.iter().find(|w| lower.contains(*w)) {
        return Err(Error::invalid(
            field,
            format!("Safaricom rejects C2B URLs containing {word:?}"),
        ));
    }
    Ok(())
}

impl RegisterUrls {
    /// Registers `confirmation_url` and `validation_url` (default: v2, `Completed`).
    pub fn new(confirmation_url: impl Into<String>, validation_url: impl Into<String>) -> Self {
        Self {
            confirmation_url: confirmation_url.into(),
            validation_url: validation_url.into(),
            response_type: ResponseType::Completed,
            version: C2bVersion::V2,
        }
    }

    /// The default action when validation does not answer in time.
    pub fn response_type(mut self, response_type: ResponseType) -> Self {
        self.response_type = response_type;
        self
    }

    /// The API version (default v2).
    pub fn version(mut self, version: C2bVersion) -> Self {
        self.version = version;
        self
    }

    fn body(&self, credentials: &Credentials, allow_http: bool) -> Result<Vec<u8>, Error> {
        check_c2b_url("ConfirmationURL", &self.confirmation_url, allow_http)?;
        check_c2b_url("ValidationURL", &self.validation_url, allow_http)?;
        let wire = RegisterWire {
            short_code: credentials.require_shortcode()?,
            response_type: match self.response_type {
                ResponseType::Completed => "Completed",
                ResponseType::Cancelled => "Cancelled",
            },
            confirmation_url: &self.confirmation_url,
            validation_url: &self.validation_url,
        };
        serde_json::to_vec(&wire).map_err(|e| Error::invalid("body", e.to_string()))
    }

    /// The JSON body that would be sent (strict validation: HTTPS URLs).
    pub fn to_json(&self, credentials: &Credentials) -> Result<String, Error> {
        String::from_utf8(self.body(credentials, false)?)
            .map_err(|e| Error::invalid("body", e.to_string()))
    }

    /// Sends the registration.
    pub async fn send(
        &self,
        client: &DarajaClient,
        credentials: &Credentials,
    ) -> Result<C2bRegisterResponse, Error> {
        let body = self.body(credentials, client.allow_http_callbacks())?;
        let path = match self.version {
            C2bVersion::V1 => "/mpesa/c2b/v1/registerurl",
            C2bVersion::V2 => "/mpesa/c2b/v2/registerurl",
        };
        client
            .post(credentials, path, body, ResponseCheck::ResponseCodeZero)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_keywords_are_refused() {
        assert!(
            check_c2b_url(
                "ConfirmationURL",
                "https://pay.example.com/c2b/confirm",
                false
            )
            .is_ok()
        );
        for bad in [
            "https://pay.example.com/mpesa/confirm",
            "https://pay.example.com/M-PESA/confirm",
            "https://safaricom.pay.example.com/confirm",
            "https://pay.example.com/c2b?query=1",
        ] {
            assert!(
                check_c2b_url("ConfirmationURL", bad, false).is_err(),
                "{bad}"
            );
        }
    }
}
