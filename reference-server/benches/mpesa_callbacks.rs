//! M-Pesa STK callback ingestion: 10,000 callbacks with 10% duplicates at 64 concurrent
//! senders (issue 8).
//!
//! ```text
//! cargo bench -p reference-server --bench mpesa_callbacks
//!
//! EDGE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p reference-server --bench mpesa_callbacks
//! ```
//!
//! Without a database URL it runs on SQLite (a file in a temporary directory); with
//! `EDGE_BENCH_DATABASE_URL` (or `EDGE_TEST_DATABASE_URL`) it creates a PostgreSQL
//! database of its own (`edge_bench_mpesa`, dropped and created again on every run),
//! migrates it as the owner and runs the server as a runtime role that row-level security
//! applies to. The server is the real one, in process, on port 0, with the default pool
//! (`EDGE_DATABASE_MAX_CONNECTIONS`, passed through when set).
//!
//! Set-up (not timed): 8 organizations and 9,091 pending `wallet_top_up` payments spread
//! over them, each with its own `CheckoutRequestID`, inserted as rows (the push itself is
//! not what is measured), and each organization's callback URL. Every payment gets one
//! STK success callback in Daraja's shape (`benches/data/stk_callback_success.json`, a
//! copy of the shared fixture) with its amount, phone and a unique `MpesaReceiptNumber`.
//!
//! Timed: 10,000 POSTs (every payment once, and 909 distinct payments a second time with
//! the same body), shuffled with a fixed seed, from 64 concurrent senders over keep-alive
//! HTTP/1.1. Each acknowledgement must be 200; its latency (request sent to body read)
//! is recorded. Printed: total time, callbacks per second, acknowledgement p50, p95, p99
//! and max.
//!
//! Then the bench waits (polling, at most 5 minutes) until every stored callback is
//! processed and every payment applied, prints how long that took after the last
//! acknowledgement, and checks, printing each result:
//!
//! - 10,000 callbacks stored, 9,091 with outcome `applied` and 909 `duplicate`;
//! - every payment `succeeded` with `applied_at` set and its receipt recorded;
//! - exactly one ledger transfer keyed by each payment (`mpesa-payment:{id}`), of the
//!   payment's amount, and it is the one the payment names; one `payment.status_changed`
//!   event per payment;
//! - each organization's wallet `posted` balance equals the sum of its payments, and the
//!   wallet is consistent with its entries (`SqlLedger::verify_wallet`).
//!
//! Any failed check (or a non-200 acknowledgement) makes the bench exit with status 1.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{TimeDelta, Utc};
use edge_core::{Currency, Ledger as _, OrgId};
use edge_server::entities::{events, ledger_transfers, mpesa_callbacks, organizations, payments};
use edge_server::ledger::SqlLedger;
use edge_server::{Application, Config};
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait as _, Database, DatabaseConnection, EntityTrait as _, PaginatorTrait as _,
    QueryFilter as _,
};

const DB_NAME: &str = "edge_bench_mpesa";
const ROLE: &str = "edge_bench_mpesa_runtime";
const ORGS: usize = 8;
const PAYMENTS: usize = 9_091;
const DUPLICATES: usize = 909;
const SENDERS: usize = 64;
const SEED: u64 = 254;
const APPLY_DEADLINE: Duration = Duration::from_secs(300);

/// Daraja's STK success callback (a copy of `shared/fixtures/daraja/stk_callback_success.json`).
const FIXTURE: &str = include_str!("data/stk_callback_success.json");
const FIXTURE_CHECKOUT: &str = "ws_CO_15012025143001234708374149";
const FIXTURE_MERCHANT: &str = "7a1c-4e2f-9b3d-5c6e7f8a9b0c1000001";
const FIXTURE_AMOUNT: &str = "1500.00";
const FIXTURE_RECEIPT: &str = "TESTRCPT01";
const FIXTURE_PHONE: &str = "254708374149";

/// One payment as set up, and what its callback says.
struct Payment {
    org: OrgId,
    id: uuid::Uuid,
    kes: i64,
    receipt: String,
}

/// The fixture with this payment's ids, amount, receipt and phone, byte for byte
/// otherwise (so numbers keep Daraja's formatting, e.g. `1500.00`).
fn callback_body(checkout: &str, merchant: &str, kes: i64, receipt: &str, phone: &str) -> Bytes {
    let body = FIXTURE
        .replace(FIXTURE_CHECKOUT, checkout)
        .replace(FIXTURE_MERCHANT, merchant)
        .replace(FIXTURE_AMOUNT, &format!("{kes}.00"))
        .replace(FIXTURE_RECEIPT, receipt)
        .replace(FIXTURE_PHONE, phone);
    Bytes::from(body)
}

/// Organizations and pending payments, written directly (as the owner on PostgreSQL).
async fn seed(db: &DatabaseConnection) -> Vec<Payment> {
    let now = Utc::now();
    let mut orgs = Vec::with_capacity(ORGS);
    for i in 0..ORGS {
        let org = organizations::Model::new_active(
            format!("bench-mpesa-{i}"),
            format!("Bench M-Pesa {i}"),
            "KES".into(),
            "KE".into(),
            "enterprise".into(),
            now,
        );
        orgs.push(OrgId::from_uuid(org.id));
        organizations::Entity::insert(organizations::ActiveModel::from(org))
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    let mut all = Vec::with_capacity(PAYMENTS);
    let mut rows = Vec::with_capacity(PAYMENTS);
    for i in 0..PAYMENTS {
        let org = orgs[i % ORGS];
        let id = uuid::Uuid::now_v7();
        let kes = 10 + (i as i64 * 37) % 4_990;
        let mut row = payments::ActiveModel::pending(
            org.as_uuid(),
            id,
            "wallet_top_up",
            "stk",
            edge_core::Money::from_minor(kes * 100, edge_core::Currency::Kes),
            now,
        );
        row.phone = Set(Some(format!("+25471{i:07}")));
        row.account_reference = Set("Edge wallet".into());
        row.description = Set("Top-up".into());
        row.merchant_request_id = Set(Some(format!("bench-merchant-{i:07}")));
        row.checkout_request_id = Set(Some(format!("ws_CO_15012025143001{i:010}")));
        // Far enough ahead that reconciliation never asks Daraja about them here.
        row.next_check_at = Set(Some(now + TimeDelta::hours(1)));
        rows.push(row);
        all.push(Payment {
            org,
            id,
            kes,
            receipt: format!("BNC{i:07}"),
        });
    }
    for chunk in rows.chunks(500) {
        payments::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    all
}

/// Whether every stored callback is processed and every payment applied, and how many
/// are still to go: `(callbacks stored, unprocessed, unapplied)`.
async fn progress(db: &DatabaseConnection) -> (u64, u64, u64) {
    let stored = mpesa_callbacks::Entity::find().count(db).await.unwrap();
    let unprocessed = mpesa_callbacks::Entity::find()
        .filter(mpesa_callbacks::Column::ProcessedAt.is_null())
        .count(db)
        .await
        .unwrap();
    let unapplied = payments::Entity::find()
        .filter(payments::Column::AppliedAt.is_null())
        .count(db)
        .await
        .unwrap();
    (stored, unprocessed, unapplied)
}

async fn verify(db: &DatabaseConnection, payments_set: &[Payment]) -> support::Checks {
    let mut checks = support::Checks::default();

    let callbacks = mpesa_callbacks::Entity::find().all(db).await.unwrap();
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for callback in &callbacks {
        *outcomes
            .entry(callback.outcome.clone().unwrap_or_else(|| "(none)".into()))
            .or_default() += 1;
    }
    let mut outcome_list: Vec<_> = outcomes.iter().collect();
    outcome_list.sort();
    let applied = outcomes.get("applied").copied().unwrap_or(0);
    let duplicate = outcomes.get("duplicate").copied().unwrap_or(0);
    checks.check(
        callbacks.len() == PAYMENTS + DUPLICATES,
        &format!(
            "callbacks stored: {} (expected {})",
            callbacks.len(),
            PAYMENTS + DUPLICATES
        ),
    );
    checks.check(
        callbacks.iter().all(|c| c.processed_at.is_some()),
        "every stored callback processed",
    );
    checks.check(
        applied == PAYMENTS && duplicate == DUPLICATES && outcomes.len() == 2,
        &format!("callback outcomes {outcome_list:?} (expected applied {PAYMENTS}, duplicate {DUPLICATES})"),
    );
    // Each payment's callbacks: one `applied`, the rest `duplicate`.
    let mut per_payment: HashMap<uuid::Uuid, (usize, usize)> = HashMap::new();
    for callback in &callbacks {
        if let Some(payment) = callback.payment_id {
            let entry = per_payment.entry(payment).or_default();
            match callback.outcome.as_deref() {
                Some("applied") => entry.0 += 1,
                Some("duplicate") => entry.1 += 1,
                _ => {}
            }
        }
    }
    let one_applied = payments_set
        .iter()
        .filter(|p| per_payment.get(&p.id).is_some_and(|(a, _)| *a == 1))
        .count();
    checks.check(
        one_applied == PAYMENTS,
        &format!("payments with exactly one `applied` callback: {one_applied} of {PAYMENTS}"),
    );

    let rows: HashMap<uuid::Uuid, payments::Model> = payments::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    // The evidence for a payment whose callbacks do not say it was applied exactly once.
    for payment in payments_set
        .iter()
        .filter(|p| per_payment.get(&p.id).is_none_or(|(a, _)| *a != 1))
        .take(5)
    {
        let row = &rows[&payment.id];
        println!(
            "          payment {}: {}, completed {:?}, applied {:?}",
            payment.id, row.status, row.completed_at, row.applied_at
        );
        for callback in callbacks
            .iter()
            .filter(|c| c.payment_id == Some(payment.id))
        {
            println!(
                "            callback {}: received {}, processed {:?}, outcome {:?}",
                callback.id, callback.received_at, callback.processed_at, callback.outcome
            );
        }
    }
    let settled = payments_set
        .iter()
        .filter(|p| {
            rows.get(&p.id).is_some_and(|row| {
                row.status == "succeeded"
                    && row.applied_at.is_some()
                    && row.receipt.as_deref() == Some(p.receipt.as_str())
                    && row.paid_amount_minor == Some(p.kes * 100)
            })
        })
        .count();
    let mut statuses: HashMap<&str, usize> = HashMap::new();
    for row in rows.values() {
        *statuses.entry(row.status.as_str()).or_default() += 1;
    }
    checks.check(
        settled == PAYMENTS,
        &format!(
            "payments succeeded, applied, receipt and amount recorded: {settled} of {PAYMENTS} (statuses {statuses:?})"
        ),
    );

    let transfers = ledger_transfers::Entity::find().all(db).await.unwrap();
    let mut by_key: HashMap<&str, Vec<&ledger_transfers::Model>> = HashMap::new();
    for transfer in &transfers {
        by_key
            .entry(transfer.idempotency_key.as_str())
            .or_default()
            .push(transfer);
    }
    let mut once = 0;
    let mut named = 0;
    for payment in payments_set {
        let key = format!("mpesa-payment:{}", payment.id);
        let found = by_key.get(key.as_str()).map_or(&[][..], Vec::as_slice);
        if let [transfer] = found
            && transfer.organization_id == payment.org.as_uuid()
            && transfer.amount_minor == payment.kes * 100
            && transfer.metadata["payment_id"] == serde_json::json!(payment.id)
        {
            once += 1;
            if rows.get(&payment.id).and_then(|row| row.ledger_transfer_id) == Some(transfer.id) {
                named += 1;
            }
        }
    }
    checks.check(
        once == PAYMENTS && transfers.len() == PAYMENTS,
        &format!(
            "exactly one ledger transfer per payment, of its amount: {once} of {PAYMENTS} ({} transfers in all)",
            transfers.len()
        ),
    );
    checks.check(
        named == PAYMENTS,
        &format!("payments naming their transfer: {named} of {PAYMENTS}"),
    );
    let status_events = events::Entity::find()
        .filter(events::Column::Kind.eq("payment.status_changed"))
        .count(db)
        .await
        .unwrap();
    checks.check(
        status_events == PAYMENTS as u64,
        &format!("payment.status_changed events: {status_events} (expected {PAYMENTS})"),
    );

    let ledger = SqlLedger::new(db.clone(), Arc::new(edge_core::SystemClock));
    let mut expected: HashMap<OrgId, i64> = HashMap::new();
    for payment in payments_set {
        *expected.entry(payment.org).or_default() += payment.kes * 100;
    }
    let mut orgs: Vec<_> = expected.into_iter().collect();
    orgs.sort_by_key(|(org, _)| org.as_uuid());
    let mut wallets_ok = 0;
    let mut consistent = 0;
    for (org, minor) in &orgs {
        let balance = ledger.balance(*org).await.unwrap();
        if balance.posted.minor() == *minor && balance.posted.currency() == Currency::Kes {
            wallets_ok += 1;
        } else {
            println!(
                "          org {org}: posted {} but its payments sum to {}",
                balance.posted.minor(),
                minor
            );
        }
        if ledger.verify_wallet(*org).await.unwrap().is_consistent() {
            consistent += 1;
        }
    }
    checks.check(
        wallets_ok == orgs.len(),
        &format!(
            "wallet posted balance = sum of its payments: {wallets_ok} of {} organizations",
            orgs.len()
        ),
    );
    checks.check(
        consistent == orgs.len(),
        &format!(
            "wallets consistent with their entries: {consistent} of {}",
            orgs.len()
        ),
    );
    checks
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    edge_server::install_crypto_provider();
    // The server's warnings and errors (a failed processing, a pool time-out) on stderr.
    let log = std::env::var("EDGE_LOG").unwrap_or_else(|_| "warn".into());
    edge_server::telemetry::init(edge_server::LogFormat::Pretty, &log);
    let data_dir = tempfile::tempdir().unwrap();
    let target = support::target(data_dir.path(), DB_NAME, ROLE).await;
    let (backend, server_url, check_url) = (target.backend, &target.server_url, &target.owner_url);
    let pool = std::env::var("EDGE_DATABASE_MAX_CONNECTIONS").unwrap_or_default();
    let config = Config::from_vars([
        ("EDGE_DATABASE_URL", server_url.as_str()),
        ("EDGE_DATABASE_MAX_CONNECTIONS", pool.as_str()),
        (
            "EDGE_MIGRATE_ON_START",
            if target.migrate_on_start {
                "true"
            } else {
                "false"
            },
        ),
        ("EDGE_BIND", "127.0.0.1:0"),
        ("EDGE_DATA_DIR", data_dir.path().to_str().unwrap()),
    ])
    .unwrap();
    let pool = config.database_max_connections;
    let app = Application::build(config).await.unwrap();
    let state = app.state().clone();
    // The checks read as the owner on PostgreSQL (row-level security does not apply).
    let db = Database::connect(check_url.as_str()).await.unwrap();
    println!(
        "mpesa_callbacks on {backend}: {PAYMENTS} payments in {ORGS} organizations, \
         {} callbacks ({DUPLICATES} duplicates), {SENDERS} senders, server pool {pool}",
        PAYMENTS + DUPLICATES
    );

    // Set-up.
    let started = Instant::now();
    let payments_set = seed(&db).await;
    let mut urls: HashMap<OrgId, Arc<str>> = HashMap::new();
    for payment in &payments_set {
        if !urls.contains_key(&payment.org) {
            let org = payment.org;
            let callback_urls =
                edge_server::tenant_scope::in_organization(org, state.payments.callback_urls(org))
                    .await
                    .unwrap();
            urls.insert(org, callback_urls.stk.into());
        }
    }
    let bodies: Vec<(Arc<str>, Bytes)> = payments_set
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let body = callback_body(
                &format!("ws_CO_15012025143001{i:010}"),
                &format!("bench-merchant-{i:07}"),
                p.kes,
                &p.receipt,
                &format!("25471{i:07}"),
            );
            (urls[&p.org].clone(), body)
        })
        .collect();
    let parsed = edge_mpesa::parse_stk_callback(&bodies[0].1).unwrap();
    assert_eq!(parsed.checkout_request_id, "ws_CO_150120251430010000000000");
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let mut order: Vec<usize> = (0..PAYMENTS).collect();
    order.extend(rand::seq::index::sample(&mut rng, PAYMENTS, DUPLICATES));
    order.shuffle(&mut rng);
    let jobs: Arc<Vec<(Arc<str>, Bytes)>> =
        Arc::new(order.iter().map(|&i| bodies[i].clone()).collect());
    println!(
        "set-up: {:.1} s (not timed)",
        started.elapsed().as_secs_f64()
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        stopped.await.ok();
    }));

    // Timed: the POSTs.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(SENDERS)
        .http1_only()
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = Vec::with_capacity(SENDERS);
    for _ in 0..SENDERS {
        let http = http.clone();
        let jobs = Arc::clone(&jobs);
        let next = Arc::clone(&next);
        senders.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(jobs.len() / SENDERS + 1);
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((url, body)) = jobs.get(i) else {
                    break;
                };
                let at = Instant::now();
                let response = http
                    .post(url.as_ref())
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match response {
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        latencies.push(at.elapsed());
                        if status != 200 {
                            failures.push(format!("{status}: {text}"));
                        }
                    }
                    Err(err) => failures.push(err.to_string()),
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::with_capacity(jobs.len());
    let mut failures = Vec::new();
    for sender in senders {
        let (l, f) = sender.await.unwrap();
        latencies.extend(l);
        failures.extend(f);
    }
    let elapsed = started.elapsed();
    let last_ack = Instant::now();
    latencies.sort();
    println!(
        "\n{} callbacks in {:.2} s: {:.0} callbacks/s",
        jobs.len(),
        elapsed.as_secs_f64(),
        jobs.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "acknowledgement: p50 {:.2} ms   p95 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        support::percentile_ms(&latencies, 0.5),
        support::percentile_ms(&latencies, 0.95),
        support::percentile_ms(&latencies, 0.99),
        support::percentile_ms(&latencies, 1.0),
    );
    println!(
        "acknowledged 200: {} of {}",
        jobs.len() - failures.len(),
        jobs.len()
    );
    for failure in failures.iter().take(5) {
        println!("  not acknowledged: {failure}");
    }

    // Application, after the last acknowledgement.
    let mut at_last_ack = None;
    let fully_applied = loop {
        let (stored, unprocessed, unapplied) = progress(&db).await;
        at_last_ack.get_or_insert((unprocessed, unapplied));
        if stored as usize >= jobs.len() - failures.len() && unprocessed == 0 && unapplied == 0 {
            break Some(last_ack.elapsed());
        }
        if last_ack.elapsed() > APPLY_DEADLINE {
            println!(
                "not fully applied after {} s: {unprocessed} callbacks unprocessed, {unapplied} payments unapplied",
                APPLY_DEADLINE.as_secs()
            );
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (unprocessed, unapplied) = at_last_ack.unwrap_or_default();
    println!(
        "at the last acknowledgement: {unprocessed} callbacks unprocessed, {unapplied} payments unapplied"
    );
    if let Some(took) = fully_applied {
        println!(
            "time to fully applied after the last acknowledgement: {:.2} s (ingestion to fully applied {:.2} s)",
            took.as_secs_f64(),
            (elapsed + took).as_secs_f64()
        );
    }

    println!("\nchecks:");
    let mut checks = verify(&db, &payments_set).await;
    checks.check(
        failures.is_empty(),
        &format!(
            "every callback acknowledged with 200 ({} not)",
            failures.len()
        ),
    );

    stop.send(()).ok();
    server.await.unwrap().unwrap();
    if checks.failed > 0 {
        println!("\n{} check(s) FAILED", checks.failed);
        std::process::exit(1);
    }
    println!("\nall checks passed");
}
