//! M-Pesa Express: STK push and STK query.

use chrono::{DateTime, Utc};
use edge_core::{Money, Msisdn};
use serde::{Deserialize, Serialize};

use super::{check_text, check_url, de_text, kenyan, whole_kes};
use crate::callbacks::{ResultCode, StkOutcome, StkPayment};
use crate::client::{ResponseCheck, parse_success};
use crate::credentials::{StkAccount, check_shortcode};
use crate::error::DarajaErrorKind;
use crate::time::{Timestamp, stk_password};
use crate::{Credentials, DarajaClient, Error};

/// The longest `AccountReference` Daraja accepts.
pub const MAX_ACCOUNT_REFERENCE: usize = 12;
/// The longest `TransactionDesc` Daraja accepts.
pub const MAX_TRANSACTION_DESC: usize = 13;

/// An STK push (M-Pesa Express): a PIN prompt on the payer's phone.
///
/// Paybill or till comes from the credentials ([`Credentials::till`]): a paybill sends
/// `CustomerPayBillOnline` with the paybill as `PartyB`; a till sends
/// `CustomerBuyGoodsOnline` with the store number as `BusinessShortCode` and the till as
/// `PartyB`. The timestamp and password come from one reading of the client's clock.
///
/// A push is never retried by this crate except after an invalid-token answer (which
/// means Daraja refused it). De-duplicate "pay" buttons in the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StkPush {
    phone: Msisdn,
    amount: Money,
    account_reference: String,
    callback_url: String,
    description: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StkPushWire<'a> {
    business_short_code: &'a str,
    password: String,
    timestamp: &'a str,
    transaction_type: &'static str,
    amount: String,
    party_a: &'a str,
    party_b: &'a str,
    phone_number: &'a str,
    #[serde(rename = "CallBackURL")]
    call_back_url: &'a str,
    account_reference: &'a str,
    transaction_desc: &'a str,
}

/// Daraja's synchronous answer to an STK push: accepted for processing, **not** paid.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StkPushResponse {
    /// `MerchantRequestID`.
    #[serde(rename = "MerchantRequestID", deserialize_with = "de_text", default)]
    pub merchant_request_id: String,
    /// `CheckoutRequestID`: persist it; it keys the callback and STK query.
    #[serde(rename = "CheckoutRequestID", deserialize_with = "de_text")]
    pub checkout_request_id: String,
    /// `ResponseCode` (`"0"`).
    #[serde(rename = "ResponseCode", deserialize_with = "de_text", default)]
    pub response_code: String,
    /// `ResponseDescription`.
    #[serde(rename = "ResponseDescription", deserialize_with = "de_text", default)]
    pub response_description: String,
    /// `CustomerMessage`.
    #[serde(rename = "CustomerMessage", deserialize_with = "de_text", default)]
    pub customer_message: String,
}

impl StkPush {
    /// Asks `phone` to pay `amount` (whole KES) for `account_reference` (at most 12
    /// characters, shown to the payer), with the result posted to `callback_url`.
    pub fn new(
        phone: Msisdn,
        amount: Money,
        account_reference: impl Into<String>,
        callback_url: impl Into<String>,
    ) -> Self {
        Self {
            phone,
            amount,
            account_reference: account_reference.into(),
            callback_url: callback_url.into(),
            description: "Payment".to_owned(),
        }
    }

    /// `TransactionDesc`, at most 13 characters (default `Payment`).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    fn wire<'a>(
        &'a self,
        credentials: &'a Credentials,
        timestamp: &'a Timestamp,
        phone: &'a str,
        allow_http: bool,
    ) -> Result<StkPushWire<'a>, Error> {
        let amount = whole_kes("Amount", &self.amount)?;
        check_text(
            "AccountReference",
            &self.account_reference,
            1,
            MAX_ACCOUNT_REFERENCE,
        )?;
        check_text(
            "TransactionDesc",
            &self.description,
            1,
            MAX_TRANSACTION_DESC,
        )?;
        check_url("CallBackURL", &self.callback_url, allow_http)?;
        let shortcode = credentials.require_shortcode()?;
        let passkey = credentials.require_passkey()?;
        let (transaction_type, party_b) = match credentials.stk_account() {
            StkAccount::PayBill => ("CustomerPayBillOnline", shortcode),
            StkAccount::Till { till_number } => {
                check_shortcode("PartyB", till_number)?;
                ("CustomerBuyGoodsOnline", till_number.as_str())
            }
        };
        Ok(StkPushWire {
            business_short_code: shortcode,
            password: stk_password(shortcode, passkey, timestamp),
            timestamp: timestamp.as_str(),
            transaction_type,
            amount: amount.to_string(),
            party_a: phone,
            party_b,
            phone_number: phone,
            call_back_url: &self.callback_url,
            account_reference: &self.account_reference,
            transaction_desc: &self.description,
        })
    }

    fn body(
        &self,
        credentials: &Credentials,
        now: DateTime<Utc>,
        allow_http: bool,
    ) -> Result<Vec<u8>, Error> {
        let timestamp = Timestamp::at(now);
        let phone = kenyan("PhoneNumber", &self.phone)?;
        let wire = self.wire(credentials, &timestamp, &phone, allow_http)?;
        serde_json::to_vec(&wire).map_err(|e| Error::invalid("body", e.to_string()))
    }

    /// The JSON body that would be sent at `now` (strict validation: HTTPS callbacks).
    pub fn to_json(&self, credentials: &Credentials, now: DateTime<Utc>) -> Result<String, Error> {
        let body = self.body(credentials, now, false)?;
        String::from_utf8(body).map_err(|e| Error::invalid("body", e.to_string()))
    }

    /// Sends the push.
    pub async fn send(
        &self,
        client: &DarajaClient,
        credentials: &Credentials,
    ) -> Result<StkPushResponse, Error> {
        let body = self.body(credentials, client.now(), client.allow_http_callbacks())?;
        client
            .post(
                credentials,
                "/mpesa/stkpush/v1/processrequest",
                body,
                ResponseCheck::ResponseCodeZero,
            )
            .await
    }
}

/// Asks Daraja what became of an STK push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StkQuery {
    checkout_request_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StkQueryWire<'a> {
    business_short_code: &'a str,
    password: String,
    timestamp: &'a str,
    #[serde(rename = "CheckoutRequestID")]
    checkout_request_id: &'a str,
}

#[derive(Deserialize)]
struct StkQueryWireResponse {
    #[serde(rename = "MerchantRequestID", deserialize_with = "de_text", default)]
    merchant_request_id: String,
    #[serde(rename = "CheckoutRequestID", deserialize_with = "de_text", default)]
    checkout_request_id: String,
    #[serde(rename = "ResultCode", deserialize_with = "de_text", default)]
    result_code: String,
    #[serde(rename = "ResultDesc", deserialize_with = "de_text", default)]
    result_desc: String,
}

/// A finished STK push, as the query reports it (no receipt, amount or phone: the
/// query does not return them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StkQueryResult {
    /// `MerchantRequestID`.
    pub merchant_request_id: String,
    /// `CheckoutRequestID`.
    pub checkout_request_id: String,
    /// The raw `ResultCode`.
    pub result_code: ResultCode,
    /// `ResultDesc`.
    pub result_desc: String,
    /// The typed outcome (`Paid` carries no details here).
    pub outcome: StkOutcome,
}

/// What STK query says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StkQueryOutcome {
    /// The payer has not finished ("The transaction is being processed"). Ask again later
    /// (every 15–30 s; aggressive polling earns spike-arrest errors).
    Pending,
    /// The push has an outcome.
    Finished(StkQueryResult),
}

impl StkQuery {
    /// A query for `checkout_request_id` (from [`StkPushResponse`]).
    pub fn new(checkout_request_id: impl Into<String>) -> Self {
        Self {
            checkout_request_id: checkout_request_id.into(),
        }
    }

    fn body(&self, credentials: &Credentials, now: DateTime<Utc>) -> Result<Vec<u8>, Error> {
        check_text("CheckoutRequestID", &self.checkout_request_id, 1, 100)?;
        let shortcode = credentials.require_shortcode()?;
        let passkey = credentials.require_passkey()?;
        let timestamp = Timestamp::at(now);
        let wire = StkQueryWire {
            business_short_code: shortcode,
            password: stk_password(shortcode, passkey, &timestamp),
            timestamp: timestamp.as_str(),
            checkout_request_id: &self.checkout_request_id,
        };
        serde_json::to_vec(&wire).map_err(|e| Error::invalid("body", e.to_string()))
    }

    /// The JSON body that would be sent at `now`.
    pub fn to_json(&self, credentials: &Credentials, now: DateTime<Utc>) -> Result<String, Error> {
        let body = self.body(credentials, now)?;
        String::from_utf8(body).map_err(|e| Error::invalid("body", e.to_string()))
    }

    /// Sends the query. "Still being processed" is `Ok(StkQueryOutcome::Pending)`.
    pub async fn send(
        &self,
        client: &DarajaClient,
        credentials: &Credentials,
    ) -> Result<StkQueryOutcome, Error> {
        let body = self.body(credentials, client.now())?;
        let answer: Result<StkQueryWireResponse, Error> = client
            .post(
                credentials,
                "/mpesa/stkpushquery/v1/query",
                body,
                ResponseCheck::ResponseCodeZero,
            )
            .await;
        StkQueryOutcome::from_answer(answer, &self.checkout_request_id)
    }
}

impl StkQueryOutcome {
    /// Reads an STK query answer (status and body), for callers with their own transport.
    pub fn from_http(status: u16, body: &[u8]) -> Result<Self, Error> {
        let answer = if (200..300).contains(&status) {
            parse_success::<StkQueryWireResponse>(status, body, ResponseCheck::ResponseCodeZero)
        } else {
            Err(Error::from_response(status, body))
        };
        Self::from_answer(answer, "")
    }

    fn from_answer(
        answer: Result<StkQueryWireResponse, Error>,
        checkout_request_id: &str,
    ) -> Result<Self, Error> {
        match answer {
            Ok(r) => {
                let result_code = ResultCode::new(r.result_code);
                let outcome =
                    StkOutcome::from_code(&result_code, &r.result_desc, StkPayment::default());
                Ok(StkQueryOutcome::Finished(StkQueryResult {
                    merchant_request_id: r.merchant_request_id,
                    checkout_request_id: if r.checkout_request_id.is_empty() {
                        checkout_request_id.to_owned()
                    } else {
                        r.checkout_request_id
                    },
                    result_code,
                    result_desc: r.result_desc,
                    outcome,
                }))
            }
            Err(Error::Daraja(e)) if e.kind() == DarajaErrorKind::Pending => {
                Ok(StkQueryOutcome::Pending)
            }
            Err(e) => Err(e),
        }
    }
}
