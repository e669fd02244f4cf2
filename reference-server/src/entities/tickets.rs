//! `tickets`: a customer's support request, raised against a relationship.

use sea_orm::entity::prelude::*;

/// A ticket row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The ticket id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The customer (a relationship) the ticket is about.
    pub relationship_id: Uuid,
    /// One line saying what it is about.
    pub subject: String,
    /// The details (may be empty).
    #[sea_orm(column_type = "Text")]
    pub description: String,
    /// The lower-cased subject, which `q=` searches.
    pub search_text: String,
    /// `open`, `pending`, `resolved` or `closed`.
    pub status: String,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: String,
    /// The member working on it.
    pub assignee_id: Option<Uuid>,
    /// When it should be resolved by.
    pub due_at: Option<DateTimeUtc>,
    /// The user who raised it (none for API keys).
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed (a new comment counts).
    pub updated_at: DateTimeUtc,
    /// When it was last resolved (cleared when reopened).
    pub resolved_at: Option<DateTimeUtc>,
    /// When it was closed (cleared when reopened).
    pub closed_at: Option<DateTimeUtc>,
    /// When it was deleted; deleted tickets are hidden everywhere.
    pub deleted_at: Option<DateTimeUtc>,
    /// When `ticket.overdue` was recorded for it (for a due time before this).
    pub overdue_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
