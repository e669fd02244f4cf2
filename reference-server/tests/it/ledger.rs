//! `SqlLedger` on a fresh database per test: the same scenarios as the in-memory ledger's
//! tests, the cached balances checked against the rows, and many writers on one wallet.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{TimeDelta, TimeZone as _, Utc};
use edge_core::{
    Account, Balance, CaptureRequest, Clock as _, Currency, Entry, Error, FixedClock, Hold, HoldId,
    HoldStatus, IdempotencyKey, InMemoryLedger, Ledger, LedgerEvent, LedgerOutcome, Money, OrgId,
    PageRequest, ReserveRequest, Transfer, TransferId, TransferRequest,
};
use edge_server::entities::{ledger_entries, ledger_holds, ledger_transfers, organizations};
use edge_server::ledger::SqlLedger;
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait as _, DatabaseConnection, EntityTrait as _,
    QueryFilter as _,
};

use crate::helpers::{Backend, PgDatabase, for_each_backend, postgres_admin_url, skip};

fn kes(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Kes)
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).unwrap()
}

/// A migrated database of its own, a ledger on it with a fixed clock, and one open wallet.
struct Fixture {
    clock: FixedClock,
    sql: SqlLedger,
    ledger: Arc<dyn Ledger>,
    db: DatabaseConnection,
    org: OrgId,
    _dir: tempfile::TempDir,
    // Dropped last: drops the PostgreSQL database.
    _pg: Option<PgDatabase>,
}

async fn connect(
    backend: Backend,
    connections: u32,
) -> (DatabaseConnection, tempfile::TempDir, Option<PgDatabase>) {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match backend {
        Backend::Sqlite => (crate::helpers::sqlite_url(dir.path()), None),
        Backend::Postgres => {
            let pg = PgDatabase::create(&postgres_admin_url().unwrap()).await;
            (pg.url.clone(), Some(pg))
        }
    };
    let config = crate::helpers::test_config(
        dir.path(),
        &url,
        &[(
            "EDGE_DATABASE_MAX_CONNECTIONS".to_owned(),
            connections.to_string(),
        )],
    );
    let db = edge_server::db::connect(&config).await.unwrap();
    edge_server::db::migrate(&db).await.unwrap();
    // On PostgreSQL the ledger runs as the server does: as a runtime role that row-level
    // security applies to (the owner, who migrated, bypasses it).
    let db = match &pg {
        Some(pg) => {
            let runtime = crate::helpers::test_config(
                dir.path(),
                &pg.runtime_url,
                &[(
                    "EDGE_DATABASE_MAX_CONNECTIONS".to_owned(),
                    connections.to_string(),
                )],
            );
            edge_server::db::connect(&runtime).await.unwrap()
        }
        None => db,
    };
    (db, dir, pg)
}

async fn new_org(db: &DatabaseConnection) -> OrgId {
    let org = OrgId::new();
    let now = Utc::now();
    organizations::Entity::insert(organizations::ActiveModel {
        id: Set(org.as_uuid()),
        slug: Set(format!("org-{}", org.as_uuid().simple())),
        name: Set("Test".to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    org
}

async fn fixture_with(backend: Backend, connections: u32) -> Fixture {
    let (db, dir, pg) = connect(backend, connections).await;
    let clock = FixedClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap());
    let sql = SqlLedger::new(db.clone(), Arc::new(clock.clone()));
    let ledger: Arc<dyn Ledger> = Arc::new(sql.clone());
    let org = new_org(&db).await;
    ledger.open_wallet(org, Currency::Kes).await.unwrap();
    Fixture {
        clock,
        sql,
        ledger,
        db,
        org,
        _dir: dir,
        _pg: pg,
    }
}

async fn fixture(backend: Backend) -> Fixture {
    fixture_with(backend, 4).await
}

impl Fixture {
    async fn other_org(&self) -> OrgId {
        let org = new_org(&self.db).await;
        self.ledger.open_wallet(org, Currency::Kes).await.unwrap();
        org
    }

    async fn top_up(&self, minor: i64, k: &str) -> LedgerOutcome<Transfer> {
        self.top_up_org(self.org, minor, k).await
    }

    async fn top_up_org(&self, org: OrgId, minor: i64, k: &str) -> LedgerOutcome<Transfer> {
        self.ledger
            .transfer(
                org,
                TransferRequest::new(
                    Account::MpesaClearing,
                    Account::Wallet(org),
                    kes(minor),
                    key(k),
                ),
            )
            .await
            .unwrap()
    }

    async fn reserve(&self, minor: i64, k: &str) -> Result<LedgerOutcome<Hold>, Error> {
        self.ledger
            .reserve(
                self.org,
                ReserveRequest::new(kes(minor), TimeDelta::minutes(10), key(k)),
            )
            .await
    }

    async fn capture(
        &self,
        hold: HoldId,
        minor: Option<i64>,
        k: &str,
    ) -> Result<LedgerOutcome<Hold>, Error> {
        self.ledger
            .capture(
                self.org,
                hold,
                CaptureRequest {
                    amount: minor.map(kes),
                    idempotency_key: key(k),
                },
            )
            .await
    }

    async fn release(&self, hold: HoldId, k: &str) -> Result<LedgerOutcome<Hold>, Error> {
        self.ledger.release(self.org, hold, key(k)).await
    }

    async fn balance(&self) -> Balance {
        self.ledger.balance(self.org).await.unwrap()
    }

    async fn all_entries(&self, org: OrgId) -> Vec<Entry> {
        all_entries(self.ledger.as_ref(), org).await
    }

    async fn assert_consistent(&self, org: OrgId) {
        let check = self.sql.verify_wallet(org).await.unwrap();
        assert!(check.is_consistent(), "{check:?}");
    }
}

async fn all_entries(ledger: &dyn Ledger, org: OrgId) -> Vec<Entry> {
    let mut page = PageRequest {
        limit: Some(3),
        cursor: None,
    };
    let mut all = Vec::new();
    loop {
        let got = ledger.entries(org, page.clone()).await.unwrap();
        all.extend(got.items);
        match got.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return all,
        }
    }
}

async fn entries_of_every_transfer_sum_to_zero(backend: Backend) {
    // The test reads and tries to rewrite rows of several organizations directly.
    edge_server::tenant_scope::cross_tenant(entries_sum_to_zero(backend)).await;
}

async fn entries_sum_to_zero(backend: Backend) {
    let f = fixture(backend).await;
    f.top_up(10_000, "t1").await;
    let hold = f.reserve(3_000, "r1").await.unwrap().value;
    f.capture(hold.id, Some(1_000), "c1").await.unwrap();
    f.ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::Wallet(f.org),
                Account::Adjustments,
                kes(500),
                key("a1"),
            ),
        )
        .await
        .unwrap();

    let entries = f.all_entries(f.org).await;
    assert_eq!(
        entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6],
        "oldest first, gapless"
    );
    let mut per_transfer: BTreeMap<TransferId, i64> = BTreeMap::new();
    for entry in &entries {
        *per_transfer.entry(entry.transfer_id).or_default() += entry.amount.minor();
        assert_eq!(
            entry.org, f.org,
            "platform entries carry the organization too"
        );
    }
    assert_eq!(per_transfer.len(), 3);
    assert!(per_transfer.values().all(|sum| *sum == 0));

    let balance = f.balance().await;
    assert_eq!(balance.posted, kes(10_000 - 1_000 - 500));
    assert_eq!(balance.held, kes(0));
    let wallet_sum: i64 = entries
        .iter()
        .filter(|e| e.account == Account::Wallet(f.org))
        .map(|e| e.amount.minor())
        .sum();
    assert_eq!(wallet_sum, balance.posted.minor());

    // Another organization's revenue adds to the same platform account.
    let other = f.other_org().await;
    f.top_up_org(other, 700, "t1").await;
    let platform = |account| {
        let ledger = Arc::clone(&f.ledger);
        async move {
            ledger
                .platform_balance(account, Currency::Kes)
                .await
                .unwrap()
        }
    };
    assert_eq!(platform(Account::MpesaClearing).await, kes(-10_700));
    assert_eq!(platform(Account::PlatformRevenue).await, kes(1_000));
    assert_eq!(platform(Account::Adjustments).await, kes(500));
    assert_eq!(platform(Account::PromotionalCredit).await, kes(0));
    assert_eq!(
        platform(Account::Wallet(f.org)).await,
        balance.posted,
        "a wallet's balance through the operator method"
    );
    f.assert_consistent(f.org).await;
    f.assert_consistent(other).await;

    // The database itself refuses to change or remove ledger rows.
    for sql in [
        "UPDATE ledger_entries SET amount_minor = amount_minor + 1",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_transfers SET amount_minor = 1",
        "DELETE FROM ledger_transfers",
        "UPDATE ledger_idempotency SET fingerprint = 'x'",
        "DELETE FROM ledger_idempotency",
    ] {
        let out = f.db.execute_unprepared(sql).await;
        assert!(
            out.as_ref()
                .is_err_and(|e| e.to_string().contains("append-only")),
            "{sql}: {out:?}"
        );
    }
    assert_eq!(f.all_entries(f.org).await, entries);
}

async fn available_never_goes_below_the_floor(backend: Backend) {
    let f = fixture(backend).await;
    f.top_up(1_000, "t1").await;
    f.reserve(600, "r1").await.unwrap();
    match f.reserve(401, "r2").await {
        Err(Error::InsufficientFunds {
            available,
            requested,
        }) => {
            assert_eq!(available, kes(400));
            assert_eq!(requested, kes(401));
        }
        other => panic!("unexpected {other:?}"),
    }
    let out = f
        .ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::Wallet(f.org),
                Account::Adjustments,
                kes(401),
                key("a1"),
            ),
        )
        .await;
    assert!(
        matches!(out, Err(Error::InsufficientFunds { .. })),
        "{out:?}"
    );
    assert_eq!(f.balance().await.available, kes(400));
    assert_eq!(f.all_entries(f.org).await.len(), 2);
    // The refused key was not recorded and can be retried.
    assert_eq!(
        f.reserve(400, "r2").await.unwrap().balance.available,
        kes(0)
    );

    // A credit limit lets available go that far below zero and no further.
    let balance = f.ledger.set_credit_limit(f.org, kes(500)).await.unwrap();
    assert_eq!(balance.credit_limit, kes(500));
    assert_eq!(
        f.reserve(500, "r3").await.unwrap().balance.available,
        kes(-500)
    );
    match f.reserve(1, "r4").await {
        Err(Error::InsufficientFunds { available, .. }) => assert_eq!(available, kes(0)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        f.ledger.set_credit_limit(f.org, kes(-1)).await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        f.ledger
            .set_credit_limit(f.org, Money::from_minor(5, Currency::Ugx))
            .await,
        Err(Error::Validation(_))
    ));
    f.ledger.set_credit_limit(f.org, kes(0)).await.unwrap();
    assert_eq!(f.balance().await.available, kes(-500));
    assert!(matches!(
        f.reserve(1, "r5").await,
        Err(Error::InsufficientFunds { .. })
    ));
    f.assert_consistent(f.org).await;
}

async fn a_hold_is_captured_or_released_exactly_once(backend: Backend) {
    let f = fixture(backend).await;
    f.top_up(1_000, "t1").await;
    let a = f.reserve(300, "ra").await.unwrap().value;
    let b = f.reserve(200, "rb").await.unwrap().value;
    assert_eq!(f.balance().await.held, kes(500));
    assert_eq!(f.ledger.hold(f.org, a.id).await.unwrap(), a);

    let captured = f.capture(a.id, Some(100), "ca").await.unwrap();
    assert_eq!(captured.value.status, HoldStatus::Captured);
    assert_eq!(captured.value.captured, Some(kes(100)));
    assert_eq!(captured.balance.posted, kes(900));
    assert_eq!(captured.balance.held, kes(200));
    assert_eq!(captured.balance.available, kes(700), "the rest is released");
    assert_eq!(f.ledger.hold(f.org, a.id).await.unwrap(), captured.value);
    let transfer = f
        .ledger
        .get_transfer(f.org, captured.value.capture_transfer_id.unwrap())
        .await
        .unwrap();
    assert_eq!(transfer.hold_id, Some(a.id));
    assert_eq!(transfer.idempotency_key, key("ca"), "keyed by the capture");
    assert_eq!(
        (transfer.from, transfer.to),
        (Account::Wallet(f.org), Account::PlatformRevenue)
    );

    let again = f.capture(a.id, Some(100), "ca").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, captured.value);
    assert_eq!(again.balance, captured.balance);
    for out in [
        f.release(a.id, "xa").await,
        f.capture(a.id, None, "ya").await,
    ] {
        match out {
            Err(Error::Conflict(message)) => assert_eq!(message, "hold already captured"),
            other => panic!("unexpected {other:?}"),
        }
    }

    let released = f.release(b.id, "xb").await.unwrap();
    assert_eq!(released.value.status, HoldStatus::Released);
    assert_eq!(released.balance.available, kes(900));
    assert!(f.release(b.id, "xb").await.unwrap().replayed);
    assert!(
        matches!(f.capture(b.id, None, "cb").await, Err(Error::Conflict(m)) if m == "hold already released")
    );
    assert_eq!(f.balance().await.posted, kes(900));
    assert_eq!(f.all_entries(f.org).await.len(), 4);

    let c = f.reserve(100, "rc").await.unwrap().value;
    assert!(matches!(
        f.capture(c.id, Some(101), "cc").await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        f.capture(c.id, Some(0), "cc").await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        f.capture(HoldId::new(), None, "cc").await,
        Err(Error::NotFound { entity: "hold" })
    ));
    // A full capture of the rest is still possible after the refusals.
    let full = f.capture(c.id, None, "cc").await.unwrap();
    assert_eq!(full.value.captured, Some(kes(100)));
    f.assert_consistent(f.org).await;
}

async fn holds_expire_whether_or_not_the_sweep_ran(backend: Backend) {
    let f = fixture(backend).await;
    f.top_up(1_000, "t1").await;
    let hold = f.reserve(400, "r1").await.unwrap().value;
    assert_eq!(hold.expires_at, f.clock.now() + TimeDelta::minutes(10));
    f.clock
        .advance(TimeDelta::minutes(10) - TimeDelta::seconds(1));
    assert!(f.ledger.expire_holds(10).await.unwrap().is_empty());
    assert_eq!(f.balance().await.held, kes(400));

    f.clock.advance(TimeDelta::seconds(1));
    assert_eq!(f.balance().await.held, kes(0), "expired before the sweep");
    let seen = f.ledger.hold(f.org, hold.id).await.unwrap();
    assert_eq!(seen.status, HoldStatus::Expired);
    assert_eq!(seen.ended_at, Some(hold.expires_at));
    assert!(
        matches!(f.capture(hold.id, None, "c1").await, Err(Error::Conflict(m)) if m == "hold already expired")
    );
    // Spending sees the expired hold as gone.
    assert_eq!(
        f.reserve(1_000, "r2").await.unwrap().balance.available,
        kes(0)
    );
    let expired = f.ledger.expire_holds(10).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, hold.id);
    assert_eq!(expired[0].status, HoldStatus::Expired);
    assert_eq!(expired[0].ended_at, Some(hold.expires_at));
    assert!(f.ledger.expire_holds(10).await.unwrap().is_empty());
    assert!(
        matches!(f.release(hold.id, "x1").await, Err(Error::Conflict(m)) if m == "hold already expired")
    );
    assert_eq!(f.balance().await.posted, kes(1_000));
    assert_eq!(f.balance().await.held, kes(1_000));
    f.assert_consistent(f.org).await;

    // Oldest expiry first, in batches, across organizations.
    let other = f.other_org().await;
    f.top_up_org(other, 100, "t1").await;
    let first = f
        .ledger
        .reserve(
            other,
            ReserveRequest::new(kes(1), TimeDelta::minutes(1), key("o1")),
        )
        .await
        .unwrap()
        .value;
    f.clock.advance(TimeDelta::seconds(1));
    let second = f
        .ledger
        .reserve(
            other,
            ReserveRequest::new(kes(1), TimeDelta::minutes(1), key("o2")),
        )
        .await
        .unwrap()
        .value;
    f.clock.advance(TimeDelta::hours(1));
    let batch = f.ledger.expire_holds(1).await.unwrap();
    assert_eq!(
        batch.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![first.id]
    );
    let batch = f.ledger.expire_holds(1).await.unwrap();
    assert_eq!(batch[0].id, second.id);
    let rest = f.ledger.expire_holds(10).await.unwrap();
    assert_eq!(rest.len(), 1, "the 1000 reserved in the first wallet");
    assert!(f.ledger.expire_holds(10).await.unwrap().is_empty());
    f.assert_consistent(f.org).await;
    f.assert_consistent(other).await;
}

async fn a_key_replays_or_is_refused(backend: Backend) {
    let f = fixture(backend).await;
    let first = f.top_up(1_000, "k1").await;
    assert!(!first.replayed);
    f.top_up(50, "k2").await;
    let again = f.top_up(1_000, "k1").await;
    assert!(again.replayed);
    assert_eq!(again.value, first.value);
    assert_eq!(again.balance, first.balance, "the first balance");
    assert_eq!(f.balance().await.posted, kes(1_050), "applied once");

    let other_amount = f
        .ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::Wallet(f.org),
                kes(999),
                key("k1"),
            ),
        )
        .await;
    assert!(matches!(other_amount, Err(Error::IdempotencyMismatch)));
    let other_metadata = f
        .ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::Wallet(f.org),
                kes(1_000),
                key("k1"),
            )
            .metadata(serde_json::json!({"receipt": "X"})),
        )
        .await;
    assert!(matches!(other_metadata, Err(Error::IdempotencyMismatch)));
    assert!(matches!(
        f.reserve(1_000, "k1").await,
        Err(Error::IdempotencyMismatch)
    ));
    let hold = f.reserve(10, "r1").await.unwrap().value;
    assert!(matches!(
        f.release(hold.id, "r1").await,
        Err(Error::IdempotencyMismatch)
    ));
    f.capture(hold.id, None, "c1").await.unwrap();
    assert!(matches!(
        f.capture(hold.id, Some(10), "c1").await,
        Err(Error::IdempotencyMismatch)
    ));
    assert_eq!(f.all_entries(f.org).await.len(), 6);

    // Metadata round-trips through storage, whatever the key order.
    let meta = f
        .ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::PromotionalCredit,
                Account::Wallet(f.org),
                kes(5),
                key("m1"),
            )
            .metadata(serde_json::json!({"b": 1, "a": [1.5, {"y": null}]})),
        )
        .await
        .unwrap();
    let replay = f
        .ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::PromotionalCredit,
                Account::Wallet(f.org),
                kes(5),
                key("m1"),
            )
            .metadata(serde_json::json!({"a": [1.5, {"y": null}], "b": 1})),
        )
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.value, meta.value);
    assert_eq!(
        f.ledger.get_transfer(f.org, meta.value.id).await.unwrap(),
        meta.value
    );

    // Keys are scoped per organization.
    let other = f.other_org().await;
    assert!(!f.top_up_org(other, 7, "k1").await.replayed);
    f.assert_consistent(f.org).await;
}

async fn the_low_balance_event_fires_on_crossing(backend: Backend) {
    let f = fixture(backend).await;
    f.top_up(1_000, "t1").await;
    f.ledger
        .set_low_balance_threshold(f.org, Some(kes(500)))
        .await
        .unwrap();
    assert!(f.reserve(500, "r1").await.unwrap().events.is_empty());
    let crossed = f.reserve(1, "r2").await.unwrap();
    assert_eq!(
        crossed.events,
        vec![LedgerEvent::LowBalance {
            org: f.org,
            available: kes(499),
            threshold: kes(500)
        }]
    );
    assert!(f.reserve(1, "r3").await.unwrap().events.is_empty());
    let replay = f.reserve(1, "r2").await.unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.events, crossed.events);

    f.top_up(100, "t2").await;
    let out = f
        .ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::Wallet(f.org),
                Account::Adjustments,
                kes(200),
                key("a1"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(out.events.len(), 1);
    // Changing the threshold emits nothing and shows in the balance.
    let balance = f
        .ledger
        .set_low_balance_threshold(f.org, None)
        .await
        .unwrap();
    assert_eq!(balance.low_balance_threshold, None);
    assert!(matches!(
        f.ledger
            .set_low_balance_threshold(f.org, Some(Money::from_minor(1, Currency::Ugx)))
            .await,
        Err(Error::Validation(_))
    ));
}

async fn another_tenants_wallet_and_holds_are_not_found(backend: Backend) {
    let f = fixture(backend).await;
    let other = f.other_org().await;
    f.top_up_org(other, 1_000, "t1").await;
    let theirs = f
        .ledger
        .reserve(
            other,
            ReserveRequest::new(kes(10), TimeDelta::minutes(1), key("r1")),
        )
        .await
        .unwrap();
    let theirs_transfer = f.top_up_org(other, 1, "t2").await.value;

    let steal = f
        .ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::Wallet(other),
                Account::Wallet(f.org),
                kes(10),
                key("s1"),
            ),
        )
        .await;
    assert!(matches!(steal, Err(Error::NotFound { entity: "wallet" })));
    assert!(matches!(
        f.capture(theirs.value.id, None, "c1").await,
        Err(Error::NotFound { entity: "hold" })
    ));
    assert!(matches!(
        f.release(theirs.value.id, "x1").await,
        Err(Error::NotFound { entity: "hold" })
    ));
    assert!(matches!(
        f.ledger.hold(f.org, theirs.value.id).await,
        Err(Error::NotFound { entity: "hold" })
    ));
    assert!(matches!(
        f.ledger.get_transfer(f.org, theirs_transfer.id).await,
        Err(Error::NotFound { entity: "transfer" })
    ));
    let platform_only = f
        .ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::PlatformRevenue,
                kes(10),
                key("p1"),
            ),
        )
        .await;
    assert!(matches!(platform_only, Err(Error::Validation(_))));
    let nobody = OrgId::new();
    assert!(matches!(
        f.ledger.balance(nobody).await,
        Err(Error::NotFound { entity: "wallet" })
    ));
    assert!(matches!(
        f.ledger
            .reserve(
                nobody,
                ReserveRequest::new(kes(1), TimeDelta::minutes(1), key("r"))
            )
            .await,
        Err(Error::NotFound { entity: "wallet" })
    ));
    assert!(matches!(
        f.ledger.entries(nobody, PageRequest::first()).await,
        Err(Error::NotFound { entity: "wallet" })
    ));
    assert!(matches!(
        f.ledger.hold(nobody, theirs.value.id).await,
        Err(Error::NotFound { entity: "wallet" })
    ));
    assert!(matches!(
        f.ledger.open_wallet(nobody, Currency::Kes).await,
        Err(Error::NotFound {
            entity: "organization"
        })
    ));
    assert_eq!(f.ledger.balance(other).await.unwrap().held, kes(10));
    assert!(f.all_entries(f.org).await.is_empty());
}

async fn wallets_open_once_and_amounts_are_checked(backend: Backend) {
    let f = fixture(backend).await;
    assert!(f.ledger.open_wallet(f.org, Currency::Kes).await.is_ok());
    assert!(matches!(
        f.ledger.open_wallet(f.org, Currency::Ugx).await,
        Err(Error::Conflict(_))
    ));
    for amount in [kes(0), kes(-5), Money::from_minor(5, Currency::Ugx)] {
        let out = f
            .ledger
            .transfer(
                f.org,
                TransferRequest::new(
                    Account::MpesaClearing,
                    Account::Wallet(f.org),
                    amount,
                    key("t"),
                ),
            )
            .await;
        assert!(
            matches!(out, Err(Error::Validation(_))),
            "{amount}: {out:?}"
        );
    }
    let big = f
        .ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::Wallet(f.org),
                Money::from_minor(i64::MAX, Currency::Kes),
                key("big"),
            ),
        )
        .await;
    assert!(big.is_ok(), "{big:?}");
    let overflow = f
        .ledger
        .transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::Wallet(f.org),
                kes(1),
                key("t3"),
            ),
        )
        .await;
    assert!(
        matches!(overflow, Err(Error::Validation(_))),
        "{overflow:?}"
    );
    let zero_timeout = f
        .ledger
        .reserve(
            f.org,
            ReserveRequest::new(kes(1), TimeDelta::zero(), key("r")),
        )
        .await;
    assert!(matches!(zero_timeout, Err(Error::Validation(_))));
    f.assert_consistent(f.org).await;
}

async fn concurrent_callers_never_overspend_and_one_key_applies_once(backend: Backend) {
    let f = fixture_with(backend, 8).await;
    f.top_up(500, "t1").await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let ledger = Arc::clone(&f.ledger);
        let org = f.org;
        tasks.push(tokio::spawn(async move {
            let k = if i % 2 == 0 {
                "same".to_owned()
            } else {
                format!("r{i}")
            };
            ledger
                .reserve(
                    org,
                    ReserveRequest::new(kes(100), TimeDelta::minutes(5), key(&k)),
                )
                .await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let first_calls = results
        .iter()
        .filter(|r| matches!(r, Ok(o) if !o.replayed))
        .count();
    assert_eq!(first_calls, 5, "500 covers exactly five holds of 100");
    for r in &results {
        assert!(
            matches!(r, Ok(_) | Err(Error::InsufficientFunds { .. })),
            "{r:?}"
        );
    }
    let shared: Vec<_> = results
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, r)| r.as_ref().map(|o| o.value.id).ok())
        .collect();
    assert!(shared.windows(2).all(|w| w[0] == w[1]), "{shared:?}");
    assert_eq!(f.balance().await.available, kes(0));
    f.assert_consistent(f.org).await;
}

for_each_backend!(
    entries_of_every_transfer_sum_to_zero,
    available_never_goes_below_the_floor,
    a_hold_is_captured_or_released_exactly_once,
    holds_expire_whether_or_not_the_sweep_ran,
    a_key_replays_or_is_refused,
    the_low_balance_event_fires_on_crossing,
    another_tenants_wallet_and_holds_are_not_found,
    wallets_open_once_and_amounts_are_checked,
    concurrent_callers_never_overspend_and_one_key_applies_once,
);

/// `tasks` writers do `ops` calls each on one wallet with little balance: reserve, then
/// capture (in part or whole) or release, and now and then a top-up or a charge. Refusals
/// for insufficient funds are expected. Afterwards, and after every hold has expired and
/// been swept, the books must balance.
async fn hammer_one_wallet(f: &Fixture, tasks: usize, ops: usize) {
    f.top_up(5_000, "seed").await;
    let min_available = Arc::new(AtomicI64::new(i64::MAX));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let ledger = Arc::clone(&f.ledger);
        let org = f.org;
        let min_available = Arc::clone(&min_available);
        handles.push(tokio::spawn(async move {
            let mut done = 0;
            let mut n = 0_u64;
            let mut refused = 0_u64;
            let seen = |b: &Balance| {
                min_available.fetch_min(b.available.minor(), Ordering::Relaxed);
            };
            while done < ops {
                n += 1;
                let k = |what: &str| key(&format!("{t}-{n}-{what}"));
                let pick = rand::random::<u32>() % 20;
                if pick == 0 {
                    let out = ledger
                        .transfer(
                            org,
                            TransferRequest::new(
                                Account::MpesaClearing,
                                Account::Wallet(org),
                                kes(300),
                                k("top"),
                            ),
                        )
                        .await
                        .unwrap();
                    seen(&out.balance);
                    done += 1;
                    continue;
                }
                if pick == 1 {
                    match ledger
                        .transfer(
                            org,
                            TransferRequest::new(
                                Account::Wallet(org),
                                Account::PlatformRevenue,
                                kes(50),
                                k("charge"),
                            ),
                        )
                        .await
                    {
                        Ok(out) => seen(&out.balance),
                        Err(Error::InsufficientFunds { .. }) => refused += 1,
                        Err(err) => panic!("charge: {err:?}"),
                    }
                    done += 1;
                    continue;
                }
                let amount = 10 + i64::from(rand::random::<u32>() % 90);
                let hold = match ledger
                    .reserve(
                        org,
                        ReserveRequest::new(kes(amount), TimeDelta::minutes(5), k("r")),
                    )
                    .await
                {
                    Ok(out) => {
                        seen(&out.balance);
                        out.value
                    }
                    Err(Error::InsufficientFunds { available, .. }) => {
                        assert!(!available.is_negative());
                        refused += 1;
                        done += 1;
                        continue;
                    }
                    Err(err) => panic!("reserve: {err:?}"),
                };
                done += 1;
                if done >= ops {
                    break; // left active: ended by the sweep below
                }
                let out = match pick % 4 {
                    0 => ledger.release(org, hold.id, k("x")).await,
                    1 => {
                        ledger
                            .capture(
                                org,
                                hold.id,
                                CaptureRequest {
                                    amount: Some(kes(amount / 2)),
                                    idempotency_key: k("c"),
                                },
                            )
                            .await
                    }
                    _ => {
                        ledger
                            .capture(
                                org,
                                hold.id,
                                CaptureRequest {
                                    amount: None,
                                    idempotency_key: k("c"),
                                },
                            )
                            .await
                    }
                };
                let out = out.unwrap();
                seen(&out.balance);
                done += 1;
            }
            refused
        }));
    }
    let mut refused = 0;
    for h in handles {
        refused += h.await.unwrap();
    }
    eprintln!(
        "{tasks} tasks x {ops} ops: {refused} refused for insufficient funds, min available {}",
        min_available.load(Ordering::Relaxed)
    );
    assert!(
        min_available.load(Ordering::Relaxed) >= 0,
        "available went negative"
    );
    assert!(f.balance().await.available.minor() >= 0);
    f.assert_consistent(f.org).await;

    // End every hold: the rest expire.
    f.clock.advance(TimeDelta::minutes(6));
    while !f.ledger.expire_holds(500).await.unwrap().is_empty() {}
    f.assert_consistent(f.org).await;
    let holds = ledger_holds::Entity::find()
        .filter(ledger_holds::Column::OrganizationId.eq(f.org.as_uuid()))
        .all(&f.db)
        .await
        .unwrap();
    let transfers = ledger_transfers::Entity::find()
        .filter(ledger_transfers::Column::OrganizationId.eq(f.org.as_uuid()))
        .all(&f.db)
        .await
        .unwrap();
    let mut captures: HashMap<uuid::Uuid, Vec<&ledger_transfers::Model>> = HashMap::new();
    for t in &transfers {
        if let Some(h) = t.hold_id {
            captures.entry(h).or_default().push(t);
        }
    }
    let mut captured_total = 0;
    for hold in &holds {
        assert!(hold.ended_at.is_some(), "{hold:?}");
        let caps = captures.get(&hold.id).map_or(0, Vec::len);
        match hold.status.as_str() {
            "captured" => {
                assert_eq!(caps, 1, "{hold:?}");
                let t = captures[&hold.id][0];
                assert_eq!(Some(t.id), hold.capture_transfer_id);
                assert_eq!(Some(t.amount_minor), hold.captured_minor);
                assert!(t.amount_minor <= hold.amount_minor);
                captured_total += t.amount_minor;
            }
            "released" | "expired" => assert_eq!(caps, 0, "{hold:?}"),
            other => panic!("hold still {other}"),
        }
    }
    assert_eq!(
        captures.len() as u64,
        holds.iter().filter(|h| h.status == "captured").count() as u64
    );
    let balance = f.balance().await;
    assert_eq!(balance.held, kes(0));
    assert!(balance.posted.minor() >= 0);
    let entries = ledger_entries::Entity::find()
        .filter(ledger_entries::Column::OrganizationId.eq(f.org.as_uuid()))
        .all(&f.db)
        .await
        .unwrap();
    let wallet_sum: i64 = entries
        .iter()
        .filter(|e| e.account == Account::Wallet(f.org).to_string())
        .map(|e| e.amount_minor)
        .sum();
    assert_eq!(wallet_sum, balance.posted.minor(), "posted == sum(entries)");
    let total: i64 = entries.iter().map(|e| e.amount_minor).sum();
    assert_eq!(total, 0, "every transfer balances");
    let revenue_from_holds: i64 = entries
        .iter()
        .filter(|e| e.hold_id.is_some() && e.amount_minor > 0)
        .map(|e| e.amount_minor)
        .sum();
    assert_eq!(revenue_from_holds, captured_total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_writers_on_one_hot_wallet_postgres() {
    if postgres_admin_url().is_none() {
        skip(module_path!(), "EDGE_TEST_DATABASE_URL is not set");
        return;
    }
    let f = fixture_with(Backend::Postgres, 32).await;
    let started = std::time::Instant::now();
    edge_server::tenant_scope::in_organization(f.org, hammer_one_wallet(&f, 64, 500)).await;
    eprintln!("64 x 500 on PostgreSQL took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_writers_on_one_hot_wallet_sqlite() {
    let f = fixture_with(Backend::Sqlite, 8).await;
    edge_server::tenant_scope::in_organization(f.org, hammer_one_wallet(&f, 16, 40)).await;
}

/// Random sequences of calls give the same results on SQLite as on the in-memory ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agrees_with_the_in_memory_ledger_on_random_sequences() {
    let f = fixture(Backend::Sqlite).await;
    let memory = InMemoryLedger::new(Arc::new(f.clock.clone()));
    memory.open_wallet(f.org, Currency::Kes).await.unwrap();
    let ledgers: [&dyn Ledger; 2] = [f.ledger.as_ref(), &memory];
    let mut holds: Vec<[HoldId; 2]> = Vec::new();
    let brief = |r: Result<LedgerOutcome<Hold>, Error>| match r {
        Ok(o) => Ok((
            o.value.status,
            o.value.amount,
            o.value.captured,
            o.value.expires_at,
            o.balance,
            o.events,
            o.replayed,
        )),
        Err(e) => Err(format!("{e:?}")),
    };
    for step in 0..300_u32 {
        let pick = rand::random::<u32>() % 10;
        let amount = kes(i64::from(rand::random::<u32>() % 400) + i64::from(pick == 9) * -50);
        // Reuse keys now and then, with the same or other parameters.
        let k = key(&format!("k{}", rand::random::<u32>() % 120));
        match pick {
            0 | 1 => {
                let mut out = Vec::new();
                for l in ledgers {
                    let r = l
                        .transfer(
                            f.org,
                            TransferRequest::new(
                                Account::MpesaClearing,
                                Account::Wallet(f.org),
                                amount,
                                k.clone(),
                            ),
                        )
                        .await;
                    out.push(
                        r.map(|o| (o.value.amount, o.balance, o.events, o.replayed))
                            .map_err(|e| format!("{e:?}")),
                    );
                }
                assert_eq!(out[0], out[1], "step {step}");
            }
            2 | 3 | 4 | 9 => {
                let mut out = Vec::new();
                let mut ids = Vec::new();
                for l in ledgers {
                    let r = l
                        .reserve(
                            f.org,
                            ReserveRequest::new(amount, TimeDelta::seconds(90), k.clone()),
                        )
                        .await;
                    ids.push(r.as_ref().ok().map(|o| o.value.id));
                    out.push(brief(r));
                }
                assert_eq!(out[0], out[1], "step {step}");
                if let [Some(a), Some(b)] = ids[..]
                    && !holds.contains(&[a, b])
                {
                    holds.push([a, b]);
                }
            }
            5..=7 if !holds.is_empty() => {
                let pair = holds[(rand::random::<u32>() as usize) % holds.len()];
                let partial = rand::random::<bool>().then_some(amount);
                let mut out = Vec::new();
                for (i, l) in ledgers.into_iter().enumerate() {
                    let r = if pick == 7 {
                        l.release(f.org, pair[i], k.clone()).await
                    } else {
                        l.capture(
                            f.org,
                            pair[i],
                            CaptureRequest {
                                amount: partial,
                                idempotency_key: k.clone(),
                            },
                        )
                        .await
                    };
                    out.push(brief(r));
                }
                // Fingerprints name the hold id, which differs between the two ledgers:
                // a reused key is a mismatch on both, or a replay on both.
                assert_eq!(out[0], out[1], "step {step}");
            }
            _ => {
                f.clock.advance(TimeDelta::seconds(20));
                let a = f.ledger.expire_holds(1_000).await.unwrap().len();
                let b = memory.expire_holds(1_000).await.unwrap().len();
                assert_eq!(a, b, "step {step}");
            }
        }
        assert_eq!(
            f.ledger.balance(f.org).await.unwrap(),
            memory.balance(f.org).await.unwrap(),
            "step {step}"
        );
    }
    let a = all_entries(f.ledger.as_ref(), f.org).await;
    let b = all_entries(&memory, f.org).await;
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.sequence, x.account, x.amount, x.created_at),
            (y.sequence, y.account, y.amount, y.created_at)
        );
    }
    f.assert_consistent(f.org).await;
}
