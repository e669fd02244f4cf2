//! Typed, owned requests. Required fields go in `new(..)`, optional ones are chained
//! setters, then `.send(&client, &credentials)`. Everything is validated before anything
//! is sent; a violation is [`Error::InvalidRequest`].

mod c2b;
mod initiator;
mod qr;
mod stk;

pub use c2b::{C2bRegisterResponse, C2bVersion, RegisterUrls, ResponseType};
pub use initiator::{
    AccountBalanceQuery, B2bCommand, B2bPayment, B2cCommand, B2cPayment, B2cVersion,
    IdentifierType, InitiatorAccepted, Reversal, TransactionStatusQuery,
};
pub use qr::{DynamicQr, QrResponse, QrTransactionCode};
pub use stk::{
    MAX_ACCOUNT_REFERENCE, MAX_TRANSACTION_DESC, StkPush, StkPushResponse, StkQuery,
    StkQueryOutcome, StkQueryResult,
};

use edge_core::{Country, Currency, Money, Msisdn};
use serde::{Deserialize, Deserializer};

use crate::Error;

/// Amounts are whole, positive Kenyan shillings.
pub(crate) fn whole_kes(field: &'static str, amount: &Money) -> Result<i64, Error> {
    if amount.currency() != Currency::Kes {
        return Err(Error::invalid(field, "M-Pesa amounts are in KES"));
    }
    if !amount.is_positive() {
        return Err(Error::invalid(field, "the amount must be at least 1 KES"));
    }
    amount
        .whole_major()
        .ok_or_else(|| Error::invalid(field, "M-Pesa takes whole shillings only"))
}

/// Free text between `min` and `max` characters, without control characters.
pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), Error> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(Error::invalid(
            field,
            format!("must be {min} to {max} characters, not {len}"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be blank"));
    }
    Ok(())
}

/// A public callback URL: HTTPS (HTTP only when the client allows it, for fakes), a host,
/// and no whitespace anywhere (Daraja answers `Invalid CallBackURL`).
pub(crate) fn check_url(field: &'static str, value: &str, allow_http: bool) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is empty"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(field, "must not contain whitespace"));
    }
    let url =
        url::Url::parse(value).map_err(|e| Error::invalid(field, format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err(Error::invalid(field, "must be an https:// URL")),
    }
    if url.host().is_none() {
        return Err(Error::invalid(field, "must have a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(field, "must not carry credentials"));
    }
    Ok(())
}

/// A Kenyan number in Daraja's 12-digit form.
pub(crate) fn kenyan(field: &'static str, msisdn: &Msisdn) -> Result<String, Error> {
    if msisdn.country() != Country::Kenya {
        return Err(Error::invalid(
            field,
            "M-Pesa Kenya takes Kenyan numbers only",
        ));
    }
    Ok(msisdn.daraja().to_owned())
}

/// Deserializes a string or a number as text; null or absent as empty.
pub(crate) fn de_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(crate::json::text(&value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_whole_positive_shillings() {
        let kes = |s: &str| Money::parse(s, Currency::Kes).unwrap();
        assert_eq!(whole_kes("Amount", &kes("1500.00")).unwrap(), 1500);
        assert!(whole_kes("Amount", &kes("0")).is_err());
        assert!(whole_kes("Amount", &kes("-5")).is_err());
        assert!(whole_kes("Amount", &kes("10.50")).is_err());
        assert!(whole_kes("Amount", &Money::parse("10", Currency::Ugx).unwrap()).is_err());
    }

    #[test]
    fn urls_must_be_https_without_whitespace() {
        assert!(check_url("CallBackURL", "https://a.example.com/cb", false).is_ok());
        assert!(check_url("CallBackURL", "http://a.example.com/cb", false).is_err());
        assert!(check_url("CallBackURL", "http://127.0.0.1:9/cb", true).is_ok());
        assert!(check_url("CallBackURL", " https://a.example.com/cb", false).is_err());
        assert!(check_url("CallBackURL", "https://a.example.com/c b", false).is_err());
        assert!(check_url("CallBackURL", "https://u:p@a.example.com/", false).is_err());
        assert!(check_url("CallBackURL", "ftp://a.example.com/", true).is_err());
        assert!(check_url("CallBackURL", "", false).is_err());
    }

    #[test]
    fn text_lengths_count_characters() {
        assert!(check_text("AccountReference", "INV-000042", 1, 12).is_ok());
        assert!(check_text("AccountReference", "INV-0000421234", 1, 12).is_err());
        assert!(check_text("AccountReference", "", 1, 12).is_err());
        assert!(check_text("AccountReference", "   ", 1, 12).is_err());
        assert!(check_text("AccountReference", "a\nb", 1, 12).is_err());
    }
}
