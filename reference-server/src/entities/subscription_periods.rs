//! `subscription_periods`: the periods an organization has paid for, one per payment.
//! Rows are only inserted.

use sea_orm::entity::prelude::*;

/// A paid period row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscription_periods")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The period id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The payment that bought it; unique per organization.
    pub payment_id: Uuid,
    /// The plan paid for.
    pub plan_code: String,
    /// Start of the period.
    pub starts_at: DateTimeUtc,
    /// End of the period.
    pub ends_at: DateTimeUtc,
    /// What was paid, in minor units of `currency`.
    pub amount_minor: i64,
    /// ISO 4217 currency of the amount.
    pub currency: String,
    /// When the payment was applied.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
