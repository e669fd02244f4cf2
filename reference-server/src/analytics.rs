//! Analytics: what happened in an organization over a period, computed from the data when
//! asked (nothing is stored).
//!
//! Every report takes a period, `from` and `to`, two days (`YYYY-MM-DD`), both included,
//! in the organization's local time: the fixed offset of its country, the one targets
//! use (East Africa Time, UTC+3, for Kenya, Uganda and Tanzania; Central Africa Time,
//! UTC+2, for Rwanda; no daylight saving in either). Months (`"2026-11"`) are local
//! calendar months too. Without `from`/`to` the period is the last twelve local months up
//! to today. `to` before `from`, a malformed day or a period longer than
//! [`MAX_PERIOD_DAYS`] days answer 422.
//!
//! The CRM reports follow the caller's record visibility: under `own`, a `user` counts
//! only the deals they own and the activities they own or created.
//!
//! - [`pipeline_conversion`]: per pipeline and stage, the deals that entered the stage in
//!   the period (from `deal_stage_moves`), how many of them then moved out of it in the
//!   period, and how many of them are won or lost now.
//! - [`revenue_won`]: deals won (`closed_at` in the period) per local month and currency.
//! - [`payments_collected`]: succeeded payments per local month (of `paid_at`, or when
//!   the payment completed if M-Pesa gave no time), currency and purpose; the amount is
//!   what M-Pesa reports paid.
//! - [`activities`]: per member and activity kind, activities created and completed in
//!   the period.
//! - [`targets()`]: the targets whose period overlaps, with their progress.
//! - [`messages`]: WhatsApp messages by direction and status, by local month, and the
//!   fees captured from the wallet (ledger transfers `whatsapp:{id}:capture`) and
//!   refunded (`…:refund`) in the period, per currency.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use edge_core::{Currency, Error, FieldError, Money};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::crm::targets::{self, TargetView, local_offset_seconds, period_bounds};
use crate::crm::{CrmContext, visibility::Scope};
use crate::entities::{deal_stage_moves, deals, pipeline_stages, pipelines};

/// The longest period a report covers, in days.
pub const MAX_PERIOD_DAYS: i64 = 1_100;

/// A validated period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    /// The first day (local).
    pub from: NaiveDate,
    /// The last day (local), included.
    pub to: NaiveDate,
    /// The organization's offset from UTC, in seconds.
    pub utc_offset_seconds: i64,
    /// `from`'s local midnight, as an instant.
    #[serde(skip)]
    pub start: DateTime<Utc>,
    /// The local midnight after `to`, as an instant (excluded).
    #[serde(skip)]
    pub end: DateTime<Utc>,
}

impl Period {
    /// Reads `from` and `to` for an organization in `country`; `now` gives the default.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        country: edge_core::Country,
        now: DateTime<Utc>,
    ) -> Result<Self, Error> {
        let offset = local_offset_seconds(country);
        let mut problems = Vec::new();
        let mut day = |name: &str, text: Option<&str>| {
            text.and_then(|t| match NaiveDate::parse_from_str(t, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    problems.push(FieldError::new(name, "must be a day, YYYY-MM-DD"));
                    None
                }
            })
        };
        let from_day = day("from", from);
        let to_day = day("to", to);
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        let today = (now + Duration::seconds(offset)).date_naive();
        let to = to_day.unwrap_or(today);
        let from = match from_day {
            Some(d) => d,
            None => {
                let months_back = to.year() * 12 + to.month0() as i32 - 11;
                NaiveDate::from_ymd_opt(
                    months_back.div_euclid(12),
                    months_back.rem_euclid(12) as u32 + 1,
                    1,
                )
                .unwrap_or(to)
            }
        };
        if to < from {
            return Err(Error::invalid("to", "must be on or after from"));
        }
        if (to - from).num_days() + 1 > MAX_PERIOD_DAYS {
            return Err(Error::invalid(
                "to",
                format!("a period is at most {MAX_PERIOD_DAYS} days"),
            ));
        }
        let (start, end) = period_bounds(from, to, country);
        Ok(Self {
            from,
            to,
            utc_offset_seconds: offset,
            start,
            end,
        })
    }

    /// The SQL expression of the local month, `YYYY-MM`, of `instant` (an SQL expression,
    /// e.g. a quoted column).
    fn month(&self, backend: DbBackend, instant: &str) -> String {
        let seconds = self.utc_offset_seconds;
        match backend {
            DbBackend::Postgres => format!(
                "to_char(({instant} AT TIME ZONE 'UTC') + make_interval(secs => {seconds}), 'YYYY-MM')"
            ),
            _ => format!("strftime('%Y-%m', {instant}, '{seconds:+} seconds')"),
        }
    }

    fn json(&self) -> Value {
        json!({ "from": self.from, "to": self.to, "utc_offset_seconds": self.utc_offset_seconds })
    }
}

fn paid_at() -> sea_orm::sea_query::FunctionCall {
    sea_orm::sea_query::Func::coalesce([col("paid_at"), col("completed_at")])
}

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

fn money(minor: i64, currency: &str) -> Value {
    match currency.parse::<Currency>() {
        Ok(c) => json!(Money::from_minor(minor, c)),
        Err(_) => json!({ "amount_minor": minor, "currency": currency }),
    }
}

async fn rows(
    db: &impl ConnectionTrait,
    select: &SelectStatement,
) -> Result<Vec<sea_orm::QueryResult>, Error> {
    db.query_all(select).await.map_err(Error::internal)
}

fn get<T: sea_orm::TryGetable>(row: &sea_orm::QueryResult, name: &str) -> Result<T, Error> {
    row.try_get("", name).map_err(Error::internal)
}

/// The caller's organization context and the period they asked for.
async fn prepare(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(CrmContext, Period), Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    let period = Period::parse(from, to, cx.country, now)?;
    Ok((cx, period))
}

/// Pipeline conversion by stage (see the module docs).
pub async fn pipeline_conversion(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Value, Error> {
    let (cx, period) = prepare(db, ctx, now, from, to).await?;
    let org = ctx.org().as_uuid();
    let mut visible_deals = Query::select();
    visible_deals
        .column(Alias::new("id"))
        .from(Alias::new("deals"))
        .and_where(col("organization_id").eq(org))
        .and_where(col("deleted_at").is_null());
    if let Scope::OwnedBy(user) = cx.scope {
        visible_deals.and_where(col("owner_id").eq(user));
    }
    let moves = deal_stage_moves::Entity::find()
        .filter(deal_stage_moves::Column::OrganizationId.eq(org))
        .filter(deal_stage_moves::Column::MovedAt.gte(period.start))
        .filter(deal_stage_moves::Column::MovedAt.lt(period.end))
        .filter(Expr::col(Alias::new("deal_id")).in_subquery(visible_deals.clone()))
        .order_by_asc(deal_stage_moves::Column::MovedAt)
        .order_by_asc(deal_stage_moves::Column::Id)
        .all(db)
        .await
        .map_err(Error::internal)?;
    let moved_deals: BTreeSet<uuid::Uuid> = moves.iter().map(|m| m.deal_id).collect();
    let mut statuses: HashMap<uuid::Uuid, String> = HashMap::new();
    if !moved_deals.is_empty() {
        let mut in_period = Query::select();
        in_period
            .column(Alias::new("deal_id"))
            .from(Alias::new("deal_stage_moves"))
            .and_where(col("organization_id").eq(org))
            .and_where(col("moved_at").gte(period.start))
            .and_where(col("moved_at").lt(period.end));
        let found: Vec<(uuid::Uuid, String)> = deals::Entity::find()
            .select_only()
            .column(deals::Column::Id)
            .column(deals::Column::Status)
            .filter(deals::Column::OrganizationId.eq(org))
            .filter(Expr::col(Alias::new("id")).in_subquery(in_period))
            .into_tuple()
            .all(db)
            .await
            .map_err(Error::internal)?;
        statuses.extend(found);
    }
    // Per stage: the deals that entered it in the period (first entry), and those of
    // them that left it afterwards in the period.
    let mut entered: HashMap<uuid::Uuid, HashMap<uuid::Uuid, usize>> = HashMap::new();
    let mut moved_on: HashMap<uuid::Uuid, BTreeSet<uuid::Uuid>> = HashMap::new();
    for (i, m) in moves.iter().enumerate() {
        entered
            .entry(m.to_stage_id)
            .or_default()
            .entry(m.deal_id)
            .or_insert(i);
        if let Some(from_stage) = m.from_stage_id
            && let Some(first) = entered.get(&from_stage).and_then(|d| d.get(&m.deal_id))
            && *first < i
        {
            moved_on.entry(from_stage).or_default().insert(m.deal_id);
        }
    }
    let pipelines = pipelines::Entity::find()
        .filter(pipelines::Column::OrganizationId.eq(org))
        .order_by_asc(pipelines::Column::Position)
        .order_by_asc(pipelines::Column::Id)
        .all(db)
        .await
        .map_err(Error::internal)?;
    let stages = pipeline_stages::Entity::find()
        .filter(pipeline_stages::Column::OrganizationId.eq(org))
        .order_by_asc(pipeline_stages::Column::Position)
        .order_by_asc(pipeline_stages::Column::Id)
        .all(db)
        .await
        .map_err(Error::internal)?;
    let mut out = Vec::new();
    for pipeline in &pipelines {
        let mut rows = Vec::new();
        for stage in stages.iter().filter(|s| s.pipeline_id == pipeline.id) {
            let deals_in = entered.get(&stage.id);
            let n = deals_in.map_or(0, HashMap::len);
            let on = moved_on.get(&stage.id).map_or(0, BTreeSet::len);
            let count = |status: &str| {
                deals_in.map_or(0, |d| {
                    d.keys()
                        .filter(|id| statuses.get(id).is_some_and(|s| s == status))
                        .count()
                })
            };
            rows.push(json!({
                "stage_id": stage.id,
                "name": stage.name,
                "position": stage.position,
                "archived": stage.archived_at.is_some(),
                "entered": n,
                "moved_on": on,
                "won": count("won"),
                "lost": count("lost"),
                "moved_on_percent": (on * 100).checked_div(n).unwrap_or(0),
            }));
        }
        out.push(json!({
            "pipeline_id": pipeline.id,
            "name": pipeline.name,
            "archived": pipeline.archived_at.is_some(),
            "stages": rows,
        }));
    }
    Ok(json!({ "period": period.json(), "pipelines": out }))
}

/// Revenue won per local month and currency.
pub async fn revenue_won(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Value, Error> {
    ctx.require(Permission::BillingRead)?;
    let (cx, period) = prepare(db, ctx, now, from, to).await?;
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .expr_as(
            Expr::cust(period.month(backend, "\"closed_at\"")),
            Alias::new("month"),
        )
        .column(Alias::new("currency"))
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .expr_as(
            Expr::cust("CAST(COALESCE(SUM(value_minor), 0) AS BIGINT)"),
            Alias::new("total"),
        )
        .from(Alias::new("deals"))
        .and_where(col("organization_id").eq(ctx.org().as_uuid()))
        .and_where(col("status").eq("won"))
        .and_where(col("deleted_at").is_null())
        .and_where(col("closed_at").gte(period.start))
        .and_where(col("closed_at").lt(period.end))
        .add_group_by([Expr::cust("1"), col("currency")])
        .order_by_expr(Expr::cust("1"), sea_orm::Order::Asc)
        .order_by(Alias::new("currency"), sea_orm::Order::Asc);
    if let Scope::OwnedBy(user) = cx.scope {
        select.and_where(col("owner_id").eq(user));
    }
    let mut months = Vec::new();
    for row in rows(db, &select).await? {
        let currency: String = get(&row, "currency")?;
        months.push(json!({
            "month": get::<String>(&row, "month")?,
            "deals": get::<i64>(&row, "n")?,
            "revenue": money(get(&row, "total")?, &currency),
        }));
    }
    Ok(json!({ "period": period.json(), "months": months }))
}

/// Succeeded payments per local month, currency and purpose.
pub async fn payments_collected(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Value, Error> {
    ctx.require(Permission::BillingRead)?;
    let (_, period) = prepare(db, ctx, now, from, to).await?;
    let backend = db.get_database_backend();
    // The instant paid: M-Pesa's, else when the payment completed.
    let month = period.month(backend, "COALESCE(\"paid_at\", \"completed_at\")");
    let mut select = Query::select();
    select
        .expr_as(Expr::cust(month), Alias::new("month"))
        .column(Alias::new("currency"))
        .column(Alias::new("purpose"))
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .expr_as(
            Expr::cust(
                "CAST(COALESCE(SUM(COALESCE(paid_amount_minor, amount_minor)), 0) AS BIGINT)",
            ),
            Alias::new("total"),
        )
        .from(Alias::new("payments"))
        .and_where(col("organization_id").eq(ctx.org().as_uuid()))
        .and_where(col("status").eq("succeeded"))
        .and_where(Expr::expr(paid_at()).gte(period.start))
        .and_where(Expr::expr(paid_at()).lt(period.end))
        .add_group_by([Expr::cust("1"), col("currency"), col("purpose")])
        .order_by_expr(Expr::cust("1"), sea_orm::Order::Asc)
        .order_by(Alias::new("currency"), sea_orm::Order::Asc)
        .order_by(Alias::new("purpose"), sea_orm::Order::Asc);
    let mut months = Vec::new();
    for row in rows(db, &select).await? {
        let currency: String = get(&row, "currency")?;
        months.push(json!({
            "month": get::<String>(&row, "month")?,
            "purpose": get::<String>(&row, "purpose")?,
            "payments": get::<i64>(&row, "n")?,
            "collected": money(get(&row, "total")?, &currency),
        }));
    }
    Ok(json!({ "period": period.json(), "months": months }))
}

/// Activities created and completed in the period, per member and kind.
pub async fn activities(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Value, Error> {
    let (cx, period) = prepare(db, ctx, now, from, to).await?;
    // user (None: unassigned) -> kind -> (created, completed)
    let mut counts: BTreeMap<Option<uuid::Uuid>, BTreeMap<String, (i64, i64)>> = BTreeMap::new();
    for (column, completed) in [("created_at", false), ("completed_at", true)] {
        let mut select = Query::select();
        select
            .column(Alias::new("owner_id"))
            .column(Alias::new("kind"))
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
            .from(Alias::new("activities"))
            .and_where(col("organization_id").eq(ctx.org().as_uuid()))
            .and_where(col("deleted_at").is_null())
            .and_where(col(column).gte(period.start))
            .and_where(col(column).lt(period.end))
            .group_by_col(Alias::new("owner_id"))
            .group_by_col(Alias::new("kind"));
        if let Scope::OwnedBy(user) = cx.scope {
            select.cond_where(
                Condition::any()
                    .add(col("owner_id").eq(user))
                    .add(col("created_by").eq(user)),
            );
        }
        for row in rows(db, &select).await? {
            let owner: Option<uuid::Uuid> = get(&row, "owner_id")?;
            let kind: String = get(&row, "kind")?;
            let n: i64 = get(&row, "n")?;
            let entry = counts.entry(owner).or_default().entry(kind).or_default();
            if completed {
                entry.1 += n;
            } else {
                entry.0 += n;
            }
        }
    }
    let users: Vec<Value> = counts
        .into_iter()
        .map(|(user, kinds)| {
            let created: i64 = kinds.values().map(|(c, _)| c).sum();
            let completed: i64 = kinds.values().map(|(_, d)| d).sum();
            let by_kind: serde_json::Map<String, Value> = kinds
                .into_iter()
                .map(|(kind, (c, d))| (kind, json!({ "created": c, "completed": d })))
                .collect();
            json!({ "user_id": user, "created": created, "completed": completed, "by_kind": by_kind })
        })
        .collect();
    Ok(json!({ "period": period.json(), "users": users }))
}

/// The targets whose period overlaps, with their progress.
pub async fn targets(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Value, Error> {
    let (_, period) = prepare(db, ctx, now, from, to).await?;
    let views: Vec<TargetView> = targets::overlapping(db, ctx, period.from, period.to).await?;
    Ok(json!({ "period": period.json(), "targets": views }))
}

/// WhatsApp volume by direction and status, per month, and the fees spent.
pub async fn messages(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Value, Error> {
    ctx.require(Permission::BillingRead)?;
    let (_, period) = prepare(db, ctx, now, from, to).await?;
    let backend = db.get_database_backend();
    let org = ctx.org().as_uuid();
    let mut select = Query::select();
    select
        .expr_as(
            Expr::cust(period.month(backend, "\"occurred_at\"")),
            Alias::new("month"),
        )
        .column(Alias::new("direction"))
        .column(Alias::new("status"))
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .from(Alias::new("whatsapp_messages"))
        .and_where(col("organization_id").eq(org))
        .and_where(col("occurred_at").gte(period.start))
        .and_where(col("occurred_at").lt(period.end))
        .add_group_by([Expr::cust("1"), col("direction"), col("status")])
        .order_by_expr(Expr::cust("1"), sea_orm::Order::Asc)
        .order_by(Alias::new("direction"), sea_orm::Order::Asc)
        .order_by(Alias::new("status"), sea_orm::Order::Asc);
    let mut by_month = Vec::new();
    let mut totals: BTreeMap<(String, String), i64> = BTreeMap::new();
    for row in rows(db, &select).await? {
        let direction: String = get(&row, "direction")?;
        let status: String = get(&row, "status")?;
        let n: i64 = get(&row, "n")?;
        *totals
            .entry((direction.clone(), status.clone()))
            .or_default() += n;
        by_month.push(json!({
            "month": get::<String>(&row, "month")?,
            "direction": direction,
            "status": status,
            "messages": n,
        }));
    }
    let volume: Vec<Value> = totals
        .into_iter()
        .map(|((direction, status), n)| json!({ "direction": direction, "status": status, "messages": n }))
        .collect();
    let mut spend: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (suffix, refund) in [(":capture", false), (":refund", true)] {
        let mut select = Query::select();
        select
            .column(Alias::new("currency"))
            .expr_as(
                Expr::cust("CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT)"),
                Alias::new("total"),
            )
            .from(Alias::new("ledger_transfers"))
            .and_where(col("organization_id").eq(org))
            .and_where(col("idempotency_key").like(format!("whatsapp:%{suffix}")))
            .and_where(col("created_at").gte(period.start))
            .and_where(col("created_at").lt(period.end))
            .group_by_col(Alias::new("currency"));
        for row in rows(db, &select).await? {
            let entry = spend.entry(get(&row, "currency")?).or_default();
            let total: i64 = get(&row, "total")?;
            if refund {
                entry.1 += total;
            } else {
                entry.0 += total;
            }
        }
    }
    let spend: Vec<Value> = spend
        .into_iter()
        .map(|(currency, (captured, refunded))| {
            json!({
                "captured": money(captured, &currency),
                "refunded": money(refunded, &currency),
                "net": money(captured - refunded, &currency),
            })
        })
        .collect();
    Ok(json!({
        "period": period.json(),
        "volume": volume,
        "by_month": by_month,
        "spend": spend,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_core::Country;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn periods_are_local_days_and_validated() {
        let now = at("2026-11-24T22:30:00Z");
        let p = Period::parse(Some("2026-11-01"), Some("2026-11-30"), Country::Kenya, now).unwrap();
        assert_eq!(p.start, at("2026-10-31T21:00:00Z"));
        assert_eq!(p.end, at("2026-11-30T21:00:00Z"));
        // Default: twelve local months to today (already the 25th in Nairobi).
        let p = Period::parse(None, None, Country::Kenya, now).unwrap();
        assert_eq!(p.to, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        assert_eq!(p.from, NaiveDate::from_ymd_opt(2025, 12, 1).unwrap());
        for (from, to) in [
            (Some("2026-11-02"), Some("2026-11-01")),
            (Some("2026-13-01"), None),
            (Some("2020-01-01"), Some("2026-01-01")),
        ] {
            assert!(matches!(
                Period::parse(from, to, Country::Kenya, now),
                Err(Error::Validation(_))
            ));
        }
    }
}
