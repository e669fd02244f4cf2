//! A multi-tenant Safaricom Daraja (M-Pesa) client.
//!
//! One [`DarajaClient`] serves every tenant of a process: it is `Clone + Send + Sync`,
//! wraps one pooled HTTP client and holds no global state. [`Credentials`] are passed with
//! each call. OAuth tokens are cached per (base URL, consumer key) with a single refresh in
//! flight, refreshed before `expires_in`, and an invalid-token answer evicts the token and
//! retries the request once.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use edge_core::{Currency, Money, Msisdn};
//! use edge_mpesa::{Credentials, DarajaClient, Environment, StkPush, StkQuery};
//! use secrecy::SecretString;
//!
//! let client = DarajaClient::builder(Environment::Sandbox).build()?;
//! let tenant = Credentials::new("consumer-key", SecretString::from("consumer-secret"))
//!     .shortcode("174379")
//!     .passkey(SecretString::from("passkey"));
//! let phone: Msisdn = "0708374149".parse()?;
//! let accepted = StkPush::new(
//!     phone,
//!     Money::from_major(1500, Currency::Kes)?,
//!     "INV-000042",
//!     "https://billing.example.com/cb/tenant/token/stk",
//! )
//! .description("Plan renewal")
//! .send(&client, &tenant)
//! .await?;
//! // Persist accepted.checkout_request_id, then wait for the callback
//! // (edge_mpesa::parse_stk_callback) or reconcile with STK query:
//! let status = StkQuery::new(accepted.checkout_request_id).send(&client, &tenant).await?;
//! # let _ = status; Ok(()) }
//! ```
//!
//! TLS is rustls with the *ring* provider, configured by the builder itself: callers need
//! not install a process-wide crypto provider. The crate never reads environment
//! variables and never starts a runtime.
//!
//! Feature `test-util` adds [`fake::FakeDaraja`], an in-process Daraja that issues tokens,
//! checks STK passwords, answers every API here and posts the callbacks.

pub mod callbacks;
mod client;
mod credentials;
pub mod error;
mod json;
pub mod requests;
mod security;
pub mod time;

#[cfg(feature = "test-util")]
pub mod fake;

pub use callbacks::{
    C2bTransaction, C2bValidationReply, CallbackError, ResultCallback, ResultCode, StkCallback,
    StkOutcome, StkPayment, parse_c2b, parse_result, parse_stk_callback,
};
pub use client::{DarajaClient, DarajaClientBuilder, Environment, TokenResponse};
pub use credentials::{Credentials, StkAccount};
pub use error::{DarajaError, DarajaErrorKind, Error};
pub use requests::{
    AccountBalanceQuery, B2bCommand, B2bPayment, B2cCommand, B2cPayment, B2cVersion,
    C2bRegisterResponse, C2bVersion, DynamicQr, IdentifierType, InitiatorAccepted, QrResponse,
    QrTransactionCode, RegisterUrls, ResponseType, Reversal, StkPush, StkPushResponse, StkQuery,
    StkQueryOutcome, StkQueryResult, TransactionStatusQuery,
};
pub use security::security_credential;
pub use time::{Timestamp, stk_password};
