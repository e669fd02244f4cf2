//! `activities`: notes, calls, meetings and tasks about a prospect, relationship, deal or
//! ticket.

use sea_orm::entity::prelude::*;

/// An activity row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activities")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The activity id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `note`, `call`, `meeting` or `task`.
    pub kind: String,
    /// What it is about: `prospect`, `relationship`, `deal` or `ticket`.
    pub subject_type: String,
    /// The id of that record.
    pub subject_id: Uuid,
    /// One line saying what it is.
    pub title: String,
    /// The details.
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    /// When it is due.
    pub due_at: Option<DateTimeUtc>,
    /// When it was done; `None` while open.
    pub completed_at: Option<DateTimeUtc>,
    /// The member it is assigned to.
    pub owner_id: Option<Uuid>,
    /// The user who created it (none for API keys).
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
    /// When it was deleted; deleted activities are hidden everywhere.
    pub deleted_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
