//! `targets`: a goal on one metric for a period, for a person, a team or the whole
//! organization. Progress is computed when read.

use sea_orm::entity::prelude::*;

/// A target row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "targets")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The target id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// What it is called, e.g. "Q4 revenue, Nairobi team".
    pub name: String,
    /// `revenue_won`, `deals_won` or `activities_completed`.
    pub metric: String,
    /// JSON array of user ids: one is a personal target, several a team's, none the
    /// whole organization's.
    pub user_ids: Json,
    /// The first day of the period.
    pub period_start: Date,
    /// The last day of the period (inclusive).
    pub period_end: Date,
    /// Minor units of `currency` for `revenue_won`; a count otherwise.
    pub goal: i64,
    /// The currency of a `revenue_won` goal (the organization's).
    pub currency: Option<String>,
    /// The user who set it (none for API keys).
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
    /// When it was deleted; deleted targets are hidden everywhere.
    pub deleted_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
