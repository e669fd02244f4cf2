//! `/pipelines`: pipelines, their stages and the kanban board.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_tenancy::TenantContext;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::crm::deals::{self, BoardQuery, BoardView};
use crate::crm::pipelines::{
    self, ArchiveStage, NewPipeline, NewStage, PipelinePatch, PipelineView, StageOrder, StagePatch,
};

/// `GET /pipelines` options.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Also list archived pipelines.
    #[serde(default)]
    include_archived: bool,
}

/// `GET /pipelines`: the organization's pipelines in order, each with its stages.
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let items = pipelines::list(&state.db, &ctx, query.include_archived).await?;
    Ok(Json(json!({ "items": items })))
}

/// `POST /pipelines`: 201 with the new pipeline and its stages.
pub async fn create(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<NewPipeline>,
) -> Result<Response, ApiError> {
    let view = pipelines::create(&state.db, &ctx, &client, state.clock.now(), input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /pipelines/{id}`.
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<PipelineView>, ApiError> {
    Ok(Json(pipelines::get(&state.db, &ctx, id).await?))
}

/// `PATCH /pipelines/{id}`: rename, or make it the default.
pub async fn update(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(patch): Json<PipelinePatch>,
) -> Result<Json<PipelineView>, ApiError> {
    Ok(Json(
        pipelines::update(&state.db, &ctx, &client, state.clock.now(), id, patch).await?,
    ))
}

/// `POST /pipelines/{id}/archive`.
pub async fn archive(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<PipelineView>, ApiError> {
    Ok(Json(
        pipelines::archive(&state.db, &ctx, &client, state.clock.now(), id).await?,
    ))
}

/// `POST /pipelines/{id}/stages`: 201 with the pipeline, the new stage last.
pub async fn add_stage(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(input): Json<NewStage>,
) -> Result<Response, ApiError> {
    let view = pipelines::add_stage(&state.db, &ctx, &client, state.clock.now(), id, input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `PATCH /pipelines/{id}/stages/{stage_id}`: rename, or change the probability.
pub async fn update_stage(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path((id, stage)): Path<(uuid::Uuid, uuid::Uuid)>,
    Json(patch): Json<StagePatch>,
) -> Result<Json<PipelineView>, ApiError> {
    Ok(Json(
        pipelines::update_stage(
            &state.db,
            &ctx,
            &client,
            state.clock.now(),
            id,
            stage,
            patch,
        )
        .await?,
    ))
}

/// `PUT /pipelines/{id}/stages/order`: every active stage id, in the new order.
pub async fn reorder_stages(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(order): Json<StageOrder>,
) -> Result<Json<PipelineView>, ApiError> {
    Ok(Json(
        pipelines::reorder_stages(&state.db, &ctx, &client, state.clock.now(), id, order).await?,
    ))
}

/// `POST /pipelines/{id}/stages/{stage_id}/archive`, with an optional body
/// `{"move_deals_to": stage id}`.
pub async fn archive_stage(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path((id, stage)): Path<(uuid::Uuid, uuid::Uuid)>,
    input: Option<Json<ArchiveStage>>,
) -> Result<Json<PipelineView>, ApiError> {
    let input = input.map(|Json(input)| input).unwrap_or_default();
    Ok(Json(
        pipelines::archive_stage(
            &state.db,
            &ctx,
            &client,
            state.clock.now(),
            id,
            stage,
            input,
        )
        .await?,
    ))
}

/// `GET /pipelines/{id}/board`: the kanban board (`?owner_id=`, `?cards=`).
pub async fn board(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
    Query(query): Query<BoardQuery>,
) -> Result<Json<BoardView>, ApiError> {
    Ok(Json(deals::board(&state.db, &ctx, id, query).await?))
}
