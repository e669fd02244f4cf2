//! CRM list latency on PostgreSQL at a million prospects.
//!
//! ```text
//! EDGE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p reference-server --bench crm_lists
//! ```
//!
//! Seeds 1,000,000 prospects across 100 organizations (one holding 200,000) with
//! `edge-server seed`'s generator into a database of its own (`edge_bench_crm`), starts
//! the real server on it as a runtime role behind row-level security, signs in as the
//! largest organization's admin, and times full HTTP requests (auth, rate limit, tenant
//! scope, query, JSON) of 50-row pages:
//!
//! - the first page and page 500 of a filtered list (one member's prospects), keyset;
//! - the same unfiltered;
//! - a search by name and a search by phone number.
//!
//! The baseline, in the same run: the deep page of the same filtered list fetched with
//! `OFFSET` in SQL (the API has no offset pagination), next to the keyset query of the
//! same page in SQL, so the ratio compares like with like. Each case is timed over
//! `EDGE_BENCH_SAMPLES` requests (default 300) after 20 warm-up requests; requests are
//! paced under the plan's rate limit (pacing is not timed).
//!
//! `EDGE_BENCH_REUSE=1` keeps an already seeded `edge_bench_crm` (seeding takes minutes).
//! Without a database URL the bench says it was skipped.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use edge_server::seed::{SeedPlan, SeededOrg};
use edge_server::{Application, Config};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::Value;

const DB_NAME: &str = "edge_bench_crm";
const ROLE: &str = "edge_bench_crm_runtime";
const PAGE: u32 = 50;
const DEEP_PAGE: u32 = 500;
/// Requests per second, under the enterprise plan's sustained limit (50/s).
const PACE: f64 = 40.0;

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1_000.0
}

struct Timing {
    name: String,
    p50: f64,
    p95: f64,
    rows: usize,
}

fn report(timing: &Timing) {
    println!(
        "{:<44} p50 {:>7.2} ms   p95 {:>7.2} ms   ({} rows/page)",
        timing.name, timing.p50, timing.p95, timing.rows
    );
}

async fn prepare(admin_url: &str, reuse: bool) -> (String, String, Option<Vec<SeededOrg>>) {
    let owner_url = support::url_with_db(admin_url, DB_NAME, None);
    let runtime_url = support::url_with_db(admin_url, DB_NAME, Some(ROLE));
    let admin = Database::connect(admin_url).await.unwrap();
    let exists = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT 1 AS x FROM pg_database WHERE datname = '{DB_NAME}'"),
        ))
        .await
        .unwrap()
        .is_some();
    if reuse && exists {
        println!("reusing the seeded database {DB_NAME}");
        return (owner_url, runtime_url, None);
    }
    admin.close().await.unwrap();
    support::fresh_postgres(admin_url, DB_NAME, ROLE).await;
    let owner = Database::connect(owner_url.as_str()).await.unwrap();
    let plan = SeedPlan {
        orgs: 100,
        prospects: 1_000_000,
        largest: Some(200_000),
        members: 5,
        relationship_every: 10,
        seed: 254,
        ..SeedPlan::default()
    };
    // Bulk load, then index: drop the CRM tables' secondary indexes (as the migrations
    // defined them) and build them again once the rows are in.
    let indexes = owner
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT indexname, indexdef FROM pg_indexes
             WHERE tablename IN ('prospects', 'relationships', 'record_tags')
               AND indexname NOT LIKE '%_pkey'"
                .to_owned(),
        ))
        .await
        .unwrap();
    let indexes: Vec<(String, String)> = indexes
        .iter()
        .map(|r| {
            (
                r.try_get("", "indexname").unwrap(),
                r.try_get("", "indexdef").unwrap(),
            )
        })
        .collect();
    for (name, _) in &indexes {
        support::exec(&owner, &format!("DROP INDEX {name}")).await;
    }
    let started = Instant::now();
    let mut done = 0;
    let orgs = edge_server::seed::run(
        &owner,
        &plan,
        edge_core::Clock::now(&edge_core::SystemClock),
        |org| {
            done += org.prospects;
            if done % 100_000 < org.prospects {
                println!(
                    "  seeded {done} prospects ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        },
    )
    .await
    .unwrap();
    println!(
        "  rows in ({:.0} s); building {} indexes",
        started.elapsed().as_secs_f64(),
        indexes.len()
    );
    for (_, definition) in &indexes {
        support::exec(
            &owner,
            &format!("SET maintenance_work_mem = '1GB'; {definition}"),
        )
        .await;
    }
    support::exec(&owner, "VACUUM ANALYZE").await;
    println!(
        "seeded {} prospects in {} organizations in {:.0} s",
        plan.prospects,
        orgs.len(),
        started.elapsed().as_secs_f64()
    );
    (owner_url, runtime_url, Some(orgs))
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    last: Instant,
}

impl Client {
    async fn get(&mut self, path: &str) -> (Duration, Value) {
        let gap = Duration::from_secs_f64(1.0 / PACE);
        let since = self.last.elapsed();
        if since < gap {
            tokio::time::sleep(gap - since).await;
        }
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        let elapsed = started.elapsed();
        self.last = Instant::now();
        assert_eq!(status, 200, "{path}: {body}");
        (elapsed, body)
    }

    async fn time(&mut self, name: &str, path: &str, samples: usize) -> Timing {
        for _ in 0..20 {
            self.get(path).await;
        }
        let mut times = Vec::with_capacity(samples);
        let mut rows = 0;
        for _ in 0..samples {
            let (elapsed, body) = self.get(path).await;
            rows = body["items"].as_array().map_or(0, Vec::len);
            times.push(elapsed);
        }
        Timing {
            name: name.to_owned(),
            p50: percentile(&mut times, 0.5),
            p95: percentile(&mut times, 0.95),
            rows,
        }
    }

    /// The cursor that opens page `page` of `query`.
    async fn cursor_of_page(&mut self, query: &str, page: u32) -> String {
        let mut cursor = String::new();
        for _ in 1..page {
            let path = if cursor.is_empty() {
                format!("/prospects?{query}&limit={PAGE}")
            } else {
                format!("/prospects?{query}&limit={PAGE}&cursor={cursor}")
            };
            let (_, body) = self.get(&path).await;
            cursor = body["next_cursor"].as_str().unwrap().to_owned();
        }
        cursor
    }
}

async fn time_sql(db: &DatabaseConnection, name: &str, sql: &str, samples: usize) -> Timing {
    let statement = Statement::from_string(DbBackend::Postgres, sql.to_owned());
    for _ in 0..20 {
        db.query_all_raw(statement.clone()).await.unwrap();
    }
    let mut times = Vec::with_capacity(samples);
    let mut rows = 0;
    for _ in 0..samples {
        let started = Instant::now();
        rows = db.query_all_raw(statement.clone()).await.unwrap().len();
        times.push(started.elapsed());
    }
    Timing {
        name: name.to_owned(),
        p50: percentile(&mut times, 0.5),
        p95: percentile(&mut times, 0.95),
        rows,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(admin_url) = support::admin_url() else {
        println!("crm_lists: SKIPPED (set EDGE_BENCH_DATABASE_URL or EDGE_TEST_DATABASE_URL)");
        return;
    };
    edge_server::install_crypto_provider();
    let samples: usize = std::env::var("EDGE_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let reuse = std::env::var("EDGE_BENCH_REUSE").is_ok_and(|v| v == "1");
    let (owner_url, runtime_url, _) = prepare(&admin_url, reuse).await;
    let owner = Database::connect(owner_url.as_str()).await.unwrap();

    // The largest organization and its admin and a member who owns a fifth of it.
    let row = owner
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT o.id::text AS org, u.email AS email,
                    (SELECT owner_id::text FROM prospects p WHERE p.organization_id = o.id
                     AND owner_id IS NOT NULL LIMIT 1) AS owner,
                    (SELECT phone FROM prospects p WHERE p.organization_id = o.id
                     AND phone IS NOT NULL ORDER BY id LIMIT 1 OFFSET 777) AS phone,
                    (SELECT COUNT(*) FROM prospects p WHERE p.organization_id = o.id) AS n
             FROM organizations o
             JOIN memberships m ON m.organization_id = o.id AND m.role = 'org_admin'
             JOIN users u ON u.id = m.user_id
             ORDER BY n DESC LIMIT 1"
                .to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let org: String = row.try_get("", "org").unwrap();
    let email: String = row.try_get("", "email").unwrap();
    let member: String = row.try_get("", "owner").unwrap();
    let phone: String = row.try_get("", "phone").unwrap();
    let total: i64 = row.try_get("", "n").unwrap();
    let owned: i64 = owner
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT COUNT(*) AS n FROM prospects WHERE organization_id = '{org}' AND owner_id = '{member}'"
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap();
    println!("largest organization: {total} prospects; the filtered list (one owner) has {owned}");

    let data_dir = tempfile::tempdir().unwrap();
    let config = Config::from_vars([
        ("EDGE_DATABASE_URL", runtime_url.as_str()),
        ("EDGE_MIGRATE_ON_START", "false"),
        ("EDGE_BIND", "127.0.0.1:0"),
        ("EDGE_DATA_DIR", data_dir.path().to_str().unwrap()),
        ("EDGE_LOG", "warn"),
    ])
    .unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://{}", app.address());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        stopped.await.ok();
    }));

    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": SeedPlan::default().password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().expect("login").to_owned();
    let mut client = Client {
        http,
        base,
        token,
        last: Instant::now(),
    };

    let filtered = format!("owner_id={member}");
    let deep_filtered = client.cursor_of_page(&filtered, DEEP_PAGE).await;
    let deep_all = client.cursor_of_page("sort=-created_at", DEEP_PAGE).await;
    let q_phone = format!("0{}", &phone[4..]);

    println!("\nHTTP, keyset pages of {PAGE} ({samples} requests each):");
    let http_timings = [
        client
            .time(
                "filtered (owner), first page",
                &format!("/prospects?{filtered}&limit={PAGE}"),
                samples,
            )
            .await,
        client
            .time(
                "filtered (owner), page 500",
                &format!("/prospects?{filtered}&limit={PAGE}&cursor={deep_filtered}"),
                samples,
            )
            .await,
        client
            .time(
                "unfiltered, first page",
                &format!("/prospects?sort=-created_at&limit={PAGE}"),
                samples,
            )
            .await,
        client
            .time(
                "unfiltered, page 500",
                &format!("/prospects?sort=-created_at&limit={PAGE}&cursor={deep_all}"),
                samples,
            )
            .await,
        client
            .time(
                "search by name (q=wanjiku kamau)",
                &format!("/prospects?q=wanjiku%20kamau&limit={PAGE}"),
                samples,
            )
            .await,
        client
            .time(
                &format!("search by phone (q={q_phone})"),
                &format!("/prospects?q={q_phone}&limit={PAGE}"),
                samples,
            )
            .await,
    ];
    for timing in &http_timings {
        report(timing);
    }

    // The deep page in SQL, keyset against offset, same filter and order.
    let offset = (DEEP_PAGE - 1) * PAGE;
    let boundary = owner
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT created_at::text AS at, id::text AS id FROM prospects
                 WHERE organization_id = '{org}' AND deleted_at IS NULL AND owner_id = '{member}'
                 ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET {}",
                offset - 1
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    let at: String = boundary.try_get("", "at").unwrap();
    let id: String = boundary.try_get("", "id").unwrap();
    let base_where =
        format!("organization_id = '{org}' AND deleted_at IS NULL AND owner_id = '{member}'");
    println!("\nSQL, page 500 of the filtered list ({samples} queries each):");
    let keyset = time_sql(
        &owner,
        "keyset (created_at, id) < cursor",
        &format!(
            "SELECT * FROM prospects WHERE {base_where} AND (created_at, id) < ('{at}', '{id}')
             ORDER BY created_at DESC, id DESC LIMIT {}",
            PAGE + 1
        ),
        samples,
    )
    .await;
    let offset_timing = time_sql(
        &owner,
        &format!("offset {offset} (baseline)"),
        &format!(
            "SELECT * FROM prospects WHERE {base_where}
             ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {offset}",
            PAGE + 1
        ),
        samples,
    )
    .await;
    report(&keyset);
    report(&offset_timing);
    println!(
        "\noffset / keyset at page 500: p50 {:.1}x, p95 {:.1}x",
        offset_timing.p50 / keyset.p50,
        offset_timing.p95 / keyset.p95
    );
    let worst = http_timings
        .iter()
        .filter(|t| !t.name.starts_with("search"))
        .map(|t| t.p95)
        .fold(0.0, f64::max);
    println!("worst keyset p95 over HTTP: {worst:.2} ms (target < 15 ms)");

    stop.send(()).ok();
    server.await.unwrap().unwrap();
}
