//! `/api/v1/auth/*` and `/api/v1/me`: sign-up, login, token refresh, logout, the current
//! user, password change and switching organization.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_core::OrgId;
use edge_tenancy::{Role, TenantContext};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::client::Client;
use super::error::ApiError;
use super::extract::Json;
use super::views::{OrganizationView, UserView};
use crate::AppState;
use crate::entities::{memberships, organizations, users};
use crate::identity::auth::{AuthError, Login, Signup};

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let message = err.to_string();
        match err {
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            }
            AuthError::InvalidRefreshToken => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_refresh_token", message)
            }
            AuthError::AccountDeactivated => {
                ApiError::new(StatusCode::FORBIDDEN, "account_deactivated", message)
            }
            AuthError::OrganizationSuspended => {
                ApiError::new(StatusCode::FORBIDDEN, "organization_suspended", message)
            }
            AuthError::NotAMember => ApiError::new(StatusCode::FORBIDDEN, "not_a_member", message),
            AuthError::ChooseOrganization(choices) => {
                ApiError::new(StatusCode::CONFLICT, "organization_required", message)
                    .with_details(json!({ "organizations": choices }))
            }
            AuthError::Core(err) => err.into(),
        }
    }
}

/// The body of a successful sign-up, login, refresh, switch or accepted invitation.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionBody {
    /// The organization the session is in.
    organization: OrganizationView,
    /// The user.
    user: UserView,
    /// The user's role in the organization.
    role: Role,
    /// The access token (a JWT): `Authorization: Bearer …`.
    access_token: String,
    /// `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    /// Exchange it at `/auth/refresh` for a new pair; it works once.
    refresh_token: String,
    /// The session.
    session_id: edge_core::SessionId,
}

/// The [`SessionBody`] of a login.
pub(crate) fn session_body(login: &Login) -> SessionBody {
    SessionBody {
        organization: OrganizationView::from(&login.organization),
        user: UserView::from(&login.user),
        role: login.role,
        access_token: login.tokens.access_token.clone(),
        token_type: "Bearer",
        expires_in: login.tokens.expires_in,
        refresh_token: login.tokens.refresh_token.expose_secret().to_owned(),
        session_id: login.tokens.session,
    }
}

/// `POST /auth/signup`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignupBody {
    organization_name: String,
    name: String,
    email: String,
    #[schema(value_type = String)]
    password: SecretString,
}

/// Creates an organization and its first `org_admin`; answers 201 with both and tokens.
pub async fn signup(
    State(state): State<AppState>,
    Client(client): Client,
    Json(body): Json<SignupBody>,
) -> Result<Response, ApiError> {
    let login = state
        .auth
        .signup(
            Signup {
                organization_name: body.organization_name,
                name: body.name,
                email: body.email,
                password: body.password,
            },
            &client,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(session_body(&login))).into_response())
}

/// `POST /auth/login`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    email: String,
    #[schema(value_type = String)]
    password: SecretString,
    #[serde(default)]
    organization_id: Option<OrgId>,
}

/// Logs in; with several memberships, `organization_id` chooses one (409 lists them).
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    Json(body): Json<LoginBody>,
) -> Result<Json<SessionBody>, ApiError> {
    let login = state
        .auth
        .login(&body.email, body.password, body.organization_id, &client)
        .await?;
    Ok(Json(session_body(&login)))
}

/// `POST /auth/refresh`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    #[schema(value_type = String)]
    refresh_token: SecretString,
}

/// Exchanges a refresh token for a new pair; a reused token ends its session.
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<SessionBody>, ApiError> {
    let login = state.auth.refresh(&body.refresh_token).await?;
    Ok(Json(session_body(&login)))
}

/// `POST /auth/logout`: ends the current session.
pub async fn logout(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
) -> Result<StatusCode, ApiError> {
    state.auth.logout(&ctx, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /auth/switch`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SwitchBody {
    organization_id: OrgId,
}

/// Ends the current session and starts one in another organization the user belongs to.
pub async fn switch(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(body): Json<SwitchBody>,
) -> Result<Json<SessionBody>, ApiError> {
    // Looks up the membership in, and starts a session for, another organization.
    let login =
        crate::tenant_scope::cross_tenant(state.auth.switch(&ctx, body.organization_id, &client))
            .await?;
    Ok(Json(session_body(&login)))
}

/// `GET /me`: the caller, the current organization and role, and every membership.
pub async fn me(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<Value>, ApiError> {
    let organization = organizations::Entity::find_by_id(ctx.org().as_uuid())
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::from(edge_core::Error::Unauthenticated))?;
    let Some(user_id) = ctx.user() else {
        // An API key: it has an organization and a role, but no person behind it.
        return Ok(Json(json!({
            "user": null,
            "api_key_id": match ctx.principal() {
                edge_tenancy::Principal::ApiKey { key } => Some(key),
                edge_tenancy::Principal::User { .. } => None,
            },
            "organization": OrganizationView::from(&organization),
            "role": ctx.role(),
            "memberships": [],
        })));
    };
    let user = users::Entity::find_by_id(user_id.as_uuid())
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::from(edge_core::Error::Unauthenticated))?;
    // A user's memberships span organizations.
    let rows = crate::tenant_scope::cross_tenant(
        memberships::Entity::find()
            .filter(memberships::Column::UserId.eq(user.id))
            .order_by_asc(memberships::Column::CreatedAt)
            .all(&state.db),
    )
    .await?;
    let mut list = Vec::with_capacity(rows.len());
    for m in rows {
        if let Some(org) = organizations::Entity::find_by_id(m.organization_id)
            .one(&state.db)
            .await?
        {
            list.push(json!({
                "organization": { "id": org.id, "name": org.name, "slug": org.slug, "status": org.status },
                "role": m.role,
                "status": m.status,
            }));
        }
    }
    let role: Role = ctx.role();
    Ok(Json(json!({
        "user": UserView::from(&user),
        "organization": OrganizationView::from(&organization),
        "role": role,
        "memberships": list,
    })))
}

/// `POST /me/password`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordBody {
    #[schema(value_type = String)]
    current_password: SecretString,
    #[schema(value_type = String)]
    new_password: SecretString,
}

/// Changes the caller's password; every other session of theirs ends.
pub async fn change_password(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(body): Json<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    // Ends the user's sessions in every organization.
    crate::tenant_scope::cross_tenant(state.auth.change_password(
        &ctx,
        body.current_password,
        body.new_password,
        &client,
    ))
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
