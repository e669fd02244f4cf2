//! Team chat: messages in a record's thread or between two members, and where each
//! member has read up to.
//!
//! - `chat_messages`: one row per message. A room is `room_kind` (`prospect`,
//!   `relationship`, `deal` or `dm`) and `room_key`: the record's id, or for a direct
//!   conversation the two members' ids, lowest first, joined by `:`. Ids are UUIDv7, so a
//!   room's history is read newest first on `(organization_id, room_kind, room_key, id)`.
//!   `client_message_id` is the sender's own id for a message: a resend with the same one
//!   finds the first (unique per organization, room and sender). A deleted message keeps
//!   its row with `deleted_at` and `deleted_by` set and its body emptied.
//! - `chat_participants`: a member's place in a room: created when they join, post or
//!   read (and for both members of a direct conversation when either writes), with the
//!   last message they have read. The list of a member's rooms is read from it.
//! - `events` gains an index on `id` alone: every node tails the outbox across
//!   organizations in id order to push events to its sockets.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    string_len as text, string_len_null as text_null, text as long_text,
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
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ChatMessages {
    Table,
    OrganizationId,
    Id,
    RoomKind,
    RoomKey,
    SenderId,
    Body,
    ClientMessageId,
    CreatedAt,
    EditedAt,
    DeletedAt,
    DeletedBy,
}

#[derive(DeriveIden)]
enum ChatParticipants {
    Table,
    OrganizationId,
    UserId,
    RoomKind,
    RoomKey,
    LastReadMessageId,
    CreatedAt,
    UpdatedAt,
}

/// The kinds of room.
const ROOM_KINDS: &[&str] = &["prospect", "relationship", "deal", "dm"];

fn org_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

fn user_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

fn one_of(col: impl IntoIden, values: &[&str]) -> Expr {
    Expr::col(col).is_in(values.iter().copied())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ChatMessages::Table)
                .col(uuid(ChatMessages::OrganizationId))
                .col(uuid(ChatMessages::Id))
                .col(text(ChatMessages::RoomKind, 16))
                .col(text(ChatMessages::RoomKey, 80))
                .col(uuid(ChatMessages::SenderId))
                .col(long_text(ChatMessages::Body))
                .col(text_null(ChatMessages::ClientMessageId, 100))
                .col(time(ChatMessages::CreatedAt))
                .col(time_null(ChatMessages::EditedAt))
                .col(time_null(ChatMessages::DeletedAt))
                .col(uuid_null(ChatMessages::DeletedBy))
                .check(one_of(ChatMessages::RoomKind, ROOM_KINDS))
                .primary_key(
                    Index::create()
                        .col(ChatMessages::OrganizationId)
                        .col(ChatMessages::Id),
                )
                .foreign_key(&mut org_fk(
                    ChatMessages::Table,
                    ChatMessages::OrganizationId,
                ))
                .foreign_key(&mut user_fk(ChatMessages::Table, ChatMessages::SenderId))
                .to_owned(),
        )
        .await?;
        // A room's history, newest first.
        m.create_index(
            Index::create()
                .name("chat_messages_room_idx")
                .table(ChatMessages::Table)
                .col(ChatMessages::OrganizationId)
                .col(ChatMessages::RoomKind)
                .col(ChatMessages::RoomKey)
                .col(ChatMessages::Id)
                .to_owned(),
        )
        .await?;
        // A resend with the same client id finds the first message.
        m.create_index(
            Index::create()
                .name("chat_messages_client_message_key")
                .table(ChatMessages::Table)
                .col(ChatMessages::OrganizationId)
                .col(ChatMessages::RoomKind)
                .col(ChatMessages::RoomKey)
                .col(ChatMessages::SenderId)
                .col(ChatMessages::ClientMessageId)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ChatParticipants::Table)
                .col(uuid(ChatParticipants::OrganizationId))
                .col(uuid(ChatParticipants::UserId))
                .col(text(ChatParticipants::RoomKind, 16))
                .col(text(ChatParticipants::RoomKey, 80))
                .col(uuid_null(ChatParticipants::LastReadMessageId))
                .col(time(ChatParticipants::CreatedAt))
                .col(time(ChatParticipants::UpdatedAt))
                .check(one_of(ChatParticipants::RoomKind, ROOM_KINDS))
                .primary_key(
                    Index::create()
                        .col(ChatParticipants::OrganizationId)
                        .col(ChatParticipants::UserId)
                        .col(ChatParticipants::RoomKind)
                        .col(ChatParticipants::RoomKey),
                )
                .foreign_key(&mut org_fk(
                    ChatParticipants::Table,
                    ChatParticipants::OrganizationId,
                ))
                .foreign_key(&mut user_fk(
                    ChatParticipants::Table,
                    ChatParticipants::UserId,
                ))
                .to_owned(),
        )
        .await?;

        // The outbox, tailed in id order across organizations.
        m.create_index(
            Index::create()
                .name("events_id_idx")
                .table(Events::Table)
                .col(Events::Id)
                .to_owned(),
        )
        .await?;

        super::m20261123_000004_row_level_security::protect(
            m,
            &["chat_messages", "chat_participants"],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("events_id_idx")
                .table(Events::Table)
                .to_owned(),
        )
        .await?;
        for table in ["chat_participants", "chat_messages"] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
