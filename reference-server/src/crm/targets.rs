//! Targets: a goal on one metric over a period, for one member (a personal target),
//! several (a team's) or the whole organization (`user_ids: []`).
//!
//! Metrics, all computed from the data when a target is read (never stored):
//! - `revenue_won`: the sum of `deals.value_minor` of deals won (`status = 'won'`) with
//!   `closed_at` in the period, owned by one of `user_ids` (any owner when empty), not
//!   deleted, in the target's currency. The goal is money in the organization's
//!   currency: `{"amount": "150000.00", "currency": "KES"}`.
//! - `deals_won`: the number of those deals. The goal is a count.
//! - `activities_completed`: the number of activities completed (`completed_at`) in the
//!   period, owned by one of `user_ids` (anyone when empty), not deleted. A count.
//!
//! A period is whole days, `period_start` to `period_end` inclusive, in the
//! organization's local time (East Africa Time, UTC+3, for Kenya, Uganda and Tanzania;
//! Central Africa Time, UTC+2, for Rwanda): a deal won at 23:30 in Nairobi on the last
//! day counts.
//!
//! Progress is `{"achieved", "goal", "percent"}`: money or counts, and the whole percent
//! achieved (rounded down; above 100 when the goal is beaten).
//!
//! Managers and admins set targets (`crm_assign`); anyone with `crm_read` reads them.
//! Under the `own` visibility setting, a `user` sees the organization's targets and the
//! ones that name them, not other people's. Members named in `user_ids` must be active
//! members when the target is set.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use edge_core::{Country, Currency, Error, Money, Page};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::CrmContext;
use super::fields::{Checks, caller, check_assignee};
use super::list::{ListQuery, ListSpec, SortKind, SortValue, Sortable};
use super::records::{RecordChecks, choices, db_err};
use super::visibility::Scope;
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::{activities, targets};

/// Every metric.
pub const METRICS: [&str; 3] = ["revenue_won", "deals_won", "activities_completed"];
/// The longest name, in characters.
pub const MAX_NAME: usize = 100;
/// The most members one target may name.
pub const MAX_USERS: usize = 100;

/// `GET /targets`: sort by `created_at` (default, newest first) or `updated_at`; filter
/// by `metric` (one or several, comma-separated), `user_id` (targets naming this member,
/// or `me`), `active_on` (a date, `YYYY-MM-DD`, inside the period), `created_after`,
/// `created_before`.
pub const LIST: ListSpec = ListSpec {
    tag_kind: None,
    sorts: &[
        Sortable {
            name: "created_at",
            kind: SortKind::Time,
        },
        Sortable {
            name: "updated_at",
            kind: SortKind::Time,
        },
    ],
    default_sort: "-created_at",
    owner_column: None,
    search_column: None,
    phone_column: None,
    custom_fields: None,
    filters: &["metric", "user_id", "active_on"],
};

/// How far a target has come.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Progress {
    /// Money for `revenue_won`, a count otherwise.
    pub achieved: Value,
    /// The goal, in the same form.
    pub goal: Value,
    /// `achieved` as a whole percent of `goal`, rounded down; may exceed 100.
    pub percent: i64,
}

/// A target as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TargetView {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// `revenue_won`, `deals_won` or `activities_completed`.
    pub metric: String,
    /// The members it is for; empty for the whole organization.
    pub user_ids: Vec<uuid::Uuid>,
    /// `personal` (one member), `team` (several) or `organization`.
    pub scope: &'static str,
    /// First day.
    pub period_start: NaiveDate,
    /// Last day (inclusive).
    pub period_end: NaiveDate,
    /// Money for `revenue_won`, a count otherwise.
    pub goal: Value,
    /// Computed now.
    pub progress: Progress,
    /// Who set it.
    pub created_by: Option<uuid::Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// `POST /targets`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    /// Name (required).
    pub name: Option<String>,
    /// The metric (required).
    pub metric: Option<String>,
    /// The members it is for; empty or absent for the whole organization.
    pub user_ids: Option<Vec<String>>,
    /// First day, `YYYY-MM-DD` (required).
    pub period_start: Option<String>,
    /// Last day, inclusive (required).
    pub period_end: Option<String>,
    /// Money for `revenue_won`, a whole number otherwise (required).
    pub goal: Option<Value>,
}

/// `PATCH /targets/{id}`: absent fields stay. The metric cannot change.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetPatch {
    /// Name.
    pub name: Option<String>,
    /// Only accepted when it is the target's own metric.
    pub metric: Option<String>,
    /// The members it is for; `[]` for the whole organization.
    pub user_ids: Option<Vec<String>>,
    /// First day.
    pub period_start: Option<String>,
    /// Last day (inclusive).
    pub period_end: Option<String>,
    /// The goal.
    pub goal: Option<Value>,
}

/// The organization's offset from UTC in seconds, by country.
pub(crate) fn local_offset_seconds(country: Country) -> i64 {
    match country {
        Country::Rwanda => 2 * 3600,
        _ => 3 * 3600,
    }
}

/// The period as UTC instants: `[start, end)`, midnight to midnight local time.
pub(crate) fn period_bounds(
    start: NaiveDate,
    end: NaiveDate,
    country: Country,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let offset = Duration::seconds(local_offset_seconds(country));
    let midnight = |day: NaiveDate| (day.and_time(NaiveTime::MIN) - offset).and_utc();
    (midnight(start), midnight(end + Duration::days(1)))
}

fn percent(achieved: i64, goal: i64) -> i64 {
    if goal <= 0 {
        return 0;
    }
    let value = i128::from(Ord::max(achieved, 0)) * 100 / i128::from(goal);
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Reads a goal for `metric`: money in `currency` for revenue, a count otherwise.
/// Returns minor units or the count, and the currency for money.
fn parse_goal(
    checks: &mut Checks,
    metric: &str,
    value: &Value,
    currency: Currency,
) -> Option<(i64, Option<Currency>)> {
    if metric == "revenue_won" {
        let shape = format!(
            "must be money in {currency}, like {{\"amount\": \"150000.00\", \"currency\": \"{currency}\"}}"
        );
        let (Some(amount), Some(code)) = (
            value.get("amount").and_then(Value::as_str),
            value.get("currency").and_then(Value::as_str),
        ) else {
            checks.fail("goal", shape);
            return None;
        };
        if !code.trim().eq_ignore_ascii_case(currency.code()) {
            checks.fail(
                "goal.currency",
                format!("must be {currency}, the organization's currency"),
            );
            return None;
        }
        return match Money::parse(amount, currency) {
            Ok(money) if money.minor() > 0 => Some((money.minor(), Some(currency))),
            Ok(_) => {
                checks.fail("goal.amount", "must be more than zero");
                None
            }
            Err(e) => {
                checks.fail("goal.amount", e.to_string());
                None
            }
        };
    }
    match value.as_i64() {
        Some(count) if count > 0 => Some((count, None)),
        _ => {
            checks.fail(
                "goal",
                format!("must be a whole number above zero for {metric}"),
            );
            None
        }
    }
}

/// Parses, de-duplicates and checks the members a target names.
async fn parse_users<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantContext,
    checks: &mut Checks,
    values: &[String],
) -> Result<Vec<uuid::Uuid>, Error> {
    if values.len() > MAX_USERS {
        checks.fail("user_ids", format!("must name at most {MAX_USERS} members"));
        return Ok(Vec::new());
    }
    let mut users = Vec::new();
    for (i, text) in values.iter().enumerate() {
        let field = format!("user_ids[{i}]");
        let Ok(user) = uuid::Uuid::parse_str(text.trim()) else {
            checks.fail(field, "must be a user id (a UUID)");
            continue;
        };
        if users.contains(&user) {
            continue;
        }
        // Setting targets needs crm_assign, so this checks membership only.
        match check_assignee(conn, ctx, &field, user).await {
            Ok(()) => users.push(user),
            Err(Error::Validation(problems)) => {
                for problem in problems {
                    checks.fail(problem.field, problem.message);
                }
            }
            Err(e) => return Err(e),
        }
    }
    users.sort();
    Ok(users)
}

fn stored_users(row: &targets::Model) -> Vec<uuid::Uuid> {
    serde_json::from_value(row.user_ids.clone()).unwrap_or_default()
}

fn visible(scope: Scope, row: &targets::Model) -> bool {
    match scope.restricted_to() {
        None => true,
        Some(me) => {
            let users = stored_users(row);
            users.is_empty() || users.contains(&me)
        }
    }
}

fn goal_value(row: &targets::Model, amount: i64) -> Value {
    match row.currency.as_deref().map(str::parse::<Currency>) {
        Some(Ok(currency)) => json!(Money::from_minor(amount, currency)),
        _ => json!(amount),
    }
}

/// Computes a target's progress from the data.
pub async fn progress<C: ConnectionTrait>(
    conn: &C,
    row: &targets::Model,
    country: Country,
) -> Result<Progress, Error> {
    let (start, end) = period_bounds(row.period_start, row.period_end, country);
    let users = stored_users(row);
    let achieved = match row.metric.as_str() {
        "activities_completed" => {
            let mut select = activities::Entity::find()
                .filter(activities::Column::OrganizationId.eq(row.organization_id))
                .filter(activities::Column::DeletedAt.is_null())
                .filter(activities::Column::CompletedAt.gte(start))
                .filter(activities::Column::CompletedAt.lt(end));
            if !users.is_empty() {
                select = select.filter(activities::Column::OwnerId.is_in(users));
            }
            let n = select.count(conn).await.map_err(db_err)?;
            i64::try_from(n).unwrap_or(i64::MAX)
        }
        metric => {
            let col = |name: &str| Expr::col(Alias::new(name));
            let mut select = Query::select();
            select.expr_as(
                if metric == "revenue_won" {
                    Expr::cust("CAST(COALESCE(SUM(value_minor), 0) AS BIGINT)")
                } else {
                    Expr::cust("COUNT(*)")
                },
                Alias::new("n"),
            );
            select
                .from(Alias::new("deals"))
                .and_where(col("organization_id").eq(row.organization_id))
                .and_where(col("status").eq("won"))
                .and_where(col("closed_at").gte(start))
                .and_where(col("closed_at").lt(end))
                .and_where(col("deleted_at").is_null());
            if metric == "revenue_won"
                && let Some(currency) = &row.currency
            {
                select.and_where(col("currency").eq(currency.as_str()));
            }
            if !users.is_empty() {
                select.and_where(col("owner_id").is_in(users));
            }
            match conn.query_one(&select).await.map_err(db_err)? {
                Some(result) => result.try_get::<i64>("", "n").map_err(db_err)?,
                None => 0,
            }
        }
    };
    Ok(Progress {
        achieved: goal_value(row, achieved),
        goal: goal_value(row, row.goal),
        percent: percent(achieved, row.goal),
    })
}

async fn view<C: ConnectionTrait>(
    conn: &C,
    row: targets::Model,
    country: Country,
) -> Result<TargetView, Error> {
    let progress = progress(conn, &row, country).await?;
    let user_ids = stored_users(&row);
    Ok(TargetView {
        id: row.id,
        scope: match user_ids.len() {
            0 => "organization",
            1 => "personal",
            _ => "team",
        },
        goal: goal_value(&row, row.goal),
        name: row.name,
        metric: row.metric,
        user_ids,
        period_start: row.period_start,
        period_end: row.period_end,
        progress,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantContext,
    scope: Scope,
    id: uuid::Uuid,
) -> Result<targets::Model, Error> {
    targets::Entity::find()
        .filter(targets::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(targets::Column::Id.eq(id))
        .filter(targets::Column::DeletedAt.is_null())
        .one(conn)
        .await
        .map_err(db_err)?
        .filter(|row| visible(scope, row))
        .ok_or(Error::not_found("target"))
}

fn check_period(checks: &mut Checks, start: Option<NaiveDate>, end: Option<NaiveDate>) {
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        checks.fail("period_end", "must be on or after period_start");
    }
}

/// Sets a target.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: NewTarget,
) -> Result<TargetView, Error> {
    ctx.require(Permission::CrmAssign)?;
    let cx = CrmContext::load(db, ctx).await?;
    let mut checks = Checks::new();
    let name = checks
        .required("name", input.name.as_deref())
        .map(|text| checks.text("name", text, MAX_NAME))
        .unwrap_or_default();
    let metric = checks
        .required("metric", input.metric.as_deref())
        .and_then(|text| checks.choice("metric", text, &METRICS));
    let start = checks
        .required("period_start", input.period_start.as_deref())
        .and_then(|text| checks.date("period_start", text));
    let end = checks
        .required("period_end", input.period_end.as_deref())
        .and_then(|text| checks.date("period_end", text));
    check_period(&mut checks, start, end);
    let goal = match (metric, checks.required("goal", input.goal.as_ref())) {
        (Some(metric), Some(value)) => parse_goal(&mut checks, metric, value, cx.currency),
        _ => None,
    };
    let txn = begin_write(db).await.map_err(db_err)?;
    let users = parse_users(
        &txn,
        ctx,
        &mut checks,
        input.user_ids.as_deref().unwrap_or_default(),
    )
    .await?;
    checks.finish()?;
    let (Some(metric), Some(start), Some(end), Some((goal, currency))) = (metric, start, end, goal)
    else {
        return Err(Error::invalid("goal", "is required"));
    };
    let row = targets::Model {
        organization_id: ctx.org().as_uuid(),
        id: uuid::Uuid::now_v7(),
        name,
        metric: metric.to_owned(),
        user_ids: json!(users),
        period_start: start,
        period_end: end,
        goal,
        currency: currency.map(|c| c.code().to_owned()),
        created_by: caller(ctx),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    targets::Entity::insert(targets::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "target.create")
        .target("target", row.id)
        .details(json!({
            "name": row.name,
            "metric": row.metric,
            "user_ids": row.user_ids,
            "period_start": row.period_start,
            "period_end": row.period_end,
            "goal": goal_value(&row, row.goal),
        }))
        .record(&txn, client, now)
        .await?;
    // Progress is computed before the commit: a target that cannot be read is not kept.
    let view = view(&txn, row, cx.country).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Lists the targets the caller may see, each with its progress.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    pairs: Vec<(String, String)>,
) -> Result<Page<TargetView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    let me = caller(ctx);
    let query = ListQuery::parse(pairs, LIST, &cx.settings, me, cx.country)?;
    let backend = db.get_database_backend();
    let mut select = targets::Entity::find()
        .filter(targets::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(targets::Column::DeletedAt.is_null());
    if let Some(user) = cx.scope.restricted_to() {
        select = select.filter(
            Condition::any()
                .add(names_nobody())
                .add(names_user(backend, user)),
        );
    }
    if let Some(metrics) = choices(&query, "metric", &METRICS)? {
        select = select.filter(targets::Column::Metric.is_in(metrics));
    }
    match query.text("user_id") {
        None => {}
        Some("me") => match me {
            Some(me) => select = select.filter(names_user(backend, me)),
            None => return Err(Error::invalid("user_id", "`me` needs a signed-in user")),
        },
        Some(_) => {
            let user = query.uuid("user_id")?;
            if let Some(user) = user {
                select = select.filter(names_user(backend, user));
            }
        }
    }
    if let Some(text) = query.text("active_on") {
        let mut checks = Checks::new();
        let day = checks.date("active_on", text);
        checks.finish()?;
        if let Some(day) = day {
            select = select
                .filter(targets::Column::PeriodStart.lte(day))
                .filter(targets::Column::PeriodEnd.gte(day));
        }
    }
    let rows = query
        .finish(select, backend, ctx.org().as_uuid())?
        .all(db)
        .await
        .map_err(db_err)?;
    let page = query.page(
        rows,
        |row, sort| match sort {
            "updated_at" => SortValue::Time(row.updated_at),
            _ => SortValue::Time(row.created_at),
        },
        |row| row.id,
    );
    let mut items = Vec::with_capacity(page.items.len());
    for row in page.items {
        items.push(view(db, row, cx.country).await?);
    }
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// The targets the caller may see whose period overlaps `from..=to` (days), oldest
/// first, each with its progress (for analytics).
pub async fn overlapping(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<TargetView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    let rows = targets::Entity::find()
        .filter(targets::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(targets::Column::DeletedAt.is_null())
        .filter(targets::Column::PeriodStart.lte(to))
        .filter(targets::Column::PeriodEnd.gte(from))
        .order_by_asc(targets::Column::CreatedAt)
        .order_by_asc(targets::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?;
    let mut views = Vec::new();
    for row in rows.into_iter().filter(|row| visible(cx.scope, row)) {
        views.push(view(db, row, cx.country).await?);
    }
    Ok(views)
}

/// Targets for the whole organization (`user_ids` is `[]`).
fn names_nobody() -> SimpleExpr {
    Expr::cust("CAST(\"user_ids\" AS TEXT) = '[]'")
}

/// Targets whose `user_ids` include `user` (ids are stored as quoted, hyphenated,
/// lower-case text inside the JSON array, so the pattern cannot match anything else).
fn names_user(backend: DbBackend, user: uuid::Uuid) -> SimpleExpr {
    // SQLite reads `$1` as a named parameter; PostgreSQL takes no `?`.
    let sql = match backend {
        DbBackend::Postgres => "CAST(\"user_ids\" AS TEXT) LIKE $1",
        _ => "CAST(\"user_ids\" AS TEXT) LIKE ?",
    };
    Expr::cust_with_values(sql, [format!("%\"{}\"%", user.hyphenated())])
}

/// One target with its progress.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: uuid::Uuid,
) -> Result<TargetView, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    let row = find(db, ctx, cx.scope, id).await?;
    view(db, row, cx.country).await
}

/// Changes a target's name, members, period or goal.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    patch: TargetPatch,
) -> Result<TargetView, Error> {
    ctx.require(Permission::CrmAssign)?;
    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = find(&txn, ctx, cx.scope, id).await?;
    let mut checks = Checks::new();
    if let Some(metric) = patch.metric.as_deref()
        && metric.trim() != current.metric
    {
        checks.fail(
            "metric",
            "cannot change; set a new target for another metric",
        );
    }
    let name = patch
        .name
        .as_deref()
        .map(|text| checks.text("name", text, MAX_NAME));
    let start = patch
        .period_start
        .as_deref()
        .and_then(|text| checks.date("period_start", text));
    let end = patch
        .period_end
        .as_deref()
        .and_then(|text| checks.date("period_end", text));
    check_period(
        &mut checks,
        Some(start.unwrap_or(current.period_start)),
        Some(end.unwrap_or(current.period_end)),
    );
    let goal = patch
        .goal
        .as_ref()
        .and_then(|value| parse_goal(&mut checks, &current.metric, value, cx.currency));
    let users = match &patch.user_ids {
        Some(values) => Some(parse_users(&txn, ctx, &mut checks, values).await?),
        None => None,
    };
    checks.finish()?;

    let mut next = current.clone();
    let mut changed: Vec<&str> = Vec::new();
    if let Some(name) = name.filter(|n| *n != current.name) {
        next.name = name;
        changed.push("name");
    }
    if let Some(start) = start.filter(|s| *s != current.period_start) {
        next.period_start = start;
        changed.push("period_start");
    }
    if let Some(end) = end.filter(|e| *e != current.period_end) {
        next.period_end = end;
        changed.push("period_end");
    }
    if let Some((goal, currency)) = goal {
        let currency = currency.map(|c| c.code().to_owned());
        if goal != current.goal || currency != current.currency {
            next.goal = goal;
            next.currency = currency;
            changed.push("goal");
        }
    }
    if let Some(users) = users.map(|u| json!(u)).filter(|u| *u != current.user_ids) {
        next.user_ids = users;
        changed.push("user_ids");
    }
    if changed.is_empty() {
        let view = view(&txn, current, cx.country).await?;
        txn.commit().await.map_err(db_err)?;
        return Ok(view);
    }
    next.updated_at = now;
    targets::Entity::update_many()
        .col_expr(targets::Column::Name, Expr::value(next.name.clone()))
        .col_expr(targets::Column::UserIds, Expr::value(next.user_ids.clone()))
        .col_expr(targets::Column::PeriodStart, Expr::value(next.period_start))
        .col_expr(targets::Column::PeriodEnd, Expr::value(next.period_end))
        .col_expr(targets::Column::Goal, Expr::value(next.goal))
        .col_expr(
            targets::Column::Currency,
            Expr::value(next.currency.clone()),
        )
        .col_expr(targets::Column::UpdatedAt, Expr::value(now))
        .filter(targets::Column::OrganizationId.eq(current.organization_id))
        .filter(targets::Column::Id.eq(current.id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "target.update")
        .target("target", current.id)
        .details(json!({
            "changed": changed,
            "goal": goal_value(&next, next.goal),
            "user_ids": next.user_ids,
            "period_start": next.period_start,
            "period_end": next.period_end,
        }))
        .record(&txn, client, now)
        .await?;
    let view = view(&txn, next, cx.country).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Deletes a target (soft).
pub async fn delete(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Result<(), Error> {
    ctx.require(Permission::CrmAssign)?;
    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = find(&txn, ctx, cx.scope, id).await?;
    let deleted = targets::Entity::update_many()
        .col_expr(targets::Column::DeletedAt, Expr::value(now))
        .col_expr(targets::Column::UpdatedAt, Expr::value(now))
        .filter(targets::Column::OrganizationId.eq(current.organization_id))
        .filter(targets::Column::Id.eq(current.id))
        .filter(targets::Column::DeletedAt.is_null())
        .exec(&txn)
        .await
        .map_err(db_err)?
        .rows_affected;
    if deleted != 1 {
        return Err(Error::not_found("target"));
    }
    audit::Entry::new(ctx.org(), Actor::of(ctx), "target.delete")
        .target("target", current.id)
        .details(json!({ "name": current.name, "metric": current.metric }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn periods_are_whole_local_days() {
        let (start, end) = period_bounds(day("2026-11-01"), day("2026-11-30"), Country::Kenya);
        assert_eq!(start.to_rfc3339(), "2026-10-31T21:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-11-30T21:00:00+00:00");
        let (start, _) = period_bounds(day("2026-11-01"), day("2026-11-01"), Country::Rwanda);
        assert_eq!(start.to_rfc3339(), "2026-10-31T22:00:00+00:00");
    }

    #[test]
    fn percent_is_whole_and_may_exceed_a_hundred() {
        assert_eq!(percent(0, 10), 0);
        assert_eq!(percent(3, 10), 30);
        assert_eq!(percent(2, 3), 66);
        assert_eq!(percent(25, 10), 250);
        assert_eq!(percent(i64::MAX, 1), i64::MAX);
    }

    #[test]
    fn goals_take_the_metric_form() {
        let mut checks = Checks::new();
        assert_eq!(
            parse_goal(
                &mut checks,
                "revenue_won",
                &json!({"amount": "150000.00", "currency": "KES"}),
                Currency::Kes
            ),
            Some((15_000_000, Some(Currency::Kes)))
        );
        assert_eq!(
            parse_goal(&mut checks, "deals_won", &json!(12), Currency::Kes),
            Some((12, None))
        );
        assert!(checks.finish().is_ok());
        let mut checks = Checks::new();
        parse_goal(
            &mut checks,
            "revenue_won",
            &json!({"amount": "10.00", "currency": "USD"}),
            Currency::Kes,
        );
        parse_goal(&mut checks, "revenue_won", &json!(100), Currency::Kes);
        parse_goal(&mut checks, "deals_won", &json!(0), Currency::Kes);
        parse_goal(
            &mut checks,
            "activities_completed",
            &json!("5"),
            Currency::Kes,
        );
        let Err(Error::Validation(problems)) = checks.finish() else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["goal.currency", "goal", "goal", "goal"]);
        assert!(problems[0].message.contains("KES"));
    }
}
