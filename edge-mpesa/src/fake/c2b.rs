//! C2B in the fake: URL registration, simulated customer payments, and the validation and
//! confirmation callbacks they cause.
//!
//! What the sandbox does, and so the fake (see `shared/reference/daraja.md` §7):
//!
//! - `registerurl` (v1 or v2) stores a shortcode's `ConfirmationURL`, `ValidationURL` and
//!   `ResponseType`; registering again replaces them. An empty or missing `ValidationURL`
//!   means external validation is off: only confirmations are posted.
//! - `simulate` answers at once (`OriginatorCoversationID`, sic). After the callback delay
//!   the fake posts the validation request; a `ResultCode` of `"0"` accepts the payment
//!   (its `ThirdPartyTransID` is echoed in the confirmation), any other code rejects it
//!   and nothing more is sent. A validation URL that fails, times out, answers a non-2xx
//!   status or a body without `ResultCode` leaves the decision to `ResponseType`:
//!   `Completed` confirms, `Cancelled` does not.
//! - Both bodies are flat objects of strings with the same keys. `MSISDN` is masked
//!   (`2547 ***** 149`) for URLs registered through v2 and a SHA-256 hex digest of the
//!   12-digit number for v1. `OrgAccountBalance` is empty on validation and, on
//!   confirmation, the shortcode's running total of confirmed payments in the fake.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    CallbackKind, FakeEvent, Shared, bad_field, copies, deliver, field, json_response, lock,
    valid_url,
};
use crate::json::{get, text};
use crate::time::EAT;
use crate::{C2bVersion, ResponseType};

/// The C2B URLs a shortcode registered with the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2bRegistration {
    /// `ConfirmationURL`: receives the confirmation of every completed payment.
    pub confirmation_url: String,
    /// `ValidationURL`, or `None` when external validation is off (only confirmations are
    /// posted).
    pub validation_url: Option<String>,
    /// `ResponseType`: what happens when the validation URL does not answer in time.
    pub response_type: ResponseType,
    /// The API version the URLs were registered through: v2 callbacks carry a masked
    /// `MSISDN`, v1 callbacks its SHA-256 hex digest.
    pub version: C2bVersion,
}

/// Where a simulated C2B payment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum C2bStatus {
    /// Waiting for the callback delay, the validation answer or the confirmation.
    Pending,
    /// Validation accepted it (or was off, or did not answer and the `ResponseType` is
    /// `Completed`): the confirmation was posted — or, with `drop_callbacks`, withheld.
    Completed,
    /// The validation URL answered this non-zero `ResultCode`; no confirmation was sent.
    Rejected {
        /// The `ResultCode` of the validation answer, e.g. `C2B00012`.
        result_code: String,
    },
    /// The validation URL did not answer usefully and the `ResponseType` is `Cancelled`;
    /// no confirmation was sent.
    Cancelled,
}

/// Why the fake refused to simulate a C2B payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FakeC2bError {
    /// No URLs are registered for the shortcode (register them first, as in the sandbox).
    /// Over HTTP: `400.002.02 Bad Request - Invalid ShortCode`.
    #[error("no C2B URLs are registered for shortcode {0}")]
    NotRegistered(String),
    /// A field has an invalid value (`CommandID`, `Amount`, `Msisdn`, `BillRefNumber`,
    /// `ShortCode`). Over HTTP: `400.002.02 Bad Request - Invalid <field>`.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// The fake's C2B memory.
#[derive(Default)]
pub(super) struct C2bState {
    registrations: HashMap<String, C2bRegistration>,
    /// Whole shillings confirmed per shortcode (`OrgAccountBalance`).
    balances: HashMap<String, i64>,
    statuses: HashMap<String, C2bStatus>,
}

/// `CommandID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    /// `CustomerPayBillOnline`: `TransactionType` "Pay Bill".
    PayBill,
    /// `CustomerBuyGoodsOnline`: `TransactionType` "Buy Goods".
    BuyGoods,
}

/// A payment to simulate.
#[derive(Debug, Clone)]
pub(super) struct Payment {
    pub(super) shortcode: String,
    pub(super) command: Command,
    /// Whole shillings.
    pub(super) amount: i64,
    /// 12 digits, `254…`.
    pub(super) msisdn: String,
    /// Empty for a till.
    pub(super) bill_ref: String,
}

pub(super) fn register(shared: &Shared, shortcode: &str, registration: C2bRegistration) {
    lock(&shared.c2b)
        .registrations
        .insert(shortcode.to_owned(), registration);
}

pub(super) fn registration(shared: &Shared, shortcode: &str) -> Option<C2bRegistration> {
    lock(&shared.c2b).registrations.get(shortcode).cloned()
}

pub(super) fn status(shared: &Shared, trans_id: &str) -> Option<C2bStatus> {
    lock(&shared.c2b).statuses.get(trans_id).cloned()
}

/// `POST /mpesa/c2b/v{1,2}/registerurl`.
pub(super) fn register_http(
    shared: &Shared,
    body: &Value,
    request_id: &str,
    version: C2bVersion,
) -> Response {
    let shortcode = field(body, "ShortCode");
    if !is_shortcode(&shortcode) {
        return bad_field("ShortCode", request_id);
    }
    let confirmation_url = field(body, "ConfirmationURL");
    if !valid_url(&confirmation_url) {
        return bad_field("ConfirmationURL", request_id);
    }
    let validation_url = match field(body, "ValidationURL") {
        url if url.is_empty() => None,
        url if valid_url(&url) => Some(url),
        _ => return bad_field("ValidationURL", request_id),
    };
    let response_type = match field(body, "ResponseType").as_str() {
        "Completed" => ResponseType::Completed,
        "Cancelled" => ResponseType::Cancelled,
        _ => return bad_field("ResponseType", request_id),
    };
    register(
        shared,
        &shortcode,
        C2bRegistration {
            confirmation_url,
            validation_url,
            response_type,
            version,
        },
    );
    json_response(
        StatusCode::OK,
        json!({
            "OriginatorCoversationID": request_id,
            "ResponseCode": "0",
            "ResponseDescription": "Success",
        }),
    )
}

/// `POST /mpesa/c2b/v{1,2}/simulate`.
pub(super) fn simulate_http(shared: &Arc<Shared>, body: &Value, request_id: &str) -> Response {
    let command = match field(body, "CommandID").as_str() {
        "CustomerPayBillOnline" => Command::PayBill,
        "CustomerBuyGoodsOnline" => Command::BuyGoods,
        _ => return bad_field("CommandID", request_id),
    };
    // Whole shillings only, as a number or a string of digits ("10.00" is refused).
    let Ok(amount) = field(body, "Amount").parse::<i64>() else {
        return bad_field("Amount", request_id);
    };
    let payment = Payment {
        shortcode: field(body, "ShortCode"),
        command,
        amount,
        msisdn: field(body, "Msisdn"),
        bill_ref: field(body, "BillRefNumber"),
    };
    match simulate(shared, payment) {
        Ok(_) => json_response(
            StatusCode::OK,
            json!({
                "OriginatorCoversationID": request_id,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
            }),
        ),
        Err(FakeC2bError::NotRegistered(_)) => bad_field("ShortCode", request_id),
        Err(FakeC2bError::Invalid(name)) => bad_field(name, request_id),
    }
}

/// Checks the payment, issues its `TransID` and schedules its callbacks.
pub(super) fn simulate(shared: &Arc<Shared>, payment: Payment) -> Result<String, FakeC2bError> {
    if !is_shortcode(&payment.shortcode) {
        return Err(FakeC2bError::Invalid("ShortCode"));
    }
    if payment.amount < 1 {
        return Err(FakeC2bError::Invalid("Amount"));
    }
    let msisdn = &payment.msisdn;
    if msisdn.len() != 12
        || !msisdn.starts_with("254")
        || !msisdn.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(FakeC2bError::Invalid("Msisdn"));
    }
    if payment.bill_ref.chars().count() > 20 {
        return Err(FakeC2bError::Invalid("BillRefNumber"));
    }
    let registration = registration(shared, &payment.shortcode)
        .ok_or_else(|| FakeC2bError::NotRegistered(payment.shortcode.clone()))?;
    let trans_id = next_trans_id(shared);
    lock(&shared.c2b)
        .statuses
        .insert(trans_id.clone(), C2bStatus::Pending);
    let delay = lock(&shared.config).callback_delay;
    let task = settle(
        shared.clone(),
        payment,
        registration,
        trans_id.clone(),
        delay,
    );
    shared.runtime.spawn(task);
    Ok(trans_id)
}

/// Posts the validation request and, unless the payment is refused, the confirmation.
async fn settle(
    shared: Arc<Shared>,
    payment: Payment,
    registration: C2bRegistration,
    trans_id: String,
    delay: Duration,
) {
    tokio::time::sleep(delay).await;
    let trans_time = Utc::now()
        .with_timezone(&EAT)
        .format("%Y%m%d%H%M%S")
        .to_string();
    let callback = |org_account_balance: String, third_party_trans_id: &str| {
        json!({
            "TransactionType": match payment.command {
                Command::PayBill => "Pay Bill",
                Command::BuyGoods => "Buy Goods",
            },
            "TransID": trans_id,
            "TransTime": trans_time,
            "TransAmount": format!("{}.00", payment.amount),
            "BusinessShortCode": payment.shortcode,
            "BillRefNumber": payment.bill_ref,
            "InvoiceNumber": "",
            "OrgAccountBalance": org_account_balance,
            "ThirdPartyTransID": third_party_trans_id,
            "MSISDN": payer(&payment.msisdn, registration.version),
            "FirstName": "TEST",
            "MiddleName": "",
            "LastName": "PAYER",
        })
        .to_string()
    };
    let verdict = match &registration.validation_url {
        None => Verdict::Accepted {
            third_party_trans_id: String::new(),
        },
        Some(url) => {
            let timeout = lock(&shared.config).c2b_validation_timeout;
            let body = callback(String::new(), "");
            let delivery = deliver(
                &shared,
                CallbackKind::C2bValidation,
                url,
                &body,
                Some(timeout),
            )
            .await;
            verdict(delivery.status, delivery.reply.as_deref())
        }
    };
    let third_party_trans_id = match verdict {
        Verdict::Accepted {
            third_party_trans_id,
        } => third_party_trans_id,
        Verdict::NoAnswer if registration.response_type == ResponseType::Completed => String::new(),
        Verdict::NoAnswer => {
            return finish(&shared, trans_id, C2bStatus::Cancelled);
        }
        Verdict::Rejected { result_code } => {
            return finish(&shared, trans_id, C2bStatus::Rejected { result_code });
        }
    };
    let balance = {
        let mut c2b = lock(&shared.c2b);
        let balance = c2b.balances.entry(payment.shortcode.clone()).or_default();
        *balance += payment.amount;
        *balance
    };
    let body = callback(format!("{balance}.00"), &third_party_trans_id);
    for _ in 0..copies(&shared) {
        deliver(
            &shared,
            CallbackKind::C2bConfirmation,
            &registration.confirmation_url,
            &body,
            None,
        )
        .await;
    }
    finish(&shared, trans_id, C2bStatus::Completed);
}

fn finish(shared: &Shared, trans_id: String, status: C2bStatus) {
    lock(&shared.c2b)
        .statuses
        .insert(trans_id.clone(), status.clone());
    shared.emit(FakeEvent::C2bFinished { trans_id, status });
}

/// What the validation URL said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Accepted {
        third_party_trans_id: String,
    },
    Rejected {
        result_code: String,
    },
    /// Failed, timed out, non-2xx, or no `ResultCode`: `ResponseType` decides.
    NoAnswer,
}

fn verdict(status: Option<u16>, reply: Option<&[u8]>) -> Verdict {
    if !status.is_some_and(|s| (200..300).contains(&s)) {
        return Verdict::NoAnswer;
    }
    let Some(reply) = reply.and_then(|b| serde_json::from_slice::<Value>(b).ok()) else {
        return Verdict::NoAnswer;
    };
    match get(&reply, "ResultCode").and_then(text) {
        Some(code) if code.trim() == "0" => Verdict::Accepted {
            third_party_trans_id: get(&reply, "ThirdPartyTransID")
                .and_then(text)
                .unwrap_or_default(),
        },
        Some(code) => Verdict::Rejected { result_code: code },
        None => Verdict::NoAnswer,
    }
}

/// The payer's `MSISDN` as C2B sends it: masked (v2) or hashed (v1).
fn payer(msisdn: &str, version: C2bVersion) -> String {
    match version {
        C2bVersion::V1 => Sha256::digest(msisdn.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        C2bVersion::V2 => format!(
            "{} ***** {}",
            msisdn.get(..4).unwrap_or_default(),
            msisdn
                .get(msisdn.len().saturating_sub(3)..)
                .unwrap_or_default()
        ),
    }
}

fn is_shortcode(shortcode: &str) -> bool {
    (5..=7).contains(&shortcode.len()) && shortcode.bytes().all(|b| b.is_ascii_digit())
}

const BASE36: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const TRANS_ID_SPACE: u64 = 36u64.pow(10);

/// A `TransID` like M-Pesa's receipts: 10 upper-case letters and digits.
///
/// It encodes the current millisecond times 1000, or one more than the last one issued,
/// whichever is larger: unique within the process, and a fake restarted later does not
/// repeat the ids a receiver may have stored from an earlier run.
fn next_trans_id(shared: &Shared) -> String {
    let now = u64::try_from(Utc::now().timestamp_millis())
        .unwrap_or_default()
        .saturating_mul(1000);
    let next = |last: u64| last.saturating_add(1).max(now);
    let last = shared
        .last_trans_id
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(next(last)))
        .unwrap_or_else(|last| last);
    let mut n = next(last) % TRANS_ID_SPACE;
    let mut id = [b'0'; 10];
    for slot in id.iter_mut().rev() {
        *slot = BASE36[usize::try_from(n % 36).unwrap_or_default()];
        n /= 36;
    }
    String::from_utf8_lossy(&id).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_masks_and_v1_hashes_the_payer() {
        assert_eq!(payer("254708374149", C2bVersion::V2), "2547 ***** 149");
        // The fixture `c2b_confirmation_v1_hashed_msisdn.json` carries this digest.
        assert_eq!(
            payer("254708374149", C2bVersion::V1),
            "bbff37cea44ac0b2d964ee0dfb8d2df8513dc7ba1b36129a929fc3fbd6dd4af4"
        );
    }

    #[test]
    fn validation_answers_decide_as_documented() {
        let ok = Some(200);
        assert_eq!(
            verdict(ok, Some(br#"{"ResultCode":"0","ResultDesc":"Accepted"}"#)),
            Verdict::Accepted {
                third_party_trans_id: String::new()
            }
        );
        assert_eq!(
            verdict(
                ok,
                Some(br#"{"ResultCode":0,"ThirdPartyTransID":"inv-42"}"#)
            ),
            Verdict::Accepted {
                third_party_trans_id: "inv-42".into()
            }
        );
        assert_eq!(
            verdict(
                ok,
                Some(br#"{"ResultCode":"C2B00012","ResultDesc":"Rejected"}"#)
            ),
            Verdict::Rejected {
                result_code: "C2B00012".into()
            }
        );
        for (status, body) in [
            (None, None),
            (Some(500), Some(&br#"{"ResultCode":"0"}"#[..])),
            (ok, Some(&b"<html>"[..])),
            (ok, Some(&br#"{"ResultDesc":"Accepted"}"#[..])),
            (ok, None),
        ] {
            assert_eq!(verdict(status, body), Verdict::NoAnswer, "{status:?}");
        }
    }

    #[test]
    fn shortcodes_are_five_to_seven_digits() {
        for good in ["12345", "174379", "1234567"] {
            assert!(is_shortcode(good), "{good}");
        }
        for bad in ["", "1234", "12345678", "17437a", " 174379"] {
            assert!(!is_shortcode(bad), "{bad:?}");
        }
    }
}
