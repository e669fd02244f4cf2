//! M-Pesa payments: tenants' Daraja settings, callback tokens, the payments themselves,
//! the raw callback inbox, requests to Daraja's initiator APIs, and the event outbox.
//!
//! - `mpesa_settings`: one row per organization that collects with its own shortcode.
//!   Everything secret (consumer key and secret, passkey, initiator password) is in
//!   `sealed`, sealed for the organization (see `edge_tenancy::seal`); the rest is what
//!   may be shown: the C2B validation rule (`c2b_account_rule` `any` or `prefixes`, the
//!   prefixes, optional minimum and maximum amounts) and when and how the C2B URLs were
//!   last registered with Daraja.
//! - `mpesa_callback_tokens`: the random token in the organization's callback URLs,
//!   sealed. After a rotation the previous token is still accepted until
//!   `previous_valid_until`, so callbacks of pushes made just before are not lost.
//! - `payments`: one row per payment, in or out of the platform: a wallet top-up or a
//!   subscription (paid to the platform), a collection (paid to the tenant), or a C2B
//!   payment. `status` is the state machine (`pending` → `succeeded` | `failed` |
//!   `cancelled` | `timed_out` | `needs_review`; `succeeded` → `reversed` after an M-Pesa
//!   reversal). `applied_at` marks when the effect of a
//!   success (wallet credit, subscription period) was carried out: a succeeded payment
//!   with no `applied_at` is finished by the reconciliation loop. `next_check_at` is when
//!   reconciliation next asks Daraja about a pending payment.
//! - `mpesa_callbacks`: every callback body as received, stored before it is parsed.
//!   Platform C2B confirmations arrive before they are matched to an organization, so
//!   `organization_id` may be empty here: this is the platform's inbox, read by the server
//!   and operators only.
//! - `mpesa_requests`: transaction status queries and reversals sent for a payment; their
//!   results arrive by callback. `pending_key` holds `{payment}:{kind}` while a request is
//!   pending, so a second one of the same kind is refused by a unique index; `applied_at`
//!   marks when a successful reversal's effect (the wallet debit, the status) was carried
//!   out.
//! - `events`: the outbox of what happened in an organization (payment state changes,
//!   …), for realtime delivery and outbound webhooks.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, blob, integer, json, string_len as text,
    string_len_null as text_null, text as long_text, text_null as long_text_null,
    timestamp_with_time_zone as time, timestamp_with_time_zone_null as time_null, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum MpesaSettings {
    Table,
    OrganizationId,
    Environment,
    Shortcode,
    AccountType,
    TillNumber,
    ConsumerKeyHint,
    InitiatorName,
    Sealed,
    C2bAccountRule,
    C2bAccountPrefixes,
    C2bMinAmountMinor,
    C2bMaxAmountMinor,
    C2bRegisteredAt,
    C2bRegisteredShortcode,
    C2bRegisteredResponseType,
    C2bRegisteredVersion,
    C2bRegisteredBy,
    VerifiedAt,
    UpdatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MpesaCallbackTokens {
    Table,
    OrganizationId,
    Token,
    PreviousToken,
    PreviousValidUntil,
    RotatedAt,
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    OrganizationId,
    Id,
    Purpose,
    Channel,
    Status,
    AmountMinor,
    Currency,
    Phone,
    AccountReference,
    Description,
    PlanCode,
    RelationshipId,
    IdempotencyKey,
    RequestFingerprint,
    MerchantRequestId,
    CheckoutRequestId,
    Receipt,
    ResultCode,
    ResultDescription,
    PaidAmountMinor,
    PaidPhone,
    PaidAt,
    ReviewReason,
    LedgerTransferId,
    AppliedAt,
    NextCheckAt,
    CheckAttempts,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum MpesaCallbacks {
    Table,
    Id,
    OrganizationId,
    Kind,
    Body,
    RemoteAddr,
    PaymentId,
    Outcome,
    Detail,
    ReceivedAt,
    ProcessedAt,
    ClaimedUntil,
}

#[derive(DeriveIden)]
enum MpesaRequests {
    Table,
    OrganizationId,
    Id,
    PaymentId,
    Kind,
    OriginatorConversationId,
    ConversationId,
    Status,
    Reason,
    PendingKey,
    ResultCode,
    ResultDescription,
    Result,
    TimedOutAt,
    AppliedAt,
    CreatedBy,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    OrganizationId,
    Id,
    Kind,
    SubjectType,
    SubjectId,
    Payload,
    CreatedAt,
}

fn org_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(col);
    }
    index.to_owned()
}

fn one_of(col: impl IntoIden, values: &[&str]) -> Expr {
    Expr::col(col).is_in(values.iter().copied())
}

/// The payment states (see `crate::payments::PaymentStatus`).
const STATUSES: &[&str] = &[
    "pending",
    "succeeded",
    "failed",
    "cancelled",
    "timed_out",
    "needs_review",
    "reversed",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(MpesaSettings::Table)
                .col(uuid(MpesaSettings::OrganizationId).primary_key())
                .col(text(MpesaSettings::Environment, 16))
                .col(text(MpesaSettings::Shortcode, 16))
                .col(text(MpesaSettings::AccountType, 8))
                .col(text_null(MpesaSettings::TillNumber, 16))
                .col(text(MpesaSettings::ConsumerKeyHint, 16))
                .col(text_null(MpesaSettings::InitiatorName, 64))
                .col(long_text(MpesaSettings::Sealed))
                .col(text(MpesaSettings::C2bAccountRule, 16).default("any"))
                .col(json(MpesaSettings::C2bAccountPrefixes).null())
                .col(big_integer_null(MpesaSettings::C2bMinAmountMinor))
                .col(big_integer_null(MpesaSettings::C2bMaxAmountMinor))
                .col(time_null(MpesaSettings::C2bRegisteredAt))
                .col(text_null(MpesaSettings::C2bRegisteredShortcode, 16))
                .col(text_null(MpesaSettings::C2bRegisteredResponseType, 16))
                .col(text_null(MpesaSettings::C2bRegisteredVersion, 4))
                .col(uuid_null(MpesaSettings::C2bRegisteredBy))
                .col(time_null(MpesaSettings::VerifiedAt))
                .col(uuid_null(MpesaSettings::UpdatedBy))
                .col(time(MpesaSettings::CreatedAt))
                .col(time(MpesaSettings::UpdatedAt))
                .check(one_of(
                    MpesaSettings::Environment,
                    &["sandbox", "production"],
                ))
                .check(one_of(MpesaSettings::AccountType, &["paybill", "till"]))
                .check(one_of(MpesaSettings::C2bAccountRule, &["any", "prefixes"]))
                .foreign_key(&mut org_fk(
                    MpesaSettings::Table,
                    MpesaSettings::OrganizationId,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MpesaCallbackTokens::Table)
                .col(uuid(MpesaCallbackTokens::OrganizationId).primary_key())
                .col(long_text(MpesaCallbackTokens::Token))
                .col(long_text_null(MpesaCallbackTokens::PreviousToken))
                .col(time_null(MpesaCallbackTokens::PreviousValidUntil))
                .col(time(MpesaCallbackTokens::RotatedAt))
                .foreign_key(&mut org_fk(
                    MpesaCallbackTokens::Table,
                    MpesaCallbackTokens::OrganizationId,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Payments::Table)
                .col(uuid(Payments::OrganizationId))
                .col(uuid(Payments::Id))
                .col(text(Payments::Purpose, 24))
                .col(text(Payments::Channel, 8))
                .col(text(Payments::Status, 16))
                .col(big_integer(Payments::AmountMinor))
                .col(text(Payments::Currency, 3))
                .col(text_null(Payments::Phone, 64))
                .col(text(Payments::AccountReference, 64))
                .col(text(Payments::Description, 64))
                .col(text_null(Payments::PlanCode, 63))
                .col(uuid_null(Payments::RelationshipId))
                .col(text_null(Payments::IdempotencyKey, 255))
                .col(text_null(Payments::RequestFingerprint, 64))
                .col(text_null(Payments::MerchantRequestId, 64))
                .col(text_null(Payments::CheckoutRequestId, 64))
                .col(text_null(Payments::Receipt, 32))
                .col(text_null(Payments::ResultCode, 32))
                .col(text_null(Payments::ResultDescription, 255))
                .col(big_integer_null(Payments::PaidAmountMinor))
                .col(text_null(Payments::PaidPhone, 64))
                .col(time_null(Payments::PaidAt))
                .col(text_null(Payments::ReviewReason, 255))
                .col(uuid_null(Payments::LedgerTransferId))
                .col(time_null(Payments::AppliedAt))
                .col(time_null(Payments::NextCheckAt))
                .col(integer(Payments::CheckAttempts).default(0))
                .col(uuid_null(Payments::CreatedBy))
                .col(time(Payments::CreatedAt))
                .col(time(Payments::UpdatedAt))
                .col(time_null(Payments::CompletedAt))
                .check(one_of(Payments::Status, STATUSES))
                .check(one_of(
                    Payments::Purpose,
                    &["wallet_top_up", "subscription", "collection"],
                ))
                .check(one_of(Payments::Channel, &["stk", "c2b"]))
                .check(Expr::col(Payments::AmountMinor).gt(0))
                .primary_key(
                    Index::create()
                        .col(Payments::OrganizationId)
                        .col(Payments::Id),
                )
                .foreign_key(&mut org_fk(Payments::Table, Payments::OrganizationId))
                .to_owned(),
        )
        .await?;
        // A callback is matched by its CheckoutRequestID within the organization of its URL.
        m.create_index(
            index(
                "payments_org_checkout_key",
                Payments::Table,
                vec![
                    Payments::OrganizationId.into_iden(),
                    Payments::CheckoutRequestId.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        // A receipt (MpesaReceiptNumber, C2B TransID) is credited once.
        m.create_index(
            index(
                "payments_org_receipt_key",
                Payments::Table,
                vec![
                    Payments::OrganizationId.into_iden(),
                    Payments::Receipt.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        // `Idempotency-Key` on the initiating request.
        m.create_index(
            index(
                "payments_org_idempotency_key",
                Payments::Table,
                vec![
                    Payments::OrganizationId.into_iden(),
                    Payments::IdempotencyKey.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        // GET /payments: newest first.
        m.create_index(index(
            "payments_org_created_idx",
            Payments::Table,
            vec![
                Payments::OrganizationId.into_iden(),
                Payments::CreatedAt.into_iden(),
                Payments::Id.into_iden(),
            ],
        ))
        .await?;
        // Reconciliation: pending payments due for a check, and successes not yet applied.
        m.create_index(index(
            "payments_status_next_check_idx",
            Payments::Table,
            vec![
                Payments::Status.into_iden(),
                Payments::NextCheckAt.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(MpesaCallbacks::Table)
                .col(uuid(MpesaCallbacks::Id).primary_key())
                .col(uuid_null(MpesaCallbacks::OrganizationId))
                .col(text(MpesaCallbacks::Kind, 32))
                .col(blob(MpesaCallbacks::Body))
                .col(text_null(MpesaCallbacks::RemoteAddr, 64))
                .col(uuid_null(MpesaCallbacks::PaymentId))
                .col(text_null(MpesaCallbacks::Outcome, 24))
                .col(text_null(MpesaCallbacks::Detail, 255))
                .col(time(MpesaCallbacks::ReceivedAt))
                .col(time_null(MpesaCallbacks::ProcessedAt))
                .col(time_null(MpesaCallbacks::ClaimedUntil))
                .to_owned(),
        )
        .await?;
        // Callbacks not yet processed (a crash between storing and processing).
        m.create_index(index(
            "mpesa_callbacks_processed_idx",
            MpesaCallbacks::Table,
            vec![
                MpesaCallbacks::ProcessedAt.into_iden(),
                MpesaCallbacks::ReceivedAt.into_iden(),
            ],
        ))
        .await?;
        m.create_index(index(
            "mpesa_callbacks_org_received_idx",
            MpesaCallbacks::Table,
            vec![
                MpesaCallbacks::OrganizationId.into_iden(),
                MpesaCallbacks::ReceivedAt.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(MpesaRequests::Table)
                .col(uuid(MpesaRequests::OrganizationId))
                .col(uuid(MpesaRequests::Id))
                .col(uuid(MpesaRequests::PaymentId))
                .col(text(MpesaRequests::Kind, 24))
                .col(text(MpesaRequests::OriginatorConversationId, 64))
                .col(text_null(MpesaRequests::ConversationId, 64))
                .col(text(MpesaRequests::Status, 16))
                .col(text_null(MpesaRequests::Reason, 100))
                .col(text_null(MpesaRequests::PendingKey, 64))
                .col(text_null(MpesaRequests::ResultCode, 32))
                .col(text_null(MpesaRequests::ResultDescription, 255))
                .col(json(MpesaRequests::Result).null())
                .col(time_null(MpesaRequests::TimedOutAt))
                .col(time_null(MpesaRequests::AppliedAt))
                .col(uuid_null(MpesaRequests::CreatedBy))
                .col(time(MpesaRequests::CreatedAt))
                .col(time_null(MpesaRequests::CompletedAt))
                .check(one_of(
                    MpesaRequests::Kind,
                    &["transaction_status", "reversal"],
                ))
                .check(one_of(
                    MpesaRequests::Status,
                    &["pending", "succeeded", "failed"],
                ))
                .primary_key(
                    Index::create()
                        .col(MpesaRequests::OrganizationId)
                        .col(MpesaRequests::Id),
                )
                .foreign_key(
                    &mut ForeignKey::create()
                        .from_tbl(MpesaRequests::Table)
                        .from_col(MpesaRequests::OrganizationId)
                        .from_col(MpesaRequests::PaymentId)
                        .to_tbl(Payments::Table)
                        .to_col(Payments::OrganizationId)
                        .to_col(Payments::Id)
                        .on_delete(ForeignKeyAction::Restrict)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        // At most one request of each kind pending per payment: `pending_key` is
        // `{payment}:{kind}` while the request is pending and empty after (empty values
        // never collide).
        m.create_index(
            index(
                "mpesa_requests_org_pending_key",
                MpesaRequests::Table,
                vec![
                    MpesaRequests::OrganizationId.into_iden(),
                    MpesaRequests::PendingKey.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        // A payment's requests, newest first; and reversals whose effect is not applied.
        m.create_index(index(
            "mpesa_requests_org_payment_idx",
            MpesaRequests::Table,
            vec![
                MpesaRequests::OrganizationId.into_iden(),
                MpesaRequests::PaymentId.into_iden(),
            ],
        ))
        .await?;
        // Results are matched by ConversationID when the OriginatorConversationID is absent.
        m.create_index(index(
            "mpesa_requests_org_conversation_idx",
            MpesaRequests::Table,
            vec![
                MpesaRequests::OrganizationId.into_iden(),
                MpesaRequests::ConversationId.into_iden(),
            ],
        ))
        .await?;
        m.create_index(
            index(
                "mpesa_requests_org_originator_key",
                MpesaRequests::Table,
                vec![
                    MpesaRequests::OrganizationId.into_iden(),
                    MpesaRequests::OriginatorConversationId.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Events::Table)
                .col(uuid(Events::OrganizationId))
                .col(uuid(Events::Id))
                .col(text(Events::Kind, 64))
                .col(text(Events::SubjectType, 32))
                .col(uuid(Events::SubjectId))
                .col(json(Events::Payload))
                .col(time(Events::CreatedAt))
                .primary_key(Index::create().col(Events::OrganizationId).col(Events::Id))
                .foreign_key(&mut org_fk(Events::Table, Events::OrganizationId))
                .to_owned(),
        )
        .await?;
        // A subject's history (a payment's timeline).
        m.create_index(index(
            "events_org_subject_idx",
            Events::Table,
            vec![
                Events::OrganizationId.into_iden(),
                Events::SubjectId.into_iden(),
                Events::Id.into_iden(),
            ],
        ))
        .await?;

        super::m20261123_000004_row_level_security::protect(
            m,
            &[
                "mpesa_settings",
                "mpesa_callback_tokens",
                "payments",
                "mpesa_requests",
                "events",
            ],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "events",
            "mpesa_requests",
            "mpesa_callbacks",
            "payments",
            "mpesa_callback_tokens",
            "mpesa_settings",
        ] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
