//! axum integration (feature `axum`): an extractor that verifies `X-Hub-Signature-256`
//! over the raw body before handing it over, and a handler helper for the GET handshake.
//!
//! ```no_run
//! use axum::{Router, routing::get, extract::{FromRef, RawQuery, State}};
//! use edge_whatsapp::axum::{VerifiedWebhook, handshake_response};
//! use edge_whatsapp::webhook::WebhookVerifier;
//!
//! #[derive(Clone)]
//! struct AppState { verifier: WebhookVerifier }
//!
//! impl FromRef<AppState> for WebhookVerifier {
//!     fn from_ref(state: &AppState) -> Self { state.verifier.clone() }
//! }
//!
//! async fn receive(webhook: VerifiedWebhook) -> &'static str {
//!     for event in webhook.events().unwrap_or_default() {
//!         // route by event.routing.tenant_key(), enqueue, …
//!         let _ = event;
//!     }
//!     "ok"
//! }
//!
//! async fn verify(State(s): State<AppState>, RawQuery(q): RawQuery) -> axum::response::Response {
//!     handshake_response(&s.verifier, q.as_deref())
//! }
//!
//! # fn app(verifier: WebhookVerifier) -> Router {
//! Router::new()
//!     .route("/webhooks/whatsapp", get(verify).post(receive))
//!     .with_state(AppState { verifier })
//! # }
//! ```

use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::webhook::{ParseError, SignatureError, WebhookEvent, WebhookVerifier, parse_events};

/// The largest body [`VerifiedWebhook`] reads: Meta's payloads are at most 3 MB, above
/// axum's default 2 MB limit, so the extractor applies its own limit instead.
pub const MAX_WEBHOOK_BYTES: usize = 4 * 1024 * 1024;

/// A webhook POST whose signature was verified over exactly these bytes. Store the raw body
/// before anything else: Meta offers no way to fetch past webhooks.
#[derive(Debug, Clone)]
pub struct VerifiedWebhook {
    /// The raw body, as signed.
    pub body: Bytes,
}

impl VerifiedWebhook {
    /// Parses every event of the batch.
    pub fn events(&self) -> Result<Vec<WebhookEvent>, ParseError> {
        parse_events(&self.body)
    }
}

/// Why [`VerifiedWebhook`] refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// The signature is missing or wrong (401).
    #[error(transparent)]
    Signature(SignatureError),
    /// The body could not be read or is over [`MAX_WEBHOOK_BYTES`] (413).
    #[error("could not read the webhook body")]
    Body(StatusCode),
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Signature(e) => (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
            Self::Body(status) => (status, "could not read the body").into_response(),
        }
    }
}

impl<S> FromRequest<S> for VerifiedWebhook
where
    S: Send + Sync,
    WebhookVerifier: FromRef<S>,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = WebhookVerifier::from_ref(state);
        let headers = req.headers().clone();
        let body = axum::body::to_bytes(req.into_body(), MAX_WEBHOOK_BYTES)
            .await
            .map_err(|_| WebhookRejection::Body(StatusCode::PAYLOAD_TOO_LARGE))?;
        verifier
            .verify_headers(&headers, &body)
            .map_err(WebhookRejection::Signature)?;
        Ok(Self { body })
    }
}

/// Answers Meta's verification GET: 200 with the bare challenge, or 403.
pub fn handshake_response(verifier: &WebhookVerifier, query: Option<&str>) -> Response {
    match verifier.handshake(query.unwrap_or("")) {
        Ok(challenge) => (StatusCode::OK, challenge).into_response(),
        Err(e) => (StatusCode::FORBIDDEN, e.to_string()).into_response(),
    }
}
