//! `/billing/subscription` (an organization's subscription) and `/admin/plans` (the
//! operator's plans).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use edge_tenancy::TenantContext;
use serde::Serialize;
use serde_json::json;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path};
use crate::AppState;
use crate::billing::plans::{self, NewPlan, PlanPatch, PlanView};
use crate::billing::subscriptions::{self, Period, SubscriptionStatus};
use crate::identity::operator::require_operator;

/// How many of the latest paid periods `GET /billing/subscription` shows.
const RECENT_PERIODS: u64 = 12;

/// An organization's subscription as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    /// The plan, with its price and limits.
    pub plan: PlanView,
    /// `active`, `grace` or `suspended`.
    pub status: SubscriptionStatus,
    /// When the current period ends; `null` on a free plan.
    pub current_period_end: Option<DateTime<Utc>>,
    /// When grace ends (or ended); `null` until the subscription first enters grace.
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The latest paid periods, latest first.
    pub periods: Vec<Period>,
}

/// `GET /billing/subscription`: the plan, where the subscription stands and the latest
/// paid periods.
pub async fn subscription(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<SubscriptionView>, ApiError> {
    let subscription = subscriptions::get(&state.db, ctx.org()).await?;
    let periods = subscriptions::periods(&state.db, ctx.org(), RECENT_PERIODS).await?;
    Ok(Json(SubscriptionView {
        plan: PlanView::from(&subscription.plan),
        status: subscription.status,
        current_period_end: subscription.current_period_end,
        grace_ends_at: subscription.grace_ends_at,
        updated_at: subscription.updated_at,
        periods,
    }))
}

/// `GET /admin/plans`: every plan, archived ones included, cheapest first.
pub async fn list_plans(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_operator(&ctx)?;
    let plans = plans::list(&state.db, true).await?;
    let items: Vec<PlanView> = plans.iter().map(PlanView::from).collect();
    Ok(Json(json!({ "items": items })))
}

/// `POST /admin/plans`: 201 with the plan; 409 if the code is taken; 422 naming each
/// missing or bad field.
pub async fn create_plan(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<NewPlan>,
) -> Result<Response, ApiError> {
    let plan = plans::create(&state.db, &ctx, &client, state.clock.now(), input).await?;
    Ok((StatusCode::CREATED, Json(PlanView::from(&plan))).into_response())
}

/// `PATCH /admin/plans/{code}`: changes a plan; `active: false` archives it.
pub async fn update_plan(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(code): Path<String>,
    Json(patch): Json<PlanPatch>,
) -> Result<Json<PlanView>, ApiError> {
    let plan = plans::update(&state.db, &ctx, &client, state.clock.now(), &code, patch).await?;
    Ok(Json(PlanView::from(&plan)))
}
