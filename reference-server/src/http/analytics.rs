//! `/analytics/*`: reports over a period (see [`crate::analytics`]).

use axum::extract::State;
use edge_tenancy::TenantContext;
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::extract::{Json, Query};
use crate::AppState;
use crate::analytics;

/// The period of every report: two local days, both included.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    /// The first day, `YYYY-MM-DD`.
    from: Option<String>,
    /// The last day, `YYYY-MM-DD`.
    to: Option<String>,
}

macro_rules! report {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        pub async fn $name(
            State(state): State<AppState>,
            ctx: TenantContext,
            Query(query): Query<PeriodQuery>,
        ) -> Result<Json<Value>, ApiError> {
            Ok(Json(
                analytics::$name(
                    &state.db,
                    &ctx,
                    state.clock.now(),
                    query.from.as_deref(),
                    query.to.as_deref(),
                )
                .await?,
            ))
        }
    };
}

report!(
    pipeline_conversion,
    "`GET /analytics/pipeline-conversion`: per pipeline and stage, deals entered, moved on, won and lost."
);
report!(
    revenue_won,
    "`GET /analytics/revenue-won`: deals won per month and currency."
);
report!(
    payments_collected,
    "`GET /analytics/payments`: succeeded payments per month, currency and purpose."
);
report!(
    activities,
    "`GET /analytics/activities`: activities created and completed per member and kind."
);
report!(
    targets,
    "`GET /analytics/targets`: the targets overlapping the period, with progress."
);
report!(
    messages,
    "`GET /analytics/messages`: WhatsApp volume by direction and status, and fees spent."
);
