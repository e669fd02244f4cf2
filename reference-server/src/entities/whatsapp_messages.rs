//! `whatsapp_messages`: every WhatsApp message in or out, with its charge and retry state.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "whatsapp_messages")]
pub struct Model {
    /// The owning organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// Our id (UUIDv7), sent as `biz_opaque_callback_data`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The conversation it belongs to.
    pub conversation_id: Uuid,
    /// The organization's number it went from or came to.
    pub number_id: Uuid,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Graph's message id (`wamid.…`), once known.
    pub wamid: Option<String>,
    /// `text`, `template`, `image`, `document`, `audio`, `video`, `sticker`, or for inbound
    /// messages whatever type WhatsApp reported.
    pub kind: String,
    /// What was sent or received, as JSON.
    pub content: Json,
    /// Its first characters, for lists.
    pub preview: Option<String>,
    /// `received` (inbound), or `queued`, `accepted`, `sent`, `delivered`, `read`, `failed`.
    pub status: String,
    /// The pricing category charged: `marketing`, `utility`, `authentication`, `service`.
    pub category: Option<String>,
    /// The fee, in minor units of `currency`.
    pub fee_minor: i64,
    /// The wallet's currency.
    pub currency: String,
    /// The ledger hold for the fee.
    pub hold_id: Option<Uuid>,
    /// `none`, `held`, `captured` or `released`.
    pub charge_status: String,
    /// The `Idempotency-Key` it was sent with.
    pub idempotency_key: Option<String>,
    /// A hash of the request, to refuse a key reused for another message.
    pub request_fingerprint: Option<String>,
    /// Graph's error code, when it failed or was throttled.
    pub error_code: Option<String>,
    /// Graph's error title.
    pub error_title: Option<String>,
    /// Graph's error details.
    pub error_detail: Option<String>,
    /// Send attempts made.
    pub attempts: i32,
    /// When a throttled send is tried again.
    pub next_attempt_at: Option<DateTimeUtc>,
    /// While set and in the future, one worker holds the retry.
    pub claimed_until: Option<DateTimeUtc>,
    /// The member who sent it.
    pub sent_by: Option<Uuid>,
    /// When it was sent or, for inbound, when WhatsApp says it was written.
    pub occurred_at: DateTimeUtc,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
