//! `ledger_wallets`: one prepaid wallet per organization, with its cached balances. The
//! row is locked by every money-moving operation of the organization.

use sea_orm::entity::prelude::*;

/// A wallet row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_wallets")]
pub struct Model {
    /// The organization (one wallet each).
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// ISO 4217 code.
    pub currency: String,
    /// Cached: the sum of the wallet's entries, in minor units.
    pub posted_minor: i64,
    /// Cached: the sum of the holds recorded as `active` (some may be past `expires_at`).
    pub held_minor: i64,
    /// How far below zero `available` may go.
    pub credit_limit_minor: i64,
    /// The low-balance threshold, if set.
    pub low_balance_threshold_minor: Option<i64>,
    /// The sequence number the organization's next entry gets.
    pub next_seq: i64,
    /// Opened.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
