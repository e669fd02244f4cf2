//! `mpesa_requests`: transaction status queries and reversals sent for a payment.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mpesa_requests")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The request id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The payment it is about.
    pub payment_id: Uuid,
    /// `transaction_status` or `reversal`.
    pub kind: String,
    /// Daraja's OriginatorConversationID: the key its result is matched by.
    pub originator_conversation_id: String,
    /// Daraja's ConversationID.
    pub conversation_id: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Why (a reversal's reason), sent to Daraja as `Remarks`.
    pub reason: Option<String>,
    /// `{payment}:{kind}` while pending (unique per organization), empty after.
    pub pending_key: Option<String>,
    /// The result's code.
    pub result_code: Option<String>,
    /// The result's description.
    pub result_description: Option<String>,
    /// The result's parameters.
    pub result: Option<Json>,
    /// When a queue time-out notice arrived.
    pub timed_out_at: Option<DateTimeUtc>,
    /// When a successful reversal's effect (wallet debit, payment status) was carried out.
    pub applied_at: Option<DateTimeUtc>,
    /// Who asked.
    pub created_by: Option<Uuid>,
    /// Sent.
    pub created_at: DateTimeUtc,
    /// When the result arrived.
    pub completed_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
