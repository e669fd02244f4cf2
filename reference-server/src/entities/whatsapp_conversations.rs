//! `whatsapp_conversations`: one per CRM contact an organization talks to on WhatsApp.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "whatsapp_conversations")]
pub struct Model {
    /// The owning organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The conversation's id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `prospect` or `relationship`.
    pub contact_type: String,
    /// The prospect's or relationship's id.
    pub contact_id: Uuid,
    /// The contact's WhatsApp id (digits of the phone number), when known.
    pub wa_id: Option<String>,
    /// The contact's business-scoped user id (BSUID), when known.
    pub user_id: Option<String>,
    /// The number messages go to, E.164.
    pub phone: Option<String>,
    /// The name the contact uses on WhatsApp.
    pub profile_name: Option<String>,
    /// The organization's number the contact last wrote to.
    pub number_id: Option<Uuid>,
    /// When the contact last wrote.
    pub last_inbound_at: Option<DateTimeUtc>,
    /// When the customer-service window closes (24 hours after the last inbound message).
    pub window_expires_at: Option<DateTimeUtc>,
    /// The latest message, either way.
    pub last_message_at: DateTimeUtc,
    /// Its id.
    pub last_message_id: Option<Uuid>,
    /// Its first characters.
    pub last_message_preview: Option<String>,
    /// Inbound messages since the organization last read the conversation.
    pub unread_count: i32,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
