//! The prepaid wallet ledger: accounts, transfers, holds, balances and the [`Ledger`] trait.
//!
//! # Model
//!
//! The ledger is double-entry. Every movement of money is a [`Transfer`] from one
//! [`Account`] to another, written as two append-only [`Entry`] rows (`-amount` on `from`,
//! `+amount` on `to`), so the entries of every transfer, and therefore the balances of all
//! accounts, sum to zero per currency. Entries are never updated or deleted.
//!
//! Each organization has one wallet in one currency ([`Ledger::open_wallet`]). The platform
//! accounts ([`Account::PlatformRevenue`], [`Account::MpesaClearing`],
//! [`Account::PromotionalCredit`], [`Account::Adjustments`]) exist in every currency and
//! may go negative: M-Pesa clearing goes negative as top-ups credit wallets.
//!
//! # Holds
//!
//! Spending is two-phase. [`Ledger::reserve`] creates a [`Hold`]; it writes **no entries**
//! and only lowers the wallet's *available* balance. A hold then ends exactly once:
//!
//! - [`Ledger::capture`] moves the captured amount (all, or part) from the wallet to
//!   [`Account::PlatformRevenue`] in one transfer and releases the remainder;
//! - [`Ledger::release`] gives it all back (this is the refund of a failed send);
//! - it expires: a hold is live while `now < expires_at`. From `expires_at` on it no longer
//!   counts as held and can no longer be captured or released, whether or not
//!   [`Ledger::expire_holds`] has recorded the expiry yet. Balances and results therefore
//!   never depend on when the sweep job runs; the sweep only records the status
//!   (`ended_at = expires_at`) and reports the holds so that callers can react.
//!
//! # Balances
//!
//! `posted` is the sum of the wallet's entries, `held` the sum of its live holds and
//! `available = posted - held`. Operations that lower `available` (a transfer out of the
//! wallet, a reserve) are refused with [`Error::InsufficientFunds`] if `available` would go
//! below `-credit_limit` (the credit limit is zero unless set). Lowering the credit limit
//! below what is already used is allowed; it only refuses further spending.
//!
//! # Idempotency
//!
//! Every money-moving call carries an [`IdempotencyKey`], scoped to the organization. The
//! ledger stores the key with a [`Fingerprint`] of the operation kind and its canonical
//! parameters, and the complete first result. The same key with the same fingerprint
//! returns that first result (including its balance and events) with
//! `replayed: true`; with a different fingerprint (other parameters, or another kind of
//! operation) it fails with [`Error::IdempotencyMismatch`]. Only successful calls are
//! recorded: a refused call (insufficient funds, conflict, validation) may be retried with
//! the same key and is evaluated afresh.
//!
//! Checks run in this order, and every implementation must keep it: the wallet exists
//! (else `NotFound("wallet")`); the idempotency key (replay or mismatch); the parameters
//! (`Validation`); then the state (`NotFound("hold")`, `Conflict`, `InsufficientFunds`).
//!
//! # Events
//!
//! [`LedgerEvent::LowBalance`] is emitted by the operation that moves `available` from at
//! or above the organization's low-balance threshold to below it: on crossing, not on every
//! operation below it. Changing the threshold or the credit limit emits nothing.
//!
//! # Tenancy
//!
//! Every method takes the organization first and only sees that organization's wallet,
//! holds, transfers and entries; another organization's ids are `NotFound`. The operator
//! methods [`Ledger::expire_holds`] and [`Ledger::platform_balance`] are the only ones that
//! look across organizations.

mod memory;
pub mod rules;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{EntryId, HoldId, OrgId, TransferId};
use crate::{BoxFuture, Currency, Error, IdempotencyKey, Money, Page, PageRequest};

pub use memory::InMemoryLedger;

/// An account of the ledger.
///
/// Serialized as a stable string, also suitable as a database column value:
/// `"wallet:<organization id>"`, `"platform:revenue"`, `"platform:mpesa_clearing"`,
/// `"platform:promotional_credit"` and `"platform:adjustments"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    /// An organization's prepaid wallet. The only kind of account with a spending limit.
    Wallet(OrgId),
    /// What the platform has earned (captured charges).
    PlatformRevenue,
    /// Money received through M-Pesa and not yet settled: the source of top-ups.
    MpesaClearing,
    /// Free credit given away: the source of promotional top-ups.
    PromotionalCredit,
    /// Manual corrections by an operator, in either direction.
    Adjustments,
}

impl Account {
    /// The organization whose wallet this is, if it is a wallet.
    pub fn wallet_org(&self) -> Option<OrgId> {
        match self {
            Account::Wallet(org) => Some(*org),
            _ => None,
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Wallet(org) => write!(f, "wallet:{org}"),
            Account::PlatformRevenue => f.write_str("platform:revenue"),
            Account::MpesaClearing => f.write_str("platform:mpesa_clearing"),
            Account::PromotionalCredit => f.write_str("platform:promotional_credit"),
            Account::Adjustments => f.write_str("platform:adjustments"),
        }
    }
}

/// The error returned when a string is not an account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid account {input:?}: expected wallet:<organization id> or one of platform:revenue, \
     platform:mpesa_clearing, platform:promotional_credit, platform:adjustments"
)]
pub struct ParseAccountError {
    input: String,
}

impl FromStr for Account {
    type Err = ParseAccountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || ParseAccountError {
            input: s.chars().take(64).collect(),
        };
        match s {
            "platform:revenue" => Ok(Account::PlatformRevenue),
            "platform:mpesa_clearing" => Ok(Account::MpesaClearing),
            "platform:promotional_credit" => Ok(Account::PromotionalCredit),
            "platform:adjustments" => Ok(Account::Adjustments),
            _ => {
                let org = s.strip_prefix("wallet:").ok_or_else(fail)?;
                org.parse::<OrgId>()
                    .map(Account::Wallet)
                    .map_err(|_| fail())
            }
        }
    }
}

impl Serialize for Account {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Account {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A wallet's balance at one instant.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Whose wallet.
    pub org: OrgId,
    /// The wallet's currency.
    pub currency: Currency,
    /// The sum of the wallet's entries.
    pub posted: Money,
    /// The sum of the wallet's live holds.
    pub held: Money,
    /// `posted - held`: what is left to spend before the credit limit is used.
    pub available: Money,
    /// How far below zero `available` may go (zero unless set).
    pub credit_limit: Money,
    /// Below this available balance a [`LedgerEvent::LowBalance`] is emitted, if set.
    pub low_balance_threshold: Option<Money>,
}

/// A request to move money to or from the organization's own wallet: top-ups
/// (`MpesaClearing → wallet`), promotions (`PromotionalCredit → wallet`), adjustments
/// (either way with `Adjustments`) and direct charges (`wallet → PlatformRevenue`).
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRequest {
    /// The account debited.
    pub from: Account,
    /// The account credited.
    pub to: Account,
    /// A positive amount in the wallet's currency.
    pub amount: Money,
    /// Makes the request safe to repeat.
    pub idempotency_key: IdempotencyKey,
    /// Free-form context kept with the transfer (e.g. the M-Pesa receipt number).
    pub metadata: serde_json::Value,
}

impl TransferRequest {
    /// A transfer with no metadata.
    pub fn new(from: Account, to: Account, amount: Money, idempotency_key: IdempotencyKey) -> Self {
        Self {
            from,
            to,
            amount,
            idempotency_key,
            metadata: serde_json::Value::Null,
        }
    }

    /// Sets the metadata.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A posted transfer: two entries of opposite sign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// The transfer's id.
    pub id: TransferId,
    /// The organization whose wallet it touched.
    pub org: OrgId,
    /// The account debited.
    pub from: Account,
    /// The account credited.
    pub to: Account,
    /// The (positive) amount moved.
    pub amount: Money,
    /// The key of the call that posted it (for a capture, the capture's key).
    pub idempotency_key: IdempotencyKey,
    /// The request's metadata (for a capture, the hold's).
    pub metadata: serde_json::Value,
    /// The hold this transfer captured, if any.
    pub hold_id: Option<HoldId>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
}

/// One side of a transfer. Append-only.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's id.
    pub id: EntryId,
    /// The organization whose transfer this entry belongs to.
    pub org: OrgId,
    /// The entry's position in the organization's history: 1, 2, 3, … without gaps.
    pub sequence: u64,
    /// The transfer it belongs to.
    pub transfer_id: TransferId,
    /// The hold the transfer captured, if any.
    pub hold_id: Option<HoldId>,
    /// The account it changes.
    pub account: Account,
    /// Signed: negative on the debited account, positive on the credited one.
    pub amount: Money,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
}

/// A request to reserve money for a later capture.
#[derive(Debug, Clone, PartialEq)]
pub struct ReserveRequest {
    /// A positive amount in the wallet's currency.
    pub amount: Money,
    /// How long the hold lives; it expires at `now + timeout`. A duration rather than an
    /// instant, so that a retry computed later carries the same parameters.
    pub timeout: TimeDelta,
    /// Makes the request safe to repeat.
    pub idempotency_key: IdempotencyKey,
    /// Free-form context (e.g. the message being paid for); copied to the capture transfer.
    pub metadata: serde_json::Value,
}

impl ReserveRequest {
    /// A reservation with no metadata.
    pub fn new(amount: Money, timeout: TimeDelta, idempotency_key: IdempotencyKey) -> Self {
        Self {
            amount,
            timeout,
            idempotency_key,
            metadata: serde_json::Value::Null,
        }
    }

    /// Sets the metadata.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A request to capture a hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRequest {
    /// How much to capture: `None` captures the whole hold; a positive amount up to the
    /// hold's captures part of it and releases the rest.
    pub amount: Option<Money>,
    /// Makes the request safe to repeat. Must differ from the reserve's key (for example
    /// `reserve_key.derive("capture")`).
    pub idempotency_key: IdempotencyKey,
}

/// Where a hold is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Reserved and live.
    Active,
    /// Captured, in whole or in part; any remainder was released.
    Captured,
    /// Released in full.
    Released,
    /// Reached `expires_at` before being captured or released; released in full.
    Expired,
}

/// Money set aside in a wallet for a pending charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// The hold's id.
    pub id: HoldId,
    /// Whose wallet.
    pub org: OrgId,
    /// The amount reserved.
    pub amount: Money,
    /// Where it is in its life.
    pub status: HoldStatus,
    /// What was captured, once captured.
    pub captured: Option<Money>,
    /// The transfer that captured it, once captured.
    pub capture_transfer_id: Option<TransferId>,
    /// The reserve call's key.
    pub idempotency_key: IdempotencyKey,
    /// The reserve call's metadata.
    pub metadata: serde_json::Value,
    /// When it was reserved.
    pub created_at: DateTime<Utc>,
    /// When it stops counting as held if still active.
    pub expires_at: DateTime<Utc>,
    /// When it was captured or released, or its `expires_at` if it expired.
    pub ended_at: Option<DateTime<Utc>>,
}

impl Hold {
    /// The hold as seen at `now`: an active hold at or past `expires_at` is expired.
    pub fn as_of(mut self, now: DateTime<Utc>) -> Self {
        if self.status == HoldStatus::Active && now >= self.expires_at {
            self.status = HoldStatus::Expired;
            self.ended_at = Some(self.expires_at);
        }
        self
    }
}

/// Something callers should tell the organization about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LedgerEvent {
    /// The available balance fell below the low-balance threshold.
    LowBalance {
        /// Whose wallet.
        org: OrgId,
        /// The available balance after the operation.
        available: Money,
        /// The threshold it crossed.
        threshold: Money,
    },
}

/// The result of a money-moving call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerOutcome<T> {
    /// What the call produced.
    pub value: T,
    /// The wallet's balance right after the call (on a replay: after the first call).
    pub balance: Balance,
    /// Events the call raised. On a replay these are the first call's events: check
    /// `replayed` before publishing them again.
    pub events: Vec<LedgerEvent>,
    /// True if this is the stored result of an earlier call with the same key.
    pub replayed: bool,
}

/// The canonical form of an operation's kind and parameters, stored with its idempotency
/// key. Two calls are "the same" exactly when their fingerprints are equal.
///
/// The text is compact JSON with object keys sorted at every level, e.g.
/// `{"amount_minor":500,"currency":"KES","from":"platform:mpesa_clearing",…,"op":"transfer",…}`.
/// Amounts are compared in minor units with their currency; a capture of `None` (all) and
/// a capture of the full amount are different parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a transfer.
    pub fn transfer(request: &TransferRequest) -> Self {
        Self::of(&serde_json::json!({
            "op": "transfer",
            "from": request.from.to_string(),
            "to": request.to.to_string(),
            "amount_minor": request.amount.minor(),
            "currency": request.amount.currency().code(),
            "metadata": request.metadata,
        }))
    }

    /// The fingerprint of a reservation.
    pub fn reserve(request: &ReserveRequest) -> Self {
        Self::of(&serde_json::json!({
            "op": "reserve",
            "amount_minor": request.amount.minor(),
            "currency": request.amount.currency().code(),
            "timeout_ms": request.timeout.num_milliseconds(),
            "metadata": request.metadata,
        }))
    }

    /// The fingerprint of a capture of `hold`.
    pub fn capture(hold: HoldId, request: &CaptureRequest) -> Self {
        Self::of(&serde_json::json!({
            "op": "capture",
            "hold_id": hold.to_string(),
            "amount_minor": request.amount.map(|a| a.minor()),
            "currency": request.amount.map(|a| a.currency().code()),
        }))
    }

    /// The fingerprint of a release of `hold`.
    pub fn release(hold: HoldId) -> Self {
        Self::of(&serde_json::json!({
            "op": "release",
            "hold_id": hold.to_string(),
        }))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn of(value: &serde_json::Value) -> Self {
        let mut out = String::new();
        canonical_json(value, &mut out);
        Self(out)
    }
}

/// Writes `value` as compact JSON with object keys sorted, whatever the map order of
/// `serde_json` (its `preserve_order` feature may be on in some builds).
fn canonical_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(item) = map.get(key) {
                    canonical_json(item, out);
                }
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The wallet ledger. Object-safe: use it as `Arc<dyn Ledger>`.
///
/// See the [module documentation](self) for the rules every implementation follows.
pub trait Ledger: Send + Sync {
    /// Opens the organization's wallet in `currency`. Idempotent: opening it again in the
    /// same currency returns its balance; in another currency is a `Conflict`.
    fn open_wallet(&self, org: OrgId, currency: Currency) -> BoxFuture<'_, Result<Balance, Error>>;

    /// The wallet's balance now.
    fn balance(&self, org: OrgId) -> BoxFuture<'_, Result<Balance, Error>>;

    /// Sets how far below zero the available balance may go (zero or more, in the wallet's
    /// currency).
    fn set_credit_limit(&self, org: OrgId, limit: Money) -> BoxFuture<'_, Result<Balance, Error>>;

    /// Sets or clears the low-balance threshold (in the wallet's currency).
    fn set_low_balance_threshold(
        &self,
        org: OrgId,
        threshold: Option<Money>,
    ) -> BoxFuture<'_, Result<Balance, Error>>;

    /// Posts a transfer to or from the organization's own wallet. Another organization's
    /// wallet is `NotFound`; a transfer out of the wallet may be `InsufficientFunds`.
    fn transfer(
        &self,
        org: OrgId,
        request: TransferRequest,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Transfer>, Error>>;

    /// Reserves money in the wallet; `InsufficientFunds` if the available balance would go
    /// below `-credit_limit`. The error's `available` is what the wallet could still spend,
    /// `max(available + credit_limit, 0)` (the same for transfers out of the wallet).
    fn reserve(
        &self,
        org: OrgId,
        request: ReserveRequest,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Hold>, Error>>;

    /// Captures a live hold (all or part) into platform revenue and releases the rest.
    /// A hold that already ended is a `Conflict`, unless this is a replay of the call that
    /// ended it.
    fn capture(
        &self,
        org: OrgId,
        hold: HoldId,
        request: CaptureRequest,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Hold>, Error>>;

    /// Releases a live hold in full. A hold that already ended is a `Conflict`, unless this
    /// is a replay of the call that ended it.
    fn release(
        &self,
        org: OrgId,
        hold: HoldId,
        idempotency_key: IdempotencyKey,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Hold>, Error>>;

    /// One hold, as of now (an active hold past `expires_at` shows as expired).
    fn hold(&self, org: OrgId, hold: HoldId) -> BoxFuture<'_, Result<Hold, Error>>;

    /// One transfer.
    fn get_transfer(&self, org: OrgId, id: TransferId) -> BoxFuture<'_, Result<Transfer, Error>>;

    /// The entries of the organization's transfers (both sides), **oldest first** by
    /// `sequence`; the cursor is the last sequence seen, so a reader can also follow new
    /// entries as they are appended.
    fn entries(&self, org: OrgId, page: PageRequest) -> BoxFuture<'_, Result<Page<Entry>, Error>>;

    /// Operator: records the expiry of up to `limit` holds whose `expires_at` has passed
    /// (by the ledger's clock), oldest expiry first, and returns them. Call again until it
    /// returns fewer than `limit`.
    fn expire_holds(&self, limit: u32) -> BoxFuture<'_, Result<Vec<Hold>, Error>>;

    /// Operator: the balance of any account in `currency` (for platform accounts, across
    /// all organizations).
    fn platform_balance(
        &self,
        account: Account,
        currency: Currency,
    ) -> BoxFuture<'_, Result<Money, Error>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_round_trip_through_their_stable_strings() {
        let org = OrgId::new();
        for account in [
            Account::Wallet(org),
            Account::PlatformRevenue,
            Account::MpesaClearing,
            Account::PromotionalCredit,
            Account::Adjustments,
        ] {
            let text = account.to_string();
            assert_eq!(text.parse::<Account>().unwrap(), account);
            let json = serde_json::to_string(&account).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<Account>(&json).unwrap(), account);
        }
        assert_eq!(Account::Wallet(org).to_string(), format!("wallet:{org}"));
        assert_eq!(
            Account::MpesaClearing.to_string(),
            "platform:mpesa_clearing"
        );
        for bad in ["wallet:", "wallet:nope", "platform:other", "revenue", ""] {
            assert!(bad.parse::<Account>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_ignore_key_order_and_name_the_operation() {
        let key = IdempotencyKey::new("k").unwrap();
        let amount = Money::from_minor(500, Currency::Kes);
        let a = TransferRequest::new(
            Account::MpesaClearing,
            Account::PlatformRevenue,
            amount,
            key.clone(),
        )
        .metadata(serde_json::json!({"b": 1, "a": [1, {"y": 2, "x": 1}]}));
        let mut b = a.clone();
        b.metadata = serde_json::from_str(r#"{"a":[1,{"x":1,"y":2}],"b":1}"#).unwrap();
        assert_eq!(Fingerprint::transfer(&a), Fingerprint::transfer(&b));
        assert!(
            Fingerprint::transfer(&a)
                .as_str()
                .contains(r#""op":"transfer""#)
        );
        b.amount = Money::from_minor(501, Currency::Kes);
        assert_ne!(Fingerprint::transfer(&a), Fingerprint::transfer(&b));
        let hold = HoldId::new();
        assert_ne!(
            Fingerprint::release(hold),
            Fingerprint::capture(
                hold,
                &CaptureRequest {
                    amount: None,
                    idempotency_key: key
                }
            )
        );
    }
}
