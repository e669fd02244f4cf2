//! `import_chunks`: an uploaded file's data rows, one batch per chunk.

use sea_orm::entity::prelude::*;

/// A chunk.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_chunks")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The import.
    #[sea_orm(primary_key, auto_increment = false)]
    pub import_id: Uuid,
    /// Its position, from 0.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    /// Data rows in it.
    pub row_count: i32,
    /// JSON `[[row number, [cells…]], …]`.
    #[sea_orm(column_type = "Text")]
    pub rows: String,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
