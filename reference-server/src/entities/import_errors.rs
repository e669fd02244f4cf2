//! `import_errors`: the problems of an import's rows.

use sea_orm::entity::prelude::*;

/// One problem of one row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_errors")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The import.
    #[sea_orm(primary_key, auto_increment = false)]
    pub import_id: Uuid,
    /// The row number in the file (the header is row 1).
    #[sea_orm(primary_key, auto_increment = false)]
    pub row: i64,
    /// The problem's position among the row's problems.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    /// The CSV column it is about, if one.
    pub column: Option<String>,
    /// `required`, `invalid`, `malformed_row`.
    pub code: String,
    /// What is wrong.
    #[sea_orm(column_type = "Text")]
    pub message: String,
    /// The row's original values (JSON array).
    pub values: Json,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
