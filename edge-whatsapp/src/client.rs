//! The Graph API client: one pooled HTTP client shared by every tenant.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

use crate::credentials::Credentials;
use crate::error::Error;

/// Meta's Graph API.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
/// The Graph API version used unless the builder or the credentials say otherwise.
pub const DEFAULT_API_VERSION: &str = "v24.0";

/// A WhatsApp Cloud API client. Cheap to clone (an `Arc` inside), `Send + Sync`, with one
/// connection pool. Credentials are passed per call, so one client serves every tenant.
///
/// TLS uses rustls with the *ring* provider, configured explicitly on the client: callers
/// need not install a process-wide crypto provider, and none is installed.
#[derive(Clone)]
pub struct WhatsAppClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    api_version: String,
}

impl fmt::Debug for WhatsAppClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppClient")
            .field("base_url", &self.inner.base_url)
            .field("api_version", &self.inner.api_version)
            .finish_non_exhaustive()
    }
}

/// Builds a [`WhatsAppClient`].
#[derive(Debug, Clone)]
pub struct WhatsAppClientBuilder {
    base_url: String,
    api_version: String,
    connect_timeout: Duration,
    timeout: Duration,
    user_agent: String,
}

impl Default for WhatsAppClientBuilder {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            user_agent: concat!("edge-whatsapp/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl WhatsAppClientBuilder {
    /// The Graph base URL, without the version (default `https://graph.facebook.com`).
    /// Point it at a fake server in tests.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The Graph API version, such as `v25.0` (default [`DEFAULT_API_VERSION`]).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// How long to wait for a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a whole request may take (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` header (media downloads need one in practice).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<WhatsAppClient, Error> {
        let base = url::Url::parse(&self.base_url)
            .map_err(|e| Error::invalid(format!("base URL {:?}: {e}", self.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::invalid("the base URL must be http or https"));
        }
        if self.api_version.is_empty() || self.api_version.contains('/') {
            return Err(Error::invalid("the API version must look like v24.0"));
        }
        let http = http_client(self.connect_timeout, self.timeout, &self.user_agent)?;
        Ok(WhatsAppClient {
            inner: Arc::new(Inner {
                http,
                base_url: self.base_url.trim_end_matches('/').to_owned(),
                api_version: self.api_version,
            }),
        })
    }
}

/// A reqwest client with an explicit rustls + ring configuration and the platform's
/// certificate verifier.
pub(crate) fn http_client(
    connect_timeout: Duration,
    timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client, Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid(format!("TLS configuration: {e}")))?
        .with_platform_verifier()
        .map_err(|e| Error::invalid(format!("TLS configuration: {e}")))?
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(user_agent)
        .build()
        .map_err(|e| Error::invalid(format!("HTTP client: {e}")))
}

impl WhatsAppClient {
    /// A builder with Meta's base URL, the default version and timeouts.
    pub fn builder() -> WhatsAppClientBuilder {
        WhatsAppClientBuilder::default()
    }

    /// The base URL, without the version.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The default Graph API version.
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    /// `{base}/{version}/{path}`.
    pub(crate) fn url(&self, creds: &Credentials, path: &str) -> String {
        let version = creds.version_override().unwrap_or(&self.inner.api_version);
        format!("{}/{}/{}", self.inner.base_url, version, path)
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Adds the bearer token as a sensitive header.
    pub(crate) fn authorize(
        builder: reqwest::RequestBuilder,
        creds: &Credentials,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", creds.access_token().expose_secret()))
                .map_err(|_| {
                    Error::invalid("the access token contains characters not allowed in a header")
                })?;
        value.set_sensitive(true);
        Ok(builder.header(http::header::AUTHORIZATION, value))
    }

    /// Sends a request and returns `(status, body)` for any HTTP status.
    pub(crate) async fn execute(
        builder: reqwest::RequestBuilder,
    ) -> Result<(u16, bytes::Bytes), Error> {
        let response = builder
            .send()
            .await
            .map_err(|e| Error::from_transport(&e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| match Error::from_transport(&e) {
                // The request reached Meta; failing to read the answer leaves the outcome unknown.
                Error::Connect { message } => Error::Interrupted { message },
                other => other,
            })?;
        Ok((status, body))
    }

    /// Sends a request, maps error statuses and decodes a JSON success body.
    pub(crate) async fn call<T: DeserializeOwned>(
        builder: reqwest::RequestBuilder,
        creds: &Credentials,
    ) -> Result<T, Error> {
        let (status, body) = Self::execute(Self::authorize(builder, creds)?).await?;
        decode(status, &body)
    }

    /// `POST /{path}` with a JSON body.
    pub(crate) async fn post_json<T: DeserializeOwned>(
        &self,
        creds: &Credentials,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, Error> {
        let builder = self.http().post(self.url(creds, path)).json(body);
        Self::call(builder, creds).await
    }
}

pub(crate) fn decode<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, Error> {
    if !(200..300).contains(&status) {
        return Err(Error::from_response(status, body));
    }
    serde_json::from_slice(body).map_err(|_| Error::unexpected(status, body))
}
