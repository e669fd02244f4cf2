//! WhatsApp sends through the full path: 5,000 paid text messages from 32 concurrent
//! senders, each charged once its status comes back (issue 9).
//!
//! ```text
//! cargo bench -p reference-server --bench whatsapp_sends
//!
//! EDGE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p reference-server --bench whatsapp_sends
//! ```
//!
//! Without a database URL it runs on SQLite (a file in a temporary directory); with
//! `EDGE_BENCH_DATABASE_URL` (or `EDGE_TEST_DATABASE_URL`) it creates a PostgreSQL
//! database of its own (`edge_bench_whatsapp`, dropped and created again on every run),
//! migrates it as the owner and runs the server as a runtime role that row-level security
//! applies to. The server is the real one, in process, on port 0, with the default pool
//! (`EDGE_DATABASE_MAX_CONNECTIONS`, passed through when set). The fake Graph
//! (`edge_whatsapp::fake::FakeGraph`) runs in the same process on its own port; the server
//! is pointed at it (`EDGE_WHATSAPP_BASE_URL`) and checks its webhooks with the same app
//! secret (`EDGE_WHATSAPP_APP_SECRET`, and a verify token). The fake accepts every send,
//! then posts two signed status webhooks for it, `sent` then `delivered`
//! (`Outcome::Delivered`), to the server's `/webhooks/whatsapp`, with no pause before each
//! (`status_delay` 0; its default of 20 ms would make the fake, not the server, the limit)
//! and, as always, one webhook at a time from its single delivery queue. Each business
//! number reports the `HIGH` throughput level (1,000 messages a second), so the server's
//! per-number pacer is set to that on connecting and does not hold sends back.
//!
//! Set-up (not timed), all through the HTTP API except creating the operator: the operator
//! creates a plan `bench-whatsapp` (service messages KES 0.20, 1,000,000 requests a minute
//! with bursts of 100,000 so the per-organization rate limit, which every request still
//! passes through, refuses none) and 4 organizations on it, each with its first admin
//! (invitation accepted), who connects the organization's own business number and creates
//! an API key with role `user`. The operator credits each wallet KES 500.00 (an
//! adjustment). Then 250 customers per organization (1,000 in all) each write to the
//! organization's number: the fake posts each inbound text as a signed webhook, which
//! creates the customer as a prospect and opens their 24-hour window.
//!
//! Timed: 5,000 `POST /api/v1/whatsapp/messages` with a `text`, to those customers by
//! phone number (`to`), 1,250 per organization, 5 per customer, round-robin over the
//! organizations, from 32 concurrent senders over keep-alive HTTP/1.1. Each request is
//! authenticated with its organization's **API key** (`Authorization: Bearer edge_live_…`),
//! which is what a tenant's own backend sending messages would use. On the server each
//! send is authenticated, rate-limited, metered, checks the window (open, so it passes),
//! reserves KES 0.20 in the wallet (a hold), is stored, goes to the fake Graph, which
//! accepts it, and is answered. Each answer must be 201; its latency (request sent to body
//! read) is recorded. Printed: total time, sends per second, p50, p95, p99 and max, and
//! the machine's 1-minute load average before and after (figures from a busy machine are
//! not comparable with a quiet one's).
//!
//! Then the bench waits (polling, at most 5 minutes) until every message's charge is
//! captured (the `sent` status does that), and then until every message is `delivered`
//! and every webhook processed; every 5 seconds it prints how many are captured and
//! delivered, how many webhooks the fake has posted and how many the server has stored but
//! not yet processed (which shows whether the fake's posting or the server's processing
//! is the limit). It prints how long each took after the last answer and the end-to-end
//! rate (sends / (sending + capturing)). It checks, printing each result:
//!
//! - 5,000 outbound messages stored, the ids the answers gave, 1,250 per organization;
//!   the fake Graph got exactly 5,000 sends and nothing it did not understand;
//! - every message `delivered`, charge `captured`, with its wamid, fee 20 minor units,
//!   one attempt, and its timeline `accepted`, `sent`, `delivered` once each;
//! - each message's hold `captured` for 20, naming its capture transfer, which is the only
//!   transfer of that hold and is keyed `whatsapp:{id}:capture`; 5,004 transfers in all
//!   (4 credits and 5,000 captures); one `whatsapp.message.charge_changed` event per message;
//! - every webhook (1,000 inbound and 10,000 statuses) answered 200 to the fake, stored
//!   and processed with outcome `processed`;
//! - each wallet's posted and available balance = KES 500.00 − 1,250 × 0.20 (nothing left
//!   held), and the wallet consistent with its entries (`SqlLedger::verify_wallet`).
//!
//! Any failed check (or an answer other than 201) makes the bench exit with status 1.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_core::{Currency, Ledger as _, OrgId};
use edge_server::entities::{
    events, ledger_holds, ledger_transfers, whatsapp_message_statuses, whatsapp_messages,
    whatsapp_webhooks,
};
use edge_server::ledger::SqlLedger;
use edge_server::{Application, Config};
use edge_whatsapp::fake::{FakeGraph, Outcome};
use reqwest::Method;
use sea_orm::{
    ColumnTrait as _, Database, DatabaseConnection, EntityTrait as _, PaginatorTrait as _,
    QueryFilter as _,
};
use secrecy::SecretString;
use serde_json::{Value, json};

const DB_NAME: &str = "edge_bench_whatsapp";
const ROLE: &str = "edge_bench_whatsapp_runtime";
const ORGS: usize = 4;
const CONTACTS_PER_ORG: usize = 250;
const SENDS: usize = 5_000;
const SENDERS: usize = 32;
/// The plan's price of a service message, in minor units (KES 0.20).
const PRICE_MINOR: i64 = 20;
/// Each wallet's credit before the sends, in minor units (KES 500.00).
const START_MINOR: i64 = 50_000;
const PLAN: &str = "bench-whatsapp";
const APP_SECRET: &str = "bench-whatsapp-app-secret";
const VERIFY_TOKEN: &str = "bench-whatsapp-verify-token";
const PASSWORD: &str = "correct horse battery staple";
const DEADLINE: Duration = Duration::from_secs(300);
/// How often the wait for captures prints where it stands.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// One organization as set up.
struct Org {
    id: OrgId,
    /// `Bearer <API key>`.
    authorization: Arc<str>,
    /// Its customers' WhatsApp ids (digits), who have written to it.
    customers: Vec<String>,
}

fn pnid(org: usize) -> String {
    format!("1130572489663{org:02}")
}

fn waba(org: usize) -> String {
    format!("1846309275{org:04}")
}

fn display(org: usize) -> String {
    format!("1555010{org:04}")
}

fn customer(org: usize, i: usize) -> String {
    format!("25471{org}{i:06}")
}

/// The 1-minute load average (Linux), to tell a busy machine's figures apart.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// The set-up's HTTP calls: `base` is `http://127.0.0.1:{port}/api/v1`.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// Calls `path` and insists on `expect`; returns the JSON body.
    async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, expect, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// The operator's plan, organizations, numbers, keys and credits (see the module docs).
async fn set_up(api: &Api, owner: &DatabaseConnection, fake: &FakeGraph) -> Vec<Org> {
    edge_server::identity::operator::create_operator(
        owner,
        chrono::Utc::now(),
        "ops@bench.example",
        "Ops",
        SecretString::from(PASSWORD),
    )
    .await
    .unwrap();
    let ops = api
        .call(
            None,
            Method::POST,
            "/auth/login",
            Some(json!({"email": "ops@bench.example", "password": PASSWORD})),
            200,
        )
        .await;
    let ops = ops["access_token"].as_str().unwrap().to_owned();
    api.call(
        Some(&ops),
        Method::POST,
        "/admin/plans",
        Some(json!({
            "code": PLAN,
            "name": "WhatsApp bench",
            "price": {"amount": "15000.00", "currency": "KES"},
            "period_days": 30,
            "grace_days": 7,
            "requests_per_minute": 1_000_000,
            "request_burst": 100_000,
            "seats": 10,
            "max_api_keys": 5,
            "message_prices": {"service": "0.20"},
        })),
        201,
    )
    .await;

    let mut orgs = Vec::with_capacity(ORGS);
    for o in 0..ORGS {
        let created = api
            .call(
                Some(&ops),
                Method::POST,
                "/admin/organizations",
                Some(json!({
                    "name": format!("Bench WhatsApp {o}"),
                    "plan": PLAN,
                    "admin_email": format!("admin@bench-wa-{o}.example"),
                })),
                201,
            )
            .await;
        let org_id: uuid::Uuid = created["organization"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let admin = api
            .call(
                None,
                Method::POST,
                "/invitations/accept",
                Some(json!({
                    "token": created["invitation"]["token"],
                    "name": "Admin",
                    "password": PASSWORD,
                })),
                201,
            )
            .await;
        let admin = admin["access_token"].as_str().unwrap().to_owned();
        let number = api
            .call(
                Some(&admin),
                Method::POST,
                "/whatsapp/numbers",
                Some(json!({
                    "phone_number_id": pnid(o),
                    "waba_id": waba(o),
                    "access_token": format!("EAAG-bench-token-{o:04}"),
                })),
                201,
            )
            .await;
        assert_eq!(number["status"], "connected");
        let key = api
            .call(
                Some(&admin),
                Method::POST,
                "/api-keys",
                Some(json!({"name": "order system", "role": "user"})),
                201,
            )
            .await;
        let key = key["key"].as_str().unwrap().to_owned();
        api.call(
            Some(&ops),
            Method::POST,
            &format!("/admin/organizations/{org_id}/wallet/adjustments"),
            Some(json!({
                "amount": {"amount": format!("{}.00", START_MINOR / 100), "currency": "KES"},
                "direction": "credit",
                "reason": "WhatsApp bench credit",
                "idempotency_key": format!("bench-wa-credit-{o}"),
            })),
            201,
        )
        .await;
        orgs.push(Org {
            id: OrgId::from_uuid(org_id),
            authorization: format!("Bearer {key}").into(),
            customers: (0..CONTACTS_PER_ORG).map(|i| customer(o, i)).collect(),
        });
    }

    // Every customer writes first: their window opens.
    for (o, org) in orgs.iter().enumerate() {
        for (i, wa_id) in org.customers.iter().enumerate() {
            fake.send_inbound_text(
                &pnid(o),
                wa_id,
                &format!("Customer {o}-{i}"),
                "Is my order ready?",
            );
        }
    }
    let inbound = (ORGS * CONTACTS_PER_ORG) as u64;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let open = edge_server::entities::whatsapp_conversations::Entity::find()
            .filter(
                edge_server::entities::whatsapp_conversations::Column::WindowExpiresAt
                    .gt(chrono::Utc::now() + chrono::TimeDelta::hours(23)),
            )
            .count(owner)
            .await
            .unwrap();
        let processed = whatsapp_webhooks::Entity::find()
            .filter(whatsapp_webhooks::Column::ProcessedAt.is_not_null())
            .count(owner)
            .await
            .unwrap();
        if open == inbound && processed == inbound {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the customers' windows did not open: {open} open, {processed} webhooks processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    orgs
}

/// Where the messages stand: `(captured, delivered, webhooks unprocessed)`.
async fn progress(db: &DatabaseConnection) -> (u64, u64, u64) {
    let outbound = || {
        whatsapp_messages::Entity::find()
            .filter(whatsapp_messages::Column::Direction.eq("outbound"))
    };
    let captured = outbound()
        .filter(whatsapp_messages::Column::ChargeStatus.eq("captured"))
        .count(db)
        .await
        .unwrap();
    let delivered = outbound()
        .filter(whatsapp_messages::Column::Status.eq("delivered"))
        .count(db)
        .await
        .unwrap();
    let unprocessed = whatsapp_webhooks::Entity::find()
        .filter(whatsapp_webhooks::Column::ProcessedAt.is_null())
        .count(db)
        .await
        .unwrap();
    (captured, delivered, unprocessed)
}

async fn verify(
    db: &DatabaseConnection,
    fake: &FakeGraph,
    orgs: &[Org],
    answered_ids: &HashSet<uuid::Uuid>,
) -> support::Checks {
    let mut checks = support::Checks::default();

    let messages: Vec<whatsapp_messages::Model> = whatsapp_messages::Entity::find()
        .filter(whatsapp_messages::Column::Direction.eq("outbound"))
        .all(db)
        .await
        .unwrap();
    let stored_ids: HashSet<uuid::Uuid> = messages.iter().map(|m| m.id).collect();
    let mut per_org: HashMap<uuid::Uuid, usize> = HashMap::new();
    for message in &messages {
        *per_org.entry(message.organization_id).or_default() += 1;
    }
    let per_org_ok = orgs
        .iter()
        .all(|o| per_org.get(&o.id.as_uuid()) == Some(&(SENDS / ORGS)));
    checks.check(
        messages.len() == SENDS && stored_ids == *answered_ids && per_org_ok,
        &format!(
            "outbound messages stored: {} (expected {SENDS}), the answered ids: {}, {} per organization: {}",
            messages.len(),
            stored_ids == *answered_ids,
            SENDS / ORGS,
            per_org_ok
        ),
    );
    let requests = fake.message_requests();
    let unmatched = fake.unmatched();
    checks.check(
        requests.len() == SENDS && unmatched.is_empty(),
        &format!(
            "sends the fake Graph received: {} (expected {SENDS}); requests it did not understand: {}",
            requests.len(),
            unmatched.len()
        ),
    );

    let mut statuses: HashMap<(&str, &str), usize> = HashMap::new();
    for message in &messages {
        *statuses
            .entry((message.status.as_str(), message.charge_status.as_str()))
            .or_default() += 1;
    }
    let settled = messages
        .iter()
        .filter(|m| {
            m.status == "delivered"
                && m.charge_status == "captured"
                && m.wamid.is_some()
                && m.fee_minor == PRICE_MINOR
                && m.attempts == 1
                && m.hold_id.is_some()
        })
        .count();
    checks.check(
        settled == SENDS,
        &format!(
            "delivered, captured, wamid, fee {PRICE_MINOR}, one attempt: {settled} of {SENDS} (status, charge: {statuses:?})"
        ),
    );

    let timeline = whatsapp_message_statuses::Entity::find()
        .all(db)
        .await
        .unwrap();
    let mut per_message: HashMap<uuid::Uuid, Vec<String>> = HashMap::new();
    for entry in &timeline {
        per_message
            .entry(entry.message_id)
            .or_default()
            .push(entry.status.clone());
    }
    let whole = messages
        .iter()
        .filter(|m| {
            per_message.get(&m.id).is_some_and(|t| {
                let mut t = t.clone();
                t.sort();
                t == ["accepted", "delivered", "sent"]
            })
        })
        .count();
    checks.check(
        whole == SENDS,
        &format!("timeline accepted, sent, delivered once each: {whole} of {SENDS}"),
    );

    let holds: HashMap<uuid::Uuid, ledger_holds::Model> = ledger_holds::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.id, h))
        .collect();
    let transfers = ledger_transfers::Entity::find().all(db).await.unwrap();
    let mut by_hold: HashMap<uuid::Uuid, Vec<&ledger_transfers::Model>> = HashMap::new();
    for transfer in &transfers {
        if let Some(hold) = transfer.hold_id {
            by_hold.entry(hold).or_default().push(transfer);
        }
    }
    let mut once = 0;
    for message in &messages {
        let Some(hold) = message.hold_id.and_then(|h| holds.get(&h)) else {
            continue;
        };
        let key = format!("whatsapp:{}:capture", message.id);
        if hold.status == "captured"
            && hold.organization_id == message.organization_id
            && hold.captured_minor == Some(PRICE_MINOR)
            && let Some([transfer]) = by_hold.get(&hold.id).map(Vec::as_slice)
            && hold.capture_transfer_id == Some(transfer.id)
            && transfer.amount_minor == PRICE_MINOR
            && transfer.idempotency_key == key
        {
            once += 1;
        }
    }
    checks.check(
        once == SENDS && transfers.len() == SENDS + ORGS,
        &format!(
            "charge captured exactly once (hold captured, one transfer keyed by the capture): {once} of {SENDS}; {} transfers in all (expected {})",
            transfers.len(),
            SENDS + ORGS
        ),
    );
    let charge_events = events::Entity::find()
        .filter(events::Column::Kind.eq("whatsapp.message.charge_changed"))
        .count(db)
        .await
        .unwrap();
    checks.check(
        charge_events == SENDS as u64,
        &format!("whatsapp.message.charge_changed events: {charge_events} (expected {SENDS})"),
    );

    let expected_webhooks = ORGS * CONTACTS_PER_ORG + 2 * SENDS;
    let deliveries = fake.deliveries();
    let answered = deliveries
        .iter()
        .filter(|d| d.response_status == Some(200))
        .count();
    checks.check(
        deliveries.len() == expected_webhooks && answered == expected_webhooks,
        &format!(
            "webhooks the fake posted: {} (expected {expected_webhooks}), answered 200: {answered}",
            deliveries.len()
        ),
    );
    let webhooks = whatsapp_webhooks::Entity::find().all(db).await.unwrap();
    let processed = webhooks
        .iter()
        .filter(|w| w.processed_at.is_some() && w.outcome.as_deref() == Some("processed"))
        .count();
    checks.check(
        webhooks.len() == expected_webhooks && processed == expected_webhooks,
        &format!(
            "webhooks stored: {} (expected {expected_webhooks}), processed with outcome `processed`: {processed}",
            webhooks.len()
        ),
    );

    let ledger = SqlLedger::new(db.clone(), Arc::new(edge_core::SystemClock));
    let expected = START_MINOR - (SENDS / ORGS) as i64 * PRICE_MINOR;
    let mut wallets_ok = 0;
    let mut consistent = 0;
    for org in orgs {
        let balance = ledger.balance(org.id).await.unwrap();
        if balance.posted.minor() == expected
            && balance.available.minor() == expected
            && balance.held.minor() == 0
            && balance.posted.currency() == Currency::Kes
        {
            wallets_ok += 1;
        } else {
            println!(
                "          org {}: posted {}, held {}, available {}; expected {expected}",
                org.id,
                balance.posted.minor(),
                balance.held.minor(),
                balance.available.minor()
            );
        }
        if ledger.verify_wallet(org.id).await.unwrap().is_consistent() {
            consistent += 1;
        }
    }
    checks.check(
        wallets_ok == orgs.len(),
        &format!(
            "wallet posted = available = {START_MINOR} - {} x {PRICE_MINOR} = {expected} minor, nothing held: {wallets_ok} of {}",
            SENDS / ORGS,
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

    let mut graph = FakeGraph::builder()
        .app_secret(SecretString::from(APP_SECRET))
        .default_outcome(Outcome::Delivered)
        .status_delay(Duration::ZERO);
    for o in 0..ORGS {
        graph = graph
            .number(pnid(o), waba(o), display(o))
            .number_throughput(pnid(o), "HIGH");
    }
    let fake = graph.start().await.unwrap();

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
        ("EDGE_WHATSAPP_BASE_URL", fake.base_url()),
        ("EDGE_WHATSAPP_APP_SECRET", APP_SECRET),
        ("EDGE_WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN),
        // Nothing here reaches the real Daraja.
        ("EDGE_MPESA_BASE_URL", "http://127.0.0.1:9"),
    ])
    .unwrap();
    let pool = config.database_max_connections;
    let app = Application::build(config).await.unwrap();
    let address = app.address();
    fake.set_webhook_url(format!("http://{address}/webhooks/whatsapp"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        stopped.await.ok();
    }));
    // The set-up and the checks read as the owner on PostgreSQL (row-level security does
    // not apply).
    let db = Database::connect(check_url.as_str()).await.unwrap();
    println!(
        "whatsapp_sends on {backend}: {SENDS} text sends to {} customers in {ORGS} organizations, \
         {SENDERS} senders, server pool {pool}",
        ORGS * CONTACTS_PER_ORG
    );

    // Set-up.
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(SENDERS)
        .http1_only()
        .build()
        .unwrap();
    let api = Api {
        http: http.clone(),
        base: format!("http://{address}/api/v1"),
    };
    let orgs = set_up(&api, &db, &fake).await;
    let url: Arc<str> = format!("http://{address}/api/v1/whatsapp/messages").into();
    let jobs: Arc<Vec<(Arc<str>, Bytes)>> = Arc::new(
        (0..SENDS)
            .map(|i| {
                let org = &orgs[i % ORGS];
                let to = &org.customers[(i / ORGS) % CONTACTS_PER_ORG];
                let body = json!({
                    "to": format!("+{to}"),
                    "text": {"body": format!("Order {i:05} is ready for pick-up.")},
                });
                (
                    org.authorization.clone(),
                    Bytes::from(serde_json::to_vec(&body).unwrap()),
                )
            })
            .collect(),
    );
    println!(
        "set-up: {:.1} s (not timed; {} inbound webhooks)",
        started.elapsed().as_secs_f64(),
        ORGS * CONTACTS_PER_ORG
    );

    // Timed: the sends.
    let load_before = load_average();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = Vec::with_capacity(SENDERS);
    for _ in 0..SENDERS {
        let http = http.clone();
        let jobs = Arc::clone(&jobs);
        let next = Arc::clone(&next);
        let url = Arc::clone(&url);
        senders.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(jobs.len() / SENDERS + 1);
            let mut failures = Vec::new();
            let mut ids: Vec<uuid::Uuid> = Vec::with_capacity(jobs.len() / SENDERS + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((authorization, body)) = jobs.get(i) else {
                    break;
                };
                let at = Instant::now();
                let response = http
                    .post(url.as_ref())
                    .header("authorization", authorization.as_ref())
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match response {
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        latencies.push(at.elapsed());
                        if status == 201 {
                            let id = serde_json::from_str::<Value>(&text)
                                .ok()
                                .and_then(|v| v["id"].as_str().and_then(|s| s.parse().ok()));
                            match id {
                                Some(id) => ids.push(id),
                                None => failures.push(format!("201 without an id: {text}")),
                            }
                        } else {
                            failures.push(format!("{status}: {text}"));
                        }
                    }
                    Err(err) => failures.push(err.to_string()),
                }
            }
            (latencies, failures, ids)
        }));
    }
    let mut latencies = Vec::with_capacity(jobs.len());
    let mut failures = Vec::new();
    let mut answered_ids: HashSet<uuid::Uuid> = HashSet::with_capacity(jobs.len());
    for sender in senders {
        let (l, f, ids) = sender.await.unwrap();
        latencies.extend(l);
        failures.extend(f);
        answered_ids.extend(ids);
    }
    let elapsed = started.elapsed();
    let last_answer = Instant::now();
    let load_after = load_average();
    latencies.sort();
    println!(
        "\n{} sends in {:.2} s: {:.0} sends/s",
        jobs.len(),
        elapsed.as_secs_f64(),
        jobs.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "send latency: p50 {:.2} ms   p95 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        support::percentile_ms(&latencies, 0.5),
        support::percentile_ms(&latencies, 0.95),
        support::percentile_ms(&latencies, 0.99),
        support::percentile_ms(&latencies, 1.0),
    );
    println!(
        "answered 201: {} of {}",
        jobs.len() - failures.len(),
        jobs.len()
    );
    for failure in failures.iter().take(5) {
        println!("  not 201: {failure}");
    }
    println!(
        "load average (1 min) before and after the sends: {load_before} / {load_after} ({} CPUs)",
        std::thread::available_parallelism().map_or(0, usize::from)
    );

    // Capture and delivery, after the last answer.
    let mut captured_after = None;
    let mut next_report = REPORT_EVERY;
    let (captured, delivered, unprocessed) = progress(&db).await;
    println!(
        "at the last answer: {captured} captured, {delivered} delivered, {} webhooks posted by the fake, {unprocessed} stored unprocessed",
        fake.deliveries().len()
    );
    let done_after = loop {
        let (captured, delivered, unprocessed) = progress(&db).await;
        if last_answer.elapsed() >= next_report {
            // Where the time goes: webhooks still to be posted by the fake, or stored and
            // waiting for the server to process them.
            println!(
                "  +{:>4.1} s: {captured} captured, {delivered} delivered, {} webhooks posted by the fake, {unprocessed} stored unprocessed",
                last_answer.elapsed().as_secs_f64(),
                fake.deliveries().len()
            );
            next_report += REPORT_EVERY;
        }
        if captured_after.is_none() && captured as usize >= SENDS {
            captured_after = Some(last_answer.elapsed());
        }
        if captured_after.is_some() && delivered as usize >= SENDS && unprocessed == 0 {
            break Some(last_answer.elapsed());
        }
        if last_answer.elapsed() > DEADLINE {
            println!(
                "not settled after {} s: {captured} captured, {delivered} delivered, {unprocessed} webhooks unprocessed",
                DEADLINE.as_secs()
            );
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if let Some(took) = captured_after {
        println!(
            "every charge captured {:.2} s after the last answer; end to end {:.2} s: {:.0} sends/s including capture",
            took.as_secs_f64(),
            (elapsed + took).as_secs_f64(),
            SENDS as f64 / (elapsed + took).as_secs_f64()
        );
    }
    if let Some(took) = done_after {
        println!(
            "every message delivered and every webhook processed {:.2} s after the last answer",
            took.as_secs_f64()
        );
    }

    println!("\nchecks:");
    let mut checks = verify(&db, &fake, &orgs, &answered_ids).await;
    checks.check(
        failures.is_empty(),
        &format!("every send answered 201 ({} not)", failures.len()),
    );
    checks.check(
        captured_after.is_some() && done_after.is_some(),
        "every charge captured and every message delivered within the deadline",
    );

    stop.send(()).ok();
    server.await.unwrap().unwrap();
    if checks.failed > 0 {
        println!("\n{} check(s) FAILED", checks.failed);
        std::process::exit(1);
    }
    println!("\nall checks passed");
}
