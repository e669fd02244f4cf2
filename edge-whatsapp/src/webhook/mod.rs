//! Webhooks, framework-agnostic: the GET handshake, the `X-Hub-Signature-256` check over the
//! raw bytes, and parsing of every entry and change into typed, routable events.
//!
//! ```
//! use edge_whatsapp::webhook::{WebhookVerifier, EventKind};
//! use secrecy::SecretString;
//!
//! let verifier = WebhookVerifier::new(
//!     SecretString::from("app-secret"),
//!     SecretString::from("verify-token"),
//! );
//! let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
//! let header = edge_whatsapp::webhook::sign(&SecretString::from("app-secret"), body);
//! let events = verifier.verify_and_parse(Some(&header), body).unwrap();
//! assert!(events.is_empty());
//! ```

mod events;
mod handshake;
mod signature;

use std::fmt;

use secrecy::SecretString;

pub use events::{
    Contact, DeliveryStatus, EventKind, InboundLocation, InboundMedia, InboundMessage,
    InteractiveReply, MessageContent, MessageContext, ParseError, Pricing, PricingCategory,
    PricingType, Routing, StatusUpdate, TenantKey, UnknownEvent, WebhookError, WebhookEvent,
    events_from_value, parse_events,
};
pub use handshake::{Handshake, HandshakeError};
pub use signature::{
    SIGNATURE_HEADER, SignatureError, sign, verify_signature, verify_signature_headers,
};

/// Why a webhook POST was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectError {
    /// The signature is missing or wrong: answer 401 and do not parse the body.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The signed body is not a notification. It did come from Meta: answer 200, store it
    /// and look at it later rather than make Meta retry for days.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// The app secret and verify token of one Meta app, with the checks that use them.
///
/// One Meta app signs every tenant's traffic with the same secret, so one verifier serves
/// all tenants; route each event by its [`Routing`] keys. `Debug` shows neither secret.
#[derive(Clone)]
pub struct WebhookVerifier {
    app_secret: SecretString,
    verify_token: SecretString,
}

impl WebhookVerifier {
    /// A verifier for the app with `app_secret` whose callback was saved with
    /// `verify_token`.
    pub fn new(app_secret: SecretString, verify_token: SecretString) -> Self {
        Self {
            app_secret,
            verify_token,
        }
    }

    /// The GET handshake from a raw query string. `Ok(challenge)`: answer 200 with it as
    /// the bare body; `Err`: answer 403.
    pub fn handshake(&self, query: &str) -> Result<String, HandshakeError> {
        Handshake::from_query(query).verify(&self.verify_token)
    }

    /// Checks `X-Hub-Signature-256` (its value, `None` when absent) over the raw body.
    pub fn verify(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        verify_signature(&self.app_secret, signature_header, body)
    }

    /// Checks the signature found in `headers` over the raw body.
    pub fn verify_headers(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        verify_signature_headers(&self.app_secret, headers, body)
    }

    /// Verifies, then parses every event of the batch.
    pub fn verify_and_parse(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<WebhookEvent>, RejectError> {
        self.verify(signature_header, body)?;
        Ok(parse_events(body)?)
    }

    /// The app secret, to sign test payloads.
    pub fn app_secret(&self) -> &SecretString {
        &self.app_secret
    }
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("app_secret", &"[REDACTED]")
            .field("verify_token", &"[REDACTED]")
            .finish()
    }
}
