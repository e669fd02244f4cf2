//! Throughput of `SqlLedger` on PostgreSQL: reserve + capture calls per second at 1, 16 and
//! 64 concurrent tasks, on one hot wallet and spread over 100 wallets, next to a baseline
//! that runs the minimal equivalent transaction (a conditional balance update plus one
//! entry insert) at the same concurrency.
//!
//! ```text
//! EDGE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p reference-server --bench ledger
//! ```
//!
//! `EDGE_BENCH_DATABASE_URL` (or `EDGE_TEST_DATABASE_URL`) names a server where the bench
//! may create and drop its own database; without one it says it was skipped. One
//! operation is one ledger call (a reserve or a capture) or one baseline transaction.
//! The ledger runs twice: with batching off (every call its own transaction) and on
//! (calls queued on a busy wallet share one transaction). `EDGE_BENCH_OPS` sets the operations per scenario (default 2000).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use edge_core::{
    Account, CaptureRequest, Currency, IdempotencyKey, Ledger, Money, OrgId, ReserveRequest,
    SystemClock, TransferRequest,
};
use edge_server::entities::organizations;
use edge_server::ledger::SqlLedger;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait as _, Database, DatabaseConnection, DbBackend,
    EntityTrait as _, Statement, TransactionTrait as _,
};

const TASKS: [usize; 3] = [1, 16, 64];
const SPREAD_WALLETS: usize = 100;

#[derive(Clone, Copy)]
enum Kind {
    Ledger,
    Baseline,
}

struct Run {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, p: f64) -> f64 {
        self.latencies.sort();
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1_000.0
    }
}

fn kes(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Kes)
}

async fn run(
    kind: Kind,
    db: &DatabaseConnection,
    ledger: &Arc<SqlLedger>,
    wallets: &[OrgId],
    tasks: usize,
    ops: usize,
    tag: &str,
) -> Run {
    let per_task = ops.div_ceil(tasks);
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let db = db.clone();
        let ledger = Arc::clone(ledger);
        let wallets = wallets.to_vec();
        let tag = tag.to_owned();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task);
            let mut done = 0;
            let mut n = 0;
            while done < per_task {
                n += 1;
                let org = wallets[(t + n * 7) % wallets.len()];
                match kind {
                    Kind::Ledger => {
                        let k = IdempotencyKey::new(format!("{tag}-{t}-{n}")).unwrap();
                        let at = Instant::now();
                        let hold = ledger
                            .reserve(
                                org,
                                ReserveRequest::new(kes(100), TimeDelta::minutes(5), k.clone()),
                            )
                            .await
                            .unwrap()
                            .value;
                        latencies.push(at.elapsed());
                        let at = Instant::now();
                        ledger
                            .capture(
                                org,
                                hold.id,
                                CaptureRequest {
                                    amount: None,
                                    idempotency_key: k.derive("capture").unwrap(),
                                },
                            )
                            .await
                            .unwrap();
                        latencies.push(at.elapsed());
                        done += 2;
                    }
                    Kind::Baseline => {
                        let at = Instant::now();
                        baseline_op(&db, org).await;
                        latencies.push(at.elapsed());
                        done += 1;
                    }
                }
            }
            (done, latencies)
        }));
    }
    let mut all = Vec::new();
    let mut total = 0;
    for h in handles {
        let (done, latencies) = h.await.unwrap();
        total += done;
        all.extend(latencies);
    }
    Run {
        ops: total,
        elapsed: started.elapsed(),
        latencies: all,
    }
}

/// The minimal equivalent transaction: a conditional balance update and one entry.
async fn baseline_op(db: &DatabaseConnection, org: OrgId) {
    let txn = db.begin().await.unwrap();
    let updated = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE bench_wallets SET balance_minor = balance_minor - $2 \
             WHERE organization_id = $1 AND balance_minor >= $2",
            [org.as_uuid().into(), 100_i64.into()],
        ))
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 1);
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO bench_entries (organization_id, id, amount_minor, created_at) \
         VALUES ($1, $2, $3, $4)",
        [
            org.as_uuid().into(),
            uuid::Uuid::now_v7().into(),
            (-100_i64).into(),
            Utc::now().into(),
        ],
    ))
    .await
    .unwrap();
    txn.commit().await.unwrap();
}

async fn setup(url: &str) -> (DatabaseConnection, Arc<SqlLedger>, Vec<OrgId>) {
    let dir = std::env::temp_dir();
    let config = edge_server::Config::from_vars([
        ("EDGE_DATABASE_URL", url.to_owned()),
        ("EDGE_DATA_DIR", dir.display().to_string()),
        ("EDGE_DATABASE_MAX_CONNECTIONS", "64".to_owned()),
    ])
    .unwrap();
    let db = edge_server::db::connect(&config).await.unwrap();
    edge_server::db::migrate(&db).await.unwrap();
    db.execute_unprepared(
        "CREATE TABLE bench_wallets (organization_id uuid PRIMARY KEY, balance_minor bigint NOT NULL);
         CREATE TABLE bench_entries (organization_id uuid NOT NULL, id uuid NOT NULL,
             amount_minor bigint NOT NULL, created_at timestamptz NOT NULL,
             PRIMARY KEY (organization_id, id));",
    )
    .await
    .unwrap();
    let ledger = Arc::new(SqlLedger::new(db.clone(), Arc::new(SystemClock)));
    let mut wallets = Vec::new();
    for i in 0..SPREAD_WALLETS {
        let org = OrgId::new();
        let now = Utc::now();
        organizations::Entity::insert(organizations::ActiveModel {
            id: Set(org.as_uuid()),
            slug: Set(format!("bench-{i}")),
            name: Set(format!("Bench {i}")),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec_without_returning(&db)
        .await
        .unwrap();
        ledger.open_wallet(org, Currency::Kes).await.unwrap();
        ledger
            .transfer(
                org,
                TransferRequest::new(
                    Account::MpesaClearing,
                    Account::Wallet(org),
                    kes(1_000_000_000_000),
                    IdempotencyKey::new("seed").unwrap(),
                ),
            )
            .await
            .unwrap();
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO bench_wallets VALUES ($1, $2)",
            [org.as_uuid().into(), 1_000_000_000_000_i64.into()],
        ))
        .await
        .unwrap();
        wallets.push(org);
    }
    (db, ledger, wallets)
}

async fn bench(admin_url: &str) {
    let name = format!("edge_bench_{}", uuid::Uuid::now_v7().simple());
    let admin = Database::connect(admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&format!("/{name}"));

    let outcome = tokio::spawn({
        let url = url.to_string();
        async move {
            let (db, ledger, wallets) = setup(&url).await;
            let unbatched = Arc::new(ledger.as_ref().clone().with_batching(false));
            let ops: usize = std::env::var("EDGE_BENCH_OPS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2_000);
            println!(
                "{:<28} {:>5} {:>10} {:>9} {:>9} {:>8}",
                "scenario", "tasks", "ops/s", "p50 ms", "p99 ms", "ratio"
            );
            for (label, set) in [("hot wallet", &wallets[..1]), ("100 wallets", &wallets[..])] {
                for tasks in TASKS {
                    let tag = format!("{}-{tasks}", label.replace(' ', "_"));
                    let mut base = run(Kind::Baseline, &db, &ledger, set, tasks, ops, &tag).await;
                    let mut single = run(
                        Kind::Ledger,
                        &db,
                        &unbatched,
                        set,
                        tasks,
                        ops,
                        &format!("{tag}-single"),
                    )
                    .await;
                    let mut led = run(Kind::Ledger, &db, &ledger, set, tasks, ops, &tag).await;
                    let ratio = led.per_second() / base.per_second();
                    println!(
                        "{:<28} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>8}",
                        format!("baseline, {label}"),
                        tasks,
                        base.per_second(),
                        base.percentile(0.5),
                        base.percentile(0.99),
                        "1.00"
                    );
                    println!(
                        "{:<28} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>8.2}",
                        format!("r+c unbatched, {label}"),
                        tasks,
                        single.per_second(),
                        single.percentile(0.5),
                        single.percentile(0.99),
                        single.per_second() / base.per_second()
                    );
                    println!(
                        "{:<28} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>8.2}",
                        format!("r+c batched, {label}"),
                        tasks,
                        led.per_second(),
                        led.percentile(0.5),
                        led.percentile(0.99),
                        ratio
                    );
                }
            }
            for org in &wallets {
                let check = ledger.verify_wallet(*org).await.unwrap();
                assert!(check.is_consistent(), "{check:?}");
            }
            db.close().await.ok();
        }
    })
    .await;

    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    admin.close().await.ok();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

fn main() {
    let url = ["EDGE_BENCH_DATABASE_URL", "EDGE_TEST_DATABASE_URL"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()));
    let Some(url) = url else {
        println!("ledger bench SKIPPED: set EDGE_BENCH_DATABASE_URL or EDGE_TEST_DATABASE_URL");
        return;
    };
    edge_server::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(&url));
}
