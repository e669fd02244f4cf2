//! `api_keys`: organization API keys; only a hash is stored, the prefix is visible.

use sea_orm::entity::prelude::*;

/// An API key row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The key's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// What the key is for.
    pub name: String,
    /// The visible, unique prefix.
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub key_hash: String,
    /// `live` or `test`.
    pub environment: String,
    /// The role the key acts with.
    pub role: String,
    /// Who created it.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Stops working at.
    pub expires_at: Option<DateTimeUtc>,
    /// Last seen.
    pub last_used_at: Option<DateTimeUtc>,
    /// Revoked.
    pub revoked_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
