//! `audit_log`: who did what, in which organization, to which record, from where, when.
//! Rows are only ever inserted.

use sea_orm::entity::prelude::*;

/// An audit log row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The entry id (UUIDv7: ordered by time).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `user`, `api_key`, `operator` or `system`.
    pub actor_type: String,
    /// The user or API key.
    pub actor_id: Option<Uuid>,
    /// What happened, e.g. `api_key.create`.
    pub action: String,
    /// The kind of record acted on.
    pub target_type: Option<String>,
    /// The record acted on.
    pub target_id: Option<String>,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// What changed (never secrets).
    pub details: Json,
    /// When.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
