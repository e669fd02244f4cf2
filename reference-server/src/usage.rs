//! Usage metering: what each organization consumes, counted per day and per month.

use chrono::{DateTime, Utc};
use edge_core::{Error, OrgId, SharedClock};
use edge_tenancy::{BoxFuture, UsageMeter};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};

use crate::entities::usage_counters;

/// The metric counting authenticated API requests.
pub const API_CALLS: &str = "api_calls";

/// Counts usage in `usage_counters`, one row per organization, metric and period.
#[derive(Clone)]
pub struct DbUsageMeter {
    db: DatabaseConnection,
    clock: SharedClock,
}

impl DbUsageMeter {
    /// A meter over `db`.
    pub fn new(db: DatabaseConnection, clock: SharedClock) -> Self {
        Self { db, clock }
    }
}

/// The day (`2026-11-23`) and month (`2026-11`) periods that `at` falls in (UTC).
pub fn periods(at: DateTime<Utc>) -> [String; 2] {
    [
        at.format("%Y-%m-%d").to_string(),
        at.format("%Y-%m").to_string(),
    ]
}

impl UsageMeter for DbUsageMeter {
    fn record<'a>(
        &'a self,
        org: OrgId,
        metric: &'a str,
        amount: u64,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let now = self.clock.now();
            let amount = i64::try_from(amount).map_err(Error::internal)?;
            let rows = periods(now).map(|period| usage_counters::ActiveModel {
                organization_id: Set(org.as_uuid()),
                metric: Set(metric.to_owned()),
                period: Set(period),
                count: Set(amount),
                updated_at: Set(now),
            });
            usage_counters::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([
                        usage_counters::Column::OrganizationId,
                        usage_counters::Column::Metric,
                        usage_counters::Column::Period,
                    ])
                    .value(
                        usage_counters::Column::Count,
                        Expr::col((usage_counters::Entity, usage_counters::Column::Count))
                            .add(amount),
                    )
                    .update_column(usage_counters::Column::UpdatedAt)
                    .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await
                .map_err(Error::internal)?;
            Ok(())
        })
    }
}

/// A month, `YYYY-MM`, as `[start, end)` instants (UTC, like the usage counters).
pub fn month_bounds(month: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), Error> {
    let bad = || Error::invalid("month", "must be a month, YYYY-MM");
    let first =
        chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    if month.len() != 7 {
        return Err(bad());
    }
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(bad)?;
    let midnight = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    Ok((midnight(first), midnight(next)))
}

/// The usage report of each organization in `orgs` for `month` (`YYYY-MM`, UTC):
///
/// - `counters`: every metric counted for the month (`api_calls`, `exports`,
///   `exported_rows`, …);
/// - `messages`: WhatsApp messages created in the month, by direction;
/// - `payments`: payments that succeeded in the month (by `completed_at`), per currency:
///   their count and the amount M-Pesa reports paid, in minor units;
/// - `storage`: per tenant table, its rows and an estimate of their size (the characters
///   of every value as text, the same measure on SQLite and PostgreSQL), and the totals.
///
/// The caller chooses the scope: one organization's, or cross-tenant for operators.
pub async fn report(
    db: &DatabaseConnection,
    orgs: &[uuid::Uuid],
    month: &str,
) -> Result<std::collections::BTreeMap<uuid::Uuid, serde_json::Value>, Error> {
    use sea_orm::sea_query::{Alias, Query};
    use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter};
    use serde_json::{Map, Value, json};
    use std::collections::BTreeMap;

    let (start, end) = month_bounds(month)?;
    let col = |name: &str| Expr::col(Alias::new(name));
    let mut counters: BTreeMap<uuid::Uuid, Map<String, Value>> = BTreeMap::new();
    let mut messages: BTreeMap<uuid::Uuid, Map<String, Value>> = BTreeMap::new();
    let mut payments: BTreeMap<uuid::Uuid, Map<String, Value>> = BTreeMap::new();
    if !orgs.is_empty() {
        let rows = usage_counters::Entity::find()
            .filter(usage_counters::Column::OrganizationId.is_in(orgs.iter().copied()))
            .filter(usage_counters::Column::Period.eq(month))
            .all(db)
            .await
            .map_err(Error::internal)?;
        for row in rows {
            counters
                .entry(row.organization_id)
                .or_default()
                .insert(row.metric, json!(row.count));
        }
        let mut select = Query::select();
        select
            .column(Alias::new("organization_id"))
            .column(Alias::new("direction"))
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
            .from(Alias::new("whatsapp_messages"))
            .and_where(col("organization_id").is_in(orgs.iter().copied()))
            .and_where(col("created_at").gte(start))
            .and_where(col("created_at").lt(end))
            .group_by_col(Alias::new("organization_id"))
            .group_by_col(Alias::new("direction"));
        for row in db.query_all(&select).await.map_err(Error::internal)? {
            let org: uuid::Uuid = row
                .try_get("", "organization_id")
                .map_err(Error::internal)?;
            let direction: String = row.try_get("", "direction").map_err(Error::internal)?;
            let n: i64 = row.try_get("", "n").map_err(Error::internal)?;
            messages.entry(org).or_default().insert(direction, json!(n));
        }
        let mut select = Query::select();
        select
            .column(Alias::new("organization_id"))
            .column(Alias::new("currency"))
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
            .expr_as(
                Expr::cust(
                    "CAST(COALESCE(SUM(COALESCE(paid_amount_minor, amount_minor)), 0) AS BIGINT)",
                ),
                Alias::new("total"),
            )
            .from(Alias::new("payments"))
            .and_where(col("organization_id").is_in(orgs.iter().copied()))
            .and_where(col("status").eq("succeeded"))
            .and_where(col("completed_at").gte(start))
            .and_where(col("completed_at").lt(end))
            .group_by_col(Alias::new("organization_id"))
            .group_by_col(Alias::new("currency"));
        for row in db.query_all(&select).await.map_err(Error::internal)? {
            let org: uuid::Uuid = row
                .try_get("", "organization_id")
                .map_err(Error::internal)?;
            let currency: String = row.try_get("", "currency").map_err(Error::internal)?;
            let n: i64 = row.try_get("", "n").map_err(Error::internal)?;
            let total: i64 = row.try_get("", "total").map_err(Error::internal)?;
            payments
                .entry(org)
                .or_default()
                .insert(currency, json!({ "succeeded": n, "amount_minor": total }));
        }
    }
    let storage = crate::exports::storage(db, orgs).await?;
    let mut out = BTreeMap::new();
    for org in orgs {
        let tables = storage.get(org).cloned().unwrap_or_default();
        let rows: i64 = tables.values().map(|(n, _)| n).sum();
        let bytes: i64 = tables.values().map(|(_, b)| b).sum();
        let tables: Map<String, Value> = tables
            .into_iter()
            .map(|(table, (n, b))| (table.to_owned(), json!({ "rows": n, "bytes": b })))
            .collect();
        let mut messages = messages.remove(org).unwrap_or_default();
        for direction in ["inbound", "outbound"] {
            messages.entry(direction).or_insert(json!(0));
        }
        out.insert(
            *org,
            json!({
                "organization_id": org,
                "month": month,
                "counters": counters.remove(org).unwrap_or_default(),
                "messages": messages,
                "payments": payments.remove(org).unwrap_or_default(),
                "storage": { "rows": rows, "bytes": bytes, "tables": tables },
            }),
        );
    }
    Ok(out)
}
