//! `/relationships`: customers.

use axum::extract::State;
use axum::http::StatusCode;
use edge_core::Page;
use edge_tenancy::TenantContext;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::crm::relationships::{self, RelationshipInput, RelationshipView};

/// `POST /relationships`: 201 with the relationship.
pub async fn create(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<RelationshipInput>,
) -> Result<(StatusCode, Json<RelationshipView>), ApiError> {
    let view = relationships::create(&state.db, &ctx, &client, state.clock.now(), input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /relationships`: filters, search, sort and keyset pages (see `crm::list`).
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Page<RelationshipView>>, ApiError> {
    Ok(Json(relationships::list(&state.db, &ctx, pairs).await?))
}

/// `GET /relationships/{id}`.
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<RelationshipView>, ApiError> {
    Ok(Json(relationships::get(&state.db, &ctx, id).await?))
}

/// `PATCH /relationships/{id}`.
pub async fn update(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(input): Json<RelationshipInput>,
) -> Result<Json<RelationshipView>, ApiError> {
    let view =
        relationships::update(&state.db, &ctx, &client, state.clock.now(), id, input).await?;
    Ok(Json(view))
}

/// `DELETE /relationships/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    relationships::delete(&state.db, &ctx, &client, state.clock.now(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
