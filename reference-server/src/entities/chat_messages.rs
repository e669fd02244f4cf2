//! `chat_messages`: team chat messages, in a record's thread or between two members.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chat_messages")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The message id (UUIDv7, so ids sort by time).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `prospect`, `relationship`, `deal` or `dm`.
    pub room_kind: String,
    /// The record's id, or for `dm` the two members' ids, lowest first, joined by `:`.
    pub room_key: String,
    /// Who wrote it.
    pub sender_id: Uuid,
    /// The text (emptied when the message is deleted).
    pub body: String,
    /// The sender's own id for the message, which makes resends safe.
    pub client_message_id: Option<String>,
    /// Sent.
    pub created_at: DateTimeUtc,
    /// Last edited.
    pub edited_at: Option<DateTimeUtc>,
    /// Deleted.
    pub deleted_at: Option<DateTimeUtc>,
    /// Who deleted it.
    pub deleted_by: Option<Uuid>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
