//! `GET /usage` and the middleware that counts API calls.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use edge_tenancy::{Permission, TenantContext};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::extract::{Json, Query};
use crate::AppState;
use crate::entities::usage_counters;
use crate::usage::{API_CALLS, periods};

/// Counts one API call for the request's organization. A counting failure is logged and
/// never fails the request.
pub async fn count_api_call(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(ctx) = request.extensions().get::<TenantContext>()
        && let Err(err) = state.usage.record(ctx.org(), API_CALLS, 1).await
    {
        tracing::warn!(error = %err, "could not count an API call");
    }
    next.run(request).await
}

/// `GET /usage` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// A day (`2026-11-23`) or month (`2026-11`); default: today and this month.
    period: Option<String>,
}

/// The organization's usage: every metric for the requested period, or for today and
/// this month, with the plan's limits.
pub async fn usage(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<UsageQuery>,
) -> Result<Json<Value>, ApiError> {
    ctx.require(Permission::UsageRead)?;
    let wanted: Vec<String> = match query.period {
        Some(period) => {
            let valid = chrono::NaiveDate::parse_from_str(&period, "%Y-%m-%d").is_ok()
                || chrono::NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").is_ok();
            if !valid {
                return Err(edge_core::Error::invalid(
                    "period",
                    "must be a day (YYYY-MM-DD) or a month (YYYY-MM)",
                )
                .into());
            }
            vec![period]
        }
        None => periods(state.clock.now()).to_vec(),
    };
    let rows = usage_counters::Entity::find()
        .filter(usage_counters::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(usage_counters::Column::Period.is_in(wanted.clone()))
        .order_by_asc(usage_counters::Column::Metric)
        .all(&state.db)
        .await?;
    let mut by_period = Map::new();
    for period in &wanted {
        let metrics: Map<String, Value> = rows
            .iter()
            .filter(|r| &r.period == period)
            .map(|r| (r.metric.clone(), json!(r.count)))
            .collect();
        by_period.insert(period.clone(), Value::Object(metrics));
    }
    Ok(Json(json!({
        "organization_id": ctx.org(),
        "periods": by_period,
        "limits": ctx.limits(),
    })))
}

/// `GET /usage/report` and `GET /admin/usage` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `YYYY-MM` (UTC); default this month.
    month: Option<String>,
    /// Operators' page size.
    limit: Option<u32>,
    /// Operators' next page.
    cursor: Option<String>,
}

fn month_of(state: &AppState, query: &ReportQuery) -> Result<String, ApiError> {
    let month = query
        .month
        .clone()
        .unwrap_or_else(|| state.clock.now().format("%Y-%m").to_string());
    crate::usage::month_bounds(&month)?;
    Ok(month)
}

/// `GET /usage/report`: the organization's usage report for a month (see
/// [`crate::usage::report`]).
pub async fn report(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<ReportQuery>,
) -> Result<Json<Value>, ApiError> {
    ctx.require(Permission::UsageRead)?;
    if query.limit.is_some() || query.cursor.is_some() {
        return Err(edge_core::Error::invalid("limit", "this report is one organization's").into());
    }
    let month = month_of(&state, &query)?;
    let org = ctx.org().as_uuid();
    let mut reports = crate::usage::report(&state.db, &[org], &month).await?;
    let report = reports.remove(&org).unwrap_or(Value::Null);
    Ok(Json(report))
}

/// `GET /admin/usage`: every organization's usage report for a month, a page of
/// organizations at a time (oldest first), for the platform operator.
pub async fn admin_report(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<ReportQuery>,
) -> Result<Json<Value>, ApiError> {
    crate::identity::operator::require_operator(&ctx)?;
    let month = month_of(&state, &query)?;
    let page = super::extract::page_request(query.limit, query.cursor.clone())?;
    let after: Option<uuid::Uuid> = page.after().map_err(edge_core::Error::from)?;
    let db = state.db.clone();
    let (page, reports) = crate::tenant_scope::cross_tenant(async move {
        let rows =
            crate::identity::operator::list_organizations(&db, None, after, page.limit()).await?;
        let page = edge_core::Page::from_overfetch(rows, page.limit(), |row| row.id);
        let ids: Vec<uuid::Uuid> = page.items.iter().map(|row| row.id).collect();
        let reports = crate::usage::report(&db, &ids, &month).await?;
        Ok::<_, edge_core::Error>((page, reports))
    })
    .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|org| {
            let mut report = reports.get(&org.id).cloned().unwrap_or(Value::Null);
            if let Some(object) = report.as_object_mut() {
                object.insert("slug".into(), json!(org.slug));
                object.insert("name".into(), json!(org.name));
                object.insert("status".into(), json!(org.status));
            }
            report
        })
        .collect();
    Ok(Json(
        json!({ "items": items, "next_cursor": page.next_cursor }),
    ))
}
