//! axum integration (feature `axum`).
//!
//! - [`TenantContext`] is an extractor, for any router state: it takes the context an
//!   [`AuthLayer`] already put in the request extensions, or else resolves the
//!   `Authorization: Bearer …` header with a [`TenantResolver`] found in the extensions
//!   (`.layer(Extension(resolver))`). Without either it rejects with 401.
//! - [`AuthLayer`] authenticates every request of a router and stores the context.
//! - [`require`] returns a layer that lets only callers with a permission through.
//! - [`RateLimitLayer`] applies a per-organization GCRA limit.
//!
//! Every rejection is Edge's JSON envelope, `{"error": {"code", "message", "details"}}`:
//! 401 (with `WWW-Authenticate: Bearer`), 403, 404, 429 (with `Retry-After`), or a
//! generic 500. Layers run outside-in, so add the authentication layer **last**:
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::Router;
//! use axum::routing::get;
//! use edge_tenancy::axum::{AuthLayer, RateLimitLayer, require};
//! use edge_tenancy::{Permission, RateLimiter, TenantContext, TenantResolver};
//!
//! async fn list_contacts(tenant: TenantContext) -> String {
//!     format!("contacts of {}", tenant.org())
//! }
//!
//! fn routes(resolver: TenantResolver, limiter: Arc<dyn RateLimiter>) -> Router {
//!     Router::new()
//!         .route("/contacts", get(list_contacts))
//!         .layer(require(Permission::CrmRead))
//!         .layer(RateLimitLayer::new(limiter, "api"))
//!         .layer(AuthLayer::new(resolver))
//! }
//! ```

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::extract::{FromRequestParts, Request};
use ::axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use ::axum::response::{IntoResponse, Response};
use edge_core::Error;
use serde_json::json;
use tower::{Layer, Service};

use crate::BoxFuture;
use crate::context::TenantContext;
use crate::ratelimit::{Quota, RateDecision, RateKey, RateLimiter};
use crate::resolver::TenantResolver;
use crate::role::Permission;

/// The `RateLimit-Remaining` response header (IETF draft naming).
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// The `RateLimit-Reset` response header, in seconds.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// An [`edge_core::Error`] as an HTTP response in Edge's JSON envelope.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

/// The HTTP status for an error.
pub fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Conflict(_) | Error::IdempotencyMismatch => StatusCode::CONFLICT,
        Error::InsufficientFunds { .. } | Error::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
        Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Upstream {
            timed_out: true, ..
        } => StatusCode::GATEWAY_TIMEOUT,
        Error::Upstream { .. } => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn retry_after_secs(retry_after: std::time::Duration) -> u64 {
    let secs = retry_after.as_secs();
    let secs = if retry_after.subsec_nanos() > 0 {
        secs.saturating_add(1)
    } else {
        secs
    };
    secs.max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = status_of(&err);
        let details = match &err {
            Error::Validation(fields) => json!(fields),
            Error::RateLimited { retry_after } => {
                json!({ "retry_after": retry_after_secs(*retry_after) })
            }
            _ => serde_json::Value::Null,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal error".to_owned()
        } else {
            err.to_string()
        };
        let code = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal_error"
        } else {
            err.code()
        };
        let body = json!({ "error": { "code": code, "message": message, "details": details } });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match err {
            Error::Unauthenticated => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::RateLimited { retry_after } => {
                headers.insert(
                    RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(retry_after)),
                );
            }
            _ => {}
        }
        response
    }
}

/// Resolves the `Authorization` header with `resolver`.
pub async fn authenticate(
    resolver: &TenantResolver,
    headers: &HeaderMap,
) -> Result<TenantContext, Error> {
    let header = headers
        .get(AUTHORIZATION)
        .ok_or(Error::Unauthenticated)?
        .to_str()
        .map_err(|_| Error::Unauthenticated)?;
    resolver.from_authorization(header).await
}

impl<S> FromRequestParts<S> for TenantContext
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(context) = parts.extensions.get::<TenantContext>() {
            return Ok(context.clone());
        }
        let resolver = parts
            .extensions
            .get::<TenantResolver>()
            .cloned()
            .ok_or(ApiError(Error::Unauthenticated))?;
        let context = authenticate(&resolver, &parts.headers).await?;
        parts.extensions.insert(context.clone());
        Ok(context)
    }
}

/// Takes the inner service out of `slot`, leaving a clone behind (the usual tower
/// pattern, so the service that was polled ready is the one called).
fn take<S: Clone>(slot: &mut S) -> S {
    let clone = slot.clone();
    std::mem::replace(slot, clone)
}

/// A layer that authenticates every request (see [`authenticate`]) and stores the
/// [`TenantContext`] in its extensions; unauthenticated requests get 401.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    resolver: TenantResolver,
}

impl AuthLayer {
    /// Authenticates with `resolver`.
    pub fn new(resolver: TenantResolver) -> Self {
        Self { resolver }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            resolver: self.resolver.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    resolver: TenantResolver,
}

impl<S> Service<Request> for AuthService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let mut inner = take(&mut self.inner);
        let resolver = self.resolver.clone();
        Box::pin(async move {
            match authenticate(&resolver, request.headers()).await {
                Ok(context) => {
                    request.extensions_mut().insert(context);
                    inner.call(request).await
                }
                Err(err) => Ok(ApiError(err).into_response()),
            }
        })
    }
}

/// A layer that lets through only requests whose [`TenantContext`] (put there by
/// [`AuthLayer`]) grants `permission`: 403 otherwise, 401 when there is no context.
pub fn require(permission: Permission) -> RequireLayer {
    RequireLayer { permission }
}

/// The layer made by [`require`].
#[derive(Debug, Clone, Copy)]
pub struct RequireLayer {
    permission: Permission,
}

impl<S> Layer<S> for RequireLayer {
    type Service = RequireService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireService {
            inner,
            permission: self.permission,
        }
    }
}

/// The service made by [`RequireLayer`].
#[derive(Debug, Clone)]
pub struct RequireService<S> {
    inner: S,
    permission: Permission,
}

impl<S> Service<Request> for RequireService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let verdict = match request.extensions().get::<TenantContext>() {
            Some(context) => context.require(self.permission),
            None => Err(Error::Unauthenticated),
        };
        let mut inner = take(&mut self.inner);
        Box::pin(async move {
            match verdict {
                Ok(()) => inner.call(request).await,
                Err(err) => Ok(ApiError(err).into_response()),
            }
        })
    }
}

/// Where a [`RateLimitLayer`] takes its quota from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaSource {
    /// The organization's plan ([`PlanLimits::request_quota`](crate::PlanLimits::request_quota)).
    Plan,
    /// The same quota for every organization.
    Fixed(Quota),
}

/// A layer that limits requests per organization in one bucket. Needs the
/// [`TenantContext`] from [`AuthLayer`] (401 without it). Limited requests get 429 with
/// `Retry-After`; allowed responses carry `RateLimit-Remaining` and `RateLimit-Reset`.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<dyn RateLimiter>,
    bucket: Cow<'static, str>,
    quota: QuotaSource,
    fail_open: bool,
}

impl RateLimitLayer {
    /// Limits bucket `bucket` with `limiter`, using each organization's plan quota.
    pub fn new(limiter: Arc<dyn RateLimiter>, bucket: impl Into<Cow<'static, str>>) -> Self {
        Self {
            limiter,
            bucket: bucket.into(),
            quota: QuotaSource::Plan,
            fail_open: false,
        }
    }

    /// Uses the same quota for every organization instead of the plan's.
    pub fn with_quota(mut self, quota: Quota) -> Self {
        self.quota = QuotaSource::Fixed(quota);
        self
    }

    /// Lets requests through when the limiter itself fails (e.g. Redis is down). By
    /// default such requests get a 500.
    pub fn fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }
}

impl std::fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("bucket", &self.bucket)
            .field("quota", &self.quota)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            config: self.clone(),
        }
    }
}

/// The service made by [`RateLimitLayer`].
#[derive(Debug, Clone)]
pub struct RateLimitService<S> {
    inner: S,
    config: RateLimitLayer,
}

impl<S> Service<Request> for RateLimitService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let mut inner = take(&mut self.inner);
        let config = self.config.clone();
        let context = request.extensions().get::<TenantContext>().cloned();
        Box::pin(async move {
            let Some(context) = context else {
                return Ok(ApiError(Error::Unauthenticated).into_response());
            };
            let quota = match config.quota {
                QuotaSource::Plan => context.limits().request_quota(),
                QuotaSource::Fixed(quota) => quota,
            };
            let key = RateKey::new(context.org(), config.bucket.clone());
            match config.limiter.check(&key, quota).await {
                Ok(RateDecision::Allowed {
                    remaining,
                    reset_after,
                }) => {
                    let mut response = inner.call(request).await?;
                    let headers = response.headers_mut();
                    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(remaining));
                    headers.insert(
                        RATELIMIT_RESET,
                        HeaderValue::from(reset_after.as_secs_f64().ceil() as u64),
                    );
                    Ok(response)
                }
                Ok(RateDecision::Limited { retry_after }) => {
                    Ok(ApiError(Error::RateLimited { retry_after }).into_response())
                }
                Err(_) if config.fail_open => inner.call(request).await,
                Err(err) => Ok(ApiError(err).into_response()),
            }
        })
    }
}
