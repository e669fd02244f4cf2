//! `events`: what happened in an organization, in order: the outbox for realtime and webhooks.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The event id (UUIDv7, so ids sort by time).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// What happened, e.g. `payment.status_changed`.
    pub kind: String,
    /// What it happened to, e.g. `payment`.
    pub subject_type: String,
    /// Its id.
    pub subject_id: Uuid,
    /// The event's data.
    pub payload: Json,
    /// When.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
