//! Middleware every request passes through: request ids with per-request log spans, the
//! guarantee that every error response is the JSON envelope, tenant scopes, and the
//! subscription gate of authenticated routes.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use tracing::Instrument as _;

use super::error::ApiError;
use crate::billing::{Standing, Standings, SubscriptionStatus};

/// The header that carries the request id.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request, available to handlers as an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIdentity(pub String);

/// Accepts the caller's `x-request-id` if it is sane (1–128 characters of letters,
/// digits, `-`, `_`, `.`, `:`), otherwise generates one; runs the request inside a span
/// that carries the id, so every log line of the request has it; echoes the id on the
/// response; and logs one line when the request finishes.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_acceptable_request_id(value))
        .map(str::to_owned)
        .unwrap_or_else(|| edge_core::RequestId::new().to_string());
    let header_value = HeaderValue::from_str(&id).ok();
    if let Some(value) = &header_value {
        request
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), value.clone());
    }
    request.extensions_mut().insert(RequestIdentity(id.clone()));

    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = Instant::now();
    async move {
        let mut response = next.run(request).await;
        let status = response.status().as_u16();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request finished");
        }
        if let Some(value) = header_value {
            response.headers_mut().insert(X_REQUEST_ID.clone(), value);
        }
        response
    }
    .instrument(span)
    .await
}

fn is_acceptable_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Runs the request in the cross-tenant database scope (see [`crate::tenant_scope`]).
pub async fn scope_cross_tenant(request: Request, next: Next) -> Response {
    crate::tenant_scope::cross_tenant(next.run(request)).await
}

/// Runs an authenticated request in its organization's database scope, so row-level
/// security shows it only its own rows.
pub async fn scope_to_organization(request: Request, next: Next) -> Response {
    match request.extensions().get::<edge_tenancy::TenantContext>() {
        Some(ctx) => {
            let org = ctx.org();
            crate::tenant_scope::in_organization(org, next.run(request)).await
        }
        None => ApiError::from(edge_core::Error::Unauthenticated).into_response(),
    }
}

/// The header that tells a client its organization's subscription needs paying:
/// `grace; ends=2026-12-30T09:00:00Z` while in grace, `suspended` once suspended.
pub static EDGE_SUBSCRIPTION: HeaderName = HeaderName::from_static("edge-subscription");

/// What the subscription gate of one route needs.
#[derive(Clone)]
pub struct SubscriptionGate {
    db: sea_orm::DatabaseConnection,
    standings: Standings,
    available_when_suspended: bool,
}

impl SubscriptionGate {
    /// The gate of a route that a suspended organization may (or may not) call.
    pub fn new(state: &crate::AppState, available_when_suspended: bool) -> Self {
        Self {
            db: state.db.clone(),
            standings: state.standings.clone(),
            available_when_suspended,
        }
    }

    /// Where `org` stands: as the tenant resolver recorded it for this request, or read
    /// again. `None` for an organization without a subscription (never blocked).
    async fn standing(&self, org: edge_core::OrgId) -> Result<Option<Standing>, edge_core::Error> {
        if let Some(standing) = self.standings.recent(org) {
            return Ok(Some(standing));
        }
        match crate::billing::subscriptions::standing(&self.db, org).await {
            Ok(standing) => Ok(Some(standing)),
            Err(edge_core::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// Answers 402 `subscription_suspended` to a suspended organization's request for a paid
/// feature (see [`super::available_when_suspended`]); lets everything else through,
/// marking responses with [`EDGE_SUBSCRIPTION`] while the subscription is in grace or
/// suspended. The platform operator is never blocked. Runs after authentication.
pub async fn subscription_gate(
    State(gate): State<SubscriptionGate>,
    request: Request,
    next: Next,
) -> Response {
    let Some((org, operator)) = request
        .extensions()
        .get::<edge_tenancy::TenantContext>()
        .map(|ctx| (ctx.org(), ctx.role().is_operator()))
    else {
        return ApiError::from(edge_core::Error::Unauthenticated).into_response();
    };
    if operator {
        return next.run(request).await;
    }
    let standing = match gate.standing(org).await {
        Ok(Some(standing)) => standing,
        Ok(None) => return next.run(request).await,
        Err(err) => return ApiError::from(err).into_response(),
    };
    if standing.status == SubscriptionStatus::Suspended && !gate.available_when_suspended {
        return ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "subscription_suspended",
            "this organization's subscription is suspended for non-payment: pay with \
             POST /api/v1/billing/subscription to use this again; reading, exporting and \
             billing keep working meanwhile",
        )
        .with_details(serde_json::json!({
            "plan": standing.plan_code,
            "status": standing.status,
            "grace_ended_at": standing.grace_ends_at,
            "pay_with": "POST /api/v1/billing/subscription",
        }))
        .into_response();
    }
    let mut response = next.run(request).await;
    let marker = match standing.status {
        SubscriptionStatus::Active => None,
        SubscriptionStatus::Grace => Some(match standing.grace_ends_at {
            Some(ends) => format!(
                "grace; ends={}",
                ends.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => "grace".to_owned(),
        }),
        SubscriptionStatus::Suspended => Some("suspended".to_owned()),
    };
    if let Some(value) = marker.and_then(|m| HeaderValue::from_str(&m).ok()) {
        response
            .headers_mut()
            .insert(EDGE_SUBSCRIPTION.clone(), value);
    }
    response
}

/// Largest non-JSON error body read to reuse its text as the envelope's message.
const MAX_PLAIN_ERROR_BODY: usize = 4096;

/// Rewrites any error response that is not JSON (from axum's own rejections, the body
/// limit, the timeout or the panic handler) into the JSON error envelope.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match http_body_util::Limited::new(body, MAX_PLAIN_ERROR_BODY)
        .collect()
        .await
    {
        Ok(collected) => String::from_utf8(collected.to_bytes().to_vec()).ok(),
        Err(_) => None,
    };
    let envelope = ApiError::from_status(status, text).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let (envelope_parts, envelope_body) = envelope.into_parts();
    parts.headers.extend(envelope_parts.headers);
    Response::from_parts(parts, Body::new(envelope_body))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json") || v.starts_with("application/problem+json")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_accepted_only_when_sane() {
        assert!(is_acceptable_request_id("abc-123_x.y:z"));
        assert!(is_acceptable_request_id(&"a".repeat(128)));
        assert!(!is_acceptable_request_id(""));
        assert!(!is_acceptable_request_id(&"a".repeat(129)));
        assert!(!is_acceptable_request_id("with space"));
        assert!(!is_acceptable_request_id("line\nbreak"));
        assert!(!is_acceptable_request_id("quote\""));
    }
}

/// The request body limits: one for every route, and a larger one for file uploads.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Every route but uploads.
    pub default: usize,
    /// `POST /api/v1/imports` (a CSV file).
    pub uploads: usize,
}

/// Limits request bodies: a declared `Content-Length` over the limit answers 413 at once;
/// a body that grows past it fails when read (413 from the extractors). Uploads get
/// their own, larger limit.
pub async fn limit_body(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let upload = request.method() == axum::http::Method::POST
        && request.uri().path().trim_end_matches('/') == "/api/v1/imports";
    let limit = if upload {
        limits.uploads
    } else {
        limits.default
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, None).into_response();
    }
    let request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(request).await
}
