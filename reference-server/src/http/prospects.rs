//! `/prospects`: leads, and converting one into a relationship.

use axum::extract::State;
use axum::http::StatusCode;
use edge_core::Page;
use edge_tenancy::TenantContext;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::crm::prospects::{self, Conversion, ProspectInput, ProspectView};
use crate::crm::relationships::RelationshipView;

/// `POST /prospects`: 201 with the prospect.
pub async fn create(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<ProspectInput>,
) -> Result<(StatusCode, Json<ProspectView>), ApiError> {
    let view = prospects::create(&state.db, &ctx, &client, state.clock.now(), input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /prospects`: filters, search, sort and keyset pages (see `crm::list`).
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Page<ProspectView>>, ApiError> {
    Ok(Json(prospects::list(&state.db, &ctx, pairs).await?))
}

/// `GET /prospects/{id}`.
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<ProspectView>, ApiError> {
    Ok(Json(prospects::get(&state.db, &ctx, id).await?))
}

/// `PATCH /prospects/{id}`.
pub async fn update(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(input): Json<ProspectInput>,
) -> Result<Json<ProspectView>, ApiError> {
    let view = prospects::update(&state.db, &ctx, &client, state.clock.now(), id, input).await?;
    Ok(Json(view))
}

/// `DELETE /prospects/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    prospects::delete(&state.db, &ctx, &client, state.clock.now(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /prospects/{id}/convert`: 201 with the new relationship.
pub async fn convert(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(input): Json<Conversion>,
) -> Result<(StatusCode, Json<RelationshipView>), ApiError> {
    let view = prospects::convert(&state.db, &ctx, &client, state.clock.now(), id, input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}
