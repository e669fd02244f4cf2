//! `payments`: M-Pesa payments and their state.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The payment id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `wallet_top_up`, `subscription` or `collection`.
    pub purpose: String,
    /// `stk` (a push we sent) or `c2b` (the customer paid on their own).
    pub channel: String,
    /// `pending`, `succeeded`, `failed`, `cancelled`, `timed_out`, `needs_review` or
    /// `reversed`.
    pub status: String,
    /// The amount asked for, in minor units.
    pub amount_minor: i64,
    /// Its currency (KES).
    pub currency: String,
    /// The payer's number as asked (E.164), or as C2B reports it (masked or hashed).
    pub phone: Option<String>,
    /// The account reference shown to the payer (STK) or typed by them (C2B).
    pub account_reference: String,
    /// What it is for.
    pub description: String,
    /// The plan paid for, for a subscription.
    pub plan_code: Option<String>,
    /// The CRM relationship collected from, if any.
    pub relationship_id: Option<Uuid>,
    /// The `Idempotency-Key` of the request that started it.
    pub idempotency_key: Option<String>,
    /// A digest of that request, to refuse a key reused for another.
    pub request_fingerprint: Option<String>,
    /// Daraja's MerchantRequestID.
    pub merchant_request_id: Option<String>,
    /// Daraja's CheckoutRequestID: the key callbacks are matched by.
    pub checkout_request_id: Option<String>,
    /// The M-Pesa receipt (MpesaReceiptNumber or C2B TransID).
    pub receipt: Option<String>,
    /// Daraja's result code.
    pub result_code: Option<String>,
    /// Daraja's result description.
    pub result_description: Option<String>,
    /// The amount M-Pesa reports paid.
    pub paid_amount_minor: Option<i64>,
    /// The number M-Pesa reports paid from.
    pub paid_phone: Option<String>,
    /// When M-Pesa says it was paid.
    pub paid_at: Option<DateTimeUtc>,
    /// Why it needs review.
    pub review_reason: Option<String>,
    /// The wallet credit, for a top-up.
    pub ledger_transfer_id: Option<Uuid>,
    /// When the effect of the success was carried out.
    pub applied_at: Option<DateTimeUtc>,
    /// When reconciliation next asks Daraja (pending only).
    pub next_check_at: Option<DateTimeUtc>,
    /// How many times reconciliation asked.
    pub check_attempts: i32,
    /// Who started it.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
    /// When it left `pending`.
    pub completed_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl ActiveModel {
    /// A new `pending` payment with nothing known yet from Daraja: every optional column
    /// empty, no attempts, created and updated `now`. Set the rest before inserting.
    pub fn pending(
        organization_id: Uuid,
        id: Uuid,
        purpose: &str,
        channel: &str,
        amount: edge_core::Money,
        now: DateTimeUtc,
    ) -> Self {
        use sea_orm::ActiveValue::Set;
        Self {
            organization_id: Set(organization_id),
            id: Set(id),
            purpose: Set(purpose.to_owned()),
            channel: Set(channel.to_owned()),
            status: Set("pending".to_owned()),
            amount_minor: Set(amount.minor()),
            currency: Set(amount.currency().code().to_owned()),
            phone: Set(None),
            account_reference: Set(String::new()),
            description: Set(String::new()),
            plan_code: Set(None),
            relationship_id: Set(None),
            idempotency_key: Set(None),
            request_fingerprint: Set(None),
            merchant_request_id: Set(None),
            checkout_request_id: Set(None),
            receipt: Set(None),
            result_code: Set(None),
            result_description: Set(None),
            paid_amount_minor: Set(None),
            paid_phone: Set(None),
            paid_at: Set(None),
            review_reason: Set(None),
            ledger_transfer_id: Set(None),
            applied_at: Set(None),
            next_check_at: Set(None),
            check_attempts: Set(0),
            created_by: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            completed_at: Set(None),
        }
    }
}
