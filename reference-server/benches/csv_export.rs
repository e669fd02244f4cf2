//! CSV export throughput: `GET /api/v1/exports/prospects.csv` over 100,000 prospects.
//!
//! ```text
//! cargo bench -p reference-server --bench csv_export
//!
//! EDGE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p reference-server --bench csv_export
//!
//! # quick debug run with few rows (compiles and checks the bench):
//! EDGE_BENCH_CSV_ROWS=2000 cargo test -p reference-server --bench csv_export
//! ```
//!
//! Without a database URL it runs on SQLite (a file in a temporary directory); with
//! `EDGE_BENCH_DATABASE_URL` (or `EDGE_TEST_DATABASE_URL`) it creates a PostgreSQL
//! database of its own (`edge_bench_csv_export`, dropped and created again on every run),
//! migrated by the owner, and runs the server as a runtime role under row-level security.
//!
//! Set-up (not timed): the real server in process on port 0; one organization signs up
//! through the API; `EDGE_BENCH_CSV_ROWS` prospects (default 100,000) are inserted
//! directly into the database as the owner, 1,000 per statement.
//!
//! Timed: one `GET /api/v1/exports/prospects.csv` as the organization's admin, reading
//! the streamed body chunk by chunk (never holding it) until it ends. Printed: time to the
//! first byte, total time, rows per second, MB per second and the body's size.
//!
//! Checked (each printed; any failure exits with status 1): the answer is 200 `text/csv`
//! as an attachment; the body has the header and exactly as many rows as were seeded;
//! the last chunk ends a row.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Instant;

use chrono::Utc;
use edge_server::entities::prospects;
use futures::StreamExt as _;
use sea_orm::{Database, EntityTrait};
use serde_json::{Value, json};

const DB_NAME: &str = "edge_bench_csv_export";
const ROLE: &str = "edge_bench_csv_runtime";

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    edge_server::install_crypto_provider();
    let log = std::env::var("EDGE_LOG").unwrap_or_else(|_| "warn".into());
    edge_server::telemetry::init(edge_server::LogFormat::Pretty, &log);
    let rows: usize = std::env::var("EDGE_BENCH_CSV_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let data_dir = tempfile::tempdir().unwrap();
    let target = support::target(data_dir.path(), DB_NAME, ROLE).await;
    let config = target.config(
        data_dir.path(),
        // A long export must not hit the request time-out.
        &[("EDGE_REQUEST_TIMEOUT_SECS", "600")],
    );
    let server = support::serve(config).await;
    let address = server.address;
    println!("csv_export on {}: {rows} prospects", target.backend);

    let http = reqwest::Client::new();
    let signup: Value = http
        .post(format!("http://{address}/api/v1/auth/signup"))
        .json(&json!({
            "organization_name": "Bench Exports",
            "name": "Bench Admin",
            "email": "admin@csv-bench.example",
            "password": "correct horse battery staple",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["access_token"].as_str().unwrap().to_owned();
    let org: uuid::Uuid = signup["organization"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let seeding = Instant::now();
    let owner = Database::connect(target.owner_url.as_str()).await.unwrap();
    let now = Utc::now();
    let mut batch = Vec::with_capacity(1_000);
    for i in 0..rows {
        batch.push(prospects::ActiveModel::from(prospects::Model {
            organization_id: org,
            id: uuid::Uuid::now_v7(),
            name: format!("Customer {i:06}"),
            company: Some(format!("Company {}, Ltd", i % 997)),
            phone: Some(format!("+2547{:08}", i)),
            phones: json!([format!("+2547{:08}", i)]),
            email: Some(format!("customer{i}@example.com")),
            lead_source: Some("Referral".into()),
            industry: None,
            services: json!([]),
            owner_id: None,
            milestone: "New".into(),
            happiness: None,
            estimated_value_minor: Some((i as i64 % 1_000) * 100),
            currency: "KES".into(),
            tags: json!(["bench"]),
            custom: json!({}),
            search_text: format!("customer {i:06}"),
            relationship_id: None,
            created_by: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }));
        if batch.len() == 1_000 || i + 1 == rows {
            prospects::Entity::insert_many(std::mem::take(&mut batch))
                .exec_without_returning(&owner)
                .await
                .unwrap();
        }
    }
    println!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    let mut checks = support::Checks::default();
    let started = Instant::now();
    let response = http
        .get(format!("http://{address}/api/v1/exports/prospects.csv"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut first_byte = None;
    let mut bytes = 0_usize;
    let mut lines = 0_usize;
    let mut last = 0_u8;
    let mut body = response.bytes_stream();
    let mut broken = false;
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            broken = true;
            break;
        };
        first_byte.get_or_insert_with(|| started.elapsed());
        bytes += chunk.len();
        // Seeded cells hold no line breaks, so each CRLF ends one record.
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        if let Some(b) = chunk.last() {
            last = *b;
        }
    }
    let elapsed = started.elapsed();
    let secs = elapsed.as_secs_f64();
    let exported = lines.saturating_sub(1);
    println!(
        "first byte after {:.1} ms; {exported} rows, {:.1} MB in {secs:.2} s: {:.0} rows/s, {:.1} MB/s",
        first_byte.unwrap_or_default().as_secs_f64() * 1_000.0,
        bytes as f64 / 1e6,
        exported as f64 / secs,
        bytes as f64 / 1e6 / secs,
    );
    checks.check(status == 200, &format!("200 (got {status})"));
    checks.check(content_type.starts_with("text/csv"), "text/csv");
    checks.check(disposition.starts_with("attachment;"), "an attachment");
    checks.check(!broken, "the stream ended cleanly");
    checks.check(
        exported == rows,
        &format!("{rows} rows after the header (got {exported})"),
    );
    checks.check(last == b'\n', "the body ends with a complete row");

    server.stop().await;
    if checks.failed > 0 {
        println!("\n{} check(s) FAILED", checks.failed);
        std::process::exit(1);
    }
}
