//! `whatsapp_message_statuses`: each WhatsApp message's status timeline.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "whatsapp_message_statuses")]
pub struct Model {
    /// The owning organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The entry's id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The message.
    pub message_id: Uuid,
    /// `queued`, `accepted`, `retry_scheduled`, `sent`, `delivered`, `read`, `failed`, or
    /// `received` for inbound messages.
    pub status: String,
    /// The status name for statuses that happen once per message (unique per message), so
    /// a repeated webhook is stored once; empty for `retry_scheduled`.
    pub dedup_key: Option<String>,
    /// When it happened (WhatsApp's timestamp for webhook statuses).
    pub occurred_at: DateTimeUtc,
    /// Graph's error code.
    pub error_code: Option<String>,
    /// Graph's error title.
    pub error_title: Option<String>,
    /// Graph's error details.
    pub error_detail: Option<String>,
    /// Recorded.
    pub recorded_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
