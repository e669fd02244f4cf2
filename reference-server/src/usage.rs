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
