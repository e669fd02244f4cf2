//! `/admin/organizations`: operators create, list, suspend and reactivate tenants.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_core::{OrgId, Page};
use edge_tenancy::TenantContext;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query, page_request};
use super::views::OrganizationView;
use crate::AppState;
use crate::audit::Actor;
use crate::identity::operator::{self, NewOrganization};

/// `POST /admin/organizations`: 201 with the organization and, if `admin_email` was
/// given, the first admin's invitation token.
pub async fn create(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<NewOrganization>,
) -> Result<Response, ApiError> {
    operator::require_operator(&ctx)?;
    // Operators act across tenants.
    let created = crate::tenant_scope::cross_tenant(operator::create_organization(
        &state.db,
        Actor::of(&ctx),
        &client,
        state.clock.now(),
        input,
    ))
    .await?;
    let invitation = created.invitation.map(|(token, expires_at)| {
        json!({ "token": token.expose_secret(), "role": "org_admin", "expires_at": expires_at })
    });
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "organization": OrganizationView::from(&created.organization),
            "invitation": invitation,
        })),
    )
        .into_response())
}

/// `GET /admin/organizations` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Lists every organization, oldest first.
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<OrganizationView>>, ApiError> {
    operator::require_operator(&ctx)?;
    let page = page_request(query.limit, query.cursor)?;
    let after: Option<uuid::Uuid> = page.after().map_err(edge_core::Error::from)?;
    let rows =
        operator::list_organizations(&state.db, query.status.as_deref(), after, page.limit())
            .await?;
    Ok(Json(
        Page::from_overfetch(rows, page.limit(), |row| row.id)
            .map(|row| OrganizationView::from(&row)),
    ))
}

/// `POST /admin/organizations/{id}/suspend`.
pub async fn suspend(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(org): Path<OrgId>,
) -> Result<Json<OrganizationView>, ApiError> {
    let row = crate::tenant_scope::cross_tenant(operator::set_organization_active(
        &state.db,
        &ctx,
        &client,
        state.clock.now(),
        org,
        false,
    ))
    .await?;
    Ok(Json(OrganizationView::from(&row)))
}

/// `POST /admin/organizations/{id}/reactivate`.
pub async fn reactivate(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(org): Path<OrgId>,
) -> Result<Json<OrganizationView>, ApiError> {
    let row = crate::tenant_scope::cross_tenant(operator::set_organization_active(
        &state.db,
        &ctx,
        &client,
        state.clock.now(),
        org,
        true,
    ))
    .await?;
    Ok(Json(OrganizationView::from(&row)))
}
