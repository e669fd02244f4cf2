//! `deal_stage_moves`: the history of a deal's stages. Rows are only ever inserted.

use sea_orm::entity::prelude::*;

/// A stage move row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deal_stage_moves")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The move id (UUIDv7: ordered by time).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The deal that moved.
    pub deal_id: Uuid,
    /// The stage it left; `None` for its first placement.
    pub from_stage_id: Option<Uuid>,
    /// The stage it arrived at.
    pub to_stage_id: Uuid,
    /// The user who moved it, if a user did.
    pub moved_by: Option<Uuid>,
    /// When.
    pub moved_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
