//! A WhatsApp Cloud API client with multi-tenant webhook handling.
//!
//! Built for a tech provider: one Meta app, many tenant numbers.
//!
//! - [`WhatsAppClient`]: one pooled HTTP client for every tenant; [`Credentials`] (phone
//!   number id, access token, WABA id) are passed per call.
//! - [`message`]: typed sends — text, template, media, interactive, reaction, location,
//!   contacts, reply context, mark-as-read — with `biz_opaque_callback_data` to tie status
//!   webhooks back to your own send id. [`media`]: upload and download.
//! - [`numbers`]: a business number's display number, verified name, quality rating and
//!   throughput level ([`PhoneNumber`]), and the send rate that follows from it.
//! - [`Error`]: one error enum that says whether a request may have been sent and how to
//!   treat each Graph error code.
//! - [`webhook`]: the GET handshake, `X-Hub-Signature-256` over the raw bytes, and parsing
//!   of **every** entry and change of a batch into routable events, with an explicit
//!   unknown variant.
//! - [`Pacer`]: per-number throughput pacing.
//! - Feature `axum`: [`axum::VerifiedWebhook`], an extractor that verifies the signature.
//! - Feature `test-util`: [`fake::FakeGraph`], a fake Graph server that sends signed
//!   status webhooks.
//!
//! TLS is rustls with the *ring* provider, set on the client explicitly: nothing needs to
//! be installed process-wide. The crate reads no environment variables and starts no
//! runtime.

#[cfg(feature = "axum")]
pub mod axum;
mod client;
mod credentials;
pub mod error;
#[cfg(feature = "test-util")]
pub mod fake;
mod ids;
pub mod media;
pub mod message;
pub mod numbers;
mod pacer;
pub mod webhook;

pub use client::{DEFAULT_API_VERSION, DEFAULT_BASE_URL, WhatsAppClient, WhatsAppClientBuilder};
pub use credentials::Credentials;
pub use error::{Error, ErrorClass, RetryScope};
pub use ids::{MediaId, MessageId, PhoneNumberId, UserId, WabaId};
pub use numbers::PhoneNumber;
pub use pacer::{DEFAULT_RATE_PER_SECOND, Pacer};
