//! [`SqlLedger`]: the wallet [`Ledger`] on SQLite or PostgreSQL through sea-orm.
//!
//! It mirrors [`edge_core::InMemoryLedger`] call for call (the same check order, the same
//! errors and messages, the same outcomes); only the storage differs.
//!
//! # Locking
//!
//! Every call that changes a wallet is one database transaction whose **first statement
//! locks the wallet row** (`SELECT … FOR UPDATE` on PostgreSQL; on SQLite the transaction
//! is opened with `BEGIN IMMEDIATE` and the first statement is an `UPDATE … RETURNING`, so
//! the write lock is taken at once and `busy_timeout` applies instead of a deferred
//! read-to-write upgrade failing with `SQLITE_BUSY`). All later reads of the transaction
//! (the idempotency record, the hold, the holds past expiry) run after the lock is held;
//! under PostgreSQL's READ COMMITTED each of them takes a new snapshot, so it sees
//! everything the previous holder of the lock committed. The organization's calls are
//! therefore serialized, and calls of different organizations never wait for each other.
//! Errors that mean "try again" (serialization failure, deadlock, `SQLITE_BUSY`) are
//! retried a bounded number of times with a short back-off; nothing else is retried.
//!
//! # Batching
//!
//! By default ([`SqlLedger::with_batching`]) transfers, reserves, captures and releases
//! that arrive while a transaction on the same wallet is running are queued and then run
//! together, in arrival order, in one transaction: one lock, one commit, each call with
//! its own idempotency probe, checks, writes and result, exactly as if it ran alone right
//! after the previous one. A refusal answers only its own call. Any other failure rolls
//! the batch back and every call in it runs again in a transaction of its own (a call
//! that did commit is then found by its idempotency key). The first caller on a quiet
//! wallet runs its batch in its own task; later batches are drained by a spawned task.
//! Share one `SqlLedger` per process: the queues live in it.
//!
//! # Storage
//!
//! - The wallet row caches `posted_minor` (the sum of the wallet's entries) and
//!   `held_minor` (the sum of the holds *recorded* as active), both updated in the same
//!   transaction as the rows they summarize. A hold is live only while `now < expires_at`,
//!   so the held balance is `held_minor` minus the active holds already past expiry;
//!   [`Ledger::expire_holds`] records those and lowers `held_minor` under the wallet lock.
//!   [`SqlLedger::verify_wallet`] recomputes everything from the rows.
//! - Entries and transfers are only inserted. A capture posts one transfer
//!   wallet → platform revenue, keyed by the capture's idempotency key. Entry sequence
//!   numbers come from the wallet's `next_seq`, assigned under the wallet lock, so they
//!   are gapless per organization.
//! - The idempotency record stores the call's fingerprint and the whole first
//!   [`LedgerOutcome`] as JSON; only successful calls are recorded.
//! - Platform accounts have no balance row (one would be a lock shared by every
//!   organization); [`Ledger::platform_balance`] sums their entries. Consequently, unlike
//!   the in-memory ledger, a posting is not refused when a *platform* account's balance
//!   would leave the `i64` range (wallet balances are checked as there).
//! - Times are stored with microsecond precision; the clock's reading is truncated to
//!   microseconds once per call so that stored rows and returned values agree.

use crate::db::db_err;
use crate::db::{begin_read, begin_write};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use edge_core::ledger::Fingerprint;
use edge_core::ledger::rules::{
    check_amount, check_currency, check_funds, check_transfer, crossing,
};
use edge_core::{
    Account, Balance, BoxFuture, CaptureRequest, Currency, Entry, EntryId, Error, Hold, HoldId,
    HoldStatus, IdempotencyKey, Ledger, LedgerEvent, LedgerOutcome, Money, OrgId, Page,
    PageRequest, ReserveRequest, SharedClock, Transfer, TransferId, TransferRequest,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter as _, QueryOrder as _,
    QuerySelect as _, RuntimeErr, SqlErr, Statement, Value,
};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::entities::{
    ledger_entries, ledger_holds, ledger_idempotency, ledger_transfers, ledger_wallets,
};

type Result<T, E = Error> = std::result::Result<T, E>;

/// How many times a call is attempted when the database asks for a retry.
const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// The wallet ledger over a sea-orm connection. Cheap to clone.
#[derive(Clone)]
pub struct SqlLedger {
    db: DatabaseConnection,
    clock: SharedClock,
    max_attempts: u32,
    /// Calls waiting for their wallet's next batch; `None` when batching is off.
    queues: Option<Queues>,
}

/// The largest number of calls one wallet transaction carries.
const MAX_BATCH: usize = 64;

/// A money-moving call, as queued for its wallet's batch.
#[derive(Debug, Clone)]
enum Op {
    Transfer(TransferRequest),
    Reserve(ReserveRequest),
    /// Capture (`Some`) or release (`None`).
    End {
        hold: HoldId,
        key: IdempotencyKey,
        capture: Option<CaptureRequest>,
    },
}

impl Op {
    fn key(&self) -> &IdempotencyKey {
        match self {
            Op::Transfer(r) => &r.idempotency_key,
            Op::Reserve(r) => &r.idempotency_key,
            Op::End { key, .. } => key,
        }
    }
}

/// A call's result.
enum Done {
    Transfer(LedgerOutcome<Transfer>),
    Hold(LedgerOutcome<Hold>),
}

struct Pending {
    op: Op,
    /// Dropped unanswered when the batch fails as a whole: the caller then runs its call
    /// in a transaction of its own.
    reply: oneshot::Sender<Result<Done>>,
}

type Queues = Arc<Mutex<HashMap<OrgId, Vec<Pending>>>>;

/// Clears the wallet's queue if its leader stops without emptying it (a panic), so that
/// the callers waiting in it run their calls on their own.
struct LeadGuard {
    queues: Queues,
    org: OrgId,
    finished: bool,
}

impl Drop for LeadGuard {
    fn drop(&mut self) {
        if !self.finished
            && let Ok(mut queues) = self.queues.lock()
        {
            queues.remove(&self.org);
        }
    }
}

impl std::fmt::Debug for SqlLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlLedger")
            .field("backend", &self.db.get_database_backend())
            .field("max_attempts", &self.max_attempts)
            .field("batching", &self.queues.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`SqlLedger::verify_wallet`] found: the cached values next to the ones derived
/// from the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletCheck {
    /// The organization.
    pub org: OrgId,
    /// `posted_minor` as cached on the wallet row.
    pub cached_posted: Money,
    /// The sum of the wallet's entries.
    pub derived_posted: Money,
    /// `held_minor` as cached on the wallet row (holds recorded as active).
    pub cached_held: Money,
    /// The sum of the holds recorded as active.
    pub derived_held: Money,
    /// How many entries the organization's transfers have.
    pub entries: u64,
    /// The highest entry sequence number (0 if none).
    pub max_sequence: u64,
    /// The sequence number the next entry would get.
    pub next_sequence: u64,
    /// Transfers whose entries are not exactly two summing to zero.
    pub unbalanced_transfers: u64,
}

impl WalletCheck {
    /// True if the cached balances equal the derived ones, the sequence is gapless and
    /// every transfer balances.
    pub fn is_consistent(&self) -> bool {
        self.cached_posted == self.derived_posted
            && self.cached_held == self.derived_held
            && self.entries == self.max_sequence
            && self.next_sequence == self.max_sequence + 1
            && self.unbalanced_transfers == 0
    }
}

/// The wallet row as locked or read, with the sum of its active holds past expiry.
#[derive(Debug, Clone)]
struct WalletState {
    org: OrgId,
    currency: Currency,
    posted: i64,
    /// Recorded-active holds, including any already past expiry.
    recorded_held: i64,
    credit_limit: i64,
    threshold: Option<i64>,
    next_seq: i64,
    /// Active holds past `expires_at`: no longer held, not yet recorded as expired.
    expired_held: i64,
}

#[derive(Debug, FromQueryResult)]
struct Probe {
    expired_held: i64,
    fingerprint: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct Sum {
    total: i64,
}

impl WalletState {
    fn from_model(model: ledger_wallets::Model, expired_held: i64) -> Result<Self> {
        Ok(Self {
            org: OrgId::from_uuid(model.organization_id),
            currency: model.currency.parse().map_err(Error::internal)?,
            posted: model.posted_minor,
            recorded_held: model.held_minor,
            credit_limit: model.credit_limit_minor,
            threshold: model.low_balance_threshold_minor,
            next_seq: model.next_seq,
            expired_held,
        })
    }

    fn money(&self, minor: i64) -> Money {
        Money::from_minor(minor, self.currency)
    }

    /// The balance now.
    fn balance(&self) -> Result<Balance> {
        let held = self
            .recorded_held
            .checked_sub(self.expired_held)
            .ok_or_else(|| Error::internal("held balance out of range"))?;
        self.balance_with(self.money(self.posted), self.money(held))
    }

    fn balance_with(&self, posted: Money, held: Money) -> Result<Balance> {
        Ok(Balance {
            org: self.org,
            currency: self.currency,
            posted,
            held,
            available: posted.checked_sub(held)?,
            credit_limit: self.money(self.credit_limit),
            low_balance_threshold: self.threshold.map(|t| self.money(t)),
        })
    }
}

/// Writes the low-balance crossings of a call to the event outbox, in the call's own
/// transaction, so realtime clients and webhooks hear of them exactly once.
async fn record_low_balance(
    txn: &DatabaseTransaction,
    events: &[LedgerEvent],
    now: DateTime<Utc>,
) -> Result<()> {
    for event in events {
        if let LedgerEvent::LowBalance {
            org,
            available,
            threshold,
        } = event
        {
            crate::events::record(
                txn,
                *org,
                "wallet.low_balance",
                ("wallet", org.as_uuid()),
                serde_json::json!({ "available": available, "threshold": threshold }),
                now,
            )
            .await
            .map_err(db_err)?;
        }
    }
    Ok(())
}

fn wallet_not_found() -> Error {
    Error::not_found("wallet")
}

fn json_err(err: serde_json::Error) -> Error {
    Error::internal(err)
}

/// Whether the database asks for the transaction to be tried again.
pub(crate) fn is_retryable(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(e) = e.as_ref() else {
        return false;
    };
    matches!(
        e.code().as_deref(),
        // PostgreSQL: serialization failure, deadlock, lock not available.
        Some("40001" | "40P01" | "55P03")
        // SQLite: BUSY, BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT, LOCKED, LOCKED_SHAREDCACHE.
        | Some("5" | "261" | "517" | "773" | "6" | "262")
    )
}

fn retryable(err: &Error) -> bool {
    match err {
        Error::Internal(cause) => cause.downcast_ref::<DbErr>().is_some_and(is_retryable),
        _ => false,
    }
}

fn status_name(status: HoldStatus) -> &'static str {
    match status {
        HoldStatus::Active => "active",
        HoldStatus::Captured => "captured",
        HoldStatus::Released => "released",
        HoldStatus::Expired => "expired",
    }
}

fn parse_status(text: &str) -> Result<HoldStatus> {
    match text {
        "active" => Ok(HoldStatus::Active),
        "captured" => Ok(HoldStatus::Captured),
        "released" => Ok(HoldStatus::Released),
        "expired" => Ok(HoldStatus::Expired),
        other => Err(Error::internal(format!("unknown hold status {other:?}"))),
    }
}

fn hold_from(model: ledger_holds::Model) -> Result<Hold> {
    let currency: Currency = model.currency.parse().map_err(Error::internal)?;
    Ok(Hold {
        id: HoldId::from_uuid(model.id),
        org: OrgId::from_uuid(model.organization_id),
        amount: Money::from_minor(model.amount_minor, currency),
        status: parse_status(&model.status)?,
        captured: model.captured_minor.map(|m| Money::from_minor(m, currency)),
        capture_transfer_id: model.capture_transfer_id.map(TransferId::from_uuid),
        idempotency_key: IdempotencyKey::new(model.idempotency_key).map_err(Error::internal)?,
        metadata: model.metadata,
        created_at: model.created_at,
        expires_at: model.expires_at,
        ended_at: model.ended_at,
    })
}

fn transfer_from(model: ledger_transfers::Model) -> Result<Transfer> {
    let currency: Currency = model.currency.parse().map_err(Error::internal)?;
    Ok(Transfer {
        id: TransferId::from_uuid(model.id),
        org: OrgId::from_uuid(model.organization_id),
        from: model.from_account.parse().map_err(Error::internal)?,
        to: model.to_account.parse().map_err(Error::internal)?,
        amount: Money::from_minor(model.amount_minor, currency),
        idempotency_key: IdempotencyKey::new(model.idempotency_key).map_err(Error::internal)?,
        metadata: model.metadata,
        hold_id: model.hold_id.map(HoldId::from_uuid),
        created_at: model.created_at,
    })
}

fn entry_from(model: ledger_entries::Model) -> Result<Entry> {
    let currency: Currency = model.currency.parse().map_err(Error::internal)?;
    Ok(Entry {
        id: EntryId::from_uuid(model.id),
        org: OrgId::from_uuid(model.organization_id),
        sequence: u64::try_from(model.seq).map_err(Error::internal)?,
        transfer_id: TransferId::from_uuid(model.transfer_id),
        hold_id: model.hold_id.map(HoldId::from_uuid),
        account: model.account.parse().map_err(Error::internal)?,
        amount: Money::from_minor(model.amount_minor, currency),
        created_at: model.created_at,
    })
}

/// A transfer ready to insert, with its entries.
struct Posting {
    transfer: Transfer,
    entries: [Entry; 2],
}

impl Posting {
    #[allow(clippy::too_many_arguments)]
    fn new(
        wallet: &WalletState,
        from: Account,
        to: Account,
        amount: Money,
        idempotency_key: IdempotencyKey,
        metadata: serde_json::Value,
        hold_id: Option<HoldId>,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let transfer = Transfer {
            id: TransferId::new(),
            org: wallet.org,
            from,
            to,
            amount,
            idempotency_key,
            metadata,
            hold_id,
            created_at: now,
        };
        let next = u64::try_from(wallet.next_seq).map_err(Error::internal)?;
        let entry = |sequence: u64, account: Account, amount: Money| Entry {
            id: EntryId::new(),
            org: wallet.org,
            sequence,
            transfer_id: transfer.id,
            hold_id,
            account,
            amount,
            created_at: now,
        };
        let entries = [
            entry(next, from, amount.checked_neg()?),
            entry(next + 1, to, amount),
        ];
        Ok(Self { transfer, entries })
    }

    /// The wallet's posted balance after this posting.
    fn wallet_after(&self, wallet: &WalletState) -> Result<Money> {
        let own = Account::Wallet(wallet.org);
        let before = wallet.money(wallet.posted);
        if self.transfer.from == own {
            Ok(before.checked_sub(self.transfer.amount)?)
        } else if self.transfer.to == own {
            Ok(before.checked_add(self.transfer.amount)?)
        } else {
            Ok(before)
        }
    }

    async fn insert(&self, txn: &DatabaseTransaction) -> Result<()> {
        let t = &self.transfer;
        ledger_transfers::Entity::insert(ledger_transfers::ActiveModel {
            organization_id: Set(t.org.as_uuid()),
            id: Set(t.id.as_uuid()),
            from_account: Set(t.from.to_string()),
            to_account: Set(t.to.to_string()),
            amount_minor: Set(t.amount.minor()),
            currency: Set(t.amount.currency().code().to_owned()),
            idempotency_key: Set(t.idempotency_key.as_str().to_owned()),
            metadata: Set(t.metadata.clone()),
            hold_id: Set(t.hold_id.map(|h| h.as_uuid())),
            created_at: Set(t.created_at),
        })
        .exec_without_returning(txn)
        .await
        .map_err(db_err)?;
        let mut rows = Vec::with_capacity(2);
        for e in &self.entries {
            rows.push(ledger_entries::ActiveModel {
                organization_id: Set(e.org.as_uuid()),
                id: Set(e.id.as_uuid()),
                seq: Set(i64::try_from(e.sequence).map_err(Error::internal)?),
                transfer_id: Set(e.transfer_id.as_uuid()),
                hold_id: Set(e.hold_id.map(|h| h.as_uuid())),
                account: Set(e.account.to_string()),
                amount_minor: Set(e.amount.minor()),
                currency: Set(e.amount.currency().code().to_owned()),
                created_at: Set(e.created_at),
            });
        }
        ledger_entries::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

/// What a stored idempotency record says about a call.
enum Replay<T> {
    /// The key is new.
    Fresh,
    /// The first outcome, flagged as a replay.
    Stored(LedgerOutcome<T>),
}

/// Runs `$call` (one transaction) until it succeeds, fails for good, or runs out of
/// attempts on retryable database errors.
macro_rules! with_retry {
    ($self:ident, $call:expr) => {{
        let mut attempt = 0_u32;
        loop {
            attempt += 1;
            match $call.await {
                Err(err) if attempt < $self.max_attempts && retryable(&err) => {
                    SqlLedger::back_off(attempt).await;
                }
                other => break other,
            }
        }
    }};
}

/// Everything a money-moving call writes once its checks have passed.
struct Writes<'a> {
    org: OrgId,
    /// A new hold (reserve).
    new_hold: Option<&'a Hold>,
    /// A hold that ends (capture or release): its new state.
    ended_hold: Option<&'a Hold>,
    /// A transfer with its entries.
    posting: Option<&'a Posting>,
    posted: i64,
    recorded_held: i64,
    next_seq: i64,
    key: &'a IdempotencyKey,
    fingerprint: Fingerprint,
    outcome: serde_json::Value,
    now: DateTime<Utc>,
}

#[derive(Debug, FromQueryResult)]
struct Written {
    wallets: i64,
    holds: i64,
}

/// Builds one PostgreSQL statement that performs all of `w` (data-modifying CTEs), so a
/// call's writes cost one round trip while the wallet lock is held.
fn pg_writes(w: &Writes<'_>) -> Result<(String, Vec<Value>)> {
    let mut values: Vec<Value> = Vec::new();
    let mut p = |v: Value| {
        values.push(v);
        format!("${}", values.len())
    };
    let org = w.org.as_uuid();
    let mut ctes: Vec<String> = Vec::new();
    if let Some(h) = w.new_hold {
        ctes.push(format!(
            "hi AS (INSERT INTO ledger_holds (organization_id, id, amount_minor, currency, \
             status, captured_minor, capture_transfer_id, idempotency_key, metadata, \
             created_at, expires_at, ended_at) VALUES ({}, {}, {}, {}, 'active', NULL, NULL, \
             {}, {}, {}, {}, NULL) RETURNING 1)",
            p(org.into()),
            p(h.id.as_uuid().into()),
            p(h.amount.minor().into()),
            p(h.amount.currency().code().into()),
            p(h.idempotency_key.as_str().into()),
            p(h.metadata.clone().into()),
            p(h.created_at.into()),
            p(h.expires_at.into()),
        ));
    }
    if let Some(t) = w.posting {
        let tr = &t.transfer;
        ctes.push(format!(
            "ti AS (INSERT INTO ledger_transfers (organization_id, id, from_account, \
             to_account, amount_minor, currency, idempotency_key, metadata, hold_id, \
             created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING 1)",
            p(org.into()),
            p(tr.id.as_uuid().into()),
            p(tr.from.to_string().into()),
            p(tr.to.to_string().into()),
            p(tr.amount.minor().into()),
            p(tr.amount.currency().code().into()),
            p(tr.idempotency_key.as_str().into()),
            p(tr.metadata.clone().into()),
            p(tr.hold_id.map(|h| h.as_uuid()).into()),
            p(tr.created_at.into()),
        ));
        let mut rows = Vec::new();
        for e in &t.entries {
            rows.push(format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, {})",
                p(org.into()),
                p(e.id.as_uuid().into()),
                p(i64::try_from(e.sequence).map_err(Error::internal)?.into()),
                p(e.transfer_id.as_uuid().into()),
                p(e.hold_id.map(|h| h.as_uuid()).into()),
                p(e.account.to_string().into()),
                p(e.amount.minor().into()),
                p(e.amount.currency().code().into()),
                p(e.created_at.into()),
            ));
        }
        ctes.push(format!(
            "ei AS (INSERT INTO ledger_entries (organization_id, id, seq, transfer_id, \
             hold_id, account, amount_minor, currency, created_at) VALUES {} RETURNING 1)",
            rows.join(", ")
        ));
    }
    if let Some(h) = w.ended_hold {
        ctes.push(format!(
            "hu AS (UPDATE ledger_holds SET status = {}, captured_minor = {}, \
             capture_transfer_id = {}, ended_at = {} WHERE organization_id = {} AND id = {} \
             AND status = 'active' RETURNING 1)",
            p(status_name(h.status).into()),
            p(h.captured.map(|m| m.minor()).into()),
            p(h.capture_transfer_id.map(|t| t.as_uuid()).into()),
            p(h.ended_at.into()),
            p(org.into()),
            p(h.id.as_uuid().into()),
        ));
    }
    ctes.push(format!(
        "wu AS (UPDATE ledger_wallets SET posted_minor = {}, held_minor = {}, next_seq = {}, \
         updated_at = {} WHERE organization_id = {} RETURNING 1)",
        p(w.posted.into()),
        p(w.recorded_held.into()),
        p(w.next_seq.into()),
        p(w.now.into()),
        p(org.into()),
    ));
    ctes.push(format!(
        "ii AS (INSERT INTO ledger_idempotency (organization_id, key, fingerprint, outcome, \
         created_at) VALUES ({}, {}, {}, {}, {}) RETURNING 1)",
        p(org.into()),
        p(w.key.as_str().into()),
        p(w.fingerprint.as_str().into()),
        p(w.outcome.clone().into()),
        p(w.now.into()),
    ));
    let holds = if w.ended_hold.is_some() {
        "(SELECT count(*) FROM hu)"
    } else {
        "1"
    };
    let sql = format!(
        "WITH {} SELECT (SELECT count(*) FROM wu) AS wallets, CAST({holds} AS BIGINT) AS holds",
        ctes.join(", ")
    );
    Ok((sql, values))
}

impl SqlLedger {
    /// A ledger over `db` (migrated) that reads the time from `clock`.
    pub fn new(db: DatabaseConnection, clock: SharedClock) -> Self {
        Self {
            db,
            clock,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            queues: Some(Arc::default()),
        }
    }

    /// Turns batching on (the default) or off. With batching, calls that arrive while a
    /// transaction on the same wallet is running wait for it and then run together, in
    /// order, in one transaction (one lock, one commit), each with its own checks and
    /// result. If that transaction fails as a whole, each call runs again on its own.
    /// Batching needs a Tokio runtime.
    pub fn with_batching(mut self, on: bool) -> Self {
        self.queues = on.then(Arc::default);
        self
    }

    /// Sets how many times a call is attempted when the database reports a serialization
    /// failure, a deadlock or a busy database (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The connection.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    fn stmt(&self, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.backend(), sql, values)
    }

    /// Commits on success, rolls back on failure.
    async fn finish<T>(txn: DatabaseTransaction, result: Result<T>) -> Result<T> {
        match result {
            Ok(value) => {
                txn.commit().await.map_err(db_err)?;
                Ok(value)
            }
            Err(err) => {
                // The error that made us roll back is the one to report.
                txn.rollback().await.ok();
                Err(err)
            }
        }
    }

    /// Back-off before attempt `attempt + 1`: a few milliseconds, growing, with jitter.
    async fn back_off(attempt: u32) {
        let base = 2_u64.saturating_pow(attempt.min(6));
        let jitter = rand::random::<u64>() % (base + 1);
        tokio::time::sleep(Duration::from_millis(base + jitter)).await;
    }

    /// Locks the wallet row: the transaction's first statement.
    async fn lock_wallet(
        &self,
        txn: &DatabaseTransaction,
        org: OrgId,
    ) -> Result<ledger_wallets::Model> {
        let sql = match self.backend() {
            DbBackend::Postgres => {
                "SELECT * FROM ledger_wallets WHERE organization_id = $1 FOR UPDATE"
            }
            _ => {
                "UPDATE ledger_wallets SET next_seq = next_seq WHERE organization_id = $1 \
                 RETURNING *"
            }
        };
        ledger_wallets::Entity::find()
            .from_raw_sql(self.stmt(sql, vec![org.as_uuid().into()]))
            .one(txn)
            .await
            .map_err(db_err)?
            .ok_or_else(wallet_not_found)
    }

    /// After the lock: the active holds past expiry and the fingerprint stored for `key`.
    async fn probe<C: ConnectionTrait>(
        &self,
        conn: &C,
        org: OrgId,
        now: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
    ) -> Result<Probe> {
        let sql = "SELECT CAST(COALESCE((SELECT SUM(amount_minor) FROM ledger_holds \
                   WHERE organization_id = $1 AND status = 'active' AND expires_at <= $2), 0) \
                   AS BIGINT) AS expired_held, \
                   (SELECT fingerprint FROM ledger_idempotency \
                   WHERE organization_id = $1 AND key = $3) AS fingerprint";
        let key = key.map(|k| k.as_str().to_owned()).unwrap_or_default();
        Probe::find_by_statement(self.stmt(sql, vec![org.as_uuid().into(), now.into(), key.into()]))
            .one(conn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::internal("probe returned no row"))
    }

    /// Locks the wallet and reads what every money-moving call needs.
    async fn enter(
        &self,
        txn: &DatabaseTransaction,
        org: OrgId,
        now: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
    ) -> Result<(WalletState, Option<String>)> {
        let model = self.lock_wallet(txn, org).await?;
        let probe = self.probe(txn, org, now, key).await?;
        Ok((
            WalletState::from_model(model, probe.expired_held)?,
            probe.fingerprint,
        ))
    }

    async fn replay<T: DeserializeOwned>(
        &self,
        txn: &DatabaseTransaction,
        org: OrgId,
        key: &IdempotencyKey,
        stored: Option<String>,
        fingerprint: &Fingerprint,
    ) -> Result<Replay<T>> {
        let Some(stored) = stored else {
            return Ok(Replay::Fresh);
        };
        if stored != fingerprint.as_str() {
            return Err(Error::IdempotencyMismatch);
        }
        let record =
            ledger_idempotency::Entity::find_by_id((org.as_uuid(), key.as_str().to_owned()))
                .one(txn)
                .await
                .map_err(db_err)?
                .ok_or_else(|| Error::internal("idempotency record vanished"))?;
        let mut outcome: LedgerOutcome<T> =
            serde_json::from_value(record.outcome).map_err(json_err)?;
        outcome.replayed = true;
        Ok(Replay::Stored(outcome))
    }

    /// Performs the writes of a call: one statement on PostgreSQL, a few on SQLite.
    async fn apply(&self, txn: &DatabaseTransaction, w: Writes<'_>) -> Result<()> {
        if self.backend() == DbBackend::Postgres {
            let (sql, values) = pg_writes(&w)?;
            let written = Written::find_by_statement(self.stmt(&sql, values))
                .one(txn)
                .await
                .map_err(db_err)?
                .ok_or_else(|| Error::internal("writes returned no row"))?;
            if written.wallets != 1 || written.holds != 1 {
                return Err(Error::internal(
                    "wallet or hold changed under the wallet lock",
                ));
            }
            return Ok(());
        }
        if let Some(hold) = w.new_hold {
            ledger_holds::Entity::insert(ledger_holds::ActiveModel {
                organization_id: Set(w.org.as_uuid()),
                id: Set(hold.id.as_uuid()),
                amount_minor: Set(hold.amount.minor()),
                currency: Set(hold.amount.currency().code().to_owned()),
                status: Set(status_name(HoldStatus::Active).to_owned()),
                captured_minor: Set(None),
                capture_transfer_id: Set(None),
                idempotency_key: Set(hold.idempotency_key.as_str().to_owned()),
                metadata: Set(hold.metadata.clone()),
                created_at: Set(hold.created_at),
                expires_at: Set(hold.expires_at),
                ended_at: Set(None),
            })
            .exec_without_returning(txn)
            .await
            .map_err(db_err)?;
        }
        if let Some(posting) = w.posting {
            posting.insert(txn).await?;
        }
        if let Some(ended) = w.ended_hold {
            let changed = self
                .db_exec(
                    txn,
                    "UPDATE ledger_holds SET status = $3, captured_minor = $4, \
                     capture_transfer_id = $5, ended_at = $6 \
                     WHERE organization_id = $1 AND id = $2 AND status = 'active'",
                    vec![
                        w.org.as_uuid().into(),
                        ended.id.as_uuid().into(),
                        status_name(ended.status).into(),
                        ended.captured.map(|m| m.minor()).into(),
                        ended.capture_transfer_id.map(|t| t.as_uuid()).into(),
                        ended.ended_at.into(),
                    ],
                )
                .await?;
            if changed != 1 {
                return Err(Error::internal("hold changed under the wallet lock"));
            }
        }
        self.update_wallet(txn, w.org, w.posted, w.recorded_held, w.next_seq, w.now)
            .await?;
        ledger_idempotency::Entity::insert(ledger_idempotency::ActiveModel {
            organization_id: Set(w.org.as_uuid()),
            key: Set(w.key.as_str().to_owned()),
            fingerprint: Set(w.fingerprint.as_str().to_owned()),
            outcome: Set(w.outcome),
            created_at: Set(w.now),
        })
        .exec_without_returning(txn)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Writes the wallet's new cached values.
    async fn update_wallet(
        &self,
        txn: &DatabaseTransaction,
        org: OrgId,
        posted: i64,
        recorded_held: i64,
        next_seq: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let result = self
            .db_exec(
                txn,
                "UPDATE ledger_wallets SET posted_minor = $2, held_minor = $3, next_seq = $4, \
                 updated_at = $5 WHERE organization_id = $1",
                vec![
                    org.as_uuid().into(),
                    posted.into(),
                    recorded_held.into(),
                    next_seq.into(),
                    now.into(),
                ],
            )
            .await?;
        if result != 1 {
            return Err(Error::internal("wallet row not updated"));
        }
        Ok(())
    }

    async fn db_exec<C: ConnectionTrait>(
        &self,
        conn: &C,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<u64> {
        conn.execute_raw(self.stmt(sql, values))
            .await
            .map(|r| r.rows_affected())
            .map_err(db_err)
    }

    /// Reads the wallet and its live held balance without locking.
    /// On PostgreSQL both reads share one snapshot (REPEATABLE READ), so a sweep that
    /// commits between them cannot make an expired hold count twice or not at all.
    async fn read_wallet(&self, org: OrgId, now: DateTime<Utc>) -> Result<WalletState> {
        let txn = begin_read(&self.db).await.map_err(db_err)?;
        let result = async {
            let model = ledger_wallets::Entity::find_by_id(org.as_uuid())
                .one(&txn)
                .await
                .map_err(db_err)?
                .ok_or_else(wallet_not_found)?;
            let probe = self.probe(&txn, org, now, None).await?;
            WalletState::from_model(model, probe.expired_held)
        }
        .await;
        Self::finish(txn, result).await
    }

    async fn wallet_exists(&self, org: OrgId) -> Result<()> {
        ledger_wallets::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|_| ())
            .ok_or_else(wallet_not_found)
    }

    // ---------------------------------------------------------------------------------
    // The operations, one transaction each.

    async fn open_wallet_now(&self, org: OrgId, currency: Currency) -> Result<Balance> {
        let now = self.now();
        let inserted = ledger_wallets::Entity::insert(ledger_wallets::ActiveModel {
            organization_id: Set(org.as_uuid()),
            currency: Set(currency.code().to_owned()),
            posted_minor: Set(0),
            held_minor: Set(0),
            credit_limit_minor: Set(0),
            low_balance_threshold_minor: Set(None),
            next_seq: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(ledger_wallets::Column::OrganizationId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await;
        if let Err(err) = inserted {
            return Err(match err.sql_err() {
                Some(SqlErr::ForeignKeyConstraintViolation(_)) => Error::not_found("organization"),
                _ => db_err(err),
            });
        }
        let wallet = self.read_wallet(org, now).await?;
        if wallet.currency != currency {
            return Err(Error::Conflict(format!(
                "wallet already open in {}",
                wallet.currency
            )));
        }
        wallet.balance()
    }

    async fn set_credit_limit_once(&self, org: OrgId, limit: Money) -> Result<Balance> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let result = async {
            let (mut wallet, _) = self.enter(&txn, org, now, None).await?;
            check_currency("credit_limit", limit, wallet.currency)?;
            if limit.is_negative() {
                return Err(Error::invalid("credit_limit", "must be zero or more"));
            }
            self.db_exec(
                &txn,
                "UPDATE ledger_wallets SET credit_limit_minor = $2, updated_at = $3 \
                 WHERE organization_id = $1",
                vec![org.as_uuid().into(), limit.minor().into(), now.into()],
            )
            .await?;
            wallet.credit_limit = limit.minor();
            wallet.balance()
        }
        .await;
        Self::finish(txn, result).await
    }

    async fn set_threshold_once(&self, org: OrgId, threshold: Option<Money>) -> Result<Balance> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let result = async {
            let (mut wallet, _) = self.enter(&txn, org, now, None).await?;
            if let Some(threshold) = threshold {
                check_currency("low_balance_threshold", threshold, wallet.currency)?;
            }
            self.db_exec(
                &txn,
                "UPDATE ledger_wallets SET low_balance_threshold_minor = $2, updated_at = $3 \
                 WHERE organization_id = $1",
                vec![
                    org.as_uuid().into(),
                    threshold.map(|t| t.minor()).into(),
                    now.into(),
                ],
            )
            .await?;
            wallet.threshold = threshold.map(|t| t.minor());
            wallet.balance()
        }
        .await;
        Self::finish(txn, result).await
    }

    async fn transfer_once(
        &self,
        org: OrgId,
        request: &TransferRequest,
    ) -> Result<LedgerOutcome<Transfer>> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let result = async {
            let (mut wallet, stored) = self
                .enter(&txn, org, now, Some(&request.idempotency_key))
                .await?;
            self.transfer_in(&txn, &mut wallet, stored, request, now)
                .await
        }
        .await;
        Self::finish(txn, result).await
    }

    /// A transfer, once the wallet is locked (`stored`: the key's recorded fingerprint).
    async fn transfer_in(
        &self,
        txn: &DatabaseTransaction,
        wallet: &mut WalletState,
        stored: Option<String>,
        request: &TransferRequest,
        now: DateTime<Utc>,
    ) -> Result<LedgerOutcome<Transfer>> {
        let org = wallet.org;
        let fingerprint = Fingerprint::transfer(request);
        if let Replay::Stored(outcome) = self
            .replay(txn, org, &request.idempotency_key, stored, &fingerprint)
            .await?
        {
            return Ok(outcome);
        }

        check_transfer(org, request, wallet.currency)?;
        let own = Account::Wallet(org);

        let before = wallet.balance()?;
        if request.from == own {
            check_funds(&before, request.amount)?;
        }
        let posting = Posting::new(
            wallet,
            request.from,
            request.to,
            request.amount,
            request.idempotency_key.clone(),
            request.metadata.clone(),
            None,
            now,
        )?;
        let posted_after = posting.wallet_after(wallet)?;
        let after = wallet.balance_with(posted_after, before.held)?;
        let outcome = LedgerOutcome {
            value: posting.transfer.clone(),
            events: crossing(&before, &after),
            balance: after,
            replayed: false,
        };

        self.apply(
            txn,
            Writes {
                org,
                new_hold: None,
                ended_hold: None,
                posting: Some(&posting),
                posted: posted_after.minor(),
                recorded_held: wallet.recorded_held,
                next_seq: wallet.next_seq + 2,
                key: &request.idempotency_key,
                fingerprint,
                outcome: serde_json::to_value(&outcome).map_err(json_err)?,
                now,
            },
        )
        .await?;
        record_low_balance(txn, &outcome.events, now).await?;
        wallet.posted = posted_after.minor();
        wallet.next_seq += 2;
        Ok(outcome)
    }

    async fn reserve_once(
        &self,
        org: OrgId,
        request: &ReserveRequest,
    ) -> Result<LedgerOutcome<Hold>> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let result = async {
            let (mut wallet, stored) = self
                .enter(&txn, org, now, Some(&request.idempotency_key))
                .await?;
            self.reserve_in(&txn, &mut wallet, stored, request, now)
                .await
        }
        .await;
        Self::finish(txn, result).await
    }

    /// A reservation, once the wallet is locked.
    async fn reserve_in(
        &self,
        txn: &DatabaseTransaction,
        wallet: &mut WalletState,
        stored: Option<String>,
        request: &ReserveRequest,
        now: DateTime<Utc>,
    ) -> Result<LedgerOutcome<Hold>> {
        let org = wallet.org;
        let fingerprint = Fingerprint::reserve(request);
        if let Replay::Stored(outcome) = self
            .replay(txn, org, &request.idempotency_key, stored, &fingerprint)
            .await?
        {
            return Ok(outcome);
        }

        check_amount("amount", request.amount, wallet.currency)?;
        if request.timeout <= TimeDelta::zero() {
            return Err(Error::invalid("timeout", "must be positive"));
        }
        let expires_at = now
            .checked_add_signed(request.timeout)
            .ok_or_else(|| Error::invalid("timeout", "is too long"))?
            .trunc_subsecs(6);

        let before = wallet.balance()?;
        check_funds(&before, request.amount)?;
        let held_after = before.held.checked_add(request.amount)?;
        let recorded_after = wallet
            .money(wallet.recorded_held)
            .checked_add(request.amount)?;
        let after = wallet.balance_with(before.posted, held_after)?;
        let hold = Hold {
            id: HoldId::new(),
            org,
            amount: request.amount,
            status: HoldStatus::Active,
            captured: None,
            capture_transfer_id: None,
            idempotency_key: request.idempotency_key.clone(),
            metadata: request.metadata.clone(),
            created_at: now,
            expires_at,
            ended_at: None,
        };
        let outcome = LedgerOutcome {
            value: hold.clone(),
            events: crossing(&before, &after),
            balance: after,
            replayed: false,
        };

        self.apply(
            txn,
            Writes {
                org,
                new_hold: Some(&hold),
                ended_hold: None,
                posting: None,
                posted: wallet.posted,
                recorded_held: recorded_after.minor(),
                next_seq: wallet.next_seq,
                key: &request.idempotency_key,
                fingerprint,
                outcome: serde_json::to_value(&outcome).map_err(json_err)?,
                now,
            },
        )
        .await?;
        record_low_balance(txn, &outcome.events, now).await?;
        wallet.recorded_held = recorded_after.minor();
        Ok(outcome)
    }

    async fn end_hold_once(
        &self,
        org: OrgId,
        hold_id: HoldId,
        key: &IdempotencyKey,
        capture: Option<&CaptureRequest>,
    ) -> Result<LedgerOutcome<Hold>> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let result = async {
            let (mut wallet, stored) = self.enter(&txn, org, now, Some(key)).await?;
            self.end_hold_in(&txn, &mut wallet, stored, hold_id, key, capture, now)
                .await
        }
        .await;
        Self::finish(txn, result).await
    }

    /// Captures (`Some(request)`) or releases (`None`) a hold, once the wallet is locked.
    #[allow(clippy::too_many_arguments)]
    async fn end_hold_in(
        &self,
        txn: &DatabaseTransaction,
        wallet: &mut WalletState,
        stored: Option<String>,
        hold_id: HoldId,
        key: &IdempotencyKey,
        capture: Option<&CaptureRequest>,
        now: DateTime<Utc>,
    ) -> Result<LedgerOutcome<Hold>> {
        let org = wallet.org;
        let fingerprint = match capture {
            Some(request) => Fingerprint::capture(hold_id, request),
            None => Fingerprint::release(hold_id),
        };
        if let Replay::Stored(outcome) = self.replay(txn, org, key, stored, &fingerprint).await? {
            return Ok(outcome);
        }

        if let Some(amount) = capture.and_then(|c| c.amount) {
            check_amount("amount", amount, wallet.currency)?;
        }
        let model = ledger_holds::Entity::find_by_id((org.as_uuid(), hold_id.as_uuid()))
            .one(txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("hold"))?;
        let hold = hold_from(model)?.as_of(now);
        match hold.status {
            HoldStatus::Active => {}
            HoldStatus::Captured => return Err(Error::Conflict("hold already captured".into())),
            HoldStatus::Released => return Err(Error::Conflict("hold already released".into())),
            HoldStatus::Expired => return Err(Error::Conflict("hold already expired".into())),
        }

        let before = wallet.balance()?;
        let held_after = before.held.checked_sub(hold.amount)?;
        let recorded_after = wallet
            .money(wallet.recorded_held)
            .checked_sub(hold.amount)?;
        let mut ended = hold.clone();
        ended.ended_at = Some(now);
        let (posting, posted_after) = match capture {
            Some(request) => {
                let amount = request.amount.unwrap_or(hold.amount);
                if amount.checked_cmp(&hold.amount)?.is_gt() {
                    return Err(Error::invalid("amount", "is more than the hold"));
                }
                let posting = Posting::new(
                    wallet,
                    Account::Wallet(org),
                    Account::PlatformRevenue,
                    amount,
                    key.clone(),
                    hold.metadata.clone(),
                    Some(hold.id),
                    now,
                )?;
                ended.status = HoldStatus::Captured;
                ended.captured = Some(amount);
                ended.capture_transfer_id = Some(posting.transfer.id);
                let posted_after = posting.wallet_after(wallet)?;
                (Some(posting), posted_after)
            }
            None => {
                ended.status = HoldStatus::Released;
                (None, wallet.money(wallet.posted))
            }
        };
        let after = wallet.balance_with(posted_after, held_after)?;
        let outcome = LedgerOutcome {
            value: ended.clone(),
            events: crossing(&before, &after),
            balance: after,
            replayed: false,
        };

        let next_seq = if posting.is_some() {
            wallet.next_seq + 2
        } else {
            wallet.next_seq
        };
        self.apply(
            txn,
            Writes {
                org,
                new_hold: None,
                ended_hold: Some(&ended),
                posting: posting.as_ref(),
                posted: posted_after.minor(),
                recorded_held: recorded_after.minor(),
                next_seq,
                key,
                fingerprint,
                outcome: serde_json::to_value(&outcome).map_err(json_err)?,
                now,
            },
        )
        .await?;
        record_low_balance(txn, &outcome.events, now).await?;
        wallet.posted = posted_after.minor();
        wallet.recorded_held = recorded_after.minor();
        wallet.next_seq = next_seq;
        Ok(outcome)
    }

    // ---------------------------------------------------------------------------------
    // Batching: one transaction for the calls queued on a wallet.

    /// Runs a money-moving call, batched with other calls on the same wallet if on.
    async fn submit(&self, org: OrgId, op: Op) -> Result<Done> {
        if let Some(queues) = &self.queues {
            let (reply, answer) = oneshot::channel();
            let lead = {
                let mut queues = queues
                    .lock()
                    .map_err(|_| Error::internal("ledger queue lock poisoned"))?;
                let pending = Pending {
                    op: op.clone(),
                    reply,
                };
                match queues.get_mut(&org) {
                    Some(waiting) => {
                        waiting.push(pending);
                        false
                    }
                    None => {
                        queues.insert(org, vec![pending]);
                        true
                    }
                }
            };
            if lead {
                // The caller runs the first batch itself (no hand-off when the wallet is
                // quiet); whatever queued meanwhile is drained by a spawned task.
                self.lead_first(Arc::clone(queues), org).await;
            }
            if let Ok(result) = answer.await {
                return result;
            }
        }
        self.run_alone(org, &op).await
    }

    /// Runs one call in a transaction of its own, retrying when the database asks.
    async fn run_alone(&self, org: OrgId, op: &Op) -> Result<Done> {
        match op {
            Op::Transfer(request) => {
                with_retry!(self, self.transfer_once(org, request)).map(Done::Transfer)
            }
            Op::Reserve(request) => {
                with_retry!(self, self.reserve_once(org, request)).map(Done::Hold)
            }
            Op::End { hold, key, capture } => {
                with_retry!(self, self.end_hold_once(org, *hold, key, capture.as_ref()))
                    .map(Done::Hold)
            }
        }
    }

    /// Runs the first batch of a wallet's queue in the caller's task, then leaves the rest
    /// (if any) to a spawned task.
    async fn lead_first(&self, queues: Queues, org: OrgId) {
        let mut guard = LeadGuard {
            queues: Arc::clone(&queues),
            org,
            finished: false,
        };
        let batch = {
            let Ok(mut queues) = queues.lock() else {
                return;
            };
            let Some(waiting) = queues.get_mut(&org) else {
                guard.finished = true;
                return;
            };
            let n = waiting.len().min(MAX_BATCH);
            waiting.drain(..n).collect::<Vec<_>>()
        };
        self.run_batch(org, batch).await;
        let Ok(mut locked) = queues.lock() else {
            return;
        };
        guard.finished = true;
        if locked.get(&org).is_none_or(Vec::is_empty) {
            locked.remove(&org);
        } else {
            drop(locked);
            let this = self.clone();
            // A spawned task inherits no tenant scope: give it the wallet's.
            tokio::spawn(crate::tenant_scope::in_organization(org, async move {
                this.lead(queues, org).await
            }));
        }
    }

    /// Drains the wallet's queue, one batch per transaction, until it is empty.
    async fn lead(&self, queues: Queues, org: OrgId) {
        let mut guard = LeadGuard {
            queues: Arc::clone(&queues),
            org,
            finished: false,
        };
        loop {
            let batch = {
                let Ok(mut queues) = queues.lock() else {
                    return;
                };
                let Some(waiting) = queues.get_mut(&org) else {
                    guard.finished = true;
                    return;
                };
                if waiting.is_empty() {
                    queues.remove(&org);
                    guard.finished = true;
                    return;
                }
                let n = waiting.len().min(MAX_BATCH);
                waiting.drain(..n).collect::<Vec<_>>()
            };
            self.run_batch(org, batch).await;
        }
    }

    /// Runs `batch` in one transaction. Refusals (insufficient funds, conflicts, …) are
    /// answered like any result; any other failure rolls the whole batch back and leaves
    /// every caller unanswered, so each runs its call on its own.
    async fn run_batch(&self, org: OrgId, batch: Vec<Pending>) {
        let now = self.now();
        let Ok(txn) = begin_write(&self.db).await else {
            return;
        };
        let mut replies = Vec::with_capacity(batch.len());
        let ran: Result<()> = async {
            let model = self.lock_wallet(&txn, org).await?;
            let mut wallet = WalletState::from_model(model, 0)?;
            for Pending { op, reply } in batch {
                let probe = self.probe(&txn, org, now, Some(op.key())).await?;
                wallet.expired_held = probe.expired_held;
                let stored = probe.fingerprint;
                let result = match &op {
                    Op::Transfer(request) => self
                        .transfer_in(&txn, &mut wallet, stored, request, now)
                        .await
                        .map(Done::Transfer),
                    Op::Reserve(request) => self
                        .reserve_in(&txn, &mut wallet, stored, request, now)
                        .await
                        .map(Done::Hold),
                    Op::End { hold, key, capture } => self
                        .end_hold_in(&txn, &mut wallet, stored, *hold, key, capture.as_ref(), now)
                        .await
                        .map(Done::Hold),
                };
                match result {
                    Err(err @ Error::Internal(_)) => return Err(err),
                    result => replies.push((reply, result)),
                }
            }
            Ok(())
        }
        .await;
        if ran.is_err() {
            txn.rollback().await.ok();
            return;
        }
        if txn.commit().await.is_err() {
            // Committed or not, each caller runs again with its key: a replay if it was.
            return;
        }
        for (reply, result) in replies {
            // A caller that stopped waiting no longer needs the answer.
            reply.send(result).ok();
        }
    }

    async fn hold_now(&self, org: OrgId, hold: HoldId) -> Result<Hold> {
        let now = self.now();
        let model = ledger_holds::Entity::find_by_id((org.as_uuid(), hold.as_uuid()))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        match model {
            Some(model) => Ok(hold_from(model)?.as_of(now)),
            None => {
                self.wallet_exists(org).await?;
                Err(Error::not_found("hold"))
            }
        }
    }

    async fn transfer_by_id(&self, org: OrgId, id: TransferId) -> Result<Transfer> {
        let model = ledger_transfers::Entity::find_by_id((org.as_uuid(), id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        match model {
            Some(model) => transfer_from(model),
            None => {
                self.wallet_exists(org).await?;
                Err(Error::not_found("transfer"))
            }
        }
    }

    async fn entries_now(&self, org: OrgId, page: PageRequest) -> Result<Page<Entry>> {
        let after: u64 = page.after()?.unwrap_or(0);
        let after = i64::try_from(after).map_err(|_| Error::invalid("cursor", "out of range"))?;
        let limit = page.limit();
        self.wallet_exists(org).await?;
        let rows = ledger_entries::Entity::find()
            .filter(ledger_entries::Column::OrganizationId.eq(org.as_uuid()))
            .filter(ledger_entries::Column::Seq.gt(after))
            .order_by_asc(ledger_entries::Column::Seq)
            .limit(u64::from(limit) + 1)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let rows = rows
            .into_iter()
            .map(entry_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(rows, limit, |e| e.sequence))
    }

    async fn expire_holds_now(&self, limit: u32) -> Result<Vec<Hold>> {
        let now = self.now();
        let due = ledger_holds::Entity::find()
            .filter(ledger_holds::Column::Status.eq("active"))
            .filter(ledger_holds::Column::ExpiresAt.lte(now))
            .order_by_asc(ledger_holds::Column::ExpiresAt)
            .order_by_asc(ledger_holds::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut per_org: BTreeMap<uuid::Uuid, Vec<uuid::Uuid>> = BTreeMap::new();
        for hold in due {
            per_org
                .entry(hold.organization_id)
                .or_default()
                .push(hold.id);
        }
        let mut expired = Vec::new();
        for (org, ids) in per_org {
            let org = OrgId::from_uuid(org);
            let mut attempt = 0;
            let holds = loop {
                attempt += 1;
                match self.expire_org_once(org, &ids, now).await {
                    Err(err) if attempt < self.max_attempts && retryable(&err) => {
                        Self::back_off(attempt).await;
                    }
                    other => break other?,
                }
            };
            expired.extend(holds);
        }
        expired.sort_by_key(|h| (h.expires_at, h.id));
        Ok(expired)
    }

    /// Records the expiry of those of `ids` that are still active and past expiry.
    async fn expire_org_once(
        &self,
        org: OrgId,
        ids: &[uuid::Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Hold>> {
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let result = async {
            let wallet = self.lock_wallet(&txn, org).await?;
            let ended = ledger_holds::Entity::update_many()
                .col_expr(
                    ledger_holds::Column::Status,
                    sea_orm::sea_query::Expr::value(status_name(HoldStatus::Expired)),
                )
                .col_expr(
                    ledger_holds::Column::EndedAt,
                    sea_orm::sea_query::Expr::col(ledger_holds::Column::ExpiresAt),
                )
                .filter(ledger_holds::Column::OrganizationId.eq(org.as_uuid()))
                .filter(ledger_holds::Column::Id.is_in(ids.iter().copied()))
                .filter(ledger_holds::Column::Status.eq("active"))
                .filter(ledger_holds::Column::ExpiresAt.lte(now))
                .exec_with_returning(&txn)
                .await
                .map_err(db_err)?;
            let mut released: i64 = 0;
            for hold in &ended {
                released = released
                    .checked_add(hold.amount_minor)
                    .ok_or_else(|| Error::internal("held balance out of range"))?;
            }
            if released != 0 {
                self.db_exec(
                    &txn,
                    "UPDATE ledger_wallets SET held_minor = $2, updated_at = $3 \
                     WHERE organization_id = $1",
                    vec![
                        org.as_uuid().into(),
                        (wallet.held_minor - released).into(),
                        now.into(),
                    ],
                )
                .await?;
            }
            ended.into_iter().map(hold_from).collect::<Result<Vec<_>>>()
        }
        .await;
        Self::finish(txn, result).await
    }

    async fn platform_balance_now(&self, account: Account, currency: Currency) -> Result<Money> {
        let sum = Sum::find_by_statement(self.stmt(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS total \
             FROM ledger_entries WHERE account = $1 AND currency = $2",
            vec![account.to_string().into(), currency.code().into()],
        ))
        .one(&self.db)
        .await
        .map_err(db_err)?
        .map(|s| s.total)
        .unwrap_or(0);
        Ok(Money::from_minor(sum, currency))
    }

    /// Operator: recomputes the wallet's posted and held balances, its entry sequence and
    /// the balance of each of its transfers from the rows, under the wallet lock, and
    /// returns them next to the cached values. See [`WalletCheck::is_consistent`].
    pub async fn verify_wallet(&self, org: OrgId) -> Result<WalletCheck> {
        crate::tenant_scope::in_organization(org, self.verify_wallet_now(org)).await
    }

    async fn verify_wallet_now(&self, org: OrgId) -> Result<WalletCheck> {
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let result = async {
            let model = self.lock_wallet(&txn, org).await?;
            let wallet = WalletState::from_model(model, 0)?;
            let sum = |sql: &'static str, values: Vec<Value>| {
                let stmt = self.stmt(sql, values);
                let txn = &txn;
                async move {
                    Sum::find_by_statement(stmt)
                        .one(txn)
                        .await
                        .map_err(db_err)
                        .map(|s| s.map_or(0, |s| s.total))
                }
            };
            let o: Value = org.as_uuid().into();
            let derived_posted = sum(
                "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS total \
                 FROM ledger_entries WHERE organization_id = $1 AND account = $2",
                vec![o.clone(), Account::Wallet(org).to_string().into()],
            )
            .await?;
            let derived_held = sum(
                "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS total \
                 FROM ledger_holds WHERE organization_id = $1 AND status = 'active'",
                vec![o.clone()],
            )
            .await?;
            let entries = sum(
                "SELECT CAST(COUNT(*) AS BIGINT) AS total FROM ledger_entries \
                 WHERE organization_id = $1",
                vec![o.clone()],
            )
            .await?;
            let max_sequence = sum(
                "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) AS total FROM ledger_entries \
                 WHERE organization_id = $1",
                vec![o.clone()],
            )
            .await?;
            let unbalanced = sum(
                "SELECT CAST(COUNT(*) AS BIGINT) AS total FROM (SELECT t.id FROM ledger_transfers t \
                 LEFT JOIN ledger_entries e ON e.organization_id = t.organization_id \
                 AND e.transfer_id = t.id WHERE t.organization_id = $1 GROUP BY t.id \
                 HAVING COUNT(e.id) <> 2 OR COALESCE(SUM(e.amount_minor), 0) <> 0) u",
                vec![o],
            )
            .await?;
            let count = |n: i64| u64::try_from(n).map_err(Error::internal);
            Ok(WalletCheck {
                org,
                cached_posted: wallet.money(wallet.posted),
                derived_posted: wallet.money(derived_posted),
                cached_held: wallet.money(wallet.recorded_held),
                derived_held: wallet.money(derived_held),
                entries: count(entries)?,
                max_sequence: count(max_sequence)?,
                next_sequence: count(wallet.next_seq)?,
                unbalanced_transfers: count(unbalanced)?,
            })
        }
        .await;
        Self::finish(txn, result).await
    }
}

fn hold_outcome(done: Done) -> Result<LedgerOutcome<Hold>> {
    match done {
        Done::Hold(outcome) => Ok(outcome),
        Done::Transfer(_) => Err(Error::internal("a hold call answered with a transfer")),
    }
}

/// Runs a call on one organization's wallet in that organization's database scope, so it
/// works behind row-level security whatever the caller's scope (see
/// [`crate::tenant_scope`]).
fn scoped<'a, T>(org: OrgId, work: impl Future<Output = T> + Send + 'a) -> BoxFuture<'a, T> {
    Box::pin(crate::tenant_scope::in_organization(org, work))
}

/// Runs an operator call (across every wallet) in the cross-tenant database scope.
fn cross_tenant<'a, T>(work: impl Future<Output = T> + Send + 'a) -> BoxFuture<'a, T> {
    Box::pin(crate::tenant_scope::cross_tenant(work))
}

impl Ledger for SqlLedger {
    fn open_wallet(&self, org: OrgId, currency: Currency) -> BoxFuture<'_, Result<Balance>> {
        scoped(org, async move {
            with_retry!(self, self.open_wallet_now(org, currency))
        })
    }

    fn balance(&self, org: OrgId) -> BoxFuture<'_, Result<Balance>> {
        scoped(org, async move {
            let now = self.now();
            with_retry!(self, self.read_wallet(org, now))?.balance()
        })
    }

    fn set_credit_limit(&self, org: OrgId, limit: Money) -> BoxFuture<'_, Result<Balance>> {
        scoped(org, async move {
            with_retry!(self, self.set_credit_limit_once(org, limit))
        })
    }

    fn set_low_balance_threshold(
        &self,
        org: OrgId,
        threshold: Option<Money>,
    ) -> BoxFuture<'_, Result<Balance>> {
        scoped(org, async move {
            with_retry!(self, self.set_threshold_once(org, threshold))
        })
    }

    fn transfer(
        &self,
        org: OrgId,
        request: TransferRequest,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Transfer>>> {
        scoped(org, async move {
            match self.submit(org, Op::Transfer(request)).await? {
                Done::Transfer(outcome) => Ok(outcome),
                Done::Hold(_) => Err(Error::internal("a transfer answered with a hold")),
            }
        })
    }

    fn reserve(
        &self,
        org: OrgId,
        request: ReserveRequest,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Hold>>> {
        scoped(org, async move {
            hold_outcome(self.submit(org, Op::Reserve(request)).await?)
        })
    }

    fn capture(
        &self,
        org: OrgId,
        hold: HoldId,
        request: CaptureRequest,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Hold>>> {
        scoped(org, async move {
            let op = Op::End {
                hold,
                key: request.idempotency_key.clone(),
                capture: Some(request),
            };
            hold_outcome(self.submit(org, op).await?)
        })
    }

    fn release(
        &self,
        org: OrgId,
        hold: HoldId,
        idempotency_key: IdempotencyKey,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Hold>>> {
        scoped(org, async move {
            with_retry!(self, self.end_hold_once(org, hold, &idempotency_key, None))
        })
    }

    fn hold(&self, org: OrgId, hold: HoldId) -> BoxFuture<'_, Result<Hold>> {
        scoped(
            org,
            async move { with_retry!(self, self.hold_now(org, hold)) },
        )
    }

    fn get_transfer(&self, org: OrgId, id: TransferId) -> BoxFuture<'_, Result<Transfer>> {
        scoped(org, async move {
            with_retry!(self, self.transfer_by_id(org, id))
        })
    }

    fn entries(&self, org: OrgId, page: PageRequest) -> BoxFuture<'_, Result<Page<Entry>>> {
        scoped(org, async move {
            with_retry!(self, self.entries_now(org, page.clone()))
        })
    }

    fn expire_holds(&self, limit: u32) -> BoxFuture<'_, Result<Vec<Hold>>> {
        cross_tenant(async move { self.expire_holds_now(limit).await })
    }

    fn platform_balance(
        &self,
        account: Account,
        currency: Currency,
    ) -> BoxFuture<'_, Result<Money>> {
        cross_tenant(async move { with_retry!(self, self.platform_balance_now(account, currency)) })
    }
}
