//! `/organization`, `/organization/settings`, `/api-keys`, `/users` and
//! `/invitations/accept`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_core::{ApiKeyId, UserId};
use edge_tenancy::TenantContext;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path};
use super::views::OrganizationView;
use crate::AppState;
use crate::identity::api_keys::{self, ApiKeyView, CreateApiKey};
use crate::identity::members::{self, Accept, Invite, MemberPatch, MemberView};
use crate::identity::organization::{self, OrganizationPatch};
use crate::organization_settings::OrganizationSettings;

/// `GET /organization`.
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<OrganizationView>, ApiError> {
    let org = organization::get(&state.db, &ctx).await?;
    Ok(Json(OrganizationView::from(&org)))
}

/// `PATCH /organization`: name, currency, country, single-session switch, branding.
pub async fn update(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(patch): Json<OrganizationPatch>,
) -> Result<Json<OrganizationView>, ApiError> {
    let org = organization::update(&state.db, &ctx, &client, state.clock.now(), patch).await?;
    Ok(Json(OrganizationView::from(&org)))
}

/// `GET /organization/settings`: the organization's vocabulary.
pub async fn settings(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<OrganizationSettings>, ApiError> {
    Ok(Json(organization::settings(&state.db, &ctx).await?))
}

/// `PUT /organization/settings`: replaces the vocabulary (every list is validated).
pub async fn replace_settings(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(settings): Json<OrganizationSettings>,
) -> Result<Json<OrganizationSettings>, ApiError> {
    let settings =
        organization::replace_settings(&state.db, &ctx, &client, state.clock.now(), settings)
            .await?;
    Ok(Json(settings))
}

/// `POST /api-keys`: 201 with the key, shown this once.
pub async fn create_api_key(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<CreateApiKey>,
) -> Result<Response, ApiError> {
    let (view, key) = api_keys::create(&state.db, &ctx, &client, state.clock.now(), input).await?;
    let mut body = serde_json::to_value(view).map_err(|e| ApiError::internal(&e))?;
    body["key"] = Value::String(key.expose_secret().to_owned());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api-keys`: every key of the organization, without the keys themselves.
pub async fn list_api_keys(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<Value>, ApiError> {
    let keys: Vec<ApiKeyView> = api_keys::list(&state.db, &ctx).await?;
    Ok(Json(json!({ "items": keys })))
}

/// `DELETE /api-keys/{id}`: revokes the key at once.
pub async fn revoke_api_key(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<ApiKeyId>,
) -> Result<StatusCode, ApiError> {
    api_keys::revoke(&state.db, &ctx, &client, state.clock.now(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users`: the organization's members.
pub async fn list_members(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<Value>, ApiError> {
    let members: Vec<MemberView> = members::list(&state.db, &ctx).await?;
    Ok(Json(json!({ "items": members })))
}

/// `POST /users/invitations`: 201 with the invitation and its token (pass it on; it is
/// shown this once).
pub async fn invite(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<Invite>,
) -> Result<Response, ApiError> {
    let (invitation, token) =
        members::invite(&state.db, &ctx, &client, state.clock.now(), input).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "invitation": invitation, "token": token.expose_secret() })),
    )
        .into_response())
}

/// `POST /invitations/accept` (public): joins the organization and logs in there.
pub async fn accept_invitation(
    State(state): State<AppState>,
    Client(client): Client,
    Json(input): Json<Accept>,
) -> Result<Response, ApiError> {
    let password = input.password.clone();
    let (user, org) = members::accept(&state.db, &client, state.clock.now(), input).await?;
    let login = state
        .auth
        .login(&user.email, password, Some(org), &client)
        .await?;
    Ok((StatusCode::CREATED, Json(super::auth::session_body(&login))).into_response())
}

/// `PATCH /users/{id}`: changes a member's role.
pub async fn change_role(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(user): Path<UserId>,
    Json(patch): Json<MemberPatch>,
) -> Result<Json<MemberView>, ApiError> {
    Ok(Json(
        members::change_role(&state.db, &ctx, &client, state.clock.now(), user, patch).await?,
    ))
}

/// `POST /users/{id}/deactivate`: the member's sessions end at once.
pub async fn deactivate(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(user): Path<UserId>,
) -> Result<Json<MemberView>, ApiError> {
    Ok(Json(
        members::set_active(&state.db, &ctx, &client, state.clock.now(), user, false).await?,
    ))
}

/// `POST /users/{id}/reactivate`.
pub async fn reactivate(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(user): Path<UserId>,
) -> Result<Json<MemberView>, ApiError> {
    Ok(Json(
        members::set_active(&state.db, &ctx, &client, state.clock.now(), user, true).await?,
    ))
}
