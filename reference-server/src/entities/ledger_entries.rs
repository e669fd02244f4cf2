//! `ledger_entries`: one side of a transfer. Append-only; `seq` is gapless per
//! organization. Entries of platform accounts carry the transfer's organization.

use sea_orm::entity::prelude::*;

/// An entry row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_entries")]
pub struct Model {
    /// The organization whose transfer this entry belongs to.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The entry id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Position in the organization's history: 1, 2, 3, …
    pub seq: i64,
    /// The transfer.
    pub transfer_id: Uuid,
    /// The hold the transfer captured, if any.
    pub hold_id: Option<Uuid>,
    /// The account changed (`wallet:<org>` or `platform:…`).
    pub account: String,
    /// Signed amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Posted.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
