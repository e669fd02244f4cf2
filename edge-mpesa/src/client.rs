//! The client: one pooled HTTP client, a per-credential token cache, and the request loop.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use edge_core::{SharedClock, SystemClock};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::Credentials;
use crate::error::{DarajaError, Error};

/// Where Daraja lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Environment {
    /// `https://sandbox.safaricom.co.ke`.
    Sandbox,
    /// `https://api.safaricom.co.ke`.
    Production,
    /// Any base URL, e.g. a fake Daraja's (`fake::FakeDaraja`, feature `test-util`) or a
    /// proxy.
    Custom(String),
}

impl Environment {
    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        match self {
            Environment::Sandbox => "https://sandbox.safaricom.co.ke",
            Environment::Production => "https://api.safaricom.co.ke",
            Environment::Custom(url) => url.trim_end_matches('/'),
        }
    }
}

/// Builds a [`DarajaClient`].
///
/// Defaults: connect timeout 10 s, total request timeout 60 s (Daraja can be slow, and a
/// short timeout turns a slow success into an unknown outcome), token refresh margin
/// 120 s, the system clock, HTTPS-only callback URLs, no proxy.
#[derive(Debug, Clone)]
pub struct DarajaClientBuilder {
    environment: Environment,
    connect_timeout: Duration,
    timeout: Duration,
    user_agent: String,
    clock: SharedClock,
    token_margin: Duration,
    allow_http_callbacks: bool,
    proxy: Option<String>,
}

impl DarajaClientBuilder {
    /// Connection timeout. A request that fails here was not sent.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Total timeout of one HTTP exchange. A request that fails here may have been sent.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The clock used for request timestamps and token expiry.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How long before `expires_in` a token is refreshed.
    pub fn token_refresh_margin(mut self, margin: Duration) -> Self {
        self.token_margin = margin;
        self
    }

    /// Accepts `http://` callback and result URLs. Only for tests against a local fake:
    /// Daraja itself refuses them in production.
    pub fn allow_http_callbacks(mut self, allow: bool) -> Self {
        self.allow_http_callbacks = allow;
        self
    }

    /// Sends every request through this HTTP(S) proxy. Proxies are never read from
    /// environment variables.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }

    /// Builds the client.
    ///
    /// TLS is rustls with the *ring* provider, configured explicitly here, with the
    /// platform's trust store: callers do not need to install a process-wide crypto
    /// provider.
    pub fn build(self) -> Result<DarajaClient, Error> {
        let build_err = |message: String| Error::Build { message };
        let base = url::Url::parse(self.environment.base_url())
            .map_err(|e| build_err(format!("invalid base URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(build_err("the base URL must be http(s) with a host".into()));
        }
        let mut http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(self.user_agent)
            .pool_idle_timeout(Duration::from_secs(60))
            .no_proxy();
        if let Some(proxy) = &self.proxy {
            let proxy = reqwest::Proxy::all(proxy).map_err(|e| build_err(format!("proxy: {e}")))?;
            http = http.proxy(proxy);
        }
        let http = http.build().map_err(|e| build_err(e.to_string()))?;
        Ok(DarajaClient {
            inner: Arc::new(Inner {
                http,
                base_url: self.environment.base_url().to_owned(),
                clock: self.clock,
                tokens: TokenCache::default(),
                token_margin: self.token_margin,
                allow_http_callbacks: self.allow_http_callbacks,
            }),
        })
    }
}

/// A Daraja client for every tenant in the process.
///
/// `Clone` is cheap (an `Arc`); it is `Send + Sync` and holds no global state. Credentials
/// are passed per call; tokens are cached per (base URL, consumer key) with a single
/// refresh in flight.
#[derive(Clone)]
pub struct DarajaClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    clock: SharedClock,
    tokens: TokenCache,
    token_margin: Duration,
    allow_http_callbacks: bool,
}

impl fmt::Debug for DarajaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DarajaClient")
            .field("base_url", &self.inner.base_url)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

/// How a body is checked after a 2xx answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseCheck {
    /// `ResponseCode` must be `"0"` if present.
    ResponseCodeZero,
    /// No check (dynamic QR puts an id in `ResponseCode`).
    None,
}

impl DarajaClient {
    /// Starts a builder for `environment`.
    pub fn builder(environment: Environment) -> DarajaClientBuilder {
        DarajaClientBuilder {
            environment,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            user_agent: concat!("edge-mpesa/", env!("CARGO_PKG_VERSION")).to_owned(),
            clock: Arc::new(SystemClock),
            token_margin: Duration::from_secs(120),
            allow_http_callbacks: false,
            proxy: None,
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Reads the injected clock (once per request).
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) fn allow_http_callbacks(&self) -> bool {
        self.inner.allow_http_callbacks
    }

    /// Forgets every cached token (for example after rotating credentials).
    pub fn clear_token_cache(&self) {
        self.inner.tokens.clear();
    }

    /// An access token for `credentials`, from the cache or freshly issued.
    pub async fn access_token(&self, credentials: &Credentials) -> Result<SecretString, Error> {
        self.token(credentials).await.map(|t| t.token)
    }

    async fn token(&self, credentials: &Credentials) -> Result<CachedToken, Error> {
        let fingerprint = fingerprint(credentials.consumer_secret());
        let slot = self
            .inner
            .tokens
            .slot(&self.inner.base_url, credentials.consumer_key());
        let mut guard = slot.lock().await;
        let now = self.inner.clock.now();
        if let Some(cached) = guard.as_ref()
            && cached.fingerprint == fingerprint
            && now < cached.refresh_at
        {
            return Ok(cached.clone());
        }
        let fresh = self.fetch_token(credentials, fingerprint, now).await?;
        *guard = Some(fresh.clone());
        Ok(fresh)
    }

    async fn invalidate(&self, credentials: &Credentials, used: &CachedToken) {
        let slot = self
            .inner
            .tokens
            .slot(&self.inner.base_url, credentials.consumer_key());
        let mut guard = slot.lock().await;
        if guard
            .as_ref()
            .is_some_and(|t| t.token.expose_secret() == used.token.expose_secret())
        {
            *guard = None;
        }
    }

    async fn fetch_token(
        &self,
        credentials: &Credentials,
        fingerprint: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<CachedToken, Error> {
        let url = format!(
            "{}/oauth/v1/generate?grant_type=client_credentials",
            self.inner.base_url
        );
        let response = self
            .inner
            .http
            .get(url)
            .basic_auth(
                credentials.consumer_key(),
                Some(credentials.consumer_secret().expose_secret()),
            )
            .send()
            .await
            .map_err(map_send_error)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(map_body_error)?;
        let parsed = TokenResponse::from_http(status, &body)?;
        let lifetime = parsed.expires_in;
        let margin = self.inner.token_margin.as_secs();
        let usable = if lifetime > margin {
            lifetime - margin
        } else {
            lifetime / 2
        };
        let usable = i64::try_from(usable).unwrap_or(i64::MAX / 2);
        Ok(CachedToken {
            token: parsed.access_token,
            fingerprint,
            refresh_at: now + chrono::Duration::seconds(usable),
        })
    }

    /// POSTs `body` to `path` with a bearer token for `credentials`; on an invalid-token
    /// answer the token is evicted, refreshed and the request retried once.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        credentials: &Credentials,
        path: &str,
        body: Vec<u8>,
        check: ResponseCheck,
    ) -> Result<T, Error> {
        let url = format!("{}{}", self.inner.base_url, path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token(credentials).await.map_err(token_phase)?;
            let response = self
                .inner
                .http
                .post(&url)
                .bearer_auth(token.token.expose_secret())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(map_send_error)?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await.map_err(map_body_error)?;
            if (200..300).contains(&status) {
                return parse_success(status, &bytes, check);
            }
            let error = error_from_body(status, &bytes);
            if attempt == 1
                && let Error::Daraja(daraja) = &error
                && daraja.is_invalid_token()
            {
                self.invalidate(credentials, &token).await;
                continue;
            }
            return Err(error);
        }
    }
}

/// rustls with the *ring* provider and the platform's trust store, built explicitly so
/// that no process-wide provider has to be installed.
pub(crate) fn tls_config() -> Result<rustls::ClientConfig, Error> {
    let build_err = |message: String| Error::Build { message };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| build_err(format!("TLS verifier: {e}")))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| build_err(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

pub(crate) fn parse_success<T: DeserializeOwned>(
    status: u16,
    body: &[u8],
    check: ResponseCheck,
) -> Result<T, Error> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| Error::unexpected(status, body))?;
    if check == ResponseCheck::ResponseCodeZero
        && let Some(code) = value.get("ResponseCode").and_then(crate::json::text)
        && code.trim() != "0"
    {
        let message = value
            .get("ResponseDescription")
            .and_then(crate::json::text)
            .unwrap_or_default();
        let request_id = [
            "ConversationID",
            "CheckoutRequestID",
            "OriginatorConversationID",
        ]
        .iter()
        .find_map(|k| value.get(*k).and_then(crate::json::text))
        .unwrap_or_default();
        return Err(Error::Daraja(DarajaError {
            status,
            code,
            message,
            request_id,
        }));
    }
    serde_json::from_value(value).map_err(|_| Error::unexpected(status, body))
}

/// Turns a non-2xx body into a [`DarajaError`] if it is Daraja's envelope, otherwise an
/// [`Error::UnexpectedResponse`].
pub(crate) fn error_from_body(status: u16, body: &[u8]) -> Error {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Error::unexpected(status, body);
    };
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| crate::json::get(&value, n).and_then(crate::json::text))
    };
    match field(&["errorCode"]) {
        Some(code) => Error::Daraja(DarajaError {
            status,
            code,
            message: field(&["errorMessage"]).unwrap_or_default(),
            request_id: field(&["requestId"]).unwrap_or_default(),
        }),
        None => Error::unexpected(status, body),
    }
}

struct ParsedToken {
    access_token: String,
    expires_in: u64,
}

/// The OAuth answer, as Daraja sends it (`expires_in` as a string or a number).
#[derive(Clone)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: SecretString,
    /// Its lifetime in seconds.
    pub expires_in: u64,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl TokenResponse {
    /// Parses a token endpoint answer (status and body).
    pub fn from_http(status: u16, body: &[u8]) -> Result<Self, Error> {
        if !(200..300).contains(&status) {
            return Err(error_from_body(status, body));
        }
        let parsed = parse_token(body).ok_or_else(|| Error::unexpected(status, body))?;
        Ok(Self {
            access_token: SecretString::from(parsed.access_token),
            expires_in: parsed.expires_in,
        })
    }
}

/// Parses the OAuth answer; `expires_in` may be a string or a number.
fn parse_token(body: &[u8]) -> Option<ParsedToken> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let access_token = value.get("access_token")?.as_str()?.trim().to_owned();
    if access_token.is_empty() {
        return None;
    }
    let expires_in = crate::json::text(value.get("expires_in")?)?;
    let expires_in = expires_in
        .trim()
        .split('.')
        .next()
        .and_then(|s| s.parse::<u64>().ok())?;
    Some(ParsedToken {
        access_token,
        expires_in,
    })
}

/// A transport failure while obtaining the token happened before the API request left:
/// report it as "not sent" so callers do not reconcile a request Daraja never saw.
fn token_phase(error: Error) -> Error {
    match error {
        Error::Timeout => Error::Connect {
            message: "the token request timed out; the API request was not sent".into(),
        },
        Error::Transport { message } => Error::Connect {
            message: format!("the token request failed ({message}); the API request was not sent"),
        },
        other => other,
    }
}

fn map_send_error(e: reqwest::Error) -> Error {
    if e.is_connect() {
        Error::Connect {
            message: e.without_url().to_string(),
        }
    } else if e.is_timeout() {
        Error::Timeout
    } else if e.is_builder() {
        Error::Build {
            message: e.without_url().to_string(),
        }
    } else {
        Error::Transport {
            message: e.without_url().to_string(),
        }
    }
}

fn map_body_error(e: reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::Timeout
    } else {
        Error::Transport {
            message: e.without_url().to_string(),
        }
    }
}

fn fingerprint(secret: &SecretString) -> [u8; 32] {
    Sha256::digest(secret.expose_secret().as_bytes()).into()
}

#[derive(Clone)]
struct CachedToken {
    token: SecretString,
    /// SHA-256 of the consumer secret that obtained the token: a caller presenting the same
    /// consumer key with another secret never receives this token.
    fingerprint: [u8; 32],
    refresh_at: DateTime<Utc>,
}

type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

#[derive(Default)]
struct TokenCache {
    slots: Mutex<HashMap<(String, String), Slot>>,
}

impl TokenCache {
    fn slot(&self, base_url: &str, consumer_key: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry((base_url.to_owned(), consumer_key.to_owned()))
            .or_default()
            .clone()
    }

    fn clear(&self) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_may_be_a_string_or_a_number() {
        let t = parse_token(br#"{"access_token":"abc","expires_in":"3599"}"#).unwrap();
        assert_eq!((t.access_token.as_str(), t.expires_in), ("abc", 3599));
        let t = parse_token(br#"{"access_token":"abc","expires_in":3599}"#).unwrap();
        assert_eq!(t.expires_in, 3599);
        assert!(parse_token(br#"{"access_token":"","expires_in":1}"#).is_none());
        assert!(parse_token(b"<html></html>").is_none());
    }

    #[test]
    fn error_bodies_become_daraja_errors_or_unexpected() {
        let e = error_from_body(
            404,
            br#"{"requestId":"r1","errorCode":"404.001.03","errorMessage":"Invalid Access Token"}"#,
        );
        assert!(
            e.as_daraja()
                .is_some_and(|d| d.is_invalid_token() && d.request_id == "r1")
        );
        let e = error_from_body(400, b"");
        assert!(matches!(e, Error::UnexpectedResponse { status: 400, .. }));
        let e = error_from_body(
            200,
            br#"{"fault":{"faultstring":"Unable to identify proxy"}}"#,
        );
        assert!(matches!(e, Error::UnexpectedResponse { .. }));
    }

    #[test]
    fn token_transport_failures_mean_not_sent() {
        assert!(!token_phase(Error::Timeout).may_have_been_sent());
        let e = token_phase(Error::Transport {
            message: "reset".into(),
        });
        assert!(matches!(e, Error::Connect { .. }) && e.is_retryable());
        assert_eq!(
            token_phase(Error::invalid("x", "y")),
            Error::invalid("x", "y")
        );
    }

    #[test]
    fn the_client_is_send_sync_clone() {
        fn assert_bounds<T: Send + Sync + Clone + 'static>() {}
        assert_bounds::<DarajaClient>();
        assert_bounds::<Credentials>();
    }
}
