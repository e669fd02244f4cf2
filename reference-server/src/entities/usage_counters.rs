//! `usage_counters`: per organization, metric and period (`YYYY-MM-DD` or `YYYY-MM`).

use sea_orm::entity::prelude::*;

/// A usage counter row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_counters")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// What is counted, e.g. `api_calls`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub metric: String,
    /// The day (`2026-11-23`) or month (`2026-11`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    /// The count.
    pub count: i64,
    /// Last incremented.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
