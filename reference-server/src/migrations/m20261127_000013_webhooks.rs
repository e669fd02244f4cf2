//! Outbound webhooks: the endpoints an organization registers, the deliveries of events
//! to them, and every try of each delivery.
//!
//! - `webhook_endpoints`: a URL, the event types it subscribes to (`event_types`, a JSON
//!   array of exact kinds, `prefix.*` or `*`), its signing secret sealed for the
//!   organization (`sealed`; during a rotation the previous one stays in
//!   `previous_sealed` until `previous_expires_at`), whether it is `enabled` (with
//!   `disabled_reason`/`disabled_at`), and `failing_since`: when its deliveries started
//!   failing without a success since.
//! - `webhook_deliveries`: one message to one endpoint. `payload` is the exact body sent,
//!   fixed when the delivery is created, so every try and every replay sends the same
//!   bytes. `(organization_id, endpoint_id, event_id)` is unique: fanning an event out
//!   twice creates one delivery. `claimed_until` is the lease a server holds while
//!   sending it.
//! - `webhook_delivery_attempts`: one row per try, with its status code or error and the
//!   first KiB of the answer.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer_null, boolean, integer, integer_null, json, string_len as text,
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
enum WebhookEndpoints {
    Table,
    OrganizationId,
    Id,
    Url,
    Description,
    EventTypes,
    Sealed,
    PreviousSealed,
    PreviousExpiresAt,
    Enabled,
    DisabledReason,
    DisabledAt,
    FailingSince,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    OrganizationId,
    Id,
    EndpointId,
    EventId,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    LastStatusCode,
    LastError,
    LastDurationMs,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveryAttempts {
    Table,
    OrganizationId,
    Id,
    DeliveryId,
    StartedAt,
    DurationMs,
    StatusCode,
    Error,
    ResponseExcerpt,
}

/// Delivery states (see `crate::webhooks::DeliveryStatus`).
const DELIVERY_STATUSES: &[&str] = &["pending", "succeeded", "failed", "cancelled"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(WebhookEndpoints::Table)
                .col(uuid(WebhookEndpoints::OrganizationId))
                .col(uuid(WebhookEndpoints::Id))
                .col(text(WebhookEndpoints::Url, 2048))
                .col(text_null(WebhookEndpoints::Description, 500))
                .col(json(WebhookEndpoints::EventTypes))
                .col(long_text(WebhookEndpoints::Sealed))
                .col(long_text_null(WebhookEndpoints::PreviousSealed))
                .col(time_null(WebhookEndpoints::PreviousExpiresAt))
                .col(boolean(WebhookEndpoints::Enabled))
                .col(text_null(WebhookEndpoints::DisabledReason, 500))
                .col(time_null(WebhookEndpoints::DisabledAt))
                .col(time_null(WebhookEndpoints::FailingSince))
                .col(uuid_null(WebhookEndpoints::CreatedBy))
                .col(time(WebhookEndpoints::CreatedAt))
                .col(time(WebhookEndpoints::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(WebhookEndpoints::OrganizationId)
                        .col(WebhookEndpoints::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(WebhookEndpoints::Table, WebhookEndpoints::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(WebhookDeliveries::Table)
                .col(uuid(WebhookDeliveries::OrganizationId))
                .col(uuid(WebhookDeliveries::Id))
                .col(uuid(WebhookDeliveries::EndpointId))
                .col(uuid(WebhookDeliveries::EventId))
                .col(text(WebhookDeliveries::EventType, 100))
                .col(long_text(WebhookDeliveries::Payload))
                .col(text(WebhookDeliveries::Status, 16))
                .col(integer(WebhookDeliveries::Attempts).default(0))
                .col(time_null(WebhookDeliveries::NextAttemptAt))
                .col(time_null(WebhookDeliveries::ClaimedUntil))
                .col(integer_null(WebhookDeliveries::LastStatusCode))
                .col(long_text_null(WebhookDeliveries::LastError))
                .col(big_integer_null(WebhookDeliveries::LastDurationMs))
                .col(time(WebhookDeliveries::CreatedAt))
                .col(time_null(WebhookDeliveries::CompletedAt))
                .check(
                    Expr::col(WebhookDeliveries::Status).is_in(DELIVERY_STATUSES.iter().copied()),
                )
                .check(Expr::col(WebhookDeliveries::Attempts).gte(0))
                .primary_key(
                    Index::create()
                        .col(WebhookDeliveries::OrganizationId)
                        .col(WebhookDeliveries::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from_tbl(WebhookDeliveries::Table)
                        .from_col(WebhookDeliveries::OrganizationId)
                        .from_col(WebhookDeliveries::EndpointId)
                        .to_tbl(WebhookEndpoints::Table)
                        .to_col(WebhookEndpoints::OrganizationId)
                        .to_col(WebhookEndpoints::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Fan-out is idempotent: one delivery per endpoint and event.
        m.create_index(
            Index::create()
                .name("webhook_deliveries_event_key")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::OrganizationId)
                .col(WebhookDeliveries::EndpointId)
                .col(WebhookDeliveries::EventId)
                .unique()
                .to_owned(),
        )
        .await?;
        // The delivery log of an endpoint, newest first, filtered by status.
        m.create_index(
            Index::create()
                .name("webhook_deliveries_endpoint_idx")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::OrganizationId)
                .col(WebhookDeliveries::EndpointId)
                .col(WebhookDeliveries::Id)
                .to_owned(),
        )
        .await?;
        // The workers' queue, across organizations: pending deliveries by due time.
        m.create_index(
            Index::create()
                .name("webhook_deliveries_due_idx")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::Status)
                .col(WebhookDeliveries::NextAttemptAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(WebhookDeliveryAttempts::Table)
                .col(uuid(WebhookDeliveryAttempts::OrganizationId))
                .col(uuid(WebhookDeliveryAttempts::Id))
                .col(uuid(WebhookDeliveryAttempts::DeliveryId))
                .col(time(WebhookDeliveryAttempts::StartedAt))
                .col(big_integer_null(WebhookDeliveryAttempts::DurationMs))
                .col(integer_null(WebhookDeliveryAttempts::StatusCode))
                .col(long_text_null(WebhookDeliveryAttempts::Error))
                .col(long_text_null(WebhookDeliveryAttempts::ResponseExcerpt))
                .primary_key(
                    Index::create()
                        .col(WebhookDeliveryAttempts::OrganizationId)
                        .col(WebhookDeliveryAttempts::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from_tbl(WebhookDeliveryAttempts::Table)
                        .from_col(WebhookDeliveryAttempts::OrganizationId)
                        .from_col(WebhookDeliveryAttempts::DeliveryId)
                        .to_tbl(WebhookDeliveries::Table)
                        .to_col(WebhookDeliveries::OrganizationId)
                        .to_col(WebhookDeliveries::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_delivery_attempts_delivery_idx")
                .table(WebhookDeliveryAttempts::Table)
                .col(WebhookDeliveryAttempts::OrganizationId)
                .col(WebhookDeliveryAttempts::DeliveryId)
                .col(WebhookDeliveryAttempts::Id)
                .to_owned(),
        )
        .await?;
        super::m20261123_000004_row_level_security::protect(
            m,
            &[
                "webhook_endpoints",
                "webhook_deliveries",
                "webhook_delivery_attempts",
            ],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookDeliveryAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            WebhookEndpoints::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
