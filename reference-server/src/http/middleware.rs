//! Middleware every request passes through: request ids with per-request log spans, and
//! the guarantee that every error response is the JSON envelope.

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use tracing::Instrument as _;

use super::error::ApiError;

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
