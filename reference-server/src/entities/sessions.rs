//! `sessions`: one login of a user into an organization; the family of its refresh tokens.

use sea_orm::entity::prelude::*;

/// A session row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The session id (the `sid` claim of its access tokens).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// Started.
    pub created_at: DateTimeUtc,
    /// Ends at the latest (refresh tokens cannot outlive it).
    pub expires_at: DateTimeUtc,
    /// Ended early.
    pub revoked_at: Option<DateTimeUtc>,
    /// Why it ended early: `logout`, `superseded`, `refresh_reuse`, `password_changed`, …
    pub revoked_reason: Option<String>,
    /// The client's user agent at login.
    pub user_agent: Option<String>,
    /// The client's address at login.
    pub ip_address: Option<String>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
