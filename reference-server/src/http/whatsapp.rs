//! `/whatsapp/*`: numbers, sends, messages and conversations; and the public platform
//! webhook `/webhooks/whatsapp` (see [`webhook_routes`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use edge_core::Page;
use edge_tenancy::TenantContext;
use edge_whatsapp::ErrorClass;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query, idempotency_key, page_request};
use crate::AppState;
use crate::audit::Actor;
use crate::whatsapp::conversations::{ConversationView, MessageView};
use crate::whatsapp::numbers::{ConnectNumber, NumberPatch, NumberView};
use crate::whatsapp::send::{SendError, SendRequest, Sent};
use crate::whatsapp::webhook::WebhookRefusal;

/// `GET /whatsapp/numbers`.
pub async fn list_numbers(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let numbers = state.whatsapp.numbers(ctx.org()).await?;
    Ok(axum::Json(json!({ "items": numbers })))
}

/// `POST /whatsapp/numbers`: connect a number (checked with Graph first).
pub async fn connect_number(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<ConnectNumber>,
) -> Result<(StatusCode, axum::Json<NumberView>), ApiError> {
    let number = state
        .whatsapp
        .connect_number(ctx.org(), Actor::of(&ctx), &client, input)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(number)))
}

/// `GET /whatsapp/numbers/{id}`.
pub async fn get_number(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<NumberView>, ApiError> {
    Ok(axum::Json(state.whatsapp.number(ctx.org(), id).await?))
}

/// `PATCH /whatsapp/numbers/{id}`: a new token, or make it the default.
pub async fn update_number(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<Uuid>,
    Json(patch): Json<NumberPatch>,
) -> Result<axum::Json<NumberView>, ApiError> {
    Ok(axum::Json(
        state
            .whatsapp
            .update_number(ctx.org(), Actor::of(&ctx), &client, id, patch)
            .await?,
    ))
}

/// `DELETE /whatsapp/numbers/{id}`: disconnect it.
pub async fn disconnect_number(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<NumberView>, ApiError> {
    Ok(axum::Json(
        state
            .whatsapp
            .disconnect_number(ctx.org(), Actor::of(&ctx), &client, id)
            .await?,
    ))
}

/// `POST /whatsapp/messages`: 201 accepted, 202 queued (throttled, or no answer yet), 200
/// for a replayed `Idempotency-Key`; 422 `template_required` outside the window, 402 when
/// the wallet cannot pay; when Graph refuses, 422 or 502 with the failed (refunded)
/// message in the details.
pub async fn send(
    State(state): State<AppState>,
    ctx: TenantContext,
    headers: HeaderMap,
    Json(request): Json<SendRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let sent_by = Actor::of(&ctx).id();
    match state.whatsapp.send(ctx.org(), sent_by, key, request).await {
        Ok(Sent::Accepted(message)) => {
            Ok((StatusCode::CREATED, axum::Json(message)).into_response())
        }
        Ok(Sent::Queued(message)) => {
            Ok((StatusCode::ACCEPTED, axum::Json(message)).into_response())
        }
        Ok(Sent::Replayed(message)) => Ok((StatusCode::OK, axum::Json(message)).into_response()),
        Err(SendError::Refused(err)) => Err(err.into()),
        Err(SendError::TemplateRequired(reason)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template_required",
            format!("free-form messages need an open customer-service window: {reason}"),
        )),
        Err(SendError::Rejected { message, error }) => {
            let (status, code) = match error.class() {
                ErrorClass::WindowClosed => (StatusCode::UNPROCESSABLE_ENTITY, "template_required"),
                ErrorClass::Undeliverable
                | ErrorClass::BadTemplateParameters
                | ErrorClass::TemplateUnavailable
                | ErrorClass::InvalidRequest
                | ErrorClass::TenantAction => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "whatsapp_refused")
                }
                ErrorClass::Auth | ErrorClass::Permission => {
                    (StatusCode::BAD_GATEWAY, "whatsapp_credentials_refused")
                }
                _ => (StatusCode::BAD_GATEWAY, "upstream_error"),
            };
            Err(ApiError::new(
                status,
                code,
                format!("WhatsApp refused the message; its fee was refunded: {error}"),
            )
            .with_details(json!({ "message": message })))
        }
    }
}

/// `GET /whatsapp/messages/{id}`: a message with its status timeline and charge.
pub async fn get_message(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<MessageView>, ApiError> {
    Ok(axum::Json(state.whatsapp.message(ctx.org(), id).await?))
}

/// Keyset paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /whatsapp/conversations`: most recent first.
pub async fn conversations(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<Page<ConversationView>>, ApiError> {
    let page = page_request(query.limit, query.cursor)?;
    Ok(axum::Json(
        state.whatsapp.conversations(ctx.org(), &page).await?,
    ))
}

/// `GET /whatsapp/conversations/{contact}`.
pub async fn conversation(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(contact): Path<Uuid>,
) -> Result<axum::Json<ConversationView>, ApiError> {
    Ok(axum::Json(
        state.whatsapp.conversation(ctx.org(), contact).await?,
    ))
}

/// `GET /whatsapp/conversations/{contact}/messages`: newest first.
pub async fn conversation_messages(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(contact): Path<Uuid>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<Page<MessageView>>, ApiError> {
    let page = page_request(query.limit, query.cursor)?;
    Ok(axum::Json(
        state
            .whatsapp
            .conversation_messages(ctx.org(), contact, &page)
            .await?,
    ))
}

/// `POST /whatsapp/conversations/{contact}/read`: the unread count back to zero.
pub async fn mark_read(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(contact): Path<Uuid>,
) -> Result<axum::Json<ConversationView>, ApiError> {
    Ok(axum::Json(
        state.whatsapp.mark_read(ctx.org(), contact).await?,
    ))
}

/// The public `/webhooks/whatsapp`: Meta's GET handshake and signed POSTs.
pub fn webhook_routes() -> Router<AppState> {
    Router::new().route("/whatsapp", get(handshake).post(receive))
}

/// `GET /webhooks/whatsapp`: echoes `hub.challenge` when `hub.verify_token` matches.
async fn handshake(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    match state.whatsapp.handshake(query.as_deref().unwrap_or("")) {
        Ok(challenge) => (StatusCode::OK, challenge).into_response(),
        Err(None) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "the WhatsApp webhook is not configured: set EDGE_WHATSAPP_APP_SECRET and \
             EDGE_WHATSAPP_VERIFY_TOKEN",
        )
        .into_response(),
        Err(Some(err)) => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", err.to_string()).into_response()
        }
    }
}

/// `POST /webhooks/whatsapp`: 401 for a bad signature (nothing stored); otherwise the
/// body is stored, answered 200, and processed after.
async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match state.whatsapp.receive_webhook(&headers, &body).await {
        Ok(id) => {
            state.whatsapp.process_webhook_in_background(id);
            (StatusCode::OK, axum::Json(json!({ "received": true }))).into_response()
        }
        Err(WebhookRefusal::BadSignature(err)) => {
            tracing::warn!(error = %err, "a WhatsApp webhook with a bad signature was refused");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                err.to_string(),
            )
            .into_response()
        }
        Err(WebhookRefusal::NotConfigured) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "the WhatsApp webhook is not configured: set EDGE_WHATSAPP_APP_SECRET",
        )
        .into_response(),
        Err(WebhookRefusal::Store(err)) => ApiError::from(err).into_response(),
    }
}
