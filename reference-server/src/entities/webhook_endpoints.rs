//! `webhook_endpoints`: the URLs an organization has events delivered to.

use sea_orm::entity::prelude::*;

/// A row. `Debug` shows the sealed secrets only as ciphertext; they never hold plaintext.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    /// The owning organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The endpoint's id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Where deliveries are posted (`https://…` or `http://…`).
    pub url: String,
    /// What the organization calls it.
    pub description: Option<String>,
    /// The event types it subscribes to: exact kinds, `prefix.*` or `*` (a JSON array).
    pub event_types: Json,
    /// The signing secret, sealed for the organization.
    pub sealed: String,
    /// The previous secret during a rotation, sealed likewise.
    pub previous_sealed: Option<String>,
    /// When the previous secret stops signing.
    pub previous_expires_at: Option<DateTimeUtc>,
    /// Whether events are delivered to it.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// When it was disabled.
    pub disabled_at: Option<DateTimeUtc>,
    /// When its deliveries started failing with no success since.
    pub failing_since: Option<DateTimeUtc>,
    /// Who registered it.
    pub created_by: Option<Uuid>,
    /// Registered.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
