//! `/deals`: the list, deals, their moves between stages, winning, losing and reopening.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_core::Page;
use edge_tenancy::TenantContext;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::crm::deals::{self, CloseDeal, DealPatch, DealView, MoveDeal, NewDeal};

/// `POST /deals`: 201 with the deal and its first history entry.
pub async fn create(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<NewDeal>,
) -> Result<Response, ApiError> {
    let view = deals::create(&state.db, &ctx, &client, state.clock.now(), input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /deals`: filters, search, sort and keyset pages (see `crm::list` and
/// `crm::deals::LIST`).
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Page<DealView>>, ApiError> {
    Ok(Json(deals::list(&state.db, &ctx, pairs).await?))
}

/// `GET /deals/{id}`: the deal with its stage-move history.
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<DealView>, ApiError> {
    Ok(Json(deals::get(&state.db, &ctx, id).await?))
}

/// `PATCH /deals/{id}`.
pub async fn update(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(patch): Json<DealPatch>,
) -> Result<Json<DealView>, ApiError> {
    Ok(Json(
        deals::update(&state.db, &ctx, &client, state.clock.now(), id, patch).await?,
    ))
}

/// `DELETE /deals/{id}`: 204; the deal answers 404 from then on.
pub async fn delete(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    deals::delete(&state.db, &ctx, &client, state.clock.now(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /deals/{id}/move`: `{"stage_id", "before_id"?, "after_id"?}`.
pub async fn move_deal(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(input): Json<MoveDeal>,
) -> Result<Json<DealView>, ApiError> {
    Ok(Json(
        deals::move_deal(&state.db, &ctx, &client, state.clock.now(), id, input).await?,
    ))
}

/// `POST /deals/{id}/won`, with an optional body `{"reason": …}`.
pub async fn won(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    input: Option<Json<CloseDeal>>,
) -> Result<Json<DealView>, ApiError> {
    let input = input.map(|Json(input)| input).unwrap_or_default();
    Ok(Json(
        deals::close(&state.db, &ctx, &client, state.clock.now(), id, true, input).await?,
    ))
}

/// `POST /deals/{id}/lost`: `{"reason": …}` (required).
pub async fn lost(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    input: Option<Json<CloseDeal>>,
) -> Result<Json<DealView>, ApiError> {
    let input = input.map(|Json(input)| input).unwrap_or_default();
    Ok(Json(
        deals::close(
            &state.db,
            &ctx,
            &client,
            state.clock.now(),
            id,
            false,
            input,
        )
        .await?,
    ))
}

/// `POST /deals/{id}/reopen`.
pub async fn reopen(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<DealView>, ApiError> {
    Ok(Json(
        deals::reopen(&state.db, &ctx, &client, state.clock.now(), id).await?,
    ))
}
