//! The Redis GCRA limiter. Runs only when `EDGE_TEST_REDIS_URL` is set.
//!
//! Redis keeps its own clock, so these tests use quotas whose periods are far longer than
//! a test run: no assertion depends on how fast the test runs.

use std::time::Duration;

use edge_core::OrgId;
use edge_tenancy::{Quota, RateDecision, RateKey, RateLimiter, RedisRateLimiter};

async fn limiter(test: &str) -> Option<RedisRateLimiter> {
    let Ok(url) = std::env::var("EDGE_TEST_REDIS_URL") else {
        println!("skipped: EDGE_TEST_REDIS_URL not set");
        return None;
    };
    // A unique prefix per test run, so runs never share state.
    let prefix = format!("edge-test:{test}:{}", OrgId::new());
    Some(RedisRateLimiter::connect(&url, prefix).await.unwrap())
}

#[tokio::test]
async fn redis_allows_the_burst_then_limits() {
    let Some(limiter) = limiter("burst").await else {
        return;
    };
    // One an hour, bursting to 3.
    let quota = Quota::per_period(1, Duration::from_secs(3600), 3);
    let key = RateKey::new(OrgId::new(), "api");
    let mut remaining = Vec::new();
    for _ in 0..3 {
        match limiter.check(&key, quota).await.unwrap() {
            RateDecision::Allowed {
                remaining: r,
                reset_after,
            } => {
                assert!(reset_after <= Duration::from_secs(3 * 3600));
                remaining.push(r);
            }
            other => panic!("expected allowed, got {other:?}"),
        }
    }
    assert_eq!(remaining, vec![2, 1, 0]);
    match limiter.check(&key, quota).await.unwrap() {
        RateDecision::Limited { retry_after } => {
            assert!(retry_after > Duration::from_secs(3500), "{retry_after:?}");
            assert!(retry_after <= Duration::from_secs(3600), "{retry_after:?}");
        }
        other => panic!("expected limited, got {other:?}"),
    }
}

#[tokio::test]
async fn redis_limits_are_per_org_and_bucket_and_shared_between_nodes() {
    let Some(node_a) = limiter("shared").await else {
        return;
    };
    let node_b = node_a.clone();
    let quota = Quota::per_period(1, Duration::from_secs(3600), 1);
    let acme = RateKey::new(OrgId::new(), "api");
    assert!(node_a.check(&acme, quota).await.unwrap().is_allowed());
    // The second node sees the first node's request.
    assert!(!node_b.check(&acme, quota).await.unwrap().is_allowed());
    assert!(
        node_b
            .check(&RateKey::new(OrgId::new(), "api"), quota)
            .await
            .unwrap()
            .is_allowed()
    );
    assert!(
        node_b
            .check(&RateKey::new(acme.org, "whatsapp.send"), quota)
            .await
            .unwrap()
            .is_allowed()
    );
    assert!(
        node_a
            .redis_key(&acme)
            .ends_with(&format!(":{}:api", acme.org))
    );
}

#[tokio::test]
async fn a_separate_connection_shares_the_same_limit() {
    let Some(first) = limiter("separate").await else {
        return;
    };
    let Ok(url) = std::env::var("EDGE_TEST_REDIS_URL") else {
        return;
    };
    let key = RateKey::new(OrgId::new(), "api");
    let quota = Quota::per_period(1, Duration::from_secs(3600), 2);
    assert!(first.check(&key, quota).await.unwrap().is_allowed());
    // Same prefix, new connection: as a second server node would have.
    let prefix = first
        .redis_key(&key)
        .trim_end_matches(&format!(":{}:api", key.org))
        .to_owned();
    let second = RedisRateLimiter::connect(&url, prefix).await.unwrap();
    assert!(matches!(
        second.check(&key, quota).await.unwrap(),
        RateDecision::Allowed { remaining: 0, .. }
    ));
    assert!(!second.check(&key, quota).await.unwrap().is_allowed());
}

#[tokio::test]
async fn a_bad_redis_url_is_an_internal_error() {
    let err = RedisRateLimiter::connect("not a url", "x")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "internal_error");
}
