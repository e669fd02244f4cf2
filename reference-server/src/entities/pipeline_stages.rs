//! `pipeline_stages`: the ordered columns of a pipeline. Archived stages keep their rows,
//! so deals and stage moves that refer to them still read their names.

use sea_orm::entity::prelude::*;

/// A stage row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pipeline_stages")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The stage id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The pipeline it belongs to.
    pub pipeline_id: Uuid,
    /// Its name, unique among the pipeline's active stages (ignoring case).
    pub name: String,
    /// Its place among the pipeline's active stages, from 0.
    pub position: i32,
    /// The chance, in percent, that a deal at this stage is won.
    pub probability: Option<i32>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
    /// When it was archived; archived stages take no deals.
    pub archived_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
