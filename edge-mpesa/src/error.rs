//! The one error type of this crate, shaped around what the caller must decide.

use std::fmt;

/// The most of a response body kept in [`Error::UnexpectedResponse`], in bytes.
pub const MAX_KEPT_BODY: usize = 4096;

/// Everything that can go wrong when talking to Daraja.
///
/// Each variant answers the question a caller has to answer next: *was the request sent*
/// ([`Error::may_have_been_sent`]) and *is sending it again sensible*
/// ([`Error::is_retryable`]). No third-party error types appear here, and no secret is
/// ever part of an error (credentials are never formatted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request was refused before anything was sent: a field is missing or invalid.
    #[error("invalid request: {field}: {reason}")]
    InvalidRequest {
        /// The Daraja field (or credential) at fault, e.g. `AccountReference`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made to Daraja; nothing was sent.
    #[error("could not connect to Daraja: {message}")]
    Connect {
        /// The transport's explanation.
        message: String,
    },
    /// The request timed out after the connection was made. Daraja may have received and
    /// acted on it: reconcile (STK query, transaction status) before sending it again.
    #[error("timed out waiting for Daraja; the request may have been processed")]
    Timeout,
    /// The transport failed after the request may have left the process (connection reset,
    /// broken body, …). Treat like [`Error::Timeout`].
    #[error("transport failure after sending: {message}")]
    Transport {
        /// The transport's explanation.
        message: String,
    },
    /// Daraja (or a proxy in front of it) answered with something that is neither the
    /// expected body nor its error envelope: HTML, an empty 400, an Apigee fault, …
    #[error("unexpected response from Daraja (HTTP {status}): {body}")]
    UnexpectedResponse {
        /// The HTTP status code.
        status: u16,
        /// The body, cut to at most [`MAX_KEPT_BODY`] bytes.
        body: String,
    },
    /// Daraja answered with an error of its own.
    #[error(transparent)]
    Daraja(#[from] DarajaError),
    /// The client could not be built (TLS set-up, invalid base URL, …).
    #[error("could not build the Daraja client: {message}")]
    Build {
        /// What went wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn unexpected(status: u16, body: &[u8]) -> Self {
        let mut end = body.len().min(MAX_KEPT_BODY);
        let text = loop {
            match std::str::from_utf8(&body[..end]) {
                Ok(text) => break text.to_owned(),
                Err(e) if e.valid_up_to() > 0 => end = e.valid_up_to(),
                Err(_) => break String::from_utf8_lossy(&body[..end]).into_owned(),
            }
        };
        Error::UnexpectedResponse { status, body: text }
    }

    /// Reads a non-2xx answer: Daraja's envelope becomes [`Error::Daraja`], anything
    /// else [`Error::UnexpectedResponse`] with the status and body kept.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        crate::client::error_from_body(status, body)
    }

    /// True if Daraja may have received (and acted on) the request.
    ///
    /// `false` only when it certainly was not sent (validation, connection refused, client
    /// set-up) or when Daraja answered with an error, which means it refused the request.
    /// An [`Error::UnexpectedResponse`] with a 2xx or 5xx status counts as "may have been
    /// sent": a mangled success or a proxy error does not prove that M-Pesa did nothing.
    pub fn may_have_been_sent(&self) -> bool {
        match self {
            Error::InvalidRequest { .. } | Error::Connect { .. } | Error::Build { .. } => false,
            Error::Timeout | Error::Transport { .. } => true,
            Error::UnexpectedResponse { status, .. } => {
                *status >= 500 || (200..300).contains(status)
            }
            Error::Daraja(e) => e.kind() == DarajaErrorKind::ServerError,
        }
    }

    /// True if sending the *same* request again later is safe and may succeed.
    ///
    /// Conservative by design: timeouts and transport failures are **not** retryable,
    /// because the first attempt may have moved money; reconcile first. Connection
    /// failures, throttling, a busy subscriber and maintenance windows are retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. } => true,
            Error::Daraja(e) => e.is_retryable(),
            Error::UnexpectedResponse { status, .. } => matches!(status, 429 | 502 | 503),
            _ => false,
        }
    }

    /// The Daraja error, if this is one.
    pub fn as_daraja(&self) -> Option<&DarajaError> {
        match self {
            Error::Daraja(e) => Some(e),
            _ => None,
        }
    }
}

/// An error answered by Daraja in its envelope `{requestId, errorCode, errorMessage}`, or a
/// synchronous response whose `ResponseCode` is not `"0"`.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("Daraja error {code} (HTTP {status}): {message} [request id {request_id}]")]
pub struct DarajaError {
    /// The HTTP status code.
    pub status: u16,
    /// `errorCode`, e.g. `400.002.02` (or the `ResponseCode` of a refused request).
    pub code: String,
    /// `errorMessage`, e.g. `Bad Request - Invalid Timestamp`.
    pub message: String,
    /// `requestId`, to quote to Safaricom support (empty if absent).
    pub request_id: String,
}

impl fmt::Debug for DarajaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DarajaError")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("request_id", &self.request_id)
            .field("kind", &self.kind())
            .finish()
    }
}

/// What a Daraja error code means for the caller, classified on (code, message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DarajaErrorKind {
    /// The request itself is wrong (`400.002.02 Invalid <Field>`, payload errors, wrong
    /// path). Fix it; do not retry.
    BadRequest,
    /// The access token was rejected. The client already refreshed and retried once.
    InvalidToken,
    /// The Daraja app lacks the API product (e.g. C2B v1 vs v2). A configuration error.
    NoApiProduct,
    /// Shortcode, passkey or timestamp do not match (`500.001.1001 Wrong credentials`), or
    /// the merchant does not exist in this environment. A configuration error.
    WrongCredentials,
    /// The payer already has an M-Pesa session open. Retry after a minute or more.
    SubscriberLocked,
    /// STK query: the payer has not finished yet.
    Pending,
    /// The `OriginatorConversationID` was used before: the first request was accepted.
    DuplicateRequest,
    /// Spike arrest or quota violation. Back off and retry.
    Throttled,
    /// Service under maintenance. Retry later.
    Maintenance,
    /// C2B URLs are already registered for the shortcode.
    AlreadyRegistered,
    /// Daraja's own internal error: the outcome is unknown for money-moving requests.
    ServerError,
    /// A code this crate does not classify. Keep `code` and `message`.
    Other,
}

impl DarajaError {
    /// Classifies the error from its code and message.
    pub fn kind(&self) -> DarajaErrorKind {
        classify(&self.code, &self.message)
    }

    /// True if sending the same request later may succeed and is safe.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            DarajaErrorKind::SubscriberLocked
                | DarajaErrorKind::Throttled
                | DarajaErrorKind::Maintenance
        )
    }

    /// True for an access-token rejection (not the "no API product" configuration error).
    pub fn is_invalid_token(&self) -> bool {
        self.kind() == DarajaErrorKind::InvalidToken
    }

    /// True for the STK-query "the transaction is being processed" answer.
    pub fn is_pending(&self) -> bool {
        self.kind() == DarajaErrorKind::Pending
    }
}

/// Classifies a Daraja `errorCode` and `errorMessage`. A pure function, tested case by case.
pub fn classify(code: &str, message: &str) -> DarajaErrorKind {
    let lower = message.to_ascii_lowercase();
    let code = code.trim();
    if lower.contains("apiproduct") {
        return DarajaErrorKind::NoApiProduct;
    }
    match code {
        "404.001.03" | "400.003.01" | "401.002.01" => DarajaErrorKind::InvalidToken,
        "401.003.01" if lower.contains("access token") => DarajaErrorKind::InvalidToken,
        "500.001.1001" if lower.contains("being processed") => DarajaErrorKind::Pending,
        "500.001.1001" if lower.contains("lock subscriber") => DarajaErrorKind::SubscriberLocked,
        "500.001.1001" => DarajaErrorKind::WrongCredentials,
        "500.002.1001" if lower.contains("duplicate") => DarajaErrorKind::DuplicateRequest,
        "500.003.02" | "500.003.03" => DarajaErrorKind::Throttled,
        "00.002.1001" => DarajaErrorKind::Maintenance,
        "500.003.1001"
            if lower.contains("already registered") || lower.contains("duplicate notification") =>
        {
            DarajaErrorKind::AlreadyRegistered
        }
        "500.003.1001" => DarajaErrorKind::ServerError,
        c if c.starts_with("400.") || c.starts_with("404.") || c.starts_with("405.") => {
            DarajaErrorKind::BadRequest
        }
        _ if lower.contains("invalid access token") => DarajaErrorKind::InvalidToken,
        _ => DarajaErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daraja(status: u16, code: &str, message: &str) -> Error {
        Error::Daraja(DarajaError {
            status,
            code: code.into(),
            message: message.into(),
            request_id: "r".into(),
        })
    }

    #[test]
    fn classification_case_by_case() {
        use DarajaErrorKind::*;
        let cases = [
            ("404.001.03", "Invalid Access Token", InvalidToken),
            ("400.003.01", "Invalid Access Token", InvalidToken),
            (
                "401.003.01",
                "Error Occurred - Invalid Access Token - Invalid API call as no apiproduct match found",
                NoApiProduct,
            ),
            ("400.002.02", "Bad Request - Invalid Timestamp", BadRequest),
            ("500.001.1001", "Wrong credentials", WrongCredentials),
            ("500.001.1001", "Merchant does not exist", WrongCredentials),
            (
                "500.001.1001",
                "Unable to lock subscriber, a transaction is already in process for the current subscriber",
                SubscriberLocked,
            ),
            (
                "500.001.1001",
                "The transaction is being processed",
                Pending,
            ),
            (
                "500.002.1001",
                "Duplicate OriginatorConversationID.",
                DuplicateRequest,
            ),
            (
                "500.003.02",
                "Error Occurred: Spike Arrest Violation",
                Throttled,
            ),
            ("500.003.03", "Quota Violation", Throttled),
            ("500.003.1001", "Internal Server Error", ServerError),
            (
                "500.003.1001",
                "Urls are already registered",
                AlreadyRegistered,
            ),
            (
                "00.002.1001",
                "Service is currently under maintenance",
                Maintenance,
            ),
            ("999.999.999", "Something new", Other),
        ];
        for (code, message, kind) in cases {
            assert_eq!(classify(code, message), kind, "{code} {message}");
        }
    }

    #[test]
    fn what_the_caller_must_decide() {
        let cases: [(Error, bool, bool); 10] = [
            (Error::invalid("Amount", "must be positive"), false, false),
            (Error::unexpected(200, b"<html>"), true, false),
            (
                Error::Connect {
                    message: "refused".into(),
                },
                false,
                true,
            ),
            (Error::Timeout, true, false),
            (
                Error::Transport {
                    message: "reset".into(),
                },
                true,
                false,
            ),
            (Error::unexpected(400, b""), false, false),
            (Error::unexpected(502, b"<html>"), true, true),
            (
                daraja(500, "500.003.02", "Spike Arrest Violation"),
                false,
                true,
            ),
            (
                daraja(500, "500.003.1001", "Internal Server Error"),
                true,
                false,
            ),
            (
                daraja(400, "400.002.02", "Bad Request - Invalid Amount"),
                false,
                false,
            ),
        ];
        for (error, sent, retry) in cases {
            assert_eq!(error.may_have_been_sent(), sent, "{error:?}");
            assert_eq!(error.is_retryable(), retry, "{error:?}");
        }
    }

    #[test]
    fn unexpected_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(MAX_KEPT_BODY);
        let Error::UnexpectedResponse { body, status } = Error::unexpected(500, body.as_bytes())
        else {
            panic!("wrong variant");
        };
        assert_eq!(status, 500);
        assert!(body.len() <= MAX_KEPT_BODY && !body.is_empty());
    }
}
