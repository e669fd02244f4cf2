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
#![cfg_attr(
    feature = "axum",
    doc = "- Feature `axum`: [`axum::VerifiedWebhook`], an extractor that verifies the signature."
)]
#![cfg_attr(
    not(feature = "axum"),
    doc = "- Feature `axum`: `axum::VerifiedWebhook`, an extractor that verifies the signature."
)]
#![cfg_attr(
    feature = "test-util",
    doc = "- Feature `test-util`: [`fake::FakeGraph`], a fake Graph server that sends signed"
)]
#![cfg_attr(
    not(feature = "test-util"),
    doc = "- Feature `test-util`: `fake::FakeGraph`, a fake Graph server that sends signed"
)]
//!   status webhooks.
//!
//! A webhook POST: check `X-Hub-Signature-256` over the raw bytes, then route every event
//! of the batch to its tenant by phone number id:
//!
//! ```
//! use edge_whatsapp::webhook::{TenantKey, WebhookVerifier, sign};
//! use secrecy::SecretString;
//!
//! let verifier = WebhookVerifier::new(
//!     SecretString::from("meta-app-secret"),
//!     SecretString::from("verify-token"),
//! );
//! let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"184630927512044",
//!   "changes":[{"field":"messages","value":{"messaging_product":"whatsapp",
//!   "metadata":{"display_phone_number":"254700000001","phone_number_id":"113057248966301"},
//!   "messages":[{"from":"254712345678","id":"wamid.HBgM","timestamp":"1795183780",
//!   "type":"text","text":{"body":"Habari, is the order ready?"}}]}}]}]}"#;
//! // What Meta would send; in a handler, take the header from the request.
//! let header = sign(&SecretString::from("meta-app-secret"), body);
//!
//! let events = verifier.verify_and_parse(Some(&header), body)?;
//! assert_eq!(events.len(), 1);
//! let event = &events[0];
//! assert_eq!(
//!     event.routing.tenant_key(),
//!     Some(TenantKey::PhoneNumber("113057248966301".into()))
//! );
//! let message = event.as_message().ok_or("not a message")?;
//! assert_eq!(message.text(), Some("Habari, is the order ready?"));
//! // A tampered body (or another app's signature) is refused before it is parsed.
//! assert!(verifier.verify_and_parse(Some(&header), b"{}").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Sending a text from a tenant's number (it talks to Meta, so it is not run here):
//!
//! ```no_run
//! # async fn demo() -> Result<(), edge_whatsapp::Error> {
//! use edge_whatsapp::message::{SendMessage, Text};
//! use edge_whatsapp::{Credentials, WhatsAppClient};
//! use secrecy::SecretString;
//!
//! let client = WhatsAppClient::builder().build()?; // one per process, shared by tenants
//! let tenant = Credentials::new("113057248966301", SecretString::from("tenant-token"));
//! let sent = SendMessage::new("+254712345678", Text::new("Karibu! Your order is ready."))
//!     .biz_opaque_callback_data("send:42") // comes back on every status webhook
//!     .send(&client, &tenant)
//!     .await?;
//! println!("sent as {:?}", sent.message_id());
//! # Ok(()) }
//! ```
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
