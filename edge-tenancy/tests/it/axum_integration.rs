//! The axum extractor and layers, driven with `oneshot` (no sockets).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use edge_tenancy::axum::{AuthLayer, RateLimitLayer, require};
use edge_tenancy::{
    InMemoryRateLimiter, Permission, Quota, RateLimiter, Role, TenantContext, TenantResolver,
};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::support::World;

async fn whoami(context: TenantContext) -> String {
    format!("{} {}", context.org(), context.role())
}

async fn call(app: Router, token: Option<&str>) -> (StatusCode, Response, Value) {
    let mut request = Request::builder().uri("/");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, Response::from_parts(parts, Body::empty()), json)
}

fn assert_envelope(json: &Value, code: &str) {
    assert_eq!(json["error"]["code"], code, "{json}");
    assert!(json["error"]["message"].is_string(), "{json}");
    assert!(json["error"].get("details").is_some(), "{json}");
}

#[tokio::test]
async fn the_extractor_resolves_with_a_resolver_extension() {
    let world = World::new();
    let app: Router = Router::new()
        .route("/", get(whoami))
        .layer(Extension(world.resolver.clone()));
    let (token, _, _) = world.sign_in(world.acme.id, Role::Manager);

    let (status, _, body) = call(app.clone(), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::String(format!("{} manager", world.acme.id)));

    let (status, response, body) = call(app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_envelope(&body, "unauthenticated");
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
}

fn protected(resolver: TenantResolver, limiter: Arc<dyn RateLimiter>) -> Router {
    Router::new()
        .route("/", get(whoami))
        .layer(require(Permission::BillingManage))
        .layer(RateLimitLayer::new(limiter, "api").with_quota(Quota::per_minute(2)))
        .layer(AuthLayer::new(resolver))
}

#[tokio::test]
async fn layers_reject_with_401_403_and_429_in_the_json_envelope() {
    let world = World::new();
    let limiter: Arc<dyn RateLimiter> =
        Arc::new(InMemoryRateLimiter::new(Arc::new(world.clock.clone())));
    let app = protected(world.resolver.clone(), limiter);

    // No credentials: 401.
    let (status, _, body) = call(app.clone(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_envelope(&body, "unauthenticated");

    // A user may not manage billing: 403.
    let (user, _, _) = world.sign_in(world.acme.id, Role::User);
    let (status, _, body) = call(app.clone(), Some(&user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_envelope(&body, "forbidden");

    // An org admin may, twice a minute.
    let (admin, _, _) = world.sign_in(world.acme.id, Role::OrgAdmin);
    let (status, response, _) = call(app.clone(), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response.headers()["ratelimit-remaining"], "0");
    // The user's refused request above already counted against acme (the limit runs
    // before the permission check), so this one is limited.
    let (status, response, body) = call(app.clone(), Some(&admin)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_envelope(&body, "rate_limited");
    assert_eq!(response.headers()[header::RETRY_AFTER], "30");
    assert_eq!(body["error"]["details"]["retry_after"], 30);

    // Another tenant has its own allowance.
    let (other, _, _) = world.sign_in(world.globex.id, Role::OrgAdmin);
    let (status, _, _) = call(app.clone(), Some(&other)).await;
    assert_eq!(status, StatusCode::OK);

    // Time passes on the injected clock, and acme may go again.
    world.clock.advance(chrono::Duration::seconds(30));
    let (status, _, _) = call(app, Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn layers_without_authentication_fail_closed() {
    let world = World::new();
    let limiter: Arc<dyn RateLimiter> =
        Arc::new(InMemoryRateLimiter::new(Arc::new(world.clock.clone())));
    let (admin, _, _) = world.sign_in(world.acme.id, Role::OrgAdmin);
    let misordered: Router = Router::new()
        .route("/", get(|| async { "secret" }))
        .layer(require(Permission::OrgRead));
    let (status, _, _) = call(misordered, Some(&admin)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let unauthenticated_limit: Router = Router::new()
        .route("/", get(|| async { "secret" }))
        .layer(RateLimitLayer::new(limiter, "api"));
    let (status, _, _) = call(unauthenticated_limit, Some(&admin)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_extractor_reuses_the_context_from_the_auth_layer() {
    let world = World::new();
    let (token, _, session) = world.sign_in(world.acme.id, Role::User);
    // No resolver extension: the layer's context is used.
    let app: Router = Router::new()
        .route(
            "/",
            get(|context: TenantContext| async move { context.role().to_string() }),
        )
        .layer(AuthLayer::new(world.resolver.clone()));
    let (status, _, body) = call(app.clone(), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::String("user".into()));

    world.sessions.revoke(session);
    let (status, _, body) = call(app, Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_envelope(&body, "unauthenticated");
}

#[tokio::test]
async fn the_extractor_without_a_resolver_rejects() {
    let world = World::new();
    let (token, _, _) = world.sign_in(world.acme.id, Role::User);
    let app: Router = Router::new().route("/", get(whoami));
    let (status, _, body) = call(app, Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_envelope(&body, "unauthenticated");
}

/// A limiter whose backing store is down.
struct Broken;

impl RateLimiter for Broken {
    fn check<'a>(
        &'a self,
        _key: &'a edge_tenancy::RateKey,
        _quota: Quota,
    ) -> edge_tenancy::BoxFuture<'a, Result<edge_tenancy::RateDecision, edge_core::Error>> {
        Box::pin(async { Err(edge_core::Error::internal("redis: connection refused")) })
    }
}

#[tokio::test]
async fn a_failing_limiter_fails_closed_unless_told_to_fail_open() {
    let world = World::new();
    let (token, _, _) = world.sign_in(world.acme.id, Role::User);
    let app = |layer: RateLimitLayer| -> Router {
        Router::new()
            .route("/", get(whoami))
            .layer(layer)
            .layer(AuthLayer::new(world.resolver.clone()))
    };
    let closed = app(RateLimitLayer::new(Arc::new(Broken), "api"));
    let (status, _, body) = call(closed, Some(&token)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_envelope(&body, "internal_error");
    assert!(!body.to_string().contains("redis"), "{body}");

    let open = app(RateLimitLayer::new(Arc::new(Broken), "api").fail_open());
    let (status, _, _) = call(open, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn internal_errors_are_generic() {
    use axum::response::IntoResponse;
    let response =
        edge_tenancy::axum::ApiError(edge_core::Error::internal("db password is hunter2"))
            .into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("hunter2"), "{text}");
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    assert_envelope(&json, "internal_error");
}
