//! The error shared by services and repositories.
//!
//! Each variant says what the caller must do differently, and maps to one HTTP status in
//! the reference server's JSON error envelope. Messages are safe to show to the client:
//! secrets and internal causes never go into them ([`Error::Internal`] keeps its cause for
//! the log only).

use std::time::Duration;

use serde::Serialize;

use crate::money::{Money, MoneyError};
use crate::msisdn::MsisdnError;
use crate::{CursorError, IdempotencyKeyError};

/// The result type of Edge services and repositories.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One field that failed validation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name as the client sent it, e.g. `"phone"` or `"items[2].amount"`.
    pub field: String,
    /// What is wrong with it, in words.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is well-formed but its values are not acceptable (HTTP 422).
    #[error("validation failed: {}", summarize(.0))]
    Validation(Vec<FieldError>),
    /// The record does not exist, or belongs to another tenant (HTTP 404).
    #[error("{entity} not found")]
    NotFound {
        /// What was looked for, e.g. `"prospect"`.
        entity: &'static str,
    },
    /// The request conflicts with the current state (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// An idempotency key was reused with different parameters (HTTP 409).
    #[error("idempotency key was already used with different parameters")]
    IdempotencyMismatch,
    /// The wallet cannot cover the amount (HTTP 402).
    #[error("insufficient balance: {available} available, {requested} requested")]
    InsufficientFunds {
        /// What the wallet could spend.
        available: Money,
        /// What was asked for.
        requested: Money,
    },
    /// The organization's subscription does not allow this now (HTTP 402).
    #[error("{0}")]
    PaymentRequired(String),
    /// No valid credentials were presented (HTTP 401).
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is known but not allowed to do this (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// Too many requests; try again after the given time (HTTP 429).
    #[error("rate limit exceeded; retry after {} s", .retry_after.as_secs().max(1))]
    RateLimited {
        /// How long to wait before retrying.
        retry_after: Duration,
    },
    /// An upstream service (Daraja, the Graph API, …) failed (HTTP 502, or 504 on timeout).
    #[error("{service} failed: {message}")]
    Upstream {
        /// Which service, e.g. `"daraja"`.
        service: &'static str,
        /// What happened, safe to show.
        message: String,
        /// Whether the failure was a timeout (the request may still have been processed).
        timed_out: bool,
    },
    /// Anything else. The cause is for the log; clients see a generic message (HTTP 500).
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn summarize(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// A validation error on one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// A not-found error for `entity`.
    pub fn not_found(entity: &'static str) -> Self {
        Self::NotFound { entity }
    }

    /// An internal error wrapping `cause`.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    /// The stable, machine-readable code of this error, used as `error.code` over HTTP.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "validation_failed",
            Error::NotFound { .. } => "not_found",
            Error::Conflict(_) => "conflict",
            Error::IdempotencyMismatch => "idempotency_key_reused",
            Error::InsufficientFunds { .. } => "insufficient_funds",
            Error::PaymentRequired(_) => "payment_required",
            Error::Unauthenticated => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::RateLimited { .. } => "rate_limited",
            Error::Upstream {
                timed_out: true, ..
            } => "upstream_timeout",
            Error::Upstream { .. } => "upstream_error",
            Error::Internal(_) => "internal_error",
        }
    }
}

impl From<MsisdnError> for Error {
    fn from(err: MsisdnError) -> Self {
        Error::invalid("phone", err.to_string())
    }
}

impl From<MoneyError> for Error {
    fn from(err: MoneyError) -> Self {
        match err {
            MoneyError::Overflow => Error::invalid("amount", "amount is too large"),
            MoneyError::CurrencyMismatch { .. } => Error::invalid("currency", err.to_string()),
            MoneyError::UnknownCurrency(_) => Error::invalid("currency", err.to_string()),
            _ => Error::invalid("amount", err.to_string()),
        }
    }
}

impl From<IdempotencyKeyError> for Error {
    fn from(err: IdempotencyKeyError) -> Self {
        Error::invalid("idempotency_key", err.to_string())
    }
}

impl From<CursorError> for Error {
    fn from(err: CursorError) -> Self {
        Error::invalid("cursor", err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, Msisdn};

    #[test]
    fn codes_are_stable_and_messages_carry_no_internal_cause() {
        let internal = Error::internal("connection string postgres://secret@db");
        assert_eq!(internal.code(), "internal_error");
        assert_eq!(internal.to_string(), "internal error");

        let timeout = Error::Upstream {
            service: "daraja",
            message: "no answer within 30 s".into(),
            timed_out: true,
        };
        assert_eq!(timeout.code(), "upstream_timeout");
        assert_eq!(
            Error::RateLimited {
                retry_after: Duration::from_millis(200)
            }
            .to_string(),
            "rate limit exceeded; retry after 1 s"
        );
    }

    #[test]
    fn vocabulary_errors_become_field_errors() {
        let err: Error = "12".parse::<Msisdn>().unwrap_err().into();
        match err {
            Error::Validation(fields) => assert_eq!(fields[0].field, "phone"),
            other => panic!("unexpected {other:?}"),
        }
        let err: Error = Money::parse("1.234", Currency::Kes).unwrap_err().into();
        assert_eq!(err.code(), "validation_failed");
        assert!(err.to_string().contains("amount:"), "{err}");
    }
}
