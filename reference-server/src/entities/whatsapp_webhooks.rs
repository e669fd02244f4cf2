//! `whatsapp_webhooks`: every signed WhatsApp webhook body as received (the platform's
//! inbox: a batch may carry several organizations' changes).

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "whatsapp_webhooks")]
pub struct Model {
    /// The delivery's id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The raw body, byte for byte.
    pub body: Vec<u8>,
    /// Received.
    pub received_at: DateTimeUtc,
    /// Processed (empty until then).
    pub processed_at: Option<DateTimeUtc>,
    /// While set and in the future, one processing holds the row.
    pub claimed_until: Option<DateTimeUtc>,
    /// `processed`, `partly_unrouted`, `unrouted` or `invalid`.
    pub outcome: Option<String>,
    /// Where each change went: `[{organization_id?, key, kind, result}]`.
    pub detail: Option<Json>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
