//! The one error type of this crate, and the classification of Graph error codes.
//!
//! The taxonomy matches `edge-mpesa`: it tells the caller whether the request could have
//! reached Meta ([`Error::may_have_been_sent`]) and whether to try again
//! ([`Error::is_retryable`]). Service errors are keyed on the Graph `code`, never on the HTTP
//! status or the title text, because Meta sends different statuses for the same code on
//! different endpoints.

use std::time::Duration;

use serde::Deserialize;

/// Everything that can go wrong when calling the Graph API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be built or failed local validation. Nothing was sent.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made. Nothing was sent; retrying is safe.
    #[error("could not connect to the Graph API: {message}")]
    Connect {
        /// The transport's description.
        message: String,
    },
    /// No response in time. The request **may have been sent**.
    #[error("the Graph API did not answer in time")]
    Timeout,
    /// The connection failed after the request was (possibly) written. The request **may
    /// have been sent**.
    #[error("the connection to the Graph API failed mid-request: {message}")]
    Interrupted {
        /// The transport's description.
        message: String,
    },
    /// A response that is neither the expected body nor a Graph error.
    #[error("unexpected response from the Graph API (HTTP {status})")]
    UnexpectedResponse {
        /// HTTP status.
        status: u16,
        /// The body, as text (lossy), cut to 4 KiB.
        body: String,
    },
    /// A Graph error (`{"error":{…}}`).
    #[error("Graph API error {code}{}: {message}", subcode.map(|s| format!("/{s}")).unwrap_or_default())]
    Api {
        /// HTTP status (informational only: branch on `code`).
        status: u16,
        /// The Graph error `code`.
        code: i64,
        /// `error_subcode`, when Meta still sends it.
        subcode: Option<i64>,
        /// Meta's message, such as `(#131047) Re-engagement message`.
        message: String,
        /// `error_data.details`, the most useful part.
        details: Option<String>,
        /// The trace id Meta support asks for.
        fbtrace_id: Option<String>,
    },
}

/// What a Graph error code means for the caller, per Meta's error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Transient: retry later with backoff. The scope says what to slow down.
    RetryLater(RetryScope),
    /// The customer-service window is closed (131047): send a template instead.
    WindowClosed,
    /// The recipient cannot get this message (131026 and friends). Do not retry; refund.
    Undeliverable,
    /// Template parameters are wrong (132000, 132005, 132012, 132018). Fix the request.
    BadTemplateParameters,
    /// The template is missing, paused, disabled or violates policy (132001, 132007,
    /// 132015, 132016).
    TemplateUnavailable,
    /// The access token is invalid or expired (0, 190): the tenant must reconnect.
    Auth,
    /// The app or token lacks a permission (3, 10, 200–299, 131005).
    Permission,
    /// Something only the tenant can fix: payment method, policy block, quality, number
    /// status, registration.
    TenantAction,
    /// The request itself is wrong (100, 131008, 131009, 131051, 131053, …).
    InvalidRequest,
    /// The outcome is unknown (timeout or interrupted connection).
    OutcomeUnknown,
    /// A code this crate does not know.
    Unknown,
}

/// What a [`ErrorClass::RetryLater`] error is limited by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryScope {
    /// The business number's throughput (130429): slow the number's pacer.
    Number,
    /// The business number → this recipient pair (131056): retry this recipient only.
    Pair,
    /// The app's Graph call rate (4).
    App,
    /// The WABA's call rate on management endpoints (80007).
    Waba,
    /// Meta-side trouble (1, 2, 131000, 131016, 131057, 133004, HTTP 5xx).
    Service,
    /// The network: the connection was never made.
    Network,
}

impl ErrorClass {
    /// Classifies a Graph error code. Pure, and the same for synchronous errors and for the
    /// `errors[]` of a `failed` status webhook.
    pub fn from_code(code: i64) -> Self {
        match code {
            130429 => Self::RetryLater(RetryScope::Number),
            131056 => Self::RetryLater(RetryScope::Pair),
            4 => Self::RetryLater(RetryScope::App),
            80007 => Self::RetryLater(RetryScope::Waba),
            1 | 2 | 131000 | 131016 | 131057 | 133004 => Self::RetryLater(RetryScope::Service),
            131047 => Self::WindowClosed,
            131026 | 131049 | 131050 | 130472 | 131021 | 131030 => Self::Undeliverable,
            132000 | 132005 | 132012 | 132018 => Self::BadTemplateParameters,
            132001 | 132007 | 132015 | 132016 => Self::TemplateUnavailable,
            0 | 190 => Self::Auth,
            3 | 10 | 200..=299 | 131005 => Self::Permission,
            33 | 368 | 130497 | 131031 | 131037 | 131042 | 131045 | 131048 | 131064 | 133016
            | 132068 | 132069 | 133000 | 133005 | 133006 | 133008 | 133009 | 133010 | 133015 => {
                Self::TenantAction
            }
            100 | 131008 | 131009 | 131051 | 131052 | 131053 | 135000 => Self::InvalidRequest,
            _ => Self::Unknown,
        }
    }

    /// Whether an automatic retry (with backoff) is appropriate.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RetryLater(_))
    }
}

/// The delay before retry number `attempt` (1-based) for an error of class `class`, or
/// `None` to stop. Pure, so it can be tested case by case.
///
/// Pair-rate errors back off 4^n seconds (Meta's advice); throughput and service errors
/// back off exponentially from one second; app and WABA call-rate limits wait minutes.
/// At most five attempts are made.
pub fn retry_delay(class: ErrorClass, attempt: u32) -> Option<Duration> {
    const MAX_ATTEMPTS: u32 = 5;
    if attempt == 0 || attempt > MAX_ATTEMPTS {
        return None;
    }
    let exp = attempt - 1;
    match class {
        ErrorClass::RetryLater(RetryScope::Pair) => Some(Duration::from_secs(4u64.pow(attempt))),
        ErrorClass::RetryLater(RetryScope::Number | RetryScope::Service | RetryScope::Network) => {
            Some(Duration::from_secs(1u64 << exp))
        }
        ErrorClass::RetryLater(RetryScope::App | RetryScope::Waba) => {
            Some(Duration::from_secs(60 * (1u64 << exp)))
        }
        _ => None,
    }
}

impl Error {
    /// Builds an [`Error::InvalidRequest`].
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            reason: reason.into(),
        }
    }

    /// The Graph error code, for [`Error::Api`].
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// What this error means for the caller.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidRequest { .. } => ErrorClass::InvalidRequest,
            Self::Connect { .. } => ErrorClass::RetryLater(RetryScope::Network),
            Self::Timeout | Self::Interrupted { .. } => ErrorClass::OutcomeUnknown,
            Self::UnexpectedResponse { status, .. } if *status >= 500 => {
                ErrorClass::RetryLater(RetryScope::Service)
            }
            Self::UnexpectedResponse { .. } => ErrorClass::Unknown,
            Self::Api { code, status, .. } => match ErrorClass::from_code(*code) {
                // An unknown code on a 5xx is Meta-side trouble.
                ErrorClass::Unknown if *status >= 500 => {
                    ErrorClass::RetryLater(RetryScope::Service)
                }
                class => class,
            },
        }
    }

    /// Whether trying again later is appropriate: the throughput limit (130429), the pair
    /// rate limit (131056), other rate limits, Meta-side errors and HTTP 5xx, and a
    /// connection that was never made.
    ///
    /// A send that timed out is **not** retryable: it may have been sent (see
    /// [`Error::may_have_been_sent`]). Wait for a status webhook carrying your
    /// `biz_opaque_callback_data` before deciding to resend.
    pub fn is_retryable(&self) -> bool {
        self.class().is_retryable()
    }

    /// The delay before retry number `attempt` (1-based), or `None` to stop.
    pub fn retry_delay(&self, attempt: u32) -> Option<Duration> {
        retry_delay(self.class(), attempt)
    }

    /// Whether Meta may have accepted the request even though we got an error: a timeout,
    /// an interrupted connection, or a response we could not read with a 2xx or 5xx status.
    /// A Graph error body is a definite "not accepted".
    pub fn may_have_been_sent(&self) -> bool {
        match self {
            Self::Timeout | Self::Interrupted { .. } => true,
            Self::UnexpectedResponse { status, .. } => {
                (200..300).contains(status) || *status >= 500
            }
            Self::InvalidRequest { .. } | Self::Connect { .. } | Self::Api { .. } => false,
        }
    }

    /// The customer-service window is closed (131047): only a template can be sent.
    pub fn is_outside_service_window(&self) -> bool {
        self.class() == ErrorClass::WindowClosed
    }

    /// The recipient cannot receive the message (131026 and similar): do not retry.
    pub fn is_undeliverable(&self) -> bool {
        self.class() == ErrorClass::Undeliverable
    }

    /// The template parameters are wrong (132000, 132012, …).
    pub fn is_bad_template_parameters(&self) -> bool {
        self.class() == ErrorClass::BadTemplateParameters
    }

    /// The tenant's token is invalid or expired (190): mark the credentials broken.
    pub fn is_auth(&self) -> bool {
        self.class() == ErrorClass::Auth
    }

    /// A rate limit on the number (130429) or on the number → recipient pair (131056).
    pub fn is_rate_limited(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::RetryLater(RetryScope::Number | RetryScope::Pair)
        )
    }

    pub(crate) fn from_transport(err: &reqwest::Error) -> Self {
        // `without_url` keeps media download URLs (signed by Meta) out of our messages.
        let message = describe(err);
        if err.is_builder() {
            Self::InvalidRequest { reason: message }
        } else if err.is_timeout() {
            Self::Timeout
        } else if err.is_connect() {
            Self::Connect { message }
        } else {
            Self::Interrupted { message }
        }
    }

    /// Maps a non-success response to an error: a Graph error when the body is one,
    /// otherwise [`Error::UnexpectedResponse`].
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            error: GraphErrorBody,
        }
        #[derive(Deserialize)]
        struct GraphErrorBody {
            code: i64,
            #[serde(default)]
            error_subcode: Option<i64>,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            error_data: Option<serde_json::Value>,
            #[serde(default)]
            fbtrace_id: Option<String>,
        }
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => Self::Api {
                status,
                code: error.code,
                subcode: error.error_subcode,
                message: error.message.unwrap_or_default(),
                // `error_data` is sometimes not an object: read it leniently.
                details: error
                    .error_data
                    .as_ref()
                    .and_then(|d| d.get("details"))
                    .and_then(|d| d.as_str())
                    .map(str::to_owned),
                fbtrace_id: error.fbtrace_id,
            },
            Err(_) => Self::unexpected(status, body),
        }
    }

    pub(crate) fn unexpected(status: u16, body: &[u8]) -> Self {
        const MAX: usize = 4096;
        let cut = &body[..body.len().min(MAX)];
        Self::UnexpectedResponse {
            status,
            body: String::from_utf8_lossy(cut).into_owned(),
        }
    }
}

fn describe(err: &reqwest::Error) -> String {
    let mut message = String::new();
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = current {
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&e.to_string());
        current = e.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: i64) -> Error {
        Error::Api {
            status,
            code,
            subcode: None,
            message: String::new(),
            details: None,
            fbtrace_id: None,
        }
    }

    #[test]
    fn classification_is_keyed_on_code_not_status() {
        assert!(api(400, 130429).is_retryable());
        assert!(api(400, 131056).is_retryable());
        assert!(api(400, 131056).is_rate_limited());
        assert!(api(400, 131047).is_outside_service_window());
        assert!(!api(400, 131047).is_retryable());
        assert!(api(400, 131026).is_undeliverable());
        assert!(api(400, 132000).is_bad_template_parameters());
        assert!(api(400, 132012).is_bad_template_parameters());
        assert!(api(401, 190).is_auth());
        assert!(api(400, 190).is_auth());
        // 131045 comes with HTTP 500 but needs re-registration, not a retry.
        assert!(!api(500, 131045).is_retryable());
        assert!(api(503, 999_999).is_retryable());
        assert!(!api(400, 999_999).is_retryable());
    }

    #[test]
    fn may_have_been_sent_follows_the_taxonomy() {
        assert!(!Error::invalid("x").may_have_been_sent());
        assert!(
            !Error::Connect {
                message: String::new()
            }
            .may_have_been_sent()
        );
        assert!(Error::Timeout.may_have_been_sent());
        assert!(!Error::Timeout.is_retryable());
        assert!(Error::unexpected(502, b"<html>").may_have_been_sent());
        assert!(Error::unexpected(502, b"<html>").is_retryable());
        assert!(Error::unexpected(200, b"garbage").may_have_been_sent());
        assert!(!Error::unexpected(404, b"nope").may_have_been_sent());
        assert!(!api(400, 130429).may_have_been_sent());
    }

    #[test]
    fn retry_delays_case_by_case() {
        let pair = ErrorClass::from_code(131056);
        assert_eq!(retry_delay(pair, 1), Some(Duration::from_secs(4)));
        assert_eq!(retry_delay(pair, 2), Some(Duration::from_secs(16)));
        let number = ErrorClass::from_code(130429);
        assert_eq!(retry_delay(number, 1), Some(Duration::from_secs(1)));
        assert_eq!(retry_delay(number, 3), Some(Duration::from_secs(4)));
        assert_eq!(retry_delay(number, 6), None);
        assert_eq!(retry_delay(number, 0), None);
        assert_eq!(
            retry_delay(ErrorClass::from_code(4), 1),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_delay(ErrorClass::from_code(131047), 1), None);
        assert_eq!(retry_delay(ErrorClass::OutcomeUnknown, 1), None);
    }

    #[test]
    fn graph_error_bodies_parse_leniently() {
        let e = Error::from_response(
            400,
            br#"{"error":{"message":"(#100) x","code":100,"error_data":"not an object"}}"#,
        );
        assert_eq!(e.code(), Some(100));
        let e = Error::from_response(502, b"<html>bad gateway</html>");
        assert!(matches!(e, Error::UnexpectedResponse { status: 502, .. }));
    }
}
