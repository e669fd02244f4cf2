//! `GET /audit-log`: the organization's audit trail, newest first, with filters.

use axum::extract::State;
use chrono::{DateTime, Utc};
use edge_core::Page;
use edge_tenancy::{Permission, TenantContext};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Json, Query, page_request};
use crate::AppState;
use crate::entities::audit_log;

/// Filters; every one is optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exact action, e.g. `api_key.create`.
    action: Option<String>,
    /// The user or API key that acted.
    actor_id: Option<uuid::Uuid>,
    /// The kind of record, e.g. `api_key`.
    target_type: Option<String>,
    /// The record.
    target_id: Option<String>,
    /// Entries at or after this time.
    since: Option<DateTime<Utc>>,
    /// Entries before this time.
    until: Option<DateTime<Utc>>,
    /// Page size (1–200, default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One audit entry as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    id: uuid::Uuid,
    actor_type: String,
    actor_id: Option<uuid::Uuid>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: serde_json::Value,
    created_at: DateTime<Utc>,
}

/// Lists audit entries, newest first (keyset pagination on the time-ordered id).
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Page<AuditEntryView>>, ApiError> {
    ctx.require(Permission::AuditRead)?;
    let page = page_request(query.limit, query.cursor)?;
    let after: Option<uuid::Uuid> = page.after().map_err(edge_core::Error::from)?;
    let mut select =
        audit_log::Entity::find().filter(audit_log::Column::OrganizationId.eq(ctx.org().as_uuid()));
    if let Some(action) = query.action {
        select = select.filter(audit_log::Column::Action.eq(action));
    }
    if let Some(actor) = query.actor_id {
        select = select.filter(audit_log::Column::ActorId.eq(actor));
    }
    if let Some(kind) = query.target_type {
        select = select.filter(audit_log::Column::TargetType.eq(kind));
    }
    if let Some(target) = query.target_id {
        select = select.filter(audit_log::Column::TargetId.eq(target));
    }
    if let Some(since) = query.since {
        select = select.filter(audit_log::Column::CreatedAt.gte(since));
    }
    if let Some(until) = query.until {
        select = select.filter(audit_log::Column::CreatedAt.lt(until));
    }
    if let Some(after) = after {
        select = select.filter(audit_log::Column::Id.lt(after));
    }
    let limit = page.limit();
    let rows = select
        .order_by_desc(audit_log::Column::Id)
        .limit(u64::from(limit) + 1)
        .all(&state.db)
        .await?;
    let page = Page::from_overfetch(rows, limit, |row| row.id).map(|row| AuditEntryView {
        id: row.id,
        actor_type: row.actor_type,
        actor_id: row.actor_id,
        action: row.action,
        target_type: row.target_type,
        target_id: row.target_id,
        ip_address: row.ip_address,
        user_agent: row.user_agent,
        request_id: row.request_id,
        details: row.details,
        created_at: row.created_at,
    });
    Ok(Json(page))
}
