//! `/activities`: notes, calls, meetings and tasks. The rules live in
//! [`crate::crm::activities`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_core::Page;
use edge_tenancy::TenantContext;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::crm::activities::{self, ActivityPatch, ActivityView, NewActivity};

/// `POST /activities`: 201 with the activity.
pub async fn create(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<NewActivity>,
) -> Result<Response, ApiError> {
    let activity = activities::create(&state.db, &ctx, &client, state.clock.now(), input).await?;
    Ok((StatusCode::CREATED, Json(activity)).into_response())
}

/// `GET /activities`: filters, sort and keyset pages (see [`activities::LIST`]); a
/// relationship's timeline includes its source prospect's activities.
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Page<ActivityView>>, ApiError> {
    Ok(Json(
        activities::list(&state.db, &ctx, state.clock.now(), pairs).await?,
    ))
}

/// `GET /activities/{id}`.
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<ActivityView>, ApiError> {
    Ok(Json(
        activities::get(&state.db, &ctx, state.clock.now(), id).await?,
    ))
}

/// `PATCH /activities/{id}`.
pub async fn update(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(patch): Json<ActivityPatch>,
) -> Result<Json<ActivityView>, ApiError> {
    Ok(Json(
        activities::update(&state.db, &ctx, &client, state.clock.now(), id, patch).await?,
    ))
}

/// `POST /activities/{id}/complete`: idempotent.
pub async fn complete(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<ActivityView>, ApiError> {
    Ok(Json(
        activities::set_completed(&state.db, &ctx, &client, state.clock.now(), id, true).await?,
    ))
}

/// `POST /activities/{id}/reopen`: idempotent.
pub async fn reopen(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<ActivityView>, ApiError> {
    Ok(Json(
        activities::set_completed(&state.db, &ctx, &client, state.clock.now(), id, false).await?,
    ))
}

/// `DELETE /activities/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    activities::delete(&state.db, &ctx, &client, state.clock.now(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
