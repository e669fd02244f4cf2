//! `ticket_comments`: the conversation on a ticket.

use sea_orm::entity::prelude::*;

/// A ticket comment row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_comments")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The comment id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The ticket it belongs to.
    pub ticket_id: Uuid,
    /// The user who wrote it (none for API keys).
    pub author_id: Option<Uuid>,
    /// The text.
    #[sea_orm(column_type = "Text")]
    pub body: String,
    /// Written.
    pub created_at: DateTimeUtc,
    /// Last edited.
    pub updated_at: DateTimeUtc,
    /// When it was deleted; deleted comments are hidden.
    pub deleted_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
