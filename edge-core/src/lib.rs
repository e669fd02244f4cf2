//! The vocabulary every Edge crate shares.
//!
//! `edge-core` performs no I/O. It defines the values that travel between the other crates
//! and across the HTTP API:
//!
//! - [`id`]: UUIDv7 identifier newtypes such as [`OrgId`] and [`UserId`];
//! - [`Msisdn`]: East-African mobile numbers, parsed the way people type them and stored as E.164;
//! - [`Money`] and [`Currency`]: integer minor units with checked arithmetic, never floats;
//! - [`Clock`]: injected time, with [`SystemClock`] and [`FixedClock`];
//! - [`IdempotencyKey`]: the key that makes a money operation safe to repeat;
//! - [`Cursor`], [`PageRequest`] and [`Page`]: keyset pagination with opaque cursors;
//! - [`Error`]: the one error enum shared by services and repositories;
//! - [`ledger`]: the prepaid wallet ledger ([`Ledger`]) and its in-memory implementation;
//! - [`BoxFuture`]: the future type returned by the object-safe repository traits.
//!
//! ```
//! use edge_core::{Country, Currency, Money, Msisdn};
//!
//! // Money: integer minor units, parsed exactly from decimal strings, checked arithmetic.
//! let price = Money::parse("1500.50", Currency::Kes)?;
//! let fee = Money::from_major(30, Currency::Kes)?;
//! let total = price.checked_add(fee)?;
//! assert_eq!(total.minor(), 153_050);
//! assert_eq!(total.to_string(), "KES 1530.50");
//! assert_eq!(price.checked_mul(3)?.to_decimal_string(), "4501.50");
//! // Mixing currencies is an error, never a silent conversion.
//! assert!(total.checked_add(Money::from_major(100, Currency::Ugx)?).is_err());
//!
//! // Msisdn: a mobile number as people type it, stored once in E.164.
//! let phone = Msisdn::parse("0712 345 678", Country::Kenya)?;
//! assert_eq!(phone.as_e164(), "+254712345678");
//! assert_eq!(phone.daraja(), "254712345678"); // the form Daraja and WhatsApp take
//! let ugandan = Msisdn::parse("+256 772 123456", Country::Kenya)?;
//! assert_eq!(ugandan.country(), Country::Uganda);
//! assert!(Msisdn::parse("020 123 4567", Country::Kenya).is_err()); // a landline
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Feature `openapi`: `utoipa::ToSchema` for the types above that appear in an HTTP API.

pub mod clock;
pub mod error;
pub mod id;
pub mod idempotency;
pub mod ledger;
pub mod money;
pub mod msisdn;
#[cfg(feature = "openapi")]
mod openapi;
pub mod page;

pub use clock::{Clock, FixedClock, SharedClock, SystemClock};
pub use error::{Error, FieldError, Result};
pub use id::{
    ApiKeyId, EntryId, HoldId, MembershipId, OrgId, ParseIdError, PaymentId, RequestId, SessionId,
    TransferId, UserId,
};
pub use idempotency::{IdempotencyKey, IdempotencyKeyError};
pub use ledger::{
    Account, Balance, CaptureRequest, Entry, Hold, HoldStatus, InMemoryLedger, Ledger, LedgerEvent,
    LedgerOutcome, ReserveRequest, Transfer, TransferRequest,
};
pub use money::{Currency, Money, MoneyError};
pub use msisdn::{Country, Msisdn, MsisdnError};
pub use page::{Cursor, CursorError, Page, PageRequest};

/// A boxed, sendable future: what the methods of object-safe async traits such as
/// [`Ledger`] return, so they can be used as `Arc<dyn Trait>` without a runtime dependency.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[doc(hidden)]
pub mod __private {
    //! Re-exports used by [`define_id!`](crate::define_id); not part of the public API.
    pub use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub use uuid::Uuid;
}
