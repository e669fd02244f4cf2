//! `webhook_delivery_attempts`: every try of every delivery.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_delivery_attempts")]
pub struct Model {
    /// The owning organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The try's id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The delivery.
    pub delivery_id: Uuid,
    /// When it started (by the server's clock).
    pub started_at: DateTimeUtc,
    /// How long it took.
    pub duration_ms: Option<i64>,
    /// The answer's status code, if one came.
    pub status_code: Option<i32>,
    /// Why it failed, if it did.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The first KiB of the answer's body.
    #[sea_orm(column_type = "Text", nullable)]
    pub response_excerpt: Option<String>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
