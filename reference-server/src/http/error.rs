//! The JSON error envelope: `{"error": {"code": "...", "message": "...", "details": ...}}`.
//!
//! Every error the server answers goes through [`ApiError`]. Internal causes are logged
//! with the request's span and never sent to the client.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    details: Option<Value>,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// Adds machine-readable details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400 with code `bad_request`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 for a route that does not exist.
    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no route for {method} {path}"),
        )
    }

    /// 500, logging `cause` (never sent to the client).
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %ErrorChain(cause), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; it has been logged with this request's x-request-id",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The envelope for a bare status produced outside our handlers (by axum or a tower
    /// layer), keeping `message` if one is given.
    pub(crate) fn from_status(status: StatusCode, message: Option<String>) -> Self {
        let (code, default_message) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "the request could not be read"),
            StatusCode::UNAUTHORIZED => ("unauthenticated", "authentication required"),
            StatusCode::FORBIDDEN => ("forbidden", "not allowed"),
            StatusCode::NOT_FOUND => ("not_found", "not found"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this method is not allowed on this route",
            ),
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the request body is larger than the server accepts",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send the body as application/json",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => ("validation_failed", "the request is not valid"),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => (
                "service_unavailable",
                "the service is unavailable; try again shortly",
            ),
            s if s.is_server_error() => ("internal_error", "an internal error occurred"),
            _ => ("error", "the request failed"),
        };
        let message = match message {
            // Keep what axum said about a bad request; use our own words for the rest
            // (tower layers' texts are terse, and a server error's text may be internal).
            Some(m)
                if !m.trim().is_empty()
                    && !status.is_server_error()
                    && status != StatusCode::PAYLOAD_TOO_LARGE =>
            {
                m
            }
            _ => default_message.to_owned(),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "details": self.details,
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<edge_core::Error> for ApiError {
    fn from(err: edge_core::Error) -> Self {
        use edge_core::Error as E;
        let code = err.code();
        match err {
            E::Validation(fields) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                "the request is not valid",
            )
            .with_details(json!({ "fields": fields })),
            E::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, code, err.to_string()),
            E::Conflict(_) | E::IdempotencyMismatch => {
                Self::new(StatusCode::CONFLICT, code, err.to_string())
            }
            E::InsufficientFunds {
                available,
                requested,
            } => Self::new(StatusCode::PAYMENT_REQUIRED, code, err.to_string())
                .with_details(json!({ "available": available, "requested": requested })),
            E::PaymentRequired(_) => Self::new(StatusCode::PAYMENT_REQUIRED, code, err.to_string()),
            E::Unauthenticated => Self::new(StatusCode::UNAUTHORIZED, code, err.to_string()),
            E::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, code, err.to_string()),
            E::RateLimited { retry_after } => {
                let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, code, err.to_string());
                e.retry_after = Some(retry_after);
                e
            }
            E::Upstream { timed_out, .. } => Self::new(
                if timed_out {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                },
                code,
                err.to_string(),
            ),
            E::Internal(cause) => Self::internal(cause.as_ref()),
            // `edge_core::Error` is non-exhaustive: a variant added later is an internal
            // error until it is mapped here.
            other => Self::internal(&other),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::internal(&err)
    }
}

/// Displays an error with its chain of sources: `outer: inner: root`.
pub(crate) struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    async fn body(response: Response) -> Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn core_errors_map_to_statuses_and_envelopes() {
        let cases = [
            (
                edge_core::Error::invalid("phone", "bad"),
                422,
                "validation_failed",
            ),
            (edge_core::Error::not_found("prospect"), 404, "not_found"),
            (
                edge_core::Error::IdempotencyMismatch,
                409,
                "idempotency_key_reused",
            ),
            (edge_core::Error::Unauthenticated, 401, "unauthenticated"),
            (edge_core::Error::Forbidden("no".into()), 403, "forbidden"),
            (
                edge_core::Error::Upstream {
                    service: "daraja",
                    message: "x".into(),
                    timed_out: true,
                },
                504,
                "upstream_timeout",
            ),
        ];
        for (err, status, code) in cases {
            let response = ApiError::from(err).into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(body(response).await["error"]["code"], code);
        }
    }

    #[tokio::test]
    async fn rate_limits_carry_retry_after_in_whole_seconds() {
        let err = edge_core::Error::RateLimited {
            retry_after: Duration::from_millis(1500),
        };
        let response = ApiError::from(err).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[tokio::test]
    async fn internal_causes_never_reach_the_client() {
        let err = edge_core::Error::internal("password=hunter2 in connection string");
        let response = ApiError::from(err).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let json = body(response).await;
        assert_eq!(json["error"]["code"], "internal_error");
        assert!(!json.to_string().contains("hunter2"));
    }
}
