//! `record_tags`: one row per tag of a CRM record, lower-cased, for the `tag=` filter.

use sea_orm::entity::prelude::*;

/// A record's tag.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "record_tags")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// `prospect`, `relationship`, `deal`, …
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_type: String,
    /// The tag, lower-cased.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tag: String,
    /// The record.
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_id: Uuid,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
