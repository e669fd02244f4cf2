//! `/automation/*`: rules and their run log. The rules live in [`crate::automation`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_core::Page;
use edge_tenancy::TenantContext;
use serde::{Deserialize, Serialize};

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query, page_request};
use crate::AppState;
use crate::automation::{self, RuleInput, RuleView, RunView};

/// The rules list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rules {
    /// Every rule of the organization, oldest first.
    pub items: Vec<RuleView>,
}

/// Keyset paging of a rule's runs.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `POST /automation/rules`: 201 with the rule.
pub async fn create_rule(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<RuleInput>,
) -> Result<Response, ApiError> {
    let rule = automation::create_rule(&state.db, &ctx, &client, state.clock.now(), input).await?;
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

/// `GET /automation/rules`.
pub async fn list_rules(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<Rules>, ApiError> {
    Ok(Json(Rules {
        items: automation::list_rules(&state.db, &ctx).await?,
    }))
}

/// `GET /automation/rules/{id}`.
pub async fn get_rule(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<RuleView>, ApiError> {
    Ok(Json(automation::get_rule(&state.db, &ctx, id).await?))
}

/// `PATCH /automation/rules/{id}`.
pub async fn update_rule(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Json(input): Json<RuleInput>,
) -> Result<Json<RuleView>, ApiError> {
    Ok(Json(
        automation::update_rule(&state.db, &ctx, &client, state.clock.now(), id, input).await?,
    ))
}

/// `DELETE /automation/rules/{id}`: 204; its runs go with it.
pub async fn delete_rule(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    automation::delete_rule(&state.db, &ctx, &client, state.clock.now(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /automation/rules/{id}/runs`: newest first, keyset paged.
pub async fn list_runs(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Page<RunView>>, ApiError> {
    let page = page_request(query.limit, query.cursor)?;
    Ok(Json(
        automation::list_runs(&state.db, &ctx, id, &page).await?,
    ))
}

/// `GET /automation/runs/{id}`.
pub async fn get_run(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(automation::get_run(&state.db, &ctx, id).await?))
}
