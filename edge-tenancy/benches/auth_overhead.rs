//! What authentication costs per request: JWT verification, session check, tenant
//! lookup, permission check and an in-memory rate limit, against the same route with no
//! authentication. Run with `cargo bench -p edge-tenancy --features axum`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::routing::get;
use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use edge_core::{FixedClock, OrgId, SessionId, SharedClock, UserId};
use edge_tenancy::axum::{AuthLayer, RateLimitLayer, require};
use edge_tenancy::{
    InMemoryApiKeyStore, InMemoryDirectory, InMemoryRateLimiter, InMemorySessionStore, JwtCodec,
    OrgRecord, OrgStatus, Permission, PlanLimits, Quota, RateLimiter, Role, TenantContext,
    TenantResolver, TokenSubject,
};
use secrecy::SecretString;
use tower::ServiceExt;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
    let clock: SharedClock = Arc::new(FixedClock::new(now));

    let directory = Arc::new(InMemoryDirectory::new());
    let org = OrgRecord {
        id: OrgId::new(),
        slug: "acme".into(),
        status: OrgStatus::Active,
        limits: PlanLimits::default(),
    };
    directory.insert(org.clone());
    let sessions = Arc::new(InMemorySessionStore::new());
    let codec = Arc::new(
        JwtCodec::new(
            "edge-bench",
            "edge-api",
            "k1",
            SecretString::from("bench-secret-bench-secret-bench-secret"),
        )
        .unwrap(),
    );
    let subject = TokenSubject {
        user: UserId::new(),
        org: org.id,
        role: Role::User,
        session: SessionId::new(),
    };
    sessions.start(org.id, subject.user, subject.session);
    let (token, _) = codec.issue(subject, now).unwrap();
    let bearer = format!("Bearer {token}");

    let resolver = TenantResolver::new(directory, clock.clone())
        .with_jwt(codec, sessions)
        .with_api_keys(Arc::new(InMemoryApiKeyStore::new()));
    let limiter: Arc<dyn RateLimiter> = Arc::new(InMemoryRateLimiter::new(clock));

    let open: Router = Router::new().route("/", get(|| async { "ok" }));
    let guarded: Router = Router::new()
        .route(
            "/",
            get(|tenant: TenantContext| async move { tenant.org().to_string() }),
        )
        .layer(require(Permission::CrmRead))
        .layer(
            RateLimitLayer::new(limiter, "api")
                .with_quota(Quota::per_second(u32::MAX).with_burst(u32::MAX)),
        )
        .layer(AuthLayer::new(resolver));

    let mut group = c.benchmark_group("request");
    group.bench_function("unauthenticated", |b| {
        b.iter(|| {
            let request = Request::builder().uri("/").body(Body::empty()).unwrap();
            let response = runtime.block_on(open.clone().oneshot(request)).unwrap();
            assert!(response.status().is_success());
        })
    });
    group.bench_function("jwt+tenant+rate_limit", |b| {
        b.iter(|| {
            let request = Request::builder()
                .uri("/")
                .header(header::AUTHORIZATION, bearer.as_str())
                .body(Body::empty())
                .unwrap();
            let response = runtime.block_on(guarded.clone().oneshot(request)).unwrap();
            assert!(response.status().is_success());
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
