//! `chat_participants`: a member's place in a chat room and how far they have read.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chat_participants")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The member.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// `prospect`, `relationship`, `deal` or `dm`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_kind: String,
    /// As in `chat_messages`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_key: String,
    /// The last message they have read.
    pub last_read_message_id: Option<Uuid>,
    /// When they first joined, posted or read.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
