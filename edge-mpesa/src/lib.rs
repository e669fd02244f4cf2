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
//! The callback arrives later, on the URL you gave. Store the raw body first, then parse
//! it; the parsers take bytes and tolerate Daraja's quirks:
//!
//! ```
//! use edge_mpesa::{StkOutcome, parse_stk_callback};
//!
//! let body = br#"{"Body":{"stkCallback":{"MerchantRequestID":"29115-34620561-1",
//!   "CheckoutRequestID":"ws_CO_191220191020363925","ResultCode":0,
//!   "ResultDesc":"The service request is processed successfully.",
//!   "CallbackMetadata":{"Item":[{"Name":"Amount","Value":1500.00},
//!   {"Name":"MpesaReceiptNumber","Value":"NLJ7RT61SV"},{"Name":"Balance"},
//!   {"Name":"TransactionDate","Value":20191219102115},
//!   {"Name":"PhoneNumber","Value":254708374149}]}}}}"#;
//! let callback = parse_stk_callback(body)?;
//! // Match it to the push you stored by its CheckoutRequestID.
//! assert_eq!(callback.checkout_request_id, "ws_CO_191220191020363925");
//! let StkOutcome::Paid(payment) = &callback.outcome else {
//!     panic!("expected a payment, got {:?}", callback.outcome);
//! };
//! assert_eq!(payment.receipt.as_deref(), Some("NLJ7RT61SV"));
//! assert_eq!(payment.amount.map(|a| a.to_string()).as_deref(), Some("KES 1500.00"));
//! assert_eq!(payment.phone.as_ref().map(|p| p.as_e164()), Some("+254708374149"));
//! # Ok::<(), edge_mpesa::CallbackError>(())
//! ```
//!
//! TLS is rustls with the *ring* provider, configured by the builder itself: callers need
//! not install a process-wide crypto provider. The crate never reads environment
//! variables and never starts a runtime.
//!
#![cfg_attr(
    feature = "test-util",
    doc = "Feature `test-util` adds [`fake::FakeDaraja`], an in-process Daraja that issues tokens,"
)]
#![cfg_attr(
    not(feature = "test-util"),
    doc = "Feature `test-util` adds `fake::FakeDaraja`, an in-process Daraja that issues tokens,"
)]
//! checks STK passwords, answers every API here and posts the callbacks.
//! With it, the whole round trip runs in a test, with no network:
//!
//! ```
//! # #[cfg(feature = "test-util")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use edge_core::{Currency, Money};
//! use edge_mpesa::fake::{CallbackSink, FakeDaraja};
//! use edge_mpesa::{Credentials, DarajaClient, StkPush, parse_stk_callback};
//! use secrecy::SecretString;
//!
//! // The sandbox shortcode and the passkey Safaricom publishes for it.
//! const PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
//! let daraja = FakeDaraja::start().await?;
//! daraja.merchant("174379", PASSKEY);
//! let callbacks = CallbackSink::start().await?; // stands in for your callback endpoint
//! let client = DarajaClient::builder(daraja.environment())
//!     .allow_http_callbacks(true) // the sink is plain http on loopback
//!     .build()?;
//! let tenant = Credentials::new("any-key", SecretString::from("any-secret"))
//!     .shortcode("174379")
//!     .passkey(SecretString::from(PASSKEY));
//!
//! let amount = Money::from_major(100, Currency::Kes)?;
//! let accepted = StkPush::new("0708374149".parse()?, amount, "INV-1", callbacks.url("/stk"))
//!     .send(&client, &tenant)
//!     .await?;
//! let posted = callbacks.next(Duration::from_secs(10)).await.ok_or("no callback")?;
//! let callback = parse_stk_callback(&posted.body)?;
//! assert_eq!(callback.checkout_request_id, accepted.checkout_request_id);
//! assert!(callback.outcome.is_paid());
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "test-util"))]
//! # fn main() {}
//! ```

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
