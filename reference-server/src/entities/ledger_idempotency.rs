//! `ledger_idempotency`: the first successful outcome of each idempotency key of an
//! organization, with the fingerprint of the operation it belongs to.

use sea_orm::entity::prelude::*;

/// An idempotency record.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_idempotency")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The caller's key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The canonical operation kind and parameters.
    pub fingerprint: String,
    /// The complete first `LedgerOutcome`, as JSON.
    pub outcome: Json,
    /// Recorded.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
