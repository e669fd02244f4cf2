//! `/chat/*`: the team chat's history, rooms list and read positions. Live messages go
//! over Socket.IO ([`crate::realtime`]); the rules live in [`crate::chat`].

use axum::extract::State;
use edge_core::Page;
use edge_tenancy::TenantContext;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{Json, Path, Query, page_request};
use crate::AppState;
use crate::chat::{self, MessageView, ReadPosition, RoomView};

/// Keyset paging of a room's history: `before` (or `cursor`) is a previous page's
/// `next_cursor`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    limit: Option<u32>,
    before: Option<String>,
    cursor: Option<String>,
}

/// The rooms list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rooms {
    /// The caller's rooms, most recently active first.
    pub items: Vec<RoomView>,
}

/// `GET /chat/rooms`: the caller's rooms with their last message and unread count, most
/// recently active first.
pub async fn rooms(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<Rooms>, ApiError> {
    Ok(Json(Rooms {
        items: chat::rooms(&state.db, &ctx).await?,
    }))
}

/// `GET /chat/rooms/{room}/messages`: newest first, in keyset pages.
pub async fn messages(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(room): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    let room = chat::open(&state.db, &ctx, &room).await?;
    let page = page_request(query.limit, query.before.or(query.cursor))?;
    Ok(Json(chat::history(&state.db, &ctx, room, &page).await?))
}

/// The body of `PUT /chat/rooms/{room}/read`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// The last message read.
    pub message_id: Uuid,
}

/// `PUT /chat/rooms/{room}/read`: moves the caller's read position (never backwards).
pub async fn mark_read(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(room): Path<String>,
    Json(input): Json<MarkRead>,
) -> Result<Json<ReadPosition>, ApiError> {
    let room = chat::open(&state.db, &ctx, &room).await?;
    Ok(Json(
        chat::mark_read(&state.db, &ctx, room, input.message_id, state.clock.now()).await?,
    ))
}
