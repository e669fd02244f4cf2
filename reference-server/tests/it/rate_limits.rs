//! Per-organization rate limits, shared by several server nodes through Redis.

use reqwest::Method;

use crate::auth::signup;
use crate::helpers::{Backend, Options, skip, spawn_with};

/// Two nodes on one database and one Redis: the organization's plan limit (free: bursts
/// of 20) holds across both, not per node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_limit_through_redis() {
    let Ok(redis_url) = std::env::var("EDGE_TEST_REDIS_URL") else {
        skip(
            "two_nodes_share_one_limit_through_redis",
            "EDGE_TEST_REDIS_URL is not set",
        );
        return;
    };
    let with_redis = || Options {
        vars: vec![("EDGE_REDIS_URL".into(), redis_url.clone())],
        ..Options::default()
    };
    let first = spawn_with(Backend::Sqlite, "redis_first", with_redis())
        .await
        .unwrap();
    let body = signup(&first, "Busy", "admin@busy.example").await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    // A second node over the same data directory (and so the same database and secrets).
    let data_dir = first.data_dir.path().to_owned();
    let second = spawn_with(
        Backend::Sqlite,
        "redis_second",
        Options {
            vars: vec![
                ("EDGE_REDIS_URL".into(), redis_url.clone()),
                ("EDGE_DATA_DIR".into(), data_dir.display().to_string()),
                (
                    "EDGE_DATABASE_URL".into(),
                    crate::helpers::sqlite_url(&data_dir),
                ),
            ],
            ..Options::default()
        },
    )
    .await
    .unwrap();
    // The free plan: 60 a minute, bursts of 20.
    edge_server::billing::subscriptions::assign_plan(
        first.db(),
        edge_core::OrgId::from_uuid(
            body["organization"]["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        ),
        "free",
        edge_server::audit::Actor::System,
        &edge_server::audit::ClientInfo::default(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();

    let mut allowed = 0;
    let mut limited = None;
    for i in 0..60 {
        let node = if i % 2 == 0 { &first } else { &second };
        let response = node
            .client
            .request(Method::GET, node.url("/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            assert!(response.headers().get("retry-after").is_some());
            limited = Some(i);
            break;
        }
        assert_eq!(response.status(), 200);
        allowed += 1;
    }
    // Each node alone would allow 20; together they allowed about 20, not 40.
    assert!(limited.is_some(), "no request was limited");
    assert!(
        (18..=22).contains(&allowed),
        "allowed {allowed} before the shared limit"
    );
}
