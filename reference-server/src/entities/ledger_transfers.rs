//! `ledger_transfers`: posted transfers. Append-only.

use sea_orm::entity::prelude::*;

/// A transfer row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_transfers")]
pub struct Model {
    /// The organization whose wallet the transfer touched.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The transfer id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The debited account (`wallet:<org>` or `platform:…`).
    pub from_account: String,
    /// The credited account.
    pub to_account: String,
    /// The (positive) amount, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The key of the call that posted it.
    pub idempotency_key: String,
    /// The request's (or the captured hold's) metadata.
    pub metadata: Json,
    /// The hold it captured, if any.
    pub hold_id: Option<Uuid>,
    /// Posted.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
