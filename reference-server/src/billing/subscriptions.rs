//! Subscriptions: each organization's plan and standing, and the periods it has paid.
//!
//! ```text
//!            period ends                grace ends
//!   active ──────────────▶ grace ─────────────────▶ suspended
//!     ▲                      │                          │
//!     └──────────────────────┴──── a paid period ───────┘
//! ```
//!
//! - A new organization starts `active` with a first period of its plan's length (a
//!   trial), or with no end on a free plan ([`start`]).
//! - [`apply_paid_period`] applies a payment once per payment id: it extends the
//!   subscription by the plan's period from the later of the payment time and the
//!   current period's end, switches the plan if another was paid for, and makes the
//!   subscription `active` again.
//! - [`advance`] moves subscriptions whose period ended to `grace`, and those whose grace
//!   ran out to `suspended`. Free plans never lapse.
//!
//! While suspended, an organization can still sign in, read, export and pay; its other
//! requests answer 402 `subscription_suspended` (the rule is `http::available_when_suspended`).
//!
//! # Concurrency
//!
//! [`apply_paid_period`] runs in one transaction that first locks the subscription row
//! (`SELECT … FOR UPDATE` on PostgreSQL; on SQLite the transaction is opened with
//! `BEGIN IMMEDIATE`, which takes the database's write lock). Duplicate confirmations
//! of one payment therefore run one after the other, and the second finds the first's
//! period. The unique key `(organization_id, payment_id)` of `subscription_periods` is the
//! last word: a duplicate that still reaches the insert is rolled back and answered as
//! already applied. [`advance`] changes a row only with a conditional update that
//! re-checks the row's status and times, so any number of nodes may run it at once: each
//! transition happens, and is audited, exactly once.

use crate::db::begin_write;
use crate::db::db_err;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use chrono::{DateTime, SubsecRound as _, Utc};
use edge_core::{Currency, Error, Money, OrgId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, QueryFilter as _, QueryOrder as _, QuerySelect as _, Statement,
};
use serde::Serialize;
use serde_json::json;

use super::Standing;
use super::plans::{self, Plan};
use crate::audit::{self, Actor, ClientInfo};
use crate::entities::{organizations, subscription_periods, subscriptions};
use crate::tenant_scope;

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Paid up (or on a trial, or free).
    Active,
    /// The period has ended; everything keeps working until grace ends.
    Grace,
    /// Grace has ended; paid features answer 402 until a payment is applied.
    Suspended,
}

impl SubscriptionStatus {
    /// The stored name: `active`, `grace` or `suspended`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Grace => "grace",
            Self::Suspended => "suspended",
        }
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubscriptionStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "active" => Ok(Self::Active),
            "grace" => Ok(Self::Grace),
            "suspended" => Ok(Self::Suspended),
            other => Err(Error::internal(format!(
                "unknown subscription status {other:?}"
            ))),
        }
    }
}

/// An organization's subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The organization.
    pub organization: OrgId,
    /// Its plan.
    pub plan: Plan,
    /// Where it stands.
    pub status: SubscriptionStatus,
    /// When the current period ends; `None` on a free plan.
    pub current_period_end: Option<DateTime<Utc>>,
    /// When grace ends (or ended); set once the subscription has entered grace.
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A paid period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Period {
    /// The period's id.
    pub id: uuid::Uuid,
    /// The payment that bought it.
    pub payment_id: uuid::Uuid,
    /// The plan paid for.
    pub plan_code: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// What was paid.
    pub amount: Money,
    /// When the payment was applied.
    pub created_at: DateTime<Utc>,
}

/// A subscription that [`advance`] moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The organization.
    pub organization: OrgId,
    /// Its plan.
    pub plan_code: String,
    /// Before.
    pub from: SubscriptionStatus,
    /// After.
    pub to: SubscriptionStatus,
    /// The end of the period that lapsed.
    pub current_period_end: Option<DateTime<Utc>>,
    /// When grace ends (entering grace) or ended (suspension).
    pub grace_ends_at: Option<DateTime<Utc>>,
}

fn status_of(row: &subscriptions::Model) -> Result<SubscriptionStatus, Error> {
    row.status.parse()
}

/// The standing stored in a subscription row.
pub fn standing_of(row: &subscriptions::Model) -> Result<Standing, Error> {
    Ok(Standing {
        plan_code: row.plan_code.clone(),
        status: status_of(row)?,
        current_period_end: row.current_period_end,
        grace_ends_at: row.grace_ends_at,
    })
}

async fn row<C: ConnectionTrait>(db: &C, org: OrgId) -> Result<subscriptions::Model, Error> {
    subscriptions::Entity::find_by_id(org.as_uuid())
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("subscription"))
}

/// The standing of `org`'s subscription, read from the database (the subscription gate's
/// fallback when the resolver has not just recorded it). [`Error::NotFound`] if the
/// organization has no subscription.
pub async fn standing(db: &DatabaseConnection, org: OrgId) -> Result<Standing, Error> {
    tenant_scope::in_organization(org, async { standing_of(&row(db, org).await?) }).await
}

/// `org`'s subscription; [`Error::NotFound`] if the organization has none (or is
/// unknown).
pub async fn get(db: &DatabaseConnection, org: OrgId) -> Result<Subscription, Error> {
    tenant_scope::in_organization(org, async {
        let row = row(db, org).await?;
        let plan = plans::find(db, &row.plan_code).await?;
        subscription(row, plan)
    })
    .await
}

fn subscription(row: subscriptions::Model, plan: Plan) -> Result<Subscription, Error> {
    Ok(Subscription {
        organization: OrgId::from_uuid(row.organization_id),
        status: status_of(&row)?,
        current_period_end: row.current_period_end,
        grace_ends_at: row.grace_ends_at,
        updated_at: row.updated_at,
        plan,
    })
}

/// `org`'s paid periods, latest first, at most `limit`.
pub async fn periods(
    db: &DatabaseConnection,
    org: OrgId,
    limit: u64,
) -> Result<Vec<Period>, Error> {
    tenant_scope::in_organization(org, async {
        subscription_periods::Entity::find()
            .filter(subscription_periods::Column::OrganizationId.eq(org.as_uuid()))
            .order_by_desc(subscription_periods::Column::StartsAt)
            .order_by_desc(subscription_periods::Column::Id)
            .limit(limit)
            .all(db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|row| {
                let currency: Currency = row.currency.parse().map_err(Error::internal)?;
                Ok(Period {
                    id: row.id,
                    payment_id: row.payment_id,
                    plan_code: row.plan_code,
                    starts_at: row.starts_at,
                    ends_at: row.ends_at,
                    amount: Money::from_minor(row.amount_minor, currency),
                    created_at: row.created_at,
                })
            })
            .collect()
    })
    .await
}

/// The plan `org` may start paying for, for a payment flow to check before it asks for
/// the money: any active plan that is not free, or the organization's current plan even
/// if it has been archived since (renewing it keeps the organization where it is).
/// Otherwise a validation error on `field` (unknown, archived, or free).
pub async fn payable_plan(
    db: &DatabaseConnection,
    org: OrgId,
    code: &str,
    field: &str,
) -> Result<Plan, Error> {
    tenant_scope::in_organization(org, async {
        let current = row(db, org).await?;
        let plan = if current.plan_code == code {
            plans::find(db, code).await?
        } else {
            plans::choosable(db, code, field).await?
        };
        if plan.is_free() {
            return Err(Error::invalid(
                field,
                format!("the {} plan is free: there is nothing to pay", plan.code),
            ));
        }
        Ok(plan)
    })
    .await
}

/// Subscribes a new organization to `plan`: active, with a first period of the plan's
/// length from `now` (a trial), or with no end on a free plan. Call it in the
/// transaction that creates the organization.
pub async fn start<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    subscriptions::Entity::insert(subscriptions::ActiveModel {
        organization_id: Set(org.as_uuid()),
        plan_code: Set(plan.code.clone()),
        status: Set(SubscriptionStatus::Active.as_str().to_owned()),
        current_period_end: Set((!plan.is_free()).then(|| now + plan.period())),
        grace_ends_at: Set(None),
        updated_at: Set(now),
    })
    .exec_without_returning(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// How many times a transaction is attempted when the database asks for a retry.
const MAX_ATTEMPTS: u32 = 8;

/// A short, growing back-off with jitter before attempt `attempt + 1`.
async fn back_off(attempt: u32) {
    let base = 2_u64.saturating_pow(attempt.min(6));
    let jitter = rand::random::<u64>() % (base + 1);
    tokio::time::sleep(StdDuration::from_millis(base + jitter)).await;
}

fn retryable(err: &Error) -> bool {
    match err {
        Error::Internal(cause) => cause
            .downcast_ref::<sea_orm::DbErr>()
            .is_some_and(crate::ledger::is_retryable),
        _ => false,
    }
}

/// Locks `org`'s subscription row for the rest of the transaction and reads it.
async fn lock(txn: &DatabaseTransaction, org: OrgId) -> Result<subscriptions::Model, Error> {
    let backend = txn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT * FROM subscriptions WHERE organization_id = $1 FOR UPDATE",
        // The transaction already holds SQLite's write lock (`BEGIN IMMEDIATE`).
        _ => "SELECT * FROM subscriptions WHERE organization_id = $1",
    };
    subscriptions::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            backend,
            sql,
            [org.as_uuid().into()],
        ))
        .one(txn)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("subscription"))
}

/// What one attempt at applying a payment did.
enum Attempt {
    /// It extended the subscription; commit.
    Extended,
    /// The payment's period exists already; nothing to write.
    AlreadyApplied,
    /// The insert hit the payment's unique key (a concurrent duplicate got there
    /// first); roll back.
    Duplicate,
}

/// Applies a payment for `plan_code` to `org`'s subscription, once per `payment_id`.
///
/// The first call with a payment id extends the subscription by the plan's period,
/// starting at the later of `paid_at` and the current period's end; switches the
/// organization to `plan_code` if it is on another plan (time left on the old plan
/// carries over); makes the subscription `active` (clearing grace); records the period;
/// and writes an audit entry, all in one transaction. Any later call with the same
/// payment id, concurrent or not, changes nothing. Either way the answer is the
/// subscription as it stands after the call.
///
/// The plan may be archived (a payment started before it was archived is honoured);
/// it may not be free (422 on `plan_code`), and `amount` may not be negative (422 on
/// `amount`). The amount is recorded as paid; checking it against the price is the
/// payment flow's business when it asks for the payment. Errors: [`Error::NotFound`]
/// for an unknown plan or an organization without a subscription.
///
/// Safe to call from any tenant scope: it runs in `org`'s.
pub async fn apply_paid_period(
    db: &DatabaseConnection,
    org: OrgId,
    plan_code: &str,
    payment_id: uuid::Uuid,
    amount: Money,
    paid_at: DateTime<Utc>,
) -> Result<Subscription, Error> {
    // Stored times have microseconds: compute with what will be stored.
    let paid_at = paid_at.trunc_subsecs(6);
    tenant_scope::in_organization(org, async {
        let plan = plans::find(db, plan_code).await?;
        if plan.is_free() {
            return Err(Error::invalid(
                "plan_code",
                format!(
                    "the {} plan is free: there is no period to pay for",
                    plan.code
                ),
            ));
        }
        if amount.is_negative() {
            return Err(Error::invalid("amount", "must be zero or more"));
        }
        let mut attempt = 0_u32;
        loop {
            attempt += 1;
            match apply_once(db, org, &plan, payment_id, amount, paid_at).await {
                Ok(Attempt::Extended) => break,
                Ok(Attempt::AlreadyApplied | Attempt::Duplicate) => {
                    tracing::info!(
                        organization = %org,
                        payment = %payment_id,
                        "subscription payment already applied"
                    );
                    break;
                }
                Err(err) if attempt < MAX_ATTEMPTS && retryable(&err) => back_off(attempt).await,
                Err(err) => return Err(err),
            }
        }
        get(db, org).await
    })
    .await
}

async fn apply_once(
    db: &DatabaseConnection,
    org: OrgId,
    plan: &Plan,
    payment_id: uuid::Uuid,
    amount: Money,
    paid_at: DateTime<Utc>,
) -> Result<Attempt, Error> {
    let txn = begin_write(db).await.map_err(db_err)?;
    let result = extend(&txn, org, plan, payment_id, amount, paid_at).await;
    match result {
        Ok(Attempt::Extended | Attempt::AlreadyApplied) => {
            txn.commit().await.map_err(db_err)?;
        }
        Ok(Attempt::Duplicate) | Err(_) => {
            // The error that made us roll back is the one to report.
            txn.rollback().await.ok();
        }
    }
    result
}

async fn extend(
    txn: &DatabaseTransaction,
    org: OrgId,
    plan: &Plan,
    payment_id: uuid::Uuid,
    amount: Money,
    paid_at: DateTime<Utc>,
) -> Result<Attempt, Error> {
    let current = lock(txn, org).await?;
    let existing = subscription_periods::Entity::find()
        .filter(subscription_periods::Column::OrganizationId.eq(org.as_uuid()))
        .filter(subscription_periods::Column::PaymentId.eq(payment_id))
        .one(txn)
        .await
        .map_err(db_err)?;
    if let Some(existing) = existing {
        if existing.plan_code != plan.code || existing.amount_minor != amount.minor() {
            tracing::warn!(
                organization = %org,
                payment = %payment_id,
                applied_plan = %existing.plan_code,
                applied_minor = existing.amount_minor,
                plan = %plan.code,
                minor = amount.minor(),
                "a payment was applied again with other values; the first application stands"
            );
        }
        return Ok(Attempt::AlreadyApplied);
    }
    // The time of application (the payment's own time is `paid_at`).
    let applied_at = edge_core::Clock::now(&edge_core::SystemClock).trunc_subsecs(6);
    let starts_at = current
        .current_period_end
        .filter(|end| *end > paid_at)
        .unwrap_or(paid_at);
    let ends_at = starts_at + plan.period();
    let inserted = subscription_periods::Entity::insert(subscription_periods::ActiveModel {
        organization_id: Set(org.as_uuid()),
        id: Set(uuid::Uuid::now_v7()),
        payment_id: Set(payment_id),
        plan_code: Set(plan.code.clone()),
        starts_at: Set(starts_at),
        ends_at: Set(ends_at),
        amount_minor: Set(amount.minor()),
        currency: Set(amount.currency().code().to_owned()),
        created_at: Set(applied_at),
    })
    .exec_without_returning(txn)
    .await;
    match inserted {
        Ok(_) => {}
        Err(err) if crate::db::is_unique_violation(&err) => {
            return Ok(Attempt::Duplicate);
        }
        Err(err) => return Err(db_err(err)),
    }
    subscriptions::Entity::update_many()
        .col_expr(
            subscriptions::Column::PlanCode,
            Expr::value(plan.code.clone()),
        )
        .col_expr(
            subscriptions::Column::Status,
            Expr::value(SubscriptionStatus::Active.as_str()),
        )
        .col_expr(
            subscriptions::Column::CurrentPeriodEnd,
            Expr::value(ends_at),
        )
        .col_expr(
            subscriptions::Column::GraceEndsAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(subscriptions::Column::UpdatedAt, Expr::value(applied_at))
        .filter(subscriptions::Column::OrganizationId.eq(org.as_uuid()))
        .exec(txn)
        .await
        .map_err(db_err)?;
    if current.plan_code != plan.code {
        mirror_plan(txn, org, &plan.code, applied_at).await?;
    }
    audit::Entry::new(org, Actor::System, "subscription.period_paid")
        .target("subscription", org)
        .details(json!({
            "payment_id": payment_id,
            "plan": plan.code,
            "previous_plan": current.plan_code,
            "previous_status": current.status,
            "amount": amount,
            "paid_at": paid_at,
            "starts_at": starts_at,
            "ends_at": ends_at,
        }))
        .record(txn, &ClientInfo::default(), applied_at)
        .await?;
    tracing::info!(
        organization = %org,
        payment = %payment_id,
        plan = %plan.code,
        %ends_at,
        "subscription period paid"
    );
    Ok(Attempt::Extended)
}

/// Keeps `organizations.plan`, the copy shown by the organization views, equal to the
/// subscription's plan. Only this module writes it after an organization is created.
async fn mirror_plan<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    plan_code: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    organizations::Entity::update_many()
        .col_expr(organizations::Column::Plan, Expr::value(plan_code))
        .col_expr(organizations::Column::UpdatedAt, Expr::value(now))
        .filter(organizations::Column::Id.eq(org.as_uuid()))
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Puts `org` on `plan_code` without a payment (an operator's decision: a contract
/// settled elsewhere, a downgrade, a courtesy). The plan must be choosable (not
/// archived; 422 on `plan` otherwise). Moving to a free plan makes the subscription
/// active with no end; moving from a free plan to a paid one starts a first period
/// from `now`; otherwise the status and period are kept. Audited as `actor`.
pub async fn assign_plan(
    db: &DatabaseConnection,
    org: OrgId,
    plan_code: &str,
    actor: Actor,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Subscription, Error> {
    let now = now.trunc_subsecs(6);
    tenant_scope::in_organization(org, async {
        let plan = plans::choosable(db, plan_code, "plan").await?;
        let txn = begin_write(db).await.map_err(db_err)?;
        let result = async {
            let current = lock(&txn, org).await?;
            let (status, period_end, grace_ends_at) = if plan.is_free() {
                (SubscriptionStatus::Active, None, None)
            } else if current.current_period_end.is_none() {
                (SubscriptionStatus::Active, Some(now + plan.period()), None)
            } else {
                (
                    status_of(&current)?,
                    current.current_period_end,
                    current.grace_ends_at,
                )
            };
            subscriptions::Entity::update_many()
                .col_expr(
                    subscriptions::Column::PlanCode,
                    Expr::value(plan.code.clone()),
                )
                .col_expr(subscriptions::Column::Status, Expr::value(status.as_str()))
                .col_expr(
                    subscriptions::Column::CurrentPeriodEnd,
                    Expr::value(period_end),
                )
                .col_expr(
                    subscriptions::Column::GraceEndsAt,
                    Expr::value(grace_ends_at),
                )
                .col_expr(subscriptions::Column::UpdatedAt, Expr::value(now))
                .filter(subscriptions::Column::OrganizationId.eq(org.as_uuid()))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            mirror_plan(&txn, org, &plan.code, now).await?;
            audit::Entry::new(org, actor, "subscription.plan_assign")
                .target("subscription", org)
                .details(json!({
                    "plan": plan.code,
                    "previous_plan": current.plan_code,
                    "status": status,
                    "current_period_end": period_end,
                }))
                .record(&txn, client, now)
                .await
        }
        .await;
        match result {
            Ok(()) => txn.commit().await.map_err(db_err)?,
            Err(err) => {
                txn.rollback().await.ok();
                return Err(err);
            }
        }
        get(db, org).await
    })
    .await
}

/// Subscriptions looked at per query of [`advance`]; it queries again until none is left.
const ADVANCE_BATCH: u64 = 500;
/// Batches per step of one [`advance`] call at most (the next call takes the rest).
const ADVANCE_MAX_BATCHES: usize = 20;

/// Moves subscriptions along at `now`: active ones whose period has ended (on a plan
/// that is not free) to `grace`, with `grace_ends_at` = period end + the plan's grace
/// days; then those in grace whose grace has ended to `suspended`. A subscription
/// that lapsed long ago goes through both in one call. Each transition is one
/// conditional update (it happens only if the row still qualifies) with its audit entry,
/// so concurrent runs on several nodes move each subscription once. Returns the
/// transitions this call made, and logs each.
///
/// Runs across tenants (it reads every organization's subscription).
pub async fn advance(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<Vec<Transition>, Error> {
    let now = now.trunc_subsecs(6);
    tenant_scope::cross_tenant(async {
        let plans: HashMap<String, Plan> = plans::list(db, true)
            .await?
            .into_iter()
            .map(|plan| (plan.code.clone(), plan))
            .collect();
        let paid: Vec<String> = plans
            .values()
            .filter(|plan| !plan.is_free())
            .map(|plan| plan.code.clone())
            .collect();
        let mut transitions = Vec::new();

        for _ in 0..ADVANCE_MAX_BATCHES {
            let due = subscriptions::Entity::find()
                .filter(subscriptions::Column::Status.eq(SubscriptionStatus::Active.as_str()))
                .filter(subscriptions::Column::CurrentPeriodEnd.lte(now))
                .filter(subscriptions::Column::PlanCode.is_in(paid.clone()))
                .order_by_asc(subscriptions::Column::CurrentPeriodEnd)
                .limit(ADVANCE_BATCH)
                .all(db)
                .await
                .map_err(db_err)?;
            let full = due.len() as u64 == ADVANCE_BATCH;
            for row in due {
                let Some(plan) = plans.get(&row.plan_code) else {
                    continue;
                };
                let Some(period_end) = row.current_period_end else {
                    continue;
                };
                let grace_ends_at = period_end + plan.grace();
                let moved = transition(
                    db,
                    &row,
                    SubscriptionStatus::Grace,
                    Some(grace_ends_at),
                    now,
                    |update| {
                        update
                            .filter(subscriptions::Column::PlanCode.eq(row.plan_code.clone()))
                            .filter(subscriptions::Column::CurrentPeriodEnd.lte(now))
                    },
                )
                .await?;
                transitions.extend(moved);
            }
            if !full {
                break;
            }
        }

        for _ in 0..ADVANCE_MAX_BATCHES {
            let due = subscriptions::Entity::find()
                .filter(subscriptions::Column::Status.eq(SubscriptionStatus::Grace.as_str()))
                .filter(subscriptions::Column::GraceEndsAt.lte(now))
                .order_by_asc(subscriptions::Column::GraceEndsAt)
                .limit(ADVANCE_BATCH)
                .all(db)
                .await
                .map_err(db_err)?;
            let full = due.len() as u64 == ADVANCE_BATCH;
            for row in due {
                let moved = transition(
                    db,
                    &row,
                    SubscriptionStatus::Suspended,
                    row.grace_ends_at,
                    now,
                    |update| update.filter(subscriptions::Column::GraceEndsAt.lte(now)),
                )
                .await?;
                transitions.extend(moved);
            }
            if !full {
                break;
            }
        }
        Ok(transitions)
    })
    .await
}

/// Moves `row` to `to` if it still has the status it was read with and still passes
/// `condition`; audits the move in the same transaction. `None` if another run (or a
/// payment) got there first.
async fn transition(
    db: &DatabaseConnection,
    row: &subscriptions::Model,
    to: SubscriptionStatus,
    grace_ends_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    condition: impl FnOnce(
        sea_orm::UpdateMany<subscriptions::Entity>,
    ) -> sea_orm::UpdateMany<subscriptions::Entity>,
) -> Result<Option<Transition>, Error> {
    let org = OrgId::from_uuid(row.organization_id);
    let from = status_of(row)?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let result = async {
        let update = subscriptions::Entity::update_many()
            .col_expr(subscriptions::Column::Status, Expr::value(to.as_str()))
            .col_expr(
                subscriptions::Column::GraceEndsAt,
                Expr::value(grace_ends_at),
            )
            .col_expr(subscriptions::Column::UpdatedAt, Expr::value(now))
            .filter(subscriptions::Column::OrganizationId.eq(row.organization_id))
            .filter(subscriptions::Column::Status.eq(from.as_str()));
        let updated = condition(update).exec(&txn).await.map_err(db_err)?;
        if updated.rows_affected != 1 {
            return Ok(None);
        }
        let transition = Transition {
            organization: org,
            plan_code: row.plan_code.clone(),
            from,
            to,
            current_period_end: row.current_period_end,
            grace_ends_at,
        };
        audit::Entry::new(
            org,
            Actor::System,
            match to {
                SubscriptionStatus::Grace => "subscription.grace",
                SubscriptionStatus::Suspended => "subscription.suspend",
                SubscriptionStatus::Active => "subscription.activate",
            },
        )
        .target("subscription", org)
        .details(json!({
            "from": from,
            "to": to,
            "plan": row.plan_code,
            "current_period_end": row.current_period_end,
            "grace_ends_at": grace_ends_at,
        }))
        .record(&txn, &ClientInfo::default(), now)
        .await?;
        Ok(Some(transition))
    }
    .await;
    match result {
        Ok(transition) => {
            txn.commit().await.map_err(db_err)?;
            if let Some(t) = &transition {
                tracing::info!(
                    organization = %t.organization,
                    plan = %t.plan_code,
                    from = %t.from,
                    to = %t.to,
                    grace_ends_at = ?t.grace_ends_at,
                    "subscription moved"
                );
            }
            Ok(transition)
        }
        Err(err) => {
            txn.rollback().await.ok();
            Err(err)
        }
    }
}
