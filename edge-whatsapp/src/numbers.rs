//! Business phone numbers: what Graph knows about the number a tenant sends from.
//!
//! [`PhoneNumber::fetch`] (or [`WhatsAppClient::phone_number`]) reads
//! `GET /{phone_number_id}?fields=…` with the tenant's token: the display number and
//! verified name to show, the quality rating and name status that decide whether sends
//! will go out, and the throughput level that sets how fast the number may send
//! ([`PhoneNumber::messages_per_second`], for [`crate::Pacer::set_rate`]).

use serde::Deserialize;

use crate::client::WhatsAppClient;
use crate::credentials::Credentials;
use crate::error::Error;
use crate::ids::PhoneNumberId;
use crate::pacer::DEFAULT_RATE_PER_SECOND;

/// The fields asked for. `is_on_biz_app` and `platform_type` tell coexistence numbers
/// (also used in the WhatsApp Business app, with a fixed throughput) apart.
pub const PHONE_NUMBER_FIELDS: &str = "id,display_phone_number,verified_name,quality_rating,\
code_verification_status,name_status,throughput,platform_type,is_on_biz_app";

/// Messages per second of a number upgraded to the `HIGH` throughput level.
pub const HIGH_THROUGHPUT_PER_SECOND: u32 = 1000;
/// Messages per second of a coexistence number (fixed by Meta).
pub const COEXISTENCE_PER_SECOND: u32 = 20;

/// A business phone number as Graph describes it. Every field but the id and the display
/// number may be missing (Graph leaves out what a token may not see); the values are kept
/// as Meta spells them, so new ones need no new release.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RawPhoneNumber")]
pub struct PhoneNumber {
    /// The phone number id (what messages are sent from).
    pub id: PhoneNumberId,
    /// The number users see, such as `+254 700 000001`.
    pub display_phone_number: String,
    /// The approved display name.
    pub verified_name: Option<String>,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    pub quality_rating: Option<String>,
    /// `VERIFIED`, `NOT_VERIFIED` or `EXPIRED`.
    pub code_verification_status: Option<String>,
    /// The display name's review state, such as `APPROVED` or `PENDING_REVIEW`.
    pub name_status: Option<String>,
    /// `throughput.level`: `STANDARD` (80 messages/s) or `HIGH` (1000 messages/s).
    pub throughput_level: Option<String>,
    /// `CLOUD_API`, `ON_PREMISE` or `NOT_APPLICABLE`.
    pub platform_type: Option<String>,
    /// `true` for a coexistence number, still in use in the WhatsApp Business app.
    pub is_on_biz_app: Option<bool>,
}

#[derive(Deserialize)]
struct RawPhoneNumber {
    id: PhoneNumberId,
    display_phone_number: String,
    #[serde(default)]
    verified_name: Option<String>,
    #[serde(default)]
    quality_rating: Option<String>,
    #[serde(default)]
    code_verification_status: Option<String>,
    #[serde(default)]
    name_status: Option<String>,
    #[serde(default)]
    throughput: Option<RawThroughput>,
    #[serde(default)]
    platform_type: Option<String>,
    #[serde(default)]
    is_on_biz_app: Option<bool>,
}

#[derive(Deserialize)]
struct RawThroughput {
    #[serde(default)]
    level: Option<String>,
}

impl From<RawPhoneNumber> for PhoneNumber {
    fn from(raw: RawPhoneNumber) -> Self {
        Self {
            id: raw.id,
            display_phone_number: raw.display_phone_number,
            verified_name: raw.verified_name,
            quality_rating: raw.quality_rating,
            code_verification_status: raw.code_verification_status,
            name_status: raw.name_status,
            throughput_level: raw.throughput.and_then(|t| t.level),
            platform_type: raw.platform_type,
            is_on_biz_app: raw.is_on_biz_app,
        }
    }
}

impl PhoneNumber {
    /// Reads the number in `creds` (`GET /{phone_number_id}?fields=…`) with its token.
    ///
    /// A bad or expired token is [`Error::is_auth`] (190); a number the token cannot see
    /// is an [`Error::Api`] with code 100.
    pub async fn fetch(client: &WhatsAppClient, creds: &Credentials) -> Result<Self, Error> {
        client.phone_number(creds).await
    }

    /// How many messages per second the number may send: 20 for a coexistence number,
    /// 1000 at the `HIGH` throughput level, otherwise (`STANDARD`, missing or unknown)
    /// Meta's default of 80.
    pub fn messages_per_second(&self) -> u32 {
        if self.is_on_biz_app == Some(true) {
            return COEXISTENCE_PER_SECOND;
        }
        match self.throughput_level.as_deref() {
            Some("HIGH") => HIGH_THROUGHPUT_PER_SECOND,
            _ => DEFAULT_RATE_PER_SECOND,
        }
    }
}

impl WhatsAppClient {
    /// Reads the number in `creds` from Graph: see [`PhoneNumber::fetch`].
    pub async fn phone_number(&self, creds: &Credentials) -> Result<PhoneNumber, Error> {
        let path: String =
            url::form_urlencoded::byte_serialize(creds.phone_number_id().as_str().as_bytes())
                .collect();
        // The field list is plain ASCII with commas, which a query string may hold as is.
        let url = format!("{}?fields={PHONE_NUMBER_FIELDS}", self.url(creds, &path));
        let builder = self.http().get(url);
        Self::call(builder, creds).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> PhoneNumber {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn throughput_sets_the_rate() {
        let base = r#""id":"1","display_phone_number":"+254 700 000001""#;
        assert_eq!(parse(&format!("{{{base}}}")).messages_per_second(), 80);
        for (extra, rate) in [
            (r#","throughput":{"level":"STANDARD"}"#, 80),
            (r#","throughput":{"level":"HIGH"}"#, 1000),
            (r#","throughput":{"level":"NOT_APPLICABLE"}"#, 80),
            (r#","throughput":{}"#, 80),
            (r#","throughput":{"level":"HIGH"},"is_on_biz_app":true"#, 20),
            (
                r#","throughput":{"level":"HIGH"},"is_on_biz_app":false"#,
                1000,
            ),
        ] {
            let number = parse(&format!("{{{base}{extra}}}"));
            assert_eq!(number.messages_per_second(), rate, "{extra}");
        }
    }

    #[test]
    fn the_id_and_display_number_are_required() {
        assert!(serde_json::from_str::<PhoneNumber>(r#"{"id":"1"}"#).is_err());
        assert!(
            serde_json::from_str::<PhoneNumber>(r#"{"display_phone_number":"+1 555"}"#).is_err()
        );
    }
}
