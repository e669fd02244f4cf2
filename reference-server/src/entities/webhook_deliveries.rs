//! `webhook_deliveries`: one message (an event) to one endpoint, and where it stands.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// The owning organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The delivery's id (UUIDv7); sent as `webhook-id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The event delivered (a fresh id for `webhook.test` messages).
    pub event_id: Uuid,
    /// The event's kind.
    pub event_type: String,
    /// The exact body sent.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// `pending`, `succeeded`, `failed` (gave up) or `cancelled`.
    pub status: String,
    /// Tries since it was (re)queued.
    pub attempts: i32,
    /// When the next try is due (pending only).
    pub next_attempt_at: Option<DateTimeUtc>,
    /// Until when a server is sending it.
    pub claimed_until: Option<DateTimeUtc>,
    /// The last answer's status code.
    pub last_status_code: Option<i32>,
    /// Why the last try failed.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// How long the last try took.
    pub last_duration_ms: Option<i64>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// When it succeeded, gave up or was cancelled.
    pub completed_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
