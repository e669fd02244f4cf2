//! `pipelines`: an organization's sales processes, each an ordered list of stages.

use sea_orm::entity::prelude::*;

/// A pipeline row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pipelines")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The pipeline id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Its name, unique among the organization's active pipelines (ignoring case).
    pub name: String,
    /// Its place in the organization's list of pipelines.
    pub position: i32,
    /// Deals created without a pipeline go to the default one (one per organization).
    pub is_default: bool,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
    /// When it was archived; archived pipelines take no new deals.
    pub archived_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
