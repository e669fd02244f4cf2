//! `mpesa_callbacks`: every M-Pesa callback body as received (the platform's inbox).

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mpesa_callbacks")]
pub struct Model {
    /// The callback id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The organization of its URL (empty for a platform C2B payment not matched).
    pub organization_id: Option<Uuid>,
    /// `stk`, `result`, `timeout`, `c2b_validation`, `c2b_confirmation`,
    /// `platform_c2b_validation` or `platform_c2b_confirmation`.
    pub kind: String,
    /// The raw body, byte for byte.
    pub body: Vec<u8>,
    /// Where it came from.
    pub remote_addr: Option<String>,
    /// The payment it was matched to.
    pub payment_id: Option<Uuid>,
    /// What processing did: `applied`, `duplicate`, `review`, `unmatched`, `invalid`,
    /// `accepted`, `rejected`, …
    pub outcome: Option<String>,
    /// Why, in words.
    pub detail: Option<String>,
    /// Received.
    pub received_at: DateTimeUtc,
    /// Processed (empty until then).
    pub processed_at: Option<DateTimeUtc>,
    /// Until when one processing holds it (so that two never run at once).
    pub claimed_until: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
