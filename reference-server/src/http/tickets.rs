//! `/tickets`: support tickets and their comments. The rules live in
//! [`crate::crm::tickets`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_core::Page;
use edge_tenancy::TenantContext;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::crm::tickets::{
    self, CommentInput, CommentView, NewTicket, TicketDetail, TicketPatch, TicketView,
};

/// `POST /tickets`: 201 with the ticket.
pub async fn create(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<NewTicket>,
) -> Result<Response, ApiError> {
    let ticket = tickets::create(&state.db, &ctx, &client, state.clock.now(), input).await?;
    Ok((StatusCode::CREATED, Json(ticket)).into_response())
}

/// `GET /tickets`: filters, search, sort and keyset pages (see [`tickets::LIST`]).
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Page<TicketView>>, ApiError> {
    Ok(Json(
        tickets::list(&state.db, &ctx, state.clock.now(), pairs).await?,
    ))
}

/// `GET /tickets/{id}`: the ticket with its comments.
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(
        tickets::get(&state.db, &ctx, state.clock.now(), id).await?,
    ))
}

/// `PATCH /tickets/{id}`: fields, status, assignee.
pub async fn update(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(patch): Json<TicketPatch>,
) -> Result<Json<TicketView>, ApiError> {
    Ok(Json(
        tickets::update(&state.db, &ctx, &client, state.clock.now(), id, patch).await?,
    ))
}

/// `DELETE /tickets/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    tickets::delete(&state.db, &ctx, &client, state.clock.now(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /tickets/{id}/comments`: 201 with the comment.
pub async fn comment(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(input): Json<CommentInput>,
) -> Result<Response, ApiError> {
    let comment = tickets::comment(&state.db, &ctx, &client, state.clock.now(), id, input).await?;
    Ok((StatusCode::CREATED, Json(comment)).into_response())
}

/// `PATCH /tickets/{id}/comments/{comment_id}`: the author edits their comment.
pub async fn update_comment(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path((id, comment_id)): Path<(uuid::Uuid, uuid::Uuid)>,
    Json(input): Json<CommentInput>,
) -> Result<Json<CommentView>, ApiError> {
    Ok(Json(
        tickets::update_comment(
            &state.db,
            &ctx,
            &client,
            state.clock.now(),
            id,
            comment_id,
            input,
        )
        .await?,
    ))
}

/// `DELETE /tickets/{id}/comments/{comment_id}`: 204.
pub async fn delete_comment(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path((id, comment_id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> Result<StatusCode, ApiError> {
    tickets::delete_comment(&state.db, &ctx, &client, state.clock.now(), id, comment_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
