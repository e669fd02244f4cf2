//! `mpesa_callback_tokens`: the random token in an organization's callback URLs.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mpesa_callback_tokens")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The current token, sealed.
    pub token: String,
    /// The token before the last rotation, sealed.
    pub previous_token: Option<String>,
    /// Until when the previous token is still accepted.
    pub previous_valid_until: Option<DateTimeUtc>,
    /// When the current token was issued.
    pub rotated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
