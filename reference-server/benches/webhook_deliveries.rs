//! Outbound webhooks through the full path: N events fanned out to two endpoints and
//! delivered, signed, to a local receiver that verifies every signature (issue 11).
//!
//! ```text
//! cargo bench -p reference-server --bench webhook_deliveries
//!
//! EDGE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p reference-server --bench webhook_deliveries
//!
//! # a quick debug-mode check with few events:
//! EDGE_BENCH_WEBHOOK_EVENTS=100 cargo test -p reference-server --bench webhook_deliveries
//! ```
//!
//! Without a database URL it runs on SQLite (a file in a temporary directory); with
//! `EDGE_BENCH_DATABASE_URL` (or `EDGE_TEST_DATABASE_URL`) it creates a PostgreSQL
//! database of its own (`edge_bench_webhooks`, dropped and created again on every run),
//! migrated by the owner, with the server running as a runtime role that row-level
//! security applies to. The server is the real one, in process, on port 0, with
//! `EDGE_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES=true` so it may post to the receiver on
//! 127.0.0.1, and its own webhooks worker (fan-out and delivery, at most 8 deliveries at
//! once per endpoint).
//!
//! Set-up (not timed): one organization signs up over HTTP and registers two endpoints on
//! the receiver (`/a` subscribed to `deal.*`, `/b` to `*`), keeping their secrets for the
//! receiver. The receiver (axum, in process) checks each request's Standard Webhooks
//! signature with its own HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`,
//! counts each `webhook-id` per endpoint, and answers 200 (401 to a bad signature).
//!
//! Timed: `EDGE_BENCH_WEBHOOK_EVENTS` events (default 2,000) of kind `deal.updated`,
//! written in one transaction as the owner with `events::record` (as a service would);
//! the clock starts at its commit and stops when the receiver has every delivery (two per
//! event) and the server has recorded each as succeeded. Printed: time, deliveries per
//! second, and the machine's 1-minute load average before and after.
//!
//! Checks (each printed): the receiver got 2 × N requests, every one verified, each
//! `webhook-id` exactly once, N per endpoint; 2 × N deliveries stored, all `succeeded`
//! after one try, with one try row each; the webhooks event queue is empty. Any failed
//! check makes the bench exit with status 1.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edge_core::OrgId;
use edge_server::entities::{event_queue, webhook_deliveries, webhook_delivery_attempts};
use hmac::{Hmac, Mac as _};
use sea_orm::{
    ColumnTrait as _, Database, EntityTrait as _, PaginatorTrait as _, QueryFilter as _,
    TransactionTrait as _,
};
use serde_json::{Value, json};

const DB_NAME: &str = "edge_bench_webhooks";
const ROLE: &str = "edge_bench_webhooks_runtime";

#[derive(Default)]
struct Seen {
    keys: HashMap<String, Vec<u8>>,
    /// (endpoint, webhook-id) → how many times.
    ids: HashMap<(String, String), usize>,
    unverified: usize,
    total: usize,
}

type Shared = Arc<Mutex<Seen>>;

/// Standard Webhooks, from the specification (not the server's signer).
fn verify(key: &[u8], id: &str, timestamp: &str, header: &str, body: &[u8]) -> bool {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    header.split(' ').any(|candidate| {
        let Some(signature) = candidate
            .strip_prefix("v1,")
            .and_then(|s| STANDARD.decode(s).ok())
        else {
            return false;
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(&content);
        mac.verify_slice(&signature).is_ok()
    })
}

async fn receive(
    State(seen): State<Shared>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let mut seen = seen.lock().unwrap();
    let verified = seen.keys.get(&endpoint).is_some_and(|key| {
        verify(
            key,
            &id,
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            &body,
        )
    });
    seen.total += 1;
    if !verified {
        seen.unverified += 1;
        return StatusCode::UNAUTHORIZED;
    }
    *seen.ids.entry((endpoint, id)).or_default() += 1;
    StatusCode::OK
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

#[tokio::main]
async fn main() {
    edge_server::install_crypto_provider();
    let log = std::env::var("EDGE_LOG").unwrap_or_else(|_| "warn".into());
    edge_server::telemetry::init(edge_server::LogFormat::Pretty, &log);
    let events: usize = std::env::var("EDGE_BENCH_WEBHOOK_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let data_dir = tempfile::tempdir().unwrap();
    let target = support::target(data_dir.path(), DB_NAME, ROLE).await;

    // The receiver.
    let seen: Shared = Arc::default();
    let router = axum::Router::new()
        .route("/{endpoint}", axum::routing::post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let config = target.config(
        data_dir.path(),
        &[
            ("EDGE_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("EDGE_WHATSAPP_BASE_URL", "http://127.0.0.1:9"),
        ],
    );
    let pool = config.database_max_connections;
    let server = support::serve(config).await;
    let base = format!("http://{}/api/v1", server.address);
    let db = Database::connect(target.owner_url.as_str()).await.unwrap();
    println!(
        "webhook_deliveries on {}: {events} events to 2 endpoints, server pool {pool}",
        target.backend
    );

    // Set-up.
    let http = reqwest::Client::new();
    let signup: Value = http
        .post(format!("{base}/auth/signup"))
        .json(&json!({
            "organization_name": "Mavuno Seeds",
            "name": "Wanjiru Kamau",
            "email": "admin@mavuno.example",
            "password": "correct horse battery staple",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["access_token"].as_str().unwrap().to_owned();
    let org = OrgId::from_uuid(
        signup["organization"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    for (endpoint, types) in [("a", json!(["deal.*"])), ("b", json!(["*"]))] {
        let created: Value = http
            .post(format!("{base}/webhook-endpoints"))
            .bearer_auth(&token)
            .json(&json!({"url": format!("http://{receiver}/{endpoint}"), "event_types": types}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let secret = created["secret"].as_str().expect("an endpoint was created");
        let key = STANDARD.decode(&secret["whsec_".len()..]).unwrap();
        seen.lock().unwrap().keys.insert(endpoint.to_owned(), key);
    }

    // Timed.
    let load_before = load_average();
    let txn = db.begin().await.unwrap();
    let now = chrono::Utc::now();
    for i in 0..events {
        edge_server::events::record(
            &txn,
            org,
            "deal.updated",
            ("deal", uuid::Uuid::now_v7()),
            json!({"record": {"title": format!("Deal {i}")}, "changed": ["title"], "previous": {}}),
            now,
        )
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    let started = Instant::now();
    let expected = 2 * events;
    let mut last_report = Instant::now();
    let succeeded = loop {
        let received = seen.lock().unwrap().total;
        let succeeded = webhook_deliveries::Entity::find()
            .filter(webhook_deliveries::Column::Status.eq("succeeded"))
            .count(&db)
            .await
            .unwrap() as usize;
        if (received >= expected && succeeded >= expected)
            || started.elapsed() > Duration::from_secs(600)
        {
            break succeeded;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            println!("  … {received} received, {succeeded} recorded as succeeded");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed();
    println!(
        "  {expected} deliveries in {:.2} s: {:.0} deliveries/s (load {load_before} → {})",
        elapsed.as_secs_f64(),
        succeeded as f64 / elapsed.as_secs_f64(),
        load_average()
    );

    // Checks.
    let mut checks = support::Checks::default();
    {
        let seen = seen.lock().unwrap();
        checks.check(
            seen.total == expected,
            &format!(
                "the receiver got {} requests (expected {expected})",
                seen.total
            ),
        );
        checks.check(seen.unverified == 0, "every signature verified");
        checks.check(
            seen.ids.len() == expected && seen.ids.values().all(|&n| n == 1),
            "each webhook-id arrived exactly once",
        );
        for endpoint in ["a", "b"] {
            let count = seen.ids.keys().filter(|(e, _)| e == endpoint).count();
            checks.check(
                count == events,
                &format!("endpoint {endpoint} got {count} deliveries (expected {events})"),
            );
        }
    }
    let stored = webhook_deliveries::Entity::find().all(&db).await.unwrap();
    checks.check(
        stored.len() == expected
            && stored
                .iter()
                .all(|d| d.status == "succeeded" && d.attempts == 1),
        &format!(
            "{} deliveries stored, all succeeded after one try",
            stored.len()
        ),
    );
    let tries = webhook_delivery_attempts::Entity::find()
        .count(&db)
        .await
        .unwrap() as usize;
    checks.check(
        tries == expected,
        &format!("{tries} tries recorded (expected {expected})"),
    );
    let queued = event_queue::Entity::find()
        .filter(event_queue::Column::Consumer.eq("webhooks"))
        .count(&db)
        .await
        .unwrap();
    checks.check(queued == 0, "the webhooks event queue is empty");

    server.stop().await;
    if checks.failed > 0 {
        println!("webhook_deliveries: {} check(s) FAILED", checks.failed);
        std::process::exit(1);
    }
}
