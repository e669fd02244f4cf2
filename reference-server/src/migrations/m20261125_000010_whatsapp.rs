//! WhatsApp: tenants' numbers, the platform webhook inbox, conversations, messages and
//! their status timelines, and the per-message prices of each plan.
//!
//! - `whatsapp_numbers`: a business number an organization sends from. The access token
//!   is in `sealed`, sealed for the organization; `token_hint` is its last four
//!   characters. `routing_key` holds the Graph phone number id while the number is
//!   connected and is empty after it is disconnected, so a unique index makes a connected
//!   number belong to exactly one organization while keeping the history of the others.
//! - `whatsapp_webhooks`: every signed webhook body as received, stored before it is
//!   parsed. A batch may carry several organizations' changes, so this is the platform's
//!   inbox (no `organization_id`), read by the server and operators only; `detail` says
//!   where each change went.
//! - `whatsapp_conversations`: one per CRM contact (a prospect or a relationship) the
//!   organization talks to, with the contact's WhatsApp ids and the customer-service
//!   window (`window_expires_at`, 24 hours after the contact last wrote, on `number_id`).
//! - `whatsapp_messages`: every message in or out. Outbound messages carry their charge
//!   (`fee_minor`, the ledger `hold_id`, `charge_status` `none` | `held` | `captured` |
//!   `released`), their retry state (`attempts`, `next_attempt_at`, `claimed_until`) and
//!   the `Idempotency-Key` they were sent with. `wamid` is Graph's message id, unique per
//!   organization, which also de-duplicates inbound deliveries.
//! - `whatsapp_message_statuses`: each message's timeline. Webhook statuses carry
//!   `dedup_key` (the status name), so a repeated delivery is stored once.
//! - `plans` gains a price per message category, in minor units of the plan's currency.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, blob, boolean, integer, json, string_len as text, string_len_null as text_null,
    text as long_text, text_null as long_text_null, timestamp_with_time_zone as time,
    timestamp_with_time_zone_null as time_null, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WhatsappNumbers {
    Table,
    OrganizationId,
    Id,
    PhoneNumberId,
    WabaId,
    DisplayNumber,
    VerifiedName,
    QualityRating,
    MessagesPerSecond,
    Sealed,
    TokenHint,
    RoutingKey,
    IsDefault,
    Status,
    VerifiedAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    DisconnectedAt,
}

#[derive(DeriveIden)]
enum WhatsappWebhooks {
    Table,
    Id,
    Body,
    ReceivedAt,
    ProcessedAt,
    ClaimedUntil,
    Outcome,
    Detail,
}

#[derive(DeriveIden)]
enum WhatsappConversations {
    Table,
    OrganizationId,
    Id,
    ContactType,
    ContactId,
    WaId,
    UserId,
    Phone,
    ProfileName,
    NumberId,
    LastInboundAt,
    WindowExpiresAt,
    LastMessageAt,
    LastMessageId,
    LastMessagePreview,
    UnreadCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WhatsappMessages {
    Table,
    OrganizationId,
    Id,
    ConversationId,
    NumberId,
    Direction,
    Wamid,
    Kind,
    Content,
    Preview,
    Status,
    Category,
    FeeMinor,
    Currency,
    HoldId,
    ChargeStatus,
    IdempotencyKey,
    RequestFingerprint,
    ErrorCode,
    ErrorTitle,
    ErrorDetail,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    SentBy,
    OccurredAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WhatsappMessageStatuses {
    Table,
    OrganizationId,
    Id,
    MessageId,
    Status,
    DedupKey,
    OccurredAt,
    ErrorCode,
    ErrorTitle,
    ErrorDetail,
    RecordedAt,
}

#[derive(DeriveIden)]
enum Plans {
    Table,
    PriceMarketingMinor,
    PriceUtilityMinor,
    PriceAuthenticationMinor,
    PriceServiceMinor,
}

fn org_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

/// A foreign key from `(organization_id, col)` of `from` to `(organization_id, id)` of `to`.
fn tenant_fk(
    from: impl IntoIden,
    from_org: impl IntoIden,
    from_col: impl IntoIden,
    to: impl IntoIden,
    to_org: impl IntoIden,
    to_id: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(from)
        .from_col(from_org)
        .from_col(from_col)
        .to_tbl(to)
        .to_col(to_org)
        .to_col(to_id)
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

/// Message states (see `crate::whatsapp::MessageStatus`).
const MESSAGE_STATUSES: &[&str] = &[
    "received", "queued", "accepted", "sent", "delivered", "read", "failed",
];

/// Timeline entries: the message states, and `retry_scheduled` after a throughput error.
const TIMELINE_STATUSES: &[&str] = &[
    "received",
    "queued",
    "accepted",
    "retry_scheduled",
    "sent",
    "delivered",
    "read",
    "failed",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(WhatsappNumbers::Table)
                .col(uuid(WhatsappNumbers::OrganizationId))
                .col(uuid(WhatsappNumbers::Id))
                .col(text(WhatsappNumbers::PhoneNumberId, 64))
                .col(text(WhatsappNumbers::WabaId, 64))
                .col(text(WhatsappNumbers::DisplayNumber, 32))
                .col(text_null(WhatsappNumbers::VerifiedName, 255))
                .col(text_null(WhatsappNumbers::QualityRating, 16))
                .col(integer(WhatsappNumbers::MessagesPerSecond))
                .col(long_text(WhatsappNumbers::Sealed))
                .col(text(WhatsappNumbers::TokenHint, 8))
                .col(text_null(WhatsappNumbers::RoutingKey, 64))
                .col(boolean(WhatsappNumbers::IsDefault))
                .col(text(WhatsappNumbers::Status, 16))
                .col(time(WhatsappNumbers::VerifiedAt))
                .col(uuid_null(WhatsappNumbers::CreatedBy))
                .col(time(WhatsappNumbers::CreatedAt))
                .col(time(WhatsappNumbers::UpdatedAt))
                .col(time_null(WhatsappNumbers::DisconnectedAt))
                .check(one_of(
                    WhatsappNumbers::Status,
                    &["connected", "disconnected"],
                ))
                .check(Expr::col(WhatsappNumbers::MessagesPerSecond).gt(0))
                .primary_key(
                    Index::create()
                        .col(WhatsappNumbers::OrganizationId)
                        .col(WhatsappNumbers::Id),
                )
                .foreign_key(&mut org_fk(
                    WhatsappNumbers::Table,
                    WhatsappNumbers::OrganizationId,
                ))
                .to_owned(),
        )
        .await?;
        // A connected number belongs to exactly one organization.
        m.create_index(
            index(
                "whatsapp_numbers_routing_key",
                WhatsappNumbers::Table,
                vec![WhatsappNumbers::RoutingKey.into_iden()],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        // Account-level changes are routed by WABA id.
        m.create_index(index(
            "whatsapp_numbers_waba_idx",
            WhatsappNumbers::Table,
            vec![WhatsappNumbers::WabaId.into_iden()],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(WhatsappWebhooks::Table)
                .col(uuid(WhatsappWebhooks::Id).primary_key())
                .col(blob(WhatsappWebhooks::Body))
                .col(time(WhatsappWebhooks::ReceivedAt))
                .col(time_null(WhatsappWebhooks::ProcessedAt))
                .col(time_null(WhatsappWebhooks::ClaimedUntil))
                .col(text_null(WhatsappWebhooks::Outcome, 24))
                .col(json(WhatsappWebhooks::Detail).null())
                .to_owned(),
        )
        .await?;
        // Bodies not yet processed (a crash between storing and processing).
        m.create_index(index(
            "whatsapp_webhooks_processed_idx",
            WhatsappWebhooks::Table,
            vec![
                WhatsappWebhooks::ProcessedAt.into_iden(),
                WhatsappWebhooks::ReceivedAt.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(WhatsappConversations::Table)
                .col(uuid(WhatsappConversations::OrganizationId))
                .col(uuid(WhatsappConversations::Id))
                .col(text(WhatsappConversations::ContactType, 16))
                .col(uuid(WhatsappConversations::ContactId))
                .col(text_null(WhatsappConversations::WaId, 32))
                .col(text_null(WhatsappConversations::UserId, 160))
                .col(text_null(WhatsappConversations::Phone, 32))
                .col(text_null(WhatsappConversations::ProfileName, 255))
                .col(uuid_null(WhatsappConversations::NumberId))
                .col(time_null(WhatsappConversations::LastInboundAt))
                .col(time_null(WhatsappConversations::WindowExpiresAt))
                .col(time(WhatsappConversations::LastMessageAt))
                .col(uuid_null(WhatsappConversations::LastMessageId))
                .col(text_null(WhatsappConversations::LastMessagePreview, 255))
                .col(integer(WhatsappConversations::UnreadCount).default(0))
                .col(time(WhatsappConversations::CreatedAt))
                .col(time(WhatsappConversations::UpdatedAt))
                .check(one_of(
                    WhatsappConversations::ContactType,
                    &["prospect", "relationship"],
                ))
                .primary_key(
                    Index::create()
                        .col(WhatsappConversations::OrganizationId)
                        .col(WhatsappConversations::Id),
                )
                .foreign_key(&mut org_fk(
                    WhatsappConversations::Table,
                    WhatsappConversations::OrganizationId,
                ))
                .to_owned(),
        )
        .await?;
        // One conversation per contact.
        m.create_index(
            index(
                "whatsapp_conversations_org_contact_key",
                WhatsappConversations::Table,
                vec![
                    WhatsappConversations::OrganizationId.into_iden(),
                    WhatsappConversations::ContactId.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        // Inbound messages find their conversation by the sender's WhatsApp id.
        m.create_index(
            index(
                "whatsapp_conversations_org_wa_id_key",
                WhatsappConversations::Table,
                vec![
                    WhatsappConversations::OrganizationId.into_iden(),
                    WhatsappConversations::WaId.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        // The inbox: most recent first.
        m.create_index(index(
            "whatsapp_conversations_org_recent_idx",
            WhatsappConversations::Table,
            vec![
                WhatsappConversations::OrganizationId.into_iden(),
                WhatsappConversations::LastMessageAt.into_iden(),
                WhatsappConversations::Id.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(WhatsappMessages::Table)
                .col(uuid(WhatsappMessages::OrganizationId))
                .col(uuid(WhatsappMessages::Id))
                .col(uuid(WhatsappMessages::ConversationId))
                .col(uuid(WhatsappMessages::NumberId))
                .col(text(WhatsappMessages::Direction, 8))
                .col(text_null(WhatsappMessages::Wamid, 255))
                .col(text(WhatsappMessages::Kind, 16))
                .col(json(WhatsappMessages::Content))
                .col(text_null(WhatsappMessages::Preview, 255))
                .col(text(WhatsappMessages::Status, 16))
                .col(text_null(WhatsappMessages::Category, 32))
                .col(big_integer(WhatsappMessages::FeeMinor).default(0))
                .col(text(WhatsappMessages::Currency, 3))
                .col(uuid_null(WhatsappMessages::HoldId))
                .col(text(WhatsappMessages::ChargeStatus, 16))
                .col(text_null(WhatsappMessages::IdempotencyKey, 255))
                .col(text_null(WhatsappMessages::RequestFingerprint, 64))
                .col(text_null(WhatsappMessages::ErrorCode, 16))
                .col(text_null(WhatsappMessages::ErrorTitle, 255))
                .col(long_text_null(WhatsappMessages::ErrorDetail))
                .col(integer(WhatsappMessages::Attempts).default(0))
                .col(time_null(WhatsappMessages::NextAttemptAt))
                .col(time_null(WhatsappMessages::ClaimedUntil))
                .col(uuid_null(WhatsappMessages::SentBy))
                .col(time(WhatsappMessages::OccurredAt))
                .col(time(WhatsappMessages::CreatedAt))
                .col(time(WhatsappMessages::UpdatedAt))
                .check(one_of(
                    WhatsappMessages::Direction,
                    &["inbound", "outbound"],
                ))
                .check(one_of(WhatsappMessages::Status, MESSAGE_STATUSES))
                .check(one_of(
                    WhatsappMessages::ChargeStatus,
                    &["none", "held", "captured", "released"],
                ))
                .check(Expr::col(WhatsappMessages::FeeMinor).gte(0))
                .primary_key(
                    Index::create()
                        .col(WhatsappMessages::OrganizationId)
                        .col(WhatsappMessages::Id),
                )
                .foreign_key(&mut tenant_fk(
                    WhatsappMessages::Table,
                    WhatsappMessages::OrganizationId,
                    WhatsappMessages::ConversationId,
                    WhatsappConversations::Table,
                    WhatsappConversations::OrganizationId,
                    WhatsappConversations::Id,
                ))
                .foreign_key(&mut tenant_fk(
                    WhatsappMessages::Table,
                    WhatsappMessages::OrganizationId,
                    WhatsappMessages::NumberId,
                    WhatsappNumbers::Table,
                    WhatsappNumbers::OrganizationId,
                    WhatsappNumbers::Id,
                ))
                .to_owned(),
        )
        .await?;
        // Graph's id: statuses find their message by it; inbound repeats are stored once.
        m.create_index(
            index(
                "whatsapp_messages_org_wamid_key",
                WhatsappMessages::Table,
                vec![
                    WhatsappMessages::OrganizationId.into_iden(),
                    WhatsappMessages::Wamid.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        // A retried send with the same Idempotency-Key finds the first.
        m.create_index(
            index(
                "whatsapp_messages_org_idempotency_key",
                WhatsappMessages::Table,
                vec![
                    WhatsappMessages::OrganizationId.into_iden(),
                    WhatsappMessages::IdempotencyKey.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        // A conversation's messages, newest first (keyset on the time-ordered id).
        m.create_index(index(
            "whatsapp_messages_org_conversation_idx",
            WhatsappMessages::Table,
            vec![
                WhatsappMessages::OrganizationId.into_iden(),
                WhatsappMessages::ConversationId.into_iden(),
                WhatsappMessages::Id.into_iden(),
            ],
        ))
        .await?;
        // The retry queue: sends waiting for their next attempt.
        m.create_index(index(
            "whatsapp_messages_next_attempt_idx",
            WhatsappMessages::Table,
            vec![WhatsappMessages::NextAttemptAt.into_iden()],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(WhatsappMessageStatuses::Table)
                .col(uuid(WhatsappMessageStatuses::OrganizationId))
                .col(uuid(WhatsappMessageStatuses::Id))
                .col(uuid(WhatsappMessageStatuses::MessageId))
                .col(text(WhatsappMessageStatuses::Status, 16))
                .col(text_null(WhatsappMessageStatuses::DedupKey, 32))
                .col(time(WhatsappMessageStatuses::OccurredAt))
                .col(text_null(WhatsappMessageStatuses::ErrorCode, 16))
                .col(text_null(WhatsappMessageStatuses::ErrorTitle, 255))
                .col(long_text_null(WhatsappMessageStatuses::ErrorDetail))
                .col(time(WhatsappMessageStatuses::RecordedAt))
                .check(one_of(WhatsappMessageStatuses::Status, TIMELINE_STATUSES))
                .primary_key(
                    Index::create()
                        .col(WhatsappMessageStatuses::OrganizationId)
                        .col(WhatsappMessageStatuses::Id),
                )
                .foreign_key(&mut tenant_fk(
                    WhatsappMessageStatuses::Table,
                    WhatsappMessageStatuses::OrganizationId,
                    WhatsappMessageStatuses::MessageId,
                    WhatsappMessages::Table,
                    WhatsappMessages::OrganizationId,
                    WhatsappMessages::Id,
                ))
                .to_owned(),
        )
        .await?;
        // A status delivered twice is stored once; the timeline is read by message.
        m.create_index(
            index(
                "whatsapp_message_statuses_dedup_key",
                WhatsappMessageStatuses::Table,
                vec![
                    WhatsappMessageStatuses::OrganizationId.into_iden(),
                    WhatsappMessageStatuses::MessageId.into_iden(),
                    WhatsappMessageStatuses::DedupKey.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;

        // Prices per message category, in minor units of the plan's currency; existing
        // plans start at the platform's list prices (KES 0.80 marketing, 0.40 utility and
        // authentication, 0.20 service).
        for (col, default) in [
            (Plans::PriceMarketingMinor, 80),
            (Plans::PriceUtilityMinor, 40),
            (Plans::PriceAuthenticationMinor, 40),
            (Plans::PriceServiceMinor, 20),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Plans::Table)
                    .add_column(big_integer(col).default(default))
                    .to_owned(),
            )
            .await?;
        }

        super::m20261123_000004_row_level_security::protect(
            m,
            &[
                "whatsapp_numbers",
                "whatsapp_conversations",
                "whatsapp_messages",
                "whatsapp_message_statuses",
            ],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            Plans::PriceMarketingMinor,
            Plans::PriceUtilityMinor,
            Plans::PriceAuthenticationMinor,
            Plans::PriceServiceMinor,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Plans::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        for table in [
            "whatsapp_message_statuses",
            "whatsapp_messages",
            "whatsapp_conversations",
            "whatsapp_webhooks",
            "whatsapp_numbers",
        ] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
