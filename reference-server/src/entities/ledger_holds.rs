//! `ledger_holds`: money set aside for a pending charge. The status changes once, from
//! `active` to `captured`, `released` or `expired`.

use sea_orm::entity::prelude::*;

/// A hold row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_holds")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The hold id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The amount reserved, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// `active`, `captured`, `released` or `expired`.
    pub status: String,
    /// What was captured, once captured.
    pub captured_minor: Option<i64>,
    /// The capturing transfer, once captured.
    pub capture_transfer_id: Option<Uuid>,
    /// The reserve call's idempotency key.
    pub idempotency_key: String,
    /// The reserve call's metadata.
    pub metadata: Json,
    /// Reserved.
    pub created_at: DateTimeUtc,
    /// Stops counting as held from this instant on.
    pub expires_at: DateTimeUtc,
    /// Captured, released, or (for an expired hold) `expires_at`.
    pub ended_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
