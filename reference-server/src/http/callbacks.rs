//! Daraja's callbacks (public, outside `/api/v1`):
//!
//! - `POST /callbacks/mpesa/{org}/{token}`: STK push results;
//! - `POST /callbacks/mpesa/{org}/{token}/result` and `…/timeout`: transaction status and
//!   reversal results;
//! - `POST /callbacks/c2b/{org}/{token}/validation` and `…/confirmation`: C2B on the
//!   organization's own shortcode (Daraja refuses C2B URLs containing "mpesa");
//! - `POST /callbacks/c2b/platform/{token}/validation` and `…/confirmation`: C2B on the
//!   platform's paybill (tenants topping up their wallet with their slug as the account
//!   number).
//!
//! The token must be the organization's (see `payments::tokens`), or the platform's;
//! otherwise the answer is 404 and nothing is stored. With the right token the body is
//! stored as received, before anything reads it. A validation request is then decided and
//! answered at once (`{"ResultCode":"0","ResultDesc":"Accepted"}` or a `C2B000xx`
//! rejection); every other callback is answered at once and processed after.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use edge_core::{Error, OrgId};
use serde_json::json;

use super::client::Client;
use super::error::ApiError;
use super::extract::Path;
use crate::AppState;
use crate::payments::inbox::CallbackKind;

/// The callback routes, to nest under `/callbacks`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mpesa/{org}/{token}", post(stk))
        .route("/mpesa/{org}/{token}/result", post(result))
        .route("/mpesa/{org}/{token}/timeout", post(timeout))
        .route(
            "/c2b/platform/{token}/validation",
            post(platform_validation),
        )
        .route(
            "/c2b/platform/{token}/confirmation",
            post(platform_confirmation),
        )
        .route("/c2b/{org}/{token}/validation", post(c2b_validation))
        .route("/c2b/{org}/{token}/confirmation", post(c2b_confirmation))
}

/// Checks the token and stores the callback as received.
async fn store(
    state: &AppState,
    (org, token): (String, String),
    kind: CallbackKind,
    client: &crate::audit::ClientInfo,
    body: &[u8],
) -> Result<(OrgId, uuid::Uuid), ApiError> {
    // A malformed organization id is as unknown as a wrong one.
    let org = uuid::Uuid::parse_str(&org)
        .map(OrgId::from_uuid)
        .map_err(|_| Error::not_found("callback"))?;
    let id = crate::tenant_scope::in_organization(
        org,
        state
            .payments
            .receive(org, &token, kind, body, client.ip.clone()),
    )
    .await?;
    Ok((org, id))
}

/// Stores the callback and starts processing it; the caller answers Daraja.
async fn accept(
    state: &AppState,
    path: (String, String),
    kind: CallbackKind,
    client: &crate::audit::ClientInfo,
    body: &[u8],
) -> Result<(OrgId, uuid::Uuid), ApiError> {
    let (org, id) = store(state, path, kind, client, body).await?;
    state
        .payments
        .process_in_background(id, crate::tenant_scope::Scope::Organization(org));
    Ok((org, id))
}

fn accepted() -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({ "ResultCode": 0, "ResultDesc": "Accepted" })),
    )
        .into_response()
}

/// `POST /callbacks/mpesa/{org}/{token}`: an STK push result.
async fn stk(
    State(state): State<AppState>,
    Client(client): Client,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    accept(&state, path, CallbackKind::Stk, &client, &body).await?;
    Ok(accepted())
}

/// `POST /callbacks/mpesa/{org}/{token}/result`: a status query or reversal result.
async fn result(
    State(state): State<AppState>,
    Client(client): Client,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    accept(&state, path, CallbackKind::Result, &client, &body).await?;
    Ok(accepted())
}

/// The answer to a C2B validation request.
fn validation_reply(reply: &edge_mpesa::C2bValidationReply) -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        reply.to_json(),
    )
        .into_response()
}

/// The acknowledgement of a C2B confirmation.
fn confirmed() -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        edge_mpesa::callbacks::C2B_CONFIRMATION_ACK,
    )
        .into_response()
}

/// `POST /callbacks/c2b/{org}/{token}/validation`: accepted or rejected at once by the
/// organization's C2B rule.
async fn c2b_validation(
    State(state): State<AppState>,
    Client(client): Client,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (org, id) = store(&state, path, CallbackKind::C2bValidation, &client, &body).await?;
    let reply = crate::tenant_scope::in_organization(org, state.payments.validate_c2b(id)).await?;
    Ok(validation_reply(&reply))
}

/// `POST /callbacks/c2b/{org}/{token}/confirmation`: a payment to the organization's own
/// shortcode.
async fn c2b_confirmation(
    State(state): State<AppState>,
    Client(client): Client,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    accept(&state, path, CallbackKind::C2bConfirmation, &client, &body).await?;
    Ok(confirmed())
}

/// `POST /callbacks/c2b/platform/{token}/validation`: accepted when the account number is
/// an organization's slug.
async fn platform_validation(
    State(state): State<AppState>,
    Client(client): Client,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // The platform's inbox is read before the organization is known.
    let reply = crate::tenant_scope::cross_tenant(async {
        let id = state
            .payments
            .receive_platform(
                &token,
                CallbackKind::PlatformC2bValidation,
                &body,
                client.ip.clone(),
            )
            .await?;
        state.payments.validate_c2b(id).await
    })
    .await?;
    Ok(validation_reply(&reply))
}

/// `POST /callbacks/c2b/platform/{token}/confirmation`: a payment to the platform's
/// paybill, credited to the organization its account number names.
async fn platform_confirmation(
    State(state): State<AppState>,
    Client(client): Client,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = crate::tenant_scope::cross_tenant(state.payments.receive_platform(
        &token,
        CallbackKind::PlatformC2bConfirmation,
        &body,
        client.ip.clone(),
    ))
    .await?;
    state
        .payments
        .process_in_background(id, crate::tenant_scope::Scope::CrossTenant);
    Ok(confirmed())
}

/// `POST /callbacks/mpesa/{org}/{token}/timeout`: a status query or reversal time-out.
async fn timeout(
    State(state): State<AppState>,
    Client(client): Client,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    accept(&state, path, CallbackKind::Timeout, &client, &body).await?;
    Ok(accepted())
}
