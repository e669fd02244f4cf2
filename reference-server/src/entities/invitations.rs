//! `invitations`: an invitation to join an organization; only the token's hash is stored.

use sea_orm::entity::prelude::*;

/// An invitation row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The invitation id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Who is invited (lower-cased).
    pub email: String,
    /// The role they will have.
    pub role: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Who invited them.
    pub invited_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Expires.
    pub expires_at: DateTimeUtc,
    /// Accepted.
    pub accepted_at: Option<DateTimeUtc>,
    /// Withdrawn.
    pub revoked_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
