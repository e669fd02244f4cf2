//! `whatsapp_numbers`: the business numbers an organization sends from.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "whatsapp_numbers")]
pub struct Model {
    /// The owning organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The number's id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Graph's phone number id: webhooks are routed by it.
    pub phone_number_id: String,
    /// The WhatsApp Business Account the number is in.
    pub waba_id: String,
    /// The number as shown to customers, as Graph reports it.
    pub display_number: String,
    /// The approved display name.
    pub verified_name: Option<String>,
    /// Graph's quality rating (`GREEN`, `YELLOW`, `RED`).
    pub quality_rating: Option<String>,
    /// The pace sends from this number keep to.
    pub messages_per_second: i32,
    /// The access token, sealed for the organization.
    pub sealed: String,
    /// The token's last four characters, to tell tokens apart.
    pub token_hint: String,
    /// The phone number id while connected; empty after (unique).
    pub routing_key: Option<String>,
    /// Whether sends without a chosen number go from this one.
    pub is_default: bool,
    /// `connected` or `disconnected`.
    pub status: String,
    /// When Graph last confirmed the number and token.
    pub verified_at: DateTimeUtc,
    /// Who connected it.
    pub created_by: Option<Uuid>,
    /// Connected.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
    /// Disconnected (empty while connected).
    pub disconnected_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
