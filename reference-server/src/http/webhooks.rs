//! `/webhook-endpoints/*` and `/webhook-deliveries/*`: outbound webhooks (see
//! [`crate::webhooks`]). Every route needs `webhooks_manage`.

use axum::extract::State;
use axum::http::StatusCode;
use edge_core::Page;
use edge_tenancy::TenantContext;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query, page_request};
use crate::AppState;
use crate::audit::Actor;
use crate::webhooks::DeliveryStatus;
use crate::webhooks::endpoints::{
    CreateEndpoint, EndpointError, EndpointPatch, EndpointView, EndpointWithSecret,
};
use crate::webhooks::log::{DeliveryDetail, DeliveryView};

impl From<EndpointError> for ApiError {
    fn from(err: EndpointError) -> Self {
        match err {
            EndpointError::Core(err) => err.into(),
            EndpointError::AddressNotAllowed(refusal) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "address_not_allowed",
                format!("webhooks are only sent to public internet addresses: {refusal}"),
            )
            .with_details(
                json!({ "fields": [{ "field": "url", "message": refusal.to_string() }] }),
            ),
        }
    }
}

/// `GET /webhook-endpoints`: the organization's endpoints (never their secrets).
pub async fn list_endpoints(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let endpoints = state.webhooks.endpoints(ctx.org()).await?;
    Ok(axum::Json(json!({ "items": endpoints })))
}

/// `POST /webhook-endpoints`: 201 with the signing secret, shown this once.
pub async fn create_endpoint(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<CreateEndpoint>,
) -> Result<(StatusCode, axum::Json<EndpointWithSecret>), ApiError> {
    let created = state
        .webhooks
        .create_endpoint(ctx.org(), Actor::of(&ctx), &client, input)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// `GET /webhook-endpoints/{id}`.
pub async fn get_endpoint(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<EndpointView>, ApiError> {
    Ok(axum::Json(state.webhooks.endpoint(ctx.org(), id).await?))
}

/// `PATCH /webhook-endpoints/{id}`: url, description, event types, enabled.
pub async fn update_endpoint(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<Uuid>,
    Json(patch): Json<EndpointPatch>,
) -> Result<axum::Json<EndpointView>, ApiError> {
    Ok(axum::Json(
        state
            .webhooks
            .update_endpoint(ctx.org(), Actor::of(&ctx), &client, id, patch)
            .await?,
    ))
}

/// `DELETE /webhook-endpoints/{id}`: 204; its delivery log goes with it.
pub async fn delete_endpoint(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .webhooks
        .delete_endpoint(ctx.org(), Actor::of(&ctx), &client, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /webhook-endpoints/{id}/rotate-secret`: a new secret, shown this once; the old
/// one keeps signing next to it for 24 hours.
pub async fn rotate_secret(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<EndpointWithSecret>, ApiError> {
    Ok(axum::Json(
        state
            .webhooks
            .rotate_secret(ctx.org(), Actor::of(&ctx), &client, id)
            .await?,
    ))
}

/// `POST /webhook-endpoints/{id}/test`: 202 with the queued `webhook.test` delivery.
pub async fn send_test(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<DeliveryView>), ApiError> {
    let delivery = state
        .webhooks
        .send_test(ctx.org(), Actor::of(&ctx), id)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery)))
}

/// Paging and a status filter for the delivery log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    status: Option<String>,
}

/// `GET /webhook-endpoints/{id}/deliveries`: newest first; `?status=` filters.
pub async fn list_deliveries(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<Uuid>,
    Query(query): Query<DeliveriesQuery>,
) -> Result<axum::Json<Page<DeliveryView>>, ApiError> {
    let page = page_request(query.limit, query.cursor)?;
    let status = query
        .status
        .as_deref()
        .map(|s| DeliveryStatus::parse("status", s))
        .transpose()?;
    Ok(axum::Json(
        state
            .webhooks
            .deliveries(ctx.org(), id, status, &page)
            .await?,
    ))
}

/// `GET /webhook-deliveries/{id}`: with its body and every try.
pub async fn get_delivery(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<DeliveryDetail>, ApiError> {
    Ok(axum::Json(state.webhooks.delivery(ctx.org(), id).await?))
}

/// `POST /webhook-deliveries/{id}/replay`: 202, queued again now (same message id and
/// body); 409 when it is still pending or its endpoint is disabled.
pub async fn replay(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<DeliveryView>), ApiError> {
    let delivery = state
        .webhooks
        .replay(ctx.org(), Actor::of(&ctx), &client, id)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery)))
}
