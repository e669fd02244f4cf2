//! In-memory GCRA rate limiting, on a fixed clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use edge_core::{FixedClock, OrgId, SharedClock};
use edge_tenancy::{InMemoryRateLimiter, PlanLimits, Quota, RateDecision, RateKey, RateLimiter};

use crate::support::start;

fn limiter() -> (FixedClock, InMemoryRateLimiter) {
    let clock = FixedClock::new(start());
    let shared: SharedClock = Arc::new(clock.clone());
    (clock, InMemoryRateLimiter::new(shared))
}

#[tokio::test]
async fn a_burst_is_allowed_then_requests_wait_for_the_emission_interval() {
    let (clock, limiter) = limiter();
    // 60 a minute = one a second, bursting to 5.
    let quota = Quota::per_minute(60).with_burst(5);
    let key = RateKey::new(OrgId::new(), "api");
    for remaining in (0..5).rev() {
        let decision = limiter.check(&key, quota).await.unwrap();
        assert!(
            matches!(decision, RateDecision::Allowed { remaining: r, .. } if r == remaining),
            "{decision:?}"
        );
    }
    assert_eq!(
        limiter.check(&key, quota).await.unwrap(),
        RateDecision::Limited {
            retry_after: Duration::from_secs(1)
        }
    );
    // A limited request is not counted: still one second to wait.
    clock.advance(Span::milliseconds(400));
    assert_eq!(
        limiter.check(&key, quota).await.unwrap(),
        RateDecision::Limited {
            retry_after: Duration::from_millis(600)
        }
    );
    clock.advance(Span::milliseconds(600));
    assert_eq!(
        limiter.check(&key, quota).await.unwrap(),
        RateDecision::Allowed {
            remaining: 0,
            reset_after: Duration::from_secs(5)
        }
    );
    // After a full idle period the whole burst is back.
    clock.advance(Span::seconds(5));
    assert!(matches!(
        limiter.check(&key, quota).await.unwrap(),
        RateDecision::Allowed { remaining: 4, .. }
    ));
}

#[tokio::test]
async fn one_tenant_cannot_spend_another_tenants_allowance() {
    let (_, limiter) = limiter();
    let quota = Quota::per_second(1);
    let acme = RateKey::new(OrgId::new(), "api");
    let globex = RateKey::new(OrgId::new(), "api");
    let acme_sends = RateKey::new(acme.org, "whatsapp.send");
    assert!(limiter.check(&acme, quota).await.unwrap().is_allowed());
    assert!(!limiter.check(&acme, quota).await.unwrap().is_allowed());
    assert!(limiter.check(&globex, quota).await.unwrap().is_allowed());
    assert!(
        limiter
            .check(&acme_sends, quota)
            .await
            .unwrap()
            .is_allowed()
    );
}

#[tokio::test]
async fn limited_decisions_become_rate_limited_errors() {
    let (_, limiter) = limiter();
    let quota = Quota::per_period(1, Duration::from_secs(10), 1);
    let key = RateKey::new(OrgId::new(), "api");
    assert!(
        limiter
            .check(&key, quota)
            .await
            .unwrap()
            .into_result()
            .is_ok()
    );
    let err = limiter
        .check(&key, quota)
        .await
        .unwrap()
        .into_result()
        .unwrap_err();
    assert_eq!(err.code(), "rate_limited");
    assert!(
        matches!(err, edge_core::Error::RateLimited { retry_after } if retry_after == Duration::from_secs(10))
    );
}

#[test]
fn plan_limits_become_a_quota() {
    let quota = PlanLimits::default().request_quota();
    assert_eq!(quota.emission_interval(), Duration::from_millis(500));
    assert_eq!(quota.burst(), 30);
}

#[test]
fn idle_keys_are_evicted_without_changing_decisions() {
    let clock = FixedClock::new(start());
    let shared: SharedClock = Arc::new(clock.clone());
    let limiter = InMemoryRateLimiter::with_capacity_hint(shared, 16);
    let quota = Quota::per_second(1);
    let busy = RateKey::new(OrgId::new(), "api");
    assert!(limiter.check_now(&busy, quota).is_allowed());
    assert!(!limiter.check_now(&busy, quota).is_allowed());
    for _ in 0..100 {
        limiter.check_now(&RateKey::new(OrgId::new(), "api"), quota);
    }
    // Keys still inside their window are never evicted.
    assert_eq!(limiter.len(), 101);

    // Once idle, they are swept as new keys arrive in their shard.
    clock.advance(Span::seconds(2));
    for _ in 0..400 {
        limiter.check_now(&RateKey::new(OrgId::new(), "api"), quota);
    }
    assert_eq!(limiter.len(), 400);
    assert_eq!(limiter.evict_idle(), 0);
    clock.advance(Span::seconds(2));
    assert_eq!(limiter.evict_idle(), 400);
    assert!(limiter.is_empty());

    // An evicted key is as good as fresh: its burst is available again.
    assert!(matches!(
        limiter.check_now(&busy, quota),
        RateDecision::Allowed { remaining: 0, .. }
    ));
}
