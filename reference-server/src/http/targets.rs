//! `/targets`: goals per person, team or organization, with progress computed when read.
//! The rules live in [`crate::crm::targets`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_core::Page;
use edge_tenancy::TenantContext;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::crm::targets::{self, NewTarget, TargetPatch, TargetView};

/// `POST /targets`: 201 with the target and its progress.
pub async fn create(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<NewTarget>,
) -> Result<Response, ApiError> {
    let target = targets::create(&state.db, &ctx, &client, state.clock.now(), input).await?;
    Ok((StatusCode::CREATED, Json(target)).into_response())
}

/// `GET /targets`: each with its progress (see [`targets::LIST`] for the filters).
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Page<TargetView>>, ApiError> {
    Ok(Json(targets::list(&state.db, &ctx, pairs).await?))
}

/// `GET /targets/{id}`: with its progress.
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<TargetView>, ApiError> {
    Ok(Json(targets::get(&state.db, &ctx, id).await?))
}

/// `PATCH /targets/{id}`.
pub async fn update(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(patch): Json<TargetPatch>,
) -> Result<Json<TargetView>, ApiError> {
    Ok(Json(
        targets::update(&state.db, &ctx, &client, state.clock.now(), id, patch).await?,
    ))
}

/// `DELETE /targets/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    targets::delete(&state.db, &ctx, &client, state.clock.now(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
