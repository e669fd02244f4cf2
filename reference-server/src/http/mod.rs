//! The HTTP API: routes, error envelope, extractors and middleware.

pub mod audit;
pub mod auth;
pub mod client;
pub mod error;
pub mod extract;
pub mod health;
pub mod middleware;
pub mod usage;
pub mod views;

use axum::Extension;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri, header};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

use edge_tenancy::axum::{AuthLayer, RateLimitLayer};

use crate::AppState;
use error::ApiError;

/// The API routes, without the cross-cutting layers (see [`with_layers`]).
///
/// Teams embedding the server can merge this into their own router.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", api_v1(state))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
}

/// `/api/v1`: the public authentication routes, and the API that needs a token or an API
/// key. Authenticated requests are rate-limited per organization by its plan and counted
/// as usage.
fn api_v1(state: &AppState) -> Router<AppState> {
    let public = Router::new()
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh));
    let authenticated = Router::new()
        .route("/auth/logout", post(auth::logout))
        .route("/auth/switch", post(auth::switch))
        .route("/me", get(auth::me))
        .route("/me/password", post(auth::change_password))
        .route("/usage", get(usage::usage))
        .route("/audit-log", get(audit::list))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            usage::count_api_call,
        ))
        .layer(RateLimitLayer::new(state.limiter.clone(), "api"))
        .layer(AuthLayer::new(state.resolver.clone()));
    public.merge(authenticated)
}

/// The complete application: [`routes`] with state and every layer applied.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// [`app`] with extra routes merged in before the layers are applied.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let config = state.config.clone();
    let resolver = state.resolver.clone();
    with_layers(
        routes(&state)
            .merge(extra)
            .layer(Extension(resolver))
            .with_state(state),
        config.request_timeout,
        config.max_body_bytes,
    )
}

/// Applies the layers every Edge router needs: body limit, timeout, panic catching,
/// JSON error envelopes, request ids and request logging.
pub fn with_layers(router: Router, timeout: std::time::Duration, max_body_bytes: usize) -> Router {
    // Layers run outside-in from the last one added.
    router
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(axum::middleware::from_fn(middleware::request_id))
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::no_route(method.as_str(), uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
