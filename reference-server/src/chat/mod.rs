//! Team chat: a thread per prospect, relationship and deal, and direct conversations
//! between members of an organization.
//!
//! Rooms are named as clients see them: `prospect:{id}`, `relationship:{id}`,
//! `deal:{id}` (the record's thread) and `dm:{user_id}` (the conversation between the
//! caller and that member). A record room is open to whoever may read the record under
//! the CRM visibility rules ([`crate::crm::visibility`]); anything else (another
//! organization's id, an unknown id, a malformed name) is the same `not_found`, so a name
//! never reveals whether something exists.
//!
//! Messages are stored before anyone is told of them ([`store_message`]); a resend with
//! the same `client_message_id` by the same sender in the same room finds the first.
//! Edits are the author's; deletes are the author's or an admin's, soft (the body is
//! emptied, `deleted_at` set) and audited. Each member's read position per room never
//! moves backwards. This module is the domain; [`crate::realtime`] delivers, and
//! `/api/v1/chat/*` serves history, the rooms list and read positions.

use std::fmt;

use chrono::{DateTime, Utc};
use edge_core::{Error, FieldError, OrgId, Page, PageRequest};
use edge_tenancy::{Permission, Role, TenantContext};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, DatabaseConnection, EntityTrait as _,
    PaginatorTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, ClientInfo};
use crate::crm::records::is_active_member;
use crate::db::{begin_write, db_err};
use crate::entities::{chat_messages, chat_participants};

/// The longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 4_000;
/// The longest `client_message_id`, in characters.
pub const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 100;

/// A chat room, as a client names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Room {
    /// A prospect's team thread.
    Prospect(Uuid),
    /// A relationship's (customer's) team thread.
    Relationship(Uuid),
    /// A deal's team thread.
    Deal(Uuid),
    /// The direct conversation with this member (from the caller's side).
    Dm(Uuid),
}

impl Room {
    /// Parses `prospect:{uuid}`, `relationship:{uuid}`, `deal:{uuid}` or `dm:{uuid}`.
    pub fn parse(name: &str) -> Option<Self> {
        let (kind, id) = name.split_once(':')?;
        // Only the canonical hyphenated form: one room, one name.
        if id.len() != 36 {
            return None;
        }
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "prospect" => Some(Self::Prospect(id)),
            "relationship" => Some(Self::Relationship(id)),
            "deal" => Some(Self::Deal(id)),
            "dm" => Some(Self::Dm(id)),
            _ => None,
        }
    }

    /// Parses a record room only (what presence's `viewing` takes).
    pub fn parse_record(name: &str) -> Option<Self> {
        Self::parse(name).filter(|room| room.is_record())
    }

    /// `prospect`, `relationship`, `deal` or `dm`.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Prospect(_) => "prospect",
            Self::Relationship(_) => "relationship",
            Self::Deal(_) => "deal",
            Self::Dm(_) => "dm",
        }
    }

    /// The record's id, or the other member's.
    pub fn id(self) -> Uuid {
        match self {
            Self::Prospect(id) | Self::Relationship(id) | Self::Deal(id) | Self::Dm(id) => id,
        }
    }

    /// Whether this is a record's thread (not a direct conversation).
    pub fn is_record(self) -> bool {
        !matches!(self, Self::Dm(_))
    }

    /// The stored key of the room seen by `viewer`: the record's id, or both members'
    /// ids, lowest first.
    pub fn key(self, viewer: Uuid) -> String {
        match self {
            Self::Dm(peer) => dm_key(viewer, peer),
            other => other.id().to_string(),
        }
    }

    /// The room of a stored `(kind, key)` as `viewer` names it; `None` if the viewer is not
    /// a party to a direct conversation, or the key is malformed.
    pub fn from_stored(kind: &str, key: &str, viewer: Option<Uuid>) -> Option<Self> {
        if kind == "dm" {
            let (a, b) = key.split_once(':')?;
            let (a, b) = (Uuid::parse_str(a).ok()?, Uuid::parse_str(b).ok()?);
            let viewer = viewer?;
            return if viewer == a {
                Some(Self::Dm(b))
            } else if viewer == b {
                Some(Self::Dm(a))
            } else {
                None
            };
        }
        Self::parse(&format!("{kind}:{key}"))
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}

fn dm_key(a: Uuid, b: Uuid) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// The error every refused room gets, whatever the reason.
fn no_room() -> Error {
    Error::not_found("room")
}

/// The caller's user: chat is between people, so API keys cannot write or read positions.
fn member(ctx: &TenantContext) -> Result<Uuid, Error> {
    ctx.user().map(|u| u.as_uuid()).ok_or_else(|| {
        Error::Forbidden("chat needs a member's access token, not an API key".into())
    })
}

/// Checks that the caller may use `room` (and may chat at all): a record that exists in the caller's
/// organization and that they may read, or another active member for `dm:`. Everything
/// else is `not_found` (a `dm:` with oneself is invalid).
pub async fn authorize(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    room: Room,
) -> Result<(), Error> {
    ctx.require(Permission::ChatUse)?;
    let hidden = |err: Error| match err {
        Error::NotFound { .. } => no_room(),
        other => other,
    };
    match room {
        Room::Prospect(id) => crate::crm::prospects::get(db, ctx, id)
            .await
            .map(drop)
            .map_err(hidden),
        Room::Relationship(id) => crate::crm::relationships::get(db, ctx, id)
            .await
            .map(drop)
            .map_err(hidden),
        Room::Deal(id) => crate::crm::deals::get(db, ctx, id)
            .await
            .map(drop)
            .map_err(hidden),
        Room::Dm(peer) => {
            let Some(me) = ctx.user() else {
                return Err(no_room());
            };
            if peer == me.as_uuid() {
                return Err(Error::invalid(
                    "room",
                    "a direct conversation is with another member",
                ));
            }
            if is_active_member(db, ctx.org(), peer).await? {
                Ok(())
            } else {
                Err(no_room())
            }
        }
    }
}

/// Parses and authorizes a room name in one step (a malformed name is `not_found`).
pub async fn open(db: &DatabaseConnection, ctx: &TenantContext, name: &str) -> Result<Room, Error> {
    let room = Room::parse(name).ok_or_else(no_room)?;
    authorize(db, ctx, room).await?;
    Ok(room)
}

/// A message as clients see it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MessageView {
    /// The message id (UUIDv7).
    pub id: Uuid,
    /// The room, as the reader names it (for a direct conversation, `dm:` the other
    /// member).
    pub room: String,
    /// Who wrote it.
    pub sender_id: Uuid,
    /// The text; `null` once deleted.
    pub body: Option<String>,
    /// The sender's own id for the message, if they gave one.
    pub client_message_id: Option<String>,
    /// Sent.
    pub created_at: DateTime<Utc>,
    /// Last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl MessageView {
    /// The row as `viewer` sees it.
    pub fn of(row: &chat_messages::Model, viewer: Option<Uuid>) -> Self {
        let room = Room::from_stored(&row.room_kind, &row.room_key, viewer)
            .map(|r| r.to_string())
            .unwrap_or_else(|| format!("{}:{}", row.room_kind, row.room_key));
        Self {
            id: row.id,
            room,
            sender_id: row.sender_id,
            body: row.deleted_at.is_none().then(|| row.body.clone()),
            client_message_id: row.client_message_id.clone(),
            created_at: row.created_at,
            edited_at: row.edited_at,
            deleted_at: row.deleted_at,
        }
    }
}

/// A message to send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// The text: 1 to [`MAX_BODY_CHARS`] characters, not only blanks.
    pub body: String,
    /// The sender's own id for it (up to [`MAX_CLIENT_MESSAGE_ID_CHARS`] characters).
    #[serde(default)]
    pub client_message_id: Option<String>,
}

fn check_body(body: &str, problems: &mut Vec<FieldError>) {
    if body.trim().is_empty() {
        problems.push(FieldError::new("body", "must not be empty"));
    } else if body.chars().count() > MAX_BODY_CHARS {
        problems.push(FieldError::new(
            "body",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
}

fn validation(problems: Vec<FieldError>) -> Result<(), Error> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(problems))
    }
}

impl NewMessage {
    /// Checks the body and the client id.
    pub fn check(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        check_body(&self.body, &mut problems);
        if let Some(id) = &self.client_message_id {
            if id.is_empty() {
                problems.push(FieldError::new("client_message_id", "must not be empty"));
            } else if id.chars().count() > MAX_CLIENT_MESSAGE_ID_CHARS {
                problems.push(FieldError::new(
                    "client_message_id",
                    format!("must be at most {MAX_CLIENT_MESSAGE_ID_CHARS} characters"),
                ));
            }
        }
        validation(problems)
    }
}

/// A stored message and whether this call stored it (`false`: a resend found the first).
#[derive(Debug, Clone)]
pub struct Stored {
    /// The row.
    pub message: chat_messages::Model,
    /// Whether it is new.
    pub created: bool,
}

/// Makes sure `user` has a place in the room (for the rooms list), keeping any read
/// position.
async fn ensure_participant<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    user: Uuid,
    kind: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    chat_participants::Entity::insert(chat_participants::ActiveModel {
        organization_id: Set(org.as_uuid()),
        user_id: Set(user),
        room_kind: Set(kind.to_owned()),
        room_key: Set(key.to_owned()),
        last_read_message_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            chat_participants::Column::OrganizationId,
            chat_participants::Column::UserId,
            chat_participants::Column::RoomKind,
            chat_participants::Column::RoomKey,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn find_by_client_id<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    kind: &str,
    key: &str,
    sender: Uuid,
    client_message_id: &str,
) -> Result<Option<chat_messages::Model>, Error> {
    chat_messages::Entity::find()
        .filter(chat_messages::Column::OrganizationId.eq(org.as_uuid()))
        .filter(chat_messages::Column::RoomKind.eq(kind))
        .filter(chat_messages::Column::RoomKey.eq(key))
        .filter(chat_messages::Column::SenderId.eq(sender))
        .filter(chat_messages::Column::ClientMessageId.eq(client_message_id))
        .one(conn)
        .await
        .map_err(db_err)
}

/// Stores a message from `sender` in `room`, which the caller has already authorized
/// ([`authorize`]). A resend with the same `client_message_id` stores nothing and
/// returns the first message. Members it mentions are notified with it
/// ([`crate::notifications::mentions`]).
pub async fn store_message(
    db: &DatabaseConnection,
    org: OrgId,
    sender: Uuid,
    room: Room,
    input: NewMessage,
    now: DateTime<Utc>,
) -> Result<Stored, Error> {
    input.check()?;
    let kind = room.kind();
    let key = room.key(sender);
    if let Some(client_id) = &input.client_message_id
        && let Some(first) = find_by_client_id(db, org, kind, &key, sender, client_id).await?
    {
        return resent(first, &input.body);
    }
    let row = chat_messages::Model {
        organization_id: org.as_uuid(),
        id: Uuid::now_v7(),
        room_kind: kind.to_owned(),
        room_key: key.clone(),
        sender_id: sender,
        body: input.body,
        client_message_id: input.client_message_id.clone(),
        created_at: now,
        edited_at: None,
        deleted_at: None,
        deleted_by: None,
    };
    // Who the message mentions (read before the write, see `notifications::mentions`).
    let mentioned =
        crate::notifications::mentions::notices(db, org, sender, room, row.id, &row.body).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    // A concurrent resend may have won the race: insert unless present.
    let inserted = chat_messages::Entity::insert(chat_messages::ActiveModel::from(row.clone()))
        .on_conflict(
            OnConflict::columns([
                chat_messages::Column::OrganizationId,
                chat_messages::Column::RoomKind,
                chat_messages::Column::RoomKey,
                chat_messages::Column::SenderId,
                chat_messages::Column::ClientMessageId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
    if inserted == 0 {
        txn.rollback().await.map_err(db_err)?;
        let client_id = input.client_message_id.as_deref().unwrap_or_default();
        let first = find_by_client_id(db, org, kind, &key, sender, client_id)
            .await?
            .ok_or_else(|| Error::internal("a resent chat message vanished"))?;
        return resent(first, &row.body);
    }
    ensure_participant(&txn, org, sender, kind, &key, now).await?;
    if let Room::Dm(peer) = room {
        ensure_participant(&txn, org, peer, kind, &key, now).await?;
    }
    for notice in mentioned {
        crate::notifications::create(&txn, org, notice, now)
            .await
            .map_err(db_err)?;
    }
    txn.commit().await.map_err(db_err)?;
    Ok(Stored {
        message: row,
        created: true,
    })
}

/// The answer to a resend: the first message, unless the resend carries another body
/// under the same `client_message_id` (a client bug that would otherwise lose the new
/// text silently). Once the first message was edited or deleted its original body is
/// gone, so any resend of it is taken as a resend.
fn resent(first: chat_messages::Model, body: &str) -> Result<Stored, Error> {
    if first.edited_at.is_none() && first.deleted_at.is_none() && first.body != body {
        return Err(Error::Conflict(
            "client_message_id was already used for a message with another body".into(),
        ));
    }
    Ok(Stored {
        message: first,
        created: false,
    })
}

/// Records that `user` joined a record room (so it is in their rooms list).
pub async fn joined(
    db: &DatabaseConnection,
    org: OrgId,
    user: Uuid,
    room: Room,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    ensure_participant(db, org, user, room.kind(), &room.key(user), now).await
}

/// A message of the caller's organization that the caller may see (its room is one they
/// may use), with that room.
pub async fn find_message(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: Uuid,
) -> Result<(chat_messages::Model, Room), Error> {
    let row = chat_messages::Entity::find_by_id((ctx.org().as_uuid(), id))
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("message"))?;
    let room = Room::from_stored(
        &row.room_kind,
        &row.room_key,
        ctx.user().map(|u| u.as_uuid()),
    )
    .ok_or(Error::not_found("message"))?;
    authorize(db, ctx, room).await.map_err(|err| match err {
        Error::NotFound { .. } => Error::not_found("message"),
        other => other,
    })?;
    Ok((row, room))
}

/// The author changes a message's body.
pub async fn edit_message(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: Uuid,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(chat_messages::Model, Room), Error> {
    let me = member(ctx)?;
    let mut problems = Vec::new();
    check_body(body, &mut problems);
    validation(problems)?;
    let (row, room) = find_message(db, ctx, id).await?;
    if row.sender_id != me {
        return Err(Error::Forbidden(
            "only the author may edit a message".into(),
        ));
    }
    if row.deleted_at.is_some() {
        return Err(Error::not_found("message"));
    }
    chat_messages::Entity::update_many()
        .col_expr(chat_messages::Column::Body, Expr::value(body))
        .col_expr(chat_messages::Column::EditedAt, Expr::value(now))
        .filter(chat_messages::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(chat_messages::Column::Id.eq(id))
        .filter(chat_messages::Column::DeletedAt.is_null())
        .exec(db)
        .await
        .map_err(db_err)?;
    let row = chat_messages::Model {
        body: body.to_owned(),
        edited_at: Some(now),
        ..row
    };
    Ok((row, room))
}

/// The author or an organization admin deletes a message: its body is emptied and
/// `deleted_at` set, and the deletion is audited. Deleting a deleted message changes
/// nothing.
pub async fn delete_message(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(chat_messages::Model, Room), Error> {
    let me = member(ctx)?;
    let (row, room) = find_message(db, ctx, id).await?;
    if row.sender_id != me && ctx.role() != Role::OrgAdmin {
        return Err(Error::Forbidden(
            "only the author or an organization admin may delete a message".into(),
        ));
    }
    if row.deleted_at.is_some() {
        return Ok((row, room));
    }
    let txn = begin_write(db).await.map_err(db_err)?;
    chat_messages::Entity::update_many()
        .col_expr(chat_messages::Column::Body, Expr::value(""))
        .col_expr(chat_messages::Column::DeletedAt, Expr::value(now))
        .col_expr(chat_messages::Column::DeletedBy, Expr::value(me))
        .filter(chat_messages::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(chat_messages::Column::Id.eq(id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "chat_message.delete")
        .target("chat_message", id)
        .details(json!({
            "room_kind": row.room_kind,
            "room_key": row.room_key,
            "sender_id": row.sender_id,
        }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    let row = chat_messages::Model {
        body: String::new(),
        deleted_at: Some(now),
        deleted_by: Some(me),
        ..row
    };
    Ok((row, room))
}

/// A member's read position in a room.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ReadPosition {
    /// The room.
    pub room: String,
    /// The last message read.
    pub last_read_message_id: Option<Uuid>,
    /// Messages of others after it (not deleted).
    pub unread: u64,
}

/// How many messages of others, not deleted, come after `after` in the room.
async fn unread<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    user: Uuid,
    kind: &str,
    key: &str,
    after: Option<Uuid>,
) -> Result<u64, Error> {
    let mut select = chat_messages::Entity::find()
        .filter(chat_messages::Column::OrganizationId.eq(org.as_uuid()))
        .filter(chat_messages::Column::RoomKind.eq(kind))
        .filter(chat_messages::Column::RoomKey.eq(key))
        .filter(chat_messages::Column::SenderId.ne(user))
        .filter(chat_messages::Column::DeletedAt.is_null());
    if let Some(after) = after {
        select = select.filter(chat_messages::Column::Id.gt(after));
    }
    select.count(conn).await.map_err(db_err)
}

/// Moves the caller's read position in `room` (already authorized) to `message_id`, a
/// message of that room; a position never moves backwards.
pub async fn mark_read(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    room: Room,
    message_id: Uuid,
    now: DateTime<Utc>,
) -> Result<ReadPosition, Error> {
    let me = member(ctx)?;
    let org = ctx.org();
    let kind = room.kind();
    let key = room.key(me);
    let message = chat_messages::Entity::find_by_id((org.as_uuid(), message_id))
        .one(db)
        .await
        .map_err(db_err)?
        .filter(|m| m.room_kind == kind && m.room_key == key)
        .ok_or(Error::not_found("message"))?;
    ensure_participant(db, org, me, kind, &key, now).await?;
    // Forward only: ids are time-ordered.
    chat_participants::Entity::update_many()
        .col_expr(
            chat_participants::Column::LastReadMessageId,
            Expr::value(message.id),
        )
        .col_expr(chat_participants::Column::UpdatedAt, Expr::value(now))
        .filter(chat_participants::Column::OrganizationId.eq(org.as_uuid()))
        .filter(chat_participants::Column::UserId.eq(me))
        .filter(chat_participants::Column::RoomKind.eq(kind))
        .filter(chat_participants::Column::RoomKey.eq(key.as_str()))
        .filter(
            sea_orm::Condition::any()
                .add(chat_participants::Column::LastReadMessageId.is_null())
                .add(chat_participants::Column::LastReadMessageId.lt(message.id)),
        )
        .exec(db)
        .await
        .map_err(db_err)?;
    let position =
        chat_participants::Entity::find_by_id((org.as_uuid(), me, kind.to_owned(), key.clone()))
            .one(db)
            .await
            .map_err(db_err)?
            .and_then(|p| p.last_read_message_id);
    Ok(ReadPosition {
        room: room.to_string(),
        last_read_message_id: position,
        unread: unread(db, org, me, kind, &key, position).await?,
    })
}

/// A room's messages, newest first, with keyset pages (the cursor is the last id seen).
pub async fn history(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    room: Room,
    page: &PageRequest,
) -> Result<Page<MessageView>, Error> {
    let viewer = ctx.user().map(|u| u.as_uuid());
    let key = match (room, viewer) {
        (Room::Dm(_), None) => return Err(no_room()),
        (room, Some(me)) => room.key(me),
        (room, None) => room.id().to_string(),
    };
    let before: Option<Uuid> = page.after().map_err(Error::from)?;
    let mut select = chat_messages::Entity::find()
        .filter(chat_messages::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(chat_messages::Column::RoomKind.eq(room.kind()))
        .filter(chat_messages::Column::RoomKey.eq(key));
    if let Some(before) = before {
        select = select.filter(chat_messages::Column::Id.lt(before));
    }
    let limit = page.limit();
    let rows = select
        .order_by_desc(chat_messages::Column::Id)
        .limit(u64::from(limit) + 1)
        .all(db)
        .await
        .map_err(db_err)?;
    let views = rows
        .iter()
        .map(|row| MessageView::of(row, viewer))
        .collect();
    Ok(Page::from_overfetch(views, limit, |m: &MessageView| m.id))
}

/// One of a member's rooms.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RoomView {
    /// The room's name.
    pub room: String,
    /// `prospect`, `relationship`, `deal` or `dm`.
    pub kind: &'static str,
    /// The newest message, if any.
    pub last_message: Option<MessageView>,
    /// Messages of others, not deleted, after the member's read position.
    pub unread: u64,
    /// The member's read position.
    pub last_read_message_id: Option<Uuid>,
    /// The newest message's time, or when the member joined.
    pub last_activity_at: DateTime<Utc>,
}

/// The caller's rooms (record rooms they have joined, posted in or read, and their direct
/// conversations) that they may still use, most recently active first.
pub async fn rooms(db: &DatabaseConnection, ctx: &TenantContext) -> Result<Vec<RoomView>, Error> {
    ctx.require(Permission::ChatUse)?;
    let me = member(ctx)?;
    let org = ctx.org();
    let places = chat_participants::Entity::find()
        .filter(chat_participants::Column::OrganizationId.eq(org.as_uuid()))
        .filter(chat_participants::Column::UserId.eq(me))
        .all(db)
        .await
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(places.len());
    for place in places {
        let Some(room) = Room::from_stored(&place.room_kind, &place.room_key, Some(me)) else {
            continue;
        };
        match authorize(db, ctx, room).await {
            Ok(()) => {}
            // No longer visible (or the member left): not listed.
            Err(Error::NotFound { .. }) => continue,
            Err(other) => return Err(other),
        }
        let last = chat_messages::Entity::find()
            .filter(chat_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(chat_messages::Column::RoomKind.eq(place.room_kind.as_str()))
            .filter(chat_messages::Column::RoomKey.eq(place.room_key.as_str()))
            .order_by_desc(chat_messages::Column::Id)
            .one(db)
            .await
            .map_err(db_err)?;
        let unread = unread(
            db,
            org,
            me,
            &place.room_kind,
            &place.room_key,
            place.last_read_message_id,
        )
        .await?;
        let last_activity_at = last
            .as_ref()
            .map_or(place.created_at, |m| m.created_at.max(place.created_at));
        out.push(RoomView {
            room: room.to_string(),
            kind: room.kind(),
            last_message: last.as_ref().map(|m| MessageView::of(m, Some(me))),
            unread,
            last_read_message_id: place.last_read_message_id,
            last_activity_at,
        });
    }
    out.sort_by(|a, b| {
        b.last_activity_at
            .cmp(&a.last_activity_at)
            .then_with(|| b.room.cmp(&a.room))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_parse_only_in_their_canonical_form() {
        let id = Uuid::now_v7();
        for kind in ["prospect", "relationship", "deal", "dm"] {
            let room = Room::parse(&format!("{kind}:{id}")).unwrap();
            assert_eq!(room.to_string(), format!("{kind}:{id}"));
            assert_eq!(room.id(), id);
        }
        for bad in [
            String::new(),
            "deal".into(),
            "deal:".into(),
            format!("ticket:{id}"),
            format!("deal:{}", id.simple()),
            format!("deal:{{{id}}}"),
            format!("o:{id}:deal:{id}"),
            format!("deal:{id}:x"),
        ] {
            assert_eq!(Room::parse(&bad), None, "{bad}");
        }
        assert_eq!(Room::parse_record(&format!("dm:{id}")), None);
    }

    #[test]
    fn a_direct_conversation_has_one_key_and_each_side_names_the_other() {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let key = Room::Dm(b).key(a);
        assert_eq!(key, Room::Dm(a).key(b));
        assert_eq!(Room::from_stored("dm", &key, Some(a)), Some(Room::Dm(b)));
        assert_eq!(Room::from_stored("dm", &key, Some(b)), Some(Room::Dm(a)));
        assert_eq!(Room::from_stored("dm", &key, Some(c)), None);
        assert_eq!(Room::from_stored("dm", &key, None), None);
        let deal = Uuid::now_v7();
        assert_eq!(
            Room::from_stored("deal", &deal.to_string(), None),
            Some(Room::Deal(deal))
        );
    }

    #[test]
    fn bodies_and_client_ids_are_checked() {
        let ok = NewMessage {
            body: "hello".into(),
            client_message_id: Some("c-1".into()),
        };
        assert!(ok.check().is_ok());
        for (body, client) in [
            ("", None),
            ("   ", None),
            ("x", Some(String::new())),
            ("x", Some("c".repeat(101))),
        ] {
            let bad = NewMessage {
                body: body.into(),
                client_message_id: client,
            };
            assert!(matches!(bad.check(), Err(Error::Validation(_))), "{body:?}");
        }
        let long = NewMessage {
            body: "é".repeat(MAX_BODY_CHARS),
            client_message_id: None,
        };
        assert!(long.check().is_ok());
        let too_long = NewMessage {
            body: "é".repeat(MAX_BODY_CHARS + 1),
            client_message_id: None,
        };
        assert!(too_long.check().is_err());
    }
}
