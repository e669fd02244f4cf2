//! The consumers' queue behind the event outbox.
//!
//! `event_queue` holds one row per event and consumer (`webhooks`, `automation`,
//! `notifications`), written in the same transaction as the event. A consumer claims rows
//! for a while (`claimed_until`), so two servers never work on the same one, and deletes
//! each row in the transaction that applies its effects, so an event is handled once even
//! across restarts, and one committed late is not skipped (as a cursor over ids would).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    string_len as text, timestamp_with_time_zone as time,
    timestamp_with_time_zone_null as time_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    OrganizationId,
    Id,
}

#[derive(DeriveIden)]
enum EventQueue {
    Table,
    OrganizationId,
    Consumer,
    EventId,
    ClaimedUntil,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(EventQueue::Table)
                .col(uuid(EventQueue::OrganizationId))
                .col(text(EventQueue::Consumer, 32))
                .col(uuid(EventQueue::EventId))
                .col(time_null(EventQueue::ClaimedUntil))
                .col(time(EventQueue::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(EventQueue::OrganizationId)
                        .col(EventQueue::Consumer)
                        .col(EventQueue::EventId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from_tbl(EventQueue::Table)
                        .from_col(EventQueue::OrganizationId)
                        .from_col(EventQueue::EventId)
                        .to_tbl(Events::Table)
                        .to_col(Events::OrganizationId)
                        .to_col(Events::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // A consumer reads its queue across organizations, oldest event first.
        m.create_index(
            Index::create()
                .name("event_queue_consumer_idx")
                .table(EventQueue::Table)
                .col(EventQueue::Consumer)
                .col(EventQueue::EventId)
                .to_owned(),
        )
        .await?;
        super::m20261123_000004_row_level_security::protect(m, &["event_queue"]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(EventQueue::Table).to_owned())
            .await
    }
}
