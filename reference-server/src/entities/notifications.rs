//! `notifications`: in-app notices to one member.

use sea_orm::entity::prelude::*;

/// A notification row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The notification id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The member it is for.
    pub user_id: Uuid,
    /// `assignment`, `mention`, `overdue`, `low_balance`, `webhook_disabled` or
    /// `automation`.
    pub kind: String,
    /// One line.
    pub title: String,
    /// The details (may be empty).
    #[sea_orm(column_type = "Text")]
    pub body: String,
    /// What it is about (`deal`, `ticket`, `chat_message`, …), if anything.
    pub subject_type: Option<String>,
    /// Its id.
    pub subject_id: Option<Uuid>,
    /// Extra data for clients.
    pub data: Json,
    /// When the member read it; `None` while unread.
    pub read_at: Option<DateTimeUtc>,
    /// Created.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
