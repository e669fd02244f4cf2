//! Parsers for what Daraja posts to us, and the bodies we answer with.
//!
//! Every parser takes the raw bytes (so it works with any web framework, after the raw
//! body has been stored) and tolerates Daraja's quirks: codes as numbers or strings
//! (including text codes such as `SFC_IC0003` or `R000002`), parameter containers that are
//! a list or a single object, items without `Value`, keys in unexpected case, extra
//! fields. Unknown result codes are preserved, never a parse failure. A parser fails only
//! when the body is not JSON or lacks the identifier needed to match it to a request.

use std::fmt;

use chrono::{DateTime, Utc};
use edge_core::{Currency, Money, Msisdn};
use serde_json::Value;

use crate::json::{get, get_any, one_or_many, text, text_opt, text_or_empty};
use crate::time::parse_daraja_time;

/// Why a callback body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable Daraja callback: {reason}")]
pub struct CallbackError {
    reason: &'static str,
}

impl CallbackError {
    fn new(reason: &'static str) -> Self {
        Self { reason }
    }

    /// What is wrong with the body.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// A Daraja result code, normalised to text (`"0"`, `"1032"`, `"SFC_IC0003"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResultCode(String);

impl ResultCode {
    /// Wraps a code.
    pub fn new(code: impl Into<String>) -> Self {
        Self(code.into().trim().to_owned())
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `0`.
    pub fn is_success(&self) -> bool {
        self.0 == "0" || self.0 == "00000000"
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `{Name, Value}` or `{Key, Value}` item. `value` is `None` when Daraja omits it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// `Name` or `Key`.
    pub key: String,
    /// `Value`, as sent.
    pub value: Option<Value>,
}

impl KeyValue {
    /// The value as text (numbers rendered as Daraja wrote them).
    pub fn text(&self) -> Option<String> {
        self.value.as_ref().and_then(text)
    }
}

fn key_values(container: Option<&Value>, list_names: &[&str]) -> Vec<KeyValue> {
    let list = container.and_then(|c| get_any(c, list_names));
    one_or_many(list)
        .into_iter()
        .filter_map(|item| {
            let key = get_any(item, &["Key", "Name"]).and_then(text)?;
            let value = get(item, "Value").filter(|v| !v.is_null()).cloned();
            Some(KeyValue { key, value })
        })
        .collect()
}

fn find<'a>(items: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    items.iter().find(|kv| kv.key.eq_ignore_ascii_case(key))
}

fn money(text: Option<String>) -> Option<Money> {
    Money::parse(text?.trim(), Currency::Kes).ok()
}

// ---------------------------------------------------------------------------------------
// STK push callback
// ---------------------------------------------------------------------------------------

/// The details of a paid STK push. Each is optional: Daraja has been seen omitting them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StkPayment {
    /// `MpesaReceiptNumber`: globally unique, the second idempotency key.
    pub receipt: Option<String>,
    /// `Amount` in KES. Check it against the invoice.
    pub amount: Option<Money>,
    /// `PhoneNumber`, if present and a valid number.
    pub phone: Option<Msisdn>,
    /// `TransactionDate` (sent in East Africa Time), as an instant.
    pub transaction_date: Option<DateTime<Utc>>,
}

/// What happened to an STK push.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StkOutcome {
    /// Result code 0. From a callback this carries the receipt; from an STK query the
    /// fields are `None` (the query does not return them).
    Paid(StkPayment),
    /// 1032 (or 1031): the payer cancelled.
    Cancelled,
    /// 1037 (no response from the handset) or 1019 (expired before the payer acted).
    TimedOut,
    /// 1: the payer's balance (including Fuliza) was too low.
    InsufficientFunds,
    /// 2001: wrong M-Pesa PIN.
    WrongPin,
    /// Any other code, preserved with its description.
    Other {
        /// The result code.
        code: ResultCode,
        /// `ResultDesc`.
        description: String,
    },
}

impl StkOutcome {
    /// Maps an STK result code (callback or query vocabulary).
    pub fn from_code(code: &ResultCode, description: &str, payment: StkPayment) -> Self {
        match code.as_str() {
            "0" => StkOutcome::Paid(payment),
            "1032" | "1031" => StkOutcome::Cancelled,
            "1037" | "1019" => StkOutcome::TimedOut,
            "1" => StkOutcome::InsufficientFunds,
            "2001" => StkOutcome::WrongPin,
            _ => StkOutcome::Other {
                code: code.clone(),
                description: description.to_owned(),
            },
        }
    }

    /// True for [`StkOutcome::Paid`].
    pub fn is_paid(&self) -> bool {
        matches!(self, StkOutcome::Paid(_))
    }
}

/// An STK push result posted to `CallBackURL`.
#[derive(Debug, Clone, PartialEq)]
pub struct StkCallback {
    /// `MerchantRequestID` (empty if absent).
    pub merchant_request_id: String,
    /// `CheckoutRequestID`: the key to match the push.
    pub checkout_request_id: String,
    /// The raw `ResultCode`.
    pub result_code: ResultCode,
    /// `ResultDesc`.
    pub result_desc: String,
    /// The typed outcome.
    pub outcome: StkOutcome,
    /// Every `CallbackMetadata.Item`, as sent.
    pub metadata: Vec<KeyValue>,
}

/// Parses an STK callback (`{"Body": {"stkCallback": {…}}}`).
pub fn parse_stk_callback(body: &[u8]) -> Result<StkCallback, CallbackError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|_| CallbackError::new("the body is not JSON"))?;
    let callback = get(&root, "Body")
        .and_then(|b| get(b, "stkCallback"))
        .or_else(|| get(&root, "stkCallback"))
        .unwrap_or(&root);
    let checkout_request_id = text_opt(callback, &["CheckoutRequestID"])
        .ok_or(CallbackError::new("CheckoutRequestID is missing"))?;
    let result_code = get(callback, "ResultCode")
        .and_then(text)
        .map(ResultCode::new)
        .ok_or(CallbackError::new("ResultCode is missing"))?;
    let result_desc = text_or_empty(callback, &["ResultDesc"]);
    let metadata = key_values(get(callback, "CallbackMetadata"), &["Item"]);
    let item_text = |k: &str| find(&metadata, k).and_then(KeyValue::text);
    let payment = StkPayment {
        receipt: item_text("MpesaReceiptNumber").filter(|r| !r.trim().is_empty()),
        amount: money(item_text("Amount")),
        phone: item_text("PhoneNumber").and_then(|p| Msisdn::parse_international(&p).ok()),
        transaction_date: item_text("TransactionDate").and_then(|t| parse_daraja_time(&t)),
    };
    let outcome = StkOutcome::from_code(&result_code, &result_desc, payment);
    Ok(StkCallback {
        merchant_request_id: text_or_empty(callback, &["MerchantRequestID"]),
        checkout_request_id,
        result_code,
        result_desc,
        outcome,
        metadata,
    })
}

// ---------------------------------------------------------------------------------------
// Initiator API results (B2C, B2B, transaction status, account balance, reversal)
// ---------------------------------------------------------------------------------------

/// A result posted to `ResultURL` by B2C, B2B, transaction status, account balance and
/// reversal.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultCallback {
    /// `ResultType`: `0` final, `1` more messages expected (as text; may be absent).
    pub result_type: Option<String>,
    /// `ResultCode`, normalised to text (`0`, `2001`, `R000002`, …).
    pub result_code: ResultCode,
    /// `ResultDesc`.
    pub result_desc: String,
    /// `OriginatorConversationID` (the B2C idempotency key; empty if absent).
    pub originator_conversation_id: String,
    /// `ConversationID` (empty if absent).
    pub conversation_id: String,
    /// `TransactionID`; on failures often a placeholder like `OAK0000000`.
    pub transaction_id: Option<String>,
    /// `ResultParameters.ResultParameter`, list or single object, keys may repeat.
    pub parameters: Vec<KeyValue>,
    /// `ReferenceData.ReferenceItem`, list or single object.
    pub reference_data: Vec<KeyValue>,
}

/// Parses an initiator-API result (`{"Result": {…}}`).
pub fn parse_result(body: &[u8]) -> Result<ResultCallback, CallbackError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|_| CallbackError::new("the body is not JSON"))?;
    let result = get(&root, "Result").unwrap_or(&root);
    let result_code = get(result, "ResultCode")
        .and_then(text)
        .map(ResultCode::new)
        .ok_or(CallbackError::new("ResultCode is missing"))?;
    let originator_conversation_id = text_or_empty(
        result,
        &["OriginatorConversationID", "OriginatorCoversationID"],
    );
    let conversation_id = text_or_empty(result, &["ConversationID"]);
    if originator_conversation_id.is_empty() && conversation_id.is_empty() {
        return Err(CallbackError::new(
            "neither OriginatorConversationID nor ConversationID is present",
        ));
    }
    Ok(ResultCallback {
        result_type: text_opt(result, &["ResultType"]),
        result_code,
        result_desc: text_or_empty(result, &["ResultDesc"]),
        originator_conversation_id,
        conversation_id,
        transaction_id: text_opt(result, &["TransactionID"]),
        parameters: key_values(get(result, "ResultParameters"), &["ResultParameter"]),
        reference_data: key_values(get(result, "ReferenceData"), &["ReferenceItem"]),
    })
}

/// The B2C-specific result parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct B2cPayment {
    /// `TransactionReceipt`.
    pub receipt: Option<String>,
    /// `TransactionAmount`.
    pub amount: Option<Money>,
    /// `ReceiverPartyPublicName` (`"2547… - NAME"`).
    pub receiver_public_name: Option<String>,
    /// `TransactionCompletedDateTime` (`DD.MM.YYYY HH:mm:ss`, EAT).
    pub completed_at: Option<DateTime<Utc>>,
    /// `B2CRecipientIsRegisteredCustomer` (`Y`/`N`).
    pub recipient_is_registered: Option<bool>,
    /// `B2CUtilityAccountAvailableFunds`.
    pub utility_account_funds: Option<Money>,
    /// `B2CWorkingAccountAvailableFunds`.
    pub working_account_funds: Option<Money>,
    /// `B2CChargesPaidAccountAvailableFunds` (usually negative).
    pub charges_paid_account_funds: Option<Money>,
}

/// One account of an account-balance string (`Name|KES|a1|a2|a3|a4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountBalance {
    /// E.g. `Utility Account`.
    pub name: String,
    /// The currency code as sent (`KES`).
    pub currency: String,
    /// The first amount: the available balance, if it parses.
    pub available: Option<Money>,
    /// Every amount as sent (Daraja labels the others inconsistently).
    pub amounts: Vec<String>,
}

/// Parses Daraja's balance string: accounts separated by `&`, fields by `|`.
pub fn parse_account_balances(text: &str) -> Vec<AccountBalance> {
    text.split('&')
        .filter(|a| !a.trim().is_empty())
        .map(|account| {
            let mut fields = account.split('|').map(str::trim);
            let name = fields.next().unwrap_or_default().to_owned();
            let currency = fields.next().unwrap_or_default().to_owned();
            let amounts: Vec<String> = fields.map(str::to_owned).collect();
            let available = amounts.first().and_then(|a| {
                let currency = currency.parse::<Currency>().ok()?;
                Money::parse(a, currency).ok()
            });
            AccountBalance {
                name,
                currency,
                available,
                amounts,
            }
        })
        .collect()
}

impl ResultCallback {
    /// True for result code 0.
    pub fn is_success(&self) -> bool {
        self.result_code.is_success()
    }

    /// False only when `ResultType` says more messages are expected (`1`).
    pub fn is_final(&self) -> bool {
        self.result_type.as_deref().map(str::trim) != Some("1")
    }

    /// The first parameter named `key` (ignoring case).
    pub fn parameter(&self, key: &str) -> Option<&KeyValue> {
        find(&self.parameters, key)
    }

    /// The first parameter named `key`, as text.
    pub fn parameter_text(&self, key: &str) -> Option<String> {
        self.parameter(key).and_then(KeyValue::text)
    }

    /// The B2C fields, if this is a successful B2C result.
    pub fn b2c_payment(&self) -> Option<B2cPayment> {
        if !self.is_success() || self.parameter("TransactionReceipt").is_none() {
            return None;
        }
        let t = |k: &str| self.parameter_text(k);
        Some(B2cPayment {
            receipt: t("TransactionReceipt"),
            amount: money(t("TransactionAmount")),
            receiver_public_name: t("ReceiverPartyPublicName"),
            completed_at: t("TransactionCompletedDateTime").and_then(|d| parse_daraja_time(&d)),
            recipient_is_registered: t("B2CRecipientIsRegisteredCustomer")
                .map(|v| v.trim().eq_ignore_ascii_case("Y")),
            utility_account_funds: money(t("B2CUtilityAccountAvailableFunds")),
            working_account_funds: money(t("B2CWorkingAccountAvailableFunds")),
            charges_paid_account_funds: money(t("B2CChargesPaidAccountAvailableFunds")),
        })
    }

    /// The accounts of an account-balance result (`AccountBalance`) or of a reversal
    /// (`DebitAccountBalance`); empty if neither is present.
    pub fn account_balances(&self) -> Vec<AccountBalance> {
        self.parameter_text("AccountBalance")
            .or_else(|| self.parameter_text("DebitAccountBalance"))
            .map(|t| parse_account_balances(&t))
            .unwrap_or_default()
    }

    /// `Amount` or `TransactionAmount`, in KES.
    pub fn amount(&self) -> Option<Money> {
        money(
            self.parameter_text("Amount")
                .or_else(|| self.parameter_text("TransactionAmount")),
        )
    }

    /// The completion time, from whichever field this API uses (`FinalisedTime`,
    /// `TransCompletedTime`, `TransactionCompletedDateTime`, `BOCompletedTime`).
    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        [
            "FinalisedTime",
            "TransCompletedTime",
            "TransactionCompletedDateTime",
            "BOCompletedTime",
        ]
        .iter()
        .find_map(|k| self.parameter_text(k))
        .and_then(|t| parse_daraja_time(&t))
    }
}

// ---------------------------------------------------------------------------------------
// C2B validation and confirmation
// ---------------------------------------------------------------------------------------

/// A C2B validation request or confirmation (the two share their shape).
///
/// Every field except `TransID` defaults to the empty string. `msisdn` is whatever Daraja
/// sent: masked (`2547 ***** 149`, v2) or a SHA-256 hex digest (v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2bTransaction {
    /// `TransactionType` (`Pay Bill`, `Buy Goods`, …).
    pub transaction_type: String,
    /// `TransID`: the receipt and idempotency key.
    pub trans_id: String,
    /// `TransTime` as sent.
    pub trans_time_raw: String,
    /// `TransTime` as an instant (sent in East Africa Time).
    pub trans_time: Option<DateTime<Utc>>,
    /// `TransAmount` as sent.
    pub amount_raw: String,
    /// `TransAmount` in KES, if it parses.
    pub amount: Option<Money>,
    /// `BusinessShortCode`.
    pub business_short_code: String,
    /// `BillRefNumber` (free text typed by the payer).
    pub bill_ref_number: String,
    /// `InvoiceNumber`.
    pub invoice_number: String,
    /// `OrgAccountBalance` (empty on validation).
    pub org_account_balance: String,
    /// `ThirdPartyTransID` (echo of the validation reply).
    pub third_party_trans_id: String,
    /// `MSISDN`: masked or hashed.
    pub msisdn: String,
    /// `FirstName`.
    pub first_name: String,
    /// `MiddleName`.
    pub middle_name: String,
    /// `LastName`.
    pub last_name: String,
}

/// Parses a C2B validation request or confirmation.
pub fn parse_c2b(body: &[u8]) -> Result<C2bTransaction, CallbackError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|_| CallbackError::new("the body is not JSON"))?;
    if !root.is_object() {
        return Err(CallbackError::new("the body is not a JSON object"));
    }
    let trans_id = text_opt(&root, &["TransID"]).ok_or(CallbackError::new("TransID is missing"))?;
    let f = |k: &str| text_or_empty(&root, &[k]);
    let trans_time_raw = f("TransTime");
    let amount_raw = f("TransAmount");
    Ok(C2bTransaction {
        transaction_type: f("TransactionType"),
        trans_id,
        trans_time: parse_daraja_time(&trans_time_raw),
        trans_time_raw,
        amount: Money::parse(amount_raw.trim(), Currency::Kes).ok(),
        amount_raw,
        business_short_code: f("BusinessShortCode"),
        bill_ref_number: f("BillRefNumber"),
        invoice_number: f("InvoiceNumber"),
        org_account_balance: f("OrgAccountBalance"),
        third_party_trans_id: f("ThirdPartyTransID"),
        msisdn: f("MSISDN"),
        first_name: f("FirstName"),
        middle_name: f("MiddleName"),
        last_name: f("LastName"),
    })
}

/// Parses a C2B validation request (same shape as a confirmation).
pub fn parse_c2b_validation(body: &[u8]) -> Result<C2bTransaction, CallbackError> {
    parse_c2b(body)
}

/// Parses a C2B confirmation.
pub fn parse_c2b_confirmation(body: &[u8]) -> Result<C2bTransaction, CallbackError> {
    parse_c2b(body)
}

/// Why a C2B payment is rejected at validation; the code selects the payer's SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum C2bRejection {
    /// `C2B00011`.
    InvalidMsisdn,
    /// `C2B00012`.
    InvalidAccountNumber,
    /// `C2B00013`.
    InvalidAmount,
    /// `C2B00014`.
    InvalidKyc,
    /// `C2B00015`.
    InvalidShortcode,
    /// `C2B00016`.
    Other,
}

impl C2bRejection {
    /// The Daraja code.
    pub fn code(self) -> &'static str {
        match self {
            C2bRejection::InvalidMsisdn => "C2B00011",
            C2bRejection::InvalidAccountNumber => "C2B00012",
            C2bRejection::InvalidAmount => "C2B00013",
            C2bRejection::InvalidKyc => "C2B00014",
            C2bRejection::InvalidShortcode => "C2B00015",
            C2bRejection::Other => "C2B00016",
        }
    }
}

/// Our answer to a C2B validation request (must arrive within about 8 seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum C2bValidationReply {
    /// Accept, optionally with our id (echoed in the confirmation as `ThirdPartyTransID`).
    Accept {
        /// Our reference for the payment.
        third_party_trans_id: Option<String>,
    },
    /// Reject with a reason.
    Reject(C2bRejection),
}

impl C2bValidationReply {
    /// The JSON body to answer with.
    pub fn to_json(&self) -> String {
        let value = match self {
            C2bValidationReply::Accept {
                third_party_trans_id: Some(id),
            } => serde_json::json!({
                "ResultCode": "0", "ResultDesc": "Accepted", "ThirdPartyTransID": id,
            }),
            C2bValidationReply::Accept {
                third_party_trans_id: None,
            } => serde_json::json!({"ResultCode": "0", "ResultDesc": "Accepted"}),
            C2bValidationReply::Reject(reason) => {
                serde_json::json!({"ResultCode": reason.code(), "ResultDesc": "Rejected"})
            }
        };
        value.to_string()
    }
}

/// The acknowledgement body for a C2B confirmation.
pub const C2B_CONFIRMATION_ACK: &str = r#"{"ResultCode":0,"ResultDesc":"Success"}"#;

/// The acknowledgement body for STK callbacks and initiator-API results (the STK docs do
/// not define one; this is the de-facto convention).
pub const CALLBACK_ACK: &str = r#"{"ResultCode":0,"ResultDesc":"Accepted"}"#;
