//! `subscriptions`: each organization's plan and standing (one row per organization).

use sea_orm::entity::prelude::*;

/// A subscription row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The plan: the source of truth (`organizations.plan` is a copy of it).
    pub plan_code: String,
    /// `active`, `grace` or `suspended`.
    pub status: String,
    /// When the paid (or trial) period ends; `None` on a free plan.
    pub current_period_end: Option<DateTimeUtc>,
    /// When grace ends; set when the subscription enters grace.
    pub grace_ends_at: Option<DateTimeUtc>,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
