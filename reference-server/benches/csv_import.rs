//! CSV import through the real HTTP API: one file of 100,000 generated prospects, some
//! of them duplicates and some bad, imported in one job (issue 11).
//!
//! ```text
//! cargo bench -p reference-server --bench csv_import
//!
//! EDGE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p reference-server --bench csv_import
//!
//! # small and unoptimised, as a test:
//! EDGE_BENCH_IMPORT_ROWS=2000 cargo test -p reference-server --bench csv_import
//! ```
//!
//! Without a database URL it runs on SQLite (a file in a temporary directory); with
//! `EDGE_BENCH_DATABASE_URL` (or `EDGE_TEST_DATABASE_URL`) it creates a PostgreSQL
//! database of its own (`edge_bench_imports`, dropped and created again on every run),
//! migrates it as the owner and runs the server as a runtime role that row-level security
//! applies to. The server is the real one, in process, on port 0, with its import worker.
//! `EDGE_BENCH_IMPORT_ROWS` sets the number of data rows (default 100,000).
//!
//! Set-up (not timed): an organization signs up; its admin creates 20 prospects through
//! the API whose phones reappear in the file (duplicates of existing records). The file
//! is generated in memory: row `i` is `Person i` with its own phone and email, except
//! every 97th row, whose email is not one (refused), and every 50th, which repeats the
//! previous row's phone with no email (a duplicate of an earlier row of the file).
//!
//! Timed and printed separately: the upload (`POST /imports?kind=prospects`, `text/csv`,
//! the whole file parsed and stored in chunks); the dry run (`POST /imports/{id}/dry-run`,
//! every row checked, nothing written); and the job, from `POST /imports/{id}/start` until
//! `GET /imports/{id}` (polled every 100 ms) says `completed`, with rows per second. The
//! mapping (the suggested one) and duplicates `skip` are set in between, untimed. The
//! machine's 1-minute load average is printed before and after.
//!
//! Checks, printed as they are made: the job completed with `total` and `rows_done` equal
//! to the row count, and `rows_imported`, `rows_skipped_duplicate` and `rows_failed`
//! exactly as the generator's own count says (`rows_updated` 0); the dry run agreed
//! (valid, invalid, duplicates); the organization has exactly the 20 prospects plus those
//! imported; one `import_errors` row per refused row; `errors.csv` has a line per refused
//! row plus its header; one `import.completed` event. Any failed check exits with status 1.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait as _, Database, Statement};
use serde_json::{Value, json};

const DB_NAME: &str = "edge_bench_imports";
const ROLE: &str = "edge_bench_imports_rt";
const EXISTING: usize = 20;

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn phone(i: usize) -> String {
    format!("0712{i:06}")
}

/// The file and what importing it must do: (csv, imported, skipped, failed), given the
/// phones that exist before.
fn generate(rows: usize, existing: &HashSet<String>) -> (String, u64, u64, u64) {
    let mut csv = String::with_capacity(rows * 64);
    csv.push_str("Name,Mobile,Email,Company\n");
    let mut seen = existing.clone();
    let (mut imported, mut skipped, mut failed) = (0, 0, 0);
    for i in 0..rows {
        let bad = i % 97 == 96;
        let repeat = i.is_multiple_of(50) && i > 0;
        let number = if repeat { phone(i - 1) } else { phone(i) };
        let email = if bad {
            "not-an-email".to_owned()
        } else if repeat {
            String::new()
        } else {
            format!("person{i}@example.com")
        };
        csv.push_str(&format!(
            "Person {i},{number},{email},\"Company {i}, Ltd\"\n"
        ));
        if bad {
            failed += 1;
        } else if !seen.insert(number) {
            skipped += 1;
        } else {
            imported += 1;
        }
    }
    (csv, imported, skipped, failed)
}

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let backend = db.get_database_backend();
    db.query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    edge_server::install_crypto_provider();
    let log = std::env::var("EDGE_LOG").unwrap_or_else(|_| "warn".into());
    edge_server::telemetry::init(edge_server::LogFormat::Pretty, &log);
    let rows: usize = std::env::var("EDGE_BENCH_IMPORT_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let data_dir = tempfile::tempdir().unwrap();
    let target = support::target(data_dir.path(), DB_NAME, ROLE).await;
    let config = target.config(
        data_dir.path(),
        // An unoptimised build checks 100,000 rows slowly; the dry run is one request.
        &[("EDGE_REQUEST_TIMEOUT_SECS", "600")],
    );
    let server = support::serve(config).await;
    let address = server.address;
    let db = Database::connect(target.owner_url.as_str()).await.unwrap();
    let backend = target.backend;
    println!("csv_import on {backend}: {rows} rows in one file");

    let http = reqwest::Client::new();
    let base = format!("http://{address}/api/v1");
    let signed_up: Value = http
        .post(format!("{base}/auth/signup"))
        .json(&json!({
            "organization_name": "Bench Imports",
            "name": "Wanjiru Kamau",
            "email": "admin@imports.example",
            "password": "correct horse battery staple",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signed_up["access_token"].as_str().unwrap().to_owned();
    let mut existing = HashSet::new();
    for k in 0..EXISTING {
        // Rows 1, 1 + step, …: never refused, never repeats.
        let i = 1 + k * (rows / EXISTING).max(1);
        let i = if i % 97 == 96 || i.is_multiple_of(50) {
            i + 1
        } else {
            i
        };
        if i >= rows {
            break;
        }
        let response = http
            .post(format!("{base}/prospects"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("Existing {k}"), "phone": phone(i)}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        existing.insert(phone(i));
    }
    let (csv, imported, skipped, failed) = generate(rows, &existing);
    println!(
        "file: {:.1} MB; expected {imported} imported, {skipped} duplicates, {failed} refused; load {}",
        csv.len() as f64 / 1e6,
        load_average()
    );

    let started = Instant::now();
    let uploaded: Value = http
        .post(format!("{base}/imports?kind=prospects"))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upload_took = started.elapsed();
    let id = uploaded["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{uploaded}"))
        .to_owned();
    println!("upload: {:.2} s", upload_took.as_secs_f64());
    let mapped = http
        .put(format!("{base}/imports/{id}/mapping"))
        .bearer_auth(&token)
        .json(&json!({"mapping": uploaded["suggested_mapping"], "duplicates": "skip"}))
        .send()
        .await
        .unwrap();
    assert_eq!(mapped.status(), 200);

    let started = Instant::now();
    let dry: Value = http
        .post(format!("{base}/imports/{id}/dry-run"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!(
        "dry run: {:.2} s ({:.0} rows/s)",
        started.elapsed().as_secs_f64(),
        rows as f64 / started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let start = http
        .post(format!("{base}/imports/{id}/start"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 202);
    let mut last_print = Instant::now();
    let done = loop {
        let view: Value = http
            .get(format!("{base}/imports/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["status"] == "completed" || view["status"] == "failed" {
            break view;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            println!("  {} of {rows} rows done", view["rows_done"]);
            last_print = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(1800) {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = started.elapsed();
    println!(
        "import job: {:.2} s, {:.0} rows/s; load {}",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64(),
        load_average()
    );

    println!("\nchecks:");
    let mut checks = support::Checks::default();
    let n = rows as u64;
    checks.check(
        done["status"] == "completed",
        &format!("the job completed ({})", done["status"]),
    );
    checks.check(
        done["total"] == n && done["rows_done"] == n,
        &format!(
            "total and rows_done are {n} ({}, {})",
            done["total"], done["rows_done"]
        ),
    );
    checks.check(
        done["rows_imported"] == imported,
        &format!("{imported} imported ({})", done["rows_imported"]),
    );
    checks.check(
        done["rows_skipped_duplicate"] == skipped,
        &format!(
            "{skipped} duplicates skipped ({})",
            done["rows_skipped_duplicate"]
        ),
    );
    checks.check(
        done["rows_failed"] == failed,
        &format!("{failed} refused ({})", done["rows_failed"]),
    );
    checks.check(done["rows_updated"] == 0, "nothing updated");
    checks.check(
        dry["valid"] == imported + skipped
            && dry["invalid"] == failed
            && dry["duplicates"] == skipped,
        &format!(
            "the dry run agreed (valid {}, invalid {}, duplicates {})",
            dry["valid"], dry["invalid"], dry["duplicates"]
        ),
    );
    let prospects = count(&db, "SELECT COUNT(*) FROM prospects").await;
    checks.check(
        prospects == (imported as usize + existing.len()) as i64,
        &format!(
            "{} prospects in the database ({prospects})",
            imported as usize + existing.len()
        ),
    );
    let errors = count(&db, "SELECT COUNT(*) FROM import_errors").await;
    checks.check(
        errors == failed as i64,
        &format!("one error row per refused row ({errors})"),
    );
    let events = count(
        &db,
        "SELECT COUNT(*) FROM events WHERE kind = 'import.completed'",
    )
    .await;
    checks.check(
        events == 1,
        &format!("one import.completed event ({events})"),
    );
    let report = http
        .get(format!("{base}/imports/{id}/errors.csv"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = report.lines().count() as u64;
    checks.check(
        lines == failed + 1,
        &format!(
            "errors.csv has a header and {failed} lines ({})",
            lines.saturating_sub(1)
        ),
    );

    server.stop().await;
    if checks.failed > 0 {
        println!("\n{} check(s) FAILED", checks.failed);
        std::process::exit(1);
    }
    println!("\nall checks passed");
}
